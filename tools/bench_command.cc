// `huddle bench`: how fast a model runs on this device, and what it costs in
// memory (after TFLite's benchmark_model). Times the load, then warm-up and
// timed runs of one inference on fixed inputs.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/interpreter.h"
#include "engine/model_file.h"
#include "kernels/isa.h"
#include "tools/arguments.h"
#include "tools/commands.h"

namespace huddle::tools {
namespace {

using namespace huddle::engine;

constexpr const char* kHelp =
    "usage: huddle bench model.hdm [--threads N] [--runs N] [--warmup N]\n"
    "                   [--input random|x.npy|photo.jpg|name=x.npy ...] [--json]\n"
    "\n"
    "Measures one inference: loads the model (map, validate, build the graph,\n"
    "prepare the interpreter: the load time), fills the inputs once, runs the\n"
    "warm-up runs, then times the runs (wall clock per inference).\n"
    "  --threads N   threads of the interpreter (default 1)\n"
    "  --runs N      timed runs (default 50); median, min and max are reported\n"
    "  --warmup N    runs before the timed ones, not timed (default 5)\n"
    "  --input ...   what each input holds, in the model's input order or by\n"
    "                name (name=...): 'random' (the default for every input not\n"
    "                given: seeded uniform values, in [-1, 1) for floats, over\n"
    "                the int8 range for integers, 0..255 for u8) or a .npy file\n"
    "                whose dtype and shape match the input, or an image (PNG or\n"
    "                JPEG) preprocessed as the model stores, as for 'huddle infer'.\n"
    "  --json        print one JSON object instead of text (with every run's time)\n"
    "Also reported: the arena (bytes, and its lower bound), the process's peak\n"
    "resident memory (KiB), the model file's size and the kernel variant.\n"
    "Exit status: 0 ok, 1 bad model or tensor file, 2 usage error.\n";

struct Options {
  std::string model;
  long threads = 1, runs = 50, warmup = 5;
  std::vector<std::string> inputs;
  bool json = false;
};

// The options, or the exit status of a usage error (or of --help) in *status.
bool parse_options(int argc, char** argv, Options* o, int* status) {
  *status = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kHelp, stdout);
      *status = 0;
      return false;
    } else if (arg == "--threads" || arg == "--runs" || arg == "--warmup") {
      const bool ok = arg == "--threads" ? parse_count("bench", argv[i], value, 1, 256, &o->threads)
                      : arg == "--runs"  ? parse_count("bench", argv[i], value, 1, 1000000, &o->runs)
                                         : parse_count("bench", argv[i], value, 0, 1000000, &o->warmup);
      if (!ok) return false;
      ++i;
    } else if (arg == "--input") {
      if (!value) {
        std::fputs("huddle bench: --input needs a value (see 'huddle bench --help')\n", stderr);
        return false;
      }
      o->inputs.push_back(argv[++i]);
    } else if (arg == "--json") {
      o->json = true;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "huddle bench: unknown option '%s' (see 'huddle bench --help')\n", arg.c_str());
      return false;
    } else if (o->model.empty()) {
      o->model = arg;
    } else {
      std::fprintf(stderr, "huddle bench: one model only ('%s' and '%s')\n", o->model.c_str(), arg.c_str());
      return false;
    }
  }
  if (o->model.empty()) {
    std::fputs(kHelp, stderr);
    return false;
  }
  return true;
}

// An IEEE half with the value k / 1024 (|k| <= 1024: exact in a half).
uint16_t half_of_k_1024(int k) {
  if (k == 0) return 0;
  const uint16_t sign = k < 0 ? 0x8000 : 0;
  unsigned m = static_cast<unsigned>(k < 0 ? -k : k);
  int e = 0;
  while ((m >> (e + 1)) != 0) ++e;  // m = 2^e * 1.f, value = 2^(e - 10) * 1.f
  return static_cast<uint16_t>(sign | ((e - 10 + 15) << 10) | ((m << (10 - e)) & 0x3ff));
}

// Sets each of the `n` values at `data` to draw().
template <class T, class Draw>
void fill(void* data, size_t n, Draw draw) {
  T* p = static_cast<T*>(data);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<T>(draw());
}

