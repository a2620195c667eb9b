"""The mapping, table-tested against the semantics of `src/gateway/mapping.rs`, `id.rs` and the
chain rule of `token.rs`."""

from __future__ import annotations

from typing import Any

import pytest

from writ.mapping import Check, ConfigError, Denial, MappingError, parse_config, principal_chain

CONFIG = """
store: s1
servers:
  github:
    upstream: http://127.0.0.1:9/mcp
    tools:
      "*": { relation: can_call, object: "tool:github.{tool}" }
      create_issue:
        - { relation: can_call, object: "tool:github.create_issue" }
        - { relation: writer, object: "repo:{arguments.repo}" }
      nested: { relation: reader, object: "repo:{arguments.target.repo}" }
"""


def mapping() -> Any:
    return parse_config(CONFIG).servers["github"]


CALLS: list[tuple[str, dict[str, Any], Any]] = [
    ("search", {}, [Check("can_call", "tool:github.search")]),
    ("create_issue", {"repo": "acme"}, [Check("can_call", "tool:github.create_issue"), Check("writer", "repo:acme")]),
    (
        "create_issue",
        {"repo": ["a", "b"]},
        [Check("can_call", "tool:github.create_issue"), Check("writer", "repo:a"), Check("writer", "repo:b")],
    ),
    ("create_issue", {"repo": 7}, [Check("can_call", "tool:github.create_issue"), Check("writer", "repo:7")]),
    ("create_issue", {"repo": True}, [Check("can_call", "tool:github.create_issue"), Check("writer", "repo:true")]),
    ("nested", {"target": {"repo": "x"}}, [Check("reader", "repo:x")]),
    ("create_issue", {}, "argument `arguments.repo` is missing"),
    ("create_issue", {"repo": None}, "argument `arguments.repo` is missing"),
    ("create_issue", {"repo": []}, "argument `arguments.repo` must be"),
    ("create_issue", {"repo": {"a": 1}}, "argument `arguments.repo` must be"),
    ("create_issue", {"repo": ["a", ["b"]]}, "argument `arguments.repo[1]` must be"),
    ("create_issue", {"repo": "../etc"}, "contains a `..` path segment"),
    ("create_issue", {"repo": "a\x00b"}, "contains a control character"),
    ("create_issue", {"repo": "x" * 10_000}, "is longer than 256 bytes"),
    ("create_issue", {"repo": "a:b"}, "contains `:`"),
    ("create_issue", {"repo": ["r"] * 300}, "more than 256 checks"),
    ("bad name", {}, "contains whitespace"),
]


@pytest.mark.parametrize("tool,arguments,expected", CALLS)
def test_tools_call_checks(tool: str, arguments: dict[str, Any], expected: Any) -> None:
    params = {"name": tool, "arguments": arguments}
    if isinstance(expected, str):
        with pytest.raises(MappingError, match=expected.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
            mapping().requirement("tools/call", params)
    else:
        assert mapping().requirement("tools/call", params) == ("checks", tool, expected)


def test_methods() -> None:
    m = mapping()
    assert m.requirement("initialize", {}) == "pass"
    assert m.requirement("notifications/initialized", None) == "pass"
    assert m.requirement("tools/list", None) == ("filter", "tools")
    assert m.requirement("sampling/createMessage", {}) == Denial(
        "method `sampling/createMessage` is not allowed through the gateway"
    )
    # No `resources` map: every resource is unmapped, so denied.
    assert m.requirement("resources/read", {"uri": "file:///x"}) == Denial("resource `file:///x` has no mapping")
    with pytest.raises(MappingError, match="params.name"):
        m.requirement("tools/call", {"arguments": {}})


def test_without_a_default_an_unlisted_tool_is_denied_and_hidden() -> None:
    config = parse_config(
        "store: s\nservers:\n  x:\n    tools:\n      only: { relation: can_call, object: 'tool:only' }\n"
    ).servers["x"]
    assert config.requirement("tools/call", {"name": "other"}) == Denial("tool `other` has no mapping")
    plan = config.plan_list("tools", ["only", "other"])
    assert plan.checks == [Check("can_call", "tool:only")]
    assert plan.visible([True]) == ["only"]
    assert plan.visible([False]) == []


def test_list_plan_is_one_batch_of_argument_free_checks() -> None:
    plan = mapping().plan_list("tools", ["search", "create_issue", "nested", "bad name"])
    # `nested` has only an argument entry: nothing to check before the call; `bad name` is hidden.
    assert plan.checks == [Check("can_call", "tool:github.search"), Check("can_call", "tool:github.create_issue")]
    assert plan.visible([True, False]) == ["search", "nested"]
    assert plan.visible([True, True]) == ["search", "create_issue", "nested"]


CONFIG_ERRORS = [
    ("servers: {}", "store"),
    ("store: s\nservers: {}", "servers"),
    ("store: s\nbogus: 1\nservers: {x: {}}", "bogus"),
    ("store: s\nservers:\n  x:\n    tools: {a: []}", "servers.x.tools.a"),
    ("store: s\nservers:\n  x:\n    tools: {a: {relation: r, object: 'tool'}}", "servers.x.tools.a.object"),
    ("store: s\nservers:\n  x:\n    tools: {a: [{relation: r, object: 't:{nope}'}]}", "servers.x.tools.a[0].object"),
    ("store: s\nservers:\n  x:\n    resources: {a: {relation: r, object: 't:{arguments.a}'}}", "servers.x.resources.a.object"),
    ("store: s\nservers:\n  x:\n    tools: {a: {relation: r, object: 't:a', approval: maybe}}", "servers.x.tools.a.approval"),
    ("store: s\nmode: loud\nservers: {x: {}}", "mode"),
]


@pytest.mark.parametrize("text,path", CONFIG_ERRORS)
def test_config_errors_name_the_key(text: str, path: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.path == path


CHAINS: list[tuple[dict[str, Any], Any]] = [
    ({"sub": "anne", "client_id": "planner"}, ["user:anne", "agent:planner"]),
    ({"sub": "anne", "azp": "planner"}, ["user:anne", "agent:planner"]),
    ({"sub": "bot", "client_id": "bot"}, ["agent:bot"]),
    ({"sub": "anne", "client_id": "c", "act": {"sub": "b", "act": {"sub": "a"}}}, ["user:anne", "agent:a", "agent:b"]),
    ({"sub": "anne"}, "client_id"),
    ({"client_id": "c"}, "sub"),
    ({"sub": "a#b", "client_id": "c"}, "contains `#`"),
    ({"sub": "anne", "act": {"act": {"sub": "x"}}}, "act.sub"),
    ({"sub": "anne", "act": "x"}, "act"),
]


@pytest.mark.parametrize("claims,expected", CHAINS)
def test_chain_rule(claims: dict[str, Any], expected: Any) -> None:
    if isinstance(expected, str):
        with pytest.raises(ValueError, match=expected):
            principal_chain(claims)
    else:
        assert principal_chain(claims) == expected


def test_no_token_is_refused() -> None:
    from writ.enforce import DENIED, Refusal, chain_from_token

    with pytest.raises(Refusal) as caught:
        chain_from_token(None)
    assert caught.value.code == DENIED
    assert caught.value.data["denied_by"] == {"kind": "mapping", "message": "no verified access token"}
