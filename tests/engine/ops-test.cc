// The pooling, data movement and resize ops: each against a direct formula
// (written here from the op's definition, in double precision) on random
// shapes with size-1 and empty dims, hand-computed small cases, and each
// preparation error once; with the elementwise ops, the same bits on 1, 2
// and 3 threads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>

#include "engine/interpreter.h"
#include "tests/engine/builder.h"

using namespace huddle::engine;
using namespace huddle::test;
using namespace huddle::test::op_tests;

namespace {

constexpr int64_t kMax64 = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin64 = std::numeric_limits<int64_t>::min();

std::string error_of(const std::string& op, const Shape& shape, const Attrs& attrs, size_t outputs = 1) {
  Builder bld;
  bld.nodes(op, {bld.input("x", shape)}, attrs, outputs);
  return prepare_error(bld);
}

std::vector<double> as_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("ops: MaxPool2D and AveragePool2D against the direct formula", "[engine][ops]") {
  Rng rng(41);
  int checked = 0, refused = 0;
  for (int t = 0; t < 300; ++t) {
    const bool max = t % 2 == 0;
    const int64_t n = rng.coin(0.2) ? 2 : 1, h = uniform(rng, 1, 9), w = uniform(rng, 1, 9),
                  c = rng.coin(0.05) ? 0 : uniform(rng, 1, 6);
    const Ints kernel = {uniform(rng, 1, 4), uniform(rng, 1, 4)};
    const bool default_strides = rng.coin(0.25);
    const Ints strides = default_strides ? kernel : Ints{uniform(rng, 1, 3), uniform(rng, 1, 3)};
    const Ints pads = rng.coin(0.3) ? Ints{0, 0, 0, 0}
                                    : Ints{uniform(rng, 0, kernel[0] - 1), uniform(rng, 0, kernel[1] - 1),
                                           uniform(rng, 0, kernel[0]), uniform(rng, 0, kernel[1])};
    const int64_t include_pad = max ? 0 : uniform(rng, 0, 1);
    const int64_t span_h = h + pads[0] + pads[2], span_w = w + pads[1] + pads[3];
    if (span_h < kernel[0] || span_w < kernel[1]) continue;
    const int64_t oh = (span_h - kernel[0]) / strides[0] + 1, ow = (span_w - kernel[1]) / strides[1] + 1;
    Attrs attrs = {{"kernel", kernel}, {"pads", pads}};
    if (!default_strides) attrs["strides"] = strides;
    if (!max) attrs["count_include_pad"] = include_pad;
    const std::string op = max ? "MaxPool2D" : "AveragePool2D";
    const std::vector<float> x = random_values(rng, size_t(n * h * w * c));
    std::vector<double> want;
    bool empty_window = false;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          int64_t cells = 0;
          for (int64_t ky = 0; ky < kernel[0]; ++ky)
            for (int64_t kx = 0; kx < kernel[1]; ++kx) {
              const int64_t iy = oy * strides[0] - pads[0] + ky, ix = ox * strides[1] - pads[1] + kx;
              cells += iy >= 0 && iy < h && ix >= 0 && ix < w;
            }
          if (cells == 0) empty_window = true;
          for (int64_t ch = 0; ch < c; ++ch) {
            double acc = max ? -INFINITY : 0.0;
            for (int64_t ky = 0; ky < kernel[0]; ++ky)
              for (int64_t kx = 0; kx < kernel[1]; ++kx) {
                const int64_t iy = oy * strides[0] - pads[0] + ky, ix = ox * strides[1] - pads[1] + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                const double v = x[size_t(((b * h + iy) * w + ix) * c + ch)];
                acc = max ? std::max(acc, v) : acc + v;
              }
            if (!max) acc /= double(include_pad ? kernel[0] * kernel[1] : cells);
            want.push_back(acc);
          }
        }
    Builder bld;
    const int y = bld.node(op, {bld.input("x", {n, h, w, c})}, attrs);
    INFO(op << " input " << shape_text({n, h, w, c}) << " kernel " << shape_text(kernel) << " strides "
            << shape_text(strides) << " pads " << shape_text(pads) << " include_pad " << include_pad);
    if (empty_window) {
      CHECK_THROWS_WITH(Interpreter(std::move(bld.g)), Catch::Contains("leaves a window with no input cell"));
      ++refused;
      continue;
    }
    Shape shape;
    const std::vector<float> got = run(std::move(bld.g), y, {x}, &shape);
    CHECK(shape == Shape{n, oh, ow, c});
    require_close(got, want, 1e-5);
    ++checked;
  }
  CHECK(checked > 150);
  CHECK(refused > 0);
}

