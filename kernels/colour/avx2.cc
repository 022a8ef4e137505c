// The colour kernels for AVX2, 8 points a vector: table lookups by gather,
// the Newton cube root with exact division, the nearest centre by compare
// and blend (strict <, so ties keep the lowest index), and per-cluster sums
// in fp32 over blocks of 256 points, then added to the doubles.
#include <immintrin.h>

#include <algorithm>

#include "kernels/colour/colour.h"
#include "kernels/colour/scalar.h"

namespace huddle::kernels {
namespace {

struct LabVectors {
  __m256 m[9], epsilon, slope, offset, third, k116, k16, k500, k200;
  __m256i bias;
  explicit LabVectors(const LabConstants& c) {
    for (int i = 0; i < 9; ++i) m[i] = _mm256_set1_ps(c.m[i]);
    epsilon = _mm256_set1_ps(c.epsilon);
    slope = _mm256_set1_ps(c.slope);
    offset = _mm256_set1_ps(c.offset);
    third = _mm256_set1_ps(c.third);
    bias = _mm256_set1_epi32(c.cbrt_bias);
    k116 = _mm256_set1_ps(116.0f);
    k16 = _mm256_set1_ps(16.0f);
    k500 = _mm256_set1_ps(500.0f);
    k200 = _mm256_set1_ps(200.0f);
  }
};

inline __m256 lab_f(const LabVectors& c, __m256 t) {
  const __m256i guess = _mm256_add_epi32(
      _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_castps_si256(t)), c.third)), c.bias);
  __m256 y = _mm256_castsi256_ps(guess);
  for (int step = 0; step < 3; ++step)
    y = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(y, y), _mm256_div_ps(t, _mm256_mul_ps(y, y))), c.third);
  const __m256 linear = _mm256_add_ps(_mm256_mul_ps(t, c.slope), c.offset);
  return _mm256_blendv_ps(linear, y, _mm256_cmp_ps(t, c.epsilon, _CMP_GT_OQ));
}

// (m0 * r + m1 * g) + m2 * b.
inline __m256 row(const __m256* m, __m256 r, __m256 g, __m256 b) {
  return _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(m[0], r), _mm256_mul_ps(m[1], g)), _mm256_mul_ps(m[2], b));
}

void rgb_to_lab(size_t n, const uint8_t* rgb, float* l, float* a, float* b) {
  const LabConstants& constants = lab_constants();
  const LabVectors c(constants);
  const float* table = srgb_linear_table();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const uint8_t* p = rgb + 3 * i;
    const __m256i ir = _mm256_setr_epi32(p[0], p[3], p[6], p[9], p[12], p[15], p[18], p[21]);
    const __m256i ig = _mm256_setr_epi32(p[1], p[4], p[7], p[10], p[13], p[16], p[19], p[22]);
    const __m256i ib = _mm256_setr_epi32(p[2], p[5], p[8], p[11], p[14], p[17], p[20], p[23]);
    const __m256 r = _mm256_i32gather_ps(table, ir, 4);
    const __m256 g = _mm256_i32gather_ps(table, ig, 4);
    const __m256 bl = _mm256_i32gather_ps(table, ib, 4);
    const __m256 fx = lab_f(c, row(c.m, r, g, bl));
    const __m256 fy = lab_f(c, row(c.m + 3, r, g, bl));
    const __m256 fz = lab_f(c, row(c.m + 6, r, g, bl));
    _mm256_storeu_ps(l + i, _mm256_sub_ps(_mm256_mul_ps(c.k116, fy), c.k16));
    _mm256_storeu_ps(a + i, _mm256_mul_ps(c.k500, _mm256_sub_ps(fx, fy)));
    _mm256_storeu_ps(b + i, _mm256_mul_ps(c.k200, _mm256_sub_ps(fy, fz)));
  }
  for (; i < n; ++i) colour_scalar::pixel_to_lab(constants, table, rgb + 3 * i, l + i, a + i, b + i);
}

