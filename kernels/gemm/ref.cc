// The scalar reference of the int8 GEMM family: plain loops over the packed
// layout with nr = 1, kr = 1. It is the specification, not a fast path.
#include <cstring>

#include "kernels/gemm/gemm.h"

namespace huddle::kernels {
namespace {

constexpr size_t kHeader = sizeof(int32_t) + sizeof(float);

int32_t dot(size_t k, const int8_t* a, const int8_t* w) {
  int32_t acc = 0;
  for (size_t i = 0; i < k; ++i) acc += int32_t{a[i]} * int32_t{w[i]};
  return acc;
}

void gemm_ref(size_t m, size_t n, size_t k, const int8_t* a, size_t a_stride, const void* packed, int8_t* c,
              size_t c_stride, const QGemmOutput& out) {
  const size_t block = qgemm_block_bytes(qgemm_ref, k);
  for (size_t j = 0; j < n; ++j) {
    const uint8_t* p = static_cast<const uint8_t*>(packed) + j * block;
    int32_t bias;
    float scale;
    std::memcpy(&bias, p, sizeof bias);
    std::memcpy(&scale, p + sizeof bias, sizeof scale);
    const int8_t* w = reinterpret_cast<const int8_t*>(p + kHeader);
    for (size_t i = 0; i < m; ++i)
      c[i * c_stride + j] = qgemm_requant(bias + dot(k, a + i * a_stride, w), scale, out);
  }
}

void gemm_i32_ref(size_t m, size_t n, size_t k, const int8_t* a, size_t a_stride, const void* packed,
                  int32_t* c, size_t c_stride) {
  const size_t block = qgemm_block_bytes(qgemm_ref, k);
  for (size_t j = 0; j < n; ++j) {
    const uint8_t* p = static_cast<const uint8_t*>(packed) + j * block;
    int32_t bias;
    std::memcpy(&bias, p, sizeof bias);
    const int8_t* w = reinterpret_cast<const int8_t*>(p + kHeader);
    for (size_t i = 0; i < m; ++i) c[i * c_stride + j] = bias + dot(k, a + i * a_stride, w);
  }
}

}  // namespace

const QGemmUkernel qgemm_ref = {"qs8_gemm_1x1__ref", Isa::ref, 1, 1, 1, false, gemm_ref, gemm_i32_ref};

}  // namespace huddle::kernels
