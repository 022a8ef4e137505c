#include "node/draw.h"

#include <algorithm>

namespace huddle::node {
namespace {

// The font: 7 rows of 5 columns per glyph, '#' = ink.
struct Glyph {
  char c;
  const char* rows[7];  // 5 characters each
};

constexpr Glyph kFont[] = {
    {'a', {".....", ".....", ".###.", "....#", ".####", "#...#", ".####"}},
    {'b', {"#....", "#....", "####.", "#...#", "#...#", "#...#", "####."}},
    {'c', {".....", ".....", ".###.", "#....", "#....", "#....", ".###."}},
    {'d', {"....#", "....#", ".####", "#...#", "#...#", "#...#", ".####"}},
    {'e', {".....", ".....", ".###.", "#...#", "#####", "#....", ".###."}},
    {'f', {"..##.", ".#...", "####.", ".#...", ".#...", ".#...", ".#..."}},
    {'g', {".....", ".####", "#...#", "#...#", ".####", "....#", ".###."}},
    {'h', {"#....", "#....", "####.", "#...#", "#...#", "#...#", "#...#"}},
    {'i', {"..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."}},
    {'j', {"...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##.."}},
    {'k', {"#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."}},
    {'l', {".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'m', {".....", ".....", "##.#.", "#.#.#", "#.#.#", "#.#.#", "#.#.#"}},
    {'n', {".....", ".....", "####.", "#...#", "#...#", "#...#", "#...#"}},
    {'o', {".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."}},
    {'p', {".....", ".....", "####.", "#...#", "####.", "#....", "#...."}},
    {'q', {".....", ".....", ".####", "#...#", ".####", "....#", "....#"}},
    {'r', {".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."}},
    {'s', {".....", ".....", ".####", "#....", ".###.", "....#", "####."}},
    {'t', {".#...", ".#...", "####.", ".#...", ".#...", ".#..#", "..##."}},
    {'u', {".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"}},
    {'v', {".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."}},
    {'w', {".....", ".....", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."}},
    {'x', {".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"}},
    {'y', {".....", "#...#", "#...#", "#...#", ".####", "....#", ".###."}},
    {'z', {".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"}},
    {'0', {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."}},
    {'1', {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."}},
    {'2', {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"}},
    {'3', {"####.", "....#", "....#", ".###.", "....#", "....#", "####."}},
    {'4', {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."}},
    {'5', {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."}},
    {'6', {".###.", "#....", "#....", "####.", "#...#", "#...#", ".###."}},
    {'7', {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."}},
    {'8', {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."}},
    {'9', {".###.", "#...#", "#...#", ".####", "....#", "....#", ".###."}},
    {'%', {"##...", "##..#", "...#.", "..#..", ".#...", "#..##", "...##"}},
    {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
    {'#', {".#.#.", "#####", ".#.#.", ".#.#.", "#####", ".#.#.", "....."}},
    {' ', {".....", ".....", ".....", ".....", ".....", ".....", "....."}},
};

// The rows of `c`, or nullptr for a character the font lacks.
const char* const* glyph(char c) {
  for (const Glyph& g : kFont)
    if (g.c == c) return g.rows;
  return nullptr;
}

void put(Image& canvas, long x, long y, Rgb colour) {
  if (x < 0 || y < 0 || x >= static_cast<long>(canvas.width) || y >= static_cast<long>(canvas.height)) return;
  uint8_t* p = canvas.pixels.data() + (static_cast<size_t>(y) * canvas.width + static_cast<size_t>(x)) * 3;
  p[0] = colour.r, p[1] = colour.g, p[2] = colour.b;
}

}  // namespace

void fill_rect(Image& canvas, long x0, long y0, long x1, long y1, Rgb colour) {
  if (canvas.format != PixelFormat::rgb || canvas.pixels.size() != size_t{canvas.width} * canvas.height * 3) return;
  x0 = std::max(x0, 0L), y0 = std::max(y0, 0L);
  x1 = std::min(x1, static_cast<long>(canvas.width)), y1 = std::min(y1, static_cast<long>(canvas.height));
  for (long y = y0; y < y1; ++y)
    for (long x = x0; x < x1; ++x) put(canvas, x, y, colour);
}

void outline_rect(Image& canvas, long x0, long y0, long x1, long y1, long thickness, Rgb colour) {
  fill_rect(canvas, x0, y0, x1, std::min(y1, y0 + thickness), colour);
  fill_rect(canvas, x0, std::max(y0, y1 - thickness), x1, y1, colour);
  fill_rect(canvas, x0, y0, std::min(x1, x0 + thickness), y1, colour);
  fill_rect(canvas, std::max(x0, x1 - thickness), y0, x1, y1, colour);
}

long text_width(std::string_view text, long scale) {
  return text.empty() ? 0 : (6 * static_cast<long>(text.size()) - 1) * scale;
}

void draw_text(Image& canvas, long x, long y, std::string_view text, long scale, Rgb colour) {
  for (char c : text) {
    const char* const* rows = glyph(c);
    for (long row = 0; row < 7; ++row)
      for (long col = 0; col < 5; ++col) {
        const bool ink = rows ? rows[row][col] == '#' : (row == 0 || row == 6 || col == 0 || col == 4);
        if (ink) fill_rect(canvas, x + col * scale, y + row * scale, x + (col + 1) * scale, y + (row + 1) * scale, colour);
      }
    x += 6 * scale;
  }
}

}  // namespace huddle::node
