// The table of int8 GEMM variants and the choice among them.
#include "kernels/gemm/gemm.h"

namespace huddle::kernels {

const std::vector<const QGemmUkernel*>& qgemm_all() {
  static const std::vector<const QGemmUkernel*> all = {
    &qgemm_ref,
#if defined(__x86_64__)
    &qgemm_avx2,
#elif defined(__aarch64__)
    &qgemm_neon,
#endif
  };
  return all;
}

std::vector<const QGemmUkernel*> qgemm_runnable() {
  std::vector<const QGemmUkernel*> out;
  for (const QGemmUkernel* uk : qgemm_all())
    if (isa_runnable(uk->isa)) out.push_back(uk);
  return out;
}

const QGemmUkernel& qgemm_for(Isa isa) {
  const QGemmUkernel* best = &qgemm_ref;
  for (const QGemmUkernel* uk : qgemm_all())
    if (isa_implies(isa, uk->isa) && static_cast<int>(uk->isa) >= static_cast<int>(best->isa)) best = uk;
  return *best;
}

const QGemmUkernel& qgemm() {
  static const QGemmUkernel& chosen = qgemm_for(selected_isa());
  return chosen;
}

}  // namespace huddle::kernels
