#!/usr/bin/env bash
# `huddle run` (issue 6, standalone): the MNIST CNN (real trained weights,
# scripts/mnist) converted with labels 0..9 and its preprocessing (28x28
# gray, pixel / 255), and quantised to int8, run on 200 held-out digits
# written as PNG files:
# - top-1 equals the digit's label on at least 95 % of them (fp32 and int8);
# - fp32 agrees with PyTorch's own predictions, and its top score is the
#   softmax of PyTorch's logits (computed here, not taken from huddle);
# - --json parses and holds the fields, modelSha256 is the file's hash;
# - stdin '-', --top-k, --annotate (PNG files that decode), several images;
# - exit status 1 with the file named for bad images and unusable models,
#   2 for usage errors.
#
# usage: run-test.sh HUDDLE SOURCE_ROOT WORK_DIR [MNIST_DIR]
#   MNIST_DIR: a folder where scripts/mnist already wrote its files (the
#   quantize-models test's), reused when present; otherwise scripts/mnist
#   trains into WORK_DIR/mnist.
set -u
huddle=$1
root=$2
work=$3
mnist=${4:-}
py=/usr/bin/python3
mkdir -p "$work"
. "$(dirname "$0")/expect.sh"
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

if [ -z "$mnist" ] || [ ! -f "$mnist/mnist.onnx" ] || [ ! -f "$mnist/heldout-torch.npy" ]; then
  mnist=$work/mnist
  "$root/scripts/mnist" --out "$mnist" >"$work/mnist.log" 2>&1 ||
    { echo "FAIL: scripts/mnist (PyTorch comes with scripts/models):"; tail -20 "$work/mnist.log"; exit 1; }
fi
echo "MNIST from $mnist"

# Models: with labels and preprocessing (fp32 and int8), and two refused ones.
seq 0 9 >"$work/labels.txt"
conv=(--input-shape input=1,1,28,28 --task classify)
pre=(--size 28x28 --colour gray --mean 0 --std 255)
"$huddle" convert "$mnist/mnist.onnx" -o "$work/mnist.hdm" "${conv[@]}" "${pre[@]}" --labels "$work/labels.txt" \
  >"$work/convert.log" 2>&1 || { echo "FAIL: convert:"; cat "$work/convert.log"; exit 1; }
"$huddle" quantize "$work/mnist.hdm" --calib "$mnist/calib" --max-samples 256 -o "$work/mnist.int8.hdm" --quiet \
  >"$work/quantize.log" 2>&1 || { echo "FAIL: quantize:"; cat "$work/quantize.log"; exit 1; }
"$huddle" convert "$mnist/mnist.onnx" -o "$work/nolabels.hdm" "${conv[@]}" "${pre[@]}" >/dev/null 2>&1 ||
  fail "convert without labels"
"$huddle" convert "$mnist/mnist.onnx" -o "$work/nopre.hdm" "${conv[@]}" --labels "$work/labels.txt" >/dev/null 2>&1 ||
  fail "convert without preprocessing"

# 200 held-out digits, evenly spread over the (class-ordered) held-out set, as 8-bit gray PNGs.
digits=$work/digits
rm -rf "$digits"
mkdir -p "$digits"
$py - "$mnist" "$digits" 200 <<'PY' || { echo "FAIL: writing the digit PNGs"; exit 1; }
import struct, sys, zlib
import numpy as np
mnist, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
x, y = np.load(f"{mnist}/heldout-x.npy"), np.load(f"{mnist}/heldout-y.npy")
torch = np.load(f"{mnist}/heldout-torch.npy")
step = len(x) // n

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

