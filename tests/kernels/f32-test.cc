// The fp32 GEMM and convolution family: the reference against hand-computed
// cases and double-precision formulas, and every variant this CPU runs against
// the reference within the family's tolerance.
#include "kernels/f32/f32.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>

#include "tests/kernels/f32_checks.h"
#include "tests/kernels/shapes.h"

using namespace huddle::kernels;
using namespace huddle::test;

namespace {

// --- GEMM ---------------------------------------------------------------

struct GemmProblem {
  size_t m, n, k, a_stride, c_stride;
  F32Clamp clamp;
  std::vector<float> a, w, bias;
};

std::string describe(const GemmProblem& p) {
  std::ostringstream s;
  s << "m=" << p.m << " n=" << p.n << " k=" << p.k << " a_stride=" << p.a_stride << " c_stride=" << p.c_stride
    << " clamp=[" << p.clamp.min << ", " << p.clamp.max << "]";
  return s.str();
}

GemmProblem make_gemm(Rng& rng, size_t m, size_t n, size_t k) {
  GemmProblem p;
  p.m = m, p.n = n, p.k = k;
  p.a_stride = k + (rng.coin(0.3) ? rng.uniform(1, 9) : 0);
  p.c_stride = n + (rng.coin(0.3) ? rng.uniform(1, 9) : 0);
  p.clamp = random_clamp(rng);
  p.a.assign(p.a_stride * m, kNaN);  // the gaps between rows must never be read
  for (size_t i = 0; i < m; ++i)
    for (size_t kk = 0; kk < k; ++kk) p.a[i * p.a_stride + kk] = rng.normal();
  p.w.resize(n * k);
  for (auto& v : p.w) v = rng.normal();
  p.bias.resize(n);
  for (auto& v : p.bias) v = rng.normal();
  return p;
}

std::vector<float> pack(const F32GemmUkernel& uk, const GemmProblem& p) {
  std::vector<float> packed(f32gemm_packed_size(uk, p.n, p.k) / sizeof(float));
  f32gemm_pack(uk, p.n, p.k, p.w.data(), p.bias.data(), packed.data());
  return packed;
}

std::vector<float> run(const F32GemmUkernel& uk, const GemmProblem& p) {
  const std::vector<float> packed = pack(uk, p);
  std::vector<float> c(p.c_stride * p.m + 16, kCanary);
  uk.gemm(p.m, p.n, p.k, p.a.data(), p.a_stride, packed.data(), c.data(), p.c_stride, p.clamp);
  return c;
}

Exact gemm_exact(const GemmProblem& p, size_t i, size_t j) {
  double v = p.bias[j], s = std::abs(double(p.bias[j]));
  for (size_t kk = 0; kk < p.k; ++kk) {
    const double t = double(p.a[i * p.a_stride + kk]) * double(p.w[j * p.k + kk]);
    v += t, s += std::abs(t);
  }
  return {v, s};
}

// What is wrong with c: a cell off `want` by more than the tolerance, or a
// cell outside the m x n ones that is not the canary; "" when nothing.
std::string check_gemm(const GemmProblem& p, const std::vector<float>& c, const std::vector<float>& want) {
  std::ostringstream err;
  for (size_t idx = 0; idx < c.size(); ++idx) {
    const size_t i = idx / p.c_stride, j = idx % p.c_stride;
    if (i < p.m && j < p.n) {
      if (!within_tolerance(c[idx], want[idx], gemm_exact(p, i, j).scale)) {
        err << describe(p) << " at " << i << "," << j << ": " << c[idx] << " vs ref " << want[idx];
        return err.str();
      }
    } else if (!is_canary(c[idx])) {
      err << describe(p) << " wrote outside C at " << idx;
      return err.str();
    }
  }
  return "";
}

// Shapes around the tiles of every variant, plus random ones.
std::vector<std::array<size_t, 3>> gemm_shapes(Rng& rng, size_t count) {
  std::vector<std::array<size_t, 3>> out;
  std::vector<size_t> ms = {1, 2, 3}, ns = {1, 2, 3}, ks = {1, 2, 3, 4, 5, 7, 8, 9, 17};
  for (const F32GemmUkernel* uk : f32gemm_all()) {
    for (size_t d : {size_t{0}, size_t{1}, size_t{2}}) {
      for (size_t t : {uk->mr, 2 * uk->mr}) ms.push_back(t + d - 1);
      for (size_t t : {uk->nr, 2 * uk->nr}) ns.push_back(t + d - 1);
    }
  }
  for (size_t m : ms)
    for (size_t n : ns)
      if (m > 0 && n > 0) out.push_back({m, n, ks[rng.uniform(0, ks.size() - 1)]});
  while (out.size() < count) {
    if (rng.coin(0.03)) {  // large K, small tile counts
      out.push_back({rng.uniform(1, 10), rng.uniform(1, 34), rng.uniform(512, 2500)});
    } else {
      out.push_back({rng.uniform(1, 20), rng.uniform(1, 70), rng.uniform(1, 80)});
    }
  }
  return out;
}

// --- Convolution -----------------------------------------------------------

ConvProblem make_conv(Rng& rng, size_t max_c) {
  ConvProblem p;
  F32ConvShape& s = p.shape;
  do {
    s.batch = rng.coin(0.2) ? 2 : 1;
    s.in_h = rng.uniform(1, 9), s.in_w = rng.uniform(1, 9);
    s.in_c = rng.coin(0.5) ? rng.uniform(1, 9) : rng.uniform(1, max_c);
    s.out_c = rng.uniform(1, 40);
    if (rng.coin(0.15)) {  // the direct GEMM path
      s.kernel_h = s.kernel_w = 1;
      s.stride_h = s.stride_w = 1;
      s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 0;
      s.dilation_h = s.dilation_w = rng.uniform(1, 2);
    } else {
      s.kernel_h = rng.uniform(1, 5), s.kernel_w = rng.uniform(1, 5);
      s.stride_h = rng.uniform(1, 3), s.stride_w = rng.uniform(1, 3);
      s.dilation_h = rng.coin(0.3) ? rng.uniform(2, 3) : 1;
      s.dilation_w = rng.coin(0.3) ? rng.uniform(2, 3) : 1;
      // Paddings up to the kernel span, so whole output rows can read only zeros.
      s.pad_top = rng.uniform(0, s.dilation_h * (s.kernel_h - 1));
      s.pad_bottom = rng.uniform(0, s.dilation_h * (s.kernel_h - 1));
      s.pad_left = rng.uniform(0, s.dilation_w * (s.kernel_w - 1));
      s.pad_right = rng.uniform(0, s.dilation_w * (s.kernel_w - 1));
    }
    s.in_pixel_stride = rng.coin(0.3) ? s.in_c + rng.uniform(1, 5) : 0;
    s.out_pixel_stride = rng.coin(0.3) ? s.out_c + rng.uniform(1, 5) : 0;
  } while (s.out_h() == 0 || s.out_w() == 0);
  fill_random(rng, p, s.out_c * s.k());
  return p;
}

std::vector<float> run(const F32GemmUkernel& uk, const ConvProblem& p) {
  const F32Conv conv(uk, p.shape, p.weights.data(), p.bias.data());
  std::vector<float> out(out_floats(p.shape) + 16, kCanary);
  conv.run(p.input.data(), out.data(), p.clamp);
  return out;
}

// The direct convolution in double, seven loops, for every output channel of one output pixel.
std::vector<Exact> conv_exact(const ConvProblem& p, size_t b, size_t oy, size_t ox) {
  const F32ConvShape& s = p.shape;
  std::vector<Exact> out(s.out_c);
  for (size_t co = 0; co < s.out_c; ++co) {
    double v = p.bias[co], sc = std::abs(double(p.bias[co]));
    for (size_t ky = 0; ky < s.kernel_h; ++ky) {
      for (size_t kx = 0; kx < s.kernel_w; ++kx) {
        const long iy = long(oy * s.stride_h + ky * s.dilation_h) - long(s.pad_top);
        const long ix = long(ox * s.stride_w + kx * s.dilation_w) - long(s.pad_left);
        if (iy < 0 || ix < 0 || iy >= long(s.in_h) || ix >= long(s.in_w)) continue;
        for (size_t ci = 0; ci < s.in_c; ++ci) {
          const double x = p.input[((b * s.in_h + iy) * s.in_w + ix) * s.in_stride() + ci];
          const double t = x * p.weights[((co * s.kernel_h + ky) * s.kernel_w + kx) * s.in_c + ci];
          v += t, sc += std::abs(t);
        }
      }
    }
    out[co] = {v, sc};
  }
  return out;
}

// What is wrong with `out`: an output failing `check(got, exact, index)` or
// a cell around the outputs that is not the canary; "" when nothing.
template <class Check>
std::string check_conv(const ConvProblem& p, const std::vector<float>& out, Check check) {
  const F32ConvShape& s = p.shape;
  std::ostringstream err;
  const size_t oh = s.out_h(), ow = s.out_w();
  for (size_t idx = oh * ow * s.batch * s.out_stride(); idx < out.size(); ++idx) {
    if (!is_canary(out[idx])) {
      err << describe(p) << " wrote past the output at " << idx;
      return err.str();
    }
  }
  for (size_t b = 0; b < s.batch; ++b) {
    for (size_t oy = 0; oy < oh; ++oy) {
      for (size_t ox = 0; ox < ow; ++ox) {
        const size_t base = ((b * oh + oy) * ow + ox) * s.out_stride();
        const std::vector<Exact> want = conv_exact(p, b, oy, ox);
        for (size_t co = 0; co < s.out_stride(); ++co) {
          const bool ok =
              co < s.out_c ? check(out[base + co], want[co], base + co) : is_canary(out[base + co]);
          if (!ok) {
            err << describe(p) << " at b=" << b << " y=" << oy << " x=" << ox << " c=" << co << ": "
                << out[base + co] << (co < s.out_c ? "" : " (outside the channels)");
            return err.str();
          }
        }
      }
    }
  }
  return "";
}

}  // namespace

