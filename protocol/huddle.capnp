# The wire protocol between a coordinator (or `huddle ask`) and a node
# (DESIGN.md §6). A request is a multipart ZeroMQ message: one Request frame,
# then, for a run request, the image as its own frame (a PNG or JPEG file's
# bytes, never re-encoded, or raw pixels as `RunRequest.raw` describes). The
# node answers with one Response frame.
#
# Evolution is append-only: new fields and union members get new ordinals,
# nothing is renumbered, retyped or removed; every union's lowest ordinal is
# `unset`, what a reader sees when the sender knows a member it does not.
# `version` is kProtocolVersion of the sender; a reader accepts any version
# and ignores what it does not know.
@0x8ef0356a7844afa9;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("huddle::protocol::schema");

const protocolVersion :UInt16 = 1;

# A rectangle in pixels of the image as it is meant to be seen (after EXIF
# orientation): x0 <= x < x1, y0 <= y < y1.
struct Box {
  x0 @0 :Float32;
  y0 @1 :Float32;
  x1 @2 :Float32;
  y1 @3 :Float32;
}

# Options every task reads the parts of it understands.
struct TaskOptions {
  topK @0 :UInt16 = 5;        # classify: labels to return
  colours @1 :UInt8 = 5;      # colour: clusters per image or region
  # detect: the lowest score an object is reported with; 0 = the model's default.
  minScore @2 :Float32 = 0;
  maxObjects @3 :UInt16 = 100;  # detect: at most this many objects, best first
}

enum PixelFormat {
  unset @0;
  gray @1;
  rgb @2;
  rgba @3;
}

# An uncompressed frame in the image frame: height rows of width pixels,
# packed, 1/3/4 bytes per pixel.
struct RawImage {
  width @0 :UInt32;
  height @1 :UInt32;
  format @2 :PixelFormat;
}

struct RunRequest {
  task @0 :Text;              # the task the sender expects the node to serve
  options @1 :TaskOptions;
  regions @2 :List(Box);      # tasks that work per region (colour) use these
  image :union {
    unset @3 :Void;
    encoded @4 :Void;         # the image frame is a PNG or JPEG file
    raw @5 :RawImage;         # the image frame is raw pixels
  }
}

# What a client asks a coordinator (`huddle coordinator`): recognise one
# image with the pool's nodes. The image travels as its own frame, as for a
# run request.
struct RecognizeRequest {
  tasks @0 :List(Text);       # the tasks wanted; empty = every task present in the pool
  options @1 :TaskOptions;
  ensemble @2 :Bool;          # send each task to every node serving it and combine
  image :union {
    unset @3 :Void;
    encoded @4 :Void;
    raw @5 :RawImage;
  }
}

struct Request {
  version @0 :UInt16;
  id @1 :UInt64;              # echoed in the response
  # Milliseconds the sender will wait from the moment it sends (devices'
  # clocks differ, so never an absolute time); 0 = no deadline.
  deadlineMs @2 :UInt32;
  body :union {
    unset @3 :Void;
    run @4 :RunRequest;
    status @5 :Void;          # asks for the node's NodeStatus
    recognize @6 :RecognizeRequest;  # to a coordinator: the fused scene of an image
    pair @7 :PairRequest;     # to a node open for pairing: pair with the sender's key
    unpair @8 :Void;          # to a node: forget the sender's key (it is paired no more)
  }
}

enum Code {
  unset @0;
  ok @1;
  badInput @2;                # the request or its image is malformed; message says what
  overloaded @3;              # the node has its maximum of requests in flight
  expired @4;                 # the deadline passed before inference started
  error @5;                   # the node failed; message says how
  refused @6;                 # not allowed: the sender's key is not paired, or pairing was refused
}

# Microseconds spent in each stage of a run request.
struct Timings {
  decodeUs @0 :UInt32;
  preprocessUs @1 :UInt32;
  inferenceUs @2 :UInt32;
  postprocessUs @3 :UInt32;
}

struct Label {
  index @0 :UInt32;           # the model's class index
  name @1 :Text;              # from the model's labels; empty if it has none
  score @2 :Float32;          # probability (softmax of the logits when the model gives logits)
}

struct ClassifyResult {
  labels @0 :List(Label);     # best first
}

struct Detection {
  box @0 :Box;                # in pixels of the (EXIF-oriented) input image
  index @1 :UInt32;           # the model's class index
  name @2 :Text;              # from the model's labels; empty if it has none
  score @3 :Float32;          # 0..1
}

struct DetectResult {
  objects @0 :List(Detection);  # best score first, after non-maximum suppression
}

struct Colour {
  name @0 :Text;              # the nearest named colour (CSS/X11 palette, CIEDE2000)
  r @1 :UInt8;                # the cluster's mean colour, sRGB
  g @2 :UInt8;
  b @3 :UInt8;
  share @4 :Float32;          # fraction of the pixels, 0..1
  deltaE @5 :Float32;         # CIEDE2000 distance from the mean colour to the named one
}

