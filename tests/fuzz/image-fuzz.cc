// libFuzzer target: any bytes given to the image decoder (PNG through libpng,
// JPEG through TurboJPEG, told by magic bytes) either decode into an image
// whose pixel buffer matches its size and format, within the limits, or raise
// ImageError; nothing else. The limit is lowered so the fuzzer explores
// headers, not memory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "node/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace huddle::node;
  const DecodeLimits limits{.max_pixels = 1u << 20};
  try {
    const Image im = decode_image({data, size}, limits, "fuzz.img");
    if (im.width == 0 || im.height == 0 || uint64_t{im.width} * im.height > limits.max_pixels ||
        im.pixels.size() != size_t{im.width} * im.height * channels(im.format))
      std::abort();
  } catch (const ImageError&) {
  }
  return 0;
}
