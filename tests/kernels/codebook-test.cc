// The codebook fully connected family: fp16 conversion, the k-means builder,
// the reference against hand-computed cases and a double-precision formula,
// and every variant this CPU runs against the reference within the rounding
// bound stated in codebook.h.
#include "kernels/codebook/codebook.h"

#include <catch2/catch.hpp>

#include <array>
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

struct Problem {
  unsigned bits;
  size_t m, n, k, x_stride, y_stride;
  std::vector<uint16_t> table;
  std::vector<uint8_t> idx;  // storage form, row stride codebook_row_bytes
  std::vector<float> bias, xf;
  std::vector<int8_t> xq;
  CodebookQs8Input in;
  CodebookF32Output out_f32;
  CodebookQs8Output out_q;
};

std::string describe(const Problem& p) {
  std::ostringstream s;
  s << "bits=" << p.bits << " m=" << p.m << " n=" << p.n << " k=" << p.k << " x_stride=" << p.x_stride
    << " y_stride=" << p.y_stride << " in=" << p.in.scale << "/" << p.in.zero_point
    << " out=" << p.out_q.scale << "/" << p.out_q.zero_point << " [" << int(p.out_q.min) << ","
    << int(p.out_q.max) << "] clamp=[" << p.out_f32.min << "," << p.out_f32.max << "]";
  return s.str();
}

float weight(const Problem& p, size_t j, size_t kk) {
  const size_t row = codebook_row_bytes(p.bits, p.k);
  return fp16_to_fp32(p.table[codebook_index(p.bits, p.idx.data() + j * row, kk)]);
}

Problem make_problem(Rng& rng, unsigned bits, size_t m, size_t n, size_t k) {
  Problem p;
  p.bits = bits, p.m = m, p.n = n, p.k = k;
  p.x_stride = k + (rng.coin(0.3) ? rng.uniform(1, 9) : 0);
  p.y_stride = n + (rng.coin(0.3) ? rng.uniform(1, 9) : 0);
  const float wscale = std::exp2(static_cast<float>(rng.uniform(0, 12)) - 8.0f);
  p.table.resize(codebook_entries(bits));
  for (auto& t : p.table) t = fp32_to_fp16(rng.normal() * wscale);
  if (rng.coin(0.1)) p.table[rng.uniform(0, p.table.size() - 1)] = 0x7bff;  // 65504, the largest fp16
  const size_t row = codebook_row_bytes(bits, k);
  p.idx.resize(n * row);
  for (auto& v : p.idx) v = static_cast<uint8_t>(rng.uniform(0, 255));
  if (bits == 4 && k % 2)  // storage form: the spare high nibble may hold anything
    for (size_t j = 0; j < n; ++j) p.idx[j * row + row - 1] |= 0xa0;
  p.bias.resize(n);
  for (auto& b : p.bias) b = rng.coin(0.2) ? 0.0f : rng.normal() * 4.0f;
  p.xf.resize(m * p.x_stride);
  for (auto& v : p.xf) v = rng.normal();
  p.xq.resize(m * p.x_stride);
  for (auto& v : p.xq) v = static_cast<int8_t>(static_cast<int>(rng.uniform(0, 255)) - 128);
  p.in.scale = 0.01f * std::exp2(static_cast<float>(rng.uniform(0, 40)) / 10.0f);
  p.in.zero_point = rng.pick({-128, 127, 0, static_cast<int32_t>(rng.uniform(0, 255)) - 128});
  if (rng.coin(0.3)) {
    p.out_f32.min = rng.normal();
    p.out_f32.max = p.out_f32.min + std::fabs(rng.normal()) * 4.0f;
  }
  // Output scale so the int8 outputs span the range and saturate at times.
  const float typical = p.in.scale * 80.0f * wscale * std::sqrt(static_cast<float>(k)) + 4.0f;
  p.out_q.scale = typical / 64.0f * std::exp2(static_cast<float>(rng.uniform(0, 40)) / 10.0f - 2.0f);
  p.out_q.zero_point = rng.pick({-128, 127, 0, static_cast<int32_t>(rng.uniform(0, 255)) - 128});
  if (rng.coin(0.3)) {
    const int lo = static_cast<int>(rng.uniform(0, 200)) - 128;
    p.out_q.min = static_cast<int8_t>(lo);
    p.out_q.max = static_cast<int8_t>(lo + static_cast<int>(rng.uniform(0, 127 - lo)));
  }
  return p;
}

