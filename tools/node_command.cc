// `huddle node`: serve one task over ZeroMQ (node/server.h) until SIGINT or
// SIGTERM, which finish the requests in flight and exit 0; announce it over
// mDNS meanwhile (discovery/discovery.h).
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "discovery/discovery.h"
#include "node/server.h"
#include "node/task.h"
#include "protocol/security.h"
#include "tools/arguments.h"
#include "tools/commands.h"

namespace huddle::tools {
namespace {

constexpr const char* kHelp =
    "usage: huddle node --task T [--model M.hdm] [--bind ENDPOINT] [--workers N]\n"
    "                   [--max-in-flight N] [--threads N] [--max-image-bytes N] [--node-id NAME]\n"
    "                   [--name NAME] [--no-announce] [--state-dir DIR]\n"
    "                   [--accept-pairing | --ask-pairing] [--pairing-window S] [--insecure]\n"
    "\n"
    "Serves one recognition task to coordinators and 'huddle ask' over ZeroMQ\n"
    "(a ROUTER; one Cap'n Proto envelope frame, then the image frame, per request).\n"
    "Prints the endpoint it bound as the first line of its output, then serves\n"
    "until SIGINT or SIGTERM, which finish the requests in flight, withdraw the\n"
    "announcement and exit 0 (a second signal exits at once).\n"
    "Each worker first runs the task once on a synthetic image: status answers\n"
    "say 'warming' until all have, then 'ready'.\n"
    "Every connection is encrypted and both ends authenticated (CurveZMQ): the\n"
    "node serves only coordinators paired with it, and processes sharing its state\n"
    "directory (this device: 'huddle ask', a coordinator of the same user). A\n"
    "coordinator pairs while the node is open for pairing (--accept-pairing or\n"
    "--ask-pairing); both show the same 6-digit code. 'huddle unpair ID' on\n"
    "either side revokes it: the node refuses that coordinator within 0.2 s.\n"
    "The node keeps no image once its request is answered.\n"
    "Once bound, the node announces itself over mDNS (through avahi-daemon) as a\n"
    "_huddle._tcp service on the bound port, with the TXT keys id (--node-id),\n"
    "task, model (the model's file name), proto, ck (its public key) and state\n"
    "(warming, then ready); coordinators find it by that. Without a reachable avahi-daemon it says so in\n"
    "one line and serves anyway (announcing when a daemon appears). A node bound\n"
    "to 127.0.0.1 announces too, but only its own host (or a network namespace\n"
    "with only loopback) can reach it: bind tcp://*:PORT to serve the LAN.\n"
    "  --task T            the task to serve (the list is below)\n"
    "  --model M.hdm       the task's model, for a task that takes one\n"
    "  --bind ENDPOINT     where to listen (default tcp://127.0.0.1:0: loopback only,\n"
    "                      port 0 picks a free one; tcp://*:PORT serves the LAN)\n"
    "  --workers N         threads running the task, each with its own copy (default 1)\n"
    "  --max-in-flight N   run requests accepted at once (default 2); more are\n"
    "                      answered 'overloaded' at once, never queued\n"
    "  --threads N         engine threads per worker (default: cores / workers)\n"
    "  --max-image-bytes N largest image frame (default 33554432); a larger frame\n"
    "                      makes the node drop the sender's connection\n"
    "  --node-id NAME      the name status answers and the announcement give\n"
    "                      (default: the device id); keep it stable per device\n"
    "  --name NAME         the announced service name (default 'huddle TASK on HOST';\n"
    "                      at most 63 bytes); a name taken on the network becomes\n"
    "                      'NAME #2'\n"
    "  --no-announce       do not announce over mDNS\n"
    "  --accept-pairing    for the first --pairing-window seconds, pair with every\n"
    "                      coordinator that asks (each pairing is logged with its code)\n"
    "  --ask-pairing       the same, but ask on the terminal for each one (y/N, 30 s)\n"
    "  --pairing-window S  how long pairing stays open after the start (default 30)\n"
    "%s"
    "Exit status: 0 stopped by a signal, 1 the task, the endpoint or the state\n"
    "directory failed, 2 usage error.\n";

struct Options {
  node::TaskSpec spec;
  node::ServerOptions server;
  bool threads_given = false;
  bool announce = true;
  std::string name;  // the service instance name; empty: the default
  protocol::SecurityArgs security;
};

bool parse_options(int argc, char** argv, Options* o, int* status) {
  *status = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    long n = 0;
    if (arg == "--help" || arg == "-h") {
      std::printf(kHelp, protocol::kSecurityHelp);
      std::string names;
      for (const node::TaskInfo& t : node::tasks()) names += std::string(" ") + t.name;
      std::printf("tasks in this build:%s\n", names.empty() ? " none" : names.c_str());
      *status = 0;
      return false;
    } else if (arg == "--no-announce") {
      o->announce = false;
    } else if (arg == "--accept-pairing" || arg == "--ask-pairing") {
      const node::PairingMode mode = arg == "--accept-pairing" ? node::PairingMode::accept : node::PairingMode::ask;
      if (o->server.pairing != node::PairingMode::closed && o->server.pairing != mode) {
        std::fputs("huddle node: --accept-pairing and --ask-pairing exclude each other\n", stderr);
        return false;
      }
      o->server.pairing = mode;
    } else if (arg == "--pairing-window") {
      if (!parse_count("node", argv[i], value, 1, 3600, &n)) return false;
      o->server.pairing_window = std::chrono::seconds(n);
      ++i;
    } else if (const int r = protocol::parse_security_arg("node", argc, argv, &i, &o->security); r != 0) {
      if (r < 0) return false;
    } else if (arg == "--task" || arg == "--model" || arg == "--bind" || arg == "--node-id" ||
               arg == "--name") {
      if (!value || !*value) {
        std::fprintf(stderr, "huddle node: %s needs a value (see 'huddle node --help')\n", arg.c_str());
        return false;
      }
      (arg == "--task"    ? o->spec.task
       : arg == "--model" ? o->spec.model
       : arg == "--bind"  ? o->server.bind
       : arg == "--name"  ? o->name
                          : o->server.node_id) = value;
      ++i;
    } else if (arg == "--workers" || arg == "--max-in-flight" || arg == "--threads") {
      if (!parse_count("node", argv[i], value, 1, 256, &n)) return false;
      if (arg == "--workers") o->server.workers = static_cast<size_t>(n);
      if (arg == "--max-in-flight") o->server.max_in_flight = static_cast<size_t>(n);
      if (arg == "--threads") o->spec.threads = static_cast<size_t>(n), o->threads_given = true;
      ++i;
    } else if (arg == "--max-image-bytes") {
      if (!parse_count("node", argv[i], value, 1024, 1l << 30, &n)) return false;
      o->server.max_image_bytes = static_cast<size_t>(n);
      ++i;
    } else {
      std::fprintf(stderr, "huddle node: unknown %s '%s' (see 'huddle node --help')\n",
                   !arg.empty() && arg[0] == '-' ? "option" : "argument", arg.c_str());
      return false;
    }
  }
  if (o->name.size() > discovery::kMaxInstanceBytes) {
    std::fprintf(stderr, "huddle node: --name '%s' is %zu bytes, over the %zu a service name may have\n",
                 o->name.c_str(), o->name.size(), discovery::kMaxInstanceBytes);
    return false;
  }
  if (o->spec.task.empty()) {
    std::fputs("huddle node: --task is required (see 'huddle node --help')\n", stderr);
    return false;
  }
  if (o->security.insecure && o->server.pairing != node::PairingMode::closed) {
    std::fputs("huddle node: an --insecure node has no keys and cannot pair\n", stderr);
    return false;
  }
  if (o->server.pairing == node::PairingMode::ask && !isatty(STDIN_FILENO)) {
    std::fputs("huddle node: --ask-pairing asks on the terminal, and standard input is not one "
               "(--accept-pairing pairs without asking)\n",
               stderr);
    return false;
  }
  if (o->security.insecure) {
    try {
      protocol::check_insecure_endpoint(o->server.bind, "bind");
    } catch (const protocol::SecurityError& e) {
      std::fprintf(stderr, "huddle node: %s\n", e.what());
      return false;
    }
  }
  return true;
}

std::string host_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return host;
}

