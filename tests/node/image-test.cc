// Image decoding and image -> model input: PNGs (libpng) and JPEGs
// (TurboJPEG) encoded here, EXIF orientations from hand-built APP1 segments,
// every refusal (empty, truncated, wrong magic, zero or too many pixels), the
// photos Debian ships, and image_to_input against the direct formula.
#include "node/image.h"

#include <png.h>
#include <turbojpeg.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/npy.h"
#include "node/image_input.h"

using namespace huddle::node;
using Bytes = std::vector<uint8_t>;

namespace {

// ---- encoders ---------------------------------------------------------------

struct PngSpec {
  uint32_t width, height;
  int color_type = PNG_COLOR_TYPE_RGB;
  int bit_depth = 8;
  Bytes raw = {};                  // rows as PNG stores them (packed bits, big-endian 16-bit)
  std::vector<png_color> palette = {};  // PNG_COLOR_TYPE_PALETTE
  Bytes trns_alpha = {};           // palette tRNS
  int trns_gray = -1;              // gray tRNS value
  bool interlace = false;
  bool header_only = false;        // stop after IHDR (no image data, no IEND)
};

void png_append(png_structp png, png_bytep data, size_t n) {
  auto* out = static_cast<Bytes*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}

Bytes encode_png(const PngSpec& s) {
  Bytes out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) std::abort();  // a bug in the test's own encoder
  png_set_write_fn(png, &out, png_append, nullptr);
  png_set_IHDR(png, info, s.width, s.height, s.bit_depth, s.color_type,
               s.interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty())
    png_set_PLTE(png, info, s.palette.data(), static_cast<int>(s.palette.size()));
  if (!s.trns_alpha.empty())
    png_set_tRNS(png, info, s.trns_alpha.data(), static_cast<int>(s.trns_alpha.size()), nullptr);
  png_color_16 gray_trns{};
  gray_trns.gray = static_cast<png_uint_16>(s.trns_gray);
  if (s.trns_gray >= 0) png_set_tRNS(png, info, nullptr, 0, &gray_trns);
  png_write_info(png, info);
  if (!s.header_only) {
    const size_t stride = s.raw.size() / s.height;
    std::vector<png_bytep> rows(s.height);
    for (size_t y = 0; y < s.height; ++y) rows[y] = const_cast<png_bytep>(s.raw.data() + y * stride);
    png_write_image(png, rows.data());
    png_write_end(png, nullptr);
  }
  png_destroy_write_struct(&png, &info);
  return out;
}

// A JPEG of `pixels` (gray or RGB), 4:4:4, the given quality.
Bytes encode_jpeg(const Image& image, int quality = 100) {
  tjhandle tj = tjInitCompress();
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const bool gray = image.format == PixelFormat::gray;
  const int rc = tjCompress2(tj, image.pixels.data(), static_cast<int>(image.width), 0,
                             static_cast<int>(image.height), gray ? TJPF_GRAY : TJPF_RGB, &buf, &size,
                             gray ? TJSAMP_GRAY : TJSAMP_444, quality, 0);
  REQUIRE(rc == 0);
  Bytes out(buf, buf + size);
  tjFree(buf);
  tjDestroy(tj);
  return out;
}

// `jpeg` with an APP1 Exif segment holding IFD0 with an Orientation tag, right after SOI.
Bytes with_exif(const Bytes& jpeg, int orientation, bool big_endian) {
  Bytes tiff;
  const auto put16 = [&](uint32_t v) {
    tiff.push_back(static_cast<uint8_t>(big_endian ? v >> 8 : v));
    tiff.push_back(static_cast<uint8_t>(big_endian ? v : v >> 8));
  };
  const auto put32 = [&](uint32_t v) {
    if (big_endian) put16(v >> 16), put16(v & 0xffff);
    else put16(v & 0xffff), put16(v >> 16);
  };
  tiff.assign(2, big_endian ? 'M' : 'I');
  put16(42);
  put32(8);  // IFD0 right after the header
  put16(2);  // two entries: an unrelated one first (ImageWidth, LONG), then Orientation
  put16(0x0100), put16(4), put32(1), put32(48);
  put16(0x0112), put16(3), put32(1), put16(static_cast<uint32_t>(orientation)), put16(0);
  put32(0);  // no next IFD
  const size_t length = 2 + 6 + tiff.size();
  Bytes out = {0xff, 0xd8, 0xff, 0xe1, uint8_t(length >> 8), uint8_t(length), 'E', 'x', 'i', 'f', 0, 0};
  // Byte by byte: GCC 12 misjudges vector::insert's bounds here (-Warray-bounds).
  for (uint8_t b : tiff) out.push_back(b);
  for (size_t i = 2; i < jpeg.size(); ++i) out.push_back(jpeg[i]);
  return out;
}

