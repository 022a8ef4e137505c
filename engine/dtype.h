// Element types of tensors; the numbering is the .hdm schema's (schema::DType).
#pragma once

#include <cstddef>
#include <cstdint>

namespace huddle::engine {

enum class DType : uint8_t { f32, i8, i32, f16, u8, i64 };

// True for a value inside the enum (a file may hold any number).
constexpr bool dtype_known(uint16_t value) { return value <= static_cast<uint16_t>(DType::i64); }

// Bytes of one element.
constexpr size_t dtype_bytes(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return 4;
    case DType::i8:
      return 1;
    case DType::i32:
      return 4;
    case DType::f16:
      return 2;
    case DType::u8:
      return 1;
    case DType::i64:
      return 8;
  }
  return 0;
}

// "f32", "i8", ...
constexpr const char* dtype_text(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "f32";
    case DType::i8:
      return "i8";
    case DType::i32:
      return "i32";
    case DType::f16:
      return "f16";
    case DType::u8:
      return "u8";
    case DType::i64:
      return "i64";
  }
  return "?";
}

}  // namespace huddle::engine
