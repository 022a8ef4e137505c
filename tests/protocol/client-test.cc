// protocol/socket.h's Client over CURVE, on loopback: a client with the
// node's key and a key the node lets in is answered; one whose key the node
// refuses, or that was given another key for the node, learns it at once
// (HandshakeError) instead of waiting out its timeout; plain stays the
// default. Every wait is bounded.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "protocol/security.h"
#include "protocol/socket.h"
#include "protocol/zap.h"

namespace {

using namespace huddle::protocol;
using namespace std::chrono_literals;

Keypair new_keypair() {
  char public_key[kKeyTextSize + 1], secret_key[kKeyTextSize + 1];
  REQUIRE(zmq_curve_keypair(public_key, secret_key) == 0);
  return {public_key, secret_key};
}

// A CURVE ROUTER on a free loopback port, on its own thread, that answers
// every request with an ok status naming the sender's key.
class StatusNode {
 public:
  StatusNode(zmq::context_t& context, const Keypair& keys, const ZapHandler& zap)
      : socket_(context, zmq::socket_type::router) {
    configure_socket(socket_, 1 << 20);
    make_curve_server(socket_, keys, zap);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { serve(); });
  }
  ~StatusNode() {
    stopping_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }

 private:
  void serve() {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    while (!stopping_) {
      if (zmq_poll(&item, 1, 20) <= 0) continue;
      const std::vector<zmq::message_t> frames = receive_frames(socket_);
      if (frames.size() != 2) continue;
      const Envelope request(
          std::span<const uint8_t>(static_cast<const uint8_t*>(frames[1].data()), frames[1].size()));
      capnp::MallocMessageBuilder message;
      auto status = init_response(message, request.root<schema::Request>().getId(), schema::Code::OK)
                        .initBody()
                        .initStatus();
      status.setNodeId(sender_key(frames[1]));
      const kj::Array<capnp::word> words = frame_of(message);
      socket_.send(zmq::const_buffer(frames[0].data(), frames[0].size()), zmq::send_flags::sndmore);
      socket_.send(zmq::const_buffer(words.asBytes().begin(), words.asBytes().size()), zmq::send_flags::none);
    }
  }

  zmq::socket_t socket_;
  std::string endpoint_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

// Sends a status request from `client` and waits up to `timeout`.
std::optional<Reply> ask_status(Client& client, std::chrono::milliseconds timeout) {
  capnp::MallocMessageBuilder message;
  const uint64_t id = client.next_id();
  init_request(message, id, 0).initBody().setStatus();
  client.send(message);
  return client.receive(id, timeout);
}

// How `client`'s status request ends: the handshake's failure, with the time it took.
HandshakeResult failure(Client& client, std::chrono::milliseconds* took) {
  const auto start = std::chrono::steady_clock::now();
  try {
    ask_status(client, 10s);
  } catch (const HandshakeError& e) {
    *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    return e.event().result;
  }
  FAIL("no HandshakeError within 10 s");
  return HandshakeResult::succeeded;
}

TEST_CASE("a Client over CURVE is answered; a refused key or a wrong node key ends it at once") {
  const Keypair node = new_keypair(), paired = new_keypair(), stranger = new_keypair();
  zmq::context_t context;
  ZapHandler zap(context, [&](const std::string& key) { return key == paired.public_key; });
  StatusNode server(context, node, zap);

  Client plain(context, server.endpoint());
  CHECK_FALSE(plain.encrypted());

  Client client(context, server.endpoint(), &paired, node.public_key);
  CHECK(client.encrypted());
  const std::optional<Reply> reply = ask_status(client, 5s);
  REQUIRE(reply.has_value());
  CHECK(reply->header().code == schema::Code::OK);
  CHECK(std::string(reply->root().getBody().getStatus().getNodeId().cStr()) == paired.public_key);

  std::chrono::milliseconds took{};
  Client refused(context, server.endpoint(), &stranger, node.public_key);
  CHECK(failure(refused, &took) == HandshakeResult::refused);
  CHECK(took < 3s);

  Client misled(context, server.endpoint(), &paired, stranger.public_key);
  CHECK(failure(misled, &took) == HandshakeResult::no_detail);
  CHECK(took < 3s);

  // The node goes on serving the paired client.
  CHECK(ask_status(client, 5s).has_value());
  CHECK_THROWS_AS(Client(context, server.endpoint(), &paired, "not a key"), IdentityError);
}

}  // namespace
