#!/usr/bin/env bash
# The huddle command line: help, version, clear usage errors with exit status 2.
set -u
huddle=$1
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
exit $((fails > 0))
