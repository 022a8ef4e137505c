// Load generator for `bench/run pool`: a coordinator::Pool of static peers
// (no mDNS), driven as `huddle recognize` drives it, timed from the caller's
// side. Wall clock (steady_clock). With --mdns the pool also browses mDNS.
// Secure by default, as `huddle recognize`: CURVE with the keys of
// --state-dir (the nodes started with the same state directory are this
// device's: no pairing needed); --insecure: plain TCP (loopback or a test
// namespace only).
// Every mode waits until --expect nodes (default: one per --peer) are in
// rotation, sends --warmup frames untimed, then:
//
//   frames      one frame at a time; one JSON line per frame: e2e_us (the
//               caller's Pool::recognize, submit to fused scene), elapsed_us
//               (the pool's own start-to-fusion), complete, per task its node,
//               outcome, attempts, latency_us (the pool's send to answer) and
//               node_us (the node's decode + preprocess + inference +
//               postprocess), the scene's labels (top, and scores by name) and
//               objects. The images:
//               --image FILE (--frames N times) or --list FILE (lines "PATH
//               LABEL", each once; the label is echoed).
//   throughput  --in-flight K frames outstanding for --seconds S; one JSON
//               line: frames per second, complete frames, frames per node,
//               and this process's CPU time per frame (the coordinator's cost).
//   ready       only the time from the pool's start to --expect nodes in
//               rotation (connection, CURVE handshake, first status answer):
//               one JSON line, ready_ms (before the warm-up frames).
//   join        frames one at a time through the pool of --peer and
//               --new-peer (not listening yet; or, with --mdns, the node
//               announced as --new-id); after --spawn-after-ms
//               (default 2000: libzmq's reconnect interval has grown to its
//               1 s maximum) spawns the command after -- (the new node) and
//               reports, from the spawn: its endpoint line
//               on stdout, the new peer in rotation (Pool::nodes), and the
//               first scene it answered in (its --new-id); then SIGTERMs it.
//   leave       frames one at a time; after the warm-up sends --signal SIG to
//               --pid PID (or runs --run CMD with the shell) and reports the
//               time until the node --victim ID is out of rotation
//               (Pool::nodes, polled every 0.2 ms), and the frames started
//               around it (until 1 s after the removal) that were incomplete
//               or retried, and the slowest of them.
//
// usage: pool-load MODE (--peer HOST:PORT... | --mdns) --tasks T,... [--image FILE | --list FILE]
//                  [--expect N] [--state-dir DIR] [--insecure]
//                  [--frames N] [--warmup N] [--deadline-ms N] [--top-k K] [--min-score S]
//                  [--ensemble] [--in-flight K] [--seconds S]
//                  [--new-peer HOST:PORT --new-id ID [--spawn-after-ms N] -- CMD...]
//                  [--victim ID (--pid PID --signal KILL|STOP | --run CMD)]
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/pool.h"
#include "protocol/socket.h"

extern char** environ;

