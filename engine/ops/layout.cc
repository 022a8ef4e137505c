// Data movement ops (fp32, any rank up to 8). Axes count in the engine's
// layout (NHWC for images); a negative axis counts from the end.
//   Concat: X0, X1, ... (1 to 64 inputs, same rank, equal dims but `axis`)
//           -> Y, the inputs one after another along attr axis (required).
//   Split: X -> Y0, Y1, ... (one or more outputs) along attr axis = 0, of
//          attr split sizes (one per output, summing to the axis' length);
//          without split: equal parts of ceil(len / outputs), the last one
//          smaller (ONNX opset 18), every part non-empty.
//   Transpose: X -> Y with Y.shape[i] = X.shape[perm[i]], attr perm a
//              permutation of 0 .. rank-1 (default: reversed dims).
//   Slice: X -> Y; attrs starts, ends (required), axes (default 0 .. len-1),
//          steps (default 1; only steps >= 1, no negative steps). ONNX
//          clamping: a negative start / end adds the axis length, then start
//          and end clamp to [0, len] (so INT64_MAX means "to the end");
//          the axis keeps ceil((end - start) / step) elements (0 if end <= start).
//   Pad: X -> Y, attr pads = [begin_0 .. begin_{r-1}, end_0 .. end_{r-1}]
//        (ONNX order, each >= 0: no cropping), attr mode = "constant" (attr
//        value = 0), "reflect" (mirror without repeating the edge: pads below
//        the axis length) or "edge" (repeat the edge element).
// int8 forms (engine/INT8.md): the same ops on i8 tensors (the kernels are
// written once per element type). Split, Transpose, Slice and Pad keep X's
// quantisation (every output must be quantised alike; Pad's constant value is
// quantised with it); Concat rescales each input to Y's quantisation (a copy
// when they agree) on the int8 elementwise kernels.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "engine/ops/common.h"

namespace huddle::engine::ops {
namespace {

constexpr size_t kMaxRank = 8;
constexpr size_t kMaxConcatInputs = 64;  // Concat's OpDef::max_inputs

template <class T>
void copy_elements(T* dst, const T* src, size_t n) {
  if (n) std::memcpy(dst, src, n * sizeof(T));
}

// Dense strides (in elements) of `shape`.
std::vector<int64_t> dense_strides(const Shape& shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;) s[d - 1] = s[d] * shape[d];
  return s;
}

// `axis` in [-rank, rank) as an index, or fails naming the attribute.
size_t axis_index(const PrepareContext& ctx, const char* attr, int64_t axis, size_t rank) {
  const int64_t r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r)
    ctx.fail(std::string("attribute '") + attr + "' has " + std::to_string(axis) + ", outside [" +
             std::to_string(-r) + ", " + std::to_string(r - 1) + "] for rank " + std::to_string(rank));
  return static_cast<size_t>(axis < 0 ? axis + r : axis);
}

// Input i: f32, or i8 when input 0 is, of rank at most kMaxRank.
const Tensor& require_rank(const PrepareContext& ctx, size_t i) {
  const Tensor& x = ctx.require_input(i, int8_form(ctx) ? DType::i8 : DType::f32);
  if (x.shape.size() > kMaxRank)
    ctx.fail("input " + std::to_string(i) + " has rank " + std::to_string(x.shape.size()) + ", over " +
             std::to_string(kMaxRank));
  return x;
}

// Input 0 of an op that moves its elements: as require_rank, and when i8,
// every output quantised as it is.
const Tensor& require_moved(const PrepareContext& ctx) {
  const Tensor& x = require_rank(ctx, 0);
  if (x.dtype == DType::i8) require_quant_kept(ctx);
  return x;
}

// ---------------------------------------------------------------------------
// Concat and Split: [outer][axis * inner] rows, one chunk per input / output.

class Concat final : public OpKernel {
 public:
  Concat(size_t outer, std::vector<size_t> chunks, bool last_axis)
      : outer_(outer), chunks_(std::move(chunks)), last_axis_(last_axis) {
    row_ = std::accumulate(chunks_.begin(), chunks_.end(), size_t{0});
  }
  // Outer indices are split between threads (each copies its rows of every input).
  void run(const RunContext& ctx) const override {
    float* y = ctx.out<float>(0);
    if (row_ == 0) return;
    const size_t min_outer = kMinParallelFloats / row_ + 1;
    ctx.pool->parallel_for(outer_, chunk_items(outer_, ctx.pool->threads(), 1, min_outer),
                           [&](size_t begin, size_t end) { copy(ctx, begin, end, y); });
  }

