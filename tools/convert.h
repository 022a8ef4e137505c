// The ONNX-to-.hdm conversion `huddle convert` runs, shared with the commands
// that accept an ONNX model in place of a .hdm (`huddle quantize`).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/import/onnx.h"

namespace huddle::tools {

// Preprocessing and labels as given on the command line or in a sidecar (text, parsed when converting).
struct ConvertPreprocess {
  std::string task, labels_path, size, mean, std_dev, colour, resize, crop, detector, score_threshold;
};

struct ConvertRequest {
  std::string source;  // the .onnx file, or a TensorFlow.js model.json
  std::string sidecar;
  models::ImportOptions options;
  ConvertPreprocess pre;
};

// If argv[i] is one of convert's model options (--input-shape, --nhwc-input,
// --no-optimize, --outputs, --sidecar, --task, --labels, --size, --mean, --std,
// --colour, --resize, --crop, --detector, --score-threshold), reads it (and its value, advancing i) into `r` and returns true.
// Throws std::invalid_argument for a missing or malformed value.
bool parse_convert_flag(int argc, char** argv, int& i, ConvertRequest& r);

// The bytes of the fp32 .hdm made from `r` (not yet checked to load: callers
// load them with ModelFile::from_bytes); *passes gets the graph passes' summary.
// Throws std::invalid_argument for bad preprocessing values, other exceptions
// for a model that cannot be converted.
std::vector<uint8_t> convert_model(ConvertRequest r, std::string* passes = nullptr);

}  // namespace huddle::tools
