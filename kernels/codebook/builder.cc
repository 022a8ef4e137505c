// fp16 conversion and the k-means codebook builder (used when quantising a
// model, never while running one).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "kernels/codebook/codebook.h"

namespace huddle::kernels {

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // infinity or NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else {
    // Zero or subnormal: mant * 2^-24, exact in fp32.
    const float f = static_cast<float>(mant) * 0x1p-24f;
    std::memcpy(&bits, &f, sizeof bits);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

uint16_t fp32_to_fp16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | (abs > 0x7f800000u ? 0x7e00 : 0x7c00);  // NaN, infinity
  if (abs >= 0x477ff000u) return sign | 0x7c00;  // rounds to 65536 or more: infinity
  if (abs < 0x38800000u) {
    // Below 2^-14: subnormal in fp16, a multiple of 2^-24 (rint rounds half to even).
    float a;
    std::memcpy(&a, &abs, sizeof a);
    return sign | static_cast<uint16_t>(std::rint(a * 0x1p24f));
  }
  // Normal: drop 13 mantissa bits, rounding half to even (a carry may bump the exponent).
  const uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return sign | static_cast<uint16_t>((rounded - (112u << 23)) >> 13);
}

namespace {

// 1-D Lloyd iterations on sorted values with prefix sums: cluster c is the
// run of values nearer to centroid c than to its neighbours.
class Lloyd {
 public:
  explicit Lloyd(std::vector<float> sorted) : v_(std::move(sorted)), sum_(v_.size() + 1, 0.0) {
    for (size_t i = 0; i < v_.size(); ++i) sum_[i + 1] = sum_[i] + v_[i];
  }

  // One iteration; returns true when no centroid moved.
  bool step(std::vector<double>& c) const {
    std::sort(c.begin(), c.end());
    bool stable = true;
    size_t begin = 0;
    for (size_t j = 0; j < c.size(); ++j) {
      size_t end = v_.size();
      if (j + 1 < c.size()) {
        const double mid = 0.5 * (c[j] + c[j + 1]);
        end = std::lower_bound(v_.begin() + begin, v_.end(), mid,
                               [](float a, double b) { return static_cast<double>(a) < b; }) -
              v_.begin();
      }
      if (end > begin) {
        const double mean = (sum_[end] - sum_[begin]) / static_cast<double>(end - begin);
        if (mean != c[j]) stable = false;
        c[j] = mean;
      }
      begin = end;
    }
    return stable;
  }

  const std::vector<float>& values() const { return v_; }

 private:
  std::vector<float> v_;
  std::vector<double> sum_;
};

std::vector<double> quantile_init(const std::vector<float>& v, size_t entries) {
  std::vector<double> c(entries);
  for (size_t j = 0; j < entries; ++j)
    c[j] = v[std::min(v.size() - 1, (2 * j + 1) * v.size() / (2 * entries))];
  return c;
}

// k-means++ on an evenly strided sample of the sorted values (at most 65536).
std::vector<double> kmeans_plus_plus_init(const std::vector<float>& v, size_t entries, uint32_t seed) {
  const size_t stride = std::max<size_t>(1, v.size() / 65536);
  std::vector<double> sample;
  for (size_t i = stride / 2; i < v.size(); i += stride) sample.push_back(v[i]);
  std::mt19937_64 gen(seed);
  std::vector<double> c;
  c.push_back(sample[gen() % sample.size()]);
  std::vector<double> d2(sample.size());
  for (size_t i = 0; i < sample.size(); ++i) d2[i] = (sample[i] - c[0]) * (sample[i] - c[0]);
  while (c.size() < entries) {
    double total = 0;
    for (double d : d2) total += d;
    size_t pick = 0;
    if (total > 0) {
      // Deterministic across standard libraries: the draw is built from raw 64-bit output.
      double r = static_cast<double>(gen() >> 11) * 0x1p-53 * total;
      for (pick = 0; pick + 1 < sample.size() && r >= d2[pick]; ++pick) r -= d2[pick];
    } else {
      pick = gen() % sample.size();  // fewer distinct values than entries
    }
    c.push_back(sample[pick]);
    for (size_t i = 0; i < sample.size(); ++i)
      d2[i] = std::min(d2[i], (sample[i] - c.back()) * (sample[i] - c.back()));
  }
  return c;
}

}  // namespace

Codebook codebook_build(size_t n, size_t k, const float* w, const CodebookBuildOptions& options) {
  Codebook cb;
  cb.bits = options.bits == 4 ? 4 : 8;
  const size_t entries = codebook_entries(cb.bits), count = n * k;
  cb.table.assign(entries, 0);
  cb.indices.assign(n * codebook_row_bytes(cb.bits, k), 0);
  if (count == 0) return cb;

  std::vector<float> sorted(w, w + count);
  std::sort(sorted.begin(), sorted.end());
  const Lloyd lloyd(std::move(sorted));
  std::vector<double> c = options.init == CodebookInit::quantile
                              ? quantile_init(lloyd.values(), entries)
                              : kmeans_plus_plus_init(lloyd.values(), entries, options.seed);
  while (cb.iterations < options.max_iterations) {
    ++cb.iterations;
    if (lloyd.step(c)) break;
  }

  std::sort(c.begin(), c.end());
  std::vector<float> decoded(entries);
  for (size_t j = 0; j < entries; ++j) {
    cb.table[j] = fp32_to_fp16(static_cast<float>(c[j]));
    decoded[j] = fp16_to_fp32(cb.table[j]);
  }
  // Nearest entry: the table is ascending, so search the neighbours of the insertion point.
  double sse = 0;
  const size_t row_bytes = codebook_row_bytes(cb.bits, k);
  for (size_t r = 0; r < n; ++r) {
    for (size_t kk = 0; kk < k; ++kk) {
      const float v = w[r * k + kk];
      const size_t hi = std::lower_bound(decoded.begin(), decoded.end(), v) - decoded.begin();
      size_t best = hi < entries ? hi : entries - 1;
      if (hi > 0 && (hi == entries || std::fabs(v - decoded[hi - 1]) <= std::fabs(decoded[hi] - v))) {
        best = hi - 1;
        while (best > 0 && decoded[best - 1] == decoded[best]) --best;  // lowest of equal entries
      }
      const double err = static_cast<double>(v) - decoded[best];
      sse += err * err;
      cb.max_abs_error = std::max(cb.max_abs_error, std::fabs(err));
      uint8_t& byte = cb.indices[r * row_bytes + (cb.bits == 4 ? kk / 2 : kk)];
      byte |= static_cast<uint8_t>(cb.bits == 4 ? best << (4 * (kk % 2)) : best);
    }
  }
  cb.mse = sse / static_cast<double>(count);
  return cb;
}

}  // namespace huddle::kernels
