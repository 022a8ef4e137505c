// The tasks of node/tasks/: each file defines one function returning its
// TaskInfo (classify_task() in classify.cc, ...), declared here;
// node/tasks.cc lists them.
#pragma once

#include <string>

#include "node/task.h"

namespace huddle::node {

TaskInfo classify_task();  // classify.cc
TaskInfo colour_task();    // colour.cc
TaskInfo detect_task();    // detect.cc

// The SHA-256 (hex) of the model file at `path` (TaskFactory::model_sha256).
// Throws std::runtime_error naming the file if it cannot be read.
std::string model_file_sha256(const std::string& path);  // classify.cc

}  // namespace huddle::node
