"""The offline clients' push (docs/protocol.md §9.2) against a real node: writes with an
Idempotency-Key are applied once however often they are retried (one after the other, at the same
time, across a restart), a key reused for another request is refused, a client may choose the id
of a record it creates, and a 412 shows the record as it is now."""

import os
import threading
import time

from olievlek import Node, check, check_eq, run
from test_log_verify import MURMELLIUS, crockford


def new_case(title="Leerlingen plannen hun eigen week"):
    return {
        "title": title,
        "schools": [MURMELLIUS],
        "summary": "Een team laat leerlingen in de onderbouw hun eigen weekplanning maken.",
        "phase": "adoptie",
    }


def log_entries(node):
    return node.get("/api/v1/node").json["log_entries"]


def keyed(key, **headers):
    return dict(headers, **{"Idempotency-Key": key})


def new_id(ms=None):
    ms = int(time.time() * 1000) if ms is None else ms
    return crockford(ms.to_bytes(6, "big") + os.urandom(10))


def test_retried_create_applies_once():
    with Node() as node:
        node.as_user("moderator")
        first = node.post("/api/v1/cases", new_case(), headers=keyed("m-1"))
        check_eq(first.status, 201, f"create ({first.body[:300]!r})")
        check_eq(first.header("idempotency-replayed"), None, "the first answer is no replay")
        entries = log_entries(node)
        again = node.post("/api/v1/cases", new_case(), headers=keyed("m-1"))
        check_eq(again.status, 201, "the retry is answered as the first time")
        check_eq(again.header("idempotency-replayed"), "true", "and says it is a replay")
        for name in ("etag", "location"):
            check_eq(again.header(name), first.header(name), f"the same {name}")
        check_eq(again.json, first.json, "the record as it is")
        check_eq(log_entries(node), entries, "nothing was applied again")
        # Another account's key of the same name is its own.
        other = node.post("/api/v1/cases", new_case(), headers=keyed("m-1"),
                          token=node.login("murmellius"))
        check_eq(other.status, 201, "keys are per account")
        check(other.json["id"] != first.json["id"], "a new record for the other account")


def test_retried_put_and_delete():
    with Node() as node:
        node.as_user("moderator")
        case = node.post("/api/v1/cases", new_case()).json
        path = f"/api/v1/cases/{case['id']}"
        changed = dict(case, phase="implementatie")
        r = node.put(path, changed, headers=keyed("put-1", **{"If-Match": '"1"'}))
        check_eq(r.status, 200, f"put ({r.body[:300]!r})")
        check_eq(r.header("etag"), '"2"', "version 2")
        entries = log_entries(node)
        # The retry's If-Match is stale now; the key still makes it the same request.
        r = node.put(path, changed, headers=keyed("put-1", **{"If-Match": '"1"'}))
        check_eq((r.status, r.header("etag"), r.header("idempotency-replayed")), (200, '"2"', "true"),
                 "a retried PUT is answered as the first time")
        check_eq(log_entries(node), entries, "and not applied again")
        r = node.delete(path, headers=keyed("del-1", **{"If-Match": '"2"'}))
        check_eq(r.status, 204, "delete")
        r = node.delete(path, headers=keyed("del-1", **{"If-Match": '"2"'}))
        check_eq((r.status, r.header("etag"), r.header("idempotency-replayed")), (204, '"3"', "true"),
                 "a retried DELETE")
        r = node.delete(path, headers={"If-Match": '"3"'})
        check_eq(r.status, 410, "a new DELETE of a deleted record")
        r = node.put(path, changed, headers={"If-Match": '"3"'})
        check_eq(r.status, 410, "a PUT to a deleted record")

        # The key used again for another request.
        other = node.post("/api/v1/cases", new_case()).json
        r = node.put(f"/api/v1/cases/{other['id']}", dict(other, summary="Een ander team werkte dit verslag bij."),
                     headers=keyed("put-1", **{"If-Match": '"1"'}))
        check_eq(r.status, 422, "a key reused for another record")
        check_eq(r.json["errors"][0]["field"], "Idempotency-Key", "the problem names the header")
        r = node.post("/api/v1/cases", new_case(), headers=keyed("del-1"))
        check_eq(r.status, 422, "a key reused with another method")
        for bad in ("", "a b", "x" * 65, "sleutel/1", "é"):
            r = node.post("/api/v1/cases", new_case(), headers={"Idempotency-Key": bad})
            if bad == "":
                continue  # an empty header is as good as none to http.client and lws
            check_eq(r.status, 400, f"a malformed key {bad!r}")


