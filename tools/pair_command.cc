// `huddle identity`, `huddle pair` and `huddle unpair` (issue 9): this
// device's identity, and the nodes it pairs with (protocol/security.h,
// protocol/paired.h). Pairing: the node is found over mDNS (its TXT `ck` is
// its public key) or named by --peer KEY@HOST:PORT; both devices show a code
// computed from both keys and the time; the request goes over CURVE to the
// node's key, and the node's answer carries the code it showed, which must be
// ours.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "discovery/discovery.h"
#include "protocol/security.h"
#include "protocol/socket.h"
#include "tools/arguments.h"
#include "tools/commands.h"

namespace huddle::tools {
namespace {

namespace schema = protocol::schema;
using std::chrono::milliseconds;

constexpr const char* kStateDirHelp =
    "  --state-dir DIR     this device's keys and paired devices (default\n"
    "                      $XDG_STATE_HOME/huddle, else ~/.local/state/huddle)\n";

constexpr const char* kIdentityHelp =
    "usage: huddle identity [--state-dir DIR] [--json]\n"
    "\n"
    "Prints this device's id, public key and state directory, creating the\n"
    "identity (a CurveZMQ keypair) on first use. Every process using the same\n"
    "state directory is this device. The device id is what 'huddle pair' and\n"
    "'huddle unpair' take; the public key is what --peer KEY@HOST:PORT and\n"
    "'huddle ask --key' take.\n"
    "  --json              one JSON object: device_id, public_key, state_dir\n";

constexpr const char* kIdentityExit =
    "Exit status: 0 printed, 1 the state directory or its keys cannot be used\n"
    "(e.g. a secret key readable by others), 2 usage error.\n";

constexpr const char* kPairHelp =
    "usage: huddle pair [--state-dir DIR] [--wait-ms N]\n"
    "       huddle pair [--state-dir DIR] [--wait-ms N] [--name NAME] [--peer KEY@HOST:PORT] [ID]\n"
    "\n"
    "Without ID: lists the nodes found over mDNS within --wait-ms (device id,\n"
    "task, endpoint, state, service name), each 'paired', 'unpaired', 'this device'\n"
    "or 'insecure' (it announces no key), then the devices this one is paired with.\n"
    "\n"
    "With ID (a node's device id, as the list shows it): finds that node over mDNS\n"
    "(or at --peer), prints the verification code computed from both keys and the\n"
    "time, and asks the node to pair, over CURVE to the node's key. The node must\n"
    "be open for pairing ('huddle node --accept-pairing' or '--ask-pairing', for\n"
    "its first 30 s) and shows the same code: check that it does. Once the node\n"
    "accepts, with the same code, it is stored in the paired file of this device,\n"
    "which then sends it images. Waits up to 35 s for the node's answer.\n"
    "  --wait-ms N         how long to look for nodes over mDNS (default 2000; with\n"
    "                      ID it goes on as soon as the node is found)\n"
    "  --peer KEY@HOST:PORT  the node's public key and address, for networks that\n"
    "                      block multicast ('huddle identity' on the node prints the\n"
    "                      key; the node's first output line its endpoint)\n"
    "  --name NAME         this device's name as the node stores it (default: the\n"
    "                      host name; at most 63 bytes)\n";

constexpr const char* kPairExit =
    "Exit status: 0 listed, or paired; 1 the node was not found, refused, did not\n"
    "answer, showed another code, or the state directory cannot be used; 2 usage\n"
    "error.\n";

constexpr const char* kUnpairHelp =
    "usage: huddle unpair [--state-dir DIR] [--wait-ms N] [--peer [KEY@]HOST:PORT] ID\n"
    "\n"
    "Removes the device ID from this device's paired file: a coordinator using\n"
    "this state directory stops sending it images, and a node using it refuses\n"
    "it, within a second. When ID is a node, it is told too, if it can be found\n"
    "over mDNS (or at --peer) and answers within 2 s, so that it forgets this\n"
    "device's key as well; the output says whether it was told.\n"
    "  --wait-ms N         how long to look for the node over mDNS (default 2000)\n"
    "  --peer [KEY@]HOST:PORT  where the node is, for networks that block multicast\n";

constexpr const char* kUnpairExit =
    "Exit status: 0 unpaired (told or not), 1 ID is not paired or the state\n"
    "directory cannot be used, 2 usage error.\n";

// How long `huddle pair` waits for the node's answer: the node may ask a person
// (30 s), and the person needs a moment to compare the codes.
constexpr milliseconds kPairAnswerTimeout{35000};
// How long `huddle unpair` waits for the node's answer.
constexpr milliseconds kUnpairAnswerTimeout{2000};

struct Options {
  protocol::SecurityArgs security;
  bool json = false;
  long wait_ms = 2000;
  std::string name, peer, id;
};

// Reads the command's arguments into *o: --help, --state-dir, and those of
// `allowed` ("--json", "--wait-ms", "--name", "--peer"); positional: the ID
// when `takes_id`. False with *status set when the command ends here.
bool parse_options(const char* command, const char* help, const char* exit_help,
                   const std::vector<std::string>& allowed, bool takes_id, int argc, char** argv, Options* o,
                   int* status) {
  *status = 2;
  const auto allows = [&](const std::string& arg) {
    return std::find(allowed.begin(), allowed.end(), arg) != allowed.end();
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (arg == "--help" || arg == "-h") {
      std::fputs(help, stdout);
      std::fputs(kStateDirHelp, stdout);
      std::fputs(exit_help, stdout);
      *status = 0;
      return false;
    } else if (const int security = protocol::parse_security_arg(command, argc, argv, &i, &o->security)) {
      if (security < 0) return false;
      if (o->security.insecure) {
        std::fprintf(stderr,
                     "huddle %s: --insecure has no place here: this command is about this device's keys and "
                     "pairing, which is what makes links secure\n",
                     command);
        return false;
      }
    } else if (allows(arg) && arg == "--json") {
      o->json = true;
    } else if (allows(arg) && arg == "--wait-ms") {
      if (!parse_count(command, argv[i], value, 0, 600000, &o->wait_ms)) return false;
      ++i;
    } else if (allows(arg) && (arg == "--name" || arg == "--peer")) {
      if (!value || !*value) {
        std::fprintf(stderr, "huddle %s: %s needs a value (see 'huddle %s --help')\n", command, arg.c_str(),
                     command);
        return false;
      }
      (arg == "--name" ? o->name : o->peer) = value;
      ++i;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "huddle %s: unknown option '%s' (see 'huddle %s --help')\n", command, arg.c_str(),
                   command);
      return false;
    } else if (takes_id && o->id.empty()) {
      o->id = arg;
    } else {
      std::fprintf(stderr, "huddle %s: unexpected argument '%s' (see 'huddle %s --help')\n", command,
                   arg.c_str(), command);
      return false;
    }
  }
  return true;
}

// This device's Trust, or nullptr after printing why it cannot be used.
std::shared_ptr<protocol::Trust> load_trust(const char* command, const protocol::SecurityArgs& args) {
  try {
    return protocol::open_trust(command, args);
  } catch (const protocol::IdentityError& e) {
    std::fprintf(stderr, "huddle %s: %s\n", command, e.what());
    return nullptr;
  }
}

// `text` as a canonical device id, or empty after printing why it is not one.
std::string canonical_id(const char* command, const std::string& text) {
  try {
    return protocol::parse_device_id(text);
  } catch (const protocol::IdentityError& e) {
    std::fprintf(stderr, "huddle %s: '%s' is not a device id: %s\n", command, text.c_str(), e.what());
    return {};
  }
}

// Text from a node, fit for a terminal: control characters as '?'.
std::string printable(std::string text) {
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return text;
}

// `name` made fit for a paired file: printable, at most kMaxDeviceName
// bytes, not cut inside a UTF-8 character.
std::string storable_name(std::string name) {
  name = printable(std::move(name));
  if (name.size() > protocol::kMaxDeviceName) {
    size_t end = protocol::kMaxDeviceName;
    while (end > 0 && (static_cast<unsigned char>(name[end]) & 0xc0) == 0x80) --end;
    name.resize(end);
  }
  return name;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string utc_time(int64_t unix_seconds) {
  const time_t t = static_cast<time_t>(unix_seconds);
  tm parts{};
  char text[64];
  if (!gmtime_r(&t, &parts) || !std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &parts))
    return std::to_string(unix_seconds);
  return text;
}

// The device id of the key a service announces (TXT ck); empty when it
// announces none, or something that is not a key.
std::string announced_id(const discovery::Service& s) {
  if (s.ck.empty()) return {};
  try {
    return protocol::device_id(s.ck);
  } catch (const protocol::IdentityError&) {
    return {};
  }
}

// The nodes mDNS lists within `wait`, in the order of their task and name;
// browsing ends early once `wanted` (if given) is true of one of them.
std::vector<discovery::Service> browse(const char* command, milliseconds wait,
                                       const std::function<bool(const discovery::Service&)>& wanted = {}) {
  std::mutex mutex;
  std::condition_variable found;
  bool done = false;
  std::map<std::string, discovery::Service> nodes;  // keyed as the browser reports them
  {
    discovery::Browser browser(
        [&](const discovery::Event& e) {
          const discovery::Service& s = e.service;
          const std::string key = s.id.empty() ? "name:" + s.instance : "id:" + s.id + "/" + s.task;
          std::lock_guard lock(mutex);
          if (e.kind == discovery::EventKind::leave) {
            nodes.erase(key);
            return;
          }
          nodes[key] = s;
          if (wanted && wanted(s)) {
            done = true;
            found.notify_all();
          }
        },
        [command](const std::string& line) { std::fprintf(stderr, "huddle %s: %s\n", command, line.c_str()); });
    std::unique_lock lock(mutex);
    found.wait_for(lock, wait, [&] { return done; });
  }
  std::vector<discovery::Service> out;
  for (auto& [key, s] : nodes) out.push_back(std::move(s));
  std::sort(out.begin(), out.end(), [](const discovery::Service& a, const discovery::Service& b) {
    return std::tie(a.task, a.instance, a.address, a.port) < std::tie(b.task, b.instance, b.address, b.port);
  });
  return out;
}

// A node to talk to.
struct Node {
  std::string id, key, endpoint, task, name;
};

// Finds the node of the device `id` (empty: the one --peer names): at `peer`
// (KEY@HOST:PORT, ID@HOST:PORT of a paired device, or HOST:PORT when
// `known_key` is the key), else over mDNS within `wait`. Prints why and
// returns nullopt (*status set) when it cannot.
std::optional<Node> find_node(const char* command, const protocol::Trust& trust, const std::string& id,
                              const std::string& peer, const std::string& known_key, milliseconds wait,
                              int* status) {
  *status = 2;
  Node node;
  if (!peer.empty()) {
    try {
      const protocol::PeerSpec spec = protocol::parse_peer_spec(peer, &trust);
      node.key = spec.key.empty() ? known_key : spec.key;
      if (node.key.empty()) {
        std::fprintf(stderr,
                     "huddle %s: --peer '%s' needs the node's public key: KEY@HOST:PORT ('huddle identity' on "
                     "the node prints it)\n",
                     command, peer.c_str());
        return std::nullopt;
      }
      node.id = protocol::device_id(node.key);
      if (!id.empty() && node.id != id) {
        std::fprintf(stderr, "huddle %s: the key of --peer '%s' is device %s, not %s\n", command, peer.c_str(),
                     node.id.c_str(), id.c_str());
        return std::nullopt;
      }
      node.endpoint = discovery::static_peer(spec.address).endpoint();
    } catch (const std::exception& e) {  // SecurityError, std::invalid_argument
      std::fprintf(stderr, "huddle %s: %s\n", command, e.what());
      return std::nullopt;
    }
    return node;
  }
  const auto is_it = [&id](const discovery::Service& s) { return announced_id(s) == id; };
  for (const discovery::Service& s : browse(command, wait, is_it)) {
    if (!is_it(s)) continue;
    return Node{id, s.ck, s.endpoint(), s.task, s.id};
  }
  std::fprintf(stderr,
               "huddle %s: no node %s found over mDNS in %ld ms; is it on this LAN and announcing? "
               "(--peer KEY@HOST:PORT)\n",
               command, id.c_str(), static_cast<long>(wait.count()));
  *status = 1;
  return std::nullopt;
}

// What came back from a node.
struct Exchange {
  std::optional<protocol::Reply> reply;
  std::optional<protocol::HandshakeEvent> handshake;  // set when the handshake failed
  bool timed_out = false;
  std::string problem;  // why there is no reply, for a person
};

// Sends a request whose body `fill` writes to `node`, over CURVE as this
// device, and waits up to `timeout` for the answer.
Exchange exchange(zmq::context_t& context, const protocol::Trust& trust, const Node& node,
                  const std::function<void(schema::Request::Body::Builder)>& fill, milliseconds timeout) {
  Exchange out;
  try {
    protocol::Client client(context, node.endpoint, &trust.keys(), node.key);
    capnp::MallocMessageBuilder message;
    const uint64_t id = client.next_id();
    fill(protocol::init_request(message, id, static_cast<uint32_t>(timeout.count())).initBody());
    client.send(message);
    out.reply = client.receive(id, timeout);
    out.timed_out = !out.reply;
    if (out.timed_out) out.problem = "no answer within " + std::to_string(timeout.count() / 1000) + " s";
  } catch (const protocol::HandshakeError& e) {
    out.handshake = e.event();
    out.problem = e.what();
    // A node without CURVE (--insecure) ends our handshake the same way.
    if (e.event().result == protocol::HandshakeResult::no_detail) out.problem += " (or an --insecure node)";
  } catch (const protocol::ProtocolError& e) {
    out.problem = std::string("its answer is malformed: ") + e.what();
  } catch (const kj::Exception& e) {
    out.problem = std::string("its answer is malformed: ") + e.getDescription().cStr();
  } catch (const zmq::error_t& e) {
    out.problem = "cannot connect to " + node.endpoint + ": " + e.what();
  }
  return out;
}

// Asks `node` to forget this device's key, waiting at most `timeout`;
// whether it did, with *problem saying why not.
bool tell_unpair(zmq::context_t& context, const protocol::Trust& trust, const Node& node, milliseconds timeout,
                 std::string* problem) {
  Exchange answer = exchange(
      context, trust, node, [](schema::Request::Body::Builder body) { body.setUnpair(); }, timeout);
  if (!answer.reply) {
    *problem = answer.problem;
    if (answer.handshake && answer.handshake->result == protocol::HandshakeResult::refused)
      *problem += " (it has unpaired this device already?)";
    return false;
  }
  const protocol::ResponseHeader& h = answer.reply->header();
  if (h.code == schema::Code::OK) return true;
  *problem = "it answered " + protocol::code_name(h.code) + ": " + printable(h.message);
  return false;
}

std::string host_name() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0 || !name[0]) return "huddle";
  return name;
}

