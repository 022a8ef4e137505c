// The colour task: CIEDE2000 against Sharma, Wu and Dalal's published test
// pairs, the CSS palette, generated images with known colours and
// proportions (stripes, blocks, scatter, with noise; exact names, shares
// within 2 points), regions, refusals, gray and RGBA input, the Result's
// schema, text and annotation, and real photos Debian ships.
#include "node/colour.h"

#include <capnp/message.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <numbers>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "node/draw.h"
#include "node/tasks/tasks.h"

using namespace huddle::node;

namespace {

struct Rgb8 {
  uint8_t r, g, b;
};

// A colour of a generated image and the fraction of pixels it gets.
struct Part {
  std::string name;  // its CSS name (the colour is that name's value)
  double share;
};

Rgb8 css(const std::string& name) {
  for (const NamedColour& c : css_colours())
    if (name == c.name) return {c.r, c.g, c.b};
  FAIL("no CSS colour " << name);
  return {};
}

enum class Layout { stripes, blocks, scatter };

// A w x h RGB image of `parts` laid out as `layout`, each channel with
// uniform noise in [-noise, noise] (clamped to 0..255). Returns the exact
// fraction of pixels each part got in `actual`.
Image generate(uint32_t w, uint32_t h, const std::vector<Part>& parts, Layout layout, int noise,
               std::vector<double>* actual = nullptr, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  std::vector<double> cumulative;
  double sum = 0;
  for (const Part& p : parts) cumulative.push_back(sum += p.share);
  auto part_at = [&](double u) {
    for (size_t i = 0; i < parts.size(); ++i)
      if (u < cumulative[i]) return i;
    return parts.size() - 1;
  };
  Image im{w, h, PixelFormat::rgb, std::vector<uint8_t>(size_t{w} * h * 3)};
  std::vector<size_t> counts(parts.size());
  std::uniform_real_distribution<double> uniform(0, 1);
  std::uniform_int_distribution<int> jitter(-noise, noise);
  const uint32_t tiles = 10;  // blocks: a 10 x 10 grid of tiles, shuffled
  std::vector<size_t> tile_part(tiles * tiles);
  for (size_t t = 0; t < tile_part.size(); ++t) tile_part[t] = part_at((t + 0.5) / tile_part.size());
  std::shuffle(tile_part.begin(), tile_part.end(), rng);
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x) {
      size_t part = 0;
      switch (layout) {
        case Layout::stripes:  // vertical stripes, 8 repeats of the sequence across the width
          part = part_at(std::fmod((x + 0.5) * 8.0 / w, 1.0));
          break;
        case Layout::blocks:
          part = tile_part[(y * tiles / h) * tiles + x * tiles / w];
          break;
        case Layout::scatter:
          part = part_at(uniform(rng));
          break;
      }
      ++counts[part];
      const Rgb8 c = css(parts[part].name);
      uint8_t* p = &im.pixels[(size_t{y} * w + x) * 3];
      const uint8_t v[3] = {c.r, c.g, c.b};
      for (int ch = 0; ch < 3; ++ch) p[ch] = static_cast<uint8_t>(std::clamp(v[ch] + jitter(rng), 0, 255));
    }
  if (actual)
    for (size_t c : counts) actual->push_back(static_cast<double>(c) / (static_cast<double>(w) * h));
  return im;
}

// The share of `name` in `set`, 0 when absent.
double share_of(const ColourSet& set, const std::string& name) {
  for (const DominantColour& c : set.colours)
    if (c.name == name) return c.share;
  return 0;
}

std::string names(const ColourSet& set) {
  std::string s;
  for (const DominantColour& c : set.colours) s += c.name + " " + std::to_string(c.share) + "; ";
  return s;
}

// `set` names exactly the parts, each within 2 points of its expected share.
void require_parts(const ColourSet& set, const std::vector<Part>& parts, const std::vector<double>& shares) {
  INFO("got: " << names(set));
  REQUIRE(set.colours.size() == parts.size());
  for (size_t i = 0; i < parts.size(); ++i) {
    CAPTURE(parts[i].name, shares[i]);
    REQUIRE(std::fabs(share_of(set, parts[i].name) - shares[i]) <= 0.02);
  }
  double total = 0;
  for (size_t i = 0; i < set.colours.size(); ++i) {
    total += set.colours[i].share;
    if (i > 0) REQUIRE(set.colours[i - 1].share >= set.colours[i].share);
  }
  REQUIRE(total == Approx(1.0).margin(1e-9));
}

