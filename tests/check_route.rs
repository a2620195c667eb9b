//! `POST /stores/{store_id}/check` is answered by `writ::api::Api` ahead of the router; these
//! tests send the same requests through the API and through its router alone
//! (`Api::into_router`) and hold the two answers to each other: status, headers (but the request
//! id, made per request unless the caller sends one) and body, for good checks, every kind of bad
//! input, a body in several frames, and keys that may or may not call the store; and the decision
//! log records the dispatched check as it records the routed one.

use crate::support::fixture::store_with;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use tower::{Service, ServiceExt};
use writ::api::{router_with_config, ApiOptions, Auth, KeySet, RouterConfig};
use writ::engine::Engine;

const MODEL: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user]
type document
  relations
    define viewer: [user, group#member]
";

/// One answer, as compared: the request id header is left out unless the caller chose it.
#[derive(Debug, PartialEq)]
struct Seen {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: String,
}

async fn answer<S>(service: S, request: Request<Body>, keep_request_id: bool) -> Seen
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    let response = service.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = named(response.headers(), keep_request_id);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Seen { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

fn named(headers: &HeaderMap, keep_request_id: bool) -> Vec<(String, String)> {
    let mut named: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| keep_request_id || name.as_str() != "x-request-id")
        .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    named.sort();
    named
}

/// A request to the check route of `store` (any method, path tail and body).
fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: Body) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).unwrap()
}

/// Sends `make()`'s request through the API and through its router alone; both answers must be
/// the same, and the API's is returned.
async fn same_answer(app: &writ::api::Api, make: impl Fn() -> Request<Body>) -> Seen {
    let keep_request_id = make().headers().contains_key("x-request-id");
    let dispatched = answer(app.clone(), make(), keep_request_id).await;
    let routed = answer(app.clone().into_router(), make(), keep_request_id).await;
    assert_eq!(dispatched, routed, "{} {}", make().method(), make().uri());
    let request_id = |seen: &Seen| seen.headers.iter().any(|(name, _)| name == "x-request-id");
    assert_eq!(request_id(&dispatched), keep_request_id);
    dispatched
}

fn engine_with_store() -> (Arc<Engine>, String) {
    let engine = Arc::new(Engine::in_memory());
    let tuples = ["document:1#viewer@user:anne", "group:eng#member@user:bob", "document:2#viewer@group:eng#member"];
    let store = store_with(&engine, MODEL, &tuples);
    (engine, store)
}

fn check_body(user: &str, relation: &str, object: &str) -> String {
    json!({"tuple_key": {"user": user, "relation": relation, "object": object}}).to_string()
}

