//! What the decision log and tuple expiry cost on the check path.
//!
//! `decision_log/http_check/*`: one allowed `POST /check` (with an `audit` object) through the
//! router, in process, with the log `off`, in `deny` mode (the allow is not recorded) and `all`
//! (every check is queued for the background writer); `denied_off` and `denied_deny`: the same
//! check for a user with no grant, log `off` and in `deny` mode (every request records one deny:
//! what the default log costs per denied check).
//! `decision_log/http_batch_check/*`: a batch-check of 1,000 (three in four denied, as in
//! `benches/http_wrk.sh`) through the router, log `off` and in `deny` mode. Run it on one core
//! (`taskset -c 0`) to count the log's writer thread too.
//! `decision_log/record_decision`: what recording adds to a handler (build and queue a record).
//! `expiry/check/*` and `expiry/list_objects/*`: the same questions on a store with no expiring
//! tuple and on one where a tenth of the tuples (live ones) expire.

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
use axum::http::Request;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::BodyExt;
use std::hint::black_box;
use std::sync::Arc;
use tower::ServiceExt;
use writ::engine::{
    CheckRequest, DecisionLogConfig, DecisionLogMode, DecisionRecord, ListObjectsRequest, WriteRequest,
};
use writ::store::StoredTuple;
use writ::{Engine, EngineConfig, Model, Tuple};

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

const DOCUMENTS: usize = 10_000;

/// The benches' decision log bound: small, so that a short run (a few thousand requests under
/// callgrind) trims and frees records as a long-running server at its bound does, and a
/// recorded decision is counted whole (built, handed off, stored, trimmed, freed).
const LOG_MAX_COUNT: usize = 1_000;

/// A store with `DOCUMENTS` documents, each viewed by user:anne directly and by group:eng;
/// every tenth direct grant expires (far in the future) when `expiring` is set.
fn engine(mode: DecisionLogMode, expiring: bool) -> (Arc<Engine>, String) {
    let config = EngineConfig {
        decision_log: DecisionLogConfig { mode, max_count: LOG_MAX_COUNT, ..DecisionLogConfig::default() },
        ..EngineConfig::default()
    };
    let engine =
        Engine::open_with_clock(Box::new(writ::store::MemoryStore::new()), config, writ::engine::system_clock())
            .unwrap();
    let store = engine.create_store("bench").unwrap().id;
    let handle = engine.store(&store).unwrap();
    handle.write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let mut tuples = vec![StoredTuple::new("group:eng#member@user:anne".parse::<Tuple>().unwrap())];
    for i in 0..DOCUMENTS {
        let mut direct = StoredTuple::new(format!("document:{i}#viewer@user:anne").parse::<Tuple>().unwrap());
        if expiring && i % 10 == 0 {
            direct.expires_at_ms = Some(engine.now_ms() + 3_600_000);
        }
        tuples.push(direct);
        tuples.push(StoredTuple::new(format!("document:{i}#viewer@group:eng#member").parse::<Tuple>().unwrap()));
    }
    for chunk in tuples.chunks(1000) {
        handle.write(WriteRequest { writes: chunk.to_vec(), ..WriteRequest::default() }).unwrap();
    }
    drop(handle);
    (Arc::new(engine), store)
}

fn http_check(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("decision_log/http_check");
    let cases = [
        ("off", DecisionLogMode::Off, true),
        ("deny", DecisionLogMode::Deny, true),
        ("all", DecisionLogMode::All, true),
        ("denied_off", DecisionLogMode::Off, false),
        ("denied_deny", DecisionLogMode::Deny, false),
    ];
    for (name, mode, allowed) in cases {
        let (engine, store) = engine(mode, false);
        let app = writ::api::router(engine.clone());
        let uri = format!("/stores/{store}/check");
        let user = if allowed { "user:anne" } else { "user:bob" };
        let body = format!(
            r#"{{"tuple_key":{{"user":"{user}","relation":"viewer","object":"document:7"}},
            "audit":{{"tool":"search","task":"t-42"}}}}"#
        );
        let send = || {
            let request =
                Request::post(&uri).header("content-type", "application/json").body(Body::from(body.clone())).unwrap();
            let app = app.clone();
            runtime.block_on(async move {
                let response = app.oneshot(request).await.unwrap();
                response.into_body().collect().await.unwrap().to_bytes()
            })
        };
        assert_eq!(send(), format!(r#"{{"allowed":{allowed},"resolution":""}}"#));
        group.bench_function(name, |b| b.iter(|| black_box(send())));
        engine.decision_log().flush();
        let stats = engine.decision_log().stats();
        eprintln!("decision_log/{name}: queued {} dropped {}", stats.queued, stats.dropped);
    }
    group.finish();
}

