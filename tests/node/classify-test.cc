// The classify task: softmax, the probability test and top-k against the
// formulas; the whole task on a hand-built model whose logits are known
// (x * w + b on a 2x2 gray image); the models it refuses; the annotation.
#include "node/tasks/classify.h"

#include <catch2/catch.hpp>
#include <capnp/message.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/model_file.h"
#include "node/draw.h"
#include "node/task.h"
#include "tests/engine/builder.h"
#include "tests/node/task_fixture.h"

using namespace huddle;
using namespace huddle::node;

namespace {

const double kLn2 = std::log(2.0), kLn3 = std::log(3.0);

struct ModelSpec {
  std::vector<std::string> labels = {"a", "b", "c"};
  bool preprocess = true;
  bool softmax = false;  // end the graph with a Softmax
  std::string task = "classify";
  int64_t classes = 3;
};

// A classifier on 2x2 gray images: x = pixel / 255 (NHWC [1, 2, 2, 1]),
// logits = flatten(x) * W^T + b with W's first column {0, ln 2, ln 3} and b = 0
// (for 3 classes), so an image whose first pixel is 255 and the rest 0 gives
// logits {0, ln 2, ln 3} and probabilities {1/6, 1/3, 1/2}.
std::string write_model(const std::filesystem::path& dir, const ModelSpec& spec) {
  test::Builder bld;
  const int x = bld.input("image", {1, 2, 2, 1});
  const int flat = bld.node("Reshape", {x}, {{"shape", std::vector<int64_t>{1, 4}}});
  std::vector<float> w(static_cast<size_t>(spec.classes) * 4, 0.0f), b(static_cast<size_t>(spec.classes), 0.0f);
  for (int64_t j = 0; j < spec.classes; ++j) w[static_cast<size_t>(j) * 4] = static_cast<float>(std::log(j + 1.0));
  int y = bld.node("FullyConnected", {flat, bld.constant("w", {spec.classes, 4}, w), bld.constant("b", {spec.classes}, b)});
  if (spec.softmax) y = bld.node("Softmax", {y}, {{"axis", int64_t{-1}}});
  bld.g.outputs = {y};
  return test::write_task_model((dir / "model.hdm").string(), bld.g, spec.task, spec.labels,
                                [&](engine::schema::Model::Builder model) {
                                  if (!spec.preprocess) return;
                                  auto pre = model.initPreprocess();
                                  pre.setWidth(2);
                                  pre.setHeight(2);
                                  pre.setColourOrder(engine::schema::Preprocess::ColourOrder::GRAY);
                                  pre.initMean(1).set(0, 0.0f);
                                  pre.initStd(1).set(0, 255.0f);
                                });
}

Image first_pixel_lit() { return Image{2, 2, PixelFormat::gray, {255, 0, 0, 0}}; }

struct Run {
  std::unique_ptr<Result> result;
  Timings timings;
};

Run run_once(const std::string& model, const Image& image, uint32_t top_k) {
  auto factory = open_task({"classify", model, 1});
  auto task = factory->make();
  Run r;
  TaskOptions options;
  options.top_k = top_k;
  r.result = task->run(image, options, r.timings);
  return r;
}

std::string open_error(const std::string& model) { return test::open_error("classify", model); }

}  // namespace

TEST_CASE("classify: softmax is exp(x - max) / sum", "[node][classify]") {
  const std::vector<float> logits = {0.0f, static_cast<float>(kLn2), static_cast<float>(kLn3)};
  const std::vector<float> p = classify::softmax(logits);
  REQUIRE(p.size() == 3);
  CHECK(p[0] == Approx(1.0 / 6).epsilon(1e-6));
  CHECK(p[1] == Approx(2.0 / 6).epsilon(1e-6));
  CHECK(p[2] == Approx(3.0 / 6).epsilon(1e-6));
  // Huge logits do not overflow: only differences matter.
  const std::vector<float> big = classify::softmax(std::vector<float>{1000.0f, 1000.0f + static_cast<float>(kLn3)});
  CHECK(big[0] == Approx(0.25).epsilon(1e-4));
  CHECK(big[1] == Approx(0.75).epsilon(1e-4));
  const std::vector<float> one = classify::softmax(std::vector<float>{-7.5f});
  CHECK(one[0] == 1.0f);
}

TEST_CASE("classify: a distribution is non-negative, at most 1 each, summing to 1", "[node][classify]") {
  CHECK(classify::is_distribution(std::vector<float>{0.2f, 0.3f, 0.5f}));
  CHECK(classify::is_distribution(std::vector<float>{1.0f}));
  CHECK(classify::is_distribution(std::vector<float>{0.5f, 0.5f + 0.9e-3f}));
  CHECK_FALSE(classify::is_distribution(std::vector<float>{0.5f, 0.5f + 1.5e-3f}));
  CHECK_FALSE(classify::is_distribution(std::vector<float>{0.2f, 0.3f, 0.4f}));
  CHECK_FALSE(classify::is_distribution(std::vector<float>{-0.1f, 1.1f}));
  CHECK_FALSE(classify::is_distribution(std::vector<float>{2.0f, -1.0f}));
  CHECK_FALSE(classify::is_distribution(std::vector<float>{NAN, 1.0f}));
  CHECK_FALSE(classify::is_distribution(std::vector<float>{}));
}

