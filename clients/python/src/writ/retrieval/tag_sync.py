"""Keeps a vector store's ACL tag payloads current from Writ (DESIGN §11).

`snapshot` pages `writ/acl-tags` into the store (every object's tags; an object not listed has
none), `catch_up` pages `writ/acl-tags/changes` after the last revision synced. Both are plans
(no I/O) run by `TagSync` (blocking) or `AsyncTagSync`; run `catch_up` on a timer or after writes.
Between a change and its sync the store's tags are stale: a revocation is still caught by the
retriever's final `filter`, a new grant is missed until then.
"""

from __future__ import annotations

from typing import Any, Generator, Optional

from ..client import AclTagChanges, AclTags, AsyncClient, Client, ObjectTags, acl_tag_changes_call, acl_tags_call
from .retriever import VectorStore, drive, drive_async

__all__ = ["AsyncTagSync", "TagSync", "catch_up_plan", "snapshot_plan"]

Plan = Generator[Any, Any, int]


def _by_id(object_type: str, objects: list[ObjectTags]) -> dict[str, list[str]]:
    prefix = f"{object_type}:"
    return {o.object[len(prefix) :]: o.tags for o in objects if o.object.startswith(prefix)}


def snapshot_plan(store: VectorStore, object_type: str, relation: str, page_size: int = 100) -> Plan:
    """Clear the store's tags, then write every page of `acl-tags`; returns the snapshot's revision.
    Raises `ValueError` where Writ says the tags are not exact for this relation."""
    token: Optional[str] = None
    revision: Optional[int] = None
    store.clear_tags()
    while True:
        page: AclTags = yield acl_tags_call(object_type, relation, page_size=page_size, continuation_token=token)
        if not page.exact:
            raise ValueError(f"acl tags of `{object_type}#{relation}` are not exact: search it with `post_filter`")
        revision = page.revision if revision is None else revision
        store.set_tags(_by_id(object_type, page.objects))
        token = page.continuation_token
        if not token:
            return revision


def catch_up_plan(store: VectorStore, object_type: str, relation: str, after_revision: int) -> Plan:
    """Write every object whose tags changed after `after_revision`; returns the new revision."""
    token: Optional[str] = None
    while True:
        page: AclTagChanges = yield acl_tag_changes_call(object_type, relation, after_revision, continuation_token=token)
        store.set_tags(_by_id(object_type, page.objects))
        token = page.continuation_token
        if not token:
            return page.revision


class _Sync:
    def __init__(self, store: VectorStore, *, object_type: str, relation: str, revision: Optional[int] = None) -> None:
        self.store = store
        self.object_type = object_type
        self.relation = relation
        self.revision = revision


class TagSync(_Sync):
    """A store's tags kept current with a blocking `writ.Client`; `revision` is the last synced."""

    def __init__(self, client: Client, store: VectorStore, *, object_type: str, relation: str, revision: Optional[int] = None) -> None:
        super().__init__(store, object_type=object_type, relation=relation, revision=revision)
        self.client = client

    def snapshot(self) -> int:
        self.revision = drive(snapshot_plan(self.store, self.object_type, self.relation), self.client)
        return self.revision

    def catch_up(self) -> int:
        """The changes since the last sync (a snapshot first if there was none)."""
        if self.revision is None:
            return self.snapshot()
        self.revision = drive(catch_up_plan(self.store, self.object_type, self.relation, self.revision), self.client)
        return self.revision


class AsyncTagSync(_Sync):
    """`TagSync` with a `writ.AsyncClient` (the store's writes stay blocking)."""

    def __init__(
        self, client: AsyncClient, store: VectorStore, *, object_type: str, relation: str, revision: Optional[int] = None
    ) -> None:
        super().__init__(store, object_type=object_type, relation=relation, revision=revision)
        self.client = client

    async def snapshot(self) -> int:
        self.revision = await drive_async(snapshot_plan(self.store, self.object_type, self.relation), self.client)
        return self.revision

    async def catch_up(self) -> int:
        if self.revision is None:
            return await self.snapshot()
        self.revision = await drive_async(catch_up_plan(self.store, self.object_type, self.relation, self.revision), self.client)
        return self.revision
