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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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
#include "protocol/security.h"
#include "protocol/zap.h"
#include "tests/node/flood.h"
#include "tests/protocol/test_util.h"

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

// ---- security (issue 9): a node with a Trust ----
//
// The clients here are raw DEALERs with CURVE set before they connect, each
// with a HandshakeWatch, so a refused handshake is seen as what it is.

namespace {

using test::TempDir;

struct SecureClient {
  zmq::socket_t socket;
  std::unique_ptr<protocol::HandshakeWatch> watch;
  uint64_t last_id = 0;

  // `keys` null: plain TCP.
  SecureClient(zmq::context_t& context, const std::string& endpoint, const protocol::Keypair* keys,
               const std::string& server_key)
      : socket(context, zmq::socket_type::dealer) {
    if (keys) protocol::make_curve_client(socket, *keys, server_key);
    protocol::configure_socket(socket, 1 << 20);
    watch = std::make_unique<protocol::HandshakeWatch>(context, socket);
    socket.connect(endpoint);
  }

  // The first handshake's outcome (at most 5 s).
  protocol::HandshakeResult handshake() {
    const std::optional<protocol::HandshakeEvent> e = watch->next(milliseconds(5000));
    REQUIRE(e.has_value());
    return e->result;
  }

  // Sends a request built by `body` and returns its answer (at most 5 s).
  template <typename Body>
  protocol::Reply ask(Body body, std::optional<std::span<const uint8_t>> image = std::nullopt) {
    capnp::MallocMessageBuilder m;
    const uint64_t id = ++last_id;
    body(protocol::init_request(m, id, 0));
    const kj::Array<capnp::word> words = protocol::frame_of(m);
    const auto bytes = words.asBytes();
    socket.send(zmq::const_buffer(bytes.begin(), bytes.size()),
                image ? zmq::send_flags::sndmore : zmq::send_flags::none);
    if (image) socket.send(zmq::const_buffer(image->data(), image->size()), zmq::send_flags::none);
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    REQUIRE(zmq_poll(&item, 1, 5000) == 1);
    std::vector<zmq::message_t> frames = protocol::receive_frames(socket);
    REQUIRE(frames.size() == 1);
    protocol::Reply reply(std::move(frames[0]), 1 << 20);
    REQUIRE(reply.header().id == id);
    return reply;
  }

