// int8 depthwise convolution for AVX-512 VNNI, 32 channels per block ("c32").
// Each tap's 32 input values are widened to int16 with one vpmovsxbw and
// multiplied with vpmullw against the tap's int16 weights (exact: |x * w| <=
// 128 * 127); two taps' products are added in int16 (exact: <= 32512) and
// widened into int32 accumulators by two vpdpwssd against 1 in the low or the
// high word, one for the even channels, one for the odd ones. The two halves
// are put back in channel order once per block before requantisation. A
// channel tail of at most 16 takes a half-width (ymm) step; longer tails use
// masked loads and stores. Interior pixels (no padding tap) take their tap
// pointers from fixed offsets, without branches. Compiled with AVX-512
// F/BW/VL/VNNI: everything here stays in this file.
#include "kernels/avx512_intrinsics.h"

#include <cstddef>

#include "kernels/dwconv/dwconv.h"

namespace huddle::kernels {
namespace {

constexpr size_t kCr = 32, kTr = 1;
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

// The 32 products of tap t (input at x + c0) for the channels in `mask`.
template <bool kFull>
inline __m512i product32(const int8_t* x, __mmask32 mask, const uint8_t* w) {
  const __m256i a =
      kFull ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x)) : _mm256_maskz_loadu_epi8(mask, x);
  return _mm512_mullo_epi16(_mm512_cvtepi8_epi16(a), _mm512_loadu_si512(w));
}

// One block of channels c0.. (all 32, or the prefix in `mask`) of one output
// pixel; x holds the kTaps tap pointers (padding taps point at the in_zp row).
template <size_t kTaps, bool kFull>
inline void block32(const int8_t* const* x, size_t c0, __mmask32 mask, const uint8_t* p, int8_t* dst,
                    const Requant& rq) {
  const __m512i lo_word = _mm512_set1_epi32(1), hi_word = _mm512_set1_epi32(0x10000);
  __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
  const uint8_t* w = p + kHeader;
  size_t t = 0;
  for (; t + 2 <= kTaps; t += 2) {
    const __m512i sum = _mm512_add_epi16(product32<kFull>(x[t] + c0, mask, w + 64 * t),
                                         product32<kFull>(x[t + 1] + c0, mask, w + 64 * t + 64));
    even = _mm512_dpwssd_epi32(even, sum, lo_word);
    odd = _mm512_dpwssd_epi32(odd, sum, hi_word);
  }
  if (t < kTaps) {
    const __m512i prod = product32<kFull>(x[t] + c0, mask, w + 64 * t);
    even = _mm512_dpwssd_epi32(even, prod, lo_word);
    odd = _mm512_dpwssd_epi32(odd, prod, hi_word);
  }
  const __m512i idx_lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i idx_hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  const int32_t* bias = reinterpret_cast<const int32_t*>(p);
  const __m512i acc0 =
      _mm512_add_epi32(_mm512_permutex2var_epi32(even, idx_lo, odd), _mm512_loadu_si512(bias));
  const __m512i acc1 =
      _mm512_add_epi32(_mm512_permutex2var_epi32(even, idx_hi, odd), _mm512_loadu_si512(bias + 16));
  const float* scale = reinterpret_cast<const float*>(p + kCr * sizeof(int32_t));
  const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(requant16(acc0, scale, rq)),
                                            requant16(acc1, scale + 16, rq), 1);
  if (kFull)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + c0), q);
  else
    _mm256_mask_storeu_epi8(dst + c0, mask, q);
}

// The 16 products of tap t for the channels in `mask` (a tail of <= 16).
inline __m256i product16(const int8_t* x, __mmask16 mask, const uint8_t* w) {
  return _mm256_mullo_epi16(_mm256_cvtepi8_epi16(_mm_maskz_loadu_epi8(mask, x)),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
}

// The last channels c0.. (the prefix in `mask`, at most 16) of one output
// pixel, at half width.
template <size_t kTaps>
inline void block16(const int8_t* const* x, size_t c0, __mmask16 mask, const uint8_t* p, int8_t* dst,
                    const Requant& rq) {
  const __m256i lo_word = _mm256_set1_epi32(1), hi_word = _mm256_set1_epi32(0x10000);
  __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256();
  const uint8_t* w = p + kHeader;
  size_t t = 0;
  for (; t + 2 <= kTaps; t += 2) {
    const __m256i sum = _mm256_add_epi16(product16(x[t] + c0, mask, w + 64 * t),
                                         product16(x[t + 1] + c0, mask, w + 64 * t + 64));
    even = _mm256_dpwssd_epi32(even, sum, lo_word);
    odd = _mm256_dpwssd_epi32(odd, sum, hi_word);
  }
  if (t < kTaps) {
    const __m256i prod = product16(x[t] + c0, mask, w + 64 * t);
    even = _mm256_dpwssd_epi32(even, prod, lo_word);
    odd = _mm256_dpwssd_epi32(odd, prod, hi_word);
  }
  const __m512i idx = _mm512_set_epi32(15, 7, 14, 6, 13, 5, 12, 4, 11, 3, 10, 2, 9, 1, 8, 0);
  const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(even), odd, 1);
  const int32_t* bias = reinterpret_cast<const int32_t*>(p);
  const __m512i acc = _mm512_add_epi32(_mm512_permutexvar_epi32(idx, both), _mm512_loadu_si512(bias));
  const float* scale = reinterpret_cast<const float*>(p + kCr * sizeof(int32_t));
  _mm_mask_storeu_epi8(dst + c0, mask, requant16(acc, scale, rq));
}

