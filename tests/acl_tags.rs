//! ACL tags (DESIGN §11): the snapshot, delta and memberships routes through HTTP, and a seeded
//! property test over random models and tuples: wherever tags are exact, `tags(o) ∩
//! memberships(p) ≠ ∅` equals `check(p, viewer, o)`, also after random writes and deletes applied
//! to a client's copy through the deltas; where they are not, `visibility` never says `acl_tags`.

use crate::support::http::{call, error_code, tuple};
use crate::visibility::fixture;
use axum::http::StatusCode;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use writ::api::Api;
use writ::api::ApiOptions;
use writ::engine::{
    AclTagChanges, AclTagsRequest, ChangeCursor, CheckRequest, VisibilityRequest, VisibilityStrategy, WriteRequest,
};
use writ::store::StoredTuple;
use writ::{Engine, Model, Tuple};

async fn get(app: &Api, uri: &str) -> (StatusCode, Value) {
    call(app, "GET", uri, None).await
}

/// Every page of the snapshot through HTTP: (exact, revision, object → tags).
async fn snapshot(app: &Api, store: &str, relation: &str, page_size: usize) -> (bool, u64, BTreeMap<String, Value>) {
    let (mut objects, mut token, mut pages) = (BTreeMap::new(), String::new(), 0);
    loop {
        let uri = format!(
            "/stores/{store}/writ/acl-tags?object_type=document&relation={relation}&page_size={page_size}&continuation_token={token}"
        );
        let (status, page) = get(app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        for object in page["objects"].as_array().unwrap() {
            assert!(!object["tags"].as_array().unwrap().is_empty(), "a listed object has tags: {object}");
            objects.insert(object["object"].as_str().unwrap().to_string(), object["tags"].clone());
        }
        token = page["continuation_token"].as_str().unwrap().to_string();
        if token.is_empty() {
            assert!(pages >= objects.len().div_ceil(page_size), "pages hold at most page_size objects");
            return (page["exact"].as_bool().unwrap(), page["revision"].as_u64().unwrap(), objects);
        }
    }
}

#[tokio::test]
async fn acl_tags_snapshot_lists_each_objects_grants_and_its_folders_paged() {
    let (app, store) = fixture(ApiOptions::default()).await;
    let (exact, revision, objects) = snapshot(&app, &store, "viewer", 5).await;
    assert_eq!((exact, revision), (true, 1));
    let mut expected: BTreeMap<String, Value> = (2..10)
        .map(|i| (format!("document:d{i}"), json!(["group:all#member"])))
        .chain([
            ("document:d0".to_string(), json!(["agent:bot", "group:all#member"])),
            ("document:d1".to_string(), json!(["agent:bot", "group:all#member"])),
            ("document:pub".to_string(), json!(["user:*"])),
            ("document:d10".to_string(), json!(["user:bob"])),
        ])
        .collect();
    assert_eq!(objects, expected);
    // `but not` makes `can_view` not exact; its tags are still walked (the base's).
    let (exact, _, can_view) = snapshot(&app, &store, "can_view", 100).await;
    assert!(!exact);
    assert_eq!(can_view, expected);
    // anne's memberships meet the tags of exactly the documents she may view.
    let uri = format!("/stores/{store}/writ/memberships");
    let (status, answer) = call(&app, "POST", &uri, Some(json!({"principal": "user:anne"}))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        json!({"memberships": ["user:anne", "user:*", "group:all#member", "group:eng#member"], "revision": 1})
    );
    let (_, answer) = call(&app, "POST", &uri, Some(json!({"principal": "agent:bot"}))).await;
    assert_eq!(answer, json!({"memberships": ["agent:bot", "agent:*"], "revision": 1}));
    expected.retain(|_, tags| !tags.as_array().unwrap().contains(&json!("agent:bot")));
}

#[tokio::test]
async fn acl_tag_changes_name_retagged_objects_and_descendants_but_not_membership_changes() {
    let (app, store) = fixture(ApiOptions::default()).await;
    let changes = |after: u64| {
        format!("/stores/{store}/writ/acl-tags/changes?object_type=document&relation=viewer&after_revision={after}")
    };
    let write = |writes: Vec<Value>, deletes: Vec<Value>| {
        let mut body = json!({});
        if !writes.is_empty() {
            body["writes"] = json!({"tuple_keys": writes});
        }
        if !deletes.is_empty() {
            body["deletes"] = json!({"tuple_keys": deletes});
        }
        body
    };
    let uri = format!("/stores/{store}/write");
    // Nothing changed after revision 1.
    let (status, answer) = get(&app, &changes(1)).await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"exact": true, "objects": [], "revision": 1, "continuation_token": ""}))
    );
    // carl views the folder holding d0..d9: all ten are retagged.
    let (status, _) =
        call(&app, "POST", &uri, Some(write(vec![tuple("user:carl", "viewer", "folder:sub")], vec![]))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, answer) = get(&app, &changes(1)).await;
    let objects = answer["objects"].as_array().unwrap();
    assert_eq!((objects.len(), answer["revision"].as_u64()), (10, Some(2)), "{answer}");
    assert!(objects.iter().all(|o| o["tags"].as_array().unwrap().contains(&json!("user:carl"))), "{answer}");
    // Joining a group changes memberships, not tags.
    let (status, _) =
        call(&app, "POST", &uri, Some(write(vec![tuple("user:carl", "member", "group:eng")], vec![]))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, answer) = get(&app, &changes(2)).await;
    assert_eq!(answer, json!({"exact": true, "objects": [], "revision": 3, "continuation_token": ""}));
    // Cutting the folder from its parent drops the parent's grant from every document below.
    let (status, _) =
        call(&app, "POST", &uri, Some(write(vec![], vec![tuple("folder:root", "parent", "folder:sub")]))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, answer) = get(&app, &changes(3)).await;
    let objects = answer["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 10, "{answer}");
    let d5 = objects.iter().find(|o| o["object"] == "document:d5").unwrap();
    assert_eq!(d5["tags"], json!(["user:carl"]));
    // A revision the store has not reached cannot be followed: resnapshot.
    let (status, answer) = get(&app, &changes(99)).await;
    assert_eq!(error_code(status, &answer), "acl_tags_resnapshot_required", "{answer}");
}