// The message of the ImageError decode_image throws for `bytes` ("" if none).
std::string error_of(const Bytes& bytes, const DecodeLimits& limits = {}) {
  try {
    decode_image(bytes, limits, "pic.x");
  } catch (const ImageError& e) {
    return e.what();
  }
  return "";
}

uint8_t pixel(const Image& im, size_t x, size_t y, size_t c) {
  return im.pixels[(y * im.width + x) * channels(im.format) + c];
}

// ---- the orientation test image ----------------------------------------------
// Cells A..F, 3 wide and 2 high, each a 16x16 block of one colour:
//   A B C
//   D E F
constexpr int kCell = 16;
constexpr uint8_t kColours[6][3] = {{255, 0, 0}, {0, 255, 0}, {0, 0, 255},
                                    {255, 255, 0}, {0, 255, 255}, {255, 0, 255}};

Image cells_image() {
  Image im{3 * kCell, 2 * kCell, PixelFormat::rgb, Bytes(3 * kCell * 2 * kCell * 3)};
  for (size_t y = 0; y < im.height; ++y)
    for (size_t x = 0; x < im.width; ++x)
      std::memcpy(&im.pixels[(y * im.width + x) * 3], kColours[(y / kCell) * 3 + x / kCell], 3);
  return im;
}

// The cell each displayed cell shows, row by row, for orientations 1..8 (by
// hand from the EXIF definitions).
const char* const kDisplayed[9] = {"", "ABC/DEF", "CBA/FED", "FED/CBA", "DEF/ABC",
                                   "AD/BE/CF", "DA/EB/FC", "FC/EB/DA", "CF/BE/AD"};

// Which cell an image shows at each cell centre, as "ABC/DEF" ('?' for no match).
std::string cells_of(const Image& im) {
  std::string out;
  for (size_t cy = 0; cy < im.height / kCell; ++cy) {
    if (cy) out += '/';
    for (size_t cx = 0; cx < im.width / kCell; ++cx) {
      char found = '?';
      for (int k = 0; k < 6; ++k) {
        bool match = true;
        for (size_t c = 0; c < 3; ++c)
          match &= std::abs(pixel(im, cx * kCell + kCell / 2, cy * kCell + kCell / 2, c) - kColours[k][c]) <= 8;
        if (match) found = static_cast<char>('A' + k);
      }
      out += found;
    }
  }
  return out;
}

bool exists(const std::string& path) { return std::ifstream(path).good(); }

}  // namespace

TEST_CASE("PNG: RGB, RGBA, gray, gray + alpha, interlaced, decoded exactly", "[image]") {
  const uint32_t w = 5, h = 3;
  struct Case {
    int color_type, channels_in;
    PixelFormat want;
    bool interlace;
  };
  for (const Case k : {Case{PNG_COLOR_TYPE_RGB, 3, PixelFormat::rgb, false},
                       Case{PNG_COLOR_TYPE_RGB, 3, PixelFormat::rgb, true},
                       Case{PNG_COLOR_TYPE_RGB_ALPHA, 4, PixelFormat::rgba, false},
                       Case{PNG_COLOR_TYPE_GRAY, 1, PixelFormat::gray, false},
                       Case{PNG_COLOR_TYPE_GRAY_ALPHA, 2, PixelFormat::rgba, false}}) {
    PngSpec s{w, h, k.color_type};
    s.interlace = k.interlace;
    for (size_t i = 0; i < w * h * k.channels_in; ++i) s.raw.push_back(static_cast<uint8_t>(i * 37 + 11));
    const Image im = decode_image(encode_png(s), {}, "t.png");
    CAPTURE(k.color_type, k.interlace);
    REQUIRE(im.width == w);
    REQUIRE(im.height == h);
    REQUIRE(im.format == k.want);
    REQUIRE(im.pixels.size() == w * h * channels(k.want));
    for (size_t i = 0; i < w * h; ++i) {
      const uint8_t* in = &s.raw[i * k.channels_in];
      const uint8_t* out = &im.pixels[i * channels(k.want)];
      if (k.color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
        REQUIRE((out[0] == in[0] && out[1] == in[0] && out[2] == in[0] && out[3] == in[1]));
      } else {
        REQUIRE(std::memcmp(in, out, k.channels_in) == 0);
      }
    }
  }
}

