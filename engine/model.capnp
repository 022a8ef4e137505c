# The .hdm model file: everything but the weights. See engine/model_file.h for
# the file layout around this message. Evolution is append-only: new fields
# get new ordinals, nothing is renumbered or removed.
@0xc093c75128372821;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("huddle::engine::schema");

enum DType {
  f32 @0;
  i8 @1;
  i32 @2;
  f16 @3;
  u8 @4;
  i64 @5;
}

# Quantisation of an int8/uint8/int32 tensor: real = scale * (q - zeroPoint).
# One scale and zero point per tensor (axis = -1) or one per index of `axis`;
# no zero points at all means every zero point is 0.
struct Quant {
  scale @0 :List(Float32);
  zeroPoint @1 :List(Int32);
  axis @2 :Int32 = -1;
}

struct Tensor {
  name @0 :Text;
  dtype @1 :DType;
  shape @2 :List(Int64);
  quant @3 :Quant;
  # Constant data: byte offset into the weights section (a multiple of 64)
  # and length. A tensor with dataLength 0 is not a constant.
  dataOffset @4 :UInt64;
  dataLength @5 :UInt64;
}

struct Attribute {
  name @0 :Text;
  union {
    int @1 :Int64;
    float @2 :Float32;
    ints @3 :List(Int64);
    floats @4 :List(Float32);
    text @5 :Text;
  }
}

struct Node {
  name @0 :Text;
  op @1 :Text;                  # the op type, as the engine's op registry names it
  inputs @2 :List(UInt32);      # tensor indices; 0xffffffff marks an absent optional input
  outputs @3 :List(UInt32);
  attributes @4 :List(Attribute);
}

struct Graph {
  tensors @0 :List(Tensor);
  nodes @1 :List(Node);         # in an order where every input exists before it is read
  inputs @2 :List(UInt32);
  outputs @3 :List(UInt32);
}

# How an image becomes the model's input: resize to width x height (by
# `resize` and `crop`), reorder colours, then x = (pixel - mean[c]) / std[c] with pixel
# values in 0..255.
struct Preprocess {
  width @0 :UInt32;
  height @1 :UInt32;
  layout @2 :Layout;
  colourOrder @3 :ColourOrder;
  mean @4 :List(Float32);
  std @5 :List(Float32);
  resize @6 :Resize;
  # centerCrop only: the fraction of the largest centred region with the
  # target's aspect ratio that is kept, e.g. 0.875 for torchvision's "resize
  # the shorter side to 256, crop 224". In (0, 1].
  crop @7 :Float32 = 1.0;

  enum Layout { nhwc @0; nchw @1; }
  enum ColourOrder { rgb @0; bgr @1; gray @2; }
  enum Resize { stretch @0; letterbox @1; centerCrop @2; }
}

struct Provenance {
  source @0 :Text;              # file name of the model it was made from
  sourceSha256 @1 :Text;        # hex
  producer @2 :Text;            # tool and version, e.g. "huddle convert 0.1.0 (onnx)"
  notes @3 :Text;
}

struct Model {
  graph @0 :Graph;
  task @1 :Text;                # "classify", "detect", ... or empty
  labels @2 :List(Text);
  preprocess @3 :Preprocess;
  provenance @4 :Provenance;
  # task "detect": how the model's outputs decode into boxes (node/tasks/detect.cc).
  detector @5 :Detector;
}

struct Detector {
  head @0 :Head;
  enum Head {
    none @0;
    # outputs: a heat map [1, H, W, classes] after sigmoid, and box sides
    # [1, H, W, 4] (left, top, right, bottom distances in input pixels);
    # stride = input height / H.
    centernet @1;
    # outputs per level: class scores [1, N, classes] after sigmoid and side
    # distributions [1, N, 4 * (regMax + 1)] (left, top, right, bottom, each a
    # softmax over regMax + 1 bins in units of the stride); N = (size / stride)^2.
    nanodet @2;
  }
  scoreThreshold @1 :Float32 = 0.3;  # default lowest score reported
  iouThreshold @2 :Float32 = 0.5;    # non-maximum suppression overlap, per class
}
