// node/server.h on loopback with a probe task written here: round trips,
// refusals, the flood, overload, expiry, graceful shutdown and the warm-up.
//
// The probe task's answer is computed from the image by a formula the test
// applies to the pixels it made (top label = the image's width), so a wrong
// image or a mixed-up answer shows. Overload, expiry and shutdown need
// requests held in flight: a gate in the probe task holds every run until
// the test opens it, so which requests are in flight is known, not guessed
// from timing. The only sleep (expiry) makes sure a budget is spent; a
// longer sleep changes nothing.
#include "node/server.h"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include <capnp/message.h>

#include "protocol/socket.h"
#include "tests/node/flood.h"

namespace {

using namespace huddle;
namespace schema = protocol::schema;
using Catch::Matchers::Contains;
using std::chrono::milliseconds;

// Holds the probe task's runs until opened; counts them.
struct Gate {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = true;
  int entered = 0, running = 0, most_running = 0;
  node::TaskOptions last;  // the options of the last run that entered

  void close() {
    std::lock_guard lock(mutex);
    open = false;
  }
  void release() {
    {
      std::lock_guard lock(mutex);
      open = true;
    }
    changed.notify_all();
  }
  // Waits (at most 10 s) until `n` runs have entered the task.
  bool wait_entered(int n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(10), [&] { return entered >= n; });
  }
};

class ProbeResult : public node::Result {
 public:
  ProbeResult(uint32_t width, uint32_t top_k) : width_(width), top_k_(top_k) {}
  void write(schema::Result::Builder out) const override {
    auto labels = out.initClassify().initLabels(top_k_);
    for (uint32_t i = 0; i < top_k_; ++i) labels[i].setIndex(width_ + i);
  }
  std::string text() const override { return std::to_string(width_) + "\n"; }
  void annotate(node::Image&) const override {}

 private:
  uint32_t width_, top_k_;
};

class ProbeTask : public node::Task {
 public:
  explicit ProbeTask(Gate& gate) : gate_(gate) {}
  std::unique_ptr<node::Result> run(const node::Image& image, const node::TaskOptions& options,
                                    node::Timings& timings) override {
    std::unique_lock lock(gate_.mutex);
    ++gate_.entered;
    gate_.last = options;
    gate_.most_running = std::max(gate_.most_running, ++gate_.running);
    gate_.changed.notify_all();
    gate_.changed.wait_for(lock, std::chrono::seconds(20), [&] { return gate_.open; });
    --gate_.running;
    lock.unlock();
    if (options.top_k == 99) throw node::BadRequest("top-k 99 is not served");
    if (options.top_k == 98) throw std::runtime_error("probe failure");
    timings.inference_ms = 1.5;
    return std::make_unique<ProbeResult>(image.width, options.top_k);
  }

 private:
  Gate& gate_;
};

class ProbeFactory : public node::TaskFactory {
 public:
  explicit ProbeFactory(Gate& gate) : gate_(gate) {}
  std::unique_ptr<node::Task> make() const override { return std::make_unique<ProbeTask>(gate_); }
  std::string model_name() const override { return "probe.hdm"; }

 private:
  Gate& gate_;
};

// A server running on its own thread; stopped (gate opened first) on destruction.
struct Running {
  Gate gate;
  std::unique_ptr<node::Server> server;
  std::future<void> done;
  // The gate counts runs: warm-up runs would count too, so they are off
  // unless a test asks for them; then the gate starts closed, holding them.
  explicit Running(node::ServerOptions options, bool warm_up = false) {
    options.task = "probe";
    options.warm_up = warm_up;
    if (warm_up) gate.close();
    server = std::make_unique<node::Server>(std::make_shared<ProbeFactory>(gate), options);
    done = std::async(std::launch::async, [this] { server->run(); });
  }
  ~Running() {
    gate.release();
    server->stop();
    if (done.wait_for(std::chrono::seconds(20)) != std::future_status::ready) std::abort();  // never hang
  }
};

node::Image gray_image(uint32_t width, uint32_t height) {
  node::Image im;
  im.width = width;
  im.height = height;
  im.format = node::PixelFormat::gray;
  im.pixels.resize(size_t{width} * height);
  for (size_t i = 0; i < im.pixels.size(); ++i) im.pixels[i] = static_cast<uint8_t>(i * 37);
  return im;
}

