// Drawing on an annotation canvas (Result::annotate): filled (optionally
// blended) and outlined rectangles and short labels in a 5x7 bitmap font of
// the project's own: lowercase letters (capitals are drawn as lowercase),
// digits, space and common punctuation; a character the font lacks, or one
// UTF-8 sequence, draws as '?'. Everything is clipped to the canvas: any
// coordinates are safe. The canvas must be an RGB image with its pixel buffer
// (rgb_canvas makes one); anything else throws std::invalid_argument.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "node/image.h"

namespace huddle::node {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

inline constexpr long kGlyphWidth = 5, kGlyphHeight = 7;

// `image` as an RGB canvas of the same size (gray replicated; alpha dropped).
Image rgb_canvas(const Image& image);

// Blends `colour` over x0 <= x < x1, y0 <= y < y1 of the canvas with opacity
// `alpha` in [0, 1] (1: paints over).
void fill_rect(Image& canvas, long x0, long y0, long x1, long y1, Rgb colour, float alpha = 1.0f);

// An outline `thickness` pixels wide just inside the rectangle.
void outline_rect(Image& canvas, long x0, long y0, long x1, long y1, long thickness, Rgb colour);

// Width in pixels of `text` drawn at `scale`: each glyph 5 * scale wide, one
// scale of space between glyphs.
long text_width(std::string_view text, long scale);
constexpr long text_height(long scale) { return kGlyphHeight * scale; }

// Draws `text` with its top-left corner at (x, y), each font pixel a scale x
// scale square. Returns text_width(text, scale).
long draw_text(Image& canvas, long x, long y, std::string_view text, long scale, Rgb colour);

// A colour per class, far apart for neighbouring indices (hue steps of the
// golden angle), saturated and bright enough to stand out on most photos.
Rgb class_colour(uint32_t index);

// A box to draw with a caption ("dog 0.87") in `colour`.
struct LabelledBox {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  std::string caption;
  Rgb colour;
};

// Each box outlined in its colour between thin black lines, line width and
// font scaled to the canvas; then per box, in the given order (best first), a
// tag in its colour holding the caption above its top-left corner (inside the
// box when there is no room above), moved down past the tags already placed
// so none hides another. Text is black on light colours, white on dark ones.
void draw_labelled_boxes(Image& canvas, std::span<const LabelledBox> boxes);

}  // namespace huddle::node
