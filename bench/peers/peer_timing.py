"""What the Python peers of `bench/run peers` share (torch_bench.py, opencv_bench.py):
their command line, the timing loop and the one JSON line they print, with the
fields named as `huddle bench --json` and ort-bench.js name them.

peak_rss_kib is the process's maxRSS at the end; baseline_rss_kib its maxRSS
once the runtime (python and torch, or python and cv2) is imported, before the
model is loaded: the runtime's idle memory, which bench/run subtracts.
"""

import argparse
import json
import os
import resource
import sys
import time


def parse_args(prog, description):
    """MODEL --input X.npy [--threads N] [--runs N] [--warmup N]; exits with status 2 on a usage error."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("model")
    p.add_argument("--input", required=True, help="float32 .npy input")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args()
    if args.threads < 1 or args.runs < 1 or args.warmup < 0:
        p.error("--threads and --runs need an integer >= 1, --warmup >= 0")
    return args


def max_rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB


def time_runs(run, runs, warmup):
    """Calls run() warmup times, then times runs calls (wall clock); returns the ms of each."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def report(engine, version, args, load_ms, times, baseline_rss_kib, **extra):
    """Prints one JSON line about the runs."""
    s = sorted(times)
    mid = len(s) // 2
    median = s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2
    print(json.dumps({
        "engine": engine, "version": version, "model": args.model,
        "model_bytes": os.path.getsize(args.model), "input": args.input,
        "threads": args.threads, "warmup": args.warmup, "runs": args.runs, "load_ms": load_ms,
        "median_ms": median, "min_ms": s[0], "max_ms": s[-1],
        "peak_rss_kib": max_rss_kib(), "baseline_rss_kib": baseline_rss_kib, **extra, "times_ms": times,
    }))


def fail(engine, args, reason):
    """Prints one JSON line saying why the engine cannot run the model (exit status 0: a finding, not an error)."""
    print(json.dumps({"engine": engine, "model": args.model, "threads": args.threads,
                      "model_bytes": os.path.getsize(args.model) if os.path.exists(args.model) else 0,
                      "error": reason}))
    sys.exit(0)
