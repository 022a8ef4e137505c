#!/usr/bin/python3
"""Writes input tensors for the TensorFlow.js models of human_models.sh as .npy files.

The photos are the real ones Debian packages ship (photos.py): darknet's dog,
horses, giraffe, kite, eagle and person, skimage's chelsea and coffee. Each is
stretched (no crop, aspect ratio not kept) to the model's size with PIL's
bilinear filter and laid out as the model wants:

  centernet  1x512x512x3  NHWC RGB, 0..255
  nanodet    1x3x416x416  NCHW RGB, /255
  emotion    1x64x64x1    NHWC grey (luma 0.299 R + 0.587 G + 0.114 B), /255
  blazeface  1x256x256x3  NHWC RGB, x/127.5 - 1

All float32, C order. The same files are fed to huddle and to TensorFlow.js
(bench/peers/tfjs.js), so this is not meant to match huddle's own
preprocessing. Writes <out>/<model>/input-<photo>.npy (default out:
build/models/tfjs/inputs). Run with /usr/bin/python3.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import photos  # noqa: E402

# model -> (side, layout, scale, offset, grey): value = pixel * scale + offset
MODELS = {
    "centernet": (512, "NHWC", 1.0, 0.0, False),
    "nanodet": (416, "NCHW", 1 / 255, 0.0, False),
    "emotion": (64, "NHWC", 1 / 255, 0.0, True),
    "blazeface": (256, "NHWC", 1 / 127.5, -1.0, False),
}
PHOTOS = ("darknet-dog", "darknet-horses", "darknet-giraffe", "darknet-kite",
          "darknet-eagle", "darknet-person", "chelsea", "coffee")


def tensor(model, image):
    """PIL RGB image -> the float32 batch-of-one input of `model`."""
    import numpy as np
    from PIL import Image

    side, layout, scale, offset, grey = MODELS[model]
    x = np.asarray(image.resize((side, side), Image.BILINEAR), dtype=np.float32)  # HWC RGB 0..255
    if grey:
        x = (x @ np.array([0.299, 0.587, 0.114], np.float32))[:, :, None]
    x = x * np.float32(scale) + np.float32(offset)
    if layout == "NCHW":
        x = x.transpose(2, 0, 1)
    return np.ascontiguousarray(x[None], dtype=np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="build/models/tfjs/inputs", help="output directory (default: %(default)s)")
    p.add_argument("--models", default=",".join(MODELS),
                   help="comma-separated models (default: %(default)s)")
    photos.add_arguments(p, PHOTOS)
    args = p.parse_args()
    names = photos.from_arguments(args)
    import numpy as np

    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        sys.exit(f"detect_inputs.py: unknown model(s) {', '.join(unknown)}; known: {', '.join(MODELS)}")
    for name in names:
        image = photos.load_rgb(name)
        for model in models:
            x = tensor(model, image)
            os.makedirs(os.path.join(args.out, model), exist_ok=True)
            path = os.path.join(args.out, model, f"input-{name}.npy")
            np.save(path, x)
            print(f"{path}  {'x'.join(map(str, x.shape))}  min {x.min():+.3f} max {x.max():+.3f} mean {x.mean():+.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
