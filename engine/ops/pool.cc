// Windowed pooling (fp32, NHWC).
//   MaxPool2D, AveragePool2D: X [N, H, W, C] -> Y [N, OH, OW, C]
//   attrs:   kernel [kh, kw] (required), strides [sh, sw] = kernel,
//            pads [top, left, bottom, right] = [0, 0, 0, 0],
//            AveragePool2D only: count_include_pad = 0 (ONNX semantics)
//   OH = (H + top + bottom - kh) / sh + 1 (floor), likewise OW.
// The window of output (oy, ox) covers input rows oy * sh - top .. + kh - 1 and
// columns ox * sw - left .. + kw - 1; cells outside the input are padding.
// MaxPool2D ignores padded cells (the max of the window's input cells).
// AveragePool2D sums the window's input cells and divides by the number of
// input cells (count_include_pad = 0) or by kh * kw (count_include_pad = 1:
// padded cells count as zeros). There is no ceil_mode: the importer turns it
// into extra bottom/right padding (so with count_include_pad = 1 those extra
// cells count too, where ONNX counts only the declared pads). A window that
// lies entirely in the padding is an error.
//
// int8 forms (engine/INT8.md), on kernels/elementwise/pool.h: MaxPool2D keeps
// X's quantisation (Y must be quantised alike); AveragePool2D requantises the
// average to Y's. Output rows are split over threads as for fp32.
#include <algorithm>
#include <limits>

#include "engine/ops/common.h"
#include "kernels/elementwise/pool.h"

namespace huddle::engine::ops {
namespace {

struct PoolGeometry {
  size_t n, h, w, c, kh, kw, sh, sw, top, left, oh, ow;
};

// fn(begin, end) over ranges of g's output rows (over the batch), split between threads.
template <class Fn>
void split_output_rows(const RunContext& ctx, const PoolGeometry& g, const Fn& fn) {
  if (g.c == 0) return;
  const size_t rows = g.n * g.oh, min_rows = kMinParallelFloats / (g.ow * g.c * g.kh * g.kw) + 1;
  ctx.pool->parallel_for(rows, chunk_items(rows, ctx.pool->threads(), 1, min_rows),
                         [&](size_t begin, size_t end) { fn(begin, end); });
}

template <bool kMax>
class Pool final : public OpKernel {
 public:
  Pool(const PoolGeometry& g, bool count_include_pad) : g_(g), include_pad_(count_include_pad) {}

  // Output rows (over the batch) are split between threads; each output is
  // formed the same way whatever the split.
  void run(const RunContext& ctx) const override {
    const float* x = ctx.in<float>(0);
    float* y = ctx.out<float>(0);
    split_output_rows(ctx, g_, [&](size_t begin, size_t end) {
      for (size_t r = begin; r < end; ++r) run_row(x, y, r / g_.oh, r % g_.oh);
    });
  }

 private:
  void run_row(const float* x, float* y, size_t b, size_t oy) const {
    const PoolGeometry& g = g_;
    const float* xb = x + b * g.h * g.w * g.c;
    // Window rows [y0, y1) in padded coordinates, clipped to the input.
    const size_t py = oy * g.sh;
    const size_t y0 = std::max(py, g.top) - g.top, y1 = std::min(py + g.kh, g.top + g.h) - g.top;
    for (size_t ox = 0; ox < g.ow; ++ox) {
      const size_t px = ox * g.sw;
      const size_t x0 = std::max(px, g.left) - g.left, x1 = std::min(px + g.kw, g.left + g.w) - g.left;
      float* out = y + ((b * g.oh + oy) * g.ow + ox) * g.c;
      const float init = kMax ? -std::numeric_limits<float>::infinity() : 0.0f;
      std::fill(out, out + g.c, init);
      for (size_t iy = y0; iy < y1; ++iy)
        for (size_t ix = x0; ix < x1; ++ix) {
          const float* in = xb + (iy * g.w + ix) * g.c;
          if constexpr (kMax) {
            for (size_t ch = 0; ch < g.c; ++ch) out[ch] = std::max(out[ch], in[ch]);
          } else {
            for (size_t ch = 0; ch < g.c; ++ch) out[ch] += in[ch];
          }
        }
      if constexpr (!kMax) {
        const size_t count = include_pad_ ? g.kh * g.kw : (y1 - y0) * (x1 - x0);
        const float inv = 1.0f / static_cast<float>(count);
        for (size_t ch = 0; ch < g.c; ++ch) out[ch] *= inv;
      }
    }
  }

  PoolGeometry g_;
  bool include_pad_;
};

// The int8 pooling of geometry g: output rows (over the batch) are split
// between threads, each range one kernel call on the input rows its windows
// read, so every output is formed the same way whatever the split.
template <bool kMax>
class QPool final : public OpKernel {
 public:
  QPool(const PoolGeometry& g, const kernels::QAvgPoolParams& p) : g_(g), p_(p) {}

  void run(const RunContext& ctx) const override {
    const int8_t* x = ctx.in<int8_t>(0);
    int8_t* y = ctx.out<int8_t>(0);
    split_output_rows(ctx, g_, [&](size_t begin, size_t end) {
      while (begin < end) {  // one call per image
        const size_t b = begin / g_.oh, oy0 = begin % g_.oh;
        const size_t oy1 = std::min(g_.oh, oy0 + (end - begin));
        run_rows(x + b * g_.h * g_.w * g_.c, y + begin * g_.ow * g_.c, oy0, oy1);
        begin += oy1 - oy0;
      }
    });
  }

