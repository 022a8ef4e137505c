#!/usr/bin/env bash
# The six torchvision classifiers, exported by scripts/models (seeded weights,
# real photos, ONNX Runtime's outputs), converted with `huddle convert` and run
# by huddle fp32 (and, on one photo, by the fp32 reference executor, huddle
# infer --reference, and by a model converted without the graph passes,
# --no-optimize): every output must match ONNX Runtime's (cosine >= 0.9999,
# same top-1), and the outputs must not be degenerate (std >= 0.1, so a match
# means something). The MNIST CNN (real trained weights, scripts/mnist) must
# predict what PyTorch predicts. Also: a model with unsupported ops is refused with every
# such node listed, and a bad sidecar is named.
#
# usage: models-test.sh HUDDLE SOURCE_ROOT WORK_DIR
set -u
huddle=$1
root=$2
work=$3
mkdir -p "$work"
models=(mobilenet_v2 mobilenet_v3_small shufflenet_v2_x1_0 resnet18 squeezenet1_1 efficientnet_b0)
photos=(chelsea coffee astronaut)
zoo=$root/build/models/torchvision
fails=0

# The export is ~1-2 min; scripts/models is idempotent and reuses what is there.
if ! "$root/scripts/models" --runs 3 >"$work/models.log" 2>&1; then
  echo "FAIL: scripts/models failed:"
  tail -30 "$work/models.log"
  exit 1
fi

for m in "${models[@]}"; do
  if ! "$huddle" convert "$zoo/$m.onnx" -o "$work/$m.hdm" --size 224x224 \
      --mean 123.675,116.28,103.53 --std 58.395,57.12,57.375 --task classify >"$work/$m.convert.log" 2>&1; then
    echo "FAIL: convert $m:"; cat "$work/$m.convert.log"; fails=$((fails + 1)); continue
  fi
  echo "converted $m: $(cat "$work/$m.convert.log")"
  for p in "${photos[@]}"; do
    if ! "$huddle" infer "$work/$m.hdm" --input "$zoo/input-$p.npy" --output "$work/$m.$p.npy" --threads 2 \
        >"$work/$m.$p.log" 2>&1; then
      echo "FAIL: infer $m on $p:"; cat "$work/$m.$p.log"; fails=$((fails + 1))
    fi
  done
  # The fp32 reference executor (the oracle) on the first photo must match too.
  p=${photos[0]}
  if ! "$huddle" infer "$work/$m.hdm" --input "$zoo/input-$p.npy" --output "$work/$m.$p-reference.npy" \
      --reference >"$work/$m.$p-reference.log" 2>&1; then
    echo "FAIL: infer --reference $m on $p:"; cat "$work/$m.$p-reference.log"; fails=$((fails + 1))
  fi
  # Converted without the graph passes: the passes must not change what the model computes.
  if ! { "$huddle" convert "$zoo/$m.onnx" -o "$work/$m.noopt.hdm" --no-optimize &&
      "$huddle" infer "$work/$m.noopt.hdm" --input "$zoo/input-$p.npy" --output "$work/$m.$p-nopasses.npy"; } \
      >"$work/$m.$p-nopasses.log" 2>&1; then
    echo "FAIL: convert --no-optimize / infer $m on $p:"; cat "$work/$m.$p-nopasses.log"; fails=$((fails + 1))
  fi
done

/usr/bin/python3 - "$zoo" "$work" "${models[*]}" "${photos[*]} ${photos[0]}-reference ${photos[0]}-nopasses" <<'PY' || fails=$((fails + 1))
import sys, numpy as np
zoo, work, models, photos = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
bad = 0
print(f"{'model':20} {'photo':18} {'max|diff|':>10} {'cosine':>12} {'top-1':>6} {'out std':>8}")
for m in models:
    for p in photos:
        try:
            got = np.load(f"{work}/{m}.{p}.npy").astype(np.float64).ravel()
        except OSError:
            print(f"{m:20} {p:18} missing output"); bad += 1; continue
        want = np.load(f"{zoo}/{m}.{p.split('-')[0]}.ort.npy").astype(np.float64).ravel()
        if got.shape != want.shape:
            print(f"{m:20} {p:18} shape {got.shape} vs {want.shape}"); bad += 1; continue
        cos = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
        diff = float(np.abs(got - want).max())
        top = got.argmax() == want.argmax()
        ok = cos >= 0.9999 and top and want.std() >= 0.1
        bad += not ok
        print(f"{m:20} {p:18} {diff:10.3g} {cos:12.8f} {'same' if top else 'DIFF':>6} {want.std():8.3f}"
              f"{'' if ok else '   FAIL'}")
sys.exit(1 if bad else 0)
PY