std::vector<ColourSet> analyse(const Image& im, uint32_t k = 5, std::vector<Box> regions = {}) {
  TaskOptions options;
  options.colours = k;
  options.regions = std::move(regions);
  return dominant_colours(im, options);
}

std::vector<std::string> photo_paths() {
  std::vector<std::string> paths;
  for (const char* p :
       {"/usr/lib/python3/dist-packages/imageio/resources/images/chelsea.png",
        "/usr/lib/python3/dist-packages/imageio/resources/images/astronaut.png",
        "/usr/lib/python3/dist-packages/skimage/data/coffee.png", "/usr/share/darknet/data/dog.jpg",
        "/usr/share/darknet/data/person.jpg", "/usr/share/darknet/data/horses.jpg",
        "/usr/share/darknet/data/eagle.jpg", "/usr/share/darknet/data/giraffe.jpg",
        "/usr/share/darknet/data/kite.jpg", "/usr/share/darknet/data/scream.jpg"})
    if (std::filesystem::exists(p)) paths.push_back(p);
  return paths;
}

}  // namespace

TEST_CASE("colour: CIEDE2000 on Sharma, Wu and Dalal's test pairs", "[node][colour]") {
  // Table 1 of G. Sharma, W. Wu, E. N. Dalal, "The CIEDE2000 color-difference
  // formula: implementation notes, supplementary test data, and mathematical
  // observations", Color Res. Appl. 30(1):21-30, 2005: L1 a1 b1, L2 a2 b2, dE00.
  const double pairs[34][7] = {
      {50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425},
      {50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615},
      {50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412},
      {50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000},
      {50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000},
      {50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000},
      {50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669},
      {50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669},
      {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792},
      {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792},
      {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195},
      {50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195},
      {50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045},
      {50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045},
      {50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461},
      {50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065},
      {50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492},
      {50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977},
      {50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030},
      {50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535},
      {50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000},
      {50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000},
      {50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000},
      {50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000},
      {60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644},
      {63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630},
      {61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731},
      {35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645},
      {22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373},
      {36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146},
      {90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441},
      {90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381},
      {6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377},
      {2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082},
  };
  for (size_t i = 0; i < 34; ++i) {
    const double* p = pairs[i];
    const Lab x{p[0], p[1], p[2]}, y{p[3], p[4], p[5]};
    CAPTURE(i + 1);
    REQUIRE(ciede2000(x, y) == Approx(p[6]).margin(5e-5));  // the paper rounds to 4 decimals
    REQUIRE(ciede2000(y, x) == Approx(p[6]).margin(5e-5));
  }
  REQUIRE(ciede2000({50, 10, -10}, {50, 10, -10}) == 0.0);
}

TEST_CASE("colour: the CSS palette, one name per value, each its own nearest name", "[node][colour]") {
  std::set<std::string> seen_names;
  std::set<uint32_t> seen_values;
  for (const NamedColour& c : css_colours()) {
    seen_names.insert(c.name);
    seen_values.insert(uint32_t{c.r} << 16 | uint32_t{c.g} << 8 | c.b);
    const Naming n = nearest_css_colour(srgb_to_lab(c.r, c.g, c.b));
    CAPTURE(c.name);
    REQUIRE(std::string(n.colour->name) == c.name);
    REQUIRE(n.delta_e < 1e-9);
    const auto back = lab_to_srgb(srgb_to_lab(c.r, c.g, c.b));
    REQUIRE((back[0] == c.r && back[1] == c.g && back[2] == c.b));
  }
  // CSS Color 4 has 148 keywords; 9 are synonyms (aqua, fuchsia, 7 "grey").
  REQUIRE(css_colours().size() == 139);
  REQUIRE(seen_names.size() == 139);
  REQUIRE(seen_values.size() == 139);
  for (const char* synonym : {"aqua", "fuchsia", "grey", "darkgrey", "lightslategrey"})
    REQUIRE(!seen_names.count(synonym));
  // Published values (CSS Color 4): rebeccapurple #663399, navy #000080, crimson #dc143c.
  REQUIRE(
      (css("rebeccapurple").r == 0x66 && css("rebeccapurple").g == 0x33 && css("rebeccapurple").b == 0x99));
  REQUIRE((css("navy").r == 0 && css("navy").g == 0 && css("navy").b == 0x80));
  REQUIRE((css("crimson").r == 0xdc && css("crimson").g == 0x14 && css("crimson").b == 0x3c));
}

