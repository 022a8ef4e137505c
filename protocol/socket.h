// ZeroMQ sockets as huddle uses them (DESIGN.md §6), and the client side of
// the protocol: a DEALER that sends requests to one node and reads its
// answers (`huddle ask`, the tests, the node benchmark; later the
// coordinator).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "protocol/envelope.h"
#include "protocol/identity.h"
#include "protocol/zap.h"

namespace huddle::protocol {

// ZMTP heartbeats: a ping every second; a peer silent for 3 s is dropped.
constexpr int kHeartbeatIntervalMs = 1000;
constexpr int kHeartbeatTimeoutMs = 3000;

// Tells the C library to keep freed memory for reuse: allocations up to
// 16 MB come from the heap (not a fresh mapping each), and up to 32 MB freed
// at its top stays there. Without it glibc hands the buffers of each large
// message (an image; CURVE adds one for the ciphertext) back to the kernel
// after every message and faults them in again for the next: measured by
// `bench/run security`, +0.4 ms of CPU per 640x480 JPEG in the coordinator.
// Process-wide: the programs call it first thing (huddle's main, the
// benchmarks). No effect on a C library without mallopt.
void keep_freed_memory();

// Sets what every huddle socket has: ZMQ_MAXMSGSIZE (a larger frame makes
// libzmq drop the peer's connection), LINGER 0 (closing never waits for a
// peer), and ZMTP heartbeats (interval, timeout, and TTL, which asks the
// peer to drop us after the same silence).
void configure_socket(zmq::socket_t& socket, int64_t max_message_bytes);

// The frames of the next message waiting on `socket` (all of a multipart
// message: libzmq delivers them together); empty when none is waiting.
std::vector<zmq::message_t> receive_frames(zmq::socket_t& socket);

// "tcp://host:0" -> "tcp://host:*" (libzmq's spelling of "any free port");
// any other endpoint unchanged.
std::string bind_endpoint(const std::string& endpoint);

// A response as received: its frame (read in place) and checked header.
class Reply {
 public:
  Reply(zmq::message_t frame, size_t max_bytes);
  const ResponseHeader& header() const { return header_; }
  schema::Response::Reader root() const { return envelope_->root<schema::Response>(); }

 private:
  std::unique_ptr<zmq::message_t> frame_;  // never moves: the envelope points into it
  std::unique_ptr<Envelope> envelope_;
  ResponseHeader header_;
};

// A CURVE handshake of a Client failed: the node's key is not the one given
// (no_detail), it refused our key (refused: not paired there), or one end
// does not use CURVE (protocol_error). what() is describe(event()).
class HandshakeError : public std::runtime_error {
 public:
  explicit HandshakeError(HandshakeEvent event);
  const HandshakeEvent& event() const { return event_; }

 private:
  HandshakeEvent event_;
};

// A DEALER connected to one node. Not thread-safe (one per thread).
class Client {
 public:
  // Connects (asynchronously, as ZeroMQ does; a node that is not there yet is
  // retried), over plain TCP. Throws zmq::error_t for an endpoint libzmq
  // refuses.
  Client(zmq::context_t& context, const std::string& endpoint, int64_t max_message_bytes = 64 << 20);
  // The same over CURVE when `keys` is not null: as `keys`, to the node whose
  // public key (Z85) is `server_key` only, watching the handshakes so that
  // receive() fails fast when one fails (`keys` need not outlive it). Throws
  // IdentityError when `server_key` is not a key.
  Client(zmq::context_t& context, const std::string& endpoint, const Keypair* keys, std::string_view server_key,
         int64_t max_message_bytes = 64 << 20);

  // A fresh request id.
  uint64_t next_id() { return ++last_id_; }
  // Sends `request` and, for a run request, `image` as its own frame.
  void send(capnp::MessageBuilder& request, std::optional<std::span<const uint8_t>> image = std::nullopt);
  // Sends raw frames as they are (tests of malformed input).
  void send_frames(std::span<const std::string> frames);
  // The next response, waiting at most `timeout`; nullopt on timeout. Throws
  // ProtocolError for a malformed response, and (CURVE) HandshakeError as
  // soon as a handshake with the node fails, instead of waiting out the
  // timeout (libzmq would retry it silently forever).
  std::optional<Reply> receive(std::chrono::milliseconds timeout);
  // Waits for the response to `id`, dropping late answers to other ids.
  std::optional<Reply> receive(uint64_t id, std::chrono::milliseconds timeout);

  zmq::socket_t& socket() { return socket_; }
  // Whether the connection uses CURVE.
  bool encrypted() const { return watch_.has_value(); }

 private:
  zmq::socket_t socket_;
  std::optional<HandshakeWatch> watch_;  // CURVE only; before socket_ connects
  int64_t max_message_bytes_;
  uint64_t last_id_ = 0;
};

}  // namespace huddle::protocol
