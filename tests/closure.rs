//! Nested groups answered from the group closure equal the ordinary walk and plain graph search.
//!
//! After each step of seeded random write/delete sequences over small group graphs (cycles,
//! self-loops, deletes that split chains), every check and list-objects answer is compared with
//! (a) breadth-first search over the tuples written, and (b) the same request with a contextual
//! tuple on `group#member`, which makes the engine take its ordinary (non-closure) path.

use crate::support::fixture::{check_request, store_with};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use writ::engine::{CheckRequest, ListObjectsRequest, WriteRequest};
use writ::store::StoredTuple;
use writ::{Engine, Model, Tuple};

const GROUPS: usize = 7;
const USERS: usize = 4;

/// An unrelated contextual tuple on `group#member`: it changes no answer asked below, but the
/// engine then evaluates `group#member` without the closure.
fn fallback_tuple() -> Tuple {
    "group:unrelated#member@user:nobody".parse().unwrap()
}

fn write(engine: &Engine, store: &str, writes: &[Tuple], deletes: &[Tuple]) {
    let request = WriteRequest {
        writes: writes.iter().cloned().map(StoredTuple::new).collect(),
        deletes: deletes.to_vec(),
        ignore_duplicates: true,
        ignore_missing: true,
        ..WriteRequest::default()
    };
    engine.store(store).unwrap().write(request).unwrap();
}

/// The answer (or the error's text) to a check, with or without the fallback tuple.
fn check(engine: &Engine, store: &str, object: &str, user: &str, fallback: bool) -> Result<bool, String> {
    let request = CheckRequest {
        contextual_tuples: if fallback { vec![fallback_tuple()] } else { Vec::new() },
        ..check_request(&format!("{object}#member@{user}"))
    };
    engine.store(store).and_then(|store| store.check(&request)).map(|a| a.value).map_err(|e| e.to_string())
}

fn list_groups(engine: &Engine, store: &str, user: &str, fallback: bool) -> BTreeSet<String> {
    let request = ListObjectsRequest {
        object_type: "group".into(),
        relation: "member".into(),
        user: user.into(),
        contextual_tuples: if fallback { vec![fallback_tuple()] } else { Vec::new() },
        ..ListObjectsRequest::default()
    };
    let mut groups: BTreeSet<String> =
        engine.store(store).unwrap().list_objects(&request).unwrap().value.into_iter().collect();
    groups.remove("group:unrelated");
    groups
}

/// Groups each subject is a member of, by breadth-first search over `tuples` (subjects are
/// `user:uN`, and `group:gN#member` which is a member of its own group).
fn reference(tuples: &BTreeSet<String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut up: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for text in tuples {
        let tuple: Tuple = text.parse().unwrap();
        up.entry(tuple.subject.to_string()).or_default().push(format!("{}#member", tuple.object));
    }
    let mut subjects: Vec<String> = (0..USERS).map(|u| format!("user:u{u}")).collect();
    subjects.extend((0..GROUPS).map(|g| format!("group:g{g}#member")));
    let mut out = BTreeMap::new();
    for subject in subjects {
        let mut reached = BTreeSet::new();
        let mut queue = VecDeque::from([subject.clone()]);
        if subject.starts_with("group:") {
            reached.insert(subject.clone());
        }
        if subject.starts_with("user:") {
            queue.push_back("user:*".to_string());
        }
        while let Some(current) = queue.pop_front() {
            for above in up.get(&current).into_iter().flatten() {
                if reached.insert(above.clone()) {
                    queue.push_back(above.clone());
                }
            }
        }
        let groups = reached.iter().map(|g| g.trim_end_matches("#member").to_string()).collect();
        out.insert(subject, groups);
    }
    out
}

const NESTED: &str =
    "model\n  schema 1.1\ntype user\ntype group\n  relations\n    define member: [user, user:*, group#member]\n";

