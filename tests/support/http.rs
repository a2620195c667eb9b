//! Sending requests through a router with `oneshot`, for the suites that only need JSON in and out.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// Sends raw bytes with optional `Authorization: Bearer <key>`; returns the status and the body
/// as JSON (a non-JSON body becomes a JSON string).
pub async fn send(app: &Router, key: Option<&str>, method: &str, uri: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let mut builder = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    let response = app.clone().oneshot(builder.body(Body::from(body)).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, value)
}

/// Sends a JSON body (or none) without a key.
pub async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    call_as(app, None, method, uri, body).await
}

/// Sends a JSON body (or none) with a key.
pub async fn call_as(
    app: &Router,
    key: Option<&str>,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    send(app, key, method, uri, body.map(|b| b.to_string().into_bytes()).unwrap_or_default()).await
}

/// A tuple key.
pub fn tuple(user: &str, relation: &str, object: &str) -> Value {
    serde_json::json!({"user": user, "relation": relation, "object": object})
}

/// The `code` of an error answer, after checking it has a non-empty `code` and `message`.
pub fn error_code(status: StatusCode, body: &Value) -> String {
    assert!(status.is_client_error() || status.is_server_error(), "{status} {body}");
    let code = body["code"].as_str().unwrap_or_else(|| panic!("error without `code`: {status} {body}"));
    let message = body["message"].as_str().unwrap_or_else(|| panic!("error without `message`: {status} {body}"));
    assert!(!code.is_empty() && !message.is_empty(), "{status} {body}");
    code.to_string()
}
