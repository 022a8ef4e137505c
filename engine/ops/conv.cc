// Conv2D (NHWC; fp32 here, int8 in qconv.cc when X is i8).
//   inputs:  X [N, H, W, C], W [O, KH, KW, C / group] (constant, OHWI; f32, or
//            f16 converted when prepared), B [O] (constant, optional)
//   attrs:   strides [sh, sw] = [1, 1], dilations [dh, dw] = [1, 1],
//            pads [top, left, bottom, right] = [0, 0, 0, 0], group = 1, activation (see common.h)
//   output:  Y [N, OH, OW, O]
// group 1 runs on the fp32 GEMM kernels (indirect, no im2col), its output
// pixels split over threads (or its channels, when the pixels are few); group == C == O
// (depthwise) on the fp32 depthwise kernels; other groups as one GEMM
// convolution per group on channel slices.
#include <algorithm>
#include <vector>

#include "engine/ops/common.h"
#include "engine/ops/conv.h"
#include "kernels/codebook/codebook.h"
#include "kernels/f32dw/f32dw.h"

namespace huddle::engine::ops {
namespace {

using kernels::F32Clamp;
using kernels::F32Conv;
using kernels::F32ConvShape;

class GroupedConv final : public OpKernel {
 public:
  GroupedConv(std::vector<F32Conv> groups, size_t in_group_c, size_t out_group_c, F32Clamp clamp)
      : groups_(std::move(groups)), in_c_(in_group_c), out_c_(out_group_c), clamp_(clamp) {}
  // One group with enough output pixels splits pixels (whole row tiles) over
  // the threads, else every (group, channel range) pair is one task. Either
  // split keeps each output's sum in the same order, so any thread count
  // gives the same bits.
  void run(const RunContext& ctx) const override {
    const float* x = ctx.in<float>(0);
    float* y = ctx.out<float>(0);
    const size_t threads = ctx.pool->threads();
    const F32Conv& conv = groups_[0];
    const F32ConvShape& s = conv.shape();
    const size_t pixels = s.batch * s.out_h() * s.out_w(), mr = conv.ukernel().mr;
    if (threads > 1 && groups_.size() == 1 && pixels >= 4 * threads * mr) {
      const size_t min_pixels = kMinParallelMacs / (out_c_ * s.k()) + 1;
      ctx.pool->parallel_for(pixels, chunk_items(pixels, threads, mr, min_pixels),
                             [&](size_t begin, size_t end) { conv.run_pixels(begin, end, x, y, clamp_); });
      return;
    }
    // Small convolutions (the 1x1 ones of squeeze-and-excitation blocks) stay on one thread.
    const bool small = groups_.size() * pixels * out_c_ * s.k() < 2 * kMinParallelMacs;
    const size_t chunk = column_chunk(out_c_, conv.column_granule(), small ? 1 : threads);
    const size_t per_group = (out_c_ + chunk - 1) / chunk;
    ctx.pool->parallel_for(groups_.size() * per_group, 1, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        const size_t g = t / per_group, n0 = t % per_group * chunk;
        groups_[g].run_columns(n0, n0 + chunk, x + g * in_c_, y + g * out_c_, clamp_);
      }
    });
  }

 private:
  std::vector<F32Conv> groups_;
  size_t in_c_, out_c_;
  F32Clamp clamp_;
};

class DepthwiseConv final : public OpKernel {
 public:
  DepthwiseConv(const F32ConvShape& s, const float* weights, const float* bias, F32Clamp clamp)
      : uk_(&kernels::f32dw()), s_(s), clamp_(clamp) {
    packed_.resize(kernels::f32dw_packed_size(s_) / sizeof(float));
    kernels::f32dw_pack(s_, weights, bias, packed_.data());
  }

  // Output rows (over the batch) are split between threads; each output is
  // formed the same way whatever the split, so any thread count gives the same bits.
  void run(const RunContext& ctx) const override {
    const float* x = ctx.in<float>(0);
    float* y = ctx.out<float>(0);
    const size_t rows = s_.batch * s_.out_h();
    const size_t row_macs = s_.out_w() * s_.in_c * s_.kernel_h * s_.kernel_w;
    const size_t min_rows = kMinParallelMacs / row_macs + 1;
    ctx.pool->parallel_for(
        rows, chunk_items(rows, ctx.pool->threads(), 1, min_rows),
        [&](size_t begin, size_t end) { uk_->run(s_, begin, end, x, packed_.data(), y, clamp_); });
  }

 private:
  const kernels::F32DwUkernel* uk_;
  F32ConvShape s_;
  std::vector<float> packed_;
  F32Clamp clamp_;
};

