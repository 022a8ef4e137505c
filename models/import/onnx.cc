#include "models/import/onnx.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>

#include "engine/op.h"
#include "engine/passes.h"
#include "models/import/builder.h"
#include "models/import/host.h"

namespace huddle::models {
namespace {

using namespace importing;
using engine::AttrValue;
using engine::DType;
using engine::Graph;
using engine::Shape;
using Attrs = std::map<std::string, AttrValue>;

constexpr int64_t kMaxOpset = 17;
// NCHW -> NHWC: engine dim i holds ONNX dim kToNhwc[i]; ONNX dim a is engine dim kFromNhwc[a].
constexpr int64_t kToNhwc[4] = {0, 2, 3, 1};
constexpr int64_t kFromNhwc[4] = {0, 3, 1, 2};

const char* type_name(int t) {
  switch (t) {
    case onnx::TensorProto::FLOAT:
      return "FLOAT";
    case onnx::TensorProto::UINT8:
      return "UINT8";
    case onnx::TensorProto::INT8:
      return "INT8";
    case onnx::TensorProto::UINT16:
      return "UINT16";
    case onnx::TensorProto::INT16:
      return "INT16";
    case onnx::TensorProto::INT32:
      return "INT32";
    case onnx::TensorProto::INT64:
      return "INT64";
    case onnx::TensorProto::STRING:
      return "STRING";
    case onnx::TensorProto::BOOL:
      return "BOOL";
    case onnx::TensorProto::FLOAT16:
      return "FLOAT16";
    case onnx::TensorProto::DOUBLE:
      return "DOUBLE";
    case onnx::TensorProto::UINT32:
      return "UINT32";
    case onnx::TensorProto::UINT64:
      return "UINT64";
    case onnx::TensorProto::BFLOAT16:
      return "BFLOAT16";
    default:
      return "an unknown type";
  }
}

// Reads `count` little-endian values of type Raw from `raw` into `out` (converted).
template <class Raw, class Out>
void from_raw(const std::string& raw, size_t count, std::vector<Out>& out, const std::string& what) {
  if (raw.size() != count * sizeof(Raw))
    unsupported(what + " has " + std::to_string(raw.size()) + " data bytes for " + std::to_string(count) +
                " values of " + std::to_string(sizeof(Raw)) + " bytes");
  out.resize(count);
  for (size_t k = 0; k < count; ++k) {
    Raw r;
    std::memcpy(&r, raw.data() + k * sizeof(Raw), sizeof(Raw));
    if constexpr (std::is_same_v<Raw, uint16_t> && std::is_same_v<Out, float>)
      out[k] = half_to_float(r);
    else
      out[k] = static_cast<Out>(r);
  }
}

template <class Field, class Out>
void from_field(const Field& field, size_t count, std::vector<Out>& out, const std::string& what) {
  if (static_cast<size_t>(field.size()) != count)
    unsupported(what + " has " + std::to_string(field.size()) + " values for its shape's " +
                std::to_string(count));
  out.assign(field.begin(), field.end());
}

// The bytes of a tensor stored outside the model file (ONNX external data),
// only from a relative path inside the model's folder.
std::string external_bytes(const onnx::TensorProto& t, const std::string& base_dir, const std::string& what) {
  std::string location;
  uint64_t offset = 0, length = 0;
  bool has_length = false;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") location = kv.value();
    try {
      if (kv.key() == "offset") offset = std::stoull(kv.value());
      if (kv.key() == "length") length = std::stoull(kv.value()), has_length = true;
    } catch (const std::exception&) {
      unsupported(what + ": external data " + kv.key() + " '" + kv.value() + "' is not a number");
    }
  }
  if (location.empty()) unsupported(what + ": external data without a location");
  if (location[0] == '/' || location.find("..") != std::string::npos)
    unsupported(what + ": external data location '" + location + "' leaves the model's folder");
  const std::string path = base_dir + location;
  std::ifstream in(path, std::ios::binary);
  if (!in) unsupported(what + ": cannot open external data file '" + path + "'");
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  if (!has_length) length = size > offset ? size - offset : 0;
  if (offset > size || length > size - offset)
    unsupported(what + ": external data [" + std::to_string(offset) + ", +" + std::to_string(length) +
                ") lies outside '" + path + "' (" + std::to_string(size) + " bytes)");
  std::string bytes(length, '\0');
  in.seekg(static_cast<std::streamoff>(offset));
  in.read(bytes.data(), static_cast<std::streamsize>(length));
  if (!in) unsupported(what + ": cannot read external data from '" + path + "'");
  return bytes;
}

Host host_from_proto(const onnx::TensorProto& t, const std::string& base_dir) {
  const std::string what = "tensor '" + t.name() + "'";
  Host h;
  for (int64_t d : t.dims()) h.shape.push_back(d);
  const auto count = static_cast<size_t>(checked_elements(h.shape, what));
  const bool external = t.data_location() == onnx::TensorProto::EXTERNAL;
  const bool raw = external || t.has_raw_data();
  const std::string bytes = external ? external_bytes(t, base_dir, what) : std::string();
  const std::string& r = external ? bytes : t.raw_data();
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      raw ? from_raw<float>(r, count, h.f, what) : from_field(t.float_data(), count, h.f, what);
      break;
    case onnx::TensorProto::DOUBLE:
      raw ? from_raw<double>(r, count, h.f, what) : from_field(t.double_data(), count, h.f, what);
      break;
    case onnx::TensorProto::FLOAT16:
      if (raw) {
        from_raw<uint16_t>(r, count, h.f, what);
      } else {
        std::vector<int64_t> bits;
        from_field(t.int32_data(), count, bits, what);
        for (int64_t b : bits) h.f.push_back(half_to_float(static_cast<uint16_t>(b)));
      }
      break;
    default:
      h.is_float = false;
      switch (t.data_type()) {
        case onnx::TensorProto::INT64:
          raw ? from_raw<int64_t>(r, count, h.i, what) : from_field(t.int64_data(), count, h.i, what);
          break;
        case onnx::TensorProto::INT32:
          raw ? from_raw<int32_t>(r, count, h.i, what) : from_field(t.int32_data(), count, h.i, what);
          break;
        case onnx::TensorProto::INT16:
          raw ? from_raw<int16_t>(r, count, h.i, what) : from_field(t.int32_data(), count, h.i, what);
          break;
        case onnx::TensorProto::INT8:
          raw ? from_raw<int8_t>(r, count, h.i, what) : from_field(t.int32_data(), count, h.i, what);
          break;
        case onnx::TensorProto::UINT16:
          raw ? from_raw<uint16_t>(r, count, h.i, what) : from_field(t.int32_data(), count, h.i, what);
          break;
        case onnx::TensorProto::UINT8:
        case onnx::TensorProto::BOOL:
          raw ? from_raw<uint8_t>(r, count, h.i, what) : from_field(t.int32_data(), count, h.i, what);
          break;
        case onnx::TensorProto::UINT32:
          raw ? from_raw<uint32_t>(r, count, h.i, what) : from_field(t.uint64_data(), count, h.i, what);
          break;
        default:
          unsupported(what + " has data type " + type_name(t.data_type()));
      }
  }
  return h;
}

// How an engine tensor holds an ONNX value: engine dim i is ONNX dim layout[i].
using Layout = std::vector<int64_t>;

Layout identity_layout(size_t rank) {
  Layout l(rank);
  std::iota(l.begin(), l.end(), 0);
  return l;
}
Layout nhwc_layout() { return {kToNhwc, kToNhwc + 4}; }

// What the importer knows of one ONNX value.
struct Value {
  enum class Kind { host, engine, bad } kind = Kind::bad;
  Host host;    // kind host
  Shape shape;  // ONNX order
  // Engine tensors holding the value, by layout; for an engine value the
  // first is the one its producer made (its native layout).
  std::vector<std::pair<Layout, int>> forms;
  bool native_nhwc = false;  // the native layout is NCHW -> NHWC
  const Layout& layout() const { return forms[0].first; }
  int native() const { return forms[0].second; }
  int find(const Layout& l) const {
    for (const auto& [layout, t] : forms)
      if (layout == l) return t;
    return -1;
  }
};

// An ONNX node's attribute lookup; every read marks the attribute as understood.
class NodeAttrs {
 public:
  explicit NodeAttrs(const onnx::NodeProto& n) : n_(n) {}
  const onnx::AttributeProto* find(const std::string& name) const {
    for (const auto& a : n_.attribute())
      if (a.name() == name) {
        used_.insert(name);
        return &a;
      }
    used_.insert(name);
    return nullptr;
  }
  bool has(const std::string& name) const { return find(name) != nullptr; }
  int64_t i(const std::string& name, int64_t fallback) const {
    const auto* a = find(name);
    if (!a) return fallback;
    if (a->type() != onnx::AttributeProto::INT) unsupported("attribute '" + name + "' is not an integer");
    return a->i();
  }
  float f(const std::string& name, float fallback) const {
    const auto* a = find(name);
    if (!a) return fallback;
    if (a->type() != onnx::AttributeProto::FLOAT) unsupported("attribute '" + name + "' is not a float");
    return a->f();
  }
  std::string s(const std::string& name, const std::string& fallback) const {
    const auto* a = find(name);
    if (!a) return fallback;
    if (a->type() != onnx::AttributeProto::STRING) unsupported("attribute '" + name + "' is not a string");
    return a->s();
  }
  std::vector<int64_t> ints(const std::string& name, std::vector<int64_t> fallback) const {
    const auto* a = find(name);
    if (!a) return fallback;
    if (a->type() != onnx::AttributeProto::INTS)
      unsupported("attribute '" + name + "' is not a list of integers");
    return {a->ints().begin(), a->ints().end()};
  }
  // Attributes present that no handler read: unsupported by this importer.
  std::vector<std::string> unread() const {
    std::vector<std::string> out;
    for (const auto& a : n_.attribute())
      if (!used_.count(a.name())) out.push_back(a.name());
    return out;
  }

