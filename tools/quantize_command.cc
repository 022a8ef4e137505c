// `huddle quantize`: an fp32 model (.hdm, or ONNX converted on the way)
// becomes an int8 model, calibrated on sample inputs, with a fidelity report.
#include <capnp/message.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/graph.h"
#include "engine/interpreter.h"
#include "engine/model_file.h"
#include "engine/npy.h"
#include "models/quantize/calibrate.h"
#include "models/quantize/fidelity.h"
#include "models/quantize/quantize.h"
#include "tools/arguments.h"
#include "tools/commands.h"
#include "tools/convert.h"
#include "tools/samples.h"

namespace huddle::tools {
namespace {

using namespace huddle::quantize;

constexpr const char* kQuantizeHelp =
    "usage: huddle quantize model.hdm|model.onnx --calib DIR -o model.int8.hdm [options]\n"
    "\n"
    "Quantises an fp32 model to int8: weights int8 symmetric per output channel,\n"
    "activations int8 asymmetric per tensor from ranges calibrated by running the\n"
    "fp32 reference executor over sample inputs, biases int32. Prints a fidelity\n"
    "report (int8 against fp32 on the calibration and held-out inputs).\n"
    "\n"
    "Inputs (a directory's files in name order):\n"
    "  --calib DIR            calibration inputs (required): JPEG/PNG images,\n"
    "                         preprocessed as the model stores, or .npy tensors\n"
    "                         (one input, or a batch of them along the first axis)\n"
    "  --held-out DIR         more inputs the report checks, not used to calibrate\n"
    "  --held-out-labels FILE the held-out inputs' classes (.npy of integers, one\n"
    "                         per input): the report adds fp32 and int8 accuracy\n"
    "  --max-samples N        use at most N calibration inputs (default 64)\n"
    "Quantisation:\n"
    "  --method M             how a range is chosen from an activation's histogram:\n"
    "                         mse (default: least expected squared error),\n"
    "                         minmax, or percentile\n"
    "  --percentile P         the percentile method's quantile (default 99.99)\n"
    "  --keep-float LIST      keep these nodes fp32 (names as 'huddle info' lists),\n"
    "                         or 'auto': a sensitivity pass (one layer int8 at a\n"
    "                         time) ranks the layers, and the worst are kept fp32\n"
    "                         until the calibration cosine reaches --target\n"
    "  --target C             auto's cosine target (default 0.995)\n"
    "  --fc int8|codebook4|codebook8\n"
    "                         fully connected weights: int8 (default), or 4-/8-bit\n"
    "                         k-means codebook indices into an fp16 table per layer\n"
    "  --fc-layers LIST       the fully connected nodes --fc applies to (default all)\n"
    "  --float-weights f32|f16\n"
    "                         how the weights of the convolutions and fully\n"
    "                         connected layers left fp32 are stored: f32\n"
    "                         (default) or f16 (half the bytes; converted back\n"
    "                         to fp32 when the model loads)\n"
    "Output:\n"
    "  -o, --output PATH      the int8 .hdm to write (required; written atomically)\n"
    "  --report FILE          also write the report as JSON\n"
    "  --threads N            threads for calibration and checks (default: all cores)\n"
    "  --quiet                no progress bars\n"
    "An ONNX model is converted first; the options of 'huddle convert' apply\n"
    "(--input-shape, --nhwc-input, --sidecar, --size, --mean, --std, ...).\n"
    "Exit status: 0 written, 1 the model cannot be quantised or written, 2 usage error.\n";

[[noreturn]] void usage_error(const std::string& what) { throw std::invalid_argument(what); }

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

double parse_number(const std::string& flag, const std::string& text, double lo, double hi) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end || !(v >= lo && v <= hi))
    usage_error(flag + " needs a number from " + std::to_string(lo) + " to " + std::to_string(hi) + " (got '" +
                text + "')");
  return v;
}

// A progress bar on stderr: "label [#####     ] 12/40".
class ProgressBar {
 public:
  ProgressBar(const char* label, bool quiet) : label_(label), quiet_(quiet), tty_(isatty(2)) {}
  void operator()(size_t done, size_t total) const {
    if (quiet_ || !(tty_ || done == total)) return;
    const size_t width = 30, filled = total ? done * width / total : width;
    std::fprintf(stderr, "\r%-12s [%s%s] %zu/%zu%s", label_, std::string(filled, '#').c_str(),
                 std::string(width - filled, ' ').c_str(), done, total, done == total ? "\n" : "");
    std::fflush(stderr);
  }

 private:
  const char* label_;
  bool quiet_, tty_;
};

