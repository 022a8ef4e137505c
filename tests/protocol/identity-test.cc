// protocol/identity.h: the keypair files are created private and refused when
// they are not; device ids catch typos; pairing codes agree on both devices.
#include "protocol/identity.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <zmq.h>

#include "tests/protocol/test_util.h"

namespace {

using namespace huddle::protocol;
using Catch::Matchers::Contains;
using namespace huddle::test;
namespace fs = std::filesystem;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A public key's text from random bytes (any 32 bytes are a key's text).
std::string random_key(std::mt19937_64& random) {
  std::array<uint8_t, 32> bytes;
  for (uint8_t& b : bytes) b = static_cast<uint8_t>(random());
  char text[kKeyTextSize + 1];
  zmq_z85_encode(text, bytes.data(), bytes.size());
  return text;
}

// Sets an environment variable for one scope and puts the old value back.
struct Env {
  std::string name;
  std::optional<std::string> old;
  Env(std::string n, const char* value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) old = v;
    if (value)
      ::setenv(name.c_str(), value, 1);
    else
      ::unsetenv(name.c_str());
  }
  ~Env() {
    if (old)
      ::setenv(name.c_str(), old->c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
};

TEST_CASE("the state directory follows XDG_STATE_HOME, else HOME") {
  {
    Env state("XDG_STATE_HOME", "/srv/state");
    Env home("HOME", "/home/ann");
    CHECK(default_state_dir() == fs::path("/srv/state/huddle"));
  }
  {
    Env state("XDG_STATE_HOME", nullptr);
    Env home("HOME", "/home/ann");
    CHECK(default_state_dir() == fs::path("/home/ann/.local/state/huddle"));
  }
  {
    Env state("XDG_STATE_HOME", "relative/dir");  // not absolute: ignored, as the spec says
    Env home("HOME", "/home/ann");
    CHECK(default_state_dir() == fs::path("/home/ann/.local/state/huddle"));
  }
  {
    Env state("XDG_STATE_HOME", nullptr);
    Env home("HOME", nullptr);
    CHECK_THROWS_WITH(default_state_dir(), Contains("--state-dir"));
  }
}

TEST_CASE("the first start creates a private keypair; later starts load it") {
  TempDir tmp;
  const fs::path dir = tmp.path / "state" / "huddle";
  const Keypair keys = load_or_create_identity(dir);
  CHECK(mode_of(dir) == 0700);
  CHECK(mode_of(dir / "identity.key") == 0600);
  CHECK(mode_of(dir / "identity.pub") == 0600);
  CHECK(read_text(dir / "identity.key") == keys.secret_key + "\n");
  CHECK(read_text(dir / "identity.pub") == keys.public_key + "\n");
  CHECK(is_key_text(keys.public_key));
  char derived[kKeyTextSize + 1];
  REQUIRE(zmq_curve_public(derived, keys.secret_key.c_str()) == 0);
  CHECK(keys.public_key == derived);
  // No temporary file is left behind.
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename().string());
  CHECK(names == std::set<std::string>{"identity.key", "identity.pub"});

  const Keypair again = load_or_create_identity(dir);
  CHECK(again.public_key == keys.public_key);
  CHECK(again.secret_key == keys.secret_key);

  SECTION("a lost public key file is written again from the secret key") {
    fs::remove(dir / "identity.pub");
    CHECK(load_or_create_identity(dir).public_key == keys.public_key);
    CHECK(read_text(dir / "identity.pub") == keys.public_key + "\n");
  }
  SECTION("a public key file of another key is refused") {
    char other_public[kKeyTextSize + 1], other_secret[kKeyTextSize + 1];
    REQUIRE(zmq_curve_keypair(other_public, other_secret) == 0);
    write_text(dir / "identity.pub", std::string(other_public) + "\n");
    CHECK_THROWS_WITH(load_or_create_identity(dir),
                      Contains("does not hold the public key of the secret key"));
  }
  SECTION("a public key without its secret key is refused, not replaced") {
    fs::remove(dir / "identity.key");
    CHECK_THROWS_WITH(load_or_create_identity(dir), Contains("exists but its secret key"));
    CHECK(read_text(dir / "identity.pub") == keys.public_key + "\n");
  }
}

TEST_CASE("a secret key others may read is refused with the fix") {
  TempDir tmp;
  load_or_create_identity(tmp.path);
  const fs::path secret = tmp.path / "identity.key";
  for (const unsigned mode : {0644u, 0640u, 0604u, 0620u, 0602u}) {
    REQUIRE(::chmod(secret.c_str(), mode) == 0);
    char expected[8];
    std::snprintf(expected, sizeof expected, "%04o", mode);
    CHECK_THROWS_WITH(load_or_create_identity(tmp.path), Contains(secret.string()) &&
                                                             Contains(std::string("mode ") + expected) &&
                                                             Contains(cat("chmod 600 ", secret.string())));
  }
  REQUIRE(::chmod(secret.c_str(), 0400) == 0);  // read-only for its owner is private enough
  CHECK_NOTHROW(load_or_create_identity(tmp.path));
}