std::unique_ptr<OpKernel> prepare_conv(PrepareContext& ctx) {
  int64_t group = 1;
  if (ctx.input(0).dtype == DType::i8) {
    const F32ConvShape s =
        conv_geometry(ctx, ctx.input(0), ctx.require_constant(1, DType::i8, 4), DType::i8, &group);
    return prepare_qconv(ctx, s, group);
  }
  const Tensor& x = ctx.require_input(0, DType::f32, 4);
  std::vector<float> converted;
  const float* wdata = float_weights(ctx, 4, converted);
  const Tensor& w = ctx.input(1);
  const F32Clamp clamp = activation_clamp(ctx);
  F32ConvShape s = conv_geometry(ctx, x, w, DType::f32, &group);
  const int64_t o = w.shape[0], kh = w.shape[1], kw = w.shape[2], c = x.shape[3];
  const float* bias = optional_bias(ctx, o);

  if (group > 1 && group == c && o == c) {  // depthwise: OHWI [C, KH, KW, 1] -> [KH][KW][C]
    std::vector<float> dw(static_cast<size_t>(kh * kw * c));
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t k = 0; k < kh * kw; ++k) dw[static_cast<size_t>(k * c + ch)] = wdata[ch * kh * kw + k];
    s.in_c = s.out_c = static_cast<size_t>(c);
    return std::make_unique<DepthwiseConv>(s, dw.data(), bias, clamp);
  }
  s.in_pixel_stride = static_cast<size_t>(c);
  s.out_pixel_stride = static_cast<size_t>(o);
  std::vector<F32Conv> groups;
  const size_t group_weights = s.out_c * s.k();
  for (int64_t g = 0; g < group; ++g)
    groups.emplace_back(kernels::f32gemm(), s, wdata + static_cast<size_t>(g) * group_weights,
                        bias ? bias + static_cast<size_t>(g) * s.out_c : nullptr);
  return std::make_unique<GroupedConv>(std::move(groups), s.in_c, s.out_c, clamp);
}

class FullyConnected final : public OpKernel {
 public:
  FullyConnected(size_t m, size_t n, size_t k, std::vector<uint8_t> packed, F32Clamp clamp)
      : m_(m), n_(n), k_(k), packed_(std::move(packed)), clamp_(clamp) {}
  // Column ranges of whole tiles are split between threads (same bits for any count).
  void run(const RunContext& ctx) const override {
    const auto& uk = kernels::f32gemm();
    const float* x = ctx.in<float>(0);
    float* y = ctx.out<float>(0);
    for_column_ranges(ctx, m_, n_, k_, uk.nr, [&](size_t n0, size_t n1) {
      uk.gemm(m_, n1 - n0, k_, x, k_, kernels::f32gemm_packed_at(uk, packed_.data(), k_, n0), y + n0, n_,
              clamp_);
    });
  }

 private:
  size_t m_, n_, k_;
  std::vector<uint8_t> packed_;
  F32Clamp clamp_;
};

// FullyConnected (fp32): X [..., K], W [O, K] (constant), B [O] (constant, optional) -> Y [..., O].
std::unique_ptr<OpKernel> prepare_fully_connected(PrepareContext& ctx) {
  if (ctx.input(0).dtype == DType::i8) return prepare_qfully_connected(ctx);
  const Tensor& x = ctx.require_input(0, DType::f32);
  std::vector<float> converted;
  const float* wdata = float_weights(ctx, 2, converted);
  const Tensor& w = ctx.input(1);
  fully_connected_output(ctx, x, w, DType::f32);
  const int64_t k = x.shape.back(), o = w.shape[0];
  const float* bias = optional_bias(ctx, o);
  const auto& uk = kernels::f32gemm();
  std::vector<uint8_t> packed(
      kernels::f32gemm_packed_size(uk, static_cast<size_t>(o), static_cast<size_t>(k)));
  kernels::f32gemm_pack(uk, static_cast<size_t>(o), static_cast<size_t>(k), wdata, bias,
                        packed.data());
  return std::make_unique<FullyConnected>(static_cast<size_t>(elements(x.shape) / (k ? k : 1)),
                                          static_cast<size_t>(o), static_cast<size_t>(k), std::move(packed),
                                          activation_clamp(ctx));
}

}  // namespace

const float* float_weights(const PrepareContext& ctx, int rank, std::vector<float>& converted) {
  const bool half = ctx.input(1).dtype == DType::f16;
  const Tensor& w = ctx.require_constant(1, half ? DType::f16 : DType::f32, rank);
  if (!half) return w.values<float>().data();
  const auto bits = w.values<uint16_t>();
  converted.resize(bits.size());
  std::transform(bits.begin(), bits.end(), converted.begin(), kernels::fp16_to_fp32);
  return converted.data();
}

