// The model file of a task that has one (node/tasks/classify.cc, detect.cc):
// mapped once per process, named and hashed for TaskFactory, and the engine
// interpreters each Task runs made from it.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>

#include "engine/interpreter.h"
#include "engine/model_file.h"
#include "node/task.h"

namespace huddle::node {

class TaskModel {
 public:
  // Opens spec.model. Throws what engine::ModelFile::open throws (the file named).
  explicit TaskModel(const TaskSpec& spec);

  const engine::ModelFile& file() const { return file_; }
  // The file's name without its folder, and its SHA-256 (hex).
  const std::string& name() const { return name_; }
  const std::string& sha256() const { return sha256_; }

  // An interpreter on the model with spec.threads threads: the one keep() was
  // given, the first time after it; otherwise a new one. Thread-safe.
  std::unique_ptr<engine::Interpreter> interpreter() const;
  // Keeps `it` (the interpreter a task's open prepared to check the model) for
  // the next interpreter() call, so the first Task does not prepare another.
  void keep(std::unique_ptr<engine::Interpreter> it) const;

 private:
  engine::ModelFile file_;
  size_t threads_;
  std::string name_, sha256_;
  mutable std::mutex spare_mutex_;
  mutable std::unique_ptr<engine::Interpreter> spare_;
};

}  // namespace huddle::node
