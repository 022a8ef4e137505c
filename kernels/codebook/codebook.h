// Fully connected layers with k-means codebook weights (DESIGN.md §4):
//   y[m][n] = bias[n] + sum_k x[m][k] * W[n][k],   W[n][k] = fp32(table[idx[n][k]])
// where table holds 16 (4-bit indices, two per byte, low nibble first) or 256
// (8-bit indices) fp16 values per layer.
//
// Inputs are fp32, or int8 asymmetric (x = in.scale * (q - in.zero_point)). A
// variant sums the products in fp32 in an order of its own, so variants agree
// with ref only within rounding: for each output,
//   |y - y_ref| <= 2 (k + 3) 2^-24 (|bias| + in_scale * sum_k |x' w|)
// with x' = x (fp32) or q - zero_point (int8); an int8 output differs from
// ref by at most 1 (while that bound is below out.scale). The int8 forms compute, per output,
//   acc = sum_k float(q[k] - in.zero_point) * w[k]   (fp32, any order)
//   y   = bias[n] + in.scale * acc                   (fp32, this order)
//   int8: f = clamp(y / out.scale, out.min - out.zero_point, out.max - out.zero_point);
//         q = round_half_even(f) + out.zero_point
//   fp32 output and fp32 inputs: y clamped to [min, max].
//
// Weights are packed once (codebook_fc_pack) into the layout a variant wants;
// codebook_build finds a table and the indices for a float matrix by 1-D k-means.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/isa.h"

