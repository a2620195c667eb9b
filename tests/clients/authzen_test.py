"""Drives a running Writ's AuthZEN 1.0 endpoints with plain HTTP (urllib), as any AuthZEN client
would: discovery, evaluation (a deny is HTTP 200 `decision: false`), evaluations with each
`evaluations_semantic`, and the three searches, following `page.next_token` with a small `limit`.

    python authzen_test.py http://127.0.0.1:PORT
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checker import Checker, base_url, http_json  # noqa: E402
import drive_case as case  # noqa: E402


def entity(text):
    entity_type, entity_id = text.split(":", 1)
    return {"type": entity_type, "id": entity_id}


def main():
    url = base_url()
    check = Checker("authzen")
    state = {}

    def setup():
        status, store = http_json("POST", f"{url}/stores", {"name": "authzen-acceptance"})
        check.equal("create store status", status, 201)
        state["store"] = store["id"]
        with open(case.MODEL_FILE, encoding="utf-8") as f:
            dsl = f.read()
        status, body = http_json(
            "PUT", f"{url}/stores/{state['store']}/writ/model", dsl, {"content-type": "text/plain"}
        )
        check.equal("model upload status", status, 201)
        keys = [{"user": u, "relation": r, "object": o} for u, r, o in case.REMAINING]
        status, body = http_json("POST", f"{url}/stores/{state['store']}/write", {"writes": {"tuple_keys": keys}})
        check.equal("write tuples status", status, 200)

    check.run("setup", setup)
    if "store" not in state:
        return check.finish()
    store = state["store"]

    def discovery():
        status, config = http_json("GET", f"{url}/.well-known/authzen-configuration/stores/{store}")
        check.equal("well-known status", status, 200)
        check.equal("policy_decision_point", config["policy_decision_point"], url)
        for key, path in [
            ("access_evaluation_endpoint", "evaluation"),
            ("access_evaluations_endpoint", "evaluations"),
            ("search_subject_endpoint", "search/subject"),
            ("search_resource_endpoint", "search/resource"),
            ("search_action_endpoint", "search/action"),
        ]:
            check.equal(key, config.get(key), f"{url}/stores/{store}/access/v1/{path}")
        state["config"] = config

    check.run("discovery", discovery)
    if "config" not in state:
        return check.finish()
    config = state["config"]

    def evaluation():
        for user, relation, obj, want in case.CHECKS:
            body = {"subject": entity(user), "action": {"name": relation}, "resource": entity(obj)}
            status, answer = http_json("POST", config["access_evaluation_endpoint"], body)
            check.equal(f"evaluation {obj}#{relation}@{user}", (status, answer), (200, {"decision": want}))
        body = {"subject": entity("user:anne"), "action": {"name": "no_such_relation"}, "resource": entity("document:plan")}
        status, answer = http_json("POST", config["access_evaluation_endpoint"], body)
        check.equal("evaluation of an undefined relation is a 400", status, 400)
        check.true("the 400 carries a code", isinstance(answer, dict) and answer.get("code"), repr(answer))

    check.run("evaluation", evaluation)

    def evaluations():
        # Defaults at the top level, filled in per item.
        items = [{"subject": entity(u), "action": {"name": r}, "resource": entity(o)} for u, r, o, _ in case.CHECKS]
        status, answer = http_json("POST", config["access_evaluations_endpoint"], {"evaluations": items})
        check.equal(
            "evaluations (execute_all)",
            (status, answer),
            (200, {"evaluations": [{"decision": want} for *_, want in case.CHECKS]}),
        )
        body = {
            "subject": entity("user:bob"),
            "resource": entity("document:plan"),
            "evaluations": [{"action": {"name": "viewer"}}, {"action": {"name": "can_view"}}, {"action": {"name": "viewer"}}],
            "options": {"evaluations_semantic": "deny_on_first_deny"},
        }
        status, answer = http_json("POST", config["access_evaluations_endpoint"], body)
        check.equal(
            "evaluations deny_on_first_deny stops at the first deny",
            (status, answer),
            (200, {"evaluations": [{"decision": True}, {"decision": False}]}),
        )
        body["evaluations"] = [{"action": {"name": "can_view"}}, {"action": {"name": "viewer"}}, {"action": {"name": "can_view"}}]
        body["options"] = {"evaluations_semantic": "permit_on_first_permit"}
        status, answer = http_json("POST", config["access_evaluations_endpoint"], body)
        check.equal(
            "evaluations permit_on_first_permit stops at the first permit",
            (status, answer),
            (200, {"evaluations": [{"decision": False}, {"decision": True}]}),
        )

    check.run("evaluations", evaluations)

    def search(endpoint, body, limit, key):
        """Follows `page.next_token` with page size `limit`; returns every result's `key`."""
        seen, token, pages = [], None, 0
        while pages < 20:
            page = {"limit": limit}
            if token:
                page["token"] = token
            status, answer = http_json("POST", endpoint, {**body, "page": page})
            pages += 1
            check.equal(f"search page status {body}", status, 200)
            if status != 200:
                break
            results = answer["results"]
            check.true(f"a search page holds at most limit={limit} results", len(results) <= limit, repr(answer))
            seen += [key(r) for r in results]
            token = answer.get("page", {}).get("next_token")
            if not token:
                break
        return seen, pages

    def search_resource():
        for user, relation, object_type, want in case.LIST_OBJECTS:
            body = {"subject": entity(user), "action": {"name": relation}, "resource": {"type": object_type}}
            seen, pages = search(config["search_resource_endpoint"], body, 2, lambda r: f"{r['type']}:{r['id']}")
            check.equal(f"search/resource {object_type}#{relation}@{user}", sorted(seen), [f"{object_type}:{i}" for i in want])
            check.equal(f"search/resource {object_type}#{relation}@{user} has no duplicates", len(seen), len(set(seen)))
            check.true("search/resource paged", pages >= (len(want) + 1) // 2, f"pages={pages}")

    check.run("search/resource", search_resource)

    def search_subject():
        for obj, relation, user_type, want in case.LIST_USERS:
            body = {"resource": entity(obj), "action": {"name": relation}, "subject": {"type": user_type}}
            seen, pages = search(config["search_subject_endpoint"], body, 2, lambda r: f"{r['type']}:{r['id']}")
            check.equal(f"search/subject {obj}#{relation} [{user_type}]", sorted(seen), want)
            check.true("search/subject paged", pages >= (len(want) + 1) // 2, f"pages={pages}")

    check.run("search/subject", search_subject)

    def search_action():
        # Every relation dave holds on plan: a direct editor; editor ⊂ viewer; so can_share and can_view.
        expected = [
            ("user:dave", "document:plan", ["can_share", "can_view", "editor", "viewer"]),
            ("user:bob", "document:plan", ["blocked", "viewer"]),
            ("user:nobody", "document:memo", ["can_view", "viewer"]),
            ("user:nobody", "document:plan", []),
        ]
        for user, obj, want in expected:
            body = {"subject": entity(user), "resource": entity(obj)}
            seen, pages = search(config["search_action_endpoint"], body, 3, lambda r: r["name"])
            check.equal(f"search/action {obj}@{user}", sorted(seen), want)
            check.true("search/action paged", pages >= (len(want) + 2) // 3, f"pages={pages}")

    check.run("search/action", search_action)

    def unknown_store():
        body = {"subject": entity("user:anne"), "action": {"name": "viewer"}, "resource": entity("document:plan")}
        status, answer = http_json("POST", f"{url}/stores/01JAAAAAAAAAAAAAAAAAAAAAAA/access/v1/evaluation", body)
        check.equal("evaluation on an unknown store", (status, answer.get("code")), (404, "store_id_not_found"))
        status, answer = http_json("POST", config["access_evaluation_endpoint"], b"{not json", {"content-type": "application/json"})
        check.equal("evaluation with bad JSON is a 400", status, 400)

    check.run("errors", unknown_store)
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
