"""The offline client end to end: the real `olievlek` CLI against real olievlekd processes.

A brigadier's day: clone, log in, work offline (the node is stopped), sync; and everything that
can go wrong on the way: edits the node refuses, conflicts with changes made meanwhile, records
deleted at the node, answers lost on the way back, pulls cut off at random points, a client
killed mid-pull or mid-clone, and a node (or a path to it) that sends forged data.

With OV_VALGRIND=1 every CLI run goes through valgrind (memcheck), which must report no error.
"""

import json
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from olievlek import Node, check, check_eq, run  # noqa: E402

CLI = os.environ.get("OLIEVLEK")
VALGRIND = os.environ.get("OV_VALGRIND") == "1"
PASSWORD = "olievlek-demo"
MURMELLIUS = "01KDVDNA081M10000000000008"  # the school of the demo editor `murmellius`
INTERMEZZO = "01KDVDNA0V1M2000000000000V"  # Murmellius's intermezzo case
JOOST = "01KDVDNA0P1M1G00000000000P"  # the demo brigadier's profile

EXIT_NETWORK, EXIT_VERIFY, EXIT_INVALID, EXIT_ATTENTION = 3, 5, 6, 7


class Client:
    def __init__(self, directory=None):
        self.dir = directory or tempfile.mkdtemp(prefix="olievlek-client-")

    def run(self, *args, expect=0, stdin=None, env=None, timeout=300):
        argv = [CLI, "-C", self.dir, *args]
        if VALGRIND:
            argv = ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
                    "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"] + argv
        full_env = dict(os.environ, OLIEVLEK_PASSWORD=PASSWORD)
        full_env.pop("EDITOR", None)
        if env:
            full_env.update(env)
        p = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=full_env,
                           timeout=timeout)
        check(p.returncode != 99, "valgrind found errors", p.stderr[-4000:])
        if expect is not None:
            check_eq(p.returncode, expect, f"exit status of olievlek {' '.join(args)} "
                                           f"(stderr: {p.stderr[-1500:]!r}, stdout: {p.stdout[-800:]!r})")
        return p

    def json(self, *args, expect=0, **kw):
        p = self.run("--json", *args, expect=expect, **kw)
        return json.loads(p.stdout)

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def url(node):
    return f"http://127.0.0.1:{node.port}"


def published_count(node):
    """Every record the node shows an anonymous reader, counted through the REST lists."""
    total = 0
    for collection in ("regions", "schools", "people", "cases", "lessons", "requests", "visits"):
        cursor = None
        while True:
            path = f"/api/v1/{collection}?limit=200" + (f"&cursor={cursor}" if cursor else "")
            r = node.get(path, token="")
            check_eq(r.status, 200, f"list {collection}")
            total += len(r.json["items"])
            cursor = r.json.get("next")
            if not cursor:
                break
    return total


def replica_records(client):
    return {r["id"]: r for r in client.json("ls")}


# ---- A TCP proxy between client and node, for faults on the path ----------------------------

class Proxy:
    """Forwards HTTP/1.1 exchanges to the node one at a time; a hook may cut or alter an answer."""

    def __init__(self, port):
        self.target = port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.on_answer = None  # (request_bytes, answer_bytes) -> bytes to send, or None to cut
        self.answer_bytes = 0
        self.request_bytes = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    @staticmethod
    def _read_message(sock, buffered):
        data = buffered
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None, b""
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(rest) < length:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return None, b""
            rest += chunk
        return head + b"\r\n\r\n" + rest[:length], rest[length:]

    def _serve(self, client):
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target))
        except OSError:
            client.close()  # the node is down: so is the path to it
            return
        pending_client = pending_up = b""
        try:
            while True:
                request, pending_client = self._read_message(client, pending_client)
                if request is None:
                    return
                self.request_bytes += len(request)
                upstream.sendall(request)
                answer, pending_up = self._read_message(upstream, pending_up)
                if answer is None:
                    return
                hook = self.on_answer
                out = hook(request, answer) if hook else answer
                if out is None:
                    return  # the answer is lost on the way back
                self.answer_bytes += len(out)
                client.sendall(out)
                if len(out) < len(answer):
                    return  # cut off mid-answer
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def _accept(self):
        while not self.stopped:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self):
        self.stopped = True
        self.listener.close()


