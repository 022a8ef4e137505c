// The fp32 elementwise family: the reference against double-precision
// formulas, and every variant this CPU runs bit for bit against the
// reference, over lengths around every vector width, unaligned and in place.
#include "kernels/f32elementwise/f32elementwise.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tests/kernels/f32_checks.h"
#include "tests/kernels/mismatches.h"

using namespace huddle::kernels;
using namespace huddle::test;

namespace {

const float kInf = std::numeric_limits<float>::infinity();

// Values over the ranges the functions bend in, plus large, tiny and special ones.
std::vector<float> values(Rng& rng, size_t n) {
  std::vector<float> v(n);
  for (auto& x : v) {
    switch (rng.uniform(0, 9)) {
      case 0:
        x = rng.normal() * 100.0f;
        break;
      case 1:
        x = rng.pick<float>(
            {0.0f, -0.0f, 3.0f, -3.0f, 87.0f, -87.0f, 88.5f, -88.5f, 1e-30f, -1e-30f, kInf, -kInf});
        break;
      default:
        x = rng.normal() * 5.0f;
    }
  }
  return v;
}

// One function of the family, as a call on (n, x, y) with fixed extra operands.
struct Function {
  std::string name;
  std::function<void(const F32ElementwiseUkernel&, size_t, const float*, float*)> call;
  std::function<double(double)> exact;  // the formula in double
  double tolerance;                     // |got - exact| <= tolerance * (|exact| + floor)
  double floor = 0;
};

std::vector<Function> functions(const std::vector<float>& other) {
  const float* b = other.data();
  auto cl = [](double v, double lo, double hi) { return std::min(std::max(v, lo), hi); };
  return {
      {"add", [b](auto& uk, size_t n, const float* x, float* y) { uk.add(n, x, b, y); }, nullptr, 0},
      {"mul", [b](auto& uk, size_t n, const float* x, float* y) { uk.mul(n, x, b, y); }, nullptr, 0},
      {"add_scalar", [](auto& uk, size_t n, const float* x, float* y) { uk.add_scalar(n, x, 0.75f, y); },
       [](double v) { return v + 0.75; }, 6e-8},
      {"mul_scalar", [](auto& uk, size_t n, const float* x, float* y) { uk.mul_scalar(n, x, -1.5f, y); },
       [](double v) { return v * -1.5; }, 6e-8},
      {"sub", [b](auto& uk, size_t n, const float* x, float* y) { uk.sub(n, x, b, y); }, nullptr, 0},
      {"div", [b](auto& uk, size_t n, const float* x, float* y) { uk.div(n, x, b, y); }, nullptr, 0},
      {"sub_scalar", [](auto& uk, size_t n, const float* x, float* y) { uk.sub_scalar(n, x, 0.75f, y); },
       [](double v) { return v - 0.75; }, 6e-8},
      {"div_scalar", [](auto& uk, size_t n, const float* x, float* y) { uk.div_scalar(n, x, -1.5f, y); },
       [](double v) { return v / -1.5; }, 6e-8},
      {"rsub_scalar", [](auto& uk, size_t n, const float* x, float* y) { uk.rsub_scalar(n, x, 0.75f, y); },
       [](double v) { return 0.75 - v; }, 6e-8},
      {"rdiv_scalar", [](auto& uk, size_t n, const float* x, float* y) { uk.rdiv_scalar(n, x, -1.5f, y); },
       [](double v) { return -1.5 / v; }, 6e-8},
      {"relu", [](auto& uk, size_t n, const float* x, float* y) { uk.clamp(n, x, y, 0.0f, kInf); },
       [](double v) { return std::max(v, 0.0); }, 0},
      {"relu6", [](auto& uk, size_t n, const float* x, float* y) { uk.clamp(n, x, y, 0.0f, 6.0f); },
       [cl](double v) { return cl(v, 0, 6); }, 0},
      {"sigmoid", [](auto& uk, size_t n, const float* x, float* y) { uk.sigmoid(n, x, y, 0, 0); },
       [](double v) { return 1.0 / (1.0 + std::exp(-v)); }, 4e-7},
      {"silu", [](auto& uk, size_t n, const float* x, float* y) { uk.silu(n, x, y, 0, 0); },
       [](double v) { return std::isinf(v) && v < 0 ? -0.0 : v / (1.0 + std::exp(-v)); }, 5e-7,
       1e-29},  // below -87 the sigmoid is capped at sigmoid(-87): an absolute error under 1e-35
      {"hard_sigmoid",
       [](auto& uk, size_t n, const float* x, float* y) { uk.hard_sigmoid(n, x, y, 1.0f / 6.0f, 0.5f); },
       [cl](double v) { return cl(double(1.0f / 6.0f) * v + 0.5, 0, 1); }, 2e-7, 1},
      {"hard_swish", [](auto& uk, size_t n, const float* x, float* y) { uk.hard_swish(n, x, y, 0, 0); },
       [cl](double v) { return v * cl(v + 3, 0, 6) / 6; }, 3e-7},
      {"leaky_relu", [](auto& uk, size_t n, const float* x, float* y) { uk.leaky_relu(n, x, y, 0.1f, 0); },
       [](double v) { return v < 0 ? double(0.1f) * v : v; }, 6e-8},
      {"leaky_relu_0.2",
       [](auto& uk, size_t n, const float* x, float* y) { uk.leaky_relu(n, x, y, 0.2f, 0); },
       [](double v) { return v < 0 ? double(0.2f) * v : v; }, 6e-8},
  };
}

// Lengths 0..70 (every remainder of every vector width) and some long ones.
std::vector<size_t> lengths() {
  std::vector<size_t> out;
  for (size_t n = 0; n <= 70; ++n) out.push_back(n);
  for (size_t n : {127, 128, 129, 1000, 4099}) out.push_back(n);
  return out;
}

}  // namespace

