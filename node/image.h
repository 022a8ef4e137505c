// Image decoding for the node and the quantiser's calibration (DESIGN.md §3):
// PNG through libpng, JPEG through libjpeg-turbo's TurboJPEG API, told apart
// by their magic bytes (never the file name). The result is 8-bit gray, RGB
// or RGBA, rows packed; a JPEG's EXIF orientation is applied, so the pixels
// are the picture as it is meant to be seen.
//
// Bad input never crashes and never yields a partial image: every failure is
// an ImageError whose message starts with the file's name and says what is
// wrong (empty, truncated, not a PNG or JPEG, zero or too many pixels, ...).
// The pixel limit is checked from the header, before any pixel memory is
// allocated, which also bounds what a decompression bomb can expand to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace huddle::node {

// How the bytes of one pixel are laid out.
//   gray: 1 byte. Gray PNGs without transparency, gray JPEGs.
//   rgb:  3 bytes, R G B. Colour PNGs without transparency, colour JPEGs.
//   rgba: 4 bytes, R G B A (A not premultiplied). PNGs with an alpha channel or
//         a tRNS chunk, gray + alpha included.
enum class PixelFormat : uint8_t { gray, rgb, rgba };

// Bytes per pixel of `format`: 1, 3 or 4.
size_t channels(PixelFormat format);
// "gray", "rgb" or "rgba".
const char* format_name(PixelFormat format);

// A decoded image: height rows of width pixels, each row width * channels
// bytes, packed (no padding between rows).
struct Image {
  uint32_t width = 0, height = 0;
  PixelFormat format = PixelFormat::rgb;
  std::vector<uint8_t> pixels;
};

struct DecodeLimits {
  uint64_t max_pixels = 50'000'000;             // width * height, from the header
  uint64_t max_file_bytes = 256ull << 20;       // read_image refuses larger files
};

class ImageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// True when `bytes` start like a PNG or a JPEG file (what decode_image reads).
bool is_image(std::span<const uint8_t> bytes);
// True when the file at `path` starts like a PNG or JPEG; false if it cannot be read.
bool is_image_file(const std::string& path);

// Decodes a whole PNG or JPEG file held in memory. `name` (a path, usually)
// starts every error message. Throws ImageError.
Image decode_image(std::span<const uint8_t> bytes, const DecodeLimits& limits, const std::string& name);
// Reads the file at `path` (at most limits.max_file_bytes) and decodes it. Throws ImageError.
Image read_image(const std::string& path, const DecodeLimits& limits = {});

// The EXIF orientation (1..8) recorded in a JPEG's APP1 Exif segment, or 1
// when there is none or it is malformed or out of range. Bounds-checked: any
// bytes are safe to pass.
int jpeg_exif_orientation(std::span<const uint8_t> jpeg);
// `image` turned by EXIF orientation `orientation` (1..8: 2 mirrors left-right,
// 3 turns 180°, 4 mirrors top-bottom, 5 transposes, 6 turns 90° clockwise, 7
// transverses, 8 turns 90° anticlockwise); 5..8 swap width and height.
Image apply_orientation(const Image& image, int orientation);

// The PNG file (8-bit, `image`'s own format) holding `image`. Throws
// ImageError for an empty image or one libpng refuses.
std::vector<uint8_t> encode_png(const Image& image);

// Writes `image` to `path` as PNG, atomically (a temporary file beside it,
// then renamed), so a failure never leaves a half-written file. Throws
// ImageError naming the path.
void write_png(const std::string& path, const Image& image);

}  // namespace huddle::node
