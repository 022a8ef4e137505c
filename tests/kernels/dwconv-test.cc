// The int8 depthwise convolution family: the reference against hand-computed
// cases and the quantisation formula, and every variant this CPU runs against
// the reference, bit for bit.
#include "kernels/dwconv/dwconv.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "tests/kernels/shapes.h"

using namespace huddle::kernels;
using huddle::test::Rng;

namespace {

struct Problem {
  QDwConvShape s;
  int32_t in_zp = 0;
  QGemmOutput out;
  std::vector<int8_t> in, w;
  std::vector<int32_t> bias;
  std::vector<float> scale;
};

std::string describe(const Problem& p) {
  std::ostringstream o;
  o << "in=" << p.s.in_h << "x" << p.s.in_w << "x" << p.s.channels << " k=" << p.s.kernel
    << " stride=" << p.s.stride << " pad(t,l,b,r)=" << p.s.pad_top << "," << p.s.pad_left << ","
    << p.s.pad_bottom << "," << p.s.pad_right << " in_stride=" << p.s.in_stride
    << " out_stride=" << p.s.out_stride << " in_zp=" << p.in_zp << " out_zp=" << p.out.zero_point
    << " min=" << int(p.out.min) << " max=" << int(p.out.max);
  return o.str();
}

int8_t random_i8(Rng& rng) { return static_cast<int8_t>(static_cast<int>(rng.uniform(0, 255)) - 128); }

// Input bytes: exactly up to the last channel of the last pixel, so reading
// past it is caught by AddressSanitizer.
size_t in_size(const QDwConvShape& s) { return (s.in_h * s.in_w - 1) * s.in_stride + s.channels; }
size_t out_pixels(const QDwConvShape& s) { return dwconv_out_h(s) * dwconv_out_w(s); }

Problem make_problem(Rng& rng, const QDwConvShape& shape) {
  Problem p;
  p.s = shape;
  p.in_zp = rng.pick({-128, 127, 0, static_cast<int32_t>(rng.uniform(0, 255)) - 128});
  p.out.zero_point = rng.pick({-128, 127, 0, static_cast<int32_t>(rng.uniform(0, 255)) - 128});
  if (rng.coin(0.3)) {  // a ReLU / ReLU6-like clamp somewhere in range
    const int lo = static_cast<int>(rng.uniform(0, 200)) - 128;
    p.out.min = static_cast<int8_t>(lo);
    p.out.max = static_cast<int8_t>(lo + static_cast<int>(rng.uniform(0, 127 - lo)));
  }
  const size_t taps = size_t{shape.kernel} * shape.kernel, c = shape.channels;
  p.in.resize(in_size(shape));
  const int mode = static_cast<int>(rng.uniform(0, 9));  // 0, 1: inputs at an extreme, to reach the limits
  for (auto& v : p.in) v = mode == 0 ? int8_t{-128} : mode == 1 ? int8_t{127} : random_i8(rng);
  p.w.resize(taps * c);
  const bool extreme = rng.coin(0.2);  // all weights at +-127
  for (auto& v : p.w)
    v = extreme ? (rng.coin(0.5) ? 127 : -127)
                : static_cast<int8_t>(static_cast<int>(rng.uniform(0, 254)) - 127);
  p.bias.resize(c);
  for (auto& v : p.bias) v = static_cast<int32_t>(rng.uniform(0, 40000)) - 20000;
  p.scale.resize(c);
  // Scales spread so outputs cover the range and saturate on both sides.
  const float base = 1.0f / (128.0f * static_cast<float>(shape.kernel) * 8.0f);
  for (auto& v : p.scale) v = base * std::exp2(static_cast<float>(rng.uniform(0, 80)) / 10.0f);
  return p;
}

std::vector<uint8_t> pack(const QDwConvUkernel& uk, const Problem& p) {
  std::vector<uint8_t> packed(dwconv_packed_size(uk, p.s.kernel, p.s.channels));
  dwconv_pack(uk, p.s.kernel, p.s.channels, p.w.data(), p.bias.data(), p.scale.data(), p.in_zp,
              packed.data());
  return packed;
}

// The output with a canary border and canaries between pixels: the kernel
// must write exactly the channels of each output pixel.
constexpr int8_t kCanary = 0x5a;
constexpr size_t kBorder = 16;

std::vector<int8_t> run(const QDwConvUkernel& uk, const Problem& p) {
  const std::vector<uint8_t> packed = pack(uk, p);
  std::vector<int8_t> out(out_pixels(p.s) * p.s.out_stride + 2 * kBorder, kCanary);
  uk.run(p.s, p.in.data(), packed.data(), out.data() + kBorder, p.out);
  return out;
}

QDwConvShape random_shape(Rng& rng, size_t channels) {
  QDwConvShape s;
  s.kernel = rng.coin(0.5) ? 3 : 5;
  s.stride = rng.coin(0.5) ? 1 : 2;
  s.channels = channels;
  const uint32_t k = s.kernel;
  auto pad = [&] { return rng.pick({0u, k - 1, k / 2, static_cast<uint32_t>(rng.uniform(0, k - 1))}); };
  s.pad_top = pad(), s.pad_left = pad(), s.pad_bottom = pad(), s.pad_right = pad();
  auto extent = [&](uint32_t pads) {
    size_t n = rng.coin(0.3) ? rng.pick({size_t{1}, size_t{2}, size_t{3}}) : rng.uniform(1, 14);
    return n + pads < k ? k - pads : n;  // at least one output
  };
  s.in_h = extent(s.pad_top + s.pad_bottom);
  s.in_w = extent(s.pad_left + s.pad_right);
  s.in_stride = channels + (rng.coin(0.3) ? rng.uniform(1, 9) : 0);
  s.out_stride = channels + (rng.coin(0.3) ? rng.uniform(1, 9) : 0);
  return s;
}

// Channel counts around every variant's block, plus random ones.
std::vector<QDwConvShape> shapes(Rng& rng, size_t count) {
  std::vector<size_t> cs = {1, 2, 3, 5, 7};
  for (const QDwConvUkernel* uk : dwconv_all())
    for (size_t t : {uk->cr, 2 * uk->cr, 4 * uk->cr})
      for (size_t d : {t - 1, t, t + 1})
        if (d > 0) cs.push_back(d);
  for (size_t c : {7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65}) cs.push_back(c);
  std::vector<QDwConvShape> out;
  for (size_t c : cs)
    for (int i = 0; i < 8; ++i) out.push_back(random_shape(rng, c));
  // Tiny inputs: 1x1 padded k-1 all round (every output pixel mostly padding), 2x3 and 3x2 padded k/2.
  for (uint32_t k : {3u, 5u}) {
    for (uint32_t stride : {1u, 2u}) {
      for (size_t c : {size_t{1}, size_t{17}, size_t{33}}) {
        for (auto [h, w, pad] : {std::array<size_t, 3>{1, 1, k - 1}, {2, 3, k / 2}, {3, 2, k / 2}}) {
          QDwConvShape s = random_shape(rng, c);
          s.in_h = h, s.in_w = w, s.kernel = k, s.stride = stride;
          s.pad_top = s.pad_left = s.pad_bottom = s.pad_right = static_cast<uint32_t>(pad);
          out.push_back(s);
        }
      }
    }
  }
  while (out.size() < count)
    out.push_back(random_shape(rng, rng.coin(0.1) ? rng.uniform(65, 200) : rng.uniform(1, 64)));
  return out;
}

// Weights [ky][kx][c], scale 1, bias 0 unless given.
std::vector<int8_t> run_hand(const QDwConvShape& s, const std::vector<int8_t>& in,
                             const std::vector<int8_t>& w, int32_t in_zp, const QGemmOutput& out,
                             std::vector<int32_t> bias = {}, std::vector<float> scale = {}) {
  if (bias.empty()) bias.assign(s.channels, 0);
  if (scale.empty()) scale.assign(s.channels, 1.0f);
  std::vector<uint8_t> packed(dwconv_packed_size(dwconv_ref, s.kernel, s.channels));
  dwconv_pack(dwconv_ref, s.kernel, s.channels, w.data(), bias.data(), scale.data(), in_zp, packed.data());
  std::vector<int8_t> o(out_pixels(s) * s.out_stride, kCanary);
  dwconv_ref.run(s, in.data(), packed.data(), o.data(), out);
  return o;
}

QDwConvShape hand_shape(size_t h, size_t w, size_t c, uint32_t k, uint32_t stride, uint32_t pt, uint32_t pl,
                        uint32_t pb, uint32_t pr) {
  QDwConvShape s;
  s.in_h = h, s.in_w = w, s.channels = c, s.kernel = k, s.stride = stride;
  s.pad_top = pt, s.pad_left = pl, s.pad_bottom = pb, s.pad_right = pr;
  s.in_stride = s.out_stride = c;
  return s;
}

}  // namespace

