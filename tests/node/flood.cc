#include "tests/node/flood.h"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <random>

#include <capnp/message.h>

#include "protocol/socket.h"

namespace huddle::test {
namespace {

namespace schema = protocol::schema;

std::string frame_text(capnp::MessageBuilder& m) {
  const kj::Array<capnp::word> words = protocol::frame_of(m);
  const auto b = words.asBytes();
  return std::string(reinterpret_cast<const char*>(b.begin()), b.size());
}

std::string run_envelope(uint64_t id, uint16_t version = protocol::kVersion) {
  capnp::MallocMessageBuilder m;
  auto r = protocol::init_request(m, id, 0);
  r.setVersion(version);
  r.initBody().initRun().getImage().setEncoded();
  return frame_text(m);
}

}  // namespace

FloodReport flood(const std::string& endpoint, const std::vector<FloodImage>& images, size_t rounds,
                  size_t oversized_bytes, int timeout_ms, const protocol::Keypair* keys,
                  const std::string& server_key) {
  FloodReport report;
  zmq::context_t context;
  const auto connect = [&] { return std::make_unique<protocol::Client>(context, endpoint, keys, server_key); };
  auto client = connect();
  std::mt19937 gen(7);
  uint64_t next_id = 1000;
  // Reads `expected` answers: the valid requests' must be ok with the right
  // top label, every other one badInput.
  const auto collect = [&](size_t round, std::map<uint64_t, const FloodImage*>& valid, size_t expected) {
    const std::string where = "round " + std::to_string(round) + ": ";
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    for (; expected > 0; --expected) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      std::optional<protocol::Reply> reply;
      try {
        if (left.count() > 0) reply = client->receive(left);
      } catch (const protocol::ProtocolError& e) {
        report.problems.push_back(where + "malformed answer: " + e.what());
        continue;
      }
      if (!reply) {
        report.problems.push_back(where + std::to_string(expected) + " answers missing after " +
                                  std::to_string(timeout_ms) + " ms");
        return;
      }
      const protocol::ResponseHeader& h = reply->header();
      const auto it = valid.find(h.id);
      if (it == valid.end()) {
        if (h.code == schema::Code::BAD_INPUT)
          ++report.bad_refused;
        else
          report.problems.push_back(where + "a malformed message (id " + std::to_string(h.id) +
                                    ") answered " + protocol::code_name(h.code) + ": " + h.message);
        continue;
      }
      const FloodImage& image = *it->second;
      valid.erase(it);
      const auto body = reply->root().getBody();
      if (h.code != schema::Code::OK || !body.isResult() || !body.getResult().isClassify() ||
          body.getResult().getClassify().getLabels().size() == 0) {
        report.problems.push_back(where + image.name + " answered " + protocol::code_name(h.code) + ": " +
                                  h.message);
        continue;
      }
      const uint32_t top = body.getResult().getClassify().getLabels()[0].getIndex();
      if (top != image.label) {
        report.problems.push_back(where + image.name + " answered label " + std::to_string(top) +
                                  ", expected " + std::to_string(image.label));
        continue;
      }
      ++report.valid_ok;
    }
  };
  for (size_t round = 0; round < rounds; ++round) {
    std::uniform_int_distribution<int> byte(0, 255), length(1, 200);
    for (size_t i = 0; i < images.size(); ++i) {
      // One valid request and one with a bad image: two in flight, the
      // node's default limit; the header-malformed ones are refused at once
      // and take no place in flight.
      std::map<uint64_t, const FloodImage*> valid;  // id -> what it must answer
      size_t bad = 0;
      const auto send_bad = [&](std::vector<std::string> frames) {
        client->send_frames(frames);
        ++bad;
      };
      const uint64_t id = ++next_id;
      const FloodImage& image = images[i];
      const std::string image_frame(image.bytes.begin(), image.bytes.end());
      client->send_frames(std::vector<std::string>{run_envelope(id), image_frame});
      valid[id] = &image;
      std::string garbage(static_cast<size_t>(length(gen)), '\0');
      for (char& c : garbage) c = static_cast<char>(byte(gen));
      send_bad({garbage});
      send_bad({garbage, image_frame});
      const std::string env = run_envelope(++next_id);
      send_bad({env.substr(0, env.size() / 2), image_frame});  // truncated, whole words
      send_bad({env.substr(0, env.size() - 5), image_frame});  // truncated mid-word
      send_bad({run_envelope(++next_id, 0), image_frame});     // version 0
      capnp::MallocMessageBuilder unset;
      protocol::init_request(unset, ++next_id, 0);
      send_bad({frame_text(unset), image_frame});                     // body unset
      send_bad({run_envelope(++next_id)});                            // no image frame
      send_bad({run_envelope(++next_id), image_frame, image_frame});  // a frame too many
      send_bad({std::string()});                                      // an empty frame
      if ((round + i) % 2 == 0)
        send_bad(
            {run_envelope(++next_id), image_frame.substr(0, image_frame.size() / 3)});  // truncated image
      else
        send_bad({run_envelope(++next_id), std::string("\x89PNG\r\n\x1a\n") + garbage});  // not really a PNG
      report.valid_sent += valid.size();
      report.bad_sent += bad;
      collect(round, valid, valid.size() + bad);
    }
    // Every other round ends with a frame over the node's limit: libzmq drops
    // the connection, so a new client goes on.
    if (round % 2 == 1) {
      client->send_frames(
          std::vector<std::string>{run_envelope(++next_id), std::string(oversized_bytes, 'x')});
      ++report.oversized;
      client = connect();
    }
  }
  capnp::MallocMessageBuilder status;
  const uint64_t id = ++next_id;
  protocol::init_request(status, id, 0).initBody().setStatus();
  client->send(status);
  const std::optional<protocol::Reply> reply = client->receive(id, std::chrono::milliseconds(timeout_ms));
  report.status_after =
      reply && reply->header().code == schema::Code::OK && reply->root().getBody().isStatus();
  return report;
}

}  // namespace huddle::test
