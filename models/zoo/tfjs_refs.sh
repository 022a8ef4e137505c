#!/usr/bin/env bash
# TensorFlow.js reference outputs for the models of human_models.sh on real
# photos, the float32 side that huddle's imported models are compared with.
#
#   1. models/zoo/detect_inputs.py: <out>/inputs/<model>/input-<photo>.npy
#   2. bench/peers/tfjs.js, cpu backend (float32 JavaScript kernels):
#      <out>/ref/<model>/<photo>/<output>.npy and index.json
#   3. models/zoo/tfjs_summary.py: what the models see on each photo
#      (centernet's top peaks with COCO labels, nanodet's best classes,
#      emotion's and blazeface's best scores)
#   4. with --runs N: centernet and nanodet timed on the first photo with the
#      cpu and wasm backends (median and min ms of execute + dataSync)
#
# Options: --out DIR (default build/models/tfjs, where human_models.sh put the
# models), --photos LIST, --models LIST (comma-separated), --runs N (default
# 0: no timing). Run models/zoo/human_models.sh first; the TF.js peer is
# installed here when missing (npm ci in bench/peers, as scripts/models does).
set -euo pipefail
cd "$(dirname "$0")/../.."

out=build/models/tfjs
photos=darknet-dog,darknet-horses,darknet-giraffe,darknet-kite,darknet-eagle,darknet-person,chelsea,coffee
models=centernet,nanodet,emotion,blazeface
runs=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --photos) photos=${2:?--photos needs a list}; shift 2 ;;
    --models) models=${2:?--models needs a list}; shift 2 ;;
    --runs) runs=${2:?--runs needs a number}; shift 2 ;;
    -h|--help) sed -n '2,/^set /p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "tfjs_refs.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# model -> "input-node output,output,..." (the node names of the graphs)
declare -A io=(
  [centernet]="tower_0/images tower_0/keypoints,tower_0/wh"
  [nanodet]="input_1 Identity,Identity_1,Identity_2,Identity_3,Identity_4,Identity_5"
  [emotion]="input_1 Identity"
  [blazeface]="input Identity,Identity_1,Identity_2,Identity_3"
)
IFS=, read -r -a model_list <<<"$models"
IFS=, read -r -a photo_list <<<"$photos"
for m in "${model_list[@]}"; do
  [ -n "${io[$m]:-}" ] || { echo "tfjs_refs.sh: unknown model '$m' (known: ${!io[*]})" >&2; exit 2; }
  [ -f "$out/$m.json" ] || { echo "tfjs_refs.sh: $out/$m.json is missing: run models/zoo/human_models.sh" >&2; exit 1; }
done

# The TensorFlow.js peer, pinned by bench/peers/package-lock.json (as scripts/models installs onnxruntime-node)
want=$(sed -n 's/.*"@tensorflow\/tfjs": *"\([^"]*\)".*/\1/p' bench/peers/package.json)
have=$(sed -n 's/^  "version": *"\([^"]*\)".*/\1/p' bench/peers/node_modules/@tensorflow/tfjs/package.json 2>/dev/null || true)
if [ "$have" != "$want" ] || [ ! -d bench/peers/node_modules/@tensorflow/tfjs-backend-wasm ]; then
  echo "tfjs_refs: npm ci in bench/peers (@tensorflow/tfjs $want)"
  (cd bench/peers && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error)
fi

/usr/bin/python3 models/zoo/detect_inputs.py --out "$out/inputs" --models "$models" --photos "$photos"

run() {  # model photo out-dir [tfjs.js options...]
  local m=$1 photo=$2 dir=$3 input outputs
  shift 3
  read -r input outputs <<<"${io[$m]}"
  node bench/peers/tfjs.js "$out/$m.json" --input "$input=$out/inputs/$m/input-$photo.npy" \
    --output "$outputs" --out-dir "$dir" "$@"
}

t=$(date +%s)
for m in "${model_list[@]}"; do
  for photo in "${photo_list[@]}"; do
    run "$m" "$photo" "$out/ref/$m/$photo" --backend cpu >/dev/null
  done
  echo "tfjs_refs: $m on ${#photo_list[@]} photos -> $out/ref/$m/ ($(($(date +%s) - t)) s so far)"
done

/usr/bin/python3 models/zoo/tfjs_summary.py --out "$out" --models "$models" --photos "$photos"

if [ "$runs" -gt 0 ]; then
  echo "== TensorFlow.js timing on ${photo_list[0]}, $runs runs after one warm-up (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  for m in "${model_list[@]}"; do
    case $m in centernet|nanodet) ;; *) continue ;; esac
    for backend in cpu wasm; do
      run "$m" "${photo_list[0]}" "$out/time/$m-$backend" --backend "$backend" --runs "$runs" | grep -v '^output '
    done
  done
fi
