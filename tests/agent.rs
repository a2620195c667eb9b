//! Agent authorization over `schema/agents.fga`: OBO checks along delegation chains, audience
//! checks and the visibility filter, first through the `Engine` facade, then through the HTTP
//! router (`/stores/{id}/writ/...` and AuthZEN's MCP profile).

use crate::support::http::call;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::sync::Arc;
use tower::ServiceExt;
use writ::api::Api;
use writ::api::{router_with, ApiOptions};
use writ::engine::{
    AudienceCheckRequest, CheckRequest, DenialKind, FilterRequest, FilterStrategy, ListObjectsRequest, OboCheckRequest,
    WriteRequest,
};
use writ::store::StoredTuple;
use writ::tuple::TupleCondition;
use writ::{Engine, Model, Tuple};

fn agents_model() -> Model {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/agents.fga")).unwrap();
    Model::parse_dsl(&text).unwrap()
}

fn stored(object: &str, relation: &str, user: &str) -> StoredTuple {
    StoredTuple::new(Tuple::from_parts(object, relation, user).unwrap())
}

/// An engine with one store holding `schema/agents.fga` and `tuples`.
fn engine_with(tuples: Vec<StoredTuple>) -> (Engine, String) {
    let engine = Engine::in_memory();
    let store = engine.create_store("agents").unwrap().id;
    engine.store(&store).unwrap().write_model(agents_model()).unwrap();
    for chunk in tuples.chunks(1000) {
        engine.store(&store).unwrap().write(WriteRequest { writes: chunk.to_vec(), ..Default::default() }).unwrap();
    }
    (engine, store)
}

/// anne delegates to planner, planner to researcher; bob delegates to the privileged `agent:ops`.
fn mcp_tuples() -> Vec<StoredTuple> {
    vec![
        stored("user:anne", "delegate", "agent:planner"),
        stored("agent:planner", "delegate", "agent:researcher"),
        stored("user:bob", "delegate", "agent:ops"),
        stored("mcp_server:mail", "can_use", "user:anne"),
        stored("mcp_server:mail", "can_use", "agent:planner"),
        stored("mcp_server:mail", "can_use", "agent:researcher"),
        stored("tool:send_email", "server", "mcp_server:mail"),
        stored("tool:delete_repo", "caller", "agent:ops"),
        stored("tool:delete_repo", "caller", "agent:planner"),
        stored("tool:delete_repo", "caller", "user:anne"),
    ]
}

fn obo(principals: &[&str], relation: &str, object: &str) -> OboCheckRequest {
    OboCheckRequest {
        principals: principals.iter().map(|p| p.to_string()).collect(),
        relation: relation.into(),
        object: object.into(),
        ..Default::default()
    }
}

#[test]
fn obo_chain_of_one_is_a_plain_check() {
    let (engine, store) = engine_with(mcp_tuples());
    for (user, object) in [("user:anne", "tool:send_email"), ("user:bob", "tool:send_email"), ("agent:ops", "tool:x")] {
        let plain = CheckRequest {
            object: object.into(),
            relation: "can_call".into(),
            user: user.into(),
            ..Default::default()
        };
        let expected = engine.store(&store).unwrap().check(&plain).unwrap().value;
        let answer = engine.store(&store).unwrap().obo_check(&obo(&[user], "can_call", object)).unwrap().value;
        assert_eq!(answer.allowed, expected, "{user} {object}");
        assert_eq!(answer.denied_by.is_some(), !expected);
    }
}

#[test]
fn obo_three_hop_chain_is_allowed_when_every_link_and_principal_hold() {
    let (engine, store) = engine_with(mcp_tuples());
    let answer = engine
        .store(&store)
        .unwrap()
        .obo_check(&obo(&["user:anne", "agent:planner", "agent:researcher"], "can_call", "tool:send_email"))
        .unwrap();
    assert!(answer.value.allowed);
    assert_eq!(answer.value.denied_by, None);
    assert_eq!(answer.revision, 1);
}

