// The int8 forms of Conv2D and FullyConnected (engine/INT8.md), chosen by
// conv.cc when X is i8:
//   X i8 (per tensor), W i8 constant (OHWI / [O, K], values in [-127, 127],
//   zero points 0, a scale per output channel or one), B i32 constant
//   (optional, scale x_scale * w_scale[o]), Y i8 (per tensor, its quantisation
//   given by the graph).
// Each output is, bit for bit (the kernels' rule, kernels/gemm/gemm.h),
//   acc = B[o] + sum (x - x_zp) * w           (int32; padding reads x_zp)
//   y   = clamp(round_half_even(acc * scale[o]), min - y_zp, max - y_zp) + y_zp
// with scale[o] = float(double(x_scale) * w_scale[o] / y_scale) and min / max
// the activation mapped into Y's domain (quant.h's quantized_clamp). Weights
// holding -128 are refused.
//
// Conv2D: depthwise 3x3 / 5x5, equal strides 1 or 2, dilation 1 and pads
// below the kernel run on kernels/dwconv, output rows split over threads;
// everything else (group 1, grouped, other depthwise shapes) as one QConv
// (kernels/conv) per group on channel slices, output pixels split over
// threads. FullyConnected runs on kernels/gemm, column ranges of whole tiles
// split over threads. The sums are exact, so any split gives the same bits.
#include <algorithm>
#include <vector>

#include "engine/ops/common.h"
#include "engine/ops/conv.h"
#include "engine/ops/quant.h"
#include "kernels/conv/conv.h"
#include "kernels/dwconv/dwconv.h"

namespace huddle::engine::ops {
namespace {

using kernels::ConvShape;
using kernels::F32ConvShape;
using kernels::QConv;
using kernels::QDwConvShape;
using kernels::QGemmOutput;

class QGroupedConv final : public OpKernel {
 public:
  QGroupedConv(std::vector<QConv> groups, size_t batch, size_t in_image, size_t out_image, QGemmOutput out)
      : groups_(std::move(groups)), batch_(batch), in_image_(in_image), out_image_(out_image), out_(out) {}

  // Tasks are (image, group, range of whole pixel tiles).
  void run(const RunContext& ctx) const override {
    const int8_t* x = ctx.in<int8_t>(0);
    int8_t* y = ctx.out<int8_t>(0);
    const QConv& first = groups_[0];
    const ConvShape& s = first.shape();
    const size_t pixels = first.out_pixels(), groups = groups_.size();
    const size_t pixel_macs = s.out_c * s.kernel_h * s.kernel_w * s.in_c;
    const size_t chunk =
        chunk_items(pixels, ctx.pool->threads(), first.pixel_granule(), kMinParallelMacs / pixel_macs + 1);
    const size_t per_group = (pixels + chunk - 1) / chunk, per_image = groups * per_group;
    ctx.pool->parallel_for(batch_ * per_image, 1, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        const size_t b = t / per_image, g = t / per_group % groups, p0 = t % per_group * chunk;
        groups_[g].run_pixels(p0, std::min(p0 + chunk, pixels), x + b * in_image_ + g * s.in_c,
                              y + b * out_image_ + g * s.out_c, out_);
      }
    });
  }

 private:
  std::vector<QConv> groups_;
  size_t batch_, in_image_, out_image_;
  QGemmOutput out_;
};

class QDepthwiseConv final : public OpKernel {
 public:
  // weights: [ky][kx][c].
  QDepthwiseConv(const QDwConvShape& s, size_t batch, const int8_t* weights, const int32_t* bias,
                 const std::vector<float>& scales, int32_t in_zero_point, QGemmOutput out)
      : uk_(&kernels::dwconv()), s_(s), batch_(batch), out_(out) {
    packed_.resize(kernels::dwconv_packed_size(*uk_, s.kernel, s.channels));
    kernels::dwconv_pack(*uk_, s.kernel, s.channels, weights, bias, scales.data(), in_zero_point,
                         packed_.data());
  }