struct ColourSet {
  box @0 :Box;                # the region (the whole image for ColourResult.image)
  colours @1 :List(Colour);   # largest share first
}

struct ColourResult {
  image @0 :ColourSet;
  regions @1 :List(ColourSet);  # one per requested region, in request order
}

# One task's answer. Adding a task appends its member here.
struct Result {
  union {
    unset @0 :Void;
    classify @1 :ClassifyResult;
    colour @2 :ColourResult;
    detect @3 :DetectResult;
  }
}

enum NodeState {
  unset @0;
  warming @1;
  ready @2;
  stopping @3;
}

struct NodeStatus {
  nodeId @0 :Text;
  task @1 :Text;
  model @2 :Text;             # the model file's name; empty for a task without a model
  modelSha256 @3 :Text;
  state @4 :NodeState;
  inFlight @5 :UInt16;
  maxInFlight @6 :UInt16;
  workers @7 :UInt16;
  served @8 :UInt64;          # run requests answered ok since start
  software @9 :Text;          # huddle's version
  encrypted @10 :Bool;        # CURVE: the link is encrypted and the sender's key paired
  keepsImages @11 :Bool;      # false: no image is kept once its request is answered
  deviceId @12 :Text;         # the id of the node's public key ("" when --insecure)
  pairing @13 :Bool;          # open for pairing now
}

# Pairing (issue 9): a coordinator asks a node open for pairing to trust the
# coordinator's public key (the sender's CURVE key, which the node reads from
# the connection, never from the message).
struct PairRequest {
  name @0 :Text;              # the coordinator's name, for a person (at most 63 bytes)
  unixSeconds @1 :Int64;      # the coordinator's clock: the verification code's window
}

struct PairResult {
  code @0 :Text;              # the verification code the node computed and showed
  deviceId @1 :Text;          # the node's device id
  name @2 :Text;              # the node's name (its node id)
  task @3 :Text;
}

# How one task of a recognised frame went.
enum Outcome {
  unset @0;
  ok @1;
  timeout @2;                 # no answer by the frame's deadline
  nodeLost @3;                # the node serving it went away (connection closed, heartbeats stopped)
  overloaded @4;              # every node of the task refused: too many requests in flight
  error @5;                   # the node failed or answered something unreadable; message says what
  noNode @6;                  # no node in the pool serves the task
  badInput @7;                # the node refused the image as malformed
  expired @8;                 # the node found the deadline spent before it could run
}

struct TaskReport {
  task @0 :Text;
  outcome @1 :Outcome;
  message @2 :Text;           # for any outcome but ok: what happened, for a person
  node @3 :Text;              # the id of the node that answered (or was asked last)
  nodes @4 :List(Text);       # ensemble: every node whose answer was combined
  timings @5 :Timings;        # the answering node's own stages
  latencyUs @6 :UInt32;       # from sending to the answer, at the coordinator
  attempts @7 :UInt8;         # requests sent for this task (a retry makes 2)
}

# An object of the scene: found by a detector (or, without one, the image
# itself classified), with what the other tasks say of its box.
struct SceneObject {
  box @0 :Box;
  index @1 :UInt32;
  name @2 :Text;
  score @3 :Float32;
  node @4 :Text;              # who found it
  colours @5 :List(Colour);   # of its box, largest share first; empty when no colour node answered
  colourNode @6 :Text;
}

struct Scene {
  width @0 :UInt32;           # the image as seen (after EXIF orientation); 0 if no node decoded it
  height @1 :UInt32;
  objects @2 :List(SceneObject);  # best score first
  labels @3 :List(Label);     # classify: the scene's labels, best first
  labelNode @4 :Text;
  colours @5 :List(Colour);   # the whole image's colours
  colourNode @6 :Text;
  tasks @7 :List(TaskReport); # one per task asked for, in the order asked
  summary @8 :Text;           # "dog (0.91, brown) and bicycle (0.84, red)"
  elapsedUs @9 :UInt32;       # at the coordinator, from receiving the image to the fused scene
}

struct Response {
  version @0 :UInt16;
  id @1 :UInt64;              # the request's id (0 if the request was unreadable)
  code @2 :Code;
  message @3 :Text;           # for any code but ok: what went wrong, for a person
  timings @4 :Timings;
  body :union {
    unset @5 :Void;
    result @6 :Result;        # answer to a run request
    status @7 :NodeStatus;    # answer to a status request
    scene @8 :Scene;          # a coordinator's answer to a recognize request
    paired @9 :PairResult;    # a node's answer to a pair request it accepted
    unpaired @10 :Void;       # a node's answer to an unpair request: the sender's key is forgotten
  }
}
