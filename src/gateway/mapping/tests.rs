//! Mapping tests: tables of JSON-RPC method + params → the checks needed, the denial, or the
//! mapping error; `*/list` plans; the canonical arguments digest.

use serde_json::json;

use super::*;
use crate::gateway::config::tests::{env, DESIGN_EXAMPLE};
use crate::gateway::config::{Format, GatewayConfig};
use crate::wire::canonical::arguments_sha256;

/// What these tests map beyond DESIGN §8's example, which ends with the `github` tools this
/// continues: a tool with nested and joined placeholders, resources, prompts, and a second server.
const MORE: &str = r#"      move_file:
        - { relation: writer, object: "repo:{arguments.target.repo}" }
        - { relation: reader, object: "file:{arguments.target.repo}/{arguments.paths}" }
    resources:
      "file:///readme.md": { relation: viewer, object: "doc:readme" }
    prompts:
      summarize: { relation: can_use, object: "prompt:{prompt}" }
      review: { relation: reader, object: "repo:{arguments.repo}" }
  notes:
    upstream: http://127.0.0.1:9002/mcp
    tools:
      search: { relation: can_call, object: "tool:notes.search" }
"#;

fn server(name: &str) -> ServerMapping {
    let text = [DESIGN_EXAMPLE, MORE].concat();
    let config = GatewayConfig::parse(&text, Format::Yaml, &env).expect("the test config parses");
    config.servers.get(name).expect("the server is configured").mapping.clone()
}

/// What a case expects, written compactly: checks as `relation object` (`!` marks approval).
#[derive(Debug)]
enum Want {
    Pass,
    Filter(Primitive),
    Checks(&'static [&'static str]),
    Denied(Denial),
    Error(MappingError),
}

fn shown(requirement: &Result<Requirement, MappingError>) -> String {
    format!("{requirement:?}")
}

fn matches(got: &Result<Requirement, MappingError>, want: &Want) -> bool {
    match (got, want) {
        (Ok(Requirement::Pass), Want::Pass) => true,
        (Ok(Requirement::FilterList(p)), Want::Filter(q)) => p == q,
        (Ok(Requirement::Checks { checks, .. }), Want::Checks(expected)) => {
            let got: Vec<String> = checks
                .iter()
                .map(|c| format!("{} {}{}", c.relation, c.object, if c.approval_required { "!" } else { "" }))
                .collect();
            got == *expected
        }
        (Ok(Requirement::Denied(d)), Want::Denied(e)) => d == e,
        (Err(error), Want::Error(expected)) => error == expected,
        _ => false,
    }
}

fn invalid(path: &str, reason: &'static str) -> Want {
    Want::Error(MappingError::InvalidId { path: path.into(), reason })
}

fn call(tool: &str, arguments: Value) -> Value {
    json!({"name": tool, "arguments": arguments})
}

