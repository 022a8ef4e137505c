// Builders of the 256-entry tables the lookup kernels apply: a float function
// evaluated at every int8 input and quantised to the output's parameters.
#include <cmath>

#include "kernels/elementwise/elementwise.h"

namespace huddle::kernels {

void qs8_lut_build(QuantParams x, QuantParams y, const std::function<float(float)>& fn, int8_t* table,
                   int8_t min, int8_t max) {
  const QGemmOutput out{y.zero_point, min, max};
  for (int32_t q = -128; q <= 127; ++q) {
    const float v = static_cast<float>(q - x.zero_point) * x.scale;
    const float r = fn(v) / y.scale;
    table[static_cast<uint8_t>(q)] = std::isnan(r) ? qs8_requant_f32(0.0f, out) : qs8_requant_f32(r, out);
  }
}

void qs8_lut_hardswish(QuantParams x, QuantParams y, int8_t* table) {
  qs8_lut_build(
      x, y, [](float v) { return v * std::fmin(std::fmax(v + 3.0f, 0.0f), 6.0f) / 6.0f; }, table);
}

void qs8_lut_hardsigmoid(QuantParams x, QuantParams y, int8_t* table) {
  qs8_lut_build(
      x, y, [](float v) { return std::fmin(std::fmax(v + 3.0f, 0.0f), 6.0f) / 6.0f; }, table);
}

void qs8_lut_sigmoid(QuantParams x, QuantParams y, int8_t* table) {
  qs8_lut_build(
      x, y, [](float v) { return 1.0f / (1.0f + std::exp(-v)); }, table);
}

void qs8_lut_tanh(QuantParams x, QuantParams y, int8_t* table) {
  qs8_lut_build(
      x, y, [](float v) { return std::tanh(v); }, table);
}

void qs8_lut_relu6(QuantParams x, QuantParams y, int8_t* table) {
  qs8_lut_build(
      x, y, [](float v) { return std::fmin(std::fmax(v, 0.0f), 6.0f); }, table);
}

void qs8_lut_leaky_relu(QuantParams x, QuantParams y, float alpha, int8_t* table) {
  qs8_lut_build(
      x, y, [alpha](float v) { return v < 0.0f ? alpha * v : v; }, table);
}

void qs8_lut_gelu(QuantParams x, QuantParams y, int8_t* table) {
  qs8_lut_build(
      x, y, [](float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678f)); }, table);
}

}  // namespace huddle::kernels
