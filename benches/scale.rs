//! Checks, OBO checks and list-objects at scale: the seeded workload of `support/scale.rs` over
//! `schema/scale.fga` at about 1M tuples (default) or 10M (`WRIT_SCALE=10m`).
//!
//! Before anything is timed it prints the resident memory the loaded index adds per tuple, and
//! checks every query's answer (known by construction). Then, per scenario: the criterion median
//! over a rotation of 1,024 random queries (ids like `scale/folders_5/allow/n=10012345`), and a
//! separate pass timing each of `WRIT_SCALE_QUERIES` (default 100k) random queries alone, printed
//! as a latency histogram (p50/p90/p99/p99.9/max).
//!
//! Reads (issue 29): one page of 100 of each `read` filter shape, from the start and resumed
//! half-way through the store (ids like `scale/read/type_relation/resumed/n=10012345`), each
//! checked to match its filter first; then a full unfiltered paging of the store through HTTP
//! (`POST /read`, pages of 100, over a loopback socket to `writ`'s router), checked to read
//! every tuple exactly once, with its wall time printed. `cargo bench --bench scale -- read`
//! times only these.
//!
//! `WRIT_SCALE_EMIT=/tmp/w.jsonl cargo bench --bench scale` writes the tuples as JSON Lines for
//! `writ import` (with `--model schema/scale.fga`) and exits without benchmarking.

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::panic,
    reason = "a bench binary fails loudly on bad setup; criterion macros generate undocumented items"
)]

#[path = "support/scale.rs"]
mod scale;

use criterion::{criterion_group, Criterion};
use parking_lot::Mutex;
use scale::{Facts, OboQuery, Query, Size};
use std::hint::black_box;
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};
use writ::engine::{ReadCursor, ReadFilter};
use writ::store::{
    ChangeQuery, ChangeRecord, CheckpointStore, DecisionLogStore, MemoryStore, StoreError, StoreRecord, StoredTuple,
    TupleStore, WriteBatch,
};
use writ::{Engine, EngineConfig, Model, Tuple};

const SEED: u64 = 42;
const STORE: &str = "01JSCALESTORE0000000000000";

/// A backend that hands its tuples to the engine once, at open, and keeps none: the memory that
/// stays after loading is the engine's own (a [`MemoryStore`] would hold a second copy).
struct HandOff {
    inner: MemoryStore,
    tuples: Mutex<Option<Vec<StoredTuple>>>,
}

impl TupleStore for HandOff {
    fn create_store(&self, store: &StoreRecord) -> Result<(), StoreError> {
        self.inner.create_store(store)
    }
    fn get_store(&self, store_id: &str) -> Result<Option<StoreRecord>, StoreError> {
        self.inner.get_store(store_id)
    }
    fn list_stores(&self) -> Result<Vec<StoreRecord>, StoreError> {
        self.inner.list_stores()
    }
    fn delete_store(&self, store_id: &str) -> Result<(), StoreError> {
        self.inner.delete_store(store_id)
    }
    fn write_model(&self, store_id: &str, model_id: &str, model_json: &str) -> Result<(), StoreError> {
        self.inner.write_model(store_id, model_id, model_json)
    }
    fn models(&self, store_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.inner.models(store_id)
    }
    fn write(&self, store_id: &str, batch: &WriteBatch<'_>) -> Result<u64, StoreError> {
        self.inner.write(store_id, batch)
    }
    fn tuples(&self, store_id: &str) -> Result<Vec<StoredTuple>, StoreError> {
        let mut handed = self.tuples.lock().take().unwrap_or_default();
        handed.extend(self.inner.tuples(store_id)?);
        Ok(handed)
    }
    fn written_at(&self, store_id: &str, tuples: &[Tuple]) -> Result<Vec<Option<i64>>, StoreError> {
        self.inner.written_at(store_id, tuples)
    }
    fn revision(&self, store_id: &str) -> Result<u64, StoreError> {
        self.inner.revision(store_id)
    }
    fn change_page(&self, store_id: &str, query: ChangeQuery<'_>) -> Result<Vec<ChangeRecord>, StoreError> {
        self.inner.change_page(store_id, query)
    }
    fn write_assertions(&self, store_id: &str, model_id: &str, assertions_json: &str) -> Result<(), StoreError> {
        self.inner.write_assertions(store_id, model_id, assertions_json)
    }
    fn assertions(&self, store_id: &str, model_id: &str) -> Result<Option<String>, StoreError> {
        self.inner.assertions(store_id, model_id)
    }
    fn checkpoints(&self) -> Option<&dyn CheckpointStore> {
        self.inner.checkpoints()
    }
    fn decision_log(&self) -> Option<&dyn DecisionLogStore> {
        self.inner.decision_log()
    }
}