# ---- Tests ----------------------------------------------------------------------------------

def test_clone_status_search():
    with Node() as node:
        c = Client()
        try:
            out = c.run("clone", url(node))
            check("Pulled" in out.stdout, "clone reports what it pulled", out.stdout)
            status = c.json("status")
            check_eq(status["node_id"], node.get("/api/v1/node").json["id"], "pinned node id")
            check_eq(status["records"], published_count(node), "records held = published ones")
            check_eq(status["pending"], 0, "nothing queued")
            # Offline search with the node's Dutch analysis.
            hits = c.json("search", "tussenjaar")
            check_eq(hits[0]["id"], INTERMEZZO, "tussenjaar finds the intermezzo case first")
            check("«" in hits[0]["snippet"], "the snippet marks the match", hits[0])
            words = " ".join(h["snippet"].lower() for h in c.json("search", "samenwerkingen"))
            check("«samenwerking»" in words, "samenwerkingen finds samenwerking", words[:400])
            check_eq(c.json("search", "Joost Timmermans")[0]["id"], JOOST, "a brigadier by name")
            check_eq(c.json("search", "de het een"), [], "only stopwords find nothing")
            shown = c.json("show", INTERMEZZO)
            check_eq(shown["id"], INTERMEZZO, "show gives the record")
            # In sync: one small answer, nothing stored.
            again = c.json("pull")
            check_eq(again["entries"], 0, "a second pull has nothing to fetch")
            check(again["bytes"] < 200, "an in-sync pull is one small answer", again)
        finally:
            c.cleanup()


def test_region_scope_and_kinds():
    with Node() as node:
        c = Client()
        try:
            c.run("clone", url(node), "--region", "--kinds", "case,lesson")
            kinds = {r["kind"] for r in c.json("ls")}
            check_eq(kinds, {"case", "lesson"}, "only the kinds asked for are kept")
            cases = node.get("/api/v1/cases?limit=200", token="").json["items"]
            held = {r["id"] for r in c.json("ls", "case")}
            check(all(x["id"] in held for x in cases), "every published case is held")
            # A typo in the scope is refused before anything is created.
            bad = Client()
            p = bad.run("clone", url(node), "--kinds", "cases", expect=2)
            check("unknown kind" in p.stderr, "a wrong kind is named", p.stderr)
            bad.cleanup()
        finally:
            c.cleanup()


