// The int8 forms of the elementwise, activation, pooling, Concat and data
// movement ops (engine/INT8.md): each against a direct formula written here
// in double precision on the inputs' real values and quantised to the
// output's parameters (within one quantisation step; exact where the op only
// moves bytes or keeps its input's quantisation), on random shapes with
// size-1 dims, broadcasting, channel counts off the vector widths and batches
// above 1; a mixed graph gives the same bits on 1, 2 and 3 threads; each
// preparation error once.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>

#include "engine/interpreter.h"
#include "tests/engine/builder.h"

using namespace huddle::engine;
using namespace huddle::test;
using namespace huddle::test::op_tests;

namespace {

using Q = std::vector<int8_t>;

// An int8 tensor with its quantisation.
struct QTensor {
  Shape shape;
  Quant quant;
  Q q;
  double real(size_t i) const { return double(quant.scale[0]) * (int32_t{q[i]} - quant.zero_point[0]); }
};

// A quantisation with scale about `typical` (within a factor of 2) and a zero point mostly near 0.
Quant random_quant(Rng& rng, double typical = 0.03) {
  const double scale = typical * std::pow(2.0, double(uniform(rng, -1000, 1000)) / 1000.0);
  const int32_t zero_point = int32_t(rng.coin(0.2) ? uniform(rng, -128, 127) : uniform(rng, -40, 40));
  return per_tensor(float(scale), zero_point);
}

QTensor random_tensor(Rng& rng, Shape shape, Quant quant) {
  Q q(size_t(elements(shape)));
  for (int8_t& v : q) v = int8_t(uniform(rng, -128, 127));
  return {std::move(shape), std::move(quant), std::move(q)};
}

// v quantised as `quant`: round half to even, saturated.
int8_t quantise(double v, const Quant& quant) {
  const double q = std::nearbyint(v / double(quant.scale[0])) + quant.zero_point[0];
  return int8_t(std::clamp(q, -128.0, 127.0));
}

// The values of q as ints (readable in a failure message).
std::vector<int> ints(const Q& q) { return {q.begin(), q.end()}; }

// Every element of got within one quantisation step of want (real values) quantised as `quant`.
void require_within_step(const Q& got, const std::vector<double>& want, const Quant& quant) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << " want " << want[i] << " = " << int(quantise(want[i], quant)) << ", got "
                    << int(got[i]));
    REQUIRE(std::abs(int(got[i]) - int(quantise(want[i], quant))) <= 1);
  }
}

// Graph inputs for `ins` in `bld`, with their values for run().
std::vector<int> add_inputs(Builder& bld, const std::vector<QTensor>& ins, std::vector<Q>* values) {
  std::vector<int> ids;
  for (size_t i = 0; i < ins.size(); ++i) {
    ids.push_back(bld.input(input_name(i), ins[i].shape, ins[i].quant));
    values->push_back(ins[i].q);
  }
  return ids;
}

// Output 0 of a one-node graph of `op` on `ins`, its output quantised as `y_quant`.
Q run_op(const std::string& op, const std::vector<QTensor>& ins, const Attrs& attrs, const Quant& y_quant,
         Shape* shape = nullptr) {
  Builder bld;
  std::vector<Q> values;
  const int y = bld.node(op, add_inputs(bld, ins, &values), attrs);
  bld.quantise(y, y_quant);
  return run<int8_t>(std::move(bld.g), y, values, shape);
}

// The error of preparing `op` on one i8 input of `shape` quantised as `x_quant`, its outputs as `y_quant`.
std::string qerror_of(const std::string& op, const Shape& shape, const Attrs& attrs, const Quant& x_quant,
                      const Quant& y_quant, size_t outputs = 1) {
  Builder bld;
  for (int y : bld.nodes(op, {bld.input("x", shape, x_quant)}, attrs, outputs)) bld.quantise(y, y_quant);
  return prepare_error(bld);
}

// A channel count: small, just around the vector widths, or larger.
int64_t random_channels(Rng& rng) {
  if (rng.coin(0.3)) return rng.pick<int64_t>({15, 17, 31, 33, 63, 65, 127, 129});
  return uniform(rng, 1, rng.coin(0.5) ? 8 : 70);
}

}  // namespace

