#include "models/quantize/fidelity.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "engine/interpreter.h"

namespace huddle::quantize {

Outputs run_graph(const engine::Graph& graph, const Samples& samples, size_t threads) {
  engine::InterpreterOptions options;
  options.threads = threads;
  engine::Interpreter it(graph, options);
  Outputs out;
  for (const auto& sample : samples) {
    if (sample.size() != it.input_count())
      throw engine::GraphError("a sample has " + std::to_string(sample.size()) + " inputs, the model " +
                               std::to_string(it.input_count()));
    for (size_t i = 0; i < sample.size(); ++i) {
      const engine::Tensor& t = it.input(i);
      if (t.dtype != engine::DType::f32 || static_cast<int64_t>(sample[i].size()) != engine::elements(t.shape))
        throw engine::GraphError("input '" + t.name + "' takes " + std::to_string(engine::elements(t.shape)) +
                                 " fp32 values, a sample has " + std::to_string(sample[i].size()));
      std::memcpy(it.input_data(i), sample[i].data(), sample[i].size() * sizeof(float));
    }
    it.run();
    auto& o = out.emplace_back();
    for (size_t k = 0; k < it.output_count(); ++k) {
      const auto* v = static_cast<const float*>(it.output_data(k));
      o.emplace_back(v, v + engine::elements(it.output(k).shape));
    }
  }
  return out;
}

namespace {

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  if (aa == 0 && bb == 0) return 1;
  if (aa == 0 || bb == 0) return 0;
  return ab / std::sqrt(aa * bb);
}

// Indices of the `k` largest values, largest first.
std::vector<size_t> top(const std::vector<float>& v, size_t k) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::min(k, v.size());
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(),
                    [&](size_t a, size_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  idx.resize(k);
  return idx;
}

}  // namespace

SetFidelity compare(const Outputs& reference, const Outputs& quantised, const std::vector<std::string>& names) {
  SetFidelity f;
  f.samples = reference.size();
  for (size_t k = 0; k < names.size(); ++k) {
    OutputFidelity o;
    o.name = names[k];
    double sum = 0;
    for (size_t s = 0; s < reference.size(); ++s) {
      const auto &r = reference[s][k], &q = quantised[s][k];
      const double c = cosine(r, q);
      sum += c;
      o.min_cosine = std::min(o.min_cosine, c);
      for (size_t i = 0; i < r.size(); ++i) {
        o.max_abs_error = std::max(o.max_abs_error, std::fabs(static_cast<double>(r[i]) - q[i]));
        o.max_abs_reference = std::max(o.max_abs_reference, std::fabs(static_cast<double>(r[i])));
      }
    }
    o.mean_cosine = reference.empty() ? 1 : sum / static_cast<double>(reference.size());
    f.outputs.push_back(o);
  }
  if (!reference.empty() && !names.empty() && reference[0][0].size() >= 2) {
    size_t t1 = 0, t5 = 0;
    for (size_t s = 0; s < reference.size(); ++s) {
      const size_t want = top(reference[s][0], 1)[0];
      const auto got = top(quantised[s][0], 5);
      t1 += got[0] == want;
      t5 += std::find(got.begin(), got.end(), want) != got.end();
    }
    f.top1 = static_cast<double>(t1) / static_cast<double>(reference.size());
    f.top5 = static_cast<double>(t5) / static_cast<double>(reference.size());
  }
  return f;
}

double accuracy(const Outputs& outputs, const std::vector<int64_t>& labels) {
  size_t right = 0;
  for (size_t s = 0; s < outputs.size() && s < labels.size(); ++s)
    right += static_cast<int64_t>(top(outputs[s][0], 1)[0]) == labels[s];
  return outputs.empty() ? 0 : static_cast<double>(right) / static_cast<double>(outputs.size());
}

double mean_cosine(const SetFidelity& f) {
  if (f.outputs.empty()) return 1;
  double sum = 0;
  for (const auto& o : f.outputs) sum += o.mean_cosine;
  return sum / static_cast<double>(f.outputs.size());
}

namespace {

double quantised_cosine(const engine::Graph& fp32, const std::vector<Histogram>& hist, const QuantizeOptions& options,
                        const Samples& samples, const Outputs& reference, size_t threads) {
  const QuantizedGraph q = quantize_graph(fp32, hist, options);
  std::vector<std::string> names;
  for (int t : q.graph.outputs) names.push_back(q.graph.tensors[static_cast<size_t>(t)].name);
  return mean_cosine(compare(reference, run_graph(q.graph, samples, threads), names));
}

}  // namespace

std::vector<LayerSensitivity> sensitivity(const engine::Graph& fp32, const std::vector<Histogram>& hist,
                                          const QuantizeOptions& options, const Samples& samples,
                                          const Outputs& reference, size_t threads,
                                          const std::function<void(size_t, size_t)>& progress) {
  std::vector<std::string> candidates;
  for (const std::string& n : quantizable_nodes(fp32))
    if (!options.keep_float.count(n)) candidates.push_back(n);
  std::vector<LayerSensitivity> out;
  for (size_t i = 0; i < candidates.size(); ++i) {
    QuantizeOptions one = options;
    for (const std::string& n : candidates)
      if (n != candidates[i]) one.keep_float.insert(n);
    LayerSensitivity s;
    s.name = candidates[i];
    for (const engine::Node& node : fp32.nodes)
      if (node.name == s.name) s.op = node.op;
    s.cosine = quantised_cosine(fp32, hist, one, samples, reference, threads);
    out.push_back(s);
    if (progress) progress(i + 1, candidates.size());
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.cosine < b.cosine; });
  return out;
}

std::vector<std::string> keep_float_until(const engine::Graph& fp32, const std::vector<Histogram>& hist,
                                          QuantizeOptions& options, const std::vector<LayerSensitivity>& ranking,
                                          double target, const Samples& samples, const Outputs& reference,
                                          size_t threads, const std::function<void(size_t, size_t)>& progress) {
  std::vector<std::string> added;
  double c = quantised_cosine(fp32, hist, options, samples, reference, threads);
  for (size_t i = 0; i < ranking.size() && c < target; ++i) {
    options.keep_float.insert(ranking[i].name);
    added.push_back(ranking[i].name);
    c = quantised_cosine(fp32, hist, options, samples, reference, threads);
    if (progress) progress(i + 1, ranking.size());
  }
  return added;
}

}  // namespace huddle::quantize
