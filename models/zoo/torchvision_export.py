#!/usr/bin/python3
"""Exports six torchvision classifiers to ONNX with seeded random weights.

Run with Debian's interpreter (/usr/bin/python3): it needs python3-torch,
python3-torchvision, python3-onnx, python3-numpy, python3-pil and
python3-skimage (darknet's photos are used too when the package is there).

For each model: torch.manual_seed(seed) and build it with weights=None (random
He/normal init); re-estimate every batch-norm layer's running statistics on
real photos plus Gaussian noise (reset them, momentum None = cumulative
average, a few forward passes with only the batch-norm layers in train mode),
then eval. Without that, random deep nets with batch norm (the MobileNets,
EfficientNet) give outputs of about 1e-9 and every comparison is meaningless.
Then export to ONNX opset 13, static batch 1: input `input` float32
1x3x224x224, output `logits` float32 1x1000.

Writes into --out (default build/models/torchvision/):
  <model>.onnx                 the model
  <model>.json                 sidecar: source, seed, opset, shapes, sha256 of
                               the .onnx and of the weights, op types, output std
  <model>.<photo>.torch.npy    PyTorch's own output on each reference input
                               (see make_inputs.py), a check on the exporter
Deterministic: the same packages and thread count give byte-identical files;
when a .onnx is already there the script says whether the new one is the same.
"""

import argparse
import hashlib
import io
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import photos  # noqa: E402

# name -> seed for torch.manual_seed before the model is built. Fixed, so that
# everyone who runs this script gets the same weights.
MODELS = {
    "mobilenet_v2": 1001,
    "mobilenet_v3_small": 1002,
    "shufflenet_v2_x1_0": 1003,
    "resnet18": 1004,
    "squeezenet1_1": 1005,
    "efficientnet_b0": 1006,
}
OPSET = 13
INPUT_SHAPE = (1, 3, 224, 224)
CALIBRATION_PASSES = 4
CALIBRATION_NOISE_STD = 0.1  # in normalised units, added to every photo


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="build/models/torchvision", help="output directory")
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated subset of: " + ", ".join(MODELS))
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1; the weights' last bits may depend on it)")
    return p.parse_args()


def weights_sha256(model):
    """sha256 over every state_dict entry: name, dtype, shape and raw bytes."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        t = t.detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def calibration_batches(torch, images, seed):
    """CALIBRATION_PASSES batches: every photo, flipped on odd passes, plus noise."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.from_numpy(images)
    for i in range(CALIBRATION_PASSES):
        x = torch.flip(base, dims=[3]) if i % 2 else base
        yield x + CALIBRATION_NOISE_STD * torch.randn(x.shape, generator=gen)


def recalibrate_batch_norm(torch, model, images, seed):
    """Re-estimates running mean/var of every batch-norm layer; returns how many."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    model.eval()  # dropout and stochastic depth stay off
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over the passes
        bn.train()
    with torch.no_grad():
        for x in calibration_batches(torch, images, seed):
            model(x)
    model.eval()
    return len(bns)


def head_layers(torch, model):
    """The classifier's weight layers, in execution order: every Linear, and
    SqueezeNet's final 1x1 convolution (its classifier has no Linear)."""
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not layers:
        layers = [m for m in model.classifier.modules() if isinstance(m, torch.nn.Conv2d)]
    return layers


def rescale_head(torch, model, images):
    """Scales each classifier layer so that its output has unit std on `images`.

    torchvision initialises classifier layers with std 0.01 (MobileNets,
    EfficientNet, SqueezeNet), which leaves logits at 0.01-0.1 even with
    healthy features; a layer-sequential unit-variance rescale (as LSUV init
    does) brings them to unit scale. Returns the scale factors applied."""
    x = torch.from_numpy(images)
    factors = []
    for layer in head_layers(torch, model):
        seen = []
        hook = layer.register_forward_hook(lambda m, i, o: seen.append(o.std().item()))
        with torch.no_grad():
            model(x)
            hook.remove()
            layer.weight /= seen[0]
            if layer.bias is not None:
                layer.bias /= seen[0]
        factors.append(1.0 / seen[0])
    return factors