TEST_CASE("dwconv ref: hand-computed cases", "[kernels][dwconv]") {
  const QGemmOutput plain{};
  // One 3x3 window over 1..9 with a Sobel-like filter: (1-3) + 2*(4-6) + (7-9) = -8,
  // + bias 5 = -3, * 0.5 = -1.5, which rounds half to even to -2.
  const std::vector<int8_t> nine = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<int8_t> sobel = {1, 0, -1, 2, 0, -2, 1, 0, -1};
  CHECK(run_hand(hand_shape(3, 3, 1, 3, 1, 0, 0, 0, 0), nine, sobel, 0, plain, {5}, {0.5f}) ==
        std::vector<int8_t>{-2});
  // Input zero point 1: every tap loses 1 * w, and the weights sum to 0, so the same.
  CHECK(run_hand(hand_shape(3, 3, 1, 3, 1, 0, 0, 0, 0), nine, sobel, 1, plain, {5}, {0.5f}) ==
        std::vector<int8_t>{-2});
  // A single pixel padded all round: only the centre tap sees data; (7 - 3) * 2 = 8.
  const std::vector<int8_t> twos(9, 2);
  CHECK(run_hand(hand_shape(1, 1, 1, 3, 1, 1, 1, 1, 1), {7}, twos, 3, plain) == std::vector<int8_t>{8});
  // Same with output zero point 10, a ReLU at the zero point and a negative sum: (1 - 3) * 2 = -4 -> 10.
  CHECK(run_hand(hand_shape(1, 1, 1, 3, 1, 1, 1, 1, 1), {1}, twos, 3, QGemmOutput{10, 10, 127}) ==
        std::vector<int8_t>{10});
  CHECK(run_hand(hand_shape(1, 1, 1, 3, 1, 1, 1, 1, 1), {7}, twos, 3, QGemmOutput{10, 10, 127}) ==
        std::vector<int8_t>{18});
  // Stride 2 over a 5x5 ramp (value 5y + x) with only the centre tap, padding 1: samples rows/columns 0,
  // 2, 4.
  std::vector<int8_t> ramp(25);
  for (int i = 0; i < 25; ++i) ramp[i] = static_cast<int8_t>(i);
  const std::vector<int8_t> centre = {0, 0, 0, 0, 1, 0, 0, 0, 0};
  CHECK(run_hand(hand_shape(5, 5, 1, 3, 2, 1, 1, 1, 1), ramp, centre, 0, plain) ==
        std::vector<int8_t>{0, 2, 4, 10, 12, 14, 20, 22, 24});
  // Asymmetric padding: 2 on the left only, 3x3 input 1..9 -> 1 x 3 output. Taps top-left and
  // bottom-right: out[x] = in[0][x-2] + in[2][x] = 0 + 7, 0 + 8, 1 + 9.
  const std::vector<int8_t> corners = {1, 0, 0, 0, 0, 0, 0, 0, 1};
  CHECK(run_hand(hand_shape(3, 3, 1, 3, 1, 0, 2, 0, 0), nine, corners, 0, plain) ==
        std::vector<int8_t>{7, 8, 10});
  // 5x5 of ones on a 5x5 input of ones padded by 2: each output counts the taps inside the input.
  const std::vector<int8_t> ones(25, 1);
  CHECK(run_hand(hand_shape(5, 5, 1, 5, 1, 2, 2, 2, 2), ones, ones, 0, plain) ==
        std::vector<int8_t>{9,  12, 15, 12, 9,  12, 16, 20, 16, 12, 15, 20, 25,
                            20, 15, 12, 16, 20, 16, 12, 9,  12, 15, 12, 9});
  // Saturation both ways: 9 taps of 127 * 127 scaled by 1 clamp to 127; negated to -128.
  const std::vector<int8_t> big(9, 127), neg(9, -127);
  CHECK(run_hand(hand_shape(3, 3, 1, 3, 1, 0, 0, 0, 0), big, big, 0, plain) == std::vector<int8_t>{127});
  CHECK(run_hand(hand_shape(3, 3, 1, 3, 1, 0, 0, 0, 0), big, neg, 0, plain) == std::vector<int8_t>{-128});
  // Two channels, input pixel stride 3, output pixel stride 4: 2x2 input, 3x3 kernel padded 1 to 2x2
  // output. Channel 0 weights all 1 (sums all four pixels), channel 1 only the centre tap (copies).
  QDwConvShape s = hand_shape(2, 2, 2, 3, 1, 1, 1, 1, 1);
  s.in_stride = 3, s.out_stride = 4;
  const std::vector<int8_t> in = {1, 10, 99, 2, 20, 99, 3, 30, 99, 4, 40};
  std::vector<int8_t> w(18, 0);
  for (int t = 0; t < 9; ++t) w[2 * t] = 1;
  w[2 * 4 + 1] = 1;
  const int8_t c = kCanary;
  CHECK(run_hand(s, in, w, 0, plain) ==
        std::vector<int8_t>{10, 10, c, c, 10, 20, c, c, 10, 30, c, c, 10, 40, c, c});
}

