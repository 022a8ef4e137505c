// int8 elementwise, table lookup and pooling kernels for AVX2. Arithmetic goes
// 8 lanes at a time through int32 and fp32 in the order the specification
// writes it (elementwise.h, pool.h); 16 results are packed back to int8 per
// step. The lookup splits the 256-entry table into 16 vpshufb sub-tables.
// The loops around the vectors (ragged ends, rows, pooling windows) are
// rows.h's, instantiated with this file's vector traits.
// Compiled with -mavx2 -mfma: everything here stays in this file.
#include <immintrin.h>

#include "kernels/elementwise/elementwise.h"
#include "kernels/elementwise/pool.h"
#include "kernels/elementwise/rows.h"

namespace huddle::kernels {
namespace {

// 16 int8 lanes: the unit of the arithmetic kernels and pooling.
struct Vec16 {
  using V = __m128i;
  static constexpr size_t kWidth = 16;
  static V load(const int8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
  static void store(int8_t* p, V v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
};

// 32 int8 lanes: the unit of the table lookup.
struct Vec32 {
  using V = __m256i;
  static constexpr size_t kWidth = 32;
  static V load(const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
  static void store(int8_t* p, V v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
};

// The output side of a requantisation, broadcast.
struct Requant {
  __m256 lo, hi;
  __m256i zp;
};

inline Requant make_requant(const QGemmOutput& out) {
  return {_mm256_set1_ps(static_cast<float>(out.min - out.zero_point)),
          _mm256_set1_ps(static_cast<float>(out.max - out.zero_point)), _mm256_set1_epi32(out.zero_point)};
}

// qs8_requant_f32 on 8 lanes, before the narrowing to int8.
inline __m256i requant8(__m256 f, const Requant& r) {
  f = _mm256_min_ps(_mm256_max_ps(f, r.lo), r.hi);
  return _mm256_add_epi32(_mm256_cvtps_epi32(f), r.zp);
}

// 16 int32 (already in [-128, 127]) to 16 int8, in order.
inline __m128i pack16(__m256i q0, __m256i q1) {
  const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xd8);
  return _mm_packs_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
}

// Lanes 8h..8h+7 of v widened to int32.
inline __m256i widen8(__m128i v, int h) { return _mm256_cvtepi8_epi32(h == 0 ? v : _mm_srli_si128(v, 8)); }

void add_avx2(size_t rows, size_t channels, const int8_t* a, const int8_t* b, size_t b_stride, int8_t* y,
              const QBinaryParams& p) {
  const Requant rq = make_requant(p.out);
  const __m256i za = _mm256_set1_epi32(p.a_zero_point), zb = _mm256_set1_epi32(p.b_zero_point);
  const __m256 ma = _mm256_set1_ps(p.a_multiplier), mb = _mm256_set1_ps(p.b_multiplier);
  binary_rows<Vec16>(rows, channels, a, b, b_stride, y, [&](__m128i va, __m128i vb) {
    __m256i q[2];
    for (int h = 0; h < 2; ++h) {
      const __m256 fa = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(widen8(va, h), za)), ma);
      const __m256 fb = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(widen8(vb, h), zb)), mb);
      q[h] = requant8(_mm256_add_ps(fa, fb), rq);
    }
    return pack16(q[0], q[1]);
  });
}

void add_scalar_avx2(size_t n, const int8_t* a, int8_t b, int8_t* y, const QBinaryParams& p) {
  const Requant rq = make_requant(p.out);
  const __m256i za = _mm256_set1_epi32(p.a_zero_point);
  const __m256 ma = _mm256_set1_ps(p.a_multiplier);
  const __m256 fb = _mm256_set1_ps(static_cast<float>(int32_t{b} - p.b_zero_point) * p.b_multiplier);
  unary_row<Vec16>(n, a, y, [&](__m128i va) {
    __m256i q[2];
    for (int h = 0; h < 2; ++h) {
      const __m256 fa = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(widen8(va, h), za)), ma);
      q[h] = requant8(_mm256_add_ps(fa, fb), rq);
    }
    return pack16(q[0], q[1]);
  });
}