TEST_CASE("a secret key of another user is refused") {
  TempDir tmp;
  load_or_create_identity(tmp.path);
  const fs::path secret = tmp.path / "identity.key";
  if (::chown(secret.c_str(), ::geteuid() + 1, static_cast<gid_t>(-1)) != 0) {
    WARN("not root: cannot give the file to another user, skipped");
    return;
  }
  CHECK_THROWS_WITH(load_or_create_identity(tmp.path),
                    Contains(cat("belongs to uid ", std::to_string(::geteuid() + 1), ", not to this user")));
}

TEST_CASE("processes starting at once agree on one identity") {
  TempDir tmp;
  const fs::path dir = tmp.path / "state";
  std::vector<std::string> keys(8);
  std::vector<std::thread> threads;
  for (std::string& key : keys)
    threads.emplace_back([&key, &dir] { key = load_or_create_identity(dir).public_key; });
  for (std::thread& t : threads) t.join();
  for (const std::string& key : keys) CHECK(key == keys[0]);
  CHECK(load_or_create_identity(dir).public_key == keys[0]);
}

TEST_CASE("a secret key that is not a regular file is refused") {
  TempDir tmp;
  load_or_create_identity(tmp.path / "real");
  fs::create_directories(tmp.path / "linked");
  fs::create_symlink(tmp.path / "real" / "identity.key", tmp.path / "linked" / "identity.key");
  CHECK_THROWS_WITH(load_or_create_identity(tmp.path / "linked"), Contains("symbolic link"));
  fs::create_directories(tmp.path / "dir" / "identity.key");
  ::chmod((tmp.path / "dir" / "identity.key").c_str(), 0700);
  CHECK_THROWS_WITH(load_or_create_identity(tmp.path / "dir"), Contains("not a regular file"));
}

TEST_CASE("a damaged secret key is refused") {
  TempDir tmp;
  const Keypair keys = load_or_create_identity(tmp.path);
  const fs::path secret = tmp.path / "identity.key";
  const std::string damaged[] = {
      "",                                    // empty
      keys.secret_key.substr(0, 39) + "\n",  // one character short
      keys.secret_key + "x\n",               // one too many
      std::string(40, '~') + "\n",           // not Z85
      std::string(40, '#') + "\n",           // Z85 characters, but groups that overflow 32 bits
      keys.secret_key + "\n\n",              // more than one line
      std::string(300, 'a'),                 // far too large
  };
  for (const std::string& text : damaged) {
    write_text(secret, text);
    REQUIRE(::chmod(secret.c_str(), 0600) == 0);
    CHECK_THROWS_AS(load_or_create_identity(tmp.path), IdentityError);
  }
  write_text(secret, std::string(40, '~') + "\n");
  CHECK_THROWS_WITH(load_or_create_identity(tmp.path), Contains("not a CurveZMQ secret key"));
  // A valid key of another device: its public key does not match identity.pub.
  char other_public[kKeyTextSize + 1], other_secret[kKeyTextSize + 1];
  REQUIRE(zmq_curve_keypair(other_public, other_secret) == 0);
  write_text(secret, std::string(other_secret) + "\n");
  CHECK_THROWS_WITH(load_or_create_identity(tmp.path), Contains("does not hold the public key"));
}

TEST_CASE("private files are replaced whole, with mode 0600") {
  TempDir tmp;
  const fs::path file = tmp.path / "f";
  write_private_file(file, "one");
  CHECK(mode_of(file) == 0600);
  ::chmod(file.c_str(), 0644);
  write_private_file(file, "two");
  CHECK(mode_of(file) == 0600);
  CHECK(read_private_file(file, "test", 16) == "two");
  CHECK_FALSE(read_private_file(tmp.path / "missing", "test", 16).has_value());
  CHECK_THROWS_WITH(read_private_file(file, "test", 2), Contains("larger than 2 bytes"));
  CHECK_THROWS_WITH(write_private_file(tmp.path / "no" / "dir", "x"),
                    Contains("cannot create a temporary file"));
}

