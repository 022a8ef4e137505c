// libFuzzer target: any bytes given to the model loader either load as a valid
// model or raise ModelError; nothing else (no crash, no other exception, no
// read outside the buffer under ASan).
#include <cstddef>
#include <cstdint>

#include "engine/model_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto file = huddle::engine::ModelFile::from_bytes({data, size}, "fuzz.hdm");
    // Touch what a loaded model exposes.
    const auto graph = file.model().getGraph();
    for (uint32_t i = 0; i < graph.getTensors().size(); ++i) (void)file.tensor_data(i);
  } catch (const huddle::engine::ModelError&) {
  }
  return 0;
}
