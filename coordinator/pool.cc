#include "coordinator/pool.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include <capnp/message.h>
#include <zmq.hpp>

#include "protocol/envelope.h"
#include "protocol/socket.h"
#include "protocol/zap.h"

namespace huddle::coordinator {
namespace {

namespace schema = protocol::schema;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

uint32_t us_between(Clock::time_point a, Clock::time_point b) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(b - a).count();
  return static_cast<uint32_t>(std::clamp<int64_t>(us, 0, UINT32_MAX));
}

// Where tasks come in a frame's reports when the caller names none: the
// detector first (its boxes feed the colour node), then the rest by name.
bool task_before(const std::string& a, const std::string& b) {
  if ((a == "detect") != (b == "detect")) return a == "detect";
  return a < b;
}

enum class NodeState { connecting, warming, ready, stopping, lost, unpaired, refused, wrong_key, mismatch, insecure };

const char* state_name(NodeState s) {
  switch (s) {
    case NodeState::connecting:
      return "connecting";
    case NodeState::warming:
      return "warming";
    case NodeState::ready:
      return "ready";
    case NodeState::stopping:
      return "stopping";
    case NodeState::lost:
      return "lost";
    case NodeState::unpaired:
      return "unpaired";
    case NodeState::refused:
      return "refused";
    case NodeState::wrong_key:
      return "wrong-key";
    case NodeState::mismatch:
      return "mismatch";
    case NodeState::insecure:
      return "insecure";
  }
  return "lost";
}

Outcome outcome_of(schema::Code code) {
  switch (code) {
    case schema::Code::OK:
      return Outcome::ok;
    case schema::Code::OVERLOADED:
      return Outcome::overloaded;
    case schema::Code::EXPIRED:
      return Outcome::expired;
    case schema::Code::BAD_INPUT:
      return Outcome::bad_input;
    default:
      return Outcome::error;
  }
}

}  // namespace

struct Pool::Impl {
  struct Node {
    std::string key;  // "ID/TASK" (mDNS) or "peer HOST:PORT" (a static peer)
    std::string id, task, model, endpoint;
    std::string server_key, device_id;  // its CURVE public key (Z85) and device id; empty if unknown
    bool mdns = false, static_peer = false;
    std::unique_ptr<zmq::socket_t> dealer, monitor;
    NodeState state = NodeState::connecting;
    bool connected = false;
    Clock::time_point last_heard{}, last_used{}, status_sent{}, connecting_since{};
    uint64_t status_id = 0;  // the status request waiting for its answer, 0 if none
    uint32_t in_flight = 0, node_in_flight = 0, max_in_flight = 2;
    double latency_ms = 0, status_ms = 0;
    uint64_t answered = 0;

    bool in_rotation() const { return state == NodeState::ready && connected; }
  };

  struct Pending {
    uint64_t frame;
    size_t slot;  // the task's slot, or kRegions
    std::string node;
    Clock::time_point sent;
  };
  static constexpr size_t kRegions = SIZE_MAX;
  // Hedging: a request is sent again elsewhere after max(kHedgeMinimum, 4x
  // its node's usual round trip), unless less than kHedgeMargin is left.
  static constexpr milliseconds kHedgeMinimum{250};
  static constexpr milliseconds kHedgeMargin{50};

  struct Slot {
    TaskAnswers answers;
    std::set<std::string> tried;
    uint32_t outstanding = 0;
    bool done = false;
    Outcome failure = Outcome::unset;  // the last thing that went wrong
    std::string failure_message;
    Clock::time_point sent{};  // the last request: when, to which node
    std::string node;
  };

  struct FrameState {
    uint64_t id = 0;
    Frame frame;
    Clock::time_point start, deadline;
    std::vector<Slot> slots;
    size_t detect = SIZE_MAX, colour = SIZE_MAX;
    bool regions_sent = false, regions_done = false;
    std::vector<Box> boxes;
    Answer region_answer;
    bool have_regions = false;
    std::string regions_failure;
    std::function<void(Scene)> done;
  };

  PoolOptions options;
  zmq::context_t context;
  int wake_fd = -1;
  std::thread thread;
  std::atomic<bool> stopping{false};

  // Handed over from other threads.
  std::mutex inbox_mutex;
  std::deque<std::pair<Frame, std::function<void(Scene)>>> submitted;
  std::deque<discovery::Event> events;

  // The loop thread's own.
  std::map<std::string, std::unique_ptr<Node>> nodes;
  std::map<std::string, std::string> aliases;  // an announced node's key -> the static peer it is
  std::unordered_map<uint64_t, Pending> pending;
  std::map<uint64_t, FrameState> frames;
  uint64_t last_request_id = 0, last_frame_id = 0, monitors = 0;
  bool dirty = true;
  Clock::time_point last_reload{};
  std::string reload_error;
  static constexpr milliseconds kReloadInterval{200};

  // Read by nodes() and wait_ready().
  mutable std::mutex view_mutex;
  std::vector<NodeView> view;
  Clock::time_point last_change = Clock::now();

  std::unique_ptr<discovery::Browser> browser;  // last: its callback uses the above

