// The detect task: the CenterNet and NanoDet decoders on tensors whose boxes
// are derived by hand, non-maximum suppression, the map from the model input
// back to the image (stretch, letterbox, centerCrop, against image_to_input
// itself), which outputs a head reads, and the whole task on a hand-built
// CenterNet-shaped model (options, refusals, result, annotation).
#include "node/tasks/detect.h"

#include <capnp/message.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/model_file.h"
#include "node/image_input.h"
#include "node/task.h"
#include "tests/engine/builder.h"
#include "tests/node/task_fixture.h"

using namespace huddle;
using namespace huddle::node;
using detect::Detection;
using detect::Grid;
using Shapes = std::vector<engine::Shape>;

namespace {

void check_box(const Box& b, float x0, float y0, float x1, float y1) {
  CHECK(b.x0 == Approx(x0).margin(1e-4));
  CHECK(b.y0 == Approx(y0).margin(1e-4));
  CHECK(b.x1 == Approx(x1).margin(1e-4));
  CHECK(b.y1 == Approx(y1).margin(1e-4));
}

// A [4, 4, 2] heat map (row-major cells, classes last) and its wh [4, 4, 4].
struct CenterNetTensors {
  static constexpr size_t kW = 4, kH = 4, kC = 2;
  std::vector<float> heat = std::vector<float>(kW * kH * kC, 0.0f),
                     wh = std::vector<float>(kW * kH * 4, 0.0f);
  float& at(size_t x, size_t y, size_t c) { return heat[(y * kW + x) * kC + c]; }
  void sides(size_t x, size_t y, std::vector<float> v) {
    for (size_t j = 0; j < 4; ++j) wh[(y * kW + x) * 4 + j] = v[j];
  }
};

}  // namespace

TEST_CASE("detect: CenterNet peaks are 3x3 maxima of their class, boxes from the cell times the stride",
          "[node][detect]") {
  CenterNetTensors t;
  const Grid grid{4, 4, 4.0f, 4.0f};
  t.at(1, 2, 0) = 0.9f;  // a peak
  t.at(2, 2, 0) = 0.5f;  // beside it, lower: not a peak
  t.at(1, 2, 1) = 0.4f;  // the same cell in the other class: a peak of its own
  t.at(3, 0, 1) = 0.6f;  // a corner cell: its neighbourhood is clipped
  t.at(0, 0, 0) = 0.2f;  // below the threshold
  t.sides(1, 2, {2, 3, 5, 7});
  t.sides(3, 0, {1, 1, 1, 1});
  const auto found = detect::decode_centernet(t.heat, t.wh, grid, 2, 0.3f, 10);
  REQUIRE(found.size() == 3);
  CHECK(found[0].index == 0);
  CHECK(found[0].score == 0.9f);
  check_box(found[0].box, 1 * 4 - 2, 2 * 4 - 3, 1 * 4 + 5, 2 * 4 + 7);
  CHECK(found[1].index == 1);
  CHECK(found[1].score == 0.6f);
  check_box(found[1].box, 3 * 4 - 1, 0 - 1, 3 * 4 + 1, 0 + 1);
  CHECK(found[2].index == 1);
  CHECK(found[2].score == 0.4f);
  check_box(found[2].box, 2, 5, 9, 15);  // the cell's sides, whatever the class

  SECTION("the best max_peaks only") {
    const auto two = detect::decode_centernet(t.heat, t.wh, grid, 2, 0.3f, 2);
    REQUIRE(two.size() == 2);
    CHECK(two[1].score == 0.6f);
  }
  SECTION("a score equal to the threshold is kept; equal neighbours are both peaks, in index order") {
    t.at(2, 2, 0) = 0.9f;
    const auto plateau = detect::decode_centernet(t.heat, t.wh, grid, 2, 0.9f, 10);
    REQUIRE(plateau.size() == 2);
    check_box(plateau[0].box, 2, 5, 9, 15);
    check_box(plateau[1].box, 8, 8, 8, 8);  // cell (2, 2) has zero sides
  }
  SECTION("tensors of the wrong size are refused") {
    CHECK_THROWS_AS(detect::decode_centernet(t.heat, t.wh, Grid{4, 3, 4, 4}, 2, 0.3f, 10),
                    std::invalid_argument);
  }
}

