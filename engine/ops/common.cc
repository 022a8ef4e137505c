#include "engine/ops/common.h"

#include <limits>

namespace huddle::engine::ops {

kernels::F32Clamp activation_clamp(const PrepareContext& ctx) {
  const std::string a = ctx.node().attr_text("activation", "none");
  const float inf = std::numeric_limits<float>::infinity();
  if (a == "none") return {-inf, inf};
  if (a == "relu") return {0.0f, inf};
  if (a == "relu6") return {0.0f, 6.0f};
  if (a == "clip") {
    const float lo = ctx.node().attr_float("clip_min", -inf), hi = ctx.node().attr_float("clip_max", inf);
    if (!(lo <= hi)) ctx.fail("clip_min is above clip_max");
    return {lo, hi};
  }
  ctx.fail("unknown activation '" + a + "' (none, relu, relu6, clip)");
}

std::vector<int64_t> ints_attr(const PrepareContext& ctx, const char* name, size_t count, int64_t min,
                               std::vector<int64_t> fallback) {
  std::vector<int64_t> v = ctx.node().attr_ints(name, std::move(fallback));
  if (v.size() != count)
    ctx.fail(std::string("attribute '") + name + "' needs " + std::to_string(count) + " values, has " +
             std::to_string(v.size()));
  for (int64_t x : v)
    if (x < min)
      ctx.fail(std::string("attribute '") + name + "' has " + std::to_string(x) + ", below " +
               std::to_string(min));
  return v;
}

size_t chunk_items(size_t items, size_t threads, size_t align, size_t min_chunk) {
  if (threads <= 1) return items ? items : 1;
  size_t chunk = (items + 4 * threads - 1) / (4 * threads);
  if (chunk < min_chunk) chunk = min_chunk;
  chunk = (chunk + align - 1) / align * align;
  return chunk ? chunk : 1;
}

}  // namespace huddle::engine::ops
