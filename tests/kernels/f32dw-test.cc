// The fp32 depthwise convolution family: the reference against hand-computed
// cases and a direct convolution in double, every variant this CPU runs
// against the reference within the fp32 family's tolerance, and row ranges
// giving the same bits as a whole run.
#include "kernels/f32dw/f32dw.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/kernels/f32_checks.h"
#include "tests/kernels/shapes.h"

using namespace huddle::kernels;
using namespace huddle::test;

namespace {

using Problem = ConvProblem;

// A random problem of `channels` channels; mostly 3x3 and 5x5 with strides 1
// and 2 (the unrolled paths), sometimes any kernel, stride and dilation.
Problem make_problem(Rng& rng, size_t channels) {
  Problem p;
  F32ConvShape& s = p.shape;
  do {
    s = F32ConvShape{};
    s.batch = rng.coin(0.2) ? 2 : 1;
    s.in_c = s.out_c = channels;
    const size_t kind = rng.uniform(0, 9);
    if (kind < 4) {
      s.kernel_h = s.kernel_w = 3;
    } else if (kind < 7) {
      s.kernel_h = s.kernel_w = 5;
    } else {
      s.kernel_h = rng.uniform(1, 7), s.kernel_w = rng.uniform(1, 7);
    }
    s.in_h = rng.uniform(1, 13), s.in_w = rng.uniform(1, 19);
    s.stride_h = s.stride_w = rng.uniform(1, 2);
    if (rng.coin(0.15)) s.stride_h = rng.uniform(1, 3), s.stride_w = rng.uniform(1, 3);
    if (rng.coin(0.15)) s.dilation_h = rng.uniform(1, 3), s.dilation_w = rng.uniform(1, 3);
    const size_t span_h = s.dilation_h * (s.kernel_h - 1), span_w = s.dilation_w * (s.kernel_w - 1);
    if (rng.coin(0.5)) {  // "same" padding, as the models use
      s.pad_top = s.pad_bottom = span_h / 2, s.pad_left = s.pad_right = span_w / 2;
    } else {  // up to the span, so whole rows and columns can read only padding
      s.pad_top = rng.uniform(0, span_h), s.pad_bottom = rng.uniform(0, span_h);
      s.pad_left = rng.uniform(0, span_w), s.pad_right = rng.uniform(0, span_w);
    }
    s.in_pixel_stride = rng.coin(0.3) ? channels + rng.uniform(1, 5) : 0;
    s.out_pixel_stride = rng.coin(0.3) ? channels + rng.uniform(1, 5) : 0;
  } while (s.out_h() == 0 || s.out_w() == 0);
  fill_random(rng, p, s.kernel_h * s.kernel_w * channels);
  return p;
}

std::vector<float> pack(const Problem& p) {
  f32dw_check(p.shape);
  std::vector<float> packed(f32dw_packed_size(p.shape) / sizeof(float));
  f32dw_pack(p.shape, p.weights.data(), p.bias.data(), packed.data());
  return packed;
}

// The whole batch, as rows [0, n) in chunks starting at each of `cuts`.
std::vector<float> run(const F32DwUkernel& uk, const Problem& p, std::vector<size_t> cuts = {}) {
  const std::vector<float> packed = pack(p);
  std::vector<float> out(out_floats(p.shape) + 16, kCanary);
  const size_t rows = p.shape.batch * p.shape.out_h();
  cuts.insert(cuts.begin(), 0);
  cuts.push_back(rows);
  for (size_t i = 0; i + 1 < cuts.size(); ++i)
    uk.run(p.shape, cuts[i], cuts[i + 1], p.input.data(), packed.data(), out.data(), p.clamp);
  return out;
}

Exact exact(const Problem& p, size_t b, size_t oy, size_t ox, size_t c) {
  const F32ConvShape& s = p.shape;
  double v = p.bias[c], sc = std::abs(double(p.bias[c]));
  for (size_t ky = 0; ky < s.kernel_h; ++ky) {
    for (size_t kx = 0; kx < s.kernel_w; ++kx) {
      const long iy = long(oy * s.stride_h + ky * s.dilation_h) - long(s.pad_top);
      const long ix = long(ox * s.stride_w + kx * s.dilation_w) - long(s.pad_left);
      if (iy < 0 || ix < 0 || iy >= long(s.in_h) || ix >= long(s.in_w)) continue;
      const double t = double(p.input[((b * s.in_h + iy) * s.in_w + ix) * s.in_stride() + c]) *
                       double(p.weights[(ky * s.kernel_w + kx) * s.in_c + c]);
      v += t, sc += std::abs(t);
    }
  }
  return {v, sc};
}

// What is wrong with `out`: an output failing check(got, exact, index), or a
// float around the outputs that is not the canary; "" when nothing.
template <class Check>
std::string check(const Problem& p, const std::vector<float>& out, Check ok) {
  const F32ConvShape& s = p.shape;
  std::ostringstream err;
  const size_t oh = s.out_h(), ow = s.out_w();
  for (size_t idx = out_floats(s); idx < out.size(); ++idx) {
    if (!is_canary(out[idx])) {
      err << describe(p) << " wrote past the output at " << idx;
      return err.str();
    }
  }
  for (size_t b = 0; b < s.batch; ++b) {
    for (size_t oy = 0; oy < oh; ++oy) {
      for (size_t ox = 0; ox < ow; ++ox) {
        const size_t base = ((b * oh + oy) * ow + ox) * s.out_stride();
        for (size_t c = 0; c < s.out_stride(); ++c) {
          const bool good =
              c < s.in_c ? ok(out[base + c], exact(p, b, oy, ox, c), base + c) : is_canary(out[base + c]);
          if (!good) {
            err << describe(p) << " at b=" << b << " y=" << oy << " x=" << ox << " c=" << c << ": "
                << out[base + c] << (c < s.in_c ? "" : " (outside the channels)");
            return err.str();
          }
        }
      }
    }
  }
  return "";
}

// Channels 1..70 (every remainder of every vector width), then random counts.
std::vector<size_t> channel_counts(Rng& rng, size_t count) {
  std::vector<size_t> out;
  for (size_t c = 1; c <= 70; ++c) out.push_back(c);
  while (out.size() < count) out.push_back(rng.coin(0.5) ? rng.uniform(1, 40) : rng.uniform(1, 150));
  return out;
}

}  // namespace

