// The interpreter and the fp32 ops: every op against a direct formula in
// double precision on random shapes; preparation errors name the node; the
// arena is reused; run() allocates nothing.
#include "engine/interpreter.h"

#include <capnp/message.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "engine/npy.h"
#include "kernels/codebook/codebook.h"
#include "tests/engine/builder.h"

using namespace huddle::engine;
using namespace huddle::test;

// Counts heap allocations while `g_counting` is set (this test binary only).
// The replacements allocate with malloc and free with free, which GCC's
// -Wmismatched-new-delete cannot see through.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
static std::atomic<bool> g_counting{false};
static std::atomic<long> g_allocations{0};
// The whole non-array family is replaced, so every pointer is freed by the
// function family that made it (ASan checks that); array forms stay the
// runtime's and pair with each other.
static void* counted_malloc(size_t n) noexcept {
  if (g_counting) ++g_allocations;
  return std::malloc(n ? n : 1);
}
void* operator new(size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

TEST_CASE("ops: Conv2D (dense, depthwise, grouped) against the direct formula", "[engine][ops]") {
  Rng rng(31);
  for (int t = 0; t < 150; ++t) {
    const int64_t n = rng.coin(0.2) ? 2 : 1, h = rng.uniform(1, 9), w = rng.uniform(1, 9);
    const int kind = t % 3;  // 0 dense, 1 depthwise, 2 grouped
    const int64_t group = kind == 0 ? 1 : kind == 1 ? rng.uniform(2, 12) : rng.pick<int64_t>({2, 3});
    const int64_t c = kind == 1 ? group : group * rng.uniform(1, 5);
    const int64_t o = kind == 1 ? c : group * rng.uniform(1, 5);
    const int64_t kh = rng.uniform(1, 3), kw = rng.uniform(1, 3), sh = rng.uniform(1, 2),
                  sw = rng.uniform(1, 2);
    const int64_t dh = rng.coin(0.8) ? 1 : 2, dw = rng.coin(0.8) ? 1 : 2;
    const std::vector<int64_t> pads = {int64_t(rng.uniform(0, kh - 1)), int64_t(rng.uniform(0, kw - 1)),
                                       int64_t(rng.uniform(0, kh - 1)), int64_t(rng.uniform(0, kw - 1))};
    const int64_t oh_span = h + pads[0] + pads[2] - (kh - 1) * dh,
                  ow_span = w + pads[1] + pads[3] - (kw - 1) * dw;
    if (oh_span <= 0 || ow_span <= 0) continue;
    const int64_t oh = (oh_span - 1) / sh + 1, ow = (ow_span - 1) / sw + 1, cg = c / group, og = o / group;
    const std::string act = rng.pick<std::string>({"none", "relu", "relu6"});
    const std::vector<float> x = random_values(rng, size_t(n * h * w * c)), b = random_values(rng, size_t(o));
    std::vector<float> wt = random_values(rng, size_t(o * kh * kw * cg));
    Builder bld;
    const int in = bld.input("x", {n, h, w, c});
    // Every fourth case stores the weights as f16 (quantize --float-weights f16):
    // the formula then uses the f16 values.
    const bool half = t % 4 == 3;
    std::vector<uint16_t> wh;
    for (float& v : wt)
      if (half) wh.push_back(huddle::kernels::fp32_to_fp16(v)), v = huddle::kernels::fp16_to_fp32(wh.back());
    const int wc = half ? bld.constant_bytes("w", DType::f16, {o, kh, kw, cg}, wh.data(), wh.size() * 2)
                        : bld.constant("w", {o, kh, kw, cg}, wt);
    const int y = bld.node("Conv2D", {in, wc, bld.constant("b", {o}, b)},
                           {{"strides", std::vector<int64_t>{sh, sw}},
                            {"dilations", std::vector<int64_t>{dh, dw}},
                            {"pads", pads},
                            {"group", group},
                            {"activation", act}});
    Shape shape;
    const std::vector<float> got = run(std::move(bld.g), y, {x}, &shape);
    CHECK(shape == Shape{n, oh, ow, o});
    std::vector<double> want;
    for (int64_t bi = 0; bi < n; ++bi)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox)
          for (int64_t co = 0; co < o; ++co) {
            const int64_t g = co / og;
            double acc = b[size_t(co)];
            for (int64_t ky = 0; ky < kh; ++ky)
              for (int64_t kx = 0; kx < kw; ++kx) {
                const int64_t iy = oy * sh - pads[0] + ky * dh, ix = ox * sw - pads[1] + kx * dw;
                if (iy < 0 || ix < 0 || iy >= h || ix >= w) continue;
                for (int64_t ci = 0; ci < cg; ++ci)
                  acc += double(x[size_t(((bi * h + iy) * w + ix) * c + g * cg + ci)]) *
                         wt[size_t(((co * kh + ky) * kw + kx) * cg + ci)];
              }
            if (act != "none") acc = std::max(acc, 0.0);
            if (act == "relu6") acc = std::min(acc, 6.0);
            want.push_back(acc);
          }
    INFO("kind " << kind << " group " << group << (half ? " f16 weights" : "") << " in " << shape_text({n, h, w, c}) << " out " << o);
    require_close(got, want, 1e-4);
  }
}