def test_offline_day_and_incremental_pull():
    """Clone and log in online; write offline with the node gone; sync when it is back."""
    data = tempfile.mkdtemp(prefix="olievlek-it-")
    node = Node(data_dir=data).start()
    # Through a proxy that counts the bytes on the wire (HTTP requests and answers).
    proxy = Proxy(node.port)
    c = Client()
    try:
        c.run("clone", f"http://127.0.0.1:{proxy.port}")
        c.run("login", "murmellius")
        mode = stat.S_IMODE(os.stat(os.path.join(c.dir, "token")).st_mode)
        check_eq(mode, 0o600, "the token file is readable by its owner only")
        port = node.port
        node.stop()
        # Offline: reading, searching and writing all work.
        check(len(c.json("ls", "case")) > 10, "cases are readable offline")
        lesson = {"title": "Leerlingen als medeontwerpers van het tussenjaar",
                  "body": "Wat we leerden: betrek leerlingen vanaf het begin bij het ontwerp.",
                  "school": MURMELLIUS, "bouwstenen": ["doel", "delen"]}
        made = c.json("new", "lesson", "--file", "-", stdin=json.dumps(lesson))
        new_id = made["id"]
        check(any(h["id"] == new_id for h in c.json("search", "medeontwerpers")),
              "the new lesson is searchable offline")
        push = c.run("push", expect=EXIT_NETWORK)
        check("stay queued" in push.stderr, "offline push says the edits wait", push.stderr)
        check_eq(c.json("status")["pending"], 1, "the edit waits")
        # Back online, on the same address.
        node = Node(data_dir=data, extra_args=["--listen", f"127.0.0.1:{port}"])
        node.start()
        result = c.json("sync")
        check_eq(result["push"]["accepted"], 1, "the lesson is accepted")
        editor = node.login("murmellius")
        r = node.get(f"/api/v1/lessons/{new_id}", token=editor)
        check_eq(r.status, 200, "the node holds the lesson under the client's id")
        check_eq(r.json["title"], lesson["title"], "with the client's content")
        check_eq(c.json("status")["pending"], 0, "nothing waits any more")

        # Incremental pull after one remote change: only that record, in little more than it.
        node.as_user("moderator")
        case = node.get(f"/api/v1/cases/{INTERMEZZO}").json
        case["summary"] += " Nu ook met een tweede lichting."
        r = node.put(f"/api/v1/cases/{INTERMEZZO}", case, headers={"If-Match": f'"{case["version"]}"'})
        check_eq(r.status, 200, "the moderator changes the case")
        record_bytes = len(r.body)
        before = proxy.request_bytes + proxy.answer_bytes
        pulled = c.json("pull")
        check_eq(pulled["records"], 1, "one record pulled")
        wire = proxy.request_bytes + proxy.answer_bytes - before
        check(wire - record_bytes <= 2048, "an incremental pull costs the record + at most 2 KB",
              wire, record_bytes)
        print(f"     incremental pull: {wire} bytes on the wire for a record of {record_bytes} bytes "
              f"({wire - record_bytes} beyond it)")
        check("tweede lichting" in c.json("show", INTERMEZZO)["summary"], "the change arrived")
    finally:
        proxy.close()
        node.kill()
        node.cleanup()
        shutil.rmtree(data, ignore_errors=True)
        c.cleanup()


EDITOR_SCRIPT = r"""#!/bin/sh
# A scripted editor: fills in the template it is given (comment lines dropped), as a user would.
exec python3 - "$1" <<'PY'
import json, sys
path = sys.argv[1]
text = open(path).read()
record = json.loads("\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
record.update(FILL)
open(path, "w").write(json.dumps(record))
PY
"""


def scripted_editor(directory, fill):
    path = os.path.join(directory, "editor.sh")
    with open(path, "w") as f:
        f.write(EDITOR_SCRIPT.replace("FILL", repr(fill)))
    os.chmod(path, 0o755)
    return path


def test_brigadier_writes_a_visit_in_the_editor():
    with Node() as node:
        c = Client()
        try:
            c.run("clone", url(node), "--region")
            c.run("login", "brigadier")
            fill = {"title": "Bezoek aan Clusius College: verzuim vroeg zien",
                    "school": "01KDVDNA0B1M1000000000000B",
                    "notes": "Gesprek met mentoren en de administratie over de verzuimregistratie."}
            editor = scripted_editor(c.dir, fill)
            made = c.json("new", "visit", env={"EDITOR": editor})
            shown = c.json("show", made["id"])
            check_eq(shown["brigadier"], JOOST, "the template names the signed-in brigadier")
            check(len(shown["date"]) == 10, "and today's date", shown)
            check_eq(c.json("sync")["push"]["accepted"], 1, "the visit note is accepted")
            r = node.get(f"/api/v1/visits/{made['id']}", token=node.login("brigadier"))
            check_eq((r.status, r.json["status"]), (200, "draft"), "a draft at the node")
            check_eq(r.json["notes"], fill["notes"], "with the notes written offline")
            check_eq(c.json("show", made["id"])["version"], 1, "the replica holds the node's version")
        finally:
            c.cleanup()


