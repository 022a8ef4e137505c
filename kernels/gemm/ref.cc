// The scalar reference of the int8 GEMM family: one output at a time, plain
// loops over the packed layout with nr = 1, kr = 1. It is the specification,
// not a fast path.
#include <cstring>

#include "kernels/gemm/driver.h"
#include "kernels/gemm/gemm.h"

namespace huddle::kernels {
namespace {

struct RefTile {
  static constexpr size_t kMr = 1, kNr = 1, kKr = 1;

  template <class Out>
  static void run(size_t, size_t, size_t kc, size_t ks, const int8_t* base, const size_t* offsets,
                  const int8_t* zero, const uint8_t* block, Out* c, size_t, const QGemmOutput& out) {
    int32_t acc;
    float scale;
    std::memcpy(&acc, block, sizeof acc);
    std::memcpy(&scale, block + sizeof acc, sizeof scale);
    const int8_t* w = reinterpret_cast<const int8_t*>(block + sizeof acc + sizeof scale);
    for (size_t s = 0; s < ks; ++s) {
      const int8_t* a = indirect_row(base, offsets[s], zero);
      for (size_t i = 0; i < kc; ++i) acc += int32_t{a[i]} * int32_t{w[s * kc + i]};
    }
    if constexpr (sizeof(Out) == 1)
      *c = qgemm_requant(acc, scale, out);
    else
      *c = acc;
  }
};

using Ref = TileEntryPoints<RefTile>;

}  // namespace

const QGemmUkernel qgemm_ref = {"qs8_gemm_1x1__ref", Isa::ref,      1,         1, 1, 0,
                                Ref::gemm,           Ref::gemm_i32, Ref::igemm};

}  // namespace huddle::kernels