TEST_CASE("ops: FullyConnected, Add/Mul broadcasting, unary ops, pooling, reshape, softmax",
          "[engine][ops]") {
  Rng rng(32);
  SECTION("FullyConnected") {
    const std::vector<float> x = random_values(rng, 3 * 37), w = random_values(rng, 11 * 37),
                             b = random_values(rng, 11);
    Builder bld;
    const int y = bld.node("FullyConnected", {bld.input("x", {3, 37}), bld.constant("w", {11, 37}, w),
                                              bld.constant("b", {11}, b)});
    std::vector<double> want;
    for (int r = 0; r < 3; ++r)
      for (int j = 0; j < 11; ++j) {
        double acc = b[j];
        for (int k = 0; k < 37; ++k) acc += double(x[r * 37 + k]) * w[j * 37 + k];
        want.push_back(acc);
      }
    require_close(run(std::move(bld.g), y, {x}), want, 1e-5);
  }
  SECTION("FullyConnected with f16 weights") {
    const std::vector<float> x = random_values(rng, 2 * 19);
    std::vector<uint16_t> wh;
    for (float v : random_values(rng, 5 * 19)) wh.push_back(huddle::kernels::fp32_to_fp16(v));
    Builder bld;
    const int y = bld.node("FullyConnected",
                           {bld.input("x", {2, 19}), bld.constant_bytes("w", DType::f16, {5, 19}, wh.data(), 5 * 19 * 2)});
    std::vector<double> want;
    for (int r = 0; r < 2; ++r)
      for (int j = 0; j < 5; ++j) {
        double acc = 0;
        for (int k = 0; k < 19; ++k) acc += double(x[r * 19 + k]) * huddle::kernels::fp16_to_fp32(wh[j * 19 + k]);
        want.push_back(acc);
      }
    require_close(run(std::move(bld.g), y, {x}), want, 1e-5);
  }
  SECTION("Add and Mul broadcast like numpy") {
    const std::vector<std::pair<Shape, Shape>> cases = {{{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {4}},
                                                        {{2, 1, 4}, {3, 1}},    {{5}, {}},
                                                        {{}, {2, 2}},           {{1, 1, 6}, {2, 1, 1}}};
    for (const auto& [sa, sb] : cases) {
      for (const char* op : {"Add", "Mul"}) {
        const std::vector<float> a = random_values(rng, size_t(elements(sa))),
                                 b = random_values(rng, size_t(elements(sb)));
        Builder bld;
        const int y = bld.node(op, {bld.input("a", sa), bld.input("b", sb)});
        Shape out;
        const std::vector<float> got = run(std::move(bld.g), y, {a, b}, &out);
        // Reference: index each output element back into a and b.
        std::vector<double> want;
        const size_t rank = out.size();
        for (int64_t i = 0; i < elements(out); ++i) {
          int64_t rem = i, ia = 0, ib = 0, stride_a = 1, stride_b = 1;
          for (size_t d = rank; d-- > 0;) {
            const int64_t idx = rem % out[d];
            rem /= out[d];
            const size_t da = d + sa.size() - rank, db = d + sb.size() - rank;
            if (d + sa.size() >= rank) {
              if (sa[da] != 1) ia += idx * stride_a;
              stride_a *= sa[da];
            }
            if (d + sb.size() >= rank) {
              if (sb[db] != 1) ib += idx * stride_b;
              stride_b *= sb[db];
            }
          }
          want.push_back(std::string(op) == "Add" ? double(a[ia]) + b[ib] : double(a[ia]) * b[ib]);
        }
        INFO(op << " " << shape_text(sa) << " " << shape_text(sb));
        require_close(got, want, 1e-6);
      }
    }
    Builder bad;
    bad.node("Add", {bad.input("a", {2, 3}), bad.input("b", {4})});
    CHECK_THROWS_WITH(Interpreter(std::move(bad.g)),
                      Catch::Contains("shapes [2, 3] and [4] do not broadcast"));
  }
  SECTION("unary ops") {
    const std::vector<float> x = {-4.0f, -3.0f, -1.0f, -0.25f, 0.0f, 0.5f, 2.0f, 3.0f, 7.0f};
    struct Case {
      const char* op;
      std::map<std::string, AttrValue> attrs;
      double (*f)(double);
    };
    const Case cases[] = {
        {"Relu", {}, [](double v) { return std::max(v, 0.0); }},
        {"Clip", {{"min", -1.0f}, {"max", 2.5f}}, [](double v) { return std::min(std::max(v, -1.0), 2.5); }},
        {"Sigmoid", {}, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }},
        {"HardSigmoid", {}, [](double v) { return std::min(std::max(0.2 * v + 0.5, 0.0), 1.0); }},
        {"HardSwish", {}, [](double v) { return v * std::min(std::max(v + 3.0, 0.0), 6.0) / 6.0; }},
        {"LeakyRelu", {}, [](double v) { return v < 0 ? double(0.01f) * v : v; }},
        {"LeakyRelu", {{"alpha", 0.1f}}, [](double v) { return v < 0 ? double(0.1f) * v : v; }},
    };
    for (const Case& c : cases) {
      Builder bld;
      const int y = bld.node(c.op, {bld.input("x", {9})}, c.attrs);
      std::vector<double> want;
      for (float v : x) want.push_back(c.f(v));
      INFO(c.op);
      require_close(run(std::move(bld.g), y, {x}), want, 1e-6);
    }
  }
  SECTION("GlobalAveragePool, Reshape, Softmax") {
    const std::vector<float> x = random_values(rng, 2 * 3 * 5 * 4);
    Builder bld;
    const int gap = bld.node("GlobalAveragePool", {bld.input("x", {2, 3, 5, 4})});
    const int flat = bld.node("Reshape", {gap}, {{"shape", std::vector<int64_t>{2, -1}}});
    const int y = bld.node("Softmax", {flat});
    Shape shape;
    const std::vector<float> got = run(std::move(bld.g), y, {x}, &shape);
    CHECK(shape == Shape{2, 4});
    std::vector<double> want;
    for (int b = 0; b < 2; ++b) {
      double mean[4] = {}, sum = 0;
      for (int p = 0; p < 15; ++p)
        for (int c = 0; c < 4; ++c) mean[c] += x[(b * 15 + p) * 4 + c] / 15.0;
      for (double m : mean) sum += std::exp(m);
      for (double m : mean) want.push_back(std::exp(m) / sum);
    }
    require_close(got, want, 1e-5);
  }
}

