#!/usr/bin/env bash
# Post-training quantisation of real models (issue 5's fidelity bars):
# - the six torchvision classifiers (scripts/models), calibrated with
#   `huddle quantize` on real photos Debian ships and checked on other photos
#   (held out), with --keep-float auto (the fp32 layers' weights stored f16,
#   --float-weights f16): the int8 output's cosine with fp32 ONNX Runtime's own output
#   must be >= 0.99 on every held-out photo (computed here from `huddle infer`,
#   not taken from the quantiser's report), and the report must say the same;
# - the MNIST CNN (real trained weights, scripts/mnist), calibrated on
#   training digits: int8 accuracy on the held-out digits within 0.5 points of
#   fp32, and int8 with 4-bit codebook fully connected layers reported too.
#
# usage: quantize-models-test.sh HUDDLE SOURCE_ROOT WORK_DIR
set -u
huddle=$1
root=$2
work=$3
mkdir -p "$work"
models=(mobilenet_v2 mobilenet_v3_small shufflenet_v2_x1_0 resnet18 squeezenet1_1 efficientnet_b0)
zoo=$root/build/models/torchvision
fails=0

if ! "$root/scripts/models" --runs 3 >"$work/models.log" 2>&1; then
  echo "FAIL: scripts/models failed:"; tail -30 "$work/models.log"; exit 1
fi
# Calibration photos and held-out photos never overlap; both as the tensors
# models/zoo/make_inputs.py makes (torchvision's preprocessing, which ONNX
# Runtime's reference outputs were made from and the peers calibrate on).
calib=$work/calib held=$work/held
rm -rf "$calib"
mkdir -p "$calib" "$held"
if ! /usr/bin/python3 "$root/models/zoo/make_inputs.py" --out "$calib" \
      --photos rocket,motorcycle,darknet-dog,darknet-eagle,darknet-giraffe,darknet-horses,darknet-kite,darknet-person \
      >"$work/inputs.log" 2>&1 ||
    ! /usr/bin/python3 "$root/models/zoo/make_inputs.py" --out "$held" --photos chelsea,coffee,astronaut \
      >>"$work/inputs.log" 2>&1; then
  echo "FAIL: make_inputs.py:"; cat "$work/inputs.log"; exit 1
fi
held_photos=(astronaut chelsea coffee)  # name order, as the quantiser reads the folder

for m in "${models[@]}"; do
  # Random-weight networks amplify small errors (see the README); --keep-float
  # auto keeps the most sensitive layers fp32 until the calibration cosine is 0.998.
  if ! "$huddle" quantize "$zoo/$m.onnx" --calib "$calib" --held-out "$held" -o "$work/$m.int8.hdm" \
      --keep-float auto --target 0.998 --float-weights f16 --report "$work/$m.report.json" --quiet >"$work/$m.quantize.log" 2>&1; then
    echo "FAIL: quantize $m:"; cat "$work/$m.quantize.log"; fails=$((fails + 1)); continue
  fi
  for p in "${held_photos[@]}"; do
    "$huddle" infer "$work/$m.int8.hdm" --input "$held/input-$p.npy" --output "$work/$m.$p.int8.npy" \
      >"$work/$m.$p.log" 2>&1 || { echo "FAIL: infer $m int8 on $p:"; cat "$work/$m.$p.log"; fails=$((fails + 1)); }
  done
done

/usr/bin/python3 - "$zoo" "$work" "${models[*]}" "${held_photos[*]}" <<'PY' || fails=$((fails + 1))
import json, os, sys, numpy as np
zoo, work, models, photos = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
bad = 0
print(f"{'model':20} {'photo':10} {'cos vs ORT fp32':>15} {'top-1':>6}   report: {'mean cos':>8} {'top-1 agr':>9} "
      f"{'fp32':>5} {'size':>6}")
