// int8 GEMM for baseline AArch64 NEON: 2x8 tile, K in groups of 16 ("c16").
// Pairs of int8 products are formed with SMULL + SMLAL2 into int16 (exact:
// weights lie in [-127, 127], so |a*w + a'*w'| <= 32512) and added into int32
// lanes with SADALP; lanes are reduced once per tile.
#include <arm_neon.h>

#include <cstring>

#include "kernels/gemm/driver.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/neon_asm.h"
#include "kernels/gemm/neon_store.h"

namespace huddle::kernels {
namespace {

// The main loop of the tile: `blocks` steps of 16 along K for 2 rows x 8
// columns, accumulators in v16-v31 (row 0: v16-v23, row 1: v24-v31). One asm
// loop because GCC, given the intrinsics, loads all eight weight vectors and
// forms all sixteen products first, which leaves too few registers and spills
// four accumulators on every step (67 instructions a step instead of 54).
inline void mlal_2x8_k16(size_t blocks, const int8_t* a0, const int8_t* a1, const int8_t*& w,
                         int32x4_t (&acc)[2][8]) {
  __asm__ volatile(
      HUDDLE_ASM_LOAD_V16_V31
      "1:\n"
      "ldr q0, [%[a0]], #16\n"
      "ldr q1, [%[a1]], #16\n"
      "ld1 {v2.16b-v5.16b}, [%[w]], #64\n"
      "smull v6.8h, v0.8b, v2.8b\n"
      "smull v7.8h, v1.8b, v2.8b\n"
      "smlal2 v6.8h, v0.16b, v2.16b\n"
      "smlal2 v7.8h, v1.16b, v2.16b\n"
      "sadalp v16.4s, v6.8h\n"
      "sadalp v24.4s, v7.8h\n"
      "smull v6.8h, v0.8b, v3.8b\n"
      "smull v7.8h, v1.8b, v3.8b\n"
      "smlal2 v6.8h, v0.16b, v3.16b\n"
      "smlal2 v7.8h, v1.16b, v3.16b\n"
      "sadalp v17.4s, v6.8h\n"
      "sadalp v25.4s, v7.8h\n"
      "smull v6.8h, v0.8b, v4.8b\n"
      "smull v7.8h, v1.8b, v4.8b\n"
      "smlal2 v6.8h, v0.16b, v4.16b\n"
      "smlal2 v7.8h, v1.16b, v4.16b\n"
      "sadalp v18.4s, v6.8h\n"
      "sadalp v26.4s, v7.8h\n"
      "smull v6.8h, v0.8b, v5.8b\n"
      "smull v7.8h, v1.8b, v5.8b\n"
      "smlal2 v6.8h, v0.16b, v5.16b\n"
      "smlal2 v7.8h, v1.16b, v5.16b\n"
      "sadalp v19.4s, v6.8h\n"
      "sadalp v27.4s, v7.8h\n"
      "ld1 {v2.16b-v5.16b}, [%[w]], #64\n"
      "smull v6.8h, v0.8b, v2.8b\n"
      "smull v7.8h, v1.8b, v2.8b\n"
      "smlal2 v6.8h, v0.16b, v2.16b\n"
      "smlal2 v7.8h, v1.16b, v2.16b\n"
      "sadalp v20.4s, v6.8h\n"
      "sadalp v28.4s, v7.8h\n"
      "smull v6.8h, v0.8b, v3.8b\n"
      "smull v7.8h, v1.8b, v3.8b\n"
      "smlal2 v6.8h, v0.16b, v3.16b\n"
      "smlal2 v7.8h, v1.16b, v3.16b\n"
      "sadalp v21.4s, v6.8h\n"
      "sadalp v29.4s, v7.8h\n"
      "smull v6.8h, v0.8b, v4.8b\n"
      "smull v7.8h, v1.8b, v4.8b\n"
      "smlal2 v6.8h, v0.16b, v4.16b\n"
      "smlal2 v7.8h, v1.16b, v4.16b\n"
      "sadalp v22.4s, v6.8h\n"
      "sadalp v30.4s, v7.8h\n"
      "smull v6.8h, v0.8b, v5.8b\n"
      "smull v7.8h, v1.8b, v5.8b\n"
      "smlal2 v6.8h, v0.16b, v5.16b\n"
      "smlal2 v7.8h, v1.16b, v5.16b\n"
      "sadalp v23.4s, v6.8h\n"
      "sadalp v31.4s, v7.8h\n"
      "subs %[n], %[n], #1\n"
      "b.ne 1b\n"
      HUDDLE_ASM_STORE_V16_V31
      : [a0] "+r"(a0), [a1] "+r"(a1), [w] "+r"(w), [n] "+r"(blocks)
      : [acc] "r"(&acc[0][0])
      : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v18", "v19", "v20", "v21",
        "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
}

struct NeonTile {
  static constexpr size_t kMr = 2, kNr = 8, kKr = 16;
  static constexpr size_t kHeader = kNr * (sizeof(int32_t) + sizeof(float));

  template <class Out>
  static void run(size_t mr, size_t nc, size_t kc, size_t ks, const int8_t* base, const size_t* offsets,
                  const int8_t* zero, const uint8_t* block, Out* c, size_t c_stride, const QGemmOutput& out) {
    const int8_t* w = reinterpret_cast<const int8_t*>(block + kHeader);
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
    for (size_t s = 0; s < ks; ++s) {
      const int8_t* ar[kMr];
      for (size_t i = 0; i < kMr; ++i) ar[i] = indirect_row(base, offsets[s * kMr + i], zero);
      int8x16_t va[kMr];
      const size_t blocks = kc / kKr, kk = blocks * kKr;
      if (blocks) mlal_2x8_k16(blocks, ar[0], ar[1], w, acc);
      if (kk < kc) {
        for (size_t i = 0; i < kMr; ++i) {
          const Tail16 t = load_tail_16(ar[i] + kk, kc - kk);
          va[i] = vreinterpretq_s8_u64(vcombine_u64(vcreate_u64(t.lo), vcreate_u64(t.hi)));
        }
        step(va);
      }
    }
    const int32_t* bias = reinterpret_cast<const int32_t*>(block);
    const float* scale = reinterpret_cast<const float*>(block + kNr * sizeof(int32_t));
    const NeonEpilogue8<Out> epilogue(bias, scale, out);
    for (size_t i = 0; i < kMr && i < mr; ++i) {
      const int32x4_t v[2] = {
          vpaddq_s32(vpaddq_s32(acc[i][0], acc[i][1]), vpaddq_s32(acc[i][2], acc[i][3])),
          vpaddq_s32(vpaddq_s32(acc[i][4], acc[i][5]), vpaddq_s32(acc[i][6], acc[i][7])),
      };
      epilogue.store(v, nc, c + i * c_stride);
    }
  }
};

using Neon = TileEntryPoints<NeonTile>;

}  // namespace

const QGemmUkernel qgemm_neon = {
    "qs8_gemm_2x8c16__neon_mlal", Isa::neon, 2, 8, 16, 0, Neon::gemm, Neon::gemm_i32, Neon::igemm};

}  // namespace huddle::kernels
