#!/usr/bin/python3
"""The tables of `bench/run pool` from its results (JSON lines of bench/pool-load,
each with "kind" and "config" in front).

usage: pool_table.py RESULTS.jsonl MNIST-A.json MNIST-B.json
"""
import json
import math
import statistics
import sys
from collections import defaultdict

med = statistics.median
# The columns of the join and leave tables (see events).
JOIN = ([("endpoint printed", "endpoint_ms"), ("in rotation", "rotation_ms"), ("first frame answered", "first_frame_ms")],)
LEAVE = ([("removed after", "removed_ms"), ("slowest frame", "slowest_ms")], ["frames", "incomplete", "retried"])


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, max(0, math.ceil(p * len(v)) - 1))]


def p3(values):
    return f"{pct(values, .5):7.2f} {pct(values, .95):7.2f} {pct(values, .99):7.2f}"


def spread(values):
    return f"{med(values):7.1f} ({min(values):.1f}-{max(values):.1f})"


def iou(a, b):
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0, w) * max(0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0


def matched(xs, ys, threshold=0.5):
    """Pairs of the same class with IoU >= threshold, greedily, best IoU first."""
    pairs = sorted(((iou(x["box"], y["box"]), i, j) for i, x in enumerate(xs) for j, y in enumerate(ys)
                    if x["name"] == y["name"]), reverse=True)
    used_x, used_y, n = set(), set(), 0
    for v, i, j in pairs:
        if v >= threshold and i not in used_x and j not in used_y:
            used_x.add(i), used_y.add(j)
            n += 1
    return n


def events(rows, kind, label, heading, spreads, sums=()):
    """A table of timed events, one row per config of `kind`: the median (min-max) of each field in
    `spreads` ((title, field) pairs) over the rounds, and the sum of each field in `sums`."""
    print("\n".join(heading))
    print(f"{label:9} {'rounds':>6} | " + " | ".join(f"{title:>22}" for title, _ in spreads)
          + "".join(f" {field:>10}" for field in sums))
    for (k, c), rs in rows.items():
        if k == kind:
            print(f"{c:9} {len(rs):6} | " + " | ".join(f"{spread([r[f] for r in rs]):>22}" for _, f in spreads)
                  + "".join(f" {sum(r[f] for r in rs):10}" for f in sums))


def latency(rows, kind, title):
    """The latency table of `kind` and its headline: the coordinator's overhead."""
    print(f"{title}: end-to-end latency per frame, one frame at a time (ms, p50 p95 p99; frames of every round"
          " pooled)")
    print("   e2e = the caller's Pool::recognize (submit to fused scene); node = the slowest task's node-reported")
    print("   decode + preprocess + inference + postprocess; rt = the slowest task's round trip at the pool (send to")
    print("   answer); overhead = e2e - node (transport + coordinator); coord = e2e - rt (the coordinator alone:")
    print("   hand-over to its thread, dispatch, fusion, hand-back). '3 +detect': the colour node is asked a second")
    print("   time with the detector's boxes after detect answers, so its overhead includes that request; 'no boxes'")
    print("   (--min-score 1): the detector finds nothing, the three requests only run side by side.")
    print(f"{'tasks':22} {'frames':>6} {'ok':>5} | {'e2e p50':>7} {'p95':>7} {'p99':>7} | {'node p50':>8} |"
          f" {'overhead p50':>12} {'p95':>7} {'p99':>7} | {'coord p50':>9} {'p95':>7} {'p99':>7}")
    heads = []
    for c in [c for k, c in rows if k == kind]:
        fr = rows[kind, c]
        e2e = [f["e2e_us"] / 1000 for f in fr]
        node = [max(t["node_us"] for t in f["tasks"]) / 1000 for f in fr]
        rt = [max(t["latency_us"] for t in f["tasks"]) / 1000 for f in fr]
        over = [a - b for a, b in zip(e2e, node)]
        coord = [a - b for a, b in zip(e2e, rt)]
        ok = sum(f["complete"] for f in fr)
        print(f"{c:22} {len(fr):6} {ok:5} | {p3(e2e)} | {med(node):8.2f} | {pct(over, .5):12.2f} {pct(over, .95):7.2f}"
              f" {pct(over, .99):7.2f} | {pct(coord, .5):9.3f} {pct(coord, .95):7.3f} {pct(coord, .99):7.3f}")
        if "detect" not in c or "no boxes" in c:
            heads.append((c, pct(over, .5), pct(coord, .5)))
    print("coordinator overhead (e2e - slowest node's task time), p50: "
          + ", ".join(f"{o:.2f} ms ({c})" for c, o, _ in heads) + " (target: under 1 ms p50);"
          f" of which the coordinator alone (e2e - slowest round trip): at most {max(h[2] for h in heads):.3f} ms."
          "\n(The rest is transport and the nodes' server path outside their timed stages; with 2-3 nodes sharing 2"
          " busy cores, most likely their wait for a core.)")


def throughput(rows, kind, title):
    """The throughput table of `kind`: frames per second and the speed-up over one node."""
    print(f"{title}: throughput of 1, 2, 3 nodes of one task, 2 frames in flight per node (frames/s; median of the"
          " rounds)")
    print("   on this 2-core machine 3 single-threaded nodes (plus the coordinator and the nodes' I/O threads)")
    print("   cannot go past 2x one node: the third shares the cores")
    print("   coord CPU: the coordinator process's CPU time per frame (its pool thread and the caller), median")
    print(f"{'task':9} {'nodes':>5} | {'frames/s':>8} {'(rounds)':>18} | {'speed-up':>8} | {'coord CPU':>9} |"
          " frames per node (last round)")
    base = {}
    for c in [c for k, c in rows if k == kind]:
        task, n = c.split()
        rs = rows[kind, c]
        fps = med(r["fps"] for r in rs)
        base.setdefault(task, fps)
        incomplete = sum(r["frames"] - r["complete"] for r in rs)
        share = ", ".join(f"{k} {v}" for k, v in sorted(rs[-1]["per_node"].items()))
        rounds = "/".join(f"{r['fps']:.0f}" if r["fps"] >= 100 else f"{r['fps']:.1f}" for r in rs)
        cpu = med(r["cpu_us_per_frame"] for r in rs)
        print(f"{task:9} {n:>5} | {fps:8.1f} {rounds:>18} | {fps / base[task]:7.2f}x | {cpu:6.0f} us | {share}"
              + (f"  ({incomplete} incomplete)" if incomplete else ""))


def main():
    rows = defaultdict(list)  # (kind, config) -> lines, in order
    for line in open(sys.argv[1]):
        r = json.loads(line)
        rows[r["kind"], r["config"]].append(r)
    configs = lambda kind: [c for k, c in rows if k == kind]
    torch_acc = [json.load(open(p))["torch_heldout_accuracy"] for p in sys.argv[2:4]]

    latency(rows, "latency", "1. on loopback")
    print()

    throughput(rows, "throughput", "2. on loopback")
    print()

    events(rows, "join", "node", [
        "3. a node's start to its first frame (ms from the spawn, median (min-max) of the rounds), frames flowing",
        "   one at a time; static peer on loopback: the pool knows the address before the node listens, and",
        "   libzmq retries it (reconnect interval 200 ms doubling to 1 s; the node started 2 to 2.75 s in)"],
        *JOIN)
    print()
    events(rows, "leave", "signal", [
        "4. a node's death to its removal from rotation (ms from the signal to Pool::nodes() not listing it in",
        "   rotation), two classify nodes, frames flowing one at a time; frames: those around it (until 1 s after",
        "   the removal), incomplete ones, ones retried on the other node, and the slowest frame's e2e"],
        *LEAVE)
    print("   (SIGKILL: the kernel closes the connection, the pool's socket monitor sees it; SIGSTOP: the node is")
    print("   silent but connected, like a host cut off without a reset: out after lost_after, 2 s, without an answer)")
    print()

    if configs("ensemble"):
        print("5. ensemble, classify: two MNIST CNNs trained on the same split from different initialisations")
        print("   (models/zoo/mnist_train.py --seed 1, and --init-seed 2), int8, on every held-out digit (28x28 PNG)")
        print(f"{'nodes':6} {'digits':>6} | {'top-1':>7} | {'e2e p50':>7} {'p95':>7} {'p99':>7}")
        tops = {}
        for c in configs("ensemble"):
            fr = rows["ensemble", c]
            tops[c] = [f["top"] == f["label"] for f in fr]
            acc = sum(tops[c]) / len(fr)
            print(f"{c:6} {len(fr):6} | {100 * acc:6.2f}% | {p3([f['e2e_us'] / 1000 for f in fr])}")
        a, b, ab = tops["A"], tops["B"], tops["A+B"]
        n = len(a)
        print(f"(PyTorch fp32 on the same digits: A {100 * torch_acc[0]:.2f}%, B {100 * torch_acc[1]:.2f}%)")
        gain = (sum(ab) - max(sum(a), sum(b))) / n
        print(f"ensemble gain over the better node: {100 * gain:+.2f} points top-1 ({sum(ab) - max(sum(a), sum(b)):+d}"
              f" digits of {n}); A and B disagree on right/wrong on {sum(x != y for x, y in zip(a, b))} digits;"
              f" the ensemble right where both were wrong: {sum(z and not x and not y for x, y, z in zip(a, b, ab))},"
              f" wrong where both were right: {sum(x and y and not z for x, y, z in zip(a, b, ab))}")
        split = [(x, y, z) for x, y, z in zip(*(rows["ensemble", c] for c in ("A", "B", "A+B"))) if x["top"] != y["top"]]
        print(f"on the {len(split)} digits where A's and B's top-1 differ: the ensemble took A's {sum(z['top'] == x['top'] for x, y, z in split)}"
              f" times, B's {sum(z['top'] == y['top'] for x, y, z in split)}; right: A {sum(x['top'] == x['label'] for x, y, z in split)},"
              f" B {sum(y['top'] == y['label'] for x, y, z in split)}, A+B {sum(z['top'] == z['label'] for x, y, z in split)}")
        # Calibration: the probability each gave the true digit (every class is in the top 10).
        nll = lambda c: statistics.mean(-math.log(max(1e-6, f["scores"].get(f["label"], 0))) for f in rows["ensemble", c])
        brier = lambda c: statistics.mean(sum((f["scores"].get(str(k), 0) - (str(k) == f["label"])) ** 2 for k in range(10))
                                          for f in rows["ensemble", c])
        print("mean negative log-likelihood of the true digit (lower is better): " +
              ", ".join(f"{c} {nll(c):.4f}" for c in ("A", "B", "A+B")) + "; Brier score: " +
              ", ".join(f"{c} {brier(c):.4f}" for c in ("A", "B", "A+B")))
        lat = {c: med(f["e2e_us"] / 1000 for f in rows["ensemble", c]) for c in ("A", "B", "A+B")}
        print(f"latency cost: e2e p50 {lat['A+B']:.2f} ms against {lat['A']:.2f} / {lat['B']:.2f} ms"
              f" ({lat['A+B'] - max(lat['A'], lat['B']):+.2f} ms over the slower single node)")
        print()

    if configs("detect-ensemble"):
        print("6. ensemble, detect: centernet and nanodet int8 (box voting) on 8 photos, each 3 times. Without")
        print("   ground-truth boxes for these photos, no accuracy gain can be measured; what is measurable is how far")
        print("   the two detectors agree (same class, IoU >= 0.5) and what voting keeps, at what latency")
        print(f"{'photo':12} | {'centernet':>9} {'nanodet':>7} {'agree':>5} | {'voted':>5} {'by both':>7} | voted objects")
        fr = {c: rows["detect-ensemble", c] for c in ("centernet", "nanodet", "both")}
        seen, tot = set(), defaultdict(int)
        for i, f in enumerate(fr["both"]):
            photo = f["label"]
            if photo in seen:
                continue
            seen.add(photo)
            c, nd = fr["centernet"][i]["objects"], fr["nanodet"][i]["objects"]
            agree = matched(c, nd)
            both = sum(o["score"] > 0 and matched([o], c) and matched([o], nd) for o in f["objects"])
            for k, v in (("c", len(c)), ("n", len(nd)), ("a", agree), ("v", len(f["objects"])), ("b", both)):
                tot[k] += v
            names = ", ".join(o["name"] for o in f["objects"][:5]) + (", ..." if len(f["objects"]) > 5 else "")
            print(f"{photo:12} | {len(c):9} {len(nd):7} {agree:5} | {len(f['objects']):5} {both:7} | {names}")
        print(f"{'all':12} | {tot['c']:9} {tot['n']:7} {tot['a']:5} | {tot['v']:5} {tot['b']:7} |"
              f" agreement {2 * tot['a'] / max(1, tot['c'] + tot['n']):.2f} (2 x agreeing pairs / objects)")
        lat = {c: med(f["e2e_us"] / 1000 for f in fr[c]) for c in fr}
        print(f"latency, e2e p50 over the photos: centernet {lat['centernet']:.1f} ms, nanodet {lat['nanodet']:.1f} ms,"
              f" both {lat['both']:.1f} ms")

    if any(k.startswith("ns-") for k, _ in rows):
        print()
        print("7. across network namespaces (tests/multihost/hosts.sh): hosts h1-h4 joined by a bridge, each with")
        print("   its own avahi-daemon; the coordinator (bench/pool-load) in h1, the nodes in h2-h4, over the veths")
        latency(rows, "ns-latency", "7a")
        print()
        throughput(rows, "ns-throughput", "7b")
        print()
        events(rows, "ns-join", "node", [
            "7c. a node's start (in h3) to its first frame, found by mDNS (announced through h3's avahi-daemon,",
            "   browsed through h1's), frames flowing one at a time through a classify node in h2"],
            *JOIN)
        print()
        events(rows, "ns-leave", "death", [
            "7d. a node's death (in h3) to its removal from rotation; SIGKILL: its connection closes (FIN over the",
            "   veth); cut: h3's link down on both ends, nothing more gets out (the status heartbeat's path)"],
            *LEAVE)


if __name__ == "__main__":
    main()