TEST_CASE("classify: top-k is the k highest, ties in index order", "[node][classify]") {
  const std::vector<float> s = {0.1f, 0.5f, 0.2f, 0.5f, 0.05f};
  CHECK(classify::top_k(s, 3) == std::vector<uint32_t>{1, 3, 2});
  CHECK(classify::top_k(s, 1) == std::vector<uint32_t>{1});
  CHECK(classify::top_k(s, 5) == std::vector<uint32_t>{1, 3, 2, 0, 4});
  CHECK(classify::top_k(s, 0).empty());
}

TEST_CASE("classify: the task on a model with known logits", "[node][classify]") {
  test::TempDir dir;
  for (bool softmax : {false, true}) {
    DYNAMIC_SECTION((softmax ? "a model ending in Softmax" : "a model giving logits")) {
      ModelSpec spec;
      spec.softmax = softmax;
      const std::string model = write_model(dir.path, spec);
      auto factory = open_task({"classify", model, 1});
      CHECK(factory->model_name() == "model.hdm");
      CHECK(factory->model_sha256().size() == 64);
      Run r = run_once(model, first_pixel_lit(), 3);
      // Probabilities either way: a Softmax output is not put through softmax again.
      CHECK(r.result->text() == "classify: c (0.500), b (0.333), a (0.167)\n");
      capnp::MallocMessageBuilder message;
      auto out = message.initRoot<protocol::schema::Result>();
      r.result->write(out);
      REQUIRE(out.isClassify());
      auto labels = out.asReader().getClassify().getLabels();
      REQUIRE(labels.size() == 3);
      CHECK(labels[0].getIndex() == 2);
      CHECK(std::string(labels[0].getName().cStr()) == "c");
      CHECK(labels[0].getScore() == Approx(0.5).epsilon(1e-5));
      CHECK(labels[1].getIndex() == 1);
      CHECK(labels[1].getScore() == Approx(1.0 / 3).epsilon(1e-5));
      CHECK(labels[2].getIndex() == 0);
      CHECK(labels[2].getScore() == Approx(1.0 / 6).epsilon(1e-5));
      CHECK(r.timings.preprocess_ms >= 0);
      CHECK(r.timings.inference_ms >= 0);
    }
  }
  SECTION("an all-dark image gives equal logits: uniform probabilities, lowest index first") {
    const std::string model = write_model(dir.path, {});
    Run r = run_once(model, Image{2, 2, PixelFormat::gray, {0, 0, 0, 0}}, 2);
    CHECK(r.result->text() == "classify: a (0.333), b (0.333)\n");
  }
  SECTION("a colour image of any size is fitted by the stored preprocessing") {
    const std::string model = write_model(dir.path, {});
    // 4x4 white on the top-left quarter: after a 2x downscale the first pixel is white.
    Image img{4, 4, PixelFormat::rgb, std::vector<uint8_t>(48, 0)};
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 2; ++x)
        for (int c = 0; c < 3; ++c) img.pixels[static_cast<size_t>((y * 4 + x) * 3 + c)] = 255;
    Run r = run_once(model, img, 1);
    CHECK(r.result->text() == "classify: c (0.500)\n");
  }
  SECTION("top-k beyond the labels gives every label; top-k 0 is a bad request") {
    const std::string model = write_model(dir.path, {});
    auto factory = open_task({"classify", model, 1});  // outlives its tasks
    auto task = factory->make();
    Timings t;
    TaskOptions options;  // the default top-k, 5, on a model with 3 labels
    CHECK(task->run(first_pixel_lit(), options, t)->text() == "classify: c (0.500), b (0.333), a (0.167)\n");
    options.top_k = 0;
    CHECK_THROWS_AS(task->run(first_pixel_lit(), options, t), BadRequest);
  }
  SECTION("several tasks from one factory give the same answer") {
    const std::string model = write_model(dir.path, {});
    auto factory = open_task({"classify", model, 2});
    auto t1 = factory->make(), t2 = factory->make();
    Timings t;
    TaskOptions options;
    options.top_k = 3;
    CHECK(t1->run(first_pixel_lit(), options, t)->text() == t2->run(first_pixel_lit(), options, t)->text());
  }
}

