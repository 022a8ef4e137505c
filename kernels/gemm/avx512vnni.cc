// int8 GEMM for AVX-512 VNNI: 8x32 tile, K in groups of 4 ("c4"). vpdpbusd
// multiplies unsigned by signed bytes, so A is turned into uint8 (a + 128, an
// xor of the sign bit) as it is broadcast; packing folds 128 * sum(w) into the
// bias (a_offset = 128). Weights stay int8, loaded once per group for all rows.
#include "kernels/avx512_intrinsics.h"

#include <cstring>

#include "kernels/gemm/driver.h"
#include "kernels/gemm/gemm.h"

namespace huddle::kernels {
namespace {

// acc + dot(a as uint8, b as int8) per 32-bit lane. GCC 12 surrounds the
// intrinsic with register copies of every accumulator (it does not keep the
// tied operand in place); one instruction of inline asm keeps them put.
inline __m512i dpbusd(__m512i acc, __m512i a, __m512i b) {
#if defined(__GNUC__) && !defined(__clang__)
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
#else
  return _mm512_dpbusd_epi32(acc, a, b);
#endif
}

struct VnniTile {
  static constexpr size_t kMr = 8, kNr = 32, kKr = 4;
  static constexpr size_t kHeader = kNr * (sizeof(int32_t) + sizeof(float));

  template <class Out>
  static void run(size_t mr, size_t nc, size_t kc, size_t ks, const int8_t* base, const size_t* offsets,
                  const int8_t* zero, const uint8_t* block, Out* c, size_t c_stride, const QGemmOutput& out) {
    const uint8_t* w = block + kHeader;
    const __m512i flip = _mm512_set1_epi32(static_cast<int32_t>(0x80808080u));
    __m512i acc0[kMr], acc1[kMr];  // columns 0-15 and 16-31 of each row
#pragma GCC unroll 8
    for (size_t i = 0; i < kMr; ++i) acc0[i] = acc1[i] = _mm512_setzero_si512();
    for (size_t s = 0; s < ks; ++s) {
      const int8_t* ar[kMr];
#pragma GCC unroll 8
      for (size_t i = 0; i < kMr; ++i) ar[i] = indirect_row(base, offsets[s * kMr + i], zero);
      size_t kk = 0;
      for (; kk + kKr <= kc; kk += kKr) {
        const __m512i b0 = _mm512_loadu_si512(w), b1 = _mm512_loadu_si512(w + 64);
        w += kNr * kKr;
#pragma GCC unroll 8
        for (size_t i = 0; i < kMr; ++i) {
          int32_t v;
          std::memcpy(&v, ar[i] + kk, sizeof v);  // a broadcast load
          const __m512i va = _mm512_xor_si512(_mm512_set1_epi32(v), flip);
          acc0[i] = dpbusd(acc0[i], va, b0);
          acc1[i] = dpbusd(acc1[i], va, b1);
        }
      }
      if (kk < kc) {  // 1 to 3 bytes left: zero bytes meet zero weights
        const __m512i b0 = _mm512_loadu_si512(w), b1 = _mm512_loadu_si512(w + 64);
        w += kNr * kKr;
        for (size_t i = 0; i < kMr; ++i) {
          const int32_t v = static_cast<int32_t>(load_tail_u64(ar[i] + kk, kc - kk));
          const __m512i va = _mm512_xor_si512(_mm512_set1_epi32(v), flip);
          acc0[i] = dpbusd(acc0[i], va, b0);
          acc1[i] = dpbusd(acc1[i], va, b1);
        }
      }
    }
    const __mmask16 m0 = nc >= 16 ? __mmask16(0xffff) : __mmask16((1u << nc) - 1);
    const __mmask16 m1 = nc <= 16   ? __mmask16(0)
                         : nc >= 32 ? __mmask16(0xffff)
                                    : __mmask16((1u << (nc - 16)) - 1);
    const __m512i bias0 = _mm512_loadu_si512(block), bias1 = _mm512_loadu_si512(block + 64);
    for (size_t i = 0; i < mr; ++i) {
      const __m512i s0 = _mm512_add_epi32(acc0[i], bias0), s1 = _mm512_add_epi32(acc1[i], bias1);
      Out* dst = c + i * c_stride;
      if constexpr (sizeof(Out) == 1) {
        const float* scale = reinterpret_cast<const float*>(block + kNr * sizeof(int32_t));
        const __m512 lo = _mm512_set1_ps(static_cast<float>(out.min - out.zero_point));
        const __m512 hi = _mm512_set1_ps(static_cast<float>(out.max - out.zero_point));
        const __m512i zp = _mm512_set1_epi32(out.zero_point);
        __m512 f0 = _mm512_mul_ps(_mm512_cvtepi32_ps(s0), _mm512_loadu_ps(scale));
        __m512 f1 = _mm512_mul_ps(_mm512_cvtepi32_ps(s1), _mm512_loadu_ps(scale + 16));
        f0 = _mm512_min_ps(_mm512_max_ps(f0, lo), hi);
        f1 = _mm512_min_ps(_mm512_max_ps(f1, lo), hi);
        const __m512i q0 = _mm512_add_epi32(_mm512_cvtps_epi32(f0), zp);
        const __m512i q1 = _mm512_add_epi32(_mm512_cvtps_epi32(f1), zp);
        _mm_mask_storeu_epi8(dst, m0, _mm512_cvtsepi32_epi8(q0));
        _mm_mask_storeu_epi8(dst + 16, m1, _mm512_cvtsepi32_epi8(q1));
      } else {
        _mm512_mask_storeu_epi32(dst, m0, s0);
        _mm512_mask_storeu_epi32(dst + 16, m1, s1);
      }
    }
  }
};

using Vnni = TileEntryPoints<VnniTile>;

}  // namespace

const QGemmUkernel qgemm_avx512vnni = {
    "qs8_gemm_8x32c4__avx512vnni", Isa::avx512vnni, 8, 32, 4, 128, Vnni::gemm, Vnni::gemm_i32, Vnni::igemm};

}  // namespace huddle::kernels
