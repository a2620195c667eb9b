"""Fixtures for the MCP gateway's real-peer tests: a key pair and JWKS, the upstreams (an `mcp`
SDK `MCPServer`, npm's `@modelcontextprotocol/server-everything` and a FastMCP 4 server), and `writ serve --gateway`.

The gateway's config names its store by id, so the store is made first on a sled `--data-dir`
by a plain `writ serve`, which is then stopped and restarted with `--gateway` on the same data.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE))

import mint  # noqa: E402

MODEL = """model
  schema 1.1
type user
  relations
    define delegate: [agent]
type agent
  relations
    define delegate: [agent]
type tool
  relations
    define can_call: [user, agent]
type repo
  relations
    define writer: [user, agent]
"""

SDK_TOOLS = ["search", "create_issue", "label_repos", "delete_repo", "secret"]
FASTMCP_TOOLS = ["lookup", "open_pr", "merge_pr", "shutdown"]


def grants() -> list[tuple[str, str, str]]:
    """(object, relation, user): who may call what, who delegates to whom, who writes which repo.

    anne delegates to planner, planner to researcher (not to intern); bob to planner. planner,
    not anne, may delete repos (the Confused Deputy); nobody may call `secret`. anne and planner
    write `acme`, only anne writes `other`. The FastMCP upstream mirrors this: planner, not anne,
    may `merge_pr`; nobody may call `shutdown`.
    """
    rows = [
        ("user:anne", "delegate", "agent:planner"),
        ("agent:planner", "delegate", "agent:researcher"),
        ("user:bob", "delegate", "agent:planner"),
        ("tool:sdk.delete_repo", "can_call", "agent:planner"),
        ("repo:acme", "writer", "user:anne"),
        ("repo:acme", "writer", "agent:planner"),
        ("repo:other", "writer", "user:anne"),
        ("tool:everything.echo", "can_call", "user:anne"),
        ("tool:everything.echo", "can_call", "agent:planner"),
        ("tool:everything.get-sum", "can_call", "agent:planner"),
        ("tool:fastmcp.merge_pr", "can_call", "agent:planner"),
    ]
    for who in ["user:anne", "user:bob", "agent:planner", "agent:researcher", "agent:intern"]:
        rows.append(("tool:sdk.search", "can_call", who))
    for tool in ["create_issue", "label_repos"]:
        for who in ["user:anne", "agent:planner"]:
            rows.append((f"tool:sdk.{tool}", "can_call", who))
    for who in ["user:anne", "user:bob", "agent:planner"]:
        rows.append(("tool:fastmcp.lookup", "can_call", who))
    for who in ["user:anne", "agent:planner"]:
        rows.append(("tool:fastmcp.open_pr", "can_call", who))
    return rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, log: Path, seconds: float = 30) -> None:
    """Waits until `url`'s port accepts connections (a stateless MCP server's GET may never
    answer, so no request is made), failing if the process dies first."""
    address = httpx.URL(url)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{process.args} exited with {process.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection((address.host, address.port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer within {seconds} s:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def writ_bin() -> str:
    path = Path(os.environ.get("WRIT_BIN", ROOT / "target" / "debug" / "writ"))
    if not path.exists():
        pytest.fail(f"no writ binary at {path}: run `cargo build --bin writ` or set WRIT_BIN")
    return str(path)


@dataclass
class Writ:
    """A running `writ serve`, its URL, store and the issuer's key."""

    url: str
    store: str
    key: object
    process: subprocess.Popen
    headers_log: Path
    servers: dict = field(default_factory=dict)

    def resource(self, server: str) -> str:
        return f"{self.url}/mcp/{server}"

    def token(self, server: str, sub: str = "anne", client: str | None = "planner", **changes) -> str:
        actors = changes.pop("actors", None)
        body = mint.claims(sub, self.resource(server), client=client, actors=actors)
        for name, value in changes.items():
            if value is None:
                body.pop(name, None)
            else:
                body[name] = value
        return mint.sign(body, self.key)

    def obo_allowed(self, principals: list[str], relation: str, obj: str) -> bool:
        answer = httpx.post(
            f"{self.url}/stores/{self.store}/writ/obo-check",
            json={"principals": principals, "relation": relation, "object": obj},
        )
        answer.raise_for_status()
        return answer.json()["allowed"]

    def write(self, deletes: list[tuple[str, str, str]] = (), writes: list[tuple[str, str, str]] = ()) -> None:
        body: dict = {}
        if writes:
            body["writes"] = {"tuple_keys": [{"object": o, "relation": r, "user": u} for o, r, u in writes]}
        if deletes:
            body["deletes"] = {"tuple_keys": [{"object": o, "relation": r, "user": u} for o, r, u in deletes]}
        answer = httpx.post(f"{self.url}/stores/{self.store}/write", json=body)
        assert answer.status_code == 200, answer.text

    def decisions(self) -> list[dict]:
        answer = httpx.get(f"{self.url}/stores/{self.store}/writ/decisions", params={"limit": 100})
        assert answer.status_code == 200, answer.text
        return answer.json()["decisions"]