std::vector<uint8_t> pack(const CodebookFcUkernel& uk, const Problem& p) {
  std::vector<uint8_t> packed(codebook_fc_packed_size(uk, p.bits, p.n, p.k));
  codebook_fc_pack(uk, p.bits, p.n, p.k, p.table.data(), p.idx.data(), codebook_row_bytes(p.bits, p.k),
                   p.bias.data(), packed.data());
  return packed;
}

// Outputs of the three functions, each in a buffer with a canary border.
struct Outputs {
  std::vector<float> f32, qs8_f32;
  std::vector<int8_t> qs8;
};

constexpr float kCanaryF = -12345.5f;
constexpr int8_t kCanaryQ = 0x5a;

Outputs run(const CodebookFcUkernel& uk, const Problem& p) {
  // Any alignment: the packed weights start 0-2 bytes into their buffer.
  const std::vector<uint8_t> aligned = pack(uk, p);
  const size_t shift = p.k % 3;
  std::vector<uint8_t> buffer(aligned.size() + shift);
  std::memcpy(buffer.data() + shift, aligned.data(), aligned.size());
  const void* packed = buffer.data() + shift;
  const CodebookFcKernels& f = uk.kernels(p.bits);
  Outputs o;
  o.f32.assign(p.y_stride * p.m + 16, kCanaryF);
  o.qs8_f32.assign(p.y_stride * p.m + 16, kCanaryF);
  o.qs8.assign(p.y_stride * p.m + 16, kCanaryQ);
  f.f32(p.m, p.n, p.k, p.xf.data(), p.x_stride, packed, o.f32.data(), p.y_stride, p.out_f32);
  f.qs8_f32(p.m, p.n, p.k, p.xq.data(), p.x_stride, packed, o.qs8_f32.data(), p.y_stride, p.in, p.out_f32);
  f.qs8(p.m, p.n, p.k, p.xq.data(), p.x_stride, packed, o.qs8.data(), p.y_stride, p.in, p.out_q);
  return o;
}

bool inside(const Problem& p, size_t i) { return i / p.y_stride < p.m && i % p.y_stride < p.n; }

// The exact sums in double and the rounding bound of codebook.h for output (i, j).
struct Exact {
  double f32, f32_bound, qs8, qs8_bound;
};

Exact exact(const Problem& p, size_t i, size_t j) {
  double sf = 0, af = 0, sq = 0, aq = 0;
  for (size_t kk = 0; kk < p.k; ++kk) {
    const double w = weight(p, j, kk);
    const double xf = p.xf[i * p.x_stride + kk], xq = int32_t{p.xq[i * p.x_stride + kk]} - p.in.zero_point;
    sf += xf * w, af += std::fabs(xf * w);
    sq += xq * w, aq += std::fabs(xq * w);
  }
  const double u = 2 * (static_cast<double>(p.k) + 3) * 0x1p-24;
  const double b = p.bias[j];
  return {b + sf, u * (std::fabs(b) + af), b + p.in.scale * sq, u * (std::fabs(b) + p.in.scale * aq)};
}

