// The fp32 reference executor: runs a graph op by op with plain code on
// Eigen, written for clarity and independent of kernels/ and engine/ops (it
// shares only the graph types). It is the oracle the engine, the quantiser's
// calibration and the fidelity reports are checked against.
//
// Every op computes in double (convolutions, matrix products, pooling and
// reductions accumulate in double) and rounds its result to fp32 once, so
// each tensor is its op's result on its fp32 inputs to double precision,
// then rounded. Single-threaded; a MobileNetV2-size layer takes tens of ms.
// Attribute semantics are those documented at the top of engine/ops/*.cc;
// Softmax also takes any axis, and Conv2D / FullyConnected weights need not
// be constants.
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
  // tensor that is not fp32, a tensor read before anything makes it, a bad
  // attribute, or a declared shape that contradicts the inferred one.
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
};

}  // namespace huddle::engine
