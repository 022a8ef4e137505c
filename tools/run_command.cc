// `huddle run`: one task on images, standalone (DESIGN.md §1: no daemon, no
// network, no mDNS). Calls only node/task.h, so it serves every task in the
// registry.
#include <capnp/compat/json.h>
#include <capnp/message.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "node/image.h"
#include "node/task.h"
#include "protocol/huddle.capnp.h"
#include "tools/arguments.h"
#include "tools/commands.h"

namespace huddle::tools {
namespace {

constexpr const char* kRunUsage =
    "usage: huddle run --task TASK [--model MODEL.hdm] [--json] [--annotate PATH]\n"
    "                  [--top-k N] [--colours K] [--min-score S] [--max-objects N]\n"
    "                  [--region x0,y0,x1,y1 ...]\n"
    "                  [--threads N] image... | -\n";

constexpr const char* kRunAbout =
    "\n"
    "Runs one recognition task on images, standalone: no daemon, no network, no\n"
    "mDNS. Images are PNG or JPEG files (told by their first bytes; EXIF\n"
    "orientation applied); '-' reads one image's bytes from standard input.\n";

constexpr const char* kRunOptions =
    "\n"
    "Options:\n"
    "  --task TASK        the task to run (required; see Tasks above)\n"
    "  --model FILE       the model file (.hdm) for a task that needs one\n"
    "  --json             print one JSON object instead of text (see below)\n"
    "  --annotate PATH    write each image with its result drawn on it, as PNG;\n"
    "                     with several images PATH must hold '{}', replaced by\n"
    "                     each image's file name without folder and extension\n"
    "                     ('stdin' for -), e.g. --annotate 'out/{}.png'\n"
    "  --top-k N          classify: labels per image, best first (default 5; an N\n"
    "                     beyond the model's labels gives them all)\n"
    "  --colours K        colour: colours per image or region (default 5; 1..16)\n"
    "  --min-score S      detect: the lowest score reported, 0..1 (default 0: the\n"
    "                     model's own threshold)\n"
    "  --max-objects N    detect: at most N objects per image, best first\n"
    "                     (default 100; 1..1024)\n"
    "  --region x0,y0,x1,y1  a rectangle in pixels (x0 <= x < x1, y0 <= y < y1)\n"
    "                     for tasks that work per region (colour); repeatable\n"
    "  --threads N        engine threads (default 1; 1..256)\n"
    "\n"
    "Text output: each line of a result, prefixed with the image's name:\n"
    "  digit.png: classify: 7 (0.998), 1 (0.001)\n"
    "  dog.jpg: detect: dog 0.87 at (124, 219)-(312, 541)\n"
    "JSON output (--json): one object, printed when every image is done:\n"
    "  {\"task\": ..., \"model\": FILE NAME, \"modelSha256\": HEX,\n"
    "   \"images\": [{\"file\": NAME, \"result\": RESULT, \"timings\": TIMINGS}, ...]}\n"
    "  RESULT and TIMINGS are protocol/huddle.capnp's Result and Timings in Cap'n\n"
    "  Proto's JSON form (e.g. {\"classify\": {\"labels\": [{\"index\": 7, \"name\":\n"
    "  \"7\", \"score\": 0.998}]}}; timings in microseconds: decodeUs, preprocessUs,\n"
    "  inferenceUs, postprocessUs). An image that failed has {\"file\": NAME,\n"
    "  \"error\": MESSAGE} instead.\n"
    "\n"
    "A bad image is reported on standard error (its name and what is wrong) and\n"
    "the other images are still run.\n"
    "Exit status: 0 every image done, 1 a model or image could not be used,\n"
    "2 usage error (unknown task or option, no images).\n";

using Clock = std::chrono::steady_clock;

// One image to run: its name in output and where its bytes come from.
struct Input {
  std::string name;  // the path, or "stdin"
  bool stdin_bytes = false;
};

int usage_error(const std::string& message) {
  std::fprintf(stderr, "huddle run: %s (see 'huddle run --help')\n", message.c_str());
  return 2;
}

// "x0,y0,x1,y1" as a box with x0 < x1 and y0 < y1, all finite; false otherwise.
bool parse_region(const char* text, node::Box* box) {
  float v[4];
  const char* p = text;
  for (int i = 0; i < 4; ++i) {
    char* end = nullptr;
    v[i] = std::strtof(p, &end);
    if (end == p || !std::isfinite(v[i]) || *end != (i < 3 ? ',' : '\0')) return false;
    p = end + 1;
  }
  *box = {v[0], v[1], v[2], v[3]};
  return v[0] < v[2] && v[1] < v[3];
}

// The file name of `path` without its folder and last extension.
std::string stem(const std::string& path) {
  const size_t slash = path.rfind('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  const size_t dot = base.rfind('.');
  if (dot != std::string::npos && dot > 0) base.resize(dot);
  return base;
}

// PATH with every '{}' replaced by `name`.
std::string expand(const std::string& pattern, const std::string& name) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern.compare(i, 2, "{}") == 0) {
      out += name;
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

node::Image decode_input(const Input& input) {
  if (!input.stdin_bytes) return node::read_image(input.name);
  const node::DecodeLimits limits;
  std::vector<uint8_t> bytes;
  char buf[1 << 16];
  while (std::cin.read(buf, sizeof buf) || std::cin.gcount() > 0) {
    bytes.insert(bytes.end(), buf, buf + std::cin.gcount());
    if (bytes.size() > limits.max_file_bytes)
      throw node::ImageError(input.name + ": more than " + std::to_string(limits.max_file_bytes >> 20) +
                             " MiB (the largest image read)");
  }
  if (std::cin.bad()) throw node::ImageError(input.name + ": cannot be read");
  return node::decode_image(bytes, limits, input.name);
}

// `image` as the RGB canvas Result::annotate draws on (gray replicated, alpha dropped).
node::Image rgb_canvas(const node::Image& image) {
  const size_t n = size_t{image.width} * image.height, c = node::channels(image.format);
  node::Image out{image.width, image.height, node::PixelFormat::rgb, std::vector<uint8_t>(n * 3)};
  for (size_t i = 0; i < n; ++i)
    for (size_t ch = 0; ch < 3; ++ch) out.pixels[i * 3 + ch] = image.pixels[i * c + (c == 1 ? 0 : ch)];
  return out;
}

uint32_t to_us(double ms) { return static_cast<uint32_t>(std::lround(std::min(ms * 1000.0, 4.0e9))); }

}  // namespace

int run(int argc, char** argv) {
  node::TaskSpec spec;
  node::TaskOptions options;
  std::string annotate;
  bool json = false;
  std::vector<Input> inputs;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    const bool takes_value = arg == "--task" || arg == "--model" || arg == "--annotate" || arg == "--top-k" ||
                             arg == "--colours" || arg == "--region" || arg == "--threads" ||
                             arg == "--min-score" || arg == "--max-objects";
    if (takes_value && !value) return usage_error(arg + " needs a value");
    long n = 0;
    if (arg == "--help" || arg == "-h") {
      std::string tasks = "\nTasks:\n";
      for (const node::TaskInfo& t : node::tasks()) {
        char line[256];
        std::snprintf(line, sizeof line, "  %-10s %s%s\n", t.name, t.needs_model ? "(needs --model) " : "", t.summary);
        tasks += line;
      }
      std::printf("%s%s%s%s", kRunUsage, kRunAbout, tasks.c_str(), kRunOptions);
      return 0;
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--task") {
      spec.task = argv[++i];
    } else if (arg == "--model") {
      spec.model = argv[++i];
    } else if (arg == "--annotate") {
      annotate = argv[++i];
      if (annotate.empty()) return usage_error("--annotate needs a path");
    } else if (arg == "--top-k") {
      if (!parse_count("run", "--top-k", argv[++i], 1, 65535, &n)) return 2;
      options.top_k = static_cast<uint32_t>(n);
    } else if (arg == "--colours") {
      if (!parse_count("run", "--colours", argv[++i], 1, 255, &n)) return 2;
      options.colours = static_cast<uint32_t>(n);
    } else if (arg == "--min-score") {
      if (!parse_fraction("run", "--min-score", argv[++i], &options.min_score)) return 2;
    } else if (arg == "--max-objects") {
      if (!parse_count("run", "--max-objects", argv[++i], 1, 1024, &n)) return 2;
      options.max_objects = static_cast<uint32_t>(n);
    } else if (arg == "--threads") {
      if (!parse_count("run", "--threads", argv[++i], 1, 256, &n)) return 2;
      spec.threads = static_cast<size_t>(n);
    } else if (arg == "--region") {
      node::Box box;
      if (!parse_region(argv[++i], &box))
        return usage_error(std::string("--region needs x0,y0,x1,y1 with x0 < x1 and y0 < y1 ('") + argv[i] +
                           "' given)");
      options.regions.push_back(box);
    } else if (arg == "-") {
      for (const Input& in : inputs)
        if (in.stdin_bytes) return usage_error("'-' (standard input) can be given once only");
      inputs.push_back({"stdin", true});
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "huddle run: unknown option '%s' (see 'huddle run --help')\n", arg.c_str());
      return 2;
    } else {
      inputs.push_back({arg, false});
    }
  }
  if (spec.task.empty()) {
    std::fputs(kRunUsage, stderr);
    return usage_error("--task is required");
  }
  const node::TaskInfo* info = nullptr;
  std::string known;
  for (const node::TaskInfo& t : node::tasks()) {
    known += (known.empty() ? "" : ", ") + std::string(t.name);
    if (spec.task == t.name) info = &t;
  }
  if (!info) return usage_error("unknown task '" + spec.task + "' (this build has: " + known + ")");
  if (info->needs_model && spec.model.empty()) return usage_error("task '" + spec.task + "' needs --model FILE.hdm");
  if (!info->needs_model && !spec.model.empty())
    return usage_error("task '" + spec.task + "' takes no model ('" + spec.model + "' given)");
  if (inputs.empty()) {
    std::fputs(kRunUsage, stderr);
    return usage_error("no images given");
  }
  // Annotated files: one per image, never two images to one file.
  std::vector<std::string> annotated(inputs.size());
  if (!annotate.empty()) {
    if (inputs.size() > 1 && annotate.find("{}") == std::string::npos)
      return usage_error("--annotate with several images needs '{}' in the path (e.g. 'out/{}.png')");
    std::map<std::string, std::string> made_by;
    for (size_t k = 0; k < inputs.size(); ++k) {
      annotated[k] = expand(annotate, inputs[k].stdin_bytes ? "stdin" : stem(inputs[k].name));
      const auto [it, fresh] = made_by.emplace(annotated[k], inputs[k].name);
      if (!fresh)
        return usage_error("--annotate: '" + it->second + "' and '" + inputs[k].name + "' would both write '" +
                           annotated[k] + "'");
    }
  }

