// Colour kernels for the dominant-colour task (DESIGN.md §8): 8-bit sRGB to
// CIELAB, and the assignment step of k-means in CIELAB.
//
// sRGB to CIELAB, exactly (IEEE fp32, in this order, no fused multiply-add):
//   lin  = srgb_linear_table()[v] per channel (IEC 61966-2-1 decoding, computed
//          in double and rounded to fp32 once)
//   t_i  = (m[i][0] * lin_r + m[i][1] * lin_g) + m[i][2] * lin_b, i = x, y, z,
//          m = the sRGB-to-XYZ matrix with each row divided by its sum, so the
//          reference white is the matrix's own D65 and neutral grays get a = b = 0
//   f(t) = t > 216/24389 ? cbrt(t) : t * (24389/27/116) + 16/116 (CIE 15)
//   cbrt = three Newton steps y <- (y + y + t / (y * y)) * (1/3) from the
//          guess bits(int32(float(bits(t)) * (1/3)) + 709958130)
//   L = 116 f_y - 16,  a = 500 (f_x - f_y),  b = 200 (f_y - f_z)
// Every variant performs these operations in this order, so L, a and b are
// bit-exact with ref (tested); against the formula in double the error is
// below 2e-4 in L, a and b (the three Newton steps reach fp32 precision).
//
// Assignment: each point goes to the nearest centre by the squared Euclidean
// distance ((dL^2 + da^2) + db^2) in fp32; ties go to the lowest index, so the
// labels are bit-exact across variants. Per-cluster counts are exact; the
// per-cluster sums of L, a, b are added to doubles, variants may sum in fp32
// over blocks of at most 256 points first: they agree with ref within
// 4e-6 * (sum of |value| over the cluster) (fp32 rounding of at most 32
// additions per lane).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/isa.h"

namespace huddle::kernels {

// The most centres the assignment step takes (labels are one byte).
constexpr size_t kKmeansMaxCentres = 16;

// Linear light of each 8-bit sRGB value, 0..1 (the sRGB decoding curve).
const float* srgb_linear_table();

// Converts n pixels of packed R G B bytes to CIELAB planes l, a, b (n floats each).
using RgbToLabFn = void (*)(size_t n, const uint8_t* rgb, float* l, float* a, float* b);
// Assigns each of the n points (l[i], a[i], b[i]) to the nearest of the k
// centres (1 <= k <= kKmeansMaxCentres; centres = k triples L, a, b); writes
// labels[i] and ADDS each point to sums[3 * label + 0..2] and counts[label].
using KmeansAssignFn = void (*)(size_t n, const float* l, const float* a, const float* b, size_t k,
                                const float* centres, uint8_t* labels, double* sums, uint64_t* counts);

struct ColourUkernel {
  const char* name;  // family, isa
  Isa isa;
  RgbToLabFn rgb_to_lab;
  KmeansAssignFn kmeans_assign;
};

// The fp32 constants of the conversion, shared by every variant.
struct LabConstants {
  float m[9];         // rows x, y, z: the normalised sRGB-to-XYZ matrix
  float epsilon;      // 216 / 24389
  float slope;        // 24389 / 27 / 116
  float offset;       // 16 / 116
  float third;        // 1 / 3
  int32_t cbrt_bias;  // 709958130
};
const LabConstants& lab_constants();

// The scalar reference: the specification every other variant must match.
extern const ColourUkernel colour_ref;
#if defined(__x86_64__)
extern const ColourUkernel colour_avx2;
#elif defined(__aarch64__)
extern const ColourUkernel colour_neon;
#endif
// Every variant this build contains, runnable on this CPU or not.
const std::vector<const ColourUkernel*>& colour_all();
// The variants this CPU runs, ref first.
std::vector<const ColourUkernel*> colour_runnable();
// The variant kernels use for `isa` (the best one whose isa `isa` implies).
const ColourUkernel& colour_for(Isa isa);
// The variant for selected_isa().
const ColourUkernel& colour();

}  // namespace huddle::kernels
