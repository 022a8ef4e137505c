// The epilogue shared by the AArch64 GEMM tiles: bias, requantisation or the
// int32 form, and the store of up to 8 columns of one row. Internal linkage:
// each variant file (compiled for its own -march) gets its own copy.
#pragma once

#include <arm_neon.h>

#include <cstring>

#include "kernels/gemm/gemm.h"

namespace huddle::kernels {
namespace {

// Stores row sums v[0] (columns 0-3) and v[1] (columns 4-7) plus the block's
// bias (and requantised with its scales when Out is int8_t) into nc columns.
template <class Out>
inline void neon_store_row8(const int32x4_t v[2], const int32_t* bias, const float* scale, size_t nc,
                            Out* dst, const QGemmOutput& out) {
  const int32x4_t s0 = vaddq_s32(v[0], vld1q_s32(bias)), s1 = vaddq_s32(v[1], vld1q_s32(bias + 4));
  if constexpr (sizeof(Out) == 1) {
    const float32x4_t lo = vdupq_n_f32(static_cast<float>(out.min - out.zero_point));
    const float32x4_t hi = vdupq_n_f32(static_cast<float>(out.max - out.zero_point));
    const int32x4_t zp = vdupq_n_s32(out.zero_point);
    float32x4_t f0 = vmulq_f32(vcvtq_f32_s32(s0), vld1q_f32(scale));
    float32x4_t f1 = vmulq_f32(vcvtq_f32_s32(s1), vld1q_f32(scale + 4));
    f0 = vminq_f32(vmaxq_f32(f0, lo), hi);
    f1 = vminq_f32(vmaxq_f32(f1, lo), hi);
    const int32x4_t q0 = vaddq_s32(vcvtnq_s32_f32(f0), zp), q1 = vaddq_s32(vcvtnq_s32_f32(f1), zp);
    const int8x8_t q8 = vqmovn_s16(vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1)));
    if (nc == 8) {
      vst1_s8(dst, q8);
    } else {
      int8_t tmp[8];
      vst1_s8(tmp, q8);
      std::memcpy(dst, tmp, nc);
    }
  } else {
    int32_t tmp[8];
    vst1q_s32(tmp, s0);
    vst1q_s32(tmp + 4, s1);
    std::memcpy(dst, tmp, nc * sizeof(int32_t));
  }
}

}  // namespace
}  // namespace huddle::kernels
