// Preprocess for baseline AArch64 NEON: horizontal taps of 8 elements loaded
// by lane and weighted with UMULL/UMLAL; vertical interpolation, normalisation
// and quantisation 8 elements at a time. Bit-exact with ref: the same integer and
// fp32 operations (FCVTNS rounds half to even, as ref does).
#include <arm_neon.h>

#include <cstring>

#include "kernels/preprocess/preprocess.h"

namespace huddle::kernels {
namespace {

// The 8 bytes row[off[0..7]].
inline uint8x8_t taps(const uint8_t* row, const int32_t* off) {
  uint8x8_t v = vdup_n_u8(0);
  v = vld1_lane_u8(row + off[0], v, 0);
  v = vld1_lane_u8(row + off[1], v, 1);
  v = vld1_lane_u8(row + off[2], v, 2);
  v = vld1_lane_u8(row + off[3], v, 3);
  v = vld1_lane_u8(row + off[4], v, 4);
  v = vld1_lane_u8(row + off[5], v, 5);
  v = vld1_lane_u8(row + off[6], v, 6);
  v = vld1_lane_u8(row + off[7], v, 7);
  return v;
}

// Horizontal sums of all elements of one source row.
void horizontal(const PreprocessPlan& plan, const uint8_t* row, int32_t* h) {
  const size_t full = plan.elems & ~size_t{7};
  size_t e = 0;
  for (; e < full; e += 8) {
    const uint16x8_t p0 = vmovl_u8(taps(row, plan.off0 + e)), p1 = vmovl_u8(taps(row, plan.off1 + e));
    const uint16x8x2_t w = vld2q_u16(reinterpret_cast<const uint16_t*>(plan.wx + e));  // (2^F - wx), wx
    uint32x4_t lo = vmull_u16(vget_low_u16(p0), vget_low_u16(w.val[0]));
    lo = vmlal_u16(lo, vget_low_u16(p1), vget_low_u16(w.val[1]));
    uint32x4_t hi = vmull_high_u16(p0, w.val[0]);
    hi = vmlal_high_u16(hi, p1, w.val[1]);
    vst1q_s32(h + e, vreinterpretq_s32_u32(lo));
    vst1q_s32(h + e + 4, vreinterpretq_s32_u32(hi));
  }
  preprocess_horizontal(plan, row, e, plan.elems, h);
}

// The vertically interpolated values of elements e..e+7 (before normalisation).
inline void vertical(const int32_t* h0, const int32_t* h1, float32x4_t w0, float32x4_t w1, size_t e,
                     float32x4_t v[2]) {
  for (size_t i = 0; i < 2; ++i) {
    const float32x4_t a = vcvtq_f32_s32(vld1q_s32(h0 + e + 4 * i));
    const float32x4_t b = vcvtq_f32_s32(vld1q_s32(h1 + e + 4 * i));
    v[i] = vaddq_f32(vmulq_f32(a, w0), vmulq_f32(b, w1));
  }
}

void vertical_f32(const PreprocessPlan& plan, const int32_t* h0, const int32_t* h1, int32_t wy, float* out) {
  const float32x4_t w0 = vdupq_n_f32(static_cast<float>(2048 - wy)), w1 = vdupq_n_f32(static_cast<float>(wy));
  for (size_t e = 0; e < plan.elems; e += 8) {
    float32x4_t y[2];
    vertical(h0, h1, w0, w1, e, y);
    for (size_t i = 0; i < 2; ++i) {
      const size_t at = (e + 4 * i) % 24;
      y[i] = vaddq_f32(vmulq_f32(y[i], vld1q_f32(plan.mul + at)), vld1q_f32(plan.add + at));
    }
    if (plan.elems - e >= 8) {
      vst1q_f32(out + e, y[0]);
      vst1q_f32(out + e + 4, y[1]);
    } else {
      float tmp[8];
      vst1q_f32(tmp, y[0]);
      vst1q_f32(tmp + 4, y[1]);
      std::memcpy(out + e, tmp, (plan.elems - e) * sizeof(float));
    }
  }
}

void vertical_qs8(const PreprocessPlan& plan, const int32_t* h0, const int32_t* h1, int32_t wy, int8_t* out) {
  const float32x4_t w0 = vdupq_n_f32(static_cast<float>(2048 - wy)), w1 = vdupq_n_f32(static_cast<float>(wy));
  const float32x4_t lo = vdupq_n_f32(-128.0f), hi = vdupq_n_f32(127.0f);
  for (size_t e = 0; e < plan.elems; e += 8) {
    float32x4_t v[2];
    vertical(h0, h1, w0, w1, e, v);
    int32x4_t q[2];
    for (size_t i = 0; i < 2; ++i) {
      const size_t at = (e + 4 * i) % 24;
      const float32x4_t f = vaddq_f32(vmulq_f32(v[i], vld1q_f32(plan.qmul + at)), vld1q_f32(plan.qadd + at));
      q[i] = vcvtnq_s32_f32(vminq_f32(vmaxq_f32(f, lo), hi));
    }
    const int8x8_t q8 = vqmovn_s16(vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1])));
    if (plan.elems - e >= 8) {
      vst1_s8(out + e, q8);
    } else {
      int8_t tmp[8];
      vst1_s8(tmp, q8);
      std::memcpy(out + e, tmp, plan.elems - e);
    }
  }
}

void f32_neon(const PreprocessParams& p, const uint8_t* src, float* dst, void* scratch) {
  preprocess_run(p, src, dst, scratch, horizontal, vertical_f32);
}

void qs8_neon(const PreprocessParams& p, const uint8_t* src, int8_t* dst, void* scratch) {
  preprocess_run(p, src, dst, scratch, horizontal, vertical_qs8);
}

}  // namespace

const PreprocessUkernel preprocess_neon = {"u8_resize_bilinear_normalize__neon", Isa::neon, f32_neon,
                                           qs8_neon};

}  // namespace huddle::kernels
