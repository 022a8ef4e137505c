#!/usr/bin/env bash
# The huddle command line: help, version, clear usage errors with exit status 2.
set -u
huddle=$1
engine_test=$2
image_test=$3
node_test=$4
. "$(dirname "$0")/expect.sh"
expect 0 'selftest' -- "$huddle" --help
expect 0 '^huddle [0-9]' -- "$huddle" --version
expect 0 'kernel variants this CPU runs: ref' -- "$huddle" --version
expect 2 'usage: huddle' -- "$huddle"
expect 2 "unknown command 'frobnicate'" -- "$huddle" frobnicate
expect 2 "unknown option '--frob'" -- "$huddle" --frob
expect 2 "unknown option '--bogus'" -- "$huddle" selftest --bogus
expect 2 '--shapes needs a whole number' -- "$huddle" selftest --shapes x
expect 0 'usage: huddle selftest' -- "$huddle" selftest --help
expect 0 'bench ' -- "$huddle" --help
expect 0 'usage: huddle bench' -- "$huddle" bench --help
expect 0 'or an image (PNG or' -- "$huddle" bench --help
expect 2 'usage: huddle bench' -- "$huddle" bench
expect 1 'HUDDLE_ISA=sse9: no such kernel variant' -- env HUDDLE_ISA=sse9 "$huddle" --version
expect 0 'selected: ref' -- env HUDDLE_ISA=ref "$huddle" --version
expect 0 'int8 gemm/conv     qs8_gemm_1x1__ref' -- env HUDDLE_ISA=ref "$huddle" --version
# Refused before anything is printed: the only output is the error.
out=$(env HUDDLE_ISA=sse9 "$huddle" --version 2>/dev/null)
if [ -n "$out" ]; then echo "FAIL: a refused HUDDLE_ISA still printed: $out"; fails=$((fails + 1)); else echo "ok: nothing printed for a refused HUDDLE_ISA"; fi
expect 0 'all variants bit-exact' -- "$huddle" selftest --shapes 20 --size 64 --runs 1

# Models: a fixture written by the engine tests (expected output computed there).
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
HUDDLE_FIXTURE_DIR=$dir "$engine_test" "[.cli-fixture]" >/dev/null || { echo "FAIL: fixture"; exit 1; }
expect 0 'input  0: x f32 \[2, 4\]' -- "$huddle" info "$dir/model.hdm"
expect 0 'output 0: y f32 \[2, 3\]' -- "$huddle" info "$dir/model.hdm"
expect 0 'FullyConnected x1, Relu x1' -- "$huddle" info "$dir/model.hdm"
expect 0 'passes would have: fused 1 activations, dropped 1 tensors: 2 -> 1 nodes' -- "$huddle" info "$dir/model.hdm"
expect 0 '' -- "$huddle" infer "$dir/model.hdm" --input "$dir/x.npy" --output "$dir/out.npy"
if cmp -s "$dir/out.npy" "$dir/y.npy"; then echo "ok: infer output equals the expected y.npy"; else echo "FAIL: infer output differs from y.npy"; fails=$((fails + 1)); fi
expect 0 '' -- "$huddle" infer "$dir/model.hdm" --input x="$dir/x.npy" --output y="$dir/out2.npy" --threads 2
cmp -s "$dir/out2.npy" "$dir/y.npy" || { echo "FAIL: named infer output differs"; fails=$((fails + 1)); }
# The reference executor gives the same (exact, integer-valued) output.
expect 0 '' -- "$huddle" infer "$dir/model.hdm" --input "$dir/x.npy" --output y="$dir/out3.npy" --reference
if cmp -s "$dir/out3.npy" "$dir/y.npy"; then echo "ok: infer --reference output equals y.npy"; else echo "FAIL: infer --reference output differs from y.npy"; fails=$((fails + 1)); fi
expect 0 'run the fp32 reference executor' -- "$huddle" infer --help
expect 1 "y.npy: f32 \[2, 3\], but input 'x' is f32 \[2, 4\]" -- "$huddle" infer "$dir/model.hdm" --reference --input "$dir/y.npy" --output "$dir/o.npy"
expect 1 "y.npy: f32 \[2, 3\], but input 'x' is f32 \[2, 4\]" -- "$huddle" infer "$dir/model.hdm" --input "$dir/y.npy" --output "$dir/o.npy"
expect 1 "no model input 'z'" -- "$huddle" infer "$dir/model.hdm" --input z="$dir/x.npy" --output "$dir/o.npy"
expect 1 'not a huddle model file (bad magic)' -- "$huddle" info "$dir/x.npy"
expect 1 'cannot open' -- "$huddle" info "$dir/missing.hdm"
expect 2 'usage: huddle infer' -- "$huddle" infer "$dir/model.hdm"
expect 2 "unknown option '--bogus'" -- "$huddle" infer "$dir/model.hdm" --bogus
# bench: text and JSON reports, bad flags named, bad models refused.
expect 0 'inference: median [0-9.]* ms, min [0-9.]* ms, max [0-9.]* ms (50 runs after 5 warm-up)' -- \
  "$huddle" bench "$dir/model.hdm"
