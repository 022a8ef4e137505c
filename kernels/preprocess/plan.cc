// Parameter checks and the per-call tables every preprocess variant runs from.
#include <cmath>
#include <cstring>

#include "kernels/preprocess/preprocess.h"

namespace huddle::kernels {
namespace {

constexpr int kFrac = 11;  // F: fraction bits of the sampling positions
constexpr int32_t kOne = 1 << kFrac;
constexpr size_t kMaxSize = 65535;

size_t bytes_per_pixel(PixelFormat f) {
  switch (f) {
    case PixelFormat::rgb:
    case PixelFormat::bgr:
      return 3;
    case PixelFormat::rgba:
    case PixelFormat::bgra:
      return 4;
    case PixelFormat::gray:
      return 1;
  }
  return 0;
}

PixelRect resolved(const PixelRect& r, size_t w, size_t h) { return r.w == 0 ? PixelRect{0, 0, w, h} : r; }

bool inside(const PixelRect& r, size_t w, size_t h) {
  return r.w >= 1 && r.h >= 1 && r.x <= w && r.w <= w - r.x && r.y <= h && r.h <= h - r.y;
}

size_t round8(size_t n) { return (n + 7) & ~size_t{7}; }

// The sampling of output position o in [0, out) over `in` source positions (see preprocess.h).
void sample(size_t o, size_t in, size_t out, int32_t* i0, int32_t* i1, int32_t* w) {
  const int64_t num =
      (2 * static_cast<int64_t>(o) + 1) * static_cast<int64_t>(in) - static_cast<int64_t>(out);
  const int64_t den = 2 * static_cast<int64_t>(out);
  int64_t s = num * kOne;
  s = s >= 0 ? s / den : -((-s + den - 1) / den);  // floor
  const int64_t hi = (static_cast<int64_t>(in) - 1) * kOne;
  s = s < 0 ? 0 : (s > hi ? hi : s);
  *i0 = static_cast<int32_t>(s >> kFrac);
  *i1 = *i0 + 1 < static_cast<int32_t>(in) ? *i0 + 1 : *i0;
  *w = static_cast<int32_t>(s & (kOne - 1));
}

struct Sizes {
  size_t elems, e8, box_h;
};

Sizes sizes(const PreprocessParams& p) {
  const PixelRect box = resolved(p.box, p.out_width, p.out_height);
  const size_t elems = box.w * preprocess_channels(p);
  return {elems, round8(elems), box.h};
}

}  // namespace

size_t preprocess_channels(const PreprocessParams& p) { return p.order == ChannelOrder::gray ? 1 : 3; }

const char* preprocess_check(const PreprocessParams& p) {
  const size_t bpp = bytes_per_pixel(p.format);
  if (bpp == 0) return "unknown pixel format";
  if (p.width < 1 || p.height < 1 || p.width > kMaxSize || p.height > kMaxSize)
    return "image size must be 1..65535 pixels";
  if (p.stride < p.width * bpp) return "row stride is smaller than a row";
  if (!inside(resolved(p.crop, p.width, p.height), p.width, p.height))
    return "crop is empty or outside the image";
  if (p.out_width < 1 || p.out_height < 1 || p.out_width > kMaxSize || p.out_height > kMaxSize)
    return "output size must be 1..65535 pixels";
  if (!inside(resolved(p.box, p.out_width, p.out_height), p.out_width, p.out_height))
    return "box is empty or outside the output";
  if (p.order == ChannelOrder::gray && p.format != PixelFormat::gray)
    return "gray output needs a gray source";
  if (p.order != ChannelOrder::rgb && p.order != ChannelOrder::bgr && p.order != ChannelOrder::gray)
    return "unknown channel order";
  for (size_t c = 0; c < 3; ++c)
    if (!std::isfinite(p.mean[c]) || !std::isfinite(p.std[c]) || p.std[c] == 0.0f)
      return "mean/std must be finite, std nonzero";
  if (!std::isfinite(p.scale) || !(p.scale > 0.0f)) return "scale must be positive";
  if (p.zero_point < -128 || p.zero_point > 127) return "zero point outside int8";
  return nullptr;
}

size_t preprocess_scratch_size(const PreprocessParams& p) {
  const Sizes s = sizes(p);
  return 32 + sizeof(int32_t) * (3 * s.elems + 3 * s.box_h + 2 * s.e8);
}

PreprocessPlan preprocess_plan(const PreprocessParams& p, void* scratch) {
  const size_t channels = preprocess_channels(p), bpp = bytes_per_pixel(p.format);
  const PixelRect crop = resolved(p.crop, p.width, p.height);
  const PixelRect box = resolved(p.box, p.out_width, p.out_height);
  const Sizes s = sizes(p);
  PreprocessPlan plan;
  plan.channels = channels;
  plan.elems = s.elems;
  plan.row_elems = p.out_width * channels;
  plan.left_elems = box.x * channels;

  // Source byte of each output channel within a pixel.
  const bool bgr_source = p.format == PixelFormat::bgr || p.format == PixelFormat::bgra;
  int32_t chan[3] = {0, 1, 2};
  if (p.format == PixelFormat::gray) {
    chan[1] = chan[2] = 0;
  } else if (bgr_source != (p.order == ChannelOrder::bgr)) {
    chan[0] = 2, chan[2] = 0;
  }

  uintptr_t at = (reinterpret_cast<uintptr_t>(scratch) + 31) & ~uintptr_t{31};
  int32_t* base = reinterpret_cast<int32_t*>(at);
  int32_t* rows = base;  // first: 32-byte aligned
  int32_t* off0 = rows + 2 * s.e8;
  int32_t* off1 = off0 + s.elems;
  int32_t* wx = off1 + s.elems;
  int32_t* ys = wx + s.elems;
  std::memset(rows, 0, 2 * s.e8 * sizeof(int32_t));

  const size_t row_bytes = p.width * bpp;
  plan.wide_elems = s.elems;
  bool wide = true;
  for (size_t ox = 0; ox < box.w; ++ox) {
    int32_t x0, x1, w;
    sample(ox, crop.w, box.w, &x0, &x1, &w);
    for (size_t c = 0; c < channels; ++c) {
      const size_t e = ox * channels + c;
      off0[e] = static_cast<int32_t>((crop.x + x0) * bpp) + chan[c];
      off1[e] = static_cast<int32_t>((crop.x + x1) * bpp) + chan[c];
      wx[e] = (kOne - w) | (w << 16);
      if (wide && static_cast<size_t>(off1[e]) + 4 > row_bytes) wide = false, plan.wide_elems = e;
    }
  }
  for (size_t oy = 0; oy < box.h; ++oy) {
    int32_t y0, y1, w;
    sample(oy, crop.h, box.h, &y0, &y1, &w);
    ys[3 * oy] = static_cast<int32_t>(crop.y) + y0;
    ys[3 * oy + 1] = static_cast<int32_t>(crop.y) + y1;
    ys[3 * oy + 2] = w;
  }
  plan.off0 = off0, plan.off1 = off1, plan.wx = wx, plan.ys = ys, plan.rows = rows;

  const double full = static_cast<double>(kOne) * kOne;
  float mul[3], add[3], qmul[3], qadd[3];
  for (size_t c = 0; c < 3; ++c) {
    const double sd = p.std[c], mean = p.mean[c];
    mul[c] = static_cast<float>(1.0 / (sd * full));
    add[c] = static_cast<float>(-mean / sd);
    qmul[c] = static_cast<float>(1.0 / (sd * full) / p.scale);
    qadd[c] = static_cast<float>(-mean / sd / p.scale + p.zero_point);
  }
  for (size_t i = 0; i < 24; ++i) {
    const size_t c = i % channels;
    plan.mul[i] = mul[c], plan.add[i] = add[c], plan.qmul[i] = qmul[c], plan.qadd[i] = qadd[c];
  }
  for (size_t c = 0; c < 3; ++c) {
    const float v = static_cast<float>(p.pad[c] * kOne * kOne);
    plan.pad_f32[c] = v * mul[c] + add[c];
    float q = v * qmul[c] + qadd[c];
    q = q < -128.0f ? -128.0f : (q > 127.0f ? 127.0f : q);
    plan.pad_qs8[c] = static_cast<int8_t>(std::nearbyint(q));
  }
  return plan;
}

void preprocess_horizontal(const PreprocessPlan& plan, const uint8_t* row, size_t begin, size_t end,
                           int32_t* h) {
  for (size_t e = begin; e < end; ++e) {
    const int32_t w = plan.wx[e];
    h[e] = row[plan.off0[e]] * (w & 0xffff) + row[plan.off1[e]] * (w >> 16);
  }
}

namespace {

// Writes `count` padding elements starting at element `first` of an output row.
template <class T>
void pad(const T* value, size_t channels, size_t first, size_t count, T* dst) {
  size_t c = first % channels;
  for (size_t i = 0; i < count; ++i) {
    dst[i] = value[c];
    if (++c == channels) c = 0;
  }
}

const float* pad_values(const PreprocessPlan& plan, const float*) { return plan.pad_f32; }
const int8_t* pad_values(const PreprocessPlan& plan, const int8_t*) { return plan.pad_qs8; }

template <class T, class Vertical>
void run(const PreprocessParams& p, const uint8_t* src, T* dst, void* scratch,
         PreprocessHorizontalFn horizontal, Vertical vertical) {
  const PreprocessPlan plan = preprocess_plan(p, scratch);
  const T* pad_value = pad_values(plan, dst);
  const PixelRect box = resolved(p.box, p.out_width, p.out_height);
  int32_t* buf[2] = {plan.rows, plan.rows + round8(plan.elems)};
  int32_t tag[2] = {-1, -1};
  // The horizontal sums of source row y, computed unless kept; `keep` is the row not to evict.
  auto row_sums = [&](int32_t y, int32_t keep) -> const int32_t* {
    for (size_t s = 0; s < 2; ++s)
      if (tag[s] == y) return buf[s];
    const size_t s = tag[0] == keep ? 1 : 0;
    horizontal(plan, src + static_cast<size_t>(y) * p.stride, buf[s]);
    tag[s] = y;
    return buf[s];
  };
  const size_t channels = plan.channels, right = plan.left_elems + plan.elems;
  for (size_t oy = 0; oy < p.out_height; ++oy, dst += plan.row_elems) {
    if (oy < box.y || oy >= box.y + box.h) {
      pad(pad_value, channels, 0, plan.row_elems, dst);
      continue;
    }
    const int32_t* y = plan.ys + 3 * (oy - box.y);
    const int32_t* h0 = row_sums(y[0], y[1]);
    const int32_t* h1 = row_sums(y[1], y[0]);
    pad(pad_value, channels, 0, plan.left_elems, dst);
    vertical(plan, h0, h1, y[2], dst + plan.left_elems);
    pad(pad_value, channels, right, plan.row_elems - right, dst + right);
  }
}

}  // namespace

void preprocess_run(const PreprocessParams& p, const uint8_t* src, float* dst, void* scratch,
                    PreprocessHorizontalFn horizontal, PreprocessVerticalF32Fn vertical) {
  run(p, src, dst, scratch, horizontal, vertical);
}

void preprocess_run(const PreprocessParams& p, const uint8_t* src, int8_t* dst, void* scratch,
                    PreprocessHorizontalFn horizontal, PreprocessVerticalQs8Fn vertical) {
  run(p, src, dst, scratch, horizontal, vertical);
}

}  // namespace huddle::kernels
