#include "models/import/tfjs.h"

#include <capnp/compat/json.h>
#include <capnp/message.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "engine/passes.h"
#include "models/import/builder.h"
#include "models/import/host.h"

namespace huddle::models {
namespace {

using namespace importing;
using engine::Shape;
using Json = capnp::JsonValue::Reader;

// Limits on what a model.json may ask for (the file comes from outside).
constexpr size_t kMaxJsonBytes = size_t{256} << 20;
constexpr uint64_t kMaxWeightBytes = uint64_t{2} << 30;
constexpr size_t kMaxRank = 8;
// Values computed at import time (shape arithmetic) are small; a larger one
// is refused rather than built in memory.
constexpr int64_t kMaxHostElements = int64_t{1} << 24;

int64_t host_elements(const Shape& shape, const std::string& what) {
  const int64_t n = checked_elements(shape, what);
  if (n > kMaxHostElements)
    unsupported(what + " " + shape_text(shape) + " is too large to compute at import time");
  return n;
}

// ---------------------------------------------------------------- JSON access

std::optional<Json> member(Json v, const char* key) {
  if (!v.isObject()) return std::nullopt;
  for (auto f : v.getObject())
    if (f.getName() == key) return f.getValue();
  return std::nullopt;
}

std::string text_of(Json v, const std::string& what) {
  if (!v.isString()) unsupported(what + " is not a string");
  return v.getString();
}

// An integer given as a JSON number or as a decimal string (protobuf's JSON form of int64).
int64_t int_of(Json v, const std::string& what) {
  if (v.isNumber()) {
    const double d = v.getNumber();
    if (!(d >= -9.0e15 && d <= 9.0e15) || d != std::floor(d)) unsupported(what + " is not an integer");
    return static_cast<int64_t>(d);
  }
  if (v.isString()) {
    const std::string s = v.getString();
    char* end = nullptr;
    errno = 0;
    const long long x = std::strtoll(s.c_str(), &end, 10);
    if (s.empty() || *end || errno) unsupported(what + " '" + s + "' is not an integer");
    return x;
  }
  unsupported(what + " is not an integer");
}

float float_of(Json v, const std::string& what) {
  if (v.isNumber()) return static_cast<float>(v.getNumber());
  if (v.isString()) {
    const std::string s = v.getString();
    if (s == "NaN") return std::numeric_limits<float>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<float>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<float>::infinity();
  }
  unsupported(what + " is not a number");
}

std::string base64_decode(const std::string& in, const std::string& what) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else if (c == '=') break;
    else unsupported(what + " is not base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xffu));
    }
  }
  return out;
}

// A node's attributes (TF's AttrValue in protobuf's JSON form).
class NodeAttrs {
 public:
  explicit NodeAttrs(std::optional<Json> attr) : attr_(attr) {}
  std::optional<Json> get(const char* name) const { return attr_ ? member(*attr_, name) : std::nullopt; }
  bool has(const char* name) const { return get(name).has_value(); }
  int64_t i(const char* name, int64_t fallback) const {
    auto v = get(name);
    if (!v) return fallback;
    auto x = member(*v, "i");
    return x ? int_of(*x, attr_what(name)) : fallback;
  }
  float f(const char* name, float fallback) const {
    auto v = get(name);
    if (!v) return fallback;
    auto x = member(*v, "f");
    return x ? float_of(*x, attr_what(name)) : fallback;
  }
  bool b(const char* name, bool fallback) const {
    auto v = get(name);
    if (!v) return fallback;
    auto x = member(*v, "b");
    if (!x) return fallback;
    if (!x->isBoolean()) unsupported(attr_what(name) + " is not a boolean");
    return x->getBoolean();
  }
  std::string s(const char* name, const std::string& fallback) const {
    auto v = get(name);
    if (!v) return fallback;
    auto x = member(*v, "s");
    return x ? base64_decode(text_of(*x, attr_what(name)), attr_what(name)) : fallback;
  }
  std::string type(const char* name) const {
    auto v = get(name);
    if (!v) return "";
    auto x = member(*v, "type");
    return x ? text_of(*x, attr_what(name)) : "";
  }
  std::vector<int64_t> ints(const char* name, std::vector<int64_t> fallback) const {
    auto list = list_of(name, "i");
    if (!list) return fallback;
    std::vector<int64_t> out;
    for (auto x : list->getArray()) out.push_back(int_of(x, attr_what(name)));
    return out;
  }
  std::vector<std::string> strings(const char* name) const {
    auto list = list_of(name, "s");
    std::vector<std::string> out;
    if (list)
      for (auto x : list->getArray()) out.push_back(base64_decode(text_of(x, attr_what(name)), attr_what(name)));
    return out;
  }
  // A "shape" attribute's dims (-1 unknown); nullopt when absent or of unknown rank.
  std::optional<Shape> shape(const char* name) const {
    auto v = get(name);
    if (!v) return std::nullopt;
    auto sh = member(*v, "shape");
    if (!sh || member(*sh, "unknownRank")) return std::nullopt;
    Shape out;
    if (auto dims = member(*sh, "dim")) {
      if (!dims->isArray()) unsupported(attr_what(name) + " has no dim list");
      for (auto d : dims->getArray()) {
        auto size = member(d, "size");
        out.push_back(size ? int_of(*size, attr_what(name)) : 0);
      }
    }
    return out;
  }

 private:
  static std::string attr_what(const char* name) { return std::string("attribute '") + name + "'"; }
  std::optional<Json> list_of(const char* name, const char* kind) const {
    auto v = get(name);
    if (!v) return std::nullopt;
    auto list = member(*v, "list");
    if (!list) return std::nullopt;
    auto x = member(*list, kind);
    if (!x) return std::nullopt;  // an empty list
    if (!x->isArray()) unsupported(attr_what(name) + " is not a list");
    return x;
  }
  std::optional<Json> attr_;
};

// ---------------------------------------------------------------- values

struct Value {
  enum class Kind { bad, host, engine } kind = Kind::bad;
  Host host;       // kind host
  int tensor = -1;  // kind engine
  Shape shape;
};

Value host_value(Host h) {
  Value v;
  v.kind = Value::Kind::host;
  v.shape = h.shape;
  v.host = std::move(h);
  return v;
}

Value engine_value(int tensor, Shape shape) {
  Value v;
  v.kind = Value::Kind::engine;
  v.tensor = tensor;
  v.shape = std::move(shape);
  return v;
}

int64_t norm_axis(int64_t axis, size_t rank, const std::string& what) {
  const auto r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= std::max<int64_t>(r, 1))
    unsupported(what + " " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  return axis < 0 ? axis + r : axis;
}

// "name:k" -> (name, k); "name" -> (name, 0).
std::pair<std::string, int> split_ref(const std::string& ref) {
  const size_t colon = ref.rfind(':');
  if (colon != std::string::npos && colon + 1 < ref.size() &&
      std::all_of(ref.begin() + static_cast<std::ptrdiff_t>(colon) + 1, ref.end(),
                  [](char c) { return c >= '0' && c <= '9'; }) &&
      ref.size() - colon <= 6)
    return {ref.substr(0, colon), std::stoi(ref.substr(colon + 1))};
  return {ref, 0};
}

std::string key_of(const std::string& name, int k) { return k == 0 ? name : name + ":" + std::to_string(k); }

// ---------------------------------------------------------------- weights

struct WeightSpec {
  std::string name, dtype, quant;  // quant: "", "float16", "uint8", "uint16"
  Shape shape;
  float scale = 1, min = 0;
  size_t group = 0;
  uint64_t offset = 0, bytes = 0;  // within the group's concatenated shards
};