TEST_CASE("device ids: three groups of six, canonical however typed") {
  std::mt19937_64 random(1);
  const std::string key = random_key(random);
  const std::string id = device_id(key);
  REQUIRE(id.size() == kDeviceIdChars + 2);
  CHECK(id[6] == '-');
  CHECK(id[13] == '-');
  for (char c : id) CHECK(std::string("0123456789ABCDEFGHJKMNPQRSTVWXYZ-").find(c) != std::string::npos);
  CHECK(device_id(key) == id);
  CHECK(parse_device_id(id) == id);
  std::string typed;
  for (char c : id)
    if (c != '-') typed += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  CHECK(parse_device_id(typed) == id);
  CHECK(parse_device_id(cat(" ", id.substr(0, 3), " ", id.substr(3), " ")) == id);
  // Crockford's reading of look-alikes: O is 0, I and L are 1.
  std::string look_alike = id;
  for (char& c : look_alike) c = c == '0' ? 'O' : c == '1' ? 'l' : c;
  CHECK(parse_device_id(look_alike) == id);
  // The example the messages give is well formed.
  CHECK(parse_device_id("7k2m9qxw4t0bnh3rdz") == "7K2M9Q-XW4T0B-NH3RDZ");
  CHECK_THROWS_WITH(parse_device_id("7K2M9Q-XW4T0B-NH3RD"), Contains("like 7K2M9Q-XW4T0B-NH3RDZ"));

  CHECK_THROWS_WITH(parse_device_id(id.substr(0, 19)), Contains("17 characters, 18 expected"));
  CHECK_THROWS_WITH(parse_device_id(id + "7"), Contains("19 characters, 18 expected"));
  CHECK_THROWS_WITH(parse_device_id(""), Contains("0 characters"));
  CHECK_THROWS_WITH(parse_device_id(cat("U", id.substr(1))), Contains("'U' at position 1"));
  CHECK_THROWS_WITH(parse_device_id(cat(id.substr(0, 4), "\x01", id.substr(5))),
                    Contains("0x01 at position 5"));
  CHECK_THROWS_AS(device_id("not a key"), IdentityError);
  // Known answers (computed independently: SHA-256 of the key's 32 bytes, 85
  // bits in base32, the GF(32) check): the id is part of the protocol.
  CHECK(device_id("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7") == "A8JG3X-77MRZP-3QBQD0");
  CHECK(device_id("Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID") == "XESTYK-ESKKQZ-6VMZJX");
  // Two keys, two ids.
  CHECK(device_id(random_key(random)) != id);
}

TEST_CASE("the check character catches every single substitution and adjacent transposition") {
  constexpr std::string_view alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  std::mt19937_64 random(9);
  size_t edits = 0, missed = 0;
  std::string example;
  for (int n = 0; n < 1000; ++n) {
    const std::string id = device_id(random_key(random));
    std::string plain;
    for (char c : id)
      if (c != '-') plain += c;
    REQUIRE(parse_device_id(plain) == id);
    auto caught = [&](const std::string& typed) {
      ++edits;
      try {
        parse_device_id(typed);
      } catch (const IdentityError& e) {
        return std::string(e.what()).find("check character wrong: a typo?") != std::string::npos;
      }
      return false;
    };
    for (size_t i = 0; i < plain.size(); ++i) {
      for (char c : alphabet) {
        if (c == plain[i]) continue;
        std::string typed = plain;
        typed[i] = c;
        if (!caught(typed)) {
          ++missed;
          example = plain + " -> " + typed;
        }
      }
      if (i + 1 < plain.size() && plain[i] != plain[i + 1]) {
        std::string typed = plain;
        std::swap(typed[i], typed[i + 1]);
        if (!caught(typed)) {
          ++missed;
          example = plain + " -> " + typed;
        }
      }
    }
  }
  INFO("missed " << missed << " of " << edits << ", e.g. " << example);
  CHECK(edits > 1000 * 18 * 31);
  CHECK(missed == 0);
}

TEST_CASE("verification codes: six digits, the same on both devices, new every 30 s") {
  std::mt19937_64 random(3);
  const std::string a = random_key(random);
  const std::string b = random_key(random);
  const std::string c = random_key(random);
  const int64_t t = 1764950400;  // a multiple of 30
  const std::string code = verification_code(a, b, t);
  REQUIRE(code.size() == 6);
  for (char ch : code) CHECK((ch >= '0' && ch <= '9'));
  CHECK(verification_code(b, a, t) == code);
  CHECK(verification_code(a, b, t + 29) == code);
  CHECK(verification_code(a, b, t + 30) != code);
  CHECK(verification_code(a, b, t - 1) != code);
  CHECK(verification_code(a, c, t) != code);
  CHECK(verification_code(c, b, t) != code);
  // Windows are whole before the epoch too.
  CHECK(verification_code(a, b, -1) == verification_code(a, b, -30));
  CHECK(verification_code(a, b, -1) != verification_code(a, b, 0));
  // Codes spread over all six digits: many windows give many codes.
  std::set<std::string> codes;
  for (int w = 0; w < 40; ++w) codes.insert(verification_code(a, b, t + 30 * w));
  CHECK(codes.size() >= 39);
  // Known answers: the derivation is part of the protocol (both devices must
  // compute the same digits, whatever huddle version each runs).
  const std::string k1 = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
  const std::string k2 = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
  CHECK(verification_code(k1, k2, 1764950400) == "891356");
  CHECK(verification_code(k1, k2, 1764950430) == "561352");
  CHECK_THROWS_AS(verification_code(a, "short", t), IdentityError);
}

}  // namespace
