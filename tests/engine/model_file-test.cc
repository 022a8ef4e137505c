// The .hdm model file: a written model reads back in place, and every kind of
// damage gives a ModelError that names the problem.
#include "engine/model_file.h"

#include <capnp/message.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>

using namespace huddle::engine;

namespace {

const float kWeights[8] = {1, 2, 3, 4, 5, 6, 7, 8};
const int32_t kBias[2] = {-1, 1};

// A two-node model: y = MatMul(x, w) + b. `edit` may spoil the message.
std::vector<uint8_t> make_model(const std::function<void(schema::Model::Builder)>& edit = {}) {
  capnp::MallocMessageBuilder message;
  auto model = message.initRoot<schema::Model>();
  WeightsBuilder weights;
  auto graph = model.initGraph();
  auto tensors = graph.initTensors(5);
  auto set = [&](uint32_t i, const char* name, schema::DType dtype, std::initializer_list<int64_t> shape) {
    tensors[i].setName(name);
    tensors[i].setDtype(dtype);
    auto s = tensors[i].initShape(static_cast<unsigned>(shape.size()));
    unsigned k = 0;
    for (int64_t d : shape) s.set(k++, d);
  };
  set(0, "x", schema::DType::F32, {1, 4});
  set(1, "w", schema::DType::F32, {4, 2});
  tensors[1].setDataOffset(weights.append({reinterpret_cast<const uint8_t*>(kWeights), sizeof kWeights}));
  tensors[1].setDataLength(sizeof kWeights);
  set(2, "xw", schema::DType::F32, {1, 2});
  set(3, "b", schema::DType::I32, {2});
  tensors[3].setDataOffset(weights.append({reinterpret_cast<const uint8_t*>(kBias), sizeof kBias}));
  tensors[3].setDataLength(sizeof kBias);
  set(4, "y", schema::DType::F32, {1, 2});
  auto nodes = graph.initNodes(2);
  nodes[0].setName("matmul");
  nodes[0].setOp("MatMul");
  nodes[0].setInputs({0, 1});
  nodes[0].setOutputs({2});
  nodes[1].setName("add");
  nodes[1].setOp("Add");
  nodes[1].setInputs({2, 3});
  nodes[1].setOutputs({4});
  auto attrs = nodes[1].initAttributes(1);
  attrs[0].setName("alpha");
  attrs[0].setFloat(1.5f);
  graph.setInputs({0});
  graph.setOutputs({4});
  model.setTask("classify");
  model.setLabels({"cat", "dog"});
  model.getProvenance().setProducer("model_file-test");
  if (edit) edit(model);
  return serialize_model(message, weights.bytes());
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    ModelFile::from_bytes(bytes, "m.hdm");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "no error";
}

void put_u64(std::vector<uint8_t>& b, size_t at, uint64_t v) { std::memcpy(b.data() + at, &v, 8); }

}  // namespace

TEST_CASE("model file: a written model reads back, weights in place and 64-byte aligned",
          "[engine][model_file]") {
  const std::vector<uint8_t> bytes = make_model();
  const std::string path = "model_file-test-" + std::to_string(getpid()) + ".hdm";
  { std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size()); }
  const ModelFile file = ModelFile::open(path);
  std::remove(path.c_str());
  const auto model = file.model();
  CHECK(std::string(model.getTask().cStr()) == "classify");
  REQUIRE(model.getLabels().size() == 2);
  CHECK(std::string(model.getLabels()[1].cStr()) == "dog");
  const auto graph = model.getGraph();
  REQUIRE(graph.getNodes().size() == 2);
  CHECK(std::string(graph.getNodes()[0].getOp().cStr()) == "MatMul");
  CHECK(graph.getNodes()[1].getAttributes()[0].getFloat() == 1.5f);
  const auto w = file.tensor_data(1);
  REQUIRE(w.size() == sizeof kWeights);
  CHECK(std::memcmp(w.data(), kWeights, sizeof kWeights) == 0);
  CHECK(reinterpret_cast<uintptr_t>(w.data()) % 64 == 0);  // mapped pages, 64-aligned offsets
  CHECK(std::memcmp(file.tensor_data(3).data(), kBias, sizeof kBias) == 0);
  CHECK(file.tensor_data(0).empty());
  CHECK(file.file_bytes() == bytes.size());
}

