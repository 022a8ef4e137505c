#include "engine/interpreter.h"

#include <algorithm>
#include <cstdlib>
#include <map>

#include "engine/arena_planner.h"

namespace huddle::engine {

const Tensor& PrepareContext::input(size_t i) const {
  if (!has_input(i)) fail("input " + std::to_string(i) + " is missing");
  return graph_.tensors[node().inputs[i]];
}

void PrepareContext::set_output(size_t i, DType dtype, Shape shape) const {
  // No shape an op infers may overflow the element count (a hostile model's attributes).
  constexpr int64_t kMaxElements = int64_t{1} << 40;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > kMaxElements) fail("output " + std::to_string(i) + " would have shape " + shape_text(shape));
    if (d != 0 && n > kMaxElements / d) fail("output " + std::to_string(i) + " " + shape_text(shape) + " has more than 2^40 elements");
    n *= d;
  }
  Tensor& t = output(i);
  t.dtype = dtype;
  t.shape = std::move(shape);
}

void PrepareContext::fail(const std::string& what) const {
  throw GraphError(node().describe(index_) + ": " + what);
}

const Tensor& PrepareContext::require_input(size_t i, DType dtype, int rank) const {
  const Tensor& t = input(i);
  if (t.dtype != dtype)
    fail("input " + std::to_string(i) + " '" + t.name + "' is " + dtype_text(t.dtype) + ", expected " +
         dtype_text(dtype));
  if (rank >= 0 && t.shape.size() != static_cast<size_t>(rank))
    fail("input " + std::to_string(i) + " '" + t.name + "' has shape " + shape_text(t.shape) +
         ", expected rank " + std::to_string(rank));
  return t;
}

const Tensor& PrepareContext::require_constant(size_t i, DType dtype, int rank) const {
  const Tensor& t = require_input(i, dtype, rank);
  if (!t.is_constant()) fail("input " + std::to_string(i) + " '" + t.name + "' must be a constant");
  return t;
}