TEST_CASE("ops: pooling by hand, and its errors", "[engine][ops]") {
  // 3x3 input 1..9, kernel 2x2, stride 2, one row/column of bottom/right padding.
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const Attrs attrs = {{"kernel", Ints{2, 2}}, {"pads", Ints{0, 0, 1, 1}}};
  struct Case {
    const char* op;
    int64_t include_pad;
    std::vector<double> want;
  };
  for (const Case& c : {Case{"MaxPool2D", 0, {5, 6, 8, 9}}, Case{"AveragePool2D", 0, {3, 4.5, 7.5, 9}},
                        Case{"AveragePool2D", 1, {3, 2.25, 3.75, 2.25}}}) {
    Builder bld;
    Attrs a = attrs;
    if (std::string(c.op) == "AveragePool2D") a["count_include_pad"] = c.include_pad;
    const int y = bld.node(c.op, {bld.input("x", {1, 3, 3, 1})}, a);
    Shape shape;
    INFO(c.op << " count_include_pad " << c.include_pad);
    require_close(run(std::move(bld.g), y, {x}, &shape), c.want, 1e-6);
    CHECK(shape == Shape{1, 2, 2, 1});
  }
  // Explicit strides 1 over a 1x1 kernel: a copy.
  {
    Builder bld;
    const int y = bld.node("MaxPool2D", {bld.input("x", {1, 3, 3, 1})},
                           {{"kernel", Ints{1, 1}}, {"strides", Ints{1, 1}}});
    require_close(run(std::move(bld.g), y, {x}), as_double(x), 0);
  }
  const Shape s = {1, 4, 4, 2};
  CHECK_THAT(error_of("MaxPool2D", s, {}), Catch::Contains("attribute 'kernel' is missing"));
  CHECK_THAT(error_of("MaxPool2D", s, {{"kernel", Ints{0, 2}}}),
             Catch::Contains("attribute 'kernel' has 0, below 1"));
  CHECK_THAT(error_of("MaxPool2D", s, {{"kernel", Ints{5, 2}}}),
             Catch::Contains("attribute 'kernel' [5, 2] is larger than the padded input [1, 4, 4, 2]"));
  CHECK_THAT(error_of("AveragePool2D", s, {{"kernel", Ints{2, 2}}, {"pads", Ints{2, 0, 0, 0}}}),
             Catch::Contains("attribute 'pads' [2, 0, 0, 0] leaves a window with no input cell"));
  CHECK_THAT(error_of("AveragePool2D", s, {{"kernel", Ints{2, 2}}, {"count_include_pad", int64_t{2}}}),
             Catch::Contains("attribute 'count_include_pad' has 2, not 0 or 1"));
  CHECK_THAT(error_of("MaxPool2D", {4, 4, 2}, {{"kernel", Ints{2, 2}}}), Catch::Contains("expected rank 4"));
}

// ---------------------------------------------------------------------------

TEST_CASE("ops: Concat against the direct formula", "[engine][ops]") {
  Rng rng(42);
  for (int t = 0; t < 200; ++t) {
    const size_t rank = rng.uniform(1, 5), count = rng.uniform(1, 5);
    const Shape base = random_shape(rng, rank, 5);
    const auto [axis_attr, axis] = random_axis(rng, rank, t % 4 == 0);
    Builder bld;
    std::vector<int> ins;
    std::vector<Shape> shapes;
    std::vector<std::vector<float>> xs;
    for (size_t i = 0; i < count; ++i) {
      Shape s = base;
      s[axis] = rng.coin(0.1) ? 0 : uniform(rng, 1, rng.coin(0.3) ? 40 : 4);
      shapes.push_back(s);
      xs.push_back(random_values(rng, size_t(elements(s))));
      ins.push_back(bld.input(input_name(i), s));
    }
    const int y = bld.node("Concat", ins, {{"axis", axis_attr}});
    Shape out = base;
    out[axis] = 0;
    for (const Shape& s : shapes) out[axis] += s[axis];
    std::vector<double> want;
    for (int64_t i = 0; i < elements(out); ++i) {
      const auto [k, at] = concat_source(unravel(i, out), axis, shapes);
      want.push_back(xs[k][size_t(at)]);
    }
    Shape shape;
    const std::vector<float> got = run(std::move(bld.g), y, xs, &shape);
    INFO("out " << shape_text(out) << " axis " << axis_attr << " inputs " << count);
    CHECK(shape == out);
    require_close(got, want, 0);
  }
}

TEST_CASE("ops: Concat by hand, and its errors", "[engine][ops]") {
  {
    Builder bld;
    const int y =
        bld.node("Concat", {bld.input("a", {2, 2}), bld.input("b", {2, 1})}, {{"axis", int64_t{-1}}});
    require_close(run(std::move(bld.g), y, {{1, 2, 3, 4}, {5, 6}}), {1, 2, 5, 3, 4, 6}, 0);
  }
  {
    Builder bld;
    const int y =
        bld.node("Concat", {bld.input("a", {1, 2}), bld.input("b", {2, 2})}, {{"axis", int64_t{0}}});
    require_close(run(std::move(bld.g), y, {{1, 2}, {3, 4, 5, 6}}), {1, 2, 3, 4, 5, 6}, 0);
  }
  auto concat_error = [](std::vector<Shape> shapes, Attrs attrs) {
    Builder bld;
    std::vector<int> ins;
    for (size_t i = 0; i < shapes.size(); ++i) ins.push_back(bld.input(input_name(i), shapes[i]));
    bld.node("Concat", ins, attrs);
    return prepare_error(bld);
  };
  CHECK_THAT(concat_error({{2, 3}}, {}), Catch::Contains("attribute 'axis' is missing"));
  CHECK_THAT(concat_error({{2, 3}}, {{"axis", int64_t{2}}}),
             Catch::Contains("attribute 'axis' has 2, outside [-2, 1] for rank 2"));
  CHECK_THAT(concat_error({{2, 3}, {3, 3}}, {{"axis", int64_t{1}}}),
             Catch::Contains("input 1 [3, 3] does not fit input 0 [2, 3] for axis 1"));
  CHECK_THAT(concat_error({{2, 3}, {2, 3, 1}}, {{"axis", int64_t{1}}}),
             Catch::Contains("input 1 [2, 3, 1] does not fit"));
  CHECK_THAT(concat_error(std::vector<Shape>{Shape{}}, {{"axis", int64_t{0}}}),
             Catch::Contains("Concat needs rank >= 1"));
  CHECK_THAT(concat_error(std::vector<Shape>(65, Shape{1}), {{"axis", int64_t{0}}}),
             Catch::Contains("has 65 inputs, the op takes 1 to 64"));
  CHECK(concat_error(std::vector<Shape>(64, Shape{1}), {{"axis", int64_t{0}}}).empty());
}

// ---------------------------------------------------------------------------

