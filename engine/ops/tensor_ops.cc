// Pooling and shape ops (fp32).
//   GlobalAveragePool: X [N, H, W, C] -> Y [N, 1, 1, C].
//   Reshape: X -> Y of attr shape (one entry may be -1); in place.
//   Softmax: X -> Y, over the last axis (attr axis = -1; only the last axis).
//   ReduceMean: X -> Y, the mean over attr axes (required, distinct, negative
//               counts from the end), attr keepdims = 1 keeps them as size 1.
//               Sums in input order in float, then divides by the count.
// int8 forms (engine/INT8.md): GlobalAveragePool, and ReduceMean over axes
// {1, 2} of a rank-4 tensor, on the int8 global average pooling kernel
// (requantised to Y's quantisation; images split over threads); Reshape moves
// bytes (Y quantised as X). Softmax and ReduceMean over other axes have no int8 form.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "engine/ops/common.h"
#include "kernels/elementwise/pool.h"

namespace huddle::engine::ops {
namespace {

class GlobalAveragePool final : public OpKernel {
 public:
  GlobalAveragePool(size_t n, size_t pixels, size_t c) : n_(n), pixels_(pixels), c_(c) {}
  // Channel ranges (a multiple of 16, per image) are split between threads:
  // each channel's sum runs over the pixels in order whatever the split.
  void run(const RunContext& ctx) const override {
    const float* x = ctx.in<float>(0);
    float* y = ctx.out<float>(0);
    const float inv = 1.0f / static_cast<float>(pixels_);
    // Enough channels per task that its pixels are worth a thread.
    const size_t chunk = chunk_items(c_, ctx.pool->threads(), 16, kMinParallelFloats / pixels_ + 1);
    const size_t per_image = (c_ + chunk - 1) / chunk;
    ctx.pool->parallel_for(n_ * per_image, 1, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        const size_t b = t / per_image, c0 = t % per_image * chunk, c1 = std::min(c0 + chunk, c_);
        float* out = y + b * c_;
        std::fill(out + c0, out + c1, 0.0f);
        for (size_t p = 0; p < pixels_; ++p) {
          const float* in = x + (b * pixels_ + p) * c_;
          for (size_t ch = c0; ch < c1; ++ch) out[ch] += in[ch];
        }
        for (size_t ch = c0; ch < c1; ++ch) out[ch] *= inv;
      }
    });
  }

 private:
  size_t n_, pixels_, c_;
};

// The int8 global average pool: images are split between threads.
class QGlobalAveragePool final : public OpKernel {
 public:
  QGlobalAveragePool(size_t n, size_t pixels, size_t c, const kernels::QAvgPoolParams& p)
      : n_(n), pixels_(pixels), c_(c), p_(p) {}
  void run(const RunContext& ctx) const override {
    const int8_t* x = ctx.in<int8_t>(0);
    int8_t* y = ctx.out<int8_t>(0);
    if (c_ == 0) return;
    const kernels::QGlobalAvgPoolFn fn = kernels::qs8_pool().global_avgpool;
    const size_t min_images = kMinParallelFloats / (pixels_ * c_) + 1;
    ctx.pool->parallel_for(n_, chunk_items(n_, ctx.pool->threads(), 1, min_images),
                           [&](size_t begin, size_t end) {
                             fn(end - begin, pixels_, c_, x + begin * pixels_ * c_, y + begin * c_, p_);
                           });
  }

 private:
  size_t n_, pixels_, c_;
  kernels::QAvgPoolParams p_;
};

