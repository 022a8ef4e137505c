// The clock every bench measurement uses: this thread's CPU time. On a
// machine shared with other jobs, wall time also counts the slices in which
// the scheduler ran someone else; CPU time leaves them out.
#pragma once

#include <time.h>

namespace huddle::bench {

// Seconds of CPU time this thread has used.
inline double thread_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace huddle::bench
