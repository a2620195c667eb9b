"""LanceDB adapter: a table with the object id and a list column of ACL tags.

`lance_where` turns a restriction into a LanceDB SQL filter (applied before the vector search):
`IdsIn` is `id IN (...)`, `TagsMatch` an `array_has_any(tags, [...])` per principal, `AND`-ed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

from .core import Hit, IdsIn, Restriction

__all__ = ["LanceStore", "lance_where"]


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def lance_where(restriction: Restriction | None, *, id_key: str = "doc_id", tags_key: str = "acl_tags") -> str | None:
    """The LanceDB SQL filter for a restriction (None: no restriction)."""
    if restriction is None:
        return None
    if isinstance(restriction, IdsIn):
        if not restriction.ids:
            return "false"
        return f"{id_key} IN ({', '.join(_literal(i) for i in restriction.ids)})"
    clauses = [
        f"array_has_any({tags_key}, [{', '.join(_literal(t) for t in group)}])" if group else "false"
        for group in restriction.groups
    ]
    return " AND ".join(clauses)


class LanceStore:
    """One LanceDB table (`lancedb.connect(path).open_table(name)`), searched with `metric`."""

    has_tags = True

    def __init__(
        self,
        table: Any,
        *,
        id_key: str = "doc_id",
        tags_key: str = "acl_tags",
        metric: str = "l2",
        max_filter_ids: int = 10_000,
    ) -> None:
        self.table = table
        self.id_key = id_key
        self.tags_key = tags_key
        self.metric = metric
        self.max_filter_ids = max_filter_ids

    def search(self, vector: Sequence[float], limit: int, offset: int, restriction: Restriction | None) -> list[Hit]:
        search = self.table.search(list(vector)).distance_type(self.metric)
        where = lance_where(restriction, id_key=self.id_key, tags_key=self.tags_key)
        if where is not None:
            search = search.where(where, prefilter=True)
        rows = search.limit(limit).offset(offset).to_list()
        return [
            Hit(str(row[self.id_key]), float(row["_distance"]), {k: v for k, v in row.items() if k != "vector"})
            for row in rows
        ]

    def count(self) -> int:
        return int(self.table.count_rows())

    def set_tags(self, tags: Mapping[str, Sequence[str]]) -> None:
        # One update per distinct tag set: objects usually share a few.
        by_tags: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for object_id, object_tags in tags.items():
            by_tags[tuple(object_tags)].append(object_id)
        for object_tags, ids in by_tags.items():
            where = lance_where(IdsIn(tuple(ids)), id_key=self.id_key)
            if object_tags:
                self.table.update(where=where, values={self.tags_key: list(object_tags)})
            else:
                # An empty list literal does not type here; no tags is NULL, which matches nothing.
                self.table.update(where=where, values_sql={self.tags_key: "NULL"})

    def clear_tags(self) -> None:
        self.table.update(where="true", values_sql={self.tags_key: "NULL"})