def main():
    args = parse_args()
    torch = photos.require("torch", "python3-torch")
    torchvision = photos.require("torchvision", "python3-torchvision")
    onnx = photos.require("onnx", "python3-onnx")
    np = photos.require("numpy", "python3-numpy")
    photos.require("PIL", "python3-pil")
    photos.require("skimage", "python3-skimage")

    names = [n for n in args.models.split(",") if n]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        sys.exit(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(MODELS)}")
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)

    calib_names = photos.available()
    if not any(n.startswith("darknet-") for n in calib_names):
        print("note: darknet's photos are not installed (apt-get install darknet); "
              "calibrating on skimage's photos only, so the weights differ from the usual ones",
              file=sys.stderr)
    calib = np.concatenate([photos.tensor(n) for n in calib_names])
    refs = {n: photos.tensor(n) for n in photos.REFERENCE_INPUTS}

    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, onnx {onnx.__version__}, "
          f"{args.threads} thread(s); calibration: {len(calib_names)} photos x {CALIBRATION_PASSES} passes")
    for name in names:
        t0 = time.monotonic()
        seed = MODELS[name]
        torch.manual_seed(seed)
        model = getattr(torchvision.models, name)(weights=None)
        n_bn = recalibrate_batch_norm(torch, model, calib, seed)
        first = torch.from_numpy(refs[photos.REFERENCE_INPUTS[0]])
        with torch.no_grad():
            std_before = float(model(first).std())
        head_scales = rescale_head(torch, model, calib)

        with torch.no_grad():
            outs = {p: model(torch.from_numpy(x)).numpy() for p, x in refs.items()}
        std = float(np.mean([o.std() for o in outs.values()]))

        buf = io.BytesIO()
        with torch.no_grad():
            torch.onnx.export(model, first, buf,
                              opset_version=OPSET, input_names=["input"], output_names=["logits"],
                              do_constant_folding=True, export_params=True)
        data = buf.getvalue()
        graph = onnx.load_from_string(data)
        onnx.checker.check_model(graph)
        op_types = sorted({node.op_type for node in graph.graph.node})
        sha = hashlib.sha256(data).hexdigest()

        path = os.path.join(args.out, name + ".onnx")
        same = None
        if os.path.exists(path):
            with open(path, "rb") as f:
                same = hashlib.sha256(f.read()).hexdigest() == sha
        with open(path, "wb") as f:
            f.write(data)
        for p, o in outs.items():
            np.save(os.path.join(args.out, f"{name}.{p}.torch.npy"), o.astype(np.float32))

        sidecar = {
            "model": name,
            "source": f"torchvision.models.{name}(weights=None)",
            "torchvision": torchvision.__version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "seed": seed,
            "weights": "random (torch.manual_seed(seed), torchvision's init), batch-norm statistics "
                       "re-estimated on real photos plus noise, classifier layers rescaled to unit "
                       "output std on the photos",
            "calibration": {"photos": list(calib_names), "passes": CALIBRATION_PASSES,
                            "noise_std": CALIBRATION_NOISE_STD, "batch_norm_layers": n_bn,
                            "torch_threads": args.threads,
                            "head_layer_scales": head_scales,
                            "output_std_before_head_rescale": std_before},
            "opset": OPSET,
            "input": {"name": "input", "dtype": "float32", "shape": list(INPUT_SHAPE),
                      "layout": "NCHW RGB", "preprocess": "resize short side 256 (bilinear), "
                      "centre crop 224, /255, ImageNet mean/std"},
            "output": {"name": "logits", "dtype": "float32",
                       "shape": [int(d.dim_value) for d in
                                 graph.graph.output[0].type.tensor_type.shape.dim]},
            "bytes": len(data),
            "sha256": sha,
            "weights_sha256": weights_sha256(model),
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "nodes": len(graph.graph.node),
            "op_types": op_types,
            "output_std": {p: float(o.std()) for p, o in outs.items()},
        }
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(sidecar, f, indent=2)
            f.write("\n")

        det = "" if same is None else ("  (byte-identical to the previous file)" if same
                                       else "  (DIFFERENT from the previous file)")
        print(f"{name:20s} seed {seed}  {len(data) / 1e6:6.2f} MB  output std {std:.3f}  "
              f"(before head rescale {std_before:.3f})  {time.monotonic() - t0:5.1f} s  sha256 {sha[:16]}{det}")
        print(f"{'':20s} {len(graph.graph.node)} nodes, ops: {' '.join(op_types)}")
        if not 0.05 < std < 100:
            print(f"{name}: output std {std:g} is not at unit scale; comparisons would be meaningless",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
