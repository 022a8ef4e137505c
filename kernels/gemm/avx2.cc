// int8 GEMM for AVX2: 4x8 tile, K in groups of 8 ("c8"). Operands are widened
// to int16 and multiplied with vpmaddwd, which is exact (vpmaddubsw would
// saturate); partial sums are reduced across the group once per tile.
// Compiled with -mavx2 -mfma: everything here stays in this file.
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm/gemm.h"

namespace huddle::kernels {
namespace {

constexpr size_t kMr = 4, kNr = 8, kKr = 8;
constexpr size_t kHeader = kNr * (sizeof(int32_t) + sizeof(float));

inline __m256i load_a8(const int8_t* p) {
  int64_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_cvtepi8_epi16(_mm_set1_epi64x(v));  // 8 values, in both lanes
}

inline __m256i load_a_tail(const int8_t* p, size_t n) {
  int64_t v = 0;
  std::memcpy(&v, p, n);
  return _mm256_cvtepi8_epi16(_mm_set1_epi64x(v));
}

// Sums of the tile rows: out[i] = 8 int32, one per column of the block.
inline void accumulate(size_t mr, size_t k, const int8_t* a, size_t a_stride, const int8_t* w,
                       __m256i out[kMr]) {
  const int8_t* ar[kMr];
  for (size_t i = 0; i < kMr; ++i) ar[i] = a + (i < mr ? i : mr - 1) * a_stride;
  __m256i acc[kMr][4];
  for (size_t i = 0; i < kMr; ++i)
    for (size_t j = 0; j < 4; ++j) acc[i][j] = _mm256_setzero_si256();
  auto step = [&](const __m256i va[kMr]) {
    for (size_t j = 0; j < 4; ++j) {
      const __m256i vb =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + j * 2 * kKr)));
      for (size_t i = 0; i < kMr; ++i) acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(va[i], vb));
    }
    w += kNr * kKr;
  };
  size_t kk = 0;
  for (; kk + kKr <= k; kk += kKr) {
    __m256i va[kMr];
    for (size_t i = 0; i < kMr; ++i) va[i] = load_a8(ar[i] + kk);
    step(va);
  }
  if (kk < k) {
    __m256i va[kMr];
    for (size_t i = 0; i < kMr; ++i) va[i] = load_a_tail(ar[i] + kk, k - kk);
    step(va);
  }
  // acc[i][j]: low lane 4 partial sums of column 2j, high lane of column 2j+1.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (size_t i = 0; i < kMr; ++i) {
    const __m256i t01 = _mm256_hadd_epi32(acc[i][0], acc[i][1]);
    const __m256i t23 = _mm256_hadd_epi32(acc[i][2], acc[i][3]);
    out[i] = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(t01, t23), order);
  }
}

void gemm_avx2(size_t m, size_t n, size_t k, const int8_t* a, size_t a_stride, const void* packed, int8_t* c,
               size_t c_stride, const QGemmOutput& out) {
  const size_t block = qgemm_block_bytes(qgemm_avx2, k);
  const __m256 lo = _mm256_set1_ps(static_cast<float>(out.min - out.zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(out.max - out.zero_point));
  const __m256i zp = _mm256_set1_epi32(out.zero_point);
  for (size_t n0 = 0; n0 < n; n0 += kNr) {
    const uint8_t* p = static_cast<const uint8_t*>(packed) + (n0 / kNr) * block;
    const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256 scale = _mm256_loadu_ps(reinterpret_cast<const float*>(p + kNr * sizeof(int32_t)));
    const int8_t* w = reinterpret_cast<const int8_t*>(p + kHeader);
    const size_t nc = n - n0 < kNr ? n - n0 : kNr;
    for (size_t m0 = 0; m0 < m; m0 += kMr) {
      const size_t mr = m - m0 < kMr ? m - m0 : kMr;
      __m256i acc[kMr];
      accumulate(mr, k, a + m0 * a_stride, a_stride, w, acc);
      for (size_t i = 0; i < mr; ++i) {
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(acc[i], bias)), scale);
        f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
        const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), zp);
        const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        const __m128i q8 = _mm_packs_epi16(q16, q16);
        int8_t* dst = c + (m0 + i) * c_stride + n0;
        if (nc == kNr) {
          _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), q8);
        } else {
          int8_t tmp[16];
          _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), q8);
          std::memcpy(dst, tmp, nc);
        }
      }
    }
  }
}

void gemm_i32_avx2(size_t m, size_t n, size_t k, const int8_t* a, size_t a_stride, const void* packed,
                   int32_t* c, size_t c_stride) {
  const size_t block = qgemm_block_bytes(qgemm_avx2, k);
  for (size_t n0 = 0; n0 < n; n0 += kNr) {
    const uint8_t* p = static_cast<const uint8_t*>(packed) + (n0 / kNr) * block;
    const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const int8_t* w = reinterpret_cast<const int8_t*>(p + kHeader);
    const size_t nc = n - n0 < kNr ? n - n0 : kNr;
    for (size_t m0 = 0; m0 < m; m0 += kMr) {
      const size_t mr = m - m0 < kMr ? m - m0 : kMr;
      __m256i acc[kMr];
      accumulate(mr, k, a + m0 * a_stride, a_stride, w, acc);
      for (size_t i = 0; i < mr; ++i) {
        int32_t tmp[kNr];
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(tmp), _mm256_add_epi32(acc[i], bias));
        std::memcpy(c + (m0 + i) * c_stride + n0, tmp, nc * sizeof(int32_t));
      }
    }
  }
}

}  // namespace

const QGemmUkernel qgemm_avx2 = {"qs8_gemm_4x8c8__avx2", Isa::avx2, kMr, kNr, kKr, false, gemm_avx2,
                                 gemm_i32_avx2};

}  // namespace huddle::kernels
