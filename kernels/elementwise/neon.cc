// int8 elementwise, table lookup and pooling kernels for baseline AArch64 NEON.
// Arithmetic goes 4 lanes at a time through int32 and fp32 in the order the
// specification writes it (elementwise.h, pool.h), 16 results narrowed back to
// int8 per step with saturating moves; vcvtnq_s32_f32 rounds half to even.
// The lookup reads the 256-entry table as four 64-byte slices with TBL/TBX.
// The loops around the vectors (ragged ends, rows, pooling windows) are
// rows.h's, instantiated with this file's vector traits.
#include <arm_neon.h>

#include "kernels/elementwise/elementwise.h"
#include "kernels/elementwise/pool.h"
#include "kernels/elementwise/rows.h"

namespace huddle::kernels {
namespace {

// 16 int8 lanes: the unit of every kernel here.
struct Vec16 {
  using V = int8x16_t;
  static constexpr size_t kWidth = 16;
  static V load(const int8_t* p) { return vld1q_s8(p); }
  static void store(int8_t* p, V v) { vst1q_s8(p, v); }
};

// The output side of a requantisation, broadcast.
struct Requant {
  float32x4_t lo, hi;
  int32x4_t zp;
};

inline Requant make_requant(const QGemmOutput& out) {
  return {vdupq_n_f32(static_cast<float>(out.min - out.zero_point)),
          vdupq_n_f32(static_cast<float>(out.max - out.zero_point)), vdupq_n_s32(out.zero_point)};
}

// qs8_requant_f32 on 4 lanes, before the narrowing to int8.
inline int32x4_t requant4(float32x4_t f, const Requant& r) {
  f = vminq_f32(vmaxq_f32(f, r.lo), r.hi);
  return vaddq_s32(vcvtnq_s32_f32(f), r.zp);
}

// 16 int32 (already in [-128, 127]) to 16 int8, in order.
inline int8x16_t pack16(const int32x4_t q[4]) {
  const int16x8_t lo = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
  const int16x8_t hi = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
  return vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi));
}

// The 16 lanes of v widened to int32, four at a time.
inline void widen16(int8x16_t v, int32x4_t out[4]) {
  const int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_s8(vget_high_s8(v));
  out[0] = vmovl_s16(vget_low_s16(lo));
  out[1] = vmovl_s16(vget_high_s16(lo));
  out[2] = vmovl_s16(vget_low_s16(hi));
  out[3] = vmovl_s16(vget_high_s16(hi));
}

void add_neon(size_t rows, size_t channels, const int8_t* a, const int8_t* b, size_t b_stride, int8_t* y,
              const QBinaryParams& p) {
  const Requant rq = make_requant(p.out);
  const int32x4_t za = vdupq_n_s32(p.a_zero_point), zb = vdupq_n_s32(p.b_zero_point);
  const float32x4_t ma = vdupq_n_f32(p.a_multiplier), mb = vdupq_n_f32(p.b_multiplier);
  binary_rows<Vec16>(rows, channels, a, b, b_stride, y, [&](int8x16_t va, int8x16_t vb) {
    int32x4_t wa[4], wb[4], q[4];
    widen16(va, wa);
    widen16(vb, wb);
    for (int j = 0; j < 4; ++j) {
      const float32x4_t fa = vmulq_f32(vcvtq_f32_s32(vsubq_s32(wa[j], za)), ma);
      const float32x4_t fb = vmulq_f32(vcvtq_f32_s32(vsubq_s32(wb[j], zb)), mb);
      q[j] = requant4(vaddq_f32(fa, fb), rq);
    }
    return pack16(q);
  });
}

