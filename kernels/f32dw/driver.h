// The loops of the fp32 depthwise family, shared by its vector variants:
// f32dw_driver<Ops> is a variant's F32DwFn. Included only by variant files;
// everything is in an anonymous namespace, so each variant file (compiled
// with its own target flags) instantiates its own copy with its own Ops.
//
// Ops wraps one vector of kLanes floats:
//   using V; static constexpr size_t kLanes;
//   static V load(const float* p);                 kLanes floats
//   static V load_n(const float* p, size_t n);     the first n < kLanes, zeros after
//   static void store(float* p, V v);
//   static void store_n(float* p, V v, size_t n);  the first n < kLanes lanes
//   static V fma(V x, V w, V acc);                 acc + x * w
//   static V set1(float v);
//   static V clamp(V v, V lo, V hi);               min(hi, max(lo, v)), NaN passing through
//
// Per output row, channels go in steps of kLanes (the last step partial) and
// each step runs over the whole row with its weights loaded once. 3x3 and
// 5x5 kernels are unrolled with the weights in registers; interior pixels
// (every tap column inside the input) take their tap pointers without
// branches, border pixels point their padding taps at the packed zero row.
// Other kernel sizes take a plain loop over the taps that skips the padding.
// Either way each output adds its taps in row-major order, as f32dw_ref does.
#pragma once

#include <cstddef>

#include "kernels/f32dw/f32dw.h"

namespace huddle::kernels {
// Internal linkage: every variant file gets its own copy, never one the linker
// could hand to portable code.
namespace {

// The geometry of one run, copied into locals (the output stores could
// otherwise alias the caller's shape).
struct DwGeometry {
  size_t channels, cp, in_stride, out_stride, in_h, in_w, out_h, out_w;
  size_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
  size_t in_image, out_image;
  // Output columns [ox_lo, ox_hi) read no padding column.
  size_t ox_lo, ox_hi;

  explicit DwGeometry(const F32ConvShape& s)
      : channels(s.in_c),
        cp(f32dw_padded_channels(s)),
        in_stride(s.in_stride()),
        out_stride(s.out_stride()),
        in_h(s.in_h),
        in_w(s.in_w),
        out_h(s.out_h()),
        out_w(s.out_w()),
        kernel_h(s.kernel_h),
        kernel_w(s.kernel_w),
        stride_h(s.stride_h),
        stride_w(s.stride_w),
        dilation_h(s.dilation_h),
        dilation_w(s.dilation_w),
        pad_top(s.pad_top),
        pad_left(s.pad_left),
        in_image(s.in_h * s.in_w * s.in_stride()),
        out_image(s.out_h() * s.out_w() * s.out_stride()) {
    const size_t span = dilation_w * (kernel_w - 1) + 1;
    ox_lo = (pad_left + stride_w - 1) / stride_w;
    if (ox_lo > out_w) ox_lo = out_w;
    ox_hi = in_w + pad_left >= span ? (in_w + pad_left - span) / stride_w + 1 : 0;
    if (ox_hi > out_w) ox_hi = out_w;
    if (ox_hi < ox_lo) ox_hi = ox_lo;
  }

  // Input row of window row ky for output row oy, or in_h and up when in the padding.
  size_t in_row(size_t oy, size_t ky) const { return oy * stride_h + ky * dilation_h - pad_top; }
  // Input column of tap column kx for output column ox, or in_w and up when in the padding.
  size_t in_col(size_t ox, size_t kx) const { return ox * stride_w + kx * dilation_w - pad_left; }
};

// One step of channels (kFull: kLanes of them, else the first nc) of a
// kK x kK kernel, its bias and weights in registers.
template <class Ops, size_t kK, bool kFull>
struct FixedStep {
  static constexpr size_t kTaps = kK * kK;
  using V = typename Ops::V;
  V w[kTaps];
  V bias, lo, hi;
  size_t nc;

  FixedStep(const float* packed, size_t cp, size_t c0, size_t n, const F32Clamp& cl) : nc(n) {
    bias = Ops::load(packed + c0);
    for (size_t t = 0; t < kTaps; ++t) w[t] = Ops::load(packed + (1 + t) * cp + c0);
    lo = Ops::set1(cl.min);
    hi = Ops::set1(cl.max);
  }

