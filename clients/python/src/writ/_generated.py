"""The request and answer types of the routes the client calls, generated from Writ's
`/openapi.json` by `tools/generate_types.py`: do not edit by hand, regenerate (the header of that
script says how; `tests/test_generated.py` fails when this file and the server disagree).

Each type is a frozen dataclass; `writ._wire.Wire` gives it `from_json` and `to_json`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._wire import Wire


__all__ = [
    "AclTagChangesResponse",
    "AclTagsResponse",
    "ApprovalRef",
    "AudienceCheckRequest",
    "AudienceCheckResponse",
    "AudienceResult",
    "CheckRequest",
    "CheckResponse",
    "CheckTupleKey",
    "FilterRequest",
    "FilterResponse",
    "ListObjectsRequest",
    "ListObjectsResponse",
    "MembershipsRequest",
    "MembershipsResponse",
    "ObjectTags",
    "OboCheckRequest",
    "OboCheckResponse",
    "VisibilityRequest",
    "VisibilityResponse",
]


@dataclass(frozen=True)
class CheckTupleKey(Wire):
    """A check's tuple key: OpenFGA's `CheckRequestTupleKey`, `{user, relation, object}`."""

    user: str
    relation: str
    object: str


@dataclass(frozen=True)
class CheckRequest(Wire):
    """The body of `POST /stores/{store_id}/check`."""

    _nested = {'tuple_key': ('CheckTupleKey', False)}  # type: ignore[assignment]

    tuple_key: CheckTupleKey
    context: dict[str, Any] | None = None
    contextual_tuples: Any | None = None
    authorization_model_id: str | None = None
    at_least_revision: int | None = None
    audit: dict[str, Any] | None = None


@dataclass(frozen=True)
class CheckResponse(Wire):
    """The answer of `POST /stores/{store_id}/check`."""

    allowed: bool
    resolution: str


@dataclass(frozen=True)
class ListObjectsRequest(Wire):
    """The body of `POST /stores/{store_id}/list-objects`."""

    type: str
    relation: str
    user: str
    context: dict[str, Any] | None = None
    contextual_tuples: Any | None = None
    authorization_model_id: str | None = None
    at_least_revision: int | None = None
    audit: dict[str, Any] | None = None


@dataclass(frozen=True)
class ListObjectsResponse(Wire):
    """The answer of `POST /stores/{store_id}/list-objects`."""

    objects: list[str]


@dataclass(frozen=True)
class OboCheckRequest(Wire):
    """The body of `POST /stores/{store_id}/writ/obo-check`."""

    principals: list[str]
    relation: str
    object: str
    delegation_relation: str | None = None
    approval: str | None = None
    context: dict[str, Any] | None = None
    contextual_tuples: Any | None = None
    authorization_model_id: str | None = None
    at_least_revision: int | None = None
    audit: dict[str, Any] | None = None


@dataclass(frozen=True)
class ApprovalRef(Wire):
    """The approval an obo-check answer names: the one that allowed it, or the one its deny raised."""

    id: str
    state: str


@dataclass(frozen=True)
class OboCheckResponse(Wire):
    """The answer of `POST /stores/{store_id}/writ/obo-check`."""

    _nested = {'approval': ('ApprovalRef', False)}  # type: ignore[assignment]

    allowed: bool
    revision: int
    denied_by: Any | None = None
    approval: ApprovalRef | None = None


@dataclass(frozen=True)
class AudienceCheckRequest(Wire):
    """The body of `POST /stores/{store_id}/writ/audience-check`."""

    audience: list[str]
    relation: str
    objects: list[str]
    context: dict[str, Any] | None = None
    contextual_tuples: Any | None = None
    authorization_model_id: str | None = None
    at_least_revision: int | None = None
    audit: dict[str, Any] | None = None


@dataclass(frozen=True)
class AudienceResult(Wire):
    """`AudienceResult` of Writ's API."""

    object: str
    allowed: bool
    denied_for: list[str]


@dataclass(frozen=True)
class AudienceCheckResponse(Wire):
    """The answer of `POST /stores/{store_id}/writ/audience-check`."""

    _nested = {'results': ('AudienceResult', True)}  # type: ignore[assignment]

    results: list[AudienceResult]
    revision: int


@dataclass(frozen=True)
class FilterRequest(Wire):
    """The body of `POST /stores/{store_id}/writ/filter`."""

    principals: list[str]
    relation: str
    object_type: str
    ids: list[str]
    delegation_relation: str | None = None
    context: dict[str, Any] | None = None
    contextual_tuples: Any | None = None
    authorization_model_id: str | None = None
    at_least_revision: int | None = None
    audit: dict[str, Any] | None = None


@dataclass(frozen=True)
class FilterResponse(Wire):
    """The answer of `POST /stores/{store_id}/writ/filter`."""

    allowed_ids: list[str]
    examined: int
    visible: int
    revision: int
    denied_by: Any | None = None


@dataclass(frozen=True)
class VisibilityRequest(Wire):
    """The body of `POST /stores/{store_id}/writ/visibility`."""

    principals: list[str]
    relation: str
    object_type: str
    max_ids: int | None = None
    delegation_relation: str | None = None
    context: dict[str, Any] | None = None
    authorization_model_id: str | None = None
    at_least_revision: int | None = None


@dataclass(frozen=True)
class VisibilityResponse(Wire):
    """The answer of `POST /stores/{store_id}/writ/visibility`."""

    visible: int
    total: int
    strategy: str
    revision: int
    ids: list[str] | None = None
    denied_by: Any | None = None


@dataclass(frozen=True)
class ObjectTags(Wire):
    """One object's tags on the wire."""

    object: str
    tags: list[str]


@dataclass(frozen=True)
class AclTagsResponse(Wire):
    """The answer of `GET /stores/{store_id}/writ/acl-tags`."""

    _nested = {'objects': ('ObjectTags', True)}  # type: ignore[assignment]

    exact: bool
    revision: int
    objects: list[ObjectTags]
    continuation_token: str


@dataclass(frozen=True)
class AclTagChangesResponse(Wire):
    """The answer of `GET /stores/{store_id}/writ/acl-tags/changes`."""

    _nested = {'objects': ('ObjectTags', True)}  # type: ignore[assignment]

    exact: bool
    objects: list[ObjectTags]
    revision: int
    continuation_token: str


@dataclass(frozen=True)
class MembershipsRequest(Wire):
    """The body of `POST /stores/{store_id}/writ/memberships`."""

    principal: str
    authorization_model_id: str | None = None
    at_least_revision: int | None = None


@dataclass(frozen=True)
class MembershipsResponse(Wire):
    """The answer of `POST /stores/{store_id}/writ/memberships`."""

    memberships: list[str]
    revision: int
