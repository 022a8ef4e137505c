// ONNX import: an ONNX model (opsets up to 17) becomes an engine graph with
// NHWC activations. Layout: every value keeps its ONNX shape; a 4-D value
// that feeds convolution or pooling is held channels-last in the engine, and
// Transpose nodes are inserted only where a layout-bound op (Reshape,
// Flatten, ...) needs the ONNX order back. The engine's passes
// (engine/passes.h) then fuse activations and remove the transposes that
// move no data. Constant subgraphs (shape arithmetic: Shape, Gather,
// Unsqueeze, Concat, ...) are evaluated at import time.
//
// Graph inputs and outputs keep their ONNX names, shapes and layout by
// default, so the converted model takes the same tensors as ONNX Runtime;
// ImportOptions::nhwc_inputs makes 4-D inputs channels-last instead (the
// layout the image pipeline produces).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/graph.h"

namespace huddle::models {

// A model that cannot be imported. what() names the file and lists every
// node the importer cannot convert (name, op type, and why), not just the first.
class ImportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ImportOptions {
  // Shapes for inputs with symbolic dimensions (e.g. a batch "N"), by input
  // name. A symbolic dimension without one here becomes 1.
  std::map<std::string, engine::Shape> input_shapes;
  // 4-D float inputs are given channels-last (N, H, W, C) instead of ONNX's N, C, H, W.
  bool nhwc_inputs = false;
  // Run the engine's graph passes (fusion, transpose removal, folding).
  bool optimize = true;
  // TensorFlow.js only: the graph's outputs by node name ("name" or
  // "name:k"); empty: the model's signature outputs.
  std::vector<std::string> outputs;
};

struct ImportResult {
  engine::Graph graph;   // owns all its constants
  int64_t opset = 0;     // of the default ONNX domain
  std::string producer;  // producer_name and producer_version of the ONNX file
  std::string passes;    // what the graph passes did, one line
};

// Imports an ONNX model file; external tensor data is read relative to it. Throws ImportError.
ImportResult import_onnx_file(const std::string& path, const ImportOptions& options = {});
// Imports an ONNX model held in memory (`name` is used in messages). Throws ImportError.
ImportResult import_onnx_bytes(std::span<const uint8_t> bytes, const std::string& name,
                               const ImportOptions& options = {});

// An ONNX op the importer converts, and how.
struct OnnxOpSupport {
  const char* op;
  // Indices of inputs that must be constants (weights, shapes, axes), e.g. Conv's W and B.
  std::vector<int> constant_inputs;
  // Evaluated at import time only: every input must be a constant (shape arithmetic).
  bool fold_only = false;
};
// Every ONNX op the importer claims, sorted by name.
const std::vector<OnnxOpSupport>& onnx_supported_ops();

}  // namespace huddle::models
