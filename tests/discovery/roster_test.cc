// The Browser's bookkeeping (discovery/roster.h): one node per id however
// many interfaces and protocols list it; join, update and leave.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "discovery/roster.h"

using namespace huddle::discovery;

namespace {

struct Recorder {
  std::vector<std::string> lines;
  Roster roster{[this](const Event& e) {
    lines.push_back(std::string(kind_name(e.kind)) + " " + e.service.id + " " + e.service.state + " " +
                    e.service.endpoint());
  }};
  std::vector<std::string> take() { return std::exchange(lines, {}); }
};

Service node(const std::string& id, const std::string& address, const std::string& state = "ready",
             const std::string& instance = "huddle colour on h1") {
  Service s;
  s.instance = instance;
  s.host = "h1.local";
  s.address = address;
  s.port = 5555;
  s.id = id;
  s.task = "colour";
  s.state = state;
  return s;
}

const InstanceKey lo{1, 0, "huddle colour on h1", "local"};
const InstanceKey eth{2, 0, "huddle colour on h1", "local"};
const InstanceKey eth6{2, 1, "huddle colour on h1", "local"};

}  // namespace

TEST_CASE("one node however many interfaces and protocols list it") {
  Recorder r;
  r.roster.resolved(lo, node("n1", "127.0.0.1"));
  r.roster.resolved(eth, node("n1", "10.0.0.2"));
  r.roster.resolved(eth6, node("n1", "10.0.0.2"));
  CHECK(r.take() == std::vector<std::string>{"join n1 ready tcp://127.0.0.1:5555"});
  CHECK(r.roster.nodes() == 1);
  // Resolving again with nothing changed says nothing.
  r.roster.resolved(lo, node("n1", "127.0.0.1"));
  CHECK(r.take().empty());
  r.roster.removed(eth6);
  r.roster.removed(eth);
  CHECK(r.take().empty());
  r.roster.removed(lo);
  CHECK(r.take() == std::vector<std::string>{"leave n1 ready tcp://127.0.0.1:5555"});
  CHECK(r.roster.nodes() == 0);
  // Removing what is not there says nothing.
  r.roster.removed(lo);
  CHECK(r.take().empty());
}

TEST_CASE("a TXT or address change is an update; the instance reporting it goes, another takes over") {
  Recorder r;
  r.roster.resolved(lo, node("n1", "127.0.0.1", "warming"));
  r.roster.resolved(eth, node("n1", "10.0.0.2", "warming"));
  r.roster.resolved(lo, node("n1", "127.0.0.1", "ready"));
  // The other instance's change is the same news: not reported twice.
  r.roster.resolved(eth, node("n1", "10.0.0.2", "ready"));
  CHECK(r.take() == std::vector<std::string>{"join n1 warming tcp://127.0.0.1:5555",
                                             "update n1 ready tcp://127.0.0.1:5555"});
  r.roster.removed(lo);
  CHECK(r.take() == std::vector<std::string>{"update n1 ready tcp://10.0.0.2:5555"});
  r.roster.removed(eth);
  CHECK(r.take() == std::vector<std::string>{"leave n1 ready tcp://10.0.0.2:5555"});
}

TEST_CASE("two ids under one name are two nodes; a renamed instance keeps its node") {
  Recorder r;
  const InstanceKey renamed{1, 0, "huddle colour on h1 #2", "local"};
  r.roster.resolved(lo, node("n1", "127.0.0.1"));
  r.roster.resolved(renamed, node("n2", "127.0.0.1", "ready", "huddle colour on h1 #2"));
  CHECK(r.take() ==
        std::vector<std::string>{"join n1 ready tcp://127.0.0.1:5555", "join n2 ready tcp://127.0.0.1:5555"});
  CHECK(r.roster.nodes() == 2);
}

TEST_CASE("an instance whose id changes leaves the old node and joins the new") {
  Recorder r;
  r.roster.resolved(lo, node("n1", "127.0.0.1"));
  r.roster.resolved(lo, node("n9", "127.0.0.1"));
  CHECK(r.take() == std::vector<std::string>{"join n1 ready tcp://127.0.0.1:5555",
                                             "leave n1 ready tcp://127.0.0.1:5555",
                                             "join n9 ready tcp://127.0.0.1:5555"});
}

TEST_CASE("a service without an id is keyed on its instance name") {
  Recorder r;
  r.roster.resolved(lo, node("", "127.0.0.1"));
  r.roster.resolved(eth, node("", "10.0.0.2"));
  CHECK(r.take().size() == 1);
  CHECK(r.roster.nodes() == 1);
}

TEST_CASE("after the daemon comes back, the instances not listed again leave") {
  Recorder r;
  const InstanceKey other{1, 0, "huddle colour on h2", "local"};
  r.roster.resolved(lo, node("n1", "127.0.0.1"));
  r.roster.resolved(other, node("n2", "127.0.0.2"));
  r.take();
  r.roster.mark_stale();
  r.roster.listed(lo);
  r.roster.remove_stale();
  CHECK(r.take() == std::vector<std::string>{"leave n2 ready tcp://127.0.0.2:5555"});
  CHECK(r.roster.nodes() == 1);
  // Resolved again unchanged: no news.
  r.roster.resolved(lo, node("n1", "127.0.0.1"));
  CHECK(r.take().empty());
}

TEST_CASE("one device's id serving two tasks is two nodes") {
  Recorder r;
  const InstanceKey detect_key{1, 0, "huddle detect on h1", "local"};
  Service detect = node("n1", "127.0.0.1", "ready", "huddle detect on h1");
  detect.task = "detect";
  detect.port = 6000;
  r.roster.resolved(lo, node("n1", "127.0.0.1"));
  r.roster.resolved(detect_key, detect);
  CHECK(r.take() ==
        std::vector<std::string>{"join n1 ready tcp://127.0.0.1:5555", "join n1 ready tcp://127.0.0.1:6000"});
  CHECK(r.roster.nodes() == 2);
  r.roster.removed(lo);
  CHECK(r.take() == std::vector<std::string>{"leave n1 ready tcp://127.0.0.1:5555"});
  CHECK(r.roster.nodes() == 1);
}

TEST_CASE("a service announcing another's id and task with a key of its own is another node") {
  // The impostor of issue 9: same id, task and instance name (mDNS renamed it
  // "#2" or it sits on another interface), another key. It must not take
  // over the real node's reports, nor hide behind them.
  Recorder r;
  Service real = node("n1", "10.0.0.2");
  real.ck = std::string(40, 'a');
  Service impostor = node("n1", "10.0.0.9");
  impostor.ck = std::string(40, 'b');
  const InstanceKey renamed{2, 0, "huddle colour on h1 #2", "local"};
  r.roster.resolved(eth, real);
  r.roster.resolved(renamed, impostor);
  CHECK(r.take() ==
        std::vector<std::string>{"join n1 ready tcp://10.0.0.2:5555", "join n1 ready tcp://10.0.0.9:5555"});
  CHECK(r.roster.nodes() == 2);
  r.roster.removed(renamed);
  CHECK(r.take() == std::vector<std::string>{"leave n1 ready tcp://10.0.0.9:5555"});
  CHECK(r.roster.nodes() == 1);
}