  // One output pixel; tap(ky, kx) is the input of that tap (at the step's
  // first channel). Unrolled, the taps' addresses are computed in place.
  template <class Tap>
  inline void pixel(Tap tap, float* dst) const {
    V acc = bias;
    for (size_t ky = 0; ky < kK; ++ky) {
      for (size_t kx = 0; kx < kK; ++kx) {
        const float* x = tap(ky, kx);
        acc = Ops::fma(kFull ? Ops::load(x) : Ops::load_n(x, nc), w[ky * kK + kx], acc);
      }
    }
    acc = Ops::clamp(acc, lo, hi);
    if (kFull)
      Ops::store(dst, acc);
    else
      Ops::store_n(dst, acc, nc);
  }
};

// Border columns (outside [ox_lo, ox_hi)) of one output row whose tap
// pointers are computed once for every channel step: at most this many.
constexpr size_t kMaxEdge = 8;

// Output rows [row0, row1) of a kK x kK kernel.
template <class Ops, size_t kK>
void fixed_rows(const F32ConvShape& s, size_t row0, size_t row1, const float* input, const float* packed,
                float* output, const F32Clamp& cl) {
  constexpr size_t kLanes = Ops::kLanes, kTaps = kK * kK;
  const DwGeometry g(s);
  const float* zero = packed + (1 + kTaps) * g.cp;
  for (size_t r = row0; r < row1; ++r) {
    const size_t b = r / g.out_h, oy = r % g.out_h;
    const float* in = input + b * g.in_image;
    float* out = output + b * g.out_image + oy * g.out_w * g.out_stride;
    // Per window row: the input row (nullptr in the padding), the pointer at
    // the first interior column and the steps per tap column and per pixel
    // (the zero row and no steps in the padding).
    const float* rows[kK];
    const float* start[kK];
    size_t col[kK], step[kK];
    bool all = true;
    const size_t first = g.ox_lo < g.ox_hi ? (g.ox_lo * g.stride_w - g.pad_left) * g.in_stride : 0;
    for (size_t ky = 0; ky < kK; ++ky) {
      const size_t iy = g.in_row(oy, ky);
      const bool inside = iy < g.in_h;
      rows[ky] = inside ? in + iy * g.in_w * g.in_stride : nullptr;
      start[ky] = inside ? rows[ky] + first : zero;
      col[ky] = inside ? g.dilation_w * g.in_stride : 0;
      step[ky] = inside ? g.stride_w * g.in_stride : 0;
      all = all && inside;
    }
    // The kTaps tap pointers (at channel 0) of border column ox; padding taps
    // point at the zero row.
    const auto border_taps = [&](size_t ox, const float** x) {
      for (size_t kx = 0; kx < kK; ++kx) {
        const size_t ix = g.in_col(ox, kx);
        for (size_t ky = 0; ky < kK; ++ky)
          x[ky * kK + kx] = rows[ky] && ix < g.in_w ? rows[ky] + ix * g.in_stride : zero;
      }
    };
    // Those of every border column, once for all channel steps, when there are few.
    const float* edge_taps[kMaxEdge * kTaps];
    const float* const* edge = nullptr;
    if (g.ox_lo + (g.out_w - g.ox_hi) <= kMaxEdge) {
      for (size_t ox = 0; ox < g.ox_lo; ++ox) border_taps(ox, edge_taps + ox * kTaps);
      for (size_t ox = g.ox_hi; ox < g.out_w; ++ox)
        border_taps(ox, edge_taps + (g.ox_lo + ox - g.ox_hi) * kTaps);
      edge = edge_taps;
    }
    const auto run_step = [&](const auto& st, size_t c0) {
      const auto border = [&](size_t ox, size_t slot) {
        float* dst = out + ox * g.out_stride + c0;
        if (edge) {
          const float* const* x = edge + slot * kTaps;
          st.pixel([&](size_t ky, size_t kx) { return x[ky * kK + kx] + c0; }, dst);
        } else {
          const float* x[kTaps];
          border_taps(ox, x);
          st.pixel([&](size_t ky, size_t kx) { return x[ky * kK + kx] + c0; }, dst);
        }
      };
      for (size_t ox = 0; ox < g.ox_lo; ++ox) border(ox, ox);
      const size_t n = g.ox_hi - g.ox_lo, out_stride = g.out_stride;
      float* d = out + g.ox_lo * out_stride + c0;
      const float* p[kK];
      for (size_t ky = 0; ky < kK; ++ky) p[ky] = start[ky] + c0;
      if (all) {
        const size_t cs = col[0], ps = step[0];
        for (size_t i = 0; i < n; ++i, d += out_stride) {
          st.pixel([&](size_t ky, size_t kx) { return p[ky] + kx * cs; }, d);
          for (size_t ky = 0; ky < kK; ++ky) p[ky] += ps;
        }
      } else {
        for (size_t i = 0; i < n; ++i, d += out_stride) {
          st.pixel([&](size_t ky, size_t kx) { return p[ky] + kx * col[ky]; }, d);
          for (size_t ky = 0; ky < kK; ++ky) p[ky] += step[ky];
        }
      }
      for (size_t ox = g.ox_hi; ox < g.out_w; ++ox) border(ox, g.ox_lo + ox - g.ox_hi);
    };
    size_t c0 = 0;
    for (; c0 + kLanes <= g.channels; c0 += kLanes)
      run_step(FixedStep<Ops, kK, true>(packed, g.cp, c0, kLanes, cl), c0);
    if (c0 < g.channels) run_step(FixedStep<Ops, kK, false>(packed, g.cp, c0, g.channels - c0, cl), c0);
  }
}

// Output rows [row0, row1) of any kernel: the taps in a loop, padding skipped.
template <class Ops>
void any_rows(const F32ConvShape& s, size_t row0, size_t row1, const float* input, const float* packed,
              float* output, const F32Clamp& cl) {
  using V = typename Ops::V;
  constexpr size_t kLanes = Ops::kLanes;
  const DwGeometry g(s);
  const V lo = Ops::set1(cl.min), hi = Ops::set1(cl.max);
  for (size_t r = row0; r < row1; ++r) {
    const size_t b = r / g.out_h, oy = r % g.out_h;
    const float* in = input + b * g.in_image;
    float* out = output + b * g.out_image + oy * g.out_w * g.out_stride;
    for (size_t c0 = 0; c0 < g.channels; c0 += kLanes) {
      const size_t nc = g.channels - c0 < kLanes ? g.channels - c0 : kLanes;
      for (size_t ox = 0; ox < g.out_w; ++ox) {
        V acc = Ops::load(packed + c0);
        for (size_t ky = 0; ky < g.kernel_h; ++ky) {
          const size_t iy = g.in_row(oy, ky);
          if (iy >= g.in_h) continue;
          for (size_t kx = 0; kx < g.kernel_w; ++kx) {
            const size_t ix = g.in_col(ox, kx);
            if (ix >= g.in_w) continue;
            const float* x = in + (iy * g.in_w + ix) * g.in_stride + c0;
            const V w = Ops::load(packed + (1 + ky * g.kernel_w + kx) * g.cp + c0);
            acc = Ops::fma(nc == kLanes ? Ops::load(x) : Ops::load_n(x, nc), w, acc);
          }
        }
        acc = Ops::clamp(acc, lo, hi);
        float* dst = out + ox * g.out_stride + c0;
        if (nc == kLanes)
          Ops::store(dst, acc);
        else
          Ops::store_n(dst, acc, nc);
      }
    }
  }
}

// The variant's F32DwFn: 3x3 and 5x5 unrolled, any other size in a loop.
template <class Ops>
void f32dw_driver(const F32ConvShape& s, size_t row0, size_t row1, const float* input, const void* packed,
                  float* output, const F32Clamp& cl) {
  const float* p = static_cast<const float*>(packed);
  if (s.kernel_h == 3 && s.kernel_w == 3)
    fixed_rows<Ops, 3>(s, row0, row1, input, p, output, cl);
  else if (s.kernel_h == 5 && s.kernel_w == 5)
    fixed_rows<Ops, 5>(s, row0, row1, input, p, output, cl);
  else
    any_rows<Ops>(s, row0, row1, input, p, output, cl);
}

}  // namespace
}  // namespace huddle::kernels