uint64_t element_bytes(const std::string& dtype, const std::string& quant, const std::string& what) {
  if (quant == "float16" || quant == "uint16") return 2;
  if (quant == "uint8") return 1;
  if (!quant.empty()) unsupported(what + " is quantised as '" + quant + "' (float16, uint8, uint16 are known)");
  if (dtype == "float32" || dtype == "int32") return 4;
  if (dtype == "bool") return 1;
  unsupported(what + " has dtype '" + dtype + "' (float32, int32, bool are known)");
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

Host decode_weight(const WeightSpec& w, const uint8_t* p) {
  const auto n = static_cast<size_t>(engine::elements(w.shape));
  if (w.quant == "float16") {
    std::vector<float> f(n);
    for (size_t k = 0; k < n; ++k) f[k] = half_to_float(load<uint16_t>(p + 2 * k));
    return Host::floats(w.shape, std::move(f));
  }
  if (w.quant == "uint8" || w.quant == "uint16") {
    std::vector<float> f(n);
    for (size_t k = 0; k < n; ++k) {
      const float q = w.quant == "uint8" ? p[k] : load<uint16_t>(p + 2 * k);
      f[k] = w.min + w.scale * q;
    }
    if (w.dtype == "int32") {
      std::vector<int64_t> i(n);
      for (size_t k = 0; k < n; ++k) i[k] = static_cast<int64_t>(std::lround(f[k]));
      return Host::ints(w.shape, std::move(i));
    }
    return Host::floats(w.shape, std::move(f));
  }
  if (w.dtype == "float32") {
    std::vector<float> f(n);
    if (n) std::memcpy(f.data(), p, n * 4);
    return Host::floats(w.shape, std::move(f));
  }
  std::vector<int64_t> i(n);
  for (size_t k = 0; k < n; ++k) i[k] = w.dtype == "int32" ? load<int32_t>(p + 4 * k) : (p[k] != 0);
  return Host::ints(w.shape, std::move(i));
}

// ---------------------------------------------------------------- importer

struct TfNode {
  std::string name, op;
  std::vector<std::string> inputs;  // data inputs, "name" or "name:k" (control inputs dropped)
  std::optional<Json> attr;
};

class Importer : GraphBuilder {
 public:
  Importer(Json root, std::string name, const ShardReader& read_shard, const ImportOptions& options)
      : root_(root), name_(std::move(name)), read_shard_(read_shard), options_(options) {}
  ImportResult run();

  using Handler = void (Importer::*)(const TfNode&, const NodeAttrs&);
  struct OpEntry {
    TfjsOpSupport support;
    Handler handler;
  };
  static const std::vector<OpEntry>& table();

 private:
  [[noreturn]] void fail(const std::string& what) const { throw ImportError(name_ + ": " + what); }
  void read_topology();
  void read_weights();
  std::vector<std::string> default_outputs() const;
  std::vector<size_t> order_for(const std::vector<std::string>& outputs);
  void set_graph_outputs(const std::vector<std::string>& outputs);

  // --- values
  Value& input(const TfNode& n, size_t i) {
    if (i >= n.inputs.size()) unsupported("input " + std::to_string(i) + " is missing");
    auto [src, k] = split_ref(n.inputs[i]);
    auto it = values_.find(key_of(src, k));
    if (it == values_.end()) unsupported("input '" + n.inputs[i] + "' is not produced by its node");
    return it->second;
  }
  const Host& constant(const TfNode& n, size_t i, const char* what) {
    Value& v = input(n, i);
    if (v.kind != Value::Kind::host)
      unsupported(std::string(what) + " (input " + std::to_string(i) + " '" + n.inputs[i] + "') must be a constant");
    return v.host;
  }
  void set_output(const TfNode& n, int k, Value v) { values_[key_of(n.name, k)] = std::move(v); }
  int tensor_of(Value& v, const std::string& hint) {
    if (v.kind == Value::Kind::engine) return v.tensor;
    if (v.kind == Value::Kind::host) {
      if (!v.host.is_float) unsupported("an integer tensor '" + hint + "' feeds an op that computes");
      return add_constant(hint, v.host);
    }
    unsupported("'" + hint + "' has no value");
  }
  Value unary_op(const std::string& op, Value& x, const std::string& name, Attrs attrs = {}) {
    return engine_value(add_node1(op, name, {tensor_of(x, name + "/x")}, std::move(attrs)), x.shape);
  }
  Value binary(const std::string& op, Value& a, Value& b, const std::string& name);
  Value reshape(Value& x, Shape shape, const std::string& name) {
    checked_elements(shape, "the new shape");
    if (engine::elements(shape) != engine::elements(x.shape))
      unsupported("cannot reshape " + shape_text(x.shape) + " to " + shape_text(shape));
    if (x.kind == Value::Kind::host) {
      Host h = x.host;
      h.shape = shape;
      return host_value(std::move(h));
    }
    if (shape == x.shape) return x;
    return engine_value(add_node1("Reshape", name, {tensor_of(x, name)}, {{"shape", shape}}), shape);
  }
  // The activation `op` (Relu, Relu6, LeakyRelu, Sigmoid, Elu, ...) on x.
  Value activation(const std::string& op, Value& x, const NodeAttrs& a, const std::string& name);

  // --- handlers
  void placeholder(const TfNode&, const NodeAttrs&);
  void constant_node(const TfNode&, const NodeAttrs&);
  void identity(const TfNode&, const NodeAttrs&);
  void conv(const TfNode&, const NodeAttrs&);
  void matmul(const TfNode&, const NodeAttrs&);
  void bias_add(const TfNode&, const NodeAttrs&);
  void elementwise(const TfNode&, const NodeAttrs&);
  void unary(const TfNode&, const NodeAttrs&);
  void softmax(const TfNode&, const NodeAttrs&);
  void reduce(const TfNode&, const NodeAttrs&);
  void pool(const TfNode&, const NodeAttrs&);
  void concat(const TfNode&, const NodeAttrs&);
  void pack(const TfNode&, const NodeAttrs&);
  void reshape_op(const TfNode&, const NodeAttrs&);
  void squeeze(const TfNode&, const NodeAttrs&);
  void expand_dims(const TfNode&, const NodeAttrs&);
  void transpose(const TfNode&, const NodeAttrs&);
  void pad(const TfNode&, const NodeAttrs&);
  void resize(const TfNode&, const NodeAttrs&);
  void split(const TfNode&, const NodeAttrs&);
  void strided_slice(const TfNode&, const NodeAttrs&);
  void slice(const TfNode&, const NodeAttrs&);
  void shape_op(const TfNode&, const NodeAttrs&);
  void cast(const TfNode&, const NodeAttrs&);
  void fill(const TfNode&, const NodeAttrs&);
  void gather(const TfNode&, const NodeAttrs&);
  void sparse_to_dense(const TfNode&, const NodeAttrs&);
  void range(const TfNode&, const NodeAttrs&);
  void host_unary(const TfNode&, const NodeAttrs&);

  Json root_;
  std::string name_;
  const ShardReader& read_shard_;
  ImportOptions options_;
  std::vector<TfNode> nodes_;
  std::map<std::string, size_t> by_name_;
  std::map<std::string, WeightSpec> weights_;
  std::vector<std::vector<uint8_t>> groups_;  // each manifest group's concatenated shards
  std::map<std::string, Value> values_;       // "name" or "name:k" -> value
  std::vector<std::string> problems_;
  std::string producer_;
};

// ---------------------------------------------------------------- reading

void Importer::read_topology() {
  if (!root_.isObject()) fail("not a TensorFlow.js model (the JSON is not an object)");
  if (auto format = member(root_, "format")) {
    const std::string f = format->isString() ? std::string(format->getString()) : "";
    if (f == "layers-model")
      fail("a TensorFlow.js layers model (Keras); only graph models are supported (convert it with "
           "tensorflowjs_converter --output_format=tfjs_graph_model)");
    if (f != "graph-model") fail("format '" + f + "' is not 'graph-model'");
  }
  for (const char* key : {"generatedBy", "convertedBy"})
    if (auto v = member(root_, key); v && v->isString())
      producer_ += (producer_.empty() ? "" : ", ") + std::string(key) + " " + std::string(v->getString());
  auto topo = member(root_, "modelTopology");
  if (!topo || !topo->isObject()) fail("no modelTopology object");
  if (auto lib = member(*topo, "library"))
    if (auto fns = member(*lib, "function"); fns && fns->isArray() && fns->getArray().size() > 0)
      fail("the graph has " + std::to_string(fns->getArray().size()) +
           " functions (control flow); only plain graphs are supported");
  auto list = member(*topo, "node");
  if (!list || !list->isArray()) fail("modelTopology has no node list");
  for (auto n : list->getArray()) {
    TfNode node;
    auto name = member(n, "name");
    auto op = member(n, "op");
    if (!name || !name->isString() || !op || !op->isString())
      fail("node " + std::to_string(nodes_.size()) + " has no name or op");
    node.name = name->getString();
    node.op = op->getString();
    if (node.name.empty()) fail("node " + std::to_string(nodes_.size()) + " has an empty name");
    if (auto in = member(n, "input")) {
      if (!in->isArray()) fail("node '" + node.name + "': input is not a list");
      for (auto i : in->getArray()) {
        if (!i.isString()) fail("node '" + node.name + "': an input is not a string");
        std::string ref = i.getString();
        if (!ref.empty() && ref[0] != '^') node.inputs.push_back(ref);
      }
    }
    node.attr = member(n, "attr");
    if (!by_name_.emplace(node.name, nodes_.size()).second) fail("two nodes are named '" + node.name + "'");
    nodes_.push_back(std::move(node));
  }
}

void Importer::read_weights() {
  auto manifest = member(root_, "weightsManifest");
  if (!manifest) return;
  if (!manifest->isArray()) fail("weightsManifest is not a list");
  uint64_t total = 0;
  for (auto group : manifest->getArray()) {
    const size_t g = groups_.size();
    const std::string gwhat = "weightsManifest group " + std::to_string(g);
    std::vector<uint8_t> data;
    auto paths = member(group, "paths");
    if (!paths || !paths->isArray()) fail(gwhat + " has no paths");
    for (auto p : paths->getArray()) {
      if (!p.isString()) fail(gwhat + ": a path is not a string");
      const std::string path = p.getString();
      if (path.empty() || path[0] == '/' || path.find("..") != std::string::npos)
        fail(gwhat + ": shard path '" + path + "' is not a relative path inside the model's folder");
      std::vector<uint8_t> bytes;
      try {
        bytes = read_shard_(path);
      } catch (const std::exception& e) {
        fail(gwhat + ": shard '" + path + "': " + e.what());
      }
      total += bytes.size();
      if (total > kMaxWeightBytes) fail("the weight shards hold more than 2 GiB");
      data.insert(data.end(), bytes.begin(), bytes.end());
    }
    auto list = member(group, "weights");
    if (!list || !list->isArray()) fail(gwhat + " has no weights list");
    uint64_t offset = 0;
    for (auto w : list->getArray()) {
      WeightSpec spec;
      try {
        auto name = member(w, "name");
        if (!name) unsupported("a weight has no name");
        spec.name = text_of(*name, "a weight's name");
        const std::string what = "weight '" + spec.name + "'";
        auto dtype = member(w, "dtype");
        spec.dtype = dtype ? text_of(*dtype, what + " dtype") : "";
        if (auto shape = member(w, "shape")) {
          if (!shape->isArray()) unsupported(what + ": shape is not a list");
          for (auto d : shape->getArray()) spec.shape.push_back(int_of(d, what + " shape"));
        }
        if (spec.shape.size() > kMaxRank) unsupported(what + " has rank over " + std::to_string(kMaxRank));
        if (auto q = member(w, "quantization")) {
          auto qd = member(*q, "dtype");
          spec.quant = qd ? text_of(*qd, what + " quantization dtype") : "";
          if (auto sc = member(*q, "scale")) spec.scale = float_of(*sc, what + " quantization scale");
          if (auto mn = member(*q, "min")) spec.min = float_of(*mn, what + " quantization min");
        }
        const uint64_t elements = static_cast<uint64_t>(checked_elements(spec.shape, what));
        spec.bytes = elements * element_bytes(spec.dtype, spec.quant, what);
        spec.group = g;
        spec.offset = offset;
        offset += spec.bytes;
        if (offset > data.size())
          unsupported(what + " ends at byte " + std::to_string(offset) + " of its group, whose shards hold " +
                      std::to_string(data.size()));
      } catch (const Unsupported& e) {
        fail(gwhat + ": " + e.what());
      }
      weights_[spec.name] = spec;
    }
    groups_.push_back(std::move(data));
  }
}

std::vector<std::string> Importer::default_outputs() const {
  std::optional<Json> sig = member(root_, "signature");
  if (!sig)
    if (auto meta = member(root_, "userDefinedMetadata")) sig = member(*meta, "signature");
  std::vector<std::string> out;
  if (sig)
    if (auto outs = member(*sig, "outputs"); outs && outs->isObject())
      for (auto f : outs->getObject())
        if (auto n = member(f.getValue(), "name"); n && n->isString()) out.emplace_back(n->getString());
  if (!out.empty()) return out;
  // No signature: every node nothing reads (but constants and placeholders).
  std::set<std::string> read;
  for (const auto& n : nodes_)
    for (const auto& i : n.inputs) read.insert(split_ref(i).first);
  for (const auto& n : nodes_)
    if (!read.count(n.name) && n.op != "Const" && n.op != "Placeholder" && n.op != "NoOp") out.push_back(n.name);
  return out;
}

// The nodes `outputs` need, each after its inputs.
std::vector<size_t> Importer::order_for(const std::vector<std::string>& outputs) {
  enum : uint8_t { unseen, open, done };
  std::vector<uint8_t> state(nodes_.size(), unseen);
  std::vector<size_t> order;
  std::vector<std::pair<size_t, size_t>> stack;  // node, next input
  for (const auto& o : outputs) {
    auto it = by_name_.find(split_ref(o).first);
    if (it == by_name_.end()) fail("output '" + o + "' is not a node of the graph");
    if (state[it->second] != unseen) continue;
    stack.push_back({it->second, 0});
    state[it->second] = open;
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < nodes_[node].inputs.size()) {
        const std::string src = split_ref(nodes_[node].inputs[next++]).first;
        auto in = by_name_.find(src);
        if (in == by_name_.end())
          fail("node '" + nodes_[node].name + "' reads '" + src + "', which is not a node of the graph");
        if (state[in->second] == open) fail("the graph has a cycle through node '" + src + "'");
        if (state[in->second] == unseen) {
          state[in->second] = open;
          stack.push_back({in->second, 0});
        }
      } else {
        state[node] = done;
        order.push_back(node);
        stack.pop_back();
      }
    }
  }
  return order;
}

