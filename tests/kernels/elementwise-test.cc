// The int8 elementwise family: hand-computed cases, the references against
// independent formulas, and every variant this CPU runs against the
// references, bit for bit, with canary bytes around every output.
#include "kernels/elementwise/elementwise.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/elementwise/pool.h"
#include "tests/kernels/shapes.h"

using namespace huddle::kernels;
using huddle::test::Rng;

namespace {

constexpr int8_t kCanary = 0x5a;
constexpr size_t kGuard = 32;  // canary bytes on each side of an output

// An output buffer of n bytes with canaries on both sides.
struct Guarded {
  explicit Guarded(size_t n) : bytes(n + 2 * kGuard, kCanary), n(n) {}
  int8_t* data() { return bytes.data() + kGuard; }
  bool canaries_intact() const {
    for (size_t i = 0; i < kGuard; ++i)
      if (bytes[i] != kCanary || bytes[kGuard + n + i] != kCanary) return false;
    return true;
  }
  std::vector<int8_t> bytes;
  size_t n;
};

std::vector<int8_t> random_bytes(Rng& rng, size_t n) {
  std::vector<int8_t> v(n);
  const bool extreme = rng.coin(0.1);  // only -128 and 127, to saturate
  for (auto& x : v)
    x = extreme ? (rng.coin(0.5) ? 127 : -128)
                : static_cast<int8_t>(static_cast<int>(rng.uniform(0, 255)) - 128);
  return v;
}

int32_t random_zero_point(Rng& rng) {
  return rng.pick({-128, 127, 0, static_cast<int32_t>(rng.uniform(0, 255)) - 128});
}

// Scales whose ratios span 2^-10 .. 2^10.
float random_scale(Rng& rng) { return std::exp2(static_cast<float>(rng.uniform(0, 100)) / 10.0f - 5.0f); }

QuantParams random_quant(Rng& rng) { return {random_scale(rng), random_zero_point(rng)}; }

// Clamp bounds: usually the full range, sometimes a ReLU-like window.
void random_clamp(Rng& rng, int8_t* min, int8_t* max) {
  *min = -128, *max = 127;
  if (rng.coin(0.3)) {
    const int lo = static_cast<int>(rng.uniform(0, 200)) - 128;
    *min = static_cast<int8_t>(lo);
    *max = static_cast<int8_t>(lo + static_cast<int>(rng.uniform(0, 127 - lo)));
  }
}

// Lengths around the vector widths of every variant (16, 32, 64) and random ones.
size_t random_length(Rng& rng) {
  if (rng.coin(0.5))
    return rng.pick<size_t>({1, 2, 3, 7, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 127, 129});
  return rng.coin(0.1) ? rng.uniform(1000, 3000) : rng.uniform(1, 300);
}

// The requantisation computed in double: the real result before the float
// roundings of the specification, so it may differ from it by one step.
long requant_double(double f, int32_t zp, int8_t min, int8_t max) {
  f = std::clamp(f, double(min - zp), double(max - zp));
  return std::lrint(f) + zp;
}

}  // namespace

