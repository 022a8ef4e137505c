#include "protocol/zap.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "protocol/socket.h"

namespace huddle::protocol {
namespace {

// How long the handler's thread waits for a request before it looks at
// stopping_ again: what stop() may take.
constexpr int kStopPollMs = 100;

std::string_view text_of(const zmq::message_t& frame) {
  return {static_cast<const char*>(frame.data()), frame.size()};
}

// The monitor events a HandshakeWatch asks for, and what each means.
constexpr std::pair<uint16_t, HandshakeResult> kHandshakeEvents[] = {
    {ZMQ_EVENT_HANDSHAKE_SUCCEEDED, HandshakeResult::succeeded},
    {ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL, HandshakeResult::no_detail},
    {ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, HandshakeResult::refused},
    {ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, HandshakeResult::protocol_error},
};

// The name of each watch's monitor endpoint.
std::atomic<uint64_t> watches{0};

}  // namespace

ZapHandler::ZapHandler(zmq::context_t& context, Policy accept) : accept_(std::move(accept)) {
  // The thread owns the promise: it stays alive until set_value has returned.
  std::promise<void> bound;
  std::future<void> ready = bound.get_future();
  thread_ = std::thread([this, &context](std::promise<void> b) { run(context, b); }, std::move(bound));
  try {
    ready.get();
  } catch (...) {
    thread_.join();
    throw;
  }
}

ZapHandler::~ZapHandler() { stop(); }

void ZapHandler::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::run(zmq::context_t& context, std::promise<void>& bound) {
  // The socket is this thread's from its creation to its closing.
  std::optional<zmq::socket_t> socket;
  try {
    socket.emplace(context, zmq::socket_type::rep);
    socket->set(zmq::sockopt::linger, 0);
    socket->bind(kZapEndpoint);
  } catch (...) {
    socket.reset();
    bound.set_exception(std::current_exception());
    return;
  }
  running_ = true;
  bound.set_value();
  try {
    zmq::pollitem_t item{socket->handle(), 0, ZMQ_POLLIN, 0};
    while (!stopping_) {
      const int rc = zmq_poll(&item, 1, kStopPollMs);
      if (rc < 0 && zmq_errno() == EINTR) continue;
      if (rc < 0) break;  // ETERM: the context is being shut down
      if (rc == 0) continue;
      const std::vector<zmq::message_t> request = receive_frames(*socket);
      if (request.empty()) continue;
      const std::vector<std::string> reply = answer(request);
      for (size_t i = 0; i < reply.size(); ++i)
        socket->send(zmq::buffer(reply[i]),
                     i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  } catch (const zmq::error_t&) {
    // ETERM while receiving or sending: the context is being shut down.
  }
  // Unbinding frees the endpoint at once (closing frees it later, on
  // libzmq's reaper thread), so that another handler can bind it right away.
  // After ETERM it fails, and the context goes anyway.
  zmq_unbind(socket->handle(), kZapEndpoint);
  socket.reset();
  running_ = false;
}

std::vector<std::string> ZapHandler::answer(const std::vector<zmq::message_t>& request) {
  // Request (RFC 27): version, request id, domain, address, routing id,
  // mechanism, credentials (one frame, the 32-byte key, for CURVE).
  // Reply: version, request id, status code, status text, user id, metadata.
  const std::string id = request.size() > 1 ? std::string(text_of(request[1])) : std::string();
  auto refuse = [this, &id](const char* code, const char* why) {
    ++refused_;
    return std::vector<std::string>{"1.0", id, code, why, "", ""};
  };
  if (request.size() < 6 || text_of(request[0]) != "1.0") return refuse("400", "malformed ZAP 1.0 request");
  if (text_of(request[2]) != kZapDomain) return refuse("400", "unknown domain");
  if (text_of(request[5]) != "CURVE") return refuse("400", "CURVE only");
  if (request.size() != 7 || request[6].size() != 32) return refuse("400", "malformed CURVE credentials");
  char key[kKeyTextSize + 1];
  if (zmq_z85_encode(key, static_cast<const uint8_t*>(request[6].data()), 32) == nullptr)
    return refuse("400", "malformed CURVE credentials");
  bool accepted = false;
  try {
    accepted = accept_(std::string(key));
  } catch (...) {
    return refuse("500", "internal error");
  }
  if (!accepted) return refuse("400", "key not paired");
  ++accepted_;
  return {"1.0", id, "200", "OK", key, ""};
}

void make_curve_server(zmq::socket_t& socket, const Keypair& keys, const ZapHandler& zap) {
  if (!zap.running())
    throw std::logic_error("a CURVE server needs a running ZAP handler: without one every client gets in");
  socket.set(zmq::sockopt::curve_server, true);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
  socket.set(zmq::sockopt::zap_domain, kZapDomain);
  socket.set(zmq::sockopt::handshake_ivl, kHandshakeTimeoutMs);
}

void make_curve_client(zmq::socket_t& socket, const Keypair& keys, std::string_view server_public_z85) {
  if (!is_key_text(server_public_z85))
    throw IdentityError("the server's public key is not a CurveZMQ key (40 Z85 characters expected)");
  socket.set(zmq::sockopt::curve_serverkey, server_public_z85);
  socket.set(zmq::sockopt::curve_publickey, keys.public_key);
  socket.set(zmq::sockopt::curve_secretkey, keys.secret_key);
  socket.set(zmq::sockopt::handshake_ivl, kHandshakeTimeoutMs);
}

std::optional<MonitorEvent> next_monitor_event(zmq::socket_t& monitor) {
  for (;;) {
    // An event: 6 bytes (uint16 event, uint32 value, native order), then
    // the endpoint.
    const std::vector<zmq::message_t> frames = receive_frames(monitor);
    if (frames.empty()) return std::nullopt;
    if (frames.size() != 2 || frames[0].size() != 6) continue;
    MonitorEvent e;
    std::memcpy(&e.kind, frames[0].data(), 2);
    std::memcpy(&e.value, static_cast<const char*>(frames[0].data()) + 2, 4);
    e.endpoint = text_of(frames[1]);
    return e;
  }
}

std::optional<HandshakeResult> handshake_result(uint16_t event) {
  for (const auto& [code, result] : kHandshakeEvents)
    if (code == event) return result;
  return std::nullopt;
}

std::string describe(const HandshakeEvent& event) {
  switch (event.result) {
    case HandshakeResult::succeeded:
      return "handshake succeeded";
    case HandshakeResult::no_detail:
      return "handshake failed: its key is not the one paired";
    case HandshakeResult::refused:
      return "handshake refused (status " + std::to_string(event.value) + "): our key is not paired there";
    case HandshakeResult::protocol_error:
      if (event.value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        return "handshake failed: one end does not use CURVE (an --insecure peer?)";
      char code[16];
      std::snprintf(code, sizeof code, "0x%08x", event.value);
      return std::string("handshake failed: protocol error ") + code;
  }
  return "handshake: unknown result";
}

HandshakeWatch::HandshakeWatch(zmq::context_t& context, zmq::socket_t& socket)
    : events_(context, zmq::socket_type::pair) {
  const std::string endpoint = "inproc://huddle.handshake." + std::to_string(++watches);
  int events = 0;
  for (const auto& entry : kHandshakeEvents) events |= entry.first;
  if (zmq_socket_monitor(socket.handle(), endpoint.c_str(), events) != 0) throw zmq::error_t();
  events_.set(zmq::sockopt::linger, 0);
  events_.connect(endpoint);
}

std::optional<HandshakeEvent> HandshakeWatch::next(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  zmq::pollitem_t item{events_.handle(), 0, ZMQ_POLLIN, 0};
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    const int rc = zmq_poll(&item, 1, std::max<long>(0, static_cast<long>(left.count())));
    if (rc < 0 && zmq_errno() == EINTR) continue;
    if (rc < 0) throw zmq::error_t();
    if (rc == 0) return std::nullopt;
    while (std::optional<MonitorEvent> m = next_monitor_event(events_)) {
      // Other events (the monitor stopping) are not about a handshake.
      if (const std::optional<HandshakeResult> result = handshake_result(m->kind))
        return HandshakeEvent{*result, m->value, std::move(m->endpoint)};
    }
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
  }
}

}  // namespace huddle::protocol
