// Codebook fully connected for baseline AArch64 NEON: 4x16 tile, 16 columns
// of weights decoded per k and multiplied into 4 rows with FMLA by lane. 4-bit
// indices are decoded with TBL on the low and high bytes of the fp16 table and
// widened with FCVTL; 8-bit ones with lane loads from the table widened to fp32
// once per call (on the stack). Inputs are widened to fp32 4 k at a time.
#include <arm_neon.h>

#include <cstring>

#include "kernels/codebook/codebook.h"
#include "kernels/codebook/driver.h"

namespace huddle::kernels {
namespace {

constexpr size_t kMr = 4, kNr = 16, kKc = 4;

// Up to kKc inputs of one row as fp32, zero past kc.
inline float32x4_t load_x(const float* x, size_t kc, int32_t) {
  if (kc == kKc) return vld1q_f32(x);
  float tmp[kKc] = {};
  std::memcpy(tmp, x, kc * sizeof(float));
  return vld1q_f32(tmp);
}

inline float32x4_t load_x(const int8_t* x, size_t kc, int32_t zero_point) {
  int32_t v = 0;
  std::memcpy(&v, x, kc);
  const int16x8_t q16 = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(v)));
  int32x4_t q = vsubq_s32(vmovl_s16(vget_low_s16(q16)), vdupq_n_s32(zero_point));
  // Lanes past kc become 0 (they are 0 - zero_point after the subtraction).
  const int32x4_t lane = {0, 1, 2, 3};
  q = vandq_s32(q, vreinterpretq_s32_u32(vcltq_s32(lane, vdupq_n_s32(static_cast<int32_t>(kc)))));
  return vcvtq_f32_s32(q);
}

// acc[i][c] += x[i][lane L] * w[c] for the 16 columns (4 vectors) of one block.
template <int L, size_t kRows>
inline void fma_lane(float32x4_t acc[kMr][4], const float32x4_t xv[kRows], const float32x4_t w[4]) {
  for (size_t i = 0; i < kRows; ++i)
    for (size_t c = 0; c < 4; ++c) acc[i][c] = vfmaq_laneq_f32(acc[i][c], w[c], xv[i], L);
}

// 16 weights from 16 fp32 table entries named by 16 bytes of indices.
inline void decode256(const uint8_t* idx, const float* table, float32x4_t w[4]) {
  for (size_t c = 0; c < 4; ++c) {
    float32x4_t v = vdupq_n_f32(0.0f);
    v = vld1q_lane_f32(table + idx[4 * c + 0], v, 0);
    v = vld1q_lane_f32(table + idx[4 * c + 1], v, 1);
    v = vld1q_lane_f32(table + idx[4 * c + 2], v, 2);
    v = vld1q_lane_f32(table + idx[4 * c + 3], v, 3);
    w[c] = v;
  }
}

// 16 weights from 16 indices 0..15: TBL on the table's low and high bytes, then FCVTL.
inline void decode16(uint8x16_t idx, uint8x16x2_t table, float32x4_t w[4]) {
  const uint8x16_t lo = vqtbl1q_u8(table.val[0], idx), hi = vqtbl1q_u8(table.val[1], idx);
  const float16x8_t h0 = vreinterpretq_f16_u8(vzip1q_u8(lo, hi));
  const float16x8_t h1 = vreinterpretq_f16_u8(vzip2q_u8(lo, hi));
  w[0] = vcvt_f32_f16(vget_low_f16(h0));
  w[1] = vcvt_high_f32_f16(h0);
  w[2] = vcvt_f32_f16(vget_low_f16(h1));
  w[3] = vcvt_high_f32_f16(h1);
}

// acc[i][c] = sum_k x[i][k] * w[k] for the 16 columns of one block.
template <unsigned kBits, size_t kRows, class X>
void accumulate(size_t k, const X* x, size_t x_stride, int32_t zero_point, const uint8_t* w,
                const void* packed, const float* table32, float32x4_t acc[kMr][4]) {
  const X* xr[kRows];
  for (size_t i = 0; i < kRows; ++i) {
    xr[i] = x + i * x_stride;
    for (size_t c = 0; c < 4; ++c) acc[i][c] = vdupq_n_f32(0.0f);
  }
  // The fp16 table split into its low (even) and high (odd) bytes.
  uint8x16x2_t table16 = {};
  if (kBits == 4) table16 = vld2q_u8(static_cast<const uint8_t*>(packed));
  for (size_t k0 = 0; k0 < k; k0 += kKc) {
    const size_t kc = k - k0 < kKc ? k - k0 : kKc;
    float32x4_t xv[kRows];
    for (size_t i = 0; i < kRows; ++i) xv[i] = load_x(xr[i] + k0, kc, zero_point);
    float32x4_t wv[4];
    if (kBits == 8) {
      decode256(w, table32, wv);
      fma_lane<0, kRows>(acc, xv, wv);
      if (kc > 1) decode256(w + kNr, table32, wv), fma_lane<1, kRows>(acc, xv, wv);
      if (kc > 2) decode256(w + 2 * kNr, table32, wv), fma_lane<2, kRows>(acc, xv, wv);
      if (kc > 3) decode256(w + 3 * kNr, table32, wv), fma_lane<3, kRows>(acc, xv, wv);
      w += kc * kNr;
    } else {
      // Pairs of k; past an odd K the second weight meets x = 0.
      const uint8x16_t b = vld1q_u8(w);
      decode16(vandq_u8(b, vdupq_n_u8(15)), table16, wv);
      fma_lane<0, kRows>(acc, xv, wv);
      decode16(vshrq_n_u8(b, 4), table16, wv);
      fma_lane<1, kRows>(acc, xv, wv);
      if (kc > 2) {
        const uint8x16_t b2 = vld1q_u8(w + kNr);
        decode16(vandq_u8(b2, vdupq_n_u8(15)), table16, wv);
        fma_lane<2, kRows>(acc, xv, wv);
        decode16(vshrq_n_u8(b2, 4), table16, wv);
        fma_lane<3, kRows>(acc, xv, wv);
      }
      w += (kc + 1) / 2 * kNr;
    }
  }
}

