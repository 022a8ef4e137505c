#!/usr/bin/env bash
# The pool on a LAN of network namespaces (hosts.sh): nodes on h1..h4, each
# announcing itself through its own host's avahi-daemon, the coordinator
# (`huddle recognize`) on h5. One PASS/FAIL line per scenario, with what was
# measured:
#  1 three task nodes on three hosts: all found and used, the scene fused
#    (detect + colour + classify on dog.jpg when the models are built);
#  2 a node started while frames flow is used within 2 s;
#  3 a node SIGKILLed mid-stream: no frame lost (late or missing), every task
#    answered or marked nodeLost/timeout, out of rotation within 3 s;
#  4 the same for a host cut off (link down, then everything in it killed:
#    no FIN, no mDNS goodbye): only heartbeats can tell;
#  5 two nodes of one task share the frames; one is killed, the other takes
#    every frame;
#  6 the killed node restarted with the same id is used again within 3 s;
#  7 chaos: 1,000 frames while nodes are killed and restarted at random;
#  8 the coordinator host's avahi-daemon is killed mid-stream:
#    every frame still complete (liveness is the heartbeats' business); once
#    it is back, a new node is found;
#  9 a node whose host's avahi-daemon died stays in rotation when the
#    coordinator's daemon restarts (its fresh browse cannot list the node).
#
# usage: scenarios-test.sh HUDDLE SOURCE_ROOT WORK   (needs root)
# Models: build/models/tfjs/centernet.int8.hdm (models/zoo/human_models.sh)
# and build/models/mnist/mnist.onnx (scripts/mnist, or the quantize-models
# test's in this build directory) when present; without
# them scenario 1 uses colour nodes in their place and says so.
set -u
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (network namespaces, bind mounts)"
  exit 77
fi
huddle=$(readlink -f "$1") root=$(readlink -f "$2") work=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"
work=$(readlink -f "$work")
MH_DIR=$work/hosts MH_SUBNET=${MH_SUBNET:-10.77.2}
# shellcheck source=hosts.sh
source "$here/hosts.sh"
mh_test_start "$@"
py=/usr/bin/python3
echo "  load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
coordinator=h5
deadline=500
fails=0
start=$(mh_now_ms)

# report NAME CHECK ARGS...: runs frames.py CHECK, prints PASS/FAIL NAME and its figures.
report() {
  local name=$1 out
  shift
  if out=$($py "$here/frames.py" "$@" 2>&1); then echo "PASS $name: $out"; else
    echo "FAIL $name: $out"
    fails=$((fails + 1))
  fi
}
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
# want N: scenario N is to run. MH_ONLY="1 4" runs those alone (2 runs 2
# and 3, 5 runs 5 and 6).
want() { [[ " ${MH_ONLY:-1 2 4 5 7 8 9} " == *" $1 "* ]]; }

# sleep_until MS: sleeps until the Unix time MS (milliseconds).
sleep_until() {
  local d=$(($1 - $(mh_now_ms)))
  [ "$d" -le 0 ] || sleep "$((d / 1000)).$(printf %03d $((d % 1000)))"
}

# ms_between A B: a random whole number of milliseconds in [A, B].
ms_between() { echo $(($1 + RANDOM % ($2 - $1 + 1))); }

