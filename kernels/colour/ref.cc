// The colour family's scalar reference (the specification in colour.h) and
// the tables and constants every variant shares.
#include <array>
#include <cmath>

#include "kernels/colour/colour.h"
#include "kernels/colour/scalar.h"

namespace huddle::kernels {
namespace {

void rgb_to_lab(size_t n, const uint8_t* rgb, float* l, float* a, float* b) {
  const LabConstants& c = lab_constants();
  const float* table = srgb_linear_table();
  for (size_t i = 0; i < n; ++i) colour_scalar::pixel_to_lab(c, table, rgb + 3 * i, l + i, a + i, b + i);
}

void kmeans_assign(size_t n, const float* l, const float* a, const float* b, size_t k, const float* centres,
                   uint8_t* labels, double* sums, uint64_t* counts) {
  colour_scalar::assign_points(0, n, l, a, b, k, centres, labels, sums, counts);
}

}  // namespace

const float* srgb_linear_table() {
  // IEC 61966-2-1: v / 12.92 up to 0.04045, else ((v + 0.055) / 1.055)^2.4.
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) {
      const double v = i / 255.0;
      t[i] = static_cast<float>(v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4));
    }
    return t;
  }();
  return table.data();
}

const LabConstants& lab_constants() {
  static const LabConstants constants = [] {
    // sRGB (D65) to XYZ, from the IEC 61966-2-1 primaries (as tabulated by
    // Bruce Lindbloom, "RGB/XYZ Matrices"); each row divided by its sum, the
    // white point.
    const double m[9] = {0.4124564, 0.3575761, 0.1804375, 0.2126729, 0.7151522,
                         0.0721750, 0.0193339, 0.1191920, 0.9503041};
    LabConstants c{};
    for (int row = 0; row < 3; ++row) {
      const double sum = m[3 * row] + m[3 * row + 1] + m[3 * row + 2];
      for (int col = 0; col < 3; ++col) c.m[3 * row + col] = static_cast<float>(m[3 * row + col] / sum);
    }
    c.epsilon = static_cast<float>(216.0 / 24389.0);
    c.slope = static_cast<float>(24389.0 / 27.0 / 116.0);
    c.offset = static_cast<float>(16.0 / 116.0);
    c.third = static_cast<float>(1.0 / 3.0);
    c.cbrt_bias = 709958130;
    return c;
  }();
  return constants;
}

const ColourUkernel colour_ref = {"colour__ref", Isa::ref, rgb_to_lab, kmeans_assign};

}  // namespace huddle::kernels
