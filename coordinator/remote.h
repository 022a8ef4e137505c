// A coordinator as a service (`huddle coordinator`): the two ends of its
// recognize request. A client sends a Request whose body is `recognize`
// (the frame's tasks and options) and the image as its own frame; the
// coordinator answers a Response whose body is the fused `scene`.
#pragma once

#include <chrono>
#include <stdexcept>
#include <string>

#include "coordinator/pool.h"
#include "coordinator/scene.h"
#include "protocol/socket.h"

namespace huddle::coordinator {

// The coordinator's side: the frame a recognize request asks for (without
// its image), its deadline the request's budget or `fallback` when it has
// none. Throws protocol::ProtocolError for what a coordinator does not serve
// (a raw image) and kj::Exception for a message Cap'n Proto refuses.
Frame read_recognize_request(protocol::schema::Request::Reader request, std::chrono::milliseconds fallback);

// The coordinator could not be asked or did not answer; what() says which.
class RemoteError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The client's side: sends `frame` (image included) through `client`, a
// DEALER connected to a coordinator, and waits for its scene up to the
// frame's deadline plus `slack`. Throws RemoteError when no scene comes (no
// answer in time, or a refusal, whose code and message it names) and
// protocol::ProtocolError for a malformed answer.
Scene recognize_remote(protocol::Client& client, const Frame& frame,
                       std::chrono::milliseconds slack = std::chrono::milliseconds(2000));

}  // namespace huddle::coordinator