namespace {

using namespace huddle;
using coordinator::json_string;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// This process's CPU time (every thread: the pool's and the caller's), ms.
double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

struct Options {
  std::string mode;
  std::vector<std::string> peers, tasks, command;
  std::string image, list, new_peer, new_id, victim, run, signal = "KILL";
  long frames = 200, warmup = 20, deadline_ms = 2000, top_k = 5, in_flight = 2, pid = 0,
       spawn_after_ms = 2000;
  double seconds = 5, min_score = 0;
  long expect = -1;  // default: one per --peer
  bool ensemble = false, mdns = false;
  protocol::SecurityArgs security;
};

struct Input {
  std::shared_ptr<const std::string> bytes;
  std::string path, label;
};

// One frame's line (mode frames): its times and what each task said.
std::string frame_line(const coordinator::Scene& s, double e2e_ms, const Input& in) {
  std::string out = "{\"e2e_us\": " + std::to_string(static_cast<long>(e2e_ms * 1000)) +
                    ", \"elapsed_us\": " + std::to_string(s.elapsed_us) +
                    ", \"complete\": " + (s.complete() ? "true" : "false");
  if (!in.label.empty())
    out += ", \"image\": " + json_string(in.path) + ", \"label\": " + json_string(in.label);
  out += ", \"tasks\": [";
  for (size_t i = 0; i < s.tasks.size(); ++i) {
    const coordinator::TaskReport& t = s.tasks[i];
    out += std::string(i ? ", " : "") + "{\"task\": " + json_string(t.task) + ", \"outcome\": \"" +
           coordinator::outcome_name(t.outcome) + "\", \"node\": " + json_string(t.node) +
           ", \"nodes\": " + std::to_string(t.nodes.size()) +
           ", \"attempts\": " + std::to_string(t.attempts) +
           ", \"latency_us\": " + std::to_string(t.latency_us) +
           ", \"node_us\": " + std::to_string(t.timings.total_us()) + "}";
  }
  out += "], \"top\": ";
  out += s.labels.empty() ? std::string("null") : json_string(s.labels.front().name);
  out += ", \"scores\": {";
  for (size_t i = 0; i < s.labels.size(); ++i) {
    char score[32];
    std::snprintf(score, sizeof score, ": %.6f", s.labels[i].score);
    out += std::string(i ? ", " : "") + json_string(s.labels[i].name) + score;
  }
  out += "}";
  out += ", \"objects\": [";
  for (size_t i = 0; i < s.objects.size(); ++i) {
    const coordinator::SceneObject& o = s.objects[i];
    char box[160];
    std::snprintf(box, sizeof box, "[%.1f, %.1f, %.1f, %.1f], \"score\": %.4f", o.box.x0, o.box.y0, o.box.x1,
                  o.box.y1, o.score);
    out += std::string(i ? ", " : "") + "{\"name\": " + json_string(o.name) + ", \"box\": " + box + "}";
  }
  return out + "]}";
}

class Driver {
 public:
  Driver(const Options& o, std::vector<Input> inputs, std::shared_ptr<protocol::Trust> trust)
      : o_(o), inputs_(std::move(inputs)) {
    coordinator::PoolOptions po;
    po.mdns = o.mdns;
    po.trust = std::move(trust);
    po.peers = o.peers;
    if (!o.new_peer.empty()) po.peers.push_back(o.new_peer);
    po.log = [this](const std::string& line) {
      std::lock_guard lock(log_mutex_);
      log_.push_back(std::to_string(ms_since(born_, Clock::now())) + " ms " + line);
    };
    pool_ = std::make_unique<coordinator::Pool>(std::move(po));
  }

  coordinator::Pool& pool() { return *pool_; }

  coordinator::Frame frame(size_t i) const {
    coordinator::Frame f;
    f.image = inputs_[i % inputs_.size()].bytes;
    f.tasks = o_.tasks;
    f.top_k = static_cast<uint32_t>(o_.top_k);
    f.min_score = static_cast<float>(o_.min_score);
    f.ensemble = o_.ensemble;
    f.deadline = std::chrono::milliseconds(o_.deadline_ms);
    return f;
  }

  // One frame, waited for; returns the scene and its end-to-end ms.
  std::pair<coordinator::Scene, double> one(size_t i) {
    const coordinator::Frame f = frame(i);
    const Clock::time_point t0 = Clock::now();
    coordinator::Scene s = pool_->recognize(f);
    return {std::move(s), ms_since(t0, Clock::now())};
  }

