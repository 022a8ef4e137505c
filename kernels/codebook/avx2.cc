// Codebook fully connected for AVX2 + F16C: 4x8 tile, one 8-column vector of
// weights decoded per k and multiplied into 4 rows with FMA. The fp16 table is
// widened to fp32 once per call (on the stack); 8-bit indices are decoded with
// a gather from it, 4-bit ones with two vpermps over its halves and a blend on
// bit 3. Inputs are widened to fp32 8 k at a time.
// Compiled with -mavx2 -mfma -mf16c: everything here stays in this file.
#include <immintrin.h>

#include <cstring>

#include "kernels/codebook/codebook.h"
#include "kernels/codebook/driver.h"

namespace huddle::kernels {
namespace {

constexpr size_t kMr = 4, kNr = 8, kKc = 8;

// The fp16 table of `packed`, widened to fp32 (entries a multiple of 8).
void widen_table(const void* packed, size_t entries, float* out) {
  const uint8_t* t = static_cast<const uint8_t*>(packed);  // any alignment
  for (size_t i = 0; i < entries; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 2 * i))));
}

// Up to kKc inputs of one row as fp32, zero past kc.
inline void load_x(const float* x, size_t kc, int32_t, float* out) {
  if (kc == kKc) {
    _mm256_storeu_ps(out, _mm256_loadu_ps(x));
    return;
  }
  _mm256_storeu_ps(out, _mm256_setzero_ps());
  std::memcpy(out, x, kc * sizeof(float));
}

inline void load_x(const int8_t* x, size_t kc, int32_t zero_point, float* out) {
  int64_t v = 0;
  std::memcpy(&v, x, kc == kKc ? kKc : kc);
  __m256i q = _mm256_sub_epi32(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(v)), _mm256_set1_epi32(zero_point));
  // Lanes past kc become 0 (they are 0 - zero_point after the subtraction).
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  q = _mm256_and_si256(q, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(kc)), lane));
  _mm256_storeu_ps(out, _mm256_cvtepi32_ps(q));
}

// 8 weights from indices 0..15 in the low bits of each lane.
inline __m256 decode16(__m256i idx, __m256 lo, __m256 hi) {
  return _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx),
                          _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
}

// acc[i] = sum_k x[i][k] * w[k] for the 8 columns of one block.
template <unsigned kBits, size_t kRows, class X>
void accumulate(size_t k, const X* x, size_t x_stride, int32_t zero_point, const uint8_t* w,
                const float* table, __m256 acc[kMr]) {
  const X* xr[kRows];
  for (size_t i = 0; i < kRows; ++i) {
    xr[i] = x + i * x_stride;
    acc[i] = _mm256_setzero_ps();
  }
  __m256 tlo = _mm256_setzero_ps(), thi = _mm256_setzero_ps();
  if (kBits == 4) tlo = _mm256_loadu_ps(table), thi = _mm256_loadu_ps(table + 8);
  alignas(32) float xf[kRows][kKc];
  for (size_t k0 = 0; k0 < k; k0 += kKc) {
    const size_t kc = k - k0 < kKc ? k - k0 : kKc;
    for (size_t i = 0; i < kRows; ++i) load_x(xr[i] + k0, kc, zero_point, xf[i]);
    if (kBits == 8) {
      for (size_t kk = 0; kk < kc; ++kk, w += kNr) {
        const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w)));
        const __m256 wv = _mm256_i32gather_ps(table, idx, 4);
        for (size_t i = 0; i < kRows; ++i)
          acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(&xf[i][kk]), wv, acc[i]);
      }
    } else {
      // Pairs of k; past an odd K the second weight meets x = 0.
      for (size_t kk = 0; kk < kc; kk += 2, w += kNr) {
        const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w)));
        const __m256 w0 = decode16(_mm256_and_si256(b, _mm256_set1_epi32(15)), tlo, thi);
        const __m256 w1 = decode16(_mm256_srli_epi32(b, 4), tlo, thi);
        for (size_t i = 0; i < kRows; ++i) {
          acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(&xf[i][kk]), w0, acc[i]);
          acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(&xf[i][kk + 1]), w1, acc[i]);
        }
      }
    }
  }
}