def test_conflicts_and_rejections():
    with Node() as node:
        c = Client()
        try:
            c.run("clone", url(node))
            c.run("login", "murmellius")
            case = c.json("show", INTERMEZZO)
            mine = dict(case, team="Het hele docententeam en de mentoren")
            c.json("edit", INTERMEZZO, "--file", "-", stdin=json.dumps(mine))
            # Meanwhile at the node: the moderator changes the same case.
            node.as_user("moderator")
            theirs = node.get(f"/api/v1/cases/{INTERMEZZO}").json
            theirs["goal"] = "Jongeren ontdekken wat bij hen past"
            r = node.put(f"/api/v1/cases/{INTERMEZZO}", theirs,
                         headers={"If-Match": f'"{theirs["version"]}"'})
            check_eq(r.status, 200, "the moderator's change")
            pushed = c.json("push", expect=EXIT_ATTENTION)
            check_eq(pushed["conflicts"], 1, "the push finds the conflict")
            conflicts = c.json("conflicts", expect=EXIT_ATTENTION)
            check_eq(len(conflicts), 1, "one conflict")
            k = conflicts[0]
            check_eq(k["mine"]["team"], mine["team"], "mine is the local version")
            check_eq(k["theirs"]["goal"], theirs["goal"], "theirs is the node's version now")
            check_eq(k["their_version"], theirs["version"] + 1, "the node's version")
            text = c.run("conflicts", expect=EXIT_ATTENTION).stdout
            check("≠ goal" in text and "≠ team" in text, "side by side, field by field", text)
            # Editing a record in conflict is refused until it is resolved.
            c.run("edit", INTERMEZZO, "--file", "-", stdin=json.dumps(mine), expect=EXIT_ATTENTION)
            # Merge: take theirs and add mine.
            merged = dict(k["theirs"], team=mine["team"])
            c.run("resolve", INTERMEZZO, "--file", "-", stdin=json.dumps(merged))
            check_eq(c.json("push")["accepted"], 1, "the merge is accepted")
            now = node.get(f"/api/v1/cases/{INTERMEZZO}").json
            check_eq((now["team"], now["goal"]), (mine["team"], theirs["goal"]), "both changes kept")
            check_eq(c.json("conflicts"), [], "no conflict left")

            # A record deleted at the node while edited here: a conflict, and it stays deleted.
            lesson_id = next(r["id"] for r in c.json("ls", "lesson")
                             if c.json("show", r["id"]).get("school") == MURMELLIUS)
            lesson = c.json("show", lesson_id)
            c.json("edit", lesson_id, "--file", "-", stdin=json.dumps(dict(lesson, title="Nieuw")))
            r = node.delete(f"/api/v1/lessons/{lesson_id}",
                            headers={"If-Match": f'"{lesson["version"]}"'})
            check(r.status in (200, 204), "the moderator deletes the lesson", r)
            check_eq(c.json("push", expect=EXIT_ATTENTION)["conflicts"], 1, "deleted meanwhile")
            c.run("resolve", lesson_id, "--theirs")
            c.json("pull")
            check(lesson_id not in replica_records(c), "the deleted lesson does not come back")

            # Rejected: the node refuses (another school's lesson); the user fixes it.
            other = {"title": "Een les voor een andere school", "body": "Tekst.",
                     "school": "01KDVDNA0B1M1000000000000B"}
            made = c.json("new", "lesson", "--file", "-", stdin=json.dumps(other))
            result = c.json("push", expect=EXIT_ATTENTION)
            check_eq(result["rejected"], 1, "the node refuses it")
            status = c.json("status", expect=EXIT_ATTENTION)
            check_eq(status["edits"][0]["state"], "rejected", "the status shows the rejection")
            check("403" in status["edits"][0]["reason"], "with the node's reason", status["edits"])
            c.json("edit", made["id"], "--file", "-", stdin=json.dumps(dict(other, school=MURMELLIUS)))
            check_eq(c.json("push")["accepted"], 1, "the fixed edit is accepted")
            # Invalid before it is queued: exit 6 and every field named.
            p = c.run("new", "lesson", "--file", "-", stdin='{"title": ""}', expect=EXIT_INVALID)
            check("body" in p.stderr and "school" in p.stderr, "the missing fields are named", p.stderr)
        finally:
            c.cleanup()