// ---------------------------------------------------------------------------

TEST_CASE("qops: Add, Sub and Mul against the direct formula", "[engine][qops]") {
  Rng rng(51);
  enum Form { same, b_vector, a_vector, scalar, general };
  int forms[5] = {};
  for (int t = 0; t < 400; ++t) {
    const std::string op = rng.pick<std::string>({"Add", "Sub", "Mul"});
    const Form form = Form(t % 5);
    const size_t rank = rng.uniform(form == scalar ? 0 : 1, 4);
    Shape out = random_shape(rng, rank, 6);
    if (rank > 0) out.back() = random_channels(rng);
    if (rank > 1 && rng.coin(0.3)) out[0] = uniform(rng, 2, 3);
    Shape sa = out, sb = out;
    if (form == b_vector || form == a_vector) {
      Shape& v = form == b_vector ? sb : sa;
      v = rng.coin(0.5) ? Shape{out.back()} : Shape(rank, 1);
      v.back() = out.back();
    } else if (form == scalar) {
      (rng.coin(0.5) ? sa : sb) = rng.pick<Shape>({{}, {1}, {1, 1}});
    } else if (form == general) {
      for (size_t d = 0; d < rank; ++d) (rng.coin(0.5) ? sa : sb)[d] = 1;
      if (rng.coin(0.3)) sb.erase(sb.begin());
    }
    const Quant qa = random_quant(rng), qb = random_quant(rng);
    const double typical = op == "Mul" ? double(qa.scale[0]) * qb.scale[0] * 60 : 0.05;
    const Quant qy = random_quant(rng, typical);
    const QTensor a = random_tensor(rng, sa, qa), b = random_tensor(rng, sb, qb);
    // The broadcast output shape, and each output element's operands.
    const size_t out_rank = std::max(sa.size(), sb.size());
    Shape bshape(out_rank, 1);
    for (size_t i = 0; i < out_rank; ++i) {
      const int64_t da = i < sa.size() ? sa[sa.size() - 1 - i] : 1,
                    db = i < sb.size() ? sb[sb.size() - 1 - i] : 1;
      bshape[out_rank - 1 - i] = std::max(da, db);
    }
    auto operand = [&](const Ints& idx, const Shape& s) {
      Ints i(s.size());
      for (size_t d = 0; d < s.size(); ++d) i[d] = s[d] == 1 ? 0 : idx[out_rank - s.size() + d];
      return size_t(ravel(i, s));
    };
    std::vector<double> want;
    for (int64_t i = 0; i < elements(bshape); ++i) {
      const Ints idx = unravel(i, bshape);
      const double x = a.real(operand(idx, sa)), y = b.real(operand(idx, sb));
      want.push_back(op == "Add" ? x + y : op == "Sub" ? x - y : x * y);
    }
    Builder bld;
    std::vector<Q> values;
    std::vector<int> ins = add_inputs(bld, {a}, &values);
    // B sometimes a constant (a bias), else a graph input.
    ins.push_back(rng.coin(0.3) ? bld.constant("b", b.shape, b.q, b.quant)
                                : add_inputs(bld, {b}, &values)[0]);
    const int y = bld.node(op, ins);
    bld.quantise(y, qy);
    Shape shape;
    const Q got = run<int8_t>(std::move(bld.g), y, values, &shape);
    INFO(op << " form " << form << " a " << shape_text(sa) << " b " << shape_text(sb));
    CHECK(shape == bshape);
    require_within_step(got, want, qy);
    ++forms[form];
  }
  for (int f : forms) CHECK(f > 50);
}

// ---------------------------------------------------------------------------

