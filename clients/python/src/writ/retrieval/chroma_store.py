"""Chroma adapter: a collection whose metadata carry the object id and ACL tags (a list).

`chroma_where` turns a restriction into a Chroma `where`: `IdsIn` is `$in` on the id field,
`TagsMatch` an `$or` of `$contains` per membership, `$and`-ed over the principals. Chroma's query
has no offset: a page after `offset` asks for `offset + limit` and drops the first `offset`.
Give the collection explicit embeddings (the retriever passes query vectors), so Chroma never
loads its default embedding model.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .core import Hit, IdsIn, Restriction

__all__ = ["ChromaStore", "chroma_where"]


def _one_of(conditions: list[dict[str, Any]], operator: str) -> dict[str, Any]:
    return conditions[0] if len(conditions) == 1 else {operator: conditions}


def chroma_where(restriction: Restriction | None, *, id_key: str = "doc_id", tags_key: str = "acl_tags") -> dict[str, Any] | None:
    """The Chroma `where` for a restriction (None: no restriction)."""
    if restriction is None:
        return None
    if isinstance(restriction, IdsIn):
        return {id_key: {"$in": list(restriction.ids)}}
    per_principal = [
        _one_of([{tags_key: {"$contains": tag}} for tag in group], "$or") if group else {id_key: {"$in": []}}
        for group in restriction.groups
    ]
    return _one_of(per_principal, "$and")


class ChromaStore:
    """One Chroma collection (`chromadb.EphemeralClient().get_or_create_collection(...)`)."""

    has_tags = True

    def __init__(self, collection: Any, *, id_key: str = "doc_id", tags_key: str = "acl_tags", max_filter_ids: int = 5_000) -> None:
        self.collection = collection
        self.id_key = id_key
        self.tags_key = tags_key
        self.max_filter_ids = max_filter_ids

    def search(self, vector: Sequence[float], limit: int, offset: int, restriction: Restriction | None) -> list[Hit]:
        where = chroma_where(restriction, id_key=self.id_key, tags_key=self.tags_key)
        # Chroma answers fewer than `n_results` when fewer match: one round trip per page.
        answer = self.collection.query(
            query_embeddings=[list(vector)], n_results=offset + limit, where=where, include=["metadatas", "documents", "distances"]
        )
        hits = []
        for metadata, document, distance in zip(answer["metadatas"][0], answer["documents"][0], answer["distances"][0]):
            payload = {**(metadata or {}), "text": document}
            hits.append(Hit(str(payload[self.id_key]), float(distance), payload))
        return hits[offset:]

    def count(self) -> int:
        return int(self.collection.count())

    def set_tags(self, tags: Mapping[str, Sequence[str]]) -> None:
        if not tags:
            return
        found = self.collection.get(where={self.id_key: {"$in": list(tags)}}, include=["metadatas"])
        metadatas = []
        for metadata in found["metadatas"]:
            object_tags = list(tags[str(metadata[self.id_key])])
            # `update` merges metadata; None removes the key (Chroma takes no empty list).
            metadatas.append({self.tags_key: object_tags or None})
        if found["ids"]:
            self.collection.update(ids=found["ids"], metadatas=metadatas)

    def clear_tags(self) -> None:
        everything = self.collection.get(include=["metadatas"])
        ids = {str(m[self.id_key]): () for m in everything["metadatas"]}
        self.set_tags(ids)
