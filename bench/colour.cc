// The colour task on one 640x480 image, one thread: median (min) thread CPU
// milliseconds per run over N runs after 3 warm-up runs, total and per stage
// (preprocess = subsample + CIELAB, inference = k-means, postprocess =
// naming). The image: a photo (PNG/JPEG path) cropped or padded to 640x480 at
// its top-left, or, without one, generated scenery (gradients, noise,
// blocks). HUDDLE_ISA=ref runs the scalar kernels for comparison.
//
// usage: bench/colour [photo] [--runs N] [--colours K]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench/clock.h"
#include "kernels/colour/colour.h"
#include "node/image.h"
#include "node/task.h"

using namespace huddle;

namespace {

node::Image scenery(uint32_t w, uint32_t h) {
  node::Image im{w, h, node::PixelFormat::rgb, std::vector<uint8_t>(size_t{w} * h * 3)};
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> noise(-12, 12);
  for (uint32_t y = 0; y < h; ++y)
    for (uint32_t x = 0; x < w; ++x) {
      uint8_t* p = &im.pixels[(size_t{y} * w + x) * 3];
      const int block = static_cast<int>((x / 80 + y / 60) % 4);
      const int base[4][3] = {{200, 60, 40}, {40, 90, 160}, {220, 220, 210}, {90, 140, 60}};
      for (int c = 0; c < 3; ++c)
        p[c] =
            static_cast<uint8_t>(std::clamp(base[block][c] + static_cast<int>(y / 16) + noise(rng), 0, 255));
    }
  return im;
}

// `im` cropped to (or padded with black to) w x h, as RGB.
node::Image fit(const node::Image& im, uint32_t w, uint32_t h) {
  node::Image out{w, h, node::PixelFormat::rgb, std::vector<uint8_t>(size_t{w} * h * 3)};
  const size_t ch = node::channels(im.format);
  for (uint32_t y = 0; y < std::min(h, im.height); ++y)
    for (uint32_t x = 0; x < std::min(w, im.width); ++x)
      for (size_t c = 0; c < 3; ++c)
        out.pixels[(size_t{y} * w + x) * 3 + c] =
            im.pixels[(size_t{y} * im.width + x) * ch + (ch == 1 ? 0 : c)];
  return out;
}

struct Stat {
  double median, min;
};

Stat stat(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front()};
}

}  // namespace

int main(int argc, char** argv) {
  std::string photo;
  size_t runs = 50;
  uint32_t colours = 5;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--runs") && i + 1 < argc)
      runs = std::strtoul(argv[++i], nullptr, 10);
    else if (!std::strcmp(argv[i], "--colours") && i + 1 < argc)
      colours = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    else if (argv[i][0] != '-')
      photo = argv[i];
    else {
      std::fprintf(stderr, "usage: %s [photo] [--runs N] [--colours K]\n", argv[0]);
      return 2;
    }
  }
  if (runs == 0) runs = 1;
  try {
    const node::Image image = photo.empty() ? scenery(640, 480) : fit(node::read_image(photo), 640, 480);
    auto task = node::open_task({"colour", "", 1})->make();
    node::TaskOptions options;
    options.colours = colours;
    std::vector<double> total, pre, infer, post;
    std::string text;
    for (size_t r = 0; r < runs + 3; ++r) {
      node::Timings t;
      const double start = bench::thread_seconds();
      auto result = task->run(image, options, t);
      const double ms = (bench::thread_seconds() - start) * 1e3;
      if (r < 3) {
        text = result->text();
        continue;
      }
      total.push_back(ms), pre.push_back(t.preprocess_ms), infer.push_back(t.inference_ms),
          post.push_back(t.postprocess_ms);
    }
    const Stat s = stat(total), a = stat(pre), b = stat(infer), c = stat(post);
    std::printf("colour task, 640x480 %s, k=%u, kernels %s, %zu runs, one thread (thread CPU ms)\n",
                photo.empty() ? "generated scenery" : photo.c_str(), colours, kernels::colour().name, runs);
    std::printf("  total       %.3f median  %.3f min\n", s.median, s.min);
    std::printf("  preprocess  %.3f median (subsample + CIELAB)\n", a.median);
    std::printf("  inference   %.3f median (k-means, 3 seeded runs)\n", b.median);
    std::printf("  postprocess %.3f median (naming, merging)\n", c.median);
    std::printf("%s", text.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench colour: %s\n", e.what());
    return 1;
  }
  return 0;
}
