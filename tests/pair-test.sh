#!/usr/bin/env bash
# `huddle identity`, `huddle pair`, `huddle unpair` and `huddle ask` over
# CURVE, against tests/pair/fake-node.cc (a node's pairing side that can also
# answer wrongly) on loopback, with --peer: no mDNS needed. Every fake node
# started here is stopped by its pid; every wait is bounded.
#
# usage: pair-test.sh HUDDLE FAKE_NODE WORK
set -u
huddle=$1 fake=$2 work=$3
. "$(dirname "$0")/expect.sh"
rm -rf "$work"
mkdir -p "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; }
trap cleanup EXIT
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

me=$work/coordinator
# identity: created on first use, the same afterwards; a readable secret key refuses.
expect 0 '^device id: [0-9A-Z]\{6\}-[0-9A-Z]\{6\}-[0-9A-Z]\{6\}$' -- "$huddle" identity --state-dir "$me"
first=$("$huddle" identity --state-dir "$me")
[ "$("$huddle" identity --state-dir "$me")" = "$first" ] && ok "the same identity the second time" ||
  fail "another identity the second time"
expect 0 '"device_id": "' -- "$huddle" identity --state-dir "$me" --json
my_id=$(sed -n 's/^device id: //p' <<<"$first")
chmod 644 "$me/identity.key"
expect 1 "chmod 600 $me/identity.key" -- "$huddle" identity --state-dir "$me"
expect 1 "chmod 600 $me/identity.key" -- "$huddle" pair --state-dir "$me" --wait-ms 0
chmod 600 "$me/identity.key"
expect 2 '--insecure has no place here' -- "$huddle" pair --insecure
expect 2 '--insecure has no place here' -- "$huddle" unpair --insecure X
expect 2 'check character wrong' -- "$huddle" pair --state-dir "$me" 7K2M9Q-XW4T0B-NH3RDA
expect 2 'usage: huddle unpair' -- "$huddle" unpair --state-dir "$me"
expect 0 'usage: huddle pair' -- "$huddle" pair --help
expect 0 'Exit status' -- "$huddle" unpair --help
expect 0 'identity ' -- "$huddle" --help
expect 0 'no paired devices' -- "$huddle" pair --state-dir "$me" --wait-ms 0
expect 1 "$my_id is this device" -- "$huddle" pair --state-dir "$me" --peer "$(sed -n 's/^public key: //p' <<<"$first")@127.0.0.1:1"

# start_fake NAME MODE: a fake node with the state dir $work/NAME; sets
# $endpoint, $key, $id, $peer (KEY@127.0.0.1:PORT) and $fake_pid.
start_fake() {
  "$fake" "$work/$1" "$2" >"$work/$1.out" 2>"$work/$1.err" &
  fake_pid=$!
  pids+=("$fake_pid")
  local line=
  for _ in $(seq 100); do
    line=$(head -1 "$work/$1.out" 2>/dev/null)
    [ -n "$line" ] && break
    sleep 0.1
  done
  read -r endpoint key id <<<"$line"
  peer="$key@${endpoint#tcp://}"
}

# A node open for pairing: the same code on both sides, stored on both sides.
start_fake node accept
expect 1 "no node $id found over mDNS in 200 ms" -- "$huddle" pair --state-dir "$me" --wait-ms 200 "$id"
expect 2 'needs the node.s public key' -- "$huddle" pair --state-dir "$me" --peer "${endpoint#tcp://}"
expect 2 "is device $id, not" -- "$huddle" pair --state-dir "$me" --peer "$peer" "$my_id"
out=$("$huddle" pair --state-dir "$me" --peer "$peer" --name "lab laptop" 2>&1)
status=$?
code=$(sed -n 's/^code \([0-9]\{6\}\): check that the node shows the same code$/\1/p' <<<"$out")
if [ $status -eq 0 ] && [ -n "$code" ] && grep -q "^paired with node $id (classify, fake)$" <<<"$out"; then
  ok "paired with the fake node, code $code"
else
  fail "pair exited $status:"; echo "$out" | sed 's/^/    /'
fi
grep -q "^$id node .* fake$" <(sed 's/  */ /g' "$me/paired") && ok "the node is in the paired file" ||
  fail "the paired file lacks the node: $(cat "$me/paired")"
grep -q "^$my_id coordinator .* lab laptop$" <(sed 's/  */ /g' "$work/node/paired") && ok "the node stored us" ||
  fail "the node's paired file lacks us: $(cat "$work/node/paired")"