// Adds the 8 lanes of v to *sum in double.
inline void add_lanes(__m256 v, double* sum) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  double s = 0;
  for (float x : lanes) s += x;
  *sum += s;
}

void kmeans_assign(size_t n, const float* l, const float* a, const float* b, size_t k, const float* centres,
                   uint8_t* labels, double* sums, uint64_t* counts) {
  constexpr size_t kBlock = 256;
  __m256 cl[kKmeansMaxCentres], ca[kKmeansMaxCentres], cb[kKmeansMaxCentres], index[kKmeansMaxCentres];
  for (size_t j = 0; j < k; ++j) {
    cl[j] = _mm256_set1_ps(centres[3 * j]);
    ca[j] = _mm256_set1_ps(centres[3 * j + 1]);
    cb[j] = _mm256_set1_ps(centres[3 * j + 2]);
    index[j] = _mm256_set1_ps(static_cast<float>(j));
  }
  const size_t full = n & ~size_t{7};
  for (size_t start = 0; start < full; start += kBlock) {
    const size_t end = std::min(full, start + kBlock);
    __m256 sl[kKmeansMaxCentres], sa[kKmeansMaxCentres], sb[kKmeansMaxCentres];
    __m256i count[kKmeansMaxCentres];
    for (size_t j = 0; j < k; ++j) {
      sl[j] = sa[j] = sb[j] = _mm256_setzero_ps();
      count[j] = _mm256_setzero_si256();
    }
    for (size_t i = start; i < end; i += 8) {
      const __m256 pl = _mm256_loadu_ps(l + i), pa = _mm256_loadu_ps(a + i), pb = _mm256_loadu_ps(b + i);
      __m256 best = _mm256_setzero_ps(), label = _mm256_setzero_ps();
      for (size_t j = 0; j < k; ++j) {
        const __m256 dl = _mm256_sub_ps(pl, cl[j]), da = _mm256_sub_ps(pa, ca[j]),
                     db = _mm256_sub_ps(pb, cb[j]);
        const __m256 d =
            _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(dl, dl), _mm256_mul_ps(da, da)), _mm256_mul_ps(db, db));
        if (j == 0) {
          best = d;
          continue;
        }
        const __m256 closer = _mm256_cmp_ps(d, best, _CMP_LT_OQ);
        best = _mm256_blendv_ps(best, d, closer);
        label = _mm256_blendv_ps(label, index[j], closer);
      }
      const __m256i label_i = _mm256_cvttps_epi32(label);
      alignas(32) int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), label_i);
      for (size_t lane = 0; lane < 8; ++lane) labels[i + lane] = static_cast<uint8_t>(lanes[lane]);
      for (size_t j = 0; j < k; ++j) {
        const __m256 mine = _mm256_cmp_ps(label, index[j], _CMP_EQ_OQ);
        sl[j] = _mm256_add_ps(sl[j], _mm256_and_ps(mine, pl));
        sa[j] = _mm256_add_ps(sa[j], _mm256_and_ps(mine, pa));
        sb[j] = _mm256_add_ps(sb[j], _mm256_and_ps(mine, pb));
        count[j] = _mm256_sub_epi32(count[j], _mm256_castps_si256(mine));  // a set lane is -1
      }
    }
    for (size_t j = 0; j < k; ++j) {
      add_lanes(sl[j], sums + 3 * j);
      add_lanes(sa[j], sums + 3 * j + 1);
      add_lanes(sb[j], sums + 3 * j + 2);
      alignas(32) int32_t lanes[8];
      _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), count[j]);
      for (int32_t c : lanes) counts[j] += static_cast<uint64_t>(c);
    }
  }
  colour_scalar::assign_points(full, n, l, a, b, k, centres, labels, sums, counts);
}

}  // namespace

const ColourUkernel colour_avx2 = {"colour__avx2", Isa::avx2, rgb_to_lab, kmeans_assign};

}  // namespace huddle::kernels
