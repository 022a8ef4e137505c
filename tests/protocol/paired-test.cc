// protocol/paired.h: the paired devices survive a restart, are removed by id,
// are seen by a running process when another one changes them, and a file
// that is not private or not well formed is refused with the line.
#include "protocol/paired.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <string>
#include <thread>

#include <zmq.h>

#include "tests/protocol/test_util.h"

namespace {

using namespace huddle::protocol;
using Catch::Matchers::Contains;
using namespace huddle::test;
namespace fs = std::filesystem;

std::string new_key() {
  char public_key[kKeyTextSize + 1], secret_key[kKeyTextSize + 1];
  REQUIRE(zmq_curve_keypair(public_key, secret_key) == 0);
  return public_key;
}

PairedDevice device(const std::string& key, std::string name, PeerRole role = PeerRole::node) {
  PairedDevice d;
  d.public_key = key;
  d.name = std::move(name);
  d.paired_at = 1764950400;
  d.role = role;
  return d;
}

TEST_CASE("paired devices: add, find, list, remove, and a new start sees them") {
  TempDir tmp;
  const std::string camera = new_key();
  const std::string laptop = new_key();
  {
    PairedKeys keys(tmp.path);
    CHECK(keys.list().empty());
    CHECK_FALSE(fs::exists(keys.path()));
    keys.add(device(camera, "kitchen camera"));
    keys.add(device(laptop, "", PeerRole::coordinator));
    CHECK(mode_of(keys.path()) == 0600);
    REQUIRE(keys.list().size() == 2);
    CHECK(keys.list()[0].id == device_id(camera));
    CHECK(keys.find_by_key(laptop)->role == PeerRole::coordinator);
    CHECK_FALSE(keys.find_by_key(new_key()).has_value());
  }
  PairedKeys keys(tmp.path);
  const std::vector<PairedDevice> devices = keys.list();
  REQUIRE(devices.size() == 2);
  CHECK(devices[0] == PairedDevice{device_id(camera), camera, "kitchen camera", 1764950400, PeerRole::node});
  CHECK(devices[1] == PairedDevice{device_id(laptop), laptop, "", 1764950400, PeerRole::coordinator});

  // Found by id however it is typed; a typo is an error, not "not paired".
  std::string typed = device_id(camera);
  for (char& c : typed) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  CHECK(keys.find_by_id(typed)->public_key == camera);
  CHECK_THROWS_WITH(keys.find_by_id("0000-0000"), Contains("characters, 18 expected"));

  // Adding a key again replaces its entry.
  keys.add(device(camera, "hall camera"));
  REQUIRE(keys.list().size() == 2);
  CHECK(keys.find_by_key(camera)->name == "hall camera");

  const std::optional<PairedDevice> removed = keys.remove(device_id(camera));
  REQUIRE(removed.has_value());
  CHECK(removed->name == "hall camera");
  CHECK_FALSE(keys.remove(device_id(camera)).has_value());
  CHECK_FALSE(keys.find_by_key(camera).has_value());
  CHECK(PairedKeys(tmp.path).list().size() == 1);
}

TEST_CASE("a running process sees another process's unpair at its next check") {
  TempDir tmp;
  const std::string coordinator = new_key();
  PairedKeys writer(tmp.path);
  writer.add(device(coordinator, "laptop", PeerRole::coordinator));
  PairedKeys node(tmp.path);
  REQUIRE(node.find_by_key(coordinator).has_value());
  CHECK_FALSE(node.reload_if_changed());

  writer.remove(device_id(coordinator));
  CHECK(node.reload_if_changed());
  CHECK_FALSE(node.find_by_key(coordinator).has_value());
  CHECK_FALSE(node.reload_if_changed());

  // Several changes in quick succession, each seen.
  for (int i = 0; i < 20; ++i) {
    const std::string key = new_key();
    writer.add(device(key, cat("device ", std::to_string(i))));
    REQUIRE(node.reload_if_changed());
    REQUIRE(node.find_by_key(key).has_value());
  }

  // The file removed altogether: nothing is paired any more.
  fs::remove(writer.path());
  CHECK(node.reload_if_changed());
  CHECK(node.list().empty());
}

TEST_CASE("two writers that loaded the file before each other's change lose neither change") {
  TempDir tmp;
  PairedKeys a(tmp.path);
  PairedKeys b(tmp.path);
  const std::string one = new_key();
  const std::string two = new_key();
  a.add(device(one, "one"));
  b.add(device(two, "two"));  // b read the file again under the lock: "one" stays
  CHECK(b.list().size() == 2);
  CHECK(PairedKeys(tmp.path).list().size() == 2);

  // And from two threads at once.
  std::vector<std::string> keys(40);
  for (std::string& k : keys) k = new_key();
  auto add_half = [&keys, &tmp](size_t first) {
    PairedKeys mine(tmp.path);
    for (size_t i = first; i < keys.size(); i += 2) mine.add(device(keys[i], "x"));
  };
  std::thread t0(add_half, 0), t1(add_half, 1);
  t0.join();
  t1.join();
  CHECK(PairedKeys(tmp.path).list().size() == 42);
}

TEST_CASE("a paired file others may read is refused; a running process then trusts no one") {
  TempDir tmp;
  const std::string key = new_key();
  PairedKeys keys(tmp.path);
  keys.add(device(key, "laptop", PeerRole::coordinator));
  REQUIRE(::chmod(keys.path().c_str(), 0644) == 0);
  const std::string path = keys.path().string();
  CHECK_THROWS_WITH(PairedKeys(tmp.path),
                    Contains(path) && Contains("mode 0644") && Contains(cat("chmod 600 ", path)));
  // chmod changes the file's ctime: the running process notices and fails closed.
  CHECK_THROWS_WITH(keys.reload_if_changed(), Contains("chmod 600"));
  CHECK_FALSE(keys.find_by_key(key).has_value());
  CHECK_FALSE(keys.reload_if_changed());  // the same file: not read again until it changes
  REQUIRE(::chmod(keys.path().c_str(), 0600) == 0);
  CHECK(keys.reload_if_changed());
  CHECK(keys.find_by_key(key).has_value());
}

TEST_CASE("what add refuses") {
  TempDir tmp;
  PairedKeys keys(tmp.path);
  CHECK_THROWS_WITH(keys.add(device("not a key", "x")), Contains("not a CurveZMQ public key"));
  CHECK_THROWS_WITH(keys.add(device(new_key(), std::string(64, 'n'))), Contains("64 bytes (at most 63)"));
  CHECK_THROWS_WITH(keys.add(device(new_key(), "two\nlines")), Contains("control character"));
  CHECK_NOTHROW(keys.add(device(new_key(), std::string(63, 'n'))));
  CHECK_NOTHROW(keys.add(device(new_key(), "caméra de l'entrée")));
  CHECK(keys.list().size() == 2);
}

TEST_CASE("a malformed paired file is refused with the line and the problem") {
  const std::string key = new_key();
  const std::string id = device_id(key);
  const std::string other_id = device_id(new_key());
  const std::string good = cat(id, " node 1764950400 ", key, " kitchen camera");
  struct Case {
    std::string text;
    std::string message;
  };
  const Case cases[] = {
      {"", "paired:1: empty"},
      {"hello\n", "paired:1: not a paired devices file"},
      {"huddle-paired 2\n", "paired:1: format 'huddle-paired 2' is not one this huddle reads"},
      {"huddle-paired 1\r\n", "paired:1: format 'huddle-paired 1\\x0d' is not one"},
      {cat("huddle-paired 1\n", id, " \x1b[31m 1 ", key), "paired:2: role '\\x1b[31m' unknown"},
      {cat("huddle-paired 1\n", id, " node ", std::string(50, '9'), " ", key),
       cat("'", std::string(40, '9'), "'...")},
      {cat("# comment first\nhuddle-paired 1\n", good), "paired:1: not a paired devices file"},
      {cat("huddle-paired 1\n\n# comment\n", id), "paired:4: fields missing"},
      {cat("huddle-paired 1\n", id, " server 1 ", key), "paired:2: role 'server' unknown"},
      {cat("huddle-paired 1\n", id, " node -5 ", key), "paired:2: paired-at '-5' is not a time"},
      {cat("huddle-paired 1\n", id, " node 99999999999999999999 ", key), "is not a time"},
      {cat("huddle-paired 1\n", id, " node 1 ", key.substr(1)), "paired:2: public key is not a CurveZMQ key"},
      {cat("huddle-paired 1\n", other_id, " node 1 ", key),
       cat("paired:2: device id '", other_id, "' is not the one")},
      {cat("huddle-paired 1\n", id, "  node 1 ", key), "paired:2: fields missing"},
      {cat("huddle-paired 1\n", id, " node 1 ", key, " ", std::string(64, 'x')),
       "paired:2: name of 64 bytes"},
      {cat("huddle-paired 1\n", id, " node 1 ", key, " tab\there"), "paired:2: control character"},
      {cat("huddle-paired 1\n", good, "\r\n"), "paired:2: control character"},
      {cat("huddle-paired 1\n", good, "\n", good, "\n"), cat("paired:3: device '", id, "' is listed twice")},
  };
  for (const Case& c : cases) {
    INFO(c.text);
    CHECK_THROWS_WITH(parse_paired(c.text), Contains(c.message));
  }
  // What format_paired writes reads back; no final newline is needed.
  const std::vector<PairedDevice> devices = parse_paired(cat("huddle-paired 1\n", good));
  REQUIRE(devices.size() == 1);
  CHECK(devices[0].name == "kitchen camera");
  CHECK(parse_paired(format_paired(devices)) == devices);

  // The file's path names the problem when PairedKeys reads it.
  TempDir tmp;
  write_text(tmp.path / "paired", cat("huddle-paired 1\n", id, " server 1 ", key, "\n"));
  ::chmod((tmp.path / "paired").c_str(), 0600);
  CHECK_THROWS_WITH(PairedKeys(tmp.path), Contains(cat((tmp.path / "paired").string(), ":2: role 'server'")));
}

}  // namespace