TEST_CASE("encode_png and write_png: what decodes is what was written; a bad path leaves nothing", "[image]") {
  for (const PixelFormat f : {PixelFormat::gray, PixelFormat::rgb, PixelFormat::rgba}) {
    Image im{7, 4, f, {}};
    for (size_t i = 0; i < 7 * 4 * channels(f); ++i) im.pixels.push_back(static_cast<uint8_t>(i * 53 + 7));
    const Image back = decode_image(huddle::node::encode_png(im), {}, "mem.png");
    CAPTURE(format_name(f));
    REQUIRE(back.width == 7);
    REQUIRE(back.height == 4);
    REQUIRE(back.format == f);
    REQUIRE(back.pixels == im.pixels);
  }
  const std::string dir = "write-png-test.d";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directory(dir);
  Image im{3, 2, PixelFormat::rgb, Bytes(18, 200)};
  write_png(dir + "/out.png", im);
  REQUIRE(read_image(dir + "/out.png").pixels == im.pixels);
  REQUIRE_THROWS_WITH(write_png(dir + "/missing/out.png", im), Catch::Contains(dir + "/missing/out.png"));
  REQUIRE_THROWS_WITH(huddle::node::encode_png(Image{}), Catch::Contains("empty"));
  REQUIRE(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator{}) == 1);  // no temporary left beside out.png
  std::filesystem::remove_all(dir);
}

TEST_CASE("PNG: 16-bit scaled to 8, palette, tRNS, 1-bit gray", "[image]") {
  SECTION("16-bit RGB: v / 257 rounded") {
    PngSpec s{4, 1, PNG_COLOR_TYPE_RGB, 16};
    const uint16_t values[12] = {0, 257, 65535, 128 * 257, 300, 1000, 40000, 65000, 12345, 2, 60000, 33000};
    for (uint16_t v : values) {
      s.raw.push_back(static_cast<uint8_t>(v >> 8));
      s.raw.push_back(static_cast<uint8_t>(v));
    }
    const Image im = decode_image(encode_png(s), {}, "t.png");
    REQUIRE(im.format == PixelFormat::rgb);
    for (size_t i = 0; i < 12; ++i) REQUIRE(im.pixels[i] == std::lround(values[i] / 257.0));
  }
  SECTION("palette without and with tRNS") {
    PngSpec s{3, 2, PNG_COLOR_TYPE_PALETTE};
    s.palette = {{10, 20, 30}, {200, 100, 50}, {0, 255, 1}};
    s.raw = {0, 1, 2, 2, 1, 0};
    Image im = decode_image(encode_png(s), {}, "t.png");
    REQUIRE(im.format == PixelFormat::rgb);
    for (size_t i = 0; i < 6; ++i) {
      const png_color& c = s.palette[s.raw[i]];
      REQUIRE((im.pixels[3 * i] == c.red && im.pixels[3 * i + 1] == c.green && im.pixels[3 * i + 2] == c.blue));
    }
    s.trns_alpha = {0, 128};  // entry 2 stays opaque
    im = decode_image(encode_png(s), {}, "t.png");
    REQUIRE(im.format == PixelFormat::rgba);
    const uint8_t alpha[3] = {0, 128, 255};
    for (size_t i = 0; i < 6; ++i) {
      REQUIRE(im.pixels[4 * i] == s.palette[s.raw[i]].red);
      REQUIRE(im.pixels[4 * i + 3] == alpha[s.raw[i]]);
    }
  }
  SECTION("1-bit gray becomes 0 / 255; a gray tRNS becomes alpha") {
    PngSpec s{8, 1, PNG_COLOR_TYPE_GRAY, 1};
    s.raw = {0xa5};  // 1 0 1 0 0 1 0 1
    Image im = decode_image(encode_png(s), {}, "t.png");
    REQUIRE(im.format == PixelFormat::gray);
    REQUIRE(im.pixels == Bytes{255, 0, 255, 0, 0, 255, 0, 255});
    s.trns_gray = 0;
    im = decode_image(encode_png(s), {}, "t.png");
    REQUIRE(im.format == PixelFormat::rgba);
    for (size_t x = 0; x < 8; ++x) {
      const bool on = (0xa5 >> (7 - x)) & 1;
      REQUIRE(pixel(im, x, 0, 0) == (on ? 255 : 0));
      REQUIRE(pixel(im, x, 0, 3) == (on ? 255 : 0));
    }
  }
}