TEST_CASE("f32 depthwise ref: hand-computed cases", "[kernels][f32dw]") {
  // Two channels: 1..9 and 10 * (1..9); 3x3 kernels of ones and of twos.
  float in[18], w[18];
  for (size_t i = 0; i < 9; ++i) {
    in[2 * i] = float(i + 1), in[2 * i + 1] = 10.0f * float(i + 1);
    w[2 * i] = 1, w[2 * i + 1] = 2;
  }
  F32ConvShape s;
  s.in_h = s.in_w = 3, s.in_c = s.out_c = 2, s.kernel_h = s.kernel_w = 3;
  s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = 1;
  std::vector<float> packed(f32dw_packed_size(s) / sizeof(float));
  const float bias[] = {0.5f, -1};
  f32dw_pack(s, w, bias, packed.data());
  float out[18];
  f32dw_ref.run(s, 0, 3, in, packed.data(), out, kF32NoClamp);
  const float same[] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
  for (size_t i = 0; i < 9; ++i) {
    CHECK(out[2 * i] == same[i] + 0.5f);
    CHECK(out[2 * i + 1] == 20 * same[i] - 1);
  }
  f32dw_ref.run(s, 1, 2, in, packed.data(), out, kF32Relu6);  // only the middle row
  CHECK(out[6] == 6);
  CHECK(out[0] == 12.5f);
  // Stride 2, dilation 2 on a 5x5 image 0..24 (one channel), no padding: one output.
  float in5[25];
  for (size_t i = 0; i < 25; ++i) in5[i] = float(i);
  F32ConvShape d;
  d.in_h = d.in_w = 5, d.kernel_h = d.kernel_w = 3, d.dilation_h = d.dilation_w = 2, d.stride_h = 2;
  CHECK(d.out_h() == 1);
  std::vector<float> p5(f32dw_packed_size(d) / sizeof(float));
  const float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  f32dw_pack(d, ones, nullptr, p5.data());
  f32dw_ref.run(d, 0, 1, in5, p5.data(), out, kF32NoClamp);
  CHECK(out[0] == 108);
  CHECK(f32dw_for(Isa::ref).run == f32dw_ref.run);
}

