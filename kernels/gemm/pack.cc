#include <cstring>

#include "kernels/gemm/gemm.h"

namespace huddle::kernels {

size_t qgemm_packed_size(const QGemmUkernel& uk, size_t n, size_t k) {
  return qgemm_packed_size_segments(uk, n, k, 1);
}

size_t qgemm_packed_size_segments(const QGemmUkernel& uk, size_t n, size_t kc, size_t ks) {
  return (n + uk.nr - 1) / uk.nr * qgemm_block_bytes(uk, ks * qgemm_round_k(kc, uk.kr));
}

void qgemm_pack(const QGemmUkernel& uk, size_t n, size_t k, const int8_t* w, const int32_t* bias,
                const float* scale, int32_t a_zero_point, void* packed) {
  qgemm_pack_segments(uk, n, k, 1, w, bias, scale, a_zero_point, packed);
}

void qgemm_pack_segments(const QGemmUkernel& uk, size_t n, size_t kc, size_t ks, const int8_t* w,
                         const int32_t* bias, const float* scale, int32_t a_zero_point, void* packed) {
  const size_t nr = uk.nr, kr = uk.kr;
  const size_t kcp = qgemm_round_k(kc, kr), kp = ks * kcp;
  const size_t block = qgemm_block_bytes(uk, kp);
  uint8_t* out = static_cast<uint8_t*>(packed);
  const int32_t zero_point = a_zero_point + uk.a_offset;
  for (size_t n0 = 0; n0 < n; n0 += nr, out += block) {
    std::memset(out, 0, block);
    int32_t* b = reinterpret_cast<int32_t*>(out);
    float* s = reinterpret_cast<float*>(out + nr * sizeof(int32_t));
    uint8_t* wp = out + nr * (sizeof(int32_t) + sizeof(float));
    for (size_t j = 0; j < nr; ++j) {
      const size_t col = n0 + j;
      // acc = sum (a - a_zp) w + bias = sum (a + a_offset) w + (bias - (a_zp + a_offset) * sum w)
      int32_t colsum = 0;
      for (size_t kk = 0; kk < kp; ++kk) {
        const size_t seg = kk / kcp, i = kk % kcp;
        const int8_t v = col < n && i < kc ? w[col * ks * kc + seg * kc + i] : 0;
        colsum += v;
        wp[(kk / kr) * nr * kr + j * kr + kk % kr] = static_cast<uint8_t>(v);
      }
      if (col < n) {
        b[j] = (bias ? bias[col] : 0) - zero_point * colsum;
        s[j] = scale ? scale[col] : 0.0f;
      }
    }
  }
}

}  // namespace huddle::kernels
