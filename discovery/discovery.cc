#include "discovery/discovery.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/thread-watch.h>
#include <avahi-common/timeval.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <utility>

#include "discovery/roster.h"

namespace huddle::discovery {

namespace {

// How long to wait before asking for a daemon again when even D-Bus is
// missing (with D-Bus, the client hears the daemon arrive by itself).
constexpr int kRetrySeconds = 5;
// How long to wait before resolving an instance again that failed to resolve.
constexpr int kResolveRetrySeconds = 10;

void add_field(std::vector<std::string>& out, const char* key, const std::string& value) {
  if (value.find('\0') != std::string::npos)
    throw std::invalid_argument(std::string("TXT value of '") + key + "' holds a NUL byte");
  std::string s = key;
  s += '=';
  s += value;
  out.push_back(std::move(s));
}

std::string error_text(int error) { return avahi_strerror(error); }

using StringList = std::unique_ptr<AvahiStringList, decltype(&avahi_string_list_free)>;

// A list to publish is kept last string first (adding prepends) and reversed
// on the wire: the strings are added in wire order. (Checked on the wire.)
StringList string_list(const std::vector<std::string>& strings) {
  AvahiStringList* list = nullptr;
  for (const std::string& s : strings) {
    AvahiStringList* longer =
        avahi_string_list_add_arbitrary(list, reinterpret_cast<const uint8_t*>(s.data()), s.size());
    if (!longer) {
      avahi_string_list_free(list);
      throw std::bad_alloc();
    }
    list = longer;
  }
  return StringList(list, &avahi_string_list_free);
}

// The strings of a resolved TXT record, in wire order: a resolver's list
// holds them first string first, unlike a list to publish (checked on the
// wire; avahi_string_list_to_string, as in avahi-browse, shows them reversed).
std::vector<std::string> strings_of(AvahiStringList* list) {
  std::vector<std::string> out;
  for (AvahiStringList* l = list; l; l = avahi_string_list_get_next(l))
    out.emplace_back(reinterpret_cast<const char*>(avahi_string_list_get_text(l)),
                     avahi_string_list_get_size(l));
  return out;
}

// One Avahi client on its own threaded poll, made again whenever the daemon
// goes away. Everything but the constructor and shut_down() runs on the
// poll's thread. `on_state` runs for each server state (running,
// registering, collision); `on_lost` when the client and every object made
// with it are about to go (their pointers must be forgotten).
class Connection {
 public:
  struct Hooks {
    std::function<void(AvahiClient*, AvahiClientState)> on_state;
    std::function<void()> on_lost;
  };

