// The measured int8 multiply-accumulate peak of this CPU, one thread: tight
// loops of independent dot-product instructions, one per kernel tier.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kernels/isa.h"

namespace huddle::bench {

// A measured peak.
struct Peak {
  std::string what;  // the instruction timed, e.g. "vpdpbusd zmm"
  kernels::Isa isa;  // the variant tier whose instruction it is
  double gmacs;      // int8 multiply-accumulates per ns
};

// One peak loop sized to take about 1 ms: call() does `macs` multiply-
// accumulates. Lets a bench time the peak in turn with the kernels it rates.
struct PeakLoop {
  std::string what;
  kernels::Isa isa;
  double macs;
  std::function<void()> call;
};

// The peak loops this CPU runs, lowest tier first.
std::vector<PeakLoop> peak_loops();

// The peak a variant of tier `isa` is measured against: the best measured
// loop whose tier `isa` implies, or the best loop overall when none is
// (ref). Nullptr when `peaks` is empty.
const Peak* peak_for(const std::vector<Peak>& peaks, kernels::Isa isa);

}  // namespace huddle::bench
