// int8 depthwise convolution for baseline AArch64 NEON, 16 channels per block
// ("c16"). Two taps' products are formed with SMULL + SMLAL into int16 (exact:
// weights lie in [-127, 127], so |x*w + x'*w'| <= 32512) and widened into
// int32 accumulators with SADDW; channels stay in natural order. Each block
// runs over a whole output row with its weights held in registers (bias and
// scales take one LD1 each per pixel); interior pixels (no padding tap) take
// their tap pointers without branches. The output clamp is applied in the
// integer domain after rounding (see Requant).
#include <arm_neon.h>

#include <cstddef>
#include <cstring>

#include "kernels/dwconv/dwconv.h"

namespace huddle::kernels {
namespace {

constexpr size_t kCr = 16;
constexpr size_t kHeader = kCr * (sizeof(int32_t) + sizeof(float));

// The output rule of qgemm_requant with the clamp moved after the rounding:
// rounding is monotonic and the bounds min - zp, max - zp are integers, so
// clamp(rint(f) + zp, min, max) is the same value; the saturating steps keep
// it so for any accumulator.
struct Requant {
  int32x4_t zp;
  int8x16_t min, max;
};

inline int16x8_t requant8(int32x4_t a0, int32x4_t a1, float32x4_t s0, float32x4_t s1, const Requant& rq) {
  const int32x4_t r0 = vqaddq_s32(vcvtnq_s32_f32(vmulq_f32(vcvtq_f32_s32(a0), s0)), rq.zp);
  const int32x4_t r1 = vqaddq_s32(vcvtnq_s32_f32(vmulq_f32(vcvtq_f32_s32(a1), s1)), rq.zp);
  return vqmovn_high_s32(vqmovn_s32(r0), r1);
}

inline void add_products(int32x4_t acc[4], int16x8_t lo, int16x8_t hi) {
  acc[0] = vaddw_s16(acc[0], vget_low_s16(lo));
  acc[1] = vaddw_high_s16(acc[1], lo);
  acc[2] = vaddw_s16(acc[2], vget_low_s16(hi));
  acc[3] = vaddw_high_s16(acc[3], hi);
}

// One block of 16 channels (all of them when kFull, else the first nc), with
// its weights, bias and scales held while it runs over a row of output pixels.
template <size_t kTaps, bool kFull>
struct Block16 {
  int8x16_t w[kTaps];
  const int32_t* bias;
  const float* scale;
  size_t nc;

  inline void load(const uint8_t* p, size_t n) {
    nc = n;
    bias = reinterpret_cast<const int32_t*>(p);
    scale = reinterpret_cast<const float*>(p + kCr * sizeof(int32_t));
    const int8_t* wp = reinterpret_cast<const int8_t*>(p + kHeader);
    for (size_t t = 0; t < kTaps; ++t) w[t] = vld1q_s8(wp + kCr * t);
  }

  // 16 input values of a tap: the whole block, or the first nc into zeros.
  inline int8x16_t load_x(const int8_t* x) const {
    if (kFull) return vld1q_s8(x);
    int8_t tmp[kCr] = {};
    std::memcpy(tmp, x, nc);
    return vld1q_s8(tmp);
  }