namespace {

double sigmoid(double v) { return 1.0 / (1.0 + std::exp(-v)); }

// The real function of a unary op with its attributes.
std::function<double(double)> unary_formula(const std::string& op, const Attrs& attrs) {
  auto attr = [&](const char* name, float fallback) {
    return attrs.count(name) ? double(std::get<float>(attrs.at(name))) : double(fallback);
  };
  if (op == "Relu") return [](double v) { return std::max(v, 0.0); };
  if (op == "Clip") {
    const double lo = attr("min", -INFINITY), hi = attr("max", INFINITY);
    return [=](double v) { return std::clamp(v, lo, hi); };
  }
  if (op == "Sigmoid") return sigmoid;
  if (op == "HardSigmoid") {
    const double alpha = attr("alpha", 0.2f), beta = attr("beta", 0.5f);
    return [=](double v) { return std::clamp(alpha * v + beta, 0.0, 1.0); };
  }
  if (op == "HardSwish") return [](double v) { return v * std::clamp(v + 3.0, 0.0, 6.0) / 6.0; };
  if (op == "LeakyRelu") {
    const double alpha = attr("alpha", 0.01f);
    return [=](double v) { return v < 0 ? alpha * v : v; };
  }
  return [](double v) { return v * sigmoid(v); };  // Silu
}

}  // namespace

TEST_CASE("qops: the table activations against their fp32 formulas", "[engine][qops]") {
  Rng rng(52);
  for (int t = 0; t < 240; ++t) {
    const std::string op =
        rng.pick<std::string>({"Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Silu", "LeakyRelu"});
    Attrs attrs;
    if (op == "Clip" && rng.coin(0.8))
      attrs = {{"min", -std::abs(rng.normal())}, {"max", 0.5f + std::abs(rng.normal())}};
    if (op == "HardSigmoid" && rng.coin(0.5))
      attrs = {{"alpha", 0.1f + rng.normal() * 0.05f}, {"beta", 0.5f + rng.normal() * 0.1f}};
    if (op == "LeakyRelu" && rng.coin(0.7)) attrs = {{"alpha", rng.pick<float>({0.1f, 0.2f, -0.5f, 1.5f})}};
    const Shape shape = random_shape(rng, rng.uniform(1, 4), 7);
    const Quant qx = random_quant(rng, rng.coin(0.5) ? 0.03 : 0.1);
    const Quant qy =
        rng.coin(0.2) ? qx : random_quant(rng, op == "Sigmoid" || op == "HardSigmoid" ? 0.004 : 0.05);
    QTensor x = random_tensor(rng, shape, qx);
    const auto fn = unary_formula(op, attrs);
    // Half the time after an exact Relu (Y quantised as X: q -> max(q, zero point)), so the op may run in
    // place.
    const bool chained = t % 2 == 1;
    Builder bld;
    std::vector<Q> values;
    int in = add_inputs(bld, {x}, &values)[0];
    if (chained) {
      in = bld.node("Relu", {in});
      bld.quantise(in, qx);
      for (int8_t& q : x.q) q = int8_t(std::max<int32_t>(q, qx.zero_point[0]));
    }
    const int y = bld.node(op, {in}, attrs);
    bld.quantise(y, qy);
    std::vector<double> want;
    for (size_t i = 0; i < x.q.size(); ++i) want.push_back(fn(x.real(i)));
    INFO(op << " input " << shape_text(shape) << " chained " << chained);
    require_within_step(run<int8_t>(std::move(bld.g), y, values), want, qy);
  }
}

// ---------------------------------------------------------------------------

