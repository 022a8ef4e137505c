// Calibration: the value distribution of every activation of an fp32 graph
// over a set of inputs, and the int8 range each range method picks from it.
//
// The fp32 reference executor (engine/reference.h) runs each input; every
// activation it produces goes into a histogram of that tensor. A histogram
// has 2 x 4096 bins of one width, a power of two, laid symmetrically about
// zero (bin edges at multiples of the width), widened by merging neighbours
// when a value falls outside. Powers of two make merging exact, so the result
// does not depend on the order of the inputs or on how they were split over
// threads: the same inputs give the same model, bit for bit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "engine/graph.h"

namespace huddle::quantize {

class Histogram {
 public:
  static constexpr int kHalfBins = 4096;

  void add(std::span<const float> values);
  // Adds `other`'s counts (order-independent).
  void merge(const Histogram& other);

  uint64_t count() const { return count_; }
  float min() const { return min_; }
  float max() const { return max_; }
  // Bin width (0 while every value seen is 0), and bin i's count; bin i covers
  // [(i - kHalfBins) * width, (i - kHalfBins + 1) * width).
  double width() const { return width_; }
  const std::vector<uint64_t>& bins() const { return bins_; }
  // The value below which `fraction` of the values lie (a bin edge, clamped to [min, max]).
  float quantile(double fraction) const;
  // True if an infinite or NaN value was offered (and skipped).
  bool non_finite() const { return nan_; }

 private:
  // Widens the bins (merging pairs) until |v| < kHalfBins * width for every v with |v| <= absmax.
  void widen_to(double absmax);
  void coarsen(int steps);

  int exponent_ = 0;  // width = 2^exponent_ once width_ > 0
  double width_ = 0;
  std::vector<uint64_t> bins_ = std::vector<uint64_t>(2 * kHalfBins);
  uint64_t zeros_pending_ = 0;  // zeros seen before the width was known
  uint64_t count_ = 0;
  float min_ = 0, max_ = 0;
  bool nan_ = false;
};

// How a tensor's range is chosen from its histogram.
enum class RangeMethod {
  minmax,      // the observed minimum and maximum
  percentile,  // the `percentile` and 100 - `percentile` quantiles (outliers clipped)
  mse,         // the range, a common fraction of [min, max], with the least expected squared
               // error of int8 quantisation over the histogram (rounding plus clipping)
};
const char* range_method_name(RangeMethod method);
// "minmax", "percentile", "mse"; nullopt for anything else.
std::optional<RangeMethod> parse_range_method(const std::string& text);

// A real interval an int8 tensor covers; always contains 0.
struct Range {
  float lo = 0, hi = 0;
};
// The range of `h` by `method` (percentile: e.g. 99.99).
Range choose_range(const Histogram& h, RangeMethod method, double percentile = 99.99);

// int8 asymmetric quantisation covering `r`: scale = (hi - lo) / 255, the zero
// point the integer nearest to -128 - lo / scale (clamped to [-128, 127]); a
// range of width 0 gets scale 1e-8 (every value quantises to the zero point).
engine::Quant quant_for_range(Range r);

// Histograms of every graph input and node output of `graph` (fp32) over the
// `samples` (each: one value vector per graph input, in input order), by tensor
// index; tensors not observed (constants) have count 0. `threads` reference
// runs go at once; `progress(done, total)` is called after each sample.
std::vector<Histogram> calibrate(const engine::Graph& graph, const std::vector<std::vector<std::vector<float>>>& samples,
                                 size_t threads, const std::function<void(size_t, size_t)>& progress = {});

}  // namespace huddle::quantize
