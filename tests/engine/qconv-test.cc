// The int8 ops of engine/INT8.md: Conv2D and FullyConnected in their int8
// form, Quantize, Dequantize and CodebookFullyConnected. Each runs against a
// direct formula written here (for Conv2D / FullyConnected: the int32
// accumulators and the requantisation rule of kernels/gemm/gemm.h, bit for
// bit) and against the reference executor (within one quantisation step), on
// random shapes, with the same bits on 1, 2 and 3 threads; then the prepare
// errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "engine/interpreter.h"
#include "engine/reference.h"
#include "kernels/codebook/codebook.h"
#include "tests/engine/builder.h"

using namespace huddle::engine;
using namespace huddle::test;

namespace {

using Ints = std::vector<int64_t>;
using Attrs = std::map<std::string, AttrValue>;
using Bytes = std::vector<uint8_t>;

int64_t pick(Rng& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(rng.uniform(0, static_cast<size_t>(hi - lo)));
}

float uniform_real(Rng& rng, float lo, float hi) {
  return lo + (hi - lo) * static_cast<float>(rng.uniform(0, 1 << 20)) / float(1 << 20);
}

Quant per_row(const std::vector<float>& scales) {
  Quant q;
  q.scale = scales;
  q.zero_point.assign(scales.size(), 0);
  q.axis = 0;
  return q;
}

template <class T>
Bytes bytes_of(const std::vector<T>& v) {
  Bytes b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

template <class T>
std::vector<T> values_of(const Bytes& b) {
  std::vector<T> v(b.size() / sizeof(T));
  if (!v.empty()) std::memcpy(v.data(), b.data(), b.size());
  return v;
}

std::vector<int8_t> random_int8(Rng& rng, size_t n, int lo = -128, int hi = 127) {
  std::vector<int8_t> v(n);
  for (int8_t& q : v) q = static_cast<int8_t>(pick(rng, lo, hi));
  return v;
}

// Gives tensor t (an input or a node output) dtype `dtype` and quantisation q.
void set_type(Builder& bld, int t, DType dtype, const Quant& q = {}) {
  Tensor& tensor = bld.g.tensors[static_cast<size_t>(t)];
  tensor.dtype = dtype;
  tensor.quant = q;
}

int typed_input(Builder& bld, const std::string& name, const Shape& shape, DType dtype, const Quant& q = {}) {
  const int t = bld.input(name, shape);
  set_type(bld, t, dtype, q);
  return t;
}

int typed_constant(Builder& bld, const std::string& name, DType dtype, const Shape& shape, Bytes bytes,
                   const Quant& q = {}) {
  const int t = bld.g.add_constant(name, dtype, shape, std::move(bytes));
  bld.g.tensors[static_cast<size_t>(t)].quant = q;
  return t;
}

// The engine's output `out` (raw bytes) on raw input bytes, with `threads` threads.
Bytes run_engine(Graph g, int out, const std::vector<Bytes>& inputs, size_t threads) {
  g.outputs = {out};
  Interpreter it(std::move(g), InterpreterOptions{threads});
  for (size_t i = 0; i < inputs.size(); ++i) {
    REQUIRE(static_cast<size_t>(elements(it.input(i).shape)) * dtype_bytes(it.input(i).dtype) ==
            inputs[i].size());
    if (!inputs[i].empty()) std::memcpy(it.input_data(i), inputs[i].data(), inputs[i].size());
  }
  it.run();
  const size_t n = static_cast<size_t>(elements(it.output(0).shape)) * dtype_bytes(it.output(0).dtype);
  const auto* y = static_cast<const uint8_t*>(it.output_data(0));
  return n ? Bytes(y, y + n) : Bytes();
}

// The engine's output on 1, 2 and 3 threads, required to be the same bytes.
Bytes run_threads(const Graph& g, int out, const std::vector<Bytes>& inputs) {
  const Bytes one = run_engine(g, out, inputs, 1);
  for (size_t threads : {2, 3}) {
    INFO(threads << " threads");
    REQUIRE(run_engine(g, out, inputs, threads) == one);
  }
  return one;
}

// The reference executor's output `out` (real values) on real inputs.
std::vector<float> run_reference(Graph g, int out, const std::vector<std::vector<float>>& inputs) {
  g.outputs = {out};
  const ReferenceExecutor ref(g);
  std::vector<std::span<const float>> spans(inputs.begin(), inputs.end());
  return ref.run(spans)[0];
}

std::vector<float> real_values(const std::vector<int8_t>& q, float scale, int32_t zero_point) {
  std::vector<float> v;
  for (int8_t x : q) v.push_back(static_cast<float>(double{scale} * (x - zero_point)));
  return v;
}

// Requires |got - the reference's (real) output on Y's grid| <= 1 everywhere.
void require_within_step(const std::vector<int8_t>& got, const std::vector<float>& reference, float scale,
                         int32_t zero_point) {
  REQUIRE(got.size() == reference.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double q = std::nearbyint(reference[i] / double{scale}) + zero_point;
    INFO("element " << i << ": engine " << int{got[i]} << ", reference " << q);
    REQUIRE(std::abs(got[i] - q) <= 1.0);
  }
}

// The int8 clamp bounds of a fused activation with output quantisation
// (scale, zero point): INT8.md's min = max(-128, zp + round(lo / scale)), max likewise.
std::pair<int, int> int8_bounds(const std::string& activation, float scale, int32_t zero_point) {
  int lo = -128, hi = 127;
  if (activation == "relu" || activation == "relu6") lo = std::max(-128, zero_point);
  if (activation == "relu6") hi = std::min(127, zero_point + static_cast<int>(std::nearbyint(6.0 / scale)));
  return {lo, hi};
}

// kernels/gemm/gemm.h's requantisation, written out: the product and the
// clamp in float, then round half to even.
int8_t requantise(int32_t acc, float scale, int32_t zero_point, std::pair<int, int> bounds) {
  float f = static_cast<float>(acc) * scale;
  f = std::min(std::max(f, static_cast<float>(bounds.first - zero_point)),
               static_cast<float>(bounds.second - zero_point));
  return static_cast<int8_t>(static_cast<int>(std::nearbyint(f)) + zero_point);
}

// The weights, bias and quantisations of one int8 Conv2D / FullyConnected.
struct Int8Layer {
  int64_t outputs = 0;
  std::vector<int8_t> w;
  std::vector<float> w_scale;  // per output (equal when per tensor)
  bool per_channel = true;
  std::vector<int32_t> bias;  // empty: none
  float x_scale = 1, y_scale = 1;
  int32_t x_zp = 0, y_zp = 0;
  std::string activation = "none";

  float requant_scale(int64_t o) const {
    return static_cast<float>(double{x_scale} * w_scale[static_cast<size_t>(o)] / y_scale);
  }
};

// Random weights (values in [-127, 127]) for `outputs` outputs of `fan_in`
// products each, and an output scale that keeps most outputs inside the int8 range.
Int8Layer random_layer(Rng& rng, int64_t outputs, int64_t fan_in, size_t weights) {
  Int8Layer l;
  l.outputs = outputs;
  l.w = random_int8(rng, weights, -127, 127);
  l.per_channel = rng.coin(0.6);
  const float shared = uniform_real(rng, 0.002f, 0.02f);
  for (int64_t o = 0; o < outputs; ++o)
    l.w_scale.push_back(l.per_channel ? uniform_real(rng, 0.002f, 0.02f) : shared);
  l.x_scale = uniform_real(rng, 0.01f, 0.05f);
  l.x_zp = rng.coin(0.3) ? 0 : static_cast<int32_t>(pick(rng, -128, 127));
  const double spread = 70.0 * 70.0 * std::sqrt(static_cast<double>(fan_in));  // sd of an accumulator
  if (rng.coin(0.8))
    for (int64_t o = 0; o < outputs; ++o)
      l.bias.push_back(static_cast<int32_t>(uniform_real(rng, -1, 1) * spread));
  l.y_scale = static_cast<float>(double{l.x_scale} * shared * spread * uniform_real(rng, 1.0f, 6.0f) / 127);
  l.y_zp = static_cast<int32_t>(pick(rng, -30, 30));
  l.activation = rng.pick({"none", "relu", "relu6"});
  return l;
}

// Adds the layer's W, B and Y's type to a node of op `op` on input x; returns Y.
int add_layer(Builder& bld, const std::string& op, int x, const Shape& w_shape, const Int8Layer& l,
              Attrs attrs) {
  const Quant wq = l.per_channel ? per_row(l.w_scale) : per_tensor(l.w_scale[0], 0);
  std::vector<int> ins = {x, typed_constant(bld, "w", DType::i8, w_shape, bytes_of(l.w), wq)};
  if (!l.bias.empty()) {
    std::vector<float> bs;
    for (float s : l.w_scale) bs.push_back(static_cast<float>(double{l.x_scale} * s));
    ins.push_back(typed_constant(bld, "b", DType::i32, {l.outputs}, bytes_of(l.bias), per_row(bs)));
  }
  attrs["activation"] = l.activation;
  const int y = bld.node(op, ins, attrs);
  set_type(bld, y, DType::i8, per_tensor(l.y_scale, l.y_zp));
  return y;
}

// Runs the one-node graph on x (threads 1, 2, 3) and on the reference;
// requires the engine to give `accumulators` requantised exactly and to be
// within a step of the reference. Returns the number of outputs checked.
size_t check_layer(const Builder& bld, int y, const std::vector<int8_t>& x, const Int8Layer& l,
                   const std::vector<int32_t>& accumulators) {
  const std::vector<int8_t> got = values_of<int8_t>(run_threads(bld.g, y, {bytes_of(x)}));
  REQUIRE(got.size() == accumulators.size());
  const auto bounds = int8_bounds(l.activation, l.y_scale, l.y_zp);
  for (size_t i = 0; i < got.size(); ++i) {
    const int64_t o = static_cast<int64_t>(i) % l.outputs;
    INFO("element " << i << ", accumulator " << accumulators[i]);
    REQUIRE(int{got[i]} == int{requantise(accumulators[i], l.requant_scale(o), l.y_zp, bounds)});
  }
  require_within_step(got, run_reference(bld.g, y, {real_values(x, l.x_scale, l.x_zp)}), l.y_scale, l.y_zp);
  return got.size();
}

struct ConvCase {
  int64_t n, h, w, c, o, kh, kw, group;
  Ints strides, dilations, pads;
  int64_t out_h() const { return (h + pads[0] + pads[2] - dilations[0] * (kh - 1) - 1) / strides[0] + 1; }
  int64_t out_w() const { return (w + pads[1] + pads[3] - dilations[1] * (kw - 1) - 1) / strides[1] + 1; }
};

// Conv2D's int32 accumulators: bias + sum over the taps inside the image of (x - x_zp) * w.
std::vector<int32_t> conv_accumulators(const ConvCase& s, const std::vector<int8_t>& x, const Int8Layer& l) {
  const int64_t oh = s.out_h(), ow = s.out_w(), cg = s.c / s.group, og = s.o / s.group;
  std::vector<int32_t> acc;
  for (int64_t b = 0; b < s.n; ++b)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t o = 0; o < s.o; ++o) {
          int32_t sum = l.bias.empty() ? 0 : l.bias[static_cast<size_t>(o)];
          const int64_t g = o / og;
          for (int64_t ky = 0; ky < s.kh; ++ky)
            for (int64_t kx = 0; kx < s.kw; ++kx) {
              const int64_t iy = oy * s.strides[0] - s.pads[0] + ky * s.dilations[0];
              const int64_t ix = ox * s.strides[1] - s.pads[1] + kx * s.dilations[1];
              if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
              for (int64_t ci = 0; ci < cg; ++ci) {
                const int32_t xv = x[static_cast<size_t>(((b * s.h + iy) * s.w + ix) * s.c + g * cg + ci)];
                const int32_t wv = l.w[static_cast<size_t>(((o * s.kh + ky) * s.kw + kx) * cg + ci)];
                sum += (xv - l.x_zp) * wv;
              }
            }
          acc.push_back(sum);
        }
  return acc;
}

size_t check_conv(Rng& rng, const ConvCase& s) {
  INFO("conv " << s.n << "x" << s.h << "x" << s.w << "x" << s.c << " -> " << s.o << ", kernel " << s.kh << "x"
               << s.kw << ", group " << s.group << ", strides " << shape_text(s.strides) << ", dilations "
               << shape_text(s.dilations) << ", pads " << shape_text(s.pads));
  const int64_t cg = s.c / s.group;
  const Int8Layer l = random_layer(rng, s.o, s.kh * s.kw * cg, static_cast<size_t>(s.o * s.kh * s.kw * cg));
  INFO("per channel " << l.per_channel << ", bias " << !l.bias.empty() << ", activation " << l.activation);
  Builder bld;
  const int x = typed_input(bld, "x", {s.n, s.h, s.w, s.c}, DType::i8, per_tensor(l.x_scale, l.x_zp));
  const Attrs attrs = {
      {"strides", s.strides}, {"dilations", s.dilations}, {"pads", s.pads}, {"group", s.group}};
  const int y = add_layer(bld, "Conv2D", x, {s.o, s.kh, s.kw, cg}, l, attrs);
  const std::vector<int8_t> xv = random_int8(rng, static_cast<size_t>(s.n * s.h * s.w * s.c));
  return check_layer(bld, y, xv, l, conv_accumulators(s, xv, l));
}

// A random Conv2D: dense, grouped or depthwise (mostly the shapes
// kernels/dwconv runs), kernels 1 to 7, strides 1 / 2, dilations 1 / 2.
ConvCase random_conv(Rng& rng, int kind) {
  ConvCase s;
  s.n = rng.coin(0.3) ? 2 : 1;
  const bool dw_kernel = kind == 2 && rng.coin(0.7);
  s.kh = dw_kernel ? rng.pick<int64_t>({3, 5}) : rng.pick<int64_t>({1, 3, 5, 7});
  s.kw = dw_kernel || rng.coin(0.7) ? s.kh : rng.pick<int64_t>({1, 3, 5});
  const int64_t stride = rng.pick<int64_t>({1, 2});
  s.strides = dw_kernel || rng.coin(0.7) ? Ints{stride, stride} : Ints{pick(rng, 1, 2), pick(rng, 1, 2)};
  s.dilations = dw_kernel || rng.coin(0.8) ? Ints{1, 1} : Ints{pick(rng, 1, 2), pick(rng, 1, 2)};
  s.pads = {pick(rng, 0, s.kh - 1), pick(rng, 0, s.kw - 1), pick(rng, 0, s.kh - 1), pick(rng, 0, s.kw - 1)};
  const int64_t span_h = s.dilations[0] * (s.kh - 1) + 1, span_w = s.dilations[1] * (s.kw - 1) + 1;
  s.h = pick(rng, std::max<int64_t>(1, span_h - s.pads[0] - s.pads[2]), span_h + 8);
  s.w = pick(rng, std::max<int64_t>(1, span_w - s.pads[1] - s.pads[3]), span_w + 8);
  if (kind == 0) {
    s.group = 1, s.c = pick(rng, 1, 40), s.o = pick(rng, 1, 40);
  } else if (kind == 1) {
    s.group = pick(rng, 2, 3);
    s.c = s.group * pick(rng, 1, 12), s.o = s.group * pick(rng, 1, 12);
  } else {
    s.c = s.o = s.group = pick(rng, 2, 50);
  }
  return s;
}

// FullyConnected's int32 accumulators for x [m, k] and W [o, k].
std::vector<int32_t> fc_accumulators(int64_t m, int64_t k, const std::vector<int8_t>& x, const Int8Layer& l) {
  std::vector<int32_t> acc;
  for (int64_t r = 0; r < m; ++r)
    for (int64_t o = 0; o < l.outputs; ++o) {
      int32_t sum = l.bias.empty() ? 0 : l.bias[static_cast<size_t>(o)];
      for (int64_t i = 0; i < k; ++i)
        sum += (x[static_cast<size_t>(r * k + i)] - l.x_zp) * int32_t{l.w[static_cast<size_t>(o * k + i)]};
      acc.push_back(sum);
    }
  return acc;
}

size_t check_fully_connected(Rng& rng, const Shape& x_shape, int64_t outputs) {
  INFO("FullyConnected " << shape_text(x_shape) << " -> " << outputs);
  const int64_t k = x_shape.back(), m = elements(x_shape) / k;
  const Int8Layer l = random_layer(rng, outputs, k, static_cast<size_t>(outputs * k));
  INFO("per channel " << l.per_channel << ", bias " << !l.bias.empty() << ", activation " << l.activation);
  Builder bld;
  const int x = typed_input(bld, "x", x_shape, DType::i8, per_tensor(l.x_scale, l.x_zp));
  const int y = add_layer(bld, "FullyConnected", x, {outputs, k}, l, {});
  const std::vector<int8_t> xv = random_int8(rng, static_cast<size_t>(m * k));
  return check_layer(bld, y, xv, l, fc_accumulators(m, k, xv, l));
}

// The GraphError preparing `bld`'s graph throws (empty if none).
std::string prepare_error(const Builder& bld) {
  try {
    Interpreter it(bld.g);
  } catch (const GraphError& e) {
    return e.what();
  }
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("int8 Conv2D: dense, grouped and depthwise against the accumulators and the reference",
          "[engine][int8]") {
  Rng rng(501);
  size_t checked = 0;
  for (int t = 0; t < 240; ++t) checked += check_conv(rng, random_conv(rng, t % 3));
  CHECK(checked > 50000);
}

TEST_CASE("int8 Conv2D: layers big enough to split over threads", "[engine][int8]") {
  Rng rng(502);
  // Dense 3x3 with padding, a 1x1 (the plain GEMM), depthwise on kernels/dwconv
  // (3x3 stride 1, 5x5 stride 2) and a depthwise shape it does not run (7x7).
  check_conv(rng, {1, 40, 40, 32, 48, 3, 3, 1, {1, 1}, {1, 1}, {1, 1, 1, 1}});
  check_conv(rng, {2, 28, 28, 64, 70, 1, 1, 1, {1, 1}, {1, 1}, {0, 0, 0, 0}});
  check_conv(rng, {2, 96, 96, 72, 72, 3, 3, 72, {1, 1}, {1, 1}, {1, 1, 1, 1}});
  check_conv(rng, {1, 150, 150, 96, 96, 5, 5, 96, {2, 2}, {1, 1}, {2, 2, 1, 2}});
  check_conv(rng, {1, 60, 60, 40, 40, 7, 7, 40, {1, 1}, {1, 1}, {3, 3, 3, 3}});
}

TEST_CASE("int8 FullyConnected against the accumulators and the reference", "[engine][int8]") {
  Rng rng(503);
  size_t checked = 0;
  for (int t = 0; t < 150; ++t) {
    Shape x_shape;
    const size_t rank = static_cast<size_t>(pick(rng, 1, 3));
    for (size_t d = 0; d + 1 < rank; ++d) x_shape.push_back(pick(rng, 1, 4));
    x_shape.push_back(pick(rng, 1, 150));
    checked += check_fully_connected(rng, x_shape, pick(rng, 1, 80));
  }
  CHECK(checked > 10000);
  check_fully_connected(rng, {8, 1000}, 600);  // split over threads
}

TEST_CASE("Quantize and Dequantize: rounding, saturation, round trips, threads", "[engine][int8]") {
  auto quantize = [](const std::vector<float>& x, const Quant& q) {
    Builder bld;
    const int y = bld.node("Quantize", {bld.input("x", {static_cast<int64_t>(x.size())})});
    set_type(bld, y, DType::i8, q);
    return values_of<int8_t>(run_threads(bld.g, y, {bytes_of(x)}));
  };
  SECTION("by hand") {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    const std::vector<float> x = {0.25f,    0.75f, -0.25f, -0.75f, 1.25f, 1000.0f,
                                  -1000.0f, nan,   inf,    -inf,   3.0f};
    CHECK(quantize(x, per_tensor(0.5f, 0)) ==
          std::vector<int8_t>{0, 2, 0, -2, 2, 127, -128, 0, 127, -128, 6});
    CHECK(quantize(x, per_tensor(0.5f, 120)) ==
          std::vector<int8_t>{120, 122, 120, 118, 122, 127, -128, 120, 127, -128, 126});
    Builder bld;
    const int x8 = typed_input(bld, "x", {4}, DType::i8, per_tensor(0.25f, -3));
    const int y = bld.node("Dequantize", {x8});
    const std::vector<int8_t> q = {-128, -3, 0, 127};
    CHECK(values_of<float>(run_threads(bld.g, y, {bytes_of(q)})) ==
          std::vector<float>{-31.25f, 0.0f, 0.75f, 32.5f});
  }
  SECTION("random values against the formula and the reference; round trips") {
    Rng rng(504);
    for (int t = 0; t < 20; ++t) {
      const float scale = uniform_real(rng, 0.005f, 0.2f);
      const int32_t zp = static_cast<int32_t>(pick(rng, -128, 127));
      const size_t n = t == 0 ? size_t{1} << 20 : static_cast<size_t>(pick(rng, 1, 3000));
      std::vector<float> x = random_values(rng, n);
      for (float& v : x) v *= 60.0f * scale;
      Builder bld;
      const int xi = bld.input("x", {static_cast<int64_t>(n)});
      const int q = bld.node("Quantize", {xi});
      set_type(bld, q, DType::i8, per_tensor(scale, zp));
      const int back = bld.node("Dequantize", {q});
      const std::vector<int8_t> got = values_of<int8_t>(run_threads(bld.g, q, {bytes_of(x)}));
      for (size_t i = 0; i < n; ++i) {
        const float v = std::nearbyint(x[i] / scale) + static_cast<float>(zp);
        REQUIRE(int{got[i]} == static_cast<int>(std::min(127.0f, std::max(-128.0f, v))));
      }
      require_within_step(got, run_reference(bld.g, q, {x}), scale, zp);
      // Dequantize(Quantize(x)) is within half a step of x inside the range,
      // and a step of the reference (which divides in double).
      const std::vector<float> round = values_of<float>(run_threads(bld.g, back, {bytes_of(x)}));
      const std::vector<float> reference = run_reference(bld.g, back, {x});
      for (size_t i = 0; i < n; ++i) {
        REQUIRE(std::abs(round[i] - reference[i]) <= 1.0001f * scale);
        const float lo = scale * static_cast<float>(-128 - zp), hi = scale * static_cast<float>(127 - zp);
        if (x[i] >= lo && x[i] <= hi) REQUIRE(std::abs(round[i] - x[i]) <= 0.5001f * scale);
      }
    }
    // Quantize(Dequantize(q)) == q for every q.
    Builder bld;
    const Quant qq = per_tensor(0.037f, 17);
    const int x8 = typed_input(bld, "x", {256}, DType::i8, qq);
    const int y = bld.node("Quantize", {bld.node("Dequantize", {x8})});
    set_type(bld, y, DType::i8, qq);
    std::vector<int8_t> all;
    for (int v = -128; v <= 127; ++v) all.push_back(static_cast<int8_t>(v));
    CHECK(values_of<int8_t>(run_threads(bld.g, y, {bytes_of(all)})) == all);
  }
}

namespace {

// CodebookFullyConnected on X [m, k] (f32, or i8 when xq is given) against the
// FullyConnected of the expanded table: the engine's fp32 op (f32) or the
// real-valued formula (i8), and the reference.
void check_codebook(Rng& rng, unsigned bits, int64_t m, int64_t k, int64_t o, bool int8) {
  INFO("codebook " << bits << " bits, " << m << "x" << k << " -> " << o << (int8 ? " int8" : " f32"));
  const int64_t row = bits == 4 ? (k + 1) / 2 : k;
  std::vector<uint16_t> table;
  for (size_t i = 0; i < (size_t{1} << bits); ++i)
    table.push_back(huddle::kernels::fp32_to_fp16(0.1f * rng.normal()));
  const std::vector<int8_t> idx8 = random_int8(rng, static_cast<size_t>(o * row));
  Bytes idx(idx8.size());
  std::memcpy(idx.data(), idx8.data(), idx.size());
  std::vector<float> expanded;  // [o, k]
  for (int64_t r = 0; r < o; ++r)
    for (int64_t i = 0; i < k; ++i) {
      const unsigned byte = idx[static_cast<size_t>(r * row + (bits == 4 ? i / 2 : i))];
      const unsigned index = bits == 4 ? (i % 2 ? byte >> 4 : byte & 15u) : byte;
      expanded.push_back(huddle::kernels::fp16_to_fp32(table[index]));
    }
  const bool has_bias = rng.coin(0.7);
  const std::vector<float> bias = random_values(rng, static_cast<size_t>(o));
  const std::string activation = rng.pick({"none", "relu", "relu6"});
  const float xs = 0.03f, ys = static_cast<float>(0.03 * 0.1 * 60 * std::sqrt(double(k)) / 127 + 0.02);
  const int32_t x_zp = static_cast<int32_t>(pick(rng, -20, 20)),
                y_zp = static_cast<int32_t>(pick(rng, -20, 20));

  Builder bld;
  const int x =
      typed_input(bld, "x", {m, k}, int8 ? DType::i8 : DType::f32, int8 ? per_tensor(xs, x_zp) : Quant{});
  std::vector<int> ins = {x, typed_constant(bld, "idx", DType::u8, {o, row}, idx),
                          typed_constant(bld, "table", DType::f16, {int64_t{1} << bits}, bytes_of(table))};
  if (has_bias) ins.push_back(bld.constant("b", {o}, bias));
  const int y =
      bld.node("CodebookFullyConnected", ins, {{"bits", int64_t{bits}}, {"activation", activation}});
  if (int8) set_type(bld, y, DType::i8, per_tensor(ys, y_zp));

  const std::vector<int8_t> xq = random_int8(rng, static_cast<size_t>(m * k));
  const std::vector<float> xf =
      int8 ? real_values(xq, xs, x_zp) : random_values(rng, static_cast<size_t>(m * k));
  const Bytes got = run_threads(bld.g, y, {int8 ? bytes_of(xq) : bytes_of(xf)});
  const std::vector<float> reference = run_reference(bld.g, y, {xf});
  const double lo = activation == "none" ? -INFINITY : 0.0, hi = activation == "relu6" ? 6.0 : INFINITY;
  if (int8) {
    const std::vector<int8_t> q = values_of<int8_t>(got);
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < o; ++j) {
        double acc = has_bias ? bias[static_cast<size_t>(j)] : 0.0;
        for (int64_t i = 0; i < k; ++i)
          acc += double{xf[static_cast<size_t>(r * k + i)]} * expanded[static_cast<size_t>(j * k + i)];
        const double want = std::clamp(std::nearbyint(std::clamp(acc, lo, hi) / ys) + y_zp, -128.0, 127.0);
        INFO("output " << r << ", " << j);
        REQUIRE(std::abs(q[static_cast<size_t>(r * o + j)] - want) <= 1.0);
      }
    require_within_step(q, reference, ys, y_zp);
    return;
  }
  // The engine's fp32 FullyConnected on the expanded weights, within the
  // codebook kernels' bound 2 (k + 3) 2^-24 (|bias| + sum |x w|) (doubled: both sum in fp32).
  Builder fc;
  std::vector<int> fc_ins = {fc.input("x", {m, k}), fc.constant("w", {o, k}, expanded)};
  if (has_bias) fc_ins.push_back(fc.constant("b", {o}, bias));
  const int fc_y = fc.node("FullyConnected", fc_ins, {{"activation", activation}});
  const std::vector<float> dense = run(std::move(fc.g), fc_y, {xf});
  const std::vector<float> yf = values_of<float>(got);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < o; ++j) {
      double magnitude = has_bias ? std::abs(bias[static_cast<size_t>(j)]) : 0.0;
      for (int64_t i = 0; i < k; ++i)
        magnitude +=
            std::abs(double{xf[static_cast<size_t>(r * k + i)]} * expanded[static_cast<size_t>(j * k + i)]);
      const double tol = 4.0 * double(k + 3) * std::ldexp(1.0, -24) * magnitude + 1e-30;
      const size_t e = static_cast<size_t>(r * o + j);
      INFO("output " << r << ", " << j << ": codebook " << yf[e] << ", dense " << dense[e] << ", reference "
                     << reference[e]);
      REQUIRE(std::abs(yf[e] - dense[e]) <= tol);
      REQUIRE(std::abs(yf[e] - reference[e]) <= tol);
    }
}

}  // namespace

