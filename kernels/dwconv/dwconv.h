// int8 depthwise convolution family, NHWC, channel multiplier 1, kernel 3x3 or
// 5x5, stride 1 or 2, any padding:
//   out[y][x][c] = requant(bias[c] + sum_{ky,kx} (in[y*s+ky-pt][x*s+kx-pl][c] - in_zp) * w[ky][kx][c])
// where a tap falling in the padding reads in_zp (it contributes zero).
//
// Quantisation follows the TFLite int8 scheme (DESIGN.md §4) and the GEMM
// family's output rule: w is int8 symmetric per channel (values in
// [-127, 127]), the input int8 asymmetric per tensor, bias int32, and each
// accumulator is requantised by qgemm_requant with the channel's scale.
//
// Weights are packed once (dwconv_pack) into the layout a variant wants; the
// packed buffer also holds the bias (with the input zero point folded in),
// the per-channel scales and a row of in_zp values that padded taps read, so a
// run needs only the input, the output and the shape, and allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "kernels/isa.h"

namespace huddle::kernels {

// Geometry of one depthwise convolution. Pixels are `channels` int8 values;
// consecutive pixels are in_stride (input) / out_stride (output) elements
// apart, rows are width pixels apart, so a caller can run on a channel slice
// of a wider tensor. Requires in_h + pad_top + pad_bottom >= kernel (same for
// the width) and strides >= channels.
struct QDwConvShape {
  size_t in_h = 0, in_w = 0, channels = 0;
  uint32_t kernel = 3;  // 3 or 5
  uint32_t stride = 1;  // 1 or 2
  uint32_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  size_t in_stride = 0;   // elements from one input pixel to the next
  size_t out_stride = 0;  // elements from one output pixel to the next
};

// The helpers below are out of line on purpose: the ISA translation units call
// them, and an inline instance compiled there could be the one the linker keeps.

// Output rows of `s`.
size_t dwconv_out_h(const QDwConvShape& s);
// Output columns of `s`.
size_t dwconv_out_w(const QDwConvShape& s);

// Writes out (dwconv_out_h x dwconv_out_w pixels of s.channels values, pixel
// stride s.out_stride) from in (s.in_h x s.in_w pixels, pixel stride
// s.in_stride) and weights packed by dwconv_pack for s.kernel and s.channels.
// Touches no output byte outside the channels of each pixel, and reads no
// input byte outside them.
using QDwConvFn = void (*)(const QDwConvShape& s, const int8_t* in, const void* packed, int8_t* out,
                           const QGemmOutput& params);

// One variant of the family. It handles both kernel sizes and both strides.
// Packed layout (the same shape for every variant, only cr, tr and the weight
// width differ):
//   per block of cr channels: int32 bias[cr], float scale[cr], then the
//   kernel*kernel taps (row-major, padded with zero taps to a multiple of tr)
//   in groups of tr: for each of the cr channels, tr weights (int8, or int16
//   when wide_weights); block size rounded up to 16 bytes; channels past
//   `channels` padded with zero weights, bias and scale;
//   after the last block: round_up(channels, cr) bytes of in_zp (rounded up to
//   16 bytes), the values padded taps read.
struct QDwConvUkernel {
  const char* name;  // XNNPACK-style: family, kernels, isa, channel tile
  Isa isa;
  uint32_t cr;        // channels per block
  uint32_t tr;        // taps per group (interleaved per channel)
  bool wide_weights;  // weights stored as int16 (ready for pmaddwd)
  QDwConvFn run;
};

// Bytes one block of cr channels takes in the packed buffer.
size_t dwconv_block_bytes(const QDwConvUkernel& uk, uint32_t kernel);
// Bytes the packed buffer for `channels` channels of a kernel x kernel filter takes.
size_t dwconv_packed_size(const QDwConvUkernel& uk, uint32_t kernel, size_t channels);
// Packs w (kernel x kernel x channels, TFLite depthwise layout [ky][kx][c],
// values in [-127, 127]), bias (channels int32, or nullptr for zeros) and
// scale (channels floats) for input zero point in_zero_point into `packed`
// (dwconv_packed_size bytes, any alignment).
void dwconv_pack(const QDwConvUkernel& uk, uint32_t kernel, size_t channels, const int8_t* w,
                 const int32_t* bias, const float* scale, int32_t in_zero_point, void* packed);
// The row of in_zp values inside a packed buffer (what padded taps read).
const int8_t* dwconv_packed_zero(const QDwConvUkernel& uk, const void* packed, uint32_t kernel,
                                 size_t channels);

// The scalar reference: the specification every other variant must match.
extern const QDwConvUkernel dwconv_ref;
#if defined(__x86_64__)
extern const QDwConvUkernel dwconv_avx2;
extern const QDwConvUkernel dwconv_avx512vnni;
#elif defined(__aarch64__)
extern const QDwConvUkernel dwconv_neon;
#endif
// Every variant this build contains, runnable on this CPU or not.
const std::vector<const QDwConvUkernel*>& dwconv_all();
// The variants this CPU runs, ref first.
std::vector<const QDwConvUkernel*> dwconv_runnable();
// The variant kernels use for `isa` (the best one whose isa `isa` implies).
const QDwConvUkernel& dwconv_for(Isa isa);
// The variant for selected_isa().
const QDwConvUkernel& dwconv();

}  // namespace huddle::kernels
