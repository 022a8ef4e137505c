// int8 table lookup for AVX-512: the AVX2 kernel's 16 vpshufb sub-tables
// (avx2.cc explains the XOR chain) at 64 bytes per step. It needs only AVX-512
// BW, which every CPU of the avx512vnni variant has; vpermb would need VBMI,
// which not all of them do. The ragged end is rows.h's, instantiated with
// this file's vector traits. Compiled with AVX-512 flags: everything here
// stays in this file.
#include <immintrin.h>

#include "kernels/elementwise/elementwise.h"
#include "kernels/elementwise/rows.h"

namespace huddle::kernels {
namespace {

// 64 int8 lanes.
struct Vec64 {
  using V = __m512i;
  static constexpr size_t kWidth = 64;
  static V load(const int8_t* p) { return _mm512_loadu_si512(p); }
  static void store(int8_t* p, V v) { _mm512_storeu_si512(p, v); }
};

void lut_avx512(size_t n, const int8_t* x, int8_t* y, const int8_t* table) {
  __m512i t[16], v[16];
  for (int k = 0; k < 16; ++k)
    t[k] = _mm512_maskz_broadcast_i32x4(0xffff,
                                        _mm_loadu_si128(reinterpret_cast<const __m128i*>(table + 16 * k)));
  v[0] = t[0];
  for (int k = 1; k < 8; ++k) v[k] = _mm512_xor_si512(t[k], t[k - 1]);
  for (int k = 8; k < 16; ++k) v[k] = _mm512_ternarylogic_epi32(t[k], t[k - 1], v[k - 8], 0x96);  // a^b^c
  const __m512i offset = _mm512_set1_epi8(16);
  auto block = [&](__m512i u) {
    __m512i r = _mm512_shuffle_epi8(v[0], u);
    for (int k = 1; k <= 8; ++k) {
      u = _mm512_sub_epi8(u, offset);
      r = _mm512_xor_si512(r, _mm512_shuffle_epi8(v[k], u));
    }
    for (int k = 9; k < 16; ++k) {
      u = _mm512_subs_epi8(u, offset);
      r = _mm512_xor_si512(r, _mm512_shuffle_epi8(v[k], u));
    }
    return r;
  };
  unary_row<Vec64>(n, x, y, block);
}

}  // namespace

const QLutUkernel x8_lut_avx512 = {"x8_lut__avx512bw_x64", Isa::avx512vnni, lut_avx512};

}  // namespace huddle::kernels
