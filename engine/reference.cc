#include "engine/reference.h"

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <utility>

namespace huddle::engine {
namespace {

using Ints = std::vector<int64_t>;
using MatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
constexpr double kInf = std::numeric_limits<double>::infinity();

// What an op function sees: its node, its inputs' shapes (and values, when
// running) and its outputs to shape (and fill). Every op function first
// checks its attributes and sets its output shapes, then returns unless
// running(): the executor calls it once without values to infer shapes.
class Call {
 public:
  Call(const Node& node, size_t index, std::vector<const Shape*> shapes,
       std::vector<std::span<const float>> values, bool running)
      : node_(node),
        index_(index),
        shapes_(std::move(shapes)),
        values_(std::move(values)),
        running_(running),
        out_shapes_(node.outputs.size()),
        out_values_(node.outputs.size()) {}

  const Node& node() const { return node_; }
  bool running() const { return running_; }
  size_t inputs() const { return node_.inputs.size(); }
  size_t outputs() const { return node_.outputs.size(); }
  bool has_input(size_t i) const { return i < inputs() && shapes_[i] != nullptr; }
  const Shape& shape(size_t i) const {
    if (!has_input(i)) fail("input " + std::to_string(i) + " is missing");
    return *shapes_[i];
  }
  // Input i's values (empty unless running).
  std::span<const float> in(size_t i) const {
    return i < values_.size() ? values_[i] : std::span<const float>();
  }
  // Gives output i its shape; returns where to write its values (empty unless running).
  std::span<float> out(size_t i, Shape shape) {
    if (running_) out_values_[i].assign(static_cast<size_t>(elements(shape)), 0.0f);
    out_shapes_[i] = std::move(shape);
    return out_values_[i];
  }
  std::vector<Shape>& out_shapes() { return out_shapes_; }
  std::vector<std::vector<float>>& out_values() { return out_values_; }

  // Throws GraphError "node 3 'conv1' (Conv2D): <what>".
  [[noreturn]] void fail(const std::string& what) const {
    throw GraphError(node_.describe(index_) + ": " + what);
  }

  // Integer-list attribute `name` of `count` values, each >= `min`, or `fallback` when absent.
  Ints ints(const char* name, size_t count, int64_t min, Ints fallback) const {
    const Ints v = node_.attr_ints(name, std::move(fallback));
    if (v.size() != count)
      fail(std::string("attribute '") + name + "' needs " + std::to_string(count) + " values, has " +
           std::to_string(v.size()));
    for (int64_t x : v)
      if (x < min)
        fail(std::string("attribute '") + name + "' has " + std::to_string(x) + ", below " +
             std::to_string(min));
    return v;
  }
  // Attribute `name`, which must be present.
  void require(const char* name) const {
    if (!node_.has_attr(name)) fail(std::string("attribute '") + name + "' is missing");
  }
  // `axis` (attribute `name`) in [-rank, rank) as an index from 0.
  size_t axis(int64_t axis, size_t rank, const char* name) const {
    const int64_t r = static_cast<int64_t>(rank);
    if (axis < -r || axis >= r)
      fail(std::string("attribute '") + name + "' has " + std::to_string(axis) + ", outside [" +
           std::to_string(-r) + ", " + std::to_string(r - 1) + "] for rank " + std::to_string(rank));
    return static_cast<size_t>(axis < 0 ? axis + r : axis);
  }
  // Fails unless input i has `rank` dimensions.
  const Shape& shape_of_rank(size_t i, size_t rank) const {
    const Shape& s = shape(i);
    if (s.size() != rank)
      fail("input " + std::to_string(i) + " has shape " + shape_text(s) + ", expected rank " +
           std::to_string(rank));
    return s;
  }

