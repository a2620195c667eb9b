//! `read` at scale (issue 29): pages come from the index and resume where the last one ended, so
//! paging while a writer runs skips and repeats no tuple present throughout; OpenFGA's filter
//! shapes, its error for the others, and a token from another load of the store refused.

use crate::support::http::{call, error_code};
use axum::http::StatusCode;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use writ::engine::{ReadFilter, WriteRequest};
use writ::store::{MemoryStore, SledStore, StoredTuple};
use writ::{Engine, EngineConfig, Model, Tuple};

const MODEL: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define viewer: [user, user:*, group#member]
type document
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: [user, user:*, group#member]
";

/// The tuple `n` of a small universe every store and writer draws from (so writes collide with
/// the stored tuples and with each other).
fn universe(n: u32) -> Tuple {
    let object = n % 7;
    let text = match n % 9 {
        0 => format!("document:d{object}#parent@folder:f{}", n % 3),
        1 | 2 => format!("document:d{object}#owner@user:u{}", n % 11),
        3 => format!("document:d{object}#viewer@user:*"),
        4 => format!("document:d{object}#viewer@group:g{}#member", n % 4),
        5 => format!("folder:f{object}#viewer@user:u{}", n % 13),
        6 => format!("group:g{object}#member@user:u{}", n % 5),
        7 => format!("group:g{object}#member@group:g{}#member", (n / 7) % 4),
        _ => format!("document:d{object}#viewer@user:u{}", n % 17),
    };
    text.parse().expect("universe tuples parse")
}

const UNIVERSE: u32 = 600;

fn engine_with(tuples: &BTreeSet<u32>) -> (Engine, String) {
    let engine = Engine::open(Box::new(MemoryStore::new()), EngineConfig::default()).unwrap();
    let store = engine.create_store("paging").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    // Several numbers may name one tuple: write each tuple once.
    let texts: BTreeSet<String> = tuples.iter().map(|&n| universe(n).to_string()).collect();
    let writes: Vec<StoredTuple> = texts.iter().map(|t| StoredTuple::new(t.parse().unwrap())).collect();
    for batch in writes.chunks(100) {
        engine
            .store(&store)
            .unwrap()
            .write(WriteRequest { writes: batch.to_vec(), ..WriteRequest::default() })
            .unwrap();
    }
    (engine, store)
}

/// Writes `n` if absent, deletes it if present (as one write each).
fn toggle(engine: &Engine, store: &str, n: u32) {
    let tuple = universe(n);
    let present = engine
        .store(store)
        .unwrap()
        .read_page(&filter_of_tuple(&tuple), None, 1)
        .map(|page| !page.tuples.is_empty())
        .unwrap_or(false);
    let request = if present {
        WriteRequest { deletes: vec![tuple], ignore_missing: true, ..WriteRequest::default() }
    } else {
        WriteRequest { writes: vec![StoredTuple::new(tuple)], ignore_duplicates: true, ..WriteRequest::default() }
    };
    engine.store(store).unwrap().write(request).unwrap();
}

fn filter_of_tuple(tuple: &Tuple) -> ReadFilter {
    ReadFilter {
        object_type: Some(tuple.object.object_type.clone()),
        object_id: Some(tuple.object.id.clone()),
        relation: Some(tuple.relation.clone()),
        user: Some(tuple.subject.to_string()),
    }
}

/// The read filters of every shape the property test pages.
fn filters() -> Vec<ReadFilter> {
    let of =
        |object_type: Option<&str>, object_id: Option<&str>, relation: Option<&str>, user: Option<&str>| ReadFilter {
            object_type: object_type.map(Into::into),
            object_id: object_id.map(Into::into),
            relation: relation.map(Into::into),
            user: user.map(Into::into),
        };
    vec![
        ReadFilter::default(),
        of(Some("document"), None, None, None),
        of(Some("document"), None, Some("viewer"), None),
        of(Some("document"), Some("d3"), None, None),
        of(Some("group"), Some("g1"), Some("member"), None),
        of(Some("document"), None, None, Some("user:u4")),
        of(Some("document"), None, Some("viewer"), Some("user:*")),
        of(Some("group"), None, None, Some("group:g2#member")),
    ]
}

fn matches(filter: &ReadFilter, tuple: &Tuple) -> bool {
    filter.object_type.as_deref().is_none_or(|t| tuple.object.object_type == t)
        && filter.object_id.as_deref().is_none_or(|id| tuple.object.id == id)
        && filter.relation.as_deref().is_none_or(|r| tuple.relation == r)
        && filter.user.as_deref().is_none_or(|u| tuple.subject.to_string() == u)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Pages random stores in random page sizes with every filter shape while a writer thread
    /// toggles tuples and the reader toggles more between its own pages: each tuple present
    /// throughout (never toggled) is read exactly once, no tuple is read twice, and every tuple
    /// read matches the filter.
    #[test]
    fn paging_while_a_writer_runs_skips_and_repeats_nothing_present_throughout(
        initial in proptest::collection::btree_set(0..UNIVERSE, 0..300),
        volatile in proptest::collection::btree_set(0..UNIVERSE, 1..120),
        between in proptest::collection::vec(0..UNIVERSE, 0..40),
        page_sizes in proptest::collection::vec(1usize..40, 1..8),
        filter_index in 0usize..8,
    ) {
        let (engine, store) = engine_with(&initial);
        let filter = &filters()[filter_index];
        // Tuples the writers touch: the background thread's and those written between pages.
        let touched: BTreeSet<String> = volatile.iter().chain(&between).map(|&n| universe(n).to_string()).collect();
        let stable: BTreeSet<String> = initial
            .iter()
            .map(|&n| universe(n))
            .filter(|t| matches(filter, t) && !touched.contains(&t.to_string()))
            .map(|t| t.to_string())
            .collect();
        let done = AtomicBool::new(false);
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for &n in volatile.iter().cycle() {
                    if done.load(Ordering::Relaxed) {
                        break;
                    }
                    toggle(&engine, &store, n);
                }
            });
            let (mut after, mut page_number) = (None, 0usize);
            loop {
                let size = page_sizes[page_number % page_sizes.len()];
                let page = engine.store(&store).unwrap().read_page(filter, after, size).unwrap();
                assert!(page.tuples.len() <= size, "a page holds at most its size");
                for stored in &page.tuples {
                    assert!(matches(filter, &stored.tuple), "{} is outside {filter:?}", stored.tuple);
                    *seen.entry(stored.tuple.to_string()).or_default() += 1;
                }
                if let Some(&n) = between.get(page_number) {
                    toggle(&engine, &store, n);
                }
                page_number += 1;
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
            done.store(true, Ordering::Relaxed);
        });
        let repeated: Vec<_> = seen.iter().filter(|(_, &count)| count > 1).collect();
        prop_assert!(repeated.is_empty(), "read twice: {repeated:?}");
        let missed: Vec<_> = stable.iter().filter(|t| !seen.contains_key(*t)).collect();
        prop_assert!(missed.is_empty(), "present throughout but skipped: {missed:?}");
    }
}

