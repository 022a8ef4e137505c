#include "node/image_input.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "engine/model.capnp.h"
#include "kernels/preprocess/preprocess.h"

namespace huddle::node {
namespace {

using engine::schema::Preprocess;

// `image` as one gray channel (ITU-R 601 luma, rounded); gray images unchanged.
Image to_gray(const Image& image) {
  if (image.format == PixelFormat::gray) return image;
  const size_t c = channels(image.format), n = size_t{image.width} * image.height;
  Image out{image.width, image.height, PixelFormat::gray, std::vector<uint8_t>(n)};
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = &image.pixels[i * c];
    out.pixels[i] = static_cast<uint8_t>((p[0] * 299u + p[1] * 587u + p[2] * 114u + 500u) / 1000u);
  }
  return out;
}

// round(a * b / c) for the small positive sizes of an image (c > 0).
size_t scale_rounded(size_t a, size_t b, size_t c) { return (2 * a * b + c) / (2 * c); }

// Where the image goes: the crop of the source and the box in the output.
void fit(const InputPreprocess& pre, kernels::PreprocessParams& p) {
  const size_t w = p.width, h = p.height, W = pre.width, H = pre.height;
  p.crop = {0, 0, w, h};
  p.box = {0, 0, W, H};
  if (pre.resize == InputPreprocess::Resize::center_crop) {
    // The source is wider than the target when w / h > W / H.
    const size_t full_w = w * H > h * W ? std::clamp<size_t>(scale_rounded(h, W, H), 1, w) : w;
    const size_t full_h = w * H > h * W ? h : std::clamp<size_t>(scale_rounded(w, H, W), 1, h);
    const size_t cw = std::clamp<size_t>(static_cast<size_t>(std::lround(full_w * double{pre.crop})), 1, full_w);
    const size_t ch = std::clamp<size_t>(static_cast<size_t>(std::lround(full_h * double{pre.crop})), 1, full_h);
    p.crop = {(w - cw) / 2, (h - ch) / 2, cw, ch};
  } else if (pre.resize == InputPreprocess::Resize::letterbox) {
    const size_t bw = w * H > h * W ? W : std::clamp<size_t>(scale_rounded(w, H, h), 1, W);
    const size_t bh = w * H > h * W ? std::clamp<size_t>(scale_rounded(h, W, w), 1, H) : H;
    p.box = {(W - bw) / 2, (H - bh) / 2, bw, bh};
  }
}

// Downscaling by more than 2: the crop is averaged over k x k blocks first (k
// the whole part of the smaller ratio), so the bilinear step shrinks by less
// than 2. Returns k, or 1 when there is no such step.
size_t reduction(const kernels::PreprocessParams& p) {
  const size_t k = std::min(p.crop.w / p.box.w, p.crop.h / p.box.h);
  return k >= 2 && p.crop.w > 2 * p.box.w && p.crop.h > 2 * p.box.h ? k : 1;
}

// The crop of `src` averaged over k x k blocks (rounded; the crop's last
// w % k columns and h % k rows dropped): the area filter a large downscale
// needs before the kernel's two-tap bilinear resize, which alone would read
// about two source pixels in every k and alias fine detail into the input.
Image box_reduce(const Image& src, const kernels::PixelRect& crop, size_t k) {
  const size_t c = channels(src.format), w = crop.w / k, h = crop.h / k, stride = size_t{src.width} * c;
  Image out{static_cast<uint32_t>(w), static_cast<uint32_t>(h), src.format, std::vector<uint8_t>(w * h * c)};
  std::vector<uint32_t> acc(w * c);
  for (size_t y = 0; y < h; ++y) {
    std::fill(acc.begin(), acc.end(), 0u);
    for (size_t dy = 0; dy < k; ++dy) {
      const uint8_t* row = src.pixels.data() + (crop.y + y * k + dy) * stride + crop.x * c;
      for (size_t x = 0; x < w; ++x)
        for (size_t dx = 0; dx < k; ++dx)
          for (size_t ch = 0; ch < c; ++ch) acc[x * c + ch] += row[(x * k + dx) * c + ch];
    }
    const uint32_t n = static_cast<uint32_t>(k * k);
    for (size_t i = 0; i < w * c; ++i) out.pixels[y * w * c + i] = static_cast<uint8_t>((acc[i] + n / 2) / n);
  }
  return out;
}

}  // namespace

