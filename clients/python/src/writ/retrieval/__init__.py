"""Permission-aware retrieval (DESIGN §11): vector search that fills to k with what Writ says the
principals may see.

`Retriever` / `AsyncRetriever` run the one plan in `writ.retrieval.core` over a `writ.Client` /
`writ.AsyncClient` and a `VectorStore` adapter: `writ.retrieval.qdrant_store.QdrantStore`,
`.chroma_store.ChromaStore`, `.lance_store.LanceStore`. On top of them:
`.langchain_retriever.WritRetriever` (LangChain) and `.llama_index_retriever.WritLlamaRetriever`
(LlamaIndex); `.tag_sync.TagSync` keeps a store's ACL tag payloads current. Adapters and
frameworks are imported on demand, so none is a dependency of `writ`.
"""

from .core import Count, Features, Hit, IdsIn, Options, Query, Restriction, Retrieval, Search, TagsMatch, fill_to_k
from .retriever import AsyncRetriever, Retriever, VectorStore, drive, drive_async

__all__ = [
    "AsyncRetriever",
    "Count",
    "Features",
    "Hit",
    "IdsIn",
    "Options",
    "Query",
    "Restriction",
    "Retrieval",
    "Retriever",
    "Search",
    "TagsMatch",
    "VectorStore",
    "drive",
    "drive_async",
    "fill_to_k",
]
