//! Every request limit through the router: each violation is a 4xx (or, for the deadline, OpenFGA's
//! 504) whose `code` names the limit, and a request that runs out of time fails instead of
//! answering with what it found so far.

use crate::support::http::{call, error_code, send, tuple};
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use writ::api::Api;
use writ::api::{router_with, ApiOptions};
use writ::engine::InputLimits;
use writ::{Engine, EngineConfig, Model};

const MODEL: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user] or viewer from parent
type document
  relations
    define viewer: [user, group#member]
";

fn engine_with(input: InputLimits) -> Arc<Engine> {
    let config = EngineConfig { input, ..EngineConfig::default() };
    Arc::new(Engine::open(Box::new(writ::store::MemoryStore::new()), config).unwrap())
}

/// A router over `engine` with one store holding [`MODEL`]; returns it and the store id.
async fn app_with(engine: Arc<Engine>, options: ApiOptions) -> (Api, String) {
    let store = engine.create_store("limits").unwrap();
    engine.store(&store.id).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    (router_with(engine, options), store.id)
}

async fn expect_code(app: &Api, method: &str, uri: &str, body: Value, status: StatusCode, code: &str) {
    let (got, answer) = call(app, method, uri, Some(body)).await;
    assert_eq!(got, status, "{uri}: {answer}");
    assert_eq!(error_code(got, &answer), code, "{uri}: {answer}");
}

fn nested(depth: usize) -> Value {
    (0..depth).fold(json!(1), |inner, _| json!({ "a": inner }))
}

#[tokio::test]
async fn identifier_lengths_follow_openfga_and_name_the_field() {
    let (app, store) = app_with(engine_with(InputLimits::default()), ApiOptions::default()).await;
    let check = format!("/stores/{store}/check");
    let long_id = "x".repeat(300);
    let bad = StatusCode::BAD_REQUEST;
    let object = json!({"tuple_key": tuple("user:anne", "viewer", &format!("document:{long_id}"))});
    expect_code(&app, "POST", &check, object, bad, "object_too_long").await;
    let user = json!({"tuple_key": tuple(&format!("user:{}", "u".repeat(600)), "viewer", "document:1")});
    expect_code(&app, "POST", &check, user, bad, "user_too_long").await;
    let relation = json!({"tuple_key": tuple("user:anne", &"r".repeat(51), "document:1")});
    expect_code(&app, "POST", &check, relation, bad, "relation_too_long").await;
    let list = json!({"type": "t".repeat(255), "relation": "viewer", "user": "user:anne"});
    expect_code(&app, "POST", &format!("/stores/{store}/list-objects"), list, bad, "type_too_long").await;
    let write = json!({"writes": {"tuple_keys": [tuple("user:anne", "viewer", &format!("document:{long_id}"))]}});
    expect_code(&app, "POST", &format!("/stores/{store}/write"), write, bad, "object_too_long").await;
    // The agent routes check the same lengths, principal by principal and id by id.
    let long_user = format!("user:{}", "u".repeat(600));
    let obo = json!({"principals": ["user:anne", long_user], "relation": "viewer", "object": "document:1"});
    expect_code(&app, "POST", &format!("/stores/{store}/writ/obo-check"), obo, bad, "user_too_long").await;
    let filter =
        json!({"principals": ["user:anne"], "relation": "viewer", "object_type": "document", "ids": ["1", long_id]});
    expect_code(&app, "POST", &format!("/stores/{store}/writ/filter"), filter, bad, "object_too_long").await;
    let audience = json!({"audience": ["user:anne"], "relation": "viewer", "objects": [format!("document:{long_id}")]});
    expect_code(&app, "POST", &format!("/stores/{store}/writ/audience-check"), audience, bad, "object_too_long").await;
    // At the limit is fine: 256 bytes of object.
    let at_limit = format!("document:{}", "y".repeat(256 - "document:".len()));
    let write = json!({"writes": {"tuple_keys": [tuple("user:anne", "viewer", &at_limit)]}});
    assert_eq!(call(&app, "POST", &format!("/stores/{store}/write"), Some(write)).await.0, StatusCode::OK);
    let (status, body) =
        call(&app, "POST", &check, Some(json!({"tuple_key": tuple("user:anne", "viewer", &at_limit)}))).await;
    assert_eq!((status, &body["allowed"]), (StatusCode::OK, &json!(true)), "{body}");
}

#[tokio::test]
async fn counts_depth_and_sizes_each_have_their_own_code() {
    let (app, store) = app_with(engine_with(InputLimits::default()), ApiOptions::default()).await;
    let bad = StatusCode::BAD_REQUEST;
    let contextual: Vec<Value> = (0..101).map(|i| tuple(&format!("user:{i}"), "viewer", "document:1")).collect();
    let check = json!({"tuple_key": tuple("user:anne", "viewer", "document:1"),
        "contextual_tuples": {"tuple_keys": contextual}});
    expect_code(&app, "POST", &format!("/stores/{store}/check"), check, bad, "too_many_contextual_tuples").await;
    let deep = json!({"tuple_key": tuple("user:anne", "viewer", "document:1"), "context": nested(100)});
    expect_code(&app, "POST", &format!("/stores/{store}/check"), deep, bad, "json_too_deep").await;
    // Deeper than serde_json's own recursion limit is still our code, never a stack overflow.
    let (status, body) = send(&app, None, "POST", &format!("/stores/{store}/check"), vec![b'['; 100_000]).await;
    assert_eq!(error_code(status, &body), "json_too_deep");
    expect_code(&app, "POST", &format!("/stores/{store}/read"), json!({"page_size": 101}), bad, "page_size_too_large")
        .await;
    let (status, body) = call(&app, "GET", &format!("/stores/{store}/changes?page_size=1000"), None).await;
    assert_eq!(error_code(status, &body), "page_size_too_large");
    let checks: Vec<Value> = (0..51)
        .map(|i| json!({"tuple_key": tuple("user:anne", "viewer", "document:1"), "correlation_id": i.to_string()}))
        .collect();
    let batch = json!({"checks": checks});
    expect_code(&app, "POST", &format!("/stores/{store}/batch-check"), batch, bad, "batch_check_too_large").await;
    let evaluations: Vec<Value> = (0..51).map(|_| json!({})).collect();
    let authzen = json!({"subject": {"type": "user", "id": "anne"}, "action": {"name": "viewer"},
        "resource": {"type": "document", "id": "1"}, "evaluations": evaluations});
    expect_code(&app, "POST", &format!("/stores/{store}/access/v1/evaluations"), authzen, bad, "batch_check_too_large")
        .await;
    let writes: Vec<Value> = (0..1001).map(|i| tuple(&format!("user:{i}"), "viewer", "document:1")).collect();
    let write = json!({"writes": {"tuple_keys": writes}});
    expect_code(&app, "POST", &format!("/stores/{store}/write"), write, bad, "exceeded_entity_limit").await;
    let model_id = app_model(&app, &store).await;
    let assertions: Vec<Value> = (0..101)
        .map(|_| json!({"tuple_key": tuple("user:anne", "viewer", "document:1"), "expectation": true}))
        .collect();
    let uri = format!("/stores/{store}/assertions/{model_id}");
    expect_code(&app, "PUT", &uri, json!({"assertions": assertions}), bad, "too_many_assertions").await;
    let huge = vec![b' '; 5 * 1024 * 1024];
    let (status, body) = send(&app, None, "POST", &format!("/stores/{store}/check"), huge).await;
    assert_eq!((status, error_code(status, &body).as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"));
}

async fn app_model(app: &Api, store: &str) -> String {
    let (_, body) = call(app, "GET", &format!("/stores/{store}/authorization-models"), None).await;
    body["authorization_models"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn models_are_bounded_in_bytes_types_conditions_and_expression_size() {
    let input = InputLimits {
        max_model_bytes: 2048,
        max_types_per_model: 4,
        max_conditions_per_model: 1,
        max_condition_bytes: 40,
        ..InputLimits::default()
    };
    let (app, store) = app_with(engine_with(input), ApiOptions::default()).await;
    let uri = format!("/stores/{store}/authorization-models");
    let dsl = |text: &str| serde_json::to_value(Model::parse_dsl(text).unwrap().to_json()).unwrap();
    let five_types = dsl("model\n  schema 1.1\ntype a\ntype b\ntype c\ntype d\ntype e\n");
    expect_code(&app, "POST", &uri, five_types, StatusCode::BAD_REQUEST, "too_many_types").await;
    let relations: String = (0..80).map(|i| format!("    define relation_number_{i}: [a]\n")).collect();
    let big = dsl(&format!("model\n  schema 1.1\ntype a\n  relations\n{relations}"));
    expect_code(&app, "POST", &uri, big, StatusCode::BAD_REQUEST, "model_too_large").await;
    let two_conditions = dsl("model\n  schema 1.1\ntype a\n  relations\n    define r: [a with x, a with y]\n\
        condition x(n: int) {\n  n > 1\n}\ncondition y(n: int) {\n  n > 2\n}\n");
    expect_code(&app, "POST", &uri, two_conditions, StatusCode::BAD_REQUEST, "too_many_conditions").await;
    let long_condition = dsl("model\n  schema 1.1\ntype a\n  relations\n    define r: [a with x]\n\
        condition x(n: int) {\n  n > 1 && n > 2 && n > 3 && n > 4 && n > 5 && n > 6\n}\n");
    expect_code(&app, "POST", &uri, long_condition, StatusCode::BAD_REQUEST, "condition_too_large").await;
    let (status, body) = send(
        &app,
        None,
        "PUT",
        &format!("/stores/{store}/writ/model"),
        b"model\n  schema 1.1\ntype a\ntype b\ntype c\ntype d\ntype e\n".to_vec(),
    )
    .await;
    assert_eq!((status, error_code(status, &body).as_str()), (StatusCode::BAD_REQUEST, "too_many_types"));
    // The store still answers with its first model: nothing over a limit was stored.
    let (_, body) = call(&app, "GET", &uri, None).await;
    assert_eq!(body["authorization_models"].as_array().unwrap().len(), 1, "{body}");
}

/// A chain `group:g0 ← g1 ← ... ← g{n-1}` of nested groups with `user:deep` in the last one.
fn chain(engine: &Engine, store: &str, length: usize) {
    let mut writes: Vec<writ::engine::StoredTuple> = (1..length)
        .map(|i| {
            let text = format!("group:g{}#member@group:g{i}#member", i - 1);
            writ::engine::StoredTuple::new(text.parse().unwrap())
        })
        .collect();
    let last = format!("group:g{}#member@user:deep", length - 1);
    writes.push(writ::engine::StoredTuple::new(last.parse().unwrap()));
    engine.store(store).unwrap().write(writ::engine::WriteRequest { writes, ..Default::default() }).unwrap();
}

/// A chain of folders `f0 ← f1 ← ... ← f{n-1}` (each the parent of the one before) with
/// `user:deep` a viewer of the last: every answer about `f0` needs `n` dispatches.
fn folders(engine: &Engine, store: &str, length: usize) {
    let mut writes: Vec<writ::engine::StoredTuple> = (1..length)
        .map(|i| writ::engine::StoredTuple::new(format!("folder:f{}#parent@folder:f{i}", i - 1).parse().unwrap()))
        .collect();
    let last = format!("folder:f{}#viewer@user:deep", length - 1);
    writes.push(writ::engine::StoredTuple::new(last.parse().unwrap()));
    engine.store(store).unwrap().write(writ::engine::WriteRequest { writes, ..Default::default() }).unwrap();
}

#[tokio::test]
async fn an_expired_deadline_is_an_error_never_a_partial_answer() {
    let input = InputLimits { request_timeout: Some(Duration::ZERO), ..InputLimits::default() };
    let engine = engine_with(input);
    let (app, store) = app_with(engine.clone(), ApiOptions::default()).await;
    folders(&engine, &store, 10);
    let timeout = StatusCode::GATEWAY_TIMEOUT;
    let check = json!({"tuple_key": tuple("user:deep", "viewer", "folder:f0")});
    expect_code(&app, "POST", &format!("/stores/{store}/check"), check.clone(), timeout, "deadline_exceeded").await;
    let list = json!({"type": "folder", "relation": "viewer", "user": "user:deep"});
    expect_code(&app, "POST", &format!("/stores/{store}/list-objects"), list.clone(), timeout, "deadline_exceeded")
        .await;
    expect_code(
        &app,
        "POST",
        &format!("/stores/{store}/streamed-list-objects"),
        list.clone(),
        timeout,
        "deadline_exceeded",
    )
    .await;
    let users =
        json!({"object": {"type": "folder", "id": "f0"}, "relation": "viewer", "user_filters": [{"type": "user"}]});
    expect_code(&app, "POST", &format!("/stores/{store}/list-users"), users, timeout, "deadline_exceeded").await;
    // A batch shares one deadline and reports it per check, never an answer: even a check that
    // needs no dispatch (a direct tuple) is not started once the batch's time is up.
    let batch = json!({"checks": [
        {"tuple_key": tuple("user:deep", "viewer", "folder:f0"), "correlation_id": "1"},
        {"tuple_key": tuple("user:deep", "viewer", "folder:f9"), "correlation_id": "2"}]});
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/batch-check"), Some(batch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for id in ["1", "2"] {
        assert_eq!(body["result"][id]["error"]["input_error"], "deadline_exceeded", "{body}");
        assert!(body["result"][id].get("allowed").is_none(), "{body}");
    }
    // With time to spare the same questions are answered in full.
    let engine = engine_with(InputLimits { request_timeout: Some(Duration::from_secs(60)), ..InputLimits::default() });
    let (app, store) = app_with(engine.clone(), ApiOptions::default()).await;
    folders(&engine, &store, 10);
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/list-objects"), Some(list)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["objects"].as_array().unwrap().len(), 10, "{body}");
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/check"), Some(check)).await;
    assert_eq!((status, &body["allowed"]), (StatusCode::OK, &json!(true)), "{body}");
}

#[tokio::test]
async fn resolution_depth_is_authorization_model_resolution_too_complex() {
    let engine = engine_with(InputLimits::default());
    let (app, store) = app_with(engine.clone(), ApiOptions::default()).await;
    chain(&engine, &store, 40);
    let check = json!({"tuple_key": tuple("user:deep", "member", "group:g0")});
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/check"), Some(check)).await;
    assert_eq!(
        (status, error_code(status, &body).as_str()),
        (StatusCode::BAD_REQUEST, "authorization_model_resolution_too_complex")
    );
    let near = json!({"tuple_key": tuple("user:deep", "member", "group:g30")});
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/check"), Some(near)).await;
    assert_eq!((status, &body["allowed"]), (StatusCode::OK, &json!(true)), "{body}");
}

/// Uploads model text with a content type; returns the status and the error code (if any).
async fn upload(app: &Api, store: &str, content_type: &str, text: String) -> (StatusCode, Option<String>) {
    use tower::ServiceExt;
    let request = axum::http::Request::builder()
        .method("PUT")
        .uri(format!("/stores/{store}/writ/model"))
        .header("content-type", content_type)
        .body(axum::body::Body::from(text))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body["code"].as_str().map(str::to_string))
}

#[tokio::test]
async fn regression_deeply_nested_or_long_schema_text_overflowed_the_parser_stack() {
    let (app, store) = app_with(engine_with(InputLimits::default()), ApiOptions::default()).await;
    let zed = "application/x-spicedb-schema";
    let zed_model = |expression: String| {
        format!("definition user {{}}\ndefinition doc {{\n relation viewer: user\n permission p = {expression}\n}}\n")
    };
    let dsl_model = |expression: String| {
        format!("model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n    define p: {expression}\n")
    };
    let too_complex = (StatusCode::BAD_REQUEST, Some("model_too_complex".to_string()));
    // Each of these overflowed a 2 MiB stack (the size of the threads that parse uploads).
    let nested = format!("{}viewer{}", "(".repeat(1000), ")".repeat(1000));
    assert_eq!(upload(&app, &store, zed, zed_model(nested.clone())).await, too_complex);
    assert_eq!(upload(&app, &store, "text/plain", dsl_model(nested)).await, too_complex);
    assert_eq!(upload(&app, &store, zed, zed_model(format!("viewer{}", " + viewer".repeat(1000)))).await, too_complex);
    assert_eq!(upload(&app, &store, zed, zed_model(format!("viewer{}", " - viewer".repeat(1000)))).await, too_complex);
    // At the limits the model is accepted and answers.
    let deep = format!("{}viewer{}", "(".repeat(60), ")".repeat(60));
    assert_eq!(
        upload(&app, &store, zed, zed_model(format!("{deep}{}", " + viewer".repeat(120)))).await.0,
        StatusCode::CREATED
    );
    let write = json!({"writes": {"tuple_keys": [tuple("user:anne", "viewer", "doc:1")]}});
    assert_eq!(call(&app, "POST", &format!("/stores/{store}/write"), Some(write)).await.0, StatusCode::OK);
    let (status, body) = call(
        &app,
        "POST",
        &format!("/stores/{store}/check"),
        Some(json!({"tuple_key": tuple("user:anne", "p", "doc:1")})),
    )
    .await;
    assert_eq!((status, &body["allowed"]), (StatusCode::OK, &json!(true)), "{body}");
}

#[tokio::test]
async fn regression_nested_cel_overflowed_the_stack_and_ternary_chains_panicked() {
    let (app, store) = app_with(engine_with(InputLimits::default()), ApiOptions::default()).await;
    let model = |expression: String| {
        let text = format!(
            "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user with c]\n\
             condition c(x: int) {{\n  {expression}\n}}\n"
        );
        serde_json::to_value(Model::parse_dsl(&text).unwrap().to_json()).unwrap()
    };
    let uri = format!("/stores/{store}/authorization-models");
    let bad = StatusCode::BAD_REQUEST;
    // 20 nested parentheses overflowed a 2 MiB stack while compiling; 200 `?:` made `cel` panic.
    let nested = |n: usize| format!("{}x > 1{}", "(".repeat(n), ")".repeat(n));
    expect_code(&app, "POST", &uri, model(nested(30)), bad, "condition_too_complex").await;
    expect_code(
        &app,
        "POST",
        &uri,
        model(format!("{}true", "x > 1 ? true : ".repeat(200))),
        bad,
        "condition_too_complex",
    )
    .await;
    let calls = format!("{}x{} > 1", "int(".repeat(30), ")".repeat(30));
    expect_code(&app, "POST", &uri, model(calls), bad, "condition_too_complex").await;
    // Within the limit the condition compiles (on its own large stack) and evaluates.
    let (status, body) = call(&app, "POST", &uri, Some(model(nested(8)))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let write = json!({"writes": {"tuple_keys": [{"user": "user:anne", "relation": "viewer", "object": "doc:1",
        "condition": {"name": "c"}}]}});
    assert_eq!(call(&app, "POST", &format!("/stores/{store}/write"), Some(write)).await.0, StatusCode::OK);
    for (x, allowed) in [(5, true), (0, false)] {
        let check = json!({"tuple_key": tuple("user:anne", "viewer", "doc:1"), "context": {"x": x}});
        let (status, body) = call(&app, "POST", &format!("/stores/{store}/check"), Some(check)).await;
        assert_eq!((status, &body["allowed"]), (StatusCode::OK, &json!(allowed)), "{body}");
    }
}

#[tokio::test]
async fn a_json_model_with_a_1000_way_union_is_stored_and_answers() {
    let (app, store) = app_with(engine_with(InputLimits::default()), ApiOptions::default()).await;
    let mut relations = serde_json::Map::new();
    let mut metadata = serde_json::Map::new();
    for i in 0..1000 {
        relations.insert(format!("r{i}"), json!({"this": {}}));
        metadata.insert(format!("r{i}"), json!({"directly_related_user_types": [{"type": "user"}]}));
    }
    let children: Vec<Value> = (0..1000).map(|i| json!({"computedUserset": {"relation": format!("r{i}")}})).collect();
    relations.insert("p".into(), json!({"union": {"child": children}}));
    metadata.insert("p".into(), json!({}));
    let model = json!({"schema_version": "1.1", "type_definitions": [{"type": "user"},
        {"type": "doc", "relations": relations, "metadata": {"relations": metadata}}]});
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/authorization-models"), Some(model)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let write = json!({"writes": {"tuple_keys": [tuple("user:anne", "r999", "doc:1")]}});
    assert_eq!(call(&app, "POST", &format!("/stores/{store}/write"), Some(write)).await.0, StatusCode::OK);
    for (user, allowed) in [("user:anne", true), ("user:bob", false)] {
        let check = json!({"tuple_key": tuple(user, "p", "doc:1")});
        let (status, body) = call(&app, "POST", &format!("/stores/{store}/check"), Some(check)).await;
        assert_eq!((status, &body["allowed"]), (StatusCode::OK, &json!(allowed)), "{body}");
    }
    let list = json!({"type": "doc", "relation": "p", "user": "user:anne"});
    let (_, body) = call(&app, "POST", &format!("/stores/{store}/list-objects"), Some(list)).await;
    assert_eq!(body["objects"], json!(["doc:1"]));
}

#[tokio::test]
async fn regression_a_model_with_thousands_of_errors_answered_with_a_message_of_360_kb() {
    let (app, store) = app_with(engine_with(InputLimits::default()), ApiOptions::default()).await;
    // Each child names a relation that does not exist (a repeated operand is only a warning).
    let children: Vec<Value> =
        (0..5000).map(|i| json!({"computedUserset": {"relation": format!("missing{i}")}})).collect();
    let model = json!({"schema_version": "1.1", "type_definitions": [{"type": "user"},
        {"type": "doc", "relations": {"viewer": {"this": {}}, "p": {"union": {"child": children}}},
         "metadata": {"relations": {"viewer": {"directly_related_user_types": [{"type": "user"}]}, "p": {}}}}]});
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/authorization-models"), Some(model)).await;
    assert_eq!(error_code(status, &body), "invalid_authorization_model");
    let message = body["message"].as_str().unwrap();
    assert!(message.len() < 4096, "{} bytes", message.len());
    assert!(message.contains("missing0") && message.contains("more"), "{message}");
}