 private:
  const Node& node_;
  size_t index_;
  std::vector<const Shape*> shapes_;
  std::vector<std::span<const float>> values_;
  bool running_;
  std::vector<Shape> out_shapes_;
  std::vector<std::vector<float>> out_values_;
};

// ---------------------------------------------------------------------------
// Multi-indices: the data movement ops read Y[idx] = X[f(idx)].

// Calls fn(idx) for every multi-index of `shape`, in row-major order.
template <class Fn>
void for_each_index(const Shape& shape, Fn fn) {
  if (elements(shape) == 0) return;
  Ints idx(shape.size(), 0);
  for (;;) {
    fn(static_cast<const Ints&>(idx));
    size_t d = shape.size();
    for (; d > 0; --d) {
      if (++idx[d - 1] < shape[d - 1]) break;
      idx[d - 1] = 0;
    }
    if (d == 0) return;
  }
}

// Row-major offset of `idx` in `shape`; a dimension of size 1 reads index 0
// whatever idx says (numpy broadcasting).
int64_t offset_of(const Ints& idx, const Shape& shape) {
  int64_t offset = 0;
  for (size_t d = 0; d < shape.size(); ++d) offset = offset * shape[d] + (shape[d] == 1 ? 0 : idx[d]);
  return offset;
}

float at(std::span<const float> x, const Ints& idx, const Shape& shape) {
  return x[static_cast<size_t>(offset_of(idx, shape))];
}

// ---------------------------------------------------------------------------
// Elementwise ops.

template <class Fn>
void unary(Call& c, Fn fn) {
  const std::span<float> y = c.out(0, c.shape(0));
  if (!c.running()) return;
  const std::span<const float> x = c.in(0);
  for (size_t i = 0; i < x.size(); ++i) y[i] = static_cast<float>(fn(static_cast<double>(x[i])));
}

double clamp(double v, double lo, double hi) { return std::min(std::max(v, lo), hi); }

// Quantize and Dequantize: every tensor holds real values, and the executor
// puts each i8 output on its grid, so both are the identity here.
void identity(Call& c) {
  unary(c, [](double v) { return v; });
}

void relu(Call& c) {
  unary(c, [](double v) { return std::max(v, 0.0); });
}

void clip(Call& c) {
  const double lo = c.node().attr_float("min", -INFINITY), hi = c.node().attr_float("max", INFINITY);
  if (!(lo <= hi)) c.fail("min is above max");
  unary(c, [lo, hi](double v) { return clamp(v, lo, hi); });
}

void sigmoid(Call& c) {
  unary(c, [](double v) { return 1.0 / (1.0 + std::exp(-v)); });
}

void silu(Call& c) {
  unary(c, [](double v) { return v / (1.0 + std::exp(-v)); });
}

void hard_sigmoid(Call& c) {
  const double alpha = c.node().attr_float("alpha", 0.2f), beta = c.node().attr_float("beta", 0.5f);
  unary(c, [alpha, beta](double v) { return clamp(alpha * v + beta, 0.0, 1.0); });
}

void hard_swish(Call& c) {
  unary(c, [](double v) { return v * clamp(v + 3.0, 0.0, 6.0) / 6.0; });
}

void leaky_relu(Call& c) {
  const double alpha = c.node().attr_float("alpha", 0.01f);
  unary(c, [alpha](double v) { return v < 0.0 ? alpha * v : v; });
}

// `shape` with 1s in front up to `rank` dimensions.
Shape left_padded(const Shape& shape, size_t rank) {
  Shape s(rank - shape.size(), 1);
  s.insert(s.end(), shape.begin(), shape.end());
  return s;
}

// A and B broadcast against each other (numpy rules) -> Y of the broadcast shape.
template <class Fn>
void binary(Call& c, Fn fn) {
  const size_t rank = std::max(c.shape(0).size(), c.shape(1).size());
  const Shape a = left_padded(c.shape(0), rank), b = left_padded(c.shape(1), rank);
  Shape out(rank);
  for (size_t d = 0; d < rank; ++d) {
    if (a[d] != b[d] && a[d] != 1 && b[d] != 1)
      c.fail("shapes " + shape_text(c.shape(0)) + " and " + shape_text(c.shape(1)) + " do not broadcast");
    out[d] = a[d] == 1 ? b[d] : a[d];
  }
  const std::span<float> y = c.out(0, out);
  if (!c.running()) return;
  size_t i = 0;
  for_each_index(out, [&](const Ints& idx) {
    y[i++] = static_cast<float>(
        fn(static_cast<double>(at(c.in(0), idx, a)), static_cast<double>(at(c.in(1), idx, b))));
  });
}

void add(Call& c) {
  binary(c, [](double a, double b) { return a + b; });
}

void sub(Call& c) {
  binary(c, [](double a, double b) { return a - b; });
}

void mul(Call& c) {
  binary(c, [](double a, double b) { return a * b; });
}

void div(Call& c) {
  binary(c, [](double a, double b) { return a / b; });
}

// ---------------------------------------------------------------------------
// Convolution and matrix products (NHWC activations, OHWI weights).

// The fused activation's bounds: attribute "activation" = "none" (default),
// "relu", "relu6" or "clip" (with "clip_min" / "clip_max").
std::pair<double, double> activation_bounds(const Call& c) {
  const std::string a = c.node().attr_text("activation", "none");
  if (a == "none") return {-kInf, kInf};
  if (a == "relu") return {0.0, kInf};
  if (a == "relu6") return {0.0, 6.0};
  if (a == "clip") {
    const double lo = c.node().attr_float("clip_min", -INFINITY),
                 hi = c.node().attr_float("clip_max", INFINITY);
    if (!(lo <= hi)) c.fail("clip_min is above clip_max");
    return {lo, hi};
  }
  c.fail("unknown activation '" + a + "' (none, relu, relu6, clip)");
}

// Checks the optional bias (input `input`) has `outputs` values.
void check_bias(const Call& c, int64_t outputs, size_t input = 2) {
  if (c.has_input(input) && c.shape(input) != Shape{outputs})
    c.fail("bias " + shape_text(c.shape(input)) + " does not fit " + std::to_string(outputs) + " outputs");
}

// Output length of a window of `kernel` taps `dilation` apart moved by
// `stride` over `len` cells with `pads` cells of padding in all; 0 if it does not fit.
int64_t window_count(int64_t len, int64_t pads, int64_t kernel, int64_t stride, int64_t dilation) {
  const int64_t span = len + pads, extent = dilation * (kernel - 1) + 1;
  return span < extent ? 0 : (span - extent) / stride + 1;
}

// Conv2D: X [N, H, W, C], W [O, KH, KW, C / group], B [O] -> Y [N, OH, OW, O].
// Each group is one matrix product: the group's input patches, one row per
// output pixel with columns (ky, kx, c) as in the weights, times its weights.
void conv2d(Call& c) {
  const Shape& xs = c.shape_of_rank(0, 4);
  const Shape& ws = c.shape_of_rank(1, 4);
  const Ints strides = c.ints("strides", 2, 1, {1, 1});
  const Ints dilations = c.ints("dilations", 2, 1, {1, 1});
  const Ints pads = c.ints("pads", 4, 0, {0, 0, 0, 0});
  const int64_t group = c.node().attr_int("group", 1);
  const auto [lo, hi] = activation_bounds(c);
  const int64_t n = xs[0], h = xs[1], w = xs[2], ch = xs[3];
  const int64_t o = ws[0], kh = ws[1], kw = ws[2], cg = ws[3];
  if (group < 1 || ch % group != 0 || o % group != 0 || cg * group != ch)
    c.fail("weights " + shape_text(ws) + " and group " + std::to_string(group) + " do not fit input " +
           shape_text(xs));
  check_bias(c, o);
  const int64_t oh = window_count(h, pads[0] + pads[2], kh, strides[0], dilations[0]);
  const int64_t ow = window_count(w, pads[1] + pads[3], kw, strides[1], dilations[1]);
  if (oh == 0 || ow == 0)
    c.fail("the dilated kernel " + shape_text({kh, kw}) + " is larger than the padded input " +
           shape_text(xs));
  const std::span<float> y = c.out(0, {n, oh, ow, o});
  if (!c.running()) return;

  const int64_t og = o / group, k = kh * kw * cg, pixels = n * oh * ow;
  const std::span<const float> x = c.in(0);
  Eigen::Map<MatrixF> out(y.data(), pixels, o);
  Eigen::RowVectorXd bias = Eigen::RowVectorXd::Zero(o);
  if (c.has_input(2)) bias = Eigen::Map<const Eigen::RowVectorXf>(c.in(2).data(), o).cast<double>();
  // Output pixels [p0, p0 + rows) at a time, so the buffers stay small.
  constexpr int64_t kRows = 256;
  MatrixD patches(std::min(kRows, pixels), k);
  for (int64_t g = 0; g < group; ++g) {
    const MatrixD weights =
        Eigen::Map<const MatrixF>(c.in(1).data(), o, k).middleRows(g * og, og).cast<double>().transpose();
    for (int64_t p0 = 0; p0 < pixels; p0 += kRows) {
      const int64_t rows = std::min(kRows, pixels - p0);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t p = p0 + r, b = p / (oh * ow), oy = p / ow % oh, ox = p % ow;
        for (int64_t ky = 0; ky < kh; ++ky)
          for (int64_t kx = 0; kx < kw; ++kx) {
            const int64_t iy = oy * strides[0] - pads[0] + ky * dilations[0];
            const int64_t ix = ox * strides[1] - pads[1] + kx * dilations[1];
            const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;  // else padding: zeros
            const float* in =
                inside ? &x[static_cast<size_t>(((b * h + iy) * w + ix) * ch + g * cg)] : nullptr;
            for (int64_t ci = 0; ci < cg; ++ci) patches(r, (ky * kw + kx) * cg + ci) = inside ? in[ci] : 0.0f;
          }
      }
      MatrixD acc = patches.topRows(rows) * weights;
      acc.rowwise() += bias.segment(g * og, og);
      out.block(p0, g * og, rows, og) = acc.cwiseMax(lo).cwiseMin(hi).cast<float>();
    }
  }
}

// Y [..., O] = X [..., K] W^T + B (input `bias`, optional), clamped by the
// activation; `w` holds O x K values.
void matrix_product(Call& c, std::span<const float> w, int64_t o, size_t bias) {
  const Shape& xs = c.shape(0);
  const auto [lo, hi] = activation_bounds(c);
  Shape out = xs;
  out.back() = o;
  const std::span<float> y = c.out(0, out);
  if (!c.running()) return;
  const int64_t k = xs.back(), rows = elements(Shape(xs.begin(), xs.end() - 1));
  const Eigen::Map<const MatrixF> x(c.in(0).data(), rows, k), wm(w.data(), o, k);
  MatrixD acc = x.cast<double>() * wm.cast<double>().transpose();
  if (c.has_input(bias))
    acc.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(c.in(bias).data(), o).cast<double>();
  Eigen::Map<MatrixF>(y.data(), rows, o) = acc.cwiseMax(lo).cwiseMin(hi).cast<float>();
}

// FullyConnected: X [..., K], W [O, K], B [O] -> Y [..., O].
void fully_connected(Call& c) {
  const Shape& xs = c.shape(0);
  const Shape& ws = c.shape_of_rank(1, 2);
  if (xs.empty()) c.fail("input is a scalar");
  if (ws[1] != xs.back()) c.fail("weights " + shape_text(ws) + " do not fit input " + shape_text(xs));
  check_bias(c, ws[0]);
  matrix_product(c, c.in(1), ws[0], 2);
}

// CodebookFullyConnected: X [..., K], W [O, ceil(K * bits / 8)] indices (4-bit:
// two a byte, low nibble first), T [2^bits] table, B [O] -> Y [..., O]: the
// FullyConnected of the weights T[index].
void codebook_fully_connected(Call& c) {
  const Shape& xs = c.shape(0);
  const Shape& ws = c.shape_of_rank(1, 2);
  const Shape& ts = c.shape_of_rank(2, 1);
  c.require("bits");
  const int64_t bits = c.node().attr_int("bits", 0);
  if (bits != 4 && bits != 8) c.fail("attribute 'bits' has " + std::to_string(bits) + ", not 4 or 8");
  if (xs.empty()) c.fail("input is a scalar");
  const int64_t k = xs.back(), o = ws[0], row = bits == 4 ? (k + 1) / 2 : k;
  if (ws[1] != row)
    c.fail("indices " + shape_text(ws) + " do not fit input " + shape_text(xs) + " with " +
           std::to_string(bits) + "-bit indices");
  if (ts[0] != int64_t{1} << bits)
    c.fail("table " + shape_text(ts) + " does not have " + std::to_string(int64_t{1} << bits) + " entries");
  check_bias(c, o, 3);
  std::vector<float> w;
  if (c.running()) {
    w.resize(static_cast<size_t>(o * k));
    for (int64_t r = 0; r < o; ++r)
      for (int64_t i = 0; i < k; ++i) {
        const auto byte =
            static_cast<unsigned>(c.in(1)[static_cast<size_t>(r * row + (bits == 4 ? i / 2 : i))]);
        const unsigned index = bits == 4 ? (byte >> (4 * (i % 2))) & 15u : byte;
        w[static_cast<size_t>(r * k + i)] = c.in(2)[index];
      }
  }
  matrix_product(c, w, o, 3);
}

// ---------------------------------------------------------------------------
// Pooling (NHWC).

// GlobalAveragePool: X [N, H, W, C] -> Y [N, 1, 1, C].
void global_average_pool(Call& c) {
  const Shape& xs = c.shape_of_rank(0, 4);
  const int64_t n = xs[0], pixels = xs[1] * xs[2], ch = xs[3];
  if (pixels == 0) c.fail("input " + shape_text(xs) + " has no pixels");
  const std::span<float> y = c.out(0, {n, 1, 1, ch});
  if (!c.running()) return;
  for (int64_t b = 0; b < n; ++b) {
    const Eigen::Map<const MatrixF> image(c.in(0).data() + b * pixels * ch, pixels, ch);
    Eigen::Map<Eigen::RowVectorXf>(y.data() + b * ch, ch) =
        image.cast<double>().colwise().mean().cast<float>();
  }
}

// MaxPool2D / AveragePool2D: X [N, H, W, C] -> Y [N, OH, OW, C] (see engine/ops/pool.cc).
void pool(Call& c, bool max) {
  const Shape& xs = c.shape_of_rank(0, 4);
  c.require("kernel");
  const Ints kernel = c.ints("kernel", 2, 1, {});
  const Ints strides = c.ints("strides", 2, 1, kernel);
  const Ints pads = c.ints("pads", 4, 0, {0, 0, 0, 0});
  const int64_t include_pad = max ? 0 : c.node().attr_int("count_include_pad", 0);
  if (include_pad != 0 && include_pad != 1)
    c.fail("attribute 'count_include_pad' has " + std::to_string(include_pad) + ", not 0 or 1");
  const int64_t n = xs[0], h = xs[1], w = xs[2], ch = xs[3];
  const int64_t oh = window_count(h, pads[0] + pads[2], kernel[0], strides[0], 1);
  const int64_t ow = window_count(w, pads[1] + pads[3], kernel[1], strides[1], 1);
  if (oh == 0 || ow == 0)
    c.fail("attribute 'kernel' " + shape_text(kernel) + " is larger than the padded input " + shape_text(xs) +
           " with pads " + shape_text(pads));
  const std::span<float> y = c.out(0, {n, oh, ow, ch});
  // Input rows [y0, y1) and columns [x0, x1) of the window of output (oy, ox).
  auto window = [&](int64_t o, int64_t axis, int64_t len) {
    const int64_t first = o * strides[axis] - pads[axis];
    return std::pair<int64_t, int64_t>{std::max<int64_t>(first, 0), std::min(first + kernel[axis], len)};
  };
  for (int64_t oy = 0; oy < oh; ++oy)
    for (int64_t ox = 0; ox < ow; ++ox) {
      const auto [y0, y1] = window(oy, 0, h);
      const auto [x0, x1] = window(ox, 1, w);
      if (y0 >= y1 || x0 >= x1)
        c.fail("attribute 'pads' " + shape_text(pads) + " leaves a window with no input cell (output " +
               std::to_string(oy) + ", " + std::to_string(ox) + ")");
      if (!c.running()) continue;
      for (int64_t b = 0; b < n; ++b)
        for (int64_t k = 0; k < ch; ++k) {
          double acc = max ? -kInf : 0.0;
          for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix) {
              const double v = c.in(0)[static_cast<size_t>(((b * h + iy) * w + ix) * ch + k)];
              acc = max ? std::max(acc, v) : acc + v;
            }
          if (!max) acc /= static_cast<double>(include_pad ? kernel[0] * kernel[1] : (y1 - y0) * (x1 - x0));
          y[static_cast<size_t>(((b * oh + oy) * ow + ox) * ch + k)] = static_cast<float>(acc);
        }
    }
}

