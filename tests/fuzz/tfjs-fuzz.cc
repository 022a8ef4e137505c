// libFuzzer target: a TensorFlow.js model.json and one weight shard (the
// input split at its first NUL byte: JSON before, shard bytes after, served
// for every path the manifest names) either import into a graph the engine
// prepares (or refuses with GraphError), or raise ImportError; nothing else
// (no crash, no other exception, no huge allocation).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "engine/interpreter.h"
#include "models/import/tfjs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t json_size = nul ? static_cast<size_t>(nul - data) : size;
  const std::vector<uint8_t> shard(nul ? nul + 1 : data + size, data + size);
  try {
    auto result = huddle::models::import_tfjs_bytes({data, json_size}, "fuzz/model.json",
                                                    [&](const std::string&) { return shard; });
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
