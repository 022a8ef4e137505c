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

#include "kernels/dwconv/driver.h"
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

// The arithmetic dwconv_driver runs: whole blocks, and the channel tail at
// half width when at most 16 channels remain, else masked.
struct Kernel {
  static constexpr size_t kCr = huddle::kernels::kCr;
  using Requant = huddle::kernels::Requant;
  static Requant requant(const QGemmOutput& params) {
    return {_mm512_set1_ps(static_cast<float>(params.min - params.zero_point)),
            _mm512_set1_ps(static_cast<float>(params.max - params.zero_point)),
            _mm512_set1_epi32(params.zero_point)};
  }
  template <size_t kTaps, class F>
  static void block(const uint8_t* p, F&& f) {
    Block32<kTaps, true> b;
    b.load(p, ~__mmask32{0});
    f(b);
  }
  template <size_t kTaps, class F>
  static void tail(const uint8_t* p, size_t nc, F&& f) {
    const __mmask32 mask = static_cast<__mmask32>((uint64_t{1} << nc) - 1);
    if (nc <= 16) {
      Block16<kTaps> b;
      b.load(p, static_cast<__mmask16>(mask));
      f(b);
    } else {
      Block32<kTaps, false> b;
      b.load(p, mask);
      f(b);
    }
  }
};

// The variant's QDwConvFn.
constexpr QDwConvFn kRun = dwconv_driver<Kernel, dwconv_avx512vnni>;

}  // namespace

const QDwConvUkernel dwconv_avx512vnni = {
    "qs8_dwconv_3x3_5x5__avx512vnni_c32", Isa::avx512vnni, kCr, kTr, true, kRun};

}  // namespace huddle::kernels
