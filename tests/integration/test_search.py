"""Search over a real node with the demo data: relevance on the seed cases, Dutch word forms,
prefixes, phrases, facets (AND across, OR within, counts that leave out their own filter),
paging, the index following every write, similar records, brigadier matches, bad input."""

import subprocess
import urllib.parse

from olievlek import BINARY, Node, check, check_eq, run

MODERATOR = "moderator"


def search(node, expect=200, **params):
    r = node.get("/api/v1/search?" + urllib.parse.urlencode(params, doseq=True))
    check_eq(r.status, expect, f"search {params} {r.body[:300]!r}")
    return r.json


def titles(result):
    return [h["title"] for h in result["hits"]]


def position(result, part):
    for i, h in enumerate(result["hits"]):
        if part in h["title"]:
            return i
    return None


def test_relevance_on_the_seed_cases():
    with Node() as node:
        r = search(node, q="tussenjaar ")
        check(r["hits"] and "Murmellius" in r["hits"][0]["title"] and r["hits"][0]["kind"] == "case",
              "tussenjaar: the Murmellius intermezzo case first", titles(r))
        for q in ("thuiszitters ", "verzuim "):
            r = search(node, q=q)
            at = position(r, "Clusius College")
            check(at is not None, f"{q!r} finds the Clusius College case on the first page", titles(r))
        # Dutch word forms meet: plural and singular, inflected adjectives.
        plural = search(node, q="samenwerkingen ", limit=100)
        singular = search(node, q="samenwerking ", limit=100)
        check_eq(plural["total"], singular["total"], "samenwerkingen and samenwerking find the same")
        check(plural["total"] > 0, "samenwerking occurs in the demo data")
        check("<mark>samenwerking" in " ".join(h["snippet"] for h in plural["hits"]).lower(),
              "snippets mark the singular form for a plural query")
        check_eq(search(node, q="creatief ")["total"], search(node, q="creatieve ")["total"],
                 "creatief and creatieve find the same")
        # A brigadier found by name.
        person = node.get("/api/v1/people?limit=1").json["items"][0]
        r = search(node, q=person["name"] + " ")
        check(r["hits"] and r["hits"][0]["id"] == person["id"], "a brigadier's name finds the profile",
              person["name"], titles(r))


def test_prefix_phrase_and_snippets():
    with Node() as node:
        typed = search(node, q="samenw")
        check_eq(typed["query"]["prefix"], "samenw", "the last word is a prefix while typing")
        check(typed["total"] >= search(node, q="samenwerking ")["total"], "samenw covers samenwerking")
        check(search(node, q="samenw ")["total"] < typed["total"],
              "after a space the word is whole (no prefix)")
        phrase = search(node, q='"zorgwekkend verzuim"', limit=100)
        words = search(node, q="zorgwekkend verzuim ", limit=100)
        check(0 < phrase["total"] <= words["total"], "a phrase finds a subset of its words",
              phrase["total"], words["total"])
        three = search(node, q='"administratie, mentoren, trajectbegeleiders"')
        check(any("Clusius" in h["title"] for h in three["hits"]),
              "a three-word phrase is found (checked by position)", titles(three))
        check_eq(search(node, q='"trajectbegeleiders mentoren administratie"')["total"], 0,
                 "and not in another order")
        reversed_phrase = search(node, q='"verzuim zorgwekkend"')
        check_eq(reversed_phrase["total"], 0, "word order counts in a phrase")
        unbalanced = search(node, q='"zorgwekkend verzuim')
        check_eq(unbalanced["total"], phrase["total"], "an unclosed quote runs to the end")
        for h in phrase["hits"]:
            check("<mark>" in h["snippet"] or h["kind"] != "case", "snippet marks the match", h)
            check("<script" not in h["snippet"], "snippets are escaped HTML")


