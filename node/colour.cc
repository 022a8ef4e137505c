#include "node/colour.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <numbers>
#include <optional>
#include <sstream>

#include "kernels/colour/colour.h"

namespace huddle::node {
namespace {

// CSS Color Module Level 4, §6.1 "Named Colors" (W3C), the values in
// #rrggbb; synonyms left out as colour.h says.
constexpr NamedColour kCss[] = {
    {"aliceblue", 0xf0, 0xf8, 0xff},
    {"antiquewhite", 0xfa, 0xeb, 0xd7},
    {"aquamarine", 0x7f, 0xff, 0xd4},
    {"azure", 0xf0, 0xff, 0xff},
    {"beige", 0xf5, 0xf5, 0xdc},
    {"bisque", 0xff, 0xe4, 0xc4},
    {"black", 0x00, 0x00, 0x00},
    {"blanchedalmond", 0xff, 0xeb, 0xcd},
    {"blue", 0x00, 0x00, 0xff},
    {"blueviolet", 0x8a, 0x2b, 0xe2},
    {"brown", 0xa5, 0x2a, 0x2a},
    {"burlywood", 0xde, 0xb8, 0x87},
    {"cadetblue", 0x5f, 0x9e, 0xa0},
    {"chartreuse", 0x7f, 0xff, 0x00},
    {"chocolate", 0xd2, 0x69, 0x1e},
    {"coral", 0xff, 0x7f, 0x50},
    {"cornflowerblue", 0x64, 0x95, 0xed},
    {"cornsilk", 0xff, 0xf8, 0xdc},
    {"crimson", 0xdc, 0x14, 0x3c},
    {"cyan", 0x00, 0xff, 0xff},
    {"darkblue", 0x00, 0x00, 0x8b},
    {"darkcyan", 0x00, 0x8b, 0x8b},
    {"darkgoldenrod", 0xb8, 0x86, 0x0b},
    {"darkgray", 0xa9, 0xa9, 0xa9},
    {"darkgreen", 0x00, 0x64, 0x00},
    {"darkkhaki", 0xbd, 0xb7, 0x6b},
    {"darkmagenta", 0x8b, 0x00, 0x8b},
    {"darkolivegreen", 0x55, 0x6b, 0x2f},
    {"darkorange", 0xff, 0x8c, 0x00},
    {"darkorchid", 0x99, 0x32, 0xcc},
    {"darkred", 0x8b, 0x00, 0x00},
    {"darksalmon", 0xe9, 0x96, 0x7a},
    {"darkseagreen", 0x8f, 0xbc, 0x8f},
    {"darkslateblue", 0x48, 0x3d, 0x8b},
    {"darkslategray", 0x2f, 0x4f, 0x4f},
    {"darkturquoise", 0x00, 0xce, 0xd1},
    {"darkviolet", 0x94, 0x00, 0xd3},
    {"deeppink", 0xff, 0x14, 0x93},
    {"deepskyblue", 0x00, 0xbf, 0xff},
    {"dimgray", 0x69, 0x69, 0x69},
    {"dodgerblue", 0x1e, 0x90, 0xff},
    {"firebrick", 0xb2, 0x22, 0x22},
    {"floralwhite", 0xff, 0xfa, 0xf0},
    {"forestgreen", 0x22, 0x8b, 0x22},
    {"gainsboro", 0xdc, 0xdc, 0xdc},
    {"ghostwhite", 0xf8, 0xf8, 0xff},
    {"gold", 0xff, 0xd7, 0x00},
    {"goldenrod", 0xda, 0xa5, 0x20},
    {"gray", 0x80, 0x80, 0x80},
    {"green", 0x00, 0x80, 0x00},
    {"greenyellow", 0xad, 0xff, 0x2f},
    {"honeydew", 0xf0, 0xff, 0xf0},
    {"hotpink", 0xff, 0x69, 0xb4},
    {"indianred", 0xcd, 0x5c, 0x5c},
    {"indigo", 0x4b, 0x00, 0x82},
    {"ivory", 0xff, 0xff, 0xf0},
    {"khaki", 0xf0, 0xe6, 0x8c},
    {"lavender", 0xe6, 0xe6, 0xfa},
    {"lavenderblush", 0xff, 0xf0, 0xf5},
    {"lawngreen", 0x7c, 0xfc, 0x00},
    {"lemonchiffon", 0xff, 0xfa, 0xcd},
    {"lightblue", 0xad, 0xd8, 0xe6},
    {"lightcoral", 0xf0, 0x80, 0x80},
    {"lightcyan", 0xe0, 0xff, 0xff},
    {"lightgoldenrodyellow", 0xfa, 0xfa, 0xd2},
    {"lightgray", 0xd3, 0xd3, 0xd3},
    {"lightgreen", 0x90, 0xee, 0x90},
    {"lightpink", 0xff, 0xb6, 0xc1},
    {"lightsalmon", 0xff, 0xa0, 0x7a},
    {"lightseagreen", 0x20, 0xb2, 0xaa},
    {"lightskyblue", 0x87, 0xce, 0xfa},
    {"lightslategray", 0x77, 0x88, 0x99},
    {"lightsteelblue", 0xb0, 0xc4, 0xde},
    {"lightyellow", 0xff, 0xff, 0xe0},
    {"lime", 0x00, 0xff, 0x00},
    {"limegreen", 0x32, 0xcd, 0x32},
    {"linen", 0xfa, 0xf0, 0xe6},
    {"magenta", 0xff, 0x00, 0xff},
    {"maroon", 0x80, 0x00, 0x00},
    {"mediumaquamarine", 0x66, 0xcd, 0xaa},
    {"mediumblue", 0x00, 0x00, 0xcd},
    {"mediumorchid", 0xba, 0x55, 0xd3},
    {"mediumpurple", 0x93, 0x70, 0xdb},
    {"mediumseagreen", 0x3c, 0xb3, 0x71},
    {"mediumslateblue", 0x7b, 0x68, 0xee},
    {"mediumspringgreen", 0x00, 0xfa, 0x9a},
    {"mediumturquoise", 0x48, 0xd1, 0xcc},
    {"mediumvioletred", 0xc7, 0x15, 0x85},
    {"midnightblue", 0x19, 0x19, 0x70},
    {"mintcream", 0xf5, 0xff, 0xfa},
    {"mistyrose", 0xff, 0xe4, 0xe1},
    {"moccasin", 0xff, 0xe4, 0xb5},
    {"navajowhite", 0xff, 0xde, 0xad},
    {"navy", 0x00, 0x00, 0x80},
    {"oldlace", 0xfd, 0xf5, 0xe6},
    {"olive", 0x80, 0x80, 0x00},
    {"olivedrab", 0x6b, 0x8e, 0x23},
    {"orange", 0xff, 0xa5, 0x00},
    {"orangered", 0xff, 0x45, 0x00},
    {"orchid", 0xda, 0x70, 0xd6},
    {"palegoldenrod", 0xee, 0xe8, 0xaa},
    {"palegreen", 0x98, 0xfb, 0x98},
    {"paleturquoise", 0xaf, 0xee, 0xee},
    {"palevioletred", 0xdb, 0x70, 0x93},
    {"papayawhip", 0xff, 0xef, 0xd5},
    {"peachpuff", 0xff, 0xda, 0xb9},
    {"peru", 0xcd, 0x85, 0x3f},
    {"pink", 0xff, 0xc0, 0xcb},
    {"plum", 0xdd, 0xa0, 0xdd},
    {"powderblue", 0xb0, 0xe0, 0xe6},
    {"purple", 0x80, 0x00, 0x80},
    {"rebeccapurple", 0x66, 0x33, 0x99},
    {"red", 0xff, 0x00, 0x00},
    {"rosybrown", 0xbc, 0x8f, 0x8f},
    {"royalblue", 0x41, 0x69, 0xe1},
    {"saddlebrown", 0x8b, 0x45, 0x13},
    {"salmon", 0xfa, 0x80, 0x72},
    {"sandybrown", 0xf4, 0xa4, 0x60},
    {"seagreen", 0x2e, 0x8b, 0x57},
    {"seashell", 0xff, 0xf5, 0xee},
    {"sienna", 0xa0, 0x52, 0x2d},
    {"silver", 0xc0, 0xc0, 0xc0},
    {"skyblue", 0x87, 0xce, 0xeb},
    {"slateblue", 0x6a, 0x5a, 0xcd},
    {"slategray", 0x70, 0x80, 0x90},
    {"snow", 0xff, 0xfa, 0xfa},
    {"springgreen", 0x00, 0xff, 0x7f},
    {"steelblue", 0x46, 0x82, 0xb4},
    {"tan", 0xd2, 0xb4, 0x8c},
    {"teal", 0x00, 0x80, 0x80},
    {"thistle", 0xd8, 0xbf, 0xd8},
    {"tomato", 0xff, 0x63, 0x47},
    {"turquoise", 0x40, 0xe0, 0xd0},
    {"violet", 0xee, 0x82, 0xee},
    {"wheat", 0xf5, 0xde, 0xb3},
    {"white", 0xff, 0xff, 0xff},
    {"whitesmoke", 0xf5, 0xf5, 0xf5},
    {"yellow", 0xff, 0xff, 0x00},
    {"yellowgreen", 0x9a, 0xcd, 0x32},
};

// sRGB (IEC 61966-2-1 primaries, D65) to XYZ; the kernels' matrix (kernels/colour/ref.cc).
constexpr double kSrgbToXyz[9] = {0.4124564, 0.3575761, 0.1804375, 0.2126729, 0.7151522,
                                  0.0721750, 0.0193339, 0.1191920, 0.9503041};
constexpr double kEpsilon = 216.0 / 24389.0, kKappa = 24389.0 / 27.0;

double row_sum(int row) { return kSrgbToXyz[3 * row] + kSrgbToXyz[3 * row + 1] + kSrgbToXyz[3 * row + 2]; }

double degrees(double radians) { return radians * 180.0 / std::numbers::pi; }
double radians(double degrees) { return degrees * std::numbers::pi / 180.0; }

// The inverse of kSrgbToXyz.
std::array<double, 9> xyz_to_srgb_matrix() {
  const double* m = kSrgbToXyz;
  const double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) +
                     m[2] * (m[3] * m[7] - m[4] * m[6]);
  return {(m[4] * m[8] - m[5] * m[7]) / det, (m[2] * m[7] - m[1] * m[8]) / det,
          (m[1] * m[5] - m[2] * m[4]) / det, (m[5] * m[6] - m[3] * m[8]) / det,
          (m[0] * m[8] - m[2] * m[6]) / det, (m[2] * m[3] - m[0] * m[5]) / det,
          (m[3] * m[7] - m[4] * m[6]) / det, (m[1] * m[6] - m[0] * m[7]) / det,
          (m[0] * m[4] - m[1] * m[3]) / det};
}

// A pixel range of the image: x0 <= x < x1, y0 <= y < y1.
struct PixelRange {
  size_t x0, y0, x1, y1;
};

// The pixels a checked box overlaps.
PixelRange pixel_range(const Box& box) {
  return {static_cast<size_t>(std::floor(box.x0)), static_cast<size_t>(std::floor(box.y0)),
          static_cast<size_t>(std::ceil(box.x1)), static_cast<size_t>(std::ceil(box.y1))};
}

// A well-mixed 32-bit hash of a cell (a fixed-point mix of two multiplies).
uint32_t cell_hash(size_t x, size_t y) {
  uint64_t h = (static_cast<uint64_t>(x) << 32 | y) * 0x9e3779b97f4a7c15ull;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ull;
  return static_cast<uint32_t>(h >> 32);
}

struct Samples {
  std::vector<float> l, a, b;
  size_t size() const { return l.size(); }
};

// The opaque pixels of `range` (at most about kMaxSamples, see colour.h) in CIELAB.
Samples sample(const Image& image, const PixelRange& range) {
  const size_t w = range.x1 - range.x0, h = range.y1 - range.y0;
  size_t cell = 1;
  while ((w + cell - 1) / cell * ((h + cell - 1) / cell) > kMaxSamples) ++cell;
  const size_t ch = channels(image.format);
  std::vector<uint8_t> rgb;
  rgb.reserve(3 * ((w + cell - 1) / cell) * ((h + cell - 1) / cell));
  for (size_t cy = range.y0; cy < range.y1; cy += cell) {
    const size_t cell_h = std::min(cell, range.y1 - cy);
    for (size_t cx = range.x0; cx < range.x1; cx += cell) {
      const size_t cell_w = std::min(cell, range.x1 - cx);
      const uint32_t hash = cell == 1 ? 0 : cell_hash(cx, cy);
      const size_t x = cx + (hash & 0xffff) % cell_w, y = cy + (hash >> 16) % cell_h;
      const uint8_t* p = image.pixels.data() + (y * image.width + x) * ch;
      switch (image.format) {
        case PixelFormat::gray:
          rgb.insert(rgb.end(), {p[0], p[0], p[0]});
          break;
        case PixelFormat::rgba:
          if (p[3] < 128) break;
          [[fallthrough]];
        case PixelFormat::rgb:
          rgb.insert(rgb.end(), {p[0], p[1], p[2]});
          break;
      }
    }
  }
  Samples s;
  const size_t n = rgb.size() / 3;
  s.l.resize(n), s.a.resize(n), s.b.resize(n);
  kernels::colour().rgb_to_lab(n, rgb.data(), s.l.data(), s.a.data(), s.b.data());
  return s;
}

// splitmix64 (Steele, Lea and Flood 2014): a fixed-seed generator whose
// sequence is the same on every platform and standard library.
class SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

struct Cluster {
  Lab centre;
  size_t count;
};

// Makes `x` the union of x and y: the count-weighted mean, the summed count.
void absorb(Cluster& x, const Cluster& y) {
  const double n = static_cast<double>(x.count + y.count);
  const double wx = static_cast<double>(x.count) / n, wy = static_cast<double>(y.count) / n;
  x.centre = {x.centre.l * wx + y.centre.l * wy, x.centre.a * wx + y.centre.a * wy,
              x.centre.b * wx + y.centre.b * wy};
  x.count += y.count;
}

double squared_distance(const Samples& s, size_t i, const float* c) {
  const double dl = s.l[i] - c[0], da = s.a[i] - c[1], db = s.b[i] - c[2];
  return dl * dl + da * da + db * db;
}

// k-means++ seeding (Arthur and Vassilvitskii 2007) from generator `rng`, on
// kSeedPoints samples drawn by `rng` (all of them when there are fewer; a
// regular stride would alias with stripes): fewer than k centres when those
// have fewer distinct colours.
std::vector<float> seed_centres(const Samples& s, size_t k, SplitMix& rng) {
  constexpr size_t kSeedPoints = 4096;
  std::vector<size_t> points;
  if (s.size() <= kSeedPoints) {
    for (size_t i = 0; i < s.size(); ++i) points.push_back(i);
  } else {
    for (size_t p = 0; p < kSeedPoints; ++p) points.push_back(static_cast<size_t>(rng.next() % s.size()));
  }
  std::vector<float> centres;
  centres.reserve(3 * k);
  auto add = [&](size_t i) {
    centres.push_back(s.l[i]);
    centres.push_back(s.a[i]);
    centres.push_back(s.b[i]);
  };
  add(points[rng.next() % points.size()]);
  std::vector<double> d2(points.size());
  for (size_t p = 0; p < points.size(); ++p) d2[p] = squared_distance(s, points[p], centres.data());
  while (centres.size() < 3 * k) {
    double total = 0;
    for (double d : d2) total += d;
    if (total <= 0) break;
    const double target = rng.uniform() * total;
    size_t pick = 0;
    double cumulative = 0;
    for (; pick + 1 < points.size(); ++pick) {
      cumulative += d2[pick];
      if (cumulative > target && d2[pick] > 0) break;
    }
    add(points[pick]);
    const float* c = &centres[centres.size() - 3];
    for (size_t p = 0; p < points.size(); ++p) d2[p] = std::min(d2[p], squared_distance(s, points[p], c));
  }
  return centres;
}

// Lloyd's iterations on the samples from a set of centres.
class Lloyd {
 public:
  Lloyd(const Samples& s, std::vector<float> centres)
      : s_(s),
        k_(centres.size() / 3),
        centres_(std::move(centres)),
        labels_(s.size()),
        previous_(s.size()),
        sums_(3 * k_),
        counts_(k_) {}

