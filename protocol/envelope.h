// Envelopes on the wire (DESIGN.md §6): one Cap'n Proto message per ZeroMQ
// frame, read with limits so that any bytes a peer sends give either a
// checked message or a ProtocolError naming the problem, never a crash or a
// read outside the frame.
//
// Reading: the frame must be whole 8-byte words, at most a size limit, one
// message with nothing after it; a frame that is not 8-byte aligned (libzmq
// keeps small frames inside the message object) is copied to aligned storage.
// The traversal limit is derived from the frame's size and the nesting limit
// is kNestingLimit; the whole message is traversed once on arrival, so
// malformed pointers are found there and not in the middle of a request.
//
// Versions: a reader accepts any `version` from 1 up (a newer sender's
// unknown fields are ignored by Cap'n Proto's layout rules); a union member it
// does not know reads as a discriminant outside its enum and is refused with
// a message saying so, as is `unset`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/array.h>

#include "protocol/huddle.capnp.h"

namespace huddle::protocol {

// The version this build writes.
constexpr uint16_t kVersion = schema::PROTOCOL_VERSION;
// Pointer nesting a reader follows; the schema's deepest path is 7.
constexpr int kNestingLimit = 16;
// Largest envelope frame a node reads (the image travels in its own frame).
constexpr size_t kMaxEnvelopeBytes = 64 << 10;

// Malformed or unacceptable bytes from a peer; what() says what is wrong.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One received frame as a checked Cap'n Proto message. When the frame is
// aligned it is read in place: its bytes must outlive the Envelope.
class Envelope {
 public:
  // Throws ProtocolError for an empty frame, one over `max_bytes`, not whole
  // words, with a bad segment table, bytes after the message, pointers out of
  // bounds, or more traversal or nesting than the limits allow.
  explicit Envelope(std::span<const uint8_t> frame, size_t max_bytes = kMaxEnvelopeBytes);
  Envelope(Envelope&&) = default;
  Envelope& operator=(Envelope&&) = default;

  template <typename T>
  typename T::Reader root() const {
    return reader_->getRoot<T>();
  }
  // The traversal limit used, in words (a function of the frame's size).
  uint64_t traversal_limit_words() const { return limit_words_; }

 private:
  kj::Array<capnp::word> copy_;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
  uint64_t limit_words_ = 0;
};

// The traversal limit for a frame of `bytes`: every word may be read a few
// times (the check on arrival, then the fields), never more.
uint64_t traversal_limit_words(size_t bytes);

// What a node needs to know of a request before serving it.
struct RequestHeader {
  uint16_t version = 0;
  uint64_t id = 0;
  uint32_t deadline_ms = 0;                                          // 0: none
  schema::Request::Body::Which kind = schema::Request::Body::UNSET;  // run or status
};

// Checks a request's header: version set, body a run or status request (a
// run request's image encoded or raw). Throws ProtocolError naming the
// problem; `header` holds the id (and what else was read) even then, so the
// answer can name the request.
void read_request_header(const Envelope& envelope, RequestHeader& header);

// What a client needs to know of a response before reading its body.
struct ResponseHeader {
  uint16_t version = 0;
  uint64_t id = 0;
  schema::Code code = schema::Code::UNSET;  // possibly one this build does not know: not ok
  std::string message;
};

// Checks a response's header. Throws ProtocolError for version 0 or an ok
// response without a body.
ResponseHeader read_response_header(const Envelope& envelope);

// "ok", "badInput", ...; "code N" for one this build does not know.
std::string code_name(schema::Code code);

// The frame holding `message` (Cap'n Proto's flat serialisation).
kj::Array<capnp::word> frame_of(capnp::MessageBuilder& message);

// Starts a request: version, id and deadline set.
schema::Request::Builder init_request(capnp::MessageBuilder& message, uint64_t id, uint32_t deadline_ms);
// Starts a response to request `id` with `code` and `message`.
schema::Response::Builder init_response(capnp::MessageBuilder& message, uint64_t id, schema::Code code,
                                        const std::string& text = {});

}  // namespace huddle::protocol