def test_concurrent_retries_apply_once():
    with Node() as node:
        token = node.login("moderator")
        entries = log_entries(node)
        answers = []

        def push():
            answers.append(node.post("/api/v1/cases", new_case("Tegelijk verstuurd"),
                                     headers=keyed("same-time"), token=token))

        threads = [threading.Thread(target=push) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check_eq({a.status for a in answers}, {201}, "every retry is answered 201")
        check_eq(len({a.json["id"] for a in answers}), 1, "all name one record")
        check_eq(sum(1 for a in answers if a.header("idempotency-replayed") is None), 1,
                 "exactly one was applied")
        check_eq(log_entries(node), entries + 1, "one log entry")


def test_keys_survive_a_restart():
    data_dir = None
    with Node() as node:
        data_dir = node.data_dir
        node.own_dir = False
        node.as_user("moderator")
        first = node.post("/api/v1/cases", new_case(), headers=keyed("durable-1"))
        check_eq(first.status, 201, "create")
    try:
        with Node(demo=False, data_dir=data_dir) as node:
            node.as_user("moderator")
            entries = log_entries(node)
            again = node.post("/api/v1/cases", new_case(), headers=keyed("durable-1"))
            check_eq((again.status, again.header("idempotency-replayed")), (201, "true"),
                     "replayed after a restart")
            check_eq(again.header("location"), first.header("location"), "the same record")
            check_eq(log_entries(node), entries, "nothing applied")
    finally:
        import shutil
        shutil.rmtree(data_dir, ignore_errors=True)


def test_client_chosen_ids():
    with Node() as node:
        node.as_user("moderator")
        chosen = new_id()
        r = node.post("/api/v1/cases", dict(new_case(), id=chosen))
        check_eq(r.status, 201, f"a chosen id ({r.body[:300]!r})")
        check_eq(r.json["id"], chosen, "the record has the chosen id")
        check_eq(r.header("location"), f"/api/v1/cases/{chosen}", "Location")
        check_eq(node.get(f"/api/v1/cases/{chosen}").json, r.json, "readable under it")
        r = node.post("/api/v1/cases", dict(new_case(), id=chosen))
        check_eq(r.status, 409, "an id in use")
        check_eq(r.header("content-type"), "application/problem+json", "a problem")
        lesson = {"title": "Een les", "school": MURMELLIUS, "summary": "Samenvatting van de les."}
        r = node.post("/api/v1/lessons", dict(lesson, id=chosen))
        check(r.status in (409, 422), "an id in use by another kind", r)
        for when, what in ((int(time.time() * 1000) + 2 * 86400 * 1000, "two days ahead"),
                           (int(time.time() * 1000) - 3 * 86400 * 1000, "three days ago")):
            r = node.post("/api/v1/cases", dict(new_case(), id=new_id(when)))
            check_eq(r.status, 422, what)
            check_eq([e["field"] for e in r.json["errors"]], ["id"], f"{what}: names id")
        r = node.post("/api/v1/cases", dict(new_case(), id="not-an-id"))
        check_eq(r.status, 422, "a malformed id")
        # A retry of a create with a chosen id is a replay, not a 409.
        again_id = new_id()
        first = node.post("/api/v1/cases", dict(new_case(), id=again_id), headers=keyed("c-1"))
        again = node.post("/api/v1/cases", dict(new_case(), id=again_id), headers=keyed("c-1"))
        check_eq((first.status, again.status, again.header("idempotency-replayed")),
                 (201, 201, "true"), "a retried create with a chosen id")


def test_stale_if_match_shows_current():
    with Node() as node:
        node.as_user("moderator")
        case = node.post("/api/v1/cases", new_case()).json
        path = f"/api/v1/cases/{case['id']}"
        check_eq(node.put(path, dict(case, summary="Een ander team werkte dit verslag bij."), headers={"If-Match": '"1"'}).status,
                 200, "someone else's change")
        r = node.put(path, dict(case, phase="implementatie"), headers={"If-Match": '"1"'})
        check_eq(r.status, 412, "a stale If-Match")
        check_eq(r.json["current"], node.get(path).json, "current is the record as GET gives it")
        check_eq(r.header("etag"), '"2"', "ETag of the current version")
        r = node.delete(path, headers={"If-Match": '"1"'})
        check_eq((r.status, r.json["current"]["version"]), (412, 2), "DELETE too")


if __name__ == "__main__":
    run([
        test_retried_create_applies_once,
        test_retried_put_and_delete,
        test_concurrent_retries_apply_once,
        test_keys_survive_a_restart,
        test_client_chosen_ids,
        test_stale_if_match_shows_current,
    ])
