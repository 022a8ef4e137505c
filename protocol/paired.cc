#include "protocol/paired.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <unordered_set>

namespace huddle::protocol {
namespace {

constexpr std::string_view kFormatLine = "huddle-paired 1";
constexpr std::string_view kFormatName = "huddle-paired ";

// What is wrong with `name`, empty when nothing.
std::string name_problem(std::string_view name) {
  if (name.size() > kMaxDeviceName)
    return "name of " + std::to_string(name.size()) + " bytes (at most " + std::to_string(kMaxDeviceName) +
           ")";
  for (char c : name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return "control character in the name";
  return {};
}

// `field` from the file for a message: quoted, at most 40 bytes shown,
// anything but printable ASCII as \xNN (the file may hold anything).
std::string quoted(std::string_view field) {
  std::string text = "'";
  for (size_t i = 0; i < field.size() && i < 40; ++i) {
    const unsigned char c = static_cast<unsigned char>(field[i]);
    if (c >= 0x20 && c < 0x7f) {
      text += static_cast<char>(c);
    } else {
      char code[8];
      std::snprintf(code, sizeof code, "\\x%02x", c);
      text += code;
    }
  }
  text += field.size() > 40 ? "'..." : "'";
  return text;
}

// Throws an IdentityError "WHAT 'FIELD' WHY".
[[noreturn]] void refuse(std::string_view what, std::string_view field, std::string_view why) {
  std::string message(what);
  message += ' ';
  message += quoted(field);
  message += ' ';
  message += why;
  throw IdentityError(message);
}

// Cuts the next field (up to a space) off the front of `rest`.
std::string_view next_field(std::string_view& rest) {
  const size_t space = rest.find(' ');
  const std::string_view field = rest.substr(0, space);
  rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
  return field;
}

std::optional<int64_t> parse_time(std::string_view text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    if (value > (std::numeric_limits<int64_t>::max() - (c - '0')) / 10) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// The device on one line of the file; throws IdentityError with the problem.
PairedDevice parse_line(std::string_view line) {
  PairedDevice device;
  std::string_view rest = line;
  const std::string_view id = next_field(rest);
  const std::string_view role = next_field(rest);
  const std::string_view time = next_field(rest);
  device.public_key = next_field(rest);
  device.name = rest;
  if (role == "node")
    device.role = PeerRole::node;
  else if (role == "coordinator")
    device.role = PeerRole::coordinator;
  else if (role.empty())
    throw IdentityError("fields missing (device-id role paired-at public-key [name], one space apart)");
  else
    refuse("role", role, "unknown (node or coordinator)");
  const std::optional<int64_t> paired_at = parse_time(time);
  if (!paired_at) refuse("paired-at", time, "is not a time in unix seconds");
  device.paired_at = *paired_at;
  if (!is_key_text(device.public_key))
    throw IdentityError("public key is not a CurveZMQ key (40 Z85 characters)");
  device.id = device_id(device.public_key);
  if (id != device.id) refuse("device id", id, "is not the one of its key");
  if (const std::string problem = name_problem(device.name); !problem.empty()) throw IdentityError(problem);
  return device;
}

[[noreturn]] void fail_at(std::string_view source, size_t line, std::string_view problem) {
  std::string message(source);
  message += ':';
  message += std::to_string(line);
  message += ": ";
  message += problem;
  throw IdentityError(message);
}

// Holds an exclusive lock on a file for the lifetime of the object.
class FileLock {
 public:
  explicit FileLock(const std::filesystem::path& path)
      : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) {
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0) {
      std::string message = "cannot lock ";
      message += path.string();
      message += ": ";
      message += std::strerror(errno);
      if (fd_ >= 0) ::close(fd_);
      throw IdentityError(message);
    }
  }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock() { ::close(fd_); }

 private:
  int fd_;
};

}  // namespace

std::string_view role_name(PeerRole role) { return role == PeerRole::node ? "node" : "coordinator"; }

std::vector<PairedDevice> parse_paired(std::string_view text, std::string_view source) {
  std::vector<PairedDevice> devices;
  std::unordered_set<std::string> keys;
  bool format_seen = false;
  size_t number = 0;
  while (!text.empty()) {
    ++number;
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    try {
      if (!format_seen) {
        if (line.starts_with(kFormatName) && line != kFormatLine)
          refuse("format", line, "is not one this huddle reads (huddle-paired 1)");
        if (line != kFormatLine)
          throw IdentityError("not a paired devices file (its first line must be 'huddle-paired 1')");
        format_seen = true;
      } else if (!line.empty() && line.front() != '#') {
        devices.push_back(parse_line(line));
        if (!keys.insert(devices.back().public_key).second)
          refuse("device", devices.back().id, "is listed twice");
      }
    } catch (const IdentityError& e) {
      fail_at(source, number, e.what());
    }
  }
  if (!format_seen) fail_at(source, 1, "empty (its first line must be 'huddle-paired 1')");
  return devices;
}

std::string format_paired(std::span<const PairedDevice> devices) {
  std::string text(kFormatLine);
  text += "\n# device-id role paired-at public-key name\n";
  for (const PairedDevice& d : devices) {
    text += d.id;
    text += ' ';
    text += role_name(d.role);
    text += ' ';
    text += std::to_string(d.paired_at);
    text += ' ';
    text += d.public_key;
    if (!d.name.empty()) {
      text += ' ';
      text += d.name;
    }
    text += '\n';
  }
  return text;
}

PairedKeys::PairedKeys(std::filesystem::path dir) : dir_(std::move(dir)), path_(dir_ / "paired") {
  std::lock_guard lock(mutex_);
  load_locked(stamp());
}

PairedKeys::Stamp PairedKeys::stamp() const {
  Stamp s;
  struct stat st;
  if (::lstat(path_.c_str(), &st) != 0) return s;
  s.exists = true;
  s.device = st.st_dev;
  s.inode = st.st_ino;
  s.size = st.st_size;
  s.mode = st.st_mode;
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  s.ctime_ns = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  return s;
}

void PairedKeys::load_locked(const Stamp& now) {
  devices_.clear();
  stamp_ = now;
  const std::optional<std::string> text = read_private_file(path_, "paired devices", kMaxPairedFileBytes);
  if (text) devices_ = parse_paired(*text, path_.string());
}

std::vector<PairedDevice> PairedKeys::list() const {
  std::lock_guard lock(mutex_);
  return devices_;
}

std::optional<PairedDevice> PairedKeys::find_by_key(std::string_view public_key_z85) const {
  std::lock_guard lock(mutex_);
  for (const PairedDevice& d : devices_)
    if (d.public_key == public_key_z85) return d;
  return std::nullopt;
}

std::optional<PairedDevice> PairedKeys::find_by_id(std::string_view id) const {
  const std::string canonical = parse_device_id(id);
  std::lock_guard lock(mutex_);
  for (const PairedDevice& d : devices_)
    if (d.id == canonical) return d;
  return std::nullopt;
}

template <typename Change>
void PairedKeys::rewrite(Change change) {
  create_state_dir(dir_);
  const FileLock file_lock(dir_ / "paired.lock");
  std::lock_guard lock(mutex_);
  load_locked(stamp());
  std::vector<PairedDevice> devices = devices_;
  if (!change(devices)) return;
  write_private_file(path_, format_paired(devices));
  devices_ = std::move(devices);
  stamp_ = stamp();
}

void PairedKeys::add(PairedDevice device) {
  if (!is_key_text(device.public_key))
    throw IdentityError("not a CurveZMQ public key (40 Z85 characters expected)");
  if (const std::string problem = name_problem(device.name); !problem.empty()) throw IdentityError(problem);
  device.id = device_id(device.public_key);
  rewrite([&device](std::vector<PairedDevice>& devices) {
    const auto same = std::find_if(devices.begin(), devices.end(), [&device](const PairedDevice& d) {
      return d.public_key == device.public_key;
    });
    if (same != devices.end())
      *same = std::move(device);
    else
      devices.push_back(std::move(device));
    return true;
  });
}

std::optional<PairedDevice> PairedKeys::remove(std::string_view id) {
  const std::string canonical = parse_device_id(id);
  std::optional<PairedDevice> removed;
  rewrite([&canonical, &removed](std::vector<PairedDevice>& devices) {
    const auto it = std::find_if(devices.begin(), devices.end(),
                                 [&canonical](const PairedDevice& d) { return d.id == canonical; });
    if (it == devices.end()) return false;
    removed = std::move(*it);
    devices.erase(it);
    return true;
  });
  return removed;
}

bool PairedKeys::reload_if_changed() {
  const Stamp now = stamp();
  std::lock_guard lock(mutex_);
  if (now == stamp_) return false;
  load_locked(now);
  return true;
}

}  // namespace huddle::protocol
