#include "coordinator/remote.h"

#include <capnp/message.h>

#include "protocol/envelope.h"

namespace huddle::coordinator {
namespace schema = protocol::schema;

Frame read_recognize_request(schema::Request::Reader request, std::chrono::milliseconds fallback) {
  const schema::RecognizeRequest::Reader r = request.getBody().getRecognize();
  if (r.getImage().which() != schema::RecognizeRequest::Image::ENCODED)
    throw protocol::ProtocolError("a coordinator takes encoded images (PNG or JPEG) only, not raw pixels");
  Frame f;
  for (capnp::Text::Reader t : r.getTasks()) f.tasks.emplace_back(t.cStr(), t.size());
  const schema::TaskOptions::Reader o = r.getOptions();
  f.top_k = o.getTopK();
  f.colours = o.getColours();
  f.min_score = o.getMinScore();
  f.max_objects = o.getMaxObjects();
  f.ensemble = r.getEnsemble();
  const uint32_t budget = request.getDeadlineMs();
  f.deadline = budget > 0 ? std::chrono::milliseconds(budget) : fallback;
  return f;
}

Scene recognize_remote(protocol::Client& client, const Frame& frame, std::chrono::milliseconds slack) {
  capnp::MallocMessageBuilder m;
  const uint64_t id = client.next_id();
  schema::Request::Builder request =
      protocol::init_request(m, id, static_cast<uint32_t>(frame.deadline.count()));
  schema::RecognizeRequest::Builder r = request.getBody().initRecognize();
  auto tasks = r.initTasks(static_cast<unsigned>(frame.tasks.size()));
  for (size_t i = 0; i < frame.tasks.size(); ++i) tasks.set(static_cast<unsigned>(i), frame.tasks[i]);
  schema::TaskOptions::Builder o = r.initOptions();
  o.setTopK(static_cast<uint16_t>(std::min<uint32_t>(frame.top_k, 65535)));
  o.setColours(static_cast<uint8_t>(std::min<uint32_t>(frame.colours, 255)));
  o.setMinScore(frame.min_score);
  o.setMaxObjects(static_cast<uint16_t>(std::min<uint32_t>(frame.max_objects, 65535)));
  r.setEnsemble(frame.ensemble);
  r.getImage().setEncoded();
  client.send(m, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(frame.image->data()), frame.image->size()));
  std::optional<protocol::Reply> reply = client.receive(id, frame.deadline + slack);
  if (!reply)
    throw RemoteError("no answer from the coordinator within " +
                      std::to_string((frame.deadline + slack).count()) + " ms");
  if (reply->header().code != schema::Code::OK)
    throw RemoteError("the coordinator answered " + protocol::code_name(reply->header().code) + ": " +
                      reply->header().message);
  const schema::Response::Reader root = reply->root();
  if (root.getBody().which() != schema::Response::Body::SCENE)
    throw protocol::ProtocolError("the coordinator's answer holds no scene");
  try {
    return read_scene(root.getBody().getScene());
  } catch (const kj::Exception& e) {
    throw protocol::ProtocolError(std::string("malformed scene: ") + e.getDescription().cStr());
  }
}

}  // namespace huddle::coordinator
