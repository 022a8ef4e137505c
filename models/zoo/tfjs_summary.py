#!/usr/bin/python3
"""Says what the TensorFlow.js reference outputs of tfjs_refs.sh show on each photo.

  centernet  the top peaks of tower_0/keypoints [1,128,128,80] (a cell that is
             the maximum of its 3x3 neighbourhood, as CenterNet decodes),
             as (class, label, y, x, score) with y, x in the 128x128 grid
  nanodet    the best classes over the three score maps (Identity, _1, _2:
             strides 8, 16, 32 of the 416x416 input) with their best score
  emotion    the most likely of its 7 classes (softmax output)
  blazeface  the highest face score (sigmoid of the logits Identity, _1)

Labels: <out>/coco.names (from human_models.sh). Run with /usr/bin/python3.
"""

import argparse
import os
import sys

import numpy as np

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def centernet_peaks(heat, top):
    """(class, y, x, score) of the `top` highest 3x3 local maxima of an HxWxC heat map."""
    h, w, _ = heat.shape
    padded = np.pad(heat, ((1, 1), (1, 1), (0, 0)), constant_values=-np.inf)
    neighbourhood = np.max([padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)
    peaks = np.where(heat == neighbourhood, heat, 0.0)
    order = np.argsort(peaks, axis=None)[::-1][:top]
    return [(int(c), int(y), int(x), float(heat[y, x, c]))
            for y, x, c in zip(*np.unravel_index(order, heat.shape))]


def nanodet_classes(maps, top):
    """(class, best score) of the `top` classes with the highest score in any cell of any stride."""
    best = np.max([m.reshape(-1, m.shape[-1]).max(axis=0) for m in maps], axis=0)
    return [(int(c), float(best[c])) for c in np.argsort(best)[::-1][:top]]


def load(out, model, photo, name):
    path = os.path.join(out, "ref", model, photo, name + ".npy")
    if not os.path.exists(path):
        sys.exit(f"tfjs_summary.py: {path} is missing: run models/zoo/tfjs_refs.sh")
    return np.load(path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="build/models/tfjs", help="where human_models.sh and tfjs_refs.sh wrote")
    p.add_argument("--models", default="centernet,nanodet,emotion,blazeface")
    p.add_argument("--photos", required=True, help="comma-separated photo names")
    p.add_argument("--top", type=int, default=5, help="centernet peaks per photo (default 5; nanodet: 3)")
    args = p.parse_args()
    with open(os.path.join(args.out, "coco.names")) as f:
        coco = [line.strip() for line in f if line.strip()]
    models = args.models.split(",")
    for photo in [n for n in args.photos.split(",") if n]:
        print(f"== {photo}")
        if "centernet" in models:
            heat = load(args.out, "centernet", photo, "tower_0_keypoints")[0]
            peaks = ", ".join(f"{coco[c]}({c}) y{y} x{x} {s:.3f}" for c, y, x, s in centernet_peaks(heat, args.top))
            print(f"  centernet  {peaks}")
        if "nanodet" in models:
            maps = [load(args.out, "nanodet", photo, n) for n in ("Identity", "Identity_1", "Identity_2")]
            classes = ", ".join(f"{coco[c]}({c}) {s:.3f}" for c, s in nanodet_classes(maps, 3))
            print(f"  nanodet    {classes}")
        if "emotion" in models:
            e = load(args.out, "emotion", photo, "Identity")[0]
            print(f"  emotion    {EMOTIONS[int(e.argmax())]} {e.max():.3f} (sum {e.sum():.3f})")
        if "blazeface" in models:
            logits = np.concatenate([load(args.out, "blazeface", photo, n).ravel() for n in ("Identity", "Identity_1")])
            print(f"  blazeface  best face score {1 / (1 + np.exp(-logits.max())):.3f} "
                  f"(anchors above 0.5: {int((logits > 0).sum())} of {logits.size})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
