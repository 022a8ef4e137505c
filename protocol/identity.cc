#include "protocol/identity.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <span>

#include <sodium.h>
#include <zmq.h>

namespace huddle::protocol {
namespace {

namespace fs = std::filesystem;

constexpr const char* kSecretFile = "identity.key";
constexpr const char* kPublicFile = "identity.pub";
// A key file holds 40 characters and a newline; anything much larger is not one.
constexpr size_t kMaxKeyFileBytes = 256;

// Crockford's base32: no I, L, O, U.
constexpr std::string_view kIdAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
constexpr size_t kIdDataChars = kDeviceIdChars - 1;
constexpr size_t kIdGroup = 6;
// The cost of a pairing code: Argon2id over 16 MiB, two passes (about 0.1 s
// on a laptop core, under a second on a small ARM board).
constexpr unsigned long long kCodeOpsLimit = 2;
constexpr size_t kCodeMemLimit = 16 << 20;
// A well-formed id (its check character is right), for messages.
constexpr std::string_view kExampleId = "7K2M9Q-XW4T0B-NH3RDZ";

// Throws an IdentityError whose message is the concatenation of `parts`
// (strings, string views, characters).
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::string message;
  (message += ... += parts);
  throw IdentityError(message);
}

[[noreturn]] void fail_errno(std::string_view doing, const fs::path& path) {
  fail(doing, " ", path.string(), ": ", std::strerror(errno));
}

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Closes a descriptor on every way out.
struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void fsync_dir(const fs::path& dir) {
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d.fd < 0 || ::fsync(d.fd) != 0) fail_errno("cannot sync the directory", dir);
}

fs::path dir_of(const fs::path& path) { return path.has_parent_path() ? path.parent_path() : fs::path("."); }

// Writes `content` to a new temporary file (mode 0600) beside `path`, synced;
// returns its name. The caller publishes it or removes it.
fs::path write_temporary(const fs::path& path, std::string_view content) {
  std::string base = ".";
  base += path.filename().string();
  base += ".XXXXXX";
  std::string name = (dir_of(path) / base).string();
  Fd f(::mkostemp(name.data(), O_CLOEXEC));  // creates the file 0600, O_EXCL
  if (f.fd < 0) fail_errno("cannot create a temporary file for", path);
  const fs::path temporary(name);
  size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(f.fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = errno;
      ::unlink(name.c_str());
      errno = saved;
      fail_errno("cannot write", temporary);
    }
    done += static_cast<size_t>(n);
  }
  if (::fchmod(f.fd, 0600) != 0 || ::fsync(f.fd) != 0) {
    const int saved = errno;
    ::unlink(name.c_str());
    errno = saved;
    fail_errno("cannot sync", temporary);
  }
  return temporary;
}

// Publishes a new file at `path` unless one exists already: false then (the
// other file stays, ours is removed).
bool write_private_file_once(const fs::path& path, std::string_view content) {
  const fs::path temporary = write_temporary(path, content);
  const int rc = ::link(temporary.c_str(), path.c_str());
  const int saved = errno;
  ::unlink(temporary.c_str());
  if (rc != 0 && saved == EEXIST) return false;
  errno = saved;
  if (rc != 0) fail_errno("cannot create", path);
  fsync_dir(dir_of(path));
  return true;
}

// The Z85 key in a key file's text (one trailing newline allowed).
std::string key_in_file(std::string text, const fs::path& path, std::string_view what) {
  if (text.ends_with('\n')) text.pop_back();
  if (text.ends_with('\r')) text.pop_back();
  if (!is_key_text(text)) {
    fail(path.string(), ": not a ", what, " (40 Z85 characters expected): the file is damaged");
  }
  return text;
}

std::array<uint8_t, 32> key_bytes(std::string_view z85) {
  if (!is_key_text(z85)) fail("not a CurveZMQ public key (40 Z85 characters expected)");
  std::array<uint8_t, 32> bytes;
  const std::string text(z85);
  zmq_z85_decode(bytes.data(), text.c_str());
  return bytes;
}

