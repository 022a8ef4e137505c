// fp32 depthwise convolution for AArch64 NEON, 4 channels per step ("c4")
// with FMLA; the channel tail through a small buffer.
#include <arm_neon.h>

#include <cstddef>
#include <cstring>

#include "kernels/f32dw/driver.h"
#include "kernels/f32dw/f32dw.h"

namespace huddle::kernels {
namespace {

struct Ops {
  using V = float32x4_t;
  static constexpr size_t kLanes = 4;
  static V load(const float* p) { return vld1q_f32(p); }
  static V load_n(const float* p, size_t n) {
    float tmp[kLanes] = {};
    std::memcpy(tmp, p, n * sizeof(float));
    return vld1q_f32(tmp);
  }
  static void store(float* p, V v) { vst1q_f32(p, v); }
  static void store_n(float* p, V v, size_t n) {
    float tmp[kLanes];
    vst1q_f32(tmp, v);
    std::memcpy(p, tmp, n * sizeof(float));
  }
  static V fma(V x, V w, V acc) { return vfmaq_f32(acc, x, w); }
  static V set1(float v) { return vdupq_n_f32(v); }
  // FMAX and FMIN return NaN when either input is NaN, so a NaN v passes (as in the reference).
  static V clamp(V v, V lo, V hi) { return vminq_f32(vmaxq_f32(v, lo), hi); }
};

constexpr F32DwFn kRun = f32dw_driver<Ops>;

}  // namespace

const F32DwUkernel f32dw_neon = {"f32_dwconv_3x3_5x5__neon_c4", Isa::neon, Ops::kLanes, kRun};

}  // namespace huddle::kernels