TEST_CASE("JPEG: colour and gray, close to what was encoded", "[image]") {
  Image src{40, 24, PixelFormat::rgb, {}};
  for (size_t y = 0; y < src.height; ++y)
    for (size_t x = 0; x < src.width; ++x)
      for (size_t v : {x * 6, y * 10, 128 + x - y}) src.pixels.push_back(static_cast<uint8_t>(v));
  const Image im = decode_image(encode_jpeg(src), {}, "t.jpg");
  REQUIRE((im.width == 40 && im.height == 24 && im.format == PixelFormat::rgb));
  for (size_t i = 0; i < im.pixels.size(); ++i) REQUIRE(std::abs(im.pixels[i] - src.pixels[i]) <= 4);
  Image gray{16, 8, PixelFormat::gray, {}};
  for (size_t i = 0; i < 128; ++i) gray.pixels.push_back(static_cast<uint8_t>(i * 2));
  const Image g = decode_image(encode_jpeg(gray), {}, "t.jpg");
  REQUIRE((g.width == 16 && g.height == 8 && g.format == PixelFormat::gray));
  for (size_t i = 0; i < g.pixels.size(); ++i) REQUIRE(std::abs(g.pixels[i] - gray.pixels[i]) <= 3);
}

TEST_CASE("JPEG: every EXIF orientation, both byte orders, shows the picture upright", "[image]") {
  const Bytes jpeg = encode_jpeg(cells_image());
  REQUIRE(cells_of(decode_image(jpeg, {}, "t.jpg")) == kDisplayed[1]);
  for (int o = 1; o <= 8; ++o) {
    for (bool big : {false, true}) {
      CAPTURE(o, big);
      const Bytes tagged = with_exif(jpeg, o, big);
      REQUIRE(jpeg_exif_orientation(tagged) == o);
      const Image im = decode_image(tagged, {}, "t.jpg");
      REQUIRE(im.width == (o >= 5 ? 2 : 3) * kCell);
      REQUIRE(cells_of(im) == kDisplayed[o]);
    }
  }
  // Out-of-range values and damaged segments are ignored: the picture as stored.
  for (int bad : {0, 9, 300}) REQUIRE(cells_of(decode_image(with_exif(jpeg, bad, false), {}, "t.jpg")) == "ABC/DEF");
  Bytes cut = with_exif(jpeg, 6, false);
  cut[4 + 10 + 4] = 0xff;  // IFD0 offset far past the segment
  REQUIRE(jpeg_exif_orientation(cut) == 1);
  for (size_t n = 0; n < 40; ++n) REQUIRE(jpeg_exif_orientation({cut.data(), n}) == 1);
}

