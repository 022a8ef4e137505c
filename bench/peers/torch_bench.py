#!/usr/bin/python3
"""PyTorch's side of `bench/run peers`: fp32 and int8 (onednn) TorchScript models, and their timings.

  torch_bench.py prepare --out DIR --calib NPY_DIR --zoo ZOO --outputs OUT_DIR [--models LIST]
      for each model, build it exactly as models/zoo/torchvision_export.py does
      (same seed, same batch-norm re-estimation and head rescale, 1 thread),
      check its weights against the exported ONNX's sidecar (weights_sha256),
      then write DIR/<model>.torch.pt (fp32: traced, frozen) and
      DIR/<model>.torch-int8.pt (FX graph mode post-training static
      quantisation, quantized engine onednn, its default qconfig mapping:
      activations uint8 per tensor, weights int8 per channel; calibrated on
      the .npy photos of NPY_DIR; traced, frozen), and write both models'
      outputs on the held-out reference photos (ZOO/input-<photo>.npy) as
      OUT_DIR/<model>.<photo>.pt-fp32.npy and .pt-int8.npy; where FX cannot
      trace the model, DIR/<model>.torch-int8.skip says so instead
  torch_bench.py run MODEL.pt --input X.npy [--threads N] [--runs N] [--warmup N]
      time one inference (torch.set_num_threads(N), inter-op 1, no_grad);
      one JSON line (see peer_timing.py)

Run with /usr/bin/python3 (python3-torch 1.13, python3-torchvision 0.14).
Set GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296
for stable timings (bench/run does).
"""

import argparse
import glob
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "models", "zoo"))
import peer_timing  # noqa: E402
import photos  # noqa: E402

ENGINE_FP32 = "pytorch-fp32"
ENGINE_INT8 = "pytorch-int8-onednn"


def build_model(torch, torchvision, np, export, name):
    """The model as torchvision_export.py builds it (its seed, batch norm, head), in eval mode."""
    calib = np.concatenate([photos.tensor(n) for n in photos.available()])
    torch.manual_seed(export.MODELS[name])
    model = getattr(torchvision.models, name)(weights=None)
    export.recalibrate_batch_norm(torch, model, calib, export.MODELS[name])
    export.rescale_head(torch, model, calib)
    return model.eval()


def prepare(args):
    torch = photos.require("torch", "python3-torch")
    torchvision = photos.require("torchvision", "python3-torchvision")
    np = photos.require("numpy", "python3-numpy")
    import torchvision_export as export
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "onednn"
    calib_files = sorted(glob.glob(os.path.join(args.calib, "*.npy")))
    if not calib_files:
        sys.exit(f"torch_bench.py prepare: no calibration .npy files in {args.calib}")
    calib = [torch.from_numpy(np.load(f)) for f in calib_files]
    held_out = {p: np.load(os.path.join(args.zoo, f"input-{p}.npy")) for p in photos.REFERENCE_INPUTS}
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.outputs, exist_ok=True)
    status = 0
    for name in args.models.split(","):
        torch.set_num_threads(1)  # the weights' last bits depend on it (models/zoo/README.md)
        model = build_model(torch, torchvision, np, export, name)
        sidecar = os.path.join(args.zoo, name + ".json")
        want = json.load(open(sidecar))["weights_sha256"] if os.path.exists(sidecar) else None
        if want != export.weights_sha256(model):
            print(f"torch_bench.py: {name}: the weights differ from {sidecar}'s (rerun scripts/models): "
                  "PyTorch would not run the same model", file=sys.stderr)
            status = 1
            continue
        example = (calib[0],)
        paths = {"fp32": os.path.join(args.out, name + ".torch.pt"),
                 "int8": os.path.join(args.out, name + ".torch-int8.pt")}
        skip = os.path.join(args.out, name + ".torch-int8.skip")
        for path in list(paths.values()) + [skip]:
            if os.path.exists(path):
                os.remove(path)
        with torch.no_grad():
            models = {"fp32": torch.jit.freeze(torch.jit.trace(model, example))}
            try:
                qmodel = prepare_fx(model, get_default_qconfig_mapping("onednn"), example)
            except torch.fx.proxy.TraceError as e:
                # shufflenet's channel shuffle unpacks x.size() and x.chunk(): FX cannot trace it.
                with open(skip, "w") as f:
                    f.write(f"n/a (FX graph mode quantisation cannot trace the model: {str(e).split('.')[0]})\n")
            else:
                for x in calib:
                    qmodel(x)
                models["int8"] = torch.jit.freeze(torch.jit.trace(convert_fx(qmodel), example))
        sizes = []
        for kind, m in models.items():
            torch.jit.save(m, paths[kind])
            sizes.append(f"{kind} {os.path.getsize(paths[kind]) / 1e6:.1f} MB")
            with torch.no_grad():
                for p, x in held_out.items():
                    np.save(os.path.join(args.outputs, f"{name}.{p}.pt-{kind}.npy"), m(torch.from_numpy(x)).numpy())
        print(f"{name:20s} weights as exported; {', '.join(sizes)}"
              + (f", int8: {open(skip).read().strip()}" if "int8" not in models else
                 f", int8 calibrated on {len(calib)} photos"))
    return status


def run(args):
    torch = photos.require("torch", "python3-torch")
    np = photos.require("numpy", "python3-numpy")
    torch.backends.quantized.engine = "onednn"
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    x = torch.from_numpy(np.load(args.input))
    baseline = peer_timing.max_rss_kib()
    start = peer_timing.time.perf_counter()
    try:
        model = torch.jit.load(args.model)
    except (RuntimeError, ValueError) as e:
        sys.exit(f"torch_bench.py: {args.model}: cannot load: {e}")
    load_ms = (peer_timing.time.perf_counter() - start) * 1e3
    engine = ENGINE_INT8 if args.model.endswith("-int8.pt") else ENGINE_FP32
    with torch.no_grad():
        times = peer_timing.time_runs(lambda: model(x), args.runs, args.warmup)
    peer_timing.report(engine, torch.__version__, args, load_ms, times, baseline,
                       quantized_engine=torch.backends.quantized.engine)
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        sys.argv.pop(1)
        args = peer_timing.parse_args("torch_bench.py run", "time one inference of a TorchScript model")
        return run(args)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("prepare", help="write the fp32 and int8 TorchScript models")
    q.add_argument("--out", required=True)
    q.add_argument("--calib", required=True, help="directory of calibration .npy inputs (calib_photos.py)")
    q.add_argument("--zoo", default="build/models/torchvision", help="scripts/models' output directory")
    q.add_argument("--outputs", required=True, help="where the outputs on the held-out photos go")
    q.add_argument("--models", default="mobilenet_v2,mobilenet_v3_small,shufflenet_v2_x1_0,resnet18,"
                   "squeezenet1_1,efficientnet_b0")
    sub.add_parser("run", help="time a model (see the usage above)")
    return prepare(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())