TEST_CASE("interpreter: errors name the node, and every unknown op at once", "[engine][interpreter]") {
  {
    Builder bld;
    const int x = bld.input("x", {1, 4});
    bld.node("Frobnicate", {x});
    bld.node("Relu", {x});
    bld.node("Warp", {x});
    bld.node("Frobnicate", {x});
    try {
      Interpreter it(std::move(bld.g));
      FAIL("no error");
    } catch (const GraphError& e) {
      const std::string msg = e.what();
      CHECK_THAT(msg, Catch::Contains("no op for 2 op type(s)"));
      CHECK_THAT(msg, Catch::Contains("Frobnicate (2x, first at node 0 'Frobnicate0' (Frobnicate))"));
      CHECK_THAT(msg, Catch::Contains("Warp (1x"));
    }
  }
  {
    Builder bld;
    bld.node("Relu", {bld.input("x", {3}), bld.input("y", {3})});
    CHECK_THROWS_WITH(Interpreter(std::move(bld.g)),
                      Catch::Contains("node 0 'Relu0' (Relu): has 2 inputs, the op takes 1"));
  }
  {
    Builder bld;
    const int y = bld.node("Relu", {bld.input("x", {3})});
    bld.g.tensors[y].shape = {4};  // declared in the file, contradicted by inference
    CHECK_THROWS_WITH(Interpreter(std::move(bld.g)),
                      Catch::Contains("output 'Relu0' is declared [4] but the op computes [3]"));
  }
  {
    Builder bld;
    bld.node("Conv2D", {bld.input("x", {1, 4, 4, 3}), bld.input("w", {2, 3, 3, 3})});
    CHECK_THROWS_WITH(Interpreter(std::move(bld.g)), Catch::Contains("input 1 'w' must be a constant"));
  }
  {
    Builder bld;
    bld.node("Relu", {bld.input("x", {3})}, {});
    bld.g.nodes[0].op = "Conv2D";
    bld.g.nodes[0].inputs.push_back(bld.constant("w", {1, 5, 5, 3}, std::vector<float>(75)));
    bld.g.tensors[0].shape = {1, 2, 2, 3};
    CHECK_THROWS_WITH(Interpreter(std::move(bld.g)), Catch::Contains("larger than the padded input"));
  }
}