  // `waiting` ends the line logged when no daemon is reachable.
  Connection(Log log, std::string waiting, Hooks hooks)
      : log_(std::move(log)), waiting_(std::move(waiting)), hooks_(std::move(hooks)) {
    poll_ = avahi_threaded_poll_new();
    if (!poll_) throw std::bad_alloc();
    const AvahiPoll* api = avahi_threaded_poll_get(poll_);
    // Connecting can block on D-Bus: it happens on the poll's thread.
    timeval now{};
    retry_ = api->timeout_new(api, avahi_elapse_time(&now, 0, 0), &Connection::on_retry, this);
    if (!retry_) {
      avahi_threaded_poll_free(poll_);
      throw std::bad_alloc();
    }
  }
  // Starts the thread: the hooks may run from now on.
  void start() {
    if (avahi_threaded_poll_start(poll_) < 0)
      throw std::runtime_error("cannot start the Avahi event loop thread");
  }
  ~Connection() { shut_down({}); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Stops the thread, runs `before_free` (nothing else runs any more) with
  // the client (null if there is none), frees the client, then the poll.
  void shut_down(const std::function<void(AvahiClient*)>& before_free) {
    if (!poll_) return;
    avahi_threaded_poll_stop(poll_);
    if (before_free) before_free(client_);
    if (client_) avahi_client_free(client_);
    client_ = nullptr;
    avahi_threaded_poll_free(poll_);  // frees the timeouts left
    poll_ = nullptr;
  }

  const AvahiPoll* api() const { return avahi_threaded_poll_get(poll_); }
  AvahiClient* client() const { return client_; }
  void log(const std::string& line) const {
    if (log_) log_(line);
  }

 private:
  static void on_retry(AvahiTimeout*, void* self) { static_cast<Connection*>(self)->connect(); }

  static void on_client(AvahiClient* client, AvahiClientState state, void* self) {
    static_cast<Connection*>(self)->client_state(client, state);
  }

  void connect() {
    api()->timeout_update(retry_, nullptr);
    if (client_) {
      hooks_.on_lost();
      avahi_client_free(client_);
      client_ = nullptr;
    }
    int error = 0;
    // The first callbacks come from inside avahi_client_new: client_ is set there.
    AvahiClient* client = avahi_client_new(api(), AVAHI_CLIENT_NO_FAIL, &Connection::on_client, this, &error);
    if (!client) {
      client_ = nullptr;  // (a state callback may have seen it; it ran no hook)
      unreachable(error_text(error));
      schedule(kRetrySeconds);
    }
  }

  void schedule(int seconds) {
    timeval when{};
    api()->timeout_update(retry_, avahi_elapse_time(&when, 1000 * seconds, 0));
  }

  void client_state(AvahiClient* client, AvahiClientState state) {
    client_ = client;
    switch (state) {
      case AVAHI_CLIENT_S_RUNNING:
        if (said_unreachable_) log("avahi-daemon reachable again");
        said_unreachable_ = false;
        [[fallthrough]];
      case AVAHI_CLIENT_S_REGISTERING:
      case AVAHI_CLIENT_S_COLLISION:
        hooks_.on_state(client, state);
        break;
      case AVAHI_CLIENT_CONNECTING:
        unreachable("it is not running");
        break;
      case AVAHI_CLIENT_FAILURE: {
        // The daemon went away (or D-Bus did): this client is dead. Make a
        // new one from the loop, not from inside this client's own callback.
        const int error = avahi_client_errno(client);
        hooks_.on_lost();
        unreachable(error_text(error));
        schedule(error == AVAHI_ERR_DISCONNECTED ? 0 : kRetrySeconds);
        break;
      }
    }
  }

  void unreachable(const std::string& why) {
    if (said_unreachable_) return;
    said_unreachable_ = true;
    log("no avahi-daemon reachable (" + why + "); " + waiting_);
  }

  Log log_;
  std::string waiting_;
  Hooks hooks_;
  AvahiThreadedPoll* poll_ = nullptr;
  AvahiClient* client_ = nullptr;
  AvahiTimeout* retry_ = nullptr;
  bool said_unreachable_ = false;
};

// Gives `impl` (a Publisher's or Browser's) its connection, runs `setup`
// on its poll (false: out of memory), and starts it: its on_state and on_lost
// run on the connection's thread from then on.
template <typename Impl>
void connect(Impl& impl, const char* waiting, const std::function<bool(const AvahiPoll*)>& setup = {}) {
  Impl* p = &impl;
  impl.connection = std::make_unique<Connection>(
      impl.log, waiting,
      Connection::Hooks{[p](AvahiClient* c, AvahiClientState s) { p->on_state(c, s); },
                        [p] { p->on_lost(); }});
  if (setup && !setup(impl.connection->api())) throw std::bad_alloc();
  impl.connection->start();
}

}  // namespace

const char* kind_name(EventKind kind) {
  switch (kind) {
    case EventKind::join:
      return "join";
    case EventKind::update:
      return "update";
    case EventKind::leave:
      return "leave";
  }
  return "?";
}

std::vector<std::string> txt_record(const Announcement& a) {
  std::vector<std::string> out;
  out.push_back("txtvers=" + std::to_string(kTxtVersion));
  add_field(out, "id", a.id);
  add_field(out, "task", a.task);
  add_field(out, "model", a.model);
  add_field(out, "proto", a.proto);
  if (!a.ck.empty()) add_field(out, "ck", a.ck);
  add_field(out, "state", a.state);
  size_t bytes = 0;
  const std::string* longest = &out.front();
  for (const std::string& s : out) {
    bytes += 1 + s.size();
    if (s.size() > longest->size()) longest = &s;
  }
  if (bytes > kMaxTxtBytes) {
    const std::string key = longest->substr(0, longest->find('='));
    throw std::invalid_argument("TXT record of " + std::to_string(bytes) + " bytes, over the " +
                                std::to_string(kMaxTxtBytes) + " a node may publish (the longest string: '" +
                                key + "', " + std::to_string(longest->size()) + " bytes)");
  }
  return out;
}

std::map<std::string, std::string> parse_txt(const std::vector<std::string>& strings) {
  std::map<std::string, std::string> out;
  for (const std::string& s : strings) {
    const size_t eq = s.find('=');
    std::string key = s.substr(0, eq);
    if (key.empty() || key.size() > kMaxTxtKey) continue;
    for (char& c : key)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    out.emplace(std::move(key), eq == std::string::npos ? std::string() : s.substr(eq + 1));
  }
  return out;
}

std::string Service::endpoint() const {
  std::string out = "tcp://";
  out += address;
  out += ':';
  out += std::to_string(port);
  return out;
}

Service static_peer(const std::string& host_port) {
  std::string what = "--peer '";
  what += host_port;
  what += "': ";
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument(what + "needs HOST:PORT");
  const std::string host = host_port.substr(0, colon), port = host_port.substr(colon + 1);
  if (host.empty()) throw std::invalid_argument(what + "the host is empty");
  if (host.find(':') != std::string::npos)
    throw std::invalid_argument(what + "the host has a ':' (IPv6 is not supported; HOST:PORT)");
  long number = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || number > 65535) {
      number = -1;
      break;
    }
    number = number * 10 + (c - '0');
  }
  if (port.empty() || number < 1 || number > 65535)
    throw std::invalid_argument(what + "port must be 1..65535");
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0 || !found)
    throw std::invalid_argument(what + "cannot resolve '" + host + "' to an IPv4 address (" +
                                gai_strerror(rc) + ")");
  char text[INET_ADDRSTRLEN] = {};
  inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(found->ai_addr)->sin_addr, text, sizeof text);
  freeaddrinfo(found);
  Service s;
  s.host = host;
  s.address = text;
  s.port = static_cast<uint16_t>(number);
  s.static_peer = true;
  return s;
}

