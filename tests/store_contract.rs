//! Contract tests of the store layer: each property of `TupleStore` is its own test, run against
//! every backend (`store_contract::contract::<property>::<backend>`); then sled reopen/durability
//! tests, and a model-based property test of `SledStore` against `MemoryStore`.

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use writ::store::{
    ChangeCursor, ChangeOperation, ChangeRecord, MemoryStore, PlannedAt, SledStore, StoreError, StoreRecord,
    StoredTuple, TupleStore, WriteBatch, MAX_PLAN_LAG,
};
use writ::tuple::{Context, Tuple, TupleCondition};

use crate::postgres_store::FreshDatabase;
use crate::skipped::postgres_url;
use crate::support::TempDir;

/// A parsed, unconditioned, never-expiring tuple.
pub(crate) fn st(s: &str) -> StoredTuple {
    StoredTuple::new(s.parse::<Tuple>().unwrap())
}

pub(crate) fn record(id: &str) -> StoreRecord {
    StoreRecord { id: id.to_string(), name: format!("name of {id}"), created_at_ms: 1, updated_at_ms: 2 }
}

/// A fresh, empty store layer of one backend, with whatever it stands on (a database) kept alive
/// until the test ends; the store drops first.
struct Fresh {
    store: Box<dyn TupleStore>,
    _database: Option<FreshDatabase>,
}

impl Fresh {
    fn memory() -> Self {
        Fresh { store: Box::new(MemoryStore::new()), _database: None }
    }

    fn sled() -> Self {
        Fresh { store: Box::new(SledStore::temporary().unwrap()), _database: None }
    }

    fn postgres() -> Self {
        let database = FreshDatabase::new(&postgres_url());
        Fresh { store: Box::new(database.open()), _database: Some(database) }
    }
}

/// One `#[test]` per backend for each property, named `store_contract::<property>::<backend>`, so
/// one broken property never hides the others. Every property lists every backend; a backend that
/// cannot meet one is written `backend("unsupported: why")` and its test is then reported as
/// ignored with that reason, never left out. `postgres` is ignored (and says so) when the build
/// found no `WRIT_TEST_POSTGRES_URL` (see `skipped.rs`).
macro_rules! contract_tests {
    ($($property:ident: $($backend:ident $(($why:literal))?),+;)*) => {
        $(
            mod $property {
                $(contract_test!($property, $backend $(, $why)?);)+
            }
        )*
    };
}

macro_rules! contract_test {
    ($property:ident, postgres) => {
        #[test]
        #[cfg_attr(
            writ_no_postgres,
            ignore = "WRIT_TEST_POSTGRES_URL is not set (start a server with .ci/postgres.sh)"
        )]
        fn postgres() {
            super::super::$property(&*super::super::Fresh::postgres().store);
        }
    };
    ($property:ident, $backend:ident) => {
        #[test]
        fn $backend() {
            super::super::$property(&*super::super::Fresh::$backend().store);
        }
    };
    ($property:ident, $backend:ident, $why:literal) => {
        #[test]
        #[ignore = $why]
        fn $backend() {
            super::super::$property(&*super::super::Fresh::$backend().store);
        }
    };
}

mod contract {
    contract_tests! {
        stores_are_created_listed_and_fetched: memory, sled, postgres;
        an_unknown_store_is_not_found_by_any_call: memory, sled, postgres;
        each_write_and_delete_bumps_the_revision_by_one: memory, sled, postgres;
        stores_are_isolated: memory, sled, postgres;
        write_times_are_those_of_the_write_that_stored_each_tuple: memory, sled, postgres;
        changes_list_every_write_and_delete_in_order: memory, sled, postgres;
        changes_page_from_any_cursor_at_any_size: memory, sled, postgres;
        changes_filter_by_object_type: memory, sled, postgres;
        changes_by_type_page_over_many_interleaved_types: memory, sled, postgres;
        conditions_and_expiry_round_trip: memory, sled, postgres;
        models_are_appended_per_store: memory, sled, postgres;
        assertions_are_kept_per_model_and_store: memory, sled, postgres;
        a_deleted_store_is_gone_and_its_id_reusable: memory, sled, postgres;
        a_conditional_write_lands_only_while_its_plan_holds: memory, sled, postgres;
    }
}

/// The first writes of store `01A` (at times 100, 200, 300, 400).
fn first_writes() -> Vec<StoredTuple> {
    vec![st("doc:1#viewer@user:anne"), st("doc:1#viewer@group:eng#member"), st("folder:x#owner@user:*")]
}

/// Stores `01A`, `01B` and `01C`; in `01A` revisions 1–4 (write three tuples; delete one and write
/// one; an empty write; delete the one written), in `01B` one tuple at revision 1.
fn with_history(s: &dyn TupleStore) {
    for id in ["01A", "01B", "01C"] {
        s.create_store(&record(id)).unwrap();
    }
    s.write("01A", &WriteBatch::new(&[], &first_writes(), 100)).unwrap();
    s.write("01B", &WriteBatch::new(&[], &[st("doc:9#viewer@user:bob")], 5)).unwrap();
    s.write("01A", &WriteBatch::new(&[st("doc:1#viewer@user:anne")], &[st("doc:2#viewer@user:anne")], 200)).unwrap();
    s.write("01A", &WriteBatch::new(&[], &[], 300)).unwrap();
    s.write("01A", &WriteBatch::new(&[st("doc:2#viewer@user:anne")], &[], 400)).unwrap();
}

fn stores_are_created_listed_and_fetched(s: &dyn TupleStore) {
    assert_eq!(s.list_stores().unwrap(), vec![]);
    assert_eq!(s.get_store("01B").unwrap(), None);
    s.create_store(&record("01B")).unwrap();
    s.create_store(&record("01A")).unwrap();
    s.create_store(&record("01C")).unwrap();
    assert_eq!(s.create_store(&record("01A")), Err(StoreError::StoreExists("01A".into())));
    assert_eq!(s.get_store("01B").unwrap(), Some(record("01B")));
    let ids: Vec<String> = s.list_stores().unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["01A", "01B", "01C"]);
}

fn an_unknown_store_is_not_found_by_any_call(s: &dyn TupleStore) {
    s.create_store(&record("01A")).unwrap();
    let nf = || StoreError::StoreNotFound("nope".into());
    assert_eq!(s.write("nope", &WriteBatch::new(&[], &[st("doc:1#viewer@user:anne")], 0)), Err(nf()));
    assert_eq!(s.tuples("nope"), Err(nf()));
    assert_eq!(s.revision("nope"), Err(nf()));
    assert_eq!(s.changes("nope", None, None, 10), Err(nf()));
    assert_eq!(s.write_model("nope", "m", "{}"), Err(nf()));
    assert_eq!(s.models("nope"), Err(nf()));
    assert_eq!(s.write_assertions("nope", "m", "[]"), Err(nf()));
    assert_eq!(s.assertions("nope", "m"), Err(nf()));
    assert_eq!(s.delete_store("nope"), Err(nf()));
    let ask: Vec<Tuple> = vec!["doc:1#viewer@user:anne".parse().unwrap()];
    assert_eq!(s.written_at("nope", &ask), Err(nf()));
}

