// The detect task (DESIGN.md §8): a COCO object detector (.hdm with task
// "detect", Model.detector's head, labels and stored preprocessing) -> boxes
// with labels and scores in pixels of the input image.
//
// preprocess:  the model's stored preprocessing (node/image_input.h) and the
//              map from the input's pixels back to the image's
// model:       one f32 image input; the outputs the head reads (detect.h)
// postprocess: decode the head, map the boxes to the image and clip them,
//              class-aware non-maximum suppression, at most max-objects.
#include "node/tasks/detect.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

#include "engine/interpreter.h"
#include "engine/model.capnp.h"
#include "node/draw.h"
#include "node/tasks/task_model.h"
#include "node/tasks/tasks.h"

namespace huddle::node {
namespace detect {
namespace {

std::string outputs_text(std::span<const engine::Shape> outputs) {
  std::string text;
  for (size_t i = 0; i < outputs.size(); ++i)
    text += (i ? ", " : "") + std::to_string(i) + ": " + engine::shape_text(outputs[i]);
  return text.empty() ? "none" : text;
}

std::string classes_text(size_t classes) {
  return classes ? std::to_string(classes) + " (the labels)" : std::string("classes");
}

}  // namespace

std::vector<Detection> decode_centernet(std::span<const float> heat, std::span<const float> wh,
                                        const Grid& grid, size_t classes, float threshold, size_t max_peaks) {
  const size_t w = grid.width, h = grid.height;
  if (heat.size() != w * h * classes || wh.size() != w * h * 4)
    throw std::invalid_argument("decode_centernet: the tensors do not have the grid's size");
  struct Peak {
    float score;
    size_t at;  // (y * w + x) * classes + c, the order of equal scores
  };
  std::vector<Peak> peaks;
  for (size_t y = 0; y < h; ++y)
    for (size_t x = 0; x < w; ++x)
      for (size_t c = 0; c < classes; ++c) {
        const size_t at = (y * w + x) * classes + c;
        const float v = heat[at];
        if (!(v >= threshold)) continue;
        bool peak = true;
        for (size_t ny = y ? y - 1 : 0; peak && ny <= std::min(y + 1, h - 1); ++ny)
          for (size_t nx = x ? x - 1 : 0; peak && nx <= std::min(x + 1, w - 1); ++nx)
            peak = !(heat[(ny * w + nx) * classes + c] > v);
        if (peak) peaks.push_back({v, at});
      }
  const size_t k = std::min(max_peaks, peaks.size());
  std::partial_sort(
      peaks.begin(), peaks.begin() + static_cast<std::ptrdiff_t>(k), peaks.end(),
      [](const Peak& a, const Peak& b) { return a.score > b.score || (a.score == b.score && a.at < b.at); });
  std::vector<Detection> out;
  out.reserve(k);
  for (size_t i = 0; i < k; ++i) {
    const size_t cell = peaks[i].at / classes;
    const float cx = static_cast<float>(cell % w) * grid.stride_x,
                cy = static_cast<float>(cell / w) * grid.stride_y;
    const float* side = &wh[cell * 4];
    out.push_back({{cx - side[0], cy - side[1], cx + side[2], cy + side[3]},
                   static_cast<uint32_t>(peaks[i].at % classes),
                   peaks[i].score});
  }
  return out;
}

std::vector<Detection> decode_nanodet(std::span<const NanoDetLevel> levels, size_t classes, float threshold) {
  std::vector<Detection> out;
  std::vector<double> p;
  for (const NanoDetLevel& level : levels) {
    const size_t cells = level.grid.width * level.grid.height, bins = level.bins;
    if (level.scores.size() != cells * classes || level.distribution.size() != cells * 4 * bins || bins == 0)
      throw std::invalid_argument("decode_nanodet: a level's tensors do not have its grid's size");
    p.resize(bins);
    for (size_t i = 0; i < cells; ++i) {
      const float* s = &level.scores[i * classes];
      const size_t best = static_cast<size_t>(std::max_element(s, s + classes) - s);
      if (!(s[best] >= threshold)) continue;
      // The expected bin of each side's softmax, in strides.
      float side[4];
      for (size_t j = 0; j < 4; ++j) {
        const float* logits = &level.distribution[(i * 4 + j) * bins];
        const float top = *std::max_element(logits, logits + bins);
        double sum = 0, mean = 0;
        for (size_t b = 0; b < bins; ++b) sum += p[b] = std::exp(double{logits[b]} - top);
        for (size_t b = 0; b < bins; ++b) mean += static_cast<double>(b) * p[b];
        side[j] = static_cast<float>(mean / sum) * (j % 2 ? level.grid.stride_y : level.grid.stride_x);
      }
      const float cx =
          (static_cast<float>(i % level.grid.width) + kNanoDetCentreOffset) * level.grid.stride_x;
      const float cy =
          (static_cast<float>(i / level.grid.width) + kNanoDetCentreOffset) * level.grid.stride_y;
      out.push_back(
          {{cx - side[0], cy - side[1], cx + side[2], cy + side[3]}, static_cast<uint32_t>(best), s[best]});
    }
  }
  return out;
}

float iou(const Box& a, const Box& b) {
  const float iw = std::min(a.x1, b.x1) - std::max(a.x0, b.x0),
              ih = std::min(a.y1, b.y1) - std::max(a.y0, b.y0);
  const float inter = iw > 0 && ih > 0 ? iw * ih : 0.0f;
  const float area_a = std::max(0.0f, a.x1 - a.x0) * std::max(0.0f, a.y1 - a.y0);
  const float area_b = std::max(0.0f, b.x1 - b.x0) * std::max(0.0f, b.y1 - b.y0);
  const float uni = area_a + area_b - inter;
  return uni > 0 ? inter / uni : 0.0f;
}

std::vector<Detection> non_max_suppression(std::vector<Detection> candidates, float iou_threshold,
                                           size_t max_objects) {
  std::stable_sort(candidates.begin(), candidates.end(),
                   [](const Detection& a, const Detection& b) { return a.score > b.score; });
  std::vector<Detection> kept;
  for (const Detection& d : candidates) {
    if (kept.size() >= max_objects) break;
    const bool suppressed = std::any_of(kept.begin(), kept.end(), [&](const Detection& k) {
      return k.index == d.index && iou(k.box, d.box) > iou_threshold;
    });
    if (!suppressed) kept.push_back(d);
  }
  return kept;
}

Box map_to_image(const Box& box, const InputMap& map, uint32_t image_width, uint32_t image_height) {
  const auto x = [&](float v) {
    return static_cast<float>(
        std::clamp(v * map.scale_x + map.offset_x, 0.0, static_cast<double>(image_width)));
  };
  const auto y = [&](float v) {
    return static_cast<float>(
        std::clamp(v * map.scale_y + map.offset_y, 0.0, static_cast<double>(image_height)));
  };
  return {x(box.x0), y(box.y0), x(box.x1), y(box.y1)};
}

CenterNetOutputs centernet_outputs(std::span<const engine::Shape> outputs, uint32_t input_width,
                                   uint32_t input_height, size_t classes) {
  const auto grid_of = [](const engine::Shape& s) {
    return s.size() == 4 && s[0] == 1 && s[1] > 0 && s[2] > 0;
  };
  // The box sides: the last [1, H, W, 4] output (a heat map of 4 classes comes first).
  std::optional<size_t> wh;
  for (size_t i = 0; i < outputs.size(); ++i)
    if (grid_of(outputs[i]) && outputs[i][3] == 4) wh = i;
  if (!wh)
    throw std::runtime_error("a centernet detector has a box-size output [1, H, W, 4]; the outputs are " +
                             outputs_text(outputs));
  const engine::Shape& sides = outputs[*wh];
  if (sides[1] > input_height || sides[2] > input_width)
    throw std::runtime_error("a centernet detector's grid is at most the input's size; the box sizes are " +
                             engine::shape_text(sides) + ", the input " + std::to_string(input_width) + "x" +
                             std::to_string(input_height));
  for (size_t i = 0; i < outputs.size(); ++i) {
    const engine::Shape& s = outputs[i];
    if (i == *wh || !grid_of(s) || s[1] != sides[1] || s[2] != sides[2] || s[3] < 1) continue;
    if (classes && static_cast<size_t>(s[3]) != classes) continue;
    CenterNetOutputs o;
    o.heat = i;
    o.wh = *wh;
    o.grid = {static_cast<size_t>(s[2]), static_cast<size_t>(s[1]),
              static_cast<float>(input_width) / static_cast<float>(s[2]),
              static_cast<float>(input_height) / static_cast<float>(s[1])};
    o.classes = static_cast<size_t>(s[3]);
    return o;
  }
  throw std::runtime_error("a centernet detector has a heat map [1, H, W, " + classes_text(classes) +
                           "] beside its box sizes " + engine::shape_text(sides) + "; the outputs are " +
                           outputs_text(outputs));
}

NanoDetOutputs nanodet_outputs(std::span<const engine::Shape> outputs, uint32_t input_width,
                               uint32_t input_height, size_t classes) {
  const auto fail = [&](const std::string& what) {
    throw std::runtime_error(
        "a nanodet detector has per level class scores [1, N, " + classes_text(classes) +
        "] and side distributions [1, N, 4 * bins], N = cells of a stride from 4 to 128 over "
        "the " +
        std::to_string(input_width) + "x" + std::to_string(input_height) + " input; " + what +
        "; the outputs are " + outputs_text(outputs));
  };
  std::map<int64_t, std::vector<size_t>> by_cells;  // N -> output indices, in order
  for (size_t i = 0; i < outputs.size(); ++i)
    if (outputs[i].size() == 3 && outputs[i][0] == 1 && outputs[i][1] > 0 && outputs[i][2] > 0)
      by_cells[outputs[i][1]].push_back(i);
  NanoDetOutputs o;
  for (const auto& level : by_cells) {
    // Named copies: clang 14 does not let a lambda capture structured bindings.
    const int64_t cells = level.first;
    const std::vector<size_t>& indices = level.second;
    uint32_t stride = 0;
    for (uint32_t s = 4; s <= 128 && !stride; s *= 2)
      if (int64_t{(input_width + s - 1) / s} * ((input_height + s - 1) / s) == cells) stride = s;
    if (!stride) continue;  // not a level: ignored like any other output
    if (indices.size() != 2)
      fail(std::to_string(indices.size()) + " outputs have N = " + std::to_string(cells) + ", not 2");
    // The scores: the one with the class count; else the one not a multiple of 4; else the first.
    const auto last = [&](size_t i) { return static_cast<size_t>(outputs[indices[i]][2]); };
    size_t s = 0;
    if (classes ? last(0) != classes : last(0) % 4 == 0 && last(1) % 4 != 0) s = 1;
    const size_t scores = last(s), dist = last(1 - s);
    if ((classes && scores != classes) || dist % 4 != 0 || dist < 8)
      fail("at N = " + std::to_string(cells) + " they are " + engine::shape_text(outputs[indices[0]]) +
           " and " + engine::shape_text(outputs[indices[1]]));
    if (o.classes && (scores != o.classes || dist / 4 != o.levels.back().bins))
      fail("the levels differ in classes or bins");
    o.classes = scores;
    const uint32_t gw = (input_width + stride - 1) / stride, gh = (input_height + stride - 1) / stride;
    o.levels.push_back({indices[s],
                        indices[1 - s],
                        {gw, gh, static_cast<float>(stride), static_cast<float>(stride)},
                        dist / 4});
  }
  if (o.levels.empty()) fail("none is there");
  std::sort(o.levels.begin(), o.levels.end(),
            [](const NanoDetOutputs::Level& a, const NanoDetOutputs::Level& b) {
              return a.grid.stride_x < b.grid.stride_x;
            });
  return o;
}

}  // namespace detect

namespace {

using Clock = std::chrono::steady_clock;
using detect::Detection;

// The most objects a request may ask for (--max-objects).
constexpr uint32_t kMaxObjects = 1024;

size_t elements(const engine::Shape& shape) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(std::max<int64_t>(d, 0));
  return n;
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Object {
  Detection d;
  std::string name;  // the label, empty for a model without labels
};

class DetectResult final : public Result {
 public:
  DetectResult(std::vector<Object> objects, float min_score)
      : objects_(std::move(objects)), min_score_(min_score) {}

