#!/usr/bin/python3
"""Compares two .npy arrays: shapes, max and mean abs diff, cosine.

  /usr/bin/python3 models/zoo/compare_npy.py A.npy B.npy [--min-cosine C]

Exits 2 if the shapes differ, 1 if --min-cosine is given and the cosine is
below it (or not finite), else 0. Any dtype numpy reads; compared as float64.
"""

import argparse
import sys

import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--min-cosine", type=float, help="fail (exit 1) when the cosine is below this")
    args = p.parse_args()
    a = np.load(args.a).astype(np.float64)
    b = np.load(args.b).astype(np.float64)
    print(f"shapes {a.shape} {b.shape}")
    if a.shape != b.shape:
        print("compare_npy.py: shapes differ", file=sys.stderr)
        return 2
    diff = np.abs(a - b)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    # Two all-zero arrays are identical; one all-zero array has no direction.
    cosine = float(a.ravel() @ b.ravel() / norms) if norms > 0 else (1.0 if not diff.any() else 0.0)
    at = np.unravel_index(diff.argmax(), diff.shape) if diff.size else ()
    print(f"max abs diff {diff.max(initial=0):.6g} at {tuple(int(i) for i in at)}, "
          f"mean abs diff {diff.mean() if diff.size else 0:.6g}, cosine {cosine:.8f}, "
          f"max |a| {np.abs(a).max(initial=0):.6g}")
    if args.min_cosine is not None and not cosine >= args.min_cosine:
        print(f"compare_npy.py: cosine {cosine:.8f} < {args.min_cosine}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
