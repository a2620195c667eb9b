"""LlamaIndex: `WritLlamaRetriever`, a `BaseRetriever` over a `Retriever` (and optionally an
`AsyncRetriever` for `aretrieve`) for one principal or OBO chain.

The query's embedding comes from the `QueryBundle` when it has one, else from `embed(query_str)`.
Each node carries the hit's payload as metadata plus `writ_object`; its text is `text_key`.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from .core import Hit, Retrieval
from .retriever import AsyncRetriever, Retriever

__all__ = ["WritLlamaRetriever"]


class WritLlamaRetriever(BaseRetriever):
    """The k nearest nodes `principals` may see; the last `Retrieval` is `last_retrieval`."""

    def __init__(
        self,
        retriever: Retriever,
        principals: Sequence[str],
        *,
        k: int = 4,
        embed: Optional[Callable[[str], Sequence[float]]] = None,
        text_key: str = "text",
        async_retriever: Optional[AsyncRetriever] = None,
    ) -> None:
        super().__init__()
        self.retriever = retriever
        self.async_retriever = async_retriever
        self.principals = list(principals)
        self.k = k
        self.embed = embed
        self.text_key = text_key
        self.last_retrieval: Optional[Retrieval] = None

    def _vector(self, query: QueryBundle) -> Sequence[float]:
        if query.embedding is not None:
            return query.embedding
        if self.embed is None:
            raise ValueError("the query bundle has no embedding and the retriever no `embed`")
        return self.embed(query.query_str)

    def _node(self, hit: Hit) -> NodeWithScore:
        payload = dict(hit.payload)
        text = str(payload.pop(self.text_key, ""))
        metadata = {**payload, "writ_object": f"{self.retriever.object_type}:{hit.id}"}
        return NodeWithScore(node=TextNode(id_=hit.id, text=text, metadata=metadata), score=hit.score)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        result = self.retriever.search(self.principals, self._vector(query_bundle), self.k)
        self.last_retrieval = result
        return [self._node(hit) for hit in result.hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        if self.async_retriever is None:
            return self._retrieve(query_bundle)
        result = await self.async_retriever.search(self.principals, self._vector(query_bundle), self.k)
        self.last_retrieval = result
        return [self._node(hit) for hit in result.hits]