def test_resolve_in_the_editor():
    """`resolve --edit` opens the local version with the node's as comments; the saved merge goes on
    top of the node's version."""
    with Node() as node:
        c = Client()
        try:
            c.run("clone", url(node))
            c.run("login", "murmellius")
            case = c.json("show", INTERMEZZO)
            c.json("edit", INTERMEZZO, "--file", "-", stdin=json.dumps(dict(case, team="Lokaal team")))
            node.as_user("moderator")
            theirs = node.get(f"/api/v1/cases/{INTERMEZZO}").json
            theirs["goal"] = "Een doel van de node"
            r = node.put(f"/api/v1/cases/{INTERMEZZO}", theirs,
                         headers={"If-Match": f'"{theirs["version"]}"'})
            check_eq(r.status, 200, "the moderator's change")
            check_eq(c.json("push", expect=EXIT_ATTENTION)["conflicts"], 1, "a conflict")
            editor = scripted_editor(c.dir, {"goal": "Een doel van de node"})
            c.run("resolve", INTERMEZZO, "--edit", env={"EDITOR": editor})
            check_eq(c.json("push")["accepted"], 1, "the merge written in the editor is accepted")
            now = node.get(f"/api/v1/cases/{INTERMEZZO}").json
            check_eq((now["team"], now["goal"]), ("Lokaal team", "Een doel van de node"),
                     "mine (kept from the editor's start) and theirs (typed in) both stand")
        finally:
            c.cleanup()


def test_lost_answers_never_double():
    """The node applies an edit but its answer is lost; the retry must not apply it again."""
    with Node() as node:
        proxy = Proxy(node.port)
        c = Client()
        try:
            c.run("clone", f"http://127.0.0.1:{proxy.port}")
            c.run("login", "murmellius")
            lesson = {"title": "Antwoord kwijt", "body": "Tekst.", "school": MURMELLIUS}
            made = c.json("new", "lesson", "--file", "-", stdin=json.dumps(lesson))
            proxy.on_answer = lambda req, ans: None if req.startswith(b"POST /api/v1/lessons") else ans
            c.run("push", expect=EXIT_NETWORK)
            proxy.on_answer = None
            check_eq(c.json("push")["accepted"], 1, "the retry is answered as accepted")
            editor = node.login("murmellius")
            r = node.get(f"/api/v1/lessons/{made['id']}", token=editor)
            check_eq((r.status, r.json["version"]), (200, 1), "applied exactly once")
            # The same for a change.
            now = c.json("show", made["id"])
            c.json("edit", made["id"], "--file", "-", stdin=json.dumps(dict(now, body="Anders.")))
            proxy.on_answer = lambda req, ans: None if req.startswith(b"PUT ") else ans
            c.run("push", expect=EXIT_NETWORK)
            proxy.on_answer = None
            check_eq(c.json("push")["accepted"], 1, "the retried change is accepted")
            r = node.get(f"/api/v1/lessons/{made['id']}", token=editor)
            check_eq((r.json["version"], r.json["body"]), (2, "Anders."), "changed exactly once")
        finally:
            proxy.close()
            c.cleanup()


def replica_finished(client):
    """Whether the client's directory holds a replica that `status` can read."""
    return client.run("status", expect=None).returncode == 0


