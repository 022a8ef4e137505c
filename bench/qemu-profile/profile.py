#!/usr/bin/python3
"""Guest instructions per function from tbprofile.c's block counts.

    profile.py BINARY RUN_A RUN_B [--runs-a N] [--runs-b M] [--top K] [--json FILE]

RUN_A and RUN_B are the plugin's outputs for two runs of BINARY that differ
only in how many inferences they make (N and M, default 1 and 2). Every block
is attributed to the function of BINARY whose symbol covers its start address
(the load base of a PIE is the start of the text the plugin records minus the
ELF's first load address); blocks outside BINARY (the C library, the dynamic
loader) are summed into one row. The difference M - N, divided by M - N, is
the cost of one inference with loading excluded. Prints a table: instructions
per inference, share, the source file (from the link map, --map) and a
summary per source file.
"""
import argparse
import bisect
import collections
import json
import re
import subprocess
import sys

OUTSIDE = "[outside the binary: libc, libstdc++, libm, ld.so]"


def tool(name):
    return f"aarch64-linux-gnu-{name}"


def read_profile(path):
    header, blocks = {}, collections.Counter()
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                parts = line[1:].split()
                if len(parts) == 2:
                    header[parts[0]] = parts[1]
                continue
            vaddr, insns, execs = line.split()
            blocks[int(vaddr, 16)] += int(insns) * int(execs)
    return header, blocks


def first_load_and_type(binary):
    """The lowest PT_LOAD address (page-aligned) of the binary, and whether it is a PIE."""
    out = subprocess.run([tool("readelf"), "-lW", binary], capture_output=True, text=True, check=True).stdout
    loads = [int(m.group(1), 16) for m in re.finditer(r"^\s*LOAD\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)", out, re.M)]
    return min(loads) & ~0xFFF, re.search(r"Elf file type is DYN", out) is not None