// The port of "tcp://ADDRESS:PORT"; 0 for any other endpoint.
uint16_t tcp_port(const std::string& endpoint) {
  const size_t colon = endpoint.rfind(':');
  if (!endpoint.starts_with("tcp://") || colon == std::string::npos) return 0;
  const long port = std::strtol(endpoint.c_str() + colon + 1, nullptr, 10);
  return port > 0 && port < 65536 ? static_cast<uint16_t>(port) : 0;
}

// The announcement of a node serving at `endpoint` ("tcp://ADDRESS:PORT").
discovery::Announcement announcement(const Options& o, const node::TaskFactory& factory,
                                     const std::string& endpoint, bool ready) {
  discovery::Announcement a;
  a.instance = o.name;
  if (a.instance.empty()) {
    a.instance = "huddle " + o.spec.task;
    a.instance += " on ";
    a.instance += host_name();
    // A cut must not split a UTF-8 character.
    if (a.instance.size() > discovery::kMaxInstanceBytes) {
      a.instance.resize(discovery::kMaxInstanceBytes);
      const auto last = [&] { return static_cast<unsigned char>(a.instance.back()); };
      while ((last() & 0xc0) == 0x80) a.instance.pop_back();
      if (last() >= 0xc0) a.instance.pop_back();
    }
  }
  a.port = tcp_port(endpoint);
  a.id = o.server.node_id;
  a.task = o.spec.task;
  a.model = factory.model_name();
  if (o.server.trust) a.ck = o.server.trust->keys().public_key;
  a.state = ready ? "ready" : "warming";
  return a;
}

