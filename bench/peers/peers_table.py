#!/usr/bin/python3
"""The tables of `bench/run peers`, from the JSON lines its engines printed.

  peers_table.py RESULTS.jsonl MODELS --fidelity OUT_DIR ZOO PHOTOS

RESULTS.jsonl: one line per engine run, the engine's own JSON line with
"label" and "net" (the model's name) put in front by bench/run; a line with
"error" says why that engine has no figure for that model (at that thread
count; threads 0: at any). MODELS and PHOTOS: space-separated. Prints the int8
models' fidelity (their outputs on the held-out PHOTOS, OUT_DIR/<model>.<photo>.<label>.npy,
against ONNX Runtime fp32's, ZOO/<model>.<photo>.ort.npy), one table per thread
count, then the ratios to huddle int8.
"""

import json
import math
import os
import statistics
import sys
from collections import defaultdict

# label -> (name in the table, whether it runs inside a larger runtime whose idle RSS is subtracted)
ENGINES = {
    "hud-int8": ("huddle int8", None),
    "hud-fp32": ("huddle fp32", None),
    "ort-int8": ("ORT int8 (QDQ)", "node"),
    "ort-fp32": ("ORT fp32", "node"),
    "pt-int8": ("PyTorch int8 onednn", "python+torch"),
    "pt-fp32": ("PyTorch fp32", "python+torch"),
    "cv-fp32": ("OpenCV DNN fp32", "python+cv2"),
}


def fidelity(out_dir, zoo, models, held_out):
    """Per model and int8 engine: worst output cosine and top-1 agreement with ONNX Runtime fp32."""
    import numpy as np

    print(f"== int8 fidelity on the held-out photos ({', '.join(held_out)}): output vs ONNX Runtime fp32,"
          " worst cosine, top-1 agreement")
    labels = [k for k in ENGINES if k.endswith("int8")] + ["pt-fp32"]
    print(f"{'model':19}" + "".join(f" {ENGINES[k][0]:>21}" for k in labels))
    broken = []
    for model in models:
        cells = []
        for label in labels:
            cos, agree = [], 0
            for p in held_out:
                path = os.path.join(out_dir, f"{model}.{p}.{label}.npy")
                if not os.path.exists(path):
                    break
                a = np.load(path).astype(np.float64).ravel()
                b = np.load(os.path.join(zoo, f"{model}.{p}.ort.npy")).astype(np.float64).ravel()
                cos.append(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
                agree += int(a.argmax() == b.argmax())
            if len(cos) < len(held_out):
                cells.append(f"{'n/a':>21}")
                continue
            cells.append(f"{min(cos):>15.4f} {agree}/{len(held_out)}  ")
            if min(cos) < 0.9:
                broken.append(f"{model} {ENGINES[label][0]}")
        print(f"{model:19}" + "".join(f" {c}" for c in cells))
    if broken:
        print(f"(cosine below 0.9, a broken int8 model rather than rounding: {', '.join(broken)})")
    print()


def main():
    if len(sys.argv) != 7 or sys.argv[3] != "--fidelity":
        sys.exit(__doc__)
    results, models = sys.argv[1], sys.argv[2].split()
    fidelity(sys.argv[4], sys.argv[5], models, sys.argv[6].split())
    runs = defaultdict(list)  # (label, model, threads) -> reports
    notes = {}  # (label, model, threads as text or "*") -> why there is no figure
    for line in open(results):
        r = json.loads(line)
        if "error" in r:
            notes[r["label"], r["net"], str(r["threads"]) if r["threads"] else "*"] = r["error"]
        else:
            runs[r["label"], r["net"], r["threads"]].append(r)

    ratios = defaultdict(list)  # (label, threads) -> [engine ms / huddle int8 ms]
    for threads in (1, 2):
        print(f"== {threads} thread{'s' if threads > 1 else ''}: median ms per inference (min), batch 1, "
              "same input .npy")
        print(f"{'model':19} {'engine':20} {'median ms':>9} {'(min)':>8} {'x hud-int8':>10} {'RSS MB':>7}"
              f" {'runtime':>14} {'file MB':>8}")
        for model in models:
            base = runs.get(("hud-int8", model, threads))
            base_ms = statistics.median(v for r in base for v in r["times_ms"]) if base else None
            for k, (label, (name, runtime)) in enumerate(ENGINES.items()):
                first = f"{model if k == 0 else '':19} {name:20}"
                reports = runs.get((label, model, threads))
                if not reports:
                    # A note at another thread count: the engine was not tried again after it.
                    why = notes.get((label, model, str(threads))) or next(
                        (v for (l, m, _), v in notes.items() if (l, m) == (label, model)), "n/a (not run)")
                    print(f"{first} {why if why.startswith('n/a') else 'n/a: ' + why}")
                    continue
                ms = [v for r in reports for v in r["times_ms"]]
                med = statistics.median(ms)
                ratio = "-"
                if base_ms and label != "hud-int8":
                    ratios[label, threads].append(med / base_ms)
                    ratio = f"{med / base_ms:.2f}"
                peak = max(r["peak_rss_kib"] for r in reports) / 1024
                if runtime:
                    idle = max(r["baseline_rss_kib"] for r in reports) / 1024
                    rss, extra = f"{peak - idle:7.0f}", f"{'+' + format(idle, '.0f')} {runtime}"
                else:
                    rss, extra = f"{peak:7.0f}", ""
                print(f"{first} {med:9.2f} {'(' + format(min(ms), '.2f') + ')':>8} {ratio:>10} {rss}"
                      f" {extra:>14} {reports[0]['model_bytes'] / 1e6:8.1f}")
        n = max((len(r["times_ms"]) * len(rs) for rs in runs.values() for r in rs[:1]), default=0)
        print(f"(median and min of {n} runs per engine, pooled from rounds in which the engines took turns;"
              " x hud-int8: this engine's median / huddle int8's, > 1 = huddle int8 faster; RSS: peak"
              " resident memory, for an engine inside a larger runtime without that runtime's idle RSS"
              " (measured in the same process before the model was loaded, shown as +MB runtime);"
              " file: the model file the engine loads)")
        print()
    if ratios:
        print("huddle int8 against each engine, geometric mean over the models of (engine ms / huddle int8 ms):")
        for threads in (1, 2):
            parts = []
            for label, (name, _) in ENGINES.items():
                r = ratios.get((label, threads))
                if r:
                    parts.append(f"{name} {math.exp(statistics.mean(math.log(x) for x in r)):.2f} ({len(r)})")
            print(f"  {threads} thread(s): " + ", ".join(parts))
    else:
        print("(no huddle int8 figures: no ratios to huddle int8)")


if __name__ == "__main__":
    main()
