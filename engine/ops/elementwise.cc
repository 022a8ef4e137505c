// Elementwise fp32 ops.
//   Add, Sub, Mul, Div: A, B with numpy broadcasting -> Y of the broadcast shape.
//   Relu, Sigmoid, HardSwish: X -> Y. Clip: attrs min, max. HardSigmoid:
//   attrs alpha = 0.2, beta = 0.5: max(0, min(1, alpha x + beta)).
// Unary ops may run in place.
#include <algorithm>
#include <cmath>
#include <limits>

#include "engine/ops/common.h"

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

template <class Fn>
class Binary final : public OpKernel {
 public:
  Binary(Shape out, std::vector<size_t> sa, std::vector<size_t> sb)
      : out_(std::move(out)),
        sa_(std::move(sa)),
        sb_(std::move(sb)),
        n_(static_cast<size_t>(elements(out_))) {}

  void run(const RunContext& ctx) const override {
    const float* a = ctx.in<float>(0);
    const float* b = ctx.in<float>(1);
    float* y = ctx.out<float>(0);
    const Fn fn;
    const size_t rank = out_.size();
    if (rank == 0 || (sa_ == contiguous() && sb_ == contiguous())) {
      for (size_t i = 0; i < n_; ++i) y[i] = fn(a[i], b[i]);
      return;
    }
    // Walk the output in order with one index per dimension; the innermost
    // dimension is a tight loop.
    size_t index[kMaxRank] = {};
    const size_t inner = static_cast<size_t>(out_[rank - 1]);
    const size_t ia = sa_[rank - 1], ib = sb_[rank - 1];
    for (size_t done = 0; done < n_; done += inner) {
      size_t oa = 0, ob = 0;
      for (size_t d = 0; d + 1 < rank; ++d) oa += index[d] * sa_[d], ob += index[d] * sb_[d];
      for (size_t i = 0; i < inner; ++i) y[done + i] = fn(a[oa + i * ia], b[ob + i * ib]);
      for (size_t d = rank - 1; d-- > 0;) {
        if (++index[d] < static_cast<size_t>(out_[d])) break;
        index[d] = 0;
      }
    }
  }

 private:
  std::vector<size_t> contiguous() const { return broadcast_strides(out_, out_); }
  Shape out_;
  std::vector<size_t> sa_, sb_;
  size_t n_;
};

struct AddFn {
  float operator()(float a, float b) const { return a + b; }
};
struct MulFn {
  float operator()(float a, float b) const { return a * b; }
};
struct SubFn {
  float operator()(float a, float b) const { return a - b; }
};
struct DivFn {
  float operator()(float a, float b) const { return a / b; }
};

template <class Fn>
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
  return std::make_unique<Binary<Fn>>(out, broadcast_strides(a.shape, out), broadcast_strides(b.shape, out));
}

template <class Fn>
class Unary final : public OpKernel {
 public:
  Unary(size_t n, Fn fn) : n_(n), fn_(fn) {}
  void run(const RunContext& ctx) const override {
    const float* x = ctx.in<float>(0);
    float* y = ctx.out<float>(0);
    for (size_t i = 0; i < n_; ++i) y[i] = fn_(x[i]);
  }

 private:
  size_t n_;
  Fn fn_;
};

template <class Fn>
std::unique_ptr<OpKernel> make_unary(PrepareContext& ctx, Fn fn) {
  const Tensor& x = ctx.require_input(0, DType::f32);
  ctx.set_output(0, DType::f32, x.shape);
  return std::make_unique<Unary<Fn>>(static_cast<size_t>(elements(x.shape)), fn);
}

std::unique_ptr<OpKernel> prepare_relu(PrepareContext& ctx) {
  return make_unary(ctx, [](float v) { return v > 0.0f ? v : 0.0f; });
}

std::unique_ptr<OpKernel> prepare_clip(PrepareContext& ctx) {
  const float inf = std::numeric_limits<float>::infinity();
  const float lo = ctx.node().attr_float("min", -inf), hi = ctx.node().attr_float("max", inf);
  if (!(lo <= hi)) ctx.fail("min is above max");
  return make_unary(ctx, [lo, hi](float v) { return std::min(std::max(v, lo), hi); });
}

std::unique_ptr<OpKernel> prepare_sigmoid(PrepareContext& ctx) {
  return make_unary(ctx, [](float v) { return 1.0f / (1.0f + std::exp(-v)); });
}

std::unique_ptr<OpKernel> prepare_hard_sigmoid(PrepareContext& ctx) {
  const float alpha = ctx.node().attr_float("alpha", 0.2f), beta = ctx.node().attr_float("beta", 0.5f);
  return make_unary(ctx, [alpha, beta](float v) { return std::min(std::max(alpha * v + beta, 0.0f), 1.0f); });
}

std::unique_ptr<OpKernel> prepare_hard_swish(PrepareContext& ctx) {
  return make_unary(ctx, [](float v) { return v * std::min(std::max(v + 3.0f, 0.0f), 6.0f) / 6.0f; });
}

}  // namespace

extern const OpDef kAdd = {"Add", 2, 2, 1, false, prepare_binary<AddFn>};
extern const OpDef kMul = {"Mul", 2, 2, 1, false, prepare_binary<MulFn>};
extern const OpDef kSub = {"Sub", 2, 2, 1, false, prepare_binary<SubFn>};
extern const OpDef kDiv = {"Div", 2, 2, 1, false, prepare_binary<DivFn>};
extern const OpDef kRelu = {"Relu", 1, 1, 1, true, prepare_relu};
extern const OpDef kClip = {"Clip", 1, 1, 1, true, prepare_clip};
extern const OpDef kSigmoid = {"Sigmoid", 1, 1, 1, true, prepare_sigmoid};
extern const OpDef kHardSigmoid = {"HardSigmoid", 1, 1, 1, true, prepare_hard_sigmoid};
extern const OpDef kHardSwish = {"HardSwish", 1, 1, 1, true, prepare_hard_swish};

}  // namespace huddle::engine::ops
