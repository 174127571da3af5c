"""Bad input never crashes the node, never stores anything, and always gets a clear 4xx
problem document that says what was wrong and where."""

import json
import socket
import time

from olievlek import Node, check, check_eq, raw_exchange, run

MODERATOR = "moderator"


def murmellius_id(node):
    for school in node.get("/api/v1/schools?limit=200").json["items"]:
        if "Murmellius" in school["name"]:
            return school["id"]
    raise AssertionError("no Murmellius school in the demo data")


def valid_case(school_id):
    return {
        "title": "Tussenjaar voor leerlingen die even niet verder kunnen",
        "schools": [school_id],
        "summary": "Een intermezzo-jaar binnen de school.",
        "phase": "implementatie",
    }


def post_raw(node, body, content_type="application/json"):
    headers = {"Content-Type": content_type} if content_type else {}
    return node.request("POST", "/api/v1/cases", body=body, headers=headers)


def check_problem(r, status, what):
    check_eq(r.status, status, f"{what} ({r.body[:300]!r})")
    check_eq(r.header("content-type"), "application/problem+json", f"{what}: content type")
    doc = r.json
    for key in ("type", "title", "status", "detail"):
        check(key in doc, f"{what}: problem member {key}", doc)
    check_eq(doc["status"], status, f"{what}: status member")
    return doc


def test_malformed_bodies():
    with Node() as node:
        node.as_user(MODERATOR)
        school = murmellius_id(node)
        newest = node.get("/api/v1/changes?since=0&limit=1").json["newest"]
        good = json.dumps(valid_case(school))

        doc = check_problem(post_raw(node, '{"title": "x",\n  "phase": '), 400, "truncated JSON")
        check("line 2" in doc["detail"], "truncated JSON: line named", doc["detail"])
        check("column" in doc["detail"], "truncated JSON: column named", doc["detail"])
        check_problem(post_raw(node, b'{"title": "\xff\xfe"}'), 400, "invalid UTF-8")
        check_problem(post_raw(node, '{"title": "a\\u0000b"}'), 400, "escaped NUL")
        check_problem(post_raw(node, b'{"title": "a\x00b"}'), 400, "raw NUL")
        doc = check_problem(post_raw(node, '{"title": "a", "title": "b"}'), 400, "duplicate keys")
        check("title" in doc["detail"], "duplicate key named", doc["detail"])
        check_problem(post_raw(node, "[" * 10000 + "]" * 10000), 400, "10,000-deep nesting")
        check_problem(post_raw(node, good + "garbage"), 400, "trailing data")
        check_problem(post_raw(node, good, "text/plain"), 415, "wrong content type")
        check_problem(post_raw(node, good, None), 415, "no content type")

        bad_types = dict(valid_case(school), title=42, schools="not-a-list", phase="klaar")
        doc = check_problem(node.post("/api/v1/cases", bad_types), 422, "wrong types")
        fields = {e["field"] for e in doc["errors"]}
        check({"title", "schools", "phase"} <= fields, "every wrong field named", doc["errors"])
        check(all(e["message"] for e in doc["errors"]), "every error has a message")

        unknown = dict(valid_case(school), colour="blue")
        doc = check_problem(node.post("/api/v1/cases", unknown), 422, "unknown field")
        check_eq([e["field"] for e in doc["errors"]], ["colour"], "unknown field named")

        missing = {"title": "Alleen een titel"}
        doc = check_problem(node.post("/api/v1/cases", missing), 422, "missing fields")
        check({"schools", "summary", "phase"} <= {e["field"] for e in doc["errors"]},
              "missing required fields named", doc["errors"])

        dangling = dict(valid_case(school), schools=["01JD3M5Q8X7Y2Z9ABCDEFGHJKM"])
        check_problem(node.post("/api/v1/cases", dangling), 422, "reference to no school")

        huge = dict(valid_case(school), summary="x" * 900_000)
        check_problem(node.post("/api/v1/cases", huge), 422, "huge string within the body limit")

        english = node.post("/api/v1/cases", missing, headers={"Accept-Language": "en-GB,en;q=0.9"})
        check("required" in json.dumps(english.json).lower(), "English messages on request",
              english.json)

        check_eq(node.get("/api/v1/changes?since=0&limit=1").json["newest"], newest,
                 "nothing was stored by any bad request")
        r = node.post("/api/v1/cases", valid_case(school))
        check_eq(r.status, 201, "the node still takes a good record")


def test_oversized_and_slow():
    with Node(extra_args=["--request-timeout", "2"]) as node:
        token = node.login(MODERATOR)
        # A 100 MB body is refused from its Content-Length, before it is read.
        head = (
            "POST /api/v1/cases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {100 * 1024 * 1024}\r\n\r\n"
        ).encode()
        start = time.time()
        reply = raw_exchange(node.port, head + b"{" * 4096, timeout=10)
        check(reply.startswith(b"HTTP/1.1 413"), "100 MB body refused", reply[:200])
        check(time.time() - start < 5, "refused without reading it")

        # A sender that stops half-way is cut off with 408 and does not hold the node.
        s = socket.create_connection(("127.0.0.1", node.port), timeout=10)
        s.sendall(b"POST /api/v1/cases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"title\":")
        start = time.time()
        reply = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except socket.timeout:
            pass
        s.close()
        check(time.time() - start < 8, "slow sender cut off in time", time.time() - start)
        check(reply == b"" or reply.startswith(b"HTTP/1.1 408"), "408 for a slow sender", reply[:200])

        # Garbage that is not HTTP at all.
        raw_exchange(node.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(300), timeout=5)
        raw_exchange(node.port, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", timeout=5)
        check_eq(node.get("/healthz").status, 200, "the node keeps serving after all that")


if __name__ == "__main__":
    run([test_malformed_bodies, test_oversized_and_slow])