  // Up to `iterations` steps (assign, then move each centre to its points'
  // mean); stops early once no centre moves by more than 0.05 (CIELAB units;
  // a just noticeable difference is about 1) or at most 1 point in 1000
  // changes cluster. True when it stopped early (converged).
  bool run(int iterations) {
    const kernels::ColourUkernel& uk = kernels::colour();
    for (int iteration = 0; iteration < iterations; ++iteration) {
      std::fill(sums_.begin(), sums_.end(), 0.0);
      std::fill(counts_.begin(), counts_.end(), 0);
      labels_.swap(previous_);
      uk.kmeans_assign(s_.size(), s_.l.data(), s_.a.data(), s_.b.data(), k_, centres_.data(), labels_.data(),
                       sums_.data(), counts_.data());
      size_t changed = 0;
      for (size_t i = 0; i < labels_.size(); ++i) changed += labels_[i] != previous_[i];
      double moved = 0;
      for (size_t j = 0; j < k_; ++j) {
        if (counts_[j] == 0) continue;  // keeps its place; dropped from clusters() if it stays empty
        for (size_t c = 0; c < 3; ++c) {
          const float mean = static_cast<float>(sums_[3 * j + c] / static_cast<double>(counts_[j]));
          moved = std::max(moved, static_cast<double>(std::fabs(mean - centres_[3 * j + c])));
          centres_[3 * j + c] = mean;
        }
      }
      if (moved <= 0.05 || (iteration > 0 && changed * 1000 <= s_.size())) return true;
    }
    return false;
  }

