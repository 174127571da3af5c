#!/usr/bin/env bash
# A federation lab on one machine: N nodes (default 5), each in its own network namespace with
# its own address on a shared bridge, peered in a ring with chords. The lab lets them converge,
# cuts the network in two halves while one side keeps writing, adds delay and loss (tc netem),
# kills a node with SIGKILL, heals everything and checks that every node ends with the same
# head for every origin. It creates its namespaces and removes them again, also when it fails.
#
#   sudo deploy/lab.sh [BUILD_DIR]        N=5 by default; N=12 for the benchmark
# Exit status: 0 converged, 1 failed, 77 cannot run here (no root or no network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BIN=$(realpath "$BUILD/olievlekd")
SOURCE=$(pwd)
N=${N:-5}
TIMEOUT=${LAB_TIMEOUT:-60}
PREFIX=olvlab$$
NET=10.77.$(( $$ % 200 + 20 ))
WORK=$(mktemp -d /tmp/olievlek-lab.XXXXXX)
HUB=$PREFIX-hub

if [ "$(id -u)" -ne 0 ] || ! ip netns add "$HUB" 2>/dev/null; then
  echo "lab: needs root and network namespaces (ip netns); skipped" >&2
  exit 77
fi

cleanup() {
  for pidfile in "$WORK"/*.pid; do [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null || true; done
  for i in $(seq 1 "$N"); do ip netns del "$PREFIX-$i" 2>/dev/null || true; done
  ip netns del "$HUB" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

in_ns() { local i=$1; shift; ip netns exec "$PREFIX-$i" "$@"; }
addr() { echo "$NET.$(( 10 + $1 ))"; }

# The wiring: one bridge in the hub namespace, one veth pair per node.
ip -n "$HUB" link add br0 type bridge
ip -n "$HUB" link set br0 up
for i in $(seq 1 "$N"); do
  ip netns add "$PREFIX-$i"
  ip link add "olv$$n$i" netns "$PREFIX-$i" type veth peer name "p$i" netns "$HUB"
  ip -n "$HUB" link set "p$i" master br0 up
  ip -n "$PREFIX-$i" link set lo up
  ip -n "$PREFIX-$i" link set "olv$$n$i" name eth0
  ip -n "$PREFIX-$i" addr add "$(addr "$i")/24" dev eth0
  ip -n "$PREFIX-$i" link set eth0 up
done

start() { # start I PEERS
  local i=$1 peers=$2
  # A plain command in the background (no function), so $! is the node itself: ip netns exec
  # execs it.
  ip netns exec "$PREFIX-$i" "$BIN" --data-dir "$WORK/d$i" --listen "$(addr "$i"):8080" --log-level warn \
    ${peers:+--peers "$peers"} $([ "$i" = 1 ] && echo --demo) 2>>"$WORK/n$i.log" &
  echo $! > "$WORK/n$i.pid"
  disown # the lab kills nodes on purpose: no job notices
}
stop_node() { # SIGTERM and wait, bounded
  local pid; pid=$(cat "$WORK/n$1.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.05; done
  echo "lab: node $1 did not stop on SIGTERM" >&2; return 1
}
api() { in_ns "$1" curl -s --max-time 2 "http://$(addr "$1"):8080$2"; }
ready() { for _ in $(seq 200); do api "$1" /healthz >/dev/null && return 0; sleep 0.05; done; return 1; }

# Every node has records of its own: node 1 the demo data, the others schools imported from a
# DUO file (written before the node starts, like an operator's first import).
for i in $(seq 2 "$N"); do
  "$BIN" import-schools "$SOURCE/tests/fixtures/duo/adressen-vo-oud.csv" --sector vo --data-dir "$WORK/d$i" >/dev/null 2>&1
done
declare -a ID
for i in $(seq 1 "$N"); do
  start "$i" ""; ready "$i"
  ID[$i]=$(api "$i" /api/v1/node | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  stop_node "$i"
done

# Ring: each node dials the next; node i also dials i+2 (chords), and accepts who dials it.
peers_of() {
  local i=$1 out="" j
  for d in 1 2; do j=$(( (i - 1 + d) % N + 1 )); [ "$j" != "$i" ] && out="$out${out:+,}${ID[$j]}@ws://$(addr "$j"):8080"; done
  for d in 1 2; do j=$(( (i - 1 - d + 2 * N) % N + 1 )); [ "$j" != "$i" ] && case "$out" in *"${ID[$j]}"*) ;; *) out="$out,${ID[$j]}";; esac; done
  echo "$out"
}
for i in $(seq 1 "$N"); do start "$i" "$(peers_of "$i")"; done
for i in $(seq 1 "$N"); do ready "$i"; done

heads() { api "$1" /api/v1/node | python3 -c 'import json,sys; print(" ".join(sorted(o["origin"]+":"+str(o["seq"])+":"+o["hash"][:8] for o in json.load(sys.stdin)["origins"])))' 2>/dev/null; }
converged() { # every node shows the same heads, and all N origins
  local first; first=$(heads 1)
  [ "$(echo "$first" | wc -w)" -eq "$N" ] || return 1
  for i in $(seq 2 "$N"); do [ "$(heads "$i")" = "$first" ] || return 1; done
}
wait_converged() { # LABEL
  local t0; t0=$(date +%s.%N)
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until converged; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "lab: $1: not converged within ${TIMEOUT}s" >&2; for i in $(seq 1 "$N"); do echo "node $i: $(heads "$i")" >&2; done; exit 1; }
    sleep 0.1
  done
  printf "lab: %s: %d nodes identical after %.2f s\n" "$1" "$N" "$(echo "$(date +%s.%N) - $t0" | bc)"
}
wait_converged "start"

TOKEN=$(in_ns 1 curl -s -X POST "http://$(addr 1):8080/api/v1/session" -H 'Content-Type: application/json' \
  -d '{"username":"moderator","password":"olievlek-demo"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
write() { # COUNT LABEL: cases on node 1
  for k in $(seq "$1"); do
    in_ns 1 curl -s -o /dev/null -X POST "http://$(addr 1):8080/api/v1/cases" -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/json' \
      -d "{\"title\":\"$2 $k\",\"schools\":[\"01KDVDNA081M10000000000008\"],\"summary\":\"Gedeeld in het lab.\",\"phase\":\"adoptie\"}"
  done
}

# Partition: the first half cannot reach the second (blackhole routes both ways), node 1 writes.
HALF=$(( N / 2 ))
for i in $(seq 1 "$HALF"); do for j in $(seq $((HALF + 1)) "$N"); do
  ip -n "$PREFIX-$i" route add blackhole "$(addr "$j")/32"; ip -n "$PREFIX-$j" route add blackhole "$(addr "$i")/32"
done; done
write 20 "Tijdens de splitsing"
sleep 1
if converged; then echo "lab: the partition did not hold" >&2; exit 1; fi
# Bad links while it heals: loss (and delay, where the kernel has netem) on every node; one node
# of the far side killed. Loss by tc netem, or by iptables' statistic match without netem.
BAD="3% loss"
for i in $(seq 1 "$N"); do
  if tc -n "$PREFIX-$i" qdisc add dev eth0 root netem delay 30ms 10ms loss 3% 2>/dev/null; then
    BAD="3% loss, 30 ms delay"
  elif ip netns exec "$PREFIX-$i" iptables -A INPUT -i eth0 -m statistic --mode random --probability 0.03 -j DROP 2>/dev/null; then
    BAD="3% loss (this kernel has no netem: no delay)"
  else
    BAD="no loss (neither netem nor iptables here)"
  fi
done
VICTIM=$N
kill -9 "$(cat "$WORK/n$VICTIM.pid")"
for i in $(seq 1 "$HALF"); do for j in $(seq $((HALF + 1)) "$N"); do
  ip -n "$PREFIX-$i" route del blackhole "$(addr "$j")/32"; ip -n "$PREFIX-$j" route del blackhole "$(addr "$i")/32"
done; done
start "$VICTIM" "$(peers_of "$VICTIM")"; ready "$VICTIM"
write 5 "Na het herstel"
wait_converged "partition healed with $BAD, node $VICTIM killed and restarted"

# Clean links again: how long a healed partition takes without loss (the benchmark's figure).
for i in $(seq 1 "$N"); do
  tc -n "$PREFIX-$i" qdisc del dev eth0 root 2>/dev/null || ip netns exec "$PREFIX-$i" iptables -F INPUT 2>/dev/null || true
done
for i in $(seq 1 "$HALF"); do for j in $(seq $((HALF + 1)) "$N"); do
  ip -n "$PREFIX-$i" route add blackhole "$(addr "$j")/32"; ip -n "$PREFIX-$j" route add blackhole "$(addr "$i")/32"
done; done
write 20 "Tweede splitsing"
sleep 1
for i in $(seq 1 "$HALF"); do for j in $(seq $((HALF + 1)) "$N"); do
  ip -n "$PREFIX-$i" route del blackhole "$(addr "$j")/32"; ip -n "$PREFIX-$j" route del blackhole "$(addr "$i")/32"
done; done
wait_converged "second partition healed on clean links"
for i in $(seq 1 "$N"); do
  rejected=$(api "$i" /metrics | awk '/^olievlek_peer_rejected_(forged|chain|fork)_total/ {s += $2} END {print s + 0}')
  [ "$rejected" = 0 ] || { echo "lab: node $i rejected $rejected runs" >&2; exit 1; }
done
echo "lab: ok"