#[test]
fn obo_hop_without_delegation_denies_and_is_named() {
    let (engine, store) = engine_with(mcp_tuples());
    // researcher may use the mail server, but anne never delegated to it directly.
    let answer = engine
        .store(&store)
        .unwrap()
        .obo_check(&obo(&["user:anne", "agent:researcher"], "can_call", "tool:send_email"))
        .unwrap();
    let denial = answer.value.denied_by.unwrap();
    assert!(!answer.value.allowed);
    assert_eq!((denial.kind(), denial.subject()), (DenialKind::Delegation, "agent:researcher"));
    assert!(denial.message().contains("`delegate` on `user:anne`"), "{}", denial.message());
    // The second link of a longer chain is named the same way.
    let answer = engine
        .store(&store)
        .unwrap()
        .obo_check(&obo(&["user:anne", "agent:planner", "agent:ops"], "can_call", "tool:delete_repo"))
        .unwrap();
    let denial = answer.value.denied_by.unwrap();
    assert_eq!((denial.kind(), denial.subject()), (DenialKind::Delegation, "agent:ops"));
}

#[test]
fn confused_deputy_privileged_agent_cannot_act_for_an_unprivileged_user() {
    let (engine, store) = engine_with(mcp_tuples());
    // agent:ops may delete the repo on its own, and bob did delegate to it; bob may not delete it.
    let handle = engine.store(&store).unwrap();
    let alone = handle.obo_check(&obo(&["agent:ops"], "can_call", "tool:delete_repo")).unwrap();
    assert!(alone.value.allowed);
    let answer = handle.obo_check(&obo(&["user:bob", "agent:ops"], "can_call", "tool:delete_repo")).unwrap();
    let denial = answer.value.denied_by.unwrap();
    assert!(!answer.value.allowed);
    assert_eq!((denial.kind(), denial.subject()), (DenialKind::Principal, "user:bob"));
    assert_eq!(denial.message(), "`user:bob` does not hold `can_call` on `tool:delete_repo`");
    // And an agent without the permission denies even when its human has it.
    let answer = handle
        .obo_check(&obo(&["user:anne", "agent:planner", "agent:researcher"], "can_call", "tool:delete_repo"))
        .unwrap();
    let denial = answer.value.denied_by.unwrap();
    assert_eq!((denial.kind(), denial.subject()), (DenialKind::Principal, "agent:researcher"));
}

#[test]
fn obo_deny_names_the_first_failure_in_chain_order() {
    let (engine, store) = engine_with(mcp_tuples());
    // carol lacks the permission and never delegated: the principal comes first in the chain.
    let answer = engine
        .store(&store)
        .unwrap()
        .obo_check(&obo(&["user:carol", "agent:planner"], "can_call", "tool:send_email"))
        .unwrap();
    let denial = answer.value.denied_by.unwrap();
    assert_eq!((denial.kind(), denial.subject()), (DenialKind::Principal, "user:carol"));
    // anne holds it; the missing link to ops comes before ops' own permission.
    let answer = engine
        .store(&store)
        .unwrap()
        .obo_check(&obo(&["user:anne", "agent:ops"], "can_call", "tool:send_email"))
        .unwrap();
    let denial = answer.value.denied_by.unwrap();
    assert_eq!((denial.kind(), denial.subject()), (DenialKind::Delegation, "agent:ops"));
}

#[test]
fn obo_delegation_tuples_may_be_conditioned() {
    let mut tuples = mcp_tuples();
    let mut scoped = Tuple::from_parts("user:dora", "delegate", "agent:planner").unwrap();
    let mut context = serde_json::Map::new();
    context.insert("granted_task".into(), json!("q3-report"));
    scoped.condition = Some(TupleCondition { name: "same_task".into(), context });
    tuples.push(StoredTuple::new(scoped));
    tuples.push(stored("tool:send_email", "caller", "user:dora"));
    let (engine, store) = engine_with(tuples);
    let mut request = obo(&["user:dora", "agent:planner"], "can_call", "tool:send_email");
    request.context.insert("task".into(), json!("q3-report"));
    let handle = engine.store(&store).unwrap();
    assert!(handle.obo_check(&request).unwrap().value.allowed);
    request.context.insert("task".into(), json!("other"));
    let denial = handle.obo_check(&request).unwrap().value.denied_by.unwrap();
    assert_eq!((denial.kind(), denial.subject()), (DenialKind::Delegation, "agent:planner"));
    // Without the task in the context the condition cannot be evaluated: an error, as in OpenFGA.
    request.context.clear();
    assert!(handle.obo_check(&request).is_err());
}

