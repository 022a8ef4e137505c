# Multi-host test harness (bash library: `source` it). Each "host" is a
# network namespace with a veth into a bridge that lives in a "switch"
# namespace of its own, and runs its own D-Bus system bus and avahi-daemon on
# a private /run (RECIPES.md, "Avahi and multi-host tests in network
# namespaces"). Nothing here touches the root network namespace: no avahi
# there, no traffic there.
#
# Settings (set before sourcing):
#   MH_DIR     state: one directory per host (conf, run/, logs, pid files)
#   MH_PREFIX  namespace names: $MH_PREFIX-sw (the switch), $MH_PREFIX-h1..hN;
#              by default hmh- and a hash of MH_DIR, so that two checkouts
#              (two build directories) can run their tests at once
#   MH_SUBNET  first three octets; host i is $MH_SUBNET.(10+i)/24
#
# Hosts are named h1..hN. Processes are killed only by pid: the pids this
# library started (pid files) or those `ip netns pids` lists in a namespace
# it created.

: "${MH_DIR:=${TMPDIR:-/tmp}/huddle-mh}"
: "${MH_PREFIX:=hmh-$(printf %s "$MH_DIR" | md5sum | cut -c1-8)}"
: "${MH_SUBNET:=10.77.0}"
MH_HOSTS=()
MH_PID=

mh_log() { echo "[mh $(date +%T.%3N)] $*" >&2; }

mh_ns() { echo "$MH_PREFIX-$1"; }        # mh_ns h2 -> the namespace's name
mh_addr() { echo "$MH_SUBNET.$((10 + ${1#h}))"; }  # mh_addr h2 -> its IPv4 address
mh_now_ms() { local us=${EPOCHREALTIME/[.,]/}; echo "${us%???}"; }  # Unix ms, no fork of date

# mh_in H: sets MH_IN to the command prefix that runs a command in host H's
# namespace, with the host's /run mounted over /run, DBUS_SYSTEM_BUS_ADDRESS
# naming the host's bus (so libavahi-client talks to that host's
# avahi-daemon), the host name H and a state directory of its own
# (XDG_STATE_HOME: a device's keys), as on a real LAN where programs that
# name or identify themselves after their device differ.
# Every step execs: the command keeps the pid of the first.
mh_in() {
  MH_IN=(ip netns exec "$(mh_ns "$1")" unshare --mount --uts --propagation private
    env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$MH_DIR/$1/run/dbus/system_bus_socket" MH_HOST="$1"
    XDG_STATE_HOME="$MH_DIR/$1/state"
    /bin/sh -c 'mount --bind "$0" /run && hostname "$MH_HOST" && exec "$@"' "$MH_DIR/$1/run")
}

# mh_exec H CMD...: runs CMD in host H (see mh_in).
mh_exec() {
  local MH_IN
  mh_in "$1"
  shift
  "${MH_IN[@]}" "$@"
}

# mh_spawn H LOG CMD...: the same in the background, stdout to LOG, stderr to
# LOG.err. Sets MH_PID (the command's own pid: no shell in between) and
# appends it to the host's pid file.
mh_spawn() {
  local h=$1 log=$2 MH_IN
  shift 2
  mh_in "$h"
  "${MH_IN[@]}" "$@" >"$log" 2>"$log.err" &
  MH_PID=$!
  echo "$MH_PID" >>"$MH_DIR/$h/pids"
}

# mh_alive PID: true while PID runs (a zombie counts as gone: orphans are
# reaped slowly here, so `kill -0` would say it lives).
mh_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# mh_wait_exit PID [SECONDS]: waits (default 10 s) until PID has exited;
# reaps it when it is our child. False on timeout.
mh_wait_exit() {
  local pid=$1 deadline=$(($(mh_now_ms) + ${2:-10} * 1000))
  while mh_alive "$pid"; do
    [ "$(mh_now_ms)" -lt "$deadline" ] || return 1
    sleep 0.02
  done
  wait "$pid" 2>/dev/null
  return 0
}

