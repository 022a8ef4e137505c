// The coordinator's pool against scripted nodes on loopback: each fake node
// is a ROUTER speaking the node protocol whose behaviour a test sets (answer,
// refuse as overloaded, stay silent, die holding a request, send garbage),
// so spreading, retries, deadlines, losses and fusion are checked exactly.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <capnp/message.h>
#include <catch2/catch.hpp>
#include <zmq.hpp>

#include "coordinator/pool.h"
#include "protocol/envelope.h"
#include "protocol/security.h"
#include "protocol/socket.h"
#include "protocol/zap.h"
#include "tests/protocol/test_util.h"

namespace {

namespace schema = huddle::protocol::schema;
using namespace huddle::coordinator;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

enum class Mode { answer, overloaded, silent, mute, die, garbage, refused };

struct FakeDetection {
  float x0, y0, x1, y1;
  uint32_t index;
  const char* name;
  float score;
};

class FakeNode {
 public:
  // `curve`: a CURVE server with these keys (letting any client in: the
  // pool is under test, not the node); null: plain TCP.
  FakeNode(std::string id, std::string task, Mode mode = Mode::answer, int port = 0,
           const huddle::protocol::Keypair* curve = nullptr)
      : id_(std::move(id)), task_(std::move(task)), mode_(mode) {
    if (curve) {
      zap_ = std::make_unique<huddle::protocol::ZapHandler>(context_, [](const std::string&) { return true; });
      huddle::protocol::make_curve_server(socket_, *curve, *zap_);
    }
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:" + (port ? std::to_string(port) : std::string("*")));
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeNode() { stop(); }

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // "127.0.0.1:PORT"
  std::string peer() const { return endpoint_.substr(std::string("tcp://").size()); }
  int port() const { return std::stoi(endpoint_.substr(endpoint_.rfind(':') + 1)); }
  void set_mode(Mode m) { mode_ = m; }
  int runs() const { return runs_; }

  std::vector<std::pair<std::string, float>> labels;  // classify answer
  std::vector<FakeDetection> objects;                 // detect answer
  std::vector<std::string> colour_names = {"gray"};   // colour answer: one colour per region and the image

 private:
  void serve() {
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, milliseconds(10));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      std::vector<zmq::message_t> frames = huddle::protocol::receive_frames(socket_);
      if (frames.size() < 2) continue;
      const huddle::protocol::Envelope env({static_cast<const uint8_t*>(frames[1].data()), frames[1].size()});
      huddle::protocol::RequestHeader h;
      huddle::protocol::read_request_header(env, h);
      if (mode_ == Mode::mute) continue;
      capnp::MallocMessageBuilder m;
      if (mode_ == Mode::refused) {  // as a node that unpaired the sender
        huddle::protocol::init_response(m, h.id, schema::Code::REFUSED, "fake: not paired with this node");
        send(frames[0], m);
        continue;
      }
      if (h.kind == schema::Request::Body::STATUS) {
        auto s = huddle::protocol::init_response(m, h.id, schema::Code::OK).getBody().initStatus();
        s.setNodeId(id_);
        s.setTask(task_);
        s.setState(schema::NodeState::READY);
        s.setMaxInFlight(2);
        send(frames[0], m);
        continue;
      }
      ++runs_;
      const auto run = env.root<schema::Request>().getBody().getRun();
      switch (mode_.load()) {
        case Mode::silent:
          continue;
        case Mode::die:
          socket_.close();  // the connection closes, as when the process dies: the peer sees it at once
          return;
        case Mode::garbage: {
          const std::string junk = "not a capnp message";
          socket_.send(zmq::buffer(frames[0].data(), frames[0].size()), zmq::send_flags::sndmore);
          socket_.send(zmq::buffer(junk), zmq::send_flags::none);
          continue;
        }
        case Mode::overloaded:
          huddle::protocol::init_response(m, h.id, schema::Code::OVERLOADED, "fake: full");
          send(frames[0], m);
          continue;
        default:
          break;
      }
      auto r = huddle::protocol::init_response(m, h.id, schema::Code::OK);
      r.initTimings().setInferenceUs(1000);
      auto result = r.getBody().initResult();
      if (task_ == "classify") {
        auto list = result.initClassify().initLabels(static_cast<unsigned>(labels.size()));
        for (size_t i = 0; i < labels.size(); ++i) {
          list[i].setIndex(static_cast<uint32_t>(i));
          list[i].setName(labels[i].first);
          list[i].setScore(labels[i].second);
        }
      } else if (task_ == "detect") {
        auto list = result.initDetect().initObjects(static_cast<unsigned>(objects.size()));
        for (size_t i = 0; i < objects.size(); ++i) {
          const FakeDetection& d = objects[i];
          auto b = list[i].initBox();
          b.setX0(d.x0), b.setY0(d.y0), b.setX1(d.x1), b.setY1(d.y1);
          list[i].setIndex(d.index);
          list[i].setName(d.name);
          list[i].setScore(d.score);
        }
      } else {
        auto colour = result.initColour();
        auto image = colour.initImage();
        image.initBox().setX1(640), image.getBox().setY1(480);
        image.initColours(1)[0].setName("white");
        auto regions = colour.initRegions(run.getRegions().size());
        for (unsigned i = 0; i < regions.size(); ++i) {
          regions[i].setBox(run.getRegions()[i]);
          auto c = regions[i].initColours(1)[0];
          c.setName(colour_names[i % colour_names.size()]);
          c.setShare(1);
        }
      }
      send(frames[0], m);
    }
  }

