// libFuzzer target: any bytes read as an envelope frame (protocol/envelope.h)
// either give a checked message or raise ProtocolError; nothing else. The
// bytes go through what the node does with a request (header, then a run
// request's fields) and what a client does with a response (header, then the
// JSON that `huddle ask --json` prints, whose errors ask reports as a
// malformed answer), and what a coordinator does: a node's result or a
// coordinator's scene read into the fusion's structs, a recognize request's
// fields read.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <capnp/compat/json.h>
#include <kj/exception.h>

#include "coordinator/scene.h"
#include "node/server.h"
#include "protocol/envelope.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace huddle;
  try {
    const protocol::Envelope envelope({data, size});
    protocol::RequestHeader header;
    try {
      protocol::read_request_header(envelope, header);
      if (header.kind == protocol::schema::Request::Body::RUN) {
        const node::RunParams p = node::read_run_request(envelope.root<protocol::schema::Request>());
        if (p.options.regions.size() > node::kMaxRegions) std::abort();
      }
      if (header.kind == protocol::schema::Request::Body::RECOGNIZE) {
        const auto r = envelope.root<protocol::schema::Request>().getBody().getRecognize();
        size_t chars = 0;
        for (capnp::Text::Reader t : r.getTasks()) chars += t.size();
        (void)chars;
        (void)r.getOptions().getTopK();
      }
    } catch (const protocol::ProtocolError&) {
    } catch (const kj::Exception&) {
    }
    try {
      const protocol::ResponseHeader h = protocol::read_response_header(envelope);
      const auto body = envelope.root<protocol::schema::Response>().getBody();
      if (h.code == protocol::schema::Code::OK && body.which() == protocol::schema::Response::Body::RESULT) {
        coordinator::Answer answer;
        coordinator::read_answer(body.getResult(), answer);
      }
      if (body.which() == protocol::schema::Response::Body::SCENE) {
        const coordinator::Scene scene = coordinator::read_scene(body.getScene());
        (void)coordinator::scene_json(scene);
      }
    } catch (const protocol::ProtocolError&) {
    } catch (const kj::Exception&) {
    }
    try {
      protocol::read_response_header(envelope);
      capnp::JsonCodec codec;
      (void)codec.encode(envelope.root<protocol::schema::Response>());
    } catch (const protocol::ProtocolError&) {
    } catch (const kj::Exception&) {
    }
  } catch (const protocol::ProtocolError&) {
  }
  return 0;
}