#[test]
fn obo_contextual_tuples_count_for_every_sub_check() {
    let (engine, store) = engine_with(mcp_tuples());
    let mut request = obo(&["user:erin", "agent:helper"], "can_call", "tool:send_email");
    assert!(!engine.store(&store).unwrap().obo_check(&request).unwrap().value.allowed);
    request.contextual_tuples = vec![
        Tuple::from_parts("user:erin", "delegate", "agent:helper").unwrap(),
        Tuple::from_parts("tool:send_email", "caller", "user:erin").unwrap(),
        Tuple::from_parts("tool:send_email", "caller", "agent:helper").unwrap(),
    ];
    assert!(engine.store(&store).unwrap().obo_check(&request).unwrap().value.allowed);
}

#[test]
fn obo_bad_requests_name_the_bad_field() {
    let (engine, store) = engine_with(mcp_tuples());
    let error = |request: OboCheckRequest| engine.store(&store).unwrap().obo_check(&request).unwrap_err().to_string();
    assert!(error(obo(&[], "can_call", "tool:send_email")).contains("`principals`"));
    assert!(error(obo(&["user:anne", "planner"], "can_call", "tool:send_email")).contains("`principals[1]`"));
    assert!(error(obo(&["user:anne", "robot:x"], "can_call", "tool:send_email")).contains("`principals[1]`"));
    assert!(error(obo(&["user:anne"], "can_fly", "tool:send_email")).contains("`relation`"));
    assert!(error(obo(&["user:anne"], "can_call", "send_email")).contains("`object`"));
    // `team` has no `delegate` relation, so it cannot start a chain.
    let message = error(obo(&["team:eng", "agent:planner"], "can_call", "tool:send_email"));
    assert!(message.contains("`delegation_relation`") && message.contains("`principals[0]`"), "{message}");
    let mut custom = obo(&["user:anne", "agent:planner"], "can_call", "tool:send_email");
    custom.delegation_relation = Some("owner".into());
    assert!(error(custom).contains("`delegation_relation`"));
}

#[test]
fn audience_lists_every_member_who_may_not_see() {
    let (engine, store) = engine_with(vec![
        stored("team:eng", "member", "user:a"),
        stored("team:eng", "member", "user:b"),
        stored("document:plan", "viewer", "team:eng#member"),
        stored("document:plan", "viewer", "user:c"),
        stored("document:public", "viewer", "user:*"),
    ]);
    let request = AudienceCheckRequest {
        audience: vec!["user:a".into(), "user:outsider".into(), "user:b".into(), "user:c".into()],
        relation: "viewer".into(),
        objects: vec!["document:plan".into(), "document:public".into(), "document:nowhere".into()],
        ..Default::default()
    };
    let handle = engine.store(&store).unwrap();
    let results = handle.audience_check(&request).unwrap().value;
    assert_eq!(results.len(), 3);
    assert_eq!((results[0].object.as_str(), results[0].allowed), ("document:plan", false));
    assert_eq!(results[0].denied_for, ["user:outsider"]);
    assert_eq!((results[1].allowed, results[1].denied_for.len()), (true, 0));
    assert_eq!(results[2].denied_for, ["user:a", "user:outsider", "user:b", "user:c"]);
    let mut bad = request.clone();
    bad.audience.clear();
    assert!(handle.audience_check(&bad).unwrap_err().to_string().contains("`audience`"));
    let mut bad = request;
    bad.objects.push("folder".into());
    assert!(handle.audience_check(&bad).unwrap_err().to_string().contains("`objects[3]`"));
}

