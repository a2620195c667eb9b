"""The two thin shells that run the core's plans: `Retriever` (blocking, over `writ.Client`) and
`AsyncRetriever` (over `writ.AsyncClient`), and the `VectorStore` protocol the adapters meet.

A shell only carries out what a plan yields: a `Call` goes to the Writ client's `run`, a `Search`
or `Count` to the vector store; an error from Writ is thrown back into the plan, which decides.
An adapter's calls are blocking; the async shell runs them in a worker thread unless the adapter
also has `asearch` / `acount`.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generator, Mapping, Protocol, Sequence, TypeVar

from ..client import AsyncClient, Call, Client, WritError
from .core import Count, Features, Hit, Options, Query, Restriction, Retrieval, Search, fill_to_k

__all__ = ["AsyncRetriever", "Retriever", "VectorStore", "drive", "drive_async"]

R = TypeVar("R")


class VectorStore(Protocol):
    """A collection of a vector store, seen by the retriever. `max_filter_ids` is the longest id
    list its native filter takes well; `has_tags` says whether its payloads carry ACL tags."""

    max_filter_ids: int
    has_tags: bool

    def search(self, vector: Sequence[float], limit: int, offset: int, restriction: Restriction | None) -> list[Hit]:
        """The `limit` nearest hits after the first `offset`, restricted natively."""
        ...

    def count(self) -> int:
        """How many documents the collection holds."""
        ...

    def set_tags(self, tags: Mapping[str, Sequence[str]]) -> None:
        """Replace the ACL tags of the listed ids (an empty list: no tags)."""
        ...

    def clear_tags(self) -> None:
        """Remove every document's ACL tags (before a snapshot)."""
        ...


def _store_effect(store: VectorStore, effect: Search | Count) -> Any:
    if isinstance(effect, Search):
        return store.search(effect.vector, effect.limit, effect.offset, effect.restriction)
    return store.count()


def drive(plan: Generator[Any, Any, R], client: Client, store: VectorStore | None = None) -> R:
    """Run a plan to its end, blocking."""
    send: Any = None
    error: WritError | None = None
    while True:
        try:
            effect = plan.throw(error) if error is not None else plan.send(send)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        send, error = None, None
        if isinstance(effect, Call):
            try:
                send = client.run(effect)
            except WritError as raised:
                error = raised
        else:
            assert store is not None, "a plan that searches needs a vector store"
            send = _store_effect(store, effect)


async def drive_async(plan: Generator[Any, Any, R], client: AsyncClient, store: VectorStore | None = None) -> R:
    """Run a plan to its end, awaited."""
    send: Any = None
    error: WritError | None = None
    while True:
        try:
            effect = plan.throw(error) if error is not None else plan.send(send)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        send, error = None, None
        if isinstance(effect, Call):
            try:
                send = await client.run(effect)
            except WritError as raised:
                error = raised
        else:
            assert store is not None, "a plan that searches needs a vector store"
            send = await _store_effect_async(store, effect)


async def _store_effect_async(store: VectorStore, effect: Search | Count) -> Any:
    if isinstance(effect, Search) and hasattr(store, "asearch"):
        return await store.asearch(effect.vector, effect.limit, effect.offset, effect.restriction)
    if isinstance(effect, Count) and hasattr(store, "acount"):
        return await store.acount()
    return await asyncio.to_thread(_store_effect, store, effect)


class _Shell:
    """What both shells hold: the store, the (relation, object type) searched, the options and
    what the server was found to support."""

    def __init__(self, store: VectorStore, *, relation: str, object_type: str, options: Options | None = None) -> None:
        self.store = store
        self.relation = relation
        self.object_type = object_type
        self.options = options or Options()
        self.features = Features()

    def plan(
        self,
        principals: Sequence[str] | str,
        vector: Sequence[float],
        k: int,
        *,
        delegation_relation: str | None = None,
        context: Mapping[str, Any] | None = None,
        options: Options | None = None,
    ) -> Generator[Any, Any, Retrieval]:
        chain = (principals,) if isinstance(principals, str) else tuple(principals)
        query = Query(chain, self.relation, self.object_type, list(vector), k, delegation_relation, context)
        return fill_to_k(
            query,
            options or self.options,
            self.features,
            store_max_ids=self.store.max_filter_ids,
            store_has_tags=self.store.has_tags,
        )


class Retriever(_Shell):
    """Permission-aware search of one vector store with a blocking `writ.Client`."""

    def __init__(self, client: Client, store: VectorStore, *, relation: str, object_type: str, options: Options | None = None) -> None:
        super().__init__(store, relation=relation, object_type=object_type, options=options)
        self.client = client

    def search(self, principals: Sequence[str] | str, vector: Sequence[float], k: int, **query: Any) -> Retrieval:
        """The k nearest documents `principals` may see (see `writ.retrieval.core`)."""
        return drive(self.plan(principals, vector, k, **query), self.client, self.store)


class AsyncRetriever(_Shell):
    """`Retriever` with a `writ.AsyncClient`: the same plan, awaited."""

    def __init__(
        self, client: AsyncClient, store: VectorStore, *, relation: str, object_type: str, options: Options | None = None
    ) -> None:
        super().__init__(store, relation=relation, object_type=object_type, options=options)
        self.client = client

    async def search(self, principals: Sequence[str] | str, vector: Sequence[float], k: int, **query: Any) -> Retrieval:
        """The k nearest documents `principals` may see, awaited."""
        return await drive_async(self.plan(principals, vector, k, **query), self.client, self.store)
