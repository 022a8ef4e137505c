#include "discovery/roster.h"

#include <vector>

namespace huddle::discovery {

void Roster::report(EventKind kind, const Service& service) { emit_(Event{kind, service}); }

void Roster::resolved(const InstanceKey& key, const Service& service) {
  // One device may run several nodes (a task each) under one id: a node is
  // its id and task, and its key: a service announcing another's id with a
  // key of its own (an impostor) is another node, reported on its own.
  std::string node_key = service.id.empty() ? "name:" : "id:";
  node_key += service.id.empty() ? service.instance : service.id + "/" + service.task;
  if (!service.ck.empty()) node_key += "/" + service.ck;
  const auto known = instances_.find(key);
  if (known != instances_.end() && known->second.node != node_key) removed(key);
  instances_[key] = Instance{node_key, service, false};
  Node& node = nodes_[node_key];
  const bool joins = node.instances.empty();
  node.instances.insert(key);
  if (joins) {
    node.reporting = key;
    node.reported = service;
    report(EventKind::join, service);
  } else if (node.reporting == key && !(node.reported == service)) {
    node.reported = service;
    report(EventKind::update, service);
  }
}

void Roster::removed(const InstanceKey& key) {
  const auto it = instances_.find(key);
  if (it == instances_.end()) return;
  const auto node_it = nodes_.find(it->second.node);
  instances_.erase(it);
  if (node_it == nodes_.end()) return;
  Node& node = node_it->second;
  node.instances.erase(key);
  if (node.instances.empty()) {
    const Service last = node.reported;
    nodes_.erase(node_it);
    report(EventKind::leave, last);
    return;
  }
  if (!(node.reporting == key)) return;
  node.reporting = *node.instances.begin();
  const Service& next = instances_.at(node.reporting).service;
  if (next == node.reported) return;
  node.reported = next;
  report(EventKind::update, next);
}

void Roster::mark_stale() {
  for (auto& [key, instance] : instances_) instance.stale = true;
}

void Roster::listed(const InstanceKey& key) {
  const auto it = instances_.find(key);
  if (it != instances_.end()) it->second.stale = false;
}

void Roster::remove_stale() {
  std::vector<InstanceKey> stale;
  for (const auto& [key, instance] : instances_)
    if (instance.stale) stale.push_back(key);
  for (const InstanceKey& key : stale) removed(key);
}

}  // namespace huddle::discovery