  // --expect nodes in rotation (30 s at most), then the warm-up frames.
  bool ready() {
    const Clock::time_point limit = Clock::now() + std::chrono::seconds(30);
    for (;;) {
      const std::vector<coordinator::NodeView> v = pool_->nodes();
      if (static_cast<size_t>(std::count_if(v.begin(), v.end(), [](const coordinator::NodeView& n) {
            return n.in_rotation;
          })) >= static_cast<size_t>(o_.expect))
        break;
      if (Clock::now() > limit) {
        std::fprintf(stderr, "pool-load: not %ld nodes in rotation within 30 s\n", o_.expect);
        print_log();
        return false;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    ready_ms_ = ms_since(born_, Clock::now());
    for (long i = 0; i < o_.warmup; ++i) one(static_cast<size_t>(i));
    return true;
  }

  bool in_rotation(const std::string& id) const {
    for (const coordinator::NodeView& n : pool_->nodes())
      if (n.id == id && n.in_rotation) return true;
    return false;
  }

  size_t inputs() const { return inputs_.size(); }
  double ready_ms() const { return ready_ms_; }
  const Input& input(size_t i) const { return inputs_[i % inputs_.size()]; }

  void print_log() {
    std::lock_guard lock(log_mutex_);
    for (const std::string& l : log_) std::fprintf(stderr, "pool-load: %s\n", l.c_str());
  }

 private:
  const Options& o_;
  std::vector<Input> inputs_;
  Clock::time_point born_ = Clock::now();
  double ready_ms_ = -1;
  std::mutex log_mutex_;
  std::vector<std::string> log_;
  std::unique_ptr<coordinator::Pool> pool_;
};

int run_frames(Driver& d, const Options& o) {
  const size_t n = o.list.empty() ? static_cast<size_t>(o.frames) : d.inputs();
  for (size_t i = 0; i < n; ++i) {
    auto [scene, ms] = d.one(i);
    std::printf("%s\n", frame_line(scene, ms, d.input(i)).c_str());
  }
  return 0;
}

int run_throughput(Driver& d, const Options& o) {
  std::mutex m;
  std::condition_variable cv;
  std::deque<coordinator::Scene> done;
  size_t next = 0, outstanding = 0;
  const auto submit = [&] {
    d.pool().submit(d.frame(next++), [&](coordinator::Scene s) {
      std::lock_guard lock(m);
      done.push_back(std::move(s));
      cv.notify_one();
    });
    ++outstanding;
  };
  long complete = 0, total = 0;
  std::map<std::string, long> per_node;
  const double cpu_start = process_cpu_ms();
  const Clock::time_point start = Clock::now();
  const Clock::time_point until =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  for (long k = 0; k < o.in_flight; ++k) submit();
  Clock::time_point last = start;
  while (outstanding > 0) {
    coordinator::Scene s;
    {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return !done.empty(); });
      s = std::move(done.front());
      done.pop_front();
    }
    --outstanding;
    const Clock::time_point now = Clock::now();
    if (now <= until) {
      last = now;
      ++total;
      if (s.complete()) ++complete;
      for (const coordinator::TaskReport& t : s.tasks) ++per_node[t.node];
      submit();
    }
  }
  const double seconds = ms_since(start, last) / 1000;
  std::string nodes;
  for (const auto& [node, count] : per_node)
    nodes += (nodes.empty() ? "" : ", ") + json_string(node) + ": " + std::to_string(count);
  std::printf(
      "{\"frames\": %ld, \"complete\": %ld, \"seconds\": %.3f, \"fps\": %.2f, \"in_flight\": %ld, "
      "\"cpu_us_per_frame\": %.1f, \"ready_ms\": %.2f, \"per_node\": {%s}}\n",
      total, complete, seconds, static_cast<double>(complete) / seconds, o.in_flight,
      1000 * (process_cpu_ms() - cpu_start) / static_cast<double>(std::max(1L, total)), d.ready_ms(),
      nodes.c_str());
  return complete > 0 ? 0 : 1;
}

// Frames one at a time on a thread of their own until `stop`; each scene's
// start and end, and whether it was complete and who answered, kept.
struct Flow {
  struct Record {
    Clock::time_point start, end;
    bool complete;
    uint32_t attempts;
    std::string nodes;
  };
  std::atomic<bool> stop{false};
  std::mutex m;
  std::vector<Record> records;
  std::thread thread;

