// fp32 elementwise family: add, multiply, subtract and divide (of two vectors,
// or of a vector and one value, either way round), clamp (ReLU, ReLU6, Clip), sigmoid, hard sigmoid, hard
// swish and leaky ReLU over n contiguous floats, y may be x (in place).
//
// Every variant is the same plain C++ (loops.h) compiled for its instruction
// set, so the compiler vectorises it at that width; FMA contraction is off
// project-wide and nothing is reassociated, so every variant gives the bits of
// the reference, for any n and any split of the range. The sigmoid is not
// libm's: it computes exp(-|x|) as 2^k times a degree-6 polynomial (relative
// error about 2e-7, tested), so that it vectorises; its results are still
// the same on every variant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/isa.h"

namespace huddle::kernels {

// y[i] = a[i] op b[i].
using F32BinaryFn = void (*)(size_t n, const float* a, const float* b, float* y);
// y[i] = a[i] op b (one value).
using F32BinaryScalarFn = void (*)(size_t n, const float* a, float b, float* y);
// y[i] = f(x[i]) with two parameters p, q (their meaning per function below).
using F32UnaryFn = void (*)(size_t n, const float* x, float* y, float p, float q);

struct F32ElementwiseUkernel {
  const char* name;  // family, isa
  Isa isa;
  F32BinaryFn add, mul, sub, div;
  // a[i] + b, a[i] * b, a[i] - b, a[i] / b; then the reversed forms b - a[i], b / a[i].
  F32BinaryScalarFn add_scalar, mul_scalar, sub_scalar, div_scalar, rsub_scalar, rdiv_scalar;
  // min(q, max(p, x)) (a NaN x passes): ReLU is p = 0, q = inf.
  F32UnaryFn clamp;
  // 1 / (1 + exp(-x)) (p, q unused).
  F32UnaryFn sigmoid;
  // x * sigmoid(x) with the sigmoid above, 0 below -104 (SiLU, also called swish) (p, q unused).
  F32UnaryFn silu;
  // min(max(p * x + q, 0), 1): ONNX HardSigmoid with alpha = p, beta = q.
  F32UnaryFn hard_sigmoid;
  // x * min(max(x + 3, 0), 6) / 6 (p, q unused).
  F32UnaryFn hard_swish;
  // x < 0 ? p * x : x (a NaN and -0 pass): LeakyRelu with alpha = p (q unused).
  F32UnaryFn leaky_relu;
};

// The portable variant: the specification every other variant matches bit for bit.
extern const F32ElementwiseUkernel f32elementwise_ref;
#if defined(__x86_64__)
extern const F32ElementwiseUkernel f32elementwise_avx2;
extern const F32ElementwiseUkernel f32elementwise_avx512vnni;
#elif defined(__aarch64__)
extern const F32ElementwiseUkernel f32elementwise_neon;
#endif
// Every variant this build contains, runnable on this CPU or not.
const std::vector<const F32ElementwiseUkernel*>& f32elementwise_all();
// The variants this CPU runs, ref first.
std::vector<const F32ElementwiseUkernel*> f32elementwise_runnable();
// The variant kernels use for `isa` (the best one whose isa `isa` implies).
const F32ElementwiseUkernel& f32elementwise_for(Isa isa);
// The variant for selected_isa().
const F32ElementwiseUkernel& f32elementwise();

}  // namespace huddle::kernels