def test_interrupted_pulls_resume():
    """Pulls cut off at random points, and a client killed mid-pull, end where a clean clone does."""
    with Node(extra_args=[]) as node:
        reference = Client()
        cut = Client()
        killed = Client()
        proxy = Proxy(node.port)
        try:
            # The demo is one run (one signed head); later writes add checkpoints, so a pull is
            # several runs and, with small answers, several answers.
            node.as_user("moderator")
            for i in range(10):
                r = node.post("/api/v1/cases", {"title": f"Nieuwe aanpak {i}", "schools": [MURMELLIUS],
                                                "summary": "Een case uit de test.", "phase": "adoptie",
                                                "status": "published"})
                check_eq(r.status, 201, f"case {i} ({r.body[:200]!r})")
                time.sleep(0.03)  # a head of its own
            time.sleep(0.1)
            reference.run("clone", url(node))
            want = replica_records(reference)
            check(sum(1 for x in want.values() if x.get("title", "").startswith("Nieuwe aanpak")) == 10,
                  "the reference holds the new cases")
            rng = random.Random(20261201)
            # Small runs and answers, so a pull is several answers; in every pull the first sync
            # answer gets through and every later one is cut at a random byte: each pull stores
            # some, fails, and the next resumes from there.
            small = {"OLIEVLEK_PULL_BYTES": "65536", "OLIEVLEK_PULL_BATCH": "2"}
            answers = [0]

            def cut_after_first(req, ans):
                if not req.startswith(b"POST /api/v1/sync"):
                    return ans
                answers[0] += 1
                return ans if answers[0] == 1 else ans[:rng.randrange(200, len(ans))]

            proxy.on_answer = cut_after_first
            cut_short, partial, done = 0, False, False
            for attempt in range(40):
                answers[0] = 0
                p = cut.run("pull" if attempt else "clone", *([] if attempt else
                            [f"http://127.0.0.1:{proxy.port}", "--national"]), expect=None, env=small)
                check(p.returncode in (0, EXIT_NETWORK), "a cut pull fails cleanly", p.returncode, p.stderr)
                cut_short += p.returncode == EXIT_NETWORK
                held = cut.json("status", expect=None)["records"]
                partial |= p.returncode == EXIT_NETWORK and 0 < held < len(want)
                if p.returncode == 0:
                    done = True
                    break
            check(done, "the cut pulls got there in the end, one answer at a time")
            check(cut_short > 0, "some pulls were really cut off (else this tests nothing)")
            check(partial, "a cut pull kept the answers before the cut (it resumes, not restarts)")
            proxy.on_answer = None
            cut.run("pull")
            check_eq(replica_records(cut), want, "after cut-off pulls: the same records as a clean clone")

            killed.run("clone", url(node), "--national")
            shutil.rmtree(killed.dir)
            kills = 0
            for attempt in range(6):
                args = [CLI, "-C", killed.dir]
                # A clone killed before its first commit is finished by cloning again; a replica
                # that exists is brought up to date by pulling.
                args += ["pull"] if replica_finished(killed) else ["clone", url(node)]
                # Small runs, so a pull takes a few round trips and the kill lands inside one.
                p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     env=dict(os.environ, **small))
                time.sleep(rng.uniform(0.0, 0.02))
                p.send_signal(signal.SIGKILL)
                kills += p.wait() == -signal.SIGKILL
            check(kills > 0, "some runs were really killed mid-way (else this tests nothing)")
            if replica_finished(killed):
                killed.run("pull")
            else:
                killed.run("clone", url(node))
            check_eq(replica_records(killed), want, "after kill -9 mid-pull: the same records")
        finally:
            proxy.close()
            reference.cleanup()
            cut.cleanup()
            killed.cleanup()


