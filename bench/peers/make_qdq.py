#!/usr/bin/python3
"""Makes ONNX Runtime's int8 model: a QDQ ONNX from an fp32 ONNX and calibrated ranges.

Two steps, with ONNX Runtime run in between (bench/peers/ort-ranges.js):

  make_qdq.py expose MODEL.onnx -o MODEL.ranges.onnx
      the same model with every float intermediate tensor added as a graph
      output, so that one run shows them all
  node bench/peers/ort-ranges.js MODEL.ranges.onnx -o RANGES.json CALIB.npy...
      runs ONNX Runtime fp32 on the calibration inputs, writes each tensor's min/max
  make_qdq.py quantize MODEL.onnx --ranges RANGES.json -o MODEL.qdq.onnx
      the QDQ model ONNX Runtime fuses into its int8 kernels

The quantisation (the scheme huddle's int8 engine uses, engine/INT8.md):
- weights of Conv and Gemm: int8 symmetric per output channel (zero point 0),
  stored as int8 initializers behind a DequantizeLinear with `axis`; biases
  int32 with scale = input scale x weight scale, behind a DequantizeLinear;
- activations: per tensor, asymmetric uint8 (ONNX Runtime's fast u8s8 path on
  x86) from the calibrated min/max (widened to hold 0), as a
  QuantizeLinear/DequantizeLinear pair on every float activation;
- a Relu, or a Clip from 0, right after a Conv, Gemm or Add is removed: the
  quantisation of its output (zero point 0, top at the calibrated maximum)
  clamps the same way;
- the outputs of data-movement ops (Reshape, Flatten, Transpose, MaxPool, ...)
  keep their input's scale and zero point, so ONNX Runtime runs them on int8.
Run with /usr/bin/python3 (python3-onnx, python3-numpy).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "zoo"))
import photos  # noqa: E402

onnx = photos.require("onnx", "python3-onnx")
np = photos.require("numpy", "python3-numpy")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

WEIGHTED_OPS = {"Conv", "Gemm"}
FOLDABLE_INTO = {"Conv", "Gemm", "Add"}  # producers whose Relu/Clip the output quantisation absorbs
DATA_MOVEMENT = {"Reshape", "Flatten", "Transpose", "MaxPool", "Squeeze", "Unsqueeze", "Identity", "Slice",
                 "Gather", "Split"}


class QdqError(Exception):
    pass


def float_tensors(model):
    """Names of the float activations: graph inputs (not initializers) and node outputs typed float."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    init = {t.name for t in g.initializer}
    typed = {v.name: v.type.tensor_type.elem_type for v in list(g.value_info) + list(g.input) + list(g.output)}
    names = [i.name for i in g.input if i.name not in init and typed.get(i.name) == TensorProto.FLOAT]
    for n in g.node:
        if n.op_type == "Constant":
            continue
        names += [o for o in n.output if o and typed.get(o) == TensorProto.FLOAT]
    return names


def expose(args):
    model = onnx.load(args.model)
    outputs = {o.name for o in model.graph.output}
    inputs = {i.name for i in model.graph.input}
    added = 0
    for name in float_tensors(model):
        if name not in outputs and name not in inputs:
            model.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
            added += 1
    onnx.save(model, args.output)
    print(f"{os.path.basename(args.model)}: {added} intermediate tensors exposed -> {args.output}")
    return 0


def activation_params(lo, hi):
    """uint8 scale and zero point for the range [lo, hi], widened to hold 0."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    scale = (hi - lo) / 255.0
    if scale <= 0.0:
        return 1.0, 0
    zero = int(round(-lo / scale))
    return scale, max(0, min(255, zero))


def constant_value(graph, name):
    """The value of an initializer or Constant node's output, or None."""
    for t in graph.initializer:
        if t.name == name:
            return numpy_helper.to_array(t)
    for n in graph.node:
        if n.op_type == "Constant" and n.output[0] == name:
            for a in n.attribute:
                if a.name == "value":
                    return numpy_helper.to_array(a.t)
    return None


def fold_activations(graph, consumers):
    """Removes each Relu (or Clip from 0) that alone consumes a Conv/Gemm/Add output; returns how many."""
    producer = {o: n for n in graph.node for o in n.output}
    outputs = {o.name for o in graph.output}
    removed = []
    for n in graph.node:
        if n.op_type not in ("Relu", "Clip"):
            continue
        src = n.input[0]
        p = producer.get(src)
        if p is None or p.op_type not in FOLDABLE_INTO or len(consumers.get(src, [])) != 1 or src in outputs:
            continue
        if n.op_type == "Clip":
            lo = constant_value(graph, n.input[1]) if len(n.input) > 1 and n.input[1] else None
            if lo is None or float(lo) != 0.0:
                continue
        p.output[list(p.output).index(src)] = n.output[0]
        removed.append(n)
    for n in removed:
        graph.node.remove(n)
    # The Clips' bounds are now read by nothing.
    used = {i for n in graph.node for i in n.input} | outputs
    for n in [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]:
        graph.node.remove(n)
    for t in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(t)
    return len(removed)


