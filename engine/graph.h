// The engine's in-memory graph: tensors, nodes with attributes, graph inputs
// and outputs. Loaded from a validated .hdm file with constants left in place
// in the mapped file (zero copy); passes may add constants the graph owns.
// Also written back into a .hdm message (the model toolchain produces files
// this way).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "engine/dtype.h"
#include "engine/model_file.h"

namespace capnp {
class MessageBuilder;
}

namespace huddle::engine {

using Shape = std::vector<int64_t>;
// Number of elements of `shape` (1 for a scalar).
int64_t elements(const Shape& shape);
// "[1, 224, 224, 3]".
std::string shape_text(const Shape& shape);

// real = scale * (q - zero_point), one pair per tensor (axis -1) or per index of axis.
struct Quant {
  std::vector<float> scale;
  std::vector<int32_t> zero_point;
  int axis = -1;
  bool empty() const { return scale.empty(); }
};

struct Tensor {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  Quant quant;
  // A constant's bytes: in the mapped model file or in Graph::owned. Empty for activations.
  std::span<const uint8_t> data;

  bool is_constant() const { return data.data() != nullptr; }
  template <class T>
  std::span<const T> values() const {
    return {reinterpret_cast<const T*>(data.data()), data.size() / sizeof(T)};
  }
};

using AttrValue = std::variant<int64_t, float, std::vector<int64_t>, std::vector<float>, std::string>;

// Marks an absent optional input.
inline constexpr int kNoTensor = -1;

struct Node {
  std::string name;
  std::string op;
  std::vector<int> inputs;   // tensor indices, kNoTensor for an absent optional input
  std::vector<int> outputs;  // tensor indices
  std::map<std::string, AttrValue> attrs;

  // Typed attribute access: the value, `fallback` when absent; throws
  // GraphError naming the node and attribute when it has another type.
  int64_t attr_int(const std::string& name, int64_t fallback) const;
  float attr_float(const std::string& name, float fallback) const;
  std::vector<int64_t> attr_ints(const std::string& name, std::vector<int64_t> fallback = {}) const;
  std::vector<float> attr_floats(const std::string& name, std::vector<float> fallback = {}) const;
  std::string attr_text(const std::string& name, std::string fallback = {}) const;
  bool has_attr(const std::string& name) const { return attrs.count(name) != 0; }
  // "node 3 'conv1' (Conv)" for messages.
  std::string describe(size_t index) const;
};

// A graph that cannot be loaded, prepared or run; what() names the node or tensor.
class GraphError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Graph {
  std::vector<Tensor> tensors;
  std::vector<Node> nodes;  // in execution order
  std::vector<int> inputs;
  std::vector<int> outputs;
  std::deque<std::vector<uint8_t>> owned;  // data of constants the graph made (addresses stay put)

  // Adds a tensor and returns its index.
  int add_tensor(Tensor tensor);
  // Adds a constant whose bytes the graph owns.
  int add_constant(std::string name, DType dtype, Shape shape, std::vector<uint8_t> bytes);
  // Index of the tensor called `name`, or kNoTensor.
  int find_tensor(const std::string& name) const;
};

// The graph of a validated model file; constants point into the file, which
// must outlive the graph.
Graph graph_from_file(const ModelFile& file);

// Writes `graph` into `model`'s graph field, appending constants to `weights`.
void graph_to_model(const Graph& graph, schema::Model::Builder model, WeightsBuilder& weights);

}  // namespace huddle::engine