std::string json_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string fidelity_json(const SetFidelity& f) {
  std::string s = "{\"samples\": " + std::to_string(f.samples);
  if (f.top1 >= 0) s += ", \"top1_agreement\": " + json_number(f.top1) + ", \"top5_agreement\": " + json_number(f.top5);
  s += ", \"outputs\": [";
  for (size_t i = 0; i < f.outputs.size(); ++i) {
    const OutputFidelity& o = f.outputs[i];
    s += std::string(i ? ", " : "") + "{\"name\": " + json_string(o.name) + ", \"mean_cosine\": " +
         json_number(o.mean_cosine) + ", \"min_cosine\": " + json_number(o.min_cosine) +
         ", \"max_abs_error\": " + json_number(o.max_abs_error) +
         ", \"max_abs_fp32\": " + json_number(o.max_abs_reference) + "}";
  }
  return s + "]}";
}

void print_fidelity(const char* set, const SetFidelity& f) {
  if (f.samples == 0) return;
  std::printf("%s (%zu inputs):", set, f.samples);
  if (f.top1 >= 0) std::printf(" top-1 agreement %.1f%%, top-5 %.1f%%;", 100 * f.top1, 100 * f.top5);
  std::printf("\n");
  for (const OutputFidelity& o : f.outputs)
    std::printf("  %s: cosine mean %.5f min %.5f, max abs error %.4g (fp32 values up to %.4g)\n", o.name.c_str(),
                o.mean_cosine, o.min_cosine, o.max_abs_error, o.max_abs_reference);
}

struct Request {
  ConvertRequest convert;
  std::string calib, held_out, held_labels, output, report;
  size_t max_samples = 64, threads = 0;
  QuantizeOptions options;
  bool auto_keep = false, quiet = false;
  double target = 0.995;
};

Request parse(int argc, char** argv, bool* help) {
  Request r;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return r;
    } else if (arg == "-o" || arg == "--output") {
      r.output = value();
    } else if (arg == "--calib") {
      r.calib = value();
    } else if (arg == "--held-out") {
      r.held_out = value();
    } else if (arg == "--held-out-labels") {
      r.held_labels = value();
    } else if (arg == "--max-samples") {
      r.max_samples = static_cast<size_t>(parse_number(arg, value(), 1, 100000));
    } else if (arg == "--method") {
      const std::string v = value();
      const auto m = parse_range_method(v);
      if (!m) usage_error("--method '" + v + "' is not mse, minmax or percentile");
      r.options.method = *m;
    } else if (arg == "--percentile") {
      r.options.percentile = parse_number(arg, value(), 50, 100);
    } else if (arg == "--keep-float") {
      const std::string v = value();
      if (v == "auto")
        r.auto_keep = true;
      else
        for (const std::string& n : split_list(v)) r.options.keep_float.insert(n);
    } else if (arg == "--target") {
      r.target = parse_number(arg, value(), 0, 1);
    } else if (arg == "--fc") {
      const std::string v = value();
      if (v == "int8")
        r.options.fc = FcMode::int8;
      else if (v == "codebook4")
        r.options.fc = FcMode::codebook4;
      else if (v == "codebook8")
        r.options.fc = FcMode::codebook8;
      else
        usage_error("--fc '" + v + "' is not int8, codebook4 or codebook8");
    } else if (arg == "--float-weights") {
      const std::string v = value();
      if (v != "f32" && v != "f16") usage_error("--float-weights '" + v + "' is not f32 or f16");
      r.options.half_float_weights = v == "f16";
    } else if (arg == "--fc-layers") {
      for (const std::string& n : split_list(value())) r.options.fc_layers.insert(n);
    } else if (arg == "--report") {
      r.report = value();
    } else if (arg == "--threads") {
      r.threads = static_cast<size_t>(parse_number(arg, value(), 1, 256));
    } else if (arg == "--quiet") {
      r.quiet = true;
    } else if (parse_convert_flag(argc, argv, i, r.convert)) {
    } else if (!arg.empty() && arg[0] == '-') {
      usage_error("unknown option '" + arg + "'");
    } else if (r.convert.source.empty()) {
      r.convert.source = arg;
    } else {
      usage_error("one model at a time (got '" + r.convert.source + "' and '" + arg + "')");
    }
  }
  if (r.convert.source.empty()) usage_error("no model given");
  if (r.output.empty()) usage_error("no output given (-o model.int8.hdm)");
  if (r.calib.empty()) usage_error("no calibration inputs given (--calib DIR)");
  if (!r.held_labels.empty() && r.held_out.empty()) usage_error("--held-out-labels needs --held-out");
  if (r.threads == 0) r.threads = std::max(1u, std::thread::hardware_concurrency());
  return r;
}

