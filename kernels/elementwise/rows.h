// The loops shared by the ISA variants of the elementwise, table lookup and
// pooling kernels: rows of int8 one vector per step, and the windows and
// channel steps of pooling. Included only by variant files and instantiated
// with each file's own vector traits; everything here has internal linkage, so
// each ISA object file gets its own copy compiled with its own target flags
// (as kernels/gemm/driver.h does for the GEMM tiles).
//
// A Vec (defined in the variant file's anonymous namespace) provides
//   using V = ...;                       // one vector of kWidth int8 lanes
//   static constexpr size_t kWidth;
//   static V load(const int8_t* p);      // kWidth bytes, unaligned
//   static void store(int8_t* p, V v);   // kWidth bytes, unaligned
//
// A ragged end is one vector overlapping the last full one, recomputed from
// the inputs; only rows shorter than a vector go through small stack buffers,
// so nothing past a tensor is read or written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/elementwise/pool.h"

namespace huddle::kernels {
namespace {

// The first n (< kWidth) bytes at p, the rest zero.
template <class Vec>
inline typename Vec::V load_part(const int8_t* p, size_t n) {
  int8_t tmp[Vec::kWidth] = {};
  std::memcpy(tmp, p, n);
  return Vec::load(tmp);
}

// The first n (< kWidth) lanes of v to p.
template <class Vec>
inline void store_part(int8_t* p, typename Vec::V v, size_t n) {
  int8_t tmp[Vec::kWidth];
  Vec::store(tmp, v);
  std::memcpy(p, tmp, n);
}

// y[i] = block(a[i..], b[i..]) kWidth at a time. A ragged end of n >= kWidth is
// one block overlapping the last full one, computed before any store (so y may
// be a); only n < kWidth goes through stack buffers.
template <class Vec, class Block>
inline void binary_row(size_t n, const int8_t* a, const int8_t* b, int8_t* y, const Block& block) {
  constexpr size_t w = Vec::kWidth;
  if (n < w) {
    if (n == 0) return;
    store_part<Vec>(y, block(load_part<Vec>(a, n), load_part<Vec>(b, n)), n);
    return;
  }
  const typename Vec::V last = block(Vec::load(a + n - w), Vec::load(b + n - w));
  for (size_t i = 0; i + w <= n; i += w) Vec::store(y + i, block(Vec::load(a + i), Vec::load(b + i)));
  Vec::store(y + n - w, last);
}

// y[i] = block(x[i..]) kWidth at a time, the ragged end as in binary_row.
template <class Vec, class Block>
inline void unary_row(size_t n, const int8_t* x, int8_t* y, const Block& block) {
  constexpr size_t w = Vec::kWidth;
  if (n < w) {
    if (n == 0) return;
    store_part<Vec>(y, block(load_part<Vec>(x, n)), n);
    return;
  }
  const typename Vec::V last = block(Vec::load(x + n - w));
  for (size_t i = 0; i + w <= n; i += w) Vec::store(y + i, block(Vec::load(x + i)));
  Vec::store(y + n - w, last);
}

// Rows of a binary op: one long row when b has a's shape; for a short
// per-channel b, groups of rows against b repeated in a stack buffer.
template <class Vec, class Block>
inline void binary_rows(size_t rows, size_t channels, const int8_t* a, const int8_t* b, size_t b_stride,
                        int8_t* y, const Block& block) {
  constexpr size_t kRepeat = 256;
  if (b_stride == channels || rows == 1) {
    binary_row<Vec>(rows * channels, a, b, y, block);
  } else if (b_stride == 0 && channels < kRepeat / 4) {
    int8_t repeated[kRepeat];
    const size_t group = kRepeat / channels;
    for (size_t i = 0; i < group * channels; ++i) repeated[i] = b[i % channels];
    for (size_t r = 0; r < rows; r += group) {
      const size_t nr = rows - r < group ? rows - r : group;
      binary_row<Vec>(nr * channels, a + r * channels, repeated, y + r * channels, block);
    }
  } else {
    for (size_t r = 0; r < rows; ++r)
      binary_row<Vec>(channels, a + r * channels, b + r * b_stride, y + r * channels, block);
  }
}

// Rows of a unary op with row strides: one long row when both are dense.
template <class Vec, class Block>
inline void unary_rows(size_t rows, size_t channels, const int8_t* x, size_t x_stride, int8_t* y,
                       size_t y_stride, const Block& block) {
  if (x_stride == channels && y_stride == channels) {
    unary_row<Vec>(rows * channels, x, y, block);
  } else {
    for (size_t r = 0; r < rows; ++r) unary_row<Vec>(channels, x + r * x_stride, y + r * y_stride, block);
  }
}

// Pooling runs kWidth channels per step, the ragged end as one step
// overlapping the last full one, so it needs channels >= kWidth; under that
// the reference loop is faster than vectors of mostly padding, so the variants
// send those calls to it.

// out[c0 .. c0 + kWidth) = block(c0) for every channel step of one pixel.
template <class Vec, class Block>
inline void pool_channels(size_t channels, int8_t* out, const Block& block) {
  for (size_t c = 0; c < channels; c += Vec::kWidth) {
    const size_t c0 = c + Vec::kWidth <= channels ? c : channels - Vec::kWidth;
    Vec::store(out + c0, block(c0));
  }
}

// The input cells of one pooling window: `rows` rows of `cols` cells from
// `first` (channel 0 of the window's first cell; the image when the window is
// empty), `row_stride` bytes apart, the cells of a row `channels` bytes apart.
struct PoolWindow {
  const int8_t* first;
  size_t rows, cols, row_stride, channels;
  size_t cells() const { return rows * cols; }
};

// All `pixels` cells of one image of `channels`, as one window (global pooling).
inline PoolWindow pool_row(const int8_t* image, size_t pixels, size_t channels) {
  return {image, 1, pixels, 0, channels};
}

// The multiplier of the average over window w of an average pooling call
// (pool.h): scale / count, one float division.
inline float pool_average_scale(const QPoolShape& s, const QAvgPoolParams& p, const PoolWindow& w) {
  const size_t cells = w.cells();
  const size_t count = p.count_include_pad ? s.kernel_h * s.kernel_w : (cells ? cells : 1);
  return p.scale / static_cast<float>(count);
}

// fn(the kWidth channels from c0 of a cell) for every cell of w, row by row.
// Forms no pointer past the cells it loads.
template <class Vec, class Fn>
inline void pool_cells(const PoolWindow& w, size_t c0, const Fn& fn) {
  for (size_t i = 0; i < w.rows; ++i) {
    const int8_t* row = w.first + i * w.row_stride + c0;
    for (size_t j = 0; j < w.cols; ++j) fn(Vec::load(row + j * w.channels));
  }
}

// fn(window, out) for every output pixel of s: its window in x and its
// channels in y.
template <class Fn>
inline void pool_windows(const QPoolShape& s, const int8_t* x, int8_t* y, const Fn& fn) {
  for (size_t b = 0; b < s.batch; ++b) {
    const int8_t* image = x + b * s.in_h * s.in_w * s.channels;
    for (size_t oh = 0; oh < s.out_h; ++oh) {
      size_t h0, h1;
      qs8_pool_window(oh, s.stride_h, s.pad_top, s.kernel_h, s.in_h, &h0, &h1);
      for (size_t ow = 0; ow < s.out_w; ++ow) {
        size_t w0, w1;
        qs8_pool_window(ow, s.stride_w, s.pad_left, s.kernel_w, s.in_w, &w0, &w1);
        const size_t row_stride = s.in_w * s.channels;
        const bool empty = h0 == h1 || w0 == w1;  // h0 or w0 may then lie past the input
        const PoolWindow w{empty ? image : image + h0 * row_stride + w0 * s.channels, h1 - h0, w1 - w0,
                           row_stride, s.channels};
        fn(w, y + ((b * s.out_h + oh) * s.out_w + ow) * s.channels);
      }
    }
  }
}

}  // namespace
}  // namespace huddle::kernels