// ---- Publisher ----

struct Publisher::Impl {
  Announcement announcement;  // the instance name changes on a collision
  Log log;
  AvahiEntryGroup* group = nullptr;
  bool added = false;  // the service is in the group
  std::atomic<bool> established{false};
  mutable std::mutex name_mutex;  // announcement.instance, read by instance()
  // set_state() hands the state over through `wanted` and wakes the poll's
  // thread through an eventfd: it never waits for that thread (which may be
  // in a call to the daemon) nor for the daemon.
  Announcement asked;  // what the constructor was given: set_state checks against it
  std::mutex wanted_mutex;
  std::string wanted;
  int wake_fd = -1;
  std::unique_ptr<Connection> connection;

  ~Impl() {
    if (wake_fd >= 0) close(wake_fd);
  }

  void say(const std::string& line) const {
    if (log) log(line);
  }

  std::string name() const {
    std::lock_guard lock(name_mutex);
    return announcement.instance;
  }

  static void on_wake(AvahiWatch*, int fd, AvahiWatchEvent, void* self) {
    uint64_t count = 0;
    (void)!read(fd, &count, sizeof count);
    Impl& impl = *static_cast<Impl*>(self);
    std::string state;
    {
      std::lock_guard lock(impl.wanted_mutex);
      state = impl.wanted;
    }
    impl.apply_state(state);
  }

  void apply_state(const std::string& state) {
    if (state == announcement.state) return;
    announcement.state = state;
    if (!group || !added) return;  // published with this state when the daemon is back
    const StringList txt = string_list(txt_record(announcement));
    const int rc = avahi_entry_group_update_service_txt_strlst(
        group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, AvahiPublishFlags(0), announcement.instance.c_str(),
        kServiceType, nullptr, txt.get());
    if (rc < 0) say("cannot update the announced state to '" + state + "': " + error_text(rc));
  }

