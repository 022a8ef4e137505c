#!/usr/bin/python3
"""Multiply-accumulates of one inference of an ONNX model, by kind of layer.

    macs.py model.onnx...   one JSON line per model: {"model", "dense", "depthwise", "first"}

dense: convolutions with groups < channels and Gemm/MatMul with a constant B
(what runs on the GEMM family); depthwise: convolutions with one input
channel per group (the depthwise family); first: the dense MACs of the
convolutions that read fewer than 8 channels per group (the 3-channel stems,
where a kernel's K padding costs most). Shapes come from ONNX's shape
inference with the inputs' declared shapes (batch 1).
"""
import json
import os
import sys

import onnx
from onnx import shape_inference


def dims(value_info):
    return [d.dim_value for d in value_info.type.tensor_type.shape.dim]


def count(path):
    model = shape_inference.infer_shapes(onnx.load(path))
    g = model.graph
    shapes = {v.name: dims(v) for v in list(g.input) + list(g.output) + list(g.value_info)}
    inits = {t.name: list(t.dims) for t in g.initializer}
    shapes.update(inits)
    dense = depthwise = first = 0
    for node in g.node:
        if node.op_type == "Conv":
            w = shapes[node.input[1]]  # [O, C/group, KH, KW]
            y = shapes[node.output[0]]
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            per_out = w[1] * w[2] * w[3]
            macs = 1
            for d in y:
                macs *= max(d, 1)
            macs *= per_out
            if w[1] == 1 and group > 1:
                depthwise += macs
            else:
                dense += macs
                if w[1] < 8:
                    first += macs
        elif node.op_type in ("Gemm", "MatMul") and node.input[1] in inits:
            a, b = shapes[node.input[0]], inits[node.input[1]]
            rows = 1
            for d in a[:-1]:
                rows *= max(d, 1)
            dense += rows * b[0] * b[1]
    name = os.path.basename(path).rsplit(".", 1)[0]
    return {"model": name, "dense": dense, "depthwise": depthwise, "first": first}


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(json.dumps(count(p)))
