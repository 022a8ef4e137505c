#include "node/image.h"

#include <fcntl.h>
#include <png.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>

#include "engine/model_file.h"

namespace huddle::node {
namespace {

constexpr uint8_t kPngMagic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
constexpr uint8_t kJpegMagic[3] = {0xff, 0xd8, 0xff};

bool starts_with(std::span<const uint8_t> bytes, std::span<const uint8_t> magic) {
  return bytes.size() >= magic.size() && std::memcmp(bytes.data(), magic.data(), magic.size()) == 0;
}

[[noreturn]] void fail(const std::string& name, const std::string& what) { throw ImageError(name + ": " + what); }

// Refuses a header's dimensions: zero, or more pixels than the limit.
void check_dimensions(uint64_t width, uint64_t height, const DecodeLimits& limits, const std::string& name) {
  if (width == 0 || height == 0)
    fail(name, "the header gives " + std::to_string(width) + "x" + std::to_string(height) + " pixels (zero)");
  if (width * height > limits.max_pixels)
    fail(name, std::to_string(width) + "x" + std::to_string(height) + " pixels is more than the limit of " +
                   std::to_string(limits.max_pixels));
}

// ---- PNG ------------------------------------------------------------------
// libpng reports errors by longjmp. Only the two functions that call libpng
// under setjmp (png_read_header, png_read_pixels) can be jumped into, and
// they hold nothing with a destructor; every resource lives in PngReader,
// whose destructor frees it whatever happened.

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::span<const uint8_t> bytes;
  size_t pos = 0;
  char message[200] = "";