TEST_CASE("elementwise ref: hand-computed add, mul and rescale", "[kernels][elementwise]") {
  const QElementwiseUkernel& uk = qs8_elementwise_ref;
  {
    // a: scale 0.5 zp 0; b: scale 0.25 zp 10; y: scale 1 zp -5 -> multipliers 0.5 and 0.25.
    const QBinaryParams p = qs8_add_params({0.5f, 0}, {0.25f, 10}, {1.0f, -5});
    const int8_t a[] = {3, 1, 1, 3, 5, -128};
    const int8_t b[] = {20, 12, 10, 10, 10, 10};
    int8_t y[6];
    uk.add(1, 6, a, b, 6, y, p);
    CHECK(int(y[0]) == -1);   // 1.5 + 2.5 = 4
    CHECK(int(y[1]) == -4);   // 0.5 + 0.5 = 1
    CHECK(int(y[2]) == -5);   // 0.5 rounds to 0
    CHECK(int(y[3]) == -3);   // 1.5 rounds to 2
    CHECK(int(y[4]) == -3);   // 2.5 rounds to 2
    CHECK(int(y[5]) == -69);  // -64
    // y scale 0.5: 127 + 58.5 saturates at 127.
    const QBinaryParams sat = qs8_add_params({0.5f, 0}, {0.25f, 10}, {0.5f, -5});
    const int8_t big = 127;
    uk.add(1, 1, &big, &big, 1, y, sat);
    CHECK(int(y[0]) == 127);
    // b a scalar: 20 -> 2.5 added to 0.5 * a.
    uk.add_scalar(3, a, 20, y, p);
    CHECK(int(y[0]) == -1);  // 1.5 + 2.5
    CHECK(int(y[1]) == -2);  // 0.5 + 2.5 = 3
    CHECK(int(y[2]) == -2);
    // b per channel over 2 rows of 3: b = {14, 10, 6} -> {1, 0, -1}.
    const int8_t bc[] = {14, 10, 6};
    int8_t y2[6];
    uk.add(2, 3, a, bc, 0, y2, p);
    const int expect[] = {-5 + 2 /* 1.5+1=2.5->2 */, -5 + 0 /* 0.5 -> 0 */, -5 - 0 /* -0.5 -> -0 */,
                          -5 + 2 /* 1.5+1 */,        -5 + 2 /* 2.5 -> 2 */, -5 - 64 - 1 /* -65 */};
    for (int i = 0; i < 6; ++i) CHECK(int(y2[i]) == expect[i]);
  }
  {
    // a: scale 0.5 zp 1; b: scale 0.5 zp -1; y: scale 0.25 zp 0 -> multiplier 1.
    const QBinaryParams p = qs8_mul_params({0.5f, 1}, {0.5f, -1}, {0.25f, 0});
    const int8_t a[] = {3, -128, 0, 4};
    const int8_t b[] = {1, 127, 1, -1};
    int8_t y[4];
    uk.mul(1, 4, a, b, 4, y, p);
    CHECK(int(y[0]) == 4);     // 2 * 2
    CHECK(int(y[1]) == -128);  // -129 * 128 saturates
    CHECK(int(y[2]) == -2);    // -1 * 2
    CHECK(int(y[3]) == 0);     // 3 * 0
    // Multiplier 0.125 (y scale 2) and a ReLU clamp at 0: 2*2/8 = 0.5 -> 0; 3*7/8 = 2.625 -> 3.
    const QBinaryParams q = qs8_mul_params({0.5f, 1}, {0.5f, -1}, {2.0f, 0}, 0, 127);
    const int8_t a2[] = {3, 4, 0}, b2[] = {1, 6, 1};
    uk.mul(1, 3, a2, b2, 3, y, q);
    CHECK(int(y[0]) == 0);
    CHECK(int(y[1]) == 3);
    CHECK(int(y[2]) == 0);          // -0.25 clamps to 0
    uk.mul_scalar(3, a2, 6, y, q);  // (a - 1) * 7 / 8: 1.75, 2.625, -0.875
    CHECK(int(y[0]) == 2);
    CHECK(int(y[1]) == 3);
    CHECK(int(y[2]) == 0);
  }
  {
    // x: scale 1 zp 0 -> y: scale 2 zp 3, two rows of 3 with strides 4 and 5.
    const QRescaleParams p = qs8_rescale_params({1.0f, 0}, {2.0f, 3});
    const int8_t x[] = {5, 7, -3, 99, 1, -1, 127, 99};
    int8_t y[10];
    std::fill(y, y + 10, kCanary);
    uk.rescale(2, 3, x, 4, y, 5, p);
    const int expect[] = {5, 7, 1, kCanary, kCanary, 3, 3, 67, kCanary, kCanary};
    for (int i = 0; i < 10; ++i) CHECK(int(y[i]) == expect[i]);  // 2.5->2, 3.5->4, -1.5->-2, .5->0, 63.5->64
  }
}

TEST_CASE("elementwise ref: concatenation copies matching inputs and rescales the others",
          "[kernels][elementwise]") {
  const int8_t a[] = {1, 2, 3, 4};  // 2 rows x 2, same quantisation as y
  const int8_t b[] = {10, 11};      // 2 rows x 1, scale 1 zp 0 -> y scale 0.5 zp -1
  const QConcatInput in[] = {{a, 2, {0.5f, -1}}, {b, 1, {1.0f, 0}}};
  int8_t y[6];
  qs8_concat_channels(qs8_elementwise_ref, 2, 2, in, y, {0.5f, -1});
  const int expect[] = {1, 2, 19, 3, 4, 21};
  for (int i = 0; i < 6; ++i) CHECK(int(y[i]) == expect[i]);
}