void mul_avx2(size_t rows, size_t channels, const int8_t* a, const int8_t* b, size_t b_stride, int8_t* y,
              const QBinaryParams& p) {
  const Requant rq = make_requant(p.out);
  const __m256i za = _mm256_set1_epi32(p.a_zero_point), zb = _mm256_set1_epi32(p.b_zero_point);
  const __m256 m = _mm256_set1_ps(p.a_multiplier);
  binary_rows<Vec16>(rows, channels, a, b, b_stride, y, [&](__m128i va, __m128i vb) {
    __m256i q[2];
    for (int h = 0; h < 2; ++h) {
      const __m256i prod =
          _mm256_mullo_epi32(_mm256_sub_epi32(widen8(va, h), za), _mm256_sub_epi32(widen8(vb, h), zb));
      q[h] = requant8(_mm256_mul_ps(_mm256_cvtepi32_ps(prod), m), rq);
    }
    return pack16(q[0], q[1]);
  });
}

void mul_scalar_avx2(size_t n, const int8_t* a, int8_t b, int8_t* y, const QBinaryParams& p) {
  const Requant rq = make_requant(p.out);
  const __m256i za = _mm256_set1_epi32(p.a_zero_point), vb = _mm256_set1_epi32(int32_t{b} - p.b_zero_point);
  const __m256 m = _mm256_set1_ps(p.a_multiplier);
  unary_row<Vec16>(n, a, y, [&](__m128i va) {
    __m256i q[2];
    for (int h = 0; h < 2; ++h) {
      const __m256i prod = _mm256_mullo_epi32(_mm256_sub_epi32(widen8(va, h), za), vb);
      q[h] = requant8(_mm256_mul_ps(_mm256_cvtepi32_ps(prod), m), rq);
    }
    return pack16(q[0], q[1]);
  });
}

void rescale_avx2(size_t rows, size_t channels, const int8_t* x, size_t x_stride, int8_t* y, size_t y_stride,
                  const QRescaleParams& p) {
  const Requant rq = make_requant(p.out);
  const __m256i zx = _mm256_set1_epi32(p.x_zero_point);
  const __m256 m = _mm256_set1_ps(p.multiplier);
  auto block = [&](__m128i vx) {
    __m256i q[2];
    for (int h = 0; h < 2; ++h)
      q[h] = requant8(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(widen8(vx, h), zx)), m), rq);
    return pack16(q[0], q[1]);
  };
  unary_rows<Vec16>(rows, channels, x, x_stride, y, y_stride, block);
}

// Table lookup with vpshufb, which reads a 16-byte sub-table and gives 0 for an
// index byte with bit 7 set. Step k looks up sub-table v[k] at index u - 16k
// (u = the byte as unsigned; wrapping for k <= 8, signed-saturating after), so
// the steps that hit are k = 0..hi for u < 128 and k = hi-7..hi for u >= 128
// (hi = u >> 4), all at the low nibble of u. The sub-tables are XOR differences
// chosen so the hits XOR to table[u]: v[0] = t[0], v[k] = t[k] ^ t[k-1] (k < 8),
// v[k] = t[k] ^ t[k-1] ^ v[k-8] (k >= 8).
void lut_avx2(size_t n, const int8_t* x, int8_t* y, const int8_t* table) {
  __m256i t[16], v[16];
  for (int k = 0; k < 16; ++k)
    t[k] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * k)));
  v[0] = t[0];
  for (int k = 1; k < 8; ++k) v[k] = _mm256_xor_si256(t[k], t[k - 1]);
  for (int k = 8; k < 16; ++k) v[k] = _mm256_xor_si256(_mm256_xor_si256(t[k], t[k - 1]), v[k - 8]);
  const __m256i offset = _mm256_set1_epi8(16);
  auto block = [&](__m256i u) {
    __m256i r = _mm256_shuffle_epi8(v[0], u);
    for (int k = 1; k <= 8; ++k) {
      u = _mm256_sub_epi8(u, offset);
      r = _mm256_xor_si256(r, _mm256_shuffle_epi8(v[k], u));
    }
    for (int k = 9; k < 16; ++k) {
      u = _mm256_subs_epi8(u, offset);
      r = _mm256_xor_si256(r, _mm256_shuffle_epi8(v[k], u));
    }
    return r;
  };
  unary_row<Vec32>(n, x, y, block);
}