TEST_CASE("dwconv ref: agrees with the quantisation formula on unpacked weights", "[kernels][dwconv]") {
  Rng rng(1);
  for (const QDwConvShape& s : shapes(rng, 300)) {
    const Problem p = make_problem(rng, s);
    const std::vector<int8_t> got = run(dwconv_ref, p);
    INFO(describe(p));
    const size_t out_h = dwconv_out_h(s), out_w = dwconv_out_w(s), k = s.kernel;
    std::vector<int8_t> want(got.size(), kCanary);
    for (size_t oy = 0; oy < out_h; ++oy) {
      for (size_t ox = 0; ox < out_w; ++ox) {
        for (size_t c = 0; c < s.channels; ++c) {
          int64_t acc = p.bias[c];
          for (size_t ky = 0; ky < k; ++ky) {
            for (size_t kx = 0; kx < k; ++kx) {
              const long y = long(oy * s.stride + ky) - long(s.pad_top),
                         x = long(ox * s.stride + kx) - long(s.pad_left);
              if (y < 0 || x < 0 || y >= long(s.in_h) || x >= long(s.in_w))
                continue;  // padding: contributes 0
              acc += (int64_t{p.in[(y * s.in_w + x) * s.in_stride + c]} - p.in_zp) *
                     p.w[(ky * k + kx) * s.channels + c];
            }
          }
          double f = static_cast<double>(static_cast<float>(acc) * p.scale[c]);
          f = std::clamp(f, double(p.out.min - p.out.zero_point), double(p.out.max - p.out.zero_point));
          want[kBorder + (oy * out_w + ox) * s.out_stride + c] =
              static_cast<int8_t>(std::lrint(f) + p.out.zero_point);
        }
      }
    }
    REQUIRE(got == want);
  }
}