TEST_CASE("colour: generated images, known colours and proportions", "[node][colour]") {
  const std::vector<std::vector<Part>> palettes = {
      {{"red", 0.6}, {"navy", 0.3}, {"white", 0.1}},
      // Near neighbours: names whose colours are just over 2 CIEDE2000 units
      // apart (maroon-darkred 2.3, purple-darkmagenta 2.4, pink-lightpink 2.7,
      // navy-midnightblue 5.6).
      {{"maroon", 0.45}, {"darkred", 0.35}, {"navy", 0.1}, {"midnightblue", 0.1}},
      {{"purple", 0.4}, {"darkmagenta", 0.3}, {"pink", 0.2}, {"lightpink", 0.1}},
      {{"crimson", 0.5}, {"red", 0.3}, {"firebrick", 0.2}},
      {{"gold", 0.4}, {"yellow", 0.35}, {"orange", 0.25}},
      {{"black", 0.25}, {"dimgray", 0.25}, {"silver", 0.25}, {"white", 0.25}},
      {{"forestgreen", 0.55}, {"seagreen", 0.3}, {"lime", 0.1}, {"teal", 0.05}},
      {{"saddlebrown", 0.7}, {"tan", 0.2}, {"skyblue", 0.1}},
  };
  for (const auto& parts : palettes) {
    for (Layout layout : {Layout::stripes, Layout::blocks, Layout::scatter}) {
      for (uint32_t size : {uint32_t{160}, uint32_t{640}}) {
        std::vector<double> actual;
        const Image im = generate(size, size * 3 / 4, parts, layout, 3, &actual);
        CAPTURE(parts.front().name, static_cast<int>(layout), size);
        const auto sets = analyse(im, 5);
        REQUIRE(sets.size() == 1);
        // Within 2 points of the pixels each colour really got, and of the nominal share
        // (the layouts round the proportions to pixels, stripes and tiles).
        require_parts(sets[0], parts, actual);
        std::vector<double> nominal;
        for (const Part& p : parts) nominal.push_back(p.share);
        require_parts(sets[0], parts, nominal);
        for (const DominantColour& c : sets[0].colours) REQUIRE(c.delta_e < 2.0);
      }
    }
  }
}

TEST_CASE("colour: k = 1 gives the mean colour; k larger than the colours merges names", "[node][colour]") {
  const std::vector<Part> parts = {{"red", 0.6}, {"navy", 0.3}, {"white", 0.1}};
  std::vector<double> actual;
  const Image im = generate(200, 150, parts, Layout::blocks, 3, &actual);
  const auto one = analyse(im, 1);
  REQUIRE(one[0].colours.size() == 1);
  REQUIRE(one[0].colours[0].share == 1.0);
  for (uint32_t k : {3u, 8u, 16u}) {
    CAPTURE(k);
    require_parts(analyse(im, k)[0], parts, actual);
  }
  // A single colour with k = 16: one name, all of the pixels.
  const Image flat = generate(64, 48, {{"teal", 1.0}}, Layout::blocks, 0);
  const auto set = analyse(flat, 16)[0];
  REQUIRE(set.colours.size() == 1);
  REQUIRE(set.colours[0].name == "teal");
  REQUIRE((set.colours[0].r == 0 && set.colours[0].g == 0x80 && set.colours[0].b == 0x80));
  REQUIRE(set.colours[0].delta_e < 1e-3);
}

