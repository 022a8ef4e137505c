// A stand-in for a node's pairing side, for tests/pair-test.sh: a CURVE
// ROUTER on a free loopback port with the keys of STATE_DIR that answers
// pair, unpair and status requests the way MODE says, so that `huddle pair`,
// `huddle unpair` and `huddle ask` meet every answer a node may give,
// wrong ones included.
//
// usage: fake-node STATE_DIR MODE
//   accept      ZAP lets every key in; pair: ok with the code of the
//               sender's key, this node's key and the request's time, and
//               the sender stored as a paired coordinator; unpair: the
//               sender removed, ok; status: ok
//   wrong-code  as accept, but the pair answer carries another code
//   refuse      as accept, but a pair request is answered refused
//   silent      as accept, but a pair request gets no answer
//   closed      ZAP lets only paired coordinators (and this device) in
// Prints "ENDPOINT PUBLIC_KEY DEVICE_ID" as its first line, then serves until
// killed.
#include <cstdio>
#include <string>
#include <vector>

#include "protocol/envelope.h"
#include "protocol/security.h"
#include "protocol/socket.h"
#include "protocol/zap.h"

namespace {

using namespace huddle::protocol;

void answer(zmq::socket_t& socket, const zmq::message_t& peer, capnp::MessageBuilder& message) {
  const kj::Array<capnp::word> words = frame_of(message);
  socket.send(zmq::const_buffer(peer.data(), peer.size()), zmq::send_flags::sndmore);
  socket.send(zmq::const_buffer(words.asBytes().begin(), words.asBytes().size()), zmq::send_flags::none);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fputs("usage: fake-node STATE_DIR accept|wrong-code|refuse|silent|closed\n", stderr);
    return 2;
  }
  const std::string mode = argv[2];
  Trust trust(argv[1]);
  zmq::context_t context;
  ZapHandler zap(context, [&](const std::string& key) {
    trust.reload();
    return mode != "closed" || trust.trusts(key, PeerRole::coordinator);
  });
  zmq::socket_t socket(context, zmq::socket_type::router);
  configure_socket(socket, 1 << 20);
  make_curve_server(socket, trust.keys(), zap);
  socket.bind("tcp://127.0.0.1:*");
  std::printf("%s %s %s\n", socket.get(zmq::sockopt::last_endpoint).c_str(), trust.keys().public_key.c_str(),
              trust.device_id().c_str());
  std::fflush(stdout);
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  for (;;) {
    if (zmq_poll(&item, 1, 1000) <= 0) continue;
    const std::vector<zmq::message_t> frames = receive_frames(socket);
    if (frames.size() < 2) continue;
    const std::string sender = sender_key(frames[1]);
    try {
      const Envelope envelope(
          std::span<const uint8_t>(static_cast<const uint8_t*>(frames[1].data()), frames[1].size()));
      const auto request = envelope.root<schema::Request>();
      capnp::MallocMessageBuilder message;
      const auto body = request.getBody();
      if (body.isPair()) {
        if (mode == "silent") continue;
        if (mode == "refuse") {
          init_response(message, request.getId(), schema::Code::REFUSED, "the person said no");
        } else {
          std::string code = verification_code(sender, trust.keys().public_key, body.getPair().getUnixSeconds());
          if (mode == "wrong-code") code = code == "123456" ? "654321" : "123456";
          PairedDevice device;
          device.public_key = sender;
          device.name = body.getPair().getName();
          device.role = PeerRole::coordinator;
          trust.paired().add(device);
          auto paired = init_response(message, request.getId(), schema::Code::OK).initBody().initPaired();
          paired.setCode(code);
          paired.setDeviceId(trust.device_id());
          paired.setName("fake");
          paired.setTask("classify");
        }
        std::fprintf(stderr, "fake-node: pair from %s: %s\n", device_id(sender).c_str(), mode.c_str());
      } else if (body.isUnpair()) {
        const bool removed = trust.paired().remove(device_id(sender)).has_value();
        std::fprintf(stderr, "fake-node: unpair from %s: %s\n", device_id(sender).c_str(),
                     removed ? "removed" : "was not paired");
        init_response(message, request.getId(), schema::Code::OK).initBody().setUnpaired();
      } else if (body.isStatus()) {
        auto status = init_response(message, request.getId(), schema::Code::OK).initBody().initStatus();
        status.setNodeId("fake");
        status.setTask("classify");
        status.setState(schema::NodeState::READY);
        status.setEncrypted(true);
        status.setDeviceId(trust.device_id());
      } else {
        init_response(message, request.getId(), schema::Code::BAD_INPUT, "fake-node: not a request it knows");
      }
      answer(socket, frames[0], message);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fake-node: %s\n", e.what());
    }
  }
}
