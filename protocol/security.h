// How a huddle process secures its TCP sockets (issue 9, DESIGN.md §6):
// a Trust — this device's keypair and the devices it paired with — or, only
// for tests and benchmarks, --insecure (plain TCP), which is refused unless
// every endpoint is on loopback or the process runs in a test network
// namespace.
//
// Trust rules, the same in every command:
// - Processes that share a state directory are one device: they share its
//   keypair and trust each other's key (a node, `huddle ask` and a
//   coordinator of one user on one machine need no pairing).
// - Any other key is trusted only once paired (protocol/paired.h), in the
//   role it was paired in: a node serves the coordinators it paired with; a
//   coordinator sends images only to the nodes it paired with.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "protocol/identity.h"
#include "protocol/paired.h"

namespace huddle::protocol {

// --insecure used where it may not be, or a peer given in a form security
// cannot use; what() names the endpoint and the fix.
class SecurityError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// This device's identity and paired devices, loaded from a state directory.
class Trust {
 public:
  // Loads (creating on first use) the keypair in `state_dir` and its paired
  // file. Throws IdentityError naming the file and the fix (a secret key
  // readable by others, a malformed paired file).
  explicit Trust(std::filesystem::path state_dir);

  const std::filesystem::path& state_dir() const { return state_dir_; }
  const Keypair& keys() const { return keys_; }
  const std::string& device_id() const { return device_id_; }
  PairedKeys& paired() { return paired_; }
  const PairedKeys& paired() const { return paired_; }

  // Whether `key` (Z85) may act toward us as `role`: our own key, or a device
  // paired in that role.
  bool trusts(std::string_view key, PeerRole role) const;

  // Reads the paired file again if another process changed it (`huddle pair`,
  // `huddle unpair`); true if it did. A damaged file trusts no device until
  // it is fixed (the error is returned, for the caller to log once).
  bool reload(std::string* error = nullptr);

 private:
  std::filesystem::path state_dir_;
  Keypair keys_;
  std::string device_id_;
  PairedKeys paired_;
};

// What the commands share: --state-dir DIR and --insecure.
struct SecurityArgs {
  bool insecure = false;
  std::filesystem::path state_dir;  // empty: default_state_dir()
};

// The options' help lines.
extern const char* const kSecurityHelp;

// Reads argv[*i] (and its value) into `args` when it is --state-dir or
// --insecure. Returns 1 if it was (advancing *i past a value), 0 if it is
// another option, -1 after printing a usage error.
int parse_security_arg(const char* command, int argc, char** argv, int* i, SecurityArgs* args);

// The Trust of `args` (nullptr with --insecure, after printing the warning
// every insecure start prints). Throws IdentityError.
std::shared_ptr<Trust> open_trust(const char* command, const SecurityArgs& args);

// Whether this process runs in a network namespace other than that of
// process 1 (a namespace a test made with `ip netns`).
bool in_test_namespace();
// Whether `endpoint` ("tcp://HOST:PORT", "HOST:PORT", "ipc://...",
// "inproc://...") stays on this host: a loopback address (127.0.0.0/8, ::1,
// localhost) or not TCP at all.
bool is_local_endpoint(std::string_view endpoint);
// Throws SecurityError when --insecure may not use `endpoint` ("bind" or
// "connect to"): it is not local and this is not a test namespace.
void check_insecure_endpoint(std::string_view endpoint, std::string_view verb);

// The CURVE key (Z85) of the peer that sent `frame`: the "User-Id" property
// the ZAP handler set; empty for a frame from a socket without CURVE.
std::string sender_key(const zmq::message_t& frame);

// A peer named by key: "KEY@HOST:PORT" (a 40-character Z85 public key) or
// "ID@HOST:PORT" (a paired device id) or plain "HOST:PORT" (this device).
struct PeerSpec {
  std::string address;     // "HOST:PORT"
  std::string key;         // Z85; empty: unknown (an id not paired, or none given)
  std::string id;          // the device id given, canonical; empty if none
};
// Splits `text`; throws SecurityError for a key or id that is malformed.
// The key of an id is looked up in `trust` (left empty when not paired).
PeerSpec parse_peer_spec(std::string_view text, const Trust* trust);

}  // namespace huddle::protocol
