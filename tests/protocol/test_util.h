// Helpers of the security tests (identity, paired, zap).
#pragma once

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace huddle::test {

// A fresh directory under $TMPDIR for one test, removed with everything in it.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string name = (std::filesystem::temp_directory_path() / "huddle-test.XXXXXX").string();
    if (::mkdtemp(name.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = name;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

// The permission bits of `path` (not following a symbolic link).
inline unsigned mode_of(const std::filesystem::path& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) throw std::runtime_error("lstat " + path.string() + " failed");
  return st.st_mode & 07777;
}

// Replaces the file `path` with `text` (as an editor or an attacker would:
// not atomically, with the mode it has).
inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

// The concatenation of `parts` (built with +=: GCC 12 warns falsely about
// "text" + std::string).
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::string text;
  (text += ... += parts);
  return text;
}

}  // namespace huddle::test