# start_node H ID ARGS...: `huddle node` on host H with id ID; waits for its
# endpoint. Records its pid, host, arguments and start time (started[ID],
# taken before the process starts).
declare -A node_pid node_host node_args started runs
start_node() {
  local h=$1 id=$2
  shift 2
  runs[$id]=$((${runs[$id]:-0} + 1))
  local log=$work/node-$id.${runs[$id]}
  started[$id]=$(mh_now_ms)
  # shellcheck disable=SC2086
  mh_spawn "$h" "$log" "$huddle" node $node_insecure --bind tcp://0.0.0.0:0 --node-id "$id" "$@"
  node_pid[$id]=$MH_PID node_host[$id]=$h node_args[$id]="$*"
  if ! mh_wait_for 30 grep -qs '^tcp://' "$log"; then
    fail "node $id on $h printed no endpoint: $(tail -3 "$log.err")"
    return 1
  fi
}
# colour_nodes HOST:ID...: a colour node on each host.
colour_nodes() {
  local hi
  for hi in "$@"; do start_node "${hi%%:*}" "${hi#*:}" --task colour; done
}
# restart_node ID: the same node again (a new process, a new port).
# shellcheck disable=SC2086
restart_node() { start_node "${node_host[$1]}" "$1" ${node_args[$1]}; }
# kill_node ID: SIGKILL; sets killed (when the signal was sent) and waits
# until the node has exited.
kill_node() {
  mh_kill "${node_pid[$1]}"
  killed=$MH_KILL_MS
  unset "node_pid[$1]"
}
# stop_nodes: SIGTERM to every node still running (they withdraw their mDNS
# services), SIGKILL after 5 s.
stop_nodes() {
  local id
  for id in "${!node_pid[@]}"; do mh_ours "${node_pid[$id]}" && kill -TERM "${node_pid[$id]}"; done
  for id in "${!node_pid[@]}"; do mh_wait_exit "${node_pid[$id]}" 5 || mh_kill "${node_pid[$id]}"; done
  node_pid=()
}

# stream NAME FRAMES [INTERVAL]: `huddle recognize --json-lines` on the
# coordinator host in the background (colour on the small image, FRAMES
# frames, one every INTERVAL ms, default 50), its log (--verbose) stamped
# with the time of each line in NAME.log; waits for its first frame and sets
# t0 then.
stream() {
  local name=$1 frames=$2 interval=${3:-50}
  # shellcheck disable=SC2086
  mh_spawn "$coordinator" "$work/$name.jsonl" /bin/bash -c \
    'log=$1; shift; exec "$@" 2> >(exec /usr/bin/python3 -u "$0" stamp >"$log")' "$here/frames.py" "$work/$name.log" \
    timeout 180 "$huddle" recognize $recognize_insecure --verbose --wait-ms 5000 --deadline-ms "$deadline" --tasks colour \
    --repeat "$frames" --interval-ms "$interval" --json-lines "$work/small.png"
  rec_pid=$MH_PID
  mh_wait_for 20 test -s "$work/$name.jsonl" || fail "$name: no frame within 20 s: $(tail -3 "$work/$name.log")"
  t0=$(mh_now_ms)
}
# end_stream NAME: waits for the coordinator to finish; prints its last line.
end_stream() {
  mh_wait_exit "$rec_pid" 180 || { fail "$1: recognize still runs"; mh_kill "$rec_pid"; }
  echo "  $1: $(grep -o 'recognize: .*' "$work/$1.log" | tail -1)"
}
# nodes_json FILE: what a fresh `huddle nodes` on the coordinator host sees.
nodes_json() {
  nodes_at=$(mh_now_ms)
  # shellcheck disable=SC2086
  mh_exec "$coordinator" timeout 30 "$huddle" nodes $nodes_insecure --wait-ms 1500 --json >"$1" 2>"$1.err"
}

"$huddle" recognize --help >/dev/null 2>&1 || { echo "FAIL: this huddle has no 'recognize' command"; exit 1; }
# Once links are authenticated (CurveZMQ, pairing), these hosts are not
# paired: the tests' own way in, where the commands have it.
insecure() { "$huddle" "$1" --help 2>&1 | grep -q -- '--insecure' && echo --insecure; }
node_insecure=$(insecure node) recognize_insecure=$(insecure recognize) nodes_insecure=$(insecure nodes)
$py -c "from PIL import Image; Image.new('RGB', (64, 48), (255, 0, 0)).save('$work/small.png')" ||
  { echo "FAIL: writing small.png"; exit 1; }
t=$(mh_now_ms)
mh_setup 5 || { echo "FAIL: mh_setup 5"; exit 1; }
echo "  5 hosts up in $(($(mh_now_ms) - t)) ms"