// ---------------------------------------------------------------- handlers

Value Importer::binary(const std::string& op, Value& a, Value& b, const std::string& name) {
  const Shape out = broadcast_shape(a.shape, b.shape);
  if (a.kind == Value::Kind::host && b.kind == Value::Kind::host) {
    const Host &x = a.host, &y = b.host;
    host_elements(out, "the result");
    if (x.is_float != y.is_float) unsupported("mixes float and integer operands");
    if (x.is_float) {
      std::function<float(float, float)> fn;
      if (op == "Add") fn = [](float p, float q) { return p + q; };
      if (op == "Sub") fn = [](float p, float q) { return p - q; };
      if (op == "Mul") fn = [](float p, float q) { return p * q; };
      if (op == "Div") fn = [](float p, float q) { return p / q; };
      if (op == "Maximum") fn = [](float p, float q) { return std::max(p, q); };
      if (op == "Minimum") fn = [](float p, float q) { return std::min(p, q); };
      if (op == "FloorDiv") fn = [](float p, float q) { return std::floor(p / q); };
      if (op == "FloorMod") fn = [](float p, float q) { return p - std::floor(p / q) * q; };
      if (op == "Pow") fn = [](float p, float q) { return std::pow(p, q); };
      if (op == "Equal") fn = [](float p, float q) { return p == q ? 1.0f : 0.0f; };
      if (!fn) unsupported("op " + op + " on float constants");
      return host_value(Host::floats(out, host_binary(x.f, x.shape, y.f, y.shape, out, fn)));
    }
    std::function<int64_t(int64_t, int64_t)> fn;
    const auto nonzero = [](int64_t q) {
      if (q == 0) unsupported("integer division by zero");
    };
    if (op == "Add") fn = [](int64_t p, int64_t q) { return p + q; };
    if (op == "Sub") fn = [](int64_t p, int64_t q) { return p - q; };
    if (op == "Mul") fn = [](int64_t p, int64_t q) { return p * q; };
    if (op == "Maximum") fn = [](int64_t p, int64_t q) { return std::max(p, q); };
    if (op == "Minimum") fn = [](int64_t p, int64_t q) { return std::min(p, q); };
    if (op == "Equal") fn = [](int64_t p, int64_t q) { return int64_t{p == q}; };
    if (op == "Div" || op == "FloorDiv")
      fn = [nonzero](int64_t p, int64_t q) {
        nonzero(q);
        const int64_t d = p / q;
        return (p % q != 0 && ((p < 0) != (q < 0))) ? d - 1 : d;
      };
    if (op == "FloorMod")
      fn = [nonzero](int64_t p, int64_t q) {
        nonzero(q);
        const int64_t m = p % q;
        return (m != 0 && ((m < 0) != (q < 0))) ? m + q : m;
      };
    if (!fn) unsupported("op " + op + " on integer constants");
    return host_value(Host::ints(out, host_binary(x.i, x.shape, y.i, y.shape, out, fn)));
  }
  if (op != "Add" && op != "Sub" && op != "Mul" && op != "Div")
    unsupported("op " + op + " needs constant inputs (the engine has no " + op + ")");
  if ((a.kind == Value::Kind::host && !a.host.is_float) || (b.kind == Value::Kind::host && !b.host.is_float))
    unsupported("an integer operand of " + op);
  const int ta = tensor_of(a, name + "/a"), tb = tensor_of(b, name + "/b");
  return engine_value(add_node1(op, name, {ta, tb}), out);
}

Value Importer::activation(const std::string& op, Value& x, const NodeAttrs& a, const std::string& name) {
  if (op == "Relu") return unary_op("Relu", x, name);
  if (op == "Relu6") return unary_op("Clip", x, name, {{"min", 0.0f}, {"max", 6.0f}});
  if (op == "Sigmoid") return unary_op("Sigmoid", x, name);
  if (op == "LeakyRelu") {
    // _FusedConv2D names it leakyrelu_alpha; the plain op alpha. TF's default is 0.2.
    const float alpha = a.has("leakyrelu_alpha") ? a.f("leakyrelu_alpha", 0.2f) : a.f("alpha", 0.2f);
    return unary_op("LeakyRelu", x, name, {{"alpha", alpha}});
  }
  unsupported("activation " + op + " (the engine has Relu, Relu6, LeakyRelu, Sigmoid)");
}

void Importer::placeholder(const TfNode& n, const NodeAttrs& a) {
  const std::string dtype = a.type("dtype");
  if (!dtype.empty() && dtype != "DT_FLOAT") unsupported("graph input of type " + dtype + "; the engine takes DT_FLOAT");
  auto declared = a.shape("shape");
  if (!declared) unsupported("graph input without a known rank");
  Shape shape = *declared;
  const auto given = options_.input_shapes.find(n.name);
  if (given != options_.input_shapes.end()) {
    if (given->second.size() != shape.size())
      unsupported("graph input has rank " + std::to_string(shape.size()) + ", the given shape " +
                  shape_text(given->second) + " does not");
    for (size_t k = 0; k < shape.size(); ++k) {
      if (shape[k] >= 0 && shape[k] != given->second[k])
        unsupported("graph input has shape " + shape_text(shape) + ", not the given " + shape_text(given->second));
      shape[k] = given->second[k];
    }
  }
  for (int64_t& d : shape)
    if (d < 0) d = 1;
  checked_elements(shape, "graph input");
  const bool nhwc = options_.nhwc_inputs && shape.size() == 4;
  engine::Tensor t;
  t.name = unique_name(n.name);
  t.shape = nhwc ? Shape{shape[0], shape[2], shape[3], shape[1]} : shape;
  const int id = graph_.add_tensor(t);
  graph_.inputs.push_back(id);
  Value v = engine_value(id, t.shape);
  // A channels-first input given channels-last: transposed back for the graph,
  // where the passes cancel it against the graph's own transpose.
  if (nhwc)
    v = engine_value(
        add_node1("Transpose", n.name + "/nchw", {id}, {{"perm", std::vector<int64_t>{0, 3, 1, 2}}}), shape);
  set_output(n, 0, std::move(v));
}

void Importer::constant_node(const TfNode& n, const NodeAttrs&) {
  auto it = weights_.find(n.name);
  if (it == weights_.end()) unsupported("a constant with no data in the weights manifest");
  const WeightSpec& w = it->second;
  set_output(n, 0, host_value(decode_weight(w, groups_[w.group].data() + w.offset)));
}

