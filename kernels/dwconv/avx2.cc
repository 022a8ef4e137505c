// int8 depthwise convolution for AVX2, 16 channels per block ("c16"). Each
// tap's 16 input values are widened to int16 with one vpmovsxbw and multiplied
// with vpmullw against the tap's int16 weights (exact: |x * w| <= 128 * 127);
// two taps' products are added in int16 (exact: <= 32512) and widened into
// int32 accumulators, the even channels by vpmaddwd against 1 in the low word,
// the odd ones by an arithmetic shift right by 16; the requantised halves are
// interleaved back as words. Each block runs over a whole output row with its
// weights, bias and scales loaded once; interior pixels (no padding tap) take
// their tap pointers without branches. Compiled with -mavx2 -mfma: everything
// here stays in this file.
#include <immintrin.h>

#include <cstddef>
#include <cstring>

#include "kernels/dwconv/dwconv.h"

namespace huddle::kernels {
namespace {

constexpr size_t kCr = 16, kTr = 1;
constexpr size_t kHeader = kCr * (sizeof(int32_t) + sizeof(float));

struct Requant {
  __m256 lo, hi;
  __m256i zp;
};

inline __m256i requant8(__m256i acc, __m256 scale, const Requant& rq) {
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale);
  f = _mm256_min_ps(_mm256_max_ps(f, rq.lo), rq.hi);
  return _mm256_add_epi32(_mm256_cvtps_epi32(f), rq.zp);
}

// One block of 16 channels (all of them when kFull, else the first nc), with
// its weights, bias and scales held while it runs over a row of output pixels.
// Accumulators are split into even and odd channels.
template <size_t kTaps, bool kFull>
struct Block16 {
  __m256i w[kTaps];
  __m256i bias_even, bias_odd;
  __m256 scale_even, scale_odd;
  size_t nc;

  inline void load(const uint8_t* p, size_t n) {
    nc = n;
    // Per 128-bit half: the even then the odd channels of 8.
    const __m256i split = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    const __m256i b0 =
        _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), split);
    const __m256i b1 =
        _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)), split);
    bias_even = _mm256_permute2x128_si256(b0, b1, 0x20);
    bias_odd = _mm256_permute2x128_si256(b0, b1, 0x31);
    const __m256 s0 =
        _mm256_permutevar8x32_ps(_mm256_loadu_ps(reinterpret_cast<const float*>(p + 64)), split);
    const __m256 s1 =
        _mm256_permutevar8x32_ps(_mm256_loadu_ps(reinterpret_cast<const float*>(p + 96)), split);
    scale_even = _mm256_permute2f128_ps(s0, s1, 0x20);
    scale_odd = _mm256_permute2f128_ps(s0, s1, 0x31);
    for (size_t t = 0; t < kTaps; ++t)
      w[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kHeader + 32 * t));
  }

  // The 16 products of tap t (input at x).
  inline __m256i product(const int8_t* x, size_t t) const {
    __m128i a;
    if (kFull) {
      a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x));
    } else {
      int8_t tmp[kCr] = {};
      std::memcpy(tmp, x, nc);
      a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tmp));
    }
    return _mm256_mullo_epi16(_mm256_cvtepi8_epi16(a), w[t]);
  }

  // One output pixel; x holds the kTaps tap pointers (the block's first
  // channel is c past them; padding taps point at the in_zp row).
  inline void run(const int8_t* const* x, size_t c, int8_t* dst, const Requant& rq) const {
    const __m256i lo_word = _mm256_set1_epi32(1);
    __m256i even = bias_even, odd = bias_odd;
    size_t t = 0;
    for (; t + 2 <= kTaps; t += 2) {
      const __m256i sum = _mm256_add_epi16(product(x[t] + c, t), product(x[t + 1] + c, t + 1));
      even = _mm256_add_epi32(even, _mm256_madd_epi16(sum, lo_word));
      odd = _mm256_add_epi32(odd, _mm256_srai_epi32(sum, 16));
    }
    if (t < kTaps) {
      const __m256i prod = product(x[t] + c, t);
      even = _mm256_add_epi32(even, _mm256_madd_epi16(prod, lo_word));
      odd = _mm256_add_epi32(odd, _mm256_srai_epi32(prod, 16));
    }
    // Outputs fit int16: interleave the halves as words, then narrow.
    const __m256i q = _mm256_blend_epi16(requant8(even, scale_even, rq),
                                         _mm256_slli_epi32(requant8(odd, scale_odd, rq), 16), 0xAA);
    const __m128i q8 = _mm_packs_epi16(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    if (kFull) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), q8);
    } else {
      int8_t tmp[kCr];
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), q8);
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
  g.zero = dwconv_packed_zero(dwconv_avx2, packed, kKernel, channels);
  const size_t block_bytes = dwconv_block_bytes(dwconv_avx2, kKernel);
  const uint8_t* base = static_cast<const uint8_t*>(packed);
  const Requant rq = {_mm256_set1_ps(static_cast<float>(params.min - params.zero_point)),
                      _mm256_set1_ps(static_cast<float>(params.max - params.zero_point)),
                      _mm256_set1_epi32(params.zero_point)};
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

void dwconv_run_avx2(const QDwConvShape& s, const int8_t* in, const void* packed, int8_t* out,
                     const QGemmOutput& params) {
  if (s.kernel == 3)
    run_kernel<3>(s, in, packed, out, params);
  else
    run_kernel<5>(s, in, packed, out, params);
}

}  // namespace

const QDwConvUkernel dwconv_avx2 = {
    "qs8_dwconv_3x3_5x5__avx2_c16", Isa::avx2, kCr, kTr, true, dwconv_run_avx2};

}  // namespace huddle::kernels
