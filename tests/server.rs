//! The server features around the OpenFGA API: pre-shared keys and roles, `at_least_revision`,
//! real write times in `read` and `changes`, and the root AuthZEN routes, all through
//! `api::router_with_config(...).oneshot(request)`.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use writ::api::router;
use writ::Engine;

const MODEL: &str = "model
  schema 1.1
type user
type document
  relations
    define owner: [user]
    define viewer: [user] or owner
";

/// Sends a JSON request, with `Authorization: Bearer <key>` when a key is given.
async fn call_as(app: &Router, key: Option<&str>, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut builder = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(key) = key {
        builder = builder.header("authorization", format!("Bearer {key}"));
    }
    let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
    let response = app.clone().oneshot(builder.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    (status, value)
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    call_as(app, None, method, uri, body).await
}

/// Creates a store with [`MODEL`] through `engine`; returns its id.
fn store_with_model(engine: &Engine) -> String {
    let store = engine.create_store("demo").unwrap();
    engine.write_model(&store.id, writ::Model::parse_dsl(MODEL).unwrap()).unwrap();
    store.id
}

fn tuple(user: &str, relation: &str, object: &str) -> Value {
    json!({"user": user, "relation": relation, "object": object})
}

async fn write(app: &Router, store_id: &str, tuples: Vec<Value>) -> u64 {
    let body = json!({"writes": {"tuple_keys": tuples}});
    let (status, body) = call(app, "POST", &format!("/stores/{store_id}/write"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["revision"].as_u64().unwrap()
}

// ------------------------------------------------------------------ write times

#[tokio::test]
async fn read_and_changes_report_each_tuples_own_write_time() {
    let engine = Arc::new(Engine::in_memory());
    let store_id = store_with_model(&engine);
    let app = router(engine);
    write(&app, &store_id, vec![tuple("user:anne", "owner", "document:1")]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    write(&app, &store_id, vec![tuple("user:bob", "owner", "document:2")]).await;
    let (status, read) = call(&app, "POST", &format!("/stores/{store_id}/read"), None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    let time = |value: &Value| writ::api::time::parse_rfc3339(value.as_str().unwrap()).unwrap();
    let (first, second) = (time(&read["tuples"][0]["timestamp"]), time(&read["tuples"][1]["timestamp"]));
    assert_eq!(read["tuples"][0]["key"]["user"], "user:anne");
    assert!(second >= first + 20, "the later write has the later time: {first} then {second}");
    let (_, changes) = call(&app, "GET", &format!("/stores/{store_id}/changes"), None).await;
    assert_eq!(time(&changes["changes"][0]["timestamp"]), first);
    assert_eq!(time(&changes["changes"][1]["timestamp"]), second);
}