TEST_CASE("qops: MaxPool2D and AveragePool2D against the direct formula", "[engine][qops]") {
  Rng rng(53);
  int checked = 0;
  for (int t = 0; t < 300; ++t) {
    const bool max = t % 2 == 0;
    const int64_t n = uniform(rng, 1, 3), h = uniform(rng, 1, 9), w = uniform(rng, 1, 9),
                  c = random_channels(rng);
    const Ints kernel = {uniform(rng, 1, 4), uniform(rng, 1, 4)};
    const Ints strides = {uniform(rng, 1, 3), uniform(rng, 1, 3)};
    const Ints pads = {uniform(rng, 0, kernel[0] - 1), uniform(rng, 0, kernel[1] - 1),
                       uniform(rng, 0, kernel[0] - 1), uniform(rng, 0, kernel[1] - 1)};
    const int64_t include_pad = max ? 0 : uniform(rng, 0, 1);
    const int64_t span_h = h + pads[0] + pads[2], span_w = w + pads[1] + pads[3];
    if (span_h < kernel[0] || span_w < kernel[1]) continue;
    const int64_t oh = (span_h - kernel[0]) / strides[0] + 1, ow = (span_w - kernel[1]) / strides[1] + 1;
    if ((oh - 1) * strides[0] >= h + pads[0] || (ow - 1) * strides[1] >= w + pads[1]) continue;  // refused
    const QTensor x = random_tensor(rng, {n, h, w, c}, random_quant(rng));
    const Quant qy = max ? x.quant : random_quant(rng);
    std::vector<double> want;
    for (int64_t b = 0; b < n; ++b)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox)
          for (int64_t ch = 0; ch < c; ++ch) {
            double acc = max ? -INFINITY : 0.0;
            int64_t cells = 0;
            for (int64_t iy = oy * strides[0] - pads[0]; iy < oy * strides[0] - pads[0] + kernel[0]; ++iy)
              for (int64_t ix = ox * strides[1] - pads[1]; ix < ox * strides[1] - pads[1] + kernel[1]; ++ix) {
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                const double v = x.real(size_t(((b * h + iy) * w + ix) * c + ch));
                acc = max ? std::max(acc, v) : acc + v;
                ++cells;
              }
            want.push_back(max ? acc : acc / double(include_pad ? kernel[0] * kernel[1] : cells));
          }
    Attrs attrs = {{"kernel", kernel}, {"strides", strides}, {"pads", pads}};
    if (!max) attrs["count_include_pad"] = include_pad;
    Shape shape;
    const Q got = run_op(max ? "MaxPool2D" : "AveragePool2D", {x}, attrs, qy, &shape);
    INFO((max ? "MaxPool2D" : "AveragePool2D")
         << " input " << shape_text(x.shape) << " kernel " << shape_text(kernel) << " strides "
         << shape_text(strides) << " pads " << shape_text(pads) << " include_pad " << include_pad);
    CHECK(shape == Shape{n, oh, ow, c});
    if (max) {  // the input's values, unchanged
      Q exact;
      for (double v : want) exact.push_back(quantise(v, qy));
      CHECK(ints(got) == ints(exact));
    } else {
      require_within_step(got, want, qy);
    }
    ++checked;
  }
  CHECK(checked > 150);
}

TEST_CASE("qops: GlobalAveragePool and ReduceMean over {1, 2} against the direct formula", "[engine][qops]") {
  Rng rng(54);
  for (int t = 0; t < 120; ++t) {
    const bool reduce = t % 2 == 1;
    const int64_t n = uniform(rng, 1, 3), h = uniform(rng, 1, 12), w = uniform(rng, 1, 12),
                  c = random_channels(rng);
    const QTensor x = random_tensor(rng, {n, h, w, c}, random_quant(rng));
    const Quant qy = random_quant(rng);
    std::vector<double> want(size_t(n * c), 0.0);
    for (int64_t i = 0; i < n * h * w * c; ++i) {
      const Ints idx = unravel(i, x.shape);
      want[size_t(idx[0] * c + idx[3])] += x.real(size_t(i)) / double(h * w);
    }
    Attrs attrs;
    Shape want_shape = {n, 1, 1, c};
    if (reduce) {
      attrs["axes"] = rng.pick<Ints>({{1, 2}, {2, 1}, {-3, -2}});
      if (rng.coin(0.5)) {
        attrs["keepdims"] = int64_t{0};
        want_shape = {n, c};
      }
    }
    Shape shape;
    const Q got = run_op(reduce ? "ReduceMean" : "GlobalAveragePool", {x}, attrs, qy, &shape);
    INFO((reduce ? "ReduceMean" : "GlobalAveragePool") << " input " << shape_text(x.shape));
    CHECK(shape == want_shape);
    require_within_step(got, want, qy);
  }
}

// ---------------------------------------------------------------------------

