//! Server-side rendering time of the console's pages on a 1M-tuple store (issue 30: ≤ 50 ms each).
//!
//! `console/tuples/*`: the Tuples page, unfiltered and browsing one object type, with the change
//! feed; `console/decisions`: the Decisions page over a log of 2,000 decisions; `console/explain/*`:
//! the Explain page explaining an allow and a deny (with its `would_allow` search). Each is one
//! GET through the router in process, signed in (`--auth none`, one session reused), body read
//! whole. The pages read a page at a time by cursor, so their time should not grow with the store.

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a bench binary fails loudly on bad setup; criterion macros generate undocumented items"
)]

/// The bench measures the engine as `writ serve` runs it: on mimalloc (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;
use writ::api::Api;
use writ::api::{router_with_config, Auth, RouterConfig};
use writ::engine::{DecisionLogConfig, DecisionLogMode, WriteRequest};
use writ::store::StoredTuple;
use writ::{Engine, EngineConfig, Model, Tuple};

const MODEL: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user]
type folder
  relations
    define viewer: [user, group#member]
type document
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: [user, group#member] or owner or viewer from parent
";

const TUPLES: usize = 1_000_000;
const DECISIONS: usize = 2_000;

fn tuple(text: &str) -> StoredTuple {
    StoredTuple::new(text.parse::<Tuple>().unwrap())
}

/// 1M tuples: 250k documents, each in a folder, owned, and viewed by a user and a group.
fn engine() -> (Arc<Engine>, String) {
    let config = EngineConfig {
        decision_log: DecisionLogConfig { mode: DecisionLogMode::All, ..DecisionLogConfig::default() },
        ..EngineConfig::default()
    };
    let engine =
        Engine::open_with_clock(Box::new(writ::store::MemoryStore::new()), config, writ::engine::system_clock())
            .unwrap();
    let store = engine.create_store("bench").unwrap().id;
    let handle = engine.store(&store).unwrap();
    handle.write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let mut batch = Vec::with_capacity(1_000);
    for i in 0..TUPLES / 4 {
        batch.push(tuple(&format!("document:{i}#parent@folder:{}", i % 1000)));
        batch.push(tuple(&format!("document:{i}#owner@user:{}", i % 5000)));
        batch.push(tuple(&format!("document:{i}#viewer@user:{}", (i * 7) % 5000)));
        batch.push(tuple(&format!("document:{i}#viewer@group:{}#member", i % 200)));
        if batch.len() >= 1_000 {
            handle.write(WriteRequest { writes: std::mem::take(&mut batch), ..WriteRequest::default() }).unwrap();
        }
    }
    if !batch.is_empty() {
        handle.write(WriteRequest { writes: batch, ..WriteRequest::default() }).unwrap();
    }
    assert_eq!(handle.tuple_count().unwrap(), TUPLES);
    drop(handle);
    (Arc::new(engine), store)
}

async fn get(app: &Api, uri: &str, cookie: Option<&str>) -> (StatusCode, Option<String>, usize) {
    let mut request = Request::get(uri);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let set = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").to_string());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, set, body.len())
}

fn pages(c: &mut Criterion) {
    let (engine, store) = engine();
    let app = router_with_config(engine, RouterConfig { auth: Auth::None, console: true, ..RouterConfig::default() });
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (_, cookie, _) = runtime.block_on(get(&app, "/console/", None));
    let cookie = cookie.expect("an anonymous session");
    let explain = |user: &str, object: &str| {
        format!("/console/stores/{store}/explain?subject=user%3A{user}&relation=viewer&object=document%3A{object}&run=explain")
    };
    // The decision log: checks run from the page, as an admin would.
    for i in 0..DECISIONS {
        let uri = format!(
            "/console/stores/{store}/explain?subject=user%3A{}&relation=viewer&object=document%3A{i}&run=check",
            i % 5000
        );
        let (status, _, _) = runtime.block_on(get(&app, &uri, Some(&cookie)));
        assert_eq!(status, StatusCode::OK);
    }
    let cases = [
        ("tuples/all", format!("/console/stores/{store}/tuples")),
        ("tuples/by_type", format!("/console/stores/{store}/tuples?object=document%3A&relation=viewer")),
        ("decisions", format!("/console/stores/{store}/decisions")),
        ("explain/allow", explain("7", "1")),
        ("explain/deny", explain("nobody", "12345")),
    ];
    let mut group = c.benchmark_group("console");
    for (name, uri) in &cases {
        let (status, _, size) = runtime.block_on(get(&app, uri, Some(&cookie)));
        assert_eq!(status, StatusCode::OK, "{name}");
        assert!(size > 1000, "{name} renders a page");
        group.bench_function(*name, |b| b.iter(|| runtime.block_on(get(&app, uri, Some(&cookie)))));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = pages
}
criterion_main!(benches);