TEST_CASE("dwconv: every variant on this CPU is bit-exact with ref", "[kernels][dwconv]") {
  Rng rng(2);
  const std::vector<QDwConvShape> cases = shapes(rng, 1200);
  for (const QDwConvUkernel* uk : dwconv_runnable()) {
    if (uk == &dwconv_ref) continue;
    DYNAMIC_SECTION(uk->name) {
      for (const QDwConvShape& s : cases) {
        const Problem p = make_problem(rng, s);
        INFO(uk->name << " " << describe(p));
        REQUIRE(run(*uk, p) == run(dwconv_ref, p));
      }
    }
  }
}

TEST_CASE("dwconv: channel slices of a wider tensor run on their own", "[kernels][dwconv]") {
  // A caller splitting the channels (e.g. between threads) packs each slice's
  // weights and runs it with the full tensor's pixel strides.
  Rng rng(3);
  for (const QDwConvUkernel* uk : dwconv_runnable()) {
    QDwConvShape whole = random_shape(rng, 2 * uk->cr + 21);
    whole.in_stride = whole.out_stride = whole.channels;
    const Problem p = make_problem(rng, whole);
    const std::vector<int8_t> want = run(*uk, p);
    std::vector<int8_t> got(want.size(), kCanary);
    const size_t split = uk->cr + 5, taps = size_t{whole.kernel} * whole.kernel;
    for (auto [c0, c1] : {std::array<size_t, 2>{0, split}, {split, whole.channels}}) {
      QDwConvShape s = whole;
      s.channels = c1 - c0;
      std::vector<int8_t> w(taps * s.channels);
      for (size_t t = 0; t < taps; ++t)
        for (size_t c = 0; c < s.channels; ++c) w[t * s.channels + c] = p.w[t * whole.channels + c0 + c];
      std::vector<uint8_t> packed(dwconv_packed_size(*uk, s.kernel, s.channels));
      dwconv_pack(*uk, s.kernel, s.channels, w.data(), p.bias.data() + c0, p.scale.data() + c0, p.in_zp,
                  packed.data());
      uk->run(s, p.in.data() + c0, packed.data(), got.data() + kBorder + c0, p.out);
    }
    INFO(uk->name << " " << describe(p));
    CHECK(got == want);
  }
}

TEST_CASE("dwconv: the variant choice follows the ISA", "[kernels][dwconv]") {
  CHECK(&dwconv_for(Isa::ref) == &dwconv_ref);
  CHECK(dwconv_all().front() == &dwconv_ref);
  CHECK(dwconv_runnable().front() == &dwconv_ref);
  for (Isa isa : runnable_isas()) CHECK(isa_implies(isa, dwconv_for(isa).isa));
  CHECK(&dwconv() == &dwconv_for(selected_isa()));
}
