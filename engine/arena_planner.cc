#include "engine/arena_planner.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace huddle::engine {
namespace {

size_t align_up(size_t v, size_t a) { return (v + a - 1) & ~(a - 1); }

// A block of memory: one request, or several chained in place.
struct Block {
  size_t bytes = 0;
  int first = 0, last = 0;
  size_t offset = 0;
};

}  // namespace

ArenaPlan plan_arena(const std::vector<BufferRequest>& requests, size_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw std::invalid_argument("arena plan: alignment must be a power of two");
  const size_t n = requests.size();
  // Chain in-place requests onto the block of the request they overwrite.
  std::vector<size_t> block_of(n);
  std::vector<Block> blocks;
  for (size_t i = 0; i < n; ++i) {
    const BufferRequest& r = requests[i];
    if (r.last < r.first)
      throw std::invalid_argument("arena plan: request " + std::to_string(i) + " ends before it starts");
    const int j = r.inplace_of;
    if (j >= static_cast<int>(i) || j < -1)
      throw std::invalid_argument("arena plan: request " + std::to_string(i) +
                                  " is in place of a request that is not earlier");
    if (j >= 0) {
      Block& b = blocks[block_of[j]];
      if (b.last == r.first && requests[j].last == r.first && align_up(r.bytes, alignment) <= b.bytes) {
        b.last = std::max(b.last, r.last);
        block_of[i] = block_of[j];
        continue;
      }
    }
    block_of[i] = blocks.size();
    blocks.push_back({align_up(r.bytes, alignment), r.first, r.last, 0});
  }

  // Largest first (ties: earlier first), each at the lowest gap among placed
  // blocks whose lifetimes overlap it.
  std::vector<size_t> order(blocks.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return blocks[a].bytes > blocks[b].bytes; });
  std::vector<size_t> placed;  // indices into blocks, kept sorted by offset
  ArenaPlan plan;
  for (size_t idx : order) {
    Block& b = blocks[idx];
    size_t offset = 0;
    for (size_t p : placed) {
      const Block& o = blocks[p];
      if (o.last < b.first || b.last < o.first) continue;  // never alive together
      if (o.offset >= offset + b.bytes) break;             // the gap before it fits
      offset = std::max(offset, o.offset + o.bytes);
    }
    b.offset = offset;
    placed.insert(std::upper_bound(placed.begin(), placed.end(), idx,
                                   [&](size_t x, size_t y) { return blocks[x].offset < blocks[y].offset; }),
                  idx);
    plan.total_bytes = std::max(plan.total_bytes, offset + b.bytes);
  }
  plan.offsets.resize(n);
  for (size_t i = 0; i < n; ++i) plan.offsets[i] = blocks[block_of[i]].offset;

  // The lower bound: bytes alive at the busiest step.
  int steps = 0;
  for (const Block& b : blocks) steps = std::max(steps, b.last + 1);
  std::vector<size_t> live(static_cast<size_t>(steps) + 1, 0);
  for (const Block& b : blocks)
    for (int s = std::max(b.first, 0); s <= b.last; ++s) live[s] += b.bytes;
  for (size_t v : live) plan.peak_live_bytes = std::max(plan.peak_live_bytes, v);
  return plan;
}

}  // namespace huddle::engine