TEST_CASE("f32 gemm ref: hand-computed cases", "[kernels][f32]") {
  const F32GemmUkernel& uk = f32gemm_ref;
  // A = [[1 2] [3 4]], W = [[1 0] [2 -1] [0.5 0.5]], bias = [1 0 -1].
  const float a[] = {1, 2, 3, 4}, w[] = {1, 0, 2, -1, 0.5f, 0.5f}, bias[] = {1, 0, -1};
  std::vector<float> packed(f32gemm_packed_size(uk, 3, 2) / sizeof(float));
  f32gemm_pack(uk, 3, 2, w, bias, packed.data());
  float c[6];
  uk.gemm(2, 3, 2, a, 2, packed.data(), c, 3, kF32NoClamp);
  const float want[] = {2, 0, 0.5f, 4, 2, 2.5f};
  for (size_t i = 0; i < 6; ++i) CHECK(c[i] == want[i]);
  // A clamp to [1, 2.2]; rows of A 3 floats apart (the third one unread), C 4 apart.
  const float a3[] = {1, 2, kNaN, 3, 4, kNaN};
  float c4[8];
  std::fill(c4, c4 + 8, kCanary);
  uk.gemm(2, 3, 2, a3, 3, packed.data(), c4, 4, F32Clamp{1.0f, 2.2f});
  const float want4[] = {2, 1, 1, kCanary, 2.2f, 2, 2.2f, kCanary};
  for (size_t i = 0; i < 8; ++i) CHECK(c4[i] == want4[i]);
  // ReLU6 and ReLU; no bias.
  const float big[] = {10, -10};
  f32gemm_pack(uk, 3, 2, w, nullptr, packed.data());
  uk.gemm(1, 3, 2, big, 2, packed.data(), c, 3, kF32Relu6);
  CHECK(c[0] == 6);  // 10
  CHECK(c[1] == 6);  // 30
  CHECK(c[2] == 0);  // 0
  uk.gemm(1, 3, 2, big, 2, packed.data(), c, 3, kF32Relu);
  CHECK(c[1] == 30);
  CHECK(uk.gemm == f32gemm_for(Isa::ref).gemm);
}