  void write(protocol::schema::Result::Builder out) const override {
    auto list = out.initDetect().initObjects(static_cast<unsigned>(objects_.size()));
    for (size_t i = 0; i < objects_.size(); ++i) {
      const Object& o = objects_[i];
      auto box = list[static_cast<unsigned>(i)].initBox();
      box.setX0(o.d.box.x0), box.setY0(o.d.box.y0), box.setX1(o.d.box.x1), box.setY1(o.d.box.y1);
      list[static_cast<unsigned>(i)].setIndex(o.d.index);
      list[static_cast<unsigned>(i)].setName(o.name);
      list[static_cast<unsigned>(i)].setScore(o.d.score);
    }
  }

  // "detect: dog 0.87 at (124, 219)-(312, 541)" per object, then "detect: 3 objects".
  std::string text() const override {
    std::string out;
    char line[256];
    for (const Object& o : objects_) {
      std::snprintf(line, sizeof line, " %.2f at (%ld, %ld)-(%ld, %ld)\n", o.d.score, std::lround(o.d.box.x0),
                    std::lround(o.d.box.y0), std::lround(o.d.box.x1), std::lround(o.d.box.y1));
      out += "detect: " + name(o) + line;
    }
    if (objects_.empty())
      std::snprintf(line, sizeof line, "detect: no objects above %.2f\n", min_score_);
    else
      std::snprintf(line, sizeof line, "detect: %zu object%s\n", objects_.size(),
                    objects_.size() == 1 ? "" : "s");
    return out + line;
  }

