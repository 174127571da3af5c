#!/usr/bin/env bash
# GET /api/v1/cases/{id} on olievlekd versus nginx serving the same bytes as a static file.
# Both servers are pinned to CPU 0, wrk to CPU 1; the two are measured alternately, ROUNDS times,
# in one run, and the ratio of the medians is printed. Keep-alive, 1 wrk thread, 50 connections.
#
#   bench/http_get.sh [BUILD_DIR]        (default build/; ROUNDS=3 DURATION=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-50}
work=$(mktemp -d /tmp/olievlek-bench-get.XXXXXX)
node_pid=""; nginx_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port_node=18080; port_nginx=18081
taskset -c 0 "$BUILD/olievlekd" --demo --data-dir "$work/data" --listen 127.0.0.1:$port_node \
  --log-level warn 2>"$work/node.log" &
node_pid=$!
for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$port_node/healthz" >/dev/null && break; sleep 0.05; done

# The largest published case of the demo data between 1 and 2 KB, as the node serves it.
id=$(curl -sf "http://127.0.0.1:$port_node/api/v1/cases?limit=200" | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
sized = [(len(json.dumps(c, ensure_ascii=False, separators=(",", ":")).encode()), c["id"]) for c in items]
fit = [s for s in sized if 1000 <= s[0] <= 2048] or sorted(sized)
print(max(fit)[1])')
mkdir -p "$work/www/api/v1/cases"
curl -sf "http://127.0.0.1:$port_node/api/v1/cases/$id" -o "$work/www/api/v1/cases/$id"
size=$(stat -c %s "$work/www/api/v1/cases/$id")
# nginx workers drop privileges: let them read the copy.
chmod -R a+rX "$work/www"; chmod a+x "$work"

cat > "$work/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/nginx-error.log;
pid $work/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port_nginx;
    root $work/www;
    etag on;
  }
}
CONF
taskset -c 0 nginx -c "$work/nginx.conf" -p "$work" &
nginx_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port_nginx/api/v1/cases/$id" >/dev/null && break; sleep 0.05; done
cmp <(curl -sf "http://127.0.0.1:$port_nginx/api/v1/cases/$id") <(curl -sf "http://127.0.0.1:$port_node/api/v1/cases/$id")

measure() { # URL -> requests/s
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$1" | awk '/Requests\/sec/ {print $2}'
}
echo "record $id: $size bytes; $ROUNDS rounds of ${DURATION}s, $CONNECTIONS connections"
node_runs=(); nginx_runs=()
for r in $(seq 1 "$ROUNDS"); do
  n=$(measure "http://127.0.0.1:$port_nginx/api/v1/cases/$id"); nginx_runs+=("$n")
  o=$(measure "http://127.0.0.1:$port_node/api/v1/cases/$id"); node_runs+=("$o")
  printf 'round %d: nginx %10.0f req/s   olievlekd %10.0f req/s\n' "$r" "$n" "$o"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mn=$(median "${nginx_runs[@]}"); mo=$(median "${node_runs[@]}")
python3 -c "print(f'median: nginx {float($mn):.0f} req/s, olievlekd {float($mo):.0f} req/s, ratio {float($mo)/float($mn):.2f}x nginx (target >= 1.0x)')"
