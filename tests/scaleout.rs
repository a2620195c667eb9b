//! Scale-out: several Writ engines over ONE shared datastore, each following its changelog
//! (`src/engine/follow.rs`). In process, the shared datastore is a `MemoryStore` behind
//! [`SharedBackend`], which says `is_shared()`, sends change notices (or none, to test the
//! polling fallback), and can hold a node's follower still so staleness is deterministic.
//! The process-level two-node test over PostgreSQL lives in `scaleout_process.rs`.

use crate::support::http::{call, tuple};
use axum::http::StatusCode;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use writ::engine::{CheckRequest, ReadFilter, WriteRequest};
use writ::store::{
    ChangeQuery, ChangeRecord, CheckpointStore, DecisionLogStore, MemoryStore, StoreError, StoreRecord, StoredTuple,
    TupleStore, WriteBatch,
};
use writ::{Engine, EngineConfig, EngineError, Tuple};

const MODEL: &str = "model
  schema 1.1
type user
type document
  relations
    define viewer: [user]
";

const MODEL_WITH_FOLDER: &str = "model
  schema 1.1
type user
type folder
  relations
    define viewer: [user]
type document
  relations
    define viewer: [user]
";

/// Change notices shared by every node's view of the datastore (like PostgreSQL's NOTIFY).
#[derive(Default)]
struct Notices {
    generation: Mutex<u64>,
    changed: Condvar,
}

/// Holds one node's follower still while set: its `wait_for_change` blocks (bounded).
#[derive(Default)]
struct Gate {
    /// (paused, a follower is parked in `wait_for_change`)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    fn pause(&self) {
        self.state.lock().unwrap().0 = true;
    }

    /// Pauses and waits until the follower is parked, so it applies nothing until `resume`.
    fn pause_and_park(&self) {
        self.pause();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut state = self.state.lock().unwrap();
        while !state.1 {
            let left = deadline.checked_duration_since(Instant::now()).expect("the follower never parked");
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    fn resume(&self) {
        self.state.lock().unwrap().0 = false;
        self.changed.notify_all();
    }
}

/// One node's connection to the shared datastore.
struct SharedBackend {
    inner: Arc<MemoryStore>,
    notices: Option<Arc<Notices>>,
    seen: Mutex<u64>,
    gate: Arc<Gate>,
    /// Runs inside `tuples()` (between the node's two revision reads at start).
    during_tuples: Mutex<Option<Box<dyn FnOnce() + Send>>>,
    /// Runs at the start of every conditional write (`WriteBatch::planned`) with the datastore
    /// and the store id: what it writes lands after this node planned and before it commits, as another node's write would.
    before_write_at: Mutex<Option<WriteHook>>,
}

type WriteHook = Box<dyn FnMut(&MemoryStore, &str) + Send>;

impl SharedBackend {
    fn new(inner: &Arc<MemoryStore>, notices: Option<&Arc<Notices>>) -> (SharedBackend, Arc<Gate>) {
        let gate = Arc::new(Gate::default());
        let backend = SharedBackend {
            inner: inner.clone(),
            notices: notices.cloned(),
            seen: Mutex::new(notices.map_or(0, |n| *n.generation.lock().unwrap())),
            gate: gate.clone(),
            during_tuples: Mutex::new(None),
            before_write_at: Mutex::new(None),
        };
        (backend, gate)
    }

    fn notify<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let (Ok(_), Some(notices)) = (&result, &self.notices) {
            *notices.generation.lock().unwrap() += 1;
            notices.changed.notify_all();
        }
        result
    }
}

impl TupleStore for SharedBackend {
    fn is_shared(&self) -> bool {
        true
    }

    fn wait_for_change(&self, timeout: Duration) -> bool {
        {
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut state = self.gate.state.lock().unwrap();
            while state.0 && Instant::now() < deadline {
                state.1 = true;
                self.gate.changed.notify_all();
                state = self.gate.changed.wait_timeout(state, Duration::from_millis(50)).unwrap().0;
            }
            state.1 = false;
        }
        let Some(notices) = &self.notices else {
            std::thread::sleep(timeout);
            return false;
        };
        let deadline = Instant::now() + timeout;
        let mut generation = notices.generation.lock().unwrap();
        loop {
            let mut seen = self.seen.lock().unwrap();
            if *generation != *seen {
                *seen = *generation;
                return true;
            }
            drop(seen);
            let Some(left) = deadline.checked_duration_since(Instant::now()) else { return false };
            generation = notices.changed.wait_timeout(generation, left).unwrap().0;
        }
    }