expect 0 'input x f32 \[2, 4\]: random' -- "$huddle" bench "$dir/model.hdm" --runs 3
expect 0 "input x f32 \[2, 4\]: $dir/x.npy" -- "$huddle" bench "$dir/model.hdm" --input x="$dir/x.npy" --runs 3
expect 2 '--threads needs a whole number from 1 to 256' -- "$huddle" bench "$dir/model.hdm" --threads 0
expect 2 '--threads needs a whole number' -- "$huddle" bench "$dir/model.hdm" --threads
expect 2 '--runs needs a whole number from 1' -- "$huddle" bench "$dir/model.hdm" --runs 2x
expect 2 '--warmup needs a whole number from 0' -- "$huddle" bench "$dir/model.hdm" --warmup -1
expect 2 '--input needs a value' -- "$huddle" bench "$dir/model.hdm" --input
expect 2 "unknown option '--bogus'" -- "$huddle" bench "$dir/model.hdm" --bogus
expect 2 'one model only' -- "$huddle" bench "$dir/model.hdm" "$dir/model.hdm"
expect 1 'not a huddle model file (bad magic)' -- "$huddle" bench "$dir/x.npy"
expect 1 "no model input 'z'" -- "$huddle" bench "$dir/model.hdm" --input z=random
expect 1 "y.npy: f32 \[2, 3\], but input 'x' is f32 \[2, 4\]" -- "$huddle" bench "$dir/model.hdm" --input "$dir/y.npy"
# --json: one object whose numbers are sane and whose counts are the flags'.
check_bench_json() {  # check_bench_json REPORT FLAG VALUE...
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
flags = dict(zip(sys.argv[2::2], sys.argv[3::2]))
assert r["engine"] == "huddle" and r["model_bytes"] > 0, r
assert r["runs"] == int(flags.get("--runs", 50)) and r["warmup"] == int(flags.get("--warmup", 5)), r
assert r["threads"] == int(flags.get("--threads", 1)), r
assert 0 <= r["min_ms"] <= r["median_ms"] <= r["max_ms"] < 1000, r
assert len(r["times_ms"]) == r["runs"] and min(r["times_ms"]) == r["min_ms"], r
assert 0 < r["load_ms"] < 10000, r
assert r["arena_bytes"] >= r["peak_live_bytes"] > 0 and r["peak_rss_kib"] > 100, r
assert [(i["name"], i["dtype"], i["shape"]) for i in r["inputs"]] == [("x", "f32", [2, 4])], r
assert r["inputs"][0]["source"] == flags.get("--input", "random"), r
PY
}
for args in "--runs 7 --warmup 0 --threads 2" "--input random --runs 21 --warmup 3" "--input $dir/x.npy --runs 1" ""; do
  # shellcheck disable=SC2086  # the words of $args are the flags
  if report=$("$huddle" bench "$dir/model.hdm" $args --json 2>&1) && check_bench_json "$report" $args; then
    echo "ok: bench --json $args"
  else
    echo "FAIL: bench --json $args: $report"
    fails=$((fails + 1))
  fi
done
# Images as inputs: an ONNX node test's average pool (input 1x3x32x32) with
# stored preprocessing. photo.png is 32x32, so its tensor is exactly x-nchw.npy
# (written by the image tests, from the formula); photo.jpg is 48x32 (stretched).
HUDDLE_FIXTURE_DIR=$dir "$image_test" "[.cli-fixture]" >/dev/null || { echo "FAIL: image fixture"; exit 1; }
pool=/usr/share/libonnx-testdata/data/node/test_averagepool_2d_default/model.onnx
pre=(--size 32x32 --mean 100,110,120 --std 2,4,8)
expect 0 '' -- "$huddle" convert "$pool" -o "$dir/pool.hdm" "${pre[@]}"
expect 0 '' -- "$huddle" convert "$pool" -o "$dir/pool-nhwc.hdm" "${pre[@]}" --nhwc-input
expect 0 '' -- "$huddle" convert "$pool" -o "$dir/pool-bare.hdm"
expect 0 '' -- "$huddle" convert "$pool" -o "$dir/pool-16.hdm" --size 16x16
for layout in nchw nhwc; do
  model=$dir/pool.hdm
  [ $layout = nhwc ] && model=$dir/pool-nhwc.hdm
  expect 0 '' -- "$huddle" infer "$model" --input "$dir/photo.png" --output "$dir/png-$layout.npy"
  expect 0 '' -- "$huddle" infer "$model" --input "$dir/x-$layout.npy" --output "$dir/npy-$layout.npy"
  if cmp -s "$dir/png-$layout.npy" "$dir/npy-$layout.npy"; then echo "ok: infer on photo.png ($layout) equals infer on its tensor"
  else echo "FAIL: infer on photo.png ($layout) differs from infer on x-$layout.npy"; fails=$((fails + 1)); fi