TEST_CASE("ops: Split against the direct formula", "[engine][ops]") {
  Rng rng(43);
  for (int t = 0; t < 200; ++t) {
    const size_t rank = rng.uniform(1, 4), parts = rng.uniform(1, 4);
    Shape shape = random_shape(rng, rank, 5);
    const auto [axis_attr, axis] = random_axis(rng, rank, t % 3 == 0);
    Attrs attrs = {{"axis", axis_attr}};
    Ints sizes;
    if (t % 4 == 0) {                           // equal parts, the last one smaller
      const int64_t part = uniform(rng, 1, 4);  // ceil(len / parts) is part again
      sizes.assign(parts, part);
      sizes.back() = uniform(rng, std::max<int64_t>(1, part - int64_t(parts) + 1), part);
    } else {
      for (size_t i = 0; i < parts; ++i) sizes.push_back(rng.coin(0.15) ? 0 : uniform(rng, 1, 20));
      attrs["split"] = sizes;
    }
    shape[axis] = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
    const std::vector<float> x = random_values(rng, size_t(elements(shape)));
    Builder bld;
    const std::vector<int> outs = bld.nodes("Split", {bld.input("x", shape)}, attrs, parts);
    const std::vector<Output> got = run_all(std::move(bld.g), outs, {x});
    INFO("input " << shape_text(shape) << " axis " << axis_attr << " sizes " << shape_text(sizes));
    REQUIRE(got.size() == parts);
    int64_t offset = 0;
    for (size_t k = 0; k < parts; ++k) {
      Shape s = shape;
      s[axis] = sizes[k];
      CHECK(got[k].shape == s);
      std::vector<double> want;
      for (int64_t i = 0; i < elements(s); ++i) {
        Ints idx = unravel(i, s);
        idx[axis] += offset;
        want.push_back(x[size_t(ravel(idx, shape))]);
      }
      offset += sizes[k];
      require_close(got[k].values, want, 0);
    }
  }
}

TEST_CASE("ops: Split by hand, variable outputs, and its errors", "[engine][ops]") {
  {
    Builder bld;
    const std::vector<int> outs =
        bld.nodes("Split", {bld.input("x", {2, 3})}, {{"axis", int64_t{1}}, {"split", Ints{1, 2}}}, 2);
    const std::vector<Output> got = run_all(std::move(bld.g), outs, {{1, 2, 3, 4, 5, 6}});
    CHECK(got[0].shape == Shape{2, 1});
    CHECK(got[1].shape == Shape{2, 2});
    require_close(got[0].values, {1, 4}, 0);
    require_close(got[1].values, {2, 3, 5, 6}, 0);
  }
  {  // 5 in 3 parts without split: 2, 2, 1.
    Builder bld;
    const std::vector<int> outs = bld.nodes("Split", {bld.input("x", {5})}, {}, 3);
    const std::vector<Output> got = run_all(std::move(bld.g), outs, {{1, 2, 3, 4, 5}});
    require_close(got[0].values, {1, 2}, 0);
    require_close(got[1].values, {3, 4}, 0);
    require_close(got[2].values, {5}, 0);
  }
  const Shape s = {4, 6};
  CHECK_THAT(error_of("Split", s, {{"split", Ints{2, 2}}}, 0),
             Catch::Contains("(Split): has 0 outputs, the op makes 1 or more"));
  CHECK_THAT(error_of("Split", s, {{"split", Ints{2, 2}}}, 3),
             Catch::Contains("attribute 'split' has 2 sizes for 3 outputs"));
  CHECK_THAT(error_of("Split", s, {{"split", Ints{2, 3}}}, 2),
             Catch::Contains("attribute 'split' [2, 3] sums to 5, axis 0 of [4, 6] has 4"));
  CHECK_THAT(error_of("Split", s, {{"split", Ints{5, -1}}}, 2), Catch::Contains("attribute 'split' has -1"));
  CHECK_THAT(error_of("Split", s, {{"axis", int64_t{-3}}}, 2), Catch::Contains("attribute 'axis' has -3"));
  CHECK_THAT(
      error_of("Split", s, {}, 5),
      Catch::Contains("without attribute 'split', axis 0 of [4, 6] does not split into 5 non-empty parts"));
  // Fixed-output ops still count their outputs.
  CHECK_THAT(error_of("Transpose", s, {}, 2), Catch::Contains("has 2 outputs, the op makes 1"));
}

// ---------------------------------------------------------------------------

TEST_CASE("ops: Transpose against the direct formula", "[engine][ops]") {
  Rng rng(44);
  for (int t = 0; t < 300; ++t) {
    const size_t rank = t < 10 ? 0 : rng.uniform(1, t % 5 == 0 ? 8 : 5);
    const Shape shape = rank >= 6 ? random_shape(rng, rank, 3, 0.4) : random_shape(rng, rank, t % 3 ? 6 : 40);
    Ints perm(rank);
    std::iota(perm.begin(), perm.end(), int64_t{0});
    for (size_t i = rank; i > 1; --i) std::swap(perm[i - 1], perm[rng.uniform(0, i - 1)]);
    const bool default_perm = t % 17 == 0;
    if (default_perm) std::sort(perm.rbegin(), perm.rend());  // what an absent perm means: reversed dims
    const std::vector<float> x = random_values(rng, size_t(elements(shape)));
    Builder bld;
    Attrs attrs;
    if (!default_perm) attrs["perm"] = perm;
    const int y = bld.node("Transpose", {bld.input("x", shape)}, attrs);
    Shape out(rank);
    for (size_t d = 0; d < rank; ++d) out[d] = shape[size_t(perm[d])];
    std::vector<double> want;
    for (int64_t i = 0; i < elements(out); ++i) {
      const Ints o = unravel(i, out);
      Ints in(rank);
      for (size_t d = 0; d < rank; ++d) in[size_t(perm[d])] = o[d];
      want.push_back(x[size_t(ravel(in, shape))]);
    }
    Shape got_shape;
    const std::vector<float> got = run(std::move(bld.g), y, {x}, &got_shape);
    INFO("input " << shape_text(shape) << " perm " << shape_text(perm));
    CHECK(got_shape == out);
    require_close(got, want, 0);
  }
}

