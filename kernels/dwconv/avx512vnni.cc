// int8 depthwise convolution for AVX-512 VNNI, 32 channels per block ("c32").
// Each tap's 32 input values are widened to int16 with one vpmovsxbw and
// multiplied with vpmullw against the tap's int16 weights (exact: |x * w| <=
// 128 * 127); two taps' products are added in int16 (exact: <= 32512) and
// widened into int32 accumulators by two vpdpwssd against 1 in the low or the
// high word, one for the even channels, one for the odd ones. Bias and scales
// are split the same way, and the requantised halves are interleaved back as
// words. Each block runs over a whole output row with its weights, bias and
// scales loaded once (so the weights never compete with the input for L1). A
// channel tail of at most 16 takes a half-width (ymm) step; longer tails use
// masked loads and stores. Interior pixels (no padding tap) take their tap
// pointers without branches. Compiled with AVX-512 F/BW/VL/VNNI: everything
// here stays in this file.
#include "kernels/avx512_intrinsics.h"

#include <cstddef>

#include "kernels/dwconv/dwconv.h"

namespace huddle::kernels {
namespace {

constexpr size_t kCr = 32, kTr = 1;
constexpr size_t kHeader = kCr * (sizeof(int32_t) + sizeof(float));

struct Requant {
  __m512 lo, hi;
  __m512i zp;
};

// 16 accumulators to int32 outputs in [min, max] (the GEMM family's rule).
inline __m512i requant16(__m512i acc, __m512 scale, const Requant& rq) {
  __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
  f = _mm512_min_ps(_mm512_max_ps(f, rq.lo), rq.hi);
  return _mm512_add_epi32(_mm512_cvtps_epi32(f), rq.zp);
}

inline __m256i requant8(__m256i acc, __m256 scale, const Requant& rq) {
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
  f = _mm256_min_ps(_mm256_max_ps(f, _mm512_castps512_ps256(rq.lo)), _mm512_castps512_ps256(rq.hi));
  return _mm256_add_epi32(_mm256_cvtps_epi32(f), _mm512_castsi512_si256(rq.zp));
}

// One block of 32 channels (all of them, or the prefix in `mask`), with its
// weights, bias and scales held in registers while it runs over a row of
// output pixels. Accumulators are split into even and odd channels.
template <size_t kTaps, bool kFull>
struct Block32 {
  __m512i w[kTaps];
  __m512i bias_even, bias_odd;
  __m512 scale_even, scale_odd;
  __mmask32 mask;

  inline void load(const uint8_t* p, __mmask32 m) {
    mask = m;
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512i b0 = _mm512_loadu_si512(p), b1 = _mm512_loadu_si512(p + 64);
    bias_even = _mm512_permutex2var_epi32(b0, even, b1);
    bias_odd = _mm512_permutex2var_epi32(b0, odd, b1);
    const __m512 s0 = _mm512_loadu_ps(p + 128), s1 = _mm512_loadu_ps(p + 192);
    scale_even = _mm512_permutex2var_ps(s0, even, s1);
    scale_odd = _mm512_permutex2var_ps(s0, odd, s1);
    for (size_t t = 0; t < kTaps; ++t) w[t] = _mm512_loadu_si512(p + kHeader + 64 * t);
  }

  // The 32 products of tap t (input at x).
  inline __m512i product(const int8_t* x, size_t t) const {
    const __m256i a =
        kFull ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)) : _mm256_maskz_loadu_epi8(mask, x);
    return _mm512_mullo_epi16(_mm512_cvtepi8_epi16(a), w[t]);
  }

  // One output pixel; x holds the kTaps tap pointers (the block's first
  // channel is c past them; padding taps point at the in_zp row).
  inline void run(const int8_t* const* x, size_t c, int8_t* dst, const Requant& rq) const {
    const __m512i lo_word = _mm512_set1_epi32(1), hi_word = _mm512_set1_epi32(0x10000);
    __m512i even = bias_even, odd = bias_odd;
    size_t t = 0;
    for (; t + 2 <= kTaps; t += 2) {
      const __m512i sum = _mm512_add_epi16(product(x[t] + c, t), product(x[t + 1] + c, t + 1));
      even = _mm512_dpwssd_epi32(even, sum, lo_word);
      odd = _mm512_dpwssd_epi32(odd, sum, hi_word);
    }
    if (t < kTaps) {
      const __m512i prod = product(x[t] + c, t);
      even = _mm512_dpwssd_epi32(even, prod, lo_word);
      odd = _mm512_dpwssd_epi32(odd, prod, hi_word);
    }
    // Outputs fit int16: interleave the halves as words, then narrow.
    const __m512i q = _mm512_mask_blend_epi16(0xAAAAAAAAu, requant16(even, scale_even, rq),
                                              _mm512_slli_epi32(requant16(odd, scale_odd, rq), 16));
    const __m256i q8 = _mm512_cvtepi16_epi8(q);
    if (kFull)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), q8);
    else
      _mm256_mask_storeu_epi8(dst, mask, q8);
  }
};

