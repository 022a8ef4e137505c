// The scalar reference of the fp32 GEMM family: plain loops over the packed
// layout with nr = 1. It is the specification, not a fast path: each output
// starts from its bias and adds the products in increasing k, every multiply
// and add rounded (the project compiles with -ffp-contract=off).
#include "kernels/f32/f32.h"

namespace huddle::kernels {
namespace {

float clamp(float v, const F32Clamp& c) {
  v = v < c.min ? c.min : v;
  return v > c.max ? c.max : v;
}

void gemm_ref(size_t m, size_t n, size_t k, const float* a, size_t a_stride, const void* packed, float* c,
              size_t c_stride, const F32Clamp& cl) {
  for (size_t j = 0; j < n; ++j) {
    const float* p = static_cast<const float*>(packed) + j * (k + 1);
    const float* w = p + 1;
    for (size_t i = 0; i < m; ++i) {
      const float* row = a + i * a_stride;
      float acc = p[0];
      for (size_t kk = 0; kk < k; ++kk) acc += row[kk] * w[kk];
      c[i * c_stride + j] = clamp(acc, cl);
    }
  }
}

void igemm_ref(size_t m, size_t n, size_t ks, size_t kc, const size_t* indirection, const float* input,
               const float* zero, const void* packed, float* c, size_t c_stride, const F32Clamp& cl) {
  for (size_t j = 0; j < n; ++j) {
    const float* p = static_cast<const float*>(packed) + j * (ks * kc + 1);
    for (size_t i = 0; i < m; ++i) {
      const float* w = p + 1;
      float acc = p[0];
      for (size_t s = 0; s < ks; ++s, w += kc) {
        const size_t off = indirection[i * ks + s];
        const float* row = off == kF32IndirectZero ? zero : input + off;
        for (size_t kk = 0; kk < kc; ++kk) acc += row[kk] * w[kk];
      }
      c[i * c_stride + j] = clamp(acc, cl);
    }
  }
}

}  // namespace

const F32GemmUkernel f32gemm_ref = {"f32_gemm_1x1__scalar", Isa::ref, 1, 1, gemm_ref, igemm_ref};

}  // namespace huddle::kernels