// Class labels from an .npy of integers (any integer dtype the reader knows).
std::vector<int64_t> read_labels(const std::string& path) {
  const engine::NpyArray a = engine::read_npy(path);
  std::vector<int64_t> out(static_cast<size_t>(engine::elements(a.shape)));
  for (size_t i = 0; i < out.size(); ++i) switch (a.dtype) {
      case engine::DType::i64:
        out[i] = reinterpret_cast<const int64_t*>(a.data.data())[i];
        break;
      case engine::DType::i32:
        out[i] = reinterpret_cast<const int32_t*>(a.data.data())[i];
        break;
      case engine::DType::u8:
        out[i] = a.data[i];
        break;
      default:
        throw std::runtime_error(path + ": labels must be integers (got " + engine::dtype_text(a.dtype) + ")");
    }
  return out;
}

// True for a file that does not start like a .hdm but is named *.onnx.
bool is_onnx(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  const bool hdm = in.gcount() == 4 && std::memcmp(magic + 1, "HDM", 3) == 0;
  return !hdm && path.size() > 5 && path.compare(path.size() - 5, 5, ".onnx") == 0;
}

int run(const Request& r) {
  // The fp32 model: the .hdm as given, or the ONNX converted in memory.
  std::vector<uint8_t> fp32_bytes;
  engine::ModelFile source = [&] {
    if (!is_onnx(r.convert.source)) return engine::ModelFile::open(r.convert.source);
    fp32_bytes = convert_model(r.convert);
    return engine::ModelFile::from_bytes(fp32_bytes, r.convert.source);
  }();
  const size_t source_bytes = std::filesystem::file_size(r.convert.source);
  const engine::Graph fp32 = engine::graph_from_file(source);
  for (const engine::Node& n : fp32.nodes)
    if (n.op == "Quantize" || n.op == "Dequantize" || n.op == "CodebookFullyConnected")
      throw std::runtime_error(r.convert.source + ": the model is already quantised (node '" + n.name + "')");

  const Samples calib = read_samples(r.calib, source, r.max_samples);
  const Samples held = r.held_out.empty() ? Samples{} : read_samples(r.held_out, source, 100000);
  const std::vector<int64_t> labels = r.held_labels.empty() ? std::vector<int64_t>{} : read_labels(r.held_labels);
  if (!labels.empty() && labels.size() != held.size())
    throw std::runtime_error(r.held_labels + ": " + std::to_string(labels.size()) + " labels for " +
                             std::to_string(held.size()) + " held-out inputs");

  const std::vector<Histogram> hist =
      calibrate(fp32, calib, r.threads, ProgressBar("calibrating", r.quiet));
  for (size_t t = 0; t < hist.size(); ++t)
    if (hist[t].non_finite())
      throw std::runtime_error("tensor '" + fp32.tensors[t].name +
                               "' took infinite or NaN values during calibration");

  QuantizeOptions options = r.options;
  const Outputs calib_ref = run_graph(fp32, calib, r.threads);
  std::vector<LayerSensitivity> ranking;
  std::vector<std::string> auto_kept;
  if (r.auto_keep) {
    ranking = sensitivity(fp32, hist, options, calib, calib_ref, r.threads, ProgressBar("sensitivity", r.quiet));
    auto_kept = keep_float_until(fp32, hist, options, ranking, r.target, calib, calib_ref, r.threads,
                                 ProgressBar("keep float", r.quiet));
  }
  QuantizedGraph q = quantize_graph(fp32, hist, options);

  // The int8 model keeps the source's task, labels, preprocessing and detector head.
  const auto src_model = source.model();
  capnp::MallocMessageBuilder message;
  auto model = message.initRoot<engine::schema::Model>();
  engine::WeightsBuilder weights;
  engine::graph_to_model(q.graph, model, weights);
  model.setTask(src_model.getTask());
  model.setLabels(src_model.getLabels());
  model.setPreprocess(src_model.getPreprocess());
  if (src_model.hasDetector()) model.setDetector(src_model.getDetector());
  auto prov = model.initProvenance();
  prov.setSource(src_model.getProvenance().getSource());
  prov.setSourceSha256(src_model.getProvenance().getSourceSha256());
  prov.setProducer(std::string("huddle quantize " HUDDLE_VERSION " (") + range_method_name(options.method) +
                   " ranges, fc " + fc_mode_name(options.fc) + ")");
  prov.setNotes(std::to_string(q.int8_nodes) + " nodes int8, " + std::to_string(q.float_nodes.size()) +
                " fp32; calibrated on " + std::to_string(calib.size()) + " inputs; fp32 model by " +
                src_model.getProvenance().getProducer().cStr());
  const std::vector<uint8_t> file = engine::serialize_model(message, weights.bytes());
  const engine::ModelFile check = engine::ModelFile::from_bytes(file, r.output);
  const engine::Graph int8 = engine::graph_from_file(check);

  std::vector<std::string> names;
  for (int t : int8.outputs) names.push_back(int8.tensors[static_cast<size_t>(t)].name);
  const SetFidelity on_calib = compare(calib_ref, run_graph(int8, calib, r.threads), names);
  const Outputs held_fp32 = run_graph(fp32, held, r.threads), held_int8 = run_graph(int8, held, r.threads);
  const SetFidelity on_held = compare(held_fp32, held_int8, names);
  engine::write_model_bytes(r.output, file);

  // The report.
  std::printf("%s: %zu bytes (%s: %zu bytes, %.3fx)\n", r.output.c_str(), file.size(), r.convert.source.c_str(),
              source_bytes, static_cast<double>(file.size()) / static_cast<double>(source_bytes));
  std::printf("ranges: %s; %zu nodes int8 (%zu fully connected as codebooks), %zu fp32 (%zu with f16 weights)\n",
              range_method_name(options.method), q.int8_nodes, q.codebook_nodes, q.float_nodes.size(),
              q.half_weights);
  for (const FloatNode& f : q.float_nodes)
    std::printf("  fp32: %s (%s): %s%s\n", f.name.c_str(), f.op.c_str(), f.reason.c_str(),
                std::find(auto_kept.begin(), auto_kept.end(), f.name) != auto_kept.end() ? " [auto]" : "");
  print_fidelity("calibration", on_calib);
  print_fidelity("held-out", on_held);
  const double acc_fp32 = accuracy(held_fp32, labels), acc_int8 = accuracy(held_int8, labels);
  if (!labels.empty())
    std::printf("held-out accuracy: fp32 %.2f%%, int8 %.2f%% (%+.2f points)\n", 100 * acc_fp32, 100 * acc_int8,
                100 * (acc_int8 - acc_fp32));
  if (!r.report.empty()) {
    std::string j = "{\n  \"model\": " + json_string(r.convert.source) + ",\n  \"output\": " + json_string(r.output) +
                    ",\n  \"method\": " + json_string(range_method_name(options.method)) +
                    ",\n  \"fc\": " + json_string(fc_mode_name(options.fc)) +
                    ",\n  \"bytes\": {\"source\": " + std::to_string(source_bytes) +
                    ", \"int8\": " + std::to_string(file.size()) + ", \"ratio\": " +
                    json_number(static_cast<double>(file.size()) / static_cast<double>(source_bytes)) + "}" +
                    ",\n  \"int8_nodes\": " + std::to_string(q.int8_nodes) +
                    ",\n  \"codebook_nodes\": " + std::to_string(q.codebook_nodes) +
                    ",\n  \"half_weight_nodes\": " + std::to_string(q.half_weights) + ",\n  \"float_nodes\": [";
    for (size_t i = 0; i < q.float_nodes.size(); ++i) {
      const FloatNode& f = q.float_nodes[i];
      const bool automatic = std::find(auto_kept.begin(), auto_kept.end(), f.name) != auto_kept.end();
      j += std::string(i ? ", " : "") + "{\"name\": " + json_string(f.name) + ", \"op\": " + json_string(f.op) +
           ", \"reason\": " + json_string(automatic ? "sensitivity (--keep-float auto)" : f.reason) + "}";
    }
    j += "],\n  \"calibration\": " + fidelity_json(on_calib);
    if (!held.empty()) j += ",\n  \"held_out\": " + fidelity_json(on_held);
    if (!labels.empty())
      j += ",\n  \"held_out_accuracy\": {\"fp32\": " + json_number(acc_fp32) + ", \"int8\": " + json_number(acc_int8) +
           "}";
    if (!ranking.empty()) {
      j += ",\n  \"sensitivity\": [";
      for (size_t i = 0; i < ranking.size(); ++i)
        j += std::string(i ? ", " : "") + "{\"name\": " + json_string(ranking[i].name) +
             ", \"op\": " + json_string(ranking[i].op) + ", \"cosine\": " + json_number(ranking[i].cosine) + "}";
      j += "]";
    }
    j += "\n}\n";
    const std::string tmp = r.report + ".tmp";
    {
      std::ofstream out(tmp, std::ios::binary);
      out << j;
      if (!out) throw std::runtime_error(r.report + ": cannot write the report");
    }
    std::filesystem::rename(tmp, r.report);
  }
  return 0;
}

}  // namespace

int quantize(int argc, char** argv) {
  Request r;
  try {
    bool help = false;
    r = parse(argc, argv, &help);
    if (help) {
      std::fputs(kQuantizeHelp, stdout);
      return 0;
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "huddle quantize: %s (see 'huddle quantize --help')\n", e.what());
    return 2;
  }
  try {
    return run(r);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "huddle quantize: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "huddle quantize: %s\n", e.what());
    return 1;
  }
}

}  // namespace huddle::tools
