// A node's task (DESIGN.md §8): what one device contributes to a scene. A
// task is one file in node/tasks/ (preprocess, model, postprocess) whose
// result is one struct of protocol/huddle.capnp's Result union. Tasks never
// touch the network: the standalone command line (`huddle run`) and the
// ZeroMQ server (`huddle node`) both call Task::run.
//
// Threads: a TaskFactory is opened once per process (it maps the model file)
// and is shared; each worker thread makes its own Task with make(), since a
// Task owns per-run state (an interpreter's arena). Task::run is not
// re-entrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "node/image.h"
#include "protocol/huddle.capnp.h"

namespace huddle::node {

// A rectangle in pixels of the (oriented) image: x0 <= x < x1, y0 <= y < y1.
struct Box {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

// A request's options (schema TaskOptions) and regions.
struct TaskOptions {
  uint32_t top_k = 5;
  uint32_t colours = 5;
  float min_score = 0;         // detect: the lowest score reported; 0 = the model's default
  uint32_t max_objects = 100;  // detect: at most this many objects, best first
  std::vector<Box> regions;
};

// Time spent in each stage of one run, milliseconds. The caller fills
// decode_ms (it decodes); the task fills the rest.
struct Timings {
  double decode_ms = 0, preprocess_ms = 0, inference_ms = 0, postprocess_ms = 0;
};

// The request cannot be served as asked (a region outside the image, an
// option out of range): the server answers badInput, the command line exits 1.
class BadRequest : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One task's answer.
class Result {
 public:
  virtual ~Result() = default;
  // Sets this task's member of the schema's Result union.
  virtual void write(protocol::schema::Result::Builder out) const = 0;
  // Lines for a person at a terminal, each ending in '\n'.
  virtual std::string text() const = 0;
  // Draws the result onto `canvas`, an RGB image of the input's size.
  virtual void annotate(Image& canvas) const = 0;
};

class Task {
 public:
  virtual ~Task() = default;
  // Runs on one decoded image. Throws BadRequest for a request it cannot
  // serve; any other exception is the node's failure.
  virtual std::unique_ptr<Result> run(const Image& image, const TaskOptions& options, Timings& timings) = 0;
};

// What `huddle run` and `huddle node` are asked to serve.
struct TaskSpec {
  std::string task;    // "classify", "colour", ...
  std::string model;   // model file path; empty for a task that needs none
  size_t threads = 1;  // engine threads per Task
};

// Opened once per process; shared by the workers.
class TaskFactory {
 public:
  virtual ~TaskFactory() = default;
  virtual std::unique_ptr<Task> make() const = 0;
  // The model file's name and SHA-256 (hex), empty for a task without a model.
  virtual std::string model_name() const { return {}; }
  virtual std::string model_sha256() const { return {}; }
};

// One entry per file in node/tasks/.
struct TaskInfo {
  const char* name;     // what --task takes
  const char* summary;  // one line for help texts
  bool needs_model;
  // Opens the task. Throws std::runtime_error naming the file and what is
  // wrong (a model that is not a classifier, a missing file, ...).
  std::function<std::unique_ptr<TaskFactory>(const TaskSpec&)> open;
};

// Every task this build has, in help order.
std::span<const TaskInfo> tasks();

// Opens spec.task. Throws std::runtime_error for an unknown task (naming the
// known ones), a model given to a task that takes none or missing for one that
// needs one, or whatever the task's open throws.
std::unique_ptr<TaskFactory> open_task(const TaskSpec& spec);

}  // namespace huddle::node
