//! Explain (issue 28): one test per denial reason, the OBO chain and its hops, audiences, the
//! three-valued (SpiceDB) explain, nested-group paths, the node bound, and the HTTP
//! route. The parity of explain with check over every conformance assertion lives in
//! `conformance.rs` (kind `explain`).

use crate::support::http::call;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use tower::ServiceExt;
use writ::engine::{
    AudienceCheckRequest, CheckRequest, Clock, Denial, DenialKind, ExplainNode, Explanation, InputLimits, NodeResult,
    OboCheckRequest, Permissionship, Reason, WriteRequest,
};
use writ::store::{MemoryStore, StoredTuple};
use writ::tuple::{Context, Tuple, TupleCondition};
use writ::{Engine, EngineConfig, Model};

const MODEL: &str = "model
  schema 1.1
type user
  relations
    define delegate: [agent]
    define assistant: [agent]
type agent
  relations
    define delegate: [agent]
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define viewer: [user, group#member]
type document
  relations
    define parent: [folder]
    define blocked: [user]
    define owner: [user]
    define viewer: [user, group#member, user with office_hours] or viewer from parent
    define reader: viewer but not blocked
    define editor: owner and viewer
    define invoker: [user, agent]
condition office_hours(hour: int) {
  hour >= 9 && hour < 17
}
";

const NOW: i64 = 1_800_000_000_000;

fn engine_with(config: EngineConfig, tuples: &[(&str, Option<i64>)], now: Arc<AtomicI64>) -> (Engine, String) {
    let clock: Clock = Arc::new(move || now.load(Ordering::SeqCst));
    let engine = Engine::open_with_clock(Box::new(MemoryStore::new()), config, clock).unwrap();
    let store = engine.create_store("explain").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let writes = tuples
        .iter()
        .map(|(text, expires_at_ms)| StoredTuple {
            tuple: text.parse::<Tuple>().unwrap(),
            expires_at_ms: *expires_at_ms,
        })
        .collect();
    if !tuples.is_empty() {
        engine.store(&store).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
    }
    (engine, store)
}

fn setup(tuples: &[&str]) -> (Engine, String) {
    let tuples: Vec<(&str, Option<i64>)> = tuples.iter().map(|t| (*t, None)).collect();
    engine_with(EngineConfig::default(), &tuples, Arc::new(AtomicI64::new(NOW)))
}

fn request(object: &str, relation: &str, user: &str) -> CheckRequest {
    CheckRequest {
        object: object.into(),
        relation: relation.into(),
        user: user.into(),
        contextual_tuples: Vec::new(),
        context: Context::new(),
        model_id: None,
    }
}

fn explain(engine: &Engine, store: &str, request: &CheckRequest) -> Explanation {
    let explanation = engine.store(store).unwrap().explain(request).unwrap().value;
    let check = engine.store(store).and_then(|store| store.check(request)).map(|a| a.value).unwrap_or(false);
    assert_eq!(explanation.allowed, check, "explain and check disagree on {request:?}");
    explanation
}

/// Every node of the tree, depth first.
fn nodes(node: &ExplainNode) -> Vec<&ExplainNode> {
    let mut all = vec![node];
    for child in &node.children {
        all.extend(nodes(child));
    }
    all
}

fn reasons(explanation: &Explanation) -> Vec<Reason> {
    nodes(&explanation.tree).into_iter().filter_map(|n| n.reason.clone()).collect()
}

fn tuple(text: &str) -> Tuple {
    text.parse().unwrap()
}

#[test]
fn an_allow_through_a_group_and_a_folder_names_the_tuples_that_grant_it() {
    let (engine, store) =
        setup(&["document:q3#parent@folder:f", "folder:f#viewer@group:eng#member", "group:eng#member@user:anne"]);
    let explanation = explain(&engine, &store, &request("document:q3", "viewer", "user:anne"));
    assert!(explanation.allowed);
    assert_eq!(explanation.tree.result, NodeResult::Allowed);
    assert_eq!(explanation.tree.rewrite, Some("union"));
    let path: Vec<Tuple> = explanation.path.iter().map(|p| p.tuple.clone()).collect();
    assert_eq!(
        path,
        vec![
            tuple("document:q3#parent@folder:f"),
            tuple("folder:f#viewer@group:eng#member"),
            tuple("group:eng#member@user:anne")
        ]
    );
    assert!(explanation.path.iter().all(|p| !p.contextual));
    assert!(explanation.would_allow.is_empty());
}

#[test]
fn a_contextual_tuple_in_the_path_is_marked() {
    let (engine, store) = setup(&[]);
    let mut asked = request("document:q3", "viewer", "user:anne");
    asked.contextual_tuples = vec![tuple("document:q3#viewer@user:anne")];
    let explanation = explain(&engine, &store, &asked);
    assert!(explanation.allowed);
    assert_eq!(explanation.path.len(), 1);
    assert!(explanation.path[0].contextual);
}

#[test]
fn no_tuple_denies_and_would_allow_is_the_direct_tuple() {
    let (engine, store) = setup(&["document:q3#parent@folder:f"]);
    let explanation = explain(&engine, &store, &request("document:q3", "viewer", "user:anne"));
    assert!(!explanation.allowed);
    assert!(reasons(&explanation).contains(&Reason::NoTuple));
    assert_eq!(explanation.would_allow.first(), Some(&tuple("document:q3#viewer@user:anne")));
    assert!(explanation.would_allow.contains(&tuple("folder:f#viewer@user:anne")));
    assert!(explanation.path.is_empty());
}

#[test]
fn an_exclusion_names_the_excluding_branch_and_offers_nothing() {
    let (engine, store) = setup(&["document:q3#viewer@user:anne", "document:q3#blocked@user:anne"]);
    let explanation = explain(&engine, &store, &request("document:q3", "reader", "user:anne"));
    assert!(!explanation.allowed);
    assert!(reasons(&explanation).contains(&Reason::Excluded { by: "blocked".into() }), "{:?}", explanation.tree);
    assert!(explanation.would_allow.is_empty(), "{:?}", explanation.would_allow);
}

#[test]
fn an_intersection_offers_only_the_missing_side() {
    let (engine, store) = setup(&["document:q3#viewer@user:anne"]);
    let explanation = explain(&engine, &store, &request("document:q3", "editor", "user:anne"));
    assert!(!explanation.allowed);
    assert_eq!(explanation.would_allow, vec![tuple("document:q3#owner@user:anne")]);
}

#[test]
fn a_condition_that_is_false_or_lacks_context_is_named() {
    let (engine, store) = setup(&[]);
    let mut conditioned = tuple("document:q3#viewer@user:anne");
    conditioned.condition = Some(TupleCondition { name: "office_hours".into(), context: Context::new() });
    let write = WriteRequest { writes: vec![StoredTuple::new(conditioned)], ..WriteRequest::default() };
    engine.store(&store).unwrap().write(write).unwrap();
    let mut asked = request("document:q3", "viewer", "user:anne");
    asked.context = serde_json::from_value(json!({"hour": 20})).unwrap();
    let explanation = explain(&engine, &store, &asked);
    assert!(
        reasons(&explanation)
            .contains(&Reason::ConditionFalse { condition: "office_hours".into(), parameters: vec!["hour".into()] }),
        "{:#?}",
        explanation.tree
    );
    let explanation =
        engine.store(&store).unwrap().explain(&request("document:q3", "viewer", "user:anne")).unwrap().value;
    assert!(!explanation.allowed);
    assert_eq!(explanation.tree.result, NodeResult::Conditional);
    assert!(reasons(&explanation)
        .contains(&Reason::MissingContext { condition: "office_hours".into(), missing: vec!["hour".into()] }));

    // A value of the wrong type is neither false nor missing: the condition failed.
    asked.context = serde_json::from_value(json!({"hour": "nine"})).unwrap();
    let explanation = explain(&engine, &store, &asked);
    assert!(!explanation.allowed);
    assert!(
        reasons(&explanation)
            .iter()
            .any(|r| matches!(r, Reason::ConditionError { condition, message } if condition == "office_hours" && !message.is_empty())),
        "{:#?}",
        explanation.tree
    );
}

/// SpiceDB's three values: the root of a three-valued explain is what `check_permissionship`
/// answers, and a conditional tuple names the parameters it lacks.
#[test]
fn a_three_valued_explain_is_conditional_and_names_the_missing_parameters() {
    let (engine, store) = setup(&["document:q3#parent@folder:f"]);
    let folder_grant = tuple("folder:f#viewer@user:anne");
    let mut direct = tuple("document:q3#viewer@user:anne");
    direct.condition = Some(TupleCondition { name: "office_hours".into(), context: Context::new() });
    let write = WriteRequest { writes: vec![StoredTuple::new(direct)], ..WriteRequest::default() };
    engine.store(&store).unwrap().write(write).unwrap();
    let cases =
        [(None, Permissionship::Conditional), (Some(10), Permissionship::Allowed), (Some(20), Permissionship::Denied)];
    for (hour, expected) in cases {
        let mut asked = request("document:q3", "viewer", "user:anne");
        if let Some(hour) = hour {
            asked.context = serde_json::from_value(json!({ "hour": hour })).unwrap();
        }
        let explanation = engine.store(&store).unwrap().explain_permissionship(&asked).unwrap().value;
        assert_eq!(engine.store(&store).unwrap().check_permissionship(&asked).unwrap().value, expected, "{hour:?}");
        assert_eq!(explanation.permissionship(), Some(expected), "{hour:?}: {:#?}", explanation.tree);
        assert_eq!(explanation.allowed, expected == Permissionship::Allowed);
        let missing = Reason::MissingContext { condition: "office_hours".into(), missing: vec!["hour".into()] };
        assert_eq!(reasons(&explanation).contains(&missing), hour.is_none(), "{hour:?}: {:#?}", explanation.tree);
        let conditional_leaf = nodes(&explanation.tree)
            .into_iter()
            .any(|n| n.result == NodeResult::Conditional && n.reason == Some(missing.clone()));
        assert_eq!(conditional_leaf, hour.is_none());
    }
    // A grant beside the conditional tuple settles it: allowed, whatever the missing context.
    let write = WriteRequest { writes: vec![StoredTuple::new(folder_grant)], ..WriteRequest::default() };
    engine.store(&store).unwrap().write(write).unwrap();
    let explanation = engine
        .store(&store)
        .unwrap()
        .explain_permissionship(&request("document:q3", "viewer", "user:anne"))
        .unwrap()
        .value;
    assert_eq!(explanation.permissionship(), Some(Permissionship::Allowed), "{:#?}", explanation.tree);
    assert!(explanation.path.iter().any(|p| p.tuple == tuple("folder:f#viewer@user:anne")));
}

#[test]
fn an_expired_tuple_says_when_it_expired() {
    let now = Arc::new(AtomicI64::new(NOW));
    let (engine, store) =
        engine_with(EngineConfig::default(), &[("document:q3#viewer@user:anne", Some(NOW + 1_000))], now.clone());
    assert!(explain(&engine, &store, &request("document:q3", "viewer", "user:anne")).allowed);
    now.store(NOW + 5_000, Ordering::SeqCst);
    let explanation = explain(&engine, &store, &request("document:q3", "viewer", "user:anne"));
    assert!(!explanation.allowed);
    assert!(reasons(&explanation).contains(&Reason::Expired { at_ms: NOW + 1_000 }), "{:?}", explanation.tree);
}

#[test]
fn a_tuple_the_model_no_longer_admits_is_named() {
    let (engine, store) = setup(&["document:q3#viewer@user:anne"]);
    let narrower = MODEL.replace(
        "define viewer: [user, group#member, user with office_hours]",
        "define viewer: [group#member, user with office_hours]",
    );
    engine.store(&store).unwrap().write_model(Model::parse_dsl(&narrower).unwrap()).unwrap();
    let explanation = explain(&engine, &store, &request("document:q3", "viewer", "user:anne"));
    assert!(!explanation.allowed);
    assert!(reasons(&explanation).contains(&Reason::TypeNotAllowed), "{:?}", explanation.tree);
}

#[test]
fn the_obo_chain_names_the_failing_link_and_offers_the_delegation_tuple() {
    let (engine, store) = setup(&["document:q3#invoker@user:anne", "document:q3#invoker@agent:planner"]);
    let obo = OboCheckRequest {
        principals: vec!["user:anne".into(), "agent:planner".into()],
        relation: "invoker".into(),
        object: "document:q3".into(),
        delegation_relation: None,
        ..OboCheckRequest::default()
    };
    let handle = engine.store(&store).unwrap();
    let explanation = handle.explain_obo(&obo).unwrap().value;
    let decision = handle.obo_check(&obo).unwrap().value;
    assert_eq!(explanation.allowed, decision.allowed);
    assert!(!explanation.allowed);
    let denial = explanation.denied_by.as_ref().unwrap();
    assert_eq!((denial.kind(), denial.subject()), (DenialKind::Delegation, "agent:planner"));
    assert!(reasons(&explanation).contains(&Reason::DelegationMissing));
    assert_eq!(explanation.would_allow, vec![tuple("user:anne#delegate@agent:planner")]);

    let obo = OboCheckRequest { principals: vec!["agent:boss".into(), "agent:planner".into()], ..obo };
    let explanation = handle.explain_obo(&obo).unwrap().value;
    assert_eq!(explanation.denied_by.as_ref().map(|d| d.kind()), Some(DenialKind::Principal));
    assert_eq!(explanation.would_allow, vec![tuple("document:q3#invoker@agent:boss")]);
    engine
        .store(&store)
        .unwrap()
        .write(WriteRequest {
            writes: vec![StoredTuple::new(tuple("document:q3#invoker@agent:boss"))],
            ..WriteRequest::default()
        })
        .unwrap();
    let explanation = handle.explain_obo(&obo).unwrap().value;
    assert_eq!(
        explanation.denied_by.as_ref().map(|d| (d.kind(), d.subject())),
        Some((DenialKind::Delegation, "agent:planner"))
    );
    assert_eq!(explanation.would_allow, vec![tuple("agent:boss#delegate@agent:planner")]);
    assert!(!handle.obo_check(&obo).unwrap().value.allowed);
}

#[test]
fn a_wide_fan_out_is_cut_at_the_node_bound_and_says_so() {
    let groups: Vec<String> = (0..20_000).map(|i| format!("folder:f#viewer@group:g{i}#member")).collect();
    let mut tuples: Vec<(&str, Option<i64>)> = groups.iter().map(|t| (t.as_str(), None)).collect();
    tuples.push(("document:q3#parent@folder:f", None));
    let config = EngineConfig {
        input: InputLimits { max_explain_nodes: 500, ..InputLimits::default() },
        ..EngineConfig::default()
    };
    let mut engine_config = config;
    engine_config.max_tuples_per_write = 30_000;
    let (engine, store) = engine_with(engine_config, &tuples, Arc::new(AtomicI64::new(NOW)));
    let explanation = explain(&engine, &store, &request("document:q3", "viewer", "user:anne"));
    assert!(!explanation.allowed);
    assert!(explanation.cut);
    assert!(nodes(&explanation.tree).len() <= 500, "{} nodes", nodes(&explanation.tree).len());
    assert!(nodes(&explanation.tree).iter().any(|n| n.cut));
}

#[tokio::test]
async fn the_route_answers_the_shape_of_design_section_9() {
    let (engine, store) = setup(&["document:q3#parent@folder:f"]);
    let app = writ::api::router(Arc::new(engine));
    let post = |body: Value| {
        Request::post(format!("/stores/{store}/writ/explain"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let body = json!({"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:q3"}});
    let response = app.clone().oneshot(post(body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(answer["allowed"], json!(false));
    assert!(answer["revision"].as_u64().is_some());
    assert!(answer["authorization_model_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(answer["tree"]["object"], json!("document:q3"));
    assert_eq!(answer["tree"]["subject"], json!("user:anne"));
    assert_eq!(answer["tree"]["result"], json!("denied"));
    assert_eq!(answer["would_allow"][0], json!({"user": "user:anne", "relation": "viewer", "object": "document:q3"}));
    let response = app.clone().oneshot(post(json!({"relation": "viewer"}))).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = json!({"principals": ["user:anne"], "relation": "viewer", "object": "document:q3"});
    let response = app.clone().oneshot(post(body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = json!({"audience": ["user:anne", "user:bob"], "relation": "viewer", "object": "document:q3"});
    let response = app.clone().oneshot(post(body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!((&answer["tree"]["rewrite"], &answer["denied_by"]["kind"]), (&json!("audience"), &json!("audience")));
    assert_eq!(answer["tree"]["children"].as_array().map(Vec::len), Some(2), "{answer}");
    let body =
        json!({"audience": ["user:anne"], "principals": ["user:anne"], "relation": "viewer", "object": "document:q3"});
    let response = app.oneshot(post(body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_recorded_decision_is_explained_again_at_the_current_revision() {
    let (engine, store) = setup(&["document:q3#parent@folder:f"]);
    let engine = Arc::new(engine);
    let app = writ::api::router(engine.clone());
    let check = json!({"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:q3"}});
    let (status, answer) = call(&app, "POST", &format!("/stores/{store}/check"), Some(check)).await;
    assert_eq!((status, &answer["allowed"]), (StatusCode::OK, &json!(false)));
    let (_, listed) = call(&app, "GET", &format!("/stores/{store}/writ/decisions"), None).await;
    let record = &listed["decisions"][0];
    let id = record["decision_id"].as_str().unwrap().to_string();
    let uri = format!("/stores/{store}/writ/decisions/{id}/explain");

    // Unchanged store: the same deny, at the recorded revision, with the fix offered.
    let (status, same) = call(&app, "GET", &uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["allowed"], json!(false));
    assert_eq!(same["revision_differs"], json!(false));
    assert_eq!(same["revision"], record["revision"]);
    assert_eq!(same["decision"]["decision_id"], json!(id));
    assert_eq!(same["decision"]["principals"], json!(["user:anne"]));
    assert_eq!(same["tree"]["object"], json!("document:q3"));
    assert_eq!(same["would_allow"][0], json!({"user": "user:anne", "relation": "viewer", "object": "document:q3"}));

    // A grant written since: the decision now allows, and the answer says the revision moved.
    let grant = WriteRequest {
        writes: vec![StoredTuple::new("folder:f#viewer@user:anne".parse().unwrap())],
        ..WriteRequest::default()
    };
    engine.store(&store).unwrap().write(grant).unwrap();
    let (status, now) = call(&app, "GET", &uri, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(now["allowed"], json!(true));
    assert_eq!(now["decision"]["allowed"], json!(false));
    assert_eq!(now["revision_differs"], json!(true));
    assert!(now["revision"].as_u64().unwrap() > now["decision"]["revision"].as_u64().unwrap());
    let path = now["path"].as_array().unwrap();
    assert!(path.iter().any(|t| t["object"] == json!("folder:f") && t["user"] == json!("user:anne")), "{now}");

    let (status, body) =
        call(&app, "GET", &format!("/stores/{store}/writ/decisions/{}-999999/explain", NOW + 1), None).await;
    assert_eq!((status, &body["code"]), (StatusCode::NOT_FOUND, &json!("decision_not_found")));
    let (status, body) = call(&app, "GET", &format!("/stores/{store}/writ/decisions/latest/explain"), None).await;
    assert_eq!((status, &body["code"]), (StatusCode::BAD_REQUEST, &json!("validation_error")));
}

#[tokio::test]
async fn a_recorded_obo_deny_is_explained_with_its_failing_link() {
    let (engine, store) = setup(&["document:q3#invoker@user:anne", "document:q3#invoker@agent:bot"]);
    let app = writ::api::router(Arc::new(engine));
    let body = json!({"principals": ["user:anne", "agent:bot"], "relation": "invoker", "object": "document:q3"});
    let (status, answer) = call(&app, "POST", &format!("/stores/{store}/writ/obo-check"), Some(body)).await;
    assert_eq!((status, &answer["allowed"]), (StatusCode::OK, &json!(false)));
    let (_, listed) = call(&app, "GET", &format!("/stores/{store}/writ/decisions"), None).await;
    let id = listed["decisions"][0]["decision_id"].as_str().unwrap().to_string();
    let (status, again) = call(&app, "GET", &format!("/stores/{store}/writ/decisions/{id}/explain"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["allowed"], json!(false));
    assert_eq!(again["decision"]["principals"], json!(["user:anne", "agent:bot"]));
    assert_eq!(again["denied_by"]["kind"], json!("delegation"));
    assert_eq!(again["would_allow"][0], json!({"user": "agent:bot", "relation": "delegate", "object": "user:anne"}));
}

/// The hop of a chain is a `delegation` node naming the relation it checked; a recorded chain
/// keeps its delegation relation, so explaining it again checks the same one.
#[tokio::test]
async fn an_obo_hop_names_its_delegation_relation_and_a_recorded_chain_keeps_it() {
    let (engine, store) = setup(&[
        "document:q3#invoker@user:anne",
        "document:q3#invoker@agent:bot",
        // The default delegation holds; the one asked for does not.
        "user:anne#delegate@agent:bot",
    ]);
    let engine = Arc::new(engine);
    let app = writ::api::router(engine.clone());
    let body = json!({"principals": ["user:anne", "agent:bot"], "relation": "invoker", "object": "document:q3",
        "delegation_relation": "assistant"});
    let (status, answer) = call(&app, "POST", &format!("/stores/{store}/writ/obo-check"), Some(body)).await;
    assert_eq!((status, &answer["allowed"]), (StatusCode::OK, &json!(false)), "{answer}");
    let (_, listed) = call(&app, "GET", &format!("/stores/{store}/writ/decisions"), None).await;
    let record = &listed["decisions"][0];
    assert_eq!(record["delegation_relation"], json!("assistant"), "{record}");
    let id = record["decision_id"].as_str().unwrap().to_string();
    let (status, again) = call(&app, "GET", &format!("/stores/{store}/writ/decisions/{id}/explain"), None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["allowed"], json!(false), "{again}");
    assert_eq!(again["decision"]["delegation_relation"], json!("assistant"));
    assert_eq!(again["denied_by"]["kind"], json!("delegation"));
    let hop = &again["tree"]["children"][1];
    assert_eq!(
        (&hop["rewrite"], &hop["object"], &hop["relation"], &hop["subject"], &hop["reason"]),
        (
            &json!("delegation"),
            &json!("user:anne"),
            &json!("assistant"),
            &json!("agent:bot"),
            &json!("delegation_missing")
        ),
        "{again}"
    );
    assert_eq!(hop["children"][0]["relation"], json!("assistant"), "{again}");
    assert_eq!(again["would_allow"], json!([{"user": "agent:bot", "relation": "assistant", "object": "user:anne"}]));

    // Granted: every hop and principal is in the tree, and the path holds each one's tuple.
    let grant = WriteRequest {
        writes: vec![StoredTuple::new(tuple("user:anne#assistant@agent:bot"))],
        ..WriteRequest::default()
    };
    engine.store(&store).unwrap().write(grant).unwrap();
    let obo = OboCheckRequest {
        principals: vec!["user:anne".into(), "agent:bot".into()],
        relation: "invoker".into(),
        object: "document:q3".into(),
        delegation_relation: Some("assistant".into()),
        ..OboCheckRequest::default()
    };
    let explanation = engine.store(&store).unwrap().explain_obo(&obo).unwrap().value;
    assert!(explanation.allowed && engine.store(&store).unwrap().obo_check(&obo).unwrap().value.allowed);
    let kinds: Vec<_> = explanation.tree.children.iter().map(|n| (n.rewrite, n.relation.as_deref())).collect();
    assert_eq!(kinds[1], (Some("delegation"), Some("assistant")), "{:#?}", explanation.tree);
    assert_eq!(explanation.tree.children.len(), 3);
    let path: Vec<Tuple> = explanation.path.iter().map(|p| p.tuple.clone()).collect();
    assert_eq!(
        path,
        vec![
            tuple("document:q3#invoker@user:anne"),
            tuple("user:anne#assistant@agent:bot"),
            tuple("document:q3#invoker@agent:bot")
        ]
    );
}

/// An audience decision is explained member by member, not as a chain: each member's own tree,
/// and `denied_by` names every member who denies.
#[tokio::test]
async fn a_recorded_audience_deny_is_explained_member_by_member() {
    let (engine, store) = setup(&["document:q3#viewer@user:anne", "document:q4#viewer@user:bob"]);
    let engine = Arc::new(engine);
    let app = writ::api::router(engine.clone());
    let body = json!({"audience": ["user:anne", "user:bob"], "relation": "viewer", "objects": ["document:q3"]});
    let (status, answer) = call(&app, "POST", &format!("/stores/{store}/writ/audience-check"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, listed) = call(&app, "GET", &format!("/stores/{store}/writ/decisions"), None).await;
    let record = &listed["decisions"][0];
    assert_eq!((&record["audience"], &record["allowed"]), (&json!(true), &json!(false)), "{record}");
    let id = record["decision_id"].as_str().unwrap().to_string();
    let (status, again) = call(&app, "GET", &format!("/stores/{store}/writ/decisions/{id}/explain"), None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["allowed"], json!(false));
    assert_eq!(again["decision"]["audience"], json!(true));
    assert_eq!(again["tree"]["rewrite"], json!("audience"), "{again}");
    let members: Vec<(&Value, &Value)> =
        again["tree"]["children"].as_array().unwrap().iter().map(|n| (&n["subject"], &n["result"])).collect();
    assert_eq!(
        members,
        vec![(&json!("user:anne"), &json!("allowed")), (&json!("user:bob"), &json!("denied"))],
        "{again}"
    );
    assert_eq!(again["denied_by"]["kind"], json!("audience"));
    assert_eq!(again["denied_by"]["subjects"], json!(["user:bob"]));
    assert_eq!(again["would_allow"][0], json!({"user": "user:bob", "relation": "viewer", "object": "document:q3"}));

    // Two members denied: no one tuple lets both in, so none is offered; an allowed audience
    // has every member's grant in its path.
    let audience = |members: &[&str], object: &str| AudienceCheckRequest {
        audience: members.iter().map(|m| m.to_string()).collect(),
        relation: "viewer".into(),
        objects: vec![object.into()],
        contextual_tuples: Vec::new(),
        context: Context::new(),
        model_id: None,
        audit: Context::new(),
    };
    let explanation = engine
        .store(&store)
        .unwrap()
        .explain_audience(&audience(&["user:anne", "user:bob", "user:carl"], "document:q4"))
        .unwrap()
        .value;
    assert!(!explanation.allowed);
    assert_eq!(
        explanation.denied_by,
        Some(Denial::audience(vec!["user:anne".into(), "user:carl".into()], "viewer", "document:q4"))
    );
    assert!(explanation.would_allow.is_empty(), "{:?}", explanation.would_allow);
    engine
        .store(&store)
        .unwrap()
        .write(WriteRequest {
            writes: vec![StoredTuple::new(tuple("document:q3#viewer@user:bob"))],
            ..WriteRequest::default()
        })
        .unwrap();
    let explanation = engine
        .store(&store)
        .unwrap()
        .explain_audience(&audience(&["user:anne", "user:bob"], "document:q3"))
        .unwrap()
        .value;
    assert!(explanation.allowed);
    let path: Vec<Tuple> = explanation.path.iter().map(|p| p.tuple.clone()).collect();
    assert_eq!(path, vec![tuple("document:q3#viewer@user:anne"), tuple("document:q3#viewer@user:bob")]);
    let two = AudienceCheckRequest {
        objects: vec!["document:q3".into(), "document:q4".into()],
        ..audience(&["user:anne"], "")
    };
    assert!(engine.store(&store).unwrap().explain_audience(&two).is_err());
}

/// Nested groups answered from the closure still name each nesting tuple, bottom-up, and a
/// user outside every group gets a denied closure node and a fix.
#[test]
fn a_nested_group_allow_names_each_nesting_tuple() {
    let (engine, store) = setup(&[
        "document:q3#viewer@group:top#member",
        "group:top#member@group:mid#member",
        "group:mid#member@group:low#member",
        "group:low#member@user:anne",
        "group:other#member@group:low#member",
        "group:lone#member@user:bob",
    ]);
    let explanation = explain(&engine, &store, &request("document:q3", "viewer", "user:anne"));
    assert!(explanation.allowed);
    let path: Vec<Tuple> = explanation.path.iter().map(|p| p.tuple.clone()).collect();
    assert_eq!(
        path,
        vec![
            tuple("document:q3#viewer@group:top#member"),
            tuple("group:low#member@user:anne"),
            tuple("group:mid#member@group:low#member"),
            tuple("group:top#member@group:mid#member"),
        ],
        "{:#?}",
        explanation.tree
    );
    let explanation = explain(&engine, &store, &request("document:q3", "viewer", "user:bob"));
    assert!(!explanation.allowed);
    assert_eq!(explanation.would_allow.first(), Some(&tuple("document:q3#viewer@user:bob")));
}