fn each_write_and_delete_bumps_the_revision_by_one(s: &dyn TupleStore) {
    let a = "01A";
    s.create_store(&record(a)).unwrap();
    assert_eq!(s.revision(a).unwrap(), 0);
    assert_eq!(s.tuples(a).unwrap(), vec![]);
    let w1 = first_writes();
    assert_eq!(s.write(a, &WriteBatch::new(&[], &w1, 100)).unwrap(), 1);
    assert_eq!(s.revision(a).unwrap(), 1);
    let mut got = s.tuples(a).unwrap();
    let mut want = w1.clone();
    let key = |t: &StoredTuple| t.tuple.to_string();
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want);
    // A delete and a write in the same request: the revision moves exactly once.
    let w2 = vec![st("doc:2#viewer@user:anne")];
    assert_eq!(s.write(a, &WriteBatch::new(&[st("doc:1#viewer@user:anne")], &w2, 200)).unwrap(), 2);
    let got: Vec<String> = s.tuples(a).unwrap().iter().map(|t| t.tuple.to_string()).collect();
    assert_eq!(got, ["doc:1#viewer@group:eng#member", "doc:2#viewer@user:anne", "folder:x#owner@user:*"]);
    assert_eq!(s.write(a, &WriteBatch::new(&[], &[], 300)).unwrap(), 3, "an empty write still bumps the revision");
    assert_eq!(s.write(a, &WriteBatch::new(&[st("doc:2#viewer@user:anne")], &[], 400)).unwrap(), 4);
    assert_eq!(s.revision(a).unwrap(), 4);
    assert_eq!(s.tuples(a).unwrap().len(), 2);
}

fn stores_are_isolated(s: &dyn TupleStore) {
    let (a, b) = ("01A", "01B");
    s.create_store(&record(a)).unwrap();
    s.create_store(&record(b)).unwrap();
    s.write(a, &WriteBatch::new(&[], &first_writes(), 100)).unwrap();
    assert_eq!(s.tuples(b).unwrap(), vec![]);
    assert_eq!(s.revision(b).unwrap(), 0);
    assert_eq!(s.changes(b, None, None, 100).unwrap(), vec![]);
    assert_eq!(s.write(b, &WriteBatch::new(&[], &[st("doc:9#viewer@user:bob")], 5)).unwrap(), 1);
    assert_eq!(s.tuples(b).unwrap(), vec![st("doc:9#viewer@user:bob")]);
    assert!(!s.tuples(a).unwrap().contains(&st("doc:9#viewer@user:bob")));
}

fn write_times_are_those_of_the_write_that_stored_each_tuple(s: &dyn TupleStore) {
    with_history(s);
    let ask: Vec<Tuple> = ["doc:1#viewer@group:eng#member", "folder:x#owner@user:*", "doc:2#viewer@user:anne"]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(s.written_at("01A", &ask).unwrap(), vec![Some(100), Some(100), None]);
}

fn changes_list_every_write_and_delete_in_order(s: &dyn TupleStore) {
    with_history(s);
    let summary: Vec<(u64, u32, ChangeOperation, String, i64)> = s
        .changes("01A", None, None, 100)
        .unwrap()
        .iter()
        .map(|c| (c.cursor.revision, c.cursor.seq, c.operation, c.tuple.tuple.to_string(), c.timestamp_ms))
        .collect();
    use ChangeOperation::{Delete, Write};
    assert_eq!(
        summary,
        vec![
            (1, 0, Write, "doc:1#viewer@user:anne".to_string(), 100),
            (1, 1, Write, "doc:1#viewer@group:eng#member".to_string(), 100),
            (1, 2, Write, "folder:x#owner@user:*".to_string(), 100),
            (2, 0, Delete, "doc:1#viewer@user:anne".to_string(), 200),
            (2, 1, Write, "doc:2#viewer@user:anne".to_string(), 200),
            (4, 0, Delete, "doc:2#viewer@user:anne".to_string(), 400),
        ]
    );
}

fn changes_page_from_any_cursor_at_any_size(s: &dyn TupleStore) {
    with_history(s);
    let a = "01A";
    let all = s.changes(a, None, None, 100).unwrap();
    assert_eq!(all.len(), 6);
    for page in 1..=7 {
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let chunk = s.changes(a, after, None, page).unwrap();
            assert!(chunk.len() <= page);
            let Some(last) = chunk.last() else { break };
            after = Some(last.cursor);
            pages.extend(chunk);
        }
        assert_eq!(pages, all, "page size {page}");
    }
    assert_eq!(s.changes(a, None, None, 0).unwrap(), vec![]);
    let after_first = s.changes(a, Some(ChangeCursor { revision: 1, seq: 0 }), None, 2).unwrap();
    assert_eq!(after_first, all[1..3].to_vec());
    let after_rev1 = s.changes(a, Some(ChangeCursor { revision: 1, seq: u32::MAX }), None, 100).unwrap();
    assert_eq!(after_rev1, all[3..].to_vec());
    assert_eq!(s.changes(a, all.last().map(|c| c.cursor), None, 100).unwrap(), vec![]);
}

fn changes_filter_by_object_type(s: &dyn TupleStore) {
    with_history(s);
    let a = "01A";
    let all = s.changes(a, None, None, 100).unwrap();
    let docs = s.changes(a, None, Some("doc"), 100).unwrap();
    assert_eq!(docs.len(), 5);
    assert!(docs.iter().all(|c| c.tuple.tuple.object.object_type == "doc"));
    let folders = s.changes(a, None, Some("folder"), 100).unwrap();
    assert_eq!(folders, vec![all[2].clone()]);
    assert_eq!(s.changes(a, Some(all[2].cursor), Some("folder"), 100).unwrap(), vec![]);
    assert_eq!(s.changes(a, Some(all[0].cursor), Some("doc"), 2).unwrap(), vec![all[1].clone(), all[3].clone()]);
    assert_eq!(s.changes(a, None, Some("nothing"), 100).unwrap(), vec![]);
    // Paging by type, from any cursor (also one of another type's entry), reassembles exactly the
    // entries of that type after it.
    for ty in ["doc", "folder"] {
        for start in std::iter::once(None).chain(all.iter().map(|c| Some(c.cursor))) {
            let expected: Vec<_> = all
                .iter()
                .filter(|c| c.tuple.tuple.object.object_type == ty && start.is_none_or(|s| c.cursor > s))
                .cloned()
                .collect();
            for page in 1..=3 {
                let (mut pages, mut after) = (Vec::new(), start);
                loop {
                    let chunk = s.changes(a, after, Some(ty), page).unwrap();
                    assert!(chunk.len() <= page);
                    let Some(last) = chunk.last() else { break };
                    after = Some(last.cursor);
                    pages.extend(chunk);
                }
                assert_eq!(pages, expected, "type {ty}, from {start:?}, page size {page}");
            }
        }
    }
}

