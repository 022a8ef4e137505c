// Quantize and Dequantize (engine/INT8.md), elementwise, any shape:
//   Quantize:   X f32 -> Y i8 of Y's quantisation (per tensor, from the graph):
//               q = round_half_even(x / scale) + zero_point saturated to
//               [-128, 127] (the division in fp32); NaN becomes the zero point.
//   Dequantize: X i8 (per tensor) -> Y f32: scale * (q - zero_point) in fp32.
// The flat range is split over threads (any split gives the same bits).
#include "engine/ops/common.h"
#include "engine/ops/quant.h"

namespace huddle::engine::ops {
namespace {

// Chunks of the flat range start on 64-byte boundaries of the fp32 side.
constexpr size_t kChunkAlign = 64 / sizeof(float);
constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23

// One elementwise conversion From -> To with quantisation q, on n elements.
template <class From, class To, void (*kConvert)(const From*, To*, size_t, TensorQuant)>
class Convert final : public OpKernel {
 public:
  Convert(size_t n, TensorQuant q) : n_(n), q_(q) {}
  void run(const RunContext& ctx) const override {
    const From* x = ctx.in<From>(0);
    To* y = ctx.out<To>(0);
    ctx.pool->parallel_for(
        n_, chunk_items(n_, ctx.pool->threads(), kChunkAlign, kMinParallelFloats),
        [&](size_t begin, size_t end) { kConvert(x + begin, y + begin, end - begin, q_); });
  }

 private:
  size_t n_;
  TensorQuant q_;
};

void quantize(const float* x, int8_t* y, size_t n, TensorQuant q) {
  const float lo = static_cast<float>(-128 - q.zero_point), hi = static_cast<float>(127 - q.zero_point);
  for (size_t i = 0; i < n; ++i) {
    float v = x[i] / q.scale;
    v = v == v ? v : 0.0f;  // NaN
    v = v < lo ? lo : (v > hi ? hi : v);
    // Round half to even: adding and subtracting 1.5 * 2^23 leaves v's
    // integer part, rounded as the FPU rounds (to nearest even), exact for
    // |v| <= 2^22 and v is within [-255, 255] here. Unlike std::nearbyint (a
    // libm call on x86-64 without SSE4.1) the loop vectorises.
    v = (v + kRoundMagic) - kRoundMagic;
    y[i] = static_cast<int8_t>(static_cast<int32_t>(v) + q.zero_point);
  }
}

void dequantize(const int8_t* x, float* y, size_t n, TensorQuant q) {
  for (size_t i = 0; i < n; ++i) y[i] = q.scale * static_cast<float>(int32_t{x[i]} - q.zero_point);
}

std::unique_ptr<OpKernel> prepare_quantize(PrepareContext& ctx) {
  const Tensor& x = ctx.require_input(0, DType::f32);
  ctx.set_output(0, DType::i8, x.shape);
  const TensorQuant q = activation_quant(ctx, ctx.output(0), "output 0");
  return std::make_unique<Convert<float, int8_t, quantize>>(static_cast<size_t>(elements(x.shape)), q);
}

std::unique_ptr<OpKernel> prepare_dequantize(PrepareContext& ctx) {
  const Tensor& x = ctx.require_input(0, DType::i8);
  const TensorQuant q = activation_quant(ctx, x, "input 0");
  ctx.set_output(0, DType::f32, x.shape);
  return std::make_unique<Convert<int8_t, float, dequantize>>(static_cast<size_t>(elements(x.shape)), q);
}

}  // namespace

extern const OpDef kQuantize = {"Quantize", 1, 1, 1, false, prepare_quantize};
extern const OpDef kDequantize = {"Dequantize", 1, 1, 1, false, prepare_dequantize};

}  // namespace huddle::engine::ops
