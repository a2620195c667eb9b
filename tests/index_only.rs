//! The index-only in-memory engine (issue 34, item 3) answers as the default in-memory engine:
//! random stores filled by `StoreHandle::load`, then random writes and deletes and a second load,
//! compared on every check, list-objects, list-users and read. Also: a load refuses bad tuples
//! whole, and the changelog it keeps (none, or a ring) says what it no longer has.

use proptest::prelude::*;
use writ::engine::{ListObjectsRequest, ListUsersRequest, ReadFilter, UserFilterSpec, WriteRequest};
use writ::store::{ChangelogRetention, MemoryStore, StoreError};
use writ::tuple::StoredTuple;
use writ::{Engine, EngineConfig, EngineError, Model, Tuple};

/// The reference drive model: nested groups and folders, a wildcard, `and` and `but not`.
const MODEL: &str = include_str!("../schema/drive.fga");

const USERS: usize = 5;
const GROUPS: usize = 4;
const FOLDERS: usize = 4;
const DOCUMENTS: usize = 5;

/// Every tuple the random stores draw from (group and folder nesting only downwards, so no cycles).
fn universe() -> Vec<String> {
    let mut all = Vec::new();
    for g in 0..GROUPS {
        all.extend((0..USERS).map(|u| format!("group:g{g}#member@user:u{u}")));
        all.extend((g + 1..GROUPS).map(|h| format!("group:g{g}#member@group:g{h}#member")));
    }
    for f in 0..FOLDERS {
        all.extend((0..f).map(|p| format!("folder:f{f}#parent@folder:f{p}")));
        all.extend((0..USERS).map(|u| format!("folder:f{f}#viewer@user:u{u}")));
        all.extend((0..USERS).filter(|u| u % 2 == f % 2).map(|u| format!("folder:f{f}#owner@user:u{u}")));
        all.extend((0..GROUPS).map(|g| format!("folder:f{f}#viewer@group:g{g}#member")));
    }
    for d in 0..DOCUMENTS {
        all.extend((0..FOLDERS).map(|f| format!("document:d{d}#parent@folder:f{f}")));
        all.extend((0..USERS).map(|u| format!("document:d{d}#blocked@user:u{u}")));
        all.extend((0..USERS).filter(|u| u % 2 == d % 2).map(|u| format!("document:d{d}#owner@user:u{u}")));
        all.extend((0..GROUPS).map(|g| format!("document:d{d}#editor@group:g{g}#member")));
        all.extend((0..USERS).map(|u| format!("document:d{d}#viewer@user:u{u}")));
        all.push(format!("document:d{d}#viewer@user:*"));
        all.extend((0..GROUPS).map(|g| format!("document:d{d}#viewer@group:g{g}#member")));
    }
    all
}

fn stored(text: &str) -> StoredTuple {
    StoredTuple::new(text.parse::<Tuple>().unwrap())
}

/// A store with the model, on a fresh engine.
fn store_on(engine: &Engine) -> String {
    let id = engine.create_store("index-only").unwrap().id;
    engine.store(&id).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    id
}

/// Everything the two engines must agree on, as text (errors included).
fn answers(engine: &Engine, store_id: &str) -> Vec<String> {
    let store = engine.store(store_id).unwrap();
    let mut out = Vec::new();
    let users: Vec<String> = (0..USERS).map(|u| format!("user:u{u}")).chain(["user:nobody".into()]).collect();
    let objects: Vec<String> = (0..DOCUMENTS)
        .map(|d| format!("document:d{d}"))
        .chain((0..FOLDERS).map(|f| format!("folder:f{f}")))
        .chain(["document:unknown".into()])
        .collect();
    for object in &objects {
        let relations: &[&str] =
            if object.starts_with("document") { &["viewer", "can_view", "can_share"] } else { &["viewer"] };
        for relation in relations {
            for user in &users {
                let request = writ::engine::CheckRequest {
                    object: object.clone(),
                    relation: relation.to_string(),
                    user: user.clone(),
                    ..Default::default()
                };
                out.push(format!("check {object}#{relation}@{user}: {:?}", store.check(&request).map(|a| a.value)));
            }
            for (type_name, relation_filter) in [("user", None), ("group", Some("member"))] {
                let request = ListUsersRequest {
                    object: object.clone(),
                    relation: relation.to_string(),
                    user_filters: vec![UserFilterSpec {
                        type_name: type_name.into(),
                        relation: relation_filter.map(str::to_string),
                    }],
                    ..Default::default()
                };
                let users =
                    store.list_users(&request).map(|a| a.value.iter().map(|s| s.to_string()).collect::<Vec<_>>());
                out.push(format!("list-users {object}#{relation} {type_name}: {users:?}"));
            }
        }
    }
    for user in &users {
        for (object_type, relation) in
            [("document", "viewer"), ("document", "can_view"), ("document", "can_share"), ("folder", "viewer")]
        {
            let request = ListObjectsRequest {
                object_type: object_type.into(),
                relation: relation.into(),
                user: user.clone(),
                ..Default::default()
            };
            out.push(format!(
                "list-objects {object_type}#{relation}@{user}: {:?}",
                store.list_objects(&request).map(|a| a.value)
            ));
        }
    }
    let read = store.read(&ReadFilter::default()).unwrap();
    out.push(format!(
        "read at {}: {:?}",
        read.revision,
        read.value.iter().map(|t| t.tuple.to_string()).collect::<Vec<_>>()
    ));
    out.push(format!("tuples: {}", store.tuple_count().unwrap()));
    out
}

