#!/usr/bin/env bash
# run-fuzz.sh TARGET SEEDS CORPUS SECONDS: runs a libFuzzer target for a
# bounded time from the committed seeds; new inputs are kept in CORPUS (a
# build directory). Fails when the target crashes, leaks or times out.
set -eu
target=$1 seeds=$2 corpus=$3 seconds=$4
mkdir -p "$corpus"
# UBSan's findings stop the run (and count as a crash) like ASan's.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# libFuzzer reports a crash with exit status 77 by default, which meson
# counts as a skipped test: make every finding a plain failure.
exec "$target" -max_total_time="$seconds" -seed=1 -rss_limit_mb=2048 -timeout=10 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -artifact_prefix="$corpus/" -print_final_stats=1 "$corpus" "$seeds"