struct ScaleWorkload {
    size: Size,
    engine: Arc<Engine>,
    facts: Facts,
    checks: Vec<(&'static str, Vec<Query>)>,
    obo: Vec<OboQuery>,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Writes the workload as `writ import` JSON Lines.
fn emit(size: &Size, path: &str) {
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("cannot create {path}: {e}"));
    let mut out = std::io::BufWriter::new(file);
    let mut failed = None;
    let facts = scale::generate(size, SEED, |object, relation, user| {
        if failed.is_none() {
            if let Err(e) = writeln!(out, r#"{{"user":"{user}","relation":"{relation}","object":"{object}"}}"#) {
                failed = Some(e);
            }
        }
    });
    if let Some(e) = failed {
        panic!("cannot write {path}: {e}");
    }
    out.flush().expect("flush the workload");
    println!(
        "wrote {} tuples ({}) to {path}; load with:\n  writ import --data-dir DIR --create-store scale --model {} {path}",
        facts.tuples,
        size.name,
        scale::model_path()
    );
}

fn build() -> ScaleWorkload {
    let size = scale::size_from_env();
    let queries: usize =
        std::env::var("WRIT_SCALE_QUERIES").ok().and_then(|n| n.parse().ok()).unwrap_or(100_000).max(16);
    let (rss_empty, _) = scale::memory();
    let started = Instant::now();
    let mut tuples = Vec::new();
    let facts = scale::generate(&size, SEED, |object, relation, user| {
        tuples.push(StoredTuple::new(Tuple::from_parts(object, relation, user).expect("scale tuples are well-formed")));
    });
    tuples.shrink_to_fit();
    let generated = started.elapsed();
    let model = Model::parse_dsl(&scale::model_text()).expect("schema/scale.fga is valid");
    let inner = MemoryStore::new();
    let record = StoreRecord { id: STORE.into(), name: "scale".into(), created_at_ms: 0, updated_at_ms: 0 };
    inner.create_store(&record).expect("create the store");
    let json = serde_json::to_string(&model.to_json()).expect("the model serializes");
    inner.write_model(STORE, "01JSCALEMODEL0000000000000", &json).expect("write the model");
    let vec_bytes = (tuples.len() * std::mem::size_of::<StoredTuple>()) as u64;
    let backend = HandOff { inner, tuples: Mutex::new(Some(tuples)) };
    let (rss_before, _) = scale::memory();
    let started = Instant::now();
    let engine = Arc::new(Engine::open(Box::new(backend), EngineConfig::default()).expect("open the engine"));
    let loaded = started.elapsed();
    let (rss_after, peak) = scale::memory();
    let n = facts.tuples as f64;
    // Issue #6's measure: RSS after load minus the empty process's. The handed-over tuples are
    // freed inside `open`; mimalloc returns their pages to the system, so what stays is the
    // engine's. (With an allocator that keeps freed small blocks resident, the growth during
    // `open` plus the freed tuple array is the closer estimate; both are printed.)
    let resident = rss_after.saturating_sub(rss_empty);
    let index = (rss_after + vec_bytes).saturating_sub(rss_before);
    println!(
        "scale {}: {} tuples generated in {:.1?}, index built in {:.1?}",
        size.name, facts.tuples, generated, loaded
    );
    println!(
        "memory: RSS empty {:.0} MiB, with generated tuples {:.0} MiB, after load {:.0} MiB (peak {:.0} MiB); \
         resident after load − empty = {:.0} MiB = {:.1} bytes/tuple; growth during load + the freed \
         {:.0} MiB tuple array = {:.0} MiB = {:.1} bytes/tuple",
        mib(rss_empty),
        mib(rss_before),
        mib(rss_after),
        mib(peak),
        mib(resident),
        resident as f64 / n,
        mib(vec_bytes),
        mib(index),
        index as f64 / n,
    );
    let checks = scale::check_scenarios(&size, &facts, queries, SEED + 1);
    let obo = scale::obo_queries(&size, &facts, queries, SEED + 2);
    let workload = ScaleWorkload { size, engine, facts, checks, obo };
    verify(&workload);
    workload
}

/// Checks every query's answer; panics on a wrong one so nothing wrong gets timed.
fn verify(w: &ScaleWorkload) {
    let store = w.engine.store(STORE).expect("the bench store exists");
    let started = Instant::now();
    for (scenario, queries) in &w.checks {
        for q in queries {
            let got = store.check(&q.request).expect("check answers").value;
            assert_eq!(got, q.expected, "{scenario}: {:?}", q.request);
        }
    }
    for q in &w.obo {
        let got = store.obo_check(&q.request).expect("obo check answers").value;
        assert_eq!(got.allowed, q.expected, "obo: {:?} {:?}", q.request, got.denied_by);
    }
    let listed = store.list_objects(&scale::lister_request()).expect("list objects answers").value;
    assert_eq!(listed.len(), w.facts.lister_documents, "list_objects finds exactly the documents of root 0");
    let expected: std::collections::HashSet<String> =
        w.facts.docs_by_root[0].iter().map(|d| format!("document:d{d}")).collect();
    assert!(listed.iter().all(|o| expected.contains(o)), "list_objects finds only the documents of root 0");
    println!(
        "verified {} checks, {} OBO checks and list_objects ({} objects) in {:.1?}",
        w.checks.iter().map(|(_, q)| q.len()).sum::<usize>(),
        w.obo.len(),
        listed.len(),
        started.elapsed()
    );
}

fn workload() -> &'static ScaleWorkload {
    static WORKLOAD: std::sync::OnceLock<ScaleWorkload> = std::sync::OnceLock::new();
    WORKLOAD.get_or_init(build)
}