TEST_CASE("colour: colours closer than 2 CIEDE2000 units are one colour", "[node][colour]") {
  // navy #000080 and darkblue #00008b are 1.6 apart: below what a person
  // tells apart side by side, so one colour with both shares.
  REQUIRE(ciede2000(srgb_to_lab(0, 0, 0x80), srgb_to_lab(0, 0, 0x8b)) < 2.0);
  std::vector<double> actual;
  const Image im =
      generate(200, 150, {{"navy", 0.45}, {"darkblue", 0.35}, {"white", 0.2}}, Layout::blocks, 3, &actual);
  const auto set = analyse(im, 5)[0];
  INFO(names(set));
  REQUIRE(set.colours.size() == 2);
  const std::string blue = set.colours[0].name;
  REQUIRE((blue == "navy" || blue == "darkblue"));
  REQUIRE(std::fabs(set.colours[0].share - (actual[0] + actual[1])) <= 0.02);
  REQUIRE(set.colours[1].name == "white");
}

TEST_CASE("colour: the same answer on every run", "[node][colour]") {
  const Image im = generate(320, 240, {{"olive", 0.5}, {"peru", 0.3}, {"plum", 0.2}}, Layout::scatter, 20);
  const auto a = analyse(im, 6), b = analyse(im, 6);
  REQUIRE(names(a[0]) == names(b[0]));
}

TEST_CASE("colour: regions get their own colours, after the whole image", "[node][colour]") {
  // Left 3/4 red, right 1/4 navy, with a white square inside the red part.
  Image im{400, 200, PixelFormat::rgb, std::vector<uint8_t>(400 * 200 * 3)};
  for (uint32_t y = 0; y < 200; ++y)
    for (uint32_t x = 0; x < 400; ++x) {
      Rgb8 c = x < 300 ? css("red") : css("navy");
      if (x >= 50 && x < 100 && y >= 50 && y < 100) c = css("white");
      uint8_t* p = &im.pixels[(size_t{y} * 400 + x) * 3];
      p[0] = c.r, p[1] = c.g, p[2] = c.b;
    }
  const auto sets =
      analyse(im, 4, {{300, 0, 400, 200}, {250, 0, 350, 100}, {50, 50, 100, 100}, {40.5f, 60, 99.5f, 100}});
  REQUIRE(sets.size() == 5);
  const double white_share = 2500.0 / (400 * 200);
  require_parts(sets[0], {{"red", 0}, {"navy", 0}, {"white", 0}}, {0.75 - white_share, 0.25, white_share});
  require_parts(sets[1], {{"navy", 1}}, {1.0});
  require_parts(sets[2], {{"red", 0}, {"navy", 0}}, {0.5, 0.5});
  require_parts(sets[3], {{"white", 1}}, {1.0});
  // Pixels 40..99 (the box overlaps them) x 60..99: 10 of 60 columns red.
  require_parts(sets[4], {{"white", 0}, {"red", 0}}, {50.0 / 60, 10.0 / 60});
  REQUIRE(sets[2].box.x0 == 250);
  REQUIRE(sets[0].box.x1 == 400);
}

TEST_CASE("colour: bad k and bad regions are refused, naming the problem", "[node][colour]") {
  const Image im = generate(100, 80, {{"red", 1}}, Layout::blocks, 0);
  for (uint32_t k : {0u, 17u, 1000u}) {
    CAPTURE(k);
    REQUIRE_THROWS_AS(analyse(im, k), BadRequest);
    REQUIRE_THROWS_WITH(analyse(im, k), Catch::Contains("colours must be 1 to 16") &&
                                            Catch::Contains("got " + std::to_string(k)));
  }
  const float nan = std::nanf("");
  const float inf = INFINITY;
  struct Bad {
    Box box;
    const char* says;
  };
  const Bad bad[] = {
      {{nan, 0, 10, 10}, "not a number"},
      {{0, 0, inf, 10}, "not a number"},
      {{10, 10, 10, 20}, "is empty"},
      {{10, 20, 20, 10}, "is empty"},
      {{-1, 0, 10, 10}, "not inside the 100x80 image"},
      {{0, 0, 101, 10}, "not inside the 100x80 image"},
      {{0, 70, 10, 81}, "not inside the 100x80 image"},
      {{200, 200, 300, 300}, "not inside"},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.says);
    REQUIRE_THROWS_AS(analyse(im, 3, {{0, 0, 10, 10}, b.box}), BadRequest);
    REQUIRE_THROWS_WITH(analyse(im, 3, {{0, 0, 10, 10}, b.box}),
                        Catch::Contains("region 1") && Catch::Contains(b.says));
  }
  // Through the task too: run() throws BadRequest, before any work.
  auto task = open_task({"colour", "", 1})->make();
  Timings timings;
  TaskOptions options;
  options.colours = 0;
  REQUIRE_THROWS_AS(task->run(im, options, timings), BadRequest);
  REQUIRE_THROWS_WITH(open_task({"colour", "model.hdm", 1}), Catch::Contains("takes no model"));
}

