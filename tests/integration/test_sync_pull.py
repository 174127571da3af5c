"""The offline clients' pull (docs/protocol.md §9.1) against a real node: what POST /api/v1/sync
answers is parsed and verified here as a client must (hash chain, content hashes, the origin's
signed heads), from an empty replica, resumed from the middle, filtered, paged, with drafts for
their author only, and bad requests refused while the node keeps serving."""

import hashlib
import json
import os
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from olievlek import Node, check, check_eq, raw_exchange, run
from test_log_verify import MURMELLIUS, canonical, crockford

SYNC_TYPE = "application/vnd.olievlek.sync"
SUMMARY, ENTRIES = 4, 6
ZERO = bytes(32)


def summary_message(positions, batch=1000):
    """positions: {origin bytes: (seq, hash)}, sent in origin order as the protocol requires."""
    out = bytes([SUMMARY]) + struct.pack(">II", batch, len(positions))
    for origin in sorted(positions):
        seq, entry_hash = positions[origin]
        out += origin + struct.pack(">Q", seq) + entry_hash
    return out


def frames_of(body):
    frames, i = [], 0
    while i < len(body):
        check(i + 4 <= len(body), "a whole frame header", i, len(body))
        (n,) = struct.unpack(">I", body[i:i + 4])
        check(i + 4 + n <= len(body), "a whole frame", i, n, len(body))
        frames.append(body[i + 4:i + 4 + n])
        i += 4 + n
    return frames


def parse_summary(msg):
    check_eq(msg[0], SUMMARY, "message type")
    batch, count = struct.unpack(">II", msg[1:9])
    check_eq(len(msg), 9 + 56 * count, "summary length")
    positions = {}
    for k in range(count):
        p = 9 + 56 * k
        (seq,) = struct.unpack(">Q", msg[p + 16:p + 24])
        positions[msg[p:p + 16]] = (seq, msg[p + 24:p + 56])
    return batch, positions


def parse_run(msg):
    check_eq(msg[0], ENTRIES, "message type")
    origin, public_key, head = msg[1:17], msg[17:82], msg[82:210]
    newest, count = struct.unpack(">QI", msg[210:222])
    items, p = [], 222
    for _ in range(count):
        entry = msg[p:p + 114]
        (n,) = struct.unpack(">I", msg[p + 114:p + 118])
        items.append((entry, msg[p + 118:p + 118 + n]))
        p += 118 + n
    check_eq(p, len(msg), "a run is its items and nothing more")
    return dict(origin=origin, public_key=public_key, head=head, newest=newest, items=items)


