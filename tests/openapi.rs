//! `/openapi.json`: it names every endpoint the router serves with its request and answer
//! schemas and its access, and real answers of real calls validate against those schemas, so
//! the document cannot lie about the wire.

use crate::support::http::call;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use writ::api::{openapi, route_endpoints, router};
use writ::Engine;

const MODEL: &str = "model
  schema 1.1
type user
  relations
    define delegate: [agent]
type agent
type document
  relations
    define owner: [user]
    define viewer: [user, agent] or owner
";

/// The schema at `pointer` of the document, made a document of its own: the components it refers
/// to come along, so its `$ref`s resolve.
fn schema_at(document: &Value, pointer: &str) -> Value {
    let mut schema = document.pointer(pointer).unwrap_or_else(|| panic!("no schema at {pointer}")).clone();
    if let Value::Bool(_) = schema {
        return schema;
    }
    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    schema["components"] = document["components"].clone();
    schema
}

/// Fails unless `answer` fits the document's schema for `method path`'s `status` answer.
fn assert_fits(document: &Value, method: &str, path: &str, status: &str, answer: &Value) {
    assert_fits_at(document, method, path, &format!("responses/{status}"), answer);
}

/// Fails unless `value` fits the JSON schema of `method path`'s `part` (`requestBody`,
/// `responses/200`).
fn assert_fits_at(document: &Value, method: &str, path: &str, part: &str, value: &Value) {
    let path_key = path.replace('~', "~0").replace('/', "~1");
    let pointer = format!("/paths/{path_key}/{method}/{part}/content/application~1json/schema");
    let schema = schema_at(document, &pointer);
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{method} {path}: bad schema: {e}"));
    let errors: Vec<String> = validator.iter_errors(value).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{method} {path} {part}: {errors:?}\nvalue: {value}");
}

#[tokio::test]
async fn the_document_names_every_endpoint_with_its_schemas_and_access() {
    let document = openapi();
    assert_eq!(document["openapi"], "3.1.0");
    let endpoints = route_endpoints();
    assert!(endpoints.len() >= 40, "{} endpoints", endpoints.len());
    for (method, path, access) in &endpoints {
        let name = method.as_str().to_ascii_lowercase();
        let operation = &document["paths"][path][&name];
        assert!(operation.is_object(), "{method} {path} is not in the document");
        let responses = operation["responses"].as_object().unwrap();
        assert!(responses.keys().any(|status| status.starts_with('2')), "{method} {path}: no success answer");
        assert!(responses.contains_key("default"), "{method} {path}: no error answer");
        for (status, response) in responses {
            for (media, content) in response["content"].as_object().into_iter().flatten() {
                assert!(content.get("schema").is_some(), "{method} {path} {status} {media}: no schema");
            }
        }
        if *method == "POST" {
            assert!(operation["requestBody"]["content"].is_object(), "{method} {path}: no request body");
        }
        let open = *access == writ::api::Access::Open;
        assert_eq!(operation["security"] == json!([]), open, "{method} {path}: security says open = {}", !open);
        assert_eq!(operation["x-writ-access"] == json!("open"), open, "{method} {path}");
        for parameter in path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
            let named = operation["parameters"].as_array().unwrap().iter().any(|p| p["name"] == parameter);
            assert!(named, "{method} {path}: parameter `{parameter}` is not described");
        }
    }
    // Nothing more than the router serves, and every schema compiles with its references.
    let paths = document["paths"].as_object().unwrap();
    let listed: usize = paths.values().map(|methods| methods.as_object().unwrap().len()).sum();
    assert_eq!(listed, endpoints.len());
    for (name, _) in document["components"]["schemas"].as_object().unwrap() {
        let schema = schema_at(&document, &format!("/components/schemas/{name}"));
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let changes = &paths["/stores/{store_id}/changes"]["get"]["parameters"];
    assert!(changes.as_array().unwrap().iter().any(|p| p["name"] == "continuation_token" && p["in"] == "query"));
    // The decision log's filters, the agent and tool ones too (DESIGN §10), are query parameters.
    let decisions = paths["/stores/{store_id}/writ/decisions"]["get"]["parameters"].as_array().unwrap();
    for name in ["principal", "agent", "tool", "object", "decision", "since", "until", "continuation_token"] {
        assert!(decisions.iter().any(|p| p["name"] == name && p["in"] == "query"), "decisions: no `{name}`");
    }
}

#[tokio::test]
async fn every_method_the_router_answers_is_in_the_document() {
    // Asked of the router itself, not of the table the document is built from.
    let document = openapi();
    let app = router(Arc::new(Engine::in_memory()));
    for path in writ::api::route_paths() {
        let uri = path
            .replace("{store_id}", "01ARZ3NDEKTSV4RRFFQ69G5FAV")
            .replace("{model_id}", "01ARZ3NDEKTSV4RRFFQ69G5FAW");
        let uri = uri.replace("{decision_id}", "00");
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            let (status, _) = call(&app, method, &uri, Some(json!({}))).await;
            let listed = document["paths"][path][method.to_ascii_lowercase()].is_object();
            assert_eq!(status != StatusCode::METHOD_NOT_ALLOWED, listed, "{method} {path}: {status}");
        }
    }
}

