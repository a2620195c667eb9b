"""Writ's Python client and MCP middleware.

`Client` / `AsyncClient` call Writ's HTTP API; `load_config` reads a `writ serve --gateway`
config; `Enforcer` decides an MCP server's requests with it. The middlewares live in
`writ.mcp_middleware` (the `mcp` SDK) and `writ.fastmcp_middleware` (FastMCP), imported on demand
so neither SDK is a dependency of the client. Permission-aware retrieval (DESIGN §11) lives in
`writ.retrieval`, with its vector-store adapters imported on demand the same way.
"""

from .client import (
    AclTagChanges,
    AclTags,
    AsyncClient,
    AudienceCheckResult,
    AudienceResult,
    CheckItem,
    Client,
    FilterResult,
    Memberships,
    ObjectTags,
    OboDecision,
    Visibility,
    WritError,
)
from .enforce import Enforcer, Refusal, arguments_sha256, chain_from_token
from .mapping import Check, ConfigError, GatewayConfig, MappingError, ServerMapping, load_config, parse_config, principal_chain

__all__ = [
    "AclTagChanges",
    "AclTags",
    "AsyncClient",
    "AudienceCheckResult",
    "AudienceResult",
    "Check",
    "CheckItem",
    "Client",
    "ConfigError",
    "Enforcer",
    "FilterResult",
    "GatewayConfig",
    "MappingError",
    "Memberships",
    "ObjectTags",
    "OboDecision",
    "Refusal",
    "ServerMapping",
    "Visibility",
    "WritError",
    "arguments_sha256",
    "chain_from_token",
    "load_config",
    "parse_config",
    "principal_chain",
]
