"""Writ's HTTP API: `Client` (blocking) and `AsyncClient`, one method per route.

Method names mirror the routes (`check` is `POST /stores/{id}/check`, `obo_check` is
`POST /stores/{id}/writ/obo-check`, ...), bodies are the API's JSON, and every error answer is
raised as a `WritError` carrying the server's `{code, message}`. A deny is an answer, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar, Union

import httpx

from . import _generated as wire

__all__ = [
    "AclTagChanges",
    "AclTags",
    "AsyncClient",
    "AudienceResult",
    "AudienceCheckResult",
    "Call",
    "CheckItem",
    "Client",
    "FilterResult",
    "Memberships",
    "ObjectTags",
    "OboDecision",
    "Visibility",
    "WritError",
]

DEFAULT_TIMEOUT_SECONDS = 10.0


class WritError(Exception):
    """An error answer from Writ (`code`, `message` as the server sent them), or Writ unreachable
    (`status` None, `code` `unavailable`)."""

    def __init__(self, code: str, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.body = body


@dataclass(frozen=True)
class CheckItem:
    """One check of a `batch_check`: does `user` hold `relation` on `object`."""

    user: str
    relation: str
    object: str
    context: Mapping[str, Any] | None = None


# The answers are the types generated from `/openapi.json` (`writ._generated`), under the names
# the client has always exported: `from_json` reads them, keys a newer server adds are ignored.
OboDecision = wire.OboCheckResponse
AudienceResult = wire.AudienceResult
AudienceCheckResult = wire.AudienceCheckResponse
FilterResult = wire.FilterResponse
Visibility = wire.VisibilityResponse
ObjectTags = wire.ObjectTags
AclTags = wire.AclTagsResponse
AclTagChanges = wire.AclTagChangesResponse
Memberships = wire.MembershipsResponse


T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and the reader of its answer, with no I/O: `Client` runs it blocking,
    `AsyncClient` awaited, so a route is written once for both (and `writ.retrieval` plans with
    calls it hands to either)."""

    method: str
    route: str
    read: Callable[[Any], T]
    body: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    # A read may be sent again when the connection was closed under it (see `Client.run`).
    read_only: bool = True


BatchInput = Union[CheckItem, Sequence[str]]