  void on_lost() {
    // The client is disconnected: freeing makes no call to the daemon.
    if (group) avahi_entry_group_free(group);
    group = nullptr;
    added = false;
    established = false;
  }

  void on_state(AvahiClient* client, AvahiClientState state) {
    if (state == AVAHI_CLIENT_S_RUNNING) return publish(client);
    // The daemon is (re)registering its host name: records wait until it runs.
    if (group) avahi_entry_group_reset(group);
    added = false;
    established = false;
  }

  void rename() {
    char* next = avahi_alternative_service_name(announcement.instance.c_str());
    if (!next) throw std::bad_alloc();
    const std::string old = announcement.instance;
    {
      std::lock_guard lock(name_mutex);
      announcement.instance = next;
    }
    avahi_free(next);
    say("service name '" + old + "' is taken: announcing as '" + announcement.instance + "'");
  }

  void publish(AvahiClient* client) {
    if (added) return;
    if (!group && !(group = avahi_entry_group_new(client, &Impl::on_group, this))) {
      say("cannot announce: " + error_text(avahi_client_errno(client)));
      return;
    }
    const StringList txt = string_list(txt_record(announcement));
    int rc = 0;
    // A name taken on this host fails at once; one taken elsewhere on the
    // network comes back as the group's collision state.
    for (int attempt = 0; attempt < 100; ++attempt) {
      rc = avahi_entry_group_add_service_strlst(group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC,
                                                AvahiPublishFlags(0), announcement.instance.c_str(),
                                                kServiceType, nullptr, nullptr, announcement.port, txt.get());
      if (rc != AVAHI_ERR_COLLISION) break;
      // Records added before the one that collided stay in the group: drop them.
      avahi_entry_group_reset(group);
      rename();
    }
    if (rc >= 0) rc = avahi_entry_group_commit(group);
    if (rc < 0) {
      say("cannot announce '" + announcement.instance + "': " + error_text(rc));
      avahi_entry_group_reset(group);
      return;
    }
    added = true;
  }

  static void on_group(AvahiEntryGroup* g, AvahiEntryGroupState state, void* self) {
    static_cast<Impl*>(self)->group_state(g, state);
  }

  void group_state(AvahiEntryGroup* g, AvahiEntryGroupState state) {
    switch (state) {
      case AVAHI_ENTRY_GROUP_ESTABLISHED:
        established = true;
        say("announced as '" + announcement.instance + "' (" + kServiceType + ", port " +
            std::to_string(announcement.port) + ")");
        break;
      case AVAHI_ENTRY_GROUP_COLLISION:
        established = false;
        rename();
        avahi_entry_group_reset(g);
        added = false;
        publish(avahi_entry_group_get_client(g));
        break;
      case AVAHI_ENTRY_GROUP_FAILURE:
        established = false;
        say("announcement failed: " + error_text(avahi_client_errno(avahi_entry_group_get_client(g))));
        break;
      case AVAHI_ENTRY_GROUP_UNCOMMITED:
      case AVAHI_ENTRY_GROUP_REGISTERING:
        established = false;
        break;
    }
  }
};

Publisher::Publisher(Announcement announcement, Log log) : impl_(std::make_unique<Impl>()) {
  txt_record(announcement);  // refuses a record it could not publish
  if (announcement.instance.empty() || announcement.instance.size() > kMaxInstanceBytes)
    throw std::invalid_argument("service name '" + announcement.instance + "' must be 1 to " +
                                std::to_string(kMaxInstanceBytes) + " bytes");
  if (announcement.port == 0) throw std::invalid_argument("cannot announce port 0");
  impl_->asked = announcement;
  impl_->wanted = announcement.state;
  impl_->announcement = std::move(announcement);
  impl_->log = std::move(log);
  impl_->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl_->wake_fd < 0)
    throw std::runtime_error(std::string("cannot make an eventfd: ") + std::strerror(errno));
  connect(*impl_, "not announced until one is", [impl = impl_.get()](const AvahiPoll* api) {
    return api->watch_new(api, impl->wake_fd, AVAHI_WATCH_IN, &Impl::on_wake, impl) != nullptr;
  });
}

