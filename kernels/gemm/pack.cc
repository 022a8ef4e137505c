#include "kernels/gemm/gemm.h"

#include <cstring>

namespace huddle::kernels {

size_t qgemm_block_bytes(const QGemmUkernel& uk, size_t k) {
  const size_t kp = (k + uk.kr - 1) / uk.kr * uk.kr;
  const size_t bytes = uk.nr * (sizeof(int32_t) + sizeof(float)) + uk.nr * kp;
  return (bytes + 15) & ~size_t{15};
}

size_t qgemm_packed_size(const QGemmUkernel& uk, size_t n, size_t k) {
  return (n + uk.nr - 1) / uk.nr * qgemm_block_bytes(uk, k);
}

void qgemm_pack(const QGemmUkernel& uk, size_t n, size_t k, const int8_t* w, const int32_t* bias,
                const float* scale, int32_t a_zero_point, void* packed) {
  const size_t nr = uk.nr, kr = uk.kr;
  const size_t kp = (k + kr - 1) / kr * kr;
  const size_t block = qgemm_block_bytes(uk, k);
  uint8_t* out = static_cast<uint8_t*>(packed);
  const uint8_t pad = uk.unsigned_weights ? 128 : 0;  // encodes weight 0
  for (size_t n0 = 0; n0 < n; n0 += nr, out += block) {
    std::memset(out, 0, block);
    int32_t* b = reinterpret_cast<int32_t*>(out);
    float* s = reinterpret_cast<float*>(out + nr * sizeof(int32_t));
    uint8_t* wp = out + nr * (sizeof(int32_t) + sizeof(float));
    for (size_t j = 0; j < nr; ++j) {
      const size_t col = n0 + j;
      if (col >= n) {
        for (size_t kk = 0; kk < kp; ++kk) wp[(kk / kr) * nr * kr + j * kr + kk % kr] = pad;
        continue;
      }
      // acc = sum (a - a_zp) w + bias = sum a w + (bias - a_zp * sum w)
      int32_t colsum = 0;
      for (size_t kk = 0; kk < kp; ++kk) {
        const int8_t v = kk < k ? w[col * k + kk] : 0;
        colsum += v;
        wp[(kk / kr) * nr * kr + j * kr + kk % kr] = static_cast<uint8_t>(v) ^ pad;
      }
      b[j] = (bias ? bias[col] : 0) - a_zero_point * colsum;
      s[j] = scale ? scale[col] : 0.0f;
    }
  }
}

}  // namespace huddle::kernels
