// The graph passes: each on small graphs, checking the structure it leaves
// (op counts, attributes), that the Interpreter still prepares the graph and
// that the outputs on random inputs are exactly the same; negative cases that
// must stay; optimize on an importer-like NCHW graph and on random op chains.
#include "engine/passes.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "tests/engine/builder.h"

using namespace huddle::engine;
using namespace huddle::test;

namespace {

using Ints = std::vector<int64_t>;
using Attrs = std::map<std::string, AttrValue>;

size_t count(const Graph& g, const std::string& op) {
  return static_cast<size_t>(
      std::count_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op == op; }));
}

const Node& only(const Graph& g, const std::string& op) {
  REQUIRE(count(g, op) == 1);
  return *std::find_if(g.nodes.begin(), g.nodes.end(), [&](const Node& n) { return n.op == op; });
}

// What a graph shows its caller: names, dtypes and shapes of its inputs and outputs.
std::vector<std::string> interface_of(const Interpreter& it) {
  std::vector<std::string> io;
  for (size_t i = 0; i < it.input_count(); ++i)
    io.push_back("in " + it.input(i).name + " " + dtype_text(it.input(i).dtype) + " " +
                 shape_text(it.input(i).shape));
  for (size_t i = 0; i < it.output_count(); ++i)
    io.push_back("out " + it.output(i).name + " " + dtype_text(it.output(i).dtype) + " " +
                 shape_text(it.output(i).shape));
  return io;
}

struct Observed {
  std::vector<std::string> io;
  std::vector<Output> outputs;
};

Observed observe(const Graph& g, const std::vector<std::vector<float>>& inputs) {
  Graph copy = g;
  Observed o{interface_of(Interpreter(copy)), {}};
  o.outputs = run_all(std::move(copy), g.outputs, inputs);
  return o;
}

// Runs `pass` on `g` and checks that the graph still prepares, shows the same
// inputs and outputs and computes exactly the same values on random inputs.
// Returns what the pass returns.
template <class Pass>
auto apply(Graph& g, Pass pass, uint32_t seed = 7) {
  Rng rng(seed);
  std::vector<std::vector<float>> inputs;
  {
    Interpreter it(g);
    for (size_t i = 0; i < it.input_count(); ++i)
      inputs.push_back(random_values(rng, static_cast<size_t>(elements(it.input(i).shape))));
  }
  const Observed before = observe(g, inputs);
  const auto result = pass(g);
  const Observed after = observe(g, inputs);
  CHECK(after.io == before.io);
  REQUIRE(after.outputs.size() == before.outputs.size());
  for (size_t k = 0; k < before.outputs.size(); ++k) {
    INFO("output " << k);
    CHECK(after.outputs[k].shape == before.outputs[k].shape);
    CHECK(after.outputs[k].values == before.outputs[k].values);
  }
  return result;
}

// prefix + n (built so GCC 12's -Wrestrict false positive on "w" + to_string stays quiet).
std::string numbered(const char* prefix, size_t n) {
  std::string s = prefix;
  s += std::to_string(n);
  return s;
}

// Conv2D 1x1 with `c` channels in and `o` out, random weights.
int conv(Builder& b, Rng& rng, int x, int64_t c, int64_t o, Attrs attrs = {}) {
  const int w = b.constant(numbered("w", b.g.tensors.size()), {o, 1, 1, c},
                           random_values(rng, static_cast<size_t>(o * c)));
  const int bias =
      b.constant(numbered("b", b.g.tensors.size()), {o}, random_values(rng, static_cast<size_t>(o)));
  return b.node("Conv2D", {x, w, bias}, std::move(attrs));
}

Attrs perm(Ints p) { return {{"perm", std::move(p)}}; }
Attrs clip(float lo, float hi) { return {{"min", lo}, {"max", hi}}; }

const Ints kToNchw = {0, 3, 1, 2}, kToNhwc = {0, 2, 3, 1};

}  // namespace