 private:
  // Outer indices [o0, o1) of every input.
  void copy(const RunContext& ctx, size_t o0, size_t o1, float* y) const {
    size_t offset = 0;
    for (size_t i = 0; i < chunks_.size(); ++i) {
      const float* x = ctx.in<float>(i);
      const size_t k = chunks_[i];
      if (k == 0) continue;
      if (last_axis_ && k <= 16) {  // channels: short copies, no memcpy call per pixel
        for (size_t o = o0; o < o1; ++o) {
          const float* src = x + o * k;
          float* dst = y + o * row_ + offset;
          for (size_t j = 0; j < k; ++j) dst[j] = src[j];
        }
      } else if (outer_ == 1) {
        copy_elements(y + offset, x, k);
      } else {
        for (size_t o = o0; o < o1; ++o) copy_elements(y + o * row_ + offset, x + o * k, k);
      }
      offset += k;
    }
  }

  size_t outer_;
  std::vector<size_t> chunks_;  // elements per outer index, per input
  bool last_axis_;
  size_t row_;
};

// Concat on int8: each outer index's rows of every input rescaled (or copied)
// to Y's quantisation by qs8_concat_channels, outer indices split between threads.
class QConcat final : public OpKernel {
 public:
  QConcat(size_t outer, std::vector<size_t> chunks, std::vector<kernels::QuantParams> quants,
          kernels::QuantParams y_quant)
      : outer_(outer), chunks_(std::move(chunks)), quants_(std::move(quants)), y_quant_(y_quant) {
    row_ = std::accumulate(chunks_.begin(), chunks_.end(), size_t{0});
  }
  void run(const RunContext& ctx) const override {
    int8_t* y = ctx.out<int8_t>(0);
    if (row_ == 0) return;
    const size_t min_outer = kMinParallelFloats / row_ + 1;
    ctx.pool->parallel_for(
        outer_, chunk_items(outer_, ctx.pool->threads(), 1, min_outer), [&](size_t begin, size_t end) {
          kernels::QConcatInput in[kMaxConcatInputs];
          size_t count = 0;  // the non-empty inputs
          for (size_t i = 0; i < chunks_.size(); ++i)
            if (chunks_[i]) in[count++] = {ctx.in<int8_t>(i) + begin * chunks_[i], chunks_[i], quants_[i]};
          kernels::qs8_concat_channels(kernels::qs8_elementwise(), end - begin, count, in, y + begin * row_,
                                       y_quant_);
        });
  }

 private:
  size_t outer_;
  std::vector<size_t> chunks_;  // elements per outer index, per input
  std::vector<kernels::QuantParams> quants_;
  kernels::QuantParams y_quant_;
  size_t row_;
};

std::unique_ptr<OpKernel> prepare_concat(PrepareContext& ctx) {
  const Tensor& x0 = require_rank(ctx, 0);
  if (x0.shape.empty()) ctx.fail("input 0 is a scalar: Concat needs rank >= 1");
  if (!ctx.node().has_attr("axis")) ctx.fail("attribute 'axis' is missing");
  const size_t rank = x0.shape.size();
  const size_t axis = axis_index(ctx, "axis", ctx.node().attr_int("axis", 0), rank);
  Shape out = x0.shape;
  out[axis] = 0;
  int64_t inner = 1, outer = 1;
  for (size_t d = 0; d < axis; ++d) outer *= x0.shape[d];
  for (size_t d = axis + 1; d < rank; ++d) inner *= x0.shape[d];
  std::vector<size_t> chunks;
  for (size_t i = 0; i < ctx.inputs(); ++i) {
    const Tensor& x = require_rank(ctx, i);
    bool fits = x.shape.size() == rank;
    for (size_t d = 0; fits && d < rank; ++d) fits = d == axis || x.shape[d] == x0.shape[d];
    if (!fits)
      ctx.fail("input " + std::to_string(i) + " " + shape_text(x.shape) + " does not fit input 0 " +
               shape_text(x0.shape) + " for axis " + std::to_string(axis));
    out[axis] += x.shape[axis];
    chunks.push_back(static_cast<size_t>(x.shape[axis] * inner));
  }
  ctx.set_output(0, x0.dtype, out);
  if (x0.dtype == DType::i8) {
    std::vector<kernels::QuantParams> quants;
    for (size_t i = 0; i < ctx.inputs(); ++i) quants.push_back(input_quant(ctx, i));
    return std::make_unique<QConcat>(static_cast<size_t>(outer), std::move(chunks), std::move(quants),
                                     output_quant(ctx, 0));
  }
  return std::make_unique<Concat>(static_cast<size_t>(outer), std::move(chunks), axis == rank - 1);
}

