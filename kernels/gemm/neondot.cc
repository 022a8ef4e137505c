// int8 GEMM for AArch64 with the dot-product extension: 4x16 tile, K in
// groups of 4 ("c4"). SDOT (by element) adds four int8 products of one row of
// A into each int32 lane: no widening and no final reduction.
#include <arm_neon.h>

#include <cstring>

#include "kernels/gemm/driver.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/neon_asm.h"
#include "kernels/gemm/neon_store.h"

namespace huddle::kernels {
namespace {

// The main loop of the tile: `blocks` steps of 16 along K for 4 rows x 16
// columns, 64 SDOT per step, accumulators in v16-v31. Written as one asm loop
// because GCC hoists the weight loads of all four groups of a step ahead of
// the dot products, which needs more than the 32 vector registers and spills
// accumulators on every step.
inline void sdot_4x16_k16(size_t blocks, const int8_t* a0, const int8_t* a1, const int8_t* a2,
                          const int8_t* a3, const int8_t*& w, int32x4_t (&acc)[4][4]) {
  __asm__ volatile(
      HUDDLE_ASM_LOAD_V16_V31
      "1:\n"
      "ldr q0, [%[a0]], #16\n"
      "ldr q1, [%[a1]], #16\n"
      "ldr q2, [%[a2]], #16\n"
      "ldr q3, [%[a3]], #16\n"
      "ld1 {v4.16b-v7.16b}, [%[w]], #64\n"
      "sdot v16.4s, v4.16b, v0.4b[0]\n"
      "sdot v17.4s, v5.16b, v0.4b[0]\n"
      "sdot v18.4s, v6.16b, v0.4b[0]\n"
      "sdot v19.4s, v7.16b, v0.4b[0]\n"
      "sdot v20.4s, v4.16b, v1.4b[0]\n"
      "sdot v21.4s, v5.16b, v1.4b[0]\n"
      "sdot v22.4s, v6.16b, v1.4b[0]\n"
      "sdot v23.4s, v7.16b, v1.4b[0]\n"
      "sdot v24.4s, v4.16b, v2.4b[0]\n"
      "sdot v25.4s, v5.16b, v2.4b[0]\n"
      "sdot v26.4s, v6.16b, v2.4b[0]\n"
      "sdot v27.4s, v7.16b, v2.4b[0]\n"
      "sdot v28.4s, v4.16b, v3.4b[0]\n"
      "sdot v29.4s, v5.16b, v3.4b[0]\n"
      "sdot v30.4s, v6.16b, v3.4b[0]\n"
      "sdot v31.4s, v7.16b, v3.4b[0]\n"
      "ld1 {v4.16b-v7.16b}, [%[w]], #64\n"
      "sdot v16.4s, v4.16b, v0.4b[1]\n"
      "sdot v17.4s, v5.16b, v0.4b[1]\n"
      "sdot v18.4s, v6.16b, v0.4b[1]\n"
      "sdot v19.4s, v7.16b, v0.4b[1]\n"
      "sdot v20.4s, v4.16b, v1.4b[1]\n"
      "sdot v21.4s, v5.16b, v1.4b[1]\n"
      "sdot v22.4s, v6.16b, v1.4b[1]\n"
      "sdot v23.4s, v7.16b, v1.4b[1]\n"
      "sdot v24.4s, v4.16b, v2.4b[1]\n"
      "sdot v25.4s, v5.16b, v2.4b[1]\n"
      "sdot v26.4s, v6.16b, v2.4b[1]\n"
      "sdot v27.4s, v7.16b, v2.4b[1]\n"
      "sdot v28.4s, v4.16b, v3.4b[1]\n"
      "sdot v29.4s, v5.16b, v3.4b[1]\n"
      "sdot v30.4s, v6.16b, v3.4b[1]\n"
      "sdot v31.4s, v7.16b, v3.4b[1]\n"
      "ld1 {v4.16b-v7.16b}, [%[w]], #64\n"
      "sdot v16.4s, v4.16b, v0.4b[2]\n"
      "sdot v17.4s, v5.16b, v0.4b[2]\n"
      "sdot v18.4s, v6.16b, v0.4b[2]\n"
      "sdot v19.4s, v7.16b, v0.4b[2]\n"
      "sdot v20.4s, v4.16b, v1.4b[2]\n"
      "sdot v21.4s, v5.16b, v1.4b[2]\n"
      "sdot v22.4s, v6.16b, v1.4b[2]\n"
      "sdot v23.4s, v7.16b, v1.4b[2]\n"
      "sdot v24.4s, v4.16b, v2.4b[2]\n"
      "sdot v25.4s, v5.16b, v2.4b[2]\n"
      "sdot v26.4s, v6.16b, v2.4b[2]\n"
      "sdot v27.4s, v7.16b, v2.4b[2]\n"
      "sdot v28.4s, v4.16b, v3.4b[2]\n"
      "sdot v29.4s, v5.16b, v3.4b[2]\n"
      "sdot v30.4s, v6.16b, v3.4b[2]\n"
      "sdot v31.4s, v7.16b, v3.4b[2]\n"
      "ld1 {v4.16b-v7.16b}, [%[w]], #64\n"
      "sdot v16.4s, v4.16b, v0.4b[3]\n"
      "sdot v17.4s, v5.16b, v0.4b[3]\n"
      "sdot v18.4s, v6.16b, v0.4b[3]\n"
      "sdot v19.4s, v7.16b, v0.4b[3]\n"
      "sdot v20.4s, v4.16b, v1.4b[3]\n"
      "sdot v21.4s, v5.16b, v1.4b[3]\n"
      "sdot v22.4s, v6.16b, v1.4b[3]\n"
      "sdot v23.4s, v7.16b, v1.4b[3]\n"
      "sdot v24.4s, v4.16b, v2.4b[3]\n"
      "sdot v25.4s, v5.16b, v2.4b[3]\n"
      "sdot v26.4s, v6.16b, v2.4b[3]\n"
      "sdot v27.4s, v7.16b, v2.4b[3]\n"
      "sdot v28.4s, v4.16b, v3.4b[3]\n"
      "sdot v29.4s, v5.16b, v3.4b[3]\n"
      "sdot v30.4s, v6.16b, v3.4b[3]\n"
      "sdot v31.4s, v7.16b, v3.4b[3]\n"
      "subs %[n], %[n], #1\n"
      "b.ne 1b\n"
      HUDDLE_ASM_STORE_V16_V31
      : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [n] "+r"(blocks)
      : [acc] "r"(&acc[0][0])
      : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v18", "v19", "v20",
        "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
}

struct NeonDotTile {
  static constexpr size_t kMr = 4, kNr = 16, kKr = 4;
  static constexpr size_t kHeader = kNr * (sizeof(int32_t) + sizeof(float));

  template <class Out>
  static void run(size_t mr, size_t nc, size_t kc, size_t ks, const int8_t* base, const size_t* offsets,
                  const int8_t* zero, const uint8_t* block, Out* c, size_t c_stride, const QGemmOutput& out) {
    const int8_t* w = reinterpret_cast<const int8_t*>(block + kHeader);
    int32x4_t acc[kMr][4];
    for (size_t i = 0; i < kMr; ++i)
      for (size_t j = 0; j < 4; ++j) acc[i][j] = vdupq_n_s32(0);
        // One group of 4 along K: lane L of each row's 16 loaded bytes.
#define HUDDLE_SDOT_GROUP(L)                                              \
  do {                                                                    \
    const int8x16x4_t b = vld1q_s8_x4(w); /* one LD1 of four registers */ \
    w += kNr * kKr;                                                       \
    for (size_t i = 0; i < kMr; ++i) {                                    \
      acc[i][0] = vdotq_laneq_s32(acc[i][0], b.val[0], va[i], L);         \
      acc[i][1] = vdotq_laneq_s32(acc[i][1], b.val[1], va[i], L);         \
      acc[i][2] = vdotq_laneq_s32(acc[i][2], b.val[2], va[i], L);         \
      acc[i][3] = vdotq_laneq_s32(acc[i][3], b.val[3], va[i], L);         \
    }                                                                     \
  } while (0)
    for (size_t s = 0; s < ks; ++s) {
      const int8_t* ar[kMr];
      for (size_t i = 0; i < kMr; ++i) ar[i] = indirect_row(base, offsets[s * kMr + i], zero);
      int8x16_t va[kMr];
      const size_t blocks = kc / 16, kk = blocks * 16;
      if (blocks) sdot_4x16_k16(blocks, ar[0], ar[1], ar[2], ar[3], w, acc);
      if (kk < kc) {  // 1 to 15 bytes left: only the groups the packing holds
        const size_t rest = kc - kk, groups = (rest + 3) / 4;
        for (size_t i = 0; i < kMr; ++i) {
          const Tail16 t = load_tail_16(ar[i] + kk, rest);
          va[i] = vreinterpretq_s8_u64(vcombine_u64(vcreate_u64(t.lo), vcreate_u64(t.hi)));
        }
        HUDDLE_SDOT_GROUP(0);
        if (groups > 1) HUDDLE_SDOT_GROUP(1);
        if (groups > 2) HUDDLE_SDOT_GROUP(2);
        if (groups > 3) HUDDLE_SDOT_GROUP(3);
      }
    }
#undef HUDDLE_SDOT_GROUP
    const int32_t* bias = reinterpret_cast<const int32_t*>(block);
    const float* scale = reinterpret_cast<const float*>(block + kNr * sizeof(int32_t));
    const NeonEpilogue8<Out> left(bias, scale, out), right(bias + 8, scale + 8, out);
    for (size_t i = 0; i < kMr && i < mr; ++i) {
      Out* dst = c + i * c_stride;
      left.store(&acc[i][0], nc < 8 ? nc : 8, dst);
      if (nc > 8) right.store(&acc[i][2], nc - 8, dst + 8);
    }
  }
};

using NeonDot = TileEntryPoints<NeonDotTile>;

}  // namespace

const QGemmUkernel qgemm_neondot = {"qs8_gemm_4x16c4__neondot", Isa::neondot,  4, 16, 4, 0, NeonDot::gemm,
                                    NeonDot::gemm_i32,          NeonDot::igemm};

}  // namespace huddle::kernels
