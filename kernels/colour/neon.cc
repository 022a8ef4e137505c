// The colour kernels for baseline AArch64 NEON, 4 points a vector: pixels
// deinterleaved by LD3, the Newton cube root with exact division (FDIV), the
// nearest centre by compare and select (strict <, so ties keep the lowest
// index), and per-cluster sums in fp32 over blocks of 256 points, then added
// to the doubles.
#include <arm_neon.h>

#include <algorithm>

#include "kernels/colour/colour.h"
#include "kernels/colour/scalar.h"

namespace huddle::kernels {
namespace {

struct LabVectors {
  float32x4_t m[9], epsilon, slope, offset, third;
  int32x4_t bias;
  explicit LabVectors(const LabConstants& c) {
    for (int i = 0; i < 9; ++i) m[i] = vdupq_n_f32(c.m[i]);
    epsilon = vdupq_n_f32(c.epsilon);
    slope = vdupq_n_f32(c.slope);
    offset = vdupq_n_f32(c.offset);
    third = vdupq_n_f32(c.third);
    bias = vdupq_n_s32(c.cbrt_bias);
  }
};

inline float32x4_t lab_f(const LabVectors& c, float32x4_t t) {
  const int32x4_t guess =
      vaddq_s32(vcvtq_s32_f32(vmulq_f32(vcvtq_f32_s32(vreinterpretq_s32_f32(t)), c.third)), c.bias);
  float32x4_t y = vreinterpretq_f32_s32(guess);
  for (int step = 0; step < 3; ++step)
    y = vmulq_f32(vaddq_f32(vaddq_f32(y, y), vdivq_f32(t, vmulq_f32(y, y))), c.third);
  const float32x4_t linear = vaddq_f32(vmulq_f32(t, c.slope), c.offset);
  return vbslq_f32(vcgtq_f32(t, c.epsilon), y, linear);
}

// (m0 * r + m1 * g) + m2 * b.
inline float32x4_t row(const float32x4_t* m, float32x4_t r, float32x4_t g, float32x4_t b) {
  return vaddq_f32(vaddq_f32(vmulq_f32(m[0], r), vmulq_f32(m[1], g)), vmulq_f32(m[2], b));
}

// The linear values of 4 bytes.
inline float32x4_t lookup(const float* table, const uint8_t* v) {
  const float x[4] = {table[v[0]], table[v[1]], table[v[2]], table[v[3]]};
  return vld1q_f32(x);
}

void rgb_to_lab(size_t n, const uint8_t* rgb, float* l, float* a, float* b) {
  const LabConstants& constants = lab_constants();
  const LabVectors c(constants);
  const float* table = srgb_linear_table();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint8x8x3_t px = vld3_u8(rgb + 3 * i);
    uint8_t planes[3][8];
    for (int ch = 0; ch < 3; ++ch) vst1_u8(planes[ch], px.val[ch]);
    for (size_t half = 0; half < 8; half += 4) {
      const float32x4_t r = lookup(table, planes[0] + half);
      const float32x4_t g = lookup(table, planes[1] + half);
      const float32x4_t bl = lookup(table, planes[2] + half);
      const float32x4_t fx = lab_f(c, row(c.m, r, g, bl));
      const float32x4_t fy = lab_f(c, row(c.m + 3, r, g, bl));
      const float32x4_t fz = lab_f(c, row(c.m + 6, r, g, bl));
      vst1q_f32(l + i + half, vsubq_f32(vmulq_f32(vdupq_n_f32(116.0f), fy), vdupq_n_f32(16.0f)));
      vst1q_f32(a + i + half, vmulq_f32(vdupq_n_f32(500.0f), vsubq_f32(fx, fy)));
      vst1q_f32(b + i + half, vmulq_f32(vdupq_n_f32(200.0f), vsubq_f32(fy, fz)));
    }
  }
  for (; i < n; ++i) colour_scalar::pixel_to_lab(constants, table, rgb + 3 * i, l + i, a + i, b + i);
}

void kmeans_assign(size_t n, const float* l, const float* a, const float* b, size_t k, const float* centres,
                   uint8_t* labels, double* sums, uint64_t* counts) {
  constexpr size_t kBlock = 256;
  float32x4_t cl[kKmeansMaxCentres], ca[kKmeansMaxCentres], cb[kKmeansMaxCentres];
  uint32x4_t index[kKmeansMaxCentres];
  for (size_t j = 0; j < k; ++j) {
    cl[j] = vdupq_n_f32(centres[3 * j]);
    ca[j] = vdupq_n_f32(centres[3 * j + 1]);
    cb[j] = vdupq_n_f32(centres[3 * j + 2]);
    index[j] = vdupq_n_u32(static_cast<uint32_t>(j));
  }
  const size_t full = n & ~size_t{3};
  for (size_t start = 0; start < full; start += kBlock) {
    const size_t end = std::min(full, start + kBlock);
    float32x4_t sl[kKmeansMaxCentres], sa[kKmeansMaxCentres], sb[kKmeansMaxCentres];
    uint32x4_t count[kKmeansMaxCentres];
    for (size_t j = 0; j < k; ++j) {
      sl[j] = sa[j] = sb[j] = vdupq_n_f32(0.0f);
      count[j] = vdupq_n_u32(0);
    }
    for (size_t i = start; i < end; i += 4) {
      const float32x4_t pl = vld1q_f32(l + i), pa = vld1q_f32(a + i), pb = vld1q_f32(b + i);
      float32x4_t best = vdupq_n_f32(0.0f);
      uint32x4_t label = vdupq_n_u32(0);
      for (size_t j = 0; j < k; ++j) {
        const float32x4_t dl = vsubq_f32(pl, cl[j]), da = vsubq_f32(pa, ca[j]), db = vsubq_f32(pb, cb[j]);
        const float32x4_t d = vaddq_f32(vaddq_f32(vmulq_f32(dl, dl), vmulq_f32(da, da)), vmulq_f32(db, db));
        if (j == 0) {
          best = d;
          continue;
        }
        const uint32x4_t closer = vcltq_f32(d, best);
        best = vbslq_f32(closer, d, best);
        label = vbslq_u32(closer, index[j], label);
      }
      uint32_t lanes[4];
      vst1q_u32(lanes, label);
      for (size_t lane = 0; lane < 4; ++lane) labels[i + lane] = static_cast<uint8_t>(lanes[lane]);
      for (size_t j = 0; j < k; ++j) {
        const uint32x4_t mine = vceqq_u32(label, index[j]);
        sl[j] = vaddq_f32(sl[j], vreinterpretq_f32_u32(vandq_u32(mine, vreinterpretq_u32_f32(pl))));
        sa[j] = vaddq_f32(sa[j], vreinterpretq_f32_u32(vandq_u32(mine, vreinterpretq_u32_f32(pa))));
        sb[j] = vaddq_f32(sb[j], vreinterpretq_f32_u32(vandq_u32(mine, vreinterpretq_u32_f32(pb))));
        count[j] = vsubq_u32(count[j], mine);  // a set lane is all ones, -1
      }
    }
    for (size_t j = 0; j < k; ++j) {
      float lanes[3][4];
      vst1q_f32(lanes[0], sl[j]);
      vst1q_f32(lanes[1], sa[j]);
      vst1q_f32(lanes[2], sb[j]);
      for (int ch = 0; ch < 3; ++ch) {
        double s = 0;
        for (float x : lanes[ch]) s += x;
        sums[3 * j + ch] += s;
      }
      counts[j] += vaddvq_u32(count[j]);
    }
  }
  colour_scalar::assign_points(full, n, l, a, b, k, centres, labels, sums, counts);
}

}  // namespace

const ColourUkernel colour_neon = {"colour__neon", Isa::neon, rgb_to_lab, kmeans_assign};

}  // namespace huddle::kernels
