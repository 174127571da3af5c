"""Responses of a real node match docs/openapi.yaml: every answer's status is documented for its
operation, its content type is the documented one, and its body validates against the schema."""

import os
import re

import jsonschema
import yaml

# Murmellius Gymnasium, in the demo moderator's region.
MURMELLIUS = "01KDVDNA081M10000000000008"

from olievlek import SOURCE_DIR, Node, check, check_eq, run

SPEC = yaml.safe_load(open(os.path.join(SOURCE_DIR, "docs", "openapi.yaml"), encoding="utf-8"))


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        path = node["$ref"].lstrip("#/").split("/")
        node = SPEC
        for part in path:
            node = node[part]
    return node


def operation_for(method, path):
    path = path.split("?")[0]
    for template, item in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            # A literal route (/api/v1/changes) wins over a templated one.
            literal = "{" not in template
            yield (0 if literal else 1, template, item[method.lower()])


def check_response(method, path, response):
    candidates = sorted(operation_for(method, path))
    check(candidates, f"{method} {path} is documented")
    _, template, operation = candidates[0]
    documented = resolve(operation["responses"].get(str(response.status)))
    check(documented is not None, f"{method} {template} documents status {response.status}",
          list(operation["responses"]), response.body[:300])
    content = documented.get("content")
    if not content:
        check_eq(response.body, b"", f"{method} {template} {response.status} has no body")
        return
    media = (response.header("content-type") or "").split(";")[0].strip()
    check(media in content, f"{method} {template} {response.status} content type", media, list(content))
    schema = content[media].get("schema")
    if schema and media.endswith("json"):
        validator = jsonschema.Draft202012Validator(
            schema, resolver=jsonschema.RefResolver.from_schema(SPEC))
        errors = sorted(validator.iter_errors(response.json), key=lambda e: e.path)
        check(not errors, f"{method} {template} {response.status} body matches the schema",
              [f"{list(e.path)}: {e.message}" for e in errors[:5]])


def test_responses_match_spec():
    with Node() as node:
        calls = []

        def call(method, path, **kw):
            r = node.request(method, path, **kw)
            check_response(method, path, r)
            calls.append((method, path, r.status))
            return r

        call("GET", "/healthz")
        call("GET", "/metrics")
        call("GET", "/api/v1/node")
        for collection in ("regions", "schools", "people", "cases", "lessons", "requests", "visits"):
            page = call("GET", f"/api/v1/{collection}?limit=3").json
            for item in page["items"]:
                call("GET", f"/api/v1/{collection}/{item['id']}")
        call("GET", "/api/v1/cases?limit=0")
        call("GET", "/api/v1/cases/01JD3M5Q8X7Y2Z9ABCDEFGHJKM")
        call("GET", "/api/v1/changes?since=0&limit=5")
        call("GET", "/api/v1/changes?since=-1")
        found = call("GET", "/api/v1/search?q=tussenjaar&kind=case,lesson&limit=2").json
        call("GET", f"/api/v1/search?q=team&cursor={found['next'] or ''}")
        call("GET", "/api/v1/search?limit=500")
        call("GET", f"/api/v1/cases/{found['hits'][0]['id']}/similar?limit=3")
        request = call("GET", "/api/v1/requests?limit=1").json["items"][0]
        call("GET", f"/api/v1/requests/{request['id']}/matches?limit=3")
        call("GET", "/api/v1/requests/01JD3M5Q8X7Y2Z9ABCDEFGHJKM/matches")
        call("GET", "/api/v1/session")
        call("POST", "/api/v1/session", body={"username": "nobody", "password": "wrong-password"})
        call("POST", "/api/v1/cases", body={"title": "x"})

        call("GET", f"/api/v1/visits?school={MURMELLIUS}&request=01KDVDNA1Q1M3000000000001Q")

        node.as_user("brigadier")
        visit = call("POST", "/api/v1/visits", body={
            "title": "Bezoek aan het Murmellius", "school": MURMELLIUS, "date": "2026-03-12",
            "notes": "Gesprek met het team.", "bouwstenen": ["doel"]}).json
        call("POST", "/api/v1/visits", body={"title": "Bezoek", "school": MURMELLIUS,
                                              "date": "2026-02-30", "notes": "x"})
        visit = call("PUT", f"/api/v1/visits/{visit['id']}", body=dict(visit, advice="Begin klein."),
                     headers={"If-Match": '"1"'}).json
        call("POST", f"/api/v1/visits/{visit['id']}/publish")
        call("GET", f"/api/v1/visits?status=draft&person={visit['brigadier']}")

        node.as_user("moderator")
        call("POST", f"/api/v1/visits/{visit['id']}/publish")
        call("GET", f"/api/v1/visits/{visit['id']}")
        call("GET", "/api/v1/search?q=team&kind=visit")
        call("GET", "/api/v1/session")
        school = MURMELLIUS
        case = call("POST", "/api/v1/cases", body={
            "title": "Samen ontwerpen", "schools": [school], "summary": "Kort.", "phase": "adoptie"}).json
        call("POST", "/api/v1/cases", body={"title": 5})
        call("PUT", f"/api/v1/cases/{case['id']}", body=dict(case, title="Samen ontwerpen 2"),
             headers={"If-Match": '"1"'})
        call("PUT", f"/api/v1/cases/{case['id']}", body=case, headers={"If-Match": '"1"'})
        call("PUT", f"/api/v1/cases/{case['id']}", body=case)
        call("POST", f"/api/v1/cases/{case['id']}/unpublish")
        call("POST", f"/api/v1/cases/{case['id']}/publish")
        keyed = call("POST", "/api/v1/cases", headers={"Idempotency-Key": "openapi-1"}, body={
            "title": "Samen ontwerpen 3", "schools": [school], "summary": "Kort.", "phase": "adoptie"})
        call("POST", "/api/v1/cases", headers={"Idempotency-Key": "openapi-1"}, body={
            "title": "Samen ontwerpen 3", "schools": [school], "summary": "Kort.", "phase": "adoptie"})
        call("POST", "/api/v1/cases", headers={"Idempotency-Key": "no spaces"}, body={"title": "x"})
        call("POST", "/api/v1/cases", body={
            "id": keyed.json["id"], "title": "Samen", "schools": [school], "summary": "Kort.",
            "phase": "adoptie"})
        call("DELETE", f"/api/v1/cases/{keyed.json['id']}", headers={"Idempotency-Key": "openapi-1"})
        call("DELETE", f"/api/v1/cases/{case['id']}", headers={"If-Match": '"1"'})
        call("DELETE", f"/api/v1/cases/{case['id']}")
        call("GET", f"/api/v1/cases/{case['id']}")
        sync = {"Content-Type": "application/vnd.olievlek.sync"}
        call("POST", "/api/v1/sync", body=bytes([4, 0, 0, 0, 64, 0, 0, 0, 0]), headers=sync)
        call("POST", "/api/v1/sync", body=bytes([4, 0, 0]), headers=sync)
        call("POST", "/api/v1/sync", body=b"{}", headers={"Content-Type": "application/json"})
        call("DELETE", "/api/v1/session")
        check(len(calls) > 20, "the walk covered the API", len(calls))


if __name__ == "__main__":
    run([test_responses_match_spec])
