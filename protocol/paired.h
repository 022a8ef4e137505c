// The devices this device has paired with (issue 9): their public keys, kept
// in the state directory in the file `paired`, mode 0600, rewritten
// atomically. A node's ZAP handler accepts the coordinators listed there; a
// coordinator sends images only to the nodes listed there.
//
// The file is text, one device a line, so that a person can read it:
//
//   huddle-paired 1
//   # device-id role paired-at public-key name
//   A8JG3X-77MRZP-3QBQD0 node 1764950400 rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7 kitchen camera
//
// The first line names the format and its version; '#' lines and empty lines
// are ignored; fields are separated by one space; the device id must be the
// one of the key; the name is the rest of the line (up to 63 bytes, no
// control characters, may be empty). The file is read as outside data: any
// other content is refused with an IdentityError naming the line.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/identity.h"

namespace huddle::protocol {

// What the paired device is to us.
enum class PeerRole { node, coordinator };
std::string_view role_name(PeerRole role);

constexpr size_t kMaxDeviceName = 63;
// The largest paired file read (about 6000 devices).
constexpr size_t kMaxPairedFileBytes = 1 << 20;

struct PairedDevice {
  std::string id;          // device_id(public_key)
  std::string public_key;  // Z85
  std::string name;        // up to kMaxDeviceName bytes, no control characters
  int64_t paired_at = 0;   // unix seconds
  PeerRole role = PeerRole::node;
  bool operator==(const PairedDevice&) const = default;
};

// The devices in the text of a paired file. Throws IdentityError
// "SOURCE:LINE: problem" for anything but a well-formed file: a missing or
// newer format line, a line with a bad field, a device listed twice.
std::vector<PairedDevice> parse_paired(std::string_view text, std::string_view source = "paired");
// The text of a paired file listing `devices` (which must be valid: their
// ids are written as given).
std::string format_paired(std::span<const PairedDevice> devices);

// The paired file of one state directory, as loaded in memory. Thread-safe:
// a ZAP handler's thread may look keys up while another thread reloads,
// adds or removes.
class PairedKeys {
 public:
  // Loads DIR/paired (none yet: no devices). Throws IdentityError when the
  // file is readable or writable by others (with the fix, `chmod 600`), not a
  // regular file, or malformed.
  explicit PairedKeys(std::filesystem::path dir);

  const std::filesystem::path& path() const { return path_; }

  std::vector<PairedDevice> list() const;
  std::optional<PairedDevice> find_by_key(std::string_view public_key_z85) const;
  // `id` as a person typed it (parse_device_id: throws IdentityError for one
  // with a typo).
  std::optional<PairedDevice> find_by_id(std::string_view id) const;

  // Adds `device` (its id is computed from its key; an entry with the same
  // key is replaced) and rewrites the file. Adding and removing read the file
  // again under a lock first, so that two processes changing it at once lose
  // neither change. Throws IdentityError for a key that is not one, a name
  // that is too long or has control characters, or a file that cannot be
  // written.
  void add(PairedDevice device);
  // Removes the device with the id `id` (as typed) and rewrites the file;
  // what was removed, nullopt when it was not paired.
  std::optional<PairedDevice> remove(std::string_view id);

  // Reads the file again when another process has replaced or changed it
  // since it was last read (a stat: inode, size, modification time), so that
  // a running node sees `huddle unpair` within its polling interval (every
  // change huddle makes replaces the file: a new inode). True
  // when it was read again. When the new content cannot be used it throws
  // IdentityError and keeps no device at all (a damaged file must not leave
  // a revoked key paired) until the file changes again.
  bool reload_if_changed();

 private:
  struct Stamp {
    bool exists = false;
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    mode_t mode = 0;  // chmod changes a file in place
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    bool operator==(const Stamp&) const = default;
  };
  Stamp stamp() const;
  // Reads the file into devices_ (mutex_ held); on failure devices_ is empty.
  void load_locked(const Stamp& now);
  // Runs `change` on the devices as they are on disk (under the lock file)
  // and writes the result when it returns true.
  template <typename Change>
  void rewrite(Change change);

  std::filesystem::path dir_;
  std::filesystem::path path_;
  mutable std::mutex mutex_;
  std::vector<PairedDevice> devices_;
  Stamp stamp_;
};

}  // namespace huddle::protocol
