// Fusion's rules on hand-made answers: box voting, label averaging, the
// summary, and the scene's round trip through the wire format.
#include <capnp/message.h>
#include <catch2/catch.hpp>

#include "coordinator/scene.h"

using namespace huddle::coordinator;

TEST_CASE("box voting merges overlapping boxes of a class and discounts what one detector missed") {
  const std::vector<std::vector<Detection>> answers = {
      {{{0, 0, 100, 100}, 16, "dog", 0.9f}, {{200, 200, 300, 300}, 1, "bicycle", 0.6f}},
      {{{10, 0, 110, 100}, 16, "dog", 0.3f}, {{0, 0, 100, 100}, 17, "horse", 0.5f}},
  };
  const std::vector<Detection> voted = vote_boxes(answers, 0.55f, 10);
  REQUIRE(voted.size() == 3);
  // dog: both answers, IoU 0.82; box weighted 0.9 : 0.3; score (0.9 + 0.3) / 2
  CHECK(voted[0].name == "dog");
  CHECK(voted[0].score == Approx(0.6f));
  CHECK(voted[0].box.x0 == Approx(2.5f));
  CHECK(voted[0].box.x1 == Approx(102.5f));
  // the bicycle and the horse (another class over the dog's box) are each one answer's: halved
  CHECK(voted[1].name == "bicycle");
  CHECK(voted[1].score == Approx(0.3f));
  CHECK(voted[2].name == "horse");
  CHECK(voted[2].score == Approx(0.25f));
  CHECK(vote_boxes(answers, 0.55f, 1).size() == 1);
}

TEST_CASE("one answer's two boxes of the same object count once in its vote") {
  const std::vector<std::vector<Detection>> answers = {
      {{{0, 0, 100, 100}, 3, "car", 0.8f}, {{0, 0, 98, 100}, 3, "car", 0.4f}},
      {},
  };
  const std::vector<Detection> voted = vote_boxes(answers, 0.55f, 10);
  REQUIRE(voted.size() == 1);
  CHECK(voted[0].score == Approx(0.4f));  // the best of the first answer, over two answers
}

TEST_CASE("label averaging counts a label missing from an answer's top-k as 0") {
  const std::vector<std::vector<Label>> answers = {{{1, "cat", 0.7f}, {2, "dog", 0.2f}},
                                                   {{2, "dog", 0.4f}, {3, "fox", 0.4f}}};
  const std::vector<Label> avg = average_labels(answers, 2);
  REQUIRE(avg.size() == 2);
  CHECK(avg[0].name == "cat");
  CHECK(avg[0].score == Approx(0.35f));
  CHECK(avg[1].name == "dog");
  CHECK(avg[1].score == Approx(0.3f));
}

TEST_CASE("the summary names objects with score and colour, then what is missing") {
  Scene s;
  s.objects.push_back({{}, 16, "dog", 0.912f, "n1", {{"brown", 0, 0, 0, 0.5f, 1}}, "n2"});
  s.objects.push_back({{}, 1, "bicycle", 0.84f, "n1", {}, ""});
  s.objects.push_back({{}, 7, "", 0.5f, "n1", {}, ""});
  s.tasks.push_back({"detect", Outcome::ok, "", "n1", {}, {}, 0, 1});
  s.tasks.push_back({"classify", Outcome::node_lost, "gone", "n3", {}, {}, 0, 2});
  CHECK(summarize(s) == "dog (0.91, brown), bicycle (0.84) and class 7 (0.50) (missing: classify: nodeLost)");
  Scene colours_only;
  colours_only.colours = {{"white", 0, 0, 0, 0.6f, 0}, {"black", 0, 0, 0, 0.4f, 0}};
  CHECK(summarize(colours_only) == "colours: white 60% and black 40%");
  CHECK(summarize(Scene{}) == "nothing recognised");
  CHECK_FALSE(Scene{}.complete());
}

TEST_CASE("without a detector the classified image is the object, with the scene's colours") {
  FusionInput in;
  TaskAnswers classify;
  classify.report = {"classify", Outcome::ok, "", "c", {"c"}, {}, 0, 1};
  Answer a;
  a.node = "c";
  a.labels = {{5, "tabby", 0.8f}};
  classify.answers.push_back(a);
  TaskAnswers colour;
  colour.report = {"colour", Outcome::ok, "", "k", {"k"}, {}, 0, 1};
  Answer b;
  b.node = "k";
  b.colours = {{"orange", 200, 120, 0, 0.7f, 3}};
  b.width = 64;
  b.height = 48;
  colour.answers.push_back(b);
  in.tasks = {classify, colour};
  const Scene s = fuse(in);
  REQUIRE(s.objects.size() == 1);
  CHECK(s.objects[0].name == "tabby");
  CHECK(s.objects[0].box.x1 == 64);
  CHECK(s.objects[0].colours.at(0).name == "orange");
  CHECK(s.summary == "tabby (0.80, orange)");
  CHECK(s.complete());
}

TEST_CASE("a scene survives the wire format") {
  Scene s;
  s.width = 640;
  s.height = 480;
  s.objects.push_back({{1, 2, 3, 4}, 16, "dog", 0.9f, "n1", {{"brown", 120, 80, 40, 0.5f, 2.5f}}, "n2"});
  s.labels = {{3, "cat", 0.25f}};
  s.label_node = "n3";
  s.colours = {{"white", 250, 250, 250, 0.75f, 1}};
  s.colour_node = "n2";
  s.tasks.push_back({"detect", Outcome::ok, "", "n1", {"n1"}, {1, 2, 3, 4}, 5000, 1});
  s.tasks.push_back({"classify", Outcome::timeout, "no answer", "n3", {}, {}, 0, 2});
  s.summary = "dog (0.90, brown)";
  s.elapsed_us = 12345;
  capnp::MallocMessageBuilder m;
  write_scene(s, m.initRoot<huddle::protocol::schema::Scene>());
  const Scene r = read_scene(m.getRoot<huddle::protocol::schema::Scene>().asReader());
  CHECK(r.width == 640);
  REQUIRE(r.objects.size() == 1);
  CHECK(r.objects[0].box.y1 == 4);
  CHECK(r.objects[0].colours.at(0).g == 80);
  CHECK(r.objects[0].colour_node == "n2");
  CHECK(r.labels.at(0).name == "cat");
  CHECK(r.tasks.at(1).outcome == Outcome::timeout);
  CHECK(r.tasks.at(1).attempts == 2);
  CHECK(r.tasks.at(0).timings.postprocess_us == 4);
  CHECK(r.tasks.at(0).nodes.at(0) == "n1");
  CHECK(r.summary == s.summary);
  CHECK(r.elapsed_us == 12345);
  CHECK(scene_json(r).find("\"outcome\":\"timeout\"") != std::string::npos);
}
