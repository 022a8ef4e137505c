#include "coordinator/scene.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace huddle::coordinator {
namespace schema = protocol::schema;

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::unset:
      return "unset";
    case Outcome::ok:
      return "ok";
    case Outcome::timeout:
      return "timeout";
    case Outcome::node_lost:
      return "nodeLost";
    case Outcome::overloaded:
      return "overloaded";
    case Outcome::error:
      return "error";
    case Outcome::no_node:
      return "noNode";
    case Outcome::bad_input:
      return "badInput";
    case Outcome::expired:
      return "expired";
  }
  return "unset";
}

float iou(const Box& a, const Box& b) {
  const float ix = std::max(0.f, std::min(a.x1, b.x1) - std::max(a.x0, b.x0));
  const float iy = std::max(0.f, std::min(a.y1, b.y1) - std::max(a.y0, b.y0));
  const float inter = ix * iy;
  const float area_a = std::max(0.f, a.x1 - a.x0) * std::max(0.f, a.y1 - a.y0);
  const float area_b = std::max(0.f, b.x1 - b.x0) * std::max(0.f, b.y1 - b.y0);
  const float uni = area_a + area_b - inter;
  return uni > 0 ? inter / uni : 0.f;
}

namespace {

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

Box read_box(schema::Box::Reader b) { return {b.getX0(), b.getY0(), b.getX1(), b.getY1()}; }

void write_box(const Box& b, schema::Box::Builder out) {
  out.setX0(b.x0);
  out.setY0(b.y0);
  out.setX1(b.x1);
  out.setY1(b.y1);
}

std::vector<Colour> read_colours(capnp::List<schema::Colour>::Reader list) {
  std::vector<Colour> out;
  out.reserve(list.size());
  for (schema::Colour::Reader c : list)
    out.push_back({text(c.getName()), c.getR(), c.getG(), c.getB(), c.getShare(), c.getDeltaE()});
  return out;
}

void write_colours(const std::vector<Colour>& colours, capnp::List<schema::Colour>::Builder out) {
  for (size_t i = 0; i < colours.size(); ++i) {
    const Colour& c = colours[i];
    schema::Colour::Builder b = out[i];
    b.setName(c.name);
    b.setR(c.r);
    b.setG(c.g);
    b.setB(c.b);
    b.setShare(c.share);
    b.setDeltaE(c.delta_e);
  }
}

std::vector<Label> read_labels(capnp::List<schema::Label>::Reader list) {
  std::vector<Label> out;
  out.reserve(list.size());
  for (schema::Label::Reader l : list) out.push_back({l.getIndex(), text(l.getName()), l.getScore()});
  return out;
}

void write_labels(const std::vector<Label>& labels, capnp::List<schema::Label>::Builder out) {
  for (size_t i = 0; i < labels.size(); ++i) {
    out[i].setIndex(labels[i].index);
    out[i].setName(labels[i].name);
    out[i].setScore(labels[i].score);
  }
}

Timings read_timings(schema::Timings::Reader t) {
  return {t.getDecodeUs(), t.getPreprocessUs(), t.getInferenceUs(), t.getPostprocessUs()};
}

void write_timings(const Timings& t, schema::Timings::Builder out) {
  out.setDecodeUs(t.decode_us);
  out.setPreprocessUs(t.preprocess_us);
  out.setInferenceUs(t.inference_us);
  out.setPostprocessUs(t.postprocess_us);
}

Outcome read_outcome(schema::Outcome o) {
  switch (o) {
    case schema::Outcome::OK:
      return Outcome::ok;
    case schema::Outcome::TIMEOUT:
      return Outcome::timeout;
    case schema::Outcome::NODE_LOST:
      return Outcome::node_lost;
    case schema::Outcome::OVERLOADED:
      return Outcome::overloaded;
    case schema::Outcome::ERROR:
      return Outcome::error;
    case schema::Outcome::NO_NODE:
      return Outcome::no_node;
    case schema::Outcome::BAD_INPUT:
      return Outcome::bad_input;
    case schema::Outcome::EXPIRED:
      return Outcome::expired;
    case schema::Outcome::UNSET:
      break;
  }
  return Outcome::unset;  // also one this build does not know
}

schema::Outcome write_outcome(Outcome o) {
  switch (o) {
    case Outcome::ok:
      return schema::Outcome::OK;
    case Outcome::timeout:
      return schema::Outcome::TIMEOUT;
    case Outcome::node_lost:
      return schema::Outcome::NODE_LOST;
    case Outcome::overloaded:
      return schema::Outcome::OVERLOADED;
    case Outcome::error:
      return schema::Outcome::ERROR;
    case Outcome::no_node:
      return schema::Outcome::NO_NODE;
    case Outcome::bad_input:
      return schema::Outcome::BAD_INPUT;
    case Outcome::expired:
      return schema::Outcome::EXPIRED;
    case Outcome::unset:
      break;
  }
  return schema::Outcome::UNSET;
}

std::string number(double v, int decimals) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

const TaskAnswers* find_task(const FusionInput& input, const char* task) {
  for (const TaskAnswers& t : input.tasks)
    if (t.report.task == task && !t.answers.empty()) return &t;
  return nullptr;
}

// "a", "a and b", "a, b and c"
std::string join_and(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += i + 1 == parts.size() ? " and " : ", ";
    out += parts[i];
  }
  return out;
}

