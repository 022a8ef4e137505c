// `huddle convert`: an ONNX or TensorFlow.js model becomes an fp32 .hdm model file, with the
// image preprocessing and labels a node needs, from the command line or a
// sidecar file.
#include <capnp/message.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/interpreter.h"
#include "engine/model_file.h"
#include "engine/sha256.h"
#include "models/import/onnx.h"
#include "models/import/tfjs.h"
#include "tools/commands.h"
#include "tools/convert.h"

namespace huddle::tools {
namespace {

constexpr const char* kConvertHelp =
    "usage: huddle convert MODEL -o model.hdm [options]\n"
    "\n"
    "Converts a model into an fp32 huddle model file. MODEL is an ONNX model\n"
    "(.onnx, opsets up to 17) or a TensorFlow.js graph model (model.json, its\n"
    "weight shards beside it). Unsupported ops or attributes are all listed in\n"
    "one error.\n"
    "\n"
    "Options:\n"
    "  -o, --output PATH        the .hdm to write (required; written atomically)\n"
    "  --input-shape NAME=D,D,..  fixes an input's symbolic dimensions (default 1)\n"
    "  --nhwc-input             4-D inputs are channels-last (N,H,W,C) instead of\n"
    "                           ONNX's N,C,H,W (what the image pipeline feeds)\n"
    "  --no-optimize            keep the graph as imported (no fusion or folding)\n"
    "  --outputs NAME,...       TensorFlow.js: the graph outputs by node name (default:\n"
    "                           the signature's), e.g. a detector's raw heads\n"
    "Image preprocessing and labels (stored in the model; flags override the sidecar):\n"
    "  --sidecar FILE           'key = value' lines with the keys below ('#' comments)\n"
    "  --task NAME              task = classify | detect | ...\n"
    "  --labels FILE            labels = FILE: one label per line (relative to the sidecar)\n"
    "  --size WxH               size = 224x224: the input image size\n"
    "  --mean A,B,C             mean = per-channel mean of 0..255 pixel values\n"
    "  --std A,B,C              std = per-channel standard deviation (nonzero)\n"
    "  --colour rgb|bgr|gray    colour = channel order (default rgb)\n"
    "  --resize stretch|letterbox|center-crop   resize = how the image is fitted\n"
    "  --crop F                 crop = with center-crop, the centred fraction kept\n"
    "                           (0 < F <= 1; default 1; torchvision's 256 -> 224: 0.875)\n"
    "  --detector centernet|nanodet   detector = how task detect decodes the outputs\n"
    "                           (see engine/model.capnp, struct Detector)\n"
    "  --score-threshold S      score-threshold = the detector's default lowest score\n"
    "                           reported (0 < S < 1; default 0.3)\n"
    "Exit status: 0 written, 1 the model cannot be converted or written, 2 usage error.\n";

[[noreturn]] void usage_error(const std::string& what) { throw std::invalid_argument(what); }

std::vector<float> parse_floats(const std::string& text, const char* key) {
  std::vector<float> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    char* end = nullptr;
    const float v = std::strtof(item.c_str(), &end);
    while (end && *end == ' ') ++end;
    if (item.empty() || *end) usage_error(std::string(key) + " '" + text + "' is not a list of numbers");
    out.push_back(v);
  }
  return out;
}

// Reads a sidecar of `key = value` lines into `p` (values already set by flags win).
void read_sidecar(const std::string& path, ConvertPreprocess& p) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open the sidecar (" + std::strerror(errno) + ")");
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    const auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t\r"));
      s.erase(s.find_last_not_of(" \t\r") + 1);
      return s;
    };
    line = trim(line);
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos)
      throw std::runtime_error(path + ":" + std::to_string(number) + ": expected 'key = value'");
    const std::string key = trim(line.substr(0, eq)), value = trim(line.substr(eq + 1));
    const std::map<std::string, std::string*> fields = {
        {"task", &p.task},   {"labels", &p.labels_path}, {"size", &p.size},    {"mean", &p.mean},
        {"std", &p.std_dev}, {"colour", &p.colour},      {"resize", &p.resize},
        {"crop", &p.crop},   {"detector", &p.detector}, {"score-threshold", &p.score_threshold}};
    const auto it = fields.find(key);
    if (it == fields.end())
      throw std::runtime_error(path + ":" + std::to_string(number) + ": unknown key '" + key +
                               "' (task, labels, size, mean, std, colour, resize, crop, detector, score-threshold)");
    if (it->second->empty()) *it->second = key == "labels" && value[0] != '/' ? dir + value : value;
  }
}

std::vector<std::string> read_labels(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open the labels (" + std::strerror(errno) + ")");
  std::vector<std::string> labels;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  while (!labels.empty() && labels.back().empty()) labels.pop_back();
  return labels;
}

