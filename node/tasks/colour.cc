// The colour task: the dominant colours of the image and of each requested
// region (node/colour.h), named from the CSS palette. No model. Stages:
// preprocess = subsampling and conversion to CIELAB, inference = k-means,
// postprocess = naming, merging and ordering.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "node/colour.h"
#include "node/draw.h"
#include "node/tasks/tasks.h"

namespace huddle::node {
namespace {

const Rgb kBlack{0, 0, 0}, kWhite{255, 255, 255}, kYellow{255, 221, 0};

std::string hex(const DominantColour& c) {
  char s[8];
  std::snprintf(s, sizeof s, "#%02x%02x%02x", c.r, c.g, c.b);
  return s;
}

// Black or white, whichever reads better on `c` (by CIELAB lightness).
Rgb ink_on(const DominantColour& c) { return srgb_to_lab(c.r, c.g, c.b).l > 55 ? kBlack : kWhite; }

class ColourResult final : public Result {
 public:
  explicit ColourResult(std::vector<ColourSet> sets) : sets_(std::move(sets)) {}

  void write(protocol::schema::Result::Builder out) const override {
    auto result = out.initColour();
    write_set(sets_.front(), result.initImage());
    auto regions = result.initRegions(static_cast<unsigned>(sets_.size() - 1));
    for (size_t i = 1; i < sets_.size(); ++i) write_set(sets_[i], regions[static_cast<unsigned>(i - 1)]);
  }

  // One line per colour: "colour: red 61.2 % (#f01010, ΔE 3.1)", regions as "colour region 0: ...".
  std::string text() const override {
    std::string out;
    for (size_t i = 0; i < sets_.size(); ++i) {
      const std::string prefix = i == 0 ? "colour: " : "colour region " + std::to_string(i - 1) + ": ";
      if (sets_[i].colours.empty()) out += prefix + "no opaque pixels\n";
      for (const DominantColour& c : sets_[i].colours) {
        char line[160];
        std::snprintf(line, sizeof line, "%s %.1f %% (%s, \u0394E %.1f)\n", c.name.c_str(), 100.0 * c.share,
                      hex(c).c_str(), c.delta_e);
        out += prefix + line;
      }
    }
    return out;
  }

  // Each region outlined (black, yellow, black); a palette strip per set along
  // its bottom edge, each colour a bar as wide as its share, labelled with
  // its name and share where the label fits.
  void annotate(Image& canvas) const override {
    for (size_t i = 1; i < sets_.size(); ++i) {
      const Box& b = sets_[i].box;
      const long x0 = std::lround(b.x0), y0 = std::lround(b.y0), x1 = std::lround(b.x1),
                 y1 = std::lround(b.y1);
      outline_rect(canvas, x0 - 2, y0 - 2, x1 + 2, y1 + 2, 1, kBlack);
      outline_rect(canvas, x0 - 1, y0 - 1, x1 + 1, y1 + 1, 2, kYellow);
      outline_rect(canvas, x0 + 1, y0 + 1, x1 - 1, y1 - 1, 1, kBlack);
    }
    for (const ColourSet& set : sets_) strip(canvas, set);
  }

 private:
  static void write_set(const ColourSet& set, protocol::schema::ColourSet::Builder out) {
    auto box = out.initBox();
    box.setX0(set.box.x0), box.setY0(set.box.y0), box.setX1(set.box.x1), box.setY1(set.box.y1);
    auto colours = out.initColours(static_cast<unsigned>(set.colours.size()));
    for (size_t i = 0; i < set.colours.size(); ++i) {
      const DominantColour& c = set.colours[i];
      auto o = colours[static_cast<unsigned>(i)];
      o.setName(c.name);
      o.setR(c.r), o.setG(c.g), o.setB(c.b);
      o.setShare(static_cast<float>(c.share));
      o.setDeltaE(static_cast<float>(c.delta_e));
    }
  }

  static void strip(Image& canvas, const ColourSet& set) {
    const long x0 = std::lround(set.box.x0), x1 = std::lround(set.box.x1), y1 = std::lround(set.box.y1);
    const long box_h = y1 - std::lround(set.box.y0), width = x1 - x0;
    if (width < 4 || box_h < 4 || set.colours.empty()) return;
    const long scale = box_h >= 200 && width >= 300 ? 2 : 1;
    const long height = std::min(box_h / 3, text_height(scale) + 6 * scale);
    const long top = y1 - height;
    fill_rect(canvas, x0, top - 1, x1, top, kBlack);
    double start = 0;
    for (const DominantColour& c : set.colours) {
      const long bx0 = x0 + std::lround(start * width);
      start += c.share;
      const long bx1 = x0 + std::lround(std::min(start, 1.0) * width);
      fill_rect(canvas, bx0, top, bx1, y1, {c.r, c.g, c.b});
      if (bx0 > x0) fill_rect(canvas, bx0, top, bx0 + 1, y1, kBlack);
      // The longest label that fits: "name 61%", "name", "61%".
      const std::string share = std::to_string(std::lround(100 * c.share)) + "%";
      for (const std::string& label : {c.name + " " + share, c.name, share}) {
        if (text_width(label, scale) + 4 * scale > bx1 - bx0 || text_height(scale) + 2 > height) continue;
        draw_text(canvas, bx0 + 2 * scale + 1, top + (height - text_height(scale)) / 2, label, scale,
                  ink_on(c));
        break;
      }
    }
  }

  std::vector<ColourSet> sets_;
};

class ColourTask final : public Task {
 public:
  std::unique_ptr<Result> run(const Image& image, const TaskOptions& options, Timings& timings) override {
    ColourTimings t;
    auto sets = dominant_colours(image, options, &t);
    timings.preprocess_ms = t.sample_ms;
    timings.inference_ms = t.kmeans_ms;
    timings.postprocess_ms = t.naming_ms;
    return std::make_unique<ColourResult>(std::move(sets));
  }
};

class ColourFactory final : public TaskFactory {
 public:
  std::unique_ptr<Task> make() const override { return std::make_unique<ColourTask>(); }
};

}  // namespace

TaskInfo colour_task() {
  return {"colour", "dominant colours of the image and of each region, named from the CSS palette", false,
          [](const TaskSpec&) -> std::unique_ptr<TaskFactory> { return std::make_unique<ColourFactory>(); }};
}

}  // namespace huddle::node
