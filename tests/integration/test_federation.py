"""Federation between real node processes on loopback (docs/protocol.md §8): a node that never
met the origin still receives its records and can prove who wrote them (A → B → C); new records
are pushed at once; a node that was stopped or killed with SIGKILL in the middle of a transfer
catches up without losing or doubling anything; and a hostile peer's garbage, forged runs and
forks are refused, counted and leave nothing behind."""

import hashlib
import json
import os
import random
import struct
import threading
import time

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

import fakepeer
from olievlek import Node, check, check_eq, run
from wsclient import Closed

MURMELLIUS = "01KDVDNA081M10000000000008"


def node_id(node):
    return node.get("/api/v1/node").json["id"]


def learn_ids(*specs):
    """Starts each data directory once without peers, so its key exists, and returns the ids."""
    ids = []
    for demo, data_dir in specs:
        with Node(demo=demo, data_dir=data_dir) as n:
            ids.append(node_id(n))
    return ids


def origins(node):
    return {o["origin"]: o for o in node.get("/api/v1/node").json["origins"]}


def wait_for(what, predicate, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def in_step(a, b, origin):
    """b holds origin's log up to the head a holds."""
    mine, theirs = origins(a).get(origin), origins(b).get(origin)
    return mine is not None and theirs is not None and mine["seq"] == theirs["seq"] and mine["hash"] == theirs["hash"]


def metric(node, name):
    for line in node.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def verify_log(node, origin):
    """Checks, from the protocol alone, what node serves of origin's log: every entry chains,
    every content hashes to its entry, the head is the last entry's hash, signed by the key
    whose hash is the origin id."""
    page = node.get(f"/api/v1/log?origin={origin}&limit=1000").json
    entries = page["entries"]
    while entries and entries[-1]["seq"] < page["head"]["seq"]:
        more = node.get(f"/api/v1/log?origin={origin}&from={entries[-1]['seq'] + 1}&limit=1000").json
        check_eq(more["head"], page["head"], "the head stays while the log is read")
        entries += more["entries"]
    public = bytes.fromhex(page["public_key"])
    check_eq(fakepeer.crockford(hashlib.sha256(public).digest()[:16]), origin, "the key is the origin's")
    prev = bytes(32)
    for item in entries:
        entry = bytes.fromhex(item["entry"])
        check_eq(entry[26:58], prev, f"entry {item['seq']} follows the one before")
        if item["content"] is not None:
            check_eq(hashlib.sha256(item["content"].encode()).digest(), entry[82:114], "content hash")
        prev = hashlib.sha256(entry).digest()
    head = page["head"]
    check_eq(head["seq"], entries[-1]["seq"], "the head covers the last entry")
    check_eq(bytes.fromhex(head["hash"]), prev, "the head is the last entry's hash")
    digest = hashlib.sha256(b"olievlek/head/v1" + fakepeer.id_bytes(origin) + struct.pack(">Q", head["seq"]) +
                            prev + struct.pack(">q", head["time_ms"])).digest()
    sig = bytes.fromhex(head["signature"])
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    key.verify(utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
               digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    return len(entries)


def new_case(node, token, title):
    r = node.post("/api/v1/cases", {"title": title, "schools": [MURMELLIUS], "summary": "Gedeeld tussen regio's.",
                                    "phase": "adoptie"}, token=token)
    check_eq(r.status, 201, "case created")
    return r.json


def test_relay_push_and_proof():
    import tempfile
    dirs = [tempfile.mkdtemp(prefix="olievlek-fed-") for _ in range(3)]
    ia, ib, ic = learn_ids((True, dirs[0]), (False, dirs[1]), (False, dirs[2]))
    with Node(data_dir=dirs[0], extra_args=["--peers", ib], name="A") as a:
        with Node(demo=False, data_dir=dirs[1], name="B",
                  extra_args=["--peers", f"{ia}@ws://127.0.0.1:{a.port},{ic}"]) as b:
            with Node(demo=False, data_dir=dirs[2], name="C",
                      extra_args=["--peers", f"{ib}@ws://127.0.0.1:{b.port}"]) as c:
                wait_for("C to hold A's log through B", lambda: in_step(a, c, ia))
                # C never met A, yet holds A's records byte for byte and proves A wrote them.
                check(ia not in {p["id"] for p in c.get("/api/v1/node").json["peers"]}, "C does not peer with A")
                intermezzo = a.get("/api/v1/search?q=tussenjaar&kind=case&limit=1").json["hits"][0]["id"]
                check_eq(c.get(f"/api/v1/cases/{intermezzo}").body, a.get(f"/api/v1/cases/{intermezzo}").body,
                         "the record on C is A's")
                entries = verify_log(c, ia)
                check(entries > 400, "C serves A's whole log", entries)
                # Reading is federated: lists and search on C include A's records, labelled.
                listed = c.get("/api/v1/cases?limit=50").json["items"]
                check(listed and all(r["origin"] == ia for r in listed), "C lists A's cases", listed[:1])
                hits = c.get("/api/v1/search?q=tussenjaar&kind=case").json["hits"]
                check_eq(hits[0]["id"], intermezzo, "C's search finds A's case first")
                check_eq(hits[0]["origin"], ia, "labelled with its origin")

                # Live: a new case on A reaches B and C without anyone asking.
                token = a.login("moderator")
                started = time.time()
                case = new_case(a, token, "Een nieuw voorbeeld uit Noord-Kennemerland")
                wait_for("the case on C", lambda: c.get(f"/api/v1/cases/{case['id']}").status == 200, timeout=10)
                took = time.time() - started
                print(f"  publish on A → visible on C (two hops): {took * 1000:.0f} ms")
                check_eq(c.get(f"/api/v1/cases/{case['id']}").json["version"], 1, "C has the version A made")
                # One write at a time, each after a quiet moment: every one is pushed (a head signed
                # by the writer's own idle commit must reach the peers too).
                for i in range(30):
                    single = new_case(a, token, f"Eén voor één {i}")
                    wait_for(f"single write {i} on C", lambda: c.get(f"/api/v1/cases/{single['id']}").status == 200,
                             timeout=5)
                # Changes and deletions follow; a deleted record does not come back.
                r = a.delete(f"/api/v1/cases/{case['id']}", token=token)
                check_eq(r.status, 204, "deleted on A")
                wait_for("the tombstone on C", lambda: c.get(f"/api/v1/cases/{case['id']}").json.get("status") == "deleted"
                         if c.get(f"/api/v1/cases/{case['id']}").status == 200 else
                         c.get(f"/api/v1/cases/{case['id']}").status == 410)
                check(in_step(a, c, ia) or wait_for("heads equal", lambda: in_step(a, c, ia)), "same head")
                # Erasure (AVG): an admin of A purges a case; its content disappears on every node
                # while every node's copy of A's log still verifies.
                admin = a.login("admin")
                erased = new_case(a, token, "Een verhaal met persoonsgegevens")
                wait_for("the case on C", lambda: c.get(f"/api/v1/cases/{erased['id']}").status == 200)
                check_eq(a.post(f"/api/v1/cases/{erased['id']}/purge", {}, token=token).status, 403,
                         "a moderator may not erase")
                check_eq(a.post(f"/api/v1/cases/{erased['id']}/purge", {}, token=admin).status, 204, "purged")

                def erased_on(n):
                    r = n.get(f"/api/v1/cases/{erased['id']}")
                    return r.status in (200, 410) and b"persoonsgegevens" not in r.body
                for n in (a, b, c):
                    wait_for(f"the erasure on {n.name}", lambda: erased_on(n))
                    check_eq(n.get("/api/v1/search?q=persoonsgegevens").json["total"], 0, f"{n.name} finds nothing")
                    log_text = b""
                    page = n.get(f"/api/v1/log?origin={ia}&limit=1000").json
                    while True:
                        log_text += json.dumps(page["entries"]).encode()
                        if not page["entries"] or page["entries"][-1]["seq"] >= page["head"]["seq"]:
                            break
                        page = n.get(f"/api/v1/log?origin={ia}&from={page['entries'][-1]['seq'] + 1}&limit=1000").json
                    check(b"persoonsgegevens" not in log_text, f"{n.name}'s log gives the content out no more")
                    verify_log(n, ia)
                for n in (a, b, c):
                    check_eq(metric(n, "olievlek_peer_rejected_forged_total"), 0.0, f"{n.name} rejected nothing")


def test_restart_and_kill_during_transfer():
    import tempfile
    dirs = [tempfile.mkdtemp(prefix="olievlek-fed-") for _ in range(2)]
    ia, ib = learn_ids((True, dirs[0]), (False, dirs[1]))
    with Node(data_dir=dirs[0], extra_args=["--peers", ib], name="A") as a:
        token = a.login("moderator")
        # Enough entries that the transfer takes several runs and a while to store.
        stop = threading.Event()
        errors = []

        def writer(worker):
            for n in range(250):
                r = a.post("/api/v1/cases", {"title": f"Voorbeeld {worker}-{n}", "schools": [MURMELLIUS],
                                             "summary": "Een regio deelt wat werkt. " * 20, "phase": "adoptie"},
                           token=token)
                if r.status != 201:
                    errors.append(r.status)

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check_eq(errors, [], "every write acknowledged")
        head = origins(a)[ia]["seq"]
        check(head > 4000, "a log longer than one run", head)

        b = Node(demo=False, data_dir=dirs[1], name="B", extra_args=["--peers", f"{ia}@ws://127.0.0.1:{a.port}"])
        kills = 0
        for attempt in range(3):
            b.port = None
            b.start()
            time.sleep(random.uniform(0.05, 0.6))  # somewhere in the middle of the transfer
            b.kill()
            kills += 1
        b.port = None
        b.start()
        try:
            wait_for("B to catch up after the kills", lambda: in_step(a, b, ia), timeout=60)
            # Nothing lost, nothing doubled: the same published cases on both, each once.
            def all_ids(node):
                ids, cursor = [], None
                while True:
                    page = node.get("/api/v1/cases?limit=200" + (f"&cursor={cursor}" if cursor else "")).json
                    ids += [r["id"] for r in page["items"]]
                    cursor = page["next"]
                    if not cursor:
                        return ids
            mine, theirs = all_ids(a), all_ids(b)
            check_eq(len(theirs), len(set(theirs)), "no case twice on B")
            check_eq(sorted(theirs), sorted(mine), "every case of A on B")
            verify_log(b, ia)
            # A stopped B misses writes and gets them when it comes back.
            b.stop()
            made = [new_case(a, token, f"Terwijl B weg was {i}")["id"] for i in range(3)]
            b.port = None
            b.start()
            wait_for("B to catch up after a restart", lambda: in_step(a, b, ia))
            for case in made:
                check_eq(b.get(f"/api/v1/cases/{case}").status, 200, "a case made while B was down")
            b.check_log_clean()
        finally:
            b.cleanup()


def signed_run(key, origin, records, prev=bytes(32), first_seq=1, public=None, tamper=None):
    """A run of put entries for records (dicts without envelope), signed by key as origin."""
    items = []
    seq = first_seq
    now = int(time.time() * 1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now / 1000)) + ".%03dZ" % (now % 1000)
    for content in records:
        record_id = os.urandom(16)
        record = dict(content, id=fakepeer.crockford(record_id), kind="case", origin=fakepeer.crockford(origin),
                      version=1, created=stamp, updated=stamp, author=fakepeer.crockford(origin), status="published")
        body = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if tamper == "content":
            body = body.replace(b"Gedeeld", b"Vervalst")
        entry = fakepeer.entry_bytes(1, origin, seq, prev, now, record_id, hashlib.sha256(
            body if tamper != "content" else body.replace(b"Vervalst", b"Gedeeld")).digest())
        items.append((entry, body))
        prev = hashlib.sha256(entry).digest()
        seq += 1
    head = fakepeer.head_bytes(origin, seq - 1, prev, now, key)
    return fakepeer.entries_message(origin, public or key.public, head, seq - 1, items), prev


def test_hostile_peer():
    import tempfile
    from wsclient import Live
    # A node that federates with no one takes no peer connections at all.
    with Node(demo=False, name="alone") as alone:
        refused = Live(alone.port, protocol="olievlek.peer.v1", path="/api/v1/peer")
        check_eq(refused.status, 403, "no peer connections without peers")
        refused.close()
    data = tempfile.mkdtemp(prefix="olievlek-fed-")
    (ib,) = learn_ids((True, data))
    fake = fakepeer.Key()
    other = fakepeer.Key()
    with Node(data_dir=data, extra_args=["--peers", f"{fake.node_text}"], name="B") as b:
        before = origins(b)
        case = {"title": "Gedeeld door een buur", "summary": "Gedeeld tussen regio's.", "phase": "adoptie",
                "schools": [MURMELLIUS]}

        def connect():
            peer = fakepeer.FakePeer(b.port, fake)
            peer.handshake()
            peer.send(bytes([fakepeer.DIGEST]) + bytes(32))  # "we differ": the node sends its summary
            kind, _ = peer.recv()
            check_eq(kind, fakepeer.SUMMARY, "the node summarises what it holds")
            peer.send(bytes([fakepeer.SUMMARY]) + struct.pack(">II", 4096, 0))
            return peer

        def refused(peer, payload, metric_name, what):
            count = metric(b, metric_name) or 0
            peer.send(payload)
            try:
                while True:
                    peer.recv(timeout=10)
            except Closed:
                pass
            check_eq(metric(b, metric_name), count + 1, f"{what} is counted")
            check_eq(origins(b).get(fake.node_text), None, f"{what}: nothing of it is stored")

        # A node id that is not configured is turned away at the handshake.
        stranger = fakepeer.FakePeer(b.port, other)
        try:
            stranger.handshake()
            raise AssertionError("a stranger got through the handshake")
        except (Closed, AssertionError) as exc:
            if isinstance(exc, AssertionError) and "stranger" in str(exc):
                raise
        # Garbage.
        refused(connect(), b"\x42 dit is geen bericht", "olievlek_peer_rejected_malformed_total", "garbage")
        # A run for B's own origin, signed with another key: forged.
        forged, _ = signed_run(fake, fakepeer.id_bytes(ib), [case], public=fake.public)
        refused(connect(), forged, "olievlek_peer_rejected_forged_total", "a forged run")
        # The peer's own origin, but a content that does not match its entry.
        tampered, _ = signed_run(fake, fake.node, [case], tamper="content")
        refused(connect(), tampered, "olievlek_peer_rejected_chain_total", "a tampered content")
        check_eq(origins(b)[ib], before[ib], "B's own log is untouched")

        # A good run from the peer's own origin is stored and readable.
        peer = connect()
        good, last = signed_run(fake, fake.node, [case, dict(case, title="Nog een voorbeeld van de buur")])
        peer.send(good)
        wait_for("the neighbour's records", lambda: origins(b).get(fake.node_text, {}).get("seq") == 2)
        listed = [r for r in b.get("/api/v1/cases?limit=200").json["items"] if r["origin"] == fake.node_text]
        check_eq(len(listed), 2, "both records of the neighbour are listed")
        # The same run again (a replay) changes nothing.
        peer.send(good)
        time.sleep(0.5)
        check_eq(origins(b)[fake.node_text]["seq"], 2, "a replay stores nothing new")
        # A different history for the same positions: a fork, kept as evidence and flagged.
        forked, _ = signed_run(fake, fake.node, [dict(case, title="Een andere geschiedenis")])
        refused_count = metric(b, "olievlek_peer_rejected_fork_total")
        peer.send(forked)
        try:
            while True:
                peer.recv(timeout=10)
        except Closed:
            pass
        check_eq(metric(b, "olievlek_peer_rejected_fork_total"), refused_count + 1, "the fork is counted")
        check_eq(b.get("/api/v1/node").json["forks"], 1, "the fork is kept as evidence")
        check_eq(origins(b)[fake.node_text]["seq"], 2, "the fork did not replace the stored log")
        check_eq(b.get("/healthz").status, 200, "the node keeps serving")
        b.check_log_clean()


if __name__ == "__main__":
    run([test_relay_push_and_proof, test_restart_and_kill_during_transfer, test_hostile_peer])
