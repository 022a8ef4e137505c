#include "engine/npy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace huddle::engine {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicBytes = 6;
constexpr size_t kMaxHeaderBytes = 1 << 16;
constexpr int64_t kMaxElements = int64_t{1} << 40;

struct DescrName {
  const char* descr;
  DType dtype;
};
constexpr DescrName kDescrs[] = {{"<f4", DType::f32}, {"<f2", DType::f16}, {"|i1", DType::i8},
                                 {"|u1", DType::u8},  {"<i4", DType::i32}, {"<i8", DType::i64},
                                 {"i1", DType::i8},   {"u1", DType::u8}};

const char* descr_of(DType dtype) {
  for (const DescrName& d : kDescrs)
    if (d.dtype == dtype) return d.descr;
  return "?";
}

// The value text of key `key` in a Python dict literal, e.g. "'<f4'" or "(1, 3)".
std::string dict_value(const std::string& header, const std::string& key, const std::string& name) {
  const std::string quoted[] = {"'" + key + "'", "\"" + key + "\""};
  size_t at = std::string::npos;
  for (const std::string& q : quoted)
    if ((at = header.find(q)) != std::string::npos) {
      at += q.size();
      break;
    }
  if (at == std::string::npos) throw NpyError(name + ": .npy header has no '" + key + "'");
  at = header.find(':', at);
  if (at == std::string::npos) throw NpyError(name + ": .npy header is malformed near '" + key + "'");
  ++at;
  while (at < header.size() && header[at] == ' ') ++at;
  size_t end = at;
  if (end < header.size() && header[end] == '(') {
    end = header.find(')', end);
    if (end == std::string::npos) throw NpyError(name + ": .npy header's shape is not closed");
    ++end;
  } else {
    while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  }
  std::string v = header.substr(at, end - at);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

}  // namespace

NpyArray parse_npy(std::span<const uint8_t> bytes, const std::string& name) {
  if (bytes.size() < kMagicBytes + 4 || std::memcmp(bytes.data(), kMagic, kMagicBytes) != 0)
    throw NpyError(name + ": not a .npy file (bad magic)");
  const int major = bytes[6];
  size_t header_len, header_at;
  if (major == 1) {
    header_len = bytes[8] | size_t{bytes[9]} << 8;
    header_at = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw NpyError(name + ": .npy file is truncated in its header");
    header_len = bytes[8] | size_t{bytes[9]} << 8 | size_t{bytes[10]} << 16 | size_t{bytes[11]} << 24;
    header_at = 12;
  } else {
    throw NpyError(name + ": .npy format version " + std::to_string(major) + " is not supported (1, 2, 3)");
  }
  if (header_len > kMaxHeaderBytes || header_len > bytes.size() - header_at)
    throw NpyError(name + ": .npy header length " + std::to_string(header_len) +
                   " runs past the end of the file");
  const std::string header(reinterpret_cast<const char*>(bytes.data() + header_at), header_len);

  NpyArray out;
  std::string descr = dict_value(header, "descr", name);
  if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"'))
    descr = descr.substr(1, descr.size() - 2);
  bool known = false;
  for (const DescrName& d : kDescrs)
    if (descr == d.descr) out.dtype = d.dtype, known = true;
  if (!known)
    throw NpyError(name + ": .npy dtype '" + descr +
                   "' is not supported (little-endian f4, f2, i1, u1, i4, i8)");
  if (dict_value(header, "fortran_order", name) != "False")
    throw NpyError(name + ": .npy array is in Fortran order; save it in C order");
  const std::string shape = dict_value(header, "shape", name);
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')')
    throw NpyError(name + ": .npy shape '" + shape + "' is not a tuple");
  int64_t count = 1;
  for (size_t i = 1; i + 1 < shape.size();) {
    while (i + 1 < shape.size() && (shape[i] == ' ' || shape[i] == ',')) ++i;
    if (i + 1 >= shape.size()) break;
    size_t j = i;
    int64_t d = 0;
    while (j + 1 < shape.size() && shape[j] >= '0' && shape[j] <= '9') {
      d = d * 10 + (shape[j] - '0');
      if (d > kMaxElements) throw NpyError(name + ": .npy dimension is too large");
      ++j;
    }
    if (j == i) throw NpyError(name + ": .npy shape '" + shape + "' is not a tuple of whole numbers");
    out.shape.push_back(d);
    if (out.shape.size() > 8) throw NpyError(name + ": .npy array has more than 8 dimensions");
    if (d != 0 && count > kMaxElements / d) throw NpyError(name + ": .npy array has more than 2^40 elements");
    count *= d;
    i = j;
  }
  const size_t data_at = header_at + header_len;
  const size_t need = static_cast<size_t>(count) * dtype_bytes(out.dtype);
  if (bytes.size() - data_at != need)
    throw NpyError(name + ": .npy data is " + std::to_string(bytes.size() - data_at) + " bytes, its shape " +
                   shape_text(out.shape) + " of " + dtype_text(out.dtype) + " needs " + std::to_string(need));
  out.data.assign(bytes.begin() + static_cast<ptrdiff_t>(data_at), bytes.end());
  return out;
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw NpyError(path + ": cannot open: " + std::strerror(errno));
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_npy(bytes, path);
}

std::vector<uint8_t> npy_bytes(DType dtype, const Shape& shape, std::span<const uint8_t> data) {
  // Python's tuple syntax: "()", "(3,)", "(1, 3)".
  std::string tuple;
  for (size_t i = 0; i < shape.size(); ++i) tuple += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) tuple += ",";
  std::string dict =
      std::string("{'descr': '") + descr_of(dtype) + "', 'fortran_order': False, 'shape': (" + tuple + "), }";
  // Magic, version, length, then the dict padded with spaces and a newline to a multiple of 64.
  const size_t total = kMagicBytes + 4 + dict.size() + 1;
  const size_t padded = (total + 63) / 64 * 64;
  dict.append(padded - total, ' ');
  dict += '\n';
  std::vector<uint8_t> out(kMagic, kMagic + kMagicBytes);
  out.push_back(1);
  out.push_back(0);
  out.push_back(static_cast<uint8_t>(dict.size() & 0xff));
  out.push_back(static_cast<uint8_t>(dict.size() >> 8));
  out.insert(out.end(), dict.begin(), dict.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

void write_npy(const std::string& path, DType dtype, const Shape& shape, std::span<const uint8_t> data) {
  const std::vector<uint8_t> bytes = npy_bytes(dtype, shape, data);
  const std::string tmp = path + ".tmp" + std::to_string(getpid());
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw NpyError(path + ": cannot write: " + std::strerror(err));
  }
}

}  // namespace huddle::engine