TEST_CASE("model file: damaged headers and sections are named", "[engine][model_file]") {
  const std::vector<uint8_t> good = make_model();
  CHECK(error_of(good) == "no error");

  auto bad = good;
  bad[1] = 'X';
  CHECK_THAT(error_of(bad), Catch::Contains("m.hdm: not a huddle model file (bad magic)"));

  bad = good;
  bad[8] = 7;
  CHECK_THAT(error_of(bad), Catch::Contains("format version 7, this build reads version 1"));

  CHECK_THAT(error_of({good.begin(), good.begin() + 40}), Catch::Contains("shorter than the 64-byte header"));
  CHECK_THAT(error_of({}), Catch::Contains("shorter than the 64-byte header"));

  // Truncated inside the weights section, and inside the message.
  CHECK_THAT(error_of({good.begin(), good.end() - 4}), Catch::Contains("weights section"));
  CHECK_THAT(error_of({good.begin(), good.end() - 4}), Catch::Contains("truncated"));
  CHECK_THAT(error_of({good.begin(), good.begin() + 80}), Catch::Contains("runs past the end"));

  bad = good;
  put_u64(bad, 32, 65);  // weights offset not aligned
  CHECK_THAT(error_of(bad), Catch::Contains("weights offset 65 is not a multiple of 64"));

  bad = good;
  put_u64(bad, 24, 8);  // message cut short: a pointer leads outside it
  CHECK_THAT(error_of(bad), Catch::Contains("malformed model message"));
}

TEST_CASE("model file: graph errors are named", "[engine][model_file]") {
  using M = schema::Model::Builder;
  auto tensor = [](M m, uint32_t i) { return m.getGraph().getTensors()[i]; };

  CHECK_THAT(error_of(make_model([&](M m) { tensor(m, 1).setDataOffset(4096); })),
             Catch::Contains("tensor 1 'w' data [offset 4096, length 32] lies outside the weights section"));
  CHECK_THAT(error_of(make_model([&](M m) { tensor(m, 1).setDataOffset(32); })),
             Catch::Contains("data offset 32 is not a multiple of 64"));
  CHECK_THAT(error_of(make_model([&](M m) { tensor(m, 1).getShape().set(0, 3); })),
             Catch::Contains("tensor 1 'w' has 32 bytes of data but its shape needs 24 (6 x f32)"));
  CHECK_THAT(error_of(make_model([&](M m) { tensor(m, 1).getShape().set(0, -2); })),
             Catch::Contains("negative dimension -2"));
  CHECK_THAT(error_of(make_model([&](M m) { tensor(m, 0).setDtype(static_cast<schema::DType>(40)); })),
             Catch::Contains("tensor 0 'x' has an unknown dtype 40"));
  CHECK_THAT(error_of(make_model([&](M m) { m.getGraph().getNodes()[0].getInputs().set(1, 9); })),
             Catch::Contains("node 0 'matmul' input refers to tensor 9 of 5"));
  // The add reads xw before the matmul computes it: a wrong order or a cycle.
  CHECK_THAT(error_of(make_model([&](M m) {
               auto nodes = m.getGraph().getNodes();
               nodes[0].getInputs().set(0, 4);
             })),
             Catch::Contains("node 0 'matmul' reads tensor 4 'y' before any node computes it"));
  CHECK_THAT(error_of(make_model([&](M m) { m.getGraph().getNodes()[1].getOutputs().set(0, 2); })),
             Catch::Contains("writes tensor 2 'xw', which is already"));
  CHECK_THAT(error_of(make_model([&](M m) { m.getGraph().getNodes()[0].setOp(""); })),
             Catch::Contains("node 0 'matmul' has no op type"));
  CHECK_THAT(error_of(make_model([&](M m) {
               m.getGraph().setOutputs({2, 4, 0, 1});
             })),
             Catch::Contains("no error"));
  CHECK_THAT(error_of(make_model([&](M m) { m.getGraph().initOutputs(0); })), Catch::Contains("no outputs"));
  CHECK_THAT(error_of(make_model([&](M m) {
               auto q = tensor(m, 1).getQuant();
               q.setScale({0.5f, 0.25f, 1.0f});
               q.setZeroPoint({0, 0, 0});
               q.setAxis(1);
             })),
             Catch::Contains("tensor 1 'w' has 3 scales for dimension 1 of size 2"));
  CHECK_THAT(error_of(make_model([&](M m) { m.getPreprocess().setStd({0.0f}); })),
             Catch::Contains("preprocess std has a zero"));
}

TEST_CASE("model file: a missing file is named", "[engine][model_file]") {
  CHECK_THROWS_WITH(ModelFile::open("/nonexistent/x.hdm"),
                    Catch::Contains("/nonexistent/x.hdm: cannot open"));
}

// The fuzz target's seed must stay a valid model as the format evolves:
// `HUDDLE_SEED_OUT=path engine-test "[.write-seed]"` rewrites it.
TEST_CASE("model file: write the fuzz seed", "[.write-seed]") {
  const char* out = std::getenv("HUDDLE_SEED_OUT");
  REQUIRE(out != nullptr);
  const std::vector<uint8_t> bytes = make_model();
  std::ofstream(out, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

TEST_CASE("model file: the committed fuzz seed is a valid model", "[engine][model_file]") {
  CHECK_NOTHROW(ModelFile::open(HUDDLE_SOURCE_DIR "/tests/fuzz/seeds/model_file/valid.hdm"));
}