#[tokio::test]
async fn acl_tag_routes_reject_bad_input_with_codes_naming_the_field() {
    let (app, store) = fixture(ApiOptions::default()).await;
    let tags = format!("/stores/{store}/writ/acl-tags");
    let changes = format!("/stores/{store}/writ/acl-tags/changes");
    for (uri, code, names) in [
        (format!("{tags}?relation=viewer"), "validation_error", "object_type"),
        (format!("{tags}?object_type=document"), "validation_error", "relation"),
        (format!("{tags}?object_type=doc&relation=viewer"), "type_not_found", "doc"),
        (format!("{tags}?object_type=document&relation=nope"), "relation_not_found", "nope"),
        (format!("{tags}?object_type=document&relation=viewer&page_size=1000"), "page_size_too_large", "page_size"),
        (format!("{tags}?object_type=document&relation=viewer&page_size=-1"), "validation_error", "page_size"),
        (
            format!("{tags}?object_type=document&relation=viewer&continuation_token=zz"),
            "invalid_continuation_token",
            "token",
        ),
        (format!("{changes}?object_type=document&relation=viewer"), "validation_error", "after_revision"),
        (
            format!("{changes}?object_type=document&relation=viewer&after_revision=x"),
            "validation_error",
            "after_revision",
        ),
        (
            format!("{changes}?object_type=document&relation=viewer&continuation_token=7a"),
            "invalid_continuation_token",
            "token",
        ),
    ] {
        let (status, answer) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} → {answer}");
        assert_eq!(error_code(status, &answer), code, "{uri} → {answer}");
        assert!(answer["message"].as_str().unwrap().contains(names), "{uri} → {answer}");
    }
    let memberships = format!("/stores/{store}/writ/memberships");
    for (body, names) in [
        (json!({}), "principal"),
        (json!({"principal": "anne"}), "principal"),
        (json!({"principal": "robot:x"}), "robot"),
        (json!({"principal": 7}), "principal"),
    ] {
        let (status, answer) = call(&app, "POST", &memberships, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert!(answer["message"].as_str().unwrap().contains(names), "{body} → {answer}");
    }
    let (status, answer) =
        get(&app, "/stores/01JNOSUCHSTORE000000000000/writ/acl-tags?object_type=document&relation=viewer").await;
    assert_eq!(error_code(status, &answer), "store_id_not_found");
}

