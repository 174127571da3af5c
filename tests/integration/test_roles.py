"""The whole matrix of role × endpoint × method over HTTP against a real node with the demo
accounts: every cell is one request on a fresh record, and its answer is checked
(docs/roles.md states the rules)."""

from olievlek import Node, check, check_eq, run

REGION_NK = "01KDVDNA011M0G000000000001"      # Samenwerkingsverband VO Noord-Kennemerland
MURMELLIUS = "01KDVDNA081M10000000000008"     # school editor "murmellius"; region NK
CLUSIUS = "01KDVDNA0B1M1000000000000B"        # school editor "clusius"; region NK
BREEDE_HEI = "01KDVDNA0M1M1000000000000M"     # another region (De Eem)
BRIGADIER_PERSON = "01KDVDNA0P1M1G00000000000P"  # the person record of account "brigadier"
OTHER_PERSON = "01KDVDNA0Q1M1G00000000000Q"

ROLES = ["anonymous", "brigadier", "murmellius", "clusius", "moderator", "admin"]


def case_body(school, **extra):
    body = {"title": "Matrixcase", "schools": [school], "summary": "Voor de rollentest.",
            "phase": "adoptie"}
    body.update(extra)
    return body


def visit_body(school, brigadier=BRIGADIER_PERSON, **extra):
    body = {"title": "Matrixbezoek", "school": school, "date": "2026-02-05",
            "notes": "Voor de rollentest."}
    if brigadier:
        body["brigadier"] = brigadier
    body.update(extra)
    return body


class World:
    def __init__(self, node):
        self.node = node
        self.tokens = {"anonymous": ""}
        for role in ROLES[1:]:
            self.tokens[role] = node.login(role)

    def call(self, role, method, path, body=None, headers=None):
        return self.node.request(method, path, body=body, headers=headers, token=self.tokens[role])

    def fresh_case(self, school, status="draft"):
        r = self.call("admin", "POST", "/api/v1/cases", case_body(school, status=status))
        check_eq(r.status, 201, f"admin creates a fixture case ({r.body[:200]!r})")
        return r.json

    def fresh_visit(self, school, brigadier=BRIGADIER_PERSON, status="draft"):
        r = self.call("admin", "POST", "/api/v1/visits", visit_body(school, brigadier, status=status))
        check_eq(r.status, 201, f"admin creates a fixture visit ({r.body[:200]!r})")
        return r.json

    def fresh_request(self, school=MURMELLIUS):
        r = self.call("admin", "POST", "/api/v1/requests", {
            "title": "Hulp gezocht", "question": "Wie helpt ons?", "school": school,
            "status": "published"})
        check_eq(r.status, 201, f"admin creates a fixture request ({r.body[:200]!r})")
        return r.json


def expect(world, cells, description, method, make_path, body=None, headers=None):
    """cells: role -> expected status. make_path() prepares a fresh target per cell."""
    failures = []
    for role in ROLES:
        path, cell_body, cell_headers = make_path()
        r = world.call(role, method, path, body=body(cell_body) if callable(body) else body,
                       headers=headers(cell_headers) if callable(headers) else headers)
        if r.status != cells[role]:
            failures.append(f"{role}: expected {cells[role]}, got {r.status} {r.body[:160]!r}")
        elif r.status >= 400:
            check_eq(r.header("content-type"), "application/problem+json",
                     f"{description} {role}: problem document")
    check(not failures, f"{description}", *failures)