  void send(const zmq::message_t& route, capnp::MessageBuilder& m) {
    const kj::Array<capnp::word> words = huddle::protocol::frame_of(m);
    socket_.send(zmq::buffer(route.data(), route.size()), zmq::send_flags::sndmore);
    socket_.send(zmq::buffer(words.asBytes().begin(), words.asBytes().size()), zmq::send_flags::none);
  }

  std::string id_, task_;
  std::atomic<Mode> mode_;
  zmq::context_t context_{1};
  std::unique_ptr<huddle::protocol::ZapHandler> zap_;  // outlives socket_
  zmq::socket_t socket_{context_, zmq::socket_type::router};
  std::string endpoint_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> runs_{0};
};

PoolOptions peers(std::initializer_list<const FakeNode*> nodes) {
  PoolOptions o;
  o.mdns = false;
  for (const FakeNode* n : nodes) o.peers.push_back(n->peer());
  o.log = [](const std::string&) {};
  return o;
}

Frame frame_of(std::vector<std::string> tasks, milliseconds deadline = milliseconds(1000)) {
  Frame f;
  f.image = std::make_shared<const std::string>("an image's bytes (the fakes never decode them)");
  f.tasks = std::move(tasks);
  f.deadline = deadline;
  return f;
}

const TaskReport& report(const Scene& s, const std::string& task) {
  for (const TaskReport& t : s.tasks)
    if (t.task == task) return t;
  FAIL("no report for " << task);
  return s.tasks.front();
}

bool in_rotation(const Pool& pool, const std::string& id) {
  for (const NodeView& n : pool.nodes())
    if (n.id == id) return n.in_rotation;
  return false;
}

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

}  // namespace

TEST_CASE("frames spread evenly across the nodes of one task") {
  FakeNode a("a", "colour"), b("b", "colour");
  Pool pool(peers({&a, &b}));
  REQUIRE(pool.wait_ready({"colour"}, milliseconds(3000)));
  REQUIRE(pool.wait_ready({}, milliseconds(3000)));
  for (int i = 0; i < 10; ++i) CHECK(pool.recognize(frame_of({"colour"})).complete());
  CHECK(a.runs() == 5);
  CHECK(b.runs() == 5);
}

TEST_CASE("an overloaded node's request is retried once on another node") {
  FakeNode full("full", "colour", Mode::overloaded), free_("free", "colour");
  Pool pool(peers({&full, &free_}));
  REQUIRE(pool.wait_ready({}, milliseconds(3000)));
  for (int i = 0; i < 4; ++i) {
    const Scene s = pool.recognize(frame_of({"colour"}));
    CHECK(s.complete());
    CHECK(report(s, "colour").node == "free");
  }
  CHECK(full.runs() >= 1);
  free_.set_mode(Mode::overloaded);
  const Scene s = pool.recognize(frame_of({"colour"}));
  CHECK(report(s, "colour").outcome == Outcome::overloaded);
  CHECK(report(s, "colour").attempts == 2);
  CHECK_THAT(report(s, "colour").message, Catch::Matchers::Contains("fake: full"));
}

