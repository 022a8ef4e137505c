// `huddle selftest`: every int8 GEMM variant this CPU runs, checked bit for
// bit against the scalar reference on random shapes, then timed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.h"
#include "tools/arguments.h"
#include "tools/commands.h"

namespace huddle::tools {
namespace {

using namespace huddle::kernels;

constexpr const char* kHelp =
    "usage: huddle selftest [--shapes N] [--size S] [--runs R]\n"
    "\n"
    "Checks every int8 GEMM kernel variant this CPU runs against the scalar\n"
    "reference on N random shapes (default 200), then times an S x S x S GEMM\n"
    "(default 512) on one thread, median of R runs (default 7).\n"
    "Exit status: 0 all variants bit-exact, 1 a mismatch, 2 usage error.\n";

struct Gemm {
  size_t m, n, k;
  int32_t a_zp;
  QGemmOutput out;
  std::vector<int8_t> a, w;
  std::vector<int32_t> bias;
  std::vector<float> scale;
};

Gemm random_gemm(std::mt19937& gen, size_t m, size_t n, size_t k) {
  std::uniform_int_distribution<int> byte(-128, 127), weight(-127, 127), zp(-128, 127);
  Gemm g{m, n, k, zp(gen), {static_cast<int32_t>(zp(gen)) / 2, -128, 127}, {}, {}, {}, {}};
  g.a.resize(m * k);
  g.w.resize(n * k);
  for (auto& v : g.a) v = static_cast<int8_t>(byte(gen));
  for (auto& v : g.w) v = static_cast<int8_t>(weight(gen));
  g.bias.resize(n);
  g.scale.resize(n);
  for (auto& v : g.bias) v = byte(gen) * 100;
  for (auto& v : g.scale)
    v = (1.0f + static_cast<float>(byte(gen) + 128) / 64.0f) / (64.0f * static_cast<float>(k));
  return g;
}

std::vector<int8_t> run(const QGemmUkernel& uk, const Gemm& g) {
  std::vector<uint8_t> packed(qgemm_packed_size(uk, g.n, g.k));
  qgemm_pack(uk, g.n, g.k, g.w.data(), g.bias.data(), g.scale.data(), g.a_zp, packed.data());
  std::vector<int8_t> c(g.m * g.n);
  uk.gemm(g.m, g.n, g.k, g.a.data(), g.k, packed.data(), c.data(), g.n, g.out);
  return c;
}

double median_ms(const QGemmUkernel& uk, const Gemm& g, int runs) {
  std::vector<uint8_t> packed(qgemm_packed_size(uk, g.n, g.k));
  qgemm_pack(uk, g.n, g.k, g.w.data(), g.bias.data(), g.scale.data(), g.a_zp, packed.data());
  std::vector<int8_t> c(g.m * g.n);
  std::vector<double> ms;
  for (int r = 0; r < runs + 1; ++r) {  // the first run warms caches and is dropped
    const auto t0 = std::chrono::steady_clock::now();
    uk.gemm(g.m, g.n, g.k, g.a.data(), g.k, packed.data(), c.data(), g.n, g.out);
    const auto t1 = std::chrono::steady_clock::now();
    if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int selftest(int argc, char** argv) {
  long shapes = 200, size = 512, runs = 7;
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (!std::strcmp(arg, "--help") || !std::strcmp(arg, "-h")) {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (!std::strcmp(arg, "--shapes")) {
      if (!parse_count("selftest", arg, value, 1, 1000000, &shapes)) return 2;
      ++i;
    } else if (!std::strcmp(arg, "--size")) {
      if (!parse_count("selftest", arg, value, 1, 4096, &size)) return 2;
      ++i;
    } else if (!std::strcmp(arg, "--runs")) {
      if (!parse_count("selftest", arg, value, 1, 1000, &runs)) return 2;
      ++i;
    } else {
      std::fprintf(stderr, "huddle selftest: unknown option '%s' (see 'huddle selftest --help')\n", arg);
      return 2;
    }
  }

  const std::vector<const QGemmUkernel*> variants = qgemm_runnable();
  std::printf("huddle selftest: int8 GEMM, %zu variants on this CPU (%s); selected: %s\n", variants.size(),
              cpu_feature_summary().c_str(), qgemm().name);

  std::printf("\ncheck: %ld random shapes per variant, bit-exact against %s\n", shapes, qgemm_ref.name);
  int failures = 0;
  for (const QGemmUkernel* uk : variants) {
    if (uk == &qgemm_ref) continue;
    std::mt19937 gen(42);
    std::uniform_int_distribution<size_t> dm(1, 33), dn(1, 70), dk(1, 400);
    long ok = 0;
    for (long s = 0; s < shapes; ++s) {
      const Gemm g = random_gemm(gen, dm(gen), dn(gen), dk(gen));
      if (run(*uk, g) == run(qgemm_ref, g)) {
        ++ok;
      } else if (ok == s) {  // report the first mismatch only
        std::printf("  MISMATCH %s at m=%zu n=%zu k=%zu\n", uk->name, g.m, g.n, g.k);
      }
    }
    std::printf("  %-32s %ld/%ld bit-exact\n", uk->name, ok, shapes);
    failures += ok != shapes;
  }

  const size_t s = static_cast<size_t>(size);
  std::mt19937 gen(7);
  const Gemm g = random_gemm(gen, s, s, s);
  const double macs = static_cast<double>(s) * s * s;
  std::printf("\nspeed: %zux%zux%zu int8 GEMM, 1 thread, median of %ld runs\n", s, s, s, runs);
  std::printf("  %-32s %10s %10s %10s\n", "variant", "ms", "GMAC/s", "vs ref");
  double ref_ms = 0;
  for (const QGemmUkernel* uk : variants) {
    // The scalar reference is slow: fewer runs keep the command quick.
    const double ms = median_ms(*uk, g, uk == &qgemm_ref ? std::min<long>(runs, 3) : runs);
    if (uk == &qgemm_ref) ref_ms = ms;
    std::printf("  %-32s %10.3f %10.2f %9.1fx\n", uk->name, ms, macs / ms * 1e-6, ref_ms / ms);
  }
  std::printf("\n%s\n",
              failures ? "FAILED: a variant disagrees with the reference" : "all variants bit-exact");
  return failures ? 1 : 0;
}

}  // namespace huddle::tools
