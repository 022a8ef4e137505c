#include "engine/ops/common.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

namespace huddle::engine::ops {

kernels::F32Clamp activation_clamp(const PrepareContext& ctx) {
  const std::string a = ctx.node().attr_text("activation", "none");
  const float inf = std::numeric_limits<float>::infinity();
  if (a == "none") return {-inf, inf};
  if (a == "relu") return {0.0f, inf};
  if (a == "relu6") return {0.0f, 6.0f};
  if (a == "clip") {
    const float lo = ctx.node().attr_float("clip_min", -inf), hi = ctx.node().attr_float("clip_max", inf);
    if (!(lo <= hi)) ctx.fail("clip_min is above clip_max");
    return {lo, hi};
  }
  ctx.fail("unknown activation '" + a + "' (none, relu, relu6, clip)");
}

std::vector<int64_t> ints_attr(const PrepareContext& ctx, const char* name, size_t count, int64_t min,
                               std::vector<int64_t> fallback) {
  std::vector<int64_t> v = ctx.node().attr_ints(name, std::move(fallback));
  if (v.size() != count)
    ctx.fail(std::string("attribute '") + name + "' needs " + std::to_string(count) + " values, has " +
             std::to_string(v.size()));
  for (int64_t x : v)
    if (x < min)
      ctx.fail(std::string("attribute '") + name + "' has " + std::to_string(x) + ", below " +
               std::to_string(min));
  return v;
}

namespace {

// A float with enough digits to tell two apart ("0.0039215689").
std::string float_text(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(v));
  return buf;
}

// The per-tensor quantisation of tensor t, which `what` names ("input 0 'x'").
kernels::QuantParams tensor_quant(const PrepareContext& ctx, const Tensor& t, const std::string& what) {
  const Quant& q = t.quant;
  if (q.scale.size() != 1 || q.zero_point.size() != 1)
    ctx.fail(what + " is i8 but has " + std::to_string(q.scale.size()) + " scales and " +
             std::to_string(q.zero_point.size()) +
             " zero points: it needs per-tensor quantisation (one of each)");
  if (!(q.scale[0] > 0.0f) || !std::isfinite(q.scale[0]))
    ctx.fail(what + " has scale " + float_text(q.scale[0]) + ": it must be finite and above 0");
  if (q.zero_point[0] < -128 || q.zero_point[0] > 127)
    ctx.fail(what + " has zero point " + std::to_string(q.zero_point[0]) + ", outside [-128, 127]");
  return {q.scale[0], q.zero_point[0]};
}

std::string quant_text(kernels::QuantParams q) {
  return "scale " + float_text(q.scale) + " zero point " + std::to_string(q.zero_point);
}

}  // namespace

kernels::QuantParams input_quant(const PrepareContext& ctx, size_t i) {
  const Tensor& t = ctx.require_input(i, DType::i8);
  return tensor_quant(ctx, t, "input " + std::to_string(i) + " '" + t.name + "'");
}

kernels::QuantParams output_quant(const PrepareContext& ctx, size_t i) {
  const Tensor& t = ctx.output(i);
  return tensor_quant(ctx, t, "output " + std::to_string(i) + " '" + t.name + "'");
}

void require_quant_kept(const PrepareContext& ctx) {
  const kernels::QuantParams in = input_quant(ctx, 0);
  for (size_t i = 0; i < ctx.node().outputs.size(); ++i) {
    const kernels::QuantParams out = output_quant(ctx, i);
    if (out.scale != in.scale || out.zero_point != in.zero_point)
      ctx.fail("output " + std::to_string(i) + " '" + ctx.output(i).name + "' is quantised with " +
               quant_text(out) + ", input 0 with " + quant_text(in) +
               ": the op keeps its input's quantisation");
  }
}

void require_float_form(const PrepareContext& ctx, const std::string& what) {
  if (!int8_form(ctx)) return;
  ctx.fail("input 0 '" + ctx.input(0).name + "' is i8: " + ctx.node().op + (what.empty() ? "" : " " + what) +
           " has no int8 form (keep it in float between Dequantize and Quantize)");
}

size_t chunk_items(size_t items, size_t threads, size_t align, size_t min_chunk) {
  if (threads <= 1) return items ? items : 1;
  size_t chunk = (items + 4 * threads - 1) / (4 * threads);
  if (chunk < min_chunk) chunk = min_chunk;
  chunk = (chunk + align - 1) / align * align;
  return chunk ? chunk : 1;
}

}  // namespace huddle::engine::ops