TEST_CASE("f32 conv ref: hand-computed cases", "[kernels][f32]") {
  // 3x3 image 1..9 (one channel), 3x3 kernel of ones.
  const float in[] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, bias[] = {0.5f};
  F32ConvShape s;
  s.in_h = s.in_w = 3, s.kernel_h = s.kernel_w = 3;
  s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 1;
  float out[9];
  F32Conv(f32gemm_ref, s, ones, nullptr).run(in, out);
  const float same[] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
  for (size_t i = 0; i < 9; ++i) CHECK(out[i] == same[i]);
  s.stride_h = s.stride_w = 2;  // 2x2 output
  F32Conv(f32gemm_ref, s, ones, bias).run(in, out, kF32Relu6);
  CHECK(s.out_h() == 2);
  const float strided[] = {6, 6, 6, 6};
  for (size_t i = 0; i < 4; ++i) CHECK(out[i] == strided[i]);
  F32Conv(f32gemm_ref, s, ones, bias).run(in, out);
  const float strided_raw[] = {12.5f, 16.5f, 24.5f, 28.5f};
  for (size_t i = 0; i < 4; ++i) CHECK(out[i] == strided_raw[i]);
  // Dilation 2 on a 5x5 image 0..24, no padding: one output, the sum of the 9 taps 2 apart.
  float in5[25];
  for (size_t i = 0; i < 25; ++i) in5[i] = float(i);
  F32ConvShape d;
  d.in_h = d.in_w = 5, d.kernel_h = d.kernel_w = 3, d.dilation_h = d.dilation_w = 2;
  F32Conv(f32gemm_ref, d, ones, nullptr).run(in5, out);
  CHECK(d.out_h() == 1);
  CHECK(out[0] == 108);
  // 1x1: two input channels (pixel stride 3), two output channels (pixel stride 3), via the GEMM path.
  F32ConvShape g;
  g.in_h = 1, g.in_w = 2, g.in_c = 2, g.out_c = 2, g.in_pixel_stride = 3, g.out_pixel_stride = 3;
  CHECK(g.is_gemm());
  const float in2[] = {1, 2, kNaN, 3, 4, kNaN}, w2[] = {1, 1, 1, -1}, b2[] = {0, 10};
  float out2[6];
  std::fill(out2, out2 + 6, kCanary);
  F32Conv(f32gemm_ref, g, w2, b2).run(in2, out2);
  const float want2[] = {3, 9, kCanary, 7, 9, kCanary};
  for (size_t i = 0; i < 6; ++i) CHECK(out2[i] == want2[i]);
}