TEST_CASE("passes: Relu and Clip fuse into the Conv2D or FullyConnected before them", "[engine][passes]") {
  Rng rng(1);
  struct Case {
    std::string had;         // the producer's activation
    std::string op;          // Relu or Clip
    float lo, hi;            // Clip's attributes
    std::string want;        // the activation after fusion
    float want_lo, want_hi;  // clip_min / clip_max when want is "clip"
  };
  const float inf = std::numeric_limits<float>::infinity();
  const Case cases[] = {
      {"none", "Relu", 0, 0, "relu", 0, 0},      {"none", "Clip", 0, 6, "relu6", 0, 0},
      {"none", "Clip", -1, 2, "clip", -1, 2},    {"none", "Clip", -inf, 0.5f, "clip", -inf, 0.5f},
      {"relu", "Clip", 0, 6, "relu6", 0, 0},     {"relu6", "Relu", 0, 0, "relu6", 0, 0},
      {"relu", "Relu", 0, 0, "relu", 0, 0},      {"relu", "Clip", -3, 3, "clip", 0, 3},
      {"relu6", "Clip", 7, 9, "clip", 7, 7},     {"relu6", "Clip", -9, -8, "clip", -8, -8},
      {"none", "Clip", -inf, inf, "none", 0, 0},
  };
  for (const Case& c : cases) {
    for (const char* producer : {"Conv2D", "FullyConnected"}) {
      INFO(producer << " " << c.had << " then " << c.op << " " << c.lo << " " << c.hi);
      Builder b;
      const int x = b.input("x", {1, 3, 4, 5});
      const Attrs act = {{"activation", c.had}};
      const int p = std::string(producer) == "Conv2D"
                        ? conv(b, rng, x, 5, 6, act)
                        : b.node("FullyConnected", {x, b.constant("w", {6, 5}, random_values(rng, 30))}, act);
      const int y = b.node(c.op, {p}, c.op == "Clip" ? clip(c.lo, c.hi) : Attrs{});
      b.g.outputs = {y};
      CHECK(apply(b.g, fuse_activations) == 1);
      REQUIRE(b.g.nodes.size() == 1);
      const Node& n = b.g.nodes[0];
      CHECK(n.outputs[0] == y);
      CHECK(n.attr_text("activation") == c.want);
      if (c.want == "clip") {
        CHECK(n.attr_float("clip_min", -inf) == c.want_lo);
        CHECK(n.attr_float("clip_max", inf) == c.want_hi);
      } else {
        CHECK(!n.has_attr("clip_min"));
        CHECK(!n.has_attr("clip_max"));
      }
    }
  }
  SECTION("a chain of activations fuses in one call") {
    Builder b;
    const int y =
        b.node("Clip", {b.node("Relu", {conv(b, rng, b.input("x", {2, 3, 3, 4}), 4, 4)})}, clip(-1, 6));
    b.g.outputs = {y};
    CHECK(apply(b.g, fuse_activations) == 2);
    REQUIRE(b.g.nodes.size() == 1);
    CHECK(b.g.nodes[0].attr_text("activation") == "relu6");
  }
  SECTION("not when the producer's output has another reader or is a graph output") {
    Builder b;
    const int x = b.input("x", {1, 2, 2, 3});
    const int c1 = conv(b, rng, x, 3, 3);
    const int shared = b.node("Add", {b.node("Relu", {c1}), c1});
    const int c2 = conv(b, rng, x, 3, 3);
    const int out = b.node("Relu", {c2});
    const int after_add = b.node("Relu", {b.node("Add", {x, x})});
    b.g.outputs = {shared, out, c2, after_add};
    CHECK(apply(b.g, fuse_activations) == 0);
    CHECK(count(b.g, "Relu") == 3);
  }
  SECTION("not a LeakyRelu: it is no clamp") {
    Builder b;
    b.g.outputs = {b.node("LeakyRelu", {conv(b, rng, b.input("x", {1, 2, 2, 3}), 3, 3)}, {{"alpha", 0.1f}})};
    CHECK(apply(b.g, fuse_activations) == 0);
    CHECK(count(b.g, "LeakyRelu") == 1);
    CHECK(only(b.g, "Conv2D").attr_text("activation", "none") == "none");
  }
  SECTION("not into an unknown activation: the Interpreter reports it") {
    Builder b;
    b.g.outputs = {b.node(
        "Relu", {conv(b, rng, b.input("x", {1, 2, 2, 3}), 3, 3, {{"activation", std::string("tanh")}})})};
    CHECK(fuse_activations(b.g) == 0);
    CHECK(b.g.nodes.size() == 2);
  }
}

TEST_CASE("passes: consecutive Transposes compose into one", "[engine][passes]") {
  SECTION("into one perm; the first stays while something else reads it") {
    Builder b;
    const int x = b.input("x", {2, 3, 4});
    const int t1 = b.node("Transpose", {x}, perm({1, 0, 2}));
    const int t2 = b.node("Transpose", {t1}, perm({0, 2, 1}));
    const int y = b.node("Relu", {t1});
    b.g.outputs = {t2, y};
    CHECK(apply(b.g, compose_transposes) == 1);
    CHECK(b.g.nodes[1].inputs[0] == x);
    CHECK(b.g.nodes[1].attr_ints("perm") == Ints{1, 2, 0});
    CHECK(apply(b.g, remove_dead_nodes) == 0);
  }
  SECTION("a default (reversed) perm and chains of three") {
    Builder b;
    const int t =
        b.node("Transpose",
               {b.node("Transpose", {b.node("Transpose", {b.input("x", {2, 3, 4, 5})})}, perm({3, 1, 0, 2}))},
               perm({2, 0, 3, 1}));
    b.g.outputs = {t};
    CHECK(apply(b.g, compose_transposes) == 2);
    CHECK(apply(b.g, remove_dead_nodes) == 2);
    CHECK(count(b.g, "Transpose") == 1);
  }
  SECTION("NCHW and back cancels; an identity Transpose between graph input and output stays") {
    Builder b;
    const int x = b.input("x", {1, 4, 5, 3});
    const int back = b.node("Transpose", {b.node("Transpose", {x}, perm(kToNchw))}, perm(kToNhwc));
    const int y = b.node("Relu", {back});
    b.g.outputs = {y, back};
    CHECK(apply(b.g, compose_transposes) == 1);
    CHECK(b.g.nodes[1].attr_ints("perm") == Ints{0, 1, 2, 3});
    CHECK(apply(b.g, remove_noops) == 0);  // back is a graph output written from the graph input
    b.g.outputs = {y};
    CHECK(apply(b.g, remove_noops) == 1);
    CHECK(apply(b.g, remove_dead_nodes) == 1);
    REQUIRE(b.g.nodes.size() == 1);
    CHECK(b.g.nodes[0].inputs[0] == x);
  }
}

