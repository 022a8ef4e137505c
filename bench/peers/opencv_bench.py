#!/usr/bin/python3
"""OpenCV DNN's side of `bench/run peers`: times one inference of an ONNX model.

  /usr/bin/python3 bench/peers/opencv_bench.py MODEL.onnx --input X.npy [--threads N] [--runs N] [--warmup N]

cv2.dnn.readNetFromONNX, the default backend and target (OpenCV's own CPU
code), cv2.setNumThreads(N). Prints one JSON line (see peer_timing.py); when
OpenCV cannot load or run the model, a line with "error": OpenCV's reason.
Needs python3-opencv (OpenCV 4.6 in Debian 12).
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_timing  # noqa: E402

ENGINE = "opencv-dnn"


def main():
    args = peer_timing.parse_args("opencv_bench.py", __doc__.split("\n\n")[0])
    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # the reason is reported in the JSON line
    try:
        import cv2
        import numpy as np
    except ImportError as e:
        sys.exit(f"opencv_bench.py: cannot import {e.name} ({e}); apt-get install python3-opencv python3-numpy")
    x = np.load(args.input)
    baseline = peer_timing.max_rss_kib()
    cv2.setNumThreads(args.threads)
    start = peer_timing.time.perf_counter()
    try:
        net = cv2.dnn.readNetFromONNX(args.model)
    except cv2.error as e:
        peer_timing.fail(ENGINE, args, "cannot load: " + _reason(e))
    load_ms = (peer_timing.time.perf_counter() - start) * 1e3

    def run():
        net.setInput(x)
        return net.forward()

    try:
        out = run()
    except cv2.error as e:
        peer_timing.fail(ENGINE, args, "cannot run: " + _reason(e))
    times = peer_timing.time_runs(run, args.runs, args.warmup)
    peer_timing.report(ENGINE, cv2.__version__, args, load_ms, times, baseline,
                       output_shape=list(out.shape))


def _reason(error):
    """OpenCV's error message on one line, without source locations, function names and error codes."""
    text = " ".join(line.strip(" >") for line in str(error).splitlines())
    text = re.sub(r"OpenCV\([^)]*\) \S+:\d+: error: \(-?\d+:[^)]*\)( in function '[^']*')?", "", text)
    return re.sub(r"\s+", " ", text).strip() or type(error).__name__


if __name__ == "__main__":
    main()
