// The table of int8 GEMM variants and the choice among them.
#include "kernels/gemm/gemm.h"

namespace huddle::kernels {

const std::vector<const QGemmUkernel*>& qgemm_all() {
  static const std::vector<const QGemmUkernel*> all = {
    &qgemm_ref,
#if defined(__x86_64__)
    &qgemm_avx2,
    &qgemm_avx512vnni,
#elif defined(__aarch64__)
    &qgemm_neon,
    &qgemm_neondot,
    &qgemm_i8mm,
#endif
  };
  return all;
}

std::vector<const QGemmUkernel*> qgemm_runnable() { return runnable_variants(qgemm_all()); }

const QGemmUkernel& qgemm_for(Isa isa) { return best_variant(qgemm_all(), isa); }

const QGemmUkernel& qgemm() {
  static const QGemmUkernel& chosen = qgemm_for(selected_isa());
  return chosen;
}

}  // namespace huddle::kernels
