#include "node/draw.h"

#include <algorithm>
#include <array>
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

Rgb class_colour(uint32_t index) {
  const double hue = std::fmod(index * 137.508, 360.0) / 60.0, sat = 0.85, val = 0.95;
  // HSV to RGB: channel n is val - val * sat * clamp(min(k, 4 - k), 0, 1), k = (n + hue) mod 6.
  const auto channel = [&](double n) {
    const double k = std::fmod(n + hue, 6.0);
    return static_cast<uint8_t>(
        std::lround(255 * (val - val * sat * std::clamp(std::min(k, 4 - k), 0.0, 1.0))));
  };
  return {channel(5), channel(3), channel(1)};
}

void draw_labelled_boxes(Image& canvas, std::span<const LabelledBox> boxes) {
  const long side = std::min<long>(canvas.width, canvas.height);
  const long s = std::max(1L, side / 240), line = std::max(2L, side / 160);  // font pixel size, line width
  const auto corners = [](const LabelledBox& b) {
    return std::array<long, 4>{std::lround(b.x0), std::lround(b.y0), std::lround(b.x1), std::lround(b.y1)};
  };
  for (auto it = boxes.rbegin(); it != boxes.rend(); ++it) {
    const auto [x0, y0, x1, y1] = corners(*it);
    outline_rect(canvas, x0 - 1, y0 - 1, x1 + 1, y1 + 1, 1, {0, 0, 0});
    outline_rect(canvas, x0, y0, x1, y1, line, it->colour);
    outline_rect(canvas, x0 + line, y0 + line, x1 - line, y1 - line, 1, {0, 0, 0});
  }
  std::vector<std::array<long, 4>> placed;
  const auto overlaps = [&](long x, long y, long w, long h) {
    return std::any_of(placed.begin(), placed.end(), [&](const std::array<long, 4>& t) {
      return x < t[2] && t[0] < x + w && y < t[3] && t[1] < y + h;
    });
  };
  for (const LabelledBox& b : boxes) {
    const auto [x0, y0, x1, y1] = corners(b);
    const long tag_w = text_width(b.caption, s) + 4 * s, tag_h = text_height(s) + 4 * s;
    const long tx = std::max(0L, std::min(x0, static_cast<long>(canvas.width) - tag_w));
    long ty = y0 - tag_h >= 0 ? y0 - tag_h : y0;
    while (overlaps(tx, ty, tag_w, tag_h) && ty + 2 * tag_h <= std::max(y1, y0 + tag_h)) ty += tag_h;
    placed.push_back({tx, ty, tx + tag_w, ty + tag_h});
    fill_rect(canvas, tx, ty, tx + tag_w, ty + tag_h, b.colour);
    const bool light = 0.299 * b.colour.r + 0.587 * b.colour.g + 0.114 * b.colour.b > 140;
    draw_text(canvas, tx + 2 * s, ty + 2 * s, b.caption, s, light ? Rgb{0, 0, 0} : Rgb{255, 255, 255});
  }
}

}  // namespace huddle::node