expect 0 "^$id *node .*fake$" -- "$huddle" pair --state-dir "$me" --wait-ms 0
expect 0 'is paired already' -- "$huddle" pair --state-dir "$me" --peer "$peer"
# On the node's side we are a coordinator: unpairing there tells nobody.
cp -p "$work/node/paired" "$work/node-paired.saved"
out=$("$huddle" unpair --state-dir "$work/node" "$my_id" 2>&1)
[ $? -eq 0 ] && [ "$out" = "unpaired $my_id ($(hostname))" ] && ok "a coordinator unpaired on the node's side" ||
  fail "unpair of a coordinator: $out"
cp -p "$work/node-paired.saved" "$work/node/paired"

# ask: CURVE to the paired node by id or key; the wrong key fails fast.
expect 0 'node fake: task classify' -- "$huddle" ask --state-dir "$me" --node "$endpoint" --key "$id" --status
expect 0 'node fake: task classify' -- "$huddle" ask --state-dir "$me" --node "$endpoint" --key "$key" --status
expect 1 'no such device is paired here' -- "$huddle" ask --state-dir "$me" --node "$endpoint" --key 7K2M9Q-XW4T0B-NH3RDZ --status
start=$(date +%s%N)
expect 1 "node $endpoint: handshake failed: its key is not the one paired (not this device? give its key with --key" -- \
  "$huddle" ask --state-dir "$me" --node "$endpoint" --status --timeout 20000
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $ms -lt 3000 ] && ok "a wrong key is told in $ms ms" || fail "a wrong key took $ms ms"
expect 2 '--key and --insecure exclude each other' -- "$huddle" ask --node "$endpoint" --insecure --key "$id" --status
expect 2 '--insecure may not connect to tcp://192.0.2.1:5555' -- \
  "$huddle" ask --node tcp://192.0.2.1:5555 --insecure --status

# unpair: gone from our file, the node told (it forgets us).
expect 0 "told node $id at $endpoint: it forgot this device's key" -- "$huddle" unpair --state-dir "$me" --peer "$peer" "$id"
grep -q "$id" "$me/paired" && fail "unpaired node still in the paired file" || ok "the node left the paired file"
grep -q "$my_id" "$work/node/paired" && fail "the node still lists us" || ok "the node forgot us"
expect 1 "$id is not paired" -- "$huddle" unpair --state-dir "$me" "$id"
kill "$fake_pid"

# A node not open for pairing refuses our key: said at once, for pair and ask.
start_fake node closed
start=$(date +%s%N)
expect 1 "handshake refused (status 400): our key is not paired there; is it open for pairing" -- \
  "$huddle" pair --state-dir "$me" --peer "$peer"
expect 1 "node $endpoint: handshake refused (status 400): our key is not paired there" -- \
  "$huddle" ask --state-dir "$me" --node "$endpoint" --key "$key" --status --timeout 20000
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ $ms -lt 4000 ] && ok "refusals told in $ms ms" || fail "refusals took $ms ms"
# ...and an unpair it cannot be told of still unpairs here.
printf 'huddle-paired 1\n%s node 1764950400 %s old\n' "$id" "$key" >"$me/paired"
chmod 600 "$me/paired"
expect 0 "could not tell node $id (handshake refused" -- "$huddle" unpair --state-dir "$me" --peer "${endpoint#tcp://}" "$id"
grep -q "$id" "$me/paired" && fail "unpaired node still in the paired file" || ok "unpaired without telling"
kill "$fake_pid"

# A node without CURVE: the handshake fails at once, and says it may be one
# (libzmq reports a mechanism mismatch or, at times, no detail).
"$huddle" node --task colour --insecure --no-announce --state-dir "$work/plain" >"$work/plain.out" 2>"$work/plain.err" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/plain.out" ] && break; sleep 0.1; done
plain=$(head -1 "$work/plain.out")
expect 1 "node $plain: handshake failed: .*--insecure" -- \
  "$huddle" ask --state-dir "$me" --node "$plain" --status --timeout 20000
expect 0 'task colour' -- "$huddle" ask --insecure --node "$plain" --status
kill "${pids[-1]}"

# Wrong answers: another code (the node is told to forget us), a refusal, silence.
start_fake node wrong-code
expect 1 "codes differ: ours [0-9]\{6\}, the node's [0-9]\{6\}: not pairing (the node was told to forget" -- \
  "$huddle" pair --state-dir "$me" --peer "$peer"
grep -q "$id" "$me/paired" 2>/dev/null && fail "paired despite the codes" || ok "not paired when the codes differ"
grep -q "$my_id" "$work/node/paired" && fail "the node was not told to forget us" || ok "the node forgot us"
kill "$fake_pid"
start_fake node refuse
expect 1 "node $id refused to pair (refused): the person said no" -- "$huddle" pair --state-dir "$me" --peer "$peer"
kill "$fake_pid"

echo "$fails failed"
[ "$fails" -eq 0 ]
