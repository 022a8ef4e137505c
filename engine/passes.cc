#include "engine/passes.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <optional>
#include <utility>

#include "engine/interpreter.h"
#include "engine/op.h"

namespace huddle::engine {
namespace {

// Per tensor: how many node inputs read it, plus one for each time it is a graph output.
std::vector<int> use_counts(const Graph& graph) {
  std::vector<int> uses(graph.tensors.size(), 0);
  for (const Node& n : graph.nodes)
    for (int t : n.inputs)
      if (t != kNoTensor) ++uses[static_cast<size_t>(t)];
  for (int t : graph.outputs) ++uses[static_cast<size_t>(t)];
  return uses;
}

// The index of the node that writes `tensor`, or -1 (a graph input or a constant).
int producer(const Graph& graph, int tensor) {
  for (size_t j = 0; j < graph.nodes.size(); ++j)
    for (int t : graph.nodes[j].outputs)
      if (t == tensor) return static_cast<int>(j);
  return -1;
}

// The node that writes `tensor` when nothing else reads it (one use, no graph output), or -1.
int sole_producer(const Graph& graph, const std::vector<int>& uses, int tensor) {
  if (tensor == kNoTensor || uses[static_cast<size_t>(tensor)] != 1) return -1;
  return producer(graph, tensor);
}

// The node after `after` that reads `tensor` first, or -1.
int consumer(const Graph& graph, int tensor, size_t after) {
  for (size_t j = after + 1; j < graph.nodes.size(); ++j)
    for (int t : graph.nodes[j].inputs)
      if (t == tensor) return static_cast<int>(j);
  return -1;
}

bool contains(const std::vector<int>& list, int tensor) {
  return std::find(list.begin(), list.end(), tensor) != list.end();
}

// Makes every node that reads `from` read `to` instead.
void replace_uses(Graph& graph, int from, int to) {
  for (Node& n : graph.nodes)
    for (int& t : n.inputs)
      if (t == from) t = to;
}

void erase_node(Graph& graph, size_t j) {
  graph.nodes.erase(graph.nodes.begin() + static_cast<std::ptrdiff_t>(j));
}

// Tensor shapes as preparing each node infers them from its inputs' shapes.
// Where a node does not prepare (an unknown op, a bad attribute), its outputs
// keep the shapes the graph declares: an activation's empty shape is unknown.
class Shapes {
 public:
  explicit Shapes(const Graph& graph) : known_(graph.tensors.size(), false) {
    Graph copy;  // constants stay where they are: `owned` is not copied
    copy.tensors = graph.tensors;
    copy.nodes = graph.nodes;
    for (size_t t = 0; t < copy.tensors.size(); ++t)
      known_[t] = copy.tensors[t].is_constant() || !copy.tensors[t].shape.empty();
    for (int t : graph.inputs) known_[static_cast<size_t>(t)] = true;
    for (size_t j = 0; j < copy.nodes.size(); ++j) {
      const Node& node = copy.nodes[j];
      const OpDef* def = find_op(node.op);
      const auto n_in = static_cast<int>(node.inputs.size()), n_out = static_cast<int>(node.outputs.size());
      if (!def || n_in < def->min_inputs || n_in > def->max_inputs ||
          (def->outputs == kAnyOutputs ? n_out < 1 : n_out != def->outputs) ||
          !std::all_of(node.inputs.begin(), node.inputs.end(),
                       [&](int t) { return t == kNoTensor || known_[static_cast<size_t>(t)]; }))
        continue;
      try {
        PrepareContext ctx(copy, j);
        def->prepare(ctx);
      } catch (const GraphError&) {
        continue;
      }
      for (int t : node.outputs) known_[static_cast<size_t>(t)] = true;
    }
    shape_.reserve(copy.tensors.size());
    for (Tensor& t : copy.tensors) shape_.push_back(std::move(t.shape));
  }
  // Nothing for a tensor added since.
  const Shape* get(int tensor) const {
    const auto t = static_cast<size_t>(tensor);
    return t < known_.size() && known_[t] ? &shape_[t] : nullptr;
  }

 private:
  std::vector<Shape> shape_;
  std::vector<bool> known_;
};

// Shapes computed on first use, so a pass with nothing to look at never
// prepares the graph. A pass keeps using them while it rewires nodes: each
// rewrite keeps the shapes of the tensors it keeps (or at least their rank).
class LazyShapes {
 public:
  explicit LazyShapes(const Graph& graph) : graph_(graph) {}
  const Shape* get(int tensor) {
    if (!shapes_) shapes_.emplace(graph_);
    return shapes_->get(tensor);
  }

