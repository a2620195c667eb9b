"""`WritMiddleware`: a `ServerMiddleware` for the `mcp` SDK 2.x (`MCPServer(..., middleware=[...])`)
that enforces the gateway mapping in the server's own process.

The chain comes from the access token the server's auth layer verified (`get_access_token()`:
`subject`, `client_id`, and `act` in its claims), never from the request. Every request is
matched against the mapping as `writ serve --gateway` does: `initialize`, `ping` and notifications
pass; `*/list` answers are filtered in one batch; calls run every entry; anything else is denied.
A denial raises `MCPError(-32001, data={"denied_by", "decision_id"})`.
"""

from __future__ import annotations

from typing import Any, Mapping

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from .enforce import Enforcer, Refusal
from .mapping import Denial, MappingError

__all__ = ["WritMiddleware"]

_NAME_KEY = {"tools": "name", "resources": "uri", "prompts": "name"}


def _item_name(item: Any, key: str) -> str:
    value = item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)
    return "" if value is None else str(value)


class WritMiddleware:
    """Enforces `enforcer`'s mapping on every inbound request of an `MCPServer`."""

    def __init__(self, enforcer: Enforcer) -> None:
        self.enforcer = enforcer

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.request_id is None:
            return await call_next(ctx)
        try:
            requirement = self.enforcer.mapping.requirement(ctx.method, ctx.params)
        except MappingError as error:
            if self.enforcer.enforcing:
                raise MCPError(-32602, str(error)) from None
            return await call_next(ctx)
        if requirement == "pass":
            return await call_next(ctx)
        try:
            chain = self.enforcer.chain(get_access_token())
            if isinstance(requirement, Denial):
                if self.enforcer.enforcing:
                    raise self.enforcer.mapping_denial(requirement)
                return await call_next(ctx)
            if requirement[0] == "checks":
                primitive = {"tools/call": "tools", "prompts/get": "prompts"}.get(ctx.method, "resources")
                arguments = (ctx.params or {}).get("arguments")
                await self.enforcer.authorize(chain, primitive, requirement[1], arguments)  # type: ignore[arg-type]
                return await call_next(ctx)
            primitive = requirement[1]
            result = await call_next(ctx)
            return await self._filter(chain, primitive, result)  # type: ignore[arg-type]
        except Refusal as refusal:
            raise MCPError(refusal.code, refusal.message, refusal.data) from None

    async def _filter(self, chain: list[str], primitive: Any, result: HandlerResult) -> HandlerResult:
        key = _NAME_KEY[primitive]
        if isinstance(result, BaseModel):
            items = list(getattr(result, primitive, None) or [])
        elif isinstance(result, Mapping):
            items = list(result.get(primitive) or [])
        else:
            return result
        names = [_item_name(item, key) for item in items]
        visible = await self.enforcer.visible(chain, primitive, names)
        kept = [item for item, name in zip(items, names) if name and name in visible]
        if isinstance(result, BaseModel):
            return result.model_copy(update={primitive: kept})
        return {**result, primitive: kept}
