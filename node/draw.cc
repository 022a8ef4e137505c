#include "node/draw.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>

namespace huddle::node {
namespace {

// One glyph: its character and 7 rows of 5 columns, '#' = ink. Drawn for
// huddle.
struct Glyph {
  char c;
  const char* rows[kGlyphHeight];  // kGlyphWidth characters each
};

constexpr Glyph kFont[] = {
    {'a', {".....", ".....", ".###.", "....#", ".####", "#...#", ".####"}},
    {'b', {"#....", "#....", "####.", "#...#", "#...#", "#...#", "####."}},
    {'c', {".....", ".....", ".###.", "#....", "#....", "#....", ".###."}},
    {'d', {"....#", "....#", ".####", "#...#", "#...#", "#...#", ".####"}},
    {'e', {".....", ".....", ".###.", "#...#", "#####", "#....", ".###."}},
    {'f', {"..##.", ".#...", "####.", ".#...", ".#...", ".#...", ".#..."}},
    {'g', {".....", ".....", ".####", "#...#", ".####", "....#", ".###."}},
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
    {'y', {".....", ".....", "#...#", "#...#", ".####", "....#", ".###."}},
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
    {',', {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."}},
    {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
    {';', {".....", ".##..", ".##..", ".....", ".##..", "..#..", ".#..."}},
    {'-', {".....", ".....", ".....", "#####", ".....", ".....", "....."}},
    {'_', {".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
    {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
    {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
    {'[', {".###.", ".#...", ".#...", ".#...", ".#...", ".#...", ".###."}},
    {']', {".###.", "...#.", "...#.", "...#.", "...#.", "...#.", ".###."}},
    {'/', {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}},
    {'|', {"..#..", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."}},
    {'\'', {"..#..", "..#..", ".#...", ".....", ".....", ".....", "....."}},
    {'"', {".#.#.", ".#.#.", ".....", ".....", ".....", ".....", "....."}},
    {'+', {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}},
    {'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
    {'<', {"...#.", "..#..", ".#...", "#....", ".#...", "..#..", "...#."}},
    {'>', {".#...", "..#..", "...#.", "....#", "...#.", "..#..", ".#..."}},
    {'!', {"..#..", "..#..", "..#..", "..#..", "..#..", ".....", "..#.."}},
    {'?', {".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."}},
    {'&', {".##..", "#..#.", "#.#..", ".#...", "#.#.#", "#..#.", ".##.#"}},
    {'*', {".....", "..#..", "#.#.#", ".###.", "#.#.#", "..#..", "....."}},
    {'@', {".###.", "#...#", "#.###", "#.#.#", "#.###", "#....", ".###."}},
};

// The rows of `c` (capitals as lowercase; '?' for a character the font lacks).
const char* const* glyph(char c) {
  if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  for (const Glyph& g : kFont)
    if (g.c == c) return g.rows;
  return glyph('?');
}

void require_rgb(const Image& canvas) {
  if (canvas.format != PixelFormat::rgb || canvas.pixels.size() != size_t{canvas.width} * canvas.height * 3)
    throw std::invalid_argument("an annotation canvas must be an RGB image");
}

// The characters draw_text draws: one per ASCII byte, '?' per UTF-8 sequence.
template <class F>
void for_each_char(std::string_view text, F&& f) {
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      f(static_cast<char>(c));
      continue;
    }
    while (i + 1 < text.size() && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80) ++i;
    f('?');
  }
}

}  // namespace

Image rgb_canvas(const Image& image) {
  const size_t n = size_t{image.width} * image.height, c = channels(image.format);
  Image out{image.width, image.height, PixelFormat::rgb, std::vector<uint8_t>(n * 3)};
  for (size_t i = 0; i < n; ++i)
    for (size_t ch = 0; ch < 3; ++ch) out.pixels[i * 3 + ch] = image.pixels[i * c + (c == 1 ? 0 : ch)];
  return out;
}

void fill_rect(Image& canvas, long x0, long y0, long x1, long y1, Rgb colour, float alpha) {
  require_rgb(canvas);
  x0 = std::max(x0, 0L), y0 = std::max(y0, 0L);
  x1 = std::min(x1, static_cast<long>(canvas.width)), y1 = std::min(y1, static_cast<long>(canvas.height));
  const float a = std::clamp(alpha, 0.0f, 1.0f);
  const uint8_t rgb[3] = {colour.r, colour.g, colour.b};
  for (long y = y0; y < y1; ++y)
    for (long x = x0; x < x1; ++x) {
      uint8_t* p = &canvas.pixels[(static_cast<size_t>(y) * canvas.width + static_cast<size_t>(x)) * 3];
      for (int ch = 0; ch < 3; ++ch)
        p[ch] = a == 1.0f ? rgb[ch] : static_cast<uint8_t>(std::lround(p[ch] + a * (rgb[ch] - p[ch])));
    }
}

void outline_rect(Image& canvas, long x0, long y0, long x1, long y1, long thickness, Rgb colour) {
  fill_rect(canvas, x0, y0, x1, std::min(y1, y0 + thickness), colour);
  fill_rect(canvas, x0, std::max(y0, y1 - thickness), x1, y1, colour);
  fill_rect(canvas, x0, y0, std::min(x1, x0 + thickness), y1, colour);
  fill_rect(canvas, std::max(x0, x1 - thickness), y0, x1, y1, colour);
}

long text_width(std::string_view text, long scale) {
  long n = 0;
  for_each_char(text, [&](char) { ++n; });
  return n == 0 ? 0 : (n * (kGlyphWidth + 1) - 1) * scale;
}

long draw_text(Image& canvas, long x, long y, std::string_view text, long scale, Rgb colour) {
  require_rgb(canvas);
  long pen = x;
  for_each_char(text, [&](char c) {
    const char* const* rows = glyph(c);
    for (long row = 0; row < kGlyphHeight; ++row)
      for (long col = 0; col < kGlyphWidth; ++col)
        if (rows[row][col] == '#')
          fill_rect(canvas, pen + col * scale, y + row * scale, pen + (col + 1) * scale, y + (row + 1) * scale,
                    colour);
    pen += (kGlyphWidth + 1) * scale;
  });
  return text_width(text, scale);
}

}  // namespace huddle::node
