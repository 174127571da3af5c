"""Helpers for integration tests: real olievlekd processes on loopback, spoken to over HTTP.

Each test starts its own node(s) with a fresh data directory, finds the port the node bound from
its JSON-lines log ("node.ready"), and stops it at the end. Nothing here fakes the node: requests
go over real sockets to the real binary.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BINARY = os.environ.get("OLIEVLEKD")
SOURCE_DIR = os.environ.get(
    "OV_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
)
SANITIZED = os.environ.get("OV_SANITIZE", "OFF") in ("ON", "1", "TRUE", "true")

# Demo accounts of the embedded dataset (docs/demo-data.md).
DEMO_PASSWORD = "olievlek-demo"


class Failure(AssertionError):
    pass


def check(condition, message, *values):
    """Asserts with both sides printed, like libuv's ASSERT_EQ."""
    if not condition:
        detail = " | ".join(repr(v)[:2000] for v in values)
        raise Failure(f"{message}: {detail}" if values else message)


def check_eq(actual, expected, message):
    if actual != expected:
        raise Failure(f"{message}: expected {expected!r}, got {actual!r}"[:4000])


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


class Node:
    """One olievlekd process with its own data directory."""

    def __init__(self, demo=True, data_dir=None, extra_args=(), env=None, name="node"):
        check(BINARY and os.path.exists(BINARY), "OLIEVLEKD must name the built binary", BINARY)
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="olievlek-it-")
        self.demo = demo
        self.extra_args = list(extra_args)
        self.env = env
        self.name = name
        self.process = None
        self.port = None
        self.log_lines = []
        self.token = None

    def start(self, timeout=60):
        args = [BINARY, "--listen", "127.0.0.1:0", "--data-dir", self.data_dir, "--log-level", "info"]
        if self.demo:
            args.append("--demo")
        args += self.extra_args
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        ready = threading.Event()

        def read_log():
            for raw in self.process.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.log_lines.append(line)
                if self.port is None:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if entry.get("event") == "node.ready":
                        self.port = int(entry["port"])
                        ready.set()

        self.reader = threading.Thread(target=read_log, daemon=True)
        self.reader.start()
        deadline = time.time() + timeout
        while not ready.is_set():
            if self.process.poll() is not None:
                self.reader.join(2)
                raise Failure(f"{self.name} exited with {self.process.returncode} before it was "
                              f"ready:\n" + "\n".join(self.log_lines[-40:]))
            if time.time() > deadline:
                self.kill()
                raise Failure(f"{self.name} not ready within {timeout}s:\n" + "\n".join(self.log_lines[-40:]))
            ready.wait(0.05)
        return self

    def request(self, method, path, body=None, headers=None, token=None, timeout=30):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        all_headers = {}
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode("utf-8")
            all_headers["Content-Type"] = "application/json"
        elif isinstance(body, str):
            body = body.encode("utf-8")
        use_token = token if token is not None else self.token
        if use_token:
            all_headers["Authorization"] = "Bearer " + use_token
        if headers:
            all_headers.update(headers)
        try:
            conn.request(method, path, body=body, headers=all_headers)
            raw = conn.getresponse()
            response = Response(raw.status, raw.getheaders(), raw.read())
        finally:
            conn.close()
        return response

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def login(self, username, password=DEMO_PASSWORD):
        r = self.post("/api/v1/session", {"username": username, "password": password}, token="")
        check_eq(r.status, 201, f"login of {username} ({r.body[:300]!r})")
        return r.json["token"]

    def as_user(self, username, password=DEMO_PASSWORD):
        self.token = self.login(username, password)
        return self.token

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise Failure(f"{self.name} did not stop within {timeout}s after {sig}")
        if self.process:
            self.reader.join(5)
        return self.process.returncode if self.process else None

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def cleanup(self):
        self.kill()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def check_log_clean(self):
        """Sanitizer reports and crashes show up on stderr."""
        text = "\n".join(self.log_lines)
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
            check(marker not in text, f"{self.name} reported {marker}", text[-4000:])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if exc[0] is not None:
            self.kill()
            if self.process:
                self.reader.join(5)
            print(f"--- last lines of {self.name}'s log (exit status {self.process.returncode if self.process else None}):")
            print("\n".join(self.log_lines[-30:]))
        try:
            if exc[0] is None:
                code = self.stop()
                self.check_log_clean()
                check_eq(code, 0, f"{self.name} exit status after SIGTERM")
        finally:
            self.cleanup()
        return False


def raw_exchange(port, data, timeout=10, read_until_close=True):
    """Sends raw bytes and returns what came back (for malformed-request tests)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if not read_until_close:
                break
        return b"".join(chunks)
    finally:
        s.close()


def run(tests):
    """Runs test functions in order; prints one line each and the closing summary line."""
    passed = failed = 0
    for test in tests:
        start = time.time()
        try:
            test()
        except Exception as exc:  # noqa: BLE001 - report every failure the same way
            failed += 1
            print(f"FAIL {test.__name__} ({time.time() - start:.1f}s): {type(exc).__name__}: {exc}")
            sys.stdout.flush()
        else:
            passed += 1
            print(f"ok   {test.__name__} ({time.time() - start:.1f}s)")
            sys.stdout.flush()
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)