TEST_CASE("detect: NanoDet sides are the expected bin times the stride from the cell's centre",
          "[node][detect]") {
  // Level 0: 2x2 cells, stride 8, 3 classes, 4 bins; only cell 3 (x 1, y 1) scores.
  std::vector<float> scores0(4 * 3, 0.1f), dist0(4 * 4 * 4, 0.0f);
  scores0[3 * 3 + 0] = 0.1f, scores0[3 * 3 + 1] = 0.7f, scores0[3 * 3 + 2] = 0.2f;
  const auto bins = [&](size_t cell, size_t side, std::vector<float> v) {
    for (size_t b = 0; b < 4; ++b) dist0[(cell * 4 + side) * 4 + b] = v[b];
  };
  bins(3, 0, {0, 0, 100, 0});  // left: one-hot bin 2 -> 2 strides
  bins(3, 1, {5, 5, 5, 5});    // top: uniform -> the mean bin, 1.5 strides
  bins(3, 2, {100, 0, 0, 0});  // right: bin 0 -> 0
  bins(3, 3, {0, 0, 0, 100});  // bottom: bin 3 -> 3 strides
  // Level 1: one cell, stride 16, class 0 at 0.9, uniform bins.
  std::vector<float> scores1 = {0.9f, 0.0f, 0.0f}, dist1(16, 0.0f);
  const std::vector<detect::NanoDetLevel> levels = {{scores0, dist0, Grid{2, 2, 8, 8}, 4},
                                                    {scores1, dist1, Grid{1, 1, 16, 16}, 4}};
  const auto found = detect::decode_nanodet(levels, 3, 0.3f);
  REQUIRE(found.size() == 2);
  const float c = (1 + detect::kNanoDetCentreOffset) * 8;
  CHECK(found[0].index == 1);
  CHECK(found[0].score == 0.7f);
  check_box(found[0].box, c - 16, c - 12, c + 0, c + 24);
  const float c1 = detect::kNanoDetCentreOffset * 16;
  CHECK(found[1].index == 0);
  check_box(found[1].box, c1 - 24, c1 - 24, c1 + 24, c1 + 24);
  SECTION("one candidate per cell, its best class, at or above the threshold") {
    CHECK(detect::decode_nanodet(levels, 3, 0.7f).size() == 2);
    CHECK(detect::decode_nanodet(levels, 3, 0.71f).size() == 1);
    CHECK(detect::decode_nanodet(levels, 3, 0.05f).size() == 5);
  }
}

TEST_CASE("detect: non-maximum suppression is greedy, per class, above the IoU threshold", "[node][detect]") {
  CHECK(detect::iou({0, 0, 10, 10}, {0, 0, 10, 10}) == 1.0f);
  CHECK(detect::iou({0, 0, 10, 10}, {10, 0, 20, 10}) == 0.0f);
  CHECK(detect::iou({0, 0, 10, 10}, {1, 0, 11, 10}) == Approx(90.0 / 110));
  CHECK(detect::iou({5, 5, 5, 5}, {5, 5, 5, 5}) == 0.0f);  // empty union

  const Detection a{{0, 0, 10, 10}, 0, 0.9f};
  const Detection overlapping{{1, 0, 11, 10}, 0, 0.8f};  // IoU 0.82 with a
  const Detection other_class{{1, 0, 11, 10}, 1, 0.7f};  // the same box, another class
  const Detection at_threshold{{0, 0, 10, 5}, 0, 0.6f};  // IoU exactly 0.5 with a
  const Detection apart{{50, 50, 60, 60}, 0, 0.95f};
  const auto kept = detect::non_max_suppression({overlapping, a, other_class, at_threshold, apart}, 0.5f, 10);
  REQUIRE(kept.size() == 4);
  CHECK(kept[0].score == 0.95f);
  CHECK(kept[1].score == 0.9f);
  CHECK(kept[2].score == 0.7f);  // another class is never suppressed
  CHECK(kept[3].score == 0.6f);  // at the threshold: kept
  SECTION("a lower threshold suppresses the one at 0.5") {
    CHECK(detect::non_max_suppression({a, at_threshold}, 0.49f, 10).size() == 1);
  }
  SECTION("at most max_objects, best first") {
    const auto one = detect::non_max_suppression({a, other_class, apart}, 0.5f, 1);
    REQUIRE(one.size() == 1);
    CHECK(one[0].score == 0.95f);
  }
  SECTION("equal scores keep their order; a suppressed box suppresses nothing") {
    const Detection b{{0, 0, 10, 10}, 0, 0.5f}, c{{8, 0, 18, 10}, 0, 0.5f}, d{{16, 0, 26, 10}, 0, 0.5f};
    // c overlaps b (IoU 0.11) and d (0.11): with threshold 0.1 c goes, and d stays.
    const auto out = detect::non_max_suppression({b, c, d}, 0.1f, 10);
    REQUIRE(out.size() == 2);
    CHECK(out[0].box.x0 == 0);
    CHECK(out[1].box.x0 == 16);
  }
}