InputPreprocess input_preprocess(const engine::ModelFile& file, const std::string& name) {
  const auto model = file.model();
  const auto fail = [&](const std::string& what) { throw std::runtime_error(name + ": " + what); };
  if (!model.hasPreprocess() || model.getPreprocess().getWidth() == 0 || model.getPreprocess().getHeight() == 0)
    fail("the model stores no image preprocessing (convert it with --size WxH, --mean, --std)");
  const auto stored = model.getPreprocess();
  InputPreprocess pre;
  pre.width = stored.getWidth();
  pre.height = stored.getHeight();
  pre.nchw = stored.getLayout() == Preprocess::Layout::NCHW;
  switch (stored.getColourOrder()) {
    case Preprocess::ColourOrder::RGB: pre.order = InputPreprocess::Order::rgb; break;
    case Preprocess::ColourOrder::BGR: pre.order = InputPreprocess::Order::bgr; break;
    case Preprocess::ColourOrder::GRAY: pre.order = InputPreprocess::Order::gray; break;
    default: fail("unknown colour order in the stored preprocessing");
  }
  switch (stored.getResize()) {
    case Preprocess::Resize::STRETCH: pre.resize = InputPreprocess::Resize::stretch; break;
    case Preprocess::Resize::LETTERBOX: pre.resize = InputPreprocess::Resize::letterbox; break;
    case Preprocess::Resize::CENTER_CROP: pre.resize = InputPreprocess::Resize::center_crop; break;
    default: fail("unknown resize mode in the stored preprocessing");
  }
  pre.crop = stored.getCrop();
  if (!(pre.crop > 0.0f && pre.crop <= 1.0f)) fail("the stored preprocessing's crop is not in (0, 1]");
  const unsigned c = pre.order == InputPreprocess::Order::gray ? 1 : 3;
  if (stored.getMean().size() != c || stored.getStd().size() != c)
    fail("the stored preprocessing needs " + std::to_string(c) + " mean and std values");
  for (unsigned k = 0; k < c; ++k) {
    pre.mean[k] = stored.getMean()[k];
    pre.std[k] = stored.getStd()[k];
    if (!(pre.std[k] != 0.0f) || !std::isfinite(pre.mean[k]) || !std::isfinite(pre.std[k]))
      fail("the stored preprocessing has a zero or non-finite mean/std");
  }
  return pre;
}

std::vector<float> image_to_input(const Image& image, const InputPreprocess& pre, const engine::Shape& shape) {
  const bool gray = pre.order == InputPreprocess::Order::gray;
  const int64_t c = gray ? 1 : 3, h = pre.height, w = pre.width;
  const engine::Shape want = pre.nchw ? engine::Shape{1, c, h, w} : engine::Shape{1, h, w, c};
  if (shape != want)
    throw std::runtime_error("the model input is " + engine::shape_text(shape) + ", but its preprocessing (" +
                             std::to_string(w) + "x" + std::to_string(h) + ", " +
                             (pre.nchw ? "nchw" : "nhwc") + ", " + std::to_string(c) +
                             " channels) makes " + engine::shape_text(want));
  const Image source = gray ? to_gray(image) : image;
  kernels::PreprocessParams p;
  p.format = source.format == PixelFormat::gray  ? kernels::PixelFormat::gray
             : source.format == PixelFormat::rgb ? kernels::PixelFormat::rgb
                                                 : kernels::PixelFormat::rgba;
  p.width = source.width;
  p.height = source.height;
  p.stride = size_t{source.width} * channels(source.format);
  p.out_width = pre.width;
  p.out_height = pre.height;
  p.order = gray ? kernels::ChannelOrder::gray
            : pre.order == InputPreprocess::Order::bgr ? kernels::ChannelOrder::bgr
                                                       : kernels::ChannelOrder::rgb;
  fit(pre, p);
  const size_t k = reduction(p);
  Image reduced;
  if (k > 1) {
    reduced = box_reduce(source, p.crop, k);
    p.width = reduced.width, p.height = reduced.height;
    p.stride = size_t{reduced.width} * channels(reduced.format);
    p.crop = {0, 0, reduced.width, reduced.height};
  }
  const uint8_t* pixels = reduced.pixels.empty() ? source.pixels.data() : reduced.pixels.data();
  for (size_t k = 0; k < static_cast<size_t>(c); ++k) {
    p.mean[k] = pre.mean[k];
    p.std[k] = pre.std[k];
    p.pad[k] = static_cast<uint8_t>(std::lround(std::clamp(pre.mean[k], 0.0f, 255.0f)));
  }
  if (const char* why = kernels::preprocess_check(p))
    throw std::runtime_error(std::string("cannot preprocess a ") + std::to_string(source.width) + "x" +
                             std::to_string(source.height) + " image: " + why);
  std::vector<uint8_t> scratch(kernels::preprocess_scratch_size(p));
  std::vector<float> nhwc(static_cast<size_t>(h * w * c));
  kernels::preprocess().f32(p, pixels, nhwc.data(), scratch.data());
  if (!pre.nchw || c == 1) return nhwc;
  std::vector<float> nchw(nhwc.size());
  const size_t plane = static_cast<size_t>(h * w);
  for (size_t i = 0; i < plane; ++i)
    for (size_t k = 0; k < 3; ++k) nchw[k * plane + i] = nhwc[i * 3 + k];
  return nchw;
}

InputMap input_to_image(const InputPreprocess& pre, uint32_t image_width, uint32_t image_height) {
  kernels::PreprocessParams p;
  p.width = image_width;
  p.height = image_height;
  fit(pre, p);
  // The pixels the bilinear step reads: the crop less the columns and rows the
  // block averaging drops.
  const size_t k = reduction(p);
  const double src_w = static_cast<double>(p.crop.w / k * k), src_h = static_cast<double>(p.crop.h / k * k);
  InputMap map;
  map.scale_x = src_w / static_cast<double>(p.box.w);
  map.scale_y = src_h / static_cast<double>(p.box.h);
  map.offset_x = static_cast<double>(p.crop.x) - static_cast<double>(p.box.x) * map.scale_x;
  map.offset_y = static_cast<double>(p.crop.y) - static_cast<double>(p.box.y) * map.scale_y;
  return map;
}

}  // namespace huddle::node
