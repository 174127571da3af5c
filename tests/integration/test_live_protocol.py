"""Live updates over a real websocket to a real node (docs/protocol.md section 7): refusals,
subscriptions and filters, drafts, resume without gap or duplicate through random disconnects,
the slow-reader close, bad messages and the caps."""

import http.client
import json
import os
import random
import resource
import socket
import threading
import time

from olievlek import SANITIZED, Node, check, check_eq, run
from wsclient import Closed, Live, upgrade_request

REGION_NK = "01KDVDNA011M0G000000000001"
MURMELLIUS = "01KDVDNA081M10000000000008"
CLUSIUS = "01KDVDNA0B1M1000000000000B"


def new_case(node, title, school=MURMELLIUS, status=None, summary="Een korte samenvatting."):
    body = {"title": title, "schools": [school], "summary": summary, "phase": "adoptie"}
    if status:
        body["status"] = status
    r = node.post("/api/v1/cases", body)
    check_eq(r.status, 201, f"create {title} ({r.body[:200]!r})")
    return r.json


def open_live(node, **kw):
    live = Live(node.port, **kw)
    check_eq(live.status, 101, f"upgrade ({live.head[:200]})")
    check(live.upgraded, "Sec-WebSocket-Accept matches the key", live.head)
    welcome = live.recv()
    check_eq(welcome["type"], "welcome", "first message")
    return live, welcome


def subscribe(live, sub, filter=None, since=None):
    message = {"type": "subscribe", "id": sub}
    if filter is not None:
        message["filter"] = filter
    if since is not None:
        message["since"] = since
    live.send(message)
    answer = live.recv()
    check_eq(answer.get("type"), "subscribed", f"subscribe {sub}: {answer}")
    return answer


def test_refusals():
    with Node() as node:
        for protocol, path in ((None, "/api/v1/live"), ("chat", "/api/v1/live"),
                               ("olievlek.v1", "/api/v1/cases")):
            live = Live(node.port, protocol=protocol) if path == "/api/v1/live" else None
            if live is None:
                s = socket.create_connection(("127.0.0.1", node.port), timeout=10)
                request, _ = upgrade_request(path=path)
                s.sendall(request)
                data = s.recv(65536).decode()
                s.close()
                check(data.startswith("HTTP/1.1 400"), "upgrade on another path is refused", data)
                continue
            check_eq(live.status, 400, f"upgrade with subprotocol {protocol!r}")
            check("application/problem+json" in live.head, "refusal is a problem document", live.head)
            body = json.loads(live.buf.decode())
            check("olievlek.v1" in body["detail"], "the refusal names the subprotocol", body)
            live.close()


def test_subscriptions_and_filters():
    with Node() as node:
        node.as_user("moderator")
        live, welcome = open_live(node)
        check(welcome["seq"] > 0 and welcome["limits"]["max_subscriptions"] >= 1, "welcome", welcome)
        subscribe(live, "clusius", {"kind": ["case"], "school": [CLUSIUS]})
        subscribe(live, "lessons", {"kind": ["lesson"]})
        subscribe(live, "nk-cases", {"kind": ["case"], "region": [REGION_NK]})
        case = new_case(node, "Alleen voor Clusius", school=CLUSIUS)
        got = {}
        for _ in range(2):
            m = live.recv()
            check_eq(m["type"], "change", f"change message {m}")
            got[m["sub"]] = m
        check_eq(set(got), {"clusius", "nk-cases"}, "exactly the matching subscriptions")
        check_eq(got["clusius"]["record"]["id"], case["id"], "the record arrives")
        check(got["clusius"]["seq"] > welcome["seq"], "positions grow", got, welcome)
        # A case of another school matches only the region subscription.
        other = new_case(node, "Murmellius-case")
        m = live.recv()
        check_eq((m["sub"], m["record"]["id"]), ("nk-cases", other["id"]), "region filter only")
        live.send({"type": "unsubscribe", "id": "nk-cases"})
        check_eq(live.recv()["type"], "unsubscribed", "unsubscribe answer")
        new_case(node, "Niemand luistert")
        live.send({"type": "ping", "id": "p1"})
        m = live.recv()
        check_eq(m, {"type": "pong", "id": "p1"}, "nothing arrives after unsubscribing")
        live.close()