TEST_CASE("detect: the input-to-image map of each resize mode", "[node][detect]") {
  InputPreprocess pre;
  pre.width = 416, pre.height = 416;
  SECTION("stretch scales each axis") {
    pre.width = 320, pre.height = 320;
    const InputMap m = input_to_image(pre, 640, 480);
    CHECK(m.scale_x == 2.0);
    CHECK(m.scale_y == 1.5);
    CHECK(m.offset_x == 0.0);
    CHECK(m.offset_y == 0.0);
    check_box(detect::map_to_image({10, 20, 30, 40}, m, 640, 480), 20, 30, 60, 60);
  }
  SECTION("letterbox: one scale, the padding offset removed; boxes clipped to the image") {
    pre.resize = InputPreprocess::Resize::letterbox;
    const InputMap m = input_to_image(pre, 640, 480);  // 416 x 312 at y 52
    CHECK(m.scale_x == Approx(640.0 / 416));
    CHECK(m.scale_y == Approx(480.0 / 312));
    CHECK(m.offset_x == 0.0);
    CHECK(m.offset_y == Approx(-52 * 480.0 / 312));
    check_box(detect::map_to_image({0, 52, 416, 364}, m, 640, 480), 0, 0, 640, 480);
    // Round trip: image point -> input (the forward letterbox) -> image.
    for (const auto& [x, y] : {std::pair{0.0, 0.0}, {123.0, 45.0}, {639.5, 479.5}}) {
      const double u = x * 416 / 640, v = y * 312 / 480 + 52;
      CHECK(u * m.scale_x + m.offset_x == Approx(x).margin(1e-9));
      CHECK(v * m.scale_y + m.offset_y == Approx(y).margin(1e-9));
    }
    check_box(detect::map_to_image({-10, 0, 100, 60}, m, 640, 480), 0, 0, 100 * 640.0f / 416,
              8 * 480.0f / 312);
    const Box in_padding = detect::map_to_image({10, 0, 100, 40}, m, 640, 480);
    CHECK(in_padding.y0 == in_padding.y1);  // all in the padding: empty
  }
  SECTION("centerCrop: the crop's offset") {
    pre.width = 224, pre.height = 224;
    pre.resize = InputPreprocess::Resize::center_crop;
    const InputMap m = input_to_image(pre, 640, 480);  // the centred 480 x 480
    CHECK(m.scale_x == Approx(480.0 / 224));
    CHECK(m.offset_x == 80.0);
    CHECK(m.offset_y == 0.0);
  }
  SECTION("a large downscale reads the pixels the block averaging keeps") {
    pre.width = 100, pre.height = 100;
    const InputMap m = input_to_image(pre, 1001, 1001);  // 10 x 10 blocks: the last column and row dropped
    CHECK(m.scale_x == 10.0);
    CHECK(m.scale_y == 10.0);
  }
}

TEST_CASE("detect: the map agrees with image_to_input on a bright rectangle", "[node][detect]") {
  // A 200 x 100 black image with white at 60 <= x < 100, 20 <= y < 60.
  Image img{200, 100, PixelFormat::rgb, std::vector<uint8_t>(200 * 100 * 3, 0)};
  for (size_t y = 20; y < 60; ++y)
    for (size_t x = 60; x < 100; ++x)
      for (size_t c = 0; c < 3; ++c) img.pixels[(y * 200 + x) * 3 + c] = 255;
  for (auto mode : {InputPreprocess::Resize::stretch, InputPreprocess::Resize::letterbox,
                    InputPreprocess::Resize::center_crop}) {
    DYNAMIC_SECTION("resize mode " << static_cast<int>(mode)) {
      InputPreprocess pre;
      pre.width = 64, pre.height = 48;
      pre.resize = mode;
      const std::vector<float> in = image_to_input(img, pre, {1, 48, 64, 3});
      // The bright cells' extent, in input pixel edges.
      float u0 = 64, v0 = 48, u1 = 0, v1 = 0;
      for (size_t v = 0; v < 48; ++v)
        for (size_t u = 0; u < 64; ++u)
          if (in[(v * 64 + u) * 3] > 127) {
            u0 = std::min(u0, float(u)), v0 = std::min(v0, float(v));
            u1 = std::max(u1, float(u + 1)), v1 = std::max(v1, float(v + 1));
          }
      REQUIRE(u1 > u0);
      const InputMap m = input_to_image(pre, 200, 100);
      const Box b = detect::map_to_image({u0, v0, u1, v1}, m, 200, 100);
      // Within one input pixel (in image pixels) of the rectangle.
      const double tx = m.scale_x, ty = m.scale_y;
      CHECK(b.x0 == Approx(60).margin(tx));
      CHECK(b.x1 == Approx(100).margin(tx));
      CHECK(b.y0 == Approx(20).margin(ty));
      CHECK(b.y1 == Approx(60).margin(ty));
    }
  }
}