void max_pool(Call& c) { pool(c, true); }
void average_pool(Call& c) { pool(c, false); }

// ---------------------------------------------------------------------------
// Shape and data movement ops.

// Reshape: X -> Y of attribute shape (one entry may be -1).
void reshape(Call& c) {
  const Shape& xs = c.shape(0);
  c.require("shape");
  Shape out = c.node().attr_ints("shape");
  const auto unknown = std::count(out.begin(), out.end(), int64_t{-1});
  int64_t known = 1;
  for (int64_t d : out) {
    if (d < -1) c.fail("attribute 'shape' has " + std::to_string(d));
    if (d != -1) known *= d;
  }
  if (unknown > 1) c.fail("attribute 'shape' has more than one -1");
  if (unknown == 1 && known != 0 && elements(xs) % known == 0)
    *std::find(out.begin(), out.end(), int64_t{-1}) = elements(xs) / known;
  if (elements(out) != elements(xs) || std::count(out.begin(), out.end(), int64_t{-1}))
    c.fail("cannot reshape " + shape_text(xs) + " to " + shape_text(c.node().attr_ints("shape")));
  const std::span<float> y = c.out(0, out);
  if (c.running()) std::copy(c.in(0).begin(), c.in(0).end(), y.begin());
}

// Softmax: X -> Y, exp(x - max) / sum over attribute axis (default -1).
void softmax(Call& c) {
  const Shape& xs = c.shape(0);
  if (xs.empty()) c.fail("input is a scalar");
  const size_t axis = c.axis(c.node().attr_int("axis", -1), xs.size(), "axis");
  if (xs[axis] == 0) c.fail("axis " + std::to_string(axis) + " of " + shape_text(xs) + " is empty");
  const std::span<float> y = c.out(0, xs);
  if (!c.running()) return;
  const int64_t len = xs[axis];
  const int64_t inner = elements(Shape(xs.begin() + static_cast<std::ptrdiff_t>(axis) + 1, xs.end()));
  const int64_t outer = elements(xs) / (len * inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      auto index = [&](int64_t a) { return static_cast<size_t>((o * len + a) * inner + i); };
      Eigen::ArrayXd v(len);
      for (int64_t a = 0; a < len; ++a) v[a] = c.in(0)[index(a)];
      v = (v - v.maxCoeff()).exp();
      v /= v.sum();
      for (int64_t a = 0; a < len; ++a) y[index(a)] = static_cast<float>(v[a]);
    }
}