void Importer::identity(const TfNode& n, const NodeAttrs&) {
  for (size_t k = 0; k < std::max<size_t>(1, n.inputs.size()); ++k) set_output(n, static_cast<int>(k), input(n, k));
}

void Importer::conv(const TfNode& n, const NodeAttrs& a) {
  const bool depthwise = n.op == "DepthwiseConv2dNative" || n.op == "FusedDepthwiseConv2dNative";
  const bool fused = n.op == "_FusedConv2D" || n.op == "FusedDepthwiseConv2dNative";
  if (a.s("data_format", "NHWC") != "NHWC") unsupported("data_format " + a.s("data_format", "") + " (only NHWC)");
  Value& x = input(n, 0);
  if (x.shape.size() != 4) unsupported("input has rank " + std::to_string(x.shape.size()) + ", not 4");
  const Host& filter = constant(n, 1, "the filter");
  if (!filter.is_float || filter.shape.size() != 4) unsupported("the filter must be a 4-D float tensor");
  const auto strides = a.ints("strides", {1, 1, 1, 1});
  const auto dilations = a.ints("dilations", {1, 1, 1, 1});
  if (strides.size() != 4 || strides[0] != 1 || strides[3] != 1 || strides[1] < 1 || strides[2] < 1)
    unsupported("strides " + shape_text(strides));
  if (dilations.size() != 4 || dilations[0] != 1 || dilations[3] != 1 || dilations[1] < 1 || dilations[2] < 1)
    unsupported("dilations " + shape_text(dilations));
  for (int64_t d : filter.shape)
    if (d < 1) unsupported("the filter " + shape_text(filter.shape) + " has an empty dimension");
  const int64_t kh = filter.shape[0], kw = filter.shape[1], fin = filter.shape[2], fout = filter.shape[3];
  const int64_t c = x.shape[3];
  if (c < 1) unsupported("the input " + shape_text(x.shape) + " has no channels");
  Host w;
  int64_t group = 1, out_channels = 0;
  if (depthwise) {
    if (fin != c) unsupported("the filter " + shape_text(filter.shape) + " does not fit " + std::to_string(c) + " channels");
    // [KH, KW, C, M] -> [C * M, KH, KW, 1]: output channel c * M + m.
    w = permute_host(filter, {2, 3, 0, 1});
    w.shape = {c * fout, kh, kw, 1};
    group = c;
    out_channels = c * fout;
  } else {
    if (fin < 1 || c % fin != 0)
      unsupported("the filter " + shape_text(filter.shape) + " does not fit " + std::to_string(c) + " channels");
    // [KH, KW, I, O] -> [O, KH, KW, I]; a filter of fewer input channels than x has is a grouped convolution.
    w = permute_host(filter, {3, 0, 1, 2});
    group = c / fin;
    out_channels = fout;
    if (out_channels % group != 0) unsupported("grouped convolution with " + std::to_string(out_channels) + " outputs in " + std::to_string(group) + " groups");
  }
  std::vector<int64_t> pads = {0, 0, 0, 0};  // top, left, bottom, right
  const std::string padding = a.s("padding", "VALID");
  for (size_t k = 0; k < 2; ++k) {
    const int64_t in = x.shape[1 + k], s = strides[1 + k], d = dilations[1 + k], kernel = k ? kw : kh;
    if (padding == "SAME") {
      const int64_t out = (in + s - 1) / s, span = (kernel - 1) * d + 1;
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + span - in);
      pads[k] = total / 2;
      pads[k + 2] = total - total / 2;
    } else if (padding == "EXPLICIT") {
      const auto ep = a.ints("explicit_paddings", {});
      if (ep.size() != 8) unsupported("explicit_paddings has " + std::to_string(ep.size()) + " values, not 8");
      pads[k] = ep[2 + 2 * k];
      pads[k + 2] = ep[3 + 2 * k];
      if (pads[k] < 0 || pads[k + 2] < 0) unsupported("negative explicit_paddings");
    } else if (padding != "VALID") {
      unsupported("padding '" + padding + "'");
    }
  }
  std::vector<std::string> fused_ops = a.strings("fused_ops");
  const int64_t num_args = a.i("num_args", 0);
  if (!fused && (!fused_ops.empty() || num_args)) unsupported("fused ops on a plain convolution");
  if (num_args < 0 || n.inputs.size() != static_cast<size_t>(2 + num_args))
    unsupported("num_args " + std::to_string(num_args) + " does not match " + std::to_string(n.inputs.size()) + " inputs");
  std::optional<Host> bias;
  size_t next = 0;  // of fused_ops
  if (!fused_ops.empty() && fused_ops[0] == "BiasAdd") {
    if (num_args < 1) unsupported("BiasAdd without its argument");
    bias = constant(n, 2, "the bias");
    next = 1;
  } else if (!fused_ops.empty() && fused_ops[0] == "FusedBatchNorm") {
    if (num_args != 4) unsupported("FusedBatchNorm needs 4 arguments, has " + std::to_string(num_args));
    const float eps = a.f("epsilon", 0.0f);
    const Host &scale = constant(n, 2, "the scale"), &offset = constant(n, 3, "the offset"),
               &mean = constant(n, 4, "the mean"), &var = constant(n, 5, "the variance");
    for (const Host* h : {&scale, &offset, &mean, &var})
      if (!h->is_float || h->f.size() != static_cast<size_t>(out_channels))
        unsupported("batch norm parameters must be " + std::to_string(out_channels) + " floats");
    const size_t per = w.f.size() / static_cast<size_t>(out_channels);
    std::vector<float> b(static_cast<size_t>(out_channels));
    for (size_t o = 0; o < b.size(); ++o) {
      const double s = scale.f[o] / std::sqrt(static_cast<double>(var.f[o]) + eps);
      for (size_t j = 0; j < per; ++j) w.f[o * per + j] = static_cast<float>(w.f[o * per + j] * s);
      b[o] = static_cast<float>(offset.f[o] - mean.f[o] * s);
    }
    bias = Host::floats({out_channels}, std::move(b));
    next = 1;
  }
  if (bias && (!bias->is_float || bias->f.size() != static_cast<size_t>(out_channels)))
    unsupported("the bias must be " + std::to_string(out_channels) + " floats");
  std::vector<int> inputs = {tensor_of(x, n.name + "/x"), add_constant(n.name + "/weights", w)};
  if (bias) inputs.push_back(add_constant(n.name + "/bias", *bias));
  const std::string conv_name = next < fused_ops.size() ? n.name + "/conv" : n.name;
  const int t = add_node1("Conv2D", conv_name, inputs,
                          {{"strides", std::vector<int64_t>{strides[1], strides[2]}},
                           {"dilations", std::vector<int64_t>{dilations[1], dilations[2]}},
                           {"pads", pads},
                           {"group", group}});
  Value y = engine_value(t, engine_shape(t));
  if (next < fused_ops.size()) {
    if (next + 1 != fused_ops.size()) unsupported("fused_ops beyond one activation");
    y = activation(fused_ops[next], y, a, n.name);
  }
  set_output(n, 0, y);
}

void Importer::matmul(const TfNode& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  if (a.b("transpose_a", false)) unsupported("transpose_a");
  const Host& b = constant(n, 1, "B");
  if (x.shape.size() != 2 || b.shape.size() != 2 || !b.is_float) unsupported("A and B must be 2-D float matrices");
  // FullyConnected wants W as [N, K].
  Host w = a.b("transpose_b", false) ? b : permute_host(b, {1, 0});
  const int64_t k = x.shape[1], nn = w.shape[0];
  if (w.shape[1] != k) unsupported("B " + shape_text(b.shape) + " does not fit A " + shape_text(x.shape));
  std::vector<int> inputs = {tensor_of(x, n.name + "/x"), add_constant(n.name + "/weights", w)};
  std::vector<std::string> fused_ops = a.strings("fused_ops");
  size_t next = 0;
  if (n.op == "_FusedMatMul") {
    if (fused_ops.empty() || fused_ops[0] != "BiasAdd") unsupported("fused_ops must start with BiasAdd");
    const Host& bias = constant(n, 2, "the bias");
    if (!bias.is_float || bias.f.size() != static_cast<size_t>(nn))
      unsupported("the bias must be " + std::to_string(nn) + " floats");
    inputs.push_back(add_constant(n.name + "/bias", Host::floats({nn}, bias.f)));
    next = 1;
  }
  const int t = add_node1("FullyConnected", next < fused_ops.size() ? n.name + "/fc" : n.name, inputs);
  Value y = engine_value(t, {x.shape[0], nn});
  if (next < fused_ops.size()) {
    if (next + 1 != fused_ops.size()) unsupported("fused_ops beyond one activation");
    y = activation(fused_ops[next], y, a, n.name);
  }
  set_output(n, 0, y);
}

void Importer::bias_add(const TfNode& n, const NodeAttrs& a) {
  if (a.s("data_format", "NHWC") != "NHWC") unsupported("data_format " + a.s("data_format", ""));
  set_output(n, 0, binary("Add", input(n, 0), input(n, 1), n.name));
}

void Importer::elementwise(const TfNode& n, const NodeAttrs&) {
  std::string op = n.op;
  if (op == "AddV2") op = "Add";
  if (op == "RealDiv") op = "Div";
  set_output(n, 0, binary(op, input(n, 0), input(n, 1), n.name));
}

