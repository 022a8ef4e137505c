#include "kernels/dwconv/dwconv.h"

#include <cstring>

namespace huddle::kernels {

size_t dwconv_out_h(const QDwConvShape& s) {
  return (s.in_h + s.pad_top + s.pad_bottom - s.kernel) / s.stride + 1;
}

size_t dwconv_out_w(const QDwConvShape& s) {
  return (s.in_w + s.pad_left + s.pad_right - s.kernel) / s.stride + 1;
}

size_t dwconv_block_bytes(const QDwConvUkernel& uk, uint32_t kernel) {
  const size_t taps = (size_t{kernel} * kernel + uk.tr - 1) / uk.tr * uk.tr;
  const size_t bytes = uk.cr * (sizeof(int32_t) + sizeof(float)) + uk.cr * taps * (uk.wide_weights ? 2 : 1);
  return (bytes + 15) & ~size_t{15};
}

size_t dwconv_packed_size(const QDwConvUkernel& uk, uint32_t kernel, size_t channels) {
  const size_t cp = (channels + uk.cr - 1) / uk.cr * uk.cr;
  return cp / uk.cr * dwconv_block_bytes(uk, kernel) + ((cp + 15) & ~size_t{15});
}

const int8_t* dwconv_packed_zero(const QDwConvUkernel& uk, const void* packed, uint32_t kernel,
                                 size_t channels) {
  return static_cast<const int8_t*>(packed) + (channels + uk.cr - 1) / uk.cr * dwconv_block_bytes(uk, kernel);
}

void dwconv_pack(const QDwConvUkernel& uk, uint32_t kernel, size_t channels, const int8_t* w,
                 const int32_t* bias, const float* scale, int32_t in_zero_point, void* packed) {
  const size_t cr = uk.cr, tr = uk.tr, taps = size_t{kernel} * kernel;
  const size_t block = dwconv_block_bytes(uk, kernel);
  uint8_t* out = static_cast<uint8_t*>(packed);
  for (size_t c0 = 0; c0 < channels; c0 += cr, out += block) {
    std::memset(out, 0, block);
    uint8_t* wp = out + cr * (sizeof(int32_t) + sizeof(float));
    for (size_t j = 0; j < cr && c0 + j < channels; ++j) {
      const size_t c = c0 + j;
      // acc = sum (x - in_zp) w + bias = sum x w + (bias - in_zp * sum w)
      int32_t sum = 0;
      for (size_t t = 0; t < taps; ++t) {
        const int8_t v = w[t * channels + c];
        sum += v;
        const size_t at = (t / tr) * cr * tr + j * tr + t % tr;
        if (uk.wide_weights) {
          const int16_t v16 = v;
          std::memcpy(wp + 2 * at, &v16, sizeof v16);
        } else {
          wp[at] = static_cast<uint8_t>(v);
        }
      }
      const int32_t b = (bias ? bias[c] : 0) - in_zero_point * sum;
      const float s = scale[c];
      std::memcpy(out + j * sizeof(int32_t), &b, sizeof b);
      std::memcpy(out + cr * sizeof(int32_t) + j * sizeof(float), &s, sizeof s);
    }
  }
  const size_t cp = (channels + cr - 1) / cr * cr;
  std::memset(out, static_cast<uint8_t>(static_cast<int8_t>(in_zero_point)), (cp + 15) & ~size_t{15});
}

}  // namespace huddle::kernels