 private:
  const Graph& graph_;
  std::optional<Shapes> shapes_;
};

using Perm = std::vector<int64_t>;

// A Transpose node's perm (the reversed dims when absent), or nothing when
// it is not a permutation or the rank it needs is unknown.
std::optional<Perm> perm_of(const Node& node, LazyShapes& shapes) {
  Perm perm;
  if (node.has_attr("perm")) {
    perm = node.attr_ints("perm");
  } else {
    const Shape* in = shapes.get(node.inputs[0]);
    if (!in) return std::nullopt;
    for (size_t d = in->size(); d-- > 0;) perm.push_back(static_cast<int64_t>(d));
  }
  std::vector<bool> seen(perm.size(), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(perm.size()) || seen[static_cast<size_t>(p)]) return std::nullopt;
    seen[static_cast<size_t>(p)] = true;
  }
  return perm;
}

bool is_identity(const Perm& perm) {
  for (size_t d = 0; d < perm.size(); ++d)
    if (perm[d] != static_cast<int64_t>(d)) return false;
  return true;
}

bool is_transpose(const Node& node) { return node.op == "Transpose" && node.inputs.size() == 1; }

// A clamp [lo, hi]; the fused activations and Relu / Clip are all clamps.
struct Clamp {
  float lo, hi;
};
constexpr float kInf = std::numeric_limits<float>::infinity();

// The clamp of a node's "activation" attribute, or nothing for an unknown one.
std::optional<Clamp> activation_of(const Node& node) {
  const std::string a = node.attr_text("activation", "none");
  if (a == "none") return Clamp{-kInf, kInf};
  if (a == "relu") return Clamp{0.0f, kInf};
  if (a == "relu6") return Clamp{0.0f, 6.0f};
  if (a == "clip") return Clamp{node.attr_float("clip_min", -kInf), node.attr_float("clip_max", kInf)};
  return std::nullopt;
}

void set_activation(Node& node, Clamp c) {
  node.attrs.erase("clip_min");
  node.attrs.erase("clip_max");
  if (c.lo == -kInf && c.hi == kInf) {
    node.attrs["activation"] = std::string("none");
  } else if (c.lo == 0.0f && c.hi == kInf) {
    node.attrs["activation"] = std::string("relu");
  } else if (c.lo == 0.0f && c.hi == 6.0f) {
    node.attrs["activation"] = std::string("relu6");
  } else {
    node.attrs["activation"] = std::string("clip");
    if (c.lo != -kInf) node.attrs["clip_min"] = c.lo;
    if (c.hi != kInf) node.attrs["clip_max"] = c.hi;
  }
}

bool is_unary_elementwise(const std::string& op) {
  return op == "Relu" || op == "Clip" || op == "Sigmoid" || op == "HardSigmoid" || op == "HardSwish" ||
         op == "LeakyRelu";
}

// Whether `node`, reading Transpose(x, perm), can read x instead with the
// Transpose after it: an elementwise unary op as it is, a Pad or Slice with
// its axes renamed for x's layout (which this does).
bool rewrite_for_untransposed(Node& node, const std::optional<Perm>& perm) {
  if (node.inputs.size() != 1 || node.outputs.size() != 1) return false;
  if (is_unary_elementwise(node.op)) return true;
  if (!perm) return false;
  const size_t rank = perm->size();
  const auto dim = [&](size_t d) { return static_cast<size_t>((*perm)[d]); };
  if (node.op == "Pad") {  // Y dim d is X dim perm[d]: its pads go there
    const std::vector<int64_t> pads = node.attr_ints("pads");
    if (pads.size() != 2 * rank) return false;
    std::vector<int64_t> moved(2 * rank);
    for (size_t d = 0; d < rank; ++d) {
      moved[dim(d)] = pads[d];
      moved[rank + dim(d)] = pads[rank + d];
    }
    node.attrs["pads"] = moved;
    return true;
  }
  if (node.op == "Slice") {
    std::vector<int64_t> axes(node.attr_ints("starts").size());
    std::iota(axes.begin(), axes.end(), int64_t{0});
    axes = node.attr_ints("axes", axes);
    const auto r = static_cast<int64_t>(rank);
    for (int64_t& a : axes) {
      if (a < -r || a >= r) return false;
      a = (*perm)[static_cast<size_t>(a < 0 ? a + r : a)];
    }
    node.attrs["axes"] = axes;
    return true;
  }
  return false;
}

// Transpose i's output is read only by node j: moves the Transpose below it
// when rewrite_for_untransposed allows, x -> T -> a -> U -> y becoming
// x -> U -> a -> T -> y. Returns whether it did.
bool sink_below(Graph& graph, size_t i, size_t j, const std::optional<Perm>& perm) {
  Node t = graph.nodes[i], u = graph.nodes[j];
  if (!rewrite_for_untransposed(u, perm)) return false;
  const int x = t.inputs[0], a = t.outputs[0], y = u.outputs[0];
  u.inputs[0] = x;
  u.outputs[0] = a;
  t.inputs[0] = a;
  t.outputs[0] = y;
  graph.tensors[static_cast<size_t>(a)].shape = {};  // now U's shape in x's layout: inferred when prepared
  graph.nodes[i] = std::move(u);
  graph.nodes[j] = std::move(t);
  return true;
}

// A node with one output, `tensor`, read by the nodes that follow.
Node make_node(std::string name, std::string op, int input, int output, std::string attr, AttrValue value) {
  Node n;
  n.name = std::move(name);
  n.op = std::move(op);
  n.inputs = {input};
  n.outputs = {output};
  n.attrs[std::move(attr)] = std::move(value);
  return n;
}

// A new activation tensor named after `like` plus `suffix` (plus "#2", "#3" ... if taken).
int add_like(Graph& graph, int like, const std::string& suffix) {
  Tensor t;
  const std::string name = graph.tensors[static_cast<size_t>(like)].name + suffix;
  t.name = name;
  for (int k = 2; graph.find_tensor(t.name) != kNoTensor; ++k) t.name = name + "#" + std::to_string(k);
  t.dtype = graph.tensors[static_cast<size_t>(like)].dtype;
  return graph.add_tensor(std::move(t));
}

// Moves the Transposes (one perm P, each read only here) into a Concat, Add,
// Sub, Mul or Div below it: Concat(T(x_k, P), axis a) = T(Concat(x_k, axis
// P[a]), P) and Add(T(a, P), T(b, P)) = T(Add(a, b), P). A constant input k instead becomes
// T(k, P^-1) (after a Reshape that prepends 1s up to P's rank, as
// broadcasting does): nodes constant folding removes. Returns whether it did.
bool sink_below_join(Graph& graph, size_t j, const std::vector<int>& uses, LazyShapes& shapes) {
  const Node& join = graph.nodes[j];
  const bool concat = join.op == "Concat";
  const bool elementwise = join.op == "Add" || join.op == "Sub" || join.op == "Mul" || join.op == "Div";
  if ((!concat && !elementwise) || join.outputs.size() != 1) return false;
  std::optional<Perm> perm;
  std::vector<int> sources;  // per input: the Transpose's input, or kNoTensor for a constant
  for (int t : join.inputs) {
    if (t == kNoTensor) return false;
    const int p = producer(graph, t);
    if (p >= 0 && is_transpose(graph.nodes[static_cast<size_t>(p)]) && uses[static_cast<size_t>(t)] == 1) {
      const std::optional<Perm> pp = perm_of(graph.nodes[static_cast<size_t>(p)], shapes);
      if (!pp || (perm && *pp != *perm)) return false;
      perm = pp;
      sources.push_back(graph.nodes[static_cast<size_t>(p)].inputs[0]);
    } else if (graph.tensors[static_cast<size_t>(t)].is_constant()) {
      sources.push_back(kNoTensor);
    } else {
      return false;
    }
  }
  if (!perm) return false;
  const size_t rank = perm->size();
  int64_t axis = join.attr_int("axis", 0);
  if (concat) {
    const auto r = static_cast<int64_t>(rank);
    if (!join.has_attr("axis") || axis < -r || axis >= r) return false;
    if (axis < 0) axis += r;
  }
  for (size_t k = 0; k < sources.size(); ++k) {
    const size_t k_rank = graph.tensors[static_cast<size_t>(join.inputs[k])].shape.size();
    if (sources[k] == kNoTensor && (concat ? k_rank != rank : k_rank > rank)) return false;
  }

  Perm inverse(rank);
  for (size_t d = 0; d < rank; ++d) inverse[static_cast<size_t>((*perm)[d])] = static_cast<int64_t>(d);
  const std::string name = join.name;
  const int out = join.outputs[0];
  std::vector<Node> before;
  std::vector<int> inputs = graph.nodes[j].inputs;
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (sources[k] != kNoTensor) {
      inputs[k] = sources[k];
      continue;
    }
    const std::string prefix = name + "/input" + std::to_string(k);
    int value = inputs[k];
    Shape shape = graph.tensors[static_cast<size_t>(value)].shape;
    if (shape.size() < rank) {
      shape.insert(shape.begin(), rank - shape.size(), 1);
      const int reshaped = add_like(graph, value, "/rank" + std::to_string(rank));
      before.push_back(make_node(prefix + "/reshape", "Reshape", value, reshaped, "shape", shape));
      value = reshaped;
    }
    const int transposed = add_like(graph, value, "/transposed");
    before.push_back(make_node(prefix + "/transpose", "Transpose", value, transposed, "perm", inverse));
    inputs[k] = transposed;
  }
  const int pre = add_like(graph, out, "/untransposed");
  Node& n = graph.nodes[j];
  n.inputs = inputs;
  n.outputs = {pre};
  if (concat) n.attrs["axis"] = (*perm)[static_cast<size_t>(axis)];
  const auto at = graph.nodes.begin() + static_cast<std::ptrdiff_t>(j);
  graph.nodes.insert(at + 1, make_node(name + "/transpose", "Transpose", pre, out, "perm", *perm));
  graph.nodes.insert(graph.nodes.begin() + static_cast<std::ptrdiff_t>(j), before.begin(), before.end());
  return true;
}

