// The classify task (DESIGN.md §8): any imported classifier (.hdm with labels
// and stored preprocessing) -> its top-k labels with probabilities.
//
// preprocess:  the model's stored preprocessing (node/image_input.h)
// model:       one f32 image input, one f32 output of shape [1, classes]
//              with classes = the number of stored labels
// postprocess: scores as probabilities, then the k best.
//
// Probabilities or logits: the output is used as it is when the graph's last
// op before it is a Softmax (looking through Reshape, Flatten, Squeeze and
// Dequantize), or when the row is already a distribution (every value in
// [0, 1], sum within 1e-3 of 1); otherwise it is taken as logits and softmax
// is applied. Softmax keeps the order, so the top-k labels are the same
// either way; only the scores differ.
#include "node/tasks/classify.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <set>
#include <string>

#include "engine/graph.h"
#include "engine/interpreter.h"
#include "node/draw.h"
#include "node/image_input.h"
#include "node/tasks/task_model.h"
#include "node/tasks/tasks.h"

namespace huddle::node {
namespace classify {

bool is_distribution(std::span<const float> scores) {
  double sum = 0;
  for (float s : scores) {
    if (!(s >= 0.0f && s <= 1.0f)) return false;
    sum += s;
  }
  return !scores.empty() && std::abs(sum - 1.0) <= kProbabilitySumTolerance;
}

std::vector<float> softmax(std::span<const float> logits) {
  const float top = *std::max_element(logits.begin(), logits.end());
  std::vector<double> e(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) sum += e[i] = std::exp(double{logits[i]} - top);
  std::vector<float> p(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) p[i] = static_cast<float>(e[i] / sum);
  return p;
}

std::vector<uint32_t> top_k(std::span<const float> scores, size_t k) {
  std::vector<uint32_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0u);
  k = std::min(k, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](uint32_t a, uint32_t b) { return scores[a] > scores[b] || (scores[a] == scores[b] && a < b); });
  order.resize(k);
  return order;
}

}  // namespace classify

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Label {
  uint32_t index;
  std::string name;
  float score;
};

class ClassifyResult final : public Result {
 public:
  explicit ClassifyResult(std::vector<Label> labels) : labels_(std::move(labels)) {}

  void write(protocol::schema::Result::Builder out) const override {
    auto list = out.initClassify().initLabels(static_cast<unsigned>(labels_.size()));
    for (size_t i = 0; i < labels_.size(); ++i) {
      list[i].setIndex(labels_[i].index);
      list[i].setName(labels_[i].name);
      list[i].setScore(labels_[i].score);
    }
  }

  std::string text() const override {
    std::string line = "classify:";
    for (size_t i = 0; i < labels_.size(); ++i) line += (i ? ", " : " ") + labels_[i].name + " (" + score(i) + ")";
    return line + "\n";
  }

  // A dark panel in the top-left corner: per label its name and score, and a
  // bar as long as the score, best first; as many rows as fit the image.
  void annotate(Image& canvas) const override {
    const long w = canvas.width, h = canvas.height;
    const long s = std::max(1L, std::min(w, h) / 160);  // font pixel size
    const long pad = s, row = text_height(s) + 5 * s, bar = 2 * s;
    long text_w = 0;
    for (size_t i = 0; i < labels_.size(); ++i) text_w = std::max(text_w, text_width(caption(i), s));
    const long panel_w = std::min(w, std::max(text_w, 40 * s) + 2 * pad);
    const size_t rows = std::clamp<size_t>(static_cast<size_t>(std::max(0L, (h - 2 * pad) / row)), 1, labels_.size());
    fill_rect(canvas, 0, 0, panel_w, static_cast<long>(rows) * row + 2 * pad, {24, 24, 24});
    for (size_t i = 0; i < rows; ++i) {
      const long y = pad + static_cast<long>(i) * row;
      draw_text(canvas, pad, y, caption(i), s, {255, 255, 255});
      const long bar_y = y + text_height(s) + s, full = panel_w - 2 * pad;
      fill_rect(canvas, pad, bar_y, pad + full, bar_y + bar, {90, 90, 90});
      const long len = std::lround(static_cast<double>(full) * std::clamp(labels_[i].score, 0.0f, 1.0f));
      fill_rect(canvas, pad, bar_y, pad + len, bar_y + bar, i == 0 ? Rgb{60, 220, 90} : Rgb{230, 180, 40});
    }
  }

 private:
  std::string score(size_t i) const {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", labels_[i].score);
    return buf;
  }
  // The label and score as the annotation font draws them (it has lowercase letters only).
  std::string caption(size_t i) const {
    std::string text = labels_[i].name + " " + score(i);
    for (char& c : text)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return text;
  }

  std::vector<Label> labels_;
};

// True when tensor `t` is made by a Softmax, possibly followed by ops that
// only reshape or dequantise.
bool softmax_made(const engine::Graph& graph, int t) {
  for (size_t hops = 0; hops <= graph.nodes.size(); ++hops) {
    const auto producer = std::find_if(graph.nodes.begin(), graph.nodes.end(), [&](const engine::Node& n) {
      return std::find(n.outputs.begin(), n.outputs.end(), t) != n.outputs.end();
    });
    if (producer == graph.nodes.end()) return false;
    if (producer->op == "Softmax") return true;
    static const std::set<std::string> kPassThrough = {"Reshape", "Flatten", "Squeeze", "Dequantize", "Identity"};
    if (!kPassThrough.count(producer->op) || producer->inputs.empty()) return false;
    t = producer->inputs[0];
  }
  return false;
}

