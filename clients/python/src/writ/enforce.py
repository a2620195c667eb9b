"""The gateway's decisions for a server that cannot sit behind `writ serve --gateway`: the same
mapping, decided over Writ's HTTP API. Shared by the `mcp` and FastMCP middlewares.

`tools/list` (and resources, prompts) is filtered with one `writ/filter` call per distinct
(relation, object type) of the list's argument-free checks: one HTTP round trip for the usual
`"*": {relation: can_call, object: "tool:..."}` mapping, never one per tool. `tools/call` runs an
`obo-check` for every check of its entries (concurrently) and is denied by the first one, in entry
order, that denies. Fail closed: an unmapped name, an unknown method, an unresolvable argument, a
missing identity or an unreachable Writ all refuse the call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .client import AsyncClient, WritError
from .mapping import Check, Denial, GatewayConfig, MappingError, Primitive, ServerMapping, principal_chain

__all__ = ["DENIED", "INTERNAL_ERROR", "INVALID_PARAMS", "Enforcer", "Refusal", "arguments_sha256", "chain_from_token"]

DENIED = -32001
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


@dataclass
class Refusal(Exception):
    """Why a request is refused, as the JSON-RPC error the gateway would answer."""

    code: int
    message: str
    data: dict[str, Any]

    def __str__(self) -> str:
        return self.message


def arguments_sha256(arguments: Any) -> str:
    """SHA-256 of `arguments` as canonical JSON (keys sorted, no whitespace), as the gateway's
    `audit.arguments_sha256`."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def chain_from_token(token: Any, user_type: str = "user", agent_type: str = "agent") -> list[str]:
    """The OBO chain of an SDK access token (`mcp`'s or FastMCP's `AccessToken`): its verified
    `claims`, with `sub` from `subject` and the client from `client_id` when the verifier set them.
    Raises `Refusal` when there is no token or its claims give no chain."""
    if token is None:
        raise _identity_refusal("no verified access token")
    claims: dict[str, Any] = dict(getattr(token, "claims", None) or {})
    subject = getattr(token, "subject", None)
    if subject is not None:
        claims["sub"] = subject
    client_id = getattr(token, "client_id", None)
    if client_id is not None:
        claims["client_id"] = client_id
    try:
        return principal_chain(claims, user_type, agent_type)
    except ValueError as error:
        raise _identity_refusal(str(error)) from None


def _identity_refusal(message: str) -> Refusal:
    data = {"denied_by": _mapping(message), "decision_id": uuid.uuid4().hex}
    return Refusal(DENIED, "denied by the authorization gateway", data)


def _mapping(message: str) -> dict[str, str]:
    return {"kind": "mapping", "message": message}


class Enforcer:
    """Decides one server's requests; holds no identity (each call is given its chain)."""

    def __init__(self, client: AsyncClient, config: GatewayConfig, server: str) -> None:
        if server not in config.servers:
            raise ValueError(f"server `{server}` is not in the config (servers: {', '.join(config.servers)})")
        if client.store_id != config.store:
            raise ValueError(f"the client's store `{client.store_id}` is not the config's store `{config.store}`")
        self.client = client
        self.config = config
        self.server = server
        self.mapping: ServerMapping = config.servers[server]

    @property
    def enforcing(self) -> bool:
        return self.config.mode == "enforce"

    def chain(self, token: Any) -> list[str]:
        return chain_from_token(token, self.config.user_type, self.config.agent_type)

    def mapping_denial(self, denial: Denial) -> Refusal:
        """The refusal of a request the mapping itself denies (unknown method, unmapped name)."""
        data = {"denied_by": _mapping(denial.message), "decision_id": uuid.uuid4().hex}
        return Refusal(DENIED, "denied by the authorization gateway", data)

    async def visible(self, chain: Sequence[str], primitive: Primitive, names: Sequence[str]) -> set[str]:
        """The names of a `*/list` answer `chain` may see (all of them in `log_only` mode)."""
        plan = self.mapping.plan_list(primitive, names)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, check in enumerate(plan.checks):
            object_type = check.object.split(":", 1)[0]
            groups.setdefault((check.relation, object_type), []).append(i)
        audit = {"server": self.server, "tool": f"{primitive}/list"}
        request_id = uuid.uuid4().hex
        allowed = [False] * len(plan.checks)

        async def run(relation: str, object_type: str, indices: list[int]) -> None:
            ids = [plan.checks[i].object.split(":", 1)[1] for i in indices]
            result = await self.client.filter(
                list(chain), relation, object_type, ids, audit=audit, request_id=request_id
            )
            seen = set(result.allowed_ids)
            for i, object_id in zip(indices, ids):
                allowed[i] = object_id in seen

        try:
            await asyncio.gather(*(run(rel, typ, idx) for (rel, typ), idx in groups.items()))
        except WritError:
            # Fail closed: a list that cannot be decided shows nothing.
            allowed = [False] * len(plan.checks)
            if self.enforcing:
                raise
        if not self.enforcing:
            return set(names)
        return set(plan.visible(allowed))

    async def authorize(
        self, chain: Sequence[str], primitive: Primitive, name: str, arguments: Mapping[str, Any] | None
    ) -> None:
        """Returns when every check of calling `name` with `arguments` allows; raises `Refusal`."""
        request_id = uuid.uuid4().hex
        try:
            checks = self.mapping.checks_for(primitive, name, arguments)
        except MappingError as error:
            if self.enforcing:
                raise Refusal(INVALID_PARAMS, str(error), {"decision_id": request_id}) from None
            return
        if isinstance(checks, Denial):
            if self.enforcing:
                raise self.mapping_denial(checks)
            return
        audit = {
            "server": self.server,
            "tool": name,
            "arguments_sha256": arguments_sha256(dict(arguments or {})),
        }
        try:
            decisions = await asyncio.gather(*(self._obo(chain, check, audit, request_id) for check in checks))
        except WritError as error:
            if self.enforcing:
                raise Refusal(INTERNAL_ERROR, f"the gateway could not decide: {error}", {"decision_id": request_id}) from None
            return
        for denied_by in decisions:
            if denied_by is not None and self.enforcing:
                raise Refusal(
                    DENIED, "denied by the authorization gateway", {"denied_by": denied_by, "decision_id": request_id}
                )

    async def _obo(
        self, chain: Sequence[str], check: Check, audit: dict[str, Any], request_id: str
    ) -> dict[str, Any] | None:
        decision = await self.client.obo_check(
            list(chain), check.relation, check.object, audit=audit, request_id=request_id
        )
        if decision.allowed:
            return None
        return decision.denied_by or {"kind": "principal", "message": "denied"}