// Transpose i (perm P) is read only by Split j, whose outputs only Transposes
// read: Split(T(x, P), axis a) -> T(Split(x, axis P[a]), P) on each output,
// Transposes the readers' then absorb. Returns whether it did.
bool sink_below_split(Graph& graph, size_t i, size_t j, const std::optional<Perm>& perm) {
  const Node& split = graph.nodes[j];
  if (split.op != "Split" || split.inputs.size() != 1 || !perm) return false;
  for (int y : split.outputs) {
    if (contains(graph.outputs, y)) return false;
    for (const Node& n : graph.nodes)
      if (contains(n.inputs, y) && !is_transpose(n)) return false;
  }
  const auto rank = static_cast<int64_t>(perm->size());
  int64_t axis = split.attr_int("axis", 0);
  if (axis < -rank || axis >= rank) return false;
  if (axis < 0) axis += rank;
  Node moved = split;
  moved.inputs = graph.nodes[i].inputs;
  moved.attrs["axis"] = (*perm)[static_cast<size_t>(axis)];
  std::vector<Node> after;
  for (int& y : moved.outputs) {
    const int pre = add_like(graph, y, "/untransposed");
    after.push_back(make_node(moved.name + "/transpose" + std::to_string(after.size()), "Transpose", pre, y,
                              "perm", *perm));
    y = pre;
  }
  graph.nodes[j] = std::move(moved);
  graph.nodes.insert(graph.nodes.begin() + static_cast<std::ptrdiff_t>(j) + 1, after.begin(), after.end());
  return true;
}

