// Discovery (DESIGN.md §7): nodes announce themselves as `_huddle._tcp`
// services through Avahi's client API; coordinators browse for them. A static
// peer list (`--peer host:port`) stands in where multicast is blocked.
// Liveness never comes from here (a host that dies without a goodbye stays
// listed for minutes): the coordinator's heartbeats decide who is alive.
//
// Threads: Publisher and Browser each run one Avahi threaded poll; the
// Browser's callback runs on that thread and must not block. Every Avahi call
// happens on that thread; the Log and event callbacks run on it (with the
// poll's lock held), so they must not call the Browser nor destroy either.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace huddle::discovery {

constexpr const char* kServiceType = "_huddle._tcp";
// The TXT keys' version; `txtvers=1` is always the first TXT string.
constexpr int kTxtVersion = 1;
// Largest TXT record a node publishes (all strings with their length bytes).
constexpr size_t kMaxTxtBytes = 200;
// Longest TXT key.
constexpr size_t kMaxTxtKey = 9;
// Longest service instance name (a DNS label), in bytes.
constexpr size_t kMaxInstanceBytes = 63;

// What a node announces. `id` is the device id (stable across restarts and
// renames: state is keyed on it, never on the instance name).
struct Announcement {
  std::string instance;  // the service instance name (default: "huddle <task> on <host>")
  uint16_t port = 0;     // the node's ZeroMQ port
  std::string id, task, model, proto = "1", ck;
  std::string state = "warming";  // warming | ready | stopping
};

// The TXT strings of `a`, "txtvers=1" first, then id, task, model, proto, ck
// (when set), state. Throws std::invalid_argument when a value holds '\0' or
// the record would exceed kMaxTxtBytes (it names the key and the size).
std::vector<std::string> txt_record(const Announcement& a);

// Reads TXT strings (outside data: any bytes) into key -> value. Keys are
// matched case-insensitively and stored lower-case; a string without '='
// is a key with an empty value; keys longer than kMaxTxtKey, empty keys and
// repeated keys (after the first) are ignored. Never throws.
std::map<std::string, std::string> parse_txt(const std::vector<std::string>& strings);

// A node as a browser resolved it (or as a static peer names it).
struct Service {
  std::string instance;  // the service name (empty for a static peer)
  std::string host;      // the host name Avahi resolved ("h1.local"), or the peer's host
  std::string address;   // an IPv4 address, dotted
  uint16_t port = 0;
  std::string id, task, model, proto, ck, state;  // from the TXT record (empty if absent)
  bool static_peer = false;
  // "tcp://ADDRESS:PORT"
  std::string endpoint() const;
  bool operator==(const Service&) const = default;
};

// Parses "host:port" (a name or IPv4 address, port 1..65535) into a static
// peer; the host name is resolved with getaddrinfo (IPv4). Throws
// std::invalid_argument naming the problem, as "--peer 'HOST_PORT': what is
// wrong" (a command prints it after "huddle: ").
Service static_peer(const std::string& host_port);

// Writes one line to the program's log (stderr by default).
using Log = std::function<void(const std::string&)>;

// Announces one service while it lives; withdraws it when destroyed. When no
// avahi-daemon is reachable it logs that once and keeps waiting for one
// (AVAHI_CLIENT_NO_FAIL); when the daemon restarts it publishes again; on a
// name collision it takes Avahi's alternative name and publishes again.
// The constructor and set_state never wait for the daemon (the publisher's
// thread talks to it); the destructor makes one call to it, withdrawing.
class Publisher {
 public:
  // Throws std::invalid_argument for an announcement txt_record refuses, an
  // instance name that is empty or over 63 bytes, or port 0.
  Publisher(Announcement announcement, Log log = {});
  ~Publisher();
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;
  // Updates the TXT record's state in place (no withdraw/re-announce), soon,
  // on the publisher's thread; the same state again does nothing. Throws as
  // txt_record does. Callable from any thread, `log` included.
  void set_state(const std::string& state);
  // The instance name in use now (after a collision it differs from the one asked for).
  std::string instance() const;
  // True once the daemon confirmed the service (AVAHI_ENTRY_GROUP_ESTABLISHED).
  bool established() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

enum class EventKind { join, update, leave };

// "join", "update", "leave".
const char* kind_name(EventKind kind);

struct Event {
  EventKind kind;
  Service service;
};

// Browses `_huddle._tcp`, resolves with AVAHI_PROTO_INET and reports each
// node once per `id` and `task` (the same node seen on several interfaces or
// protocols is one node; one device may run a node per task under one id):
// join when first resolved, update when its address, port or TXT
// changes, leave when its last instance is withdrawn. A service without an
// `id` is keyed on its instance name. When no avahi-daemon is reachable it
// logs that once and keeps waiting for one; the nodes it knew stay listed
// meanwhile, and those the daemon no longer lists once it is back (at its
// first "all for now") leave then.
class Browser {
 public:
  // `on_event` runs on the browser's own thread with the browser's lock held:
  // it must not call this Browser (nor destroy it) and must not block. An
  // exception it throws is logged and dropped.
  Browser(std::function<void(const Event&)> on_event, Log log = {});
  ~Browser();
  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;
  // False while no avahi-daemon is reachable.
  bool connected() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace huddle::discovery
