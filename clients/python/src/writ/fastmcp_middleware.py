"""`WritFastMCPMiddleware`: a FastMCP `Middleware` (`on_list_tools`, `on_call_tool`, and the same
for prompts and resources) that enforces the gateway mapping in the server's own process.

The chain comes from the access token FastMCP's auth provider verified
(`fastmcp.server.dependencies.get_access_token()`), never from the request. A denial raises
`MCPError(-32001, data={"denied_by", "decision_id"})`, which FastMCP answers as that JSON-RPC error.
"""

from __future__ import annotations

from typing import Any, Sequence

from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from mcp.shared.exceptions import MCPError

from .enforce import Enforcer, Refusal

__all__ = ["WritFastMCPMiddleware"]


class WritFastMCPMiddleware(Middleware):
    """Enforces `enforcer`'s mapping on a FastMCP server's lists and calls."""

    def __init__(self, enforcer: Enforcer) -> None:
        self.enforcer = enforcer

    def _chain(self) -> list[str]:
        try:
            return self.enforcer.chain(get_access_token())
        except Refusal as refusal:
            raise MCPError(refusal.code, refusal.message, refusal.data) from None

    async def _visible(self, primitive: Any, items: Sequence[Any], names: list[str]) -> list[Any]:
        chain = self._chain()
        try:
            visible = await self.enforcer.visible(chain, primitive, names)
        except Exception as error:  # Writ unreachable: fail closed, as the gateway does
            raise MCPError(-32603, f"the gateway could not decide: {error}") from None
        return [item for item, name in zip(items, names) if name and name in visible]

    async def _authorize(self, primitive: Any, name: str, arguments: Any) -> None:
        chain = self._chain()
        try:
            await self.enforcer.authorize(chain, primitive, name, arguments)
        except Refusal as refusal:
            raise MCPError(refusal.code, refusal.message, refusal.data) from None

    async def on_list_tools(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Sequence[Any]]) -> Sequence[Any]:
        tools = list(await call_next(context))
        return await self._visible("tools", tools, [str(tool.name) for tool in tools])

    async def on_call_tool(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        await self._authorize("tools", context.message.name, context.message.arguments)
        return await call_next(context)

    async def on_list_prompts(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Sequence[Any]]) -> Sequence[Any]:
        prompts = list(await call_next(context))
        return await self._visible("prompts", prompts, [str(prompt.name) for prompt in prompts])

    async def on_get_prompt(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        await self._authorize("prompts", context.message.name, context.message.arguments)
        return await call_next(context)

    async def on_list_resources(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Sequence[Any]]) -> Sequence[Any]:
        resources = list(await call_next(context))
        return await self._visible("resources", resources, [str(resource.uri) for resource in resources])

    async def on_read_resource(self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]) -> Any:
        await self._authorize("resources", str(context.message.uri), None)
        return await call_next(context)