// The tile codebook_run runs: each row's sums are 4 vectors.
struct Tile {
  static constexpr size_t kMr = huddle::kernels::kMr, kNr = huddle::kernels::kNr;
  using Acc = float32x4_t[4];
  using Bias = const float*;
  using Cols = size_t;
  // The packed buffer (4-bit indices read its fp16 table) and, for 8-bit
  // ones, the table widened to fp32.
  struct Table {
    const void* packed;
    float f[256];
  };
  static Bias bias(const uint8_t* p) { return reinterpret_cast<const float*>(p); }
  static Cols columns(size_t nc) { return nc; }
  template <unsigned kBits>
  static void prepare(const void* packed, Table& t) {
    t.packed = packed;
    if (kBits == 8) {
      const uint8_t* t16 = static_cast<const uint8_t*>(packed);  // any alignment
      for (size_t i = 0; i < 256; i += 4)
        vst1q_f32(t.f + i, vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(t16 + 2 * i))));
    }
  }
  template <unsigned kBits, size_t kRows, class X>
  static void accumulate(size_t k, const X* x, size_t x_stride, int32_t zero_point, const uint8_t* w,
                         const Table& t, Acc acc[kMr]) {
    huddle::kernels::accumulate<kBits, kRows>(k, x, x_stride, zero_point, w, t.packed, t.f, acc);
  }
};

inline void store_f32(float* dst, size_t nc, const float32x4_t v[4]) {
  if (nc == kNr) {
    for (size_t c = 0; c < 4; ++c) vst1q_f32(dst + 4 * c, v[c]);
  } else {
    float tmp[kNr];
    for (size_t c = 0; c < 4; ++c) vst1q_f32(tmp + 4 * c, v[c]);
    std::memcpy(dst, tmp, nc * sizeof(float));
  }
}

// The output rules; each row's sums are 4 vectors.
struct Out {
  struct F32 {
    float32x4_t lo, hi;
    explicit F32(const CodebookF32Output& out) : lo(vdupq_n_f32(out.min)), hi(vdupq_n_f32(out.max)) {}
    void store(float* dst, size_t nc, const float* bias, const float32x4_t (&acc)[4]) const {
      float32x4_t v[4];
      for (size_t c = 0; c < 4; ++c)
        v[c] = vminq_f32(vmaxq_f32(vaddq_f32(vld1q_f32(bias + 4 * c), acc[c]), lo), hi);
      store_f32(dst, nc, v);
    }
  };
  struct Qs8F32 {
    float32x4_t lo, hi, scale;
    Qs8F32(const CodebookQs8Input& in, const CodebookF32Output& out)
        : lo(vdupq_n_f32(out.min)), hi(vdupq_n_f32(out.max)), scale(vdupq_n_f32(in.scale)) {}
    void store(float* dst, size_t nc, const float* bias, const float32x4_t (&acc)[4]) const {
      float32x4_t v[4];
      for (size_t c = 0; c < 4; ++c) {
        const float32x4_t f = vaddq_f32(vld1q_f32(bias + 4 * c), vmulq_f32(scale, acc[c]));
        v[c] = vminq_f32(vmaxq_f32(f, lo), hi);
      }
      store_f32(dst, nc, v);
    }
  };
  struct Qs8 {
    float32x4_t lo, hi, scale, out_scale;
    int32x4_t zp;
    Qs8(const CodebookQs8Input& in, const CodebookQs8Output& out)
        : lo(vdupq_n_f32(static_cast<float>(out.min - out.zero_point))),
          hi(vdupq_n_f32(static_cast<float>(out.max - out.zero_point))),
          scale(vdupq_n_f32(in.scale)),
          out_scale(vdupq_n_f32(out.scale)),
          zp(vdupq_n_s32(out.zero_point)) {}
    void store(int8_t* dst, size_t nc, const float* bias, const float32x4_t (&acc)[4]) const {
      int32x4_t q[4];
      for (size_t c = 0; c < 4; ++c) {
        float32x4_t f = vdivq_f32(vaddq_f32(vld1q_f32(bias + 4 * c), vmulq_f32(scale, acc[c])), out_scale);
        f = vminq_f32(vmaxq_f32(f, lo), hi);
        q[c] = vaddq_s32(vcvtnq_s32_f32(f), zp);
      }
      const int8x16_t q8 = vcombine_s8(vqmovn_s16(vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]))),
                                       vqmovn_s16(vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]))));
      if (nc == kNr) {
        vst1q_s8(dst, q8);
      } else {
        int8_t tmp[kNr];
        vst1q_s8(tmp, q8);
        std::memcpy(dst, tmp, nc);
      }
    }
  };
};

using Entry = CodebookEntryPoints<Tile, Out, codebook_fc_neon>;

}  // namespace

const CodebookFcUkernel codebook_fc_neon = {"codebook_fc_4x16__neon",
                                            Isa::neon,
                                            kMr,
                                            kNr,
                                            {Entry::f32<4>, Entry::qs8_f32<4>, Entry::qs8<4>},
                                            {Entry::f32<8>, Entry::qs8_f32<8>, Entry::qs8<8>}};

}  // namespace huddle::kernels
