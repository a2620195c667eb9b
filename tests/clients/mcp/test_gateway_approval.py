"""Approvals through the gateway with the real `mcp` SDK client (DESIGN §12): a tool entry marked
`approval: required` that denies answers -32001 with `data.approval: {id, url}`; an approver key
approves it over the HTTP API; the identical call retried then reaches the real upstream once
(`uses: 1`), and a second retry or a changed argument is denied again.

The server runs with `--auth preshared`, so approving needs the approver's key (a reader's is
refused); the MCP clients still authenticate with the issuer's JWTs."""

from __future__ import annotations

import httpx
import pytest
from conftest import free_port, make_store, mint, start_writ, stop, Writ
from test_gateway_sdk import call_tool

APPROVER_KEY = "approver-key-0123456789abcdef"
READER_KEY = "reader-key-0123456789abcdef"
KEYS = f"""
- {{name: alice, key: {APPROVER_KEY}, role: approver}}
- {{name: rita, key: {READER_KEY}, role: reader}}
"""


def approval_gateway(store: str, public_url: str, jwks, sdk_url: str) -> str:
    """One server, `guarded`, in front of the SDK upstream: `create_issue` needs `can_call` on the
    tool and, unless an approver lets the exact call through, `writer` on the repo."""
    return f"""
store: {store}
issuer: {mint.DEFAULT_ISSUER}
jwks_file: {jwks}
public_url: {public_url}
algorithms: [ES256]
mode: enforce
upstream_timeout_ms: 5000
servers:
  guarded:
    upstream: {sdk_url}
    upstream_headers: {{ Authorization: "Bearer ${{UPSTREAM_TOKEN}}" }}
    tools:
      create_issue:
        - {{ relation: can_call, object: "tool:sdk.create_issue" }}
        - {{ relation: writer, object: "repo:{{arguments.repo}}", approval: required }}
"""


@pytest.fixture(scope="module")
def writ_approvals(tmp_path_factory, key, sdk_upstream):
    """`writ serve --gateway --auth preshared` with an approver and a reader key."""
    key_dir, signing = key
    work = tmp_path_factory.mktemp("writ-approvals")
    data_dir, log = work / "data", work / "writ.log"
    store = make_store(data_dir, log)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config, keys = work / "gateway.yaml", work / "keys.yaml"
    config.write_text(approval_gateway(store, url, key_dir / "jwks.json", sdk_upstream[0]))
    keys.write_text(KEYS)
    process = start_writ(data_dir, log, port, "--gateway", str(config), "--auth", "preshared", "--keys", str(keys))
    yield Writ(url=url, store=store, key=signing, process=process, headers_log=sdk_upstream[1])
    stop(process)


def pending_approval(outcome) -> dict:
    """The `data.approval` of a call the gateway held for an approver."""
    from mcp.shared.exceptions import MCPError

    assert isinstance(outcome, MCPError), f"expected a denial, got {outcome!r}"
    assert outcome.error.code == -32001, outcome.error
    approval = outcome.error.data["approval"]
    assert approval["id"], outcome.error.data
    return approval


def approve(writ: Writ, approval: dict, key: str) -> httpx.Response:
    return httpx.post(
        f"{approval['url']}/approve",
        json={"ttl": "15m", "uses": 1},
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_an_approved_call_reaches_the_upstream_once(writ_approvals):
    writ = writ_approvals
    url, token = writ.resource("guarded"), writ.token("guarded")  # anne via planner
    arguments = {"repo": "other", "title": "ship it"}
    # anne writes `other`, planner does not: the approval-required entry denies.
    held = pending_approval(call_tool(url, token, "create_issue", arguments))
    assert held["url"] == f"{writ.url}/stores/{writ.store}/writ/approvals/{held['id']}", held

    shown = httpx.get(held["url"], headers={"authorization": f"Bearer {APPROVER_KEY}"}, timeout=30)
    assert shown.status_code == 200, shown.text
    assert shown.json()["state"] == "pending"
    assert (shown.json()["server"], shown.json()["tool"]) == ("guarded", "create_issue")
    assert shown.json()["principals"] == ["user:anne", "agent:planner"]

    refused = approve(writ, held, READER_KEY)
    assert refused.status_code == 403, refused.text
    approved = approve(writ, held, APPROVER_KEY)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["state"], approved.json()["decided_by"]) == ("approved", "alice")

    # The identical call goes through to the real upstream, once.
    assert call_tool(url, token, "create_issue", arguments) == "issue `ship it` opened in other"
    again = pending_approval(call_tool(url, token, "create_issue", arguments))
    assert again["id"] != held["id"], "the used approval does not allow a second call"


def test_an_approval_does_not_cover_a_changed_argument(writ_approvals):
    writ = writ_approvals
    url, token = writ.resource("guarded"), writ.token("guarded")
    held = pending_approval(call_tool(url, token, "create_issue", {"repo": "other", "title": "one"}))
    assert approve(writ, held, APPROVER_KEY).status_code == 200
    changed = pending_approval(call_tool(url, token, "create_issue", {"repo": "other", "title": "two"}))
    assert changed["id"] != held["id"], "another call is another approval"
    # The approved call itself is still allowed: the changed one took none of its use.
    assert call_tool(url, token, "create_issue", {"repo": "other", "title": "one"}) == "issue `one` opened in other"