// Ops whose output equals their input when the shapes are equal.
bool noop_when_same_shape(const Node& node) {
  if (node.inputs.size() != 1 || node.outputs.size() != 1) return false;
  return node.op == "Reshape" || node.op == "Slice" || node.op == "Pad" || node.op == "Concat" ||
         node.op == "Split";
}

// Makes the output of node j, equal to its input, the same tensor and removes
// the node. A graph output stays: the input's producer writes it instead.
// Returns whether it could.
bool bypass(Graph& graph, size_t j) {
  const int x = graph.nodes[j].inputs[0], y = graph.nodes[j].outputs[0];
  if (!contains(graph.outputs, y)) {
    replace_uses(graph, y, x);
    erase_node(graph, j);
    return true;
  }
  const int p = producer(graph, x);
  if (p < 0 || contains(graph.outputs, x) || contains(graph.inputs, x)) return false;
  for (int& t : graph.nodes[static_cast<size_t>(p)].outputs)
    if (t == x) t = y;
  replace_uses(graph, x, y);
  erase_node(graph, j);
  return true;
}

// Makes tensor `index` a constant owned by the graph, keeping its name and quantisation.
void make_constant(Graph& graph, int index, DType dtype, Shape shape, std::vector<uint8_t> bytes) {
  const int made = graph.add_constant("", dtype, std::move(shape), std::move(bytes));
  Tensor constant = std::move(graph.tensors[static_cast<size_t>(made)]);
  graph.tensors.pop_back();
  Tensor& t = graph.tensors[static_cast<size_t>(index)];
  t.dtype = constant.dtype;
  t.shape = std::move(constant.shape);
  t.data = constant.data;
}

// Whether every input of `node` is a constant (at least one) and none of its outputs a graph output.
bool foldable(const Graph& graph, const Node& node) {
  const auto constant = [&](int t) {
    return t == kNoTensor || graph.tensors[static_cast<size_t>(t)].is_constant();
  };
  const auto output = [&](int t) { return contains(graph.outputs, t); };
  return std::any_of(node.inputs.begin(), node.inputs.end(), [](int t) { return t != kNoTensor; }) &&
         std::all_of(node.inputs.begin(), node.inputs.end(), constant) &&
         std::none_of(node.outputs.begin(), node.outputs.end(), output);
}

// Runs node j (every input a constant) alone and makes its outputs constants.
// Returns false when the node does not prepare: the Interpreter will say why.
bool fold(Graph& graph, size_t j) {
  Graph one;
  Node node = graph.nodes[j];
  for (int& t : node.inputs)
    if (t != kNoTensor) t = one.add_tensor(graph.tensors[static_cast<size_t>(t)]);
  for (int& t : node.outputs) {
    t = one.add_tensor(graph.tensors[static_cast<size_t>(t)]);
    one.outputs.push_back(t);
  }
  one.nodes.push_back(std::move(node));
  std::optional<Interpreter> it;
  try {
    it.emplace(std::move(one));
  } catch (const GraphError&) {
    return false;
  }
  it->run();
  const std::vector<int> outputs = graph.nodes[j].outputs;
  for (size_t k = 0; k < outputs.size(); ++k) {
    const Tensor& out = it->output(k);
    std::vector<uint8_t> bytes(static_cast<size_t>(elements(out.shape)) * dtype_bytes(out.dtype));
    if (!bytes.empty()) std::memcpy(bytes.data(), it->output_data(k), bytes.size());
    make_constant(graph, outputs[k], out.dtype, out.shape, std::move(bytes));
  }
  erase_node(graph, j);
  return true;
}

size_t count_op(const Graph& graph, const char* op) {
  return static_cast<size_t>(
      std::count_if(graph.nodes.begin(), graph.nodes.end(), [op](const Node& n) { return n.op == op; }));
}

}  // namespace

size_t fuse_activations(Graph& graph) {
  size_t fused = 0;
  std::vector<int> uses = use_counts(graph);
  for (size_t j = 0; j < graph.nodes.size(); ++j) {
    const Node& act = graph.nodes[j];
    if ((act.op != "Relu" && act.op != "Clip") || act.inputs.size() != 1 || act.outputs.size() != 1) continue;
    const int p = sole_producer(graph, uses, act.inputs[0]);
    if (p < 0) continue;
    Node& prev = graph.nodes[static_cast<size_t>(p)];
    if ((prev.op != "Conv2D" && prev.op != "FullyConnected") || prev.outputs.size() != 1) continue;
    const std::optional<Clamp> had = activation_of(prev);
    const Clamp add = act.op == "Relu" ? Clamp{0.0f, kInf}
                                       : Clamp{act.attr_float("min", -kInf), act.attr_float("max", kInf)};
    if (!had || !(had->lo <= had->hi) || !(add.lo <= add.hi)) continue;
    // clamp(clamp(v, a, b), c, d) == clamp(v, clamp(a, c, d), clamp(b, c, d)) for a <= b, c <= d.
    set_activation(prev, {std::clamp(had->lo, add.lo, add.hi), std::clamp(had->hi, add.lo, add.hi)});
    prev.outputs[0] = act.outputs[0];
    erase_node(graph, j--);
    uses = use_counts(graph);
    ++fused;
  }
  return fused;
}

