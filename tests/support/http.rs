//! The suites' one way to send a request through a router (`oneshot`, no socket) and read the
//! answer: every request is built and every body read in [`exchange`], so a header every test
//! needs, or a new way to read bodies, is added once.

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use writ::api::Api;

/// The `Host` every request names, so absolute URLs in answers are predictable.
pub const HOST: &str = "writ.test";

/// An answer as a test reads it.
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body as text (lossy UTF-8).
    pub text: String,
}

/// Sends `body` with `headers` (`content-type: application/json` unless they name another).
pub async fn exchange(app: &Api, method: &str, uri: &str, headers: &[(&str, &str)], body: impl Into<Body>) -> Answer {
    let mut builder = Request::builder().method(method).uri(uri).header("host", HOST);
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = app.clone().oneshot(builder.body(body.into()).unwrap()).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, headers, text: String::from_utf8_lossy(&bytes).into_owned() }
}

/// A body read as JSON: `null` when empty, a JSON string when it is not JSON.
pub fn json_or_text(text: String) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// Sends a body of any content type; returns the status and the body as text.
pub async fn send_text(app: &Api, method: &str, uri: &str, body: Body, content_type: &str) -> (StatusCode, String) {
    let answer = exchange(app, method, uri, &[("content-type", content_type)], body).await;
    (answer.status, answer.text)
}

/// Sends raw bytes with optional `Authorization: Bearer <key>`; returns the status and the body
/// as JSON (a non-JSON body becomes a JSON string).
pub async fn send(app: &Api, key: Option<&str>, method: &str, uri: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let bearer = key.map(|key| format!("Bearer {key}"));
    let headers: Vec<(&str, &str)> = bearer.iter().map(|value| ("authorization", value.as_str())).collect();
    let answer = exchange(app, method, uri, &headers, body).await;
    (answer.status, json_or_text(answer.text))
}

/// Sends a JSON body (or none) without a key.
pub async fn call(app: &Api, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    call_as(app, None, method, uri, body).await
}

/// Sends a JSON body (or none) with a key.
pub async fn call_as(
    app: &Api,
    key: Option<&str>,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    send(app, key, method, uri, body.map(|b| b.to_string().into_bytes()).unwrap_or_default()).await
}

/// Sends a JSON body (or none) with extra headers (`x-request-id`, ...).
pub async fn call_with(
    app: &Api,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let answer = exchange(app, method, uri, headers, body).await;
    (answer.status, json_or_text(answer.text))
}

/// `POST /stores/{store}/check` of `object#relation@user` (as `document:1#viewer@user:anne`);
/// asserts a 200 and returns `allowed`.
pub async fn check(app: &Api, store: &str, tuple_text: &str) -> bool {
    let tuple: writ::Tuple = tuple_text.parse().unwrap();
    let body = json!({"tuple_key": {
        "user": tuple.subject.to_string(), "relation": tuple.relation, "object": tuple.object.to_string(),
    }});
    let (status, body) = call(app, "POST", &format!("/stores/{store}/check"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["allowed"].as_bool().unwrap()
}

/// A tuple key.
pub fn tuple(user: &str, relation: &str, object: &str) -> Value {
    json!({"user": user, "relation": relation, "object": object})
}

/// A batch-check body asking whether each user holds `relation` on `object`, the correlation
/// ids `0`, `1`, ... in the users' order.
pub fn batch_of(users: &[&str], relation: &str, object: &str) -> Value {
    let checks: Vec<Value> = users
        .iter()
        .enumerate()
        .map(|(i, user)| json!({"tuple_key": tuple(user, relation, object), "correlation_id": i.to_string()}))
        .collect();
    json!({"checks": checks})
}

/// The `code` of an error answer, after checking it has a non-empty `code` and `message`.
pub fn error_code(status: StatusCode, body: &Value) -> String {
    assert!(status.is_client_error() || status.is_server_error(), "{status} {body}");
    let code = body["code"].as_str().unwrap_or_else(|| panic!("error without `code`: {status} {body}"));
    let message = body["message"].as_str().unwrap_or_else(|| panic!("error without `message`: {status} {body}"));
    assert!(!code.is_empty() && !message.is_empty(), "{status} {body}");
    code.to_string()
}