# mh_ours PID: true if PID runs in one of this prefix's namespaces (a pid
# from a pid file may have exited and been reused by anything).
mh_ours() {
  local net
  net=$(readlink "/proc/$1/ns/net" 2>/dev/null) || return 1
  compgen -G "/run/netns/$MH_PREFIX-*" >/dev/null &&
    stat -L -c 'net:[%i]' /run/netns/"$MH_PREFIX"-* | grep -qxF "$net"
}

# mh_kill PID...: SIGKILL those of ours and wait for each to exit; sets
# MH_KILL_MS to the time the signals were sent. (Our own background jobs are
# disowned first: bash would print "Killed" for each.)
mh_kill() {
  local p mine=()
  for p in "$@"; do mh_ours "$p" && mine+=("$p"); done
  MH_KILL_MS=$(mh_now_ms)
  for p in "${mine[@]}"; do
    disown "$p" 2>/dev/null
    kill -KILL "$p" 2>/dev/null
  done
  for p in "${mine[@]}"; do mh_wait_exit "$p" 5 || mh_log "pid $p survived SIGKILL"; done
}

# mh_test_start "$@" (a test script, first thing after sourcing this): the
# figures a test asserts are latencies of "devices" sharing this machine's
# cores: run them ahead of unrelated work (builds), as dedicated devices
# would. With autogroup scheduling each session shares the CPU as one group,
# whatever the nice values inside it: the script re-executes itself in a
# session of its own (meson starts tests so; by hand, setsid) and raises that
# group. Then sets the traps that tear the hosts down however it ends.
mh_test_start() {
  if [ "$(ps -o sid= -p $$ | tr -d ' ')" != $$ ]; then exec setsid --wait "$0" "$@"; fi
  renice -n -10 -p $$ >/dev/null 2>&1 || echo "  (could not raise the priority: timings may suffer from other work)"
  [ ! -e /proc/$$/autogroup ] || echo -10 >/proc/$$/autogroup
  echo "  scheduling: nice $(ps -o ni= -p $$ | tr -d ' ')$( [ -e /proc/$$/autogroup ] && echo ", $(cat /proc/$$/autogroup)")"
  trap mh_teardown EXIT
  trap "exit 143" TERM INT
}

