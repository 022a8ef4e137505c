#!/usr/bin/env bash
# `huddle node` and `huddle ask` end to end on loopback with real tasks: the
# MNIST CNN (scripts/mnist, real trained weights) as a classify node, and a
# colour node.
#
# usage: node-test.sh HUDDLE FLOOD ROOT WORK
# The expected digit for each PNG is what `huddle infer` (the engine alone,
# no task, no server) gives for the same file; the true labels are checked
# too. Every node started here is stopped by its pid; every wait is bounded.
set -u
huddle=$1 flood=$2 root=$3 work=$4
fails=0
rm -rf "$work"
mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; }
trap cleanup EXIT

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# expect STATUS PATTERN -- command...: exit status and a line of the output.
expect() {
  local want=$1 pattern=$2
  shift 3
  local out status
  out=$(timeout 60 "$@" 2>&1)
  status=$?
  if [ "$status" -ne "$want" ] || ! grep -q -- "$pattern" <<<"$out"; then
    fail "'$*' exited $status (want $want), output lacks '$pattern':"
    echo "$out" | sed 's/^/    /'
  else
    ok "$*"
  fi
}

# start_node NAME ARGS...: starts `huddle node`, sets $endpoint and $node_pid.
start_node() {
  local name=$1
  shift
  "$huddle" node --bind tcp://127.0.0.1:0 "$@" >"$work/$name.out" 2>"$work/$name.err" &
  node_pid=$!
  pids+=("$node_pid")
  endpoint=
  for _ in $(seq 300); do
    endpoint=$(head -1 "$work/$name.out" 2>/dev/null)
    [ -n "$endpoint" ] && break
    kill -0 "$node_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ $endpoint != tcp://127.0.0.1:* ]]; then
    fail "huddle node $* printed no endpoint: $(cat "$work/$name.err")"
    return 1
  fi
  ok "huddle node $* listens on $endpoint"
}

# stop_node NAME: SIGTERM, then the exit status must be 0 within 10 s.
stop_node() {
  kill -TERM "$node_pid"
  for _ in $(seq 100); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$node_pid" 2>/dev/null; then
    fail "$1: still running 10 s after SIGTERM"
    kill -KILL "$node_pid"
  fi
  wait "$node_pid"
  local status=$?
  if [ "$status" -eq 0 ] && grep -q 'huddle node: stopped' "$work/$1.err"; then ok "$1: SIGTERM, exit 0"; else
    fail "$1: exit status $status after SIGTERM: $(cat "$work/$1.err")"; fi
}

expect 0 'usage: huddle node' -- "$huddle" node --help
expect 0 'usage: huddle ask' -- "$huddle" ask --help
expect 2 '--task is required' -- "$huddle" node
expect 2 '--max-in-flight needs a whole number' -- "$huddle" node --task classify --max-in-flight 0
expect 2 '--node ENDPOINT is required' -- "$huddle" ask x.png
expect 2 'no image given' -- "$huddle" ask --node tcp://127.0.0.1:1
expect 2 '--region needs four numbers' -- "$huddle" ask --node tcp://127.0.0.1:1 --region 1,2,3 x.png
expect 1 "unknown task 'nosuch'" -- "$huddle" node --task nosuch
# Nothing listens there: the answer never comes.
expect 1 'no answer from tcp://127.0.0.1:9 within 300 ms (timeout)' -- "$huddle" ask --node tcp://127.0.0.1:9 \
  --timeout 300 --status

# The MNIST model with labels and the preprocessing the digits need. Training
# takes minutes on a busy machine: scripts/mnist's default output is reused
# when it is there (the recipe is seeded; bench/run node uses it too).
mnist=$root/build/models/mnist
if [ ! -f "$mnist/mnist.onnx" ] || [ ! -f "$mnist/heldout-y.npy" ]; then
  mnist=$work/mnist
  if ! "$root/scripts/mnist" --out "$mnist" >"$work/mnist.log" 2>&1; then
    fail "scripts/mnist: $(tail -5 "$work/mnist.log")"
    exit 1
  fi
fi
seq 0 9 >"$work/labels.txt"
"$huddle" convert "$mnist/mnist.onnx" -o "$work/mnist.hdm" --size 28x28 --colour gray --mean 0 --std 255 \
  --labels "$work/labels.txt" >"$work/convert.log" 2>&1 || { fail "convert: $(cat "$work/convert.log")"; exit 1; }
