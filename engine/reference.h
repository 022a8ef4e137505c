// The reference executor: runs a graph op by op with plain code on Eigen,
// written for clarity and independent of kernels/ and engine/ops (it shares
// only the graph types). It is the oracle the engine, the quantiser's
// calibration and the fidelity reports are checked against.
//
// Every tensor is held as its real values in fp32. Every op computes in
// double (convolutions, matrix products, pooling and reductions accumulate in
// double) and rounds its result to fp32 once, so each tensor is its op's
// result on its inputs to double precision, then rounded. Single-threaded; a
// MobileNetV2-size layer takes tens of ms. Attribute semantics are those
// documented at the top of engine/ops/*.cc; Softmax also takes any axis, and
// Conv2D / FullyConnected weights need not be constants.
//
// int8 graphs (engine/INT8.md "Reference"): activations are f32 or i8
// quantised per tensor; constants may be f32, f16, i8 / i32 (dequantised by
// their quantisation, per tensor or per index of its axis) or u8 (dequantised,
// or without a quantisation its integers: codebook indices, which
// CodebookFullyConnected expands through its table). An i8 activation is put
// on its grid as soon as it is made (after the fused activation: round half
// to even, saturate to [-128, 127]) and everything else, `run`'s inputs and
// outputs and what `observe` sees included, deals in its real values: an i8
// graph input is given real values and put on its grid, an i8 graph output
// is returned dequantised. Quantize and Dequantize are thus the identity.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "engine/graph.h"

namespace huddle::engine {

class ReferenceExecutor {
 public:
  // Copies what it needs from `graph` (the graph may go away afterwards),
  // checks it and infers every tensor's shape. Throws GraphError naming the
  // node or tensor for an unknown op, a wrong number of inputs or outputs, a
  // tensor of a type it does not run (or an i8 / i32 one without a fitting
  // quantisation), a tensor read before anything makes it, a bad attribute,
  // or a declared shape that contradicts the inferred one.
  explicit ReferenceExecutor(const Graph& graph);

  // Called with each activation's values (valid during the call only): the
  // graph inputs first, then every node output as soon as its node has run.
  using Observer = std::function<void(int tensor, std::span<const float> values)>;

  // Runs the graph on `inputs` (graph input order, each as many values as its
  // shape) and returns the outputs in graph output order. Throws GraphError
  // for a wrong number or size of inputs. Safe to call from several threads.
  std::vector<std::vector<float>> run(const std::vector<std::span<const float>>& inputs,
                                      const Observer& observe = {}) const;

  const std::vector<int>& inputs() const { return inputs_; }
  const std::vector<int>& outputs() const { return outputs_; }
  // Name and shape of tensor `tensor` (an index into the graph's tensors).
  const std::string& name(int tensor) const { return names_[static_cast<size_t>(tensor)]; }
  const Shape& shape(int tensor) const { return shapes_[static_cast<size_t>(tensor)]; }

  // Every op the reference runs, sorted.
  static std::vector<std::string> op_names();

  struct Op;  // an entry of the op table (defined in reference.cc)

 private:
  struct Step {
    const Op* op;
    size_t index;  // in the graph's nodes, for messages
    Node node;
    std::vector<int> last_reads;  // activations nothing reads after this step
  };
  std::vector<Step> steps_;
  std::vector<std::string> names_;
  std::vector<Shape> shapes_;
  std::vector<std::vector<float>> constants_;  // values of constants by tensor, empty for activations
  std::vector<bool> constant_;
  std::vector<int> inputs_, outputs_;
  // The int8 grid of each i8 activation (scale 0 for the others).
  struct Grid {
    float scale = 0;
    int32_t zero_point = 0;
  };
  std::vector<Grid> grids_;
  // Puts `values` of tensor `tensor` on its grid, if it has one.
  void on_grid(int tensor, std::span<float> values) const;
};

}  // namespace huddle::engine
