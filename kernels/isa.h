// Instruction-set variants a kernel can be written for, and what this CPU runs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace huddle::kernels {

// Every variant name a user can force with HUDDLE_ISA. Order matters: within
// one architecture a later entry is preferred and implies the earlier ones.
enum class Isa : uint8_t { ref, avx2, avx512vnni, neon, neondot, i8mm };

// "ref", "avx2", "avx512vnni", "neon", "neondot", "i8mm".
const char* isa_name(Isa isa);
// The Isa called `name`, or nothing when no variant has that name.
std::optional<Isa> parse_isa(std::string_view name);

// True when this build contains code for `isa` and this CPU (and OS) can run it.
bool isa_runnable(Isa isa);
// The runnable variants, best last ("ref" always first).
std::vector<Isa> runnable_isas();
// True when code written for `lower` may run wherever `upper` runs
// (ref under everything; avx2 under avx512vnni; neon under neondot under i8mm).
bool isa_implies(Isa upper, Isa lower);

// The variant kernels are selected for: HUDDLE_ISA when set, else the best
// runnable one. Throws std::runtime_error naming the problem when HUDDLE_ISA
// is unknown or names a variant this CPU cannot run.
Isa selected_isa();
// Same rule for an explicit request (nullptr or "" = best runnable).
Isa choose_isa(const char* request);

// The variant of a family to use for `isa`: among `all` (each with an `isa`
// member), the best one whose isa `isa` implies. `all` must contain a ref variant.
template <class Variant>
const Variant& best_variant(const std::vector<const Variant*>& all, Isa isa) {
  const Variant* best = nullptr;
  for (const Variant* v : all)
    if (isa_implies(isa, v->isa) && (!best || static_cast<int>(v->isa) > static_cast<int>(best->isa))) best = v;
  return *best;
}

// The variants of a family this CPU runs, in table order.
template <class Variant>
std::vector<const Variant*> runnable_variants(const std::vector<const Variant*>& all) {
  std::vector<const Variant*> out;
  for (const Variant* v : all)
    if (isa_runnable(v->isa)) out.push_back(v);
  return out;
}

// One line describing the CPU features read, e.g. "avx2 fma avx512vnni avxvnni".
std::string cpu_feature_summary();

}  // namespace huddle::kernels
