// .npy files: round trips for every dtype and rank, a header as NumPy writes
// it, and clear errors for what is not supported or damaged.
#include "engine/npy.h"

#include <catch2/catch.hpp>

#include <cstring>
#include <string>

using namespace huddle::engine;

namespace {

std::vector<uint8_t> from_text(const std::string& header, size_t data_bytes, int version = 1) {
  std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(version), 0};
  if (version == 1) {
    out.push_back(static_cast<uint8_t>(header.size()));
    out.push_back(static_cast<uint8_t>(header.size() >> 8));
  } else {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(header.size() >> (8 * i)));
  }
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + data_bytes, 0x11);
  return out;
}

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    parse_npy(bytes, "t.npy");
  } catch (const NpyError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("npy: every dtype and rank round-trips; headers are 64-byte padded", "[engine][npy]") {
  const std::vector<Shape> shapes = {{}, {3}, {2, 3}, {1, 3, 4, 5}, {0, 2}};
  for (DType dtype : {DType::f32, DType::f16, DType::i8, DType::u8, DType::i32, DType::i64}) {
    for (const Shape& shape : shapes) {
      std::vector<uint8_t> data(static_cast<size_t>(elements(shape)) * dtype_bytes(dtype));
      for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
      const std::vector<uint8_t> bytes = npy_bytes(dtype, shape, data);
      CHECK((bytes.size() - data.size()) % 64 == 0);
      const NpyArray a = parse_npy(bytes, "rt.npy");
      INFO(dtype_text(dtype) << " " << shape_text(shape));
      CHECK(a.dtype == dtype);
      CHECK(a.shape == shape);
      CHECK(a.data == data);
    }
  }
}

TEST_CASE("npy: headers as NumPy writes them, versions 1 and 2", "[engine][npy]") {
  // The exact header numpy.save writes for np.zeros((2, 3), np.float32).
  std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  h.append((10 + h.size() + 1 + 63) / 64 * 64 - 10 - h.size() - 1, ' ');  // numpy pads the whole to 64
  h += '\n';
  const NpyArray a = parse_npy(from_text(h, 24), "np.npy");
  CHECK(a.dtype == DType::f32);
  CHECK(a.shape == Shape{2, 3});
  const NpyArray b =
      parse_npy(from_text("{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }\n", 5, 2), "v2.npy");
  CHECK(b.dtype == DType::u8);
  CHECK(b.shape == Shape{5});
  const NpyArray c =
      parse_npy(from_text("{\"shape\": (), \"fortran_order\": False, \"descr\": \"<i8\"}\n", 8), "s.npy");
  CHECK(c.shape.empty());
}

TEST_CASE("npy: what is not supported or damaged is named", "[engine][npy]") {
  const std::string ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";
  CHECK(error_of(from_text(ok, 24)) == "no error");
  CHECK_THAT(error_of({1, 2, 3}), Catch::Contains("t.npy: not a .npy file (bad magic)"));
  CHECK_THAT(error_of(from_text(ok, 20)),
             Catch::Contains(".npy data is 20 bytes, its shape [2, 3] of f32 needs 24"));
  CHECK_THAT(error_of(from_text(ok, 28)), Catch::Contains(".npy data is 28 bytes"));
  CHECK_THAT(error_of(from_text("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", 8)),
             Catch::Contains("dtype '>f4' is not supported"));
  CHECK_THAT(error_of(from_text("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }\n", 16)),
             Catch::Contains("dtype '<c8' is not supported"));
  CHECK_THAT(error_of(from_text("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", 16)),
             Catch::Contains("Fortran order"));
  CHECK_THAT(error_of(from_text("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }\n", 8)),
             Catch::Contains("not a tuple of whole numbers"));
  CHECK_THAT(error_of(from_text("{'descr': '<f4', 'fortran_order': False}\n", 4)),
             Catch::Contains("has no 'shape'"));
  auto long_header = from_text(ok, 24);
  long_header[8] = 0xff;
  long_header[9] = 0x7f;
  CHECK_THAT(error_of(long_header), Catch::Contains("runs past the end of the file"));
  CHECK_THAT(error_of(from_text(
                 "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }\n", 0)),
             Catch::Contains("more than 2^40 elements"));
  CHECK_THROWS_WITH(read_npy("/nonexistent/x.npy"), Catch::Contains("/nonexistent/x.npy: cannot open"));
}
