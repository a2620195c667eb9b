"""The retriever core (DESIGN §11): fill a vector search's top-k with visible documents only.

`fill_to_k` is a plan with no I/O: a generator that yields what it needs done, a `Call` to Writ or
a `Search` of the vector store, and is sent the answer (or thrown the `WritError`). The shells in
`writ.retrieval.retriever` run it blocking or awaited, so the logic below exists once.

The plan, in order:
1. Ask `writ/visibility` how many objects of the type the principals see, and how to search. A
   server without the route (404 `undefined_endpoint`) is remembered, and `list-objects` per
   principal stands in: their intersection is the visible set of a single subject, and a superset
   of an OBO chain's (the delegation links are left to `filter`).
2. Pick the restriction the vector store applies natively: `IdsIn` when the visible set is at most
   `max_ids` (and the store's own limit), `TagsMatch` on ACL tags when Writ says `acl_tags` and the
   store's payloads carry them, else none (post-filter).
3. Search in rounds. Each round asks for as many candidates as the observed pass rate says are
   needed to reach k (a Beta prior centred on `visible / total`, or `1 / initial_factor` when
   unknown, weighted as k observations), and at least `growth` times the last round, from where
   the last round stopped, and sends the new
   candidates to `writ/filter`. It stops with k visible hits, when the store has no more
   candidates, when every visible object has been found, or after `max_rounds` (then `underfilled`).
4. `filter` is the last word: every hit passed `filter` at the latest revision when it was found,
   and hits found in an earlier round than the last are filtered again if the revision moved, so a
   revocation not yet synced into the vector store (stale tags, a stale id list) is still caught.

**Invariant:** a returned hit was allowed by `filter` at the revision of the plan's last `filter`
call; the hits are in the store's order (nearest first).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Generator, Mapping, Sequence, Union

from ..client import Call, FilterResult, Visibility, WritError, filter_call, list_objects_call, memberships_call, visibility_call

__all__ = [
    "Count",
    "Features",
    "Hit",
    "IdsIn",
    "Options",
    "Plan",
    "Query",
    "Restriction",
    "Retrieval",
    "Search",
    "TagsMatch",
    "fill_to_k",
    "route_missing",
]

# `writ/filter` takes at most this many ids by default (`writ serve --max-filter-ids`).
SERVER_FILTER_IDS = 10_000


@dataclass(frozen=True)
class IdsIn:
    """Native restriction: the object id is one of `ids` (ids without the `type:` prefix)."""

    ids: tuple[str, ...]


@dataclass(frozen=True)
class TagsMatch:
    """Native restriction on ACL tag payloads: for every group (one per principal of the chain),
    the object's tags share at least one tag with the group (the principal's memberships)."""

    groups: tuple[tuple[str, ...], ...]


Restriction = Union[IdsIn, TagsMatch]


@dataclass(frozen=True)
class Hit:
    """One search result: the object id (no `type:` prefix), the store's score, and its payload
    (metadata and text, as the store keeps them)."""

    id: str
    score: float
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Search:
    """Ask the vector store for the `limit` nearest hits after the first `offset`, restricted."""

    vector: Sequence[float]
    limit: int
    offset: int
    restriction: Restriction | None


@dataclass(frozen=True)
class Count:
    """Ask the vector store how many documents it holds."""


@dataclass
class Features:
    """What the Writ server was found to support, remembered across queries of one retriever."""

    visibility: bool | None = None


@dataclass(frozen=True)
class Options:
    """Knobs of the plan. `strategy` forces one (`ids`, `acl_tags`, `post_filter`) where possible."""

    max_ids: int = 1024
    initial_factor: float = 2.0
    max_rounds: int = 6
    max_fetch: int = 4096
    # Each round asks for at least this many times the last one: the expectation alone takes
    # many rounds for the last few hits when they are rare.
    growth: float = 2.0
    strategy: str | None = None
    # Centre the pass-rate prior on `visible / total` (else on `1 / initial_factor`).
    prior_from_visible: bool = True


@dataclass(frozen=True)
class Query:
    """One retrieval: who (`principals`, a subject or an OBO chain), what (`relation` on
    `object_type`), the query vector and k."""

    principals: tuple[str, ...]
    relation: str
    object_type: str
    vector: Sequence[float]
    k: int
    delegation_relation: str | None = None
    context: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Retrieval:
    """The answer: at most k visible hits, nearest first, and how they were found.

    `underfilled` is true when fewer than k hits came back although the store may hold more
    visible ones (the round or fetch bound stopped the search); `exhausted` when the store ran out
    of candidates. `rounds` counts vector-store searches, `store_calls` every vector-store call,
    `writ_calls` every call to Writ."""

    hits: list[Hit]
    strategy: str
    visible: int | None
    total: int | None
    rounds: int
    store_calls: int
    writ_calls: int
    examined: int
    underfilled: bool
    exhausted: bool
    revision: int


Plan = Generator[Union[Call[Any], Search, Count], Any, Retrieval]


def route_missing(error: WritError) -> bool:
    """Whether a Writ error says the route does not exist on this server (an older Writ)."""
    return error.code == "undefined_endpoint" or (error.status in (404, 405) and error.code.startswith("http_"))


@dataclass
class _Tally:
    store_calls: int = 0
    writ_calls: int = 0


def _strip(object_type: str, objects: Sequence[str]) -> list[str]:
    prefix = f"{object_type}:"
    return [o[len(prefix) :] for o in objects if o.startswith(prefix)]


def _visibility(query: Query, options: Options, features: Features, tally: _Tally) -> Generator[Any, Any, Visibility]:
    """`writ/visibility`, or its stand-in from `list-objects` on a server without it (`total` is
    then -1: unknown to Writ)."""
    if features.visibility is not False:
        try:
            tally.writ_calls += 1
            answer: Visibility = yield visibility_call(
                query.principals, query.relation, query.object_type, max_ids=options.max_ids
            )
            features.visibility = True
            return answer
        except WritError as error:
            if not route_missing(error):
                raise
            features.visibility = False
    visible: set[str] | None = None
    for principal in query.principals:
        tally.writ_calls += 1
        objects = yield list_objects_call(principal, query.relation, query.object_type, **_context(query))
        principal_sees = set(_strip(query.object_type, objects))
        visible = principal_sees if visible is None else visible & principal_sees
    visible_ids = sorted(visible or ())
    strategy = "ids" if len(visible_ids) <= options.max_ids else "post_filter"
    ids = visible_ids if strategy == "ids" else None
    return Visibility(visible=len(visible_ids), total=-1, strategy=strategy, revision=0, ids=ids)


def _context(query: Query) -> dict[str, Any]:
    return {} if query.context is None else {"context": query.context}


def _restriction(
    query: Query, visibility: Visibility, options: Options, store_max_ids: int, store_has_tags: bool, tally: _Tally
) -> Generator[Any, Any, tuple[str, Restriction | None]]:
    """The strategy to run and the native restriction that goes with it."""
    wanted = options.strategy or visibility.strategy
    if wanted == "ids" and visibility.ids is not None and len(visibility.ids) <= store_max_ids:
        return "ids", IdsIn(tuple(visibility.ids))
    if wanted == "acl_tags" and store_has_tags:
        groups = []
        for principal in query.principals:
            tally.writ_calls += 1
            answer = yield memberships_call(principal)
            groups.append(tuple(answer.memberships))
        return "acl_tags", TagsMatch(tuple(groups))
    return "post_filter", None


def _rate(passed: int, examined: int, prior: float, weight: float) -> float:
    """The expected pass rate of the next candidates: a Beta prior centred on `prior`, worth
    `weight` observations, updated with what the rounds so far saw."""
    return (passed + prior * weight) / (examined + weight)


def fill_to_k(
    query: Query, options: Options, features: Features, *, store_max_ids: int, store_has_tags: bool
) -> Plan:
    """The plan for one retrieval (see the module doc); run it with a shell."""
    tally = _Tally()
    k = query.k
    if k <= 0:
        raise ValueError(f"k must be positive, not {k}")
    visibility = yield from _visibility(query, options, features, tally)
    if visibility.visible == 0:
        return Retrieval([], visibility.strategy, 0, visibility.total, 0, 0, tally.writ_calls, 0, False, True, visibility.revision)
    strategy, restriction = yield from _restriction(
        query, visibility, options, store_max_ids, store_has_tags, tally
    )
    total = visibility.total
    if strategy == "post_filter" and total < 0 and options.prior_from_visible:
        tally.store_calls += 1
        total = yield Count()
    if restriction is not None:
        prior = 1.0
    elif total > 0 and options.prior_from_visible:
        prior = max(visibility.visible / total, 1.0 / max(total, 1))
    else:
        prior = 1.0 / options.initial_factor
    fetch_cap = min(options.max_fetch, SERVER_FILTER_IDS)

    found: list[Hit] = []
    found_at: dict[str, int] = {}
    seen: set[str] = set()
    offset = examined = passed = rounds = last_limit = 0
    exhausted = False
    revision = visibility.revision
    while True:
        rate = _rate(passed, examined, prior, weight=k)
        needed = k - len(found)
        margin = 1.0 if rate >= 0.999 else 1.25
        limit = max(needed, min(fetch_cap, max(math.ceil(needed / max(rate, 1e-9) * margin), math.ceil(last_limit * options.growth))))
        last_limit = limit
        tally.store_calls += 1
        rounds += 1
        hits: list[Hit] = yield Search(query.vector, limit, offset, restriction)
        offset += len(hits)
        fresh = [hit for hit in hits if hit.id not in seen]
        seen.update(hit.id for hit in fresh)
        if fresh:
            answer = yield from _filter(query, [hit.id for hit in fresh], tally)
            allowed = set(answer.allowed_ids)
            revision = answer.revision
            for hit in fresh:
                if hit.id in allowed and len(found) < k:
                    found.append(hit)
                    found_at[hit.id] = revision
            examined += len(fresh)
            passed += len(allowed)
        exhausted = len(hits) < limit
        # `visible` is exact, or an upper bound (an OBO chain without `writ/visibility`).
        all_found = passed >= visibility.visible
        if len(found) >= k or exhausted or all_found or rounds >= options.max_rounds:
            stale = [hit.id for hit in found if found_at[hit.id] < revision]
            if stale:
                answer = yield from _filter(query, stale, tally)
                still = set(answer.allowed_ids)
                revision = answer.revision
                dropped = {i for i in stale if i not in still}
                found = [hit for hit in found if hit.id not in dropped]
                found_at = {hit.id: revision for hit in found}
                passed -= len(dropped)
                if dropped and not exhausted and rounds < options.max_rounds:
                    continue
            break
    underfilled = len(found) < k and not exhausted and passed < visibility.visible
    return Retrieval(
        found,
        strategy,
        visibility.visible,
        None if total < 0 else total,
        rounds,
        tally.store_calls,
        tally.writ_calls,
        examined,
        underfilled,
        exhausted,
        revision,
    )


def _filter(query: Query, ids: list[str], tally: _Tally) -> Generator[Any, Any, FilterResult]:
    tally.writ_calls += 1
    answer: FilterResult = yield filter_call(
        query.principals,
        query.relation,
        query.object_type,
        ids,
        delegation_relation=query.delegation_relation,
        **_context(query),
    )
    return answer
