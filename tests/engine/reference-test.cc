// The fp32 reference executor: every op against the engine's Interpreter on
// random shapes and attributes, hand-computed small cases (so the two cannot
// agree on the same mistake), a multi-op graph, what `observe` sees, and the
// errors.
#include "engine/reference.h"

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <set>

#include "engine/op.h"
#include "tests/engine/builder.h"

using namespace huddle::engine;
using namespace huddle::test;

namespace {

using Ints = std::vector<int64_t>;
using Attrs = std::map<std::string, AttrValue>;

int64_t pick(Rng& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(rng.uniform(0, static_cast<size_t>(hi - lo)));
}

// "x3" (built without operator+, which trips GCC 12's -Wrestrict at -O3).
std::string input_name(size_t i) {
  std::string s = std::to_string(i);
  s.insert(s.begin(), 'x');
  return s;
}

// A shape of `rank` dimensions from 1 to `max_dim`.
Shape random_shape(Rng& rng, size_t rank, int64_t max_dim) {
  Shape s(rank);
  for (int64_t& d : s) d = pick(rng, 1, max_dim);
  return s;
}

std::vector<float> values_of(Rng& rng, const Shape& shape, float scale = 1.0f) {
  std::vector<float> v = random_values(rng, static_cast<size_t>(elements(shape)));
  for (float& x : v) x *= scale;
  return v;
}

// Runs the reference on the builder's graph with outputs `outs`.
std::vector<std::vector<float>> run_reference(const Graph& g, const std::vector<std::vector<float>>& inputs) {
  const ReferenceExecutor ref(g);
  std::vector<std::span<const float>> spans(inputs.begin(), inputs.end());
  return ref.run(spans);
}

// Runs the graph on the reference and on the Interpreter and requires the
// same shapes and values within `tol` (relative, plus tol in absolute).
// Returns the number of values compared.
size_t compare(Builder& bld, const std::vector<int>& outs, const std::vector<std::vector<float>>& inputs,
               double tol = 1e-5) {
  bld.g.outputs = outs;
  const ReferenceExecutor ref(bld.g);
  std::vector<std::span<const float>> spans(inputs.begin(), inputs.end());
  const std::vector<std::vector<float>> got = ref.run(spans);
  const std::vector<Output> want = run_all(bld.g, outs, inputs);
  REQUIRE(got.size() == want.size());
  size_t compared = 0;
  for (size_t k = 0; k < got.size(); ++k) {
    INFO("output " << k);
    REQUIRE(ref.shape(outs[k]) == want[k].shape);
    REQUIRE(got[k].size() == want[k].values.size());
    for (size_t i = 0; i < got[k].size(); ++i) {
      INFO("element " << i << ": reference " << got[k][i] << ", engine " << want[k].values[i]);
      REQUIRE(std::abs(got[k][i] - want[k].values[i]) <= tol * (1.0 + std::abs(got[k][i])));
    }
    compared += got[k].size();
  }
  return compared;
}

// One node of `op` on inputs of `shapes` (constants where `constant` values are given).
size_t compare_op(Rng& rng, const std::string& op, const std::vector<Shape>& shapes, const Attrs& attrs,
                  float scale = 1.0f, double tol = 1e-5, size_t outputs = 1) {
  Builder bld;
  std::vector<int> ins;
  std::vector<std::vector<float>> inputs;
  for (size_t i = 0; i < shapes.size(); ++i) {
    ins.push_back(bld.input(input_name(i), shapes[i]));
    inputs.push_back(values_of(rng, shapes[i], scale));
  }
  return compare(bld, bld.nodes(op, ins, attrs, outputs), inputs, tol);
}

// The GraphError building a `Runner` (ReferenceExecutor or Interpreter) on `g` throws, empty if none.
template <class Runner>
std::string error_of(const Graph& g) {
  try {
    Runner runner(g);
  } catch (const GraphError& e) {
    return e.what();
  }
  return {};
}

std::string reference_error(const Graph& g) { return error_of<ReferenceExecutor>(g); }

// A one-node graph's output on hand-written inputs, by the reference alone.
std::vector<float> reference_of(const std::string& op, const std::vector<Shape>& shapes,
                                const std::vector<std::vector<float>>& inputs, const Attrs& attrs,
                                Shape* shape = nullptr) {
  Builder bld;
  std::vector<int> ins;
  for (size_t i = 0; i < shapes.size(); ++i) ins.push_back(bld.input(input_name(i), shapes[i]));
  const int y = bld.node(op, ins, attrs);
  bld.g.outputs = {y};
  const ReferenceExecutor ref(bld.g);
  if (shape) *shape = ref.shape(y);
  std::vector<std::span<const float>> spans(inputs.begin(), inputs.end());
  return ref.run(spans)[0];
}

void require_values(const std::vector<float>& got, const std::vector<double>& want, double tol = 1e-6) {
  require_close(got, want, tol);
}

std::string text(const char* s) { return s; }

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("reference: runs every op the engine runs", "[engine][reference]") {
  const std::vector<std::string> engine = op_names(), reference = ReferenceExecutor::op_names();
  for (const std::string& op : engine) {
    INFO(op);
    CHECK(std::count(reference.begin(), reference.end(), op) == 1);
  }
}

TEST_CASE("reference: Conv2D (dense, depthwise, grouped) against the engine", "[engine][reference]") {
  Rng rng(101);
  int dense = 0, depthwise = 0, grouped = 0;
  for (int t = 0; t < 240; ++t) {
    const int kind = t % 3;  // 0 dense, 1 depthwise (maybe with a channel multiplier), 2 grouped
    const int64_t n = rng.coin(0.2) ? 2 : 1, h = pick(rng, 1, 11), w = pick(rng, 1, 11);
    int64_t group = 1, cg = pick(rng, 1, 6), og = pick(rng, 1, 7);
    if (kind == 1) group = pick(rng, 1, 9), cg = 1, og = rng.coin(0.7) ? 1 : 2;
    if (kind == 2) group = pick(rng, 2, 4), cg = pick(rng, 1, 4), og = pick(rng, 1, 4);
    const int64_t c = group * cg, o = group * og;
    const Ints kernel = {pick(rng, 1, 4), pick(rng, 1, 4)};
    const Ints strides = {pick(rng, 1, 3), pick(rng, 1, 3)};
    const Ints dilations = rng.coin(0.6) ? Ints{1, 1} : Ints{pick(rng, 1, 3), pick(rng, 1, 3)};
    const Ints pads = rng.coin(0.3)
                          ? Ints{0, 0, 0, 0}
                          : Ints{pick(rng, 0, 2), pick(rng, 0, 2), pick(rng, 0, 2), pick(rng, 0, 2)};
    if (h + pads[0] + pads[2] < dilations[0] * (kernel[0] - 1) + 1 ||
        w + pads[1] + pads[3] < dilations[1] * (kernel[1] - 1) + 1)
      continue;
    Attrs attrs = {{"strides", strides}, {"dilations", dilations}, {"pads", pads}, {"group", group}};
    const std::string act = rng.pick<std::string>({"none", "relu", "relu6", "clip", ""});
    if (!act.empty()) attrs["activation"] = act;
    if (act == "clip") attrs["clip_min"] = -0.5f, attrs["clip_max"] = 1.5f;
    Builder bld;
    const Shape ws = {o, kernel[0], kernel[1], cg};
    std::vector<int> ins = {bld.input("x", {n, h, w, c}), bld.constant("w", ws, values_of(rng, ws))};
    if (rng.coin(0.7)) ins.push_back(bld.constant("b", {o}, values_of(rng, {o})));
    const int y = bld.node("Conv2D", ins, attrs);
    INFO("input " << shape_text({n, h, w, c}) << " weights " << shape_text(ws) << " group " << group
                  << " strides " << shape_text(strides) << " dilations " << shape_text(dilations) << " pads "
                  << shape_text(pads) << " activation " << act);
    compare(bld, {y}, {values_of(rng, {n, h, w, c})}, 2e-5);
    (kind == 0 ? dense : kind == 1 ? depthwise : grouped)++;
  }
  CHECK(dense > 50);
  CHECK(depthwise > 50);
  CHECK(grouped > 50);
}

TEST_CASE("reference: Conv2D by hand", "[engine][reference]") {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};  // 3x3, one channel
  auto conv = [&](const Shape& xs, const std::vector<float>& xv, const Shape& ws, const std::vector<float>& w,
                  std::vector<float> b, Attrs attrs, Shape* shape = nullptr) {
    Builder bld;
    std::vector<int> ins = {bld.input("x", xs), bld.constant("w", ws, w)};
    if (!b.empty()) ins.push_back(bld.constant("b", {ws[0]}, b));
    const int y = bld.node("Conv2D", ins, attrs);
    bld.g.outputs = {y};
    const ReferenceExecutor ref(bld.g);
    if (shape) *shape = ref.shape(y);
    return ref.run({xv})[0];
  };
  Shape shape;
  // 2x2 box sums.
  require_values(conv({1, 3, 3, 1}, x, {1, 2, 2, 1}, {1, 1, 1, 1}, {}, {}, &shape), {12, 16, 24, 28});
  CHECK(shape == Shape{1, 2, 2, 1});
  // Padding 1 all round, stride 2: the corners' 2x2 neighbourhoods (zeros outside).
  require_values(conv({1, 3, 3, 1}, x, {1, 3, 3, 1}, std::vector<float>(9, 1.0f), {},
                      {{"pads", Ints{1, 1, 1, 1}}, {"strides", Ints{2, 2}}}),
                 {12, 16, 24, 28});
  // Dilation 2: the four corners; bias 1; relu6 caps it.
  require_values(conv({1, 3, 3, 1}, x, {1, 2, 2, 1}, {1, 1, 1, 1}, {1}, {{"dilations", Ints{2, 2}}}), {21});
  require_values(conv({1, 3, 3, 1}, x, {1, 2, 2, 1}, {1, 1, 1, 1}, {1},
                      {{"dilations", Ints{2, 2}}, {"activation", text("relu6")}}),
                 {6});
  // Weights OHWI: output channel 1 reads the right column of the 1x2 kernel
  // twice as much. Input 1x1x2x1 = [1, 10].
  require_values(conv({1, 1, 2, 1}, {1, 10}, {2, 1, 2, 1}, {1, 0, 0, 2}, {}, {}), {1, 20});
  // Depthwise (group 2 over 2 channels): channel 0 doubled, channel 1 negated, clip at -3.
  require_values(conv({1, 1, 2, 2}, {1, 2, 3, 4}, {2, 1, 1, 1}, {2, -1}, {},
                      {{"group", int64_t{2}}, {"activation", text("clip")}, {"clip_min", -3.0f}}),
                 {2, -2, 6, -3});
  // Grouped, 4 channels in 2 groups of 2, one output each: sums of channels 0+1 and 2-3.
  require_values(
      conv({1, 1, 1, 4}, {1, 2, 3, 4}, {2, 1, 1, 2}, {1, 1, 1, -1}, {0.5f, 0}, {{"group", int64_t{2}}}),
      {3.5, -1});
}

