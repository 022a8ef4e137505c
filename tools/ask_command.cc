// `huddle ask`: send images (or a status request) to one node and print its
// answers; for tests and debugging (protocol/socket.h's Client, over CURVE
// unless --insecure).
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <capnp/compat/json.h>

#include "node/image.h"
#include "protocol/security.h"
#include "protocol/socket.h"
#include "tools/arguments.h"
#include "tools/commands.h"

namespace huddle::tools {
namespace {

namespace schema = protocol::schema;

constexpr const char* kHelp =
    "usage: huddle ask --node ENDPOINT [--key KEY|ID] [--task T] [--json]\n"
    "                  [--timeout MS] [--deadline MS] [--top-k N] [--colours K]\n"
    "                  [--min-score S] [--max-objects N] [--region X0,Y0,X1,Y1 ...]\n"
    "                  [--state-dir DIR] [--insecure] image...\n"
    "       huddle ask --node ENDPOINT --status [--key KEY|ID] [--json]\n"
    "                  [--timeout MS] [--state-dir DIR] [--insecure]\n"
    "\n"
    "Sends each image (a PNG or JPEG file, sent as it is) to the node at ENDPOINT\n"
    "(e.g. tcp://127.0.0.1:5555), one at a time, and prints its answer: the result,\n"
    "the node's timings and the round trip, or the code and message of a refusal.\n"
    "The link uses CURVE, as this device (--state-dir), to the node whose public\n"
    "key is --key; a node whose key is another, or that refuses ours (we are not\n"
    "paired there), ends the command at once with a message saying so.\n"
    "  --key KEY|ID        the node's public key, or the device id of a paired node\n"
    "                      (default: this device's own key: a node started with the\n"
    "                      same state directory)\n"
    "  --task T            the task the node must serve (a node serving another\n"
    "                      refuses)\n"
    "  --status            ask for the node's status instead (task, model, load,\n"
    "                      state)\n"
    "  --json              one JSON object per answer: the image, the round trip in\n"
    "                      ms and the node's response as Cap'n Proto's JSON codec\n"
    "                      writes it\n"
    "  --timeout MS        how long to wait for each answer (default 5000)\n"
    "  --deadline MS       the budget sent with each request (default: the timeout)\n"
    "  --top-k N           classify: labels to return (default 5)\n"
    "  --colours K         colour: colours per image or region (default 5)\n"
    "  --min-score S       detect: the lowest score reported, 0..1 (default 0: the\n"
    "                      model's)\n"
    "  --max-objects N     detect: at most N objects, best first (default 100;\n"
    "                      1..1024)\n"
    "  --region ...        colour: a region in pixels, x0,y0,x1,y1 (repeatable)\n";

constexpr const char* kHelpExit =
    "Exit status: 0 every answer ok, 1 a node answered otherwise, no answer came\n"
    "within the timeout, the handshake failed, an image could not be read or the\n"
    "state directory cannot be used; 2 usage error.\n";

struct Options {
  std::string node, task, key;
  protocol::SecurityArgs security;
  bool json = false, status = false;
  long timeout_ms = 5000, deadline_ms = -1, top_k = 5, colours = 5, max_objects = 100;
  float min_score = 0;
  std::vector<std::array<float, 4>> regions;
  std::vector<std::string> images;
};

bool parse_region(const char* value, std::array<float, 4>* out) {
  if (!value) return false;
  const char* p = value;
  for (size_t i = 0; i < 4; ++i) {
    char* end = nullptr;
    const float v = std::strtof(p, &end);
    if (end == p || !std::isfinite(v) || (i < 3 ? *end != ',' : *end != '\0')) return false;
    (*out)[i] = v;
    p = end + 1;
  }
  return true;
}

bool parse_options(int argc, char** argv, Options* o, int* status) {
  *status = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kHelp, stdout);
      std::fputs(protocol::kSecurityHelp, stdout);
      std::fputs(kHelpExit, stdout);
      *status = 0;
      return false;
    } else if (const int security = protocol::parse_security_arg("ask", argc, argv, &i, &o->security)) {
      if (security < 0) return false;
    } else if (arg == "--node" || arg == "--task" || arg == "--key") {
      if (!value || !*value) {
        std::fprintf(stderr, "huddle ask: %s needs a value (see 'huddle ask --help')\n", arg.c_str());
        return false;
      }
      (arg == "--node" ? o->node : arg == "--task" ? o->task : o->key) = value;
      ++i;
    } else if (arg == "--timeout" || arg == "--deadline" || arg == "--top-k" || arg == "--colours") {
      const bool ok = arg == "--timeout"    ? parse_count("ask", argv[i], value, 1, 3600000, &o->timeout_ms)
                      : arg == "--deadline" ? parse_count("ask", argv[i], value, 0, 3600000, &o->deadline_ms)
                      : arg == "--top-k"    ? parse_count("ask", argv[i], value, 1, 1000, &o->top_k)
                                            : parse_count("ask", argv[i], value, 1, 64, &o->colours);
      if (!ok) return false;
      ++i;
    } else if (arg == "--max-objects") {
      if (!parse_count("ask", argv[i], value, 1, 1024, &o->max_objects)) return false;
      ++i;
    } else if (arg == "--min-score") {
      if (!parse_fraction("ask", argv[i], value, &o->min_score)) return false;
      ++i;
    } else if (arg == "--region") {
      std::array<float, 4> r{};
      if (!parse_region(value, &r)) {
        std::fputs("huddle ask: --region needs four numbers x0,y0,x1,y1\n", stderr);
        return false;
      }
      o->regions.push_back(r);
      ++i;
    } else if (arg == "--json") {
      o->json = true;
    } else if (arg == "--status") {
      o->status = true;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "huddle ask: unknown option '%s' (see 'huddle ask --help')\n", arg.c_str());
      return false;
    } else {
      o->images.push_back(arg);
    }
  }
  if (o->node.empty()) {
    std::fputs("huddle ask: --node ENDPOINT is required\n", stderr);
    return false;
  }
  if (o->status != o->images.empty()) {
    std::fputs(o->status ? "huddle ask: --status takes no images\n" : "huddle ask: no image given\n", stderr);
    return false;
  }
  if (o->security.insecure && !o->key.empty()) {
    std::fputs("huddle ask: --key and --insecure exclude each other (--insecure uses no keys)\n", stderr);
    return false;
  }
  return true;
}

