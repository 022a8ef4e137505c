// Sample inputs for a model from a directory: what `huddle quantize` calibrates
// on and checks with.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/model_file.h"

namespace huddle::tools {

// Per sample, one fp32 value vector per model input.
using SampleSet = std::vector<std::vector<std::vector<float>>>;

// The inputs in directory `dir` (files in name order, at most `max` samples)
// for the single-input fp32 model `model`: each .npy holds one input (the
// input's shape) or a batch of them (a first dimension of any size, the rest
// the input's shape after its batch dimension of 1); each JPEG or PNG image
// is preprocessed as the model stores. Other files are skipped. Throws
// std::runtime_error naming the file for anything unreadable or of the
// wrong shape, and when the directory yields no sample.
SampleSet read_samples(const std::string& dir, const engine::ModelFile& model, size_t max);

}  // namespace huddle::tools