TEST_CASE("f32 conv: bad shapes are refused", "[kernels][f32]") {
  const float w[64] = {};
  F32ConvShape s;
  s.in_h = s.in_w = 2, s.kernel_h = s.kernel_w = 3;
  CHECK_THROWS_WITH(F32Conv(f32gemm_ref, s, w, nullptr), Catch::Contains("smaller than the dilated kernel"));
  s.pad_top = s.pad_bottom = s.pad_left = s.pad_right = 1;
  CHECK_NOTHROW(F32Conv(f32gemm_ref, s, w, nullptr));
  s.stride_w = 0;
  CHECK_THROWS_AS(F32Conv(f32gemm_ref, s, w, nullptr), std::invalid_argument);
  s.stride_w = 1, s.in_c = 4, s.in_pixel_stride = 3;
  CHECK_THROWS_WITH(F32Conv(f32gemm_ref, s, w, nullptr), Catch::Contains("input pixel stride"));
}

TEST_CASE("f32 gemm ref: agrees with the double-precision formula", "[kernels][f32]") {
  Rng rng(11);
  for (const auto& [m, n, k] : gemm_shapes(rng, 300)) {
    const GemmProblem p = make_gemm(rng, m, n, k);
    const std::vector<float> c = run(f32gemm_ref, p);
    for (size_t i = 0; i < m; ++i) {
      for (size_t j = 0; j < n; ++j) {
        const Exact e = gemm_exact(p, i, j);
        const float got = c[i * p.c_stride + j];
        INFO(describe(p) << " at " << i << "," << j << ": " << got << " vs " << e.value);
        REQUIRE(within_rounding(got, clamp(e.value, p.clamp), e.scale, k));
      }
    }
  }
}

TEST_CASE("f32 conv ref: agrees with a direct convolution in double", "[kernels][f32]") {
  Rng rng(12);
  for (int t = 0; t < 300; ++t) {
    const ConvProblem p = make_conv(rng, 24);
    const std::vector<float> out = run(f32gemm_ref, p);
    const std::string err = check_conv(p, out, [&](float got, const Exact& e, size_t) {
      return within_rounding(got, clamp(e.value, p.clamp), e.scale, p.shape.k());
    });
    INFO(err);
    REQUIRE(err.empty());
  }
}

