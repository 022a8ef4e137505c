// The tasks of node/tasks/: each file defines one function returning its
// TaskInfo (classify_task() in classify.cc, ...), declared here;
// node/tasks.cc lists them.
#pragma once

#include "node/task.h"

namespace huddle::node {

TaskInfo classify_task();  // classify.cc
TaskInfo colour_task();    // colour.cc
TaskInfo detect_task();    // detect.cc

}  // namespace huddle::node
