// int8 convolution: the reference against a direct convolution formula, and
// every GEMM variant's indirect path against the reference, bit for bit.
#include "kernels/conv/conv.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "tests/kernels/shapes.h"

using namespace huddle::kernels;
using huddle::test::Rng;

namespace {

struct ConvCase {
  ConvShape s;
  int32_t in_zp;
  QGemmOutput out;
  std::vector<int8_t> in, w;
  std::vector<int32_t> bias;
  std::vector<float> scale;
};

std::string describe(const ConvCase& c) {
  const ConvShape& s = c.s;
  std::ostringstream o;
  o << "in " << s.in_h << "x" << s.in_w << "x" << s.in_c << " (stride " << s.in_stride() << ") out_c "
    << s.out_c << " (stride " << s.out_stride() << ") kernel " << s.kernel_h << "x" << s.kernel_w
    << " stride " << s.stride_h << "," << s.stride_w << " dilation " << s.dilation_h << "," << s.dilation_w
    << " pad " << s.pad_top << "," << s.pad_left << "," << s.pad_bottom << "," << s.pad_right << " in_zp "
    << c.in_zp << " out_zp " << c.out.zero_point;
  return o.str();
}

// Random input, weights, bias and scales for c.s.
void fill_tensors(Rng& rng, ConvCase& c) {
  const ConvShape& s = c.s;
  c.in.resize(s.in_h * s.in_w * s.in_stride());
  for (auto& v : c.in) v = static_cast<int8_t>(rng.uniform(0, 255) - 128);
  const size_t k = s.kernel_h * s.kernel_w * s.in_c;
  c.w.resize(s.out_c * k);
  for (auto& v : c.w) v = static_cast<int8_t>(rng.uniform(0, 254) - 127);
  c.bias.resize(s.out_c);
  for (auto& v : c.bias) v = static_cast<int32_t>(rng.uniform(0, 100000)) - 50000;
  c.scale.resize(s.out_c);
  const float base = 1.0f / (64.0f * std::sqrt(static_cast<float>(k)) * 4.0f);
  for (auto& v : c.scale) v = base * std::exp2(static_cast<float>(rng.uniform(0, 60)) / 10.0f);
}

ConvCase make_case(Rng& rng, bool tiny) {
  ConvCase c;
  ConvShape& s = c.s;
  do {
    s.kernel_h = rng.uniform(1, tiny ? 3 : 5);
    s.kernel_w = rng.coin(0.7) ? s.kernel_h : rng.uniform(1, 5);
    s.stride_h = rng.uniform(1, 3);
    s.stride_w = rng.coin(0.8) ? s.stride_h : rng.uniform(1, 3);
    s.dilation_h = rng.coin(0.8) ? 1 : 2;
    s.dilation_w = rng.coin(0.8) ? s.dilation_h : rng.uniform(1, 2);
    s.in_h = rng.uniform(1, tiny ? 6 : 14);
    s.in_w = rng.uniform(1, tiny ? 6 : 14);
    s.in_c = rng.coin(0.2) ? rng.uniform(1, 4) : rng.uniform(1, tiny ? 20 : 70);
    s.out_c = rng.uniform(1, tiny ? 20 : 70);
    s.pad_top = rng.uniform(0, s.kernel_h - 1);
    s.pad_bottom = rng.uniform(0, s.kernel_h - 1);
    s.pad_left = rng.uniform(0, s.kernel_w - 1);
    s.pad_right = rng.uniform(0, s.kernel_w - 1);
    if (rng.coin(0.15)) {  // the plain-GEMM path
      s.kernel_h = s.kernel_w = s.stride_h = s.stride_w = 1;
      s.pad_top = s.pad_bottom = s.pad_left = s.pad_right = 0;
    }
  } while (s.out_h() == 0 || s.out_w() == 0);
  s.in_pixel_stride = rng.coin(0.3) ? s.in_c + rng.uniform(1, 7) : 0;
  s.out_pixel_stride = rng.coin(0.3) ? s.out_c + rng.uniform(1, 7) : 0;
  c.in_zp = rng.pick({-128, 127, 0, static_cast<int32_t>(rng.uniform(0, 255)) - 128});
  c.out.zero_point = rng.pick({-128, 127, 0, static_cast<int32_t>(rng.uniform(0, 255)) - 128});
  if (rng.coin(0.3)) c.out.min = static_cast<int8_t>(c.out.zero_point < 100 ? c.out.zero_point : 100);
  fill_tensors(rng, c);
  return c;
}

constexpr int8_t kCanary = 0x6b;

std::vector<int8_t> run(const QGemmUkernel& uk, const ConvCase& c) {
  const QConv conv(uk, c.s, c.w.data(), c.bias.data(), c.scale.data(), c.in_zp);
  std::vector<int8_t> out(conv.out_pixels() * c.s.out_stride() + 8, kCanary);
  conv.run(c.in.data(), out.data(), c.out);
  return out;
}

}  // namespace