TEST_CASE("ops: Transpose of an image's planes to interleaved pixels (1-4 channels)", "[engine][ops]") {
  Rng rng(45);
  for (int64_t c = 1; c <= 4; ++c)
    for (const auto& [h, w] : {std::pair<int64_t, int64_t>{1, 1}, {3, 5}, {37, 29}, {128, 96}}) {
      const Shape shape = {1, c, h, w};
      const std::vector<float> x = random_values(rng, size_t(elements(shape)));
      std::vector<double> want;
      for (int64_t p = 0; p < h * w; ++p)
        for (int64_t ch = 0; ch < c; ++ch) want.push_back(x[size_t(ch * h * w + p)]);
      Builder bld;
      const int y = bld.node("Transpose", {bld.input("x", shape)}, {{"perm", Ints{0, 2, 3, 1}}});
      Shape got_shape;
      const std::vector<float> got = run(std::move(bld.g), y, {x}, &got_shape);
      INFO("input " << shape_text(shape));
      CHECK(got_shape == Shape{1, h, w, c});
      require_close(got, want, 0);
    }
}

TEST_CASE("ops: Transpose by hand (NHWC <-> NCHW, with empty dims), and its errors", "[engine][ops]") {
  {
    Builder bld;
    const int y = bld.node("Transpose", {bld.input("x", {1, 2, 2, 3})}, {{"perm", Ints{0, 3, 1, 2}}});
    Shape shape;
    // x[0][h][w][c] = 100 h + 10 w + c.
    std::vector<float> x;
    for (int h = 0; h < 2; ++h)
      for (int w = 0; w < 2; ++w)
        for (int c = 0; c < 3; ++c) x.push_back(float(100 * h + 10 * w + c));
    require_close(run(std::move(bld.g), y, {x}, &shape), {0, 10, 100, 110, 1, 11, 101, 111, 2, 12, 102, 112},
                  0);
    CHECK(shape == Shape{1, 3, 2, 2});
  }
  {
    Builder bld;
    const int y = bld.node("Transpose", {bld.input("x", {3, 0, 2})}, {{"perm", Ints{2, 0, 1}}});
    Shape shape;
    CHECK(run(std::move(bld.g), y, {{}}, &shape).empty());
    CHECK(shape == Shape{2, 3, 0});
  }
  CHECK_THAT(
      error_of("Transpose", {2, 3, 4}, {{"perm", Ints{0, 2, 2}}}),
      Catch::Contains("attribute 'perm' [0, 2, 2] is not a permutation of 0 .. 2 for input [2, 3, 4]"));
  CHECK_THAT(error_of("Transpose", {2, 3, 4}, {{"perm", Ints{1, 0}}}),
             Catch::Contains("is not a permutation"));
  CHECK_THAT(error_of("Transpose", Shape(9, 1), {}), Catch::Contains("input 0 has rank 9, over 8"));
}

// ---------------------------------------------------------------------------

TEST_CASE("ops: Slice against the direct formula", "[engine][ops]") {
  Rng rng(45);
  for (int t = 0; t < 300; ++t) {
    const size_t rank = rng.uniform(1, 4);
    Shape shape = random_shape(rng, rank, t % 4 ? 7 : 30, 0.15);
    if (rng.coin(0.05)) shape[rng.uniform(0, rank - 1)] = 0;
    const int64_t r = int64_t(rank);
    // A random subset of axes in random order, or all axes without the attribute.
    Ints axes(rank);
    std::iota(axes.begin(), axes.end(), int64_t{0});
    const bool all_axes = t % 5 == 0;  // without the attribute: 0 .. rank-1 in order
    if (!all_axes) {
      for (size_t i = rank; i > 1; --i) std::swap(axes[i - 1], axes[rng.uniform(0, i - 1)]);
      axes.resize(rng.uniform(1, rank));
    }
    Ints starts, ends, steps, axes_attr;
    for (int64_t a : axes) {
      const int64_t len = shape[size_t(a)];
      auto pick = [&](int64_t big) { return rng.coin(0.1) ? big : uniform(rng, -len - 3, len + 3); };
      starts.push_back(pick(kMin64));
      ends.push_back(pick(kMax64));
      steps.push_back(rng.coin(0.5) ? 1 : uniform(rng, 2, 4));
      axes_attr.push_back(rng.coin(0.3) ? a - r : a);
    }
    Attrs attrs = {{"starts", starts}, {"ends", ends}};
    if (!all_axes) attrs["axes"] = axes_attr;
    const bool unit_steps = std::all_of(steps.begin(), steps.end(), [](int64_t s) { return s == 1; });
    if (!unit_steps || rng.coin(0.3)) attrs["steps"] = steps;
    // The reference: ONNX's clamping per sliced axis.
    Shape out = shape;
    Ints first(rank, 0), stride(rank, 1);
    for (size_t i = 0; i < axes.size(); ++i) {
      const size_t a = size_t(axes[i]);
      const int64_t len = shape[a];
      const int64_t s = std::min(std::max(starts[i] < 0 ? starts[i] + len : starts[i], int64_t{0}), len);
      const int64_t e = std::min(std::max(ends[i] < 0 ? ends[i] + len : ends[i], int64_t{0}), len);
      first[a] = s;
      stride[a] = steps[i];
      int64_t count = 0;
      for (int64_t k = s; k < e; k += steps[i]) ++count;
      out[a] = count;
    }
    std::vector<double> want;
    const std::vector<float> x = random_values(rng, size_t(elements(shape)));
    for (int64_t i = 0; i < elements(out); ++i) {
      Ints idx = unravel(i, out);
      for (size_t d = 0; d < rank; ++d) idx[d] = first[d] + idx[d] * stride[d];
      want.push_back(x[size_t(ravel(idx, shape))]);
    }
    Builder bld;
    const int y = bld.node("Slice", {bld.input("x", shape)}, attrs);
    Shape got_shape;
    const std::vector<float> got = run(std::move(bld.g), y, {x}, &got_shape);
    INFO("input " << shape_text(shape) << " starts " << shape_text(starts) << " ends " << shape_text(ends)
                  << " axes " << shape_text(axes_attr) << " steps " << shape_text(steps));
    CHECK(got_shape == out);
    require_close(got, want, 0);
  }
}

