// The Browser's bookkeeping apart from Avahi, so that it can be tested alone:
// which browsed instances resolve to which node (keyed on the TXT `id`,
// `task` and `ck`: one device may serve several tasks under one id, and a
// service announcing another's id with its own key is another node), and
// the join, update and leave events that follow (discovery.h, Browser).
#pragma once

#include <compare>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "discovery/discovery.h"

namespace huddle::discovery {

// One service instance as a browser lists it: the same service seen on two
// interfaces or over two protocols is two instances.
struct InstanceKey {
  int interface = 0;
  int protocol = 0;
  std::string name, domain;
  auto operator<=>(const InstanceKey&) const = default;
};

class Roster {
 public:
  explicit Roster(std::function<void(const Event&)> emit) : emit_(std::move(emit)) {}

  // `key` resolved (again) to `service`: its node joins with its first
  // instance; the node is updated when the instance it reports changed. An
  // instance whose id changed leaves its old node first.
  void resolved(const InstanceKey& key, const Service& service);
  // `key` was withdrawn: its node leaves with its last instance; another
  // instance takes over the reporting otherwise (an update if it differs).
  void removed(const InstanceKey& key);
  // The daemon went away: every instance is kept, marked stale.
  void mark_stale();
  // `key` is listed again: no longer stale.
  void listed(const InstanceKey& key);
  // The listing is complete: the instances still stale are removed.
  void remove_stale();
  // The nodes known now, by node key.
  size_t nodes() const { return nodes_.size(); }

 private:
  struct Instance {
    std::string node;  // "id:ID/TASK[/CK]", or "name:INSTANCE" for a service without an id
    Service service;
    bool stale = false;
  };
  struct Node {
    std::set<InstanceKey> instances;
    InstanceKey reporting;  // the instance whose service the events carry
    Service reported;
  };
  void report(EventKind kind, const Service& service);

  std::function<void(const Event&)> emit_;
  std::map<InstanceKey, Instance> instances_;
  std::map<std::string, Node> nodes_;
};

}  // namespace huddle::discovery
