"""Record lifecycle over the REST API of a real node: create, read, replace with If-Match,
delete, lists with filters and cursors, the change feed, health and metrics."""

from olievlek import Node, check, check_eq, run

ADMIN = "admin"
MODERATOR = "moderator"


def find_school(node, name_part):
    cursor = None
    while True:
        path = "/api/v1/schools?limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = node.get(path).json
        for school in page["items"]:
            if name_part.lower() in school["name"].lower():
                return school
        cursor = page["next"]
        if not cursor:
            return None


def new_case(school_id, title="Leerlingen kiezen hun eigen leerroute"):
    return {
        "title": title,
        "schools": [school_id],
        "summary": "Een team van vier docenten laat leerlingen in de bovenbouw zelf hun route kiezen.",
        "phase": "adoptie",
        "themes": ["eigenaarschap", "maatwerk"],
        "scan": {"doel": {"innovatieteam": {"score": 4, "note": "Het doel is helder en gedeeld."}}},
    }


def test_lifecycle():
    with Node() as node:
        node.as_user(MODERATOR)
        school = find_school(node, "Murmellius")
        check(school is not None, "the demo data has Murmellius Gymnasium")
        before = node.get("/api/v1/changes?since=0&limit=1").json["newest"]

        r = node.post("/api/v1/cases", new_case(school["id"]))
        check_eq(r.status, 201, f"create {r.body[:400]!r}")
        case = r.json
        check_eq(r.header("etag"), '"1"', "ETag of a new record")
        check_eq(r.header("location"), f"/api/v1/cases/{case['id']}", "Location")
        check_eq(case["version"], 1, "version")
        check_eq(case["kind"], "case", "kind")
        check_eq(case["status"], "published", "a moderator's new record is published")
        check_eq(case["licence"], "CC-BY-4.0", "default licence")
        for field in ("origin", "created", "updated", "author"):
            check(field in case, f"envelope field {field}", case)

        r = node.get(f"/api/v1/cases/{case['id']}", token="")
        check_eq(r.status, 200, "anonymous read of a published case")
        check_eq(r.json, case, "read back what was written")
        r304 = node.get(f"/api/v1/cases/{case['id']}", headers={"If-None-Match": '"1"'})
        check_eq(r304.status, 304, "If-None-Match with the current ETag")

        changed = dict(case, phase="implementatie")
        r = node.put(f"/api/v1/cases/{case['id']}", changed, headers={"If-Match": '"1"'})
        check_eq(r.status, 200, f"replace {r.body[:400]!r}")
        check_eq(r.json["version"], 2, "version after replace")
        check_eq(r.json["phase"], "implementatie", "changed field")
        check_eq(r.json["created"], case["created"], "created is kept")

        stale = node.put(f"/api/v1/cases/{case['id']}", changed, headers={"If-Match": '"1"'})
        check_eq(stale.status, 412, "replace with a stale ETag")
        check_eq(stale.header("content-type"), "application/problem+json", "problem type")
        check_eq(stale.header("etag"), '"2"', "412 tells the current ETag")
        check_eq(node.put(f"/api/v1/cases/{case['id']}", changed).status, 428, "PUT without If-Match")

        r = node.delete(f"/api/v1/cases/{case['id']}", headers={"If-Match": '"2"'})
        check_eq(r.status, 204, f"delete {r.body[:300]!r}")
        check_eq(node.get(f"/api/v1/cases/{case['id']}").status, 410, "read after delete")
        r = node.put(f"/api/v1/cases/{case['id']}", changed, headers={"If-Match": '"3"'})
        check_eq(r.status, 410, "deleted records do not come back")

        feed = node.get(f"/api/v1/changes?since={before}").json
        ours = [c for c in feed["changes"] if c["record"]["id"] == case["id"]]
        check_eq(len(ours), 1, "the change feed holds the record once")
        check_eq(ours[0]["record"]["status"], "deleted", "with its latest state")
        check_eq(ours[0]["record"]["version"], 3, "version of the tombstone")


