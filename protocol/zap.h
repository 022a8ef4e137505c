// CurveZMQ on huddle's sockets (issue 9, DESIGN.md §6: "ironhouse", both
// ends authenticated), see ../shared/RECIPES.md "ZeroMQ CURVE and ZAP":
//
// - A ZapHandler answers libzmq's ZAP 1.0 requests (RFC 27) for every CURVE
//   server socket of its context: it accepts a client key only when the
//   policy it was given says so (a node: the coordinators in PairedKeys).
//   Without a handler libzmq's CURVE lets any client in, which is why
//   make_curve_server wants one.
// - make_curve_server / make_curve_client set the options of each end.
// - A HandshakeWatch reads a socket's monitor events, so that a client whose
//   handshakes fail can say why (the server's key is not the one it expects,
//   or the server refused our key) instead of waiting for answers that never
//   come: libzmq retries such a connection silently forever.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "protocol/identity.h"

namespace huddle::protocol {

// The ZAP domain of huddle's CURVE servers; the handler refuses any other.
constexpr std::string_view kZapDomain = "huddle";
// Where libzmq sends ZAP requests: an endpoint of the context.
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

// Answers ZAP requests on its own thread: status 200 for the CURVE mechanism,
// domain kZapDomain and a client key that `accept` accepts (the reply's user
// id is that key in Z85: received messages carry it as the "User-Id"
// property); 400 for every other request (NULL or PLAIN mechanism, another
// domain, another ZAP version, a malformed request, a key `accept` refuses);
// 500 when `accept` throws. `accept` runs on the handler's thread, one
// request at a time.
//
// Lifetime: create it before the CURVE server sockets bind, stop it only
// after they are closed (with no handler bound, libzmq lets every client
// in), destroy it before its context is terminated. It also ends by itself
// when its context is shut down (zmq_ctx_shutdown): its thread closes its
// socket on ETERM, as every thread must.
class ZapHandler {
 public:
  using Policy = std::function<bool(const std::string& client_key_z85)>;

  // Binds kZapEndpoint in `context` before returning. Throws zmq::error_t
  // when it cannot (another handler is bound there: EADDRINUSE).
  ZapHandler(zmq::context_t& context, Policy accept);
  ~ZapHandler();
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  // Closes the socket and joins the thread (within about 0.1 s); idempotent.
  void stop();
  // False once stopped, or once the context has been shut down.
  bool running() const { return running_.load(); }

  // Requests answered 200, and answered otherwise.
  uint64_t accepted() const { return accepted_.load(); }
  uint64_t refused() const { return refused_.load(); }

 private:
  void run(zmq::context_t& context, std::promise<void>& bound);
  std::vector<std::string> answer(const std::vector<zmq::message_t>& request);

  Policy accept_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
  std::thread thread_;
};

// How long either end of a CURVE connection waits for the handshake to
// complete before dropping it (ZMQ_HANDSHAKE_IVL; libzmq's default is 30 s):
// a peer that connects and says nothing holds a connection only this long.
constexpr int kHandshakeTimeoutMs = 5000;

// A CURVE server end: our secret key, ZAP domain kZapDomain, the handshake
// timeout. `zap` must be
// the running handler of the socket's context (it is what refuses unpaired
// clients); throws std::logic_error when it is not running.
void make_curve_server(zmq::socket_t& socket, const Keypair& keys, const ZapHandler& zap);
// A CURVE client end that talks only to the server whose public key is
// `server_public_z85`, with the handshake timeout. Throws IdentityError when that is not a key.
void make_curve_client(zmq::socket_t& socket, const Keypair& keys, std::string_view server_public_z85);

// How a handshake on a monitored socket ended.
enum class HandshakeResult {
  succeeded,
  // ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: for a CURVE client, the server's
  // key is not the one we were given (the server cannot open our HELLO and
  // hangs up).
  no_detail,
  // ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: the ZAP handler refused the client's key
  // (on a client: our key is not paired there); the value is the status code.
  refused,
  // ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: a malformed or unexpected handshake;
  // the value is the ZMQ_PROTOCOL_ERROR_* code, ..._ZMTP_MECHANISM_MISMATCH
  // when one end uses CURVE and the other does not (an --insecure peer).
  protocol_error,
};

struct HandshakeEvent {
  HandshakeResult result;
  uint32_t value = 0;    // the event's value: status code or protocol error
  std::string endpoint;  // the connection's endpoint, as libzmq names it
};

// One event of a socket monitor (zmq_socket_monitor): its ZMQ_EVENT_* kind,
// its value (a file descriptor, an error or a status code) and the endpoint.
struct MonitorEvent {
  uint16_t kind = 0;
  uint32_t value = 0;
  std::string endpoint;
};
// The next event waiting on `monitor` (the PAIR socket connected to a
// monitor's endpoint), without blocking; nullopt when none is waiting.
// Malformed messages are skipped.
std::optional<MonitorEvent> next_monitor_event(zmq::socket_t& monitor);

// The handshake result a monitor event (ZMQ_EVENT_*) reports; nullopt for
// an event that is not about a handshake.
std::optional<HandshakeResult> handshake_result(uint16_t event);

// What happened, for a message after "node NAME: " ("its key is not the one
// paired", "it refused our key: not paired there", "it does not use CURVE").
std::string describe(const HandshakeEvent& event);

// Monitors one socket's handshakes (zmq_socket_monitor). Create it in the
// thread that owns `socket`, before connecting or binding it (earlier events
// are not reported), and use it from that thread only. It must not outlive
// the context; it may outlive the socket (then no event comes any more).
class HandshakeWatch {
 public:
  HandshakeWatch(zmq::context_t& context, zmq::socket_t& socket);

  // The next handshake event, waiting at most `timeout`; nullopt when none
  // came. Events come one per connection attempt: a client whose handshake
  // fails reconnects and fails again.
  std::optional<HandshakeEvent> next(std::chrono::milliseconds timeout);

  // The socket the events arrive on, to poll it with others (then call
  // next(0ms) when it is readable).
  zmq::socket_t& events() { return events_; }

 private:
  zmq::socket_t events_;
};

}  // namespace huddle::protocol
