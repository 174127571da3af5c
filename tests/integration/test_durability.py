"""Nothing acknowledged is ever lost: the node is killed with SIGKILL (or stopped with SIGTERM)
in the middle of a write load, restarted on the same data, and every write it acknowledged is
there, and the origin log is intact."""

import http.client
import json
import random
import signal
import threading
import time

# Murmellius Gymnasium, in the demo moderator's region.
MURMELLIUS = "01KDVDNA081M10000000000008"

from olievlek import Node, check, check_eq, run

MODERATOR = "moderator"


def school_id(node):
    return MURMELLIUS


def write_load(node, token, school, acknowledged, stop, worker):
    """Posts cases until the node goes away; records the ids it acknowledged with 201."""
    n = 0
    while not stop.is_set():
        body = json.dumps({
            "title": f"Belasting {worker}-{n}",
            "schools": [school],
            "summary": "Geschreven tijdens een duurzaamheidstest.",
            "phase": "adoptie",
        })
        try:
            conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
            conn.request("POST", "/api/v1/cases", body=body, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            r = conn.getresponse()
            data = r.read()
            conn.close()
        except (OSError, http.client.HTTPException):
            if node.process.poll() is not None:
                return
            continue
        if r.status == 201:
            acknowledged.append(json.loads(data)["id"])
        elif r.status != 503:
            raise AssertionError(f"unexpected answer {r.status}: {data[:200]!r}")
        n += 1


def load_then(node, sig, seconds, workers=16):
    token = node.login(MODERATOR)
    school = school_id(node)
    acknowledged = []
    stop = threading.Event()
    threads = [threading.Thread(target=write_load, args=(node, token, school, acknowledged, stop, w))
               for w in range(workers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    node.process.send_signal(sig)
    node.process.wait(60)
    stop.set()
    for t in threads:
        t.join(30)
    return acknowledged


def verify(node, acknowledged):
    missing = [i for i in acknowledged if node.get(f"/api/v1/cases/{i}").status != 200]
    check_eq(missing, [], "acknowledged records missing after restart")
    info = node.get("/api/v1/node").json
    check(info["head"]["seq"] >= len(acknowledged), "the log holds every write", info["head"])


def test_sigkill_during_load():
    rng = random.Random(20261122)
    node = Node(name="victim").start()
    try:
        total = 0
        for round_ in range(3):
            acknowledged = load_then(node, signal.SIGKILL, rng.uniform(0.5, 2.0))
            check(len(acknowledged) > 10, "the load got writes acknowledged", len(acknowledged))
            total += len(acknowledged)
            node = Node(data_dir=node.data_dir, name=f"restart-{round_}")
            node.own_dir = round_ == 2
            node.start()
            verify(node, acknowledged)
        print(f"  {total} acknowledged writes survived 3 SIGKILLs")
        node.stop()
        node.check_log_clean()
    finally:
        node.cleanup()


def test_sigterm_finishes_acknowledged_work():
    node = Node(name="graceful").start()
    try:
        acknowledged = load_then(node, signal.SIGTERM, 1.0)
        check_eq(node.process.returncode, 0, "exit status after SIGTERM")
        node.check_log_clean()
        text = "\n".join(node.log_lines)
        check("node.stopped" in text, "the node logged its orderly stop", text[-2000:])
        restarted = Node(data_dir=node.data_dir, name="after-sigterm").start()
        restarted.own_dir = True
        node = restarted
        verify(node, acknowledged)
        node.stop()
    finally:
        node.cleanup()


if __name__ == "__main__":
    run([test_sigkill_during_load, test_sigterm_finishes_acknowledged_work])
