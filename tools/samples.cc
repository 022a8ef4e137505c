#include "tools/samples.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <optional>

#include "engine/graph.h"
#include "engine/npy.h"
#include "node/image.h"
#include "node/image_input.h"

namespace huddle::tools {

namespace {

// Adds the samples of one .npy file.
void add_npy(const std::string& path, const engine::Tensor& input, size_t max, SampleSet& out) {
  const engine::NpyArray a = engine::read_npy(path);
  const int64_t per = engine::elements(input.shape);
  const bool one = a.shape == input.shape;
  const bool batch = !input.shape.empty() && input.shape[0] == 1 && a.shape.size() == input.shape.size() &&
                     std::equal(a.shape.begin() + 1, a.shape.end(), input.shape.begin() + 1);
  if (a.dtype != engine::DType::f32 || !(one || batch))
    throw std::runtime_error(path + ": " + engine::dtype_text(a.dtype) + " " + engine::shape_text(a.shape) +
                             ", but input '" + input.name + "' is f32 " + engine::shape_text(input.shape) +
                             " (or a batch of it along the first axis)");
  const auto* v = reinterpret_cast<const float*>(a.data.data());
  const int64_t count = per ? engine::elements(a.shape) / per : 0;
  for (int64_t s = 0; s < count && out.size() < max; ++s)
    out.push_back({std::vector<float>(v + s * per, v + (s + 1) * per)});
}

}  // namespace

SampleSet read_samples(const std::string& dir, const engine::ModelFile& model, size_t max) {
  const engine::Graph graph = engine::graph_from_file(model);
  if (graph.inputs.size() != 1)
    throw std::runtime_error("sample directories feed single-input models; this one has " +
                             std::to_string(graph.inputs.size()) + " inputs");
  const engine::Tensor& input = graph.tensors[static_cast<size_t>(graph.inputs[0])];
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_regular_file()) files.push_back(e.path().string());
  if (ec) throw std::runtime_error(dir + ": cannot read the directory (" + ec.message() + ")");
  std::sort(files.begin(), files.end());
  SampleSet out;
  std::optional<node::InputPreprocess> pre;  // read at the first image
  for (const std::string& f : files) {
    if (out.size() >= max) break;
    if (f.size() > 4 && f.compare(f.size() - 4, 4, ".npy") == 0) {
      add_npy(f, input, max, out);
    } else if (node::is_image_file(f)) {
      if (!pre) pre = node::input_preprocess(model, f);
      out.push_back({node::image_to_input(node::read_image(f), *pre, input.shape)});
    }
  }
  if (out.empty()) throw std::runtime_error(dir + ": no .npy, JPEG or PNG inputs for the model");
  return out;
}

}  // namespace huddle::tools