// Every channel of one output pixel.
template <size_t kTaps>
inline void pixel(const int8_t* const* x, size_t full, size_t channels, __mmask32 tail, size_t block_bytes,
                  const uint8_t* p, int8_t* dst, const Requant& rq) {
  size_t c0 = 0;
  for (; c0 < full; c0 += kCr, p += block_bytes) block32<kTaps, true>(x, c0, tail, p, dst, rq);
  if (c0 < channels) {
    if (channels - c0 <= 16)
      block16<kTaps>(x, c0, static_cast<__mmask16>(tail), p, dst, rq);
    else
      block32<kTaps, false>(x, c0, tail, p, dst, rq);
  }
}

template <uint32_t kKernel>
void run_kernel(const QDwConvShape& s, const int8_t* in, const void* packed, int8_t* out,
                const QGemmOutput& params) {
  constexpr size_t kTaps = kKernel * kKernel;
  const size_t channels = s.channels, in_stride = s.in_stride, out_stride = s.out_stride;
  const size_t stride = s.stride, pad_top = s.pad_top, pad_left = s.pad_left;
  const ptrdiff_t in_h = static_cast<ptrdiff_t>(s.in_h), in_w = static_cast<ptrdiff_t>(s.in_w);
  const size_t block_bytes = dwconv_block_bytes(dwconv_avx512vnni, kKernel);
  const int8_t* zero = dwconv_packed_zero(dwconv_avx512vnni, packed, kKernel, channels);
  const uint8_t* base = static_cast<const uint8_t*>(packed);
  const Requant rq = {_mm512_set1_ps(static_cast<float>(params.min - params.zero_point)),
                      _mm512_set1_ps(static_cast<float>(params.max - params.zero_point)),
                      _mm512_set1_epi32(params.zero_point)};
  const size_t out_h = dwconv_out_h(s), out_w = dwconv_out_w(s);
  const size_t row = s.in_w * in_stride, full = channels / kCr * kCr;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (channels - full)) - 1);
  // Output columns [ox_lo, ox_hi) read no padding column.
  const size_t ox_lo = pad_left >= out_w * stride ? out_w : (pad_left + stride - 1) / stride;
  size_t ox_hi = static_cast<size_t>(in_w) + pad_left >= kKernel
                     ? (static_cast<size_t>(in_w) + pad_left - kKernel) / stride + 1
                     : 0;
  if (ox_hi > out_w) ox_hi = out_w;
  if (ox_hi < ox_lo) ox_hi = ox_lo;
  ptrdiff_t offset[kTaps];
  for (size_t ky = 0; ky < kKernel; ++ky)
    for (size_t kx = 0; kx < kKernel; ++kx)
      offset[ky * kKernel + kx] = static_cast<ptrdiff_t>(ky * row + kx * in_stride);
  for (size_t oy = 0; oy < out_h; ++oy) {
    const int8_t* rows[kKernel];
    bool inside = true;
    for (size_t ky = 0; ky < kKernel; ++ky) {
      const ptrdiff_t iy = static_cast<ptrdiff_t>(oy * stride + ky) - static_cast<ptrdiff_t>(pad_top);
      rows[ky] = iy >= 0 && iy < in_h ? in + iy * static_cast<ptrdiff_t>(row) : nullptr;
      inside = inside && rows[ky] != nullptr;
    }
    int8_t* dst = out + oy * out_w * out_stride;
    const auto border = [&](size_t ox) {
      const int8_t* x[kTaps];
      for (size_t kx = 0; kx < kKernel; ++kx) {
        const ptrdiff_t ix = static_cast<ptrdiff_t>(ox * stride + kx) - static_cast<ptrdiff_t>(pad_left);
        const bool col = ix >= 0 && ix < in_w;
        for (size_t ky = 0; ky < kKernel; ++ky)
          x[ky * kKernel + kx] = col && rows[ky] ? rows[ky] + ix * static_cast<ptrdiff_t>(in_stride) : zero;
      }
      pixel<kTaps>(x, full, channels, tail, block_bytes, base, dst + ox * out_stride, rq);
    };
    if (!inside) {
      for (size_t ox = 0; ox < out_w; ++ox) border(ox);
      continue;
    }
    size_t ox = 0;
    for (; ox < ox_lo; ++ox) border(ox);
    for (; ox < ox_hi; ++ox) {
      const int8_t* top = rows[0] + static_cast<ptrdiff_t>((ox * stride - pad_left) * in_stride);
      const int8_t* x[kTaps];
      for (size_t t = 0; t < kTaps; ++t) x[t] = top + offset[t];
      pixel<kTaps>(x, full, channels, tail, block_bytes, base, dst + ox * out_stride, rq);
    }
    for (; ox < out_w; ++ox) border(ox);
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
