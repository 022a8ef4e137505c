// int8 GEMM for AArch64 with the dot-product extension: 4x16 tile, K in
// groups of 4 ("c4"). SDOT (by element) adds four int8 products of one row of
// A into each int32 lane: no widening and no final reduction.
#include <arm_neon.h>

#include <cstring>

#include "kernels/gemm/driver.h"
#include "kernels/gemm/gemm.h"
#include "kernels/gemm/neon_store.h"

namespace huddle::kernels {
namespace {

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
#define HUDDLE_SDOT_GROUP(L)                                             \
  do {                                                                   \
    const int8x16x4_t b = vld1q_s8_x4(w); /* one LD1 of four registers */ \
    w += kNr * kKr;                                                      \
    for (size_t i = 0; i < kMr; ++i) {                                   \
      acc[i][0] = vdotq_laneq_s32(acc[i][0], b.val[0], va[i], L);        \
      acc[i][1] = vdotq_laneq_s32(acc[i][1], b.val[1], va[i], L);        \
      acc[i][2] = vdotq_laneq_s32(acc[i][2], b.val[2], va[i], L);        \
      acc[i][3] = vdotq_laneq_s32(acc[i][3], b.val[3], va[i], L);        \
    }                                                                    \
  } while (0)
    for (size_t s = 0; s < ks; ++s) {
      const int8_t* ar[kMr];
      for (size_t i = 0; i < kMr; ++i) ar[i] = indirect_row(base, offsets[s * kMr + i], zero);
      int8x16_t va[kMr];
      size_t kk = 0;
      for (; kk + 16 <= kc; kk += 16) {
        for (size_t i = 0; i < kMr; ++i) va[i] = vld1q_s8(ar[i] + kk);
        HUDDLE_SDOT_GROUP(0);
        HUDDLE_SDOT_GROUP(1);
        HUDDLE_SDOT_GROUP(2);
        HUDDLE_SDOT_GROUP(3);
      }
      if (kk < kc) {  // 1 to 15 bytes left: only the groups the packing holds
        const size_t rest = kc - kk, groups = (rest + 3) / 4;
        for (size_t i = 0; i < kMr; ++i) {
          int8_t tmp[16] = {};
          std::memcpy(tmp, ar[i] + kk, rest);
          va[i] = vld1q_s8(tmp);
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
    for (size_t i = 0; i < mr; ++i) {
      Out* dst = c + i * c_stride;
      neon_store_row8(&acc[i][0], bias, scale, nc < 8 ? nc : 8, dst, out);
      if (nc > 8) neon_store_row8(&acc[i][2], bias + 8, scale + 8, nc - 8, dst + 8, out);
    }
  }
};

using NeonDot = TileEntryPoints<NeonDotTile>;

}  // namespace

const QGemmUkernel qgemm_neondot = {"qs8_gemm_4x16c4__neondot", Isa::neondot,  4, 16, 4, 0, NeonDot::gemm,
                                    NeonDot::gemm_i32,          NeonDot::igemm};

}  // namespace huddle::kernels
