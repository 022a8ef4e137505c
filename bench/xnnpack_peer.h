// The peer the kernels bench compares against: Debian's XNNPACK, one
// thread, its per-channel int8 (qc8) convolution. Absent from builds
// without XNNPACK (cross, core_only, or not installed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kernels/conv/conv.h"
#include "kernels/f32/f32.h"

namespace huddle::bench {

// Empty when the peer can run; else why not (one line).
std::string xnnpack_unavailable();

// One convolution prepared in XNNPACK on fixed input and output buffers.
// Same arguments as huddle's QConv (scale = in_scale * w_scale / out_scale;
// XNNPACK gets in_scale = out_scale = 1), plus `groups` for grouped and
// depthwise convolutions (shape.in_c and out_c are then per group; pixel
// strides of 0 mean groups * channels).
class XnnConv {
 public:
  XnnConv(const kernels::ConvShape& shape, size_t groups, const int8_t* weights, const int32_t* bias,
          const float* scale, int32_t in_zero_point, const kernels::QGemmOutput& params, const int8_t* in,
          int8_t* out);
  ~XnnConv();
  XnnConv(const XnnConv&) = delete;
  XnnConv& operator=(const XnnConv&) = delete;

  void run() const;

 private:
  void* op_ = nullptr;  // xnn_operator_t
};

// One fp32 depthwise convolution (groups = channels, multiplier 1) prepared
// in XNNPACK on fixed buffers: shape.in_c = shape.out_c = channels, weights
// [channel][kh][kw] (XNNPACK's layout), clamp as huddle's.
class XnnF32DwConv {
 public:
  XnnF32DwConv(const kernels::F32ConvShape& shape, const float* weights, const float* bias,
               const kernels::F32Clamp& clamp, const float* in, float* out);
  ~XnnF32DwConv();
  XnnF32DwConv(const XnnF32DwConv&) = delete;
  XnnF32DwConv& operator=(const XnnF32DwConv&) = delete;

  void run() const;

 private:
  void* op_ = nullptr;  // xnn_operator_t
};

}  // namespace huddle::bench
