// The table of fp32 elementwise variants and the choice among them.
#include "kernels/f32elementwise/f32elementwise.h"

namespace huddle::kernels {

const std::vector<const F32ElementwiseUkernel*>& f32elementwise_all() {
  static const std::vector<const F32ElementwiseUkernel*> all = {
    &f32elementwise_ref,
#if defined(__x86_64__)
    &f32elementwise_avx2,
    &f32elementwise_avx512vnni,
#elif defined(__aarch64__)
    &f32elementwise_neon,
#endif
  };
  return all;
}

std::vector<const F32ElementwiseUkernel*> f32elementwise_runnable() {
  return runnable_variants(f32elementwise_all());
}

const F32ElementwiseUkernel& f32elementwise_for(Isa isa) { return best_variant(f32elementwise_all(), isa); }

const F32ElementwiseUkernel& f32elementwise() {
  static const F32ElementwiseUkernel& chosen = f32elementwise_for(selected_isa());
  return chosen;
}

}  // namespace huddle::kernels