TEST_CASE("f32 depthwise: bad shapes are refused", "[kernels][f32dw]") {
  F32ConvShape s;
  s.in_h = s.in_w = 2, s.in_c = s.out_c = 4, s.kernel_h = s.kernel_w = 3;
  CHECK_THROWS_WITH(f32dw_check(s), Catch::Contains("smaller than the dilated kernel"));
  s.pad_top = s.pad_bottom = s.pad_left = s.pad_right = 1;
  CHECK_NOTHROW(f32dw_check(s));
  s.out_c = 8;
  CHECK_THROWS_WITH(f32dw_check(s), Catch::Contains("channels differ"));
  s.out_c = 4, s.stride_h = 0;
  CHECK_THROWS_AS(f32dw_check(s), std::invalid_argument);
  s.stride_h = 1, s.in_pixel_stride = 3;
  CHECK_THROWS_WITH(f32dw_check(s), Catch::Contains("pixel stride"));
}

TEST_CASE("f32 depthwise ref: agrees with a direct convolution in double", "[kernels][f32dw]") {
  Rng rng(21);
  for (size_t c : channel_counts(rng, 150)) {
    const Problem p = make_problem(rng, c);
    const size_t taps = p.shape.kernel_h * p.shape.kernel_w;
    const std::string err = check(p, run(f32dw_ref, p), [&](float got, const Exact& e, size_t) {
      return std::abs(double(got) - clamp(e.value, p.clamp)) <=
             double(taps + 2) * std::ldexp(1.0, -24) * e.scale;
    });
    INFO(err);
    REQUIRE(err.empty());
  }
}

TEST_CASE("f32 depthwise: every variant on this CPU is within tolerance of ref", "[kernels][f32dw]") {
  Rng rng(22);
  for (const F32DwUkernel* uk : f32dw_runnable()) {
    if (uk == &f32dw_ref) continue;
    DYNAMIC_SECTION(uk->name) {
      for (size_t c : channel_counts(rng, 400)) {
        const Problem p = make_problem(rng, c);
        const std::vector<float> want = run(f32dw_ref, p);
        const std::string err = check(p, run(*uk, p), [&](float got, const Exact& e, size_t i) {
          return within_tolerance(got, want[i], e.scale);
        });
        INFO(err);
        REQUIRE(err.empty());
      }
    }
  }
}

TEST_CASE("f32 depthwise: any split of the rows gives the bits of a whole run", "[kernels][f32dw]") {
  Rng rng(23);
  for (const F32DwUkernel* uk : f32dw_runnable()) {
    DYNAMIC_SECTION(uk->name) {
      for (int t = 0; t < 150; ++t) {
        const Problem p = make_problem(rng, rng.uniform(1, 40));
        const size_t rows = p.shape.batch * p.shape.out_h();
        std::vector<size_t> cuts;
        for (size_t i = 0, n = rng.uniform(1, 3); i < n; ++i) cuts.push_back(rng.uniform(0, rows));
        std::sort(cuts.begin(), cuts.end());
        const std::vector<float> whole = run(*uk, p), split = run(*uk, p, cuts);
        INFO(describe(p) << " split at " << cuts.size() << " cuts");
        REQUIRE(std::memcmp(whole.data(), split.data(), whole.size() * sizeof(float)) == 0);
      }
    }
  }
}