#[test]
fn nested_group_answers_equal_graph_search_and_the_walk_after_random_writes() {
    for seed in 0..6u64 {
        let engine = Engine::in_memory();
        let store = store_with(&engine, NESTED, &[]);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut present: BTreeSet<String> = BTreeSet::new();
        for step in 0..40 {
            let group = rng.gen_range(0..GROUPS);
            let text = match rng.gen_range(0..10) {
                0..=5 => format!("group:g{group}#member@group:g{}#member", rng.gen_range(0..GROUPS)),
                6 => format!("group:g{group}#member@user:*"),
                _ => format!("group:g{group}#member@user:u{}", rng.gen_range(0..USERS)),
            };
            let tuple: Tuple = text.parse().unwrap();
            let delete = !present.is_empty() && rng.gen_bool(0.35);
            if delete {
                let victim = present.iter().nth(rng.gen_range(0..present.len())).unwrap().clone();
                write(&engine, &store, &[], &[victim.parse().unwrap()]);
                present.remove(&victim);
            } else {
                write(&engine, &store, &[tuple], &[]);
                present.insert(text);
            }
            let expected = reference(&present);
            for (subject, groups) in &expected {
                for g in 0..GROUPS {
                    let object = format!("group:g{g}");
                    let answer = check(&engine, &store, &object, subject, false);
                    assert_eq!(answer, Ok(groups.contains(&object)), "seed {seed} step {step}: {object} {subject}");
                    assert_eq!(answer, check(&engine, &store, &object, subject, true), "closure differs from the walk");
                }
                let listed = list_groups(&engine, &store, subject, false);
                assert_eq!(listed, list_groups(&engine, &store, subject, true), "seed {seed} step {step}: {subject}");
                // A group the store has never seen is not listed as its own member (check still
                // says yes by name), so compare with the subject's own group left aside.
                let own = subject.trim_end_matches("#member");
                let without_own =
                    |set: &BTreeSet<String>| set.iter().filter(|g| *g != own).cloned().collect::<Vec<_>>();
                assert_eq!(without_own(&listed), without_own(groups), "seed {seed} step {step}: {subject}");
            }
        }
    }
}

/// A chain deeper than the depth limit: the closure must not answer what the walk cannot.
#[test]
fn nested_groups_deeper_than_the_depth_limit_still_exceed_it() {
    let engine = Engine::in_memory();
    let store = store_with(&engine, NESTED, &[]);
    let mut tuples: Vec<Tuple> =
        (0..30).map(|i| format!("group:c{i}#member@group:c{}#member", i + 1).parse().unwrap()).collect();
    tuples.push("group:c30#member@user:deep".parse().unwrap());
    write(&engine, &store, &tuples, &[]);
    for i in 0..=30 {
        let object = format!("group:c{i}");
        let answer = check(&engine, &store, &object, "user:deep", false);
        assert_eq!(answer, check(&engine, &store, &object, "user:deep", true), "{object}");
        assert_eq!(answer.is_ok(), 30 - i <= 25, "{object}: {answer:?}");
    }
    assert_eq!(check(&engine, &store, "group:c5", "user:deep", false), Ok(true));
    assert!(check(&engine, &store, "group:c0", "user:deep", false).is_err());
}

/// Models where the closure must not answer alone (another userset kind, a rewrite beyond
/// `this`, conditioned edges, edges the model stops admitting) give the walk's answers.
#[test]
fn other_relation_shapes_fall_back_to_the_walk() {
    let models = [
        "model\n  schema 1.1\ntype user\ntype team\n  relations\n    define member: [user, group#member]\ntype group\n  relations\n    define member: [user, group#member, team#member]\n",
        "model\n  schema 1.1\ntype user\ntype team\n  relations\n    define member: [user, group#member]\ntype group\n  relations\n    define owner: [user, team#member]\n    define member: [user, group#member] or owner\n",
        "model\n  schema 1.1\ntype user\ntype team\n  relations\n    define member: [user]\ntype group\n  relations\n    define member: [user, group#member, group#member with yes]\ncondition yes(flag: bool) {\n  flag\n}\n",
    ];
    for (m, model) in models.iter().enumerate() {
        let engine = Engine::in_memory();
        let store = store_with(&engine, model, &[]);
        let mut rng = StdRng::seed_from_u64(m as u64);
        for step in 0..30 {
            let group = rng.gen_range(0..GROUPS);
            let other = rng.gen_range(0..GROUPS);
            let text = match rng.gen_range(0..8) {
                0..=3 => format!("group:g{group}#member@group:g{other}#member"),
                4 if m == 0 => format!("group:g{group}#member@team:t{other}#member"),
                4 if m == 1 => format!("group:g{group}#owner@team:t{other}#member"),
                4 => format!("group:g{group}#member@group:g{other}#member?{}", other % 2 == 0),
                5 if m < 2 => format!("team:t{group}#member@group:g{other}#member"),
                _ => format!("group:g{group}#member@user:u{}", other % USERS),
            };
            // `tuple?flag` writes the tuple with condition `yes` and that stored flag.
            let (text, flag) = match text.split_once('?') {
                Some((text, flag)) => (text.to_string(), Some(flag == "true")),
                None => (text, None),
            };
            let mut tuple: Tuple = text.parse().unwrap();
            if let Some(flag) = flag {
                let mut context = writ::tuple::Context::new();
                context.insert("flag".into(), flag.into());
                tuple.condition = Some(writ::tuple::TupleCondition { name: "yes".into(), context });
            }
            write(&engine, &store, &[tuple], &[]);
            for g in 0..GROUPS {
                for u in 0..USERS {
                    let (object, user) = (format!("group:g{g}"), format!("user:u{u}"));
                    let answer = check(&engine, &store, &object, &user, false);
                    assert_eq!(answer, check(&engine, &store, &object, &user, true), "model {m} step {step}");
                }
            }
            for u in 0..USERS {
                let user = format!("user:u{u}");
                assert_eq!(list_groups(&engine, &store, &user, false), list_groups(&engine, &store, &user, true));
            }
        }
    }
    // Edges written unconditioned, then a model that admits them only with a condition: ignored.
    let engine = Engine::in_memory();
    let store = store_with(&engine, NESTED, &[]);
    write(
        &engine,
        &store,
        &["group:a#member@group:b#member".parse().unwrap(), "group:b#member@user:x".parse().unwrap()],
        &[],
    );
    assert_eq!(check(&engine, &store, "group:a", "user:x", false), Ok(true));
    let strict = "model\n  schema 1.1\ntype user\ntype group\n  relations\n    define member: [user, group#member with yes]\ncondition yes(flag: bool) {\n  flag\n}\n";
    engine.store(&store).unwrap().write_model(Model::parse_dsl(strict).unwrap()).unwrap();
    assert_eq!(check(&engine, &store, "group:a", "user:x", false), Ok(false));
    assert_eq!(check(&engine, &store, "group:b", "user:x", false), Ok(true));
}