TEST_CASE("classify: models it cannot serve are refused with what to do", "[node][classify]") {
  test::TempDir dir;
  ModelSpec spec;
  SECTION("no labels") {
    spec.labels = {};
    CHECK_THAT(open_error(write_model(dir.path, spec)), Catch::Contains("model.hdm: the model has no labels") &&
                                                            Catch::Contains("--labels"));
  }
  SECTION("no preprocessing") {
    spec.preprocess = false;
    CHECK_THAT(open_error(write_model(dir.path, spec)), Catch::Contains("no image preprocessing") &&
                                                            Catch::Contains("--size"));
  }
  SECTION("labels that do not match the output") {
    spec.labels = {"a", "b", "c", "d"};
    CHECK_THAT(open_error(write_model(dir.path, spec)),
               Catch::Contains("must be f32 [1, 4]") && Catch::Contains("is f32 [1, 3]") &&
                   Catch::Contains("a labels file of 3 lines"));
  }
  SECTION("a model made for another task") {
    spec.task = "detect";
    CHECK_THAT(open_error(write_model(dir.path, spec)), Catch::Contains("for task 'detect', not classify"));
  }
  SECTION("a missing file") {
    CHECK_THAT(open_error((dir.path / "missing.hdm").string()), Catch::Contains("missing.hdm"));
  }
  SECTION("no model at all") {
    CHECK_THAT(open_error(""), Catch::Contains("needs a model"));
  }
}

TEST_CASE("classify: the annotation is a panel in the top-left corner", "[node][classify]") {
  test::TempDir dir;
  const std::string model = write_model(dir.path, {});
  Run r = run_once(model, first_pixel_lit(), 3);
  Image canvas{300, 200, PixelFormat::rgb, std::vector<uint8_t>(300 * 200 * 3, 200)};
  r.result->annotate(canvas);
  REQUIRE(canvas.pixels.size() == 300u * 200 * 3);
  // The panel covers the corner; the far corner is untouched.
  CHECK(canvas.pixels[0] == 24);
  const size_t far = (size_t{199} * 300 + 299) * 3;
  CHECK(canvas.pixels[far] == 200);
  // A tiny image is annotated without writing outside it.
  Image tiny{2, 2, PixelFormat::rgb, std::vector<uint8_t>(12, 0)};
  r.result->annotate(tiny);
  CHECK(tiny.pixels.size() == 12);
}

TEST_CASE("draw: rectangles blend and clip, text follows the glyph grid", "[node][draw]") {
  Image canvas{4, 3, PixelFormat::rgb, std::vector<uint8_t>(36, 100)};
  fill_rect(canvas, -5, -5, 2, 1, {200, 0, 100}, 0.5f);  // clipped to x 0..1, y 0
  CHECK(canvas.pixels[0] == 150);  // 100 + 0.5 * (200 - 100)
  CHECK(canvas.pixels[1] == 50);
  CHECK(canvas.pixels[2] == 100);
  CHECK(canvas.pixels[3] == 150);
  CHECK(canvas.pixels[6] == 100);       // x = 2 untouched
  CHECK(canvas.pixels[4 * 3] == 100);   // y = 1 untouched
  fill_rect(canvas, 3, 2, 100, 100, {0, 0, 0});
  CHECK(canvas.pixels[(2 * 4 + 3) * 3] == 0);

  CHECK(text_width("", 1) == 0);
  CHECK(text_width("AB", 2) == (2 * 6 - 1) * 2);
  CHECK(text_width("\xc3\xa9t\xc3\xa9", 1) == 3 * 6 - 1);  // "été": one glyph per UTF-8 sequence
  // '-' is the middle row of the 5x7 cell; a capital draws as its lowercase.
  Image cell{5, 7, PixelFormat::rgb, std::vector<uint8_t>(105, 0)};
  CHECK(draw_text(cell, 0, 0, "-", 1, {255, 255, 255}) == 5);
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < 5; ++x) CHECK(cell.pixels[static_cast<size_t>((y * 5 + x) * 3)] == (y == 3 ? 255 : 0));
  Image upper{5, 7, PixelFormat::rgb, std::vector<uint8_t>(105, 0)}, lower = upper;
  draw_text(upper, 0, 0, "Q", 1, {255, 255, 255});
  draw_text(lower, 0, 0, "q", 1, {255, 255, 255});
  CHECK(upper.pixels == lower.pixels);
  // Text partly or wholly outside the canvas is clipped, never written out of bounds.
  draw_text(cell, -2, -3, "HUDDLE 0.9", 3, {255, 0, 0});
  draw_text(cell, 100, 100, "x", 1, {255, 0, 0});
  Image gray{2, 1, PixelFormat::gray, {10, 20}};
  const Image rgb = rgb_canvas(gray);
  CHECK(rgb.format == PixelFormat::rgb);
  CHECK(rgb.pixels == std::vector<uint8_t>{10, 10, 10, 20, 20, 20});
  Image not_rgb = gray;
  CHECK_THROWS_AS(fill_rect(not_rgb, 0, 0, 1, 1, {}), std::invalid_argument);
}
