#!/usr/bin/python3
"""Writes reference inputs for the classifiers as NumPy .npy files.

Each is a real photo that a Debian package ships (python3-skimage), turned
into float32 1x3x224x224 (NCHW, RGB, C order, '<f4') exactly as
torchvision_export.py's calibration does (see photos.py): resize the shorter
side to 256 (bilinear), centre-crop 224, /255, ImageNet mean/std.

Writes <out>/input-<photo>.npy (default out: build/models/torchvision/) and
prints each file's sha256. Run with /usr/bin/python3.
"""

import argparse
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import photos  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="build/models/torchvision", help="output directory")
    photos.add_arguments(p, photos.REFERENCE_INPUTS)
    args = p.parse_args()
    names = photos.from_arguments(args)
    import numpy as np

    os.makedirs(args.out, exist_ok=True)
    for name in names:
        x = photos.tensor(name)
        assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32 and x.flags.c_contiguous
        path = os.path.join(args.out, f"input-{name}.npy")
        np.save(path, x)
        with open(path, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        print(f"{path}  mean {x.mean():+.3f} std {x.std():.3f}  sha256 {sha[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
