// Elementwise fp32 ops.
//   Add, Sub, Mul, Div: A, B with numpy broadcasting -> Y of the broadcast shape.
//   Relu, Sigmoid, Silu (x * sigmoid(x), which the graph passes fuse), HardSwish: X -> Y. Clip: attrs min,
//   max. HardSigmoid: attrs alpha = 0.2, beta = 0.5: max(0, min(1, alpha x + beta)).
// Unary ops may run in place. All run on the fp32 elementwise kernels
// (Relu as a clamp to [0, inf)), the flat range split over threads.
#include <algorithm>
#include <limits>

#include "engine/ops/common.h"
#include "kernels/f32elementwise/f32elementwise.h"

namespace huddle::engine::ops {
namespace {

constexpr size_t kMaxRank = 8;

// Strides (in elements) of `shape` broadcast to `out` (0 along broadcast dimensions).
std::vector<size_t> broadcast_strides(const Shape& shape, const Shape& out) {
  std::vector<size_t> strides(out.size(), 0);
  size_t stride = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    const size_t d = shape.size() - 1 - i, o = out.size() - 1 - i;
    if (shape[d] != 1) strides[o] = stride;
    stride *= static_cast<size_t>(shape[d]);
  }
  return strides;
}

// Chunks of the flat range start on 64-byte boundaries (of an aligned tensor).
constexpr size_t kChunkAlign = 64 / sizeof(float);

// Add, Mul, Sub or Div on the fp32 elementwise kernels. Each output element is one
// operation on its two inputs, so any split of the range gives the same bits.
class Binary final : public OpKernel {
 public:
  Binary(Shape out, std::vector<size_t> sa, std::vector<size_t> sb, kernels::F32BinaryFn vv,
         kernels::F32BinaryScalarFn vs, kernels::F32BinaryScalarFn sv)
      : out_(std::move(out)),
        sa_(std::move(sa)),
        sb_(std::move(sb)),
        n_(static_cast<size_t>(elements(out_))),
        vv_(vv),
        vs_(vs),
        sv_(sv) {
    contiguous_ =
        out_.empty() || (sa_ == broadcast_strides(out_, out_) && sb_ == broadcast_strides(out_, out_));
  }

  void run(const RunContext& ctx) const override {
    const float* a = ctx.in<float>(0);
    const float* b = ctx.in<float>(1);
    float* y = ctx.out<float>(0);
    const size_t threads = ctx.pool->threads();
    if (contiguous_) {
      ctx.pool->parallel_for(
          n_, chunk_items(n_, threads, kChunkAlign, kMinParallelFloats),
          [&](size_t begin, size_t end) { vv_(end - begin, a + begin, b + begin, y + begin); });
      return;
    }
    // Rows of the innermost dimension, each split off by its index per outer dimension.
    const size_t inner = static_cast<size_t>(out_.back());
    if (inner == 0) return;
    const size_t rows = n_ / inner;
    const size_t min_rows = (kMinParallelFloats + inner - 1) / inner;
    ctx.pool->parallel_for(rows, chunk_items(rows, threads, 1, min_rows),
                           [&](size_t begin, size_t end) { run_rows(begin, end, a, b, y); });
  }

 private:
  // Output rows [r0, r1) of the innermost dimension.
  void run_rows(size_t r0, size_t r1, const float* a, const float* b, float* y) const {
    const size_t rank = out_.size(), inner = static_cast<size_t>(out_[rank - 1]);
    const size_t ia = sa_[rank - 1], ib = sb_[rank - 1];
    size_t index[kMaxRank] = {};
    for (size_t d = rank - 1, r = r0; d-- > 0;) {
      index[d] = r % static_cast<size_t>(out_[d]);
      r /= static_cast<size_t>(out_[d]);
    }
    for (size_t r = r0; r < r1; ++r) {
      size_t oa = 0, ob = 0;
      for (size_t d = 0; d + 1 < rank; ++d) oa += index[d] * sa_[d], ob += index[d] * sb_[d];
      float* dst = y + r * inner;
      if (ia == 1 && ib == 1)
        vv_(inner, a + oa, b + ob, dst);
      else if (ia == 1)
        vs_(inner, a + oa, b[ob], dst);
      else if (ib == 1)
        sv_(inner, b + ob, a[oa], dst);
      else  // both broadcast along the row: one value, repeated
        vs_(1, a + oa, b[ob], dst), std::fill(dst + 1, dst + inner, dst[0]);
      for (size_t d = rank - 1; d-- > 0;) {
        if (++index[d] < static_cast<size_t>(out_[d])) break;
        index[d] = 0;
      }
    }
  }

