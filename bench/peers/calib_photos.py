#!/usr/bin/python3
"""The calibration photos every int8 engine of `bench/run peers` is calibrated on.

A fixed split of the real photos in models/zoo/photos.py: the reference inputs
(photos.REFERENCE_INPUTS: chelsea, coffee, astronaut) are held out, for the
timings and the int8-vs-fp32 checks; every other photo on the machine
(skimage's rocket and motorcycle, darknet's dog, eagle, giraffe, horses, kite,
person) calibrates. Writes into --out:

  images/<photo>.png|.jpg   the originals as image files, for `huddle quantize
                            --calib DIR`: darknet's JPEGs copied byte for byte,
                            skimage's arrays saved losslessly as PNG
  npy/<photo>.npy           the same photos preprocessed (photos.tensor: float32
                            1x3x224x224), for ONNX Runtime's and PyTorch's
                            calibration

Prints the calibration photos' names, one line. Run with /usr/bin/python3.
"""

import argparse
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "models", "zoo"))
import photos  # noqa: E402


def calibration_names():
    """Every photo on this machine except the held-out reference inputs, in photos.available() order."""
    return tuple(n for n in photos.available() if n not in photos.REFERENCE_INPUTS)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output directory (images/ and npy/ inside)")
    args = p.parse_args()
    np = photos.require("numpy", "python3-numpy")
    names = calibration_names()
    if not any(n.startswith("darknet-") for n in names):
        print("calib_photos.py: darknet's photos are missing (apt-get install darknet); "
              "calibrating on skimage's only", file=sys.stderr)
    images = os.path.join(args.out, "images")
    npys = os.path.join(args.out, "npy")
    for d in (images, npys):
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
    for n in names:
        if n.startswith("darknet-"):
            shutil.copyfile(os.path.join(photos.DARKNET_DIR, n[len("darknet-"):] + ".jpg"),
                            os.path.join(images, n + ".jpg"))
        else:
            photos.load_rgb(n).save(os.path.join(images, n + ".png"))
        np.save(os.path.join(npys, n + ".npy"), photos.tensor(n).astype(np.float32))
    print(" ".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
