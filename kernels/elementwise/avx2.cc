// int8 elementwise, table lookup and pooling kernels for AVX2. Arithmetic goes
// 8 lanes at a time through int32 and fp32 in the order the specification
// writes it (elementwise.h, pool.h); 16 results are packed back to int8 per
// step. The lookup splits the 256-entry table into 16 vpshufb sub-tables.
// A ragged end is one vector overlapping the last full one, recomputed from the
// inputs; only rows shorter than a vector go through small stack buffers, so
// nothing past a tensor is read or written.
// Compiled with -mavx2 -mfma: everything here stays in this file.
#include <immintrin.h>

#include <cstring>

#include "kernels/elementwise/elementwise.h"
#include "kernels/elementwise/pool.h"

namespace huddle::kernels {
namespace {

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

inline __m128i load16(const int8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// The first n (< 16) bytes at p, the rest zero.
inline __m128i load16_part(const int8_t* p, size_t n) {
  int8_t tmp[16] = {};
  std::memcpy(tmp, p, n);
  return load16(tmp);
}

inline void store16(int8_t* p, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }

inline void store16_part(int8_t* p, __m128i v, size_t n) {
  int8_t tmp[16];
  store16(tmp, v);
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
  const __m128i last = block(load16(a + n - 16), load16(b + n - 16));
  for (size_t i = 0; i + 16 <= n; i += 16) store16(y + i, block(load16(a + i), load16(b + i)));
  store16(y + n - 16, last);
}

// y[i] = block(x[i..]) 16 at a time, the ragged end as in binary_row.
template <class Block>
inline void unary_row(size_t n, const int8_t* x, int8_t* y, const Block& block) {
  if (n < 16) {
    if (n == 0) return;
    store16_part(y, block(load16_part(x, n)), n);
    return;
  }
  const __m128i last = block(load16(x + n - 16));
  for (size_t i = 0; i + 16 <= n; i += 16) store16(y + i, block(load16(x + i)));
  store16(y + n - 16, last);
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

void add_avx2(size_t rows, size_t channels, const int8_t* a, const int8_t* b, size_t b_stride, int8_t* y,
              const QBinaryParams& p) {
  const Requant rq = make_requant(p.out);
  const __m256i za = _mm256_set1_epi32(p.a_zero_point), zb = _mm256_set1_epi32(p.b_zero_point);
  const __m256 ma = _mm256_set1_ps(p.a_multiplier), mb = _mm256_set1_ps(p.b_multiplier);
  binary_rows(rows, channels, a, b, b_stride, y, [&](__m128i va, __m128i vb) {
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
  unary_row(n, a, y, [&](__m128i va) {
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
  binary_rows(rows, channels, a, b, b_stride, y, [&](__m128i va, __m128i vb) {
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
  unary_row(n, a, y, [&](__m128i va) {
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
  if (x_stride == channels && y_stride == channels) {
    unary_row(rows * channels, x, y, block);
  } else {
    for (size_t r = 0; r < rows; ++r) unary_row(channels, x + r * x_stride, y + r * y_stride, block);
  }
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
  auto load = [](const int8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); };
  auto store = [](int8_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); };
  if (n < 32) {  // through a stack buffer
    if (n == 0) return;
    int8_t tmp[32] = {};
    std::memcpy(tmp, x, n);
    store(tmp, block(load(tmp)));
    std::memcpy(y, tmp, n);
    return;
  }
  const __m256i last = block(load(x + n - 32));  // the ragged end, before any store (y may be x)
  for (size_t i = 0; i + 32 <= n; i += 32) store(y + i, block(load(x + i)));
  store(y + n - 32, last);
}

// Pooling runs 16 channels per step, the ragged end as one step overlapping
// the last full one; under 16 channels the reference loop is faster than
// vectors of mostly padding, so those calls go to it.
constexpr size_t kPoolChannels = 16;

void maxpool_avx2(const QPoolShape& s, const int8_t* x, int8_t* y, int8_t min, int8_t max) {
  if (s.channels < kPoolChannels) return qs8_pool_ref.maxpool(s, x, y, min, max);
  const __m128i vmin = _mm_set1_epi8(min), vmax = _mm_set1_epi8(max);
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
          __m128i m = _mm_set1_epi8(-128);
          for (size_t ih = h0; ih < h1; ++ih) {
            const int8_t* row = x + ((b * s.in_h + ih) * s.in_w) * s.channels + c0;
            for (size_t iw = w0; iw < w1; ++iw) m = _mm_max_epi8(m, load16(row + iw * s.channels));
          }
          store16(out + c0, _mm_min_epi8(_mm_max_epi8(m, vmin), vmax));
        }
      }
    }
  }
}

// Requantises 16 channel sums acc[0..1] (int32, before subtracting the zero
// point `cells` times) with multiplier `m`.
inline __m128i requant_sums(const __m256i acc[2], size_t cells, int32_t zero_point, __m256 m,
                            const Requant& rq) {
  const __m256i bias = _mm256_set1_epi32(static_cast<int32_t>(cells) * zero_point);
  __m256i q[2];
  for (int h = 0; h < 2; ++h)
    q[h] = requant8(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc[h], bias)), m), rq);
  return pack16(q[0], q[1]);
}

void avgpool_avx2(const QPoolShape& s, const int8_t* x, int8_t* y, const QAvgPoolParams& p) {
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
        const __m256 m = _mm256_set1_ps(p.scale / static_cast<float>(count));
        int8_t* out = y + ((b * s.out_h + oh) * s.out_w + ow) * s.channels;
        for (size_t c = 0; c < s.channels; c += kPoolChannels) {
          const size_t c0 = c + kPoolChannels <= s.channels ? c : s.channels - kPoolChannels;
          __m256i acc[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
          for (size_t ih = h0; ih < h1; ++ih) {
            const int8_t* row = x + ((b * s.in_h + ih) * s.in_w) * s.channels + c0;
            for (size_t iw = w0; iw < w1; ++iw) {
              const __m128i v = load16(row + iw * s.channels);
              acc[0] = _mm256_add_epi32(acc[0], widen8(v, 0));
              acc[1] = _mm256_add_epi32(acc[1], widen8(v, 1));
            }
          }
          store16(out + c0, requant_sums(acc, cells, p.in_zero_point, m, rq));
        }
      }
    }
  }
}

void global_avgpool_avx2(size_t batch, size_t pixels, size_t channels, const int8_t* x, int8_t* y,
                         const QAvgPoolParams& p) {
  if (channels < kPoolChannels) return qs8_pool_ref.global_avgpool(batch, pixels, channels, x, y, p);
  const Requant rq = make_requant(p.out);
  const __m256 m = _mm256_set1_ps(p.scale / static_cast<float>(pixels ? pixels : 1));
  for (size_t b = 0; b < batch; ++b) {
    const int8_t* xb = x + b * pixels * channels;
    for (size_t c = 0; c < channels; c += kPoolChannels) {
      const size_t c0 = c + kPoolChannels <= channels ? c : channels - kPoolChannels;
      __m256i acc[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
      for (size_t i = 0; i < pixels; ++i) {
        const __m128i v = load16(xb + i * channels + c0);
        acc[0] = _mm256_add_epi32(acc[0], widen8(v, 0));
        acc[1] = _mm256_add_epi32(acc[1], widen8(v, 1));
      }
      store16(y + b * channels + c0, requant_sums(acc, pixels, p.in_zero_point, m, rq));
    }
  }
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