  ~PngReader() {
    if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
  }
};

void png_on_error(png_structp png, png_const_charp message) {
  auto* r = static_cast<PngReader*>(png_get_error_ptr(png));
  std::snprintf(r->message, sizeof r->message, "%s", message);
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

void png_on_read(png_structp png, png_bytep out, size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (n > r->bytes.size() - r->pos) png_error(png, "truncated data (the file ends early)");
  std::memcpy(out, r->bytes.data() + r->pos, n);
  r->pos += n;
}

// Reads the header and sets the transforms to 8-bit gray, RGB or RGBA. False
// on a libpng error (r.message says which).
bool png_read_header(PngReader& r, png_uint_32* width, png_uint_32* height, int* channels) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  png_set_read_fn(r.png, &r, png_on_read);
  png_set_chunk_malloc_max(r.png, 8u << 20);  // a compressed text or ICC chunk cannot expand further
  png_read_info(r.png, r.info);
  const int type = png_get_color_type(r.png, r.info);
  const bool transparent = (type & PNG_COLOR_MASK_ALPHA) || png_get_valid(r.png, r.info, PNG_INFO_tRNS);
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r.png);
  if (type == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(r.png);
  if (png_get_valid(r.png, r.info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(r.png);
  // Gray with alpha has no format of its own: it becomes RGBA.
  if (!(type & PNG_COLOR_MASK_COLOR) && transparent) png_set_gray_to_rgb(r.png);
  png_set_scale_16(r.png);
  png_set_packing(r.png);
  png_set_interlace_handling(r.png);
  png_read_update_info(r.png, r.info);
  *width = png_get_image_width(r.png, r.info);
  *height = png_get_image_height(r.png, r.info);
  *channels = png_get_channels(r.png, r.info);
  return true;
}

// Decodes every row into `rows` and reads the chunks after the image data
// (so a file cut before its end is refused). False on a libpng error.
bool png_read_pixels(PngReader& r, png_bytep* rows) {
  if (setjmp(png_jmpbuf(r.png))) return false;
  png_read_image(r.png, rows);
  png_read_end(r.png, nullptr);
  return true;
}

// Big-endian 32 bits at `p`.
uint32_t be32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }

Image decode_png(std::span<const uint8_t> bytes, const DecodeLimits& limits, const std::string& name) {
  // The size, from IHDR (which must come first), before libpng reads on to the
  // image data: a file that announces too many pixels is refused however it goes on.
  constexpr uint8_t kIhdr[4] = {'I', 'H', 'D', 'R'};
  if (bytes.size() >= 24 && std::memcmp(&bytes[12], kIhdr, 4) == 0)
    check_dimensions(be32(&bytes[16]), be32(&bytes[20]), limits, name);
  // libpng allocates a text chunk's announced length before reading it: no
  // chunk may announce more bytes than the file holds.
  for (size_t at = 8; at + 8 <= bytes.size();) {
    const uint64_t length = be32(&bytes[at]);
    if (length + 12 > bytes.size() - at) fail(name, "bad PNG: truncated data (a chunk runs past the end)");
    if (std::memcmp(&bytes[at + 4], "IEND", 4) == 0) break;  // what follows is not read
    at += 12 + length;
  }
  PngReader r;
  r.bytes = bytes;
  r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_on_error, png_on_warning);
  if (r.png) r.info = png_create_info_struct(r.png);
  if (!r.png || !r.info) fail(name, "out of memory starting libpng");
  // Dimensions are checked here, with the limit, not by libpng's own (smaller) default.
  png_set_user_limits(r.png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  png_uint_32 width = 0, height = 0;
  int channels = 0;
  if (!png_read_header(r, &width, &height, &channels)) fail(name, std::string("bad PNG: ") + r.message);
  Image image;
  image.width = width;
  image.height = height;
  image.format = channels == 1 ? PixelFormat::gray : channels == 3 ? PixelFormat::rgb : PixelFormat::rgba;
  if (channels != 1 && channels != 3 && channels != 4)
    fail(name, "bad PNG: " + std::to_string(channels) + " channels after conversion");
  const size_t stride = size_t{width} * static_cast<size_t>(channels);
  if (png_get_rowbytes(r.png, r.info) != stride) fail(name, "bad PNG: unexpected row size");
  image.pixels.resize(stride * height);
  std::vector<png_bytep> rows(height);
  for (size_t y = 0; y < height; ++y) rows[y] = image.pixels.data() + y * stride;
  if (!png_read_pixels(r, rows.data())) fail(name, std::string("bad PNG: ") + r.message);
  return image;
}

// ---- JPEG -----------------------------------------------------------------

struct TjHandle {
  tjhandle handle = tjInitDecompress();
  ~TjHandle() {
    if (handle) tjDestroy(handle);
  }
};

Image decode_jpeg(std::span<const uint8_t> bytes, const DecodeLimits& limits, const std::string& name) {
  TjHandle tj;
  if (!tj.handle) fail(name, std::string("cannot start the JPEG decoder: ") + tjGetErrorStr2(nullptr));
  const auto size = static_cast<unsigned long>(bytes.size());
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.handle, bytes.data(), size, &width, &height, &subsampling, &colorspace) != 0)
    fail(name, std::string("bad JPEG: ") + tjGetErrorStr2(tj.handle));
  if (width <= 0 || height <= 0) fail(name, "bad JPEG: no frame header (truncated or damaged)");
  check_dimensions(static_cast<uint64_t>(width), static_cast<uint64_t>(height), limits, name);
  if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) fail(name, "CMYK JPEGs are not supported");
  Image image;
  image.width = static_cast<uint32_t>(width);
  image.height = static_cast<uint32_t>(height);
  image.format = colorspace == TJCS_GRAY ? PixelFormat::gray : PixelFormat::rgb;
  const size_t stride = size_t{image.width} * channels(image.format);
  image.pixels.resize(stride * image.height);
  // Any warning (a truncated or corrupt stream) stops the decode: no partial images.
  const int flags = TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS;
  if (tjDecompress2(tj.handle, bytes.data(), size, image.pixels.data(), width, static_cast<int>(stride),
                    height, image.format == PixelFormat::gray ? TJPF_GRAY : TJPF_RGB, flags) != 0)
    fail(name, std::string("bad JPEG: ") + tjGetErrorStr2(tj.handle));
  return apply_orientation(image, jpeg_exif_orientation(bytes));
}

