// The ISA-independent part of the int8 depthwise family: the walk over output
// rows and channel blocks, the tap pointers of interior and border pixels, and
// the shape fields held in locals. Included only by variant files; everything
// is in an anonymous namespace, so each variant file (compiled with its own
// target flags) instantiates its own copy with its own Kernel.
//
// A Kernel provides
//   static constexpr size_t kCr;           channels per block
//   struct Requant; static Requant requant(const QGemmOutput&);
//   template <size_t kTaps, class F> static void block(const uint8_t* p, F&& f);
//   template <size_t kTaps, class F> static void tail(const uint8_t* p, size_t nc, F&& f);
// block / tail load the block packed at p (all kCr channels, or the first nc)
// into a block object b and call f(b); b.run(x, c, dst, rq) computes one
// output pixel from the kTaps tap pointers x (the block's first channel is c
// past them; padding taps point at the in_zp row) and stores it at dst.
// BlockLoads<kCr, Block> provides block and tail for the usual case;
// dwconv_driver<Kernel, uk> is the variant's QDwConvFn.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/dwconv/dwconv.h"

namespace huddle::kernels {
// Internal linkage: every variant file gets its own copy, never one the linker
// could hand to portable code.
namespace {

// The geometry of one run, copied into locals (the int8 output stores could
// otherwise alias the caller's shape).
template <uint32_t kKernel>
struct Geometry {
  static constexpr size_t kTaps = size_t{kKernel} * kKernel;
  size_t in_stride, out_stride, stride, pad_left, out_w, ox_lo, ox_hi;
  ptrdiff_t in_w;
  const int8_t* zero;
};

// The kTaps tap pointers of output column ox (padding taps point at the in_zp
// row); rows[ky] is input row ky of the window, or nullptr in the padding.
template <uint32_t kKernel>
inline void border_taps(const Geometry<kKernel>& g, const int8_t* const* rows, size_t ox, const int8_t** x) {
  for (size_t kx = 0; kx < kKernel; ++kx) {
    const ptrdiff_t ix = static_cast<ptrdiff_t>(ox * g.stride + kx) - static_cast<ptrdiff_t>(g.pad_left);
    const bool col = ix >= 0 && ix < g.in_w;
    for (size_t ky = 0; ky < kKernel; ++ky)
      x[ky * kKernel + kx] = col && rows[ky] ? rows[ky] + ix * static_cast<ptrdiff_t>(g.in_stride) : g.zero;
  }
}

// What every block of one output row shares: the window's input rows
// (nullptr in the padding), the row pointers at the first interior column
// (the in_zp row in the padding) with their steps per column and per pixel,
// whether no row is padding, and the border columns' tap pointers (nullptr
// when there are more than kMaxEdge of them).
template <uint32_t kKernel>
struct RowTaps {
  const int8_t* rows[kKernel];
  const int8_t* start[kKernel];
  size_t col[kKernel], step[kKernel];
  bool all;
  const int8_t* const* edge;
};

// Border columns (outside [ox_lo, ox_hi)) of one output row whose tap
// pointers are computed once for every block: at most this many.
constexpr size_t kMaxEdge = 8;

// One output row of one block (channels c0..). Columns [ox_lo, ox_hi) read no
// padding column and take their tap pointers without branches; the others
// take them from `edge` (border_taps of the row's border columns, left then
// right) or, when it is nullptr, compute them.
template <uint32_t kKernel, typename B, typename Requant>
inline void block_row(const B& b, const Geometry<kKernel>& g, const RowTaps<kKernel>& rt, size_t c0,
                      int8_t* dst, const Requant& rq) {
  constexpr size_t kTaps = Geometry<kKernel>::kTaps;
  const auto border = [&](size_t ox, size_t slot) {
    if (rt.edge) {
      b.run(rt.edge + slot * kTaps, c0, dst + ox * g.out_stride, rq);
    } else {
      const int8_t* x[kTaps];
      border_taps<kKernel>(g, rt.rows, ox, x);
      b.run(x, c0, dst + ox * g.out_stride, rq);
    }
  };
  size_t ox = 0;
  for (; ox < g.ox_lo; ++ox) border(ox, ox);
  if (ox < g.ox_hi) {
    // Locals: the output stores could otherwise alias g and rt.
    const size_t out_stride = g.out_stride;
    const int8_t* r[kKernel];
    for (size_t ky = 0; ky < kKernel; ++ky) r[ky] = rt.start[ky] + c0;
    int8_t* d = dst + ox * out_stride;
    const size_t n = g.ox_hi - ox;
    if (rt.all) {
      const size_t cs = g.in_stride, step = g.stride * g.in_stride;
      for (size_t i = 0; i < n; ++i, d += out_stride) {
        const int8_t* x[kTaps];
        for (size_t ky = 0; ky < kKernel; ++ky) {
          for (size_t kx = 0; kx < kKernel; ++kx) x[ky * kKernel + kx] = r[ky] + kx * cs;
          r[ky] += step;
        }
        b.run(x, 0, d, rq);
      }
    } else {
      size_t col[kKernel], step[kKernel];
      for (size_t ky = 0; ky < kKernel; ++ky) {
        col[ky] = rt.col[ky];
        step[ky] = rt.step[ky];
      }
      for (size_t i = 0; i < n; ++i, d += out_stride) {
        const int8_t* x[kTaps];
        for (size_t ky = 0; ky < kKernel; ++ky) {
          for (size_t kx = 0; kx < kKernel; ++kx) x[ky * kKernel + kx] = r[ky] + kx * col[ky];
          r[ky] += step[ky];
        }
        b.run(x, 0, d, rq);
      }
    }
    ox = g.ox_hi;
  }
  for (; ox < g.out_w; ++ox) border(ox, g.ox_lo + ox - g.ox_hi);
}

// One run of a kKernel x kKernel filter: per output row, what its blocks
// share (RowTaps), then each block of kCr channels, and the channel tail, over
// the whole row.
template <class Kernel, uint32_t kKernel>
void dwconv_rows(const QDwConvUkernel& uk, const QDwConvShape& s, const int8_t* in, const void* packed,
                 int8_t* out, const QGemmOutput& params) {
  constexpr size_t kCr = Kernel::kCr;
  constexpr size_t kTaps = size_t{kKernel} * kKernel;
  Geometry<kKernel> g;
  const size_t channels = s.channels, stride = s.stride, pad_top = s.pad_top;
  const ptrdiff_t in_h = static_cast<ptrdiff_t>(s.in_h);
  g.in_stride = s.in_stride;
  g.out_stride = s.out_stride;
  g.stride = stride;
  g.pad_left = s.pad_left;
  g.in_w = static_cast<ptrdiff_t>(s.in_w);
  g.zero = dwconv_packed_zero(uk, packed, kKernel, channels);
  const size_t block_bytes = dwconv_block_bytes(uk, kKernel);
  const uint8_t* base = static_cast<const uint8_t*>(packed);
  const typename Kernel::Requant rq = Kernel::requant(params);
  const size_t out_h = dwconv_out_h(s);
  g.out_w = dwconv_out_w(s);
  const size_t row = s.in_w * g.in_stride, full = channels / kCr * kCr;
  // Output columns [ox_lo, ox_hi) read no padding column.
  g.ox_lo = g.pad_left >= g.out_w * stride ? g.out_w : (g.pad_left + stride - 1) / stride;
  g.ox_hi = s.in_w + g.pad_left >= kKernel ? (s.in_w + g.pad_left - kKernel) / stride + 1 : 0;
  if (g.ox_hi > g.out_w) g.ox_hi = g.out_w;
  if (g.ox_hi < g.ox_lo) g.ox_hi = g.ox_lo;
  for (size_t oy = 0; oy < out_h; ++oy) {
    RowTaps<kKernel> rt;
    rt.all = true;
    const size_t first = g.ox_lo < g.ox_hi ? (g.ox_lo * stride - g.pad_left) * g.in_stride : 0;
    for (size_t ky = 0; ky < kKernel; ++ky) {
      const ptrdiff_t iy = static_cast<ptrdiff_t>(oy * stride + ky) - static_cast<ptrdiff_t>(pad_top);
      const bool inside = iy >= 0 && iy < in_h;
      rt.rows[ky] = inside ? in + iy * static_cast<ptrdiff_t>(row) : nullptr;
      rt.start[ky] = inside ? rt.rows[ky] + first : g.zero;
      rt.col[ky] = inside ? g.in_stride : 0;
      rt.step[ky] = inside ? stride * g.in_stride : 0;
      rt.all = rt.all && inside;
    }
    const int8_t* edge_taps[kMaxEdge * kTaps];
    rt.edge = nullptr;
    if (g.ox_lo + (g.out_w - g.ox_hi) <= kMaxEdge) {
      for (size_t ox = 0; ox < g.ox_lo; ++ox) border_taps<kKernel>(g, rt.rows, ox, edge_taps + ox * kTaps);
      for (size_t ox = g.ox_hi; ox < g.out_w; ++ox)
        border_taps<kKernel>(g, rt.rows, ox, edge_taps + (g.ox_lo + ox - g.ox_hi) * kTaps);
      rt.edge = edge_taps;
    }
    int8_t* dst = out + oy * g.out_w * g.out_stride;
    const uint8_t* p = base;
    size_t c0 = 0;
    const auto row_of = [&](const auto& b) { block_row<kKernel>(b, g, rt, c0, dst + c0, rq); };
    for (; c0 < full; c0 += kCr, p += block_bytes) Kernel::template block<kTaps>(p, row_of);
    if (c0 < channels) Kernel::template tail<kTaps>(p, channels - c0, row_of);
  }
}

// The QDwConvFn of a Kernel for the variant kUk (both kernel sizes).
template <class Kernel, const QDwConvUkernel& kUk>
void dwconv_driver(const QDwConvShape& s, const int8_t* in, const void* packed, int8_t* out,
                   const QGemmOutput& params) {
  if (s.kernel == 3)
    dwconv_rows<Kernel, 3>(kUk, s, in, packed, out, params);
  else
    dwconv_rows<Kernel, 5>(kUk, s, in, packed, out, params);
}

// Kernel::block and Kernel::tail for a Block<kTaps, kFull> of kCr channels
// whose load(p, nc) takes the number of channels it computes.
template <size_t kCr, template <size_t, bool> class Block>
struct BlockLoads {
  template <size_t kTaps, class F>
  static void block(const uint8_t* p, F&& f) {
    Block<kTaps, true> b;
    b.load(p, kCr);
    f(b);
  }
  template <size_t kTaps, class F>
  static void tail(const uint8_t* p, size_t nc, F&& f) {
    Block<kTaps, false> b;
    b.load(p, nc);
    f(b);
  }
};

}  // namespace
}  // namespace huddle::kernels