TEST_CASE("elementwise ref: hand-computed lookup tables", "[kernels][elementwise]") {
  int8_t table[256];
  // relu6 with x scale 0.5 zp 0 and y scale 0.5 zp -128: y = clamp(x, 0, 12) - 128.
  qs8_lut_relu6({0.5f, 0}, {0.5f, -128}, table);
  CHECK(int(table[static_cast<uint8_t>(-3)]) == -128);
  CHECK(int(table[5]) == -123);
  CHECK(int(table[20]) == -116);
  CHECK(int(table[127]) == -116);
  // leaky relu, alpha 0.25, unit scales: -6 -> -1.5 -> -2, -10 -> -2.5 -> -2, -14 -> -3.5 -> -4.
  qs8_lut_leaky_relu({1.0f, 0}, {1.0f, 0}, 0.25f, table);
  CHECK(int(table[static_cast<uint8_t>(-6)]) == -2);
  CHECK(int(table[static_cast<uint8_t>(-10)]) == -2);
  CHECK(int(table[static_cast<uint8_t>(-14)]) == -4);
  CHECK(int(table[100]) == 100);
  // hard-swish at x = 1 (scale 0.25, q = 4): 1 * 4 / 6 = 0.6667 / (1/64) = 42.67 -> 43.
  qs8_lut_hardswish({0.25f, 0}, {1.0f / 64, 0}, table);
  CHECK(int(table[4]) == 43);
  CHECK(int(table[static_cast<uint8_t>(-16)]) == 0);  // x = -4
  // sigmoid(0) = 0.5 -> 128 with y scale 1/256 zp -128 -> 0; large x saturates at 127.
  qs8_lut_sigmoid({0.1f, 0}, {1.0f / 256, -128}, table);
  CHECK(int(table[0]) == 0);
  CHECK(int(table[127]) == 127);
  CHECK(int(table[128]) == -128);  // x = -12.8: 2.8e-6 * 256 rounds to 0
  // A custom function, clamped: y = 2x with a clamp to [-10, 10].
  qs8_lut_build(
      {1.0f, 0}, {1.0f, 0}, [](float v) { return 2 * v; }, table, -10, 10);
  CHECK(int(table[3]) == 6);
  CHECK(int(table[7]) == 10);
  CHECK(int(table[static_cast<uint8_t>(-100)]) == -10);
  // Applying a table: y[i] = table[uint8(x[i])].
  for (int i = 0; i < 256; ++i) table[i] = static_cast<int8_t>(255 - i);
  const int8_t x[] = {0, 1, -1, -128, 127};
  int8_t y[5];
  x8_lut_ref.apply(5, x, y, table);
  const int expect[] = {-1, -2, 0, 127, -128};  // 255-0, 254, 255-255, 255-128, 255-127 as int8
  for (int i = 0; i < 5; ++i) CHECK(int(y[i]) == expect[i]);
}

TEST_CASE("elementwise ref: hand-computed pooling", "[kernels][elementwise]") {
  const QPoolUkernel& uk = qs8_pool_ref;
  {
    // 3x3, 1 channel, max over 2x2 windows stride 1.
    const int8_t x[] = {1, 5, -3, 4, 2, 9, -7, 0, 6};
    QPoolShape s;
    s.in_h = s.in_w = 3, s.kernel_h = s.kernel_w = 2, s.out_h = s.out_w = 2;
    int8_t y[4];
    uk.maxpool(s, x, y, -128, 127);
    const int expect[] = {5, 9, 4, 9};
    for (int i = 0; i < 4; ++i) CHECK(int(y[i]) == expect[i]);
    uk.maxpool(s, x, y, 0, 6);  // clamped
    const int clamped[] = {5, 6, 4, 6};
    for (int i = 0; i < 4; ++i) CHECK(int(y[i]) == clamped[i]);
    // Kernel 3, stride 2, padding 1: windows rows/cols {0,1} and {1,2}.
    s.kernel_h = s.kernel_w = 3, s.stride_h = s.stride_w = 2, s.pad_top = s.pad_left = 1;
    uk.maxpool(s, x, y, -128, 127);
    const int padded[] = {5, 9, 4, 9};
    for (int i = 0; i < 4; ++i) CHECK(int(y[i]) == padded[i]);
  }
  {
    // 2x2, 2 channels (channel 1 = 10 * channel 0), 2x2 windows, stride 1, padding 1 -> 3x3.
    const int8_t x[] = {1, 10, 2, 20, 3, 30, 5, 50};
    QPoolShape s;
    s.in_h = s.in_w = 2, s.channels = 2, s.kernel_h = s.kernel_w = 2, s.pad_top = s.pad_left = 1;
    s.out_h = s.out_w = qs8_pool_out_size(2, 2, 1, 1, 1);
    REQUIRE(s.out_h == 3);
    int8_t y[18];
    uk.avgpool(s, x, y, qs8_avgpool_params({1.0f, 0}, {1.0f, 0}, false));
    // Channel 0: corners 1, 2, 3, 5; edges (1+2)/2 = 1.5 -> 2, (1+3)/2 = 2, (2+5)/2 = 3.5 -> 4,
    // (3+5)/2 = 4; centre 11/4 = 2.75 -> 3. Channel 1: 10x, 27.5 -> 28 in the centre.
    const int c0[] = {1, 2, 2, 2, 3, 4, 3, 4, 5};
    const int c1[] = {10, 15, 20, 20, 28, 35, 30, 40, 50};
    for (int i = 0; i < 9; ++i) {
      CHECK(int(y[2 * i]) == c0[i]);
      CHECK(int(y[2 * i + 1]) == c1[i]);
    }
    // count_include_pad: every window counts 4: 0.25 -> 0, 0.75 -> 1, 1.25 -> 1, 2.75 -> 3.
    uk.avgpool(s, x, y, qs8_avgpool_params({1.0f, 0}, {1.0f, 0}, true));
    const int inc0[] = {0, 1, 0, 1, 3, 2, 1, 2, 1};
    for (int i = 0; i < 9; ++i) CHECK(int(y[2 * i]) == inc0[i]);
    // Zero points: x zp 1 (the real values drop by one), y scale 0.5 zp -2: centre (11 - 4) / 4 * 2 - 2.
    uk.avgpool(s, x, y, qs8_avgpool_params({1.0f, 1}, {0.5f, -2}, false));
    CHECK(int(y[8]) == 2);  // 1.75 * 2 = 3.5 -> 4, - 2
  }
  {
    // Global average: 4 pixels of 1 channel {1, 2, 3, 6}, x zp 1 -> acc 8; scale 0.5 / 4 -> 1, y zp 2.
    const int8_t x[] = {1, 2, 3, 6};
    int8_t y[1];
    uk.global_avgpool(1, 4, 1, x, y, qs8_avgpool_params({1.0f, 1}, {2.0f, 2}, false));
    CHECK(int(y[0]) == 3);
  }
}