// Sends a run request for a PNG of a gray image `width` pixels wide.
uint64_t send_run(protocol::Client& client, uint32_t width, uint32_t deadline_ms = 0, uint16_t top_k = 1,
                  const std::string& task = "") {
  capnp::MallocMessageBuilder m;
  const uint64_t id = client.next_id();
  auto run = protocol::init_request(m, id, deadline_ms).initBody().initRun();
  run.setTask(task);
  run.initOptions().setTopK(top_k);
  run.getImage().setEncoded();
  const std::vector<uint8_t> png = node::encode_png(gray_image(width, 3));
  client.send(m, std::span<const uint8_t>(png));
  return id;
}

protocol::Reply answer(protocol::Client& client, uint64_t id) {
  std::optional<protocol::Reply> r = client.receive(id, milliseconds(10000));
  REQUIRE(r.has_value());
  return std::move(*r);
}

// The answers to `ids`, in whatever order they come.
std::map<uint64_t, protocol::Reply> answers(protocol::Client& client, std::vector<uint64_t> ids) {
  std::map<uint64_t, protocol::Reply> out;
  while (out.size() < ids.size()) {
    std::optional<protocol::Reply> r = client.receive(milliseconds(10000));
    REQUIRE(r.has_value());
    const uint64_t id = r->header().id;
    out.emplace(id, std::move(*r));
  }
  for (uint64_t id : ids) REQUIRE(out.count(id) == 1);
  return out;
}

schema::NodeStatus::Reader status_of(const protocol::Reply& r) {
  REQUIRE(r.header().code == schema::Code::OK);
  REQUIRE(r.root().getBody().isStatus());
  return r.root().getBody().getStatus();
}

uint64_t send_status(protocol::Client& client) {
  capnp::MallocMessageBuilder m;
  const uint64_t id = client.next_id();
  protocol::init_request(m, id, 0).initBody().setStatus();
  client.send(m);
  return id;
}

uint32_t top_label(const protocol::Reply& r) {
  REQUIRE(r.header().code == schema::Code::OK);
  return r.root().getBody().getResult().getClassify().getLabels()[0].getIndex();
}

}  // namespace

TEST_CASE("run and status requests round trip") {
  Running node({});
  zmq::context_t context;
  protocol::Client client(context, node.server->endpoint());
  CHECK_THAT(node.server->endpoint(), Contains("tcp://127.0.0.1:"));

  const uint64_t a = send_run(client, 17, 0, 3);
  const protocol::Reply ra = answer(client, a);
  REQUIRE(ra.header().code == schema::Code::OK);
  const auto labels = ra.root().getBody().getResult().getClassify().getLabels();
  REQUIRE(labels.size() == 3);
  CHECK(labels[0].getIndex() == 17);
  CHECK(labels[2].getIndex() == 19);
  CHECK(ra.root().getTimings().getInferenceUs() == 1500);

  // Raw pixels: 5 x 2 rgb.
  capnp::MallocMessageBuilder m;
  const uint64_t b = client.next_id();
  auto raw = protocol::init_request(m, b, 1000).initBody().initRun();
  raw.initOptions().setTopK(1);
  auto desc = raw.getImage().initRaw();
  desc.setWidth(5);
  desc.setHeight(2);
  desc.setFormat(schema::PixelFormat::RGB);
  const std::vector<uint8_t> pixels(5 * 2 * 3, 9);
  client.send(m, std::span<const uint8_t>(pixels));
  CHECK(top_label(answer(client, b)) == 5);

  const protocol::Reply status = answer(client, send_status(client));
  const auto s = status_of(status);
  CHECK(std::string(s.getTask().cStr()) == "probe");
  CHECK(std::string(s.getModel().cStr()) == "probe.hdm");
  CHECK(s.getState() == schema::NodeState::READY);
  CHECK(s.getServed() == 2);
  CHECK(s.getMaxInFlight() == 2);
  CHECK(s.getWorkers() == 1);
  CHECK(s.getInFlight() == 0);
}