def short_name(name):
    """A demangled name without its parameter list, huddle:: and anonymous namespaces."""
    name = name.replace("(anonymous namespace)::", "").replace("huddle::", "")
    # GCC's specialised copies ("[clone .constprop.0]") keep their tag, after the name.
    clones = "".join(f" [{c}]" for c in re.findall(r" \[clone ([^\]]*)\]", name))
    name = re.sub(r" \[clone [^\]]*\]", "", name)
    # Drop a trailing top-level "(...)" (and " const").
    name = re.sub(r"\s+const$", "", name)
    if name.endswith(")"):
        depth = 0
        for i in range(len(name) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(name[i], 0)
            if depth == 0:
                name = name[:i]
                break
    return name + clones


def symbols(binary):
    """Sorted (start, end, name) of the binary's functions."""
    out = subprocess.run([tool("nm"), "-C", "-S", "--defined-only", binary], capture_output=True, text=True,
                         check=True).stdout
    syms = []
    for line in out.splitlines():
        m = re.match(r"([0-9a-f]+) ([0-9a-f]+) ([tTwW]) (.*)", line)
        if m:
            start, size = int(m.group(1), 16), int(m.group(2), 16)
            if size:
                syms.append((start, start + size, short_name(m.group(4))))
    syms.sort()
    return syms


def attribute(blocks, base, syms, starts, lo, hi):
    per = collections.Counter()
    for addr, n in blocks.items():
        a = addr - base
        if not lo <= a < hi:
            per[(OUTSIDE, -1)] += n
            continue
        i = bisect.bisect_right(starts, a) - 1
        per[(syms[i][2], syms[i][0]) if i >= 0 and a < syms[i][1] else (f"[no symbol] {a:#x}", a)] += n
    return per


def link_map(path):
    """Sorted (start, end, source) of the input sections a GNU ld map lists;
    source is the object file as "lib/file.cc" (kernels/libkernels_neon.a.p/gemm_neon.cc.o -> kernels/gemm_neon.cc)."""
    sections, pending, in_map = [], None, False
    with open(path) as f:
        for line in f:
            if line.startswith("Linker script and memory map"):
                in_map = True
                continue
            if not in_map:
                continue
            m = re.match(r"^ (\.text\S*)\s*$", line)
            if m:  # a long section name: address, size and file follow on the next line
                pending = m.group(1)
                continue
            m = re.match(r"^ (\.text\S*)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+\.o\)?)\s*$", line)
            if m and (m.group(1) or pending):
                start, size = int(m.group(2), 16), int(m.group(3), 16)
                if start and size:
                    obj = m.group(4)
                    lib = obj.split("/", 1)[0] if "/" in obj and not obj.startswith("/") else ""
                    name = re.sub(r"\.o\)?$", "", obj.rsplit("/", 1)[-1].rsplit("(", 1)[-1])
                    sections.append((start, start + size, f"{lib}/{name}" if lib else name))
            pending = None
    sections.sort()
    return sections


def source_of(addr, sections, starts):
    i = bisect.bisect_right(starts, addr) - 1
    return sections[i][2] if i >= 0 and addr < sections[i][1] else "?"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("binary")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--runs-a", type=int, default=1)
    p.add_argument("--runs-b", type=int, default=2)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--title", default="")
    p.add_argument("--map", help="the binary's GNU ld link map: adds each function's source file and a summary per file")
    p.add_argument("--json", help="also write {function: instructions per inference} here")
    o = p.parse_args()
    if o.runs_b <= o.runs_a:
        sys.exit("profile.py: --runs-b must exceed --runs-a")

    first_load, pie = first_load_and_type(o.binary)
    syms = symbols(o.binary)
    starts = [s[0] for s in syms]
    lo, hi = syms[0][0], syms[-1][1]
    per = []
    for path in (o.run_a, o.run_b):
        header, blocks = read_profile(path)
        # qemu-user's start_code is where the main image's first segment landed
        # (entry_code is the dynamic loader's entry point, not the image's).
        base = int(header["start_code"], 16) - first_load if pie else 0
        per.append(attribute(blocks, base, syms, starts, lo, hi))
    runs = o.runs_b - o.runs_a
    diff = {k: (per[1][k] - per[0][k]) / runs for k in set(per[0]) | set(per[1])}
    total = sum(diff.values())
    if total <= 0:
        sys.exit("profile.py: the second run executed no more instructions than the first")

    sections = link_map(o.map) if o.map else []
    sec_starts = [x[0] for x in sections]

    def source(key):
        return "-" if key[1] < 0 or not sections else source_of(key[1], sections, sec_starts)

    if o.title:
        print(o.title)
    print(f"{'instr/inf':>12} {'share':>6}  {'source':30} function")
    rows = sorted(diff.items(), key=lambda kv: -kv[1])
    shown = 0.0
    for key, n in rows[: o.top]:
        name = key[0] if len(key[0]) <= 100 else key[0][:97] + "..."
        print(f"{n / 1e6:10.2f} M {100 * n / total:5.1f}%  {source(key):30} {name}")
        shown += n
    if len(rows) > o.top:
        print(f"{(total - shown) / 1e6:10.2f} M {100 * (total - shown) / total:5.1f}%  {'':30} ({len(rows) - o.top} more functions)")
    print(f"{total / 1e6:10.2f} M 100.0%  {'':30} total per inference")
    by_source = collections.Counter()
    for key, n in diff.items():
        by_source[source(key) if key[0] != OUTSIDE else "(libraries)"] += n
    if sections:
        print("by source file: " + "; ".join(
            f"{f} {n / 1e6:.1f} M ({100 * n / total:.0f}%)"
            for f, n in sorted(by_source.items(), key=lambda kv: -kv[1]) if n / total >= 0.005))
    if o.json:
        with open(o.json, "w") as f:
            json.dump({"total": total, "functions": [[k[0], source(k), n] for k, n in rows],
                       "sources": dict(by_source)}, f, indent=1)


if __name__ == "__main__":
    main()
