"""The gateway's allow/deny table, enforced by the middleware on a real `MCPServer` (the `mcp` SDK)
and a real FastMCP server, each served over streamable HTTP with its SDK's own bearer-token auth,
and called by its SDK's own client. The identities come from the servers' token verifiers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator, Callable

import httpx2
import pytest
from mcp.shared.exceptions import MCPError

import writ
from writ.enforce import Enforcer

pytestmark = pytest.mark.anyio

# Verified claims per bearer token: what a JWT verifier would hand the server.
TOKENS: dict[str, dict[str, Any]] = {
    "anne-planner": {"sub": "anne", "client_id": "planner"},
    "bob-helper": {"sub": "bob", "client_id": "helper"},
    # anne -> planner -> researcher, and planner never delegated to researcher.
    "three-hop": {"sub": "anne", "client_id": "researcher", "act": {"sub": "researcher", "act": {"sub": "planner"}}},
    # Verified, but naming no user: no chain, so nothing is allowed.
    "no-subject": {"client_id": "orphan"},
}

LISTED = {
    "anne-planner": {"search", "read_doc", "read_docs"},
    "bob-helper": {"search", "admin_panel"},
    "three-hop": set(),
}

# (token, tool, arguments, expected): None is allowed; (kind, subject) a -32001 denial naming that
# principal or link; an int another JSON-RPC error code.
CALLS: list[tuple[str, str, dict[str, Any], Any]] = [
    ("anne-planner", "search", {"query": "q"}, None),
    ("anne-planner", "read_doc", {"doc": "plans"}, None),
    ("anne-planner", "read_doc", {"doc": "secret"}, ("principal", "user:anne")),
    ("anne-planner", "read_docs", {"docs": ["plans"]}, None),
    ("anne-planner", "read_docs", {"docs": ["plans", "secret"]}, ("principal", "user:anne")),
    ("anne-planner", "admin_panel", {}, ("principal", "user:anne")),
    ("bob-helper", "admin_panel", {}, None),
    ("bob-helper", "read_doc", {"doc": "plans"}, ("principal", "agent:helper")),
    ("three-hop", "search", {"query": "q"}, ("delegation", "agent:researcher")),
    ("anne-planner", "read_doc", {}, -32602),
    ("anne-planner", "read_doc", {"doc": "../secret"}, -32602),
    ("no-subject", "search", {"query": "q"}, ("mapping", "claim `sub` is missing")),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def tools_of(register: Callable[[Callable[..., Any]], Any]) -> None:
    """The same four tools on either server."""

    def search(query: str) -> str:
        return f"results for {query}"

    def read_doc(doc: str) -> str:
        return f"contents of {doc}"

    def read_docs(docs: list[str]) -> str:
        return ", ".join(docs)

    def admin_panel() -> str:
        return "admin"

    for tool in (search, read_doc, read_docs, admin_panel):
        register(tool)


def enforcer(writ_url: str, config_file: Path) -> Enforcer:
    config = writ.load_config(config_file)
    return Enforcer(writ.AsyncClient(writ_url, config.store), config, "docs")


def mcp_server_app(writ_url: str, config_file: Path) -> Any:
    from mcp.server.auth.provider import AccessToken
    from mcp.server.auth.settings import AuthSettings
    from mcp.server.mcpserver import MCPServer

    from writ.mcp_middleware import WritMiddleware

    class Verifier:
        async def verify_token(self, token: str) -> AccessToken | None:
            claims = TOKENS.get(token)
            if claims is None:
                return None
            return AccessToken(
                token=token, client_id=claims["client_id"], scopes=[], subject=claims.get("sub"), claims=claims
            )

    server = MCPServer(
        "docs",
        token_verifier=Verifier(),
        auth=AuthSettings(
            issuer_url="https://idp.example.com",
            resource_server_url="http://127.0.0.1/mcp",
            validate_token_resource=False,  # the test verifier issues no audience
        ),
        middleware=[WritMiddleware(enforcer(writ_url, config_file))],
    )
    tools_of(lambda fn: server.tool()(fn))
    return server.streamable_http_app(json_response=True)


def fastmcp_app(writ_url: str, config_file: Path) -> Any:
    from fastmcp import FastMCP
    from fastmcp.server.auth.providers.jwt import StaticTokenVerifier

    from writ.fastmcp_middleware import WritFastMCPMiddleware

    tokens = {token: {**claims, "scopes": []} for token, claims in TOKENS.items()}
    server = FastMCP(
        "docs", auth=StaticTokenVerifier(tokens), middleware=[WritFastMCPMiddleware(enforcer(writ_url, config_file))]
    )
    tools_of(lambda fn: server.tool(fn))
    return server.http_app(path="/mcp")


class McpSession:
    """One SDK client session under one bearer token: `list_tools` and `call_tool`."""

    def __init__(self, kind: str, url: str, token: str) -> None:
        self.kind, self.url, self.token = kind, url, token

    async def __aenter__(self) -> McpSession:
        if self.kind == "mcp":
            from mcp import Client
            from mcp.client.streamable_http import streamable_http_client

            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {self.token}"})
            self.client: Any = Client(streamable_http_client(f"{self.url}/mcp", http_client=http))
        else:
            from fastmcp import Client as FastClient

            self.client = FastClient(f"{self.url}/mcp", auth=self.token)
        await self.client.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.__aexit__(*exc)

    async def tool_names(self) -> set[str]:
        result = await self.client.list_tools()
        tools = result.tools if hasattr(result, "tools") else result
        return {tool.name for tool in tools}

    async def call(self, tool: str, arguments: dict[str, Any]) -> Any:
        if self.kind == "mcp":
            return await self.client.call_tool(tool, arguments)
        return await self.client.call_tool_mcp(tool, arguments)


@pytest.fixture(params=["mcp", "fastmcp"])
def mcp_url(request: pytest.FixtureRequest, serve: Any, writ_url: str, gateway_config_file: Path) -> str:
    make = mcp_server_app if request.param == "mcp" else fastmcp_app
    request.node.kind = request.param
    return str(serve(make(writ_url, gateway_config_file)).url)


@pytest.fixture
def kind(request: pytest.FixtureRequest, mcp_url: str) -> str:
    return str(request.node.kind)


async def test_tools_listed_per_chain_match_per_tool_checks(
    mcp_url: str, kind: str, writ_url: str, store_id: str
) -> None:
    every_tool = {"search", "read_doc", "read_docs", "admin_panel"}
    with writ.Client(writ_url, store_id) as client:
        for token, expected in LISTED.items():
            chain = writ.principal_chain(TOKENS[token])
            per_tool = {t for t in every_tool if client.obo_check(chain, "can_call", f"tool:{t}").allowed}
            async with McpSession(kind, mcp_url, token) as session:
                listed = await session.tool_names()
            assert listed == per_tool == expected, (kind, token)


@pytest.mark.parametrize("token,tool,arguments,expected", CALLS)
async def test_calls_follow_the_table(
    mcp_url: str, kind: str, token: str, tool: str, arguments: dict[str, Any], expected: Any
) -> None:
    async with McpSession(kind, mcp_url, token) as session:
        if expected is None:
            result = await session.call(tool, arguments)
            assert not result.is_error, result
            return
        with pytest.raises(MCPError) as caught:
            await session.call(tool, arguments)
    error = caught.value
    if isinstance(expected, int):
        assert error.code == expected, error
        return
    assert error.code == -32001, error
    kind_, subject = expected
    assert error.data["denied_by"]["kind"] == kind_, error.data
    field = "message" if kind_ == "mapping" else "subject"
    assert error.data["denied_by"][field] == subject, error.data
    assert error.data["decision_id"], error.data
