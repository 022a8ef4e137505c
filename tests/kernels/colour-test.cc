// The colour family: the reference sRGB -> CIELAB against the formula in
// double and published values, the reference assignment against a brute-force
// nearest centre, and every variant this CPU runs against the reference over
// sizes around every vector width and block (bit-exact Lab and labels, exact
// counts, sums within colour.h's stated bound).
#include "kernels/colour/colour.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "tests/kernels/mismatches.h"
#include "tests/kernels/shapes.h"

using namespace huddle::kernels;
using namespace huddle::test;

namespace {

// Sizes: 1, odd, around 4 and 8 lanes and the 256-point block.
const std::vector<size_t> kSizes = {1,  2,  3,  4,   5,   7,   8,   9,   15,  16,  17,   31,  33,
                                    63, 64, 65, 255, 256, 257, 263, 511, 512, 513, 1000, 4097};

// CIELAB in double, written from CIE 15 independently of the kernel's fp32
// steps (std::cbrt, the same white normalisation as colour.h states).
void lab_double(const uint8_t* rgb, double out[3]) {
  const double m[9] = {0.4124564, 0.3575761, 0.1804375, 0.2126729, 0.7151522,
                       0.0721750, 0.0193339, 0.1191920, 0.9503041};
  double lin[3];
  for (int c = 0; c < 3; ++c) {
    const double v = rgb[c] / 255.0;
    lin[c] = v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
  }
  double f[3];
  for (int r = 0; r < 3; ++r) {
    const double t = (m[3 * r] * lin[0] + m[3 * r + 1] * lin[1] + m[3 * r + 2] * lin[2]) /
                     (m[3 * r] + m[3 * r + 1] + m[3 * r + 2]);
    f[r] = t > 216.0 / 24389.0 ? std::cbrt(t) : (24389.0 / 27.0 * t + 16.0) / 116.0;
  }
  out[0] = 116 * f[1] - 16;
  out[1] = 500 * (f[0] - f[1]);
  out[2] = 200 * (f[1] - f[2]);
}

std::vector<uint8_t> random_pixels(Rng& rng, size_t n) {
  std::vector<uint8_t> px(3 * n);
  for (size_t i = 0; i < n; ++i) {
    if (rng.coin(0.2)) {  // grays and the extremes, where a and b must vanish
      const uint8_t v = static_cast<uint8_t>(rng.pick<int>({0, 1, 2, 10, 11, 12, 128, 254, 255}));
      px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = v;
    } else {
      for (int c = 0; c < 3; ++c) px[3 * i + c] = static_cast<uint8_t>(rng.uniform(0, 255));
    }
  }
  return px;
}

struct Lab {
  std::vector<float> l, a, b;
  explicit Lab(size_t n) : l(n), a(n), b(n) {}
};

Lab convert(const ColourUkernel& uk, const std::vector<uint8_t>& px) {
  Lab lab(px.size() / 3);
  uk.rgb_to_lab(lab.l.size(), px.data(), lab.l.data(), lab.a.data(), lab.b.data());
  return lab;
}

bool same_bits(float x, float y) { return std::memcmp(&x, &y, sizeof x) == 0; }

}  // namespace

TEST_CASE("colour ref: sRGB to CIELAB matches the formula in double", "[kernels][colour]") {
  // Every colour on a 4-level-step lattice plus every gray.
  std::vector<uint8_t> px;
  for (int r = 0; r < 256; r += 5)
    for (int g = 0; g < 256; g += 5)
      for (int b = 0; b < 256; b += 5) px.insert(px.end(), {uint8_t(r), uint8_t(g), uint8_t(b)});
  for (int v = 0; v < 256; ++v) px.insert(px.end(), {uint8_t(v), uint8_t(v), uint8_t(v)});
  const Lab lab = convert(colour_ref, px);
  Mismatches bad;
  for (size_t i = 0; i < lab.l.size(); ++i) {
    double want[3];
    lab_double(&px[3 * i], want);
    const float got[3] = {lab.l[i], lab.a[i], lab.b[i]};
    for (int c = 0; c < 3; ++c)
      bad.check(std::fabs(got[c] - want[c]) <= 2e-4, [&] {
        return "pixel " + std::to_string(px[3 * i]) + "," + std::to_string(px[3 * i + 1]) + "," +
               std::to_string(px[3 * i + 2]) + " channel " + std::to_string(c) + ": " +
               std::to_string(got[c]) + " want " + std::to_string(want[c]);
      });
  }
  INFO(bad.first());
  REQUIRE(bad.count() == 0);
}

