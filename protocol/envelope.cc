#include "protocol/envelope.h"

#include <cstring>

#include <capnp/any.h>
#include <kj/exception.h>

namespace huddle::protocol {
namespace {

std::string kj_text(const kj::Exception& e) {
  const kj::StringPtr d = e.getDescription();
  return std::string(d.begin(), d.size());
}

}  // namespace

uint64_t traversal_limit_words(size_t bytes) {
  // The arrival check reads each word once and the fields read it again; a
  // small floor leaves room for the empty lists and structs that occupy no
  // words but still count.
  return (bytes / sizeof(capnp::word)) * 4 + 256;
}

Envelope::Envelope(std::span<const uint8_t> frame, size_t max_bytes) {
  if (frame.empty()) throw ProtocolError("empty envelope frame");
  if (frame.size() > max_bytes)
    throw ProtocolError("envelope of " + std::to_string(frame.size()) + " bytes is over the limit of " +
                        std::to_string(max_bytes));
  if (frame.size() % sizeof(capnp::word) != 0)
    throw ProtocolError("envelope of " + std::to_string(frame.size()) +
                        " bytes is not a whole number of 8-byte words");
  const size_t words = frame.size() / sizeof(capnp::word);
  kj::ArrayPtr<const capnp::word> view;
  if (reinterpret_cast<uintptr_t>(frame.data()) % alignof(capnp::word) == 0) {
    view = kj::arrayPtr(reinterpret_cast<const capnp::word*>(frame.data()), words);
  } else {
    copy_ = kj::heapArray<capnp::word>(words);
    std::memcpy(copy_.begin(), frame.data(), frame.size());
    view = copy_.asPtr();
  }
  limit_words_ = protocol::traversal_limit_words(frame.size());
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limit_words_;
  options.nestingLimit = kNestingLimit;
  try {
    reader_ = std::make_unique<capnp::FlatArrayMessageReader>(view, options);
    if (reader_->getEnd() != view.end())
      throw ProtocolError("envelope has " +
                          std::to_string((view.end() - reader_->getEnd()) * sizeof(capnp::word)) +
                          " bytes after its message");
    // Follows every pointer once: bounds, nesting and traversal are checked here.
    reader_->getRoot<capnp::AnyPointer>().targetSize();
  } catch (const kj::Exception& e) {
    throw ProtocolError("malformed envelope: " + kj_text(e));
  }
}

namespace {

// A run or recognize request's image: encoded or raw (both unions number
// their members alike).
template <typename Which>
void check_image_kind(const char* request, Which which) {
  switch (which) {
    case Which::ENCODED:
    case Which::RAW:
      return;
    case Which::UNSET:
      throw ProtocolError(std::string(request) + " request's image kind is unset (neither encoded nor raw)");
  }
  throw ProtocolError(std::string(request) + " request's image kind " + std::to_string(static_cast<int>(which)) +
                      " is unknown to this reader (protocol version " + std::to_string(kVersion) + ")");
}

}  // namespace

void read_request_header(const Envelope& envelope, RequestHeader& header) {
  using schema::Request;
  try {
    const Request::Reader r = envelope.root<Request>();
    header.version = r.getVersion();
    header.id = r.getId();
    header.deadline_ms = r.getDeadlineMs();
    const auto kind = r.getBody().which();
    header.kind = kind;
    if (header.version == 0) throw ProtocolError("request without a protocol version (version 0)");
    switch (kind) {
      case Request::Body::UNSET:
        throw ProtocolError("request body is unset (neither run nor status)");
      case Request::Body::STATUS:
      case Request::Body::UNPAIR:
        return;
      case Request::Body::PAIR: {
        const auto name = r.getBody().getPair().getName();
        if (name.size() > 63) throw ProtocolError("pair request's name is " + std::to_string(name.size()) +
                                                  " bytes, over the 63 a name may have");
        return;
      }
      case Request::Body::RUN:
        return check_image_kind("run", r.getBody().getRun().getImage().which());
      case Request::Body::RECOGNIZE:
        return check_image_kind("recognize", r.getBody().getRecognize().getImage().which());
    }
    throw ProtocolError("request kind " + std::to_string(static_cast<int>(kind)) +
                        " is unknown to this node (protocol version " + std::to_string(kVersion) + ")");
  } catch (const kj::Exception& e) {
    throw ProtocolError("malformed request: " + kj_text(e));
  }
}

ResponseHeader read_response_header(const Envelope& envelope) {
  using schema::Response;
  try {
    const Response::Reader r = envelope.root<Response>();
    ResponseHeader h;
    h.version = r.getVersion();
    h.id = r.getId();
    h.code = r.getCode();
    h.message = std::string(r.getMessage().cStr(), r.getMessage().size());
    if (h.version == 0) throw ProtocolError("response without a protocol version (version 0)");
    if (h.code == schema::Code::OK && r.getBody().which() == Response::Body::UNSET)
      throw ProtocolError("ok response without a body (result, status, scene, paired or unpaired)");
    return h;
  } catch (const kj::Exception& e) {
    throw ProtocolError("malformed response: " + kj_text(e));
  }
}

std::string code_name(schema::Code code) {
  switch (code) {
    case schema::Code::UNSET:
      return "unset";
    case schema::Code::OK:
      return "ok";
    case schema::Code::BAD_INPUT:
      return "badInput";
    case schema::Code::OVERLOADED:
      return "overloaded";
    case schema::Code::EXPIRED:
      return "expired";
    case schema::Code::ERROR:
      return "error";
    case schema::Code::REFUSED:
      return "refused";
  }
  return "code " + std::to_string(static_cast<int>(code));
}

kj::Array<capnp::word> frame_of(capnp::MessageBuilder& message) { return capnp::messageToFlatArray(message); }

schema::Request::Builder init_request(capnp::MessageBuilder& message, uint64_t id, uint32_t deadline_ms) {
  auto r = message.initRoot<schema::Request>();
  r.setVersion(kVersion);
  r.setId(id);
  r.setDeadlineMs(deadline_ms);
  return r;
}

schema::Response::Builder init_response(capnp::MessageBuilder& message, uint64_t id, schema::Code code,
                                        const std::string& text) {
  auto r = message.initRoot<schema::Response>();
  r.setVersion(kVersion);
  r.setId(id);
  r.setCode(code);
  if (!text.empty()) r.setMessage(text);
  return r;
}

}  // namespace huddle::protocol
