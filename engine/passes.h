// Graph passes run once when a model is loaded or converted: fuse activations
// into the op before them, cancel and simplify the Transposes a layout-changing
// importer inserts, drop no-op nodes, fold constants and remove what nothing
// uses. Every pass keeps the nodes in execution order, keeps the graph's
// inputs and outputs (positions, names, shapes, dtypes) and its output values:
// bit for bit where the arithmetic is unchanged; a fused activation compares
// equal for every value but NaN.
#pragma once

#include <cstddef>
#include <string>

#include "engine/graph.h"

namespace huddle::engine {

struct PassReport {
  size_t fused_activations = 0;
  size_t fused_silu = 0;              // Mul(x, Sigmoid(x)) pairs made one Silu
  size_t fused_hard = 0;              // relu6(x + 3) / 6 made HardSigmoid, x * that HardSwish
  size_t merged_transposes = 0;       // Transpose pairs composed into one
  size_t transposes_to_reshapes = 0;  // Transposes that moved only size-1 dims
  size_t moved_transposes = 0;        // Transposes sunk below another op
  size_t removed_noops = 0;
  size_t folded_constants = 0;
  size_t removed_dead = 0;
  size_t dropped_tensors = 0;
  size_t nodes_before = 0, nodes_after = 0;
  size_t transposes_before = 0, transposes_after = 0;
  size_t rounds = 0;
  // "fused 35 activations, removed 12 of 14 transposes, folded 4 constants, ..."
  std::string text() const;
};

// Runs every pass below until none changes the graph, then drops unused
// tensors. What a pass cannot see (a node that does not prepare, so its
// outputs' shapes are unknown) it leaves for the Interpreter to report; an
// attribute of the wrong type throws GraphError naming the node.
PassReport optimize(Graph& graph);

// Relu and Clip into a Conv2D or FullyConnected whose output only they read
// (and is no graph output), combined with its own activation. Returns the count.
size_t fuse_activations(Graph& graph);
// Mul(x, Sigmoid(x)) (either operand order), the Sigmoid's output read only
// by the Mul, becomes one Silu node: the same bits (Silu computes x *
// sigmoid(x) with the same sigmoid), except that below -104, where the exact
// value underflows, Silu gives 0. Returns the count.
size_t fuse_silu(Graph& graph);
// The hard activations as TensorFlow graphs spell them, each intermediate
// read only once: relu6(x + 3) * (1/6) (Add, Clip [0, 6], Mul by a scalar
// constant within 0.1 % of 1/6 and 3: float16-stored weights round them) becomes HardSigmoid(x) (alpha 1/6, beta 0.5), and x times that
// (as (x * 1/6) * relu6(x + 3) or (x * relu6(x + 3)) * 1/6) HardSwish(x):
// equal in exact arithmetic, within float rounding otherwise. Returns the count.
size_t fuse_hard_activations(Graph& graph);
// A Transpose of a Transpose becomes one Transpose of the first one's input.
size_t compose_transposes(Graph& graph);
// A Transpose that moves only size-1 dims (memory order unchanged) becomes a Reshape.
size_t transposes_to_reshapes(Graph& graph);
// Moves Transposes down so they meet their inverse and cancel: below an
// elementwise unary op, a Pad or a Slice reading only it (axes renamed); below
// a Split whose outputs only Transposes read (one per output); and Transposes
// of one perm feeding a Concat or a binary elementwise op (any other input a
// constant) become one after it.
size_t sink_transposes(Graph& graph);
// Removes Reshapes, Slices, Pads, Concats and Splits whose output equals their
// input, and identity Transposes; a Reshape of a Reshape reads the first's input.
size_t remove_noops(Graph& graph);
// Runs each node whose inputs are all constants once (no graph outputs) and
// makes its outputs constants the graph owns.
size_t fold_constants(Graph& graph);
// Removes nodes none of whose outputs is read or a graph output.
size_t remove_dead_nodes(Graph& graph);
// Drops tensors nothing refers to (graph inputs stay), renumbering the rest
// in their order (the only pass that renumbers), and frees owned constant
// data no tensor points to any more.
size_t drop_unused_tensors(Graph& graph);

}  // namespace huddle::engine