std::string nodes_of(const TaskAnswers& t) {
  std::string out;
  for (const Answer& a : t.answers) {
    if (!out.empty()) out += ",";
    out += a.node;
  }
  return out;
}

}  // namespace

void read_answer(schema::Result::Reader result, Answer& out) {
  switch (result.which()) {
    case schema::Result::CLASSIFY:
      out.labels = read_labels(result.getClassify().getLabels());
      return;
    case schema::Result::DETECT:
      for (schema::Detection::Reader d : result.getDetect().getObjects())
        out.objects.push_back({read_box(d.getBox()), d.getIndex(), text(d.getName()), d.getScore()});
      return;
    case schema::Result::COLOUR: {
      const schema::ColourSet::Reader image = result.getColour().getImage();
      out.colours = read_colours(image.getColours());
      const Box b = read_box(image.getBox());
      // A node's numbers are outside data: a side that is not finite, negative
      // or absurdly large reads as unknown (0), never as an overflowing cast.
      const auto side = [](float from, float to) -> uint32_t {
        const double v = std::round(static_cast<double>(to) - static_cast<double>(from));
        return v > 0 && v <= double(1 << 30) ? static_cast<uint32_t>(v) : 0u;
      };
      out.width = side(b.x0, b.x1);
      out.height = side(b.y0, b.y1);
      for (schema::ColourSet::Reader r : result.getColour().getRegions())
        out.region_colours.push_back(read_colours(r.getColours()));
      return;
    }
    case schema::Result::UNSET:
      break;
  }
}

bool Scene::complete() const {
  return !tasks.empty() && std::all_of(tasks.begin(), tasks.end(), [](const TaskReport& t) { return t.outcome == Outcome::ok; });
}

std::vector<Label> average_labels(const std::vector<std::vector<Label>>& answers, size_t top_k) {
  std::map<uint32_t, Label> sum;
  for (const std::vector<Label>& labels : answers)
    for (const Label& l : labels) {
      auto [it, fresh] = sum.try_emplace(l.index, Label{l.index, l.name, 0.f});
      it->second.score += l.score;
    }
  std::vector<Label> out;
  for (auto& entry : sum) {
    entry.second.score /= static_cast<float>(std::max<size_t>(1, answers.size()));
    out.push_back(entry.second);
  }
  std::stable_sort(out.begin(), out.end(), [](const Label& a, const Label& b) { return a.score > b.score; });
  if (out.size() > top_k) out.resize(top_k);
  return out;
}