/// A model shape for the property test: its `document#viewer`, whether its tags are exact, and
/// the tuples it admits as (object type, relation, subject forms).
struct Shape {
    name: &'static str,
    document: &'static str,
    exact: bool,
    /// The subjects `document#viewer` admits directly: `user`, `user:*`, `group#member`.
    viewer: &'static [&'static str],
    /// Extra relations on `document` the random tuples may write, with the subjects they admit.
    extra: &'static [(&'static str, &'static [&'static str])],
    /// Whether `group#member` is `[user, group#member] but not banned`.
    banned_groups: bool,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "direct_wildcard_groups_folders",
        document: "define viewer: [user, user:*, group#member] or viewer from parent",
        exact: true,
        viewer: &["user", "user:*", "group#member"],
        extra: &[],
        banned_groups: false,
    },
    Shape {
        name: "computed_owner",
        document: "define owner: [user]\n    define viewer: [user, group#member] or owner",
        exact: true,
        viewer: &["user", "group#member"],
        extra: &[("owner", &["user"])],
        banned_groups: false,
    },
    Shape {
        name: "computed_editor_with_parents",
        document: "define editor: [user, group#member] or viewer from parent\n    define viewer: [user] or editor",
        exact: true,
        viewer: &["user"],
        extra: &[("editor", &["user", "group#member"])],
        banned_groups: false,
    },
    Shape {
        name: "exclusion",
        document: "define blocked: [user]\n    define viewer: [user, group#member] but not blocked",
        exact: false,
        viewer: &["user", "group#member"],
        extra: &[("blocked", &["user"])],
        banned_groups: false,
    },
    Shape {
        name: "intersection",
        document: "define allowed: [user]\n    define viewer: [user, group#member, user:*] and allowed",
        exact: false,
        viewer: &["user", "group#member", "user:*"],
        extra: &[("allowed", &["user"])],
        banned_groups: false,
    },
    Shape {
        name: "conditional_grant",
        document: "define viewer: [user with open, group#member] or viewer from parent",
        exact: false,
        viewer: &["group#member"],
        extra: &[],
        banned_groups: false,
    },
    Shape {
        name: "groups_with_exclusion",
        document: "define viewer: [group#member] or viewer from parent",
        exact: false,
        viewer: &["group#member"],
        extra: &[],
        banned_groups: true,
    },
];

fn model_text(shape: &Shape) -> String {
    let member = if shape.banned_groups {
        "define banned: [user]\n    define member: [user, group#member] but not banned"
    } else {
        "define member: [user, group#member]"
    };
    let condition = if shape.document.contains("with open") { "condition open(x: bool) {\n  x\n}\n" } else { "" };
    format!(
        "model\n  schema 1.1\ntype user\ntype group\n  relations\n    {member}\ntype folder\n  relations\n    define parent: [folder]\n    define viewer: [user, group#member] or viewer from parent\ntype document\n  relations\n    define parent: [folder]\n    {}\n{condition}",
        shape.document
    )
}

const USERS: usize = 5;
const GROUPS: usize = 4;
const FOLDERS: usize = 4;
const DOCUMENTS: usize = 8;

