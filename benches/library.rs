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
    define viewer: [user, group#member] or viewer from parent
";

const USERS: usize = 10_000;
const LEVELS: [usize; 3] = [100, 300, 600];
const DEPTH: u32 = 5;
const FANOUT: usize = 4;
const DOCUMENTS: usize = 100_000;
const CHECKS: usize = 100_000;

/// A small linear congruential generator, so the workload is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// A grant: a user or a group's members.
#[derive(Clone, Copy)]
enum Grantee {
    User(usize),
    Group(usize),
}

struct Workload {
    tuples: Vec<StoredTuple>,
    /// (document, user) pairs.
    checks: Vec<(usize, usize)>,
}

fn tuple(object: String, relation: &str, subject: String) -> StoredTuple {
    StoredTuple::new(Tuple::from_parts(&object, relation, &subject).expect("bench tuples are well-formed"))
}

fn workload() -> Workload {
    let mut rng = Lcg(0x5eed_0034);
    let mut tuples = Vec::new();
    // Groups: each below the top level in one or two groups of the level above.
    let starts = [0, LEVELS[0], LEVELS[0] + LEVELS[1]];
    let groups = LEVELS.iter().sum::<usize>();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for level in 1..LEVELS.len() {
        for group in starts[level]..starts[level] + LEVELS[level] {
            let first = starts[level - 1] + rng.below(LEVELS[level - 1]);
            let mut parents = vec![first];
            if rng.below(2) == 1 {
                let second = starts[level - 1] + rng.below(LEVELS[level - 1]);
                if second != first {
                    parents.push(second);
                }
            }
            for parent in parents {
                children[parent].push(group);
                tuples.push(tuple(format!("group:g{parent}"), "member", format!("group:g{group}#member")));
            }
        }
    }
    // Users: each directly in one to three groups.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
    for user in 0..USERS {
        let mut chosen = Vec::new();
        for _ in 0..1 + rng.below(3) {
            let group = rng.below(groups);
            if !chosen.contains(&group) {
                chosen.push(group);
                members[group].push(user);
                tuples.push(tuple(format!("group:g{group}"), "member", format!("user:u{user}")));
            }
        }
    }
    // Folders: a tree 5 deep, branching 4, numbered breadth-first (folder 0 is the root).
    let folders: usize = (0..=DEPTH).map(|d| FANOUT.pow(d)).sum();
    let first_leaf = folders - FANOUT.pow(DEPTH);
    for folder in 1..folders {
        tuples.push(tuple(format!("folder:f{folder}"), "parent", format!("folder:f{}", (folder - 1) / FANOUT)));
    }
    let grant = |rng: &mut Lcg| {
        if rng.below(10) < 8 {
            Grantee::Group(rng.below(groups))
        } else {
            Grantee::User(rng.below(USERS))
        }
    };
    let subject = |grantee: Grantee| match grantee {
        Grantee::User(user) => format!("user:u{user}"),
        Grantee::Group(group) => format!("group:g{group}#member"),
    };
    let mut folder_grants: Vec<Vec<Grantee>> = vec![Vec::new(); folders];
    for (folder, grants) in folder_grants.iter_mut().enumerate() {
        for _ in 0..rng.below(3) {
            let grantee = grant(&mut rng);
            let text = subject(grantee);
            if !grants.iter().any(|&g| subject(g) == text) {
                grants.push(grantee);
                tuples.push(tuple(format!("folder:f{folder}"), "viewer", text));
            }
        }
    }
    let mut document_folder = Vec::with_capacity(DOCUMENTS);
    let mut document_grant = Vec::with_capacity(DOCUMENTS);
    for document in 0..DOCUMENTS {
        let folder = first_leaf + rng.below(FANOUT.pow(DEPTH));
        document_folder.push(folder);
        tuples.push(tuple(format!("document:d{document}"), "parent", format!("folder:f{folder}")));
        let granted = (rng.below(10) == 0).then(|| grant(&mut rng));
        if let Some(grantee) = granted {
            tuples.push(tuple(format!("document:d{document}"), "viewer", subject(grantee)));
        }
        document_grant.push(granted);
    }
    // Checks: even ones a member of something granted on the document's chain, odd ones uniform.
    let mut checks = Vec::with_capacity(CHECKS);
    while checks.len() < CHECKS {
        let document = rng.below(DOCUMENTS);
        if checks.len() % 2 == 1 {
            checks.push((document, rng.below(USERS)));
            continue;
        }
        let mut chain: Vec<Grantee> = document_grant[document].into_iter().collect();
        let mut folder = Some(document_folder[document]);
        while let Some(f) = folder {
            chain.extend(&folder_grants[f]);
            folder = (f > 0).then(|| (f - 1) / FANOUT);
        }
        if chain.is_empty() {
            continue;
        }
        let user = match chain[rng.below(chain.len())] {
            Grantee::User(user) => Some(user),
            Grantee::Group(group) => {
                // A member of the group or of a group below it.
                let mut below = vec![group];
                let mut at = 0;
                while at < below.len() {
                    below.extend(&children[below[at]]);
                    at += 1;
                }
                let with_members: Vec<usize> = below.into_iter().filter(|&g| !members[g].is_empty()).collect();
                (!with_members.is_empty()).then(|| {
                    let group = with_members[rng.below(with_members.len())];
                    members[group][rng.below(members[group].len())]
                })
            }
        };
        if let Some(user) = user {
            checks.push((document, user));
        }
    }
    Workload { tuples, checks }
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
    let Workload { tuples, checks } = workload();
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