TEST_CASE("qconv ref: agrees with the direct convolution formula", "[kernels][conv]") {
  Rng rng(11);
  for (int t = 0; t < 300; ++t) {
    const ConvCase c = make_case(rng, false);
    const ConvShape& s = c.s;
    const std::vector<int8_t> got = run(qgemm_ref, c);
    INFO(describe(c));
    for (size_t oy = 0; oy < s.out_h(); ++oy) {
      for (size_t ox = 0; ox < s.out_w(); ++ox) {
        for (size_t co = 0; co < s.out_c; ++co) {
          int64_t acc = c.bias[co];
          for (size_t ky = 0; ky < s.kernel_h; ++ky) {
            for (size_t kx = 0; kx < s.kernel_w; ++kx) {
              const long iy = long(oy * s.stride_h + ky * s.dilation_h) - long(s.pad_top);
              const long ix = long(ox * s.stride_w + kx * s.dilation_w) - long(s.pad_left);
              if (iy < 0 || ix < 0 || iy >= long(s.in_h) || ix >= long(s.in_w)) continue;  // padding adds 0
              for (size_t ci = 0; ci < s.in_c; ++ci) {
                const int x = c.in[(size_t(iy) * s.in_w + size_t(ix)) * s.in_stride() + ci];
                const int w = c.w[((co * s.kernel_h + ky) * s.kernel_w + kx) * s.in_c + ci];
                acc += int64_t(x - c.in_zp) * w;
              }
            }
          }
          double f = static_cast<double>(static_cast<float>(acc) * c.scale[co]);
          f = std::min(std::max(f, double(c.out.min - c.out.zero_point)),
                       double(c.out.max - c.out.zero_point));
          const long want = std::lrint(f) + c.out.zero_point;
          REQUIRE(int(got[(oy * s.out_w() + ox) * s.out_stride() + co]) == want);
        }
      }
    }
    // Nothing written between pixels (channel slices) or past the end.
    for (size_t p = 0; p < s.out_h() * s.out_w(); ++p)
      for (size_t j = s.out_c; j < s.out_stride(); ++j) REQUIRE(got[p * s.out_stride() + j] == kCanary);
    for (size_t j = 0; j < 8; ++j) REQUIRE(got[got.size() - 1 - j] == kCanary);
  }
}

TEST_CASE("qconv: every variant on this CPU is bit-exact with ref", "[kernels][conv]") {
  Rng rng(12);
  for (const QGemmUkernel* uk : qgemm_runnable()) {
    if (uk == &qgemm_ref) continue;
    DYNAMIC_SECTION(uk->name) {
      for (int t = 0; t < 1000; ++t) {
        const ConvCase c = make_case(rng, t % 2 == 0);
        INFO(uk->name << " " << describe(c));
        REQUIRE(run(*uk, c) == run(qgemm_ref, c));
      }
    }
  }
}

TEST_CASE("qconv: pixel ranges split at the granule give the whole output", "[kernels][conv]") {
  Rng rng(13);
  for (const QGemmUkernel* uk : qgemm_runnable()) {
    for (int t = 0; t < 20; ++t) {
      ConvCase c = make_case(rng, false);
      const QConv conv(*uk, c.s, c.w.data(), c.bias.data(), c.scale.data(), c.in_zp);
      const size_t pixels = conv.out_pixels(), stride = c.s.out_stride();
      std::vector<int8_t> whole(pixels * stride, 0), split(pixels * stride, 0);
      conv.run(c.in.data(), whole.data(), c.out);
      const size_t mid = pixels / 2 / conv.pixel_granule() * conv.pixel_granule();
      conv.run_pixels(0, mid, c.in.data(), split.data(), c.out);
      conv.run_pixels(mid, pixels, c.in.data(), split.data(), c.out);
      INFO(uk->name << " " << describe(c));
      REQUIRE(whole == split);
    }
  }
}