TEST_CASE("reference: FullyConnected against the engine and by hand", "[engine][reference]") {
  Rng rng(102);
  for (int t = 0; t < 80; ++t) {
    Shape xs = random_shape(rng, rng.uniform(1, 3), 5);
    xs.back() = pick(rng, 1, 70);
    const int64_t o = pick(rng, 1, 40);
    Attrs attrs;
    const std::string act = rng.pick<std::string>({"none", "relu", "relu6", "clip"});
    attrs["activation"] = act;
    if (act == "clip") attrs["clip_max"] = 0.25f;
    Builder bld;
    std::vector<int> ins = {bld.input("x", xs),
                            bld.constant("w", {o, xs.back()}, values_of(rng, {o, xs.back()}))};
    if (rng.coin(0.6)) ins.push_back(bld.constant("b", {o}, values_of(rng, {o})));
    INFO("input " << shape_text(xs) << " outputs " << o << " " << act);
    compare(bld, {bld.node("FullyConnected", ins, attrs)}, {values_of(rng, xs)}, 2e-5);
  }
  // [1, 2] x [[1, 2], [3, 4], [-1, -1]]^T + [1, -1, 0] = [6, 10, -3]; relu drops the -3.
  Builder bld;
  const int y = bld.node("FullyConnected",
                         {bld.input("x", {1, 2}), bld.constant("w", {3, 2}, {1, 2, 3, 4, -1, -1}),
                          bld.constant("b", {3}, {1, -1, 0})},
                         {{"activation", text("relu")}});
  bld.g.outputs = {y};
  require_values(run_reference(bld.g, {{1, 2}})[0], {6, 10, 0});
}

