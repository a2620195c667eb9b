#!/usr/bin/env python3
"""Generates `src/writ/_generated.py`, the client's request and answer types, from Writ's
`/openapi.json` (the JSON Schemas `schemars` derives from the very types the server reads and
writes), so the client's shapes follow the server's instead of being declared by hand twice.

    python3 tools/generate_types.py --url http://127.0.0.1:8080 > src/writ/_generated.py
    python3 tools/generate_types.py --file openapi.json > src/writ/_generated.py

A small generator of its own rather than `datamodel-code-generator`: that tool emits pydantic
models (pydantic, black, isort and jinja2 at dev time, pydantic at run time), while the client
depends on httpx and PyYAML alone; this one emits frozen stdlib dataclasses with `from_json` and
`to_json`, and only for the routes the client calls (`ROUTES`). Standard library only, so it runs
offline. `tests/test_generated.py` regenerates from the live server's document and compares.
"""

from __future__ import annotations

import argparse
import json
import keyword
import sys
import urllib.request
from typing import Any

# (method, path, class-name stem): each route's JSON body becomes `{stem}Request` and its JSON
# answer `{stem}Response`; the named schemas they refer to become classes of their own names.
ROUTES = [
    ("post", "/stores/{store_id}/check", "Check"),
    ("post", "/stores/{store_id}/list-objects", "ListObjects"),
    ("post", "/stores/{store_id}/writ/obo-check", "OboCheck"),
    ("post", "/stores/{store_id}/writ/audience-check", "AudienceCheck"),
    ("post", "/stores/{store_id}/writ/filter", "Filter"),
    ("post", "/stores/{store_id}/writ/visibility", "Visibility"),
    ("get", "/stores/{store_id}/writ/acl-tags", "AclTags"),
    ("get", "/stores/{store_id}/writ/acl-tags/changes", "AclTagChanges"),
    ("post", "/stores/{store_id}/writ/memberships", "Memberships"),
]

HEADER = '''"""The request and answer types of the routes the client calls, generated from Writ's
`/openapi.json` by `tools/generate_types.py`: do not edit by hand, regenerate (the header of that
script says how; `tests/test_generated.py` fails when this file and the server disagree).

Each type is a frozen dataclass; `writ._wire.Wire` gives it `from_json` and `to_json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._wire import Wire
'''


class Generator:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.components: dict[str, Any] = document.get("components", {}).get("schemas", {})
        self.classes: dict[str, str] = {}
        self.order: list[str] = []

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[1]]
        return schema

    def properties(self, schema: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
        """An object schema's properties and required names, `allOf` parts (serde `flatten`) merged."""
        schema = self.resolve(schema)
        props = dict(schema.get("properties", {}))
        required = set(schema.get("required", []))
        for part in schema.get("allOf", []):
            more, more_required = self.properties(part)
            props.update(more)
            required |= more_required
        return props, required

    def annotation(self, schema: dict[str, Any]) -> tuple[str, tuple[str, bool] | None]:
        """A Python annotation for a schema, and the (class, is-list) a nested object reads as."""
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            target = self.components[name]
            if self.is_record(target):
                cls = self.class_for(name, target)
                return cls, (cls, False)
            return self.annotation(target)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [s for s in schema[key] if s.get("type") != "null"]
                if len(options) == 1:
                    inner, nested = self.annotation(options[0])
                    return f"{inner} | None", nested
                return "Any", None
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            inner, nested = self.annotation({**schema, "type": kinds[0]}) if len(kinds) == 1 else ("Any", None)
            return (f"{inner} | None" if "null" in kind else inner), nested
        if kind == "string":
            return "str", None
        if kind == "integer":
            return "int", None
        if kind == "number":
            return "float", None
        if kind == "boolean":
            return "bool", None
        if kind == "array":
            inner, nested = self.annotation(schema.get("items", {}))
            return f"list[{inner}]", (nested[0], True) if nested else None
        if kind == "object":
            return "dict[str, Any]", None
        return "Any", None

    @staticmethod
    def is_record(schema: dict[str, Any]) -> bool:
        return schema.get("type") == "object" and "properties" in schema

    def class_for(self, name: str, schema: dict[str, Any]) -> str:
        cls = name[:-3] if name.endswith("Dto") and name != "Dto" else name
        if name not in self.classes:
            self.classes[name] = ""  # reserved: a type that refers to itself stops here
            self.classes[name] = self.render(cls, schema, schema.get("description"))
            self.order.append(name)
        return cls

    def render(self, cls: str, schema: dict[str, Any], doc: str | None) -> str:
        props, required = self.properties(schema)
        mandatory, optional, nested = [], [], {}
        for prop, sub in props.items():
            annotation, reads = self.annotation(sub)
            if reads:
                nested[prop] = reads
            field = prop + "_" if keyword.iskeyword(prop) else prop
            if field != prop:
                raise ValueError(f"{cls}.{prop}: a Python keyword cannot be a field name here")
            if prop in required:
                mandatory.append(f"    {field}: {annotation}")
            else:
                while annotation.endswith(" | None"):
                    annotation = annotation.removesuffix(" | None")
                optional.append(f"    {field}: {annotation} | None = None")
        summary = " ".join((doc or f"`{cls}` of Writ's API.").split())
        lines = ["@dataclass(frozen=True)", f"class {cls}(Wire):", f'    """{summary}"""', ""]
        if nested:
            entries = ", ".join(f"{k!r}: ({v[0]!r}, {v[1]})" for k, v in sorted(nested.items()))
            lines.append(f"    _nested = {{{entries}}}  # type: ignore[assignment]")
            lines.append("")
        lines.extend(mandatory + optional or ["    pass"])
        return "\n".join(lines)

    def route(self, method: str, path: str, stem: str) -> None:
        operation = self.document["paths"][path][method]
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if body is not None:
            self.named(f"{stem}Request", body, f"The body of `{method.upper()} {path}`.")
        for status, answer in sorted(operation.get("responses", {}).items()):
            if status.startswith("2"):
                schema = answer.get("content", {}).get("application/json", {}).get("schema")
                if schema is not None:
                    self.named(f"{stem}Response", schema, f"The answer of `{method.upper()} {path}`.")

    def named(self, cls: str, schema: dict[str, Any], doc: str) -> None:
        key = f"route:{cls}"
        self.classes[key] = self.render(cls, self.resolve(schema), doc)
        self.order.append(key)

    def module(self) -> str:
        for method, path, stem in ROUTES:
            self.route(method, path, stem)
        names = sorted(self.classes[key].split("class ", 1)[1].split("(", 1)[0] for key in self.order)
        exports = "__all__ = [\n" + "".join(f'    "{name}",\n' for name in names) + "]\n"
        body = "\n\n\n".join(self.classes[key] for key in self.order)
        return f"{HEADER}\n\n{exports}\n\n{body}\n"


def load(url: str | None, file: str | None) -> dict[str, Any]:
    if file is not None:
        with open(file, encoding="utf-8") as handle:
            return json.load(handle)
    with urllib.request.urlopen(f"{(url or '').rstrip('/')}/openapi.json", timeout=10) as response:
        return json.load(response)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="a running `writ serve`, e.g. http://127.0.0.1:8080")
    source.add_argument("--file", help="a saved /openapi.json")
    args = parser.parse_args()
    sys.stdout.write(Generator(load(args.url, args.file)).module())
    return 0


if __name__ == "__main__":
    sys.exit(main())