TEST_CASE("qconv: shapes that cannot run are refused with the field named", "[kernels][conv]") {
  ConvShape s;
  s.in_h = s.in_w = 4;
  s.in_c = 3;
  s.out_c = 2;
  s.kernel_h = s.kernel_w = 5;
  CHECK_THROWS_WITH(validate(s), Catch::Contains("larger than the padded input"));
  s.kernel_h = s.kernel_w = 3;
  CHECK_NOTHROW(validate(s));
  s.stride_w = 0;
  CHECK_THROWS_WITH(validate(s), Catch::Contains("stride_h and stride_w"));
  s.stride_w = 1;
  s.in_pixel_stride = 2;
  CHECK_THROWS_WITH(validate(s), Catch::Contains("in_pixel_stride is smaller than in_c"));
  s.in_pixel_stride = 0;
  s.in_c = 0;
  CHECK_THROWS_AS(validate(s), std::invalid_argument);
}

TEST_CASE("qconv: few-channel convolutions gather their windows, bit-exact with ref", "[kernels][conv]") {
  // Stems of the torchvision models and shapes around the gathering rule's
  // edges: windows that leave the input on every side, strides, dilation,
  // pixel strides wider than the channels, K just below and above the limit.
  struct Stem {
    size_t in, c, out_c, kernel, stride, dilation, pad, in_stride;
  };
  const Stem stems[] = {
      {30, 3, 64, 7, 2, 1, 3, 0}, {17, 3, 32, 3, 2, 1, 1, 0}, {16, 3, 16, 3, 2, 1, 1, 0},
      {9, 1, 5, 3, 1, 1, 1, 0},   {11, 5, 40, 5, 1, 2, 4, 0}, {12, 3, 19, 3, 1, 1, 2, 7},
      {8, 15, 33, 5, 3, 1, 0, 0}, {14, 10, 8, 7, 1, 1, 3, 0}, {10, 13, 24, 6, 1, 1, 2, 0},
      {7, 6, 17, 1, 2, 1, 0, 0},  {6, 3, 70, 7, 1, 1, 6, 3},  {12, 11, 9, 7, 1, 1, 3, 0},
  };
  Rng rng(14);
  size_t gathered = 0;
  for (const QGemmUkernel* uk : qgemm_runnable()) {
    for (const Stem& st : stems) {
      for (int t = 0; t < 3; ++t) {
        ConvCase c = make_case(rng, false);  // for its zero points and clamp
        ConvShape& s = c.s;
        s = ConvShape{};
        s.in_h = st.in + t, s.in_w = st.in + 2 * t, s.in_c = st.c, s.out_c = st.out_c;
        s.kernel_h = s.kernel_w = st.kernel, s.stride_h = s.stride_w = st.stride;
        s.dilation_h = s.dilation_w = st.dilation;
        s.pad_top = s.pad_left = st.pad, s.pad_bottom = s.pad_right = st.pad - (t == 2 && st.pad > 0);
        s.in_pixel_stride = st.in_stride ? st.c + st.in_stride : 0;
        s.out_pixel_stride = t == 1 ? s.out_c + 5 : 0;
        fill_tensors(rng, c);
        const size_t k = s.kernel_h * s.kernel_w * s.in_c;
        const QConv conv(*uk, s, c.w.data(), c.bias.data(), c.scale.data(), c.in_zp);
        // The rule: few channels that the K group does not divide, windows up to 512 bytes.
        const bool want = s.in_c < 16 && s.in_c % uk->kr != 0 && (k + uk->kr - 1) / uk->kr * uk->kr <= 512 &&
                          !(s.kernel_h == 1 && s.stride_h == 1 && st.pad == 0);
        INFO(uk->name << " " << describe(c));
        CHECK(conv.gathers() == want);
        gathered += conv.gathers();
        REQUIRE(run(*uk, c) == run(qgemm_ref, c));
      }
    }
  }
  // Every build with a SIMD GEMM variant has one whose K group exceeds 3.
  if (qgemm_runnable().size() > 1) CHECK(gathered > 0);
}
