//! Writ as a library (issue 34, items 2 and 3): prepared checks against the string API, on a
//! seeded 134k-tuple workload (10,000 users; 1,000 groups in three levels; a folder tree 5 deep
//! with branching 4; 100,000 documents; ≈11.4k `viewer` grants; 100,000 checks, about half
//! allowed), on the index-only in-memory engine (`Engine::in_memory_index_only`, filled by
//! `StoreHandle::load`). Criterion times one check per iteration; besides, one timed pass over all
//! 100,000 checks prints p50 and p99 per check, the lookup (every document a user may view) prints
//! its median, and the load prints its time. Memory is measured for both in-memory modes, each in
//! a fresh child process (so one mode never reuses memory the other freed): resident memory after
//! the load minus before it, the workload's own tuples held throughout (the load takes a copy, so
//! its transient strings count against it). The default mode loads as a server receives tuples
//! (`StoreHandle::write`, 50k per request) and is measured after `Engine::sync`, with both index
//! copies complete. Runs on the pure engine: `cargo bench --bench library --no-default-features`.

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::panic,
    reason = "a bench binary fails loudly on bad setup; criterion macros generate undocumented items"
)]

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::{Duration, Instant};
use writ::engine::{CheckRequest, ObjectHandle, SubjectHandle, WriteRequest};
use writ::tuple::StoredTuple;
use writ::{Engine, EngineConfig, Model, Tuple};

#[path = "support/issue34.rs"]
mod issue34;

use issue34::{MODEL, USERS};

const CHECKS: usize = 100_000;

fn tuple(object: String, relation: &str, subject: String) -> StoredTuple {
    StoredTuple::new(Tuple::from_parts(&object, relation, &subject).expect("bench tuples are well-formed"))
}

/// Resident memory in bytes, from `/proc/self/statm` (0 where there is none).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The two in-memory modes an embedder picks from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `Engine::in_memory`: the `MemoryStore` keeps every tuple and the changelog beside the index.
    Default,
    /// `Engine::in_memory_index_only`: the index is the only copy.
    IndexOnly,
}

/// Set in the child process that measures one mode's memory.
const MEMORY_CHILD: &str = "WRIT_LIBRARY_BENCH_MEMORY";

/// An engine of `mode` holding `tuples`, with its store's id, and how long that took.
fn load(mode: Mode, tuples: &[StoredTuple]) -> (Engine, String, Duration) {
    let started = Instant::now();
    let config = EngineConfig { max_tuples_per_write: 50_000, ..EngineConfig::default() };
    let engine = match mode {
        Mode::Default => Engine::in_memory_with(config),
        Mode::IndexOnly => Engine::in_memory_index_only(config),
    };
    let store_id = engine.create_store("library").expect("create store").id;
    let store = engine.store(&store_id).expect("store");
    store.write_model(Model::parse_dsl(MODEL).expect("model parses")).expect("write model");
    match mode {
        Mode::Default => {
            for chunk in tuples.chunks(50_000) {
                store.write(WriteRequest { writes: chunk.to_vec(), ..Default::default() }).expect("write tuples");
            }
        }
        Mode::IndexOnly => {
            store.load(tuples.to_vec()).expect("load tuples");
        }
    }
    let elapsed = started.elapsed();
    (engine, store_id, elapsed)
}

/// In the child process: loads `mode`, prints the resident memory it added, and exits.
fn measure_memory(mode: Mode, tuples: &[StoredTuple]) -> ! {
    let before = resident_bytes();
    let (engine, _, _) = load(mode, tuples);
    engine.sync();
    let added = resident_bytes().saturating_sub(before);
    println!("{added}");
    drop(engine);
    std::process::exit(0)
}