@pytest.fixture(scope="session")
def key(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    return directory, mint.load_or_create_key(directory)


@pytest.fixture(scope="session")
def sdk_upstream(tmp_path_factory):
    """The `MCPServer` upstream (SSE answers), its URL and its headers log."""
    work = tmp_path_factory.mktemp("sdk-upstream")
    port, headers_log, log = free_port(), work / "headers.jsonl", work / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(HERE / "upstream_server.py"), str(port), str(headers_log)], stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}/mcp"
    wait_for(url, process, log)
    yield url, headers_log
    stop(process)


def everything_dir() -> Path:
    cache = Path(os.environ.get("WRIT_CI_CACHE", Path.home() / ".cache" / "writ-ci"))
    return Path(os.environ.get("MCP_EVERYTHING_DIR", cache / "npm-everything"))


@pytest.fixture(scope="session")
def everything_upstream(tmp_path_factory):
    """npm's server-everything in streamable-HTTP mode (SSE answers, sessions)."""
    entry = everything_dir() / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
    if not entry.exists():
        pytest.fail(f"server-everything is not installed at {entry}: run `bash .ci/mcp.sh`, which installs it")
    work = tmp_path_factory.mktemp("everything")
    port, log = free_port(), work / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["node", str(entry), "streamableHttp"], stdout=out, stderr=out, env={**os.environ, "PORT": str(port)}
        )
    url = f"http://127.0.0.1:{port}/mcp"
    wait_for(url, process, log)
    yield url
    stop(process)


@pytest.fixture(scope="session")
def fastmcp_upstream(tmp_path_factory):
    """A FastMCP 4 server (fastmcp_server.py) in streamable-HTTP mode (SSE answers, sessions)."""
    work = tmp_path_factory.mktemp("fastmcp")
    port, log = free_port(), work / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen([sys.executable, str(HERE / "fastmcp_server.py"), str(port)], stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}/mcp"
    wait_for(url, process, log)
    yield url
    stop(process)


def start_writ(data_dir: Path, log: Path, port: int, *extra: str, decision_log: str = "all") -> subprocess.Popen:
    with log.open("a") as out:
        process = subprocess.Popen(
            [writ_bin(), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir), "--decision-log", decision_log, *extra],
            stdout=out,
            stderr=out,
            env={**os.environ, "RUST_LOG": "warn", "UPSTREAM_TOKEN": "upstream-secret-42"},
        )
    wait_for(f"http://127.0.0.1:{port}/readyz", process, log)
    return process


def make_store(data_dir: Path, log: Path) -> str:
    """Creates the store, model and tuples with a plain `writ serve`, then stops it."""
    port = free_port()
    process = start_writ(data_dir, log, port)
    try:
        url = f"http://127.0.0.1:{port}"
        store = httpx.post(f"{url}/stores", json={"name": "mcp"}).json()["id"]
        answer = httpx.put(f"{url}/stores/{store}/writ/model", content=MODEL, headers={"content-type": "text/plain"})
        assert answer.status_code == 201, answer.text
        keys = [{"object": o, "relation": r, "user": u} for o, r, u in grants()]
        answer = httpx.post(f"{url}/stores/{store}/write", json={"writes": {"tuple_keys": keys}})
        assert answer.status_code == 200, answer.text
        return store
    finally:
        stop(process)