TEST_CASE("colour: gray input and RGBA input (alpha < 128 ignored)", "[node][colour]") {
  Image gray{100, 100, PixelFormat::gray, std::vector<uint8_t>(100 * 100)};
  for (uint32_t y = 0; y < 100; ++y)
    for (uint32_t x = 0; x < 100; ++x) gray.pixels[y * 100 + x] = x < 30 ? 0 : x < 70 ? 128 : 255;
  require_parts(analyse(gray)[0], {{"black", 0}, {"gray", 0}, {"white", 0}}, {0.3, 0.4, 0.3});

  Image rgba{100, 100, PixelFormat::rgba, std::vector<uint8_t>(100 * 100 * 4)};
  for (uint32_t y = 0; y < 100; ++y)
    for (uint32_t x = 0; x < 100; ++x) {
      uint8_t* p = &rgba.pixels[(y * 100 + x) * 4];
      // Left half transparent red (alpha 0..127, ignored); right half opaque (alpha 128..255):
      // 3/4 blue, 1/4 orange.
      const bool opaque = x >= 50;
      const Rgb8 c = !opaque ? css("red") : y < 75 ? css("blue") : css("orange");
      p[0] = c.r, p[1] = c.g, p[2] = c.b,
      p[3] = static_cast<uint8_t>(opaque ? 128 + (x + y) % 128 : (x + y) % 128);
    }
  const auto sets = analyse(rgba, 5, {{0, 0, 50, 100}});
  require_parts(sets[0], {{"blue", 0}, {"orange", 0}}, {0.75, 0.25});
  REQUIRE(sets[1].colours.empty());  // a fully transparent region has no colours
  REQUIRE(sets[1].samples == 0);
}

TEST_CASE("colour: the task's result in the schema, as text and drawn", "[node][colour]") {
  std::vector<double> actual;
  const Image im =
      generate(320, 240, {{"red", 0.6}, {"navy", 0.3}, {"white", 0.1}}, Layout::stripes, 3, &actual);
  auto task = open_task({"colour", "", 1})->make();
  Timings timings;
  TaskOptions options;
  options.colours = 5;
  options.regions = {{0, 0, 160, 120}};
  const auto result = task->run(im, options, timings);
  REQUIRE(timings.preprocess_ms > 0);
  REQUIRE(timings.inference_ms > 0);

  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<huddle::protocol::schema::Result>();
  result->write(root);
  REQUIRE(root.isColour());
  const auto colour = root.asReader().getColour();
  const auto image = colour.getImage();
  REQUIRE(image.getBox().getX1() == 320);
  REQUIRE(image.getColours().size() == 3);
  REQUIRE(std::string(image.getColours()[0].getName().cStr()) == "red");
  REQUIRE(std::fabs(image.getColours()[0].getShare() - actual[0]) <= 0.02);
  REQUIRE(image.getColours()[1].getB() > 100);  // navy's mean colour
  REQUIRE(colour.getRegions().size() == 1);
  REQUIRE(colour.getRegions()[0].getBox().getX1() == 160);

  const std::string text = result->text();
  INFO(text);
  REQUIRE(text.rfind("colour: red 6", 0) == 0);
  REQUIRE(text.find("colour: navy 3") != std::string::npos);
  REQUIRE(text.find("colour region 0: red") != std::string::npos);
  REQUIRE(std::count(text.begin(), text.end(), '\n') == 6);

  // Drawn: the bottom rows become the palette strip, the red bar first.
  Image canvas = im;
  result->annotate(canvas);
  REQUIRE(canvas.pixels != im.pixels);
  const uint8_t* corner = &canvas.pixels[(size_t{239} * 320 + 1) * 3];
  REQUIRE((corner[0] > 200 && corner[1] < 40 && corner[2] < 40));
}