// The server a signal stops; set while it runs.
std::atomic<node::Server*> g_server{nullptr};
std::atomic<int> g_signals{0};

// --ask-pairing: asks on the terminal (standard input) whether to pair.
bool ask_on_terminal(const node::PairingAsk& ask, std::chrono::seconds limit) {
  std::fprintf(stderr,
               "huddle node: coordinator %s%s asks to pair; code %s.\n"
               "huddle node: pair if the coordinator shows the same code. Pair? [y/N] (%lld s) ",
               ask.device_id.c_str(), ask.name.empty() ? "" : (" (" + ask.name + ")").c_str(), ask.code.c_str(),
               static_cast<long long>(limit.count()));
  std::fflush(stderr);
  tcflush(STDIN_FILENO, TCIFLUSH);  // nothing typed before the question answers it
  const auto end = std::chrono::steady_clock::now() + limit;
  std::string line;
  while (std::chrono::steady_clock::now() < end && g_signals.load() == 0) {
    pollfd p{STDIN_FILENO, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    char c = 0;
    if (read(STDIN_FILENO, &c, 1) != 1) break;
    if (c == '\n') {
      const bool yes = line == "y" || line == "Y" || line == "yes";
      std::fputs(yes ? "huddle node: pairing\n" : "huddle node: not pairing\n", stderr);
      return yes;
    }
    line += c;
  }
  std::fputs("\nhuddle node: no answer: not pairing\n", stderr);
  return false;
}

void on_signal(int) {
  if (g_signals.fetch_add(1) > 0) _exit(1);
  if (node::Server* s = g_server.load()) s->stop();
}

}  // namespace

int serve_node(int argc, char** argv) {
  Options o;
  int status = 0;
  if (!parse_options(argc, argv, &o, &status)) return status;
  if (!o.threads_given)
    o.spec.threads = std::max<size_t>(1, std::thread::hardware_concurrency() / o.server.workers);
  o.server.task = o.spec.task;
  o.server.software = std::string("huddle ") + HUDDLE_VERSION;
  try {
    o.server.trust = protocol::open_trust("node", o.security);
  } catch (const protocol::IdentityError& e) {
    std::fprintf(stderr, "huddle node: %s\n", e.what());
    return 1;
  }
  if (o.server.node_id.empty()) o.server.node_id = o.server.trust ? o.server.trust->device_id() : host_name();
  if (o.server.pairing == node::PairingMode::ask) o.server.ask = ask_on_terminal;
  // The handlers go in first: a signal while the task loads is kept for the
  // server to see once it exists.
  struct sigaction sa = {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  std::shared_ptr<const node::TaskFactory> factory = node::open_task(o.spec);
  node::Server server(factory, o.server);
  g_server = &server;
  if (g_signals > 0) server.stop();
  std::printf("%s\n", server.endpoint().c_str());
  std::fflush(stdout);
  std::fprintf(
      stderr, "huddle node: serving %s on %s (%zu workers, %zu engine threads each, at most %zu in flight)\n",
      o.spec.task.c_str(), server.endpoint().c_str(), o.server.workers, o.spec.threads,
      o.server.max_in_flight);
  if (o.server.trust) {
    std::fprintf(stderr, "huddle node: device id %s; serving the coordinators paired with it (%s)\n",
                 o.server.trust->device_id().c_str(), o.server.trust->paired().path().c_str());
    if (o.server.pairing != node::PairingMode::closed)
      std::fprintf(stderr, "huddle node: open for pairing for %lld s: 'huddle pair %s' on the coordinator\n",
                   static_cast<long long>(o.server.pairing_window.count()), o.server.trust->device_id().c_str());
  }
  // Announced once bound; withdrawn (destroyed) once serving ends. The
  // warm-up may finish on a worker after that: it holds only a weak reference.
  std::shared_ptr<discovery::Publisher> publisher;
  if (o.announce && tcp_port(server.endpoint()) == 0) {
    std::fprintf(stderr, "huddle node: not announced: %s is not a TCP endpoint\n", server.endpoint().c_str());
  } else if (o.announce) {
    try {
      publisher = std::make_shared<discovery::Publisher>(
          announcement(o, *factory, server.endpoint(), server.ready()),
          [](const std::string& line) { std::fprintf(stderr, "huddle node: %s\n", line.c_str()); });
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "huddle node: cannot announce: %s (--no-announce serves without)\n", e.what());
      g_server = nullptr;
      return 2;
    }
    server.when_ready([weak = std::weak_ptr(publisher)] {
      if (const auto p = weak.lock()) p->set_state("ready");
    });
  }
  server.run();
  publisher.reset();
  sa.sa_handler = SIG_DFL;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  g_server = nullptr;
  std::fputs("huddle node: stopped\n", stderr);
  return 0;
}

}  // namespace huddle::tools