  // sum_j |S_j|^2 / n_j over the clusters of the last assignment (S_j the sum
  // of cluster j's points): the within-cluster sum of squares is sum |x|^2
  // minus it, so the larger, the tighter the clustering.
  double score() const {
    double score = 0;
    for (size_t j = 0; j < k_; ++j)
      if (counts_[j] > 0)
        score += (sums_[3 * j] * sums_[3 * j] + sums_[3 * j + 1] * sums_[3 * j + 1] +
                  sums_[3 * j + 2] * sums_[3 * j + 2]) /
                 static_cast<double>(counts_[j]);
    return score;
  }

  // The clusters of the last assignment that have points: their means and sizes.
  std::vector<Cluster> clusters() const {
    std::vector<Cluster> out;
    for (size_t j = 0; j < k_; ++j) {
      if (counts_[j] == 0) continue;
      const double n = static_cast<double>(counts_[j]);
      out.push_back(
          {{sums_[3 * j] / n, sums_[3 * j + 1] / n, sums_[3 * j + 2] / n}, static_cast<size_t>(counts_[j])});
    }
    return out;
  }

 private:
  const Samples& s_;
  size_t k_;
  std::vector<float> centres_;
  std::vector<uint8_t> labels_, previous_;
  std::vector<double> sums_;
  std::vector<uint64_t> counts_;
};

// k-means: kRestarts k-means++ seedings, a few iterations from each, then the
// tightest one continued to convergence (a single run can settle with one
// centre between two close colours, taking the edges of both).
std::vector<Cluster> kmeans(const Samples& s, size_t k) {
  constexpr int kRestarts = 3, kTrialIterations = 5, kMaxIterations = 30;
  if (s.size() == 0) return {};
  SplitMix rng(0x6875646c65ull);  // "huddle": the same sequence on every run and platform
  std::optional<Lloyd> best;
  bool converged = false;
  for (int run = 0; run < kRestarts; ++run) {
    Lloyd trial(s, seed_centres(s, k, rng));
    const bool done = trial.run(kTrialIterations);
    if (!best || trial.score() > best->score()) best.emplace(std::move(trial)), converged = done;
  }
  if (!converged) best->run(kMaxIterations - kTrialIterations);
  return best->clusters();
}

// Clusters closer than kSameColour (plain CIEDE2000) merged, the closest pair
// first: k above the number of colours splits one colour by its noise, and
// the halves' means could otherwise get neighbouring names (white and snow).
std::vector<Cluster> merge_close(std::vector<Cluster> clusters) {
  constexpr double kSameColour = 2.0;
  for (;;) {
    size_t a = 0, b = 0;
    double nearest = kSameColour;
    for (size_t i = 0; i < clusters.size(); ++i)
      for (size_t j = i + 1; j < clusters.size(); ++j) {
        const double d = ciede2000(clusters[i].centre, clusters[j].centre);
        if (d < nearest) nearest = d, a = i, b = j;
      }
    if (nearest >= kSameColour) return clusters;
    absorb(clusters[a], clusters[b]);
    clusters.erase(clusters.begin() + static_cast<long>(b));
  }
}

// Names the clusters, merges those of one name, orders by share.
std::vector<DominantColour> name_clusters(const std::vector<Cluster>& clusters) {
  size_t total = 0;
  for (const Cluster& c : clusters) total += c.count;
  std::map<const NamedColour*, Cluster> by_name;
  for (const Cluster& c : clusters) {
    const NamedColour* named = nearest_css_colour(c.centre).colour;
    auto [it, added] = by_name.try_emplace(named, c);
    if (!added) absorb(it->second, c);
  }
  std::vector<DominantColour> out;
  for (const auto& [named, c] : by_name) {
    const auto rgb = lab_to_srgb(c.centre);
    out.push_back({named->name, rgb[0], rgb[1], rgb[2],
                   static_cast<double>(c.count) / static_cast<double>(total),
                   ciede2000(c.centre, srgb_to_lab(named->r, named->g, named->b), kNamingLightness)});
  }
  std::sort(out.begin(), out.end(), [](const DominantColour& x, const DominantColour& y) {
    return x.share != y.share ? x.share > y.share : x.name < y.name;
  });
  return out;
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

std::string describe(size_t index, const Box& box) {
  std::ostringstream s;
  s << "region " << index << " (" << box.x0 << ", " << box.y0 << ", " << box.x1 << ", " << box.y1 << ")";
  return s.str();
}

}  // namespace

Lab srgb_to_lab(uint8_t r, uint8_t g, uint8_t b) {
  double lin[3];
  const uint8_t v[3] = {r, g, b};
  for (int c = 0; c < 3; ++c) {
    const double x = v[c] / 255.0;
    lin[c] = x <= 0.04045 ? x / 12.92 : std::pow((x + 0.055) / 1.055, 2.4);
  }
  double f[3];
  for (int row = 0; row < 3; ++row) {
    const double* m = kSrgbToXyz + 3 * row;
    const double t = (m[0] * lin[0] + m[1] * lin[1] + m[2] * lin[2]) / row_sum(row);
    f[row] = t > kEpsilon ? std::cbrt(t) : (kKappa * t + 16.0) / 116.0;
  }
  return {116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])};
}