 private:
  const onnx::NodeProto& n_;
  mutable std::set<std::string> used_;
};

int64_t norm_axis(int64_t axis, size_t rank, const std::string& what) {
  const auto r = static_cast<int64_t>(rank);
  if (axis < -r || axis >= r)
    unsupported(what + " " + std::to_string(axis) + " is outside rank " + std::to_string(r));
  return axis < 0 ? axis + r : axis;
}

class Importer : GraphBuilder {
 public:
  Importer(const onnx::ModelProto& model, std::string name, std::string base_dir,
           const ImportOptions& options)
      : model_(model), name_(std::move(name)), base_dir_(std::move(base_dir)), options_(options) {}

  ImportResult run();

  using Handler = void (Importer::*)(const onnx::NodeProto&, const NodeAttrs&);
  struct OpEntry {
    OnnxOpSupport support;
    Handler handler;
  };
  static const std::vector<OpEntry>& table();

 private:
  // --- values
  bool has_input(const onnx::NodeProto& n, int i) const { return i < n.input_size() && !n.input(i).empty(); }
  Value& input(const onnx::NodeProto& n, int i) {
    if (!has_input(n, i)) unsupported("input " + std::to_string(i) + " is missing");
    auto it = values_.find(n.input(i));
    if (it == values_.end()) unsupported("input '" + n.input(i) + "' is not produced before this node");
    return it->second;
  }
  const Host& constant(const onnx::NodeProto& n, int i, const char* what) {
    Value& v = input(n, i);
    if (v.kind != Value::Kind::host)
      unsupported(std::string(what) + " (input " + std::to_string(i) + " '" + n.input(i) +
                  "') must be a constant");
    return v.host;
  }
  void set_output(const onnx::NodeProto& n, int i, Value v) {
    if (i < n.output_size() && !n.output(i).empty()) values_[n.output(i)] = std::move(v);
  }
  Value host_value(Host h) {
    Value v;
    v.kind = Value::Kind::host;
    v.shape = h.shape;
    v.host = std::move(h);
    return v;
  }
  Value engine_value(int tensor, Shape onnx_shape, bool nhwc) {
    const size_t rank = onnx_shape.size();
    return engine_value(tensor, std::move(onnx_shape),
                        nhwc && rank == 4 ? nhwc_layout() : identity_layout(rank));
  }
  Value engine_value(int tensor, Shape onnx_shape, Layout layout) {
    Value v;
    v.kind = Value::Kind::engine;
    v.native_nhwc = onnx_shape.size() == 4 && layout == nhwc_layout();
    v.shape = std::move(onnx_shape);
    v.forms.emplace_back(std::move(layout), tensor);
    return v;
  }

  // --- engine graph building (GraphBuilder: unique_name, add_constant, add_node, add_node1, engine_shape)

  // The engine tensor of `v` in the requested layout (nhwc only for 4-D),
  // transposing (once, then cached) or materialising a constant as needed.
  int tensor_of(Value& v, bool nhwc, const std::string& hint) {
    return tensor_in(v, nhwc && v.shape.size() == 4 ? nhwc_layout() : identity_layout(v.shape.size()), hint);
  }
  int tensor_in(Value& v, const Layout& want, const std::string& hint) {
    if (const int t = v.find(want); t >= 0) return t;
    int t;
    if (v.kind == Value::Kind::host) {
      t = add_constant(hint, permute_host(v.host, want));
    } else {
      t = add_node1("Transpose", tensor_name(v.native()) + (want == nhwc_layout() ? "/nhwc" : "/nchw"),
                    {v.native()}, {{"perm", relayout(v.layout(), want)}});
    }
    v.forms.emplace_back(want, t);
    return t;
  }
  // The engine Transpose perm from layout `from` to layout `to`.
  static std::vector<int64_t> relayout(const Layout& from, const Layout& to) {
    std::vector<int64_t> perm(to.size());
    for (size_t i = 0; i < to.size(); ++i)
      perm[i] = std::find(from.begin(), from.end(), to[i]) - from.begin();
    return perm;
  }
  // `x` reshaped to `shape` (ONNX order) in whatever layout moves the least
  // data: when the dims the reshape merges or splits lie together, in order,
  // in x's layout, the engine tensor is just reshaped (a channel split of an
  // NHWC tensor stays channels-last); otherwise the fewest groups move first.
  Value reshape_engine(Value& x, const Shape& shape, const std::string& name);
  // An operand of a broadcasting op in the output's layout: a lower-rank
  // operand of a channels-last 4-D result is first given leading 1s.
  int broadcast_operand(Value& v, size_t out_rank, bool nhwc, const std::string& hint) {
    if (!nhwc || v.shape.size() == 4) return tensor_of(v, nhwc, hint);
    Shape padded(out_rank - v.shape.size(), 1);
    padded.insert(padded.end(), v.shape.begin(), v.shape.end());
    if (v.kind == Value::Kind::host) {
      Host h = v.host;
      h.shape = padded;
      return add_constant(hint, permute_host(h, {kToNhwc, kToNhwc + 4}));
    }
    Value r = engine_value(
        add_node1("Reshape", hint + "/4d", {tensor_of(v, false, hint)}, {{"shape", padded}}), padded, false);
    return tensor_of(r, true, hint);
  }
  // `x` reshaped to `shape` (ONNX order), folded when `x` is a constant.
  Value reshape(Value& x, Shape shape, const std::string& name) {
    if (x.kind == Value::Kind::host) {
      Host h = x.host;
      h.shape = std::move(shape);
      return host_value(std::move(h));
    }
    return reshape_engine(x, shape, name);
  }
  // a <op> b with broadcasting; folded when both are constants.
  Value binary(const std::string& op, Value& a, Value& b, const std::string& name) {
    const Shape out = broadcast_shape(a.shape, b.shape);
    if (a.kind == Value::Kind::host && b.kind == Value::Kind::host)
      return fold_binary(op, a.host, b.host, out);
    const bool nhwc =
        out.size() == 4 && ((a.kind == Value::Kind::engine && a.shape.size() == 4 && a.native_nhwc) ||
                            (b.kind == Value::Kind::engine && b.shape.size() == 4 && b.native_nhwc));
    const int ta = broadcast_operand(a, out.size(), nhwc, name + "/a");
    const int tb = broadcast_operand(b, out.size(), nhwc, name + "/b");
    return engine_value(add_node1(op, name, {ta, tb}), out, nhwc);
  }
  Value fold_binary(const std::string& op, const Host& a, const Host& b, const Shape& out) {
    checked_elements(out, "the result");
    if (a.is_float != b.is_float) unsupported("mixes float and integer operands");
    if (a.is_float) {
      std::function<float(float, float)> fn;
      if (op == "Add") fn = [](float x, float y) { return x + y; };
      if (op == "Sub") fn = [](float x, float y) { return x - y; };
      if (op == "Mul") fn = [](float x, float y) { return x * y; };
      if (op == "Div") fn = [](float x, float y) { return x / y; };
      return host_value(Host::floats(out, host_binary(a.f, a.shape, b.f, b.shape, out, fn)));
    }
    std::function<int64_t(int64_t, int64_t)> fn;
    if (op == "Add") fn = [](int64_t x, int64_t y) { return x + y; };
    if (op == "Sub") fn = [](int64_t x, int64_t y) { return x - y; };
    if (op == "Mul") fn = [](int64_t x, int64_t y) { return x * y; };
    if (op == "Div")
      fn = [](int64_t x, int64_t y) {
        if (y == 0) unsupported("integer division by zero");
        return x / y;
      };
    return host_value(Host::ints(out, host_binary(a.i, a.shape, b.i, b.shape, out, fn)));
  }
  // The engine axis of ONNX axis `axis` of value `v` in the layout of tensor `t`.
  static int64_t engine_axis(int64_t axis, bool nhwc) { return nhwc ? kFromNhwc[axis] : axis; }
  // [top, left, bottom, right] for a 2-D window op (Conv, pools).
  std::vector<int64_t> window_pads(const NodeAttrs& a, const Shape& x, const std::vector<int64_t>& kernel,
                                   const std::vector<int64_t>& strides,
                                   const std::vector<int64_t>& dilations);