# mh_wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds.
mh_wait_for() {
  local deadline=$(($(mh_now_ms) + $1 * 1000))
  shift
  until "$@"; do
    [ "$(mh_now_ms)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

mh_write_avahi_conf() {
  cat >"$MH_DIR/$1/avahi-daemon.conf" <<EOF
[server]
host-name=$1
use-ipv4=yes
use-ipv6=no
allow-interfaces=eth0
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000

[wide-area]
enable-wide-area=no

[publish]
publish-aaaa-on-ipv4=no
publish-hinfo=no
publish-workstation=no
EOF
}

# mh_start_dbus H: the host's system bus; waits for its socket.
mh_start_dbus() {
  local h=$1 sock=$MH_DIR/$1/run/dbus/system_bus_socket
  rm -f "$sock"
  mh_spawn "$h" "$MH_DIR/$h/dbus.log" dbus-daemon --system --nofork --nopidfile --nosyslog
  echo "$MH_PID" >"$MH_DIR/$h/dbus.pid"
  mh_wait_for 10 test -S "$sock" || { mh_log "$h: dbus-daemon did not start: $(cat "$MH_DIR/$h/dbus.log.err")"; return 1; }
}

# mh_start_avahi H [--no-wait]: the host's avahi-daemon; waits (unless
# --no-wait) until it has claimed its host name, after which services
# publish at once.
mh_start_avahi() {
  local h=$1 log=$MH_DIR/$1/avahi.log
  rm -f "$MH_DIR/$h/run/avahi-daemon/pid"
  mh_spawn "$h" "$log" avahi-daemon -f "$MH_DIR/$h/avahi-daemon.conf" --no-chroot --no-drop-root --no-rlimits
  echo "$MH_PID" >"$MH_DIR/$h/avahi.pid"
  [ "${2:-}" = --no-wait ] || mh_wait_avahi "$h"
}

mh_avahi_ready() {
  local pid
  pid=$(cat "$MH_DIR/$1/avahi.pid" 2>/dev/null) && mh_alive "$pid" \
    && grep -q 'Server startup complete' "$MH_DIR/$1/avahi.log.err"
}
mh_wait_avahi() {
  mh_wait_for 15 mh_avahi_ready "$1" || { mh_log "$1: avahi-daemon not ready: $(tail -3 "$MH_DIR/$1/avahi.log.err")"; return 1; }
}

# mh_kill_avahi H: SIGKILL the host's avahi-daemon (no goodbye packets).
mh_kill_avahi() {
  mh_kill "$(cat "$MH_DIR/$1/avahi.pid")"
}

# mh_restart_avahi H: a fresh daemon (an empty cache: it forgets services
# whose hosts died without a goodbye).
mh_restart_avahi() {
  mh_kill_avahi "$1"
  mh_start_avahi "$1"
}

# mh_cut H: the host dies: its link goes down on both ends first (no FIN, RST
# or mDNS goodbye gets out), then everything in it is SIGKILLed.
mh_cut() {
  local h=$1
  ip -n "$(mh_ns "$h")" link set eth0 down
  ip -n "$MH_PREFIX-sw" link set "$h" down
  # shellcheck disable=SC2046
  mh_kill $(ip netns pids "$(mh_ns "$h")")
}

# mh_revive H: a cut host comes back: link up, bus and avahi-daemon again.
mh_revive() {
  local h=$1
  ip -n "$MH_PREFIX-sw" link set "$h" up
  ip -n "$(mh_ns "$h")" link set eth0 up
  mh_start_dbus "$h" && mh_start_avahi "$h"
}

# mh_teardown: kills everything in this prefix's namespaces, deletes them.
# Idempotent; safe from `trap mh_teardown EXIT`. Keeps $MH_DIR (the logs).
mh_teardown() {
  local ns pids
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$MH_PREFIX-(sw|h[0-9]+)\$"); do
    pids=$(ip netns pids "$ns")
    # shellcheck disable=SC2086
    [ -z "$pids" ] || mh_kill $pids
    ip netns del "$ns"
  done
}

# mh_setup N: removes this prefix's leftovers, then builds the switch and N
# hosts, each with its bus and avahi-daemon, and waits until all are ready.
mh_setup() {
  local n=$1 i h ns
  mh_teardown
  rm -rf "$MH_DIR"
  mkdir -p "$MH_DIR"
  ip netns add "$MH_PREFIX-sw" || return 1
  ip -n "$MH_PREFIX-sw" link add br0 type bridge mcast_snooping 0 || return 1
  ip -n "$MH_PREFIX-sw" link set br0 up
  MH_HOSTS=()
  for i in $(seq "$n"); do
    h=h$i ns=$(mh_ns "h$i")
    MH_HOSTS+=("$h")
    mkdir -p "$MH_DIR/$h/run/dbus" "$MH_DIR/$h/run/avahi-daemon"
    mh_write_avahi_conf "$h"
    ip netns add "$ns" || return 1
    ip -n "$MH_PREFIX-sw" link add "$h" type veth peer name eth0 netns "$ns" || return 1
    ip -n "$MH_PREFIX-sw" link set "$h" master br0 up
    ip -n "$ns" addr add "$(mh_addr "$h")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    mh_start_dbus "$h" || return 1
    mh_start_avahi "$h" --no-wait
  done
  for h in "${MH_HOSTS[@]}"; do mh_wait_avahi "$h" || return 1; done
}