std::vector<Detection> vote_boxes(const std::vector<std::vector<Detection>>& answers, float iou_threshold,
                                  size_t max_objects) {
  struct Member {
    const Detection* d;
    size_t answer;
  };
  std::vector<Member> all;
  for (size_t a = 0; a < answers.size(); ++a)
    for (const Detection& d : answers[a]) all.push_back({&d, a});
  std::stable_sort(all.begin(), all.end(), [](const Member& x, const Member& y) { return x.d->score > y.d->score; });
  struct Cluster {
    const Detection* leader;
    std::vector<Member> members;
  };
  std::vector<Cluster> clusters;
  for (const Member& m : all) {
    Cluster* home = nullptr;
    for (Cluster& c : clusters)
      if (c.leader->index == m.d->index && iou(c.leader->box, m.d->box) > iou_threshold) {
        home = &c;
        break;
      }
    if (home)
      home->members.push_back(m);
    else
      clusters.push_back({m.d, {m}});
  }
  std::vector<Detection> out;
  for (const Cluster& c : clusters) {
    Detection d{{}, c.leader->index, c.leader->name, 0.f};
    double wsum = 0, x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    std::vector<float> best(answers.size(), 0.f);
    for (const Member& m : c.members) {
      const double w = m.d->score;
      wsum += w;
      x0 += w * m.d->box.x0;
      y0 += w * m.d->box.y0;
      x1 += w * m.d->box.x1;
      y1 += w * m.d->box.y1;
      best[m.answer] = std::max(best[m.answer], m.d->score);
    }
    if (wsum > 0)
      d.box = {static_cast<float>(x0 / wsum), static_cast<float>(y0 / wsum), static_cast<float>(x1 / wsum),
               static_cast<float>(y1 / wsum)};
    else
      d.box = c.leader->box;
    float total = 0;
    for (float s : best) total += s;
    d.score = total / static_cast<float>(std::max<size_t>(1, answers.size()));
    out.push_back(d);
  }
  std::stable_sort(out.begin(), out.end(), [](const Detection& a, const Detection& b) { return a.score > b.score; });
  if (out.size() > max_objects) out.resize(max_objects);
  return out;
}

Scene fuse(const FusionInput& input) {
  Scene scene;
  for (const TaskAnswers& t : input.tasks) scene.tasks.push_back(t.report);

  if (const TaskAnswers* colour = find_task(input, "colour")) {
    const Answer& a = colour->answers.front();
    scene.colours = a.colours;
    scene.colour_node = a.node;
    scene.width = a.width;
    scene.height = a.height;
  }
  if (const TaskAnswers* classify = find_task(input, "classify")) {
    std::vector<std::vector<Label>> all;
    for (const Answer& a : classify->answers) all.push_back(a.labels);
    scene.labels = all.size() == 1 ? all.front() : average_labels(all, input.top_k);
    scene.label_node = nodes_of(*classify);
  }
  if (const TaskAnswers* detect = find_task(input, "detect")) {
    std::vector<std::vector<Detection>> all;
    for (const Answer& a : detect->answers) all.push_back(a.objects);
    const std::vector<Detection> objects = all.size() == 1 ? all.front() : vote_boxes(all, 0.55f, input.max_objects);
    const std::string node = nodes_of(*detect);
    for (const Detection& d : objects) scene.objects.push_back({d.box, d.index, d.name, d.score, node, {}, {}});
    // The colour node was asked for the boxes of one answer (the first to
    // arrive); an ensemble's voted boxes take the colours of the asked box
    // they overlap most.
    if (input.have_object_colours) {
      for (SceneObject& o : scene.objects) {
        size_t best = input.object_boxes.size();
        float best_iou = 0.f;
        for (size_t i = 0; i < input.object_boxes.size(); ++i) {
          const float v = iou(o.box, input.object_boxes[i]);
          if (v > best_iou) best_iou = v, best = i;
        }
        if (best < input.object_colours.region_colours.size()) {
          o.colours = input.object_colours.region_colours[best];
          o.colour_node = input.object_colours.node;
        }
      }
    }
  } else if (!scene.labels.empty()) {
    // No detector answered: the image itself is the object, classified.
    const Label& top = scene.labels.front();
    SceneObject o{{0.f, 0.f, static_cast<float>(scene.width), static_cast<float>(scene.height)},
                  top.index, top.name, top.score, scene.label_node, scene.colours, scene.colour_node};
    scene.objects.push_back(o);
  }
  scene.summary = summarize(scene);
  return scene;
}