// The node's public key that --key names (`given`): a key as it is; a device
// id, this device's or a paired device's; nothing, this device's. Prints why
// and returns nullopt (*status set) when there is none.
std::optional<std::string> node_key(const std::string& given, const protocol::Trust& trust, int* status) {
  if (given.empty()) return trust.keys().public_key;
  if (protocol::is_key_text(given)) return given;
  std::string id;
  try {
    id = protocol::parse_device_id(given);
  } catch (const protocol::IdentityError& e) {
    std::fprintf(stderr, "huddle ask: --key '%s' is neither a public key (40 characters) nor a device id: %s\n",
                 given.c_str(), e.what());
    *status = 2;
    return std::nullopt;
  }
  if (id == trust.device_id()) return trust.keys().public_key;
  if (const std::optional<protocol::PairedDevice> d = trust.paired().find_by_id(id)) return d->public_key;
  std::fprintf(stderr,
               "huddle ask: --key %s: no such device is paired here (%s); pair it ('huddle pair %s') or give "
               "its public key\n",
               id.c_str(), trust.paired().path().c_str(), id.c_str());
  *status = 1;
  return std::nullopt;
}

std::string json_of(schema::Response::Reader response) {
  capnp::JsonCodec codec;
  const kj::String s = codec.encode(response);
  return std::string(s.cStr(), s.size());
}

void print_colours(const char* indent, schema::ColourSet::Reader set) {
  for (const schema::Colour::Reader c : set.getColours())
    std::printf("%s%-20s #%02x%02x%02x %5.1f %%\n", indent, c.getName().cStr(), c.getR(), c.getG(), c.getB(),
                100.0 * c.getShare());
}

