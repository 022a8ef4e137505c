// The node's ZeroMQ server (DESIGN.md §6): a ROUTER that serves one task.
//
// One I/O thread (the one calling run()) reads every request, answers status
// requests and refusals itself at once, and hands run requests to worker
// threads, each with its own Task, through a queue that never holds more
// than max_in_flight requests: one more is answered `overloaded` at once.
// Workers send their answers back over inproc sockets, so the I/O thread
// never waits for an inference. A request's deadline budget starts when the
// I/O thread reads it (clocks differ between devices and transit cannot be
// measured); a worker that picks up a request whose budget is spent, or
// finds it spent after decoding, answers `expired` without running the task.
// Anything malformed gets a `badInput` answer naming the problem; a frame over
// the size limit makes libzmq drop the sender's connection. stop() (safe in a
// signal handler) stops accepting run requests (`overloaded`, "stopping"),
// lets the in-flight ones finish and be answered, then run() returns.
//
// Warm-up: each worker first runs its Task once on a small synthetic image
// (the first run pays for page faults and caches); until every worker has,
// status answers say `warming` (run requests wait in the queue meanwhile),
// then `ready`.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <set>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "node/image.h"
#include "node/task.h"
#include "protocol/envelope.h"
#include "protocol/security.h"
#include "protocol/zap.h"

namespace huddle::node {

// Whether and how a node takes pair requests from coordinators it does not
// know yet.
enum class PairingMode { closed, accept, ask };

// A pair request, as a person is asked about it.
struct PairingAsk {
  std::string device_id;  // the coordinator's
  std::string name;       // the name it gave
  std::string code;       // the verification code both devices show
};

// Pairing limits: one request at a time, at most kMaxPairingsPerMinute, a
// coordinator clock at most kMaxClockSkewSeconds off ours, a person's answer
// within kPairingAnswerSeconds.
constexpr int kMaxPairingsPerMinute = 10;
constexpr int64_t kMaxClockSkewSeconds = 60;
constexpr std::chrono::seconds kPairingAnswerSeconds{30};
// Connections open at once; a connection beyond it is closed as it is
// accepted (a handshake not completed within protocol::kHandshakeTimeoutMs
// is dropped, so a flood of silent connections holds them only that long).
constexpr size_t kMaxConnections = 64;

struct ServerOptions {
  std::string bind = "tcp://127.0.0.1:0";  // ":0" picks a free port
  std::string task;                        // the task's name (status, request checks)
  size_t workers = 1;                      // threads running the task, each its own Task
  size_t max_in_flight = 2;                // run requests accepted and not yet answered
  size_t max_image_bytes = 32 << 20;       // the image frame; ZMQ_MAXMSGSIZE follows from it
  uint64_t max_pixels = DecodeLimits{}.max_pixels;
  std::string node_id;   // status: which node this is
  std::string software;  // status: huddle's version
  bool warm_up = true;   // each worker runs its task once before the node is ready

