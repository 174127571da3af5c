"""An independent implementation (this file, in Python, from docs/protocol.md and
docs/log-format.md alone) verifies what a real node serves: every record's canonical encoding,
the hash chain of the origin log, the content hashes, the node id, the key chain of a node whose
key was rotated (each key entry's key, and the head at it signed by the key before) and the ECDSA
signature of the head. If the C code and the specification ever drift apart, this fails."""

import hashlib
import json
import subprocess
import time
import struct
import unicodedata

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

# Murmellius Gymnasium, in the demo moderator's region.
MURMELLIUS = "01KDVDNA081M10000000000008"

from olievlek import BINARY, Node, check, check_eq, run

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def crockford(data):
    """128 bits → 26 characters, most significant first (the ULID layout)."""
    n = int.from_bytes(data, "big")
    return "".join(CROCKFORD[(n >> (5 * i)) & 31] for i in reversed(range(26)))


def canonical_string(text):
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif code < 0x20:
            out.append("\\u%04X" % code)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def canonical(value):
    """The canonical encoding as docs/protocol.md specifies it."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        check(abs(value) <= 2**53 - 1, "integers stay within ±(2^53-1)", value)
        return str(value)
    if isinstance(value, str):
        check(unicodedata.is_normalized("NFC", value), "strings are NFC", value)
        return canonical_string(value)
    if isinstance(value, list):
        return "[" + ",".join(canonical(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-8"))
        return "{" + ",".join(canonical_string(k) + ":" + canonical(value[k]) for k in keys) + "}"
    raise AssertionError(f"not allowed in a record: {value!r}")


def parse_entry(raw):
    check_eq(len(raw), 114, "entry length")
    fmt, op = raw[0], raw[1]
    origin = raw[2:18]
    (seq,) = struct.unpack(">Q", raw[18:26])
    prev_hash = raw[26:58]
    (time_ms,) = struct.unpack(">q", raw[58:66])
    record = raw[66:82]
    content_hash = raw[82:114]
    return dict(format=fmt, op=op, origin=origin, seq=seq, prev_hash=prev_hash, time_ms=time_ms,
                record=record, content_hash=content_hash)


def verify_signature(pub, origin, head, what):
    digest = hashlib.sha256(b"olievlek/head/v1" + origin + struct.pack(">Q", head["seq"]) +
                            bytes.fromhex(head["hash"]) + struct.pack(">q", head["time_ms"])).digest()
    signature = bytes.fromhex(head["signature"])
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    check(s <= P256_ORDER // 2, "signatures are low-S", s)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pub)
    try:
        key.verify(utils.encode_dss_signature(r, s), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except InvalidSignature:
        raise AssertionError(f"{what}: the signature does not verify")
    return key, digest, r, s


def verify_log(node, origin_text=None):
    """Verifies the log of origin_text (default: the node's own) as node serves it, following
    the origin's key chain from its genesis key. Returns (entries, entries with content, keys)."""
    info = node.get("/api/v1/node").json
    origin_text = origin_text or info["id"]
    query = f"origin={origin_text}&"
    entries = []
    head = public_key = None
    position = 1
    for _ in range(10000):
        page = node.get(f"/api/v1/log?{query}from={position}&limit=1000").json
        head, public_key, genesis_key = page["head"], page["public_key"], page["genesis_key"]
        entries += page["entries"]
        if not page["entries"]:
            break
        position = page["entries"][-1]["seq"] + 1
        if position > head["seq"]:
            break
    # The node id is the fingerprint of the genesis key; every key after it is proven by the log.
    pub = bytes.fromhex(genesis_key)
    node_id = hashlib.sha256(pub).digest()[:16]
    check_eq(crockford(node_id), origin_text, "node id = first 16 bytes of SHA-256(genesis key)")
    keys = 1
    check_eq(len(entries), head["seq"], "every entry up to the head is served")

    prev_hash = bytes(32)
    checked_content = 0
    for expected_seq, item in enumerate(entries, start=1):
        raw = bytes.fromhex(item["entry"])
        entry = parse_entry(raw)
        check_eq(entry["format"], 1, "entry format")
        check(entry["op"] in (1, 2, 3, 4), "entry op", entry["op"])
        check_eq(entry["origin"], node_id, "entry origin")
        check_eq(entry["seq"], expected_seq, "entries are gapless")
        check_eq(entry["prev_hash"], prev_hash, f"entry {expected_seq} chains to its predecessor")
        prev_hash = hashlib.sha256(raw).digest()
        if entry["op"] == 4:
            # A key entry: the new key hashes to content_hash, and the head at this entry is
            # signed by the key before it; every later head by the new key.
            check_eq(entry["record"], bytes(16), "a key entry names no record")
            new_key = bytes.fromhex(item["key"])
            check_eq(hashlib.sha256(new_key).digest(), entry["content_hash"], f"entry {expected_seq}: key hash")
            at = item["head"]
            check_eq(at["seq"], expected_seq, "the head at a key entry covers exactly it")
            check_eq(bytes.fromhex(at["hash"]), prev_hash, "the head at a key entry is its hash")
            verify_signature(pub, node_id, at, f"the head at key entry {expected_seq}")
            pub = new_key
            keys += 1
            check(item["content"] is None, "a key entry has no record content")
            continue
        if item["content"] is not None:
            content = item["content"].encode("utf-8")
            check_eq(hashlib.sha256(content).digest(), entry["content_hash"],
                     f"entry {expected_seq}: content hash")
            record = json.loads(content)
            check_eq(canonical(record).encode("utf-8"), content,
                     f"entry {expected_seq}: content is canonical")
            check_eq(record["id"], crockford(entry["record"]), "entry names its record")
            check_eq(record["origin"], origin_text, "record origin")
            checked_content += 1
    check_eq(prev_hash.hex(), head["hash"], "the head is the hash of the last entry")

    check_eq(public_key, pub.hex(), "the head is signed by the newest key of the chain")
    if origin_text == info["id"]:
        check_eq(public_key, info["public_key"], "the log is signed by the node's key")
    key, digest, r, s = verify_signature(pub, node_id, head, "the head")
    tampered = bytearray(digest)
    tampered[0] ^= 1
    try:
        key.verify(utils.encode_dss_signature(r, s), bytes(tampered), ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        raise AssertionError("a tampered digest verified")
    except InvalidSignature:
        pass
    return len(entries), checked_content, keys


def test_independent_verification():
    with Node() as node:
        count, with_content, _ = verify_log(node)
        check(count > 50 and with_content > 50, "the demo data is in the log", count, with_content)
        node.as_user("moderator")
        school = MURMELLIUS
        case = node.post("/api/v1/cases", {
            "title": "Een \u201cnieuwe\u201d aanpak voor cr\u00e8che-overgang / \"quotes\" \\ slash",
            "schools": [school],
            "summary": "Zo\u0308n aanpak (decomposed \u00f6) wordt NFC.\nTweede regel\tmet tab.",
            "phase": "adoptie",
            "themes": ["\u00e9\u00e9n", "z", "a"],
        })
        check_eq(case.status, 201, f"create {case.body[:300]!r}")
        check("Zön" in case.json["summary"], "stored summary is NFC", case.json["summary"])
        updated = node.put(f"/api/v1/cases/{case.json['id']}", dict(case.json, title="Bijgewerkt"),
                           headers={"If-Match": '"1"'})
        check_eq(updated.status, 200, "update")
        node.delete(f"/api/v1/cases/{updated.json['id']}")
        # The head over the last writes is signed within 10 ms of them (docs/protocol.md §4);
        # until then /log serves only what the previous head covers, which must verify too.
        deadline = time.monotonic() + 2
        while True:
            count2, _, _ = verify_log(node)
            if count2 == count + 3 or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        check_eq(count2, count + 3, "create, update and delete each appended one entry")


def rotate_key(data_dir):
    out = subprocess.run([BINARY, "rotate-key", "--data-dir", data_dir], capture_output=True, text=True,
                         timeout=60)
    check_eq(out.returncode, 0, f"rotate-key ({out.stderr})")
    return out.stdout


def test_verification_follows_rotation():
    import tempfile
    data = tempfile.mkdtemp(prefix="olievlek-verify-")
    with Node(data_dir=data) as node:
        before, _, keys = verify_log(node)
        check_eq(keys, 1, "one key before a rotation")
        genesis = node.get("/api/v1/node").json["public_key"]
    rotate_key(data)
    rotate_key(data)  # twice: a chain of three keys
    with Node(data_dir=data) as node:
        info = node.get("/api/v1/node").json
        check(info["public_key"] != genesis, "the node signs with its new key")
        check_eq(info["genesis_key"], genesis, "the genesis key still names the node")
        check_eq([k["seq"] for k in info["keys"]], [0, before + 1, before + 2], "the key chain")
        node.as_user("moderator")
        case = node.post("/api/v1/cases", {"title": "Na de sleutelwissel", "schools": [MURMELLIUS],
                                           "summary": "Getekend met de nieuwe sleutel.", "phase": "adoptie"})
        check_eq(case.status, 201, "a write after the rotation")
        deadline = time.monotonic() + 2
        while True:
            count, _, keys = verify_log(node)
            if count == before + 3 or time.monotonic() > deadline:
                break
            time.sleep(0.005)
        check_eq((count, keys), (before + 3, 3), "two key entries and the write, all verified")


if __name__ == "__main__":
    run([test_independent_verification, test_verification_follows_rotation])
