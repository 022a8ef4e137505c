// Quantisation parameters of the int8 op forms (engine/INT8.md), read and
// checked at prepare time.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/op.h"
#include "kernels/gemm/gemm.h"

namespace huddle::engine::ops {

// real = scale * (q - zero_point) for a whole tensor.
struct TensorQuant {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// The per-tensor quantisation of int8 activation `t` (called `what` in
// messages, e.g. "input 0"); fails when it has none, has one per channel, a
// scale that is not a positive finite number or a zero point outside [-128, 127].
TensorQuant activation_quant(const PrepareContext& ctx, const Tensor& t, const std::string& what);

// The node's fused activation (common.h's activation_clamp) as int8 bounds
// in the domain of `q`: min = max(-128, zp + round(lo / scale)), max likewise
// (round half to even), with q's zero point.
kernels::QGemmOutput quantized_clamp(const PrepareContext& ctx, TensorQuant q);

// Constant int8 weights (input 1) with one scale per row of `rows` (axis 0)
// or one for the tensor, zero points 0, values in [-127, 127]; fails naming
// the problem otherwise. Returns the weight scales, one per row.
std::vector<float> int8_weight_scales(const PrepareContext& ctx, const Tensor& w, int64_t rows);

// The optional constant int32 bias (input 2) of `rows` values; checks its
// quantisation is x_scale * w_scale[o] (relative difference <= 1e-6), zero
// points 0. nullptr when absent.
const int32_t* int8_bias(const PrepareContext& ctx, float x_scale, const std::vector<float>& w_scales);

// The requantisation scales x_scale * w_scale[o] / y_scale, computed in
// double and rounded to float once.
std::vector<float> requant_scales(float x_scale, const std::vector<float>& w_scales, float y_scale);

}  // namespace huddle::engine::ops