template <class T>
class Split final : public OpKernel {
 public:
  Split(size_t outer, std::vector<size_t> chunks) : outer_(outer), chunks_(std::move(chunks)) {
    row_ = std::accumulate(chunks_.begin(), chunks_.end(), size_t{0});
  }
  void run(const RunContext& ctx) const override {
    const T* x = ctx.in<T>(0);
    size_t offset = 0;
    for (size_t i = 0; i < chunks_.size(); ++i) {
      T* y = ctx.out<T>(i);
      const size_t k = chunks_[i];
      if (k == 0) continue;
      if (k <= 16) {
        for (size_t o = 0; o < outer_; ++o) {
          const T* src = x + o * row_ + offset;
          T* dst = y + o * k;
          for (size_t j = 0; j < k; ++j) dst[j] = src[j];
        }
      } else {
        for (size_t o = 0; o < outer_; ++o) copy_elements(y + o * k, x + o * row_ + offset, k);
      }
      offset += k;
    }
  }

 private:
  size_t outer_;
  std::vector<size_t> chunks_;
  size_t row_;
};

std::unique_ptr<OpKernel> prepare_split(PrepareContext& ctx) {
  const Tensor& x = require_moved(ctx);
  if (x.shape.empty()) ctx.fail("input 0 is a scalar: Split needs rank >= 1");
  const size_t rank = x.shape.size();
  const size_t axis = axis_index(ctx, "axis", ctx.node().attr_int("axis", 0), rank);
  const size_t parts = ctx.node().outputs.size();
  const int64_t len = x.shape[axis];
  std::vector<int64_t> sizes;
  if (ctx.node().has_attr("split")) {
    sizes = ctx.node().attr_ints("split");
    if (sizes.size() != parts)
      ctx.fail("attribute 'split' has " + std::to_string(sizes.size()) + " sizes for " +
               std::to_string(parts) + " outputs");
    int64_t sum = 0;
    for (int64_t s : sizes) {
      if (s < 0) ctx.fail("attribute 'split' has " + std::to_string(s) + ", below 0");
      sum += s;
    }
    if (sum != len)
      ctx.fail("attribute 'split' " + shape_text(sizes) + " sums to " + std::to_string(sum) + ", axis " +
               std::to_string(axis) + " of " + shape_text(x.shape) + " has " + std::to_string(len));
  } else {
    const int64_t p = static_cast<int64_t>(parts), part = (len + p - 1) / p;
    if (part * (p - 1) >= len)
      ctx.fail("without attribute 'split', axis " + std::to_string(axis) + " of " + shape_text(x.shape) +
               " does not split into " + std::to_string(parts) + " non-empty parts");
    sizes.assign(parts, part);
    sizes.back() = len - part * (p - 1);
  }
  int64_t inner = 1, outer = 1;
  for (size_t d = 0; d < axis; ++d) outer *= x.shape[d];
  for (size_t d = axis + 1; d < rank; ++d) inner *= x.shape[d];
  std::vector<size_t> chunks;
  for (size_t i = 0; i < parts; ++i) {
    Shape s = x.shape;
    s[axis] = sizes[i];
    ctx.set_output(i, x.dtype, s);
    chunks.push_back(static_cast<size_t>(sizes[i] * inner));
  }
  return make_for_element<Split>(x.dtype, static_cast<size_t>(outer), std::move(chunks));
}

// ---------------------------------------------------------------------------
// Strided gather (Transpose, Slice): Y dense of shape `out`, element i_0..i_r
// of Y = X[base + sum i_d * stride[d]].