fn conditions_and_expiry_round_trip(s: &dyn TupleStore) {
    with_history(s);
    let a = "01A";
    let mut context = Context::new();
    context.insert("z_last".into(), serde_json::json!(["10.0.0.0/8", 3, null]));
    context.insert("a_first".into(), serde_json::json!({"nested": true, "n": 1.5}));
    let mut cond = st("doc:c#viewer@user:carol");
    cond.tuple.condition = Some(TupleCondition { name: "in_network".into(), context });
    cond.expires_at_ms = Some(1_700_000_000_000);
    let mut empty_ctx = st("doc:d#viewer@user:dave");
    empty_ctx.tuple.condition = Some(TupleCondition { name: "always".into(), context: Context::new() });
    let mut expiring = st("doc:e#viewer@user:erin");
    expiring.expires_at_ms = Some(-5);
    let rev = s.write(a, &WriteBatch::new(&[], &[cond.clone(), empty_ctx.clone(), expiring.clone()], 500)).unwrap();
    assert_eq!(rev, 5);
    let now = s.tuples(a).unwrap();
    for t in [&cond, &empty_ctx, &expiring] {
        assert!(now.contains(t), "{t:?} not in {now:?}");
    }
    let ch: Vec<StoredTuple> = s
        .changes(a, Some(ChangeCursor { revision: 4, seq: u32::MAX }), None, 100)
        .unwrap()
        .into_iter()
        .map(|c| c.tuple)
        .collect();
    assert_eq!(ch, vec![cond.clone(), empty_ctx, expiring]);
    // A delete then re-write of the same key in one request leaves the new version.
    let mut recond = cond.clone();
    recond.expires_at_ms = None;
    recond.tuple.condition = None;
    assert_eq!(s.write(a, &WriteBatch::new(&[cond], &[recond.clone()], 600)).unwrap(), 6);
    assert!(s.tuples(a).unwrap().contains(&recond));
}

