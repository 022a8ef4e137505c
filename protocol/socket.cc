#include "protocol/socket.h"

#include <malloc.h>

namespace huddle::protocol {

void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 16 << 20);
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
#endif
}

void configure_socket(zmq::socket_t& socket, int64_t max_message_bytes) {
  socket.set(zmq::sockopt::maxmsgsize, max_message_bytes);
  socket.set(zmq::sockopt::linger, 0);
  socket.set(zmq::sockopt::heartbeat_ivl, kHeartbeatIntervalMs);
  socket.set(zmq::sockopt::heartbeat_timeout, kHeartbeatTimeoutMs);
  socket.set(zmq::sockopt::heartbeat_ttl, kHeartbeatTimeoutMs);
}

std::vector<zmq::message_t> receive_frames(zmq::socket_t& socket) {
  std::vector<zmq::message_t> frames;
  zmq::message_t frame;
  while (socket.recv(frame, zmq::recv_flags::dontwait)) {
    const bool more = frame.more();
    frames.push_back(std::move(frame));
    frame = zmq::message_t();
    if (!more) break;
  }
  return frames;
}

std::string bind_endpoint(const std::string& endpoint) {
  if (endpoint.size() > 2 && endpoint.ends_with(":0") && endpoint.starts_with("tcp://"))
    return endpoint.substr(0, endpoint.size() - 1) + "*";
  return endpoint;
}

Reply::Reply(zmq::message_t frame, size_t max_bytes)
    : frame_(std::make_unique<zmq::message_t>(std::move(frame))),
      envelope_(std::make_unique<Envelope>(
          std::span<const uint8_t>(static_cast<const uint8_t*>(frame_->data()), frame_->size()), max_bytes)),
      header_(read_response_header(*envelope_)) {}

HandshakeError::HandshakeError(HandshakeEvent event) : std::runtime_error(describe(event)), event_(std::move(event)) {}

Client::Client(zmq::context_t& context, const std::string& endpoint, int64_t max_message_bytes)
    : Client(context, endpoint, nullptr, {}, max_message_bytes) {}

Client::Client(zmq::context_t& context, const std::string& endpoint, const Keypair* keys,
               std::string_view server_key, int64_t max_message_bytes)
    : socket_(context, zmq::socket_type::dealer), max_message_bytes_(max_message_bytes) {
  configure_socket(socket_, max_message_bytes);
  if (keys) {
    make_curve_client(socket_, *keys, server_key);
    watch_.emplace(context, socket_);
  }
  socket_.connect(endpoint);
}

void Client::send(capnp::MessageBuilder& request, std::optional<std::span<const uint8_t>> image) {
  const kj::Array<capnp::word> words = frame_of(request);
  const kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
  socket_.send(zmq::const_buffer(bytes.begin(), bytes.size()),
               image ? zmq::send_flags::sndmore : zmq::send_flags::none);
  if (image) socket_.send(zmq::const_buffer(image->data(), image->size()), zmq::send_flags::none);
}

void Client::send_frames(std::span<const std::string> frames) {
  for (size_t i = 0; i < frames.size(); ++i)
    socket_.send(zmq::const_buffer(frames[i].data(), frames[i].size()),
                 i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

std::optional<Reply> Client::receive(std::chrono::milliseconds timeout) {
  zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, 0, ZMQ_POLLIN, 0}};
  if (watch_) items[1].socket = watch_->events().handle();
  const int count = watch_ ? 2 : 1;
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() < 0) return std::nullopt;
    const int rc = zmq_poll(items, count, static_cast<long>(left.count()));
    if (rc < 0 && zmq_errno() == EINTR) continue;
    if (rc < 0) throw zmq::error_t();
    if (rc == 0) return std::nullopt;
    std::vector<zmq::message_t> frames = receive_frames(socket_);
    if (frames.empty()) {
      // An answer that came before a failed reconnection is still read first.
      if (watch_ && (items[1].revents & ZMQ_POLLIN))
        while (const std::optional<HandshakeEvent> event = watch_->next(std::chrono::milliseconds(0)))
          if (event->result != HandshakeResult::succeeded) throw HandshakeError(*event);
      continue;
    }
    if (frames.size() != 1)
      throw ProtocolError("response of " + std::to_string(frames.size()) + " frames (one expected)");
    return Reply(std::move(frames.front()), static_cast<size_t>(max_message_bytes_));
  }
}

std::optional<Reply> Client::receive(uint64_t id, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() < 0) return std::nullopt;
    std::optional<Reply> reply = receive(left);
    if (!reply || reply->header().id == id) return reply;
  }
}

}  // namespace huddle::protocol