 private:
  // Output rows [oy0, oy1) of the image at `image` into `out`: the kernel sees
  // the input from the first row these windows can read (or the top padding).
  void run_rows(const int8_t* image, int8_t* out, size_t oy0, size_t oy1) const {
    const size_t start = oy0 * g_.sh;  // in padded coordinates
    const size_t skip = start > g_.top ? start - g_.top : 0;
    kernels::QPoolShape s;
    s.batch = 1, s.in_h = g_.h - skip, s.in_w = g_.w, s.channels = g_.c;
    s.kernel_h = g_.kh, s.kernel_w = g_.kw, s.stride_h = g_.sh, s.stride_w = g_.sw;
    s.pad_top = g_.top + skip - start, s.pad_left = g_.left;
    s.out_h = oy1 - oy0, s.out_w = g_.ow;
    const kernels::QPoolUkernel& uk = kernels::qs8_pool();
    if constexpr (kMax)
      uk.maxpool(s, image + skip * g_.w * g_.c, out, -128, 127);
    else
      uk.avgpool(s, image + skip * g_.w * g_.c, out, p_);
  }

  PoolGeometry g_;
  kernels::QAvgPoolParams p_;
};

// The int8 form of prepare_pool.
template <bool kMax>
std::unique_ptr<OpKernel> make_qpool(PrepareContext& ctx, const PoolGeometry& g, bool include_pad) {
  if (kMax) {
    require_quant_kept(ctx);
    return std::make_unique<QPool<kMax>>(g, kernels::QAvgPoolParams{});
  }
  return std::make_unique<QPool<kMax>>(
      g, kernels::qs8_avgpool_params(input_quant(ctx, 0), output_quant(ctx, 0), include_pad));
}

template <bool kMax>
std::unique_ptr<OpKernel> prepare_pool(PrepareContext& ctx) {
  const DType dtype = int8_form(ctx) ? DType::i8 : DType::f32;
  const Tensor& x = ctx.require_input(0, dtype, 4);
  if (!ctx.node().has_attr("kernel")) ctx.fail("attribute 'kernel' is missing");
  const auto kernel = ints_attr(ctx, "kernel", 2, 1, {});
  const auto strides = ints_attr(ctx, "strides", 2, 1, kernel);
  const auto pads = ints_attr(ctx, "pads", 4, 0, {0, 0, 0, 0});
  bool include_pad = false;
  if (!kMax) {
    const int64_t cip = ctx.node().attr_int("count_include_pad", 0);
    if (cip != 0 && cip != 1)
      ctx.fail("attribute 'count_include_pad' has " + std::to_string(cip) + ", not 0 or 1");
    include_pad = cip == 1;
  }
  const int64_t h = x.shape[1], w = x.shape[2];
  const int64_t span_h = h + pads[0] + pads[2], span_w = w + pads[1] + pads[3];
  if (span_h < kernel[0] || span_w < kernel[1])
    ctx.fail("attribute 'kernel' " + shape_text(kernel) + " is larger than the padded input " +
             shape_text(x.shape) + " with pads " + shape_text(pads));
  const int64_t oh = (span_h - kernel[0]) / strides[0] + 1, ow = (span_w - kernel[1]) / strides[1] + 1;
  // Every window must hold an input cell: the first one ends below the top
  // padding and the last one starts above the bottom padding (likewise columns).
  if (pads[0] >= kernel[0] || pads[1] >= kernel[1] || (oh - 1) * strides[0] >= h + pads[0] ||
      (ow - 1) * strides[1] >= w + pads[1])
    ctx.fail("attribute 'pads' " + shape_text(pads) + " leaves a window with no input cell (kernel " +
             shape_text(kernel) + ", strides " + shape_text(strides) + ", input " + shape_text(x.shape) +
             ")");
  ctx.set_output(0, dtype, {x.shape[0], oh, ow, x.shape[3]});
  PoolGeometry g;
  g.n = static_cast<size_t>(x.shape[0]), g.h = static_cast<size_t>(h), g.w = static_cast<size_t>(w);
  g.c = static_cast<size_t>(x.shape[3]);
  g.kh = static_cast<size_t>(kernel[0]), g.kw = static_cast<size_t>(kernel[1]);
  g.sh = static_cast<size_t>(strides[0]), g.sw = static_cast<size_t>(strides[1]);
  g.top = static_cast<size_t>(pads[0]), g.left = static_cast<size_t>(pads[1]);
  g.oh = static_cast<size_t>(oh), g.ow = static_cast<size_t>(ow);
  if (dtype == DType::i8) return make_qpool<kMax>(ctx, g, include_pad);
  return std::make_unique<Pool<kMax>>(g, include_pad);
}

}  // namespace

extern const OpDef kMaxPool2D = {"MaxPool2D", 1, 1, 1, false, prepare_pool<true>};
extern const OpDef kAveragePool2D = {"AveragePool2D", 1, 1, 1, false, prepare_pool<false>};

}  // namespace huddle::engine::ops
