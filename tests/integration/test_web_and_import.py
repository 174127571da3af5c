"""The node serves its web root correctly (types, ETag/304, gzip, client-side routes, no path
traversal), and `olievlekd import-schools` imports a DUO file into the store the node then
serves."""

import gzip
import os
import subprocess

from olievlek import BINARY, SOURCE_DIR, Node, check, check_eq, raw_exchange, run


def test_static_files():
    with Node(demo=False) as node:
        r = node.get("/")
        check_eq(r.status, 200, "index")
        check(r.header("content-type").startswith("text/html"), "HTML type", r.headers)
        check(b"Olievlek" in r.body, "the web client's page")
        etag = r.header("etag")
        check(etag, "an ETag", r.headers)
        check_eq(node.get("/", headers={"If-None-Match": etag}).status, 304, "revalidation")

        css = node.get("/olievlek.css")
        check(css.header("content-type").startswith("text/css"), "CSS type", css.headers)
        js = node.get("/js/app.js", headers={"Accept-Encoding": "gzip"})
        check(js.header("content-type").startswith(("text/javascript", "application/javascript")),
              "JS type", js.headers)
        check_eq(js.header("content-encoding"), "gzip", "compressed when asked")
        with open(os.path.join(SOURCE_DIR, "web", "js", "app.js"), "rb") as f:
            check_eq(gzip.decompress(js.body), f.read(), "compressed bytes are the file")

        route = node.get("/zaken/01KDVDNA0V1M2000000000000V")
        check_eq(route.status, 200, "client-side route")
        check_eq(route.body, r.body, "client-side routes get index.html")

        for path in ("/../CMakeLists.txt", "/%2e%2e/CMakeLists.txt", "/web/../../etc/passwd",
                     "/nothing.css", "/..%2f..%2fetc%2fpasswd"):
            reply = raw_exchange(node.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0
            body = reply.split(b"\r\n\r\n", 1)[-1]
            # A path the server normalises to a client-side route gets the page itself; anything
            # else is refused. Never does a file from outside the web root come back.
            check(status in (400, 404) or (status == 200 and body == r.body),
                  f"{path} is refused or routed to the page", reply[:200])
            check(b"cmake_minimum_required" not in reply and b"root:" not in reply,
                  f"{path} leaked a file")


def test_import_schools():
    node = Node(demo=False)
    try:
        fixtures = os.path.join(SOURCE_DIR, "tests", "fixtures", "duo")
        files = sorted(f for f in os.listdir(fixtures) if f.endswith(".csv"))
        check(files, "DUO fixtures exist")
        path = os.path.join(fixtures, files[0])
        result = subprocess.run([BINARY, "import-schools", path, "--sector", "vo", "--data-dir",
                                 node.data_dir], capture_output=True, text=True, timeout=120)
        check(result.returncode in (0, 3), "import ran", result.returncode, result.stdout, result.stderr)
        check("created" in result.stdout.lower() or "aangemaakt" in result.stdout.lower(),
              "the report gives counts", result.stdout)
        again = subprocess.run([BINARY, "import-schools", path, "--sector", "vo", "--data-dir",
                                node.data_dir], capture_output=True, text=True, timeout=120)
        check(again.returncode in (0, 3), "second import ran", again.stdout, again.stderr)
        node.start()
        schools = node.get("/api/v1/schools?limit=200").json["items"]
        check(len(schools) > 0, "imported schools are served", result.stdout)
        keys = [(s["brin"], s.get("vestiging", "00")) for s in schools]
        check_eq(len(keys), len(set(keys)), "importing twice made no duplicates")
        node.stop()
    finally:
        node.cleanup()


if __name__ == "__main__":
    run([test_static_files, test_import_schools])
