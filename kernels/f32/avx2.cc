// fp32 GEMM for AVX2 + FMA: 6x16 tile, one broadcast of A per row and two
// vectors of W per k, 12 accumulators. Each output accumulates in increasing
// k like the reference, with fused multiply-adds.
// Compiled with -mavx2 -mfma: everything here stays in this file.
#include <immintrin.h>

#include "kernels/f32/f32.h"

namespace huddle::kernels {
namespace {

constexpr size_t kMr = 6, kNr = 16;

struct Tile {
  __m256 acc[kMr][2];
};

inline void init(Tile& t, const float* bias) {
  const __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
  for (size_t i = 0; i < kMr; ++i) t.acc[i][0] = b0, t.acc[i][1] = b1;
}

// Adds rows[i][0..kc) times the kc x kNr weights at w.
// Taken and returned by value so the compiler keeps the accumulators in registers.
inline Tile accumulate(Tile t, const float* const rows[kMr], size_t kc, const float* w) {
  for (size_t kk = 0; kk < kc; ++kk, w += kNr) {
    const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
    for (size_t i = 0; i < kMr; ++i) {
      const __m256 a = _mm256_broadcast_ss(rows[i] + kk);
      t.acc[i][0] = _mm256_fmadd_ps(a, w0, t.acc[i][0]);
      t.acc[i][1] = _mm256_fmadd_ps(a, w1, t.acc[i][1]);
    }
  }
  return t;
}

// Clamps and writes rows < mr, columns < nc (max first, so NaN passes as in ref).
inline void store(const Tile& t, size_t mr, size_t nc, float* c, size_t c_stride, const F32Clamp& cl) {
  const __m256 lo = _mm256_set1_ps(cl.min), hi = _mm256_set1_ps(cl.max);
  for (size_t i = 0; i < mr; ++i) {
    const __m256 v0 = _mm256_min_ps(hi, _mm256_max_ps(lo, t.acc[i][0]));
    const __m256 v1 = _mm256_min_ps(hi, _mm256_max_ps(lo, t.acc[i][1]));
    float* dst = c + i * c_stride;
    if (nc == kNr) {
      _mm256_storeu_ps(dst, v0);
      _mm256_storeu_ps(dst + 8, v1);
    } else {
      float tmp[kNr];
      _mm256_storeu_ps(tmp, v0);
      _mm256_storeu_ps(tmp + 8, v1);
      for (size_t j = 0; j < nc; ++j) dst[j] = tmp[j];
    }
  }
}

void gemm_avx2(size_t m, size_t n, size_t k, const float* a, size_t a_stride, const void* packed, float* c,
               size_t c_stride, const F32Clamp& cl) {
  const size_t block = kNr * (k + 1);
  for (size_t m0 = 0; m0 < m; m0 += kMr) {
    const size_t mr = m - m0 < kMr ? m - m0 : kMr;
    const float* rows[kMr];
    for (size_t i = 0; i < kMr; ++i) rows[i] = a + (m0 + (i < mr ? i : mr - 1)) * a_stride;
    for (size_t n0 = 0; n0 < n; n0 += kNr) {
      const float* p = static_cast<const float*>(packed) + (n0 / kNr) * block;
      Tile t;
      init(t, p);
      t = accumulate(t, rows, k, p + kNr);
      store(t, mr, n - n0 < kNr ? n - n0 : kNr, c + m0 * c_stride + n0, c_stride, cl);
    }
  }
}

void igemm_avx2(size_t m, size_t n, size_t ks, size_t kc, const size_t* indirection, const float* input,
                const float* zero, const void* packed, float* c, size_t c_stride, const F32Clamp& cl) {
  const size_t block = kNr * (ks * kc + 1);
  for (size_t m0 = 0; m0 < m; m0 += kMr) {
    const size_t mr = m - m0 < kMr ? m - m0 : kMr;
    for (size_t n0 = 0; n0 < n; n0 += kNr) {
      const float* p = static_cast<const float*>(packed) + (n0 / kNr) * block;
      Tile t;
      init(t, p);
      for (size_t s = 0; s < ks; ++s) {
        const float* rows[kMr];
        for (size_t i = 0; i < kMr; ++i) {
          const size_t off = indirection[(m0 + (i < mr ? i : mr - 1)) * ks + s];
          rows[i] = off == kF32IndirectZero ? zero : input + off;
        }
        t = accumulate(t, rows, kc, p + kNr + s * kc * kNr);
      }
      store(t, mr, n - n0 < kNr ? n - n0 : kNr, c + m0 * c_stride + n0, c_stride, cl);
    }
  }
}

}  // namespace

const F32GemmUkernel f32gemm_avx2 = {"f32_gemm_6x16__avx2_fma", Isa::avx2, kMr, kNr, gemm_avx2, igemm_avx2};

}  // namespace huddle::kernels