Publisher::~Publisher() {
  // The thread stops first; then the group goes (the daemon withdraws the
  // service, saying goodbye), then the client.
  impl_->connection->shut_down([this](AvahiClient*) {
    if (impl_->group) avahi_entry_group_free(impl_->group);
    impl_->group = nullptr;
  });
}

void Publisher::set_state(const std::string& state) {
  Announcement next = impl_->asked;
  next.state = state;
  txt_record(next);  // throws for a state that cannot be published
  {
    std::lock_guard lock(impl_->wanted_mutex);
    impl_->wanted = state;
  }
  const uint64_t one = 1;
  (void)!write(impl_->wake_fd, &one, sizeof one);  // a full counter already wakes the thread
}

std::string Publisher::instance() const { return impl_->name(); }

bool Publisher::established() const { return impl_->established; }

// ---- Browser ----

struct Browser::Impl {
  // One instance being resolved; its resolver lives as long as the instance
  // is listed (it reports TXT changes as new results).
  struct Resolving {
    Impl* impl = nullptr;
    InstanceKey key;
    AvahiServiceResolver* resolver = nullptr;
    AvahiTimeout* retry = nullptr;
    bool said_failure = false;  // a failure to resolve is logged once per instance
  };

  std::function<void(const Event&)> on_event;
  Log log;
  Roster roster{[this](const Event& e) { deliver(e); }};
  AvahiServiceBrowser* browser = nullptr;
  std::map<InstanceKey, std::unique_ptr<Resolving>> resolving;
  std::atomic<bool> connected{false};
  std::unique_ptr<Connection> connection;

  void say(const std::string& line) const {
    if (log) log(line);
  }

  void deliver(const Event& e) {
    try {
      on_event(e);
    } catch (const std::exception& ex) {
      say(std::string("discovery event handler failed: ") + ex.what());
    } catch (...) {
      say("discovery event handler failed");
    }
  }

  void on_lost() {
    // The client is disconnected: freeing makes no call to the daemon.
    connected = false;
    if (browser) avahi_service_browser_free(browser);
    browser = nullptr;
    while (!resolving.empty()) forget(resolving.begin()->first);
    roster.mark_stale();
  }

  void on_state(AvahiClient* client, AvahiClientState state) {
    if (state != AVAHI_CLIENT_S_RUNNING || browser) return;
    connected = true;
    browser = avahi_service_browser_new(client, AVAHI_IF_UNSPEC, AVAHI_PROTO_INET, kServiceType, nullptr,
                                        AvahiLookupFlags(0), &Impl::on_browse, this);
    if (!browser)
      say("cannot browse " + std::string(kServiceType) + ": " + error_text(avahi_client_errno(client)));
  }

  static void on_browse(AvahiServiceBrowser*, AvahiIfIndex interface, AvahiProtocol protocol,
                        AvahiBrowserEvent event, const char* name, const char*, const char* domain,
                        AvahiLookupResultFlags, void* self) {
    Impl& impl = *static_cast<Impl*>(self);
    switch (event) {
      case AVAHI_BROWSER_NEW:
      case AVAHI_BROWSER_REMOVE: {
        InstanceKey key{interface, protocol, name ? name : "", domain ? domain : ""};
        if (event == AVAHI_BROWSER_NEW) return impl.listed(std::move(key));
        impl.forget(key);
        impl.roster.removed(key);
        break;
      }
      case AVAHI_BROWSER_ALL_FOR_NOW:
        impl.roster.remove_stale();
        break;
      case AVAHI_BROWSER_CACHE_EXHAUSTED:
        break;
      case AVAHI_BROWSER_FAILURE:
        impl.say("browsing " + std::string(kServiceType) +
                 " failed: " + error_text(avahi_client_errno(impl.connection->client())));
        break;
    }
  }