// The result for a person at a terminal.
void print_result(schema::Result::Reader result) {
  switch (result.which()) {
    case schema::Result::CLASSIFY:
      for (const schema::Label::Reader l : result.getClassify().getLabels())
        std::printf("  %.4f  %s (%u)\n", l.getScore(), l.getName().size() ? l.getName().cStr() : "-",
                    l.getIndex());
      return;
    case schema::Result::DETECT:
      for (const schema::Detection::Reader d : result.getDetect().getObjects()) {
        const auto b = d.getBox();
        std::printf("  %.4f  %s (%u) at (%.0f, %.0f)-(%.0f, %.0f)\n", d.getScore(),
                    d.getName().size() ? d.getName().cStr() : "-", d.getIndex(), b.getX0(), b.getY0(), b.getX1(),
                    b.getY1());
      }
      return;
    case schema::Result::COLOUR: {
      const auto colour = result.getColour();
      print_colours("  ", colour.getImage());
      for (const schema::ColourSet::Reader set : colour.getRegions()) {
        const auto b = set.getBox();
        std::printf("  region %g,%g,%g,%g:\n", b.getX0(), b.getY0(), b.getX1(), b.getY1());
        print_colours("    ", set);
      }
      return;
    }
    default: {
      capnp::JsonCodec codec;
      std::printf("  %s\n", codec.encode(result).cStr());
    }
  }
}

const char* state_name(schema::NodeState state) {
  switch (state) {
    case schema::NodeState::WARMING:
      return "warming";
    case schema::NodeState::READY:
      return "ready";
    case schema::NodeState::STOPPING:
      return "stopping";
    default:
      return "unknown";
  }
}

void print_status(schema::NodeStatus::Reader s) {
  if (s.getModel().size())
    std::printf("node %s: task %s, model %s (sha256 %s)\n", s.getNodeId().cStr(), s.getTask().cStr(),
                s.getModel().cStr(), s.getModelSha256().cStr());
  else
    std::printf("node %s: task %s, no model\n", s.getNodeId().cStr(), s.getTask().cStr());
  std::printf("state %s, %u of %u in flight, %u workers, %llu served, %s\n", state_name(s.getState()),
              s.getInFlight(), s.getMaxInFlight(), s.getWorkers(),
              static_cast<unsigned long long>(s.getServed()), s.getSoftware().cStr());
}

// Prints one answer; true if it is ok.
bool print_answer(const Options& o, const std::string& what, const protocol::Reply& reply,
                  double round_trip_ms) {
  const protocol::ResponseHeader& h = reply.header();
  const auto r = reply.root();
  if (o.json) {
    std::printf("{\"image\": %s, \"roundTripMs\": %.3f, \"response\": %s}\n", json_string(what).c_str(),
                round_trip_ms, json_of(r).c_str());
    return h.code == schema::Code::OK;
  }
  if (h.code != schema::Code::OK) {
    std::printf("%s: %s: %s\n", what.c_str(), protocol::code_name(h.code).c_str(), h.message.c_str());
    return false;
  }
  if (r.getBody().isStatus()) {
    print_status(r.getBody().getStatus());
    return true;
  }
  const auto t = r.getTimings();
  std::printf(
      "%s: ok, round trip %.2f ms (node: decode %.2f, preprocess %.2f, inference %.2f, postprocess %.2f "
      "ms)\n",
      what.c_str(), round_trip_ms, t.getDecodeUs() / 1e3, t.getPreprocessUs() / 1e3, t.getInferenceUs() / 1e3,
      t.getPostprocessUs() / 1e3);
  print_result(r.getBody().getResult());
  return true;
}

std::optional<std::vector<uint8_t>> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

