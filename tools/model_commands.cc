// `huddle info` and `huddle infer`: a model file's contents, and one inference
// on raw tensors (.npy) or images for debugging and comparisons with other engines.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/interpreter.h"
#include "engine/model_file.h"
#include "engine/npy.h"
#include "engine/passes.h"
#include "engine/reference.h"
#include "tools/arguments.h"
#include "tools/commands.h"

namespace huddle::tools {
namespace {

using namespace huddle::engine;

constexpr const char* kInfoHelp =
    "usage: huddle info model.hdm [--nodes]\n"
    "\n"
    "Prints what a model file holds: producer, task, labels, inputs and outputs\n"
    "with their shapes, op types, weight bytes, and the activation arena the\n"
    "engine plans for it.\n"
    "  --nodes   also every node in execution order: name, op, output dtype and\n"
    "            shape (the names huddle quantize --keep-float takes)\n"
    "Exit status: 0 ok, 1 bad model file, 2 usage error.\n";

constexpr const char* kInferHelp =
    "usage: huddle infer model.hdm --input x.npy|photo.jpg [--input name=y.npy ...]\n"
    "                   --output out.npy [--output name=z.npy ...] [--threads N]\n"
    "                   [--reference]\n"
    "\n"
    "Runs one inference on raw tensors. Inputs are given in the model's input\n"
    "order, or by name; outputs likewise. Each .npy must match the input's dtype\n"
    "and shape exactly (see 'huddle info'). An input may also be an image (PNG\n"
    "or JPEG, told by its first bytes, EXIF orientation applied): it is resized\n"
    "and normalised as the model stores (huddle convert --size, --mean, --std,\n"
    "--colour, --resize) into an f32 input.\n"
    "  --reference  run the fp32 reference executor (plain Eigen code, double\n"
    "               accumulation, single-threaded) instead of the engine: the\n"
    "               oracle to compare the engine's outputs with. fp32 models only.\n"
    "Exit status: 0 ok, 1 bad model, tensor or image file, 2 usage error.\n";

// A graph input or output as the executor that runs it sees it.
struct Port {
  std::string name;
  DType dtype;
  Shape shape;
};

}  // namespace

int info(int argc, char** argv) {
  if (argc == 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
    std::fputs(kInfoHelp, stdout);
    return 0;
  }
  const bool nodes = argc == 3 && !std::strcmp(argv[2], "--nodes");
  if ((argc != 2 && !nodes) || argv[1][0] == '-') {
    std::fputs(kInfoHelp, stderr);
    return 2;
  }
  try {
    const ModelFile file = ModelFile::open(argv[1]);
    const auto model = file.model();
    std::printf("%s: %zu bytes, weights %zu bytes\n", argv[1], file.file_bytes(), file.weights_bytes());
    std::printf("producer: %s\n", model.getProvenance().getProducer().cStr());
    if (model.getProvenance().getSource().size())
      std::printf("source: %s (sha256 %s)\n", model.getProvenance().getSource().cStr(),
                  model.getProvenance().getSourceSha256().cStr());
    std::printf("task: %s, labels: %u\n", model.getTask().size() ? model.getTask().cStr() : "(none)",
                model.getLabels().size());
    Graph graph = graph_from_file(file);
    std::map<std::string, int> ops;
    for (const Node& n : graph.nodes) ++ops[n.op];
    std::printf("nodes: %zu (", graph.nodes.size());
    bool first = true;
    for (const auto& [op, count] : ops)
      std::printf("%s%s x%d", first ? "" : ", ", op.c_str(), count), first = false;
    std::printf(")\n");
    Graph optimized = graph_from_file(file);
    std::printf("passes would have: %s\n", optimize(optimized).text().c_str());
    Interpreter it(std::move(graph));
    for (size_t i = 0; i < it.input_count(); ++i)
      std::printf("input  %zu: %s %s %s\n", i, it.input(i).name.c_str(), dtype_text(it.input(i).dtype),
                  shape_text(it.input(i).shape).c_str());
    for (size_t i = 0; i < it.output_count(); ++i)
      std::printf("output %zu: %s %s %s\n", i, it.output(i).name.c_str(), dtype_text(it.output(i).dtype),
                  shape_text(it.output(i).shape).c_str());
    std::printf("arena: %zu bytes (lower bound %zu)\n", it.arena_bytes(), it.peak_live_bytes());
    if (nodes)
      for (size_t j = 0; j < it.graph().nodes.size(); ++j) {
        const Node& n = it.graph().nodes[j];
        const auto& out = it.graph().tensors[static_cast<size_t>(n.outputs[0])];
        std::printf("node %zu: %s (%s) -> %s %s\n", j, n.name.c_str(), n.op.c_str(), dtype_text(out.dtype),
                    shape_text(out.shape).c_str());
      }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "huddle info: %s\n", e.what());
    return 1;
  }
  return 0;
}

