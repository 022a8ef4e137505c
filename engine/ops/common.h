// Helpers the op files share.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "engine/op.h"
#include "kernels/elementwise/elementwise.h"
#include "kernels/f32/f32.h"

namespace huddle::engine::ops {

// The fused activation of a node: attribute "activation" = "none" (default),
// "relu", "relu6" or "clip" (with "clip_min" / "clip_max").
kernels::F32Clamp activation_clamp(const PrepareContext& ctx);

// An integer-list attribute of `count` values each >= `min`, or `fallback`.
std::vector<int64_t> ints_attr(const PrepareContext& ctx, const char* name, size_t count, int64_t min,
                               std::vector<int64_t> fallback);

// int8 forms (engine/INT8.md): an op runs its int8 form when input 0 is i8.
inline bool int8_form(const PrepareContext& ctx) {
  return ctx.has_input(0) && ctx.input(0).dtype == DType::i8;
}

// The per-tensor quantisation of input i (i8), or fails naming the input.
kernels::QuantParams input_quant(const PrepareContext& ctx, size_t i);
// The per-tensor quantisation the producer gave output i, or fails naming the output.
kernels::QuantParams output_quant(const PrepareContext& ctx, size_t i);
// Fails unless every output is quantised as input 0 (ops that move bytes or keep the input's quantisation).
void require_quant_kept(const PrepareContext& ctx);
// Fails "<op> has no int8 form" when input 0 is i8 (`what` says which form, e.g. "mode 'linear'").
void require_float_form(const PrepareContext& ctx, const std::string& what = {});

// The kernel K<float> for f32 elements, K<int8_t> for i8 (ops that move
// elements without looking at them are written once, for any element type).
template <template <class> class K, class... Args>
std::unique_ptr<OpKernel> make_for_element(DType dtype, Args&&... args) {
  if (dtype == DType::i8) return std::make_unique<K<int8_t>>(std::forward<Args>(args)...);
  return std::make_unique<K<float>>(std::forward<Args>(args)...);
}

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