TEST_CASE("qops: Concat against the direct formula", "[engine][qops]") {
  Rng rng(55);
  for (int t = 0; t < 200; ++t) {
    const Quant qy = random_quant(rng);
    const size_t rank = rng.uniform(1, 4);
    const Shape base = random_shape(rng, rank, 5);
    const auto [axis_attr, axis] = random_axis(rng, rank, t % 3 == 0);
    std::vector<QTensor> xs(rng.uniform(1, 4));
    std::vector<Shape> shapes;
    Shape out = base;
    out[axis] = 0;
    for (QTensor& x : xs) {
      Shape s = base;
      s[axis] = axis + 1 == rank ? random_channels(rng) : uniform(rng, 1, 4);
      x = random_tensor(rng, s, rng.coin(0.4) ? qy : random_quant(rng));
      shapes.push_back(s);
      out[axis] += s[axis];
    }
    Q exact;  // where an input shares Y's quantisation, its bytes
    std::vector<double> want;
    std::vector<bool> copied;
    for (int64_t i = 0; i < elements(out); ++i) {
      const auto [k, at] = concat_source(unravel(i, out), axis, shapes);
      want.push_back(xs[k].real(size_t(at)));
      exact.push_back(xs[k].q[size_t(at)]);
      copied.push_back(xs[k].quant.scale == qy.scale && xs[k].quant.zero_point == qy.zero_point);
    }
    Shape shape;
    const Q got = run_op("Concat", xs, {{"axis", axis_attr}}, qy, &shape);
    INFO("out " << shape_text(out) << " axis " << axis_attr << " inputs " << xs.size());
    CHECK(shape == out);
    require_within_step(got, want, qy);
    for (size_t i = 0; i < got.size(); ++i)
      if (copied[i]) REQUIRE(got[i] == exact[i]);
  }
}

// ---------------------------------------------------------------------------

namespace {

// Y[i] = X[source(i)] for every element i of Y of shape `out`: the bytes a data movement op should give.
Q gathered(const QTensor& x, const Shape& out, const std::function<int64_t(const Ints&)>& source) {
  Q y;
  for (int64_t i = 0; i < elements(out); ++i) y.push_back(x.q[size_t(source(unravel(i, out)))]);
  return y;
}

// The input index ONNX Resize (mode nearest) reads for output index o of an axis resized from `in` to `out`.
int64_t nearest_source(int64_t o, int64_t in, int64_t out, const std::string& ctm,
                       const std::string& nearest_mode) {
  const double scale = double(out) / double(in);
  const double x = ctm == "asymmetric" ? double(o) / scale : (double(o) + 0.5) / scale - 0.5;
  const double fl = std::floor(x);
  const int64_t i = int64_t(fl) + (nearest_mode == "round_prefer_floor" && x - fl > 0.5);
  return std::clamp<int64_t>(i, 0, in - 1);
}

}  // namespace

