// Codebook fully connected for AVX-512 (F/BW/VL; the avx512vnni level): 4x16
// tile, one 16-column vector of weights decoded per k and multiplied into 4
// rows with FMA. The fp16 table is widened to fp32 once per call (on the
// stack); 4-bit indices are decoded with one vpermps over the 16 entries,
// 8-bit ones with a gather. Partial columns are written with masked stores.
// Compiled with AVX-512 flags: everything here stays in this file.
#include "kernels/avx512_intrinsics.h"

#include <cstring>

#include "kernels/codebook/codebook.h"
#include "kernels/codebook/driver.h"

namespace huddle::kernels {
namespace {

constexpr size_t kMr = 4, kNr = 16, kKc = 8;

// Up to kKc inputs of one row as fp32, zero past kc.
inline void load_x(const float* x, size_t kc, int32_t, float* out) {
  _mm256_storeu_ps(out, _mm256_maskz_loadu_ps(static_cast<__mmask8>((1u << kc) - 1), x));
}

inline void load_x(const int8_t* x, size_t kc, int32_t zero_point, float* out) {
  const __mmask8 live = static_cast<__mmask8>((1u << kc) - 1);
  const __m256i q = _mm256_cvtepi8_epi32(_mm_maskz_loadu_epi8(live, x));
  _mm256_storeu_ps(out, _mm256_cvtepi32_ps(_mm256_maskz_sub_epi32(live, q, _mm256_set1_epi32(zero_point))));
}

// acc[i] = sum_k x[i][k] * w[k] for the 16 columns of one block.
template <unsigned kBits, size_t kRows, class X>
void accumulate(size_t k, const X* x, size_t x_stride, int32_t zero_point, const uint8_t* w,
                const float* table, __m512 acc[kMr]) {
  const X* xr[kRows];
  for (size_t i = 0; i < kRows; ++i) {
    xr[i] = x + i * x_stride;
    acc[i] = _mm512_setzero_ps();
  }
  const __m512 t16 = _mm512_loadu_ps(table);
  alignas(32) float xf[kRows][kKc];
  for (size_t k0 = 0; k0 < k; k0 += kKc) {
    const size_t kc = k - k0 < kKc ? k - k0 : kKc;
    for (size_t i = 0; i < kRows; ++i) load_x(xr[i] + k0, kc, zero_point, xf[i]);
    if (kBits == 8) {
      for (size_t kk = 0; kk < kc; ++kk, w += kNr) {
        const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
        const __m512 wv = _mm512_i32gather_ps(idx, table, 4);
        for (size_t i = 0; i < kRows; ++i) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(xf[i][kk]), wv, acc[i]);
      }
    } else {
      // Pairs of k; past an odd K the second weight meets x = 0.
      for (size_t kk = 0; kk < kc; kk += 2, w += kNr) {
        const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
        const __m512 w0 = _mm512_permutexvar_ps(_mm512_and_si512(b, _mm512_set1_epi32(15)), t16);
        const __m512 w1 = _mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), t16);
        for (size_t i = 0; i < kRows; ++i) {
          acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(xf[i][kk]), w0, acc[i]);
          acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(xf[i][kk + 1]), w1, acc[i]);
        }
      }
    }
  }
}

// The tile codebook_run runs.
struct Tile {
  static constexpr size_t kMr = huddle::kernels::kMr, kNr = huddle::kernels::kNr;
  using Acc = __m512;
  using Bias = __m512;
  using Cols = __mmask16;  // the columns below n
  struct Table {
    alignas(64) float f[256];
  };
  static Bias bias(const uint8_t* p) { return _mm512_loadu_ps(reinterpret_cast<const float*>(p)); }
  static Cols columns(size_t nc) { return static_cast<__mmask16>((1u << nc) - 1); }
  // The fp16 table widened to fp32.
  template <unsigned kBits>
  static void prepare(const void* packed, Table& t) {
    const uint8_t* t16 = static_cast<const uint8_t*>(packed);  // any alignment
    for (size_t i = 0; i < size_t{1} << kBits; i += 16)
      _mm512_store_ps(t.f + i,
                      _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t16 + 2 * i))));
  }
  template <unsigned kBits, size_t kRows, class X>
  static void accumulate(size_t k, const X* x, size_t x_stride, int32_t zero_point, const uint8_t* w,
                         const Table& t, Acc acc[kMr]) {
    huddle::kernels::accumulate<kBits, kRows>(k, x, x_stride, zero_point, w, t.f, acc);
  }
};

// The output rules (masked stores write only the columns below n).
struct Out {
  struct F32 {
    __m512 lo, hi;
    explicit F32(const CodebookF32Output& out) : lo(_mm512_set1_ps(out.min)), hi(_mm512_set1_ps(out.max)) {}
    void store(float* dst, __mmask16 mask, __m512 bias, __m512 acc) const {
      _mm512_mask_storeu_ps(dst, mask, _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(bias, acc), lo), hi));
    }
  };
  struct Qs8F32 {
    __m512 lo, hi, scale;
    Qs8F32(const CodebookQs8Input& in, const CodebookF32Output& out)
        : lo(_mm512_set1_ps(out.min)), hi(_mm512_set1_ps(out.max)), scale(_mm512_set1_ps(in.scale)) {}
    void store(float* dst, __mmask16 mask, __m512 bias, __m512 acc) const {
      const __m512 v = _mm512_add_ps(bias, _mm512_mul_ps(scale, acc));
      _mm512_mask_storeu_ps(dst, mask, _mm512_min_ps(_mm512_max_ps(v, lo), hi));
    }
  };
  struct Qs8 {
    __m512 lo, hi, scale, out_scale;
    __m512i zp;
    Qs8(const CodebookQs8Input& in, const CodebookQs8Output& out)
        : lo(_mm512_set1_ps(static_cast<float>(out.min - out.zero_point))),
          hi(_mm512_set1_ps(static_cast<float>(out.max - out.zero_point))),
          scale(_mm512_set1_ps(in.scale)),
          out_scale(_mm512_set1_ps(out.scale)),
          zp(_mm512_set1_epi32(out.zero_point)) {}
    void store(int8_t* dst, __mmask16 mask, __m512 bias, __m512 acc) const {
      __m512 f = _mm512_div_ps(_mm512_add_ps(bias, _mm512_mul_ps(scale, acc)), out_scale);
      f = _mm512_min_ps(_mm512_max_ps(f, lo), hi);
      const __m128i q8 = _mm512_cvtsepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), zp));
      _mm_mask_storeu_epi8(dst, mask, q8);
    }
  };
};

using Entry = CodebookEntryPoints<Tile, Out, codebook_fc_avx512>;

}  // namespace

const CodebookFcUkernel codebook_fc_avx512 = {"codebook_fc_4x16__avx512",
                                              Isa::avx512vnni,
                                              kMr,
                                              kNr,
                                              {Entry::f32<4>, Entry::qs8_f32<4>, Entry::qs8<4>},
                                              {Entry::f32<8>, Entry::qs8_f32<8>, Entry::qs8<8>}};

}  // namespace huddle::kernels