// The average over the pixels of the rank-4 input 0 as an output of shape `out`.
std::unique_ptr<OpKernel> make_global_average_pool(PrepareContext& ctx, Shape out) {
  const Tensor& x = ctx.input(0);
  if (x.shape[1] * x.shape[2] == 0) ctx.fail("input " + shape_text(x.shape) + " has no pixels");
  const size_t n = static_cast<size_t>(x.shape[0]), pixels = static_cast<size_t>(x.shape[1] * x.shape[2]),
               c = static_cast<size_t>(x.shape[3]);
  ctx.set_output(0, x.dtype, std::move(out));
  if (x.dtype == DType::f32) return std::make_unique<GlobalAveragePool>(n, pixels, c);
  const auto p = kernels::qs8_avgpool_params(input_quant(ctx, 0), output_quant(ctx, 0), false);
  return std::make_unique<QGlobalAveragePool>(n, pixels, c, p);
}

std::unique_ptr<OpKernel> prepare_global_average_pool(PrepareContext& ctx) {
  const Tensor& x = ctx.require_input(0, int8_form(ctx) ? DType::i8 : DType::f32, 4);
  return make_global_average_pool(ctx, {x.shape[0], 1, 1, x.shape[3]});
}

class Copy final : public OpKernel {
 public:
  explicit Copy(size_t bytes) : bytes_(bytes) {}
  void run(const RunContext& ctx) const override {
    if (ctx.inputs[0] != ctx.outputs[0]) std::memmove(ctx.outputs[0], ctx.inputs[0], bytes_);
  }

 private:
  size_t bytes_;
};

std::unique_ptr<OpKernel> prepare_reshape(PrepareContext& ctx) {
  const Tensor& x = ctx.input(0);
  Shape shape = ctx.node().attr_ints("shape");
  int64_t known = 1;
  int unknown = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (unknown >= 0) ctx.fail("attribute 'shape' has more than one -1");
      unknown = static_cast<int>(i);
    } else if (shape[i] < 0) {
      ctx.fail("attribute 'shape' has " + std::to_string(shape[i]));
    } else {
      known *= shape[i];
    }
  }
  const int64_t n = elements(x.shape);
  if (unknown >= 0) {
    if (known == 0 || n % known != 0)
      ctx.fail("cannot reshape " + shape_text(x.shape) + " to " + shape_text(shape));
    shape[static_cast<size_t>(unknown)] = n / known;
  }
  if (elements(shape) != n) ctx.fail("cannot reshape " + shape_text(x.shape) + " to " + shape_text(shape));
  if (x.dtype == DType::i8) require_quant_kept(ctx);
  ctx.set_output(0, x.dtype, shape);
  return std::make_unique<Copy>(static_cast<size_t>(n) * dtype_bytes(x.dtype));
}

class Softmax final : public OpKernel {
 public:
  Softmax(size_t rows, size_t cols) : rows_(rows), cols_(cols) {}
  void run(const RunContext& ctx) const override {
    const float* x = ctx.in<float>(0);
    float* y = ctx.out<float>(0);
    for (size_t r = 0; r < rows_; ++r) {
      const float* in = x + r * cols_;
      float* out = y + r * cols_;
      const float top = *std::max_element(in, in + cols_);
      float sum = 0.0f;
      for (size_t i = 0; i < cols_; ++i) sum += out[i] = std::exp(in[i] - top);
      const float inv = 1.0f / sum;
      for (size_t i = 0; i < cols_; ++i) out[i] *= inv;
    }
  }

 private:
  size_t rows_, cols_;
};

std::unique_ptr<OpKernel> prepare_softmax(PrepareContext& ctx) {
  require_float_form(ctx);
  const Tensor& x = ctx.require_input(0, DType::f32);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  const int64_t axis = ctx.node().attr_int("axis", -1);
  if (rank == 0 || (axis != -1 && axis != rank - 1)) ctx.fail("softmax runs over the last axis only");
  const int64_t cols = x.shape.back();
  if (cols == 0) ctx.fail("the last axis is empty");
  ctx.set_output(0, DType::f32, x.shape);
  return std::make_unique<Softmax>(static_cast<size_t>(elements(x.shape) / cols), static_cast<size_t>(cols));
}

constexpr size_t kMaxReduceRank = 8;

