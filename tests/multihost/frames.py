"""Checks on `huddle recognize --json-lines` output for the multi-host scenarios.

usage: frames.py CHECK FILE [options]   (run with /usr/bin/python3)
       frames.py stamp < LOG > STAMPED   (each line prefixed with Unix ms)

Each check prints one line of measured figures, then one line per problem,
and exits 1 if there was a problem. Times are Unix milliseconds (the frames'
wall_ms, the stamped coordinator log and the test's own clock: every
namespace shares the one clock).
"""
import argparse
import collections
import json
import re
import sys
import time

LATE_MS = 100  # a frame answered later than its deadline plus this is lost
GRACE_MS = 50  # after a kill, for an answer that was already on its way


def load(path):
    frames = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                frames.append(json.loads(line))
    return frames


def stamp():
    for line in sys.stdin:
        sys.stdout.write(f"{int(time.time() * 1000)} {line}")
        sys.stdout.flush()


def log_event(path, node, what, since):
    """(ms, line) of the first stamped log line after `since` saying `node ... what`."""
    if not path:
        return None
    with open(path) as f:
        for line in f:
            ms, _, text = line.partition(" ")
            # "node ID (task) ..." or, keyed on id and task, "node ID/TASK (task) ..."
            if ms.isdigit() and int(ms) >= since and re.search(f"node {re.escape(node)}[ /]", text) and what in text:
                return int(ms), text.strip()
    return None


def named(frame, node, ok_only=False):
    """The frame's task entries that name `node` (ok ones only if asked)."""
    return [t for t in frame["tasks"] if t.get("node") == node and (not ok_only or t["outcome"] == "ok")]


def late(frame):
    return frame["elapsed_ms"] > frame["deadline_ms"] + LATE_MS


def first_naming(frames, node, since):
    """The first frame after `since` with an ok answer from `node`."""
    return next((f for f in frames if f["wall_ms"] >= since and named(f, node, True)), None)


def stream_problems(frames, expect, allowed):
    """Every frame there, none late, every task ok or missing for an allowed reason."""
    problems = []
    numbers = sorted(f["frame"] for f in frames)
    if len(frames) != expect or len(set(numbers)) != expect:
        problems.append(f"{len(frames)} frame lines ({len(set(numbers))} distinct), {expect} expected")
    for f in frames:
        if late(f):
            problems.append(f"frame {f['frame']} late: {f['elapsed_ms']:.0f} ms, deadline {f['deadline_ms']}")
        for t in f["tasks"]:
            if t["outcome"] != "ok" and t["outcome"] not in allowed:
                problems.append(f"frame {f['frame']}: {t['task']} {t['outcome']} (allowed: ok {' '.join(allowed)})")
    return problems


def completeness(frames):
    """'97.0 % complete (970/1000), missing: colour timeout 30'."""
    complete = sum(1 for f in frames if f["complete"])
    missing = collections.Counter(f"{t['task']} {t['outcome']}" for f in frames for t in f["tasks"]
                                  if t["outcome"] != "ok")
    share = 100.0 * complete / len(frames) if frames else 0.0
    text = f"{share:.1f} % complete ({complete}/{len(frames)})"
    if missing:
        text += ", missing: " + ", ".join(f"{k} {v}" for k, v in sorted(missing.items()))
    return text


def served(frames, node):
    return sum(1 for f in frames if named(f, node, True))


def check_scene(a, frames):
    problems, figures = [], []
    if not frames:
        return ["no frame line"], "no frames"
    for task, node in (pair.split("=", 1) for pair in a.node):
        # NODE may be A|B: two nodes of one task share the frames, either answers
        hits = [t for f in frames for t in f["tasks"] if t["task"] == task and t.get("node") in node.split("|")
                and t["outcome"] == "ok"]
        if hits:
            figures.append(f"{task} by {node} ok ({hits[0]['latency_ms']:.0f} ms)")
        else:
            seen = sorted({f"{t['task']}:{t.get('node')}:{t['outcome']}" for f in frames for t in f["tasks"]})
            problems.append(f"no ok {task} answer from {node}; seen: {' '.join(seen)}")
    summary = frames[-1]["summary"]
    figures.append(f"summary '{summary}'")
    objects = dict(re.findall(r"(?:^|, | and )([a-z][a-z ]*?) \([0-9.]+, ([^)]+)\)", summary))
    for name in filter(None, a.objects.split(",")):
        if name not in objects:
            problems.append(f"no '{name} (score, colour)' in the summary")
    for word in filter(None, a.words.split(",")):
        if word not in summary:
            problems.append(f"'{word}' not in the summary")
    if not frames[-1]["complete"]:
        problems.append("the frame is not complete")
    return problems, "; ".join(figures)


