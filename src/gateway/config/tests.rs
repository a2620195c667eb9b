//! Config tests: DESIGN §8's example parses to what it says; each bad key is named by its path.

use serde_json::json;

use super::*;

/// DESIGN §8's example; the mapping tests extend its `github` tools, which end it.
pub(in crate::gateway) const DESIGN_EXAMPLE: &str = r#"
store: 01HV0000000000000000000000
issuer: https://idp.example.com
jwks_url: https://idp.example.com/jwks.json
public_url: https://mcp.example.com/
mode: log_only
servers:
  github:
    upstream: http://127.0.0.1:9001/mcp
    upstream_headers: { Authorization: "Bearer ${GITHUB_MCP_TOKEN}", X-Team: "core" }
    tools:
      "*": { relation: can_call, object: "tool:github.{tool}" }
      create_issue:
        - { relation: can_call, object: "tool:github.create_issue" }
        - { relation: writer, object: "repo:{arguments.repo}" }
      delete_repo: { relation: admin, object: "repo:{arguments.repo}", approval: required }
"#;

/// The environment the examples are parsed in.
pub(in crate::gateway) fn env(name: &str) -> Option<String> {
    match name {
        "GITHUB_MCP_TOKEN" => Some("s3cret".into()),
        "NEWLINE" => Some("a\r\nInjected: yes".into()),
        _ => None,
    }
}

#[test]
fn the_design_example_parses() {
    let config = GatewayConfig::parse(DESIGN_EXAMPLE, Format::Yaml, &env).expect("parses");
    assert_eq!(config.store, "01HV0000000000000000000000");
    assert_eq!(config.jwks, JwksSource::Url("https://idp.example.com/jwks.json".into()));
    assert_eq!(config.mode, Mode::LogOnly);
    assert_eq!((config.user_type.as_str(), config.agent_type.as_str()), ("user", "agent"));
    assert_eq!(config.resource_uri("github"), "https://mcp.example.com/mcp/github");
    let github = &config.servers["github"];
    assert_eq!(github.upstream, "http://127.0.0.1:9001/mcp");
    assert_eq!(
        github.upstream_headers,
        [("Authorization".to_string(), "Bearer s3cret".to_string()), ("X-Team".to_string(), "core".to_string())]
    );
    assert_eq!(github.mapping.tools.entries_for("create_issue").map(<[_]>::len), Some(2));
    assert_eq!(github.mapping.tools.entries_for("anything").map(<[_]>::len), Some(1), "the `*` default");
    assert_eq!(github.mapping.resources.entries_for("file:///x"), None);
    let settings = config.verifier_settings();
    assert_eq!((settings.issuer.as_str(), settings.leeway_seconds), ("https://idp.example.com", 60));
    assert_eq!(settings.algorithms, [SigningAlgorithm::Rs256]);
    assert_eq!(config.upstream_connect_timeout, Duration::from_millis(DEFAULT_CONNECT_TIMEOUT_MS));
    assert_eq!(config.upstream_timeout, Duration::from_millis(DEFAULT_UPSTREAM_TIMEOUT_MS));
}

#[test]
fn json_config_files_parse_too() {
    let text = json!({
        "store": "s1", "issuer": "https://idp", "jwks_file": "/etc/writ/jwks.json", "public_url": "http://localhost:8080",
        "user_type": "person", "agent_type": "bot", "algorithms": ["ES256", "EdDSA"], "leeway_seconds": 5,
        "upstream_connect_timeout_ms": 250, "upstream_timeout_ms": 1500,
        "servers": {"notes": {"upstream": "http://127.0.0.1:9002/mcp"}}
    });
    let config = GatewayConfig::parse(&text.to_string(), Format::from_file_name("gateway.JSON"), &env).expect("parses");
    assert_eq!(config.jwks, JwksSource::File("/etc/writ/jwks.json".into()));
    assert_eq!(config.mode, Mode::Enforce);
    assert_eq!(config.algorithms, [SigningAlgorithm::Es256, SigningAlgorithm::EdDsa]);
    assert_eq!(config.verifier_settings().user_type, "person");
    assert_eq!(config.servers["notes"].mapping.tools.entries_for("search"), None, "no tools map: every tool unmapped");
    assert_eq!(Format::from_file_name("gateway.yaml"), Format::Yaml);
    assert_eq!(
        (config.upstream_connect_timeout, config.upstream_timeout),
        (Duration::from_millis(250), Duration::from_millis(1500))
    );
}

