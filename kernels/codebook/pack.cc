#include <cstring>

#include "kernels/codebook/codebook.h"

namespace huddle::kernels {

size_t codebook_fc_table_bytes(unsigned bits) {
  return (codebook_entries(bits) * sizeof(uint16_t) + 15) & ~size_t{15};
}

size_t codebook_fc_block_bytes(const CodebookFcUkernel& uk, unsigned bits, size_t k) {
  const size_t steps = bits == 4 ? (k + 1) / 2 : k;
  const size_t bytes = uk.nr * sizeof(float) + uk.nr * steps;
  return (bytes + 15) & ~size_t{15};
}

size_t codebook_fc_packed_size(const CodebookFcUkernel& uk, unsigned bits, size_t n, size_t k) {
  return codebook_fc_table_bytes(bits) + (n + uk.nr - 1) / uk.nr * codebook_fc_block_bytes(uk, bits, k);
}

void codebook_fc_pack(const CodebookFcUkernel& uk, unsigned bits, size_t n, size_t k, const uint16_t* table,
                      const uint8_t* idx, size_t idx_stride, const float* bias, void* packed) {
  const size_t nr = uk.nr;
  const size_t steps = bits == 4 ? (k + 1) / 2 : k;
  const size_t block = codebook_fc_block_bytes(uk, bits, k);
  uint8_t* out = static_cast<uint8_t*>(packed);
  std::memset(out, 0, codebook_fc_table_bytes(bits));
  std::memcpy(out, table, codebook_entries(bits) * sizeof(uint16_t));
  out += codebook_fc_table_bytes(bits);
  for (size_t n0 = 0; n0 < n; n0 += nr, out += block) {
    std::memset(out, 0, block);
    uint8_t* wp = out + nr * sizeof(float);
    for (size_t j = 0; j < nr && n0 + j < n; ++j) {
      const size_t col = n0 + j;
      const float b = bias ? bias[col] : 0.0f;
      std::memcpy(out + j * sizeof(float), &b, sizeof b);
      const uint8_t* row = idx + col * idx_stride;
      for (size_t s = 0; s < steps; ++s) {
        // 4-bit: the storage form already pairs k = 2s, 2s + 1 in one byte; an
        // odd K leaves the high nibble of the last byte as padding (index 0).
        uint8_t v = row[s];
        if (bits == 4 && 2 * s + 1 == k) v &= 15;
        wp[s * nr + j] = v;
      }
    }
  }
}

}  // namespace huddle::kernels
