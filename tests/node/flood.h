// A client that floods a node with garbage, oversized, truncated and valid
// messages interleaved, and checks every answer: each valid request answered
// ok with the expected top label, each malformed one answered badInput, an
// oversized frame answered by libzmq dropping the connection (the flood
// reconnects and goes on), and the node answering status at the end. Used by
// the server's unit test (a test task) and, through tests/node/flood-main.cc,
// against `huddle node` serving a real task.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "protocol/identity.h"

namespace huddle::test {

// A valid request: an encoded image and the top label index the node must answer.
struct FloodImage {
  std::string name;
  std::vector<uint8_t> bytes;
  uint32_t label = 0;
};

struct FloodReport {
  size_t valid_sent = 0, valid_ok = 0;   // valid requests, and those answered ok with the right label
  size_t bad_sent = 0, bad_refused = 0;  // malformed messages, and those answered badInput
  size_t oversized = 0;                  // oversized frames sent (each followed by a reconnect)
  bool status_after = false;             // the node answered a status request at the end
  std::vector<std::string> problems;     // one line per wrong or missing answer
};

// Floods the node at `endpoint` for `rounds` rounds (every image once per
// round, two at a time, with the malformed messages between them);
// `oversized_bytes` must exceed the node's frame limit. Never waits more than
// `timeout_ms` for one round's answers. With `keys`, over CURVE as them to
// the node whose public key is `server_key`; else plain TCP.
FloodReport flood(const std::string& endpoint, const std::vector<FloodImage>& images, size_t rounds,
                  size_t oversized_bytes, int timeout_ms = 10000, const protocol::Keypair* keys = nullptr,
                  const std::string& server_key = "");

}  // namespace huddle::test