  void listed(InstanceKey key) {
    roster.listed(key);
    if (resolving.count(key)) return;
    auto r = std::make_unique<Resolving>();
    r->impl = this;
    r->key = std::move(key);
    resolve(*r);
    const InstanceKey& k = r->key;
    resolving.emplace(k, std::move(r));
  }

  void resolve(Resolving& r) {
    AvahiClient* client = connection->client();
    r.resolver = avahi_service_resolver_new(client, r.key.interface, AVAHI_PROTO_INET, r.key.name.c_str(),
                                            kServiceType, r.key.domain.c_str(), AVAHI_PROTO_INET,
                                            AvahiLookupFlags(0), &Impl::on_resolve, &r);
    if (!r.resolver) {
      say("cannot resolve '" + r.key.name + "': " + error_text(avahi_client_errno(client)));
      retry_later(r);
    }
  }

  void retry_later(Resolving& r) {
    timeval when{};
    avahi_elapse_time(&when, 1000 * kResolveRetrySeconds, 0);
    const AvahiPoll* api = connection->api();
    if (r.retry)
      api->timeout_update(r.retry, &when);
    else
      r.retry = api->timeout_new(api, &when, &Impl::on_retry, &r);
  }

  static void on_retry(AvahiTimeout* t, void* resolving) {
    Resolving& r = *static_cast<Resolving*>(resolving);
    r.impl->connection->api()->timeout_update(t, nullptr);
    if (!r.resolver) r.impl->resolve(r);
  }

  void forget(const InstanceKey& key) {
    const auto it = resolving.find(key);
    if (it == resolving.end()) return;
    if (it->second->resolver) avahi_service_resolver_free(it->second->resolver);
    if (it->second->retry) connection->api()->timeout_free(it->second->retry);
    resolving.erase(it);
  }

  static void on_resolve(AvahiServiceResolver* resolver, AvahiIfIndex, AvahiProtocol,
                         AvahiResolverEvent event, const char* name, const char*, const char*,
                         const char* host, const AvahiAddress* address, uint16_t port, AvahiStringList* txt,
                         AvahiLookupResultFlags, void* resolving) {
    Resolving& r = *static_cast<Resolving*>(resolving);
    Impl& impl = *r.impl;
    if (event == AVAHI_RESOLVER_FAILURE) {
      // Usually a timeout: the host does not answer (yet). Try again later
      // while the instance is listed.
      if (!std::exchange(r.said_failure, true))
        impl.say("cannot resolve '" + r.key.name + "' (trying again every " +
                 std::to_string(kResolveRetrySeconds) +
                 " s): " + error_text(avahi_client_errno(avahi_service_resolver_get_client(resolver))));
      avahi_service_resolver_free(resolver);
      r.resolver = nullptr;
      impl.retry_later(r);
      return;
    }
    if (!address || address->proto != AVAHI_PROTO_INET) return;
    char text[AVAHI_ADDRESS_STR_MAX] = {};
    avahi_address_snprint(text, sizeof text, address);
    Service s;
    s.instance = name ? name : "";
    s.host = host ? host : "";
    s.address = text;
    s.port = port;
    std::map<std::string, std::string> fields = parse_txt(strings_of(txt));
    s.id = std::move(fields["id"]);
    s.task = std::move(fields["task"]);
    s.model = std::move(fields["model"]);
    s.proto = std::move(fields["proto"]);
    s.ck = std::move(fields["ck"]);
    s.state = std::move(fields["state"]);
    impl.roster.resolved(r.key, s);
  }
};

Browser::Browser(std::function<void(const Event&)> on_event, Log log) : impl_(std::make_unique<Impl>()) {
  impl_->on_event = std::move(on_event);
  impl_->log = std::move(log);
  connect(*impl_, "not browsing until one is");
}

Browser::~Browser() { impl_->connection->shut_down({}); }

bool Browser::connected() const { return impl_->connected; }

}  // namespace huddle::discovery
