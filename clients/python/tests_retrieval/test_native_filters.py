"""Each adapter's translation of a restriction into its store's native filter, as a table."""

from __future__ import annotations

from typing import Any

import pytest
from qdrant_client import models

from writ.retrieval import IdsIn, TagsMatch
from writ.retrieval.chroma_store import chroma_where
from writ.retrieval.lance_store import lance_where
from writ.retrieval.qdrant_store import qdrant_filter

ANNE = TagsMatch((("user:anne", "group:eng#member"),))
CHAIN = TagsMatch((("user:anne", "user:*"), ("agent:planner",)))

CASES: list[tuple[str, Any, Any, Any]] = [
    # name, restriction, Chroma where, LanceDB SQL
    ("none", None, None, None),
    ("ids", IdsIn(("d1", "o'k")), {"doc_id": {"$in": ["d1", "o'k"]}}, "doc_id IN ('d1', 'o''k')"),
    ("no ids", IdsIn(()), {"doc_id": {"$in": []}}, "false"),
    (
        "tags of one principal",
        ANNE,
        {"$or": [{"acl_tags": {"$contains": "user:anne"}}, {"acl_tags": {"$contains": "group:eng#member"}}]},
        "array_has_any(acl_tags, ['user:anne', 'group:eng#member'])",
    ),
    (
        "tags of a chain: every principal matches",
        CHAIN,
        {"$and": [{"$or": [{"acl_tags": {"$contains": "user:anne"}}, {"acl_tags": {"$contains": "user:*"}}]}, {"acl_tags": {"$contains": "agent:planner"}}]},
        "array_has_any(acl_tags, ['user:anne', 'user:*']) AND array_has_any(acl_tags, ['agent:planner'])",
    ),
]


@pytest.mark.parametrize(("name", "restriction", "chroma", "lance"), CASES, ids=[c[0] for c in CASES])
def test_native_filters(name: str, restriction: Any, chroma: Any, lance: Any) -> None:
    assert chroma_where(restriction) == chroma
    assert lance_where(restriction) == lance
    qdrant = qdrant_filter(restriction)
    if restriction is None:
        assert qdrant is None
    elif isinstance(restriction, IdsIn):
        assert qdrant == models.Filter(must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=list(restriction.ids)))])
    else:
        assert qdrant == models.Filter(
            must=[models.FieldCondition(key="acl_tags", match=models.MatchAny(any=list(g))) for g in restriction.groups]
        )