TEST_CASE("reference: Add, Sub, Mul and Div broadcast like numpy", "[engine][reference]") {
  Rng rng(103);
  for (int t = 0; t < 200; ++t) {
    const size_t rank = rng.uniform(0, 5);
    Shape out = random_shape(rng, rank, 6);
    Shape a = out, b = out;
    for (size_t d = 0; d < rank; ++d) {
      if (rng.coin(0.3)) a[d] = 1;
      if (rng.coin(0.3)) b[d] = 1;
    }
    if (rank && rng.coin(0.3))
      a.erase(a.begin(), a.begin() + static_cast<std::ptrdiff_t>(rng.uniform(1, rank)));
    if (rank && rng.coin(0.3))
      b.erase(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(rng.uniform(1, rank)));
    const std::string op = rng.pick<std::string>({"Add", "Sub", "Mul", "Div"});
    INFO(op << " " << shape_text(a) << " and " << shape_text(b));
    compare_op(rng, op, {a, b}, {});
  }
  // [[1], [2]] + [10, 20, 30]; [2, 3] * a scalar.
  require_values(reference_of("Add", {{2, 1}, {3}}, {{1, 2}, {10, 20, 30}}, {}), {11, 21, 31, 12, 22, 32});
  Shape shape;
  require_values(reference_of("Mul", {{}, {2, 3}}, {{-2}, {1, 2, 3, 4, 5, 6}}, {}, &shape),
                 {-2, -4, -6, -8, -10, -12});
  CHECK(shape == Shape{2, 3});
  require_values(reference_of("Sub", {{3}, {2, 1}}, {{10, 20, 30}, {1, 2}}, {}), {9, 19, 29, 8, 18, 28});
  require_values(reference_of("Div", {{1, 3}, {1}}, {{1, -2, 3}, {4}}, {}), {0.25, -0.5, 0.75});
  // Both sides broadcast: [3, 1] * [1, 2].
  require_values(reference_of("Mul", {{3, 1}, {1, 2}}, {{1, 2, 3}, {10, 100}}, {}),
                 {10, 100, 20, 200, 30, 300});
  Builder bld;
  bld.node("Add", {bld.input("a", {2, 3}), bld.input("b", {4})});
  CHECK_THAT(reference_error(bld.g), Catch::Contains("shapes [2, 3] and [4] do not broadcast"));
}

TEST_CASE("reference: unary ops against the engine and by hand", "[engine][reference]") {
  Rng rng(104);
  const std::vector<std::pair<std::string, Attrs>> cases = {
      {"Relu", {}},
      {"Sigmoid", {}},
      {"Silu", {}},
      {"HardSwish", {}},
      {"HardSigmoid", {}},
      {"HardSigmoid", {{"alpha", 0.5f}, {"beta", 0.25f}}},
      {"LeakyRelu", {}},
      {"LeakyRelu", {{"alpha", 0.1f}}},
      {"LeakyRelu", {{"alpha", 2.5f}}},
      {"Clip", {{"min", -1.0f}, {"max", 2.0f}}},
      {"Clip", {{"max", 0.5f}}},
      {"Clip", {}},
  };
  for (const auto& [op, attrs] : cases)
    for (int t = 0; t < 10; ++t) {
      Shape s = random_shape(rng, rng.uniform(0, 4), 7);
      INFO(op << " " << shape_text(s));
      compare_op(rng, op, {s}, attrs, 4.0f);
    }
  const std::vector<float> x = {-4, -1, 0, 1, 4};
  require_values(reference_of("Relu", {{5}}, {x}, {}), {0, 0, 0, 1, 4});
  require_values(reference_of("HardSwish", {{5}}, {x}, {}), {0, -1.0 / 3, 0, 2.0 / 3, 4});
  require_values(reference_of("HardSigmoid", {{5}}, {x}, {}), {0, 0.3, 0.5, 0.7, 1});
  require_values(reference_of("LeakyRelu", {{5}}, {x}, {}), {-4 * double(0.01f), -double(0.01f), 0, 1, 4});
  require_values(reference_of("LeakyRelu", {{5}}, {x}, {{"alpha", 0.25f}}), {-1, -0.25, 0, 1, 4});
  require_values(reference_of("Sigmoid", {{5}}, {x}, {}),
                 {1 / (1 + std::exp(4.0)), 1 / (1 + std::exp(1.0)), 0.5, 1 / (1 + std::exp(-1.0)),
                  1 / (1 + std::exp(-4.0))});
  require_values(reference_of("Clip", {{5}}, {x}, {{"min", -2.0f}, {"max", 0.5f}}), {-2, -1, 0, 0.5, 0.5});
  require_values(reference_of("Silu", {{5}}, {x}, {}), {-4 / (1 + std::exp(4.0)), -1 / (1 + std::exp(1.0)), 0,
                                                        1 / (1 + std::exp(-1.0)), 4 / (1 + std::exp(-4.0))});
}