TEST_CASE("elementwise ref: add, mul and rescale agree with double precision", "[kernels][elementwise]") {
  Rng rng(11);
  const QElementwiseUkernel& uk = qs8_elementwise_ref;
  size_t total = 0, exact = 0;
  for (int iter = 0; iter < 200; ++iter) {
    const QuantParams qa = random_quant(rng), qb = random_quant(rng), qy = random_quant(rng);
    int8_t min, max;
    random_clamp(rng, &min, &max);
    const size_t n = rng.uniform(1, 200);
    const std::vector<int8_t> a = random_bytes(rng, n), b = random_bytes(rng, n);
    std::vector<int8_t> ya(n), ym(n), yr(n);
    uk.add(1, n, a.data(), b.data(), n, ya.data(), qs8_add_params(qa, qb, qy, min, max));
    uk.mul(1, n, a.data(), b.data(), n, ym.data(), qs8_mul_params(qa, qb, qy, min, max));
    uk.rescale(1, n, a.data(), n, yr.data(), n, qs8_rescale_params(qa, qy, min, max));
    for (size_t i = 0; i < n; ++i) {
      const double ra = double(qa.scale) * (a[i] - qa.zero_point),
                   rb = double(qb.scale) * (b[i] - qb.zero_point);
      const long add = requant_double((ra + rb) / qy.scale, qy.zero_point, min, max);
      const long mul = requant_double(ra * rb / qy.scale, qy.zero_point, min, max);
      const long resc = requant_double(ra / qy.scale, qy.zero_point, min, max);
      INFO("a=" << int(a[i]) << " b=" << int(b[i]) << " qa=" << qa.scale << "," << qa.zero_point
                << " qb=" << qb.scale << "," << qb.zero_point << " qy=" << qy.scale << "," << qy.zero_point);
      REQUIRE(std::abs(ya[i] - add) <= 1);
      REQUIRE(std::abs(ym[i] - mul) <= 1);
      REQUIRE(std::abs(yr[i] - resc) <= 1);
      total += 3;
      exact += (ya[i] == add) + (ym[i] == mul) + (yr[i] == resc);
    }
  }
  CHECK(exact > total * 99 / 100);  // off by one only at near-ties
}

