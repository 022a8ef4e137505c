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

// Work (floats written, or multiply-adds) below which a chunk of an op is
// not worth waking a thread for.
constexpr size_t kMinParallelWork = 16384;

// Items per parallel_for chunk when `items` are split over `threads`: about
// four chunks per thread (so a thread slowed by other work on the machine is
// made up for by the others), a multiple of `align`, and at least
// `min_chunk` (below that, waking a thread costs more than it saves).
size_t chunk_items(size_t items, size_t threads, size_t align = 1, size_t min_chunk = 1);

}  // namespace huddle::engine::ops