  // Boxes and tags as draw.h's draw_labelled_boxes draws them: "label 0.87".
  void annotate(Image& canvas) const override {
    std::vector<LabelledBox> boxes;
    for (const Object& o : objects_) {
      char score[16];
      std::snprintf(score, sizeof score, " %.2f", o.d.score);
      boxes.push_back({o.d.box.x0, o.d.box.y0, o.d.box.x1, o.d.box.y1, name(o) + score, class_colour(o.d.index)});
    }
    draw_labelled_boxes(canvas, boxes);
  }

 private:
  static std::string name(const Object& o) {
    return o.name.empty() ? "class " + std::to_string(o.d.index) : o.name;
  }

  std::vector<Object> objects_;
  float min_score_;
};

class DetectFactory;

// Holds a reference to its factory, which must outlive it (it maps the model
// the interpreter's constants point into).
class DetectTask final : public Task {
 public:
  DetectTask(const DetectFactory& factory, std::unique_ptr<engine::Interpreter> interpreter)
      : factory_(factory), it_(std::move(interpreter)) {}
  std::unique_ptr<Result> run(const Image& image, const TaskOptions& options, Timings& timings) override;

 private:
  const DetectFactory& factory_;
  std::unique_ptr<engine::Interpreter> it_;
};

class DetectFactory final : public TaskFactory {
 public:
  using Head = engine::schema::Detector::Head;

