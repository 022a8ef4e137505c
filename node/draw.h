// Drawing on an annotation canvas (Result::annotate): blended rectangles and
// short text in a built-in 3x5 pixel font (digits, capital letters, common
// punctuation; lowercase letters are drawn as capitals, anything else as '?'),
// scaled by a whole factor. Everything is clipped to the canvas.
#pragma once

#include <cstdint>
#include <string_view>

#include "node/image.h"

namespace huddle::node {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

inline constexpr int kGlyphWidth = 3, kGlyphHeight = 5;

// `image` as an RGB canvas of the same size (gray replicated; alpha dropped).
Image rgb_canvas(const Image& image);

// Blends `colour` over the pixels x0 <= x < x1, y0 <= y < y1 of `canvas` (an
// RGB image) with opacity `alpha` in [0, 1]. Throws std::invalid_argument for
// a canvas that is not RGB.
void fill_rect(Image& canvas, int x0, int y0, int x1, int y1, Rgb colour, float alpha = 1.0f);

// Width in pixels of `text` drawn at `scale`: each glyph 3 * scale wide, one
// scale of space between glyphs.
int text_width(std::string_view text, int scale);

// Draws `text` with its top-left corner at (x, y), each font pixel a scale x
// scale square. UTF-8 sequences become one '?'. Returns text_width().
int draw_text(Image& canvas, int x, int y, std::string_view text, Rgb colour, int scale);

}  // namespace huddle::node
