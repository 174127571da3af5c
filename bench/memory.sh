#!/usr/bin/env bash
# Resident memory of an idle node holding the demo data, after it has served one request of each
# kind (so lazily built state is counted). Target: <= 16 MB RSS. For scale, the same figure for an
# idle nginx worker serving static files is printed beside it.
#
#   bench/memory.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
work=$(mktemp -d /tmp/olievlek-bench-mem.XXXXXX)
node_pid=""
cleanup() { [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
"$BUILD/olievlekd" --demo --data-dir "$work/data" --listen 127.0.0.1:18095 --log-level warn 2>"$work/node.log" &
node_pid=$!
for _ in $(seq 1 200); do curl -sf http://127.0.0.1:18095/healthz >/dev/null && break; sleep 0.05; done
for path in /healthz /metrics /api/v1/node "/api/v1/cases?limit=200" "/api/v1/schools?limit=200" \
  "/api/v1/people?limit=200" "/api/v1/lessons?limit=200" "/api/v1/changes?since=0&limit=1000" /; do
  curl -s -o /dev/null "http://127.0.0.1:18095$path"
done
sleep 1
rss_kb=$(awk '/^VmRSS/ {print $2}' /proc/$node_pid/status)
hwm_kb=$(awk '/^VmHWM/ {print $2}' /proc/$node_pid/status)
records=$(curl -sf http://127.0.0.1:18095/healthz | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')
python3 -c "print(f'idle olievlekd with {$records} demo records: RSS {$rss_kb/1024:.1f} MB (peak {$hwm_kb/1024:.1f} MB); target <= 16 MB: {\"met\" if $rss_kb <= 16*1024 else \"NOT met\"}')"
