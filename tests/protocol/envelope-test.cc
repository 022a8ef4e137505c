// protocol/envelope.h: requests and responses round trip through frames;
// malformed frames are refused with a ProtocolError naming the problem.
#include "protocol/envelope.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include <capnp/schema.h>

namespace {

using namespace huddle::protocol;
using Catch::Matchers::Contains;

std::vector<uint8_t> bytes_of(capnp::MessageBuilder& message) {
  const kj::Array<capnp::word> words = frame_of(message);
  const auto b = words.asBytes();
  return {b.begin(), b.end()};
}

std::vector<uint8_t> run_request_frame(uint64_t id, uint32_t deadline_ms) {
  capnp::MallocMessageBuilder m;
  auto run = init_request(m, id, deadline_ms).initBody().initRun();
  run.setTask("colour");
  run.initOptions().setColours(3);
  auto regions = run.initRegions(2);
  regions[1].setX1(10.5f);
  run.getImage().setEncoded();
  return bytes_of(m);
}

// The bytes at an odd address: what libzmq gives for a small frame it keeps inline.
struct Unaligned {
  std::vector<uint8_t> storage;
  std::span<const uint8_t> view;
  explicit Unaligned(const std::vector<uint8_t>& b) : storage(b.size() + 1) {
    std::memcpy(storage.data() + 1, b.data(), b.size());
    view = {storage.data() + 1, b.size()};
  }
};

std::string refusal(std::span<const uint8_t> frame) {
  try {
    const Envelope e(frame);
    RequestHeader h;
    read_request_header(e, h);
  } catch (const ProtocolError& e) {
    return e.what();
  }
  return "accepted";
}

// A single-segment frame of `words` (segment table added).
std::vector<uint8_t> frame_of_words(const std::vector<uint64_t>& words) {
  std::vector<uint8_t> out(8 + words.size() * 8);
  const uint32_t table[2] = {0, static_cast<uint32_t>(words.size())};
  std::memcpy(out.data(), table, 8);
  std::memcpy(out.data() + 8, words.data(), words.size() * 8);
  return out;
}

// A struct pointer at word `at` to a struct at word `target` (little endian).
uint64_t struct_pointer(int64_t at, int64_t target, uint16_t data_words, uint16_t pointers) {
  const int64_t offset = target - (at + 1);
  return (static_cast<uint64_t>(static_cast<uint32_t>(offset << 2))) | (uint64_t{data_words} << 32) |
         (uint64_t{pointers} << 48);
}

// A list pointer at word `at` to `count` 8-byte elements at word `target`.
uint64_t list_pointer(int64_t at, int64_t target, uint32_t count) {
  const int64_t offset = target - (at + 1);
  return (static_cast<uint64_t>(static_cast<uint32_t>(offset << 2)) | 1) | (uint64_t{5} << 32) |
         (uint64_t{count} << 35);
}

}  // namespace

TEST_CASE("a run request round trips, aligned or not") {
  const std::vector<uint8_t> frame = run_request_frame(42, 250);
  const Unaligned odd(frame);
  for (const std::span<const uint8_t> view : {std::span<const uint8_t>(frame), odd.view}) {
    const Envelope e(view);
    RequestHeader h;
    read_request_header(e, h);
    CHECK(h.version == kVersion);
    CHECK(h.id == 42);
    CHECK(h.deadline_ms == 250);
    CHECK(h.kind == schema::Request::Body::RUN);
    const auto run = e.root<schema::Request>().getBody().getRun();
    CHECK(std::string(run.getTask().cStr()) == "colour");
    CHECK(run.getOptions().getColours() == 3);
    CHECK(run.getOptions().getTopK() == 5);  // the schema's default
    REQUIRE(run.getRegions().size() == 2);
    CHECK(run.getRegions()[1].getX1() == 10.5f);
  }
}

TEST_CASE("a status request and a response round trip") {
  capnp::MallocMessageBuilder m;
  init_request(m, 7, 0).initBody().setStatus();
  const std::vector<uint8_t> frame = bytes_of(m);
  const Envelope e(frame);
  RequestHeader h;
  read_request_header(e, h);
  CHECK(h.kind == schema::Request::Body::STATUS);
  CHECK(h.id == 7);

  capnp::MallocMessageBuilder r;
  auto response = init_response(r, 7, schema::Code::OK);
  auto labels = response.initBody().initResult().initClassify().initLabels(1);
  labels[0].setIndex(3);
  labels[0].setName("three");
  response.initTimings().setInferenceUs(1234);
  const std::vector<uint8_t> rframe = bytes_of(r);
  const Envelope re(rframe);
  const ResponseHeader rh = read_response_header(re);
  CHECK(rh.id == 7);
  CHECK(rh.code == schema::Code::OK);
  const auto body = re.root<schema::Response>();
  CHECK(body.getTimings().getInferenceUs() == 1234);
  CHECK(std::string(body.getBody().getResult().getClassify().getLabels()[0].getName().cStr()) == "three");

  capnp::MallocMessageBuilder refused;
  init_response(refused, 9, schema::Code::OVERLOADED, "2 requests in flight");
  const std::vector<uint8_t> f = bytes_of(refused);
  const ResponseHeader fh = read_response_header(Envelope(f));
  CHECK(fh.code == schema::Code::OVERLOADED);
  CHECK(fh.message == "2 requests in flight");
  CHECK(code_name(fh.code) == "overloaded");
  CHECK(code_name(static_cast<schema::Code>(99)) == "code 99");
}