// The hue family of a CSS colour, from its CIELAB hue angle h and chroma C
// (sRGB red has h = 40 degrees, yellow 102, green 136, blue 306):
// "neutral" below C = 10, else warm (red, orange, brown, yellow:
// h < 115 or h >= 345), green (115..200), blue (200..315), purple (315..345).
std::string family(const std::string& name) {
  const Rgb8 c = css(name);
  const Lab lab = srgb_to_lab(c.r, c.g, c.b);
  const double chroma = std::hypot(lab.a, lab.b);
  double h = std::atan2(lab.b, lab.a) * 180 / std::numbers::pi;
  if (h < 0) h += 360;
  if (chroma < 10) return "neutral";
  if (h < 115 || h >= 345) return "warm";
  if (h < 200) return "green";
  if (h < 315) return "blue";
  return "purple";
}

TEST_CASE("colour: CIELAB hue families of the test's reading of names", "[node][colour]") {
  // The helper the photo test relies on, against names whose family nobody doubts.
  for (const char* n : {"red", "tan", "saddlebrown", "peru", "orange", "gold", "rosybrown", "maroon"})
    REQUIRE(family(n) == "warm");
  for (const char* n : {"green", "olivedrab", "darkolivegreen", "forestgreen", "lime"})
    REQUIRE(family(n) == "green");
  for (const char* n : {"blue", "navy", "lightsteelblue", "royalblue", "skyblue", "steelblue"})
    REQUIRE(family(n) == "blue");
  for (const char* n : {"black", "white", "gray", "dimgray", "silver", "gainsboro"})
    REQUIRE(family(n) == "neutral");
}

TEST_CASE("colour: real photos", "[node][colour]") {
  // What a person looking at each photo would certainly agree with (I looked
  // at them): the share of each hue family among its five colours.
  struct Expect {
    const char* file;
    const char* largest_family;           // the family of the largest colour
    std::map<std::string, double> least;  // family -> at least this share
    std::map<std::string, double> most;   // family -> at most this share
  };
  const Expect expects[] = {
      // A tabby cat, brown and beige, on a brownish blurred background.
      {"chelsea.png", "warm", {{"warm", 0.8}}, {{"blue", 0}, {"green", 0}, {"purple", 0}}},
      // An astronaut in an orange suit before a gray backdrop, a flag at the left.
      {"astronaut.png", "neutral", {{"warm", 0.15}}, {{"green", 0}}},
      // A cup of coffee on a saucer, browns and reds.
      {"coffee.png", "warm", {{"warm", 0.6}}, {{"blue", 0}, {"green", 0}}},
      // A dog, a red bicycle, a yellow wall, a gray porch.
      {"dog.jpg", "neutral", {{"neutral", 0.3}}, {{"blue", 0.1}}},
      // A man in a blue jacket, a dog and a white horse on dry grass under a pale blue sky.
      {"person.jpg", "warm", {{"warm", 0.4}, {"blue", 0.15}}, {{"green", 0.1}}},
      // Horses on dry grass under a gray-blue sky.
      {"horses.jpg", "", {{"warm", 0.25}, {"blue", 0.15}}, {{"green", 0.1}}},
      // A giraffe and a zebra before green foliage.
      {"giraffe.jpg", "green", {{"green", 0.4}}, {{"blue", 0}}},
      // Munch's The Scream: orange sky, dark blue-green water, brown bridge.
      {"scream.jpg", "", {{"warm", 0.3}}, {}},
  };
  const auto paths = photo_paths();
  if (paths.empty()) FAIL("no photos installed (imageio's, darknet's: scripts/models installs them)");
  size_t checked = 0;
  for (const std::string& path : paths) {
    const std::string file = std::filesystem::path(path).filename();
    const Expect* e = nullptr;
    for (const Expect& x : expects)
      if (file == x.file) e = &x;
    if (!e) continue;
    const auto set = analyse(read_image(path), 5)[0];
    CAPTURE(path);
    INFO(names(set));
    std::map<std::string, double> share;
    for (const DominantColour& c : set.colours) share[family(c.name)] += c.share;
    REQUIRE(!set.colours.empty());
    if (*e->largest_family) REQUIRE(family(set.colours[0].name) == e->largest_family);
    for (const auto& [f, at_least] : e->least) {
      CAPTURE(f);
      REQUIRE(share[f] >= at_least);
    }
    for (const auto& [f, at_most] : e->most) {
      CAPTURE(f);
      REQUIRE(share[f] <= at_most);
    }
    ++checked;
  }
  REQUIRE(checked > 0);
}

