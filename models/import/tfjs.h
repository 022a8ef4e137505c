// TensorFlow.js import: a TF.js graph model (model.json with modelTopology,
// a TensorFlow GraphDef as JSON, and weightsManifest, naming the weight
// shards and each weight's dtype and storage: float32, int32, bool, or
// quantised to float16 / uint8 / uint16 with a scale and minimum) becomes an
// engine graph. TF graphs are channels-last already, so every value keeps
// its TF shape and layout; the Transposes of graphs converted from NCHW
// frameworks are imported as they are and removed by the engine's passes
// (engine/passes.h) where they cancel. Constant subgraphs (shape arithmetic)
// are evaluated at import time.
//
// Only the nodes the chosen outputs need are imported: by default the
// signature's outputs (or, without a signature, every node nothing reads);
// ImportOptions::outputs picks others (e.g. a detector's raw heads instead
// of its in-graph post-processing). Every node that cannot be converted is
// listed in one ImportError.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "models/import/onnx.h"

namespace huddle::models {

// Reads a weight shard named in the manifest (a path relative to model.json).
using ShardReader = std::function<std::vector<uint8_t>(const std::string& path)>;

// Imports model.json; shards are read from its folder (only relative paths
// inside it). Throws ImportError.
ImportResult import_tfjs_file(const std::string& path, const ImportOptions& options = {});
// Imports model.json held in memory (`name` is used in messages), reading
// shards through `read_shard`. Throws ImportError.
ImportResult import_tfjs_bytes(std::span<const uint8_t> json, const std::string& name, const ShardReader& read_shard,
                               const ImportOptions& options = {});

// Every TF op the importer converts, sorted; `fold_only` ops are evaluated at
// import time and need constant inputs.
struct TfjsOpSupport {
  const char* op;
  bool fold_only = false;
};
const std::vector<TfjsOpSupport>& tfjs_supported_ops();

}  // namespace huddle::models