TEST_CASE("ops: Slice by hand, and its errors", "[engine][ops]") {
  const std::vector<float> x = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  struct Case {
    Ints starts, ends, steps;
    std::vector<double> want;
  };
  for (const Case& c : {Case{{2}, {kMax64}, {1}, {2, 3, 4, 5, 6, 7, 8, 9}}, Case{{-3}, {-1}, {1}, {7, 8}},
                        Case{{1}, {1000}, {3}, {1, 4, 7}}, Case{{-100}, {2}, {1}, {0, 1}},
                        Case{{5}, {2}, {1}, {}}, Case{{kMin64}, {kMax64}, {4}, {0, 4, 8}}}) {
    Builder bld;
    const int y = bld.node("Slice", {bld.input("x", {10})},
                           {{"starts", c.starts}, {"ends", c.ends}, {"axes", Ints{0}}, {"steps", c.steps}});
    INFO("starts " << c.starts[0] << " ends " << c.ends[0] << " step " << c.steps[0]);
    require_close(run(std::move(bld.g), y, {x}), c.want, 0);
  }
  {  // A 2x5 block: the last column of each row, then rows from the second.
    Builder bld;
    const int y = bld.node("Slice", {bld.input("x", {2, 5})},
                           {{"starts", Ints{-1, 1}}, {"ends", Ints{kMax64, 2}}, {"axes", Ints{-1, 0}}});
    Shape shape;
    require_close(run(std::move(bld.g), y, {x}, &shape), {9}, 0);
    CHECK(shape == Shape{1, 1});
  }
  const Shape s = {4, 6};
  CHECK_THAT(error_of("Slice", s, {{"ends", Ints{1}}}), Catch::Contains("attribute 'starts' is missing"));
  CHECK_THAT(error_of("Slice", s, {{"starts", Ints{1}}}), Catch::Contains("attribute 'ends' is missing"));
  CHECK_THAT(error_of("Slice", s, {{"starts", Ints{1}}, {"ends", Ints{2, 3}}}),
             Catch::Contains("attribute 'ends' has 2 values, 'starts' has 1"));
  CHECK_THAT(error_of("Slice", s, {{"starts", Ints{1}}, {"ends", Ints{2}}, {"axes", Ints{0, 1}}}),
             Catch::Contains("attribute 'axes' has 2 values, 'starts' has 1"));
  CHECK_THAT(error_of("Slice", s, {{"starts", Ints{1}}, {"ends", Ints{2}}, {"steps", Ints{1, 1}}}),
             Catch::Contains("attribute 'steps' has 2 values, 'starts' has 1"));
  CHECK_THAT(error_of("Slice", s, {{"starts", Ints{1}}, {"ends", Ints{2}}, {"axes", Ints{2}}}),
             Catch::Contains("attribute 'axes' has 2, outside [-2, 1] for rank 2"));
  CHECK_THAT(error_of("Slice", s, {{"starts", Ints{1, 1}}, {"ends", Ints{2, 2}}, {"axes", Ints{1, -1}}}),
             Catch::Contains("attribute 'axes' [1, -1] names axis 1 twice"));
  CHECK_THAT(
      error_of("Slice", s, {{"starts", Ints{3}}, {"ends", Ints{0}}, {"steps", Ints{-1}}}),
      Catch::Contains("attribute 'steps' has -1: only steps >= 1 are supported (no negative or zero steps)"));
}

// ---------------------------------------------------------------------------

TEST_CASE("ops: Pad against the direct formula", "[engine][ops]") {
  Rng rng(46);
  for (int t = 0; t < 300; ++t) {
    const std::string mode = rng.pick<std::string>({"constant", "reflect", "edge"});
    const size_t rank = t < 5 ? 0 : rng.uniform(1, 4);
    Shape shape = random_shape(rng, rank, 6);
    if (mode == "constant" && rng.coin(0.1) && rank > 0) shape[rng.uniform(0, rank - 1)] = 0;
    Ints pads(2 * rank);
    for (size_t d = 0; d < rank; ++d) {
      const int64_t limit = mode == "reflect" ? shape[d] - 1 : 4;
      pads[d] = rng.coin(0.3) ? 0 : uniform(rng, 0, limit);
      pads[rank + d] = rng.coin(0.3) ? 0 : uniform(rng, 0, limit);
    }
    const float value = rng.normal();
    Shape out(rank);
    for (size_t d = 0; d < rank; ++d) out[d] = shape[d] + pads[d] + pads[rank + d];
    const std::vector<float> x = random_values(rng, size_t(elements(shape)));
    std::vector<double> want;
    for (int64_t i = 0; i < elements(out); ++i) {
      const int64_t at = pad_source(unravel(i, out), pads, shape, mode);
      want.push_back(at < 0 ? double(value) : double(x[size_t(at)]));
    }
    Builder bld;
    Attrs attrs = {{"pads", pads}, {"value", value}};
    if (mode != "constant" || rng.coin(0.5)) attrs["mode"] = mode;
    const int y = bld.node("Pad", {bld.input("x", shape)}, attrs);
    Shape got_shape;
    const std::vector<float> got = run(std::move(bld.g), y, {x}, &got_shape);
    INFO(mode << " input " << shape_text(shape) << " pads " << shape_text(pads));
    CHECK(got_shape == out);
    require_close(got, want, 0);
  }
}

