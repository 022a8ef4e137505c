// The measured int8 multiply-accumulate peak of this CPU, one thread: tight
// loops of independent dot-product instructions, one per kernel tier.
#pragma once

#include <string>
#include <vector>

#include "kernels/isa.h"

namespace huddle::bench {

struct Peak {
  std::string what;  // the instruction timed, e.g. "vpdpbusd zmm"
  kernels::Isa isa;  // the variant tier whose instruction it is
  double gmacs;      // int8 multiply-accumulates per ns
};

// Every peak loop this CPU runs, lowest tier first; each timed for about
// `seconds`, median of its samples.
std::vector<Peak> measure_peaks(double seconds);

// The peak a variant of tier `isa` is measured against: the best measured
// loop whose tier `isa` implies, or the best loop overall when none is
// (ref). Nullptr when `peaks` is empty.
const Peak* peak_for(const std::vector<Peak>& peaks, kernels::Isa isa);

}  // namespace huddle::bench