def _options(
    context: Mapping[str, Any] | None = None,
    contextual_tuples: Sequence[Mapping[str, Any]] | None = None,
    authorization_model_id: str | None = None,
    at_least_revision: int | None = None,
    audit: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if context is not None:
        body["context"] = dict(context)
    if contextual_tuples is not None:
        body["contextual_tuples"] = {"tuple_keys": [dict(t) for t in contextual_tuples]}
    if authorization_model_id is not None:
        body["authorization_model_id"] = authorization_model_id
    if at_least_revision is not None:
        body["at_least_revision"] = at_least_revision
    if audit is not None:
        body["audit"] = dict(audit)
    return body


def _batch_item(item: BatchInput) -> CheckItem:
    if isinstance(item, CheckItem):
        return item
    user, relation, obj = item
    return CheckItem(user, relation, obj)


class _Requests:
    """The requests and answer readers both clients share; no I/O."""

    def __init__(self, base_url: str, store_id: str, api_key: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self.store_id = store_id
        self.headers = {"Accept": "application/json"}
        if api_key is not None:
            self.headers["Authorization"] = f"Bearer {api_key}"

    def with_request_id(self, request_id: str | None) -> dict[str, str]:
        """The headers, with `x-request-id`: the id the decision log records the decision under."""
        return self.headers if request_id is None else {**self.headers, "x-request-id": request_id}

    def path(self, route: str) -> str:
        return f"/stores/{self.store_id}/{route}"

    @staticmethod
    def answer(response: httpx.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and body is not None:
            return body
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            raise WritError(body["code"], str(body.get("message", "")), response.status_code, body)
        raise WritError(
            f"http_{response.status_code}", response.text[:500] or response.reason_phrase, response.status_code, body
        )

    @staticmethod
    def batch_body(items: Sequence[BatchInput], options: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        checks = []
        ids = []
        for i, raw in enumerate(items):
            item = _batch_item(raw)
            correlation_id = str(i)
            ids.append(correlation_id)
            check: dict[str, Any] = {
                "tuple_key": {"user": item.user, "relation": item.relation, "object": item.object},
                "correlation_id": correlation_id,
            }
            if item.context is not None:
                check["context"] = dict(item.context)
            checks.append(check)
        return {"checks": checks, **options}, ids

    @staticmethod
    def batch_answer(body: Any, ids: list[str]) -> list[bool]:
        result = body.get("result", {}) if isinstance(body, dict) else {}
        answers = []
        for correlation_id in ids:
            entry = result.get(correlation_id)
            if not isinstance(entry, dict):
                raise WritError("internal_error", f"batch-check answered nothing for check {correlation_id}")
            if "error" in entry:
                error = entry["error"]
                code = error.get("input_error") or error.get("internal_error") or "internal_error"
                raise WritError(str(code), str(error.get("message", "")), 200, entry)
            answers.append(bool(entry.get("allowed")))
        return answers

    obo = staticmethod(OboDecision.from_json)
    audience = staticmethod(AudienceCheckResult.from_json)
    filtered = staticmethod(FilterResult.from_json)


def _check_body(user: str, relation: str, obj: str, options: dict[str, Any]) -> dict[str, Any]:
    tuple_key = {"user": user, "relation": relation, "object": obj}
    body: dict[str, Any] = wire.CheckRequest(tuple_key=tuple_key, **options).to_json()
    return body


def _obo_body(
    principals: Sequence[str], relation: str, obj: str, delegation_relation: str | None, options: dict[str, Any]
) -> dict[str, Any]:
    request = wire.OboCheckRequest(
        principals=list(principals), relation=relation, object=obj, delegation_relation=delegation_relation, **options
    )
    body: dict[str, Any] = request.to_json()
    return body


def _filter_body(
    principals: Sequence[str],
    relation: str,
    object_type: str,
    ids: Sequence[str],
    delegation_relation: str | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    request = wire.FilterRequest(
        principals=list(principals),
        relation=relation,
        object_type=object_type,
        ids=list(ids),
        delegation_relation=delegation_relation,
        **options,
    )
    body: dict[str, Any] = request.to_json()
    return body


def _audience_body(audience: Sequence[str], relation: str, objects: Sequence[str], options: dict[str, Any]) -> dict[str, Any]:
    request = wire.AudienceCheckRequest(audience=list(audience), relation=relation, objects=list(objects), **options)
    body: dict[str, Any] = request.to_json()
    return body


def _explain_body(
    user: str | None, principals: Sequence[str] | None, relation: str, obj: str, options: dict[str, Any]
) -> dict[str, Any]:
    if (user is None) == (principals is None):
        raise ValueError("explain takes exactly one of `user` (a check) or `principals` (an OBO chain)")
    if user is not None:
        return _check_body(user, relation, obj, options)
    return {"principals": list(principals or []), "relation": relation, "object": obj, **options}


def _query(**params: Any) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}


def filter_call(
    principals: Sequence[str],
    relation: str,
    object_type: str,
    ids: Sequence[str],
    *,
    delegation_relation: str | None = None,
    **options: Any,
) -> Call[FilterResult]:
    """`POST writ/filter`, as a `Call`."""
    body = _filter_body(principals, relation, object_type, ids, delegation_relation, _options(**options))
    return Call("POST", "writ/filter", _Requests.filtered, body)


def visibility_call(
    principals: Sequence[str], relation: str, object_type: str, *, max_ids: int | None = None, **options: Any
) -> Call[Visibility]:
    """`POST writ/visibility` (DESIGN §11), as a `Call`."""
    request = wire.VisibilityRequest(
        principals=list(principals), relation=relation, object_type=object_type, max_ids=max_ids, **_options(**options)
    )
    return Call("POST", "writ/visibility", Visibility.from_json, request.to_json())


def acl_tags_call(
    object_type: str, relation: str, *, page_size: int | None = None, continuation_token: str | None = None
) -> Call[AclTags]:
    """`GET writ/acl-tags` (DESIGN §11): one page of the tag snapshot, as a `Call`."""
    params = _query(object_type=object_type, relation=relation, page_size=page_size, continuation_token=continuation_token)
    return Call("GET", "writ/acl-tags", AclTags.from_json, params=params)


def acl_tag_changes_call(
    object_type: str, relation: str, after_revision: int, *, continuation_token: str | None = None
) -> Call[AclTagChanges]:
    """`GET writ/acl-tags/changes` (DESIGN §11): objects whose tags changed after a revision."""
    params = _query(
        object_type=object_type, relation=relation, after_revision=after_revision, continuation_token=continuation_token
    )
    return Call("GET", "writ/acl-tags/changes", AclTagChanges.from_json, params=params)


def memberships_call(principal: str) -> Call[Memberships]:
    """`POST writ/memberships` (DESIGN §11): the tags that match `principal`, as a `Call`."""
    return Call("POST", "writ/memberships", Memberships.from_json, wire.MembershipsRequest(principal=principal).to_json())


def list_objects_call(user: str, relation: str, object_type: str, **options: Any) -> Call[list[str]]:
    """`POST list-objects` (OpenFGA): the `type:id` objects `user` holds `relation` on."""
    body = wire.ListObjectsRequest(type=object_type, relation=relation, user=user, **_options(**options)).to_json()
    return Call("POST", "list-objects", lambda answer: list(wire.ListObjectsResponse.from_json(answer).objects), body)


class _Routes:
    """The routes written once as `Call`s for both clients: a subclass's `run` returns the answer
    (`Client`) or an awaitable of it (`AsyncClient`)."""

    def run(self, call: Call[Any]) -> Any:
        raise NotImplementedError

    def visibility(self, principals: Sequence[str], relation: str, object_type: str, **options: Any) -> Any:
        """`POST writ/visibility` → `Visibility` (awaitable on `AsyncClient`); `max_ids=` caps `ids`."""
        return self.run(visibility_call(principals, relation, object_type, **options))

    def acl_tags(self, object_type: str, relation: str, **page: Any) -> Any:
        """`GET writ/acl-tags` → `AclTags`; `page_size=`, `continuation_token=`."""
        return self.run(acl_tags_call(object_type, relation, **page))

    def acl_tag_changes(self, object_type: str, relation: str, after_revision: int, **page: Any) -> Any:
        """`GET writ/acl-tags/changes` → `AclTagChanges`; `continuation_token=`."""
        return self.run(acl_tag_changes_call(object_type, relation, after_revision, **page))

    def memberships(self, principal: str) -> Any:
        """`POST writ/memberships` → `Memberships`."""
        return self.run(memberships_call(principal))

    def list_objects(self, user: str, relation: str, object_type: str, **options: Any) -> Any:
        """`POST list-objects` → the `type:id` objects, as OpenFGA answers them."""
        return self.run(list_objects_call(user, relation, object_type, **options))


class Client(_Routes):
    """A blocking client of one Writ store. Use it as a context manager, or call `close()`."""

    def __init__(
        self,
        base_url: str,
        store_id: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        http: httpx.Client | None = None,
    ) -> None:
        self._requests = _Requests(base_url, store_id, api_key)
        self._http = http or httpx.Client(base_url=self._requests.base_url, timeout=timeout)

    @property
    def store_id(self) -> str:
        return self._requests.store_id

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, route: str, body: dict[str, Any], request_id: str | None = None) -> Any:
        try:
            headers = self._requests.with_request_id(request_id)
            response = self._http.post(self._requests.path(route), json=body, headers=headers)
        except httpx.HTTPError as error:
            raise WritError("unavailable", f"Writ is unreachable: {error}") from error
        return _Requests.answer(response)

    def run(self, call: Call[T]) -> T:
        """Sends one `Call` and reads its answer. A read is sent once more if the server closed
        the kept-alive connection as it was sent (a server that answered an unknown route without
        reading the body closes the connection after it)."""
        for attempt in (1, 2):
            try:
                response = self._http.request(
                    call.method, self._requests.path(call.route), json=call.body, params=call.params, headers=self._requests.headers
                )
                return call.read(_Requests.answer(response))
            except httpx.RemoteProtocolError as error:
                if attempt == 1 and call.read_only:
                    continue
                raise WritError("unavailable", f"Writ is unreachable: {error}") from error
            except httpx.HTTPError as error:
                raise WritError("unavailable", f"Writ is unreachable: {error}") from error
        raise AssertionError("unreachable")

    def check(self, user: str, relation: str, object: str, **options: Any) -> bool:
        """`POST check`: does `user` hold `relation` on `object`."""
        return wire.CheckResponse.from_json(self._post("check", _check_body(user, relation, object, _options(**options)))).allowed

    def batch_check(self, checks: Sequence[BatchInput], **options: Any) -> list[bool]:
        """`POST batch-check`: one answer per check, in input order; a check's error raises."""
        body, ids = _Requests.batch_body(checks, _options(**options))
        return _Requests.batch_answer(self._post("batch-check", body), ids)

    def obo_check(
        self, principals: Sequence[str], relation: str, object: str, *, delegation_relation: str | None = None, request_id: str | None = None, **options: Any
    ) -> OboDecision:
        """`POST writ/obo-check`: the chain, human first, each principal and each delegation link."""
        body = _obo_body(principals, relation, object, delegation_relation, _options(**options))
        return _Requests.obo(self._post("writ/obo-check", body, request_id))

    def audience_check(self, audience: Sequence[str], relation: str, objects: Sequence[str], **options: Any) -> AudienceCheckResult:
        """`POST writ/audience-check`: may every member of `audience` see each object."""
        body = _audience_body(audience, relation, objects, _options(**options))
        return _Requests.audience(self._post("writ/audience-check", body))

    def filter(
        self,
        principals: Sequence[str],
        relation: str,
        object_type: str,
        ids: Sequence[str],
        *,
        delegation_relation: str | None = None,
        request_id: str | None = None,
        **options: Any,
    ) -> FilterResult:
        """`POST writ/filter`: the ids of `object_type` the subject (or chain) holds `relation` on."""
        body = _filter_body(principals, relation, object_type, ids, delegation_relation, _options(**options))
        return _Requests.filtered(self._post("writ/filter", body, request_id))

    def explain(
        self,
        relation: str,
        object: str,
        *,
        user: str | None = None,
        principals: Sequence[str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """`POST writ/explain`: why a check (`user`) or an OBO chain (`principals`) is allowed or denied."""
        result: dict[str, Any] = self._post("writ/explain", _explain_body(user, principals, relation, object, _options(**options)))
        return result


class AsyncClient(_Routes):
    """The `Client` for asyncio code (MCP servers): the same methods, awaited."""

    def __init__(
        self,
        base_url: str,
        store_id: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self._requests = _Requests(base_url, store_id, api_key)
        self._http = http or httpx.AsyncClient(base_url=self._requests.base_url, timeout=timeout)

    @property
    def store_id(self) -> str:
        return self._requests.store_id

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _post(self, route: str, body: dict[str, Any], request_id: str | None = None) -> Any:
        try:
            headers = self._requests.with_request_id(request_id)
            response = await self._http.post(self._requests.path(route), json=body, headers=headers)
        except httpx.HTTPError as error:
            raise WritError("unavailable", f"Writ is unreachable: {error}") from error
        return _Requests.answer(response)

    async def run(self, call: Call[T]) -> T:  # type: ignore[override]
        """Sends one `Call` and reads its answer (a read once more, as `Client.run` says)."""
        for attempt in (1, 2):
            try:
                response = await self._http.request(
                    call.method, self._requests.path(call.route), json=call.body, params=call.params, headers=self._requests.headers
                )
                return call.read(_Requests.answer(response))
            except httpx.RemoteProtocolError as error:
                if attempt == 1 and call.read_only:
                    continue
                raise WritError("unavailable", f"Writ is unreachable: {error}") from error
            except httpx.HTTPError as error:
                raise WritError("unavailable", f"Writ is unreachable: {error}") from error
        raise AssertionError("unreachable")

    async def check(self, user: str, relation: str, object: str, **options: Any) -> bool:
        answer = await self._post("check", _check_body(user, relation, object, _options(**options)))
        return wire.CheckResponse.from_json(answer).allowed

    async def batch_check(self, checks: Sequence[BatchInput], **options: Any) -> list[bool]:
        body, ids = _Requests.batch_body(checks, _options(**options))
        return _Requests.batch_answer(await self._post("batch-check", body), ids)

    async def obo_check(
        self, principals: Sequence[str], relation: str, object: str, *, delegation_relation: str | None = None, request_id: str | None = None, **options: Any
    ) -> OboDecision:
        body = _obo_body(principals, relation, object, delegation_relation, _options(**options))
        return _Requests.obo(await self._post("writ/obo-check", body, request_id))

    async def audience_check(
        self, audience: Sequence[str], relation: str, objects: Sequence[str], **options: Any
    ) -> AudienceCheckResult:
        body = _audience_body(audience, relation, objects, _options(**options))
        return _Requests.audience(await self._post("writ/audience-check", body))

    async def filter(
        self,
        principals: Sequence[str],
        relation: str,
        object_type: str,
        ids: Sequence[str],
        *,
        delegation_relation: str | None = None,
        request_id: str | None = None,
        **options: Any,
    ) -> FilterResult:
        body = _filter_body(principals, relation, object_type, ids, delegation_relation, _options(**options))
        return _Requests.filtered(await self._post("writ/filter", body, request_id))

    async def explain(
        self,
        relation: str,
        object: str,
        *,
        user: str | None = None,
        principals: Sequence[str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        body = _explain_body(user, principals, relation, object, _options(**options))
        result: dict[str, Any] = await self._post("writ/explain", body)
        return result