namespace huddle::kernels {

// Clamp of an fp32 output (ReLU/ReLU6 become min/max).
struct CodebookF32Output {
  float min = -std::numeric_limits<float>::infinity();
  float max = std::numeric_limits<float>::infinity();
};

// Quantisation of an int8 input: x = scale * (q - zero_point).
struct CodebookQs8Input {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// Quantisation of an int8 output: q = round_half_even(y / scale) + zero_point,
// clamped to [min, max].
struct CodebookQs8Output {
  float scale = 1.0f;
  int32_t zero_point = 0;
  int8_t min = -128;
  int8_t max = 127;
};

// y (fp32, m x n, row stride y_stride elements) from x (fp32, m x k, row stride x_stride elements).
using CodebookF32Fn = void (*)(size_t m, size_t n, size_t k, const float* x, size_t x_stride,
                               const void* packed, float* y, size_t y_stride, const CodebookF32Output& out);
// y (fp32) from x (int8, row stride x_stride bytes).
using CodebookQs8F32Fn = void (*)(size_t m, size_t n, size_t k, const int8_t* x, size_t x_stride,
                                  const void* packed, float* y, size_t y_stride, const CodebookQs8Input& in,
                                  const CodebookF32Output& out);
// y (int8, row stride y_stride bytes) from x (int8, row stride x_stride bytes).
using CodebookQs8Fn = void (*)(size_t m, size_t n, size_t k, const int8_t* x, size_t x_stride,
                               const void* packed, int8_t* y, size_t y_stride, const CodebookQs8Input& in,
                               const CodebookQs8Output& out);

// The functions of one variant for one index width.
struct CodebookFcKernels {
  CodebookF32Fn f32;         // f32_codebook<bits>_fc_<mr>x<nr>__<isa>
  CodebookQs8F32Fn qs8_f32;  // qs8_f32_codebook<bits>_fc_<mr>x<nr>__<isa>
  CodebookQs8Fn qs8;         // qs8_codebook<bits>_fc_<mr>x<nr>__<isa>
};

// One variant of the family: an mr x nr tile. The packed layout is the same
// shape for every variant, only nr differs:
//   the table: 16 or 256 fp16 values (2-byte units), padded to 16 bytes;
//   per block of nr columns: float bias[nr], then the indices, K-major:
//     8-bit: for each k, nr bytes (one per column);
//     4-bit: for each pair k, k+1: nr bytes, idx(k) | idx(k+1) << 4;
//   block size rounded up to 16 bytes; K padded to even (4-bit) with index 0,
//   columns past n padded with index 0 and bias 0.
struct CodebookFcUkernel {
  const char* name;  // XNNPACK-style: family, tile, isa, e.g. "codebook_fc_4x8__avx2"
  Isa isa;
  uint32_t mr, nr;
  CodebookFcKernels bits4, bits8;
  // The functions for 4- or 8-bit indices.
  const CodebookFcKernels& kernels(unsigned bits) const { return bits == 4 ? bits4 : bits8; }
};

// Number of table entries for `bits` (4 or 8).
constexpr size_t codebook_entries(unsigned bits) { return size_t{1} << bits; }
// Bytes one row of k indices takes in the unpacked (storage) form: k or (k + 1) / 2.
constexpr size_t codebook_row_bytes(unsigned bits, size_t k) { return bits == 4 ? (k + 1) / 2 : k; }
// The index of element kk in a row of the storage form.
inline unsigned codebook_index(unsigned bits, const uint8_t* row, size_t kk) {
  return bits == 4 ? (row[kk / 2] >> (4 * (kk % 2))) & 15u : row[kk];
}

// Bytes the table takes at the start of the packed buffer.
size_t codebook_fc_table_bytes(unsigned bits);
// Bytes one block of nr columns takes in the packed buffer.
size_t codebook_fc_block_bytes(const CodebookFcUkernel& uk, unsigned bits, size_t k);
// Bytes the packed buffer for an n x k matrix takes.
size_t codebook_fc_packed_size(const CodebookFcUkernel& uk, unsigned bits, size_t n, size_t k);
// Packs the table (codebook_entries(bits) fp16 values, all finite), the indices
// (n rows of codebook_row_bytes(bits, k) bytes, row stride idx_stride bytes) and
// bias (n floats, or nullptr for zeros) into `packed` (codebook_fc_packed_size
// bytes, any alignment).
void codebook_fc_pack(const CodebookFcUkernel& uk, unsigned bits, size_t n, size_t k, const uint16_t* table,
                      const uint8_t* idx, size_t idx_stride, const float* bias, void* packed);

// The scalar reference: the specification every other variant must match.
extern const CodebookFcUkernel codebook_fc_ref;
#if defined(__x86_64__)
extern const CodebookFcUkernel codebook_fc_avx2;
extern const CodebookFcUkernel codebook_fc_avx512;  // needs the avx512vnni level (F/BW/VL)
#elif defined(__aarch64__)
extern const CodebookFcUkernel codebook_fc_neon;
#endif
// Every variant this build contains, runnable on this CPU or not.
const std::vector<const CodebookFcUkernel*>& codebook_fc_all();
// The variants this CPU runs, ref first.
std::vector<const CodebookFcUkernel*> codebook_fc_runnable();
// The variant kernels use for `isa` (the best one whose isa `isa` implies).
const CodebookFcUkernel& codebook_fc_for(Isa isa);
// The variant for selected_isa().
const CodebookFcUkernel& codebook_fc();

// IEEE binary16 <-> binary32; to fp16 rounds to nearest even, overflows to infinity.
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);

// How codebook_build seeds its centroids.
enum class CodebookInit : uint8_t {
  quantile,          // centroid c at the (c + 1/2) / entries quantile of the weights
  kmeans_plus_plus,  // D^2 sampling, seeded by `seed`
};

struct CodebookBuildOptions {
  unsigned bits = 8;  // 4 or 8
  CodebookInit init = CodebookInit::quantile;
  uint32_t seed = 1;
  unsigned max_iterations = 100;  // Lloyd iterations (stops earlier when stable)
};

// A table and the indices of an n x k matrix.
struct Codebook {
  unsigned bits = 8;
  std::vector<uint16_t> table;   // codebook_entries(bits) fp16 values, ascending
  std::vector<uint8_t> indices;  // n rows of codebook_row_bytes(bits, k) bytes
  double mse = 0;                // mean of (w - fp32(table[idx]))^2 over all weights
  double max_abs_error = 0;      // largest |w - fp32(table[idx])|
  unsigned iterations = 0;       // Lloyd iterations run
};

// Quantises W (n x k, row stride k, finite values) to a codebook by 1-D
// k-means; deterministic for given options. Each weight gets the nearest
// fp16 table entry (the lower index on ties).
Codebook codebook_build(size_t n, size_t k, const float* w, const CodebookBuildOptions& options = {});

}  // namespace huddle::kernels
