// libFuzzer target: any bytes, split into TXT strings as DNS does (a length
// byte, then that many bytes), read by parse_txt: it never throws, and every
// key it keeps is 1 to kMaxTxtKey bytes with no upper-case letter or '='.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "discovery/discovery.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace huddle::discovery;
  std::vector<std::string> strings;
  for (size_t i = 0; i < size;) {
    const size_t n = std::min<size_t>(data[i], size - i - 1);
    strings.emplace_back(reinterpret_cast<const char*>(data + i + 1), n);
    i += 1 + n;
  }
  const auto fields = parse_txt(strings);
  if (fields.size() > strings.size()) std::abort();
  for (const auto& [key, value] : fields) {
    if (key.empty() || key.size() > kMaxTxtKey) std::abort();
    for (char c : key)
      if ((c >= 'A' && c <= 'Z') || c == '=') std::abort();
  }
  return 0;
}
