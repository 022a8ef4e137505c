// Resize (fp32, NHWC): X [N, H, W, C] -> Y [N, OH, OW, C], attr size [OH, OW]
// (each 1 .. 65536), attr scales [sh, sw] (optional, each > 0; default OH / H and
// OW / W: the importer passes ONNX's scales when they were given, since the
// coordinates use them, not the rounded sizes). ONNX semantics per axis, in
// double precision, with x_resized an output coordinate, x the input
// coordinate it reads, and scale as above:
//   coordinate_transformation_mode = "half_pixel" (default): x = (x_resized + 0.5) / scale - 0.5
//     "pytorch_half_pixel": the same, but x = 0 when H * scale <= 1
//     "tf_half_pixel_for_nn": x = (x_resized + 0.5) / scale
//     "asymmetric": x = x_resized / scale
//     "align_corners": x = x_resized * (H - 1) / (H * scale - 1), 0 if H * scale == 1
//   mode = "nearest" (default): nearest_mode = "round_prefer_floor" (default):
//     floor(x) + (frac(x) > 0.5); "round_prefer_ceil": floor(x) + (frac(x) >= 0.5);
//     "floor": floor(x); "ceil": ceil(x); then clamped to [0, H - 1].
//   mode = "linear" (bilinear): with x0 = floor(x) and f = x - x0,
//     (1 - f) * X[clamp(x0)] + f * X[clamp(x0 + 1)] along each axis (indices
//     clamped to [0, H - 1], as ONNX's edge padding does).
// Other modes ("cubic"), "tf_crop_and_resize" and antialias are refused in prepare. Output rows are split
// over threads. int8 form (engine/INT8.md): mode "nearest" moves i8 elements
// (Y quantised as X); "linear" has no int8 form.
#include <algorithm>
#include <cmath>

#include "engine/ops/common.h"

namespace huddle::engine::ops {
namespace {

// One output coordinate of a linear resize: reads i0 and i1 with weights 1 - f and f.
struct Tap {
  size_t i0, i1;
  float f;
};

// A resize of T elements that reads, for output row oy, input rows through
// ys[oy] and, for output column ox, input columns through xs[ox] (a Tap per
// coordinate for linear, float only; an index for nearest). Output rows are
// split over threads; each is computed alike whatever the split.
template <class T, class Coord>
class Resize final : public OpKernel {
 public:
  Resize(size_t n, size_t h, size_t w, size_t c, std::vector<Coord> ys, std::vector<Coord> xs)
      : n_(n), h_(h), w_(w), c_(c), ys_(std::move(ys)), xs_(std::move(xs)) {}
  void run(const RunContext& ctx) const override {
    const T* x = ctx.in<T>(0);
    T* y = ctx.out<T>(0);
    if (c_ == 0) return;
    const size_t oh = ys_.size(), rows = n_ * oh, min_rows = kMinParallelFloats / (xs_.size() * c_ + 1) + 1;
    ctx.pool->parallel_for(rows, chunk_items(rows, ctx.pool->threads(), 1, min_rows),
                           [&](size_t begin, size_t end) {
                             for (size_t r = begin; r < end; ++r)
                               row(x + r / oh * h_ * w_ * c_, ys_[r % oh], y + r * xs_.size() * c_);
                           });
  }

 private:
  // One output row from the image at `image`.
  void row(const T* image, size_t iy, T* out) const {
    const T* in = image + iy * w_ * c_;
    for (size_t ox = 0; ox < xs_.size(); ++ox) std::copy_n(in + xs_[ox] * c_, c_, out + ox * c_);
  }
  void row(const float* image, const Tap& ty, float* out) const {
    const float* r0 = image + ty.i0 * w_ * c_;
    const float* r1 = image + ty.i1 * w_ * c_;
    for (size_t ox = 0; ox < xs_.size(); ++ox) {
      const Tap tx = xs_[ox];
      const float *a = r0 + tx.i0 * c_, *bb = r0 + tx.i1 * c_, *cc = r1 + tx.i0 * c_, *d = r1 + tx.i1 * c_;
      float* o = out + ox * c_;
      for (size_t ch = 0; ch < c_; ++ch) {
        const float top = a[ch] + (bb[ch] - a[ch]) * tx.f;
        const float bottom = cc[ch] + (d[ch] - cc[ch]) * tx.f;
        o[ch] = top + (bottom - top) * ty.f;
      }
    }
  }