// `huddle pair` without an ID: what mDNS finds, then the paired file.
int list(const Options& o, const protocol::Trust& trust) {
  const std::vector<discovery::Service> nodes = browse("pair", milliseconds(o.wait_ms));
  std::printf("this device: %s (state dir %s)\n\n", trust.device_id().c_str(), trust.state_dir().c_str());
  char line[512];
  if (nodes.empty()) {
    std::printf("no nodes found over mDNS in %ld ms\n", o.wait_ms);
  } else {
    std::printf("nodes found over mDNS in %ld ms:\n", o.wait_ms);
    std::snprintf(line, sizeof line, "%-20s %-9s %-27s %-11s %s\n", "id", "task", "endpoint", "state", "name");
    std::fputs(line, stdout);
    for (const discovery::Service& s : nodes) {
      const std::string id = announced_id(s);
      std::string state = "unpaired";
      if (s.ck.empty()) state = "insecure";
      else if (id.empty()) state = "bad key";
      else if (id == trust.device_id()) state = "this device";
      else if (const auto d = trust.paired().find_by_key(s.ck))
        state = d->role == protocol::PeerRole::node ? "paired" : "paired as coordinator";
      std::snprintf(line, sizeof line, "%-20s %-9s %-27s %-11s %s\n", id.empty() ? "-" : id.c_str(),
                    s.task.empty() ? "-" : printable(s.task).c_str(), s.endpoint().c_str(), state.c_str(),
                    printable(s.instance).c_str());
      std::fputs(line, stdout);
    }
  }
  const std::vector<protocol::PairedDevice> paired = trust.paired().list();
  if (paired.empty()) {
    std::printf("\nno paired devices (%s)\n", trust.paired().path().c_str());
    return 0;
  }
  std::printf("\npaired devices (%s):\n", trust.paired().path().c_str());
  std::snprintf(line, sizeof line, "%-20s %-11s %-21s %s\n", "id", "role", "paired at", "name");
  std::fputs(line, stdout);
  for (const protocol::PairedDevice& d : paired) {
    std::snprintf(line, sizeof line, "%-20s %-11s %-21s %s\n", d.id.c_str(),
                  std::string(protocol::role_name(d.role)).c_str(), utc_time(d.paired_at).c_str(),
                  d.name.c_str());
    std::fputs(line, stdout);
  }
  return 0;
}

}  // namespace