// ReduceMean: X -> Y, the mean over attribute axes (required, distinct; an
// empty list averages over nothing), keepdims = 1 keeps them as size 1.
void reduce_mean(Call& c) {
  const Shape& xs = c.shape(0);
  c.require("axes");
  std::vector<bool> reduced(xs.size(), false);
  for (int64_t a : c.node().attr_ints("axes")) {
    const size_t axis = c.axis(a, xs.size(), "axes");
    if (reduced[axis]) c.fail("attribute 'axes' names axis " + std::to_string(axis) + " twice");
    reduced[axis] = true;
  }
  const int64_t keepdims = c.node().attr_int("keepdims", 1);
  if (keepdims != 0 && keepdims != 1)
    c.fail("attribute 'keepdims' has " + std::to_string(keepdims) + ", not 0 or 1");
  Shape kept(xs.size()), out;  // kept: the output shape with keepdims = 1
  int64_t count = 1;
  for (size_t d = 0; d < xs.size(); ++d) {
    if (reduced[d] && xs[d] == 0) c.fail("axis " + std::to_string(d) + " to average over is empty");
    kept[d] = reduced[d] ? 1 : xs[d];
    count *= reduced[d] ? xs[d] : 1;
    if (!reduced[d] || keepdims) out.push_back(kept[d]);
  }
  const std::span<float> y = c.out(0, out);
  if (!c.running()) return;
  std::vector<double> sums(y.size(), 0.0);
  size_t j = 0;
  for_each_index(xs,
                 [&](const Ints& idx) { sums[static_cast<size_t>(offset_of(idx, kept))] += c.in(0)[j++]; });
  for (size_t i = 0; i < sums.size(); ++i) y[i] = static_cast<float>(sums[i] / static_cast<double>(count));
}

// Concat: X0, X1, ... -> Y along attribute axis (required).
void concat(Call& c) {
  const Shape& first = c.shape(0);
  if (first.empty()) c.fail("input 0 is a scalar: Concat needs rank >= 1");
  c.require("axis");
  const size_t axis = c.axis(c.node().attr_int("axis", 0), first.size(), "axis");
  Shape out = first;
  out[axis] = 0;
  for (size_t i = 0; i < c.inputs(); ++i) {
    const Shape& s = c.shape(i);
    bool fits = s.size() == first.size();
    for (size_t d = 0; fits && d < s.size(); ++d) fits = d == axis || s[d] == first[d];
    if (!fits)
      c.fail("input " + std::to_string(i) + " " + shape_text(s) + " does not fit input 0 " +
             shape_text(first) + " for axis " + std::to_string(axis));
    out[axis] += s[axis];
  }
  const std::span<float> y = c.out(0, out);
  if (!c.running()) return;
  int64_t start = 0;  // where input i begins along the axis
  for (size_t i = 0; i < c.inputs(); ++i) {
    size_t j = 0;
    for_each_index(c.shape(i), [&](const Ints& idx) {
      Ints o = idx;
      o[axis] += start;
      y[static_cast<size_t>(offset_of(o, out))] = c.in(i)[j++];
    });
    start += c.shape(i)[axis];
  }
}

