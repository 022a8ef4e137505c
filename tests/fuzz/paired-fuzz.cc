// libFuzzer target: any bytes as the text of a paired devices file (the
// state directory is outside data: another program, a person or an attacker
// may have written it). parse_paired either refuses it with an IdentityError
// naming the line, or returns devices that are all well formed, each key
// once; what format_paired writes for them reads back the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "protocol/paired.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace huddle::protocol;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<PairedDevice> devices;
  try {
    devices = parse_paired(text, "fuzz");
  } catch (const IdentityError& e) {
    if (!std::string_view(e.what()).starts_with("fuzz:")) std::abort();
    return 0;
  }
  std::unordered_set<std::string> keys;
  for (const PairedDevice& d : devices) {
    if (!is_key_text(d.public_key) || d.id != device_id(d.public_key) || d.name.size() > kMaxDeviceName ||
        d.paired_at < 0 || !keys.insert(d.public_key).second)
      std::abort();
    for (char c : d.name)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) std::abort();
  }
  if (parse_paired(format_paired(devices), "again") != devices) std::abort();
  return 0;
}