def test_matrix():
    with Node() as node:
        w = World(node)

        def published_case():
            c = w.fresh_case(MURMELLIUS, "published")
            return f"/api/v1/cases/{c['id']}", c, {"If-Match": '"1"'}

        def draft_case_murmellius():
            c = w.fresh_case(MURMELLIUS)
            return f"/api/v1/cases/{c['id']}", c, {"If-Match": '"1"'}

        def draft_case_other_region():
            c = w.fresh_case(BREEDE_HEI)
            return f"/api/v1/cases/{c['id']}", c, {"If-Match": '"1"'}

        def collection(path):
            return lambda: (path, None, None)

        def publish(make):
            def inner():
                path, c, h = make()
                return path + "/publish", c, h
            return inner

        def take():
            r = w.fresh_request()
            return f"/api/v1/requests/{r['id']}/take", r, None

        def person(pid):
            def inner():
                r = node.get(f"/api/v1/people/{pid}", token=w.tokens["admin"])
                return f"/api/v1/people/{pid}", r.json, {"If-Match": r.header("etag")}
            return inner

        def edit(record):
            return {k: v for k, v in dict(record, title="Gewijzigd").items()} if record else None

        def edit_person(record):
            return dict(record, bio="Als onderwijsvernieuwer houd ik mij bezig met de rollentest.")

        same = lambda h: h  # noqa: E731

        expect(w, dict(anonymous=200, brigadier=200, murmellius=200, clusius=200, moderator=200, admin=200),
               "list cases", "GET", collection("/api/v1/cases"))
        expect(w, dict(anonymous=200, brigadier=200, murmellius=200, clusius=200, moderator=200, admin=200),
               "read a published case", "GET", published_case)
        expect(w, dict(anonymous=404, brigadier=404, murmellius=200, clusius=404, moderator=200, admin=200),
               "read a draft of Murmellius", "GET", draft_case_murmellius)
        expect(w, dict(anonymous=404, brigadier=404, murmellius=404, clusius=404, moderator=404, admin=200),
               "read a draft of another region", "GET", draft_case_other_region)
        expect(w, dict(anonymous=401, brigadier=403, murmellius=201, clusius=403, moderator=201, admin=201),
               "create a case for Murmellius", "POST", collection("/api/v1/cases"),
               body=case_body(MURMELLIUS))
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=201),
               "create a case in another region", "POST", collection("/api/v1/cases"),
               body=case_body(BREEDE_HEI))
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=201, admin=201),
               "create a published case for Murmellius", "POST", collection("/api/v1/cases"),
               body=case_body(MURMELLIUS, status="published"))
        expect(w, dict(anonymous=401, brigadier=403, murmellius=200, clusius=403, moderator=200, admin=200),
               "replace a Murmellius draft", "PUT", draft_case_murmellius, body=edit, headers=same)
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=200),
               "replace a draft of another region", "PUT", draft_case_other_region, body=edit, headers=same)
        expect(w, dict(anonymous=401, brigadier=403, murmellius=204, clusius=403, moderator=204, admin=204),
               "delete a Murmellius case", "DELETE", draft_case_murmellius)
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=200, admin=200),
               "publish a Murmellius draft", "POST", publish(draft_case_murmellius))
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=200),
               "publish a draft of another region", "POST", publish(draft_case_other_region))
        expect(w, dict(anonymous=401, brigadier=200, murmellius=403, clusius=403, moderator=403, admin=403),
               "take up a help request", "POST", take)
        expect(w, dict(anonymous=401, brigadier=200, murmellius=403, clusius=403, moderator=403, admin=200),
               "edit the brigadier's own profile", "PUT", person(BRIGADIER_PERSON), body=edit_person,
               headers=same)
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=200),
               "edit another brigadier's profile", "PUT", person(OTHER_PERSON), body=edit_person,
               headers=same)
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=201),
               "create a region", "POST", collection("/api/v1/regions"),
               body={"name": "Testregio", "type": "netwerk"})
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=200),
               "list accounts", "GET", collection("/api/v1/accounts"))