int infer(int argc, char** argv) {
  std::string model_path;
  std::vector<std::string> inputs, outputs;
  long threads = 1;
  bool reference = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kInferHelp, stdout);
      return 0;
    } else if ((arg == "--input" || arg == "--output" || arg == "--threads") && !has_value) {
      std::fprintf(stderr, "huddle infer: %s needs a value (see 'huddle infer --help')\n", arg.c_str());
      return 2;
    } else if (arg == "--reference") {
      reference = true;
    } else if (arg == "--input") {
      inputs.push_back(argv[++i]);
    } else if (arg == "--output") {
      outputs.push_back(argv[++i]);
    } else if (arg == "--threads") {
      if (!parse_count("infer", "--threads", argv[++i], 1, 256, &threads)) return 2;
    } else if (!arg.empty() && arg[0] == '-') {
      std::fprintf(stderr, "huddle infer: unknown option '%s' (see 'huddle infer --help')\n", arg.c_str());
      return 2;
    } else if (model_path.empty()) {
      model_path = arg;
    } else {
      std::fprintf(stderr, "huddle infer: one model only ('%s' and '%s')\n", model_path.c_str(), arg.c_str());
      return 2;
    }
  }
  if (model_path.empty() || inputs.empty() || outputs.empty()) {
    std::fputs(kInferHelp, stderr);
    return 2;
  }
  try {
    const ModelFile file = ModelFile::open(model_path);
    Graph graph = graph_from_file(file);
    std::optional<ReferenceExecutor> ref;
    std::optional<Interpreter> it;
    std::vector<Port> in_ports, out_ports;
    if (reference) {
      ref.emplace(graph);
      for (int t : ref->inputs()) in_ports.push_back({ref->name(t), DType::f32, ref->shape(t)});
      for (int t : ref->outputs()) out_ports.push_back({ref->name(t), DType::f32, ref->shape(t)});
    } else {
      it.emplace(std::move(graph), InterpreterOptions{static_cast<size_t>(threads)});
      for (size_t i = 0; i < it->input_count(); ++i)
        in_ports.push_back({it->input(i).name, it->input(i).dtype, it->input(i).shape});
      for (size_t i = 0; i < it->output_count(); ++i)
        out_ports.push_back({it->output(i).name, it->output(i).dtype, it->output(i).shape});
    }
    std::vector<std::string> in_names, out_names;
    for (const Port& p : in_ports) in_names.push_back(p.name);
    for (const Port& p : out_ports) out_names.push_back(p.name);
    const auto in_bind = resolve_bindings(inputs, in_names, "input");
    const auto out_bind = resolve_bindings(outputs, out_names, "output");
    std::vector<NpyArray> arrays(in_ports.size());
    std::vector<bool> given(in_ports.size(), false);
    for (const auto& [index, path] : in_bind) {
      const Port& p = in_ports[index];
      arrays[index] = read_input_tensor(path, p.name, p.dtype, p.shape, file);
      given[index] = true;
    }
    for (size_t i = 0; i < given.size(); ++i)
      if (!given[i]) throw std::runtime_error("input '" + in_names[i] + "' is not given (--input)");
    // Each output's bytes, in graph output order.
    std::vector<std::span<const uint8_t>> results;
    std::vector<std::vector<float>> ref_outputs;
    if (ref) {
      std::vector<std::span<const float>> values;
      for (const NpyArray& a : arrays)
        values.emplace_back(reinterpret_cast<const float*>(a.data.data()), a.data.size() / sizeof(float));
      ref_outputs = ref->run(values);
      for (const std::vector<float>& v : ref_outputs)
        results.emplace_back(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float));
    } else {
      for (size_t i = 0; i < arrays.size(); ++i)
        std::memcpy(it->input_data(i), arrays[i].data.data(), arrays[i].data.size());
      it->run();
      for (size_t i = 0; i < out_ports.size(); ++i)
        results.emplace_back(
            static_cast<const uint8_t*>(it->output_data(i)),
            static_cast<size_t>(elements(out_ports[i].shape)) * dtype_bytes(out_ports[i].dtype));
    }
    for (const auto& [index, path] : out_bind)
      write_npy(path, out_ports[index].dtype, out_ports[index].shape, results[index]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "huddle infer: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace huddle::tools