class ReduceMean final : public OpKernel {
 public:
  // in: the input shape; reduced[i]: axis i is averaged over.
  ReduceMean(Shape in, std::vector<bool> reduced) : in_(std::move(in)) {
    // Output strides per input axis (0 for a reduced axis).
    size_t stride = 1;
    out_stride_.assign(in_.size(), 0);
    count_ = 1;
    for (size_t i = in_.size(); i-- > 0;) {
      if (reduced[i]) {
        count_ *= static_cast<size_t>(in_[i]);
      } else {
        out_stride_[i] = stride;
        stride *= static_cast<size_t>(in_[i]);
      }
    }
    out_elements_ = stride;
  }
  void run(const RunContext& ctx) const override {
    const float* x = ctx.in<float>(0);
    float* y = ctx.out<float>(0);
    std::fill(y, y + out_elements_, 0.0f);
    const size_t n = static_cast<size_t>(elements(in_)), rank = in_.size();
    std::array<int64_t, kMaxReduceRank> index{};
    size_t out = 0;
    for (size_t e = 0; e < n; ++e) {
      y[out] += x[e];
      for (size_t d = rank; d-- > 0;) {  // next index, keeping `out` in step
        out += out_stride_[d];
        if (++index[d] < in_[d]) break;
        out -= out_stride_[d] * static_cast<size_t>(in_[d]);
        index[d] = 0;
      }
    }
    for (size_t i = 0; i < out_elements_; ++i) y[i] /= static_cast<float>(count_);
  }

 private:
  Shape in_;
  std::vector<size_t> out_stride_;
  size_t count_ = 1, out_elements_ = 1;
};

std::unique_ptr<OpKernel> prepare_reduce_mean(PrepareContext& ctx) {
  const Tensor& x = ctx.require_input(0, int8_form(ctx) ? DType::i8 : DType::f32);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (x.shape.size() > kMaxReduceRank) ctx.fail("rank " + std::to_string(rank) + " is over 8");
  if (!ctx.node().has_attr("axes")) ctx.fail("attribute 'axes' is missing");
  std::vector<bool> reduced(x.shape.size(), false);
  for (int64_t a : ctx.node().attr_ints("axes")) {
    const int64_t axis = a < 0 ? a + rank : a;
    if (axis < 0 || axis >= rank)
      ctx.fail("axis " + std::to_string(a) + " is outside rank " + std::to_string(rank));
    if (reduced[static_cast<size_t>(axis)]) ctx.fail("axis " + std::to_string(a) + " is given twice");
    reduced[static_cast<size_t>(axis)] = true;
  }
  const int64_t keepdims = ctx.node().attr_int("keepdims", 1);
  if (keepdims != 0 && keepdims != 1)
    ctx.fail("attribute 'keepdims' has " + std::to_string(keepdims) + ", not 0 or 1");
  Shape out;
  for (size_t i = 0; i < x.shape.size(); ++i) {
    if (reduced[i] && x.shape[i] == 0) ctx.fail("axis " + std::to_string(i) + " to average over is empty");
    if (!reduced[i])
      out.push_back(x.shape[i]);
    else if (keepdims)
      out.push_back(1);
  }
  if (x.dtype == DType::i8) {
    if (reduced != std::vector<bool>{false, true, true, false})
      require_float_form(ctx, "over axes other than {1, 2} of a rank-4 tensor");
    return make_global_average_pool(ctx, out);
  }
  ctx.set_output(0, DType::f32, out);
  return std::make_unique<ReduceMean>(x.shape, std::move(reduced));
}

}  // namespace

extern const OpDef kReduceMean = {"ReduceMean", 1, 1, 1, false, prepare_reduce_mean};
extern const OpDef kGlobalAveragePool = {"GlobalAveragePool", 1, 1, 1, false, prepare_global_average_pool};
extern const OpDef kReshape = {"Reshape", 1, 1, 1, true, prepare_reshape};
extern const OpDef kSoftmax = {"Softmax", 1, 1, 1, true, prepare_softmax};

}  // namespace huddle::engine::ops
