#include "engine/ops/quant.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "engine/ops/common.h"

namespace huddle::engine::ops {
namespace {

std::string tensor_text(const std::string& what, const Tensor& t) { return what + " '" + t.name + "'"; }

// A scale with its significant digits (std::to_string prints 6 decimals).
std::string number_text(double v) {
  std::ostringstream s;
  s.precision(9);
  s << v;
  return s.str();
}

// The quantisation of constant `t` (called `what`): one scale, or `rows`
// along axis 0; zero points all 0; scales positive and finite.
void check_constant_quant(const PrepareContext& ctx, const Tensor& t, const std::string& what, int64_t rows) {
  const Quant& q = t.quant;
  const std::string name = tensor_text(what, t);
  if (q.empty()) ctx.fail(name + " is " + dtype_text(t.dtype) + " without quantisation");
  const bool per_tensor = q.scale.size() == 1 && (q.axis == -1 || rows == 1);
  const bool per_row = q.axis == 0 && static_cast<int64_t>(q.scale.size()) == rows;
  if (!per_tensor && !per_row)
    ctx.fail(name + " has " + std::to_string(q.scale.size()) + " scales on axis " + std::to_string(q.axis) +
             ": needs one, or " + std::to_string(rows) + " on axis 0");
  if (q.zero_point.size() != q.scale.size())
    ctx.fail(name + " has " + std::to_string(q.zero_point.size()) + " zero points for " +
             std::to_string(q.scale.size()) + " scales");
  for (int32_t z : q.zero_point)
    if (z != 0) ctx.fail(name + " has zero point " + std::to_string(z) + ": needs 0");
  for (float s : q.scale)
    if (!(s > 0.0f) || !std::isfinite(s)) ctx.fail(name + " has scale " + number_text(s));
}

// One scale per row: q's scales, the single one repeated when per tensor.
std::vector<float> row_scales(const Quant& q, int64_t rows) {
  return q.scale.size() == 1 ? std::vector<float>(static_cast<size_t>(rows), q.scale[0]) : q.scale;
}

int8_t saturate(double q) { return static_cast<int8_t>(std::clamp(q, -128.0, 127.0)); }

}  // namespace

TensorQuant activation_quant(const PrepareContext& ctx, const Tensor& t, const std::string& what) {
  const Quant& q = t.quant;
  const std::string name = tensor_text(what, t);
  if (q.empty()) ctx.fail(name + " is i8 without quantisation");
  if (q.scale.size() != 1 || q.axis != -1)
    ctx.fail(name + " is quantised per channel (" + std::to_string(q.scale.size()) +
             " scales): an int8 activation needs one scale");
  if (!(q.scale[0] > 0.0f) || !std::isfinite(q.scale[0]))
    ctx.fail(name + " has scale " + number_text(q.scale[0]));
  const int32_t zp = q.zero_point.empty() ? 0 : q.zero_point[0];
  if (zp < -128 || zp > 127)
    ctx.fail(name + " has zero point " + std::to_string(zp) + ", outside [-128, 127]");
  return {q.scale[0], zp};
}

kernels::QGemmOutput quantized_clamp(const PrepareContext& ctx, TensorQuant q) {
  const kernels::F32Clamp clamp = activation_clamp(ctx);
  const double zp = q.zero_point;
  kernels::QGemmOutput out;
  out.zero_point = q.zero_point;
  // Infinite bounds saturate; nearbyint rounds half to even.
  out.min = saturate(zp + std::nearbyint(std::clamp(double{clamp.min} / q.scale, -1e9, 1e9)));
  out.max = saturate(zp + std::nearbyint(std::clamp(double{clamp.max} / q.scale, -1e9, 1e9)));
  return out;
}

std::vector<float> int8_weight_scales(const PrepareContext& ctx, const Tensor& w, int64_t rows) {
  check_constant_quant(ctx, w, "input 1", rows);
  const std::span<const int8_t> v = w.values<int8_t>();
  const auto low = std::find(v.begin(), v.end(), int8_t{-128});
  if (low != v.end())
    ctx.fail("input 1 '" + w.name + "' holds -128 (element " + std::to_string(low - v.begin()) +
             "): int8 weights must be in [-127, 127]");
  return row_scales(w.quant, rows);
}

const int32_t* int8_bias(const PrepareContext& ctx, float x_scale, const std::vector<float>& w_scales) {
  if (!ctx.has_input(2)) return nullptr;
  const int64_t rows = static_cast<int64_t>(w_scales.size());
  const Tensor& b = ctx.require_constant(2, DType::i32, 1);
  if (b.shape[0] != rows)
    ctx.fail("bias has " + std::to_string(b.shape[0]) + " values for " + std::to_string(rows) + " outputs");
  check_constant_quant(ctx, b, "input 2", rows);
  const std::vector<float> scales = row_scales(b.quant, rows);
  for (size_t o = 0; o < scales.size(); ++o) {
    const double want = double{x_scale} * w_scales[o];
    if (std::abs(scales[o] - want) > 1e-6 * want)
      ctx.fail("bias scale " + number_text(scales[o]) + " of output " + std::to_string(o) +
               " is not input scale * weight scale (" + number_text(want) + ")");
  }
  return b.values<int32_t>().data();
}

std::vector<float> requant_scales(float x_scale, const std::vector<float>& w_scales, float y_scale) {
  std::vector<float> scales;
  for (float w : w_scales) scales.push_back(static_cast<float>(double{x_scale} * w / y_scale));
  return scales;
}

}  // namespace huddle::engine::ops
