#!/usr/bin/python3
"""One line per profile: the kernel families' share of an inference and the
guest instructions per multiply-accumulate of the GEMM and depthwise families.

    summary.py MACS.jsonl PROFILE.json...

MACS.jsonl: macs.py's lines; each PROFILE.json (profile.py --json) is named
<model>.<precision>.<cpu>.json. A family is the set of source files its
kernels live in (see FAMILIES); the GEMM family's instructions include its
drivers and epilogues, so instructions per MAC is the whole cost of a dense
convolution divided by its MACs.
"""
import json
import os
import re
import sys

# Source file (as profile.py names it) -> family.
FAMILIES = [
    (r"^kernels/(gemm_|conv_)", "gemm"),
    (r"^kernels/f32_", "gemm"),
    (r"^kernels/(dwconv_|f32dw_)", "dw"),
    (r"^kernels/(elementwise_|f32elementwise_|codebook_|preprocess_)", "elementwise"),
    (r"^engine/", "engine"),
]


def family(source):
    for pattern, fam in FAMILIES:
        if re.search(pattern, source):
            return fam
    return "other"


def main():
    macs = {}
    for line in open(sys.argv[1]):
        r = json.loads(line)
        macs[r["model"]] = r
    print(f"{'model':19} {'prec':4} {'cpu':12} {'M/inf':>7} {'GEMM M':>7} {'share':>5} {'instr/MAC':>9}"
          f" {'dw M':>6} {'instr/MAC':>9} {'elemwise M':>10} {'engine M':>8} {'other M':>7}  GEMM kernel")
    for path in sys.argv[2:]:
        model, prec, cpu = os.path.basename(path)[: -len(".json")].split(".", 2)
        p = json.load(open(path))
        fams = {}
        for source, n in p["sources"].items():
            fams[family(source)] = fams.get(family(source), 0) + n
        variants = sorted({re.sub(r"^kernels/(gemm|f32)_(\w+)\.cc$", r"\1 \2", s) for s in p["sources"]
                           if re.match(r"^kernels/(gemm|f32)_(neon|neondot|i8mm|ref)\.cc$", s)
                           and p["sources"][s] > 0.01 * p["total"]})
        m = macs.get(model, {})
        gemm, dw = fams.get("gemm", 0), fams.get("dw", 0)
        per_mac = f"{gemm / m['dense']:9.3f}" if m.get("dense") else f"{'-':>9}"
        dw_per_mac = f"{dw / m['depthwise']:9.3f}" if m.get("depthwise") else f"{'-':>9}"
        print(f"{model:19} {prec:4} {cpu:12} {p['total'] / 1e6:7.1f} {gemm / 1e6:7.1f} {100 * gemm / p['total']:4.0f}%"
              f" {per_mac} {dw / 1e6:6.1f} {dw_per_mac} {fams.get('elementwise', 0) / 1e6:10.1f}"
              f" {fams.get('engine', 0) / 1e6:8.1f} {fams.get('other', 0) / 1e6:7.1f}  {', '.join(variants)}")
    print("(GEMM: kernels/gemm_*, conv_* and f32_* (drivers and epilogues included); dw: the depthwise families;"
          " instr/MAC: the family's guest instructions over the model's dense or depthwise MACs (macs.py);"
          " elemwise: int8/fp32 elementwise, pooling, lookup tables; engine: the interpreter and ops' own loops)")


if __name__ == "__main__":
    main()
