// How close a quantised graph's answers are to the fp32 graph's: per output,
// cosine similarity and largest absolute error; for classifier-like outputs
// (a vector of two or more scores), top-1 and top-5 agreement. Also the
// sensitivity pass (one layer int8 at a time) and the choice of layers to
// keep in fp32 until an error target is met.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "models/quantize/quantize.h"

namespace huddle::quantize {

// One input set: per sample, one value vector per graph input.
using Samples = std::vector<std::vector<std::vector<float>>>;
// Per sample, one value vector per graph output.
using Outputs = std::vector<std::vector<std::vector<float>>>;

// Runs `graph` (fp32 inputs and outputs) with the engine on every sample.
Outputs run_graph(const engine::Graph& graph, const Samples& samples, size_t threads = 1);

struct OutputFidelity {
  std::string name;
  double mean_cosine = 1, min_cosine = 1;  // over the samples
  double max_abs_error = 0;                // over all samples and elements
  double max_abs_reference = 0;            // the largest |fp32 value|, for scale
};

struct SetFidelity {
  size_t samples = 0;
  std::vector<OutputFidelity> outputs;
  // Output 0 when it holds two or more scores per sample (else -1): the share
  // of samples where the quantised top-1 class is fp32's top-1, and where
  // fp32's top-1 class is among the quantised top 5.
  double top1 = -1, top5 = -1;
};

// Compares `quantised` with `reference` (same samples, same outputs).
SetFidelity compare(const Outputs& reference, const Outputs& quantised, const std::vector<std::string>& names);

// The share of samples whose output 0's largest score is at index labels[s].
double accuracy(const Outputs& outputs, const std::vector<int64_t>& labels);

// Mean over outputs of the mean cosine: the one figure the passes below optimise.
double mean_cosine(const SetFidelity& f);

struct LayerSensitivity {
  std::string name, op;
  double cosine = 1;  // mean_cosine with only this layer int8
};

// For each of quantizable_nodes(fp32) (minus options.keep_float): the output
// cosine with only that node int8, worst first. `progress(done, total)` after each.
std::vector<LayerSensitivity> sensitivity(const engine::Graph& fp32, const std::vector<Histogram>& hist,
                                          const QuantizeOptions& options, const Samples& samples,
                                          const Outputs& reference, size_t threads,
                                          const std::function<void(size_t, size_t)>& progress = {});

// Adds layers from `ranking` (worst first) to options.keep_float, one at a time,
// until the quantised graph's mean cosine on `samples` reaches `target` or none
// are left; returns the layers added. `progress(done, total)` after each try.
std::vector<std::string> keep_float_until(const engine::Graph& fp32, const std::vector<Histogram>& hist,
                                          QuantizeOptions& options, const std::vector<LayerSensitivity>& ranking,
                                          double target, const Samples& samples, const Outputs& reference,
                                          size_t threads, const std::function<void(size_t, size_t)>& progress = {});

}  // namespace huddle::quantize
