"""The plan's DESIGN §11 branches (`visibility` answering `ids` or `acl_tags`, memberships, stale
tags) with the Writ side scripted from the corpus: the plan has no I/O, so any `run(call)` drives
it. The same branches run against a real server in test_acl_tags.py where the server has them."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from conftest import GROUPS, K, N, Corpus

from writ.client import Call
from writ.retrieval import Hit, IdsIn, Options, Restriction, Retriever, TagsMatch


class NumpyStore:
    """An exact in-memory vector store with the corpus's tags: the reference the adapters meet."""

    max_filter_ids = 10_000
    has_tags = True

    def __init__(self, corpus: Corpus) -> None:
        self.corpus = corpus
        self.tags = {doc: set(tags) for doc, tags in corpus.tags.items()}
        self.searches = 0

    def matches(self, doc: str, restriction: Restriction | None) -> bool:
        if isinstance(restriction, IdsIn):
            return doc in restriction.ids
        if isinstance(restriction, TagsMatch):
            return all(self.tags[doc] & set(group) for group in restriction.groups)
        return True

    def search(self, vector: Sequence[float], limit: int, offset: int, restriction: Restriction | None) -> list[Hit]:
        self.searches += 1
        distances = ((self.corpus.vectors - np.asarray(vector)) ** 2).sum(axis=1)
        order = [i for i in np.argsort(distances, kind="stable") if self.matches(self.corpus.ids[i], restriction)]
        return [Hit(self.corpus.ids[i], float(distances[i])) for i in order[offset : offset + limit]]

    def count(self) -> int:
        return N

    def set_tags(self, tags: Mapping[str, Sequence[str]]) -> None:
        self.tags.update({doc: set(t) for doc, t in tags.items()})

    def clear_tags(self) -> None:
        self.tags = {doc: set() for doc in self.tags}


class ScriptedWrit:
    """Answers the §11 routes from the corpus as DESIGN §11 shapes them; `revoked` docs are
    denied by `filter` though their tags (in the store) still grant them."""

    def __init__(self, corpus: Corpus, max_ids: int, revoked: set[str] | None = None) -> None:
        self.corpus = corpus
        self.max_ids = max_ids
        self.revoked = revoked or set()
        self.routes: list[str] = []

    def run(self, call: Call[Any]) -> Any:
        self.routes.append(call.route)
        body = call.body or {}
        if call.route == "writ/visibility":
            (principal,) = body["principals"]
            visible = sorted(self.corpus.visible[principal])
            small = len(visible) <= body.get("max_ids", self.max_ids)
            answer = {"visible": len(visible), "total": N, "strategy": "ids" if small else "acl_tags", "revision": 5}
            if small:
                answer["ids"] = visible
            return call.read(answer)
        if call.route == "writ/memberships":
            principal = body["principal"]
            groups = [f"{GROUPS[principal]}#member"] if principal in GROUPS else []
            return call.read({"memberships": [principal, "user:*", *groups], "revision": 5})
        if call.route == "writ/filter":
            (principal,) = body["principals"]
            allowed = [i for i in body["ids"] if i in self.corpus.visible[principal] and i not in self.revoked]
            answer = {"allowed_ids": allowed, "examined": len(body["ids"]), "visible": len(allowed), "revision": 6}
            return call.read(answer)
        raise AssertionError(f"unexpected call {call.route}")


def test_acl_tags_when_visibility_says_so(corpus: Corpus) -> None:
    store = NumpyStore(corpus)
    writ = ScriptedWrit(corpus, max_ids=100)
    retriever = Retriever(writ, store, relation="viewer", object_type="document", options=Options(max_ids=100))  # type: ignore[arg-type]
    for principal in ["user:p100", "user:p50", "user:p10"]:
        for query in corpus.queries:
            writ.routes.clear()
            answer = retriever.search(principal, query.tolist(), K)
            assert answer.strategy == "acl_tags" and answer.rounds == 1
            assert [h.id for h in answer.hits] == corpus.truth(principal, query)
            assert writ.routes == ["writ/visibility", "writ/memberships", "writ/filter"]
    for principal in ["user:p1", "user:p01"]:
        answer = retriever.search(principal, corpus.queries[0].tolist(), K)
        assert answer.strategy == "ids" and [h.id for h in answer.hits] == corpus.truth(principal, corpus.queries[0])
    assert retriever.features.visibility is True


def test_stale_tags_are_caught_by_the_last_filter(corpus: Corpus) -> None:
    """A revocation not yet synced into the store's tags: the tag still matches, `filter` drops it,
    and the plan pages on to fill k."""
    query = corpus.queries[2]
    nearest = corpus.truth("user:p50", query)
    revoked = set(nearest[:3])
    store = NumpyStore(corpus)
    writ = ScriptedWrit(corpus, max_ids=100, revoked=revoked)
    answer = Retriever(writ, store, relation="viewer", object_type="document").search("user:p50", query.tolist(), K)  # type: ignore[arg-type]
    expected = corpus.nearest(corpus.visible["user:p50"] - revoked, query)
    assert answer.strategy == "acl_tags"
    assert [h.id for h in answer.hits] == expected and answer.rounds == 2 and not answer.underfilled