int identity(int argc, char** argv) {
  Options o;
  int status = 0;
  if (!parse_options("identity", kIdentityHelp, kIdentityExit, {"--json"}, false, argc, argv, &o, &status))
    return status;
  const std::shared_ptr<protocol::Trust> trust = load_trust("identity", o.security);
  if (!trust) return 1;
  std::error_code ignored;
  const std::string dir = std::filesystem::absolute(trust->state_dir(), ignored).string();
  if (o.json)
    std::printf("{\"device_id\": %s, \"public_key\": %s, \"state_dir\": %s}\n",
                json_string(trust->device_id()).c_str(), json_string(trust->keys().public_key).c_str(),
                json_string(dir).c_str());
  else
    std::printf("device id: %s\npublic key: %s\nstate dir: %s\n", trust->device_id().c_str(),
                trust->keys().public_key.c_str(), dir.c_str());
  return 0;
}

int pair(int argc, char** argv) {
  Options o;
  int status = 0;
  if (!parse_options("pair", kPairHelp, kPairExit, {"--wait-ms", "--name", "--peer"}, true, argc, argv, &o,
                     &status))
    return status;
  std::string id;
  if (!o.id.empty() && (id = canonical_id("pair", o.id)).empty()) return 2;
  if (!o.name.empty() && storable_name(o.name) != o.name) {
    std::fprintf(stderr, "huddle pair: --name '%s': at most %zu bytes, no control characters\n", o.name.c_str(),
                 protocol::kMaxDeviceName);
    return 2;
  }
  const std::shared_ptr<protocol::Trust> trust = load_trust("pair", o.security);
  if (!trust) return 1;
  if (id.empty() && o.peer.empty()) return list(o, *trust);

  const std::optional<Node> node =
      find_node("pair", *trust, id, o.peer, {}, milliseconds(o.wait_ms), &status);
  if (!node) return status;
  if (node->id == trust->device_id()) {
    std::fprintf(stderr,
                 "huddle pair: %s is this device: processes sharing the state directory %s trust each other "
                 "with no pairing\n",
                 node->id.c_str(), trust->state_dir().c_str());
    return 1;
  }
  if (const auto known = trust->paired().find_by_key(node->key))
    std::printf("%s is paired already (as %s, since %s): pairing again\n", node->id.c_str(),
                std::string(protocol::role_name(known->role)).c_str(), utc_time(known->paired_at).c_str());

  const int64_t now = unix_now();
  const std::string code = protocol::verification_code(trust->keys().public_key, node->key, now);
  std::printf("code %s: check that the node shows the same code\n", code.c_str());
  std::printf("asking node %s at %s to pair (waiting up to %lld s)...\n", node->id.c_str(),
              node->endpoint.c_str(), static_cast<long long>(kPairAnswerTimeout.count() / 1000));
  std::fflush(stdout);

  const std::string name = o.name.empty() ? storable_name(host_name()) : o.name;
  zmq::context_t context;
  Exchange answer = exchange(
      context, *trust, *node,
      [&](schema::Request::Body::Builder body) {
        auto request = body.initPair();
        request.setName(name);
        request.setUnixSeconds(now);
      },
      kPairAnswerTimeout);
  if (!answer.reply) {
    std::string hint;
    if (answer.handshake && answer.handshake->result == protocol::HandshakeResult::refused)
      hint =
          "; is it open for pairing? ('huddle node --accept-pairing' or '--ask-pairing' opens it for its "
          "first 30 s)";
    if (answer.timed_out) hint = " (nobody accepted on the node in time?)";
    std::fprintf(stderr, "huddle pair: node %s at %s: %s%s\n", node->id.c_str(), node->endpoint.c_str(),
                 answer.problem.c_str(), hint.c_str());
    return 1;
  }
  const protocol::ResponseHeader& h = answer.reply->header();
  const auto body = answer.reply->root().getBody();
  if (h.code != schema::Code::OK) {
    std::fprintf(stderr, "huddle pair: node %s refused to pair (%s): %s\n", node->id.c_str(),
                 protocol::code_name(h.code).c_str(), printable(h.message).c_str());
    return 1;
  }
  // The node trusts us now; if we do not trust it, it is told to forget us.
  const auto refuse = [&](const std::string& why) {
    std::string problem;
    const bool told = tell_unpair(context, *trust, *node, kUnpairAnswerTimeout, &problem);
    std::fprintf(stderr, "huddle pair: %s: not pairing (%s)\n", why.c_str(),
                 told ? "the node was told to forget this device"
                      : ("the node could not be told to forget this device: " + problem).c_str());
    return 1;
  };
  if (!body.isPaired()) return refuse("node " + node->id + " answered ok, but not with a pairing");
  const auto result = body.getPaired();
  const std::string their_code = printable(result.getCode());
  if (their_code != code) return refuse("codes differ: ours " + code + ", the node's " + their_code);
  if (result.getDeviceId() != node->id)
    return refuse("the node says it is device " + printable(result.getDeviceId()) + ", not " + node->id);

  const std::string task = printable(result.getTask());
  const std::string node_name = storable_name(result.getName());
  protocol::PairedDevice device;
  device.public_key = node->key;
  device.name = node_name.empty() ? storable_name(task) : node_name;
  device.paired_at = now;
  device.role = protocol::PeerRole::node;
  try {
    trust->paired().add(device);
  } catch (const protocol::IdentityError& e) {
    std::fprintf(stderr, "huddle pair: the node accepted, but it cannot be stored: %s\n", e.what());
    return 1;
  }
  std::printf("paired with node %s (%s, %s)\n", node->id.c_str(), task.empty() ? "-" : task.c_str(),
              node_name.empty() ? "-" : node_name.c_str());
  return 0;
}

