#!/usr/bin/env bash
# Announcing and browsing through a real avahi-daemon (discovery/, `huddle
# node`), inside a network namespace of this test's own with only `lo` up, a
# private /run, its own D-Bus system bus and avahi-daemon (never the root
# namespace's: nothing here reaches the real network card).
#
# usage: discovery-test.sh HUDDLE BROWSE_PROBE WORK
# Needs root; exits 77 (skipped) otherwise. Every process is started here and
# stopped by its pid; every wait is bounded. A namespace left by an aborted
# earlier run of the same build directory is deleted first.
set -u
huddle=$1 probe=$2 work=$3

if [ "${DISCOVERY_TEST_INSIDE:-}" != 1 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: needs root (a network namespace with a private avahi-daemon)"
    exit 77
  fi
  for tool in ip unshare dbus-daemon avahi-daemon avahi-browse; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
  done
  # One namespace per build directory: two checkouts may run this at once.
  ns=huddle-disc-$(printf %s "$work" | md5sum | cut -c1-8)
  if ip netns list | grep -qw "$ns"; then
    # Processes of an aborted run of this test (its daemons) still inside.
    for p in $(ip netns pids "$ns"); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns"
  fi
  rm -rf "$work"
  mkdir -p "$work/run/dbus" "$work/run/avahi-daemon"
  ip netns add "$ns" || { echo "FAIL: ip netns add $ns"; exit 1; }
  inner=
  cleanup() {
    [ -n "$inner" ] && kill -TERM "$inner" 2>/dev/null && wait "$inner" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  }
  trap cleanup EXIT
  trap 'exit 1' INT TERM
  ip -n "$ns" link set lo up
  DISCOVERY_TEST_INSIDE=1 DISCOVERY_TEST_NS=$ns ip netns exec "$ns" \
    unshare --mount --propagation private "$0" "$huddle" "$probe" "$work" &
  inner=$!
  wait "$inner"
  status=$?
  inner=
  exit $status
fi

# ---- inside the namespace, with a mount namespace of our own ----
mount --bind "$work/run" /run || { echo "FAIL: mount --bind $work/run /run"; exit 1; }
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=/run/dbus/system_bus_socket
fails=0
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; }
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
now_ms() { date +%s%3N; }
# Alive and not a zombie (orphans are reaped slowly here).
alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }

# wait_for FILE REGEX MS: true once a line of FILE matches (grep -E), within MS ms.
wait_for() {
  local deadline=$(($(now_ms) + $3))
  until grep -qE -- "$2" "$1" 2>/dev/null; do
    [ "$(now_ms)" -ge "$deadline" ] && return 1
    sleep 0.05
  done
}

# wait_gone PID MS: true once PID has exited (and is reaped), within MS ms.
wait_gone() {
  local deadline=$(($(now_ms) + $2))
  while alive "$1"; do
    [ "$(now_ms)" -ge "$deadline" ] && return 1
    sleep 0.05
  done
  wait "$1" 2>/dev/null
  return 0
}

conf=$work/avahi-daemon.conf
cat >"$conf" <<EOF
[server]
host-name=$DISCOVERY_TEST_NS
use-ipv4=yes
use-ipv6=no
allow-interfaces=lo
enable-dbus=yes
[wide-area]
enable-wide-area=no
[publish]
publish-aaaa-on-ipv4=no
publish-hinfo=no
publish-workstation=no
EOF

dbus-daemon --system --nofork --nopidfile --nosyslog >"$work/dbus.log" 2>&1 &
pids+=($!)
deadline=$(($(now_ms) + 5000))
until [ -S /run/dbus/system_bus_socket ] || [ "$(now_ms)" -ge "$deadline" ]; do sleep 0.05; done
[ -S /run/dbus/system_bus_socket ] || { fail "dbus-daemon made no socket: $(cat "$work/dbus.log")"; exit 1; }

