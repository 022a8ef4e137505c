// int8 table lookup for AVX-512: the AVX2 kernel's 16 vpshufb sub-tables
// (avx2.cc explains the XOR chain) at 64 bytes per step. It needs only AVX-512
// BW, which every CPU of the avx512vnni variant has; vpermb would need VBMI,
// which not all of them do. Compiled with AVX-512 flags: everything here stays
// in this file.
#include <immintrin.h>

#include <cstring>

#include "kernels/elementwise/elementwise.h"

namespace huddle::kernels {
namespace {

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
  auto load = [](const int8_t* p) { return _mm512_loadu_si512(p); };
  auto store = [](int8_t* p, __m512i r) { _mm512_storeu_si512(p, r); };
  if (n < 64) {  // through a stack buffer
    if (n == 0) return;
    int8_t tmp[64] = {};
    std::memcpy(tmp, x, n);
    store(tmp, block(load(tmp)));
    std::memcpy(y, tmp, n);
    return;
  }
  const __m512i last = block(load(x + n - 64));  // the ragged end, before any store (y may be x)
  for (size_t i = 0; i + 64 <= n; i += 64) store(y + i, block(load(x + i)));
  store(y + n - 64, last);
}

}  // namespace

const QLutUkernel x8_lut_avx512 = {"x8_lut__avx512bw_x64", Isa::avx512vnni, lut_avx512};

}  // namespace huddle::kernels