  size_t n_, h_, w_, c_;
  std::vector<Coord> ys_, xs_;
};

enum class Transform { half_pixel, pytorch_half_pixel, tf_half_pixel_for_nn, asymmetric, align_corners };

// `scale` gives the resized length as ONNX counts it, in_len * scale (not
// rounded: what align_corners divides by when ONNX's scales were given).
double source_coordinate(Transform t, int64_t out_index, int64_t in_len, double scale) {
  const double xr = static_cast<double>(out_index), out_len = static_cast<double>(in_len) * scale;
  switch (t) {
    case Transform::half_pixel:
      return (xr + 0.5) / scale - 0.5;
    case Transform::pytorch_half_pixel:
      return out_len > 1 ? (xr + 0.5) / scale - 0.5 : 0.0;
    case Transform::tf_half_pixel_for_nn:
      return (xr + 0.5) / scale;
    case Transform::asymmetric:
      return xr / scale;
    case Transform::align_corners:
      return out_len == 1 ? 0.0 : xr * static_cast<double>(in_len - 1) / (out_len - 1);
  }
  return 0.0;
}

int64_t clamp_index(int64_t i, int64_t len) { return std::clamp<int64_t>(i, 0, len - 1); }

// Resize<T, size_t> for nearest: T from dtype (make_for_element's kernel template).
template <class T>
using NearestResize = Resize<T, size_t>;

std::unique_ptr<OpKernel> prepare_resize(PrepareContext& ctx) {
  const Tensor& x = ctx.require_input(0, int8_form(ctx) ? DType::i8 : DType::f32, 4);
  const Node& node = ctx.node();
  if (!node.has_attr("size")) ctx.fail("attribute 'size' is missing");
  const auto size = ints_attr(ctx, "size", 2, 1, {});
  // Coordinate tables are built per output row and column: a size beyond any image is refused first.
  if (size[0] > 65536 || size[1] > 65536)
    ctx.fail("attribute 'size' [" + std::to_string(size[0]) + ", " + std::to_string(size[1]) + "] exceeds 65536");
  const std::string mode = node.attr_text("mode", "nearest");
  const std::string ctm = node.attr_text("coordinate_transformation_mode", "half_pixel");
  const std::string nearest_mode = node.attr_text("nearest_mode", "round_prefer_floor");
  if (node.attr_int("antialias", 0) != 0) ctx.fail("attribute 'antialias' is not supported");
  if (mode != "nearest" && mode != "linear")
    ctx.fail("attribute 'mode' has '" + mode + "' (nearest, linear)");
  if (mode == "linear") require_float_form(ctx, "mode 'linear'");
  if (x.dtype == DType::i8) require_quant_kept(ctx);
  Transform t;
  if (ctm == "half_pixel")
    t = Transform::half_pixel;
  else if (ctm == "pytorch_half_pixel")
    t = Transform::pytorch_half_pixel;
  else if (ctm == "tf_half_pixel_for_nn")
    t = Transform::tf_half_pixel_for_nn;
  else if (ctm == "asymmetric")
    t = Transform::asymmetric;
  else if (ctm == "align_corners")
    t = Transform::align_corners;
  else
    ctx.fail("attribute 'coordinate_transformation_mode' has '" + ctm +
             "' (half_pixel, pytorch_half_pixel, tf_half_pixel_for_nn, asymmetric, align_corners)");
  enum class Round { prefer_floor, prefer_ceil, floor, ceil } round = Round::prefer_floor;
  if (mode == "nearest") {
    if (nearest_mode == "round_prefer_floor")
      round = Round::prefer_floor;
    else if (nearest_mode == "round_prefer_ceil")
      round = Round::prefer_ceil;
    else if (nearest_mode == "floor")
      round = Round::floor;
    else if (nearest_mode == "ceil")
      round = Round::ceil;
    else
      ctx.fail("attribute 'nearest_mode' has '" + nearest_mode +
               "' (round_prefer_floor, round_prefer_ceil, floor, ceil)");
  }
  const int64_t n = x.shape[0], h = x.shape[1], w = x.shape[2], c = x.shape[3];
  if (h == 0 || w == 0) ctx.fail("input " + shape_text(x.shape) + " has no pixels");
  ctx.set_output(0, x.dtype, {n, size[0], size[1], c});

  const int64_t in_len[2] = {h, w};
  double scale[2] = {static_cast<double>(size[0]) / static_cast<double>(h),
                     static_cast<double>(size[1]) / static_cast<double>(w)};
  if (node.has_attr("scales")) {
    const auto given = node.attr_floats("scales");
    if (given.size() != 2 || !(given[0] > 0.0f) || !(given[1] > 0.0f))
      ctx.fail("attribute 'scales' needs 2 values above 0");
    scale[0] = given[0], scale[1] = given[1];
  }
  if (mode == "nearest") {
    std::vector<size_t> idx[2];
    for (int a = 0; a < 2; ++a)
      for (int64_t o = 0; o < size[a]; ++o) {
        const double s = source_coordinate(t, o, in_len[a], scale[a]), fl = std::floor(s);
        int64_t i = static_cast<int64_t>(fl);
        if (round == Round::ceil) i = static_cast<int64_t>(std::ceil(s));
        if (round == Round::prefer_floor && s - fl > 0.5) ++i;
        if (round == Round::prefer_ceil && s - fl >= 0.5) ++i;
        idx[a].push_back(static_cast<size_t>(clamp_index(i, in_len[a])));
      }
    return make_for_element<NearestResize>(x.dtype, static_cast<size_t>(n), static_cast<size_t>(h),
                                           static_cast<size_t>(w), static_cast<size_t>(c), std::move(idx[0]),
                                           std::move(idx[1]));
  }
  std::vector<Tap> taps[2];
  for (int a = 0; a < 2; ++a)
    for (int64_t o = 0; o < size[a]; ++o) {
      const double s = source_coordinate(t, o, in_len[a], scale[a]), fl = std::floor(s);
      const int64_t i = static_cast<int64_t>(fl);
      taps[a].push_back({static_cast<size_t>(clamp_index(i, in_len[a])),
                         static_cast<size_t>(clamp_index(i + 1, in_len[a])), static_cast<float>(s - fl)});
    }
  return std::make_unique<Resize<float, Tap>>(static_cast<size_t>(n), static_cast<size_t>(h),
                                              static_cast<size_t>(w), static_cast<size_t>(c),
                                              std::move(taps[0]), std::move(taps[1]));
}

}  // namespace

extern const OpDef kResize = {"Resize", 1, 1, 1, false, prepare_resize};

}  // namespace huddle::engine::ops