// The SHA-256 of the concatenation of `parts`.
std::array<uint8_t, crypto_hash_sha256_BYTES> sha256(std::initializer_list<std::span<const uint8_t>> parts) {
  static const int initialised = sodium_init();
  if (initialised < 0) fail("libsodium cannot be initialised");
  crypto_hash_sha256_state state;
  crypto_hash_sha256_init(&state);
  for (std::span<const uint8_t> part : parts) crypto_hash_sha256_update(&state, part.data(), part.size());
  std::array<uint8_t, crypto_hash_sha256_BYTES> hash;
  crypto_hash_sha256_final(&state, hash.data());
  return hash;
}

// The check over GF(32) = GF(2)[x] / (x^5 + x^2 + 1): each character's value
// d updates s to 2·s + d (Horner's rule). x·y = 2x + y is a quasigroup
// (a bijection in each argument) that is totally antisymmetric
// ((c·x)·y = (c·y)·x only when x = y, since 2 ≠ 1), which is what makes a
// single substitution or adjacent transposition change the final s.
uint8_t times2(uint8_t s) { return static_cast<uint8_t>(s & 0x10 ? ((s << 1) ^ 0x25) : s << 1); }

uint8_t check_state(std::span<const uint8_t> values) {
  uint8_t s = 0;
  for (uint8_t d : values) s = static_cast<uint8_t>(times2(s) ^ d);
  return s;
}

std::string format_id(std::span<const uint8_t> values) {
  std::string text;
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0 && i % kIdGroup == 0) text += '-';
    text += kIdAlphabet[values[i]];
  }
  return text;
}

}  // namespace

fs::path default_state_dir() {
  const char* state = std::getenv("XDG_STATE_HOME");
  if (state != nullptr && state[0] == '/') return fs::path(state) / "huddle";
  const char* home = std::getenv("HOME");
  if (home == nullptr || home[0] == '\0')
    fail("no state directory: neither XDG_STATE_HOME nor HOME is set (give --state-dir)");
  return fs::path(home) / ".local" / "state" / "huddle";
}

void create_state_dir(const fs::path& dir) {
  std::error_code error;
  if (dir.has_parent_path()) fs::create_directories(dir.parent_path(), error);
  if (error) fail("cannot create the directory ", dir.parent_path().string(), ": ", error.message());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    fail_errno("cannot create the state directory", dir);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) fail_errno("cannot read the state directory", dir);
  if (!S_ISDIR(st.st_mode)) fail(dir.string(), ": not a directory (the state directory must be one)");
}

std::optional<std::string> read_private_file(const fs::path& path, std::string_view what, size_t max_bytes) {
  Fd f(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (f.fd < 0 && errno == ENOENT) return std::nullopt;
  struct stat st;
  if (f.fd < 0 && errno == ELOOP)
    st.st_mode = S_IFLNK;
  else if (f.fd < 0 || ::fstat(f.fd, &st) != 0)
    fail_errno("cannot read", path);
  const std::string file = path.string();
  if (!S_ISREG(st.st_mode))
    fail(file, " (", what, ") ", S_ISLNK(st.st_mode) ? "is a symbolic link" : "is not a regular file",
         ": it must be a regular file only you can read");
  if (st.st_uid != ::geteuid())
    fail(file, " (", what, ") belongs to uid ", std::to_string(st.st_uid), ", not to this user (uid ",
         std::to_string(::geteuid()), "): use your own state directory, or chown it");
  if ((st.st_mode & 077) != 0)
    fail(file, " (", what, ") has mode ", octal_mode(st.st_mode),
         ": group or others may read or write it. Make it private: chmod 600 ", file);
  if (static_cast<uint64_t>(st.st_size) > max_bytes)
    fail(file, " (", what, ") is larger than ", std::to_string(max_bytes), " bytes: not a file huddle wrote");
  std::string content(max_bytes + 1, '\0');
  size_t done = 0;
  for (;;) {
    const ssize_t n = ::read(f.fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno("cannot read", path);
    if (n == 0) break;
    done += static_cast<size_t>(n);
    if (done > max_bytes)
      fail(file, " (", what, ") grew larger than ", std::to_string(max_bytes), " bytes while being read");
  }
  content.resize(done);
  return content;
}

void write_private_file(const fs::path& path, std::string_view content) {
  const fs::path temporary = write_temporary(path, content);
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temporary.c_str());
    errno = saved;
    fail_errno("cannot replace", path);
  }
  fsync_dir(dir_of(path));
}

