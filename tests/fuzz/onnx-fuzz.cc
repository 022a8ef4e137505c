// libFuzzer target: any bytes given to the ONNX importer either import into a
// graph the engine prepares (or refuses with GraphError), or raise
// ImportError; nothing else (no crash, no other exception, no huge allocation).
#include <cstddef>
#include <cstdint>

#include "engine/interpreter.h"
#include "models/import/onnx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    // A folder that does not exist: external data can never be read.
    auto result = huddle::models::import_onnx_bytes({data, size}, "/nonexistent-fuzz-dir/fuzz.onnx");
    for (const auto& t : result.graph.tensors)
      if (huddle::engine::elements(t.shape) > (int64_t{1} << 22)) return 0;  // too big to run here
    try {
      huddle::engine::Interpreter it(std::move(result.graph));
    } catch (const huddle::engine::GraphError&) {
    }
  } catch (const huddle::models::ImportError&) {
  }
  return 0;
}