/// Times each call alone and prints the latency histogram of the pass.
fn histogram(name: &str, n: usize, mut call: impl FnMut(usize)) {
    let mut latencies = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        call(i);
        latencies.push(started.elapsed());
    }
    latencies.sort_unstable();
    let p = |q| scale::percentile(&latencies, q);
    let over = |limit: Duration| latencies.iter().filter(|&&l| l > limit).count();
    println!(
        "latency {name:<28} n={n} p50 {:?} p90 {:?} p99 {:?} p99.9 {:?} max {:?} (>1µs: {}, >10µs: {})",
        p(0.5),
        p(0.9),
        p(0.99),
        p(0.999),
        latencies.last().copied().unwrap_or_default(),
        over(Duration::from_micros(1)),
        over(Duration::from_micros(10)),
    );
}

fn checks(c: &mut Criterion) {
    let w = workload();
    let n = w.facts.tuples;
    let store = w.engine.store(STORE).expect("the bench store exists");
    for (scenario, queries) in &w.checks {
        histogram(scenario, queries.len(), |i| {
            black_box(store.check(&queries[i].request).expect("check"));
        });
    }
    histogram("obo_chain_3", w.obo.len(), |i| {
        black_box(store.obo_check(&w.obo[i].request).expect("obo check"));
    });
    let mut group = c.benchmark_group("scale");
    for (scenario, queries) in &w.checks {
        for (answer, expected) in [("allow", true), ("deny", false)] {
            let rotation: Vec<&Query> = queries.iter().filter(|q| q.expected == expected).take(1024).collect();
            let mut i = 0;
            group.bench_function(format!("{scenario}/{answer}/n={n}"), |b| {
                b.iter(|| {
                    i = (i + 1) & 1023;
                    black_box(store.check(black_box(&rotation[i % rotation.len()].request)))
                })
            });
        }
    }
    for (answer, expected) in [("allow", true), ("deny", false)] {
        let rotation: Vec<&OboQuery> = w.obo.iter().filter(|q| q.expected == expected).take(1024).collect();
        let mut i = 0;
        group.bench_function(format!("obo_chain_3/{answer}/n={n}"), |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                black_box(store.obo_check(black_box(&rotation[i % rotation.len()].request)))
            })
        });
    }
    group.finish();
}

fn lookup(c: &mut Criterion) {
    let w = workload();
    let request = scale::lister_request();
    let store = w.engine.store(STORE).expect("the bench store exists");
    let mut group = c.benchmark_group("scale");
    group.sample_size(10);
    group.bench_function(format!("list_objects/objects={}/n={}", w.facts.lister_documents, w.facts.tuples), |b| {
        b.iter(|| black_box(store.list_objects(black_box(&request)).expect("list objects")))
    });
    group.finish();
    let _ = w.size;
}

/// A read filter from its parts.
fn filter(
    object_type: Option<&str>,
    object_id: Option<&str>,
    relation: Option<&str>,
    user: Option<&str>,
) -> ReadFilter {
    ReadFilter {
        object_type: object_type.map(Into::into),
        object_id: object_id.map(Into::into),
        relation: relation.map(Into::into),
        user: user.map(Into::into),
    }
}

/// True if `tuple` is one `filter` asks for.
fn matches(filter: &ReadFilter, tuple: &Tuple) -> bool {
    filter.object_type.as_deref().is_none_or(|t| tuple.object.object_type == t)
        && filter.object_id.as_deref().is_none_or(|id| tuple.object.id == id)
        && filter.relation.as_deref().is_none_or(|r| tuple.relation == r)
        && filter.user.as_deref().is_none_or(|u| tuple.subject.to_string() == u)
}

