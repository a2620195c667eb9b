//! The HTTP API through `api::router(engine).oneshot(request)`: a few requests per route, in
//! OpenFGA's JSON shapes, plus the error answers (codes and statuses) for bad input.

use crate::support::http::{batch_of, call, check, exchange, send_text};
use axum::body::Body;
use axum::http::StatusCode;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use writ::api::Api;
use writ::api::{router, router_with, ApiOptions};
use writ::{Engine, Model};

const MODEL: &str = "model
  schema 1.1
type user
  relations
    define delegate: [agent]
type agent
type group
  relations
    define member: [user]
type folder
  relations
    define viewer: [user]
type document
  relations
    define parent: [folder]
    define owner: [user, agent]
    define editor: [user] or owner
    define viewer: [user, user:*, group#member] or editor or viewer from parent
    define blocked: [user]
    define can_read: viewer but not blocked
";

/// A router with one store holding [`MODEL`] (written as JSON) and a few tuples.
async fn fixture() -> (Api, String, String) {
    fixture_in(router(Arc::new(Engine::in_memory()))).await
}

/// [`fixture`]'s store in a router of the caller's.
async fn fixture_in(app: Api) -> (Api, String, String) {
    let (status, store) = call(&app, "POST", "/stores", Some(json!({"name": "demo"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{store}");
    let store_id = store["id"].as_str().unwrap().to_string();
    let model_json = serde_json::to_value(Model::parse_dsl(MODEL).unwrap().to_json()).unwrap();
    let (status, body) =
        call(&app, "POST", &format!("/stores/{store_id}/authorization-models"), Some(model_json)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let model_id = body["authorization_model_id"].as_str().unwrap().to_string();
    let tuples = json!([
        {"user": "user:anne", "relation": "owner", "object": "document:1"},
        {"user": "group:eng#member", "relation": "viewer", "object": "document:2"},
        {"user": "user:bob", "relation": "member", "object": "group:eng"},
        {"user": "folder:f", "relation": "parent", "object": "document:3"},
        {"user": "user:carol", "relation": "viewer", "object": "folder:f"},
        {"user": "agent:planner", "relation": "owner", "object": "document:1"},
    ]);
    let (status, body) =
        call(&app, "POST", &format!("/stores/{store_id}/write"), Some(json!({"writes": {"tuple_keys": tuples}}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["revision"], 1);
    (app, store_id, model_id)
}

#[tokio::test]
async fn stores_are_created_listed_fetched_and_deleted() {
    let app = router(Arc::new(Engine::in_memory()));
    for name in ["a", "b", "c"] {
        assert_eq!(call(&app, "POST", "/stores", Some(json!({"name": name}))).await.0, StatusCode::CREATED);
    }
    let (_, page) = call(&app, "GET", "/stores?page_size=2", None).await;
    assert_eq!(page["stores"].as_array().unwrap().len(), 2);
    let token = page["continuation_token"].as_str().unwrap();
    assert!(!token.is_empty());
    let (_, rest) = call(&app, "GET", &format!("/stores?page_size=2&continuation_token={token}"), None).await;
    assert_eq!(rest["stores"].as_array().unwrap().len(), 1);
    assert_eq!(rest["continuation_token"], "");
    let id = rest["stores"][0]["id"].as_str().unwrap().to_string();
    let (status, store) = call(&app, "GET", &format!("/stores/{id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(store["name"], "c");
    assert!(store["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(call(&app, "DELETE", &format!("/stores/{id}"), None).await.0, StatusCode::NO_CONTENT);
    let (status, body) = call(&app, "GET", &format!("/stores/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "store_id_not_found");
}

#[tokio::test]
async fn models_are_listed_newest_first_and_fetched_by_id() {
    let (app, store_id, model_id) = fixture().await;
    let (status, body) = send_text(
        &app,
        "PUT",
        &format!("/stores/{store_id}/writ/model"),
        Body::from("model\n  schema 1.1\ntype user\n"),
        "text/plain",
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let newest: Value = serde_json::from_str(&body).unwrap();
    let (_, list) = call(&app, "GET", &format!("/stores/{store_id}/authorization-models"), None).await;
    let models = list["authorization_models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["id"], newest["authorization_model_id"]);
    assert_eq!(models[1]["id"], model_id.as_str());
    let (status, one) = call(&app, "GET", &format!("/stores/{store_id}/authorization-models/{model_id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["authorization_model"]["schema_version"], "1.1");
    assert_eq!(one["authorization_model"]["type_definitions"].as_array().unwrap().len(), 5);
    let (status, missing) = call(&app, "GET", &format!("/stores/{store_id}/authorization-models/nope"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["code"], "authorization_model_not_found");
}

#[tokio::test]
async fn dsl_errors_come_back_with_one_based_positions() {
    let (app, store_id, _) = fixture().await;
    let text = "model\n  schema 1.1\ntype document\n  relations\n    define viewer: [person]\n";
    let (status, body) =
        send_text(&app, "PUT", &format!("/stores/{store_id}/writ/model"), Body::from(text), "text/plain").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "validation_error");
    let diagnostic = &body["diagnostics"][0];
    assert_eq!(diagnostic["line"], 5, "{body}");
    assert!(diagnostic["column"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn check_and_batch_check_answer_allow_and_deny() {
    let (app, store_id, model_id) = fixture().await;
    assert!(check(&app, &store_id, "document:1#viewer@user:anne").await);
    assert!(check(&app, &store_id, "document:2#viewer@user:bob").await);
    assert!(check(&app, &store_id, "document:3#viewer@user:carol").await);
    assert!(!check(&app, &store_id, "document:1#viewer@user:bob").await);
    let contextual = json!({
        "tuple_key": {"user": "user:dan", "relation": "viewer", "object": "document:9"},
        "contextual_tuples": {"tuple_keys": [{"user": "user:dan", "relation": "viewer", "object": "document:9"}]},
        "authorization_model_id": model_id,
    });
    let (_, body) = call(&app, "POST", &format!("/stores/{store_id}/check"), Some(contextual)).await;
    assert_eq!(body["allowed"], true);
    let batch = json!({"checks": [
        {"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:1"}, "correlation_id": "a"},
        {"tuple_key": {"user": "user:bob", "relation": "owner", "object": "document:1"}, "correlation_id": "b"},
        {"tuple_key": {"user": "user:bob", "relation": "nope", "object": "document:1"}, "correlation_id": "c"},
    ]});
    let (status, body) = call(&app, "POST", &format!("/stores/{store_id}/batch-check"), Some(batch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["result"]["a"], json!({"allowed": true}));
    assert_eq!(body["result"]["b"], json!({"allowed": false}));
    assert_eq!(body["result"]["c"]["error"]["input_error"], "validation_error");
}

/// The check and batch-check answers are serialized without an intermediate `Value`: their
/// bytes must stay OpenFGA's (field order, batch order, the error object of a bad item).
#[tokio::test]
async fn check_and_batch_check_answer_openfgas_exact_bytes() {
    let (app, store_id, _) = fixture().await;
    let check = json!({"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:1"}});
    let (status, text) = send_text(
        &app,
        "POST",
        &format!("/stores/{store_id}/check"),
        Body::from(check.to_string()),
        "application/json",
    )
    .await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, r#"{"allowed":true,"resolution":""}"#));
    let batch = json!({"checks": [
        {"tuple_key": {"user": "user:bob", "relation": "owner", "object": "document:1"}, "correlation_id": "z"},
        {"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:1"}, "correlation_id": "a"},
        {"tuple_key": {"user": "user:bob", "relation": "nope", "object": "document:1"}, "correlation_id": "m"},
    ]});
    let (status, text) = send_text(
        &app,
        "POST",
        &format!("/stores/{store_id}/batch-check"),
        Body::from(batch.to_string()),
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let message = serde_json::from_str::<Value>(&text).unwrap()["result"]["m"]["error"]["message"].clone();
    assert!(message.as_str().is_some_and(|m| m.contains("nope")), "{text}");
    let expected = format!(
        r#"{{"result":{{"z":{{"allowed":false}},"a":{{"allowed":true}},"m":{{"error":{{"input_error":"validation_error","message":{message}}}}}}}}}"#
    );
    assert_eq!(text, expected);
}

/// A body that fails the fast parse is parsed again for a message naming the bad field.
#[tokio::test]
async fn a_malformed_batch_item_is_named_in_the_validation_error() {
    let (app, store_id, _) = fixture().await;
    let batch = json!({"checks": [
        {"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:1"}, "correlation_id": "a"},
        {"tuple_key": {"relation": "viewer", "object": "document:1"}, "correlation_id": "b"},
    ]});
    let (status, body) = call(&app, "POST", &format!("/stores/{store_id}/batch-check"), Some(batch)).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!("validation_error")));
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("checks[1].tuple_key") && message.contains("`user`"), "{message}");
}

#[tokio::test]
async fn a_batch_large_enough_to_run_in_parallel_answers_as_single_checks_do() {
    let options = ApiOptions { max_batch_check: 1000, ..ApiOptions::default() };
    let (app, store_id, _) = fixture_in(router_with(Arc::new(Engine::in_memory()), options)).await;
    let users = ["user:anne", "user:bob", "user:carol", "user:dan", "agent:planner"];
    let relations = ["viewer", "owner", "editor", "can_read", "nope"];
    let mut checks = Vec::new();
    let mut expected = Map::new();
    for (i, (user, relation, object)) in users
        .iter()
        .flat_map(|u| relations.iter().map(move |r| (u, r)))
        .flat_map(|(u, r)| ["document:1", "document:2", "document:3"].map(|o| (*u, *r, o)))
        .enumerate()
    {
        let tuple_key = json!({"user": user, "relation": relation, "object": object});
        let (_, single) =
            call(&app, "POST", &format!("/stores/{store_id}/check"), Some(json!({"tuple_key": tuple_key}))).await;
        let entry = match single.get("allowed") {
            Some(allowed) => json!({"allowed": allowed}),
            None => json!({"error": {"input_error": single["code"], "message": single["message"]}}),
        };
        expected.insert(format!("c{i}"), entry);
        checks.push(json!({"tuple_key": tuple_key, "correlation_id": format!("c{i}")}));
    }
    assert!(checks.len() >= 64, "the batch must be large enough to take the parallel path");
    let (status, body) =
        call(&app, "POST", &format!("/stores/{store_id}/batch-check"), Some(json!({"checks": checks}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let result = body["result"].as_object().unwrap();
    assert_eq!(result.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "answers keep batch order");
    for (id, entry) in &expected {
        let got = &result[id];
        match entry.get("allowed") {
            Some(allowed) => assert_eq!(&got["allowed"], allowed, "{id}"),
            None => assert_eq!(got["error"]["input_error"], "validation_error", "{id}: {got}"),
        }
    }
    assert!(expected.values().any(|e| e["allowed"] == true) && expected.values().any(|e| e["allowed"] == false));
}

#[tokio::test]
async fn list_objects_streamed_list_objects_and_list_users() {
    let (app, store_id, _) = fixture().await;
    let request = json!({"type": "document", "relation": "viewer", "user": "user:anne"});
    let (status, body) = call(&app, "POST", &format!("/stores/{store_id}/list-objects"), Some(request.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["objects"], json!(["document:1"]));
    let (status, text) = send_text(
        &app,
        "POST",
        &format!("/stores/{store_id}/streamed-list-objects"),
        Body::from(request.to_string()),
        "application/json",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text, "{\"result\":{\"object\":\"document:1\"}}\n");
    let request =
        json!({"object": {"type": "document", "id": "2"}, "relation": "viewer", "user_filters": [{"type": "user"}]});
    let (status, body) = call(&app, "POST", &format!("/stores/{store_id}/list-users"), Some(request)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["users"], json!([{"object": {"type": "user", "id": "bob"}}]));
    let request = json!({
        "object": {"type": "document", "id": "2"}, "relation": "viewer",
        "user_filters": [{"type": "group", "relation": "member"}],
    });
    let (_, body) = call(&app, "POST", &format!("/stores/{store_id}/list-users"), Some(request)).await;
    assert_eq!(body["users"], json!([{"userset": {"type": "group", "id": "eng", "relation": "member"}}]));
}

#[tokio::test]
async fn read_pages_and_changes_follow_the_changelog() {
    let (app, store_id, _) = fixture().await;
    let (_, first) = call(&app, "POST", &format!("/stores/{store_id}/read"), Some(json!({"page_size": 4}))).await;
    assert_eq!(first["tuples"].as_array().unwrap().len(), 4);
    let token = first["continuation_token"].as_str().unwrap().to_string();
    let (_, second) = call(
        &app,
        "POST",
        &format!("/stores/{store_id}/read"),
        Some(json!({"page_size": 4, "continuation_token": token})),
    )
    .await;
    assert_eq!(second["tuples"].as_array().unwrap().len(), 2);
    assert_eq!(second["continuation_token"], "");
    let filter = json!({"tuple_key": {"object": "document:"}});
    let (_, docs) = call(&app, "POST", &format!("/stores/{store_id}/read"), Some(filter)).await;
    assert_eq!(docs["tuples"].as_array().unwrap().len(), 4);
    let filter = json!({"tuple_key": {"object": "document:1", "relation": "owner", "user": "user:anne"}});
    let (_, one) = call(&app, "POST", &format!("/stores/{store_id}/read"), Some(filter)).await;
    assert_eq!(one["tuples"][0]["key"], json!({"user": "user:anne", "relation": "owner", "object": "document:1"}));

    let delete =
        json!({"deletes": {"tuple_keys": [{"user": "user:anne", "relation": "owner", "object": "document:1"}]}});
    assert_eq!(call(&app, "POST", &format!("/stores/{store_id}/write"), Some(delete)).await.1["revision"], 2);
    let (_, changes) = call(&app, "GET", &format!("/stores/{store_id}/changes?page_size=5"), None).await;
    assert_eq!(changes["changes"].as_array().unwrap().len(), 5);
    assert_eq!(changes["changes"][0]["operation"], "TUPLE_OPERATION_WRITE");
    let token = changes["continuation_token"].as_str().unwrap().to_string();
    let (_, rest) = call(&app, "GET", &format!("/stores/{store_id}/changes?continuation_token={token}"), None).await;
    assert_eq!(rest["changes"].as_array().unwrap().len(), 2);
    assert_eq!(rest["changes"][1]["operation"], "TUPLE_OPERATION_DELETE");
    let token = rest["continuation_token"].as_str().unwrap().to_string();
    let (_, empty) = call(&app, "GET", &format!("/stores/{store_id}/changes?continuation_token={token}"), None).await;
    assert_eq!(empty["changes"], json!([]));
    assert_eq!(empty["continuation_token"], token.as_str());
    let (_, typed) = call(&app, "GET", &format!("/stores/{store_id}/changes?type=group"), None).await;
    assert_eq!(typed["changes"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn writes_honour_on_duplicate_and_on_missing_and_expiry() {
    let (app, store_id, _) = fixture().await;
    let key = json!({"user": "user:anne", "relation": "owner", "object": "document:1"});
    let (status, body) =
        call(&app, "POST", &format!("/stores/{store_id}/write"), Some(json!({"writes": {"tuple_keys": [key]}}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "write_failed_due_to_invalid_input");
    let ignore = json!({"writes": {"tuple_keys": [key], "on_duplicate": "ignore"}});
    assert_eq!(call(&app, "POST", &format!("/stores/{store_id}/write"), Some(ignore)).await.0, StatusCode::OK);
    let missing = json!({"deletes": {"tuple_keys": [{"user": "user:zed", "relation": "owner", "object": "document:1"}], "on_missing": "ignore"}});
    assert_eq!(call(&app, "POST", &format!("/stores/{store_id}/write"), Some(missing)).await.0, StatusCode::OK);
    let twice = json!({"writes": {"tuple_keys": [
        {"user": "user:x", "relation": "owner", "object": "document:7"},
        {"user": "user:x", "relation": "owner", "object": "document:7"},
    ]}});
    let (status, body) = call(&app, "POST", &format!("/stores/{store_id}/write"), Some(twice)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "cannot_allow_duplicate_tuples_in_one_request");
    assert!(body["message"].as_str().unwrap_or_default().contains("document:7#owner@user:x"), "{body}");
    // A tuple both written and deleted in one request is a repeat too, named in the message.
    let both = json!({
        "writes": {"tuple_keys": [{"user": "user:x", "relation": "owner", "object": "document:9"}]},
        "deletes": {"tuple_keys": [{"user": "user:x", "relation": "owner", "object": "document:9"}]},
    });
    let (status, body) = call(&app, "POST", &format!("/stores/{store_id}/write"), Some(both)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "cannot_allow_duplicate_tuples_in_one_request");
    assert!(body["message"].as_str().unwrap_or_default().contains("document:9#owner@user:x"), "{body}");
    let expiring = json!({"writes": {"tuple_keys": [
        {"user": "user:x", "relation": "owner", "object": "document:8", "expires_at": "2030-01-01T00:00:00Z"},
    ]}});
    assert_eq!(call(&app, "POST", &format!("/stores/{store_id}/write"), Some(expiring)).await.0, StatusCode::OK);
    let bad_time = json!({"writes": {"tuple_keys": [
        {"user": "user:x", "relation": "owner", "object": "document:9", "expires_at": "tomorrow"},
    ]}});
    let (status, body) = call(&app, "POST", &format!("/stores/{store_id}/write"), Some(bad_time)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_error")));
}

#[tokio::test]
async fn expand_returns_openfga_trees() {
    let (app, store_id, _) = fixture().await;
    let request = json!({"tuple_key": {"relation": "editor", "object": "document:1"}});
    let (status, body) = call(&app, "POST", &format!("/stores/{store_id}/expand"), Some(request)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let root = &body["tree"]["root"];
    assert_eq!(root["name"], "document:1#editor");
    let nodes = root["union"]["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["leaf"]["users"]["users"], json!([]));
    assert_eq!(nodes[1]["leaf"]["computed"]["userset"], "document:1#owner");
    let request = json!({"tuple_key": {"relation": "can_read", "object": "document:1"}});
    let (_, body) = call(&app, "POST", &format!("/stores/{store_id}/expand"), Some(request)).await;
    assert!(body["tree"]["root"]["difference"]["base"].is_object(), "{body}");
}

#[tokio::test]
async fn assertions_round_trip() {
    let (app, store_id, model_id) = fixture().await;
    let uri = format!("/stores/{store_id}/assertions/{model_id}");
    let (_, empty) = call(&app, "GET", &uri, None).await;
    assert_eq!(empty["assertions"], json!([]));
    let assertions = json!([{"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:1"}, "expectation": true}]);
    let (status, _) = call(&app, "PUT", &uri, Some(json!({"assertions": assertions}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, body) = call(&app, "GET", &uri, None).await;
    assert_eq!(body, json!({"authorization_model_id": model_id, "assertions": assertions}));
}

#[tokio::test]
async fn authzen_evaluates_searches_and_requires_the_agent_too() {
    let (app, store_id, _) = fixture().await;
    let base = format!("/stores/{store_id}/access/v1");
    let allow = json!({"subject": {"type": "user", "id": "anne"}, "action": {"name": "owner"}, "resource": {"type": "document", "id": "1"}});
    let (status, body) = call(&app, "POST", &format!("{base}/evaluation"), Some(allow.clone())).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"decision": true})));
    let deny = json!({"subject": {"type": "user", "id": "bob"}, "action": {"name": "owner"}, "resource": {"type": "document", "id": "1"}});
    assert_eq!(call(&app, "POST", &format!("{base}/evaluation"), Some(deny)).await.1, json!({"decision": false}));
    let mut with_agent = allow.clone();
    with_agent["context"] = json!({"agent": {"type": "agent", "id": "planner"}});
    // The MCP profile is an OBO check: the agent may act only once anne delegated to it.
    let (status, body) = call(&app, "POST", &format!("{base}/evaluation"), Some(with_agent.clone())).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"decision": false})));
    let delegation =
        json!({"writes": {"tuple_keys": [{"user": "agent:planner", "relation": "delegate", "object": "user:anne"}]}});
    assert_eq!(call(&app, "POST", &format!("/stores/{store_id}/write"), Some(delegation)).await.0, StatusCode::OK);
    assert_eq!(call(&app, "POST", &format!("{base}/evaluation"), Some(with_agent)).await.1["decision"], true);
    let mut rogue = allow.clone();
    rogue["context"] = json!({"agent": {"type": "agent", "id": "rogue"}});
    assert_eq!(call(&app, "POST", &format!("{base}/evaluation"), Some(rogue)).await.1["decision"], false);

    let batch = json!({
        "subject": {"type": "user", "id": "anne"}, "action": {"name": "viewer"},
        "evaluations": [
            {"resource": {"type": "document", "id": "1"}},
            {"resource": {"type": "document", "id": "2"}},
            {"resource": {"type": "document", "id": "1"}},
        ],
    });
    let (_, body) = call(&app, "POST", &format!("{base}/evaluations"), Some(batch.clone())).await;
    assert_eq!(body["evaluations"], json!([{"decision": true}, {"decision": false}, {"decision": true}]));
    let mut first_deny = batch;
    first_deny["options"] = json!({"evaluations_semantic": "deny_on_first_deny"});
    let (_, body) = call(&app, "POST", &format!("{base}/evaluations"), Some(first_deny)).await;
    assert_eq!(body["evaluations"], json!([{"decision": true}, {"decision": false}]));

    let search = json!({"subject": {"type": "user", "id": "bob"}, "action": {"name": "viewer"}, "resource": {"type": "document"}});
    let (_, body) = call(&app, "POST", &format!("{base}/search/resource"), Some(search)).await;
    assert_eq!(body["results"], json!([{"type": "document", "id": "2"}]));
    let search =
        json!({"subject": {"type": "user"}, "action": {"name": "viewer"}, "resource": {"type": "document", "id": "3"}});
    let (_, body) = call(&app, "POST", &format!("{base}/search/subject"), Some(search)).await;
    assert_eq!(body["results"], json!([{"type": "user", "id": "carol"}]));
    let search = json!({"subject": {"type": "user", "id": "anne"}, "resource": {"type": "document", "id": "1"}});
    let (_, body) = call(&app, "POST", &format!("{base}/search/action"), Some(search)).await;
    assert_eq!(
        body["results"],
        json!([{"name": "owner"}, {"name": "editor"}, {"name": "viewer"}, {"name": "can_read"}])
    );
    let (status, config) =
        call(&app, "GET", &format!("/.well-known/authzen-configuration/stores/{store_id}"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(config["access_evaluation_endpoint"], format!("http://writ.test{base}/evaluation"));
}

#[tokio::test]
async fn bad_input_gets_4xx_codes_never_5xx() {
    let (app, store_id, _) = fixture().await;
    let check_uri = format!("/stores/{store_id}/check");
    let (status, body) = send_text(&app, "POST", &check_uri, Body::from("{not json"), "application/json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("validation_error"), "{body}");
    let wrong_type = json!({"tuple_key": {"user": 5, "relation": "viewer", "object": "document:1"}});
    let (status, body) = call(&app, "POST", &check_uri, Some(wrong_type)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_error")));
    assert!(body["message"].as_str().unwrap().contains("tuple_key.user"), "{body}");
    let (status, body) = call(
        &app,
        "POST",
        "/stores/nope/check",
        Some(json!({"tuple_key": {"user": "user:a", "relation": "viewer", "object": "document:1"}})),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("store_id_not_found")));
    let bad_tuple =
        json!({"writes": {"tuple_keys": [{"user": "user:anne", "relation": "nope", "object": "document:1"}]}});
    let (status, body) = call(&app, "POST", &format!("/stores/{store_id}/write"), Some(bad_tuple)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_error")));
    let malformed = json!({"writes": {"tuple_keys": [{"user": "anne", "relation": "owner", "object": "document:1"}]}});
    let (status, _) = call(&app, "POST", &format!("/stores/{store_id}/write"), Some(malformed)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = call(
        &app,
        "POST",
        &check_uri,
        Some(json!({"tuple_key": {"user": "user:a", "relation": "nope", "object": "document:1"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let list = json!({"type": "nope", "relation": "viewer", "user": "user:anne"});
    let (status, body) = call(&app, "POST", &format!("/stores/{store_id}/list-objects"), Some(list)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("type_not_found")));
    let undefined = json!({"schema_version": "1.1", "type_definitions": [
        {"type": "document", "relations": {"viewer": {"this": {}}},
         "metadata": {"relations": {"viewer": {"directly_related_user_types": [{"type": "person"}]}}}},
    ]});
    let (status, body) = call(&app, "POST", &format!("/stores/{store_id}/authorization-models"), Some(undefined)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_authorization_model")),
        "{body}"
    );
    let (status, body) = call(&app, "GET", "/nowhere", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = call(&app, "GET", &check_uri, None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));

    let fresh = router(Arc::new(Engine::in_memory()));
    let (_, store) = call(&fresh, "POST", "/stores", Some(json!({"name": "empty"}))).await;
    let id = store["id"].as_str().unwrap();
    let (status, body) = call(
        &fresh,
        "POST",
        &format!("/stores/{id}/check"),
        Some(json!({"tuple_key": {"user": "user:a", "relation": "r", "object": "d:1"}})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("latest_authorization_model_not_found"))
    );
}

#[tokio::test]
async fn limits_answer_413_and_batch_check_too_large() {
    let app = router_with(
        Arc::new(Engine::in_memory()),
        ApiOptions { max_body_bytes: 64, max_batch_check: 1, ..ApiOptions::default() },
    );
    let big = json!({"name": "x".repeat(200)});
    let (status, body) = call(&app, "POST", "/stores", Some(big)).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large")));
    let (_, store) = call(&app, "POST", "/stores", Some(json!({"name": "s"}))).await;
    let id = store["id"].as_str().unwrap();
    let check = json!({"tuple_key": {"user": "u:a", "relation": "r", "object": "d:1"}, "correlation_id": "1"});
    let batch = json!({"checks": [check.clone(), check]});
    let (status, _) = call(&app, "POST", &format!("/stores/{id}/batch-check"), Some(batch)).await;
    // Over 64 bytes as well, so the body limit answers first.
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let app = router_with(
        Arc::new(Engine::in_memory()),
        ApiOptions { max_body_bytes: 1 << 20, max_batch_check: 1, ..ApiOptions::default() },
    );
    let (_, store) = call(&app, "POST", "/stores", Some(json!({"name": "s"}))).await;
    let id = store["id"].as_str().unwrap();
    let check = json!({"tuple_key": {"user": "u:a", "relation": "r", "object": "d:1"}, "correlation_id": "1"});
    let (status, body) =
        call(&app, "POST", &format!("/stores/{id}/batch-check"), Some(json!({"checks": [check.clone(), check]}))).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("batch_check_too_large")));
}

#[tokio::test]
async fn health_and_metrics() {
    let (app, store_id, _) = fixture().await;
    check(&app, &store_id, "document:1#viewer@user:anne").await;
    assert_eq!(call(&app, "GET", "/healthz", None).await, (StatusCode::OK, json!({"status": "ok"})));
    assert_eq!(call(&app, "GET", "/readyz", None).await.0, StatusCode::OK);
    let (status, text) = send_text(&app, "GET", "/metrics", Body::empty(), "text/plain").await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("writ_http_requests_total{method=\"POST\",status=\"200\"}"), "{text}");
    assert!(text.contains("writ_check_duration_seconds_count 1"), "{text}");
    assert!(text.contains(&format!("writ_tuples{{store=\"{store_id}\"}} 6")), "{text}");
    assert!(text.contains(&format!("writ_revision{{store=\"{store_id}\"}} 1")), "{text}");
}

#[tokio::test]
async fn every_check_of_a_batch_is_timed_once() {
    // A batch's checks on one thread are timed back to back (each starts where the last was
    // timed to end): each is still observed once, errors included, with its own latency.
    let (app, store_id, _) = fixture().await;
    let users = ["user:anne", "user:bob", "user:zed", "user:yan", "nobody", "user:carol", "user:anne"];
    let batch = batch_of(&users, "viewer", "document:1");
    let started = std::time::Instant::now();
    let (status, body) = call(&app, "POST", &format!("/stores/{store_id}/batch-check"), Some(batch)).await;
    let wall = started.elapsed();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["result"]["4"]["error"].is_object(), "a malformed user is this check's error: {body}");
    let (_, text) = send_text(&app, "GET", "/metrics", Body::empty(), "text/plain").await;
    assert!(text.contains(&format!("writ_check_duration_seconds_count {}", users.len())), "{text}");
    let sum: f64 = text
        .lines()
        .find_map(|line| line.strip_prefix("writ_check_duration_seconds_sum "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no latency sum: {text}"));
    assert!(sum > 0.0 && sum <= wall.as_secs_f64(), "the checks' latencies ({sum} s) fit in the batch ({wall:?})");
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let app = router(Arc::new(Engine::in_memory()));
    let answer = exchange(&app, "GET", "/healthz", &[("x-request-id", "abc-123")], Body::empty()).await;
    assert_eq!(answer.headers["x-request-id"], "abc-123");
    let answer = exchange(&app, "GET", "/healthz", &[], Body::empty()).await;
    assert_eq!(answer.headers["x-request-id"].len(), 26);
}

/// Regression: AuthZEN searches ignored `page.limit` and `page.token` and always answered every
/// result with an empty `next_token`.
#[tokio::test]
async fn authzen_search_ignored_page_limit() {
    let (app, store_id, _) = fixture().await;
    let keys: Vec<Value> = (1..=5)
        .map(|i| json!({"user": "user:pat", "relation": "viewer", "object": format!("document:p{i}")}))
        .collect();
    let (status, body) =
        call(&app, "POST", &format!("/stores/{store_id}/write"), Some(json!({"writes": {"tuple_keys": keys}}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let base = format!("/stores/{store_id}/access/v1");
    let search = json!({"subject": {"type": "user", "id": "pat"}, "action": {"name": "viewer"}, "resource": {"type": "document"}});
    let (mut token, mut pages, mut seen) = (String::new(), Vec::new(), Vec::new());
    loop {
        let mut request = search.clone();
        request["page"] = if token.is_empty() { json!({"limit": 2}) } else { json!({"limit": 2, "token": token}) };
        let (status, body) = call(&app, "POST", &format!("{base}/search/resource"), Some(request)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let results = body["results"].as_array().unwrap();
        pages.push(results.len());
        assert_eq!(body["page"]["count"], results.len());
        assert_eq!(body["page"]["total"], 5);
        seen.extend(results.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        token = body["page"]["next_token"].as_str().unwrap().to_string();
        if token.is_empty() || pages.len() > 5 {
            break;
        }
    }
    assert_eq!(pages, [2, 2, 1]);
    assert_eq!(seen, ["p1", "p2", "p3", "p4", "p5"]);

    let search = json!({"subject": {"type": "user", "id": "anne"}, "resource": {"type": "document", "id": "1"}, "page": {"limit": 3}});
    let (_, first) = call(&app, "POST", &format!("{base}/search/action"), Some(search.clone())).await;
    assert_eq!(first["results"], json!([{"name": "owner"}, {"name": "editor"}, {"name": "viewer"}]));
    let mut next = search;
    next["page"]["token"] = first["page"]["next_token"].clone();
    let (_, second) = call(&app, "POST", &format!("{base}/search/action"), Some(next.clone())).await;
    assert_eq!(second["results"], json!([{"name": "can_read"}]));
    assert_eq!(second["page"]["next_token"], "");

    next["page"]["token"] = json!("not-a-token");
    let (status, body) = call(&app, "POST", &format!("{base}/search/action"), Some(next)).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_continuation_token")));
}

/// Regression: a model with no type definitions was stored (and became the latest model); OpenFGA
/// answers 400 `validation_error`.
#[tokio::test]
async fn model_without_type_definitions_was_accepted() {
    let (app, store_id, model_id) = fixture().await;
    for body in [json!({"schema_version": "1.1"}), json!({"schema_version": "1.1", "type_definitions": []})] {
        let (status, answer) =
            call(&app, "POST", &format!("/stores/{store_id}/authorization-models"), Some(body)).await;
        assert_eq!((status, answer["code"].clone()), (StatusCode::BAD_REQUEST, json!("validation_error")), "{answer}");
    }
    let (status, answer) = send_text(
        &app,
        "PUT",
        &format!("/stores/{store_id}/writ/model"),
        Body::from("model\n  schema 1.1\n"),
        "text/plain",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (_, models) = call(&app, "GET", &format!("/stores/{store_id}/authorization-models"), None).await;
    assert_eq!(models["authorization_models"][0]["id"], model_id.as_str());
}

/// Regression: OpenFGA's `fga` CLI (0.8.2) sends `"contextual_tuples": {"tuple_keys": null}` and
/// `"authorization_model_id": ""` on check, list-objects and expand; Writ answered 400.
#[tokio::test]
async fn fga_cli_null_contextual_tuple_keys_are_empty() {
    let (app, store_id, _) = fixture().await;
    let requests = [
        (
            "check",
            json!({"authorization_model_id": "", "context": {}, "contextual_tuples": {"tuple_keys": null},
                   "tuple_key": {"user": "user:bob", "relation": "viewer", "object": "document:2"}}),
        ),
        (
            "list-objects",
            json!({"authorization_model_id": "", "context": {}, "contextual_tuples": {"tuple_keys": null},
                   "type": "document", "relation": "viewer", "user": "user:bob"}),
        ),
        (
            "expand",
            json!({"authorization_model_id": "", "contextual_tuples": {"tuple_keys": null},
                   "tuple_key": {"relation": "member", "object": "group:eng"}}),
        ),
    ];
    let mut answers = Vec::new();
    for (path, body) in requests {
        let (status, body) = call(&app, "POST", &format!("/stores/{store_id}/{path}"), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        answers.push(body);
    }
    assert_eq!(answers[0]["allowed"], true);
    assert_eq!(answers[1]["objects"], json!(["document:2"]));
    assert_eq!(answers[2]["tree"]["root"]["leaf"]["users"]["users"], json!(["user:bob"]));
}

/// The layering rule: `api` reaches the store, index and evaluator only through `engine`.
#[test]
fn api_imports_only_the_engine_facade() {
    // Every file under `src/api`, its subfolders (the console's) included.
    let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api")];
    let mut files = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            files += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            for forbidden in ["crate::store", "crate::index", "crate::eval", "writ::store"] {
                assert!(!text.contains(forbidden), "{} imports `{forbidden}`", path.display());
            }
        }
    }
    assert!(files > 20, "read only {files} files of `src/api`");
}

#[tokio::test]
async fn a_dsl_model_body_is_read_whole_within_the_body_limit() {
    // The DSL upload reads its body through the JSON bodies' reader: frames joined, the same
    // limit and the same `body_too_large`.
    let app = router_with(Arc::new(Engine::in_memory()), ApiOptions { max_body_bytes: 200, ..ApiOptions::default() });
    let (_, store) = call(&app, "POST", "/stores", Some(json!({"name": "s"}))).await;
    let uri = format!("/stores/{}/writ/model", store["id"].as_str().unwrap());
    let text = "model\n  schema 1.1\ntype user\ntype document\n  relations\n    define viewer: [user]\n";
    for size in [1, 9, text.len()] {
        let chunks: Vec<Result<axum::body::Bytes, std::convert::Infallible>> =
            text.as_bytes().chunks(size).map(|chunk| Ok(axum::body::Bytes::copy_from_slice(chunk))).collect();
        let body = Body::from_stream(futures_util::stream::iter(chunks));
        let (status, answer) = send_text(&app, "PUT", &uri, body, "text/plain").await;
        assert_eq!(status, StatusCode::CREATED, "frames of {size}: {answer}");
    }
    let large = format!("{text}# {}\n", "x".repeat(200));
    let (status, answer) = send_text(&app, "PUT", &uri, Body::from(large), "text/plain").await;
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!((status, answer["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large")));
    let (status, answer) = send_text(&app, "PUT", &uri, Body::from(vec![b'm', 0xff, b'\n']), "text/plain").await;
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("not valid UTF-8"), "{answer}");
}
