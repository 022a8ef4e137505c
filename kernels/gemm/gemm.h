// int8 GEMM family: C[m][n] = requant(bias[n] + sum_k (A[m][k] - a_zp) * W[n][k]).
//
// Quantisation follows the TFLite int8 scheme (DESIGN.md §4): W is int8
// symmetric per output channel (values in [-127, 127], zero point 0), A is
// int8 asymmetric per tensor, bias is int32. The int8 output is
//   q = clamp(round_half_even(float(acc) * scale[n]), out_min - out_zp, out_max - out_zp) + out_zp
// computed as written (the clamp happens in float, before rounding), which every
// variant reproduces bit for bit.
//
// Weights are packed once (qgemm_pack) into the layout a variant wants; the
// packed buffer also holds the bias (with the input zero point folded in) and
// the per-channel scales, so a run needs only A, C and the output parameters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/isa.h"

namespace huddle::kernels {

// Output quantisation of one GEMM call.
struct QGemmOutput {
  int32_t zero_point = 0;
  int8_t min = -128;  // clamp bounds in the quantised domain (ReLU/ReLU6 become min/max)
  int8_t max = 127;
};

// C (int8, m x n, row stride c_stride bytes) from A (int8, m x k, row stride
// a_stride bytes) and packed weights.
using QGemmFn = void (*)(size_t m, size_t n, size_t k, const int8_t* a, size_t a_stride, const void* packed,
                         int8_t* c, size_t c_stride, const QGemmOutput& out);
// The int32 form: C (int32, row stride c_stride elements) = bias + sum, no requantisation.
using QGemmI32Fn = void (*)(size_t m, size_t n, size_t k, const int8_t* a, size_t a_stride,
                            const void* packed, int32_t* c, size_t c_stride);
// Indirect GEMM (convolution without im2col): row i of A is ks segments of kc
// bytes each, segment s at in + indirection[...] or at `zero` (kc bytes of the
// input zero point) where the entry is kIndirectZero. The indirection buffer
// holds, for each tile of mr rows, ks * mr offsets (segment-major), rows past
// m repeating the last row; see qgemm_indirection_size. Weights are packed
// with qgemm_pack_segments.
using QIGemmFn = void (*)(size_t m, size_t n, size_t kc, size_t ks, const int8_t* in,
                          const size_t* indirection, const int8_t* zero, const void* packed, int8_t* c,
                          size_t c_stride, const QGemmOutput& out);

// The indirection entry that stands for padding.
inline constexpr size_t kIndirectZero = ~size_t{0};

// One variant of the family. Its tile is mr rows x nr columns; K is consumed in
// groups of kr. The packed layout is the same shape for every variant, only
// nr, kr and the weight encoding differ:
//   per block of nr columns: int32 bias[nr], float scale[nr],
//   then for each group of kr along K: for each of the nr columns: kr weights;
//   block size rounded up to 16 bytes; K padded with zero weights (per
//   segment, for indirect GEMM), columns past n padded with zero weights,
//   bias and scale.
struct QGemmUkernel {
  const char* name;  // XNNPACK-style: family, tile, layout, isa
  Isa isa;
  uint32_t mr, nr, kr;
  // Added to every A byte by the kernel (128 where it turns int8 into uint8 for
  // u8 x s8 dot products); packing folds it into the bias.
  int32_t a_offset;
  QGemmFn gemm;
  QGemmI32Fn gemm_i32;
  QIGemmFn igemm;
};

// K rounded up to a whole number of groups of kr. (These two are static: the
// variant files, compiled with ISA flags, use them too, and a shared inline
// copy could be the one the linker keeps for portable code.)
static constexpr size_t qgemm_round_k(size_t k, size_t kr) { return (k + kr - 1) / kr * kr; }
// Bytes one block of nr columns takes in the packed buffer (k already padded or not).
static constexpr size_t qgemm_block_bytes(size_t nr, size_t kr, size_t k) {
  return (nr * (sizeof(int32_t) + sizeof(float)) + nr * qgemm_round_k(k, kr) + 15) & ~size_t{15};
}
inline size_t qgemm_block_bytes(const QGemmUkernel& uk, size_t k) {
  return qgemm_block_bytes(uk.nr, uk.kr, k);
}
// Bytes the packed buffer for an n x k weight matrix takes.
size_t qgemm_packed_size(const QGemmUkernel& uk, size_t n, size_t k);
// Packs W (n x k, row stride k, values in [-127, 127]), bias (n int32, or
// nullptr for zeros) and scale (n floats, or nullptr when only the int32 form
// is used) for input zero point a_zero_point into `packed`
// (qgemm_packed_size bytes, any alignment).
void qgemm_pack(const QGemmUkernel& uk, size_t n, size_t k, const int8_t* w, const int32_t* bias,
                const float* scale, int32_t a_zero_point, void* packed);
// Bytes the packed buffer for indirect GEMM takes: K is ks segments of kc.
size_t qgemm_packed_size_segments(const QGemmUkernel& uk, size_t n, size_t kc, size_t ks);
// Packs W (n x (ks * kc): for each column, ks segments of kc weights) for igemm.
void qgemm_pack_segments(const QGemmUkernel& uk, size_t n, size_t kc, size_t ks, const int8_t* w,
                         const int32_t* bias, const float* scale, int32_t a_zero_point, void* packed);
// The packed weights of columns n0.. (n0 a multiple of nr): lets a caller
// split the columns of one GEMM between threads. k is the packed K (for
// igemm: ks * qgemm_round_k(kc, kr)).
inline const void* qgemm_packed_at(const QGemmUkernel& uk, const void* packed, size_t k, size_t n0) {
  return static_cast<const uint8_t*>(packed) + (n0 / uk.nr) * qgemm_block_bytes(uk, k);
}
// Entries of the indirection buffer for m rows of ks segments.
inline size_t qgemm_indirection_size(const QGemmUkernel& uk, size_t m, size_t ks) {
  return (m + uk.mr - 1) / uk.mr * uk.mr * ks;
}

// The scalar reference: the specification every other variant must match.
extern const QGemmUkernel qgemm_ref;
#if defined(__x86_64__)
extern const QGemmUkernel qgemm_avx2;
extern const QGemmUkernel qgemm_avx512vnni;
#elif defined(__aarch64__)
extern const QGemmUkernel qgemm_neon;
extern const QGemmUkernel qgemm_neondot;
extern const QGemmUkernel qgemm_i8mm;
#endif
// Every variant this build contains, runnable on this CPU or not.
const std::vector<const QGemmUkernel*>& qgemm_all();
// The variants this CPU runs, ref first.
std::vector<const QGemmUkernel*> qgemm_runnable();
// The variant kernels use for `isa` (the best one whose isa `isa` implies).
const QGemmUkernel& qgemm_for(Isa isa);
// The variant for selected_isa().
const QGemmUkernel& qgemm();

// Requantises one accumulator exactly as every variant must (the specification).
inline int8_t qgemm_requant(int32_t acc, float scale, const QGemmOutput& out) {
  float f = static_cast<float>(acc) * scale;
  const float lo = static_cast<float>(out.min - out.zero_point);
  const float hi = static_cast<float>(out.max - out.zero_point);
  f = f < lo ? lo : f;
  f = f > hi ? hi : f;
  // Round half to even: the default rounding mode, as cvtps2dq and fcvtns do.
  return static_cast<int8_t>(static_cast<int32_t>(__builtin_rintf(f)) + out.zero_point);
}

}  // namespace huddle::kernels