std::vector<std::array<size_t, 3>> shapes(Rng& rng, size_t count) {
  std::vector<std::array<size_t, 3>> out;
  std::vector<size_t> ms = {1, 2, 3}, ns = {1, 2, 3}, ks = {1, 2, 3};
  for (const CodebookFcUkernel* uk : codebook_fc_all()) {
    for (size_t d : {size_t{0}, size_t{1}, size_t{2}}) {
      for (size_t t : {size_t{uk->mr}, size_t{2 * uk->mr}}) ms.push_back(t + d - 1);
      for (size_t t : {size_t{uk->nr}, size_t{2 * uk->nr}}) ns.push_back(t + d - 1);
      for (size_t t : {size_t{8}, size_t{16}}) ks.push_back(t + d - 1);
    }
  }
  for (size_t m : ms)
    for (size_t n : ns)
      if (m > 0 && n > 0) out.push_back({m, n, ks[rng.uniform(0, ks.size() - 1)]});
  while (out.size() < count) {
    if (rng.coin(0.05)) {
      out.push_back({rng.uniform(1, 3), rng.uniform(1, 20), rng.uniform(512, 2500)});  // large K
    } else {
      out.push_back({rng.uniform(1, 9), rng.uniform(1, 40), rng.uniform(1, 80)});
    }
  }
  return out;
}

}  // namespace

TEST_CASE("fp16: conversions round to nearest even and round-trip", "[kernels][codebook]") {
  CHECK(fp32_to_fp16(1.0f) == 0x3c00);
  CHECK(fp32_to_fp16(-2.0f) == 0xc000);
  CHECK(fp32_to_fp16(65504.0f) == 0x7bff);
  CHECK(fp32_to_fp16(65519.0f) == 0x7bff);
  CHECK(fp32_to_fp16(65520.0f) == 0x7c00);             // halfway to 65536: even is infinity
  CHECK(fp32_to_fp16(0x1p-24f) == 0x0001);             // smallest subnormal
  CHECK(fp32_to_fp16(0x1p-25f) == 0x0000);             // halfway to it: even is zero
  CHECK(fp32_to_fp16(0x1.8p-24f) == 0x0002);           // 1.5 ulp: even is 2
  CHECK(fp32_to_fp16(1.0f + 0x1p-11f) == 0x3c00);      // halfway, even stays
  CHECK(fp32_to_fp16(1.0f + 3 * 0x1p-11f) == 0x3c02);  // halfway, rounds up to even
  CHECK(fp32_to_fp16(0.1f) == 0x2e66);
  CHECK(fp16_to_fp32(0x3555) == 0x1.554p-2f);
  CHECK(fp16_to_fp32(0x8001) == -0x1p-24f);
  CHECK(std::isinf(fp16_to_fp32(0xfc00)));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaN
    INFO(h);
    REQUIRE(fp32_to_fp16(fp16_to_fp32(static_cast<uint16_t>(h))) == h);
  }
}

TEST_CASE("codebook ref: hand-computed cases", "[kernels][codebook]") {
  // Table [0, 0.5, -1, 2, 0...]; W = [[1 2 3], [3 3 0]] as indices; x = [2 1 4]; bias = [1, -1]:
  // y0 = 1 + 2*0.5 + 1*-1 + 4*2 = 9, y1 = -1 + 2*2 + 1*2 + 4*0 = 5.
  std::vector<uint16_t> table(256, 0);
  table[1] = 0x3800, table[2] = 0xbc00, table[3] = 0x4000;
  const float bias[] = {1.0f, -1.0f}, x[] = {2.0f, 1.0f, 4.0f};
  const int8_t xq[] = {3, 2, 5};  // with zero point 1: 2 1 4
  const uint8_t idx8[] = {1, 2, 3, 3, 3, 0};
  const uint8_t idx4[] = {0x21, 0x03, 0x33, 0x00};  // two rows of 2 bytes, low nibble first
  for (unsigned bits : {4u, 8u}) {
    INFO("bits " << bits);
    const CodebookFcUkernel& uk = codebook_fc_ref;
    std::vector<uint8_t> packed(codebook_fc_packed_size(uk, bits, 2, 3));
    codebook_fc_pack(uk, bits, 2, 3, table.data(), bits == 4 ? idx4 : idx8, bits == 4 ? 2 : 3, bias,
                     packed.data());
    const CodebookFcKernels& f = uk.kernels(bits);
    float y[2];
    f.f32(1, 2, 3, x, 3, packed.data(), y, 2, CodebookF32Output{});
    CHECK(y[0] == 9.0f);
    CHECK(y[1] == 5.0f);
    f.f32(1, 2, 3, x, 3, packed.data(), y, 2, CodebookF32Output{0.0f, 6.0f});
    CHECK(y[0] == 6.0f);
    // int8 input, scale 0.5: y0 = 1 + 0.5 * 8 = 5, y1 = -1 + 0.5 * 6 = 2.
    const CodebookQs8Input in{0.5f, 1};
    f.qs8_f32(1, 2, 3, xq, 3, packed.data(), y, 2, in, CodebookF32Output{});
    CHECK(y[0] == 5.0f);
    CHECK(y[1] == 2.0f);
    // int8 output, scale 2, zero point -3: 2.5 rounds to 2 (half to even), 1; plus -3.
    int8_t q[2];
    f.qs8(1, 2, 3, xq, 3, packed.data(), q, 2, in, CodebookQs8Output{2.0f, -3, -128, 127});
    CHECK(int(q[0]) == -1);
    CHECK(int(q[1]) == -2);
    // Saturation and a clamp at the zero point (ReLU).
    f.qs8(1, 2, 3, xq, 3, packed.data(), q, 2, in, CodebookQs8Output{0.01f, 100, 100, 127});
    CHECK(int(q[0]) == 127);  // 500 + 100
    CHECK(int(q[1]) == 127);
    f.qs8(1, 2, 3, xq, 3, packed.data(), q, 2, CodebookQs8Input{-0.5f, 1},
          CodebookQs8Output{1.0f, 10, 10, 127});
    CHECK(int(q[0]) == 10);  // 1 - 4 = -3 clamps to the zero point
  }
}

