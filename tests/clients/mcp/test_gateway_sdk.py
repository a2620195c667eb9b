"""The `mcp` SDK's streamable-HTTP client through `writ serve --gateway` to an `mcp` SDK
`MCPServer` upstream: tokens, the PRM document, filtered `tools/list`, argument-mapped and OBO
decisions, revocation, and what the upstream receives."""

from __future__ import annotations

import base64
import json
from contextlib import asynccontextmanager

import anyio
import httpx
import httpx2
import pytest
from conftest import SDK_TOOLS, messages, rpc
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

import mint


@asynccontextmanager
async def connect(url: str, token: str | None):
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            yield client


def list_tools(url: str, token: str) -> list[str]:
    async def run():
        async with connect(url, token) as client:
            return sorted(tool.name for tool in (await client.list_tools()).tools)

    return anyio.run(run)


def call_tool(url: str, token: str, name: str, arguments: dict):
    """The tool's text on success, or the `MCPError` the client raised."""

    async def run():
        async with connect(url, token) as client:
            try:
                result = await client.call_tool(name, arguments)
            except MCPError as error:
                return error
            assert not result.is_error, result
            return result.content[0].text

    return anyio.run(run)


def assert_denied(outcome, kind: str, subject: str | None = None):
    assert isinstance(outcome, MCPError), f"expected a denial, got {outcome!r}"
    assert outcome.error.code == -32001, outcome.error
    data = outcome.error.data
    assert data["decision_id"], data
    assert data["denied_by"]["kind"] == kind, data
    if subject:
        assert data["denied_by"]["subject"] == subject, data
    return data


def test_no_token_is_401_with_resource_metadata_and_the_sdk_client_fails(writ):
    url = writ.resource("sdk")
    answer = rpc(url, None, "tools/list", {})
    assert answer.status_code == 401, answer.text
    metadata_url = f"{writ.url}/.well-known/oauth-protected-resource/mcp/sdk"
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith("Bearer "), challenge
    assert f'resource_metadata="{metadata_url}"' in challenge, challenge

    async def run():
        async with connect(url, None) as client:
            await client.list_tools()

    # The SDK client, given no auth provider, cannot get past the 401: mcp 2.3.0 reports it as an
    # internal error of the request (-32603, "Server returned an error response"); nothing is listed.
    with pytest.raises(BaseException) as raised:
        anyio.run(run)
    leaves = leaf_errors(raised.value)
    assert [type(e) for e in leaves] == [MCPError], repr(raised.value)
    assert leaves[0].error.code == -32603, leaves[0].error


def leaf_errors(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaf_errors(inner)]
    return [error]


def forged(writ) -> dict[str, str]:
    """Tokens the gateway must refuse, by what is wrong with them."""
    stranger = mint.load_or_create_key(writ.headers_log.parent / "stranger")
    resource = writ.resource("sdk")
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps(mint.claims("anne", resource, client="planner")).encode())
    return {
        "bad signature": mint.sign(mint.claims("anne", resource, client="planner"), stranger),
        "expired": writ.token("sdk", exp=1_000_000, iat=999_000),
        "wrong aud": writ.token("sdk", aud=writ.resource("everything")),
        "wrong iss": writ.token("sdk", iss="https://elsewhere.test"),
        "alg none": f"{header}.{payload.rstrip(b'=').decode()}.",
        "malformed": "not-a-jwt",
    }


def test_bad_tokens_are_401(writ):
    for reason, token in forged(writ).items():
        answer = rpc(writ.resource("sdk"), token, "tools/list", {})
        assert answer.status_code == 401, f"{reason}: {answer.status_code} {answer.text}"
        assert "resource_metadata=" in answer.headers.get("www-authenticate", ""), reason


def test_protected_resource_metadata(writ):
    answer = httpx.get(f"{writ.url}/.well-known/oauth-protected-resource/mcp/sdk")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["resource"] == writ.resource("sdk")
    assert document["authorization_servers"] == [mint.DEFAULT_ISSUER]
    assert "header" in document["bearer_methods_supported"]


CHAINS = {
    # name: (token changes, chain as the gateway must derive it, tools it must list)
    "anne via planner": (
        {"sub": "anne", "client": "planner"},
        ["user:anne", "agent:planner"],
        ["create_issue", "label_repos", "search"],
    ),
    "bob via planner": ({"sub": "bob", "client": "planner"}, ["user:bob", "agent:planner"], ["search"]),
    "anne via planner then researcher": (
        {"sub": "anne", "client": "researcher", "actors": ["planner", "researcher"]},
        ["user:anne", "agent:planner", "agent:researcher"],
        ["search"],
    ),
    "planner for itself": (
        {"sub": "planner", "client": "planner"},
        ["agent:planner"],
        ["create_issue", "delete_repo", "label_repos", "search"],
    ),
}


