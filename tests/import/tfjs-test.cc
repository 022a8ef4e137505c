// The TensorFlow.js importer on small graph models written here: numerics
// against direct loops that follow TensorFlow's documented semantics (SAME
// padding, depthwise channel order, weight dequantisation), output selection,
// layout, and every way a model.json or its shards can be wrong.
#include "models/import/tfjs.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/interpreter.h"

using huddle::engine::Graph;
using huddle::engine::Interpreter;
using huddle::engine::Shape;
using huddle::models::ImportError;
using huddle::models::ImportOptions;
using huddle::models::import_tfjs_bytes;
using Catch::Matchers::Contains;

namespace {

std::string dims_json(const Shape& s) {
  std::string out;
  for (int64_t d : s) {
    if (!out.empty()) out += ',';
    out += "{\"size\":\"";
    out += std::to_string(d);
    out += "\"}";
  }
  return "{\"dim\":[" + out + "]}";
}
std::string ints_json(const std::vector<int64_t>& v) {
  std::string out;
  for (int64_t d : v) {
    if (!out.empty()) out += ',';
    out += '"';
    out += std::to_string(d);
    out += '"';
  }
  return "[" + out + "]";
}
std::string b64(const std::string& s) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : s) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) out.push_back(k[(acc >> (bits -= 6)) & 63]);
  }
  if (bits) out.push_back(k[(acc << (6 - bits)) & 63]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

// A TF.js graph model under construction: nodes as JSON text, weights in one shard.
struct Model {
  std::vector<std::string> nodes, weights;
  std::string shard;
  std::string extra;  // more top-level members

  void node(const std::string& name, const std::string& op, const std::vector<std::string>& inputs,
            const std::string& attr = "") {
    std::string in;
    for (const auto& i : inputs) {
      if (!in.empty()) in += ',';
      in += '"';
      in += i;
      in += '"';
    }
    nodes.push_back("{\"name\":\"" + name + "\",\"op\":\"" + op + "\",\"input\":[" + in + "]" +
                    (attr.empty() ? "" : ",\"attr\":{" + attr + "}") + "}");
  }
  void input(const std::string& name, const Shape& shape) {
    node(name, "Placeholder", {}, "\"dtype\":{\"type\":\"DT_FLOAT\"},\"shape\":{\"shape\":" + dims_json(shape) + "}");
  }
  void floats(const std::string& name, const Shape& shape, const std::vector<float>& v) {
    node(name, "Const", {});
    weights.push_back("{\"name\":\"" + name + "\",\"shape\":" + shape_json(shape) + ",\"dtype\":\"float32\"}");
    shard.append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  }
  void ints(const std::string& name, const Shape& shape, const std::vector<int32_t>& v) {
    node(name, "Const", {});
    weights.push_back("{\"name\":\"" + name + "\",\"shape\":" + shape_json(shape) + ",\"dtype\":\"int32\"}");
    shard.append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  }
  void uint8_weight(const std::string& name, const Shape& shape, const std::vector<uint8_t>& q, float scale, float min) {
    node(name, "Const", {});
    weights.push_back("{\"name\":\"" + name + "\",\"shape\":" + shape_json(shape) +
                      ",\"dtype\":\"float32\",\"quantization\":{\"dtype\":\"uint8\",\"scale\":" + std::to_string(scale) +
                      ",\"min\":" + std::to_string(min) + "}}");
    shard.append(reinterpret_cast<const char*>(q.data()), q.size());
  }
  static std::string shape_json(const Shape& s) {
    std::string out;
    for (int64_t d : s) {
      if (!out.empty()) out += ',';
      out += std::to_string(d);
    }
    return "[" + out + "]";
  }
  std::string json(const std::string& shard_path = "w.bin") const {
    std::string n, w;
    for (const auto& x : nodes) {
      if (!n.empty()) n += ',';
      n += x;
    }
    for (const auto& x : weights) {
      if (!w.empty()) w += ',';
      w += x;
    }
    return "{\"format\":\"graph-model\",\"modelTopology\":{\"node\":[" + n +
           "]},\"weightsManifest\":[{\"paths\":[\"" + shard_path + "\"],\"weights\":[" + w + "]}]" + extra + "}";
  }
  Graph import(const ImportOptions& options = {}, const std::string& shard_path = "w.bin") const {
    const std::string j = json(shard_path);
    const std::string data = shard;
    auto result = import_tfjs_bytes({reinterpret_cast<const uint8_t*>(j.data()), j.size()}, "test/model.json",
                                    [data](const std::string& path) {
                                      if (path != "w.bin") throw std::runtime_error("no such shard " + path);
                                      return std::vector<uint8_t>(data.begin(), data.end());
                                    },
                                    options);
    return std::move(result.graph);
  }
};

std::string list_ints(const char* key, const std::vector<int64_t>& v) {
  return std::string("\"") + key + "\":{\"list\":{\"i\":" + ints_json(v) + "}}";
}
std::string str_attr(const char* key, const std::string& v) {
  return std::string("\"") + key + "\":{\"s\":\"" + b64(v) + "\"}";
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<float> run(Graph g, const std::vector<float>& x, size_t output = 0) {
  Interpreter it(std::move(g));
  REQUIRE(huddle::engine::elements(it.input(0).shape) == static_cast<int64_t>(x.size()));
  std::memcpy(it.input_data(0), x.data(), x.size() * 4);
  it.run();
  std::vector<float> y(static_cast<size_t>(huddle::engine::elements(it.output(output).shape)));
  std::memcpy(y.data(), it.output_data(output), y.size() * 4);
  return y;
}

// TensorFlow's convolution, directly: x NHWC, filter [KH, KW, C/groups... ] as TF stores it.
// depthwise: filter [KH, KW, C, M], output channel c * M + m.
std::vector<float> tf_conv(const std::vector<float>& x, const Shape& xs, const std::vector<float>& f, const Shape& fs,
                           int64_t stride, bool same, bool depthwise, Shape& out_shape) {
  const int64_t h = xs[1], w = xs[2], c = xs[3], kh = fs[0], kw = fs[1];
  const int64_t oc = depthwise ? c * fs[3] : fs[3];
  int64_t oh, ow, pt = 0, pl = 0;
  if (same) {
    oh = (h + stride - 1) / stride;
    ow = (w + stride - 1) / stride;
    pt = std::max<int64_t>(0, (oh - 1) * stride + kh - h) / 2;
    pl = std::max<int64_t>(0, (ow - 1) * stride + kw - w) / 2;
  } else {
    oh = (h - kh) / stride + 1;
    ow = (w - kw) / stride + 1;
  }
  out_shape = {1, oh, ow, oc};
  std::vector<float> y(static_cast<size_t>(oh * ow * oc), 0.0f);
  for (int64_t oy = 0; oy < oh; ++oy)
    for (int64_t ox = 0; ox < ow; ++ox)
      for (int64_t o = 0; o < oc; ++o) {
        double acc = 0;
        for (int64_t ky = 0; ky < kh; ++ky)
          for (int64_t kx = 0; kx < kw; ++kx) {
            const int64_t iy = oy * stride + ky - pt, ix = ox * stride + kx - pl;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
            if (depthwise) {
              const int64_t ci = o / fs[3], m = o % fs[3];
              acc += x[static_cast<size_t>((iy * w + ix) * c + ci)] *
                     f[static_cast<size_t>(((ky * kw + kx) * c + ci) * fs[3] + m)];
            } else {
              for (int64_t ci = 0; ci < c; ++ci)
                acc += x[static_cast<size_t>((iy * w + ix) * c + ci)] *
                       f[static_cast<size_t>(((ky * kw + kx) * c + ci) * oc + o)];
            }
          }
        y[static_cast<size_t>((oy * ow + ox) * oc + o)] = static_cast<float>(acc);
      }
  return y;
}

void require_close(const std::vector<float>& a, const std::vector<float>& b, float tol = 1e-4f) {
  REQUIRE(a.size() == b.size());
  for (size_t k = 0; k < a.size(); ++k) REQUIRE(std::fabs(a[k] - b[k]) <= tol * (1.0f + std::fabs(b[k])));
}

ImportError import_error(const Model& m, const ImportOptions& options = {}, const std::string& shard_path = "w.bin") {
  try {
    m.import(options, shard_path);
  } catch (const ImportError& e) {
    return e;
  }
  FAIL("the model imported");
  return ImportError("");
}

}  // namespace

TEST_CASE("tfjs: fused convolution with SAME padding, stride 2, bias and Relu6 matches TF's definition") {
  for (const int64_t stride : {1, 2}) {
    const Shape xs = {1, 7, 6, 3}, fs = {3, 3, 3, 4};
    const auto x = random_floats(7 * 6 * 3, 1), f = random_floats(3 * 3 * 3 * 4, 2), b = random_floats(4, 3);
    Model m;
    m.input("x", xs);
    m.floats("f", fs, f);
    m.floats("b", {4}, b);
    m.node("conv", "_FusedConv2D", {"x", "f", "b"},
           list_ints("strides", {1, stride, stride, 1}) + "," + str_attr("padding", "SAME") + "," +
               str_attr("data_format", "NHWC") + ",\"num_args\":{\"i\":\"1\"},\"fused_ops\":{\"list\":{\"s\":[\"" +
               b64("BiasAdd") + "\",\"" + b64("Relu6") + "\"]}}");
    Shape ys;
    auto want = tf_conv(x, xs, f, fs, stride, true, false, ys);
    for (size_t k = 0; k < want.size(); ++k) want[k] = std::clamp(want[k] + b[k % 4], 0.0f, 6.0f);
    Graph g = m.import();
    REQUIRE(g.tensors[static_cast<size_t>(g.outputs[0])].shape == ys);
    require_close(run(std::move(g), x), want);
  }
}

TEST_CASE("tfjs: depthwise convolution with a channel multiplier, VALID padding") {
  const Shape xs = {1, 6, 5, 3}, fs = {3, 3, 3, 2};
  const auto x = random_floats(6 * 5 * 3, 4), f = random_floats(3 * 3 * 3 * 2, 5);
  Model m;
  m.input("x", xs);
  m.floats("f", fs, f);
  m.node("dw", "DepthwiseConv2dNative", {"x", "f"},
         list_ints("strides", {1, 1, 1, 1}) + "," + str_attr("padding", "VALID"));
  Shape ys;
  const auto want = tf_conv(x, xs, f, fs, 1, false, true, ys);
  Graph g = m.import();
  REQUIRE(g.tensors[static_cast<size_t>(g.outputs[0])].shape == ys);
  require_close(run(std::move(g), x), want);
}

TEST_CASE("tfjs: uint8-quantised weights are min + scale * q") {
  Model m;
  m.input("x", {1, 4});
  m.uint8_weight("w", {1, 4}, {0, 1, 128, 255}, 0.5f, -2.0f);
  m.node("y", "Mul", {"x", "w"});
  const auto y = run(m.import(), {1, 1, 1, 1});
  REQUIRE(y == std::vector<float>{-2.0f, -1.5f, 62.0f, 125.5f});
}

TEST_CASE("tfjs: shape arithmetic folds at import time") {
  // Reshape x [1, 2, 3, 4] to [Shape(x)[0], -1] computed in the graph.
  Model m;
  m.input("x", {1, 2, 3, 4});
  m.node("shape", "Shape", {"x"});
  m.ints("b", {1}, {0});
  m.ints("e", {1}, {1});
  m.ints("s", {1}, {1});
  m.node("first", "StridedSlice", {"shape", "b", "e", "s"}, "\"shrink_axis_mask\":{\"i\":\"1\"}");
  m.ints("minus1", {}, {-1});
  m.node("target", "Pack", {"first", "minus1"});
  m.node("y", "Reshape", {"x", "target"});
  Graph g = m.import();
  REQUIRE(g.tensors[static_cast<size_t>(g.outputs[0])].shape == Shape{1, 24});
  const auto x = random_floats(24, 6);
  REQUIRE(run(std::move(g), x) == x);
}

TEST_CASE("tfjs: a channels-first input given channels-last leaves no transpose") {
  Model m;
  m.input("x", {1, 3, 4, 5});  // N, C, H, W
  m.ints("perm", {4}, {0, 2, 3, 1});
  m.node("t", "Transpose", {"x", "perm"});
  m.floats("f", {1, 1, 3, 2}, random_floats(6, 7));
  m.node("conv", "Conv2D", {"t", "f"}, list_ints("strides", {1, 1, 1, 1}) + "," + str_attr("padding", "VALID"));
  ImportOptions o;
  o.nhwc_inputs = true;
  Graph g = m.import(o);
  REQUIRE(g.tensors[static_cast<size_t>(g.inputs[0])].shape == Shape{1, 4, 5, 3});
  for (const auto& n : g.nodes) REQUIRE(n.op != "Transpose");
}

TEST_CASE("tfjs: outputs choose the subgraph; unsupported ops are listed together") {
  Model m;
  m.input("x", {1, 4});
  m.node("a", "Tanh", {"x"});
  m.node("b", "Erf", {"x"});
  m.node("c", "Relu", {"x"});
  m.node("sum", "AddV2", {"a", "b"});
  const auto e = import_error(m);
  REQUIRE_THAT(e.what(), Contains("'a' (Tanh)") && Contains("'b' (Erf)") &&
                             Contains("2 problems"));
  ImportOptions o;
  o.outputs = {"c"};
  Graph g = m.import(o);
  REQUIRE(g.outputs.size() == 1);
  REQUIRE(g.tensors[static_cast<size_t>(g.outputs[0])].name == "c");
  REQUIRE(run(std::move(g), {-1, 2, -3, 4}) == std::vector<float>{0, 2, 0, 4});
}

TEST_CASE("tfjs: bad model files are refused with what is wrong") {
  Model m;
  m.input("x", {1, 4});
  m.floats("w", {4}, {1, 2, 3, 4});
  m.node("y", "Mul", {"x", "w"});
  SECTION("a shard path outside the model's folder") {
    REQUIRE_THAT(import_error(m, {}, "../secret.bin").what(), Contains("'../secret.bin'"));
  }
  SECTION("a shard that cannot be read") {
    REQUIRE_THAT(import_error(m, {}, "other.bin").what(), Contains("no such shard other.bin"));
  }
  SECTION("a weight that runs past its shard") {
    Model short_shard = m;
    short_shard.shard.resize(12);
    REQUIRE_THAT(import_error(short_shard).what(), Contains("weight 'w' ends at byte 16"));
  }
  SECTION("an output that is not a node") {
    ImportOptions o;
    o.outputs = {"nope"};
    REQUIRE_THAT(import_error(m, o).what(), Contains("output 'nope' is not a node"));
  }
  SECTION("a node reading a missing node") {
    Model bad = m;
    bad.node("z", "Relu", {"missing"});
    REQUIRE_THAT(import_error(bad).what(), Contains("reads 'missing'"));
  }
  SECTION("a cycle") {
    Model bad;
    bad.node("p", "Relu", {"q"});
    bad.node("q", "Relu", {"p"});
    ImportOptions o;
    o.outputs = {"p"};
    REQUIRE_THAT(import_error(bad, o).what(), Contains("cycle"));
  }
  SECTION("a layers model, or no JSON at all") {
    auto try_json = [](const std::string& j) -> std::string {
      try {
        import_tfjs_bytes({reinterpret_cast<const uint8_t*>(j.data()), j.size()}, "m.json",
                          [](const std::string&) { return std::vector<uint8_t>(); });
      } catch (const ImportError& e) {
        return e.what();
      }
      return "";
    };
    REQUIRE_THAT(try_json("{\"format\":\"layers-model\"}"), Contains("layers model"));
    REQUIRE_THAT(try_json("{\"modelTopology\": [1, 2"), Contains("not JSON"));
    REQUIRE_THAT(try_json("[]"), Contains("not an object"));
  }
}