TEST_CASE("detect: which outputs a head reads, from their shapes", "[node][detect]") {
  SECTION("centernet: heat map and sides by shape; other outputs ignored") {
    const std::vector<engine::Shape> out = {{1, 100, 6}, {1, 128, 128, 80}, {1, 128, 128, 4}};
    const auto o = detect::centernet_outputs(out, 512, 512, 80);
    CHECK(o.heat == 1);
    CHECK(o.wh == 2);
    CHECK(o.classes == 80);
    CHECK(o.grid.width == 128);
    CHECK(o.grid.stride_x == 4.0f);
    CHECK(o.grid.stride_y == 4.0f);
    const auto four = detect::centernet_outputs(Shapes{{1, 8, 8, 4}, {1, 8, 8, 4}}, 32, 32, 0);
    CHECK(four.heat == 0);
    CHECK(four.wh == 1);
  }
  SECTION("centernet: what does not fit is named") {
    const std::vector<engine::Shape> no_wh = {{1, 128, 128, 80}};
    CHECK_THROWS_WITH(
        detect::centernet_outputs(no_wh, 512, 512, 80),
        Catch::Contains("box-size output [1, H, W, 4]") && Catch::Contains("0: [1, 128, 128, 80]"));
    const std::vector<engine::Shape> classes = {{1, 128, 128, 80}, {1, 128, 128, 4}};
    CHECK_THROWS_WITH(detect::centernet_outputs(classes, 512, 512, 90),
                      Catch::Contains("heat map [1, H, W, 90 (the labels)]"));
    const std::vector<engine::Shape> grids = {{1, 64, 64, 80}, {1, 128, 128, 4}};
    CHECK_THROWS_WITH(
        detect::centernet_outputs(grids, 512, 512, 80),
        Catch::Contains("heat map [1, H, W, 80 (the labels)] beside its box sizes [1, 128, 128, 4]"));
    CHECK_THROWS_WITH(detect::centernet_outputs(grids, 64, 64, 80),
                      Catch::Contains("at most the input's size"));
  }
  SECTION("nanodet: levels by cell count, scores by class count, finest first") {
    // The human library's NanoDet: 416 x 416, strides 8, 16, 32, 11 bins.
    const std::vector<engine::Shape> out = {{1, 169, 80},  {1, 169, 44}, {1, 676, 80},
                                            {1, 2704, 80}, {1, 676, 44}, {1, 2704, 44}};
    const auto o = detect::nanodet_outputs(out, 416, 416, 80);
    REQUIRE(o.levels.size() == 3);
    CHECK(o.classes == 80);
    CHECK(o.levels[0].grid.stride_x == 8.0f);
    CHECK(o.levels[0].grid.width == 52);
    CHECK(o.levels[0].scores == 3);
    CHECK(o.levels[0].distribution == 5);
    CHECK(o.levels[0].bins == 11);
    CHECK(o.levels[2].grid.width == 13);
    CHECK(o.levels[2].scores == 0);
    // Without labels: the scores are the output whose last size is not a multiple of 4.
    CHECK(detect::nanodet_outputs(Shapes{{1, 169, 44}, {1, 169, 81}}, 416, 416, 0).levels[0].scores == 1);
  }
  SECTION("nanodet: what does not fit is named") {
    CHECK_THROWS_WITH(detect::nanodet_outputs(Shapes{{1, 170, 80}}, 416, 416, 80),
                      Catch::Contains("none is there"));
    CHECK_THROWS_WITH(detect::nanodet_outputs(Shapes{{1, 169, 80}, {1, 169, 44}, {1, 169, 44}}, 416, 416, 80),
                      Catch::Contains("3 outputs have N = 169"));
    CHECK_THROWS_WITH(detect::nanodet_outputs(Shapes{{1, 169, 80}, {1, 169, 42}}, 416, 416, 80),
                      Catch::Contains("[1, 169, 42]"));
    CHECK_THROWS_WITH(
        detect::nanodet_outputs(Shapes{{1, 169, 80}, {1, 169, 44}, {1, 676, 80}, {1, 676, 32}}, 416, 416, 80),
        Catch::Contains("differ in classes or bins"));
  }
}

