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
    run([test_matrix, test_editor_writes_are_drafts_until_a_moderator_publishes])