TEST_CASE("passes: a Transpose that moves only size-1 dims becomes a Reshape", "[engine][passes]") {
  struct Case {
    Shape in;
    Ints perm;
    bool reshape;
  };
  const Case cases[] = {
      {{1, 1, 5, 3}, {1, 0, 2, 3}, true},  {{2, 1, 3}, {1, 0, 2}, true},  {{1, 4, 1, 6}, {0, 2, 1, 3}, true},
      {{1, 4, 1, 6}, {2, 0, 1, 3}, true},  {{1, 1, 1}, {2, 1, 0}, true},  {{2, 3}, {1, 0}, false},
      {{1, 4, 1, 6}, {0, 3, 2, 1}, false}, {{4, 1, 6}, {2, 1, 0}, false}, {{2, 2}, {0, 1}, true},
  };
  for (const Case& c : cases) {
    INFO(shape_text(c.in) << " perm " << shape_text(c.perm));
    Builder b;
    b.g.outputs = {b.node("Transpose", {b.input("x", c.in)}, perm(c.perm))};
    CHECK(apply(b.g, transposes_to_reshapes) == (c.reshape ? 1u : 0u));
    CHECK(b.g.nodes[0].op == (c.reshape ? "Reshape" : "Transpose"));
  }
}

TEST_CASE("passes: shapes come from the ops, or where an op does not prepare, from the graph",
          "[engine][passes]") {
  Builder b;
  const int x = b.input("x", {1, 1, 5, 3});
  const int known = b.node("Transpose", {b.node("Relu", {x})}, perm({1, 0, 2, 3}));
  const int mystery = b.node("Mystery", {x});
  const int declared = b.node("Mystery", {x});
  b.g.tensors[static_cast<size_t>(declared)].shape = {1, 1, 5, 3};
  const int unknown = b.node("Transpose", {mystery}, perm({1, 0, 2, 3}));
  const int from_declared = b.node("Transpose", {declared}, perm({1, 0, 2, 3}));
  b.g.outputs = {known, unknown, from_declared};
  CHECK(transposes_to_reshapes(b.g) == 2);
  CHECK(b.g.nodes[1].op == "Reshape");
  CHECK(b.g.nodes[4].op == "Transpose");
  CHECK(b.g.nodes[5].op == "Reshape");
}