TEST_CASE("ops: Pad by hand, and its errors", "[engine][ops]") {
  struct Case {
    const char* mode;
    std::vector<double> want;
  };
  for (const Case& c : {Case{"reflect", {3, 2, 1, 2, 3, 2, 1}}, Case{"edge", {1, 1, 1, 2, 3, 3, 3}},
                        Case{"constant", {9, 9, 1, 2, 3, 9, 9}}}) {
    Builder bld;
    const int y = bld.node("Pad", {bld.input("x", {3})},
                           {{"pads", Ints{2, 2}}, {"mode", std::string(c.mode)}, {"value", 9.0f}});
    INFO(c.mode);
    require_close(run(std::move(bld.g), y, {{1, 2, 3}}), c.want, 0);
  }
  {  // 2x2, one row on top and one column on the right, zeros by default.
    Builder bld;
    const int y = bld.node("Pad", {bld.input("x", {2, 2})}, {{"pads", Ints{1, 0, 0, 1}}});
    Shape shape;
    require_close(run(std::move(bld.g), y, {{1, 2, 3, 4}}, &shape), {0, 0, 0, 1, 2, 0, 3, 4, 0}, 0);
    CHECK(shape == Shape{3, 3});
  }
  {  // An empty input padded with a constant.
    Builder bld;
    const int y = bld.node("Pad", {bld.input("x", {0, 2})}, {{"pads", Ints{1, 0, 1, 0}}, {"value", 5.0f}});
    require_close(run(std::move(bld.g), y, {{}}), {5, 5, 5, 5}, 0);
  }
  const Shape s = {2, 3};
  CHECK_THAT(error_of("Pad", s, {}), Catch::Contains("attribute 'pads' is missing"));
  CHECK_THAT(error_of("Pad", s, {{"pads", Ints{1, 1}}}),
             Catch::Contains("attribute 'pads' needs 4 values, has 2"));
  CHECK_THAT(error_of("Pad", s, {{"pads", Ints{0, -1, 0, 0}}}),
             Catch::Contains("attribute 'pads' has -1, below 0"));
  CHECK_THAT(error_of("Pad", s, {{"pads", Ints{0, 1, 0, 0}}, {"mode", std::string("wrap")}}),
             Catch::Contains("attribute 'mode' has 'wrap' (constant, reflect, edge)"));
  CHECK_THAT(
      error_of("Pad", s, {{"pads", Ints{0, 0, 2, 0}}, {"mode", std::string("reflect")}}),
      Catch::Contains("mode 'reflect' needs pads below the axis length: axis 0 of [2, 3] has pads 0, 2"));
  CHECK_THAT(error_of("Pad", {0, 3}, {{"pads", Ints{1, 0, 0, 0}}, {"mode", std::string("edge")}}),
             Catch::Contains("mode 'edge' cannot pad the empty axis 0 of [0, 3]"));
}

// ---------------------------------------------------------------------------

namespace {

// ONNX's source coordinate of output coordinate o (scale = out / in).
double onnx_coordinate(const std::string& ctm, int64_t o, int64_t in, int64_t out) {
  const double scale = double(out) / double(in);
  if (ctm == "half_pixel") return (double(o) + 0.5) / scale - 0.5;
  if (ctm == "asymmetric") return double(o) / scale;
  return out == 1 ? 0.0 : double(o) * double(in - 1) / double(out - 1);  // align_corners
}

// (index, weight) pairs one output coordinate reads along an axis of length n.
std::vector<std::pair<int64_t, double>> onnx_taps(const std::string& mode, const std::string& nearest_mode,
                                                  double x, int64_t n) {
  auto clamp = [n](int64_t i) { return std::min(std::max(i, int64_t{0}), n - 1); };
  const double x0 = std::floor(x), ratio = x - x0;
  if (mode == "nearest") {
    const bool up = nearest_mode == "round_prefer_floor" && ratio > 0.5;
    return {{clamp(int64_t(x0) + up), 1.0}};
  }
  return {{clamp(int64_t(x0)), 1.0 - ratio}, {clamp(int64_t(x0) + 1), ratio}};
}

}  // namespace

TEST_CASE("ops: Resize against ONNX's formulas", "[engine][ops]") {
  Rng rng(47);
  for (int t = 0; t < 300; ++t) {
    const std::string mode = t % 2 ? "nearest" : "linear";
    const std::string ctm = mode == "nearest" ? rng.pick<std::string>({"half_pixel", "asymmetric"})
                                              : rng.pick<std::string>({"half_pixel", "align_corners"});
    const std::string nearest_mode = rng.pick<std::string>({"round_prefer_floor", "floor"});
    const int64_t n = rng.coin(0.2) ? 2 : 1, h = uniform(rng, 1, 7), w = uniform(rng, 1, 7),
                  c = rng.coin(0.05) ? 0 : uniform(rng, 1, 5);
    auto out_len = [&](int64_t len) {
      return rng.coin(0.5) ? len * uniform(rng, 1, 3) : uniform(rng, 1, 12);  // integer factors or any size
    };
    const int64_t oh = out_len(h), ow = out_len(w);
    Attrs attrs = {{"size", Ints{oh, ow}}};
    if (mode != "nearest" || rng.coin(0.5)) attrs["mode"] = mode;
    if (ctm != "half_pixel" || rng.coin(0.5)) attrs["coordinate_transformation_mode"] = ctm;
    if (nearest_mode != "round_prefer_floor" || rng.coin(0.5)) attrs["nearest_mode"] = nearest_mode;
    const std::vector<float> x = random_values(rng, size_t(n * h * w * c));
    std::vector<double> want;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          const auto ty = onnx_taps(mode, nearest_mode, onnx_coordinate(ctm, oy, h, oh), h);
          const auto tx = onnx_taps(mode, nearest_mode, onnx_coordinate(ctm, ox, w, ow), w);
          for (int64_t ch = 0; ch < c; ++ch) {
            double acc = 0;
            for (const auto& [iy, wy] : ty)
              for (const auto& [ix, wx] : tx) acc += wy * wx * x[size_t(((b * h + iy) * w + ix) * c + ch)];
            want.push_back(acc);
          }
        }
    Builder bld;
    const int y = bld.node("Resize", {bld.input("x", {n, h, w, c})}, attrs);
    Shape shape;
    const std::vector<float> got = run(std::move(bld.g), y, {x}, &shape);
    INFO(mode << " " << ctm << " " << nearest_mode << " input " << shape_text({n, h, w, c}) << " size " << oh
              << "x" << ow);
    CHECK(shape == Shape{n, oh, ow, c});
    require_close(got, want, 1e-5);
  }
}

