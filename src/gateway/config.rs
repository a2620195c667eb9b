//! The gateway config file (DESIGN §8), YAML or JSON text → a checked [`GatewayConfig`].
//!
//! Invariant: a parsed config is complete and consistent: one JWKS source, absolute URLs, valid
//! type names, every mapping entry well formed, every `${VAR}` in `upstream_headers` resolved;
//! each error names the key path (`servers.github.tools.create_issue[1].object`).
//! Pure: the caller reads the file and passes the environment as a lookup, so tests need neither.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use super::mapping::{EntryMap, Primitive, ServerMapping};
use super::token::{SigningAlgorithm, VerifierSettings};

/// The largest `leeway_seconds` accepted: clock skew, not a grace period.
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// The default `upstream_connect_timeout_ms`: a loopback or LAN upstream connects in
/// milliseconds, so a few seconds only ever waits for one that is down.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;

/// The default `upstream_timeout_ms`: how long the upstream may take to answer (and, for a
/// streamed answer, to send its next event) before the client gets a JSON-RPC error instead.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 60_000;

/// The largest accepted upstream timeout (one hour): past it a hung upstream is a hung client.
pub const MAX_UPSTREAM_TIMEOUT_MS: u64 = 3_600_000;

/// Why a gateway config was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is not YAML (or JSON) at all.
    #[error("gateway config is not valid {format}: {message}")]
    Syntax {
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A key is missing, unknown, or has a bad value.
    #[error("gateway config `{path}` {message}")]
    Key {
        /// The dotted key path, e.g. `servers.github.upstream`.
        path: String,
        /// What is wrong there.
        message: String,
    },
}

fn key_error(path: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Key { path: path.into(), message: message.into() }
}

/// The config file's syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML (the default).
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// JSON for a `.json` file name, YAML otherwise.
    pub fn from_file_name(name: &str) -> Format {
        if name.to_ascii_lowercase().ends_with(".json") {
            Format::Json
        } else {
            Format::Yaml
        }
    }
}

/// Where the issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// `jwks_url`: fetched, and refetched on an unknown `kid` or when stale.
    Url(String),
    /// `jwks_file`: read from disk.
    File(PathBuf),
}

/// Whether a deny blocks the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Denied calls are refused (the default).
    Enforce,
    /// Every call is decided and recorded, and forwarded whatever the decision.
    LogOnly,
}

/// One upstream MCP server and its mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// The upstream's streamable-HTTP endpoint.
    pub upstream: String,
    /// Headers sent upstream instead of the client's, `${VAR}` already substituted.
    pub upstream_headers: Vec<(String, String)>,
    /// The server's `tools`, `resources` and `prompts` maps.
    pub mapping: ServerMapping,
}

/// A checked gateway config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// The store the checks run against.
    pub store: String,
    /// The one accepted token issuer.
    pub issuer: String,
    /// The issuer's keys.
    pub jwks: JwksSource,
    /// The base of each server's resource URI, without a trailing `/`.
    pub public_url: String,
    /// `enforce` or `log_only`.
    pub mode: Mode,
    /// The type of the human principal (`user`).
    pub user_type: String,
    /// The type of agent principals (`agent`).
    pub agent_type: String,
    /// Accepted token algorithms (`algorithms`, default `[RS256]`).
    pub algorithms: Vec<SigningAlgorithm>,
    /// Clock skew tolerated on `exp`/`nbf` (`leeway_seconds`, default 60).
    pub leeway_seconds: u64,
    /// Longest the gateway waits to connect to an upstream (`upstream_connect_timeout_ms`).
    pub upstream_connect_timeout: Duration,
    /// Longest the gateway waits for an upstream's answer, or for its next streamed event
    /// (`upstream_timeout_ms`).
    pub upstream_timeout: Duration,
    /// The servers, by name (the `{server}` of `/mcp/{server}`).
    pub servers: BTreeMap<String, ServerConfig>,
}

const TOP_KEYS: &[&str] = &[
    "store",
    "issuer",
    "jwks_url",
    "jwks_file",
    "public_url",
    "mode",
    "user_type",
    "agent_type",
    "algorithms",
    "leeway_seconds",
    "upstream_connect_timeout_ms",
    "upstream_timeout_ms",
    "servers",
];
const SERVER_KEYS: &[&str] = &["upstream", "upstream_headers", "tools", "resources", "prompts"];

