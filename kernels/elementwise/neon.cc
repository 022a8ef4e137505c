// int8 elementwise, table lookup and pooling kernels for baseline AArch64 NEON.
// Arithmetic goes 4 lanes at a time through int32 and fp32 in the order the
// specification writes it (elementwise.h, pool.h), 16 results narrowed back to
// int8 per step with saturating moves; vcvtnq_s32_f32 rounds half to even.
// The lookup reads the 256-entry table as four 64-byte slices with TBL/TBX.
// A ragged end is one vector overlapping the last full one, recomputed from the
// inputs; only rows shorter than a vector go through small stack buffers, so
// nothing past a tensor is read or written.
#include <arm_neon.h>

#include <cstring>

#include "kernels/elementwise/elementwise.h"
#include "kernels/elementwise/pool.h"

namespace huddle::kernels {
namespace {

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

// The first n (< 16) bytes at p, the rest zero.
inline int8x16_t load16_part(const int8_t* p, size_t n) {
  int8_t tmp[16] = {};
  std::memcpy(tmp, p, n);
  return vld1q_s8(tmp);
}

inline void store16_part(int8_t* p, int8x16_t v, size_t n) {
  int8_t tmp[16];
  vst1q_s8(tmp, v);
  std::memcpy(p, tmp, n);
}

// y[i] = block(a[i..], b[i..]) 16 at a time. A ragged end of n >= 16 is one
// block overlapping the last full one, computed before any store (so y may be
// a); only n < 16 goes through stack buffers.
template <class Block>
inline void binary_row(size_t n, const int8_t* a, const int8_t* b, int8_t* y, const Block& block) {
  if (n < 16) {
    if (n == 0) return;
    store16_part(y, block(load16_part(a, n), load16_part(b, n)), n);
    return;
  }
  const int8x16_t last = block(vld1q_s8(a + n - 16), vld1q_s8(b + n - 16));
  for (size_t i = 0; i + 16 <= n; i += 16) vst1q_s8(y + i, block(vld1q_s8(a + i), vld1q_s8(b + i)));
  vst1q_s8(y + n - 16, last);
}

// y[i] = block(x[i..]) 16 at a time, the ragged end as in binary_row.
template <class Block>
inline void unary_row(size_t n, const int8_t* x, int8_t* y, const Block& block) {
  if (n < 16) {
    if (n == 0) return;
    store16_part(y, block(load16_part(x, n)), n);
    return;
  }
  const int8x16_t last = block(vld1q_s8(x + n - 16));
  for (size_t i = 0; i + 16 <= n; i += 16) vst1q_s8(y + i, block(vld1q_s8(x + i)));
  vst1q_s8(y + n - 16, last);
}

// Rows of a binary op: one long row when b has a's shape; for a short
// per-channel b, groups of rows against b repeated in a stack buffer.
template <class Block>
inline void binary_rows(size_t rows, size_t channels, const int8_t* a, const int8_t* b, size_t b_stride,
                        int8_t* y, const Block& block) {
  constexpr size_t kRepeat = 256;
  if (b_stride == channels || rows == 1) {
    binary_row(rows * channels, a, b, y, block);
  } else if (b_stride == 0 && channels < kRepeat / 4) {
    int8_t repeated[kRepeat];
    const size_t group = kRepeat / channels;
    for (size_t i = 0; i < group * channels; ++i) repeated[i] = b[i % channels];
    for (size_t r = 0; r < rows; r += group) {
      const size_t nr = rows - r < group ? rows - r : group;
      binary_row(nr * channels, a + r * channels, repeated, y + r * channels, block);
    }
  } else {
    for (size_t r = 0; r < rows; ++r)
      binary_row(channels, a + r * channels, b + r * b_stride, y + r * channels, block);
  }
}

void add_neon(size_t rows, size_t channels, const int8_t* a, const int8_t* b, size_t b_stride, int8_t* y,
              const QBinaryParams& p) {
  const Requant rq = make_requant(p.out);
  const int32x4_t za = vdupq_n_s32(p.a_zero_point), zb = vdupq_n_s32(p.b_zero_point);
  const float32x4_t ma = vdupq_n_f32(p.a_multiplier), mb = vdupq_n_f32(p.b_multiplier);
  binary_rows(rows, channels, a, b, b_stride, y, [&](int8x16_t va, int8x16_t vb) {
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
  unary_row(n, a, y, [&](int8x16_t va) {
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
  binary_rows(rows, channels, a, b, b_stride, y, [&](int8x16_t va, int8x16_t vb) {
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
  unary_row(n, a, y, [&](int8x16_t va) {
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
  if (x_stride == channels && y_stride == channels) {
    unary_row(rows * channels, x, y, block);
  } else {
    for (size_t r = 0; r < rows; ++r) unary_row(channels, x + r * x_stride, y + r * y_stride, block);
  }
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
  unary_row(n, x, y, block);
}

// Pooling runs 16 channels per step, the ragged end as one step overlapping
// the last full one; under 16 channels the reference loop is faster than
// vectors of mostly padding, so those calls go to it.
constexpr size_t kPoolChannels = 16;

void maxpool_neon(const QPoolShape& s, const int8_t* x, int8_t* y, int8_t min, int8_t max) {
  if (s.channels < kPoolChannels) return qs8_pool_ref.maxpool(s, x, y, min, max);
  const int8x16_t vmin = vdupq_n_s8(min), vmax = vdupq_n_s8(max);
  for (size_t b = 0; b < s.batch; ++b) {
    for (size_t oh = 0; oh < s.out_h; ++oh) {
      size_t h0, h1;
      qs8_pool_window(oh, s.stride_h, s.pad_top, s.kernel_h, s.in_h, &h0, &h1);
      for (size_t ow = 0; ow < s.out_w; ++ow) {
        size_t w0, w1;
        qs8_pool_window(ow, s.stride_w, s.pad_left, s.kernel_w, s.in_w, &w0, &w1);
        int8_t* out = y + ((b * s.out_h + oh) * s.out_w + ow) * s.channels;
        for (size_t c = 0; c < s.channels; c += kPoolChannels) {
          const size_t c0 = c + kPoolChannels <= s.channels ? c : s.channels - kPoolChannels;
          int8x16_t m = vdupq_n_s8(-128);
          for (size_t ih = h0; ih < h1; ++ih) {
            const int8_t* row = x + ((b * s.in_h + ih) * s.in_w) * s.channels + c0;
            for (size_t iw = w0; iw < w1; ++iw) m = vmaxq_s8(m, vld1q_s8(row + iw * s.channels));
          }
          vst1q_s8(out + c0, vminq_s8(vmaxq_s8(m, vmin), vmax));
        }
      }
    }
  }
}

// Adds the 16 lanes of v into acc (int32): through int16 pairs with SADDW.
inline void accumulate16(int8x16_t v, int32x4_t acc[4]) {
  const int16x8_t lo = vmovl_s8(vget_low_s8(v)), hi = vmovl_s8(vget_high_s8(v));
  acc[0] = vaddw_s16(acc[0], vget_low_s16(lo));
  acc[1] = vaddw_s16(acc[1], vget_high_s16(lo));
  acc[2] = vaddw_s16(acc[2], vget_low_s16(hi));
  acc[3] = vaddw_s16(acc[3], vget_high_s16(hi));
}

// Requantises 16 channel sums (int32, before subtracting the zero point
// `cells` times) with multiplier `m`.
inline int8x16_t requant_sums(const int32x4_t acc[4], size_t cells, int32_t zero_point, float32x4_t m,
                              const Requant& rq) {
  const int32x4_t bias = vdupq_n_s32(static_cast<int32_t>(cells) * zero_point);
  int32x4_t q[4];
  for (int j = 0; j < 4; ++j) q[j] = requant4(vmulq_f32(vcvtq_f32_s32(vsubq_s32(acc[j], bias)), m), rq);
  return pack16(q);
}

void avgpool_neon(const QPoolShape& s, const int8_t* x, int8_t* y, const QAvgPoolParams& p) {
  if (s.channels < kPoolChannels) return qs8_pool_ref.avgpool(s, x, y, p);
  const Requant rq = make_requant(p.out);
  for (size_t b = 0; b < s.batch; ++b) {
    for (size_t oh = 0; oh < s.out_h; ++oh) {
      size_t h0, h1;
      qs8_pool_window(oh, s.stride_h, s.pad_top, s.kernel_h, s.in_h, &h0, &h1);
      for (size_t ow = 0; ow < s.out_w; ++ow) {
        size_t w0, w1;
        qs8_pool_window(ow, s.stride_w, s.pad_left, s.kernel_w, s.in_w, &w0, &w1);
        const size_t cells = (h1 - h0) * (w1 - w0);
        const size_t count = p.count_include_pad ? s.kernel_h * s.kernel_w : (cells ? cells : 1);
        const float32x4_t m = vdupq_n_f32(p.scale / static_cast<float>(count));
        int8_t* out = y + ((b * s.out_h + oh) * s.out_w + ow) * s.channels;
        for (size_t c = 0; c < s.channels; c += kPoolChannels) {
          const size_t c0 = c + kPoolChannels <= s.channels ? c : s.channels - kPoolChannels;
          int32x4_t acc[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
          for (size_t ih = h0; ih < h1; ++ih) {
            const int8_t* row = x + ((b * s.in_h + ih) * s.in_w) * s.channels + c0;
            for (size_t iw = w0; iw < w1; ++iw) accumulate16(vld1q_s8(row + iw * s.channels), acc);
          }
          vst1q_s8(out + c0, requant_sums(acc, cells, p.in_zero_point, m, rq));
        }
      }
    }
  }
}

void global_avgpool_neon(size_t batch, size_t pixels, size_t channels, const int8_t* x, int8_t* y,
                         const QAvgPoolParams& p) {
  if (channels < kPoolChannels) return qs8_pool_ref.global_avgpool(batch, pixels, channels, x, y, p);
  const Requant rq = make_requant(p.out);
  const float32x4_t m = vdupq_n_f32(p.scale / static_cast<float>(pixels ? pixels : 1));
  for (size_t b = 0; b < batch; ++b) {
    const int8_t* xb = x + b * pixels * channels;
    for (size_t c = 0; c < channels; c += kPoolChannels) {
      const size_t c0 = c + kPoolChannels <= channels ? c : channels - kPoolChannels;
      int32x4_t acc[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
      for (size_t i = 0; i < pixels; ++i) accumulate16(vld1q_s8(xb + i * channels + c0), acc);
      vst1q_s8(y + b * channels + c0, requant_sums(acc, pixels, p.in_zero_point, m, rq));
    }
  }
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
