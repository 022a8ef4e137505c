// libFuzzer target: any bytes read as an envelope frame (protocol/envelope.h)
// either give a checked message or raise ProtocolError; nothing else. The
// bytes go through what the node does with a request (header, then a run
// request's fields) and what a client does with a response (header, then the
// JSON that `huddle ask --json` prints, whose errors ask reports as a
// malformed answer).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <capnp/compat/json.h>
#include <kj/exception.h>

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
    } catch (const protocol::ProtocolError&) {
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