// Split: X -> Y0, Y1, ... along attribute axis (default 0), of attribute
// split sizes, or in equal parts of ceil(len / outputs), the last smaller.
void split(Call& c) {
  const Shape& xs = c.shape(0);
  if (xs.empty()) c.fail("input 0 is a scalar: Split needs rank >= 1");
  const size_t axis = c.axis(c.node().attr_int("axis", 0), xs.size(), "axis");
  const int64_t len = xs[axis], parts = static_cast<int64_t>(c.outputs());
  Ints sizes;
  if (c.node().has_attr("split")) {
    sizes = c.ints("split", c.outputs(), 0, {});
    if (std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) != len)
      c.fail("attribute 'split' " + shape_text(sizes) + " does not sum to " + std::to_string(len) +
             ", axis " + std::to_string(axis) + " of " + shape_text(xs));
  } else {
    const int64_t part = (len + parts - 1) / parts;
    if (part * (parts - 1) >= len)
      c.fail("without attribute 'split', axis " + std::to_string(axis) + " of " + shape_text(xs) +
             " does not split into " + std::to_string(parts) + " non-empty parts");
    sizes.assign(c.outputs(), part);
    sizes.back() = len - part * (parts - 1);
  }
  int64_t start = 0;
  for (size_t k = 0; k < c.outputs(); ++k) {
    Shape s = xs;
    s[axis] = sizes[k];
    const std::span<float> y = c.out(k, s);
    size_t j = 0;
    if (c.running())
      for_each_index(s, [&](const Ints& idx) {
        Ints i = idx;
        i[axis] += start;
        y[j++] = at(c.in(0), i, xs);
      });
    start += sizes[k];
  }
}

// Transpose: X -> Y with Y.shape[d] = X.shape[perm[d]] (default perm: reversed dims).
void transpose(Call& c) {
  const Shape& xs = c.shape(0);
  const size_t rank = xs.size();
  Ints reversed(rank);
  std::iota(reversed.rbegin(), reversed.rend(), int64_t{0});
  const Ints perm = c.node().attr_ints("perm", reversed);
  Ints sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  Ints identity(rank);
  std::iota(identity.begin(), identity.end(), int64_t{0});
  if (sorted != identity)
    c.fail("attribute 'perm' " + shape_text(perm) + " is not a permutation of 0 .. " +
           std::to_string(static_cast<int64_t>(rank) - 1));
  Shape out(rank);
  for (size_t d = 0; d < rank; ++d) out[d] = xs[static_cast<size_t>(perm[d])];
  const std::span<float> y = c.out(0, out);
  if (!c.running()) return;
  size_t j = 0;
  Ints in(rank);
  for_each_index(out, [&](const Ints& idx) {
    for (size_t d = 0; d < rank; ++d) in[static_cast<size_t>(perm[d])] = idx[d];
    y[j++] = at(c.in(0), in, xs);
  });
}

// Slice: X -> Y, attributes starts, ends (required), axes, steps (>= 1), with
// ONNX clamping (a negative index adds the axis length, then clamps to [0, len]).
void slice(Call& c) {
  const Shape& xs = c.shape(0);
  const size_t rank = xs.size();
  c.require("starts");
  c.require("ends");
  const Ints starts = c.node().attr_ints("starts");
  const size_t count = starts.size();
  const Ints ends = c.ints("ends", count, std::numeric_limits<int64_t>::min(), {});
  Ints all_axes(count);
  std::iota(all_axes.begin(), all_axes.end(), int64_t{0});
  const Ints axes = c.ints("axes", count, std::numeric_limits<int64_t>::min(), all_axes);
  const Ints steps = c.ints("steps", count, 1, Ints(count, 1));
  Ints first(rank, 0), step(rank, 1);
  Shape out = xs;
  std::vector<bool> seen(rank, false);
  for (size_t i = 0; i < count; ++i) {
    const size_t a = c.axis(axes[i], rank, "axes");
    if (seen[a])
      c.fail("attribute 'axes' " + shape_text(axes) + " names axis " + std::to_string(a) + " twice");
    seen[a] = true;
    const int64_t len = xs[a];
    const int64_t s = std::clamp<int64_t>(starts[i] < 0 ? starts[i] + len : starts[i], 0, len);
    const int64_t e = std::clamp<int64_t>(ends[i] < 0 ? ends[i] + len : ends[i], 0, len);
    first[a] = s;
    step[a] = steps[i];
    out[a] = e > s ? (e - s + steps[i] - 1) / steps[i] : 0;
  }
  const std::span<float> y = c.out(0, out);
  if (!c.running()) return;
  size_t j = 0;
  Ints in(rank);
  for_each_index(out, [&](const Ints& idx) {
    for (size_t d = 0; d < rank; ++d) in[d] = first[d] + idx[d] * step[d];
    y[j++] = at(c.in(0), in, xs);
  });
}

// Pad: X -> Y, attribute pads [begins..., ends...] (each >= 0), mode
// constant (attribute value), reflect (pads below the length) or edge.
void pad(Call& c) {
  const Shape& xs = c.shape(0);
  const size_t rank = xs.size();
  c.require("pads");
  const Ints pads = c.ints("pads", 2 * rank, 0, {});
  const std::string mode = c.node().attr_text("mode", "constant");
  if (mode != "constant" && mode != "reflect" && mode != "edge")
    c.fail("attribute 'mode' has '" + mode + "' (constant, reflect, edge)");
  const float value = c.node().attr_float("value", 0.0f);
  Shape out(rank);
  for (size_t d = 0; d < rank; ++d) {
    const int64_t len = xs[d], before = pads[d], after = pads[rank + d];
    if (mode == "reflect" && (before || after) && (before >= len || after >= len))
      c.fail("mode 'reflect' needs pads below the axis length: axis " + std::to_string(d) + " of " +
             shape_text(xs) + " has pads " + std::to_string(before) + ", " + std::to_string(after));
    if (mode == "edge" && (before || after) && len == 0)
      c.fail("mode 'edge' cannot pad the empty axis " + std::to_string(d) + " of " + shape_text(xs));
    out[d] = len + before + after;
  }
  const std::span<float> y = c.out(0, out);
  if (!c.running()) return;
  // The input index coordinate i (maybe outside [0, len)) reads, -1 for the constant.
  auto source = [&](int64_t i, int64_t len) -> int64_t {
    if (i >= 0 && i < len) return i;
    if (mode == "edge") return i < 0 ? 0 : len - 1;
    if (mode == "reflect") return i < 0 ? -i : 2 * (len - 1) - i;
    return -1;
  };
  size_t j = 0;
  Ints in(rank);
  for_each_index(out, [&](const Ints& idx) {
    bool inside = true;
    for (size_t d = 0; d < rank; ++d) {
      in[d] = source(idx[d] - pads[d], xs[d]);
      inside = inside && in[d] >= 0;
    }
    y[j++] = inside ? at(c.in(0), in, xs) : value;
  });
}

