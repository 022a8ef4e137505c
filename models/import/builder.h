// The engine graph an importer builds, node by node: unique names, constants
// from host tensors, and nodes whose outputs' shapes the engine op's prepare
// infers as they are added. Internal to models/import/.
#pragma once

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/op.h"
#include "models/import/host.h"

namespace huddle::models::importing {

using Attrs = std::map<std::string, engine::AttrValue>;

class GraphBuilder {
 protected:
  // `base`, or `base#k` when the name is taken (tensor names: names_; node names: node_names_).
  std::string unique_name(const std::string& base) { return unique_in(names_, base); }
  static std::string unique_in(std::set<std::string>& names, const std::string& base) {
    std::string name = base;
    for (int k = 1; names.count(name); ++k) name = base + "#" + std::to_string(k);
    names.insert(name);
    return name;
  }
  // A constant of the engine graph: float, or int64 (which only a graph
  // output can be: every engine op that computes takes float).
  int add_constant(const std::string& base, const Host& h) {
    if (h.is_float)
      return graph_.add_constant(unique_name(base), engine::DType::f32, h.shape, float_bytes(h.f));
    std::vector<uint8_t> bytes(h.i.size() * sizeof(int64_t));
    if (!bytes.empty()) std::memcpy(bytes.data(), h.i.data(), bytes.size());
    return graph_.add_constant(unique_name(base), engine::DType::i64, h.shape, std::move(bytes));
  }
  // Appends a node and infers its outputs' shapes with the engine op's
  // prepare; on failure removes it again and throws Unsupported with the reason.
  std::vector<int> add_node(const std::string& op, const std::string& name, std::vector<int> inputs, Attrs attrs,
                            std::vector<std::string> out_names) {
    engine::Node node;
    node.name = unique_in(node_names_, name);
    node.op = op;
    node.inputs = std::move(inputs);
    node.attrs = std::move(attrs);
    const size_t first_tensor = graph_.tensors.size();
    for (auto& o : out_names) {
      engine::Tensor t;
      t.name = unique_name(o);
      node.outputs.push_back(graph_.add_tensor(t));
    }
    graph_.nodes.push_back(std::move(node));
    const engine::OpDef* def = engine::find_op(op);
    engine::PrepareContext ctx(graph_, graph_.nodes.size() - 1);
    try {
      if (!def) throw engine::GraphError("the engine has no op " + op);
      def->prepare(ctx);
    } catch (const std::exception& e) {
      for (const int t : graph_.nodes.back().outputs) names_.erase(graph_.tensors[static_cast<size_t>(t)].name);
      node_names_.erase(graph_.nodes.back().name);
      graph_.nodes.pop_back();
      graph_.tensors.resize(first_tensor);
      unsupported(e.what());
    }
    return graph_.nodes.back().outputs;
  }
  int add_node1(const std::string& op, const std::string& name, std::vector<int> inputs, Attrs attrs = {}) {
    return add_node(op, name, std::move(inputs), std::move(attrs), {name})[0];
  }
  // Makes tensor `t` the next graph output, named `name`. A tensor named
  // otherwise (an alias: Identity), a constant, or one that is already an
  // input or output (`taken`) is first copied into a tensor of its own (a
  // Reshape to the same shape); any other tensor of that name gives it up.
  void add_output(int t, const std::string& name, std::set<int>& taken) {
    const engine::Tensor& tensor = graph_.tensors[static_cast<size_t>(t)];
    if (tensor.name != name || taken.count(t) || tensor.is_constant()) {
      if (names_.count(name)) {
        for (auto& other : graph_.tensors)
          if (other.name == name) other.name = unique_name(name + "/src");
        names_.erase(name);
      }
      t = add_node1("Reshape", name, {t}, {{"shape", engine_shape(t)}});
    }
    taken.insert(t);
    graph_.outputs.push_back(t);
  }
  const Shape& engine_shape(int t) const { return graph_.tensors[static_cast<size_t>(t)].shape; }
  const std::string& tensor_name(int t) const { return graph_.tensors[static_cast<size_t>(t)].name; }

  engine::Graph graph_;
  std::set<std::string> names_, node_names_;
};

}  // namespace huddle::models::importing