impl GatewayConfig {
    /// Reads config text; `env` answers `${VAR}` in `upstream_headers`.
    pub fn parse(
        text: &str,
        format: Format,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<GatewayConfig, ConfigError> {
        let value: Value = match format {
            Format::Json => serde_json::from_str(text)
                .map_err(|e| ConfigError::Syntax { format: "JSON", message: e.to_string() })?,
            Format::Yaml => serde_norway::from_str(text)
                .map_err(|e| ConfigError::Syntax { format: "YAML", message: e.to_string() })?,
        };
        let Value::Object(top) = &value else {
            return Err(key_error("(top level)", "must be a map"));
        };
        known_keys(top, TOP_KEYS, "")?;
        let store = required_text(top, "store", "")?;
        if store.chars().any(char::is_whitespace) {
            return Err(key_error("store", "must not contain whitespace"));
        }
        let issuer = required_text(top, "issuer", "")?;
        let jwks = match (optional_text(top, "jwks_url", "")?, optional_text(top, "jwks_file", "")?) {
            (Some(url), None) => JwksSource::Url(http_url(url, "jwks_url")?),
            (None, Some(file)) => JwksSource::File(PathBuf::from(file)),
            (Some(_), Some(_)) => return Err(key_error("jwks_url", "and `jwks_file` are exclusive; give one")),
            (None, None) => return Err(key_error("jwks_url", "or `jwks_file` is required")),
        };
        let public_url = http_url(required_text(top, "public_url", "")?, "public_url")?;
        if public_url.contains(['?', '#']) {
            return Err(key_error("public_url", "must not have a query or fragment"));
        }
        let mode = match optional_text(top, "mode", "")? {
            None | Some("enforce") => Mode::Enforce,
            Some("log_only") => Mode::LogOnly,
            Some(other) => return Err(key_error("mode", format!("is `{other}`; use `enforce` or `log_only`"))),
        };
        let user_type = type_name(optional_text(top, "user_type", "")?.unwrap_or("user"), "user_type")?;
        let agent_type = type_name(optional_text(top, "agent_type", "")?.unwrap_or("agent"), "agent_type")?;
        let algorithms = algorithms(top.get("algorithms"))?;
        let leeway_seconds = match top.get("leeway_seconds") {
            None => 60,
            Some(value) => value.as_u64().filter(|&s| s <= MAX_LEEWAY_SECONDS).ok_or_else(|| {
                key_error("leeway_seconds", format!("must be a whole number from 0 to {MAX_LEEWAY_SECONDS}"))
            })?,
        };
        let upstream_connect_timeout = timeout_ms(
            top.get("upstream_connect_timeout_ms"),
            "upstream_connect_timeout_ms",
            DEFAULT_CONNECT_TIMEOUT_MS,
        )?;
        let upstream_timeout =
            timeout_ms(top.get("upstream_timeout_ms"), "upstream_timeout_ms", DEFAULT_UPSTREAM_TIMEOUT_MS)?;
        let Some(Value::Object(server_map)) = top.get("servers") else {
            return Err(key_error("servers", "is required: a map of server name to server"));
        };
        if server_map.is_empty() {
            return Err(key_error("servers", "must name at least one server"));
        }
        let mut servers = BTreeMap::new();
        for (name, server) in server_map {
            let path = format!("servers.{name}");
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(key_error(
                    path,
                    "is not a valid server name (letters, digits, `-`, `_`): it is a URL path segment",
                ));
            }
            servers.insert(name.clone(), server_config(server, &path, env)?);
        }
        Ok(GatewayConfig {
            store: store.to_string(),
            issuer: issuer.to_string(),
            jwks,
            public_url,
            mode,
            user_type,
            agent_type,
            algorithms,
            leeway_seconds,
            upstream_connect_timeout,
            upstream_timeout,
            servers,
        })
    }

    /// The resource URI of `server` (RFC 8707), which its tokens' `aud` must hold.
    pub fn resource_uri(&self, server: &str) -> String {
        format!("{}/mcp/{server}", self.public_url)
    }

    /// The token verifier's settings this config asks for.
    pub fn verifier_settings(&self) -> VerifierSettings {
        VerifierSettings {
            algorithms: self.algorithms.clone(),
            leeway_seconds: self.leeway_seconds,
            user_type: self.user_type.clone(),
            agent_type: self.agent_type.clone(),
            ..VerifierSettings::new(self.issuer.clone())
        }
    }
}

fn joined(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn known_keys(map: &Map<String, Value>, allowed: &[&str], path: &str) -> Result<(), ConfigError> {
    match map.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(key_error(joined(path, key), format!("is not a known key ({})", allowed.join(", ")))),
        None => Ok(()),
    }
}

