// Helpers the op files share.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/op.h"
#include "kernels/f32/f32.h"

namespace huddle::engine::ops {

// The fused activation of a node: attribute "activation" = "none" (default),
// "relu", "relu6" or "clip" (with "clip_min" / "clip_max").
kernels::F32Clamp activation_clamp(const PrepareContext& ctx);

// An integer-list attribute of `count` values each >= `min`, or `fallback`.
std::vector<int64_t> ints_attr(const PrepareContext& ctx, const char* name, size_t count, int64_t min,
                               std::vector<int64_t> fallback);

// Work per chunk below which an op is not worth splitting: waking a sleeping
// worker costs tens of microseconds, about what a core takes for this many
// floats written (elementwise, pooling, data movement) or multiply-adds
// (convolutions).
constexpr size_t kMinParallelFloats = size_t{1} << 17;
constexpr size_t kMinParallelMacs = size_t{1} << 21;

// Items per parallel_for chunk when `items` are split over `threads`: about
// four chunks per thread (so a thread slowed by other work on the machine is
// made up for by the others), a multiple of `align`, and at least
// `min_chunk` (below that, waking a thread costs more than it saves).
size_t chunk_items(size_t items, size_t threads, size_t align = 1, size_t min_chunk = 1);

}  // namespace huddle::engine::ops