TEST_CASE("a request's options reach the task as sent, the schema's defaults when unset") {
  Running node({});
  zmq::context_t context;
  protocol::Client client(context, node.server->endpoint());
  REQUIRE(answer(client, send_run(client, 4)).header().code == schema::Code::OK);
  {
    std::lock_guard lock(node.gate.mutex);
    CHECK(node.gate.last.min_score == 0.0f);
    CHECK(node.gate.last.max_objects == 100);
    CHECK(node.gate.last.colours == 5);
  }
  capnp::MallocMessageBuilder m;
  const uint64_t id = client.next_id();
  auto run = protocol::init_request(m, id, 0).initBody().initRun();
  auto options = run.initOptions();
  options.setTopK(2);
  options.setColours(7);
  options.setMinScore(0.25f);
  options.setMaxObjects(12);
  run.getImage().setEncoded();
  const std::vector<uint8_t> png = node::encode_png(gray_image(4, 3));
  client.send(m, std::span<const uint8_t>(png));
  REQUIRE(answer(client, id).header().code == schema::Code::OK);
  std::lock_guard lock(node.gate.mutex);
  CHECK(node.gate.last.top_k == 2);
  CHECK(node.gate.last.colours == 7);
  CHECK(node.gate.last.min_score == 0.25f);
  CHECK(node.gate.last.max_objects == 12);
}

