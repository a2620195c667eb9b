//! Permission-aware retrieval through HTTP (DESIGN §11): `writ/visibility` counts and strategies,
//! the filter's `examined`/`visible` counts, and bad input answered with `{code, message}`.

use crate::support::http::{call, error_code, tuple};
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use writ::api::Api;
use writ::api::{router_with, ApiOptions};
use writ::Engine;

/// Groups in groups, folders in folders, documents with an exact `viewer` and a `can_view` that
/// is not (`but not`).
pub(crate) const MODEL: &str = "model
  schema 1.1
type user
  relations
    define delegate: [agent]
type agent
type group
  relations
    define member: [user, agent, group#member]
type folder
  relations
    define parent: [folder]
    define viewer: [user, agent, group#member] or viewer from parent
type document
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: [user, user:*, agent, group#member] or owner or viewer from parent
    define blocked: [user]
    define can_view: viewer but not blocked
";

/// anne is in `group:eng`, which is in `group:all`, which views `folder:root`; `folder:sub` (in
/// root) holds d0..d9; `document:pub` is public; bob owns d10; anne's agent `bot` views d0, d1;
/// anne is blocked on d3.
pub(crate) fn tuples() -> Vec<Value> {
    let mut tuples = vec![
        tuple("user:anne", "member", "group:eng"),
        tuple("group:eng#member", "member", "group:all"),
        tuple("group:all#member", "viewer", "folder:root"),
        tuple("folder:root", "parent", "folder:sub"),
        tuple("user:*", "viewer", "document:pub"),
        tuple("user:bob", "owner", "document:d10"),
        tuple("agent:bot", "delegate", "user:anne"),
        tuple("agent:bot", "viewer", "document:d0"),
        tuple("agent:bot", "viewer", "document:d1"),
        tuple("user:anne", "blocked", "document:d3"),
    ];
    tuples.extend((0..10).map(|i| tuple("folder:sub", "parent", &format!("document:d{i}"))));
    tuples
}

/// A router over a fresh in-memory engine with one store holding [`MODEL`] and [`tuples`].
pub(crate) async fn fixture(options: ApiOptions) -> (Api, String) {
    let app = router_with(Arc::new(Engine::in_memory()), options);
    let (_, store) = call(&app, "POST", "/stores", Some(json!({"name": "retrieval"}))).await;
    let store_id = store["id"].as_str().unwrap().to_string();
    let request = axum::http::Request::builder()
        .method("PUT")
        .uri(format!("/stores/{store_id}/writ/model"))
        .header("content-type", "text/plain")
        .body(axum::body::Body::from(MODEL))
        .unwrap();
    let status = tower::ServiceExt::oneshot(app.clone(), request).await.unwrap().status();
    assert_eq!(status, StatusCode::CREATED);
    let body = json!({"writes": {"tuple_keys": tuples()}});
    let (status, answer) = call(&app, "POST", &format!("/stores/{store_id}/write"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    (app, store_id)
}

async fn visibility(app: &Api, store: &str, body: Value) -> (StatusCode, Value) {
    call(app, "POST", &format!("/stores/{store}/writ/visibility"), Some(body)).await
}

#[tokio::test]
async fn visibility_counts_from_bitmaps_and_lists_ids_up_to_max_ids() {
    let (app, store) = fixture(ApiOptions::default()).await;
    // anne sees d0..d9 through two nested groups and two folders, and the public document.
    let body = json!({"principals": ["user:anne"], "relation": "viewer", "object_type": "document"});
    let (status, answer) = visibility(&app, &store, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let ids: Vec<String> = (0..10).map(|i| format!("d{i}")).chain(["pub".to_string()]).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(answer, json!({"visible": 11, "total": 12, "strategy": "ids", "ids": sorted, "revision": 1}));
    // Past max_ids, an exact relation says acl_tags; one with `but not` says post_filter.
    for (relation, visible, strategy) in [("viewer", 11, "acl_tags"), ("can_view", 10, "post_filter")] {
        let body = json!({"principals": ["user:anne"], "relation": relation, "object_type": "document", "max_ids": 5});
        let (status, answer) = visibility(&app, &store, body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer, json!({"visible": visible, "total": 12, "strategy": strategy, "revision": 1}), "{relation}");
    }
    // At exactly max_ids the ids still come back.
    let body = json!({"principals": ["user:anne"], "relation": "can_view", "object_type": "document", "max_ids": 10});
    let (_, answer) = visibility(&app, &store, body).await;
    assert_eq!((answer["strategy"].as_str(), answer["ids"].as_array().map(Vec::len)), (Some("ids"), Some(10)));
    // Someone no tuple names sees the public document only; max_ids 0 leaves an empty id list
    // only when nothing is visible.
    let body = json!({"principals": ["user:nobody"], "relation": "viewer", "object_type": "document", "max_ids": 0});
    let (_, answer) = visibility(&app, &store, body).await;
    assert_eq!(answer, json!({"visible": 1, "total": 12, "strategy": "acl_tags", "revision": 1}));
    let body = json!({"principals": ["agent:nobody"], "relation": "viewer", "object_type": "document", "max_ids": 0});
    let (_, answer) = visibility(&app, &store, body).await;
    assert_eq!(answer, json!({"visible": 0, "total": 12, "strategy": "ids", "ids": [], "revision": 1}));
}

#[tokio::test]
async fn visibility_of_a_chain_is_what_every_principal_sees_and_a_broken_link_sees_nothing() {
    let (app, store) = fixture(ApiOptions::default()).await;
    let body = json!({"principals": ["user:anne", "agent:bot"], "relation": "viewer", "object_type": "document"});
    let (status, answer) = visibility(&app, &store, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"visible": 2, "total": 12, "strategy": "ids", "ids": ["d0", "d1"], "revision": 1}));
    // bob never delegated to the bot.
    let body = json!({"principals": ["user:bob", "agent:bot"], "relation": "viewer", "object_type": "document"});
    let (status, answer) = visibility(&app, &store, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!((answer["visible"].as_u64(), answer["ids"].clone()), (Some(0), json!([])));
    assert_eq!(answer["denied_by"]["kind"], "delegation", "{answer}");
}

#[tokio::test]
async fn filter_answers_count_the_ids_examined_and_visible() {
    let (app, store) = fixture(ApiOptions::default()).await;
    let body = json!({"principals": ["user:anne"], "relation": "viewer", "object_type": "document", "ids": ["d0", "d10", "nope", "d0"]});
    let (status, answer) = call(&app, "POST", &format!("/stores/{store}/writ/filter"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"allowed_ids": ["d0", "d0"], "examined": 4, "visible": 2, "revision": 1}));
}

#[tokio::test]
async fn visibility_rejects_bad_input_with_codes_naming_the_field() {
    let options = ApiOptions { max_filter_ids: 100, max_principals: 2, ..ApiOptions::default() };
    let (app, store) = fixture(options).await;
    let base = json!({"principals": ["user:anne"], "relation": "viewer", "object_type": "document"});
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = base.clone();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    for (body, code, names) in [
        (without("principals"), "validation_error", "principals"),
        (without("relation"), "validation_error", "relation"),
        (without("object_type"), "validation_error", "object_type"),
        (with("principals", json!([])), "validation_error", "principals"),
        (with("principals", json!(["anne"])), "validation_error", "principals[0]"),
        (with("principals", json!(["user:a", "agent:b", "agent:c"])), "too_many_principals", "principals"),
        (with("object_type", json!("folderz")), "validation_error", "folderz"),
        (with("relation", json!("owner_of")), "validation_error", "owner_of"),
        (with("max_ids", json!(101)), "too_many_ids", "max_ids"),
        (with("max_ids", json!(-1)), "validation_error", "max_ids"),
        (with("at_least_revision", json!("soon")), "validation_error", "at_least_revision"),
    ] {
        let (status, answer) = visibility(&app, &store, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(error_code(status, &answer), code, "{body} → {answer}");
        assert!(answer["message"].as_str().unwrap().contains(names), "{body} → {answer}");
    }
    let (status, answer) = visibility(&app, "01JNOSUCHSTORE000000000000", base.clone()).await;
    assert_eq!((status, error_code(status, &answer).as_str()), (StatusCode::NOT_FOUND, "store_id_not_found"));
    let pinned = with("authorization_model_id", json!("01JNOSUCHMODEL000000000000"));
    let (status, answer) = visibility(&app, &store, pinned).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
}

#[tokio::test]
async fn visibility_evaluates_conditions_with_the_request_context_as_list_objects_does() {
    let app = router_with(Arc::new(Engine::in_memory()), ApiOptions::default());
    let (_, store) = call(&app, "POST", "/stores", Some(json!({"name": "conditions"}))).await;
    let store = store["id"].as_str().unwrap().to_string();
    let model = "model\n  schema 1.1\ntype user\ntype document\n  relations\n    define viewer: [user with open, user]\ncondition open(x: bool) {\n  x\n}\n";
    let request = axum::http::Request::builder()
        .method("PUT")
        .uri(format!("/stores/{store}/writ/model"))
        .header("content-type", "text/plain")
        .body(axum::body::Body::from(model))
        .unwrap();
    assert_eq!(tower::ServiceExt::oneshot(app.clone(), request).await.unwrap().status(), StatusCode::CREATED);
    let mut conditioned = tuple("user:anne", "viewer", "document:c1");
    conditioned["condition"] = json!({"name": "open"});
    let writes = json!({"writes": {"tuple_keys": [conditioned, tuple("user:anne", "viewer", "document:plain")]}});
    let (status, answer) = call(&app, "POST", &format!("/stores/{store}/write"), Some(writes)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let ask = |context: Value| json!({"principals": ["user:anne"], "relation": "viewer", "object_type": "document", "context": context});
    let (_, open) = visibility(&app, &store, ask(json!({"x": true}))).await;
    assert_eq!((open["visible"].as_u64(), open["ids"].clone()), (Some(2), json!(["c1", "plain"])), "{open}");
    let (_, shut) = visibility(&app, &store, ask(json!({"x": false}))).await;
    assert_eq!((shut["visible"].as_u64(), shut["ids"].clone()), (Some(1), json!(["plain"])), "{shut}");
    // A conditional grant makes the tags inexact: past max_ids, search and post-filter.
    let mut past = ask(json!({"x": true}));
    past["max_ids"] = json!(1);
    let (_, answer) = visibility(&app, &store, past).await;
    assert_eq!(answer["strategy"], "post_filter", "{answer}");
}

/// A random folder tree under [`MODEL`] big enough that list objects gathers thousands of
/// documents from thousands of folders at once (past the thresholds where it gathers into bits
/// and on rayon's threads): 3 roots of 6 subfolders of `LEAVES` leaves each, `DOCS` documents in
/// random leaves (one
/// in five with a second parent, so the gather meets repeats), random user and nested-group
/// viewers on folders, owners, direct and public grants, blocks; `agent:bot` acts for `user:u0`
/// and `user:u1` sees every root.
fn random_tree(seed: u64, docs: usize) -> (Engine, String) {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use writ::engine::WriteRequest;
    use writ::store::StoredTuple;
    use writ::{Model, Tuple};
    let mut rng = StdRng::seed_from_u64(seed);
    let mut keys = std::collections::BTreeSet::new();
    let mut add = |object: String, relation: &str, user: String| keys.insert((object, relation.to_string(), user));
    const LEAVES: usize = 240;
    let leaves: Vec<String> = (0..3 * 6 * LEAVES).map(|i| format!("folder:l{i}")).collect();
    for root in 0..3 {
        for mid in 0..6 {
            let middle = format!("folder:m{}", root * 6 + mid);
            add(middle.clone(), "parent", format!("folder:r{root}"));
            for leaf in 0..LEAVES {
                add(leaves[(root * 6 + mid) * LEAVES + leaf].clone(), "parent", middle.clone());
            }
        }
    }
    let user = |rng: &mut StdRng| format!("user:u{}", rng.gen_range(0..8));
    for g in 0..4 {
        add(format!("group:g{g}"), "member", user(&mut rng));
        add(format!("group:g{g}"), "member", format!("group:g{}#member", rng.gen_range(0..4)));
    }
    let folders: Vec<String> = (0..3)
        .map(|i| format!("folder:r{i}"))
        .chain((0..18).map(|i| format!("folder:m{i}")))
        .chain(leaves.iter().cloned())
        .collect();
    for _ in 0..12 {
        let folder = folders[rng.gen_range(0..folders.len())].clone();
        let viewer = if rng.gen_bool(0.5) { user(&mut rng) } else { format!("group:g{}#member", rng.gen_range(0..4)) };
        add(folder, "viewer", viewer);
    }
    add(folders[rng.gen_range(0..folders.len())].clone(), "viewer", "agent:bot".into());
    // `user:u1` sees every root, two of them through a group: a gather of every document.
    add("folder:r0".into(), "viewer", "group:g0#member".into());
    add("folder:r1".into(), "viewer", "group:g0#member".into());
    add("folder:r2".into(), "viewer", "user:u1".into());
    add("group:g0".into(), "member", "user:u1".into());
    add("user:u0".into(), "delegate", "agent:bot".into());
    for d in 0..docs {
        let doc = format!("document:d{d}");
        add(doc.clone(), "parent", leaves[rng.gen_range(0..leaves.len())].clone());
        if rng.gen_bool(0.2) {
            add(doc.clone(), "parent", leaves[rng.gen_range(0..leaves.len())].clone());
        }
        add(doc.clone(), "owner", user(&mut rng));
        match rng.gen_range(0..40) {
            0 => add(doc.clone(), "viewer", "user:*".into()),
            1..=3 => add(doc.clone(), "viewer", user(&mut rng)),
            4..=6 => add(doc.clone(), "blocked", user(&mut rng)),
            _ => true,
        };
    }
    let engine = Engine::in_memory();
    let store = engine.create_store("tree").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let writes: Vec<StoredTuple> = keys
        .iter()
        .map(|(object, relation, user)| StoredTuple::new(Tuple::from_parts(object, relation, user).unwrap()))
        .collect();
    for chunk in writes.chunks(1_000) {
        engine.store(&store).unwrap().write(WriteRequest { writes: chunk.to_vec(), ..Default::default() }).unwrap();
    }
    (engine, store)
}

/// `visible` (and, up to `max_ids`, the ids) equals what per-document checks allow, on random
/// folder trees where the visible set runs to thousands of documents gathered from hundreds of
/// folders: the count is built from bitmaps (through bits when the gather is large), never from
/// names, and must not drift from `check`.
#[test]
fn visibility_count_equals_per_object_checks_on_random_folder_trees() {
    use crate::support::fixture::check;
    use writ::engine::VisibilityRequest;
    const DOCS: usize = 6_000;
    let mut largest = 0;
    for seed in 0..3 {
        let (engine, store) = random_tree(seed, DOCS);
        let chains: Vec<Vec<String>> = (0..4)
            .map(|u| vec![format!("user:u{u}")])
            .chain([vec!["user:u0".to_string(), "agent:bot".to_string()]])
            .collect();
        for principals in chains {
            for relation in ["viewer", "can_view"] {
                let mut allowed: Vec<String> = (0..DOCS)
                    .filter(|d| {
                        principals.iter().all(|p| check(&engine, &store, &format!("document:d{d}#{relation}@{p}")))
                    })
                    .map(|d| format!("d{d}"))
                    .collect();
                allowed.sort();
                let request = VisibilityRequest {
                    principals: principals.clone(),
                    relation: relation.into(),
                    object_type: "document".into(),
                    max_ids: if allowed.len().is_multiple_of(2) { DOCS } else { 0 },
                    ..VisibilityRequest::default()
                };
                let answer = engine.store(&store).unwrap().visibility(&request).unwrap().value;
                let what = format!("seed {seed}, {principals:?} {relation}");
                assert_eq!(answer.visible, allowed.len() as u64, "{what}");
                if request.max_ids >= allowed.len() {
                    assert_eq!(answer.ids.as_deref(), Some(&allowed[..]), "{what}");
                }
                largest = largest.max(allowed.len());
            }
        }
    }
    assert!(largest > 4_096, "some principal must see a large gather ({largest} documents at most)");
}