size_t fuse_silu(Graph& graph) {
  size_t fused = 0;
  std::vector<int> uses = use_counts(graph);
  for (size_t j = 0; j < graph.nodes.size(); ++j) {
    const Node& mul = graph.nodes[j];
    if (mul.op != "Mul" || mul.inputs.size() != 2 || mul.outputs.size() != 1) continue;
    for (int side = 0; side < 2; ++side) {
      const int s = mul.inputs[static_cast<size_t>(side)], x = mul.inputs[static_cast<size_t>(1 - side)];
      if (x == kNoTensor) continue;
      const int p = sole_producer(graph, uses, s);
      if (p < 0) continue;
      const Node& sig = graph.nodes[static_cast<size_t>(p)];
      if (sig.op != "Sigmoid" || sig.inputs.size() != 1 || sig.inputs[0] != x) continue;
      // Mul(x, Sigmoid(x)) with the sigmoid read only here: one Silu node where the Mul was.
      Node& m = graph.nodes[j];
      m.op = "Silu";
      m.inputs = {x};
      m.attrs.clear();
      erase_node(graph, static_cast<size_t>(p));
      --j;  // the Sigmoid came before the Mul
      uses = use_counts(graph);
      ++fused;
      break;
    }
  }
  return fused;
}

namespace {

// The value of a scalar fp32 constant, or nullopt.
std::optional<float> scalar_constant(const Graph& graph, int t) {
  if (t == kNoTensor) return std::nullopt;
  const Tensor& tensor = graph.tensors[static_cast<size_t>(t)];
  if (!tensor.is_constant() || tensor.dtype != DType::f32 || tensor.data.size() != sizeof(float)) return std::nullopt;
  return tensor.values<float>()[0];
}

bool near(std::optional<float> v, float want) { return v && std::fabs(*v - want) <= 1e-3f * std::fabs(want); }

// The node reading only `x` + 3 and clamping to [0, 6] that writes `t`
// (read once, as are its Add), or -1; *x gets the Add's other operand.
int relu6_of_x_plus_3(const Graph& graph, const std::vector<int>& uses, int t, int* x) {
  const int c = sole_producer(graph, uses, t);
  if (c < 0) return -1;
  const Node& clip = graph.nodes[static_cast<size_t>(c)];
  if (clip.op != "Clip" || clip.inputs.size() != 1 || clip.attr_float("min", -1) != 0.0f ||
      clip.attr_float("max", -1) != 6.0f || uses[static_cast<size_t>(clip.inputs[0])] != 1)
    return -1;
  const int a = producer(graph, clip.inputs[0]);
  if (a < 0) return -1;
  const Node& add = graph.nodes[static_cast<size_t>(a)];
  if (add.op != "Add" || add.inputs.size() != 2) return -1;
  for (int side = 0; side < 2; ++side)
    if (near(scalar_constant(graph, add.inputs[static_cast<size_t>(side)]), 3.0f)) {
      *x = add.inputs[static_cast<size_t>(1 - side)];
      return c;
    }
  return -1;
}

void erase_nodes(Graph& graph, std::vector<int> nodes) {
  std::sort(nodes.rbegin(), nodes.rend());
  for (int j : nodes) erase_node(graph, static_cast<size_t>(j));
}

}  // namespace

size_t fuse_hard_activations(Graph& graph) {
  size_t fused = 0;
  std::vector<int> uses = use_counts(graph);
  const auto clip_and_add = [&graph](int clip) {
    return std::vector<int>{clip, producer(graph, graph.nodes[static_cast<size_t>(clip)].inputs[0])};
  };
  for (size_t j = 0; j < graph.nodes.size(); ++j) {
    const Node& mul = graph.nodes[j];
    if (mul.op != "Mul" || mul.inputs.size() != 2 || mul.outputs.size() != 1) continue;
    int x = kNoTensor;
    std::vector<int> gone;
    std::string op;
    // relu6(x + 3) * 1/6
    for (int side = 0; side < 2 && op.empty(); ++side) {
      if (!near(scalar_constant(graph, mul.inputs[static_cast<size_t>(side)]), 1.0f / 6.0f)) continue;
      const int clip = relu6_of_x_plus_3(graph, uses, mul.inputs[static_cast<size_t>(1 - side)], &x);
      if (clip >= 0) {
        op = "HardSigmoid";
        gone = clip_and_add(clip);
      }
    }
    // x * 1/6 * relu6(x + 3) in any grouping: one operand a Mul read only here, the three factors
    // x, the constant 1/6 and relu6(x + 3).
    for (int side = 0; side < 2 && op.empty(); ++side) {
      const int inner = sole_producer(graph, uses, mul.inputs[static_cast<size_t>(side)]);
      if (inner < 0) continue;
      const Node& m2 = graph.nodes[static_cast<size_t>(inner)];
      if (m2.op != "Mul" || m2.inputs.size() != 2) continue;
      const int factors[3] = {m2.inputs[0], m2.inputs[1], mul.inputs[static_cast<size_t>(1 - side)]};
      for (int c = 0; c < 3 && op.empty(); ++c) {
        if (!near(scalar_constant(graph, factors[c]), 1.0f / 6.0f)) continue;
        for (int r = 0; r < 3 && op.empty(); ++r) {
          int y = kNoTensor;
          const int clip = r == c ? -1 : relu6_of_x_plus_3(graph, uses, factors[r], &y);
          if (clip >= 0 && y == factors[3 - c - r]) {
            op = "HardSwish";
            x = y;
            gone = clip_and_add(clip);
            gone.push_back(inner);
          }
        }
      }
    }
    if (op.empty()) continue;
    Node& m = graph.nodes[j];
    m.op = op;
    m.inputs = {x};
    m.attrs.clear();
    if (op == "HardSigmoid") {
      m.attrs["alpha"] = 1.0f / 6.0f;
      m.attrs["beta"] = 0.5f;
    }
    // Every erased node comes before the Mul.
    j -= gone.size();
    erase_nodes(graph, gone);
    uses = use_counts(graph);
    ++fused;
  }
  return fused;
}

