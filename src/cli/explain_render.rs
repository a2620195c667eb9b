//! `writ check [--explain]` in the terminal (DESIGN §9): asks a data dir (in-process, through the
//! same router a server runs) or a running server (`--url`) for `check` or `writ/explain`, and
//! renders an explanation as a tree with ✓/✗ per node and the reasons of denied leaves.
//!
//! Invariant: both sources answer through the HTTP API's own handlers, so the terminal shows
//! exactly what `POST writ/explain` answers; the renderer reads that wire JSON and nothing else.

use crate::api::router;
use crate::cli::transfer::{find_store, TransferError};
use crate::engine::Engine;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::Arc;
use tower::ServiceExt;

/// What can stop `writ check`.
#[derive(Debug, thiserror::Error)]
pub enum CheckCliError {
    /// The store is not found by id or name.
    #[error(transparent)]
    Store(#[from] TransferError),
    /// The server (or the in-process API) refused the request; its own message.
    #[error("the server answered {status}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The answer's `message` (or its body).
        message: String,
    },
    /// The server could not be reached, or its answer was not JSON.
    #[error("cannot ask {url}: {message}")]
    Transport {
        /// Where.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// One check asked from the terminal.
#[derive(Debug, Clone)]
pub struct CheckQuestion {
    /// `user:anne`, `group:eng#member`.
    pub user: String,
    /// The relation.
    pub relation: String,
    /// `document:q3`.
    pub object: String,
    /// Condition context, a JSON object (empty when none).
    pub context: serde_json::Map<String, Value>,
    /// Ask `writ/explain` instead of `check`.
    pub explain: bool,
}

impl CheckQuestion {
    fn route(&self, store_id: &str) -> String {
        if self.explain {
            format!("/stores/{store_id}/writ/explain")
        } else {
            format!("/stores/{store_id}/check")
        }
    }

    fn body(&self) -> Value {
        json!({
            "tuple_key": {"user": self.user, "relation": self.relation, "object": self.object},
            "context": self.context,
        })
    }
}

fn refused(status: u16, body: &Value) -> CheckCliError {
    let message = body.get("message").and_then(Value::as_str).map_or_else(|| body.to_string(), str::to_string);
    CheckCliError::Refused { status, message }
}

/// Asks a store of an opened engine (`store` is an id, or the name one store has), through the
/// HTTP API's router in-process; returns the answer's JSON.
pub async fn ask_engine(engine: Arc<Engine>, store: &str, question: &CheckQuestion) -> Result<Value, CheckCliError> {
    let store_id = find_store(&engine, store)?.id;
    let uri = question.route(&store_id);
    let transport = |message: String| CheckCliError::Transport { url: uri.clone(), message };
    let request = Request::post(&uri)
        .header("content-type", "application/json")
        .body(Body::from(question.body().to_string()))
        .map_err(|e| transport(e.to_string()))?;
    let response = router(engine).oneshot(request).await.map_err(|e| transport(e.to_string()))?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.map_err(|e| transport(e.to_string()))?.to_bytes();
    let answer: Value = serde_json::from_slice(&bytes).map_err(|e| transport(e.to_string()))?;
    if status == 200 {
        Ok(answer)
    } else {
        Err(refused(status, &answer))
    }
}

/// Asks a running server at `base_url` (`http://host:port`) about store `store_id`, with
/// `api_key` as a bearer token when given; returns the answer's JSON.
pub async fn ask_server(
    base_url: &str,
    store_id: &str,
    api_key: Option<&str>,
    question: &CheckQuestion,
) -> Result<Value, CheckCliError> {
    let url = format!("{}{}", base_url.trim_end_matches('/'), question.route(store_id));
    let transport = |message: String| CheckCliError::Transport { url: url.clone(), message };
    let mut request = reqwest::Client::new().post(&url).header("content-type", "application/json");
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    let response = request.body(question.body().to_string()).send().await.map_err(|e| transport(e.to_string()))?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|e| transport(e.to_string()))?;
    let answer: Value = serde_json::from_slice(&bytes).map_err(|e| transport(e.to_string()))?;
    if status == 200 {
        Ok(answer)
    } else {
        Err(refused(status, &answer))
    }
}

/// Renders a `check` answer: one line, `✓ allowed` or `✗ denied`.
pub fn render_check(answer: &Value) -> String {
    if answer["allowed"] == json!(true) {
        "✓ allowed\n".to_string()
    } else {
        "✗ denied\n".to_string()
    }
}

/// Renders a `writ/explain` answer: the verdict, the tree (one node a line, ✓/✗ and reasons),
/// then the tuples that grant it (`path`) or would (`would_allow`).
pub fn render_explanation(answer: &Value) -> String {
    let mut out = String::new();
    let allowed = answer["allowed"] == json!(true);
    let verdict = if allowed { "✓ allowed" } else { "✗ denied" };
    let revision = answer["revision"].as_u64().map(|r| format!(" at revision {r}")).unwrap_or_default();
    let model = answer["authorization_model_id"].as_str().map(|m| format!(" (model {m})")).unwrap_or_default();
    let _ = writeln!(out, "{verdict}{revision}{model}");
    if let Some(denial) = answer.get("denied_by").and_then(|d| d.get("message")).and_then(Value::as_str) {
        let _ = writeln!(out, "denied by: {denial}");
    }
    render_node(&answer["tree"], "", "", &mut out);
    if answer["cut"] == json!(true) {
        let _ = writeln!(out, "(the tree was cut at the node limit, --max-explain-nodes)");
    }
    let tuples = |key: &str| answer[key].as_array().cloned().unwrap_or_default();
    let path = tuples("path");
    if !path.is_empty() {
        let _ = writeln!(out, "granted by:");
        for tuple in &path {
            let mark = if tuple["contextual"] == json!(true) { " (contextual)" } else { "" };
            let _ = writeln!(out, "  {}{mark}", tuple_text(tuple));
        }
    }
    let would_allow = tuples("would_allow");
    if !would_allow.is_empty() {
        let _ = writeln!(out, "would allow (any one, written):");
        for tuple in &would_allow {
            let _ = writeln!(out, "  {}", tuple_text(tuple));
        }
    } else if !allowed {
        let _ = writeln!(out, "no single tuple would allow it");
    }
    out
}

/// `object#relation@user`, with `[condition]` when it has one.
fn tuple_text(tuple: &Value) -> String {
    let text = |key: &str| tuple[key].as_str().unwrap_or("?").to_string();
    let condition = tuple["condition"]["name"].as_str().map(|name| format!(" [{name}]")).unwrap_or_default();
    format!("{}#{}@{}{condition}", text("object"), text("relation"), text("user"))
}

fn strings(value: &Value) -> String {
    value
        .as_array()
        .map(|items| items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// The reason of a denied leaf, in words.
fn reason_text(node: &Value) -> Option<String> {
    let condition = node["condition"].as_str().unwrap_or("?");
    Some(match node["reason"].as_str()? {
        "no_tuple" => "no tuple".to_string(),
        "excluded" => format!("excluded by `{}`", node["excluded_by"].as_str().unwrap_or("?")),
        "condition_false" => format!("condition `{condition}` is false (read: {})", strings(&node["parameters"])),
        "missing_context" => format!("condition `{condition}` lacks context: {}", strings(&node["missing"])),
        "condition_error" => format!("condition `{condition}` failed: {}", node["message"].as_str().unwrap_or("?")),
        "expired" => format!("expired at {}", node["expired_at"].as_str().unwrap_or("?")),
        "type_not_allowed" => "the model does not admit this tuple".to_string(),
        "delegation_missing" => "delegation missing".to_string(),
        other => other.to_string(),
    })
}

fn mark(result: &str) -> &'static str {
    match result {
        "allowed" => "✓",
        "denied" => "✗",
        "conditional" => "?",
        "cycle" => "↻",
        _ => "⚠",
    }
}

fn render_node(node: &Value, lead: &str, child_lead: &str, out: &mut String) {
    let result = node["result"].as_str().unwrap_or("?");
    let mut line = String::new();
    match (node["object"].as_str(), node["relation"].as_str()) {
        (Some(object), Some(relation)) => {
            let _ = write!(line, "{object}#{relation}");
            if let Some(subject) = node["subject"].as_str() {
                let _ = write!(line, "@{subject}");
            }
        }
        (Some(object), None) => line.push_str(object),
        _ => {}
    }
    if let Some(rewrite) = node["rewrite"].as_str() {
        let _ = write!(line, " [{rewrite}");
        if let Some(tupleset) = node["tupleset"].as_str() {
            let _ = write!(line, " {tupleset}");
        }
        if let Some(computed) = node["computed"].as_str() {
            let _ = write!(line, " → {computed}");
        }
        line.push(']');
    }
    if node.get("tuple").is_some_and(Value::is_object) {
        let _ = write!(line, " via {}", tuple_text(&node["tuple"]));
    }
    if !matches!(result, "allowed" | "denied") {
        let _ = write!(line, " {result}");
    }
    if let Some(reason) = reason_text(node) {
        let _ = write!(line, ": {reason}");
    }
    if node["cut"] == json!(true) {
        line.push_str(" (cut)");
    }
    let _ = writeln!(out, "{lead}{} {}", mark(result), line.trim_start());
    let children = node["children"].as_array().cloned().unwrap_or_default();
    for (i, child) in children.iter().enumerate() {
        let last = i + 1 == children.len();
        let (branch, rest) = if last { ("└─ ", "   ") } else { ("├─ ", "│  ") };
        render_node(child, &format!("{child_lead}{branch}"), &format!("{child_lead}{rest}"), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_denied_tree_shows_marks_reasons_and_the_fix() {
        let answer = json!({
            "allowed": false, "revision": 7, "authorization_model_id": "01M",
            "tree": {"object": "document:q3", "relation": "viewer", "subject": "user:anne", "rewrite": "union",
                "result": "denied", "children": [
                    {"rewrite": "direct", "result": "denied", "reason": "no_tuple"},
                    {"rewrite": "tuple_to_userset", "tupleset": "parent", "computed": "viewer", "result": "denied",
                     "children": [{"object": "folder:f", "relation": "viewer", "result": "denied", "reason": "expired",
                                   "expired_at": "2027-01-15T08:00:00Z"}]},
                    {"rewrite": "direct", "result": "denied", "reason": "missing_context",
                     "condition": "office_hours", "missing": ["hour"]}]},
            "path": [],
            "would_allow": [{"user": "user:anne", "relation": "viewer", "object": "document:q3"}],
            "cut": false
        });
        let expected = "\
✗ denied at revision 7 (model 01M)
✗ document:q3#viewer@user:anne [union]
├─ ✗ [direct]: no tuple
├─ ✗ [tuple_to_userset parent → viewer]
│  └─ ✗ folder:f#viewer: expired at 2027-01-15T08:00:00Z
└─ ✗ [direct]: condition `office_hours` lacks context: hour
would allow (any one, written):
  document:q3#viewer@user:anne
";
        assert_eq!(render_explanation(&answer), expected);
    }

    #[test]
    fn an_allowed_tree_lists_the_granting_tuples_and_marks_contextual_ones() {
        let answer = json!({
            "allowed": true, "revision": 3, "authorization_model_id": "01M",
            "tree": {"object": "document:1", "relation": "viewer", "subject": "user:anne", "rewrite": "direct",
                "result": "allowed", "cut": true,
                "children": [{"result": "allowed", "tuple": {"user": "user:anne", "relation": "viewer",
                    "object": "document:1", "condition": {"name": "office_hours", "context": {}}}}]},
            "path": [{"user": "user:anne", "relation": "viewer", "object": "document:1", "contextual": true}],
            "would_allow": [], "cut": true
        });
        let text = render_explanation(&answer);
        assert!(text.starts_with("✓ allowed at revision 3 (model 01M)\n✓ document:1#viewer@user:anne [direct] (cut)\n"));
        assert!(text.contains("└─ ✓ via document:1#viewer@user:anne [office_hours]\n"), "{text}");
        assert!(text.contains("(the tree was cut at the node limit, --max-explain-nodes)\n"));
        assert!(text.ends_with("granted by:\n  document:1#viewer@user:anne (contextual)\n"), "{text}");
        assert_eq!(render_check(&json!({"allowed": false})), "✗ denied\n");
    }
}
