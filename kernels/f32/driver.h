// The loops around an fp32 GEMM tile, shared by every variant of the fp32
// GEMM family (the plain and the indirect form): f32gemm_driver<Tile> and
// f32igemm_driver<Tile> are a variant's F32GemmFn and F32IGemmFn. Included
// only by variant files; instantiated inside each file's anonymous namespace
// with that file's Tile, so each ISA gets its own copy.
//
// A Tile holds the accumulators of kMr x kNr outputs and provides
//   static constexpr size_t kMr, kNr;
//   static void init(Tile& t, const float* bias);      the kNr biases in every row
//   static Tile accumulate(Tile t, const float* const rows[kMr], size_t kc, const float* w);
//       adds rows[i][0..kc) times the kc x kNr weights at w (by value, so the
//       accumulators stay in registers)
//   static void store(const Tile& t, size_t mr, size_t nc, float* c, size_t c_stride, const F32Clamp& cl);
//       clamps and writes rows < mr, columns < nc
#pragma once

#include <cstddef>

#include "kernels/f32/f32.h"

namespace huddle::kernels {
// Internal linkage: every variant file (compiled with its own target flags)
// gets its own copy, never one the linker could hand to portable code.
namespace {

// How many column tiles of packed weights (kNr * (k + 1) floats each) one
// block holds: as many as fit in about 384 KiB, so a block stays in L2 while
// every row of A streams past it (at least one tile).
template <class Tile>
size_t f32gemm_block_tiles(size_t k) {
  const size_t tile_bytes = Tile::kNr * (k + 1) * sizeof(float);
  const size_t tiles = (size_t{384} << 10) / tile_bytes;
  return tiles ? tiles : 1;
}

// Column blocks outside, rows in the middle, the block's columns inside: the
// block's weights are reused from cache by every row tile, and one tile of A
// from cache by the block's columns. Rows past m repeat the last row (their
// outputs are not stored). Every output is the same sum in the same order
// whatever the blocking.
template <class Tile>
void f32gemm_driver(size_t m, size_t n, size_t k, const float* a, size_t a_stride, const void* packed,
                    float* c, size_t c_stride, const F32Clamp& cl) {
  constexpr size_t kMr = Tile::kMr, kNr = Tile::kNr;
  const size_t block = kNr * (k + 1), step = f32gemm_block_tiles<Tile>(k) * kNr;
  for (size_t b0 = 0; b0 < n; b0 += step) {
    const size_t b1 = n - b0 < step ? n : b0 + step;
    for (size_t m0 = 0; m0 < m; m0 += kMr) {
      const size_t mr = m - m0 < kMr ? m - m0 : kMr;
      const float* rows[kMr];
      for (size_t i = 0; i < kMr; ++i) rows[i] = a + (m0 + (i < mr ? i : mr - 1)) * a_stride;
      for (size_t n0 = b0; n0 < b1; n0 += kNr) {
        const float* p = static_cast<const float*>(packed) + (n0 / kNr) * block;
        Tile t;
        Tile::init(t, p);
        t = Tile::accumulate(t, rows, k, p + kNr);
        Tile::store(t, mr, n - n0 < kNr ? n - n0 : kNr, c + m0 * c_stride + n0, c_stride, cl);
      }
    }
  }
}

// The same over ks segments of kc inputs, row i of segment s read at
// input + indirection[i * ks + s] (or `zero` for kF32IndirectZero).
template <class Tile>
void f32igemm_driver(size_t m, size_t n, size_t ks, size_t kc, const size_t* indirection, const float* input,
                     const float* zero, const void* packed, float* c, size_t c_stride, const F32Clamp& cl) {
  constexpr size_t kMr = Tile::kMr, kNr = Tile::kNr;
  const size_t block = kNr * (ks * kc + 1), step = f32gemm_block_tiles<Tile>(ks * kc) * kNr;
  for (size_t b0 = 0; b0 < n; b0 += step) {
    const size_t b1 = n - b0 < step ? n : b0 + step;
    for (size_t m0 = 0; m0 < m; m0 += kMr) {
      const size_t mr = m - m0 < kMr ? m - m0 : kMr;
      for (size_t n0 = b0; n0 < b1; n0 += kNr) {
        const float* p = static_cast<const float*>(packed) + (n0 / kNr) * block;
        Tile t;
        Tile::init(t, p);
        for (size_t s = 0; s < ks; ++s) {
          const float* rows[kMr];
          for (size_t i = 0; i < kMr; ++i) {
            const size_t off = indirection[(m0 + (i < mr ? i : mr - 1)) * ks + s];
            rows[i] = off == kF32IndirectZero ? zero : input + off;
          }
          t = Tile::accumulate(t, rows, kc, p + kNr + s * kc * kNr);
        }
        Tile::store(t, mr, n - n0 < kNr ? n - n0 : kNr, c + m0 * c_stride + n0, c_stride, cl);
      }
    }
  }
}

}  // namespace
}  // namespace huddle::kernels