  explicit DetectFactory(const TaskSpec& spec) : model_(spec) {
    const auto fail = [&](const std::string& what) { throw std::runtime_error(spec.model + ": " + what); };
    const auto model = model_.file().model();
    if (model.getTask() != "detect")
      fail(model.getTask().size()
               ? "the model is for task '" + std::string(model.getTask().cStr()) + "', not detect"
               : std::string("the model names no task; a detector's is 'detect'"));
    const auto detector = model.getDetector();
    head_ = detector.getHead();
    if (head_ != Head::CENTERNET && head_ != Head::NANODET)
      fail("the model names no detector head (Model.detector.head: centernet or nanodet)");
    score_threshold_ = detector.getScoreThreshold();
    iou_threshold_ = detector.getIouThreshold();
    if (!(score_threshold_ >= 0 && score_threshold_ <= 1) || !(iou_threshold_ >= 0 && iou_threshold_ <= 1))
      fail("the detector's score or IoU threshold is not in [0, 1]");
    for (auto label : model.getLabels()) labels_.emplace_back(label.cStr());
    pre_ = input_preprocess(model_.file(), spec.model);
    std::unique_ptr<engine::Interpreter> spare = model_.interpreter();
    const engine::Interpreter& it = *spare;
    if (it.input_count() != 1 || it.input(0).dtype != engine::DType::f32)
      fail("a detector takes one f32 image input; this model has " + std::to_string(it.input_count()) +
           " input(s)" +
           (it.input_count() ? std::string(", the first ") + engine::dtype_text(it.input(0).dtype) : ""));
    try {  // the input's shape against the stored preprocessing, once, on a one-pixel image
      image_to_input(Image{1, 1, PixelFormat::gray, {0}}, pre_, it.input(0).shape);
    } catch (const std::runtime_error& e) {
      fail(e.what());
    }
    std::vector<engine::Shape> shapes;
    for (size_t i = 0; i < it.output_count(); ++i) shapes.push_back(it.output(i).shape);
    std::vector<size_t> read;
    try {
      if (head_ == Head::CENTERNET) {
        centernet_ = detect::centernet_outputs(shapes, pre_.width, pre_.height, labels_.size());
        read = {centernet_.heat, centernet_.wh};
      } else {
        nanodet_ = detect::nanodet_outputs(shapes, pre_.width, pre_.height, labels_.size());
        for (const auto& level : nanodet_.levels) read.insert(read.end(), {level.scores, level.distribution});
      }
    } catch (const std::runtime_error& e) {
      fail(e.what());
    }
    for (size_t i : read)
      if (it.output(i).dtype != engine::DType::f32)
        fail("the detector's output '" + it.output(i).name + "' is " +
             engine::dtype_text(it.output(i).dtype) + ", not f32");
    model_.keep(std::move(spare));
  }