/// One check that meets three nesting relations (more than a check keeps inline) and asks each
/// again at every level of a folder chain gives the walk's answers and graph search's: the first
/// ask of each relation, its later asks and the kept memberships past the inline ones agree.
#[test]
fn a_walk_through_three_nesting_relations_asked_at_every_level_equals_the_walk() {
    let model = "model\n  schema 1.1\ntype user\ntype group\n  relations\n    define member: [user, group#member]\ntype team\n  relations\n    define member: [user, team#member]\ntype org\n  relations\n    define member: [user, org#member]\ntype folder\n  relations\n    define parent: [folder]\n    define viewer: [group#member, team#member, org#member] or viewer from parent\n";
    let engine = Engine::in_memory();
    let store = store_with(&engine, model, &[]);
    let mut rng = StdRng::seed_from_u64(7);
    let mut tuples: Vec<Tuple> =
        (1..6).map(|f| format!("folder:f{f}#parent@folder:f{}", f - 1).parse().unwrap()).collect();
    for kind in ["group", "team", "org"] {
        // Two chains (even and odd groups), so a member of one is in none of the other.
        for g in 2..GROUPS {
            tuples.push(format!("{kind}:g{}#member@{kind}:g{g}#member", g - 2).parse().unwrap());
        }
        for u in 0..USERS {
            let g = rng.gen_range(0..GROUPS);
            tuples.push(format!("{kind}:g{g}#member@user:u{u}").parse().unwrap());
        }
        for f in 1..6 {
            let g = rng.gen_range(0..GROUPS);
            tuples.push(format!("folder:f{f}#viewer@{kind}:g{g}#member").parse().unwrap());
        }
    }
    write(&engine, &store, &tuples, &[]);
    // A contextual tuple on each nesting relation: the engine then walks all three.
    let fallback_tuples: Vec<Tuple> = ["group", "team", "org"]
        .iter()
        .map(|kind| format!("{kind}:unrelated#member@user:nobody").parse().unwrap())
        .collect();
    let mut allowed = 0;
    for f in 0..6 {
        for u in 0..USERS {
            let request = |fallback: bool| CheckRequest {
                contextual_tuples: if fallback { fallback_tuples.clone() } else { Vec::new() },
                ..check_request(&format!("folder:f{f}#viewer@user:u{u}"))
            };
            let handle = engine.store(&store).unwrap();
            let answer = handle.check(&request(false)).unwrap().value;
            assert_eq!(answer, handle.check(&request(true)).unwrap().value, "folder:f{f} user:u{u}");
            allowed += usize::from(answer);
        }
    }
    // The seeded grants allow some checks and deny others, so both answers are compared.
    assert!(allowed > 0 && allowed < 6 * USERS, "{allowed} allowed");
}
