#include "engine/graph.h"

#include <capnp/message.h>

#include <algorithm>

#include <cstring>
#include <sstream>

namespace huddle::engine {
namespace {

template <class T>
const T* attr_as(const Node& node, const std::string& name, const char* type) {
  const auto it = node.attrs.find(name);
  if (it == node.attrs.end()) return nullptr;
  const T* v = std::get_if<T>(&it->second);
  if (!v)
    throw GraphError("node '" + node.name + "' (" + node.op + "): attribute '" + name + "' is not " + type);
  return v;
}

template <class T, class List>
std::vector<T> to_vector(List list) {
  std::vector<T> out;
  out.reserve(list.size());
  for (T v : list) out.push_back(v);
  return out;
}

}  // namespace

int64_t elements(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_text(const Shape& shape) {
  std::ostringstream s;
  s << '[';
  for (size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
  s << ']';
  return s.str();
}

int64_t Node::attr_int(const std::string& name, int64_t fallback) const {
  const int64_t* v = attr_as<int64_t>(*this, name, "an integer");
  return v ? *v : fallback;
}
float Node::attr_float(const std::string& name, float fallback) const {
  const float* v = attr_as<float>(*this, name, "a float");
  return v ? *v : fallback;
}
std::vector<int64_t> Node::attr_ints(const std::string& name, std::vector<int64_t> fallback) const {
  const auto* v = attr_as<std::vector<int64_t>>(*this, name, "a list of integers");
  return v ? *v : fallback;
}
std::vector<float> Node::attr_floats(const std::string& name, std::vector<float> fallback) const {
  const auto* v = attr_as<std::vector<float>>(*this, name, "a list of floats");
  return v ? *v : fallback;
}
std::string Node::attr_text(const std::string& name, std::string fallback) const {
  const auto* v = attr_as<std::string>(*this, name, "text");
  return v ? *v : fallback;
}

std::string Node::describe(size_t index) const {
  return "node " + std::to_string(index) + (name.empty() ? "" : " '" + name + "'") + " (" + op + ")";
}

int Graph::add_tensor(Tensor tensor) {
  tensors.push_back(std::move(tensor));
  return static_cast<int>(tensors.size() - 1);
}

int Graph::add_constant(std::string name, DType dtype, Shape shape, std::vector<uint8_t> bytes) {
  if (bytes.size() != static_cast<size_t>(elements(shape)) * dtype_bytes(dtype))
    throw GraphError("constant '" + name + "': " + std::to_string(bytes.size()) + " bytes for shape " +
                     shape_text(shape) + " of " + dtype_text(dtype));
  owned.push_back(std::move(bytes));
  Tensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  // A zero-size constant still needs a non-null address to count as a constant.
  static const uint8_t kEmpty = 0;
  t.data =
      owned.back().empty() ? std::span<const uint8_t>(&kEmpty, 0) : std::span<const uint8_t>(owned.back());
  return add_tensor(std::move(t));
}

int Graph::find_tensor(const std::string& name) const {
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].name == name) return static_cast<int>(i);
  return kNoTensor;
}

Graph graph_from_file(const ModelFile& file) {
  const auto g = file.model().getGraph();
  Graph graph;
  const auto tensors = g.getTensors();
  graph.tensors.reserve(tensors.size());
  for (uint32_t i = 0; i < tensors.size(); ++i) {
    const auto t = tensors[i];
    Tensor out;
    out.name = t.getName().cStr();
    out.dtype = static_cast<DType>(t.getDtype());  // the file's validator accepted only known dtypes
    for (int64_t d : t.getShape()) out.shape.push_back(d);
    for (float s : t.getQuant().getScale()) out.quant.scale.push_back(s);
    for (int32_t z : t.getQuant().getZeroPoint()) out.quant.zero_point.push_back(z);
    out.quant.zero_point.resize(out.quant.scale.size());  // stored without: all zero
    out.quant.axis = t.getQuant().getAxis();
    if (t.getDataLength() > 0) out.data = file.tensor_data(i);
    graph.tensors.push_back(std::move(out));
  }
  for (auto n : g.getNodes()) {
    Node node;
    node.name = n.getName().cStr();
    node.op = n.getOp().cStr();
    for (uint32_t id : n.getInputs())
      node.inputs.push_back(id == kAbsentInput ? kNoTensor : static_cast<int>(id));
    for (uint32_t id : n.getOutputs()) node.outputs.push_back(static_cast<int>(id));
    for (auto a : n.getAttributes()) {
      AttrValue v;
      switch (a.which()) {
        case schema::Attribute::INT:
          v = a.getInt();
          break;
        case schema::Attribute::FLOAT:
          v = a.getFloat();
          break;
        case schema::Attribute::INTS:
          v = to_vector<int64_t>(a.getInts());
          break;
        case schema::Attribute::FLOATS:
          v = to_vector<float>(a.getFloats());
          break;
        case schema::Attribute::TEXT:
          v = std::string(a.getText().cStr());
          break;
        default:
          throw GraphError(file.name() + ": attribute '" + std::string(a.getName().cStr()) + "' of node '" +
                           node.name + "' has a value kind this build does not know");
      }
      if (!node.attrs.emplace(a.getName().cStr(), std::move(v)).second)
        throw GraphError(file.name() + ": node '" + node.name + "' has attribute '" + a.getName().cStr() +
                         "' twice");
    }
    graph.nodes.push_back(std::move(node));
  }
  for (uint32_t id : g.getInputs()) graph.inputs.push_back(static_cast<int>(id));
  for (uint32_t id : g.getOutputs()) graph.outputs.push_back(static_cast<int>(id));
  return graph;
}

void graph_to_model(const Graph& graph, schema::Model::Builder model, WeightsBuilder& weights) {
  auto g = model.initGraph();
  auto tensors = g.initTensors(static_cast<unsigned>(graph.tensors.size()));
  for (size_t i = 0; i < graph.tensors.size(); ++i) {
    const Tensor& t = graph.tensors[i];
    auto out = tensors[static_cast<unsigned>(i)];
    out.setName(t.name);
    out.setDtype(static_cast<schema::DType>(t.dtype));
    auto shape = out.initShape(static_cast<unsigned>(t.shape.size()));
    for (size_t d = 0; d < t.shape.size(); ++d) shape.set(static_cast<unsigned>(d), t.shape[d]);
    if (!t.quant.empty()) {
      auto q = out.initQuant();
      auto s = q.initScale(static_cast<unsigned>(t.quant.scale.size()));
      for (size_t k = 0; k < t.quant.scale.size(); ++k) s.set(static_cast<unsigned>(k), t.quant.scale[k]);
      // All-zero zero points (symmetric weights, biases) are left out.
      if (std::any_of(t.quant.zero_point.begin(), t.quant.zero_point.end(), [](int32_t v) { return v != 0; })) {
        auto z = q.initZeroPoint(static_cast<unsigned>(t.quant.zero_point.size()));
        for (size_t k = 0; k < t.quant.zero_point.size(); ++k)
          z.set(static_cast<unsigned>(k), t.quant.zero_point[k]);
      }
      q.setAxis(t.quant.axis);
    }
    if (t.is_constant() && !t.data.empty()) {
      out.setDataOffset(weights.append(t.data));
      out.setDataLength(t.data.size());
    }
  }
  auto nodes = g.initNodes(static_cast<unsigned>(graph.nodes.size()));
  for (size_t j = 0; j < graph.nodes.size(); ++j) {
    const Node& n = graph.nodes[j];
    auto out = nodes[static_cast<unsigned>(j)];
    out.setName(n.name);
    out.setOp(n.op);
    auto ins = out.initInputs(static_cast<unsigned>(n.inputs.size()));
    for (size_t k = 0; k < n.inputs.size(); ++k)
      ins.set(static_cast<unsigned>(k),
              n.inputs[k] == kNoTensor ? kAbsentInput : static_cast<uint32_t>(n.inputs[k]));
    auto outs = out.initOutputs(static_cast<unsigned>(n.outputs.size()));
    for (size_t k = 0; k < n.outputs.size(); ++k)
      outs.set(static_cast<unsigned>(k), static_cast<uint32_t>(n.outputs[k]));
    auto attrs = out.initAttributes(static_cast<unsigned>(n.attrs.size()));
    unsigned k = 0;
    for (const auto& [name, value] : n.attrs) {
      auto a = attrs[k++];
      a.setName(name);
      if (const auto* v = std::get_if<int64_t>(&value))
        a.setInt(*v);
      else if (const auto* f = std::get_if<float>(&value))
        a.setFloat(*f);
      else if (const auto* vs = std::get_if<std::vector<int64_t>>(&value)) {
        auto l = a.initInts(static_cast<unsigned>(vs->size()));
        for (size_t e = 0; e < vs->size(); ++e) l.set(static_cast<unsigned>(e), (*vs)[e]);
      } else if (const auto* fs = std::get_if<std::vector<float>>(&value)) {
        auto l = a.initFloats(static_cast<unsigned>(fs->size()));
        for (size_t e = 0; e < fs->size(); ++e) l.set(static_cast<unsigned>(e), (*fs)[e]);
      } else {
        a.setText(std::get<std::string>(value));
      }
    }
  }
  auto ins = g.initInputs(static_cast<unsigned>(graph.inputs.size()));
  for (size_t k = 0; k < graph.inputs.size(); ++k)
    ins.set(static_cast<unsigned>(k), static_cast<uint32_t>(graph.inputs[k]));
  auto outs = g.initOutputs(static_cast<unsigned>(graph.outputs.size()));
  for (size_t k = 0; k < graph.outputs.size(); ++k)
    outs.set(static_cast<unsigned>(k), static_cast<uint32_t>(graph.outputs[k]));
}

}  // namespace huddle::engine