TEST_CASE("passes: Transposes sink below elementwise unary ops and Concat, and cancel", "[engine][passes]") {
  SECTION("Transpose, unary ops, Transpose back") {
    Builder b;
    const int x = b.input("x", {1, 4, 5, 3});
    const int t = b.node("Transpose", {x}, perm(kToNchw));
    const int u = b.node("HardSwish", {b.node("Clip", {b.node("Sigmoid", {t})}, clip(0.1f, 0.7f))});
    const int v = b.node("LeakyRelu", {b.node("Relu", {u})}, {{"alpha", 0.1f}});
    const int y = b.node("Transpose", {b.node("HardSigmoid", {v})}, perm(kToNhwc));
    b.g.outputs = {y};
    CHECK(apply(b.g, sink_transposes) == 6);
    CHECK(b.g.nodes[0].op == "Sigmoid");
    CHECK(b.g.nodes[0].inputs[0] == x);
    CHECK(b.g.nodes[6].op == "Transpose");
    CHECK(b.g.nodes[7].outputs[0] == y);
    apply(b.g, optimize);
    CHECK(count(b.g, "Transpose") == 0);
    CHECK(b.g.nodes.size() == 6);
  }
  SECTION("Pad and Slice in NCHW between Transposes: their axes move to NHWC") {
    constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();
    Builder b;
    const int x = b.input("x", {2, 5, 6, 3});
    const int nchw = b.node("Transpose", {x}, perm(kToNchw));
    const int padded =
        b.node("Pad", {nchw}, {{"pads", Ints{0, 0, 1, 2, 0, 1, 0, 3}}, {"mode", std::string("edge")}});
    const int cut =
        b.node("Slice", {padded}, {{"starts", Ints{1, -5}}, {"ends", Ints{kEnd, -1}}, {"axes", Ints{-1, 2}}});
    const int all =
        b.node("Slice", {cut}, {{"starts", Ints{0, 1}}, {"ends", Ints{2, 3}}, {"steps", Ints{1, 2}}});
    b.g.outputs = {b.node("Transpose", {all}, perm(kToNhwc))};
    CHECK(apply(b.g, sink_transposes) == 3);
    CHECK(only(b.g, "Pad").attr_ints("pads") == Ints{0, 1, 2, 0, 0, 0, 3, 1});
    CHECK(b.g.nodes[1].attr_ints("axes") == Ints{2, 1});
    CHECK(b.g.nodes[2].attr_ints("axes") == Ints{0, 3});
    apply(b.g, optimize);
    CHECK(count(b.g, "Transpose") == 0);
    CHECK(b.g.nodes.size() == 3);
  }
  SECTION("a Split in NCHW whose outputs go back to NHWC") {
    Builder b;
    const int x = b.input("x", {1, 3, 4, 6});
    const auto parts = b.nodes("Split", {b.node("Transpose", {x}, perm(kToNchw))},
                               {{"axis", int64_t{1}}, {"split", Ints{2, 4}}}, 2);
    const int y0 = b.node("Transpose", {parts[0]}, perm(kToNhwc));
    const int y1 = b.node("Relu", {b.node("Transpose", {parts[1]}, perm(kToNhwc))});
    const int y2 = b.node("Transpose", {parts[1]}, perm({0, 1, 3, 2}));
    b.g.outputs = {y0, y1, y2};
    CHECK(apply(b.g, sink_transposes) == 2);  // and the NHWC one below the Relu
    CHECK(only(b.g, "Split").attr_int("axis", 0) == 3);
    const PassReport report = apply(b.g, optimize);
    CHECK(report.transposes_after == 1);  // y2's: NCHW with H and W swapped
    CHECK(b.g.nodes.size() == 3);

    Builder kept;  // a Split output read by something else than a Transpose keeps the Transpose above
    const auto halves =
        kept.nodes("Split", {kept.node("Transpose", {kept.input("x", {1, 3, 4, 6})}, perm(kToNchw))},
                   {{"axis", int64_t{1}}}, 2);
    kept.g.outputs = {kept.node("Transpose", {halves[0]}, perm(kToNhwc)), kept.node("Relu", {halves[1]})};
    CHECK(apply(kept.g, sink_transposes) == 0);
  }
  SECTION("the unary op's output may be a graph output") {
    Builder b;
    const int t = b.node("Transpose", {b.input("x", {2, 3})}, perm({1, 0}));
    const int y = b.node("Relu", {t});
    b.g.outputs = {y};
    CHECK(apply(b.g, sink_transposes) == 1);
    CHECK(b.g.nodes[1].op == "Transpose");
    CHECK(b.g.nodes[1].outputs[0] == y);
  }
  SECTION("not when the Transpose has another reader or is a graph output") {
    Builder b;
    const int x = b.input("x", {2, 3});
    const int t1 = b.node("Transpose", {x}, perm({1, 0}));
    const int y1 = b.node("Add", {b.node("Relu", {t1}), t1});
    const int t2 = b.node("Transpose", {x}, perm({1, 0}));
    const int y2 = b.node("Relu", {t2});
    b.g.outputs = {y1, y2, t2};
    CHECK(apply(b.g, sink_transposes) == 0);
  }
  SECTION("Transposes of one perm into a Concat") {
    Builder b;
    const int x1 = b.input("x1", {1, 4, 5, 3}), x2 = b.input("x2", {1, 4, 5, 2});
    const int cat =
        b.node("Concat", {b.node("Transpose", {x1}, perm(kToNchw)), b.node("Transpose", {x2}, perm(kToNchw))},
               {{"axis", int64_t{-3}}});
    const int y = b.node("Transpose", {cat}, perm(kToNhwc));
    b.g.outputs = {y};
    CHECK(apply(b.g, sink_transposes) == 1);
    CHECK(only(b.g, "Concat").attr_int("axis", 0) == 3);
    apply(b.g, optimize);
    REQUIRE(b.g.nodes.size() == 1);
    CHECK(b.g.nodes[0].op == "Concat");
  }
  SECTION("not into a Concat of different perms or of a Transpose read twice") {
    Builder b;
    const int x = b.input("x", {2, 2, 2});
    const int t1 = b.node("Transpose", {x}, perm({1, 0, 2})), t2 = b.node("Transpose", {x}, perm({0, 2, 1}));
    const int mixed = b.node("Concat", {t1, t2}, {{"axis", int64_t{0}}});
    const int t3 = b.node("Transpose", {x}, perm({1, 0, 2}));
    const int twice = b.node("Concat", {t3, t3}, {{"axis", int64_t{1}}});
    b.g.outputs = {mixed, twice};
    CHECK(apply(b.g, sink_transposes) == 0);
  }
}

