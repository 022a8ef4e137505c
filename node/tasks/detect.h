// The detect task's postprocessing (node/tasks/detect.cc): the detector heads
// of engine/model.capnp's Detector decoded into boxes, class-aware
// non-maximum suppression, and the check that a model's outputs fit its head.
// Pure functions on float spans and shapes, declared here so the unit tests
// can check them against hand-derived answers.
//
// Boxes are in pixels of the model input (continuous: 0 is the left edge)
// until the task maps them to the image (node/image_input.h, InputMap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "engine/graph.h"
#include "node/image_input.h"
#include "node/task.h"

namespace huddle::node::detect {

// One candidate object: its box, the model's class index and its score.
struct Detection {
  Box box;
  uint32_t index = 0;
  float score = 0;
};

// An output grid over the model input: width x height cells, each stride_x x
// stride_y input pixels.
struct Grid {
  size_t width = 0, height = 0;
  float stride_x = 0, stride_y = 0;
};

// CenterNet. `heat` is [height, width, classes] (after sigmoid), `wh` is
// [height, width, 4] (left, top, right, bottom distances in input pixels).
// A peak is a (cell, class) whose score is at least `threshold` and equal to
// the maximum of its 3x3 neighbourhood in the same class (clipped at the
// borders); the best `max_peaks` peaks (equal scores in index order) become
// boxes (x * stride_x - l, y * stride_y - t, x * stride_x + r, y * stride_y + b)
// for cell column x and row y, best first.
std::vector<Detection> decode_centernet(std::span<const float> heat, std::span<const float> wh,
                                        const Grid& grid, size_t classes, float threshold, size_t max_peaks);

// Where NanoDet's distance is measured from, in cells: the centre of cell
// (x, y) is ((x + offset) * stride, (y + offset) * stride). 0.5 is the GFL
// head's convention (NanoDet's gfl_head, and the human library's decoder);
// NanoDet-Plus measures from the cell's corner (0).
inline constexpr float kNanoDetCentreOffset = 0.5f;

// One NanoDet level: `scores` [cells, classes] (after sigmoid) and
// `distribution` [cells, 4 * bins] (left, top, right, bottom, each `bins`
// logits), cells = grid.width * grid.height in row-major order.
struct NanoDetLevel {
  std::span<const float> scores, distribution;
  Grid grid;
  size_t bins = 0;
};

// NanoDet: per cell one candidate, its best class, when that score is at
// least `threshold`; each side is stride * sum_k k * softmax(bins)_k from the
// cell's centre (kNanoDetCentreOffset); left and right use stride_x, top and
// bottom stride_y. Candidates in level and cell order, not suppressed.
std::vector<Detection> decode_nanodet(std::span<const NanoDetLevel> levels, size_t classes, float threshold);

// Intersection over union; 0 when the union is empty.
float iou(const Box& a, const Box& b);

// Greedy class-aware non-maximum suppression: candidates by score, best first
// (equal scores in their given order); one is dropped when its IoU with a kept
// box of the same class is above `iou_threshold` (at it, it is kept). At most
// `max_objects`, best first.
std::vector<Detection> non_max_suppression(std::vector<Detection> candidates, float iou_threshold,
                                           size_t max_objects);

// `box` in input pixels mapped to the image by `map` (input_to_image) and
// clipped to 0..image_width x 0..image_height.
Box map_to_image(const Box& box, const InputMap& map, uint32_t image_width, uint32_t image_height);

// Which outputs a model's head reads, from the outputs' shapes (the model's
// order), the input's width and height, and the number of classes (its
// labels; 0 for a model without labels: any). Other outputs are ignored (a
// graph's own decoded detections). Each throws std::runtime_error saying what
// the head needs and what the outputs are.
struct CenterNetOutputs {
  size_t heat = 0, wh = 0;  // output indices
  Grid grid;
  size_t classes = 0;
};
// heat [1, H, W, classes] and wh [1, H, W, 4], f32 (the caller checks dtypes);
// stride = input size / H (W); when both end in 4, the first is the heat map.
CenterNetOutputs centernet_outputs(std::span<const engine::Shape> outputs, uint32_t input_width,
                                   uint32_t input_height, size_t classes);

struct NanoDetOutputs {
  struct Level {
    size_t scores = 0, distribution = 0;  // output indices
    Grid grid;
    size_t bins = 0;
  };
  std::vector<Level> levels;  // by stride, finest first
  size_t classes = 0;
};
// Per level a pair [1, N, classes] and [1, N, 4 * bins] with N = ceil(input
// width / stride) * ceil(input height / stride) for a stride of 4..128 (a
// power of two); all levels with the same classes and bins.
NanoDetOutputs nanodet_outputs(std::span<const engine::Shape> outputs, uint32_t input_width,
                               uint32_t input_height, size_t classes);

}  // namespace huddle::node::detect
