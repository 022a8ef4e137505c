// `bench/hdm-run`: loads a .hdm model, fills its one input from a .npy file
// and runs N inferences on one thread, then prints one line about the first
// output. Built in every build, core_only included (it needs only the engine),
// so that bench/run can count the AArch64 build's guest instructions per
// inference under qemu: the difference between runs with N = 2 and N = 1 is
// one inference, loading excluded.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include "engine/graph.h"
#include "engine/interpreter.h"
#include "engine/model_file.h"
#include "engine/npy.h"

namespace huddle::bench {
namespace {

using namespace huddle::engine;

constexpr const char* kHelp =
    "usage: hdm-run model.hdm x.npy [N]\n"
    "\n"
    "Loads the model (one thread), then N times (default 1) copies x.npy into\n"
    "its only input (the dtype and shape must match) and runs it; prints one line:\n"
    "the first output's name, shape, argmax and sum (f32 outputs).\n"
    "Exit status: 0 done, 1 bad model or input, 2 usage error.\n";

struct Options {
  std::string model, input;
  long runs = 1;
};

// The options, or the exit status of a usage error (or of --help) in *status.
bool parse_options(int argc, char** argv, Options* o, int* status) {
  *status = 2;
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::fputs(kHelp, stdout);
    *status = 0;
    return false;
  }
  if (argc < 3 || argc > 4) {
    std::fputs(kHelp, stderr);
    return false;
  }
  o->model = argv[1];
  o->input = argv[2];
  if (argc == 4) {
    char* end = nullptr;
    o->runs = std::strtol(argv[3], &end, 10);
    if (*argv[3] == '\0' || *end != '\0' || o->runs < 1 || o->runs > 1000000) {
      std::fprintf(stderr, "hdm-run: N needs an integer from 1 to 1000000, got '%s'\n", argv[3]);
      return false;
    }
  }
  return true;
}

int run(const Options& o) {
  const ModelFile file = ModelFile::open(o.model);
  Interpreter it(graph_from_file(file), InterpreterOptions{1});
  if (it.input_count() != 1) {
    std::fprintf(stderr, "hdm-run: %s has %zu inputs; this program feeds exactly one\n", o.model.c_str(),
                 it.input_count());
    return 1;
  }
  const NpyArray a = read_npy(o.input);
  const Tensor& in = it.input(0);
  if (a.dtype != in.dtype || a.shape != in.shape) {
    std::fprintf(stderr, "hdm-run: %s is %s %s, but input '%s' is %s %s\n", o.input.c_str(), dtype_text(a.dtype),
                 shape_text(a.shape).c_str(), in.name.c_str(), dtype_text(in.dtype), shape_text(in.shape).c_str());
    return 1;
  }
  // The input is copied in before every run, as a caller with a new image
  // would: the engine's arena may reuse the input's bytes once it is read.
  for (long r = 0; r < o.runs; ++r) {
    std::memcpy(it.input_data(0), a.data.data(), a.data.size());
    it.run();
  }

  const Tensor& out = it.output(0);
  std::printf("%s: %ld run(s), output '%s' %s %s", o.model.c_str(), o.runs, out.name.c_str(), dtype_text(out.dtype),
              shape_text(out.shape).c_str());
  if (out.dtype == DType::f32) {
    const float* v = static_cast<const float*>(it.output_data(0));
    const int64_t n = elements(out.shape);
    int64_t best = 0;
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      sum += v[i];
      if (v[i] > v[best]) best = i;
    }
    std::printf(", argmax %lld, sum %.6g", static_cast<long long>(best), sum);
  }
  std::printf("\n");
  return 0;
}

}  // namespace
}  // namespace huddle::bench

int main(int argc, char** argv) {
  huddle::bench::Options o;
  int status = 0;
  if (!huddle::bench::parse_options(argc, argv, &o, &status)) return status;
  try {
    return huddle::bench::run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hdm-run: %s\n", e.what());
    return 1;
  }
}