template <class T>
class Gather final : public OpKernel {
 public:
  // Drops size-1 dims and merges dims that are contiguous in both tensors.
  Gather(const Shape& out, const std::vector<int64_t>& stride, int64_t base) : base_(base) {
    total_ = elements(out);
    for (size_t d = 0; d < out.size(); ++d) {
      if (out[d] == 1) continue;
      if (rank_ > 0 && stride_[rank_ - 1] == out[d] * stride[d]) {
        extent_[rank_ - 1] *= out[d];
        stride_[rank_ - 1] = stride[d];
        continue;
      }
      extent_[rank_] = out[d];
      stride_[rank_] = stride[d];
      ++rank_;
    }
    // The output dim that reads X's contiguous elements (for a tiled transpose).
    for (size_t d = 0; d + 1 < rank_; ++d)
      if (stride_[d] == 1) unit_ = static_cast<int>(d);
  }

  // Rows of the last dimension (or, tiled, the outer indices) are split between threads.
  void run(const RunContext& ctx) const override {
    if (total_ == 0) return;
    const T* x = ctx.in<T>(0) + base_;
    T* y = ctx.out<T>(0);
    if (rank_ == 0) {
      y[0] = x[0];
      return;
    }
    const size_t last = rank_ - 1, threads = ctx.pool->threads();
    const int64_t inner = extent_[last];
    if (rank_ == 2 && stride_[0] == 1 && inner <= 4 && base_ == 0) {
      // Planes to interleaved pixels (an image's NCHW -> NHWC with 1-4
      // channels): one loop per channel count, which the compiler turns into
      // interleaving stores (ST3 on NEON) instead of an index walk per element.
      const size_t pixels = static_cast<size_t>(extent_[0]), plane = static_cast<size_t>(stride_[1]);
      ctx.pool->parallel_for(pixels, chunk_items(pixels, threads, 64, kMinParallelFloats),
                             [&](size_t begin, size_t end) {
                               switch (inner) {
                                 case 1: interleave<1>(x, y, plane, begin, end); break;
                                 case 2: interleave<2>(x, y, plane, begin, end); break;
                                 case 3: interleave<3>(x, y, plane, begin, end); break;
                                 default: interleave<4>(x, y, plane, begin, end); break;
                               }
                             });
      return;
    }
    if (unit_ >= 0 && inner >= 4 && extent_[unit_] >= 4) {
      // Strips of kTile along unit_ (all of the last dim), per outer index.
      const size_t strips = static_cast<size_t>(total_ / (inner * extent_[unit_])) * a_strips();
      const size_t min_strips = kMinParallelFloats / static_cast<size_t>(inner * kTile) + 1;
      ctx.pool->parallel_for(strips, chunk_items(strips, threads, 1, min_strips),
                             [&](size_t begin, size_t end) { tiled(x, y, begin, end); });
      return;
    }
    const size_t rows = static_cast<size_t>(total_ / inner),
                 min_rows = kMinParallelFloats / static_cast<size_t>(inner) + 1;
    ctx.pool->parallel_for(rows, chunk_items(rows, threads, 1, min_rows),
                           [&](size_t begin, size_t end) { copy_rows(x, y, begin, end); });
  }

 private:
  // index[d] for d < last (skipping dim `skip`) of the flat position `at` over those dims.
  void unflatten(size_t at, size_t skip, int64_t* index) const {
    for (size_t d = rank_ - 1; d-- > 0;) {
      if (d == skip) continue;
      index[d] = static_cast<int64_t>(at % static_cast<size_t>(extent_[d]));
      at /= static_cast<size_t>(extent_[d]);
    }
  }

  // Output rows [r0, r1) of the last dimension.
  void copy_rows(const T* x, T* y, size_t r0, size_t r1) const {
    const size_t last = rank_ - 1;
    const int64_t inner = extent_[last], step = stride_[last];
    int64_t index[kMaxRank] = {};
    unflatten(r0, rank_, index);
    for (size_t r = r0; r < r1; ++r) {
      int64_t off = 0;
      for (size_t d = 0; d < last; ++d) off += index[d] * stride_[d];
      const T* src = x + off;
      T* dst = y + static_cast<int64_t>(r) * inner;
      if (step == 1)
        copy_elements(dst, src, static_cast<size_t>(inner));
      else
        for (int64_t i = 0; i < inner; ++i) dst[i] = src[i * step];
      for (size_t d = last; d-- > 0;) {
        if (++index[d] < extent_[d]) break;
        index[d] = 0;
      }
    }
  }