// Pooling (rows.h): 16 channels per step, under 16 to the reference loop.
void maxpool_avx2(const QPoolShape& s, const int8_t* x, int8_t* y, int8_t min, int8_t max) {
  if (s.channels < Vec16::kWidth) return qs8_pool_ref.maxpool(s, x, y, min, max);
  const __m128i vmin = _mm_set1_epi8(min), vmax = _mm_set1_epi8(max);
  pool_windows(s, x, y, [&](const PoolWindow& w, int8_t* out) {
    pool_channels<Vec16>(s.channels, out, [&](size_t c0) {
      __m128i m = _mm_set1_epi8(-128);
      pool_cells<Vec16>(w, c0, [&](__m128i v) { m = _mm_max_epi8(m, v); });
      return _mm_min_epi8(_mm_max_epi8(m, vmin), vmax);
    });
  });
}

// Adds the 16 lanes of v into acc (int32).
inline void accumulate16(__m128i v, __m256i acc[2]) {
  acc[0] = _mm256_add_epi32(acc[0], widen8(v, 0));
  acc[1] = _mm256_add_epi32(acc[1], widen8(v, 1));
}

// out[0 .. w.channels) = the sums over w's cells of each channel less the
// zero point, times m, requantised.
inline void average_window(const PoolWindow& w, int32_t zero_point, __m256 m, const Requant& rq,
                           int8_t* out) {
  const __m256i bias = _mm256_set1_epi32(static_cast<int32_t>(w.cells()) * zero_point);
  pool_channels<Vec16>(w.channels, out, [&](size_t c0) {
    __m256i acc[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    pool_cells<Vec16>(w, c0, [&](__m128i v) { accumulate16(v, acc); });
    __m256i q[2];
    for (int h = 0; h < 2; ++h)
      q[h] = requant8(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[h], bias)), m), rq);
    return pack16(q[0], q[1]);
  });
}

void avgpool_avx2(const QPoolShape& s, const int8_t* x, int8_t* y, const QAvgPoolParams& p) {
  if (s.channels < Vec16::kWidth) return qs8_pool_ref.avgpool(s, x, y, p);
  const Requant rq = make_requant(p.out);
  pool_windows(s, x, y, [&](const PoolWindow& w, int8_t* out) {
    average_window(w, p.in_zero_point, _mm256_set1_ps(pool_average_scale(s, p, w)), rq, out);
  });
}

void global_avgpool_avx2(size_t batch, size_t pixels, size_t channels, const int8_t* x, int8_t* y,
                         const QAvgPoolParams& p) {
  if (channels < Vec16::kWidth) return qs8_pool_ref.global_avgpool(batch, pixels, channels, x, y, p);
  const Requant rq = make_requant(p.out);
  const __m256 m = _mm256_set1_ps(p.scale / static_cast<float>(pixels ? pixels : 1));
  for (size_t b = 0; b < batch; ++b)
    average_window(pool_row(x + b * pixels * channels, pixels, channels), p.in_zero_point, m, rq,
                   y + b * channels);
}

}  // namespace

const QElementwiseUkernel qs8_elementwise_avx2 = {"qs8_elementwise_minmax_fp32__avx2_x16",
                                                  Isa::avx2,
                                                  add_avx2,
                                                  add_scalar_avx2,
                                                  mul_avx2,
                                                  mul_scalar_avx2,
                                                  rescale_avx2};

const QLutUkernel x8_lut_avx2 = {"x8_lut__avx2_x32", Isa::avx2, lut_avx2};

const QPoolUkernel qs8_pool_avx2 = {"qs8_pool_minmax_fp32__avx2_c16", Isa::avx2, maxpool_avx2, avgpool_avx2,
                                    global_avgpool_avx2};

}  // namespace huddle::kernels