int ask(int argc, char** argv) {
  Options o;
  int status = 0;
  if (!parse_options(argc, argv, &o, &status)) return status;
  if (o.deadline_ms < 0) o.deadline_ms = o.timeout_ms;
  std::shared_ptr<protocol::Trust> trust;
  std::optional<std::string> key;
  try {
    if (o.security.insecure) protocol::check_insecure_endpoint(o.node, "connect to");
    trust = protocol::open_trust("ask", o.security);
    if (trust && !(key = node_key(o.key, *trust, &status))) return status;
  } catch (const protocol::SecurityError& e) {
    std::fprintf(stderr, "huddle ask: %s\n", e.what());
    return 2;
  } catch (const protocol::IdentityError& e) {
    std::fprintf(stderr, "huddle ask: %s\n", e.what());
    return 1;
  }
  zmq::context_t context;
  std::optional<protocol::Client> client;
  try {
    client.emplace(context, o.node, trust ? &trust->keys() : nullptr, key.value_or(""));
  } catch (const zmq::error_t& e) {
    std::fprintf(stderr, "huddle ask: cannot connect to '%s': %s\n", o.node.c_str(), e.what());
    return 2;
  }
  const std::vector<std::string> targets = o.status ? std::vector<std::string>{"status"} : o.images;
  bool all_ok = true;
  for (const std::string& target : targets) {
    capnp::MallocMessageBuilder message;
    const uint64_t id = client->next_id();
    auto request = protocol::init_request(message, id, static_cast<uint32_t>(o.deadline_ms));
    std::optional<std::vector<uint8_t>> bytes;
    if (o.status) {
      request.initBody().setStatus();
    } else {
      bytes = read_file(target);
      if (!bytes || !node::is_image(*bytes)) {
        std::fprintf(stderr, "huddle ask: %s: %s\n", target.c_str(),
                     bytes ? "not a PNG or JPEG file" : "cannot read the file");
        all_ok = false;
        continue;
      }
      auto run = request.initBody().initRun();
      run.setTask(o.task);
      run.getImage().setEncoded();
      auto options = run.initOptions();
      options.setTopK(static_cast<uint16_t>(o.top_k));
      options.setColours(static_cast<uint8_t>(o.colours));
      options.setMinScore(o.min_score);
      options.setMaxObjects(static_cast<uint16_t>(o.max_objects));
      auto regions = run.initRegions(static_cast<unsigned>(o.regions.size()));
      for (size_t i = 0; i < o.regions.size(); ++i) {
        regions[i].setX0(o.regions[i][0]);
        regions[i].setY0(o.regions[i][1]);
        regions[i].setX1(o.regions[i][2]);
        regions[i].setY1(o.regions[i][3]);
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (bytes)
      client->send(message, std::span<const uint8_t>(*bytes));
    else
      client->send(message);
    try {
      const std::optional<protocol::Reply> reply =
          client->receive(id, std::chrono::milliseconds(o.timeout_ms));
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (!reply) {
        std::fprintf(stderr, "huddle ask: %s: no answer from %s within %ld ms (timeout)\n", target.c_str(),
                     o.node.c_str(), o.timeout_ms);
        all_ok = false;
        continue;
      }
      all_ok = print_answer(o, target, *reply, ms) && all_ok;
    } catch (const protocol::HandshakeError& e) {
      // Every other request would fail the same way.
      // A node without CURVE (--insecure) ends our handshake the same way.
      const char* hint = e.event().result != protocol::HandshakeResult::no_detail ? ""
                         : o.key.empty() ? " (not this device? give its key with --key KEY|ID; or an --insecure node)"
                                         : " (or an --insecure node)";
      std::fprintf(stderr, "huddle ask: node %s: %s%s\n", o.node.c_str(), e.what(), hint);
      return 1;
    } catch (const protocol::ProtocolError& e) {
      std::fprintf(stderr, "huddle ask: %s: the node's answer is malformed: %s\n", target.c_str(), e.what());
      all_ok = false;
    } catch (const kj::Exception& e) {
      std::fprintf(stderr, "huddle ask: %s: the node's answer is malformed: %s\n", target.c_str(),
                   e.getDescription().cStr());
      all_ok = false;
    }
    std::fflush(stdout);
  }
  return all_ok ? 0 : 1;
}

}  // namespace huddle::tools