void add_scalar_neon(size_t n, const int8_t* a, int8_t b, int8_t* y, const QBinaryParams& p) {
  const Requant rq = make_requant(p.out);
  const int32x4_t za = vdupq_n_s32(p.a_zero_point);
  const float32x4_t ma = vdupq_n_f32(p.a_multiplier);
  const float32x4_t fb = vdupq_n_f32(static_cast<float>(int32_t{b} - p.b_zero_point) * p.b_multiplier);
  unary_row<Vec16>(n, a, y, [&](int8x16_t va) {
    int32x4_t wa[4], q[4];
    widen16(va, wa);
    for (int j = 0; j < 4; ++j)
      q[j] = requant4(vaddq_f32(vmulq_f32(vcvtq_f32_s32(vsubq_s32(wa[j], za)), ma), fb), rq);
    return pack16(q);
  });
}

void mul_neon(size_t rows, size_t channels, const int8_t* a, const int8_t* b, size_t b_stride, int8_t* y,
              const QBinaryParams& p) {
  const Requant rq = make_requant(p.out);
  const int32x4_t za = vdupq_n_s32(p.a_zero_point), zb = vdupq_n_s32(p.b_zero_point);
  const float32x4_t m = vdupq_n_f32(p.a_multiplier);
  binary_rows<Vec16>(rows, channels, a, b, b_stride, y, [&](int8x16_t va, int8x16_t vb) {
    int32x4_t wa[4], wb[4], q[4];
    widen16(va, wa);
    widen16(vb, wb);
    for (int j = 0; j < 4; ++j) {
      const int32x4_t prod = vmulq_s32(vsubq_s32(wa[j], za), vsubq_s32(wb[j], zb));
      q[j] = requant4(vmulq_f32(vcvtq_f32_s32(prod), m), rq);
    }
    return pack16(q);
  });
}

void mul_scalar_neon(size_t n, const int8_t* a, int8_t b, int8_t* y, const QBinaryParams& p) {
  const Requant rq = make_requant(p.out);
  const int32x4_t za = vdupq_n_s32(p.a_zero_point), vb = vdupq_n_s32(int32_t{b} - p.b_zero_point);
  const float32x4_t m = vdupq_n_f32(p.a_multiplier);
  unary_row<Vec16>(n, a, y, [&](int8x16_t va) {
    int32x4_t wa[4], q[4];
    widen16(va, wa);
    for (int j = 0; j < 4; ++j)
      q[j] = requant4(vmulq_f32(vcvtq_f32_s32(vmulq_s32(vsubq_s32(wa[j], za), vb)), m), rq);
    return pack16(q);
  });
}

void rescale_neon(size_t rows, size_t channels, const int8_t* x, size_t x_stride, int8_t* y, size_t y_stride,
                  const QRescaleParams& p) {
  const Requant rq = make_requant(p.out);
  const int32x4_t zx = vdupq_n_s32(p.x_zero_point);
  const float32x4_t m = vdupq_n_f32(p.multiplier);
  auto block = [&](int8x16_t vx) {
    int32x4_t w[4], q[4];
    widen16(vx, w);
    for (int j = 0; j < 4; ++j) q[j] = requant4(vmulq_f32(vcvtq_f32_s32(vsubq_s32(w[j], zx)), m), rq);
    return pack16(q);
  };
  unary_rows<Vec16>(rows, channels, x, x_stride, y, y_stride, block);
}

// TBL gives 0 and TBX keeps the destination for an index past the 64-byte
// slice, so slice k answers exactly the bytes with index - 64k in [0, 64).
void lut_neon(size_t n, const int8_t* x, int8_t* y, const int8_t* table) {
  int8x16x4_t t[4];
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 4; ++j) t[k].val[j] = vld1q_s8(table + 64 * k + 16 * j);
  const uint8x16_t offset = vdupq_n_u8(64);
  auto block = [&](int8x16_t v) {
    uint8x16_t u = vreinterpretq_u8_s8(v);
    int8x16_t r = vqtbl4q_s8(t[0], u);
    for (int k = 1; k < 4; ++k) {
      u = vsubq_u8(u, offset);
      r = vqtbx4q_s8(r, t[k], u);
    }
    return r;
  };
  unary_row<Vec16>(n, x, y, block);
}

