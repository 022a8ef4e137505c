// The preprocess family: parameter checks, the reference against hand-computed
// cases and an independent formula in double, and every variant this CPU runs
// against the reference, bit for bit (fp32 and int8 outputs).
#include "kernels/preprocess/preprocess.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>
#include <string>

#include "tests/kernels/mismatches.h"
#include "tests/kernels/shapes.h"

using namespace huddle::kernels;
using huddle::test::Mismatches;
using huddle::test::Rng;

namespace {

size_t bpp(PixelFormat f) {
  return f == PixelFormat::gray ? 1 : (f == PixelFormat::rgb || f == PixelFormat::bgr ? 3 : 4);
}

// Exactly the bytes the image spans: the last row is not padded to the stride,
// so reading past it is an out-of-bounds read.
std::vector<uint8_t> image_bytes(const PreprocessParams& p) {
  return std::vector<uint8_t>(p.stride * (p.height - 1) + p.width * bpp(p.format));
}

std::string describe(const PreprocessParams& p) {
  std::ostringstream s;
  s << "format=" << int(p.format) << " " << p.width << "x" << p.height << " stride=" << p.stride << " crop=("
    << p.crop.x << "," << p.crop.y << "," << p.crop.w << "," << p.crop.h << ") out=" << p.out_width << "x"
    << p.out_height << " order=" << int(p.order) << " box=(" << p.box.x << "," << p.box.y << "," << p.box.w
    << "," << p.box.h << ") scale=" << p.scale << " zp=" << p.zero_point;
  return s.str();
}

struct Result {
  std::vector<float> f32;
  std::vector<int8_t> qs8;
};

constexpr size_t kGuard = 16;  // canary elements after the tensor
constexpr float kCanaryF = -9876.5f;
constexpr int8_t kCanaryQ = 0x5a;

Result run(const PreprocessUkernel& uk, const PreprocessParams& p, const std::vector<uint8_t>& img) {
  REQUIRE(preprocess_check(p) == nullptr);
  const size_t n = p.out_width * p.out_height * preprocess_channels(p);
  // Any alignment: the scratch starts 0-3 bytes into its buffer.
  const size_t shift = p.width % 4;
  std::vector<uint8_t> scratch(preprocess_scratch_size(p) + shift);
  Result r;
  r.f32.assign(n + kGuard, kCanaryF);
  r.qs8.assign(n + kGuard, kCanaryQ);
  uk.f32(p, img.data(), r.f32.data(), scratch.data() + shift);
  uk.qs8(p, img.data(), r.qs8.data(), scratch.data() + shift);
  for (size_t i = n; i < n + kGuard; ++i) {
    REQUIRE(std::memcmp(&r.f32[i], &kCanaryF, sizeof(float)) == 0);
    REQUIRE(r.qs8[i] == kCanaryQ);
  }
  return r;
}

PreprocessParams basic(PixelFormat f, size_t w, size_t h, size_t ow, size_t oh) {
  PreprocessParams p;
  p.format = f, p.width = w, p.height = h, p.stride = w * bpp(f);
  p.out_width = ow, p.out_height = oh;
  p.order = f == PixelFormat::gray ? ChannelOrder::gray : ChannelOrder::rgb;
  return p;
}

PreprocessParams random_params(Rng& rng) {
  PreprocessParams p;
  p.format =
      rng.pick({PixelFormat::rgb, PixelFormat::rgba, PixelFormat::bgr, PixelFormat::bgra, PixelFormat::gray});
  const size_t big = rng.coin(0.1) ? 120 : 24;
  p.width = rng.uniform(1, big), p.height = rng.uniform(1, big);
  p.stride = p.width * bpp(p.format) + (rng.coin(0.3) ? rng.uniform(1, 7) : 0);
  if (rng.coin(0.5)) {  // crops, often touching an edge
    p.crop.w = rng.uniform(1, p.width), p.crop.h = rng.uniform(1, p.height);
    p.crop.x = rng.coin(0.3) ? p.width - p.crop.w : rng.uniform(0, p.width - p.crop.w);
    p.crop.y = rng.coin(0.3) ? p.height - p.crop.h : rng.uniform(0, p.height - p.crop.h);
  }
  p.out_width = rng.coin(0.1) ? 1 : rng.uniform(1, 40);
  p.out_height = rng.coin(0.1) ? 1 : rng.uniform(1, 40);
  p.order = p.format == PixelFormat::gray
                ? rng.pick({ChannelOrder::gray, ChannelOrder::rgb, ChannelOrder::bgr})
                : rng.pick({ChannelOrder::rgb, ChannelOrder::bgr});
  if (rng.coin(0.4)) {  // letterbox
    p.box.w = rng.uniform(1, p.out_width), p.box.h = rng.uniform(1, p.out_height);
    p.box.x = rng.uniform(0, p.out_width - p.box.w), p.box.y = rng.uniform(0, p.out_height - p.box.h);
    for (auto& v : p.pad) v = static_cast<uint8_t>(rng.uniform(0, 255));
  }
  for (size_t c = 0; c < 3; ++c) {
    p.mean[c] = rng.coin(0.3) ? 0.0f : static_cast<float>(rng.uniform(0, 2550)) / 10.0f;
    p.std[c] =
        rng.coin(0.3) ? 1.0f : static_cast<float>(rng.uniform(10, 900)) / 10.0f * (rng.coin(0.1) ? -1 : 1);
  }
  p.scale = rng.pick({1.0f / 128, 1.0f / 255, 0.02f, 0.5f, 1.0f, 2.0f});
  p.zero_point = rng.pick({-128, 0, 127, static_cast<int32_t>(rng.uniform(0, 255)) - 128});
  return p;
}

std::vector<uint8_t> random_image(Rng& rng, const PreprocessParams& p) {
  std::vector<uint8_t> img = image_bytes(p);
  const bool extreme = rng.coin(0.1);
  for (auto& v : img) v = extreme ? (rng.coin(0.5) ? 255 : 0) : static_cast<uint8_t>(rng.uniform(0, 255));
  return img;
}

}  // namespace

