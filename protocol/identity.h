// A device's long-term identity (issue 9, DESIGN.md §6): a CurveZMQ keypair
// kept in the state directory, the readable device id derived from its public
// key, and the short code both devices show while pairing.
//
// Files in the state directory (created 0700):
//   identity.key  the secret key: 40 Z85 characters and a newline, mode 0600
//   identity.pub  the public key, same form, mode 0600 (it is no secret, but
//                 nothing else in the directory needs to be readable either)
// Every file is written atomically (a temporary file created 0600 beside it,
// written, fsync'ed, renamed over the old one, the directory fsync'ed), so a
// crash leaves the old file or the new one, never half of one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace huddle::protocol {

// A state file or directory that cannot be used, or text that is not a key or
// device id; what() names the file or the problem and, where there is one,
// the fix.
class IdentityError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Z85 text of a CurveZMQ key (32 bytes).
constexpr size_t kKeyTextSize = 40;

struct Keypair {
  std::string public_key;  // Z85, kKeyTextSize characters
  std::string secret_key;  // Z85, kKeyTextSize characters
};

// $XDG_STATE_HOME/huddle when XDG_STATE_HOME is set to an absolute path,
// else $HOME/.local/state/huddle. Throws IdentityError when neither is
// usable (no HOME either).
std::filesystem::path default_state_dir();

// Creates `dir` (mode 0700) and any missing parents, unless it exists; throws
// IdentityError when it cannot, or when `dir` is something else than a
// directory.
void create_state_dir(const std::filesystem::path& dir);

// The device's keypair from `dir`, created there on first use (the
// directory with mode 0700 and any missing parents, then the secret key,
// then the public key). Two processes starting at once agree on one key:
// the secret key file is published without replacing one that appeared
// meanwhile. A public key file lost after a crash is written again from the
// secret key. Throws IdentityError when the secret key file is not a regular
// file, belongs to another user, can be read or written by group or others
// (the message gives its mode and `chmod 600 FILE`), does not hold a key, or
// when the public key file does not match it.
Keypair load_or_create_identity(const std::filesystem::path& dir);

// Whether `text` is a CurveZMQ key in Z85 (40 characters that decode).
bool is_key_text(std::string_view text);

// The content of a file that must stay private, nullopt when it does not
// exist. Throws IdentityError naming the file when it is not a regular file
// (a symbolic link is refused too), when it belongs to another user, when
// group or others may read or write it (the message gives its mode and the
// fix, `chmod 600 FILE`), when it is larger than `max_bytes`, or when it
// cannot be read. `what` says what the file holds ("secret key", "paired
// devices").
std::optional<std::string> read_private_file(const std::filesystem::path& path, std::string_view what,
                                             size_t max_bytes);

// Replaces `path` with `content` atomically (see above), the new file with
// mode 0600. Throws IdentityError naming the file when it cannot.
void write_private_file(const std::filesystem::path& path, std::string_view content);

// Device ids. The SHA-256 of the 32-byte public key, its first 85 bits as
// 17 characters of Crockford's base32 (digits and upper-case letters without
// I, L, O, U), then one check character, shown in three groups of six:
// "7K2M9Q-XW4T0B-NH3RDZ". The check character makes the 18 characters a code
// word of a check over GF(32) (Horner's rule with the multiplier 2): it
// catches every single-character substitution and every transposition of two
// adjacent characters, the check character included.
constexpr size_t kDeviceIdChars = 18;

// The device id of a public key (Z85 text); throws IdentityError when the
// text is not a key.
std::string device_id(std::string_view public_key_z85);

// The canonical form of a typed device id: case does not matter, dashes and
// spaces may be anywhere or missing, and I, L read as 1 and O as 0 (as in
// Crockford's base32). Throws IdentityError naming the problem: a character
// that cannot be in an id, the wrong number of characters, or "check
// character wrong: a typo?".
std::string parse_device_id(std::string_view text);

// Pairing: a 6-digit code from both public keys (Z85; the order does not
// matter) and the 30-second window that `unix_seconds` falls in, so both
// devices show the same digits and an old code is useless. A device may also
// accept the code of the previous window (the pairing step straddling a
// window's end). Deliberately slow (Argon2id, about 0.1 s): a man in the
// middle must find keys that give both devices the same code, and that
// search must not fit in a window. Throws IdentityError for a key that is
// not one.
constexpr int64_t kVerificationWindowSeconds = 30;
std::string verification_code(std::string_view key_a_z85, std::string_view key_b_z85, int64_t unix_seconds);

}  // namespace huddle::protocol
