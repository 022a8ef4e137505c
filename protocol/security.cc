#include "protocol/security.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstring>

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

bool in_test_namespace() {
  struct stat self{}, init{};
  if (stat("/proc/self/ns/net", &self) != 0) return false;
  // Not allowed to look at process 1's namespace (another user's): not a
  // namespace this user made for a test either way.
  if (stat("/proc/1/ns/net", &init) != 0) return false;
  return self.st_ino != init.st_ino || self.st_dev != init.st_dev;
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