TEST_CASE("reference: pooling against the engine and by hand", "[engine][reference]") {
  Rng rng(105);
  int compared = 0;
  for (int t = 0; t < 200; ++t) {
    const bool max = t % 2 == 0;
    const int64_t n = rng.coin(0.2) ? 2 : 1, h = pick(rng, 1, 9), w = pick(rng, 1, 9), c = pick(rng, 1, 5);
    const Ints kernel = {pick(rng, 1, 4), pick(rng, 1, 4)};
    const Ints pads = rng.coin(0.3) ? Ints{0, 0, 0, 0}
                                    : Ints{pick(rng, 0, kernel[0] - 1), pick(rng, 0, kernel[1] - 1),
                                           pick(rng, 0, kernel[0]), pick(rng, 0, kernel[1])};
    Attrs attrs = {{"kernel", kernel}, {"pads", pads}};
    if (rng.coin(0.7)) attrs["strides"] = Ints{pick(rng, 1, 3), pick(rng, 1, 3)};
    if (!max) attrs["count_include_pad"] = pick(rng, 0, 1);
    Builder bld;
    bld.node(max ? "MaxPool2D" : "AveragePool2D", {bld.input("x", {n, h, w, c})}, attrs);
    const std::string engine = error_of<Interpreter>(bld.g), reference = reference_error(bld.g);
    INFO("input " << shape_text({n, h, w, c}) << " kernel " << shape_text(kernel) << " pads "
                  << shape_text(pads) << ": engine '" << engine << "', reference '" << reference << "'");
    REQUIRE(engine.empty() == reference.empty());  // both refuse the same windows
    if (!engine.empty()) continue;
    compare(bld, {static_cast<int>(bld.g.tensors.size() - 1)}, {values_of(rng, {n, h, w, c})});
    ++compared;
  }
  CHECK(compared > 100);
  for (int t = 0; t < 20; ++t) {
    const Shape s = {pick(rng, 1, 2), pick(rng, 1, 9), pick(rng, 1, 9), pick(rng, 1, 20)};
    compare_op(rng, "GlobalAveragePool", {s}, {});
  }
  // 3x3 input 1..9, kernel 2x2, stride 2, one row/column of bottom/right padding.
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const Attrs a = {{"kernel", Ints{2, 2}}, {"pads", Ints{0, 0, 1, 1}}};
  Attrs include = a;
  include["count_include_pad"] = int64_t{1};
  require_values(reference_of("MaxPool2D", {{1, 3, 3, 1}}, {x}, a), {5, 6, 8, 9});
  require_values(reference_of("AveragePool2D", {{1, 3, 3, 1}}, {x}, a), {3, 4.5, 7.5, 9});
  require_values(reference_of("AveragePool2D", {{1, 3, 3, 1}}, {x}, include), {3, 2.25, 3.75, 2.25});
  Shape shape;
  require_values(
      reference_of("GlobalAveragePool", {{1, 2, 2, 2}}, {{1, 10, 2, 20, 3, 30, 4, 40}}, {}, &shape),
      {2.5, 25});
  CHECK(shape == Shape{1, 1, 1, 2});
}

TEST_CASE("reference: Reshape and Softmax against the engine and by hand", "[engine][reference]") {
  Rng rng(106);
  for (int t = 0; t < 40; ++t) {
    Shape s = random_shape(rng, rng.uniform(1, 4), 6);
    Ints target = {elements(s)};
    if (rng.coin(0.5)) target = {s[0], -1};
    compare_op(rng, "Reshape", {s}, {{"shape", target}});
    compare_op(rng, "Softmax", {s}, rng.coin(0.5) ? Attrs{} : Attrs{{"axis", int64_t(s.size()) - 1}}, 3.0f);
  }
  Shape shape;
  require_values(reference_of("Reshape", {{2, 3}}, {{1, 2, 3, 4, 5, 6}}, {{"shape", Ints{3, -1}}}, &shape),
                 {1, 2, 3, 4, 5, 6});
  CHECK(shape == Shape{3, 2});
  // exp(0) : exp(ln 3) = 1 : 3; large inputs do not overflow.
  require_values(reference_of("Softmax", {{2, 2}}, {{0, std::log(3.0f), 1000, 1000}}, {}),
                 {0.25, 0.75, 0.5, 0.5});
  // Axis 0 of a 2x2 (the reference takes any axis): columns [0, ln 3] and [1, 1].
  require_values(reference_of("Softmax", {{2, 2}}, {{0, 1, std::log(3.0f), 1}}, {{"axis", int64_t{-2}}}),
                 {0.25, 0.5, 0.75, 0.5});
  Builder bld;
  bld.node("Reshape", {bld.input("x", {2, 3})}, {{"shape", Ints{4, -1}}});
  CHECK_THAT(reference_error(bld.g), Catch::Contains("cannot reshape [2, 3] to [4, -1]"));
}

TEST_CASE("reference: ReduceMean against the engine and by hand", "[engine][reference]") {
  Rng rng(112);
  for (int t = 0; t < 100; ++t) {
    const size_t rank = rng.uniform(1, 5);
    Shape s = random_shape(rng, rank, 7);
    Ints axes;
    for (size_t d = 0; d < rank; ++d)
      if (rng.coin(0.5))
        axes.push_back(rng.coin(0.3) ? static_cast<int64_t>(d) - static_cast<int64_t>(rank)
                                     : static_cast<int64_t>(d));
    if (axes.empty()) axes.push_back(0);
    std::reverse(axes.begin(), axes.end());  // any order
    Attrs attrs = {{"axes", axes}};
    if (rng.coin(0.6)) attrs["keepdims"] = pick(rng, 0, 1);
    INFO(shape_text(s) << " axes " << shape_text(axes));
    compare_op(rng, "ReduceMean", {s}, attrs);
  }
  const std::vector<float> x = {1, 2, 3, 4};  // [[1, 2], [3, 4]]
  Shape shape;
  require_values(reference_of("ReduceMean", {{2, 2}}, {x}, {{"axes", Ints{0}}}, &shape), {2, 3});
  CHECK(shape == Shape{1, 2});
  require_values(
      reference_of("ReduceMean", {{2, 2}}, {x}, {{"axes", Ints{-1}}, {"keepdims", int64_t{0}}}, &shape),
      {1.5, 3.5});
  CHECK(shape == Shape{2});
  require_values(
      reference_of("ReduceMean", {{2, 2}}, {x}, {{"axes", Ints{1, 0}}, {"keepdims", int64_t{0}}}, &shape),
      {2.5});
  CHECK(shape == Shape{});
  Builder bld;
  bld.node("ReduceMean", {bld.input("x", {2, 2})}, {{"axes", Ints{1, -1}}});
  CHECK_THAT(reference_error(bld.g), Catch::Contains("attribute 'axes' names axis 1 twice"));
}