void Importer::unary(const TfNode& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  if (x.kind == Value::Kind::host) {
    if (!x.host.is_float) unsupported("an integer input");
    Host h = x.host;
    for (float& v : h.f) {
      if (n.op == "Relu") v = std::max(v, 0.0f);
      if (n.op == "Relu6") v = std::clamp(v, 0.0f, 6.0f);
      if (n.op == "Sigmoid") v = 1.0f / (1.0f + std::exp(-v));
      if (n.op == "LeakyRelu") v = v >= 0 ? v : a.f("alpha", 0.2f) * v;
    }
    return set_output(n, 0, host_value(std::move(h)));
  }
  set_output(n, 0, activation(n.op, x, a, n.name));
}

void Importer::softmax(const TfNode& n, const NodeAttrs&) {
  Value& x = input(n, 0);
  set_output(n, 0, unary_op("Softmax", x, n.name, {{"axis", int64_t{-1}}}));
}

void Importer::reduce(const TfNode& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  const size_t rank = x.shape.size();
  std::vector<int64_t> axes = constant(n, 1, "the axes").as_ints("the axes");
  std::vector<bool> reduced(rank, false);
  for (int64_t& ax : axes) {
    ax = norm_axis(ax, rank, "axis");
    reduced[static_cast<size_t>(ax)] = true;
  }
  std::sort(axes.begin(), axes.end());
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  const bool keep = a.b("keep_dims", false);
  Shape shape;
  for (size_t k = 0; k < rank; ++k)
    if (!reduced[k] || keep) shape.push_back(reduced[k] ? 1 : x.shape[k]);
  if (x.kind == Value::Kind::host) {
    // Fold: reduce over the marked axes.
    const Host& h = x.host;
    const auto in_strides = strides_of(x.shape);
    Shape kept_shape(rank);
    for (size_t k = 0; k < rank; ++k) kept_shape[k] = reduced[k] ? 1 : x.shape[k];
    const auto out_strides = strides_of(kept_shape);
    const auto out_n = static_cast<size_t>(engine::elements(kept_shape));
    const bool is_max = n.op == "Max", is_min = n.op == "Min", is_prod = n.op == "Prod";
    const double init = is_max ? -INFINITY : is_min ? INFINITY : is_prod ? 1.0 : 0.0;
    std::vector<double> acc(out_n, init);
    std::vector<size_t> count(out_n, 0);
    for (size_t e = 0; e < h.size(); ++e) {
      size_t rest = e, o = 0;
      for (size_t k = 0; k < rank; ++k) {
        const auto idx = static_cast<int64_t>(rest / static_cast<size_t>(in_strides[k]));
        rest %= static_cast<size_t>(in_strides[k]);
        if (!reduced[k]) o += static_cast<size_t>(idx * out_strides[k]);
      }
      const double v = h.is_float ? h.f[e] : static_cast<double>(h.i[e]);
      if (is_max) acc[o] = std::max(acc[o], v);
      else if (is_min) acc[o] = std::min(acc[o], v);
      else if (is_prod) acc[o] *= v;
      else acc[o] += v;
      ++count[o];
    }
    if (n.op == "Mean")
      for (size_t o = 0; o < out_n; ++o) acc[o] /= static_cast<double>(std::max<size_t>(count[o], 1));
    if (h.is_float) {
      std::vector<float> f(acc.begin(), acc.end());
      return set_output(n, 0, host_value(Host::floats(shape, std::move(f))));
    }
    std::vector<int64_t> i(out_n);
    for (size_t o = 0; o < out_n; ++o) i[o] = static_cast<int64_t>(acc[o]);
    return set_output(n, 0, host_value(Host::ints(shape, std::move(i))));
  }
  if (n.op != "Mean") unsupported("reduction " + n.op + " needs a constant input (the engine reduces only by mean)");
  const int t = add_node1("ReduceMean", n.name, {tensor_of(x, n.name)}, {{"axes", axes}, {"keepdims", int64_t{keep}}});
  set_output(n, 0, engine_value(t, shape));
}

void Importer::pool(const TfNode& n, const NodeAttrs& a) {
  if (a.s("data_format", "NHWC") != "NHWC") unsupported("data_format " + a.s("data_format", ""));
  Value& x = input(n, 0);
  if (x.shape.size() != 4) unsupported("input has rank " + std::to_string(x.shape.size()) + ", not 4");
  const auto ksize = a.ints("ksize", {});
  const auto strides = a.ints("strides", {});
  if (ksize.size() != 4 || ksize[0] != 1 || ksize[3] != 1 || ksize[1] < 1 || ksize[2] < 1)
    unsupported("ksize " + shape_text(ksize));
  if (strides.size() != 4 || strides[0] != 1 || strides[3] != 1 || strides[1] < 1 || strides[2] < 1)
    unsupported("strides " + shape_text(strides));
  std::vector<int64_t> pads = {0, 0, 0, 0};
  const std::string padding = a.s("padding", "VALID");
  if (padding == "SAME") {
    for (size_t k = 0; k < 2; ++k) {
      const int64_t in = x.shape[1 + k], s = strides[1 + k], out = (in + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + ksize[1 + k] - in);
      pads[k] = total / 2;
      pads[k + 2] = total - total / 2;
    }
  } else if (padding != "VALID") {
    unsupported("padding '" + padding + "'");
  }
  const bool is_max = n.op == "MaxPool";
  Attrs attrs = {{"kernel", std::vector<int64_t>{ksize[1], ksize[2]}},
                 {"strides", std::vector<int64_t>{strides[1], strides[2]}},
                 {"pads", pads}};
  if (!is_max) attrs["count_include_pad"] = int64_t{0};  // TF averages the input cells only
  const int t = add_node1(is_max ? "MaxPool2D" : "AveragePool2D", n.name, {tensor_of(x, n.name)}, attrs);
  set_output(n, 0, engine_value(t, engine_shape(t)));
}

void Importer::concat(const TfNode& n, const NodeAttrs&) {
  if (n.inputs.size() < 2) unsupported("ConcatV2 needs values and an axis");
  const size_t count = n.inputs.size() - 1;
  const Host& axis_h = constant(n, count, "the axis");
  if (axis_h.size() != 1 || axis_h.is_float) unsupported("the axis must be one integer");
  const Value& first = input(n, 0);
  const size_t rank = first.shape.size();
  const auto axis = static_cast<size_t>(norm_axis(axis_h.i[0], rank, "axis"));
  Shape out = first.shape;
  out[axis] = 0;
  bool all_host = true, is_float = true;
  for (size_t k = 0; k < count; ++k) {
    const Value& v = input(n, k);
    if (v.shape.size() != rank) unsupported("inputs of different ranks");
    for (size_t d = 0; d < rank; ++d)
      if (d != axis && v.shape[d] != first.shape[d])
        unsupported("input shapes " + shape_text(first.shape) + " and " + shape_text(v.shape) + " do not concatenate");
    out[axis] += v.shape[axis];
    all_host = all_host && v.kind == Value::Kind::host;
    if (v.kind == Value::Kind::host && !v.host.is_float) is_float = false;
  }
  checked_elements(out, "the result");
  if (all_host) {
    host_elements(out, "the result");
    // outer x (inputs' axis x inner) blocks.
    int64_t outer = 1, inner = 1;
    for (size_t d = 0; d < axis; ++d) outer *= out[d];
    for (size_t d = axis + 1; d < rank; ++d) inner *= out[d];
    Host h = is_float ? Host::floats(out, {}) : Host::ints(out, {});
    for (int64_t o = 0; o < outer; ++o)
      for (size_t k = 0; k < count; ++k) {
        const Host& src = input(n, k).host;
        if (src.is_float != is_float) unsupported("mixes float and integer inputs");
        const int64_t block = src.shape[axis] * inner;
        for (int64_t j = 0; j < block; ++j) {
          const auto e = static_cast<size_t>(o * block + j);
          if (is_float) h.f.push_back(src.f[e]);
          else h.i.push_back(src.i[e]);
        }
      }
    return set_output(n, 0, host_value(std::move(h)));
  }
  std::vector<int> inputs;
  for (size_t k = 0; k < count; ++k) {
    Value& v = input(n, k);
    if (v.shape[axis] == 0) continue;
    inputs.push_back(tensor_of(v, n.name + "/" + std::to_string(k)));
  }
  const int t = add_node1("Concat", n.name, inputs, {{"axis", static_cast<int64_t>(axis)}});
  set_output(n, 0, engine_value(t, out));
}

void Importer::pack(const TfNode& n, const NodeAttrs& a) {
  if (n.inputs.empty()) unsupported("no inputs");
  const Shape& s = input(n, 0).shape;
  const auto axis = static_cast<size_t>(norm_axis(a.i("axis", 0), s.size() + 1, "axis"));
  Shape out = s;
  out.insert(out.begin() + static_cast<std::ptrdiff_t>(axis), static_cast<int64_t>(n.inputs.size()));
  // Every input with a size-1 axis inserted, then concatenated along it.
  Shape each = s;
  each.insert(each.begin() + static_cast<std::ptrdiff_t>(axis), 1);
  std::vector<Value> parts;
  for (size_t k = 0; k < n.inputs.size(); ++k) {
    Value& v = input(n, k);
    if (v.shape != s) unsupported("inputs of different shapes");
    parts.push_back(reshape(v, each, n.name + "/" + std::to_string(k)));
  }
  bool all_host = std::all_of(parts.begin(), parts.end(), [](const Value& v) { return v.kind == Value::Kind::host; });
  if (!all_host) {
    std::vector<int> inputs;
    for (size_t k = 0; k < parts.size(); ++k) inputs.push_back(tensor_of(parts[k], n.name + "/" + std::to_string(k)));
    const int t = add_node1("Concat", n.name, inputs, {{"axis", static_cast<int64_t>(axis)}});
    return set_output(n, 0, engine_value(t, out));
  }
  host_elements(out, "the result");
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= out[d];
  for (size_t d = axis + 1; d < out.size(); ++d) inner *= out[d];
  const bool is_float = parts[0].host.is_float;
  Host h = is_float ? Host::floats(out, {}) : Host::ints(out, {});
  for (int64_t o = 0; o < outer; ++o)
    for (const Value& p : parts) {
      if (p.host.is_float != is_float) unsupported("mixes float and integer inputs");
      for (int64_t j = 0; j < inner; ++j) {
        const auto e = static_cast<size_t>(o * inner + j);
        if (is_float) h.f.push_back(p.host.f[e]);
        else h.i.push_back(p.host.i[e]);
      }
    }
  set_output(n, 0, host_value(std::move(h)));
}