TEST_CASE("elementwise ref: lookup tables agree with the functions in double precision",
          "[kernels][elementwise]") {
  Rng rng(12);
  struct Fn {
    const char* name;
    void (*build)(QuantParams, QuantParams, int8_t*);
    double (*f)(double);
  };
  const Fn fns[] = {
      {"hardswish", qs8_lut_hardswish, [](double v) { return v * std::clamp(v + 3, 0.0, 6.0) / 6; }},
      {"hardsigmoid", qs8_lut_hardsigmoid, [](double v) { return std::clamp(v + 3, 0.0, 6.0) / 6; }},
      {"sigmoid", qs8_lut_sigmoid, [](double v) { return 1 / (1 + std::exp(-v)); }},
      {"tanh", qs8_lut_tanh, [](double v) { return std::tanh(v); }},
      {"relu6", qs8_lut_relu6, [](double v) { return std::clamp(v, 0.0, 6.0); }},
      {"gelu", qs8_lut_gelu, [](double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }},
      {"leaky", [](QuantParams x, QuantParams y, int8_t* t) { qs8_lut_leaky_relu(x, y, 0.1f, t); },
       [](double v) { return v < 0 ? 0.1 * v : v; }},
  };
  for (const Fn& fn : fns) {
    for (int iter = 0; iter < 20; ++iter) {
      const QuantParams qx{std::exp2(static_cast<float>(rng.uniform(0, 60)) / 10.0f - 8.0f),
                           random_zero_point(rng)};
      const QuantParams qy{std::exp2(static_cast<float>(rng.uniform(0, 60)) / 10.0f - 8.0f),
                           random_zero_point(rng)};
      int8_t table[256];
      fn.build(qx, qy, table);
      for (int q = -128; q <= 127; ++q) {
        const long want =
            requant_double(fn.f(double(qx.scale) * (q - qx.zero_point)) / qy.scale, qy.zero_point, -128, 127);
        INFO(fn.name << " x=" << q << " qx=" << qx.scale << "," << qx.zero_point << " qy=" << qy.scale << ","
                     << qy.zero_point);
        REQUIRE(std::abs(table[static_cast<uint8_t>(q)] - want) <= 1);
      }
    }
  }
}

namespace {

// Pooling computed from its definition over the padded input, in double.
std::vector<long> pool_direct(const QPoolShape& s, const std::vector<int8_t>& x, bool max, QuantParams qx,
                              QuantParams qy, bool include_pad, int8_t min, int8_t maxv) {
  std::vector<long> out;
  for (size_t b = 0; b < s.batch; ++b)
    for (size_t oh = 0; oh < s.out_h; ++oh)
      for (size_t ow = 0; ow < s.out_w; ++ow)
        for (size_t c = 0; c < s.channels; ++c) {
          long m = -128;
          double sum = 0;
          size_t cells = 0;
          for (size_t kh = 0; kh < s.kernel_h; ++kh)
            for (size_t kw = 0; kw < s.kernel_w; ++kw) {
              const long ih = long(oh * s.stride_h + kh) - long(s.pad_top);
              const long iw = long(ow * s.stride_w + kw) - long(s.pad_left);
              if (ih < 0 || iw < 0 || ih >= long(s.in_h) || iw >= long(s.in_w)) continue;
              const int8_t v = x[((b * s.in_h + ih) * s.in_w + iw) * s.channels + c];
              m = std::max<long>(m, v);
              sum += double(qx.scale) * (v - qx.zero_point);
              ++cells;
            }
          if (max) {
            out.push_back(std::clamp<long>(m, min, maxv));
          } else {
            const double count =
                include_pad ? double(s.kernel_h * s.kernel_w) : double(std::max<size_t>(cells, 1));
            out.push_back(requant_double(sum / count / qy.scale, qy.zero_point, min, maxv));
          }
        }
  return out;
}

QPoolShape random_pool_shape(Rng& rng) {
  QPoolShape s;
  s.batch = rng.uniform(1, 2);
  s.in_h = rng.uniform(1, 9), s.in_w = rng.uniform(1, 9);
  s.channels =
      rng.coin(0.5) ? rng.pick<size_t>({1, 3, 8, 15, 16, 17, 31, 32, 33, 48, 64, 65}) : rng.uniform(1, 80);
  s.kernel_h = rng.uniform(1, std::min<size_t>(s.in_h + 2, 5)),
  s.kernel_w = rng.uniform(1, std::min<size_t>(s.in_w + 2, 5));
  s.stride_h = rng.uniform(1, 3), s.stride_w = rng.uniform(1, 3);
  s.pad_top = rng.uniform(0, s.kernel_h - 1), s.pad_left = rng.uniform(0, s.kernel_w - 1);
  const size_t pad_bottom = rng.uniform(0, s.kernel_h - 1), pad_right = rng.uniform(0, s.kernel_w - 1);
  s.out_h = qs8_pool_out_size(s.in_h, s.kernel_h, s.stride_h, s.pad_top, pad_bottom);
  s.out_w = qs8_pool_out_size(s.in_w, s.kernel_w, s.stride_w, s.pad_left, pad_right);
  if (s.out_h == 0) s.kernel_h = 1, s.pad_top = 0, s.out_h = s.in_h;
  if (s.out_w == 0) s.kernel_w = 1, s.pad_left = 0, s.out_w = s.in_w;
  return s;
}

std::string describe(const QPoolShape& s) {
  std::ostringstream o;
  o << "batch=" << s.batch << " in=" << s.in_h << "x" << s.in_w << "x" << s.channels
    << " kernel=" << s.kernel_h << "x" << s.kernel_w << " stride=" << s.stride_h << "x" << s.stride_w
    << " pad=" << s.pad_top << "," << s.pad_left << " out=" << s.out_h << "x" << s.out_w;
  return o.str();
}

}  // namespace