def test_text_query_subscriptions():
    with Node() as node:
        node.as_user("moderator")
        live, _ = open_live(node)
        subscribe(live, "q", {"kind": ["case"], "q": "samenwerkingen creatieve"})
        subscribe(live, "tussen", {"q": "Tussenjaar"})
        new_case(node, "Geen van beide woorden")
        hit = new_case(node, "Samenwerking rond een creatief project")
        jaar = new_case(node, "Een tussenjaar", summary="Het intermezzo als tussenjaar.")
        got = [(m["sub"], m["record"]["id"]) for m in
               live.recv_until(lambda m: m["type"] == "change" and m["sub"] == "tussen")]
        check_eq(got, [("q", hit["id"]), ("tussen", jaar["id"])],
                 "word forms meet (samenwerkingen/samenwerking, creatieve/creatief), all words needed")
        for bad in ("de het een", "", "x" * 300, 7):
            live.send({"type": "subscribe", "id": "bad", "filter": {"q": bad}})
            m = live.recv()
            check_eq((m["type"], m["status"]), ("error", 400), f"q={bad!r} is refused: {m}")
        live.close()


def test_drafts_reach_only_readers():
    with Node() as node:
        token = node.login("moderator")
        anonymous, _ = open_live(node)
        cookie, _ = open_live(node, headers={"Cookie": f"ov_session={token}"})
        later, _ = open_live(node)
        later.send({"type": "auth", "token": token})
        check_eq(later.recv()["type"], "auth", "auth message accepted")
        for live in (anonymous, cookie, later):
            subscribe(live, "all", {"kind": ["case"]})
        node.token = token
        draft = new_case(node, "Nog geheim concept", status="draft")
        m = anonymous.recv()
        check_eq(m["type"], "change", "anonymous subscriber is told a record changed")
        check(m["record"].get("hidden") is True and "title" not in m["record"],
              "but not its content", m)
        for live in (cookie, later):
            m = live.recv()
            check_eq(m["record"].get("title"), "Nog geheim concept", "the moderator sees the draft")
            check_eq(m["record"]["id"], draft["id"], "same record")
        # A filter on content never matches a hidden record: no leak through the filter.
        theme_watch, _ = open_live(node)
        subscribe(theme_watch, "t", {"kind": ["case"], "school": [MURMELLIUS]})
        new_case(node, "Ander concept", status="draft")
        theme_watch.send({"type": "ping"})
        check_eq(theme_watch.recv()["type"], "pong", "a content filter skips hidden changes")
        for live in (anonymous, cookie, later, theme_watch):
            live.close()


def test_resume_exactly_what_was_missed():
    with Node() as node:
        node.as_user("moderator")
        live, welcome = open_live(node)
        subscribe(live, "c", {"kind": ["case"]})
        first = new_case(node, "Voor de onderbreking")
        seen = live.recv()
        check_eq(seen["record"]["id"], first["id"], "live before the break")
        live.close()
        missed = [new_case(node, f"Gemist {i}")["id"] for i in range(5)]
        live, _ = open_live(node)
        subscribe(live, "c", {"kind": ["case"]}, since=seen["seq"])
        messages = live.recv_until(lambda m: m["type"] == "caught_up")
        ids = [m["record"]["id"] for m in messages if m["type"] == "change"]
        check_eq(ids, missed, "exactly the missed changes, in order")
        after = new_case(node, "Na het inhalen")
        check_eq(live.recv()["record"]["id"], after["id"], "then live again")
        # Too old is not a thing with a compacted feed; ahead of the feed is.
        subscribe_msg = {"type": "subscribe", "id": "x", "since": 10 ** 12}
        live.send(subscribe_msg)
        m = live.recv()
        check_eq((m["type"], m["sub"]), ("reset", "x"), "a position ahead of the feed resets")
        live.close()


