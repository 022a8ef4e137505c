#include <cstring>

#include "kernels/f32/f32.h"

namespace huddle::kernels {

size_t f32gemm_packed_size(const F32GemmUkernel& uk, size_t n, size_t k) {
  return (n + uk.nr - 1) / uk.nr * f32gemm_block_floats(uk, k) * sizeof(float);
}

void f32gemm_pack(const F32GemmUkernel& uk, size_t n, size_t k, const float* w, const float* bias,
                  void* packed) {
  const size_t nr = uk.nr;
  float* out = static_cast<float*>(packed);
  for (size_t n0 = 0; n0 < n; n0 += nr, out += f32gemm_block_floats(uk, k)) {
    std::memset(out, 0, f32gemm_block_floats(uk, k) * sizeof(float));
    const size_t nc = n - n0 < nr ? n - n0 : nr;
    for (size_t j = 0; j < nc; ++j) {
      out[j] = bias ? bias[n0 + j] : 0.0f;
      const float* row = w + (n0 + j) * k;
      for (size_t kk = 0; kk < k; ++kk) out[nr + kk * nr + j] = row[kk];
    }
  }
}

void f32gemm_pack_transposed(const F32GemmUkernel& uk, size_t n, size_t k, const float* wt, size_t wt_stride,
                             const float* bias, void* packed) {
  const size_t nr = uk.nr;
  float* out = static_cast<float*>(packed);
  for (size_t n0 = 0; n0 < n; n0 += nr, out += f32gemm_block_floats(uk, k)) {
    std::memset(out, 0, f32gemm_block_floats(uk, k) * sizeof(float));
    const size_t nc = n - n0 < nr ? n - n0 : nr;
    if (bias) std::memcpy(out, bias + n0, nc * sizeof(float));
    for (size_t kk = 0; kk < k; ++kk)
      std::memcpy(out + nr + kk * nr, wt + kk * wt_stride + n0, nc * sizeof(float));
  }
}

}  // namespace huddle::kernels
