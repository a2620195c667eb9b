"""LangChain: `WritRetriever`, a `BaseRetriever` over a `Retriever` (and optionally an
`AsyncRetriever` for `ainvoke`) for one principal or OBO chain.

Each `Document` carries the hit's payload as metadata, plus `writ_object` (`type:id`) and
`writ_score`; `page_content` is the payload's `text_key` field.
"""

from __future__ import annotations

from typing import Optional, Sequence

from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from .core import Hit, Retrieval
from .retriever import AsyncRetriever, Retriever

__all__ = ["WritRetriever"]


class WritRetriever(BaseRetriever):
    """The k nearest documents `principals` may see, as LangChain `Document`s. The last
    `Retrieval` (strategy, rounds, underfilled) is kept in `last_retrieval`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    embeddings: Embeddings
    principals: Sequence[str]
    k: int = 4
    text_key: str = "text"
    async_retriever: Optional[AsyncRetriever] = None
    last_retrieval: Optional[Retrieval] = None

    def _document(self, hit: Hit) -> Document:
        payload = dict(hit.payload)
        text = str(payload.pop(self.text_key, ""))
        metadata = {**payload, "writ_object": f"{self.retriever.object_type}:{hit.id}", "writ_score": hit.score}
        return Document(page_content=text, metadata=metadata, id=hit.id)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        result = self.retriever.search(self.principals, self.embeddings.embed_query(query), self.k)
        self.last_retrieval = result
        return [self._document(hit) for hit in result.hits]

    async def _aget_relevant_documents(self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun) -> list[Document]:
        if self.async_retriever is None:
            return await super()._aget_relevant_documents(query, run_manager=run_manager)
        vector = await self.embeddings.aembed_query(query)
        result = await self.async_retriever.search(self.principals, vector, self.k)
        self.last_retrieval = result
        return [self._document(hit) for hit in result.hits]