// Resize: X [N, H, W, C] -> Y [N, OH, OW, C], attribute size [OH, OW] and
// optional scales [sh, sw] (default OH / H, OW / W), ONNX semantics per axis
// in double (see engine/ops/resize.cc for the modes).
void resize(Call& c) {
  const Shape& xs = c.shape_of_rank(0, 4);
  c.require("size");
  const Ints size = c.ints("size", 2, 1, {});
  const std::string mode = c.node().attr_text("mode", "nearest");
  const std::string transform = c.node().attr_text("coordinate_transformation_mode", "half_pixel");
  const std::string nearest = c.node().attr_text("nearest_mode", "round_prefer_floor");
  if (c.node().attr_int("antialias", 0) != 0) c.fail("attribute 'antialias' is not supported");
  if (mode != "nearest" && mode != "linear") c.fail("attribute 'mode' has '" + mode + "' (nearest, linear)");
  const std::vector<std::string> transforms = {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn",
                                               "asymmetric", "align_corners"};
  if (std::find(transforms.begin(), transforms.end(), transform) == transforms.end())
    c.fail("attribute 'coordinate_transformation_mode' has '" + transform + "'");
  const std::vector<std::string> roundings = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
  if (mode == "nearest" && std::find(roundings.begin(), roundings.end(), nearest) == roundings.end())
    c.fail("attribute 'nearest_mode' has '" + nearest + "'");
  const int64_t n = xs[0], h = xs[1], w = xs[2], ch = xs[3];
  if (h == 0 || w == 0) c.fail("input " + shape_text(xs) + " has no pixels");
  double scales[2] = {static_cast<double>(size[0]) / static_cast<double>(h),
                      static_cast<double>(size[1]) / static_cast<double>(w)};
  if (c.node().has_attr("scales")) {
    const std::vector<float> given = c.node().attr_floats("scales");
    if (given.size() != 2 || !(given[0] > 0.0f) || !(given[1] > 0.0f))
      c.fail("attribute 'scales' needs 2 values above 0");
    scales[0] = given[0], scales[1] = given[1];
  }
  const std::span<float> y = c.out(0, {n, size[0], size[1], ch});
  if (!c.running()) return;

  // The (index, weight) pairs output coordinate o reads along an axis of `len` cells.
  auto taps = [&](int64_t o, int64_t len, double scale) {
    const double xr = static_cast<double>(o), resized = static_cast<double>(len) * scale;
    double s = xr / scale;  // asymmetric
    if (transform == "half_pixel") s = (xr + 0.5) / scale - 0.5;
    if (transform == "pytorch_half_pixel") s = resized > 1 ? (xr + 0.5) / scale - 0.5 : 0.0;
    if (transform == "tf_half_pixel_for_nn") s = (xr + 0.5) / scale;
    if (transform == "align_corners")
      s = resized == 1 ? 0.0 : xr * static_cast<double>(len - 1) / (resized - 1);
    const double floor = std::floor(s), f = s - floor;
    const int64_t i = static_cast<int64_t>(floor);
    auto clamped = [len](int64_t k) { return std::clamp<int64_t>(k, 0, len - 1); };
    if (mode == "nearest") {
      int64_t k = i;
      if (nearest == "round_prefer_floor") k += f > 0.5;
      if (nearest == "round_prefer_ceil") k += f >= 0.5;
      if (nearest == "ceil") k = static_cast<int64_t>(std::ceil(s));
      return std::vector<std::pair<int64_t, double>>{{clamped(k), 1.0}};
    }
    return std::vector<std::pair<int64_t, double>>{{clamped(i), 1.0 - f}, {clamped(i + 1), f}};
  };
  for (int64_t oy = 0; oy < size[0]; ++oy)
    for (int64_t ox = 0; ox < size[1]; ++ox) {
      const auto ty = taps(oy, h, scales[0]), tx = taps(ox, w, scales[1]);
      for (int64_t b = 0; b < n; ++b)
        for (int64_t k = 0; k < ch; ++k) {
          double acc = 0.0;
          for (const auto& [iy, wy] : ty)
            for (const auto& [ix, wx] : tx)
              acc += wy * wx * c.in(0)[static_cast<size_t>(((b * h + iy) * w + ix) * ch + k)];
          y[static_cast<size_t>(((b * size[0] + oy) * size[1] + ox) * ch + k)] = static_cast<float>(acc);
        }
    }
}

// ---------------------------------------------------------------------------
// Tensor values: the executor holds every tensor as its real values.

// The value of IEEE binary16 bits.
double half_value(uint16_t h) {
  const int exponent = (h >> 10) & 31, mantissa = h & 1023;
  double magnitude = std::ldexp(1024 + mantissa, exponent - 25);
  if (exponent == 0) magnitude = std::ldexp(mantissa, -24);
  if (exponent == 31) magnitude = mantissa ? std::numeric_limits<double>::quiet_NaN() : kInf;
  return (h & 0x8000) ? -magnitude : magnitude;
}

// Throws unless `t`'s quantisation has one scale (axis -1) or one per index of
// its axis, as many zero points, and positive finite scales.
void check_quant(const Tensor& t) {
  const Quant& q = t.quant;
  const std::string name = "tensor '" + t.name + "'";
  const bool per_tensor = q.axis == -1 && q.scale.size() == 1;
  const bool per_axis = q.axis >= 0 && static_cast<size_t>(q.axis) < t.shape.size() &&
                        static_cast<int64_t>(q.scale.size()) == t.shape[static_cast<size_t>(q.axis)];
  if (!per_tensor && !per_axis)
    throw GraphError(name + " " + shape_text(t.shape) + " has " + std::to_string(q.scale.size()) +
                     " quantisation scales on axis " + std::to_string(q.axis));
  if (q.zero_point.size() != q.scale.size())
    throw GraphError(name + " has " + std::to_string(q.zero_point.size()) + " zero points for " +
                     std::to_string(q.scale.size()) + " scales");
  for (float scale : q.scale)
    if (!(scale > 0.0f) || !std::isfinite(scale))
      throw GraphError(name + " has quantisation scale " + std::to_string(scale));
}

// Constant `t`'s integers (of type T) dequantised by its quantisation
// (real = scale * (q - zero_point), per index of its axis or per tensor).
template <class T>
std::vector<float> dequantised(const Tensor& t) {
  const std::span<const T> q = t.values<T>();
  std::vector<float> v(q.size());
  if (t.quant.empty()) {  // u8 indices
    std::copy(q.begin(), q.end(), v.begin());
    return v;
  }
  check_quant(t);
  const size_t axis = static_cast<size_t>(std::max(t.quant.axis, 0));
  const int64_t dim = t.quant.axis < 0 ? 1 : t.shape[axis];
  const int64_t inner =
      t.quant.axis < 0
          ? 1
          : elements(Shape(t.shape.begin() + static_cast<std::ptrdiff_t>(axis) + 1, t.shape.end()));
  for (size_t i = 0; i < q.size(); ++i) {
    const auto c = static_cast<size_t>(static_cast<int64_t>(i) / inner % dim);
    v[i] = static_cast<float>(double{t.quant.scale[c]} * (static_cast<double>(q[i]) - t.quant.zero_point[c]));
  }
  return v;
}