def test_forged_answers_are_refused():
    """A path that alters a record, or a node claiming another id: nothing unverified is kept."""
    with Node() as node:
        proxy = Proxy(node.port)
        c = Client()
        try:
            c.run("clone", f"http://127.0.0.1:{proxy.port}", "--node-id", "00000000000000000000000000",
                  expect=EXIT_VERIFY)
            def tamper(req, ans):
                if not req.startswith(b"POST /api/v1/sync"):
                    return ans
                at = ans.find(b'"title":"') + 9
                return ans[:at] + (b"X" if ans[at:at + 1] != b"X" else b"Y") + ans[at + 1:]
            proxy.on_answer = tamper
            p = c.run("clone", f"http://127.0.0.1:{proxy.port}", expect=EXIT_VERIFY)
            check("fail verification" in p.stderr, "the client says what failed", p.stderr)
            check_eq(c.json("status", expect=0)["records"], 0, "nothing of the forged answer is kept")
            proxy.on_answer = None
            c.run("pull")
            check_eq(c.json("status")["records"], published_count(node), "a clean pull then succeeds")
        finally:
            proxy.close()
            c.cleanup()


def test_clone_cut_before_its_first_commit():
    """A clone killed before it committed anything leaves an empty store: cloning again finishes
    it; pulling says so; a finished replica is never cloned over."""
    with Node(extra_args=[]) as node:
        c = Client()
        try:
            open(os.path.join(c.dir, "replica.mdb"), "wb").close()  # what such a kill leaves
            p = c.run("pull", expect=None)
            check(p.returncode != 0, "a pull into an unfinished clone fails", p.returncode)
            check("olievlek clone" in p.stderr, "and says to clone again", p.stderr)
            c.run("clone", url(node))
            check_eq(c.json("status")["records"], published_count(node), "the clone finished")
            p = c.run("clone", url(node), expect=None)
            check(p.returncode != 0 and "olievlek pull" in p.stderr,
                  "a finished replica is not cloned over", p.returncode, p.stderr)
            check_eq(c.json("status")["records"], published_count(node), "and keeps its records")
        finally:
            c.cleanup()


def test_help_and_usage():
    c = Client()
    try:
        p = c.run("--help")
        for command in ("clone", "pull", "push", "sync", "status", "ls", "show", "search", "new",
                        "edit", "conflicts", "resolve", "log", "login"):
            check(command in p.stdout, f"--help lists {command}", p.stdout)
        check("usage: olievlek resolve" in c.run("resolve", "--help").stdout, "help per command")
        check_eq(c.run("frobnicate", expect=2).returncode, 2, "an unknown command is a usage error")
        p = c.run("status", expect=1)
        check("olievlek clone" in p.stderr, "no replica: says what to do", p.stderr)
    finally:
        c.cleanup()