TEST_CASE("passes: no-op nodes go, their readers read the producer", "[engine][passes]") {
  constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();
  const Shape s = {2, 3, 4};
  const std::pair<std::string, Attrs> noops[] = {
      {"Reshape", {{"shape", Ints{2, -1, 4}}}},
      {"Transpose", perm({0, 1, 2})},
      {"Slice", {{"starts", Ints{0, -3}}, {"ends", Ints{kEnd, 3}}, {"axes", Ints{0, 1}}}},
      {"Slice", {{"starts", Ints{0}}, {"ends", Ints{5}}, {"axes", Ints{-1}}}},
      {"Pad", {{"pads", Ints{0, 0, 0, 0, 0, 0}}, {"mode", std::string("reflect")}}},
      {"Concat", {{"axis", int64_t{1}}}},
      {"Split", {{"axis", int64_t{2}}}},
  };
  for (const auto& [op, attrs] : noops) {
    INFO(op);
    Builder b;
    const int x = b.input("x", s);
    const int r = b.node("Relu", {x});
    const int y = b.node("Sigmoid", {b.node(op, {r}, attrs)});
    b.g.outputs = {y};
    CHECK(apply(b.g, remove_noops) == 1);
    REQUIRE(b.g.nodes.size() == 2);
    CHECK(b.g.nodes[1].inputs[0] == r);

    // A graph output: the producer writes it instead.
    Builder o;
    const int r2 = o.node("Relu", {o.input("x", s)});
    const int y2 = o.node(op, {r2}, attrs);
    const int z = o.node("Sigmoid", {r2});
    o.g.outputs = {y2, z};
    CHECK(apply(o.g, remove_noops) == 1);
    REQUIRE(o.g.nodes.size() == 2);
    CHECK(o.g.nodes[0].outputs[0] == y2);
    CHECK(o.g.nodes[1].inputs[0] == y2);

    // A graph output read straight from the graph input stays.
    Builder io;
    io.g.outputs = {io.node(op, {io.input("x", s)}, attrs)};
    CHECK(apply(io.g, remove_noops) == 0);
  }
  SECTION("what changes the data stays") {
    Builder b;
    const int x = b.input("x", s);
    b.g.outputs = {b.node("Reshape", {x}, {{"shape", Ints{3, 2, 4}}}),
                   b.node("Slice", {x}, {{"starts", Ints{1}}, {"ends", Ints{kEnd}}, {"axes", Ints{1}}}),
                   b.node("Slice", {x}, {{"starts", Ints{0}}, {"ends", Ints{kEnd}}, {"steps", Ints{2}}}),
                   b.node("Pad", {x}, {{"pads", Ints{0, 0, 0, 0, 1, 0}}}),
                   b.node("Transpose", {x}, perm({0, 2, 1})),
                   b.node("Concat", {x, x}, {{"axis", int64_t{0}}})};
    CHECK(apply(b.g, remove_noops) == 0);
    CHECK(b.g.nodes.size() == 6);
  }
  SECTION("a Reshape of a Reshape reads the first one's input") {
    Builder b;
    const int x = b.input("x", s);
    const int r1 = b.node("Reshape", {x}, {{"shape", Ints{6, 4}}});
    const int r2 = b.node("Reshape", {r1}, {{"shape", Ints{-1}}});
    const int back =
        b.node("Reshape", {b.node("Reshape", {x}, {{"shape", Ints{24}}})}, {{"shape", Ints{2, 3, 4}}});
    b.g.outputs = {r2, b.node("Relu", {back})};
    CHECK(apply(b.g, remove_noops) == 3);  // two merges, then the Reshape back to x's shape goes
    CHECK(b.g.nodes[1].inputs[0] == x);
    CHECK(b.g.nodes.back().inputs[0] == x);
    CHECK(apply(b.g, remove_dead_nodes) == 2);
    CHECK(count(b.g, "Reshape") == 1);
  }
}

TEST_CASE("passes: nodes of constants are folded into constants", "[engine][passes]") {
  Rng rng(5);
  Builder b;
  const int x = b.input("x", {2, 3, 4});
  const int k = b.constant("k", {4, 3, 2}, random_values(rng, 24));
  const int kt = b.node("Transpose", {k}, perm({2, 1, 0}));
  const int flat = b.node("Reshape", {kt}, {{"shape", Ints{2, 12}}});
  const int fc = b.node("FullyConnected", {flat, b.constant("w", {5, 12}, random_values(rng, 60))},
                        {{"activation", std::string("relu")}});
  const int y = b.node("Add", {x, b.node("Reshape", {b.node("Relu", {kt})}, {{"shape", Ints{2, 3, 4}}})});
  const int const_out = b.node("Sigmoid", {k});
  b.g.outputs = {y, fc, const_out};
  CHECK(apply(b.g, fold_constants) == 4);  // Transpose, Reshape, Relu, Reshape; not the graph outputs
  CHECK(count(b.g, "Transpose") == 0);
  CHECK(count(b.g, "Relu") == 0);
  CHECK(b.g.nodes.size() == 3);
  const Tensor& folded = b.g.tensors[static_cast<size_t>(kt)];
  CHECK(folded.is_constant());
  CHECK(folded.name == "Transpose0");
  CHECK(folded.shape == Shape{2, 3, 4});
  CHECK(folded.values<float>()[1] ==
        b.g.tensors[static_cast<size_t>(k)].values<float>()[6]);  // [0][0][1] = k[1][0][0]
  CHECK(apply(b.g, fold_constants) == 0);

  const size_t owned = b.g.owned.size();
  CHECK(apply(b.g, drop_unused_tensors) == 2);  // the folded Transpose and Relu
  CHECK(b.g.owned.size() == owned - 2);
}