TEST_CASE("refusals name the problem and the node keeps serving") {
  Running node({});
  zmq::context_t context;
  protocol::Client client(context, node.server->endpoint());
  const auto refused = [&](uint64_t id, schema::Code code, const std::string& text) {
    const protocol::Reply r = answer(client, id);
    CHECK(r.header().code == code);
    CHECK_THAT(r.header().message, Contains(text));
  };
  refused(send_run(client, 4, 0, 1, "colour"), schema::Code::BAD_INPUT, "serves task 'probe', not 'colour'");
  refused(send_run(client, 4, 0, 99), schema::Code::BAD_INPUT, "top-k 99 is not served");
  refused(send_run(client, 4, 0, 98), schema::Code::ERROR, "task failed: probe failure");

  capnp::MallocMessageBuilder m;
  const uint64_t id = client.next_id();
  auto raw = protocol::init_request(m, id, 0).initBody().initRun().getImage().initRaw();
  raw.setWidth(3);
  raw.setHeight(2);
  raw.setFormat(schema::PixelFormat::RGB);
  const std::vector<uint8_t> short_frame(10);
  client.send(m, std::span<const uint8_t>(short_frame));
  refused(id, schema::Code::BAD_INPUT, "3x2 rgb needs 18 bytes, the frame has 10");

  capnp::MallocMessageBuilder m2;
  const uint64_t id2 = client.next_id();
  protocol::init_request(m2, id2, 0).initBody().initRun().getImage().setEncoded();
  const std::string text = "hello, not an image";
  client.send(m2, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  refused(id2, schema::Code::BAD_INPUT, "image: ");

  capnp::MallocMessageBuilder m3;
  const uint64_t id3 = client.next_id();
  auto many = protocol::init_request(m3, id3, 0).initBody().initRun();
  many.initRegions(node::kMaxRegions + 1);
  many.getImage().setEncoded();
  const std::vector<uint8_t> png = node::encode_png(gray_image(4, 3));
  client.send(m3, std::span<const uint8_t>(png));
  refused(id3, schema::Code::BAD_INPUT, "1025 regions, more than the 1024");

  CHECK(top_label(answer(client, send_run(client, 8))) == 8);
}

TEST_CASE("a flood of malformed messages between valid ones") {
  node::ServerOptions options;
  options.max_image_bytes = 64 << 10;  // so an oversized frame is small to send
  Running node(options);
  std::vector<test::FloodImage> images;
  for (uint32_t w : {3u, 30u, 11u})
    images.push_back({"gray " + std::to_string(w) + "x3", node::encode_png(gray_image(w, 3)), w});
  const test::FloodReport report =
      test::flood(node.server->endpoint(), images, 6, options.max_image_bytes + (256 << 10));
  for (const std::string& p : report.problems) UNSCOPED_INFO(p);
  CHECK(report.problems.empty());
  CHECK(report.valid_sent == 18);
  CHECK(report.valid_ok == report.valid_sent);
  CHECK(report.bad_refused == report.bad_sent);
  CHECK(report.bad_sent >= 6 * 11);
  CHECK(report.oversized == 3);
  CHECK(report.status_after);
}

TEST_CASE("more requests than max-in-flight: the rest overloaded at once") {
  for (const size_t workers : {1, 3}) {
    INFO(workers << " workers");
    node::ServerOptions options;
    options.workers = workers;
    options.max_in_flight = 2;
    Running node(options);
    zmq::context_t context;
    protocol::Client client(context, node.server->endpoint());
    node.gate.close();
    std::vector<uint64_t> ids;
    for (uint32_t w = 1; w <= 5; ++w) ids.push_back(send_run(client, w));
    // While the gate holds the first two, the other three are refused.
    for (size_t i = 2; i < 5; ++i) {
      const protocol::Reply r = answer(client, ids[i]);
      CHECK(r.header().code == schema::Code::OVERLOADED);
      CHECK_THAT(r.header().message, Contains("2 requests in flight"));
    }
    // Status is answered while the workers are busy.
    CHECK(status_of(answer(client, send_status(client))).getInFlight() == 2);
    REQUIRE(node.gate.wait_entered(static_cast<int>(std::min<size_t>(workers, 2))));
    node.gate.release();
    const auto done = answers(client, {ids[0], ids[1]});
    CHECK(top_label(done.at(ids[0])) == 1);
    CHECK(top_label(done.at(ids[1])) == 2);
    // Never more at once than the workers, nor than max-in-flight.
    CHECK(node.gate.most_running == static_cast<int>(std::min<size_t>(workers, 2)));
  }
}

TEST_CASE("a request whose budget is spent before a worker takes it expires, never reaching the task") {
  node::ServerOptions options;
  options.workers = 1;
  Running node(options);
  zmq::context_t context;
  protocol::Client client(context, node.server->endpoint());
  node.gate.close();
  const uint64_t first = send_run(client, 6);
  REQUIRE(node.gate.wait_entered(1));
  const uint64_t late = send_run(client, 7, 20);
  // The status answer comes after the late request was read (one connection
  // keeps order): its 20 ms budget is running.
  CHECK(status_of(answer(client, send_status(client))).getInFlight() == 2);
  std::this_thread::sleep_for(milliseconds(40));
  node.gate.release();
  CHECK(top_label(answer(client, first)) == 6);
  const protocol::Reply r = answer(client, late);
  CHECK(r.header().code == schema::Code::EXPIRED);
  CHECK_THAT(r.header().message, Contains("deadline of 20 ms passed before inference"));
  CHECK(node.gate.entered == 1);
  // A budget that is not spent is served.
  CHECK(top_label(answer(client, send_run(client, 9, 5000))) == 9);
}

TEST_CASE("stop() finishes the requests in flight, answers them and returns") {
  node::ServerOptions options;
  options.workers = 1;
  auto node = std::make_unique<Running>(options);
  zmq::context_t context;
  protocol::Client client(context, node->server->endpoint());
  node->gate.close();
  const uint64_t a = send_run(client, 12), b = send_run(client, 13);
  REQUIRE(node->gate.wait_entered(1));
  CHECK(status_of(answer(client, send_status(client))).getInFlight() == 2);
  node->server->stop();
  // Stopping: status still answered, new work refused.
  const protocol::Reply status = answer(client, send_status(client));
  const auto s = status_of(status);
  CHECK(s.getState() == schema::NodeState::STOPPING);
  const protocol::Reply refused = answer(client, send_run(client, 14));
  CHECK(refused.header().code == schema::Code::OVERLOADED);
  CHECK_THAT(refused.header().message, Contains("node is stopping"));
  CHECK(node->done.wait_for(milliseconds(50)) == std::future_status::timeout);  // still serving a and b
  node->gate.release();
  CHECK(top_label(answer(client, a)) == 12);
  CHECK(top_label(answer(client, b)) == 13);
  CHECK(node->done.wait_for(std::chrono::seconds(10)) == std::future_status::ready);
}

TEST_CASE("status says warming until every worker has run the task once, then ready") {
  node::ServerOptions options;
  options.workers = 2;
  Running node(options, true);
  zmq::context_t context;
  protocol::Client client(context, node.server->endpoint());
  REQUIRE(node.gate.wait_entered(2));  // each worker's warm-up run, held
  CHECK(!node.server->ready());
  CHECK(status_of(answer(client, send_status(client))).getState() == schema::NodeState::WARMING);
  std::atomic<int> fired{0};
  node.server->when_ready([&] { ++fired; });
  CHECK(fired == 0);
  // A run request waits for a warm worker.
  const uint64_t run = send_run(client, 21);
  node.gate.release();
  CHECK(top_label(answer(client, run)) == 21);
  for (int i = 0; i < 1000 && !node.server->ready(); ++i) std::this_thread::sleep_for(milliseconds(10));
  REQUIRE(node.server->ready());
  CHECK(fired == 1);
  CHECK(status_of(answer(client, send_status(client))).getState() == schema::NodeState::READY);
  node.server->when_ready([&] { ++fired; });  // already ready: runs at once
  CHECK(fired == 2);
  std::lock_guard lock(node.gate.mutex);
  CHECK(node.gate.entered == 3);  // two warm-up runs, one request
}
