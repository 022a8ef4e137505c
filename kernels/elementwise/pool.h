// int8 pooling, NHWC: max pooling, average pooling and global average pooling.
//
// A window is kernel_h x kernel_w input pixels starting at
// (oh * stride_h - pad_top, ow * stride_w - pad_left); cells outside the input
// are padding. Max pooling ignores padding (an all-padding window gives `min`)
// and keeps the input's quantisation. Average pooling sums acc = sum (x - in_zp)
// over the window's input cells (padding counts as the real value 0) and
// requantises with the elementwise family's rule (kernels/elementwise/elementwise.h):
//   count = count_include_pad ? kernel_h * kernel_w : cells in the input (at least 1)
//   q = qs8_requant_f32(float(acc) * (scale / float(count)), out)
// where scale / float(count) is one float division. Every variant reproduces it bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/elementwise/elementwise.h"
#include "kernels/isa.h"

namespace huddle::kernels {

// Geometry of one pooling call over a dense NHWC tensor (batch x in_h x in_w x
// channels) into a dense one (batch x out_h x out_w x channels). The padding at
// the bottom and right follows from out_h and out_w (see qs8_pool_out_size).
struct QPoolShape {
  size_t batch = 1, in_h = 1, in_w = 1, channels = 1;
  size_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  size_t pad_top = 0, pad_left = 0;
  size_t out_h = 1, out_w = 1;
};

// Output extent of one dimension: (in + pad_before + pad_after - kernel) / stride + 1
// (0 when the window does not fit).
size_t qs8_pool_out_size(size_t in, size_t kernel, size_t stride, size_t pad_before, size_t pad_after);

// Requantisation of an average (see qs8_avgpool_params).
struct QAvgPoolParams {
  int32_t in_zero_point = 0;
  float scale = 1.0f;              // in_scale / out_scale, divided by the count per window
  bool count_include_pad = false;  // ONNX count_include_pad (global pooling has no padding)
  QGemmOutput out;
};
// Parameters of an average of x quantised as `x` into y quantised as `y`, clamped to [min, max].
QAvgPoolParams qs8_avgpool_params(QuantParams x, QuantParams y, bool count_include_pad, int8_t min = -128,
                                  int8_t max = 127);

// y = clamp(max over each window, min, max). y must not overlap x (as for all pooling).
using QMaxPoolFn = void (*)(const QPoolShape& shape, const int8_t* x, int8_t* y, int8_t min, int8_t max);
// y = requantised average over each window.
using QAvgPoolFn = void (*)(const QPoolShape& shape, const int8_t* x, int8_t* y, const QAvgPoolParams& p);
// y[b][c] = requantised average of x[b][0..pixels)[c]: x is batch x pixels x
// channels, y batch x channels, count = pixels.
using QGlobalAvgPoolFn = void (*)(size_t batch, size_t pixels, size_t channels, const int8_t* x, int8_t* y,
                                  const QAvgPoolParams& p);

// One variant of the pooling kernels.
struct QPoolUkernel {
  const char* name;  // XNNPACK-style: family, isa, channels per step
  Isa isa;
  QMaxPoolFn maxpool;
  QAvgPoolFn avgpool;
  QGlobalAvgPoolFn global_avgpool;
};

// The scalar reference: the specification every other variant must match.
extern const QPoolUkernel qs8_pool_ref;
#if defined(__x86_64__)
extern const QPoolUkernel qs8_pool_avx2;
#elif defined(__aarch64__)
extern const QPoolUkernel qs8_pool_neon;
#endif
// Every variant this build contains, runnable on this CPU or not.
const std::vector<const QPoolUkernel*>& qs8_pool_all();
// The variants this CPU runs, ref first.
std::vector<const QPoolUkernel*> qs8_pool_runnable();
// The variant kernels use for `isa`.
const QPoolUkernel& qs8_pool_for(Isa isa);
// The variant for selected_isa().
const QPoolUkernel& qs8_pool();

// The window of output row/column `o` in one dimension, clipped to the input:
// input indices [*begin, *end) (empty when the window lies in the padding).
// Out of line, so the ISA translation units call the portable copy.
void qs8_pool_window(size_t o, size_t stride, size_t pad, size_t kernel, size_t in, size_t* begin,
                     size_t* end);

}  // namespace huddle::kernels
