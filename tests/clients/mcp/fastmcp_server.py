"""An upstream MCP server built with FastMCP 4 (the third-party framework, not the `mcp` SDK's own
server), served over streamable HTTP with FastMCP's defaults: SSE answers, sessions, path `/mcp`.

    python fastmcp_server.py [PORT]      # or FASTMCP_TEST_PORT; binds 127.0.0.1
"""

from __future__ import annotations

import os
import sys

from fastmcp import FastMCP

mcp = FastMCP("writ-test-fastmcp")


@mcp.tool
def lookup(term: str) -> str:
    """Look a term up in the docs."""
    return f"definition of {term}"


@mcp.tool
def open_pr(repo: str, title: str) -> str:
    """Open a pull request in a repository."""
    return f"pull request `{title}` opened in {repo}"


@mcp.tool
def merge_pr(repo: str, number: int) -> str:
    """Merge a pull request."""
    return f"merged #{number} in {repo}"


@mcp.tool
def shutdown() -> str:
    """A tool nobody is granted."""
    return "shut down"


def main() -> None:
    port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ["FASTMCP_TEST_PORT"])
    mcp.run(transport="http", host="127.0.0.1", port=port, show_banner=False, log_level="warning")


if __name__ == "__main__":
    main()