def check_join(a, frames):
    hit = first_naming(frames, a.node, a.since)
    if not hit:
        end = max((f["wall_ms"] for f in frames), default=a.since) - a.since
        return [f"no frame after its start names {a.node} (the frames end at +{end} ms)"], "never used"
    delay = hit["wall_ms"] - a.since
    problems = [] if delay <= a.within else [f"used {delay} ms after its start, more than {a.within} ms"]
    steps = [(what, log_event(a.log, a.node, what, a.since)) for what in ("found", "in rotation")]
    steps = "".join(f", {what} +{event[0] - a.since} ms" for what, event in steps if event)
    return problems, f"{a.node} started{steps}, first frame +{delay} ms (frame {hit['frame']})"


def nodes_problems(path, node):
    with open(path) as f:
        nodes = json.load(f)
    listed = [n for n in nodes if n.get("id") == node]
    states = ",".join(n.get("state", "?") for n in listed) or "not listed"
    problems = [f"`huddle nodes` lists {node} as ready"] if any(n.get("state") == "ready" for n in listed) else []
    return problems, states


def check_ready(a, _):
    with open(a.file) as f:
        states = {n.get("id"): n.get("state") for n in json.load(f)}
    missing = [i for i in a.ids if states.get(i) != "ready"]
    return [f"{i} not ready ({states.get(i, 'not listed')})" for i in missing], f"{len(a.ids) - len(missing)} of {len(a.ids)} ready"


def check_loss(a, frames):
    problems = stream_problems(frames, a.frames, ["nodeLost", "timeout"])
    before = served([f for f in frames if f["wall_ms"] < a.at], a.node)
    if before == 0:
        problems.append(f"{a.node} served no frame before it was lost: the check proves nothing")
    after = [f for f in frames if f["wall_ms"] > a.at]
    if not after:
        problems.append("no frame after the loss")
    naming = [f for f in after if named(f, a.node)]
    last = max((f["wall_ms"] - a.at for f in naming), default=None)
    too_late = [f for f in naming if f["wall_ms"] > a.at + a.within]
    if too_late:
        problems.append(f"{len(too_late)} frames more than {a.within} ms after the loss still name {a.node}, "
                        f"the last at +{last} ms")
    hurt = [f for f in after if not f["complete"]]
    out = log_event(a.log, a.node, "out of rotation", a.at)
    if a.log and not out:
        problems.append(f"the coordinator's log never takes {a.node} out of rotation")
    elif out and out[0] - a.at > a.within:
        problems.append(f"out of rotation {out[0] - a.at} ms after the loss, more than {a.within} ms")
    figures = (f"{len(frames)} frames, {sum(map(late, frames))} late, max elapsed "
               f"{max((f['elapsed_ms'] for f in frames), default=0):.0f} ms; {a.node} served {before} before the loss; "
               + (f"out of rotation +{out[0] - a.at} ms ({out[1].split(': ', 2)[-1]}); " if out else "")
               + "after the loss, last frame naming it at "
               + (f"+{last} ms" if last is not None else "none")
               + f", {len(hurt)} frames incomplete"
               + (f" (+{hurt[0]['wall_ms'] - a.at} .. +{hurt[-1]['wall_ms'] - a.at} ms)" if hurt else "")
               + f"; {completeness(frames)}")
    if a.nodes_json:
        more, states = nodes_problems(a.nodes_json, a.node)
        problems += more
        figures += f"; `huddle nodes` after +{a.nodes_at - a.at} ms: {a.node} {states}"
    return problems, figures


def check_spread(a, frames):
    problems = stream_problems(frames, a.frames, ["nodeLost", "timeout"])
    # From the first frame at which both had answered (the second may join
    # the pool a little after the stream starts) to the kill.
    firsts = [first_naming(frames, n, 0) for n in a.nodes]
    since = max(f["wall_ms"] for f in firsts) if all(firsts) else a.kill
    both = [f for f in frames if since <= f["wall_ms"] < a.kill]
    counts = {n: served(both, n) for n in a.nodes}
    for n, c in counts.items():
        if c < 0.25 * len(both) or not both:
            problems.append(f"{n} served {c} of {len(both)} frames while both were up, under 25 %")
    # The kill time is read just before the signal goes: an answer already
    # on its way then is not a stray.
    alone = [f for f in frames if a.kill + GRACE_MS < f["wall_ms"] < a.restart]
    other = a.nodes[0]
    strays = [f["frame"] for f in alone if not named(f, other, True)]
    if not alone:
        problems.append("no frame between the kill and the restart")
    if strays:
        problems.append(f"frames {strays[:10]} between the kill and the restart not answered ok by {other}")
    share = ", ".join(f"{n} {c} ({100.0 * c / max(1, len(both)):.0f} %)" for n, c in counts.items())
    return problems, (f"both up: {len(both)} frames: {share}; after the kill {other} answered "
                      f"{len(alone) - len(strays)} of {len(alone)}")


