// int8 GEMM for baseline AArch64 NEON: 2x8 tile, K in groups of 16 ("c16").
// Pairs of int8 products are formed with SMULL + SMLAL2 into int16 (exact:
// weights lie in [-127, 127], so |a*w + a'*w'| <= 32512) and added into int32
// lanes with SADALP; lanes are reduced once per tile.
#include <arm_neon.h>

#include <cstring>

#include "kernels/gemm/gemm.h"

namespace huddle::kernels {
namespace {

constexpr size_t kMr = 2, kNr = 8, kKr = 16;
constexpr size_t kHeader = kNr * (sizeof(int32_t) + sizeof(float));

// Sums of the tile rows: out[i][0] columns 0-3, out[i][1] columns 4-7.
inline void accumulate(size_t mr, size_t k, const int8_t* a, size_t a_stride, const int8_t* w,
                       int32x4_t out[kMr][2]) {
  const int8_t* ar[kMr];
  for (size_t i = 0; i < kMr; ++i) ar[i] = a + (i < mr ? i : mr - 1) * a_stride;
  int32x4_t acc[kMr][kNr];
  for (size_t i = 0; i < kMr; ++i)
    for (size_t j = 0; j < kNr; ++j) acc[i][j] = vdupq_n_s32(0);
  auto step = [&](const int8x16_t va[kMr]) {
    for (size_t j = 0; j < kNr; ++j) {
      const int8x16_t vb = vld1q_s8(w + j * kKr);
      for (size_t i = 0; i < kMr; ++i) {
        int16x8_t p = vmull_s8(vget_low_s8(va[i]), vget_low_s8(vb));
        p = vmlal_high_s8(p, va[i], vb);
        acc[i][j] = vpadalq_s16(acc[i][j], p);
      }
    }
    w += kNr * kKr;
  };
  size_t kk = 0;
  for (; kk + kKr <= k; kk += kKr) {
    int8x16_t va[kMr];
    for (size_t i = 0; i < kMr; ++i) va[i] = vld1q_s8(ar[i] + kk);
    step(va);
  }
  if (kk < k) {
    int8x16_t va[kMr];
    for (size_t i = 0; i < kMr; ++i) {
      int8_t tmp[kKr] = {};
      std::memcpy(tmp, ar[i] + kk, k - kk);
      va[i] = vld1q_s8(tmp);
    }
    step(va);
  }
  for (size_t i = 0; i < kMr; ++i) {
    out[i][0] = vpaddq_s32(vpaddq_s32(acc[i][0], acc[i][1]), vpaddq_s32(acc[i][2], acc[i][3]));
    out[i][1] = vpaddq_s32(vpaddq_s32(acc[i][4], acc[i][5]), vpaddq_s32(acc[i][6], acc[i][7]));
  }
}

void gemm_neon(size_t m, size_t n, size_t k, const int8_t* a, size_t a_stride, const void* packed, int8_t* c,
               size_t c_stride, const QGemmOutput& out) {
  const size_t block = qgemm_block_bytes(qgemm_neon, k);
  const float32x4_t lo = vdupq_n_f32(static_cast<float>(out.min - out.zero_point));
  const float32x4_t hi = vdupq_n_f32(static_cast<float>(out.max - out.zero_point));
  const int32x4_t zp = vdupq_n_s32(out.zero_point);
  for (size_t n0 = 0; n0 < n; n0 += kNr) {
    const uint8_t* p = static_cast<const uint8_t*>(packed) + (n0 / kNr) * block;
    const int32_t* bias = reinterpret_cast<const int32_t*>(p);
    const float* scale = reinterpret_cast<const float*>(p + kNr * sizeof(int32_t));
    const int8_t* w = reinterpret_cast<const int8_t*>(p + kHeader);
    const size_t nc = n - n0 < kNr ? n - n0 : kNr;
    for (size_t m0 = 0; m0 < m; m0 += kMr) {
      const size_t mr = m - m0 < kMr ? m - m0 : kMr;
      int32x4_t acc[kMr][2];
      accumulate(mr, k, a + m0 * a_stride, a_stride, w, acc);
      for (size_t i = 0; i < mr; ++i) {
        int32x4_t q[2];
        for (size_t h = 0; h < 2; ++h) {
          float32x4_t f = vmulq_f32(vcvtq_f32_s32(vaddq_s32(acc[i][h], vld1q_s32(bias + 4 * h))),
                                    vld1q_f32(scale + 4 * h));
          f = vminq_f32(vmaxq_f32(f, lo), hi);
          q[h] = vaddq_s32(vcvtnq_s32_f32(f), zp);
        }
        const int8x8_t q8 = vqmovn_s16(vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1])));
        int8_t* dst = c + (m0 + i) * c_stride + n0;
        if (nc == kNr) {
          vst1_s8(dst, q8);
        } else {
          int8_t tmp[kNr];
          vst1_s8(tmp, q8);
          std::memcpy(dst, tmp, nc);
        }
      }
    }
  }
}

void gemm_i32_neon(size_t m, size_t n, size_t k, const int8_t* a, size_t a_stride, const void* packed,
                   int32_t* c, size_t c_stride) {
  const size_t block = qgemm_block_bytes(qgemm_neon, k);
  for (size_t n0 = 0; n0 < n; n0 += kNr) {
    const uint8_t* p = static_cast<const uint8_t*>(packed) + (n0 / kNr) * block;
    const int32_t* bias = reinterpret_cast<const int32_t*>(p);
    const int8_t* w = reinterpret_cast<const int8_t*>(p + kHeader);
    const size_t nc = n - n0 < kNr ? n - n0 : kNr;
    for (size_t m0 = 0; m0 < m; m0 += kMr) {
      const size_t mr = m - m0 < kMr ? m - m0 : kMr;
      int32x4_t acc[kMr][2];
      accumulate(mr, k, a + m0 * a_stride, a_stride, w, acc);
      for (size_t i = 0; i < mr; ++i) {
        int32_t tmp[kNr];
        vst1q_s32(tmp, vaddq_s32(acc[i][0], vld1q_s32(bias)));
        vst1q_s32(tmp + 4, vaddq_s32(acc[i][1], vld1q_s32(bias + 4)));
        std::memcpy(c + (m0 + i) * c_stride + n0, tmp, nc * sizeof(int32_t));
      }
    }
  }
}

}  // namespace

const QGemmUkernel qgemm_neon = {
    "qs8_gemm_2x8c16__neon_mlal", Isa::neon, kMr, kNr, kKr, false, gemm_neon, gemm_i32_neon};

}  // namespace huddle::kernels