/// The resident memory `mode`'s load adds, measured in a fresh run of this binary.
fn memory_in_child(mode: Mode) -> u64 {
    let output = std::process::Command::new(std::env::current_exe().expect("bench binary"))
        .args(std::env::args().skip(1))
        .env(MEMORY_CHILD, format!("{mode:?}"))
        .output()
        .expect("memory child runs");
    assert!(output.status.success(), "memory child failed: {}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().last().and_then(|line| line.trim().parse().ok()).expect("memory child prints its figure")
}

fn library(c: &mut Criterion) {
    let issue34::Workload { tuples, checks } = issue34::workload(CHECKS, tuple);
    let tuple_count = tuples.len();
    match std::env::var(MEMORY_CHILD).as_deref() {
        Ok("Default") => measure_memory(Mode::Default, &tuples),
        Ok("IndexOnly") => measure_memory(Mode::IndexOnly, &tuples),
        _ => {}
    }
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    for mode in [Mode::Default, Mode::IndexOnly] {
        let added = memory_in_child(mode);
        println!(
            "library: {mode:?} mode: resident memory +{:.1} MiB after loading {tuple_count} tuples ({:.0} B/tuple)",
            mib(added),
            added as f64 / tuple_count as f64
        );
    }
    let (_, _, default_load) = load(Mode::Default, &tuples);
    let (engine, store_id, index_only_load) = load(Mode::IndexOnly, &tuples);
    println!(
        "library: load of {tuple_count} tuples: index-only (StoreHandle::load) {:.2} s; default (writes of 50k) {:.2} s",
        index_only_load.as_secs_f64(),
        default_load.as_secs_f64()
    );
    drop(tuples);
    let store = engine.store(&store_id).expect("store");

    // Resolve every check once; the string requests are built ahead too, so both sides time only the check.
    let prepared = store.prepare("document", "viewer", "user").expect("prepare");
    let handles: Vec<(ObjectHandle, SubjectHandle)> = checks
        .iter()
        .map(|&(d, u)| {
            (
                store.object(&format!("document:d{d}")).expect("object"),
                store.subject(&format!("user:u{u}")).expect("subject"),
            )
        })
        .collect();
    let requests: Vec<CheckRequest> = checks
        .iter()
        .map(|&(d, u)| CheckRequest {
            object: format!("document:d{d}"),
            relation: "viewer".into(),
            user: format!("user:u{u}"),
            ..Default::default()
        })
        .collect();

    // One timed pass each, every answer compared.
    let mut prepared_times = Vec::with_capacity(CHECKS);
    let mut string_times = Vec::with_capacity(CHECKS);
    let mut allowed = 0;
    for ((object, subject), request) in handles.iter().zip(&requests) {
        let start = Instant::now();
        let answer = prepared.check(&store, object, subject).expect("prepared check");
        prepared_times.push(start.elapsed());
        let start = Instant::now();
        let expected = store.check(request).expect("string check").value;
        string_times.push(start.elapsed());
        assert_eq!(answer, expected, "{request:?}");
        allowed += usize::from(answer);
    }
    prepared_times.sort_unstable();
    string_times.sort_unstable();
    let (p50, p99) = (percentile(&prepared_times, 0.5), percentile(&prepared_times, 0.99));
    let (s50, s99) = (percentile(&string_times, 0.5), percentile(&string_times, 0.99));
    println!(
        "library: {CHECKS} checks, {:.1}% allowed; prepared p50 {p50:?} p99 {p99:?}; string p50 {s50:?} p99 {s99:?}; string/prepared p50 {:.2}x",
        100.0 * allowed as f64 / CHECKS as f64,
        s50.as_secs_f64() / p50.as_secs_f64()
    );

    // Lookups: every document a user may view, for 200 users spread over the range.
    let users: Vec<SubjectHandle> =
        (0..200).map(|i| store.subject(&format!("user:u{}", i * (USERS / 200))).expect("subject")).collect();
    let mut lookup_times = Vec::with_capacity(users.len());
    let mut found = 0;
    for user in &users {
        let start = Instant::now();
        let ids = prepared.list_object_ids(&store, user).expect("lookup");
        lookup_times.push(start.elapsed());
        found += ids.len();
    }
    lookup_times.sort_unstable();
    println!(
        "library: lookup of 200 users' documents: median {:?}, p99 {:?}, {:.0} documents each on average",
        percentile(&lookup_times, 0.5),
        percentile(&lookup_times, 0.99),
        found as f64 / users.len() as f64
    );

    let mut group = c.benchmark_group("library");
    let mut next = 0;
    group.bench_function(format!("check/prepared/n={tuple_count}"), |b| {
        b.iter(|| {
            let (object, subject) = &handles[next % CHECKS];
            next += 1;
            black_box(prepared.check(&store, object, subject).expect("prepared check"))
        })
    });
    let mut next = 0;
    group.bench_function(format!("check/string/n={tuple_count}"), |b| {
        b.iter(|| {
            let request = &requests[next % CHECKS];
            next += 1;
            black_box(store.check(request).expect("string check").value)
        })
    });
    let mut next = 0;
    group.bench_function(format!("lookup/ids/n={tuple_count}"), |b| {
        b.iter(|| {
            let user = &users[next % users.len()];
            next += 1;
            black_box(prepared.list_object_ids(&store, user).expect("lookup").len())
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(5));
    targets = library
}
criterion_main!(benches);
