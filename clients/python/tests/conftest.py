"""Fixtures: a real `writ serve --memory` with a store of `schema/agents.fga` and the tuples of the
allow/deny table, the gateway config file naming that store, and a helper that serves an ASGI app
(a real MCP server) with uvicorn on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import uvicorn

CHECKOUT = Path(__file__).resolve().parents[3]
MODEL = CHECKOUT / "schema" / "agents.fga"

# anne delegates to planner; bob to helper; planner has NOT delegated to researcher.
TUPLES = [
    ("agent:planner", "delegate", "user:anne"),
    ("agent:helper", "delegate", "user:bob"),
    ("user:anne", "caller", "tool:search"),
    ("agent:planner", "caller", "tool:search"),
    ("agent:researcher", "caller", "tool:search"),
    ("user:bob", "caller", "tool:search"),
    ("agent:helper", "caller", "tool:search"),
    ("user:anne", "caller", "tool:read_doc"),
    ("agent:planner", "caller", "tool:read_doc"),
    ("user:bob", "caller", "tool:read_doc"),
    ("user:anne", "caller", "tool:read_docs"),
    ("agent:planner", "caller", "tool:read_docs"),
    # The confused deputy: planner may open the admin panel, anne may not.
    ("agent:planner", "caller", "tool:admin_panel"),
    ("user:bob", "caller", "tool:admin_panel"),
    ("agent:helper", "caller", "tool:admin_panel"),
    ("user:anne", "viewer", "document:plans"),
    ("agent:planner", "viewer", "document:plans"),
    ("agent:planner", "viewer", "document:secret"),
]

GATEWAY_CONFIG = """\
store: {store}
issuer: https://idp.example.com
jwks_file: /nonexistent/jwks.json   # the proxy's keys; the middleware trusts the server's auth layer
public_url: https://mcp.example.com
servers:
  docs:
    upstream: http://127.0.0.1:9/mcp
    tools:
      "*": {{ relation: can_call, object: "tool:{{tool}}" }}
      read_doc:
        - {{ relation: can_call, object: "tool:read_doc" }}
        - {{ relation: viewer, object: "document:{{arguments.doc}}" }}
      read_docs:
        - {{ relation: can_call, object: "tool:{{tool}}" }}
        - {{ relation: viewer, object: "document:{{arguments.docs}}" }}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(ready: Any, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {seconds} s")


@pytest.fixture(scope="session")
def writ_url() -> Iterator[str]:
    binary = Path(os.environ.get("WRIT_BIN", CHECKOUT / "target" / "debug" / "writ"))
    if not binary.is_file():
        pytest.fail(f"the writ binary {binary} does not exist: run `cargo build` or set WRIT_BIN")
    port = free_port()
    process = subprocess.Popen(
        [str(binary), "serve", "--memory", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"writ exited with {process.returncode}: {err}")
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(healthy, "writ serve")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def store_id(writ_url: str) -> str:
    with httpx.Client(base_url=writ_url, timeout=10) as http:
        store = http.post("/stores", json={"name": "python-client"}).raise_for_status().json()["id"]
        http.put(
            f"/stores/{store}/writ/model", content=MODEL.read_text(), headers={"Content-Type": "text/plain"}
        ).raise_for_status()
        keys = [{"user": u, "relation": r, "object": o} for u, r, o in TUPLES]
        http.post(f"/stores/{store}/write", json={"writes": {"tuple_keys": keys}}).raise_for_status()
    return str(store)


@pytest.fixture(scope="session")
def gateway_config_file(store_id: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gateway") / "gateway.yaml"
    path.write_text(GATEWAY_CONFIG.format(store=store_id))
    return path


class Served:
    """An ASGI app served by uvicorn in a thread, until `stop()`."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started, "uvicorn")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def serve() -> Iterator[Any]:
    served: list[Served] = []

    def start(app: Any) -> Served:
        served.append(Served(app))
        return served[-1]

    yield start
    for s in served:
        s.stop()
