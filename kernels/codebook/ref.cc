// The scalar reference of the codebook fully connected family: plain loops over
// the packed layout with nr = 1, each weight decoded from the fp16 table and
// the products summed in order of k. It is the specification, not a fast path.
#include <cstring>

#include "kernels/codebook/codebook.h"

namespace huddle::kernels {
namespace {

// sum_k x[k] * w[k] in order of k, x converted by `load`.
template <unsigned kBits, class X, class Load>
float dot(size_t k, const X* x, const uint8_t* w, const uint16_t* table, Load load) {
  float acc = 0.0f;
  for (size_t kk = 0; kk < k; ++kk) {
    const unsigned i = kBits == 4 ? (w[kk / 2] >> (4 * (kk % 2))) & 15u : w[kk];
    acc += load(x[kk]) * fp16_to_fp32(table[i]);
  }
  return acc;
}

// Calls emit(i, j, bias, acc) for every output.
template <unsigned kBits, class X, class Load, class Emit>
void run(size_t m, size_t n, size_t k, const X* x, size_t x_stride, const void* packed, Load load,
         Emit emit) {
  uint16_t table[256];  // the packed buffer may have any alignment
  std::memcpy(table, packed, codebook_entries(kBits) * sizeof(uint16_t));
  const uint8_t* blocks = static_cast<const uint8_t*>(packed) + codebook_fc_table_bytes(kBits);
  const size_t block = codebook_fc_block_bytes(codebook_fc_ref, kBits, k);
  for (size_t j = 0; j < n; ++j) {
    const uint8_t* p = blocks + j * block;
    float bias;
    std::memcpy(&bias, p, sizeof bias);
    for (size_t i = 0; i < m; ++i)
      emit(i, j, bias, dot<kBits>(k, x + i * x_stride, p + sizeof bias, table, load));
  }
}

float clamp(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

template <unsigned kBits>
void f32_ref(size_t m, size_t n, size_t k, const float* x, size_t x_stride, const void* packed, float* y,
             size_t y_stride, const CodebookF32Output& out) {
  run<kBits>(
      m, n, k, x, x_stride, packed, [](float v) { return v; },
      [&](size_t i, size_t j, float bias, float acc) {
        y[i * y_stride + j] = clamp(bias + acc, out.min, out.max);
      });
}

template <unsigned kBits>
void qs8_f32_ref(size_t m, size_t n, size_t k, const int8_t* x, size_t x_stride, const void* packed, float* y,
                 size_t y_stride, const CodebookQs8Input& in, const CodebookF32Output& out) {
  run<kBits>(
      m, n, k, x, x_stride, packed, [&](int8_t q) { return static_cast<float>(int32_t{q} - in.zero_point); },
      [&](size_t i, size_t j, float bias, float acc) {
        y[i * y_stride + j] = clamp(bias + in.scale * acc, out.min, out.max);
      });
}

template <unsigned kBits>
void qs8_ref(size_t m, size_t n, size_t k, const int8_t* x, size_t x_stride, const void* packed, int8_t* y,
             size_t y_stride, const CodebookQs8Input& in, const CodebookQs8Output& out) {
  const float lo = static_cast<float>(out.min - out.zero_point);
  const float hi = static_cast<float>(out.max - out.zero_point);
  run<kBits>(
      m, n, k, x, x_stride, packed, [&](int8_t q) { return static_cast<float>(int32_t{q} - in.zero_point); },
      [&](size_t i, size_t j, float bias, float acc) {
        const float f = clamp((bias + in.scale * acc) / out.scale, lo, hi);
        y[i * y_stride + j] = static_cast<int8_t>(static_cast<int32_t>(__builtin_rintf(f)) + out.zero_point);
      });
}

}  // namespace

const CodebookFcUkernel codebook_fc_ref = {"codebook_fc_1x1__ref",
                                           Isa::ref,
                                           1,
                                           1,
                                           {f32_ref<4>, qs8_f32_ref<4>, qs8_ref<4>},
                                           {f32_ref<8>, qs8_f32_ref<8>, qs8_ref<8>}};

}  // namespace huddle::kernels
