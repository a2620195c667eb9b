"""A FastMCP 4 server (fastmcp_server.py: a third-party framework answering as SSE, with sessions)
behind `writ serve --gateway`, driven by the `mcp` SDK client: filtered `tools/list`, an
argument-mapped decision, and the Confused Deputy."""

from __future__ import annotations

import pytest
from conftest import FASTMCP_TOOLS, messages, rpc
from test_gateway_everything import open_session
from test_gateway_sdk import assert_denied, call_tool, list_tools

CHAINS = {
    # name: (token changes, chain as the gateway must derive it, tools it must list)
    "anne via planner": ({"sub": "anne", "client": "planner"}, ["user:anne", "agent:planner"], ["lookup", "open_pr"]),
    "bob via planner": ({"sub": "bob", "client": "planner"}, ["user:bob", "agent:planner"], ["lookup"]),
    "planner for itself": ({"sub": "planner", "client": "planner"}, ["agent:planner"], ["lookup", "merge_pr", "open_pr"]),
}


def test_fastmcp_offers_every_tool_as_sse(fastmcp_upstream):
    session = open_session(fastmcp_upstream, None)
    direct = rpc(fastmcp_upstream, None, "tools/list", {}, session=session)
    assert direct.headers["content-type"].startswith("text/event-stream"), direct.headers
    [result] = [m for m in messages(direct) if "result" in m]
    assert sorted(tool["name"] for tool in result["result"]["tools"]) == sorted(FASTMCP_TOOLS)


@pytest.mark.parametrize("name", list(CHAINS))
def test_tools_list_shows_exactly_the_allowed_tools(writ, name):
    changes, chain, expected = CHAINS[name]
    listed = list_tools(writ.resource("fastmcp"), writ.token("fastmcp", **changes))
    by_check = sorted(t for t in FASTMCP_TOOLS if writ.obo_allowed(chain, "can_call", f"tool:fastmcp.{t}"))
    assert listed == by_check, f"{name}: listed {listed}, obo-check allows {by_check}"
    assert listed == expected, name


def test_argument_mapped_call_allowed_for_one_repo_denied_for_another(writ):
    url, token = writ.resource("fastmcp"), writ.token("fastmcp")
    assert call_tool(url, token, "open_pr", {"repo": "acme", "title": "hi"}) == "pull request `hi` opened in acme"
    # anne writes `other`, planner does not: planner acting for anne is refused.
    assert writ.obo_allowed(["user:anne"], "writer", "repo:other")
    assert_denied(call_tool(url, token, "open_pr", {"repo": "other", "title": "hi"}), "principal", "agent:planner")
    logged = [d for d in writ.decisions() if d.get("audit", {}).get("tool") == "open_pr" and not d["allowed"]]
    assert [d["object"] for d in logged] == ["repo:other"], logged


def test_confused_deputy_is_denied_naming_the_user(writ):
    # planner may merge; anne may not, so planner acting for anne may not either.
    url = writ.resource("fastmcp")
    assert writ.obo_allowed(["agent:planner"], "can_call", "tool:fastmcp.merge_pr")
    assert call_tool(url, writ.token("fastmcp", sub="planner"), "merge_pr", {"repo": "acme", "number": 7}) == "merged #7 in acme"
    denied = call_tool(url, writ.token("fastmcp"), "merge_pr", {"repo": "acme", "number": 7})
    assert_denied(denied, "principal", "user:anne")
    logged = [d for d in writ.decisions() if d.get("audit", {}).get("tool") == "merge_pr" and not d["allowed"]]
    assert logged, "the denial is not in the decision log"
    assert logged[0]["audit"]["server"] == "fastmcp"
    assert logged[0]["principals"] == ["user:anne", "agent:planner"]


def test_an_ungranted_tool_is_hidden_and_refused(writ):
    refused = call_tool(writ.resource("fastmcp"), writ.token("fastmcp", sub="planner"), "shutdown", {})
    assert_denied(refused, "principal", "agent:planner")