for m in models:
    try:
        rep = json.load(open(f"{work}/{m}.report.json"))
    except OSError:
        print(f"{m:20} no report"); bad += 1; continue
    held = rep["held_out"]
    for p in photos:
        try:
            got = np.load(f"{work}/{m}.{p}.int8.npy").astype(np.float64).ravel()
        except OSError:
            print(f"{m:20} {p:10} missing output"); bad += 1; continue
        want = np.load(f"{zoo}/{m}.{p}.ort.npy").astype(np.float64).ravel()
        cos = float(got @ want / (np.linalg.norm(got) * np.linalg.norm(want)))
        top = got.argmax() == want.argmax()
        ok = cos >= 0.99
        bad += not ok
        print(f"{m:20} {p:10} {cos:15.5f} {'same' if top else 'diff':>6}   "
              f"{held['outputs'][0]['mean_cosine']:8.5f} {held['top1_agreement']:9.2f} {len(rep['float_nodes']):5d} "
              f"{rep['bytes']['ratio']:6.3f}{'' if ok else '   FAIL'}")
    if held["samples"] != len(photos) or held["outputs"][0]["min_cosine"] < 0.99:
        print(f"{m}: the report's held-out cosine {held['outputs'][0]['min_cosine']:.5f} over {held['samples']} "
              f"photos   FAIL"); bad += 1
sys.exit(1 if bad else 0)
PY

# MNIST: real trained weights, accuracy against the labels.
mn=$work/mnist
if "$root/scripts/mnist" --out "$mn" >"$work/mnist.log" 2>&1; then
  mkdir -p "$mn/held"
  ln -sf ../heldout-x.npy "$mn/held/digits.npy"
  for fc in int8 codebook4; do
    "$huddle" quantize "$mn/mnist.onnx" --input-shape input=1,1,28,28 --calib "$mn/calib" --max-samples 256 \
      --held-out "$mn/held" --held-out-labels "$mn/heldout-y.npy" --fc "$fc" -o "$mn/mnist.$fc.hdm" \
      --report "$mn/report.$fc.json" --quiet >"$mn/quantize.$fc.log" 2>&1 ||
      { echo "FAIL: quantize mnist --fc $fc:"; cat "$mn/quantize.$fc.log"; fails=$((fails + 1)); }
  done
  /usr/bin/python3 - "$mn" <<'PY' || fails=$((fails + 1))
import json, sys
mn = sys.argv[1]
torch_acc = json.load(open(f"{mn}/mnist.json"))["torch_heldout_accuracy"]
bad = 0
for fc in ("int8", "codebook4"):
    try:
        rep = json.load(open(f"{mn}/report.{fc}.json"))
    except OSError:
        print(f"mnist {fc}: no report   FAIL"); bad += 1; continue
    acc = rep["held_out_accuracy"]
    n = rep["held_out"]["samples"]
    # fp32 huddle predicts what PyTorch predicts (models-test.sh), so the fp32 figure must be PyTorch's.
    ok_fp32 = abs(acc["fp32"] - torch_acc) <= 0.002
    ok = acc["int8"] >= acc["fp32"] - 0.005 if fc == "int8" else True
    print(f"mnist --fc {fc:9}: {n} held-out digits, accuracy fp32 {acc['fp32']:.4f} (PyTorch {torch_acc:.4f}), "
          f"int8 {acc['int8']:.4f} ({100 * (acc['int8'] - acc['fp32']):+.2f} points), size {rep['bytes']['int8']} bytes "
          f"({rep['bytes']['ratio']:.3f}x the ONNX){'' if ok and ok_fp32 else '   FAIL'}")
    bad += not (ok and ok_fp32)
sys.exit(1 if bad else 0)
PY
else
  echo "FAIL: scripts/mnist:"; tail -20 "$work/mnist.log"; fails=$((fails + 1))
fi

# Bad calibration input is named, with exit status 1, and nothing is written.
mkdir -p "$work/bad"
printf 'not an npy' >"$work/bad/broken.npy"
"$huddle" quantize "$zoo/mobilenet_v2.onnx" --calib "$work/bad" -o "$work/bad.hdm" >"$work/bad.log" 2>&1
status=$?
if [ $status -ne 1 ] || ! grep -q "broken.npy" "$work/bad.log" || [ -e "$work/bad.hdm" ]; then
  echo "FAIL: a broken calibration file gave status $status and:"; cat "$work/bad.log"; fails=$((fails + 1))
fi

echo "quantize-models: $fails failure(s)"
[ $fails -eq 0 ]
