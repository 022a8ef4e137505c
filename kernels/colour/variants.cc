// The table of colour variants and the choice among them.
#include "kernels/colour/colour.h"

namespace huddle::kernels {

const std::vector<const ColourUkernel*>& colour_all() {
  static const std::vector<const ColourUkernel*> all = {
    &colour_ref,
#if defined(__x86_64__)
    &colour_avx2,
#elif defined(__aarch64__)
    &colour_neon,
#endif
  };
  return all;
}

std::vector<const ColourUkernel*> colour_runnable() { return runnable_variants(colour_all()); }

const ColourUkernel& colour_for(Isa isa) { return best_variant(colour_all(), isa); }

const ColourUkernel& colour() {
  static const ColourUkernel& chosen = colour_for(selected_isa());
  return chosen;
}

}  // namespace huddle::kernels
