// What the task tests share: a temporary folder for the model files they
// write, writing one, and the message a task's open gives.
#pragma once

#include <capnp/message.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/graph.h"
#include "engine/model_file.h"
#include "node/task.h"

namespace huddle::test {

// A fresh folder under the system's temporary folder, removed at the end.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "task-test-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// Writes `graph` as the model file `path` for `task` with `labels`; `more`
// fills the rest of the Model (preprocessing, detector, ...). Returns `path`.
inline std::string write_task_model(const std::string& path, const engine::Graph& graph,
                                    const std::string& task, const std::vector<std::string>& labels,
                                    const std::function<void(engine::schema::Model::Builder)>& more) {
  capnp::MallocMessageBuilder message;
  auto model = message.initRoot<engine::schema::Model>();
  engine::WeightsBuilder weights;
  engine::graph_to_model(graph, model, weights);
  model.setTask(task);
  auto list = model.initLabels(static_cast<unsigned>(labels.size()));
  for (size_t i = 0; i < labels.size(); ++i) list.set(static_cast<unsigned>(i), labels[i]);
  more(model);
  engine::write_model_file(path, message, weights.bytes());
  return path;
}

// What opening `task` on `model` throws, or "(opened)".
inline std::string open_error(const std::string& task, const std::string& model) {
  try {
    node::open_task({task, model, 1});
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(opened)";
}

}  // namespace huddle::test