  std::unique_ptr<node::TaskFactory> factory;
  std::unique_ptr<node::Task> task;
  try {
    factory = node::open_task(spec);
    task = factory->make();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "huddle run: %s\n", e.what());
    return 1;
  }

  capnp::JsonCodec codec;
  std::string images_json;
  int status = 0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Input& input = inputs[k];
    std::string error;
    try {
      node::Timings timings;
      const auto start = Clock::now();
      const node::Image image = decode_input(input);
      timings.decode_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      std::unique_ptr<node::Result> result;
      try {
        result = task->run(image, options, timings);
      } catch (const node::BadRequest& e) {
        throw std::runtime_error(input.name + ": " + e.what());
      } catch (const node::ImageError&) {
        throw;
      } catch (const std::exception& e) {
        throw std::runtime_error(input.name + ": the task failed: " + e.what());
      }
      if (!annotated[k].empty()) {
        node::Image canvas = rgb_canvas(image);
        result->annotate(canvas);
        node::write_png(annotated[k], canvas);
      }
      if (json) {
        capnp::MallocMessageBuilder message;
        auto r = message.initRoot<protocol::schema::Result>();
        result->write(r);
        auto t = message.getOrphanage().newOrphan<protocol::schema::Timings>();
        t.get().setDecodeUs(to_us(timings.decode_ms));
        t.get().setPreprocessUs(to_us(timings.preprocess_ms));
        t.get().setInferenceUs(to_us(timings.inference_ms));
        t.get().setPostprocessUs(to_us(timings.postprocess_ms));
        images_json += std::string(images_json.empty() ? "" : ",\n  ") + "{\"file\": " + json_string(input.name) +
                       ", \"result\": " + codec.encode(r.asReader()).cStr() +
                       ", \"timings\": " + codec.encode(t.getReader()).cStr() + "}";
      } else {
        const std::string text = result->text();
        size_t begin = 0;
        while (begin < text.size()) {
          size_t end = text.find('\n', begin);
          if (end == std::string::npos) end = text.size();
          std::printf("%s: %.*s\n", input.name.c_str(), static_cast<int>(end - begin), text.c_str() + begin);
          begin = end + 1;
        }
        std::fflush(stdout);
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    if (!error.empty()) {
      std::fprintf(stderr, "huddle run: %s\n", error.c_str());
      status = 1;
      if (json)
        images_json += std::string(images_json.empty() ? "" : ",\n  ") + "{\"file\": " + json_string(input.name) +
                       ", \"error\": " + json_string(error) + "}";
    }
  }
  if (json)
    std::printf("{\"task\": %s, \"model\": %s, \"modelSha256\": %s,\n \"images\": [\n  %s]}\n",
                json_string(spec.task).c_str(), json_string(factory->model_name()).c_str(),
                json_string(factory->model_sha256()).c_str(), images_json.c_str());
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "huddle run: cannot write the results to standard output\n");
    return 1;
  }
  return status;
}

}  // namespace huddle::tools