  explicit Impl(PoolOptions o) : options(std::move(o)), context(1) {
    if (!options.log) options.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    std::vector<std::pair<protocol::PeerSpec, discovery::Service>> peers;
    for (const std::string& p : options.peers) {
      protocol::PeerSpec spec = protocol::parse_peer_spec(p, options.trust.get());
      discovery::Service service = discovery::static_peer(spec.address);
      peers.emplace_back(std::move(spec), std::move(service));
    }
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) throw std::runtime_error("coordinator: eventfd failed");
    for (const auto& [spec, service] : peers) add_static(spec, service);
    thread = std::thread([this] { loop(); });
    if (options.mdns)
      browser = std::make_unique<discovery::Browser>(
          [this](const discovery::Event& e) {
            {
              std::lock_guard lock(inbox_mutex);
              events.push_back(e);
            }
            wake();
          },
          // Said whatever options.log does: without a daemon only static peers work.
          [](const std::string& line) { std::fprintf(stderr, "huddle: %s\n", line.c_str()); });
  }

  ~Impl() {
    browser.reset();
    stopping = true;
    wake();
    thread.join();
    close(wake_fd);
  }

  void wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd, &one, sizeof one);
  }

  void log(const std::string& line) { options.log("coordinator: " + line); }

  // ---- membership ----

  // Whether the pool may talk to `n`: always with --insecure; else when its
  // key is this device's own or paired as a node.
  bool trusted(const Node& n) const {
    return !options.trust || options.trust->trusts(n.server_key, protocol::PeerRole::node);
  }

  void connect(Node& n) {
    n.dealer = std::make_unique<zmq::socket_t>(context, zmq::socket_type::dealer);
    if (options.trust) protocol::make_curve_client(*n.dealer, options.trust->keys(), n.server_key);
    protocol::configure_socket(*n.dealer, static_cast<int64_t>(options.max_message_bytes));
    // Queue nothing for a peer that is not connected: a send fails at once
    // (EAGAIN) instead of waiting in a pipe for a node that may never return.
    n.dealer->set(zmq::sockopt::immediate, 1);
    n.dealer->set(zmq::sockopt::reconnect_ivl, 200);
    n.dealer->set(zmq::sockopt::reconnect_ivl_max, 500);
    const std::string monitor_endpoint = "inproc://huddle-pool-monitor-" + std::to_string(++monitors);
    if (zmq_socket_monitor(n.dealer->handle(), monitor_endpoint.c_str(),
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0)
      throw zmq::error_t();
    n.monitor = std::make_unique<zmq::socket_t>(context, zmq::socket_type::pair);
    n.monitor->set(zmq::sockopt::linger, 0);
    n.monitor->connect(monitor_endpoint);
    n.dealer->connect(n.endpoint);
    n.state = NodeState::connecting;
    n.connected = false;
    n.status_id = 0;
    n.last_heard = n.connecting_since = Clock::now();
  }

  void disconnect(Node& n, const std::string& why) {
    fail_node(n, Outcome::node_lost, why);
    n.monitor.reset();
    n.dealer.reset();
    n.connected = false;
  }

  // A node the pool may not talk to: listed, never connected to.
  void set_untrusted(Node& n, NodeState state, const std::string& why) {
    if (n.dealer) disconnect(n, "node " + n.key + ": " + why);
    n.state = state;
    n.connected = false;
    dirty = true;
    log("node " + n.key + (n.task.empty() ? "" : " (" + n.task + ")") + " not used: " + why);
  }

  std::string not_paired(const Node& n) const {
    return n.device_id.empty() ? std::string("its key is not paired")
                               : "device " + n.device_id + " is not paired with this coordinator ('huddle pair " +
                                     n.device_id + "')";
  }

  void add_static(const protocol::PeerSpec& spec, const discovery::Service& s) {
    auto n = std::make_unique<Node>();
    n->key = "peer " + s.host + ":" + std::to_string(s.port);
    n->endpoint = s.endpoint();
    n->static_peer = true;
    Node& node = *n;
    nodes[n->key] = std::move(n);
    if (options.trust) {
      // Without a key or id the peer must be this device (same state directory).
      node.server_key = spec.id.empty() ? options.trust->keys().public_key : spec.key;
      node.device_id = spec.id.empty() ? options.trust->device_id() : spec.id;
      if (node.server_key.empty() || !trusted(node)) return set_untrusted(node, NodeState::unpaired, not_paired(node));
    }
    connect(node);
  }

  // The paired file changed: drop the nodes no longer paired, take up those
  // paired now.
  void on_trust_changed() {
    for (auto& [key, n] : nodes) {
      // A peer given by a device id not paired when the pool started has no key yet.
      if (n->server_key.empty() && !n->device_id.empty())
        if (const auto d = options.trust->paired().find_by_id(n->device_id)) n->server_key = d->public_key;
      if (n->server_key.empty()) continue;
      const bool ok = trusted(*n);
      if (!ok && n->state != NodeState::unpaired) {
        set_untrusted(*n, NodeState::unpaired, "unpaired");
      } else if (ok && n->state == NodeState::unpaired) {
        log("node " + n->key + " paired: connecting");
        connect(*n);
        dirty = true;
      }
    }
  }

  void on_event(const discovery::Event& e) {
    const discovery::Service& s = e.service;
    // One device may run several nodes (one per task) under one id. With
    // security the id is the one of the announced key, whatever the TXT id
    // says: a node announcing another's id is another node.
    std::string key = s.id.empty() ? "instance " + s.instance : s.id + "/" + s.task;
    std::string device;
    if (options.trust && !s.ck.empty()) {
      try {
        device = protocol::device_id(s.ck);
      } catch (const protocol::IdentityError&) {
        if (e.kind == discovery::EventKind::join)
          log("service '" + s.instance + "' at " + s.endpoint() + " announces a malformed key: ignored");
        return;
      }
      // Several nodes of one device (one state directory) and task are told
      // apart by their --node-id.
      key = s.id.empty() || s.id == device ? device + "/" + s.task : device + "/" + s.id + "/" + s.task;
    }
    // A node given as --peer that announces itself too is one node.
    if (e.kind == discovery::EventKind::join && !nodes.count(key))
      for (auto& [k, n] : nodes)
        if (n->static_peer && n->endpoint == s.endpoint()) aliases[key] = k;
    if (auto alias = aliases.find(key); alias != aliases.end()) {
      key = alias->second;
      if (e.kind == discovery::EventKind::leave) aliases.erase(alias);
    }
    auto it = nodes.find(key);
    dirty = true;
    if (e.kind == discovery::EventKind::leave) {
      if (it == nodes.end()) return;
      Node& n = *it->second;
      n.mdns = false;
      // A node that still answers stays while it does: mDNS loses services
      // that are alive (a daemon restarted on either side re-learns them
      // only as their answers come in). A stopping node says so in its
      // status; a dead one goes silent or closes its connection.
      if (n.static_peer || (n.in_rotation() && Clock::now() - n.last_heard < 2 * options.status_interval)) {
        log("node " + n.key + " (" + n.task + ") withdrawn from mDNS; kept while it answers");
        return;
      }
      log("node " + n.key + " (" + n.task + ") withdrawn from mDNS");
      disconnect(n, "node " + n.key + " withdrawn from mDNS");
      nodes.erase(it);
      return;
    }
    if (it == nodes.end()) {
      auto n = std::make_unique<Node>();
      n->key = key;
      n->id = s.id;
      n->task = s.task;
      n->model = s.model;
      n->endpoint = s.endpoint();
      n->mdns = true;
      n->server_key = s.ck;
      n->device_id = device;
      log("node " + key + " (" + s.task + ") found at " + n->endpoint);
      Node& node = *n;
      nodes[key] = std::move(n);
      if (options.trust && s.ck.empty())
        return set_untrusted(node, NodeState::insecure, "it announces no key (an --insecure node)");
      if (!trusted(node)) return set_untrusted(node, NodeState::unpaired, not_paired(node));
      connect(node);
      return;
    }
    Node& n = *it->second;
    n.mdns = true;
    if (!s.task.empty()) n.task = s.task;
    if (!s.model.empty()) n.model = s.model;
    if (n.endpoint != s.endpoint()) {
      log("node " + key + " moved from " + n.endpoint + " to " + s.endpoint());
      n.endpoint = s.endpoint();
      if (!n.dealer) return;  // not trusted: nothing to move
      disconnect(n, "node " + key + " moved to " + s.endpoint());
      connect(n);
    } else if (n.state != NodeState::ready && n.connected) {
      send_status(n, Clock::now());  // its TXT state changed: ask now, not at the next tick
    }
  }

  void set_lost(Node& n, const std::string& why) {
    if (n.state == NodeState::lost) return;
    log("node " + n.key + " (" + n.task + ") out of rotation: " + why);
    n.state = NodeState::lost;
    dirty = true;
    fail_node(n, Outcome::node_lost, "node " + n.key + " lost: " + why);
  }

  // Nodes neither mDNS nor the command line lists any more, once lost.
  void forget_unlisted() {
    for (auto it = nodes.begin(); it != nodes.end();) {
      Node& n = *it->second;
      if (!n.mdns && !n.static_peer && n.state == NodeState::lost) {
        log("node " + n.key + " (" + n.task + ") forgotten: lost and no longer announced");
        disconnect(n, "node " + n.key + " forgotten");
        it = nodes.erase(it);
        dirty = true;
      } else {
        ++it;
      }
    }
  }

  void send_status(Node& n, Clock::time_point now) {
    capnp::MallocMessageBuilder m;
    const uint64_t id = ++last_request_id;
    schema::Request::Builder r = protocol::init_request(m, id, static_cast<uint32_t>(options.lost_after.count()));
    r.getBody().setStatus();
    const kj::Array<capnp::word> words = protocol::frame_of(m);
    const kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
    if (n.dealer->send(zmq::const_buffer(bytes.begin(), bytes.size()), zmq::send_flags::dontwait)) {
      n.status_id = id;
      n.status_sent = now;
    }
  }

  void on_status(Node& n, schema::NodeStatus::Reader s, Clock::time_point now) {
    n.status_id = 0;
    n.status_ms = ms_between(n.status_sent, now);
    const std::string id(s.getNodeId().cStr(), s.getNodeId().size());
    const std::string task(s.getTask().cStr(), s.getTask().size());
    if (!id.empty()) n.id = id;
    if (!task.empty()) n.task = task;
    n.model = std::string(s.getModel().cStr(), s.getModel().size());
    n.node_in_flight = s.getInFlight();
    n.max_in_flight = std::max<uint32_t>(1, s.getMaxInFlight());
    NodeState state = NodeState::warming;
    switch (s.getState()) {
      case schema::NodeState::READY:
        state = NodeState::ready;
        break;
      case schema::NodeState::STOPPING:
        state = NodeState::stopping;
        break;
      default:
        break;
    }
    if (state != n.state) {
      if (state == NodeState::ready)
        log("node " + n.key + " (" + n.task + ") in rotation at " + n.endpoint +
            (n.key != n.id && !n.id.empty() ? " (id " + n.id + ")" : ""));
      n.state = state;
      dirty = true;
    }
  }

  // ---- requests ----

  bool send_run(Node& n, FrameState& f, size_t slot, const std::vector<Box>* regions, Clock::time_point now) {
    if (!n.dealer) return false;
    capnp::MallocMessageBuilder m;
    const uint64_t id = ++last_request_id;
    const auto left = std::chrono::duration_cast<milliseconds>(f.deadline - now).count();
    schema::Request::Builder r = protocol::init_request(m, id, static_cast<uint32_t>(std::max<int64_t>(1, left)));
    schema::RunRequest::Builder run = r.getBody().initRun();
    run.setTask(n.task);
    schema::TaskOptions::Builder o = run.initOptions();
    o.setTopK(static_cast<uint16_t>(std::min<uint32_t>(f.frame.top_k, 65535)));
    o.setColours(static_cast<uint8_t>(std::min<uint32_t>(f.frame.colours, 255)));
    o.setMinScore(f.frame.min_score);
    o.setMaxObjects(static_cast<uint16_t>(std::min<uint32_t>(f.frame.max_objects, 65535)));
    if (regions) {
      auto list = run.initRegions(static_cast<unsigned>(regions->size()));
      for (size_t i = 0; i < regions->size(); ++i) {
        list[i].setX0((*regions)[i].x0);
        list[i].setY0((*regions)[i].y0);
        list[i].setX1((*regions)[i].x1);
        list[i].setY1((*regions)[i].y1);
      }
    }
    run.getImage().setEncoded();
    const kj::Array<capnp::word> words = protocol::frame_of(m);
    const kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
    if (!n.dealer->send(zmq::const_buffer(bytes.begin(), bytes.size()),
                        zmq::send_flags::dontwait | zmq::send_flags::sndmore))
      return false;  // not connected (ZMQ_IMMEDIATE)
    // The image: the caller's bytes, kept alive by a reference the message
    // holds until libzmq has sent it; never copied.
    auto* keep = new std::shared_ptr<const std::string>(f.frame.image);
    zmq::message_t image(
        const_cast<char*>((*keep)->data()), (*keep)->size(),
        [](void*, void* hint) { delete static_cast<std::shared_ptr<const std::string>*>(hint); }, keep);
    n.dealer->send(image, zmq::send_flags::dontwait);
    pending[id] = Pending{f.id, regions ? kRegions : slot, n.key, now};
    ++n.in_flight;
    n.last_used = now;
    dirty = true;
    return true;
  }

  // The nodes that may take a request for `task`, best first: in rotation,
  // not yet tried for this slot, with room (by their last status), least
  // loaded, least recently used.
  std::vector<Node*> candidates(const std::string& task, const std::set<std::string>& tried) {
    std::vector<Node*> out;
    for (auto& [key, n] : nodes)
      if (n->task == task && n->in_rotation() && !tried.count(key)) out.push_back(n.get());
    std::stable_sort(out.begin(), out.end(), [](const Node* a, const Node* b) {
      const bool full_a = a->in_flight >= a->max_in_flight, full_b = b->in_flight >= b->max_in_flight;
      if (full_a != full_b) return !full_a;
      if (a->in_flight != b->in_flight) return a->in_flight < b->in_flight;
      return a->last_used < b->last_used;
    });
    return out;
  }

  std::string node_name(const Node& n) const { return n.id.empty() ? n.key : n.id; }

  // Sends slot `s` of `f` to its node(s); resolves it when nobody can take it.
  void dispatch(FrameState& f, size_t s, Clock::time_point now) {
    Slot& slot = f.slots[s];
    TaskReport& report = slot.answers.report;
    const bool all = f.frame.ensemble && report.attempts == 0;
    for (Node* n : candidates(report.task, slot.tried)) {
      slot.tried.insert(n->key);
      if (!send_run(*n, f, s, nullptr, now)) {
        set_lost(*n, "not connected");
        continue;
      }
      ++slot.outstanding;
      ++report.attempts;
      report.node = node_name(*n);
      slot.sent = now;
      slot.node = n->key;
      if (!all) break;
    }
    if (slot.outstanding == 0) {
      if (slot.failure == Outcome::unset)
        resolve(f, s, Outcome::no_node, "no node in rotation serves '" + report.task + "'");
      else
        resolve(f, s, slot.failure, slot.failure_message);
    }
  }

  void resolve(FrameState& f, size_t s, Outcome outcome, const std::string& message) {
    Slot& slot = f.slots[s];
    if (slot.done) return;
    slot.done = true;
    slot.answers.report.outcome = outcome;
    slot.answers.report.message = outcome == Outcome::ok ? std::string() : message;
  }

  // A request of slot `s` failed with `outcome`: retry once elsewhere if the
  // task allows it, else resolve the slot when nothing else is outstanding.
  void failed(FrameState& f, size_t s, Outcome outcome, const std::string& message, Clock::time_point now) {
    Slot& slot = f.slots[s];
    --slot.outstanding;
    if (slot.done) return;
    slot.failure = outcome;
    slot.failure_message = message;
    const bool retry = (outcome == Outcome::node_lost || outcome == Outcome::overloaded) && !f.frame.ensemble &&
                       slot.answers.report.attempts < 2 && now < f.deadline;
    if (retry) return dispatch(f, s, now);
    if (slot.outstanding > 0) return;
    if (!slot.answers.answers.empty())
      resolve(f, s, Outcome::ok, {});
    else
      resolve(f, s, outcome, message);
  }

  // Fails every request waiting on `n` (it is gone or not to be trusted).
  void fail_node(Node& n, Outcome outcome, const std::string& why) {
    const Clock::time_point now = Clock::now();
    std::vector<std::pair<uint64_t, Pending>> lost;
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->second.node == n.key) {
        lost.emplace_back(it->first, it->second);
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    n.in_flight = 0;
    n.status_id = 0;
    std::set<uint64_t> touched;
    for (auto& [id, p] : lost) {
      auto f = frames.find(p.frame);
      if (f == frames.end()) continue;
      touched.insert(p.frame);
      if (p.slot == kRegions) {
        f->second.regions_done = true;
        f->second.regions_failure = why;
      } else {
        failed(f->second, p.slot, outcome, why, now);
      }
    }
    for (uint64_t id : touched) maybe_finish(id);
  }

  void on_answer(Node& n, const protocol::Reply& reply, Clock::time_point now) {
    n.last_heard = now;
    const uint64_t id = reply.header().id;
    if (id != 0 && id == n.status_id) {
      if (reply.header().code == schema::Code::OK &&
          reply.root().getBody().which() == schema::Response::Body::STATUS)
        on_status(n, reply.root().getBody().getStatus(), now);
      else
        n.status_id = 0;
      return;
    }
    auto it = pending.find(id);
    if (it == pending.end() || it->second.node != n.key) return;  // late: its frame is fused already
    const Pending p = it->second;
    pending.erase(it);
    if (n.in_flight > 0) --n.in_flight;
    dirty = true;
    auto fit = frames.find(p.frame);
    if (fit == frames.end()) return;
    FrameState& f = fit->second;
    const schema::Response::Reader r = reply.root();
    const bool ok = reply.header().code == schema::Code::OK && r.getBody().which() == schema::Response::Body::RESULT;
    const double latency = ms_between(p.sent, now);
    if (ok) {
      ++n.answered;
      n.latency_ms = n.latency_ms == 0 ? latency : 0.8 * n.latency_ms + 0.2 * latency;
    }
    if (p.slot == kRegions) {
      f.regions_done = true;
      if (ok) {
        f.region_answer.node = node_name(n);
        read_answer(r.getBody().getResult(), f.region_answer);
        f.have_regions = f.region_answer.region_colours.size() == f.boxes.size();
      } else {
        f.regions_failure = node_name(n) + ": " + reply.header().message;
      }
      return maybe_finish(f.id);
    }
    Slot& slot = f.slots[p.slot];
    if (!ok) {
      const std::string message = node_name(n) + " answered " + protocol::code_name(reply.header().code) +
                                  (reply.header().message.empty() ? "" : ": " + reply.header().message);
      failed(f, p.slot, outcome_of(reply.header().code), message, now);
      return maybe_finish(f.id);
    }
    if (slot.done) {  // a hedged request's twin answered first
      --slot.outstanding;
      return maybe_finish(f.id);
    }
    Answer a;
    a.node = node_name(n);
    const schema::Timings::Reader t = r.getTimings();
    a.timings = {t.getDecodeUs(), t.getPreprocessUs(), t.getInferenceUs(), t.getPostprocessUs()};
    a.latency_us = us_between(p.sent, now);
    read_answer(r.getBody().getResult(), a);
    TaskReport& report = slot.answers.report;
    report.node = a.node;
    report.nodes.push_back(a.node);
    report.timings = a.timings;
    report.latency_us = a.latency_us;
    const bool first_detection = p.slot == f.detect && slot.answers.answers.empty();
    slot.answers.answers.push_back(std::move(a));
    --slot.outstanding;
    if (slot.outstanding == 0 || !f.frame.ensemble) resolve(f, p.slot, Outcome::ok, {});
    if (first_detection) ask_object_colours(f, now);
    maybe_finish(f.id);
  }

  // The colour node, asked again with the detector's boxes as regions.
  void ask_object_colours(FrameState& f, Clock::time_point now) {
    if (f.colour == SIZE_MAX || f.regions_sent) return;
    const std::vector<Detection>& objects = f.slots[f.detect].answers.answers.front().objects;
    if (objects.empty()) return;
    for (const Detection& d : objects) f.boxes.push_back(d.box);
    for (Node* n : candidates("colour", {})) {
      if (send_run(*n, f, 0, &f.boxes, now)) {
        f.regions_sent = true;
        return;
      }
      set_lost(*n, "not connected");
    }
  }

  // ---- frames ----

  void start_frame(Frame frame, std::function<void(Scene)> done) {
    const Clock::time_point now = Clock::now();
    FrameState f;
    f.id = ++last_frame_id;
    f.start = now;
    f.deadline = now + frame.deadline;
    f.done = std::move(done);
    std::vector<std::string> tasks = frame.tasks;
    if (tasks.empty()) {
      std::set<std::string> present;
      for (auto& [key, n] : nodes)
        if (n->in_rotation() && !n->task.empty()) present.insert(n->task);
      tasks.assign(present.begin(), present.end());
      std::stable_sort(tasks.begin(), tasks.end(), task_before);
    }
    for (const std::string& t : tasks) {
      Slot slot;
      slot.answers.report.task = t;
      if (t == "detect" && f.detect == SIZE_MAX) f.detect = f.slots.size();
      if (t == "colour" && f.colour == SIZE_MAX) f.colour = f.slots.size();
      f.slots.push_back(std::move(slot));
    }
    f.frame = std::move(frame);
    const uint64_t id = f.id;
    FrameState& placed = frames.emplace(id, std::move(f)).first->second;
    for (size_t s = 0; s < placed.slots.size(); ++s) dispatch(placed, s, now);
    maybe_finish(id);
  }

  void maybe_finish(uint64_t id, bool at_deadline = false) {
    auto it = frames.find(id);
    if (it == frames.end()) return;
    FrameState& f = it->second;
    if (!at_deadline) {
      for (const Slot& s : f.slots)
        if (!s.done) return;
      if (f.regions_sent && !f.regions_done) return;
    }
    const Clock::time_point now = Clock::now();
    FusionInput input;
    input.top_k = f.frame.top_k;
    input.max_objects = f.frame.max_objects;
    for (Slot& s : f.slots) {
      if (!s.done) {
        if (!s.answers.answers.empty()) {
          s.answers.report.outcome = Outcome::ok;  // an ensemble with some answers
        } else {
          s.answers.report.outcome = Outcome::timeout;
          s.answers.report.message = "no answer from " + s.answers.report.node + " within " +
                                     std::to_string(f.frame.deadline.count()) + " ms" +
                                     (s.failure != Outcome::unset ? " (after " + s.failure_message + ")" : "");
        }
      }
      input.tasks.push_back(s.answers);
    }
    if (f.have_regions) {
      input.object_boxes = f.boxes;
      input.object_colours = f.region_answer;
      input.have_object_colours = true;
    } else if (f.regions_sent && f.colour != SIZE_MAX) {
      TaskReport& r = input.tasks[f.colour].report;
      const std::string why = f.regions_done ? f.regions_failure : "no answer by the deadline";
      r.message += (r.message.empty() ? "" : "; ") + std::string("object colours: ") + why;
    }
    Scene scene = fuse(input);
    scene.elapsed_us = us_between(f.start, now);
    std::function<void(Scene)> done = std::move(f.done);
    frames.erase(it);
    if (done) done(std::move(scene));
  }

  // ---- the loop ----

  void tick(Clock::time_point now) {
    if (options.trust && now - last_reload >= kReloadInterval) {
      last_reload = now;
      std::string error;
      if (options.trust->reload(&error)) {
        if (error != reload_error && !error.empty())
          log("the paired file cannot be read, so no node is trusted until it is fixed: " + error);
        reload_error = error;
        on_trust_changed();
      }
    }
    for (auto& [key, n] : nodes) {
      if (!n->dealer) continue;
      if (n->state == NodeState::connecting) dirty = true;  // it may turn unreachable
      if (n->connected && now - n->last_heard > options.lost_after)
        set_lost(*n, "silent for " + std::to_string(static_cast<long>(ms_between(n->last_heard, now))) + " ms");
      const bool due = n->status_id == 0 ? now - n->status_sent >= options.status_interval
                                         : now - n->status_sent >= options.lost_after;
      if (n->connected && due) send_status(*n, now);
    }
    // Requests whose frames are long fused and whose node never answered:
    // stop counting them against the node.
    for (auto it = pending.begin(); it != pending.end();) {
      if (!frames.count(it->second.frame) && now - it->second.sent > options.lost_after * 2) {
        auto n = nodes.find(it->second.node);
        if (n != nodes.end() && n->second->in_flight > 0) --n->second->in_flight;
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
    forget_unlisted();
    hedge(now);
    std::vector<uint64_t> due;
    for (auto& [id, f] : frames)
      if (now >= f.deadline) due.push_back(id);
    for (uint64_t id : due) maybe_finish(id, true);
  }

  // A request that has waited far longer than its node usually takes (a
  // frozen process, a cut host: silent, not yet known lost) is sent again to
  // another node of the task while the first may still answer; the first
  // answer counts. This is the one retry a slot gets.
  void hedge(Clock::time_point now) {
    for (auto& [id, f] : frames) {
      if (f.frame.ensemble || now >= f.deadline - kHedgeMargin) continue;
      for (size_t s = 0; s < f.slots.size(); ++s) {
        Slot& slot = f.slots[s];
        if (slot.done || slot.outstanding != 1 || slot.answers.report.attempts >= 2) continue;
        auto n = nodes.find(slot.node);
        const double usual = n == nodes.end() ? 0.0 : n->second->latency_ms;
        const auto wait = std::max<milliseconds>(kHedgeMinimum, milliseconds(static_cast<long>(4 * usual)));
        if (now - slot.sent < wait || candidates(slot.answers.report.task, slot.tried).empty()) continue;
        log("frame " + std::to_string(f.id) + ": no answer from " + slot.node + " in " +
            std::to_string(static_cast<long>(ms_between(slot.sent, now))) + " ms; asking another node too");
        dispatch(f, s, now);
      }
    }
  }

  void on_monitor(Node& n) {
    while (const std::optional<protocol::MonitorEvent> e = protocol::next_monitor_event(*n.monitor)) {
      if (e->kind == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        n.connected = true;
        n.last_heard = Clock::now();
        send_status(n, n.last_heard);  // in rotation as soon as it says it is ready
        dirty = true;
      } else if (e->kind == ZMQ_EVENT_DISCONNECTED) {
        n.connected = false;
        if (n.state != NodeState::refused && n.state != NodeState::wrong_key && n.state != NodeState::mismatch)
          set_lost(n, "connection closed");
        dirty = true;
      } else {
        // A failed handshake: libzmq retries it forever, silently. Say why
        // once; the node stays out of rotation until a handshake succeeds.
        const std::optional<protocol::HandshakeResult> result = protocol::handshake_result(e->kind);
        if (!result) continue;
        const protocol::HandshakeEvent h{*result, e->value, e->endpoint};
        NodeState state = h.result == protocol::HandshakeResult::refused     ? NodeState::refused
                          : h.result == protocol::HandshakeResult::no_detail ? NodeState::wrong_key
                                                                             : NodeState::mismatch;
        std::string why = protocol::describe(h);
        if (!options.trust) {
          state = NodeState::mismatch;
          why = "handshake failed: the node uses CURVE and this coordinator runs --insecure";
        } else if (state == NodeState::wrong_key && n.static_peer && n.server_key == options.trust->keys().public_key) {
          why = "handshake failed: it is not this device's node (another state directory): give its device id, "
                "--peer ID@" + n.endpoint.substr(n.endpoint.find("://") + 3) + ", once paired";
        }
        n.connected = false;
        if (n.state != state) {
          fail_node(n, Outcome::node_lost, "node " + n.key + ": " + why);
          log("node " + n.key + " not used: " + why);
          n.state = state;
          dirty = true;
        }
      }
    }
  }

  void drain_inbox() {
    uint64_t count = 0;
    [[maybe_unused]] ssize_t r = read(wake_fd, &count, sizeof count);
    std::deque<std::pair<Frame, std::function<void(Scene)>>> frames_in;
    std::deque<discovery::Event> events_in;
    {
      std::lock_guard lock(inbox_mutex);
      frames_in.swap(submitted);
      events_in.swap(events);
    }
    for (const discovery::Event& e : events_in) on_event(e);
    for (auto& [frame, done] : frames_in) start_frame(std::move(frame), std::move(done));
  }

  void publish_view() {
    if (!dirty) return;
    dirty = false;
    std::vector<NodeView> v;
    for (auto& [key, n] : nodes) {
      NodeView nv;
      nv.id = node_name(*n);
      nv.task = n->task;
      nv.model = n->model;
      nv.endpoint = n->endpoint;
      nv.device_id = n->device_id;
      nv.state = state_name(n->state);
      // Announced but never reached: say so rather than "connecting" forever.
      if (n->state == NodeState::connecting && Clock::now() - n->connecting_since > options.lost_after)
        nv.state = "unreachable";
      nv.in_rotation = n->in_rotation();
      nv.static_peer = n->static_peer;
      nv.mdns = n->mdns;
      nv.in_flight = n->in_flight;
      nv.node_in_flight = n->node_in_flight;
      nv.max_in_flight = n->max_in_flight;
      nv.latency_ms = n->latency_ms;
      nv.status_ms = n->status_ms;
      nv.answered = n->answered;
      v.push_back(std::move(nv));
    }
    std::lock_guard lock(view_mutex);
    const bool changed = v.size() != view.size() ||
                         !std::equal(v.begin(), v.end(), view.begin(), [](const NodeView& a, const NodeView& b) {
                           return a.id == b.id && a.state == b.state && a.in_rotation == b.in_rotation;
                         });
    if (changed) last_change = Clock::now();
    view = std::move(v);
  }

  void loop() {
    std::vector<zmq::pollitem_t> items;
    std::vector<Node*> owners;
    while (!stopping) {
      items.clear();
      owners.clear();
      items.push_back({nullptr, wake_fd, ZMQ_POLLIN, 0});
      for (auto& [key, n] : nodes) {
        if (!n->dealer) continue;
        items.push_back({n->dealer->handle(), 0, ZMQ_POLLIN, 0});
        items.push_back({n->monitor->handle(), 0, ZMQ_POLLIN, 0});
        owners.push_back(n.get());
      }
      long timeout = 100;
      const Clock::time_point now = Clock::now();
      for (auto& [id, f] : frames)
        timeout = std::min<long>(timeout, std::max<long>(0, std::chrono::duration_cast<milliseconds>(
                                                                 f.deadline - now).count() + 1));
      const int rc = zmq_poll(items.data(), static_cast<int>(items.size()), timeout);
      if (rc < 0 && zmq_errno() != EINTR) {
        log(std::string("poll failed: ") + zmq_strerror(zmq_errno()));
        break;
      }
      // Sockets first (answers that arrived before a deadline count), then
      // the inbox, which may add or remove nodes.
      for (size_t i = 0; i < owners.size(); ++i) {
        Node& n = *owners[i];
        if (items[1 + 2 * i + 1].revents & ZMQ_POLLIN) on_monitor(n);
        if (items[1 + 2 * i].revents & ZMQ_POLLIN) read_answers(n);
      }
      if (items[0].revents & ZMQ_POLLIN) drain_inbox();
      tick(Clock::now());
      publish_view();
    }
    // Stopping: every frame still waiting gets its scene now.
    std::vector<uint64_t> left;
    for (auto& [id, f] : frames) left.push_back(id);
    for (uint64_t id : left) maybe_finish(id, true);
    std::deque<std::pair<Frame, std::function<void(Scene)>>> frames_in;
    {
      std::lock_guard lock(inbox_mutex);
      frames_in.swap(submitted);
    }
    for (auto& [frame, done] : frames_in) {
      Scene s;
      s.summary = "nothing recognised (the coordinator is stopping)";
      done(std::move(s));
    }
    nodes.clear();
  }

  void read_answers(Node& n) {
    for (;;) {
      if (!n.dealer) return;
      std::vector<zmq::message_t> frames_in = protocol::receive_frames(*n.dealer);
      if (frames_in.empty()) return;
      const Clock::time_point now = Clock::now();
      if (frames_in.size() != 1) {
        log("node " + n.key + " sent a message of " + std::to_string(frames_in.size()) + " frames; ignored");
        continue;
      }
      try {
        const protocol::Reply reply(std::move(frames_in.front()), options.max_message_bytes);
        if (reply.header().code == schema::Code::REFUSED && options.trust) {
          // The node no longer trusts us (unpaired on its side): close the
          // connection at once, retry what it held elsewhere, and connect
          // anew: the handshake is refused (state `refused`) until it lets
          // us in again.
          log("node " + n.key + " refused us: " + reply.header().message);
          disconnect(n, "node " + n.key + " refused us: " + reply.header().message);
          connect(n);
          n.state = NodeState::refused;
          dirty = true;
          return;
        }
        on_answer(n, reply, now);
      } catch (const std::exception& e) {
        log("node " + n.key + " sent an unreadable answer (" + e.what() + "); ignored");
      } catch (const kj::Exception& e) {
        log("node " + n.key + " sent an unreadable answer (" + std::string(e.getDescription().cStr()) + "); ignored");
      }
    }
  }
};

Pool::Pool(PoolOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Pool::~Pool() = default;

void Pool::submit(const Frame& frame, std::function<void(Scene)> done) {
  {
    std::lock_guard lock(impl_->inbox_mutex);
    impl_->submitted.emplace_back(frame, std::move(done));
  }
  impl_->wake();
}

Scene Pool::recognize(const Frame& frame) {
  auto promise = std::make_shared<std::promise<Scene>>();
  std::future<Scene> result = promise->get_future();
  submit(frame, [promise](Scene s) { promise->set_value(std::move(s)); });
  return result.get();
}

std::vector<NodeView> Pool::nodes() const {
  std::lock_guard lock(impl_->view_mutex);
  return impl_->view;
}

bool Pool::wait_ready(const std::vector<std::string>& tasks, milliseconds limit, milliseconds settle) {
  constexpr milliseconds kBrowseTime(1000);
  const Clock::time_point start = Clock::now(), until = start + limit;
  for (;;) {
    std::vector<NodeView> v;
    Clock::time_point changed;
    {
      std::lock_guard lock(impl_->view_mutex);
      v = impl_->view;
      changed = impl_->last_change;
    }
    bool have = true;
    if (tasks.empty())
      have = std::any_of(v.begin(), v.end(), [](const NodeView& n) { return n.in_rotation; });
    for (const std::string& t : tasks)
      have = have && std::any_of(v.begin(), v.end(),
                                 [&](const NodeView& n) { return n.in_rotation && n.task == t; });
    const bool unsettled = std::any_of(v.begin(), v.end(), [](const NodeView& n) {
      return n.state == std::string("connecting") || n.state == std::string("warming");
    });
    const Clock::time_point now = Clock::now();
    // Browsing, a node's answers may come up to about a second after the
    // query: without named tasks, give the pool that long to show itself.
    const bool browsed = !impl_->options.mdns || now - start >= std::min(limit, kBrowseTime);
    if (have && (!tasks.empty() || (!unsettled && browsed && now - changed >= settle))) return true;
    if (now >= until) return have;
    std::this_thread::sleep_for(milliseconds(20));
  }
}

}  // namespace huddle::coordinator