size_t fold_bias_adds(Graph& graph) {
  size_t folded = 0;
  std::vector<int> uses = use_counts(graph);
  for (size_t j = 0; j < graph.nodes.size(); ++j) {
    const Node& add = graph.nodes[j];
    if (add.op != "Add" || add.inputs.size() != 2 || add.outputs.size() != 1) continue;
    for (int side = 0; side < 2; ++side) {
      const int x = add.inputs[static_cast<size_t>(side)], c = add.inputs[static_cast<size_t>(1 - side)];
      if (c == kNoTensor) continue;
      const Tensor& ct = graph.tensors[static_cast<size_t>(c)];
      const int p = sole_producer(graph, uses, x);
      if (p < 0 || !ct.is_constant() || ct.dtype != DType::f32) continue;
      const Node& conv = graph.nodes[static_cast<size_t>(p)];
      if (conv.op != "Conv2D" || conv.outputs.size() != 1 || conv.inputs.size() < 2) continue;
      if (conv.attr_text("activation", "none") != "none") continue;
      const Tensor& w = graph.tensors[static_cast<size_t>(conv.inputs[1])];
      if (w.shape.empty()) continue;
      const int64_t channels = w.shape[0];
      // The constant must hold one value per output channel, along the last (channels) axis.
      const int64_t n = elements(ct.shape);
      bool along_channels = n == channels && !ct.shape.empty() && ct.shape.back() == channels && ct.shape.size() <= 4;
      if (!along_channels) continue;
      std::vector<float> bias(static_cast<size_t>(channels), 0.0f);
      const bool has_bias = conv.inputs.size() > 2 && conv.inputs[2] != kNoTensor;
      if (has_bias) {
        const Tensor& b = graph.tensors[static_cast<size_t>(conv.inputs[2])];
        if (!b.is_constant() || b.dtype != DType::f32 || b.values<float>().size() != bias.size()) continue;
        std::copy(b.values<float>().begin(), b.values<float>().end(), bias.begin());
      }
      const auto cv = ct.values<float>();
      for (size_t k = 0; k < bias.size(); ++k) bias[k] += cv[k];
      std::vector<uint8_t> bytes(bias.size() * sizeof(float));
      std::memcpy(bytes.data(), bias.data(), bytes.size());
      const int bt = graph.add_constant(graph.tensors[static_cast<size_t>(x)].name + "/bias", DType::f32,
                                        {channels}, std::move(bytes));
      Node& cn = graph.nodes[static_cast<size_t>(p)];
      if (has_bias)
        cn.inputs[2] = bt;
      else
        cn.inputs.resize(3, kNoTensor), cn.inputs[2] = bt;
      cn.outputs[0] = graph.nodes[j].outputs[0];
      erase_node(graph, j--);
      uses = use_counts(graph);
      ++folded;
      break;
    }
  }
  return folded;
}

size_t fold_pads(Graph& graph) {
  size_t folded = 0;
  std::vector<int> uses = use_counts(graph);
  for (size_t j = 0; j < graph.nodes.size(); ++j) {
    const Node& node = graph.nodes[j];
    const bool conv = node.op == "Conv2D", pool = node.op == "MaxPool2D";
    if ((!conv && !pool) || node.inputs.empty()) continue;
    const int p = sole_producer(graph, uses, node.inputs[0]);
    if (p < 0) continue;
    const Node& pad = graph.nodes[static_cast<size_t>(p)];
    if (pad.op != "Pad" || pad.inputs.size() != 1 || pad.attr_text("mode", "constant") != "constant") continue;
    const std::vector<int64_t> pads = pad.attr_ints("pads");
    // NHWC: only the spatial axes padded.
    if (pads.size() != 8 || pads[0] || pads[3] || pads[4] || pads[7]) continue;
    const float value = pad.attr_float("value", 0.0f);
    if (conv ? value != 0.0f : !(value <= std::numeric_limits<float>::lowest())) continue;
    std::vector<int64_t> own = node.attr_ints("pads", {0, 0, 0, 0});
    if (own.size() != 4) continue;
    const int64_t add[4] = {pads[1], pads[2], pads[5], pads[6]};
    for (size_t k = 0; k < 4; ++k) own[k] += add[k];
    if (pool) {
      // Every window must still see an input cell: pads below the kernel.
      const std::vector<int64_t> kernel = node.attr_ints("kernel", {1, 1});
      if (kernel.size() != 2 || own[0] >= kernel[0] || own[2] >= kernel[0] || own[1] >= kernel[1] || own[3] >= kernel[1])
        continue;
    }
    Node& n = graph.nodes[j];
    n.attrs["pads"] = own;
    n.inputs[0] = pad.inputs[0];
    erase_node(graph, static_cast<size_t>(p));
    --j;  // the Pad came before
    uses = use_counts(graph);
    ++folded;
  }
  return folded;
}

