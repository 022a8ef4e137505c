// The one table of ops the engine runs.
#include <algorithm>
#include <array>

#include "engine/op.h"

namespace huddle::engine {
namespace ops {
extern const OpDef kAdd, kAveragePool2D, kClip, kCodebookFullyConnected, kConcat, kConv2D, kDequantize,
    kFullyConnected, kGlobalAveragePool, kHardSigmoid, kHardSwish, kLeakyRelu, kMaxPool2D, kMul, kPad,
    kReduceMean, kRelu, kReshape, kResize, kSigmoid, kSilu, kQuantize, kSlice, kSoftmax, kSplit, kSub, kDiv,
    kTranspose;
}  // namespace ops

namespace {
const std::array<const OpDef*, 28> kOps = {
    &ops::kAdd,
    &ops::kAveragePool2D,
    &ops::kDiv,
    &ops::kClip,
    &ops::kCodebookFullyConnected,
    &ops::kConcat,
    &ops::kConv2D,
    &ops::kDequantize,
    &ops::kFullyConnected,
    &ops::kGlobalAveragePool,
    &ops::kHardSigmoid,
    &ops::kHardSwish,
    &ops::kLeakyRelu,
    &ops::kMaxPool2D,
    &ops::kMul,
    &ops::kPad,
    &ops::kQuantize,
    &ops::kReduceMean,
    &ops::kRelu,
    &ops::kReshape,
    &ops::kResize,
    &ops::kSigmoid,
    &ops::kSilu,
    &ops::kSlice,
    &ops::kSoftmax,
    &ops::kSplit,
    &ops::kSub,
    &ops::kTranspose,
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
