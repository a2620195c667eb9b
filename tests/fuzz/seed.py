#!/usr/bin/env python3
"""Builds seed corpora for the fuzz targets in a scratch folder outside the repository.

Usage: seed.py OUT_DIR
Reads the repository's fixtures/ and schema/, and ../shared (read only, at run time, when present);
writes OUT_DIR/<target>/<n> files. Nothing is copied into the project.
"""
import hashlib
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"

try:
    import yaml  # PyYAML, when installed, unlocks the models embedded in YAML cases
except ImportError:  # pragma: no cover - seeds then come from plain files only
    yaml = None

# The methods of the api_body target, in its order (its second input byte picks one).
METHODS = ["POST", "PUT", "GET", "DELETE", "PATCH"]


def route_paths():
    """The router's route table in `writ::api::route_paths()` order (the api_body target's first
    input byte picks one), read from src/api: the areas in the order `routes()` merges them."""
    api = ROOT / "src" / "api"
    mod = (api / "mod.rs").read_text()
    merged = mod[mod.index("fn routes() -> RouteTable"):]
    paths = []
    for area in re.findall(r"\.merge\((\w+)::routes\(\)\)", merged[:merged.index("\n}\n")]):
        source = (api / f"{area}.rs").read_text()
        body = source[source.index("fn routes() -> RouteTable"):]
        paths += re.findall(r'\.route\(\s*"([^"]+)"', body[:body.index("\n}\n")])
    return paths


PATHS = route_paths()
# Each seeded route by short name: its path and method.
ROUTES = {
    "stores": ("/stores", "POST"),
    "authorization-models": ("/stores/{store_id}/authorization-models", "POST"),
    "writ/model": ("/stores/{store_id}/writ/model", "PUT"),
    "assertions": ("/stores/{store_id}/assertions/{model_id}", "PUT"),
    **{name: (f"/stores/{{store_id}}/{name}", "POST") for name in [
        "write", "read", "check", "batch-check", "expand", "list-objects", "streamed-list-objects", "list-users",
        "writ/obo-check", "writ/audience-check", "writ/filter"]},
    **{name: (f"/stores/{{store_id}}/access/v1/{name}", "POST") for name in [
        "evaluation", "evaluations", "search/resource", "search/subject", "search/action"]},
}
# The two selector bytes of each seeded route (a route missing from the table falls back to 0).
ROUTE = {name: bytes([PATHS.index(path) if path in PATHS else 0, METHODS.index(method)])
         for name, (path, method) in ROUTES.items()}


def files(base, pattern):
    return sorted(base.rglob(pattern)) if base.is_dir() else []


def yaml_docs(path):
    if yaml is None:
        return []
    try:
        return list(yaml.safe_load_all(path.read_text(errors="replace")))
    except Exception:
        return []


