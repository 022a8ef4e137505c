// The in-memory graph: written into a .hdm and read back it is the same graph,
// with constants read in place; attributes are typed.
#include "engine/graph.h"

#include <capnp/message.h>
#include <catch2/catch.hpp>

#include <cstring>

using namespace huddle::engine;

namespace {

std::vector<uint8_t> bytes_of(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

Graph sample_graph() {
  Graph g;
  Tensor x;
  x.name = "image";
  x.shape = {1, 8, 8, 3};
  const int in = g.add_tensor(x);
  const int w = g.add_constant("w", DType::f32, {4, 3, 3, 3}, bytes_of(std::vector<float>(108, 0.5f)));
  const int b = g.add_constant("b", DType::f32, {4}, bytes_of({1, 2, 3, 4}));
  Tensor q;
  q.name = "q";
  q.dtype = DType::i8;
  q.shape = {1, 8, 8, 4};
  q.quant = {{0.25f, 0.5f, 1.0f, 2.0f}, {0, 0, 0, 0}, 3};
  const int out = g.add_tensor(q);
  Node conv;
  conv.name = "conv1";
  conv.op = "Conv";
  conv.inputs = {in, w, b, kNoTensor};
  conv.outputs = {out};
  conv.attrs["pads"] = std::vector<int64_t>{1, 1, 1, 1};
  conv.attrs["group"] = int64_t{1};
  conv.attrs["alpha"] = 0.125f;
  conv.attrs["scales"] = std::vector<float>{1.5f, -2.0f};
  conv.attrs["activation"] = std::string("relu6");
  g.nodes.push_back(conv);
  g.inputs = {in};
  g.outputs = {out};
  return g;
}

}  // namespace

TEST_CASE("graph: a written graph reads back the same, constants in place", "[engine][graph]") {
  const Graph g = sample_graph();
  capnp::MallocMessageBuilder message;
  WeightsBuilder weights;
  graph_to_model(g, message.initRoot<schema::Model>(), weights);
  const std::vector<uint8_t> bytes = serialize_model(message, weights.bytes());
  const ModelFile file = ModelFile::from_bytes(bytes, "graph.hdm");
  const Graph r = graph_from_file(file);

  REQUIRE(r.tensors.size() == g.tensors.size());
  for (size_t i = 0; i < g.tensors.size(); ++i) {
    INFO("tensor " << i);
    CHECK(r.tensors[i].name == g.tensors[i].name);
    CHECK(r.tensors[i].dtype == g.tensors[i].dtype);
    CHECK(r.tensors[i].shape == g.tensors[i].shape);
    CHECK(r.tensors[i].quant.scale == g.tensors[i].quant.scale);
    CHECK(r.tensors[i].quant.zero_point == g.tensors[i].quant.zero_point);
    CHECK(r.tensors[i].quant.axis == g.tensors[i].quant.axis);
    CHECK(r.tensors[i].is_constant() == g.tensors[i].is_constant());
    REQUIRE(r.tensors[i].data.size() == g.tensors[i].data.size());
    if (!g.tensors[i].data.empty()) {
      CHECK(std::memcmp(r.tensors[i].data.data(), g.tensors[i].data.data(), g.tensors[i].data.size()) == 0);
      // Zero copy: the bytes are the file's.
      CHECK(r.tensors[i].data.data() == file.tensor_data(static_cast<uint32_t>(i)).data());
    }
  }
  REQUIRE(r.nodes.size() == 1);
  const Node& n = r.nodes[0];
  CHECK(n.op == "Conv");
  CHECK(n.inputs == std::vector<int>{0, 1, 2, kNoTensor});
  CHECK(n.attr_ints("pads") == std::vector<int64_t>{1, 1, 1, 1});
  CHECK(n.attr_int("group", 0) == 1);
  CHECK(n.attr_float("alpha", 0) == 0.125f);
  CHECK(n.attr_floats("scales") == std::vector<float>{1.5f, -2.0f});
  CHECK(n.attr_text("activation") == "relu6");
  CHECK(r.tensors[2].values<float>()[3] == 4.0f);
  CHECK(r.inputs == g.inputs);
  CHECK(r.outputs == g.outputs);
}

TEST_CASE("graph: attribute access is typed and names what is wrong", "[engine][graph]") {
  const Graph g = sample_graph();
  const Node& n = g.nodes[0];
  CHECK(n.attr_int("missing", 7) == 7);
  CHECK(n.attr_text("missing", "none") == "none");
  CHECK_THROWS_WITH(n.attr_int("alpha", 0), "node 'conv1' (Conv): attribute 'alpha' is not an integer");
  CHECK_THROWS_WITH(n.attr_ints("group"), "node 'conv1' (Conv): attribute 'group' is not a list of integers");
  CHECK(n.describe(3) == "node 3 'conv1' (Conv)");
}

TEST_CASE("graph: shapes, sizes and constants", "[engine][graph]") {
  CHECK(elements({1, 224, 224, 3}) == 150528);
  CHECK(elements({}) == 1);
  CHECK(elements({4, 0}) == 0);
  CHECK(shape_text({1, 2, 3}) == "[1, 2, 3]");
  Graph g;
  CHECK_THROWS_WITH(g.add_constant("c", DType::f32, {2, 2}, std::vector<uint8_t>(15)),
                    "constant 'c': 15 bytes for shape [2, 2] of f32");
  const int e = g.add_constant("empty", DType::i64, {0}, {});
  CHECK(g.tensors[e].is_constant());
  CHECK(g.find_tensor("empty") == e);
  CHECK(g.find_tensor("nope") == kNoTensor);
}
