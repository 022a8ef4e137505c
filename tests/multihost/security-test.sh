#!/usr/bin/env bash
# Issue 9 on a LAN of network namespaces (hosts.sh): pairing, impostors,
# rogue clients, revocation, key file permissions, tampering and a capture,
# all with the secure defaults (no --insecure unless said). The node under
# test runs on h1, the coordinator (`huddle recognize`, `huddle pair`) on h5;
# each host has its own state directory (XDG_STATE_HOME: its own device key).
# One PASS/FAIL line per check, with what was measured:
#  1 pairing: `huddle pair` on h5 lists the h1 node (--accept-pairing) as
#    unpaired; `huddle pair ID` pairs it, both sides show the same code;
#    then `huddle recognize` on h5 gets answers from it; its status says
#    encrypted, keeps no images;
#  2 impostor: a node on h2 with another key but the same task, instance
#    name and --node-id is listed as unpaired by `huddle nodes` and serves
#    none of 20 frames (its own status says 0 served), the real node all;
#    a capture of its port shows no packet at all from h5;
#  3 rogue clients on h3, while the coordinator's frames go on: its own
#    unpaired key with --key of the node, a wrong --key, and --insecure:
#    each ends non-zero within seconds, the first saying it was refused;
#  6 tamper: a proxy on h4 between h5 and the node flips one byte of the
#    image frame after the CURVE handshake: no answer comes back, the node
#    serves nothing for it and keeps serving a direct link; the same proxy
#    not flipping passes every frame (the control);
#  7 capture: tcpdump on the bridge while a JPEG goes to the node: no
#    32-byte window of it in clear; the control, an --insecure node and
#    client on loopback captured the same way, shows every window;
#  4 unpair while frames flow: the node's last answer within 1 s of
#    `huddle unpair`, and the node refuses the coordinator afterwards; the
#    same for a second node that unpairs the coordinator on its side;
#  5 key file permissions: a group/other-readable identity.key or paired
#    file, a directory or a symbolic link in place of the key: `huddle node`
#    refuses to start, naming the file (and `chmod 600` for the modes).
#
# usage: security-test.sh HUDDLE SOURCE_ROOT WORK   (needs root)
set -u
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (network namespaces, bind mounts)"
  exit 77
fi
huddle=$(readlink -f "$1") work=$3  # $2, the source root: not needed (yet)
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
work=$(readlink -f "$work")
MH_DIR=$work/hosts MH_SUBNET=${MH_SUBNET:-10.77.3}
# shellcheck source=hosts.sh
source "$here/hosts.sh"
mh_test_start "$@"
py=/usr/bin/python3
fails=0
start=$(mh_now_ms)
node_host=h1 impostor_host=h2 rogue_host=h3 proxy_host=h4 coordinator=h5

pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
# report NAME FIGURES PROBLEM...: PASS NAME with FIGURES when no problem is
# given, else FAIL with the problems.
report() {
  local name=$1 figures=$2
  shift 2
  if [ $# -eq 0 ]; then pass "$name: $figures"; else fail "$name: $figures; $(printf '%s; ' "$@")"; fi
}
# check NAME FIGURES CMD...: PASS or FAIL NAME with FIGURES as CMD succeeds.
check() {
  local name=$1 figures=$2
  shift 2
  if "$@"; then report "$name" "$figures"; else report "$name" "$figures" "not as expected"; fi
}
# sec H ARGS...: `huddle ARGS` in host H (its own state directory), 60 s at most.
sec() {
  local h=$1
  shift
  mh_exec "$h" timeout 60 "$huddle" "$@"
}
# state_dir H: host H's default state directory.
state_dir() { echo "$MH_DIR/$1/state/huddle"; }
# identity H: sets id and key to host H's device id and public key.
identity() {
  local out
  out=$(sec "$1" identity) || { fail "huddle identity on $1: $out"; return 1; }
  id=$(sed -n 's/^device id: *//p' <<<"$out") key=$(sed -n 's/^public key: *//p' <<<"$out")
  if [ -z "$id" ] || [ -z "$key" ]; then fail "huddle identity on $1 printed no id or key: $out"; return 1; fi
}
# start_node NAME H ARGS...: `huddle node` on host H (log $work/NAME); waits
# for its endpoint; sets pid[NAME] and ep[NAME] (tcp://ADDRESS:PORT, the
# host's address).
declare -A pid ep
start_node() {
  local name=$1 h=$2 log=$work/$1 port
  shift 2
  mh_spawn "$h" "$log" "$huddle" node --bind tcp://0.0.0.0:0 "$@"  # a later --bind wins
  pid[$name]=$MH_PID
  if ! mh_wait_for 20 grep -qs '^tcp://' "$log"; then
    fail "node $name on $h printed no endpoint: $(tail -3 "$log.err")"
    return 1
  fi
  port=$(head -1 "$log")
  ep[$name]=tcp://$(mh_addr "$h"):${port##*:}
}
stop() { local p; for p in "$@"; do mh_ours "$p" && kill -TERM "$p"; mh_wait_exit "$p" 5 || mh_kill "$p"; done; }
# served H ENDPOINT ARGS...: the served count in the status of the node at
# ENDPOINT, asked from host H; empty when no status came.
served() {
  local h=$1 e=$2
  shift 2
  sec "$h" ask --node "$e" --status --timeout 3000 "$@" 2>/dev/null | sed -n 's/.* \([0-9][0-9]*\) served.*/\1/p'
}
# frames H NAME ARGS...: `huddle recognize --json-lines` of the colour task
# in host H; lines in $work/NAME.jsonl, its stderr in .err.
frames() {
  local h=$1 name=$2
  shift 2
  sec "$h" recognize --tasks colour --wait-ms 5000 --deadline-ms 3000 --json-lines "$@" \
    >"$work/$name.jsonl" 2>"$work/$name.jsonl.err"
}
# capture_start NAME NETNS IFACE PORT: tcpdump on IFACE of namespace NETNS
# (TCP port PORT) into $work/NAME.pcap, ready when it returns.
capture_start() {
  local name=$1 netns=$2 iface=$3 port=$4
  ip netns exec "$netns" tcpdump -Z root --immediate-mode -U -i "$iface" -w "$work/$name.pcap" "tcp port $port" \
    2>"$work/$name.tcpdump" &
  capturing=$!
  mh_wait_for 10 grep -qs 'listening on' "$work/$name.tcpdump" || fail "tcpdump did not start: $(cat "$work/$name.tcpdump")"
}
# capture_stop NAME: once the capture file stops growing, stops tcpdump.
capture_stop() {
  local size=-1
  until [ "$(stat -c %s "$work/$1.pcap")" = "$size" ]; do size=$(stat -c %s "$work/$1.pcap"); sleep 0.3; done
  kill -INT "$capturing"
  wait "$capturing"
}
# capture NAME NETNS IFACE PORT H CMD...: CMD in host H (output in
# $work/NAME.out) while capturing.
capture() {
  local name=$1 h=$5
  capture_start "$@"
  shift 5
  mh_exec "$h" "$@" >"$work/$name.out" 2>&1 || echo "  $name: $* failed: $(tail -2 "$work/$name.out")"
  capture_stop "$name"
}
# verdict NAME CHECK ARGS...: security.py CHECK ARGS; PASS/FAIL NAME with its figures.
verdict() {
  local name=$1 out
  shift
  if out=$($py "$here/security.py" "$@" 2>&1); then pass "$name: $out"; else fail "$name: $out"; fi
}

"$huddle" identity --help >/dev/null 2>&1 || { echo "FAIL: this huddle has no 'identity' command"; exit 1; }
# The image: darknet's dog (scripts/setup installs it), else one drawn here.
image=/usr/share/darknet/data/dog.jpg
if [ ! -f "$image" ]; then
  image=$work/noise.jpg
  $py -c "import numpy, PIL.Image as I; I.fromarray(numpy.random.default_rng(9).integers(0, 255, (240, 320, 3), dtype=numpy.uint8)).save('$image', quality=90)" ||
    { echo "FAIL: writing $image"; exit 1; }
fi
t=$(mh_now_ms)
mh_setup 5 || { echo "FAIL: mh_setup 5"; exit 1; }
echo "  5 hosts up in $(($(mh_now_ms) - t)) ms; image $image ($(stat -c %s "$image") bytes)"
identity "$coordinator" || exit 1
coord_id=$id
identity "$node_host" || exit 1
node_id=$id node_key=$key
echo "  node $node_id on $node_host, coordinator $coord_id on $coordinator"

# --- 1: pairing -------------------------------------------------------------
pairing_window=12
start_node real "$node_host" --task colour --node-id cam --name "huddle cam" --accept-pairing \
  --pairing-window "$pairing_window" || exit 1
listed() { sec "$coordinator" pair --wait-ms 1500 >"$work/pair-list" 2>&1; grep -q "$node_id.*unpaired" "$work/pair-list"; }
if mh_wait_for 10 listed; then
  listing=$(grep "$node_id" "$work/pair-list" | tr -s ' ')
  sec "$coordinator" pair "$node_id" >"$work/pair.out" 2>&1
  rc=$?
  code_c=$(grep -o 'code [0-9]\{6\}' "$work/pair.out" | head -1)
  mh_wait_for 5 grep -q "paired with coordinator" "$work/real.err"
  node_line=$(grep "paired with coordinator" "$work/real.err" | head -1)
  code_n=$(grep -o 'code [0-9]\{6\}' <<<"$node_line")
  problems=()
  [ "$rc" = 0 ] && grep -q "paired with node $node_id" "$work/pair.out" ||
    problems+=("huddle pair $node_id: exit $rc: $(tr '\n' ' ' <"$work/pair.out" | cut -c1-200)")
  [ -n "$code_c" ] && [ "$code_c" = "$code_n" ] || problems+=("the codes differ")
  grep -q "$coord_id" <<<"$node_line" || problems+=("the node's line does not name $coord_id: $node_line")
  frames "$coordinator" s1 --repeat 3 "$image"
  answers=$($py "$here/security.py" frames "$work/s1.jsonl" --task colour --ok 3 --frames 3) ||
    problems+=("recognize: $(tail -2 "$work/s1.jsonl.err" | tr '\n' ' ')")
  report "1 pairing" "listed as '$listing'; coordinator shows '$code_c', node '$code_n'; then $answers" "${problems[@]}"
else
  fail "1 pairing: \`huddle pair\` on $coordinator does not list $node_id as unpaired: $(cat "$work/pair-list")"
fi

status=$(sec "$node_host" ask --node "${ep[real]}" --status --json 2>&1 | grep -o '"encrypted":[a-z]*,"keepsImages":[a-z]*')
check "1 the node's status" "${status:-no status}" test "$status" = '"encrypted":true,"keepsImages":false'

# --- 2: an impostor ----------------------------------------------------------
start_node impostor "$impostor_host" --task colour --node-id cam --name "huddle cam"
capture_start s2 "$MH_PREFIX-sw" br0 "${ep[impostor]##*:}"
nodes_json() { sec "$coordinator" nodes --wait-ms 1500 --json >"$work/nodes.json" 2>"$work/nodes.json.err"; }
impostor_listed() { nodes_json; $py "$here/security.py" listed "$work/nodes.json" --host "$(mh_addr "$impostor_host")" --state unpaired; }
mh_wait_for 10 impostor_listed >/dev/null
verdict "2 impostor listed as unpaired by huddle nodes" listed "$work/nodes.json" --host "$(mh_addr "$impostor_host")" --state unpaired
real_before=$(served "$node_host" "${ep[real]}")
frames "$coordinator" s2 --repeat 20 --interval-ms 50 "$image"
real_after=$(served "$node_host" "${ep[real]}")
capture_stop s2
impostor_served=$(served "$impostor_host" "${ep[impostor]}")
verdict "2 the coordinator host never connects to the impostor" contacts "$work/s2.pcap" --from "$(mh_addr "$coordinator")"
problems=()
answers=$($py "$here/security.py" frames "$work/s2.jsonl" --task colour --ok 20 --frames 20) || problems+=("not 20 answers")
[ "${impostor_served:-x}" = 0 ] || problems+=("the impostor served ${impostor_served:-?}")
[ $((${real_after:-0} - ${real_before:-0})) = 20 ] || problems+=("the real node did not serve all 20")
report "2 impostor never receives a frame" \
  "$answers; real node served ${real_before:-?} -> ${real_after:-?}, impostor ${impostor_served:-no status}" "${problems[@]}"

# --- 3: rogue clients ----------------------------------------------------------
# After the pairing window (while it is open an unknown key may ask to pair).
pairing_closed() { sec "$node_host" ask --node "${ep[real]}" --status --json 2>/dev/null | grep -q '"pairing":false'; }
mh_wait_for $((pairing_window + 10)) pairing_closed ||
  fail "3: the node's status does not say its pairing closed, $pairing_window s after its start"
mh_spawn "$coordinator" "$work/s3.jsonl" "$huddle" recognize --tasks colour --wait-ms 5000 --deadline-ms 3000 \
  --json-lines --repeat 60 --interval-ms 100 "$image"
stream_pid=$MH_PID
# rogue NAME H ENDPOINT ARGS...: `huddle ask` (a 3 s timeout) from host H;
# sets rc, ms (how long it took) and said (its output).
rogue() {
  local name=$1 h=$2 e=$3 t0
  shift 3
  t0=$(mh_now_ms)
  sec "$h" ask --node "$e" --task colour --timeout 3000 "$@" "$image" >"$work/$name.out" 2>&1
  rc=$? ms=$(($(mh_now_ms) - t0)) said=$(grep -v WARNING "$work/$name.out" | tr '\n' ' ' | cut -c1-160)
}
rogue rogue-key "$rogue_host" "${ep[real]}" --key "$node_key"
check "3 rogue client with the node's key, not paired" "exit $rc after $ms ms: $said" \
  test "$rc" = 1 -a "$ms" -lt 2500 -a "$(grep -ciE 'refus' "$work/rogue-key.out")" != 0
identity "$rogue_host" && rogue rogue-wrong "$rogue_host" "${ep[real]}" --key "$key"
check "3 rogue client with a wrong key" "exit $rc after $ms ms: $said" test "$rc" = 1 -a "$ms" -lt 5000
# A plain client, on the node's host to its loopback address (where
# --insecure is allowed whatever the namespace).
rogue rogue-insecure "$node_host" "tcp://127.0.0.1:${ep[real]##*:}" --insecure
check "3 rogue --insecure client" "exit $rc after $ms ms: $said" test "$rc" = 1 -a "$ms" -lt 5000
mh_wait_exit "$stream_pid" 30
verdict "3 the paired coordinator's frames meanwhile" frames "$work/s3.jsonl" --task colour --ok 60 --frames 60

# --- 6: tampering ---------------------------------------------------------------
# proxy PORT ARGS...: tamper.py on the proxy host, to the node; waits until it listens.
proxy() {
  local port=$1
  shift
  mh_spawn "$proxy_host" "$work/proxy-$port" "$py" "$here/tamper.py" "0.0.0.0:$port" "${ep[real]#tcp://}" \
    --log "$work/proxy-$port.log" "$@"
  mh_wait_for 10 grep -qs listening "$work/proxy-$port" || fail "6 tamper: the proxy on port $port did not start"
}
proxy 7000 --no-flip
proxy 7001
via() { frames "$coordinator" "$1" --no-mdns --peer "$node_id@$(mh_addr "$proxy_host"):$2" --repeat 3 --interval-ms 200 "$image"; }
via s6-control 7000
verdict "6 tamper control: the proxy not flipping" frames "$work/s6-control.jsonl" --task colour --ok 3 --frames 3
before=$(served "$node_host" "${ep[real]}")
via s6-tampered 7001
after=$(served "$node_host" "${ep[real]}")
flips=$(grep -c '^flip' "$work/proxy-7001.log")
problems=()
tampered=$($py "$here/security.py" frames "$work/s6-tampered.jsonl" --task colour --none-ok --frames 3) ||
  problems+=("an answer came through the tampering proxy")
[ "$flips" -gt 0 ] || problems+=("the proxy flipped nothing")
[ -n "$before" ] && [ "$before" = "$after" ] || problems+=("the node's served count moved")
report "6 tampered frames rejected" "$tampered; $flips bytes flipped; node served ${before:-?} -> ${after:-?}" "${problems[@]}"
sec "$coordinator" ask --node "${ep[real]}" --key "$node_id" --task colour "$image" >"$work/s6-direct.out" 2>&1
rc=$?
check "6 the node serves a direct link after" "huddle ask exit $rc: $(head -1 "$work/s6-direct.out")" test "$rc" = 0

# --- 7: a capture on the bridge -------------------------------------------------------
capture s7 "$MH_PREFIX-sw" br0 "${ep[real]##*:}" "$coordinator" \
  timeout 30 "$huddle" ask --node "${ep[real]}" --key "$node_id" --task colour "$image"
verdict "7 capture on the bridge: no image bytes in clear" cleartext "$work/s7.pcap" "$image" --expect none
# The control, that the same capture and search find an image sent in clear:
# an --insecure node and client on the node host's loopback (where
# --insecure is always allowed), captured on its lo.
if start_node plain "$node_host" --task colour --insecure --no-announce --bind tcp://127.0.0.1:0; then
  capture s7-control "$(mh_ns "$node_host")" lo "${ep[plain]##*:}" "$node_host" \
    timeout 30 "$huddle" ask --insecure --node "$(head -1 "$work/plain")" --task colour "$image"
  verdict "7 capture control (--insecure): the image in clear" cleartext "$work/s7-control.pcap" "$image" --expect all
  stop "${pid[plain]}"
fi

# --- 4: unpair while frames flow -------------------------------------------------------
# unpair_midstream NAME H ARGS...: frames from the coordinator (80, one
# every 50 ms, lines in $work/NAME.jsonl); a second after the first,
# `huddle unpair ARGS` on host H; sets unpaired_at (when that started).
# Returns once the frames are done.
unpair_midstream() {
  local name=$1 h=$2 rc stream
  shift 2
  mh_spawn "$coordinator" "$work/$name.jsonl" "$huddle" recognize --tasks colour --wait-ms 5000 --deadline-ms 500 \
    --json-lines --repeat 80 --interval-ms 50 "$image"
  stream=$MH_PID
  mh_wait_for 20 test -s "$work/$name.jsonl" || fail "$name: no frame within 20 s: $(tail -2 "$work/$name.jsonl.err")"
  sleep 1
  unpaired_at=$(mh_now_ms)
  sec "$h" unpair "$@" >"$work/$name-unpair.out" 2>&1
  rc=$?
  echo "  $name: huddle unpair $* on $h: exit $rc in $(($(mh_now_ms) - unpaired_at)) ms: $(tr '\n' ' ' <"$work/$name-unpair.out")"
  mh_wait_exit "$stream" 30
}
# refused NAME ENDPOINT KEY: `huddle ask` as the coordinator (its state
# directory) to the node at ENDPOINT is refused (output in $work/NAME.out).
refused() {
  ! sec "$coordinator" ask --node "$2" --key "$3" --task colour --timeout 3000 "$image" >"$work/$1.out" 2>&1 &&
    grep -qi refus "$work/$1.out"
}
unpair_midstream s4 "$coordinator" "$node_id"
verdict "4 unpair: the coordinator stops using the node within 1 s" revoked "$work/s4.jsonl" --task colour \
  --at "$unpaired_at" --within 1000 --after 1500
# The node refuses the coordinator: told by the unpair, else unpaired on the
# node's side (its paired file is read again every ~250 ms).
how="told by the coordinator's unpair"
if ! refused s4-ask "${ep[real]}" "$node_key"; then
  how="after \`huddle unpair $coord_id\` on the node's side"
  sec "$node_host" unpair "$coord_id" >"$work/unpair-node.out" 2>&1
  t=$(mh_now_ms)
  mh_wait_for 3 refused s4-ask "${ep[real]}" "$node_key"
  how+=" (refused $(($(mh_now_ms) - t)) ms later)"
fi
refused s4-ask "${ep[real]}" "$node_key"
check "4 the node refuses the unpaired coordinator" "$how: $(tr '\n' ' ' <"$work/s4-ask.out" | cut -c1-160)" test $? = 0
stop "${pid[real]}" "${pid[impostor]}"
# The same revoked on the node's side: a second node, on the proxy host,
# paired, then it unpairs the coordinator while the frames flow.
identity "$proxy_host" && second_id=$id second_key=$key
start_node second "$proxy_host" --task colour --node-id cam2 --accept-pairing
if sec "$coordinator" pair --wait-ms 10000 "$second_id" >"$work/pair-second.out" 2>&1; then
  unpair_midstream s4b "$proxy_host" "$coord_id"
  verdict "4 unpair on the node's side: its last answer within 1 s" revoked "$work/s4b.jsonl" --task colour \
    --at "$unpaired_at" --within 1000 --after 1500
  refused s4b-ask "${ep[second]}" "$second_key"
  check "4 the second node refuses the coordinator then" "$(tr '\n' ' ' <"$work/s4b-ask.out" | cut -c1-160)" test $? = 0
else
  fail "4 unpair on the node's side: huddle pair $second_id failed: $(tr '\n' ' ' <"$work/pair-second.out")"
fi
stop "${pid[second]}"

# --- 5: key file permissions ----------------------------------------------------------
# refuses NAME FILE SETUP...: after SETUP (a command), `huddle node` with a
# copy of the node's state directory must exit non-zero at once, naming FILE
# (and `chmod 600` when the check's name says mode).
perm_node() { mh_exec "$node_host" timeout 10 "$huddle" node --task colour --bind tcp://127.0.0.1:0 --no-announce --state-dir "$1"; }
refuses() {
  local name=$1 file=$2 dir=$work/state-$1 rc
  shift 2
  cp -a "$(state_dir "$node_host")" "$dir"
  (cd "$dir" && "$@")
  perm_node "$dir" >"$work/perm-$name.out" 2>&1
  rc=$?
  local said
  said=$(tr '\n' ' ' <"$work/perm-$name.out" | cut -c1-200)
  if [ "$rc" != 0 ] && [ "$rc" != 124 ] && grep -qF "$dir/$file" "$work/perm-$name.out" &&
    { [[ $name != mode* ]] || grep -qF "chmod 600" "$work/perm-$name.out"; }; then
    pass "5 $name refused: exit $rc: $said"
  else
    fail "5 $name: exit $rc: $said"
  fi
}
# The control: the copied state directory as it is starts a node.
cp -a "$(state_dir "$node_host")" "$work/state-ok"
mh_spawn "$node_host" "$work/perm-ok" "$huddle" node --task colour --bind tcp://127.0.0.1:0 --no-announce --state-dir "$work/state-ok"
if mh_wait_for 10 grep -qs '^tcp://' "$work/perm-ok"; then pass "5 control: a node starts with the state directory's modes as they are"
else fail "5 control: the node did not start with the modes as they are: $(tail -2 "$work/perm-ok.err")"; fi
stop "$MH_PID"
refuses mode-644-key identity.key chmod 644 identity.key
refuses mode-640-key identity.key chmod 640 identity.key
refuses mode-644-paired paired chmod 644 paired
refuses dir-key identity.key sh -c 'rm identity.key && mkdir identity.key'
refuses symlink-key identity.key sh -c 'mv identity.key ../identity.key.real && ln -s ../identity.key.real identity.key'

mh_teardown
echo "security-test: $fails failures, $(($(mh_now_ms) - start)) ms"
[ "$fails" -eq 0 ]
