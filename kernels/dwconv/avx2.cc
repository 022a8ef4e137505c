// int8 depthwise convolution for AVX2, 16 channels per block ("c16"). Taps are
// taken in pairs: the two taps' inputs are interleaved per channel, widened to
// int16 and multiplied with vpmaddwd against weights packed as interleaved
// int16 pairs, which is exact and leaves channels in natural order.
// Compiled with -mavx2 -mfma: everything here stays in this file.
#include <immintrin.h>

#include <cstddef>
#include <cstring>

#include "kernels/dwconv/dwconv.h"

namespace huddle::kernels {
namespace {

constexpr size_t kCr = 16, kTr = 2;
constexpr size_t kHeader = kCr * (sizeof(int32_t) + sizeof(float));

struct Requant {
  __m256 lo, hi;
  __m256i zp;
};

// 16 input values of a tap: the whole block, or the first nc into zeros.
template <bool kFull>
inline __m128i load_x(const int8_t* p, size_t nc) {
  if (kFull) return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  int8_t tmp[kCr] = {};
  std::memcpy(tmp, p, nc);
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(tmp));
}

inline __m256i requant8(__m256i acc, const float* scale, const Requant& rq) {
  __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), _mm256_loadu_ps(scale));
  f = _mm256_min_ps(_mm256_max_ps(f, rq.lo), rq.hi);
  return _mm256_add_epi32(_mm256_cvtps_epi32(f), rq.zp);
}

// One block of channels c0.. (16, or nc < 16 when !kFull) of one output pixel;
// x holds the 2 * kPairs tap pointers (padding taps point at the in_zp row).
template <size_t kPairs, bool kFull>
inline void block(const int8_t* const* x, size_t c0, size_t nc, const uint8_t* p, int8_t* dst,
                  const Requant& rq) {
  __m256i acc0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  __m256i acc1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 8 * sizeof(int32_t)));
  const __m256i* w = reinterpret_cast<const __m256i*>(p + kHeader);
  for (size_t t = 0; t < kPairs; ++t) {
    const __m128i a = load_x<kFull>(x[2 * t] + c0, nc), b = load_x<kFull>(x[2 * t + 1] + c0, nc);
    const __m256i lo = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b));  // channels 0-7, tap pairs
    const __m256i hi = _mm256_cvtepi8_epi16(_mm_unpackhi_epi8(a, b));  // channels 8-15
    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(lo, _mm256_loadu_si256(w + 2 * t)));
    acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(hi, _mm256_loadu_si256(w + 2 * t + 1)));
  }
  const float* scale = reinterpret_cast<const float*>(p + kCr * sizeof(int32_t));
  const __m256i q0 = requant8(acc0, scale, rq), q1 = requant8(acc1, scale + 8, rq);
  const __m128i q8 =
      _mm_packs_epi16(_mm_packs_epi32(_mm256_castsi256_si128(q0), _mm256_extracti128_si256(q0, 1)),
                      _mm_packs_epi32(_mm256_castsi256_si128(q1), _mm256_extracti128_si256(q1, 1)));
  if (kFull) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + c0), q8);
  } else {
    int8_t tmp[kCr];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), q8);
    std::memcpy(dst + c0, tmp, nc);
  }
}

template <uint32_t kKernel>
void run_kernel(const QDwConvShape& s, const int8_t* in, const void* packed, int8_t* out,
                const QGemmOutput& params) {
  constexpr size_t kTaps = kKernel * kKernel, kPairs = (kTaps + 1) / 2;
  const size_t block_bytes = dwconv_block_bytes(dwconv_avx2, kKernel);
  const int8_t* zero = dwconv_packed_zero(dwconv_avx2, packed, kKernel, s.channels);
  const uint8_t* base = static_cast<const uint8_t*>(packed);
  const Requant rq = {_mm256_set1_ps(static_cast<float>(params.min - params.zero_point)),
                      _mm256_set1_ps(static_cast<float>(params.max - params.zero_point)),
                      _mm256_set1_epi32(params.zero_point)};
  const size_t out_h = dwconv_out_h(s), out_w = dwconv_out_w(s);
  const size_t row = s.in_w * s.in_stride, full = s.channels / kCr * kCr;
  const ptrdiff_t in_h = static_cast<ptrdiff_t>(s.in_h), in_w = static_cast<ptrdiff_t>(s.in_w);
  for (size_t oy = 0; oy < out_h; ++oy) {
    const int8_t* rows[kKernel];
    for (size_t ky = 0; ky < kKernel; ++ky) {
      const ptrdiff_t iy = static_cast<ptrdiff_t>(oy * s.stride + ky) - s.pad_top;
      rows[ky] = iy >= 0 && iy < in_h ? in + iy * row : nullptr;
    }
    for (size_t ox = 0; ox < out_w; ++ox) {
      const int8_t* x[2 * kPairs];
      for (size_t kx = 0; kx < kKernel; ++kx) {
        const ptrdiff_t ix = static_cast<ptrdiff_t>(ox * s.stride + kx) - s.pad_left;
        const bool col = ix >= 0 && ix < in_w;
        for (size_t ky = 0; ky < kKernel; ++ky)
          x[ky * kKernel + kx] = col && rows[ky] ? rows[ky] + ix * s.in_stride : zero;
      }
      for (size_t t = kTaps; t < 2 * kPairs; ++t) x[t] = zero;  // the zero-weight tap that evens the count
      int8_t* dst = out + (oy * out_w + ox) * s.out_stride;
      const uint8_t* p = base;
      size_t c0 = 0;
      for (; c0 < full; c0 += kCr, p += block_bytes) block<kPairs, true>(x, c0, kCr, p, dst, rq);
      if (c0 < s.channels) block<kPairs, false>(x, c0, s.channels - c0, p, dst, rq);
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