size_t compose_transposes(Graph& graph) {
  size_t merged = 0;
  LazyShapes shapes(graph);
  for (size_t j = 0; j < graph.nodes.size(); ++j) {
    if (!is_transpose(graph.nodes[j])) continue;
    const int p = producer(graph, graph.nodes[j].inputs[0]);
    if (p < 0 || !is_transpose(graph.nodes[static_cast<size_t>(p)])) continue;
    const std::optional<Perm> first = perm_of(graph.nodes[static_cast<size_t>(p)], shapes),
                              second = perm_of(graph.nodes[j], shapes);
    if (!first || !second || first->size() != second->size()) continue;
    // Y dim d = input dim first[second[d]].
    Perm perm(second->size());
    for (size_t d = 0; d < perm.size(); ++d) perm[d] = (*first)[static_cast<size_t>((*second)[d])];
    Node& node = graph.nodes[j];
    node.inputs[0] = graph.nodes[static_cast<size_t>(p)].inputs[0];
    node.attrs["perm"] = perm;
    ++merged;
  }
  return merged;
}

size_t transposes_to_reshapes(Graph& graph) {
  size_t changed = 0;
  LazyShapes shapes(graph);
  for (Node& node : graph.nodes) {
    if (!is_transpose(node)) continue;
    const std::optional<Perm> perm = perm_of(node, shapes);
    const Shape* in = shapes.get(node.inputs[0]);
    if (!perm || !in || in->size() != perm->size()) continue;
    Shape out;
    int64_t last = -1;
    bool in_order = true;
    for (int64_t p : *perm) {
      const int64_t len = (*in)[static_cast<size_t>(p)];
      out.push_back(len);
      if (len == 1) continue;
      in_order = in_order && p > last;
      last = p;
    }
    if (!in_order) continue;
    node.op = "Reshape";
    node.attrs.clear();
    node.attrs["shape"] = out;
    ++changed;
  }
  return changed;
}

size_t sink_transposes(Graph& graph) {
  size_t moved = 0;
  LazyShapes shapes(graph);
  std::vector<int> uses = use_counts(graph);
  for (size_t j = 0; j < graph.nodes.size(); ++j) {
    const Node& node = graph.nodes[j];
    bool done = false;
    if (is_transpose(node) && node.outputs.size() == 1 && uses[static_cast<size_t>(node.outputs[0])] == 1) {
      const int k = consumer(graph, node.outputs[0], j);
      if (k >= 0) {
        const std::optional<Perm> perm = perm_of(node, shapes);
        done = sink_below(graph, j, static_cast<size_t>(k), perm) ||
               sink_below_split(graph, j, static_cast<size_t>(k), perm);
      }
    } else {
      done = sink_below_join(graph, j, uses, shapes);
    }
    if (!done) continue;
    ++moved;
    uses = use_counts(graph);
  }
  return moved;
}

size_t remove_noops(Graph& graph) {
  size_t removed = 0;
  LazyShapes shapes(graph);
  for (size_t j = 0; j < graph.nodes.size(); ++j) {
    Node& node = graph.nodes[j];
    if (node.inputs.empty() || node.inputs[0] == kNoTensor || node.outputs.empty()) continue;
    if (node.op == "Reshape") {
      const int p = producer(graph, node.inputs[0]);
      if (p >= 0 && graph.nodes[static_cast<size_t>(p)].op == "Reshape" &&
          graph.nodes[static_cast<size_t>(p)].inputs.size() == 1) {
        node.inputs[0] = graph.nodes[static_cast<size_t>(p)].inputs[0];
        ++removed;
      }
    }
    bool noop = false;
    if (is_transpose(node)) {
      const std::optional<Perm> perm = perm_of(node, shapes);
      noop = perm && is_identity(*perm);
    } else if (noop_when_same_shape(node)) {
      const Shape *in = shapes.get(node.inputs[0]), *out = shapes.get(node.outputs[0]);
      noop = in && out && *in == *out;
    }
    if (noop && bypass(graph, j)) {
      --j;
      ++removed;
    }
  }
  return removed;
}

size_t fold_constants(Graph& graph) {
  size_t folded = 0;
  for (size_t j = 0; j < graph.nodes.size(); ++j)
    if (foldable(graph, graph.nodes[j]) && fold(graph, j)) ++folded, --j;
  return folded;
}

size_t remove_dead_nodes(Graph& graph) {
  size_t removed = 0;
  std::vector<int> uses = use_counts(graph);
  for (size_t j = graph.nodes.size(); j-- > 0;) {
    const Node& node = graph.nodes[j];
    if (std::any_of(node.outputs.begin(), node.outputs.end(),
                    [&](int t) { return uses[static_cast<size_t>(t)] > 0; }))
      continue;
    for (int t : node.inputs)
      if (t != kNoTensor) --uses[static_cast<size_t>(t)];
    erase_node(graph, j);
    ++removed;
  }
  return removed;
}