TEST_CASE("a silent node: the frame is fused at its deadline with the task timed out") {
  FakeNode quiet("quiet", "colour", Mode::silent), fine("fine", "classify");
  fine.labels = {{"cat", 0.9f}};
  Pool pool(peers({&quiet, &fine}));
  REQUIRE(pool.wait_ready({"colour", "classify"}, milliseconds(3000)));
  const auto start = Clock::now();
  const Scene s = pool.recognize(frame_of({"colour", "classify"}, milliseconds(300)));
  const double took = ms_since(start);
  CHECK(took >= 299);
  CHECK(took < 400);
  CHECK_FALSE(s.complete());
  CHECK(report(s, "colour").outcome == Outcome::timeout);
  CHECK(report(s, "classify").outcome == Outcome::ok);
  CHECK(s.labels.at(0).name == "cat");
  CHECK_THAT(s.summary, Catch::Matchers::Contains("missing: colour: timeout"));
}

TEST_CASE("a node that dies holding a request: retried elsewhere, or reported lost before the deadline") {
  SECTION("another node of the task takes the retry") {
    FakeNode dying("dying", "colour", Mode::die), spare("spare", "colour");
    Pool pool(peers({&dying, &spare}));
    REQUIRE(pool.wait_ready({}, milliseconds(3000)));
    bool retried = false;
    for (int i = 0; i < 4; ++i) {
      const Scene s = pool.recognize(frame_of({"colour"}, milliseconds(2000)));
      CHECK(s.complete());
      CHECK(report(s, "colour").node == "spare");
      retried = retried || report(s, "colour").attempts == 2;
    }
    CHECK(retried);
    CHECK_FALSE(in_rotation(pool, "dying"));
  }
  SECTION("no other node: nodeLost, long before the deadline") {
    FakeNode dying("dying", "colour", Mode::die);
    Pool pool(peers({&dying}));
    REQUIRE(pool.wait_ready({}, milliseconds(3000)));
    const auto start = Clock::now();
    const Scene s = pool.recognize(frame_of({"colour"}, milliseconds(5000)));
    CHECK(ms_since(start) < 1000);
    CHECK(report(s, "colour").outcome == Outcome::node_lost);
  }
}

TEST_CASE("a node that stops answering leaves rotation within the silence limit and returns when it answers") {
  FakeNode node("n", "colour");
  PoolOptions o = peers({&node});
  o.lost_after = milliseconds(1000);
  Pool pool(o);
  REQUIRE(pool.wait_ready({}, milliseconds(3000)));
  node.set_mode(Mode::mute);
  const auto start = Clock::now();
  while (in_rotation(pool, "n") && ms_since(start) < 3000) std::this_thread::sleep_for(milliseconds(10));
  const double out_after = ms_since(start);
  CHECK_FALSE(in_rotation(pool, "n"));
  CHECK(out_after < 1700);  // lost_after plus a status interval and a tick
  const Scene s = pool.recognize(frame_of({"colour"}, milliseconds(200)));
  CHECK(report(s, "colour").outcome == Outcome::no_node);
  node.set_mode(Mode::answer);
  CHECK(pool.wait_ready({"colour"}, milliseconds(3000)));
  CHECK(pool.recognize(frame_of({"colour"})).complete());
}

TEST_CASE("a node restarted on the same address is taken back") {
  auto node = std::make_unique<FakeNode>("n", "colour");
  const int port = node->port();
  Pool pool(peers({node.get()}));
  REQUIRE(pool.wait_ready({}, milliseconds(3000)));
  node.reset();
  const auto start = Clock::now();
  while (in_rotation(pool, "n") && ms_since(start) < 3000) std::this_thread::sleep_for(milliseconds(10));
  CHECK_FALSE(in_rotation(pool, "n"));
  node = std::make_unique<FakeNode>("n", "colour", Mode::answer, port);
  CHECK(pool.wait_ready({"colour"}, milliseconds(3000)));
  CHECK(pool.recognize(frame_of({"colour"})).complete());
}

