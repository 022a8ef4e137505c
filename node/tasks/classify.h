// The classify task's postprocessing (node/tasks/classify.cc): a model's
// output row as probabilities, and its best k classes. Declared here so the
// unit tests can check them against the formulas.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace huddle::node::classify {

// How far from 1 the sum of an output may be and still be taken as
// probabilities (a Softmax computed in fp32 over a few thousand classes sums
// to 1 within about 1e-5).
inline constexpr double kProbabilitySumTolerance = 1e-3;

// True when `scores` already are a probability distribution: every value in
// [0, 1] and their sum within kProbabilitySumTolerance of 1.
bool is_distribution(std::span<const float> scores);

// softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x), in double
// precision. `logits` must be finite and non-empty.
std::vector<float> softmax(std::span<const float> logits);

// The indices of the k highest scores, highest first; equal scores in index
// order. k must be at most scores.size().
std::vector<uint32_t> top_k(std::span<const float> scores, size_t k);

}  // namespace huddle::node::classify