  Shape out_;
  std::vector<size_t> sa_, sb_;
  size_t n_;
  bool contiguous_;
  kernels::F32BinaryFn vv_;
  kernels::F32BinaryScalarFn vs_, sv_;  // a[i] op s, s op b[i]
};

enum class BinaryOp { add, mul, sub, div };

template <BinaryOp kOp>
std::unique_ptr<OpKernel> prepare_binary(PrepareContext& ctx) {
  const Tensor& a = ctx.require_input(0, DType::f32);
  const Tensor& b = ctx.require_input(1, DType::f32);
  const size_t rank = std::max(a.shape.size(), b.shape.size());
  if (rank > kMaxRank) ctx.fail("rank " + std::to_string(rank) + " is over " + std::to_string(kMaxRank));
  Shape out(rank, 1);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < a.shape.size() ? a.shape[a.shape.size() - 1 - i] : 1;
    const int64_t db = i < b.shape.size() ? b.shape[b.shape.size() - 1 - i] : 1;
    if (da != db && da != 1 && db != 1)
      ctx.fail("shapes " + shape_text(a.shape) + " and " + shape_text(b.shape) + " do not broadcast");
    out[rank - 1 - i] = da == 1 ? db : da;
  }
  ctx.set_output(0, DType::f32, out);
  const auto& uk = kernels::f32elementwise();
  // The vector form, a[i] op s, and s op b[i] (the same as b[i] op s for add and mul).
  constexpr struct {
    kernels::F32BinaryFn kernels::F32ElementwiseUkernel::*vv;
    kernels::F32BinaryScalarFn kernels::F32ElementwiseUkernel::*vs, kernels::F32ElementwiseUkernel::*sv;
  } kForms[] = {
      {&kernels::F32ElementwiseUkernel::add, &kernels::F32ElementwiseUkernel::add_scalar,
       &kernels::F32ElementwiseUkernel::add_scalar},
      {&kernels::F32ElementwiseUkernel::mul, &kernels::F32ElementwiseUkernel::mul_scalar,
       &kernels::F32ElementwiseUkernel::mul_scalar},
      {&kernels::F32ElementwiseUkernel::sub, &kernels::F32ElementwiseUkernel::sub_scalar,
       &kernels::F32ElementwiseUkernel::rsub_scalar},
      {&kernels::F32ElementwiseUkernel::div, &kernels::F32ElementwiseUkernel::div_scalar,
       &kernels::F32ElementwiseUkernel::rdiv_scalar},
  };
  const auto& form = kForms[static_cast<int>(kOp)];
  return std::make_unique<Binary>(out, broadcast_strides(a.shape, out), broadcast_strides(b.shape, out),
                                  uk.*form.vv, uk.*form.vs, uk.*form.sv);
}

// A unary op on the fp32 elementwise kernels: fn(n, x, y, p, q) over chunks of the flat range.
class Unary final : public OpKernel {
 public:
  Unary(size_t n, kernels::F32UnaryFn fn, float p, float q) : n_(n), fn_(fn), p_(p), q_(q) {}
  void run(const RunContext& ctx) const override {
    const float* x = ctx.in<float>(0);
    float* y = ctx.out<float>(0);
    ctx.pool->parallel_for(n_, chunk_items(n_, ctx.pool->threads(), kChunkAlign, kMinParallelFloats),
                           [&](size_t begin, size_t end) { fn_(end - begin, x + begin, y + begin, p_, q_); });
  }

 private:
  size_t n_;
  kernels::F32UnaryFn fn_;
  float p_, q_;
};

std::unique_ptr<OpKernel> make_unary(PrepareContext& ctx, kernels::F32UnaryFn fn, float p = 0, float q = 0) {
  const Tensor& x = ctx.require_input(0, DType::f32);
  ctx.set_output(0, DType::f32, x.shape);
  return std::make_unique<Unary>(static_cast<size_t>(elements(x.shape)), fn, p, q);
}

std::unique_ptr<OpKernel> prepare_relu(PrepareContext& ctx) {
  return make_unary(ctx, kernels::f32elementwise().clamp, 0.0f, std::numeric_limits<float>::infinity());
}

std::unique_ptr<OpKernel> prepare_clip(PrepareContext& ctx) {
  const float inf = std::numeric_limits<float>::infinity();
  const float lo = ctx.node().attr_float("min", -inf), hi = ctx.node().attr_float("max", inf);
  if (!(lo <= hi)) ctx.fail("min is above max");
  return make_unary(ctx, kernels::f32elementwise().clamp, lo, hi);
}

std::unique_ptr<OpKernel> prepare_sigmoid(PrepareContext& ctx) {
  return make_unary(ctx, kernels::f32elementwise().sigmoid);
}

std::unique_ptr<OpKernel> prepare_silu(PrepareContext& ctx) {
  return make_unary(ctx, kernels::f32elementwise().silu);
}

std::unique_ptr<OpKernel> prepare_hard_sigmoid(PrepareContext& ctx) {
  const float alpha = ctx.node().attr_float("alpha", 0.2f), beta = ctx.node().attr_float("beta", 0.5f);
  return make_unary(ctx, kernels::f32elementwise().hard_sigmoid, alpha, beta);
}

std::unique_ptr<OpKernel> prepare_hard_swish(PrepareContext& ctx) {
  return make_unary(ctx, kernels::f32elementwise().hard_swish);
}

}  // namespace

extern const OpDef kAdd = {"Add", 2, 2, 1, false, prepare_binary<BinaryOp::add>};
extern const OpDef kMul = {"Mul", 2, 2, 1, false, prepare_binary<BinaryOp::mul>};
extern const OpDef kSub = {"Sub", 2, 2, 1, false, prepare_binary<BinaryOp::sub>};
extern const OpDef kDiv = {"Div", 2, 2, 1, false, prepare_binary<BinaryOp::div>};
extern const OpDef kRelu = {"Relu", 1, 1, 1, true, prepare_relu};
extern const OpDef kClip = {"Clip", 1, 1, 1, true, prepare_clip};
extern const OpDef kSigmoid = {"Sigmoid", 1, 1, 1, true, prepare_sigmoid};
extern const OpDef kSilu = {"Silu", 1, 1, 1, true, prepare_silu};
extern const OpDef kHardSigmoid = {"HardSigmoid", 1, 1, 1, true, prepare_hard_sigmoid};
extern const OpDef kHardSwish = {"HardSwish", 1, 1, 1, true, prepare_hard_swish};

}  // namespace huddle::engine::ops