Interpreter::Interpreter(Graph graph, InterpreterOptions options)
    : graph_(std::move(graph)), pool_(options.threads) {
  const size_t nodes = graph_.nodes.size(), tensors = graph_.tensors.size();

  // Each node's op, looked up once; every unknown op at once, so a converter
  // author sees the whole list.
  std::vector<const OpDef*> defs(nodes);
  std::map<std::string, std::vector<std::string>> unknown;
  for (size_t j = 0; j < nodes; ++j) {
    defs[j] = find_op(graph_.nodes[j].op);
    if (!defs[j]) unknown[graph_.nodes[j].op].push_back(graph_.nodes[j].describe(j));
  }
  if (!unknown.empty()) {
    std::string msg = "the engine has no op for " + std::to_string(unknown.size()) + " op type(s):";
    for (const auto& [op, where] : unknown)
      msg += "\n  " + op + " (" + std::to_string(where.size()) + "x, first at " + where.front() + ")";
    throw GraphError(msg);
  }

  // Prepare in order: each node sees its inputs' inferred shapes.
  std::vector<size_t> scratch(nodes, 0);
  kernels_.reserve(nodes);
  for (size_t j = 0; j < nodes; ++j) {
    const Node& node = graph_.nodes[j];
    const OpDef& def = *defs[j];
    const int n_in = static_cast<int>(node.inputs.size()), n_out = static_cast<int>(node.outputs.size());
    if (n_in < def.min_inputs || n_in > def.max_inputs)
      throw GraphError(node.describe(j) + ": has " + std::to_string(n_in) + " inputs, the op takes " +
                       std::to_string(def.min_inputs) +
                       (def.max_inputs != def.min_inputs ? " to " + std::to_string(def.max_inputs) : ""));
    if (def.outputs == kAnyOutputs ? n_out < 1 : n_out != def.outputs)
      throw GraphError(node.describe(j) + ": has " + std::to_string(n_out) + " outputs, the op makes " +
                       (def.outputs == kAnyOutputs ? std::string("1 or more") : std::to_string(def.outputs)));
    std::vector<Shape> declared;
    for (int t : node.outputs) declared.push_back(graph_.tensors[t].shape);
    PrepareContext ctx(graph_, j);
    kernels_.push_back(def.prepare(ctx));
    scratch[j] = ctx.scratch_bytes();
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      const Tensor& t = graph_.tensors[node.outputs[k]];
      if (!declared[k].empty() && declared[k] != t.shape)
        throw GraphError(node.describe(j) + ": output '" + t.name + "' is declared " +
                         shape_text(declared[k]) + " but the op computes " + shape_text(t.shape));
    }
  }

  // Lifetimes in steps: 0 = graph inputs written, j + 1 = node j runs,
  // nodes + 1 = outputs read by the caller.
  const int end = static_cast<int>(nodes) + 1;
  std::vector<int> first(tensors, -1), last(tensors, -1), producer(tensors, -1);
  for (int t : graph_.inputs) first[t] = last[t] = 0;
  for (size_t j = 0; j < nodes; ++j) {
    const int step = static_cast<int>(j) + 1;
    for (int t : graph_.nodes[j].inputs)
      if (t != kNoTensor) last[t] = std::max(last[t], step);
    for (int t : graph_.nodes[j].outputs) {
      first[t] = last[t] = step;
      producer[t] = static_cast<int>(j);
    }
  }
  // Inputs stay valid through the run (a caller may run again on the same
  // input without writing it again), outputs until the caller reads them.
  for (int t : graph_.inputs) last[t] = end;
  for (int t : graph_.outputs) last[t] = end;

  std::vector<BufferRequest> requests;
  std::vector<int> request_of(tensors, -1);
  // Requests in the order tensors appear, so an in-place output always comes
  // after the input it overwrites.
  std::vector<size_t> order;
  for (size_t t = 0; t < tensors; ++t)
    if (!graph_.tensors[t].is_constant() && first[t] >= 0) order.push_back(t);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return first[a] < first[b]; });
  for (size_t t : order) {
    const Tensor& tensor = graph_.tensors[t];
    BufferRequest r;
    r.bytes = static_cast<size_t>(elements(tensor.shape)) * dtype_bytes(tensor.dtype);
    r.first = first[t];
    r.last = last[t];
    request_of[t] = static_cast<int>(requests.size());
    requests.push_back(r);
  }
  // In place: output 0 over input 0 when the op allows it and input 0 is an
  // activation nothing reads afterwards (never a graph input or output).
  for (size_t j = 0; j < nodes; ++j) {
    const Node& node = graph_.nodes[j];
    if (!defs[j]->in_place || node.inputs.empty() || node.inputs[0] == kNoTensor) continue;
    const int in = node.inputs[0], out = node.outputs[0];
    const bool graph_io = std::count(graph_.inputs.begin(), graph_.inputs.end(), in) ||
                          std::count(graph_.outputs.begin(), graph_.outputs.end(), in);
    if (request_of[in] >= 0 && request_of[out] > request_of[in] && !graph_io &&
        last[in] == static_cast<int>(j) + 1)
      requests[request_of[out]].inplace_of = request_of[in];
  }
  // Scratch lives only while its node runs.
  scratch_offset_.assign(nodes, 0);
  std::vector<int> scratch_request(nodes, -1);
  for (size_t j = 0; j < nodes; ++j) {
    if (!scratch[j]) continue;
    scratch_request[j] = static_cast<int>(requests.size());
    requests.push_back({scratch[j], static_cast<int>(j) + 1, static_cast<int>(j) + 1, -1});
  }

  const ArenaPlan plan = plan_arena(requests, 64);
  arena_bytes_ = plan.total_bytes;
  peak_live_bytes_ = plan.peak_live_bytes;
  if (arena_bytes_) {
    arena_ = static_cast<uint8_t*>(std::aligned_alloc(64, (arena_bytes_ + 63) / 64 * 64));
    if (!arena_) throw std::bad_alloc();
  }
  data_.assign(tensors, nullptr);
  for (size_t t = 0; t < tensors; ++t) {
    if (graph_.tensors[t].is_constant())
      data_[t] = const_cast<uint8_t*>(graph_.tensors[t].data.data());
    else if (request_of[t] >= 0)
      data_[t] = arena_ + plan.offsets[request_of[t]];
  }
  for (size_t j = 0; j < nodes; ++j)
    if (scratch_request[j] >= 0) scratch_offset_[j] = plan.offsets[scratch_request[j]];
  node_inputs_.resize(nodes);
  node_outputs_.resize(nodes);
  for (size_t j = 0; j < nodes; ++j) {
    for (int t : graph_.nodes[j].inputs) node_inputs_[j].push_back(t == kNoTensor ? nullptr : data_[t]);
    for (int t : graph_.nodes[j].outputs) node_outputs_[j].push_back(data_[t]);
  }
}

Interpreter::~Interpreter() { std::free(arena_); }

void Interpreter::run() {
  for (size_t j = 0; j < kernels_.size(); ++j) {
    const RunContext ctx{node_inputs_[j], node_outputs_[j], arena_ ? arena_ + scratch_offset_[j] : nullptr,
                         &pool_};
    kernels_[j]->run(ctx);
  }
}

}  // namespace huddle::engine