TEST_CASE("interpreter: a chain reuses arena memory, runs in place, allocates nothing when run",
          "[engine][interpreter]") {
  Rng rng(33);
  Builder bld;
  int t = bld.input("x", {1, 16, 16, 8});
  for (int i = 0; i < 6; ++i) {
    t = bld.node("Conv2D",
                 {t, bld.constant("w" + std::to_string(i), {8, 3, 3, 8}, random_values(rng, 8 * 9 * 8))},
                 {{"pads", std::vector<int64_t>{1, 1, 1, 1}}});
    t = bld.node("Relu", {t});
  }
  bld.g.outputs = {t};
  Interpreter it(std::move(bld.g));
  const size_t one = 16 * 16 * 8 * sizeof(float);
  // 13 activations of one size: the input, alive all through (a caller may
  // run again on it), and at most 2 others at once (a conv's input and output).
  CHECK(it.peak_live_bytes() == 3 * one);
  CHECK(it.arena_bytes() == 3 * one);
  const std::vector<float> x = random_values(rng, 16 * 16 * 8);
  std::memcpy(it.input_data(0), x.data(), one);
  it.run();  // warm
  std::vector<float> first(static_cast<const float*>(it.output_data(0)),
                           static_cast<const float*>(it.output_data(0)) + 16 * 16 * 8);
  // Run again without writing the input: it must still be there.
  g_allocations = 0;
  g_counting = true;
  it.run();
  g_counting = false;
  CHECK(g_allocations.load() == 0);
  CHECK(std::memcmp(first.data(), it.output_data(0), one) == 0);
}