def test_visit_matrix():
    """Visit notes: the brigadier's own, read in draft by the school visited, published by the
    region's moderator. Every role × endpoint × method of /api/v1/visits."""
    with Node() as node:
        w = World(node)

        def visit(school=MURMELLIUS, brigadier=BRIGADIER_PERSON, status="draft", suffix=""):
            def inner():
                v = w.fresh_visit(school, brigadier, status)
                return f"/api/v1/visits/{v['id']}{suffix}", v, {"If-Match": '"1"'}
            return inner

        def collection(path):
            return lambda: (path, None, None)

        def edit(record):
            return dict(record, notes="Gewijzigd na het bezoek.")

        def hand_over(record):
            return dict(record, brigadier=OTHER_PERSON)

        def ask_published(record):
            return dict(record, status="published")

        same = lambda h: h  # noqa: E731
        everyone = lambda code: {role: code for role in ROLES}  # noqa: E731

        expect(w, everyone(200), "list visits", "GET", collection("/api/v1/visits"))
        expect(w, everyone(200), "list visits of a school", "GET",
               collection(f"/api/v1/visits?school={MURMELLIUS}&status=published"))
        expect(w, everyone(200), "read a published visit", "GET", visit(status="published"))
        expect(w, everyone(200), "similar to a published visit", "GET",
               visit(status="published", suffix="/similar"))
        expect(w, dict(anonymous=404, brigadier=200, murmellius=200, clusius=404, moderator=200, admin=200),
               "read the brigadier's draft visit to Murmellius", "GET", visit())
        expect(w, dict(anonymous=404, brigadier=404, murmellius=200, clusius=404, moderator=200, admin=200),
               "read another brigadier's draft visit to Murmellius", "GET", visit(brigadier=OTHER_PERSON))
        expect(w, dict(anonymous=404, brigadier=200, murmellius=404, clusius=404, moderator=404, admin=200),
               "read the brigadier's draft visit in another region", "GET", visit(BREEDE_HEI))
        expect(w, dict(anonymous=401, brigadier=201, murmellius=403, clusius=403, moderator=403, admin=201),
               "create a visit as the brigadier", "POST", collection("/api/v1/visits"),
               body=visit_body(MURMELLIUS))
        expect(w, dict(anonymous=401, brigadier=201, murmellius=422, clusius=422, moderator=422, admin=422),
               "create a visit without naming the brigadier", "POST", collection("/api/v1/visits"),
               body=visit_body(MURMELLIUS, brigadier=None))
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=201),
               "create a visit for another brigadier", "POST", collection("/api/v1/visits"),
               body=visit_body(MURMELLIUS, OTHER_PERSON))
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=201),
               "create a published visit", "POST", collection("/api/v1/visits"),
               body=visit_body(MURMELLIUS, status="published"))
        expect(w, dict(anonymous=401, brigadier=200, murmellius=403, clusius=403, moderator=403, admin=200),
               "replace the brigadier's draft visit", "PUT", visit(), body=edit, headers=same)
        expect(w, dict(anonymous=401, brigadier=200, murmellius=403, clusius=403, moderator=403, admin=200),
               "replace the brigadier's published visit (stays published)", "PUT",
               visit(status="published"), body=edit, headers=same)
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=200),
               "replace a draft visit asking for published", "PUT", visit(), body=ask_published,
               headers=same)
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=200),
               "replace another brigadier's visit", "PUT", visit(brigadier=OTHER_PERSON), body=edit,
               headers=same)
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=200),
               "hand a visit over to another brigadier", "PUT", visit(), body=hand_over, headers=same)
        expect(w, dict(anonymous=401, brigadier=204, murmellius=403, clusius=403, moderator=403, admin=204),
               "delete the brigadier's visit", "DELETE", visit())
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=204),
               "delete another brigadier's visit", "DELETE", visit(brigadier=OTHER_PERSON))
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=200, admin=200),
               "publish a draft visit to Murmellius", "POST", visit(suffix="/publish"))
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=200, admin=200),
               "unpublish a visit to Murmellius", "POST", visit(status="published", suffix="/unpublish"))
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=200),
               "publish a draft visit in another region", "POST", visit(BREEDE_HEI, suffix="/publish"))
        expect(w, dict(anonymous=401, brigadier=403, murmellius=403, clusius=403, moderator=403, admin=204),
               "purge a visit", "POST", visit(suffix="/purge"))
        expect(w, everyone(404), "take up a visit (only help requests)", "POST", visit(suffix="/take"))
        expect(w, everyone(405), "PATCH a visit", "PATCH", visit())
        expect(w, everyone(405), "PUT on the collection", "PUT", collection("/api/v1/visits"))


