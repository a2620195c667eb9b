//! Explain against check on generated data (issue 28): seeded models (each rewrite kind: direct,
//! usersets, nested groups, arrows, intersection, exclusion, wildcards) and seeded random tuples;
//! over thousands of checks, `explain.allowed == check.allowed`, every `path` tuple of an allow
//! exists, and for a deny the first `would_allow` tuple, written alone, makes the check allow.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use writ::engine::{CheckRequest, ReadFilter, WriteRequest};
use writ::store::{MemoryStore, StoredTuple};
use writ::tuple::{Context, Tuple};
use writ::{Engine, EngineConfig, Model};

/// The generated models share the types; the relations of `doc` differ in their rewrites.
const TYPES: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, group#member] or viewer from parent
type doc
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user, group#member]
";

const DOC_RELATIONS: &[&str] = &[
    "    define viewer: [user, group#member] or owner or viewer from parent\n",
    "    define viewer: ([user, group#member] or viewer from parent) but not blocked\n",
    "    define viewer: [user, user:*] and viewer from parent\n",
    "    define viewer: (owner or viewer from parent) but not blocked\n",
];

const USERS: usize = 6;
const GROUPS: usize = 5;
const FOLDERS: usize = 5;
const DOCS: usize = 5;

fn random_tuple(rng: &mut StdRng) -> String {
    let user = |rng: &mut StdRng| format!("user:u{}", rng.gen_range(0..USERS));
    let group = |rng: &mut StdRng| format!("group:g{}", rng.gen_range(0..GROUPS));
    let folder = |rng: &mut StdRng| format!("folder:f{}", rng.gen_range(0..FOLDERS));
    let doc = |rng: &mut StdRng| format!("doc:d{}", rng.gen_range(0..DOCS));
    match rng.gen_range(0..10) {
        0 => format!("{}#member@{}", group(rng), user(rng)),
        1 => format!("{}#member@{}#member", group(rng), group(rng)),
        2 => format!("{}#parent@{}", folder(rng), folder(rng)),
        3 => format!("{}#viewer@{}", folder(rng), user(rng)),
        4 => format!("{}#viewer@{}#member", folder(rng), group(rng)),
        5 => format!("{}#parent@{}", doc(rng), folder(rng)),
        6 => format!("{}#owner@{}", doc(rng), user(rng)),
        7 => format!("{}#blocked@{}", doc(rng), user(rng)),
        8 => format!("{}#blocked@{}#member", doc(rng), group(rng)),
        _ => format!("{}#member@user:*", group(rng)),
    }
}

fn request(object: String, user: String) -> CheckRequest {
    CheckRequest {
        object,
        relation: "viewer".into(),
        user,
        contextual_tuples: Vec::new(),
        context: Context::new(),
        model_id: None,
    }
}

fn allowed(engine: &Engine, store: &str, request: &CheckRequest) -> bool {
    engine.store(store).and_then(|store| store.check(request)).map(|answer| answer.value).unwrap_or(false)
}

fn exists(engine: &Engine, store: &str, tuple: &Tuple) -> bool {
    let filter = ReadFilter {
        object_type: Some(tuple.object.object_type.clone()),
        object_id: Some(tuple.object.id.clone()),
        relation: Some(tuple.relation.clone()),
        user: Some(tuple.subject.to_string()),
    };
    engine.store(store).and_then(|store| store.read(&filter)).map(|found| !found.value.is_empty()).unwrap_or(false)
}

#[test]
fn explain_agrees_with_check_on_generated_models_and_tuples() {
    let mut checks = 0;
    let mut allows = 0;
    let mut fixes = 0;
    for seed in 0..16u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let model = format!("{TYPES}{}", DOC_RELATIONS[(seed as usize) % DOC_RELATIONS.len()]);
        let engine = Engine::open(Box::new(MemoryStore::new()), EngineConfig::default()).unwrap();
        let store = engine.create_store("props").unwrap().id;
        engine.store(&store).unwrap().write_model(Model::parse_dsl(&model).unwrap()).unwrap();
        let mut tuples: Vec<String> = (0..rng.gen_range(10..60)).map(|_| random_tuple(&mut rng)).collect();
        tuples.sort();
        tuples.dedup();
        let writes = tuples.iter().map(|t| StoredTuple::new(t.parse().unwrap())).collect();
        engine.store(&store).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
        for _ in 0..150 {
            let object = if rng.gen_bool(0.7) {
                format!("doc:d{}", rng.gen_range(0..DOCS))
            } else {
                format!("folder:f{}", rng.gen_range(0..FOLDERS))
            };
            let check = request(object, format!("user:u{}", rng.gen_range(0..USERS)));
            let expected = allowed(&engine, &store, &check);
            let explanation = engine.store(&store).unwrap().explain(&check).unwrap().value;
            checks += 1;
            assert_eq!(explanation.allowed, expected, "seed {seed}: {check:?}");
            if expected {
                allows += 1;
                for entry in &explanation.path {
                    assert!(
                        exists(&engine, &store, &entry.tuple),
                        "seed {seed}: path tuple {} is not stored",
                        entry.tuple
                    );
                }
                continue;
            }
            let Some(first) = explanation.would_allow.first() else { continue };
            fixes += 1;
            engine
                .store(&store)
                .unwrap()
                .write(WriteRequest { writes: vec![StoredTuple::new(first.clone())], ..WriteRequest::default() })
                .unwrap();
            assert!(allowed(&engine, &store, &check), "seed {seed}: writing {first} did not allow {check:?}");
            engine
                .store(&store)
                .unwrap()
                .write(WriteRequest { deletes: vec![first.clone()], ..WriteRequest::default() })
                .unwrap();
            assert!(!allowed(&engine, &store, &check), "seed {seed}: deleting {first} did not restore the deny");
        }
    }
    assert_eq!(checks, 2400);
    // The generator must reach both sides, or the properties above were vacuous.
    assert!(allows > 100 && fixes > 100, "allows {allows}, denies fixed {fixes}");
}
