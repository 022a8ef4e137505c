#include "models/quantize/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include "engine/passes.h"
#include "kernels/codebook/codebook.h"

namespace huddle::quantize {

using engine::DType;
using engine::Graph;
using engine::GraphError;
using engine::kNoTensor;
using engine::Node;
using engine::Quant;
using engine::Tensor;

const char* fc_mode_name(FcMode mode) {
  switch (mode) {
    case FcMode::int8:
      return "int8";
    case FcMode::codebook4:
      return "codebook4";
    case FcMode::codebook8:
      return "codebook8";
  }
  return "?";
}

namespace {

// Ops whose int8 form computes new values (their outputs get calibrated ranges).
const std::set<std::string> kComputeOps = {"Conv2D", "FullyConnected", "Add", "Sub", "Mul",
                                           "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish",
                                           "Silu", "LeakyRelu", "AveragePool2D", "GlobalAveragePool",
                                           "ReduceMean", "Concat"};
// Ops whose int8 form moves bytes (their outputs keep the input's quantisation).
const std::set<std::string> kMoveOps = {"Reshape", "Transpose", "Slice", "Split", "Pad", "Resize", "MaxPool2D"};

// Why `node` (op in kComputeOps or kMoveOps) cannot run int8 in this graph, or
// "". Reads the tensors' declared shapes (the importer declares every one; a
// ReduceMean whose input has none stays fp32).
std::string int8_obstacle(const Graph& g, const Node& node) {
  if (node.op == "Conv2D" || node.op == "FullyConnected") {
    const Tensor& w = g.tensors[static_cast<size_t>(node.inputs[1])];
    if (!w.is_constant() || w.dtype != DType::f32) return "its weights are not an fp32 constant";
    if (node.inputs.size() > 2 && node.inputs[2] != kNoTensor) {
      const Tensor& b = g.tensors[static_cast<size_t>(node.inputs[2])];
      if (!b.is_constant() || b.dtype != DType::f32) return "its bias is not an fp32 constant";
    }
  }
  if (node.op == "ReduceMean") {
    const size_t rank = g.tensors[static_cast<size_t>(node.inputs[0])].shape.size();
    std::vector<int64_t> axes = node.attr_ints("axes");
    for (int64_t& a : axes)
      if (a < 0) a += static_cast<int64_t>(rank);
    std::sort(axes.begin(), axes.end());
    if (rank != 4 || axes != std::vector<int64_t>{1, 2}) return "int8 ReduceMean is over the image axes only";
  }
  if (node.op == "Resize" && node.attr_text("mode", "nearest") != "nearest") return "int8 Resize is nearest only";
  for (int t : node.inputs)
    if (t != kNoTensor && g.tensors[static_cast<size_t>(t)].dtype != DType::f32)
      return "an input is not fp32";
  return "";
}

// Symmetric int8 of each of `rows` rows of `w` (values in [-127, 127]) and the row scales.
std::vector<int8_t> quantize_rows(std::span<const float> w, size_t rows, std::vector<float>& scales) {
  const size_t cols = rows ? w.size() / rows : 0;
  std::vector<int8_t> q(w.size());
  scales.assign(rows, 1.0f);
  for (size_t r = 0; r < rows; ++r) {
    float absmax = 0;
    for (size_t c = 0; c < cols; ++c) absmax = std::max(absmax, std::fabs(w[r * cols + c]));
    if (absmax > 0) scales[r] = absmax / 127.0f;
    for (size_t c = 0; c < cols; ++c) {
      const float v = std::nearbyint(w[r * cols + c] / scales[r]);
      q[r * cols + c] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
    }
  }
  return q;
}

template <class T>
std::vector<uint8_t> bytes_of(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

class Rewriter {
 public:
  Rewriter(const Graph& src, const std::vector<Histogram>& hist, const QuantizeOptions& opt)
      : src_(src), hist_(hist), opt_(opt) {
    g_.tensors = src.tensors;
    g_.inputs = src.inputs;
    g_.outputs = src.outputs;
    for (const std::string& name : opt.keep_float) check_node_name(name, "--keep-float");
    for (const std::string& name : opt.fc_layers) check_node_name(name, "--fc-layers");
    consumers_.resize(src.tensors.size());
    for (const Node& n : src.nodes)
      for (int t : n.inputs)
        if (t != kNoTensor) consumers_[static_cast<size_t>(t)].push_back(&n);
  }

  QuantizedGraph run() {
    QuantizedGraph out;
    for (const Node& node : src_.nodes) {
      const std::string reason = float_reason(node);
      if (!reason.empty()) {
        out.float_nodes.push_back({node.name, node.op, reason});
        add_float(node, out);
        continue;
      }
      ++out.int8_nodes;
      add_int8(node, out);
    }
    for (int& t : g_.outputs)
      if (g_.tensors[static_cast<size_t>(t)].dtype == DType::i8) t = float_output(t);
    engine::drop_unused_tensors(g_);
    out.graph = std::move(g_);
    return out;
  }

 private:
  void check_node_name(const std::string& name, const char* flag) const {
    for (const Node& n : src_.nodes)
      if (n.name == name) return;
    throw GraphError(std::string(flag) + ": the graph has no node '" + name + "'");
  }

  bool is_int8(int t) const { return t != kNoTensor && g_.tensors[static_cast<size_t>(t)].dtype == DType::i8; }
  bool observed(int t) const { return hist_.size() > static_cast<size_t>(t) && hist_[static_cast<size_t>(t)].count() > 0; }

  // Why `node` stays fp32, or "" when it runs int8.
  std::string float_reason(const Node& node) const {
    if (opt_.keep_float.count(node.name)) return "kept float (--keep-float)";
    const bool compute = kComputeOps.count(node.op) != 0, move = kMoveOps.count(node.op) != 0;
    if (!compute && !move) return node.op + " has no int8 form";
    const std::string obstacle = int8_obstacle(src_, node);
    if (!obstacle.empty()) return obstacle;
    if (move && !is_int8(node.inputs[0]) && !(observed(node.inputs[0]) && feeds_only_int8(node)))
      return "moves bytes of an fp32 tensor";
    if (node.op == "Concat" && std::none_of(node.inputs.begin(), node.inputs.end(), [&](int t) { return is_int8(t); }))
      return "concatenates fp32 tensors";
    for (int t : node.outputs)
      if (compute && !observed(t)) return "its output was not observed in calibration";
    for (int t : node.inputs)
      if (t != kNoTensor && !src_.tensors[static_cast<size_t>(t)].is_constant() && !is_int8(t) && !observed(t))
        return "an input was not observed in calibration";
    return "";
  }

  // True when every consumer of `node`'s outputs computes in int8 (through
  // further move ops too): then moving the bytes of an fp32 tensor (the
  // importer's NCHW -> NHWC Transpose of a graph input) is better done after
  // quantising it, on a quarter of the bytes, with the same values.
  bool feeds_only_int8(const Node& node) const {
    bool any = false;
    for (int t : node.outputs) {
      if (std::find(src_.outputs.begin(), src_.outputs.end(), t) != src_.outputs.end()) return false;
      for (const Node* c : consumers_[static_cast<size_t>(t)]) {
        any = true;
        if (opt_.keep_float.count(c->name)) return false;
        if (kMoveOps.count(c->op) ? !feeds_only_int8(*c)
                                  : !kComputeOps.count(c->op) || !int8_obstacle(src_, *c).empty() ||
                                        std::any_of(c->outputs.begin(), c->outputs.end(),
                                                    [&](int o) { return !observed(o); }))
          return false;
      }
    }
    return any;
  }

  Quant calibrated_quant(int t) const {
    return quant_for_range(choose_range(hist_[static_cast<size_t>(t)], opt_.method, opt_.percentile));
  }

  // The int8 form of activation `t` (fp32 or int8), made by a Quantize once.
  int int8_of(int t) {
    if (is_int8(t)) return t;
    if (auto it = quantized_.find(t); it != quantized_.end()) return it->second;
    Tensor q = g_.tensors[static_cast<size_t>(t)];
    q.name += "/int8";
    q.dtype = DType::i8;
    q.quant = calibrated_quant(t);
    const int id = g_.add_tensor(q);
    emit("Quantize", q.name, {t}, {id});
    return quantized_[t] = id;
  }

  // The fp32 form of activation `t`, made by a Dequantize once.
  int float_of(int t) {
    if (!is_int8(t)) return t;
    if (auto it = dequantized_.find(t); it != dequantized_.end()) return it->second;
    Tensor f = g_.tensors[static_cast<size_t>(t)];
    f.name += "/float";
    f.dtype = DType::f32;
    f.quant = {};
    const int id = g_.add_tensor(f);
    emit("Dequantize", f.name, {t}, {id});
    return dequantized_[t] = id;
  }

  // A graph output that is int8: the Dequantize's fp32 tensor takes its name.
  int float_output(int t) {
    const int f = float_of(t);
    std::swap(g_.tensors[static_cast<size_t>(t)].name, g_.tensors[static_cast<size_t>(f)].name);
    return f;
  }

  void emit(const std::string& op, const std::string& name, std::vector<int> inputs, std::vector<int> outputs,
            std::map<std::string, engine::AttrValue> attrs = {}) {
    Node n;
    n.name = name;
    n.op = op;
    n.inputs = std::move(inputs);
    n.outputs = std::move(outputs);
    n.attrs = std::move(attrs);
    g_.nodes.push_back(std::move(n));
  }

  void add_float(const Node& node, QuantizedGraph& out) {
    Node n = node;
    for (int& t : n.inputs)
      if (t != kNoTensor) t = float_of(t);
    if (node.op == "FullyConnected" && uses_codebook(node)) {
      add_codebook_fc(n, out);
      return;
    }
    if (opt_.half_float_weights && (node.op == "Conv2D" || node.op == "FullyConnected")) {
      const Tensor& w = src_.tensors[static_cast<size_t>(n.inputs[1])];
      const auto v = w.is_constant() && w.dtype == DType::f32 ? w.values<float>() : std::span<const float>{};
      // f16 holds magnitudes up to 65504; weights beyond that stay f32.
      if (!v.empty() && std::none_of(v.begin(), v.end(), [](float x) { return !(std::fabs(x) <= 65504.0f); })) {
        std::vector<uint16_t> h(v.size());
        std::transform(v.begin(), v.end(), h.begin(), kernels::fp32_to_fp16);
        n.inputs[1] = g_.add_constant(w.name + "/f16", DType::f16, w.shape, bytes_of(h));
        ++out.half_weights;
      }
    }
    g_.nodes.push_back(std::move(n));
  }

  bool uses_codebook(const Node& node) const {
    return opt_.fc != FcMode::int8 && (opt_.fc_layers.empty() || opt_.fc_layers.count(node.name));
  }

  void add_int8(const Node& node, QuantizedGraph& out) {
    Node n = node;
    const bool move = kMoveOps.count(node.op) != 0;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      int& t = n.inputs[i];
      if (t == kNoTensor) continue;
      const Tensor& src = src_.tensors[static_cast<size_t>(t)];
      if (!src.is_constant())
        t = int8_of(t);
      else if (node.op == "Add" || node.op == "Sub" || node.op == "Mul" || node.op == "Concat")
        t = constant_int8(src);
    }
    const Quant in_quant = g_.tensors[static_cast<size_t>(n.inputs[0])].quant;
    for (int t : n.outputs) {
      Tensor& o = g_.tensors[static_cast<size_t>(t)];
      o.dtype = DType::i8;
      o.quant = move ? in_quant : calibrated_quant(t);
    }
    if (node.op == "Conv2D" || node.op == "FullyConnected") {
      if (node.op == "FullyConnected" && uses_codebook(node)) {
        add_codebook_fc(n, out);
        return;
      }
      quantize_weights(n);
    }
    g_.nodes.push_back(std::move(n));
  }

  // An fp32 constant operand of an int8 elementwise op or Concat, as int8 over its own range.
  int constant_int8(const Tensor& c) {
    const auto v = c.values<float>();
    Range r;
    for (float x : v) r.lo = std::min(r.lo, x), r.hi = std::max(r.hi, x);
    const Quant q = quant_for_range(r);
    std::vector<int8_t> data(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      const float x = std::nearbyint(v[i] / q.scale[0]) + static_cast<float>(q.zero_point[0]);
      data[i] = static_cast<int8_t>(std::clamp(x, -128.0f, 127.0f));
    }
    const int id = g_.add_constant(c.name + "/int8", DType::i8, c.shape, bytes_of(data));
    g_.tensors[static_cast<size_t>(id)].quant = q;
    return id;
  }

  // Conv2D / FullyConnected: int8 weights per output channel, int32 bias.
  void quantize_weights(Node& n) {
    const Tensor& w = src_.tensors[static_cast<size_t>(n.inputs[1])];
    const size_t out_c = static_cast<size_t>(w.shape[0]);
    std::vector<float> w_scale;
    const std::vector<int8_t> qw = quantize_rows(w.values<float>(), out_c, w_scale);
    const int wid = g_.add_constant(w.name + "/int8", DType::i8, w.shape, bytes_of(qw));
    Quant& wq = g_.tensors[static_cast<size_t>(wid)].quant;
    wq.scale = w_scale;
    wq.zero_point.assign(out_c, 0);
    wq.axis = 0;
    n.inputs[1] = wid;
    if (n.inputs.size() < 3 || n.inputs[2] == kNoTensor) return;
    const float x_scale = g_.tensors[static_cast<size_t>(n.inputs[0])].quant.scale[0];
    const Tensor& b = src_.tensors[static_cast<size_t>(n.inputs[2])];
    const auto bv = b.values<float>();
    std::vector<int32_t> qb(out_c);
    Quant bq;
    bq.axis = 0;
    bq.zero_point.assign(out_c, 0);
    for (size_t o = 0; o < out_c; ++o) {
      bq.scale.push_back(x_scale * w_scale[o]);
      const double v = std::nearbyint(static_cast<double>(bv[o]) / bq.scale[o]);
      qb[o] = static_cast<int32_t>(std::clamp(v, -2147483647.0, 2147483647.0));
    }
    const int bid = g_.add_constant(b.name + "/int32", DType::i32, b.shape, bytes_of(qb));
    g_.tensors[static_cast<size_t>(bid)].quant = bq;
    n.inputs[2] = bid;
  }

  // FullyConnected -> CodebookFullyConnected: indices, an fp16 table, the fp32 bias.
  void add_codebook_fc(Node& n, QuantizedGraph& out) {
    const Tensor& w = src_.tensors[static_cast<size_t>(n.inputs[1])];
    const size_t rows = static_cast<size_t>(w.shape[0]), k = static_cast<size_t>(w.shape[1]);
    kernels::CodebookBuildOptions o;
    o.bits = opt_.fc == FcMode::codebook4 ? 4 : 8;
    const kernels::Codebook cb = kernels::codebook_build(rows, k, w.values<float>().data(), o);
    const int idx = g_.add_constant(w.name + "/indices", DType::u8,
                                    {w.shape[0], static_cast<int64_t>(kernels::codebook_row_bytes(o.bits, k))},
                                    cb.indices);
    const int table = g_.add_constant(w.name + "/table", DType::f16,
                                      {static_cast<int64_t>(kernels::codebook_entries(o.bits))}, bytes_of(cb.table));
    n.op = "CodebookFullyConnected";
    n.attrs["bits"] = static_cast<int64_t>(o.bits);
    std::vector<int> inputs = {n.inputs[0], idx, table};
    if (n.inputs.size() > 2 && n.inputs[2] != kNoTensor) inputs.push_back(n.inputs[2]);
    n.inputs = std::move(inputs);
    ++out.codebook_nodes;
    g_.nodes.push_back(std::move(n));
  }

  const Graph& src_;
  const std::vector<Histogram>& hist_;
  const QuantizeOptions& opt_;
  std::vector<std::vector<const Node*>> consumers_;  // of each source tensor
  Graph g_;
  std::map<int, int> quantized_, dequantized_;
};

}  // namespace

std::vector<std::string> quantizable_nodes(const Graph& graph) {
  std::vector<std::string> names;
  for (const Node& n : graph.nodes)
    if (kComputeOps.count(n.op) && int8_obstacle(graph, n).empty()) names.push_back(n.name);
  return names;
}

QuantizedGraph quantize_graph(const Graph& fp32, const std::vector<Histogram>& hist, const QuantizeOptions& options) {
  return Rewriter(fp32, hist, options).run();
}

}  // namespace huddle::quantize