TEST_CASE("qops: Reshape, Transpose, Slice, Split, Pad and Resize move the bytes", "[engine][qops]") {
  Rng rng(56);
  for (int t = 0; t < 300; ++t) {
    const std::string op = rng.pick<std::string>({"Reshape", "Transpose", "Slice", "Split", "Pad", "Resize"});
    const size_t rank = op == "Resize" ? 4 : rng.uniform(1, 4);
    Shape shape = random_shape(rng, rank, 6);
    shape.back() = random_channels(rng);
    const QTensor x = random_tensor(rng, shape, random_quant(rng));
    Ints strides(rank, 1);  // of x, in elements
    for (size_t d = rank - 1; d-- > 0;) strides[d] = strides[d + 1] * shape[d + 1];
    Attrs attrs;
    Shape out;
    std::function<int64_t(const Ints&)> source;
    std::vector<std::pair<Shape, Q>> want;  // per output
    if (op == "Reshape") {
      out = {elements(shape)};
      if (rank > 1) out = {shape[0], elements(shape) / shape[0]};
      Ints inferred = out;  // the last dim left to the op
      inferred.back() = -1;
      attrs["shape"] = rng.coin(0.5) ? out : inferred;
      want.push_back({out, x.q});
    } else if (op == "Transpose") {
      Ints perm(rank);
      std::iota(perm.begin(), perm.end(), int64_t{0});
      for (size_t d = rank; d-- > 1;) std::swap(perm[d], perm[rng.uniform(0, d)]);
      attrs["perm"] = perm;
      for (size_t d = 0; d < rank; ++d) out.push_back(shape[size_t(perm[d])]);
      want.push_back({out, gathered(x, out, [&](const Ints& idx) {
                        int64_t at = 0;
                        for (size_t d = 0; d < rank; ++d) at += idx[d] * strides[size_t(perm[d])];
                        return at;
                      })});
    } else if (op == "Slice") {
      Ints starts, ends, axes, steps, begin(rank, 0), step(rank, 1);
      out = shape;
      for (size_t d = 0; d < rank; ++d) {
        if (rng.coin(0.4)) continue;
        const int64_t s = uniform(rng, 0, shape[d] - 1), e = uniform(rng, s + 1, shape[d]),
                      k = uniform(rng, 1, 3);
        starts.push_back(s), ends.push_back(e), axes.push_back(int64_t(d)), steps.push_back(k);
        begin[d] = s, step[d] = k, out[d] = (e - s + k - 1) / k;
      }
      attrs = {{"starts", starts}, {"ends", ends}, {"axes", axes}, {"steps", steps}};
      want.push_back({out, gathered(x, out, [&](const Ints& idx) {
                        int64_t at = 0;
                        for (size_t d = 0; d < rank; ++d) at += (begin[d] + idx[d] * step[d]) * strides[d];
                        return at;
                      })});
    } else if (op == "Split") {
      const size_t axis = rng.uniform(0, rank - 1), parts = rng.uniform(1, 3);
      Ints sizes(parts, 0);
      for (int64_t i = 0; i < shape[axis]; ++i) ++sizes[rng.uniform(0, parts - 1)];
      attrs = {{"axis", int64_t(axis)}, {"split", sizes}};
      int64_t offset = 0;
      for (size_t k = 0; k < parts; ++k) {
        Shape s = shape;
        s[axis] = sizes[k];
        want.push_back({s, gathered(x, s, [&](const Ints& idx) {
                          Ints i = idx;
                          i[axis] += offset;
                          return ravel(i, shape);
                        })});
        offset += sizes[k];
      }
    } else if (op == "Pad") {
      const std::string mode = rng.pick<std::string>({"constant", "reflect", "edge"});
      Ints pads(2 * rank);
      for (size_t d = 0; d < 2 * rank; ++d)
        pads[d] = uniform(rng, 0, mode == "reflect" ? shape[d % rank] - 1 : 3);
      const float value = rng.normal() * 3;
      attrs = {{"pads", pads}, {"mode", mode}, {"value", value}};
      for (size_t d = 0; d < rank; ++d) out.push_back(shape[d] + pads[d] + pads[rank + d]);
      Q y;
      for (int64_t i = 0; i < elements(out); ++i) {
        const int64_t at = pad_source(unravel(i, out), pads, shape, mode);
        y.push_back(at < 0 ? quantise(value, x.quant) : x.q[size_t(at)]);
      }
      want.push_back({out, y});
    } else {  // Resize, mode nearest
      const std::string ctm = rng.pick<std::string>({"half_pixel", "asymmetric"});
      const std::string nearest_mode = rng.pick<std::string>({"round_prefer_floor", "floor"});
      const Ints size = {uniform(rng, 1, 13), uniform(rng, 1, 13)};
      attrs = {{"size", size}, {"coordinate_transformation_mode", ctm}, {"nearest_mode", nearest_mode}};
      out = {shape[0], size[0], size[1], shape[3]};
      want.push_back({out, gathered(x, out, [&](const Ints& idx) {
                        return ravel({idx[0], nearest_source(idx[1], shape[1], size[0], ctm, nearest_mode),
                                      nearest_source(idx[2], shape[2], size[1], ctm, nearest_mode), idx[3]},
                                     shape);
                      })});
    }
    Builder bld;
    std::vector<Q> values;
    const std::vector<int> outs = bld.nodes(op, add_inputs(bld, {x}, &values), attrs, want.size());
    for (int y : outs) bld.quantise(y, x.quant);
    const auto got = run_all<int8_t>(std::move(bld.g), outs, values);
    INFO(op << " input " << shape_text(shape));
    REQUIRE(got.size() == want.size());
    for (size_t k = 0; k < want.size(); ++k) {
      CHECK(got[k].shape == want[k].first);
      CHECK(ints(got[k].values) == ints(want[k].second));
    }
  }
}

