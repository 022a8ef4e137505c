#!/usr/bin/python3
"""The tables of `bench/run peers`, from the JSON lines its engines printed.

  peers_table.py RESULTS.jsonl NOTES.tsv MODELS

RESULTS.jsonl: one line per engine run, the engine's own JSON line with
"label" and "net" (the model's name) put in front by bench/run. NOTES.tsv:
label, model, threads ("*" for all) and why that engine has no figure
(huddle quantize missing, OpenCV cannot load the model, ...). Prints one table
per thread count, then the ratios to huddle int8.
"""

import json
import math
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


def main():
    results, notes_file, models = sys.argv[1], sys.argv[2], sys.argv[3].split()
    runs = defaultdict(list)  # (label, model, threads) -> reports
    for line in open(results):
        r = json.loads(line)
        runs[r["label"], r["net"], r["threads"]].append(r)
    notes = {}
    for line in open(notes_file):
        label, model, threads, why = line.rstrip("\n").split("\t", 3)
        notes[label, model, threads] = why

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
                    why = notes.get((label, model, str(threads))) or notes.get((label, model, "*")) or "n/a (not run)"
                    print(f"{first} {why}")
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