  std::unique_ptr<Task> make() const override {
    return std::make_unique<DetectTask>(*this, model_.interpreter());
  }
  std::string model_name() const override { return model_.name(); }
  std::string model_sha256() const override { return model_.sha256(); }

  // The objects in the interpreter's outputs, in pixels of a width x height
  // image, at least `min_score`, after suppression.
  std::vector<Object> objects(const engine::Interpreter& it, const InputMap& map, uint32_t width,
                              uint32_t height, float min_score, size_t max_objects) const {
    const auto output = [&](size_t i) {
      return std::span<const float>(static_cast<const float*>(it.output_data(i)),
                                    elements(it.output(i).shape));
    };
    std::vector<Detection> found;
    if (head_ == Head::CENTERNET) {
      found = detect::decode_centernet(output(centernet_.heat), output(centernet_.wh), centernet_.grid,
                                       centernet_.classes, min_score, max_objects);
    } else {
      std::vector<detect::NanoDetLevel> levels;
      for (const auto& l : nanodet_.levels)
        levels.push_back(detect::NanoDetLevel{output(l.scores), output(l.distribution), l.grid, l.bins});
      found = detect::decode_nanodet(levels, nanodet_.classes, min_score);
    }
    std::vector<Detection> inside;
    for (Detection& d : found) {
      d.box = detect::map_to_image(d.box, map, width, height);
      if (d.box.x1 > d.box.x0 && d.box.y1 > d.box.y0) inside.push_back(d);  // not all in the padding
    }
    std::vector<Object> out;
    for (const Detection& d : detect::non_max_suppression(std::move(inside), iou_threshold_, max_objects))
      out.push_back({d, d.index < labels_.size() ? labels_[d.index] : std::string()});
    return out;
  }

  const InputPreprocess& preprocess() const { return pre_; }
  float score_threshold() const { return score_threshold_; }

 private:
  TaskModel model_;
  InputPreprocess pre_;
  std::vector<std::string> labels_;
  Head head_ = Head::NONE;
  float score_threshold_ = 0, iou_threshold_ = 0;
  detect::CenterNetOutputs centernet_;
  detect::NanoDetOutputs nanodet_;
};

std::unique_ptr<Result> DetectTask::run(const Image& image, const TaskOptions& options, Timings& timings) {
  if (!(options.min_score >= 0 && options.min_score <= 1)) throw BadRequest("min-score must be from 0 to 1");
  if (options.max_objects < 1 || options.max_objects > kMaxObjects)
    throw BadRequest("max-objects must be from 1 to " + std::to_string(kMaxObjects));
  const float min_score = options.min_score > 0 ? options.min_score : factory_.score_threshold();
  auto start = Clock::now();
  const std::vector<float> input = image_to_input(image, factory_.preprocess(), it_->input(0).shape);
  std::memcpy(it_->input_data(0), input.data(), input.size() * sizeof(float));
  const InputMap map = input_to_image(factory_.preprocess(), image.width, image.height);
  timings.preprocess_ms = ms_since(start);

  start = Clock::now();
  it_->run();
  timings.inference_ms = ms_since(start);

  start = Clock::now();
  auto result = std::make_unique<DetectResult>(
      factory_.objects(*it_, map, image.width, image.height, min_score, options.max_objects), min_score);
  timings.postprocess_ms = ms_since(start);
  return result;
}

}  // namespace

TaskInfo detect_task() {
  return {"detect", "objects as labelled boxes with scores from an imported COCO detector", true,
          [](const TaskSpec& spec) -> std::unique_ptr<TaskFactory> {
            return std::make_unique<DetectFactory>(spec);
          }};
}

}  // namespace huddle::node