TEST_CASE("qops: Pad's constant value is quantised with the tensor's quantisation", "[engine][qops]") {
  const QTensor x = {{1, 1}, per_tensor(0.5f, 3), {10}};
  // value / 0.5 rounded half to even, plus 3, saturated.
  const std::pair<float, int8_t> cases[] = {{0.25f, 3}, {0.75f, 5},     {-0.25f, 3},     {-0.75f, 1},
                                            {1.0f, 5},  {1000.0f, 127}, {-1000.0f, -128}};
  for (const auto& [value, q] : cases) {
    INFO("value " << value);
    CHECK(ints(run_op("Pad", {x}, {{"pads", Ints{0, 1, 0, 0}}, {"value", value}}, x.quant)) ==
          std::vector<int>{q, 10});
  }
}

// ---------------------------------------------------------------------------

TEST_CASE("qops: a graph of the int8 ops gives the same bits on 1, 2 and 3 threads",
          "[engine][qops][threads]") {
  Rng rng(57);
  const int64_t c = 72;
  const Shape shape = {2, 48, 48, c};  // 331776 elements: a few chunks of the flat range
  const Quant q = per_tensor(0.05f, 3);
  const QTensor x = random_tensor(rng, shape, q), bias = random_tensor(rng, {c}, per_tensor(0.02f, -5));
  auto make = [&]() {
    Builder bld;
    auto quantised = [&](int t, float scale, int32_t zp) {
      bld.quantise(t, per_tensor(scale, zp));
      return t;
    };
    const int in = bld.input("x", shape, q);
    int t = quantised(bld.node("Sigmoid", {in}), 0.004f, -128);
    t = quantised(bld.node("Mul", {in, t}), 0.04f, -10);  // same shape
    t = quantised(bld.node("Add", {t, bld.constant("bias", {c}, bias.q, bias.quant)}), 0.05f, 0);  // vector
    t = quantised(bld.node("HardSwish", {t}), 0.05f, 2);
    const int se = quantised(bld.node("GlobalAveragePool", {t}), 0.02f, 1);
    int u = quantised(bld.node("Sub", {t, se}), 0.06f, 0);  // general broadcast
    u = quantised(bld.node("Mul", {u, bld.constant("half", {}, Q{40}, per_tensor(0.0125f, 0))}), 0.03f, 0);
    const int m =
        quantised(bld.node("MaxPool2D", {u},
                           {{"kernel", Ints{3, 3}}, {"strides", Ints{1, 1}}, {"pads", Ints{1, 1, 1, 1}}}),
                  0.03f, 0);
    const int a =
        quantised(bld.node("AveragePool2D", {m},
                           {{"kernel", Ints{3, 3}}, {"strides", Ints{1, 1}}, {"pads", Ints{1, 1, 1, 1}}}),
                  0.02f, -3);
    int k = quantised(bld.node("Concat", {m, a, t}, {{"axis", int64_t{3}}}), 0.04f, 0);
    k = quantised(bld.node("Transpose", {k}, {{"perm", Ints{0, 3, 1, 2}}}), 0.04f, 0);
    k = quantised(bld.node("Slice", {k}, {{"starts", Ints{1}}, {"ends", Ints{47}}, {"axes", Ints{2}}}), 0.04f,
                  0);
    k = quantised(
        bld.node("Pad", {k}, {{"pads", Ints{0, 0, 1, 0, 0, 0, 1, 0}}, {"mode", std::string("reflect")}}),
        0.04f, 0);
    k = quantised(bld.node("Transpose", {k}, {{"perm", Ints{0, 2, 3, 1}}}), 0.04f, 0);
    const int r = quantised(bld.node("Resize", {k}, {{"size", Ints{40, 56}}}), 0.04f, 0);
    const std::vector<int> halves = bld.nodes("Split", {r}, {{"axis", int64_t{3}}}, 2);
    for (int h : halves) quantised(h, 0.04f, 0);
    const int mean = quantised(bld.node("ReduceMean", {halves[1]}, {{"axes", Ints{1, 2}}}), 0.01f, 0);
    return std::make_pair(std::move(bld.g), std::vector<int>{halves[0], mean});
  };
  std::vector<std::vector<TypedOutput<int8_t>>> results;
  for (size_t threads : {1, 2, 3}) {
    auto [g, outs] = make();
    results.push_back(run_all<int8_t>(std::move(g), outs, {x.q}, threads));
  }
  for (size_t i = 1; i < 3; ++i)
    for (size_t k = 0; k < 2; ++k) {
      INFO("threads " << i + 1 << " output " << k);
      CHECK(results[i][k].shape == results[0][k].shape);
      const bool same_bits = results[i][k].values == results[0][k].values;  // (too long to print)
      CHECK(same_bits);
    }
}