// Writes the command-line tests' fixture into $HUDDLE_FIXTURE_DIR: model.hdm
// (y = relu(x W^T + b), small integers so every result is exact), x.npy and
// the expected y.npy computed here by integer arithmetic.
TEST_CASE("interpreter: write the command-line fixture", "[.cli-fixture]") {
  const char* dir = std::getenv("HUDDLE_FIXTURE_DIR");
  REQUIRE(dir != nullptr);
  const std::vector<float> w = {1, -2, 3, 0, 0, 1, -1, 2, -3, 1, 1, 1}, b = {1, 0, -2};
  const std::vector<float> x = {1, 2, 3, 4, -1, 0, 2, -3};
  Builder bld;
  const int y = bld.node(
      "Relu", {bld.node("FullyConnected",
                        {bld.input("x", {2, 4}), bld.constant("w", {3, 4}, w), bld.constant("b", {3}, b)})});
  bld.g.outputs = {y};
  bld.g.tensors[static_cast<size_t>(y)].name = "y";
  capnp::MallocMessageBuilder message;
  auto model = message.initRoot<schema::Model>();
  WeightsBuilder weights;
  graph_to_model(bld.g, model, weights);
  model.getProvenance().setProducer("huddle tests (cli fixture)");
  write_model_file(std::string(dir) + "/model.hdm", message, weights.bytes());
  std::vector<float> want;
  for (int r = 0; r < 2; ++r)
    for (int j = 0; j < 3; ++j) {
      int acc = static_cast<int>(b[j]);
      for (int k = 0; k < 4; ++k) acc += static_cast<int>(x[r * 4 + k]) * static_cast<int>(w[j * 4 + k]);
      want.push_back(static_cast<float>(acc > 0 ? acc : 0));
    }
  auto bytes = [](const std::vector<float>& v) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float));
  };
  write_npy(std::string(dir) + "/x.npy", DType::f32, {2, 4}, bytes(x));
  write_npy(std::string(dir) + "/y.npy", DType::f32, {2, 3}, bytes(want));
}

TEST_CASE("interpreter: the pooling, data movement and resize ops allocate nothing when run",
          "[engine][interpreter]") {
  Rng rng(34);
  using Ints = std::vector<int64_t>;
  Builder bld;
  const int x = bld.input("x", {1, 9, 9, 20});
  int t = bld.node("Pad", {x}, {{"pads", Ints{0, 1, 1, 0, 0, 1, 1, 0}}, {"mode", std::string("reflect")}});
  t = bld.node("MaxPool2D", {t}, {{"kernel", Ints{3, 3}}, {"strides", Ints{2, 2}}});
  t = bld.node("Transpose", {t}, {{"perm", Ints{0, 3, 1, 2}}});
  t = bld.node(
      "Slice", {t},
      {{"starts", Ints{1, 0}}, {"ends", Ints{-1, 100}}, {"axes", Ints{1, 3}}, {"steps", Ints{2, 1}}});
  t = bld.node("Transpose", {t}, {{"perm", Ints{0, 2, 3, 1}}});
  const std::vector<int> parts = bld.nodes("Split", {t}, {{"axis", int64_t{-1}}, {"split", Ints{3, 6}}}, 2);
  t = bld.node("Concat", {parts[1], parts[0], parts[1]}, {{"axis", int64_t{3}}});
  t = bld.node("Resize", {t}, {{"size", Ints{9, 7}}, {"mode", std::string("linear")}});
  t = bld.node("AveragePool2D", {t}, {{"kernel", Ints{2, 2}}, {"pads", Ints{1, 1, 1, 1}}});
  const int n = bld.node("Resize", {t}, {{"size", Ints{4, 4}}});
  bld.g.outputs = {n};
  Interpreter it(std::move(bld.g));
  CHECK(it.output(0).shape == Shape{1, 4, 4, 15});
  const std::vector<float> in = random_values(rng, 9 * 9 * 20);
  std::memcpy(it.input_data(0), in.data(), in.size() * sizeof(float));
  it.run();
  std::vector<float> first(static_cast<const float*>(it.output_data(0)),
                           static_cast<const float*>(it.output_data(0)) + 4 * 4 * 15);
  std::memcpy(it.input_data(0), in.data(), in.size() * sizeof(float));  // the arena reuses the input's bytes
  g_allocations = 0;
  g_counting = true;
  it.run();
  g_counting = false;
  CHECK(g_allocations.load() == 0);
  CHECK(std::memcmp(first.data(), it.output_data(0), first.size() * sizeof(float)) == 0);
}