/// The cursor half-way through `filter`'s tuples (found by paging there in large pages), and
/// how many tuples the filter holds in all.
fn halfway(engine: &Engine, filter: &ReadFilter) -> (Option<ReadCursor>, usize) {
    let store = engine.store(STORE).expect("the bench store exists");
    let mut cursors = Vec::new();
    let (mut after, mut total) = (None, 0usize);
    loop {
        let page = store.read_page(filter, after, 10_000).expect("read a page");
        total += page.tuples.len();
        match page.next {
            Some(next) => {
                cursors.push(next);
                after = Some(next);
            }
            None => return (cursors.get(cursors.len() / 2).copied(), total),
        }
    }
}

fn reads(c: &mut Criterion) {
    let w = workload();
    let n = w.facts.tuples;
    let engine = &w.engine;
    let store = engine.store(STORE).expect("the bench store exists");
    let shapes = [
        ("all", filter(None, None, None, None)),
        ("type", filter(Some("document"), None, None, None)),
        ("type_relation", filter(Some("document"), None, Some("viewer"), None)),
        ("object", filter(Some("folder"), Some("f0_0"), None, None)),
        ("object_relation", filter(Some("document"), Some("d7"), Some("parent"), None)),
        ("object_relation_user", filter(Some("group"), Some("g0_0"), Some("member"), Some("group:g1_0#member"))),
        ("user_type", filter(Some("group"), None, None, Some("user:u1"))),
        ("user_type_relation", filter(Some("document"), None, Some("owner"), Some("user:u1"))),
    ];
    let mut group = c.benchmark_group("scale/read");
    for (name, filter) in &shapes {
        let started = Instant::now();
        let (middle, total) = halfway(engine, filter);
        println!("read {name}: {total} tuples, paged in pages of 10k in {:.1?}", started.elapsed());
        assert!(total > 0, "read {name}: the shape matches some tuples");
        if *name == "all" {
            assert_eq!(total, w.facts.tuples, "an unfiltered paging reads every tuple");
        }
        for (at, after) in [("first", None), ("resumed", middle)] {
            if at == "resumed" && after.is_none() {
                continue;
            }
            let page = store.read_page(filter, after, 100).expect("read a page");
            assert!(page.tuples.iter().all(|t| matches(filter, &t.tuple)), "read {name}: only matching tuples");
            match at {
                "first" => assert_eq!(page.tuples.len(), total.min(100), "read {name}: a full first page"),
                _ => assert!(!page.tuples.is_empty(), "read {name}: tuples past the middle"),
            }
            group.bench_function(format!("{name}/{at}/n={n}"), |b| {
                b.iter(|| black_box(store.read_page(black_box(filter), after, 100).expect("read a page")))
            });
        }
    }
    group.finish();
    http_paging(w);
}

/// Pages the whole store through `POST /read` over a loopback socket (HTTP/1.1, one kept-alive
/// connection, pages of 100) and prints the wall time; checks every tuple came once.
fn http_paging(w: &ScaleWorkload) {
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let address = runtime.block_on(scale::serve::serve_router(writ::api::router(Arc::clone(&w.engine))));
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone the socket"));
    let started = Instant::now();
    let (mut token, mut pages, mut tuples) = (String::new(), 0usize, 0usize);
    let mut seen = std::collections::HashSet::new();
    loop {
        let body = serde_json::json!({"page_size": 100, "continuation_token": token}).to_string();
        write!(
            stream,
            "POST /stores/{STORE}/read HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send a request");
        let page = read_response(&mut reader);
        let listed = page["tuples"].as_array().expect("tuples");
        tuples += listed.len();
        if let Some(first) = listed.first() {
            assert!(seen.insert(first["key"].to_string()), "a page starts where an earlier one did");
        }
        pages += 1;
        token = page["continuation_token"].as_str().expect("a token").to_string();
        if token.is_empty() {
            break;
        }
    }
    let took = started.elapsed();
    assert_eq!(tuples, w.facts.tuples, "HTTP paging reads every tuple once");
    println!(
        "read over HTTP: {tuples} tuples in {pages} pages of 100 in {took:.2?} ({:.0} µs a page, {:.0} tuples/s)",
        took.as_secs_f64() * 1e6 / pages as f64,
        tuples as f64 / took.as_secs_f64()
    );
}

/// One HTTP/1.1 response with a `content-length` body, as JSON; panics on anything but 200.
fn read_response(reader: &mut impl BufRead) -> serde_json::Value {
    let mut line = String::new();
    reader.read_line(&mut line).expect("a status line");
    assert!(line.starts_with("HTTP/1.1 200"), "read answered {line}");
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("a header");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().expect("a content length");
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("the body");
    serde_json::from_slice(&body).expect("a JSON body")
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(2));
    targets = checks, lookup, reads
}

fn main() {
    if let Ok(path) = std::env::var("WRIT_SCALE_EMIT") {
        emit(&scale::size_from_env(), &path);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