namespace {

struct ModelSpec {
  std::string task = "detect";
  engine::schema::Detector::Head head = engine::schema::Detector::Head::CENTERNET;
  std::vector<std::string> labels = {"red", "green", "blue"};
};

// A CenterNet-shaped detector on 8x8 RGB inputs (x = pixel / 255): the heat
// map [1, 2, 2, 3] is the mean of each 4x4 block per channel (so a red block
// scores class 0 with its redness), the sides [1, 2, 2, 4] are the constant
// (1, 2, 3, 1) input pixels; stride 4.
std::string write_model(const std::filesystem::path& dir, const ModelSpec& spec) {
  test::Builder bld;
  const int x = bld.input("image", {1, 8, 8, 3});
  const int heat = bld.node("AveragePool2D", {x}, {{"kernel", std::vector<int64_t>{4, 4}}});
  const int wh = bld.node("Conv2D", {heat, bld.constant("w", {4, 1, 1, 3}, std::vector<float>(12, 0.0f)),
                                     bld.constant("b", {4}, std::vector<float>{1, 2, 3, 1})});
  bld.g.outputs = {heat, wh};
  return test::write_task_model((dir / "detector.hdm").string(), bld.g, spec.task, spec.labels,
                                [&](engine::schema::Model::Builder model) {
                                  model.initDetector().setHead(spec.head);
                                  auto pre = model.initPreprocess();
                                  pre.setWidth(8);
                                  pre.setHeight(8);
                                  auto mean = pre.initMean(3), std = pre.initStd(3);
                                  for (unsigned c = 0; c < 3; ++c) mean.set(c, 0.0f), std.set(c, 255.0f);
                                });
}

// 16x16: the top-right 8x8 quadrant pure red (cell x 1, y 0 of class 0 at 1.0),
// the bottom-left one half green (cell x 0, y 1 of class 1 at about 0.5).
Image two_blocks() {
  Image img{16, 16, PixelFormat::rgb, std::vector<uint8_t>(16 * 16 * 3, 0)};
  for (size_t y = 0; y < 8; ++y)
    for (size_t x = 0; x < 8; ++x) {
      img.pixels[(y * 16 + x + 8) * 3 + 0] = 255;
      img.pixels[((y + 8) * 16 + x) * 3 + 1] = 128;
    }
  return img;
}

std::string open_error(const std::string& model) { return test::open_error("detect", model); }

}  // namespace