# start_avahi: starts the daemon, sets $avahi_pid, waits for it to serve.
start_avahi() {
  avahi-daemon -f "$conf" --no-chroot --no-drop-root --no-rlimits >>"$work/avahi.log" 2>&1 &
  avahi_pid=$!
  pids+=("$avahi_pid")
  local starts
  starts=$(grep -c 'Server startup complete' "$work/avahi.log")
  local deadline=$(($(now_ms) + 10000))
  until [ "$(grep -c 'Server startup complete' "$work/avahi.log")" -gt "$starts" ] ||
    [ "$(now_ms)" -ge "$deadline" ]; do sleep 0.05; done
}
: >"$work/avahi.log"
start_avahi
grep -q 'Server startup complete' "$work/avahi.log" || { fail "avahi-daemon: $(cat "$work/avahi.log")"; exit 1; }
ok "avahi-daemon up in namespace $DISCOVERY_TEST_NS"

browse=$work/browse.out
"$probe" browse >"$browse" 2>"$work/browse.err" &
browser_pid=$!
pids+=("$browser_pid")

# Every TXT record multicast on lo, as it is on the wire: "BYTES [strings]"
# (avahi-browse cannot tell: it prints a resolved record's strings reversed).
/usr/bin/python3 -u - >"$work/wire.txt" 2>"$work/wire.err" <<'PY' &
import json, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("", 5353))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton("224.0.0.251") + socket.inet_aton("127.0.0.1"))
def skip_name(d, o):
    while d[o] and d[o] & 0xC0 != 0xC0:
        o += 1 + d[o]
    return o + (2 if d[o] else 1)
while True:
    d = s.recv(9000)
    try:
        counts = struct.unpack(">HHHH", d[4:12])
        o = 12
        for _ in range(counts[0]):
            o = skip_name(d, o) + 4
        for _ in range(sum(counts[1:])):
            o = skip_name(d, o)
            rtype, _, _, size = struct.unpack(">HHIH", d[o:o + 10])
            o += 10
            if rtype == 16:
                r, i, strings = d[o:o + size], 0, []
                while i < len(r):
                    strings.append(r[i + 1:i + 1 + r[i]].decode("utf-8", "replace"))
                    i += 1 + r[i]
                print(size, json.dumps(strings))
            o += size
    except (IndexError, struct.error):
        pass
PY
pids+=($!)

# start_node NAME ARGS...: `huddle node` in the background; sets $node_pid.
start_node() {
  local name=$1
  shift
  "$huddle" node "$@" >"$work/$name.out" 2>"$work/$name.err" &
  node_pid=$!
  pids+=("$node_pid")
}

# stop_node PID NAME ID: SIGTERM; the browser must see ID leave within 3 s and
# the node exit 0. Prints the leave latency.
stop_node() {
  local t0
  t0=$(now_ms)
  kill -TERM "$1"
  if wait_for "$browse" "^leave $3 " 3000; then
    ok "$2: SIGTERM -> leave $3 in $(($(now_ms) - t0)) ms"
  else
    fail "$2: no 'leave $3' within 3 s of SIGTERM"
  fi
  wait_gone "$1" 10000 || fail "$2: still running 10 s after SIGTERM"
  wait "$1" 2>/dev/null
}

# --- a node is joined within 3 s, warming or ready, and ready eventually ---
host=$(hostname)
t0=$(now_ms)
start_node n1 --task colour --node-id n1
n1=$node_pid
if wait_for "$browse" "^join n1 " 3000; then
  ok "join n1 in $(($(now_ms) - t0)) ms: $(grep '^join n1 ' "$browse")"
else
  fail "n1 not joined within 3 s: $(cat "$work/n1.err")"
fi
wait_for "$browse" "^(join|update) n1 colour ready 127\.0\.0\.1:[0-9]+ huddle colour on $host\$" 10000 ||
  fail "n1 never ready: $(cat "$browse")"
first=$(grep -m1 ' n1 ' "$browse")
case $first in
  "join n1 colour warming "*)
    grep -q '^update n1 colour ready ' "$browse" && ok "n1: joined warming, then updated to ready" ||
      fail "n1 joined warming, no update to ready" ;;
  "join n1 colour ready "*) ok "n1: warmed up before the announcement went out: joined ready" ;;
  *) fail "n1's first event: $first" ;;