  protocol::Reply status() {
    return ask([](schema::Request::Builder r) { r.getBody().setStatus(); });
  }
  protocol::Reply run(uint32_t width) {
    const std::vector<uint8_t> png = node::encode_png(gray_image(width, 3));
    return ask(
        [](schema::Request::Builder r) {
          auto run = r.getBody().initRun();
          run.initOptions().setTopK(1);
          run.getImage().setEncoded();
        },
        std::span<const uint8_t>(png));
  }
  protocol::Reply pair(int64_t unix_seconds, const std::string& name = "test coordinator") {
    return ask([&](schema::Request::Builder r) {
      auto p = r.getBody().initPair();
      p.setName(name);
      p.setUnixSeconds(unix_seconds);
    });
  }
};

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE("a secure node serves its own device, and no other key, at the handshake") {
  TempDir node_dir, stranger_dir;
  auto trust = std::make_shared<protocol::Trust>(node_dir.path);
  const protocol::Keypair stranger = protocol::load_or_create_identity(stranger_dir.path);
  node::ServerOptions options;
  options.trust = trust;
  options.node_id = "kitchen";
  std::vector<std::string> lines;
  std::mutex lines_mutex;
  options.log = [&](const std::string& line) {
    std::lock_guard lock(lines_mutex);
    lines.push_back(line);
  };
  Running node(options);
  zmq::context_t context;

  // The same state directory is the same device: served, encrypted.
  SecureClient own(context, node.server->endpoint(), &trust->keys(), trust->keys().public_key);
  CHECK(own.handshake() == protocol::HandshakeResult::succeeded);
  const protocol::Reply s = own.status();
  const schema::NodeStatus::Reader st = status_of(s);
  CHECK(st.getEncrypted());
  CHECK_FALSE(st.getKeepsImages());
  CHECK(std::string(st.getDeviceId().cStr()) == trust->device_id());
  CHECK_FALSE(st.getPairing());
  CHECK(top_label(own.run(37)) == 37);

  // An unpaired key that knows the node's key: the ZAP handler refuses it.
  SecureClient rogue(context, node.server->endpoint(), &stranger, trust->keys().public_key);
  CHECK(rogue.handshake() == protocol::HandshakeResult::refused);
  // A client expecting another server key: the handshake cannot complete.
  SecureClient misled(context, node.server->endpoint(), &trust->keys(), stranger.public_key);
  CHECK(misled.handshake() == protocol::HandshakeResult::no_detail);
  // A plain client: the mechanisms differ.
  SecureClient plain(context, node.server->endpoint(), nullptr, "");
  CHECK(plain.handshake() != protocol::HandshakeResult::succeeded);

  // The node keeps serving its own device, and said whom it refused.
  CHECK(top_label(own.run(41)) == 41);
  std::lock_guard lock(lines_mutex);
  bool logged = false;
  for (const std::string& l : lines) logged = logged || l.find(protocol::device_id(stranger.public_key)) != std::string::npos;
  CHECK(logged);
}

TEST_CASE("pairing: an unknown coordinator pairs while pairing is open, then is served; unpair revokes it") {
  TempDir node_dir, coordinator_dir;
  auto trust = std::make_shared<protocol::Trust>(node_dir.path);
  const protocol::Keypair coordinator = protocol::load_or_create_identity(coordinator_dir.path);
  node::ServerOptions options;
  options.trust = trust;
  options.node_id = "porch";
  options.pairing = node::PairingMode::accept;
  options.log = [](const std::string&) {};
  Running node(options);
  zmq::context_t context;
  SecureClient c(context, node.server->endpoint(), &coordinator, trust->keys().public_key);
  REQUIRE(c.handshake() == protocol::HandshakeResult::succeeded);

  // Let in for pairing only.
  const protocol::Reply refused = c.status();
  CHECK(refused.header().code == schema::Code::REFUSED);
  CHECK_THAT(refused.header().message, Contains("not paired"));
  // A clock far off: refused, saying so.
  const protocol::Reply skewed = c.pair(unix_now() - 3600);
  CHECK(skewed.header().code == schema::Code::REFUSED);
  CHECK_THAT(skewed.header().message, Contains("clock"));

  const int64_t t = unix_now();
  const protocol::Reply paired = c.pair(t);
  REQUIRE(paired.header().code == schema::Code::OK);
  const auto result = paired.root().getBody().getPaired();
  // Both ends' code: the one computed here from the two keys and the time sent.
  CHECK(std::string(result.getCode().cStr()) ==
        protocol::verification_code(coordinator.public_key, trust->keys().public_key, t));
  CHECK(std::string(result.getDeviceId().cStr()) == trust->device_id());
  CHECK(std::string(result.getName().cStr()) == "porch");
  CHECK(std::string(result.getTask().cStr()) == "probe");
  // Stored as a coordinator, in the node's paired file.
  protocol::PairedKeys file(node_dir.path);
  const std::optional<protocol::PairedDevice> d = file.find_by_key(coordinator.public_key);
  REQUIRE(d.has_value());
  CHECK(d->role == protocol::PeerRole::coordinator);
  CHECK(d->name == "test coordinator");

  CHECK(top_label(c.run(23)) == 23);
  CHECK(status_of(c.status()).getPairing());

  // Unpair at its own request: forgotten, refused from then on.
  const protocol::Reply gone = c.ask([](schema::Request::Builder r) { r.getBody().setUnpair(); });
  CHECK(gone.header().code == schema::Code::OK);
  CHECK(gone.root().getBody().isUnpaired());
  CHECK(c.status().header().code == schema::Code::REFUSED);
  CHECK_FALSE(protocol::PairedKeys(node_dir.path).find_by_key(coordinator.public_key).has_value());
}

TEST_CASE("a node re-reads its paired file: a coordinator unpaired by another process is refused within 0.5 s") {
  TempDir node_dir, coordinator_dir;
  const protocol::Keypair coordinator = protocol::load_or_create_identity(coordinator_dir.path);
  protocol::PairedKeys other_process(node_dir.path);
  protocol::PairedDevice device;
  device.public_key = coordinator.public_key;
  device.role = protocol::PeerRole::coordinator;
  device.name = "hall";
  other_process.add(device);

  auto trust = std::make_shared<protocol::Trust>(node_dir.path);
  node::ServerOptions options;
  options.trust = trust;
  options.log = [](const std::string&) {};
  Running node(options);
  zmq::context_t context;
  SecureClient c(context, node.server->endpoint(), &coordinator, trust->keys().public_key);
  REQUIRE(c.handshake() == protocol::HandshakeResult::succeeded);
  CHECK(top_label(c.run(11)) == 11);

  REQUIRE(other_process.remove(protocol::device_id(coordinator.public_key)).has_value());
  const auto removed = std::chrono::steady_clock::now();
  schema::Code code = schema::Code::OK;
  while (code == schema::Code::OK && std::chrono::steady_clock::now() - removed < std::chrono::seconds(5))
    code = c.status().header().code;
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - removed).count();
  CHECK(code == schema::Code::REFUSED);
  CHECK(ms < 500);
  // A new connection with that key does not even complete its handshake.
  SecureClient again(context, node.server->endpoint(), &coordinator, trust->keys().public_key);
  CHECK(again.handshake() == protocol::HandshakeResult::refused);
}

