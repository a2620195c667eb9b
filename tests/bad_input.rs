//! Bad input on every route: the sweep takes the routes from the router's own table
//! (`writ::api::route_paths`), so a new route is covered without editing this file. Each route is
//! called with every method, bodies that are not the JSON object it expects, path parameters that
//! are not valid UTF-8 or not ids, bad query strings and an oversized body; every answer must be a
//! 4xx with a `{"code", "message"}` JSON body (or a success where the input is valid for it).

use crate::support::http::{exchange, json_or_text, send};
use axum::http::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use writ::api::Api;
use writ::api::{route_paths, router_with_config, ApiOptions, RouterConfig};
use writ::Engine;

const MODEL: &str = "model
  schema 1.1
type user
type document
  relations
    define viewer: [user]
";

/// The largest body the sweep's router takes, so the oversized class stays cheap.
const BODY_LIMIT: usize = 4096;

/// Methods a route may serve; each route is tried with all of them.
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH"];

/// Routes whose body is entirely optional in OpenFGA too (an empty body or `{}` is a valid
/// request): `read` reads every tuple, and writing no assertions clears them.
fn empty_body_is_valid(method: &str, path: &str) -> bool {
    (method, path) == ("POST", "/stores/{store_id}/read")
        || (method, path) == ("PUT", "/stores/{store_id}/assertions/{model_id}")
}

/// Sends raw bytes with a content type; returns the status, the content type and the body.
async fn send_raw(
    app: &Api,
    method: &str,
    uri: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, String, Value) {
    let answer = exchange(app, method, uri, &[("content-type", content_type)], body).await;
    let kind = answer.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (answer.status, kind, json_or_text(answer.text))
}

/// Why an answer is not a 4xx with a JSON `{code, message}` body, if it is not.
fn json_4xx_failure(what: &str, status: StatusCode, content_type: &str, body: &Value) -> Option<String> {
    let has = |field: &str| body[field].as_str().is_some_and(|text| !text.is_empty());
    if !status.is_client_error() {
        Some(format!("{what}: expected a 4xx, got {status} {body}"))
    } else if !content_type.starts_with("application/json") || !has("code") || !has("message") {
        Some(format!("{what}: {status} without a JSON code and message (`{content_type}`): {body}"))
    } else {
        None
    }
}

/// A store with a model; returns the router, the store id and the model id.
async fn setup() -> (Api, String, String) {
    let engine = Engine::in_memory();
    let store = engine.create_store("sweep").unwrap().id;
    // The root AuthZEN routes answer for the store, so they read their bodies too.
    let options = ApiOptions { max_body_bytes: BODY_LIMIT, ..ApiOptions::default() };
    let config = RouterConfig { options, authzen_store: Some(store.clone()), ..RouterConfig::default() };
    let app = router_with_config(Arc::new(engine), config);
    let (status, model) =
        send(&app, None, "PUT", &format!("/stores/{store}/writ/model"), MODEL.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{model}");
    let model = model["authorization_model_id"].as_str().unwrap().to_string();
    (app, store, model)
}

/// `path` with `{store_id}` and `{model_id}` filled in, and `{name}` replaced by `bad` if given.
fn fill(path: &str, store: &str, model: &str, bad: Option<(&str, &str)>) -> String {
    let mut filled = path.to_string();
    if let Some((name, value)) = bad {
        filled = filled.replace(&format!("{{{name}}}"), value);
    }
    filled.replace("{store_id}", store).replace("{model_id}", model)
}

/// The `{name}` parameters of a path pattern.
fn parameters(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}')).collect()
}

/// The methods `path` serves (every method that is not answered 405), checking each 405 on the way.
/// It asks about ids that do not exist, so that probing `DELETE` deletes nothing.
async fn served_methods(app: &Api, path: &str, failures: &mut Vec<String>) -> Vec<&'static str> {
    let uri = fill(path, "01ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAW", None);
    let mut served = Vec::new();
    for method in METHODS {
        let (status, content_type, body) = send_raw(app, method, &uri, "application/json", b"{}".to_vec()).await;
        if status == StatusCode::METHOD_NOT_ALLOWED {
            failures.extend(json_4xx_failure(&format!("{method} {uri}"), status, &content_type, &body));
        } else {
            served.push(*method);
        }
    }
    assert!(!served.is_empty(), "{path} serves no method");
    served
}