esac
port=$(head -1 "$work/n1.out" | sed 's/.*://')
grep -q "^join n1 colour [a-z]* 127.0.0.1:$port " "$browse" && ok "n1 announced on its bound port $port" ||
  fail "n1 bound port $port, browser saw: $(grep ' n1 ' "$browse")"
grep -q "announced as 'huddle colour on $host'" "$work/n1.err" || fail "n1 did not log its announcement: $(cat "$work/n1.err")"

# --- the TXT record on the wire: txtvers=1 first, under 200 bytes ---
wire=$(grep -m1 '"id=n1"' "$work/wire.txt")
if [[ ${wire#* } == '["txtvers=1", "id=n1", "task=colour", "model=", "proto=1", '* ]]; then
  ok "TXT on the wire: $wire"
else
  fail "TXT on the wire does not start txtvers=1, id, task, model, proto: '$wire' $(cat "$work/wire.err")"
fi
bytes=${wire%% *}
[ -n "$bytes" ] && [ "$bytes" -lt 200 ] && ok "TXT record is $bytes bytes" || fail "TXT record is '$bytes' bytes"
# The daemon resolves the same record (avahi-browse prints it reversed).
record=$(timeout 10 avahi-browse -rpt _huddle._tcp 2>/dev/null | grep '^=' | grep '"id=n1"' | head -1)
for key in txtvers=1 id=n1 task=colour model= proto=1 state=ready; do
  grep -q "\"$key\"" <<<"${record##*;}" || fail "avahi-browse: TXT lacks \"$key\": $record"
done

# --- two services with one instance name: the second is renamed, both seen ---
start_node n2 --task colour --node-id n2 --name dup
n2=$node_pid
wait_for "$work/n2.err" "announced as 'dup'" 5000 || fail "n2 not announced as 'dup': $(cat "$work/n2.err")"
start_node n3 --task colour --node-id n3 --name dup
n3=$node_pid
if wait_for "$browse" "^join n2 .* dup\$" 5000 && wait_for "$browse" "^join n3 .* dup #[0-9]+\$" 5000; then
  ok "same name twice: $(grep -E '^join n[23] ' "$browse" | tr '\n' ';')"
else
  fail "same name twice: $(grep -E ' n[23] ' "$browse") / n3: $(cat "$work/n3.err")"
fi
grep -q "'dup' is taken: announcing as 'dup #" "$work/n3.err" && ok "n3 logged its rename" ||
  fail "n3 did not log a rename: $(cat "$work/n3.err")"

# --- a node that does not announce is not seen ---
start_node n4 --task colour --node-id n4 --no-announce
n4=$node_pid

# --- a state change in the TXT record arrives as an update ---
"$probe" publish "state probe" p1 colour 4242 1500 >"$work/p1.out" 2>"$work/p1.err" &
p1=$!
pids+=("$p1")
wait_for "$browse" "^join p1 colour warming 127\.0\.0\.1:4242 state probe\$" 5000 ||
  fail "p1 not joined warming: $(grep ' p1 ' "$browse")"
if wait_for "$work/p1.out" '^state ready' 10000; then
  t0=$(now_ms)
  if wait_for "$browse" "^update p1 colour ready 127\.0\.0\.1:4242 state probe\$" 5000; then
    ok "TXT state change -> update p1 in about $(($(now_ms) - t0)) ms"
  else
    fail "no update for p1's state: $(grep ' p1 ' "$browse")"
  fi
else
  fail "p1 never set its state: $(cat "$work/p1.out" "$work/p1.err")"
fi
# A record with a key twice (not one a node makes): the first counts.
avahi-publish -s "twice" _huddle._tcp 4243 txtvers=1 id=k1 ID=k2 task=other >/dev/null 2>&1 &
twice=$!
pids+=("$twice")
wait_for "$browse" "^join k1 other  127\.0\.0\.1:4243 twice\$" 5000 && ok "a repeated TXT key: the first counts" ||
  fail "avahi-publish'ed service with id=k1 ID=k2: $(grep 'twice' "$browse")"
grep -q ' n4 ' "$browse" && fail "n4 ran with --no-announce, yet was seen"
alive "$n4" && ok "n4 (--no-announce) serves unannounced" || fail "n4 died: $(cat "$work/n4.err")"
grep -q avahi "$work/n4.err" && fail "n4 (--no-announce) mentions avahi: $(cat "$work/n4.err")"

# --- SIGTERM: the node withdraws, the browser sees it leave ---
stop_node "$n1" n1 n1
grep -q 'huddle node: stopped' "$work/n1.err" || fail "n1 did not stop cleanly: $(cat "$work/n1.err")"

# --- avahi-daemon restarts: the nodes announce again, the browser lives on ---
lines_before=$(wc -l <"$browse")
kill -TERM "$avahi_pid"
wait_gone "$avahi_pid" 10000 || fail "avahi-daemon still running 10 s after SIGTERM"
wait_for "$work/n2.err" "no avahi-daemon reachable" 3000 && ok "n2 noticed the daemon gone" ||
  fail "n2 did not log the daemon's loss: $(cat "$work/n2.err")"
# A node that stops while the daemon is down cannot withdraw: the browser
# drops it once the daemon is back and no longer lists it.
kill -TERM "$n3"
wait_gone "$n3" 10000 || fail "n3 still running 10 s after SIGTERM"
sleep 1
t0=$(now_ms)
start_avahi
recovered=
deadline=$(($(now_ms) + 15000))
until [ "$(now_ms)" -ge "$deadline" ]; do
  if timeout 5 avahi-browse -rpt _huddle._tcp 2>/dev/null | grep '^=' | grep -q '"id=n2"'; then
    recovered=$(($(now_ms) - t0))
    break
  fi
  sleep 0.2
done
[ -n "$recovered" ] && ok "daemon restarted: n2 announced again after $recovered ms" ||
  fail "n2 not announced again within 15 s of the restart: $(cat "$work/n2.err")"
alive "$browser_pid" && ok "the browser survived the restart" || fail "the browser died: $(cat "$work/browse.err")"
# The browser's view of n2 after the restart: present (a leave, if any, is
# followed by a join) and live (SIGTERM makes it leave).
deadline=$(($(now_ms) + 5000))
last_n2() { tail -n +"$((lines_before + 1))" "$browse" | grep ' n2 ' | tail -1; }
until [ -z "$(last_n2)" ] || [[ $(last_n2) != leave* ]] || [ "$(now_ms)" -ge "$deadline" ]; do sleep 0.05; done
if [[ $(last_n2) == leave* ]]; then fail "n2 left and never came back: $(tail -n +"$((lines_before + 1))" "$browse")"
else
  n2_last=$(last_n2)
  ok "after the restart the browser lists n2 (${n2_last:-no event: it stayed listed})"
fi
wait_for "$browse" "^leave n3 " 10000 && ok "n3, stopped while the daemon was down, left $(($(now_ms) - t0)) ms after the restart" ||
  fail "n3 never left: $(tail -n +"$((lines_before + 1))" "$browse")"
[ "$(grep -c "announced as 'dup'" "$work/n2.err")" -ge 2 ] ||
  fail "n2 did not log its second announcement: $(cat "$work/n2.err")"
[ "$(grep -c "no avahi-daemon reachable" "$work/n2.err")" -eq 1 ] ||
  fail "n2 did not say once that the daemon was gone: $(cat "$work/n2.err")"
stop_node "$n2" n2 n2
kill -TERM "$p1" "$twice"
wait_for "$browse" "^leave p1 " 3000 && ok "p1 withdrawn" || fail "no leave for p1"
wait_for "$browse" "^leave k1 " 3000 || fail "no leave for k1 (avahi-publish)"
kill -TERM "$n4" "$browser_pid"
wait_gone "$n4" 10000 || fail "n4 did not stop"
wait_gone "$browser_pid" 5000 || fail "the browser did not stop on SIGTERM"

if [ "$fails" -gt 0 ]; then
  echo "--- browser events"; cat "$browse"
  echo "--- browser log"; cat "$work/browse.err"
  echo "--- avahi-daemon log"; tail -30 "$work/avahi.log"
  echo "$fails failed"
  exit 1
fi
echo "all passed"
