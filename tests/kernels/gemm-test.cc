// The int8 GEMM family: the reference against the quantisation formula, and
// every variant this CPU runs against the reference, bit for bit.
#include "kernels/gemm/gemm.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>

#include "tests/kernels/shapes.h"

using namespace huddle::kernels;
using huddle::test::Rng;

namespace {

struct Problem {
  size_t m, n, k, a_stride, c_stride;
  int32_t a_zp;
  QGemmOutput out;
  std::vector<int8_t> a, w;
  std::vector<int32_t> bias;
  std::vector<float> scale;
};

std::string describe(const Problem& p) {
  std::ostringstream s;
  s << "m=" << p.m << " n=" << p.n << " k=" << p.k << " a_stride=" << p.a_stride << " c_stride=" << p.c_stride
    << " a_zp=" << p.a_zp << " out_zp=" << p.out.zero_point << " min=" << int(p.out.min)
    << " max=" << int(p.out.max);
  return s.str();
}

Problem make_problem(Rng& rng, size_t m, size_t n, size_t k) {
  Problem p;
  p.m = m, p.n = n, p.k = k;
  p.a_stride = k + (rng.coin(0.3) ? rng.uniform(1, 9) : 0);
  p.c_stride = n + (rng.coin(0.3) ? rng.uniform(1, 9) : 0);
  p.a_zp = rng.pick({-128, 127, 0, static_cast<int32_t>(rng.uniform(0, 255)) - 128});
  p.out.zero_point = rng.pick({-128, 127, 0, static_cast<int32_t>(rng.uniform(0, 255)) - 128});
  p.out.min = -128, p.out.max = 127;
  if (rng.coin(0.3)) {  // a ReLU / ReLU6-like clamp somewhere in range
    const int lo = static_cast<int>(rng.uniform(0, 200)) - 128;
    p.out.min = static_cast<int8_t>(lo);
    p.out.max = static_cast<int8_t>(lo + static_cast<int>(rng.uniform(0, 127 - lo)));
  }
  p.a.resize(p.a_stride * m);
  for (auto& v : p.a) v = static_cast<int8_t>(rng.uniform(0, 255) - 128);
  p.w.resize(n * k);
  const bool extreme = rng.coin(0.2);  // all weights at +-127, to reach the accumulator's limits
  for (auto& v : p.w)
    v = extreme ? (rng.coin(0.5) ? 127 : -127) : static_cast<int8_t>(rng.uniform(0, 254) - 127);
  p.bias.resize(n);
  for (auto& v : p.bias) v = static_cast<int32_t>(rng.uniform(0, 200000)) - 100000;
  p.scale.resize(n);
  // Scales spread so outputs cover the range and saturate on both sides.
  const float base = 1.0f / (128.0f * std::sqrt(static_cast<float>(k)) * 8.0f);
  for (auto& v : p.scale) v = base * std::exp2(static_cast<float>(rng.uniform(0, 80)) / 10.0f);
  return p;
}

std::vector<uint8_t> pack(const QGemmUkernel& uk, const Problem& p) {
  std::vector<uint8_t> packed(qgemm_packed_size(uk, p.n, p.k));
  qgemm_pack(uk, p.n, p.k, p.w.data(), p.bias.data(), p.scale.data(), p.a_zp, packed.data());
  return packed;
}

// C with a canary border: the kernel must write exactly the m x n cells.
constexpr int8_t kCanary = 0x5a;

std::vector<int8_t> run(const QGemmUkernel& uk, const Problem& p) {
  const std::vector<uint8_t> packed = pack(uk, p);
  std::vector<int8_t> c(p.c_stride * p.m + 16, kCanary);
  uk.gemm(p.m, p.n, p.k, p.a.data(), p.a_stride, packed.data(), c.data(), p.c_stride, p.out);
  return c;
}

std::vector<int32_t> run_i32(const QGemmUkernel& uk, const Problem& p) {
  const std::vector<uint8_t> packed = pack(uk, p);
  std::vector<int32_t> c(p.c_stride * p.m + 16, 0x5a5a5a5a);
  uk.gemm_i32(p.m, p.n, p.k, p.a.data(), p.a_stride, packed.data(), c.data(), p.c_stride);
  return c;
}

// Shapes around the tiles of every variant, plus random ones.
std::vector<std::array<size_t, 3>> shapes(Rng& rng, size_t count) {
  std::vector<std::array<size_t, 3>> out;
  std::vector<size_t> ms = {1, 2, 3}, ns = {1, 2, 3}, ks = {1, 2, 3};
  for (const QGemmUkernel* uk : qgemm_all()) {
    for (size_t d : {size_t{0}, size_t{1}, size_t{2}}) {
      for (size_t t : {uk->mr, 2 * uk->mr}) ms.push_back(t + d - 1);
      for (size_t t : {uk->nr, 2 * uk->nr}) ns.push_back(t + d - 1);
      for (size_t t : {uk->kr, 2 * uk->kr}) ks.push_back(t + d - 1);
    }
  }
  for (size_t m : ms)
    for (size_t n : ns) out.push_back({m, n, ks[rng.uniform(0, ks.size() - 1)]});
  while (out.size() < count) {
    const size_t k = rng.coin(0.1) ? rng.uniform(512, 3000) : rng.uniform(1, 300);
    out.push_back({rng.uniform(1, 40), rng.uniform(1, 80), k});
  }
  return out;
}

}  // namespace