TEST_CASE("a task nobody serves is reported at once; garbage from a node is ignored") {
  FakeNode junk("junk", "colour", Mode::garbage);
  Pool pool(peers({&junk}));
  REQUIRE(pool.wait_ready({}, milliseconds(3000)));
  const auto start = Clock::now();
  const Scene s = pool.recognize(frame_of({"ocr", "colour"}, milliseconds(300)));
  CHECK(report(s, "ocr").outcome == Outcome::no_node);
  CHECK(report(s, "colour").outcome == Outcome::timeout);
  CHECK(ms_since(start) < 400);
  CHECK(in_rotation(pool, "junk"));
}

TEST_CASE("fusion: detected objects get the colours of their boxes; the summary names both") {
  FakeNode detect("d", "detect"), colour("c", "colour");
  detect.objects = {{10, 10, 100, 200, 16, "dog", 0.91f}, {120, 50, 400, 300, 1, "bicycle", 0.84f}};
  colour.colour_names = {"brown", "red"};
  Pool pool(peers({&detect, &colour}));
  REQUIRE(pool.wait_ready({"detect", "colour"}, milliseconds(3000)));
  const Scene s = pool.recognize(frame_of({}));
  REQUIRE(s.complete());
  REQUIRE(s.objects.size() == 2);
  CHECK(s.objects[0].name == "dog");
  CHECK(s.objects[0].colours.at(0).name == "brown");
  CHECK(s.objects[1].colours.at(0).name == "red");
  CHECK(s.objects[1].colour_node == "c");
  CHECK(s.colours.at(0).name == "white");
  CHECK(s.summary == "dog (0.91, brown) and bicycle (0.84, red)");
  CHECK(s.tasks.at(0).task == "detect");  // the detector first when no tasks are named
}

TEST_CASE("ensemble: every node of the task answers and their labels are averaged") {
  FakeNode a("a", "classify"), b("b", "classify");
  a.labels = {{"cat", 0.8f}, {"dog", 0.2f}};
  b.labels = {{"cat", 0.4f}, {"dog", 0.6f}};
  Pool pool(peers({&a, &b}));
  REQUIRE(pool.wait_ready({}, milliseconds(3000)));
  Frame f = frame_of({"classify"});
  f.ensemble = true;
  const Scene s = pool.recognize(f);
  REQUIRE(s.complete());
  CHECK(report(s, "classify").nodes.size() == 2);
  REQUIRE(s.labels.size() == 2);
  CHECK(s.labels[0].name == "cat");
  CHECK(s.labels[0].score == Approx(0.6f));
  CHECK(s.labels[1].score == Approx(0.4f));
}

TEST_CASE("a request a silent node holds is sent again to another node of the task: the frame completes") {
  FakeNode quiet("quiet", "colour", Mode::silent), fine("fine", "colour");
  Pool pool(peers({&quiet, &fine}));
  REQUIRE(pool.wait_ready({}, milliseconds(3000)));
  int hedged = 0;
  for (int i = 0; i < 4; ++i) {
    const auto start = Clock::now();
    const Scene s = pool.recognize(frame_of({"colour"}, milliseconds(1000)));
    CHECK(ms_since(start) < 700);  // the hedge goes after 250 ms, long before the deadline
    CHECK(s.complete());
    CHECK(report(s, "colour").node == "fine");
    hedged += report(s, "colour").attempts == 2;
  }
  CHECK(hedged >= 1);
  CHECK(quiet.runs() >= 1);
}