def verify_head(run_msg):
    origin, pub, head = run_msg["origin"], run_msg["public_key"], run_msg["head"]
    check_eq(hashlib.sha256(pub).digest()[:16], origin, "the key belongs to the origin")
    check_eq(head[:16], origin, "the head is the origin's")
    digest = hashlib.sha256(b"olievlek/head/v1" + head[:64]).digest()
    r, s = int.from_bytes(head[64:96], "big"), int.from_bytes(head[96:128], "big")
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pub)
    try:
        key.verify(utils.encode_dss_signature(r, s), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise AssertionError("a head's signature does not verify")


class Replica:
    """What an offline client keeps: per origin the newest verified position, and the records."""

    def __init__(self):
        self.positions = {}
        self.records = {}
        self.entries = 0
        self.runs = 0

    def store_run(self, msg):
        """§8.3 rules 1, 2 and 4, and rule 3 for a client that never stores a run twice."""
        verify_head(msg)
        origin = msg["origin"]
        seq, prev = self.positions.get(origin, (0, ZERO))
        (head_seq,) = struct.unpack(">Q", msg["head"][16:24])
        contents = []
        for entry, content in msg["items"]:
            check_eq(entry[0], 1, "entry format")
            check_eq(entry[2:18], origin, "entry origin")
            (entry_seq,) = struct.unpack(">Q", entry[18:26])
            check_eq(entry_seq, seq + 1, "the run follows what the replica holds")
            check_eq(entry[26:58], prev, f"entry {entry_seq} chains")
            prev, seq = hashlib.sha256(entry).digest(), entry_seq
            if content:
                check_eq(hashlib.sha256(content).digest(), entry[82:114], "content hash")
                record = json.loads(content)
                check_eq(canonical(record).encode("utf-8"), content, "content is canonical")
                check_eq(record["id"], crockford(entry[66:82]), "content of the entry's record")
                contents.append(record)
        check_eq(seq, head_seq, "the run ends at its head")
        check_eq(prev, msg["head"][24:56], "the last entry hashes to the head")
        check(msg["newest"] >= head_seq, "newest is at or beyond the run's head", msg["newest"])
        self.positions[origin] = (seq, prev)
        for record in contents:
            self.records[record["id"]] = record
        self.entries += len(msg["items"])
        self.runs += 1
        return msg["items"]

    def pull(self, node, query="", batch=1000, token=None):
        """One round trip; returns (frames, final positions)."""
        r = node.post("/api/v1/sync" + query, summary_message(self.positions, batch),
                      headers={"Content-Type": SYNC_TYPE}, token=token)
        check_eq(r.status, 200, f"pull {r.body[:300]!r}")
        check_eq(r.header("content-type"), SYNC_TYPE, "content type of a pull")
        frames = frames_of(r.body)
        check(frames, "a pull always ends with a SUMMARY")
        batch0, final = parse_summary(frames[-1])
        check_eq(batch0, 0, "the closing summary asks for nothing")
        for frame in frames[:-1]:
            self.store_run(parse_run(frame))
        return frames, final, len(r.body)

    def pull_all(self, node, query="", batch=1000, token=None, rounds=1000):
        for n in range(rounds):
            frames, final, _ = self.pull(node, query, batch, token)
            if all(self.positions.get(o, (0, ZERO)) == final[o] for o in final):
                return n + 1
        raise AssertionError("the pull never caught up")


def node_head(node):
    return node.get("/api/v1/node").json["head"]["seq"]


def test_pull_from_empty_and_in_sync():
    with Node() as node:
        replica = Replica()
        rounds = replica.pull_all(node)
        check(rounds >= 1, "caught up", rounds)
        check_eq(replica.entries, node_head(node), "every entry up to the head arrived")
        published = node.get("/api/v1/cases?limit=200", token="").json["count"]
        cases = [r for r in replica.records.values() if r["kind"] == "case"]
        check(len(cases) >= published, "published cases arrived with content", len(cases), published)
        check(all(r["status"] != "draft" for r in replica.records.values()),
              "an anonymous pull carries no draft")
        frames, final, size = replica.pull(node)
        check_eq(len(frames), 1, "in sync: only the closing SUMMARY")
        check_eq(size, 4 + 9 + 56 * len(final), "in sync, the answer is the summary alone")


def add_cases(node, count):
    """Cases written one after the other: each batch signs its own head, so the log has many
    checkpoints after the demo data (which is one run)."""
    node.as_user("moderator")
    for n in range(count):
        r = node.post("/api/v1/cases", {
            "title": f"Geval {n} voor het ophalen in delen",
            "schools": [MURMELLIUS],
            "summary": "Een verslag van een team dat leerlingen laat kiezen. " * 40,
            "phase": "adoptie",
        })
        check_eq(r.status, 201, f"case {n} ({r.body[:200]!r})")
    node.token = None


def test_resume_from_the_middle_and_paging():
    with Node() as node:
        add_cases(node, 40)
        head = node_head(node)
        replica = Replica()
        frames, final, size = replica.pull(node, "?max_bytes=65536", batch=4)
        check_eq(len(frames), 2, "the first answer: the demo data's one run (sent whole) alone")
        seq_after_first = next(iter(replica.positions.values()))[0]
        check(0 < seq_after_first < head, "a partial pull", seq_after_first, head)
        # The client resumes from its stored position alone: nothing it holds is sent again
        # (store_run checks that every run starts right after the replica's position).
        sizes = []
        for _ in range(100):
            frames, final, size = replica.pull(node, "?max_bytes=65536", batch=4)
            sizes.append((size, len(frames)))
            if replica.positions == final:
                break
        check(len(sizes) >= 2, "paging takes several rounds", sizes)
        check(all(size <= 65536 for size, _ in sizes), "max_bytes bounds each answer", sizes)
        check(any(n > 2 for _, n in sizes), "several runs fit in one answer", sizes)
        check_eq(replica.entries, sum(seq for seq, _ in final.values()), "each entry arrived once")
        check(replica.entries >= head, "up to the head seen before", replica.entries, head)
        whole = Replica()
        whole.pull_all(node)
        check_eq(replica.records, whole.records, "paged and whole pulls give the same records")
        check_eq(whole.runs, 1, "with a large batch one run reaches the newest checkpoint")


def test_origins_listed_and_kinds():
    with Node() as node:
        node_id = bytes.fromhex(node.get("/api/v1/node").json["public_key"])
        own = hashlib.sha256(node_id).digest()[:16]
        stranger = os.urandom(16)
        # Listing only an origin the node does not hold: nothing, and an empty closing summary.
        replica = Replica()
        replica.positions[stranger] = (0, ZERO)
        frames, final, _ = replica.pull(node, "?origins=listed")
        check_eq(len(frames), 1, "no runs for unlisted origins")
        check_eq(final, {}, "the closing summary covers the origins in scope only")
        # Without origins=listed the node adds what the summary lacks.
        frames, final, _ = replica.pull(node)
        check(own in final and len(frames) >= 2, "every origin by default")
        # Listing the node's own origin from zero.
        listed = Replica()
        listed.positions[own] = (0, ZERO)
        listed.pull_all(node, "?origins=listed")
        check_eq(listed.entries, node_head(node), "the listed origin in full")

        cases_only = Replica()
        cases_only.pull_all(node, "?kinds=case")
        check_eq(cases_only.entries, node_head(node), "entries of other kinds still chain")
        kinds = {r["kind"] for r in cases_only.records.values()}
        check_eq(kinds, {"case"}, "content only for the kinds asked")
        two = Replica()
        two.pull_all(node, "?kinds=case,lesson")
        check_eq({r["kind"] for r in two.records.values()}, {"case", "lesson"}, "two kinds")


def test_drafts_for_their_author_only():
    with Node() as node:
        editor = node.login("murmellius")
        r = node.post("/api/v1/cases", {
            "title": "Een concept dat nog niet openbaar is",
            "schools": [MURMELLIUS],
            "summary": "Alleen de school zelf en de moderator zien dit concept voorlopig.",
            "phase": "adoptie",
        }, token=editor)
        check_eq(r.status, 201, f"draft {r.body[:300]!r}")
        draft = r.json
        check_eq(draft["status"], "draft", "a school editor's new case is a draft")

        anonymous = Replica()
        anonymous.pull_all(node, token="")
        check(draft["id"] not in anonymous.records, "no draft content for an anonymous pull")
        check_eq(anonymous.entries, node_head(node), "the draft's entry still chains")

        author = Replica()
        author.pull_all(node, token=editor)
        check_eq(author.records.get(draft["id"]), draft, "the author pulls their draft, verified")

        other = Replica()
        other.pull_all(node, token=node.login("clusius"))
        check(draft["id"] not in other.records, "another school's editor does not get it")


def test_bad_requests_are_refused():
    with Node() as node:
        def post(body, content_type=SYNC_TYPE, query=""):
            return node.post("/api/v1/sync" + query, body, headers={"Content-Type": content_type})

        def problem(r, status, what):
            check_eq(r.status, status, f"{what} ({r.body[:300]!r})")
            check_eq(r.header("content-type"), "application/problem+json", f"{what}: a problem")

        good = summary_message({})
        problem(post(bytes([3]) + bytes(32)), 400, "a DIGEST instead of a SUMMARY")
        problem(post(good[:-1]), 400, "a truncated SUMMARY")
        problem(post(summary_message({os.urandom(16): (1, ZERO)})[:-3]), 400, "truncated position")
        problem(post(b""), 400, "an empty body")
        problem(post(summary_message({}, batch=0)), 400, "a summary that asks for nothing")
        problem(post(summary_message({}, batch=65537)), 400, "a batch above the maximum")
        problem(post(good, "application/json"), 415, "another content type")
        problem(post(good, query="?max_bytes=10"), 400, "max_bytes below 64 KiB")
        problem(post(good, query="?max_bytes=99999999999"), 400, "max_bytes above 16 MiB")
        problem(post(good, query="?kinds=case,boat"), 400, "an unknown kind")
        problem(post(good, query="?origins=all"), 400, "origins other than listed")
        raw = raw_exchange(node.port, (
            "POST /api/v1/sync HTTP/1.1\r\nHost: x\r\nContent-Type: " + SYNC_TYPE +
            "\r\nContent-Length: %d\r\n\r\n" % (5 << 20)).encode())
        check(raw.startswith(b"HTTP/1.1 413"), "a huge body", raw[:200])
        problem(node.get("/api/v1/sync"), 405, "GET")
        problem(node.post("/api/v1/sync", good, headers={"Content-Type": SYNC_TYPE},
                          token="not-a-token"), 401, "a bad token")
        check_eq(node.get("/healthz").status, 200, "the node still serves")
        Replica().pull_all(node)


if __name__ == "__main__":
    run([
        test_pull_from_empty_and_in_sync,
        test_resume_from_the_middle_and_paging,
        test_origins_listed_and_kinds,
        test_drafts_for_their_author_only,
        test_bad_requests_are_refused,
    ])
