// ONNX backend node tests (Debian's libonnx-testdata) through huddle's
// importer and fp32 engine.
//
// usage: onnx-conformance DATA_DIR UNSUPPORTED_LIST [--verbose]
//
// A case (a test_* folder: model.onnx and test_data_set_*/{input,output}_N.pb)
// belongs to the importer's claimed ops when every op of its model is one the
// importer claims (models::onnx_supported_ops()). Inputs the importer needs
// as constants (weights, shapes, axes; all inputs of the ops it folds at
// import time) are given to it as initializers, as a real model holds them;
// the others are fed at run time. Outputs are compared like ONNX's backend
// tests: |got - want| <= atol + rtol * |want| with rtol 1e-3, atol 1e-7, and
// the same shape.
//
// Every claimed case must pass, except those in UNSUPPORTED_LIST (lines
// "test_name  reason"), which must be refused by the importer with a clear
// error (a listed case that passes is a failure too: the list stays true).
// Prints per op, then "onnx conformance: P of C cases pass ...".
// Exit status: 0 all as expected, 1 otherwise, 2 usage error.
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/interpreter.h"
#include "models/import/onnx.h"

namespace fs = std::filesystem;
using namespace huddle;

namespace {

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

onnx::TensorProto read_tensor(const fs::path& p) {
  onnx::TensorProto t;
  if (!t.ParseFromString(read_bytes(p))) throw std::runtime_error(p.string() + ": not a TensorProto");
  return t;
}

// A TensorProto's values as doubles (float, double, integer and bool types).
std::vector<double> values_of(const onnx::TensorProto& t) {
  size_t n = 1;
  for (auto d : t.dims()) n *= static_cast<size_t>(d);
  std::vector<double> v;
  const std::string& raw = t.raw_data();
  auto from_raw = [&](auto tag) {
    using T = decltype(tag);
    if (raw.size() != n * sizeof(T)) throw std::runtime_error("raw data size does not match the shape");
    for (size_t k = 0; k < n; ++k) {
      T x;
      std::memcpy(&x, raw.data() + k * sizeof(T), sizeof(T));
      v.push_back(static_cast<double>(x));
    }
  };
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      if (t.has_raw_data())
        from_raw(float{});
      else
        v.assign(t.float_data().begin(), t.float_data().end());
      break;
    case onnx::TensorProto::DOUBLE:
      if (t.has_raw_data())
        from_raw(double{});
      else
        v.assign(t.double_data().begin(), t.double_data().end());
      break;
    case onnx::TensorProto::INT64:
      if (t.has_raw_data())
        from_raw(int64_t{});
      else
        v.assign(t.int64_data().begin(), t.int64_data().end());
      break;
    case onnx::TensorProto::INT32:
      if (t.has_raw_data())
        from_raw(int32_t{});
      else
        v.assign(t.int32_data().begin(), t.int32_data().end());
      break;
    case onnx::TensorProto::BOOL:
    case onnx::TensorProto::UINT8:
      if (t.has_raw_data())
        from_raw(uint8_t{});
      else
        v.assign(t.int32_data().begin(), t.int32_data().end());
      break;
    case onnx::TensorProto::INT8:
      if (t.has_raw_data())
        from_raw(int8_t{});
      else
        v.assign(t.int32_data().begin(), t.int32_data().end());
      break;
    default:
      throw std::runtime_error("data type " + std::to_string(t.data_type()) + " is not compared");
  }
  return v;
}

struct Case {
  std::string name;
  fs::path dir;
  std::string op;  // the case's first claimed op (its group in the report)
};

