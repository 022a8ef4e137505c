// Helpers for the engine's op tests: a small graph builder (fp32 and int8
// tensors), random inputs and shapes, index arithmetic, running a graph (on
// any number of threads) and comparing its outputs with a double-precision
// reference.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/interpreter.h"
#include "tests/kernels/shapes.h"

namespace huddle::test {

// Per-tensor quantisation: real = scale * (q - zero_point).
inline engine::Quant per_tensor(float scale, int32_t zero_point) { return {{scale}, {zero_point}, -1}; }

struct Builder {
  engine::Graph g;
  // A graph input: f32, or i8 with `quant`.
  int input(const std::string& name, engine::Shape shape, engine::Quant quant = {}) {
    engine::Tensor t;
    t.name = name;
    t.shape = std::move(shape);
    t.dtype = quant.empty() ? engine::DType::f32 : engine::DType::i8;
    t.quant = std::move(quant);
    const int id = g.add_tensor(t);
    g.inputs.push_back(id);
    return id;
  }
  int constant(const std::string& name, engine::Shape shape, const std::vector<float>& v) {
    return constant_bytes(name, engine::DType::f32, std::move(shape), v.data(), v.size() * sizeof(float));
  }
  // An i8 constant quantised as `quant`.
  int constant(const std::string& name, engine::Shape shape, const std::vector<int8_t>& v,
               engine::Quant quant) {
    const int id = constant_bytes(name, engine::DType::i8, std::move(shape), v.data(), v.size());
    g.tensors[id].quant = std::move(quant);
    return id;
  }
  // Gives tensor t (a node's output) the quantisation its producer would, before the graph is prepared.
  void quantise(int t, engine::Quant quant) { g.tensors[t].quant = std::move(quant); }
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
  // A constant of any dtype from its raw bytes.
  int constant_bytes(const std::string& name, engine::DType dtype, engine::Shape shape, const void* data,
                     size_t size) {
    std::vector<uint8_t> bytes(size);
    if (size) std::memcpy(bytes.data(), data, size);
    return g.add_constant(name, dtype, std::move(shape), std::move(bytes));
  }
};

inline std::vector<float> random_values(Rng& rng, size_t n) {
  std::vector<float> v(n);
  for (float& x : v) x = rng.normal();
  return v;
}

// One output of a graph run, its elements of type T (float for f32, int8_t for i8).
template <class T>
struct TypedOutput {
  engine::Shape shape;
  std::vector<T> values;
};
using Output = TypedOutput<float>;

// Runs a graph with outputs `outs` on `inputs` (elements of type T, every
// input and output of that size) on `threads` threads and returns every output.
template <class T = float>
std::vector<TypedOutput<T>> run_all(engine::Graph g, std::vector<int> outs,
                                    const std::vector<std::vector<T>>& inputs, size_t threads = 1) {
  g.outputs = std::move(outs);
  engine::Interpreter it(std::move(g), engine::InterpreterOptions{threads});
  for (size_t i = 0; i < inputs.size(); ++i) {
    REQUIRE(static_cast<size_t>(engine::elements(it.input(i).shape)) == inputs[i].size());
    REQUIRE(engine::dtype_bytes(it.input(i).dtype) == sizeof(T));
    if (!inputs[i].empty()) std::memcpy(it.input_data(i), inputs[i].data(), inputs[i].size() * sizeof(T));
  }
  it.run();
  std::vector<TypedOutput<T>> result;
  for (size_t k = 0; k < it.output_count(); ++k) {
    REQUIRE(engine::dtype_bytes(it.output(k).dtype) == sizeof(T));
    const T* y = static_cast<const T*>(it.output_data(k));
    const auto n = static_cast<size_t>(engine::elements(it.output(k).shape));
    result.push_back({it.output(k).shape, n ? std::vector<T>(y, y + n) : std::vector<T>()});
  }
  return result;
}

// Runs a one-output graph on `inputs` and returns the output.
template <class T = float>
std::vector<T> run(engine::Graph g, int out, const std::vector<std::vector<T>>& inputs,
                   engine::Shape* shape = nullptr, size_t threads = 1) {
  std::vector<TypedOutput<T>> r = run_all<T>(std::move(g), {out}, inputs, threads);
  if (shape) *shape = r[0].shape;
  return std::move(r[0].values);
}

// The op tests' (ops-test, qops-test) shared helpers, kept apart so other
// test files' own helpers of these names do not clash.
namespace op_tests {

using Ints = std::vector<int64_t>;
using Attrs = std::map<std::string, engine::AttrValue>;

// Uniform integer in [lo, hi].
inline int64_t uniform(Rng& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(rng.uniform(0, static_cast<size_t>(hi - lo)));
}

// A shape of `rank` dims in [1, max_dim], each 1 with probability p_one.
inline engine::Shape random_shape(Rng& rng, size_t rank, int64_t max_dim, double p_one = 0.25) {
  engine::Shape s(rank);
  for (int64_t& d : s) d = rng.coin(p_one) ? 1 : uniform(rng, 1, max_dim);
  return s;
}

// An axis attribute for a tensor of rank `rank`: the last axis when `last`,
// else any in [-rank, rank); and the index of the axis it names.
inline std::pair<int64_t, size_t> random_axis(Rng& rng, size_t rank, bool last) {
  const int64_t r = static_cast<int64_t>(rank);
  const int64_t attr = last ? r - 1 : uniform(rng, -r, r - 1);
  return {attr, static_cast<size_t>(attr < 0 ? attr + r : attr)};
}

// Row-major multi-index of element i of `shape`, and back.
inline Ints unravel(int64_t i, const engine::Shape& shape) {
  Ints idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = i % shape[d];
    i /= shape[d];
  }
  return idx;
}
inline int64_t ravel(const Ints& idx, const engine::Shape& shape) {
  int64_t i = 0;
  for (size_t d = 0; d < shape.size(); ++d) i = i * shape[d] + idx[d];
  return i;
}

// The input of a concatenation along `axis` of tensors of `shapes` that
// output index idx reads, and the element of it.
inline std::pair<size_t, int64_t> concat_source(Ints idx, size_t axis,
                                                const std::vector<engine::Shape>& shapes) {
  size_t k = 0;
  while (idx[axis] >= shapes[k][axis]) idx[axis] -= shapes[k++][axis];
  return {k, ravel(idx, shapes[k])};
}

// The element of X (shape `in`) that Pad (ONNX pads [begin.., end..], mode
// `mode`) writes at output index idx, or -1 for the constant.
inline int64_t pad_source(Ints idx, const Ints& pads, const engine::Shape& in, const std::string& mode) {
  const size_t rank = in.size();
  for (size_t d = 0; d < rank; ++d) {
    int64_t i = idx[d] - pads[d];
    const int64_t n = in[d];
    if (i < 0 || i >= n) {
      if (mode == "constant") return -1;
      if (mode == "edge") i = i < 0 ? 0 : n - 1;
      while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;  // reflect
    }
    idx[d] = i;
  }
  return ravel(idx, in);
}

// "x3" (built without operator+, which trips GCC 12's -Wrestrict at -O3).
inline std::string input_name(size_t i) {
  std::string s = std::to_string(i);
  s.insert(s.begin(), 'x');
  return s;
}

// The error message of preparing the graph (empty if it prepares).
inline std::string prepare_error(Builder& bld) {
  try {
    engine::Interpreter it(std::move(bld.g));
  } catch (const engine::GraphError& e) {
    return e.what();
  }
  return {};
}

}  // namespace op_tests

inline void require_close(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    REQUIRE(std::abs(got[i] - want[i]) <= tol * (1.0 + std::abs(want[i])));
  }
}

}  // namespace huddle::test