  // --- handlers
  void conv(const onnx::NodeProto&, const NodeAttrs&);
  void batch_norm(const onnx::NodeProto&, const NodeAttrs&);
  void gemm(const onnx::NodeProto&, const NodeAttrs&);
  void matmul(const onnx::NodeProto&, const NodeAttrs&);
  void unary(const onnx::NodeProto&, const NodeAttrs&);
  void clip(const onnx::NodeProto&, const NodeAttrs&);
  void elementwise(const onnx::NodeProto&, const NodeAttrs&);
  void identity(const onnx::NodeProto&, const NodeAttrs&);
  void dropout(const onnx::NodeProto&, const NodeAttrs&);
  void flatten(const onnx::NodeProto&, const NodeAttrs&);
  void reshape_op(const onnx::NodeProto&, const NodeAttrs&);
  void squeeze(const onnx::NodeProto&, const NodeAttrs&);
  void unsqueeze(const onnx::NodeProto&, const NodeAttrs&);
  void transpose(const onnx::NodeProto&, const NodeAttrs&);
  void concat(const onnx::NodeProto&, const NodeAttrs&);
  void split(const onnx::NodeProto&, const NodeAttrs&);
  void slice(const onnx::NodeProto&, const NodeAttrs&);
  void softmax(const onnx::NodeProto&, const NodeAttrs&);
  void pad(const onnx::NodeProto&, const NodeAttrs&);
  void pool(const onnx::NodeProto&, const NodeAttrs&);
  void global_average_pool(const onnx::NodeProto&, const NodeAttrs&);
  void reduce_mean(const onnx::NodeProto&, const NodeAttrs&);
  void resize(const onnx::NodeProto&, const NodeAttrs&);
  void shape_op(const onnx::NodeProto&, const NodeAttrs&);
  void gather(const onnx::NodeProto&, const NodeAttrs&);
  void cast(const onnx::NodeProto&, const NodeAttrs&);
  void constant_op(const onnx::NodeProto&, const NodeAttrs&);
  void constant_of_shape(const onnx::NodeProto&, const NodeAttrs&);

  void add_graph_inputs();
  void set_graph_outputs();

  const onnx::ModelProto& model_;
  std::string name_, base_dir_;
  ImportOptions options_;
  int64_t opset_ = 0;
  std::map<std::string, Value> values_;
  std::map<std::string, int> uses_;  // ONNX value -> how many node inputs and graph outputs read it
  std::vector<std::string> problems_;
};

// ---------------------------------------------------------------- layouts

Value Importer::reshape_engine(Value& x, const Shape& shape, const std::string& name) {
  const Shape& in = x.shape;
  // Groups of the non-1 input dims whose product equals that of a run of non-1 output dims.
  std::vector<int64_t> in_dims, out_dims;
  for (size_t k = 0; k < in.size(); ++k)
    if (in[k] != 1) in_dims.push_back(static_cast<int64_t>(k));
  for (size_t k = 0; k < shape.size(); ++k)
    if (shape[k] != 1) out_dims.push_back(static_cast<int64_t>(k));
  struct Group {
    std::vector<int64_t> in, out;
  };
  std::vector<Group> groups;
  bool grouped = engine::elements(in) > 0;
  for (size_t i = 0, j = 0; grouped && i < in_dims.size();) {
    Group g;
    int64_t a = 1, b = 1;
    do {
      if (a <= b && i < in_dims.size()) {
        a *= in[static_cast<size_t>(in_dims[i])];
        g.in.push_back(in_dims[i++]);
      } else if (j < out_dims.size()) {
        b *= shape[static_cast<size_t>(out_dims[j])];
        g.out.push_back(out_dims[j++]);
      } else {
        grouped = false;
      }
    } while (grouped && (a != b || g.out.empty()));
    groups.push_back(std::move(g));
  }
  if (!grouped) {  // an empty tensor: plain reshape in ONNX order
    const int t = add_node1("Reshape", name, {tensor_of(x, false, name)}, {{"shape", shape}});
    return engine_value(t, shape, false);
  }
  // The group of each non-1 input dim, and where the dims sit in x's layout.
  const Layout& layout = x.layout();
  std::vector<int64_t> order;  // non-1 input dims in engine order
  for (int64_t d : layout)
    if (in[static_cast<size_t>(d)] != 1) order.push_back(d);
  auto together = [&](const std::vector<int64_t>& seq) {
    size_t pos = 0;
    // Each group's dims must appear consecutively and in increasing order.
    std::map<int64_t, size_t> group_of;
    for (size_t gi = 0; gi < groups.size(); ++gi)
      for (int64_t d : groups[gi].in) group_of[d] = gi;
    while (pos < seq.size()) {
      const Group& g = groups[group_of[seq[pos]]];
      for (int64_t d : g.in)
        if (pos >= seq.size() || seq[pos++] != d) return false;
    }
    return true;
  };
  int source = x.native();
  std::vector<int64_t> seq = order;
  if (!together(order)) {
    // Move the fewest dims: groups in the order their first dim appears, size-1 dims first.
    std::vector<size_t> by_position(groups.size());
    std::iota(by_position.begin(), by_position.end(), 0);
    auto first_position = [&](size_t gi) {
      size_t best = order.size();
      for (int64_t d : groups[gi].in)
        best = std::min<size_t>(best, std::find(order.begin(), order.end(), d) - order.begin());
      return best;
    };
    std::stable_sort(by_position.begin(), by_position.end(),
                     [&](size_t a, size_t b) { return first_position(a) < first_position(b); });
    Layout moved;
    for (int64_t d : layout)
      if (in[static_cast<size_t>(d)] == 1) moved.push_back(d);
    seq.clear();
    for (size_t gi : by_position)
      for (int64_t d : groups[gi].in) moved.push_back(d), seq.push_back(d);
    source = tensor_in(x, moved, name);
  }
  // The output's non-1 dims in engine order: each group's output dims where its input dims were.
  std::vector<int64_t> out_seq;
  for (size_t pos = 0; pos < seq.size();) {
    for (const Group& g : groups)
      if (g.in.front() == seq[pos]) {
        out_seq.insert(out_seq.end(), g.out.begin(), g.out.end());
        pos += g.in.size();
        break;
      }
  }
  // Size-1 output dims go where they make a familiar layout (ONNX order, or NHWC), else in ONNX order.
  auto non1 = [&](const Layout& l) {
    std::vector<int64_t> v;
    for (int64_t d : l)
      if (shape[static_cast<size_t>(d)] != 1) v.push_back(d);
    return v;
  };
  Layout out_layout = identity_layout(shape.size());
  if (non1(out_layout) != out_seq) {
    if (shape.size() == 4 && non1(nhwc_layout()) == out_seq) {
      out_layout = nhwc_layout();
    } else {
      out_layout.clear();
      size_t next = 0;
      for (size_t k = 0; k < shape.size(); ++k) {
        if (shape[k] == 1)
          out_layout.push_back(static_cast<int64_t>(k));
        else
          out_layout.push_back(out_seq[next++]);
      }
    }
  }
  Shape engine_shape(shape.size());
  for (size_t k = 0; k < shape.size(); ++k) engine_shape[k] = shape[static_cast<size_t>(out_layout[k])];
  const int t = add_node1("Reshape", name, {source}, {{"shape", engine_shape}});
  return engine_value(t, shape, out_layout);
}

// ---------------------------------------------------------------- handlers