TEST_CASE("bad files are refused with the file's name and the problem", "[image]") {
  PngSpec s{20, 10, PNG_COLOR_TYPE_RGB};
  for (size_t i = 0; i < 600; ++i) s.raw.push_back(static_cast<uint8_t>(i * 7));
  const Bytes png = encode_png(s);
  Image src{64, 48, PixelFormat::rgb, Bytes(64 * 48 * 3)};
  for (size_t i = 0; i < src.pixels.size(); ++i) src.pixels[i] = static_cast<uint8_t>(i * 13 / 7);
  const Bytes jpeg = encode_jpeg(src, 90);

  REQUIRE_THAT(error_of({}), Catch::StartsWith("pic.x: empty file"));
  REQUIRE_THAT(error_of({'G', 'I', 'F', '8', '9', 'a', 0, 0}), Catch::Contains("not a PNG or JPEG"));
  REQUIRE_THAT(error_of({0x89, 'P', 'N'}), Catch::Contains("not a PNG or JPEG"));
  for (size_t n : {size_t{8}, size_t{20}, size_t{33}, png.size() / 2, png.size() - 12, png.size() - 1}) {
    CAPTURE(n);
    REQUIRE_THAT(error_of({png.begin(), png.begin() + static_cast<long>(n)}), Catch::StartsWith("pic.x: bad PNG"));
  }
  for (size_t n : {size_t{3}, size_t{20}, size_t{200}, jpeg.size() / 2, jpeg.size() - 2}) {
    CAPTURE(n);
    REQUIRE_THAT(error_of({jpeg.begin(), jpeg.begin() + static_cast<long>(n)}), Catch::StartsWith("pic.x: bad JPEG"));
  }

  // Too many pixels, from the header alone (no image data follows).
  PngSpec huge{20000, 20000, PNG_COLOR_TYPE_RGB};
  huge.header_only = true;
  REQUIRE_THAT(error_of(encode_png(huge)), Catch::Contains("20000x20000 pixels is more than the limit of 50000000"));
  REQUIRE_THAT(error_of(png, {.max_pixels = 199}), Catch::Contains("20x10 pixels is more than the limit of 199"));
  REQUIRE(error_of(png, {.max_pixels = 200}).empty());
  // A JPEG's frame header (SOF0) patched to 60000x60000, and to zero height.
  size_t sof = 2;
  while (!(jpeg[sof] == 0xff && jpeg[sof + 1] == 0xc0)) ++sof;
  Bytes big = jpeg;
  big[sof + 5] = big[sof + 7] = 0xea, big[sof + 6] = big[sof + 8] = 0x60;
  REQUIRE_THAT(error_of(big), Catch::Contains("60000x60000 pixels is more than the limit"));
  Bytes zero = jpeg;
  zero[sof + 5] = zero[sof + 6] = 0;
  REQUIRE_THAT(error_of(zero), Catch::StartsWith("pic.x: "));
  // A PNG header with width 0 (its CRC made right, so the width is what is wrong).
  Bytes zero_png = png;
  std::memset(&zero_png[16], 0, 4);
  uint32_t crc = ~0u;
  for (size_t i = 12; i < 29; ++i) {
    crc ^= zero_png[i];
    for (int b = 0; b < 8; ++b) crc = crc >> 1 ^ (0xedb88320u & (0u - (crc & 1)));
  }
  crc = ~crc;
  for (int k = 0; k < 4; ++k) zero_png[29 + k] = static_cast<uint8_t>(crc >> (24 - 8 * k));
  REQUIRE_THAT(error_of(zero_png), Catch::StartsWith("pic.x: the header gives 0x10 pixels (zero)"));
  // A chunk announcing more bytes than the file has (a fuzzer finding: libpng
  // allocated a tEXt chunk's 1.9 GB before reading it), placed after IHDR.
  Bytes text = {png.begin(), png.begin() + 33};
  for (int b : {0x74, 0x43, 0x00, 0x19, int{'t'}, int{'E'}, int{'X'}, int{'t'}, int{'C'}, 0}) text.push_back(static_cast<uint8_t>(b));
  REQUIRE_THAT(error_of(text), Catch::Contains("bad PNG: truncated data (a chunk runs past the end)"));
  // Bytes after IEND are not read.
  Bytes trailing = png;
  for (int b : {0, 0, 0, 0x77, 1}) trailing.push_back(static_cast<uint8_t>(b));
  REQUIRE(decode_image(trailing, {}, "t.png").pixels == decode_image(png, {}, "t.png").pixels);
  // Damaged image data in the middle of a PNG: a CRC error, not a partial image.
  Bytes flipped = png;
  flipped[png.size() / 2] ^= 0x40;
  REQUIRE_THAT(error_of(flipped), Catch::StartsWith("pic.x: bad PNG"));
}