void Importer::reshape_op(const TfNode& n, const NodeAttrs&) {
  Value& x = input(n, 0);
  Shape shape = constant(n, 1, "the shape").as_ints("the shape");
  int64_t known = 1, unknown = -1;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == -1) {
      if (unknown >= 0) unsupported("the shape has two -1 dimensions");
      unknown = static_cast<int64_t>(k);
    } else if (shape[k] < 0) {
      unsupported("the shape has a negative dimension");
    } else {
      known *= shape[k];
      checked_elements({known}, "the shape");
    }
  }
  const int64_t total = engine::elements(x.shape);
  if (unknown >= 0) {
    if (known == 0 || total % known != 0)
      unsupported("cannot reshape " + shape_text(x.shape) + " to " + shape_text(shape));
    shape[static_cast<size_t>(unknown)] = total / known;
  }
  set_output(n, 0, reshape(x, shape, n.name));
}

void Importer::squeeze(const TfNode& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  std::vector<int64_t> dims = a.ints("squeeze_dims", a.ints("axis", {}));
  std::vector<bool> drop(x.shape.size(), false);
  for (int64_t d : dims) {
    const auto k = static_cast<size_t>(norm_axis(d, x.shape.size(), "axis"));
    if (x.shape[k] != 1) unsupported("dimension " + std::to_string(d) + " of " + shape_text(x.shape) + " is not 1");
    drop[k] = true;
  }
  Shape shape;
  for (size_t k = 0; k < x.shape.size(); ++k)
    if (!(dims.empty() ? x.shape[k] == 1 : drop[k])) shape.push_back(x.shape[k]);
  set_output(n, 0, reshape(x, shape, n.name));
}

void Importer::expand_dims(const TfNode& n, const NodeAttrs&) {
  Value& x = input(n, 0);
  const Host& d = constant(n, 1, "the axis");
  if (d.size() != 1 || d.is_float) unsupported("the axis must be one integer");
  const auto axis = static_cast<size_t>(norm_axis(d.i[0], x.shape.size() + 1, "axis"));
  Shape shape = x.shape;
  shape.insert(shape.begin() + static_cast<std::ptrdiff_t>(axis), 1);
  set_output(n, 0, reshape(x, shape, n.name));
}

void Importer::transpose(const TfNode& n, const NodeAttrs&) {
  Value& x = input(n, 0);
  std::vector<int64_t> perm = constant(n, 1, "the permutation").as_ints("the permutation");
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (size_t k = 0; k < sorted.size(); ++k)
    if (sorted[k] != static_cast<int64_t>(k) || sorted.size() != x.shape.size())
      unsupported("perm " + shape_text(perm) + " is not a permutation of " + std::to_string(x.shape.size()) + " axes");
  if (x.kind == Value::Kind::host) return set_output(n, 0, host_value(permute_host(x.host, perm)));
  Shape shape(perm.size());
  for (size_t k = 0; k < perm.size(); ++k) shape[k] = x.shape[static_cast<size_t>(perm[k])];
  set_output(n, 0, engine_value(add_node1("Transpose", n.name, {x.tensor}, {{"perm", perm}}), shape));
}

void Importer::pad(const TfNode& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  const Host& p = constant(n, 1, "the paddings");
  const size_t rank = x.shape.size();
  if (p.is_float || p.shape != Shape{static_cast<int64_t>(rank), 2})
    unsupported("paddings must be integers of shape [" + std::to_string(rank) + ", 2]");
  std::vector<int64_t> pads(2 * rank);
  Shape shape = x.shape;
  for (size_t k = 0; k < rank; ++k) {
    pads[k] = p.i[2 * k];
    pads[k + rank] = p.i[2 * k + 1];
    if (pads[k] < 0 || pads[k + rank] < 0) unsupported("negative paddings");
    if (pads[k] > kMaxElements || pads[k + rank] > kMaxElements) unsupported("paddings beyond 2^28");
    shape[k] += pads[k] + pads[k + rank];
  }
  checked_elements(shape, "the output");
  Attrs attrs = {{"pads", pads}, {"mode", std::string("constant")}, {"value", 0.0f}};
  if (n.op == "PadV2" && n.inputs.size() > 2) attrs["value"] = constant(n, 2, "the value").as_scalar_float("the value");
  if (n.op == "MirrorPad") {
    const std::string mode = a.s("mode", "");
    if (mode != "REFLECT") unsupported("MirrorPad mode '" + mode + "' (only REFLECT)");
    attrs["mode"] = std::string("reflect");
  }
  const int t = add_node1("Pad", n.name, {tensor_of(x, n.name)}, attrs);
  set_output(n, 0, engine_value(t, shape));
}

void Importer::resize(const TfNode& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  if (x.shape.size() != 4) unsupported("input has rank " + std::to_string(x.shape.size()) + ", not 4");
  const auto size = constant(n, 1, "the size").as_ints("the size");
  if (size.size() != 2 || size[0] < 1 || size[1] < 1) unsupported("the size must be two positive integers");
  checked_elements({x.shape[0], size[0], size[1], x.shape[3]}, "the output");
  const bool align = a.b("align_corners", false), half = a.b("half_pixel_centers", false);
  if (align && half) unsupported("align_corners and half_pixel_centers together");
  const bool bilinear = n.op == "ResizeBilinear";
  Attrs attrs = {{"size", size}, {"mode", std::string(bilinear ? "linear" : "nearest")}};
  if (bilinear) {
    attrs["coordinate_transformation_mode"] = std::string(align ? "align_corners" : half ? "half_pixel" : "asymmetric");
  } else {
    // TF: floor(x * scale), (x + 0.5) * scale floored, or x * scale rounded half away from zero.
    attrs["coordinate_transformation_mode"] =
        std::string(align ? "align_corners" : half ? "tf_half_pixel_for_nn" : "asymmetric");
    attrs["nearest_mode"] = std::string(align ? "round_prefer_ceil" : "floor");
  }
  const int t = add_node1("Resize", n.name, {tensor_of(x, n.name)}, attrs);
  set_output(n, 0, engine_value(t, engine_shape(t)));
}

void Importer::split(const TfNode& n, const NodeAttrs& a) {
  // SplitV: value, size_splits, axis. Split: axis, value (attr num_split).
  const bool v = n.op == "SplitV";
  Value& x = input(n, v ? 0 : 1);
  const Host& axis_h = constant(n, v ? 2 : 0, "the axis");
  if (axis_h.size() != 1 || axis_h.is_float) unsupported("the axis must be one integer");
  const auto axis = static_cast<size_t>(norm_axis(axis_h.i[0], x.shape.size(), "axis"));
  const int64_t len = x.shape[axis];
  std::vector<int64_t> sizes;
  if (v) {
    sizes = constant(n, 1, "the sizes").as_ints("the sizes");
    int64_t known = 0, unknown = -1;
    for (size_t k = 0; k < sizes.size(); ++k) {
      if (sizes[k] == -1 && unknown < 0) unknown = static_cast<int64_t>(k);
      else if (sizes[k] < 0) unsupported("the sizes " + shape_text(sizes) + " are not valid");
      else known += sizes[k];
    }
    if (unknown >= 0) sizes[static_cast<size_t>(unknown)] = len - known;
  } else {
    const int64_t parts = a.i("num_split", 0);
    if (parts < 1 || len % parts != 0) unsupported("num_split " + std::to_string(parts) + " does not divide " + std::to_string(len));
    sizes.assign(static_cast<size_t>(parts), len / parts);
  }
  if (std::accumulate(sizes.begin(), sizes.end(), int64_t{0}) != len || sizes.empty())
    unsupported("the sizes " + shape_text(sizes) + " do not add up to " + std::to_string(len));
  if (std::any_of(sizes.begin(), sizes.end(), [](int64_t s) { return s <= 0; }))
    unsupported("an empty part in " + shape_text(sizes));
  if (x.kind == Value::Kind::host) unsupported("splitting a constant");
  std::vector<std::string> names;
  for (size_t k = 0; k < sizes.size(); ++k) names.push_back(key_of(n.name, static_cast<int>(k)));
  const auto outs = add_node("Split", n.name, {x.tensor}, {{"axis", static_cast<int64_t>(axis)}, {"split", sizes}}, names);
  for (size_t k = 0; k < outs.size(); ++k) set_output(n, static_cast<int>(k), engine_value(outs[k], engine_shape(outs[k])));
}

