// Dominant colours of an image or of regions of it (the colour task,
// DESIGN.md §8): a deterministic subsample of the opaque pixels, converted to
// CIELAB (kernels/colour), clustered by k-means (k-means++ seeding with a
// fixed seed), each cluster named by the nearest CSS named colour under
// CIEDE2000, clusters with the same name merged.
//
// Decisions:
//   - Pixels with alpha < 128 are ignored (a set of a fully transparent
//     region has no colours); gray images count as R = G = B.
//   - At most kMaxSamples pixels per set, one per cell of a regular grid at a
//     position within the cell fixed by a hash of the cell (no aliasing with
//     stripes, same answer every run).
//   - Clusters that get the same name are merged, their shares summed and
//     their mean colour the share-weighted mean: a user asks for the dominant
//     colours, not for k cluster centres, so fewer than k may come back.
//   - Shares are fractions of the sampled opaque pixels; per set they sum to
//     1, largest first (ties by name).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "node/image.h"
#include "node/task.h"

namespace huddle::node {

// CIELAB (D65, as kernels/colour/colour.h defines it), in double.
struct Lab {
  double l = 0, a = 0, b = 0;
};

// The CIELAB value of an 8-bit sRGB colour (the kernels' formula, in double).
Lab srgb_to_lab(uint8_t r, uint8_t g, uint8_t b);
// The 8-bit sRGB colour nearest to `lab` (clamped into the sRGB gamut, rounded).
std::array<uint8_t, 3> lab_to_srgb(const Lab& lab);
// The CIEDE2000 colour difference with lightness weight `kl` (kC = kH = 1),
// as Sharma, Wu and Dalal, "The CIEDE2000 color-difference formula:
// implementation notes, supplementary test data, and mathematical
// observations", Color Res. Appl. 30(1), 2005, state it; kl = 1 is the
// plain ΔE00.
double ciede2000(const Lab& x, const Lab& y, double kl = 1.0);

// The lightness weight kL of naming: 2, the CIE's parametric factor for
// textiles. A colour name spans a range of lightness (dry grass in sun and
// in shade is "tan" either way); with kL = 1 the mid-lightness browns of
// photos were named "gray" because CSS has few mid-lightness browns.
constexpr double kNamingLightness = 2.0;

struct NamedColour {
  const char* name;
  uint8_t r, g, b;
};
// The named colours of CSS Color Module Level 4 (§6.1), one name per value:
// "cyan" (not its synonym "aqua"), "magenta" (not "fuchsia"), and the "gray"
// spellings (not "grey"); 139 colours.
std::span<const NamedColour> css_colours();

struct Naming {
  const NamedColour* colour;
  double delta_e;  // ciede2000(lab, named, kNamingLightness)
};
// The CSS colour nearest to `lab` by CIEDE2000 with kL = kNamingLightness (the
// first in css_colours() order on ties).
Naming nearest_css_colour(const Lab& lab);

// The most colours a request may ask for, and the most pixels sampled per set.
constexpr size_t kMaxColours = 16;
constexpr size_t kMaxSamples = 32768;

struct DominantColour {
  std::string name;  // CSS name
  uint8_t r, g, b;   // the mean colour of its pixels
  double share;      // fraction of the set's sampled opaque pixels
  double delta_e;    // ciede2000(mean colour, named one, kNamingLightness)
};

struct ColourSet {
  Box box;                              // the region; the whole image for the image's set
  size_t samples = 0;                   // opaque pixels sampled
  std::vector<DominantColour> colours;  // largest share first; empty when no pixel is opaque
};

// Milliseconds spent per stage over all sets of one analysis.
struct ColourTimings {
  double sample_ms = 0;  // subsampling and conversion to CIELAB
  double kmeans_ms = 0;  // seeding and iterations
  double naming_ms = 0;  // names, merging, ordering
};

// Throws BadRequest when `options` cannot be served on an image of
// width x height: colours outside 1..kMaxColours, or a region that is NaN or
// infinite, empty (x0 >= x1 or y0 >= y1) or not inside the image; the message
// names the option's limit or the region (its index, from 0, and coordinates).
void check_colour_request(uint32_t width, uint32_t height, const TaskOptions& options);

// The colours of the whole image, then of each region in order. Checks the
// request first (check_colour_request). Deterministic.
std::vector<ColourSet> dominant_colours(const Image& image, const TaskOptions& options,
                                        ColourTimings* timings = nullptr);

}  // namespace huddle::node
