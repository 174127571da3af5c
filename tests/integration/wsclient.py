"""A small RFC 6455 websocket client for tests of /api/v1/live (standard library only).

Client frames are masked as the RFC requires; fragmented messages are joined; pings are answered
with pongs, as browsers do. Every wait has a deadline.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Closed(Exception):
    """The node closed the websocket; code and reason from its close frame (None if none)."""

    def __init__(self, code, reason):
        super().__init__(f"closed {code} {reason!r}")
        self.code = code
        self.reason = reason


def upgrade_request(path="/api/v1/live", protocol="olievlek.v1", headers=None):
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if protocol:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), key


class Live:
    def __init__(self, port, protocol="olievlek.v1", headers=None, timeout=10, rcvbuf=None,
                 path="/api/v1/live"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        request, key = upgrade_request(path=path, protocol=protocol, headers=headers)
        self.sock.sendall(request)
        self.buf = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError("no upgrade answer")
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode("latin-1")
        self.status = int(self.head.split(" ")[1]) if self.head else 0
        accept = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()
        self.upgraded = self.status == 101 and accept in self.head

    def send(self, message):
        data = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.send_frame(0x1, data)

    def send_frame(self, opcode, data, final=True):
        mask = os.urandom(4)
        header = bytes([(0x80 if final else 0) | opcode])
        if len(data) < 126:
            header += bytes([0x80 | len(data)])
        elif len(data) < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", len(data))
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", len(data))
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _frame(self, deadline):
        while True:
            if len(self.buf) >= 2:
                n = self.buf[1] & 0x7F
                offset = {126: 4, 127: 10}.get(n, 2)
                if len(self.buf) >= offset and n == 126:
                    n = struct.unpack(">H", self.buf[2:4])[0]
                elif len(self.buf) >= offset and n == 127:
                    n = struct.unpack(">Q", self.buf[2:10])[0]
                if len(self.buf) >= offset and len(self.buf) >= offset + n:
                    first = self.buf[0]
                    payload = self.buf[offset:offset + n]
                    self.buf = self.buf[offset + n:]
                    return first & 0x80, first & 0x0F, payload
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise Closed(None, None)
            self.buf += chunk

    def recv(self, timeout=10):
        """The next message as a dict (pings answered on the way); raises Closed or TimeoutError."""
        deadline = time.monotonic() + timeout
        parts = b""
        while True:
            final, opcode, payload = self._frame(deadline)
            if opcode == 0x9:
                self.send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed(code, payload[2:].decode("utf-8", "replace"))
            parts += payload
            if final:
                return json.loads(parts)

    def recv_until(self, predicate, timeout=10, limit=100000):
        """Messages up to and including the first for which predicate is true."""
        seen = []
        deadline = time.monotonic() + timeout
        for _ in range(limit):
            message = self.recv(max(0.01, deadline - time.monotonic()))
            seen.append(message)
            if predicate(message):
                return seen
        raise AssertionError("message limit reached")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