TEST_CASE("qgemm ref: hand-computed cases", "[kernels][gemm]") {
  const QGemmUkernel& uk = qgemm_ref;
  // A = [1 2], W = [[3 4], [-1 1]], bias = [5, 0], a_zp = 0: acc = [16, 1].
  const int8_t a[] = {1, 2}, w[] = {3, 4, -1, 1};
  const int32_t bias[] = {5, 0};
  const float scale[] = {0.5f, 2.5f};
  std::vector<uint8_t> packed(qgemm_packed_size(uk, 2, 2));
  qgemm_pack(uk, 2, 2, w, bias, scale, 0, packed.data());
  int8_t c[2];
  uk.gemm(1, 2, 2, a, 2, packed.data(), c, 2, QGemmOutput{});
  CHECK(int(c[0]) == 8);  // 16 * 0.5
  CHECK(int(c[1]) == 2);  // 1 * 2.5 = 2.5 rounds half to even
  int32_t c32[2];
  uk.gemm_i32(1, 2, 2, a, 2, packed.data(), c32, 2);
  CHECK(c32[0] == 16);
  CHECK(c32[1] == 1);
  // Input zero point 3: (1-3)*3 + (2-3)*4 + 5 = -5; (1-3)*-1 + (2-3)*1 = 1.
  qgemm_pack(uk, 2, 2, w, bias, scale, 3, packed.data());
  uk.gemm_i32(1, 2, 2, a, 2, packed.data(), c32, 2);
  CHECK(c32[0] == -5);
  CHECK(c32[1] == 1);
  uk.gemm(1, 2, 2, a, 2, packed.data(), c, 2, QGemmOutput{});
  CHECK(int(c[0]) == -2);  // -2.5 rounds half to even
  // Output zero point 10 and a ReLU clamp at the zero point.
  uk.gemm(1, 2, 2, a, 2, packed.data(), c, 2, QGemmOutput{10, 10, 127});
  CHECK(int(c[0]) == 10);
  CHECK(int(c[1]) == 12);  // 2.5 -> 2, + 10
  // Saturation: 1000 * 1.0 clamps to 127.
  const float big[] = {100.0f, 100.0f};
  qgemm_pack(uk, 2, 2, w, bias, big, 0, packed.data());
  uk.gemm(1, 2, 2, a, 2, packed.data(), c, 2, QGemmOutput{});
  CHECK(int(c[0]) == 127);
}