class ClassifyFactory;

// Holds a reference to its factory, which must outlive it (it maps the model
// the interpreter's constants point into).
class ClassifyTask final : public Task {
 public:
  ClassifyTask(const ClassifyFactory& factory, std::unique_ptr<engine::Interpreter> interpreter)
      : factory_(factory), it_(std::move(interpreter)) {}
  std::unique_ptr<Result> run(const Image& image, const TaskOptions& options, Timings& timings) override;

 private:
  const ClassifyFactory& factory_;
  std::unique_ptr<engine::Interpreter> it_;
};

class ClassifyFactory final : public TaskFactory {
 public:
  explicit ClassifyFactory(const TaskSpec& spec)
      : model_(spec) {
    const auto fail = [&](const std::string& what) { throw std::runtime_error(spec.model + ": " + what); };
    const auto model = model_.file().model();
    if (model.getTask().size() && model.getTask() != "classify")
      fail("the model is for task '" + std::string(model.getTask().cStr()) + "', not classify");
    for (auto label : model.getLabels()) labels_.emplace_back(label.cStr());
    if (labels_.empty())
      fail("the model has no labels; convert it with --labels FILE (one label per line, in output order)");
    pre_ = input_preprocess(model_.file(), spec.model);
    std::unique_ptr<engine::Interpreter> spare = model_.interpreter();
    const engine::Interpreter& it = *spare;
    if (it.input_count() != 1 || it.input(0).dtype != engine::DType::f32)
      fail("a classifier takes one f32 image input; this model has " + std::to_string(it.input_count()) +
           " input(s)" + (it.input_count() ? std::string(", the first ") + engine::dtype_text(it.input(0).dtype) : ""));
    if (it.output_count() != 1)
      fail("a classifier has one output; this model has " + std::to_string(it.output_count()));
    const engine::Tensor& out = it.output(0);
    if (out.dtype != engine::DType::f32 || out.shape.size() != 2 || out.shape[0] != 1 ||
        out.shape[1] != static_cast<int64_t>(labels_.size()))
      fail("a classifier's output must be f32 [1, " + std::to_string(labels_.size()) + "] (one score per label); '" +
           out.name + "' is " + engine::dtype_text(out.dtype) + " " + engine::shape_text(out.shape) +
           (out.shape.size() == 2 && out.shape[0] == 1
                ? " (convert with a labels file of " + std::to_string(out.shape[1]) + " lines)"
                : ""));
    try {  // the input's shape against the stored preprocessing, once, on a one-pixel image
      image_to_input(Image{1, 1, PixelFormat::gray, {0}}, pre_, it.input(0).shape);
    } catch (const std::runtime_error& e) {
      fail(e.what());
    }
    softmax_output_ = softmax_made(it.graph(), it.graph().outputs[0]);
    model_.keep(std::move(spare));
  }

  std::unique_ptr<Task> make() const override { return std::make_unique<ClassifyTask>(*this, model_.interpreter()); }
  std::string model_name() const override { return model_.name(); }
  std::string model_sha256() const override { return model_.sha256(); }

  const InputPreprocess& preprocess() const { return pre_; }
  const std::vector<std::string>& labels() const { return labels_; }
  bool softmax_output() const { return softmax_output_; }

 private:
  TaskModel model_;
  InputPreprocess pre_;
  std::vector<std::string> labels_;
  bool softmax_output_ = false;
};

std::unique_ptr<Result> ClassifyTask::run(const Image& image, const TaskOptions& options, Timings& timings) {
  const std::vector<std::string>& labels = factory_.labels();
  // More labels than the model has means all of them (the default 5 on a
  // model with fewer labels must not fail); none is a bad request.
  if (options.top_k < 1) throw BadRequest("top-k must be at least 1");
  const size_t k = std::min<size_t>(options.top_k, labels.size());
  auto start = Clock::now();
  const std::vector<float> input = image_to_input(image, factory_.preprocess(), it_->input(0).shape);
  std::memcpy(it_->input_data(0), input.data(), input.size() * sizeof(float));
  timings.preprocess_ms = ms_since(start);

  start = Clock::now();
  it_->run();
  timings.inference_ms = ms_since(start);

  start = Clock::now();
  const std::span<const float> out(static_cast<const float*>(it_->output_data(0)), labels.size());
  if (!std::all_of(out.begin(), out.end(), [](float v) { return std::isfinite(v); }))
    throw std::runtime_error("the model's output holds NaN or infinite scores");
  const std::vector<float> probs = factory_.softmax_output() || classify::is_distribution(out)
                                       ? std::vector<float>(out.begin(), out.end())
                                       : classify::softmax(out);
  std::vector<Label> best;
  for (uint32_t i : classify::top_k(probs, k)) best.push_back({i, labels[i], probs[i]});
  auto result = std::make_unique<ClassifyResult>(std::move(best));
  timings.postprocess_ms = ms_since(start);
  return result;
}

}  // namespace

TaskInfo classify_task() {
  return {"classify", "top-k labels with probabilities from any imported classifier", true,
          [](const TaskSpec& spec) -> std::unique_ptr<TaskFactory> { return std::make_unique<ClassifyFactory>(spec); }};
}

}  // namespace huddle::node