size_t drop_unused_tensors(Graph& graph) {
  std::vector<bool> used(graph.tensors.size(), false);
  for (const Node& n : graph.nodes) {
    for (int t : n.inputs)
      if (t != kNoTensor) used[static_cast<size_t>(t)] = true;
    for (int t : n.outputs) used[static_cast<size_t>(t)] = true;
  }
  for (int t : graph.inputs) used[static_cast<size_t>(t)] = true;
  for (int t : graph.outputs) used[static_cast<size_t>(t)] = true;
  std::vector<int> index(graph.tensors.size(), kNoTensor);
  std::vector<Tensor> kept;
  for (size_t t = 0; t < graph.tensors.size(); ++t) {
    if (!used[t]) continue;
    index[t] = static_cast<int>(kept.size());
    kept.push_back(std::move(graph.tensors[t]));
  }
  const size_t dropped = graph.tensors.size() - kept.size();
  graph.tensors = std::move(kept);
  const auto renumber = [&](std::vector<int>& list) {
    for (int& t : list)
      if (t != kNoTensor) t = index[static_cast<size_t>(t)];
  };
  for (Node& n : graph.nodes) {
    renumber(n.inputs);
    renumber(n.outputs);
  }
  renumber(graph.inputs);
  renumber(graph.outputs);
  // Keeps each owned buffer some constant points into; moving a vector keeps
  // its buffer where it is, so the constants' spans stay valid.
  std::vector<const uint8_t*> referenced;
  for (const Tensor& t : graph.tensors)
    if (t.is_constant()) referenced.push_back(t.data.data());
  std::sort(referenced.begin(), referenced.end());
  std::deque<std::vector<uint8_t>> owned;
  for (std::vector<uint8_t>& bytes : graph.owned) {
    const auto first = std::lower_bound(referenced.begin(), referenced.end(), bytes.data());
    if (first != referenced.end() && *first < bytes.data() + bytes.size()) owned.push_back(std::move(bytes));
  }
  graph.owned = std::move(owned);
  return dropped;
}

PassReport optimize(Graph& graph) {
  PassReport r;
  r.nodes_before = graph.nodes.size();
  r.transposes_before = count_op(graph, "Transpose");
  // Each round runs every pass once; a round that changes nothing ends it.
  // Every pass removes nodes or moves Transposes down, so rounds are few; the
  // cap only guards against a pass pair undoing each other.
  constexpr size_t kMaxRounds = 100;
  for (bool changed = true; changed && r.rounds < kMaxRounds; ++r.rounds) {
    changed = false;
    const auto count = [&](size_t& total, size_t n) {
      total += n;
      changed = changed || n > 0;
    };
    count(r.folded_constants, fold_constants(graph));
    count(r.removed_noops, remove_noops(graph));
    count(r.merged_transposes, compose_transposes(graph));
    count(r.transposes_to_reshapes, transposes_to_reshapes(graph));
    count(r.moved_transposes, sink_transposes(graph));
    count(r.fused_activations, fuse_activations(graph));
    count(r.fused_silu, fuse_silu(graph));
    count(r.fused_hard, fuse_hard_activations(graph));
    count(r.folded_pads, fold_pads(graph));
    count(r.folded_bias_adds, fold_bias_adds(graph));
    count(r.removed_dead, remove_dead_nodes(graph));
  }
  r.dropped_tensors = drop_unused_tensors(graph);
  r.nodes_after = graph.nodes.size();
  r.transposes_after = count_op(graph, "Transpose");
  return r;
}

std::string PassReport::text() const {
  const auto n = [](size_t v) { return std::to_string(v); };
  std::string out;
  const auto add = [&](size_t count, const std::string& part) {
    if (count) out += (out.empty() ? "" : ", ") + part;
  };
  const size_t removed = transposes_before > transposes_after ? transposes_before - transposes_after : 0;
  add(fused_activations, "fused " + n(fused_activations) + " activations");
  add(fused_silu, "fused " + n(fused_silu) + " x * sigmoid(x) into Silu");
  add(folded_bias_adds, "folded " + n(folded_bias_adds) + " bias adds into convolutions");
  add(folded_pads, "folded " + n(folded_pads) + " pads into convolutions and max pools");
  add(fused_hard, "fused " + n(fused_hard) + " relu6(x + 3) / 6 patterns into HardSigmoid / HardSwish");
  add(removed + merged_transposes + moved_transposes + transposes_to_reshapes,
      "removed " + n(removed) + " of " + n(transposes_before) + " transposes (" + n(merged_transposes) +
          " merged, " + n(moved_transposes) + " moved, " + n(transposes_to_reshapes) + " to reshapes)");
  add(folded_constants, "folded " + n(folded_constants) + " constants");
  add(removed_noops, "removed " + n(removed_noops) + " no-ops");
  add(removed_dead, "removed " + n(removed_dead) + " dead nodes");
  add(dropped_tensors, "dropped " + n(dropped_tensors) + " tensors");
  if (out.empty()) return "nothing to change (" + n(nodes_after) + " nodes)";
  return out + ": " + n(nodes_before) + " -> " + n(nodes_after) + " nodes in " + n(rounds) + " rounds";
}

}  // namespace huddle::engine
