// `huddle recognize` (a coordinator for the images on its command line) and
// `huddle nodes` (the pool as this machine sees it): coordinator/pool.h.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/pool.h"
#include "coordinator/remote.h"
#include "protocol/socket.h"
#include "tools/arguments.h"
#include "tools/commands.h"
#include "tools/pool_options.h"

namespace huddle::tools {
namespace {

constexpr const char* kRecognizeHelp =
    "usage: huddle recognize [options] image...\n"
    "\n"
    "Finds the pool's nodes (mDNS, and --peer), sends each image (a PNG or JPEG\n"
    "file, as it is) to one node per task, waits up to the deadline, and prints\n"
    "the fused scene: objects with their colours, the scene's labels and colours,\n"
    "and per task who answered and how long it took, or why it is missing\n"
    "(timeout, nodeLost, overloaded, error, noNode, badInput, expired).\n";

constexpr const char* kRecognizeHelpOutput =
    "  --coordinator ENDPOINT  ask a running 'huddle coordinator' (tcp://HOST:PORT) of\n"
    "                      this device (the same state directory) instead of\n"
    "                      finding the nodes here\n"
    "  --json              one JSON object per frame (the whole scene)\n"
    "  --json-lines        one compact JSON line per frame: frame, image, wall_ms,\n"
    "                      elapsed_ms, deadline_ms, complete, tasks (task, outcome,\n"
    "                      node, latency_ms, attempts), summary\n"
    "  --annotate OUT.png  draw the fused scene (boxes, labels, colours); with\n"
    "                      several frames, {} in OUT is replaced by the frame number\n"
    "  --repeat N          send each image N times (default 1)\n"
    "  --interval-ms N     start a frame at most every N ms (default 0: each right\n"
    "                      after the last one's scene)\n"
    "Exit status: 0 every frame complete, 1 a frame missed a task or an image could\n"
    "not be read, 2 usage error. A last line on stderr counts the frames:\n"
    "'recognize: N frames, C complete, P partial, L late' (late: fused more than\n"
    "100 ms after its deadline; never expected).\n";

constexpr const char* kNodesHelp =
    "usage: huddle nodes [--peer HOST:PORT ...] [--no-mdns] [--wait-ms N] [--json] [--watch]\n"
    "\n"
    "Lists the pool's nodes as this machine finds them: id, task, model, address,\n"
    "state (connecting, unreachable, warming, ready, stopping, lost), load (requests\n"
    "in flight / the node's maximum) and latency (run requests' round trip; with\n"
    "'*', the status request's when no frame has been sent).\n";

constexpr const char* kNodesHelpOutput =
    "  --json              one JSON array\n"
    "  --watch             print the list again every second until interrupted\n"
    "Exit status: 0 at least one node is ready, 1 none is, 2 usage error.\n";

std::atomic<bool> g_interrupted{false};

void on_interrupt(int) { g_interrupted = true; }

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string frame_line(size_t frame, const std::string& image, const coordinator::Scene& scene, long deadline_ms) {
  using coordinator::json_string;
  char buf[128];
  std::string out = "{\"frame\":" + std::to_string(frame) + ",\"image\":" + json_string(image) +
                    ",\"wall_ms\":" + std::to_string(unix_ms());
  std::snprintf(buf, sizeof buf, ",\"elapsed_ms\":%.3f", scene.elapsed_us / 1000.0);
  out += buf;
  out += ",\"deadline_ms\":" + std::to_string(deadline_ms) +
         ",\"complete\":" + (scene.complete() ? "true" : "false") + ",\"tasks\":[";
  for (size_t i = 0; i < scene.tasks.size(); ++i) {
    const coordinator::TaskReport& t = scene.tasks[i];
    std::snprintf(buf, sizeof buf, ",\"latency_ms\":%.3f,\"attempts\":%u}", t.latency_us / 1000.0, t.attempts);
    if (i) out += ",";
    out += "{\"task\":" + json_string(t.task);
    out += ",\"outcome\":" + json_string(coordinator::outcome_name(t.outcome));
    out += ",\"node\":" + json_string(t.node);
    out += buf;
  }
  return out + "],\"summary\":" + json_string(scene.summary) + "}";
}

std::string numbered(const std::string& pattern, size_t n) {
  const size_t at = pattern.find("{}");
  return at == std::string::npos ? pattern : pattern.substr(0, at) + std::to_string(n) + pattern.substr(at + 2);
}

}  // namespace

int recognize(int argc, char** argv) {
  PoolArgs args;
  bool json = false, json_lines = false;
  long repeat = 1, interval_ms = 0;
  std::string annotate, remote;
  std::vector<std::string> images;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    const int pool_arg = parse_pool_arg("recognize", argc, argv, &i, &args);
    if (pool_arg < 0) return 2;
    if (pool_arg > 0) continue;
    if (arg == "--help" || arg == "-h") {
      std::printf("%s\n%s%s%s%s", kRecognizeHelp, kPoolHelp, protocol::kSecurityHelp, kFrameHelp, kRecognizeHelpOutput);
      return 0;
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--json-lines") {
      json_lines = true;
    } else if (arg == "--annotate" || arg == "--coordinator") {
      if (!value || !*value) {
        std::fprintf(stderr, "huddle recognize: %s needs a value\n", arg.c_str());
        return 2;
      }
      (arg == "--annotate" ? annotate : remote) = value;
      ++i;
    } else if (arg == "--repeat" || arg == "--interval-ms") {
      if (!parse_count("recognize", argv[i], value, arg == "--repeat" ? 1 : 0, 100000000,
                       arg == "--repeat" ? &repeat : &interval_ms))
        return 2;
      ++i;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "huddle recognize: unknown option '%s' (see 'huddle recognize --help')\n", arg.c_str());
      return 2;
    } else {
      images.push_back(arg);
    }
  }
  if (images.empty()) {
    std::fputs("huddle recognize: no image given (see 'huddle recognize --help')\n", stderr);
    return 2;
  }
  if (json && json_lines) {
    std::fputs("huddle recognize: --json and --json-lines exclude each other\n", stderr);
    return 2;
  }
  std::vector<std::shared_ptr<const std::string>> bytes;
  for (const std::string& path : images) {
    auto b = std::make_shared<std::string>();
    if (!read_file(path, b.get()) || b->empty()) {
      std::fprintf(stderr, "huddle recognize: cannot read image '%s'\n", path.c_str());
      return 1;
    }
    bytes.push_back(std::move(b));
  }

  // Where frames go: a pool of our own, or a running coordinator.
  std::unique_ptr<coordinator::Pool> pool;
  zmq::context_t context(1);
  std::unique_ptr<protocol::Client> client;
  if (!remote.empty()) {
    try {
      // The coordinator service serves this device's programs: its key is ours.
      if (args.security.insecure) protocol::check_insecure_endpoint(remote, "connect to");
      const std::shared_ptr<protocol::Trust> trust = protocol::open_trust("recognize", args.security);
      client = trust ? std::make_unique<protocol::Client>(context, remote, &trust->keys(), trust->keys().public_key)
                     : std::make_unique<protocol::Client>(context, remote);
    } catch (const protocol::SecurityError& e) {
      std::fprintf(stderr, "huddle recognize: %s\n", e.what());
      return 2;
    } catch (const protocol::IdentityError& e) {
      std::fprintf(stderr, "huddle recognize: %s\n", e.what());
      return 1;
    } catch (const zmq::error_t& e) {
      std::fprintf(stderr, "huddle recognize: --coordinator '%s': %s\n", remote.c_str(), e.what());
      return 2;
    }
  } else {
    if (int status = 0; !open_pool_security("recognize", &args, &status)) return status;
    if (!args.verbose) args.pool.log = [](const std::string&) {};
    pool = std::make_unique<coordinator::Pool>(args.pool);
    if (!pool->wait_ready(args.frame.tasks, std::chrono::milliseconds(args.wait_ms))) {
      std::string have, others;
      for (const coordinator::NodeView& n : pool->nodes()) {
        std::string& list = n.in_rotation ? have : others;
        list += " " + n.id;
        list += n.task.empty() ? "" : " (" + n.task + ")";
        if (!n.in_rotation) list += ": " + n.state;
      }
      std::fprintf(stderr, "huddle recognize: after %ld ms, %s%s%s%s\n", args.wait_ms,
                   args.frame.tasks.empty() ? "no node is ready" : "not every task asked for has a ready node; ready:",
                   have.empty() ? (args.frame.tasks.empty() ? "" : " none") : have.c_str(),
                   others.empty() ? "" : "; not in rotation:", others.c_str());
      if (args.frame.tasks.empty()) return 1;
    }
  }

  struct sigaction sa = {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  size_t frames = 0, complete = 0, late = 0;
  const long deadline_ms = static_cast<long>(args.frame.deadline.count());
  auto next = std::chrono::steady_clock::now();
  for (long r = 0; r < repeat && !g_interrupted; ++r) {
    for (size_t k = 0; k < images.size() && !g_interrupted; ++k) {
      if (interval_ms > 0) {
        std::this_thread::sleep_until(next);
        next += std::chrono::milliseconds(interval_ms);
      }
      coordinator::Frame frame = args.frame;
      frame.image = bytes[k];
      coordinator::Scene scene;
      if (pool) {
        scene = pool->recognize(frame);
      } else {
        try {
          scene = coordinator::recognize_remote(*client, frame);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "huddle recognize: %s: %s\n", remote.c_str(), e.what());
          scene.summary = std::string("no scene: ") + e.what();
        }
      }
      ++frames;
      complete += scene.complete();
      late += scene.elapsed_us > static_cast<uint64_t>(deadline_ms + 100) * 1000;
      if (json_lines) {
        std::printf("%s\n", frame_line(frames, images[k], scene, deadline_ms).c_str());
      } else if (json) {
        std::printf("{\"image\":%s,\"scene\":%s}\n", coordinator::json_string(images[k]).c_str(),
                    coordinator::scene_json(scene).c_str());
      } else {
        std::fputs(scene_text(images[k], scene).c_str(), stdout);
      }
      std::fflush(stdout);
      if (!annotate.empty()) {
        const std::string out = repeat * images.size() == 1 ? annotate : numbered(annotate, frames);
        try {
          annotate_scene(images[k], scene, out);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "huddle recognize: cannot draw %s: %s\n", out.c_str(), e.what());
          return 1;
        }
      }
    }
  }
  std::fprintf(stderr, "recognize: %zu frames, %zu complete, %zu partial, %zu late\n", frames, complete,
               frames - complete, late);
  return complete == frames && frames > 0 ? 0 : 1;
}

