#!/usr/bin/env bash
# Live-update fan-out: N websocket subscribers on loopback, one publish through the REST API, time
# until the last subscriber has the change (median of ROUNDS publishes), for N = 1k, 2k, 5k, 10k;
# node memory per idle subscriber; and GET latency while 10,000 subscribers receive a burst.
# The node runs on CPU 0; the load client (bench/fanout_client.c), the publisher and wrk on CPU 1.
#
#   bench/fanout.sh [BUILD_DIR]        (default build/; SIZES="1000 2000 5000 10000" ROUNDS=5)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SIZES=${SIZES:-1000 2000 5000 10000}
ROUNDS=${ROUNDS:-5}
PORT=18097
work=$(mktemp -d /tmp/olievlek-bench-fanout.XXXXXX)
node_pid=""; client_pid=""
cleanup() {
  [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null || true
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cc -O2 -std=c11 -Wall -Wextra -Werror -o "$work/fanout_client" bench/fanout_client.c

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

start_node() {
  rm -rf "$work/data"
  taskset -c 0 "$BUILD/olievlekd" --demo --data-dir "$work/data" --listen 127.0.0.1:$PORT \
    --log-level warn --live-max-per-address 20000 --live-handshakes-per-s 50000 \
    2>"$work/node.log" &
  node_pid=$!
  for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.05; done
}

stop_node() {
  kill "$client_pid" "$node_pid" 2>/dev/null || true
  wait "$client_pid" "$node_pid" 2>/dev/null || true
  client_pid=""; node_pid=""
}

# Publishes ROUNDS cases, one keep-alive connection, printing each send time (CLOCK_MONOTONIC).
publish() { # rounds gap_s
  taskset -c 1 python3 - "$PORT" "$1" "$2" <<'PY'
import http.client, json, sys, time
port, rounds, gap = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("POST", "/api/v1/session", json.dumps({"username": "moderator", "password": "olievlek-demo"}),
          {"Content-Type": "application/json"})
token = json.loads(c.getresponse().read())["token"]
case = {"title": "Meetcase", "schools": ["01KDVDNA081M10000000000008"], "phase": "adoptie",
        "summary": "Een record uit de fan-outbenchmark, ongeveer zo groot als een echte case. " * 12}
for _ in range(rounds):
    time.sleep(gap)
    t = time.monotonic()
    c.request("POST", "/api/v1/cases", json.dumps(case),
              {"Content-Type": "application/json", "Authorization": "Bearer " + token})
    c.getresponse().read()
    print(f"{t:.6f}", flush=True)
PY
}

printf 'publish -> last subscriber has it (median of %s), node memory per idle subscriber\n' "$ROUNDS"
for n in $SIZES; do
  start_node
  rss0=$(rss_kb "$node_pid")
  rm -f "$work/ready"
  taskset -c 1 "$work/fanout_client" $PORT "$n" "$ROUNDS" "$work/ready" >"$work/client.out" &
  client_pid=$!
  for _ in $(seq 1 1200); do [ -f "$work/ready" ] && break; sleep 0.1; done
  [ -f "$work/ready" ] || { echo "subscribers did not connect"; exit 1; }
  sleep 1
  rss1=$(rss_kb "$node_pid")
  publish "$ROUNDS" 1.0 >"$work/sent.out"
  wait "$client_pid"; client_pid=""
  python3 - "$n" "$rss0" "$rss1" "$work/sent.out" "$work/client.out" <<'PY'
import statistics, sys
n, rss0, rss1 = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sent = [float(l) for l in open(sys.argv[4])]
lines = [l.split() for l in open(sys.argv[5])]
last = [float(l[-1]) for l in lines]
complete = all(int(l[1]) == n for l in lines)
ms = sorted((b - a) * 1e3 for a, b in zip(sent, last))
med = statistics.median(ms)
per = (rss1 - rss0) * 1024 / n
verdict = "" if n != 10000 else f"  (targets: <= 60 ms: {'met' if med <= 60 else 'not met'}; <= 3 KB: {'met' if per <= 3072 else 'not met'})"
print(f"N={n:6d}: {med:7.1f} ms (min {ms[0]:.1f}, max {ms[-1]:.1f}){'' if complete else ' INCOMPLETE'}"
      f"   {per:6.0f} bytes/subscriber{verdict}")
PY
  stop_node
done

# GET latency while 10,000 subscribers receive a burst of publishes (one every 200 ms).
start_node
rm -f "$work/ready"
taskset -c 1 "$work/fanout_client" $PORT 10000 20 "$work/ready" >"$work/client.out" &
client_pid=$!
for _ in $(seq 1 1200); do [ -f "$work/ready" ] && break; sleep 0.1; done
id=$(curl -sf "http://127.0.0.1:$PORT/api/v1/cases?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
quiet=$(taskset -c 1 wrk -t1 -c10 -d3s --latency "http://127.0.0.1:$PORT/api/v1/cases/$id" | awk '$1 == "99%" {print $2}')
publish 15 0.2 >/dev/null &
pub_pid=$!
busy=$(taskset -c 1 wrk -t1 -c10 -d3s --latency "http://127.0.0.1:$PORT/api/v1/cases/$id" | awk '$1 == "99%" {print $2}')
wait "$pub_pid" || true
echo "GET p99 with 10,000 idle subscribers: $quiet; during a burst of publishes to them: $busy"