/// Writes `text` if absent, deletes it if present, on one store.
fn toggle(engine: &Engine, store_id: &str, text: &str) {
    let store = engine.store(store_id).unwrap();
    let tuple: Tuple = text.parse().unwrap();
    let present = !store.read(&ReadFilter::default()).unwrap().value.iter().all(|t| t.tuple != tuple);
    let request = if present {
        WriteRequest { deletes: vec![tuple], ..Default::default() }
    } else {
        WriteRequest { writes: vec![StoredTuple::new(tuple)], ..Default::default() }
    };
    store.write(request).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// A store loaded into the index-only engine, then written to, deleted from and loaded
    /// again, answers every question as the same store written to the default engine.
    #[test]
    fn index_only_engine_answers_as_the_default_one(
        initial in proptest::collection::btree_set(0usize..256, 0..120),
        toggles in proptest::collection::vec(0usize..256, 0..30),
        more in proptest::collection::btree_set(0usize..256, 0..40),
    ) {
        let all = universe();
        let pick = |n: usize| all[n % all.len()].as_str();
        let (default, index_only) = (Engine::in_memory(), Engine::in_memory_index_only(EngineConfig::default()));
        let (default_id, index_only_id) = (store_on(&default), store_on(&index_only));
        let initial: Vec<StoredTuple> =
            initial.iter().map(|&n| pick(n)).collect::<std::collections::BTreeSet<_>>().into_iter().map(stored).collect();
        if !initial.is_empty() {
            default.store(&default_id).unwrap().write(WriteRequest { writes: initial.clone(), ..Default::default() }).unwrap();
        }
        index_only.store(&index_only_id).unwrap().load(initial).unwrap();
        prop_assert_eq!(answers(&default, &default_id), answers(&index_only, &index_only_id));
        for &n in &toggles {
            toggle(&default, &default_id, pick(n));
            toggle(&index_only, &index_only_id, pick(n));
        }
        prop_assert_eq!(answers(&default, &default_id), answers(&index_only, &index_only_id));
        // A second load, into a store that holds tuples and has had writes.
        let held = default.store(&default_id).unwrap().read(&ReadFilter::default()).unwrap().value;
        let more: Vec<StoredTuple> = more
            .iter()
            .map(|&n| pick(n))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(stored)
            .filter(|t| held.iter().all(|h| h.tuple != t.tuple))
            .collect();
        if !more.is_empty() {
            default.store(&default_id).unwrap().write(WriteRequest { writes: more.clone(), ..Default::default() }).unwrap();
        }
        index_only.store(&index_only_id).unwrap().load(more).unwrap();
        prop_assert_eq!(answers(&default, &default_id), answers(&index_only, &index_only_id));
    }
}

#[test]
fn a_load_refuses_bad_tuples_whole_and_names_them() {
    let engine = Engine::in_memory_index_only(EngineConfig::default());
    let store_id = store_on(&engine);
    let store = engine.store(&store_id).unwrap();
    let good = stored("document:d1#viewer@user:u1");
    let cases = [
        (stored("document:d1#reader@user:u1"), "invalid tuple `document:d1#reader@user:u1`: relation `document#reader` not found"),
        (
            stored("document:d1#blocked@group:g1#member"),
            "invalid tuple `document:d1#blocked@group:g1#member`: type `group` is not an allowed type restriction for `document#blocked`",
        ),
        (stored("robot:r1#viewer@user:u1"), "invalid tuple `robot:r1#viewer@user:u1`: type `robot` not found"),
    ];
    for (bad, message) in cases {
        let error = store.load(vec![good.clone(), bad]).unwrap_err();
        assert!(matches!(error, EngineError::InvalidTuple { .. }), "{error:?}");
        assert_eq!(error.to_string(), message);
        assert_eq!(
            (store.tuple_count().unwrap(), store.revision().unwrap()),
            (0, 0),
            "a refused load stored something"
        );
    }
    let error = store.load(vec![good.clone(), good.clone()]).unwrap_err();
    assert_eq!(error.to_string(), "duplicate tuple in one request: `document:d1#viewer@user:u1`");
    assert_eq!(store.load(vec![good.clone()]).unwrap(), 1);
    let error = store.load(vec![good]).unwrap_err();
    assert!(matches!(error, EngineError::WriteConflict(_)), "{error:?}");
    assert_eq!((store.tuple_count().unwrap(), store.revision().unwrap()), (1, 1));
}