  // One output pixel; x holds the kTaps tap pointers (the block's first
  // channel is c past them; padding taps point at the in_zp row).
  inline void run(const int8_t* const* x, size_t c, int8_t* dst, const Requant& rq) const {
    const int32x4x4_t b = vld1q_s32_x4(bias);
    int32x4_t acc[4] = {b.val[0], b.val[1], b.val[2], b.val[3]};
    size_t t = 0;
    for (; t + 2 <= kTaps; t += 2) {
      const int8x16_t a = load_x(x[t] + c), b = load_x(x[t + 1] + c);
      int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(w[t]));
      lo = vmlal_s8(lo, vget_low_s8(b), vget_low_s8(w[t + 1]));
      int16x8_t hi = vmull_high_s8(a, w[t]);
      hi = vmlal_high_s8(hi, b, w[t + 1]);
      add_products(acc, lo, hi);
    }
    if (t < kTaps) {
      const int8x16_t a = load_x(x[t] + c);
      add_products(acc, vmull_s8(vget_low_s8(a), vget_low_s8(w[t])), vmull_high_s8(a, w[t]));
    }
    const float32x4x4_t sc = vld1q_f32_x4(scale);
    const int16x8_t q0 = requant8(acc[0], acc[1], sc.val[0], sc.val[1], rq);
    const int16x8_t q1 = requant8(acc[2], acc[3], sc.val[2], sc.val[3], rq);
    const int8x16_t q8 = vminq_s8(vmaxq_s8(vqmovn_high_s16(vqmovn_s16(q0), q1), rq.min), rq.max);
    if (kFull) {
      vst1q_s8(dst, q8);
    } else {
      int8_t tmp[kCr];
      vst1q_s8(tmp, q8);
      std::memcpy(dst, tmp, nc);
    }
  }
};

// The geometry of one run, copied into locals (the int8 output stores could
// otherwise alias the caller's shape).
template <uint32_t kKernel>
struct Geometry {
  static constexpr size_t kTaps = size_t{kKernel} * kKernel;
  size_t in_stride, out_stride, stride, pad_left, out_w, ox_lo, ox_hi;
  ptrdiff_t in_w;
  const int8_t* zero;
};

// The kTaps tap pointers of output column ox (padding taps point at the in_zp
// row); rows[ky] is input row ky of the window, or nullptr in the padding.
template <uint32_t kKernel>
inline void border_taps(const Geometry<kKernel>& g, const int8_t* const* rows, size_t ox, const int8_t** x) {
  for (size_t kx = 0; kx < kKernel; ++kx) {
    const ptrdiff_t ix = static_cast<ptrdiff_t>(ox * g.stride + kx) - static_cast<ptrdiff_t>(g.pad_left);
    const bool col = ix >= 0 && ix < g.in_w;
    for (size_t ky = 0; ky < kKernel; ++ky)
      x[ky * kKernel + kx] = col && rows[ky] ? rows[ky] + ix * static_cast<ptrdiff_t>(g.in_stride) : g.zero;
  }
}

// What every block of one output row shares: the window's input rows
// (nullptr in the padding), the row pointers at the first interior column
// (the in_zp row in the padding) with their steps per column and per pixel,
// whether no row is padding, and the border columns' tap pointers (nullptr
// when there are more than kMaxEdge of them).
template <uint32_t kKernel>
struct RowTaps {
  const int8_t* rows[kKernel];
  const int8_t* start[kKernel];
  size_t col[kKernel], step[kKernel];
  bool all;
  const int8_t* const* edge;
};

// Border columns (outside [ox_lo, ox_hi)) of one output row whose tap
// pointers are computed once for every block: at most this many.
constexpr size_t kMaxEdge = 8;

// One output row of one block (channels c0..). Columns [ox_lo, ox_hi) read no
// padding column and take their tap pointers without branches; the others
// take them from `edge` (border_taps of the row's border columns, left then
// right) or, when it is nullptr, compute them.
template <uint32_t kKernel, typename B>
inline void block_row(const B& b, const Geometry<kKernel>& g, const RowTaps<kKernel>& rt, size_t c0,
                      int8_t* dst, const Requant& rq) {
  constexpr size_t kTaps = Geometry<kKernel>::kTaps;
  const auto border = [&](size_t ox, size_t slot) {
    if (rt.edge) {
      b.run(rt.edge + slot * kTaps, c0, dst + ox * g.out_stride, rq);
    } else {
      const int8_t* x[kTaps];
      border_taps<kKernel>(g, rt.rows, ox, x);
      b.run(x, c0, dst + ox * g.out_stride, rq);
    }
  };
  size_t ox = 0;
  for (; ox < g.ox_lo; ++ox) border(ox, ox);
  if (ox < g.ox_hi) {
    // Locals: the output stores could otherwise alias g and rt.
    const size_t out_stride = g.out_stride;
    const int8_t* r[kKernel];
    for (size_t ky = 0; ky < kKernel; ++ky) r[ky] = rt.start[ky] + c0;
    int8_t* d = dst + ox * out_stride;
    const size_t n = g.ox_hi - ox;
    if (rt.all) {
      const size_t cs = g.in_stride, step = g.stride * g.in_stride;
      for (size_t i = 0; i < n; ++i, d += out_stride) {
        const int8_t* x[kTaps];
        for (size_t ky = 0; ky < kKernel; ++ky) {
          for (size_t kx = 0; kx < kKernel; ++kx) x[ky * kKernel + kx] = r[ky] + kx * cs;
          r[ky] += step;
        }
        b.run(x, 0, d, rq);
      }
    } else {
      size_t col[kKernel], step[kKernel];
      for (size_t ky = 0; ky < kKernel; ++ky) {
        col[ky] = rt.col[ky];
        step[ky] = rt.step[ky];
      }
      for (size_t i = 0; i < n; ++i, d += out_stride) {
        const int8_t* x[kTaps];
        for (size_t ky = 0; ky < kKernel; ++ky) {
          for (size_t kx = 0; kx < kKernel; ++kx) x[ky * kKernel + kx] = r[ky] + kx * col[ky];
          r[ky] += step[ky];
        }
        b.run(x, 0, d, rq);
      }
    }
    ox = g.ox_hi;
  }
  for (; ox < g.out_w; ++ox) border(ox, g.ox_lo + ox - g.ox_hi);
}

template <uint32_t kKernel>
void run_kernel(const QDwConvShape& s, const int8_t* in, const void* packed, int8_t* out,
                const QGemmOutput& params) {
  constexpr size_t kTaps = size_t{kKernel} * kKernel;
  Geometry<kKernel> g;
  const size_t channels = s.channels, stride = s.stride, pad_top = s.pad_top;
  const ptrdiff_t in_h = static_cast<ptrdiff_t>(s.in_h);
  g.in_stride = s.in_stride;
  g.out_stride = s.out_stride;
  g.stride = stride;
  g.pad_left = s.pad_left;
  g.in_w = static_cast<ptrdiff_t>(s.in_w);
  g.zero = dwconv_packed_zero(dwconv_neon, packed, kKernel, channels);
  const size_t block_bytes = dwconv_block_bytes(dwconv_neon, kKernel);
  const uint8_t* base = static_cast<const uint8_t*>(packed);
  const Requant rq = {vdupq_n_s32(params.zero_point), vdupq_n_s8(params.min), vdupq_n_s8(params.max)};
  const size_t out_h = dwconv_out_h(s);
  g.out_w = dwconv_out_w(s);
  const size_t row = s.in_w * g.in_stride, full = channels / kCr * kCr;
  // Output columns [ox_lo, ox_hi) read no padding column.
  g.ox_lo = g.pad_left >= g.out_w * stride ? g.out_w : (g.pad_left + stride - 1) / stride;
  g.ox_hi = s.in_w + g.pad_left >= kKernel ? (s.in_w + g.pad_left - kKernel) / stride + 1 : 0;
  if (g.ox_hi > g.out_w) g.ox_hi = g.out_w;
  if (g.ox_hi < g.ox_lo) g.ox_hi = g.ox_lo;
  for (size_t oy = 0; oy < out_h; ++oy) {
    RowTaps<kKernel> rt;
    rt.all = true;
    const size_t first = g.ox_lo < g.ox_hi ? (g.ox_lo * stride - g.pad_left) * g.in_stride : 0;
    for (size_t ky = 0; ky < kKernel; ++ky) {
      const ptrdiff_t iy = static_cast<ptrdiff_t>(oy * stride + ky) - static_cast<ptrdiff_t>(pad_top);
      const bool inside = iy >= 0 && iy < in_h;
      rt.rows[ky] = inside ? in + iy * static_cast<ptrdiff_t>(row) : nullptr;
      rt.start[ky] = inside ? rt.rows[ky] + first : g.zero;
      rt.col[ky] = inside ? g.in_stride : 0;
      rt.step[ky] = inside ? stride * g.in_stride : 0;
      rt.all = rt.all && inside;
    }
    const int8_t* edge_taps[kMaxEdge * kTaps];
    rt.edge = nullptr;
    if (g.ox_lo + (g.out_w - g.ox_hi) <= kMaxEdge) {
      for (size_t ox = 0; ox < g.ox_lo; ++ox) border_taps<kKernel>(g, rt.rows, ox, edge_taps + ox * kTaps);
      for (size_t ox = g.ox_hi; ox < g.out_w; ++ox)
        border_taps<kKernel>(g, rt.rows, ox, edge_taps + (g.ox_lo + ox - g.ox_hi) * kTaps);
      rt.edge = edge_taps;
    }
    int8_t* dst = out + oy * g.out_w * g.out_stride;
    const uint8_t* p = base;
    size_t c0 = 0;
    for (; c0 < full; c0 += kCr, p += block_bytes) {
      Block16<kTaps, true> b;
      b.load(p, kCr);
      block_row<kKernel>(b, g, rt, c0, dst + c0, rq);
    }
    if (c0 < channels) {
      Block16<kTaps, false> b;
      b.load(p, channels - c0);
      block_row<kKernel>(b, g, rt, c0, dst + c0, rq);
    }
  }
}

void dwconv_run_neon(const QDwConvShape& s, const int8_t* in, const void* packed, int8_t* out,
                     const QGemmOutput& params) {
  if (s.kernel == 3)
    run_kernel<3>(s, in, packed, out, params);
  else
    run_kernel<5>(s, in, packed, out, params);
}

}  // namespace

const QDwConvUkernel dwconv_neon = {
    "qs8_dwconv_3x3_5x5__neon_c16", Isa::neon, kCr, 1, false, dwconv_run_neon};

}  // namespace huddle::kernels