def check_steady(a, frames):
    problems = stream_problems(frames, a.frames, [])
    window = [f for f in frames if a.start <= f["wall_ms"] <= a.end]
    counts = {n: served(window, n) for n in a.nodes}
    problems += [f"{n} answered no frame from +{a.start - frames[0]['wall_ms']} to +{a.end - frames[0]['wall_ms']} ms"
                 for n, c in counts.items() if not c]
    return problems, (f"{len(frames)} frames, {sum(map(late, frames))} late, {completeness(frames)}; answered in "
                      f"the {a.end - a.start} ms watched: " + ", ".join(f"{n} {c}" for n, c in counts.items()))


def check_chaos(a, frames):
    problems = stream_problems(frames, a.frames, ["nodeLost", "timeout", "overloaded", "noNode"])
    lost = a.frames - len(frames) + sum(map(late, frames))
    spread = collections.Counter(t.get("node") for f in frames for t in f["tasks"] if t["outcome"] == "ok")
    retried = sum(1 for f in frames for t in f["tasks"] if t.get("attempts", 1) > 1)
    worst = max((f["elapsed_ms"] for f in frames), default=0)
    return problems, (f"{len(frames)} frames, {lost} lost, {completeness(frames)}; {retried} retried; "
                      f"max elapsed {worst:.0f} ms; answered by "
                      + ", ".join(f"{n} {c}" for n, c in sorted(spread.items())))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="check", required=True)
    s = sub.add_parser("scene", help="scenario 1: each task answered by its node, the scene's objects")
    s.add_argument("--node", action="append", default=[], help="TASK=ID")
    s.add_argument("--objects", default="", help="names the summary must hold as 'name (score, colour)'")
    s.add_argument("--words", default="", help="words the summary must hold")
    s.set_defaults(run=check_scene)
    s = sub.add_parser("join", help="a node used within WITHIN ms of SINCE")
    s.add_argument("--node", required=True)
    s.add_argument("--since", type=int, required=True)
    s.add_argument("--within", type=int, default=2000)
    s.set_defaults(run=check_join)
    s = sub.add_parser("loss", help="a node lost at AT: no lost frame, out of rotation within WITHIN ms")
    s.add_argument("--node", required=True)
    s.add_argument("--at", type=int, required=True)
    s.add_argument("--within", type=int, default=3000)
    s.add_argument("--frames", type=int, required=True)
    s.add_argument("--nodes-json", help="`huddle nodes --json` taken after the kill")
    s.add_argument("--nodes-at", type=int, default=0, help="when that was taken")
    s.set_defaults(run=check_loss)
    s = sub.add_parser("spread", help="two nodes share frames; after KILL the first takes them all until RESTART")
    s.add_argument("--nodes", required=True, type=lambda v: v.split(","), help="SURVIVOR,KILLED")
    s.add_argument("--kill", type=int, required=True)
    s.add_argument("--restart", type=int, required=True)
    s.add_argument("--frames", type=int, required=True)
    s.set_defaults(run=check_spread)
    s = sub.add_parser("steady", help="every frame complete and in time; NODES all answer from START to END")
    s.add_argument("--nodes", required=True, type=lambda v: v.split(","))
    s.add_argument("--start", type=int, required=True)
    s.add_argument("--end", type=int, required=True)
    s.add_argument("--frames", type=int, required=True)
    s.set_defaults(run=check_steady)
    s = sub.add_parser("chaos", help="every frame there and in time; completeness")
    s.add_argument("--frames", type=int, required=True)
    s.set_defaults(run=check_chaos)
    s = sub.add_parser("ready", help="FILE (`huddle nodes --json`) lists every id as ready")
    s.add_argument("--ids", required=True, type=lambda v: v.split(","))
    s.set_defaults(run=check_ready)
    for s in sub.choices.values():
        s.add_argument("file")
    for name in ("join", "loss"):
        sub.choices[name].add_argument("--log", help="the coordinator's stamped log (--verbose)")
    if sys.argv[1:] == ["stamp"]:
        return stamp()
    a = p.parse_args()
    problems, figures = a.run(a, [] if a.check == "ready" else load(a.file))
    print(figures)
    for problem in problems[:20]:
        print("  problem:", problem)
    if len(problems) > 20:
        print(f"  ... and {len(problems) - 20} more problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