TEST_CASE("elementwise ref: pooling agrees with its definition", "[kernels][elementwise]") {
  Rng rng(13);
  const QPoolUkernel& uk = qs8_pool_ref;
  size_t total = 0, exact = 0;
  for (int iter = 0; iter < 200; ++iter) {
    const QPoolShape s = random_pool_shape(rng);
    const std::vector<int8_t> x = random_bytes(rng, s.batch * s.in_h * s.in_w * s.channels);
    const QuantParams qx = random_quant(rng), qy = random_quant(rng);
    const bool include_pad = rng.coin(0.5);
    int8_t min, max;
    random_clamp(rng, &min, &max);
    std::vector<int8_t> y(s.batch * s.out_h * s.out_w * s.channels);
    INFO(describe(s));
    uk.maxpool(s, x.data(), y.data(), min, max);
    const std::vector<long> want_max = pool_direct(s, x, true, qx, qy, include_pad, min, max);
    for (size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == want_max[i]);
    uk.avgpool(s, x.data(), y.data(), qs8_avgpool_params(qx, qy, include_pad, min, max));
    const std::vector<long> want_avg = pool_direct(s, x, false, qx, qy, include_pad, min, max);
    for (size_t i = 0; i < y.size(); ++i) {
      REQUIRE(std::abs(y[i] - want_avg[i]) <= 1);
      exact += y[i] == want_avg[i];
    }
    total += y.size();
    // Global pooling = one window over the whole image.
    QPoolShape g = s;
    g.kernel_h = g.in_h, g.kernel_w = g.in_w, g.stride_h = g.stride_w = 1, g.pad_top = g.pad_left = 0;
    g.out_h = g.out_w = 1;
    std::vector<int8_t> yg(s.batch * s.channels), yw(s.batch * s.channels);
    const QAvgPoolParams p = qs8_avgpool_params(qx, qy, false, min, max);
    uk.global_avgpool(s.batch, s.in_h * s.in_w, s.channels, x.data(), yg.data(), p);
    uk.avgpool(g, x.data(), yw.data(), p);
    REQUIRE(yg == yw);
  }
  CHECK(exact > total * 99 / 100);
}

