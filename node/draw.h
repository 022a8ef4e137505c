// Drawing on an annotation canvas (Result::annotate): filled and outlined
// rectangles and short labels in a 5x7 bitmap font of the project's own
// (lowercase a-z, digits, space, '.', '%', '#'; other characters draw as a
// box). Everything is clipped to the canvas: any coordinates are safe; a
// canvas that is not RGB with a matching pixel buffer is left as it is.
#pragma once

#include <cstdint>
#include <string_view>

#include "node/image.h"

namespace huddle::node {

struct Rgb {
  uint8_t r, g, b;
};

// Fills x0 <= x < x1, y0 <= y < y1 of an RGB canvas (clipped).
void fill_rect(Image& canvas, long x0, long y0, long x1, long y1, Rgb colour);
// An outline `thickness` pixels wide just inside the rectangle (clipped).
void outline_rect(Image& canvas, long x0, long y0, long x1, long y1, long thickness, Rgb colour);

// Width and height in pixels of `text` drawn at `scale` (glyph 5x7, 1 column apart).
long text_width(std::string_view text, long scale);
constexpr long text_height(long scale) { return 7 * scale; }
// Draws `text` with its top-left corner at (x, y), each font pixel a scale x scale square.
void draw_text(Image& canvas, long x, long y, std::string_view text, long scale, Rgb colour);

}  // namespace huddle::node