std::array<uint8_t, 3> lab_to_srgb(const Lab& lab) {
  static const std::array<double, 9> inverse = xyz_to_srgb_matrix();
  const double fy = (lab.l + 16.0) / 116.0;
  const double f[3] = {fy + lab.a / 500.0, fy, fy - lab.b / 200.0};
  double xyz[3];
  for (int row = 0; row < 3; ++row) {
    const double t =
        f[row] * f[row] * f[row] > kEpsilon ? f[row] * f[row] * f[row] : (116.0 * f[row] - 16.0) / kKappa;
    xyz[row] = t * row_sum(row);
  }
  std::array<uint8_t, 3> out{};
  for (int c = 0; c < 3; ++c) {
    const double lin = inverse[3 * c] * xyz[0] + inverse[3 * c + 1] * xyz[1] + inverse[3 * c + 2] * xyz[2];
    const double v = lin <= 0.0031308 ? 12.92 * lin : 1.055 * std::pow(lin, 1.0 / 2.4) - 0.055;
    out[c] = static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 1.0) * 255.0));
  }
  return out;
}

double ciede2000(const Lab& x, const Lab& y, double kl) {
  // Sharma, Wu and Dalal (2005), equations (2) to (22), kC = kH = 1.
  const double pow25_7 = 6103515625.0;  // 25^7
  const double c1 = std::hypot(x.a, x.b), c2 = std::hypot(y.a, y.b);
  const double c_mean7 = std::pow((c1 + c2) / 2.0, 7.0);
  const double g = 0.5 * (1.0 - std::sqrt(c_mean7 / (c_mean7 + pow25_7)));
  const double a1 = (1.0 + g) * x.a, a2 = (1.0 + g) * y.a;
  const double cp1 = std::hypot(a1, x.b), cp2 = std::hypot(a2, y.b);
  auto hue = [](double b, double a) {
    if (a == 0 && b == 0) return 0.0;
    const double h = degrees(std::atan2(b, a));
    return h < 0 ? h + 360.0 : h;
  };
  const double h1 = hue(x.b, a1), h2 = hue(y.b, a2);
  const bool achromatic = cp1 * cp2 == 0;

  const double dl = y.l - x.l, dc = cp2 - cp1;
  double dh = 0;
  if (!achromatic) {
    dh = h2 - h1;
    if (dh > 180)
      dh -= 360;
    else if (dh < -180)
      dh += 360;
  }
  const double dH = 2.0 * std::sqrt(cp1 * cp2) * std::sin(radians(dh / 2.0));

  const double l_mean = (x.l + y.l) / 2.0, c_mean = (cp1 + cp2) / 2.0;
  double h_mean = h1 + h2;
  if (!achromatic) {
    if (std::fabs(h1 - h2) <= 180)
      h_mean /= 2.0;
    else if (h1 + h2 < 360)
      h_mean = (h1 + h2 + 360) / 2.0;
    else
      h_mean = (h1 + h2 - 360) / 2.0;
  }
  const double t = 1.0 - 0.17 * std::cos(radians(h_mean - 30)) + 0.24 * std::cos(radians(2 * h_mean)) +
                   0.32 * std::cos(radians(3 * h_mean + 6)) - 0.20 * std::cos(radians(4 * h_mean - 63));
  const double d_theta = 30.0 * std::exp(-std::pow((h_mean - 275.0) / 25.0, 2));
  const double c_mean7p = std::pow(c_mean, 7.0);
  const double rc = 2.0 * std::sqrt(c_mean7p / (c_mean7p + pow25_7));
  const double l50 = (l_mean - 50) * (l_mean - 50);
  const double sl = 1.0 + 0.015 * l50 / std::sqrt(20.0 + l50);
  const double sc = 1.0 + 0.045 * c_mean;
  const double sh = 1.0 + 0.015 * c_mean * t;
  const double rt = -std::sin(radians(2 * d_theta)) * rc;
  const double tl = dl / (kl * sl), tc = dc / sc, th = dH / sh;
  return std::sqrt(tl * tl + tc * tc + th * th + rt * tc * th);
}

