// NumPy .npy files (format versions 1.0, 2.0 and 3.0): the raw-tensor format
// every ML tool reads and writes, used by `huddle infer` and the comparisons
// with other engines. Little-endian, C order; dtypes f32, f16, i8, u8, i32, i64.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/dtype.h"
#include "engine/graph.h"

namespace huddle::engine {

class NpyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct NpyArray {
  DType dtype = DType::f32;
  Shape shape;
  std::vector<uint8_t> data;  // elements(shape) * dtype_bytes(dtype) bytes
};

// Parses .npy bytes; `name` is used in error messages. Throws NpyError naming
// the problem (bad magic, unsupported dtype or order, header or data size).
NpyArray parse_npy(std::span<const uint8_t> bytes, const std::string& name);
// Reads a .npy file. Throws NpyError.
NpyArray read_npy(const std::string& path);
// The .npy bytes (format 1.0, header padded to 64 bytes) of an array.
std::vector<uint8_t> npy_bytes(DType dtype, const Shape& shape, std::span<const uint8_t> data);
// Writes a .npy file atomically (temporary file, then rename). Throws NpyError.
void write_npy(const std::string& path, DType dtype, const Shape& shape, std::span<const uint8_t> data);

}  // namespace huddle::engine
