#include "tools/pool_options.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "node/draw.h"
#include "node/image.h"
#include "tools/arguments.h"

namespace huddle::tools {

const char* const kPoolHelp =
    "  --peer [ID@]HOST:PORT  a node to use besides those mDNS finds (repeatable;\n"
    "                      for networks that block multicast): ID is its device id\n"
    "                      (paired), or its public key; without, the node must be\n"
    "                      this device's (the same state directory)\n"
    "  --no-mdns           do not browse mDNS: only the --peer nodes\n"
    "  --wait-ms N         how long to look for nodes before the first frame\n"
    "                      (default 2000; it goes on as soon as every task asked\n"
    "                      for has a ready node)\n"
    "  --verbose           log the pool's changes (nodes found, in and out of\n"
    "                      rotation, and why) to stderr\n";

const char* const kFrameHelp =
    "  --tasks T1,T2       the tasks to ask for (default: every task in the pool)\n"
    "  --deadline-ms N     each frame's deadline (default 1000): what arrived by then\n"
    "                      is fused, and each missing task says why\n"
    "  --ensemble          send each task to every node serving it and combine their\n"
    "                      answers (classify: averaged scores; detect: box voting);\n"
    "                      default: spread frames across them\n"
    "  --top-k N           classify: labels per answer (default 5)\n"
    "  --colours K         colour: colours per image or box (default 5)\n"
    "  --min-score S       detect: the lowest score reported, 0..1 (default 0: the model's)\n"
    "  --max-objects N     detect: at most N objects (default 100)\n";

int parse_pool_arg(const char* command, int argc, char** argv, int* i, PoolArgs* args) {
  const std::string arg = argv[*i];
  const char* value = *i + 1 < argc ? argv[*i + 1] : nullptr;
  long n = 0;
  if (const int r = protocol::parse_security_arg(command, argc, argv, i, &args->security); r != 0) return r;
  if (arg == "--no-mdns") {
    args->pool.mdns = false;
    return 1;
  }
  if (arg == "--verbose" || arg == "-v") {
    args->verbose = true;
    return 1;
  }
  if (arg == "--ensemble") {
    args->frame.ensemble = true;
    return 1;
  }
  if (arg == "--peer" || arg == "--tasks") {
    if (!value || !*value) {
      std::fprintf(stderr, "huddle %s: %s needs a value (see 'huddle %s --help')\n", command, arg.c_str(), command);
      return -1;
    }
    if (arg == "--peer") {
      try {
        (void)discovery::static_peer(protocol::parse_peer_spec(value, nullptr).address);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "huddle %s: %s\n", command, e.what());
        return -1;
      }
      args->pool.peers.push_back(value);
    } else {
      std::string list = value;
      size_t start = 0;
      while (start <= list.size()) {
        const size_t comma = std::min(list.find(',', start), list.size());
        const std::string task = list.substr(start, comma - start);
        if (task.empty()) {
          std::fprintf(stderr, "huddle %s: --tasks '%s' has an empty task name\n", command, value);
          return -1;
        }
        args->frame.tasks.push_back(task);
        start = comma + 1;
      }
    }
    ++*i;
    return 1;
  }
  if (arg == "--wait-ms" || arg == "--deadline-ms" || arg == "--top-k" || arg == "--colours" ||
      arg == "--max-objects") {
    const long hi = arg == "--wait-ms" || arg == "--deadline-ms" ? 600000 : arg == "--colours" ? 16 : 1024;
    const long lo = arg == "--wait-ms" ? 0 : 1;
    if (!parse_count(command, argv[*i], value, lo, hi, &n)) return -1;
    if (arg == "--wait-ms") args->wait_ms = n;
    if (arg == "--deadline-ms") args->frame.deadline = std::chrono::milliseconds(n);
    if (arg == "--top-k") args->frame.top_k = static_cast<uint32_t>(n);
    if (arg == "--colours") args->frame.colours = static_cast<uint32_t>(n);
    if (arg == "--max-objects") args->frame.max_objects = static_cast<uint32_t>(n);
    ++*i;
    return 1;
  }
  if (arg == "--min-score") {
    if (!parse_fraction(command, argv[*i], value, &args->frame.min_score)) return -1;
    ++*i;
    return 1;
  }
  return 0;
}

bool open_pool_security(const char* command, PoolArgs* args, int* status) {
  *status = 2;
  try {
    if (args->security.insecure) {
      for (const std::string& peer : args->pool.peers)
        protocol::check_insecure_endpoint(protocol::parse_peer_spec(peer, nullptr).address, "connect to");
      if (args->pool.mdns && !protocol::in_test_namespace())
        throw protocol::SecurityError(
            "--insecure may not browse mDNS outside a test network namespace (it would send images in the clear "
            "to any node on the LAN): add --no-mdns and give loopback --peer nodes");
    }
    args->pool.trust = protocol::open_trust(command, args->security);
  } catch (const protocol::SecurityError& e) {
    std::fprintf(stderr, "huddle %s: %s\n", command, e.what());
    return false;
  } catch (const protocol::IdentityError& e) {
    std::fprintf(stderr, "huddle %s: %s\n", command, e.what());
    *status = 1;
    return false;
  }
  return true;
}

