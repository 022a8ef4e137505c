// Pooling and shape ops (fp32).
//   GlobalAveragePool: X [N, H, W, C] -> Y [N, 1, 1, C].
//   Reshape: X -> Y of attr shape (one entry may be -1); in place.
//   Softmax: X -> Y, over the last axis (attr axis = -1; only the last axis).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/ops/common.h"

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

std::unique_ptr<OpKernel> prepare_global_average_pool(PrepareContext& ctx) {
  const Tensor& x = ctx.require_input(0, DType::f32, 4);
  if (x.shape[1] * x.shape[2] == 0) ctx.fail("input " + shape_text(x.shape) + " has no pixels");
  ctx.set_output(0, DType::f32, {x.shape[0], 1, 1, x.shape[3]});
  return std::make_unique<GlobalAveragePool>(static_cast<size_t>(x.shape[0]),
                                             static_cast<size_t>(x.shape[1] * x.shape[2]),
                                             static_cast<size_t>(x.shape[3]));
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
  const Tensor& x = ctx.require_input(0, DType::f32);
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  const int64_t axis = ctx.node().attr_int("axis", -1);
  if (rank == 0 || (axis != -1 && axis != rank - 1)) ctx.fail("softmax runs over the last axis only");
  const int64_t cols = x.shape.back();
  if (cols == 0) ctx.fail("the last axis is empty");
  ctx.set_output(0, DType::f32, x.shape);
  return std::make_unique<Softmax>(static_cast<size_t>(elements(x.shape) / cols), static_cast<size_t>(cols));
}

}  // namespace

extern const OpDef kGlobalAveragePool = {"GlobalAveragePool", 1, 1, 1, false, prepare_global_average_pool};
extern const OpDef kReshape = {"Reshape", 1, 1, 1, true, prepare_reshape};
extern const OpDef kSoftmax = {"Softmax", 1, 1, 1, true, prepare_softmax};

}  // namespace huddle::engine::ops