/// A random folder tree with documents, teams and viewers, for cross-checking the two strategies.
/// Documents in [`random_drive`]: enough that a filter of most of them probes on several threads.
const DRIVE_DOCUMENTS: usize = 6000;

fn random_drive(seed: u64) -> Vec<StoredTuple> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tuples = vec![
        stored("user:anne", "delegate", "agent:planner"),
        stored("agent:planner", "delegate", "agent:researcher"),
        stored("organization:acme", "member", "user:anne"),
        stored("team:research", "member", "agent:researcher"),
        stored("team:research", "member", "agent:planner"),
    ];
    for f in 1..40 {
        tuples.push(stored(&format!("folder:f{f}"), "parent", &format!("folder:f{}", rng.gen_range(0..f))));
    }
    for f in 0..40 {
        match rng.gen_range(0..4) {
            0 => tuples.push(stored(&format!("folder:f{f}"), "viewer", "team:research#member")),
            1 => tuples.push(stored(&format!("folder:f{f}"), "viewer", "organization:acme#member")),
            2 => tuples.push(stored(&format!("folder:f{f}"), "editor", "user:anne")),
            _ => {}
        }
    }
    for d in 0..DRIVE_DOCUMENTS {
        let document = format!("document:d{d}");
        tuples.push(stored(&document, "parent", &format!("folder:f{}", rng.gen_range(0..40))));
        if rng.gen_bool(0.1) {
            tuples.push(stored(&document, "viewer", "agent:planner"));
        }
        if rng.gen_bool(0.05) {
            tuples.push(stored(&document, "viewer", "user:*"));
        }
        if d % 2 == 0 {
            tuples.push(stored(&format!("memory:m{d}"), "source", &document));
        }
    }
    tuples
}

fn filter_request(principals: &[&str], object_type: &str, ids: Vec<String>, strategy: FilterStrategy) -> FilterRequest {
    FilterRequest {
        principals: principals.iter().map(|p| p.to_string()).collect(),
        relation: "viewer".into(),
        object_type: object_type.into(),
        ids,
        strategy,
        ..Default::default()
    }
}

#[test]
fn filter_strategies_agree_with_each_other_and_with_checks() {
    let (engine, store) = engine_with(random_drive(7));
    let mut rng = StdRng::seed_from_u64(8);
    // Known and unknown ids, some repeated, in a shuffled order: over 4,096 distinct known ones,
    // so the bitmap strategy probes them in parallel and as dense bits.
    let ids: Vec<String> = (0..10_000)
        .map(|_| match rng.gen_range(0..10) {
            0 => format!("unknown{}", rng.gen_range(0..50)),
            _ => format!("d{}", rng.gen_range(0..DRIVE_DOCUMENTS)),
        })
        .collect();
    for chain in
        [&["user:anne"][..], &["user:anne", "agent:planner"], &["user:anne", "agent:planner", "agent:researcher"]]
    {
        let answer = |strategy| {
            let request = filter_request(chain, "document", ids.clone(), strategy);
            owned(engine.store(&store).unwrap().filter(&request).unwrap().value.allowed_ids)
        };
        let by_checks = answer(FilterStrategy::Checks);
        assert_eq!(by_checks, answer(FilterStrategy::Bitmap), "{chain:?}");
        assert_eq!(by_checks, answer(FilterStrategy::Auto), "{chain:?}");
        let expected: Vec<String> = ids
            .iter()
            .filter(|id| {
                let obo = obo(chain, "viewer", &format!("document:{id}"));
                engine.store(&store).unwrap().obo_check(&obo).unwrap().value.allowed
            })
            .cloned()
            .collect();
        assert_eq!(by_checks, expected, "{chain:?}");
        assert!(!expected.is_empty() && expected.len() < ids.len(), "{chain:?}: the data must allow some, not all");
    }
    // Memories follow their source document.
    let memories: Vec<String> = (0..1500).map(|d| format!("m{d}")).collect();
    let chain = ["user:anne", "agent:planner"];
    let visible = |strategy| {
        let request = filter_request(&chain, "memory", memories.clone(), strategy);
        owned(engine.store(&store).unwrap().filter(&request).unwrap().value.allowed_ids)
    };
    let documents: Vec<String> = (0..1500).step_by(2).map(|d| format!("d{d}")).collect();
    let documents_request = filter_request(&chain, "document", documents, FilterStrategy::Auto);
    let visible_documents = engine.store(&store).unwrap().filter(&documents_request).unwrap().value;
    let expected: Vec<String> = visible_documents.allowed_ids.iter().map(|d| d.replacen('d', "m", 1)).collect();
    assert_eq!(visible(FilterStrategy::Checks), expected);
    assert_eq!(visible(FilterStrategy::Bitmap), expected);
}

