// The portable part of the fp32 depthwise family: shape checks and packing.
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/f32dw/f32dw.h"

namespace huddle::kernels {

size_t f32dw_padded_channels(const F32ConvShape& s) {
  return (s.in_c + kF32DwChannelPad - 1) / kF32DwChannelPad * kF32DwChannelPad;
}

size_t f32dw_packed_size(const F32ConvShape& s) {
  return (s.kernel_h * s.kernel_w + 2) * f32dw_padded_channels(s) * sizeof(float);
}

void f32dw_pack(const F32ConvShape& s, const float* w, const float* bias, void* packed) {
  const size_t c = s.in_c, cp = f32dw_padded_channels(s), taps = s.kernel_h * s.kernel_w;
  float* out = static_cast<float*>(packed);
  std::memset(out, 0, f32dw_packed_size(s));
  if (bias) std::memcpy(out, bias, c * sizeof(float));
  for (size_t t = 0; t < taps; ++t) std::memcpy(out + (1 + t) * cp, w + t * c, c * sizeof(float));
}

void f32dw_check(const F32ConvShape& s) {
  auto fail = [](const std::string& what) { throw std::invalid_argument("f32 depthwise conv: " + what); };
  if (s.in_c != s.out_c) fail("input and output channels differ");
  if (s.batch == 0 || s.in_h == 0 || s.in_w == 0 || s.in_c == 0) fail("empty tensor");
  if (s.kernel_h == 0 || s.kernel_w == 0) fail("empty kernel");
  if (s.stride_h == 0 || s.stride_w == 0 || s.dilation_h == 0 || s.dilation_w == 0)
    fail("stride and dilation must be at least 1");
  if (s.in_stride() < s.in_c || s.out_stride() < s.out_c) fail("pixel stride below the channels");
  if (s.out_h() == 0 || s.out_w() == 0) fail("padded input smaller than the dilated kernel");
}

}  // namespace huddle::kernels