// Big- or little-endian reads inside a TIFF block.
struct Tiff {
  std::span<const uint8_t> b;
  bool big;
  uint32_t u16(size_t at) const { return big ? b[at] << 8 | b[at + 1] : b[at + 1] << 8 | b[at]; }
  uint32_t u32(size_t at) const {
    return big ? u16(at) << 16 | u16(at + 2) : u16(at + 2) << 16 | u16(at);
  }
};

// The Orientation tag of the TIFF block of an Exif segment, or 1.
int tiff_orientation(std::span<const uint8_t> b) {
  if (b.size() < 8 || !((b[0] == 'I' && b[1] == 'I') || (b[0] == 'M' && b[1] == 'M'))) return 1;
  const Tiff t{b, b[0] == 'M'};
  if (t.u16(2) != 42) return 1;
  const size_t ifd = t.u32(4);
  if (ifd > b.size() || b.size() - ifd < 2) return 1;
  const size_t count = t.u16(ifd);
  for (size_t k = 0; k < count; ++k) {
    const size_t entry = ifd + 2 + 12 * k;
    if (entry + 12 > b.size()) return 1;
    constexpr uint32_t kOrientation = 0x0112, kShort = 3;
    if (t.u16(entry) != kOrientation) continue;
    if (t.u16(entry + 2) != kShort || t.u32(entry + 4) != 1) return 1;
    const uint32_t v = t.u16(entry + 8);
    return v >= 1 && v <= 8 ? static_cast<int>(v) : 1;
  }
  return 1;
}

// An open file descriptor, closed when it goes.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads the whole file at `path`, refusing it past `max_bytes`.
std::vector<uint8_t> read_bytes(const std::string& path, uint64_t max_bytes) {
  const Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) fail(path, std::string("cannot open (") + std::strerror(errno) + ")");
  struct stat st {};
  if (::fstat(f.fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) fail(path, "is a directory, not an image");
    if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > max_bytes)
      fail(path, std::to_string(st.st_size) + " bytes is more than the file size limit of " +
                     std::to_string(max_bytes));
  }
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  for (;;) {
    const ssize_t n = ::read(f.fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path, std::string("cannot read (") + std::strerror(errno) + ")");
    if (n == 0) return bytes;
    if (bytes.size() + static_cast<size_t>(n) > max_bytes)
      fail(path, "more bytes than the file size limit of " + std::to_string(max_bytes));
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
}

}  // namespace

size_t channels(PixelFormat format) {
  switch (format) {
    case PixelFormat::gray:
      return 1;
    case PixelFormat::rgb:
      return 3;
    case PixelFormat::rgba:
      return 4;
  }
  return 0;
}

const char* format_name(PixelFormat format) {
  switch (format) {
    case PixelFormat::gray:
      return "gray";
    case PixelFormat::rgb:
      return "rgb";
    case PixelFormat::rgba:
      return "rgba";
  }
  return "?";
}

bool is_image(std::span<const uint8_t> bytes) {
  return starts_with(bytes, kPngMagic) || starts_with(bytes, kJpegMagic);
}

bool is_image_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  uint8_t head[8];
  const size_t n = std::fread(head, 1, sizeof head, f);
  std::fclose(f);
  return is_image({head, n});
}

Image decode_image(std::span<const uint8_t> bytes, const DecodeLimits& limits, const std::string& name) {
  if (bytes.empty()) fail(name, "empty file");
  if (starts_with(bytes, kPngMagic)) return decode_png(bytes, limits, name);
  if (starts_with(bytes, kJpegMagic)) return decode_jpeg(bytes, limits, name);
  fail(name, "not a PNG or JPEG (unknown magic bytes)");
}

