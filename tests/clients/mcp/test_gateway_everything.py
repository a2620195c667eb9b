"""npm's `@modelcontextprotocol/server-everything` (a third-party upstream answering as SSE, with
sessions) behind `writ serve --gateway`, over plain HTTP and through the `mcp` SDK client; and
`mode: log_only`, which decides and records but never blocks."""

from __future__ import annotations

import httpx
from conftest import messages, rpc
from test_gateway_sdk import assert_denied, call_tool, list_tools

INITIALIZE = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "writ-tests", "version": "1"},
}


def open_session(url: str, token: str | None) -> str:
    answer = rpc(url, token, "initialize", INITIALIZE)
    assert answer.status_code == 200, answer.text
    session = answer.headers.get("mcp-session-id")
    assert session, f"no Mcp-Session-Id in {dict(answer.headers)}"
    headers = {"mcp-session-id": session, "mcp-protocol-version": "2025-06-18",
               "accept": "application/json, text/event-stream"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    note = httpx.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
    assert note.status_code in (200, 202), note.text
    return session


def test_sse_tools_list_is_proxied_and_filtered(writ, everything_upstream):
    # Straight to the upstream: it offers many tools, as an SSE stream.
    session = open_session(everything_upstream, None)
    direct = rpc(everything_upstream, None, "tools/list", {}, session=session)
    assert direct.headers["content-type"].startswith("text/event-stream"), direct.headers
    offered = {tool["name"] for tool in messages(direct)[-1]["result"]["tools"]}
    assert {"echo", "get-sum"} <= offered and len(offered) > 2, offered

    url = writ.resource("everything")
    for token, expected in [(writ.token("everything"), ["echo"]),
                            (writ.token("everything", sub="planner"), ["echo", "get-sum"])]:
        session = open_session(url, token)
        answer = rpc(url, token, "tools/list", {}, session=session)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/event-stream"), answer.headers
        [result] = [m for m in messages(answer) if "result" in m]
        assert sorted(tool["name"] for tool in result["result"]["tools"]) == expected


def test_sdk_client_through_the_gateway_to_server_everything(writ):
    url, token = writ.resource("everything"), writ.token("everything")
    assert list_tools(url, token) == ["echo"]
    assert "hello" in call_tool(url, token, "echo", {"message": "hello"})
    # planner may call get-sum, anne may not: planner acting for anne is refused.
    assert_denied(call_tool(url, token, "get-sum", {"a": 1, "b": 2}), "principal", "user:anne")
    # an unmapped tool is hidden and refused, never forwarded.
    refused = call_tool(url, token, "get-env", {})
    assert refused.error.code == -32001, refused


def test_log_only_passes_and_records(writ_log_only):
    writ = writ_log_only
    url, token = writ.resource("sdk"), writ.token("sdk")
    # Enforced, anne via planner could not delete; log_only forwards and records the deny.
    assert call_tool(url, token, "delete_repo", {"repo": "acme"}) == "deleted acme"
    assert "delete_repo" in list_tools(url, token)
    denies = [d for d in writ.decisions() if d.get("audit", {}).get("tool") == "delete_repo" and not d["allowed"]]
    assert denies, writ.decisions()
    assert denies[0]["audit"]["server"] == "sdk"
    assert denies[0]["principals"] == ["user:anne", "agent:planner"]