void Importer::strided_slice(const TfNode& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  const auto begin = constant(n, 1, "begin").as_ints("begin");
  const auto end = constant(n, 2, "end").as_ints("end");
  const auto strides = constant(n, 3, "strides").as_ints("strides");
  if (begin.size() != end.size() || begin.size() != strides.size() || begin.size() > x.shape.size())
    unsupported("begin, end and strides do not fit the input " + shape_text(x.shape));
  if (a.i("ellipsis_mask", 0) || a.i("new_axis_mask", 0)) unsupported("ellipsis_mask or new_axis_mask");
  const int64_t bmask = a.i("begin_mask", 0), emask = a.i("end_mask", 0), smask = a.i("shrink_axis_mask", 0);
  const size_t rank = x.shape.size();
  std::vector<int64_t> starts(rank, 0), ends(x.shape), steps(rank, 1);
  Shape shape = x.shape, out_shape;
  for (size_t k = 0; k < rank; ++k) {
    if (k < begin.size()) {
      const int64_t dim = x.shape[k];
      if (strides[k] < 1) unsupported("a stride below 1");
      const bool shrink = (smask >> k) & 1;
      int64_t b = (bmask >> k) & 1 ? 0 : begin[k];
      int64_t e = (emask >> k) & 1 ? dim : end[k];
      if (b < 0) b += dim;
      if (shrink) e = b + 1;
      else if (e < 0) e += dim;
      b = std::clamp<int64_t>(b, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      starts[k] = b;
      ends[k] = e;
      steps[k] = strides[k];
      shape[k] = e > b ? (e - b + strides[k] - 1) / strides[k] : 0;
      if (shrink && shape[k] != 1) unsupported("shrinking an axis out of range");
      if (!shrink) out_shape.push_back(shape[k]);
    } else {
      out_shape.push_back(shape[k]);
    }
  }
  if (x.kind == Value::Kind::host) {
    const Host& h = x.host;
    const auto in_strides = strides_of(x.shape);
    const auto count = static_cast<size_t>(host_elements(shape, "the slice"));
    Host r = h.is_float ? Host::floats(out_shape, {}) : Host::ints(out_shape, {});
    std::vector<int64_t> idx(rank, 0);
    for (size_t e = 0; e < count; ++e) {
      int64_t src = 0;
      for (size_t k = 0; k < rank; ++k) src += (starts[k] + idx[k] * steps[k]) * in_strides[k];
      if (h.is_float) r.f.push_back(h.f[static_cast<size_t>(src)]);
      else r.i.push_back(h.i[static_cast<size_t>(src)]);
      for (size_t k = rank; k-- > 0;) {
        if (++idx[k] < shape[k]) break;
        idx[k] = 0;
      }
    }
    return set_output(n, 0, host_value(std::move(r)));
  }
  std::vector<int64_t> axes(rank);
  std::iota(axes.begin(), axes.end(), 0);
  const int t = add_node1("Slice", out_shape == shape ? n.name : n.name + "/slice", {x.tensor},
                          {{"starts", starts}, {"ends", ends}, {"axes", axes}, {"steps", steps}});
  Value y = engine_value(t, shape);
  set_output(n, 0, reshape(y, out_shape, n.name));
}

void Importer::slice(const TfNode& n, const NodeAttrs&) {
  Value& x = input(n, 0);
  const auto begin = constant(n, 1, "begin").as_ints("begin");
  const auto size = constant(n, 2, "size").as_ints("size");
  const size_t rank = x.shape.size();
  if (begin.size() != rank || size.size() != rank) unsupported("begin and size must have " + std::to_string(rank) + " values");
  std::vector<int64_t> starts(rank), ends(rank), axes(rank);
  Shape shape(rank);
  for (size_t k = 0; k < rank; ++k) {
    const int64_t s = size[k] == -1 ? x.shape[k] - begin[k] : size[k];
    if (begin[k] < 0 || s < 0 || begin[k] + s > x.shape[k]) unsupported("the slice lies outside " + shape_text(x.shape));
    starts[k] = begin[k];
    ends[k] = begin[k] + s;
    axes[k] = static_cast<int64_t>(k);
    shape[k] = s;
  }
  if (x.kind == Value::Kind::host) unsupported("slicing a constant with Slice");
  const int t = add_node1("Slice", n.name, {x.tensor}, {{"starts", starts}, {"ends", ends}, {"axes", axes}});
  set_output(n, 0, engine_value(t, shape));
}

void Importer::shape_op(const TfNode& n, const NodeAttrs&) {
  const Shape& s = input(n, 0).shape;
  set_output(n, 0, host_value(Host::ints({static_cast<int64_t>(s.size())}, s)));
}

void Importer::cast(const TfNode& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  const std::string to = a.type("DstT");
  const bool to_float = to == "DT_FLOAT" || to == "DT_HALF" || to == "DT_DOUBLE";
  if (x.kind == Value::Kind::host) {
    const Host& h = x.host;
    if (to_float == h.is_float) return set_output(n, 0, x);
    if (to_float) return set_output(n, 0, host_value(Host::floats(h.shape, std::vector<float>(h.i.begin(), h.i.end()))));
    std::vector<int64_t> i(h.f.size());
    for (size_t k = 0; k < i.size(); ++k) i[k] = to == "DT_BOOL" ? (h.f[k] != 0) : static_cast<int64_t>(h.f[k]);
    return set_output(n, 0, host_value(Host::ints(h.shape, std::move(i))));
  }
  if (!to_float) unsupported("a cast of a computed value to " + to + " (the engine computes in float)");
  set_output(n, 0, x);
}

void Importer::fill(const TfNode& n, const NodeAttrs&) {
  const Shape dims = constant(n, 0, "the dims").as_ints("the dims");
  const Host& v = constant(n, 1, "the value");
  if (v.size() != 1) unsupported("the value must be a scalar");
  const auto count = static_cast<size_t>(host_elements(dims, "the result"));
  set_output(n, 0, host_value(v.is_float ? Host::floats(dims, std::vector<float>(count, v.f[0]))
                                         : Host::ints(dims, std::vector<int64_t>(count, v.i[0]))));
}

void Importer::gather(const TfNode& n, const NodeAttrs& a) {
  const Host& params = constant(n, 0, "the params");
  const auto indices = constant(n, 1, "the indices").as_ints("the indices");
  const Shape ishape = input(n, 1).shape;
  if (a.i("batch_dims", 0) != 0) unsupported("batch_dims");
  int64_t axis = 0;
  if (n.inputs.size() > 2) {
    const Host& ax = constant(n, 2, "the axis");
    if (ax.size() != 1 || ax.is_float) unsupported("the axis must be one integer");
    axis = ax.i[0];
  }
  const auto ax = static_cast<size_t>(norm_axis(axis, params.shape.size(), "axis"));
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < ax; ++d) outer *= params.shape[d];
  for (size_t d = ax + 1; d < params.shape.size(); ++d) inner *= params.shape[d];
  Shape out(params.shape.begin(), params.shape.begin() + static_cast<std::ptrdiff_t>(ax));
  out.insert(out.end(), ishape.begin(), ishape.end());
  out.insert(out.end(), params.shape.begin() + static_cast<std::ptrdiff_t>(ax) + 1, params.shape.end());
  host_elements(out, "the result");
  Host r = params.is_float ? Host::floats(out, {}) : Host::ints(out, {});
  const int64_t len = params.shape[ax];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t idx : indices) {
      if (idx < 0) idx += len;
      if (idx < 0 || idx >= len) unsupported("index " + std::to_string(idx) + " is out of range");
      for (int64_t j = 0; j < inner; ++j) {
        const auto e = static_cast<size_t>((o * len + idx) * inner + j);
        if (params.is_float) r.f.push_back(params.f[e]);
        else r.i.push_back(params.i[e]);
      }
    }
  set_output(n, 0, host_value(std::move(r)));
}

void Importer::sparse_to_dense(const TfNode& n, const NodeAttrs&) {
  const Host& idx = constant(n, 0, "the indices");
  const Shape dims = constant(n, 1, "the output shape").as_ints("the output shape");
  const Host& values = constant(n, 2, "the values");
  const Host& fallback = constant(n, 3, "the default value");
  if (fallback.size() != 1) unsupported("the default value must be a scalar");
  const auto count = static_cast<size_t>(host_elements(dims, "the output shape"));
  const auto indices = idx.as_ints("the indices");
  const size_t rank = dims.size();
  const size_t entries = rank ? indices.size() / std::max<size_t>(rank, 1) : 0;
  if (values.size() != 1 && values.size() != entries) unsupported("values do not match the indices");
  Host r = fallback.is_float ? Host::floats(dims, std::vector<float>(count, fallback.f[0]))
                             : Host::ints(dims, std::vector<int64_t>(count, fallback.i[0]));
  const auto strides = strides_of(dims);
  for (size_t e = 0; e < entries; ++e) {
    int64_t at = 0;
    for (size_t k = 0; k < rank; ++k) {
      const int64_t i = indices[e * rank + k];
      if (i < 0 || i >= dims[k]) unsupported("an index is out of range");
      at += i * strides[k];
    }
    const size_t src = values.size() == 1 ? 0 : e;
    if (r.is_float != values.is_float) unsupported("values and default differ in type");
    if (r.is_float) r.f[static_cast<size_t>(at)] = values.f[src];
    else r.i[static_cast<size_t>(at)] = values.i[src];
  }
  set_output(n, 0, host_value(std::move(r)));
}

void Importer::range(const TfNode& n, const NodeAttrs&) {
  const float start = constant(n, 0, "start").as_scalar_float("start");
  const float limit = constant(n, 1, "limit").as_scalar_float("limit");
  const float delta = constant(n, 2, "delta").as_scalar_float("delta");
  if (delta == 0) unsupported("delta 0");
  const double count = std::ceil((limit - start) / delta);
  if (!(count <= static_cast<double>(kMaxHostElements))) unsupported("too many elements to compute at import time");
  const auto c = static_cast<size_t>(std::max(0.0, count));
  const bool is_float = input(n, 0).host.is_float;
  Host r = is_float ? Host::floats({static_cast<int64_t>(c)}, {}) : Host::ints({static_cast<int64_t>(c)}, {});
  for (size_t k = 0; k < c; ++k) {
    const double v = start + static_cast<double>(k) * delta;
    if (is_float) r.f.push_back(static_cast<float>(v));
    else r.i.push_back(static_cast<int64_t>(v));
  }
  set_output(n, 0, host_value(std::move(r)));
}