bool is_key_text(std::string_view text) {
  if (text.size() != kKeyTextSize || text.find('\0') != std::string_view::npos) return false;
  // Decoding and encoding again must give the same text: that refuses
  // characters outside Z85 and groups of five whose value overflows 32 bits.
  const std::string z85(text);
  uint8_t bytes[32];
  if (zmq_z85_decode(bytes, z85.c_str()) == nullptr) return false;
  char again[kKeyTextSize + 1];
  return zmq_z85_encode(again, bytes, sizeof bytes) != nullptr && text == again;
}

Keypair load_or_create_identity(const fs::path& dir) {
  create_state_dir(dir);
  const fs::path secret_path = dir / kSecretFile;
  const fs::path public_path = dir / kPublicFile;
  // Whether the public key file exists, looked at before the secret key: a
  // process creating both meanwhile writes the secret key first.
  std::error_code error;
  const bool had_public = fs::exists(fs::symlink_status(public_path, error));
  std::optional<std::string> secret_text = read_private_file(secret_path, "secret key", kMaxKeyFileBytes);
  if (!secret_text) {
    if (had_public)
      fail(public_path.string(), " exists but its secret key ", secret_path.string(),
           " does not: restore the secret key, or remove ", public_path.string(),
           " to create a new identity (a new device id: pair again)");
    char public_key[kKeyTextSize + 1];
    char secret_key[kKeyTextSize + 1];
    if (zmq_curve_keypair(public_key, secret_key) != 0)
      fail("cannot create a CurveZMQ keypair: libzmq was built without CURVE");
    std::string content = secret_key;
    content += '\n';
    // Another process may have created one meanwhile: then that one counts.
    write_private_file_once(secret_path, content);
    sodium_memzero(secret_key, sizeof secret_key);
    sodium_memzero(content.data(), content.size());
    secret_text = read_private_file(secret_path, "secret key", kMaxKeyFileBytes);
    if (!secret_text) fail_errno("cannot read the new secret key", secret_path);
  }
  Keypair keys;
  keys.secret_key = key_in_file(std::move(*secret_text), secret_path, "CurveZMQ secret key");
  char derived[kKeyTextSize + 1];
  if (zmq_curve_public(derived, keys.secret_key.c_str()) != 0)
    fail("cannot derive the public key: libzmq was built without CURVE");
  keys.public_key = derived;

  std::optional<std::string> public_text = read_private_file(public_path, "public key", kMaxKeyFileBytes);
  if (!public_text) {
    write_private_file(public_path, keys.public_key + '\n');
    return keys;
  }
  if (key_in_file(std::move(*public_text), public_path, "CurveZMQ public key") != keys.public_key)
    fail(public_path.string(), " does not hold the public key of the secret key in ", secret_path.string(),
         ": one of them was replaced. Remove ", public_path.string(),
         " to write it again from the secret key");
  return keys;
}