/// The filter's borrowed ids as owned strings, to compare across requests.
fn owned(ids: Vec<&str>) -> Vec<String> {
    ids.into_iter().map(str::to_string).collect()
}

#[test]
fn filter_unknown_ids_are_not_visible_and_duplicates_keep_input_order() {
    let (engine, store) = engine_with(vec![
        stored("document:a", "viewer", "user:anne"),
        stored("document:b", "viewer", "user:anne"),
        stored("document:c", "viewer", "user:bob"),
    ]);
    let ids: Vec<String> = ["b", "nope", "a", "c", "b", "", "x:y"].iter().map(|s| s.to_string()).collect();
    for strategy in [FilterStrategy::Checks, FilterStrategy::Bitmap] {
        let request = filter_request(&["user:anne"], "document", ids.clone(), strategy);
        let answer = engine.store(&store).unwrap().filter(&request).unwrap();
        assert_eq!(answer.value.allowed_ids, ["b", "a", "b"], "{strategy:?}");
        assert_eq!(answer.value.denied_by, None);
    }
}

#[test]
fn filter_with_a_broken_chain_shows_nothing_and_names_the_link() {
    let (engine, store) = engine_with(random_drive(7));
    let ids: Vec<String> = (0..1500).map(|d| format!("d{d}")).collect();
    for strategy in [FilterStrategy::Checks, FilterStrategy::Bitmap] {
        let request = filter_request(&["user:anne", "agent:researcher"], "document", ids.clone(), strategy);
        let answer = engine.store(&store).unwrap().filter(&request).unwrap().value;
        assert!(answer.allowed_ids.is_empty());
        let denial = answer.denied_by.unwrap();
        assert_eq!((denial.kind(), denial.subject()), (DenialKind::Delegation, "agent:researcher"));
    }
}

/// A folder tree wide enough that listing what anne may view reads over 4,096 folders' children in
/// one fixed-point round (on rayon's threads): `root` → 80 `m` → 6,000 `w` → 6,000 `x` folders,
/// with documents in the `x` folders.
fn wide_folder_tree(seed: u64) -> Vec<StoredTuple> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tuples = vec![stored("folder:root", "viewer", "user:anne"), stored("folder:other", "viewer", "user:bob")];
    for f in 0..80 {
        let top = if f % 8 == 0 { "other" } else { "root" };
        tuples.push(stored(&format!("folder:m{f}"), "parent", &format!("folder:{top}")));
    }
    for f in 0..6000 {
        tuples.push(stored(&format!("folder:w{f}"), "parent", &format!("folder:m{}", rng.gen_range(0..80))));
        if rng.gen_bool(0.02) {
            tuples.push(stored(&format!("folder:w{f}"), "editor", "user:anne"));
        }
    }
    for f in 0..6000 {
        tuples.push(stored(&format!("folder:x{f}"), "parent", &format!("folder:w{}", rng.gen_range(0..6000))));
    }
    for d in 0..8000 {
        tuples.push(stored(&format!("document:d{d}"), "parent", &format!("folder:x{}", rng.gen_range(0..6000))));
    }
    tuples
}

