"""ACL-tag push-down and the tag sync (DESIGN §11 `writ/acl-tags`, `acl-tags/changes`,
`memberships`), against every store kind. Writ binaries without those routes skip this file, with
the reason in pytest's summary; the rest of the retrieval tests run on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FRACTIONS, K, Corpus, WritStore, make_store, new_store, server_has

import writ
from writ.retrieval import IdsIn, Options, Retriever
from writ.retrieval.tag_sync import AsyncTagSync, TagSync


@pytest.fixture(scope="module")
def tag_store(writ_url: str, corpus: Corpus) -> WritStore:
    store = new_store(writ_url, corpus, "acl-tags")
    missing = [
        route
        for route, body in [
            ("writ/memberships", {"principal": "user:p1"}),
            ("writ/acl-tags", None),
            ("writ/acl-tags/changes", None),
        ]
        if not server_has(writ_url, store.store_id, route, body)
    ]
    # Writ serves these routes (DESIGN §11): a binary without them is a failure, never a skip.
    assert not missing, f"this writ (WRIT_BIN) has no {', '.join(missing)} (DESIGN §11)"
    return store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def tags_of(store: Any, doc: str) -> list[str]:
    hits = store.search([0.0] * 32, 1, 0, IdsIn((doc,)))
    return list(hits[0].payload.get("acl_tags") or [])




@pytest.mark.parametrize("kind", ["qdrant", "chroma", "lancedb"])
def test_acl_tags_push_down_then_sync(kind: str, tag_store: WritStore, writ_url: str, corpus: Corpus, tmp_path: Path) -> None:
    vectors = make_store(kind, corpus, f"tags-{kind}", tmp_path)
    with writ.Client(tag_store.url, tag_store.store_id, timeout=60) as client:
        sync = TagSync(client, vectors, object_type="document", relation="viewer")
        sync.snapshot()
        retriever = Retriever(client, vectors, relation="viewer", object_type="document", options=Options(strategy="acl_tags"))
        for principal in FRACTIONS:
            for query in corpus.queries:
                answer = retriever.search(principal, query.tolist(), K)
                assert answer.strategy == "acl_tags"
                assert [h.id for h in answer.hits] == corpus.truth(principal, query)

        # A revocation written after the sync and before the query: the stale tag still matches
        # in the store, and the final `filter` drops it.
        principal, query = "user:p1", corpus.queries[0]
        victim = corpus.truth(principal, query)[0]
        key = {"user": principal, "relation": "viewer", "object": f"document:{victim}"}
        httpx.post(f"{writ_url}/stores/{tag_store.store_id}/write", json={"deletes": {"tuple_keys": [key]}}).raise_for_status()
        assert principal in tags_of(vectors, victim)
        answer = retriever.search(principal, query.tolist(), K)
        assert victim not in [h.id for h in answer.hits] and len(answer.hits) == K
        sync.catch_up()
        assert principal not in tags_of(vectors, victim)

        # A grant reaches the store's tags at the next catch-up.
        httpx.post(f"{writ_url}/stores/{tag_store.store_id}/write", json={"writes": {"tuple_keys": [key]}}).raise_for_status()
        sync.catch_up()
        assert principal in tags_of(vectors, victim)
        assert retriever.search(principal, query.tolist(), K).hits[0].id == victim


@pytest.mark.anyio
async def test_async_tag_sync(tag_store: WritStore, corpus: Corpus, tmp_path: Path) -> None:
    vectors = make_store("qdrant", corpus, "tags-async", tmp_path)
    async with writ.AsyncClient(tag_store.url, tag_store.store_id) as client:
        sync = AsyncTagSync(client, vectors, object_type="document", relation="viewer")
        revision = await sync.snapshot()
        assert await sync.catch_up() >= revision
    assert sorted(tags_of(vectors, "d0")) == sorted(corpus.tags["d0"])


def test_visibility_says_how_to_search(tag_store: WritStore, corpus: Corpus) -> None:
    with writ.Client(tag_store.url, tag_store.store_id) as client:
        for principal, fraction in FRACTIONS.items():
            answer = client.visibility([principal], "viewer", "document", max_ids=100)
            assert (answer.visible, answer.total) == (len(corpus.visible[principal]), len(corpus.ids))
            if answer.visible <= 100:
                assert answer.strategy == "ids" and sorted(answer.ids or []) == sorted(corpus.visible[principal])
            else:
                assert answer.strategy == "acl_tags"
            memberships = client.memberships(principal).memberships
            assert principal in memberships and "user:*" in memberships


@pytest.mark.parametrize("kind", ["qdrant", "chroma", "lancedb"])
def test_tag_writes_and_tag_filters_of_each_store(kind: str, corpus: Corpus, tmp_path: Path) -> None:
    """The store side of the sync, which needs no §11 route: clear, write and match tags."""
    from writ.retrieval import TagsMatch

    vectors = make_store(kind, corpus, f"tag-writes-{kind}", tmp_path)
    query = corpus.queries[0].tolist()
    vectors.clear_tags()
    assert vectors.search(query, 50, 0, TagsMatch((("user:p1",),))) == []
    vectors.set_tags(corpus.tags)
    mine = vectors.search(query, 50, 0, TagsMatch((("user:p1",),)))
    assert [h.id for h in mine] == corpus.truth("user:p1", corpus.queries[0], k=50)
    both = corpus.visible["user:p10"] & corpus.visible["user:p50"]
    chain = vectors.search(query, 400, 0, TagsMatch((("group:tenth#member", "user:nobody"), ("user:p50",))))
    assert {h.id for h in chain} == both
    vectors.set_tags({doc: [] for doc in corpus.visible["user:p1"]})
    assert vectors.search(query, 50, 0, TagsMatch((("user:p1",),))) == []
