//! Every route of the HTTP API (from the router's route table), driven through the real router
//! in-process. The first byte picks the route, the second the method, the rest is the body.
//! Property: no answer is a 5xx, every 4xx is `{"code", "message"}` JSON, and nothing panics. Each input gets a fresh in-memory engine holding one store with a model (groups,
//! folders, a condition) and a few tuples, so a crash reproduces from its input alone.
#![no_main]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;
use writ::engine::WriteRequest;
use writ::store::{MemoryStore, StoredTuple};
use writ::{Engine, EngineConfig, Model, Tuple};

const MODEL: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
type document
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user]
    define viewer: [user, user:*, group#member, user with in_region] or owner or viewer from parent
    define can_view: viewer but not blocked
    define can_share: owner and viewer
condition in_region(region: string, allowed: list<string>) {
  region in allowed
}
";

const TUPLES: &[&str] = &[
    "group:eng#member@user:anne",
    "group:all#member@group:eng#member",
    "folder:root#viewer@group:all#member",
    "folder:sub#parent@folder:root",
    "document:readme#parent@folder:sub",
    "document:readme#owner@user:bob",
    "document:readme#blocked@user:carl",
    "document:public#viewer@user:*",
];

/// The methods tried on each route; the second byte picks one.
const METHODS: &[&str] = &["POST", "PUT", "GET", "DELETE", "PATCH"];

struct Fixture {
    runtime: tokio::runtime::Runtime,
    model: Model,
    tuples: Vec<Tuple>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        runtime: tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
        model: Model::parse_dsl(MODEL).unwrap(),
        tuples: TUPLES.iter().map(|t| t.parse().unwrap()).collect(),
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let fixture = fixture();
    let engine = Engine::open(Box::new(MemoryStore::new()), EngineConfig::default()).unwrap();
    let store = engine.create_store("fuzz").unwrap().id;
    let model_id = engine.store(&store).unwrap().write_model(fixture.model.clone()).unwrap();
    let writes = fixture.tuples.iter().cloned().map(StoredTuple::new).collect();
    engine.store(&store).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
    let app = writ::api::router(Arc::new(engine));

    let Some((&method_selector, body)) = body.split_first() else { return };
    // The routes come from the router's own table, so a new route is fuzzed without editing this.
    let paths = writ::api::route_paths();
    let path = paths[selector as usize % paths.len()];
    let method = METHODS[method_selector as usize % METHODS.len()];
    let uri = path.replace("{store_id}", &store).replace("{model_id}", &model_id);
    let request = Request::builder()
        .method(method)
        .uri(&uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    fixture.runtime.block_on(async {
        let response = app.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert!(
            status < StatusCode::INTERNAL_SERVER_ERROR,
            "{method} {uri} answered {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
        if status.is_client_error() {
            let error: serde_json::Value = serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("{method} {uri} answered {status} without JSON: {bytes:?}"));
            for field in ["code", "message"] {
                assert!(
                    error[field].as_str().is_some_and(|text| !text.is_empty()),
                    "{method} {uri} answered {status} without `{field}`: {error}"
                );
            }
        }
    });
});
