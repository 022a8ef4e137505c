#!/usr/bin/env bash
# The huddle command line: help, version, clear usage errors with exit status 2.
set -u
huddle=$1
engine_test=$2
fails=0
expect() {  # expect STATUS PATTERN -- command...
  local want=$1 pattern=$2
  shift 3
  local out status
  out=$("$@" 2>&1)
  status=$?
  if [ "$status" -ne "$want" ] || ! grep -q -- "$pattern" <<<"$out"; then
    echo "FAIL: '$*' exited $status (want $want), output lacks '$pattern':"
    echo "$out" | sed 's/^/    /'
    fails=$((fails + 1))
  else
    echo "ok: $*"
  fi
}
expect 0 'selftest' -- "$huddle" --help
expect 0 '^huddle [0-9]' -- "$huddle" --version
expect 0 'kernel variants this CPU runs: ref' -- "$huddle" --version
expect 2 'usage: huddle' -- "$huddle"
expect 2 "unknown command 'frobnicate'" -- "$huddle" frobnicate
expect 2 "unknown option '--frob'" -- "$huddle" --frob
expect 2 "unknown option '--bogus'" -- "$huddle" selftest --bogus
expect 2 '--shapes needs a whole number' -- "$huddle" selftest --shapes x
expect 0 'usage: huddle selftest' -- "$huddle" selftest --help
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
head -c 100 "$dir/model.hdm" > "$dir/cut.hdm"
expect 1 'truncated' -- "$huddle" info "$dir/cut.hdm"
[ ! -e "$dir/o.npy" ] || { echo "FAIL: a failed infer left an output file"; fails=$((fails + 1)); }
exit $((fails > 0))