#[tokio::test]
async fn the_dispatched_check_answers_as_the_router_does() {
    let (engine, store) = engine_with_store();
    let options = ApiOptions { max_body_bytes: 4096, max_json_depth: 8, ..ApiOptions::default() };
    let config =
        RouterConfig { options, revision_wait: std::time::Duration::from_millis(20), ..RouterConfig::default() };
    let app = router_with_config(engine, config);
    let uri = format!("/stores/{store}/check");
    let deep = format!("{}{}", "{\"a\":".repeat(20), "1".to_string() + &"}".repeat(20));
    let bodies: Vec<(&str, String)> = vec![
        ("allowed", check_body("user:anne", "viewer", "document:1")),
        ("allowed through a group", check_body("user:bob", "viewer", "document:2")),
        ("denied", check_body("user:anne", "viewer", "document:2")),
        ("unknown relation", check_body("user:anne", "owner", "document:1")),
        ("unknown type", check_body("user:anne", "viewer", "folder:1")),
        ("no type", check_body("anne", "viewer", "document:1")),
        ("missing user", json!({"tuple_key": {"relation": "viewer", "object": "document:1"}}).to_string()),
        (
            "wrong field type",
            json!({"tuple_key": {"user": 7, "relation": "viewer", "object": "document:1"}}).to_string(),
        ),
        (
            "unknown field",
            json!({"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:1"}, "bogus": 1})
                .to_string(),
        ),
        (
            "contextual tuple",
            json!({"tuple_key": {"user": "user:cy", "relation": "viewer", "object": "document:1"},
            "contextual_tuples": {"tuple_keys": [{"user": "user:cy", "relation": "viewer", "object": "document:1"}]}})
            .to_string(),
        ),
        (
            "unknown model",
            json!({"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:1"},
            "authorization_model_id": "01HZZZZZZZZZZZZZZZZZZZZZZZ"})
            .to_string(),
        ),
        (
            "revision not reached",
            json!({"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:1"},
            "at_least_revision": 1_000_000})
            .to_string(),
        ),
        (
            "audit",
            json!({"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:2"},
            "audit": {"tool": "search"}})
            .to_string(),
        ),
        ("not JSON", "{tuple_key".to_string()),
        ("an array", "[1, 2]".to_string()),
        ("empty", String::new()),
        ("whitespace", " \n ".to_string()),
        ("too deep", deep),
        ("too large", format!("{{\"pad\":\"{}\"}}", "x".repeat(5000))),
    ];
    let mut statuses = Vec::new();
    for (what, body) in &bodies {
        let seen = same_answer(&app, || request("POST", &uri, &[], Body::from(body.clone()))).await;
        statuses.push((*what, seen.status.as_u16()));
        if *what == "allowed" {
            assert_eq!(seen.body, r#"{"allowed":true,"resolution":""}"#);
        }
    }
    // The corpus reaches the answers it is meant to, so the comparison covers each of them.
    for (what, status) in
        [("allowed", 200), ("denied", 200), ("unknown relation", 400), ("not JSON", 400), ("too large", 413)]
    {
        assert!(statuses.contains(&(what, status)), "{what}: {statuses:?}");
    }
    let not_utf8 = same_answer(&app, || request("POST", &uri, &[], Body::from(vec![b'{', 0xff, b'}']))).await;
    assert_eq!(not_utf8.status, StatusCode::BAD_REQUEST);
    let named = same_answer(&app, || {
        request(
            "POST",
            &uri,
            &[("x-request-id", "caller-7")],
            Body::from(check_body("user:anne", "viewer", "document:1")),
        )
    })
    .await;
    assert!(named.headers.contains(&("x-request-id".to_string(), "caller-7".to_string())));
    let missing = same_answer(&app, || {
        request(
            "POST",
            "/stores/01HNOSUCHSTORE0000000000000/check",
            &[],
            Body::from(check_body("user:anne", "viewer", "document:1")),
        )
    })
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_body_in_several_frames_is_read_whole_and_held_to_the_limit() {
    let (engine, store) = engine_with_store();
    let options = ApiOptions { max_body_bytes: 200, ..ApiOptions::default() };
    let app = router_with_config(engine, RouterConfig { options, ..RouterConfig::default() });
    let uri = format!("/stores/{store}/check");
    let framed = |text: String, size: usize| {
        let chunks: Vec<Result<Bytes, Infallible>> =
            text.as_bytes().chunks(size).map(|chunk| Ok(Bytes::copy_from_slice(chunk))).collect();
        Body::from_stream(futures_util::stream::iter(chunks))
    };
    let body = check_body("user:bob", "viewer", "document:2");
    for size in [1, 7, body.len()] {
        let seen = same_answer(&app, || request("POST", &uri, &[], framed(body.clone(), size))).await;
        assert_eq!(
            (seen.status, seen.body.as_str()),
            (StatusCode::OK, r#"{"allowed":true,"resolution":""}"#),
            "frames of {size}"
        );
    }
    let large = format!("{{\"pad\":\"{}\"}}", "x".repeat(300));
    for size in [10, 150, large.len()] {
        let seen = same_answer(&app, || request("POST", &uri, &[], framed(large.clone(), size))).await;
        assert_eq!(seen.status, StatusCode::PAYLOAD_TOO_LARGE, "frames of {size}");
    }
}

#[tokio::test]
async fn the_dispatched_check_asks_for_the_same_key_as_the_route() {
    let (engine, store) = engine_with_store();
    let other = engine.create_store("other").unwrap().id;
    let keys =
        format!("reader:reader-key-0123456789,writer:writer-key-0123456789,reader:limited-key-0123456789:{other}");
    let auth = Auth::Preshared(Arc::new(KeySet::parse_compact(&keys).unwrap()));
    let app = router_with_config(engine, RouterConfig { auth, ..RouterConfig::default() });
    let uri = format!("/stores/{store}/check");
    let body = check_body("user:anne", "viewer", "document:1");
    let mut statuses = Vec::new();
    for key in [
        None,
        Some("Bearer nope"),
        Some("Bearer reader-key-0123456789"),
        Some("Bearer writer-key-0123456789"),
        Some("Bearer limited-key-0123456789"),
        Some("Basic x"),
    ] {
        let headers: Vec<(&str, &str)> = key.map(|value| ("authorization", value)).into_iter().collect();
        let seen = same_answer(&app, || request("POST", &uri, &headers, Body::from(body.clone()))).await;
        statuses.push(seen.status.as_u16());
    }
    assert_eq!(statuses, [401, 401, 200, 200, 403, 401]);
}

#[tokio::test]
async fn the_decision_log_records_the_dispatched_check_as_the_routed_one() {
    let engine = Arc::new(Engine::in_memory());
    let store = store_with(&engine, MODEL, &[]);
    let app = router_with_config(engine.clone(), RouterConfig::default());
    let uri = format!("/stores/{store}/check");
    let body = json!({"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:9"}, "audit": {"tool": "t"}});
    for (service_is_router, id) in [(false, "dispatched-1"), (true, "routed-1")] {
        let request = request("POST", &uri, &[("x-request-id", id)], Body::from(body.to_string()));
        let response = if service_is_router {
            app.clone().into_router().oneshot(request).await.unwrap()
        } else {
            app.clone().oneshot(request).await.unwrap()
        };
        assert_eq!(response.status(), StatusCode::OK);
    }
    engine.decision_log().flush();
    let filter = writ::record::DecisionFilter { limit: 10, ..Default::default() };
    let records: Vec<Value> = engine
        .decision_log()
        .list(&engine.store(&store).unwrap(), &filter)
        .unwrap()
        .into_iter()
        .map(|(_, record)| {
            let mut value = serde_json::to_value(record).unwrap();
            let object = value.as_object_mut().unwrap();
            for varying in ["time_ms", "latency_us"] {
                object.remove(varying);
            }
            value
        })
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    let without_id = |record: &Value| {
        let mut record = record.clone();
        record.as_object_mut().unwrap().remove("request_id");
        record
    };
    assert_eq!(without_id(&records[0]), without_id(&records[1]));
    let mut ids: Vec<&str> = records.iter().map(|record| record["request_id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["dispatched-1", "routed-1"]);
    assert_eq!(records[0]["allowed"], Value::Bool(false));
}