TEST_CASE("f32 gemm: every variant on this CPU is within tolerance of ref", "[kernels][f32]") {
  Rng rng(13);
  const auto cases = gemm_shapes(rng, 1000);
  for (const F32GemmUkernel* uk : f32gemm_runnable()) {
    if (uk == &f32gemm_ref) continue;
    DYNAMIC_SECTION(uk->name) {
      for (const auto& [m, n, k] : cases) {
        const GemmProblem p = make_gemm(rng, m, n, k);
        const std::string err = check_gemm(p, run(*uk, p), run(f32gemm_ref, p));
        INFO(uk->name << " " << err);
        REQUIRE(err.empty());
      }
    }
  }
}

TEST_CASE("f32 conv: every variant on this CPU is within tolerance of ref", "[kernels][f32]") {
  Rng rng(14);
  for (const F32GemmUkernel* uk : f32gemm_runnable()) {
    if (uk == &f32gemm_ref) continue;
    DYNAMIC_SECTION(uk->name) {
      for (int t = 0; t < 1000; ++t) {
        const ConvProblem p = make_conv(rng, 40);
        const std::vector<float> want = run(f32gemm_ref, p);
        const std::string err = check_conv(p, run(*uk, p), [&](float got, const Exact& e, size_t idx) {
          return within_tolerance(got, want[idx], e.scale);
        });
        INFO(uk->name << " " << err);
        REQUIRE(err.empty());
      }
    }
  }
}