/// The design example as JSON, with `change` applied at a dotted path (`null` removes the key).
fn changed(path: &str, change: Value) -> String {
    let mut config: Value = serde_norway::from_str(DESIGN_EXAMPLE).expect("the example parses");
    let mut target = &mut config;
    let keys: Vec<&str> = path.split('/').collect();
    for key in &keys[..keys.len() - 1] {
        target = &mut target[*key];
    }
    let last = keys[keys.len() - 1];
    let map = target.as_object_mut().expect("the parent is a map");
    match change {
        Value::Null => map.remove(last),
        value => map.insert(last.to_string(), value),
    };
    config.to_string()
}

#[test]
fn bad_keys_are_named_by_their_path() {
    let create_issue = "servers/github/tools/create_issue";
    let x = "servers/github/tools/x";
    // (path, change, the key at fault, the start of its message)
    let keys: Vec<(&str, Value, &str, &str)> = vec![
        ("store", Value::Null, "store", "is required"),
        ("stor", json!("x"), "stor", "is not a known key"),
        ("jwks_file", json!("/jwks.json"), "jwks_url", "and `jwks_file` are exclusive; give one"),
        ("jwks_url", Value::Null, "jwks_url", "or `jwks_file` is required"),
        ("jwks_url", json!("ftp://idp/jwks"), "jwks_url", "`ftp://idp/jwks` is not an absolute http(s) URL"),
        ("public_url", json!("https://mcp.example.com/?x=1"), "public_url", "must not have a query or fragment"),
        ("mode", json!("block"), "mode", "is `block`; use `enforce` or `log_only`"),
        ("user_type", json!("end user"), "user_type", "`end user` is not a valid type name"),
        ("agent_type", json!("agent:x"), "agent_type", "`agent:x` is not a valid type name"),
        (
            "algorithms",
            json!(["RS256", "HS256"]),
            "algorithms[1]",
            "is \"HS256\"; only RS256, ES256 and EdDSA are allowed",
        ),
        ("algorithms", json!(["none"]), "algorithms[0]", "is \"none\"; only RS256, ES256 and EdDSA are allowed"),
        ("algorithms", json!([]), "algorithms", "must name at least one algorithm"),
        ("leeway_seconds", json!(3600), "leeway_seconds", "must be a whole number from 0 to 300"),
        ("upstream_timeout_ms", json!(0), "upstream_timeout_ms", "must be a whole number of milliseconds from 1"),
        ("upstream_connect_timeout_ms", json!("5s"), "upstream_connect_timeout_ms", "must be a whole number"),
        ("servers", json!({}), "servers", "must name at least one server"),
        ("servers", Value::Null, "servers", "is required: a map of server name to server"),
        ("servers/git hub", json!({"upstream": "http://x"}), "servers.git hub", "is not a valid server name"),
        ("servers/github/upstream", Value::Null, "servers.github.upstream", "is required"),
        ("servers/github/upstrem", json!("http://x"), "servers.github.upstrem", "is not a known key"),
        (
            create_issue,
            json!([]),
            "servers.github.tools.create_issue",
            "needs at least one entry (an empty list would allow everything)",
        ),
        (
            create_issue,
            json!([{"relation": "can_call", "object": "tool:x"}, {"relation": "writer", "object": "repo:{arguments.}"}]),
            "servers.github.tools.create_issue[1].object",
            "`{arguments.}` has an empty path segment",
        ),
        (x, json!("can_call"), "servers.github.tools.x", "must be `{relation, object, approval?}`"),
        (
            "servers/github/resources",
            json!({"file:///a": {"relation": "viewer", "object": "doc:{arguments.x}"}}),
            "servers.github.resources.file:///a.object",
            "`{arguments.x}`: resources have no arguments; use `{uri}`",
        ),
        (
            "servers/github/resources",
            json!({"*": {"relation": "viewer", "object": "doc:{tool}"}}),
            "servers.github.resources.*.object",
            "unknown placeholder `{tool}`; use `{uri}`",
        ),
        ("servers/github/prompts", json!(["x"]), "servers.github.prompts", "must be a map of name to entry"),
    ];
    // The upstream headers set to one header: (its name, its value, the start of the message).
    let headers = [
        ("Authorization", "Bearer ${MISSING_TOKEN}", "needs environment variable `MISSING_TOKEN`, which is not set"),
        ("X-Bad", "${NEWLINE}", "has a control character (a line break?) in its value"),
        ("X-Bad", "${UNCLOSED", "has `${` without a closing `}`"),
        ("Bad Header", "x", "is not a valid header name"),
    ];
    // A tool `x` mapped to one entry: (the entry, its key at fault, the start of the message).
    let entries = [
        (json!({"relation": "can call", "object": "repo:a"}), "relation", "`can call` is not a valid relation name"),
        (json!({"object": "repo:a"}), "relation", "is required"),
        (
            json!({"relation": "r", "object": "repo:a", "approval": "maybe"}),
            "approval",
            "must be `required` when present",
        ),
        (json!({"relation": "r", "object": "repo:a", "when": "always"}), "when", "is not a known key"),
    ];
    // A tool `x` mapped to relation `r` on an object template: (the template, the start of the message).
    let objects = [
        ("repo", "`repo` is not of the form `type:id`"),
        ("{tool}:x", "`{tool}` is not a valid type (placeholders go in the id)"),
        ("repo:{args.repo}", "unknown placeholder `{args.repo}`; use `{tool}` or `{arguments.NAME}`"),
        ("repo:{arguments.repo", "`repo:{arguments.repo` has a `{` without `}`"),
        ("repo:a}b", "`repo:a}b` has a `}` without `{`"),
        ("repo:a#b", "`repo:a#b` has `#`, `:`, `@` or whitespace in its id"),
        ("repo:../x", "id `../x` contains a `..` path segment"),
    ];
    let cases = keys
        .into_iter()
        .map(|(path, change, key, message)| (path, change, key.to_string(), message))
        .chain(headers.map(|(name, value, message)| {
            let key = format!("servers.github.upstream_headers.{name}");
            ("servers/github/upstream_headers", json!({ name: value }), key, message)
        }))
        .chain(entries.map(|(entry, key, message)| (x, entry, format!("servers.github.tools.x.{key}"), message)))
        .chain(objects.map(|(object, message)| {
            (x, json!({"relation": "r", "object": object}), "servers.github.tools.x.object".to_string(), message)
        }));
    let mut failures = Vec::new();
    for (path, change, expected_path, expected_message) in cases {
        match GatewayConfig::parse(&changed(path, change), Format::Json, &env) {
            Err(ConfigError::Key { path: got_path, message })
                if got_path == expected_path && message.starts_with(expected_message) => {}
            other => failures.push(format!("{path}: got {other:?}, expected `{expected_path}` {expected_message}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn text_that_is_not_yaml_or_json_is_a_syntax_error() {
    assert!(matches!(GatewayConfig::parse("{", Format::Json, &env), Err(ConfigError::Syntax { format: "JSON", .. })));
    assert!(matches!(
        GatewayConfig::parse("a: [", Format::Yaml, &env),
        Err(ConfigError::Syntax { format: "YAML", .. })
    ));
    assert_eq!(
        GatewayConfig::parse("- 1", Format::Yaml, &env),
        Err(ConfigError::Key { path: "(top level)".into(), message: "must be a map".into() })
    );
}
