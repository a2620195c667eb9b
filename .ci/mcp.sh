#!/usr/bin/env bash
# The MCP gateway against real peers (tests/clients/mcp/): the `mcp` Python SDK's client and an
# `mcp` SDK server, npm's @modelcontextprotocol/server-everything and a FastMCP 4 server, through
# `writ serve --gateway` (and approvals: an `approval: required` call held, approved with an
# approver key, retried).
# The venv is cached under $WRIT_CI_CACHE keyed by a hash of requirements.txt, the npm install by
# its pinned version: a rerun installs nothing. Builds `writ` if WRIT_BIN is missing.
#   bash .ci/mcp.sh [pytest args]     # exits non-zero on any failure
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${WRIT_CI_CACHE:-$HOME/.cache/writ-ci}
REQUIREMENTS=tests/clients/mcp/requirements.txt
EVERYTHING_VERSION=2026.8.31

HASH=$(sha256sum "$REQUIREMENTS" | cut -c1-12)
VENV=$CACHE/venv-mcp-$HASH
if [ ! -f "$VENV/.writ-ready" ]; then
  echo "installing $REQUIREMENTS into $VENV"
  mkdir -p "$CACHE"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$REQUIREMENTS"
  touch "$VENV/.writ-ready"
fi

export MCP_EVERYTHING_DIR=$CACHE/npm-everything
PACKAGE=$MCP_EVERYTHING_DIR/node_modules/@modelcontextprotocol/server-everything/package.json
if [ ! -f "$PACKAGE" ] || ! grep -q "\"version\": \"$EVERYTHING_VERSION\"" "$PACKAGE"; then
  echo "installing @modelcontextprotocol/server-everything@$EVERYTHING_VERSION into $MCP_EVERYTHING_DIR"
  mkdir -p "$MCP_EVERYTHING_DIR"
  [ -f "$MCP_EVERYTHING_DIR/package.json" ] || echo '{"private": true}' > "$MCP_EVERYTHING_DIR/package.json"
  (cd "$MCP_EVERYTHING_DIR" && npm install --no-audit --no-fund --silent "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION")
fi

export WRIT_BIN=${WRIT_BIN:-${CARGO_TARGET_DIR:-$(pwd)/target}/debug/writ}
if [ ! -x "$WRIT_BIN" ]; then
  cargo build --quiet --bin writ
fi

"$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/clients/mcp "$@"