TEST_CASE("f32 elementwise ref: agrees with the formulas in double", "[kernels][f32elementwise]") {
  Rng rng(41);
  const std::vector<float> x = values(rng, 20000), other = values(rng, 20000);
  std::vector<float> y(x.size());
  for (const Function& f : functions(other)) {
    if (!f.exact) continue;
    f.call(f32elementwise_ref, x.size(), x.data(), y.data());
    Mismatches bad;
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = f.exact(x[i]);
      const bool ok = std::isnan(want) ? std::isnan(y[i])
                      : std::isinf(want)
                          ? y[i] == want
                          : std::abs(y[i] - want) <= f.tolerance * (std::abs(want) + f.floor) + 1e-37;
      bad.check(ok, [&] {
        return f.name + "(" + std::to_string(x[i]) + ") = " + std::to_string(y[i]) + ", want " +
               std::to_string(want);
      });
    }
    INFO(bad.first());
    CHECK(bad.count() == 0);
  }
  // Exactly what the op promises at the edges.
  const float edge[] = {kInf, -kInf, 0.0f, 100.0f, -100.0f, std::nanf("")};
  float s[6];
  f32elementwise_ref.sigmoid(6, edge, s, 0, 0);
  CHECK(s[0] == 1.0f);
  CHECK(s[1] >= 0.0f);
  CHECK(s[1] < 1e-37f);
  CHECK(s[2] == 0.5f);
  CHECK(s[3] == 1.0f);
  CHECK(s[4] < 1e-37f);
  CHECK(std::isnan(s[5]));
  CHECK(f32elementwise_for(Isa::ref).sigmoid == f32elementwise_ref.sigmoid);
  float l[6];
  f32elementwise_ref.leaky_relu(6, edge, l, 0.1f, 0);
  CHECK(l[0] == kInf);
  CHECK(l[1] == -kInf);
  CHECK(std::signbit(l[2]) == false);
  CHECK(l[3] == 100.0f);
  CHECK(l[4] == 0.1f * -100.0f);
  CHECK(std::isnan(l[5]));
  const float minus_zero = -0.0f;
  f32elementwise_ref.leaky_relu(1, &minus_zero, l, 0.1f, 0);
  CHECK(std::signbit(l[0]));
}

TEST_CASE("f32 elementwise: every variant on this CPU gives the bits of ref", "[kernels][f32elementwise]") {
  Rng rng(42);
  for (const F32ElementwiseUkernel* uk : f32elementwise_runnable()) {
    if (uk == &f32elementwise_ref) continue;
    DYNAMIC_SECTION(uk->name) {
      for (size_t n : lengths()) {
        const size_t offset = rng.uniform(0, 3);  // unaligned starts
        const std::vector<float> x = values(rng, n + offset), other = values(rng, n + offset);
        for (const Function& f : functions(other)) {
          std::vector<float> want(n + offset + 8, kCanary), got = want;
          f.call(f32elementwise_ref, n, x.data() + offset, want.data() + offset);
          f.call(*uk, n, x.data() + offset, got.data() + offset);
          INFO(f.name << " n=" << n << " offset=" << offset);
          REQUIRE(std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) == 0);
          std::vector<float> in_place(x);  // y == x
          f.call(*uk, n, in_place.data() + offset, in_place.data() + offset);
          REQUIRE(std::memcmp(in_place.data() + offset, want.data() + offset, n * sizeof(float)) == 0);
        }
      }
    }
  }
}
