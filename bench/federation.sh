#!/usr/bin/env bash
# Federation: a new node joins and pulls a large origin log from one peer, verifying every entry
# (chain and content hashes, one signature per run), compared in the same run with the time
# per-record ECDSA verification alone would take on this machine. Then, between the two nodes in
# sync, the bytes of the in-sync check, and of catching up one new record.
#
#   bench/federation.sh [BUILD_DIR]          (RECORDS=1000000 by default)
# The seeded origin store is kept in bench/out/federation-RECORDS for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-rel}
RECORDS=${RECORDS:-1000000}
cmake --build "$BUILD" -j2 --target olievlekd federation_seed >/dev/null
OUT=bench/out
SEED=$OUT/federation-$RECORDS
mkdir -p "$OUT"
if [ ! -f "$SEED/.done" ]; then
  rm -rf "$SEED"; mkdir -p "$SEED"
  echo "seeding $RECORDS cases into $SEED (once) ..."
  t0=$(date +%s.%N)
  "$BUILD/federation_seed" "$SEED" "$RECORDS" > "$SEED/.id"
  echo "seeded in $(echo "$(date +%s.%N) - $t0" | bc) s"
  touch "$SEED/.done"
fi
A_ID=$(cat "$SEED/.id")
WORK=$(mktemp -d /tmp/olievlek-fed-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# B's key first, to configure A with it.
mkdir -p "$WORK/b"
"$BUILD/olievlekd" --data-dir "$WORK/b" --listen 127.0.0.1:0 2>"$WORK/b0.log" & pid=$!
for _ in $(seq 100); do grep -q node.ready "$WORK/b0.log" && break; sleep 0.05; done
kill $pid; wait $pid 2>/dev/null || true
B_ID=$(grep -o '"node":"[0-9A-Z]*"' "$WORK/b0.log" | head -1 | cut -d'"' -f4)

PORT_A=18201; PORT_B=18202
"$BUILD/olievlekd" --data-dir "$SEED" --listen 127.0.0.1:$PORT_A --peers "$B_ID" 2>"$WORK/a.log" &
for _ in $(seq 600); do grep -q node.ready "$WORK/a.log" && break; sleep 0.1; done
node_json() { curl -s "http://127.0.0.1:$1/api/v1/node"; }
seq_of() { node_json "$1" | python3 -c "
import json,sys
try: d=json.load(sys.stdin)
except ValueError: d={'origins':[]}
print(next((o['seq'] for o in d['origins'] if o['origin']=='$A_ID'), 0))"; }
HEAD=$(seq_of $PORT_A)
echo "origin A: $HEAD log entries"

t0=$(date +%s.%N)
"$BUILD/olievlekd" --data-dir "$WORK/b" --listen 127.0.0.1:$PORT_B --peers "$A_ID@ws://127.0.0.1:$PORT_A" 2>"$WORK/b.log" &
PID_B=$!
while [ "$(seq_of $PORT_B)" != "$HEAD" ]; do sleep 0.2; done
t1=$(date +%s.%N)
PULL=$(echo "$t1 - $t0" | bc)
RATE=$("$BUILD/federation_seed" --verify-rate 2000)
ECDSA=$(echo "$HEAD / $RATE" | bc -l)
printf "pull of %d entries (every one verified): %.1f s = %.0f entries/s\n" "$HEAD" "$PULL" "$(echo "$HEAD / $PULL" | bc -l)"
printf "per-record ECDSA alone on this machine: %d verifications/s -> %.0f s for %d; ratio %.1fx faster (target: <= 60 s)\n" \
  "$RATE" "$ECDSA" "$HEAD" "$(echo "$ECDSA / $PULL" | bc -l)"
echo "B's records: $(node_json $PORT_B | python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])')"

metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
# The in-sync check: restart B, count what each side sends after the handshake.
kill $PID_B; wait $PID_B 2>/dev/null || true
SENT_A0=$(metric $PORT_A olievlek_peer_bytes_sent_total)
"$BUILD/olievlekd" --data-dir "$WORK/b" --listen 127.0.0.1:$PORT_B --peers "$A_ID@ws://127.0.0.1:$PORT_A" 2>"$WORK/b2.log" &
PID_B=$!
for _ in $(seq 200); do grep -q peer.connected "$WORK/b2.log" && break; sleep 0.05; done
sleep 1
SENT_A=$(echo "$(metric $PORT_A olievlek_peer_bytes_sent_total) - $SENT_A0" | bc)
SENT_B=$(metric $PORT_B olievlek_peer_bytes_sent_total)
HANDSHAKE=$((1 + 1 + 16 + 65 + 32 + 1 + 64))
echo "in sync: A sent $SENT_A bytes, B sent $SENT_B bytes of messages, of which $HANDSHAKE each are HELLO and PROOF;"
echo "  the check itself: $((SENT_A - HANDSHAKE)) and $((SENT_B - HANDSHAKE)) bytes (+2 bytes websocket framing, +4 mask from the dialler), 1 round trip (target <= 64 bytes)"

# One new record while B is away: what it takes beyond the record.
kill $PID_B; wait $PID_B 2>/dev/null || true
TOKEN_HINT="(written straight into A's store is not possible while A runs; A has no accounts in this store)"
echo "one new record: measured by tests/integration (see docs/benchmarks.md) $TOKEN_HINT"
