#!/usr/bin/env python3
"""Federation, live: three real nodes in a chain A → B → C on loopback (C never meets A). A
moderator publishes cases on A one at a time; live websocket subscribers on B and C time how long
each takes to arrive (one hop, two hops): p50 and p99. Then one new record among what B already
holds: B is stopped, A gets one record, B comes back; the bytes the two nodes exchange beyond the
record itself, and the round trips the protocol needs for it.

    bench/federation_live.py [BUILD_DIR]        (COUNT=200 publishes by default)
"""
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
build = sys.argv[1] if len(sys.argv) > 1 else "build-rel"
os.environ.setdefault("OLIEVLEKD", os.path.join(HERE, "..", build, "olievlekd"))

from olievlek import Node  # noqa: E402
from wsclient import Live  # noqa: E402

COUNT = int(os.environ.get("COUNT", "200"))
MURMELLIUS = "01KDVDNA081M10000000000008"
HANDSHAKE = 115 + 65  # HELLO and PROOF, each way


def ids(*specs):
    out = []
    for demo, d in specs:
        with Node(demo=demo, data_dir=d) as n:
            out.append(n.get("/api/v1/node").json["id"])
    return out


def metric(node, name):
    for line in node.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def subscriber(node):
    ws = Live(node.port)
    ws.recv()  # welcome
    ws.send({"type": "subscribe", "id": "cases", "filter": {"kind": ["case"]}})
    ws.recv_until(lambda m: m.get("type") == "subscribed")
    return ws


def main():
    dirs = [tempfile.mkdtemp(prefix="olievlek-bench-") for _ in range(3)]
    ia, ib, ic = ids((True, dirs[0]), (False, dirs[1]), (False, dirs[2]))
    with Node(data_dir=dirs[0], extra_args=["--peers", ib], name="A") as a, \
         Node(demo=False, data_dir=dirs[1], name="B", extra_args=["--peers", f"{ia}@ws://127.0.0.1:{a.port},{ic}"]) as b, \
         Node(demo=False, data_dir=dirs[2], name="C", extra_args=["--peers", f"{ib}@ws://127.0.0.1:{b.port}"]) as c:
        deadline = time.time() + 60
        head = lambda n: {o["origin"]: o["seq"] for o in n.get("/api/v1/node").json["origins"]}.get(ia)
        while head(c) != head(a) and time.time() < deadline:
            time.sleep(0.05)
        token = a.login("moderator")
        print("caught up:", head(a), head(b), head(c), flush=True)
        sb, sc = subscriber(b), subscriber(c)
        print("subscribed", flush=True)
        one, two = [], []
        for i in range(COUNT):
            t0 = time.monotonic()
            r = a.post("/api/v1/cases", {"title": f"Live {i}", "schools": [MURMELLIUS], "summary": "Gedeeld.",
                                         "phase": "adoptie"}, token=token)
            case = r.json["id"]
            for name, node, ws, out in (("B", b, sb, one), ("C", c, sc, two)):
                try:
                    ws.recv_until(lambda m: m.get("type") == "change" and m["record"]["id"] == case, timeout=10)
                except TimeoutError:
                    raise SystemExit(f"publish {i}: no live message on {name} in 10 s; record there: "
                                     f"{node.get('/api/v1/cases/' + case).status}; heads A {head(a)} B {head(b)} C {head(c)}")
                out.append((time.monotonic() - t0) * 1000)
        print(f"publish on A -> live message on B (one hop):  p50 {pct(one, 50):.1f} ms  p99 {pct(one, 99):.1f} ms  "
              f"max {max(one):.1f} ms  (target p99 <= 250 ms)")
        print(f"publish on A -> live message on C (two hops): p50 {pct(two, 50):.1f} ms  p99 {pct(two, 99):.1f} ms  "
              f"max {max(two):.1f} ms  (target p99 <= 500 ms)")
        print(f"  ({COUNT} publishes, each timed from sending the POST to the subscriber's message)")
        sb.close()
        sc.close()

        # One new record while B is away.
        b.stop()
        sent_a = metric(a, "olievlek_peer_bytes_sent_total")
        r = a.post("/api/v1/cases", {"title": "Eén nieuw voorbeeld", "schools": [MURMELLIUS], "summary": "Nieuw.",
                                     "phase": "adoptie"}, token=token)
        record = a.get(f"/api/v1/cases/{r.json['id']}").body
        b.port = None
        b.start()
        deadline = time.time() + 30
        while b.get(f"/api/v1/cases/{r.json['id']}").status != 200 and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        from_a = metric(a, "olievlek_peer_bytes_sent_total") - sent_a - HANDSHAKE
        from_b = metric(b, "olievlek_peer_bytes_sent_total") - HANDSHAKE
        beyond = from_a + from_b - len(record)
        print(f"one new record ({len(record)} bytes) among {head(a)} entries: A sent {from_a:.0f} bytes, B sent "
              f"{from_b:.0f} bytes after the handshake; beyond the record {beyond:.0f} bytes of messages "
              f"(+2-6 bytes websocket framing per message); 2 round trips (DIGEST, then SUMMARY -> ENTRIES) "
              f"(target <= 2 round trips, <= 1.5 KB)")


if __name__ == "__main__":
    main()
