// What `huddle recognize`, `huddle nodes`, `huddle coordinator` and
// `huddle demo` share: the options that say where the pool's nodes are and
// how a frame is asked, and the printing of a fused scene.
#pragma once

#include <string>
#include <vector>

#include "coordinator/pool.h"
#include "coordinator/scene.h"
#include "protocol/security.h"

namespace huddle::tools {

// The options' help lines, for the commands' help texts.
extern const char* const kPoolHelp;   // --peer, --no-mdns, --wait-ms
extern const char* const kFrameHelp;  // --tasks, --deadline-ms, --ensemble, task options

struct PoolArgs {
  coordinator::PoolOptions pool;
  long wait_ms = 2000;
  bool verbose = false;  // --verbose: log membership changes to stderr
  coordinator::Frame frame;  // everything but the image
  protocol::SecurityArgs security;  // --state-dir, --insecure
};

// Reads argv[*i] (and its value) into `args` when it is one of the pool or
// frame options. Returns 1 if it was (advancing *i past a value), 0 if it is
// another option, -1 after printing a usage error.
int parse_pool_arg(const char* command, int argc, char** argv, int* i, PoolArgs* args);

// Opens this device's Trust into args->pool.trust (or, with --insecure,
// checks that every peer is on loopback and that mDNS is browsed only in a
// test network namespace). False after printing why: a state directory that
// cannot be used (exit 1: *status) or --insecure where it is refused (exit 2).
bool open_pool_security(const char* command, PoolArgs* args, int* status);

// The scene for a person: "IMAGE: SUMMARY", then one line per task (who
// answered, how long it took, or why it is missing).
std::string scene_text(const std::string& image, const coordinator::Scene& scene);

// Draws the scene onto a copy of the image at `image_path` and writes it as
// PNG to `out`: each object's box with "name 0.91 brown". Throws naming the
// file on failure.
void annotate_scene(const std::string& image_path, const coordinator::Scene& scene, const std::string& out);

// The pool's nodes, one line each (or one JSON array).
std::string nodes_text(const std::vector<coordinator::NodeView>& nodes);
std::string nodes_json(const std::vector<coordinator::NodeView>& nodes);

}  // namespace huddle::tools