std::string summarize(const Scene& scene) {
  std::vector<std::string> parts;
  for (const SceneObject& o : scene.objects) {
    std::string p = o.name.empty() ? "class " + std::to_string(o.index) : o.name;
    p += " (" + number(o.score, 2);
    if (!o.colours.empty()) p += ", " + o.colours.front().name;
    p += ")";
    parts.push_back(p);
  }
  std::string out = join_and(parts);
  if (out.empty() && !scene.labels.empty()) {
    for (size_t i = 0; i < scene.labels.size() && i < 3; ++i)
      parts.push_back(scene.labels[i].name + " (" + number(scene.labels[i].score, 2) + ")");
    out = join_and(parts);
  }
  if (out.empty() && !scene.colours.empty()) {
    for (const Colour& c : scene.colours) parts.push_back(c.name + " " + number(100.0 * c.share, 0) + "%");
    out = "colours: " + join_and(parts);
  }
  if (out.empty()) out = "nothing recognised";
  std::string missing;
  for (const TaskReport& t : scene.tasks)
    if (t.outcome != Outcome::ok) {
      if (!missing.empty()) missing += ", ";
      missing += t.task + ": " + outcome_name(t.outcome);
    }
  if (!missing.empty()) out += " (missing: " + missing + ")";
  return out;
}

void write_scene(const Scene& scene, schema::Scene::Builder out) {
  out.setWidth(scene.width);
  out.setHeight(scene.height);
  auto objects = out.initObjects(static_cast<unsigned>(scene.objects.size()));
  for (size_t i = 0; i < scene.objects.size(); ++i) {
    const SceneObject& o = scene.objects[i];
    schema::SceneObject::Builder b = objects[i];
    write_box(o.box, b.initBox());
    b.setIndex(o.index);
    b.setName(o.name);
    b.setScore(o.score);
    b.setNode(o.node);
    write_colours(o.colours, b.initColours(static_cast<unsigned>(o.colours.size())));
    b.setColourNode(o.colour_node);
  }
  write_labels(scene.labels, out.initLabels(static_cast<unsigned>(scene.labels.size())));
  out.setLabelNode(scene.label_node);
  write_colours(scene.colours, out.initColours(static_cast<unsigned>(scene.colours.size())));
  out.setColourNode(scene.colour_node);
  auto tasks = out.initTasks(static_cast<unsigned>(scene.tasks.size()));
  for (size_t i = 0; i < scene.tasks.size(); ++i) {
    const TaskReport& t = scene.tasks[i];
    schema::TaskReport::Builder b = tasks[i];
    b.setTask(t.task);
    b.setOutcome(write_outcome(t.outcome));
    b.setMessage(t.message);
    b.setNode(t.node);
    auto nodes = b.initNodes(static_cast<unsigned>(t.nodes.size()));
    for (size_t n = 0; n < t.nodes.size(); ++n) nodes.set(static_cast<unsigned>(n), t.nodes[n]);
    write_timings(t.timings, b.initTimings());
    b.setLatencyUs(t.latency_us);
    b.setAttempts(static_cast<uint8_t>(std::min<uint32_t>(t.attempts, 255)));
  }
  out.setSummary(scene.summary);
  out.setElapsedUs(scene.elapsed_us);
}

Scene read_scene(schema::Scene::Reader in) {
  Scene scene;
  scene.width = in.getWidth();
  scene.height = in.getHeight();
  for (schema::SceneObject::Reader o : in.getObjects())
    scene.objects.push_back({read_box(o.getBox()), o.getIndex(), text(o.getName()), o.getScore(), text(o.getNode()),
                             read_colours(o.getColours()), text(o.getColourNode())});
  scene.labels = read_labels(in.getLabels());
  scene.label_node = text(in.getLabelNode());
  scene.colours = read_colours(in.getColours());
  scene.colour_node = text(in.getColourNode());
  for (schema::TaskReport::Reader t : in.getTasks()) {
    TaskReport r;
    r.task = text(t.getTask());
    r.outcome = read_outcome(t.getOutcome());
    r.message = text(t.getMessage());
    r.node = text(t.getNode());
    for (capnp::Text::Reader n : t.getNodes()) r.nodes.push_back(text(n));
    r.timings = read_timings(t.getTimings());
    r.latency_us = t.getLatencyUs();
    r.attempts = t.getAttempts();
    scene.tasks.push_back(std::move(r));
  }
  scene.summary = text(in.getSummary());
  scene.elapsed_us = in.getElapsedUs();
  return scene;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  return out;
}