  // Security (issue 9). With a Trust the ROUTER is a CURVE server with this
  // device's key; its ZAP handler lets in this device's own key and the
  // coordinators paired with it, and, while pairing is open, any key, whose
  // connection may then send pair requests only. Null: plain TCP
  // (--insecure, checked by the caller).
  std::shared_ptr<protocol::Trust> trust;
  PairingMode pairing = PairingMode::closed;
  std::chrono::seconds pairing_window{30};  // pairing stays open this long after start
  // PairingMode::ask: asks a person whether to pair (runs on a thread of its
  // own; true: pair). It gets the request and must return within `limit`.
  std::function<bool(const PairingAsk& ask, std::chrono::seconds limit)> ask;
  // One line per security event (a pairing, a refused key, the connection
  // cap reached); empty: stderr.
  std::function<void(const std::string&)> log;
};

// A run request's fields, checked.
struct RunParams {
  std::string task;
  TaskOptions options;
  bool raw = false;  // the image frame is raw pixels of raw_width x raw_height in raw_format
  uint32_t raw_width = 0, raw_height = 0;
  PixelFormat raw_format = PixelFormat::rgb;
};

// Regions a run request may carry.
constexpr size_t kMaxRegions = 1024;

// Reads the run request in `request` (whose header read_request_header
// accepted). Throws protocol::ProtocolError for a region with a coordinate
// that is not finite, more than kMaxRegions regions, a raw image of an unknown pixel format, or a message
// Cap'n Proto refuses on the way.
RunParams read_run_request(protocol::schema::Request::Reader request);

// The image a run request's image frame holds: decoded (PNG, JPEG) or raw
// pixels checked against their stated size. Throws ImageError naming the problem.
Image request_image(const RunParams& params, std::span<const uint8_t> bytes, const DecodeLimits& limits);

class Server {
 public:
  // Makes one Task per worker (so a task that cannot start fails here), binds
  // and starts the workers. Throws std::runtime_error naming the endpoint or
  // the task's problem.
  Server(std::shared_ptr<const TaskFactory> factory, ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The endpoint bound, with the port chosen ("tcp://127.0.0.1:41234").
  const std::string& endpoint() const { return endpoint_; }
  // Serves until stop(), then answers what is in flight and returns.
  void run();
  // Asks run() to finish. Async-signal-safe; callable from any thread.
  void stop() noexcept;
  // True once every worker has warmed up (at once without warm-up).
  bool ready() const { return warming_.load() == 0; }
  // Runs `fn` once when the node is ready: at once, on this thread, if it is
  // already, else on the worker thread that finishes the warm-up last.
  void when_ready(std::function<void()> fn);

 private:
  struct Job;
  void handle_request();
  void forward_answer();
  void worker(size_t index);
  void warm_up(Task& task);
  void answer_now(std::vector<zmq::message_t>& route, uint64_t id, protocol::schema::Code code,
                  const std::string& message);
  void answer_status(std::vector<zmq::message_t>& route, uint64_t id);
  bool pairing_open() const;
  // A pair request from `key` (not yet trusted, or trusted again): answered
  // on a thread of its own, through pairing_done_.
  void start_pairing(std::vector<zmq::message_t>& route, uint64_t id, const std::string& key,
                     protocol::schema::PairRequest::Reader request);
  void pair(std::vector<zmq::message_t> route, uint64_t id, std::string key, std::string name,
            int64_t unix_seconds);
  void unpair(std::vector<zmq::message_t>& route, uint64_t id, const std::string& key);
  void forward_pairing_answer();
  void on_connection_event();
  void say(const std::string& line) const;

  std::shared_ptr<const TaskFactory> factory_;
  ServerOptions options_;
  std::string endpoint_;
  std::string done_endpoint_;
  zmq::context_t context_;
  // Before router_: destroyed after it is closed (ZAP must outlive the CURVE
  // socket) and before the context is.
  std::unique_ptr<protocol::ZapHandler> zap_;
  zmq::socket_t router_;
  zmq::socket_t done_;  // PULL: answers from the workers
  zmq::socket_t pairing_done_;  // PULL: answers from the pairing thread
  zmq::socket_t connections_;   // router_'s monitor: accepted and closed connections
  std::set<int> open_fds_;      // I/O thread only
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_reload_{};
  std::chrono::steady_clock::time_point last_cap_log_{};
  static constexpr std::chrono::milliseconds kReloadInterval{200};
  std::atomic<bool> pairing_busy_{false};
  std::deque<std::chrono::steady_clock::time_point> pairings_;  // I/O thread only: the last minute's pair requests
  std::thread pairing_thread_;
  std::atomic<bool> closing_pairing_{false};
  int stop_pipe_[2] = {-1, -1};
  std::vector<std::unique_ptr<Task>> tasks_;
  std::vector<std::thread> workers_;

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool closing_ = false;

  size_t in_flight_ = 0;  // I/O thread only
  bool stopping_ = false;
  std::atomic<bool> stop_asked_{false};  // set by stop(); lock-free, so signal-safe
  std::atomic<uint64_t> served_{0};

  std::atomic<size_t> warming_{0};  // workers not yet warmed up
  std::mutex ready_mutex_;
  std::vector<std::function<void()>> on_ready_;
};

}  // namespace huddle::node