def test_lists_and_cursors():
    with Node() as node:
        seen = []
        cursor = None
        pages = 0
        while pages < 100:
            path = "/api/v1/cases?limit=7" + (f"&cursor={cursor}" if cursor else "")
            r = node.get(path)
            check_eq(r.status, 200, "list page")
            page = r.json
            check(len(page["items"]) <= 7, "limit respected", len(page["items"]))
            seen += [c["id"] for c in page["items"]]
            pages += 1
            cursor = page["next"]
            if not cursor:
                break
        check(len(seen) >= 20, "the demo data has cases to browse", len(seen))
        check_eq(len(seen), len(set(seen)), "no case appears twice across pages")
        check_eq(seen, sorted(seen, reverse=True), "newest first")

        for phase in ("adoptie", "implementatie", "institutionalisering"):
            items = node.get(f"/api/v1/cases?phase={phase}&limit=200").json["items"]
            check(all(c["phase"] == phase for c in items), f"phase filter {phase}")
        both = node.get("/api/v1/cases?phase=adoptie,implementatie&limit=200").json["items"]
        check(all(c["phase"] in ("adoptie", "implementatie") for c in both), "OR within a facet")
        anon = node.get("/api/v1/cases?limit=200").json["items"]
        check(all(c["status"] == "published" for c in anon), "anonymous lists see published only")
        check_eq(node.get("/api/v1/cases?status=draft").status, 401, "drafts need a session")

        for bad in ("limit=0", "limit=201", "limit=abc", "cursor=xyz"):
            r = node.get(f"/api/v1/cases?{bad}")
            check_eq(r.status, 400, f"bad list parameter {bad}")
            check_eq(r.header("content-type"), "application/problem+json", "problem type")


def test_lessons_by_region():
    """A lesson belongs to its school's region: written without one, it is filed there, and the
    region filter of the lessons list finds it (and the demo's lessons of that region)."""
    with Node() as node:
        school = find_school(node, "Murmellius")
        region = school["region"]
        demo = node.get(f"/api/v1/lessons?region={region}&limit=200").json["items"]
        check(demo and all(l["school"] for l in demo), "the region's demo lessons are listed", demo[:2])
        node.as_user("murmellius")
        r = node.post("/api/v1/lessons", {"title": "Ouders als partner in het tussenjaar",
                                          "body": "Wat werkte: ouders vanaf de eerste avond betrekken.",
                                          "school": school["id"]})
        check_eq(r.status, 201, f"create a lesson ({r.body[:300]!r})")
        check_eq(r.json.get("region"), region, "the node files it under its school's region")
        node.as_user("moderator")
        lesson_id = r.json["id"]
        r = node.post(f"/api/v1/lessons/{lesson_id}/publish", headers={"If-Match": '"1"'})
        check(r.status in (200, 204), "the moderator of that region publishes it", r)
        ids = [l["id"] for l in node.get(f"/api/v1/lessons?region={region}&limit=200", token="").json["items"]]
        check(lesson_id in ids, "the region filter finds the new lesson", ids[:5])
        other = [l["id"] for l in node.get("/api/v1/lessons?region=01KDVDNA021M0G000000000002&limit=200",
                                           token="").json["items"]]
        check(lesson_id not in other, "another region's list does not", other[:5])


def test_not_found_and_methods():
    with Node(demo=False) as node:
        check_eq(node.get("/api/v1/cases/01JD3M5Q8X7Y2Z9ABCDEFGHJKM").status, 404, "unknown id")
        check_eq(node.get("/api/v1/cases/not-an-id").status, 404, "malformed id")
        check_eq(node.get("/api/v1/things").status, 404, "unknown collection")
        check_eq(node.get("/api/v2/cases").status, 404, "unknown API version")
        r = node.request("PATCH", "/api/v1/cases")
        check_eq(r.status, 405, "unsupported method")
        check(r.header("allow") and "POST" in r.header("allow"), "Allow header", r.headers)
        check_eq(node.post("/api/v1/cases", {"title": "x"}).status, 401, "anonymous write")


def test_health_metrics_node():
    with Node() as node:
        r = node.get("/healthz")
        check_eq(r.status, 200, "healthz")
        check_eq(r.json["status"], "ok", "healthy")
        info = node.get("/api/v1/node").json
        check_eq(len(info["id"]), 26, "node id")
        check_eq(len(info["public_key"]), 130, "public key hex")
        check(info["head"] and info["head"]["seq"] >= 1, "the demo data is in the log", info)
        node.get("/api/v1/cases")
        metrics = node.get("/metrics")
        check_eq(metrics.status, 200, "metrics")
        text = metrics.body.decode()
        for name in ("olievlek_records", "olievlek_store_bytes", "olievlek_writer_batch_ops"):
            check(name in text, f"metric {name}")
        check('route="/api/v1/{kind}"' in text, "requests counted by route", text[:2000])


if __name__ == "__main__":
    run([test_lifecycle, test_lists_and_cursors, test_lessons_by_region, test_not_found_and_methods,
         test_health_metrics_node])