  explicit Flow(Driver& d) {
    thread = std::thread([this, &d] {
      for (size_t i = 0; !stop; ++i) {
        const coordinator::Frame f = d.frame(i);
        const Clock::time_point t0 = Clock::now();
        const coordinator::Scene s = d.pool().recognize(f);
        Record r{t0, Clock::now(), s.complete(), 0, {}};
        for (const coordinator::TaskReport& t : s.tasks) {
          r.attempts = std::max(r.attempts, t.attempts);
          r.nodes += t.node + " ";
        }
        std::lock_guard lock(m);
        records.push_back(std::move(r));
      }
    });
  }
  ~Flow() {
    stop = true;
    thread.join();
  }
  std::vector<Record> snapshot() {
    std::lock_guard lock(m);
    return records;
  }
};

int run_join(Driver& d, const Options& o) {
  Flow flow(d);
  std::this_thread::sleep_for(std::chrono::milliseconds(o.spawn_after_ms));
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return 1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  std::vector<char*> argv;
  for (const std::string& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const Clock::time_point spawned = Clock::now();
  if (posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ) != 0) {
    std::fprintf(stderr, "pool-load: could not start %s\n", argv[0]);
    return 1;
  }
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  // The endpoint line, then whatever else it prints, read to the end.
  std::atomic<double> endpoint_ms{-1};
  std::thread reader([&] {
    char buf[4096];
    for (;;) {
      const ssize_t k = read(out[0], buf, sizeof buf);
      if (k <= 0) break;
      if (endpoint_ms < 0 && std::find(buf, buf + k, '\n') != buf + k)
        endpoint_ms = ms_since(spawned, Clock::now());
    }
    close(out[0]);
  });
  double rotation_ms = -1, first_ms = -1;
  const Clock::time_point limit = spawned + std::chrono::seconds(30);
  while (Clock::now() < limit && first_ms < 0) {
    if (rotation_ms < 0 && d.in_rotation(o.new_id)) rotation_ms = ms_since(spawned, Clock::now());
    for (const Flow::Record& r : flow.snapshot())
      if (r.end > spawned && r.nodes.find(o.new_id + " ") != std::string::npos) {
        first_ms = ms_since(spawned, r.end);
        break;
      }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  flow.stop = true;
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  reader.join();
  std::printf("{\"endpoint_ms\": %.1f, \"rotation_ms\": %.1f, \"first_frame_ms\": %.1f}\n",
              endpoint_ms.load(), rotation_ms, first_ms);
  if (first_ms < 0) d.print_log();
  return first_ms < 0 ? 1 : 0;
}

int run_leave(Driver& d, const Options& o) {
  if (!d.in_rotation(o.victim)) {
    std::fprintf(stderr, "pool-load: %s is not in rotation\n", o.victim.c_str());
    d.print_log();
    return 1;
  }
  Flow flow(d);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const Clock::time_point t0 = Clock::now();
  if (o.run.empty()) {
    kill(static_cast<pid_t>(o.pid), o.signal == "STOP" ? SIGSTOP : SIGKILL);
  } else if (std::system(o.run.c_str()) != 0) {
    std::fprintf(stderr, "pool-load: '%s' failed\n", o.run.c_str());
    return 1;
  }
  const double action_ms = ms_since(t0, Clock::now());
  double removed_ms = -1;
  while (ms_since(t0, Clock::now()) < 15000) {
    if (!d.in_rotation(o.victim)) {
      removed_ms = ms_since(t0, Clock::now());
      break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  flow.stop = true;
  long around = 0, incomplete = 0, retried = 0;
  double slowest = 0;
  const Clock::time_point end =
      t0 + std::chrono::milliseconds(static_cast<long>(std::max(0.0, removed_ms)) + 1000);
  for (const Flow::Record& r : flow.snapshot()) {
    if (r.end < t0 || r.start > end) continue;
    ++around;
    slowest = std::max(slowest, ms_since(r.start, r.end));
    if (!r.complete) ++incomplete;
    if (r.attempts > 1) ++retried;
  }
  std::printf(
      "{\"removed_ms\": %.1f, \"action_ms\": %.1f, \"frames\": %ld, \"incomplete\": %ld, \"retried\": %ld, "
      "\"slowest_ms\": %.1f}\n",
      removed_ms, action_ms, around, incomplete, retried, slowest);
  if (removed_ms < 0) d.print_log();
  return removed_ms < 0 ? 1 : 0;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

int usage() {
  std::fputs(
      "usage: pool-load frames|throughput|join|leave|ready (--peer HOST:PORT... | --mdns) --tasks T,...\n"
      "       (--image FILE | --list FILE) [--expect N] [--state-dir DIR] [--insecure]\n"
      "       [--frames N] [--warmup N] [--deadline-ms N] [--top-k K] [--min-score S] [--ensemble]\n"
      "       [--in-flight K] [--seconds S] [--new-peer HOST:PORT --new-id ID [--spawn-after-ms N] -- "
      "CMD...]\n"
      "       [--victim ID (--pid PID [--signal KILL|STOP] | --run CMD)]\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  huddle::protocol::keep_freed_memory();
  Options o;
  // The options that take a value, and where each goes.
  const std::map<std::string, std::function<void(const char*)>> setters = {
      {"--peer", [&](const char* v) { o.peers.push_back(v); }},
      {"--tasks", [&](const char* v) { o.tasks = split(v); }},
      {"--image", [&](const char* v) { o.image = v; }},
      {"--list", [&](const char* v) { o.list = v; }},
      {"--frames", [&](const char* v) { o.frames = std::atol(v); }},
      {"--warmup", [&](const char* v) { o.warmup = std::atol(v); }},
      {"--deadline-ms", [&](const char* v) { o.deadline_ms = std::atol(v); }},
      {"--top-k", [&](const char* v) { o.top_k = std::atol(v); }},
      {"--min-score", [&](const char* v) { o.min_score = std::atof(v); }},
      {"--in-flight", [&](const char* v) { o.in_flight = std::atol(v); }},
      {"--seconds", [&](const char* v) { o.seconds = std::atof(v); }},
      {"--new-peer", [&](const char* v) { o.new_peer = v; }},
      {"--expect", [&](const char* v) { o.expect = std::atol(v); }},
      {"--new-id", [&](const char* v) { o.new_id = v; }},
      {"--spawn-after-ms", [&](const char* v) { o.spawn_after_ms = std::atol(v); }},
      {"--victim", [&](const char* v) { o.victim = v; }},
      {"--pid", [&](const char* v) { o.pid = std::atol(v); }},
      {"--signal", [&](const char* v) { o.signal = v; }},
      {"--run", [&](const char* v) { o.run = v; }},
  };
  if (argc < 2) return usage();
  o.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--ensemble" || arg == "--mdns") {
      (arg == "--mdns" ? o.mdns : o.ensemble) = true;
      continue;
    }
    const int security = protocol::parse_security_arg("pool-load", argc, argv, &i, &o.security);
    if (security < 0) return 2;
    if (security > 0) continue;
    if (arg == "--") {
      o.command.assign(argv + i + 1, argv + argc);
      break;
    }
    const char* v = i + 1 < argc ? argv[++i] : nullptr;
    if (!v) return usage();
    const auto setter = setters.find(arg);
    if (setter == setters.end()) return usage();
    setter->second(v);
  }
  const bool modes = o.mode == "frames" || o.mode == "throughput" || o.mode == "join" || o.mode == "leave" ||
                     o.mode == "ready";
  if (o.expect < 0) o.expect = static_cast<long>(o.peers.size());
  if (!modes || (o.peers.empty() && !o.mdns) || o.tasks.empty() || o.image.empty() == o.list.empty() ||
      o.frames < 1 || o.in_flight < 1 ||
      (o.mode == "join" && ((o.new_peer.empty() && !o.mdns) || o.new_id.empty() || o.command.empty())) ||
      (o.mode == "leave" && (o.victim.empty() || (o.pid <= 0) == o.run.empty())))
    return usage();
  signal(SIGPIPE, SIG_IGN);

  std::vector<Input> inputs;
  if (!o.image.empty()) {
    Input in;
    std::string bytes;
    if (!read_file(o.image, &bytes)) {
      std::fprintf(stderr, "pool-load: cannot read %s\n", o.image.c_str());
      return 1;
    }
    in.bytes = std::make_shared<const std::string>(std::move(bytes));
    in.path = o.image;
    inputs.push_back(std::move(in));
  } else {
    std::ifstream list(o.list);
    for (std::string path, label; list >> path >> label;) {
      std::string bytes;
      if (!read_file(path, &bytes)) {
        std::fprintf(stderr, "pool-load: cannot read %s\n", path.c_str());
        return 1;
      }
      inputs.push_back({std::make_shared<const std::string>(std::move(bytes)), path, label});
    }
    if (inputs.empty()) {
      std::fprintf(stderr, "pool-load: no images in %s\n", o.list.c_str());
      return 1;
    }
  }
  std::shared_ptr<protocol::Trust> trust;
  try {
    trust = protocol::open_trust("pool-load", o.security);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pool-load: %s\n", e.what());
    return 1;
  }
  Driver d(o, std::move(inputs), std::move(trust));
  if (!d.ready()) return 1;
  if (o.mode == "ready") {
    std::printf("{\"ready_ms\": %.2f}\n", d.ready_ms());
    return 0;
  }
  if (o.mode == "frames") return run_frames(d, o);
  if (o.mode == "throughput") return run_throughput(d, o);
  if (o.mode == "join") return run_join(d, o);
  return run_leave(d, o);
}
