#include "kernels/isa.h"

#include <array>
#include <cstdlib>
#include <stdexcept>

#if defined(__x86_64__)
#include <cpuid.h>
#elif defined(__aarch64__)
#include <sys/auxv.h>
#endif

namespace huddle::kernels {
namespace {

constexpr std::array<const char*, 6> kIsaNames = {"ref", "avx2", "avx512vnni", "neon", "neondot", "i8mm"};

struct CpuFeatures {
  bool avx2 = false, fma = false, avx512vnni = false, avxvnni = false;
  bool neon = false, neondot = false, i8mm = false;
};

#if defined(__x86_64__)
uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (uint64_t(edx) << 32) | eax;
}
#endif

CpuFeatures read_cpu_features() {
  CpuFeatures f;
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  f.fma = c & (1u << 12);
  if (!osxsave) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;              // SSE and AVX state
  const bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  f.avx2 = os_ymm && (b & (1u << 5));
  const bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30);
  f.avx512vnni = os_zmm && avx512f && avx512bw && (c & (1u << 11));
  __cpuid_count(7, 1, a, b, c, d);
  f.avxvnni = os_ymm && (a & (1u << 4));
  f.fma = f.fma && os_ymm;
#elif defined(__aarch64__)
  const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
  f.neon = hw & (1ul << 1);      // HWCAP_ASIMD
  f.neondot = hw & (1ul << 20);  // HWCAP_ASIMDDP
  f.i8mm = hw2 & (1ul << 13);    // HWCAP2_I8MM
#endif
  return f;
}

const CpuFeatures& cpu() {
  static const CpuFeatures features = read_cpu_features();
  return features;
}

// Which variants this build contains code for.
constexpr bool compiled_in(Isa isa) {
  switch (isa) {
    case Isa::ref:
      return true;
#if defined(__x86_64__)
    case Isa::avx2:
      return true;
    case Isa::avx512vnni:
      return true;
#elif defined(__aarch64__)
    case Isa::neon:
      return true;
    case Isa::neondot:
      return true;
    case Isa::i8mm:
      return true;
#endif
    default:
      return false;
  }
}

std::string runnable_list() {
  std::string s;
  for (Isa isa : runnable_isas()) s += std::string(s.empty() ? "" : ", ") + isa_name(isa);
  return s;
}

}  // namespace

const char* isa_name(Isa isa) { return kIsaNames[static_cast<size_t>(isa)]; }

std::optional<Isa> parse_isa(std::string_view name) {
  for (size_t i = 0; i < kIsaNames.size(); ++i)
    if (name == kIsaNames[i]) return static_cast<Isa>(i);
  return std::nullopt;
}

bool isa_runnable(Isa isa) {
  if (!compiled_in(isa)) return false;
  const CpuFeatures& f = cpu();
  switch (isa) {
    case Isa::ref:
      return true;
    case Isa::avx2:
      return f.avx2 && f.fma;
    case Isa::avx512vnni:
      return f.avx2 && f.fma && f.avx512vnni;
    case Isa::neon:
      return f.neon;
    case Isa::neondot:
      return f.neon && f.neondot;
    case Isa::i8mm:
      return f.neon && f.neondot && f.i8mm;
  }
  return false;
}

std::vector<Isa> runnable_isas() {
  std::vector<Isa> out;
  for (size_t i = 0; i < kIsaNames.size(); ++i)
    if (isa_runnable(static_cast<Isa>(i))) out.push_back(static_cast<Isa>(i));
  return out;
}

bool isa_implies(Isa upper, Isa lower) {
  if (lower == Isa::ref || upper == lower) return true;
  const bool upper_x86 = upper == Isa::avx2 || upper == Isa::avx512vnni;
  const bool lower_x86 = lower == Isa::avx2 || lower == Isa::avx512vnni;
  if (upper == Isa::ref || upper_x86 != lower_x86) return false;
  return static_cast<int>(lower) < static_cast<int>(upper);
}

Isa choose_isa(const char* request) {
  if (request == nullptr || *request == '\0') return runnable_isas().back();
  const std::optional<Isa> isa = parse_isa(request);
  if (!isa) {
    throw std::runtime_error(std::string("HUDDLE_ISA=") + request +
                             ": no such kernel variant (known: ref, avx2, avx512vnni, neon, "
                             "neondot, i8mm; this CPU runs: " +
                             runnable_list() + ")");
  }
  if (!isa_runnable(*isa)) {
    throw std::runtime_error(std::string("HUDDLE_ISA=") + request + ": this CPU " +
                             (compiled_in(*isa) ? "cannot run it" : "is of another architecture") +
                             " (it runs: " + runnable_list() + ")");
  }
  return *isa;
}

Isa selected_isa() {
  static const Isa isa = choose_isa(std::getenv("HUDDLE_ISA"));
  return isa;
}

std::string cpu_feature_summary() {
  const CpuFeatures& f = cpu();
  std::string s;
  auto add = [&s](bool on, const char* name) {
    if (on) s += std::string(s.empty() ? "" : " ") + name;
  };
#if defined(__x86_64__)
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.avx512vnni, "avx512vnni");
  add(f.avxvnni, "avxvnni");
#elif defined(__aarch64__)
  add(f.neon, "asimd");
  add(f.neondot, "asimddp");
  add(f.i8mm, "i8mm");
#endif
  return s.empty() ? "none" : s;
}

}  // namespace huddle::kernels