  // Tasks are (image, band of output rows).
  void run(const RunContext& ctx) const override {
    const int8_t* x = ctx.in<int8_t>(0);
    int8_t* y = ctx.out<int8_t>(0);
    const size_t rows = kernels::dwconv_out_h(s_), out_w = kernels::dwconv_out_w(s_);
    const size_t row_macs = out_w * s_.channels * s_.kernel * s_.kernel;
    const size_t chunk = chunk_items(rows, ctx.pool->threads(), 1, kMinParallelMacs / row_macs + 1);
    const size_t bands = (rows + chunk - 1) / chunk;
    const size_t in_image = s_.in_h * s_.in_w * s_.in_stride, out_image = rows * out_w * s_.out_stride;
    ctx.pool->parallel_for(batch_ * bands, 1, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        const size_t b = t / bands, r0 = t % bands * chunk;
        run_rows(r0, std::min(r0 + chunk, rows), x + b * in_image, y + b * out_image);
      }
    });
  }

 private:
  // Output rows [r0, r1) of one image: the kernel runs on the input rows
  // their windows cover, with the padding rows those windows reach.
  void run_rows(size_t r0, size_t r1, const int8_t* x, int8_t* y) const {
    QDwConvShape band = s_;
    const ptrdiff_t first = static_cast<ptrdiff_t>(r0 * s_.stride) - s_.pad_top;
    const ptrdiff_t last =
        static_cast<ptrdiff_t>((r1 - 1) * s_.stride + s_.kernel) - s_.pad_top;  // exclusive
    const ptrdiff_t lo = std::max<ptrdiff_t>(first, 0), hi = std::min<ptrdiff_t>(last, s_.in_h);
    band.in_h = static_cast<size_t>(hi - lo);
    band.pad_top = static_cast<uint32_t>(lo - first);
    band.pad_bottom = static_cast<uint32_t>(last - hi);
    uk_->run(band, x + static_cast<size_t>(lo) * s_.in_w * s_.in_stride, packed_.data(),
             y + r0 * kernels::dwconv_out_w(s_) * s_.out_stride, out_);
  }

  const kernels::QDwConvUkernel* uk_;
  QDwConvShape s_;
  size_t batch_;
  std::vector<uint8_t> packed_;
  QGemmOutput out_;
};

// True when kernels/dwconv runs this depthwise convolution (its pads below
// the kernel keep every band of output rows reading at least one input row).
bool dwconv_fits(const F32ConvShape& s) {
  const size_t k = s.kernel_h;
  return s.kernel_w == k && (k == 3 || k == 5) && s.stride_h == s.stride_w && s.stride_h <= 2 &&
         s.dilation_h == 1 && s.dilation_w == 1 && s.pad_top < k && s.pad_left < k && s.pad_bottom < k &&
         s.pad_right < k;
}

std::unique_ptr<OpKernel> depthwise(const F32ConvShape& s, const int8_t* w, const int32_t* bias,
                                    const std::vector<float>& scales, int32_t in_zp, QGemmOutput out) {
  const size_t channels = scales.size(), taps = s.kernel_h * s.kernel_w;
  std::vector<int8_t> dw(taps * channels);  // OHWI [C, KH, KW, 1] -> [KH][KW][C]
  for (size_t ch = 0; ch < channels; ++ch)
    for (size_t k = 0; k < taps; ++k) dw[k * channels + ch] = w[ch * taps + k];
  QDwConvShape d;
  d.in_h = s.in_h, d.in_w = s.in_w, d.channels = channels;
  d.kernel = static_cast<uint32_t>(s.kernel_h), d.stride = static_cast<uint32_t>(s.stride_h);
  d.pad_top = static_cast<uint32_t>(s.pad_top), d.pad_left = static_cast<uint32_t>(s.pad_left);
  d.pad_bottom = static_cast<uint32_t>(s.pad_bottom), d.pad_right = static_cast<uint32_t>(s.pad_right);
  d.in_stride = d.out_stride = channels;
  return std::make_unique<QDepthwiseConv>(d, s.batch, dw.data(), bias, scales, in_zp, out);
}

class QFullyConnected final : public OpKernel {
 public:
  QFullyConnected(size_t m, size_t n, size_t k, std::vector<uint8_t> packed, QGemmOutput out)
      : m_(m), n_(n), k_(k), packed_(std::move(packed)), out_(out) {}

  void run(const RunContext& ctx) const override {
    const auto& uk = kernels::qgemm();
    const int8_t* x = ctx.in<int8_t>(0);
    int8_t* y = ctx.out<int8_t>(0);
    for_column_ranges(ctx, m_, n_, k_, uk.nr, [&](size_t n0, size_t n1) {
      uk.gemm(m_, n1 - n0, k_, x, k_, kernels::qgemm_packed_at(uk, packed_.data(), k_, n0), y + n0, n_, out_);
    });
  }

