// A decoded image as a model's input tensor, preprocessed as the model file
// says (engine/model.capnp, struct Preprocess), in one pass of the
// preprocessing kernel (kernels/preprocess/preprocess.h): crop, bilinear
// resize, channel order, (pixel - mean) / std on 0..255 values, fp32 out.
//
// How the image is fitted to the model's width x height:
//   stretch     the whole image, resized to width x height (aspect not kept);
//   centerCrop  the largest centred region of the image with the target's
//               aspect ratio, times `crop` per side (centred), resized to
//               width x height (crop 0.875 on a square target: torchvision's
//               "shorter side to 256, centre crop 224");
//   letterbox   the whole image, scaled to fit inside width x height keeping
//               its aspect ratio, centred; the rest is padding whose pixel
//               value is the mean rounded to 0..255 (so it normalises to ~0).
// Colour images feed a gray model through their luma (ITU-R 601:
// 0.299 R + 0.587 G + 0.114 B, as PIL's "L"); gray images feed a colour model
// with the gray value in every channel; alpha is ignored.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/model_file.h"
#include "node/image.h"

namespace huddle::node {

// The model's stored preprocessing, as plain values.
struct InputPreprocess {
  enum class Resize : uint8_t { stretch, letterbox, center_crop };
  enum class Order : uint8_t { rgb, bgr, gray };
  uint32_t width = 0, height = 0;
  bool nchw = false;  // false: NHWC
  Order order = Order::rgb;
  Resize resize = Resize::stretch;
  std::array<float, 3> mean = {0, 0, 0}, std = {1, 1, 1};  // used: 1 (gray) or 3 values
  float crop = 1.0f;  // center_crop: the fraction of the centred region kept, (0, 1]
};

// The preprocessing `file` stores. Throws std::runtime_error starting with
// `name` if it stores none (no Preprocess, or no size: converted without
// --size) or a malformed one (mean/std counts, a zero std).
InputPreprocess input_preprocess(const engine::ModelFile& file, const std::string& name);

// The input tensor for `image`: N = 1, `shape` the model input's shape, which
// must be [1, height, width, C] (NHWC) or [1, C, height, width] (NCHW) with C
// = 3 (1 for gray) as `pre` says. Throws std::runtime_error naming the
// mismatch, or an image too large for the kernel (a side over 65535).
std::vector<float> image_to_input(const Image& image, const InputPreprocess& pre, const engine::Shape& shape);

// Where the model input's pixels come from in the image, as an affine map of
// continuous coordinates (pixel edges: 0 is the left edge, width the right):
// image x = input x * scale_x + offset_x, and likewise for y. The resize
// samples at half-pixel centres, so edges map to edges.
struct InputMap {
  double scale_x = 1, scale_y = 1, offset_x = 0, offset_y = 0;
};

// The map image_to_input uses for a `image_width` x `image_height` image and
// `pre` (stretch, letterbox or centerCrop; the block averaging of a large
// downscale included). A point in letterbox padding maps outside the image.
InputMap input_to_image(const InputPreprocess& pre, uint32_t image_width, uint32_t image_height);

}  // namespace huddle::node