  // y[p * C + c] = x[c * plane + p] for pixels p in [p0, p1).
  template <int C>
  static void interleave(const T* x, T* y, size_t plane, size_t p0, size_t p1) {
    for (size_t p = p0; p < p1; ++p)
      for (int c = 0; c < C; ++c) y[p * C + static_cast<size_t>(c)] = x[static_cast<size_t>(c) * plane + p];
  }

  // Strips of kTile indices along unit_ per outer index (every dim but the last and unit_).
  size_t a_strips() const { return static_cast<size_t>((extent_[unit_] + kTile - 1) / kTile); }

  // Y's last dim strides through X while Y's dim unit_ walks X contiguously:
  // copy in square tiles so reads and writes both stay in cache lines. Only
  // strips [t0, t1): strip t is outer index t / a_strips(), unit_ indices
  // from t % a_strips() * kTile.
  void tiled(const T* x, T* y, size_t t0, size_t t1) const {
    const size_t last = rank_ - 1, u = static_cast<size_t>(unit_), strips = a_strips();
    const int64_t nb = extent_[last], sb = stride_[last], na = extent_[u];
    int64_t ystride[kMaxRank];
    ystride[last] = 1;
    for (size_t d = last; d-- > 0;) ystride[d] = ystride[d + 1] * extent_[d + 1];
    const int64_t ya = ystride[u];
    for (size_t t = t0; t < t1; ++t) {
      int64_t index[kMaxRank] = {};
      unflatten(t / strips, u, index);
      int64_t xoff = 0, yoff = 0;
      for (size_t d = 0; d < last; ++d) xoff += index[d] * stride_[d], yoff += index[d] * ystride[d];
      const int64_t a0 = static_cast<int64_t>(t % strips) * kTile, a1 = std::min(na, a0 + kTile);
      for (int64_t b0 = 0; b0 < nb; b0 += kTile) {
        const int64_t b1 = std::min(nb, b0 + kTile);
        for (int64_t a = a0; a < a1; ++a) {
          const T* src = x + xoff + a;
          T* dst = y + yoff + a * ya;
          for (int64_t b = b0; b < b1; ++b) dst[b] = src[b * sb];
        }
      }
    }
  }

  static constexpr int64_t kTile = 16;

  int64_t extent_[kMaxRank] = {}, stride_[kMaxRank] = {};
  size_t rank_ = 0;
  int unit_ = -1;
  int64_t base_, total_;
};

std::unique_ptr<OpKernel> prepare_transpose(PrepareContext& ctx) {
  const Tensor& x = require_moved(ctx);
  const size_t rank = x.shape.size();
  std::vector<int64_t> reversed(rank);
  for (size_t d = 0; d < rank; ++d) reversed[d] = static_cast<int64_t>(rank - 1 - d);
  const std::vector<int64_t> perm = ctx.node().attr_ints("perm", reversed);
  std::vector<bool> seen(rank, false);
  bool ok = perm.size() == rank;
  for (size_t d = 0; ok && d < rank; ++d) {
    ok = perm[d] >= 0 && perm[d] < static_cast<int64_t>(rank) && !seen[static_cast<size_t>(perm[d])];
    if (ok) seen[static_cast<size_t>(perm[d])] = true;
  }
  if (!ok)
    ctx.fail("attribute 'perm' " + shape_text(perm) + " is not a permutation of 0 .. " +
             std::to_string(static_cast<int64_t>(rank) - 1) + " for input " + shape_text(x.shape));
  const std::vector<int64_t> in_strides = dense_strides(x.shape);
  Shape out(rank);
  std::vector<int64_t> strides(rank);
  for (size_t d = 0; d < rank; ++d) {
    out[d] = x.shape[static_cast<size_t>(perm[d])];
    strides[d] = in_strides[static_cast<size_t>(perm[d])];
  }
  ctx.set_output(0, x.dtype, out);
  return make_for_element<Gather>(x.dtype, out, strides, 0);
}