TEST_CASE("reference: Concat and Split against the engine and by hand", "[engine][reference]") {
  Rng rng(107);
  for (int t = 0; t < 100; ++t) {
    const size_t rank = rng.uniform(1, 4);
    const int64_t r = static_cast<int64_t>(rank), axis = pick(rng, -r, r - 1);
    const size_t a = static_cast<size_t>(axis < 0 ? axis + r : axis);
    Shape base = random_shape(rng, rank, 5);
    std::vector<Shape> shapes(rng.uniform(1, 4), base);
    for (Shape& s : shapes) s[a] = pick(rng, 0, 6);
    INFO("Concat axis " << axis);
    compare_op(rng, "Concat", shapes, {{"axis", axis}});
    const size_t parts = rng.uniform(1, 3);
    Shape whole = base;
    Ints sizes(parts);
    for (int64_t& s : sizes) s = pick(rng, 0, 4);
    whole[a] = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
    Attrs attrs = {{"axis", axis}, {"split", sizes}};
    if (rng.coin(0.3)) {  // equal parts, the last smaller
      whole[a] = pick(rng, static_cast<int64_t>(parts) * 2 - 1, static_cast<int64_t>(parts) * 2);
      attrs.erase("split");
    }
    INFO("Split " << shape_text(whole) << " axis " << axis << " in " << parts);
    compare_op(rng, "Split", {whole}, attrs, 1.0f, 0, parts);
  }
  require_values(reference_of("Concat", {{2, 2}, {2, 1}}, {{1, 2, 3, 4}, {5, 6}}, {{"axis", int64_t{-1}}}),
                 {1, 2, 5, 3, 4, 6});
  require_values(reference_of("Concat", {{1, 2}, {2, 2}}, {{1, 2}, {3, 4, 5, 6}}, {{"axis", int64_t{0}}}),
                 {1, 2, 3, 4, 5, 6});
  // Split 2x3 along axis 1 in [1, 2]; 5 in 3 equal parts: 2, 2, 1.
  Builder bld;
  const std::vector<int> outs =
      bld.nodes("Split", {bld.input("x", {2, 3})}, {{"axis", int64_t{1}}, {"split", Ints{1, 2}}}, 2);
  const std::vector<int> equal = bld.nodes("Split", {bld.input("y", {5})}, {}, 3);
  bld.g.outputs = {outs[0], outs[1], equal[0], equal[1], equal[2]};
  const ReferenceExecutor ref(bld.g);
  const auto got = ref.run({std::vector<float>{1, 2, 3, 4, 5, 6}, std::vector<float>{1, 2, 3, 4, 5}});
  require_values(got[0], {1, 4});
  require_values(got[1], {2, 3, 5, 6});
  require_values(got[2], {1, 2});
  require_values(got[3], {3, 4});
  require_values(got[4], {5});
  CHECK(ref.shape(outs[1]) == Shape{2, 2});
}

TEST_CASE("reference: Transpose, Slice and Pad against the engine and by hand", "[engine][reference]") {
  Rng rng(108);
  constexpr int64_t kBig = std::numeric_limits<int64_t>::max();
  for (int t = 0; t < 100; ++t) {
    const size_t rank = rng.uniform(1, 5);
    const int64_t r = static_cast<int64_t>(rank);
    Shape s = random_shape(rng, rank, 6);
    Ints perm(rank);
    std::iota(perm.begin(), perm.end(), int64_t{0});
    for (size_t i = rank; i > 1; --i) std::swap(perm[i - 1], perm[rng.uniform(0, i - 1)]);
    compare_op(rng, "Transpose", {s}, rng.coin(0.2) ? Attrs{} : Attrs{{"perm", perm}});

    // Slice a random axis (negative half the time) with random clamped bounds.
    const int64_t axis = pick(rng, -r, r - 1), len = s[static_cast<size_t>(axis < 0 ? axis + r : axis)];
    const int64_t start = rng.coin(0.1) ? -kBig : pick(rng, -len - 2, len + 2);
    const int64_t end = rng.coin(0.2) ? kBig : pick(rng, -len - 2, len + 2);
    INFO("Slice " << shape_text(s) << " axis " << axis << " " << start << ".." << end);
    compare_op(rng, "Slice", {s},
               {{"starts", Ints{start}},
                {"ends", Ints{end}},
                {"axes", Ints{axis}},
                {"steps", Ints{pick(rng, 1, 3)}}});

    const std::string mode = rng.pick<std::string>({"constant", "reflect", "edge"});
    Ints pads(2 * rank);
    for (size_t d = 0; d < 2 * rank; ++d) pads[d] = pick(rng, 0, mode == "reflect" ? s[d % rank] - 1 : 3);
    INFO("Pad " << mode << " " << shape_text(pads));
    compare_op(rng, "Pad", {s}, {{"pads", pads}, {"mode", mode}, {"value", 1.5f}});
  }
  // x[0][h][w][c] = 100 h + 10 w + c, NHWC -> NCHW.
  std::vector<float> x;
  for (int h = 0; h < 2; ++h)
    for (int w = 0; w < 2; ++w)
      for (int c = 0; c < 3; ++c) x.push_back(float(100 * h + 10 * w + c));
  Shape shape;
  require_values(reference_of("Transpose", {{1, 2, 2, 3}}, {x}, {{"perm", Ints{0, 3, 1, 2}}}, &shape),
                 {0, 10, 100, 110, 1, 11, 101, 111, 2, 12, 102, 112});
  CHECK(shape == Shape{1, 3, 2, 2});
  require_values(reference_of("Transpose", {{2, 3}}, {{1, 2, 3, 4, 5, 6}}, {}), {1, 4, 2, 5, 3, 6});
  const std::vector<float> ten = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  require_values(reference_of("Slice", {{10}}, {ten}, {{"starts", Ints{-3}}, {"ends", Ints{-1}}}), {7, 8});
  require_values(
      reference_of("Slice", {{10}}, {ten}, {{"starts", Ints{1}}, {"ends", Ints{1000}}, {"steps", Ints{3}}}),
      {1, 4, 7});
  require_values(reference_of("Slice", {{10}}, {ten}, {{"starts", Ints{5}}, {"ends", Ints{2}}}), {});
  require_values(reference_of("Slice", {{2, 5}}, {ten},
                              {{"starts", Ints{-1, 1}}, {"ends", Ints{kBig, 2}}, {"axes", Ints{-1, 0}}}),
                 {9});
  for (const auto& [mode, want] :
       std::vector<std::pair<std::string, std::vector<double>>>{{"reflect", {3, 2, 1, 2, 3, 2, 1}},
                                                                {"edge", {1, 1, 1, 2, 3, 3, 3}},
                                                                {"constant", {9, 9, 1, 2, 3, 9, 9}}})
    require_values(
        reference_of("Pad", {{3}}, {{1, 2, 3}}, {{"pads", Ints{2, 2}}, {"mode", mode}, {"value", 9.0f}}),
        want);
  require_values(reference_of("Pad", {{2, 2}}, {{1, 2, 3, 4}}, {{"pads", Ints{1, 0, 0, 1}}}, &shape),
                 {0, 0, 0, 1, 2, 0, 3, 4, 0});
  CHECK(shape == Shape{3, 3});
}