def quantize_weights(graph, node, in_params, new_init, new_nodes):
    """Replaces the node's weight (and bias) initializers by int8 (int32) ones behind DequantizeLinear."""
    init = {t.name: t for t in graph.initializer}
    w_name = node.input[1]
    if w_name not in init:
        return False
    w = numpy_helper.to_array(init[w_name]).astype(np.float64)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Gemm":
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
            return False
        axis = 0 if attrs.get("transB", 0) else 1
    else:
        axis = 0
    moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    amax = np.abs(moved).max(axis=1)
    w_scale = np.where(amax > 0, amax / 127.0, 1.0)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.round(w / w_scale.reshape(shape)), -127, 127).astype(np.int8)
    new_init += [numpy_helper.from_array(q, w_name + "_int8"),
                 numpy_helper.from_array(w_scale.astype(np.float32), w_name + "_scale"),
                 numpy_helper.from_array(np.zeros(len(w_scale), np.int8), w_name + "_zero_point")]
    new_nodes.append(helper.make_node("DequantizeLinear", [w_name + "_int8", w_name + "_scale",
                                                          w_name + "_zero_point"], [w_name], axis=axis))
    graph.initializer.remove(init[w_name])
    if len(node.input) > 2 and node.input[2] in init and in_params is not None:
        b_name = node.input[2]
        b = numpy_helper.to_array(init[b_name]).astype(np.float64)
        b_scale = in_params[0] * w_scale
        if b.shape != b_scale.shape:
            raise QdqError(f"node {node.name}: bias shape {b.shape} is not one per output channel")
        qb = np.clip(np.round(b / b_scale), -2**31, 2**31 - 1).astype(np.int32)
        new_init += [numpy_helper.from_array(qb, b_name + "_int32"),
                     numpy_helper.from_array(b_scale.astype(np.float32), b_name + "_scale"),
                     numpy_helper.from_array(np.zeros(len(b_scale), np.int32), b_name + "_zero_point")]
        new_nodes.append(helper.make_node("DequantizeLinear", [b_name + "_int32", b_name + "_scale",
                                                              b_name + "_zero_point"], [b_name], axis=0))
        graph.initializer.remove(init[b_name])
    return True


def quantize(args):
    model = onnx.load(args.model)
    with open(args.ranges) as f:
        ranges = json.load(f)["ranges"]
    g = model.graph
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    folded = fold_activations(g, consumers)
    activations = set(float_tensors(model))
    graph_inputs = {i.name for i in g.input}

    # Quantisation parameters per activation, in graph order (a data-movement
    # op's output inherits its input's).
    params = {}
    for name in (i.name for i in g.input):
        if name in activations and name in ranges:
            params[name] = activation_params(*ranges[name])
    for n in g.node:
        for o in n.output:
            if o not in activations:
                continue
            if n.op_type in DATA_MOVEMENT and n.input[0] in params:
                params[o] = params[n.input[0]]
            elif o in ranges:
                params[o] = activation_params(*ranges[o])
    missing = sorted(activations - set(params))
    if missing:
        print(f"make_qdq.py: no range for {len(missing)} float tensor(s), left in float: "
              f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}", file=sys.stderr)

    new_init, weight_nodes, body = [], [], []
    weighted = 0

    def qdq(key, src, dst):
        """Q then DQ of tensor `src` (float) into tensor `dst` (float again), with params[key]."""
        scale, zero = params[key]
        new_init.extend([numpy_helper.from_array(np.array(scale, np.float32), key + "_act_scale"),
                         numpy_helper.from_array(np.array(zero, np.uint8), key + "_act_zero_point")])
        body.append(helper.make_node("QuantizeLinear", [src, key + "_act_scale", key + "_act_zero_point"],
                                     [key + "_uint8"]))
        body.append(helper.make_node("DequantizeLinear", [key + "_uint8", key + "_act_scale",
                                                          key + "_act_zero_point"], [dst]))

    # Graph inputs: consumers read the dequantised copy.
    renamed = {}
    for key in params:
        if key in graph_inputs:
            renamed[key] = key + "_dequantized"
            qdq(key, key, renamed[key])
    for n in g.node:
        for k, i in enumerate(n.input):
            if i in renamed:
                n.input[k] = renamed[i]
        if n.op_type in WEIGHTED_OPS:
            source = n.input[0]
            key = source[:-len("_dequantized")] if source.endswith("_dequantized") else source
            weighted += quantize_weights(g, n, params.get(key), new_init, weight_nodes)
        # Outputs: the node writes a float copy, Q/DQ restores the name its consumers read.
        quantized = [o for o in n.output if o in params]
        for k, o in enumerate(n.output):
            if o in params:
                n.output[k] = o + "_float"
        body.append(n)
        for key in quantized:
            qdq(key, key + "_float", key)

    del g.node[:]
    g.node.extend(weight_nodes + body)
    g.initializer.extend(new_init)
    onnx.checker.check_model(model)
    onnx.save(model, args.output)
    print(f"{os.path.basename(args.model)}: {len(params)} activations uint8 per tensor, {weighted} weight "
          f"tensors int8 per channel, {folded} Relu/Clip folded -> {args.output} "
          f"({os.path.getsize(args.output) / 1e6:.1f} MB)")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("expose", help="add every float intermediate tensor as a graph output")
    e.add_argument("model")
    e.add_argument("-o", "--output", required=True)
    q = sub.add_parser("quantize", help="write the QDQ model from the fp32 model and the ranges")
    q.add_argument("model")
    q.add_argument("--ranges", required=True, help="JSON from ort-ranges.js: {\"ranges\": {tensor: [min, max]}}")
    q.add_argument("-o", "--output", required=True)
    args = p.parse_args()
    try:
        return expose(args) if args.command == "expose" else quantize(args)
    except (OSError, QdqError, onnx.checker.ValidationError, KeyError, ValueError) as e:
        print(f"make_qdq.py {args.command}: {args.model}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