std::unique_ptr<OpKernel> prepare_slice(PrepareContext& ctx) {
  const Tensor& x = require_moved(ctx);
  const size_t rank = x.shape.size();
  const Node& node = ctx.node();
  if (!node.has_attr("starts")) ctx.fail("attribute 'starts' is missing");
  if (!node.has_attr("ends")) ctx.fail("attribute 'ends' is missing");
  const std::vector<int64_t> starts = node.attr_ints("starts"), ends = node.attr_ints("ends");
  const size_t n = starts.size();
  if (ends.size() != n)
    ctx.fail("attribute 'ends' has " + std::to_string(ends.size()) + " values, 'starts' has " +
             std::to_string(n));
  std::vector<int64_t> axes(n);
  std::iota(axes.begin(), axes.end(), int64_t{0});
  axes = node.attr_ints("axes", axes);
  const std::vector<int64_t> steps = node.attr_ints("steps", std::vector<int64_t>(n, 1));
  if (axes.size() != n)
    ctx.fail("attribute 'axes' has " + std::to_string(axes.size()) + " values, 'starts' has " +
             std::to_string(n));
  if (steps.size() != n)
    ctx.fail("attribute 'steps' has " + std::to_string(steps.size()) + " values, 'starts' has " +
             std::to_string(n));
  Shape out = x.shape;
  std::vector<int64_t> begin(rank, 0), step(rank, 1);
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < n; ++i) {
    const size_t a = axis_index(ctx, "axes", axes[i], rank);
    if (seen[a])
      ctx.fail("attribute 'axes' " + shape_text(axes) + " names axis " + std::to_string(a) + " twice");
    seen[a] = true;
    if (steps[i] < 1)
      ctx.fail("attribute 'steps' has " + std::to_string(steps[i]) +
               ": only steps >= 1 are supported (no negative or zero steps)");
    const int64_t len = x.shape[a];
    int64_t s = starts[i], e = ends[i];
    if (s < 0) s += len;
    if (e < 0) e += len;
    s = std::clamp<int64_t>(s, 0, len);
    e = std::clamp<int64_t>(e, 0, len);
    begin[a] = s;
    step[a] = steps[i];
    out[a] = e > s ? (e - s + steps[i] - 1) / steps[i] : 0;
  }
  const std::vector<int64_t> in_strides = dense_strides(x.shape);
  std::vector<int64_t> strides(rank);
  int64_t base = 0;
  for (size_t d = 0; d < rank; ++d) {
    strides[d] = in_strides[d] * step[d];
    base += begin[d] * in_strides[d];
  }
  ctx.set_output(0, x.dtype, out);
  return make_for_element<Gather>(x.dtype, out, strides, elements(out) ? base : int64_t{0});
}

// ---------------------------------------------------------------------------
// Pad: per output row (all dims but the last), each outer index maps to an
// input index (or to padding in constant mode); the row is left padding, a
// copy of the input row and right padding.

enum class PadMode { constant, reflect, edge };

template <class T>
class Pad final : public OpKernel {
 public:
  Pad(const Shape& in, const Shape& out, std::vector<int64_t> begin, PadMode mode, T value)
      : in_(in), out_(out), begin_(std::move(begin)), mode_(mode), value_(value) {
    if (in_.empty()) {  // a scalar: one element, nothing to pad
      in_ = out_ = {1};
      begin_ = {0};
    }
    strides_ = dense_strides(in_);
  }

  void run(const RunContext& ctx) const override {
    const T* x = ctx.in<T>(0);
    T* y = ctx.out<T>(0);
    const size_t last = out_.size() - 1;
    const int64_t ow = out_[last], iw = in_[last], left = begin_[last];
    const int64_t total = elements(out_);
    if (total == 0) return;
    const int64_t rows = total / ow;
    int64_t index[kMaxRank] = {};
    for (int64_t r = 0; r < rows; ++r) {
      T* dst = y + r * ow;
      int64_t off = 0;
      bool inside = true;
      for (size_t d = 0; d < last; ++d) {
        const int64_t i = map(index[d] - begin_[d], in_[d]);
        if (i < 0) inside = false;
        off += i * strides_[d];
      }
      if (!inside) {
        std::fill(dst, dst + ow, value_);
      } else {
        const T* src = x + off;
        for (int64_t o = 0; o < left; ++o) {
          const int64_t i = map(o - left, iw);
          dst[o] = i < 0 ? value_ : src[i];
        }
        copy_elements(dst + left, src, static_cast<size_t>(iw));
        for (int64_t o = left + iw; o < ow; ++o) {
          const int64_t i = map(o - left, iw);
          dst[o] = i < 0 ? value_ : src[i];
        }
      }
      for (size_t d = last; d-- > 0;) {
        if (++index[d] < out_[d]) break;
        index[d] = 0;
      }
    }
  }

