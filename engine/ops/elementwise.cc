// Elementwise fp32 ops.
//   Add, Sub, Mul, Div: A, B with numpy broadcasting -> Y of the broadcast shape.
//   Relu, Sigmoid, Silu (x * sigmoid(x), which the graph passes fuse), HardSwish: X -> Y. Clip: attrs min,
//   max. HardSigmoid: attrs alpha = 0.2, beta = 0.5: max(0, min(1, alpha x + beta)). LeakyRelu: attr
//   alpha = 0.01: x < 0 ? alpha x : x.
// Unary ops may run in place. All run on the fp32 elementwise kernels
// (Relu as a clamp to [0, inf)), the flat range split over threads.
//
// int8 forms (engine/INT8.md), selected by an i8 input 0, each output
// requantised to the quantisation its producer gave it:
//   Add, Sub, Mul: A, B i8 -> Y i8 on the int8 elementwise kernels: same shapes
//   (the flat range split over threads), one operand a scalar (likewise), or a
//   vector along the last dim (rows split); other broadcasts one element at a
//   time (qs8_add_one / qs8_mul_one). Sub is Add with B's multiplier negated.
//   Div has no int8 form.
//   The unary ops: X i8 -> Y i8 through a 256-entry table of the fp32 kernel
//   the fp32 op runs, applied to every int8 value of X (so both forms compute
//   the same function).
#include <algorithm>
#include <limits>

#include "engine/ops/common.h"
#include "kernels/elementwise/elementwise.h"
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
constexpr size_t kQChunkAlign = 64 / sizeof(int8_t);

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

// The shape a and b broadcast to, or fails naming both.
Shape broadcast_shape(const PrepareContext& ctx, const Tensor& a, const Tensor& b) {
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
  return out;
}

// How an int8 binary op walks its operands: in every form but `general`, the
// kernels' first operand (input 0, or input 1 when exchanged) has the output's shape.
enum class QBroadcast { same, scalar, vector, general };

// Add, Sub or Mul on int8: see the file comment. Each output element is one
// operation on its two inputs, so any split gives the same bits.
class QBinary final : public OpKernel {
 public:
  // exchanged: operand 0 of the kernels is input 1 (with p already for that order).
  QBinary(Shape out, std::vector<size_t> sa, std::vector<size_t> sb, QBroadcast form, bool exchanged,
          kernels::QBinaryFn vv, kernels::QBinaryScalarFn vs,
          int8_t (*one)(int8_t, int8_t, const kernels::QBinaryParams&), const kernels::QBinaryParams& p)
      : out_(std::move(out)),
        sa_(std::move(sa)),
        sb_(std::move(sb)),
        n_(static_cast<size_t>(elements(out_))),
        form_(form),
        exchanged_(exchanged),
        vv_(vv),
        vs_(vs),
        one_(one),
        p_(p) {}

  void run(const RunContext& ctx) const override {
    if (n_ == 0) return;
    const int8_t* a = ctx.in<int8_t>(exchanged_ ? 1 : 0);
    const int8_t* b = ctx.in<int8_t>(exchanged_ ? 0 : 1);
    int8_t* y = ctx.out<int8_t>(0);
    const size_t threads = ctx.pool->threads();
    if (form_ == QBroadcast::vector) {
      const size_t channels = static_cast<size_t>(out_.back()), rows = n_ / channels;
      const size_t min_rows = kMinParallelFloats / channels + 1;
      ctx.pool->parallel_for(rows, chunk_items(rows, threads, 1, min_rows), [&](size_t begin, size_t end) {
        vv_(end - begin, channels, a + begin * channels, b, 0, y + begin * channels, p_);
      });
      return;
    }
    ctx.pool->parallel_for(n_, chunk_items(n_, threads, kQChunkAlign, kMinParallelFloats),
                           [&](size_t begin, size_t end) {
                             const size_t len = end - begin;
                             if (form_ == QBroadcast::same)
                               vv_(1, len, a + begin, b + begin, len, y + begin, p_);
                             else if (form_ == QBroadcast::scalar)
                               vs_(len, a + begin, b[0], y + begin, p_);
                             else
                               run_general(begin, end, a, b, y);
                           });
  }

 private:
  // Output elements [begin, end), one at a time through the broadcast strides.
  void run_general(size_t begin, size_t end, const int8_t* a, const int8_t* b, int8_t* y) const {
    const size_t rank = out_.size();
    size_t index[kMaxRank] = {}, oa = 0, ob = 0;
    for (size_t d = rank, i = begin; d-- > 0;) {
      index[d] = i % static_cast<size_t>(out_[d]);
      i /= static_cast<size_t>(out_[d]);
      oa += index[d] * sa_[d], ob += index[d] * sb_[d];
    }
    for (size_t i = begin; i < end; ++i) {
      y[i] = one_(a[oa], b[ob], p_);
      for (size_t d = rank; d-- > 0;) {  // next index, keeping oa and ob in step
        oa += sa_[d], ob += sb_[d];
        if (++index[d] < static_cast<size_t>(out_[d])) break;
        oa -= sa_[d] * index[d], ob -= sb_[d] * index[d];
        index[d] = 0;
      }
    }
  }