TEST_CASE("passes: a Transpose on Conv2D weights folds, so the Conv2D prepares", "[engine][passes]") {
  Rng rng(6);
  const std::vector<float> w = random_values(rng, 4 * 3 * 2 * 2);  // OIHW [4, 3, 2, 2]
  const std::vector<float> x = random_values(rng, 5 * 5 * 3);
  Builder b;
  const int oihw = b.constant("w", {4, 3, 2, 2}, w);
  b.g.outputs = {
      b.node("Conv2D", {b.input("x", {1, 5, 5, 3}), b.node("Transpose", {oihw}, perm({0, 2, 3, 1}))})};
  CHECK_THROWS_WITH(Interpreter(b.g), Catch::Contains("must be a constant"));
  const PassReport report = optimize(b.g);
  CHECK(report.folded_constants == 1);
  CHECK(b.g.nodes.size() == 1);
  CHECK(b.g.tensors.size() == 3);

  std::vector<float> ohwi(w.size());
  for (size_t o = 0; o < 4; ++o)
    for (size_t i = 0; i < 3; ++i)
      for (size_t k = 0; k < 4; ++k) ohwi[(o * 4 + k) * 3 + i] = w[(o * 3 + i) * 4 + k];
  Builder want;
  want.g.outputs = {
      want.node("Conv2D", {want.input("x", {1, 5, 5, 3}), want.constant("w", {4, 2, 2, 3}, ohwi)})};
  CHECK(run(b.g, b.g.outputs[0], {x}) == run(want.g, want.g.outputs[0], {x}));
}

TEST_CASE("passes: dead nodes and unused tensors go, tensors are renumbered", "[engine][passes]") {
  Builder b;
  const int x = b.input("x", {3, 4});
  b.input("unused", {2});
  const int dead = b.node("Sigmoid", {b.node("Relu", {x})});
  const auto parts = b.nodes("Split", {x}, {{"axis", int64_t{1}}}, 2);
  const int y = b.node("Add", {parts[0], b.node("Relu", {parts[1]})});
  b.g.outputs = {y};
  (void)dead;
  CHECK(apply(b.g, remove_dead_nodes) == 2);
  CHECK(b.g.nodes.size() == 3);
  const size_t tensors = b.g.tensors.size();
  CHECK(apply(b.g, drop_unused_tensors) == 2);
  CHECK(b.g.tensors.size() == tensors - 2);
  CHECK(b.g.tensors[static_cast<size_t>(b.g.inputs[1])].name == "unused");
  CHECK(b.g.tensors[static_cast<size_t>(b.g.outputs[0])].name == "Add4");
  CHECK(apply(b.g, drop_unused_tensors) == 0);
}

TEST_CASE("passes: optimize on an importer's NCHW graph", "[engine][passes]") {
  Rng rng(9);
  // What an ONNX importer makes of conv, relu, conv, clip(0, 6), add, global
  // pool, flatten, gemm: Transposes around every layout-sensitive op.
  Builder b;
  const int x = b.input("image", {1, 6, 5, 3});
  const int nchw = b.node("Transpose", {x}, perm(kToNchw));
  const auto conv_nchw = [&](int in, int64_t c, int64_t o) {
    return b.node("Transpose", {conv(b, rng, b.node("Transpose", {in}, perm(kToNhwc)), c, o)}, perm(kToNchw));
  };
  const int c1 = b.node("Relu", {conv_nchw(nchw, 3, 8)});
  const int c2 = b.node("Clip", {conv_nchw(c1, 8, 8)}, clip(0, 6));
  const int sum = b.node("Add", {c2, c1});
  const int pooled = b.node(
      "Transpose", {b.node("GlobalAveragePool", {b.node("Transpose", {sum}, perm(kToNhwc))})}, perm(kToNchw));
  const int flat = b.node("Reshape", {pooled}, {{"shape", Ints{1, 8}}});
  const int y = b.node("FullyConnected", {flat, b.constant("w", {4, 8}, random_values(rng, 32))});
  const int probs = b.node("Softmax", {y});
  b.g.outputs = {probs};
  const size_t transposes = count(b.g, "Transpose");
  const PassReport report = apply(b.g, optimize);
  INFO(report.text());
  CHECK(report.transposes_before == transposes);
  CHECK(count(b.g, "Transpose") == report.transposes_after);
  CHECK(report.transposes_after == 0);
  CHECK(report.nodes_after == 7);  // Conv2D, Conv2D, Add, GlobalAveragePool, Reshape, FullyConnected, Softmax
  CHECK(report.fused_activations == 2);
  CHECK(count(b.g, "Relu") == 0);
  CHECK(count(b.g, "Clip") == 0);
  CHECK(report.nodes_after == b.g.nodes.size());
  CHECK(report.text().find("fused 2 activations, removed 7 of 7 transposes") == 0);
  CHECK(optimize(b.g).text() == "nothing to change (7 nodes)");
}