TEST_CASE("elementwise: every variant on this CPU is bit-exact with ref in add, mul and rescale",
          "[kernels][elementwise]") {
  Rng rng(21);
  for (const QElementwiseUkernel* uk : qs8_elementwise_runnable()) {
    if (uk == &qs8_elementwise_ref) continue;
    DYNAMIC_SECTION(uk->name) {
      for (int iter = 0; iter < 1200; ++iter) {
        const QuantParams qa = random_quant(rng), qb = random_quant(rng), qy = random_quant(rng);
        int8_t min, max;
        random_clamp(rng, &min, &max);
        const int kind = static_cast<int>(
            rng.uniform(0, 4));  // 0 same shape, 1 per channel, 2 scalar, 3 rescale, 4 concat
        const bool is_mul = rng.coin(0.5);
        const QBinaryParams p =
            is_mul ? qs8_mul_params(qa, qb, qy, min, max) : qs8_add_params(qa, qb, qy, min, max);
        const QBinaryFn fn = is_mul ? uk->mul : uk->add;
        const QBinaryFn fn_ref = is_mul ? qs8_elementwise_ref.mul : qs8_elementwise_ref.add;
        const QBinaryScalarFn fn_c = is_mul ? uk->mul_scalar : uk->add_scalar;
        const QBinaryScalarFn fn_c_ref =
            is_mul ? qs8_elementwise_ref.mul_scalar : qs8_elementwise_ref.add_scalar;
        std::ostringstream what;
        what << uk->name << " kind=" << kind << " mul=" << is_mul << " qa=" << qa.scale << ","
             << qa.zero_point << " qb=" << qb.scale << "," << qb.zero_point << " qy=" << qy.scale << ","
             << qy.zero_point << " min=" << int(min) << " max=" << int(max);
        if (kind <= 1) {
          const size_t channels = kind == 0 ? random_length(rng) : rng.uniform(1, 100);
          const size_t rows = kind == 0       ? rng.uniform(1, 3)
                              : rng.coin(0.2) ? rng.uniform(13, 300)
                                              : rng.uniform(1, 12);
          const size_t b_stride = kind == 0 ? channels : 0;
          const std::vector<int8_t> a = random_bytes(rng, rows * channels);
          const std::vector<int8_t> b = random_bytes(rng, kind == 0 ? rows * channels : channels);
          Guarded y(rows * channels), want(rows * channels);
          fn(rows, channels, a.data(), b.data(), b_stride, y.data(), p);
          fn_ref(rows, channels, a.data(), b.data(), b_stride, want.data(), p);
          INFO(what.str() << " rows=" << rows << " channels=" << channels);
          REQUIRE(want.canaries_intact());
          REQUIRE(y.bytes == want.bytes);
        } else if (kind == 2) {
          const size_t n = random_length(rng);
          const std::vector<int8_t> a = random_bytes(rng, n);
          const int8_t b = random_bytes(rng, 1)[0];
          Guarded y(n), want(n);
          fn_c(n, a.data(), b, y.data(), p);
          fn_c_ref(n, a.data(), b, want.data(), p);
          INFO(what.str() << " n=" << n << " b=" << int(b));
          REQUIRE(y.bytes == want.bytes);
        } else if (kind == 3) {
          const size_t rows = rng.uniform(1, 5), channels = random_length(rng);
          const size_t x_stride = channels + (rng.coin(0.5) ? rng.uniform(1, 9) : 0);
          const size_t y_stride = channels + (rng.coin(0.5) ? rng.uniform(1, 9) : 0);
          const std::vector<int8_t> x = random_bytes(rng, rows * x_stride);
          const QRescaleParams r = qs8_rescale_params(qa, qy, min, max);
          Guarded y(rows * y_stride), want(rows * y_stride);
          uk->rescale(rows, channels, x.data(), x_stride, y.data(), y_stride, r);
          qs8_elementwise_ref.rescale(rows, channels, x.data(), x_stride, want.data(), y_stride, r);
          INFO(what.str() << " rows=" << rows << " channels=" << channels << " strides=" << x_stride << ","
                          << y_stride);
          REQUIRE(y.bytes == want.bytes);
        } else {
          const size_t rows = rng.uniform(1, 6), count = rng.uniform(1, 4);
          std::vector<std::vector<int8_t>> data(count);
          std::vector<QConcatInput> inputs(count);
          size_t total = 0;
          for (size_t i = 0; i < count; ++i) {
            const size_t channels = rng.coin(0.5) ? rng.uniform(1, 40) : random_length(rng) % 100 + 1;
            data[i] = random_bytes(rng, rows * channels);
            inputs[i] = {data[i].data(), channels, rng.coin(0.3) ? qy : random_quant(rng)};
            total += channels;
          }
          Guarded y(rows * total), want(rows * total);
          qs8_concat_channels(*uk, rows, count, inputs.data(), y.data(), qy);
          qs8_concat_channels(qs8_elementwise_ref, rows, count, inputs.data(), want.data(), qy);
          INFO(what.str() << " concat rows=" << rows << " inputs=" << count);
          REQUIRE(want.canaries_intact());
          REQUIRE(y.bytes == want.bytes);
        }
      }
      // In place: y = a.
      std::vector<int8_t> a = random_bytes(rng, 77), b = random_bytes(rng, 77), want(77);
      const QBinaryParams p = qs8_add_params({0.3f, 5}, {0.07f, -9}, {0.2f, 3});
      qs8_elementwise_ref.add(1, 77, a.data(), b.data(), 77, want.data(), p);
      uk->add(1, 77, a.data(), b.data(), 77, a.data(), p);
      CHECK(a == want);
      std::vector<int8_t> x = random_bytes(rng, 45), x_want(45);
      qs8_elementwise_ref.mul_scalar(45, x.data(), 17, x_want.data(), p);
      uk->mul_scalar(45, x.data(), 17, x.data(), p);
      CHECK(x == x_want);
    }
  }
}

TEST_CASE("elementwise: every table lookup variant on this CPU is bit-exact with ref",
          "[kernels][elementwise]") {
  Rng rng(22);
  for (const QLutUkernel* uk : x8_lut_runnable()) {
    if (uk == &x8_lut_ref) continue;
    DYNAMIC_SECTION(uk->name) {
      for (int iter = 0; iter < 1000; ++iter) {
        const std::vector<int8_t> table = random_bytes(rng, 256);
        const size_t n = rng.coin(0.1) ? 256 : random_length(rng);
        std::vector<int8_t> x = random_bytes(rng, n);
        if (n == 256)
          for (size_t i = 0; i < n; ++i) x[i] = static_cast<int8_t>(i);  // every index
        Guarded y(n), want(n);
        uk->apply(n, x.data(), y.data(), table.data());
        x8_lut_ref.apply(n, x.data(), want.data(), table.data());
        INFO(uk->name << " n=" << n);
        REQUIRE(want.canaries_intact());
        REQUIRE(y.bytes == want.bytes);
        uk->apply(n, x.data(), x.data(), table.data());  // in place
        REQUIRE(std::equal(x.begin(), x.end(), want.data()));
      }
    }
  }
}