// Writes each photo annotated with its colours (and a few regions) to
// $HUDDLE_COLOUR_OUT (default ./colour-annotated) for a person to look at.
TEST_CASE("colour: annotated photos for a person to judge", "[.][photos]") {
  const char* env = std::getenv("HUDDLE_COLOUR_OUT");
  const std::filesystem::path dir = env ? env : "colour-annotated";
  std::filesystem::create_directories(dir);
  auto task = open_task({"colour", "", 1})->make();
  for (const std::string& path : photo_paths()) {
    Image im = read_image(path);
    TaskOptions options;
    options.colours = 5;
    const float w = static_cast<float>(im.width), h = static_cast<float>(im.height);
    options.regions = {{w * 0.05f, h * 0.05f, w * 0.35f, h * 0.4f},
                       {w * 0.4f, h * 0.45f, w * 0.75f, h * 0.9f}};
    Timings timings;
    const auto result = task->run(im, options, timings);
    Image canvas = rgb_canvas(im);
    result->annotate(canvas);
    const auto out = dir / (std::filesystem::path(path).stem().string() + ".colour.png");
    write_png(out.string(), canvas);
    std::printf("%s -> %s\n%s", path.c_str(), out.c_str(), result->text().c_str());
  }
}

TEST_CASE("colour: drawing clips, and the font inks only inside each label's box", "[node][colour]") {
  Image canvas{60, 20, PixelFormat::rgb, std::vector<uint8_t>(60 * 20 * 3, 0)};
  const std::string label = "tan 61%";
  REQUIRE(text_width(label, 1) == 41);  // 7 glyphs of 5 columns, 1 apart
  draw_text(canvas, 3, 4, label, 1, {255, 255, 255});
  size_t inside = 0;
  for (uint32_t y = 0; y < 20; ++y)
    for (uint32_t x = 0; x < 60; ++x) {
      const bool ink = canvas.pixels[(y * 60 + x) * 3] == 255;
      const bool in_box = x >= 3 && x < 3 + 41 && y >= 4 && y < 4 + 7;
      if (ink) REQUIRE(in_box);
      inside += ink;
    }
  REQUIRE(inside > 30);
  // Every glyph the names and shares use has ink; an unknown character draws as '?'.
  for (char c : std::string("abcdefghijklmnopqrstuvwxyz0123456789%.#?")) {
    Image one{5, 7, PixelFormat::rgb, std::vector<uint8_t>(5 * 7 * 3, 0)};
    draw_text(one, 0, 0, std::string(1, c), 1, {255, 0, 0});
    CAPTURE(c);
    REQUIRE(std::count(one.pixels.begin(), one.pixels.end(), 255) >= 3);
  }
  // Anything outside the canvas is clipped; a canvas that is not RGB is refused untouched.
  fill_rect(canvas, -100, -100, 1000, 1000, {1, 2, 3});
  REQUIRE((canvas.pixels[0] == 1 && canvas.pixels.back() == 3));
  Image gray{10, 10, PixelFormat::gray, std::vector<uint8_t>(100, 7)};
  REQUIRE_THROWS_AS(outline_rect(gray, 0, 0, 10, 10, 2, {255, 255, 255}), std::invalid_argument);
  REQUIRE_THROWS_AS(draw_text(gray, 0, 0, "red", 2, {255, 255, 255}), std::invalid_argument);
  REQUIRE(std::count(gray.pixels.begin(), gray.pixels.end(), 7) == 100);
}