fn optional_text<'v>(map: &'v Map<String, Value>, key: &str, path: &str) -> Result<Option<&'v str>, ConfigError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(text)) if !text.trim().is_empty() => Ok(Some(text)),
        Some(_) => Err(key_error(joined(path, key), "must be a non-empty string")),
    }
}

fn required_text<'v>(map: &'v Map<String, Value>, key: &str, path: &str) -> Result<&'v str, ConfigError> {
    optional_text(map, key, path)?.ok_or_else(|| key_error(joined(path, key), "is required"))
}

fn http_url(url: &str, path: &str) -> Result<String, ConfigError> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !url.chars().any(char::is_whitespace) => {
            Ok(url.trim_end_matches('/').to_string())
        }
        _ => Err(key_error(path, format!("`{url}` is not an absolute http(s) URL"))),
    }
}

fn timeout_ms(value: Option<&Value>, path: &str, default: u64) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(Duration::from_millis(default));
    };
    value.as_u64().filter(|&ms| (1..=MAX_UPSTREAM_TIMEOUT_MS).contains(&ms)).map(Duration::from_millis).ok_or_else(
        || key_error(path, format!("must be a whole number of milliseconds from 1 to {MAX_UPSTREAM_TIMEOUT_MS}")),
    )
}

fn type_name(name: &str, path: &str) -> Result<String, ConfigError> {
    if name.chars().any(|c| "#:@*".contains(c) || c.is_whitespace() || c.is_control()) {
        return Err(key_error(path, format!("`{name}` is not a valid type name")));
    }
    Ok(name.to_string())
}

fn algorithms(value: Option<&Value>) -> Result<Vec<SigningAlgorithm>, ConfigError> {
    let Some(value) = value else {
        return Ok(vec![SigningAlgorithm::Rs256]);
    };
    let Value::Array(items) = value else {
        return Err(key_error("algorithms", "must be a list such as [RS256, ES256]"));
    };
    if items.is_empty() {
        return Err(key_error("algorithms", "must name at least one algorithm"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_str().and_then(SigningAlgorithm::from_name).ok_or_else(|| {
                key_error(format!("algorithms[{i}]"), format!("is {item}; only RS256, ES256 and EdDSA are allowed"))
            })
        })
        .collect()
}

fn server_config(value: &Value, path: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<ServerConfig, ConfigError> {
    let Value::Object(map) = value else {
        return Err(key_error(path, "must be a map with `upstream`"));
    };
    known_keys(map, SERVER_KEYS, path)?;
    let upstream = http_url(required_text(map, "upstream", path)?, &format!("{path}.upstream"))?;
    let mut upstream_headers = Vec::new();
    match map.get("upstream_headers") {
        None => {}
        Some(Value::Object(headers)) => {
            for (name, value) in headers {
                let header_path = format!("{path}.upstream_headers.{name}");
                // RFC 9110 token characters.
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
                {
                    return Err(key_error(header_path, "is not a valid header name"));
                }
                let Value::String(template) = value else {
                    return Err(key_error(header_path, "must be a string"));
                };
                let resolved = substitute_env(template, env).map_err(|message| key_error(&header_path, message))?;
                if resolved.chars().any(|c| c.is_control() && c != '\t') {
                    return Err(key_error(header_path, "has a control character (a line break?) in its value"));
                }
                upstream_headers.push((name.clone(), resolved));
            }
        }
        Some(_) => return Err(key_error(format!("{path}.upstream_headers"), "must be a map of header to value")),
    }
    let mut mapping = ServerMapping::default();
    for primitive in [Primitive::Tool, Primitive::Resource, Primitive::Prompt] {
        let key = primitive.config_key();
        if let Some(value) = map.get(key) {
            let entries = EntryMap::from_value(value, primitive, &format!("{path}.{key}"))
                .map_err(|(path, message)| key_error(path, message))?;
            match primitive {
                Primitive::Tool => mapping.tools = entries,
                Primitive::Resource => mapping.resources = entries,
                Primitive::Prompt => mapping.prompts = entries,
            }
        }
    }
    Ok(ServerConfig { upstream, upstream_headers, mapping })
}

/// `template` with each `${NAME}` replaced by `env(NAME)`; an unset variable is an error, not an
/// empty string, so a missing secret never becomes an empty `Authorization` header.
fn substitute_env(template: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err("has `${` without a closing `}`".into());
        };
        let name = &after[..end];
        let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("has `${{{name}}}`, which is not a variable name"));
        }
        let value = env(name).ok_or_else(|| format!("needs environment variable `{name}`, which is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests;
