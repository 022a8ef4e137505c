// fp32 GEMM for AVX-512F: 8x32 tile, one broadcast of A per row and two
// vectors of W per k, 16 accumulators. Each output accumulates in increasing
// k like the reference, with fused multiply-adds.
// Compiled with the AVX-512 flags (the avx512vnni tier): everything here stays in this file.
#include <immintrin.h>

#include "kernels/f32/driver.h"
#include "kernels/f32/f32.h"

namespace huddle::kernels {
namespace {

// The tile f32gemm driver runs: kMr rows times kNr columns.
struct Tile {
  static constexpr size_t kMr = 8, kNr = 32;
  __m512 acc[kMr][2];

  static void init(Tile& t, const float* bias) {
    const __m512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
    for (size_t i = 0; i < kMr; ++i) t.acc[i][0] = b0, t.acc[i][1] = b1;
  }

  // Adds rows[i][0..kc) times the kc x kNr weights at w.
  // Taken and returned by value so the compiler keeps the accumulators in registers.
  static Tile accumulate(Tile t, const float* const rows[kMr], size_t kc, const float* w) {
    for (size_t kk = 0; kk < kc; ++kk, w += kNr) {
      const __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16);
      for (size_t i = 0; i < kMr; ++i) {
        const __m512 a = _mm512_set1_ps(rows[i][kk]);
        t.acc[i][0] = _mm512_fmadd_ps(a, w0, t.acc[i][0]);
        t.acc[i][1] = _mm512_fmadd_ps(a, w1, t.acc[i][1]);
      }
    }
    return t;
  }

  // max and min of all lanes, spelled with a full mask: GCC 12's _mm512_max_ps
  // and _mm512_min_ps trip -Wmaybe-uninitialized on their undefined pass-through.
  static __m512 max16(__m512 x, __m512 y) { return _mm512_mask_max_ps(x, 0xffff, x, y); }
  static __m512 min16(__m512 x, __m512 y) { return _mm512_mask_min_ps(x, 0xffff, x, y); }

  // Clamps and writes rows < mr, columns < nc (max first, so NaN passes as in ref).
  static void store(const Tile& t, size_t mr, size_t nc, float* c, size_t c_stride, const F32Clamp& cl) {
    const __m512 lo = _mm512_set1_ps(cl.min), hi = _mm512_set1_ps(cl.max);
    for (size_t i = 0; i < mr; ++i) {
      const __m512 v0 = min16(hi, max16(lo, t.acc[i][0]));
      const __m512 v1 = min16(hi, max16(lo, t.acc[i][1]));
      float* dst = c + i * c_stride;
      if (nc == kNr) {
        _mm512_storeu_ps(dst, v0);
        _mm512_storeu_ps(dst + 16, v1);
      } else {
        // Masked stores write only the columns < nc.
        const uint32_t bits = (uint32_t{1} << nc) - 1;
        _mm512_mask_storeu_ps(dst, static_cast<__mmask16>(bits), v0);
        _mm512_mask_storeu_ps(dst + 16, static_cast<__mmask16>(bits >> 16), v1);
      }
    }
  }
};

// The variant's entry points.
constexpr F32GemmFn kGemm = f32gemm_driver<Tile>;
constexpr F32IGemmFn kIGemm = f32igemm_driver<Tile>;

}  // namespace

const F32GemmUkernel f32gemm_avx512vnni = {
    "f32_gemm_8x32__avx512f", Isa::avx512vnni, Tile::kMr, Tile::kNr, kGemm, kIGemm};

}  // namespace huddle::kernels