TEST_CASE("codebook ref: agrees with the formula in double", "[kernels][codebook]") {
  Rng rng(11);
  Mismatches bad;
  for (const auto& [m, n, k] : shapes(rng, 200)) {
    for (unsigned bits : {4u, 8u}) {
      const Problem p = make_problem(rng, bits, m, n, k);
      const Outputs o = run(codebook_fc_ref, p);
      for (size_t i = 0; i < m; ++i) {
        for (size_t j = 0; j < n; ++j) {
          const Exact e = exact(p, i, j);
          const size_t at = i * p.y_stride + j;
          // int8: the exact value, requantised in double, within one step (rounding may tip a half).
          const double f = std::clamp(e.qs8 / p.out_q.scale, double(p.out_q.min - p.out_q.zero_point),
                                      double(p.out_q.max - p.out_q.zero_point));
          const double want_f32 = std::clamp<double>(e.f32, p.out_f32.min, p.out_f32.max);
          const double want_qs8_f32 = std::clamp<double>(e.qs8, p.out_f32.min, p.out_f32.max);
          const long want_qs8 = std::lrint(f) + p.out_q.zero_point;
          bad.check(std::fabs(o.f32[at] - want_f32) <= e.f32_bound &&
                        std::fabs(o.qs8_f32[at] - want_qs8_f32) <= e.qs8_bound &&
                        std::abs(int(o.qs8[at]) - want_qs8) <= 1,
                    [&] {
                      std::ostringstream s;
                      s << describe(p) << " at " << i << "," << j << ": f32 " << o.f32[at] << " vs "
                        << want_f32 << ", qs8_f32 " << o.qs8_f32[at] << " vs " << want_qs8_f32 << ", qs8 "
                        << int(o.qs8[at]) << " vs " << want_qs8;
                      return s.str();
                    });
        }
      }
    }
  }
  INFO(bad.first());
  CHECK(bad.count() == 0);
}

