// The table of fp32 GEMM variants and the choice among them.
#include "kernels/f32/f32.h"

namespace huddle::kernels {

const std::vector<const F32GemmUkernel*>& f32gemm_all() {
  static const std::vector<const F32GemmUkernel*> all = {
    &f32gemm_ref,
#if defined(__x86_64__)
    &f32gemm_avx2,
    &f32gemm_avx512vnni,
#elif defined(__aarch64__)
    &f32gemm_neon,
#endif
  };
  return all;
}

std::vector<const F32GemmUkernel*> f32gemm_runnable() { return runnable_variants(f32gemm_all()); }

const F32GemmUkernel& f32gemm_for(Isa isa) { return best_variant(f32gemm_all(), isa); }

const F32GemmUkernel& f32gemm() {
  static const F32GemmUkernel& chosen = f32gemm_for(selected_isa());
  return chosen;
}

}  // namespace huddle::kernels
