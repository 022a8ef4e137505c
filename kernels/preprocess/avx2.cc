// Preprocess for AVX2: horizontal taps of 8 elements gathered as dwords
// (vpgatherdd, where 4 bytes stay inside the source row) and weighted with
// vpmaddwd; vertical interpolation, normalisation and quantisation 8 elements
// at a time. Bit-exact with ref: the same integer and fp32 operations.
// Compiled with -mavx2 -mfma -mf16c: everything here stays in this file.
#include <immintrin.h>

#include <cstring>

#include "kernels/preprocess/preprocess.h"

namespace huddle::kernels {
namespace {

// Horizontal sums of all elements of one source row.
void horizontal(const PreprocessPlan& plan, const uint8_t* row, int32_t* h) {
  const size_t wide = plan.wide_elems & ~size_t{7};
  const __m256i byte = _mm256_set1_epi32(0xff);
  size_t e = 0;
  for (; e < wide; e += 8) {
    const __m256i o0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(plan.off0 + e));
    const __m256i o1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(plan.off1 + e));
    const __m256i p0 =
        _mm256_and_si256(_mm256_i32gather_epi32(reinterpret_cast<const int*>(row), o0, 1), byte);
    const __m256i p1 =
        _mm256_and_si256(_mm256_i32gather_epi32(reinterpret_cast<const int*>(row), o1, 1), byte);
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(plan.wx + e));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + e),
                        _mm256_madd_epi16(_mm256_or_si256(p0, _mm256_slli_epi32(p1, 16)), w));
  }
  preprocess_horizontal(plan, row, e, plan.elems, h);
}

// The vertically interpolated values of elements e..e+7 (before normalisation).
inline __m256 vertical(const int32_t* h0, const int32_t* h1, __m256 w0, __m256 w1, size_t e) {
  const __m256 a = _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h0 + e)));
  const __m256 b = _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h1 + e)));
  return _mm256_add_ps(_mm256_mul_ps(a, w0), _mm256_mul_ps(b, w1));
}

void vertical_f32(const PreprocessPlan& plan, const int32_t* h0, const int32_t* h1, int32_t wy, float* out) {
  const __m256 w0 = _mm256_set1_ps(static_cast<float>(2048 - wy)),
               w1 = _mm256_set1_ps(static_cast<float>(wy));
  for (size_t e = 0; e < plan.elems; e += 8) {
    const __m256 y =
        _mm256_add_ps(_mm256_mul_ps(vertical(h0, h1, w0, w1, e), _mm256_loadu_ps(plan.mul + e % 24)),
                      _mm256_loadu_ps(plan.add + e % 24));
    if (plan.elems - e >= 8) {
      _mm256_storeu_ps(out + e, y);
    } else {
      float tmp[8];
      _mm256_storeu_ps(tmp, y);
      std::memcpy(out + e, tmp, (plan.elems - e) * sizeof(float));
    }
  }
}

void vertical_qs8(const PreprocessPlan& plan, const int32_t* h0, const int32_t* h1, int32_t wy, int8_t* out) {
  const __m256 w0 = _mm256_set1_ps(static_cast<float>(2048 - wy)),
               w1 = _mm256_set1_ps(static_cast<float>(wy));
  const __m256 lo = _mm256_set1_ps(-128.0f), hi = _mm256_set1_ps(127.0f);
  for (size_t e = 0; e < plan.elems; e += 8) {
    __m256 f = _mm256_add_ps(_mm256_mul_ps(vertical(h0, h1, w0, w1, e), _mm256_loadu_ps(plan.qmul + e % 24)),
                             _mm256_loadu_ps(plan.qadd + e % 24));
    f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
    const __m256i q = _mm256_cvtps_epi32(f);
    const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i q8 = _mm_packs_epi16(q16, q16);
    if (plan.elems - e >= 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out + e), q8);
    } else {
      int8_t tmp[16];
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), q8);
      std::memcpy(out + e, tmp, plan.elems - e);
    }
  }
}

void f32_avx2(const PreprocessParams& p, const uint8_t* src, float* dst, void* scratch) {
  preprocess_run(p, src, dst, scratch, horizontal, vertical_f32);
}

void qs8_avx2(const PreprocessParams& p, const uint8_t* src, int8_t* dst, void* scratch) {
  preprocess_run(p, src, dst, scratch, horizontal, vertical_qs8);
}

}  // namespace

const PreprocessUkernel preprocess_avx2 = {"u8_resize_bilinear_normalize__avx2", Isa::avx2, f32_avx2,
                                           qs8_avx2};

}  // namespace huddle::kernels