// The real values of constant `t`: f32 as stored, f16 converted, i8 and i32
// dequantised (they need a quantisation), u8 dequantised or, without a
// quantisation, its integers (codebook indices). Throws GraphError for a
// length that does not fit the shape or a type it cannot read.
std::vector<float> constant_values(const Tensor& t) {
  const int64_t want = elements(t.shape);
  if (static_cast<int64_t>(t.data.size()) != want * static_cast<int64_t>(dtype_bytes(t.dtype)))
    throw GraphError("constant '" + t.name + "' has " + std::to_string(t.data.size() / dtype_bytes(t.dtype)) +
                     " values for shape " + shape_text(t.shape));
  if ((t.dtype == DType::i8 || t.dtype == DType::i32) && t.quant.empty())
    throw GraphError("constant '" + t.name + "' is " + dtype_text(t.dtype) + " without quantisation");
  switch (t.dtype) {
    case DType::f32: {
      const std::span<const float> v = t.values<float>();
      return {v.begin(), v.end()};
    }
    case DType::f16: {
      std::vector<float> v;
      for (uint16_t h : t.values<uint16_t>()) v.push_back(static_cast<float>(half_value(h)));
      return v;
    }
    case DType::i8:
      return dequantised<int8_t>(t);
    case DType::i32:
      return dequantised<int32_t>(t);
    case DType::u8:
      return dequantised<uint8_t>(t);
    case DType::i64:
      break;
  }
  throw GraphError("constant '" + t.name + "' is " + dtype_text(t.dtype) +
                   ": the reference executor reads f32, f16, i8, i32 and u8 constants");
}

// Puts real values on an int8 grid: scale * (q - zero_point) with
// q = round_half_even(v / scale) + zero_point saturated to [-128, 127] (NaN: the zero point).
void quantise(std::span<float> values, float scale, int32_t zero_point) {
  for (float& v : values) {
    const double q = std::isnan(v) ? 0.0 : std::nearbyint(static_cast<double>(v) / scale);
    const double clamped = std::clamp(q + zero_point, -128.0, 127.0);
    v = static_cast<float>(double{scale} * (clamped - zero_point));
  }
}

constexpr int kAny = -1;  // Op::outputs of an op that makes one or more (the node decides)

}  // namespace

struct ReferenceExecutor::Op {
  const char* name;
  int min_inputs, max_inputs;  // counting absent optional inputs; kAny: no upper bound
  int outputs;                 // kAny: one or more
  void (*fn)(Call&);
};

namespace {

// The op table, sorted by name: adding an op is one function above and one line here.
const ReferenceExecutor::Op kOps[] = {
    {"Add", 2, 2, 1, add},
    {"AveragePool2D", 1, 1, 1, average_pool},
    {"Clip", 1, 1, 1, clip},
    {"CodebookFullyConnected", 3, 4, 1, codebook_fully_connected},
    {"Concat", 1, kAny, 1, concat},
    {"Conv2D", 2, 3, 1, conv2d},
    {"Dequantize", 1, 1, 1, identity},
    {"Div", 2, 2, 1, div},
    {"FullyConnected", 2, 3, 1, fully_connected},
    {"GlobalAveragePool", 1, 1, 1, global_average_pool},
    {"HardSigmoid", 1, 1, 1, hard_sigmoid},
    {"HardSwish", 1, 1, 1, hard_swish},
    {"LeakyRelu", 1, 1, 1, leaky_relu},
    {"MaxPool2D", 1, 1, 1, max_pool},
    {"Mul", 2, 2, 1, mul},
    {"Pad", 1, 1, 1, pad},
    {"Quantize", 1, 1, 1, identity},
    {"ReduceMean", 1, 1, 1, reduce_mean},
    {"Relu", 1, 1, 1, relu},
    {"Reshape", 1, 1, 1, reshape},
    {"Resize", 1, 1, 1, resize},
    {"Sigmoid", 1, 1, 1, sigmoid},
    {"Silu", 1, 1, 1, silu},
    {"Slice", 1, 1, 1, slice},
    {"Softmax", 1, 1, 1, softmax},
    {"Split", 1, 1, kAny, split},
    {"Sub", 2, 2, 1, sub},
    {"Transpose", 1, 1, 1, transpose},
};

const ReferenceExecutor::Op* find(const std::string& name) {
  for (const auto& op : kOps)
    if (name == op.name) return &op;
  return nullptr;
}

// "2", "1 to 3", "1 or more".
std::string count_text(int min, int max) {
  if (max == kAny) return std::to_string(min) + " or more";
  return std::to_string(min) + (max != min ? " to " + std::to_string(max) : "");
}

}  // namespace

std::vector<std::string> ReferenceExecutor::op_names() {
  std::vector<std::string> names;
  for (const auto& op : kOps) names.emplace_back(op.name);
  std::sort(names.begin(), names.end());
  return names;
}