/// A random tuple the shape's model admits (unconditioned: a conditional shape is not exact
/// whatever its tuples).
fn random_tuple(rng: &mut StdRng, shape: &Shape) -> Tuple {
    let user = |rng: &mut StdRng| format!("user:u{}", rng.gen_range(0..USERS));
    let group = |rng: &mut StdRng| format!("group:g{}", rng.gen_range(0..GROUPS));
    let folder = |rng: &mut StdRng| format!("folder:f{}", rng.gen_range(0..FOLDERS));
    let document = |rng: &mut StdRng| format!("document:d{}", rng.gen_range(0..DOCUMENTS));
    let subject = |rng: &mut StdRng, forms: &[&str]| match forms.choose(rng).copied().unwrap_or("user") {
        "user:*" => "user:*".to_string(),
        "group#member" => format!("{}#member", group(rng)),
        _ => user(rng),
    };
    let mut choices: Vec<u8> = vec![0, 1, 2, 3, 4, 5];
    if shape.banned_groups {
        choices.push(6);
    }
    choices.extend(std::iter::repeat_n(7, shape.extra.len() * 2));
    let (object, relation, subject) = match choices.choose(rng).copied().unwrap_or(0) {
        0 => (group(rng), "member", user(rng)),
        1 => (group(rng), "member", format!("{}#member", group(rng))),
        2 => (folder(rng), "parent", folder(rng)),
        3 => (folder(rng), "viewer", if rng.gen_bool(0.5) { user(rng) } else { format!("{}#member", group(rng)) }),
        4 => (document(rng), "parent", folder(rng)),
        5 => (document(rng), "viewer", subject(rng, shape.viewer)),
        6 => (group(rng), "banned", user(rng)),
        _ => {
            let (relation, subjects) = *shape.extra.choose(rng).unwrap_or(&("viewer", shape.viewer));
            (document(rng), relation, subject(rng, subjects))
        }
    };
    Tuple::from_parts(&object, relation, &subject).unwrap()
}

/// The tuples without repeats (a write may not name one twice).
fn distinct(tuples: Vec<Tuple>) -> Vec<Tuple> {
    let by_text: BTreeMap<String, Tuple> = tuples.into_iter().map(|t| (t.to_string(), t)).collect();
    by_text.into_values().collect()
}

fn request(relation: &str) -> AclTagsRequest {
    AclTagsRequest { object_type: "document".into(), relation: relation.into(), model_id: None }
}

/// The whole snapshot through the engine: (exact, revision, object → tags).
fn engine_snapshot(engine: &Engine, store: &str) -> (bool, u64, BTreeMap<String, BTreeSet<String>>) {
    let (mut objects, mut after) = (BTreeMap::new(), None);
    loop {
        let page = engine.store(store).unwrap().acl_tags(&request("viewer"), 3, after).unwrap();
        for object in page.objects {
            objects.insert(object.object, object.tags.into_iter().collect());
        }
        after = page.next;
        if after.is_none() {
            return (page.exact, page.revision, objects);
        }
    }
}

/// Applies every delta after `revision` to `copy`; returns the revision reached.
fn apply_deltas(engine: &Engine, store: &str, revision: u64, copy: &mut BTreeMap<String, BTreeSet<String>>) -> u64 {
    let mut after = ChangeCursor { revision, seq: u32::MAX };
    loop {
        let AclTagChanges::Delta { objects, next, revision, .. } =
            engine.store(store).unwrap().acl_tag_changes(&request("viewer"), after).unwrap()
        else {
            panic!("a revision the store passed must not need a resnapshot");
        };
        for object in objects {
            if object.tags.is_empty() {
                copy.remove(&object.object);
            } else {
                copy.insert(object.object, object.tags.into_iter().collect());
            }
        }
        match next {
            Some(cursor) => after = cursor,
            None => return revision,
        }
    }
}

