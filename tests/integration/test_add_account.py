"""`olievlekd add-account`: the first admin of a node without the demo data, from the command line."""

import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from olievlek import BINARY, Node, check, check_eq, run  # noqa: E402


def add_account(data_dir, *args, password="een-lang-wachtwoord"):
    env = dict(os.environ, OLIEVLEK_PASSWORD=password)
    return subprocess.run([BINARY, "add-account", *args, "--data-dir", data_dir,
                           "--log-level", "warn"], capture_output=True, text=True, env=env,
                          timeout=120)


def test_first_admin_of_an_empty_node():
    data = tempfile.mkdtemp(prefix="olievlek-it-")
    try:
        check_first_admin(data)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def check_first_admin(data):
    p = add_account(data, "beheer", "admin")
    check_eq(p.returncode, 0, f"add-account exit status ({p.stderr})")
    check("created" in p.stdout, "it says what it created", p.stdout)
    again = add_account(data, "beheer", "admin")
    check_eq(again.returncode, 1, "a second account of that name is refused")
    check("exists already" in again.stderr, "and says why", again.stderr)
    bad = add_account(data, "Iemand", "moderator", password="kort")
    check_eq(bad.returncode, 2, "an invalid account is a usage error")
    for field in ("username", "password", "region"):
        check(field in bad.stderr, f"the problem with {field} is named", bad.stderr)
    with Node(demo=False, data_dir=data) as node:
        r = node.post("/api/v1/session", {"username": "beheer", "password": "een-lang-wachtwoord"})
        check_eq(r.status, 201, "the new admin signs in")
        check_eq(r.json["account"]["role"], "admin", "as admin")
        token = r.json["token"]
        accounts = node.get("/api/v1/accounts", token=token)
        check_eq(accounts.status, 200, "and may manage accounts")
        names = [a["username"] for a in accounts.json["items"]]
        check_eq(names, ["beheer"], "the only account is the one created (nothing from the invalid try)")


if __name__ == "__main__":
    run([test_first_admin_of_an_empty_node])
