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

#include "kernels/dwconv/driver.h"
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

// The arithmetic dwconv_driver runs: whole blocks and the channel tail.
struct Kernel : BlockLoads<kCr, Block16> {
  static constexpr size_t kCr = huddle::kernels::kCr;
  using Requant = huddle::kernels::Requant;
  static Requant requant(const QGemmOutput& params) {
    return {_mm256_set1_ps(static_cast<float>(params.min - params.zero_point)),
            _mm256_set1_ps(static_cast<float>(params.max - params.zero_point)),
            _mm256_set1_epi32(params.zero_point)};
  }
};

// The variant's QDwConvFn.
constexpr QDwConvFn kRun = dwconv_driver<Kernel, dwconv_avx2>;

}  // namespace

const QDwConvUkernel dwconv_avx2 = {"qs8_dwconv_3x3_5x5__avx2_c16", Isa::avx2, kCr, kTr, true, kRun};

}  // namespace huddle::kernels
