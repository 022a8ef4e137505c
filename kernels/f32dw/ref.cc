// The scalar reference of the fp32 depthwise family: plain loops over the
// packed layout. It is the specification, not a fast path: each output starts
// from its bias and adds the products of the taps inside the input in
// row-major tap order, every multiply and add rounded (the project compiles
// with -ffp-contract=off).
#include "kernels/f32dw/f32dw.h"

namespace huddle::kernels {
namespace {

float clamp(float v, const F32Clamp& c) {
  v = v < c.min ? c.min : v;
  return v > c.max ? c.max : v;
}

void run_ref(const F32ConvShape& s, size_t row0, size_t row1, const float* input, const void* packed,
             float* output, const F32Clamp& cl) {
  const float* p = static_cast<const float*>(packed);  // bias[cp], then the taps
  const size_t cp = f32dw_padded_channels(s), oh = s.out_h(), ow = s.out_w();
  const size_t in_image = s.in_h * s.in_w * s.in_stride(), out_image = oh * ow * s.out_stride();
  for (size_t r = row0; r < row1; ++r) {
    const size_t b = r / oh, oy = r % oh;
    const float* in = input + b * in_image;
    for (size_t ox = 0; ox < ow; ++ox) {
      float* out = output + b * out_image + (oy * ow + ox) * s.out_stride();
      for (size_t c = 0; c < s.in_c; ++c) {
        float acc = p[c];
        for (size_t ky = 0; ky < s.kernel_h; ++ky) {
          // Unsigned: wraps past in_h when above the image.
          const size_t iy = oy * s.stride_h + ky * s.dilation_h - s.pad_top;
          for (size_t kx = 0; kx < s.kernel_w; ++kx) {
            const size_t ix = ox * s.stride_w + kx * s.dilation_w - s.pad_left;
            if (iy >= s.in_h || ix >= s.in_w) continue;
            acc += in[(iy * s.in_w + ix) * s.in_stride() + c] * p[(1 + ky * s.kernel_w + kx) * cp + c];
          }
        }
        out[c] = clamp(acc, cl);
      }
    }
  }
}

}  // namespace

const F32DwUkernel f32dw_ref = {"f32_dwconv_any__scalar_c1", Isa::ref, 1, run_ref};

}  // namespace huddle::kernels
