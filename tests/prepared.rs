//! Prepared checks (issue 34, item 2) answer exactly as the string check: a seeded random store
//! with nested groups, folders, wildcards and conditional tuples, and a few thousand random
//! (object, subject) pairs, some of them naming objects and subjects no tuple names.

use writ::engine::{CheckRequest, ListObjectsRequest, WriteRequest};
use writ::tuple::{Context, StoredTuple, TupleCondition};
use writ::{Engine, Model, Tuple};

const MODEL: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*, group#member, user with small]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member, user with small] or viewer from parent
type document
  relations
    define parent: [folder]
    define banned: [user, user with small]
    define viewer: [user, user:*, group#member, user with small] or viewer from parent
    define reader: viewer but not banned
condition small(x: int, limit: int) {
  x < limit
}
";

/// A small linear congruential generator: the store and the pairs are the same on every run.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn tuple(object: String, relation: &str, user: String, rng: &mut Lcg) -> StoredTuple {
    let mut tuple = Tuple::from_parts(&object, relation, &user).unwrap();
    if user.starts_with("user:u") && rng.below(5) == 0 {
        let mut context = Context::new();
        context.insert("x".into(), rng.below(4).into());
        context.insert("limit".into(), 2.into());
        tuple.condition = Some(TupleCondition { name: "small".into(), context });
    }
    StoredTuple::new(tuple)
}

#[test]
fn prepared_check_answers_as_the_string_check() {
    let engine = Engine::in_memory();
    let store_id = engine.create_store("prepared").unwrap().id;
    let store = engine.store(&store_id).unwrap();
    store.write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let mut rng = Lcg(34);
    let mut writes = Vec::new();
    for g in 0..8 {
        for _ in 0..3 {
            writes.push(tuple(format!("group:g{g}"), "member", format!("user:u{}", rng.below(30)), &mut rng));
        }
        if g > 0 {
            writes.push(tuple(format!("group:g{g}"), "member", format!("group:g{}#member", rng.below(g)), &mut rng));
        }
    }
    writes.push(tuple("group:g7".into(), "member", "user:*".into(), &mut rng));
    for f in 1..12 {
        writes.push(tuple(format!("folder:f{f}"), "parent", format!("folder:f{}", rng.below(f)), &mut rng));
        writes.push(tuple(format!("folder:f{f}"), "viewer", format!("user:u{}", rng.below(30)), &mut rng));
    }
    writes.push(tuple("folder:f0".into(), "viewer", "group:g3#member".into(), &mut rng));
    for d in 0..60 {
        writes.push(tuple(format!("document:d{d}"), "parent", format!("folder:f{}", rng.below(12)), &mut rng));
        let subject = match rng.below(4) {
            0 => format!("group:g{}#member", rng.below(8)),
            1 if d % 10 == 0 => "user:*".to_string(),
            _ => format!("user:u{}", rng.below(30)),
        };
        writes.push(tuple(format!("document:d{d}"), "viewer", subject, &mut rng));
        if rng.below(3) == 0 {
            writes.push(tuple(format!("document:d{d}"), "banned", format!("user:u{}", rng.below(30)), &mut rng));
        }
    }
    let mut seen = std::collections::HashSet::new();
    writes.retain(|stored| {
        let t = &stored.tuple;
        seen.insert(format!("{}#{}@{}", t.object, t.relation, t.subject))
    });
    store.write(WriteRequest { writes, ..Default::default() }).unwrap();

    let users = || (0..34).map(|u| format!("user:u{u}")).chain(["user:*".to_string()]);
    let groups = || (0..9).map(|g| format!("group:g{g}#member"));
    let mut compared = 0;
    for relation in ["viewer", "reader"] {
        let prepared = store.prepare("document", relation, "user").unwrap();
        let by_group = store.prepare("document", relation, "group#member").unwrap();
        for _ in 0..2_000 {
            let object = format!("document:d{}", rng.below(64));
            let user = if rng.below(5) == 0 {
                groups().nth(rng.below(9)).unwrap()
            } else {
                users().nth(rng.below(35)).unwrap()
            };
            let request = CheckRequest {
                object: object.clone(),
                relation: relation.into(),
                user: user.clone(),
                ..Default::default()
            };
            let expected = store.check(&request).unwrap().value;
            let (object_handle, subject_handle) = (store.object(&object).unwrap(), store.subject(&user).unwrap());
            let query = if user.contains('#') { &by_group } else { &prepared };
            assert_eq!(
                query.check(&store, &object_handle, &subject_handle).unwrap(),
                expected,
                "{object}#{relation}@{user}"
            );
            compared += 1;
        }
        // Lookups by id name the same objects as the string lookup.
        let snapshot = store.snapshot().unwrap();
        for user in users() {
            let subject = store.subject(&user).unwrap();
            let ids = prepared.list_object_ids_at(&snapshot, &subject).unwrap();
            let mut names: Vec<String> = snapshot.object_names(&ids).map(|id| format!("document:{id}")).collect();
            names.sort();
            let request = ListObjectsRequest {
                object_type: "document".into(),
                relation: relation.into(),
                user,
                ..Default::default()
            };
            assert_eq!(names, store.list_objects(&request).unwrap().value);
        }
    }
    assert_eq!(compared, 4_000);
}

#[test]
fn prepared_check_sees_new_tuples_and_keeps_its_model() {
    let engine = Engine::in_memory();
    let store_id = engine.create_store("prepared").unwrap().id;
    let store = engine.store(&store_id).unwrap();
    let first = store.write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let prepared = store.prepare("document", "viewer", "user").unwrap();
    // Neither name is known yet: the handles look them up again at each check.
    let (doc, anne) = (store.object("document:new").unwrap(), store.subject("user:anne").unwrap());
    assert!(!doc.is_known() && !anne.is_known());
    assert!(!prepared.check(&store, &doc, &anne).unwrap());
    let grant = Tuple::from_parts("document:new", "viewer", "user:anne").unwrap();
    store.write(WriteRequest { writes: vec![StoredTuple::new(grant)], ..Default::default() }).unwrap();
    assert!(prepared.check(&store, &doc, &anne).unwrap());
    // A later model does not change the prepared one.
    let narrower = MODEL.replace("define reader: viewer but not banned", "define reader: [user]");
    store.write_model(Model::parse_dsl(&narrower).unwrap()).unwrap();
    assert_eq!(prepared.model_id(), first);
    assert!(prepared.check(&store, &doc, &anne).unwrap());
    // A subject of another type than the prepared one is refused, not answered.
    let group = store.subject("group:g#member").unwrap();
    assert!(prepared.check(&store, &doc, &group).is_err());
    assert!(store.prepare("document", "nope", "user").is_err());
}
