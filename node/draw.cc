#include "node/draw.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>

namespace huddle::node {
namespace {

// One glyph: its character and five rows of three pixels, '#' set.
struct Glyph {
  char c;
  const char* rows;  // 15 characters, row by row
};

// The font, drawn for huddle (3 x 5 is the smallest grid where every capital
// and digit stays distinct).
constexpr Glyph kFont[] = {
    {' ', "..............."}, {'0', "####.##.##.####"}, {'1', ".#.##..#..#.###"}, {'2', "###..#####..###"},
    {'3', "###..#.##..####"}, {'4', "#.##.####..#..#"}, {'5', "####..###..####"}, {'6', "####..####.####"},
    {'7', "###..#.#..#..#."}, {'8', "####.#####.####"}, {'9', "####.####..####"}, {'A', ".#.#.#####.##.#"},
    {'B', "##.#.###.#.###."}, {'C', ".###..#..#...##"}, {'D', "##.#.##.##.###."}, {'E', "####..##.#..###"},
    {'F', "####..##.#..#.."}, {'G', ".###..#.##.#.##"}, {'H', "#.##.#####.##.#"}, {'I', "###.#..#..#.###"},
    {'J', "..#..#..##.#.#."}, {'K', "#.##.###.#.##.#"}, {'L', "#..#..#..#..###"}, {'M', "#.########.##.#"},
    {'N', "####.##.##.##.#"}, {'O', ".#.#.##.##.#.#."}, {'P', "##.#.###.#..#.."}, {'Q', ".#.#.##.###..##"},
    {'R', "##.#.###.#.##.#"}, {'S', ".###...#...###."}, {'T', "###.#..#..#..#."}, {'U', "#.##.##.##.####"},
    {'V', "#.##.##.##.#.#."}, {'W', "#.##.########.#"}, {'X', "#.##.#.#.#.##.#"}, {'Y', "#.##.#.#..#..#."},
    {'Z', "###..#.#.#..###"}, {'.', ".............#."}, {',', "..........#.#.."}, {':', "....#.....#...."},
    {';', "....#.....#.#.."}, {'-', "......###......"}, {'_', "............###"}, {'(', "..#.#..#..#...#"},
    {')', "#...#..#..#.#.."}, {'/', "..#..#.#.#..#.."}, {'\'', ".#..#.........."}, {'"', "#.##.#........."},
    {'%', "#.#..#.#.#..#.#"}, {'+', "....#.###.#...."}, {'=', "...###...###..."}, {'!', ".#..#..#.....#."},
    {'?', "##...#.#.....#."}, {'#', "#.#####.#####.#"}, {'&', ".#.#.#.#.#.#.##"}, {'*', "#.#.#.#.#......"},
    {'<', "..#.#.#...#...#"}, {'>', "#...#...#.#.#.."}, {'[', "##.#..#..#..##."}, {']', ".##..#..#..#.##"},
    {'|', ".#..#..#..#..#."}, {'@', "####.#####...##"},
};

const char* glyph_rows(char c) {
  if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  for (const Glyph& g : kFont)
    if (g.c == c) return g.rows;
  return glyph_rows('?');
}

void require_rgb(const Image& canvas) {
  if (canvas.format != PixelFormat::rgb || canvas.pixels.size() != size_t{canvas.width} * canvas.height * 3)
    throw std::invalid_argument("an annotation canvas must be an RGB image");
}

// The characters draw_text draws: one per ASCII byte, one per UTF-8 sequence.
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

void fill_rect(Image& canvas, int x0, int y0, int x1, int y1, Rgb colour, float alpha) {
  require_rgb(canvas);
  x0 = std::max(x0, 0), y0 = std::max(y0, 0);
  x1 = std::min<int64_t>(x1, canvas.width), y1 = std::min<int64_t>(y1, canvas.height);
  const float a = std::clamp(alpha, 0.0f, 1.0f);
  const uint8_t rgb[3] = {colour.r, colour.g, colour.b};
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      uint8_t* p = &canvas.pixels[(size_t{static_cast<uint32_t>(y)} * canvas.width + x) * 3];
      for (int ch = 0; ch < 3; ++ch) p[ch] = static_cast<uint8_t>(std::lround(p[ch] + a * (rgb[ch] - p[ch])));
    }
}

int text_width(std::string_view text, int scale) {
  int n = 0;
  for_each_char(text, [&](char) { ++n; });
  return n == 0 ? 0 : (n * (kGlyphWidth + 1) - 1) * scale;
}

int draw_text(Image& canvas, int x, int y, std::string_view text, Rgb colour, int scale) {
  require_rgb(canvas);
  int pen = x;
  for_each_char(text, [&](char c) {
    const char* rows = glyph_rows(c);
    for (int gy = 0; gy < kGlyphHeight; ++gy)
      for (int gx = 0; gx < kGlyphWidth; ++gx)
        if (rows[gy * kGlyphWidth + gx] == '#')
          fill_rect(canvas, pen + gx * scale, y + gy * scale, pen + (gx + 1) * scale, y + (gy + 1) * scale, colour);
    pen += (kGlyphWidth + 1) * scale;
  });
  return text_width(text, scale);
}

}  // namespace huddle::node