TEST_CASE("read_image: missing, directory, over the file size limit", "[image]") {
  REQUIRE_THROWS_WITH(read_image("/nonexistent/x.png"), Catch::StartsWith("/nonexistent/x.png: cannot open"));
  REQUIRE_THROWS_WITH(read_image("/tmp"), Catch::Contains("is a directory"));
  const std::string path = "/usr/lib/python3/dist-packages/skimage/data/chelsea.png";
  if (!exists(path)) return;
  REQUIRE_THROWS_WITH(read_image(path, {.max_file_bytes = 1000}), Catch::Contains("file size limit of 1000"));
  REQUIRE(is_image_file(path));
  REQUIRE_FALSE(is_image_file("/usr/lib/python3/dist-packages/skimage/data/__init__.py"));
}

TEST_CASE("the photos Debian ships decode; skimage's truncated.jpg is refused", "[image]") {
  const std::string sk = "/usr/lib/python3/dist-packages/skimage/data/";
  struct Photo {
    std::string path;
    uint32_t width, height;
    PixelFormat format;
  };
  const Photo photos[] = {
      {sk + "chelsea.png", 451, 300, PixelFormat::rgb},   {sk + "camera.png", 512, 512, PixelFormat::gray},
      {sk + "horse.png", 400, 328, PixelFormat::rgba},    {sk + "chessboard_RGB.png", 200, 200, PixelFormat::rgb},
      {sk + "green_palette.png", 320, 240, PixelFormat::rgb}, {sk + "checker_bilevel.png", 10, 10, PixelFormat::gray},
      {sk + "rocket.jpg", 640, 427, PixelFormat::rgb},    {sk + "hubble_deep_field.jpg", 1000, 872, PixelFormat::rgb},
      {sk + "retina.jpg", 1411, 1411, PixelFormat::rgb},
      {"/usr/share/darknet/data/dog.jpg", 768, 576, PixelFormat::rgb},
      {"/usr/share/darknet/data/person.jpg", 640, 424, PixelFormat::rgb},
      {"/usr/share/darknet/data/horses.jpg", 773, 512, PixelFormat::rgb},
  };
  size_t seen = 0;
  for (const Photo& p : photos) {
    if (!exists(p.path)) continue;
    CAPTURE(p.path);
    const Image im = read_image(p.path);
    REQUIRE((im.width == p.width && im.height == p.height && im.format == p.format));
    // A photo, not a blank: its pixels vary.
    uint8_t lo = 255, hi = 0;
    for (uint8_t v : im.pixels) lo = std::min(lo, v), hi = std::max(hi, v);
    REQUIRE(hi - lo > 100);
    ++seen;
  }
  if (exists(sk + "truncated.jpg"))
    REQUIRE_THROWS_WITH(read_image(sk + "truncated.jpg"), Catch::StartsWith(sk + "truncated.jpg: bad JPEG"));
  if (seen == 0) WARN("no photos installed (python3-skimage, darknet: scripts/models installs them)");
}

// ---- image_to_input -----------------------------------------------------------

namespace {

// (p - mean) / std of every output value, computed directly (no kernel).
float normalised(double v, const InputPreprocess& pre, size_t c) { return float((v - pre.mean[c]) / pre.std[c]); }

// The mean of channel c of the 2x2 pixels whose top left is (x, y).
double block_mean(const Image& im, size_t x, size_t y, size_t c) {
  return (pixel(im, x, y, c) + pixel(im, x + 1, y, c) + pixel(im, x, y + 1, c) + pixel(im, x + 1, y + 1, c)) / 4.0;
}

Image ramp(uint32_t w, uint32_t h, PixelFormat f) {
  Image im{w, h, f, Bytes(size_t{w} * h * channels(f))};
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>((i * 29 + i / 7) % 251);
  return im;
}

}  // namespace