def test_visit_flow():
    """A brigadier writes a note after a visit; it waits as a draft (the school sees it), the
    moderator publishes it, and then everyone finds it in lists and search."""
    with Node() as node:
        brigadier = node.login("brigadier")
        editor = node.login("murmellius")
        other_editor = node.login("clusius")
        moderator = node.login("moderator")
        r = node.post("/api/v1/visits", {
            "title": "Tweede gesprek over het tussenjaar", "school": MURMELLIUS,
            "date": "2026-03-12",
            "notes": "Het team wil ouders en leerlingen als gesprekspartner bij de evaluatie.",
            "advice": "Plan een gespreksronde aan het eind van elk semester.",
            "bouwstenen": ["doel", "houding"], "themes": ["tussenjaar"]}, token=brigadier)
        check_eq(r.status, 201, f"the brigadier writes a visit note ({r.body[:200]!r})")
        visit = r.json
        check_eq(visit["status"], "draft", "it waits for review")
        check_eq(visit["brigadier"], BRIGADIER_PERSON, "the note is the brigadier's")
        check_eq(visit["region"], REGION_NK, "its region is the school's")
        path = f"/api/v1/visits/{visit['id']}"
        check_eq(node.get(path, token="").status, 404, "the public does not see it yet")
        check_eq(node.get(path, token=editor).status, 200, "the school visited reads the draft")
        check_eq(node.get(path, token=other_editor).status, 404, "another school does not")
        drafts = node.get(f"/api/v1/visits?status=draft&school={MURMELLIUS}", token=editor).json["items"]
        check(any(x["id"] == visit["id"] for x in drafts), "the school's draft list has it")
        r = node.put(path, dict(visit, notes="Ander verslag."), token=editor,
                     headers={"If-Match": '"1"'})
        check_eq(r.status, 403, "the school cannot rewrite the brigadier's note")
        r = node.put(path, dict(visit, status="published"), token=brigadier,
                     headers={"If-Match": '"1"'})
        check_eq(r.status, 403, "the brigadier cannot publish it")
        queue = node.get(f"/api/v1/visits?status=draft&region={REGION_NK}", token=moderator).json["items"]
        check(any(x["id"] == visit["id"] for x in queue), "the moderator's review queue has it")
        r = node.put(path, dict(visit, notes="Door de moderator herschreven."), token=moderator,
                     headers={"If-Match": '"1"'})
        check_eq(r.status, 403, "the moderator does not rewrite it")
        r = node.post(path + "/publish", token=moderator)
        check_eq(r.status, 200, "the moderator publishes")
        check_eq(r.json["brigadier"], BRIGADIER_PERSON, "publishing keeps the brigadier")
        check_eq(node.get(path, token="").status, 200, "now the public sees it")
        mine = node.get(f"/api/v1/visits?person={BRIGADIER_PERSON}&status=published", token="").json["items"]
        check(any(x["id"] == visit["id"] for x in mine), "listed by brigadier (person facet)")
        r = node.put(path, dict(r.json, advice="Plan ook een ronde met de mentoren."),
                     token=brigadier, headers={"If-Match": '"2"'})
        check_eq(r.status, 200, "the brigadier still corrects their published note")
        check_eq(r.json["status"], "published", "a correction keeps it published")
        found = node.get("/api/v1/search?q=mentoren%20gesprekspartner%20&kind=visit").json
        check(any(h["id"] == visit["id"] for h in found["hits"]), "search finds it by its notes and advice")
        everything = node.get("/api/v1/search?kind=visit&limit=50").json
        kinds = {f["value"]: f["count"] for f in everything["facets"]["kind"]}
        check_eq(kinds.get("visit"), 4, "kind=visit: the three published demo visits and this one")
        schools = {f["value"] for f in everything["facets"]["school"]}
        check(MURMELLIUS in schools, "the school facet names the school visited")
        regions = {f["value"] for f in everything["facets"]["region"]}
        check(REGION_NK in regions, "the region facet names the school's region")
        answers = node.get("/api/v1/visits?request=01KDVDNA1Q1M3000000000001Q").json["items"]
        check_eq([x["id"] for x in answers], ["01KDVDNA211M40000000000021"],
                 "the visit that answers a help request is listed by request")
        r = node.post("/api/v1/visits", {
            "title": "Bezoek", "school": MURMELLIUS, "date": "2026-02-30", "notes": "x",
            "request": REGION_NK}, token=brigadier)
        check_eq(r.status, 422, "a date that does not exist is refused")
        fields = {e["field"] for e in r.json["errors"]}
        check("date" in fields, "the error names the date", r.body[:300])


def test_editor_writes_are_drafts_until_a_moderator_publishes():
    with Node() as node:
        editor = node.login("murmellius")
        moderator = node.login("moderator")
        r = node.post("/api/v1/lessons", {
            "title": "Begin klein", "body": "Start met een kleine groep enthousiaste collega's.",
            "school": MURMELLIUS}, token=editor)
        check_eq(r.status, 201, f"editor creates a lesson ({r.body[:200]!r})")
        lesson = r.json
        check_eq(lesson["status"], "draft", "an editor's lesson waits for review")
        check_eq(node.get(f"/api/v1/lessons/{lesson['id']}", token="").status, 404,
                 "the public does not see it yet")
        queue = node.get("/api/v1/lessons?status=draft&limit=200", token=moderator).json["items"]
        check(any(x["id"] == lesson["id"] for x in queue), "the moderator's review queue has it")
        r = node.post(f"/api/v1/lessons/{lesson['id']}/publish", token=moderator)
        check_eq(r.status, 200, "the moderator publishes")
        check_eq(r.json["status"], "published", "published")
        check_eq(node.get(f"/api/v1/lessons/{lesson['id']}", token="").status, 200,
                 "now the public sees it")


if __name__ == "__main__":
    run([test_matrix, test_visit_matrix, test_visit_flow,
         test_editor_writes_are_drafts_until_a_moderator_publishes])