#[test]
fn a_wide_folder_tree_lists_and_filters_as_checks_allow() {
    let (engine, store) = engine_with(wide_folder_tree(11));
    let check = |object: &str| {
        let request = CheckRequest {
            object: object.into(),
            relation: "viewer".into(),
            user: "user:anne".into(),
            ..Default::default()
        };
        engine.store(&store).unwrap().check(&request).unwrap().value
    };
    let request = ListObjectsRequest {
        object_type: "folder".into(),
        relation: "viewer".into(),
        user: "user:anne".into(),
        ..Default::default()
    };
    let mut listed = engine.store(&store).unwrap().list_objects(&request).unwrap().value;
    listed.sort();
    let mut expected: Vec<String> = ["folder:root".to_string()]
        .into_iter()
        .chain((0..80).map(|f| format!("folder:m{f}")))
        .chain((0..6000).flat_map(|f| [format!("folder:w{f}"), format!("folder:x{f}")]))
        .filter(|folder| check(folder))
        .collect();
    expected.sort();
    assert!(expected.len() > 2 * 4096 && expected.len() < 12_081, "most folders, not all: {}", expected.len());
    assert_eq!(listed, expected);
    let ids: Vec<String> = (0..8000).map(|d| format!("d{d}")).collect();
    let visible: Vec<String> = ids.iter().filter(|id| check(&format!("document:{id}"))).cloned().collect();
    assert!(!visible.is_empty() && visible.len() < ids.len());
    for strategy in [FilterStrategy::Checks, FilterStrategy::Bitmap] {
        let request = filter_request(&["user:anne"], "document", ids.clone(), strategy);
        assert_eq!(
            owned(engine.store(&store).unwrap().filter(&request).unwrap().value.allowed_ids),
            visible,
            "{strategy:?}"
        );
    }
}

// ---- HTTP ----

/// A router over a store with `schema/agents.fga` (uploaded as DSL) and the MCP tuples.
async fn http_fixture(options: ApiOptions) -> (Api, String) {
    let app = router_with(Arc::new(Engine::in_memory()), options);
    let (_, store) = call(&app, "POST", "/stores", Some(json!({"name": "mcp"}))).await;
    let store_id = store["id"].as_str().unwrap().to_string();
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/agents.fga")).unwrap();
    let request = Request::builder()
        .method("PUT")
        .uri(format!("/stores/{store_id}/writ/model"))
        .header("content-type", "text/plain")
        .body(Body::from(text))
        .unwrap();
    assert_eq!(app.clone().oneshot(request).await.unwrap().status(), StatusCode::CREATED);
    let keys: Vec<Value> = mcp_tuples()
        .iter()
        .map(|t| json!({"user": t.tuple.subject.to_string(), "relation": t.tuple.relation, "object": t.tuple.object.to_string()}))
        .chain([json!({"user": "user:anne", "relation": "viewer", "object": "document:q3"})])
        .collect();
    let (status, body) =
        call(&app, "POST", &format!("/stores/{store_id}/write"), Some(json!({"writes": {"tuple_keys": keys}}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (app, store_id)
}

#[tokio::test]
async fn http_obo_check_allows_denies_and_revoking_the_delegation_denies_the_next_call() {
    let (app, store) = http_fixture(ApiOptions::default()).await;
    let uri = format!("/stores/{store}/writ/obo-check");
    let body = json!({
        "principals": ["user:anne", "agent:planner", "agent:researcher"],
        "relation": "can_call", "object": "tool:send_email",
        "audit": {"tool": "send_email", "task": "t-42"},
    });
    let (status, answer) = call(&app, "POST", &uri, Some(body.clone())).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"allowed": true, "revision": 1})));
    let revoke =
        json!({"deletes": {"tuple_keys": [{"user": "agent:planner", "relation": "delegate", "object": "user:anne"}]}});
    let (status, written) = call(&app, "POST", &format!("/stores/{store}/write"), Some(revoke)).await;
    assert_eq!((status, &written["revision"]), (StatusCode::OK, &json!(2)));
    let (status, answer) = call(&app, "POST", &uri, Some(body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["allowed"], false);
    assert_eq!(answer["revision"], 2);
    assert_eq!(answer["denied_by"]["kind"], "delegation");
    assert_eq!(answer["denied_by"]["subject"], "agent:planner");
    // The confused deputy, over HTTP.
    let deputy = json!({"principals": ["user:bob", "agent:ops"], "relation": "can_call", "object": "tool:delete_repo"});
    let (_, answer) = call(&app, "POST", &uri, Some(deputy)).await;
    assert_eq!(
        answer["denied_by"],
        json!({"kind": "principal", "subject": "user:bob", "message": "`user:bob` does not hold `can_call` on `tool:delete_repo`"})
    );
    let future = json!({"principals": ["user:anne"], "relation": "can_call", "object": "tool:send_email", "at_least_revision": 99});
    let (status, answer) = call(&app, "POST", &uri, Some(future)).await;
    assert_eq!((status, answer["code"].as_str()), (StatusCode::CONFLICT, Some("revision_unavailable")));
}