std::vector<int64_t> Importer::window_pads(const NodeAttrs& a, const Shape& x,
                                           const std::vector<int64_t>& kernel,
                                           const std::vector<int64_t>& strides,
                                           const std::vector<int64_t>& dilations) {
  const std::string auto_pad = a.s("auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") {
    auto pads = a.ints("pads", {0, 0, 0, 0});
    if (pads.size() != 4) unsupported("attribute 'pads' needs 4 values, has " + std::to_string(pads.size()));
    for (int64_t p : pads)
      if (p < 0) unsupported("attribute 'pads' has a negative value");
    return pads;
  }
  if (auto_pad == "VALID") return {0, 0, 0, 0};
  if (auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
    unsupported("attribute 'auto_pad' has '" + auto_pad + "'");
  std::vector<int64_t> pads(4);
  for (size_t k = 0; k < 2; ++k) {
    const int64_t in = x[2 + k], out = (in + strides[k] - 1) / strides[k];
    const int64_t span = (kernel[k] - 1) * dilations[k] + 1;
    const int64_t total = std::max<int64_t>(0, (out - 1) * strides[k] + span - in);
    const int64_t small = total / 2;
    pads[k] = auto_pad == "SAME_UPPER" ? small : total - small;
    pads[k + 2] = total - pads[k];
  }
  return pads;
}

std::vector<int64_t> two_positive(const NodeAttrs& a, const std::string& name,
                                  std::vector<int64_t> fallback) {
  auto v = a.ints(name, std::move(fallback));
  if (v.size() != 2)
    unsupported("attribute '" + name + "' has " + std::to_string(v.size()) +
                " values; only 2-D windows are supported");
  for (int64_t x : v)
    if (x < 1) unsupported("attribute '" + name + "' has " + std::to_string(x));
  return v;
}

void Importer::conv(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  if (x.shape.size() != 4)
    unsupported("only 2-D convolution is supported (input has rank " + std::to_string(x.shape.size()) + ")");
  const Host& w = constant(n, 1, "the weights");
  if (!w.is_float || w.shape.size() != 4) unsupported("weights must be a 4-D float tensor");
  const int64_t o = w.shape[0], kh = w.shape[2], kw = w.shape[3];
  if (a.has("kernel_shape") && a.ints("kernel_shape", {}) != std::vector<int64_t>{kh, kw})
    unsupported("attribute 'kernel_shape' does not match the weights " + shape_text(w.shape));
  const auto strides = two_positive(a, "strides", {1, 1});
  const auto dilations = two_positive(a, "dilations", {1, 1});
  const auto pads = window_pads(a, x.shape, {kh, kw}, strides, dilations);
  std::vector<int> inputs = {tensor_of(x, true, n.input(0)),
                             add_constant(n.input(1), permute_host(w, {0, 2, 3, 1}))};
  if (has_input(n, 2)) {
    const Host& b = constant(n, 2, "the bias");
    if (!b.is_float || b.shape != Shape{o})
      unsupported("bias must be a float vector of " + std::to_string(o));
    inputs.push_back(add_constant(n.input(2), b));
  }
  const int t =
      add_node1("Conv2D", n.output(0), inputs,
                {{"strides", strides}, {"dilations", dilations}, {"pads", pads}, {"group", a.i("group", 1)}});
  Shape shape = engine_shape(t);
  set_output(n, 0, engine_value(t, {shape[0], shape[3], shape[1], shape[2]}, true));
}

void Importer::batch_norm(const onnx::NodeProto& n, const NodeAttrs& a) {
  if (a.i("training_mode", 0) != 0) unsupported("training_mode = 1 (only inference)");
  if (a.i("spatial", 1) != 1) unsupported("spatial = 0");
  a.f("momentum", 0.9f);  // training only
  if (n.output_size() > 1) unsupported("outputs running mean and variance (training only)");
  const float eps = a.f("epsilon", 1e-5f);
  Value& x = input(n, 0);
  if (x.shape.size() < 2) unsupported("input needs a channel axis");
  const int64_t c = x.shape[1];
  const Host* p[4];
  const char* what[4] = {"scale", "bias", "mean", "variance"};
  for (int k = 0; k < 4; ++k) {
    p[k] = &constant(n, k + 1, what[k]);
    if (!p[k]->is_float || p[k]->shape != Shape{c})
      unsupported(std::string(what[k]) + " must be a float vector of " + std::to_string(c));
  }
  std::vector<float> scale(static_cast<size_t>(c)), shift(static_cast<size_t>(c));
  for (size_t k = 0; k < scale.size(); ++k) {
    const double s = static_cast<double>(p[0]->f[k]) / std::sqrt(static_cast<double>(p[3]->f[k]) + eps);
    scale[k] = static_cast<float>(s);
    shift[k] = static_cast<float>(p[1]->f[k] - p[2]->f[k] * s);
  }
  // Folded into the convolution that makes x when nothing else reads it.
  if (x.kind == Value::Kind::engine && x.native_nhwc && uses_[n.input(0)] == 1) {
    for (auto& node : graph_.nodes) {
      if (node.op != "Conv2D" || node.outputs[0] != x.native() || node.has_attr("activation")) continue;
      const engine::Tensor& w = graph_.tensors[static_cast<size_t>(node.inputs[1])];
      auto wv = w.values<float>();
      std::vector<float> nw(wv.begin(), wv.end()), nb(static_cast<size_t>(c), 0.0f);
      const size_t per = nw.size() / static_cast<size_t>(c);
      if (node.inputs.size() > 2) {
        auto bv = graph_.tensors[static_cast<size_t>(node.inputs[2])].values<float>();
        std::copy(bv.begin(), bv.end(), nb.begin());
      }
      for (size_t k = 0; k < static_cast<size_t>(c); ++k) {
        for (size_t j = 0; j < per; ++j) nw[k * per + j] *= scale[k];
        nb[k] = nb[k] * scale[k] + shift[k];
      }
      const Shape wshape = w.shape;
      node.inputs[1] = add_constant(n.name() + "/weights", Host::floats(wshape, std::move(nw)));
      const int b = add_constant(n.name() + "/bias", Host::floats({c}, std::move(nb)));
      if (node.inputs.size() > 2)
        node.inputs[2] = b;
      else
        node.inputs.push_back(b);
      set_output(n, 0, x);
      return;
    }
  }
  Shape pshape(x.shape.size() - 1, 1);
  pshape[0] = c;
  Value vs = host_value(Host::floats(pshape, scale)), vb = host_value(Host::floats(pshape, shift));
  Value scaled = binary("Mul", x, vs, n.output(0) + "/scale");
  set_output(n, 0, binary("Add", scaled, vb, n.output(0)));
}

void Importer::gemm(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  const Host& b = constant(n, 1, "B");
  if (x.shape.size() != 2 || b.shape.size() != 2 || !b.is_float)
    unsupported("A and B must be 2-D float matrices");
  const bool trans_a = a.i("transA", 0) != 0, trans_b = a.i("transB", 0) != 0;
  const float alpha = a.f("alpha", 1.0f), beta = a.f("beta", 1.0f);
  // FullyConnected wants W as [N, K].
  Host w = trans_b ? b : permute_host(b, {1, 0});
  for (float& v : w.f) v *= alpha;
  const int64_t m = trans_a ? x.shape[1] : x.shape[0], k = trans_a ? x.shape[0] : x.shape[1], nn = w.shape[0];
  if (w.shape[1] != k) unsupported("B " + shape_text(b.shape) + " does not fit A " + shape_text(x.shape));
  int xt = tensor_of(x, false, n.input(0));
  if (trans_a) xt = add_node1("Transpose", n.output(0) + "/a", {xt}, {{"perm", std::vector<int64_t>{1, 0}}});
  std::vector<int> inputs = {xt, add_constant(n.input(1), w)};
  bool add_c = false;
  if (has_input(n, 2)) {
    Value& c = input(n, 2);
    const Shape& cs = c.shape;
    const bool vector_c = engine::elements(cs) == nn && (cs == Shape{nn} || cs == Shape{1, nn});
    if (c.kind == Value::Kind::host && c.host.is_float && (vector_c || c.host.size() == 1)) {
      std::vector<float> bias(static_cast<size_t>(nn));
      for (size_t j = 0; j < bias.size(); ++j) bias[j] = beta * c.host.f[c.host.size() == 1 ? 0 : j];
      inputs.push_back(add_constant(n.input(2), Host::floats({nn}, std::move(bias))));
    } else {
      add_c = true;
    }
  }
  Value y = engine_value(add_node1("FullyConnected", add_c ? n.output(0) + "/ab" : n.output(0), inputs),
                         {m, nn}, false);
  if (add_c) {
    Value& c = input(n, 2);
    if (beta == 1.0f) {
      set_output(n, 0, binary("Add", y, c, n.output(0)));
    } else {
      Value vbeta = host_value(Host::floats({}, {beta}));
      Value bc = binary("Mul", c, vbeta, n.output(0) + "/c");
      set_output(n, 0, binary("Add", y, bc, n.output(0)));
    }
  } else {
    set_output(n, 0, y);
  }
}

void Importer::matmul(const onnx::NodeProto& n, const NodeAttrs&) {
  Value& x = input(n, 0);
  Value& bv = input(n, 1);
  if (bv.kind != Value::Kind::host || bv.shape.size() != 2 || !bv.host.is_float)
    unsupported("only a constant 2-D B is supported (B " + shape_text(bv.shape) + ")");
  if (x.shape.size() < 2) unsupported("A must have rank 2 or more");
  if (x.shape.back() != bv.shape[0])
    unsupported("B " + shape_text(bv.shape) + " does not fit A " + shape_text(x.shape));
  const int t =
      add_node1("FullyConnected", n.output(0),
                {tensor_of(x, false, n.input(0)), add_constant(n.input(1), permute_host(bv.host, {1, 0}))});
  Shape shape = x.shape;
  shape.back() = bv.shape[1];
  set_output(n, 0, engine_value(t, shape, false));
}

void Importer::unary(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  Attrs attrs;
  if (n.op_type() == "HardSigmoid") {
    attrs["alpha"] = a.f("alpha", 0.2f);
    attrs["beta"] = a.f("beta", 0.5f);
  }
  if (n.op_type() == "LeakyRelu") attrs["alpha"] = a.f("alpha", 0.01f);
  const bool nhwc = x.kind == Value::Kind::engine && x.native_nhwc;
  const int t = add_node1(n.op_type(), n.output(0), {tensor_of(x, nhwc, n.input(0))}, attrs);
  set_output(n, 0, engine_value(t, x.shape, nhwc));
}

void Importer::clip(const onnx::NodeProto& n, const NodeAttrs& a) {
  const float inf = std::numeric_limits<float>::infinity();
  float lo = -inf, hi = inf;
  if (opset_ < 11) {
    lo = a.f("min", -inf);
    hi = a.f("max", inf);
  } else {
    if (has_input(n, 1)) lo = constant(n, 1, "min").as_scalar_float("min");
    if (has_input(n, 2)) hi = constant(n, 2, "max").as_scalar_float("max");
  }
  Value& x = input(n, 0);
  const bool nhwc = x.kind == Value::Kind::engine && x.native_nhwc;
  const int t = add_node1("Clip", n.output(0), {tensor_of(x, nhwc, n.input(0))}, {{"min", lo}, {"max", hi}});
  set_output(n, 0, engine_value(t, x.shape, nhwc));
}

void Importer::elementwise(const onnx::NodeProto& n, const NodeAttrs& a) {
  if (opset_ < 7 && a.has("broadcast")) unsupported("legacy attribute 'broadcast'");
  set_output(n, 0, binary(n.op_type(), input(n, 0), input(n, 1), n.output(0)));
}

void Importer::identity(const onnx::NodeProto& n, const NodeAttrs&) { set_output(n, 0, input(n, 0)); }

void Importer::dropout(const onnx::NodeProto& n, const NodeAttrs& a) {
  a.f("ratio", 0.5f);
  a.i("seed", 0);
  a.i("is_test", 1);
  if (has_input(n, 2)) {
    const Host& t = constant(n, 2, "training_mode");
    if (t.size() != 1 || (t.is_float ? t.f[0] != 0.0f : t.i[0] != 0)) unsupported("training_mode = true");
  }
  if (n.output_size() > 1 && !n.output(1).empty()) unsupported("the mask output (training only)");
  set_output(n, 0, input(n, 0));
}

void Importer::flatten(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  const int64_t axis = a.i("axis", 1);
  const auto r = static_cast<int64_t>(x.shape.size());
  if (axis < -r || axis > r)
    unsupported("axis " + std::to_string(axis) + " is outside rank " + std::to_string(r));
  const int64_t cut = axis < 0 ? axis + r : axis;
  int64_t outer = 1, inner = 1;
  for (int64_t k = 0; k < r; ++k) (k < cut ? outer : inner) *= x.shape[static_cast<size_t>(k)];
  set_output(n, 0, reshape(x, {outer, inner}, n.output(0)));
}

void Importer::reshape_op(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  Shape shape = constant(n, 1, "the shape").as_ints("the shape");
  const bool allow_zero = a.i("allowzero", 0) != 0;
  int unknown = -1;
  int64_t known = 1;
  for (size_t k = 0; k < shape.size(); ++k) {
    if (shape[k] == 0 && !allow_zero) {
      if (k >= x.shape.size())
        unsupported("shape " + shape_text(shape) + " copies a dimension the input lacks");
      shape[k] = x.shape[k];
    }
    if (shape[k] == -1) {
      if (unknown >= 0) unsupported("shape " + shape_text(shape) + " has more than one -1");
      unknown = static_cast<int>(k);
    } else if (shape[k] < 0) {
      unsupported("shape " + shape_text(shape) + " has a negative dimension");
    } else {
      if (known != 0 && shape[k] > kMaxElements / known)
        unsupported("shape " + shape_text(shape) + " is too large (over " + std::to_string(kMaxElements) +
                    " elements)");
      known *= shape[k];
    }
  }
  const int64_t total = engine::elements(x.shape);
  if (unknown >= 0) {
    if (known == 0 || total % known != 0)
      unsupported("cannot reshape " + shape_text(x.shape) + " to " + shape_text(shape));
    shape[static_cast<size_t>(unknown)] = total / known;
  }
  if (engine::elements(shape) != total)
    unsupported("cannot reshape " + shape_text(x.shape) + " to " + shape_text(shape));
  set_output(n, 0, reshape(x, shape, n.output(0)));
}

void Importer::squeeze(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  std::vector<int64_t> axes =
      opset_ < 13 ? a.ints("axes", {})
                  : (has_input(n, 1) ? constant(n, 1, "axes").as_ints("axes") : std::vector<int64_t>{});
  std::vector<bool> drop(x.shape.size(), false);
  if (axes.empty()) {
    for (size_t k = 0; k < x.shape.size(); ++k) drop[k] = x.shape[k] == 1;
  }
  for (int64_t ax : axes) {
    const auto k = static_cast<size_t>(norm_axis(ax, x.shape.size(), "axis"));
    if (x.shape[k] != 1)
      unsupported("axis " + std::to_string(ax) + " has size " + std::to_string(x.shape[k]) + ", not 1");
    drop[k] = true;
  }
  Shape shape;
  for (size_t k = 0; k < x.shape.size(); ++k)
    if (!drop[k]) shape.push_back(x.shape[k]);
  set_output(n, 0, reshape(x, shape, n.output(0)));
}

void Importer::unsqueeze(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  std::vector<int64_t> axes = opset_ < 13 ? a.ints("axes", {}) : constant(n, 1, "axes").as_ints("axes");
  const size_t rank = x.shape.size() + axes.size();
  std::vector<bool> added(rank, false);
  for (int64_t ax : axes) {
    const auto k = static_cast<size_t>(norm_axis(ax, rank, "axis"));
    if (added[k]) unsupported("axis " + std::to_string(ax) + " is given twice");
    added[k] = true;
  }
  Shape shape;
  size_t from = 0;
  for (size_t k = 0; k < rank; ++k) shape.push_back(added[k] ? 1 : x.shape[from++]);
  set_output(n, 0, reshape(x, shape, n.output(0)));
}

void Importer::transpose(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  const size_t rank = x.shape.size();
  std::vector<int64_t> reversed(rank);
  for (size_t k = 0; k < rank; ++k) reversed[k] = static_cast<int64_t>(rank - 1 - k);
  const auto perm = a.ints("perm", reversed);
  std::vector<int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(rank);
  std::iota(iota.begin(), iota.end(), 0);
  if (sorted != iota)
    unsupported("attribute 'perm' " + shape_text(perm) + " is not a permutation of the input's axes");
  Shape shape(rank);
  for (size_t k = 0; k < rank; ++k) shape[k] = x.shape[static_cast<size_t>(perm[k])];
  if (x.kind == Value::Kind::host) return set_output(n, 0, host_value(permute_host(x.host, perm)));
  // No data moves: the output is the same engine tensor with its dims relabelled
  // (engine dim i holds input dim layout[i], which is output dim inverse[layout[i]]).
  std::vector<int64_t> inverse(rank);
  for (size_t k = 0; k < rank; ++k) inverse[static_cast<size_t>(perm[k])] = static_cast<int64_t>(k);
  Layout layout(rank);
  for (size_t k = 0; k < rank; ++k) layout[k] = inverse[static_cast<size_t>(x.layout()[k])];
  set_output(n, 0, engine_value(x.native(), shape, layout));
}

void Importer::concat(const onnx::NodeProto& n, const NodeAttrs& a) {
  std::vector<Value*> parts;
  for (int k = 0; k < n.input_size(); ++k) parts.push_back(&input(n, k));
  if (parts.empty()) unsupported("no inputs");
  const size_t rank = parts[0]->shape.size();
  if (!a.has("axis")) unsupported("attribute 'axis' is missing");
  const auto axis = static_cast<size_t>(norm_axis(a.i("axis", 0), rank, "axis"));
  Shape shape = parts[0]->shape;
  shape[axis] = 0;
  bool all_host = true, nhwc = false;
  for (Value* p : parts) {
    if (p->shape.size() != rank) unsupported("inputs of different ranks");
    for (size_t k = 0; k < rank; ++k)
      if (k != axis && p->shape[k] != shape[k])
        unsupported("input " + shape_text(p->shape) + " does not fit " + shape_text(parts[0]->shape));
    shape[axis] += p->shape[axis];
    all_host = all_host && p->kind == Value::Kind::host;
    nhwc = nhwc || (rank == 4 && p->kind == Value::Kind::engine && p->native_nhwc);
  }
  if (all_host) {
    // Concatenate constants: outer blocks of each part in turn.
    int64_t outer = 1;
    for (size_t k = 0; k < axis; ++k) outer *= shape[k];
    Host h;
    h.is_float = parts[0]->host.is_float;
    h.shape = shape;
    for (int64_t o = 0; o < outer; ++o)
      for (Value* p : parts) {
        if (p->host.is_float != h.is_float) unsupported("mixes float and integer inputs");
        const auto block = static_cast<size_t>(engine::elements(p->shape) / std::max<int64_t>(outer, 1));
        const size_t start = static_cast<size_t>(o) * block;
        if (h.is_float)
          h.f.insert(h.f.end(), p->host.f.begin() + start, p->host.f.begin() + start + block);
        else
          h.i.insert(h.i.end(), p->host.i.begin() + start, p->host.i.begin() + start + block);
      }
    return set_output(n, 0, host_value(std::move(h)));
  }
  std::vector<int> inputs;
  for (int k = 0; k < n.input_size(); ++k)
    inputs.push_back(tensor_of(*parts[static_cast<size_t>(k)], nhwc, n.input(k)));
  const int t =
      add_node1("Concat", n.output(0), inputs, {{"axis", engine_axis(static_cast<int64_t>(axis), nhwc)}});
  set_output(n, 0, engine_value(t, shape, nhwc));
}

void Importer::split(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  const auto axis = static_cast<size_t>(norm_axis(a.i("axis", 0), x.shape.size(), "axis"));
  std::vector<int64_t> sizes =
      opset_ < 13 ? a.ints("split", {})
                  : (has_input(n, 1) ? constant(n, 1, "split").as_ints("split") : std::vector<int64_t>{});
  const int outs = n.output_size();
  const int64_t len = x.shape[axis];
  if (sizes.empty()) {
    if (len % outs != 0)
      unsupported("axis of " + std::to_string(len) + " does not split into " + std::to_string(outs) +
                  " equal parts");
    sizes.assign(static_cast<size_t>(outs), len / outs);
  }
  if (static_cast<int>(sizes.size()) != outs)
    unsupported(std::to_string(sizes.size()) + " split sizes for " + std::to_string(outs) + " outputs");
  for (int64_t s : sizes)
    if (s <= 0) unsupported("split sizes " + shape_text(sizes) + " include an empty part");
  const bool nhwc = x.kind == Value::Kind::engine && x.native_nhwc;
  std::vector<std::string> names;
  for (int k = 0; k < outs; ++k)
    names.push_back(n.output(k).empty() ? n.name() + ":" + std::to_string(k) : n.output(k));
  const auto ts =
      add_node("Split", n.name().empty() ? names[0] : n.name(), {tensor_of(x, nhwc, n.input(0))},
               {{"axis", engine_axis(static_cast<int64_t>(axis), nhwc)}, {"split", sizes}}, names);
  for (int k = 0; k < outs; ++k) {
    Shape shape = x.shape;
    shape[axis] = sizes[static_cast<size_t>(k)];
    set_output(n, k, engine_value(ts[static_cast<size_t>(k)], shape, nhwc));
  }
}

void Importer::slice(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  std::vector<int64_t> starts, ends, axes, steps;
  if (opset_ < 10) {
    starts = a.ints("starts", {});
    ends = a.ints("ends", {});
    axes = a.ints("axes", {});
  } else {
    starts = constant(n, 1, "starts").as_ints("starts");
    ends = constant(n, 2, "ends").as_ints("ends");
    if (has_input(n, 3)) axes = constant(n, 3, "axes").as_ints("axes");
    if (has_input(n, 4)) steps = constant(n, 4, "steps").as_ints("steps");
  }
  const size_t count = starts.size();
  if (axes.empty())
    for (size_t k = 0; k < count; ++k) axes.push_back(static_cast<int64_t>(k));
  if (steps.empty()) steps.assign(count, 1);
  if (ends.size() != count || axes.size() != count || steps.size() != count)
    unsupported("starts, ends, axes and steps differ in length");
  Shape shape = x.shape;
  std::vector<int64_t> begin(x.shape.size(), 0), step(x.shape.size(), 1);
  for (size_t k = 0; k < count; ++k) {
    axes[k] = norm_axis(axes[k], x.shape.size(), "axis");
    if (steps[k] <= 0)
      unsupported("step " + std::to_string(steps[k]) + " (only positive steps are supported)");
    const int64_t len = x.shape[static_cast<size_t>(axes[k])];
    int64_t s = starts[k] < 0 ? starts[k] + len : starts[k], e = ends[k] < 0 ? ends[k] + len : ends[k];
    s = std::clamp<int64_t>(s, 0, len);
    e = std::clamp<int64_t>(e, 0, len);
    const auto ax = static_cast<size_t>(axes[k]);
    shape[ax] = e > s ? (e - s + steps[k] - 1) / steps[k] : 0;
    begin[ax] = s;
    step[ax] = steps[k];
  }
  if (x.kind == Value::Kind::host) {
    const auto in_strides = strides_of(x.shape);
    Host h;
    h.is_float = x.host.is_float;
    h.shape = shape;
    const auto total = static_cast<size_t>(engine::elements(shape));
    std::vector<int64_t> idx(shape.size(), 0);
    for (size_t e = 0; e < total; ++e) {
      int64_t src = 0;
      for (size_t k = 0; k < shape.size(); ++k) src += (begin[k] + idx[k] * step[k]) * in_strides[k];
      if (h.is_float)
        h.f.push_back(x.host.f[static_cast<size_t>(src)]);
      else
        h.i.push_back(x.host.i[static_cast<size_t>(src)]);
      for (size_t k = shape.size(); k-- > 0;) {
        if (++idx[k] < shape[k]) break;
        idx[k] = 0;
      }
    }
    return set_output(n, 0, host_value(std::move(h)));
  }
  const bool nhwc = x.native_nhwc;
  for (auto& ax : axes) ax = engine_axis(ax, nhwc);
  const int t = add_node1("Slice", n.output(0), {tensor_of(x, nhwc, n.input(0))},
                          {{"starts", starts}, {"ends", ends}, {"axes", axes}, {"steps", steps}});
  set_output(n, 0, engine_value(t, shape, nhwc));
}

void Importer::softmax(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  const size_t rank = x.shape.size();
  if (opset_ < 13) {
    // Softmax over the flattened trailing dims from `axis` on.
    const auto axis = static_cast<size_t>(norm_axis(a.i("axis", 1), rank, "axis"));
    int64_t outer = 1, inner = 1;
    for (size_t k = 0; k < rank; ++k) (k < axis ? outer : inner) *= x.shape[k];
    Value flat = reshape(x, {outer, inner}, n.output(0) + "/2d");
    Value y = engine_value(add_node1("Softmax", n.output(0) + "/softmax", {tensor_of(flat, false, "")}),
                           {outer, inner}, false);
    return set_output(n, 0, reshape(y, x.shape, n.output(0)));
  }
  const auto axis = norm_axis(a.i("axis", -1), rank, "axis");
  const bool nhwc = x.kind == Value::Kind::engine && x.native_nhwc;
  const int64_t e = engine_axis(axis, nhwc), last = static_cast<int64_t>(rank) - 1;
  int t = tensor_of(x, nhwc, n.input(0));
  if (e == last) return set_output(n, 0, engine_value(add_node1("Softmax", n.output(0), {t}), x.shape, nhwc));
  std::vector<int64_t> swap(rank);
  std::iota(swap.begin(), swap.end(), 0);
  std::swap(swap[static_cast<size_t>(e)], swap[static_cast<size_t>(last)]);
  t = add_node1("Transpose", n.output(0) + "/last", {t}, {{"perm", swap}});
  t = add_node1("Softmax", n.output(0) + "/softmax", {t});
  t = add_node1("Transpose", n.output(0), {t}, {{"perm", swap}});
  set_output(n, 0, engine_value(t, x.shape, nhwc));
}

void Importer::pad(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  const size_t rank = x.shape.size();
  std::vector<int64_t> pads;
  float value = 0.0f;
  if (opset_ < 11) {
    pads = a.ints("pads", {});
    value = a.f("value", 0.0f);
  } else {
    pads = constant(n, 1, "pads").as_ints("pads");
    if (has_input(n, 2)) value = constant(n, 2, "constant_value").as_scalar_float("constant_value");
    if (has_input(n, 3)) unsupported("input 'axes'");
  }
  if (pads.size() != 2 * rank)
    unsupported("pads has " + std::to_string(pads.size()) + " values for rank " + std::to_string(rank));
  for (int64_t p : pads)
    if (p < 0) unsupported("negative pads (cropping)");
  const bool nhwc = x.kind == Value::Kind::engine && x.native_nhwc;
  std::vector<int64_t> epads(pads.size());
  for (size_t k = 0; k < rank; ++k) {
    const auto from = static_cast<size_t>(nhwc ? kToNhwc[k] : static_cast<int64_t>(k));
    epads[k] = pads[from];
    epads[k + rank] = pads[from + rank];
  }
  Shape shape = x.shape;
  for (size_t k = 0; k < rank; ++k) shape[k] += pads[k] + pads[k + rank];
  const int t = add_node1("Pad", n.output(0), {tensor_of(x, nhwc, n.input(0))},
                          {{"pads", epads}, {"mode", a.s("mode", "constant")}, {"value", value}});
  set_output(n, 0, engine_value(t, shape, nhwc));
}

void Importer::pool(const onnx::NodeProto& n, const NodeAttrs& a) {
  const bool is_max = n.op_type() == "MaxPool";
  Value& x = input(n, 0);
  if (x.shape.size() != 4)
    unsupported("only 2-D pooling is supported (input has rank " + std::to_string(x.shape.size()) + ")");
  if (is_max && n.output_size() > 1 && !n.output(1).empty()) unsupported("the Indices output");
  if (a.i("storage_order", 0) != 0) unsupported("storage_order = 1");
  const auto kernel = two_positive(a, "kernel_shape", {});
  const auto strides = two_positive(a, "strides", {1, 1});
  const auto dilations = two_positive(a, "dilations", {1, 1});
  if (dilations != std::vector<int64_t>{1, 1}) unsupported("dilations " + shape_text(dilations));
  auto pads = window_pads(a, x.shape, kernel, strides, dilations);
  const bool ceil = a.i("ceil_mode", 0) != 0;
  const int64_t include_pad = is_max ? 0 : a.i("count_include_pad", 0);
  Shape shape = x.shape;
  for (size_t k = 0; k < 2; ++k) {
    const int64_t in = x.shape[2 + k], span = in + pads[k] + pads[k + 2] - kernel[k];
    if (span < 0) unsupported("the window is larger than the padded input");
    int64_t out = (ceil ? (span + strides[k] - 1) / strides[k] : span / strides[k]) + 1;
    // As ONNX Runtime and PyTorch: the last window must start inside the input or its begin padding.
    if (ceil && (out - 1) * strides[k] >= in + pads[k]) --out;
    const int64_t extra = (out - 1) * strides[k] + kernel[k] - (in + pads[k] + pads[k + 2]);
    if (extra > 0) {
      if (include_pad)
        unsupported("ceil_mode = 1 with count_include_pad = 1 where the last window passes the pads");
      pads[k + 2] += extra;
    }
    shape[2 + k] = out;
  }
  Attrs attrs = {{"kernel", kernel}, {"strides", strides}, {"pads", pads}};
  if (!is_max) attrs["count_include_pad"] = include_pad;
  const int t =
      add_node1(is_max ? "MaxPool2D" : "AveragePool2D", n.output(0), {tensor_of(x, true, n.input(0))}, attrs);
  set_output(n, 0, engine_value(t, shape, true));
}

void Importer::global_average_pool(const onnx::NodeProto& n, const NodeAttrs&) {
  Value& x = input(n, 0);
  if (x.shape.size() != 4)
    unsupported("only 4-D inputs are supported (input has rank " + std::to_string(x.shape.size()) + ")");
  const int t = add_node1("GlobalAveragePool", n.output(0), {tensor_of(x, true, n.input(0))});
  set_output(n, 0, engine_value(t, {x.shape[0], x.shape[1], 1, 1}, true));
}

void Importer::reduce_mean(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  const size_t rank = x.shape.size();
  std::vector<int64_t> axes = a.ints("axes", {});
  if (axes.empty())
    for (size_t k = 0; k < rank; ++k) axes.push_back(static_cast<int64_t>(k));
  std::vector<bool> reduced(rank, false);
  for (int64_t ax : axes) {
    const auto k = static_cast<size_t>(norm_axis(ax, rank, "axis"));
    if (reduced[k]) unsupported("axis " + std::to_string(ax) + " is given twice");
    reduced[k] = true;
  }
  const bool keep = a.i("keepdims", 1) != 0;
  Shape shape;
  for (size_t k = 0; k < rank; ++k)
    if (!reduced[k] || keep) shape.push_back(reduced[k] ? 1 : x.shape[k]);
  const bool nhwc = x.kind == Value::Kind::engine && x.native_nhwc;
  if (nhwc && reduced == std::vector<bool>{false, false, true, true}) {
    // The spatial mean of a channels-last image: GlobalAveragePool.
    Value y =
        engine_value(add_node1("GlobalAveragePool", keep ? n.output(0) : n.output(0) + "/pool", {x.native()}),
                     {x.shape[0], x.shape[1], 1, 1}, true);
    return set_output(n, 0, keep ? y : reshape(y, shape, n.output(0)));
  }
  // Channels-last input: fine when the kept axes stay in ONNX order (or keepdims keeps the layout).
  bool use_nhwc = false;
  if (nhwc) {
    std::vector<int64_t> kept;
    for (size_t k = 0; k < 4; ++k)
      if (!reduced[static_cast<size_t>(kToNhwc[k])]) kept.push_back(kToNhwc[k]);
    use_nhwc = keep || std::is_sorted(kept.begin(), kept.end());
  }
  std::vector<int64_t> eaxes;
  for (size_t k = 0; k < rank; ++k)
    if (reduced[k]) eaxes.push_back(engine_axis(static_cast<int64_t>(k), use_nhwc));
  const int t = add_node1("ReduceMean", n.output(0), {tensor_of(x, use_nhwc, n.input(0))},
                          {{"axes", eaxes}, {"keepdims", int64_t{keep}}});
  set_output(n, 0, engine_value(t, shape, use_nhwc && keep));
}

void Importer::resize(const onnx::NodeProto& n, const NodeAttrs& a) {
  if (opset_ < 11) unsupported("Resize before opset 11");
  Value& x = input(n, 0);
  if (x.shape.size() != 4)
    unsupported("only 4-D inputs are supported (input has rank " + std::to_string(x.shape.size()) + ")");
  const std::string ctm = a.s("coordinate_transformation_mode", "half_pixel");
  if (ctm == "tf_crop_and_resize") unsupported("coordinate_transformation_mode 'tf_crop_and_resize'");
  if (a.i("exclude_outside", 0) != 0) unsupported("exclude_outside = 1");
  const std::string mode = a.s("mode", "nearest");
  a.f("cubic_coeff_a", -0.75f);
  a.f("extrapolation_value", 0.0f);
  Shape out = x.shape;
  std::vector<float> scales;  // ONNX's, when given: the coordinates use them
  if (has_input(n, 3) && !constant(n, 3, "sizes").i.empty()) {
    out = constant(n, 3, "sizes").as_ints("sizes");
    if (out.size() != 4) unsupported("sizes has " + std::to_string(out.size()) + " values for a 4-D input");
  } else if (has_input(n, 2) && constant(n, 2, "scales").size() > 0) {
    const Host& s = constant(n, 2, "scales");
    if (!s.is_float || s.size() != 4) unsupported("scales must be 4 floats");
    for (size_t k = 0; k < 4; ++k) {
      const double size = std::floor(static_cast<double>(x.shape[k]) * s.f[k]);
      if (!(s.f[k] > 0.0f) || !(size <= static_cast<double>(kMaxElements)))
        unsupported("scale " + std::to_string(s.f[k]) + " is not above 0 or gives a size over " +
                    std::to_string(kMaxElements));
      out[k] = static_cast<int64_t>(size);
    }
    scales = {s.f[2], s.f[3]};
  } else {
    unsupported("neither scales nor sizes is given");
  }
  if (out[0] != x.shape[0] || out[1] != x.shape[1]) unsupported("resizing the batch or channel axis");
  checked_elements(out, "the output size");
  Attrs attrs = {{"size", std::vector<int64_t>{out[2], out[3]}},
                 {"mode", mode},
                 {"coordinate_transformation_mode", ctm},
                 {"nearest_mode", a.s("nearest_mode", "round_prefer_floor")}};
  if (!scales.empty()) attrs["scales"] = scales;
  const int t = add_node1("Resize", n.output(0), {tensor_of(x, true, n.input(0))}, attrs);
  set_output(n, 0, engine_value(t, out, true));
}

void Importer::shape_op(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  const auto r = static_cast<int64_t>(x.shape.size());
  int64_t start = a.i("start", 0), end = a.i("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  std::vector<int64_t> dims;
  for (int64_t k = start; k < end; ++k) dims.push_back(x.shape[static_cast<size_t>(k)]);
  set_output(n, 0, host_value(Host::ints({static_cast<int64_t>(dims.size())}, dims)));
}

void Importer::gather(const onnx::NodeProto& n, const NodeAttrs& a) {
  const Host& data = constant(n, 0, "data");
  const Host& idx = constant(n, 1, "indices");
  const auto indices = idx.as_ints("indices");
  const auto axis = static_cast<size_t>(norm_axis(a.i("axis", 0), data.shape.size(), "axis"));
  const int64_t len = data.shape[axis];
  int64_t outer = 1, inner = 1;
  for (size_t k = 0; k < data.shape.size(); ++k) {
    if (k < axis) outer *= data.shape[k];
    if (k > axis) inner *= data.shape[k];
  }
  Shape shape(data.shape.begin(), data.shape.begin() + static_cast<std::ptrdiff_t>(axis));
  shape.insert(shape.end(), idx.shape.begin(), idx.shape.end());
  shape.insert(shape.end(), data.shape.begin() + static_cast<std::ptrdiff_t>(axis) + 1, data.shape.end());
  Host h;
  h.is_float = data.is_float;
  h.shape = shape;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i : indices) {
      if (i < -len || i >= len)
        unsupported("index " + std::to_string(i) + " is outside " + std::to_string(len));
      const int64_t src = (o * len + (i < 0 ? i + len : i)) * inner;
      for (int64_t k = 0; k < inner; ++k) {
        if (h.is_float)
          h.f.push_back(data.f[static_cast<size_t>(src + k)]);
        else
          h.i.push_back(data.i[static_cast<size_t>(src + k)]);
      }
    }
  set_output(n, 0, host_value(std::move(h)));
}

void Importer::cast(const onnx::NodeProto& n, const NodeAttrs& a) {
  Value& x = input(n, 0);
  const int64_t to = a.i("to", 0);
  const bool to_float = to == onnx::TensorProto::FLOAT;
  const bool to_int = to == onnx::TensorProto::INT64 || to == onnx::TensorProto::INT32;
  if (!to_float && !to_int) unsupported("cast to " + std::string(type_name(static_cast<int>(to))));
  if (x.kind == Value::Kind::engine) {
    if (to != onnx::TensorProto::FLOAT)
      unsupported("cast of a float tensor at run time to " + std::string(type_name(static_cast<int>(to))));
    return set_output(n, 0, x);
  }
  Host h = x.host;
  if (to_float && !h.is_float) {
    h.f.assign(h.i.begin(), h.i.end());
    h.i.clear();
    h.is_float = true;
  } else if (to_int && h.is_float) {
    for (float v : h.f) h.i.push_back(static_cast<int64_t>(v));
    h.f.clear();
    h.is_float = false;
  }
  set_output(n, 0, host_value(std::move(h)));
}

void Importer::constant_op(const onnx::NodeProto& n, const NodeAttrs& a) {
  if (const auto* t = a.find("value")) {
    set_output(n, 0, host_value(host_from_proto(t->t(), base_dir_)));
  } else if (const auto* f = a.find("value_float")) {
    set_output(n, 0, host_value(Host::floats({}, {f->f()})));
  } else if (const auto* fs = a.find("value_floats")) {
    set_output(n, 0,
               host_value(Host::floats({fs->floats_size()}, {fs->floats().begin(), fs->floats().end()})));
  } else if (const auto* i = a.find("value_int")) {
    set_output(n, 0, host_value(Host::ints({}, {i->i()})));
  } else if (const auto* is = a.find("value_ints")) {
    set_output(n, 0, host_value(Host::ints({is->ints_size()}, {is->ints().begin(), is->ints().end()})));
  } else {
    unsupported("no supported value attribute (value, value_float(s), value_int(s))");
  }
}

void Importer::constant_of_shape(const onnx::NodeProto& n, const NodeAttrs& a) {
  const Shape shape = constant(n, 0, "shape").as_ints("shape");
  const auto count = static_cast<size_t>(checked_elements(shape, "shape"));
  Host fill = Host::floats({1}, {0.0f});
  if (const auto* t = a.find("value")) fill = host_from_proto(t->t(), base_dir_);
  if (fill.size() != 1) unsupported("value must hold one element");
  if (fill.is_float)
    return set_output(n, 0, host_value(Host::floats(shape, std::vector<float>(count, fill.f[0]))));
  set_output(n, 0, host_value(Host::ints(shape, std::vector<int64_t>(count, fill.i[0]))));
}

// ---------------------------------------------------------------- table

const std::vector<Importer::OpEntry>& Importer::table() {
  static const std::vector<OpEntry> entries = {
      {{"Add", {}}, &Importer::elementwise},
      {{"AveragePool", {}}, &Importer::pool},
      {{"BatchNormalization", {1, 2, 3, 4}}, &Importer::batch_norm},
      {{"Cast", {}, true}, &Importer::cast},
      {{"Clip", {1, 2}}, &Importer::clip},
      {{"Concat", {}}, &Importer::concat},
      {{"Constant", {}, true}, &Importer::constant_op},
      {{"ConstantOfShape", {0}, true}, &Importer::constant_of_shape},
      {{"Conv", {1, 2}}, &Importer::conv},
      {{"Div", {}}, &Importer::elementwise},
      {{"Dropout", {1, 2}}, &Importer::dropout},
      {{"Flatten", {}}, &Importer::flatten},
      {{"Gather", {0, 1}, true}, &Importer::gather},
      {{"Gemm", {1}}, &Importer::gemm},
      {{"GlobalAveragePool", {}}, &Importer::global_average_pool},
      {{"HardSigmoid", {}}, &Importer::unary},
      {{"HardSwish", {}}, &Importer::unary},
      {{"Identity", {}}, &Importer::identity},
      {{"LeakyRelu", {}}, &Importer::unary},
      {{"MatMul", {1}}, &Importer::matmul},
      {{"MaxPool", {}}, &Importer::pool},
      {{"Mul", {}}, &Importer::elementwise},
      {{"Pad", {1, 2, 3}}, &Importer::pad},
      {{"ReduceMean", {}}, &Importer::reduce_mean},
      {{"Relu", {}}, &Importer::unary},
      {{"Reshape", {1}}, &Importer::reshape_op},
      {{"Resize", {1, 2, 3}}, &Importer::resize},
      {{"Shape", {}, true}, &Importer::shape_op},
      {{"Sigmoid", {}}, &Importer::unary},
      {{"Slice", {1, 2, 3, 4}}, &Importer::slice},
      {{"Softmax", {}}, &Importer::softmax},
      {{"Split", {1}}, &Importer::split},
      {{"Squeeze", {1}}, &Importer::squeeze},
      {{"Sub", {}}, &Importer::elementwise},
      {{"Transpose", {}}, &Importer::transpose},
      {{"Unsqueeze", {1}}, &Importer::unsqueeze},
  };
  return entries;
}

// ---------------------------------------------------------------- graph

void Importer::add_graph_inputs() {
  std::map<std::string, int> initializers;  // name -> data type
  for (const auto& t : model_.graph().initializer()) initializers[t.name()] = t.data_type();
  for (const auto& in : model_.graph().input()) {
    const auto init = initializers.find(in.name());
    if (init != initializers.end()) {  // a default value given as initializer: a constant
      const int declared = in.type().has_tensor_type() ? in.type().tensor_type().elem_type() : 0;
      if (declared != 0 && declared != init->second)
        problems_.push_back("graph input '" + in.name() + "' is declared " + type_name(declared) +
                            " but its initializer holds " + type_name(init->second));
      continue;
    }
    const std::string what = "graph input '" + in.name() + "'";
    try {
      if (!in.type().has_tensor_type()) unsupported(what + " is not a tensor");
      const auto& tt = in.type().tensor_type();
      if (tt.elem_type() != onnx::TensorProto::FLOAT)
        unsupported(what + " has type " + type_name(tt.elem_type()) + "; the engine takes FLOAT inputs");
      if (!tt.has_shape()) unsupported(what + " has no shape");
      Shape shape;
      const auto given = options_.input_shapes.find(in.name());
      for (int k = 0; k < tt.shape().dim_size(); ++k) {
        const auto& d = tt.shape().dim(k);
        if (d.has_dim_value())
          shape.push_back(d.dim_value());
        else if (given != options_.input_shapes.end() && static_cast<size_t>(k) < given->second.size())
          shape.push_back(given->second[static_cast<size_t>(k)]);
        else
          shape.push_back(1);
      }
      if (given != options_.input_shapes.end()) {
        if (given->second.size() != shape.size())
          unsupported(what + " has rank " + std::to_string(shape.size()) + ", the given shape " +
                      shape_text(given->second) + " does not");
        for (size_t k = 0; k < shape.size(); ++k)
          if (shape[k] != given->second[k])
            unsupported(what + " has shape " + shape_text(shape) + ", not the given " +
                        shape_text(given->second));
      }
      checked_elements(shape, what);
      const bool nhwc = options_.nhwc_inputs && shape.size() == 4;
      engine::Tensor t;
      t.name = unique_name(in.name());
      t.shape = nhwc ? Shape{shape[0], shape[2], shape[3], shape[1]} : shape;
      const int id = graph_.add_tensor(t);
      graph_.inputs.push_back(id);
      values_[in.name()] = engine_value(id, shape, nhwc);
    } catch (const Unsupported& e) {
      problems_.push_back(e.what());
      values_[in.name()] = Value{};
    }
  }
}

void Importer::set_graph_outputs() {
  std::set<int> taken;
  for (const int t : graph_.inputs) taken.insert(t);
  for (const auto& out : model_.graph().output()) {
    auto it = values_.find(out.name());
    if (it == values_.end()) {
      problems_.push_back("graph output '" + out.name() + "' is not produced by any node");
      continue;
    }
    Value& v = it->second;
    if (v.kind == Value::Kind::bad) continue;  // its producer is already reported
    try {
      add_output(tensor_of(v, false, out.name()), out.name(), taken);
    } catch (const Unsupported& e) {
      problems_.push_back("graph output '" + out.name() + "': " + e.what());
    }
  }
}

ImportResult Importer::run() {
  if (!options_.outputs.empty())
    throw ImportError(name_ + ": choosing outputs is for TensorFlow.js models; an ONNX model keeps its own");
  for (const auto& op : model_.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") opset_ = op.version();
  if (opset_ == 0) throw ImportError(name_ + ": the model imports no version of the default ONNX opset");
  if (opset_ > kMaxOpset)
    throw ImportError(name_ + ": opset " + std::to_string(opset_) + " is newer than the newest supported (" +
                      std::to_string(kMaxOpset) + ")");
  const auto& g = model_.graph();
  for (const auto& n : g.node())
    for (const auto& i : n.input()) ++uses_[i];
  for (const auto& o : g.output()) ++uses_[o.name()];

  for (const auto& t : g.initializer()) {
    try {
      values_[t.name()] = host_value(host_from_proto(t, base_dir_));
    } catch (const Unsupported& e) {
      problems_.push_back("initializer: " + std::string(e.what()));
      values_[t.name()] = Value{};
    }
  }
  add_graph_inputs();

  size_t failed = 0;
  for (int k = 0; k < g.node_size(); ++k) {
    const auto& n = g.node(k);
    const std::string label = "node " + std::to_string(k) + " '" + n.name() + "' (" + n.op_type() + ")";
    // A node downstream of a failed one fails silently: the cause is already listed.
    bool poisoned = false;
    for (const auto& i : n.input()) {
      auto it = values_.find(i);
      if (!i.empty() && it != values_.end() && it->second.kind == Value::Kind::bad) poisoned = true;
    }
    try {
      // Checked even downstream of a refused node: the op type needs no inputs.
      if (!n.domain().empty() && n.domain() != "ai.onnx") {
        poisoned = false;
        unsupported("op domain '" + n.domain() + "'");
      }
      const auto& entries = table();
      const auto entry = std::find_if(entries.begin(), entries.end(),
                                      [&](const OpEntry& e) { return n.op_type() == e.support.op; });
      if (entry == entries.end()) {
        poisoned = false;
        unsupported("op type not supported");
      }
      if (poisoned) throw Unsupported("");
      if (n.output_size() == 0 || n.output(0).empty()) unsupported("the node has no output");
      NodeAttrs attrs(n);
      (this->*(entry->handler))(n, attrs);
      const auto unread = attrs.unread();
      if (!unread.empty()) {
        std::string list;
        for (const auto& u : unread) list += (list.empty() ? "'" : ", '") + u + "'";
        unsupported("attribute " + list + " not supported");
      }
      for (int o = 0; o < n.output_size(); ++o)
        if (!n.output(o).empty() && !values_.count(n.output(o)))
          unsupported("output " + std::to_string(o) + " not supported");
    } catch (const Unsupported& e) {
      ++failed;
      if (!poisoned) problems_.push_back(label + ": " + e.what());
      for (const auto& o : n.output()) values_[o] = Value{};
    }
  }
  if (problems_.empty()) set_graph_outputs();
  if (!problems_.empty()) {
    std::string text = name_ + ": cannot import " + std::to_string(problems_.size()) + " problem" +
                       (problems_.size() == 1 ? "" : "s") + " (opset " + std::to_string(opset_) + ", " +
                       std::to_string(failed) + " of " + std::to_string(g.node_size()) +
                       " nodes not converted):";
    for (const auto& p : problems_) text += "\n  " + p;
    throw ImportError(text);
  }
  ImportResult result;
  result.graph = std::move(graph_);
  if (options_.optimize) result.passes = engine::optimize(result.graph).text();
  result.opset = opset_;
  result.producer =
      model_.producer_name() + (model_.producer_version().empty() ? "" : " " + model_.producer_version());
  return result;
}

std::string folder_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash + 1);
}

}  // namespace

ImportResult import_onnx_bytes(std::span<const uint8_t> bytes, const std::string& name,
                               const ImportOptions& options) {
  onnx::ModelProto model;
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw ImportError(name + ": larger than 2 GiB (protobuf's limit; use ONNX external data)");
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    throw ImportError(name + ": not an ONNX model (the protobuf message does not parse)");
  if (!model.has_graph()) throw ImportError(name + ": the ONNX model has no graph");
  return Importer(model, name, folder_of(name), options).run();
}

ImportResult import_onnx_file(const std::string& path, const ImportOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ImportError(path + ": cannot open (" + std::strerror(errno) + ")");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw ImportError(path + ": cannot read");
  return import_onnx_bytes(bytes, path, options);
}

const std::vector<OnnxOpSupport>& onnx_supported_ops() {
  static const std::vector<OnnxOpSupport> ops = [] {
    std::vector<OnnxOpSupport> v;
    for (const auto& e : Importer::table()) v.push_back(e.support);
    return v;
  }();
  return ops;
}

}  // namespace huddle::models