TEST_CASE("ops: Resize by hand, and its errors", "[engine][ops]") {
  auto resize = [](Shape shape, const std::vector<float>& x, Attrs attrs) {
    Builder bld;
    const int y = bld.node("Resize", {bld.input("x", shape)}, attrs);
    return run(std::move(bld.g), y, {x});
  };
  const std::string a = "asymmetric", hp = "half_pixel", ac = "align_corners";
  auto text = [](const char* s) { return AttrValue(std::string(s)); };
  // Nearest, asymmetric, 2x up: each pixel becomes a 2x2 block.
  require_close(
      resize({1, 2, 2, 1}, {1, 2, 3, 4},
             {{"size", Ints{4, 4}}, {"coordinate_transformation_mode", a}, {"nearest_mode", text("floor")}}),
      {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4}, 0);
  // Nearest, asymmetric, 3 -> 2: x = 0, 1.5; round_prefer_floor takes 1 at the tie.
  require_close(
      resize({1, 1, 3, 1}, {10, 20, 30}, {{"size", Ints{1, 2}}, {"coordinate_transformation_mode", a}}),
      {10, 20}, 0);
  // Nearest, half_pixel, 4 -> 2: x = 0.5, 2.5 (ties: floor).
  require_close(resize({1, 1, 4, 1}, {10, 20, 30, 40}, {{"size", Ints{1, 2}}}), {10, 30}, 0);
  // Nearest, half_pixel, 2 -> 3: x = -0.1667, 0.5, 1.1667 -> 0, 0 (tie: floor), 1.
  require_close(resize({1, 1, 2, 1}, {10, 20}, {{"size", Ints{1, 3}}}), {10, 10, 20}, 0);
  // Linear, align_corners, 2 -> 3.
  require_close(
      resize({1, 1, 2, 1}, {0, 10},
             {{"size", Ints{1, 3}}, {"mode", text("linear")}, {"coordinate_transformation_mode", ac}}),
      {0, 5, 10}, 1e-6);
  // Linear, half_pixel, 2 -> 4: x = -0.25, 0.25, 0.75, 1.25 (edges clamp).
  require_close(resize({1, 1, 2, 1}, {0, 10}, {{"size", Ints{1, 4}}, {"mode", text("linear")}}),
                {0, 2.5, 7.5, 10}, 1e-6);
  // Bilinear, align_corners, 2x2 -> 3x3: corners kept, centre the mean.
  require_close(
      resize({1, 2, 2, 2}, {0, 1, 10, 1, 20, 1, 30, 1},
             {{"size", Ints{3, 3}}, {"mode", text("linear")}, {"coordinate_transformation_mode", ac}}),
      {0, 1, 5, 1, 10, 1, 10, 1, 15, 1, 20, 1, 20, 1, 25, 1, 30, 1}, 1e-6);

  const Shape s = {1, 2, 2, 1};
  CHECK_THAT(error_of("Resize", s, {}), Catch::Contains("attribute 'size' is missing"));
  CHECK_THAT(error_of("Resize", s, {{"size", Ints{0, 2}}}),
             Catch::Contains("attribute 'size' has 0, below 1"));
  CHECK_THAT(error_of("Resize", s, {{"size", Ints{4, 4}}, {"mode", text("cubic")}}),
             Catch::Contains("attribute 'mode' has 'cubic' (nearest, linear)"));
  CHECK_THAT(
      error_of("Resize", s,
               {{"size", Ints{4, 4}}, {"coordinate_transformation_mode", text("tf_crop_and_resize")}}),
      Catch::Contains("attribute 'coordinate_transformation_mode' has 'tf_crop_and_resize' (half_pixel, "
                      "pytorch_half_pixel, tf_half_pixel_for_nn, asymmetric, align_corners)"));
  CHECK_THAT(error_of("Resize", s, {{"size", Ints{4, 4}}, {"nearest_mode", text("nearest")}}),
             Catch::Contains("attribute 'nearest_mode' has 'nearest' (round_prefer_floor, round_prefer_ceil, "
                             "floor, ceil)"));
  CHECK_THAT(error_of("Resize", s, {{"size", Ints{4, 4}}, {"scales", std::vector<float>{2.0f, 0.0f}}}),
             Catch::Contains("attribute 'scales' needs 2 values above 0"));
  CHECK_THAT(error_of("Resize", s, {{"size", Ints{4, 4}}, {"antialias", int64_t{1}}}),
             Catch::Contains("attribute 'antialias' is not supported"));
  CHECK_THAT(error_of("Resize", {1, 0, 2, 1}, {{"size", Ints{4, 4}}}), Catch::Contains("has no pixels"));
}