def gateway_config(store: str, public_url: str, jwks: Path, mode: str, sdk_url: str, everything_url: str, fastmcp_url: str | None = None) -> str:
    """The gateway's YAML; the `fastmcp` server entry only when `fastmcp_url` is given."""
    config = f"""
store: {store}
issuer: {mint.DEFAULT_ISSUER}
jwks_file: {jwks}
public_url: {public_url}
algorithms: [ES256]
mode: {mode}
upstream_timeout_ms: 5000
servers:
  sdk:
    upstream: {sdk_url}
    upstream_headers: {{ Authorization: "Bearer ${{UPSTREAM_TOKEN}}" }}
    tools:
      "*": {{ relation: can_call, object: "tool:sdk.{{tool}}" }}
      create_issue:
        - {{ relation: can_call, object: "tool:sdk.create_issue" }}
        - {{ relation: writer, object: "repo:{{arguments.repo}}" }}
      label_repos:
        - {{ relation: can_call, object: "tool:sdk.label_repos" }}
        - {{ relation: writer, object: "repo:{{arguments.repos}}" }}
  everything:
    upstream: {everything_url}
    tools:
      echo: {{ relation: can_call, object: "tool:everything.echo" }}
      get-sum: {{ relation: can_call, object: "tool:everything.get-sum" }}
"""
    if fastmcp_url:
        config += f"""  fastmcp:
    upstream: {fastmcp_url}
    tools:
      "*": {{ relation: can_call, object: "tool:fastmcp.{{tool}}" }}
      open_pr:
        - {{ relation: can_call, object: "tool:fastmcp.open_pr" }}
        - {{ relation: writer, object: "repo:{{arguments.repo}}" }}
"""
    return config


def launch(tmp_path_factory, key, sdk_upstream, everything_upstream, fastmcp_upstream, mode: str):
    key_dir, signing = key
    work = tmp_path_factory.mktemp(f"writ-{mode}")
    data_dir, log = work / "data", work / "writ.log"
    store = make_store(data_dir, log)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = work / "gateway.yaml"
    config.write_text(gateway_config(store, url, key_dir / "jwks.json", mode, sdk_upstream[0], everything_upstream, fastmcp_upstream))
    process = start_writ(data_dir, log, port, "--gateway", str(config))
    return Writ(url=url, store=store, key=signing, process=process, headers_log=sdk_upstream[1])


@pytest.fixture(scope="module")
def writ(tmp_path_factory, key, sdk_upstream, everything_upstream, fastmcp_upstream):
    """`writ serve --gateway` in `enforce` mode."""
    server = launch(tmp_path_factory, key, sdk_upstream, everything_upstream, fastmcp_upstream, "enforce")
    yield server
    stop(server.process)


@pytest.fixture(scope="module")
def writ_log_only(tmp_path_factory, key, sdk_upstream, everything_upstream, fastmcp_upstream):
    """`writ serve --gateway` in `log_only` mode."""
    server = launch(tmp_path_factory, key, sdk_upstream, everything_upstream, fastmcp_upstream, "log_only")
    yield server
    stop(server.process)


def rpc(url: str, token: str | None, method: str, params: dict | None = None, session: str | None = None):
    """One JSON-RPC request over plain HTTP; returns the httpx response."""
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if session:
        headers["mcp-session-id"] = session
    body = {"jsonrpc": "2.0", "id": 1, "method": method, **({"params": params} if params is not None else {})}
    return httpx.post(url, json=body, headers=headers, timeout=30)


def messages(response: httpx.Response) -> list[dict]:
    """The JSON-RPC messages of a JSON or SSE answer, in order."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        found = []
        for event in response.text.replace("\r\n", "\n").split("\n\n"):
            data = [line[5:].lstrip() for line in event.split("\n") if line.startswith("data:")]
            if data and "".join(data).strip():
                found.append(json.loads("\n".join(data)))
        return found
    return [response.json()]