namespace {

std::string colours_json(const std::vector<Colour>& colours) {
  std::string out = "[";
  for (size_t i = 0; i < colours.size(); ++i) {
    const Colour& c = colours[i];
    if (i) out += ",";
    out += "{\"name\":" + json_string(c.name) + ",\"rgb\":[" + std::to_string(c.r) + "," + std::to_string(c.g) + "," +
           std::to_string(c.b) + "],\"share\":" + number(c.share, 4) + ",\"delta_e\":" + number(c.delta_e, 2) + "}";
  }
  return out + "]";
}

std::string box_json(const Box& b) {
  return "[" + number(b.x0, 1) + "," + number(b.y0, 1) + "," + number(b.x1, 1) + "," + number(b.y1, 1) + "]";
}

}  // namespace

std::string scene_json(const Scene& scene) {
  std::string out = "{\"width\":" + std::to_string(scene.width) + ",\"height\":" + std::to_string(scene.height);
  out += ",\"summary\":" + json_string(scene.summary);
  out += ",\"complete\":" + std::string(scene.complete() ? "true" : "false");
  out += ",\"elapsed_ms\":" + number(scene.elapsed_us / 1000.0, 3);
  out += ",\"objects\":[";
  for (size_t i = 0; i < scene.objects.size(); ++i) {
    const SceneObject& o = scene.objects[i];
    if (i) out += ",";
    out += "{\"name\":" + json_string(o.name) + ",\"index\":" + std::to_string(o.index) +
           ",\"score\":" + number(o.score, 4) + ",\"box\":" + box_json(o.box) + ",\"node\":" + json_string(o.node) +
           ",\"colours\":" + colours_json(o.colours) + ",\"colour_node\":" + json_string(o.colour_node) + "}";
  }
  out += "],\"labels\":[";
  for (size_t i = 0; i < scene.labels.size(); ++i) {
    const Label& l = scene.labels[i];
    if (i) out += ",";
    out += "{\"name\":" + json_string(l.name) + ",\"index\":" + std::to_string(l.index) +
           ",\"score\":" + number(l.score, 4) + "}";
  }
  out += "],\"label_node\":" + json_string(scene.label_node);
  out += ",\"colours\":" + colours_json(scene.colours) + ",\"colour_node\":" + json_string(scene.colour_node);
  out += ",\"tasks\":[";
  for (size_t i = 0; i < scene.tasks.size(); ++i) {
    const TaskReport& t = scene.tasks[i];
    if (i) out += ",";
    out += "{\"task\":" + json_string(t.task) + ",\"outcome\":" + json_string(outcome_name(t.outcome)) +
           ",\"node\":" + json_string(t.node) + ",\"nodes\":[";
    for (size_t n = 0; n < t.nodes.size(); ++n) {
      if (n) out += ",";
      out += json_string(t.nodes[n]);
    }
    out += "],\"latency_ms\":" + number(t.latency_us / 1000.0, 3) + ",\"attempts\":" + std::to_string(t.attempts) +
           ",\"node_ms\":{\"decode\":" + number(t.timings.decode_us / 1000.0, 3) +
           ",\"preprocess\":" + number(t.timings.preprocess_us / 1000.0, 3) +
           ",\"inference\":" + number(t.timings.inference_us / 1000.0, 3) +
           ",\"postprocess\":" + number(t.timings.postprocess_us / 1000.0, 3) + "}";
    if (!t.message.empty()) out += ",\"message\":" + json_string(t.message);
    out += "}";
  }
  out += "]}";
  return out;
}

}  // namespace huddle::coordinator