#[tokio::test]
async fn every_route_answers_bad_bodies_paths_and_methods_with_json_4xx() {
    let (app, store, model) = setup().await;
    let paths = route_paths();
    assert!(paths.len() >= 30, "the route table lists only {} paths", paths.len());
    let bad_bodies: Vec<(&str, Vec<u8>)> = vec![
        ("invalid UTF-8", vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}']),
        ("invalid UTF-8 outside JSON", vec![0xff, 0xfe, 0x00, 0x7b]),
        ("a top-level array", b"[]".to_vec()),
        ("a top-level array of objects", b"[{}]".to_vec()),
        ("a top-level string", b"\"text\"".to_vec()),
        ("a top-level number", b"42".to_vec()),
        ("a top-level null", b"null".to_vec()),
        ("truncated JSON", b"{\"a\":".to_vec()),
        ("two JSON values", b"{} {}".to_vec()),
    ];
    let mut requests = 0;
    let mut failures = Vec::new();
    for path in &paths {
        let served = served_methods(&app, path, &mut failures).await;
        let uri = fill(path, &store, &model, None);
        for method in served.iter().filter(|m| ["POST", "PUT", "PATCH"].contains(m)) {
            for (class, body) in &bad_bodies {
                let (status, content_type, answer) =
                    send_raw(&app, method, &uri, "application/json", body.clone()).await;
                failures.extend(json_4xx_failure(
                    &format!("{method} {uri} with {class}"),
                    status,
                    &content_type,
                    &answer,
                ));
                requests += 1;
            }
            if empty_body_is_valid(method, path) {
                let (status, _, answer) = send_raw(&app, method, &uri, "application/json", Vec::new()).await;
                assert!(status.is_success(), "{method} {uri} with an empty body: {status} {answer}");
            } else {
                for empty in [&b""[..], b"{}", b"  \n"] {
                    let (status, content_type, answer) =
                        send_raw(&app, method, &uri, "application/json", empty.to_vec()).await;
                    let what = format!("{method} {uri} with body {:?}", String::from_utf8_lossy(empty));
                    failures.extend(json_4xx_failure(&what, status, &content_type, &answer));
                    requests += 1;
                }
            }
            let oversized = vec![b' '; BODY_LIMIT + 1];
            let (status, content_type, answer) = send_raw(&app, method, &uri, "application/json", oversized).await;
            if status != StatusCode::PAYLOAD_TOO_LARGE {
                failures.push(format!("{method} {uri} with an oversized body: {status} {answer}"));
            }
            failures.extend(json_4xx_failure(&format!("{method} {uri} oversized"), status, &content_type, &answer));
        }
        for method in &served {
            for name in parameters(path) {
                for bad in ["%ff", "%C0%AF", "a%ffb", "not-a-ulid", "%3CSTORE%3E", "01ARZ3NDEKTSV4RRFFQ69G5FAV"] {
                    let bad_uri = fill(path, &store, &model, Some((name, bad)));
                    let (status, content_type, answer) =
                        send_raw(&app, method, &bad_uri, "application/json", b"{}".to_vec()).await;
                    let what = format!("{method} {bad_uri} ({name} = {bad})");
                    failures.extend(json_4xx_failure(&what, status, &content_type, &answer));
                    requests += 1;
                }
            }
        }
        // A `DELETE` that succeeded would take the store every other request needs.
        for method in served.iter().filter(|m| **m != "DELETE") {
            for query in ["page_size=%ff", "%ff=1", "page_size=abc", "continuation_token=%ff%fe"] {
                let (status, content_type, answer) =
                    send_raw(&app, method, &format!("{uri}?{query}"), "application/json", b"{}".to_vec()).await;
                if !status.is_success() {
                    failures.extend(json_4xx_failure(
                        &format!("{method} {uri}?{query}"),
                        status,
                        &content_type,
                        &answer,
                    ));
                }
                requests += 1;
            }
            // Past the end of the route: no route.
            let (status, content_type, answer) =
                send_raw(&app, method, &format!("{uri}/nope"), "application/json", Vec::new()).await;
            failures.extend(json_4xx_failure(&format!("{method} {uri}/nope"), status, &content_type, &answer));
            requests += 1;
        }
    }
    assert!(requests > 500, "the sweep sent only {requests} requests");
    // The store and its model were there throughout, so each answer is about the input.
    let (status, _, answer) = send_raw(&app, "GET", &format!("/stores/{store}"), "application/json", Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let uri = format!("/stores/{store}/authorization-models/{model}");
    let (status, _, answer) = send_raw(&app, "GET", &uri, "application/json", Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(failures.is_empty(), "{} of {requests} answers are not JSON 4xx:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn regression_a_top_level_array_was_read_as_an_empty_read_request() {
    let (app, store, _) = setup().await;
    let (status, content_type, answer) =
        send_raw(&app, "POST", &format!("/stores/{store}/read"), "application/json", b"[]".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(content_type.starts_with("application/json"));
    assert_eq!(answer["code"], "validation_error");
    assert_eq!(answer["message"], "request body must be a JSON object, but it is an array");
}

#[tokio::test]
async fn regression_a_path_segment_not_utf8_was_answered_in_plain_text() {
    let (app, _, _) = setup().await;
    let (status, content_type, answer) =
        send_raw(&app, "POST", "/stores/%ff/check", "application/json", b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(content_type.starts_with("application/json"), "{content_type}");
    assert_eq!(answer["code"], "validation_error");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("`store_id`") && message.contains("UTF-8"), "{message}");
}

/// A JSON model with `user`, `group` and `document`, whose `document#viewer` rewrite and type
/// restrictions are given.
fn json_model(viewer: Value, viewer_types: Value, conditions: Value) -> Value {
    serde_json::json!({
        "schema_version": "1.1",
        "type_definitions": [
            {"type": "user"},
            {"type": "group", "relations": {"member": {"this": {}}},
             "metadata": {"relations": {"member": {"directly_related_user_types": [{"type": "user"}]}}}},
            {"type": "document", "relations": {"owner": {"this": {}}, "viewer": viewer},
             "metadata": {"relations": {
                 "owner": {"directly_related_user_types": [{"type": "user"}]},
                 "viewer": {"directly_related_user_types": viewer_types}}}}
        ],
        "conditions": conditions
    })
}

#[tokio::test]
async fn every_invalid_json_model_class_is_refused_with_400_naming_the_bad_part() {
    use serde_json::json;
    let (app, store, _) = setup().await;
    let uri = format!("/stores/{store}/authorization-models");
    let user = json!([{"type": "user"}]);
    let cases = [
        (
            "a condition whose expression does not compile",
            json_model(
                json!({"this": {}}),
                json!([{"type": "user", "condition": "broken"}]),
                json!({"broken": {"name": "broken", "expression": "x >",
                    "parameters": {"x": {"type_name": "TYPE_NAME_INT"}}}}),
            ),
            "invalid_authorization_model",
            "`broken`",
        ),
        (
            "a rewrite that sets two kinds",
            json_model(json!({"this": {}, "computedUserset": {"relation": "owner"}}), user.clone(), json!({})),
            "validation_error",
            "`this` and `computedUserset`",
        ),
        (
            "a nested rewrite that sets two kinds",
            json_model(
                json!({"union": {"child": [{"this": {}},
                    {"computedUserset": {"relation": "owner"}, "tupleToUserset": {
                        "tupleset": {"relation": "owner"}, "computedUserset": {"relation": "member"}}}]}}),
                user.clone(),
                json!({}),
            ),
            "validation_error",
            "`computedUserset` and `tupleToUserset`",
        ),
        (
            "a type restriction that is a userset and a wildcard",
            json_model(
                json!({"this": {}}),
                json!([{"type": "group", "relation": "member", "wildcard": {}}]),
                json!({}),
            ),
            "validation_error",
            "`group`",
        ),
    ];
    for (class, model, code, names) in cases {
        let (status, answer) = send(&app, None, "POST", &uri, model.to_string().into_bytes()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{class}: {answer}");
        assert_eq!(answer["code"], code, "{class}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(names), "{class}: {message}");
    }
    // A member set to `null` is not set (as protobuf's JSON decoding reads it): still one kind.
    let model = json_model(json!({"this": {}, "union": null, "difference": null}), user, json!({}));
    let (status, answer) = send(&app, None, "POST", &uri, model.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    // The DSL route compiles conditions too.
    let dsl = "model\n  schema 1.1\ntype user\ntype document\n  relations\n    define viewer: [user with broken]\n\
        condition broken(x: int) {\n  x >\n}\n";
    let (status, answer) = send(&app, None, "PUT", &format!("/stores/{store}/writ/model"), dsl.into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("`broken`"), "{answer}");
}

/// Regression: a condition using an undeclared variable, or whose result is not a bool, was
/// stored through the JSON and DSL model APIs (OpenFGA's condition compiler refuses both).
#[tokio::test]
async fn condition_with_undeclared_variable_or_non_bool_result_is_refused_by_both_model_apis() {
    use serde_json::json;
    let (app, store, _) = setup().await;
    let uri = format!("/stores/{store}/authorization-models");
    for (expression, names) in [("x < limit", "'limit'"), ("xs.all(v, v > 1) && v > 0", "'v'"), ("x + 1", "'int'")] {
        let model = json_model(
            json!({"this": {}}),
            json!([{"type": "user", "condition": "small"}]),
            json!({"small": {"name": "small", "expression": expression, "parameters": {
                "x": {"type_name": "TYPE_NAME_INT"},
                "xs": {"type_name": "TYPE_NAME_LIST", "generic_types": [{"type_name": "TYPE_NAME_INT"}]}}}}),
        );
        let (status, answer) = send(&app, None, "POST", &uri, model.to_string().into_bytes()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{expression}: {answer}");
        assert_eq!(answer["code"], "invalid_authorization_model", "{expression}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains("`small`") && message.contains(names), "{expression}: {message}");
    }
    // Macro-bound names are not free: this one is stored.
    let model = json_model(
        json!({"this": {}}),
        json!([{"type": "user", "condition": "small"}]),
        json!({"small": {"name": "small", "expression": "xs.all(v, v > 1)", "parameters": {
            "xs": {"type_name": "TYPE_NAME_LIST", "generic_types": [{"type_name": "TYPE_NAME_INT"}]}}}}),
    );
    let (status, answer) = send(&app, None, "POST", &uri, model.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let dsl = "model\n  schema 1.1\ntype user\ntype document\n  relations\n    define viewer: [user with small]\n\
        condition small(x: int) {\n  x < limit\n}\n";
    let (status, answer) = send(&app, None, "PUT", &format!("/stores/{store}/writ/model"), dsl.into()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(message.contains("`small`") && message.contains("'limit'"), "{answer}");
}

/// Sends raw bytes to a live `serve` and returns everything it answers before closing.
async fn raw_exchange(request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let app = writ::api::router(Arc::new(Engine::in_memory()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(writ::api::serve::serve(listener, app, None, async {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(std::time::Duration::from_secs(10), stream.read_to_end(&mut answer)).await.unwrap().unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    String::from_utf8_lossy(&answer).to_string()
}

#[tokio::test]
async fn regression_a_path_hyper_cannot_parse_was_answered_with_an_empty_body() {
    let request = b"POST /stores/<STORE>/check HTTP/1.1\r\nhost: writ\r\ncontent-length: 2\r\n\r\n{}";
    let answer = raw_exchange(request).await;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(head.contains("content-type: application/json"), "{answer}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["code"], "validation_error");
    assert!(body["message"].as_str().unwrap().contains("percent-encode"), "{body}");
    // A well-formed request on the same server path is answered as usual.
    let answer = raw_exchange(b"GET /healthz HTTP/1.1\r\nhost: writ\r\nconnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn regression_an_unknown_route_closed_a_kept_alive_connection_without_saying_so() {
    // A 404 or 405 answered without reading the body made hyper drop the connection after it,
    // so a client's next request on that connection failed ("Server disconnected").
    let body = format!("{{\"pad\": \"{}\"}}", "x".repeat(64 * 1024));
    let mut request = Vec::new();
    for (method, path) in [("POST", "/stores/01ANY/writ/no-such-route"), ("PUT", "/healthz")] {
        request.extend_from_slice(
            format!("{method} {path} HTTP/1.1\r\nhost: writ\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len())
                .as_bytes(),
        );
    }
    request.extend_from_slice(b"GET /healthz HTTP/1.1\r\nhost: writ\r\nconnection: close\r\n\r\n");
    let answer = raw_exchange(&request).await;
    let statuses: Vec<&str> = answer.match_indices("HTTP/1.1 ").map(|(at, _)| &answer[at + 9..at + 12]).collect();
    assert_eq!(statuses, ["404", "405", "200"], "{answer}");
}