fn http_batch_check(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group("decision_log/http_batch_check");
    let checks: Vec<serde_json::Value> = (0..1000)
        .map(|i| {
            let user = if i % 4 == 0 { "user:anne" } else { "user:bob" };
            serde_json::json!({"tuple_key": {"user": user, "relation": "viewer", "object": format!("document:{i}")},
                "correlation_id": format!("c{i}")})
        })
        .collect();
    let body = serde_json::json!({ "checks": checks }).to_string();
    for (name, mode) in [("off", DecisionLogMode::Off), ("deny", DecisionLogMode::Deny)] {
        let (engine, store) = engine(mode, false);
        // As `benches/http_wrk.sh` serves it: `--max-batch-check 1000`.
        let options = writ::api::ApiOptions { max_batch_check: 1000, ..writ::api::ApiOptions::default() };
        let app = writ::api::router_with(engine.clone(), options);
        let uri = format!("/stores/{store}/batch-check");
        let send = || {
            let request =
                Request::post(&uri).header("content-type", "application/json").body(Body::from(body.clone())).unwrap();
            let app = app.clone();
            runtime.block_on(async move {
                let response = app.oneshot(request).await.unwrap();
                response.into_body().collect().await.unwrap().to_bytes()
            })
        };
        let answer: serde_json::Value = serde_json::from_slice(&send()).unwrap();
        let allowed = answer["result"].as_object().unwrap().values().filter(|entry| entry["allowed"] == true).count();
        assert_eq!(allowed, 250, "{answer}");
        group.throughput(criterion::Throughput::Elements(1000));
        group.bench_function(name, |b| b.iter(|| black_box(send())));
        engine.decision_log().flush();
        let stats = engine.decision_log().stats();
        eprintln!("decision_log/http_batch_check/{name}: queued {} dropped {}", stats.queued, stats.dropped);
    }
    group.finish();
}

/// The work a handler adds per recorded decision: building the record (strings, the audit
/// object) and queueing it.
fn record_decision(c: &mut Criterion) {
    let (engine, store) = engine(DecisionLogMode::All, false);
    let mut audit = writ::tuple::Context::new();
    audit.insert("tool".into(), "search".into());
    audit.insert("task".into(), "t-42".into());
    c.bench_function("decision_log/record_decision", |b| {
        b.iter(|| {
            engine.decision_log().record(DecisionRecord {
                time_ms: engine.now_ms(),
                store_id: store.clone().into(),
                model_id: "".into(),
                principals: vec!["user:anne".to_string()],
                delegation_relation: None,
                audience: false,
                relation: "viewer".to_string(),
                object: "document:7".to_string(),
                allowed: true,
                denied_by: None,
                revision: 1,
                latency_us: 9,
                request_id: "01JD0000000000000000000000".into(),
                audit: Some(audit.clone()),
            })
        })
    });
    engine.decision_log().flush();
    let stats = engine.decision_log().stats();
    eprintln!("decision_log/record_decision: queued {} dropped {}", stats.queued, stats.dropped);
}

fn expiry(c: &mut Criterion) {
    let mut group = c.benchmark_group("expiry");
    for (name, expiring) in [("none_expiring", false), ("tenth_expiring", true)] {
        let (engine, store) = engine(DecisionLogMode::Off, expiring);
        let handle = engine.store(&store).unwrap();
        let check = CheckRequest {
            object: "document:70".into(),
            relation: "viewer".into(),
            user: "user:anne".into(),
            ..CheckRequest::default()
        };
        assert!(handle.check(&check).unwrap().value);
        group.bench_function(format!("check/{name}"), |b| b.iter(|| black_box(handle.check(&check))));
        let list = ListObjectsRequest {
            object_type: "document".into(),
            relation: "viewer".into(),
            user: "user:anne".into(),
            ..ListObjectsRequest::default()
        };
        assert_eq!(handle.list_objects(&list).unwrap().value.len(), DOCUMENTS);
        group.bench_function(format!("list_objects/{name}/n={DOCUMENTS}"), |b| {
            b.iter(|| black_box(handle.list_objects(&list)))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = http_check, http_batch_check, record_decision, expiry
}
criterion_main!(benches);