TEST_CASE("colour ref: published CIELAB values of sRGB primaries", "[kernels][colour]") {
  // sRGB primaries in CIELAB (D65), as published by Bruce Lindbloom's colour
  // calculator and in CSS Color Module Level 4's lab() examples: red
  // 53.24 80.09 67.20, green 87.73 -86.18 83.18, blue 32.30 79.19 -107.86;
  // white 100 0 0, black 0 0 0. Tolerance 0.05: the white point here is the
  // matrix's own (its row sums), not the rounded 0.95047 1 1.08883.
  struct Case {
    uint8_t rgb[3];
    float lab[3];
  };
  const Case cases[] = {{{255, 0, 0}, {53.24f, 80.09f, 67.20f}},
                        {{0, 255, 0}, {87.73f, -86.18f, 83.18f}},
                        {{0, 0, 255}, {32.30f, 79.19f, -107.86f}},
                        {{255, 255, 255}, {100.0f, 0.0f, 0.0f}},
                        {{0, 0, 0}, {0.0f, 0.0f, 0.0f}}};
  for (const Case& c : cases) {
    const Lab lab = convert(colour_ref, std::vector<uint8_t>(c.rgb, c.rgb + 3));
    CAPTURE(int(c.rgb[0]), int(c.rgb[1]), int(c.rgb[2]), lab.l[0], lab.a[0], lab.b[0]);
    REQUIRE(std::fabs(lab.l[0] - c.lab[0]) < 0.05f);
    REQUIRE(std::fabs(lab.a[0] - c.lab[1]) < 0.05f);
    REQUIRE(std::fabs(lab.b[0] - c.lab[2]) < 0.05f);
  }
}

TEST_CASE("colour ref: assignment picks the nearest centre, the lowest index on ties", "[kernels][colour]") {
  Rng rng(11);
  for (size_t k = 1; k <= kKmeansMaxCentres; ++k) {
    const size_t n = 300;
    std::vector<float> centres(3 * k);
    for (float& c : centres) c = static_cast<float>(rng.uniform(0, 40)) - 20.0f;
    if (k >= 3) std::memcpy(&centres[6], &centres[0], 3 * sizeof(float));  // centre 2 duplicates centre 0
    Lab p(n);
    for (size_t i = 0; i < n; ++i) {
      if (i % 3 == 0) {  // on a centre exactly
        const size_t j = rng.uniform(0, k - 1);
        p.l[i] = centres[3 * j], p.a[i] = centres[3 * j + 1], p.b[i] = centres[3 * j + 2];
      } else {
        p.l[i] = rng.normal() * 15, p.a[i] = rng.normal() * 15, p.b[i] = rng.normal() * 15;
      }
    }
    std::vector<uint8_t> labels(n, 255);
    std::vector<double> sums(3 * k, 0.0);
    std::vector<uint64_t> counts(k, 0);
    colour_ref.kmeans_assign(n, p.l.data(), p.a.data(), p.b.data(), k, centres.data(), labels.data(),
                             sums.data(), counts.data());
    std::vector<double> want_sums(3 * k, 0.0);
    std::vector<uint64_t> want_counts(k, 0);
    for (size_t i = 0; i < n; ++i) {
      // Brute force in double: the nearest distance, and the first centre at it.
      double best = 1e300;
      size_t first = 0;
      for (size_t j = 0; j < k; ++j) {
        const double d = std::pow(p.l[i] - centres[3 * j], 2) + std::pow(p.a[i] - centres[3 * j + 1], 2) +
                         std::pow(p.b[i] - centres[3 * j + 2], 2);
        if (d < best) best = d, first = j;
      }
      CAPTURE(k, i);
      REQUIRE(labels[i] < k);
      const size_t j = labels[i];
      const double mine = std::pow(p.l[i] - centres[3 * j], 2) + std::pow(p.a[i] - centres[3 * j + 1], 2) +
                          std::pow(p.b[i] - centres[3 * j + 2], 2);
      REQUIRE(mine <= best * (1 + 1e-5) + 1e-9);
      if (best == 0) REQUIRE(j == first);  // on a centre: that centre, the first of duplicates
      if (k >= 3) REQUIRE(j != 2);         // the duplicate of centre 0 never wins
      want_sums[3 * j] += p.l[i], want_sums[3 * j + 1] += p.a[i], want_sums[3 * j + 2] += p.b[i];
      ++want_counts[j];
    }
    REQUIRE(counts == want_counts);
    for (size_t c = 0; c < 3 * k; ++c) REQUIRE(sums[c] == Approx(want_sums[c]).margin(1e-9));
  }
}