def test_random_disconnects_lose_and_double_nothing():
    rng = random.Random(6)
    with Node() as node:
        node.as_user("moderator")
        subscribers = []
        for i in range(4):
            live, welcome = open_live(node)
            subscribe(live, "s", {"kind": ["case"]})
            subscribers.append({"live": live, "pos": welcome["seq"], "ids": [], "drops": 0})
        published = []
        deadline = time.monotonic() + 90
        for n in range(60):
            published.append(new_case(node, f"Stroom {n}")["id"])
            for sub in subscribers:
                if sub["live"] is None:
                    if rng.random() < 0.5:  # come back, resume from the last position seen
                        sub["live"], _ = open_live(node)
                        subscribe(sub["live"], "s", {"kind": ["case"]}, since=sub["pos"])
                    continue
                # read whatever is there, then maybe drop the connection mid-stream
                try:
                    while True:
                        m = sub["live"].recv(timeout=0.05)
                        if m["type"] == "change":
                            sub["ids"].append(m["record"]["id"])
                            sub["pos"] = m["seq"]
                except TimeoutError:
                    pass
                if rng.random() < 0.1:
                    sub["live"].close()
                    sub["live"] = None
                    sub["drops"] += 1
            check(time.monotonic() < deadline, "the stream finished in time")
        for sub in subscribers:
            if sub["live"] is None:
                sub["live"], _ = open_live(node)
                subscribe(sub["live"], "s", {"kind": ["case"]}, since=sub["pos"])
            sub["live"].send({"type": "ping", "id": "end"})
            for m in sub["live"].recv_until(lambda m: m.get("id") == "end" and m["type"] == "pong"):
                if m["type"] == "change":
                    sub["ids"].append(m["record"]["id"])
            check_eq(sub["ids"], published, f"subscriber with {sub['drops']} drops has the stream")
            sub["live"].close()
        check(sum(s["drops"] for s in subscribers) > 0, "the test did disconnect someone")


def test_slow_reader_is_closed_and_can_resume():
    with Node(extra_args=["--live-queue", "8"]) as node:
        node.as_user("moderator")
        slow, welcome = open_live(node, rcvbuf=65536)
        subscribe(slow, "s", {"kind": ["case"]})
        # Enough bytes to fill the kernel's buffers on both sides (several MB on loopback) and
        # then the node's queue; one keep-alive connection keeps this quick.
        summary = "Een lange samenvatting die de buffers vult. " * 88
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
        ids = []
        for i in range(1300):
            body = {"title": f"Groot {i}", "schools": [MURMELLIUS], "summary": summary,
                    "phase": "adoptie"}
            conn.request("POST", "/api/v1/cases", json.dumps(body),
                         {"Content-Type": "application/json",
                          "Authorization": "Bearer " + node.token})
            r = conn.getresponse()
            check_eq(r.status, 201, "bulk create")
            ids.append(json.loads(r.read())["id"])
        conn.close()
        changes, closed = [], None
        try:
            while True:
                m = slow.recv(timeout=5)
                if m["type"] == "change":
                    changes.append(m)
        except Closed as c:
            closed = c
        check(closed is not None and closed.code == 4001, "closed as a slow reader (4001)", closed)
        check("resume from seq" in closed.reason, "the reason names where to resume", closed.reason)
        last = changes[-1]["seq"] if changes else welcome["seq"]
        again, _ = open_live(node)
        subscribe(again, "s", {"kind": ["case"]}, since=last)
        rest = again.recv_until(lambda m: m["type"] == "caught_up", timeout=60)
        got = [m["record"]["id"] for m in changes] + [m["record"]["id"] for m in rest
                                                     if m["type"] == "change"]
        check_eq(got, ids, "what was read plus the resume is every change once")
        metrics = node.get("/metrics").body.decode()
        check("olievlek_live_closed_slow_total 1" in metrics, "counted in /metrics", metrics[-800:])
        again.close()


