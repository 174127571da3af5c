#!/usr/bin/env bash
# Offline client: `olievlek clone` of a node of RECORDS cases on loopback (every entry verified,
# every record stored in the replica), compared in the same run with a raw download of the same
# number of bytes from nginx by curl, to a file and to /dev/null, round by round. Then an incremental pull after
# one record changed on the node, its bytes on the wire counted by a relay.
#
#   bench/client_clone.sh [BUILD_DIR]        (RECORDS=100000, ROUNDS=5 by default)
# BUILD_DIR defaults to build-rel, configured as a Release build when it does not exist. The
# seeded store is kept in bench/out/federation-RECORDS (as bench/federation.sh keeps it), with
# an admin account added for the change.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-rel}
RECORDS=${RECORDS:-100000}
ROUNDS=${ROUNDS:-5}
PORT_NODE=${PORT_NODE:-18311}
PORT_NGINX=${PORT_NGINX:-18312}
PORT_PROXY=${PORT_PROXY:-18313}
ADMIN=bench-admin
ADMIN_PASSWORD=bench-admin-password

[ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target olievlekd olievlek_cli federation_seed >/dev/null
OUT=bench/out
SEED=$OUT/federation-$RECORDS
mkdir -p "$OUT"
if [ ! -f "$SEED/.done" ]; then
  rm -rf "$SEED"; mkdir -p "$SEED"
  echo "seeding $RECORDS cases into $SEED (once) ..."
  "$BUILD/federation_seed" "$SEED" "$RECORDS" > "$SEED/.id"
  touch "$SEED/.done"
fi
"$BUILD/federation_seed" --admin "$SEED" "$ADMIN" "$ADMIN_PASSWORD"

WORK=$(mktemp -d /tmp/olievlek-clone-bench.XXXXXX)
chmod 755 "$WORK" # nginx's workers may run as another user
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

"$BUILD/olievlekd" --data-dir "$SEED" --listen 127.0.0.1:$PORT_NODE 2>"$WORK/node.log" &
PID_NODE=$!
for _ in $(seq 600); do grep -q node.ready "$WORK/node.log" && break; sleep 0.1; done
NODE=http://127.0.0.1:$PORT_NODE

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mbs() { echo "$1 / $2 / 1000000" | bc -l; }

# ---- nginx serving a file of the clone's size ------------------------------------------------
# The answer bytes are known only after a clone: a first clone (not counted) gives their number.
rm -rf "$WORK/replica"
"$BUILD/olievlek" -C "$WORK/replica" --json clone "$NODE" > "$WORK/clone.json"
BYTES=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['bytes'])" "$WORK/clone.json")
mkdir -p "$WORK/www" "$WORK/nginx"
head -c "$BYTES" /dev/urandom > "$WORK/www/clone.bin"
chmod 644 "$WORK/www/clone.bin"
cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$PORT_NGINX;
    root $WORK/www;
  }
}
EOF
nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" &
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT_NGINX/clone.bin" -r 0-0 && break; sleep 0.05; done
curl -sf -o /dev/null "http://127.0.0.1:$PORT_NGINX/clone.bin" # the file into the page cache

# ---- ROUNDS rounds, each a clone and then the same bytes by curl -----------------------------
# Side by side: each round runs the clone, then curl to a file, then curl to /dev/null, each
# after the files before it are removed and flushed (sync), so that both meet the same machine:
# the same page cache, the same writeback, the same neighbours.
: > "$WORK/clone.times"; : > "$WORK/file.times"; : > "$WORK/null.times"
for round in $(seq "$ROUNDS"); do
  rm -rf "$WORK/replica" "$WORK/download.bin"
  sync
  t0=$(now)
  "$BUILD/olievlek" -C "$WORK/replica" --json clone "$NODE" > "$WORK/clone.json"
  t1=$(now)
  read -r records entries bytes inner < <(python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); print(d['records'], d['entries'], d['bytes'], d['seconds'])" "$WORK/clone.json")
  [ "$bytes" = "$BYTES" ] || { echo "the clone took $bytes bytes, the first one $BYTES" >&2; exit 1; }
  wall=$(echo "$t1 - $t0" | bc)
  echo "$wall" >> "$WORK/clone.times"
  rm -rf "$WORK/replica"
  sync
  t0=$(now)
  curl -sf -o "$WORK/download.bin" "http://127.0.0.1:$PORT_NGINX/clone.bin"
  t1=$(now)
  got=$(stat -c %s "$WORK/download.bin")
  [ "$got" = "$BYTES" ] || { echo "nginx sent $got bytes, not $BYTES" >&2; exit 1; }
  file=$(echo "$t1 - $t0" | bc)
  rm -f "$WORK/download.bin"
  sync
  t0=$(now)
  curl -sf -o /dev/null "http://127.0.0.1:$PORT_NGINX/clone.bin"
  t1=$(now)
  null=$(echo "$t1 - $t0" | bc)
  echo "$file" >> "$WORK/file.times"; echo "$null" >> "$WORK/null.times"
  printf "round %d: clone %d records, %d entries, %d bytes in %.3f s (%.3f s inside the pull) = %.1f MB/s; curl to a file %.3f s = %.1f MB/s, to /dev/null %.3f s = %.1f MB/s\n" \
    "$round" "$records" "$entries" "$bytes" "$wall" "$inner" "$(mbs "$bytes" "$wall")" \
    "$file" "$(mbs "$BYTES" "$file")" "$null" "$(mbs "$BYTES" "$null")"