@pytest.mark.parametrize("name", list(CHAINS))
def test_tools_list_shows_exactly_the_allowed_tools(writ, name):
    changes, chain, expected = CHAINS[name]
    listed = list_tools(writ.resource("sdk"), writ.token("sdk", **changes))
    by_check = sorted(t for t in SDK_TOOLS if writ.obo_allowed(chain, "can_call", f"tool:sdk.{t}"))
    assert listed == by_check, f"{name}: listed {listed}, obo-check allows {by_check}"
    assert listed == expected, name


def test_argument_mapped_call_allowed_for_one_repo_denied_for_another(writ):
    token, url = writ.token("sdk"), writ.resource("sdk")
    assert call_tool(url, token, "create_issue", {"repo": "acme", "title": "hi"}) == "issue `hi` opened in acme"
    denied = call_tool(url, token, "create_issue", {"repo": "other", "title": "hi"})
    assert_denied(denied, "principal", "agent:planner")


def test_array_argument_with_one_forbidden_element_is_denied(writ):
    token, url = writ.token("sdk"), writ.resource("sdk")
    assert call_tool(url, token, "label_repos", {"repos": ["acme"], "label": "x"}) == "labelled acme with x"
    denied = call_tool(url, token, "label_repos", {"repos": ["acme", "other"], "label": "x"})
    assert_denied(denied, "principal", "agent:planner")


def test_confused_deputy_is_denied_naming_the_user(writ):
    # planner may delete repos; anne may not, so planner acting for anne may not either.
    assert writ.obo_allowed(["agent:planner"], "can_call", "tool:sdk.delete_repo")
    denied = call_tool(writ.resource("sdk"), writ.token("sdk"), "delete_repo", {"repo": "acme"})
    data = assert_denied(denied, "principal", "user:anne")
    logged = [d for d in writ.decisions() if d.get("request_id") == data["decision_id"] or d.get("audit", {}).get("tool") == "delete_repo"]
    assert logged, "the denial is not in the decision log"
    assert logged[0]["allowed"] is False
    assert logged[0]["audit"]["server"] == "sdk"


def test_three_hop_chain_with_a_missing_delegation_names_the_link(writ):
    url = writ.resource("sdk")
    allowed = writ.token("sdk", client="researcher", actors=["planner", "researcher"])
    assert call_tool(url, allowed, "search", {"query": "q"}) == "results for q"
    # planner never delegated to intern: the link intern → planner fails.
    missing = writ.token("sdk", client="intern", actors=["planner", "intern"])
    assert writ.obo_allowed(["agent:intern"], "can_call", "tool:sdk.search")
    assert_denied(call_tool(url, missing, "search", {"query": "q"}), "delegation", "agent:intern")


def test_revoking_the_delegation_denies_the_very_next_call(writ):
    url, token = writ.resource("sdk"), writ.token("sdk", sub="bob")
    link = ("user:bob", "delegate", "agent:planner")
    assert call_tool(url, token, "search", {"query": "q"}) == "results for q"
    writ.write(deletes=[link])
    try:
        assert_denied(call_tool(url, token, "search", {"query": "q"}), "delegation", "agent:planner")
    finally:
        writ.write(writes=[link])
    assert call_tool(url, token, "search", {"query": "q"}) == "results for q"


def test_unknown_method_is_denied_and_not_forwarded(writ):
    answer = rpc(writ.resource("sdk"), writ.token("sdk"), "tools/destroy", {"name": "search"})
    assert answer.status_code == 200, answer.text
    [message] = messages(answer)
    assert message["error"]["code"] in (-32001, -32602), message
    assert "result" not in message


def test_the_upstream_never_sees_the_client_token(writ):
    token = writ.token("sdk")
    writ.headers_log.write_text("")  # from here on, only what the gateway sends
    assert call_tool(writ.resource("sdk"), token, "search", {"query": "q"}) == "results for q"
    seen = [json.loads(line) for line in writ.headers_log.read_text().splitlines()]
    assert seen, "the upstream recorded no request"
    for request in seen:
        assert request["headers"].get("authorization") == "Bearer upstream-secret-42", request
        assert token not in json.dumps(request), request