int unpair(int argc, char** argv) {
  Options o;
  int status = 0;
  if (!parse_options("unpair", kUnpairHelp, kUnpairExit, {"--wait-ms", "--peer"}, true, argc, argv, &o, &status))
    return status;
  if (o.id.empty()) {
    std::fputs("huddle unpair: which device? (usage: huddle unpair ID; 'huddle pair' lists them)\n", stderr);
    return 2;
  }
  const std::string id = canonical_id("unpair", o.id);
  if (id.empty()) return 2;
  const std::shared_ptr<protocol::Trust> trust = load_trust("unpair", o.security);
  if (!trust) return 1;
  const auto not_paired = [&] {
    std::fprintf(stderr, "huddle unpair: %s is not paired (%s)\n", id.c_str(), trust->paired().path().c_str());
    return 1;
  };
  const std::optional<protocol::PairedDevice> device = trust->paired().find_by_id(id);
  if (!device) return not_paired();
  // A --peer that cannot be used is a usage error, before anything changes.
  std::optional<Node> node;
  if (device->role == protocol::PeerRole::node && !o.peer.empty() &&
      !(node = find_node("unpair", *trust, id, o.peer, device->public_key, {}, &status)))
    return status;
  std::optional<protocol::PairedDevice> removed;
  try {
    removed = trust->paired().remove(id);
  } catch (const protocol::IdentityError& e) {
    std::fprintf(stderr, "huddle unpair: %s\n", e.what());
    return 1;
  }
  if (!removed) return not_paired();  // another process removed it meanwhile
  if (removed->role == protocol::PeerRole::node) {
    if (!node) node = find_node("unpair", *trust, id, {}, {}, milliseconds(o.wait_ms), &status);
    std::string problem = "not found";
    zmq::context_t context;
    if (node && tell_unpair(context, *trust, *node, kUnpairAnswerTimeout, &problem))
      std::printf("told node %s at %s: it forgot this device's key\n", id.c_str(), node->endpoint.c_str());
    else
      std::printf("could not tell node %s (%s): it trusts this device until unpaired there too ('huddle unpair "
                  "%s' with its state directory)\n",
                  id.c_str(), problem.c_str(), trust->device_id().c_str());
  }
  std::printf("unpaired %s (%s)\n", id.c_str(), removed->name.empty() ? "-" : removed->name.c_str());
  return 0;
}

}  // namespace huddle::tools