TEST_CASE("codebook: every variant on this CPU agrees with ref", "[kernels][codebook]") {
  Rng rng(12);
  const auto cases = shapes(rng, 1000);
  for (const CodebookFcUkernel* uk : codebook_fc_runnable()) {
    if (uk == &codebook_fc_ref) continue;
    DYNAMIC_SECTION(uk->name) {
      size_t qs8_off_by_one = 0;
      Mismatches bad;
      for (const auto& [m, n, k] : cases) {
        const Problem p = make_problem(rng, rng.coin(0.5) ? 4 : 8, m, n, k);
        const Outputs got = run(*uk, p), want = run(codebook_fc_ref, p);
        for (size_t at = 0; at < got.f32.size(); ++at) {
          bool ok;
          if (!inside(p, at)) {  // canaries untouched
            ok = std::memcmp(&got.f32[at], &kCanaryF, sizeof(float)) == 0 &&
                 std::memcmp(&got.qs8_f32[at], &kCanaryF, sizeof(float)) == 0 && got.qs8[at] == kCanaryQ;
          } else {
            const Exact e = exact(p, at / p.y_stride, at % p.y_stride);
            ok = std::fabs(got.f32[at] - want.f32[at]) <= e.f32_bound &&
                 std::fabs(got.qs8_f32[at] - want.qs8_f32[at]) <= e.qs8_bound &&
                 std::abs(int(got.qs8[at]) - int(want.qs8[at])) <= 1;
            qs8_off_by_one += got.qs8[at] != want.qs8[at];
          }
          bad.check(ok, [&] {
            std::ostringstream s;
            s << describe(p) << " at " << at / p.y_stride << "," << at % p.y_stride << ": f32 " << got.f32[at]
              << " vs " << want.f32[at] << ", qs8_f32 " << got.qs8_f32[at] << " vs " << want.qs8_f32[at]
              << ", qs8 " << int(got.qs8[at]) << " vs " << int(want.qs8[at]);
            return s.str();
          });
        }
      }
      INFO(uk->name << ": " << bad.first());
      CHECK(bad.count() == 0);
      WARN(uk->name << ": int8 outputs off by one from ref: " << qs8_off_by_one);
    }
  }
}

TEST_CASE("codebook builder: known clusters are recovered", "[kernels][codebook]") {
  Rng rng(13);
  for (unsigned bits : {4u, 8u}) {
    for (CodebookInit init : {CodebookInit::quantile, CodebookInit::kmeans_plus_plus}) {
      // As many well separated centres (exact in fp16) as the table has entries,
      // each with a few thousandths of noise.
      const size_t entries = codebook_entries(bits), n = 64, k = entries * 8 + 3;
      std::vector<float> centre(entries), w(n * k);
      for (size_t c = 0; c < entries; ++c) centre[c] = (static_cast<float>(c) - entries / 2.0f) * 0.25f;
      for (size_t i = 0; i < w.size(); ++i)
        w[i] = centre[i % entries] + 0.002f * (static_cast<float>(rng.uniform(0, 1000)) / 500.0f - 1.0f);
      const Codebook cb = codebook_build(n, k, w.data(), {bits, init, 7, 100});
      INFO("bits " << bits << " init " << int(init));
      REQUIRE(cb.table.size() == entries);
      for (size_t c = 0; c < entries; ++c) CHECK(std::fabs(fp16_to_fp32(cb.table[c]) - centre[c]) < 0.003f);
      CHECK(cb.max_abs_error < 0.004);
      // The indices name the nearest entry.
      const size_t row = codebook_row_bytes(bits, k);
      for (size_t i = 0; i < w.size(); ++i) {
        const float d =
            fp16_to_fp32(cb.table[codebook_index(bits, cb.indices.data() + (i / k) * row, i % k)]);
        REQUIRE(d == fp16_to_fp32(cb.table[i % entries]));
      }
      // Deterministic.
      const Codebook again = codebook_build(n, k, w.data(), {bits, init, 7, 100});
      CHECK(again.table == cb.table);
      CHECK(again.indices == cb.indices);
    }
  }
}

