// Preprocess for baseline AArch64 NEON: horizontal taps of 8 elements loaded
// by lane and weighted with UMULL/UMLAL; vertical interpolation, normalisation
// and quantisation 8 elements at a time. Source rows are interpolated once and
// kept while output rows share them. Bit-exact with ref: the same integer and
// fp32 operations (FCVTNS rounds half to even, as ref does).
#include <arm_neon.h>

#include <cstring>

#include "kernels/preprocess/preprocess.h"

namespace huddle::kernels {
namespace {

// The 8 bytes row[off[0..7]].
inline uint8x8_t taps(const uint8_t* row, const int32_t* off) {
  uint8x8_t v = vdup_n_u8(0);
  v = vld1_lane_u8(row + off[0], v, 0);
  v = vld1_lane_u8(row + off[1], v, 1);
  v = vld1_lane_u8(row + off[2], v, 2);
  v = vld1_lane_u8(row + off[3], v, 3);
  v = vld1_lane_u8(row + off[4], v, 4);
  v = vld1_lane_u8(row + off[5], v, 5);
  v = vld1_lane_u8(row + off[6], v, 6);
  v = vld1_lane_u8(row + off[7], v, 7);
  return v;
}

// Horizontal sums of all elements of one source row.
void horizontal(const PreprocessPlan& plan, const uint8_t* row, int32_t* h) {
  const size_t full = plan.elems & ~size_t{7};
  size_t e = 0;
  for (; e < full; e += 8) {
    const uint16x8_t p0 = vmovl_u8(taps(row, plan.off0 + e)), p1 = vmovl_u8(taps(row, plan.off1 + e));
    const uint16x8x2_t w = vld2q_u16(reinterpret_cast<const uint16_t*>(plan.wx + e));  // (2^F - wx), wx
    uint32x4_t lo = vmull_u16(vget_low_u16(p0), vget_low_u16(w.val[0]));
    lo = vmlal_u16(lo, vget_low_u16(p1), vget_low_u16(w.val[1]));
    uint32x4_t hi = vmull_high_u16(p0, w.val[0]);
    hi = vmlal_high_u16(hi, p1, w.val[1]);
    vst1q_s32(h + e, vreinterpretq_s32_u32(lo));
    vst1q_s32(h + e + 4, vreinterpretq_s32_u32(hi));
  }
  preprocess_horizontal(plan, row, e, plan.elems, h);
}

void pad(const PreprocessPlan& plan, size_t first, size_t count, float* dst) {
  preprocess_pad_f32(plan, first, count, dst);
}
void pad(const PreprocessPlan& plan, size_t first, size_t count, int8_t* dst) {
  preprocess_pad_qs8(plan, first, count, dst);
}

// Runs every output row; box rows go 8 elements at a time through
// store(v, e, count, dst) with v the vertically interpolated values.
template <class T, class Store>
void run(const PreprocessParams& p, const uint8_t* src, T* dst, void* scratch, Store store) {
  const PreprocessPlan plan = preprocess_plan(p, scratch);
  const size_t by = p.box.w == 0 ? 0 : p.box.y;
  const size_t bh = p.box.w == 0 ? p.out_height : p.box.h;
  int32_t* buf[2] = {plan.rows, plan.rows + ((plan.elems + 7) & ~size_t{7})};
  int32_t tag[2] = {-1, -1};
  // The horizontal sums of source row y, computed unless kept; `keep` is the row not to evict.
  auto row_sums = [&](int32_t y, int32_t keep) -> const int32_t* {
    for (size_t s = 0; s < 2; ++s)
      if (tag[s] == y) return buf[s];
    const size_t s = tag[0] == keep ? 1 : 0;
    horizontal(plan, src + static_cast<size_t>(y) * p.stride, buf[s]);
    tag[s] = y;
    return buf[s];
  };
  for (size_t oy = 0; oy < p.out_height; ++oy, dst += plan.row_elems) {
    if (oy < by || oy >= by + bh) {
      pad(plan, 0, plan.row_elems, dst);
      continue;
    }
    const int32_t* y = plan.ys + 3 * (oy - by);
    const int32_t* h0 = row_sums(y[0], y[1]);
    const int32_t* h1 = row_sums(y[1], y[0]);
    const float32x4_t w0 = vdupq_n_f32(static_cast<float>(2048 - y[2]));
    const float32x4_t w1 = vdupq_n_f32(static_cast<float>(y[2]));
    pad(plan, 0, plan.left_elems, dst);
    T* out = dst + plan.left_elems;
    for (size_t e = 0; e < plan.elems; e += 8) {
      float32x4_t v[2];
      for (size_t i = 0; i < 2; ++i) {
        const float32x4_t a = vcvtq_f32_s32(vld1q_s32(h0 + e + 4 * i));
        const float32x4_t b = vcvtq_f32_s32(vld1q_s32(h1 + e + 4 * i));
        v[i] = vaddq_f32(vmulq_f32(a, w0), vmulq_f32(b, w1));
      }
      const size_t count = plan.elems - e < 8 ? plan.elems - e : 8;
      store(v, e, count, out + e, plan);
    }
    const size_t right = plan.left_elems + plan.elems;
    pad(plan, right, plan.row_elems - right, dst + right);
  }
}

void f32_neon(const PreprocessParams& p, const uint8_t* src, float* dst, void* scratch) {
  run(p, src, dst, scratch,
      [](const float32x4_t* v, size_t e, size_t count, float* out, const PreprocessPlan& plan) {
        float32x4_t y[2];
        for (size_t i = 0; i < 2; ++i) {
          const size_t at = (e + 4 * i) % 24;
          y[i] = vaddq_f32(vmulq_f32(v[i], vld1q_f32(plan.mul + at)), vld1q_f32(plan.add + at));
        }
        if (count == 8) {
          vst1q_f32(out, y[0]);
          vst1q_f32(out + 4, y[1]);
        } else {
          float tmp[8];
          vst1q_f32(tmp, y[0]);
          vst1q_f32(tmp + 4, y[1]);
          std::memcpy(out, tmp, count * sizeof(float));
        }
      });
}

void qs8_neon(const PreprocessParams& p, const uint8_t* src, int8_t* dst, void* scratch) {
  run(p, src, dst, scratch,
      [](const float32x4_t* v, size_t e, size_t count, int8_t* out, const PreprocessPlan& plan) {
        int32x4_t q[2];
        for (size_t i = 0; i < 2; ++i) {
          const size_t at = (e + 4 * i) % 24;
          float32x4_t f = vaddq_f32(vmulq_f32(v[i], vld1q_f32(plan.qmul + at)), vld1q_f32(plan.qadd + at));
          f = vminq_f32(vmaxq_f32(f, vdupq_n_f32(-128.0f)), vdupq_n_f32(127.0f));
          q[i] = vcvtnq_s32_f32(f);
        }
        const int8x8_t q8 = vqmovn_s16(vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1])));
        if (count == 8) {
          vst1_s8(out, q8);
        } else {
          int8_t tmp[8];
          vst1_s8(tmp, q8);
          std::memcpy(out, tmp, count);
        }
      });
}

}  // namespace

const PreprocessUkernel preprocess_neon = {"u8_resize_bilinear_normalize__neon", Isa::neon, f32_neon,
                                           qs8_neon};

}  // namespace huddle::kernels
