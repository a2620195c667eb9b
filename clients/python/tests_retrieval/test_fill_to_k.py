"""The retriever against a real `writ serve` and real local Qdrant, Chroma and LanceDB: for each
visible fraction it returns exactly the exact top-k of the visible documents (recall@10 = 1.0),
never a hidden one, where plain post-filtering of the top-k under-fills; and a revocation that
lands while a query runs is still filtered out."""

from __future__ import annotations

import time
from typing import Any, Sequence

import httpx
import pytest
from conftest import AGENT, FRACTIONS, K, N, Corpus, Report, WritStore, make_store, new_store

import writ
from writ.retrieval import Hit, Options, Restriction, Retrieval, Retriever

AUTO = "auto"
ADAPTIVE_POST_FILTER = "post_filter"
BLIND_POST_FILTER = "post_filter, prior 1/2"


def run_queries(retriever: Retriever, corpus: Corpus, principal: str, options: Options | None = None) -> list[tuple[Retrieval, float]]:
    answers = []
    for query in corpus.queries:
        started = time.perf_counter()
        answer = retriever.search(principal, query.tolist(), K, options=options)
        answers.append((answer, time.perf_counter() - started))
    return answers


def record(report: Report, store: Any, principal: str, method: str, answers: list[tuple[Any, float]], corpus: Corpus) -> None:
    n = len(answers)
    recalls = []
    for (answer, _), query in zip(answers, corpus.queries):
        truth = corpus.truth(principal, query)
        ids = [h.id for h in answer.hits] if isinstance(answer, Retrieval) else answer
        recalls.append(len(set(ids) & set(truth)) / len(truth) if truth else 1.0)
    hits = sum(len(a.hits) if isinstance(a, Retrieval) else len(a) for a, _ in answers) / n
    searches = sum(a.rounds if isinstance(a, Retrieval) else 1 for a, _ in answers) / n
    writ_calls = sum(a.writ_calls if isinstance(a, Retrieval) else 1 for a, _ in answers) / n
    underfilled = sum(1 for a, _ in answers if (a.underfilled if isinstance(a, Retrieval) else len(a) < K))
    ms = 1000 * sum(t for _, t in answers) / n
    strategy = (method if method == answers[0][0].strategy else f"{method} → {answers[0][0].strategy}") if isinstance(answers[0][0], Retrieval) else method
    visible = f"{100 * FRACTIONS[principal]:g}% ({len(corpus.visible[principal])})"
    report.rows.append(
        (type(store).__name__, visible, strategy, str(n), f"{hits:.1f}/{K}", f"{sum(recalls) / n:.2f}", f"{searches:.1f}",
         f"{writ_calls:.1f}", f"{ms:.1f}", f"{underfilled}/{n}")
    )


@pytest.mark.parametrize("principal", list(FRACTIONS))
def test_fills_to_the_exact_visible_top_k(
    vector_store: Any, writ_store: WritStore, corpus: Corpus, principal: str, report: Report
) -> None:
    with writ.Client(writ_store.url, writ_store.store_id, timeout=60) as client:
        retriever = Retriever(client, vector_store, relation="viewer", object_type="document")
        for method, options in [
            (AUTO, None),
            (ADAPTIVE_POST_FILTER, Options(strategy="post_filter")),
            (BLIND_POST_FILTER, Options(strategy="post_filter", prior_from_visible=False)),
        ]:
            answers = run_queries(retriever, corpus, principal, options)
            for (answer, _), query in zip(answers, corpus.queries):
                ids = [hit.id for hit in answer.hits]
                truth = corpus.truth(principal, query)
                assert set(ids) <= corpus.visible[principal], f"{method} returned a hidden document"
                assert ids == truth, f"{method} ({answer.strategy}, {answer.rounds} searches): {ids} != {truth}"
                assert not answer.underfilled
                assert len(ids) == min(K, len(corpus.visible[principal]))
            record(report, vector_store, principal, method, answers, corpus)
        if principal != "user:p100":
            # Few enough visible for an id list: `ids`; otherwise `acl_tags`, since the viewer
            # relation's tags are exact and the store has them. Both the server's own choice and
            # the retriever's are held to that, so neither can drift with the other.
            expected = "ids" if len(corpus.visible[principal]) <= Options().max_ids else "acl_tags"
            server = client.visibility([principal], "viewer", "document", max_ids=Options().max_ids).strategy
            assert server == expected, f"visibility chose {server} for {principal}"
            assert [a.strategy for a, _ in run_queries(retriever, corpus, principal)][0] == expected


@pytest.mark.parametrize("principal", list(FRACTIONS))
def test_plain_post_filter_of_the_top_k_under_fills(
    vector_store: Any, writ_store: WritStore, corpus: Corpus, principal: str, report: Report
) -> None:
    """The baseline the retriever replaces: search k, then `filter` them."""
    answers: list[tuple[list[str], float]] = []
    with writ.Client(writ_store.url, writ_store.store_id, timeout=60) as client:
        for query in corpus.queries:
            started = time.perf_counter()
            hits = vector_store.search(query.tolist(), K, 0, None)
            allowed = client.filter([principal], "viewer", "document", [h.id for h in hits]).allowed_ids
            answers.append((allowed, time.perf_counter() - started))
    record(report, vector_store, principal, "plain top-k + filter", answers, corpus)
    returned = [len(ids) for ids, _ in answers]
    if FRACTIONS[principal] <= 0.1:
        assert sum(returned) < len(returned) * K / 2, f"post-filtering the top {K} returned {returned}"
    if FRACTIONS[principal] == 1.0:
        assert returned == [K] * len(returned)


