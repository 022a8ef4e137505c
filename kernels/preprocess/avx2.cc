// Preprocess for AVX2: horizontal taps of 8 elements gathered as dwords
// (vpgatherdd, where 4 bytes stay inside the source row) and weighted with
// vpmaddwd; vertical interpolation, normalisation and quantisation 8 elements
// at a time. Source rows are interpolated once and kept while output rows
// share them. Bit-exact with ref: the same integer and fp32 operations.
// Compiled with -mavx2 -mfma -mf16c: everything here stays in this file.
#include <immintrin.h>

#include <cstring>

#include "kernels/preprocess/preprocess.h"

namespace huddle::kernels {
namespace {

// Horizontal sums of all elements of one source row.
void horizontal(const PreprocessPlan& plan, const uint8_t* row, int32_t* h) {
  const size_t wide = plan.wide_elems & ~size_t{7};
  const __m256i byte = _mm256_set1_epi32(0xff);
  size_t e = 0;
  for (; e < wide; e += 8) {
    const __m256i o0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(plan.off0 + e));
    const __m256i o1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(plan.off1 + e));
    const __m256i p0 =
        _mm256_and_si256(_mm256_i32gather_epi32(reinterpret_cast<const int*>(row), o0, 1), byte);
    const __m256i p1 =
        _mm256_and_si256(_mm256_i32gather_epi32(reinterpret_cast<const int*>(row), o1, 1), byte);
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(plan.wx + e));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + e),
                        _mm256_madd_epi16(_mm256_or_si256(p0, _mm256_slli_epi32(p1, 16)), w));
  }
  preprocess_horizontal(plan, row, e, plan.elems, h);
}

void pad(const PreprocessPlan& plan, size_t first, size_t count, float* dst) {
  preprocess_pad_f32(plan, first, count, dst);
}
void pad(const PreprocessPlan& plan, size_t first, size_t count, int8_t* dst) {
  preprocess_pad_qs8(plan, first, count, dst);
}

// Runs every output row; box rows go 8 elements at a time through
// store(v, e, count, dst) with v the vertically interpolated values.
template <class T, class Store>
void run(const PreprocessParams& p, const uint8_t* src, T* dst, void* scratch, Store store) {
  const PreprocessPlan plan = preprocess_plan(p, scratch);
  const size_t by = p.box.w == 0 ? 0 : p.box.y;
  const size_t bh = p.box.w == 0 ? p.out_height : p.box.h;
  int32_t* buf[2] = {plan.rows, plan.rows + ((plan.elems + 7) & ~size_t{7})};
  int32_t tag[2] = {-1, -1};
  // The horizontal sums of source row y, computed unless kept; `keep` is the row not to evict.
  auto row_sums = [&](int32_t y, int32_t keep) -> const int32_t* {
    for (size_t s = 0; s < 2; ++s)
      if (tag[s] == y) return buf[s];
    const size_t s = tag[0] == keep ? 1 : 0;
    horizontal(plan, src + static_cast<size_t>(y) * p.stride, buf[s]);
    tag[s] = y;
    return buf[s];
  };
  for (size_t oy = 0; oy < p.out_height; ++oy, dst += plan.row_elems) {
    if (oy < by || oy >= by + bh) {
      pad(plan, 0, plan.row_elems, dst);
      continue;
    }
    const int32_t* y = plan.ys + 3 * (oy - by);
    const int32_t* h0 = row_sums(y[0], y[1]);
    const int32_t* h1 = row_sums(y[1], y[0]);
    const __m256 w0 = _mm256_set1_ps(static_cast<float>(2048 - y[2]));
    const __m256 w1 = _mm256_set1_ps(static_cast<float>(y[2]));
    pad(plan, 0, plan.left_elems, dst);
    T* out = dst + plan.left_elems;
    for (size_t e = 0; e < plan.elems; e += 8) {
      const __m256 a = _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h0 + e)));
      const __m256 b = _mm256_cvtepi32_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h1 + e)));
      const size_t count = plan.elems - e < 8 ? plan.elems - e : 8;
      store(_mm256_add_ps(_mm256_mul_ps(a, w0), _mm256_mul_ps(b, w1)), e, count, out + e, plan);
    }
    const size_t right = plan.left_elems + plan.elems;
    pad(plan, right, plan.row_elems - right, dst + right);
  }
}

void f32_avx2(const PreprocessParams& p, const uint8_t* src, float* dst, void* scratch) {
  run(p, src, dst, scratch, [](__m256 v, size_t e, size_t count, float* out, const PreprocessPlan& plan) {
    const __m256 y = _mm256_add_ps(_mm256_mul_ps(v, _mm256_loadu_ps(plan.mul + e % 24)),
                                   _mm256_loadu_ps(plan.add + e % 24));
    if (count == 8) {
      _mm256_storeu_ps(out, y);
    } else {
      float tmp[8];
      _mm256_storeu_ps(tmp, y);
      std::memcpy(out, tmp, count * sizeof(float));
    }
  });
}

void qs8_avx2(const PreprocessParams& p, const uint8_t* src, int8_t* dst, void* scratch) {
  run(p, src, dst, scratch, [](__m256 v, size_t e, size_t count, int8_t* out, const PreprocessPlan& plan) {
    __m256 f = _mm256_add_ps(_mm256_mul_ps(v, _mm256_loadu_ps(plan.qmul + e % 24)),
                             _mm256_loadu_ps(plan.qadd + e % 24));
    f = _mm256_min_ps(_mm256_max_ps(f, _mm256_set1_ps(-128.0f)), _mm256_set1_ps(127.0f));
    const __m256i q = _mm256_cvtps_epi32(f);
    const __m128i q16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i q8 = _mm_packs_epi16(q16, q16);
    if (count == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out), q8);
    } else {
      int8_t tmp[16];
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tmp), q8);
      std::memcpy(out, tmp, count);
    }
  });
}

}  // namespace

const PreprocessUkernel preprocess_avx2 = {"u8_resize_bilinear_normalize__avx2", Isa::avx2, f32_avx2,
                                           qs8_avx2};

}  // namespace huddle::kernels
