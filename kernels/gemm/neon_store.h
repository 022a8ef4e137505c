// The epilogue shared by the AArch64 GEMM tiles: bias, requantisation or the
// int32 form, and the store of up to 8 columns of one row. Internal linkage:
// each variant file (compiled for its own -march) gets its own copy.
#pragma once

#include <arm_neon.h>

#include <cstring>

#include "kernels/gemm/gemm.h"

namespace huddle::kernels {
namespace {

// The output step of 8 columns of a tile: made once per tile (bias, scales and
// the clamp bounds live in registers), then store() once per row. Building it
// per row cost a third of MobileNetV2's GEMM time, whose pointwise layers have
// short K: the partial-row memcpy, a library call, let GCC assume it could
// change `out`, so every row reloaded and reconverted the bounds.
template <class Out>
struct NeonEpilogue8 {
  int32x4_t bias[2], zp;
  float32x4_t scale[2], lo, hi;

  NeonEpilogue8(const int32_t* b, const float* s, const QGemmOutput& out) {
    bias[0] = vld1q_s32(b), bias[1] = vld1q_s32(b + 4);
    if constexpr (sizeof(Out) == 1) {
      scale[0] = vld1q_f32(s), scale[1] = vld1q_f32(s + 4);
      lo = vdupq_n_f32(static_cast<float>(out.min - out.zero_point));
      hi = vdupq_n_f32(static_cast<float>(out.max - out.zero_point));
      zp = vdupq_n_s32(out.zero_point);
    }
  }

  // Stores row sums v[0] (columns 0-3) and v[1] (columns 4-7) plus the bias
  // (requantised when Out is int8_t) into nc <= 8 columns at dst.
  void store(const int32x4_t v[2], size_t nc, Out* dst) const {
    const int32x4_t s0 = vaddq_s32(v[0], bias[0]), s1 = vaddq_s32(v[1], bias[1]);
    if constexpr (sizeof(Out) == 1) {
      float32x4_t f0 = vmulq_f32(vcvtq_f32_s32(s0), scale[0]);
      float32x4_t f1 = vmulq_f32(vcvtq_f32_s32(s1), scale[1]);
      f0 = vminq_f32(vmaxq_f32(f0, lo), hi);
      f1 = vminq_f32(vmaxq_f32(f1, lo), hi);
      const int32x4_t q0 = vaddq_s32(vcvtnq_s32_f32(f0), zp), q1 = vaddq_s32(vcvtnq_s32_f32(f1), zp);
      const int8x8_t q8 = vqmovn_s16(vcombine_s16(vqmovn_s32(q0), vqmovn_s32(q1)));
      if (nc == 8) {
        vst1_s8(dst, q8);
        return;
      }
      // Fixed-size pieces (plain stores, no library call) of the low bytes.
      uint64_t bits = vget_lane_u64(vreinterpret_u64_s8(q8), 0);
      if (nc & 4) {
        const uint32_t w = static_cast<uint32_t>(bits);
        std::memcpy(dst, &w, 4);
        dst += 4, bits >>= 32;
      }
      if (nc & 2) {
        const uint16_t h = static_cast<uint16_t>(bits);
        std::memcpy(dst, &h, 2);
        dst += 2, bits >>= 16;
      }
      if (nc & 1) *dst = static_cast<int8_t>(bits);
    } else {
      int32_t tmp[8];
      vst1q_s32(tmp, s0);
      vst1q_s32(tmp + 4, s1);
      std::memcpy(dst, tmp, nc * sizeof(int32_t));
    }
  }
};

}  // namespace
}  // namespace huddle::kernels