TEST_CASE("image_to_input: stretch, centre crop, letterbox, NCHW, BGR, gray against the formula", "[image]") {
  InputPreprocess pre;
  pre.mean = {120.5f, 100, 90};
  pre.std = {50, 60.5f, 70};
  const auto near = [](float a, float b) { return std::abs(a - b) <= 1e-4f * std::max(1.0f, std::abs(b)); };

  SECTION("same size: each value is (p - mean) / std; NHWC, NCHW, BGR") {
    const Image im = ramp(5, 4, PixelFormat::rgba);
    pre.width = 5, pre.height = 4;
    const auto nhwc = image_to_input(im, pre, {1, 4, 5, 3});
    pre.nchw = true;
    const auto nchw = image_to_input(im, pre, {1, 3, 4, 5});
    pre.order = InputPreprocess::Order::bgr;
    const auto bgr = image_to_input(im, pre, {1, 3, 4, 5});
    for (size_t y = 0; y < 4; ++y)
      for (size_t x = 0; x < 5; ++x)
        for (size_t c = 0; c < 3; ++c) {
          REQUIRE(near(nhwc[(y * 5 + x) * 3 + c], normalised(pixel(im, x, y, c), pre, c)));
          REQUIRE(near(nchw[(c * 4 + y) * 5 + x], normalised(pixel(im, x, y, c), pre, c)));
          REQUIRE(near(bgr[(c * 4 + y) * 5 + x], normalised(pixel(im, x, y, 2 - c), pre, c)));
        }
  }
  SECTION("half size: the mean of each 2x2 block (half-pixel centres)") {
    const Image im = ramp(8, 6, PixelFormat::rgb);
    pre.width = 4, pre.height = 3;
    const auto out = image_to_input(im, pre, {1, 3, 4, 3});
    for (size_t y = 0; y < 3; ++y)
      for (size_t x = 0; x < 4; ++x)
        for (size_t c = 0; c < 3; ++c) {
          REQUIRE(near(out[(y * 4 + x) * 3 + c], normalised(block_mean(im, 2 * x, 2 * y, c), pre, c)));
        }
  }
  SECTION("a 16x downscale averages areas (no aliasing): every 4th column 255 gives 63.75 everywhere") {
    // (Two bilinear taps alone would read columns 7 and 8 of each 16: 127.5.)
    Image im{80, 64, PixelFormat::rgb, Bytes(80 * 64 * 3)};
    for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = (i / 3) % 4 == 0 ? 255 : 0;
    pre.width = 5, pre.height = 4;
    const auto out = image_to_input(im, pre, {1, 4, 5, 3});
    for (size_t i = 0; i < out.size(); ++i)
      REQUIRE(std::abs(out[i] - normalised(63.75, pre, i % 3)) <= 0.5f / pre.std[i % 3]);
  }
  SECTION("centre crop: a 10x4 image into 2x2 takes columns 3..6, halved") {
    const Image im = ramp(10, 4, PixelFormat::rgb);
    pre.width = 2, pre.height = 2;
    pre.resize = InputPreprocess::Resize::center_crop;
    const auto out = image_to_input(im, pre, {1, 2, 2, 3});
    for (size_t y = 0; y < 2; ++y)
      for (size_t x = 0; x < 2; ++x)
        for (size_t c = 0; c < 3; ++c)
          REQUIRE(near(out[(y * 2 + x) * 3 + c], normalised(block_mean(im, 3 + 2 * x, 2 * y, c), pre, c)));
  }
  SECTION("centre crop 0.5: a 12x4 image into 2x2 takes the 2x2 pixels at (5, 1), unscaled") {
    const Image im = ramp(12, 4, PixelFormat::rgb);
    pre.width = 2, pre.height = 2;
    pre.resize = InputPreprocess::Resize::center_crop;
    pre.crop = 0.5f;
    const auto out = image_to_input(im, pre, {1, 2, 2, 3});
    for (size_t y = 0; y < 2; ++y)
      for (size_t x = 0; x < 2; ++x)
        for (size_t c = 0; c < 3; ++c)
          REQUIRE(near(out[(y * 2 + x) * 3 + c], normalised(pixel(im, 5 + x, 1 + y, c), pre, c)));
  }
  SECTION("letterbox: a 4x2 image in 4x4 fills rows 1-2; rows 0 and 3 are the mean, rounded") {
    const Image im = ramp(4, 2, PixelFormat::rgb);
    pre.width = 4, pre.height = 4;
    pre.resize = InputPreprocess::Resize::letterbox;
    const auto out = image_to_input(im, pre, {1, 4, 4, 3});
    const double pad[3] = {121, 100, 90};  // the mean, rounded (120.5 up)
    for (size_t y = 0; y < 4; ++y)
      for (size_t x = 0; x < 4; ++x)
        for (size_t c = 0; c < 3; ++c) {
          const double want = (y == 0 || y == 3) ? pad[c] : pixel(im, x, y - 1, c);
          REQUIRE(near(out[(y * 4 + x) * 3 + c], normalised(want, pre, c)));
        }
  }
  SECTION("gray model: colour pixels as ITU-R 601 luma; gray images into colour models") {
    const Image im = ramp(3, 2, PixelFormat::rgb);
    pre.width = 3, pre.height = 2;
    pre.order = InputPreprocess::Order::gray;
    const auto out = image_to_input(im, pre, {1, 2, 3, 1});
    for (size_t i = 0; i < 6; ++i) {
      const double luma = 0.299 * im.pixels[3 * i] + 0.587 * im.pixels[3 * i + 1] + 0.114 * im.pixels[3 * i + 2];
      REQUIRE(near(out[i], normalised(std::round(luma), pre, 0)));
    }
    pre.order = InputPreprocess::Order::rgb;
    const Image g = ramp(3, 2, PixelFormat::gray);
    const auto rgb = image_to_input(g, pre, {1, 2, 3, 3});
    for (size_t i = 0; i < 6; ++i)
      for (size_t c = 0; c < 3; ++c) REQUIRE(near(rgb[3 * i + c], normalised(g.pixels[i], pre, c)));
  }
  SECTION("an input shape that is not the preprocessing's is named") {
    pre.width = 4, pre.height = 4;
    REQUIRE_THROWS_WITH(image_to_input(ramp(4, 4, PixelFormat::rgb), pre, {1, 3, 4, 4}),
                        Catch::Contains("the model input is [1, 3, 4, 4], but its preprocessing (4x4, nhwc, 3 "
                                        "channels) makes [1, 4, 4, 3]"));
  }
}