TEST_CASE("detect: the task on a hand-built CenterNet-shaped model", "[node][detect]") {
  test::TempDir dir;
  const std::string model = write_model(dir.path, {});
  auto factory = open_task({"detect", model, 1});
  CHECK(factory->model_name() == "detector.hdm");
  CHECK(factory->model_sha256().size() == 64);
  auto task = factory->make();
  Timings timings;
  TaskOptions options;
  // Input boxes (4 - 1, 0 - 2, 4 + 3, 0 + 1) and (0 - 1, 4 - 2, 0 + 3, 4 + 1), times 2, clipped to 16x16.
  auto result = task->run(two_blocks(), options, timings);
  CHECK(result->text() ==
        "detect: red 1.00 at (6, 0)-(14, 2)\n"
        "detect: green 0.50 at (0, 4)-(6, 10)\n"
        "detect: 2 objects\n");
  CHECK(timings.preprocess_ms >= 0);
  CHECK(timings.inference_ms >= 0);
  CHECK(timings.postprocess_ms >= 0);

  capnp::MallocMessageBuilder message;
  auto out = message.initRoot<protocol::schema::Result>();
  result->write(out);
  REQUIRE(out.isDetect());
  const auto objects = out.asReader().getDetect().getObjects();
  REQUIRE(objects.size() == 2);
  CHECK(objects[0].getIndex() == 0);
  CHECK(std::string(objects[0].getName().cStr()) == "red");
  CHECK(objects[0].getScore() == Approx(1.0));
  CHECK(objects[0].getBox().getX0() == Approx(6));
  CHECK(objects[0].getBox().getY1() == Approx(2));
  CHECK(objects[1].getIndex() == 1);
  CHECK(objects[1].getScore() == Approx(128.0 / 255).margin(1e-3));

  SECTION("min-score and max-objects") {
    options.min_score = 0.6f;
    CHECK(task->run(two_blocks(), options, timings)->text() ==
          "detect: red 1.00 at (6, 0)-(14, 2)\ndetect: 1 object\n");
    options.min_score = 0;
    options.max_objects = 1;
    CHECK(task->run(two_blocks(), options, timings)->text() ==
          "detect: red 1.00 at (6, 0)-(14, 2)\ndetect: 1 object\n");
  }
  SECTION("nothing above the threshold") {
    const Image dark{16, 16, PixelFormat::rgb, std::vector<uint8_t>(16 * 16 * 3, 0)};
    CHECK(task->run(dark, options, timings)->text() == "detect: no objects above 0.30\n");
  }
  SECTION("options out of range are bad requests") {
    for (float s : {-0.1f, 1.5f, std::nanf("")}) {
      options.min_score = s;
      CHECK_THROWS_AS(task->run(two_blocks(), options, timings), BadRequest);
    }
    options.min_score = 0;
    for (uint32_t n : {0u, 1025u}) {
      options.max_objects = n;
      CHECK_THROWS_AS(task->run(two_blocks(), options, timings), BadRequest);
    }
  }
  SECTION("the annotation draws boxes and tags inside the canvas") {
    Image canvas{16, 16, PixelFormat::rgb, std::vector<uint8_t>(16 * 16 * 3, 128)};
    result->annotate(canvas);
    REQUIRE(canvas.pixels.size() == 16u * 16 * 3);
    const size_t on_green_box = (size_t{9} * 16 + 3) * 3;  // the bottom edge of (0, 4)-(6, 10)
    CHECK((canvas.pixels[on_green_box] != 128 || canvas.pixels[on_green_box + 1] != 128));
    const size_t corner = (size_t{15} * 16 + 15) * 3;
    CHECK(canvas.pixels[corner] == 128);
  }
}

TEST_CASE("detect: models it cannot serve are refused naming the file and what does not fit",
          "[node][detect]") {
  test::TempDir dir;
  ModelSpec spec;
  SECTION("a model for another task") {
    spec.task = "classify";
    CHECK_THAT(open_error(write_model(dir.path, spec)),
               Catch::Contains("detector.hdm: the model is for task 'classify', not detect"));
  }
  SECTION("no head") {
    spec.head = engine::schema::Detector::Head::NONE;
    CHECK_THAT(open_error(write_model(dir.path, spec)), Catch::Contains("names no detector head"));
  }
  SECTION("labels that are not the heat map's classes") {
    spec.labels = {"a", "b", "c", "d", "e"};
    CHECK_THAT(
        open_error(write_model(dir.path, spec)),
        Catch::Contains("detector.hdm: a centernet detector has a heat map [1, H, W, 5 (the labels)]"));
  }
  SECTION("outputs that are not the head's") {
    spec.head = engine::schema::Detector::Head::NANODET;
    CHECK_THAT(
        open_error(write_model(dir.path, spec)),
        Catch::Contains("a nanodet detector has") && Catch::Contains("0: [1, 2, 2, 3], 1: [1, 2, 2, 4]"));
  }
  SECTION("a model without labels names its classes by index") {
    spec.labels = {};
    auto factory = open_task({"detect", write_model(dir.path, spec), 1});
    Timings t;
    CHECK_THAT(factory->make()->run(two_blocks(), {}, t)->text(),
               Catch::StartsWith("detect: class 0 1.00 at"));
  }
}

TEST_CASE("detect: write the command-line fixture", "[.detect-fixture]") {
  const char* dir = std::getenv("HUDDLE_FIXTURE_DIR");
  REQUIRE(dir != nullptr);
  const std::filesystem::path path(dir);
  write_model(path, {});
  write_png((path / "blocks.png").string(), two_blocks());
}
