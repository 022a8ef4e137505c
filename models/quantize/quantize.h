// Post-training quantisation of an fp32 graph into an int8 one
// (engine/INT8.md): weights int8 symmetric per output channel, activations
// int8 asymmetric per tensor from calibrated ranges, biases int32; fully
// connected layers optionally as 4- or 8-bit k-means codebooks.
//
// Every node whose op has an int8 form runs int8 unless it is kept float (by
// name, or because something it needs is missing); ops that only move bytes
// (Reshape, Transpose, Slice, Split, Pad, nearest Resize, MaxPool2D) run int8
// exactly when their input is int8, and keep its quantisation. A Quantize is
// put where an int8 node reads an fp32 tensor and a Dequantize where an fp32
// node (or a graph output) reads an int8 one, each made once per tensor. The
// graph's inputs and outputs keep their names and stay fp32.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "models/quantize/calibrate.h"

namespace huddle::quantize {

// How FullyConnected weights are stored.
enum class FcMode { int8, codebook4, codebook8 };
const char* fc_mode_name(FcMode mode);

struct QuantizeOptions {
  RangeMethod method = RangeMethod::mse;
  double percentile = 99.99;
  std::set<std::string> keep_float;  // names of nodes to keep fp32
  FcMode fc = FcMode::int8;
  std::set<std::string> fc_layers;  // FullyConnected nodes fc applies to; empty: all
  // Store the weights of the Conv2D and FullyConnected nodes left fp32 as f16
  // (half their size; the engine converts them back when it prepares).
  bool half_float_weights = false;
};

// A node left in fp32, and why.
struct FloatNode {
  std::string name, op, reason;
};

struct QuantizedGraph {
  engine::Graph graph;  // its unchanged constants point into the source graph's: keep that alive
  std::vector<FloatNode> float_nodes;
  size_t int8_nodes = 0;      // nodes of the source graph that run int8
  size_t codebook_nodes = 0;  // FullyConnected nodes stored as codebooks
  size_t half_weights = 0;    // fp32 nodes whose weights are stored f16
};

// Nodes of `graph` whose op has an int8 form and that compute (not only move
// bytes): the candidates of a sensitivity pass.
std::vector<std::string> quantizable_nodes(const engine::Graph& graph);

// Quantises `fp32` with the activation histograms `hist` (calibrate(), by
// tensor index). Throws engine::GraphError naming the node or tensor when the
// graph cannot be quantised (a keep_float or fc_layers name that is no node).
QuantizedGraph quantize_graph(const engine::Graph& fp32, const std::vector<Histogram>& hist,
                              const QuantizeOptions& options);

}  // namespace huddle::quantize
