// int8 depthwise convolution for AVX-512 VNNI, 32 channels per block ("c32").
// Taps are taken in pairs as in the AVX2 variant (inputs interleaved per
// channel, widened to int16), but 16 channels fill a zmm register and
// vpdpwssd multiplies and accumulates in one exact step. Channel tails use
// masked loads and stores. Compiled with AVX-512 F/BW/VL/VNNI: everything here
// stays in this file.
#include "kernels/avx512_intrinsics.h"

#include <cstddef>

#include "kernels/dwconv/dwconv.h"

namespace huddle::kernels {
namespace {

constexpr size_t kCr = 32, kTr = 2;
constexpr size_t kHeader = kCr * (sizeof(int32_t) + sizeof(float));

struct Requant {
  __m512 lo, hi;
  __m512i zp;
};

inline __m128i requant16(__m512i acc, const float* scale, const Requant& rq) {
  __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), _mm512_loadu_ps(scale));
  f = _mm512_min_ps(_mm512_max_ps(f, rq.lo), rq.hi);
  return _mm512_cvtsepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), rq.zp));
}

// One block of channels c0.. (the channels set in `mask`, all 32 or a prefix)
// of one output pixel; x holds the 2 * kPairs tap pointers (padding taps point
// at the in_zp row).
template <size_t kPairs>
inline void block(const int8_t* const* x, size_t c0, __mmask32 mask, const uint8_t* p, int8_t* dst,
                  const Requant& rq) {
  __m512i acc0 = _mm512_loadu_si512(p);
  __m512i acc1 = _mm512_loadu_si512(p + 16 * sizeof(int32_t));
  const uint8_t* w = p + kHeader;
  for (size_t t = 0; t < kPairs; ++t) {
    const __m256i a = _mm256_maskz_loadu_epi8(mask, x[2 * t] + c0);
    const __m256i b = _mm256_maskz_loadu_epi8(mask, x[2 * t + 1] + c0);
    const __m256i lo = _mm256_unpacklo_epi8(a, b);  // channels 0-7 | 16-23, tap pairs
    const __m256i hi = _mm256_unpackhi_epi8(a, b);  // channels 8-15 | 24-31
    const __m512i x0 = _mm512_cvtepi8_epi16(_mm256_permute2x128_si256(lo, hi, 0x20));  // 0-15
    const __m512i x1 = _mm512_cvtepi8_epi16(_mm256_permute2x128_si256(lo, hi, 0x31));  // 16-31
    acc0 = _mm512_dpwssd_epi32(acc0, x0, _mm512_loadu_si512(w + 128 * t));
    acc1 = _mm512_dpwssd_epi32(acc1, x1, _mm512_loadu_si512(w + 128 * t + 64));
  }
  const float* scale = reinterpret_cast<const float*>(p + kCr * sizeof(int32_t));
  const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(requant16(acc0, scale, rq)),
                                            requant16(acc1, scale + 16, rq), 1);
  _mm256_mask_storeu_epi8(dst + c0, mask, q);
}

template <uint32_t kKernel>
void run_kernel(const QDwConvShape& s, const int8_t* in, const void* packed, int8_t* out,
                const QGemmOutput& params) {
  constexpr size_t kTaps = kKernel * kKernel, kPairs = (kTaps + 1) / 2;
  const size_t block_bytes = dwconv_block_bytes(dwconv_avx512vnni, kKernel);
  const int8_t* zero = dwconv_packed_zero(dwconv_avx512vnni, packed, kKernel, s.channels);
  const uint8_t* base = static_cast<const uint8_t*>(packed);
  const Requant rq = {_mm512_set1_ps(static_cast<float>(params.min - params.zero_point)),
                      _mm512_set1_ps(static_cast<float>(params.max - params.zero_point)),
                      _mm512_set1_epi32(params.zero_point)};
  const size_t out_h = dwconv_out_h(s), out_w = dwconv_out_w(s);
  const size_t row = s.in_w * s.in_stride, full = s.channels / kCr * kCr;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (s.channels - full)) - 1);
  const ptrdiff_t in_h = static_cast<ptrdiff_t>(s.in_h), in_w = static_cast<ptrdiff_t>(s.in_w);
  for (size_t oy = 0; oy < out_h; ++oy) {
    const int8_t* rows[kKernel];
    for (size_t ky = 0; ky < kKernel; ++ky) {
      const ptrdiff_t iy = static_cast<ptrdiff_t>(oy * s.stride + ky) - s.pad_top;
      rows[ky] = iy >= 0 && iy < in_h ? in + iy * row : nullptr;
    }
    for (size_t ox = 0; ox < out_w; ++ox) {
      const int8_t* x[2 * kPairs];
      for (size_t kx = 0; kx < kKernel; ++kx) {
        const ptrdiff_t ix = static_cast<ptrdiff_t>(ox * s.stride + kx) - s.pad_left;
        const bool col = ix >= 0 && ix < in_w;
        for (size_t ky = 0; ky < kKernel; ++ky)
          x[ky * kKernel + kx] = col && rows[ky] ? rows[ky] + ix * s.in_stride : zero;
      }
      for (size_t t = kTaps; t < 2 * kPairs; ++t) x[t] = zero;  // the zero-weight tap that evens the count
      int8_t* dst = out + (oy * out_w + ox) * s.out_stride;
      const uint8_t* p = base;
      size_t c0 = 0;
      for (; c0 < full; c0 += kCr, p += block_bytes) block<kPairs>(x, c0, ~__mmask32{0}, p, dst, rq);
      if (c0 < s.channels) block<kPairs>(x, c0, tail, p, dst, rq);
    }
  }
}

void dwconv_run_avx512vnni(const QDwConvShape& s, const int8_t* in, const void* packed, int8_t* out,
                           const QGemmOutput& params) {
  if (s.kernel == 3)
    run_kernel<3>(s, in, packed, out, params);
  else
    run_kernel<5>(s, in, packed, out, params);
}

}  // namespace

const QDwConvUkernel dwconv_avx512vnni = {
    "qs8_dwconv_3x3_5x5__avx512vnni_c32", Isa::avx512vnni, kCr, kTr, true, dwconv_run_avx512vnni};

}  // namespace huddle::kernels