/// Wherever exact: for every user and document, the tag rule equals check. Returns the pairs compared.
fn compare_with_check(engine: &Engine, store: &str, tags: &BTreeMap<String, BTreeSet<String>>, context: &str) -> usize {
    let mut compared = 0;
    for u in (0..USERS).map(|u| format!("user:u{u}")).chain(["user:stranger".to_string()]) {
        let memberships: BTreeSet<String> =
            engine.store(store).unwrap().memberships(&u, None).unwrap().value.into_iter().collect();
        for d in (0..DOCUMENTS).map(|d| format!("document:d{d}")) {
            let check =
                CheckRequest { object: d.clone(), relation: "viewer".into(), user: u.clone(), ..Default::default() };
            let Ok(allowed) = engine.store(store).unwrap().check(&check) else { continue };
            let matched = tags.get(&d).is_some_and(|t| !t.is_disjoint(&memberships));
            assert_eq!(
                matched,
                allowed.value,
                "{context}: {u} on {d}: tags {:?}, memberships {memberships:?}",
                tags.get(&d)
            );
            compared += 1;
        }
    }
    compared
}

#[test]
fn exact_tags_match_check_and_deltas_keep_a_client_copy_equal_to_the_snapshot() {
    let seeds: u64 = std::env::var("WRIT_ACL_TAG_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
    let mut compared = 0;
    for shape in SHAPES {
        for seed in 0..seeds {
            let context = format!("shape {} seed {seed}", shape.name);
            let mut rng = StdRng::seed_from_u64(seed);
            let engine = Engine::in_memory();
            let store = engine.create_store("tags").unwrap().id;
            engine.store(&store).unwrap().write_model(Model::parse_dsl(&model_text(shape)).unwrap()).unwrap();
            let writes = distinct((0..30).map(|_| random_tuple(&mut rng, shape)).collect());
            let writes: Vec<StoredTuple> = writes.into_iter().map(StoredTuple::new).collect();
            engine
                .store(&store)
                .unwrap()
                .write(WriteRequest { writes, ignore_duplicates: true, ..Default::default() })
                .unwrap();
            let (exact, mut revision, mut copy) = engine_snapshot(&engine, &store);
            assert_eq!(exact, shape.exact, "{context}");
            for round in 0..4 {
                if exact {
                    compared += compare_with_check(&engine, &store, &copy, &format!("{context} round {round}"));
                } else {
                    for u in 0..USERS {
                        let visibility = VisibilityRequest {
                            principals: vec![format!("user:u{u}")],
                            relation: "viewer".into(),
                            object_type: "document".into(),
                            ..Default::default()
                        };
                        let answer = engine.store(&store).unwrap().visibility(&visibility).unwrap().value;
                        assert_ne!(answer.strategy, VisibilityStrategy::AclTags, "{context}");
                    }
                }
                // Random writes and deletes, then the deltas bring the copy to the new snapshot.
                let held = engine.store(&store).unwrap().tuple_count().unwrap();
                let writes = distinct((0..rng.gen_range(1..5)).map(|_| random_tuple(&mut rng, shape)).collect());
                let deletes =
                    distinct((0..rng.gen_range(0..held.min(6) + 1)).map(|_| random_tuple(&mut rng, shape)).collect());
                let deletes: Vec<Tuple> = deletes.into_iter().filter(|d| !writes.contains(d)).collect();
                let writes: Vec<StoredTuple> = writes.into_iter().map(StoredTuple::new).collect();
                let write = WriteRequest {
                    writes,
                    deletes,
                    ignore_duplicates: true,
                    ignore_missing: true,
                    ..Default::default()
                };
                engine.store(&store).unwrap().write(write).unwrap();
                revision = apply_deltas(&engine, &store, revision, &mut copy);
                let (_, now, fresh) = engine_snapshot(&engine, &store);
                assert_eq!(revision, now, "{context} round {round}");
                assert_eq!(copy, fresh, "{context} round {round}: the copy kept by deltas equals the snapshot");
            }
        }
    }
    assert!(compared > 1000, "compared only {compared} (principal, object) pairs");
}