TEST_CASE("frames that are not one whole message are refused") {
  const std::vector<uint8_t> frame = run_request_frame(1, 0);
  CHECK_THAT(refusal({}), Contains("empty envelope frame"));
  CHECK_THAT(refusal({frame.data(), frame.size() - 3}), Contains("not a whole number of 8-byte words"));
  // Cut by whole words: the segment table announces more than there is.
  CHECK_THAT(refusal({frame.data(), frame.size() - 8}), Contains("malformed envelope"));
  CHECK_THAT(refusal({frame.data(), 8}), Contains("malformed envelope"));
  std::vector<uint8_t> longer = frame;
  longer.resize(frame.size() + 16);
  CHECK_THAT(refusal(longer), Contains("16 bytes after its message"));
  const std::vector<uint8_t> big(kMaxEnvelopeBytes + 8);
  CHECK_THAT(refusal(big), Contains("over the limit of 65536"));
  // A segment table announcing 2^32 - 1 segments.
  std::vector<uint8_t> segments(64, 0xff);
  CHECK_THAT(refusal(segments), Contains("malformed envelope"));
}

TEST_CASE("version 0, unset and unknown union members are refused; newer versions are read") {
  SECTION("version 0") {
    capnp::MallocMessageBuilder m;
    auto r = init_request(m, 5, 0);
    r.setVersion(0);
    r.initBody().setStatus();
    CHECK_THAT(refusal(bytes_of(m)), Contains("without a protocol version"));
  }
  SECTION("a newer version") {
    capnp::MallocMessageBuilder m;
    auto r = init_request(m, 5, 0);
    r.setVersion(kVersion + 3);
    r.initBody().setStatus();
    CHECK(refusal(bytes_of(m)) == "accepted");
  }
  SECTION("unset body") {
    capnp::MallocMessageBuilder m;
    init_request(m, 5, 0);
    CHECK_THAT(refusal(bytes_of(m)), Contains("request body is unset"));
  }
  SECTION("unset image") {
    capnp::MallocMessageBuilder m;
    init_request(m, 5, 0).initBody().initRun().setTask("classify");
    CHECK_THAT(refusal(bytes_of(m)), Contains("image kind is unset"));
  }
  SECTION("a body member this build does not know") {
    capnp::MallocMessageBuilder m;
    init_request(m, 5, 0).initBody().setStatus();
    std::vector<uint8_t> frame = bytes_of(m);
    // The root struct's data section starts after the segment table (word 0)
    // and the root pointer (word 1) at the pointer's offset.
    uint64_t root;
    std::memcpy(&root, frame.data() + 8, 8);
    const size_t data = 16 + 8 * static_cast<size_t>(static_cast<int32_t>(root & 0xffffffff) >> 2);
    const uint32_t disc =
        capnp::Schema::from<schema::Request::Body>().getProto().getStruct().getDiscriminantOffset();
    const uint16_t future = 9;
    std::memcpy(frame.data() + data + 2 * disc, &future, 2);
    RequestHeader h;
    CHECK_THAT(refusal(frame), Contains("request kind 9 is unknown to this node"));
    // The id is still known, so the refusal can name the request.
    try {
      read_request_header(Envelope(frame), h);
    } catch (const ProtocolError&) {
    }
    CHECK(h.id == 5);
  }
}

TEST_CASE("pointer tricks meet the nesting and traversal limits") {
  SECTION("a chain of 100 nested structs") {
    std::vector<uint64_t> words;
    for (int i = 0; i < 100; ++i) words.push_back(struct_pointer(i, i + 1, 0, 1));
    words.push_back(0);
    CHECK_THAT(refusal(frame_of_words(words)), Contains("too deeply-nested"));
  }
  SECTION("a few structs' pointers all to one list (amplification)") {
    // Root: a struct of 200 pointers, each to the same 200-word list: the
    // frame is 401 words, a full traversal 200 * 200.
    std::vector<uint64_t> words;
    words.push_back(struct_pointer(0, 1, 0, 200));
    for (int i = 0; i < 200; ++i) words.push_back(list_pointer(1 + i, 201, 200));
    for (int i = 0; i < 200; ++i) words.push_back(uint64_t(i));
    const std::vector<uint8_t> frame = frame_of_words(words);
    CHECK(traversal_limit_words(frame.size()) < 200u * 200u);
    CHECK_THAT(refusal(frame), Contains("traversal limit"));
  }
  SECTION("a pointer out of the segment") {
    std::vector<uint64_t> words = {struct_pointer(0, 1000, 1, 0)};
    CHECK_THAT(refusal(frame_of_words(words)), Contains("out-of-bounds"));
  }
  SECTION("a root that is a list, not a struct") {
    std::vector<uint64_t> words = {list_pointer(0, 1, 1), 0};
    CHECK_THAT(refusal(frame_of_words(words)), Contains("non-struct pointer"));
  }
}

TEST_CASE("an ok response without a result or status is refused") {
  capnp::MallocMessageBuilder m;
  init_response(m, 3, schema::Code::OK);
  const std::vector<uint8_t> frame = bytes_of(m);
  CHECK_THROWS_WITH(read_response_header(Envelope(frame)), Contains("ok response without a body"));
}
