//! Tenant isolation under `--auth preshared`: a key limited to store A can neither read, check,
//! list, expand, write, read changes, see assertions or models of, nor learn of store B; it gets
//! the same 403 for B as for a store that does not exist, so it cannot tell them apart; store ids
//! in paths cannot escape (`..`, encoded slashes, NUL); and no answer to A's key carries B's data.
//! Also who changed what: each changelog entry names the key that wrote it, never the key itself.

use crate::support::http::{call_as, error_code, send, tuple};
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use writ::api::Api;
use writ::api::{router_with_config, Auth, KeySet, RouterConfig};
use writ::{Engine, Model};

const MODEL: &str = "model
  schema 1.1
type user
type document
  relations
    define owner: [user]
    define viewer: [user] or owner
";

const ROOT: Option<&str> = Some("root-key-0123456789");
const A_ADMIN: Option<&str> = Some("a-admin-key-0123456789");
const A_WRITER: Option<&str> = Some("a-writer-key-0123456789");
const A_READER: Option<&str> = Some("a-reader-key-0123456789");
/// A well-formed store id that no store has.
const GHOST: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

struct World {
    app: Api,
    a: String,
    b: String,
    b_model: String,
}

async fn world() -> World {
    let engine = Arc::new(Engine::in_memory());
    let mut ids = Vec::new();
    for name in ["tenant-a", "tenant-b"] {
        let store = engine.create_store(name).unwrap();
        let model = engine.store(&store.id).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
        ids.push((store.id, model));
    }
    let ((a, _), (b, b_model)) = (ids[0].clone(), ids[1].clone());
    let keys = format!(
        "admin:root-key-0123456789,admin:a-admin-key-0123456789:{a},writer:a-writer-key-0123456789:{a},\
         reader:a-reader-key-0123456789:{a}"
    );
    let config = RouterConfig {
        auth: Auth::Preshared(Arc::new(KeySet::parse_compact(&keys).unwrap())),
        authzen_store: Some(b.clone()),
        ..RouterConfig::default()
    };
    let app = router_with_config(engine, config);
    let write = |tuples: Value| json!({"writes": {"tuple_keys": tuples}});
    let (status, body) = call_as(
        &app,
        ROOT,
        "POST",
        &format!("/stores/{a}/write"),
        Some(write(json!([tuple("user:anne", "viewer", "document:a1")]))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call_as(
        &app,
        ROOT,
        "POST",
        &format!("/stores/{b}/write"),
        Some(write(json!([
            tuple("user:bob", "owner", "document:secret"),
            tuple("user:anne", "viewer", "document:b-only")
        ]))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let assertions =
        json!({"assertions": [{"tuple_key": tuple("user:bob", "viewer", "document:secret"), "expectation": true}]});
    let (status, body) =
        call_as(&app, ROOT, "PUT", &format!("/stores/{b}/assertions/{b_model}"), Some(assertions)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    World { app, a, b, b_model }
}

/// Every store route, for store `store` (with `model` for the model routes), and a body for it
/// that asks about `user:{user}` and `document:{document}`.
fn routes(store: &str, model: &str, user: &str, document: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let (user_ref, document_ref) = (format!("user:{user}"), format!("document:{document}"));
    let key = tuple(&user_ref, "viewer", &document_ref);
    let object = json!({"type": "document", "id": document});
    let subject = json!({"type": "user", "id": user});
    let evaluation = json!({"subject": subject, "action": {"name": "viewer"}, "resource": object});
    vec![
        ("GET", format!("/stores/{store}"), None),
        ("DELETE", format!("/stores/{store}"), None),
        (
            "POST",
            format!("/stores/{store}/write"),
            Some(json!({"writes": {"tuple_keys": [tuple("user:eve", "owner", &document_ref)]}})),
        ),
        (
            "POST",
            format!("/stores/{store}/write"),
            Some(json!({"deletes": {"tuple_keys": [tuple(&user_ref, "owner", &document_ref)]}})),
        ),
        ("POST", format!("/stores/{store}/read"), Some(json!({}))),
        ("GET", format!("/stores/{store}/changes"), None),
        ("POST", format!("/stores/{store}/check"), Some(json!({"tuple_key": key}))),
        (
            "POST",
            format!("/stores/{store}/batch-check"),
            Some(json!({"checks": [{"tuple_key": key, "correlation_id": "1"}]})),
        ),
        (
            "POST",
            format!("/stores/{store}/expand"),
            Some(json!({"tuple_key": {"relation": "viewer", "object": document_ref}})),
        ),
        (
            "POST",
            format!("/stores/{store}/list-objects"),
            Some(json!({"type": "document", "relation": "viewer", "user": user_ref})),
        ),
        (
            "POST",
            format!("/stores/{store}/streamed-list-objects"),
            Some(json!({"type": "document", "relation": "viewer", "user": user_ref})),
        ),
        (
            "POST",
            format!("/stores/{store}/list-users"),
            Some(json!({"object": object, "relation": "viewer", "user_filters": [{"type": "user"}]})),
        ),
        ("GET", format!("/stores/{store}/authorization-models"), None),
        ("GET", format!("/stores/{store}/authorization-models/{model}"), None),
        (
            "POST",
            format!("/stores/{store}/authorization-models"),
            Some(json!({"schema_version": "1.1", "type_definitions": [{"type": "user"}]})),
        ),
        ("PUT", format!("/stores/{store}/writ/model"), None),
        ("GET", format!("/stores/{store}/assertions/{model}"), None),
        ("PUT", format!("/stores/{store}/assertions/{model}"), Some(json!({"assertions": []}))),
        ("POST", format!("/stores/{store}/access/v1/evaluation"), Some(evaluation.clone())),
        ("POST", format!("/stores/{store}/access/v1/evaluations"), Some(json!({"evaluations": [evaluation]}))),
        (
            "POST",
            format!("/stores/{store}/access/v1/search/subject"),
            Some(json!({"subject": {"type": "user"}, "action": {"name": "viewer"}, "resource": object})),
        ),
        (
            "POST",
            format!("/stores/{store}/access/v1/search/resource"),
            Some(json!({"subject": subject, "action": {"name": "viewer"}, "resource": {"type": "document"}})),
        ),
        ("GET", format!("/.well-known/authzen-configuration/stores/{store}"), None),
        ("POST", format!("/stores/{store}/writ/obo-check"), Some(json!({}))),
        ("GET", format!("/stores/{store}/writ/decisions"), None),
    ]
}

/// The message with the store id taken out, to compare answers about different stores.
fn without(body: &Value, id: &str) -> String {
    body["message"].as_str().unwrap_or_default().replace(id, "<store>")
}

#[tokio::test]
async fn a_scoped_key_gets_the_same_403_for_another_store_as_for_no_store() {
    let world = world().await;
    let (b, model) = (&world.b, &world.b_model);
    for key in [A_READER, A_WRITER, A_ADMIN] {
        for ((method, uri, body), (_, ghost_uri, ghost_body)) in
            routes(b, model, "bob", "secret").into_iter().zip(routes(GHOST, model, "bob", "secret"))
        {
            let (status, answer) = call_as(&world.app, key, method, &uri, body).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{key:?} {method} {uri}: {answer}");
            assert_eq!(error_code(status, &answer), "forbidden");
            assert!(!answer.to_string().contains("secret"), "{answer}");
            let (ghost_status, ghost_answer) = call_as(&world.app, key, method, &ghost_uri, ghost_body).await;
            assert_eq!((ghost_status, &ghost_answer["code"]), (status, &answer["code"]), "{method} {ghost_uri}");
            assert_eq!(without(&ghost_answer, GHOST), without(&answer, b), "{method} {uri}");
        }
    }
    // An unlimited key learns that the ghost does not exist; that is its right.
    let (status, body) = call_as(&world.app, ROOT, "GET", &format!("/stores/{GHOST}"), None).await;
    assert_eq!((status, error_code(status, &body).as_str()), (StatusCode::NOT_FOUND, "store_id_not_found"));
    // Nothing the scoped keys tried changed store B.
    let (_, read) = call_as(&world.app, ROOT, "POST", &format!("/stores/{b}/read"), Some(json!({}))).await;
    // Reads come in the index's order, not sorted by text: compare as sets.
    let mut keys: Vec<&Value> = read["tuples"].as_array().unwrap().iter().map(|t| &t["key"]).collect();
    keys.sort_by_key(|key| key.to_string());
    assert_eq!(
        keys,
        [&tuple("user:anne", "viewer", "document:b-only"), &tuple("user:bob", "owner", "document:secret")]
    );
    let (_, assertions) = call_as(&world.app, ROOT, "GET", &format!("/stores/{b}/assertions/{model}"), None).await;
    assert_eq!(assertions["assertions"].as_array().unwrap().len(), 1, "{assertions}");
    let (_, models) = call_as(&world.app, ROOT, "GET", &format!("/stores/{b}/authorization-models"), None).await;
    assert_eq!(models["authorization_models"].as_array().unwrap().len(), 1, "{models}");
}

#[tokio::test]
async fn no_answer_to_a_scoped_key_carries_the_other_stores_data() {
    let world = world().await;
    let (a, b) = (&world.a, &world.b);
    let (status, stores) = call_as(&world.app, A_READER, "GET", "/stores", None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = stores["stores"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [a.as_str()]);
    assert!(!stores.to_string().contains("tenant-b"), "{stores}");
    for (method, uri, body) in routes(a, "unused", "carol", "a-probe") {
        if method != "GET" && method != "POST" || uri.contains("/write") || uri.contains("authorization-models") {
            continue;
        }
        let (_, answer) = call_as(&world.app, A_READER, method, &uri, body).await;
        let text = answer.to_string();
        for leak in ["secret\"", "b-only", "user:bob", b.as_str(), "tenant-b"] {
            assert!(!text.contains(leak), "{method} {uri} leaks `{leak}`: {text}");
        }
    }
    let (_, changes) = call_as(&world.app, A_READER, "GET", &format!("/stores/{a}/changes"), None).await;
    assert_eq!(changes["changes"].as_array().unwrap().len(), 1, "{changes}");
    let list = json!({"type": "document", "relation": "viewer", "user": "user:anne"});
    let (_, objects) = call_as(&world.app, A_READER, "POST", &format!("/stores/{a}/list-objects"), Some(list)).await;
    assert_eq!(objects["objects"], json!(["document:a1"]));
    // The keys that may not call cross-store routes get 403 there too.
    for (method, uri) in [("GET", "/metrics"), ("POST", "/stores"), ("POST", "/access/v1/evaluation")] {
        let (status, body) = call_as(&world.app, A_ADMIN, method, uri, Some(json!({"name": "x"}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {body}");
    }
    let (status, discovery) = call_as(&world.app, None, "GET", "/.well-known/authzen-configuration", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!discovery.to_string().contains(b.as_str()), "{discovery}");
}

#[tokio::test]
async fn store_ids_in_paths_cannot_escape() {
    let world = world().await;
    let (a, b) = (&world.a, &world.b);
    let check = json!({"tuple_key": tuple("user:bob", "viewer", "document:secret")});
    let escapes = [
        format!("/stores/{a}/../{b}/check"),
        format!("/stores/{a}/..%2F{b}/check"),
        format!("/stores/{a}%2F..%2F{b}/check"),
        format!("/stores/{a}%2f..%2f{b}/check"),
        format!("/stores/..%2F{b}/check"),
        format!("/stores/%2e%2e/{b}/check"),
        format!("/stores/{a}%00{b}/check"),
        format!("/stores/{a}/%2e%2e/%2e%2e/stores/{b}/check"),
        format!("/stores/{a}/check/../../{b}/check"),
        format!("/stores/{a}%23/check"),
        format!("/stores/{b}%3F/check"),
    ];
    for uri in &escapes {
        for key in [A_ADMIN, A_READER] {
            let (status, body) = call_as(&world.app, key, "POST", uri, Some(check.clone())).await;
            assert!(status.is_client_error(), "{uri}: {status} {body}");
            error_code(status, &body);
            assert!(body.get("allowed").is_none(), "{uri}: {body}");
        }
        // Even the unlimited key reaches no store through them: the decoded id names none.
        let (status, body) = call_as(&world.app, ROOT, "POST", uri, Some(check.clone())).await;
        assert!(status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST, "{uri}: {status} {body}");
    }
    // Paths that dodge the `/stores/` prefix the key check reads must not reach a route either.
    for uri in [
        format!("//stores/{b}"),
        format!("/./stores/{b}"),
        format!("/stores//{b}"),
        format!("/x/../stores/{b}"),
        format!("/%73tores/{b}"),
        format!("/STORES/{b}"),
        format!("//stores/{b}/changes"),
        format!("/stores/{b}/"),
        format!("/stores/{b}/changes/"),
    ] {
        let (status, body) = call_as(&world.app, A_READER, "GET", &uri, None).await;
        assert!(status.is_client_error(), "{uri}: {status} {body}");
        error_code(status, &body);
        for leak in ["secret", "tenant-b", "user:bob"] {
            assert!(!body.to_string().contains(leak), "{uri} leaks `{leak}`: {body}");
        }
    }
    // Raw bytes the HTTP layer passes through: a DSL upload to an escaping path stores nothing.
    let (status, _) =
        send(&world.app, A_ADMIN, "PUT", &format!("/stores/{a}%2F..%2F{b}/writ/model"), MODEL.into()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, models) = call_as(&world.app, ROOT, "GET", &format!("/stores/{b}/authorization-models"), None).await;
    assert_eq!(models["authorization_models"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn changes_record_who_wrote_each_entry_by_name_or_key_id_never_the_key() {
    let engine = Arc::new(Engine::in_memory());
    let store = engine.create_store("audited").unwrap();
    engine.store(&store.id).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let mut keys = KeySet::parse_file("- {name: ci-writer, key: named-key-0123456789, role: writer}").unwrap();
    keys.merge(KeySet::parse_compact("writer:unnamed-key-0123456789").unwrap()).unwrap();
    let config = RouterConfig { auth: Auth::Preshared(Arc::new(keys)), ..RouterConfig::default() };
    let app = router_with_config(engine.clone(), config);
    let uri = format!("/stores/{}/write", store.id);
    for (key, object) in [("named-key-0123456789", "document:1"), ("unnamed-key-0123456789", "document:2")] {
        let body = json!({"writes": {"tuple_keys": [tuple("user:anne", "owner", object)]}});
        let (status, answer) = call_as(&app, Some(key), "POST", &uri, Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let delete = json!({"deletes": {"tuple_keys": [tuple("user:anne", "owner", "document:1")]}});
    assert_eq!(call_as(&app, Some("unnamed-key-0123456789"), "POST", &uri, Some(delete)).await.0, StatusCode::OK);
    // Written without a key (the engine directly, as `writ import` does): no actor.
    let direct = writ::engine::StoredTuple::new("document:3#owner@user:bob".parse().unwrap());
    engine
        .store(&store.id)
        .unwrap()
        .write(writ::engine::WriteRequest { writes: vec![direct], ..Default::default() })
        .unwrap();
    let (status, changes) =
        call_as(&app, Some("named-key-0123456789"), "GET", &format!("/stores/{}/changes", store.id), None).await;
    assert_eq!(status, StatusCode::OK, "{changes}");
    let actors: Vec<&Value> = changes["changes"].as_array().unwrap().iter().map(|c| &c["actor"]).collect();
    let key_id = actors[1].as_str().unwrap();
    assert_eq!(actors, [&json!("ci-writer"), &json!(key_id), &json!(key_id), &Value::Null], "{changes}");
    assert!(key_id.starts_with("key:") && key_id.len() == 16, "{key_id}");
    assert!(!changes.to_string().contains("key-0123456789"), "a key leaked: {changes}");
}

#[test]
fn actors_survive_a_restart_on_disk() {
    let dir = crate::support::TempDir::new("actors");
    let open =
        || Engine::open(Box::new(writ::store::SledStore::open(dir.path()).unwrap()), Default::default()).unwrap();
    let store = {
        let engine = open();
        let store = engine.create_store("audited").unwrap();
        engine.store(&store.id).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
        let writes = vec![writ::engine::StoredTuple::new("document:1#owner@user:anne".parse().unwrap())];
        let request = writ::engine::WriteRequest { writes, actor: Some("ops".into()), ..Default::default() };
        engine.store(&store.id).unwrap().write(request).unwrap();
        store.id
    };
    let changes = open().store(&store).unwrap().changes(None, None, 10).unwrap();
    assert_eq!(changes.iter().map(|c| c.actor.as_deref()).collect::<Vec<_>>(), [Some("ops")]);
}