Image read_image(const std::string& path, const DecodeLimits& limits) {
  return decode_image(read_bytes(path, limits.max_file_bytes), limits, path);
}

int jpeg_exif_orientation(std::span<const uint8_t> jpeg) {
  if (!starts_with(jpeg, kJpegMagic)) return 1;
  // Marker segments after SOI: FF xx, then a big-endian length that counts itself.
  size_t at = 2;
  while (at + 4 <= jpeg.size() && jpeg[at] == 0xff) {
    const uint8_t marker = jpeg[at + 1];
    if (marker == 0xda || marker == 0xd9) break;  // start of scan, end of image: no more headers
    const size_t length = size_t{jpeg[at + 2]} << 8 | jpeg[at + 3];
    if (length < 2 || at + 2 + length > jpeg.size()) break;
    const auto body = jpeg.subspan(at + 4, length - 2);
    constexpr uint8_t kExif[6] = {'E', 'x', 'i', 'f', 0, 0};
    if (marker == 0xe1 && starts_with(body, kExif)) return tiff_orientation(body.subspan(6));
    at += 2 + length;
  }
  return 1;
}

Image apply_orientation(const Image& image, int orientation) {
  if (orientation < 2 || orientation > 8) return image;
  const size_t w = image.width, h = image.height, c = channels(image.format);
  const bool swap = orientation >= 5;
  Image out;
  out.width = static_cast<uint32_t>(swap ? h : w);
  out.height = static_cast<uint32_t>(swap ? w : h);
  out.format = image.format;
  out.pixels.resize(image.pixels.size());
  for (size_t oy = 0; oy < out.height; ++oy) {
    for (size_t ox = 0; ox < out.width; ++ox) {
      // The source pixel that lands at (ox, oy).
      size_t sx = ox, sy = oy;
      switch (orientation) {
        case 2: sx = w - 1 - ox; break;
        case 3: sx = w - 1 - ox, sy = h - 1 - oy; break;
        case 4: sy = h - 1 - oy; break;
        case 5: sx = oy, sy = ox; break;
        case 6: sx = oy, sy = h - 1 - ox; break;
        case 7: sx = w - 1 - oy, sy = h - 1 - ox; break;
        case 8: sx = w - 1 - oy, sy = ox; break;
      }
      std::memcpy(&out.pixels[(oy * out.width + ox) * c], &image.pixels[(sy * w + sx) * c], c);
    }
  }
  return out;
}

std::vector<uint8_t> encode_png(const Image& image) {
  if (image.width == 0 || image.height == 0 ||
      image.pixels.size() != size_t{image.width} * image.height * channels(image.format))
    throw ImageError("cannot encode a PNG of an empty or inconsistent image");
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = image.width;
  png.height = image.height;
  png.format = image.format == PixelFormat::gray  ? PNG_FORMAT_GRAY
               : image.format == PixelFormat::rgb ? PNG_FORMAT_RGB
                                                  : PNG_FORMAT_RGBA;
  png_alloc_size_t bytes = 0;
  // First call sizes the output, second fills it.
  if (!png_image_write_to_memory(&png, nullptr, &bytes, 0, image.pixels.data(), 0, nullptr))
    throw ImageError(std::string("cannot encode a PNG: ") + png.message);
  std::vector<uint8_t> out(bytes);
  if (!png_image_write_to_memory(&png, out.data(), &bytes, 0, image.pixels.data(), 0, nullptr))
    throw ImageError(std::string("cannot encode a PNG: ") + png.message);
  out.resize(bytes);
  return out;
}

void write_png(const std::string& path, const Image& image) {
  try {
    engine::write_model_bytes(path, encode_png(image));
  } catch (const ImageError& e) {
    throw ImageError(path + ": " + e.what());
  } catch (const std::runtime_error& e) {
    throw ImageError(e.what());
  }
}

}  // namespace huddle::node
