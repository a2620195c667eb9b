//! Pathological models and data: relation cycles, self-referential `from`, a group of 100k members,
//! a 1k-deep group chain and a wide fan-out. Each request returns (no hang, no stack overflow),
//! with the right answer or, where the depth limit is due, the depth error. No timing asserts:
//! returning at all, and answering correctly, is the test.

use crate::support::fixture::{store_with, try_check, write_tuples, Fixture};
use writ::engine::{EngineError, ListObjectsRequest, ListUsersRequest, UserFilterSpec};
use writ::{Engine, EngineConfig, EvalError};

fn engine() -> Engine {
    let config = EngineConfig { max_tuples_per_write: 200_000, ..EngineConfig::default() };
    Engine::open(Box::new(writ::store::MemoryStore::new()), config).unwrap()
}

fn list_objects(engine: &Engine, store: &str, object_type: &str, relation: &str, user: &str) -> Vec<String> {
    let request = ListObjectsRequest {
        object_type: object_type.into(),
        relation: relation.into(),
        user: user.into(),
        ..ListObjectsRequest::default()
    };
    engine.store(store).unwrap().list_objects(&request).unwrap().value
}

fn list_users(engine: &Engine, store: &str, object: &str, relation: &str, filter: &str) -> Result<usize, EngineError> {
    let request = ListUsersRequest {
        object: object.into(),
        relation: relation.into(),
        user_filters: vec![UserFilterSpec { type_name: filter.into(), relation: None }],
        ..ListUsersRequest::default()
    };
    engine.store(store).and_then(|store| store.list_users(&request)).map(|answer| answer.value.len())
}

fn is_depth_error(result: &Result<bool, EngineError>) -> bool {
    matches!(result, Err(EngineError::Eval(EvalError::DepthExceeded { .. })))
}

#[test]
fn relation_cycles_resolve_to_not_allowed_unless_a_way_out_grants() {
    let engine = engine();
    let id = store_with(
        &engine,
        "model
  schema 1.1
type user
type document
  relations
    define editor: [user] or viewer
    define viewer: [user] or editor
    define owner: [user] or admin
    define admin: owner or editor
",
        &[],
    );
    write_tuples(&engine, &id, ["document:1#editor@user:anne".to_string(), "document:2#owner@user:bob".to_string()]);
    assert!(try_check(&engine, &id, "document:1#viewer@user:anne").unwrap());
    assert!(try_check(&engine, &id, "document:1#admin@user:anne").unwrap());
    assert!(!try_check(&engine, &id, "document:1#owner@user:bob").unwrap());
    assert!(!try_check(&engine, &id, "document:9#viewer@user:anne").unwrap());
    assert!(try_check(&engine, &id, "document:2#admin@user:bob").unwrap());
    assert_eq!(list_objects(&engine, &id, "document", "admin", "user:anne"), ["document:1"]);
    assert_eq!(list_objects(&engine, &id, "document", "viewer", "user:bob"), Vec::<String>::new());
    assert_eq!(list_users(&engine, &id, "document:1", "viewer", "user").unwrap(), 1);
}

#[test]
fn self_referential_from_and_parent_loops_terminate() {
    let engine = engine();
    let id = store_with(
        &engine,
        "model
  schema 1.1
type user
type folder
  relations
    define parent: [folder]
    define viewer: [user] or viewer from parent
",
        &[],
    );
    // A folder that is its own parent, and a three-folder loop with a viewer on one of them.
    write_tuples(
        &engine,
        &id,
        [
            "folder:self#parent@folder:self",
            "folder:a#parent@folder:b",
            "folder:b#parent@folder:c",
            "folder:c#parent@folder:a",
            "folder:c#viewer@user:anne",
        ]
        .map(String::from),
    );
    assert!(!try_check(&engine, &id, "folder:self#viewer@user:anne").unwrap());
    for folder in ["folder:a", "folder:b", "folder:c"] {
        assert!(try_check(&engine, &id, &format!("{folder}#viewer@user:anne")).unwrap(), "{folder}");
        assert!(!try_check(&engine, &id, &format!("{folder}#viewer@user:bob")).unwrap(), "{folder}");
    }
    assert_eq!(list_objects(&engine, &id, "folder", "viewer", "user:anne"), ["folder:a", "folder:b", "folder:c"]);
    assert_eq!(list_users(&engine, &id, "folder:a", "viewer", "user").unwrap(), 1);
    assert_eq!(list_users(&engine, &id, "folder:self", "viewer", "user").unwrap(), 0);
}