rows = []
for k in range(n):
    i = k * step
    img = np.clip(np.rint(x[i, 0] * 255), 0, 255).astype(np.uint8)
    h, w = img.shape
    raw = b"".join(b"\0" + img[r].tobytes() for r in range(h))
    name = f"digit{k:03d}.png"
    with open(f"{out}/{name}", "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    logits = torch[i].astype(np.float64)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    rows.append(f"{name}\t{int(y[i])}\t{int(p.argmax())}\t{p.max():.6f}\n")
open(f"{out}/truth.tsv", "w").writelines(rows)
PY

# Accuracy, agreement with PyTorch and the JSON document, fp32 and int8.
for m in mnist mnist.int8; do
  "$huddle" run --task classify --model "$work/$m.hdm" --json --top-k 3 "$digits"/digit*.png \
    >"$work/$m.json" 2>"$work/$m.err" || { fail "run --json on $m:"; cat "$work/$m.err"; }
  $py - "$work/$m.json" "$digits/truth.tsv" "$work/$m.hdm" "$m" <<'PY' || fails=$((fails + 1))
import hashlib, json, os, sys
doc_path, truth_path, model, name = sys.argv[1:5]
doc = json.load(open(doc_path))
truth = {}
for line in open(truth_path):
    f, label, torch_top, torch_p = line.split("\t")
    truth[f] = (int(label), int(torch_top), float(torch_p))
bad = []
if doc["task"] != "classify": bad.append(f"task {doc['task']!r}")
if doc["model"] != os.path.basename(model): bad.append(f"model {doc['model']!r}")
if doc["modelSha256"] != hashlib.sha256(open(model, "rb").read()).hexdigest(): bad.append("modelSha256 is not the file's")
images = doc["images"]
if len(images) != len(truth): bad.append(f"{len(images)} images, want {len(truth)}")
right = agree = 0
worst_p = 0.0
infer_us = []
for im in images:
    f = os.path.basename(im["file"])
    labels = im["result"]["classify"]["labels"]
    scores = [l["score"] for l in labels]
    if len(labels) != 3 or scores != sorted(scores, reverse=True) or not all(0 <= s <= 1 for s in scores):
        bad.append(f"{f}: labels {labels}")
    if any(l["name"] != str(l["index"]) for l in labels): bad.append(f"{f}: names {labels}")
    t = im["timings"]
    if set(t) != {"decodeUs", "preprocessUs", "inferenceUs", "postprocessUs"}: bad.append(f"{f}: timings {t}")
    infer_us.append(t["inferenceUs"])
    label, torch_top, torch_p = truth[f]
    right += labels[0]["index"] == label
    agree += labels[0]["index"] == torch_top
    if labels[0]["index"] == torch_top: worst_p = max(worst_p, abs(labels[0]["score"] - torch_p))
n = len(images)
acc = right / n
print(f"{name}: top-1 accuracy {acc:.3f} on {n} held-out digit PNGs, agreement with PyTorch {agree / n:.3f}, "
      f"largest top-1 probability difference from PyTorch's softmax {worst_p:.4f}, "
      f"median inference {sorted(infer_us)[n // 2]} us")
if acc < 0.95: bad.append(f"accuracy {acc:.3f} < 0.95")
if name == "mnist":  # fp32: PyTorch's predictions and probabilities
    if agree / n < 0.98: bad.append(f"agreement with PyTorch {agree / n:.3f} < 0.98")
    if worst_p > 0.01: bad.append(f"top-1 probability off PyTorch's by {worst_p:.4f}")
for b in bad[:10]: print("  FAIL:", b)
sys.exit(1 if bad else 0)
PY
done

# Text output: one line per image, named, with top-k labels.
d150=$digits/digit150.png d151=$digits/digit151.png
expect 0 "^$d150: classify: [0-9] (0\.[0-9]\{3\}\|1\.000), [0-9] ([01]\.[0-9]\{3\})$" -- \
  "$huddle" run --task classify --model "$work/mnist.hdm" --top-k 2 "$d150"
out=$("$huddle" run --task classify --model "$work/mnist.hdm" "$d150" "$d151" 2>&1)
if [ "$(grep -c ': classify: ' <<<"$out")" -eq 2 ] && grep -q "^$d151: classify: " <<<"$out"; then
  echo "ok: two images, two named lines"
else
  fail "two images gave: $out"
fi
# Two engine threads give the same answer; --top-k may be every label.
want=$("$huddle" run --task classify --model "$work/mnist.int8.hdm" "$d150")
got=$("$huddle" run --task classify --model "$work/mnist.int8.hdm" --threads 2 "$d150")
[ -n "$want" ] && [ "$got" = "$want" ] && echo "ok: --threads 2 gives what one thread gives" ||
  fail "--threads 2 gave '$got', one thread '$want'"
for k in 10 11; do  # more than the model's 10 labels gives all 10
  out=$("$huddle" run --task classify --model "$work/mnist.hdm" --top-k $k "$d150")
  [ "$(grep -o '([01]\.[0-9]*)' <<<"$out" | wc -l)" -eq 10 ] && echo "ok: --top-k $k gives 10 labels" ||
    fail "--top-k $k gave: $out"
done
# stdin gives what the file gives.
want=$("$huddle" run --task classify --model "$work/mnist.hdm" "$d150" | sed 's/^[^:]*: //')
got=$("$huddle" run --task classify --model "$work/mnist.hdm" - <"$d150" | sed -n 's/^stdin: //p')
[ -n "$got" ] && [ "$got" = "$want" ] && echo "ok: stdin '-' gives what the file gives" ||
  fail "stdin gave '$got', the file '$want'"

# --annotate: a PNG of the image's size that decodes (by huddle itself, and its header here).
rm -f "$work"/ann*.png
expect 0 'classify: ' -- "$huddle" run --task classify --model "$work/mnist.hdm" --annotate "$work/ann.png" "$d150"
expect 0 'classify: ' -- "$huddle" run --task classify --model "$work/mnist.hdm" "$work/ann.png"
expect 0 'classify: ' -- "$huddle" run --task classify --model "$work/mnist.hdm" --annotate "$work/ann-{}.png" "$d150" "$d151" - <"$d151"
$py - "$work" <<'PY' || fails=$((fails + 1))
import struct, sys, zlib
work = sys.argv[1]
bad = 0
for name in ("ann.png", "ann-digit150.png", "ann-digit151.png", "ann-stdin.png"):
    data = open(f"{work}/{name}", "rb").read()
    w, h, depth, colour = struct.unpack(">IIBB", data[16:26])
    idat, pos = b"", 8
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT": idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    ok = data[:8] == b"\x89PNG\r\n\x1a\n" and (w, h, depth, colour) == (28, 28, 8, 2) and \
        len(zlib.decompress(idat)) == h * (1 + 3 * w)
    print(f"{'ok' if ok else 'FAIL'}: {name} is a {w}x{h} RGB PNG")
    bad += not ok
sys.exit(1 if bad else 0)
PY
expect 1 "$work/no/such/dir/a.png" -- "$huddle" run --task classify --model "$work/mnist.hdm" --annotate "$work/no/such/dir/a.png" "$d150"

# A bad image among good ones: named, the others still run, exit 1; JSON still parses.
printf 'not an image' >"$work/bad.png"
head -c 60 "$d150" >"$work/truncated.png"
out=$("$huddle" run --task classify --model "$work/mnist.hdm" "$d150" "$work/bad.png" "$work/truncated.png" "$d151" 2>&1)
status=$?
if [ $status -eq 1 ] && grep -q "$work/bad.png: " <<<"$out" && grep -q "$work/truncated.png: " <<<"$out" &&
   [ "$(grep -c ': classify: ' <<<"$out")" -eq 2 ]; then
  echo "ok: bad images named, good ones run, exit 1"
else
  fail "bad images among good ones: status $status, output:"; echo "$out" | sed 's/^/    /'
fi
"$huddle" run --task classify --model "$work/mnist.hdm" --json "$d150" "$work/bad.png" >"$work/mixed.json" 2>/dev/null
status=$?
if [ $status -eq 1 ] && $py -c '
import json, sys
doc = json.load(open(sys.argv[1]))
ok = [i for i in doc["images"] if "result" in i]
err = [i for i in doc["images"] if "error" in i]
sys.exit(0 if len(ok) == 1 and len(err) == 1 and err[0]["file"].endswith("bad.png") and "bad.png" in err[0]["error"] else 1)
' "$work/mixed.json"; then
  echo "ok: --json with a bad image parses, with its error"
else
  fail "--json with a bad image: status $status, $(cat "$work/mixed.json")"
fi
expect 1 'missing.png: cannot open' -- "$huddle" run --task classify --model "$work/mnist.hdm" "$work/missing.png"
expect 1 'stdin: ' -- "$huddle" run --task classify --model "$work/mnist.hdm" - </dev/null

# Unusable models: exit 1, the file named, what to do said.
expect 1 'nolabels.hdm: the model has no labels; convert it with --labels' -- \
  "$huddle" run --task classify --model "$work/nolabels.hdm" "$d150"
expect 1 'nopre.hdm: the model stores no image preprocessing (convert it with --size' -- \
  "$huddle" run --task classify --model "$work/nopre.hdm" "$d150"
expect 1 'missing.hdm' -- "$huddle" run --task classify --model "$work/missing.hdm" "$d150"
expect 1 'not a huddle model file' -- "$huddle" run --task classify --model "$d150" "$d150"

# Usage errors: exit 2.
expect 0 'classify ' -- "$huddle" run --help
expect 0 'usage: huddle run' -- "$huddle" run --help
expect 0 ' run ' -- "$huddle" --help
expect 2 "unknown task 'frobnicate' (this build has: classify" -- "$huddle" run --task frobnicate "$d150"
expect 2 "unknown option '--bogus'" -- "$huddle" run --task classify --model "$work/mnist.hdm" --bogus "$d150"
expect 2 'no images given' -- "$huddle" run --task classify --model "$work/mnist.hdm"
expect 2 '--task is required' -- "$huddle" run "$d150"
expect 2 "task 'classify' needs --model" -- "$huddle" run --task classify "$d150"
expect 2 '--top-k needs a whole number from 1 to 65535' -- "$huddle" run --task classify --model "$work/mnist.hdm" --top-k 0 "$d150"
expect 2 '--threads needs a whole number from 1 to 256' -- "$huddle" run --task classify --model "$work/mnist.hdm" --threads x "$d150"
expect 2 '--region needs x0,y0,x1,y1' -- "$huddle" run --task classify --model "$work/mnist.hdm" --region 5,5,1,1 "$d150"
expect 2 '--model needs a value' -- "$huddle" run --task classify --model
expect 2 "needs '{}' in the path" -- "$huddle" run --task classify --model "$work/mnist.hdm" --annotate "$work/a.png" "$d150" "$d151"
expect 2 'would both write' -- "$huddle" run --task classify --model "$work/mnist.hdm" --annotate "$work/{}.png" "$d150" "$d150"
expect 2 "'-' (standard input) can be given once only" -- "$huddle" run --task classify --model "$work/mnist.hdm" - -

echo "run: $fails failure(s)"
[ $fails -eq 0 ]
