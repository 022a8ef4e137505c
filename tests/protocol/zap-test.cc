// protocol/zap.h: real CurveZMQ handshakes over tcp://127.0.0.1. A paired
// client is answered; an unpaired one is refused (AUTH) while the server goes
// on serving the paired one; a client given the wrong server key learns it
// (NO_DETAIL) instead of hanging; a client without CURVE gets nothing. The
// ZAP handler answers malformed requests with a refusal and stops cleanly,
// by stop() or when its context is shut down. Every wait is bounded.
#include "protocol/zap.h"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "protocol/paired.h"
#include "protocol/socket.h"
#include "tests/protocol/test_util.h"

namespace {

using namespace huddle::protocol;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

Keypair new_keypair() {
  char public_key[kKeyTextSize + 1], secret_key[kKeyTextSize + 1];
  REQUIRE(zmq_curve_keypair(public_key, secret_key) == 0);
  return {public_key, secret_key};
}

// A ROUTER with CURVE on a free loopback port that answers "re: TEXT" to each
// message, noting the User-Id the ZAP handler gave its sender.
struct EchoServer {
  zmq::socket_t socket;
  std::string endpoint;
  std::vector<std::string> user_ids;

  EchoServer(zmq::context_t& context, const Keypair& keys, const ZapHandler& zap)
      : socket(context, zmq::socket_type::router) {
    configure_socket(socket, 1 << 20);
    make_curve_server(socket, keys, zap);
  }
  void bind() {
    socket.bind("tcp://127.0.0.1:*");
    endpoint = socket.get(zmq::sockopt::last_endpoint);
  }
  // Answers every message waiting now.
  void serve() {
    for (;;) {
      std::vector<zmq::message_t> frames = receive_frames(socket);
      if (frames.empty()) return;
      if (frames.size() != 2) continue;
      user_ids.emplace_back(frames[1].gets("User-Id"));
      std::string reply = "re: ";
      reply += frames[1].to_string_view();
      socket.send(frames[0], zmq::send_flags::sndmore);
      socket.send(zmq::buffer(reply), zmq::send_flags::none);
    }
  }
};

// Sends `text` from `client` and serves `server` until the answer comes
// (nullopt when none came within `timeout`).
std::optional<std::string> ask(EchoServer& server, zmq::socket_t& client, const std::string& text,
                               std::chrono::milliseconds timeout) {
  client.send(zmq::buffer(text), zmq::send_flags::dontwait);
  const auto until = std::chrono::steady_clock::now() + timeout;
  zmq::pollitem_t items[] = {{server.socket.handle(), 0, ZMQ_POLLIN, 0}, {client.handle(), 0, ZMQ_POLLIN, 0}};
  while (std::chrono::steady_clock::now() < until) {
    REQUIRE(zmq_poll(items, 2, 20) >= 0);
    server.serve();
    std::vector<zmq::message_t> frames = receive_frames(client);
    if (!frames.empty()) return frames.back().to_string();
  }
  return std::nullopt;
}

zmq::socket_t curve_client(zmq::context_t& context, const Keypair& keys, const std::string& server_key) {
  zmq::socket_t client(context, zmq::socket_type::dealer);
  configure_socket(client, 1 << 20);
  make_curve_client(client, keys, server_key);
  return client;
}

struct Keys {
  Keypair node = new_keypair();
  Keypair paired = new_keypair();
  Keypair stranger = new_keypair();
};

TEST_CASE("a paired client is answered; an unpaired one is refused and the server goes on") {
  Keys keys;
  zmq::context_t context;
  ZapHandler zap(context, [&keys](const std::string& key) { return key == keys.paired.public_key; });
  EchoServer server(context, keys.node, zap);
  HandshakeWatch server_watch(context, server.socket);
  server.bind();

  zmq::socket_t paired = curve_client(context, keys.paired, keys.node.public_key);
  HandshakeWatch paired_watch(context, paired);
  paired.connect(server.endpoint);
  CHECK(ask(server, paired, "one", 3s) == "re: one");
  const std::optional<HandshakeEvent> ok = paired_watch.next(1s);
  REQUIRE(ok.has_value());
  CHECK(ok->result == HandshakeResult::succeeded);
  REQUIRE(server.user_ids.size() == 1);
  CHECK(server.user_ids[0] == keys.paired.public_key);
  CHECK(zap.accepted() == 1);
  CHECK(zap.refused() == 0);
  CHECK(server.socket.get(zmq::sockopt::handshake_ivl) == kHandshakeTimeoutMs);
  CHECK(paired.get(zmq::sockopt::handshake_ivl) == kHandshakeTimeoutMs);
  CHECK(server.socket.get(zmq::sockopt::zap_domain) == kZapDomain);

  zmq::socket_t stranger = curve_client(context, keys.stranger, keys.node.public_key);
  HandshakeWatch stranger_watch(context, stranger);
  stranger.connect(server.endpoint);
  CHECK_FALSE(ask(server, stranger, "let me in", 500ms).has_value());
  const std::optional<HandshakeEvent> refused = stranger_watch.next(2s);
  REQUIRE(refused.has_value());
  CHECK(refused->result == HandshakeResult::refused);
  CHECK(refused->value == 400);
  CHECK(zap.refused() >= 1);
  CHECK(server.user_ids.size() == 1);

  // The server saw both handshakes: one in, one refused.
  std::vector<HandshakeResult> seen;
  while (const std::optional<HandshakeEvent> e = server_watch.next(100ms)) seen.push_back(e->result);
  CHECK(std::count(seen.begin(), seen.end(), HandshakeResult::succeeded) == 1);
  CHECK(std::count(seen.begin(), seen.end(), HandshakeResult::refused) >= 1);

  // The paired client is still served, and a second paired connection too.
  CHECK(ask(server, paired, "two", 3s) == "re: two");
  zmq::socket_t again = curve_client(context, keys.paired, keys.node.public_key);
  again.connect(server.endpoint);
  CHECK(ask(server, again, "three", 3s) == "re: three");
  CHECK(zap.accepted() == 2);
  CHECK(std::find(server.user_ids.begin(), server.user_ids.end(), keys.stranger.public_key) ==
        server.user_ids.end());
}

TEST_CASE("a node's policy: the coordinators its paired file lists now") {
  Keys keys;
  huddle::test::TempDir tmp;
  PairedDevice laptop;
  laptop.public_key = keys.paired.public_key;
  laptop.role = PeerRole::coordinator;
  PairedDevice camera;  // paired, but as a node: not let in as a coordinator
  camera.public_key = keys.stranger.public_key;
  camera.role = PeerRole::node;
  PairedKeys(tmp.path).add(laptop);
  PairedKeys(tmp.path).add(camera);

  PairedKeys paired(tmp.path);
  zmq::context_t context;
  ZapHandler zap(context, [&paired](const std::string& key) {
    paired.reload_if_changed();  // throws for a damaged file: refused (500)
    const std::optional<PairedDevice> device = paired.find_by_key(key);
    return device && device->role == PeerRole::coordinator;
  });
  EchoServer server(context, keys.node, zap);
  server.bind();
  auto handshake = [&](const Keypair& client_keys, zmq::socket_t& client) {
    client = curve_client(context, client_keys, keys.node.public_key);
    HandshakeWatch watch(context, client);
    client.connect(server.endpoint);
    const std::optional<HandshakeEvent> event = watch.next(2s);
    return event ? event->result : HandshakeResult::protocol_error;
  };
  zmq::socket_t coordinator, node;
  CHECK(handshake(keys.paired, coordinator) == HandshakeResult::succeeded);
  CHECK(ask(server, coordinator, "one", 3s) == "re: one");
  CHECK(handshake(keys.stranger, node) == HandshakeResult::refused);

  // `huddle unpair` in another process.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const bool removed = PairedKeys(tmp.path).remove(device_id(keys.paired.public_key)).has_value();
    ::_exit(removed ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  // Its next connection is refused...
  zmq::socket_t again;
  CHECK(handshake(keys.paired, again) == HandshakeResult::refused);
  // ...but ZAP only sees handshakes: the connection made before goes on
  // until the node closes it. Every message says who sent it (User-Id), so
  // the node can drop those of a key no longer paired.
  CHECK(ask(server, coordinator, "two", 3s) == "re: two");
  CHECK(server.user_ids.back() == keys.paired.public_key);
  CHECK_FALSE(paired.find_by_key(server.user_ids.back()).has_value());
}

TEST_CASE("a client given the wrong server key learns it within a second") {
  Keys keys;
  zmq::context_t context;
  ZapHandler zap(context, [](const std::string&) { return true; });
  EchoServer server(context, keys.node, zap);
  server.bind();
  // It believes the stranger's key is the node's: an impostor, or a node
  // whose key changed since pairing.
  zmq::socket_t client = curve_client(context, keys.paired, keys.stranger.public_key);
  HandshakeWatch watch(context, client);
  const auto start = std::chrono::steady_clock::now();
  client.connect(server.endpoint);
  const std::optional<HandshakeEvent> event = watch.next(1s);
  REQUIRE(event.has_value());
  CHECK(event->result == HandshakeResult::no_detail);
  CHECK(std::chrono::steady_clock::now() - start < 1s);
  CHECK(event->endpoint == server.endpoint);
  CHECK_THAT(describe(*event), Contains("not the one paired"));
  CHECK_FALSE(ask(server, client, "hello", 300ms).has_value());
  CHECK(zap.accepted() == 0);  // the node never got as far as asking
}

TEST_CASE("a client without CURVE gets nothing; a CURVE client of a server without it says so") {
  Keys keys;
  zmq::context_t context;
  ZapHandler zap(context, [](const std::string&) { return true; });
  EchoServer server(context, keys.node, zap);
  HandshakeWatch server_watch(context, server.socket);
  server.bind();
  zmq::socket_t client(context, zmq::socket_type::dealer);
  configure_socket(client, 1 << 20);
  HandshakeWatch watch(context, client);
  client.connect(server.endpoint);
  CHECK_FALSE(ask(server, client, "hello", 500ms).has_value());
  for (HandshakeWatch* w : {&watch, &server_watch}) {
    const std::optional<HandshakeEvent> event = w->next(1s);
    REQUIRE(event.has_value());
    CHECK(event->result == HandshakeResult::protocol_error);
    CHECK(event->value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH);
    CHECK_THAT(describe(*event), Contains("does not use CURVE"));
  }
  CHECK(server.user_ids.empty());
  CHECK(zap.accepted() == 0);

  // A node without CURVE (--insecure) seen from a CURVE client.
  zmq::socket_t plain_server(context, zmq::socket_type::router);
  configure_socket(plain_server, 1 << 20);
  plain_server.bind("tcp://127.0.0.1:*");
  zmq::socket_t curve = curve_client(context, keys.paired, keys.node.public_key);
  HandshakeWatch curve_watch(context, curve);
  curve.connect(plain_server.get(zmq::sockopt::last_endpoint));
  const std::optional<HandshakeEvent> event = curve_watch.next(1s);
  REQUIRE(event.has_value());
  CHECK(event->result == HandshakeResult::protocol_error);
  CHECK(event->value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH);
}

// One ZAP request sent straight to the handler, its reply's frames.
std::vector<std::string> zap_request(zmq::context_t& context, const std::vector<std::string>& frames) {
  zmq::socket_t req(context, zmq::socket_type::req);
  req.set(zmq::sockopt::linger, 0);
  req.set(zmq::sockopt::rcvtimeo, 2000);
  req.connect(kZapEndpoint);
  for (size_t i = 0; i < frames.size(); ++i)
    req.send(zmq::buffer(frames[i]),
             i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
  std::vector<std::string> reply;
  zmq::message_t frame;
  do {
    if (!req.recv(frame)) return reply;  // timed out
    reply.push_back(frame.to_string());
  } while (frame.more());
  return reply;
}

TEST_CASE("the ZAP handler refuses every request but a CURVE key it accepts") {
  const Keypair paired = new_keypair();
  std::string raw(32, '\0');
  REQUIRE(zmq_z85_decode(reinterpret_cast<uint8_t*>(raw.data()), paired.public_key.c_str()) != nullptr);
  zmq::context_t context;
  ZapHandler zap(context, [&paired](const std::string& key) {
    if (key == std::string(kKeyTextSize, '0')) throw std::runtime_error("policy failed");
    return key == paired.public_key;
  });
  const std::string domain(kZapDomain);
  const std::vector<std::string> ok =
      zap_request(context, {"1.0", "7", domain, "127.0.0.1", "", "CURVE", raw});
  CHECK(ok == std::vector<std::string>{"1.0", "7", "200", "OK", paired.public_key, ""});

  struct Case {
    std::vector<std::string> request;
    std::string status;
  };
  const Case cases[] = {
      {{"1.0", "8", domain, "127.0.0.1", "", "NULL"}, "400"},
      {{"1.0", "9", domain, "127.0.0.1", "", "PLAIN", "user", "password"}, "400"},
      {{"1.0", "10", "other", "127.0.0.1", "", "CURVE", raw}, "400"},
      {{"1.0", "11", domain, "127.0.0.1", "", "CURVE", std::string(32, 'x')}, "400"},  // not paired
      {{"1.0", "12", domain, "127.0.0.1", "", "CURVE", raw.substr(1)}, "400"},
      {{"1.0", "13", domain, "127.0.0.1", "", "CURVE", raw, "extra"}, "400"},
      {{"1.0", "14", domain, "127.0.0.1", "", "CURVE"}, "400"},
      {{"2.0", "15", domain, "127.0.0.1", "", "CURVE", raw}, "400"},
      {{"1.0", "16"}, "400"},
      {{"garbage"}, "400"},
      {{""}, "400"},
      {{"1.0", "17", domain, "127.0.0.1", "", "CURVE", std::string(32, '\0')}, "500"},  // the policy throws
  };
  for (const Case& c : cases) {
    INFO("request id " << (c.request.size() > 1 ? c.request[1] : "(none)"));
    const std::vector<std::string> reply = zap_request(context, c.request);
    REQUIRE(reply.size() == 6);
    CHECK(reply[0] == "1.0");
    CHECK(reply[1] == (c.request.size() > 1 ? c.request[1] : ""));
    CHECK(reply[2] == c.status);
    CHECK(reply[4].empty());
  }
  CHECK(zap.accepted() == 1);
  CHECK(zap.refused() == std::size(cases));
  CHECK(zap.running());
}

TEST_CASE("the ZAP handler stops by stop() or with its context, and one per context") {
  SECTION("stop") {
    zmq::context_t context;
    std::optional<ZapHandler> zap;
    zap.emplace(context, [](const std::string&) { return true; });
    CHECK_THROWS_AS(ZapHandler(context, [](const std::string&) { return true; }), zmq::error_t);
    const auto start = std::chrono::steady_clock::now();
    zap->stop();
    CHECK(std::chrono::steady_clock::now() - start < 1s);
    CHECK_FALSE(zap->running());
    zap->stop();  // again: nothing
    zmq::socket_t server(context, zmq::socket_type::router);
    CHECK_THROWS_AS(make_curve_server(server, new_keypair(), *zap), std::logic_error);
    // The endpoint is free again.
    zap.reset();
    ZapHandler next(context, [](const std::string&) { return true; });
    CHECK(next.running());
  }
  SECTION("context shut down") {
    zmq::context_t context;
    ZapHandler zap(context, [](const std::string&) { return true; });
    REQUIRE(zap.running());
    context.shutdown();
    const auto until = std::chrono::steady_clock::now() + 2s;
    while (zap.running() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
    CHECK_FALSE(zap.running());
    // Destroying the handler joins its thread; then the context terminates
    // (its every socket closed).
  }
}

}  // namespace