done
expect 0 '' -- "$huddle" infer "$dir/pool.hdm" --input x="$dir/photo.jpg" --output "$dir/jpg.npy"
expect 0 '' -- "$huddle" infer "$dir/pool.hdm" --input "$dir/photo.jpg" --output "$dir/jpg-ref.npy" --reference
[ -s "$dir/jpg.npy" ] && [ -s "$dir/jpg-ref.npy" ] || { echo "FAIL: no output for photo.jpg"; fails=$((fails + 1)); }
expect 1 "$dir/bad.jpg: bad JPEG" -- "$huddle" infer "$dir/pool.hdm" --input "$dir/bad.jpg" --output "$dir/o.npy"
expect 1 "pool-bare.hdm: the model stores no image preprocessing" -- \
  "$huddle" infer "$dir/pool-bare.hdm" --input "$dir/photo.png" --output "$dir/o.npy"
expect 1 "photo.png: for input 'x': the model input is \[1, 3, 32, 32\], but its preprocessing (16x16" -- \
  "$huddle" infer "$dir/pool-16.hdm" --input "$dir/photo.png" --output "$dir/o.npy"
expect 1 "an image, but input 'x' is f32 \[2, 4\]\|stores no image preprocessing" -- \
  "$huddle" infer "$dir/model.hdm" --input "$dir/photo.png" --output "$dir/o.npy"
expect 0 '' -- "$huddle" convert "$pool" -o "$dir/pool-crop.hdm" "${pre[@]}" --resize center-crop --crop 0.5
expect 0 '' -- "$huddle" infer "$dir/pool-crop.hdm" --input "$dir/photo.jpg" --output "$dir/jpg-crop.npy"
expect 2 "crop '1.5' is not a fraction in (0, 1\]" -- "$huddle" convert "$pool" -o "$dir/o.hdm" --crop 1.5
expect 2 'crop needs resize center-crop' -- "$huddle" convert "$pool" -o "$dir/o.hdm" --crop 0.875
expect 0 "input x f32 \[1, 3, 32, 32\]: $dir/photo.jpg" -- "$huddle" bench "$dir/pool.hdm" --input "$dir/photo.jpg" --runs 2
expect 1 "$dir/bad.jpg: bad JPEG" -- "$huddle" bench "$dir/pool.hdm" --input "$dir/bad.jpg" --runs 2
head -c 100 "$dir/model.hdm" > "$dir/cut.hdm"
expect 1 'truncated' -- "$huddle" info "$dir/cut.hdm"
[ ! -e "$dir/o.npy" ] || { echo "FAIL: a failed infer left an output file"; fails=$((fails + 1)); }

# huddle run --task detect on a hand-built CenterNet-shaped detector (tests/node/detect-test.cc).
HUDDLE_FIXTURE_DIR=$dir "$node_test" "[.detect-fixture]" >/dev/null || { echo "FAIL: detect fixture"; exit 1; }
detect=(run --task detect --model "$dir/detector.hdm")
expect 0 'blocks.png: detect: red 1.00 at (6, 0)-(14, 2)' -- "$huddle" "${detect[@]}" "$dir/blocks.png"
expect 0 'blocks.png: detect: 2 objects' -- "$huddle" "${detect[@]}" "$dir/blocks.png"
expect 0 'blocks.png: detect: 1 object$' -- "$huddle" "${detect[@]}" --max-objects 1 "$dir/blocks.png"
expect 0 'blocks.png: detect: 1 object$' -- "$huddle" "${detect[@]}" --min-score 0.6 "$dir/blocks.png"
expect 0 '"detect":{"objects":\[{"box":{"x0":6,"y0":0,"x1":14,"y1":2},"index":0,"name":"red"' -- \
  "$huddle" "${detect[@]}" --json "$dir/blocks.png"
expect 0 '' -- "$huddle" "${detect[@]}" --annotate "$dir/blocks-annotated.png" "$dir/blocks.png"
[ -s "$dir/blocks-annotated.png" ] || { echo "FAIL: --annotate wrote no picture"; fails=$((fails + 1)); }
expect 2 '--min-score needs a number from 0 to 1' -- "$huddle" "${detect[@]}" --min-score 1.5 "$dir/blocks.png"
expect 2 '--max-objects needs a whole number from 1 to 1024' -- "$huddle" "${detect[@]}" --max-objects 0 "$dir/blocks.png"
expect 1 "detector.hdm: the model is for task 'detect', not classify" -- \
  "$huddle" run --task classify --model "$dir/detector.hdm" "$dir/blocks.png"
exit $((fails > 0))