def test_memory_bounded_with_non_readers():
    """2,000 subscribers that never read while large changes pour in: each connection's queue is
    capped, so the node's memory grows by a bounded amount; it closes them as slow (4001) and
    keeps serving."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    count = 2000
    if hard != resource.RLIM_INFINITY and hard < count + 200:
        count = hard - 200
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, count + 200), hard))
    args = ["--live-queue", "16", "--live-max-per-address", "5000",
            "--live-handshakes-per-s", "5000"]
    # Under AddressSanitizer the RSS would also count the freed memory ASan holds back (up to
    # 256 MB) to catch use after free; that says nothing about the node's own memory.
    env = None
    if SANITIZED:
        env = {"ASAN_OPTIONS": ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                       "quarantine_size_mb=0"]))}
    with Node(extra_args=args, env=env) as node:
        node.as_user("moderator")

        def rss_kb():
            with open(f"/proc/{node.process.pid}/status") as status:
                return next(int(l.split()[1]) for l in status if l.startswith("VmRSS"))

        frame = b'{"type":"subscribe","id":"s"}'
        subscribe_frame = bytes([0x81, 0x80 | len(frame)]) + bytes(4) + frame  # zero mask
        sockets = []
        try:
            for _ in range(count):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", node.port))
                s.sendall(upgrade_request()[0])
                sockets.append(s)
            time.sleep(1)
            for s in sockets:
                s.sendall(subscribe_frame)
            deadline = time.monotonic() + 30
            while True:
                metrics = node.get("/metrics").body.decode()
                if f"olievlek_live_subscriptions {count}" in metrics or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            check(f"olievlek_live_subscriptions {count}" in metrics, "all subscribed", count)
            before = rss_kb()
            summary = "Een lange samenvatting die de buffers vult. " * 88
            conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
            peak = before
            for i in range(300):
                body = {"title": f"Vloed {i}", "schools": [MURMELLIUS], "summary": summary,
                        "phase": "adoptie"}
                conn.request("POST", "/api/v1/cases", json.dumps(body),
                             {"Content-Type": "application/json",
                              "Authorization": "Bearer " + node.token})
                r = conn.getresponse()
                r.read()
                check_eq(r.status, 201, "writes go on while subscribers do not read")
                if i % 10 == 0:
                    peak = max(peak, rss_kb())
            conn.close()
            metrics = node.get("/metrics").body.decode()
            check(f"olievlek_live_closed_slow_total {count}" in metrics,
                  "every non-reader was closed as slow", metrics[-600:])
            # Queues are capped at 16 changes of ~4 KB shared between connections, plus one
            # message lws holds per connection: far below 64 MB for 2,000 connections.
            check(peak - before < 64 * 1024, "node memory stays bounded (KB)", before, peak)
            check_eq(node.get("/healthz").status, 200, "the node keeps serving")
        finally:
            for s in sockets:
                s.close()


def test_heartbeats_keep_answering_clients_and_close_silent_ones():
    with Node(extra_args=["--live-heartbeat-s", "1"]) as node:
        talker, _ = open_live(node)  # wsclient answers pings, as a browser does
        silent = socket.create_connection(("127.0.0.1", node.port), timeout=10)
        silent.sendall(upgrade_request()[0])
        beats = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if talker.recv(timeout=0.5)["type"] == "heartbeat":
                    beats += 1
            except TimeoutError:
                pass
        check(beats >= 3, "heartbeats arrive every second", beats)
        data = b""
        silent.settimeout(5)
        try:
            while True:
                chunk = silent.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        check(b"\x88" in data and b"nothing heard" in data,
              "a client that answers nothing is closed (4002)", data[-200:])
        talker.send({"type": "ping", "id": "still"})
        check_eq(talker.recv_until(lambda m: m["type"] == "pong")[-1]["id"], "still",
                 "the answering client is still connected")
        talker.close()
        silent.close()


def test_heartbeats_keep_their_period_idle_and_busy():
    """Heartbeats arrive at the period the welcome announces, on an idle node (the heartbeat
    timer alone wakes the node) and while HTTP requests keep it busy. A lost timer wakeup in
    the node's loop (server/http.c, on_uv_timer_due) used to stop them for up to a minute."""
    with Node(extra_args=["--live-heartbeat-s", "1"]) as node:
        live, welcome = open_live(node)
        period = welcome["heartbeat_s"]
        check_eq(period, 1, "the welcome announces the heartbeat period")

        def gaps(seconds):
            beats, last, worst = 0, None, 0.0
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                try:
                    m = live.recv(timeout=0.25)
                except TimeoutError:
                    continue
                if m["type"] == "heartbeat":
                    now = time.monotonic()
                    if last is not None:
                        worst = max(worst, now - last)
                    beats, last = beats + 1, now
            if last is not None:
                worst = max(worst, time.monotonic() - last)
            return beats, worst

        beats, worst = gaps(6)
        check(beats >= 5 and worst < 2 * period, "idle: heartbeats keep their period", beats, worst)

        stop = threading.Event()
        served = []

        def busy():
            conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
            while not stop.is_set():
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                served.append(1)
            conn.close()

        worker = threading.Thread(target=busy)
        worker.start()
        try:
            beats, worst = gaps(6)
        finally:
            stop.set()
            worker.join()
        check(len(served) > 100, "the node was kept busy", len(served))
        check(beats >= 5 and worst < 2 * period, "busy: heartbeats keep their period", beats, worst)
        live.close()