namespace {

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

std::string scene_text(const std::string& image, const coordinator::Scene& scene) {
  std::string out = image + ": " + scene.summary + "\n";
  for (const coordinator::SceneObject& o : scene.objects) {
    out += "  object " + (o.name.empty() ? "class " + std::to_string(o.index) : o.name) + " " + fixed(o.score, 2) +
           " at (" + fixed(o.box.x0, 0) + ", " + fixed(o.box.y0, 0) + ")-(" + fixed(o.box.x1, 0) + ", " +
           fixed(o.box.y1, 0) + ")";
    for (size_t i = 0; i < o.colours.size() && i < 3; ++i)
      out += (i ? ", " : "; ") + o.colours[i].name + " " + fixed(100.0 * o.colours[i].share, 0) + "%";
    out += "\n";
  }
  if (!scene.labels.empty()) {
    out += "  labels";
    for (size_t i = 0; i < scene.labels.size() && i < 5; ++i)
      out += (i ? ", " : ": ") + scene.labels[i].name + " " + fixed(scene.labels[i].score, 2);
    out += "\n";
  }
  if (!scene.colours.empty()) {
    out += "  colours";
    for (size_t i = 0; i < scene.colours.size(); ++i)
      out += (i ? ", " : ": ") + scene.colours[i].name + " " + fixed(100.0 * scene.colours[i].share, 0) + "%";
    out += "\n";
  }
  for (const coordinator::TaskReport& t : scene.tasks) {
    out += "  " + t.task + ": " + coordinator::outcome_name(t.outcome);
    if (!t.node.empty()) out += t.outcome == coordinator::Outcome::ok ? " from " + t.node : " (" + t.node + ")";
    if (t.nodes.size() > 1) {
      out += " (ensemble of";
      for (const std::string& n : t.nodes) out += " " + n;
      out += ")";
    }
    if (t.outcome == coordinator::Outcome::ok)
      out += " in " + fixed(t.latency_us / 1000.0, 1) + " ms (node: " + fixed(t.timings.total_us() / 1000.0, 1) +
             " ms, inference " + fixed(t.timings.inference_us / 1000.0, 1) + " ms)";
    if (t.attempts > 1) out += ", " + std::to_string(t.attempts) + " attempts";
    if (!t.message.empty()) out += ": " + t.message;
    out += "\n";
  }
  out += "  fused in " + fixed(scene.elapsed_us / 1000.0, 1) + " ms\n";
  return out;
}

void annotate_scene(const std::string& image_path, const coordinator::Scene& scene, const std::string& out) {
  node::Image canvas = node::rgb_canvas(node::read_image(image_path));
  std::vector<node::LabelledBox> boxes;
  for (const coordinator::SceneObject& o : scene.objects) {
    std::string caption = (o.name.empty() ? "class " + std::to_string(o.index) : o.name) + " " + fixed(o.score, 2);
    if (!o.colours.empty()) caption += " " + o.colours.front().name;
    boxes.push_back({o.box.x0, o.box.y0, o.box.x1, o.box.y1, caption, node::class_colour(o.index)});
  }
  node::draw_labelled_boxes(canvas, boxes);
  // The scene's colours as swatches along the bottom edge, in proportion to their share.
  const long band = std::max<long>(4, canvas.height / 40);
  long x = 0;
  for (const coordinator::Colour& c : scene.colours) {
    const long w = std::lround(c.share * static_cast<double>(canvas.width));
    node::fill_rect(canvas, x, canvas.height - band, x + w, canvas.height, {c.r, c.g, c.b});
    x += w;
  }
  node::write_png(out, canvas);
}

std::string nodes_text(const std::vector<coordinator::NodeView>& nodes) {
  if (nodes.empty()) return "no nodes found\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-20s %-20s %-9s %-24s %-26s %-10s %5s %9s\n", "id", "device", "task", "model",
                "address", "state", "load", "latency");
  std::string out = line;
  for (const coordinator::NodeView& n : nodes) {
    const std::string load = std::to_string(n.node_in_flight) + "/" + std::to_string(n.max_in_flight);
    const std::string latency = n.latency_ms > 0   ? fixed(n.latency_ms, 1) + " ms"
                                : n.status_ms > 0 ? fixed(n.status_ms, 1) + " ms*"
                                                  : "-";
    std::snprintf(line, sizeof line, "%-20s %-20s %-9s %-24s %-26s %-10s %5s %9s\n", n.id.c_str(),
                  n.device_id.empty() ? "-" : n.device_id.c_str(), n.task.c_str(),
                  n.model.empty() ? "-" : n.model.c_str(), n.endpoint.c_str(), n.state.c_str(), load.c_str(),
                  latency.c_str());
    out += line;
  }
  return out;
}

std::string nodes_json(const std::vector<coordinator::NodeView>& nodes) {
  using coordinator::json_string;
  std::string out = "[";
  for (size_t i = 0; i < nodes.size(); ++i) {
    const coordinator::NodeView& n = nodes[i];
    if (i) out += ",";
    out += "{\"id\":" + json_string(n.id) + ",\"device_id\":" + json_string(n.device_id) + ",\"task\":" + json_string(n.task) + ",\"model\":" + json_string(n.model) +
           ",\"endpoint\":" + json_string(n.endpoint) + ",\"state\":" + json_string(n.state) +
           ",\"in_rotation\":" + (n.in_rotation ? "true" : "false") +
           ",\"static\":" + (n.static_peer ? "true" : "false") + ",\"mdns\":" + (n.mdns ? "true" : "false") +
           ",\"in_flight\":" + std::to_string(n.node_in_flight) +
           ",\"max_in_flight\":" + std::to_string(n.max_in_flight) + ",\"latency_ms\":" + fixed(n.latency_ms, 3) +
           ",\"status_ms\":" + fixed(n.status_ms, 3) + ",\"answered\":" + std::to_string(n.answered) + "}";
  }
  return out + "]";
}

}  // namespace huddle::tools
