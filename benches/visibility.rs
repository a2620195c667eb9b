//! Permission-aware retrieval at scale (DESIGN §11) over the seeded workload of
//! `support/scale.rs` (`schema/scale.fga`, about 1M tuples; `WRIT_SCALE=10m` for 10M), through
//! the `Engine` facade:
//!
//! - `visibility/lister`: the visible count of `user:lister`, who sees every document of one
//!   folder tree (about 107k at 1M) through five levels of `viewer from parent`; past `max_ids`,
//!   so the answer is a count and a strategy, no names.
//! - `memberships/nested_8`: the memberships of a user in one group eight nestings deep.
//! - `acl_tag_changes/join_group`: the tag delta after adding a user to a group that views a
//!   level-1 folder (about 13k documents below it at 1M): a membership change, so no tags change.
//! - `acl_tag_changes/grant_folder`: the tag delta after granting that group on the folder, which
//!   retags every document below it, each with all its tags (its root folder's ~1,700 viewers
//!   included): a delta costs what it hands out.
//!
//! Every answer is checked once before timing.

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::panic,
    reason = "a bench binary fails loudly on bad setup; criterion macros generate undocumented items"
)]

#[path = "support/scale.rs"]
mod scale;

use criterion::{criterion_group, Criterion};
use std::hint::black_box;
use std::time::{Duration, Instant};
use writ::engine::{AclTagChanges, AclTagsRequest, ChangeCursor, VisibilityRequest, VisibilityStrategy, WriteRequest};
use writ::store::{MemoryStore, StoreRecord, StoredTuple, TupleStore, WriteBatch};
use writ::{Engine, EngineConfig, Model, Tuple};

const SEED: u64 = 42;
const STORE: &str = "01JVISIBILITYSTORE00000000";
/// The group the delta benches grant and join, on this folder.
const GROUP: &str = "group:retrieval";
const FOLDER: &str = "folder:f1_0";

struct Workload {
    engine: Engine,
    facts: scale::Facts,
}

fn build() -> Workload {
    let size = scale::size_from_env();
    let started = Instant::now();
    let mut tuples = Vec::new();
    let facts = scale::generate(&size, SEED, |object, relation, user| {
        tuples.push(StoredTuple::new(Tuple::from_parts(object, relation, user).expect("scale tuples are well-formed")));
    });
    let backend = MemoryStore::new();
    let record = StoreRecord { id: STORE.into(), name: "visibility".into(), created_at_ms: 0, updated_at_ms: 0 };
    backend.create_store(&record).expect("create the store");
    let model = Model::parse_dsl(&scale::model_text()).expect("schema/scale.fga is valid");
    let json = serde_json::to_string(&model.to_json()).expect("the model serializes");
    backend.write_model(STORE, "01JVISIBILITYMODEL00000000", &json).expect("write the model");
    for chunk in tuples.chunks(100_000) {
        backend.write(STORE, &WriteBatch::new(&[], chunk, 0)).expect("write the tuples");
    }
    drop(tuples);
    let engine = Engine::open(Box::new(backend), EngineConfig::default()).expect("open the engine");
    println!("scale {}: {} tuples loaded in {:.1?}", size.name, facts.tuples, started.elapsed());
    Workload { engine, facts }
}

fn lister() -> VisibilityRequest {
    VisibilityRequest {
        principals: vec!["user:lister".into()],
        relation: "viewer".into(),
        object_type: "document".into(),
        max_ids: 10_000,
        ..VisibilityRequest::default()
    }
}

fn tags_request() -> AclTagsRequest {
    AclTagsRequest { object_type: "document".into(), relation: "viewer".into(), model_id: None }
}

fn write(engine: &Engine, writes: &[(&str, &str, &str)], deletes: &[(&str, &str, &str)]) -> u64 {
    let tuple =
        |&(object, relation, user): &(&str, &str, &str)| Tuple::from_parts(object, relation, user).expect("a tuple");
    let request = WriteRequest {
        writes: writes.iter().map(tuple).map(StoredTuple::new).collect(),
        deletes: deletes.iter().map(tuple).collect(),
        ..WriteRequest::default()
    };
    engine.store(STORE).expect("the store").write(request).expect("the write")
}

/// The delta after `revision`, which must fit one page; returns how many objects it names and
/// how many tags they carry in all.
fn delta(engine: &Engine, revision: u64) -> (usize, usize) {
    let after = ChangeCursor { revision, seq: u32::MAX };
    match engine.store(STORE).expect("the store").acl_tag_changes(&tags_request(), after).expect("the delta") {
        AclTagChanges::Delta { objects, next: None, .. } => {
            (objects.len(), objects.iter().map(|object| object.tags.len()).sum())
        }
        other => panic!("expected one page of deltas, got {other:?}"),
    }
}

fn retrieval(c: &mut Criterion) {
    let w = build();
    let n = w.facts.tuples;
    let engine = &w.engine;

    let answer = engine.store(STORE).expect("the store").visibility(&lister()).expect("visibility").value;
    assert_eq!(answer.visible, w.facts.lister_documents as u64, "the lister sees the documents of root 0");
    assert_eq!(answer.strategy, VisibilityStrategy::AclTags, "document#viewer of scale.fga has exact tags");

    let nested = "user:pn0".to_string();
    let memberships = engine.store(STORE).expect("the store").memberships(&nested, None).expect("memberships").value;
    let groups = memberships.iter().filter(|m| m.starts_with("group:")).count();
    assert_eq!(groups, scale::GROUP_LEVELS as usize, "one group per level: {memberships:?}");

    let mut group = c.benchmark_group("retrieval");
    group.bench_function(format!("visibility/lister/visible={}/n={n}", answer.visible), |b| {
        b.iter(|| {
            black_box(engine.store(STORE).expect("the store").visibility(black_box(&lister())).expect("visibility"))
        })
    });
    group.bench_function(format!("memberships/nested_8/n={n}"), |b| {
        b.iter(|| {
            black_box(
                engine.store(STORE).expect("the store").memberships(black_box(&nested), None).expect("memberships"),
            )
        })
    });

    // Granting the group on a level-1 folder retags every document below it.
    let grant = [(FOLDER, "viewer", "group:retrieval#member")];
    let before = engine.store(STORE).expect("the store").revision().expect("revision");
    write(engine, &grant, &[]);
    let (retagged, tags) = delta(engine, before);
    assert!(retagged > 5_000, "the folder holds thousands of documents, got {retagged}");
    // Each document below carries its root folder's grants too: about 1,700 probe users view each
    // root, so the delta's size (and cost) is its objects times that.
    group.bench_function(format!("acl_tag_changes/grant_folder/objects={retagged}/tags={tags}/n={n}"), |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let revoked = write(engine, &[], &grant);
                write(engine, &grant, &[]);
                let started = Instant::now();
                black_box(delta(engine, revoked));
                total += started.elapsed();
            }
            total
        })
    });
    // Joining the group changes memberships only: the delta names nothing.
    let mut joiner = 0u64;
    let mut join = || {
        joiner += 1;
        let user = format!("user:joiner{joiner}");
        let before = engine.store(STORE).expect("the store").revision().expect("revision");
        write(engine, &[(GROUP, "member", &user)], &[]);
        before
    };
    assert_eq!(delta(engine, join()), (0, 0), "a membership change retags nothing");
    group.bench_function(format!("acl_tag_changes/join_group/visible={retagged}/n={n}"), |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let before = join();
                let started = Instant::now();
                black_box(delta(engine, before));
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(2));
    targets = retrieval
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