# --- 1: three task nodes, three hosts ---------------------------------------
if want 1; then
  detect_model=$root/build/models/tfjs/centernet.int8.hdm
  mnist=$root/build/models/mnist
  dog=/usr/share/darknet/data/dog.jpg
  checks=()
  if [ -f "$detect_model" ] && [ -f "$dog" ]; then
    image=$dog
    start_node h1 s1-detect --task detect --model "$detect_model" && checks+=(--node detect=s1-detect)
    checks+=(--objects dog,bicycle)
  else
    image=$work/small.png
    echo "  1: no $detect_model: a colour node on h1 in place of detect"
    start_node h1 s1-colour-b --task colour && checks+=(--node colour=s1-colour-b --words red)
  fi
  start_node h2 s1-colour --task colour
  colour_nodes=s1-colour
  seq 0 9 >"$work/digits.txt"
  # The MNIST CNN scripts/mnist makes, or the one the quantize-models test
  # trained in this build (the test command's case).
  [ -f "$mnist/mnist.onnx" ] || mnist=$(dirname "$work")/quantize-models-test/mnist
  if [ -f "$mnist/mnist.onnx" ] && "$huddle" convert "$mnist/mnist.onnx" -o "$work/mnist.hdm" \
       --input-shape input=1,1,28,28 --task classify --size 28x28 --colour gray --mean 0 --std 255 \
       --labels "$work/digits.txt" >"$work/convert.log" 2>&1; then
    start_node h3 s1-classify --task classify --model "$work/mnist.hdm" && checks+=(--node classify=s1-classify)
  else
    echo "  1: no MNIST model ($mnist/mnist.onnx): a colour node on h3 in place of classify"
    start_node h3 s1-colour-c --task colour && colour_nodes+="|s1-colour-c"
  fi
  checks+=(--node "colour=$colour_nodes")
  tasks=$(printf '%s\n' "${checks[@]}" | sed -n 's/=.*//p' | sort -u | paste -sd,)
  echo "  1: tasks $tasks on h1-h3: ${!node_pid[*]}"
  # Every node in the coordinator host's view first: with two nodes of a
  # task (no models), each of the three frames goes to one of them.
  ids=$(IFS=,; echo "${!node_pid[*]}")
  ready_nodes() { nodes_json "$work/s1-nodes.json" && $py "$here/frames.py" ready --ids "$ids" "$work/s1-nodes.json" >/dev/null; }
  mh_wait_for 20 ready_nodes || fail "1: not every node ready: $($py "$here/frames.py" ready --ids "$ids" "$work/s1-nodes.json")"
  # shellcheck disable=SC2086
  mh_exec "$coordinator" timeout 120 "$huddle" recognize $recognize_insecure --verbose --wait-ms 10000 --deadline-ms 5000 --tasks "$tasks" \
    --repeat 3 --json-lines "$image" >"$work/s1.jsonl" 2>"$work/s1.jsonl.err"
  report "1 three nodes, three hosts" scene "${checks[@]}" "$work/s1.jsonl"
  stop_nodes
fi

# --- 2 and 3: a node joins a stream, then is killed --------------------------
if want 2; then
  start_node h1 s2-a --task colour
  stream s23 180
  sleep_until $((t0 + 1500))
  start_node h2 s2-b --task colour
  sleep_until $((t0 + 5000))
  kill_node s2-b
  sleep_until $((killed + 3200))
  nodes_json "$work/s3-nodes.json"
  end_stream s23
  report "2 node added mid-stream" join --log "$work/s23.log" --node s2-b --since "${started[s2-b]}" --within 2000 "$work/s23.jsonl"
  report "3 node SIGKILLed mid-stream" loss --log "$work/s23.log" --node s2-b --at "$killed" --frames 180 \
    --nodes-json "$work/s3-nodes.json" --nodes-at "$nodes_at" "$work/s23.jsonl"
  stop_nodes
fi

# --- 4: a host cut off: no FIN, no goodbye ------------------------------------
if want 4; then
  colour_nodes h1:s4-a h3:s4-c
  stream s4 160
  sleep_until $((t0 + 2000))
  cut=$(mh_now_ms)
  mh_cut h3
  unset "node_pid[s4-c]"
  sleep_until $((cut + 3200))
  nodes_json "$work/s4-nodes.json"
  end_stream s4
  report "4 host cut (avahi and node killed, link down)" loss --log "$work/s4.log" --node s4-c --at "$cut" --frames 160 \
    --nodes-json "$work/s4-nodes.json" --nodes-at "$nodes_at" "$work/s4.jsonl"
  stop_nodes
  # h3 comes back; the coordinator host's daemon forgets the dead host's
  # service (mDNS would list it for minutes).
  mh_revive h3 || fail "h3 did not come back"
  mh_restart_avahi "$coordinator" || fail "$coordinator's avahi-daemon did not restart"