// The tile codebook_run runs.
struct Tile {
  static constexpr size_t kMr = huddle::kernels::kMr, kNr = huddle::kernels::kNr;
  using Acc = __m256;
  using Bias = __m256;
  using Cols = size_t;
  struct Table {
    alignas(32) float f[256];
  };
  static Bias bias(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  static Cols columns(size_t nc) { return nc; }
  template <unsigned kBits>
  static void prepare(const void* packed, Table& t) {
    widen_table(packed, size_t{1} << kBits, t.f);
  }
  template <unsigned kBits, size_t kRows, class X>
  static void accumulate(size_t k, const X* x, size_t x_stride, int32_t zero_point, const uint8_t* w,
                         const Table& t, Acc acc[kMr]) {
    huddle::kernels::accumulate<kBits, kRows>(k, x, x_stride, zero_point, w, t.f, acc);
  }
};

inline void store_f32(float* dst, size_t nc, __m256 v) {
  if (nc == kNr) {
    _mm256_storeu_ps(dst, v);
  } else {
    float tmp[kNr];
    _mm256_storeu_ps(tmp, v);
    std::memcpy(dst, tmp, nc * sizeof(float));
  }
}

// The output rules.
struct Out {
  struct F32 {
    __m256 lo, hi;
    explicit F32(const CodebookF32Output& out) : lo(_mm256_set1_ps(out.min)), hi(_mm256_set1_ps(out.max)) {}
    void store(float* dst, size_t nc, __m256 bias, __m256 acc) const {
      store_f32(dst, nc, _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(bias, acc), lo), hi));
    }
  };
  struct Qs8F32 {
    __m256 lo, hi, scale;
    Qs8F32(const CodebookQs8Input& in, const CodebookF32Output& out)
        : lo(_mm256_set1_ps(out.min)), hi(_mm256_set1_ps(out.max)), scale(_mm256_set1_ps(in.scale)) {}
    void store(float* dst, size_t nc, __m256 bias, __m256 acc) const {
      const __m256 v = _mm256_add_ps(bias, _mm256_mul_ps(scale, acc));
      store_f32(dst, nc, _mm256_min_ps(_mm256_max_ps(v, lo), hi));
    }
  };
  struct Qs8 {
    __m256 lo, hi, scale, out_scale;
    __m256i zp;
    Qs8(const CodebookQs8Input& in, const CodebookQs8Output& out)
        : lo(_mm256_set1_ps(static_cast<float>(out.min - out.zero_point))),
          hi(_mm256_set1_ps(static_cast<float>(out.max - out.zero_point))),
          scale(_mm256_set1_ps(in.scale)),
          out_scale(_mm256_set1_ps(out.scale)),
          zp(_mm256_set1_epi32(out.zero_point)) {}
    void store(int8_t* dst, size_t nc, __m256 bias, __m256 acc) const {
      __m256 f = _mm256_div_ps(_mm256_add_ps(bias, _mm256_mul_ps(scale, acc)), out_scale);
      f = _mm256_min_ps(_mm256_max_ps(f, lo), hi);
      const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(f), zp);
      const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      const __m128i q8 = _mm_packs_epi16(q16, q16);
      if (nc == kNr) {
        _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), q8);
      } else {
        int8_t tmp[16];
        _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), q8);
        std::memcpy(dst, tmp, nc);
      }
    }
  };
};

using Entry = CodebookEntryPoints<Tile, Out, codebook_fc_avx2>;

}  // namespace

const CodebookFcUkernel codebook_fc_avx2 = {"codebook_fc_4x8__avx2",
                                            Isa::avx2,
                                            kMr,
                                            kNr,
                                            {Entry::f32<4>, Entry::qs8_f32<4>, Entry::qs8<4>},
                                            {Entry::f32<8>, Entry::qs8_f32<8>, Entry::qs8<8>}};

}  // namespace huddle::kernels