#[tokio::test]
async fn http_audience_check_and_filter_answer_in_design_shapes() {
    let (app, store) = http_fixture(ApiOptions::default()).await;
    let body = json!({"audience": ["user:anne", "user:bob"], "relation": "viewer", "objects": ["document:q3", "document:none"]});
    let (status, answer) = call(&app, "POST", &format!("/stores/{store}/writ/audience-check"), Some(body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        json!({"results": [
            {"object": "document:q3", "allowed": false, "denied_for": ["user:bob"]},
            {"object": "document:none", "allowed": false, "denied_for": ["user:anne", "user:bob"]},
        ], "revision": 1})
    );
    let body =
        json!({"principals": ["user:anne"], "relation": "viewer", "object_type": "document", "ids": ["x", "q3", "q3"]});
    let (status, answer) = call(&app, "POST", &format!("/stores/{store}/writ/filter"), Some(body)).await;
    assert_eq!(
        (status, answer),
        (StatusCode::OK, json!({"allowed_ids": ["q3", "q3"], "examined": 3, "visible": 2, "revision": 1}))
    );
    // The planner acting for anne sees only what both may see: nothing here.
    let body = json!({"principals": ["user:anne", "agent:planner"], "relation": "viewer", "object_type": "document", "ids": ["q3"]});
    let (_, answer) = call(&app, "POST", &format!("/stores/{store}/writ/filter"), Some(body)).await;
    assert_eq!(answer, json!({"allowed_ids": [], "examined": 1, "visible": 0, "revision": 1}));
}

#[tokio::test]
async fn http_agent_routes_reject_bad_input_with_codes_naming_the_field() {
    let options = ApiOptions { max_filter_ids: 3, max_principals: 2, ..ApiOptions::default() };
    let (app, store) = http_fixture(options).await;
    let obo_uri = format!("/stores/{store}/writ/obo-check");
    let filter_uri = format!("/stores/{store}/writ/filter");
    let cases = [
        (
            &obo_uri,
            json!({"principals": [], "relation": "can_call", "object": "tool:x"}),
            "validation_error",
            "`principals`",
        ),
        (
            &obo_uri,
            json!({"principals": ["anne"], "relation": "can_call", "object": "tool:x"}),
            "validation_error",
            "`principals[0]`",
        ),
        (
            &obo_uri,
            json!({"principals": ["robot:r"], "relation": "can_call", "object": "tool:x"}),
            "validation_error",
            "`principals[0]`",
        ),
        (
            &obo_uri,
            json!({"principals": ["user:anne"], "relation": "can_fly", "object": "tool:x"}),
            "validation_error",
            "`relation`",
        ),
        (&obo_uri, json!({"principals": ["user:anne"], "object": "tool:x"}), "validation_error", "`relation`"),
        (
            &obo_uri,
            json!({"principals": ["user:a", "agent:b", "agent:c"], "relation": "can_call", "object": "tool:x"}),
            "too_many_principals",
            "`principals`",
        ),
        (
            &filter_uri,
            json!({"principals": ["user:anne"], "relation": "viewer", "object_type": "doc", "ids": []}),
            "validation_error",
            "type `doc` not found",
        ),
        (
            &filter_uri,
            json!({"principals": ["user:anne"], "relation": "viewer", "object_type": "document", "ids": ["1", "2", "3", "4"]}),
            "too_many_ids",
            "`ids`",
        ),
    ];
    for (uri, body, code, field) in cases {
        let (status, answer) = call(&app, "POST", uri, Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["code"], code, "{body}: {answer}");
        assert!(answer["message"].as_str().unwrap().contains(field), "{body}: {answer}");
    }
    let (status, answer) = call(
        &app,
        "POST",
        "/stores/nope/writ/filter",
        Some(json!({"principals": ["user:anne"], "relation": "viewer", "object_type": "document", "ids": []})),
    )
    .await;
    assert_eq!((status, answer["code"].as_str()), (StatusCode::NOT_FOUND, Some("store_id_not_found")));
}

#[tokio::test]
async fn authzen_mcp_profile_requires_the_delegation_link() {
    let (app, store) = http_fixture(ApiOptions::default()).await;
    let uri = format!("/stores/{store}/access/v1/evaluation");
    let evaluation = |subject: &str, agent: &str| {
        json!({
            "subject": {"type": "user", "id": subject}, "action": {"name": "can_call"},
            "resource": {"type": "tool", "id": "delete_repo"}, "context": {"agent": {"type": "agent", "id": agent}},
        })
    };
    // anne delegated to planner and both may call it.
    assert_eq!(
        call(&app, "POST", &uri, Some(evaluation("anne", "planner"))).await,
        (StatusCode::OK, json!({"decision": true}))
    );
    // ops may call it and bob delegated to ops, but bob may not: deny (200, decision false).
    assert_eq!(
        call(&app, "POST", &uri, Some(evaluation("bob", "ops"))).await,
        (StatusCode::OK, json!({"decision": false}))
    );
    // anne may call it and ops may too, but anne never delegated to ops.
    assert_eq!(
        call(&app, "POST", &uri, Some(evaluation("anne", "ops"))).await,
        (StatusCode::OK, json!({"decision": false}))
    );
}

#[test]
fn filter_checks_share_sub_answers_soundly_across_cyclic_folders() {
    // f0 → f1 → f2 → f0 is a parent cycle; only f1 grants anne. Every document below the cycle is
    // visible through it, whichever folder the batch meets first.
    let mut tuples = vec![
        stored("folder:f0", "parent", "folder:f2"),
        stored("folder:f1", "parent", "folder:f0"),
        stored("folder:f2", "parent", "folder:f1"),
        stored("folder:f1", "viewer", "user:anne"),
        stored("folder:lonely", "parent", "folder:lonely2"),
    ];
    for d in 0..300 {
        let folder = ["folder:f0", "folder:f1", "folder:f2", "folder:lonely"][d % 4];
        tuples.push(stored(&format!("document:d{d}"), "parent", folder));
    }
    let (engine, store) = engine_with(tuples);
    let ids: Vec<String> = (0..300).rev().map(|d| format!("d{d}")).collect();
    let expected: Vec<String> = ids
        .iter()
        .filter(|id| {
            engine
                .store(&store)
                .unwrap()
                .obo_check(&obo(&["user:anne"], "viewer", &format!("document:{id}")))
                .unwrap()
                .value
                .allowed
        })
        .cloned()
        .collect();
    assert_eq!(expected.len(), 225);
    for strategy in [FilterStrategy::Checks, FilterStrategy::Bitmap] {
        let request = filter_request(&["user:anne"], "document", ids.clone(), strategy);
        let answer = engine.store(&store).unwrap().filter(&request).unwrap();
        assert_eq!(answer.value.allowed_ids, expected, "{strategy:?}");
    }
}
