// The table of int8 depthwise convolution variants and the choice among them.
#include "kernels/dwconv/dwconv.h"

namespace huddle::kernels {

const std::vector<const QDwConvUkernel*>& dwconv_all() {
  static const std::vector<const QDwConvUkernel*> all = {
    &dwconv_ref,
#if defined(__x86_64__)
    &dwconv_avx2,
    &dwconv_avx512vnni,
#elif defined(__aarch64__)
    &dwconv_neon,
#endif
  };
  return all;
}

std::vector<const QDwConvUkernel*> dwconv_runnable() { return runnable_variants(dwconv_all()); }

const QDwConvUkernel& dwconv_for(Isa isa) { return best_variant(dwconv_all(), isa); }

const QDwConvUkernel& dwconv() {
  static const QDwConvUkernel& chosen = dwconv_for(selected_isa());
  return chosen;
}

}  // namespace huddle::kernels
