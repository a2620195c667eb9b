"""An upstream MCP server built with the `mcp` SDK's `MCPServer`, served over streamable HTTP.

    python upstream_server.py PORT HEADERS_LOG [--json] [--stateless]

Every HTTP request's headers are appended to HEADERS_LOG (one JSON object a line), so a test can
see what the gateway forwarded. `--json` answers plain JSON instead of SSE; `--stateless` needs no
`initialize` or session first (one `curl` can call a tool: the README walk-through, the benchmark).
"""

from __future__ import annotations

import json
import sys

import uvicorn
from mcp.server.mcpserver import MCPServer

server = MCPServer("writ-test-upstream")


@server.tool()
def search(query: str) -> str:
    """Search the code."""
    return f"results for {query}"


@server.tool()
def create_issue(repo: str, title: str) -> str:
    """Open an issue in a repository."""
    return f"issue `{title}` opened in {repo}"


@server.tool()
def label_repos(repos: list[str], label: str) -> str:
    """Put a label on several repositories."""
    return f"labelled {','.join(repos)} with {label}"


@server.tool()
def delete_repo(repo: str) -> str:
    """Delete a repository."""
    return f"deleted {repo}"


@server.tool()
def secret() -> str:
    """A tool nobody is granted."""
    return "the secret"


class RecordHeaders:
    """ASGI wrapper: appends each HTTP request's headers to a file."""

    def __init__(self, app, path: str):
        self.app = app
        self.path = path

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            with open(self.path, "a") as log:
                log.write(json.dumps({"method": scope["method"], "headers": headers}) + "\n")
        await self.app(scope, receive, send)


def main() -> None:
    port, log = int(sys.argv[1]), sys.argv[2]
    flags = sys.argv[3:]
    app = server.streamable_http_app(json_response="--json" in flags, stateless_http="--stateless" in flags)
    uvicorn.run(RecordHeaders(app, log), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