// Fills the model's preprocessing from `p`; throws std::invalid_argument naming the bad value.
void set_preprocess(const ConvertPreprocess& p, bool nhwc, engine::schema::Model::Builder model) {
  auto pre = model.initPreprocess();
  pre.setLayout(nhwc ? engine::schema::Preprocess::Layout::NHWC : engine::schema::Preprocess::Layout::NCHW);
  if (!p.size.empty()) {
    unsigned w = 0, h = 0;
    char x = 0, extra = 0;
    if (std::sscanf(p.size.c_str(), "%u%c%u%c", &w, &x, &h, &extra) != 3 || x != 'x' || w == 0 || h == 0 ||
        w > 65536 || h > 65536)
      usage_error("size '" + p.size + "' is not WxH (e.g. 224x224)");
    pre.setWidth(w);
    pre.setHeight(h);
  }
  const std::string colour = p.colour.empty() ? "rgb" : p.colour;
  if (colour == "rgb")
    pre.setColourOrder(engine::schema::Preprocess::ColourOrder::RGB);
  else if (colour == "bgr")
    pre.setColourOrder(engine::schema::Preprocess::ColourOrder::BGR);
  else if (colour == "gray")
    pre.setColourOrder(engine::schema::Preprocess::ColourOrder::GRAY);
  else
    usage_error("colour '" + colour + "' is not rgb, bgr or gray");
  const std::string resize = p.resize.empty() ? "stretch" : p.resize;
  if (resize == "stretch")
    pre.setResize(engine::schema::Preprocess::Resize::STRETCH);
  else if (resize == "letterbox")
    pre.setResize(engine::schema::Preprocess::Resize::LETTERBOX);
  else if (resize == "center-crop")
    pre.setResize(engine::schema::Preprocess::Resize::CENTER_CROP);
  else
    usage_error("resize '" + resize + "' is not stretch, letterbox or center-crop");
  if (!p.crop.empty()) {
    const std::vector<float> crop = parse_floats(p.crop, "crop");
    if (crop.size() != 1 || !(crop[0] > 0.0f && crop[0] <= 1.0f))
      usage_error("crop '" + p.crop + "' is not a fraction in (0, 1]");
    if (resize != "center-crop" && crop[0] != 1.0f) usage_error("crop needs resize center-crop");
    pre.setCrop(crop[0]);
  }
  const size_t channels = colour == "gray" ? 1 : 3;
  const auto mean = p.mean.empty() ? std::vector<float>(channels, 0.0f) : parse_floats(p.mean, "mean");
  const auto sd = p.std_dev.empty() ? std::vector<float>(channels, 1.0f) : parse_floats(p.std_dev, "std");
  if (mean.size() != channels || sd.size() != channels)
    usage_error("mean and std need " + std::to_string(channels) + " values each for colour " + colour);
  auto m = pre.initMean(static_cast<unsigned>(channels));
  auto s = pre.initStd(static_cast<unsigned>(channels));
  for (size_t c = 0; c < channels; ++c) {
    if (!(sd[c] != 0.0f)) usage_error("std has a zero value");
    m.set(static_cast<unsigned>(c), mean[c]);
    s.set(static_cast<unsigned>(c), sd[c]);
  }
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open (" + std::strerror(errno) + ")");
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

bool parse_convert_flag(int argc, char** argv, int& i, ConvertRequest& r) {
  const std::string arg = argv[i];
  const auto value = [&]() -> std::string {
    if (i + 1 >= argc) usage_error(arg + " needs a value");
    return argv[++i];
  };
  ConvertPreprocess& pre = r.pre;
  if (arg == "--input-shape") {
    const std::string v = value();
    const size_t eq = v.rfind('=');
    if (eq == std::string::npos || eq == 0) usage_error("--input-shape needs NAME=D,D,... (got '" + v + "')");
    engine::Shape shape;
    for (float d : parse_floats(v.substr(eq + 1), "--input-shape")) {
      if (d < 1 || d != static_cast<float>(static_cast<int64_t>(d)))
        usage_error("--input-shape '" + v + "' needs whole dimensions >= 1");
      shape.push_back(static_cast<int64_t>(d));
    }
    r.options.input_shapes[v.substr(0, eq)] = shape;
  } else if (arg == "--nhwc-input") {
    r.options.nhwc_inputs = true;
  } else if (arg == "--no-optimize") {
    r.options.optimize = false;
  } else if (arg == "--outputs") {
    std::stringstream ss(value());
    std::string name;
    while (std::getline(ss, name, ','))
      if (!name.empty()) r.options.outputs.push_back(name);
    if (r.options.outputs.empty()) usage_error("--outputs needs node names");
  } else if (arg == "--sidecar") {
    r.sidecar = value();
  } else if (arg == "--task") {
    pre.task = value();
  } else if (arg == "--labels") {
    pre.labels_path = value();
  } else if (arg == "--size") {
    pre.size = value();
  } else if (arg == "--mean") {
    pre.mean = value();
  } else if (arg == "--std") {
    pre.std_dev = value();
  } else if (arg == "--colour" || arg == "--color") {
    pre.colour = value();
  } else if (arg == "--resize") {
    pre.resize = value();
  } else if (arg == "--crop") {
    pre.crop = value();
  } else if (arg == "--detector") {
    pre.detector = value();
  } else if (arg == "--score-threshold") {
    pre.score_threshold = value();
  } else {
    return false;
  }
  return true;
}

std::vector<uint8_t> convert_model(ConvertRequest r, std::string* passes) {
  ConvertPreprocess& pre = r.pre;
  const std::string& source = r.source;
  if (!r.sidecar.empty()) read_sidecar(r.sidecar, pre);
  const std::vector<uint8_t> bytes = read_file(source);
  const bool tfjs = source.size() >= 5 && source.compare(source.size() - 5, 5, ".json") == 0;
  models::ImportResult imported =
      tfjs ? models::import_tfjs_file(source, r.options) : models::import_onnx_bytes(bytes, source, r.options);
  capnp::MallocMessageBuilder message;
  auto model = message.initRoot<engine::schema::Model>();
  engine::WeightsBuilder weights;
  engine::graph_to_model(imported.graph, model, weights);
  model.setTask(pre.task);
  if (!pre.labels_path.empty()) {
    const auto labels = read_labels(pre.labels_path);
    auto list = model.initLabels(static_cast<unsigned>(labels.size()));
    for (size_t k = 0; k < labels.size(); ++k) list.set(static_cast<unsigned>(k), labels[k]);
  }
  // A TF.js image input is channels-last unless its last axis cannot be channels.
  bool nhwc = r.options.nhwc_inputs;
  if (tfjs && !imported.graph.inputs.empty()) {
    const auto& in = imported.graph.tensors[static_cast<size_t>(imported.graph.inputs[0])].shape;
    nhwc = nhwc || (in.size() == 4 && in[3] <= 4);
  }
  set_preprocess(pre, nhwc, model);
  if (!pre.detector.empty()) {
    auto det = model.initDetector();
    if (pre.detector == "centernet")
      det.setHead(engine::schema::Detector::Head::CENTERNET);
    else if (pre.detector == "nanodet")
      det.setHead(engine::schema::Detector::Head::NANODET);
    else
      usage_error("detector '" + pre.detector + "' is not centernet or nanodet");
    if (pre.task.empty()) model.setTask("detect");
    if (!pre.score_threshold.empty()) {
      const std::vector<float> t = parse_floats(pre.score_threshold, "score-threshold");
      if (t.size() != 1 || !(t[0] > 0.0f && t[0] < 1.0f))
        usage_error("score-threshold '" + pre.score_threshold + "' is not a score in (0, 1)");
      det.setScoreThreshold(t[0]);
    }
  } else if (!pre.score_threshold.empty()) {
    usage_error("score-threshold needs a detector (--detector)");
  }
  auto prov = model.initProvenance();
  const size_t slash = source.rfind('/');
  prov.setSource(slash == std::string::npos ? source : source.substr(slash + 1));
  prov.setSourceSha256(engine::sha256_hex(bytes));
  prov.setProducer(tfjs ? std::string("huddle convert " HUDDLE_VERSION " (tensorflow.js graph model)")
                        : "huddle convert " HUDDLE_VERSION " (onnx, opset " + std::to_string(imported.opset) + ")");
  prov.setNotes("from " + (imported.producer.empty() ? std::string("an unnamed producer") : imported.producer) +
                (imported.passes.empty() ? "" : "; passes: " + imported.passes));
  if (passes) *passes = imported.passes;
  return engine::serialize_model(message, weights.bytes());
}

int convert(int argc, char** argv) {
  std::string output;
  ConvertRequest request;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--help" || arg == "-h") {
        std::fputs(kConvertHelp, stdout);
        return 0;
      } else if (arg == "-o" || arg == "--output") {
        if (i + 1 >= argc) usage_error(arg + " needs a value");
        output = argv[++i];
      } else if (parse_convert_flag(argc, argv, i, request)) {
      } else if (!arg.empty() && arg[0] == '-') {
        usage_error("unknown option '" + arg + "'");
      } else if (request.source.empty()) {
        request.source = arg;
      } else {
        usage_error("one model at a time (got '" + request.source + "' and '" + arg + "')");
      }
    }
    if (request.source.empty()) usage_error("no model given (an .onnx file or a TensorFlow.js model.json)");
    if (output.empty()) usage_error("no output given (-o model.hdm)");
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "huddle convert: %s (see 'huddle convert --help')\n", e.what());
    return 2;
  }

  try {
    std::string passes;
    const std::vector<uint8_t> file = convert_model(request, &passes);
    // Check the engine prepares what will be written before writing it.
    const engine::ModelFile check = engine::ModelFile::from_bytes(file, output);
    engine::Interpreter it(engine::graph_from_file(check));
    engine::write_model_bytes(output, file);
    std::printf("%s: %zu nodes, %zu weight bytes, arena %zu bytes%s%s\n", output.c_str(), it.graph().nodes.size(),
                check.weights_bytes(), it.arena_bytes(), passes.empty() ? "" : "; ", passes.c_str());
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "huddle convert: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "huddle convert: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace huddle::tools