int nodes(int argc, char** argv) {
  PoolArgs args;
  args.wait_ms = 1500;
  bool json = false, watch = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const int pool_arg = parse_pool_arg("nodes", argc, argv, &i, &args);
    if (pool_arg < 0) return 2;
    if (pool_arg > 0) continue;
    if (arg == "--help" || arg == "-h") {
      std::printf("%s\n%s%s%s", kNodesHelp, kPoolHelp, protocol::kSecurityHelp, kNodesHelpOutput);
      return 0;
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--watch") {
      watch = true;
    } else {
      std::fprintf(stderr, "huddle nodes: unknown %s '%s' (see 'huddle nodes --help')\n",
                   !arg.empty() && arg[0] == '-' ? "option" : "argument", arg.c_str());
      return 2;
    }
  }
  if (int status = 0; !open_pool_security("nodes", &args, &status)) return status;
  if (!args.verbose) args.pool.log = [](const std::string&) {};  // the list says it all
  coordinator::Pool pool(args.pool);
  pool.wait_ready({}, std::chrono::milliseconds(args.wait_ms), std::chrono::milliseconds(args.wait_ms));
  struct sigaction sa = {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  for (;;) {
    const std::vector<coordinator::NodeView> list = pool.nodes();
    std::fputs(json ? (nodes_json(list) + "\n").c_str() : nodes_text(list).c_str(), stdout);
    std::fflush(stdout);
    if (!watch) {
      for (const coordinator::NodeView& n : list)
        if (n.in_rotation) return 0;
      return 1;
    }
    for (int t = 0; t < 10 && !g_interrupted; ++t) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_interrupted) return 0;
    if (!json) std::fputs("\n", stdout);
  }
}

}  // namespace huddle::tools