TEST_CASE("f32 gemm: a column range of the packed weights runs on its own", "[kernels][f32]") {
  Rng rng(15);
  for (const F32GemmUkernel* uk : f32gemm_runnable()) {
    const GemmProblem p = make_gemm(rng, 7, 5 * uk->nr + 3, 77);
    const std::vector<float> packed = pack(*uk, p);
    std::vector<float> whole(p.c_stride * p.m), split(p.c_stride * p.m);
    uk->gemm(p.m, p.n, p.k, p.a.data(), p.a_stride, packed.data(), whole.data(), p.c_stride, p.clamp);
    const size_t n0 = 2 * uk->nr;
    uk->gemm(p.m, n0, p.k, p.a.data(), p.a_stride, packed.data(), split.data(), p.c_stride, p.clamp);
    uk->gemm(p.m, p.n - n0, p.k, p.a.data(), p.a_stride, f32gemm_packed_at(*uk, packed.data(), p.k, n0),
             split.data() + n0, p.c_stride, p.clamp);
    INFO(uk->name);
    CHECK(std::memcmp(whole.data(), split.data(), whole.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("f32 conv: channel ranges split at the granule give the same bits as the whole", "[kernels][f32]") {
  Rng rng(16);
  for (const F32GemmUkernel* uk : f32gemm_runnable()) {
    for (int t = 0; t < 100; ++t) {
      const ConvProblem p = make_conv(rng, 70);
      const F32Conv conv(*uk, p.shape, p.weights.data(), p.bias.data());
      const std::vector<float> whole = run(*uk, p);
      std::vector<float> split(whole.size(), kCanary);
      const size_t g = conv.column_granule(), n = p.shape.out_c;
      // Ranges of one, two and the rest granules, in an order other than left to right.
      const size_t a = std::min(n, g), b = std::min(n, 3 * g);
      conv.run_columns(b, n, p.input.data(), split.data(), p.clamp);
      conv.run_columns(0, a, p.input.data(), split.data(), p.clamp);
      conv.run_columns(a, b, p.input.data(), split.data(), p.clamp);
      INFO(uk->name << " " << describe(p));
      REQUIRE(std::memcmp(whole.data(), split.data(), whole.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("f32 gemm: the variant table", "[kernels][f32]") {
  CHECK(f32gemm_all().front() == &f32gemm_ref);
  CHECK(f32gemm_runnable().front() == &f32gemm_ref);
  for (Isa isa : runnable_isas()) CHECK(isa_implies(isa, f32gemm_for(isa).isa));
  CHECK(isa_runnable(f32gemm().isa));
}

TEST_CASE("f32 gemm: packing W transposed gives the same buffer", "[kernels][f32]") {
  Rng rng(16);
  for (const F32GemmUkernel* uk : f32gemm_all()) {
    for (int t = 0; t < 20; ++t) {
      const size_t n = rng.uniform(1, 70), k = rng.uniform(1, 40), stride = n + rng.uniform(0, 3);
      std::vector<float> w(n * k), wt(k * stride, kNaN), bias(n);
      for (size_t j = 0; j < n; ++j)
        for (size_t kk = 0; kk < k; ++kk) w[j * k + kk] = wt[kk * stride + j] = rng.normal();
      for (auto& v : bias) v = rng.normal();
      const bool with_bias = rng.coin(0.5);
      std::vector<float> a(f32gemm_packed_size(*uk, n, k) / sizeof(float), 1.0f), b(a.size(), 2.0f);
      f32gemm_pack(*uk, n, k, w.data(), with_bias ? bias.data() : nullptr, a.data());
      f32gemm_pack_transposed(*uk, n, k, wt.data(), stride, with_bias ? bias.data() : nullptr, b.data());
      INFO(uk->name << " n=" << n << " k=" << k << " stride=" << stride);
      REQUIRE(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
    }
  }
}

TEST_CASE("f32 gemm: training gradients through transposed packing", "[kernels][f32]") {
  // C = A * W^T with A m x k, W n x k; given dC (m x n): dA = dC * W, dW = dC^T * A.
  Rng rng(17);
  for (const F32GemmUkernel* uk : f32gemm_runnable()) {
    for (int t = 0; t < 30; ++t) {
      const size_t m = rng.uniform(1, 20), n = rng.uniform(1, 40), k = rng.uniform(1, 50);
      std::vector<float> a(m * k), w(n * k), dc(m * n), dct(n * m);
      for (auto& v : a) v = rng.normal();
      for (auto& v : w) v = rng.normal();
      for (size_t i = 0; i < m; ++i)
        for (size_t j = 0; j < n; ++j) dc[i * n + j] = dct[j * m + i] = rng.normal();
      std::vector<float> packed(f32gemm_packed_size(*uk, k, std::max(n, m)) / sizeof(float));
      std::vector<float> da(m * k), dw(n * k);
      f32gemm_pack_transposed(*uk, k, n, w.data(), k, nullptr, packed.data());
      uk->gemm(m, k, n, dc.data(), n, packed.data(), da.data(), k, kF32NoClamp);
      f32gemm_pack_transposed(*uk, k, m, a.data(), k, nullptr, packed.data());
      uk->gemm(n, k, m, dct.data(), m, packed.data(), dw.data(), k, kF32NoClamp);
      INFO(uk->name << " m=" << m << " n=" << n << " k=" << k);
      for (size_t i = 0; i < m; ++i) {
        for (size_t kk = 0; kk < k; ++kk) {
          double v = 0, s = 0;
          for (size_t j = 0; j < n; ++j) {
            const double p = double(dc[i * n + j]) * w[j * k + kk];
            v += p, s += std::abs(p);
          }
          REQUIRE(within_rounding(da[i * k + kk], v, s, n));
        }
      }
      for (size_t j = 0; j < n; ++j) {
        for (size_t kk = 0; kk < k; ++kk) {
          double v = 0, s = 0;
          for (size_t i = 0; i < m; ++i) {
            const double p = double(dc[i * n + j]) * a[i * k + kk];
            v += p, s += std::abs(p);
          }
          REQUIRE(within_rounding(dw[j * k + kk], v, s, m));
        }
      }
    }
  }
}

TEST_CASE("f32 conv: any split of the output pixels gives the bits of a whole run", "[kernels][f32]") {
  Rng rng(15);
  for (const F32GemmUkernel* uk : f32gemm_runnable()) {
    DYNAMIC_SECTION(uk->name) {
      for (int t = 0; t < 150; ++t) {
        const ConvProblem p = make_conv(rng, 24);
        const F32Conv conv(*uk, p.shape, p.weights.data(), p.bias.data());
        const size_t pixels = p.shape.batch * p.shape.out_h() * p.shape.out_w();
        std::vector<float> whole(out_floats(p.shape) + 16, kCanary), split = whole;
        conv.run(p.input.data(), whole.data(), p.clamp);
        std::vector<size_t> cuts = {0, pixels};
        for (size_t i = 0, n = rng.uniform(1, 3); i < n; ++i) cuts.push_back(rng.uniform(0, pixels));
        std::sort(cuts.begin(), cuts.end());
        for (size_t i = 0; i + 1 < cuts.size(); ++i)
          conv.run_pixels(cuts[i], cuts[i + 1], p.input.data(), split.data(), p.clamp);
        INFO(describe(p));
        REQUIRE(std::memcmp(whole.data(), split.data(), whole.size() * sizeof(float)) == 0);
      }
    }
  }
}
