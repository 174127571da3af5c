"""A node-to-node peer written from docs/protocol.md §8 alone, in Python: it speaks the
handshake and the binary messages, and can be told to misbehave — send garbage, a forged run, a
replayed one — so the tests can check what a real node does with a hostile peer."""

import hashlib
import os
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from wsclient import Live

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

HELLO, PROOF, DIGEST, SUMMARY, WANT, ENTRIES, ERROR = range(1, 8)


def crockford(data):
    n = int.from_bytes(data, "big")
    return "".join(CROCKFORD[(n >> (5 * i)) & 31] for i in reversed(range(26)))


def id_bytes(text):
    n = 0
    for ch in text:
        n = n * 32 + CROCKFORD.index(ch)
    return n.to_bytes(16, "big")


class Key:
    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        numbers = self.private.public_key().public_numbers()
        self.public = b"\x04" + numbers.x.to_bytes(32, "big") + numbers.y.to_bytes(32, "big")
        self.node = hashlib.sha256(self.public).digest()[:16]
        self.node_text = crockford(self.node)

    def sign(self, digest):
        """r ‖ s with low S, as the protocol requires (section 3)."""
        der = self.private.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        r, s = utils.decode_dss_signature(der)
        if s > P256_ORDER // 2:
            s = P256_ORDER - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def head_bytes(origin, seq, entry_hash, time_ms, key):
    digest = hashlib.sha256(b"olievlek/head/v1" + origin + struct.pack(">Q", seq) + entry_hash +
                            struct.pack(">q", time_ms)).digest()
    return origin + struct.pack(">Q", seq) + entry_hash + struct.pack(">q", time_ms) + key.sign(digest)


def entry_bytes(op, origin, seq, prev_hash, time_ms, record, content_hash):
    return bytes([1, op]) + origin + struct.pack(">Q", seq) + prev_hash + struct.pack(">q", time_ms) + record + content_hash


def entries_message(origin, public_key, head, newest, items):
    """items: (entry bytes, content bytes or b"")."""
    out = bytes([ENTRIES]) + origin + public_key + head + struct.pack(">QI", newest, len(items))
    for entry, content in items:
        out += entry + struct.pack(">I", len(content)) + content
    return out


class FakePeer:
    """Connects to a node's /api/v1/peer as the node id of `key` and does the handshake."""

    def __init__(self, port, key=None):
        self.key = key or Key()
        self.ws = Live(port, protocol="olievlek.peer.v1", path="/api/v1/peer")
        self.ws.sock.settimeout(10)

    def send(self, payload):
        self.ws.send_frame(0x2, payload)

    def recv(self, timeout=10):
        """The next binary message (type, body); raises wsclient.Closed when the node closes."""
        import time as _time
        deadline = _time.monotonic() + timeout
        while True:
            final, opcode, payload = self.ws._frame(deadline)
            if opcode == 0x9:
                self.ws.send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                from wsclient import Closed
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed(code, payload[2:].decode("utf-8", "replace"))
            if opcode == 0x2:
                return payload[0], payload[1:]

    def handshake(self):
        nonce = os.urandom(32)
        self.send(bytes([HELLO, 1]) + self.key.node + self.key.public + nonce)
        kind, body = self.recv()
        assert kind == HELLO, kind
        self.their_node = body[1:17]
        their_key, their_nonce = body[17:82], body[82:114]
        kind, proof = self.recv()
        assert kind == PROOF, kind
        digest = hashlib.sha256(b"olievlek/peer/v1" + their_nonce + self.key.node + self.their_node).digest()
        self.send(bytes([PROOF]) + self.key.sign(digest))
        # The node's proof over our nonce, checked with its key.
        r, s = int.from_bytes(proof[:32], "big"), int.from_bytes(proof[32:], "big")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), their_key)
        mine = hashlib.sha256(b"olievlek/peer/v1" + nonce + self.their_node + self.key.node).digest()
        public.verify(utils.encode_dss_signature(r, s), mine, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        kind, digest_body = self.recv()
        assert kind == DIGEST, kind
        return digest_body