ReferenceExecutor::ReferenceExecutor(const Graph& graph) : inputs_(graph.inputs), outputs_(graph.outputs) {
  const size_t tensors = graph.tensors.size();
  auto check_index = [&](int t, const std::string& where) {
    if (t < 0 || static_cast<size_t>(t) >= tensors)
      throw GraphError(where + " names tensor " + std::to_string(t) + ", the graph has " +
                       std::to_string(tensors));
  };
  constant_.assign(tensors, false);
  constants_.resize(tensors);
  for (size_t t = 0; t < tensors; ++t) {
    const Tensor& tensor = graph.tensors[t];
    names_.push_back(tensor.name);
    shapes_.push_back(tensor.shape);
    if (!tensor.is_constant()) continue;
    constant_[t] = true;
    constants_[t] = constant_values(tensor);
  }
  // Every unknown op at once, so a converter author sees the whole list.
  std::map<std::string, std::vector<std::string>> unknown;
  for (size_t j = 0; j < graph.nodes.size(); ++j)
    if (!find(graph.nodes[j].op)) unknown[graph.nodes[j].op].push_back(graph.nodes[j].describe(j));
  if (!unknown.empty()) {
    std::string msg =
        "the reference executor has no op for " + std::to_string(unknown.size()) + " op type(s):";
    for (const auto& [op, where] : unknown)
      msg += "\n  " + op + " (" + std::to_string(where.size()) + "x, first at " + where.front() + ")";
    throw GraphError(msg);
  }

  // A tensor is ready once it is a graph input, a constant or made by an earlier node.
  std::vector<bool> ready = constant_;
  // Activations are f32, or i8 quantised per tensor (their grid).
  grids_.assign(tensors, {});
  auto require_activation = [&](int t, const std::string& where) {
    const Tensor& tensor = graph.tensors[static_cast<size_t>(t)];
    if (tensor.is_constant() || tensor.dtype == DType::f32) return;
    const std::string name = where + " '" + tensor.name + "' is " + dtype_text(tensor.dtype);
    if (tensor.dtype != DType::i8)
      throw GraphError(name + ": the reference executor runs f32 and i8 activations only");
    if (tensor.quant.empty()) throw GraphError(name + " without quantisation");
    check_quant(tensor);
    if (tensor.quant.axis != -1)
      throw GraphError(name + " quantised per channel: an activation needs one scale");
    grids_[static_cast<size_t>(t)] = {tensor.quant.scale[0], tensor.quant.zero_point[0]};
  };
  for (size_t i = 0; i < inputs_.size(); ++i) {
    const std::string where = "graph input " + std::to_string(i);
    check_index(inputs_[i], where);
    require_activation(inputs_[i], where);
    ready[static_cast<size_t>(inputs_[i])] = true;
  }
  // Step index + 1 of the last node that reads each tensor (or of the node
  // that makes it, if nothing reads it): its values are dropped after that step.
  std::vector<size_t> last_read(tensors, 0);
  for (size_t j = 0; j < graph.nodes.size(); ++j) {
    const Node& node = graph.nodes[j];
    const Op& op = *find(node.op);
    const int n_in = static_cast<int>(node.inputs.size()), n_out = static_cast<int>(node.outputs.size());
    if (n_in < op.min_inputs || (op.max_inputs != kAny && n_in > op.max_inputs))
      throw GraphError(node.describe(j) + ": has " + std::to_string(n_in) + " inputs, the op takes " +
                       count_text(op.min_inputs, op.max_inputs));
    if (op.outputs == kAny ? n_out < 1 : n_out != op.outputs)
      throw GraphError(node.describe(j) + ": has " + std::to_string(n_out) + " outputs, the op makes " +
                       count_text(op.outputs == kAny ? 1 : op.outputs, op.outputs));
    std::vector<const Shape*> shapes;
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      const int t = node.inputs[i];
      if (t == kNoTensor) {
        shapes.push_back(nullptr);
        continue;
      }
      const std::string where = node.describe(j) + ": input " + std::to_string(i);
      check_index(t, where);
      require_activation(t, where);
      if (!ready[static_cast<size_t>(t)])
        throw GraphError(where + " '" + names_[static_cast<size_t>(t)] +
                         "' is neither a graph input, a constant nor made by an earlier node");
      shapes.push_back(&shapes_[static_cast<size_t>(t)]);
      last_read[static_cast<size_t>(t)] = j + 1;
    }
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      const std::string where = node.describe(j) + ": output " + std::to_string(k);
      check_index(node.outputs[k], where);
      require_activation(node.outputs[k], where);
      if (ready[static_cast<size_t>(node.outputs[k])])
        throw GraphError(where + " '" + names_[static_cast<size_t>(node.outputs[k])] + "' is already made");
    }
    Call call(node, j, std::move(shapes), {}, false);
    op.fn(call);
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      const size_t t = static_cast<size_t>(node.outputs[k]);
      const Shape& inferred = call.out_shapes()[k];
      if (!shapes_[t].empty() && shapes_[t] != inferred)
        throw GraphError(node.describe(j) + ": output '" + names_[t] + "' is declared " +
                         shape_text(shapes_[t]) + " but the op computes " + shape_text(inferred));
      shapes_[t] = inferred;
      ready[t] = true;
      last_read[t] = j + 1;
    }
    steps_.push_back({&op, j, node, {}});
  }
  for (size_t i = 0; i < outputs_.size(); ++i) {
    check_index(outputs_[i], "graph output " + std::to_string(i));
    if (!ready[static_cast<size_t>(outputs_[i])])
      throw GraphError("graph output " + std::to_string(i) + " '" + names_[static_cast<size_t>(outputs_[i])] +
                       "' is neither a graph input, a constant nor made by a node");
    last_read[static_cast<size_t>(outputs_[i])] = steps_.size() + 1;  // kept to the end
  }
  for (size_t t = 0; t < tensors; ++t)
    if (!constant_[t] && last_read[t] >= 1 && last_read[t] <= steps_.size())
      steps_[last_read[t] - 1].last_reads.push_back(static_cast<int>(t));
}

void ReferenceExecutor::on_grid(int tensor, std::span<float> values) const {
  const Grid& grid = grids_[static_cast<size_t>(tensor)];
  if (grid.scale > 0) quantise(values, grid.scale, grid.zero_point);
}

std::vector<std::vector<float>> ReferenceExecutor::run(const std::vector<std::span<const float>>& inputs,
                                                       const Observer& observe) const {
  if (inputs.size() != inputs_.size())
    throw GraphError("the graph has " + std::to_string(inputs_.size()) + " inputs, run got " +
                     std::to_string(inputs.size()));
  // Each tensor's values: graph inputs and constants where they are, activations in `made`.
  std::vector<std::span<const float>> values(shapes_.size());
  std::vector<std::vector<float>> made(shapes_.size());
  for (size_t t = 0; t < shapes_.size(); ++t)
    if (constant_[t]) values[t] = constants_[t];
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int t = inputs_[i];
    const int64_t want = elements(shape(t));
    if (static_cast<int64_t>(inputs[i].size()) != want)
      throw GraphError("graph input " + std::to_string(i) + " '" + name(t) + "' " + shape_text(shape(t)) +
                       " takes " + std::to_string(want) + " values, run got " +
                       std::to_string(inputs[i].size()));
    values[static_cast<size_t>(t)] = inputs[i];
    if (grids_[static_cast<size_t>(t)].scale > 0) {
      made[static_cast<size_t>(t)].assign(inputs[i].begin(), inputs[i].end());
      on_grid(t, made[static_cast<size_t>(t)]);
      values[static_cast<size_t>(t)] = made[static_cast<size_t>(t)];
    }
  }
  if (observe)
    for (int t : inputs_) observe(t, values[static_cast<size_t>(t)]);
  for (const Step& step : steps_) {
    std::vector<const Shape*> shapes;
    std::vector<std::span<const float>> in;
    for (int t : step.node.inputs) {
      shapes.push_back(t == kNoTensor ? nullptr : &shapes_[static_cast<size_t>(t)]);
      in.push_back(t == kNoTensor ? std::span<const float>() : values[static_cast<size_t>(t)]);
    }
    Call call(step.node, step.index, std::move(shapes), std::move(in), true);
    step.op->fn(call);
    for (size_t k = 0; k < step.node.outputs.size(); ++k) {
      const size_t t = static_cast<size_t>(step.node.outputs[k]);
      made[t] = std::move(call.out_values()[k]);
      on_grid(static_cast<int>(t), made[t]);
      values[t] = made[t];
      if (observe) observe(static_cast<int>(t), values[t]);
    }
    for (int t : step.last_reads) {
      made[static_cast<size_t>(t)] = {};
      values[static_cast<size_t>(t)] = {};
    }
  }
  std::vector<std::vector<float>> result;
  for (int t : outputs_)
    result.emplace_back(values[static_cast<size_t>(t)].begin(), values[static_cast<size_t>(t)].end());
  return result;
}

}  // namespace huddle::engine