// Writes what tests/cli-test.sh feeds `huddle infer`: photo.png (32x32 RGB),
// photo.jpg, bad.jpg (cut short), and the input tensors photo.png must become
// with mean 100,110,120 and std 2,4,8 (stretch, same size; powers of two, so
// exact in fp32 whatever the order of operations), as x-nchw.npy and x-nhwc.npy.
TEST_CASE("write the command-line test's images", "[.cli-fixture]") {
  const char* dir = std::getenv("HUDDLE_FIXTURE_DIR");
  REQUIRE(dir);
  const std::string d = dir;
  const Image im = ramp(32, 32, PixelFormat::rgb);
  PngSpec s{32, 32, PNG_COLOR_TYPE_RGB};
  s.raw = im.pixels;
  const auto write = [&](const std::string& name, const Bytes& bytes) {
    std::ofstream(d + "/" + name, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()),
                                                          static_cast<std::streamsize>(bytes.size()));
  };
  write("photo.png", encode_png(s));
  const Bytes jpeg = encode_jpeg(cells_image(), 90);
  write("photo.jpg", jpeg);
  write("bad.jpg", Bytes(jpeg.begin(), jpeg.begin() + static_cast<long>(jpeg.size() / 2)));
  const double mean[3] = {100, 110, 120}, sd[3] = {2, 4, 8};
  std::vector<float> nchw(3 * 32 * 32), nhwc(3 * 32 * 32);
  for (size_t i = 0; i < 32 * 32; ++i)
    for (size_t c = 0; c < 3; ++c) {
      const float v = static_cast<float>((im.pixels[3 * i + c] - mean[c]) / sd[c]);
      nchw[c * 32 * 32 + i] = nhwc[3 * i + c] = v;
    }
  const auto bytes = [](const std::vector<float>& v) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float));
  };
  huddle::engine::write_npy(d + "/x-nchw.npy", huddle::engine::DType::f32, {1, 3, 32, 32}, bytes(nchw));
  huddle::engine::write_npy(d + "/x-nhwc.npy", huddle::engine::DType::f32, {1, 32, 32, 3}, bytes(nhwc));
}