async fn fixture() -> (writ::api::Api, String) {
    let engine = Arc::new(Engine::open(Box::new(MemoryStore::new()), EngineConfig::default()).unwrap());
    let store = engine.create_store("read").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let writes = [
        "document:d1#viewer@user:anne",
        "document:d1#viewer@group:eng#member",
        "document:d1#owner@user:bob",
        "document:d2#viewer@user:anne",
        "document:d2#viewer@user:*",
        "folder:f1#viewer@user:anne",
        "group:eng#member@user:bob",
    ];
    let writes = writes.iter().map(|t| StoredTuple::new(t.parse().unwrap())).collect();
    engine.store(&store).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
    (writ::api::router(engine), store)
}

/// Every page of a read through HTTP, as `user relation object` keys.
async fn read_all(app: &writ::api::Api, store: &str, tuple_key: Value, page_size: u32) -> Vec<String> {
    let (mut keys, mut token) = (Vec::new(), String::new());
    loop {
        let body = json!({"tuple_key": tuple_key, "page_size": page_size, "continuation_token": token});
        let (status, page) = call(app, "POST", &format!("/stores/{store}/read"), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for tuple in page["tuples"].as_array().unwrap() {
            assert!(tuple["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{tuple}");
            let key = &tuple["key"];
            keys.push(format!("{} {} {}", key["user"].as_str().unwrap(), key["relation"], key["object"]));
        }
        token = page["continuation_token"].as_str().unwrap().to_string();
        if token.is_empty() {
            keys.sort();
            return keys;
        }
    }
}

#[tokio::test]
async fn read_serves_openfgas_filter_shapes_in_pages() {
    let (app, store) = fixture().await;
    let all = read_all(&app, &store, json!(null), 2).await;
    assert_eq!(all.len(), 7);
    assert_eq!(read_all(&app, &store, json!({}), 3).await, all, "an empty tuple_key reads everything");
    let by_object = read_all(&app, &store, json!({"object": "document:d1"}), 1).await;
    assert_eq!(
        by_object,
        [
            "group:eng#member \"viewer\" \"document:d1\"",
            "user:anne \"viewer\" \"document:d1\"",
            "user:bob \"owner\" \"document:d1\""
        ]
    );
    let one = read_all(&app, &store, json!({"object": "document:d1", "relation": "viewer", "user": "user:anne"}), 5);
    assert_eq!(one.await, ["user:anne \"viewer\" \"document:d1\""]);
    let by_type = read_all(&app, &store, json!({"object": "document:", "relation": "viewer"}), 2).await;
    assert_eq!(by_type.len(), 4);
    let by_user = read_all(&app, &store, json!({"object": "document:", "user": "user:anne"}), 1).await;
    assert_eq!(by_user, ["user:anne \"viewer\" \"document:d1\"", "user:anne \"viewer\" \"document:d2\""]);
    let wildcard = read_all(&app, &store, json!({"object": "document:", "user": "user:*"}), 1).await;
    assert_eq!(wildcard, ["user:* \"viewer\" \"document:d2\""]);
    let unknown = read_all(&app, &store, json!({"object": "nothing:", "user": "user:anne"}), 1).await;
    assert!(unknown.is_empty(), "names no tuple has read nothing");
}

#[tokio::test]
async fn read_answers_openfgas_error_for_other_shapes_and_bad_tokens() {
    let (app, store) = fixture().await;
    let uri = format!("/stores/{store}/read");
    for tuple_key in [json!({"user": "user:anne"}), json!({"relation": "viewer"})] {
        let (status, body) = call(&app, "POST", &uri, Some(json!({"tuple_key": tuple_key}))).await;
        assert_eq!((status, error_code(status, &body).as_str()), (StatusCode::BAD_REQUEST, "validation_error"));
        assert!(body["message"].as_str().unwrap().contains("object type field is required"), "{body}");
    }
    let bad_user = json!({"tuple_key": {"object": "document:", "user": "user:"}});
    let (status, body) = call(&app, "POST", &uri, Some(bad_user)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("`user:`"), "{body}");
    for token in ["zz", "6f66667365743a33", "726561643a312e322e33"] {
        let (status, body) = call(&app, "POST", &uri, Some(json!({"continuation_token": token}))).await;
        assert_eq!(
            (status, error_code(status, &body).as_str()),
            (StatusCode::BAD_REQUEST, "invalid_continuation_token"),
            "{token}"
        );
    }
}

#[test]
fn a_read_token_from_before_a_restart_is_refused_not_misread() {
    let dir = crate::support::TempDir::new("read-token-restart");
    let (store, next) = {
        let engine = Engine::open(Box::new(SledStore::open(dir.path()).unwrap()), EngineConfig::default()).unwrap();
        let store = engine.create_store("restart").unwrap().id;
        engine.store(&store).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
        let writes = vec![tuple_of("document:d1#owner@user:a"), tuple_of("document:d2#owner@user:b")];
        engine.store(&store).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
        let page = engine.store(&store).unwrap().read_page(&ReadFilter::default(), None, 1).unwrap();
        (store, page.next.expect("a second page"))
    };
    let engine = Engine::open(Box::new(SledStore::open(dir.path()).unwrap()), EngineConfig::default()).unwrap();
    let error = engine.store(&store).unwrap().read_page(&ReadFilter::default(), Some(next), 1).unwrap_err();
    assert_eq!(error.openfga_code().1, "invalid_continuation_token", "{error}");
}

fn tuple_of(text: &str) -> StoredTuple {
    StoredTuple::new(text.parse().unwrap())
}

#[tokio::test]
async fn regression_read_pages_were_offsets_into_a_full_sort_of_the_store() {
    // Each page used to format and sort every tuple, and an offset token skipped or repeated
    // tuples when a write landed between pages. Now a write before the cursor shifts nothing.
    let (app, store) = fixture().await;
    let uri = format!("/stores/{store}/read");
    let (_, first) = call(&app, "POST", &uri, Some(json!({"page_size": 3}))).await;
    let token = first["continuation_token"].as_str().unwrap().to_string();
    let first_keys: Vec<Value> = first["tuples"].as_array().unwrap().iter().map(|t| t["key"].clone()).collect();
    // Delete the first page's tuples: an offset would now skip three tuples.
    let deletes: Vec<Value> = first_keys.clone();
    let (status, _) =
        call(&app, "POST", &format!("/stores/{store}/write"), Some(json!({"deletes": {"tuple_keys": deletes}}))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, rest) = call(&app, "POST", &uri, Some(json!({"page_size": 100, "continuation_token": token}))).await;
    let rest_keys: Vec<Value> = rest["tuples"].as_array().unwrap().iter().map(|t| t["key"].clone()).collect();
    assert_eq!(first_keys.len() + rest_keys.len(), 7, "{first_keys:?} then {rest_keys:?}");
    assert!(rest_keys.iter().all(|k| !first_keys.contains(k)));
    assert_eq!(rest["continuation_token"], "");
}
