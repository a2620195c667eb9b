"""Qdrant adapter: a collection whose points carry the object id and ACL tags in their payload.

`qdrant_filter` turns a restriction into a Qdrant `Filter`: `IdsIn` is a `MatchAny` on the id
field, `TagsMatch` one `MatchAny` on the tags field per principal (all must hold). Qdrant's local
mode (`QdrantClient(":memory:")` or a path) and a server behave the same.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

from qdrant_client import QdrantClient, models

from .core import Hit, IdsIn, Restriction

__all__ = ["QdrantStore", "qdrant_filter"]


def qdrant_filter(restriction: Restriction | None, *, id_key: str = "doc_id", tags_key: str = "acl_tags") -> models.Filter | None:
    """The Qdrant filter for a restriction (None: no restriction)."""
    if restriction is None:
        return None
    if isinstance(restriction, IdsIn):
        return models.Filter(must=[models.FieldCondition(key=id_key, match=models.MatchAny(any=list(restriction.ids)))])
    return models.Filter(
        must=[models.FieldCondition(key=tags_key, match=models.MatchAny(any=list(group))) for group in restriction.groups]
    )


class QdrantStore:
    """One Qdrant collection; the object id is the payload field `id_key` (Qdrant's point ids must
    be integers or UUIDs, so they stay the store's own)."""

    has_tags = True

    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        *,
        id_key: str = "doc_id",
        tags_key: str = "acl_tags",
        max_filter_ids: int = 10_000,
    ) -> None:
        self.client = client
        self.collection = collection
        self.id_key = id_key
        self.tags_key = tags_key
        self.max_filter_ids = max_filter_ids

    def search(self, vector: Sequence[float], limit: int, offset: int, restriction: Restriction | None) -> list[Hit]:
        answer = self.client.query_points(
            self.collection,
            query=list(vector),
            limit=limit,
            offset=offset,
            query_filter=qdrant_filter(restriction, id_key=self.id_key, tags_key=self.tags_key),
            with_payload=True,
        )
        return [Hit(str((p.payload or {})[self.id_key]), float(p.score), p.payload or {}) for p in answer.points]

    def count(self) -> int:
        return int(self.client.count(self.collection, exact=True).count)

    def set_tags(self, tags: Mapping[str, Sequence[str]]) -> None:
        if not tags:
            return
        # The points' own ids in one scroll, then one payload write per distinct tag set (objects
        # share a few): a filter per object would scan the collection once per object.
        point_ids: dict[str, list[Any]] = defaultdict(list)
        wanted = models.Filter(must=[models.FieldCondition(key=self.id_key, match=models.MatchAny(any=list(tags)))])
        offset: Any = None
        while True:
            points, offset = self.client.scroll(
                self.collection, scroll_filter=wanted, limit=1024, offset=offset, with_payload=[self.id_key], with_vectors=False
            )
            for point in points:
                point_ids[str((point.payload or {})[self.id_key])].append(point.id)
            if offset is None:
                break
        by_tags: dict[tuple[str, ...], list[Any]] = defaultdict(list)
        for object_id, object_tags in tags.items():
            by_tags[tuple(object_tags)].extend(point_ids.get(object_id, []))
        operations: list[Any] = [
            models.SetPayloadOperation(set_payload=models.SetPayload(payload={self.tags_key: list(object_tags)}, points=ids))
            for object_tags, ids in by_tags.items()
            if ids
        ]
        if operations:
            self.client.batch_update_points(self.collection, operations)

    def clear_tags(self) -> None:
        self.client.set_payload(self.collection, payload={self.tags_key: []}, points=models.Filter(must=[]))