const GROUPS: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type document
  relations
    define viewer: [group#member]
";

#[test]
fn a_group_of_100k_members_answers_every_question() {
    let engine = engine();
    let id = store_with(&engine, GROUPS, &[]);
    write_tuples(&engine, &id, (0..100_000).map(|i| format!("group:big#member@user:u{i}")));
    write_tuples(&engine, &id, ["document:d#viewer@group:big#member".to_string()]);
    assert_eq!(engine.store(&id).unwrap().tuple_count().unwrap(), 100_001);
    assert!(try_check(&engine, &id, "document:d#viewer@user:u99999").unwrap());
    assert!(try_check(&engine, &id, "document:d#viewer@user:u0").unwrap());
    assert!(!try_check(&engine, &id, "document:d#viewer@user:stranger").unwrap());
    assert_eq!(list_objects(&engine, &id, "document", "viewer", "user:u31337"), ["document:d"]);
    assert_eq!(list_users(&engine, &id, "document:d", "viewer", "user").unwrap(), 100_000);
}

#[test]
fn a_1k_deep_group_chain_answers_near_the_member_and_reports_depth_far_from_it() {
    // g0 ← g1 ← ... ← g999: each group's members include the next group's; deep is in g999.
    let fixture = Fixture::on(engine(), GROUPS)
        .tuples((1..1000).map(|i| format!("group:g{}#member@group:g{i}#member", i - 1)))
        .tuples(["group:g999#member@user:deep", "document:top#viewer@group:g0#member"]);
    let (engine, id) = (&fixture.engine, &fixture.store);
    // Up to `max_depth` (25) nested groups away the answer is yes; one more is the depth error
    // (OpenFGA's `authorization_model_resolution_too_complex`), never a silent no.
    assert!(fixture.try_check("group:g990#member@user:deep").unwrap());
    assert!(fixture.try_check("group:g974#member@user:deep").unwrap());
    for far in ["group:g973", "group:g500", "group:g0"] {
        assert!(is_depth_error(&fixture.try_check(&format!("{far}#member@user:deep"))), "{far}");
    }
    assert!(is_depth_error(&fixture.try_check("document:top#viewer@user:deep")));
    // A user in none of the groups is a plain no: only the groups the user reaches are walked.
    assert!(!fixture.try_check("group:g0#member@user:stranger").unwrap());
    assert_eq!(list_users(engine, id, "group:g980", "member", "user").unwrap(), 1);
    let far = list_users(engine, id, "group:g0", "member", "user");
    assert!(matches!(far, Err(EngineError::Eval(EvalError::DepthExceeded { .. }))), "{far:?}");
    // List objects computes whole sets to a fixed point (rounds, not nested paths, so no depth to
    // exceed): every group in the chain holds deep.
    let groups = list_objects(engine, id, "group", "member", "user:deep");
    assert_eq!(groups.len(), 1000);
}

#[test]
fn a_wide_fan_out_of_parents_is_walked_to_the_one_that_grants() {
    let engine = engine();
    let id = store_with(
        &engine,
        "model
  schema 1.1
type user
type folder
  relations
    define viewer: [user]
type document
  relations
    define parent: [folder]
    define viewer: [user] or viewer from parent
",
        &[],
    );
    write_tuples(&engine, &id, (0..20_000).map(|i| format!("document:wide#parent@folder:f{i}")));
    write_tuples(&engine, &id, (0..2_000).map(|i| format!("document:d{i}#parent@folder:f19999")));
    write_tuples(&engine, &id, ["folder:f19999#viewer@user:anne".to_string()]);
    assert!(try_check(&engine, &id, "document:wide#viewer@user:anne").unwrap());
    assert!(!try_check(&engine, &id, "document:wide#viewer@user:bob").unwrap());
    let objects = list_objects(&engine, &id, "document", "viewer", "user:anne");
    assert_eq!(objects.len(), 2_001);
    assert!(objects.contains(&"document:wide".to_string()));
    assert_eq!(list_users(&engine, &id, "document:wide", "viewer", "user").unwrap(), 1);
}
