// The table of preprocess variants and the choice among them.
#include "kernels/preprocess/preprocess.h"

namespace huddle::kernels {

const std::vector<const PreprocessUkernel*>& preprocess_all() {
  static const std::vector<const PreprocessUkernel*> all = {
    &preprocess_ref,
#if defined(__x86_64__)
    &preprocess_avx2,
#elif defined(__aarch64__)
    &preprocess_neon,
#endif
  };
  return all;
}

std::vector<const PreprocessUkernel*> preprocess_runnable() { return runnable_variants(preprocess_all()); }

const PreprocessUkernel& preprocess_for(Isa isa) { return best_variant(preprocess_all(), isa); }

const PreprocessUkernel& preprocess() {
  static const PreprocessUkernel& chosen = preprocess_for(selected_isa());
  return chosen;
}

}  // namespace huddle::kernels
