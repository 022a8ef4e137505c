// int8 elementwise family (TFLite int8 scheme, DESIGN.md §4): add and multiply
// of two tensors with their own scales and zero points, rescaling of a tensor
// to other quantisation parameters (and concatenation along channels built on
// it), and pointwise functions through a 256-entry lookup table.
//
// Every result is requantised in fp32 exactly as the inline functions below
// write it (one float rounding order, clamp in float, round half to even), and
// every variant reproduces them bit for bit:
//   add:     f = float(a - a_zp) * a_multiplier + float(b - b_zp) * b_multiplier
//   mul:     f = float((a - a_zp) * (b - b_zp)) * a_multiplier
//   rescale: f = float(x - x_zp) * multiplier
//   q = round_half_even(clamp(f, min - zp, max - zp)) + zp
// (the GEMM family's qgemm_requant, with its QGemmOutput for zp, min and max).
// The multipliers are ratios of scales computed once by qs8_add_params and
// friends (FMA contraction is off project-wide, so mul and add round separately).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "kernels/isa.h"

namespace huddle::kernels {

// Quantisation of one int8 tensor: real = scale * (q - zero_point).
struct QuantParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// Parameters of one add or multiply call (see qs8_add_params, qs8_mul_params).
struct QBinaryParams {
  int32_t a_zero_point = 0, b_zero_point = 0;
  float a_multiplier = 1.0f;  // add: a_scale / y_scale; mul: a_scale * b_scale / y_scale
  float b_multiplier = 1.0f;  // add: b_scale / y_scale; mul: unused
  QGemmOutput out;            // output zero point and clamp bounds
};

// Parameters of one rescale call (see qs8_rescale_params).
struct QRescaleParams {
  int32_t x_zero_point = 0;
  float multiplier = 1.0f;  // x_scale / y_scale
  QGemmOutput out;
};

// Parameters of y = a + b clamped to [min, max] (quantised values).
QBinaryParams qs8_add_params(QuantParams a, QuantParams b, QuantParams y, int8_t min = -128,
                             int8_t max = 127);
// Parameters of y = a * b clamped to [min, max].
QBinaryParams qs8_mul_params(QuantParams a, QuantParams b, QuantParams y, int8_t min = -128,
                             int8_t max = 127);
// Parameters of the conversion of x to y's quantisation, clamped to [min, max].
QRescaleParams qs8_rescale_params(QuantParams x, QuantParams y, int8_t min = -128, int8_t max = 127);

// The final step shared by the whole family: clamp f to the output range (in
// float), round half to even, add the output zero point.
inline int8_t qs8_requant_f32(float f, const QGemmOutput& out) {
  const float lo = static_cast<float>(out.min - out.zero_point);
  const float hi = static_cast<float>(out.max - out.zero_point);
  f = f < lo ? lo : f;
  f = f > hi ? hi : f;
  return static_cast<int8_t>(static_cast<int32_t>(__builtin_rintf(f)) + out.zero_point);
}
// One element of add: the specification every variant matches.
inline int8_t qs8_add_one(int8_t a, int8_t b, const QBinaryParams& p) {
  const float fa = static_cast<float>(int32_t{a} - p.a_zero_point) * p.a_multiplier;
  const float fb = static_cast<float>(int32_t{b} - p.b_zero_point) * p.b_multiplier;
  return qs8_requant_f32(fa + fb, p.out);
}
// One element of mul: the specification every variant matches.
inline int8_t qs8_mul_one(int8_t a, int8_t b, const QBinaryParams& p) {
  const int32_t prod = (int32_t{a} - p.a_zero_point) * (int32_t{b} - p.b_zero_point);
  return qs8_requant_f32(static_cast<float>(prod) * p.a_multiplier, p.out);
}
// One element of rescale: the specification every variant matches.
inline int8_t qs8_rescale_one(int8_t x, const QRescaleParams& p) {
  return qs8_requant_f32(static_cast<float>(int32_t{x} - p.x_zero_point) * p.multiplier, p.out);
}

// y[r][c] = op(a[r][c], b[r * b_stride + c]) for r < rows, c < channels; a and
// y dense (row stride channels). b_stride = channels: same shape; b_stride = 0:
// b is a per-channel vector (NHWC: the last dimension). y may be a.
using QBinaryFn = void (*)(size_t rows, size_t channels, const int8_t* a, const int8_t* b, size_t b_stride,
                           int8_t* y, const QBinaryParams& p);
// y[i] = op(a[i], b) for i < n: b is a scalar. y may be a. (A scalar a is the
// same call with the operands and their parameters swapped: both ops commute.)
using QBinaryScalarFn = void (*)(size_t n, const int8_t* a, int8_t b, int8_t* y, const QBinaryParams& p);
// y[r * y_stride + c] = rescale(x[r * x_stride + c]) for r < rows, c < channels.
using QRescaleFn = void (*)(size_t rows, size_t channels, const int8_t* x, size_t x_stride, int8_t* y,
                            size_t y_stride, const QRescaleParams& p);

// One variant of the arithmetic kernels.
struct QElementwiseUkernel {
  const char* name;  // XNNPACK-style: family, requantisation, isa, elements per step
  Isa isa;
  QBinaryFn add;
  QBinaryScalarFn add_scalar;
  QBinaryFn mul;
  QBinaryScalarFn mul_scalar;
  QRescaleFn rescale;
};

// The scalar reference: the specification every other variant must match.
extern const QElementwiseUkernel qs8_elementwise_ref;
#if defined(__x86_64__)
extern const QElementwiseUkernel qs8_elementwise_avx2;
#elif defined(__aarch64__)
extern const QElementwiseUkernel qs8_elementwise_neon;
#endif
// Every variant this build contains, runnable on this CPU or not.
const std::vector<const QElementwiseUkernel*>& qs8_elementwise_all();
// The variants this CPU runs, ref first.
std::vector<const QElementwiseUkernel*> qs8_elementwise_runnable();
// The variant kernels use for `isa` (the best one whose isa `isa` implies).
const QElementwiseUkernel& qs8_elementwise_for(Isa isa);
// The variant for selected_isa().
const QElementwiseUkernel& qs8_elementwise();

// One input of a concatenation along channels: rows x channels, dense.
struct QConcatInput {
  const int8_t* data;
  size_t channels;
  QuantParams quant;
};
// y (rows x sum of the inputs' channels, dense, quantised as `y_quant`) = the
// inputs side by side, each rescaled to y's parameters with uk.rescale, or
// copied when its parameters equal y's (the same bytes rescale would give).
void qs8_concat_channels(const QElementwiseUkernel& uk, size_t rows, size_t count, const QConcatInput* inputs,
                         int8_t* y, QuantParams y_quant);

// y[i] = table[uint8_t(x[i])] for i < n: a pointwise function of an int8
// tensor through its 256-entry table (built by qs8_lut_build). y may be x.
using QLutFn = void (*)(size_t n, const int8_t* x, int8_t* y, const int8_t* table);

// One variant of the table lookup.
struct QLutUkernel {
  const char* name;
  Isa isa;
  QLutFn apply;
};

// The scalar reference.
extern const QLutUkernel x8_lut_ref;
#if defined(__x86_64__)
extern const QLutUkernel x8_lut_avx2;
extern const QLutUkernel x8_lut_avx512;  // AVX-512 BW, listed under Isa::avx512vnni
#elif defined(__aarch64__)
extern const QLutUkernel x8_lut_neon;
#endif
// Every variant this build contains, runnable on this CPU or not.
const std::vector<const QLutUkernel*>& x8_lut_all();
// The variants this CPU runs, ref first.
std::vector<const QLutUkernel*> x8_lut_runnable();
// The variant kernels use for `isa`.
const QLutUkernel& x8_lut_for(Isa isa);
// The variant for selected_isa().
const QLutUkernel& x8_lut();

// Fills table[256] with y = fn(x) over every int8 x (at index uint8_t(x)):
//   v = float(x - x.zero_point) * x.scale;  r = fn(v) / y.scale;
//   table = round_half_even(clamp(r, min - zp, max - zp)) + zp  (a NaN r counts as 0).
void qs8_lut_build(QuantParams x, QuantParams y, const std::function<float(float)>& fn, int8_t* table,
                   int8_t min = -128, int8_t max = 127);
// Tables of common activations (same quantisation rule as qs8_lut_build).
void qs8_lut_hardswish(QuantParams x, QuantParams y, int8_t* table);    // x * relu6(x + 3) / 6
void qs8_lut_hardsigmoid(QuantParams x, QuantParams y, int8_t* table);  // relu6(x + 3) / 6
void qs8_lut_sigmoid(QuantParams x, QuantParams y, int8_t* table);      // 1 / (1 + exp(-x))
void qs8_lut_tanh(QuantParams x, QuantParams y, int8_t* table);
void qs8_lut_relu6(QuantParams x, QuantParams y, int8_t* table);                    // min(max(x, 0), 6)
void qs8_lut_leaky_relu(QuantParams x, QuantParams y, float alpha, int8_t* table);  // x < 0 ? alpha * x : x
void qs8_lut_gelu(QuantParams x, QuantParams y, int8_t* table);  // x * Phi(x), Phi the normal CDF (erf)

}  // namespace huddle::kernels
