// int8 depthwise convolution for baseline AArch64 NEON, 16 channels per block
// ("c16"). Two taps' products are formed with SMULL + SMLAL into int16 (exact:
// weights lie in [-127, 127], so |x*w + x'*w'| <= 32512) and widened into
// int32 accumulators with SADDW; channels stay in natural order.
#include <arm_neon.h>

#include <cstddef>
#include <cstring>

#include "kernels/dwconv/dwconv.h"

namespace huddle::kernels {
namespace {

constexpr size_t kCr = 16;
constexpr size_t kHeader = kCr * (sizeof(int32_t) + sizeof(float));

struct Requant {
  float32x4_t lo, hi;
  int32x4_t zp;
};

// 16 input values of a tap: the whole block, or the first nc into zeros.
template <bool kFull>
inline int8x16_t load_x(const int8_t* p, size_t nc) {
  if (kFull) return vld1q_s8(p);
  int8_t tmp[kCr] = {};
  std::memcpy(tmp, p, nc);
  return vld1q_s8(tmp);
}

inline void add_products(int32x4_t acc[4], int16x8_t lo, int16x8_t hi) {
  acc[0] = vaddw_s16(acc[0], vget_low_s16(lo));
  acc[1] = vaddw_high_s16(acc[1], lo);
  acc[2] = vaddw_s16(acc[2], vget_low_s16(hi));
  acc[3] = vaddw_high_s16(acc[3], hi);
}

inline int32x4_t requant4(int32x4_t acc, const float* scale, const Requant& rq) {
  float32x4_t f = vmulq_f32(vcvtq_f32_s32(acc), vld1q_f32(scale));
  f = vminq_f32(vmaxq_f32(f, rq.lo), rq.hi);
  return vaddq_s32(vcvtnq_s32_f32(f), rq.zp);
}

// One block of channels c0.. (16, or nc < 16 when !kFull) of one output pixel;
// x holds the kTaps tap pointers (padding taps point at the in_zp row).
template <size_t kTaps, bool kFull>
inline void block(const int8_t* const* x, size_t c0, size_t nc, const uint8_t* p, int8_t* dst,
                  const Requant& rq) {
  const int32_t* bias = reinterpret_cast<const int32_t*>(p);
  int32x4_t acc[4] = {vld1q_s32(bias), vld1q_s32(bias + 4), vld1q_s32(bias + 8), vld1q_s32(bias + 12)};
  const int8_t* w = reinterpret_cast<const int8_t*>(p + kHeader);
  size_t t = 0;
  for (; t + 2 <= kTaps; t += 2) {
    const int8x16_t a = load_x<kFull>(x[t] + c0, nc), b = load_x<kFull>(x[t + 1] + c0, nc);
    const int8x16_t wa = vld1q_s8(w + t * kCr), wb = vld1q_s8(w + (t + 1) * kCr);
    int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(wa));
    lo = vmlal_s8(lo, vget_low_s8(b), vget_low_s8(wb));
    int16x8_t hi = vmull_high_s8(a, wa);
    hi = vmlal_high_s8(hi, b, wb);
    add_products(acc, lo, hi);
  }
  if (t < kTaps) {
    const int8x16_t a = load_x<kFull>(x[t] + c0, nc), wa = vld1q_s8(w + t * kCr);
    add_products(acc, vmull_s8(vget_low_s8(a), vget_low_s8(wa)), vmull_high_s8(a, wa));
  }
  const float* scale = reinterpret_cast<const float*>(p + kCr * sizeof(int32_t));
  int16x8_t q16[2];
  for (size_t h = 0; h < 2; ++h)
    q16[h] = vcombine_s16(vqmovn_s32(requant4(acc[2 * h], scale + 8 * h, rq)),
                          vqmovn_s32(requant4(acc[2 * h + 1], scale + 8 * h + 4, rq)));
  const int8x16_t q8 = vcombine_s8(vqmovn_s16(q16[0]), vqmovn_s16(q16[1]));
  if (kFull) {
    vst1q_s8(dst + c0, q8);
  } else {
    int8_t tmp[kCr];
    vst1q_s8(tmp, q8);
    std::memcpy(dst + c0, tmp, nc);
  }
}

template <uint32_t kKernel>
void run_kernel(const QDwConvShape& s, const int8_t* in, const void* packed, int8_t* out,
                const QGemmOutput& params) {
  constexpr size_t kTaps = kKernel * kKernel;
  const size_t block_bytes = dwconv_block_bytes(dwconv_neon, kKernel);
  const int8_t* zero = dwconv_packed_zero(dwconv_neon, packed, kKernel, s.channels);
  const uint8_t* base = static_cast<const uint8_t*>(packed);
  const Requant rq = {vdupq_n_f32(static_cast<float>(params.min - params.zero_point)),
                      vdupq_n_f32(static_cast<float>(params.max - params.zero_point)),
                      vdupq_n_s32(params.zero_point)};
  const size_t out_h = dwconv_out_h(s), out_w = dwconv_out_w(s);
  const size_t row = s.in_w * s.in_stride, full = s.channels / kCr * kCr;
  const ptrdiff_t in_h = static_cast<ptrdiff_t>(s.in_h), in_w = static_cast<ptrdiff_t>(s.in_w);
  for (size_t oy = 0; oy < out_h; ++oy) {
    const int8_t* rows[kKernel];
    for (size_t ky = 0; ky < kKernel; ++ky) {
      const ptrdiff_t iy = static_cast<ptrdiff_t>(oy * s.stride + ky) - s.pad_top;
      rows[ky] = iy >= 0 && iy < in_h ? in + iy * row : nullptr;
    }
    for (size_t ox = 0; ox < out_w; ++ox) {
      const int8_t* x[kTaps];
      for (size_t kx = 0; kx < kKernel; ++kx) {
        const ptrdiff_t ix = static_cast<ptrdiff_t>(ox * s.stride + kx) - s.pad_left;
        const bool col = ix >= 0 && ix < in_w;
        for (size_t ky = 0; ky < kKernel; ++ky)
          x[ky * kKernel + kx] = col && rows[ky] ? rows[ky] + ix * s.in_stride : zero;
      }
      int8_t* dst = out + (oy * out_w + ox) * s.out_stride;
      const uint8_t* p = base;
      size_t c0 = 0;
      for (; c0 < full; c0 += kCr, p += block_bytes) block<kTaps, true>(x, c0, kCr, p, dst, rq);
      if (c0 < s.channels) block<kTaps, false>(x, c0, s.channels - c0, p, dst, rq);
    }
  }
}

void dwconv_run_neon(const QDwConvShape& s, const int8_t* in, const void* packed, int8_t* out,
                     const QGemmOutput& params) {
  if (s.kernel == 3)
    run_kernel<3>(s, in, packed, out, params);
  else
    run_kernel<5>(s, in, packed, out, params);
}

}  // namespace

const QDwConvUkernel dwconv_neon = {
    "qs8_dwconv_3x3_5x5__neon_c16", Isa::neon, kCr, 1, false, dwconv_run_neon};

}  // namespace huddle::kernels