    fn create_store(&self, store: &StoreRecord) -> Result<(), StoreError> {
        self.notify(self.inner.create_store(store))
    }
    fn get_store(&self, store_id: &str) -> Result<Option<StoreRecord>, StoreError> {
        self.inner.get_store(store_id)
    }
    fn list_stores(&self) -> Result<Vec<StoreRecord>, StoreError> {
        self.inner.list_stores()
    }
    fn delete_store(&self, store_id: &str) -> Result<(), StoreError> {
        self.notify(self.inner.delete_store(store_id))
    }
    fn write_model(&self, store_id: &str, model_id: &str, model_json: &str) -> Result<(), StoreError> {
        self.notify(self.inner.write_model(store_id, model_id, model_json))
    }
    fn models(&self, store_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.inner.models(store_id)
    }
    fn write(&self, store_id: &str, batch: &WriteBatch<'_>) -> Result<u64, StoreError> {
        if batch.planned.is_some() {
            if let Some(hook) = self.before_write_at.lock().unwrap().as_mut() {
                hook(&self.inner, store_id);
                self.notify(Ok(()))?;
            }
        }
        self.notify(self.inner.write(store_id, batch))
    }
    fn tuples(&self, store_id: &str) -> Result<Vec<StoredTuple>, StoreError> {
        if let Some(hook) = self.during_tuples.lock().unwrap().take() {
            hook();
        }
        self.inner.tuples(store_id)
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
    fn write_assertions(&self, store_id: &str, model_id: &str, json: &str) -> Result<(), StoreError> {
        self.notify(self.inner.write_assertions(store_id, model_id, json))
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

/// One shared datastore and the way to open nodes over it.
struct Cluster {
    inner: Arc<MemoryStore>,
    notices: Option<Arc<Notices>>,
}

impl Cluster {
    fn new(with_notices: bool) -> Cluster {
        Cluster { inner: Arc::new(MemoryStore::new()), notices: with_notices.then(Arc::default) }
    }

    fn node(&self) -> (Engine, Arc<Gate>) {
        self.node_with(|_| {})
    }

    fn node_with(&self, prepare: impl FnOnce(&SharedBackend)) -> (Engine, Arc<Gate>) {
        let (backend, gate) = SharedBackend::new(&self.inner, self.notices.as_ref());
        prepare(&backend);
        (Engine::open(Box::new(backend), EngineConfig::default()).unwrap(), gate)
    }

    /// Every tuple the datastore holds in a store, as text.
    fn tuples(&self, store_id: &str) -> BTreeSet<String> {
        self.inner.tuples(store_id).unwrap().iter().map(|t| t.tuple.to_string()).collect()
    }
}

/// Every tuple a node's index answers `read` with, as text, and the revision it reflects.
fn node_tuples(engine: &Engine, store_id: &str) -> (BTreeSet<String>, u64) {
    let answer = engine.store(store_id).unwrap().read(&ReadFilter::default()).unwrap();
    (answer.value.iter().map(|t| t.tuple.to_string()).collect(), answer.revision)
}

/// Polls `condition` (bounded at 10 s, every 5 ms); fails naming `what` if it never holds.
fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "never happened within 10 s: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn store_with_model(engine: &Engine) -> String {
    let store = engine.create_store("shared").unwrap();
    engine.store(&store.id).unwrap().write_model(writ::Model::parse_dsl(MODEL).unwrap()).unwrap();
    store.id
}

fn write(engine: &Engine, store_id: &str, tuples: &[&str]) -> Result<u64, EngineError> {
    let writes = tuples.iter().map(|t| StoredTuple::new(t.parse().unwrap())).collect();
    engine.store(store_id).and_then(|store| store.write(WriteRequest { writes, ..WriteRequest::default() }))
}

fn delete(engine: &Engine, store_id: &str, tuples: &[&str]) -> Result<u64, EngineError> {
    let deletes = tuples.iter().map(|t| t.parse().unwrap()).collect();
    engine.store(store_id).and_then(|store| store.write(WriteRequest { deletes, ..WriteRequest::default() }))
}

fn allowed(engine: &Engine, store_id: &str, user: &str, object: &str) -> bool {
    let request =
        CheckRequest { object: object.into(), relation: "viewer".into(), user: user.into(), ..CheckRequest::default() };
    engine.store(store_id).unwrap().check(&request).unwrap().value
}

#[test]
fn a_write_on_one_node_is_visible_on_the_other_with_notices() {
    write_on_a_visible_on_b(Cluster::new(true));
}

#[test]
fn a_write_on_one_node_is_visible_on_the_other_by_polling_alone() {
    write_on_a_visible_on_b(Cluster::new(false));
}

fn write_on_a_visible_on_b(cluster: Cluster) {
    let (a, _) = cluster.node();
    let (b, _) = cluster.node();
    let store = store_with_model(&a);
    let revision = write(&a, &store, &["document:1#viewer@user:anne"]).unwrap();
    // Eventually, by the follower alone.
    eventually("B sees A's write", || {
        b.store(&store).and_then(|handle| handle.revision()).is_ok_and(|r| r >= revision)
    });
    assert!(allowed(&b, &store, "user:anne", "document:1"));
    // Immediately, by waiting for A's revision.
    let next = write(&a, &store, &["document:2#viewer@user:bob"]).unwrap();
    assert_eq!(next, revision + 1);
    assert!(b.store(&store).unwrap().wait_for_revision(next, Duration::from_secs(10)).unwrap() >= next);
    assert!(allowed(&b, &store, "user:bob", "document:2"));
    assert_eq!(node_tuples(&b, &store), (cluster.tuples(&store), next));
}

#[test]
fn concurrent_writers_on_two_nodes_get_distinct_consecutive_revisions() {
    let cluster = Cluster::new(true);
    let (a, _) = cluster.node();
    let (b, _) = cluster.node();
    let store = store_with_model(&a);
    b.catch_up().unwrap();
    let per_node = 60;
    let revisions: Vec<u64> = std::thread::scope(|scope| {
        let writers: Vec<_> = [(&a, "a"), (&b, "b")]
            .into_iter()
            .map(|(node, name)| {
                let store = &store;
                scope.spawn(move || {
                    (0..per_node)
                        .map(|i| write(node, store, &[&format!("document:{name}{i}#viewer@user:{name}")]).unwrap())
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        writers.into_iter().flat_map(|w| w.join().unwrap()).collect()
    });
    let mut sorted = revisions.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=2 * per_node as u64).collect::<Vec<_>>(), "distinct, consecutive, none lost");
    let last = 2 * per_node as u64;
    for node in [&a, &b] {
        node.store(&store).unwrap().wait_for_revision(last, Duration::from_secs(10)).unwrap();
        assert_eq!(node_tuples(node, &store), (cluster.tuples(&store), last));
    }
    assert_eq!(cluster.tuples(&store).len(), 2 * per_node);
}

/// Regression: a write planned at revision R was refused whenever the store had moved past R
/// at all, so a writer on one node that another node kept outpacing ran out of attempts and
/// answered `RevisionMoved` (seen in
/// `concurrent_writers_on_two_nodes_get_distinct_consecutive_revisions`). Here another node's
/// write lands between every plan and its commit, more often than there are attempts.
#[test]
fn a_write_outpaced_by_another_node_on_every_attempt_still_lands() {
    let cluster = Cluster::new(true);
    let interfering = Arc::new(Mutex::new(0usize));
    let counter = interfering.clone();
    let (a, _) = cluster.node();
    let (b, _) = cluster.node_with(move |backend| {
        *backend.before_write_at.lock().unwrap() = Some(Box::new(move |inner, store_id| {
            let mut n = counter.lock().unwrap();
            if *n <= writ::engine::SHARED_WRITE_ATTEMPTS {
                let tuple = StoredTuple::new(format!("document:elsewhere{n}#viewer@user:zed").parse().unwrap());
                inner.write(store_id, &WriteBatch::new(&[], &[tuple], 1)).unwrap();
                *n += 1;
            }
        }));
    });
    let store = store_with_model(&a);
    b.catch_up().unwrap();
    let revision = write(&b, &store, &["document:1#viewer@user:anne"]).unwrap();
    assert_eq!(*interfering.lock().unwrap(), 1, "one attempt: the other node's write touched other tuples");
    assert_eq!(revision, 2, "landed after the other node's write");
    assert_eq!(node_tuples(&b, &store), (cluster.tuples(&store), 2), "B applied both writes in order");
    assert!(allowed(&b, &store, "user:anne", "document:1"));
    assert!(allowed(&b, &store, "user:zed", "document:elsewhere0"));
    a.store(&store).unwrap().wait_for_revision(2, Duration::from_secs(10)).unwrap();
    assert_eq!(node_tuples(&a, &store), (cluster.tuples(&store), 2));
}

#[test]
fn a_tuple_another_node_writes_between_plan_and_commit_is_a_write_conflict() {
    let cluster = Cluster::new(true);
    let (a, _) = cluster.node();
    let (b, _) = cluster.node_with(|backend| {
        let mut once = true;
        *backend.before_write_at.lock().unwrap() = Some(Box::new(move |inner, store_id| {
            if std::mem::take(&mut once) {
                let tuple = StoredTuple::new("document:1#viewer@user:anne".parse().unwrap());
                inner.write(store_id, &WriteBatch::new(&[], &[tuple], 1)).unwrap();
            }
        }));
    });
    let store = store_with_model(&a);
    b.catch_up().unwrap();
    let error = write(&b, &store, &["document:1#viewer@user:anne", "document:2#viewer@user:bob"]).unwrap_err();
    assert!(matches!(error, EngineError::WriteConflict(_)), "{error:?}");
    assert_eq!(cluster.tuples(&store), BTreeSet::from(["document:1#viewer@user:anne".to_string()]));
    assert_eq!(b.store(&store).unwrap().revision().unwrap(), 1, "B caught up while refusing");
}

#[test]
fn a_duplicate_skipped_by_a_plan_then_deleted_by_another_node_is_written() {
    let cluster = Cluster::new(true);
    let (a, _) = cluster.node();
    let (b, _) = cluster.node_with(|backend| {
        let mut once = true;
        *backend.before_write_at.lock().unwrap() = Some(Box::new(move |inner, store_id| {
            if std::mem::take(&mut once) {
                let tuple = StoredTuple::new("document:1#viewer@user:anne".parse().unwrap());
                inner.write(store_id, &WriteBatch::new(&[tuple], &[], 1)).unwrap();
            }
        }));
    });
    let store = store_with_model(&a);
    write(&a, &store, &["document:1#viewer@user:anne"]).unwrap();
    b.catch_up().unwrap();
    // B skips the tuple it holds; the other node deletes it before B commits: the skip read a
    // tuple that changed, so B plans again and writes both.
    let request = WriteRequest {
        writes: ["document:1#viewer@user:anne", "document:2#viewer@user:bob"]
            .iter()
            .map(|t| StoredTuple::new(t.parse().unwrap()))
            .collect(),
        ignore_duplicates: true,
        ..WriteRequest::default()
    };
    let revision = b.store(&store).unwrap().write(request).unwrap();
    assert_eq!(revision, 3);
    let both = ["document:1#viewer@user:anne", "document:2#viewer@user:bob"].map(String::from);
    assert_eq!(cluster.tuples(&store), BTreeSet::from(both));
    assert_eq!(node_tuples(&b, &store), (cluster.tuples(&store), 3));
}

#[test]
fn writing_a_tuple_the_other_node_wrote_is_a_write_conflict_even_before_catching_up() {
    let cluster = Cluster::new(true);
    let (a, _) = cluster.node();
    let (b, b_follower) = cluster.node();
    let store = store_with_model(&a);
    b.catch_up().unwrap();
    b_follower.pause_and_park();
    let written = write(&a, &store, &["document:1#viewer@user:anne"]).unwrap();
    assert!(!allowed(&b, &store, "user:anne", "document:1"), "B is stale: its follower is held");
    // B's index says the tuple is absent; the conditional write finds the store moved, B catches
    // up and plans again, and the duplicate is refused as on one node.
    let error = write(&b, &store, &["document:1#viewer@user:anne"]).unwrap_err();
    assert!(matches!(error, EngineError::WriteConflict(_)), "{error:?}");
    assert_eq!(b.store(&store).unwrap().revision().unwrap(), written, "B caught up while refusing");
    // A deletes it; B, stale again, still holds it, and may write it anew: no false conflict.
    let deleted = delete(&a, &store, &["document:1#viewer@user:anne"]).unwrap();
    assert!(allowed(&b, &store, "user:anne", "document:1"), "B is stale again");
    let rewritten = write(&b, &store, &["document:1#viewer@user:anne"]).unwrap();
    assert_eq!(rewritten, deleted + 1);
    // And a stale no-op (ignore_duplicates) is not trusted either: A deletes, B's skip would lose it.
    delete(&a, &store, &["document:1#viewer@user:anne"]).unwrap();
    let request = WriteRequest {
        writes: vec![StoredTuple::new("document:1#viewer@user:anne".parse().unwrap())],
        ignore_duplicates: true,
        ..WriteRequest::default()
    };
    b.store(&store).unwrap().write(request).unwrap();
    assert!(cluster.tuples(&store).contains("document:1#viewer@user:anne"), "B's write was not lost");
    b_follower.resume();
    a.store(&store)
        .unwrap()
        .wait_for_revision(cluster.inner.revision(&store).unwrap(), Duration::from_secs(10))
        .unwrap();
    assert_eq!(node_tuples(&a, &store), node_tuples(&b, &store));
}

#[test]
fn stores_and_models_created_on_one_node_appear_on_the_other_and_deletes_follow() {
    let cluster = Cluster::new(true);
    let (a, _) = cluster.node();
    let (b, b_follower) = cluster.node();
    let store = store_with_model(&a);
    eventually("B lists A's store", || b.list_stores().iter().any(|s| s.id == store));
    eventually("B has A's model", || b.store(&store).and_then(|handle| handle.models()).is_ok_and(|m| m.len() == 1));
    assert_eq!(b.store(&store).unwrap().model(None).unwrap().id, a.store(&store).unwrap().model(None).unwrap().id);
    // A model written on A while B's follower is held: B's write with the new type finds it.
    b_follower.pause_and_park();
    let model = a.store(&store).unwrap().write_model(writ::Model::parse_dsl(MODEL_WITH_FOLDER).unwrap()).unwrap();
    write(&b, &store, &["folder:x#viewer@user:anne"]).unwrap();
    assert_eq!(b.store(&store).unwrap().model(None).unwrap().id, model);
    // A store created on A is found on B at once when asked for by id, follower or not.
    let other = a.create_store("second").unwrap();
    assert_eq!(b.get_store(&other.id).unwrap(), other);
    b_follower.resume();
    a.delete_store(&store).unwrap();
    eventually("B forgets the deleted store", || b.get_store(&store).is_err());
    assert!(!b.list_stores().iter().any(|s| s.id == store));
    assert!(b.list_stores().iter().any(|s| s.id == other.id));
}

#[test]
fn a_handle_held_on_one_node_answers_store_not_found_once_another_node_deletes_the_store() {
    let cluster = Cluster::new(true);
    let (a, _) = cluster.node();
    let (b, _) = cluster.node();
    let store = store_with_model(&a);
    let held = b.store(&store).unwrap();
    write(&a, &store, &["document:1#viewer@user:anne"]).unwrap();
    a.delete_store(&store).unwrap();
    eventually("B's handle answers StoreNotFound", || matches!(held.revision(), Err(EngineError::StoreNotFound(_))));
    let request = WriteRequest {
        writes: vec![StoredTuple::new("document:2#viewer@user:anne".parse().unwrap())],
        ..WriteRequest::default()
    };
    assert!(matches!(held.write(request), Err(EngineError::StoreNotFound(_))));
    assert!(cluster.inner.get_store(&store).unwrap().is_none(), "the stale handle made no store");
}

#[test]
fn a_node_opened_late_catches_up_even_while_others_write() {
    let cluster = Cluster::new(false);
    let (a, _) = cluster.node();
    let store = store_with_model(&a);
    // More changelog entries than one catch-up query reads, in writes of several sizes.
    for i in 0..30 {
        let tuples: Vec<String> = (0..(i % 7) * 20 + 1).map(|j| format!("document:{i}-{j}#viewer@user:u{j}")).collect();
        let refs: Vec<&str> = tuples.iter().map(String::as_str).collect();
        write(&a, &store, &refs).unwrap();
    }
    delete(&a, &store, &["document:0-0#viewer@user:u0"]).unwrap();
    // C opens while A keeps writing (some during C's own tuple read).
    let (c, _) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for i in 0..40 {
                write(&a, &store, &[&format!("document:late{i}#viewer@user:late")]).unwrap();
                if i % 2 == 0 {
                    delete(&a, &store, &[&format!("document:late{i}#viewer@user:late")]).unwrap();
                }
            }
        });
        let node = cluster.node_with(|backend| {
            let inner = cluster.inner.clone();
            let store = store.clone();
            // Another write lands between C's revision read and its tuple read.
            *backend.during_tuples.lock().unwrap() = Some(Box::new(move || {
                let tuple = StoredTuple::new("document:during#viewer@user:during".parse().unwrap());
                inner.write(&store, &WriteBatch::new(&[], &[tuple], 0)).unwrap();
            }));
        });
        writer.join().unwrap();
        node
    });
    let last = cluster.inner.revision(&store).unwrap();
    c.store(&store).unwrap().wait_for_revision(last, Duration::from_secs(10)).unwrap();
    eventually("C is caught up", || c.caught_up());
    assert_eq!(node_tuples(&c, &store), (cluster.tuples(&store), last));
    assert!(allowed(&c, &store, "user:during", "document:during"));
    assert!(!allowed(&c, &store, "user:u0", "document:0-0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_revision_seen_at_start() {
    let cluster = Cluster::new(true);
    let (a, _) = cluster.node();
    let store = store_with_model(&a);
    write(&a, &store, &["document:1#viewer@user:anne"]).unwrap();
    let inner = cluster.inner.clone();
    let hook_store = store.clone();
    let mut gate = None;
    let (c, _) = cluster.node_with(|backend| {
        // Held before its first pass, and a write lands between the two revision reads at start.
        backend.gate.pause();
        gate = Some(backend.gate.clone());
        *backend.during_tuples.lock().unwrap() = Some(Box::new(move || {
            let tuple = StoredTuple::new("document:2#viewer@user:bob".parse().unwrap());
            inner.write(&hook_store, &WriteBatch::new(&[], &[tuple], 0)).unwrap();
        }));
    });
    let gate = gate.unwrap();
    let c = Arc::new(c);
    let app = writ::api::router(c.clone());
    assert!(!c.caught_up());
    let (status, body) = call(&app, "GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    gate.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = call(&app, "GET", "/readyz", None).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "never ready");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(c.store(&store).unwrap().revision().unwrap(), 2);
    let check = json!({"tuple_key": tuple("user:bob", "viewer", "document:2"), "at_least_revision": 2});
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/check"), Some(check)).await;
    assert_eq!((status, body["allowed"].as_bool()), (StatusCode::OK, Some(true)), "{body}");
}

#[test]
fn a_node_that_has_not_caught_up_answers_revision_unavailable_after_a_bounded_wait() {
    let cluster = Cluster::new(true);
    let (a, _) = cluster.node();
    let (b, b_follower) = cluster.node();
    let store = store_with_model(&a);
    b.catch_up().unwrap();
    b_follower.pause_and_park();
    let revision = write(&a, &store, &["document:1#viewer@user:anne"]).unwrap();
    let error = b.store(&store).unwrap().wait_for_revision(revision, Duration::from_millis(50)).unwrap_err();
    assert!(matches!(error, EngineError::RevisionUnavailable { requested, current: 0, .. } if requested == revision));
    b_follower.resume();
    assert_eq!(b.store(&store).unwrap().wait_for_revision(revision, Duration::from_secs(10)).unwrap(), revision);
}

#[test]
fn the_follower_thread_ends_when_its_engine_is_dropped() {
    let cluster = Cluster::new(false);
    let (a, _) = cluster.node();
    store_with_model(&a);
    assert!(Arc::strong_count(&cluster.inner) > 1);
    drop(a);
    eventually("the follower let go of the datastore", || Arc::strong_count(&cluster.inner) == 1);
}