TEST_CASE("preprocess: parameters are checked", "[kernels][preprocess]") {
  PreprocessParams p = basic(PixelFormat::rgb, 4, 3, 2, 2);
  CHECK(preprocess_check(p) == nullptr);
  auto bad = [&](auto change) {
    PreprocessParams q = p;
    change(q);
    return preprocess_check(q) != nullptr;
  };
  CHECK(bad([](PreprocessParams& q) { q.stride = 11; }));
  CHECK(bad([](PreprocessParams& q) { q.width = 0; }));
  CHECK(bad([](PreprocessParams& q) { q.out_height = 0; }));
  CHECK(bad([](PreprocessParams& q) { q.crop = {2, 0, 3, 1}; }));
  CHECK(bad([](PreprocessParams& q) { q.crop = {0, 0, 1, 0}; }));
  CHECK(bad([](PreprocessParams& q) { q.box = {1, 1, 2, 1}; }));
  CHECK(bad([](PreprocessParams& q) { q.order = ChannelOrder::gray; }));
  CHECK(bad([](PreprocessParams& q) { q.std[1] = 0.0f; }));
  CHECK(bad([](PreprocessParams& q) { q.scale = 0.0f; }));
  CHECK(bad([](PreprocessParams& q) { q.zero_point = 128; }));
  CHECK_FALSE(bad([](PreprocessParams& q) { q.crop = {3, 2, 1, 1}; }));
}

