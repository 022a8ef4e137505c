"""Checks for the multi-host security test (security-test.sh).

usage (run with /usr/bin/python3):
  security.py cleartext PCAP FILE --expect none|all [--window 32] [--windows 200]
  security.py frames JSONL --task T [--ok N | --none-ok] [--frames N]
  security.py revoked JSONL --task T --at MS [--within 1000] [--after 1500]
  security.py listed NODES_JSON --host ADDR --state S
  security.py contacts PCAP --from ADDR

cleartext: does a capture carry a file's bytes in clear? Reads a classic
pcap (tcpdump -w; Ethernet or Linux cooked links, IPv4), puts each TCP
flow's payload back in sequence order (a retransmitted segment counts once),
then looks for --windows windows of --window bytes taken at evenly spread
offsets of FILE in the payloads. --expect none: no window may be found, and
the capture must hold at least as many payload bytes as FILE (else it cannot
have carried it, and finding nothing proves nothing); all: every window.
frames: `huddle recognize --json-lines` output: FRAMES frame lines; TASK ok
in exactly N of them (--ok), or in none (--none-ok).
revoked: a node unpaired at AT (Unix ms): the last frame whose TASK was ok
ended (wall_ms + elapsed_ms) within WITHIN ms of AT, and frames went on for
AFTER ms past AT (so that a stream that stopped proves nothing).
listed: `huddle nodes --json` lists a node whose endpoint is on ADDR, in
state S.
contacts: no TCP packet from ADDR in the capture (not even a SYN).
Each prints one line of figures and exits 0 when the check holds, 1 when it
does not.
"""
import argparse
import collections
import json
import re
import socket
import struct
import sys

from frames import load


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        raise SystemExit(f"{path}: not a pcap file (pcapng? use tcpdump -w)")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        yield linktype, data[off + 16:off + 16 + incl]
        off += 16 + incl


def tcp_packets(path):
    """(flow, seq, payload) of each IPv4 TCP segment."""
    for linktype, frame in packets(path):
        if linktype == 1:  # Ethernet
            ethertype, ip = struct.unpack("!H", frame[12:14])[0], frame[14:]
            if ethertype == 0x8100:  # one VLAN tag
                ethertype, ip = struct.unpack("!H", frame[16:18])[0], frame[18:]
        elif linktype == 113:  # Linux cooked (tcpdump -i any)
            ethertype, ip = struct.unpack("!H", frame[14:16])[0], frame[16:]
        else:
            raise SystemExit(f"link type {linktype} not handled")
        if ethertype != 0x0800 or len(ip) < 20 or ip[9] != 6:
            continue
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:total]
        if len(tcp) < 20:
            continue
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        yield (ip[12:16], sport, ip[16:20], dport), seq, tcp[(tcp[12] >> 4) * 4:]


def tcp_segments(path):
    """(flow, seq, payload) of each IPv4 TCP segment with a payload."""
    return ((flow, seq, payload) for flow, seq, payload in tcp_packets(path) if payload)


def streams(path):
    flows = {}
    for flow, seq, payload in tcp_segments(path):
        flows.setdefault(flow, {}).setdefault(seq, payload)
    out = []
    for segs in flows.values():
        # In order of sequence number relative to the first seen (wraps at 2^32).
        first = next(iter(segs))
        out.append(b"".join(segs[s] for s in sorted(segs, key=lambda s: (s - first) % (1 << 32))))
    return out


def check_cleartext(a):
    body = open(a.file, "rb").read()
    flows = streams(a.pcap)
    total = sum(len(s) for s in flows)
    if len(body) < a.window:
        raise SystemExit(f"{a.file}: shorter than one window")
    n = max(1, min(a.windows, len(body) - a.window + 1))
    step = (len(body) - a.window) // max(1, n - 1) if n > 1 else 0
    offsets = [i * step for i in range(n)]
    found = [o for o in offsets if any(body[o:o + a.window] in s for s in flows)]
    print(f"{len(found)} of {n} windows of {a.window} bytes of {a.file.rsplit('/', 1)[-1]} ({len(body)} bytes) "
          f"found in {total} TCP payload bytes, {len(flows)} flows")
    if a.expect == "none":
        return not found and total >= len(body)
    return len(found) == n