std::string device_id(std::string_view public_key_z85) {
  const std::array<uint8_t, 32> key = key_bytes(public_key_z85);
  const auto hash = sha256({key});
  std::array<uint8_t, kDeviceIdChars> values;
  for (size_t i = 0; i < kIdDataChars; ++i) {
    // Bits 5i .. 5i+4 of the hash, most significant first.
    const size_t bit = 5 * i;
    const unsigned pair = static_cast<unsigned>(hash[bit / 8]) << 8 | hash[bit / 8 + 1];
    values[i] = static_cast<uint8_t>((pair >> (11 - bit % 8)) & 0x1f);
  }
  values[kIdDataChars] = times2(check_state(std::span(values).first(kIdDataChars)));
  return format_id(values);
}

std::string parse_device_id(std::string_view text) {
  std::array<uint8_t, kDeviceIdChars> values;
  size_t count = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '-' || c == ' ') continue;
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c == 'I' || c == 'L') c = '1';
    if (c == 'O') c = '0';
    const size_t value = kIdAlphabet.find(c);
    if (value == std::string_view::npos) {
      const unsigned char u = static_cast<unsigned char>(text[i]);
      char shown[8];
      if (u >= 0x21 && u < 0x7f)
        std::snprintf(shown, sizeof shown, "'%c'", u);
      else
        std::snprintf(shown, sizeof shown, "0x%02x", u);
      fail("device id: the character ", shown, " at position ", std::to_string(i + 1),
           " cannot be in a device id (digits and letters other than U)");
    }
    if (count < values.size()) values[count] = static_cast<uint8_t>(value);
    ++count;
  }
  if (count != kDeviceIdChars)
    fail("device id: ", std::to_string(count), " characters, ", std::to_string(kDeviceIdChars),
         " expected (three groups of six, like ", kExampleId, ")");
  if (check_state(values) != 0) fail("device id ", format_id(values), ": check character wrong: a typo?");
  return format_id(values);
}

std::string verification_code(std::string_view key_a_z85, std::string_view key_b_z85, int64_t unix_seconds) {
  std::array<uint8_t, 32> a = key_bytes(key_a_z85);
  std::array<uint8_t, 32> b = key_bytes(key_b_z85);
  if (b < a) std::swap(a, b);
  // Floor division: a window is [30k, 30k + 30) for negative times too.
  int64_t window = unix_seconds / kVerificationWindowSeconds;
  if (unix_seconds % kVerificationWindowSeconds < 0) --window;
  constexpr std::string_view kDomain = "huddle pairing code v1";
  std::array<uint8_t, kDomain.size() + 2 * 32 + 8> input;
  std::copy(kDomain.begin(), kDomain.end(), input.begin());
  std::copy(a.begin(), a.end(), input.begin() + kDomain.size());
  std::copy(b.begin(), b.end(), input.begin() + kDomain.size() + 32);
  for (size_t i = 0; i < 8; ++i)
    input[kDomain.size() + 64 + i] = static_cast<uint8_t>(static_cast<uint64_t>(window) >> (56 - 8 * i));
  // Argon2id, not a plain hash: a man in the middle who answers each device
  // with a key of its own needs both devices to show the same digits, which
  // takes about 10^6 tries of a key. With SHA-256 that is a minute of one
  // core (a keypair costs ~70 us) and could be done while the user looks;
  // at ~0.1 s a try it is days of CPU for every 30-second window.
  const auto salt = sha256({input});
  std::array<uint8_t, 16> hash;
  if (crypto_pwhash(hash.data(), hash.size(), reinterpret_cast<const char*>(input.data()), input.size(),
                    salt.data(), kCodeOpsLimit, kCodeMemLimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
    fail("not enough memory to compute a pairing code (", std::to_string(kCodeMemLimit >> 20), " MiB)");
  uint64_t value = 0;
  for (size_t i = 0; i < 8; ++i) value = value << 8 | hash[i];
  char code[8];
  std::snprintf(code, sizeof code, "%06u", static_cast<unsigned>(value % 1000000));
  return code;
}

}  // namespace huddle::protocol