TEST_CASE("passes: optimize keeps the outputs of random op chains", "[engine][passes]") {
  Rng rng(11);
  PassReport total;
  for (int trial = 0; trial < 500; ++trial) {
    Builder b;
    Shape shape = {1, int64_t(rng.uniform(1, 3)), int64_t(rng.uniform(1, 4)), int64_t(rng.uniform(1, 3))};
    int cur = b.input("x", shape);
    std::vector<int> outputs;
    const int steps = int(rng.uniform(2, 12));
    for (int s = 0; s < steps; ++s) {
      const int pick = int(rng.uniform(0, 11));
      if (pick <= 2) {  // a Transpose, often an NCHW / NHWC one
        Ints p(shape.size());
        std::iota(p.begin(), p.end(), int64_t{0});
        if (pick == 0 && shape.size() == 4)
          p = rng.coin(0.5) ? kToNchw : kToNhwc;
        else
          std::shuffle(p.begin(), p.end(), std::mt19937(uint32_t(rng.uniform(0, 1000))));
        Shape next;
        for (int64_t d : p) next.push_back(shape[size_t(d)]);
        cur = b.node("Transpose", {cur}, perm(p));
        shape = next;
      } else if (pick == 3) {
        const std::string op =
            rng.pick<std::string>({"Relu", "Sigmoid", "HardSwish", "HardSigmoid", "LeakyRelu"});
        cur = b.node(op, {cur}, op == "LeakyRelu" ? Attrs{{"alpha", 0.1f}} : Attrs{});
      } else if (pick == 4) {
        cur = b.node("Clip", {cur}, rng.coin(0.5) ? clip(0, 6) : clip(-0.5f, 0.5f));
      } else if (pick == 5 && shape.size() == 4) {
        cur =
            conv(b, rng, cur, shape[3], shape[3], {{"activation", rng.pick<std::string>({"none", "relu"})}});
      } else if (pick == 6) {
        cur = b.node("Reshape", {cur}, {{"shape", rng.coin(0.5) ? Ints{-1} : shape}});
        if (b.g.nodes.back().attr_ints("shape") == Ints{-1}) shape = {elements(shape)};
      } else if (pick == 7) {
        cur = b.node("Concat", {cur, b.node("Relu", {cur})}, {{"axis", int64_t(shape.size()) - 1}});
        shape.back() *= 2;
      } else if (pick == 8) {
        const Shape k = rng.coin(0.5) ? shape : Shape{shape.back()};  // or broadcast along the last axis
        const std::string op = rng.pick<std::string>({"Add", "Sub", "Mul", "Div"});
        std::vector<float> values = random_values(rng, size_t(elements(k)));
        for (float& v : values)
          v = std::copysign(1.0f + std::abs(v), v);  // dividing by these makes no infinities
        const int constant = b.constant(numbered("k", size_t(s)), k, values);
        cur = op != "Div" && rng.coin(0.5) ? b.node(op, {constant, cur}) : b.node(op, {cur, constant});
      } else if (pick == 9) {
        Ints pads(2 * shape.size());
        for (size_t d = 0; d < pads.size(); ++d) {
          pads[d] = int64_t(rng.uniform(0, 1));
          shape[d % shape.size()] += pads[d];
        }
        cur = b.node("Pad", {cur}, {{"pads", pads}, {"mode", rng.pick<std::string>({"constant", "edge"})}});
      } else if (pick == 10) {
        const size_t axis = rng.uniform(0, shape.size() - 1);
        const int64_t len = shape[axis], start = len > 1 ? int64_t(rng.uniform(0, 1)) : 0;
        cur = b.node("Slice", {cur},
                     {{"starts", Ints{start}}, {"ends", Ints{len}}, {"axes", Ints{int64_t(axis)}}});
        shape[axis] = len - start;
      } else if (rng.coin(0.3)) {
        outputs.push_back(cur);  // an intermediate graph output
      }
    }
    outputs.push_back(cur);
    b.g.outputs = outputs;
    if (trial %
        2) {  // as an importer may: every shape declared (the Interpreter checks them after the passes)
      const Interpreter it(b.g);
      for (size_t t = 0; t < b.g.tensors.size(); ++t) b.g.tensors[t].shape = it.graph().tensors[t].shape;
    }
    INFO("trial " << trial);
    const PassReport report = apply(b.g, optimize, uint32_t(trial));
    CHECK(report.rounds < 20);
    std::set<std::string> names;
    for (const Tensor& t : b.g.tensors) names.insert(t.name);
    CHECK(names.size() == b.g.tensors.size());
    // Every pass has reached its fixed point.
    for (auto pass : {fuse_activations, compose_transposes, transposes_to_reshapes, sink_transposes,
                      remove_noops, fold_constants, remove_dead_nodes, drop_unused_tensors})
      CHECK(pass(b.g) == 0);
    for (auto field :
         {&PassReport::fused_activations, &PassReport::merged_transposes, &PassReport::transposes_to_reshapes,
          &PassReport::moved_transposes, &PassReport::removed_noops, &PassReport::folded_constants,
          &PassReport::removed_dead, &PassReport::transposes_before, &PassReport::transposes_after})
      total.*field += report.*field;
  }
  // The chains exercised every pass.
  INFO(total.text());
  CHECK(total.fused_activations > 10);
  CHECK(total.merged_transposes > 20);
  CHECK(total.transposes_to_reshapes > 20);
  CHECK(total.moved_transposes > 20);
  CHECK(total.removed_noops > 20);
  CHECK(total.folded_constants > 20);
  CHECK(total.removed_dead > 20);
  CHECK(total.transposes_after * 2 < total.transposes_before);
}

