"""Key rotation and recovery between real node processes (docs/protocol.md §4, §8.1;
docs/operations.md): A rotates its key and writes on; B, and C that only meets B, follow without
new configuration, verify A's log from its genesis key and accept A's handshake with the new key;
a rotation forged with A's old key is refused and counted; the offline client pulls across the
rotation. Then a node that lost its store but kept its key refuses writes until it has restored
its own log from a peer, and then writes on from the restored head without a fork."""

import hashlib
import os
import shutil
import struct
import tempfile
import time

from cryptography.hazmat.primitives.asymmetric import ec

import fakepeer
from olievlek import Node, check, check_eq, run
from test_client import Client, url
from test_federation import MURMELLIUS, in_step, learn_ids, metric, new_case, origins, wait_for
from test_log_verify import rotate_key, verify_log
from wsclient import Closed


def key_from_file(path):
    """A node key file (64 hex digits) as a fakepeer key, to forge what that key signs."""
    with open(path) as f:
        secret = int(f.read().strip(), 16)
    key = fakepeer.Key.__new__(fakepeer.Key)
    key.private = ec.derive_private_key(secret, ec.SECP256R1())
    numbers = key.private.public_key().public_numbers()
    key.public = b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
    key.node = hashlib.sha256(key.public).digest()[:16]
    key.node_text = fakepeer.crockford(key.node)
    return key


def head_of(node, origin):
    return origins(node).get(origin)


