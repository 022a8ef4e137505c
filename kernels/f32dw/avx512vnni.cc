// fp32 depthwise convolution for AVX-512F (the avx512vnni tier), 16 channels
// per step ("c16"); the channel tail with masked loads and stores.
// Compiled with the AVX-512 flags: everything here stays in this file.
#include "kernels/avx512_intrinsics.h"

#include <cstddef>

#include "kernels/f32dw/driver.h"
#include "kernels/f32dw/f32dw.h"

namespace huddle::kernels {
namespace {

struct Ops {
  using V = __m512;
  static constexpr size_t kLanes = 16;
  static __mmask16 mask(size_t n) { return static_cast<__mmask16>((1u << n) - 1); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load_n(const float* p, size_t n) { return _mm512_maskz_loadu_ps(mask(n), p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void store_n(float* p, V v, size_t n) { _mm512_mask_storeu_ps(p, mask(n), v); }
  static V fma(V x, V w, V acc) { return _mm512_fmadd_ps(x, w, acc); }
  static V set1(float v) { return _mm512_set1_ps(v); }
  // max first with v second, so a NaN v passes (as in the reference).
  static V clamp(V v, V lo, V hi) { return _mm512_min_ps(hi, _mm512_max_ps(lo, v)); }
};

constexpr F32DwFn kRun = f32dw_driver<Ops>;

}  // namespace

const F32DwUkernel f32dw_avx512vnni = {"f32_dwconv_3x3_5x5__avx512f_c16", Isa::avx512vnni, Ops::kLanes, kRun};

}  // namespace huddle::kernels