def test_large_clone_in_growing_answers():
    """A clone of thousands of records, with the sizes the client picks itself: the first answer
    asked for is 1 MiB, each next one twice the one before up to 4 MiB, runs fitted to them;
    several answers are checked on two threads while others are stored, and the replica ends
    with exactly the node's records, every one verified."""
    seeder = os.environ.get("FEDERATION_SEED")
    check(seeder and os.path.exists(seeder), "FEDERATION_SEED must name the built seeder", seeder)
    seed_dir = tempfile.mkdtemp(prefix="olievlek-seed-")
    records = 6000  # ~5 MB of cases; the seeder signs a head every 2,000
    p = subprocess.run([seeder, seed_dir, str(records)], capture_output=True, text=True,
                       timeout=300)
    check_eq(p.returncode, 0, f"seeding ({p.stderr[-500:]!r})")
    c = Client()
    try:
        with Node(demo=False, data_dir=seed_dir) as node:
            proxy = Proxy(node.port)
            asked = []

            def note_size(req, ans):
                line = req.split(b"\r\n", 1)[0].decode()
                if line.startswith("POST /api/v1/sync"):
                    query = line.split("?", 1)[1].split(" ", 1)[0]
                    params = dict(kv.split("=", 1) for kv in query.split("&"))
                    asked.append(int(params["max_bytes"]))
                return ans

            proxy.on_answer = note_size
            try:
                got = c.json("clone", f"http://127.0.0.1:{proxy.port}", "--national")
            finally:
                proxy.close()
            check_eq((got["records"], got["entries"]), (records, records),
                     "every record and log entry arrived and was stored")
            check(len(asked) >= 3, "the clone took several answers", asked)
            check_eq(asked[0], 1 << 20, "the first answer asked for is 1 MiB")
            for before, after in zip(asked, asked[1:]):
                check(after == min(2 * before, 4 << 20),
                      "each answer asked for is twice the one before, up to 4 MiB", asked)
            held = replica_records(c)
            check_eq(len(held), records, "the replica lists every case")
            r = node.get("/api/v1/cases?limit=1", token="")
            check_eq(r.status, 200, "the node lists its cases")
            first = r.json["items"][0]
            check_eq(held[first["id"]]["title"], first["title"], "a case as the node has it")
            again = c.json("pull")
            check_eq(again["entries"], 0, "after the clone the replica is in sync")

            # A node that sends none of the run asked for (as one does when the entries ahead
            # are far larger than those the batch was fitted to, and the run would exceed its
            # largest answer): the client asks again for fewer entries per run, and goes on.
            batches, stripped = [], []

            def strip_third(req, ans):
                if not req.startswith(b"POST /api/v1/sync"):
                    return ans
                body = req.split(b"\r\n\r\n", 1)[1]
                batches.append(int.from_bytes(body[1:5], "big"))
                if len(batches) != 3:
                    return ans
                stripped.append(True)
                return only_summary(ans)

            proxy = Proxy(node.port)
            proxy.on_answer = strip_third
            retried = Client()
            try:
                got = retried.json("clone", f"http://127.0.0.1:{proxy.port}", "--national")
                check_eq(got["records"], records, "after an answer without runs, the clone ends whole")
                check(stripped and len(batches) >= 4, "an answer was stripped", batches)
                check_eq(batches[3], batches[2] // 4,
                         "the request after it asks for a quarter as many entries per run")

                # One that never sends any: the pull gives up after a bounded number of asks.
                stuck = Client()
                try:
                    count = [0]

                    def strip_after_first(req, ans):
                        if not req.startswith(b"POST /api/v1/sync"):
                            return ans
                        count[0] += 1
                        return ans if count[0] == 1 else only_summary(ans)

                    proxy.on_answer = strip_after_first
                    p = stuck.run("clone", f"http://127.0.0.1:{proxy.port}", expect=None)
                    check(p.returncode != 0 and "sent none of it" in p.stderr,
                          "a node that never sends what it says it has is reported", p.stderr)
                    check(count[0] <= 12, "after a bounded number of requests", count[0])
                finally:
                    stuck.cleanup()
            finally:
                proxy.close()
                retried.cleanup()
    finally:
        c.cleanup()
        shutil.rmtree(seed_dir, ignore_errors=True)


def only_summary(answer):
    """A pull answer (HTTP) with its runs left out: only its closing SUMMARY frame."""
    head, body = answer.split(b"\r\n\r\n", 1)
    frames, at = [], 0
    while at + 4 <= len(body):
        length = int.from_bytes(body[at:at + 4], "big")
        frames.append(body[at:at + 4 + length])
        at += 4 + length
    kept = b"".join(f for f in frames if f[4:5] == bytes([4]))  # SUMMARY
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"content-length:")]
    return b"\r\n".join(lines + [b"Content-Length: %d" % len(kept)]) + b"\r\n\r\n" + kept


if __name__ == "__main__":
    check(CLI and os.path.exists(CLI), "OLIEVLEK must name the built client", CLI)
    run([test_help_and_usage, test_clone_status_search, test_region_scope_and_kinds,
         test_offline_day_and_incremental_pull, test_brigadier_writes_a_visit_in_the_editor,
         test_conflicts_and_rejections, test_resolve_in_the_editor,
         test_lost_answers_never_double, test_interrupted_pulls_resume,
         test_forged_answers_are_refused, test_clone_cut_before_its_first_commit,
         test_large_clone_in_growing_answers])