#[tokio::test]
async fn the_document_is_served_open_at_openapi_json() {
    let keys = writ::api::KeySet::parse_compact("admin:admin-key-0123456789").unwrap();
    let config = writ::api::RouterConfig { auth: writ::api::Auth::Preshared(Arc::new(keys)), ..Default::default() };
    let app = writ::api::router_with_config(Arc::new(Engine::in_memory()), config);
    let (status, served) = call(&app, "GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(served, openapi());
    assert!(served["paths"]["/openapi.json"]["get"].is_object());
}

#[tokio::test]
async fn real_requests_and_answers_fit_the_documents_schemas() {
    let document = openapi();
    let app = router(Arc::new(Engine::in_memory()));
    let (status, created) = call(&app, "POST", "/stores", Some(json!({"name": "schema"}))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_fits(&document, "post", "/stores", "201", &created);
    let store = created["id"].as_str().unwrap();
    let at = |route: &str| format!("/stores/{store}/{route}");
    let (status, model) = call(&app, "PUT", &at("writ/model"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an empty model is refused: {model}");
    assert_fits(&document, "put", "/stores/{store_id}/writ/model", "default", &model);
    let request = axum::http::Request::put(at("writ/model")).body(axum::body::Body::from(MODEL)).unwrap();
    let response = tower::ServiceExt::oneshot(app.clone(), request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let calls: Vec<(&str, &str, Option<Value>)> = vec![
        (
            "post",
            "write",
            Some(json!({"writes": {"tuple_keys": [
                {"user": "user:anne", "relation": "owner", "object": "document:1"},
                {"user": "agent:bot", "relation": "viewer", "object": "document:1"},
                {"user": "agent:bot", "relation": "delegate", "object": "user:anne",
                 "expires_at": "2999-01-01T00:00:00Z"},
            ]}})),
        ),
        (
            "post",
            "check",
            Some(json!({"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:1"}})),
        ),
        (
            "post",
            "batch-check",
            Some(json!({"checks": [
                {"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:1"}, "correlation_id": "a"},
                {"tuple_key": {"user": "user:anne", "relation": "nope", "object": "document:1"}, "correlation_id": "b"},
            ]})),
        ),
        ("post", "read", Some(json!({}))),
        ("get", "changes", None),
        ("post", "list-objects", Some(json!({"type": "document", "relation": "viewer", "user": "user:anne"}))),
        (
            "post",
            "list-users",
            Some(json!({"object": {"type": "document", "id": "1"}, "relation": "viewer",
            "user_filters": [{"type": "user"}]})),
        ),
        ("post", "expand", Some(json!({"tuple_key": {"relation": "viewer", "object": "document:1"}}))),
        (
            "post",
            "writ/obo-check",
            Some(json!({"principals": ["user:anne", "agent:bot"], "relation": "viewer",
            "object": "document:1"})),
        ),
        (
            "post",
            "writ/obo-check",
            Some(json!({"principals": ["user:bob", "agent:bot"], "relation": "viewer",
            "object": "document:1"})),
        ),
        (
            "post",
            "writ/explain",
            Some(json!({"tuple_key": {"user": "user:anne", "relation": "viewer",
            "object": "document:1"}})),
        ),
        (
            "post",
            "writ/explain",
            Some(json!({"principals": ["user:bob", "agent:bot"], "relation": "viewer",
            "object": "document:1"})),
        ),
        (
            "post",
            "access/v1/evaluation",
            Some(json!({"subject": {"type": "user", "id": "anne"},
            "resource": {"type": "document", "id": "1"}, "action": {"name": "viewer"}})),
        ),
        ("get", "writ/decisions", None),
        ("get", "authorization-models", None),
    ];
    for (method, route, body) in calls {
        if let Some(body) = &body {
            assert_fits_at(&document, method, &format!("/stores/{{store_id}}/{route}"), "requestBody", body);
        }
        let (status, answer) = call(&app, &method.to_uppercase(), &at(route), body).await;
        assert_eq!(status, StatusCode::OK, "{method} {route}: {answer}");
        assert_fits(&document, method, &format!("/stores/{{store_id}}/{route}"), "200", &answer);
    }
    // Error answers fit the error schema: a bad body, and an unknown type.
    let (status, error) = call(&app, "POST", &at("check"), Some(json!({"tuple_key": 3}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_fits(&document, "post", "/stores/{store_id}/check", "default", &error);
    let list = json!({"type": "nope", "relation": "viewer", "user": "user:anne"});
    let (status, error) = call(&app, "POST", &at("list-objects"), Some(list)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_fits(&document, "post", "/stores/{store_id}/list-objects", "default", &error);
    let (status, stores) = call(&app, "GET", "/stores", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_fits(&document, "get", "/stores", "200", &stores);
    // A schema that would accept anything proves nothing: a wrong answer must not fit.
    let path_key = "~1stores~1{store_id}~1check";
    let check = schema_at(&document, &format!("/paths/{path_key}/post/responses/200/content/application~1json/schema"));
    assert!(!jsonschema::is_valid(&check, &json!({"allowed": "yes"})), "{check}");
}
