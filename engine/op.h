// The op interface of the engine. Every op has a prepare step (validate its
// inputs and attributes, compute its outputs' shapes and types, pack weights,
// ask for scratch memory) and a run step that allocates nothing. Ops are
// found by name in one registry (engine/ops/registry.cc).
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/graph.h"
#include "engine/thread_pool.h"

namespace huddle::engine {

// What a prepared node gets when it runs: one data pointer per node input
// (nullptr for an absent optional input) and per output, its scratch memory,
// and the thread pool to split its work over.
struct RunContext {
  std::span<const void* const> inputs;
  std::span<void* const> outputs;
  void* scratch = nullptr;
  ThreadPool* pool = nullptr;

  template <class T>
  const T* in(size_t i) const {
    return static_cast<const T*>(inputs[i]);
  }
  template <class T>
  T* out(size_t i) const {
    return static_cast<T*>(outputs[i]);
  }
};

// A node after prepare: holds what it packed, runs without allocating.
class OpKernel {
 public:
  virtual ~OpKernel() = default;
  virtual void run(const RunContext& ctx) const = 0;
};

// What prepare sees: the node, its input tensors (shapes known), its output
// tensors to fill in.
class PrepareContext {
 public:
  PrepareContext(Graph& graph, size_t node_index) : graph_(graph), index_(node_index) {}

  const Node& node() const { return graph_.nodes[index_]; }
  size_t inputs() const { return node().inputs.size(); }
  bool has_input(size_t i) const { return i < inputs() && node().inputs[i] != kNoTensor; }
  const Tensor& input(size_t i) const;
  Tensor& output(size_t i) const { return graph_.tensors[node().outputs[i]]; }
  // Sets output i's type and shape.
  void set_output(size_t i, DType dtype, Shape shape) const;
  // Asks for `bytes` of scratch memory for run().
  void request_scratch(size_t bytes) { scratch_bytes_ = bytes; }
  size_t scratch_bytes() const { return scratch_bytes_; }

  // Throws GraphError "node 3 'conv1' (Conv2D): <what>".
  [[noreturn]] void fail(const std::string& what) const;
  // Fails unless input i is present and of `dtype` with `rank` dimensions (rank < 0: any).
  const Tensor& require_input(size_t i, DType dtype, int rank = -1) const;
  // Fails unless input i is present and a constant.
  const Tensor& require_constant(size_t i, DType dtype, int rank = -1) const;

 private:
  Graph& graph_;
  size_t index_;
  size_t scratch_bytes_ = 0;
};

// OpDef::outputs of an op that makes as many outputs as its node lists (at least one).
inline constexpr int kAnyOutputs = -1;

struct OpDef {
  const char* name;
  int min_inputs, max_inputs;  // counting absent optional inputs
  int outputs;                 // kAnyOutputs: one or more (the node decides, e.g. Split)
  // May write output 0 over input 0 (same size) when nothing reads input 0 later.
  bool in_place;
  std::unique_ptr<OpKernel> (*prepare)(PrepareContext& ctx);
};

// The op called `name`, or nullptr.
const OpDef* find_op(std::string_view name);
// Every op name the engine runs, sorted.
std::vector<std::string> op_names();

}  // namespace huddle::engine