// ---------------------------------------------------------------------------

TEST_CASE("qops: preparation errors", "[engine][qops]") {
  const Shape s = {1, 4, 4, 8};
  const Quant q = per_tensor(0.1f, 0), other = per_tensor(0.2f, 0);
  // Quantisation of the input and the output.
  CHECK_THAT(qerror_of("Relu", s, {}, Quant{{0.1f, 0.2f}, {0, 0}, 3}, q),
             Catch::Contains(
                 "input 0 'x' is i8 but has 2 scales and 2 zero points: it needs per-tensor quantisation"));
  CHECK_THAT(qerror_of("Relu", s, {}, q, Quant{}),
             Catch::Contains("(Relu): output 0 'Relu0' is i8 but has 0 scales and 0 zero points"));
  CHECK_THAT(qerror_of("Relu", s, {}, per_tensor(0.0f, 0), q),
             Catch::Contains("input 0 'x' has scale 0: it must be finite and above 0"));
  CHECK_THAT(qerror_of("Relu", s, {}, q, per_tensor(0.1f, 128)),
             Catch::Contains("output 0 'Relu0' has zero point 128, outside [-128, 127]"));
  // Ops that keep their input's quantisation.
  const std::pair<const char*, Attrs> keep[] = {
      {"MaxPool2D", {{"kernel", Ints{2, 2}}}},
      {"Reshape", {{"shape", Ints{-1}}}},
      {"Transpose", {}},
      {"Slice", {{"starts", Ints{1}}, {"ends", Ints{2}}}},
      {"Split", {}},
      {"Pad", {{"pads", Ints{0, 0, 0, 0, 0, 0, 0, 1}}}},
      {"Resize", {{"size", Ints{8, 8}}}},
  };
  for (const auto& [op, attrs] : keep) {
    INFO(op);
    CHECK_THAT(qerror_of(op, s, attrs, q, other),
               Catch::Contains(
                   "is quantised with scale 0.200000003 zero point 0, input 0 with scale 0.100000001 zero "
                   "point 0: the op keeps its input's quantisation"));
  }
  // Ops with no int8 form.
  CHECK_THAT(qerror_of("Softmax", s, {}, q, q),
             Catch::Contains("(Softmax): input 0 'x' is i8: Softmax has no int8 form"));
  CHECK_THAT(qerror_of("Resize", s, {{"size", Ints{8, 8}}, {"mode", std::string("linear")}}, q, q),
             Catch::Contains("Resize mode 'linear' has no int8 form"));
  CHECK_THAT(qerror_of("ReduceMean", s, {{"axes", Ints{3}}}, q, q),
             Catch::Contains("ReduceMean over axes other than {1, 2} of a rank-4 tensor has no int8 form"));
  CHECK_THAT(qerror_of("ReduceMean", {4, 4, 8}, {{"axes", Ints{1, 2}}}, q, q),
             Catch::Contains("ReduceMean over axes other than {1, 2}"));
  {
    Builder bld;
    bld.quantise(bld.node("Div", {bld.input("a", s, q), bld.input("b", s, q)}), q);
    CHECK_THAT(prepare_error(bld), Catch::Contains("(Div): input 0 'a' is i8: Div has no int8 form"));
  }
  // Mixed element types.
  {
    Builder bld;
    bld.quantise(bld.node("Add", {bld.input("a", s, q), bld.input("b", s)}), q);
    CHECK_THAT(prepare_error(bld), Catch::Contains("(Add): input 1 'b' is f32, expected i8"));
  }
  {
    Builder bld;
    bld.quantise(bld.node("Concat", {bld.input("a", s, q), bld.input("b", s)}, {{"axis", int64_t{3}}}), q);
    CHECK_THAT(prepare_error(bld), Catch::Contains("(Concat): input 1 'b' is f32, expected i8"));
  }
  CHECK_THAT(qerror_of("Pad", s, {{"pads", Ints{0, 0, 0, 0, 0, 0, 0, 1}}, {"value", NAN}}, q, q),
             Catch::Contains("attribute 'value' is NaN, which has no int8 value"));
}
