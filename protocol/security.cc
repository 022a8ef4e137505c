#include "protocol/security.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

namespace huddle::protocol {

Trust::Trust(std::filesystem::path state_dir)
    : state_dir_(std::move(state_dir)),
      keys_(load_or_create_identity(state_dir_)),
      device_id_(protocol::device_id(keys_.public_key)),
      paired_(state_dir_) {}

bool Trust::trusts(std::string_view key, PeerRole role) const {
  if (key.empty()) return false;
  if (key == keys_.public_key) return true;
  const std::optional<PairedDevice> d = paired_.find_by_key(key);
  return d && d->role == role;
}

bool Trust::reload(std::string* error) {
  try {
    return paired_.reload_if_changed();
  } catch (const IdentityError& e) {
    if (error) *error = e.what();
    return true;
  }
}

const char* const kSecurityHelp =
    "  --state-dir DIR     this device's keys and paired devices (default\n"
    "                      $XDG_STATE_HOME/huddle, else ~/.local/state/huddle)\n"
    "  --insecure          plain TCP, no encryption, no authentication: for tests\n"
    "                      and benchmarks only; refused unless every endpoint is\n"
    "                      on loopback or this is a test network namespace\n";

int parse_security_arg(const char* command, int argc, char** argv, int* i, SecurityArgs* args) {
  const std::string_view arg = argv[*i];
  if (arg == "--insecure") {
    args->insecure = true;
    return 1;
  }
  if (arg != "--state-dir") return 0;
  const char* value = *i + 1 < argc ? argv[*i + 1] : nullptr;
  if (!value || !*value) {
    std::fprintf(stderr, "huddle %s: --state-dir needs a directory (see 'huddle %s --help')\n", command,
                 command);
    return -1;
  }
  args->state_dir = value;
  ++*i;
  return 1;
}

std::shared_ptr<Trust> open_trust(const char* command, const SecurityArgs& args) {
  if (args.insecure) {
    std::fprintf(stderr,
                 "huddle %s: WARNING: --insecure: plain TCP, images travel unencrypted and any device "
                 "may connect; for tests and benchmarks only\n",
                 command);
    return nullptr;
  }
  return std::make_shared<Trust>(args.state_dir.empty() ? default_state_dir() : args.state_dir);
}

namespace {

// The network namespace of process `pid` (its /proc ns file's device and
// inode); nullopt when it cannot be read (another user's process, or a
// process 1 this user may not look at, as in some virtual machines).
std::optional<std::pair<dev_t, ino_t>> net_namespace(const std::string& pid) {
  struct stat st{};
  if (stat(("/proc/" + pid + "/ns/net").c_str(), &st) != 0) return std::nullopt;
  return std::make_pair(st.st_dev, st.st_ino);
}

// The parent of process `pid`, 0 when unknown.
long parent_of(long pid) {
  std::FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return 0;
  char buf[512] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  // "PID (COMM) STATE PPID ...": COMM may hold anything, so read after the last ')'.
  const char* close = std::strrchr(buf, ')');
  if (!close || close >= buf + n) return 0;
  char state = 0;
  long ppid = 0;
  return std::sscanf(close + 1, " %c %ld", &state, &ppid) == 2 ? ppid : 0;
}

}  // namespace

bool in_test_namespace() {
  const auto self = net_namespace("self");
  if (!self) return false;
  // Process 1's namespace is the machine's own.
  if (const auto init = net_namespace("1")) return *self != *init;
  // Process 1 cannot be looked at: the namespace is a test's when a process
  // this one descends from (the test script that ran `ip netns exec`) is
  // outside it.
  for (long pid = parent_of(getpid()), hops = 0; pid > 1 && hops < 64; pid = parent_of(pid), ++hops)
    if (const auto ns = net_namespace(std::to_string(pid)); ns && *ns != *self) return true;
  return false;
}

bool is_local_endpoint(std::string_view endpoint) {
  std::string_view rest = endpoint;
  if (rest.starts_with("ipc://") || rest.starts_with("inproc://")) return true;
  if (rest.starts_with("tcp://")) rest.remove_prefix(6);
  else if (rest.find("://") != std::string_view::npos) return false;
  // HOST:PORT, [V6]:PORT; a TCP endpoint may also name a source ("SRC;HOST:PORT").
  if (const size_t semi = rest.find(';'); semi != std::string_view::npos) rest.remove_prefix(semi + 1);
  std::string host;
  if (rest.starts_with("[")) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return false;
    host = rest.substr(1, close - 1);
  } else {
    const size_t colon = rest.rfind(':');
    host = rest.substr(0, colon == std::string_view::npos ? rest.size() : colon);
  }
  if (host == "localhost" || host == "lo") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

void check_insecure_endpoint(std::string_view endpoint, std::string_view verb) {
  if (is_local_endpoint(endpoint) || in_test_namespace()) return;
  std::string message = "--insecure may not ";
  message += verb;
  message += " ";
  message += endpoint;
  message +=
      ": plain TCP is allowed only on loopback (127.0.0.1) or in a test network namespace; drop --insecure "
      "(pair the devices: 'huddle pair')";
  throw SecurityError(message);
}

std::string sender_key(const zmq::message_t& frame) {
  const char* key = zmq_msg_gets(frame.handle(), "User-Id");
  return key ? std::string(key) : std::string();
}

PeerSpec parse_peer_spec(std::string_view text, const Trust* trust) {
  PeerSpec spec;
  const size_t at = text.rfind('@');
  if (at == std::string_view::npos) {
    spec.address = text;
    return spec;
  }
  const std::string_view who = text.substr(0, at);
  spec.address = text.substr(at + 1);
  if (who.size() == kKeyTextSize) {
    if (!is_key_text(who))
      throw SecurityError("peer '" + std::string(text) + "': '" + std::string(who) + "' is not a public key");
    spec.key = who;
    spec.id = device_id(who);
    return spec;
  }
  try {
    spec.id = parse_device_id(who);
  } catch (const IdentityError& e) {
    throw SecurityError("peer '" + std::string(text) + "': '" + std::string(who) +
                        "' is neither a device id nor a 40-character public key: " + e.what());
  }
  if (trust) {
    if (trust->device_id() == spec.id) spec.key = trust->keys().public_key;
    else if (const auto d = trust->paired().find_by_id(spec.id)) spec.key = d->public_key;
  }
  return spec;
}

}  // namespace huddle::protocol