TEST_CASE("ops: ReduceMean, Sub and Div against the direct formula", "[engine][ops]") {
  Rng rng(57);
  for (int t = 0; t < 120; ++t) {
    const int64_t rank = uniform(rng, 1, 4);
    Shape shape;
    for (int64_t k = 0; k < rank; ++k) shape.push_back(uniform(rng, 1, 5));
    Ints axes;
    std::vector<bool> reduced(static_cast<size_t>(rank), false);
    for (int64_t k = 0; k < rank; ++k)
      if (rng.coin(0.5)) axes.push_back(rng.coin(0.5) ? k : k - rank), reduced[static_cast<size_t>(k)] = true;
    if (axes.empty()) axes.push_back(0), reduced[0] = true;
    const int64_t keep = uniform(rng, 0, 1);
    Builder bld;
    const int y = bld.node("ReduceMean", {bld.input("x", shape)}, {{"axes", axes}, {"keepdims", keep}});
    const auto x = random_values(rng, static_cast<size_t>(elements(shape)));
    Shape got_shape;
    const auto got = run(std::move(bld.g), y, {x}, &got_shape);
    // The direct formula: each output element is the mean of the input elements mapping to it.
    Shape want_shape, out_dims;
    for (size_t k = 0; k < shape.size(); ++k) {
      if (!reduced[k])
        want_shape.push_back(shape[k]), out_dims.push_back(shape[k]);
      else if (keep)
        want_shape.push_back(1);
    }
    CHECK(got_shape == want_shape);
    std::vector<double> sum(static_cast<size_t>(elements(out_dims)), 0.0);
    std::vector<int> count(sum.size(), 0);
    for (size_t e = 0; e < x.size(); ++e) {
      size_t rest = e, out = 0, scale = 1;
      for (size_t k = shape.size(); k-- > 0;) {
        const size_t i = rest % static_cast<size_t>(shape[k]);
        rest /= static_cast<size_t>(shape[k]);
        if (!reduced[k]) out += i * scale, scale *= static_cast<size_t>(shape[k]);
      }
      sum[out] += x[e], ++count[out];
    }
    for (size_t k = 0; k < sum.size(); ++k) sum[k] /= count[k];
    require_close(got, sum, 1e-5);
  }
  {
    Builder bld;
    const int y = bld.node("Sub", {bld.input("a", {2, 2}), bld.constant("b", {2}, {1, -1})});
    const int z = bld.node("Div", {y, bld.constant("c", {2, 1}, {2, -4})});
    CHECK(run(std::move(bld.g), z, {{3, 1, 0, -3}}) == std::vector<float>{1, 1, 0.25f, 0.5f});
  }
  {
    Builder bld;
    bld.node("ReduceMean", {bld.input("x", {2, 3})}, {{"axes", Ints{2}}});
    CHECK_THROWS_WITH(Interpreter(std::move(bld.g)), Catch::Contains("axis 2 is outside rank 2"));
  }
  {
    Builder bld;
    bld.node("ReduceMean", {bld.input("x", {2, 3})}, {{"axes", Ints{1, -1}}});
    CHECK_THROWS_WITH(Interpreter(std::move(bld.g)), Catch::Contains("axis -1 is given twice"));
  }
}

TEST_CASE(
    "interpreter: the elementwise, pooling, resize, data movement and convolution ops give the same bits on "
    "1, 2 "
    "and 3 threads",
    "[engine][interpreter][threads]") {
  Rng rng(36);
  const int64_t c = 128;
  auto make = [&](Rng& r) {
    Builder bld;
    const int x = bld.input("x", {1, 48, 48, c});  // 294912 floats: a few chunks of the flat range
    int t = bld.node("Sigmoid", {x});
    t = bld.node("Mul", {x, t});  // swish
    t = bld.node("HardSwish", {t});
    t = bld.node("LeakyRelu", {t}, {{"alpha", 0.1f}});
    int u = bld.node("HardSigmoid", {t});
    u = bld.node("Add", {u, bld.constant("bias", {c}, random_values(r, size_t(c)))});  // broadcast rows
    u = bld.node("Clip", {u}, {{"min", 0.25f}, {"max", 0.75f}});
    u = bld.node("Relu", {bld.node("Add", {u, t})});
    u = bld.node("Conv2D", {u, bld.constant("pw", {c, 1, 1, c}, random_values(r, size_t(c * c)))},
                 {{"activation", std::string("relu")}});  // dense: output pixels split
    const int se = bld.node("GlobalAveragePool", {u});
    u = bld.node("Mul", {u, se});  // squeeze-and-excitation style broadcast
    u = bld.node("Conv2D", {u, bld.constant("dw3", {c, 3, 3, 1}, random_values(r, size_t(c * 9)))},
                 {{"group", c}, {"pads", Ints{1, 1, 1, 1}}, {"activation", std::string("relu6")}});
    int q = bld.node("Transpose", {u}, {{"perm", Ints{0, 3, 1, 2}}});  // tiled
    q = bld.node("Transpose", {q}, {{"perm", Ints{0, 2, 3, 1}}});
    q = bld.node("Reshape", {q}, {{"shape", Ints{1, 48, 48, 2, c / 2}}});  // channel shuffle: row copies
    q = bld.node("Transpose", {q}, {{"perm", Ints{0, 1, 2, 4, 3}}});
    q = bld.node("Reshape", {q}, {{"shape", Ints{1, 48, 48, c}}});
    u = bld.node("Conv2D", {q, bld.constant("dw5", {c, 5, 5, 1}, random_values(r, size_t(c * 25)))},
                 {{"group", c}, {"pads", Ints{2, 2, 2, 2}}, {"strides", Ints{2, 2}}});
    int p = bld.node("MaxPool2D", {u},
                     {{"kernel", Ints{3, 3}}, {"strides", Ints{1, 1}}, {"pads", Ints{1, 1, 1, 1}}});
    p = bld.node("AveragePool2D", {p},
                 {{"kernel", Ints{3, 3}}, {"strides", Ints{1, 1}}, {"pads", Ints{1, 1, 1, 1}}});
    q = bld.node("Concat", {p, u, bld.node("Relu", {p})}, {{"axis", int64_t{3}}});
    const int l = bld.node("Resize", {q}, {{"size", Ints{25, 21}}, {"mode", std::string("linear")}});
    const int n = bld.node("Resize", {q}, {{"size", Ints{24, 20}}});
    bld.g.outputs = {l, n, se};
    return std::move(bld.g);
  };
  const std::vector<float> x = random_values(rng, size_t(48 * 48 * c));
  std::vector<std::vector<uint8_t>> results;
  for (size_t threads : {1, 2, 3}) {
    Rng weights(98);
    Interpreter it(make(weights), InterpreterOptions{threads});
    std::memcpy(it.input_data(0), x.data(), x.size() * sizeof(float));
    it.run();
    std::vector<uint8_t> bytes;
    for (size_t o = 0; o < 3; ++o) {
      const auto* y = static_cast<const uint8_t*>(it.output_data(o));
      bytes.insert(bytes.end(), y, y + elements(it.output(o).shape) * sizeof(float));
    }
    results.push_back(std::move(bytes));
  }
  CHECK(results[1] == results[0]);
  CHECK(results[2] == results[0]);
}