 private:
  // The input index read for input coordinate i (maybe outside [0, n)), -1 for the constant.
  int64_t map(int64_t i, int64_t n) const {
    if (i >= 0 && i < n) return i;
    switch (mode_) {
      case PadMode::constant:
        return -1;
      case PadMode::edge:
        return i < 0 ? 0 : n - 1;
      case PadMode::reflect:
        return i < 0 ? -i : 2 * (n - 1) - i;
    }
    return -1;
  }

  Shape in_, out_;
  std::vector<int64_t> begin_, strides_;
  PadMode mode_;
  T value_;
};

// Pad's kernel for x, with its constant value (quantised with x's quantisation for i8).
template <class... Args>
std::unique_ptr<OpKernel> make_pad(const PrepareContext& ctx, const Tensor& x, float value, Args&&... args) {
  if (x.dtype == DType::f32) return std::make_unique<Pad<float>>(std::forward<Args>(args)..., value);
  if (std::isnan(value)) ctx.fail("attribute 'value' is NaN, which has no int8 value");
  const kernels::QuantParams q = input_quant(ctx, 0);
  const int8_t quantised =
      kernels::qs8_requant_f32(value / q.scale, kernels::QGemmOutput{q.zero_point, -128, 127});
  return std::make_unique<Pad<int8_t>>(std::forward<Args>(args)..., quantised);
}

std::unique_ptr<OpKernel> prepare_pad(PrepareContext& ctx) {
  const Tensor& x = require_moved(ctx);
  const size_t rank = x.shape.size();
  if (!ctx.node().has_attr("pads")) ctx.fail("attribute 'pads' is missing");
  const std::vector<int64_t> pads = ints_attr(ctx, "pads", 2 * rank, 0, {});
  const std::string mode_text = ctx.node().attr_text("mode", "constant");
  PadMode mode;
  if (mode_text == "constant")
    mode = PadMode::constant;
  else if (mode_text == "reflect")
    mode = PadMode::reflect;
  else if (mode_text == "edge")
    mode = PadMode::edge;
  else
    ctx.fail("attribute 'mode' has '" + mode_text + "' (constant, reflect, edge)");
  const float value = ctx.node().attr_float("value", 0.0f);
  Shape out(rank);
  std::vector<int64_t> begin(pads.begin(), pads.begin() + static_cast<std::ptrdiff_t>(rank));
  for (size_t d = 0; d < rank; ++d) {
    const int64_t len = x.shape[d], b = pads[d], e = pads[rank + d];
    if (b > (int64_t{1} << 40) || e > (int64_t{1} << 40)) ctx.fail("pads beyond 2^40");
    if (mode == PadMode::reflect && (b || e) && (b >= len || e >= len))
      ctx.fail("mode 'reflect' needs pads below the axis length: axis " + std::to_string(d) + " of " +
               shape_text(x.shape) + " has pads " + std::to_string(b) + ", " + std::to_string(e));
    if (mode == PadMode::edge && (b || e) && len == 0)
      ctx.fail("mode 'edge' cannot pad the empty axis " + std::to_string(d) + " of " + shape_text(x.shape));
    out[d] = len + b + e;
  }
  ctx.set_output(0, x.dtype, out);
  // An empty input padded in constant mode: every output element is the value.
  if (elements(x.shape) == 0 && elements(out) != 0) {
    Shape flat = {elements(out)};
    return make_pad(ctx, x, value, Shape{0}, flat, std::vector<int64_t>{0}, PadMode::constant);
  }
  return make_pad(ctx, x, value, x.shape, out, std::move(begin), mode);
}

}  // namespace

extern const OpDef kConcat = {"Concat", 1, kMaxConcatInputs, 1, false, prepare_concat};
extern const OpDef kSplit = {"Split", 1, 1, kAnyOutputs, false, prepare_split};
extern const OpDef kTranspose = {"Transpose", 1, 1, 1, false, prepare_transpose};
extern const OpDef kSlice = {"Slice", 1, 1, 1, false, prepare_slice};
extern const OpDef kPad = {"Pad", 1, 1, 1, false, prepare_pad};

}  // namespace huddle::engine::ops