std::span<const NamedColour> css_colours() { return kCss; }

Naming nearest_css_colour(const Lab& lab) {
  static const std::vector<Lab> css_lab = [] {
    std::vector<Lab> v;
    for (const NamedColour& c : kCss) v.push_back(srgb_to_lab(c.r, c.g, c.b));
    return v;
  }();
  Naming best{&kCss[0], ciede2000(lab, css_lab[0], kNamingLightness)};
  for (size_t i = 1; i < css_lab.size(); ++i) {
    const double d = ciede2000(lab, css_lab[i], kNamingLightness);
    if (d < best.delta_e) best = {&kCss[i], d};
  }
  return best;
}

void check_colour_request(uint32_t width, uint32_t height, const TaskOptions& options) {
  if (options.colours < 1 || options.colours > kMaxColours)
    throw BadRequest("colour: colours must be 1 to " + std::to_string(kMaxColours) + " (got " +
                     std::to_string(options.colours) + ")");
  for (size_t i = 0; i < options.regions.size(); ++i) {
    const Box& box = options.regions[i];
    const float v[4] = {box.x0, box.y0, box.x1, box.y1};
    for (float x : v)
      if (!std::isfinite(x))
        throw BadRequest("colour: " + describe(i, box) + " has a coordinate that is not a number");
    if (!(box.x0 < box.x1 && box.y0 < box.y1))
      throw BadRequest("colour: " + describe(i, box) + " is empty (needs x0 < x1 and y0 < y1)");
    if (box.x0 < 0 || box.y0 < 0 || box.x1 > width || box.y1 > height)
      throw BadRequest("colour: " + describe(i, box) + " is not inside the " + std::to_string(width) + "x" +
                       std::to_string(height) + " image");
  }
}

std::vector<ColourSet> dominant_colours(const Image& image, const TaskOptions& options,
                                        ColourTimings* timings) {
  check_colour_request(image.width, image.height, options);
  if (image.width == 0 || image.height == 0 ||
      image.pixels.size() != size_t{image.width} * image.height * channels(image.format))
    throw BadRequest("colour: the image has no pixels or its pixel buffer does not match its size");
  std::vector<Box> boxes = {{0, 0, static_cast<float>(image.width), static_cast<float>(image.height)}};
  boxes.insert(boxes.end(), options.regions.begin(), options.regions.end());
  ColourTimings local;
  ColourTimings& t = timings ? *timings : local;
  std::vector<ColourSet> sets;
  for (const Box& box : boxes) {
    auto start = std::chrono::steady_clock::now();
    const Samples s = sample(image, pixel_range(box));
    t.sample_ms += ms_since(start);
    start = std::chrono::steady_clock::now();
    const std::vector<Cluster> clusters = kmeans(s, options.colours);
    t.kmeans_ms += ms_since(start);
    start = std::chrono::steady_clock::now();
    sets.push_back({box, s.size(), name_clusters(merge_close(clusters))});
    t.naming_ms += ms_since(start);
  }
  return sets;
}

}  // namespace huddle::node
