// Image preprocessing in one pass (DESIGN.md §3): a uint8 image (RGB, RGBA,
// BGR, BGRA or gray; any row stride) becomes a model's NHWC input tensor:
// crop, bilinear resize, channel order, mean/std normalisation, and fp32 output
// or int8 quantisation. Every variant is bit-exact with ref, for both outputs.
//
// The computation, exactly (all float operations are IEEE fp32, in this order):
//   The crop rectangle (cx, cy, cw, ch) of the source is resized into the box
//   (bx, by, bw, bh) of the output; output pixels outside the box are padding.
//   Sampling, half-pixel centres (align_corners=false), clamped at the edges,
//   in fixed point with F = 11 fraction bits, per axis (shown for x, ox in [0, bw)):
//     s  = clamp(floor(((2 ox + 1) cw - bw) 2^F / (2 bw)), 0, (cw - 1) 2^F)
//     x0 = s >> F,  x1 = min(x0 + 1, cw - 1),  wx = s & (2^F - 1)
//   Horizontal, per source row r and channel c (integer, exact):
//     h_r = p[r][x0][c] (2^F - wx) + p[r][x1][c] wx
//   Vertical (fp32): v = float(h_y0) * float(2^F - wy) + float(h_y1) * float(wy)
//   Padding uses v = pad[c] * 2^(2F).
//   fp32 output: out = v * mul[c] + add[c],  mul = 1 / (std 2^(2F)), add = -mean / std
//   int8 output: out = round_half_even(clamp(v * qmul[c] + qadd[c], -128, 127)),
//                qmul = mul / scale, qadd = add / scale + zero_point
//   (mul, add, qmul, qadd computed in double, rounded to fp32 once.)
// Channel c counts in the output order; gray sources replicate into 3 channels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/isa.h"

namespace huddle::kernels {

// Layout of a source pixel.
enum class PixelFormat : uint8_t { rgb, rgba, bgr, bgra, gray };
// Channels of the output tensor, in order (gray only from a gray source).
enum class ChannelOrder : uint8_t { rgb, bgr, gray };

// A rectangle in pixels; w == 0 means "the whole image".
struct PixelRect {
  size_t x = 0, y = 0, w = 0, h = 0;
};

struct PreprocessParams {
  // The source image: width x height pixels, rows `stride` bytes apart.
  PixelFormat format = PixelFormat::rgb;
  size_t width = 0, height = 0, stride = 0;
  PixelRect crop;  // the source region to use (inside the image)
  // The output tensor: out_height x out_width x channels, NHWC, packed.
  size_t out_width = 0, out_height = 0;
  ChannelOrder order = ChannelOrder::rgb;
  PixelRect box;               // where the crop lands (inside the output); the rest is padding
  uint8_t pad[3] = {0, 0, 0};  // the padding pixel, output channel order
  // Normalisation: (value - mean[c]) / std[c], value in [0, 255], output channel order.
  float mean[3] = {0.0f, 0.0f, 0.0f};
  float std[3] = {1.0f, 1.0f, 1.0f};
  // int8 output: round_half_even((value - mean) / std / scale) + zero_point, saturated.
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// Why `p` cannot be run (nullptr when it can): sizes zero or above 65535,
// stride too small, crop or box outside, gray output from colour, std 0, ...
const char* preprocess_check(const PreprocessParams& p);
// Channels of the output tensor: 1 for ChannelOrder::gray, else 3.
size_t preprocess_channels(const PreprocessParams& p);
// Bytes of scratch a run needs (any alignment); it holds per-call tables only.
size_t preprocess_scratch_size(const PreprocessParams& p);

// src: the image's first row; dst: out_height * out_width * channels values.
using PreprocessF32Fn = void (*)(const PreprocessParams& p, const uint8_t* src, float* dst, void* scratch);
using PreprocessQs8Fn = void (*)(const PreprocessParams& p, const uint8_t* src, int8_t* dst, void* scratch);

struct PreprocessUkernel {
  const char* name;  // XNNPACK-style, e.g. "u8_resize_bilinear_normalize__avx2"
  Isa isa;
  PreprocessF32Fn f32;
  PreprocessQs8Fn qs8;
};

// What a run derives from the params (preprocess_plan), laid out in scratch.
// Elements are the values of one row of the box, e = ox * channels + c.
struct PreprocessPlan {
  size_t channels;
  size_t elems;         // bw * channels
  size_t row_elems;     // out_width * channels
  size_t left_elems;    // bx * channels: padding before the box in each row
  size_t wide_elems;    // leading elements whose taps can be read 4 bytes wide within the row
  const int32_t* off0;  // per element: byte offset of tap x0 in a source row
  const int32_t* off1;  // per element: byte offset of tap x1
  const int32_t* wx;    // per element: (2^F - wx) | wx << 16
  const int32_t* ys;    // per box row: y0, y1 (source rows), wy (3 per row)
  int32_t* rows;        // 2 buffers of elems (rounded up to 8) horizontal sums, 32-byte aligned
  // Per-channel constants repeated over 24 elements (a multiple of 1, 3, 4 and 8).
  float mul[24], add[24], qmul[24], qadd[24];
  float pad_f32[3];
  int8_t pad_qs8[3];
};

// Fills the tables of `p` (which must pass preprocess_check) in `scratch`.
PreprocessPlan preprocess_plan(const PreprocessParams& p, void* scratch);
// Horizontal sums of elements [begin, end) of source row `row` (as in the formula).
void preprocess_horizontal(const PreprocessPlan& plan, const uint8_t* row, size_t begin, size_t end,
                           int32_t* h);

// The parts of a run a variant supplies; preprocess_run does the rest (plan,
// padding, keeping the horizontal sums of a source row while output rows share it).
// h = the horizontal sums of all elements of one source row.
using PreprocessHorizontalFn = void (*)(const PreprocessPlan& plan, const uint8_t* row, int32_t* h);
// The box elements of one output row from the sums of its two source rows
// (buffers of elements rounded up to 8, the extra ones 0) and weight wy.
using PreprocessVerticalF32Fn = void (*)(const PreprocessPlan& plan, const int32_t* h0, const int32_t* h1,
                                         int32_t wy, float* out);
using PreprocessVerticalQs8Fn = void (*)(const PreprocessPlan& plan, const int32_t* h0, const int32_t* h1,
                                         int32_t wy, int8_t* out);
// A whole run from a variant's parts.
void preprocess_run(const PreprocessParams& p, const uint8_t* src, float* dst, void* scratch,
                    PreprocessHorizontalFn horizontal, PreprocessVerticalF32Fn vertical);
void preprocess_run(const PreprocessParams& p, const uint8_t* src, int8_t* dst, void* scratch,
                    PreprocessHorizontalFn horizontal, PreprocessVerticalQs8Fn vertical);

// The scalar reference: the specification every other variant must match.
extern const PreprocessUkernel preprocess_ref;
#if defined(__x86_64__)
extern const PreprocessUkernel preprocess_avx2;
#elif defined(__aarch64__)
extern const PreprocessUkernel preprocess_neon;
#endif
// Every variant this build contains, runnable on this CPU or not.
const std::vector<const PreprocessUkernel*>& preprocess_all();
// The variants this CPU runs, ref first.
std::vector<const PreprocessUkernel*> preprocess_runnable();
// The variant kernels use for `isa` (the best one whose isa `isa` implies).
const PreprocessUkernel& preprocess_for(Isa isa);
// The variant for selected_isa().
const PreprocessUkernel& preprocess();

}  // namespace huddle::kernels
