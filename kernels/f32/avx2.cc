// fp32 GEMM for AVX2 + FMA: 6x16 tile, one broadcast of A per row and two
// vectors of W per k, 12 accumulators. Each output accumulates in increasing
// k like the reference, with fused multiply-adds.
// Compiled with -mavx2 -mfma: everything here stays in this file.
#include <immintrin.h>

#include "kernels/f32/driver.h"
#include "kernels/f32/f32.h"

namespace huddle::kernels {
namespace {

// The tile f32gemm driver runs: kMr rows times kNr columns.
struct Tile {
  static constexpr size_t kMr = 6, kNr = 16;
  __m256 acc[kMr][2];

  static void init(Tile& t, const float* bias) {
    const __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
    for (size_t i = 0; i < kMr; ++i) t.acc[i][0] = b0, t.acc[i][1] = b1;
  }

  // Adds rows[i][0..kc) times the kc x kNr weights at w.
  // Taken and returned by value so the compiler keeps the accumulators in registers.
  static Tile accumulate(Tile t, const float* const rows[kMr], size_t kc, const float* w) {
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
  static void store(const Tile& t, size_t mr, size_t nc, float* c, size_t c_stride, const F32Clamp& cl) {
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
};

// The variant's entry points.
constexpr F32GemmFn kGemm = f32gemm_driver<Tile>;
constexpr F32IGemmFn kIGemm = f32igemm_driver<Tile>;

}  // namespace

const F32GemmUkernel f32gemm_avx2 = {
    "f32_gemm_6x16__avx2_fma", Isa::avx2, Tile::kMr, Tile::kNr, kGemm, kIGemm};

}  // namespace huddle::kernels