TEST_CASE("codebook builder: error falls from 16 to 256 entries", "[kernels][codebook]") {
  Rng rng(14);
  const size_t n = 96, k = 200;
  std::vector<float> w(n * k);
  for (auto& v : w) v = rng.normal() * 0.05f;
  double var = 0;
  for (float v : w) var += double(v) * v;
  var /= static_cast<double>(w.size());
  for (CodebookInit init : {CodebookInit::quantile, CodebookInit::kmeans_plus_plus}) {
    const Codebook c4 = codebook_build(n, k, w.data(), {4, init, 3, 100});
    const Codebook c8 = codebook_build(n, k, w.data(), {8, init, 3, 100});
    INFO("mse4 " << c4.mse << " mse8 " << c8.mse << " var " << var);
    // Lloyd-Max for a Gaussian: 16 levels leave about 0.0095 of the variance.
    CHECK(c4.mse < 0.012 * var);
    CHECK(c8.mse < c4.mse / 20);
    // mse is what the indices and table reconstruct.
    double sse = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      const double d =
          w[i] - fp16_to_fp32(c4.table[codebook_index(4, c4.indices.data() + (i / k) * (k / 2), i % k)]);
      sse += d * d;
    }
    CHECK(std::fabs(sse / static_cast<double>(w.size()) - c4.mse) <= 1e-9 * var);
  }
}

TEST_CASE("codebook: a column range of the packed weights runs on its own", "[kernels][codebook]") {
  Rng rng(15);
  for (const CodebookFcUkernel* uk : codebook_fc_runnable()) {
    for (unsigned bits : {4u, 8u}) {
      const Problem p = make_problem(rng, bits, 5, 5 * uk->nr + 3, 77);
      const std::vector<uint8_t> packed = pack(*uk, p);
      const size_t n0 = 2 * uk->nr;
      std::vector<uint8_t> tail(codebook_fc_packed_size(*uk, bits, p.n - n0, p.k));
      // The blocks of columns n0.. follow the table of a buffer of their own.
      std::memcpy(tail.data(), packed.data(), codebook_fc_table_bytes(bits));
      std::memcpy(tail.data() + codebook_fc_table_bytes(bits),
                  packed.data() + codebook_fc_table_bytes(bits) +
                      n0 / uk->nr * codebook_fc_block_bytes(*uk, bits, p.k),
                  tail.size() - codebook_fc_table_bytes(bits));
      std::vector<float> whole(p.y_stride * p.m), split(p.y_stride * p.m);
      const CodebookFcKernels& f = uk->kernels(bits);
      f.f32(p.m, p.n, p.k, p.xf.data(), p.x_stride, packed.data(), whole.data(), p.y_stride, p.out_f32);
      f.f32(p.m, n0, p.k, p.xf.data(), p.x_stride, packed.data(), split.data(), p.y_stride, p.out_f32);
      f.f32(p.m, p.n - n0, p.k, p.xf.data(), p.x_stride, tail.data(), split.data() + n0, p.y_stride,
            p.out_f32);
      INFO(uk->name);
      CHECK(whole == split);
    }
  }
}

TEST_CASE("codebook: k = 0 gives the bias; m = 0 or n = 0 writes nothing", "[kernels][codebook]") {
  const std::vector<uint16_t> table(256, 0x3c00);
  const float bias[] = {1.5f, -2.0f, 3.0f, 0.25f, 7.0f};
  const float x[2] = {};
  for (const CodebookFcUkernel* uk : codebook_fc_runnable()) {
    for (unsigned bits : {4u, 8u}) {
      INFO(uk->name << " bits " << bits);
      std::vector<uint8_t> packed(codebook_fc_packed_size(*uk, bits, 5, 0));
      codebook_fc_pack(*uk, bits, 5, 0, table.data(), nullptr, 0, bias, packed.data());
      const CodebookFcKernels& f = uk->kernels(bits);
      std::vector<float> y(12, kCanaryF);
      f.f32(2, 5, 0, x, 0, packed.data(), y.data(), 6, CodebookF32Output{});
      for (size_t i = 0; i < 2; ++i)
        for (size_t j = 0; j < 5; ++j) CHECK(y[i * 6 + j] == bias[j]);
      CHECK(y[5] == kCanaryF);
      std::vector<float> untouched(12, kCanaryF);
      f.f32(0, 5, 0, x, 0, packed.data(), untouched.data(), 6, CodebookF32Output{});
      f.f32(2, 0, 0, x, 0, packed.data(), untouched.data(), 6, CodebookF32Output{});
      CHECK(untouched == std::vector<float>(12, kCanaryF));
    }
  }
}
