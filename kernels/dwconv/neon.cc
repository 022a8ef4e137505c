// int8 depthwise convolution for baseline AArch64 NEON, 16 channels per block
// ("c16"). Two taps' products are formed with SMULL + SMLAL into int16 (exact:
// weights lie in [-127, 127], so |x*w + x'*w'| <= 32512) and widened into
// int32 accumulators with SADDW; channels stay in natural order. Each block
// runs over a whole output row with its weights held in registers (bias and
// scales take one LD1 each per pixel); interior pixels (no padding tap) take
// their tap pointers without branches. The output clamp is applied in the
// integer domain after rounding (see Requant).
#include <arm_neon.h>

#include <cstddef>
#include <cstring>

#include "kernels/dwconv/driver.h"
#include "kernels/dwconv/dwconv.h"

namespace huddle::kernels {
namespace {

constexpr size_t kCr = 16;
constexpr size_t kHeader = kCr * (sizeof(int32_t) + sizeof(float));

// The output rule of qgemm_requant with the clamp moved after the rounding:
// rounding is monotonic and the bounds min - zp, max - zp are integers, so
// clamp(rint(f) + zp, min, max) is the same value; the saturating steps keep
// it so for any accumulator.
struct Requant {
  int32x4_t zp;
  int8x16_t min, max;
};

inline int16x8_t requant8(int32x4_t a0, int32x4_t a1, float32x4_t s0, float32x4_t s1, const Requant& rq) {
  const int32x4_t r0 = vqaddq_s32(vcvtnq_s32_f32(vmulq_f32(vcvtq_f32_s32(a0), s0)), rq.zp);
  const int32x4_t r1 = vqaddq_s32(vcvtnq_s32_f32(vmulq_f32(vcvtq_f32_s32(a1), s1)), rq.zp);
  return vqmovn_high_s32(vqmovn_s32(r0), r1);
}

inline void add_products(int32x4_t acc[4], int16x8_t lo, int16x8_t hi) {
  acc[0] = vaddw_s16(acc[0], vget_low_s16(lo));
  acc[1] = vaddw_high_s16(acc[1], lo);
  acc[2] = vaddw_s16(acc[2], vget_low_s16(hi));
  acc[3] = vaddw_high_s16(acc[3], hi);
}

// One block of 16 channels (all of them when kFull, else the first nc), with
// its weights, bias and scales held while it runs over a row of output pixels.
template <size_t kTaps, bool kFull>
struct Block16 {
  int8x16_t w[kTaps];
  const int32_t* bias;
  const float* scale;
  size_t nc;

  inline void load(const uint8_t* p, size_t n) {
    nc = n;
    bias = reinterpret_cast<const int32_t*>(p);
    scale = reinterpret_cast<const float*>(p + kCr * sizeof(int32_t));
    const int8_t* wp = reinterpret_cast<const int8_t*>(p + kHeader);
    for (size_t t = 0; t < kTaps; ++t) w[t] = vld1q_s8(wp + kCr * t);
  }

  // 16 input values of a tap: the whole block, or the first nc into zeros.
  inline int8x16_t load_x(const int8_t* x) const {
    if (kFull) return vld1q_s8(x);
    int8_t tmp[kCr] = {};
    std::memcpy(tmp, x, nc);
    return vld1q_s8(tmp);
  }

  // One output pixel; x holds the kTaps tap pointers (the block's first
  // channel is c past them; padding taps point at the in_zp row).
  inline void run(const int8_t* const* x, size_t c, int8_t* dst, const Requant& rq) const {
    const int32x4x4_t b = vld1q_s32_x4(bias);
    int32x4_t acc[4] = {b.val[0], b.val[1], b.val[2], b.val[3]};
    size_t t = 0;
    for (; t + 2 <= kTaps; t += 2) {
      const int8x16_t a = load_x(x[t] + c), b = load_x(x[t + 1] + c);
      int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(w[t]));
      lo = vmlal_s8(lo, vget_low_s8(b), vget_low_s8(w[t + 1]));
      int16x8_t hi = vmull_high_s8(a, w[t]);
      hi = vmlal_high_s8(hi, b, w[t + 1]);
      add_products(acc, lo, hi);
    }
    if (t < kTaps) {
      const int8x16_t a = load_x(x[t] + c);
      add_products(acc, vmull_s8(vget_low_s8(a), vget_low_s8(w[t])), vmull_high_s8(a, w[t]));
    }
    const float32x4x4_t sc = vld1q_f32_x4(scale);
    const int16x8_t q0 = requant8(acc[0], acc[1], sc.val[0], sc.val[1], rq);
    const int16x8_t q1 = requant8(acc[2], acc[3], sc.val[2], sc.val[3], rq);
    const int8x16_t q8 = vminq_s8(vmaxq_s8(vqmovn_high_s16(vqmovn_s16(q0), q1), rq.min), rq.max);
    if (kFull) {
      vst1q_s8(dst, q8);
    } else {
      int8_t tmp[kCr];
      vst1q_s8(tmp, q8);
      std::memcpy(dst, tmp, nc);
    }
  }
};

// The arithmetic dwconv_driver runs: whole blocks and the channel tail.
struct Kernel : BlockLoads<kCr, Block16> {
  static constexpr size_t kCr = huddle::kernels::kCr;
  using Requant = huddle::kernels::Requant;
  static Requant requant(const QGemmOutput& params) {
    return {vdupq_n_s32(params.zero_point), vdupq_n_s8(params.min), vdupq_n_s8(params.max)};
  }
};

// The variant's QDwConvFn.
constexpr QDwConvFn kRun = dwconv_driver<Kernel, dwconv_neon>;

}  // namespace

const QDwConvUkernel dwconv_neon = {"qs8_dwconv_3x3_5x5__neon_c16", Isa::neon, kCr, 1, false, kRun};

}  // namespace huddle::kernels
