#include "bench/peak.h"

#include "bench/clock.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace huddle::bench {
namespace {

using kernels::Isa;

// One peak loop: `iters` iterations of `macs_per_iter` multiply-accumulates.
struct Loop {
  const char* what;
  Isa isa;
  double macs_per_iter;
  void (*run)(size_t iters);
};

#if defined(__x86_64__)

// 24 vpdpbusd zmm per iteration into 24 independent accumulators
// (64 u8 x s8 products each); written in assembly so nothing is hoisted.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void vpdpbusd_zmm(size_t iters) {
  asm volatile(
      "1:\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm0\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm1\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm2\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm3\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm4\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm5\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm6\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm7\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm8\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm9\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm10\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm11\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm12\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm13\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm14\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm15\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm16\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm17\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm18\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm19\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm20\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm21\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm22\n\t vpdpbusd %%zmm30, %%zmm31, %%zmm23\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      "vzeroupper"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22",
        "xmm23", "xmm30", "xmm31", "cc");
}

// 12 vpmaddwd ymm per iteration (16 int16 x int16 products each), each
// added into one of 6 accumulators as the AVX2 kernel does.
void vpmaddwd_ymm(size_t iters) {
  asm volatile(
      "1:\n\t"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm6\n\t vpaddd %%ymm6, %%ymm0, %%ymm0\n\t"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm7\n\t vpaddd %%ymm7, %%ymm1, %%ymm1\n\t"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm8\n\t vpaddd %%ymm8, %%ymm2, %%ymm2\n\t"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm9\n\t vpaddd %%ymm9, %%ymm3, %%ymm3\n\t"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm10\n\t vpaddd %%ymm10, %%ymm4, %%ymm4\n\t"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm11\n\t vpaddd %%ymm11, %%ymm5, %%ymm5\n\t"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm6\n\t vpaddd %%ymm6, %%ymm0, %%ymm0\n\t"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm7\n\t vpaddd %%ymm7, %%ymm1, %%ymm1\n\t"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm8\n\t vpaddd %%ymm8, %%ymm2, %%ymm2\n\t"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm9\n\t vpaddd %%ymm9, %%ymm3, %%ymm3\n\t"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm10\n\t vpaddd %%ymm10, %%ymm4, %%ymm4\n\t"
      "vpmaddwd %%ymm14, %%ymm15, %%ymm11\n\t vpaddd %%ymm11, %%ymm5, %%ymm5\n\t"
      "dec %0\n\t"
      "jnz 1b\n\t"
      "vzeroupper"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "xmm14", "xmm15", "cc");
}

const Loop kLoops[] = {
    {"vpmaddwd+vpaddd ymm", Isa::avx2, 12 * 16, vpmaddwd_ymm},
    {"vpdpbusd zmm", Isa::avx512vnni, 24 * 64, vpdpbusd_zmm},
};

#elif defined(__aarch64__)

// 24 independent accumulators, each instruction depending only on its own
// previous result; the empty asm keeps the results (and so the loop) alive.
// A macro rather than a template: each loop needs its function's target.
#define HUDDLE_PEAK_LOOP(Acc, init, step)                                \
  Acc acc[24];                                                           \
  for (int j = 0; j < 24; ++j) acc[j] = init;                            \
  for (size_t i = 0; i < iters; ++i) {                                   \
    _Pragma("GCC unroll 24") for (int j = 0; j < 24; ++j) acc[j] = step; \
  }                                                                      \
  for (int j = 0; j < 24; ++j) asm volatile("" : : "w"(acc[j]))

// SMLAL .8h (8 int8 products into int16), the baseline NEON kernel's instruction.
void smlal_8h(size_t iters) {
  int8x8_t a = vdup_n_s8(1), b = vdup_n_s8(2);
  asm volatile("" : "+w"(a), "+w"(b));
  HUDDLE_PEAK_LOOP(int16x8_t, vdupq_n_s16(0), vmlal_s8(acc[j], a, b));
}

// SDOT .4s (16 int8 products).
__attribute__((target("arch=armv8.2-a+dotprod"))) void sdot_4s(size_t iters) {
  int8x16_t a = vdupq_n_s8(1), b = vdupq_n_s8(2);
  asm volatile("" : "+w"(a), "+w"(b));
  HUDDLE_PEAK_LOOP(int32x4_t, vdupq_n_s32(0), vdotq_s32(acc[j], a, b));
}

// SMMLA (a 2x8 by 8x2 int8 matrix product: 32 products).
__attribute__((target("arch=armv8.6-a+i8mm"))) void smmla_4s(size_t iters) {
  int8x16_t a = vdupq_n_s8(1), b = vdupq_n_s8(2);
  asm volatile("" : "+w"(a), "+w"(b));
  HUDDLE_PEAK_LOOP(int32x4_t, vdupq_n_s32(0), vmmlaq_s32(acc[j], a, b));
}

const Loop kLoops[] = {
    {"smlal .8h", Isa::neon, 24 * 8, smlal_8h},
    {"sdot .4s", Isa::neondot, 24 * 16, sdot_4s},
    {"smmla .4s", Isa::i8mm, 24 * 32, smmla_4s},
};

#else
const Loop kLoops[] = {};
#endif

// Iterations of `loop` that take at least `seconds` of thread CPU time.
size_t calibrate(const Loop& loop, double seconds) {
  size_t iters = 1000;
  for (;;) {
    const double t0 = thread_seconds();
    loop.run(iters);
    if (thread_seconds() - t0 >= seconds) return iters;
    iters *= 2;
  }
}

}  // namespace

std::vector<PeakLoop> peak_loops() {
  std::vector<PeakLoop> out;
  for (const Loop& loop : kLoops) {
    if (!kernels::isa_runnable(loop.isa)) continue;
    const size_t iters = calibrate(loop, 1e-3);
    out.push_back({loop.what, loop.isa, static_cast<double>(iters) * loop.macs_per_iter,
                   [run = loop.run, iters] { run(iters); }});
  }
  return out;
}

const Peak* peak_for(const std::vector<Peak>& peaks, kernels::Isa isa) {
  const Peak* best = nullptr;
  for (const Peak& p : peaks)
    if (kernels::isa_implies(isa, p.isa)) best = &p;  // lowest tier first: the last match is the best
  if (!best)
    for (const Peak& p : peaks)
      if (!best || p.gmacs > best->gmacs) best = &p;
  return best;
}

}  // namespace huddle::bench
