// The per-pixel and per-point operations of colour.h's specification, shared
// by ref and by the vector variants for the points that do not fill a vector.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/colour/colour.h"

namespace huddle::kernels::colour_scalar {

inline float from_bits(int32_t i) {
  float f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}

inline int32_t to_bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

// f(t) of CIELAB, as colour.h specifies it (cbrt by Newton steps).
inline float lab_f(const LabConstants& c, float t) {
  const int32_t guess = static_cast<int32_t>(static_cast<float>(to_bits(t)) * c.third) + c.cbrt_bias;
  float y = from_bits(guess);
  for (int step = 0; step < 3; ++step) y = (y + y + t / (y * y)) * c.third;
  return t > c.epsilon ? y : t * c.slope + c.offset;
}

// One pixel R G B to L, a, b.
inline void pixel_to_lab(const LabConstants& c, const float* table, const uint8_t* rgb, float* l, float* a,
                         float* b) {
  const float r = table[rgb[0]], g = table[rgb[1]], bl = table[rgb[2]];
  const float fx = lab_f(c, (c.m[0] * r + c.m[1] * g) + c.m[2] * bl);
  const float fy = lab_f(c, (c.m[3] * r + c.m[4] * g) + c.m[5] * bl);
  const float fz = lab_f(c, (c.m[6] * r + c.m[7] * g) + c.m[8] * bl);
  *l = 116.0f * fy - 16.0f;
  *a = 500.0f * (fx - fy);
  *b = 200.0f * (fy - fz);
}

// The nearest centre of one point (the lowest index on ties).
inline uint8_t nearest_centre(float l, float a, float b, size_t k, const float* centres) {
  uint8_t best_j = 0;
  float best = 0;
  for (size_t j = 0; j < k; ++j) {
    const float dl = l - centres[3 * j], da = a - centres[3 * j + 1], db = b - centres[3 * j + 2];
    const float d = (dl * dl + da * da) + db * db;
    if (j == 0 || d < best) best = d, best_j = static_cast<uint8_t>(j);
  }
  return best_j;
}

// Assigns points [begin, end) one at a time, adding to the doubles directly.
inline void assign_points(size_t begin, size_t end, const float* l, const float* a, const float* b, size_t k,
                          const float* centres, uint8_t* labels, double* sums, uint64_t* counts) {
  for (size_t i = begin; i < end; ++i) {
    const uint8_t j = nearest_centre(l[i], a[i], b[i], k, centres);
    labels[i] = j;
    sums[3 * j] += l[i];
    sums[3 * j + 1] += a[i];
    sums[3 * j + 2] += b[i];
    ++counts[j];
  }
}

}  // namespace huddle::kernels::colour_scalar