TEST_CASE("interpreter: 1, 2 and 3 threads give the same bits and allocate nothing when run",
          "[engine][interpreter][threads]") {
  Rng rng(35);
  using Ints = std::vector<int64_t>;
  auto make = [&](Rng& r) {
    Builder bld;
    int t = bld.input("x", {2, 11, 9, 6});
    t = bld.node("Conv2D", {t, bld.constant("w0", {70, 3, 3, 6}, random_values(r, 70 * 9 * 6))},
                 {{"pads", Ints{1, 1, 1, 1}}, {"activation", std::string("relu")}});
    t = bld.node("Conv2D", {t, bld.constant("w1", {70, 3, 3, 1}, random_values(r, 70 * 9))},
                 {{"group", int64_t{70}}, {"strides", Ints{2, 2}}});
    t = bld.node("Conv2D", {t, bld.constant("w2", {40, 1, 1, 35}, random_values(r, 40 * 35))},
                 {{"group", int64_t{2}}});
    t = bld.node("Reshape", {t}, {{"shape", Ints{2, -1}}});
    t = bld.node("FullyConnected",
                 {t, bld.constant("w3", {37, 5 * 4 * 40}, random_values(r, 37 * 5 * 4 * 40))});
    bld.g.outputs = {t};
    return std::move(bld.g);
  };
  const std::vector<float> x = random_values(rng, 2 * 11 * 9 * 6);
  std::vector<std::vector<uint8_t>> results;
  for (size_t threads : {1, 2, 3}) {
    Rng weights(99);  // the same weights for every thread count
    Interpreter it(make(weights), InterpreterOptions{threads});
    std::memcpy(it.input_data(0), x.data(), x.size() * sizeof(float));
    it.run();
    std::memcpy(it.input_data(0), x.data(), x.size() * sizeof(float));
    g_allocations = 0;
    g_counting = true;
    it.run();
    g_counting = false;
    INFO(threads << " threads");
    CHECK(g_allocations.load() == 0);
    const auto* y = static_cast<const uint8_t*>(it.output_data(0));
    results.emplace_back(y, y + elements(it.output(0).shape) * sizeof(float));
  }
  CHECK(results[1] == results[0]);
  CHECK(results[2] == results[0]);
}

// The same checks through a model file: what graph_from_file hands the
// interpreter is what a converted or downloaded model would.
TEST_CASE("interpreter: a model file with an unknown op or a contradicted shape fails at load",
          "[engine][interpreter]") {
  auto load = [](Builder& bld) {
    capnp::MallocMessageBuilder message;
    WeightsBuilder weights;
    graph_to_model(bld.g, message.initRoot<schema::Model>(), weights);
    const ModelFile file = ModelFile::from_bytes(serialize_model(message, weights.bytes()), "bad.hdm");
    Interpreter it(graph_from_file(file));
  };
  {
    Builder bld;
    const int x = bld.input("x", {2, 3});
    bld.g.outputs = {bld.node("Relu", {bld.node("Gelu", {x})})};
    CHECK_THROWS_WITH(load(bld), Catch::Contains("no op for 1 op type(s)") && Catch::Contains("Gelu"));
  }
  {
    Builder bld;
    const int y = bld.node("Relu", {bld.input("x", {2, 3})});
    bld.g.outputs = {y};
    bld.g.tensors[static_cast<size_t>(y)].shape = {3, 2};
    CHECK_THROWS_WITH(load(bld),
                      Catch::Contains("output 'Relu0' is declared [3, 2] but the op computes [2, 3]"));
  }
  {
    Builder bld;  // weights that do not fit the input, as a damaged or hand-edited file could hold
    bld.g.outputs = {bld.node("FullyConnected",
                              {bld.input("x", {2, 4}), bld.constant("w", {3, 5}, std::vector<float>(15))})};
    CHECK_THROWS_WITH(load(bld), Catch::Contains("weights [3, 5] do not fit input [2, 4]"));
  }
}