// The last channels of a pixel when at most 16 remain: the same at half width.
template <size_t kTaps>
struct Block16 {
  __m256i w[kTaps];
  __m256i bias_even, bias_odd;
  __m256 scale_even, scale_odd;
  __mmask16 mask;

  inline void load(const uint8_t* p, __mmask16 m) {
    mask = m;
    const __m512i idx = _mm512_set_epi32(15, 13, 11, 9, 7, 5, 3, 1, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i b = _mm512_permutexvar_epi32(idx, _mm512_loadu_si512(p));
    bias_even = _mm512_castsi512_si256(b);
    bias_odd = _mm512_extracti64x4_epi64(b, 1);
    const __m512 s = _mm512_permutexvar_ps(idx, _mm512_loadu_ps(p + 128));
    scale_even = _mm512_castps512_ps256(s);
    scale_odd = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s), 1));
    for (size_t t = 0; t < kTaps; ++t)
      w[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kHeader + 64 * t));
  }

  inline __m256i product(const int8_t* x, size_t t) const {
    return _mm256_mullo_epi16(_mm256_cvtepi8_epi16(_mm_maskz_loadu_epi8(mask, x)), w[t]);
  }

  inline void run(const int8_t* const* x, size_t c, int8_t* dst, const Requant& rq) const {
    const __m256i lo_word = _mm256_set1_epi32(1), hi_word = _mm256_set1_epi32(0x10000);
    __m256i even = bias_even, odd = bias_odd;
    size_t t = 0;
    for (; t + 2 <= kTaps; t += 2) {
      const __m256i sum = _mm256_add_epi16(product(x[t] + c, t), product(x[t + 1] + c, t + 1));
      even = _mm256_dpwssd_epi32(even, sum, lo_word);
      odd = _mm256_dpwssd_epi32(odd, sum, hi_word);
    }
    if (t < kTaps) {
      const __m256i prod = product(x[t] + c, t);
      even = _mm256_dpwssd_epi32(even, prod, lo_word);
      odd = _mm256_dpwssd_epi32(odd, prod, hi_word);
    }
    const __m256i q = _mm256_mask_blend_epi16(0xAAAA, requant8(even, scale_even, rq),
                                              _mm256_slli_epi32(requant8(odd, scale_odd, rq), 16));
    _mm_mask_storeu_epi8(dst, mask, _mm256_cvtepi16_epi8(q));
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
  g.zero = dwconv_packed_zero(dwconv_avx512vnni, packed, kKernel, channels);
  const size_t block_bytes = dwconv_block_bytes(dwconv_avx512vnni, kKernel);
  const uint8_t* base = static_cast<const uint8_t*>(packed);
  const Requant rq = {_mm512_set1_ps(static_cast<float>(params.min - params.zero_point)),
                      _mm512_set1_ps(static_cast<float>(params.max - params.zero_point)),
                      _mm512_set1_epi32(params.zero_point)};
  const size_t out_h = dwconv_out_h(s);
  g.out_w = dwconv_out_w(s);
  const size_t row = s.in_w * g.in_stride, full = channels / kCr * kCr;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (channels - full)) - 1);
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
      Block32<kTaps, true> b;
      b.load(p, ~__mmask32{0});
      block_row<kKernel>(b, g, rt, c0, dst + c0, rq);
    }
    if (c0 < channels) {
      if (channels - c0 <= 16) {
        Block16<kTaps> b;
        b.load(p, static_cast<__mmask16>(tail));
        block_row<kKernel>(b, g, rt, c0, dst + c0, rq);
      } else {
        Block32<kTaps, false> b;
        b.load(p, tail);
        block_row<kKernel>(b, g, rt, c0, dst + c0, rq);
      }
    }
  }
}

void dwconv_run_avx512vnni(const QDwConvShape& s, const int8_t* in, const void* packed, int8_t* out,
                           const QGemmOutput& params) {
  if (s.kernel == 3)
    run_kernel<3>(s, in, packed, out, params);
  else
    run_kernel<5>(s, in, packed, out, params);
}

}  // namespace

const QDwConvUkernel dwconv_avx512vnni = {
    "qs8_dwconv_3x3_5x5__avx512vnni_c32", Isa::avx512vnni, kCr, kTr, true, dwconv_run_avx512vnni};

}  // namespace huddle::kernels
