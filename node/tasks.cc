#include "node/task.h"

#include "node/tasks/tasks.h"

namespace huddle::node {

std::span<const TaskInfo> tasks() {
  // One line per file in node/tasks/, in help order.
  static const std::vector<TaskInfo> all = {
      classify_task(),
      colour_task(),
      detect_task(),
  };
  return all;
}

std::unique_ptr<TaskFactory> open_task(const TaskSpec& spec) {
  std::string known;
  for (const TaskInfo& info : tasks()) {
    known += known.empty() ? "" : ", ";
    known += info.name;
    if (spec.task != info.name) continue;
    if (info.needs_model && spec.model.empty())
      throw std::runtime_error("task '" + spec.task + "' needs a model (--model FILE.hdm)");
    if (!info.needs_model && !spec.model.empty())
      throw std::runtime_error("task '" + spec.task + "' takes no model ('" + spec.model + "' given)");
    return info.open(spec);
  }
  throw std::runtime_error("unknown task '" + spec.task + "' (this build has: " +
                           (known.empty() ? std::string("none") : known) + ")");
}

}  // namespace huddle::node
