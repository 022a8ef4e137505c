// The .hdm model file: one file, memory-mapped and read in place.
//
// Layout (little-endian):
//   [0, 64)      header: magic "\x89HDM\r\n\x1a\n", u32 format version, u32 flags (0),
//                u64 message offset (64), u64 message bytes (a multiple of 8),
//                u64 weights offset (a multiple of 64), u64 weights bytes, zero padding
//   message      a Cap'n Proto message (engine/model.capnp, struct Model), flat, one segment
//   weights      every constant tensor's bytes, each at a multiple of 64 bytes
//
// Opening validates everything before anything can use it: the header, every
// offset and length, the message (with Cap'n Proto reader limits), and the
// graph (tensor references, shapes against data lengths, quantisation sizes,
// an order in which every input exists before it is read). A file that fails
// gives a ModelError naming the file and what is wrong; nothing is read
// outside the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/model.capnp.h"

namespace capnp {
class MessageBuilder;
}

namespace huddle::engine {

inline constexpr uint32_t kModelFormatVersion = 1;
inline constexpr size_t kModelHeaderBytes = 64;
inline constexpr size_t kWeightAlignment = 64;
// Limits a file must keep (a hostile file must not make the loader work or allocate without bound).
inline constexpr size_t kMaxTensorRank = 8;
inline constexpr size_t kMaxNameBytes = 1024;
inline constexpr uint32_t kAbsentInput = 0xffffffffu;

// A model file that cannot be used; what() names the file and the problem.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A validated model file, mapped read-only (or held in memory for from_bytes).
class ModelFile {
 public:
  // Maps and validates the file at `path`. Throws ModelError.
  static ModelFile open(const std::string& path);
  // Validates a copy of `bytes` as if it were a file called `name` (tests, fuzzing,
  // a model received over the network). Throws ModelError.
  static ModelFile from_bytes(std::span<const uint8_t> bytes, const std::string& name);

  ModelFile(ModelFile&&) noexcept;
  ModelFile& operator=(ModelFile&&) noexcept;
  ~ModelFile();

  schema::Model::Reader model() const;
  // The bytes of constant tensor `index` (empty for a non-constant), in place in the file.
  std::span<const uint8_t> tensor_data(uint32_t index) const;
  const std::string& name() const;
  size_t file_bytes() const;
  size_t weights_bytes() const;

 private:
  struct Impl;
  explicit ModelFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Appends constant tensors' bytes to a weights section, each 64-byte aligned.
class WeightsBuilder {
 public:
  // Appends `bytes` and returns their offset in the section.
  uint64_t append(std::span<const uint8_t> bytes);
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

// The whole file for `message` (a Model) and `weights`, as bytes.
std::vector<uint8_t> serialize_model(capnp::MessageBuilder& message, std::span<const uint8_t> weights);
// Writes the file atomically: to a temporary file beside `path`, then renamed,
// so a failed write never leaves a half-written model. Throws std::runtime_error.
void write_model_file(const std::string& path, capnp::MessageBuilder& message,
                      std::span<const uint8_t> weights);
// Writes a whole file already made by serialize_model, atomically as above.
void write_model_bytes(const std::string& path, std::span<const uint8_t> bytes);

}  // namespace huddle::engine
