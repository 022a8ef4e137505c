// SHA-256 (FIPS 180-4): a model file's identity (a node reports the hash of
// the .hdm it serves) and the provenance of converted models.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace huddle::engine {

// The SHA-256 of `bytes` as 64 lowercase hex digits.
std::string sha256_hex(std::span<const uint8_t> bytes);

}  // namespace huddle::engine
