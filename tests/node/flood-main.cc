// flood ENDPOINT ROUNDS OVERSIZED-BYTES IMAGE=LABEL...: tests/node/flood.h
// against a running node (tests/node-test.sh runs it on `huddle node`), over
// CURVE as this device (the default state directory: the node's, when it
// shares it), or plain TCP when HUDDLE_FLOOD_INSECURE is set.
// Prints the counts and every problem; exit status 0 only when every valid
// request was answered ok with its label, every malformed one badInput, and
// the node answered status at the end.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "protocol/security.h"
#include "tests/node/flood.h"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fputs("usage: flood ENDPOINT ROUNDS OVERSIZED-BYTES IMAGE=LABEL...\n", stderr);
    return 2;
  }
  std::vector<huddle::test::FloodImage> images;
  for (int i = 4; i < argc; ++i) {
    const std::string arg = argv[i];
    const size_t eq = arg.rfind('=');
    std::ifstream in(arg.substr(0, eq), std::ios::binary);
    if (eq == std::string::npos || !in) {
      std::fprintf(stderr, "flood: cannot read '%s' (IMAGE=LABEL)\n", arg.c_str());
      return 2;
    }
    images.push_back({arg.substr(0, eq),
                      {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()},
                      static_cast<uint32_t>(std::atoi(arg.c_str() + eq + 1))});
  }
  std::optional<huddle::protocol::Keypair> keys;
  if (!std::getenv("HUDDLE_FLOOD_INSECURE"))
    keys = huddle::protocol::load_or_create_identity(huddle::protocol::default_state_dir());
  const auto r = huddle::test::flood(argv[1], images, std::strtoul(argv[2], nullptr, 10),
                                     std::strtoul(argv[3], nullptr, 10), 10000, keys ? &*keys : nullptr,
                                     keys ? keys->public_key : "");
  for (const std::string& p : r.problems) std::printf("problem: %s\n", p.c_str());
  std::printf(
      "flood: %zu of %zu valid requests answered ok with the right label, %zu of %zu malformed refused "
      "(badInput), %zu oversized frames (reconnected), status afterwards: %s\n",
      r.valid_ok, r.valid_sent, r.bad_refused, r.bad_sent, r.oversized, r.status_after ? "ok" : "none");
  const bool ok = r.problems.empty() && r.valid_sent > 0 && r.valid_ok == r.valid_sent &&
                  r.bad_refused == r.bad_sent && r.status_after;
  return ok ? 0 : 1;
}
