// The table of codebook fully connected variants and the choice among them.
#include "kernels/codebook/codebook.h"

namespace huddle::kernels {

const std::vector<const CodebookFcUkernel*>& codebook_fc_all() {
  static const std::vector<const CodebookFcUkernel*> all = {
    &codebook_fc_ref,
#if defined(__x86_64__)
    &codebook_fc_avx2,
    &codebook_fc_avx512,
#elif defined(__aarch64__)
    &codebook_fc_neon,
#endif
  };
  return all;
}

std::vector<const CodebookFcUkernel*> codebook_fc_runnable() { return runnable_variants(codebook_fc_all()); }

const CodebookFcUkernel& codebook_fc_for(Isa isa) { return best_variant(codebook_fc_all(), isa); }

const CodebookFcUkernel& codebook_fc() {
  static const CodebookFcUkernel& chosen = codebook_fc_for(selected_isa());
  return chosen;
}

}  // namespace huddle::kernels