TEST_CASE("reference: Resize against the engine and by hand", "[engine][reference]") {
  Rng rng(109);
  for (int t = 0; t < 120; ++t) {
    const bool nearest = t % 2;
    Attrs attrs;
    attrs["mode"] = text(nearest ? "nearest" : "linear");
    attrs["coordinate_transformation_mode"] = rng.pick<std::string>(
        {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"});
    if (nearest)
      attrs["nearest_mode"] =
          rng.pick<std::string>({"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"});
    const Shape s = {pick(rng, 1, 2), pick(rng, 1, 7), pick(rng, 1, 7), pick(rng, 1, 4)};
    if (rng.coin(0.3)) {  // ONNX's scales, the sizes rounded down from them
      const std::vector<float> scales = {rng.pick({0.5f, 0.75f, 1.5f, 2.5f}), rng.pick({0.6f, 1.25f, 3.0f})};
      attrs["scales"] = scales;
      attrs["size"] = Ints{std::max<int64_t>(1, static_cast<int64_t>(static_cast<float>(s[1]) * scales[0])),
                           std::max<int64_t>(1, static_cast<int64_t>(static_cast<float>(s[2]) * scales[1]))};
    } else {
      attrs["size"] = Ints{rng.coin(0.5) ? s[1] * pick(rng, 1, 3) : pick(rng, 1, 12),
                           rng.coin(0.5) ? s[2] * pick(rng, 1, 3) : pick(rng, 1, 12)};
    }
    INFO(shape_text(s));
    compare_op(rng, "Resize", {s}, attrs);
  }
  // Nearest, asymmetric, floor, 2x up: each pixel becomes a 2x2 block.
  require_values(reference_of("Resize", {{1, 2, 2, 1}}, {{1, 2, 3, 4}},
                              {{"size", Ints{4, 4}},
                               {"coordinate_transformation_mode", text("asymmetric")},
                               {"nearest_mode", text("floor")}}),
                 {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  // Nearest, tf_half_pixel_for_nn, 2 -> 4: x = 0.25, 0.75, 1.25, 1.75 (the last clamped).
  require_values(
      reference_of("Resize", {{1, 1, 2, 1}}, {{10, 20}},
                   {{"size", Ints{1, 4}}, {"coordinate_transformation_mode", text("tf_half_pixel_for_nn")}}),
      {10, 20, 20, 20});
  // Nearest, asymmetric, 4 -> 3: x = 0, 1.33, 2.67, rounded up.
  require_values(reference_of("Resize", {{1, 1, 4, 1}}, {{10, 20, 30, 40}},
                              {{"size", Ints{1, 3}},
                               {"coordinate_transformation_mode", text("asymmetric")},
                               {"nearest_mode", text("ceil")}}),
                 {10, 30, 40});
  // Nearest, asymmetric, 3 -> 2: x = 0, 1.5; round_prefer_ceil takes 2 at the tie.
  require_values(reference_of("Resize", {{1, 1, 3, 1}}, {{10, 20, 30}},
                              {{"size", Ints{1, 2}},
                               {"coordinate_transformation_mode", text("asymmetric")},
                               {"nearest_mode", text("round_prefer_ceil")}}),
                 {10, 30});
  // Linear 4 -> 1: pytorch_half_pixel reads x = 0, half_pixel x = 1.5.
  for (const auto& [transform, want] :
       std::vector<std::pair<std::string, double>>{{"pytorch_half_pixel", 10}, {"half_pixel", 25}})
    require_values(
        reference_of(
            "Resize", {{1, 1, 4, 1}}, {{10, 20, 30, 40}},
            {{"size", Ints{1, 1}}, {"mode", text("linear")}, {"coordinate_transformation_mode", transform}}),
        {want});
  // Linear, half_pixel, 3 -> 1 with ONNX's scale 0.5 (x = 0.5) and without (scale 1/3: x = 1).
  require_values(
      reference_of(
          "Resize", {{1, 1, 3, 1}}, {{10, 20, 30}},
          {{"size", Ints{1, 1}}, {"scales", std::vector<float>{1.0f, 0.5f}}, {"mode", text("linear")}}),
      {15});
  require_values(reference_of("Resize", {{1, 1, 3, 1}}, {{10, 20, 30}},
                              {{"size", Ints{1, 1}}, {"mode", text("linear")}}),
                 {20});
  // Nearest, half_pixel, 4 -> 2: x = 0.5, 2.5 (ties round down).
  require_values(reference_of("Resize", {{1, 1, 4, 1}}, {{10, 20, 30, 40}}, {{"size", Ints{1, 2}}}),
                 {10, 30});
  // Linear, half_pixel, 2 -> 4: x = -0.25, 0.25, 0.75, 1.25 (edges clamp).
  require_values(
      reference_of("Resize", {{1, 1, 2, 1}}, {{0, 10}}, {{"size", Ints{1, 4}}, {"mode", text("linear")}}),
      {0, 2.5, 7.5, 10});
  // Bilinear, align_corners, 2x2 -> 3x3: corners kept, centre the mean.
  require_values(reference_of("Resize", {{1, 2, 2, 1}}, {{0, 10, 20, 30}},
                              {{"size", Ints{3, 3}},
                               {"mode", text("linear")},
                               {"coordinate_transformation_mode", text("align_corners")}}),
                 {0, 5, 10, 10, 15, 20, 20, 25, 30});
}

// ---------------------------------------------------------------------------

namespace {

// A small MobileNet-like graph: input normalisation, conv, depthwise conv, a
// residual add, a squeeze-excite branch, pooling, concat, resize, a classifier.
struct SmallNet {
  Builder bld;
  int x, logits, probs;
  explicit SmallNet(Rng& rng) {
    x = bld.input("image", {1, 12, 12, 3});
    auto weights = [&](const std::string& name, Shape s) {
      return bld.constant(name, s, values_of(rng, s, 0.5f));
    };
    // Each channel less its mean over the image, divided by a constant.
    int t = bld.node("Sub", {x, bld.node("ReduceMean", {x}, {{"axes", Ints{1, 2}}})});
    t = bld.node("Div", {t, bld.constant("scale", {3}, {2, 4, 8})});
    t = bld.node("Conv2D", {t, weights("w1", {8, 3, 3, 3}), weights("b1", {8})},
                 {{"strides", Ints{2, 2}}, {"pads", Ints{0, 0, 1, 1}}, {"activation", text("relu6")}});
    const int dw = bld.node("Conv2D", {t, weights("w2", {8, 3, 3, 1}), weights("b2", {8})},
                            {{"pads", Ints{1, 1, 1, 1}}, {"group", int64_t{8}}});
    t = bld.node("Add", {t, bld.node("HardSwish", {dw})});
    const int se =
        bld.node("HardSigmoid",
                 {bld.node("FullyConnected", {bld.node("GlobalAveragePool", {t}), weights("wse", {8, 8})})});
    t = bld.node("Mul", {t, se});
    const std::vector<int> halves = bld.nodes("Split", {t}, {{"axis", int64_t{-1}}}, 2);
    const int pooled = bld.node("MaxPool2D", {halves[0]}, {{"kernel", Ints{2, 2}}});
    const int avg = bld.node(
        "AveragePool2D",
        {bld.node("Pad", {halves[1]}, {{"pads", Ints{0, 1, 1, 0, 0, 0, 0, 0}}, {"mode", text("edge")}})},
        {{"kernel", Ints{2, 2}}, {"pads", Ints{0, 0, 1, 1}}});
    t = bld.node("Concat",
                 {pooled, bld.node("Slice", {avg},
                                   {{"starts", Ints{0, 0}}, {"ends", Ints{3, 3}}, {"axes", Ints{1, 2}}})},
                 {{"axis", int64_t{3}}});
    t = bld.node("Resize", {t}, {{"size", Ints{5, 5}}, {"mode", text("linear")}});
    t = bld.node("Transpose", {bld.node("Sigmoid", {t})}, {{"perm", Ints{0, 3, 1, 2}}});
    t = bld.node("Reshape", {bld.node("Relu", {bld.node("Clip", {t}, {{"min", -1.0f}, {"max", 0.8f}})})},
                 {{"shape", Ints{1, -1}}});
    logits = bld.node("FullyConnected", {t, weights("wfc", {10, 200}), weights("bfc", {10})});
    probs = bld.node("Softmax", {logits});
    bld.g.outputs = {probs, logits};
  }
};

}  // namespace

TEST_CASE("reference: a multi-op graph against the engine; observe sees every activation",
          "[engine][reference]") {
  Rng rng(110);
  SmallNet net(rng);
  const std::vector<float> image = values_of(rng, {1, 12, 12, 3});
  compare(net.bld, {net.probs, net.logits}, {image}, 2e-5);

  const ReferenceExecutor ref(net.bld.g);
  std::map<int, std::vector<float>> seen;
  const auto outs = ref.run({image}, [&](int t, std::span<const float> v) {
    CHECK(seen.count(t) == 0);
    CHECK(static_cast<int64_t>(v.size()) == elements(ref.shape(t)));
    seen[t] = {v.begin(), v.end()};
  });
  std::set<int> activations = {net.x};
  for (const Node& node : net.bld.g.nodes) activations.insert(node.outputs.begin(), node.outputs.end());
  CHECK(seen.size() == activations.size());
  for (int t : activations) CHECK(seen.count(t) == 1);
  CHECK(seen[net.x] == image);
  CHECK(seen[net.probs] == outs[0]);
  CHECK(seen[net.logits] == outs[1]);
  CHECK(ref.inputs() == std::vector<int>{net.x});
  CHECK(ref.shape(net.logits) == Shape{1, 10});
  double sum = 0;
  for (float p : outs[0]) sum += p;
  CHECK(sum == Approx(1.0));
  // Runs again with the same result (run keeps no state).
  CHECK(ref.run({image}) == outs);
}

TEST_CASE("reference: outlives its graph; weights may be activations", "[engine][reference]") {
  std::unique_ptr<ReferenceExecutor> ref;
  {
    Builder bld;
    const int w = bld.input("w", {2, 3});  // FullyConnected weights fed at run time
    bld.g.outputs = {
        bld.node("FullyConnected", {bld.input("x", {1, 3}), w, bld.constant("b", {2}, {0.5f, -1})})};
    ref = std::make_unique<ReferenceExecutor>(bld.g);
  }
  const std::vector<float> w = {1, 0, -1, 2, 2, 2}, x = {3, 4, 5};
  require_values(ref->run({w, x})[0], {-1.5, 23});
}

TEST_CASE("reference: errors name the node or tensor", "[engine][reference]") {
  {
    Builder bld;
    const int y = bld.node("Frobnicate", {bld.node("Relu", {bld.input("x", {2})})});
    bld.node("Frobnicate", {y});
    bld.node("Gizmo", {y});
    const std::string e = reference_error(bld.g);
    CHECK_THAT(e, Catch::Contains("the reference executor has no op for 2 op type(s)"));
    CHECK_THAT(e, Catch::Contains("Frobnicate (2x, first at node 1 'Frobnicate1' (Frobnicate))"));
    CHECK_THAT(e, Catch::Contains("Gizmo (1x"));
  }
  {
    Builder bld;
    const int x = bld.input("x", {2});
    bld.g.tensors[static_cast<size_t>(x)].dtype = DType::i8;
    bld.node("Relu", {x});
    CHECK_THAT(reference_error(bld.g), Catch::Contains("graph input 0 'x' is i8 without quantisation"));
    bld.g.tensors[static_cast<size_t>(x)].dtype = DType::i64;
    CHECK_THAT(
        reference_error(bld.g),
        Catch::Contains("graph input 0 'x' is i64: the reference executor runs f32 and i8 activations only"));
  }
  {
    Builder bld;
    const int w = bld.g.add_constant("w", DType::i8, {1, 1}, {1});
    bld.node("FullyConnected", {bld.input("x", {1, 1}), w});
    CHECK_THAT(reference_error(bld.g), Catch::Contains("constant 'w' is i8 without quantisation"));
  }
  {
    Builder bld;
    bld.node("Add", {bld.input("x", {2})});
    CHECK_THAT(reference_error(bld.g), Catch::Contains("node 0 'Add0' (Add): has 1 inputs, the op takes 2"));
  }
  {
    Builder bld;
    bld.nodes("Relu", {bld.input("x", {2})}, {}, 2);
    CHECK_THAT(reference_error(bld.g), Catch::Contains("has 2 outputs, the op makes 1"));
  }
  {
    Builder bld;
    const int y = bld.node("Relu", {bld.input("x", {2})});
    bld.g.tensors[static_cast<size_t>(y)].shape = {3};
    CHECK_THAT(reference_error(bld.g),
               Catch::Contains("output 'Relu0' is declared [3] but the op computes [2]"));
  }
  {
    Builder bld;
    Tensor loose;
    loose.name = "loose";
    bld.node("Relu", {bld.g.add_tensor(loose)});
    CHECK_THAT(
        reference_error(bld.g),
        Catch::Contains("input 0 'loose' is neither a graph input, a constant nor made by an earlier node"));
  }
  {
    Builder bld;
    bld.node("Conv2D",
             {bld.input("x", {1, 4, 4, 3}), bld.constant("w", {2, 3, 3, 2}, std::vector<float>(36))});
    CHECK_THAT(reference_error(bld.g),
               Catch::Contains("weights [2, 3, 3, 2] and group 1 do not fit input [1, 4, 4, 3]"));
  }
  {
    Builder bld;
    bld.node("MaxPool2D", {bld.input("x", {1, 4, 4, 1})});
    CHECK_THAT(reference_error(bld.g), Catch::Contains("(MaxPool2D): attribute 'kernel' is missing"));
  }
  {  // Inputs at run time.
    Builder bld;
    bld.g.outputs = {bld.node("Relu", {bld.input("x", {2, 2})})};
    const ReferenceExecutor ref(bld.g);
    const std::vector<float> three = {1, 2, 3};
    CHECK_THROWS_WITH(ref.run({}), Catch::Contains("the graph has 1 inputs, run got 0"));
    CHECK_THROWS_WITH(ref.run({three}),
                      Catch::Contains("graph input 0 'x' [2, 2] takes 4 values, run got 3"));
  }
}

// Not run by default: the reference's speed on MobileNetV2's largest layers.
TEST_CASE("reference: MobileNetV2-size convolutions", "[.speed]") {
  Rng rng(111);
  Builder bld;
  auto weights = [&](const std::string& name, Shape s) {
    return bld.constant(name, s, values_of(rng, s, 0.1f));
  };
  int t = bld.node("Conv2D", {bld.input("image", {1, 224, 224, 3}), weights("w0", {32, 3, 3, 3})},
                   {{"strides", Ints{2, 2}}, {"pads", Ints{0, 0, 1, 1}}, {"activation", text("relu6")}});
  t = bld.node("Conv2D", {t, weights("w1", {32, 3, 3, 1})},
               {{"pads", Ints{1, 1, 1, 1}}, {"group", int64_t{32}}});
  t = bld.node("Conv2D", {t, weights("w2", {16, 1, 1, 32})});
  t = bld.node("Conv2D", {t, weights("w3", {96, 1, 1, 16})}, {{"activation", text("relu6")}});
  t = bld.node("Conv2D", {t, weights("w4", {96, 3, 3, 1})},
               {{"strides", Ints{2, 2}}, {"pads", Ints{0, 0, 1, 1}}, {"group", int64_t{96}}});
  bld.g.outputs = {t};
  const ReferenceExecutor ref(bld.g);
  const std::vector<float> image = values_of(rng, {1, 224, 224, 3});
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  const auto out = ref.run({image}, [&](int tensor, std::span<const float>) {
    const auto now = std::chrono::steady_clock::now();
    const double step = std::chrono::duration<double, std::milli>(now - last).count();
    WARN(ref.name(tensor) << " " << step << " ms");
    last = now;
  });
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  WARN("five MobileNetV2 stem layers (224x224 input): " << ms << " ms");
  CHECK(out[0].size() == 56u * 56u * 96u);
}
