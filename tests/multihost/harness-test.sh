#!/usr/bin/env bash
# The multi-host harness (hosts.sh) checks itself: three hosts, a service
# published on h1 is resolved on h3 with h1's address, a clean withdrawal
# reaches h3, a killed avahi-daemon says no goodbye, a cut host is silent,
# and teardown leaves no namespace and no process behind.
#
# usage: harness-test.sh [WORK]   (needs root: network namespaces)
set -u
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: needs root (network namespaces, bind mounts)"
  exit 77
fi
here=$(cd "$(dirname "$0")" && pwd)
MH_DIR=${1:-${TMPDIR:-/tmp}/huddle-mh-self} MH_SUBNET=${MH_SUBNET:-10.77.1}
# shellcheck source=hosts.sh
source "$here/hosts.sh"
trap mh_teardown EXIT
trap "exit 143" TERM INT

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
start=$(mh_now_ms)

# browse H TYPE: the resolved lines ('=') for TYPE on host H, parseable.
browse() { mh_exec "$1" timeout 10 avahi-browse -rpt "$2" 2>/dev/null | grep '^='; }
# wait_resolved H TYPE ADDRESS SECONDS: until H resolves TYPE at ADDRESS.
resolved_at() { browse "$1" "$2" | grep -q ";$3;"; }
wait_resolved() { mh_wait_for "$4" resolved_at "$1" "$2" "$3"; }
gone() { ! browse "$1" "$2" | grep -q .; }

t=$(mh_now_ms)
if mh_setup 3; then ok "3 hosts, each with its bus and avahi-daemon, in $(($(mh_now_ms) - t)) ms"; else
  fail "mh_setup 3"; exit 1; fi

# Every host has its own address and its daemons outside the root namespace.
root_ns=$(readlink /proc/self/ns/net)
for h in h1 h2 h3; do
  mh_exec "$h" ip -4 -o addr show eth0 | grep -q " $(mh_addr "$h")/24 " || fail "$h: no $(mh_addr "$h") on eth0"
  for d in dbus avahi; do
    ns=$(readlink "/proc/$(cat "$MH_DIR/$h/$d.pid")/ns/net")
    if [ -z "$ns" ] || [ "$ns" = "$root_ns" ]; then fail "$h: $d-daemon is not in the host's namespace ($ns)"; fi
  done
done
ok "each host has its address; its daemons run in its namespace"

# Published on h1, resolved on h3 with h1's address.
t=$(mh_now_ms)
mh_spawn h1 "$MH_DIR/publish.log" avahi-publish -s "mh test" _mhx._tcp 4242 k=v
pub=$MH_PID
if wait_resolved h3 _mhx._tcp "$(mh_addr h1)" 10; then
  ok "h3 resolves h1's service at $(mh_addr h1) $(($(mh_now_ms) - t)) ms after publishing: $(browse h3 _mhx._tcp)"
else
  fail "h3 never resolved h1's service: $(mh_exec h3 avahi-browse -rpt _mhx._tcp 2>&1)"
fi

# A clean withdrawal (SIGTERM: avahi-publish says goodbye) reaches h3.
kill -TERM "$pub"
mh_wait_exit "$pub" 5 || fail "avahi-publish still runs 5 s after SIGTERM"
t=$(mh_now_ms)
if mh_wait_for 5 gone h3 _mhx._tcp; then ok "the withdrawal reaches h3 in $(($(mh_now_ms) - t)) ms"; else
  fail "h3 still lists the withdrawn service: $(browse h3 _mhx._tcp)"; fi

# SIGKILL h1's avahi-daemon: the publisher loses its daemon, no goodbye
# leaves h1, h3 keeps the service listed.
mh_spawn h1 "$MH_DIR/publish2.log" avahi-publish -s "mh test 2" _mhx._tcp 4243
pub=$MH_PID
wait_resolved h3 _mhx._tcp "$(mh_addr h1)" 10 || fail "h3 never resolved the second service"
mh_kill_avahi h1
if mh_wait_exit "$pub" 5; then ok "avahi-publish exits when its daemon is killed"; else
  fail "avahi-publish still runs 5 s after its daemon was killed"; fi
sleep 1.5
if browse h3 _mhx._tcp | grep -q ';4243;'; then ok "h3 still lists it 1.5 s later (no goodbye)"; else
  fail "h3 dropped the service although h1's daemon said no goodbye"; fi

# The daemon comes back; a cut host is silent and empty.
t=$(mh_now_ms)
if mh_start_avahi h1; then ok "h1's avahi-daemon restarted in $(($(mh_now_ms) - t)) ms"; else fail "mh_start_avahi h1"; fi
mh_spawn h2 "$MH_DIR/publish3.log" avahi-publish -s "mh test 3" _mhx._tcp 4244
wait_resolved h1 _mhx._tcp "$(mh_addr h2)" 10 || fail "the restarted daemon on h1 never resolved h2's service"
mh_cut h2
left=$(ip netns pids "$(mh_ns h2)")
[ -z "$left" ] || fail "processes left in the cut h2: $left"
if mh_exec h2 ip -o link show eth0 | grep -q 'state DOWN'; then ok "h2 cut: link down, no process left"; else
  fail "h2's link is not down: $(mh_exec h2 ip -o link show eth0)"; fi
t=$(mh_now_ms)
if mh_revive h2 && mh_spawn h2 "$MH_DIR/publish4.log" avahi-publish -s "mh test 4" _mhx._tcp 4245 \
   && mh_wait_for 10 eval 'browse h3 _mhx._tcp | grep -q ";4245;"'; then
  ok "h2 revived and heard again in $(($(mh_now_ms) - t)) ms"
else
  fail "h2 did not come back"
fi

# Teardown: no namespace of ours, none of the pids we started.
mh_teardown
mh_teardown  # idempotent
left=$(ip netns list | grep -E "^$MH_PREFIX-" || true)
[ -z "$left" ] || fail "namespaces left after teardown: $left"
alive=()
for p in $(cat "$MH_DIR"/h*/pids); do mh_alive "$p" && alive+=("$p"); done
[ ${#alive[@]} -eq 0 ] || fail "processes left after teardown: ${alive[*]}"
[ -z "$left" ] && [ ${#alive[@]} -eq 0 ] && ok "teardown leaves no namespace and none of $(cat "$MH_DIR"/h*/pids | wc -l) pids"

echo "harness-test: $fails failures, $(($(mh_now_ms) - start)) ms"
[ "$fails" -eq 0 ]