TEST_CASE("preprocess ref: hand-computed cases", "[kernels][preprocess]") {
  const PreprocessUkernel& uk = preprocess_ref;
  SECTION("a 1x1 image fills the output; channel orders and formats") {
    // Source pixel R=10 G=20 B=30 in each format.
    const std::pair<PixelFormat, std::vector<uint8_t>> images[] = {{PixelFormat::rgb, {10, 20, 30}},
                                                                   {PixelFormat::bgr, {30, 20, 10}},
                                                                   {PixelFormat::rgba, {10, 20, 30, 99}},
                                                                   {PixelFormat::bgra, {30, 20, 10, 99}}};
    for (const auto& [format, img] : images) {
      PreprocessParams p = basic(format, 1, 1, 2, 3);
      const Result rgb = run(uk, p, img);
      for (size_t i = 0; i < 6; ++i) {
        CHECK(rgb.f32[3 * i] == 10.0f);
        CHECK(rgb.f32[3 * i + 1] == 20.0f);
        CHECK(rgb.f32[3 * i + 2] == 30.0f);
      }
      p.order = ChannelOrder::bgr;
      const Result bgr = run(uk, p, img);
      CHECK(bgr.f32[0] == 30.0f);
      CHECK(bgr.f32[2] == 10.0f);
      CHECK(int(bgr.qs8[0]) == 30);  // scale 1, zero point 0
    }
    PreprocessParams g = basic(PixelFormat::gray, 1, 1, 1, 1);
    g.order = ChannelOrder::bgr;  // gray replicates into 3 channels
    const Result r = run(uk, g, {77});
    CHECK((r.f32[0] == 77.0f && r.f32[1] == 77.0f && r.f32[2] == 77.0f));
  }
  SECTION("upscaling 2 -> 4 with half-pixel centres, clamped at the edges") {
    // Source x of output 0..3: -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1).
    PreprocessParams p = basic(PixelFormat::gray, 2, 1, 4, 1);
    p.scale = 2.0f, p.zero_point = -128;
    const Result r = run(uk, p, {0, 255});
    CHECK(r.f32[0] == 0.0f);
    CHECK(r.f32[1] == 63.75f);
    CHECK(r.f32[2] == 191.25f);
    CHECK(r.f32[3] == 255.0f);
    // int8: v / 2 - 128: -128; 31.875 -> 32 - 128; 95.625 -> 96 - 128; -0.5 rounds half to even: 0.
    CHECK(int(r.qs8[0]) == -128);
    CHECK(int(r.qs8[1]) == -96);
    CHECK(int(r.qs8[2]) == -32);
    CHECK(int(r.qs8[3]) == 0);
  }
  SECTION("downscaling 4x2 -> 2x1 averages 2x2 blocks") {
    // Source centre of output (0, 0): x 0.5, y 0.5: mean of pixels (0..1, 0..1).
    PreprocessParams p = basic(PixelFormat::gray, 4, 2, 2, 1);
    p.mean[0] = 10.0f, p.std[0] = 4.0f;
    const Result r = run(uk, p, {10, 20, 30, 40, 50, 60, 70, 80});
    CHECK(r.f32[0] == (35.0f - 10.0f) / 4.0f);  // (10 + 20 + 50 + 60) / 4 = 35
    CHECK(r.f32[1] == (55.0f - 10.0f) / 4.0f);  // (30 + 40 + 70 + 80) / 4 = 55
    CHECK(int(r.qs8[0]) == 6);                  // 6.25
    CHECK(int(r.qs8[1]) == 11);                 // 11.25
  }
  SECTION("crop at the edge into a letterbox box, padding normalised") {
    // 4x4 gray image with value 10 y + x; crop the bottom-right 2x2 into the
    // middle two columns of a 4x2 output; pad 128 with mean 128, std 2 -> 0.
    PreprocessParams p = basic(PixelFormat::gray, 4, 4, 4, 2);
    p.crop = {2, 2, 2, 2};
    p.box = {1, 0, 2, 2};
    p.pad[0] = 128, p.mean[0] = 128.0f, p.std[0] = 2.0f;
    std::vector<uint8_t> img(16);
    for (size_t i = 0; i < 16; ++i) img[i] = static_cast<uint8_t>(10 * (i / 4) + i % 4 + 100);
    const Result r = run(uk, p, img);
    const float want[] = {0, (122 - 128) / 2.0f, (123 - 128) / 2.0f, 0,
                          0, (132 - 128) / 2.0f, (133 - 128) / 2.0f, 0};
    for (size_t i = 0; i < 8; ++i) CHECK(r.f32[i] == want[i]);
    CHECK(int(r.qs8[1]) == -3);
    CHECK(int(r.qs8[2]) == -2);  // -2.5 rounds half to even
  }
  SECTION("int8 saturates") {
    PreprocessParams p = basic(PixelFormat::gray, 1, 1, 1, 1);
    p.scale = 0.5f;
    CHECK(int(run(uk, p, {200}).qs8[0]) == 127);
    p.mean[0] = 255.0f;
    CHECK(int(run(uk, p, {0}).qs8[0]) == -128);
  }
}