fn models_are_appended_per_store(s: &dyn TupleStore) {
    let (a, b) = ("01A", "01B");
    s.create_store(&record(a)).unwrap();
    s.create_store(&record(b)).unwrap();
    assert_eq!(s.models(a).unwrap(), vec![]);
    s.write_model(a, "01M2", r#"{"schema_version":"1.1"}"#).unwrap();
    s.write_model(a, "01M1", "opaque text, not even json").unwrap();
    s.write_model(b, "01MB", "{}").unwrap();
    assert_eq!(
        s.models(a).unwrap(),
        vec![
            ("01M2".to_string(), r#"{"schema_version":"1.1"}"#.to_string()),
            ("01M1".to_string(), "opaque text, not even json".to_string()),
        ]
    );
    assert_eq!(s.models(b).unwrap(), vec![("01MB".to_string(), "{}".to_string())]);
}

fn assertions_are_kept_per_model_and_store(s: &dyn TupleStore) {
    let (a, b) = ("01A", "01B");
    s.create_store(&record(a)).unwrap();
    s.create_store(&record(b)).unwrap();
    s.write_model(a, "01M2", r#"{"schema_version":"1.1"}"#).unwrap();
    s.write_model(a, "01M1", "opaque text, not even json").unwrap();
    assert_eq!(s.assertions(a, "01M2").unwrap(), None);
    s.write_assertions(a, "01M2", r#"[{"tuple_key":{}}]"#).unwrap();
    s.write_assertions(a, "01M2", "[]").unwrap();
    s.write_assertions(a, "01M1", "[1]").unwrap();
    assert_eq!(s.assertions(a, "01M2").unwrap().as_deref(), Some("[]"));
    assert_eq!(s.assertions(a, "01M1").unwrap().as_deref(), Some("[1]"));
    assert_eq!(s.assertions(b, "01M2").unwrap(), None);
}

fn a_deleted_store_is_gone_and_its_id_reusable(s: &dyn TupleStore) {
    with_history(s);
    let (a, b) = ("01A", "01B");
    s.write_model(a, "01M1", "{}").unwrap();
    s.write_assertions(a, "01M1", "[1]").unwrap();
    s.delete_store(a).unwrap();
    assert_eq!(s.get_store(a).unwrap(), None);
    let ids: Vec<String> = s.list_stores().unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["01B", "01C"]);
    let gone = || StoreError::StoreNotFound(a.into());
    assert_eq!(s.tuples(a), Err(gone()));
    assert_eq!(s.revision(a), Err(gone()));
    assert_eq!(s.changes(a, None, None, 10), Err(gone()));
    assert_eq!(s.models(a), Err(gone()));
    assert_eq!(s.assertions(a, "01M1"), Err(gone()));
    assert_eq!(s.write(a, &WriteBatch::new(&[], &[], 0)), Err(gone()));
    assert_eq!(s.delete_store(a), Err(gone()));
    assert_eq!(s.tuples(b).unwrap(), vec![st("doc:9#viewer@user:bob")]);
    assert_eq!(s.revision(b).unwrap(), 1);
    s.create_store(&record(a)).unwrap();
    assert_eq!(s.revision(a).unwrap(), 0);
    assert_eq!(s.tuples(a).unwrap(), vec![]);
    assert_eq!(s.changes(a, None, None, 10).unwrap(), vec![]);
    assert_eq!(s.models(a).unwrap(), vec![]);
    assert_eq!(s.assertions(a, "01M1").unwrap(), None);
}

/// A conditional write lands while no later write touched a tuple its plan read, at the next
/// revision; a refused one writes nothing.
fn a_conditional_write_lands_only_while_its_plan_holds(s: &dyn TupleStore) {
    let a = "01A";
    s.create_store(&record(a)).unwrap();
    let at = PlannedAt::revision;
    assert_eq!(s.write(a, &WriteBatch::new(&[], &[st("doc:1#viewer@user:ann")], 5).planned_at(at(0))), Ok(1));
    assert_eq!(
        s.write(a, &WriteBatch::new(&[], &[st("doc:2#viewer@user:ann")], 6).planned_at(at(0))),
        Ok(2),
        "other tuples moved"
    );
    assert_eq!(
        s.write(a, &WriteBatch::new(&[], &[st("doc:1#viewer@user:ann")], 6).planned_at(at(0))),
        Err(StoreError::RevisionMoved { store_id: a.to_string(), expected: 0, current: 2 }),
        "a write of a tuple written since the plan"
    );
    assert_eq!(
        s.write(a, &WriteBatch::new(&[st("doc:2#viewer@user:ann")], &[], 6).planned_at(at(1))),
        Err(StoreError::RevisionMoved { store_id: a.to_string(), expected: 1, current: 2 }),
        "a delete of a tuple written since the plan"
    );
    let read = [st("doc:2#viewer@user:ann").tuple];
    assert_eq!(
        s.write(
            a,
            &WriteBatch::new(&[], &[st("doc:3#viewer@user:ann")], 6).planned_at(PlannedAt { revision: 1, read: &read })
        ),
        Err(StoreError::RevisionMoved { store_id: a.to_string(), expected: 1, current: 2 }),
        "a plan that read a tuple written since"
    );
    // A tuple's identity excludes its condition: a rewrite with another condition still touches it.
    let mut conditioned = st("doc:2#viewer@user:ann");
    conditioned.tuple.condition = Some(TupleCondition { name: "always".into(), context: Context::new() });
    assert!(matches!(
        s.write(a, &WriteBatch::new(&[], &[conditioned], 6).planned_at(at(1))),
        Err(StoreError::RevisionMoved { expected: 1, current: 2, .. })
    ));
    assert_eq!(s.revision(a).unwrap(), 2);
    assert_eq!(s.tuples(a).unwrap().len(), 2);
    assert_eq!(s.changes(a, None, None, 10).unwrap().len(), 2);
    assert_eq!(
        s.write(a, &WriteBatch::new(&[st("doc:1#viewer@user:ann")], &[], 7).by(Some("ops")).planned_at(at(2))),
        Ok(3)
    );
    // A conditional write records its actor like any other (the old `write_at` carried it apart).
    let after_two = Some(ChangeCursor { revision: 2, seq: u32::MAX });
    let third = s.changes(a, after_two, None, 10).unwrap();
    assert_eq!(third.iter().map(|c| c.actor.as_deref()).collect::<Vec<_>>(), [Some("ops")]);
    assert_eq!(
        s.write(a, &WriteBatch::new(&[], &[], 8).planned_at(at(3))),
        Ok(4),
        "an empty write at the current revision"
    );
    // Far behind, or ahead of the store, the plan is refused without a look at its tuples.
    for _ in 0..MAX_PLAN_LAG {
        s.write(a, &WriteBatch::new(&[], &[], 9)).unwrap();
    }
    let current = 4 + MAX_PLAN_LAG;
    assert_eq!(
        s.write(a, &WriteBatch::new(&[], &[st("doc:9#viewer@user:ann")], 9).planned_at(at(3))),
        Err(StoreError::RevisionMoved { store_id: a.to_string(), expected: 3, current })
    );
    assert_eq!(s.write(a, &WriteBatch::new(&[], &[st("doc:9#viewer@user:ann")], 9).planned_at(at(4))), Ok(current + 1));
    assert_eq!(
        s.write(a, &WriteBatch::new(&[], &[], 9).planned_at(at(current + 5))),
        Err(StoreError::RevisionMoved { store_id: a.to_string(), expected: current + 5, current: current + 1 })
    );
}

fn changes_by_type_page_over_many_interleaved_types(s: &dyn TupleStore) {
    s.create_store(&record("01T")).unwrap();
    for (deletes, writes) in interleaved_writes() {
        s.write("01T", &WriteBatch::new(&deletes, &writes, 11).by(Some("mixer"))).unwrap();
    }
    check_feed_by_type(s, "01T");
}

/// The object types of [`interleaved_writes`].
const MIXED_TYPES: [&str; 6] = ["doc", "folder", "group", "org", "team", "rare"];

/// Writes (deletes, writes) mixing [`MIXED_TYPES`]: one entry or a few, writes of one type only,
/// writes crossing a changelog row of 256 entries, a type seen once in 97 entries, and deletes of
/// tuples written before; ids are unique per write, so each write is valid.
fn interleaved_writes() -> Vec<(Vec<StoredTuple>, Vec<StoredTuple>)> {
    let mut out = Vec::new();
    let mut written: Vec<StoredTuple> = Vec::new();
    let mut n = 0usize;
    for (w, size) in [1usize, 3, 17, 300, 2, 1, 40, 256, 5, 1, 513, 7].into_iter().enumerate() {
        let writes: Vec<StoredTuple> = (0..size)
            .map(|_| {
                n += 1;
                let ty = match w {
                    // Writes of one type only.
                    1 | 5 => MIXED_TYPES[w % 5],
                    _ if n.is_multiple_of(97) => "rare",
                    _ => MIXED_TYPES[(n * n + w) % 5],
                };
                st(&format!("{ty}:{n}#viewer@user:u{}", n % 13))
            })
            .collect();
        let deletes: Vec<StoredTuple> =
            if w % 4 == 2 { written.drain(..5.min(written.len())).collect() } else { vec![] };
        written.extend(writes.iter().cloned());
        out.push((deletes, writes));
    }
    out
}

/// Pages the feed of `store` by each type (and one it lacks) with small page sizes, from the start
/// and from cursors of other entries, and checks each paging reassembles exactly the entries of the
/// unfiltered feed of that type after the start, in order.
fn check_feed_by_type(s: &dyn TupleStore, store: &str) {
    let all = s.changes(store, None, None, usize::MAX).unwrap();
    assert!(all.len() > 1000, "the feed spans several changelog rows");
    for ty in MIXED_TYPES.iter().chain(&["absent"]) {
        let starts =
            [None, Some(all[0].cursor), Some(all[300].cursor), Some(all[600].cursor), all.last().map(|c| c.cursor)];
        for (i, start) in starts.into_iter().enumerate() {
            let expected: Vec<&ChangeRecord> = all
                .iter()
                .filter(|c| c.tuple.tuple.object.object_type == *ty && start.is_none_or(|s| c.cursor > s))
                .collect();
            if start.is_none() {
                assert_eq!(expected.is_empty(), *ty == "absent", "type {ty} is in the feed");
            }
            let pages: &[usize] = if i == 0 { &[1, 2, 5, 64] } else { &[3, 64] };
            for &page in pages {
                let (mut read, mut after) = (Vec::new(), start);
                loop {
                    let chunk = s.changes(store, after, Some(ty), page).unwrap();
                    assert!(chunk.len() <= page);
                    let Some(last) = chunk.last() else { break };
                    after = Some(last.cursor);
                    read.extend(chunk);
                }
                assert!(read.iter().eq(expected.iter().copied()), "type {ty}, from {start:?}, page size {page}");
            }
        }
    }
}

#[test]
fn sled_store_survives_reopen() {
    let dir = TempDir::new("reopen");
    let mut cond = st("doc:1#viewer@user:anne");
    let mut context = Context::new();
    context.insert("x".into(), serde_json::json!(1));
    cond.tuple.condition = Some(TupleCondition { name: "c".into(), context });
    cond.expires_at_ms = Some(99);
    let snapshot = |s: &SledStore| {
        (
            s.list_stores().unwrap(),
            s.tuples("S").unwrap(),
            s.revision("S").unwrap(),
            s.changes("S", None, None, 1000).unwrap(),
            s.models("S").unwrap(),
            s.assertions("S", "M1").unwrap(),
        )
    };
    let before = {
        let s = SledStore::open(dir.path()).unwrap();
        s.create_store(&record("S")).unwrap();
        s.write_model("S", "M1", "{\"v\":1}").unwrap();
        s.write("S", &WriteBatch::new(&[], &[cond.clone(), st("doc:2#viewer@user:bob")], 10)).unwrap();
        s.write("S", &WriteBatch::new(&[st("doc:2#viewer@user:bob")], &[st("doc:3#editor@team:t#member")], 20))
            .unwrap();
        s.write_model("S", "M2", "{\"v\":2}").unwrap();
        s.write_assertions("S", "M1", "[\"a\"]").unwrap();
        snapshot(&s)
    };
    assert_eq!(before.2, 2);
    assert_eq!(before.3.len(), 4);
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(snapshot(&s), before);
    let kept: Vec<Tuple> =
        ["doc:1#viewer@user:anne", "doc:3#editor@team:t#member"].map(|t| t.parse().unwrap()).to_vec();
    assert_eq!(s.written_at("S", &kept).unwrap(), vec![Some(10), Some(20)], "write times survive a reopen");
    // the counter continues where it stopped
    assert_eq!(s.write("S", &WriteBatch::new(&[], &[st("doc:4#viewer@user:carl")], 30)).unwrap(), 3);
    drop(s);
    let s = SledStore::open(dir.path()).unwrap();
    assert_eq!(s.revision("S").unwrap(), 3);
    assert_eq!(s.changes("S", Some(ChangeCursor { revision: 2, seq: 1 }), None, 10).unwrap().len(), 1);
}

#[test]
fn bad_bytes_on_disk_are_corrupt_errors_not_panics() {
    let dir = TempDir::new("corrupt");
    {
        let s = SledStore::open(dir.path()).unwrap();
        s.create_store(&record("S")).unwrap();
        s.write("S", &WriteBatch::new(&[], &[st("doc:1#viewer@user:anne")], 1)).unwrap();
    }
    {
        // Overwrite the revision counter (keyspace 0x02, store id `S` escaped and terminated) and
        // the store record (keyspace 0x01) of store `S` with undecodable bytes.
        let db = raw_sled(dir.path()).unwrap();
        db.insert(b"\x02S\x00\x00", &b"\x09junk"[..]).unwrap();
        db.insert(b"\x01T\x00\x00", &b"\x01{not json"[..]).unwrap();
        db.flush().unwrap();
    }
    let s = SledStore::open(dir.path()).unwrap();
    assert!(matches!(s.revision("S"), Err(StoreError::Corrupt(_))));
    assert!(matches!(
        s.write("S", &WriteBatch::new(&[], &[st("doc:2#viewer@user:bob")], 2)),
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(s.get_store("T"), Err(StoreError::Corrupt(_))));
    assert!(matches!(s.list_stores(), Err(StoreError::Corrupt(_))));
    // the failed write left nothing behind
    assert_eq!(s.tuples("S").unwrap(), vec![st("doc:1#viewer@user:anne")]);
    assert_eq!(s.changes("S", None, None, 10).unwrap().len(), 1);
}

/// A data dir written before tuple values had version 2 (every tuple value JSON, version 1) opens
/// and reads the same: tuples, the start-up scan, write times, and later writes on top of it.
#[test]
fn sled_store_reads_tuple_values_of_the_old_layout() {
    let dir = TempDir::new("old-layout");
    let mut cond = st("doc:1#viewer@user:anne");
    cond.tuple.condition = Some(TupleCondition { name: "c".into(), context: Context::new() });
    let plain = [st("doc:2#viewer@user:bob"), st("doc:3#editor@team:t#member"), st("doc:4#viewer@user:*")];
    let current = {
        let s = SledStore::open(dir.path()).unwrap();
        s.create_store(&record("S")).unwrap();
        s.write("S", &WriteBatch::new(&[], &[cond.clone(), plain[0].clone()], 10)).unwrap();
        s.write("S", &WriteBatch::new(&[], &plain[1..], 20)).unwrap();
        s.tuples("S").unwrap()
    };
    {
        // Rewrite every tuple value (keyspace 0x03) of store `S` the way older builds stored it.
        let db = raw_sled(dir.path()).unwrap();
        let mut rewritten = 0;
        for kv in db.scan_prefix(b"\x03S\x00\x00") {
            let (key, value) = kv.unwrap();
            if value[0] == 2 {
                let written_at = i64::from_be_bytes(value[1..].try_into().unwrap());
                db.insert(key, format!("\u{1}{{\"written_at_ms\":{written_at}}}").into_bytes()).unwrap();
                rewritten += 1;
            }
        }
        assert_eq!(rewritten, 3, "the plain tuples were stored as version 2");
        // And one from before write times were recorded at all.
        db.insert(b"\x03S\x00\x00doc\x00\x005\x00\x00viewer\x00\x00user:old\x00\x00", &b"\x01{}"[..]).unwrap();
        db.flush().unwrap();
    }
    let s = SledStore::open(dir.path()).unwrap();
    let mut expected = current.clone();
    expected.push(st("doc:5#viewer@user:old"));
    assert_eq!(s.tuples("S").unwrap(), expected);
    let mut scanned = Vec::new();
    s.scan_tuples("S", &mut |t| {
        scanned.push((format!("{}:{}#{}", t.object_type, t.object_id, t.relation), t.condition.cloned()));
        Ok(())
    })
    .unwrap();
    let listed: Vec<_> = expected
        .iter()
        .map(|t| (t.tuple.object.to_string() + "#" + &t.tuple.relation, t.tuple.condition.clone()))
        .collect();
    assert_eq!(scanned, listed);
    let ask: Vec<Tuple> =
        ["doc:2#viewer@user:bob", "doc:4#viewer@user:*", "doc:5#viewer@user:old"].map(|t| t.parse().unwrap()).to_vec();
    assert_eq!(s.written_at("S", &ask).unwrap(), vec![Some(10), Some(20), None]);
    assert_eq!(s.write("S", &WriteBatch::new(&[plain[0].clone()], &[st("doc:6#viewer@user:new")], 30)).unwrap(), 3);
    assert_eq!(s.tuples("S").unwrap().len(), 5);
}

/// Keyspace of the changelog by object type in a `SledStore` (see `store/codec.rs`).
const CHANGE_BY_TYPE_KEYSPACE: u8 = 0x08;
/// The data dir's layout key in a `SledStore` (see `store/codec.rs`).
const LAYOUT_KEY: &[u8] = b"\x00layout";

/// A data dir written before the changelog by type existed (no such rows, no layout key) opens
/// with the rows built from the changelog: every feed by type is complete, later writes add to
/// it, and deleting a store removes its rows.
#[test]
fn sled_store_builds_the_changelog_by_type_of_an_older_data_dir() {
    let dir = TempDir::new("old-changes");
    let rows_of = |db: &sled::Db| db.scan_prefix([CHANGE_BY_TYPE_KEYSPACE]).count();
    let full = {
        let s = SledStore::open(dir.path()).unwrap();
        for store in ["S", "T"] {
            s.create_store(&record(store)).unwrap();
            for (deletes, writes) in interleaved_writes() {
                s.write(store, &WriteBatch::new(&deletes, &writes, 11)).unwrap();
            }
        }
        s.changes("S", None, None, usize::MAX).unwrap()
    };
    let rows = {
        // Strip what the older layout lacked.
        let db = raw_sled(dir.path()).unwrap();
        let rows = rows_of(&db);
        assert!(rows > 0, "writes add rows by type");
        for kv in db.scan_prefix([CHANGE_BY_TYPE_KEYSPACE]) {
            db.remove(kv.unwrap().0).unwrap();
        }
        assert!(db.remove(LAYOUT_KEY).unwrap().is_some(), "a new data dir records its layout");
        db.flush().unwrap();
        rows
    };
    {
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(s.changes("S", None, None, usize::MAX).unwrap(), full);
        check_feed_by_type(&s, "S");
        check_feed_by_type(&s, "T");
        assert_eq!(s.changes("S", None, Some("rare"), usize::MAX).unwrap().len(), 11);
    }
    {
        let db = raw_sled(dir.path()).unwrap();
        assert_eq!(rows_of(&db), rows, "the rows built equal the rows written");
        assert!(db.get(LAYOUT_KEY).unwrap().is_some(), "the layout is recorded once the rows are built");
    }
    let s = SledStore::open(dir.path()).unwrap();
    s.write("S", &WriteBatch::new(&[], &[st("rare:new#viewer@user:u"), st("doc:new#viewer@user:u")], 12)).unwrap();
    let rare = s.changes("S", full.last().map(|c| c.cursor), Some("rare"), 10).unwrap();
    assert_eq!(rare.iter().map(|c| c.tuple.tuple.object.id.as_str()).collect::<Vec<_>>(), ["new"]);
    s.delete_store("S").unwrap();
    drop(s);
    let db = raw_sled(dir.path()).unwrap();
    let mut store_s = vec![CHANGE_BY_TYPE_KEYSPACE];
    store_s.extend_from_slice(b"S\x00\x00");
    assert_eq!(db.scan_prefix(&store_s).count(), 0, "a deleted store's rows by type are gone");
    assert!(db.scan_prefix(b"\x08T\x00\x00").count() > 0, "another store's rows stay");
}

/// Regression for issue 29, "read at scale": `changes` filtered by type on sled walked the whole
/// changelog and filtered it, reading every row before a rare type's entries. It now reads only
/// that type's rows, counted by the store: one per changelog row that holds the type (two when the
/// type is at least half of the row, whose entries are then read from the changelog row itself),
/// however much of the feed is of other types.
#[test]
fn sled_changes_by_type_is_served_from_a_type_index() {
    let s = SledStore::temporary().unwrap();
    s.create_store(&record("S")).unwrap();
    // 20,000 `doc` entries in writes of 1,000 (4 changelog rows each), a `folder` in three of
    // the writes, and a last write of only `team`.
    for w in 0..20 {
        let writes: Vec<StoredTuple> = (0..1000)
            .map(|i| {
                let ty = if i == 500 && w % 7 == 3 { "folder" } else { "doc" };
                st(&format!("{ty}:{w}-{i}#viewer@user:u{i}"))
            })
            .collect();
        s.write("S", &WriteBatch::new(&[], &writes, 1)).unwrap();
    }
    s.write("S", &WriteBatch::new(&[], &[st("team:a#member@user:u"), st("team:b#member@user:u")], 2)).unwrap();
    let read = |after: Option<ChangeCursor>, ty: Option<&str>, limit: usize| {
        let before = s.change_rows_read();
        let page = s.changes("S", after, ty, limit).unwrap();
        (page, s.change_rows_read() - before)
    };
    let (folders, rows) = read(None, Some("folder"), 100);
    let cursors: Vec<(u64, u32)> = folders.iter().map(|c| (c.cursor.revision, c.cursor.seq)).collect();
    assert_eq!(cursors, [(4, 500), (11, 500), (18, 500)]);
    assert_eq!(rows, 3, "one row by type per changelog row holding a folder");
    let (resumed, rows) = read(Some(folders[1].cursor), Some("folder"), 100);
    assert_eq!(resumed, folders[2..]);
    assert_eq!(rows, 2, "resuming starts at the row of the cursor");
    let (teams, rows) = read(None, Some("team"), 1);
    assert_eq!(teams.len(), 1);
    assert_eq!(rows, 2, "a row mostly of one type is read from the changelog");
    assert_eq!(read(None, Some("absent"), 100), (vec![], 0));
    // The unfiltered walk the filter used to be: every changelog row up to the last folder.
    let (all, rows) = read(None, None, usize::MAX);
    assert_eq!(all.len(), 20_002);
    assert_eq!(rows, 20 * 4 + 1);
}

/// Opens a `SledStore` directory with sled directly, waiting for a just-dropped handle's lock.
fn raw_sled(path: &Path) -> sled::Result<sled::Db> {
    let deadline = std::time::Instant::now() + SledStore::LOCK_WAIT;
    loop {
        match sled::open(path) {
            Err(_) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(5)),
            result => return result,
        }
    }
}

#[test]
fn concurrent_writes_get_distinct_consecutive_revisions() {
    let s = Arc::new(SledStore::temporary().unwrap());
    s.create_store(&record("S")).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                (0..10)
                    .map(|j| {
                        s.write("S", &WriteBatch::new(&[], &[st(&format!("doc:{i}-{j}#viewer@user:u"))], 0)).unwrap()
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut revisions: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    revisions.sort_unstable();
    assert_eq!(revisions, (1..=40).collect::<Vec<u64>>());
    assert_eq!(s.revision("S").unwrap(), 40);
    assert_eq!(s.tuples("S").unwrap().len(), 40);
    let changes = s.changes("S", None, None, 100).unwrap();
    assert_eq!(changes.iter().map(|c| c.cursor.revision).collect::<Vec<_>>(), (1..=40).collect::<Vec<u64>>());
}

// ---------------------------------------------------------------- model-based property test

/// The universe of tuple identities the property test draws from: 3 objects × 2 relations × 4 users.
fn universe(i: usize) -> String {
    let objects = ["doc:0", "doc:1", "folder:0"];
    let relations = ["viewer", "editor"];
    let users = ["user:a", "user:b", "user:*", "group:g#member"];
    format!("{}#{}@{}", objects[i % 3], relations[(i / 3) % 2], users[(i / 6) % 4])
}

const UNIVERSE: usize = 24;

#[derive(Debug, Clone)]
enum Op {
    /// Write to store `store`: delete the existing tuples picked by `deletes` (indices into the
    /// current tuple list), then write the universe tuples picked by `writes` that are not present.
    Write { store: usize, deletes: Vec<usize>, writes: Vec<(usize, u8)> },
    /// Append a model version.
    Model { store: usize },
    /// Drop the sled store and open it again from disk.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..2usize, prop::collection::vec(0..64usize, 0..4), prop::collection::vec((0..UNIVERSE, 0..4u8), 0..5))
            .prop_map(|(store, deletes, writes)| Op::Write { store, deletes, writes }),
        1 => (0..2usize).prop_map(|store| Op::Model { store }),
        2 => Just(Op::Reopen),
    ]
}

/// A tuple of the universe with a variant: 0 plain, 1 conditioned, 2 expiring, 3 both.
fn variant(index: usize, v: u8) -> StoredTuple {
    let mut t = st(&universe(index));
    if v & 1 == 1 {
        let mut context = Context::new();
        context.insert("k".into(), serde_json::json!(index));
        t.tuple.condition = Some(TupleCondition { name: "cond".into(), context });
    }
    if v & 2 == 2 {
        t.expires_at_ms = Some(i64::try_from(index).unwrap() * 1000 - 3000);
    }
    t
}

type Snapshot = (Vec<StoredTuple>, u64, Vec<ChangeRecord>, Vec<(String, String)>);

/// Every tuple as the start-up scan reads it, rebuilt into owned tuples.
fn scanned(s: &dyn TupleStore, store: &str) -> Result<Vec<StoredTuple>, StoreError> {
    let mut out = Vec::new();
    s.scan_tuples(store, &mut |t| {
        let user = match (t.subject.id, t.subject.relation) {
            (None, _) => format!("{}:*", t.subject.subject_type),
            (Some(id), None) => format!("{}:{id}", t.subject.subject_type),
            (Some(id), Some(relation)) => format!("{}:{id}#{relation}", t.subject.subject_type),
        };
        let mut tuple = Tuple::from_parts(&format!("{}:{}", t.object_type, t.object_id), t.relation, &user).unwrap();
        tuple.condition = t.condition.cloned();
        out.push(StoredTuple { tuple, expires_at_ms: t.expires_at_ms });
        Ok(())
    })?;
    Ok(out)
}

fn snapshot(s: &dyn TupleStore, store: &str) -> Result<Snapshot, StoreError> {
    assert_eq!(scanned(s, store)?, s.tuples(store)?, "the start-up scan reads what `tuples` reads");
    Ok((s.tuples(store)?, s.revision(store)?, s.changes(store, None, None, usize::MAX)?, s.models(store)?))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn sled_matches_memory_across_reopens(ops in prop::collection::vec(op(), 1..24)) {
        let dir = TempDir::new("prop");
        let stores = ["01S0", "01S1"];
        let reference = MemoryStore::new();
        let mut sled = SledStore::open(dir.path()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for id in stores {
            reference.create_store(&record(id)).map_err(|e| TestCaseError::fail(e.to_string()))?;
            sled.create_store(&record(id)).map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        for (step, op) in ops.into_iter().enumerate() {
            let ts = i64::try_from(step).unwrap_or(0);
            match op {
                Op::Write { store, deletes, writes } => {
                    let id = stores[store];
                    let current = reference.tuples(id).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    let mut del: Vec<StoredTuple> = Vec::new();
                    if !current.is_empty() {
                        for d in deletes {
                            let t = &current[d % current.len()];
                            if !del.contains(t) {
                                del.push(t.clone());
                            }
                        }
                    }
                    let mut add: Vec<StoredTuple> = Vec::new();
                    for (i, v) in writes {
                        let t = variant(i, v);
                        let same_key = |o: &StoredTuple| o.tuple.key() == t.tuple.key();
                        if !current.iter().any(same_key) && !add.iter().any(same_key) {
                            add.push(t);
                        }
                    }
                    let r1 = reference.write(id, &WriteBatch::new(&del, &add, ts));
                    let r2 = sled.write(id, &WriteBatch::new(&del, &add, ts));
                    prop_assert_eq!(r1, r2);
                }
                Op::Model { store } => {
                    let id = stores[store];
                    let model_id = format!("01M{step:03}");
                    let json = format!("{{\"step\":{step}}}");
                    reference.write_model(id, &model_id, &json).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    sled.write_model(id, &model_id, &json).map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
                Op::Reopen => {
                    drop(sled);
                    sled = SledStore::open(dir.path()).map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
            }
            for id in stores {
                prop_assert_eq!(snapshot(&sled, id), snapshot(&reference, id));
            }
        }
        prop_assert_eq!(sled.list_stores(), reference.list_stores());
    }
}

/// Regression for changelog runs: a write larger than one changelog row reads back entry by entry,
/// from any cursor, with any limit and type filter, exactly as the memory store (one entry each).
#[test]
fn a_write_larger_than_one_changelog_row_reads_back_entry_by_entry() {
    let memory = MemoryStore::new();
    let sled = SledStore::temporary().unwrap();
    let stores: [&dyn TupleStore; 2] = [&memory, &sled];
    let writes: Vec<StoredTuple> = (0..600)
        .map(|i| {
            let ty = if i % 3 == 0 { "folder" } else { "doc" };
            let mut t = st(&format!("{ty}:{i}#viewer@user:u{i}"));
            if i % 7 == 0 {
                t.expires_at_ms = Some(i64::from(i) * 10);
            }
            t
        })
        .collect();
    for s in stores {
        s.create_store(&record("S")).unwrap();
        assert_eq!(s.write("S", &WriteBatch::new(&[], &writes, 5).by(Some("importer"))).unwrap(), 1);
        assert_eq!(s.write("S", &WriteBatch::new(&writes[100..400], &writes[..1], 6)).unwrap(), 2);
        assert_eq!(s.write("S", &WriteBatch::new(&[], &writes[500..501], 7)).unwrap(), 3);
    }
    let afters = [None, Some((1, 0)), Some((1, 255)), Some((1, 256)), Some((1, 599)), Some((2, 3)), Some((2, 300))];
    for after in afters.map(|a| a.map(|(revision, seq)| ChangeCursor { revision, seq })) {
        for limit in [0, 1, 7, 300, 10_000] {
            for ty in [None, Some("folder")] {
                let expected = memory.changes("S", after, ty, limit).unwrap();
                assert_eq!(sled.changes("S", after, ty, limit).unwrap(), expected, "{after:?} {limit} {ty:?}");
            }
        }
    }
    let all = sled.changes("S", None, None, usize::MAX).unwrap();
    assert_eq!(all.len(), 600 + 301 + 1);
    assert_eq!(all[599].cursor, ChangeCursor { revision: 1, seq: 599 });
    assert_eq!(all[599].actor.as_deref(), Some("importer"));
    assert_eq!(sled.tuples("S").unwrap(), memory.tuples("S").unwrap());
}

/// Decision `i` of `store` at `time_ms`: every third names an agent too, objects and answers vary.
pub(crate) fn decision(i: i64, time_ms: i64, store: &str) -> writ::store::DecisionRecord {
    writ::store::DecisionRecord {
        time_ms,
        store_id: store.into(),
        model_id: "M".into(),
        // Every third a chain through `agent:bot`; every fifth other one an audience naming it
        // second (no agent there); the rest a single subject.
        principals: match (i % 3, i % 5) {
            (0, _) => vec!["user:anne".into(), "agent:bot".into()],
            (_, 0) => vec!["user:carol".into(), "agent:bot".into()],
            _ => vec!["user:bob".into()],
        },
        delegation_relation: (i % 3 == 0).then(|| "delegate".into()),
        audience: i % 3 != 0 && i % 5 == 0,
        relation: "viewer".into(),
        object: format!("doc:{}", i % 4),
        allowed: i % 2 == 0,
        denied_by: None,
        revision: 1,
        latency_us: 7,
        request_id: format!("r{i}").into(),
        // Even records name a tool in `audit.tool`; every fourth names `send` as something else.
        audit: match i % 4 {
            0 => Some(serde_json::from_value(serde_json::json!({"tool": "send", "server": "mail"})).unwrap()),
            2 => Some(serde_json::from_value(serde_json::json!({"tool": "read"})).unwrap()),
            3 => Some(serde_json::from_value(serde_json::json!({"prompt": "send", "tool": ["send"]})).unwrap()),
            _ => None,
        },
    }
}

/// The agent and tool filters of the decision log (DESIGN §10: the Decisions page filters by
/// both): `agent` matches a principal after the first of a chain, never an audience member nor
/// the chain's human; `tool` matches `audit.tool` as a string only. Memory and sled agree, and
/// paging by cursor under a filter reassembles the filtered log.
#[test]
fn decision_log_filters_by_agent_and_tool_in_memory_and_sled() {
    use writ::store::DecisionFilter;
    let dir = TempDir::new("decisions-agent-tool");
    let sled = SledStore::open(dir.path()).unwrap();
    let memory = MemoryStore::new();
    for s in [&sled as &dyn TupleStore, &memory] {
        s.create_store(&record("S")).unwrap();
        s.decision_log().unwrap().append_decisions((0..60).map(|i| decision(i, 1000 + i, "S")).collect()).unwrap();
    }
    let ids = |s: &dyn TupleStore, filter: &DecisionFilter| -> Vec<String> {
        let page = s.decision_log().unwrap().decisions("S", filter).unwrap();
        page.into_iter().map(|(_, r)| r.request_id.to_string()).collect()
    };
    let expected = |keep: &dyn Fn(i64) -> bool| -> Vec<String> {
        (0..60).rev().filter(|&i| keep(i)).map(|i| format!("r{i}")).collect()
    };
    let filter = |agent: Option<&str>, tool: Option<&str>| DecisionFilter {
        agent: agent.map(str::to_string),
        tool: tool.map(str::to_string),
        limit: 1000,
        ..DecisionFilter::default()
    };
    let cases: [(DecisionFilter, Vec<String>); 6] = [
        (filter(Some("agent:bot"), None), expected(&|i| i % 3 == 0)),
        (filter(Some("user:anne"), None), Vec::new()),
        (filter(None, Some("send")), expected(&|i| i % 4 == 0)),
        (filter(None, Some("read")), expected(&|i| i % 4 == 2)),
        (filter(Some("agent:bot"), Some("send")), expected(&|i| i % 12 == 0)),
        (filter(None, Some("nothing")), Vec::new()),
    ];
    for (filter, want) in &cases {
        assert_eq!(ids(&memory, filter), *want, "memory {filter:?}");
        assert_eq!(ids(&sled, filter), *want, "sled {filter:?}");
    }
    // Pages of 4 under the agent filter reassemble it (each page whole, the cursor exact).
    for s in [&sled as &dyn TupleStore, &memory] {
        let mut paged = Vec::new();
        let mut before = None;
        loop {
            let page = s
                .decision_log()
                .unwrap()
                .decisions("S", &DecisionFilter { before, limit: 4, ..cases[0].0.clone() })
                .unwrap();
            assert!(page.len() == 4 || page.len() < 4 && paged.len() + page.len() == cases[0].1.len());
            let Some(last) = page.last() else { break };
            before = Some(last.0);
            paged.extend(page.into_iter().map(|(_, r)| r.request_id.to_string()));
        }
        assert_eq!(paged, cases[0].1);
    }
}

/// Decisions reach the log nearly, not exactly, in time order (each records its own end time
/// before it is queued): both backends keep them in cursor order through out-of-order appends
/// and trims by count and by age.
#[test]
fn out_of_order_decisions_list_and_trim_alike_in_memory_and_sled() {
    use writ::store::{DecisionFilter, DecisionLogStore};
    let dir = TempDir::new("decisions-order");
    let sled = SledStore::open(dir.path()).unwrap();
    let memory = MemoryStore::new();
    // Times 1000..1010, in a shuffled order, several per millisecond.
    let decision = |i: i64| decision(i, 1000 + (i * 7) % 11, "S");
    let all = DecisionFilter { limit: 1000, ..DecisionFilter::default() };
    let listed = |s: &dyn TupleStore| -> Vec<(i64, String)> {
        s.decision_log()
            .unwrap()
            .decisions("S", &all)
            .unwrap()
            .into_iter()
            .map(|(c, r)| (c.time_ms, r.request_id.to_string()))
            .collect()
    };
    for s in [&sled as &dyn TupleStore, &memory] {
        s.create_store(&record("S")).unwrap();
        for chunk in (0..40).collect::<Vec<_>>().chunks(7) {
            s.decision_log().unwrap().append_decisions(chunk.iter().map(|&i| decision(i)).collect()).unwrap();
        }
    }
    let newest_first = listed(&memory);
    assert_eq!(newest_first.len(), 40);
    assert!(newest_first.windows(2).all(|w| w[0].0 >= w[1].0), "not newest first: {newest_first:?}");
    assert_eq!(listed(&sled), newest_first);
    // By age: everything before 1003 goes; then by count: the 20 newest stay.
    for (keep, older_than) in [(1000, 1003), (20, i64::MIN), (20, 1009)] {
        assert_eq!(sled.trim_decisions("S", keep, older_than), memory.trim_decisions("S", keep, older_than));
        assert_eq!(listed(&sled), listed(&memory), "after trim({keep}, {older_than})");
    }
    assert!(listed(&memory).iter().all(|(time, _)| *time >= 1009));
}
