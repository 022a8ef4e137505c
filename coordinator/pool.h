// The coordinator's pool (DESIGN.md §3, §6, §9): the nodes it knows, which of
// them are in rotation, and the fan-out of each image to the tasks it needs.
//
// Membership. Nodes come from discovery (mDNS join/update/leave events,
// keyed on the node's id) and from static peers (`--peer host:port`). Each
// node gets one DEALER; the pool asks every node for its status every
// status_interval and takes a node into rotation when its status says ready.
// A node leaves rotation at once when its TCP connection closes (a socket
// monitor), when it has been silent for lost_after (a crashed host, which
// mDNS keeps listing for minutes), or when mDNS withdraws it while it is not
// answering (a withdrawn node that still answers its status requests is
// kept while it does: a restarted avahi-daemon forgets live services for a
// while; a stopping node says `stopping`). libzmq keeps reconnecting, and a
// node that answers again is taken back; a lost node no longer announced is
// forgotten.
//
// Fan-out. For each frame, each task asked for goes to one node serving it:
// the least loaded in rotation (requests in flight from this pool, then the
// least recently used, so idle nodes share frames evenly); with `ensemble`,
// to every node of the task. The image frame is the caller's bytes, sent to
// each node without copying or re-encoding. When detect and colour are both
// asked, the colour node is asked a second time, with the detected boxes as
// regions, as soon as the detector answers. A request whose node is lost or
// answers `overloaded` is retried once on another node of the same task, if
// there is one and the deadline allows. At the frame's deadline (or as soon
// as everything answered) the answers are fused (scene.h) and each task that
// did not answer is reported with why: timeout, nodeLost, overloaded, error,
// noNode, badInput, expired.
//
// Threads: one thread of the pool's own owns every socket; the methods below
// are safe to call from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/scene.h"
#include "discovery/discovery.h"
#include "protocol/security.h"

namespace huddle::coordinator {

struct PoolOptions {
  bool mdns = true;                     // browse _huddle._tcp through Avahi
  std::vector<std::string> peers;       // static peers, "[KEY@|ID@]host:port" (checked by the constructor)
  // Security (issue 9): with a Trust every link is CURVE, and the pool talks
  // only to this device's own nodes (same state directory) and the nodes
  // paired with it; a node announcing another key (or none) is listed as
  // `unpaired` and never connected to. The paired file is read again every
  // 200 ms: a node `huddle unpair` removes is dropped within that (its
  // requests in flight fail as nodeLost). Null: plain TCP (--insecure).
  std::shared_ptr<protocol::Trust> trust;
  std::chrono::milliseconds status_interval{500};  // status request to every node
  std::chrono::milliseconds lost_after{2000};      // silence that takes a node out of rotation
  size_t max_message_bytes = 64 << 20;  // largest answer read
  // One line per membership change; empty: stderr. Discovery's own messages
  // (no avahi-daemon reachable) always go to stderr.
  discovery::Log log;
};

// One image to recognise.
struct Frame {
  std::shared_ptr<const std::string> image;  // a PNG or JPEG file's bytes, sent as they are
  std::vector<std::string> tasks;            // empty: every task in rotation now
  uint32_t top_k = 5, colours = 5, max_objects = 100;
  float min_score = 0;
  bool ensemble = false;
  std::chrono::milliseconds deadline{1000};
};

// A node as `huddle nodes` lists it.
struct NodeView {
  std::string id, task, model, endpoint;
  std::string state;      // connecting, unreachable (connecting for longer than lost_after),
                          // warming, ready, stopping, lost; unpaired (its key is not paired:
                          // never connected to), refused (it refused our key: not paired
                          // there), wrong-key (its key is not the one paired), insecure (it
                          // does not use CURVE)
  std::string device_id;  // of its public key; empty when unknown or --insecure
  bool in_rotation = false;
  bool static_peer = false, mdns = false;
  uint32_t in_flight = 0;      // this pool's requests not yet answered
  uint32_t node_in_flight = 0, max_in_flight = 0;  // the node's own, from its last status
  double latency_ms = 0;       // run requests' round trip, moving average (0 before the first)
  double status_ms = 0;        // the last status request's round trip
  uint64_t answered = 0;       // run requests this pool got an ok answer to
};

class Pool {
 public:
  // Starts browsing (unless !mdns) and connecting to the static peers.
  // Throws std::invalid_argument for a malformed peer.
  explicit Pool(PoolOptions options);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Recognises one frame: returns the fused scene by the frame's deadline
  // (plus the time fusion takes), whatever the nodes do.
  Scene recognize(const Frame& frame);
  // The same, without waiting: `done` runs on the pool's thread once the scene
  // is fused (it must not block or call back into the pool).
  void submit(const Frame& frame, std::function<void(Scene)> done);

  // The nodes known now, by id.
  std::vector<NodeView> nodes() const;
  // Waits until `tasks` each have a node in rotation; with no tasks named,
  // until at least one node is in rotation, none is still connecting or
  // warming, nothing changed for `settle`, and (browsing mDNS) a second has
  // passed for the answers to come. At most `limit`. Returns whether every
  // asked task (or, with none named, some node) is in rotation.
  bool wait_ready(const std::vector<std::string>& tasks, std::chrono::milliseconds limit,
                  std::chrono::milliseconds settle = std::chrono::milliseconds(300));

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace huddle::coordinator
