//! Explain (issue 28): one test per denial reason, the OBO chain, the node bound, and the HTTP
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
    CheckRequest, Clock, DenialKind, ExplainNode, Explanation, InputLimits, NodeResult, OboCheckRequest, Reason,
    WriteRequest,
};
use writ::store::{MemoryStore, StoredTuple};
use writ::tuple::{Context, Tuple, TupleCondition};
use writ::{Engine, EngineConfig, Model};

const MODEL: &str = "model
  schema 1.1
type user
  relations
    define delegate: [agent]
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
    let response = app.oneshot(post(body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
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