def check_contacts(a):
    sent = collections.Counter(flow[3] for flow, _, _ in tcp_packets(a.pcap) if socket.inet_ntoa(flow[0]) == a.sender)
    print(f"{sum(sent.values())} TCP packets from {a.sender} in the capture" +
          (" (to ports " + ", ".join(str(p) for p in sorted(sent)) + ")" if sent else ""))
    return not sent


def task_ok(frame, task):
    return any(t["task"] == task and t["outcome"] == "ok" for t in frame["tasks"])


def check_frames(a):
    frames = load(a.file)
    ok = [f for f in frames if task_ok(f, a.task)]
    outcomes = collections.Counter(t["outcome"] for f in frames for t in f["tasks"] if t["task"] == a.task)
    print(f"{len(frames)} frames, {a.task}: " + ", ".join(f"{n} {o}" for o, n in sorted(outcomes.items())))
    if a.frames is not None and len(frames) != a.frames:
        return False
    return not ok if a.none_ok else len(ok) == a.ok


def check_revoked(a):
    frames = load(a.file)
    ok_ends = [f["wall_ms"] + f["elapsed_ms"] for f in frames if task_ok(f, a.task)]
    last_ok = max(ok_ends, default=None)
    last = max((f["wall_ms"] for f in frames), default=0)
    ok_after = sum(1 for f in frames if f["wall_ms"] > a.at + a.within and task_ok(f, a.task))
    print(f"last {a.task} answer {last_ok - a.at:+.0f} ms from the unpair" if last_ok else f"no {a.task} answer at all",
          f"({len(ok_ends)} answered of {len(frames)} frames; frames went on to +{last - a.at} ms,"
          f" {ok_after} answered after +{a.within} ms)")
    return last_ok is not None and last_ok - a.at < a.within and last - a.at >= a.after and not ok_after


def check_listed(a):
    with open(a.file) as f:
        nodes = json.load(f)
    here = [n for n in nodes if re.search(rf"//{re.escape(a.host)}:", n.get("endpoint", ""))]
    print(f"{a.host}: " + (", ".join(f"{n.get('id')} {n.get('state')}" for n in here) or "not listed"))
    return bool(here) and all(n.get("state") == a.state for n in here)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="check", required=True)
    s = sub.add_parser("cleartext")
    s.add_argument("pcap")
    s.add_argument("file")
    s.add_argument("--expect", choices=("none", "all"), required=True)
    s.add_argument("--window", type=int, default=32)
    s.add_argument("--windows", type=int, default=200)
    s.set_defaults(run=check_cleartext)
    s = sub.add_parser("contacts")
    s.add_argument("pcap")
    s.add_argument("--from", dest="sender", required=True)
    s.set_defaults(run=check_contacts)
    s = sub.add_parser("frames")
    s.add_argument("file")
    s.add_argument("--task", required=True)
    s.add_argument("--ok", type=int)
    s.add_argument("--none-ok", action="store_true")
    s.add_argument("--frames", type=int)
    s.set_defaults(run=check_frames)
    s = sub.add_parser("revoked")
    s.add_argument("file")
    s.add_argument("--task", required=True)
    s.add_argument("--at", type=int, required=True)
    s.add_argument("--within", type=int, default=1000)
    s.add_argument("--after", type=int, default=1500)
    s.set_defaults(run=check_revoked)
    s = sub.add_parser("listed")
    s.add_argument("file")
    s.add_argument("--host", required=True)
    s.add_argument("--state", required=True)
    s.set_defaults(run=check_listed)
    a = p.parse_args()
    sys.exit(0 if a.run(a) else 1)


if __name__ == "__main__":
    main()