TEST_CASE("passes: Mul(x, Sigmoid(x)) becomes one Silu, with the same bits", "[engine][passes]") {
  Rng rng(77);
  for (int side = 0; side < 2; ++side) {
    Builder b;
    const int x = conv(b, rng, b.input("x", {1, 5, 5, 3}), 3, 8);
    const int s = b.node("Sigmoid", {x});
    b.g.outputs = {b.node("Mul", side ? std::vector<int>{s, x} : std::vector<int>{x, s})};
    CHECK(apply(b.g, fuse_silu) == 1u);
    REQUIRE(b.g.nodes.size() == 2);
    CHECK(b.g.nodes[1].op == "Silu");
    CHECK(b.g.nodes[1].inputs == std::vector<int>{x});
  }
  {
    Builder b;  // the sigmoid is read elsewhere too: no fusion
    const int x = b.input("x", {2, 7});
    const int s = b.node("Sigmoid", {x});
    b.g.outputs = {b.node("Mul", {x, s}), s};
    CHECK(apply(b.g, fuse_silu) == 0u);
  }
  {
    Builder b;  // a gate: Mul(y, Sigmoid(x)) with y != x stays
    const int x = b.input("x", {2, 7}), y = b.input("y", {2, 7});
    b.g.outputs = {b.node("Mul", {y, b.node("Sigmoid", {x})})};
    CHECK(apply(b.g, fuse_silu) == 0u);
  }
}

TEST_CASE("passes: relu6(x + 3) / 6 becomes HardSigmoid, x times it HardSwish, same values", "[engine][passes]") {
  Rng rng(78);
  const std::vector<float> x_values = random_values(rng, 2 * 40);
  std::vector<float> scaled(x_values);
  for (float& v : scaled) v *= 4;  // reach both clamps
  const auto relu6_plus_3 = [](Builder& b, int x) {
    const int add = b.node("Add", {x, b.constant("three", {}, std::vector<float>{3.0f})});
    return b.node("Clip", {add}, {{"min", 0.0f}, {"max", 6.0f}});
  };
  // 0: relu6(x + 3) * 1/6; 1: (x * 1/6) * relu6(x + 3); 2: (x * relu6(x + 3)) * 1/6 (the constant float16-rounded).
  for (int form = 0; form < 3; ++form) {
    Builder b;
    const int x = b.input("x", {2, 40});
    const float sixth = form == 2 ? 0.16668701f : 1.0f / 6.0f;
    const int c = b.constant("sixth", {}, std::vector<float>{sixth});
    const int r = relu6_plus_3(b, x);
    int y;
    if (form == 0) y = b.node("Mul", {c, r});
    else if (form == 1) y = b.node("Mul", {b.node("Mul", {x, c}), r});
    else y = b.node("Mul", {b.node("Mul", {x, r}), c});
    b.g.outputs = {y};
    const auto before = run_all(b.g, {y}, {scaled})[0].values;
    INFO("form " << form);
    CHECK(fuse_hard_activations(b.g) == 1u);
    REQUIRE(b.g.nodes.size() == 1);
    CHECK(b.g.nodes[0].op == (form == 0 ? "HardSigmoid" : "HardSwish"));
    CHECK(b.g.nodes[0].inputs == std::vector<int>{x});
    const auto after = run_all(b.g, b.g.outputs, {scaled})[0].values;
    for (size_t k = 0; k < after.size(); ++k) CHECK(std::fabs(after[k] - before[k]) <= 2e-4f * (1 + std::fabs(before[k])));
  }
  {
    Builder b;  // the clamp is read elsewhere too: no fusion
    const int x = b.input("x", {2, 40});
    const int r = relu6_plus_3(b, x);
    b.g.outputs = {b.node("Mul", {r, b.constant("sixth", {}, std::vector<float>{1.0f / 6})}), r};
    CHECK(fuse_hard_activations(b.g) == 0u);
  }
  {
    Builder b;  // a different constant (x + 2): no fusion
    const int x = b.input("x", {2, 40});
    const int add = b.node("Add", {x, b.constant("two", {}, std::vector<float>{2.0f})});
    const int r = b.node("Clip", {add}, {{"min", 0.0f}, {"max", 6.0f}});
    b.g.outputs = {b.node("Mul", {r, b.constant("sixth", {}, std::vector<float>{1.0f / 6})})};
    CHECK(fuse_hard_activations(b.g) == 0u);
  }
}