// Runs one case; returns "" on success or what went wrong. `refused` is set
// when the importer refused the model (ImportError).
std::string run_case(const Case& c, const std::map<std::string, models::OnnxOpSupport>& claimed,
                     bool& refused) {
  refused = false;
  onnx::ModelProto model;
  if (!model.ParseFromString(read_bytes(c.dir / "model.onnx"))) return "model.onnx does not parse";
  const auto& g = model.graph();
  // Which graph inputs the importer needs as constants.
  std::set<std::string> as_constant;
  for (const auto& n : g.node()) {
    const auto& s = claimed.at(n.op_type());
    for (int k = 0; k < n.input_size(); ++k)
      if (s.fold_only || std::count(s.constant_inputs.begin(), s.constant_inputs.end(), k))
        as_constant.insert(n.input(k));
  }
  std::set<std::string> initializers;
  for (const auto& t : g.initializer()) initializers.insert(t.name());
  std::vector<std::string> runtime_inputs;
  for (const auto& in : g.input())
    if (!initializers.count(in.name()) && !as_constant.count(in.name())) runtime_inputs.push_back(in.name());

  std::vector<fs::path> sets;
  for (const auto& e : fs::directory_iterator(c.dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
      sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  if (sets.empty()) return "no test_data_set_* folder";

  for (const auto& set : sets) {
    onnx::ModelProto m = model;
    std::map<std::string, onnx::TensorProto> feeds;
    for (int k = 0; k < g.input_size(); ++k) {
      const fs::path p = set / ("input_" + std::to_string(k) + ".pb");
      if (!fs::exists(p)) continue;  // an optional input left out
      onnx::TensorProto t = read_tensor(p);
      const std::string& name = g.input(k).name();
      t.set_name(name);
      if (as_constant.count(name))
        *m.mutable_graph()->add_initializer() = t;
      else
        feeds[name] = t;
    }
    std::string bytes;
    m.SerializeToString(&bytes);
    models::ImportResult imported;
    try {
      imported = models::import_onnx_bytes({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()},
                                           c.name + "/model.onnx");
    } catch (const models::ImportError& e) {
      refused = true;
      return e.what();
    }
    engine::Interpreter it(std::move(imported.graph));
    for (size_t k = 0; k < it.input_count(); ++k) {
      const auto& in = it.input(k);
      const auto f = feeds.find(in.name);
      if (f == feeds.end()) return "no data for input '" + in.name + "'";
      const auto v = values_of(f->second);
      if (v.size() != static_cast<size_t>(engine::elements(in.shape)))
        return "input '" + in.name + "' has " + std::to_string(v.size()) + " values for " +
               engine::shape_text(in.shape);
      float* dst = static_cast<float*>(it.input_data(k));
      for (size_t e = 0; e < v.size(); ++e) dst[e] = static_cast<float>(v[e]);
    }
    it.run();
    for (size_t k = 0; k < it.output_count(); ++k) {
      const fs::path p = set / ("output_" + std::to_string(k) + ".pb");
      const onnx::TensorProto want = read_tensor(p);
      const engine::Shape want_shape(want.dims().begin(), want.dims().end());
      const auto& out = it.output(k);
      if (out.shape != want_shape)
        return set.filename().string() + " output " + std::to_string(k) + ": shape " +
               engine::shape_text(out.shape) + ", want " + engine::shape_text(want_shape);
      const auto w = values_of(want);
      for (size_t e = 0; e < w.size(); ++e) {
        double got;
        if (out.dtype == engine::DType::f32)
          got = static_cast<const float*>(it.output_data(k))[e];
        else if (out.dtype == engine::DType::i64)
          got = static_cast<double>(static_cast<const int64_t*>(it.output_data(k))[e]);
        else
          return "output dtype not compared";
        const bool both_nan = std::isnan(got) && std::isnan(w[e]);
        if (!both_nan && !(std::fabs(got - w[e]) <= 1e-7 + 1e-3 * std::fabs(w[e]))) {
          std::ostringstream msg;
          msg << set.filename().string() << " output " << k << " element " << e << ": " << got << ", want "
              << w[e];
          return msg.str();
        }
      }
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4 || (argc == 4 && std::strcmp(argv[3], "--verbose") != 0)) {
    std::fprintf(stderr, "usage: onnx-conformance DATA_DIR UNSUPPORTED_LIST [--verbose]\n");
    return 2;
  }
  const fs::path data = argv[1];
  const bool verbose = argc == 4;
  std::map<std::string, models::OnnxOpSupport> claimed;
  for (const auto& s : models::onnx_supported_ops()) claimed[s.op] = s;

  std::map<std::string, std::string> listed;  // case -> reason
  {
    std::ifstream in(argv[2]);
    if (!in) {
      std::fprintf(stderr, "onnx-conformance: cannot open %s\n", argv[2]);
      return 2;
    }
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      const size_t space = line.find_first_of(" \t");
      listed[line.substr(0, space)] =
          space == std::string::npos ? "" : line.substr(line.find_first_not_of(" \t", space));
    }
  }

  std::vector<Case> cases;
  size_t unclaimed = 0;
  std::vector<fs::path> dirs;
  for (const auto& e : fs::directory_iterator(data))
    if (e.is_directory() && fs::exists(e.path() / "model.onnx")) dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  for (const auto& dir : dirs) {
    onnx::ModelProto m;
    if (!m.ParseFromString(read_bytes(dir / "model.onnx"))) continue;
    bool all = m.graph().node_size() > 0;
    std::string op;
    for (const auto& n : m.graph().node()) {
      if (!claimed.count(n.op_type()) || !(n.domain().empty() || n.domain() == "ai.onnx"))
        all = false;
      else if (op.empty() || op == "Constant")
        op = n.op_type();
    }
    if (all)
      cases.push_back({dir.filename().string(), dir, op});
    else
      ++unclaimed;
  }
  if (cases.empty()) {
    std::fprintf(stderr, "onnx-conformance: no cases found in %s\n", data.c_str());
    return 1;
  }

  struct Tally {
    int passed = 0, refused_listed = 0, failed = 0;
  };
  std::map<std::string, Tally> per_op;
  std::vector<std::string> failures;
  std::set<std::string> seen;
  for (const Case& c : cases) {
    seen.insert(c.name);
    bool refused = false;
    std::string problem;
    try {
      problem = run_case(c, claimed, refused);
    } catch (const std::exception& e) {
      problem = std::string("threw: ") + e.what();
    }
    Tally& t = per_op[c.op];
    const auto l = listed.find(c.name);
    if (l != listed.end()) {
      if (problem.empty()) {
        ++t.failed;
        failures.push_back(c.name + ": listed as unsupported (" + l->second + ") but passes");
      } else if (!refused) {
        ++t.failed;
        failures.push_back(c.name + ": listed as unsupported, but not refused by the importer: " + problem);
      } else {
        ++t.refused_listed;
        if (verbose) std::printf("refused as listed: %s: %s\n", c.name.c_str(), problem.c_str());
      }
    } else if (problem.empty()) {
      ++t.passed;
    } else {
      ++t.failed;
      failures.push_back(c.name + ": " + problem);
    }
  }
  for (const auto& [name, reason] : listed)
    if (!seen.count(name)) failures.push_back(name + ": listed as unsupported, but no such claimed case");

  int passed = 0, refused = 0, total = 0;
  std::printf("%-20s %6s %8s %6s\n", "op", "pass", "refused", "fail");
  for (const auto& [op, t] : per_op) {
    std::printf("%-20s %6d %8d %6d\n", op.c_str(), t.passed, t.refused_listed, t.failed);
    passed += t.passed, refused += t.refused_listed, total += t.passed + t.refused_listed + t.failed;
  }
  for (const auto& f : failures) std::printf("FAIL %s\n", f.c_str());
  std::printf(
      "onnx conformance: %d of %d cases pass for the %zu claimed ops; %d refused as listed unsupported "
      "variants; %zu failed; %zu cases use ops not claimed\n",
      passed, total, claimed.size(), refused, failures.size(), unclaimed);
  return failures.empty() ? 0 : 1;
}
