#include "models/quantize/calibrate.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>

#include "engine/reference.h"

namespace huddle::quantize {

void Histogram::coarsen(int steps) {
  for (int s = 0; s < steps; ++s) {
    std::vector<uint64_t> next(bins_.size());
    for (int j = 0; j < kHalfBins; ++j) {
      next[static_cast<size_t>(kHalfBins + j / 2)] += bins_[static_cast<size_t>(kHalfBins + j)];
      next[static_cast<size_t>(kHalfBins - 1 - j / 2)] += bins_[static_cast<size_t>(kHalfBins - 1 - j)];
    }
    bins_ = std::move(next);
  }
  exponent_ += steps;
  width_ = std::ldexp(1.0, exponent_);
}

void Histogram::widen_to(double absmax) {
  if (absmax <= 0) return;
  if (width_ == 0) {
    int e = 0;
    std::frexp(absmax / kHalfBins, &e);  // absmax / kHalfBins < 2^e
    exponent_ = e;
    width_ = std::ldexp(1.0, e);
    bins_[kHalfBins] += zeros_pending_;
    zeros_pending_ = 0;
  }
  int steps = 0;
  while (absmax >= kHalfBins * std::ldexp(width_, steps)) ++steps;
  if (steps) coarsen(steps);
}

void Histogram::add(std::span<const float> values) {
  float lo = 0, hi = 0;
  size_t finite = 0;
  for (float v : values) {
    if (!std::isfinite(v)) {
      nan_ = true;
      continue;
    }
    lo = std::min(lo, v), hi = std::max(hi, v);
    ++finite;
  }
  if (finite == 0) return;
  min_ = count_ ? std::min(min_, lo) : lo;
  max_ = count_ ? std::max(max_, hi) : hi;
  count_ += finite;
  widen_to(std::max(-static_cast<double>(lo), static_cast<double>(hi)));
  if (width_ == 0) {
    zeros_pending_ += finite;
    return;
  }
  const double inv = 1.0 / width_;
  for (float v : values) {
    if (!std::isfinite(v)) continue;
    const auto i = static_cast<int64_t>(std::floor(v * inv)) + kHalfBins;
    ++bins_[static_cast<size_t>(std::clamp<int64_t>(i, 0, 2 * kHalfBins - 1))];
  }
}

void Histogram::merge(const Histogram& other) {
  if (other.count_ == 0) return;
  if (other.width_ > 0) {
    Histogram o = other;
    if (width_ == 0) {
      exponent_ = o.exponent_, width_ = o.width_;
      bins_[kHalfBins] += zeros_pending_;
      zeros_pending_ = 0;
    } else if (o.exponent_ > exponent_) {
      coarsen(o.exponent_ - exponent_);
    } else if (o.exponent_ < exponent_) {
      o.coarsen(exponent_ - o.exponent_);
    }
    for (size_t i = 0; i < bins_.size(); ++i) bins_[i] += o.bins_[i];
  } else {
    (width_ > 0 ? bins_[kHalfBins] : zeros_pending_) += other.zeros_pending_;
  }
  min_ = count_ ? std::min(min_, other.min_) : other.min_;
  max_ = count_ ? std::max(max_, other.max_) : other.max_;
  count_ += other.count_;
  nan_ = nan_ || other.nan_;
}

float Histogram::quantile(double fraction) const {
  if (count_ == 0) return 0;
  if (width_ == 0) return 0;
  const double want = fraction * static_cast<double>(count_);
  double seen = 0;
  for (size_t i = 0; i < bins_.size(); ++i) {
    seen += static_cast<double>(bins_[i]);
    if (seen >= want) {
      const double edge = (static_cast<double>(i) - kHalfBins + 1) * width_;
      return std::clamp(static_cast<float>(edge), min_, max_);
    }
  }
  return max_;
}

const char* range_method_name(RangeMethod method) {
  switch (method) {
    case RangeMethod::minmax:
      return "minmax";
    case RangeMethod::percentile:
      return "percentile";
    case RangeMethod::mse:
      return "mse";
  }
  return "?";
}

std::optional<RangeMethod> parse_range_method(const std::string& text) {
  for (RangeMethod m : {RangeMethod::minmax, RangeMethod::percentile, RangeMethod::mse})
    if (text == range_method_name(m)) return m;
  return std::nullopt;
}

engine::Quant quant_for_range(Range r) {
  const double lo = std::min(0.0, static_cast<double>(r.lo)), hi = std::max(0.0, static_cast<double>(r.hi));
  engine::Quant q;
  const double scale = hi > lo ? (hi - lo) / 255.0 : 1e-8;
  q.scale = {static_cast<float>(scale)};
  const double zp = std::nearbyint(-128.0 - lo / static_cast<double>(q.scale[0]));
  q.zero_point = {static_cast<int32_t>(std::clamp(zp, -128.0, 127.0))};
  return q;
}

namespace {

// Expected squared error of quantising the histogram's values to `r`, each
// bin's values taken at its centre: the distance to the nearest end for values
// outside, the rounding error inside (step^2 / 12 where a step is finer than a
// bin, so the centre says nothing about where its values round).
double quantisation_error(const Histogram& h, Range r) {
  const engine::Quant q = quant_for_range(r);
  const double s = q.scale[0], zp = q.zero_point[0];
  const double lo = s * (-128 - zp), hi = s * (127 - zp);
  const double w = h.width();
  double err = 0;
  for (size_t i = 0; i < h.bins().size(); ++i) {
    const uint64_t n = h.bins()[i];
    if (n == 0) continue;
    double c = (static_cast<double>(i) - Histogram::kHalfBins + 0.5) * w;
    c = std::clamp(c, static_cast<double>(h.min()), static_cast<double>(h.max()));
    double e;
    if (c < lo || c > hi)
      e = c < lo ? lo - c : c - hi, e *= e;
    else if (s < w)
      e = s * s / 12;
    else
      e = s * (std::nearbyint(c / s + zp) - zp) - c, e *= e;
    err += static_cast<double>(n) * e;
  }
  return err;
}

}  // namespace

Range choose_range(const Histogram& h, RangeMethod method, double percentile) {
  Range full{std::min(0.0f, h.min()), std::max(0.0f, h.max())};
  switch (method) {
    case RangeMethod::minmax:
      return full;
    case RangeMethod::percentile: {
      const double tail = (100.0 - percentile) / 100.0;
      return {std::min(0.0f, h.quantile(tail)), std::max(0.0f, h.quantile(1.0 - tail))};
    }
    case RangeMethod::mse: {
      Range best = full;
      double best_err = quantisation_error(h, full);
      for (int k = 1; k <= 120; ++k) {
        const float f = 1.0f - static_cast<float>(k) / 128.0f;
        const Range r{full.lo * f, full.hi * f};
        const double err = quantisation_error(h, r);
        if (err < best_err) best_err = err, best = r;
      }
      return best;
    }
  }
  return full;
}

std::vector<Histogram> calibrate(const engine::Graph& graph,
                                 const std::vector<std::vector<std::vector<float>>>& samples, size_t threads,
                                 const std::function<void(size_t, size_t)>& progress) {
  const engine::ReferenceExecutor ref(graph);
  threads = std::max<size_t>(1, std::min(threads, samples.size()));
  std::vector<std::vector<Histogram>> local(threads, std::vector<Histogram>(graph.tensors.size()));
  std::atomic<size_t> next{0};
  std::mutex mutex;
  size_t done = 0;
  std::exception_ptr error;
  auto work = [&](size_t t) {
    try {
      for (size_t i; (i = next++) < samples.size();) {
        std::vector<std::span<const float>> in(samples[i].begin(), samples[i].end());
        ref.run(in, [&](int tensor, std::span<const float> v) { local[t][static_cast<size_t>(tensor)].add(v); });
        const std::lock_guard lock(mutex);
        if (progress) progress(++done, samples.size());
      }
    } catch (...) {
      const std::lock_guard lock(mutex);
      if (!error) error = std::current_exception();
      next = samples.size();
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  std::vector<Histogram> total = std::move(local[0]);
  for (size_t t = 1; t < threads; ++t)
    for (size_t k = 0; k < total.size(); ++k) total[k].merge(local[t][k]);
  return total;
}

}  // namespace huddle::quantize
