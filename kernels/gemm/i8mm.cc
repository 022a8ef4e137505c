// int8 GEMM for AArch64 with the int8 matrix-multiply extension: 8x8 tile, K
// in groups of 8 ("c8"). SMMLA multiplies a 2x8 block of A (two rows) by an
// 8x2 block of W (two packed columns) into a 2x2 int32 block.
#include <arm_neon.h>

#include <cstring>

#include "kernels/gemm/driver.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/neon_asm.h"
#include "kernels/gemm/neon_store.h"

namespace huddle::kernels {
namespace {

// The main loop of the tile: `blocks` steps of 8 along K for 8 rows x 8
// columns, acc[p][q] in v(16 + 4p + q). One asm loop: each pair of rows is
// one register filled by a load and a lane load (GCC's intrinsics took two
// loads and a move), and the four weight registers come from one LD1 (27
// instructions a step instead of 36).
inline void smmla_8x8_k8(size_t blocks, const int8_t* const (&a)[8], const int8_t*& w,
                         int32x4_t (&acc)[4][4]) {
  const int8_t *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5], *a6 = a[6], *a7 = a[7];
  __asm__ volatile(
      HUDDLE_ASM_LOAD_V16_V31
      "1:\n"
      "ldr d0, [%[a0]], #8\n"
      "ld1 {v0.d}[1], [%[a1]], #8\n"
      "ldr d1, [%[a2]], #8\n"
      "ld1 {v1.d}[1], [%[a3]], #8\n"
      "ldr d2, [%[a4]], #8\n"
      "ld1 {v2.d}[1], [%[a5]], #8\n"
      "ldr d3, [%[a6]], #8\n"
      "ld1 {v3.d}[1], [%[a7]], #8\n"
      "ld1 {v4.16b-v7.16b}, [%[w]], #64\n"
      "smmla v16.4s, v0.16b, v4.16b\n"
      "smmla v17.4s, v0.16b, v5.16b\n"
      "smmla v18.4s, v0.16b, v6.16b\n"
      "smmla v19.4s, v0.16b, v7.16b\n"
      "smmla v20.4s, v1.16b, v4.16b\n"
      "smmla v21.4s, v1.16b, v5.16b\n"
      "smmla v22.4s, v1.16b, v6.16b\n"
      "smmla v23.4s, v1.16b, v7.16b\n"
      "smmla v24.4s, v2.16b, v4.16b\n"
      "smmla v25.4s, v2.16b, v5.16b\n"
      "smmla v26.4s, v2.16b, v6.16b\n"
      "smmla v27.4s, v2.16b, v7.16b\n"
      "smmla v28.4s, v3.16b, v4.16b\n"
      "smmla v29.4s, v3.16b, v5.16b\n"
      "smmla v30.4s, v3.16b, v6.16b\n"
      "smmla v31.4s, v3.16b, v7.16b\n"
      "subs %[n], %[n], #1\n"
      "b.ne 1b\n"
      HUDDLE_ASM_STORE_V16_V31
      : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [a4] "+r"(a4), [a5] "+r"(a5), [a6] "+r"(a6),
        [a7] "+r"(a7), [w] "+r"(w), [n] "+r"(blocks)
      : [acc] "r"(&acc[0][0])
      : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v16", "v17", "v18", "v19", "v20", "v21",
        "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31");
}

struct I8mmTile {
  static constexpr size_t kMr = 8, kNr = 8, kKr = 8;
  static constexpr size_t kHeader = kNr * (sizeof(int32_t) + sizeof(float));

  template <class Out>
  static void run(size_t mr, size_t nc, size_t kc, size_t ks, const int8_t* base, const size_t* offsets,
                  const int8_t* zero, const uint8_t* block, Out* c, size_t c_stride, const QGemmOutput& out) {
    const int8_t* w = reinterpret_cast<const int8_t*>(block + kHeader);
    // acc[p][q] = rows 2p, 2p+1 x columns 2q, 2q+1: {r0c0, r0c1, r1c0, r1c1}.
    int32x4_t acc[kMr / 2][kNr / 2];
    for (size_t p = 0; p < kMr / 2; ++p)
      for (size_t q = 0; q < kNr / 2; ++q) acc[p][q] = vdupq_n_s32(0);
    auto step = [&](const int8x16_t va[kMr / 2]) {
      // Four plain loads: GCC copies a four-register LD1's result through extra moves here.
      const int8x16_t b[4] = {vld1q_s8(w), vld1q_s8(w + 16), vld1q_s8(w + 32), vld1q_s8(w + 48)};
      w += kNr * kKr;
      for (size_t p = 0; p < kMr / 2; ++p)
        for (size_t q = 0; q < kNr / 2; ++q) acc[p][q] = vmmlaq_s32(acc[p][q], va[p], b[q]);
    };
    for (size_t s = 0; s < ks; ++s) {
      const int8_t* ar[kMr];
      for (size_t i = 0; i < kMr; ++i) ar[i] = indirect_row(base, offsets[s * kMr + i], zero);
      int8x16_t va[kMr / 2];
      const size_t blocks = kc / kKr, kk = blocks * kKr;
      if (blocks) smmla_8x8_k8(blocks, ar, w, acc);
      if (kk < kc) {
        for (size_t p = 0; p < kMr / 2; ++p) {
          const uint64_t r0 = load_tail_u64(ar[2 * p] + kk, kc - kk),
                         r1 = load_tail_u64(ar[2 * p + 1] + kk, kc - kk);
          va[p] = vreinterpretq_s8_u64(vcombine_u64(vcreate_u64(r0), vcreate_u64(r1)));
        }
        step(va);
      }
    }
    const int32_t* bias = reinterpret_cast<const int32_t*>(block);
    const float* scale = reinterpret_cast<const float*>(block + kNr * sizeof(int32_t));
    // Row pairs with a fixed trip count, so the accumulators stay in registers.
    const NeonEpilogue8<Out> epilogue(bias, scale, out);
    for (size_t p = 0; p < kMr / 2 && 2 * p < mr; ++p) {
      const int64x2_t x0 = vreinterpretq_s64_s32(acc[p][0]), y0 = vreinterpretq_s64_s32(acc[p][1]);
      const int64x2_t x1 = vreinterpretq_s64_s32(acc[p][2]), y1 = vreinterpretq_s64_s32(acc[p][3]);
      const int32x4_t even[2] = {vreinterpretq_s32_s64(vzip1q_s64(x0, y0)),
                                 vreinterpretq_s32_s64(vzip1q_s64(x1, y1))};
      epilogue.store(even, nc, c + 2 * p * c_stride);
      if (2 * p + 1 == mr) break;
      const int32x4_t odd[2] = {vreinterpretq_s32_s64(vzip2q_s64(x0, y0)),
                                vreinterpretq_s32_s64(vzip2q_s64(x1, y1))};
      epilogue.store(odd, nc, c + (2 * p + 1) * c_stride);
    }
  }
};

using I8mm = TileEntryPoints<I8mmTile>;

}  // namespace

const QGemmUkernel qgemm_i8mm = {
    "qs8_gemm_8x8c8__neoni8mm", Isa::i8mm, 8, 8, 8, 0, I8mm::gemm, I8mm::gemm_i32, I8mm::igemm};

}  // namespace huddle::kernels