TEST_CASE("CodebookFullyConnected against the expanded table (f32 and int8, 4 and 8 bits)",
          "[engine][int8]") {
  Rng rng(505);
  for (int t = 0; t < 60; ++t)
    check_codebook(rng, t % 2 ? 4 : 8, pick(rng, 1, 5), pick(rng, 1, 90), pick(rng, 1, 50), t % 4 >= 2);
  for (bool int8 : {false, true}) check_codebook(rng, 4, 4, 2001, 600, int8);  // split over threads
}

TEST_CASE("int8 ops: prepare errors name the problem", "[engine][int8]") {
  // A 1x1 Conv2D on [1, 2, 2, 3] -> 4 channels, made valid, then broken by `edit`.
  auto conv_error = [](auto edit) {
    Builder bld;
    const int x = typed_input(bld, "x", {1, 2, 2, 3}, DType::i8, per_tensor(0.1f, 3));
    const int w =
        typed_constant(bld, "w", DType::i8, {4, 1, 1, 3}, Bytes(12, 1), per_row({0.5f, 0.5f, 0.25f, 1.0f}));
    const int b =
        typed_constant(bld, "b", DType::i32, {4}, Bytes(16, 0), per_row({0.05f, 0.05f, 0.025f, 0.1f}));
    const int y = bld.node("Conv2D", {x, w, b});
    set_type(bld, y, DType::i8, per_tensor(0.2f, -1));
    edit(bld.g.tensors[static_cast<size_t>(x)], bld.g.tensors[static_cast<size_t>(w)],
         bld.g.tensors[static_cast<size_t>(b)], bld.g.tensors[static_cast<size_t>(y)]);
    return prepare_error(bld);
  };
  CHECK(conv_error([](Tensor&, Tensor&, Tensor&, Tensor&) {}).empty());
  CHECK_THAT(conv_error([](Tensor& x, Tensor&, Tensor&, Tensor&) { x.quant = {}; }),
             Catch::Contains("node 0 'Conv2D0' (Conv2D): input 0 'x' is i8 without quantisation"));
  CHECK_THAT(conv_error([](Tensor& x, Tensor&, Tensor&, Tensor&) {
               x.quant = per_row({1, 1, 1});
             }),
             Catch::Contains("input 0 'x' is quantised per channel (3 scales)"));
  CHECK_THAT(conv_error([](Tensor& x, Tensor&, Tensor&, Tensor&) { x.quant.zero_point = {200}; }),
             Catch::Contains("input 0 'x' has zero point 200, outside [-128, 127]"));
  CHECK_THAT(conv_error([](Tensor&, Tensor&, Tensor&, Tensor& y) { y.quant = {}; }),
             Catch::Contains("output 0 'Conv2D0' is i8 without quantisation"));
  CHECK_THAT(conv_error([](Tensor&, Tensor& w, Tensor&, Tensor&) { w.dtype = DType::u8; }),
             Catch::Contains("input 1 'w' is u8, expected i8"));
  CHECK_THAT(conv_error([](Tensor&, Tensor& w, Tensor&, Tensor&) { w.quant = {}; }),
             Catch::Contains("input 1 'w' is i8 without quantisation"));
  CHECK_THAT(conv_error([](Tensor&, Tensor& w, Tensor&, Tensor&) {
               w.quant = per_row({1, 1, 1});
             }),
             Catch::Contains("input 1 'w' has 3 scales on axis 0: needs one, or 4 on axis 0"));
  CHECK_THAT(conv_error([](Tensor&, Tensor& w, Tensor&, Tensor&) { w.quant.zero_point[2] = 5; }),
             Catch::Contains("input 1 'w' has zero point 5: needs 0"));
  CHECK_THAT(conv_error([](Tensor&, Tensor& w, Tensor&, Tensor&) { w.quant.scale[1] = -1; }),
             Catch::Contains("input 1 'w' has scale -1"));
  CHECK_THAT(conv_error([](Tensor&, Tensor& w, Tensor&, Tensor&) {
               static const int8_t low[12] = {0, 0, 0, 0, 0, 0, 0, -128};
               w.data = {reinterpret_cast<const uint8_t*>(low), 12};
             }),
             Catch::Contains("input 1 'w' holds -128 (element 7): int8 weights must be in [-127, 127]"));
  CHECK_THAT(conv_error([](Tensor&, Tensor&, Tensor& b, Tensor&) { b.dtype = DType::f32; }),
             Catch::Contains("input 2 'b' is f32, expected i32"));
  CHECK_THAT(
      conv_error([](Tensor&, Tensor&, Tensor& b, Tensor&) { b.quant.scale[3] = 0.1001f; }),
      Catch::Contains("bias scale 0.100100003 of output 3 is not input scale * weight scale (0.100000001"));
  CHECK_THAT(conv_error([](Tensor&, Tensor&, Tensor& b, Tensor&) { b.quant = {}; }),
             Catch::Contains("input 2 'b' is i32 without quantisation"));
  CHECK_THAT(conv_error([](Tensor& x, Tensor&, Tensor&, Tensor&) { x.dtype = DType::u8; }),
             Catch::Contains("input 0 'x' is u8, expected f32"));

  {  // FullyConnected shares the checks; its weights must fit.
    Builder bld;
    const int x = typed_input(bld, "x", {2, 3}, DType::i8, per_tensor(0.1f, 0));
    const int w = typed_constant(bld, "w", DType::i8, {4, 2}, Bytes(8, 1), per_tensor(0.5f, 0));
    set_type(bld, bld.node("FullyConnected", {x, w}), DType::i8, per_tensor(0.2f, 0));
    CHECK_THAT(prepare_error(bld), Catch::Contains("weights [4, 2] do not fit input [2, 3]"));
  }
  {
    Builder bld;
    const int y = bld.node("Quantize", {bld.input("x", {3})});
    CHECK_THAT(prepare_error(bld),
               Catch::Contains("(Quantize): output 0 'Quantize0' is i8 without quantisation"));
    set_type(bld, y, DType::i8, per_tensor(0.0f, 0));
    CHECK_THAT(prepare_error(bld), Catch::Contains("output 0 'Quantize0' has scale 0"));
  }
  {
    Builder bld;
    bld.node("Dequantize", {bld.input("x", {3})});
    CHECK_THAT(prepare_error(bld), Catch::Contains("(Dequantize): input 0 'x' is f32, expected i8"));
  }
  // CodebookFullyConnected: X [2, 5], 4-bit indices [3, 3], a 16-entry table, broken by `edit`.
  auto codebook_error = [](auto edit) {
    Builder bld;
    const int x = bld.input("x", {2, 5});
    const int idx = typed_constant(bld, "idx", DType::u8, {3, 3}, Bytes(9, 0x21));
    const int table = typed_constant(bld, "table", DType::f16, {16}, Bytes(32, 0));
    Attrs attrs = {{"bits", int64_t{4}}};
    edit(bld.g.tensors[static_cast<size_t>(x)], bld.g.tensors[static_cast<size_t>(idx)],
         bld.g.tensors[static_cast<size_t>(table)], attrs);
    bld.node("CodebookFullyConnected", {x, idx, table}, attrs);
    return prepare_error(bld);
  };
  CHECK(codebook_error([](Tensor&, Tensor&, Tensor&, Attrs&) {}).empty());
  CHECK_THAT(codebook_error([](Tensor&, Tensor&, Tensor&, Attrs& a) { a.clear(); }),
             Catch::Contains("attribute 'bits' is missing"));
  CHECK_THAT(codebook_error([](Tensor&, Tensor&, Tensor&, Attrs& a) { a["bits"] = int64_t{5}; }),
             Catch::Contains("attribute 'bits' has 5, not 4 or 8"));
  CHECK_THAT(codebook_error([](Tensor& x, Tensor&, Tensor&, Attrs&) { x.dtype = DType::i32; }),
             Catch::Contains("input 0 'x' is i32, expected f32 or i8"));
  CHECK_THAT(codebook_error([](Tensor&, Tensor&, Tensor&, Attrs& a) { a["bits"] = int64_t{8}; }),
             Catch::Contains("indices [3, 3] do not fit input [2, 5]: rows of 8-bit indices need 5 bytes"));
  CHECK_THAT(codebook_error([](Tensor&, Tensor&, Tensor& t, Attrs&) {
               t.shape = {8};
               t.data = t.data.subspan(0, 16);
             }),
             Catch::Contains("table [8] needs 16 entries for 4-bit indices"));
  CHECK_THAT(codebook_error([](Tensor&, Tensor&, Tensor& t, Attrs&) {
               static const uint16_t inf[16] = {0, 0, 0, 0x7c00};
               t.data = {reinterpret_cast<const uint8_t*>(inf), 32};
             }),
             Catch::Contains("table entry 3 is not finite"));
  CHECK_THAT(codebook_error([](Tensor& x, Tensor&, Tensor&, Attrs&) { x.dtype = DType::i8; }),
             Catch::Contains("input 0 'x' is i8 without quantisation"));
}
