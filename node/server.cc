#include "node/server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>

#include <capnp/message.h>
#include <kj/exception.h>

#include "protocol/socket.h"

namespace huddle::node {

namespace schema = protocol::schema;
using protocol::ProtocolError;
using Clock = std::chrono::steady_clock;

namespace {

uint32_t micros(double ms) {
  const double us = std::round(ms * 1000.0);
  return us <= 0 ? 0 : us >= 4.0e9 ? 4'000'000'000u : static_cast<uint32_t>(us);
}

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Sends the routing frames, then `message` as the last frame. Never blocks: an
// answer to a peer that is gone or not reading is dropped (a ROUTER's way).
void send_answer(zmq::socket_t& socket, std::vector<zmq::message_t>& route, capnp::MessageBuilder& message) {
  const kj::Array<capnp::word> words = protocol::frame_of(message);
  const kj::ArrayPtr<const kj::byte> bytes = words.asBytes();
  for (zmq::message_t& frame : route)
    if (!socket.send(frame, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) return;
  (void)socket.send(zmq::const_buffer(bytes.begin(), bytes.size()), zmq::send_flags::dontwait);
}

std::string kj_text(const kj::Exception& e) {
  return std::string(e.getDescription().cStr(), e.getDescription().size());
}

}  // namespace

struct Server::Job {
  std::vector<zmq::message_t> route;
  uint64_t id = 0;
  std::optional<Clock::time_point> deadline;
  uint32_t deadline_ms = 0;
  Clock::time_point arrival;
  RunParams params;
  zmq::message_t image;
};

RunParams read_run_request(schema::Request::Reader envelope) {
  RunParams p;
  try {
    const schema::RunRequest::Reader request = envelope.getBody().getRun();
    p.task = std::string(request.getTask().cStr(), request.getTask().size());
    p.options.top_k = request.getOptions().getTopK();
    p.options.colours = request.getOptions().getColours();
    p.options.min_score = request.getOptions().getMinScore();
    p.options.max_objects = request.getOptions().getMaxObjects();
    // A list of zero-sized structs costs no bytes: the count is checked first.
    if (request.getRegions().size() > kMaxRegions)
      throw ProtocolError(std::to_string(request.getRegions().size()) + " regions, more than the " +
                          std::to_string(kMaxRegions) + " a request may have");
    size_t i = 0;
    for (const schema::Box::Reader b : request.getRegions()) {
      const Box box{b.getX0(), b.getY0(), b.getX1(), b.getY1()};
      if (!std::isfinite(box.x0) || !std::isfinite(box.y0) || !std::isfinite(box.x1) ||
          !std::isfinite(box.y1))
        throw ProtocolError("region " + std::to_string(i) + " has a coordinate that is not a finite number");
      p.options.regions.push_back(box);
      ++i;
    }
    const auto image = request.getImage();
    if (image.isRaw()) {
      p.raw = true;
      const auto raw = image.getRaw();
      p.raw_width = raw.getWidth();
      p.raw_height = raw.getHeight();
      switch (raw.getFormat()) {
        case schema::PixelFormat::GRAY:
          p.raw_format = PixelFormat::gray;
          break;
        case schema::PixelFormat::RGB:
          p.raw_format = PixelFormat::rgb;
          break;
        case schema::PixelFormat::RGBA:
          p.raw_format = PixelFormat::rgba;
          break;
        default:
          throw ProtocolError("raw image's pixel format " +
                              std::to_string(static_cast<int>(raw.getFormat())) +
                              " is unset or unknown (gray, rgb, rgba)");
      }
    }
  } catch (const kj::Exception& e) {
    throw ProtocolError("malformed run request: " + kj_text(e));
  }
  return p;
}

Image request_image(const RunParams& params, std::span<const uint8_t> bytes, const DecodeLimits& limits) {
  if (!params.raw) return decode_image(bytes, limits, "image");
  const uint64_t pixels = uint64_t{params.raw_width} * params.raw_height;
  if (pixels == 0)
    throw ImageError("raw image: zero pixels (" + std::to_string(params.raw_width) + "x" +
                     std::to_string(params.raw_height) + ")");
  if (pixels > limits.max_pixels)
    throw ImageError("raw image: " + std::to_string(pixels) + " pixels, over the limit of " +
                     std::to_string(limits.max_pixels));
  const uint64_t want = pixels * channels(params.raw_format);
  if (bytes.size() != want)
    throw ImageError("raw image: " + std::to_string(params.raw_width) + "x" +
                     std::to_string(params.raw_height) + " " + format_name(params.raw_format) + " needs " +
                     std::to_string(want) + " bytes, the frame has " + std::to_string(bytes.size()));
  Image im;
  im.width = params.raw_width;
  im.height = params.raw_height;
  im.format = params.raw_format;
  im.pixels.assign(bytes.begin(), bytes.end());
  return im;
}

Server::Server(std::shared_ptr<const TaskFactory> factory, ServerOptions options)
    : factory_(std::move(factory)),
      options_(std::move(options)),
      router_(context_, zmq::socket_type::router),
      done_(context_, zmq::socket_type::pull),
      pairing_done_(context_, zmq::socket_type::pull),
      connections_(context_, zmq::socket_type::pair) {
  if (options_.workers == 0) throw std::runtime_error("a node needs at least one worker");
  if (options_.max_in_flight == 0) throw std::runtime_error("a node needs a max-in-flight of at least one");
  for (size_t i = 0; i < options_.workers; ++i) tasks_.push_back(factory_->make());

  if (options_.trust) {
    // The ZAP handler's thread only: when each refused key was last logged.
    auto refused = std::make_shared<std::map<std::string, Clock::time_point>>();
    zap_ = std::make_unique<protocol::ZapHandler>(context_, [this, refused](const std::string& key) {
      if (options_.trust->trusts(key, protocol::PeerRole::coordinator) || pairing_open()) return true;
      const Clock::time_point now = Clock::now();
      auto [it, first] = refused->try_emplace(key, now);
      if (first || now - it->second > std::chrono::minutes(1)) {
        it->second = now;
        if (refused->size() > 1024) refused->clear();
        std::string id = "?";
        try {
          id = protocol::device_id(key);
        } catch (const protocol::IdentityError&) {
        }
        say("refused a connection from device " + id + ": not paired with this node");
      }
      return false;
    });
    protocol::make_curve_server(router_, options_.trust->keys(), *zap_);
  }
  protocol::configure_socket(router_,
                             static_cast<int64_t>(options_.max_image_bytes + protocol::kMaxEnvelopeBytes));
  if (zmq_socket_monitor(router_.handle(), "inproc://huddle-node-connections",
                         ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0)
    throw std::runtime_error(std::string("cannot monitor the node's socket: ") + zmq_strerror(zmq_errno()));
  connections_.set(zmq::sockopt::linger, 0);
  connections_.connect("inproc://huddle-node-connections");
  try {
    router_.bind(protocol::bind_endpoint(options_.bind));
  } catch (const zmq::error_t& e) {
    throw std::runtime_error("cannot bind " + options_.bind + ": " + e.what());
  }
  endpoint_ = router_.get(zmq::sockopt::last_endpoint);
  done_endpoint_ = "inproc://huddle-node-done";
  done_.set(zmq::sockopt::linger, 0);
  done_.bind(done_endpoint_);
  pairing_done_.set(zmq::sockopt::linger, 0);
  pairing_done_.bind("inproc://huddle-node-pairing");

  if (pipe2(stop_pipe_, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::runtime_error(std::string("cannot make a pipe: ") + std::strerror(errno));
  warming_ = options_.warm_up ? options_.workers : 0;
  for (size_t i = 0; i < options_.workers; ++i) workers_.emplace_back([this, i] { worker(i); });
}

Server::~Server() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  ready_.notify_all();
  for (std::thread& t : workers_) t.join();
  closing_pairing_ = true;
  if (pairing_thread_.joinable()) pairing_thread_.join();
  for (int fd : stop_pipe_)
    if (fd >= 0) close(fd);
}

static_assert(std::atomic<bool>::is_always_lock_free, "stop() runs in signal handlers");

void Server::stop() noexcept {
  stop_asked_.store(true);  // seen by the next request, even one read in the same batch
  const char byte = 1;
  const ssize_t n = write(stop_pipe_[1], &byte, 1);
  (void)n;  // a full pipe already holds a stop request
}

void Server::when_ready(std::function<void()> fn) {
  {
    std::lock_guard lock(ready_mutex_);
    if (!ready()) {
      on_ready_.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

void Server::warm_up(Task& task) {
  // A 96x96 colour gradient: small, yet every stage of every task runs on it.
  Image image;
  image.width = image.height = 96;
  image.format = PixelFormat::rgb;
  image.pixels.resize(size_t{96} * 96 * 3);
  for (size_t i = 0; i < image.pixels.size(); ++i)
    image.pixels[i] = static_cast<uint8_t>((i * 7) ^ (i / 288));
  try {
    Timings timings;
    task.run(image, TaskOptions{}, timings);
  } catch (...) {
    // A task may refuse this image; the run still warmed what it touched.
  }
  if (warming_.fetch_sub(1) != 1) return;
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(ready_mutex_);
    callbacks.swap(on_ready_);
  }
  for (const auto& fn : callbacks) fn();
}

void Server::run() {
  zmq::pollitem_t items[5] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                              {done_.handle(), 0, ZMQ_POLLIN, 0},
                              {nullptr, stop_pipe_[0], ZMQ_POLLIN, 0},
                              {pairing_done_.handle(), 0, ZMQ_POLLIN, 0},
                              {connections_.handle(), 0, ZMQ_POLLIN, 0}};
  std::string reload_error;
  for (;;) {
    if (stopping_ && in_flight_ == 0) break;
    // With a Trust, the paired file is read again every kReloadInterval: a
    // coordinator unpaired by `huddle unpair` is refused within it.
    const int rc = zmq_poll(items, 5, options_.trust ? static_cast<long>(kReloadInterval.count()) : -1);
    if (rc < 0) {
      if (zmq_errno() == EINTR) continue;
      throw zmq::error_t();
    }
    if (options_.trust && Clock::now() - last_reload_ >= kReloadInterval) {
      last_reload_ = Clock::now();
      std::string error;
      if (options_.trust->reload(&error) && error != reload_error) {
        if (!error.empty()) say("trusting no coordinator until the paired file is fixed: " + error);
        reload_error = error;
      }
    }
    if (items[4].revents & ZMQ_POLLIN) on_connection_event();
    while (pairing_done_.get(zmq::sockopt::events) & ZMQ_POLLIN) forward_pairing_answer();
    if (items[2].revents & ZMQ_POLLIN) {
      char buf[64];
      while (read(stop_pipe_[0], buf, sizeof buf) > 0) {
      }
      stopping_ = true;
    }
    // Answers first, so a flood of requests cannot starve them; requests in
    // batches, so the answers stay prompt.
    while (done_.get(zmq::sockopt::events) & ZMQ_POLLIN) forward_answer();
    for (int n = 0; n < 64 && (router_.get(zmq::sockopt::events) & ZMQ_POLLIN); ++n) handle_request();
  }
  // The last answers may still sit in libzmq's queues: give them a moment to leave.
  router_.set(zmq::sockopt::linger, 1000);
}

namespace {

// Sends `frames` (a route, then an answer) on the ROUTER, never blocking.
void forward(zmq::socket_t& router, std::vector<zmq::message_t>& frames) {
  for (size_t i = 0; i < frames.size(); ++i)
    if (!router.send(frames[i], (i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none) |
                                    zmq::send_flags::dontwait))
      break;
}

}  // namespace

void Server::forward_answer() {
  std::vector<zmq::message_t> frames = protocol::receive_frames(done_);
  if (frames.empty()) return;
  --in_flight_;
  forward(router_, frames);
}

void Server::forward_pairing_answer() {
  std::vector<zmq::message_t> frames = protocol::receive_frames(pairing_done_);
  if (!frames.empty()) forward(router_, frames);
}

void Server::say(const std::string& line) const {
  if (options_.log) options_.log(line);
  else std::fprintf(stderr, "huddle node: %s\n", line.c_str());
}

bool Server::pairing_open() const {
  return options_.trust && options_.pairing != PairingMode::closed &&
         Clock::now() - started_ < options_.pairing_window;
}

void Server::on_connection_event() {
  while (const std::optional<protocol::MonitorEvent> e = protocol::next_monitor_event(connections_)) {
    const int fd = static_cast<int>(e->value);
    if (e->kind == ZMQ_EVENT_DISCONNECTED) {
      open_fds_.erase(fd);
    } else if (e->kind == ZMQ_EVENT_ACCEPTED) {
      open_fds_.insert(fd);
      if (open_fds_.size() > kMaxConnections) {
        // libzmq sees the end of the stream and closes the connection itself.
        shutdown(fd, SHUT_RDWR);
        const Clock::time_point now = Clock::now();
        if (now - last_cap_log_ > std::chrono::seconds(10)) {
          last_cap_log_ = now;
          say(std::to_string(kMaxConnections) + " connections open, the most a node keeps: closing new ones (" +
              e->endpoint + ")");
        }
      }
    }
  }
}

void Server::start_pairing(std::vector<zmq::message_t>& route, uint64_t id, const std::string& key,
                           schema::PairRequest::Reader request) {
  if (!pairing_open())
    return answer_now(route, id, schema::Code::REFUSED,
                      options_.pairing == PairingMode::closed
                          ? "this node is not open for pairing: start it with --accept-pairing or --ask-pairing"
                          : "this node's pairing window has closed (it was open for " +
                                std::to_string(options_.pairing_window.count()) + " s after its start)");
  const Clock::time_point now = Clock::now();
  while (!pairings_.empty() && now - pairings_.front() > std::chrono::minutes(1)) pairings_.pop_front();
  if (pairings_.size() >= static_cast<size_t>(kMaxPairingsPerMinute))
    return answer_now(route, id, schema::Code::REFUSED,
                      "too many pair requests: at most " + std::to_string(kMaxPairingsPerMinute) +
                          " a minute; try again later");
  if (pairing_busy_.load())
    return answer_now(route, id, schema::Code::REFUSED, "another pairing is in progress; try again in a moment");
  pairings_.push_back(now);
  pairing_busy_ = true;
  if (pairing_thread_.joinable()) pairing_thread_.join();  // the last one has finished: it cleared busy
  std::string name(request.getName().cStr(), request.getName().size());
  for (char& c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  pairing_thread_ = std::thread([this, route = std::move(route), id, key, name, t = request.getUnixSeconds()]() mutable {
    pair(std::move(route), id, key, name, t);
  });
}

void Server::pair(std::vector<zmq::message_t> route, uint64_t id, std::string key, std::string name,
                  int64_t unix_seconds) {
  capnp::MallocMessageBuilder builder;
  try {
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const std::string coordinator = protocol::device_id(key);
    const int64_t skew = unix_seconds - now;
    if (skew > kMaxClockSkewSeconds || skew < -kMaxClockSkewSeconds) {
      protocol::init_response(builder, id, schema::Code::REFUSED,
                              "the coordinator's clock is " + std::to_string(skew) +
                                  " s off this node's: the verification code depends on the time; set both clocks");
    } else {
      const std::string code = protocol::verification_code(key, options_.trust->keys().public_key, unix_seconds);
      const std::string who = "coordinator " + coordinator + (name.empty() ? "" : " (" + name + ")");
      bool accepted = true;
      if (options_.pairing == PairingMode::ask) {
        accepted = options_.ask && options_.ask(PairingAsk{coordinator, name, code}, kPairingAnswerSeconds);
      } else {
        say("pairing with " + who + ": code " + code);
      }
      if (closing_pairing_.load()) {
        protocol::init_response(builder, id, schema::Code::REFUSED, "the node is stopping");
      } else if (!accepted) {
        say("did not pair with " + who);
        protocol::init_response(builder, id, schema::Code::REFUSED, "pairing declined on the node");
      } else {
        protocol::PairedDevice device;
        device.public_key = key;
        device.name = name;
        device.paired_at = now;
        device.role = protocol::PeerRole::coordinator;
        options_.trust->paired().add(device);
        say("paired with " + who + ", code " + code);
        auto p = protocol::init_response(builder, id, schema::Code::OK).initBody().initPaired();
        p.setCode(code);
        p.setDeviceId(options_.trust->device_id());
        p.setName(options_.node_id);
        p.setTask(options_.task);
      }
    }
  } catch (const std::exception& e) {
    protocol::init_response(builder, id, schema::Code::ERROR, std::string("pairing failed on the node: ") + e.what());
  }
  zmq::socket_t out(context_, zmq::socket_type::push);
  out.set(zmq::sockopt::linger, 0);
  out.connect("inproc://huddle-node-pairing");
  // Free before the answer leaves: the next request may follow it at once
  // (start_pairing joins this thread before starting another).
  pairing_busy_ = false;
  send_answer(out, route, builder);
}

void Server::unpair(std::vector<zmq::message_t>& route, uint64_t id, const std::string& key) {
  if (key == options_.trust->keys().public_key)
    return answer_now(route, id, schema::Code::REFUSED,
                      "that is this device's own key (a process sharing the node's state directory): nothing to unpair");
  try {
    const std::optional<protocol::PairedDevice> gone = options_.trust->paired().remove(protocol::device_id(key));
    if (gone) say("unpaired coordinator " + gone->id + (gone->name.empty() ? "" : " (" + gone->name + ")") +
                  " at its request");
    capnp::MallocMessageBuilder builder;
    protocol::init_response(builder, id, schema::Code::OK, gone ? "" : "was not paired").initBody().setUnpaired();
    send_answer(router_, route, builder);
  } catch (const std::exception& e) {
    answer_now(route, id, schema::Code::ERROR, std::string("cannot unpair: ") + e.what());
  }
}

void Server::answer_now(std::vector<zmq::message_t>& route, uint64_t id, schema::Code code,
                        const std::string& message) {
  capnp::MallocMessageBuilder builder;
  protocol::init_response(builder, id, code, message);
  send_answer(router_, route, builder);
}

void Server::answer_status(std::vector<zmq::message_t>& route, uint64_t id) {
  capnp::MallocMessageBuilder builder;
  auto s = protocol::init_response(builder, id, schema::Code::OK).initBody().initStatus();
  s.setNodeId(options_.node_id);
  s.setTask(options_.task);
  s.setModel(factory_->model_name());
  s.setModelSha256(factory_->model_sha256());
  s.setState(stopping_ ? schema::NodeState::STOPPING
             : ready() ? schema::NodeState::READY
                       : schema::NodeState::WARMING);
  s.setInFlight(static_cast<uint16_t>(std::min<size_t>(in_flight_, 65535)));
  s.setMaxInFlight(static_cast<uint16_t>(std::min<size_t>(options_.max_in_flight, 65535)));
  s.setWorkers(static_cast<uint16_t>(std::min<size_t>(options_.workers, 65535)));
  s.setServed(served_.load());
  s.setSoftware(options_.software);
  s.setEncrypted(options_.trust != nullptr);
  s.setKeepsImages(false);  // a request's image is freed once it is answered
  if (options_.trust) s.setDeviceId(options_.trust->device_id());
  s.setPairing(pairing_open());
  send_answer(router_, route, builder);
}

void Server::handle_request() {
  if (stop_asked_.load()) stopping_ = true;
  std::vector<zmq::message_t> frames = protocol::receive_frames(router_);
  if (frames.empty()) return;
  const Clock::time_point arrival = Clock::now();
  // The first frame is the peer's identity (ROUTER adds it); a DEALER's
  // message follows it as it was sent: envelope, then image.
  const size_t body = 1;
  std::vector<zmq::message_t> route;
  route.push_back(std::move(frames[0]));
  const size_t parts = frames.size() - body;
  if (parts == 0) return answer_now(route, 0, schema::Code::BAD_INPUT, "request without an envelope frame");

  protocol::RequestHeader header;
  try {
    const zmq::message_t& env_frame = frames[body];
    const protocol::Envelope envelope({static_cast<const uint8_t*>(env_frame.data()), env_frame.size()});
    protocol::read_request_header(envelope, header);
    if (header.kind == schema::Request::Body::PAIR || header.kind == schema::Request::Body::UNPAIR) {
      if (!options_.trust)
        throw ProtocolError("this node runs --insecure: it has no keys and pairs with nobody");
      if (parts != 1) throw ProtocolError("pair or unpair request with frames after its envelope");
    }
    if (options_.trust) {
      const std::string key = protocol::sender_key(env_frame);
      if (header.kind == schema::Request::Body::PAIR)
        return start_pairing(route, header.id, key, envelope.root<schema::Request>().getBody().getPair());
      if (!options_.trust->trusts(key, protocol::PeerRole::coordinator))
        return answer_now(route, header.id, schema::Code::REFUSED,
                          "not paired with this node (device " + options_.trust->device_id() +
                              "): pair first ('huddle pair " + options_.trust->device_id() +
                              "' on the coordinator while the node is open for pairing)");
      if (header.kind == schema::Request::Body::UNPAIR) return unpair(route, header.id, key);
    }
    if (header.kind == schema::Request::Body::STATUS) {
      if (parts != 1)
        throw ProtocolError("status request with " + std::to_string(parts - 1) +
                            " frames after its envelope");
      return answer_status(route, header.id);
    }
    if (header.kind != schema::Request::Body::RUN)
      throw ProtocolError("this is a node serving '" + options_.task +
                          "': it answers run and status requests (recognize requests go to a coordinator)");
    if (parts != 2)
      throw ProtocolError("run request of " + std::to_string(parts) +
                          " frames (the envelope, then the image as its own frame)");
    auto job = std::make_unique<Job>();
    job->params = read_run_request(envelope.root<schema::Request>());
    if (!job->params.task.empty() && job->params.task != options_.task)
      throw ProtocolError("this node serves task '" + options_.task + "', not '" + job->params.task + "'");
    if (stopping_) return answer_now(route, header.id, schema::Code::OVERLOADED, "node is stopping");
    if (in_flight_ >= options_.max_in_flight)
      return answer_now(route, header.id, schema::Code::OVERLOADED,
                        std::to_string(in_flight_) + " requests in flight, the node's maximum");
    job->route = std::move(route);
    job->id = header.id;
    job->arrival = arrival;
    job->deadline_ms = header.deadline_ms;
    if (header.deadline_ms > 0) job->deadline = arrival + std::chrono::milliseconds(header.deadline_ms);
    job->image = std::move(frames[body + 1]);
    ++in_flight_;
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(std::move(job));
    }
    ready_.notify_one();
  } catch (const ProtocolError& e) {
    answer_now(route, header.id, schema::Code::BAD_INPUT, e.what());
  } catch (const kj::Exception& e) {
    answer_now(route, header.id, schema::Code::BAD_INPUT, "malformed request: " + kj_text(e));
  } catch (const std::exception& e) {
    answer_now(route, header.id, schema::Code::ERROR,
               std::string("node failed to read the request: ") + e.what());
  }
}

void Server::worker(size_t index) {
  Task& task = *tasks_[index];
  zmq::socket_t out(context_, zmq::socket_type::push);
  out.set(zmq::sockopt::linger, 0);
  out.connect(done_endpoint_);
  const DecodeLimits limits{.max_pixels = options_.max_pixels, .max_file_bytes = options_.max_image_bytes};
  if (options_.warm_up) warm_up(task);
  for (;;) {
    std::unique_ptr<Job> job;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    capnp::MallocMessageBuilder builder;
    const auto expired = [&] {
      if (!job->deadline || Clock::now() < *job->deadline) return false;
      protocol::init_response(
          builder, job->id, schema::Code::EXPIRED,
          "deadline of " + std::to_string(job->deadline_ms) + " ms passed before inference (" +
              std::to_string(static_cast<long>(ms_since(job->arrival))) + " ms since arrival)");
      return true;
    };
    if (!expired()) {
      try {
        Timings timings;
        const Clock::time_point t0 = Clock::now();
        const Image image = request_image(
            job->params, {static_cast<const uint8_t*>(job->image.data()), job->image.size()}, limits);
        timings.decode_ms = ms_since(t0);
        if (!expired()) {
          const std::unique_ptr<Result> result = task.run(image, job->params.options, timings);
          auto r = protocol::init_response(builder, job->id, schema::Code::OK);
          auto t = r.initTimings();
          t.setDecodeUs(micros(timings.decode_ms));
          t.setPreprocessUs(micros(timings.preprocess_ms));
          t.setInferenceUs(micros(timings.inference_ms));
          t.setPostprocessUs(micros(timings.postprocess_ms));
          result->write(r.initBody().initResult());
          served_.fetch_add(1);
        }
      } catch (const ImageError& e) {
        protocol::init_response(builder, job->id, schema::Code::BAD_INPUT, e.what());
      } catch (const BadRequest& e) {
        protocol::init_response(builder, job->id, schema::Code::BAD_INPUT, e.what());
      } catch (const std::exception& e) {
        protocol::init_response(builder, job->id, schema::Code::ERROR,
                                std::string("task failed: ") + e.what());
      } catch (const kj::Exception& e) {
        protocol::init_response(builder, job->id, schema::Code::ERROR, "task failed: " + kj_text(e));
      } catch (...) {
        protocol::init_response(builder, job->id, schema::Code::ERROR,
                                "task failed with an unknown exception");
      }
    }
    // PUSH over inproc to the I/O thread; its queue never fills, since at
    // most max_in_flight answers are outstanding.
    send_answer(out, job->route, builder);
  }
}

}  // namespace huddle::node