TEST_CASE("preprocess ref: agrees with bilinear sampling in double", "[kernels][preprocess]") {
  Rng rng(21);
  Mismatches bad;
  for (int t = 0; t < 300; ++t) {
    const PreprocessParams p = random_params(rng);
    const std::vector<uint8_t> img = random_image(rng, p);
    const Result r = run(preprocess_ref, p, img);
    const PixelRect crop = p.crop.w ? p.crop : PixelRect{0, 0, p.width, p.height};
    const PixelRect box = p.box.w ? p.box : PixelRect{0, 0, p.out_width, p.out_height};
    const size_t channels = preprocess_channels(p);
    // Fixed-point positions are within 2^-11 pixel of exact on each axis.
    const double tol_value = 2 * 255.0 * std::ldexp(1.0, -11) + 1e-3;
    for (size_t oy = 0; oy < p.out_height; ++oy) {
      for (size_t ox = 0; ox < p.out_width; ++ox) {
        for (size_t c = 0; c < channels; ++c) {
          double v;
          if (ox < box.x || ox >= box.x + box.w || oy < box.y || oy >= box.y + box.h) {
            v = p.pad[c];
          } else {
            auto axis = [](size_t o, size_t in, size_t out, size_t* i0, size_t* i1, double* f) {
              double s =
                  (static_cast<double>(o) + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5;
              s = std::clamp(s, 0.0, static_cast<double>(in - 1));
              *i0 = static_cast<size_t>(std::floor(s));
              *i1 = std::min(*i0 + 1, in - 1);
              *f = s - static_cast<double>(*i0);
            };
            size_t x0, x1, y0, y1;
            double fx, fy;
            axis(ox - box.x, crop.w, box.w, &x0, &x1, &fx);
            axis(oy - box.y, crop.h, box.h, &y0, &y1, &fy);
            const bool src_bgr = p.format == PixelFormat::bgr || p.format == PixelFormat::bgra;
            size_t sc = 0;  // the source byte of output channel c
            if (p.format != PixelFormat::gray) sc = (src_bgr == (p.order == ChannelOrder::bgr)) ? c : 2 - c;
            auto px = [&](size_t y, size_t x) {
              return double(img[(crop.y + y) * p.stride + (crop.x + x) * bpp(p.format) + sc]);
            };
            v = (px(y0, x0) * (1 - fx) + px(y0, x1) * fx) * (1 - fy) +
                (px(y1, x0) * (1 - fx) + px(y1, x1) * fx) * fy;
          }
          const double want = (v - p.mean[c]) / p.std[c];
          const size_t at = (oy * p.out_width + ox) * channels + c;
          const double q = std::clamp(want / p.scale + p.zero_point, -128.0, 127.0);
          const double tol_f32 = tol_value / std::fabs(p.std[c]) + 1e-5 * std::fabs(want) + 1e-5;
          const double tol_q = tol_value / std::fabs(p.std[c]) / p.scale + 1e-4 * std::fabs(q) + 0.5001;
          bad.check(std::fabs(r.f32[at] - want) <= tol_f32 && std::fabs(r.qs8[at] - q) <= tol_q, [&] {
            std::ostringstream s;
            s << describe(p) << " at " << oy << "," << ox << "," << c << ": f32 " << r.f32[at] << " vs "
              << want << ", qs8 " << int(r.qs8[at]) << " vs " << q;
            return s.str();
          });
        }
      }
    }
  }
  INFO(bad.first());
  CHECK(bad.count() == 0);
}

TEST_CASE("preprocess: every variant on this CPU is bit-exact with ref", "[kernels][preprocess]") {
  Rng rng(22);
  std::vector<std::pair<PreprocessParams, std::vector<uint8_t>>> cases;
  // Sizes around the vector widths (8 and 24 elements), 1x1 and large upscaling.
  for (PixelFormat f :
       {PixelFormat::rgb, PixelFormat::rgba, PixelFormat::bgr, PixelFormat::bgra, PixelFormat::gray}) {
    for (size_t w : {1, 2, 3, 5, 7, 8, 9, 15, 16, 17}) {
      PreprocessParams p = basic(f, w, w % 5 + 1, w + 1, 3);
      cases.emplace_back(p, random_image(rng, p));
      p = basic(f, 1, 1, 37, 5);
      cases.emplace_back(p, random_image(rng, p));
    }
  }
  while (cases.size() < 1100) {
    const PreprocessParams p = random_params(rng);
    cases.emplace_back(p, random_image(rng, p));
  }
  for (const PreprocessUkernel* uk : preprocess_runnable()) {
    if (uk == &preprocess_ref) continue;
    DYNAMIC_SECTION(uk->name) {
      for (const auto& [p, img] : cases) {
        INFO(uk->name << " " << describe(p));
        const Result got = run(*uk, p, img), want = run(preprocess_ref, p, img);
        REQUIRE(std::memcmp(got.f32.data(), want.f32.data(), got.f32.size() * sizeof(float)) == 0);
        REQUIRE(got.qs8 == want.qs8);
      }
    }
  }
}
