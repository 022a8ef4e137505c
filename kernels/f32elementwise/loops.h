// The loops of the fp32 elementwise family, plain C++ for the compiler to
// vectorise: included by each variant file (compiled with its own target
// flags) and instantiated there by f32elementwise_variant; everything is in
// an anonymous namespace, so no variant's code can be handed to another.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

#include "kernels/f32elementwise/f32elementwise.h"

namespace huddle::kernels {
namespace {

// The bodies below are branch-free selects the vectoriser turns into blends,
// min and max (a < b ? b : a is maxps(b, a) exactly). Both return a when
// either is NaN, so a NaN passes when it comes first.
inline float max_of(float a, float b) { return a < b ? b : a; }
inline float min_of(float a, float b) { return b < a ? b : a; }

// 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0, e = exp(-|x|) = 2^k * p(r)
// with k = round(-|x| / ln 2) and r = -|x| - k ln 2 in [-ln2/2, ln2/2]; |x|
// is capped at 87 so 2^k stays a normal float (sigmoid(-87) is 1.6e-38), and
// a NaN x is returned as it is. The selects are integer masks over values
// computed for every lane: with ternaries GCC branches around the division
// (it may trap) and gives up vectorising.
inline float sigmoid_of(float x) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer in the low bits
  constexpr float kLog2e = 1.44269504f, kLn2Hi = 0.693145752f, kLn2Lo = 1.42860677e-6f;
  constexpr int32_t k87 = 0x42ae0000, kOne = 0x3f800000, kInf = 0x7f800000;  // bits of 87, 1, inf
  const int32_t xb = std::bit_cast<int32_t>(x), a = xb & 0x7fffffff;         // a: bits of |x|
  const float z = -std::bit_cast<float>(a < k87 ? a : k87);
  const float t = z * kLog2e + kMagic;
  const float k = t - kMagic;
  const float r = (z - k * kLn2Hi) - k * kLn2Lo;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t ki = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kMagic);
  const float e = p * std::bit_cast<float>((ki + 127) << 23);
  const int32_t negative = xb >> 31;  // all ones when x < 0
  const float num = std::bit_cast<float>((std::bit_cast<int32_t>(e) & negative) | (kOne & ~negative));
  const int32_t s = std::bit_cast<int32_t>(num / (1.0f + e));
  const int32_t nan = -static_cast<int32_t>(a > kInf);
  return std::bit_cast<float>((s & ~nan) | (xb & nan));
}

template <class Fn>
void unary(size_t n, const float* x, float* y, Fn fn) {
  for (size_t i = 0; i < n; ++i) y[i] = fn(x[i]);
}

void add(size_t n, const float* a, const float* b, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
void mul(size_t n, const float* a, const float* b, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}
void add_scalar(size_t n, const float* a, float b, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] + b;
}
void mul_scalar(size_t n, const float* a, float b, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] * b;
}
void sub(size_t n, const float* a, const float* b, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] - b[i];
}
void div(size_t n, const float* a, const float* b, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] / b[i];
}
void sub_scalar(size_t n, const float* a, float b, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] - b;
}
void div_scalar(size_t n, const float* a, float b, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = a[i] / b;
}
void rsub_scalar(size_t n, const float* a, float b, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = b - a[i];
}
void rdiv_scalar(size_t n, const float* a, float b, float* y) {
  for (size_t i = 0; i < n; ++i) y[i] = b / a[i];
}
void clamp(size_t n, const float* x, float* y, float lo, float hi) {
  unary(n, x, y, [lo, hi](float v) { return min_of(max_of(v, lo), hi); });
}
void sigmoid(size_t n, const float* x, float* y, float, float) { unary(n, x, y, sigmoid_of); }
// Below -104, x * sigmoid(x) is under the smallest float: 0 (also for -inf,
// where the capped sigmoid would give -inf).
void silu(size_t n, const float* x, float* y, float, float) {
  unary(n, x, y, [](float v) {
    const float r = v * sigmoid_of(v);
    return v < -104.0f ? -0.0f : r;
  });
}
void hard_sigmoid(size_t n, const float* x, float* y, float alpha, float beta) {
  unary(n, x, y, [alpha, beta](float v) { return min_of(max_of(alpha * v + beta, 0.0f), 1.0f); });
}
void hard_swish(size_t n, const float* x, float* y, float, float) {
  unary(n, x, y, [](float v) { return v * min_of(max_of(v + 3.0f, 0.0f), 6.0f) / 6.0f; });
}
// alpha * x taken on every lane and picked by an integer mask: with a
// ternary GCC moves the multiply into a branch and does not vectorise.
void leaky_relu(size_t n, const float* x, float* y, float alpha, float) {
  unary(n, x, y, [alpha](float v) {
    const int32_t negative = -static_cast<int32_t>(v < 0.0f);  // all ones when v < 0
    const int32_t scaled = std::bit_cast<int32_t>(alpha * v);
    return std::bit_cast<float>((scaled & negative) | (std::bit_cast<int32_t>(v) & ~negative));
  });
}

// The variant of this file's instruction set.
constexpr F32ElementwiseUkernel f32elementwise_variant(const char* name, Isa isa) {
  return {name,       isa,         add,         mul,   sub,     div,  add_scalar,   mul_scalar, sub_scalar,
          div_scalar, rsub_scalar, rdiv_scalar, clamp, sigmoid, silu, hard_sigmoid, hard_swish, leaky_relu};
}

}  // namespace
}  // namespace huddle::kernels
