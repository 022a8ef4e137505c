// What the fp32 (conv.cc) and int8 (qconv.cc) forms of Conv2D and
// FullyConnected share: attribute and shape checks, and their int8 prepare
// steps, which conv.cc calls when input 0 is i8.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include "engine/op.h"
#include "engine/ops/common.h"
#include "kernels/f32/f32.h"

namespace huddle::engine::ops {

// The geometry of a Conv2D node on input X [N, H, W, C] and OHWI weights W:
// strides, dilations, pads from the attributes; in_c / out_c per group (pixel
// strides left 0). Sets *group; sets output 0 to [N, OH, OW, O] of `dtype`.
// Fails naming the problem when the weights, group or kernel do not fit.
kernels::F32ConvShape conv_geometry(PrepareContext& ctx, const Tensor& x, const Tensor& w, DType dtype,
                                    int64_t* group);

// Checks FullyConnected's X [..., K] against W [O, K] and sets output 0 to [..., O] of `dtype`.
void fully_connected_output(PrepareContext& ctx, const Tensor& x, const Tensor& w, DType dtype);

// The optional constant bias of `outputs` floats (input `input`); nullptr when absent.
// The fp32 weights of constant input 1 (of rank `rank`): as stored when f32;
// when f16 (`huddle quantize --float-weights f16`), converted into `converted`.
const float* float_weights(const PrepareContext& ctx, int rank, std::vector<float>& converted);

const float* optional_bias(const PrepareContext& ctx, int64_t outputs, size_t input = 2);

// Output channels per task when `channels` are split over `threads` in whole
// granules (a kernel tile's width, so every task runs full tiles but the last).
size_t column_chunk(size_t channels, size_t granule, size_t threads);

// Calls fn(n0, n1) for ranges of whole `granule`-wide column tiles covering
// [0, n) of an m x n x k matrix product, split over the pool's threads (one
// range below 2 * kMinParallelMacs multiply-adds).
template <class Fn>
void for_column_ranges(const RunContext& ctx, size_t m, size_t n, size_t k, size_t granule, Fn&& fn) {
  const size_t threads = m * n * k < 2 * kMinParallelMacs ? 1 : ctx.pool->threads();
  const size_t chunk = column_chunk(n, granule, threads);
  ctx.pool->parallel_for((n + chunk - 1) / chunk, 1, [&](size_t begin, size_t end) {
    for (size_t t = begin; t < end; ++t) fn(t * chunk, std::min(t * chunk + chunk, n));
  });
}

// The int8 forms (engine/INT8.md), given the geometry conv_geometry made.
std::unique_ptr<OpKernel> prepare_qconv(PrepareContext& ctx, const kernels::F32ConvShape& shape,
                                        int64_t group);
std::unique_ptr<OpKernel> prepare_qfully_connected(PrepareContext& ctx);

}  // namespace huddle::engine::ops
