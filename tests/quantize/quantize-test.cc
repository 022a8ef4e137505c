// The quantiser: calibration histograms (order-independent merging,
// quantiles), the range methods, the int8 parameters of a range, and the
// graph rewrite (what becomes int8, what stays fp32, the weights, the names
// of inputs and outputs) and its answers against the fp32 graph's.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/interpreter.h"
#include "models/quantize/calibrate.h"
#include "models/quantize/fidelity.h"
#include "models/quantize/quantize.h"
#include "tests/engine/builder.h"

using namespace huddle;
using namespace huddle::quantize;
using engine::DType;

namespace {

std::vector<float> normal_values(std::mt19937& rng, size_t n, float sd, float mean = 0) {
  std::normal_distribution<float> d(mean, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

}  // namespace

TEST_CASE("histogram merging does not depend on order or split") {
  std::mt19937 rng(7);
  std::vector<std::vector<float>> parts;
  for (int i = 0; i < 12; ++i) parts.push_back(normal_values(rng, 500, 0.01f * static_cast<float>(1 << i)));
  parts.push_back(std::vector<float>(100, 0.0f));  // zeros only
  Histogram all;
  for (const auto& p : parts) all.add(p);
  std::shuffle(parts.begin(), parts.end(), rng);
  Histogram a, b;
  for (size_t i = 0; i < parts.size(); ++i) (i % 3 ? a : b).add(parts[i]);
  Histogram zeros_first;
  zeros_first.add(std::vector<float>(3, 0.0f));
  zeros_first.merge(b);
  zeros_first.merge(a);
  for (const Histogram* h : {&zeros_first}) {
    CHECK(h->count() == all.count() + 3);
    CHECK(h->width() == all.width());
    CHECK(h->min() == all.min());
    CHECK(h->max() == all.max());
    auto bins = h->bins();
    bins[Histogram::kHalfBins] -= 3;
    CHECK(bins == all.bins());
  }
  // The width is the least power of two that holds the largest magnitude.
  const double absmax = std::max(-static_cast<double>(all.min()), static_cast<double>(all.max()));
  CHECK(absmax < Histogram::kHalfBins * all.width());
  CHECK(absmax >= Histogram::kHalfBins * all.width() / 2);
}

TEST_CASE("histogram quantiles and range methods") {
  Histogram h;
  std::vector<float> v(10001);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) / 10.0f;  // 0 .. 1000
  h.add(v);
  CHECK(std::fabs(h.quantile(0.5) - 500.0f) <= 2 * h.width());
  CHECK(h.quantile(0.0) <= static_cast<float>(h.width()));
  CHECK(h.quantile(1.0) == 1000.0f);

  std::mt19937 rng(3);
  Histogram g;
  auto values = normal_values(rng, 100000, 1.0f);
  values.push_back(1000.0f);  // one outlier
  g.add(values);
  const Range mm = choose_range(g, RangeMethod::minmax);
  const Range pc = choose_range(g, RangeMethod::percentile, 99.99);
  const Range ms = choose_range(g, RangeMethod::mse);
  CHECK(mm.hi == 1000.0f);
  CHECK(mm.lo == g.min());
  CHECK(pc.hi >= 3.0f);
  CHECK(pc.hi < 6.0f);
  CHECK(pc.lo <= -3.0f);
  CHECK(pc.lo > -6.0f);
  // mse: the least squared error of quantising the values themselves.
  const auto error = [&](Range r) {
    const engine::Quant q = quant_for_range(r);
    const double s = q.scale[0], zp = q.zero_point[0];
    double e = 0;
    for (float x : values) {
      const double qx = std::clamp(std::nearbyint(x / s) + zp, -128.0, 127.0);
      e += (s * (qx - zp) - x) * (s * (qx - zp) - x);
    }
    return e;
  };
  CHECK(error(ms) <= 1.02 * error(mm));
  CHECK(error(ms) <= 1.02 * error(pc));
  // Without the outlier, a long-tailed distribution gets clipped.
  values.pop_back();
  std::exponential_distribution<float> tail(1.0f);
  for (float& x : values) x = std::copysign(tail(rng), x);
  Histogram laplace;
  laplace.add(values);
  const Range lp = choose_range(laplace, RangeMethod::mse);
  CHECK(lp.hi < laplace.max());
  CHECK(error(lp) <= 1.02 * error(choose_range(laplace, RangeMethod::minmax)));
  // A post-ReLU distribution keeps 0 as its lower end.
  Histogram relu;
  std::vector<float> r = normal_values(rng, 1000, 1.0f);
  for (float& x : r) x = std::max(0.0f, x);
  relu.add(r);
  for (RangeMethod m : {RangeMethod::minmax, RangeMethod::percentile, RangeMethod::mse})
    CHECK(choose_range(relu, m).lo == 0.0f);
}

TEST_CASE("int8 parameters of a range") {
  const engine::Quant q = quant_for_range({-1.0f, 3.0f});
  REQUIRE(q.scale.size() == 1);
  CHECK(q.scale[0] == Approx(4.0 / 255));
  CHECK(q.zero_point[0] == -64);  // -128 + 1 / (4 / 255) = -64.25
  // Both ends representable within one step, zero exactly.
  CHECK(std::fabs(q.scale[0] * static_cast<float>(-128 - q.zero_point[0]) + 1.0f) <= q.scale[0]);
  CHECK(std::fabs(q.scale[0] * static_cast<float>(127 - q.zero_point[0]) - 3.0f) <= q.scale[0]);
  const engine::Quant pos = quant_for_range({0.0f, 6.0f});
  CHECK(pos.zero_point[0] == -128);
  const engine::Quant neg = quant_for_range({-2.0f, 0.0f});
  CHECK(neg.zero_point[0] == 127);
  const engine::Quant flat = quant_for_range({0.0f, 0.0f});
  CHECK(flat.scale[0] > 0.0f);
  CHECK(parse_range_method("mse") == RangeMethod::mse);
  CHECK(!parse_range_method("kl"));
}

namespace {

// input [1, 8, 8, 3] -> Conv2D 3x3 (8 channels, relu) -> GlobalAveragePool ->
// Reshape [1, 8] -> FullyConnected (10) -> Softmax
struct SmallNet {
  test::Builder b;
  int conv, pool, fc, soft;
  explicit SmallNet(std::mt19937& rng) {
    const int x = b.input("image", {1, 8, 8, 3});
    const int w = b.constant("conv.w", {8, 3, 3, 3}, normal_values(rng, 8 * 27, 0.3f));
    const int bias = b.constant("conv.b", {8}, normal_values(rng, 8, 0.1f));
    conv = b.node("Conv2D", {x, w, bias},
                  {{"pads", std::vector<int64_t>{1, 1, 1, 1}}, {"activation", std::string("relu")}});
    pool = b.node("GlobalAveragePool", {conv});
    const int flat = b.node("Reshape", {pool}, {{"shape", std::vector<int64_t>{1, 8}}});
    const int fw = b.constant("fc.w", {10, 8}, normal_values(rng, 80, 0.5f));
    const int fb = b.constant("fc.b", {10}, normal_values(rng, 10, 0.1f));
    fc = b.node("FullyConnected", {flat, fw, fb});
    soft = b.node("Softmax", {fc});
    b.g.tensors[static_cast<size_t>(soft)].name = "probabilities";
    b.g.outputs.push_back(soft);
  }
};

Samples random_samples(std::mt19937& rng, size_t n) {
  Samples s;
  for (size_t i = 0; i < n; ++i) s.push_back({normal_values(rng, 8 * 8 * 3, 1.0f)});
  return s;
}

const engine::Node* find_op(const engine::Graph& g, const std::string& op) {
  for (const auto& n : g.nodes)
    if (n.op == op) return &n;
  return nullptr;
}

}  // namespace

TEST_CASE("quantize_graph makes an int8 graph with fp32 inputs and outputs") {
  std::mt19937 rng(11);
  SmallNet net(rng);
  const engine::Graph& g = net.b.g;
  const Samples samples = random_samples(rng, 8);
  const auto hist = calibrate(g, samples, 2);
  CHECK(hist[static_cast<size_t>(net.conv)].min() >= 0.0f);  // the fused relu
  CHECK(hist[static_cast<size_t>(net.conv)].count() == 8u * 8 * 8 * 8);

  const QuantizedGraph q = quantize_graph(g, hist, {});
  const engine::Graph& out = q.graph;
  // Inputs and outputs keep their names and stay fp32.
  REQUIRE(out.inputs.size() == 1);
  CHECK(out.tensors[static_cast<size_t>(out.inputs[0])].name == "image");
  CHECK(out.tensors[static_cast<size_t>(out.inputs[0])].dtype == DType::f32);
  REQUIRE(out.outputs.size() == 1);
  CHECK(out.tensors[static_cast<size_t>(out.outputs[0])].name == "probabilities");
  CHECK(out.tensors[static_cast<size_t>(out.outputs[0])].dtype == DType::f32);
  // Conv, pool, reshape and FC int8; Softmax fp32 behind one Dequantize.
  CHECK(q.int8_nodes == 4);
  REQUIRE(q.float_nodes.size() == 1);
  CHECK(q.float_nodes[0].op == "Softmax");
  CHECK(out.nodes.front().op == "Quantize");
  CHECK(std::count_if(out.nodes.begin(), out.nodes.end(), [](auto& n) { return n.op == "Dequantize"; }) == 1);
  // Weights int8 per output channel, within half a step of the fp32 ones; bias int32.
  const engine::Node* conv = find_op(out, "Conv2D");
  REQUIRE(conv);
  const engine::Tensor& w = out.tensors[static_cast<size_t>(conv->inputs[1])];
  REQUIRE(w.dtype == DType::i8);
  REQUIRE(w.quant.scale.size() == 8);
  CHECK(w.quant.axis == 0);
  const auto fw = g.tensors[1].values<float>();  // conv.w (tensor 1 of the builder's graph)
  const auto qw = w.values<int8_t>();
  for (size_t i = 0; i < qw.size(); ++i) {
    const float s = w.quant.scale[i / 27];
    CHECK(qw[i] >= -127);
    CHECK(std::fabs(s * static_cast<float>(qw[i]) - fw[i]) <= s / 2 * 1.0001f);
  }
  const engine::Tensor& bias = out.tensors[static_cast<size_t>(conv->inputs[2])];
  CHECK(bias.dtype == DType::i32);
  const float x_scale = out.tensors[static_cast<size_t>(conv->inputs[0])].quant.scale[0];
  CHECK(bias.quant.scale[3] == Approx(x_scale * w.quant.scale[3]));
  // The Reshape keeps its input's quantisation.
  const engine::Node* reshape = find_op(out, "Reshape");
  REQUIRE(reshape);
  CHECK(out.tensors[static_cast<size_t>(reshape->outputs[0])].quant.scale ==
        out.tensors[static_cast<size_t>(reshape->inputs[0])].quant.scale);
  // No fp32 weights of quantised layers are left behind.
  for (const auto& t : out.tensors) CHECK(!(t.is_constant() && t.dtype == DType::f32));
}

TEST_CASE("quantize_graph keeps named nodes fp32 and stores codebooks") {
  std::mt19937 rng(12);
  SmallNet net(rng);
  const engine::Graph& g = net.b.g;
  const auto hist = calibrate(g, random_samples(rng, 4), 1);
  QuantizeOptions keep;
  keep.keep_float = {g.nodes[0].name};
  const QuantizedGraph k = quantize_graph(g, hist, keep);
  const engine::Node* conv = find_op(k.graph, "Conv2D");
  REQUIRE(conv);
  CHECK(k.graph.tensors[static_cast<size_t>(conv->inputs[1])].dtype == DType::f32);
  CHECK(k.float_nodes.size() == 2);
  // --float-weights f16: the fp32 convolution's weights stored f16, answers close to fp32.
  QuantizeOptions half = keep;
  half.half_float_weights = true;
  const QuantizedGraph h = quantize_graph(g, hist, half);
  CHECK(h.half_weights == 1);
  const engine::Node* hconv = find_op(h.graph, "Conv2D");
  REQUIRE(hconv);
  CHECK(h.graph.tensors[static_cast<size_t>(hconv->inputs[1])].dtype == DType::f16);
  CHECK(h.graph.tensors[static_cast<size_t>(hconv->inputs[1])].shape == engine::Shape{8, 3, 3, 3});
  const Samples some = random_samples(rng, 4);
  CHECK(compare(run_graph(k.graph, some), run_graph(h.graph, some, 1), {"probabilities"}).outputs[0].min_cosine >
        0.9999);
  keep.keep_float = {"no such node"};
  CHECK_THROWS_WITH(quantize_graph(g, hist, keep), Catch::Contains("no such node"));

  QuantizeOptions cb;
  cb.fc = FcMode::codebook4;
  const QuantizedGraph c = quantize_graph(g, hist, cb);
  CHECK(c.codebook_nodes == 1);
  const engine::Node* fc = find_op(c.graph, "CodebookFullyConnected");
  REQUIRE(fc);
  CHECK(c.graph.tensors[static_cast<size_t>(fc->inputs[1])].dtype == DType::u8);
  CHECK(c.graph.tensors[static_cast<size_t>(fc->inputs[2])].dtype == DType::f16);
  CHECK(c.graph.tensors[static_cast<size_t>(fc->inputs[2])].shape == engine::Shape{16});
  CHECK(!find_op(c.graph, "FullyConnected"));
}

TEST_CASE("the int8 graph answers like the fp32 one") {
  std::mt19937 rng(13);
  SmallNet net(rng);
  const engine::Graph& g = net.b.g;
  const Samples calib = random_samples(rng, 16), held = random_samples(rng, 16);
  const auto hist = calibrate(g, calib, 2);
  for (RangeMethod m : {RangeMethod::minmax, RangeMethod::percentile, RangeMethod::mse})
    for (FcMode fc : {FcMode::int8, FcMode::codebook8}) {
      QuantizeOptions o;
      o.method = m;
      o.fc = fc;
      const QuantizedGraph q = quantize_graph(g, hist, o);
      const SetFidelity f = compare(run_graph(g, held), run_graph(q.graph, held, 2), {"probabilities"});
      INFO(range_method_name(m) << " " << fc_mode_name(fc));
      CHECK(f.outputs[0].mean_cosine > 0.99);
      CHECK(f.top1 >= 0.8);
    }
  // The sensitivity pass ranks every quantisable node.
  const Outputs ref = run_graph(g, calib);
  const auto ranking = sensitivity(g, hist, {}, calib, ref, 1);
  CHECK(ranking.size() == 3);  // Conv2D, GlobalAveragePool, FullyConnected
  CHECK(std::is_sorted(ranking.begin(), ranking.end(), [](auto& a, auto& b) { return a.cosine < b.cosine; }));
}

TEST_CASE("an input's layout Transpose moves int8 bytes when what it feeds is int8") {
  std::mt19937 rng(14);
  test::Builder b;
  const int x = b.input("image", {1, 3, 8, 8});
  const int t = b.node("Transpose", {x}, {{"perm", std::vector<int64_t>{0, 2, 3, 1}}});
  const int w = b.constant("conv.w", {4, 3, 3, 3}, normal_values(rng, 4 * 27, 0.3f));
  const int conv = b.node("Conv2D", {t, w}, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  b.g.outputs.push_back(conv);
  const Samples calib = random_samples(rng, 8), held = random_samples(rng, 8);
  const auto hist = calibrate(b.g, calib, 1);

  const QuantizedGraph q = quantize_graph(b.g, hist, {});
  CHECK(q.float_nodes.empty());
  REQUIRE(q.graph.nodes.size() >= 3);
  CHECK(q.graph.nodes[0].op == "Quantize");
  CHECK(q.graph.tensors[static_cast<size_t>(q.graph.nodes[0].inputs[0])].name == "image");
  const engine::Node* moved = find_op(q.graph, "Transpose");
  REQUIRE(moved);
  CHECK(q.graph.tensors[static_cast<size_t>(moved->outputs[0])].dtype == DType::i8);
  const SetFidelity f = compare(run_graph(b.g, held), run_graph(q.graph, held, 1), {b.g.nodes[1].name});
  CHECK(f.outputs[0].min_cosine > 0.99);

  // With the convolution kept fp32, quantising the input would only add error.
  QuantizeOptions keep;
  keep.keep_float = {b.g.nodes[1].name};
  const QuantizedGraph k = quantize_graph(b.g, hist, keep);
  CHECK(k.int8_nodes == 0);
  CHECK(!find_op(k.graph, "Quantize"));
}

TEST_CASE("a LeakyRelu after a convolution runs int8, through its table") {
  std::mt19937 rng(15);
  test::Builder b;
  const int x = b.input("image", {1, 8, 8, 3});
  const int w = b.constant("conv.w", {6, 3, 3, 3}, normal_values(rng, 6 * 27, 0.3f));
  const int conv = b.node("Conv2D", {x, w}, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}});
  b.g.outputs.push_back(b.node("LeakyRelu", {conv}, {{"alpha", 0.1f}}));
  const Samples calib = random_samples(rng, 8), held = random_samples(rng, 8);
  const auto hist = calibrate(b.g, calib, 1);
  CHECK(hist[static_cast<size_t>(b.g.outputs[0])].min() < 0.0f);  // the leak is calibrated

  const QuantizedGraph q = quantize_graph(b.g, hist, {});
  CHECK(q.float_nodes.empty());
  CHECK(q.int8_nodes == 2);
  const engine::Node* leaky = find_op(q.graph, "LeakyRelu");
  REQUIRE(leaky);
  CHECK(q.graph.tensors[static_cast<size_t>(leaky->inputs[0])].dtype == DType::i8);
  CHECK(q.graph.tensors[static_cast<size_t>(leaky->outputs[0])].dtype == DType::i8);
  const SetFidelity f = compare(run_graph(b.g, held), run_graph(q.graph, held, 1), {b.g.nodes[1].name});
  CHECK(f.outputs[0].min_cosine > 0.99);
}