TEST_CASE("qgemm ref: agrees with the quantisation formula on unpacked weights", "[kernels][gemm]") {
  Rng rng(1);
  for (const auto& [m, n, k] : shapes(rng, 300)) {
    const Problem p = make_problem(rng, m, n, k);
    const std::vector<int8_t> c = run(qgemm_ref, p);
    const std::vector<int32_t> c32 = run_i32(qgemm_ref, p);
    for (size_t i = 0; i < m; ++i) {
      for (size_t j = 0; j < n; ++j) {
        int64_t acc = p.bias[j];
        for (size_t kk = 0; kk < k; ++kk)
          acc += (int64_t{p.a[i * p.a_stride + kk]} - p.a_zp) * p.w[j * k + kk];
        REQUIRE(c32[i * p.c_stride + j] == acc);
        double f = static_cast<double>(static_cast<float>(acc) * p.scale[j]);
        f = std::clamp(f, double(p.out.min - p.out.zero_point), double(p.out.max - p.out.zero_point));
        const long q = std::lrint(f) + p.out.zero_point;
        INFO(describe(p) << " at " << i << "," << j);
        REQUIRE(int(c[i * p.c_stride + j]) == q);
      }
    }
  }
}

TEST_CASE("qgemm: every variant on this CPU is bit-exact with ref", "[kernels][gemm]") {
  Rng rng(2);
  const auto cases = shapes(rng, 1200);
  for (const QGemmUkernel* uk : qgemm_runnable()) {
    if (uk == &qgemm_ref) continue;
    DYNAMIC_SECTION(uk->name) {
      for (const auto& [m, n, k] : cases) {
        const Problem p = make_problem(rng, m, n, k);
        INFO(uk->name << " " << describe(p));
        REQUIRE(run(*uk, p) == run(qgemm_ref, p));
        REQUIRE(run_i32(*uk, p) == run_i32(qgemm_ref, p));
      }
    }
  }
}

TEST_CASE("qgemm: a column range of the packed weights runs on its own", "[kernels][gemm]") {
  Rng rng(3);
  for (const QGemmUkernel* uk : qgemm_runnable()) {
    const Problem p = make_problem(rng, 7, 5 * uk->nr + 3, 77);
    const std::vector<uint8_t> packed = pack(*uk, p);
    std::vector<int8_t> whole(p.c_stride * p.m), split(p.c_stride * p.m);
    uk->gemm(p.m, p.n, p.k, p.a.data(), p.a_stride, packed.data(), whole.data(), p.c_stride, p.out);
    const size_t n0 = 2 * uk->nr;
    uk->gemm(p.m, n0, p.k, p.a.data(), p.a_stride, packed.data(), split.data(), p.c_stride, p.out);
    uk->gemm(p.m, p.n - n0, p.k, p.a.data(), p.a_stride, qgemm_packed_at(*uk, packed.data(), p.k, n0),
             split.data() + n0, p.c_stride, p.out);
    INFO(uk->name);
    CHECK(whole == split);
  }
}

TEST_CASE("isa: the variants this CPU runs are the ones expected", "[kernels][isa]") {
  // scripts/test sets HUDDLE_EXPECT_ISAS for each emulated CPU, so a qemu -cpu
  // setting that silently did not take effect fails here.
  const char* expect = std::getenv("HUDDLE_EXPECT_ISAS");
  std::string got;
  for (Isa isa : runnable_isas()) got += std::string(got.empty() ? "" : " ") + isa_name(isa);
  INFO("runnable: " << got << "; cpu: " << cpu_feature_summary());
  if (expect) CHECK(got == expect);
  CHECK(runnable_isas().front() == Isa::ref);
}

TEST_CASE("isa: HUDDLE_ISA requests are honoured or refused clearly", "[kernels][isa]") {
  CHECK(choose_isa(nullptr) == runnable_isas().back());
  CHECK(choose_isa("ref") == Isa::ref);
  CHECK(&qgemm_for(Isa::ref) == &qgemm_ref);
  CHECK_THROWS_WITH(choose_isa("sse9"), Catch::Contains("HUDDLE_ISA=sse9: no such kernel variant"));
#if defined(__x86_64__)
  CHECK_THROWS_WITH(choose_isa("neon"), Catch::Contains("another architecture"));
#else
  CHECK_THROWS_WITH(choose_isa("avx2"), Catch::Contains("another architecture"));
#endif
  for (Isa isa : runnable_isas()) {
    CHECK(choose_isa(isa_name(isa)) == isa);
    CHECK(isa_implies(isa, qgemm_for(isa).isa));
  }
}
