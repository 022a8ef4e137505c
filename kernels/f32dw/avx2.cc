// fp32 depthwise convolution for AVX2 + FMA, 8 channels per step ("c8"); the
// channel tail with vmaskmovps loads and stores.
// Compiled with -mavx2 -mfma: everything here stays in this file.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/f32dw/driver.h"
#include "kernels/f32dw/f32dw.h"

namespace huddle::kernels {
namespace {

// Eight all-ones lanes then eight zero lanes: the mask of the first n lanes starts at 8 - n.
alignas(64) constexpr int32_t kMaskTable[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

struct Ops {
  using V = __m256;
  static constexpr size_t kLanes = 8;
  static __m256i mask(size_t n) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskTable + 8 - n));
  }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load_n(const float* p, size_t n) { return _mm256_maskload_ps(p, mask(n)); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void store_n(float* p, V v, size_t n) { _mm256_maskstore_ps(p, mask(n), v); }
  static V fma(V x, V w, V acc) { return _mm256_fmadd_ps(x, w, acc); }
  static V set1(float v) { return _mm256_set1_ps(v); }
  // max first with v second, so a NaN v passes (as in the reference).
  static V clamp(V v, V lo, V hi) { return _mm256_min_ps(hi, _mm256_max_ps(lo, v)); }
};

constexpr F32DwFn kRun = f32dw_driver<Ops>;

}  // namespace

const F32DwUkernel f32dw_avx2 = {"f32_dwconv_3x3_5x5__avx2_c8", Isa::avx2, Ops::kLanes, kRun};

}  // namespace huddle::kernels
