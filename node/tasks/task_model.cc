#include "node/tasks/task_model.h"

#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <vector>

#include "engine/graph.h"
#include "engine/sha256.h"

namespace huddle::node {
namespace {

std::string file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.eof() && !in) throw std::runtime_error(path + ": cannot read the model file to hash it");
  return engine::sha256_hex(bytes);
}

}  // namespace

TaskModel::TaskModel(const TaskSpec& spec)
    : file_(engine::ModelFile::open(spec.model)), threads_(spec.threads), sha256_(file_sha256(spec.model)) {
  const size_t slash = spec.model.rfind('/');
  name_ = slash == std::string::npos ? spec.model : spec.model.substr(slash + 1);
}

std::unique_ptr<engine::Interpreter> TaskModel::interpreter() const {
  {
    std::lock_guard<std::mutex> lock(spare_mutex_);
    if (spare_) return std::move(spare_);
  }
  return std::make_unique<engine::Interpreter>(engine::graph_from_file(file_),
                                               engine::InterpreterOptions{threads_});
}

void TaskModel::keep(std::unique_ptr<engine::Interpreter> it) const {
  std::lock_guard<std::mutex> lock(spare_mutex_);
  spare_ = std::move(it);
}

}  // namespace huddle::node
