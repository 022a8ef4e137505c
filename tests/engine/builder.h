// Helpers for the engine's op tests: a small graph builder, random inputs,
// running a graph and comparing its outputs with a double-precision reference.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "engine/interpreter.h"
#include "tests/kernels/shapes.h"

namespace huddle::test {

struct Builder {
  engine::Graph g;
  int input(const std::string& name, engine::Shape shape) {
    engine::Tensor t;
    t.name = name;
    t.shape = std::move(shape);
    const int id = g.add_tensor(t);
    g.inputs.push_back(id);
    return id;
  }
  int constant(const std::string& name, engine::Shape shape, const std::vector<float>& v) {
    std::vector<uint8_t> bytes(v.size() * sizeof(float));
    if (!bytes.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
    return g.add_constant(name, engine::DType::f32, std::move(shape), std::move(bytes));
  }
  // A node with `outputs` outputs; returns their tensor indices.
  std::vector<int> nodes(const std::string& op, std::vector<int> inputs,
                         std::map<std::string, engine::AttrValue> attrs, size_t outputs) {
    engine::Node n;
    n.name = op + std::to_string(g.nodes.size());
    n.op = op;
    n.inputs = std::move(inputs);
    n.attrs = std::move(attrs);
    for (size_t i = 0; i < outputs; ++i) {
      engine::Tensor t;
      t.name = i == 0 ? n.name : n.name + ":" + std::to_string(i);
      n.outputs.push_back(g.add_tensor(t));
    }
    g.nodes.push_back(n);
    return n.outputs;
  }
  // A node with one output; returns its tensor index.
  int node(const std::string& op, std::vector<int> inputs,
           std::map<std::string, engine::AttrValue> attrs = {}) {
    return nodes(op, std::move(inputs), std::move(attrs), 1)[0];
  }
};

inline std::vector<float> random_values(Rng& rng, size_t n) {
  std::vector<float> v(n);
  for (float& x : v) x = rng.normal();
  return v;
}

struct Output {
  engine::Shape shape;
  std::vector<float> values;
};

// Runs a graph with outputs `outs` on `inputs` and returns every output.
inline std::vector<Output> run_all(engine::Graph g, std::vector<int> outs,
                                   const std::vector<std::vector<float>>& inputs) {
  g.outputs = std::move(outs);
  engine::Interpreter it(std::move(g));
  for (size_t i = 0; i < inputs.size(); ++i) {
    REQUIRE(static_cast<size_t>(engine::elements(it.input(i).shape)) == inputs[i].size());
    if (!inputs[i].empty()) std::memcpy(it.input_data(i), inputs[i].data(), inputs[i].size() * sizeof(float));
  }
  it.run();
  std::vector<Output> result;
  for (size_t k = 0; k < it.output_count(); ++k) {
    const float* y = static_cast<const float*>(it.output_data(k));
    const auto n = static_cast<size_t>(engine::elements(it.output(k).shape));
    result.push_back({it.output(k).shape, n ? std::vector<float>(y, y + n) : std::vector<float>()});
  }
  return result;
}

// Runs a one-output graph on `inputs` and returns the output.
inline std::vector<float> run(engine::Graph g, int out, const std::vector<std::vector<float>>& inputs,
                              engine::Shape* shape = nullptr) {
  std::vector<Output> r = run_all(std::move(g), {out}, inputs);
  if (shape) *shape = r[0].shape;
  return std::move(r[0].values);
}

inline void require_close(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    REQUIRE(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])));
  }
}

}  // namespace huddle::test
