// Load generator for `bench/run node`: sends one image to a node over and over
// with a fixed number of requests outstanding, and prints one JSON line:
// requests per second, the round trip's percentiles, and the server path's
// overhead per request (round trip minus the node's own timings: decode,
// preprocess, inference, postprocess). Wall clock (steady_clock): a round
// trip includes waiting, which thread CPU time (bench/clock.h) would miss.
//
// usage: node-load --node ENDPOINT --image FILE [--requests N] [--warmup N >= 1]
//                  [--concurrency C] [--timeout MS] [--status] [--insecure]
// --status sends status requests instead (no image): the round trip of the
// transport and the node's I/O thread alone. The link is CURVE as this device
// (the default state directory, which the node shares), or plain TCP with
// --insecure (a node started --insecure).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <capnp/message.h>

#include "protocol/socket.h"

namespace {

using namespace huddle;
using Clock = std::chrono::steady_clock;

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  huddle::protocol::keep_freed_memory();
  std::string endpoint, image_path;
  long requests = 200, warmup = 20, concurrency = 1, timeout_ms = 10000;
  bool status = false, insecure = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--status" || arg == "--insecure") {
      (arg == "--status" ? status : insecure) = true;
      continue;
    }
    const char* value = i + 1 < argc ? argv[++i] : nullptr;
    if (!value) {
      std::fprintf(stderr, "node-load: %s needs a value\n", arg.c_str());
      return 2;
    }
    if (arg == "--node")
      endpoint = value;
    else if (arg == "--image")
      image_path = value;
    else if (arg == "--requests")
      requests = std::atol(value);
    else if (arg == "--warmup")
      warmup = std::atol(value);
    else if (arg == "--concurrency")
      concurrency = std::atol(value);
    else if (arg == "--timeout")
      timeout_ms = std::atol(value);
    else {
      std::fprintf(stderr, "node-load: unknown option '%s'\n", arg.c_str());
      return 2;
    }
  }
  std::ifstream in;
  if (!status) in.open(image_path, std::ios::binary);
  if (endpoint.empty() || (!status && !in) || requests < 1 || concurrency < 1 || warmup < 1) {
    std::fputs(
        "usage: node-load --node ENDPOINT --image FILE [--requests N] [--warmup N] [--concurrency C]\n",
        stderr);
    return 2;
  }
  const std::vector<uint8_t> image =
      status ? std::vector<uint8_t>{}
             : std::vector<uint8_t>{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};

  zmq::context_t context;
  std::optional<protocol::Keypair> keys;
  if (!insecure) keys = protocol::load_or_create_identity(protocol::default_state_dir());
  protocol::Client client(context, endpoint, keys ? &*keys : nullptr, keys ? keys->public_key : "");
  std::map<uint64_t, Clock::time_point> sent;
  const auto send = [&] {
    capnp::MallocMessageBuilder m;
    const uint64_t id = client.next_id();
    auto body = protocol::init_request(m, id, static_cast<uint32_t>(timeout_ms)).initBody();
    sent[id] = Clock::now();
    if (status) {
      body.setStatus();
      client.send(m);
    } else {
      body.initRun().getImage().setEncoded();
      client.send(m, std::span<const uint8_t>(image));
    }
  };
  std::vector<double> round_trip, node_time, overhead;
  std::map<std::string, long> refused;
  long answered = 0, launched = 0;
  const long total = warmup + requests;
  Clock::time_point start;
  for (; launched < std::min(concurrency, total); ++launched) send();
  while (answered < total) {
    std::optional<protocol::Reply> reply = client.receive(std::chrono::milliseconds(timeout_ms));
    const Clock::time_point now = Clock::now();
    if (!reply) {
      std::fprintf(stderr, "node-load: no answer within %ld ms (%ld answered)\n", timeout_ms, answered);
      return 1;
    }
    const auto it = sent.find(reply->header().id);
    if (it == sent.end()) continue;
    const double rt = std::chrono::duration<double, std::milli>(now - it->second).count();
    sent.erase(it);
    if (++answered == warmup) start = now;
    if (answered > warmup) {
      if (reply->header().code != protocol::schema::Code::OK) {
        ++refused[protocol::code_name(reply->header().code)];
      } else {
        const auto t = reply->root().getTimings();
        const double node_ms =
            (t.getDecodeUs() + t.getPreprocessUs() + t.getInferenceUs() + t.getPostprocessUs()) / 1000.0;
        round_trip.push_back(rt);
        node_time.push_back(node_ms);
        overhead.push_back(rt - node_ms);
      }
    }
    if (launched < total) {
      send();
      ++launched;
    }
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::string refusals;
  for (const auto& [code, n] : refused)
    refusals += (refusals.empty() ? "" : ", ") + ("\"" + code + "\": ") + std::to_string(n);
  std::printf(
      "{\"requests\": %ld, \"ok\": %zu, \"refused\": {%s}, \"concurrency\": %ld, \"seconds\": %.3f, "
      "\"rps\": %.1f, \"rt_p50_ms\": %.3f, \"rt_p99_ms\": %.3f, \"node_p50_ms\": %.3f, "
      "\"overhead_p50_ms\": %.3f, \"overhead_p99_ms\": %.3f}\n",
      requests, round_trip.size(), refusals.c_str(), concurrency, seconds,
      static_cast<double>(requests) / seconds, percentile(round_trip, 0.5), percentile(round_trip, 0.99),
      percentile(node_time, 0.5), percentile(overhead, 0.5), percentile(overhead, 0.99));
  return round_trip.empty() ? 1 : 0;
}
