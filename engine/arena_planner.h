// Plans one activation arena ahead of time from tensor lifetimes, so a run
// allocates nothing (DESIGN.md §4). Greedy by size: the largest buffers are
// placed first, each at the lowest offset where it overlaps no buffer that is
// alive at the same time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace huddle::engine {

// One tensor's need: `bytes` alive from step `first` to step `last` (inclusive;
// steps are op indices in execution order).
struct BufferRequest {
  size_t bytes = 0;
  int first = 0;
  int last = 0;
  // Index of an earlier request this one may share memory with (an op that
  // writes its output over its input): honoured when that request's last step
  // is this one's first and it is at least as large. -1 for none.
  int inplace_of = -1;
};

struct ArenaPlan {
  std::vector<size_t> offsets;  // per request, a multiple of the alignment
  size_t total_bytes = 0;       // the arena's size
  size_t peak_live_bytes = 0;   // the most bytes alive at one step: no plan can use less
};

// Plans `requests`; offsets are multiples of `alignment` (a power of two).
// Throws std::invalid_argument for a request with last < first or an
// inplace_of that does not name an earlier request.
ArenaPlan plan_arena(const std::vector<BufferRequest>& requests, size_t alignment = 64);

}  // namespace huddle::engine