def test_facets_and_filters():
    with Node() as node:
        base = search(node, q="leerlingen ", limit=5)
        kinds = {f["value"]: f["count"] for f in base["facets"]["kind"]}
        check_eq(sum(kinds.values()), base["total"], "kind counts add up to the total")
        check("case" in kinds and "lesson" in kinds, "several kinds match", kinds)
        only_cases = search(node, q="leerlingen ", kind="case", limit=5)
        check_eq(only_cases["total"], kinds["case"], "kind=case gives the counted cases")
        check(all(h["kind"] == "case" for h in only_cases["hits"]), "only cases")
        # The kind facet still shows the other kinds (its own filter is left out of its counts).
        still = {f["value"]: f["count"] for f in only_cases["facets"]["kind"]}
        check_eq(still, kinds, "kind counts do not change when filtering on kind")
        both = search(node, q="leerlingen ", kind="case,lesson")
        check_eq(both["total"], kinds["case"] + kinds["lesson"], "OR within a facet")
        sectors = {f["value"]: f["count"] for f in only_cases["facets"]["sector"]}
        sector = max(sectors, key=sectors.get)
        anded = search(node, q="leerlingen ", kind="case", sector=sector, limit=100)
        check_eq(anded["total"], sectors[sector], "AND across facets matches the sector count")
        check(all(h["record"].get("sector") == sector or h["record"].get("sector") is None
                  for h in anded["hits"]), "sector filter holds")
        regions = only_cases["facets"]["region"]
        check(regions and all("label" in f for f in regions), "region facet values carry names", regions)
        blocks = {f["value"]: f["count"] for f in search(node, kind="case")["facets"]["bouwsteen"]}
        check(blocks, "cases are counted per building block", blocks)
        block = max(blocks, key=blocks.get)
        strong = search(node, kind="case", bouwsteen=block, bouwsteen_min=3, limit=100)
        check_eq(strong["total"], blocks[block], "bouwsteen filter matches its count")
        for h in strong["hits"]:
            scan = h["record"].get("scan", {}).get(block, {})
            best = max((lvl.get("score") or 0) for lvl in scan.values()) if scan else 0
            check(best >= 3, "every hit scores 3 or more on the block", h["id"], scan)
        browse = search(node, kind="case", limit=3)
        updated = [h["record"]["updated"] for h in browse["hits"]]
        check_eq(updated, sorted(updated, reverse=True), "no q: newest first")


def test_paging():
    with Node() as node:
        seen = []
        cursor = None
        total = None
        for _ in range(50):
            params = {"q": "team ", "limit": 7}
            if cursor:
                params["cursor"] = cursor
            page = search(node, **params)
            total = page["total"]
            seen += [h["id"] for h in page["hits"]]
            scores = [h["score"] for h in page["hits"]]
            check_eq(scores, sorted(scores, reverse=True), "a page is in score order")
            cursor = page["next"]
            if not cursor:
                break
        check_eq(len(seen), total, "paging delivers every hit")
        check_eq(len(set(seen)), total, "and none twice")


def test_index_follows_writes():
    with Node() as node:
        node.as_user(MODERATOR)
        school = node.get("/api/v1/search?q=Murmellius%20&kind=school").json["hits"][0]["record"]
        word = "zeppelinwerkplaats"
        check_eq(search(node, q=word + " ")["total"], 0, "the word is new")
        body = {"title": "Een zeppelinwerkplaats in de onderbouw", "schools": [school["id"]],
                "summary": "Leerlingen bouwen samen luchtschepen.", "phase": "adoptie",
                "themes": ["techniek"]}
        r = node.post("/api/v1/cases", body)
        check_eq(r.status, 201, f"create {r.body[:300]!r}")
        case = r.json
        found = search(node, q=word + " ")
        check_eq([h["id"] for h in found["hits"]], [case["id"]], "found right after the write")
        body["title"] = "Een luchtschipwerkplaats in de onderbouw"
        r = node.put(f"/api/v1/cases/{case['id']}", body, headers={"If-Match": '"1"'})
        check_eq(r.status, 200, f"replace {r.body[:300]!r}")
        check_eq(search(node, q=word + " ")["total"], 0, "the old word is gone after a replace")
        check_eq(search(node, q="luchtschipwerkplaats ")["total"], 1, "the new word is found")
        r = node.post(f"/api/v1/cases/{case['id']}/unpublish")
        check_eq(r.status, 200, f"unpublish {r.body[:300]!r}")
        check_eq(search(node, q="luchtschipwerkplaats ")["total"], 0, "drafts are not searched")
        r = node.post(f"/api/v1/cases/{case['id']}/publish")
        check_eq(search(node, q="luchtschipwerkplaats ")["total"], 1, "published again: found")
        r = node.delete(f"/api/v1/cases/{case['id']}")
        check(r.status in (200, 204), f"delete {r.status}")
        check_eq(search(node, q="luchtschipwerkplaats ")["total"], 0, "deleted: gone")
        # The index is in the store: a restart finds what was written.
        node.post("/api/v1/cases", dict(body, title="Een zeppelinwerkplaats voor altijd"))
        node.stop()
        # The index can be rebuilt from the records by a command, and answers the same.
        rebuilt = subprocess.run([BINARY, "reindex", "--data-dir", node.data_dir, "--log-level",
                                  "warn"], capture_output=True, text=True, timeout=120)
        check_eq(rebuilt.returncode, 0, f"reindex: {rebuilt.stderr}")
        check(rebuilt.stdout.startswith("reindexed "), "reindex reports what it did", rebuilt.stdout)
        with Node(data_dir=node.data_dir, name="restarted") as again:
            check_eq(search(again, q=word + " ")["total"], 1, "found after a restart and a reindex")


