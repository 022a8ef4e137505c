// What the fp32 kernel tests (GEMM, convolution, depthwise) share: the output
// canary, random clamps, the exact value of an output and a shape's description.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/f32/f32.h"
#include "tests/kernels/shapes.h"

namespace huddle::test {

// Written around every output; a kernel must leave it untouched.
constexpr float kCanary = -1234.5f;
inline const float kNaN = std::nanf("");

inline bool is_canary(float v) { return std::memcmp(&v, &kCanary, sizeof v) == 0; }

// No clamp, ReLU, ReLU6, or bounds inside the output range (both sides clamp).
inline kernels::F32Clamp random_clamp(Rng& rng) {
  switch (rng.uniform(0, 3)) {
    case 0:
      return kernels::kF32Relu;
    case 1:
      return kernels::kF32Relu6;
    case 2: {
      const float lo = rng.normal();
      return {lo, lo + std::abs(rng.normal())};
    }
    default:
      return kernels::kF32NoClamp;
  }
}

// Exact value (in double) and the scale |bias| + sum |a * w| of one output.
struct Exact {
  double value, scale;
};

inline double clamp(double v, const kernels::F32Clamp& c) {
  return std::min(std::max(v, double(c.min)), double(c.max));
}

// |got - exact| within the rounding error bound of k + 1 sequential float
// multiply-adds: (k + 2) * 2^-24 * scale.
inline bool within_rounding(float got, double exact, double scale, size_t k) {
  return std::abs(double(got) - exact) <= double(k + 2) * std::ldexp(1.0, -24) * scale;
}

// |got - want| within the family tolerance of the reference.
inline bool within_tolerance(float got, float want, double scale) {
  return std::abs(double(got) - double(want)) <=
         kernels::kF32RelTolerance * scale + kernels::kF32AbsTolerance;
}

// Floats of a convolution's input and output over the batch.
inline size_t in_floats(const kernels::F32ConvShape& s) { return s.batch * s.in_h * s.in_w * s.in_stride(); }
inline size_t out_floats(const kernels::F32ConvShape& s) {
  return s.batch * s.out_h() * s.out_w() * s.out_stride();
}

inline std::string describe_conv(const kernels::F32ConvShape& s, const kernels::F32Clamp& clamp) {
  std::ostringstream o;
  o << "batch=" << s.batch << " in=" << s.in_h << "x" << s.in_w << "x" << s.in_c << " out_c=" << s.out_c
    << " kernel=" << s.kernel_h << "x" << s.kernel_w << " stride=" << s.stride_h << "," << s.stride_w
    << " dilation=" << s.dilation_h << "," << s.dilation_w << " pad=" << s.pad_top << "," << s.pad_left << ","
    << s.pad_bottom << "," << s.pad_right << " pixel strides=" << s.in_stride() << "," << s.out_stride()
    << " clamp=[" << clamp.min << ", " << clamp.max << "]";
  return o.str();
}

// A convolution problem: its shape, a clamp, input, weights and bias.
struct ConvProblem {
  kernels::F32ConvShape shape;
  kernels::F32Clamp clamp;
  std::vector<float> input, weights, bias;
};

inline std::string describe(const ConvProblem& p) { return describe_conv(p.shape, p.clamp); }

// Fills p (its shape set) with a random clamp, normal input (NaN in the
// channels past in_c: they belong to other groups or tensors, so reading them
// shows), `weights` normal weights and out_c normal biases.
inline void fill_random(Rng& rng, ConvProblem& p, size_t weights) {
  const kernels::F32ConvShape& s = p.shape;
  p.clamp = random_clamp(rng);
  p.input.assign(in_floats(s), kNaN);
  for (size_t px = 0; px < s.batch * s.in_h * s.in_w; ++px)
    for (size_t ch = 0; ch < s.in_c; ++ch) p.input[px * s.in_stride() + ch] = rng.normal();
  p.weights.resize(weights);
  for (auto& v : p.weights) v = rng.normal();
  p.bias.resize(s.out_c);
  for (auto& v : p.bias) v = rng.normal();
}

}  // namespace huddle::test