void Importer::host_unary(const TfNode& n, const NodeAttrs&) {
  const Host& x = constant(n, 0, "the input");
  if (!x.is_float) unsupported("an integer input");
  Host r = x;
  for (float& v : r.f) {
    if (n.op == "Sqrt") v = std::sqrt(v);
    if (n.op == "Rsqrt") v = 1.0f / std::sqrt(v);
    if (n.op == "Square") v = v * v;
    if (n.op == "Neg") v = -v;
    if (n.op == "Reciprocal") v = 1.0f / v;
    if (n.op == "Exp") v = std::exp(v);
  }
  set_output(n, 0, host_value(std::move(r)));
}

// ---------------------------------------------------------------- table

const std::vector<Importer::OpEntry>& Importer::table() {
  static const std::vector<OpEntry> entries = [] {
    std::vector<OpEntry> e = {
        {{"Add"}, &Importer::elementwise},
        {{"AddV2"}, &Importer::elementwise},
        {{"AvgPool"}, &Importer::pool},
        {{"BiasAdd"}, &Importer::bias_add},
        {{"Cast"}, &Importer::cast},
        {{"ConcatV2"}, &Importer::concat},
        {{"Const"}, &Importer::constant_node},
        {{"Conv2D"}, &Importer::conv},
        {{"DepthwiseConv2dNative"}, &Importer::conv},
        {{"Div"}, &Importer::elementwise},
        {{"Equal", true}, &Importer::elementwise},
        {{"Exp", true}, &Importer::host_unary},
        {{"ExpandDims"}, &Importer::expand_dims},
        {{"Fill", true}, &Importer::fill},
        {{"FloorDiv", true}, &Importer::elementwise},
        {{"FloorMod", true}, &Importer::elementwise},
        {{"FusedDepthwiseConv2dNative"}, &Importer::conv},
        {{"GatherV2", true}, &Importer::gather},
        {{"Identity"}, &Importer::identity},
        {{"IdentityN"}, &Importer::identity},
        {{"LeakyRelu"}, &Importer::unary},
        {{"MatMul"}, &Importer::matmul},
        {{"Max", true}, &Importer::reduce},
        {{"MaxPool"}, &Importer::pool},
        {{"Maximum", true}, &Importer::elementwise},
        {{"Mean"}, &Importer::reduce},
        {{"Min", true}, &Importer::reduce},
        {{"Minimum", true}, &Importer::elementwise},
        {{"MirrorPad"}, &Importer::pad},
        {{"Mul"}, &Importer::elementwise},
        {{"Neg", true}, &Importer::host_unary},
        {{"Pack"}, &Importer::pack},
        {{"Pad"}, &Importer::pad},
        {{"PadV2"}, &Importer::pad},
        {{"Placeholder"}, &Importer::placeholder},
        {{"Pow", true}, &Importer::elementwise},
        {{"Prod", true}, &Importer::reduce},
        {{"Range", true}, &Importer::range},
        {{"RealDiv"}, &Importer::elementwise},
        {{"Reciprocal", true}, &Importer::host_unary},
        {{"Relu"}, &Importer::unary},
        {{"Relu6"}, &Importer::unary},
        {{"Reshape"}, &Importer::reshape_op},
        {{"ResizeBilinear"}, &Importer::resize},
        {{"ResizeNearestNeighbor"}, &Importer::resize},
        {{"Rsqrt", true}, &Importer::host_unary},
        {{"Shape", true}, &Importer::shape_op},
        {{"Sigmoid"}, &Importer::unary},
        {{"Slice"}, &Importer::slice},
        {{"Snapshot"}, &Importer::identity},
        {{"Softmax"}, &Importer::softmax},
        {{"SparseToDense", true}, &Importer::sparse_to_dense},
        {{"Split"}, &Importer::split},
        {{"SplitV"}, &Importer::split},
        {{"Sqrt", true}, &Importer::host_unary},
        {{"Square", true}, &Importer::host_unary},
        {{"Squeeze"}, &Importer::squeeze},
        {{"StopGradient"}, &Importer::identity},
        {{"StridedSlice"}, &Importer::strided_slice},
        {{"Sub"}, &Importer::elementwise},
        {{"Sum", true}, &Importer::reduce},
        {{"Transpose"}, &Importer::transpose},
        {{"_FusedConv2D"}, &Importer::conv},
        {{"_FusedMatMul"}, &Importer::matmul},
    };
    std::sort(e.begin(), e.end(), [](const OpEntry& a, const OpEntry& b) { return std::strcmp(a.support.op, b.support.op) < 0; });
    return e;
  }();
  return entries;
}

// ---------------------------------------------------------------- graph

void Importer::set_graph_outputs(const std::vector<std::string>& outputs) {
  std::set<int> taken(graph_.inputs.begin(), graph_.inputs.end());
  for (const auto& ref : outputs) {
    auto [node, k] = split_ref(ref);
    auto it = values_.find(key_of(node, k));
    if (it == values_.end()) {
      problems_.push_back("output '" + ref + "' is not produced");
      continue;
    }
    Value& v = it->second;
    if (v.kind == Value::Kind::bad) continue;  // its producer is already reported
    // Outputs are named as TF names the node's output: "name" (or "name:k").
    const std::string out_name = key_of(node, k);
    try {
      if (v.kind == Value::Kind::host && !v.host.is_float) unsupported("an integer constant");
      add_output(tensor_of(v, out_name), out_name, taken);
    } catch (const Unsupported& e) {
      problems_.push_back("output '" + ref + "': " + e.what());
    }
  }
}

ImportResult Importer::run() {
  read_topology();
  read_weights();
  const std::vector<std::string> outputs = options_.outputs.empty() ? default_outputs() : options_.outputs;
  if (outputs.empty()) fail("the graph has no outputs");
  const std::vector<size_t> order = order_for(outputs);
  const auto& entries = table();
  size_t failed = 0;
  for (const size_t index : order) {
    const TfNode& n = nodes_[index];
    const std::string label = "node '" + n.name + "' (" + n.op + ")";
    bool poisoned = false;
    for (const auto& i : n.inputs) {
      // A failed node leaves output 0 marked bad; its other outputs are missing.
      auto it = values_.find(split_ref(i).first);
      if (it != values_.end() && it->second.kind == Value::Kind::bad) poisoned = true;
    }
    try {
      const auto entry = std::find_if(entries.begin(), entries.end(),
                                      [&](const OpEntry& e) { return n.op == e.support.op; });
      if (entry == entries.end()) {
        poisoned = false;
        unsupported("op type not supported");
      }
      if (poisoned) throw Unsupported("");
      NodeAttrs attrs(n.attr);
      (this->*(entry->handler))(n, attrs);
      if (!values_.count(n.name)) unsupported("output 0 is not produced");
    } catch (const Unsupported& e) {
      ++failed;
      if (!poisoned) problems_.push_back(label + ": " + e.what());
      values_[n.name] = Value{};
    }
  }
  if (problems_.empty()) set_graph_outputs(outputs);
  if (!problems_.empty()) {
    std::string text = name_ + ": cannot import " + std::to_string(problems_.size()) + " problem" +
                       (problems_.size() == 1 ? "" : "s") + " (" + std::to_string(failed) + " of " +
                       std::to_string(order.size()) + " needed nodes not converted):";
    for (const auto& p : problems_) text += "\n  " + p;
    throw ImportError(text);
  }
  ImportResult result;
  result.graph = std::move(graph_);
  if (options_.optimize) result.passes = engine::optimize(result.graph).text();
  result.producer = producer_;
  return result;
}

std::vector<uint8_t> read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path + " (" + std::strerror(errno) + ")");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error("cannot read " + path);
  return bytes;
}

}  // namespace

ImportResult import_tfjs_bytes(std::span<const uint8_t> json, const std::string& name, const ShardReader& read_shard,
                               const ImportOptions& options) {
  if (json.size() > kMaxJsonBytes) throw ImportError(name + ": larger than 256 MiB (not a model.json)");
  capnp::JsonCodec codec;
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<capnp::JsonValue>();
  try {
    codec.decodeRaw(kj::ArrayPtr<const char>(reinterpret_cast<const char*>(json.data()), json.size()), root);
  } catch (const kj::Exception& e) {
    throw ImportError(name + ": not JSON (" + std::string(e.getDescription().cStr()) + ")");
  }
  try {
    return Importer(root.asReader(), name, read_shard, options).run();
  } catch (const Unsupported& e) {
    throw ImportError(name + ": " + e.what());
  }
}

ImportResult import_tfjs_file(const std::string& path, const ImportOptions& options) {
  std::vector<uint8_t> json;
  try {
    json = read_whole(path);
  } catch (const std::exception& e) {
    throw ImportError(path + ": " + e.what());
  }
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  return import_tfjs_bytes(json, path, [&](const std::string& shard) { return read_whole(dir + shard); }, options);
}

const std::vector<TfjsOpSupport>& tfjs_supported_ops() {
  static const std::vector<TfjsOpSupport> ops = [] {
    std::vector<TfjsOpSupport> v;
    for (const auto& e : Importer::table()) v.push_back(e.support);
    return v;
  }();
  return ops;
}

}  // namespace huddle::models
