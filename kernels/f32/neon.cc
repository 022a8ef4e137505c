// fp32 GEMM for AArch64 NEON: 8x8 tile, A read 4 k-values per row at a time
// ("ld128") and multiplied into two vectors of W by lane with FMLA, 16
// accumulators. Each output accumulates in increasing k like the reference,
// with fused multiply-adds.
#include <arm_neon.h>

#include "kernels/f32/driver.h"
#include "kernels/f32/f32.h"

namespace huddle::kernels {
namespace {

// The tile f32gemm driver runs: kMr rows times kNr columns.
struct Tile {
  static constexpr size_t kMr = 8, kNr = 8;
  float32x4_t acc[kMr][2];

  static void init(Tile& t, const float* bias) {
    const float32x4_t b0 = vld1q_f32(bias), b1 = vld1q_f32(bias + 4);
    for (size_t i = 0; i < kMr; ++i) t.acc[i][0] = b0, t.acc[i][1] = b1;
  }

  // One k step: lane L of each row's A vector times the kNr weights at w.
  template <int L>
  static void step(Tile& t, const float32x4_t a[kMr], const float* w) {
    const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4);
    for (size_t i = 0; i < kMr; ++i) {
      t.acc[i][0] = vfmaq_laneq_f32(t.acc[i][0], w0, a[i], L);
      t.acc[i][1] = vfmaq_laneq_f32(t.acc[i][1], w1, a[i], L);
    }
  }

  // Adds rows[i][0..kc) times the kc x kNr weights at w.
  // Taken and returned by value so the compiler keeps the accumulators in registers.
  static Tile accumulate(Tile t, const float* const rows[kMr], size_t kc, const float* w) {
    size_t kk = 0;
    for (; kk + 4 <= kc; kk += 4, w += 4 * kNr) {
      float32x4_t a[kMr];
      for (size_t i = 0; i < kMr; ++i) a[i] = vld1q_f32(rows[i] + kk);
      step<0>(t, a, w);
      step<1>(t, a, w + kNr);
      step<2>(t, a, w + 2 * kNr);
      step<3>(t, a, w + 3 * kNr);
    }
    for (; kk < kc; ++kk, w += kNr) {
      float32x4_t a[kMr];
      for (size_t i = 0; i < kMr; ++i) a[i] = vld1q_dup_f32(rows[i] + kk);
      step<0>(t, a, w);
    }
    return t;
  }

  // Clamps and writes rows < mr, columns < nc.
  static void store(const Tile& t, size_t mr, size_t nc, float* c, size_t c_stride, const F32Clamp& cl) {
    const float32x4_t lo = vdupq_n_f32(cl.min), hi = vdupq_n_f32(cl.max);
    for (size_t i = 0; i < mr; ++i) {
      const float32x4_t v0 = vminq_f32(vmaxq_f32(t.acc[i][0], lo), hi);
      const float32x4_t v1 = vminq_f32(vmaxq_f32(t.acc[i][1], lo), hi);
      float* dst = c + i * c_stride;
      if (nc == kNr) {
        vst1q_f32(dst, v0);
        vst1q_f32(dst + 4, v1);
      } else {
        float tmp[kNr];
        vst1q_f32(tmp, v0);
        vst1q_f32(tmp + 4, v1);
        for (size_t j = 0; j < nc; ++j) dst[j] = tmp[j];
      }
    }
  }
};

// The variant's entry points.
constexpr F32GemmFn kGemm = f32gemm_driver<Tile>;
constexpr F32IGemmFn kIGemm = f32igemm_driver<Tile>;

}  // namespace

const F32GemmUkernel f32gemm_neon = {
    "f32_gemm_8x8__aarch64_neonfma_lane_ld128", Isa::neon, Tile::kMr, Tile::kNr, kGemm, kIGemm};

}  // namespace huddle::kernels