# The first held-out digit of each class as a PNG (8-bit gray), a large
# PNG (slow to decode: keeps the node busy), and their true labels.
/usr/bin/python3 - "$work" "$mnist" <<'PY' || { fail "making the PNGs"; exit 1; }
import numpy as np, pathlib, struct, sys, zlib
w, m = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
x, y = np.load(m / "heldout-x.npy"), np.load(m / "heldout-y.npy")
def png(path, a):
    h, wd = a.shape
    raw = b"".join(b"\0" + a[r].tobytes() for r in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", wd, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))
with open(w / "truth.txt", "w") as f:
    for d in range(10):
        i = int(np.nonzero(y == d)[0][0])
        png(w / f"digit{d}.png", np.clip(np.rint(x[i, 0] * 255), 0, 255).astype(np.uint8))
        print(f"digit{d}.png {d}", file=f)
big = (np.add.outer(np.arange(5000), np.arange(5000) * 7) % 251).astype(np.uint8)
png(w / "big.png", big)
PY
# Expected: the engine alone on each PNG.
for d in $(seq 0 9); do
  "$huddle" infer "$work/mnist.hdm" --input "$work/digit$d.png" --output "$work/digit$d.npy" >/dev/null 2>&1 \
    || fail "huddle infer digit$d.png"
done
read -r -a expected <<<"$(/usr/bin/python3 -c "import numpy
print(' '.join(str(int(numpy.load('$work/digit%d.npy' % d).argmax())) for d in range(10)))")"
right=0
for d in $(seq 0 9); do [ "${expected[$d]}" = "$d" ] && right=$((right + 1)); done
if [ "$right" -ge 9 ]; then ok "the engine alone gets $right of 10 digits right"; else
  fail "the engine alone gets only $right of 10 digits right (${expected[*]})"; fi

if start_node classify --task classify --model "$work/mnist.hdm"; then
  # Every digit answered with the engine's label, in text and JSON.
  files=()
  for d in $(seq 0 9); do files+=("$work/digit$d.png"); done
  out=$(timeout 60 "$huddle" ask --node "$endpoint" --task classify --json --top-k 3 "${files[@]}" 2>&1)
  status=$?
  answers=$(/usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)["response"]
    labels = r["body"]["result"]["classify"]["labels"]
    print(r["code"], labels[0]["index"], labels[0]["name"], len(labels))' <<<"$out")
  want=$(for d in $(seq 0 9); do echo "ok ${expected[$d]} ${expected[$d]} 3"; done)
  if [ "$status" -eq 0 ] && [ "$answers" = "$want" ]; then ok "huddle ask: the ten digits, as the engine labels them"; else
    fail "huddle ask answered (exit $status):"; echo "$out" | head -20 | sed 's/^/    /'; fi
  expect 0 "^  [01]\.[0-9]*  7 (7)$" -- "$huddle" ask --node "$endpoint" --top-k 1 "$work/digit7.png"
  expect 0 'task classify, model mnist.hdm' -- "$huddle" ask --node "$endpoint" --status
  expect 0 'state ready, 0 of 2 in flight, 1 workers' -- "$huddle" ask --node "$endpoint" --status
  expect 1 "badInput: this node serves task 'classify', not 'colour'" -- "$huddle" ask --node "$endpoint" \
    --task colour "$work/digit1.png"
  expect 1 'labels.txt: not a PNG or JPEG file' -- "$huddle" ask --node "$endpoint" "$work/labels.txt"

  # The flood: malformed messages between valid requests, oversized frames
  # (the node's limit is 32 MiB + 64 KiB: 40 MiB is over).
  flood_args=()
  for d in $(seq 0 9); do flood_args+=("$work/digit$d.png=${expected[$d]}"); done
  expect 0 'flood: 40 of 40 valid requests answered ok' -- "$flood" "$endpoint" 4 $((40 << 20)) "${flood_args[@]}"
  expect 0 'state ready, 0 of 2 in flight' -- "$huddle" ask --node "$endpoint" --status

  # SIGTERM while the node decodes large images one after another: it exits 0
  # and the request in flight is answered ok.
  timeout 60 "$huddle" ask --node "$endpoint" --timeout 10000 "$work/big.png" "$work/big.png" "$work/big.png" \
    "$work/big.png" "$work/big.png" "$work/big.png" >"$work/busy.out" 2>&1 &
  asker=$!
  busy=0
  for _ in $(seq 100); do
    if timeout 10 "$huddle" ask --node "$endpoint" --status 2>/dev/null | grep -q ', 1 of 2 in flight'; then busy=1; break; fi
    sleep 0.05
  done
  [ "$busy" = 1 ] && ok "a large image in flight" || fail "the large images never showed in flight"
  stop_node classify
  # Its later requests find no node and would wait out their timeouts.
  kill -TERM "$asker" 2>/dev/null
  wait "$asker"
  if grep -q 'big.png: ok' "$work/busy.out"; then ok "answers to the big images: ok before the stop"; else
    fail "no big image answered ok: $(cat "$work/busy.out")"; fi
fi

# Colour: a pure red and a pure blue PNG.
"$huddle" node --help | grep -q "^tasks in this build:.* colour" || fail "huddle node --help lists no colour task"
/usr/bin/python3 - "$work" <<'PY'
import pathlib, struct, sys, zlib
w = pathlib.Path(sys.argv[1])
def png(path, rgb, wd=64, h=48):
  raw = b"".join(b"\0" + bytes(rgb) * wd for _ in range(h))
  chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
  path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", wd, h, 8, 2, 0, 0, 0))
                   + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
png(w / "red.png", (255, 0, 0))
png(w / "blue.png", (0, 0, 255))
PY
if start_node colour --task colour; then
  expect 0 'red  *#ff0000 100.0 %' -- "$huddle" ask --node "$endpoint" --task colour "$work/red.png"
  expect 0 'blue  *#0000ff 100.0 %' -- "$huddle" ask --node "$endpoint" --colours 2 "$work/blue.png"
  expect 0 'task colour' -- "$huddle" ask --node "$endpoint" --status
  stop_node colour
fi

# --- the pool on loopback: huddle recognize, nodes, coordinator ----------------
# A classify node and two colour nodes as static peers (no mDNS here: the
# multi-host tests cover discovery). The scene must hold the digit's label
# (the engine's, as above) and its colours; frames spread over both colour
# nodes; a colour node killed with SIGKILL leaves the other to serve.
peers=()
pool_pids=()
pool_ok=1
for spec in "classify --task classify --model $work/mnist.hdm --node-id pool-classify" \
            "colour-a --task colour --node-id pool-colour-a" "colour-b --task colour --node-id pool-colour-b"; do
  # shellcheck disable=SC2086
  if start_node $spec --no-announce; then peers+=(--peer "${endpoint#tcp://}"); pool_pids+=("$node_pid"); else pool_ok=0; fi
done
if [ "$pool_ok" = 1 ]; then
  expect 0 'pool-colour-b  *[0-9A-Z-]*  *colour .*ready' -- "$huddle" nodes --no-mdns "${peers[@]}" --wait-ms 1500
  out=$(timeout 60 "$huddle" recognize --no-mdns "${peers[@]}" --json-lines --repeat 4 "$work/digit3.png" 2>&1)
  status=$?
  summary=$(/usr/bin/python3 -c '
import json, sys
lines = [json.loads(l) for l in sys.stdin if l.startswith("{")]
nodes = {t["node"] for l in lines for t in l["tasks"] if t["task"] == "colour"}
print(len(lines), all(l["complete"] for l in lines), sorted(t["task"] for t in lines[0]["tasks"]),
      lines[0]["summary"].split(" (")[0], len(nodes))' <<<"$out")
  if [ "$status" -eq 0 ] && [ "$summary" = "4 True ['classify', 'colour'] ${expected[3]} 2" ]; then
    ok "huddle recognize: 4 frames complete, the digit labelled ${expected[3]}, frames spread over 2 colour nodes"
  else
    fail "huddle recognize (exit $status, got '$summary'):"; echo "$out" | head -10 | sed 's/^/    /'
  fi
  "$huddle" coordinator --no-mdns "${peers[@]}" >"$work/coordinator.out" 2>"$work/coordinator.err" &
  coordinator_pid=$!
  pids+=("$coordinator_pid")
  for _ in $(seq 100); do [ -s "$work/coordinator.out" ] && break; sleep 0.1; done
  coordinator=$(head -1 "$work/coordinator.out")
  expect 0 "colour: ok from pool-colour-" -- "$huddle" recognize --coordinator "$coordinator" --tasks colour,classify \
    "$work/red.png"
  expect 1 "detect: noNode: no node in rotation serves 'detect'" -- "$huddle" recognize --coordinator "$coordinator" \
    --tasks detect,colour "$work/red.png"
  kill -TERM "$coordinator_pid"
  wait "$coordinator_pid" && ok "huddle coordinator: SIGTERM, exit 0" || fail "huddle coordinator did not exit 0"
  kill -KILL "${pool_pids[2]}"
  expect 0 'colour: ok from pool-colour-a' -- "$huddle" recognize --no-mdns "${peers[@]}" --tasks colour --repeat 3 \
    --wait-ms 3000 "$work/red.png"
fi
for p in "${pool_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
expect 2 "--peer 'localhost:99999': port must be 1..65535" -- "$huddle" recognize --peer localhost:99999 "$work/red.png"
expect 2 'no image given' -- "$huddle" recognize --no-mdns
expect 1 "cannot read image '$work/missing.png'" -- "$huddle" recognize --no-mdns "$work/missing.png"
expect 1 'no nodes found' -- "$huddle" nodes --no-mdns --wait-ms 100
expect 2 "unknown option '--frobnicate'" -- "$huddle" recognize --frobnicate

echo "node-test: $fails failures"
[ "$fails" -eq 0 ]