def walk(node):
    """Every (key, value) pair in a YAML/JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def main():
    out = pathlib.Path(sys.argv[1])
    seeds = {t: set() for t in ["dsl", "json_model", "zed", "fga_mod", "tuple_key", "spicedb_relationship", "api_body"]}
    add = lambda target, data: seeds[target].add(data.encode() if isinstance(data, str) else data)

    roots = [ROOT / "fixtures", ROOT / "schema", SHARED / "conformance"]
    for base in roots:
        for path in files(base, "*.fga"):
            add("dsl", path.read_bytes())
        for path in files(base, "*.zed"):
            add("zed", path.read_bytes())
        for path in files(base, "fga.mod"):
            add("fga_mod", path.read_bytes())
        for path in files(base, "*.json"):
            text = path.read_bytes()
            add("json_model", text)
            add("api_body", ROUTE["authorization-models"] + text)
        for path in files(base, "*.yaml"):
            for doc in yaml_docs(path):
                for key, value in walk(doc):
                    if not isinstance(value, str):
                        if key == "tuples" and isinstance(value, list):
                            for tuple_key in value:
                                if isinstance(tuple_key, dict) and {"user", "relation", "object"} <= tuple_key.keys():
                                    add("tuple_key", f"{tuple_key['object']}#{tuple_key['relation']}@{tuple_key['user']}")
                                    add("api_body", ROUTE["write"] + json.dumps({"writes": {"tuple_keys": [tuple_key]}}).encode())
                        if key == "check" and isinstance(value, list):
                            for assertion in value:
                                if isinstance(assertion, dict) and {"user", "object"} <= assertion.keys():
                                    for relation in (assertion.get("assertions") or {"viewer": True}):
                                        body = {"tuple_key": {"user": assertion["user"], "relation": relation, "object": assertion["object"]}}
                                        if "context" in assertion:
                                            body["context"] = assertion["context"]
                                        add("api_body", ROUTE["check"] + json.dumps(body).encode())
                        continue
                    if key in ("dsl", "model"):
                        add("dsl", value)
                        add("api_body", ROUTE["writ/model"] + value.encode())
                    elif key in ("schema",) and "definition" in value:
                        add("zed", value)
                    elif key == "modFile":
                        add("fga_mod", value)
                    elif key == "json":
                        add("json_model", value)
                    elif key == "relationships":
                        add("spicedb_relationship", value)
                    elif key == "object_id":
                        add("tuple_key", f"document:{value}#viewer@user:anne")
    # Hand-written bodies for every route, so each starts from something the API accepts.
    bodies = {
        "stores": {"name": "fuzz"},
        "writ/obo-check": {"principals": ["user:anne", "user:bob"], "relation": "viewer", "object": "document:readme"},
        "writ/audience-check": {"audience": ["user:anne", "user:bob"], "relation": "viewer",
                                "objects": ["document:readme", "document:public"]},
        "writ/filter": {"principals": ["user:anne"], "relation": "viewer", "object_type": "document",
                        "ids": ["readme", "public", "missing"]},
        "write": {"writes": {"tuple_keys": [{"user": "user:anne", "relation": "viewer", "object": "document:1",
                                             "condition": {"name": "in_region", "context": {"allowed": ["eu"]}}}]},
                  "deletes": {"tuple_keys": [{"user": "user:bob", "relation": "owner", "object": "document:readme"}]}},
        "read": {"tuple_key": {"object": "document:"}, "page_size": 10},
        "check": {"tuple_key": {"user": "user:anne", "relation": "can_view", "object": "document:readme"},
                  "contextual_tuples": {"tuple_keys": [{"user": "user:dan", "relation": "member", "object": "group:eng"}]},
                  "context": {"region": "eu"}},
        "batch-check": {"checks": [{"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:readme"},
                                    "correlation_id": "1"}]},
        "expand": {"tuple_key": {"relation": "viewer", "object": "document:readme"}},
        "list-objects": {"type": "document", "relation": "viewer", "user": "user:anne"},
        "streamed-list-objects": {"type": "document", "relation": "can_view", "user": "user:anne"},
        "list-users": {"object": {"type": "document", "id": "readme"}, "relation": "viewer",
                       "user_filters": [{"type": "user"}, {"type": "group", "relation": "member"}]},
        "assertions": {"assertions": [{"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:1"},
                                       "expectation": True}]},
        "evaluation": {"subject": {"type": "user", "id": "anne"}, "action": {"name": "viewer"},
                       "resource": {"type": "document", "id": "readme"}},
        "evaluations": {"subject": {"type": "user", "id": "anne"},
                        "evaluations": [{"action": {"name": "viewer"}, "resource": {"type": "document", "id": "readme"}}]},
        "search/resource": {"subject": {"type": "user", "id": "anne"}, "action": {"name": "viewer"},
                            "resource": {"type": "document"}},
        "search/subject": {"subject": {"type": "user"}, "action": {"name": "viewer"},
                           "resource": {"type": "document", "id": "readme"}},
        "search/action": {"subject": {"type": "user", "id": "anne"}, "resource": {"type": "document", "id": "readme"}},
    }
    for route, body in bodies.items():
        add("api_body", ROUTE[route] + json.dumps(body).encode())
    for line in ["document:1#viewer@user:anne", "group:eng#member@group:all#member", "doc:1#viewer@user:*",
                 "doc:1#viewer@user:anne[only_eu:{\"region\":\"eu\"}][expiration:2030-01-01T00:00:00Z]"]:
        add("tuple_key", line.split("[")[0])
        add("spicedb_relationship", line)

    for target, items in seeds.items():
        folder = out / target
        folder.mkdir(parents=True, exist_ok=True)
        for data in items:
            (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)
        print(f"{target}: {len(items)} seeds")


if __name__ == "__main__":
    main()