# A model with real trained weights: the MNIST digit CNN (scripts/mnist trains
# it with PyTorch, seeded), converted for its whole held-out set as one batch.
# huddle must predict what PyTorch predicts, at PyTorch's accuracy (>= 95 %).
if "$root/scripts/mnist" --out "$work/mnist" >"$work/mnist.log" 2>&1 &&
    n=$(/usr/bin/python3 -c "import numpy; print(len(numpy.load('$work/mnist/heldout-y.npy')))") &&
    "$huddle" convert "$work/mnist/mnist.onnx" -o "$work/mnist/mnist.hdm" --input-shape "input=$n,1,28,28" \
      >>"$work/mnist.log" 2>&1 &&
    "$huddle" infer "$work/mnist/mnist.hdm" --input "$work/mnist/heldout-x.npy" --output "$work/mnist/huddle.npy" \
      >>"$work/mnist.log" 2>&1; then
  /usr/bin/python3 - "$work/mnist" <<'PY' || fails=$((fails + 1))
import sys, numpy as np
d = sys.argv[1]
got, torch, y = np.load(f"{d}/huddle.npy"), np.load(f"{d}/heldout-torch.npy"), np.load(f"{d}/heldout-y.npy")
acc, tacc = float((got.argmax(1) == y).mean()), float((torch.argmax(1) == y).mean())
agree = float((got.argmax(1) == torch.argmax(1)).mean())
ok = acc >= 0.95 and agree >= 0.999 and abs(acc - tacc) <= 0.001
print(f"mnist: huddle fp32 accuracy {acc:.4f}, PyTorch {tacc:.4f} on {len(y)} held-out digits; predictions agree "
      f"on {agree:.4f}, max |diff| {float(np.abs(got - torch).max()):.3g}{'' if ok else '   FAIL'}")
sys.exit(0 if ok else 1)
PY
else
  echo "FAIL: mnist (scripts/mnist, convert or infer):"; tail -20 "$work/mnist.log"; fails=$((fails + 1))
fi

# Unsupported ops: one error listing every such node (also an unsupported op
# type after one: only supported nodes downstream of a refused one are not
# listed, their inputs being unknown), nothing written.
/usr/bin/python3 - "$work/unsupported.onnx" <<'PY'
import sys, onnx
from onnx import helper, TensorProto
x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
nodes = [helper.make_node("Relu", ["x"], ["a"], name="ok_relu"),
         helper.make_node("Erf", ["a"], ["b"], name="the_erf"),
         helper.make_node("Relu", ["b"], ["c"], name="after_erf"),
         helper.make_node("LpNormalization", ["x"], ["d"], name="the_lpnorm"),
         helper.make_node("Celu", ["d"], ["e"], name="celu_after_lpnorm"),
         helper.make_node("MaxPool", ["x"], ["f"], name="pool", kernel_shape=[1, 1], dilations=[2, 2]),
         helper.make_node("Add", ["c", "e"], ["g"], name="add"),
         helper.make_node("Add", ["g", "f"], ["y"], name="add2")]
g = helper.make_graph(nodes, "g", [x], [y])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
PY
out=$("$huddle" convert "$work/unsupported.onnx" -o "$work/unsupported.hdm" 2>&1)
status=$?
for want in "cannot import 4 problems" "node 1 'the_erf' (Erf): op type not supported" \
    "node 3 'the_lpnorm' (LpNormalization): op type not supported" \
    "node 4 'celu_after_lpnorm' (Celu): op type not supported" "node 5 'pool' (MaxPool): dilations [2, 2]"; do
  if [ $status -ne 1 ] || ! grep -qF -- "$want" <<<"$out"; then
    echo "FAIL: convert of unsupported ops (exit $status) lacks '$want':"; echo "$out"; fails=$((fails + 1))
  fi
done
[ ! -e "$work/unsupported.hdm" ] || { echo "FAIL: a refused convert wrote a file"; fails=$((fails + 1)); }
grep -q "after_erf" <<<"$out" && { echo "FAIL: a node downstream of a refused one is listed too"; fails=$((fails + 1)); }

# Preprocessing from a sidecar reaches the model; a bad one is named.
printf 'task = classify\nlabels = labels.txt\nsize = 224x224\nmean = 1,2,3\nstd = 4,5,6\n' >"$work/side.txt"
printf 'cat\ndog\n' >"$work/labels.txt"
if "$huddle" convert "$zoo/squeezenet1_1.onnx" -o "$work/side.hdm" --sidecar "$work/side.txt" >/dev/null 2>&1 &&
    "$huddle" info "$work/side.hdm" | grep -q "task: classify, labels: 2"; then
  echo "ok: sidecar preprocessing and labels stored"
else
  echo "FAIL: sidecar not stored"; fails=$((fails + 1))
fi
printf 'size = 224\n' >"$work/bad-side.txt"
out=$("$huddle" convert "$zoo/squeezenet1_1.onnx" -o "$work/bad.hdm" --sidecar "$work/bad-side.txt" 2>&1)
grep -q "size '224' is not WxH" <<<"$out" || { echo "FAIL: bad sidecar: $out"; fails=$((fails + 1)); }
out=$("$huddle" convert "$work/side.txt" -o "$work/bad.hdm" 2>&1)
grep -q "not an ONNX model" <<<"$out" || { echo "FAIL: a non-ONNX file: $out"; fails=$((fails + 1)); }

echo "models test: $fails failure(s)"
exit $((fails > 0))