  Shape out_;
  std::vector<size_t> sa_, sb_;
  size_t n_;
  QBroadcast form_;
  bool exchanged_;
  kernels::QBinaryFn vv_;
  kernels::QBinaryScalarFn vs_;
  int8_t (*one_)(int8_t, int8_t, const kernels::QBinaryParams&);
  kernels::QBinaryParams p_;
};

// The broadcast form of a op b with output shape `out`; sets *exchange when it
// needs b as the kernels' first operand.
QBroadcast broadcast_form(const Shape& a, const Shape& b, const Shape& out, bool* exchange) {
  const int64_t n = elements(out), na = elements(a), nb = elements(b);
  *exchange = false;
  if (na == n && nb == n) return QBroadcast::same;
  for (const bool swap : {false, true}) {
    const Shape& other = swap ? a : b;
    const int64_t n_other = swap ? na : nb;
    if ((swap ? nb : na) != n) continue;
    *exchange = swap;
    if (n_other == 1) return QBroadcast::scalar;
    // A per-last-dim vector: its last dim is the output's, every other dim 1.
    if (!other.empty() && other.back() == out.back() && n_other == out.back()) return QBroadcast::vector;
  }
  *exchange = false;
  return QBroadcast::general;
}

// Add, Sub or Mul of int8 tensors (kOp is not div: Div has no int8 form).
template <BinaryOp kOp>
std::unique_ptr<OpKernel> prepare_qbinary(PrepareContext& ctx) {
  if (kOp == BinaryOp::div) require_float_form(ctx);
  const kernels::QuantParams qa = input_quant(ctx, 0), qb = input_quant(ctx, 1), qy = output_quant(ctx, 0);
  const Tensor &a = ctx.input(0), &b = ctx.input(1);
  const Shape out = broadcast_shape(ctx, a, b);
  ctx.set_output(0, DType::i8, out);
  constexpr bool kMul = kOp == BinaryOp::mul;
  kernels::QBinaryParams p = kMul ? kernels::qs8_mul_params(qa, qb, qy) : kernels::qs8_add_params(qa, qb, qy);
  if (kOp == BinaryOp::sub) p.b_multiplier = -p.b_multiplier;
  bool exchange = false;
  const QBroadcast form = broadcast_form(a.shape, b.shape, out, &exchange);
  if (exchange) {  // b op a: the same operation with the operands' parameters exchanged
    std::swap(p.a_zero_point, p.b_zero_point);
    if (!kMul) std::swap(p.a_multiplier, p.b_multiplier);
  }
  const auto& uk = kernels::qs8_elementwise();
  return std::make_unique<QBinary>(out, broadcast_strides(a.shape, out), broadcast_strides(b.shape, out),
                                   form, exchange, kMul ? uk.mul : uk.add,
                                   kMul ? uk.mul_scalar : uk.add_scalar,
                                   kMul ? kernels::qs8_mul_one : kernels::qs8_add_one, p);
}

template <BinaryOp kOp>
std::unique_ptr<OpKernel> prepare_binary(PrepareContext& ctx) {
  if (int8_form(ctx)) return prepare_qbinary<kOp>(ctx);
  const Tensor& a = ctx.require_input(0, DType::f32);
  const Tensor& b = ctx.require_input(1, DType::f32);
  const Shape out = broadcast_shape(ctx, a, b);
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

// A unary op on int8 through its 256-entry table, over chunks of the flat range.
class QLut final : public OpKernel {
 public:
  QLut(size_t n, const int8_t* table) : n_(n) { std::copy_n(table, 256, table_); }
  void run(const RunContext& ctx) const override {
    const int8_t* x = ctx.in<int8_t>(0);
    int8_t* y = ctx.out<int8_t>(0);
    const kernels::QLutFn apply = kernels::x8_lut().apply;
    ctx.pool->parallel_for(
        n_, chunk_items(n_, ctx.pool->threads(), kQChunkAlign, kMinParallelFloats),
        [&](size_t begin, size_t end) { apply(end - begin, x + begin, y + begin, table_); });
  }

 private:
  size_t n_;
  int8_t table_[256];
};

// The int8 form of the unary op whose fp32 form runs fn(n, x, y, p, q): its
// table holds fn of every int8 value of X, requantised to Y.
std::unique_ptr<OpKernel> make_qunary(PrepareContext& ctx, kernels::F32UnaryFn fn, float p, float q) {
  const kernels::QuantParams qx = input_quant(ctx, 0), qy = output_quant(ctx, 0);
  const Tensor& x = ctx.input(0);
  ctx.set_output(0, DType::i8, x.shape);
  int8_t table[256];
  kernels::qs8_lut_build(
      qx, qy,
      [&](float v) {
        float r;
        fn(1, &v, &r, p, q);
        return r;
      },
      table);
  return std::make_unique<QLut>(static_cast<size_t>(elements(x.shape)), table);
}

std::unique_ptr<OpKernel> make_unary(PrepareContext& ctx, kernels::F32UnaryFn fn, float p = 0, float q = 0) {
  if (int8_form(ctx)) return make_qunary(ctx, fn, p, q);
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

std::unique_ptr<OpKernel> prepare_leaky_relu(PrepareContext& ctx) {
  return make_unary(ctx, kernels::f32elementwise().leaky_relu, ctx.node().attr_float("alpha", 0.01f));
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
extern const OpDef kLeakyRelu = {"LeakyRelu", 1, 1, 1, true, prepare_leaky_relu};

}  // namespace huddle::engine::ops
