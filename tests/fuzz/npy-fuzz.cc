// libFuzzer target: any bytes given to the .npy reader either parse into an
// array whose data matches its shape or raise NpyError; nothing else.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "engine/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto a = huddle::engine::parse_npy({data, size}, "fuzz.npy");
    if (a.data.size() !=
        static_cast<size_t>(huddle::engine::elements(a.shape)) * huddle::engine::dtype_bytes(a.dtype))
      std::abort();
  } catch (const huddle::engine::NpyError&) {
  }
  return 0;
}
