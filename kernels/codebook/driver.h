// The loops around a codebook fully connected tile, shared by every variant of
// the codebook family. Included only by variant files; instantiated inside
// each file's anonymous namespace with that file's Tile, so each ISA gets its
// own copy.
//
// A Tile provides
//   static constexpr size_t kMr, kNr;      rows and columns of one tile
//   using Acc;                             one row's kNr sums
//   using Bias; static Bias bias(const uint8_t* block);   a block's kNr biases
//   using Cols; static Cols columns(size_t nc);           columns < nc of a block
//   struct Table; template <unsigned kBits> static void prepare(const void* packed, Table& t);
//       what accumulate reads of the packed table, made once per call
//   template <unsigned kBits, size_t kRows, class X>
//   static void accumulate(size_t k, const X* x, size_t x_stride, int32_t zero_point, const uint8_t* w,
//                          const Table& t, Acc acc[kMr]);
//       acc[i] = sum_k x[i][k] * w[k] for rows i < kRows of one block
// and the output rules, CodebookEntryPoints<Tile, Out, uk>: an Out provides
//   struct F32 { explicit F32(const CodebookF32Output&); };
//   struct Qs8F32 { Qs8F32(const CodebookQs8Input&, const CodebookF32Output&); };
//   struct Qs8 { Qs8(const CodebookQs8Input&, const CodebookQs8Output&); };
// each with void store(Y* dst, Cols cols, Bias bias, const Acc& acc) const,
// which writes the columns cols of one row (Y float, or int8_t for Qs8).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/codebook/codebook.h"

namespace huddle::kernels {
// Internal linkage: every variant file (compiled with its own target flags)
// gets its own copy, never one the linker could hand to portable code.
namespace {

// The tile of mr rows (1 to kMr): no work is spent on rows past m.
template <class Tile, unsigned kBits, class X>
void codebook_accumulate_tile(size_t mr, size_t k, const X* x, size_t x_stride, int32_t zero_point,
                              const uint8_t* w, const typename Tile::Table& table,
                              typename Tile::Acc acc[Tile::kMr]) {
  switch (mr) {
    case 1:
      return Tile::template accumulate<kBits, 1>(k, x, x_stride, zero_point, w, table, acc);
    case 2:
      return Tile::template accumulate<kBits, 2>(k, x, x_stride, zero_point, w, table, acc);
    case 3:
      return Tile::template accumulate<kBits, 3>(k, x, x_stride, zero_point, w, table, acc);
    default:
      return Tile::template accumulate<kBits, Tile::kMr>(k, x, x_stride, zero_point, w, table, acc);
  }
}

// Runs the tiles of variant uk (columns outside, rows inside) and hands each
// row of kNr sums, with the block's bias, to `emit(row, n0, cols, bias, acc)`.
template <class Tile, unsigned kBits, class X, class Emit>
void codebook_run(const CodebookFcUkernel& uk, size_t m, size_t n, size_t k, const X* x, size_t x_stride,
                  int32_t zero_point, const void* packed, Emit emit) {
  constexpr size_t kMr = Tile::kMr, kNr = Tile::kNr;
  typename Tile::Table table;
  Tile::template prepare<kBits>(packed, table);
  const uint8_t* blocks = static_cast<const uint8_t*>(packed) + codebook_fc_table_bytes(kBits);
  const size_t block = codebook_fc_block_bytes(uk, kBits, k);
  for (size_t n0 = 0; n0 < n; n0 += kNr) {
    const uint8_t* p = blocks + (n0 / kNr) * block;
    const typename Tile::Bias bias = Tile::bias(p);
    const typename Tile::Cols cols = Tile::columns(n - n0 < kNr ? n - n0 : kNr);
    for (size_t m0 = 0; m0 < m; m0 += kMr) {
      const size_t mr = m - m0 < kMr ? m - m0 : kMr;
      typename Tile::Acc acc[kMr];
      codebook_accumulate_tile<Tile, kBits>(mr, k, x + m0 * x_stride, x_stride, zero_point,
                                            p + kNr * sizeof(float), table, acc);
      for (size_t i = 0; i < mr; ++i) emit(m0 + i, n0, cols, bias, acc[i]);
    }
  }
}

// The CodebookFcUkernel entry points of a Tile and its output rules Out, for
// the variant uk.
template <class Tile, class Out, const CodebookFcUkernel& kUk>
struct CodebookEntryPoints {
  template <unsigned kBits>
  static void f32(size_t m, size_t n, size_t k, const float* x, size_t x_stride, const void* packed, float* y,
                  size_t y_stride, const CodebookF32Output& out) {
    run<kBits>(m, n, k, x, x_stride, 0, packed, y, y_stride, typename Out::F32(out));
  }
  template <unsigned kBits>
  static void qs8_f32(size_t m, size_t n, size_t k, const int8_t* x, size_t x_stride, const void* packed,
                      float* y, size_t y_stride, const CodebookQs8Input& in, const CodebookF32Output& out) {
    run<kBits>(m, n, k, x, x_stride, in.zero_point, packed, y, y_stride, typename Out::Qs8F32(in, out));
  }
  template <unsigned kBits>
  static void qs8(size_t m, size_t n, size_t k, const int8_t* x, size_t x_stride, const void* packed,
                  int8_t* y, size_t y_stride, const CodebookQs8Input& in, const CodebookQs8Output& out) {
    run<kBits>(m, n, k, x, x_stride, in.zero_point, packed, y, y_stride, typename Out::Qs8(in, out));
  }

 private:
  template <unsigned kBits, class X, class Y, class Rule>
  static void run(size_t m, size_t n, size_t k, const X* x, size_t x_stride, int32_t zero_point,
                  const void* packed, Y* y, size_t y_stride, const Rule& rule) {
    codebook_run<Tile, kBits>(
        kUk, m, n, k, x, x_stride, zero_point, packed,
        [&](size_t i, size_t n0, typename Tile::Cols cols, typename Tile::Bias bias,
            const typename Tile::Acc& acc) { rule.store(y + i * y_stride + n0, cols, bias, acc); });
  }
};

}  // namespace
}  // namespace huddle::kernels
