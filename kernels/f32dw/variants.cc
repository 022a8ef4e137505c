// The table of fp32 depthwise convolution variants and the choice among them.
#include "kernels/f32dw/f32dw.h"

namespace huddle::kernels {

const std::vector<const F32DwUkernel*>& f32dw_all() {
  static const std::vector<const F32DwUkernel*> all = {
    &f32dw_ref,
#if defined(__x86_64__)
    &f32dw_avx2,
    &f32dw_avx512vnni,
#elif defined(__aarch64__)
    &f32dw_neon,
#endif
  };
  return all;
}

std::vector<const F32DwUkernel*> f32dw_runnable() { return runnable_variants(f32dw_all()); }

const F32DwUkernel& f32dw_for(Isa isa) { return best_variant(f32dw_all(), isa); }

const F32DwUkernel& f32dw() {
  static const F32DwUkernel& chosen = f32dw_for(selected_isa());
  return chosen;
}

}  // namespace huddle::kernels