 private:
  size_t m_, n_, k_;
  std::vector<uint8_t> packed_;
  QGemmOutput out_;
};

// What both ops read: X's and Y's quantisation, W's requantisation scales and
// the bias, for `outputs` output channels.
struct Int8Params {
  TensorQuant x;
  std::vector<float> scales;
  const int32_t* bias;
  QGemmOutput out;
};

Int8Params int8_params(const PrepareContext& ctx, int64_t outputs) {
  Int8Params p;
  p.x = activation_quant(ctx, ctx.input(0), "input 0");
  const TensorQuant y = activation_quant(ctx, ctx.output(0), "output 0");
  const std::vector<float> w_scales = int8_weight_scales(ctx, ctx.input(1), outputs);
  p.bias = int8_bias(ctx, p.x.scale, w_scales);
  p.scales = requant_scales(p.x.scale, w_scales, y.scale);
  p.out = quantized_clamp(ctx, y);
  return p;
}

}  // namespace

std::unique_ptr<OpKernel> prepare_qconv(PrepareContext& ctx, const F32ConvShape& s, int64_t group) {
  const Tensor& x = ctx.input(0);
  const int64_t c = x.shape[3], o = ctx.input(1).shape[0];
  if (s.in_h == 0 || s.in_w == 0 || c == 0 || o == 0)
    ctx.fail("input " + shape_text(x.shape) + " or weights " + shape_text(ctx.input(1).shape) + " are empty");
  const Int8Params p = int8_params(ctx, o);
  const int8_t* w = ctx.input(1).values<int8_t>().data();
  if (group > 1 && group == c && o == c && dwconv_fits(s))
    return depthwise(s, w, p.bias, p.scales, p.x.zero_point, p.out);
  ConvShape cs;
  cs.in_h = s.in_h, cs.in_w = s.in_w, cs.in_c = s.in_c, cs.out_c = s.out_c;
  cs.kernel_h = s.kernel_h, cs.kernel_w = s.kernel_w, cs.stride_h = s.stride_h, cs.stride_w = s.stride_w;
  cs.dilation_h = s.dilation_h, cs.dilation_w = s.dilation_w;
  cs.pad_top = s.pad_top, cs.pad_left = s.pad_left, cs.pad_bottom = s.pad_bottom, cs.pad_right = s.pad_right;
  cs.in_pixel_stride = static_cast<size_t>(c), cs.out_pixel_stride = static_cast<size_t>(o);
  std::vector<QConv> groups;
  for (size_t g = 0; g < static_cast<size_t>(group); ++g) {
    const size_t o0 = g * s.out_c;
    groups.emplace_back(kernels::qgemm(), cs, w + o0 * s.k(), p.bias ? p.bias + o0 : nullptr,
                        p.scales.data() + o0, p.x.zero_point);
  }
  return std::make_unique<QGroupedConv>(std::move(groups), s.batch, s.in_h * s.in_w * static_cast<size_t>(c),
                                        s.out_h() * s.out_w() * static_cast<size_t>(o), p.out);
}

std::unique_ptr<OpKernel> prepare_qfully_connected(PrepareContext& ctx) {
  const Tensor& x = ctx.input(0);
  const Tensor& w = ctx.require_constant(1, DType::i8, 2);
  fully_connected_output(ctx, x, w, DType::i8);
  const int64_t k = x.shape.back(), o = w.shape[0];
  const Int8Params p = int8_params(ctx, o);
  const auto& uk = kernels::qgemm();
  std::vector<uint8_t> packed(kernels::qgemm_packed_size(uk, static_cast<size_t>(o), static_cast<size_t>(k)));
  kernels::qgemm_pack(uk, static_cast<size_t>(o), static_cast<size_t>(k), w.values<int8_t>().data(), p.bias,
                      p.scales.data(), p.x.zero_point, packed.data());
  return std::make_unique<QFullyConnected>(static_cast<size_t>(elements(x.shape) / (k ? k : 1)),
                                           static_cast<size_t>(o), static_cast<size_t>(k), std::move(packed),
                                           p.out);
}

}  // namespace huddle::engine::ops