#[test]
fn methods_and_tool_calls_give_their_checks() {
    let long = "r".repeat(10_000);
    let many: Vec<String> = (0..300).map(|n| format!("r{n}")).collect();
    let unmapped = |primitive, name: &str| Want::Denied(Denial::Unmapped { primitive, name: name.into() });
    let unknown = |method: &str| Want::Denied(Denial::UnknownMethod(method.into()));
    let params = |message: &str| Want::Error(MappingError::Params(message.into()));
    let missing = |path: &str| Want::Error(MappingError::MissingArgument { path: path.into() });
    let not_scalar = |path: &str| Want::Error(MappingError::NotScalar { path: path.into() });
    // (name, server, method, params, want)
    let requests: Vec<(&str, &str, &str, Option<Value>, Want)> = vec![
        ("initialize", "github", "initialize", Some(json!({"protocolVersion": "2025-06-18"})), Want::Pass),
        ("ping", "github", "ping", None, Want::Pass),
        ("a notification", "github", "notifications/initialized", None, Want::Pass),
        ("tools/list", "github", "tools/list", None, Want::Filter(Primitive::Tool)),
        ("resources/list", "github", "resources/list", Some(json!({})), Want::Filter(Primitive::Resource)),
        ("prompts/list", "github", "prompts/list", None, Want::Filter(Primitive::Prompt)),
        (
            "an unmapped tool",
            "notes",
            "tools/call",
            Some(call("delete_all", json!({}))),
            unmapped(Primitive::Tool, "delete_all"),
        ),
        (
            "a mapped tool on another server",
            "notes",
            "tools/call",
            Some(call("search", json!({}))),
            Want::Checks(&["can_call tool:notes.search"]),
        ),
        ("an unknown method", "github", "tools/delete", Some(json!({})), unknown("tools/delete")),
        (
            "resource templates are not mapped yet",
            "github",
            "resources/templates/list",
            None,
            unknown("resources/templates/list"),
        ),
    ];
    // Resources of `github`: (name, method, uri, want)
    let resources: Vec<(&str, &str, &str, Want)> = vec![
        ("a mapped resource", "resources/read", "file:///readme.md", Want::Checks(&["viewer doc:readme"])),
        (
            "subscribing needs what reading needs",
            "resources/subscribe",
            "file:///readme.md",
            Want::Checks(&["viewer doc:readme"]),
        ),
        (
            "an unmapped resource",
            "resources/read",
            "file:///etc/passwd",
            unmapped(Primitive::Resource, "file:///etc/passwd"),
        ),
    ];
    // `prompts/get`: (name, server, params, want)
    let prompts: Vec<(&str, &str, Value, Want)> = vec![
        ("a prompt by name", "github", json!({"name": "summarize"}), Want::Checks(&["can_use prompt:summarize"])),
        (
            "a prompt by argument",
            "github",
            json!({"name": "review", "arguments": {"repo": "acme/web"}}),
            Want::Checks(&["reader repo:acme/web"]),
        ),
        ("an unmapped prompt", "github", json!({"name": "leak"}), unmapped(Primitive::Prompt, "leak")),
        ("prompts of a server without prompts", "notes", json!({"name": "x"}), unmapped(Primitive::Prompt, "x")),
    ];
    // `tools/call` on `github`: (name, params, want)
    let calls: Vec<(&str, Option<Value>, Want)> = vec![
        (
            "no arguments at all",
            Some(json!({"name": "list_repos"})),
            Want::Checks(&["can_call tool:github.list_repos"]),
        ),
        ("no params", None, params("`tools/call` needs a params object")),
        ("a name that is not a string", Some(json!({"name": 7})), params("`tools/call` needs params.name as a string")),
        (
            "arguments that are not an object",
            Some(json!({"name": "create_issue", "arguments": ["acme/web"]})),
            params("params.arguments must be an object"),
        ),
    ];
    // A `github` tool called with arguments: (name, tool, arguments, want)
    let tools: Vec<(&str, &str, Value, Want)> = vec![
        (
            "the default entry",
            "search_code",
            json!({"q": "fn main"}),
            Want::Checks(&["can_call tool:github.search_code"]),
        ),
        (
            "every entry of a tool",
            "create_issue",
            json!({"repo": "acme/web", "title": "bug"}),
            Want::Checks(&["can_call tool:github.create_issue", "writer repo:acme/web"]),
        ),
        ("approval required", "delete_repo", json!({"repo": "acme/web"}), Want::Checks(&["admin repo:acme/web!"])),
        (
            "nested paths and two placeholders",
            "move_file",
            json!({"target": {"repo": "acme/docs"}, "paths": ["a.md", "b.md"]}),
            Want::Checks(&["writer repo:acme/docs", "reader file:acme/docs/a.md", "reader file:acme/docs/b.md"]),
        ),
        ("a missing argument", "create_issue", json!({"title": "bug"}), missing("arguments.repo")),
        (
            "a missing nested argument",
            "move_file",
            json!({"target": "acme/docs", "paths": ["a"]}),
            missing("arguments.target.repo"),
        ),
        (
            "a joined id too long",
            "move_file",
            json!({"target": {"repo": "r".repeat(200)}, "paths": ["p".repeat(100)]}),
            invalid("object", "is longer than 256 bytes"),
        ),
        ("a tool name that cannot be an id", "a#b", json!({}), invalid("tool", "contains `#`")),
    ];
    // `create_issue` on `github` with one `repo` argument: (name, its value, want)
    let repos: Vec<(&str, Value, Want)> = vec![
        (
            "an array argument, element by element",
            json!(["acme/web", "acme/api"]),
            Want::Checks(&["can_call tool:github.create_issue", "writer repo:acme/web", "writer repo:acme/api"]),
        ),
        (
            "numbers and booleans are scalars",
            json!([42, true]),
            Want::Checks(&["can_call tool:github.create_issue", "writer repo:42", "writer repo:true"]),
        ),
        ("a null argument", Value::Null, missing("arguments.repo")),
        ("an object argument", json!({"name": "web"}), not_scalar("arguments.repo")),
        ("an empty array", json!([]), not_scalar("arguments.repo")),
        ("a nested array", json!([["acme/web"]]), not_scalar("arguments.repo[0]")),
        ("path traversal", json!("../etc/passwd"), invalid("arguments.repo", "contains a `..` path segment")),
        (
            "one bad element of an array",
            json!(["acme/web", "acme/../secret"]),
            invalid("arguments.repo[1]", "contains a `..` path segment"),
        ),
        ("NUL", json!("acme\u{0}web"), invalid("arguments.repo", "contains a control character")),
        ("empty", json!(""), invalid("arguments.repo", "is empty")),
        ("10k characters", json!(long), invalid("arguments.repo", "is longer than 256 bytes")),
        ("#", json!("a#b"), invalid("arguments.repo", "contains `#`")),
        (":", json!("doc:1"), invalid("arguments.repo", "contains `:`")),
        ("too many checks", json!(many), Want::Error(MappingError::TooManyChecks)),
    ];
    let cases = requests
        .into_iter()
        .chain(
            resources
                .into_iter()
                .map(|(name, method, uri, want)| (name, "github", method, Some(json!({"uri": uri})), want)),
        )
        .chain(
            prompts.into_iter().map(|(name, server, params, want)| (name, server, "prompts/get", Some(params), want)),
        )
        .chain(calls.into_iter().map(|(name, params, want)| (name, "github", "tools/call", params, want)))
        .chain(
            tools
                .into_iter()
                .map(|(name, tool, arguments, want)| (name, "github", "tools/call", Some(call(tool, arguments)), want)),
        )
        .chain(repos.into_iter().map(|(name, repo, want)| {
            (name, "github", "tools/call", Some(call("create_issue", json!({"repo": repo}))), want)
        }));
    let mut failures = Vec::new();
    for (name, server_name, method, params, want) in cases {
        let got = server(server_name).requirement(method, params.as_ref());
        if !matches(&got, &want) {
            failures.push(format!("{name}: got {}, expected {want:?}", shown(&got)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn list_plans_batch_the_argument_free_entries() {
    let github = server("github");
    let names = ["search_code", "create_issue", "delete_repo", "move_file", "search_code", "bad#name"];
    let plan = github.plan_list(Primitive::Tool, &names);
    let checks: Vec<String> = plan.checks.iter().map(|c| format!("{} {}", c.relation, c.object)).collect();
    assert_eq!(checks, ["can_call tool:github.search_code", "can_call tool:github.create_issue"]);
    let visibility: Vec<(&str, &Visibility)> = plan.items.iter().map(|i| (i.name.as_str(), &i.visibility)).collect();
    assert_eq!(
        visibility,
        [
            ("search_code", &Visibility::Requires(vec![0])),
            ("create_issue", &Visibility::Requires(vec![1])),
            ("delete_repo", &Visibility::Requires(vec![])),
            ("move_file", &Visibility::Requires(vec![])),
            ("search_code", &Visibility::Requires(vec![0])),
            ("bad#name", &Visibility::Hidden),
        ]
    );
    assert_eq!(plan.visible(&[true, false]), ["search_code", "delete_repo", "move_file", "search_code"]);
    assert_eq!(plan.visible(&[false, true]), ["create_issue", "delete_repo", "move_file"]);
    // A batch that answered nothing hides every item that needed a check.
    assert_eq!(plan.visible(&[]), ["delete_repo", "move_file"]);

    let notes = server("notes").plan_list(Primitive::Tool, &["search", "other"]);
    assert_eq!(notes.items[1].visibility, Visibility::Hidden, "no entry and no `*`");
    assert_eq!(notes.visible(&[true]), ["search"]);
    let resources = github.plan_list(Primitive::Resource, &["file:///readme.md", "file:///other"]);
    assert_eq!(resources.visible(&[true]), ["file:///readme.md"]);
    let prompts = github.plan_list(Primitive::Prompt, &["summarize", "review", "leak"]);
    assert_eq!(prompts.visible(&[false]), ["review"]);
}

#[test]
fn arguments_digest_is_canonical() {
    assert_eq!(arguments_sha256(&json!({})), "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    // sha256 of `{"labels":["bug","p1"],"meta":{"a":null,"z":1},"repo":"acme/web"}`.
    let expected = "a1e5d8a3810283cfa8fc83fd84fd20d90a9dce69ecb099f20f75d03127707d7d";
    let one: Value =
        serde_json::from_str(r#"{"repo": "acme/web", "meta": {"z": 1, "a": null}, "labels": ["bug", "p1"]}"#)
            .expect("json");
    let two: Value =
        serde_json::from_str(r#"{"labels":["bug","p1"],"meta":{"a":null,"z":1},"repo":"acme/web"}"#).expect("json");
    assert_eq!(arguments_sha256(&one), expected);
    assert_eq!(arguments_sha256(&two), expected);
    assert_ne!(
        arguments_sha256(&json!({"labels": ["p1", "bug"], "meta": {"a": null, "z": 1}, "repo": "acme/web"})),
        expected
    );
}
