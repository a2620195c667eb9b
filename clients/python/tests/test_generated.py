"""`writ/_generated.py` is what `tools/generate_types.py` makes of the live server's `/openapi.json`:
a server change to a request or answer the client uses fails here until the file is regenerated."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import httpx

import writ
from writ import _generated as wire

PACKAGE = Path(__file__).resolve().parents[1]


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("generate_types", PACKAGE / "tools" / "generate_types.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_types"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_types_match_the_live_openapi_document(writ_url: str) -> None:
    document = httpx.get(f"{writ_url}/openapi.json", timeout=10).raise_for_status().json()
    fresh = _generator().Generator(document).module()  # type: ignore[attr-defined]
    checked_in = (PACKAGE / "src" / "writ" / "_generated.py").read_text(encoding="utf-8")
    assert fresh == checked_in, "src/writ/_generated.py is stale: regenerate it with tools/generate_types.py (see its header)"


def test_generated_types_read_and_write_the_wire_shapes() -> None:
    answer = wire.VisibilityResponse.from_json(
        {"visible": 2, "total": 9, "strategy": "ids", "ids": ["a"], "revision": 7, "added_later": True}
    )
    assert (answer.visible, answer.total, answer.strategy, answer.ids, answer.revision, answer.denied_by) == (2, 9, "ids", ["a"], 7, None)
    page = wire.AclTagsResponse.from_json(
        {"exact": True, "revision": 3, "objects": [{"object": "document:d1", "tags": ["user:*"]}], "continuation_token": ""}
    )
    assert page.objects == [wire.ObjectTags("document:d1", ["user:*"])]
    body = wire.VisibilityRequest(principals=["user:anne"], relation="viewer", object_type="document").to_json()
    assert body == {"principals": ["user:anne"], "relation": "viewer", "object_type": "document"}
    assert writ.Visibility is wire.VisibilityResponse and writ.FilterResult is wire.FilterResponse