def test_rotation_is_followed():
    dirs = [tempfile.mkdtemp(prefix="olievlek-rot-") for _ in range(3)]
    ia, ib, ic = learn_ids((True, dirs[0]), (False, dirs[1]), (False, dirs[2]))
    fake = fakepeer.Key()
    with Node(demo=False, data_dir=dirs[1], name="B", extra_args=["--peers", f"{ia},{ic}"]) as b:
        with Node(demo=False, data_dir=dirs[2], name="C",
                  extra_args=["--peers", f"{ib}@ws://127.0.0.1:{b.port},{fake.node_text}"]) as c:
            with Node(data_dir=dirs[0], name="A", extra_args=["--peers", f"{ib}@ws://127.0.0.1:{b.port}"]) as a:
                wait_for("C to hold A's log through B", lambda: in_step(a, c, ia))
                before = head_of(a, ia)["seq"]
                genesis = a.get("/api/v1/node").json["public_key"]
            # A is stopped: its key is rotated, and it comes back with the new key only.
            out = rotate_key(dirs[0])
            check(f"key entry {before + 1}" in out, "rotate-key names the key entry", out)
            check(os.path.exists(os.path.join(dirs[0], "node.key.1")), "the old key is kept")
            check_eq(os.stat(os.path.join(dirs[0], "node.key.1")).st_mode & 0o777, 0o600, "mode 0600")
            with Node(data_dir=dirs[0], name="A", extra_args=["--peers", f"{ib}@ws://127.0.0.1:{b.port}"]) as a:
                info = a.get("/api/v1/node").json
                check(info["public_key"] != genesis, "A signs with the new key")
                check_eq(info["id"], ia, "A's id stays the fingerprint of its genesis key")
                # B accepts A's handshake with the new key (proven by KEYS), and both follow.
                token = a.login("moderator")
                created = new_case(a, token, "Geschreven na de sleutelwissel")
                wait_for("C to hold A's log after the rotation", lambda: in_step(a, c, ia))
                check_eq(head_of(c, ia)["seq"], before + 2, "the key entry and the new write")
                check_eq(c.get(f"/api/v1/cases/{created['id']}").body, a.get(f"/api/v1/cases/{created['id']}").body,
                         "A's new record on C")
                for n in (a, b, c):
                    count, _, keys = verify_log(n, ia)
                    check_eq((count, keys), (before + 2, 2), "A's log verifies from its genesis key")
                    check_eq(n.get("/api/v1/node").json["forks"], 0, "no fork")
                check_eq(metric(b, "olievlek_peer_rejected_proof_total") or 0, 0, "no refused handshake")

                # A rotation forged with A's old key (say it was stolen): a key entry after A's
                # head, signed by the genesis key, which no longer signs A's log.
                old = key_from_file(os.path.join(dirs[0], "node.key.1"))
                check_eq(old.public.hex(), genesis, "node.key.1 is the genesis key")
                page = c.get(f"/api/v1/log?origin={ia}&from={before + 2}&limit=1").json
                tail = bytes.fromhex(page["entries"][0]["entry"])
                evil = fakepeer.Key()
                now = int(time.time() * 1000)
                entry = fakepeer.entry_bytes(4, fakepeer.id_bytes(ia), before + 3, hashlib.sha256(tail).digest(), now,
                                             bytes(16), hashlib.sha256(evil.public).digest())
                head = fakepeer.head_bytes(fakepeer.id_bytes(ia), before + 3, hashlib.sha256(entry).digest(), now, old)
                forged = fakepeer.entries_message(fakepeer.id_bytes(ia), old.public, head, before + 3,
                                                  [(entry, evil.public)])
                peer = fakepeer.FakePeer(c.port, fake)
                peer.handshake()
                peer.send(bytes([fakepeer.DIGEST]) + bytes(32))
                kind, _ = peer.recv()
                check_eq(kind, fakepeer.SUMMARY, "C summarises")
                peer.send(bytes([fakepeer.SUMMARY]) + struct.pack(">II", 4096, 0))
                count = metric(c, "olievlek_peer_rejected_forged_total") or 0
                peer.send(forged)
                try:
                    while True:
                        peer.recv(timeout=10)
                except Closed:
                    pass
                check_eq(metric(c, "olievlek_peer_rejected_forged_total"), count + 1, "the forgery is counted")
                check_eq(head_of(c, ia)["seq"], before + 2, "nothing of it is stored")
                verify_log(c, ia)

                # The offline client pulls A's log across the rotation, from C.
                client = Client()
                try:
                    client.run("clone", url(c))
                    pulled = client.json("status")
                    check(pulled["records"] > 50, "the client holds A's records", pulled)
                    # And once more from A itself, after another write: its replica follows.
                    direct = Client()
                    try:
                        direct.run("clone", url(a))
                        new_case(a, token, "Nog een na de wissel")
                        wait_for("A's head to cover the write",
                                 lambda: head_of(a, ia)["seq"] == before + 3)
                        direct.run("pull")
                        check_eq(direct.json("status")["records"], pulled["records"] + 1,
                                 "the replica follows A after the rotation")
                    finally:
                        direct.cleanup()
                finally:
                    client.cleanup()
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def test_recovery_from_peers():
    dirs = [tempfile.mkdtemp(prefix="olievlek-rec-") for _ in range(2)]
    ia, ib = learn_ids((True, dirs[0]), (False, dirs[1]))
    with Node(demo=False, data_dir=dirs[1], name="B", extra_args=["--peers", ia]) as b:
        with Node(data_dir=dirs[0], name="A", extra_args=["--peers", f"{ib}@ws://127.0.0.1:{b.port}"]) as a:
            token = a.login("moderator")
            new_case(a, token, "Voor het verlies")
            wait_for("B to hold A's log", lambda: in_step(a, b, ia) and head_of(a, ia)["seq"] == head_of(b, ia)["seq"])
            lost = head_of(a, ia)
        # A loses everything but its key.
        for name in os.listdir(dirs[0]):
            if name != "node.key":
                os.remove(os.path.join(dirs[0], name))
        # Without its peer it waits: no new log at seq 1, and writes are refused. (--demo gives
        # it the demo accounts back, not the records: those are in A's log.)
        with Node(data_dir=dirs[0], name="A") as a:
            info = a.get("/api/v1/node").json
            check_eq(info["id"], ia, "the same node")
            check(info["recovering"], "A says it restores its log")
            check_eq(info["head"], None, "no own log yet")
            token = a.login("moderator")
            r = a.post("/api/v1/cases", {"title": "Te vroeg", "schools": [MURMELLIUS], "summary": "x",
                                         "phase": "adoptie"}, token=token)
            check_eq(r.status, 503, "a write before the restore is refused")
            check("restoring its own log" in r.json["detail"], "and says why", r.json)
        with Node(data_dir=dirs[0], name="A", extra_args=["--peers", f"{ib}@ws://127.0.0.1:{b.port}"]) as a:
            wait_for("A to restore its log from B", lambda: (head_of(a, ia) or {}).get("seq") == lost["seq"])
            check_eq(head_of(a, ia)["hash"], lost["hash"], "the same head as before the loss")
            wait_for("the restore to complete", lambda: not a.get("/api/v1/node").json["recovering"])
            count, _, _ = verify_log(a)
            check_eq(count, lost["seq"], "A serves its whole restored log")
            check(a.get("/api/v1/search?q=verlies&kind=case").json["hits"], "records and search came back")
            # The next write chains on the restored head, and B takes it: no fork.
            token = a.login("moderator")
            new_case(a, token, "Na het herstel")
            wait_for("A's head to cover the write", lambda: head_of(a, ia)["seq"] == lost["seq"] + 1)
            wait_for("B to take A's new entry", lambda: in_step(a, b, ia))
            check_eq(b.get("/api/v1/node").json["forks"], 0, "B sees no fork")
            check_eq(metric(b, "olievlek_peer_rejected_fork_total") or 0, 0, "nothing refused as a fork")
            verify_log(b, ia)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run([test_rotation_is_followed, test_recovery_from_peers])