TEST_CASE("pairing is limited: closed by default, one window, ten requests a minute") {
  TempDir node_dir, coordinator_dir;
  auto trust = std::make_shared<protocol::Trust>(node_dir.path);
  const protocol::Keypair coordinator = protocol::load_or_create_identity(coordinator_dir.path);
  zmq::context_t context;
  {
    // Closed: an unknown key does not get past the handshake.
    node::ServerOptions options;
    options.trust = trust;
    options.log = [](const std::string&) {};
    Running node(options);
    SecureClient c(context, node.server->endpoint(), &coordinator, trust->keys().public_key);
    CHECK(c.handshake() == protocol::HandshakeResult::refused);
  }
  {
    // Open: pair requests are answered (pairing again replaces the entry),
    // and the eleventh within a minute is refused.
    node::ServerOptions options;
    options.trust = trust;
    options.pairing = node::PairingMode::accept;
    options.log = [](const std::string&) {};
    Running node(options);
    SecureClient c(context, node.server->endpoint(), &coordinator, trust->keys().public_key);
    REQUIRE(c.handshake() == protocol::HandshakeResult::succeeded);
    for (int i = 0; i < node::kMaxPairingsPerMinute; ++i) CHECK(c.pair(unix_now()).header().code == schema::Code::OK);
    const protocol::Reply limited = c.pair(unix_now());
    CHECK(limited.header().code == schema::Code::REFUSED);
    CHECK_THAT(limited.header().message, Contains("too many"));
  }
  {
    // A window of one second: a key unknown after it is refused again.
    node::ServerOptions options;
    options.trust = trust;
    options.pairing = node::PairingMode::accept;
    options.pairing_window = std::chrono::seconds(1);
    options.log = [](const std::string&) {};
    TempDir late_dir;
    const protocol::Keypair late = protocol::load_or_create_identity(late_dir.path);
    Running node(options);
    std::this_thread::sleep_for(milliseconds(1100));
    SecureClient c(context, node.server->endpoint(), &late, trust->keys().public_key);
    CHECK(c.handshake() == protocol::HandshakeResult::refused);
  }
}

TEST_CASE("a node keeps at most kMaxConnections connections open") {
  TempDir node_dir;
  auto trust = std::make_shared<protocol::Trust>(node_dir.path);
  node::ServerOptions options;
  options.trust = trust;
  options.log = [](const std::string&) {};
  Running node(options);
  const std::string endpoint = node.server->endpoint();
  const int port = std::stoi(endpoint.substr(endpoint.rfind(':') + 1));
  // Silent TCP connections, as a flood would open them.
  const size_t extra = 8;
  std::vector<int> fds;
  for (size_t i = 0; i < node::kMaxConnections + extra; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    fds.push_back(fd);
  }
  // Closed by the node: the stream ends (after libzmq's greeting) well
  // before the 5-second handshake timeout.
  size_t closed = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  std::vector<bool> ended(fds.size(), false);
  while (std::chrono::steady_clock::now() < until && closed < extra) {
    for (size_t i = 0; i < fds.size(); ++i) {
      if (ended[i]) continue;
      pollfd p{fds[i], POLLIN, 0};
      if (poll(&p, 1, 0) <= 0) continue;
      char buf[256];
      const ssize_t n = recv(fds[i], buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN)) {
        ended[i] = true;
        ++closed;
      }
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  CHECK(closed >= extra);
  CHECK(closed < fds.size());  // only those beyond the cap
  for (int fd : fds) close(fd);
  // The node still serves its device.
  zmq::context_t context;
  SecureClient own(context, endpoint, &trust->keys(), trust->keys().public_key);
  CHECK(own.handshake() == protocol::HandshakeResult::succeeded);
  CHECK(status_of(own.status()).getEncrypted());
}
