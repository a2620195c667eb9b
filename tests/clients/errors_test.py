"""Bad input over real HTTP: bad JSON, unknown stores, invalid tuples and models, limits. Every
answer must be a 4xx with a JSON `code` (the expected one where OpenFGA has one), never a 5xx or a
dropped connection.

    python errors_test.py http://127.0.0.1:PORT
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checker import Checker, base_url, http_json  # noqa: E402
import drive_case as case  # noqa: E402

UNKNOWN_STORE = "01JAAAAAAAAAAAAAAAAAAAAAAA"


def main():
    url = base_url()
    check = Checker("errors")
    state = {}

    def expect(name, method, path, body, status, code=None, headers=None):
        try:
            got_status, answer = http_json(method, url + path, body, headers)
        except Exception as error:  # noqa: BLE001 - a dropped connection is the failure we look for
            check.true(f"{name}: answered", False, repr(error))
            return
        got_code = answer.get("code") if isinstance(answer, dict) else None
        check.equal(f"{name}: status", got_status, status)
        if code is None:
            check.true(f"{name}: carries a code", isinstance(got_code, str) and got_code, repr(answer))
        else:
            check.equal(f"{name}: code", got_code, code)
        check.true(f"{name}: carries a message", isinstance(answer, dict) and answer.get("message"), repr(answer))

    def setup():
        status, store = http_json("POST", f"{url}/stores", {"name": "errors"})
        state["store"] = store["id"]
        with open(case.MODEL_FILE, encoding="utf-8") as f:
            status, body = http_json("PUT", f"{url}/stores/{store['id']}/writ/model", f.read(), {"content-type": "text/plain"})
        check.equal("model upload", status, 201)

    check.run("setup", setup)
    if "store" not in state:
        return check.finish()
    store = state["store"]
    tuple_key = {"user": "user:anne", "relation": "viewer", "object": "document:x"}

    def bad_json():
        for path in ["/stores", f"/stores/{store}/write", f"/stores/{store}/check", f"/stores/{store}/batch-check",
                     f"/stores/{store}/list-objects", f"/stores/{store}/list-users", f"/stores/{store}/expand",
                     f"/stores/{store}/read", f"/stores/{store}/authorization-models",
                     f"/stores/{store}/access/v1/evaluation", f"/stores/{store}/access/v1/search/resource"]:
            expect(f"bad JSON to {path}", "POST", path, b'{"tuple_key": ', 400, None, {"content-type": "application/json"})
        expect("a JSON array where an object goes", "POST", f"/stores/{store}/check", [1, 2], 400)

    check.run("bad JSON", bad_json)

    def unknown_store():
        for method, path, body in [
            ("GET", "", None),
            ("POST", "/write", {"writes": {"tuple_keys": [tuple_key]}}),
            ("POST", "/check", {"tuple_key": tuple_key}),
            ("POST", "/list-objects", {"user": "user:anne", "relation": "viewer", "type": "document"}),
            ("POST", "/read", {}),
            ("GET", "/changes", None),
            ("GET", "/authorization-models", None),
        ]:
            expect(f"unknown store {method} {path}", method, f"/stores/{UNKNOWN_STORE}{path}", body, 404, "store_id_not_found")

    check.run("unknown store", unknown_store)

    def invalid_tuples():
        cases = [
            ("undefined type", {"user": "user:anne", "relation": "viewer", "object": "spaceship:x"}),
            ("undefined relation", {"user": "user:anne", "relation": "pilot", "object": "document:x"}),
            ("type not allowed by the relation", {"user": "folder:f", "relation": "viewer", "object": "document:x"}),
            ("malformed object", {"user": "user:anne", "relation": "viewer", "object": "document"}),
            ("empty user", {"user": "", "relation": "viewer", "object": "document:x"}),
        ]
        for name, key in cases:
            expect(f"write: {name}", "POST", f"/stores/{store}/write", {"writes": {"tuple_keys": [key]}}, 400)
        expect(
            "write: the same tuple twice in one request",
            "POST", f"/stores/{store}/write", {"writes": {"tuple_keys": [tuple_key, tuple_key]}}, 400,
            "cannot_allow_duplicate_tuples_in_one_request",
        )
        expect("check: undefined relation", "POST", f"/stores/{store}/check",
               {"tuple_key": {"user": "user:anne", "relation": "pilot", "object": "document:x"}}, 400)
        status, body = http_json("POST", f"{url}/stores/{store}/read", {"tuple_key": {"object": "document:x"}})
        check.equal("refused writes left nothing behind", (status, body.get("tuples")), (200, []))

    check.run("invalid tuples", invalid_tuples)

    def invalid_models():
        expect("DSL with a syntax error", "PUT", f"/stores/{store}/writ/model", "model\n  schema 1.1\ntype user\n  relations\n    define",
               400, "validation_error", {"content-type": "text/plain"})
        expect("DSL naming an undefined type", "PUT", f"/stores/{store}/writ/model",
               "model\n  schema 1.1\ntype doc\n  relations\n    define viewer: [ghost]\n", 400, None, {"content-type": "text/plain"})
        expect("JSON model without type definitions", "POST", f"/stores/{store}/authorization-models",
               {"schema_version": "1.1"}, 400)
        expect("JSON model with an unknown schema version", "POST", f"/stores/{store}/authorization-models",
               {"schema_version": "9.9", "type_definitions": [{"type": "user"}]}, 400)

    check.run("invalid models", invalid_models)

    def limits():
        too_many = [{"user": f"user:u{i}", "relation": "viewer", "object": "document:big"} for i in range(1001)]
        expect("more tuples than --max-tuples-per-write", "POST", f"/stores/{store}/write", {"writes": {"tuple_keys": too_many}}, 400)
        checks = [{"tuple_key": tuple_key, "correlation_id": str(i)} for i in range(51)]
        expect("more checks than --max-batch-check", "POST", f"/stores/{store}/batch-check", {"checks": checks}, 400)
        huge = b'{"tuple_key": {"user": "' + b"u" * (5 * 1024 * 1024) + b'"}}'
        expect("a body over --max-body-bytes", "POST", f"/stores/{store}/check", huge, 413, None, {"content-type": "application/json"})
        expect("an unknown route", "GET", "/no/such/route", None, 404)

    check.run("limits", limits)

    def still_serving():
        status, _ = http_json("GET", f"{url}/readyz")
        check.equal("the server still answers after all of the above", status, 200)

    check.run("still serving", still_serving)
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