class RevokeDuringSearch:
    """A vector store that, on its `nth` search, first revokes `victim` in Writ: a revocation that
    lands after the visible set (ids, tags) was taken and before the hits are filtered."""

    def __init__(self, inner: Any, writ_store: WritStore, tuple_key: dict[str, str], nth: int = 1) -> None:
        self.inner = inner
        self.max_filter_ids = inner.max_filter_ids
        self.has_tags = inner.has_tags
        self.writ_store = writ_store
        self.tuple_key = tuple_key
        self.nth = nth
        self.searches = 0

    def search(self, vector: Sequence[float], limit: int, offset: int, restriction: Restriction | None) -> list[Hit]:
        self.searches += 1
        if self.searches == self.nth:
            httpx.post(
                f"{self.writ_store.url}/stores/{self.writ_store.store_id}/write",
                json={"deletes": {"tuple_keys": [self.tuple_key]}},
            ).raise_for_status()
        return self.inner.search(vector, limit, offset, restriction)

    def count(self) -> int:
        return int(self.inner.count())


@pytest.mark.parametrize("strategy", ["ids", "post_filter"])
def test_a_revocation_during_the_query_is_filtered_out(
    writ_url: str, corpus: Corpus, strategy: str, tmp_path: Any, report: Report
) -> None:
    principal = "user:p1"  # direct grants: the revocation is one tuple
    store = new_store(writ_url, corpus, f"revocation-{strategy}")
    query = corpus.queries[0]
    before = corpus.truth(principal, query)
    victim = before[0]
    # With a small fetch bound the post-filter search takes several rounds; the revocation lands
    # in the second, after the victim passed `filter` in the first.
    nth, options = (1, Options(strategy="ids")) if strategy == "ids" else (2, Options(strategy="post_filter", max_fetch=150, max_rounds=40))
    vectors = RevokeDuringSearch(
        make_store("qdrant", corpus, f"revocation-{strategy}", tmp_path),
        store,
        {"user": principal, "relation": "viewer", "object": f"document:{victim}"},
        nth,
    )
    with writ.Client(store.url, store.store_id, timeout=60) as client:
        answer = Retriever(client, vectors, relation="viewer", object_type="document").search(principal, query.tolist(), K, options=options)
    ids = [hit.id for hit in answer.hits]
    assert victim not in ids
    corpus_after = set(corpus.visible[principal]) - {victim}
    assert set(ids) <= corpus_after
    expected = [doc for doc in before if doc != victim]
    assert ids[: len(expected)] == expected
    assert len(ids) == K and not answer.underfilled
    report.notes.append(
        f"revocation during the query ({strategy}): victim {victim} (nearest visible) revoked at search #{nth}; "
        f"{answer.rounds} searches, {answer.writ_calls} writ calls, returned {len(ids)}/{K}, victim absent"
    )


def test_nothing_visible_costs_no_search(vector_store: Any, writ_store: WritStore) -> None:
    with writ.Client(writ_store.url, writ_store.store_id) as client:
        answer = Retriever(client, vector_store, relation="viewer", object_type="document").search("user:nobody", [0.0] * 32, K)
    assert answer.hits == [] and answer.rounds == 0 and answer.visible == 0 and not answer.underfilled


def test_the_fetch_bound_reports_underfilled(writ_store: WritStore, corpus: Corpus, tmp_path: Any) -> None:
    """Bounded rounds stop the search and say so, rather than returning fewer silently."""
    store = make_store("qdrant", corpus, "bounded", tmp_path)
    with writ.Client(writ_store.url, writ_store.store_id) as client:
        retriever = Retriever(client, store, relation="viewer", object_type="document")
        answer = retriever.search("user:p1", corpus.queries[1].tolist(), K, options=Options(strategy="post_filter", max_fetch=20, max_rounds=2))
    assert answer.rounds == 2 and answer.examined == 40
    assert len(answer.hits) < K and answer.underfilled and not answer.exhausted


def test_visibility_route_or_its_stand_in(writ_store: WritStore, corpus: Corpus, vector_store: Any) -> None:
    """`writ/visibility` where the server has it; else `list-objects`, remembered per retriever."""
    with writ.Client(writ_store.url, writ_store.store_id) as client:
        retriever = Retriever(client, vector_store, relation="viewer", object_type="document")
        first = retriever.search("user:p10", corpus.queries[0].tolist(), K)
        answer = retriever.search("user:p10", corpus.queries[1].tolist(), K)
        assert first.visible == answer.visible == len(corpus.visible["user:p10"])
        if retriever.features.visibility:
            assert answer.total == N
            visibility = client.visibility(["user:p10"], "viewer", "document", max_ids=5000)
            assert visibility.visible == len(corpus.visible["user:p10"]) and visibility.strategy in ("ids", "acl_tags")
        else:
            assert retriever.features.visibility is False
            assert answer.writ_calls == 2  # list-objects, then one filter: no second probe of visibility


def test_an_obo_chain_sees_what_every_principal_sees(vector_store: Any, writ_store: WritStore, corpus: Corpus) -> None:
    """p10 delegates to the agent: the chain sees p10's documents the agent also sees. p1 has not
    delegated: the chain sees nothing, though both p1 and the agent see some documents."""
    chain_visible = corpus.visible["user:p10"] & corpus.visible["user:p50"]
    with writ.Client(writ_store.url, writ_store.store_id) as client:
        retriever = Retriever(client, vector_store, relation="viewer", object_type="document")
        for query in corpus.queries:
            answer = retriever.search(["user:p10", AGENT], query.tolist(), K)
            assert [h.id for h in answer.hits] == corpus.nearest(chain_visible, query)
            assert not answer.underfilled
        broken = retriever.search(["user:p1", AGENT], corpus.queries[0].tolist(), K)
    assert broken.hits == [] and not broken.underfilled
    assert broken.visible is not None and broken.visible >= 0