// Pooling (rows.h): 16 channels per step, under 16 to the reference loop.
void maxpool_neon(const QPoolShape& s, const int8_t* x, int8_t* y, int8_t min, int8_t max) {
  if (s.channels < Vec16::kWidth) return qs8_pool_ref.maxpool(s, x, y, min, max);
  const int8x16_t vmin = vdupq_n_s8(min), vmax = vdupq_n_s8(max);
  pool_windows(s, x, y, [&](const PoolWindow& w, int8_t* out) {
    pool_channels<Vec16>(s.channels, out, [&](size_t c0) {
      int8x16_t m = vdupq_n_s8(-128);
      pool_cells<Vec16>(w, c0, [&](int8x16_t v) { m = vmaxq_s8(m, v); });
      return vminq_s8(vmaxq_s8(m, vmin), vmax);
    });
  });
}

// Adds the 16 lanes of v into acc (int32): through int16 pairs with SADDW.
inline void accumulate16(int8x16_t v, int32x4_t acc[4]) {
  const int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_s8(vget_high_s8(v));
  acc[0] = vaddw_s16(acc[0], vget_low_s16(lo));
  acc[1] = vaddw_s16(acc[1], vget_high_s16(lo));
  acc[2] = vaddw_s16(acc[2], vget_low_s16(hi));
  acc[3] = vaddw_s16(acc[3], vget_high_s16(hi));
}

// out[0 .. w.channels) = the sums over w's cells of each channel less the
// zero point, times m, requantised.
inline void average_window(const PoolWindow& w, int32_t zero_point, float32x4_t m, const Requant& rq,
                           int8_t* out) {
  const int32x4_t bias = vdupq_n_s32(static_cast<int32_t>(w.cells()) * zero_point);
  pool_channels<Vec16>(w.channels, out, [&](size_t c0) {
    int32x4_t acc[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
    pool_cells<Vec16>(w, c0, [&](int8x16_t v) { accumulate16(v, acc); });
    int32x4_t q[4];
    for (int j = 0; j < 4; ++j) q[j] = requant4(vmulq_f32(vcvtq_f32_s32(vsubq_s32(acc[j], bias)), m), rq);
    return pack16(q);
  });
}

void avgpool_neon(const QPoolShape& s, const int8_t* x, int8_t* y, const QAvgPoolParams& p) {
  if (s.channels < Vec16::kWidth) return qs8_pool_ref.avgpool(s, x, y, p);
  const Requant rq = make_requant(p.out);
  pool_windows(s, x, y, [&](const PoolWindow& w, int8_t* out) {
    average_window(w, p.in_zero_point, vdupq_n_f32(pool_average_scale(s, p, w)), rq, out);
  });
}

void global_avgpool_neon(size_t batch, size_t pixels, size_t channels, const int8_t* x, int8_t* y,
                         const QAvgPoolParams& p) {
  if (channels < Vec16::kWidth) return qs8_pool_ref.global_avgpool(batch, pixels, channels, x, y, p);
  const Requant rq = make_requant(p.out);
  const float32x4_t m = vdupq_n_f32(p.scale / static_cast<float>(pixels ? pixels : 1));
  for (size_t b = 0; b < batch; ++b)
    average_window(pool_row(x + b * pixels * channels, pixels, channels), p.in_zero_point, m, rq,
                   y + b * channels);
}

}  // namespace

const QElementwiseUkernel qs8_elementwise_neon = {"qs8_elementwise_minmax_fp32__neon_x16",
                                                  Isa::neon,
                                                  add_neon,
                                                  add_scalar_neon,
                                                  mul_neon,
                                                  mul_scalar_neon,
                                                  rescale_neon};

const QLutUkernel x8_lut_neon = {"x8_lut__neon_tbx64x4_x16", Isa::neon, lut_neon};

const QPoolUkernel qs8_pool_neon = {"qs8_pool_minmax_fp32__neon_c16", Isa::neon, maxpool_neon, avgpool_neon,
                                    global_avgpool_neon};

}  // namespace huddle::kernels