def test_similar_and_matches():
    with Node() as node:
        murmellius = search(node, q="tussenjaar ", kind="case")["hits"][0]
        similar = node.get(f"/api/v1/cases/{murmellius['id']}/similar?limit=5")
        check_eq(similar.status, 200, f"similar {similar.body[:300]!r}")
        hits = similar.json["hits"]
        check(hits, "similar cases exist")
        check(all(h["kind"] == "case" and h["id"] != murmellius["id"] for h in hits),
              "similar: other cases, not the case itself")
        check(any("tussenjaar" in h["title"].lower() for h in hits[:3]),
              "the other tussenjaar case is among the most similar", [h["title"] for h in hits])
        # A case being written (not yet stored): are there cases like it?
        draft = "Een tussenjaar voor leerlingen die nog niet klaar zijn voor het voortgezet onderwijs"
        like = search(node, like=draft, kind="case", limit=5)
        check(any("tussenjaar" in h["title"].lower() for h in like["hits"][:2]),
              "a draft's text finds the existing tussenjaar cases", titles(like))
        check_eq(node.get("/api/v1/search?q=x&like=y").status, 400, "q and like exclude each other")
        check_eq(search(node, like="qwzxv de het")["total"], 0,
                 "a text with no known word is like nothing, not like everything")
        request = node.get("/api/v1/requests?limit=1").json["items"][0]
        matches = node.get(f"/api/v1/requests/{request['id']}/matches?limit=5")
        check_eq(matches.status, 200, f"matches {matches.body[:300]!r}")
        check(matches.json["hits"] and all(h["kind"] == "person" for h in matches.json["hits"]),
              "brigadiers match a help request", matches.json["hits"][:2])
        check_eq(node.get("/api/v1/cases/01KDVDNA111M2000000000ZZZZ/similar").status, 404,
                 "similar to a record that does not exist")
        check_eq(node.get(f"/api/v1/lessons/{murmellius['id']}/similar").status, 404,
                 "similar with the wrong kind")


def test_bad_input():
    with Node() as node:
        for params, what in (({"q": "x" * 300}, "at most 256"), ({"limit": 0}, "limit"),
                             ({"limit": 100000}, "limit"), ({"limit": "tien"}, "limit"),
                             ({"cursor": "garbage"}, "cursor"), ({"bouwsteen": "vliegen"}, "bouwsteen"),
                             ({"bouwsteen_min": 9}, "bouwsteen_min"),
                             ({"kind": ",".join(["case"] * 17)}, "at most")):
            r = node.get("/api/v1/search?" + urllib.parse.urlencode(params))
            check_eq(r.status, 400, f"{params} is refused")
            check_eq(r.header("content-type"), "application/problem+json", "a problem document")
            check(what in r.json["detail"], f"the detail says what is wrong: {r.json['detail']}")
        r = node.get("/api/v1/search?q=%ff%fe")
        check_eq(r.status, 400, "invalid UTF-8 is refused")
        only_stopwords = search(node, q="de het een ")
        check_eq(only_stopwords["query"]["terms"], [], "stopwords are not searched")
        check(only_stopwords["total"] > 0, "a query of stopwords browses everything")
        many = search(node, q=" ".join(f"woord{i}" for i in range(30)) + " ")
        check(many["query"]["ignored_words"] > 0, "words beyond the cap are reported as ignored")
        check_eq(node.post("/api/v1/search", {}).status, 405, "search is GET")
        check_eq(node.get("/healthz").status, 200, "the node is still up")


if __name__ == "__main__":
    run([test_relevance_on_the_seed_cases, test_prefix_phrase_and_snippets, test_facets_and_filters,
         test_paging, test_index_follows_writes, test_similar_and_matches, test_bad_input])