#[test]
fn a_load_takes_more_tuples_than_one_write_may() {
    let config = EngineConfig { max_tuples_per_write: 10, ..EngineConfig::default() };
    let engine = Engine::in_memory_index_only(config);
    let store_id = store_on(&engine);
    let store = engine.store(&store_id).unwrap();
    let tuples: Vec<StoredTuple> = (0..50).map(|d| stored(&format!("document:d{d}#viewer@user:u{}", d % 3))).collect();
    assert_eq!(store.load(tuples).unwrap(), 1);
    assert_eq!(store.tuple_count().unwrap(), 50);
    let request = ListObjectsRequest {
        object_type: "document".into(),
        relation: "viewer".into(),
        user: "user:u2".into(),
        ..Default::default()
    };
    assert_eq!(store.list_objects(&request).unwrap().value.len(), 16);
}

#[test]
fn the_index_only_engine_keeps_no_changelog_and_says_so() {
    let engine = Engine::in_memory_index_only(EngineConfig::default());
    let store_id = store_on(&engine);
    let store = engine.store(&store_id).unwrap();
    store.load(vec![stored("document:d1#viewer@user:u1")]).unwrap();
    let error = store.changes(None, None, 10).unwrap_err();
    assert!(matches!(error, EngineError::Store(StoreError::NotKept(_))), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!(
            "the changes of store `{store_id}` after the start are no longer all kept: this in-memory store is index-only and keeps no tuples and no changelog"
        )
    );
    // Write times are not kept either: the store's creation time stands in, a true lower bound.
    let created = engine.get_store(&store_id).unwrap().created_at_ms;
    assert_eq!(store.written_at(&["document:d1#viewer@user:u1".parse().unwrap()]).unwrap(), vec![created]);
}

#[test]
fn a_bounded_changelog_serves_only_reads_it_holds_whole() {
    let backend = MemoryStore::index_only(ChangelogRetention::Last(3));
    let engine = Engine::open(Box::new(backend), EngineConfig::default()).unwrap();
    let store_id = store_on(&engine);
    let store = engine.store(&store_id).unwrap();
    // Revision 1: five entries, of which the ring keeps the last three.
    let first: Vec<StoredTuple> = (0..5).map(|d| stored(&format!("document:d{d}#viewer@user:u1"))).collect();
    store.load(first).unwrap();
    assert!(matches!(store.changes(None, None, 10), Err(EngineError::Store(StoreError::NotKept(_)))));
    let all = store.changes(Some(writ::engine::ChangeCursor { revision: 1, seq: 1 }), None, 10).unwrap();
    let objects: Vec<String> = all.iter().map(|c| c.tuple.tuple.object.to_string()).collect();
    assert_eq!(objects, ["document:d2", "document:d3", "document:d4"]);
    // Revision 2: one folder entry drops the oldest document entry.
    store.write(WriteRequest { writes: vec![stored("folder:f1#viewer@user:u1")], ..Default::default() }).unwrap();
    let after = writ::engine::ChangeCursor { revision: 1, seq: 1 };
    assert!(matches!(store.changes(Some(after), None, 10), Err(EngineError::Store(StoreError::NotKept(_)))));
    let after = writ::engine::ChangeCursor { revision: 1, seq: 2 };
    let documents = store.changes(Some(after), Some("document"), 10).unwrap();
    let objects: Vec<String> = documents.iter().map(|c| c.tuple.tuple.object.to_string()).collect();
    assert_eq!(objects, ["document:d3", "document:d4"]);
    let folders = store.changes(Some(after), Some("folder"), 10).unwrap();
    assert_eq!(folders.len(), 1);
    assert_eq!(folders[0].cursor, writ::engine::ChangeCursor { revision: 2, seq: 0 });
    // The tuples themselves live in the index: read serves them.
    assert_eq!(store.read(&ReadFilter::default()).unwrap().value.len(), 6);
}