TEST_CASE("elementwise: every pooling variant on this CPU is bit-exact with ref", "[kernels][elementwise]") {
  Rng rng(23);
  for (const QPoolUkernel* uk : qs8_pool_runnable()) {
    if (uk == &qs8_pool_ref) continue;
    DYNAMIC_SECTION(uk->name) {
      for (int iter = 0; iter < 1200; ++iter) {
        const QPoolShape s = random_pool_shape(rng);
        const std::vector<int8_t> x = random_bytes(rng, s.batch * s.in_h * s.in_w * s.channels);
        int8_t min, max;
        random_clamp(rng, &min, &max);
        const QAvgPoolParams p =
            qs8_avgpool_params(random_quant(rng), random_quant(rng), rng.coin(0.5), min, max);
        const size_t n = s.batch * s.out_h * s.out_w * s.channels;
        INFO(uk->name << " " << describe(s) << " min=" << int(min) << " max=" << int(max) << " in_zp="
                      << p.in_zero_point << " scale=" << p.scale << " include_pad=" << p.count_include_pad);
        const int kind = static_cast<int>(rng.uniform(0, 2));
        if (kind == 0) {
          Guarded y(n), want(n);
          uk->maxpool(s, x.data(), y.data(), min, max);
          qs8_pool_ref.maxpool(s, x.data(), want.data(), min, max);
          REQUIRE(want.canaries_intact());
          REQUIRE(y.bytes == want.bytes);
        } else if (kind == 1) {
          Guarded y(n), want(n);
          uk->avgpool(s, x.data(), y.data(), p);
          qs8_pool_ref.avgpool(s, x.data(), want.data(), p);
          REQUIRE(want.canaries_intact());
          REQUIRE(y.bytes == want.bytes);
        } else {
          const size_t pixels = s.in_h * s.in_w;
          Guarded y(s.batch * s.channels), want(s.batch * s.channels);
          uk->global_avgpool(s.batch, pixels, s.channels, x.data(), y.data(), p);
          qs8_pool_ref.global_avgpool(s.batch, pixels, s.channels, x.data(), want.data(), p);
          REQUIRE(want.canaries_intact());
          REQUIRE(y.bytes == want.bytes);
        }
      }
    }
  }
}

TEST_CASE("elementwise: empty tensors touch nothing", "[kernels][elementwise]") {
  const QBinaryParams p = qs8_add_params({1.0f, 0}, {1.0f, 0}, {1.0f, 0});
  int8_t table[256] = {};
  for (const QElementwiseUkernel* uk : qs8_elementwise_runnable()) {
    uk->add(0, 5, nullptr, nullptr, 5, nullptr, p);
    uk->add(3, 0, nullptr, nullptr, 0, nullptr, p);
    uk->mul_scalar(0, nullptr, 1, nullptr, p);
    uk->rescale(0, 4, nullptr, 4, nullptr, 4, qs8_rescale_params({1.0f, 0}, {2.0f, 0}));
  }
  for (const QLutUkernel* uk : x8_lut_runnable()) uk->apply(0, nullptr, nullptr, table);
  for (const QPoolUkernel* uk : qs8_pool_runnable()) uk->global_avgpool(1, 0, 0, nullptr, nullptr, {});
}

TEST_CASE("elementwise: the variant tables follow the ISA order", "[kernels][elementwise]") {
  CHECK(&qs8_elementwise_for(Isa::ref) == &qs8_elementwise_ref);
  CHECK(&x8_lut_for(Isa::ref) == &x8_lut_ref);
  CHECK(&qs8_pool_for(Isa::ref) == &qs8_pool_ref);
  for (Isa isa : runnable_isas()) {
    CHECK(isa_implies(isa, qs8_elementwise_for(isa).isa));
    CHECK(isa_implies(isa, x8_lut_for(isa).isa));
    CHECK(isa_implies(isa, qs8_pool_for(isa).isa));
  }
  CHECK(qs8_elementwise_runnable().front() == &qs8_elementwise_ref);
  CHECK(x8_lut_runnable().front() == &x8_lut_ref);
  CHECK(qs8_pool_runnable().front() == &qs8_pool_ref);
#if defined(__x86_64__)
  CHECK(&x8_lut_for(Isa::avx2) == &x8_lut_avx2);
  CHECK(&x8_lut_for(Isa::avx512vnni) == &x8_lut_avx512);
  CHECK(&qs8_pool_for(Isa::avx512vnni) == &qs8_pool_avx2);
#endif
}
