// The TXT record a node publishes, the parser a browser reads it with, and
// static peers (discovery/discovery.h).
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "discovery/discovery.h"

using namespace huddle::discovery;
using Catch::Matchers::Contains;
using Strings = std::vector<std::string>;

namespace {

Announcement colour_node() {
  Announcement a;
  a.instance = "huddle colour on h1";
  a.port = 5555;
  a.id = "n1";
  a.task = "colour";
  return a;
}

size_t record_bytes(const Strings& strings) {
  size_t n = 0;
  for (const std::string& s : strings) n += 1 + s.size();
  return n;
}

}  // namespace

TEST_CASE("txt_record: txtvers first, then the keys in order, ck only when set") {
  Announcement a = colour_node();
  CHECK(txt_record(a) == Strings{"txtvers=1", "id=n1", "task=colour", "model=", "proto=1", "state=warming"});
  a.model = "mobilenet.hdm";
  a.ck = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
  a.state = "ready";
  CHECK(txt_record(a) == Strings{"txtvers=1", "id=n1", "task=colour", "model=mobilenet.hdm", "proto=1",
                                 "ck=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", "state=ready"});
}

TEST_CASE("txt_record: a record over 200 bytes is refused naming the size and the longest key") {
  Announcement a = colour_node();
  // The strings but the model's value take 1+9 + 1+5 + 1+11 + 1+6 + 1+7 +
  // 1+13 = 57 bytes: a model name of 143 bytes makes exactly 200.
  a.model = std::string(143, 'm');
  CHECK(record_bytes(txt_record(a)) == 200);
  a.model += "m";
  CHECK_THROWS_WITH(txt_record(a), Contains("201 bytes") && Contains("200") && Contains("'model'"));
}

TEST_CASE("txt_record: a value holding a NUL byte is refused naming the key") {
  Announcement a = colour_node();
  a.task = std::string("col\0our", 7);
  CHECK_THROWS_AS(txt_record(a), std::invalid_argument);
  CHECK_THROWS_WITH(txt_record(a), Contains("'task'") && Contains("NUL"));
}

TEST_CASE("parse_txt reads what txt_record writes") {
  Announcement a = colour_node();
  a.model = "m=odel.hdm";  // '=' in a value stays in the value
  const auto fields = parse_txt(txt_record(a));
  CHECK(fields.at("txtvers") == "1");
  CHECK(fields.at("id") == "n1");
  CHECK(fields.at("task") == "colour");
  CHECK(fields.at("model") == "m=odel.hdm");
  CHECK(fields.at("state") == "warming");
  CHECK(fields.count("ck") == 0);
}

TEST_CASE("parse_txt: case-insensitive keys, the first of repeated keys, bare keys; bad keys ignored") {
  const auto fields = parse_txt(
      {"ID=a", "id=b", "State", "=x", "", "toolongkey=1", "ninechars=ok", std::string("bin=\0\xff", 6)});
  CHECK(fields.at("id") == "a");
  CHECK(fields.at("state").empty());
  CHECK(fields.at("ninechars") == "ok");
  CHECK(fields.at("bin") == std::string("\0\xff", 2));
  CHECK(fields.count("toolongkey") == 0);
  CHECK(fields.count("") == 0);
  CHECK(fields.size() == 4);
}

TEST_CASE("Service::endpoint") {
  Service s;
  s.address = "10.0.0.7";
  s.port = 5555;
  CHECK(s.endpoint() == "tcp://10.0.0.7:5555");
}

TEST_CASE("static_peer: an IPv4 address or a name, and a port") {
  Service s = static_peer("127.0.0.1:5555");
  CHECK(s.address == "127.0.0.1");
  CHECK(s.port == 5555);
  CHECK(s.static_peer);
  CHECK(s.endpoint() == "tcp://127.0.0.1:5555");
  s = static_peer("localhost:1");
  CHECK(s.address == "127.0.0.1");
  CHECK(s.host == "localhost");
  CHECK(static_peer("127.0.0.1:65535").port == 65535);
}

TEST_CASE("static_peer: errors name the argument and the bad part") {
  CHECK_THROWS_WITH(static_peer("x:99999"), "--peer 'x:99999': port must be 1..65535");
  CHECK_THROWS_WITH(static_peer("x:0"), "--peer 'x:0': port must be 1..65535");
  CHECK_THROWS_WITH(static_peer("x:"), "--peer 'x:': port must be 1..65535");
  CHECK_THROWS_WITH(static_peer("x:+80"), "--peer 'x:+80': port must be 1..65535");
  CHECK_THROWS_WITH(static_peer("x:123456789012345678901"), Contains("port must be 1..65535"));
  CHECK_THROWS_WITH(static_peer("x"), "--peer 'x': needs HOST:PORT");
  CHECK_THROWS_WITH(static_peer(":80"), "--peer ':80': the host is empty");
  CHECK_THROWS_WITH(static_peer("::1:80"), Contains("IPv6"));
  CHECK_THROWS_WITH(static_peer("no-such-host.invalid:80"),
                    Contains("--peer 'no-such-host.invalid:80': cannot resolve 'no-such-host.invalid'"));
}

TEST_CASE("Publisher refuses what it could not announce") {
  Announcement a = colour_node();
  a.instance = std::string(64, 'x');
  CHECK_THROWS_WITH(Publisher(a), Contains("1 to 63 bytes"));
  a = colour_node();
  a.port = 0;
  CHECK_THROWS_WITH(Publisher(a), Contains("port 0"));
  a = colour_node();
  a.model = std::string(300, 'm');
  CHECK_THROWS_AS(Publisher(a), std::invalid_argument);
}
