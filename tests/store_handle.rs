//! Store handles: `Engine::store` resolves a store once, and a handle held across the store's
//! deletion answers `StoreNotFound` to every operation instead of reaching the deleted store
//! (here, and, for a node of a shared datastore, once it learns of a delete made elsewhere: see
//! `scaleout.rs`).

use writ::engine::{CheckRequest, ReadFilter, WriteRequest};
use writ::store::StoredTuple;
use writ::{Engine, EngineError, Model};

const MODEL: &str = "model
  schema 1.1
type user
type document
  relations
    define viewer: [user]
";

fn is_store_not_found<T: std::fmt::Debug>(result: Result<T, EngineError>, id: &str) -> bool {
    matches!(result, Err(EngineError::StoreNotFound(ref missing)) if missing == id)
}

#[test]
fn a_handle_held_across_a_delete_answers_store_not_found_to_every_operation() {
    let engine = Engine::in_memory();
    let id = engine.create_store("doomed").unwrap().id;
    let store = engine.store(&id).unwrap();
    assert_eq!(store.id(), id);
    store.write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let tuple = StoredTuple::new("document:1#viewer@user:anne".parse().unwrap());
    store.write(WriteRequest { writes: vec![tuple.clone()], ..WriteRequest::default() }).unwrap();
    let check = CheckRequest {
        object: "document:1".into(),
        relation: "viewer".into(),
        user: "user:anne".into(),
        ..CheckRequest::default()
    };
    assert!(store.check(&check).unwrap().value);

    engine.delete_store(&id).unwrap();
    assert!(is_store_not_found(engine.store(&id), &id), "the engine no longer gives a handle");
    assert!(is_store_not_found(store.check(&check), &id));
    assert!(is_store_not_found(store.revision(), &id));
    assert!(is_store_not_found(store.tuple_count(), &id));
    assert!(is_store_not_found(store.models(), &id));
    assert!(is_store_not_found(store.read(&ReadFilter::default()), &id));
    assert!(is_store_not_found(store.write_model(Model::parse_dsl(MODEL).unwrap()), &id));
    assert!(is_store_not_found(store.write(WriteRequest { writes: vec![tuple], ..WriteRequest::default() }), &id));
    assert!(is_store_not_found(store.sweep_expired(), &id));
    assert!(is_store_not_found(engine.decision_log().list(&store, &Default::default()), &id));
    assert!(engine.list_stores().is_empty(), "the write through the stale handle made no store");
}

#[test]
fn a_handle_sees_writes_made_through_another_handle_on_the_same_store() {
    let engine = Engine::in_memory();
    let id = engine.create_store("shared").unwrap().id;
    let (first, second) = (engine.store(&id).unwrap(), engine.store(&id).unwrap());
    first.write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let tuple = StoredTuple::new("document:1#viewer@user:anne".parse().unwrap());
    let revision = first.write(WriteRequest { writes: vec![tuple], ..WriteRequest::default() }).unwrap();
    assert_eq!(second.revision().unwrap(), revision);
    assert_eq!(second.tuple_count().unwrap(), 1);
    assert_eq!(second.model(None).unwrap().id, first.models().unwrap()[0].id);
}

#[test]
fn a_handle_until_a_deadline_stops_every_evaluation_at_it() {
    // A batch-check evaluates all its checks against the batch's one deadline: a check that
    // starts just before it must not run a whole request timeout past it.
    let engine = Engine::in_memory();
    let id = engine.create_store("deadline").unwrap().id;
    let store = engine.store(&id).unwrap();
    let model = "model
  schema 1.1
type user
type folder
  relations
    define parent: [folder]
    define viewer: [user] or viewer from parent
";
    store.write_model(Model::parse_dsl(model).unwrap()).unwrap();
    let mut writes = vec![StoredTuple::new("folder:f3#viewer@user:anne".parse().unwrap())];
    for i in 0..3 {
        writes.push(StoredTuple::new(format!("folder:f{i}#parent@folder:f{}", i + 1).parse().unwrap()));
    }
    store.write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
    let check = CheckRequest {
        object: "folder:f0".into(),
        relation: "viewer".into(),
        user: "user:anne".into(),
        ..CheckRequest::default()
    };
    let passed = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let expired = engine.store(&id).unwrap().until(Some(passed));
    assert!(
        matches!(expired.check(&check), Err(EngineError::Eval(writ::EvalError::DeadlineExceeded))),
        "{:?}",
        expired.check(&check)
    );
    let later = std::time::Instant::now() + std::time::Duration::from_secs(60);
    assert!(engine.store(&id).unwrap().until(Some(later)).check(&check).unwrap().value);
    // `None` leaves each evaluation its own (here none: no request timeout is configured).
    assert!(store.until(None).check(&check).unwrap().value);
}