done

CLONE=$(median < "$WORK/clone.times")
FILE=$(median < "$WORK/file.times")
NULL=$(median < "$WORK/null.times")
RATIO=$(echo "$FILE / $CLONE" | bc -l)
RATIO_NULL=$(echo "$NULL / $CLONE" | bc -l)
printf "median of %d: clone %.1f MB/s (%.3f s), curl to a file %.1f MB/s (%.3f s), curl to /dev/null %.1f MB/s (%.3f s)\n" \
  "$ROUNDS" "$(mbs "$BYTES" "$CLONE")" "$CLONE" "$(mbs "$BYTES" "$FILE")" "$FILE" "$(mbs "$BYTES" "$NULL")" "$NULL"
VERDICT=$(echo "$RATIO >= 0.5" | bc)
printf "clone rate / raw rate: %.2fx the download to a file, %.2fx the download to /dev/null (target >= 0.5x): %s\n" \
  "$RATIO" "$RATIO_NULL" "$([ "$VERDICT" = 1 ] && echo PASS || echo FAIL)"

# ---- Incremental pull after one remote change ------------------------------------------------
# On a copy of the store, so that the cached seed stays as seeded. The seeded cases name a school
# that does not exist (the seeder writes no schools), so a case can only be changed through the
# API once it names one: the admin creates a school and moves one case to it, a replica is
# cloned through the counting relay (so that its node address is the relay's), and then that
# case's title changes. What the pull after that change takes is what is counted.
kill "$PID_NODE"; wait "$PID_NODE" 2>/dev/null || true
cp -r "$SEED" "$WORK/node"
"$BUILD/olievlekd" --data-dir "$WORK/node" --listen 127.0.0.1:$PORT_NODE 2>"$WORK/node2.log" &
for _ in $(seq 600); do grep -q node.ready "$WORK/node2.log" && break; sleep 0.1; done
python3 bench/byte_proxy.py $PORT_PROXY $PORT_NODE "$WORK/proxy.log" &
for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$PORT_PROXY/api/v1/node" && break; sleep 0.05; done
change() {
  python3 - "$NODE" "$ADMIN" "$ADMIN_PASSWORD" "$WORK" "$1" <<'EOF'
import json, sys, urllib.error, urllib.request
node, user, password, work, step = sys.argv[1:6]
def call(method, path, body=None, token=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(node + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {path}: {e.code} {e.read()[:400]!r}")
token = json.loads(call("POST", "/api/v1/session", {"username": user, "password": password}))["token"]
def put(case):
    call("PUT", "/api/v1/cases/" + case["id"], case, token, {"If-Match": '"%d"' % case["version"]})
if step == "prepare":
    school = json.loads(call("POST", "/api/v1/schools", {"name": "Benchmarkcollege", "brin": "99ZZ",
                                                         "sector": "vo", "place": "Utrecht"}, token))
    case = json.loads(call("GET", "/api/v1/cases?limit=1"))["items"][0]
    case = json.loads(call("GET", "/api/v1/cases/" + case["id"]))
    case["schools"] = [school["id"]]
    put(case)
    open(work + "/case.id", "w").write(case["id"])
else:
    case_id = open(work + "/case.id").read()
    case = json.loads(call("GET", "/api/v1/cases/" + case_id))
    case["title"] = case["title"] + " (bijgewerkt)"
    put(case)
    open(work + "/record.len", "w").write(str(len(call("GET", "/api/v1/cases/" + case_id))))
EOF
}
counted() { # sums what the relay counted since it was emptied: "UP DOWN CONNECTIONS"
  for _ in $(seq 50); do [ -s "$WORK/proxy.log" ] && break; sleep 0.05; done
  awk '{u+=$1; d+=$2; n++} END {print u, d, n}' "$WORK/proxy.log"
}
change prepare
sleep 1.2 # the node signs its head a moment after a write is acknowledged
rm -rf "$WORK/replica"
"$BUILD/olievlek" -C "$WORK/replica" --quiet clone "http://127.0.0.1:$PORT_PROXY"
sleep 0.5 # the relay writes a connection's counts when it closes: let the clone's land first
: > "$WORK/proxy.log"
"$BUILD/olievlek" -C "$WORK/replica" --json pull > "$WORK/pull0.json"
read -r UP0 DOWN0 _ < <(counted)
echo "pull when up to date: sent $UP0 bytes, received $DOWN0 bytes"
change title
sleep 1.2
: > "$WORK/proxy.log"
"$BUILD/olievlek" -C "$WORK/replica" --json pull > "$WORK/pull1.json"
read -r UP DOWN CONNS < <(counted)
RECORD=$(cat "$WORK/record.len")
read -r P_RECORDS P_ENTRIES P_BYTES < <(python3 -c "
import json,sys; d=json.load(open(sys.argv[1])); print(d['records'], d['entries'], d['bytes'])" "$WORK/pull1.json")
BEYOND=$((UP + DOWN - RECORD))
echo "incremental pull after one change: $P_RECORDS record, $P_ENTRIES log entry, $CONNS connection; sent $UP bytes, received $DOWN bytes (answer body $P_BYTES bytes)"
printf "  the record is %d bytes (its JSON as the node serves it): %d bytes on the wire beyond it (target <= 2048): %s\n" \
  "$RECORD" "$BEYOND" "$([ "$BEYOND" -le 2048 ] && echo PASS || echo FAIL)"