const float* optional_bias(const PrepareContext& ctx, int64_t outputs, size_t input) {
  if (!ctx.has_input(input)) return nullptr;
  const Tensor& b = ctx.require_constant(input, DType::f32, 1);
  if (b.shape[0] != outputs)
    ctx.fail("bias has " + std::to_string(b.shape[0]) + " values for " + std::to_string(outputs) +
             " outputs");
  return b.values<float>().data();
}

size_t column_chunk(size_t channels, size_t granule, size_t threads) {
  const size_t tiles = (channels + granule - 1) / granule;
  const size_t tasks = tiles < threads ? tiles : threads;
  return (tiles + tasks - 1) / tasks * granule;
}

F32ConvShape conv_geometry(PrepareContext& ctx, const Tensor& x, const Tensor& w, DType dtype,
                           int64_t* group) {
  if (x.shape.size() != 4)
    ctx.fail("input 0 '" + x.name + "' has shape " + shape_text(x.shape) + ", expected rank 4");
  const auto strides = ints_attr(ctx, "strides", 2, 1, {1, 1});
  const auto dilations = ints_attr(ctx, "dilations", 2, 1, {1, 1});
  const auto pads = ints_attr(ctx, "pads", 4, 0, {0, 0, 0, 0});
  const int64_t g = ctx.node().attr_int("group", 1);
  // Geometry beyond any image (the indirection buffers grow with it) is refused before it is built.
  constexpr int64_t kMaxSide = 65536;
  for (int64_t v : {strides[0], strides[1], dilations[0], dilations[1], pads[0], pads[1], pads[2], pads[3]})
    if (v > kMaxSide) ctx.fail("strides, dilations and pads must be at most 65536");
  const int64_t n = x.shape[0], h = x.shape[1], wd = x.shape[2], c = x.shape[3];
  if (h > kMaxSide || wd > kMaxSide) ctx.fail("input " + shape_text(x.shape) + " is larger than 65536 pixels a side");
  const int64_t o = w.shape[0], kh = w.shape[1], kw = w.shape[2], cg = w.shape[3];
  if (g < 1 || c % g != 0 || o % g != 0 || cg != c / g)
    ctx.fail("weights " + shape_text(w.shape) + " and group " + std::to_string(g) + " do not fit input " +
             shape_text(x.shape));
  F32ConvShape s;
  s.batch = static_cast<size_t>(n), s.in_h = static_cast<size_t>(h), s.in_w = static_cast<size_t>(wd);
  s.in_c = static_cast<size_t>(c / g), s.out_c = static_cast<size_t>(o / g);
  s.kernel_h = static_cast<size_t>(kh), s.kernel_w = static_cast<size_t>(kw);
  s.stride_h = static_cast<size_t>(strides[0]), s.stride_w = static_cast<size_t>(strides[1]);
  s.dilation_h = static_cast<size_t>(dilations[0]), s.dilation_w = static_cast<size_t>(dilations[1]);
  s.pad_top = static_cast<size_t>(pads[0]), s.pad_left = static_cast<size_t>(pads[1]);
  s.pad_bottom = static_cast<size_t>(pads[2]), s.pad_right = static_cast<size_t>(pads[3]);
  if (s.out_h() == 0 || s.out_w() == 0)
    ctx.fail("the dilated kernel " + shape_text({kh, kw}) + " is larger than the padded input " +
             shape_text(x.shape));
  // The indirect convolution keeps one pointer per output pixel and kernel tap.
  const double taps = static_cast<double>(n) * static_cast<double>(s.out_h()) * static_cast<double>(s.out_w()) *
                      static_cast<double>(kh) * static_cast<double>(kw);
  if (taps > static_cast<double>(int64_t{1} << 27))
    ctx.fail("output " + shape_text({n, static_cast<int64_t>(s.out_h()), static_cast<int64_t>(s.out_w()), o}) +
             " with a " + shape_text({kh, kw}) + " kernel needs more than 2^27 input taps");
  ctx.set_output(0, dtype, {n, static_cast<int64_t>(s.out_h()), static_cast<int64_t>(s.out_w()), o});
  *group = g;
  return s;
}

void fully_connected_output(PrepareContext& ctx, const Tensor& x, const Tensor& w, DType dtype) {
  if (x.shape.empty()) ctx.fail("input is a scalar");
  if (w.shape[1] != x.shape.back())
    ctx.fail("weights " + shape_text(w.shape) + " do not fit input " + shape_text(x.shape));
  Shape out = x.shape;
  out.back() = w.shape[0];
  ctx.set_output(0, dtype, out);
}

extern const OpDef kConv2D = {"Conv2D", 2, 3, 1, false, prepare_conv};
extern const OpDef kFullyConnected = {"FullyConnected", 2, 3, 1, false, prepare_fully_connected};

}  // namespace huddle::engine::ops