// Fills input `index` with seeded uniform values of its dtype (see kHelp).
void fill_random(Interpreter& it, size_t index) {
  const Tensor& t = it.input(index);
  const size_t n = static_cast<size_t>(elements(t.shape));
  void* data = it.input_data(index);
  std::mt19937 gen(static_cast<uint32_t>(1234 + index));
  std::uniform_real_distribution<float> real(-1.0f, 1.0f);
  std::uniform_int_distribution<int> int8(-128, 127), uint8(0, 255), k1024(-1024, 1023);
  switch (t.dtype) {
    case DType::f32:
      return fill<float>(data, n, [&] { return real(gen); });
    case DType::f16:
      return fill<uint16_t>(data, n, [&] { return half_of_k_1024(k1024(gen)); });
    case DType::i8:
      return fill<int8_t>(data, n, [&] { return int8(gen); });
    case DType::u8:
      return fill<uint8_t>(data, n, [&] { return uint8(gen); });
    case DType::i32:
      return fill<int32_t>(data, n, [&] { return int8(gen); });
    case DType::i64:
      return fill<int64_t>(data, n, [&] { return int8(gen); });
  }
}

struct Stats {
  double median, min, max;
};

// The median (of the middle two for an even count), min and max of `ms`.
Stats stats(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  const size_t mid = ms.size() / 2;
  const double median = ms.size() % 2 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2;
  return {median, ms.front(), ms.back()};
}

// Milliseconds from `start` to now on the steady clock.
double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int bench(int argc, char** argv) {
  Options o;
  int status = 0;
  if (!parse_options(argc, argv, &o, &status)) return status;
  try {
    auto start = std::chrono::steady_clock::now();
    const ModelFile file = ModelFile::open(o.model);
    Interpreter it(graph_from_file(file), InterpreterOptions{static_cast<size_t>(o.threads)});
    const double load_ms = ms_since(start);

    std::vector<std::string> sources(it.input_count(), "random");
    for (const auto& [index, source] : resolve_bindings(o.inputs, input_names(it), "input"))
      sources[index] = source;
    for (size_t i = 0; i < sources.size(); ++i) {
      if (sources[i] == "random")
        fill_random(it, i);
      else
        read_input(it, i, sources[i], file);
    }

    for (long r = 0; r < o.warmup; ++r) it.run();
    std::vector<double> ms;
    ms.reserve(static_cast<size_t>(o.runs));
    for (long r = 0; r < o.runs; ++r) {
      start = std::chrono::steady_clock::now();
      it.run();
      ms.push_back(ms_since(start));
    }
    const Stats t = stats(ms);
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const long peak_rss_kib = usage.ru_maxrss;  // Linux: KiB
    const char* isa = kernels::isa_name(kernels::selected_isa());

    if (o.json) {
      std::string inputs;
      for (size_t i = 0; i < sources.size(); ++i)
        inputs += (i ? ", {" : "{") + std::string("\"name\": ") + json_string(it.input(i).name) +
                  ", \"dtype\": \"" + dtype_text(it.input(i).dtype) +
                  "\", \"shape\": " + shape_text(it.input(i).shape) +
                  ", \"source\": " + json_string(sources[i]) + "}";
      std::string times;
      for (const double v : ms) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%.6f", times.empty() ? "" : ", ", v);
        times += buf;
      }
      std::printf(
          "{\"engine\": \"huddle\", \"version\": \"%s\", \"model\": %s, \"model_bytes\": %zu, "
          "\"isa\": \"%s\", \"threads\": %ld, \"warmup\": %ld, \"runs\": %ld, \"load_ms\": %.4f, "
          "\"median_ms\": %.6f, \"min_ms\": %.6f, \"max_ms\": %.6f, \"arena_bytes\": %zu, "
          "\"peak_live_bytes\": %zu, \"peak_rss_kib\": %ld, \"inputs\": [%s], \"times_ms\": [%s]}\n",
          HUDDLE_VERSION, json_string(o.model).c_str(), file.file_bytes(), isa, o.threads, o.warmup, o.runs,
          load_ms, t.median, t.min, t.max, it.arena_bytes(), it.peak_live_bytes(), peak_rss_kib,
          inputs.c_str(), times.c_str());
    } else {
      std::printf("%s: %zu bytes, %ld thread(s), kernels %s\n", o.model.c_str(), file.file_bytes(), o.threads,
                  isa);
      for (size_t i = 0; i < sources.size(); ++i)
        std::printf("input %s %s %s: %s\n", it.input(i).name.c_str(), dtype_text(it.input(i).dtype),
                    shape_text(it.input(i).shape).c_str(), sources[i].c_str());
      std::printf("load:      %.3f ms (map, validate, graph, prepare)\n", load_ms);
      std::printf("inference: median %.4f ms, min %.4f ms, max %.4f ms (%ld runs after %ld warm-up)\n",
                  t.median, t.min, t.max, o.runs, o.warmup);
      std::printf("arena:     %zu bytes (lower bound %zu)\n", it.arena_bytes(), it.peak_live_bytes());
      std::printf("peak RSS:  %ld KiB\n", peak_rss_kib);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "huddle bench: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace huddle::tools