def test_handshake_rate_is_capped():
    with Node(extra_args=["--live-handshakes-per-s", "3"]) as node:
        opened = [open_live(node)[0] for _ in range(3)]
        refused = Live(node.port)
        check_eq(refused.status, 429, "a fourth handshake within the second is refused")
        check("retry-after:" in refused.head.lower(), "with Retry-After", refused.head)
        refused.close()
        time.sleep(1.1)
        later, _ = open_live(node)  # the bucket refills
        for live in opened + [later]:
            live.close()


def test_bad_messages_and_caps():
    with Node(extra_args=["--live-max-per-address", "5"]) as node:
        live, _ = open_live(node)
        for raw, status in ((b"{", 400), (b"[]", 400), (b'{"type":"dance"}', 400),
                            (b'{"type":"subscribe"}', 400),
                            (b'{"type":"subscribe","id":"a","filter":{"colour":["x"]}}', 400),
                            (b'{"type":"subscribe","id":"a","since":-1}', 400),
                            (b'{"type":"unsubscribe","id":"none"}', 404),
                            (b'{"type":"auth","token":"nope"}', 401)):
            live.send(raw)
            m = live.recv()
            check_eq((m["type"], m["status"]), ("error", status), f"answer to {raw!r}: {m}")
        for i in range(32):
            subscribe(live, f"s{i}")
        live.send({"type": "subscribe", "id": "one-too-many"})
        m = live.recv()
        check_eq((m["type"], m["status"]), ("error", 429), "subscriptions are capped")
        live.send({"type": "subscribe", "id": "s0"})
        check_eq(live.recv()["status"], 409, "a subscription id is used once")
        live.send(b'{"type":"ping","pad":"' + b"x" * 20000 + b'"}')
        try:
            live.recv()
            check(False, "an over-long message closes the connection")
        except Closed as c:
            check_eq(c.code, 1009, "close code for an over-long message")
        others = [open_live(node)[0] for _ in range(5)]
        refused = Live(node.port)
        check_eq(refused.status, 429, "connections per address are capped")
        check("retry-after:" in refused.head.lower(), "with Retry-After", refused.head)
        for other in others:
            other.close()
        check_eq(node.get("/healthz").status, 200, "the node keeps serving")


if __name__ == "__main__":
    run([test_refusals, test_subscriptions_and_filters, test_text_query_subscriptions,
         test_drafts_reach_only_readers,
         test_resume_exactly_what_was_missed, test_random_disconnects_lose_and_double_nothing,
         test_slow_reader_is_closed_and_can_resume, test_memory_bounded_with_non_readers,
         test_heartbeats_keep_answering_clients_and_close_silent_ones,
         test_heartbeats_keep_their_period_idle_and_busy,
         test_handshake_rate_is_capped, test_bad_messages_and_caps])