TEST_CASE("colour variants: sRGB to CIELAB bit-exact with ref", "[kernels][colour]") {
  Rng rng(5);
  for (const ColourUkernel* uk : colour_runnable()) {
    Mismatches bad;
    for (size_t n : kSizes) {
      const std::vector<uint8_t> px = random_pixels(rng, n);
      const Lab want = convert(colour_ref, px), got = convert(*uk, px);
      for (size_t i = 0; i < n; ++i)
        bad.check(same_bits(got.l[i], want.l[i]) && same_bits(got.a[i], want.a[i]) &&
                      same_bits(got.b[i], want.b[i]),
                  [&] {
                    return std::string(uk->name) + " n=" + std::to_string(n) + " i=" + std::to_string(i) +
                           ": " + std::to_string(got.l[i]) + "," + std::to_string(got.a[i]) + "," +
                           std::to_string(got.b[i]) + " want " + std::to_string(want.l[i]) + "," +
                           std::to_string(want.a[i]) + "," + std::to_string(want.b[i]);
                  });
    }
    INFO(bad.first());
    REQUIRE(bad.count() == 0);
  }
}

TEST_CASE("colour variants: k-means assignment agrees with ref", "[kernels][colour]") {
  Rng rng(7);
  for (const ColourUkernel* uk : colour_runnable()) {
    Mismatches bad;
    for (size_t n : kSizes) {
      for (size_t k : {size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{8}, size_t{13}, size_t{16}}) {
        // Lab points of real pixels; centres are some of the points, one duplicated, so
        // exact ties and points on centres occur.
        const Lab p = convert(colour_ref, random_pixels(rng, n));
        std::vector<float> centres(3 * k);
        for (size_t j = 0; j < k; ++j) {
          const size_t from = rng.uniform(0, n - 1);
          centres[3 * j] = p.l[from], centres[3 * j + 1] = p.a[from], centres[3 * j + 2] = p.b[from];
        }
        if (k > 2) std::memcpy(&centres[3 * (k - 1)], &centres[3], 3 * sizeof(float));
        std::vector<uint8_t> want_labels(n), labels(n);
        std::vector<double> want_sums(3 * k, 0.0), sums(3 * k, 0.0);
        std::vector<uint64_t> want_counts(k, 0), counts(k, 0);
        colour_ref.kmeans_assign(n, p.l.data(), p.a.data(), p.b.data(), k, centres.data(), want_labels.data(),
                                 want_sums.data(), want_counts.data());
        uk->kmeans_assign(n, p.l.data(), p.a.data(), p.b.data(), k, centres.data(), labels.data(),
                          sums.data(), counts.data());
        std::vector<double> magnitude(3 * k, 0.0);
        for (size_t i = 0; i < n; ++i) {
          const size_t j = want_labels[i];
          magnitude[3 * j] += std::fabs(p.l[i]), magnitude[3 * j + 1] += std::fabs(p.a[i]),
              magnitude[3 * j + 2] += std::fabs(p.b[i]);
        }
        const std::string where =
            std::string(uk->name) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
        bad.check(labels == want_labels, [&] { return where + ": labels differ"; });
        bad.check(counts == want_counts, [&] { return where + ": counts differ"; });
        for (size_t c = 0; c < 3 * k; ++c)
          bad.check(std::fabs(sums[c] - want_sums[c]) <= 4e-6 * magnitude[c] + 1e-9, [&] {
            return where + " sum " + std::to_string(c) + ": " + std::to_string(sums[c]) + " want " +
                   std::to_string(want_sums[c]);
          });
      }
    }
    INFO(bad.first());
    REQUIRE(bad.count() == 0);
  }
}

TEST_CASE("colour variants: the vector variant of this CPU is among those tested", "[kernels][colour]") {
  const std::vector<const ColourUkernel*> tested = colour_runnable();
  REQUIRE(tested.front() == &colour_ref);
  for (Isa isa : runnable_isas()) {
    if (isa != Isa::avx2 && isa != Isa::neon) continue;
    CAPTURE(isa_name(isa));
    REQUIRE(
        std::any_of(tested.begin(), tested.end(), [&](const ColourUkernel* uk) { return uk->isa == isa; }));
  }
}