fi

# --- 5 and 6: two nodes share a task; one is killed, then restarted -----------
if want 5; then
  colour_nodes h1:s5-a h2:s5-b
  stream s56 200
  sleep_until $((t0 + 3000))
  kill_node s5-b
  kill5=$killed
  sleep_until $((t0 + 5000))
  restart_node s5-b
  end_stream s56
  report "5 two nodes of one task, one killed" spread --nodes s5-a,s5-b --kill "$kill5" \
    --restart "${started[s5-b]}" --frames 200 "$work/s56.jsonl"
  report "6 node restarted with the same id" join --log "$work/s56.log" --node s5-b --since "${started[s5-b]}" --within 3000 \
    "$work/s56.jsonl"
  stop_nodes
fi

# --- 7: chaos -------------------------------------------------------------------
if want 7; then
  chaos=(c7-1 c7-2 c7-3)
  colour_nodes h1:c7-1 h2:c7-2 h3:c7-3
  stream s7 1000 20
  kills=0
  while mh_alive "$rec_pid"; do
    sleep_until $(($(mh_now_ms) + $(ms_between 500 2000)))
    mh_alive "$rec_pid" || break
    victim=${chaos[RANDOM % 3]}
    kill_node "$victim"
    kills=$((kills + 1))
    sleep_until $(($(mh_now_ms) + $(ms_between 500 2000)))
    restart_node "$victim"
  done
  end_stream s7
  echo "  7: $kills nodes killed and restarted while the frames flowed"
  report "7 chaos: 1000 frames, $kills kills" chaos --frames 1000 "$work/s7.jsonl"
  stop_nodes
fi

# --- 8: the coordinator host's avahi-daemon dies and comes back ---------------
if want 8; then
  colour_nodes h1:s8-a h2:s8-b
  stream s8 160
  sleep_until $((t0 + 1500))
  gone=$(mh_now_ms)
  mh_kill_avahi "$coordinator"
  sleep_until $((t0 + 3500))
  back=$(mh_now_ms)
  mh_start_avahi "$coordinator" || fail "$coordinator's avahi-daemon did not restart"
  start_node h3 s8-c --task colour
  end_stream s8
  report "8 coordinator's avahi-daemon killed, restarted" steady --nodes s8-a,s8-b --start "$gone" --end "$back" \
    --frames 160 "$work/s8.jsonl"
  report "8 a node found after the daemon's return" join --log "$work/s8.log" --node s8-c --since "${started[s8-c]}" \
    --within 2000 "$work/s8.jsonl"
  stop_nodes
fi

# --- 9: a node's host loses its avahi-daemon, the coordinator's restarts -------
# The node keeps serving and answering status; the coordinator's fresh browse
# does not list it (nobody on h1 answers mDNS) and reports it withdrawn. It
# must stay in rotation: liveness is the heartbeats' business (DESIGN.md
# section 6).
if want 9; then
  colour_nodes h1:s9-a h2:s9-b
  stream s9 200
  sleep_until $((t0 + 1500))
  mh_kill_avahi h1
  mh_restart_avahi "$coordinator" || fail "$coordinator's avahi-daemon did not restart"
  back=$(mh_now_ms)
  end_stream s9
  report "9 a healthy node whose host lost its avahi-daemon stays in rotation" steady --nodes s9-a,s9-b \
    --start $((back + 2000)) --end $((t0 + 9500)) --frames 200 "$work/s9.jsonl"
  stop_nodes
  mh_start_avahi h1
fi

mh_teardown
echo "scenarios-test: $fails failures, $(($(mh_now_ms) - start)) ms (load average $(cut -d' ' -f1-3 /proc/loadavg))"
[ "$fails" -eq 0 ]
