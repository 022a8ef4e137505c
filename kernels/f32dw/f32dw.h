// fp32 depthwise convolution family: NHWC, channel multiplier 1, any kernel
// size, stride, dilation and padding, fused output clamp:
//   out[y][x][c] = clamp(bias[c] + sum_{ky,kx} in[y*sh+ky*dh-pt][x*sw+kx*dw-pl][c] * w[ky][kx][c])
// with taps in the padding left out. The geometry is an F32ConvShape with
// in_c == out_c == the channels (its pixel strides let a caller run on a
// channel slice of a wider tensor).
//
// The scalar reference (f32dw_ref) is the specification: each output starts
// from its bias and adds the taps' products in row-major tap order, rounding
// after every multiply and every add. Vector variants add in the same order
// with fused multiply-adds (a padding tap may be added as a zero product), so
// every variant stays within the fp32 GEMM family's tolerance of the
// reference (kF32RelTolerance times |bias| + sum |x * w|, plus kF32AbsTolerance).
//
// Weights are packed once (f32dw_pack) into one layout every variant reads:
// bias[cp], then the taps [kh][kw][cp], then cp zeros (what padding taps
// read), cp = channels rounded up to kF32DwChannelPad, padding channels
// zero, so a variant may load whole vectors of weights past the last channel.
// A run needs only the input, the output, the shape and the packed buffer,
// and allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/f32/f32.h"
#include "kernels/isa.h"

namespace huddle::kernels {

// Channels the packed rows are padded to (the widest vector, 16 floats).
constexpr size_t kF32DwChannelPad = 16;

// The helpers below are out of line on purpose: the ISA translation units call
// them, and an inline instance compiled there could be the one the linker keeps.

// Channels of one packed row: s.in_c rounded up to kF32DwChannelPad.
size_t f32dw_padded_channels(const F32ConvShape& s);
// Bytes the packed buffer of `s` takes.
size_t f32dw_packed_size(const F32ConvShape& s);
// Packs w ([kh][kw][channels], the TFLite depthwise layout) and bias
// (channels floats, or nullptr for zeros) into `packed` (f32dw_packed_size
// bytes, aligned for float).
void f32dw_pack(const F32ConvShape& s, const float* w, const float* bias, void* packed);
// Throws std::invalid_argument naming what is wrong with `s` as a depthwise
// geometry (in_c != out_c, empty, zero stride, output smaller than a pixel).
void f32dw_check(const F32ConvShape& s);

// Writes output rows [row0, row1) of the batch (row r is row r % out_h of
// image r / out_h): s.in_c channels per pixel, pixel stride s.out_stride(),
// images out_h * out_w * out_stride floats apart; input images in_h * in_w *
// in_stride floats apart. Touches no output float outside those channels and
// reads no input float outside them, so threads may split the rows; each
// output is formed the same way whatever the split.
using F32DwFn = void (*)(const F32ConvShape& s, size_t row0, size_t row1, const float* input,
                         const void* packed, float* output, const F32Clamp& clamp);

// One variant of the family: every kernel size, with unrolled paths for 3x3
// and 5x5 (weights held in registers over an output row).
struct F32DwUkernel {
  const char* name;  // XNNPACK-style: family, fast kernels, isa, channel tile
  Isa isa;
  uint32_t cr;  // channels per vector step
  F32DwFn run;
};

// The scalar reference: the specification every other variant must match.
extern const F32DwUkernel f32dw_ref;
#if defined(__x86_64__)
extern const F32DwUkernel f32dw_avx2;
extern const F32DwUkernel f32dw_avx512vnni;
#elif defined(__aarch64__)
extern const F32DwUkernel f32dw_neon;
#endif
// Every variant this build contains, runnable on this CPU or not.
const std::vector<const F32DwUkernel*>& f32dw_all();
// The variants this CPU runs, ref first.
std::vector<const F32DwUkernel*> f32dw_runnable();
// The variant kernels use for `isa` (the best one whose isa `isa` implies).
const F32DwUkernel& f32dw_for(Isa isa);
// The variant for selected_isa().
const F32DwUkernel& f32dw();

}  // namespace huddle::kernels