TEST_CASE("with a Trust the pool uses only its own device's and paired nodes; an unpaired one goes within 1 s") {
  using huddle::protocol::Keypair;
  using huddle::test::TempDir;
  TempDir coordinator_dir, paired_dir, stranger_dir;
  auto trust = std::make_shared<huddle::protocol::Trust>(coordinator_dir.path);
  const Keypair paired_keys = huddle::protocol::load_or_create_identity(paired_dir.path);
  const Keypair stranger_keys = huddle::protocol::load_or_create_identity(stranger_dir.path);
  const std::string paired_id = huddle::protocol::device_id(paired_keys.public_key);
  {
    huddle::protocol::PairedDevice d;
    d.public_key = paired_keys.public_key;
    d.name = "garden";
    huddle::protocol::PairedKeys(coordinator_dir.path).add(d);
  }
  FakeNode own("own", "colour", Mode::answer, 0, &trust->keys());
  FakeNode paired("garden", "detect", Mode::answer, 0, &paired_keys);
  FakeNode stranger("stranger", "classify", Mode::answer, 0, &stranger_keys);
  FakeNode unnamed("unnamed", "classify", Mode::answer, 0, &stranger_keys);
  paired.objects = {{10, 10, 50, 50, 16, "dog", 0.9f}};
  stranger.labels = {{"impostor", 1.0f}};

  PoolOptions o;
  o.mdns = false;
  o.trust = trust;
  o.log = [](const std::string&) {};
  o.peers = {own.peer(), paired_id + "@" + paired.peer(), stranger_keys.public_key + "@" + stranger.peer(),
             unnamed.peer()};
  Pool pool(o);
  REQUIRE(pool.wait_ready({"colour", "detect"}, milliseconds(5000)));
  const auto state_of = [&](const std::string& endpoint_suffix) {
    for (const NodeView& n : pool.nodes())
      if (n.endpoint.ends_with(endpoint_suffix)) return n.state;
    return std::string("absent");
  };
  CHECK(state_of(stranger.peer()) == "unpaired");
  // No id given: taken to be this device's, and its key says otherwise.
  const auto until = Clock::now() + milliseconds(3000);
  while (state_of(unnamed.peer()) != "wrong-key" && Clock::now() < until) std::this_thread::sleep_for(milliseconds(20));
  CHECK(state_of(unnamed.peer()) == "wrong-key");

  for (int i = 0; i < 5; ++i) {
    const Scene s = pool.recognize(frame_of({"detect", "colour", "classify"}));
    CHECK(report(s, "detect").outcome == Outcome::ok);
    CHECK(report(s, "colour").outcome == Outcome::ok);
    CHECK(report(s, "classify").outcome == Outcome::no_node);
  }
  CHECK(stranger.runs() == 0);
  CHECK(unnamed.runs() == 0);

  // `huddle unpair` in another process rewrites the paired file.
  REQUIRE(huddle::protocol::PairedKeys(coordinator_dir.path).remove(paired_id).has_value());
  const auto removed = Clock::now();
  while (state_of(paired.peer()) != "unpaired" && Clock::now() - removed < milliseconds(5000))
    std::this_thread::sleep_for(milliseconds(10));
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - removed).count();
  CHECK(state_of(paired.peer()) == "unpaired");
  CHECK(ms < 1000);
  const int runs = paired.runs();
  const Scene after = pool.recognize(frame_of({"detect"}));
  CHECK(report(after, "detect").outcome == Outcome::no_node);
  CHECK(paired.runs() == runs);
}

TEST_CASE("a node that refuses us (unpaired on its side) is dropped at once and its frames go elsewhere") {
  huddle::test::TempDir dir;
  auto trust = std::make_shared<huddle::protocol::Trust>(dir.path);
  FakeNode a("a", "colour", Mode::answer, 0, &trust->keys());
  FakeNode b("b", "colour", Mode::answer, 0, &trust->keys());
  PoolOptions o = peers({&a, &b});
  o.trust = trust;
  Pool pool(o);
  REQUIRE(pool.wait_ready({"colour"}, milliseconds(5000)));
  b.set_mode(Mode::refused);
  int ok = 0;
  for (int i = 0; i < 10; ++i) ok += report(pool.recognize(frame_of({"colour"})), "colour").outcome == Outcome::ok;
  CHECK(ok == 10);  // a frame b refused was retried on a
  std::string state;
  for (const NodeView& n : pool.nodes())
    if (n.endpoint.ends_with(b.peer())) state = n.state;
  CHECK(state != "ready");
}
