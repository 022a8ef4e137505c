#include "tools/arguments.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "engine/npy.h"
#include "node/image.h"
#include "node/image_input.h"

namespace huddle::tools {
namespace {

// "name=path" -> {name, path}; "path" -> {"", path}. A '/' before the '='
// makes it a path, unless what precedes the '=' is one of `names` (TensorFlow
// names have slashes: "tower_0/wh=wh.npy").
std::pair<std::string, std::string> split_binding(const std::string& arg, const std::vector<std::string>& names) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos) return {"", arg};
  const std::string name = arg.substr(0, eq);
  if (name.find('/') != std::string::npos && std::find(names.begin(), names.end(), name) == names.end())
    return {"", arg};
  return {name, arg.substr(eq + 1)};
}

}  // namespace

bool parse_count(const char* command, const char* flag, const char* value, long lo, long hi, long* out) {
  char* end = nullptr;
  const long v = value ? std::strtol(value, &end, 10) : 0;
  if (!value || !*value || *end != '\0' || v < lo || v > hi) {
    std::fprintf(stderr, "huddle %s: %s needs a whole number from %ld to %ld\n", command, flag, lo, hi);
    return false;
  }
  *out = v;
  return true;
}

bool parse_fraction(const char* command, const char* flag, const char* value, float* out) {
  char* end = nullptr;
  const float v = value ? std::strtof(value, &end) : 0.0f;
  if (!value || !*value || *end != '\0' || !(v >= 0.0f && v <= 1.0f)) {
    std::fprintf(stderr, "huddle %s: %s needs a number from 0 to 1\n", command, flag);
    return false;
  }
  *out = v;
  return true;
}

std::vector<std::pair<size_t, std::string>> resolve_bindings(const std::vector<std::string>& bindings,
                                                             const std::vector<std::string>& names,
                                                             const char* what) {
  std::vector<std::pair<size_t, std::string>> out;
  size_t next = 0;
  for (const std::string& b : bindings) {
    const auto [name, path] = split_binding(b, names);
    size_t index = names.size();
    if (name.empty()) {
      index = next++;
    } else {
      for (size_t i = 0; i < names.size(); ++i)
        if (names[i] == name) index = i;
    }
    if (index >= names.size()) {
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
      throw std::runtime_error(std::string("no model ") + what + " " +
                               (name.empty() ? "left for '" + path + "'" : "'" + name + "'") +
                               " (the model's " + what + "s: " + list + ")");
    }
    out.emplace_back(index, path);
  }
  return out;
}

std::vector<std::string> input_names(const engine::Interpreter& it) {
  std::vector<std::string> names;
  for (size_t i = 0; i < it.input_count(); ++i) names.push_back(it.input(i).name);
  return names;
}

std::vector<std::string> output_names(const engine::Interpreter& it) {
  std::vector<std::string> names;
  for (size_t i = 0; i < it.output_count(); ++i) names.push_back(it.output(i).name);
  return names;
}

engine::NpyArray read_input_tensor(const std::string& path, const std::string& name, engine::DType dtype,
                                   const engine::Shape& shape, const engine::ModelFile& model) {
  using namespace huddle::engine;
  if (node::is_image_file(path)) {
    if (dtype != DType::f32)
      throw std::runtime_error(path + ": an image, but input '" + name + "' is " + dtype_text(dtype) +
                               " (images feed f32 inputs)");
    const node::InputPreprocess pre = node::input_preprocess(model, model.name());
    const node::Image image = node::read_image(path);
    std::vector<float> values;
    try {
      values = node::image_to_input(image, pre, shape);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(path + ": for input '" + name + "': " + e.what());
    }
    const auto* bytes = reinterpret_cast<const uint8_t*>(values.data());
    return {DType::f32, shape, std::vector<uint8_t>(bytes, bytes + values.size() * sizeof(float))};
  }
  NpyArray a = read_npy(path);
  if (a.dtype != dtype || a.shape != shape)
    throw std::runtime_error(path + ": " + dtype_text(a.dtype) + " " + shape_text(a.shape) + ", but input '" +
                             name + "' is " + dtype_text(dtype) + " " + shape_text(shape));
  return a;
}

void read_input(engine::Interpreter& it, size_t index, const std::string& path, const engine::ModelFile& model) {
  const engine::Tensor& t = it.input(index);
  const engine::NpyArray a = read_input_tensor(path, t.name, t.dtype, t.shape, model);
  std::memcpy(it.input_data(index), a.data.data(), a.data.size());
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace huddle::tools
