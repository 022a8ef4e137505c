// The fused scene (DESIGN.md §9): what the pool's nodes said of one image,
// combined. Plain structs, the rules that combine node answers (fusion and
// ensembles), and their conversions to and from the wire (protocol
// Scene) and JSON. Nothing here talks to the network.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "protocol/huddle.capnp.h"

namespace huddle::coordinator {

// How one task of a frame went (schema Outcome).
enum class Outcome { unset, ok, timeout, node_lost, overloaded, error, no_node, bad_input, expired };

// "ok", "timeout", "nodeLost", ... (the schema's spelling).
const char* outcome_name(Outcome outcome);

struct Box {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
};

// Intersection over union; 0 when the union is empty.
float iou(const Box& a, const Box& b);

struct Label {
  uint32_t index = 0;
  std::string name;
  float score = 0;
};

struct Colour {
  std::string name;
  uint8_t r = 0, g = 0, b = 0;
  float share = 0, delta_e = 0;
};

struct Detection {
  Box box;
  uint32_t index = 0;
  std::string name;
  float score = 0;
};

// Microseconds a node spent in each stage (schema Timings).
struct Timings {
  uint32_t decode_us = 0, preprocess_us = 0, inference_us = 0, postprocess_us = 0;
  uint32_t total_us() const { return decode_us + preprocess_us + inference_us + postprocess_us; }
};

// One node's ok answer to one task, as the coordinator keeps it.
struct Answer {
  std::string node;
  Timings timings;
  uint32_t latency_us = 0;  // send to answer, at the coordinator
  std::vector<Label> labels;                      // classify
  std::vector<Detection> objects;                 // detect
  std::vector<Colour> colours;                    // colour: the whole image
  std::vector<std::vector<Colour>> region_colours;  // colour: per requested region
  uint32_t width = 0, height = 0;                 // colour: the image's size, from its whole-image box
};

// Reads a node's ok result into `out` (labels, objects or colours).
void read_answer(protocol::schema::Result::Reader result, Answer& out);

struct TaskReport {
  std::string task;
  Outcome outcome = Outcome::unset;
  std::string message;  // for any outcome but ok: what happened
  std::string node;     // who answered (or was asked last)
  std::vector<std::string> nodes;  // ensemble: every node combined
  Timings timings;
  uint32_t latency_us = 0;
  uint32_t attempts = 0;
};

struct SceneObject {
  Box box;
  uint32_t index = 0;
  std::string name;
  float score = 0;
  std::string node;
  std::vector<Colour> colours;
  std::string colour_node;
};

struct Scene {
  uint32_t width = 0, height = 0;
  std::vector<SceneObject> objects;
  std::vector<Label> labels;
  std::string label_node;
  std::vector<Colour> colours;
  std::string colour_node;
  std::vector<TaskReport> tasks;
  std::string summary;
  uint32_t elapsed_us = 0;

  // At least one task was asked for, and every one answered ok.
  bool complete() const;
};

// Ensembles (several nodes of one task, `--ensemble`):
// Labels: each class's score averaged over the answers (a class missing from
// an answer's top-k counts 0 there), best `top_k` first.
std::vector<Label> average_labels(const std::vector<std::vector<Label>>& answers, size_t top_k);
// Boxes: box voting. Detections of all answers, best first, are clustered
// greedily (a detection joins the first cluster of its class whose leader
// overlaps it with IoU above `iou_threshold`); a cluster becomes one object
// whose box is the score-weighted mean of its members' and whose score is
// the sum of its members' best score per answer divided by the number of
// answers (an object one detector missed is discounted). Best first.
std::vector<Detection> vote_boxes(const std::vector<std::vector<Detection>>& answers, float iou_threshold,
                                  size_t max_objects);

// The inputs of fusion: per task asked, the report and the ok answers
// (several with an ensemble), and the colours of the object boxes if a colour
// node was asked for them (in objects' order).
struct TaskAnswers {
  TaskReport report;
  std::vector<Answer> answers;
};
struct FusionInput {
  std::vector<TaskAnswers> tasks;
  // The colour answer whose regions are the detected objects' boxes, the
  // boxes it was asked for, and who answered; empty when none came.
  std::vector<Box> object_boxes;
  Answer object_colours;
  bool have_object_colours = false;
  size_t top_k = 5, max_objects = 100;
};

// Fuses the answers into one scene: objects from detect (box-voted across
// nodes when several answered) each with the colours of its box; without a
// detector, the best classify label as an object covering the image; the
// scene's labels (averaged) and colours; the reports; the summary.
Scene fuse(const FusionInput& input);

// "dog (0.91, brown) and bicycle (0.84, red)"; the scene labels or colours
// when there are no objects; "(missing: detect: timeout)" after it when a
// task did not answer.
std::string summarize(const Scene& scene);

// The scene on the wire and back.
void write_scene(const Scene& scene, protocol::schema::Scene::Builder out);
Scene read_scene(protocol::schema::Scene::Reader in);

// The scene as one JSON object (no newline): width, height, objects (box,
// label, score, node, colours), labels, colours, tasks (outcome, message,
// node, timings, latency), summary, elapsed_ms, complete.
std::string scene_json(const Scene& scene);

// A JSON string literal of `s` (quotes and escapes).
std::string json_string(const std::string& s);

}  // namespace huddle::coordinator
