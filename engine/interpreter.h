// Runs a graph: prepares every node once (shape inference, packed weights,
// kernel variants), plans one activation arena from tensor lifetimes, then
// runs without allocating.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "engine/graph.h"
#include "engine/op.h"
#include "engine/thread_pool.h"

namespace huddle::engine {

struct InterpreterOptions {
  size_t threads = 1;  // 0: one per available core
};

class Interpreter {
 public:
  // Takes the graph (its constants must stay valid: keep the ModelFile alive).
  // Throws GraphError naming the node for an unknown op, a wrong number of
  // inputs, a bad attribute, or a declared shape that contradicts the inferred one.
  Interpreter(Graph graph, InterpreterOptions options = {});
  ~Interpreter();

  const Graph& graph() const { return graph_; }
  size_t input_count() const { return graph_.inputs.size(); }
  size_t output_count() const { return graph_.outputs.size(); }
  const Tensor& input(size_t i) const { return graph_.tensors[graph_.inputs[i]]; }
  const Tensor& output(size_t i) const { return graph_.tensors[graph_.outputs[i]]; }
  // Where to write input i before run() (its shape's bytes, in the arena).
  // run() never overwrites the inputs: running again without writing them
  // gives the same outputs.
  void* input_data(size_t i) { return data_[graph_.inputs[i]]; }
  // Output i after run().
  const void* output_data(size_t i) const { return data_[graph_.outputs[i]]; }

  void run();

  size_t arena_bytes() const { return arena_bytes_; }
  // The arena's lower bound: the most activation bytes alive at one step.
  size_t peak_live_bytes() const { return peak_live_bytes_; }

 private:
  Graph graph_;
  ThreadPool pool_;
  std::vector<std::unique_ptr<OpKernel>> kernels_;
  std::vector<size_t> scratch_offset_;
  std::vector<void*> data_;  // per tensor: arena slot or constant bytes
  std::vector<std::vector<const void*>> node_inputs_;
  std::vector<std::vector<void*>> node_outputs_;
  uint8_t* arena_ = nullptr;
  size_t arena_bytes_ = 0, peak_live_bytes_ = 0;
};

}  // namespace huddle::engine
