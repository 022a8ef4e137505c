// The tables of elementwise, table lookup and pooling variants and the choice among them.
#include "kernels/elementwise/elementwise.h"
#include "kernels/elementwise/pool.h"

namespace huddle::kernels {

const std::vector<const QElementwiseUkernel*>& qs8_elementwise_all() {
  static const std::vector<const QElementwiseUkernel*> all = {
    &qs8_elementwise_ref,
#if defined(__x86_64__)
    &qs8_elementwise_avx2,
#elif defined(__aarch64__)
    &qs8_elementwise_neon,
#endif
  };
  return all;
}

std::vector<const QElementwiseUkernel*> qs8_elementwise_runnable() {
  return runnable_variants(qs8_elementwise_all());
}

const QElementwiseUkernel& qs8_elementwise_for(Isa isa) { return best_variant(qs8_elementwise_all(), isa); }

const QElementwiseUkernel& qs8_elementwise() {
  static const QElementwiseUkernel& chosen = qs8_elementwise_for(selected_isa());
  return chosen;
}

const std::vector<const QLutUkernel*>& x8_lut_all() {
  static const std::vector<const QLutUkernel*> all = {
    &x8_lut_ref,
#if defined(__x86_64__)
    &x8_lut_avx2,
    &x8_lut_avx512,
#elif defined(__aarch64__)
    &x8_lut_neon,
#endif
  };
  return all;
}

std::vector<const QLutUkernel*> x8_lut_runnable() { return runnable_variants(x8_lut_all()); }

const QLutUkernel& x8_lut_for(Isa isa) { return best_variant(x8_lut_all(), isa); }

const QLutUkernel& x8_lut() {
  static const QLutUkernel& chosen = x8_lut_for(selected_isa());
  return chosen;
}

const std::vector<const QPoolUkernel*>& qs8_pool_all() {
  static const std::vector<const QPoolUkernel*> all = {
    &qs8_pool_ref,
#if defined(__x86_64__)
    &qs8_pool_avx2,
#elif defined(__aarch64__)
    &qs8_pool_neon,
#endif
  };
  return all;
}

std::vector<const QPoolUkernel*> qs8_pool_runnable() { return runnable_variants(qs8_pool_all()); }

const QPoolUkernel& qs8_pool_for(Isa isa) { return best_variant(qs8_pool_all(), isa); }

const QPoolUkernel& qs8_pool() {
  static const QPoolUkernel& chosen = qs8_pool_for(selected_isa());
  return chosen;
}

}  // namespace huddle::kernels
