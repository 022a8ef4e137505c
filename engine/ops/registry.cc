// The one table of ops the engine runs.
#include <algorithm>
#include <array>

#include "engine/op.h"

namespace huddle::engine {
namespace ops {
extern const OpDef kAdd, kClip, kConv2D, kFullyConnected, kGlobalAveragePool, kHardSigmoid, kHardSwish, kMul,
    kRelu, kReshape, kSigmoid, kSoftmax;
}  // namespace ops

namespace {
const std::array<const OpDef*, 12> kOps = {
    &ops::kAdd,         &ops::kClip,      &ops::kConv2D, &ops::kFullyConnected, &ops::kGlobalAveragePool,
    &ops::kHardSigmoid, &ops::kHardSwish, &ops::kMul,    &ops::kRelu,           &ops::kReshape,
    &ops::kSigmoid,     &ops::kSoftmax,
};
}  // namespace

const OpDef* find_op(std::string_view name) {
  for (const OpDef* op : kOps)
    if (name == op->name) return op;
  return nullptr;
}

std::vector<std::string> op_names() {
  std::vector<std::string> names;
  for (const OpDef* op : kOps) names.emplace_back(op->name);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace huddle::engine
