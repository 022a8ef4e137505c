// The scalar reference of the int8 depthwise convolution family: plain loops
// over the packed layout with cr = 1, tr = 1. It is the specification, not a
// fast path.
#include <cstring>

#include "kernels/dwconv/dwconv.h"

namespace huddle::kernels {
namespace {

constexpr size_t kHeader = sizeof(int32_t) + sizeof(float);

void dwconv_run_ref(const QDwConvShape& s, const int8_t* in, const void* packed, int8_t* out,
                    const QGemmOutput& params) {
  const size_t block = dwconv_block_bytes(dwconv_ref, s.kernel);
  const int8_t* zero = dwconv_packed_zero(dwconv_ref, packed, s.kernel, s.channels);
  const size_t out_h = dwconv_out_h(s), out_w = dwconv_out_w(s);
  for (size_t c = 0; c < s.channels; ++c) {
    const uint8_t* p = static_cast<const uint8_t*>(packed) + c * block;
    int32_t bias;
    float scale;
    std::memcpy(&bias, p, sizeof bias);
    std::memcpy(&scale, p + sizeof bias, sizeof scale);
    const int8_t* w = reinterpret_cast<const int8_t*>(p + kHeader);
    for (size_t oy = 0; oy < out_h; ++oy) {
      for (size_t ox = 0; ox < out_w; ++ox) {
        int32_t acc = bias;
        for (size_t ky = 0; ky < s.kernel; ++ky) {
          for (size_t kx = 0; kx < s.kernel; ++kx) {
            const ptrdiff_t iy = static_cast<ptrdiff_t>(oy * s.stride + ky) - s.pad_top;
            const ptrdiff_t ix = static_cast<ptrdiff_t>(ox * s.stride + kx) - s.pad_left;
            const bool inside = iy >= 0 && iy < static_cast<ptrdiff_t>(s.in_h) && ix >= 0 &&
                                ix < static_cast<ptrdiff_t>(s.in_w);
            const int8_t x =
                inside ? in[(iy * s.in_w + ix) * s.in_stride + c] : zero[c];  // padding reads in_zp
            acc += int32_t{x} * int32_t{w[ky * s.kernel + kx]};
          }
        }
        out[(oy * out_w + ox) * s.out_stride + c] = qgemm_requant(acc, scale, params);
      }
    }
  }
}

}  // namespace

const QDwConvUkernel dwconv_ref = {"qs8_dwconv_3x3_5x5__ref_c1", Isa::ref, 1, 1, false, dwconv_run_ref};

}  // namespace huddle::kernels
