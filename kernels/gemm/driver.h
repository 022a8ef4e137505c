// The loops around a GEMM tile, shared by every variant of the int8 GEMM
// family. Included only by variant files; instantiated inside each file's
// anonymous namespace with that file's Tile, so each ISA gets its own copy.
//
// A Tile provides kMr, kNr, kKr and
//   template <class Out> static void run(size_t mr, size_t nc, size_t kc, size_t ks,
//       const int8_t* base, const size_t* offsets, const int8_t* zero,
//       const uint8_t* block, Out* c, size_t c_stride, const QGemmOutput& out);
// which computes rows 0..mr-1, columns 0..nc-1 of one tile. Row i reads, for
// each of the ks segments s, kc bytes at base + offsets[s * kMr + i], or at
// `zero` when that offset is kIndirectZero; the block holds nr columns packed
// with ks segments of K each padded to kKr. Out is int8_t (requantised with
// the block's scales) or int32_t (bias + sum).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/gemm/gemm.h"

namespace huddle::kernels {
// Internal linkage: every variant file (compiled with its own target flags)
// gets its own copy, never one the linker could hand to portable code.
namespace {

// Row pointer of one indirection entry.
inline const int8_t* indirect_row(const int8_t* base, size_t offset, const int8_t* zero) {
  return offset == kIndirectZero ? zero : base + offset;
}

// Rows outside, columns inside: one tile of A (mr rows, and for igemm its
// indirection entries) is reused from cache for every block of columns, and
// each output row is written in one sweep.
// The first n bytes at p (n < 8) as the low bytes of a 64-bit value, the rest
// zero. Byte loads on purpose: a memcpy of variable length becomes a library
// call, which made the K tails of 3-channel convolutions cost more than their
// dot products.
inline uint64_t load_tail_u64(const int8_t* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// The first n bytes at p (n < 16) and zeros, as two 64-bit halves.
struct Tail16 {
  uint64_t lo, hi;
};
inline Tail16 load_tail_16(const int8_t* p, size_t n) {
  return n > 8 ? Tail16{load_tail_u64(p, 8), load_tail_u64(p + 8, n - 8)} : Tail16{load_tail_u64(p, n), 0};
}

template <class Tile, class Out>
void gemm_driver(size_t m, size_t n, size_t k, const int8_t* a, size_t a_stride, const void* packed, Out* c,
                 size_t c_stride, const QGemmOutput& out) {
  constexpr size_t mr_max = Tile::kMr, nr = Tile::kNr;
  const size_t block = qgemm_block_bytes(nr, Tile::kKr, k);
  for (size_t m0 = 0; m0 < m; m0 += mr_max) {
    const size_t mr = m - m0 < mr_max ? m - m0 : mr_max;
    size_t offsets[mr_max];
    for (size_t i = 0; i < mr_max; ++i) offsets[i] = (i < mr ? i : mr - 1) * a_stride;
    for (size_t n0 = 0; n0 < n; n0 += nr) {
      const uint8_t* p = static_cast<const uint8_t*>(packed) + (n0 / nr) * block;
      const size_t nc = n - n0 < nr ? n - n0 : nr;
      Tile::template run<Out>(mr, nc, k, 1, a + m0 * a_stride, offsets, nullptr, p, c + m0 * c_stride + n0,
                              c_stride, out);
    }
  }
}

template <class Tile, class Out>
void igemm_driver(size_t m, size_t n, size_t kc, size_t ks, const int8_t* in, const size_t* indirection,
                  const int8_t* zero, const void* packed, Out* c, size_t c_stride, const QGemmOutput& out) {
  constexpr size_t mr_max = Tile::kMr, nr = Tile::kNr;
  const size_t block = qgemm_block_bytes(nr, Tile::kKr, ks * qgemm_round_k(kc, Tile::kKr));
  for (size_t m0 = 0; m0 < m; m0 += mr_max) {
    const size_t mr = m - m0 < mr_max ? m - m0 : mr_max;
    for (size_t n0 = 0; n0 < n; n0 += nr) {
      const uint8_t* p = static_cast<const uint8_t*>(packed) + (n0 / nr) * block;
      const size_t nc = n - n0 < nr ? n - n0 : nr;
      Tile::template run<Out>(mr, nc, kc, ks, in, indirection + (m0 / mr_max) * ks * mr_max, zero, p,
                              c + m0 * c_stride + n0, c_stride, out);
    }
  }
}

// The QGemmUkernel entry points of a Tile.
template <class Tile>
struct TileEntryPoints {
  static void gemm(size_t m, size_t n, size_t k, const int8_t* a, size_t a_stride, const void* packed,
                   int8_t* c, size_t c_stride, const QGemmOutput& out) {
    gemm_driver<Tile, int8_t>(m, n, k, a, a_stride, packed, c, c_stride, out);
  }
  static void gemm_i32(size_t m, size_t n, size_t k, const int8_t* a, size_t a_stride, const void* packed,
                       int32_t* c, size_t c_stride) {
    gemm_driver<Tile, int32_t>(m, n, k, a, a_stride, packed, c, c_stride, QGemmOutput{});
  }
  static void igemm(size_t m, size_t n, size_t kc, size_t ks, const int8_t* in, const size_t* indirection,
                    const int8_t* zero, const void* packed, int8_t* c, size_t c_stride,
                    const QGemmOutput& out) {
    igemm_driver<Tile, int8_t>(m, n, kc, ks, in, indirection, zero, packed, c, c_stride, out);
  }
};

}  // namespace
}  // namespace huddle::kernels
