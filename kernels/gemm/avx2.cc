// int8 GEMM for AVX2: 4x8 tile, K in groups of 8 ("c8"). Operands are widened
// to int16 and multiplied with vpmaddwd, which is exact (vpmaddubsw would
// saturate); partial sums are reduced across the group once per tile.
// Compiled with -mavx2 -mfma: everything here stays in this file.
#include <immintrin.h>

#include <cstring>

#include "kernels/gemm/driver.h"
#include "kernels/gemm/gemm.h"

namespace huddle::kernels {
namespace {

inline __m256i widen8(int64_t v) { return _mm256_cvtepi8_epi16(_mm_set1_epi64x(v)); }  // in both lanes

struct Avx2Tile {
  static constexpr size_t kMr = 4, kNr = 8, kKr = 8;
  static constexpr size_t kHeader = kNr * (sizeof(int32_t) + sizeof(float));

  template <class Out>
  static void run(size_t mr, size_t nc, size_t kc, size_t ks, const int8_t* base, const size_t* offsets,
                  const int8_t* zero, const uint8_t* block, Out* c, size_t c_stride, const QGemmOutput& out) {
    const int8_t* w = reinterpret_cast<const int8_t*>(block + kHeader);
    __m256i acc[kMr][4];
    for (size_t i = 0; i < kMr; ++i)
      for (size_t j = 0; j < 4; ++j) acc[i][j] = _mm256_setzero_si256();
    auto step = [&](const __m256i va[kMr]) {
      for (size_t j = 0; j < 4; ++j) {
        const __m256i vb =
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + j * 2 * kKr)));
        for (size_t i = 0; i < kMr; ++i)
          acc[i][j] = _mm256_add_epi32(acc[i][j], _mm256_madd_epi16(va[i], vb));
      }
      w += kNr * kKr;
    };
    for (size_t s = 0; s < ks; ++s) {
      const int8_t* ar[kMr];
      for (size_t i = 0; i < kMr; ++i) ar[i] = indirect_row(base, offsets[s * kMr + i], zero);
      size_t kk = 0;
      __m256i va[kMr];
      for (; kk + kKr <= kc; kk += kKr) {
        for (size_t i = 0; i < kMr; ++i) {
          int64_t v;
          std::memcpy(&v, ar[i] + kk, sizeof v);
          va[i] = widen8(v);
        }
        step(va);
      }
      if (kk < kc) {
        for (size_t i = 0; i < kMr; ++i) {
          va[i] = widen8(static_cast<int64_t>(load_tail_u64(ar[i] + kk, kc - kk)));
        }
        step(va);
      }
    }
    // acc[i][j]: low lane 4 partial sums of column 2j, high lane of column 2j+1.
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i bias = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block));
    for (size_t i = 0; i < mr; ++i) {
      const __m256i t01 = _mm256_hadd_epi32(acc[i][0], acc[i][1]);
      const __m256i t23 = _mm256_hadd_epi32(acc[i][2], acc[i][3]);
      const __m256i sum =
          _mm256_add_epi32(_mm256_permutevar8x32_epi32(_mm256_hadd_epi32(t01, t23), order), bias);
      Out* dst = c + i * c_stride;
      if constexpr (sizeof(Out) == 1) {
        const __m256 scale = _mm256_loadu_ps(reinterpret_cast<const float*>(block + kNr * sizeof(int32_t)));
        __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(sum), scale);
        f = _mm256_max_ps(f, _mm256_set1_ps(static_cast<float>(out.min - out.zero_point)));
        f = _mm256_min_ps(f, _mm256_set1_ps(static_cast<float>(out.max - out.zero_point)));
        const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), _mm256_set1_epi32(out.zero_point));
        const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        const __m128i q8 = _mm_packs_epi16(q16, q16);
        if (nc == kNr) {
          _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), q8);
        } else {
          int8_t tmp[16];
          _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), q8);
          std::memcpy(dst, tmp, nc);
        }
      } else {
        int32_t tmp[kNr];
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(tmp), sum);
        std::memcpy(dst, tmp, nc * sizeof(int32_t));
      }
    }
  }
};

using Avx2 = TileEntryPoints<Avx2Tile>;

}  // namespace

const QGemmUkernel qgemm_avx2 = {"qs8_gemm_4x8c8__avx2", Isa::avx2,  4, 8, 8, 0, Avx2::gemm,
                                 Avx2::gemm_i32,         Avx2::igemm};

}  // namespace huddle::kernels
