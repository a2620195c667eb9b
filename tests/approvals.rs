//! Approvals (DESIGN §12): an obo-check with `"approval": "request"` that denies raises a
//! pending approval; an approver (not a reader or writer) approves or denies it; the exact
//! call, retried while the approval lasts, is allowed once per use, and any other call is not;
//! every step is in the decision log with the approver's name; approvals survive a restart
//! (sled) and are shared by every node on one PostgreSQL.

use crate::skipped::postgres_url;
use crate::support::http::call_as;
use crate::support::TempDir;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use writ::api::Api;
use writ::api::{router_with_config, Auth, KeySet, RouterConfig};
use writ::engine::{
    ApprovalCall, ApprovalGrant, ApprovalStatus, Clock, DecisionMeta, LatencyObserver, OboCheckRequest, WriteRequest,
};
use writ::store::{MemoryStore, PostgresStore, SledStore, StoredTuple, TupleStore};
use writ::{Engine, EngineConfig, Model, Tuple};

const MODEL: &str = "model
  schema 1.1
type user
  relations
    define delegate: [agent]
type agent
type repo
  relations
    define admin: [user, agent]
";

const T0: i64 = 1_800_000_000_000;

const KEYS: &str = "
- {name: alice, key: approver-key-0123456789, role: approver}
- {name: root, key: admin-key-0123456789, role: admin}
- {name: wendy, key: writer-key-0123456789, role: writer}
- {name: rita, key: reader-key-0123456789, role: reader}
";
const APPROVER: Option<&str> = Some("approver-key-0123456789");
const ADMIN: Option<&str> = Some("admin-key-0123456789");
const WRITER: Option<&str> = Some("writer-key-0123456789");
const READER: Option<&str> = Some("reader-key-0123456789");

fn clock(time: &Arc<AtomicI64>) -> Clock {
    let time = time.clone();
    Arc::new(move || time.load(Ordering::SeqCst))
}

/// Anne administers repo acme/web and delegates to agent:bot, which holds nothing itself: the
/// chain `[user:anne, agent:bot]` is denied `admin` on the repo.
fn engine_with_store(backend: Box<dyn TupleStore>, time: &Arc<AtomicI64>) -> (Arc<Engine>, String) {
    let engine = Engine::open_with_clock(backend, EngineConfig::default(), clock(time)).unwrap();
    let store = engine.create_store("approvals").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let writes = ["repo:web#admin@user:anne", "user:anne#delegate@agent:bot", "user:bob#delegate@agent:bot"]
        .iter()
        .map(|t| StoredTuple::new(t.parse::<Tuple>().unwrap()))
        .collect();
    engine.store(&store).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
    (Arc::new(engine), store)
}

fn app(engine: &Arc<Engine>) -> Api {
    let keys = KeySet::parse_file(KEYS).unwrap();
    router_with_config(
        engine.clone(),
        RouterConfig { auth: Auth::Preshared(Arc::new(keys)), ..RouterConfig::default() },
    )
}

/// An obo-check asking for an approval: the chain, and the call's arguments in `audit`.
async fn obo(app: &Api, store: &str, chain: &[&str], arguments: Value) -> Value {
    let body = json!({
        "principals": chain, "relation": "admin", "object": "repo:web", "approval": "request",
        "audit": {"tool": "delete_repo", "arguments": arguments},
    });
    let (status, answer) = call_as(app, READER, "POST", &format!("/stores/{store}/writ/obo-check"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer
}

async fn approve(app: &Api, key: Option<&str>, store: &str, id: &str, grant: Value) -> (StatusCode, Value) {
    call_as(app, key, "POST", &format!("/stores/{store}/writ/approvals/{id}/approve"), Some(grant)).await
}

async fn decisions(app: &Api, store: &str) -> Vec<Value> {
    let (status, body) = call_as(app, READER, "GET", &format!("/stores/{store}/writ/decisions"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["decisions"].as_array().unwrap().clone()
}

const BOT: &[&str] = &["user:anne", "agent:bot"];

#[tokio::test]
async fn an_approved_call_passes_once_and_its_second_retry_is_denied() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with_store(Box::new(writ::store::MemoryStore::new()), &time);
    let app = app(&engine);
    let arguments = json!({"repo": "acme/web", "force": true});

    let denied = obo(&app, &store, BOT, arguments.clone()).await;
    assert_eq!((denied["allowed"].as_bool(), denied["approval"]["state"].as_str()), (Some(false), Some("pending")));
    let id = denied["approval"]["id"].as_str().unwrap().to_string();
    // Key order and layout do not make another call.
    let again = obo(&app, &store, BOT, json!({"force": true, "repo": "acme/web"})).await;
    assert_eq!(again["approval"]["id"], id.as_str(), "the pending approval is answered again, not raised twice");

    let list = format!("/stores/{store}/writ/approvals?state=pending");
    let (status, pending) = call_as(&app, APPROVER, "GET", &list, None).await;
    assert_eq!(status, StatusCode::OK, "{pending}");
    assert_eq!(pending["approvals"].as_array().unwrap().len(), 1);
    assert_eq!(pending["approvals"][0]["id"], id.as_str());
    assert_eq!(pending["approvals"][0]["principals"], json!(BOT));
    assert_eq!(pending["approvals"][0]["relation"], "admin");
    assert_eq!(pending["approvals"][0]["arguments_sha256"].as_str().unwrap().len(), 64);

    for key in [READER, WRITER] {
        let (status, body) = approve(&app, key, &store, &id, json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, _) = call_as(&app, key, "GET", &list, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, approved) = approve(&app, APPROVER, &store, &id, json!({"ttl": "15m", "uses": 1})).await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!((approved["state"].as_str(), approved["decided_by"].as_str()), (Some("approved"), Some("alice")));
    assert_eq!(approved["uses_left"], 1);
    let (status, body) = approve(&app, ADMIN, &store, &id, json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("approval_already_decided")));

    let retried = obo(&app, &store, BOT, arguments.clone()).await;
    assert_eq!(retried["allowed"], true, "{retried}");
    assert_eq!(retried["approval"], json!({"id": id, "state": "approved"}));
    let second = obo(&app, &store, BOT, arguments).await;
    assert_eq!(second["allowed"], false, "{second}");
    assert_eq!(second["approval"]["state"], "pending");
    assert_ne!(second["approval"]["id"], id.as_str(), "a used-up approval raises a new one");
    let (_, used) =
        call_as(&app, APPROVER, "GET", &format!("/stores/{store}/writ/approvals?state=used_up"), None).await;
    assert_eq!(used["approvals"][0]["id"], id.as_str(), "{used}");

    // The default (`deny`) log keeps the approver's step and the call the approval allowed.
    let recorded = decisions(&app, &store).await;
    let step = recorded.iter().find(|r| r["audit"]["approval"]["step"] == "approve").expect("the approve step");
    assert_eq!(
        (step["audit"]["approval"]["approver"].as_str(), step["allowed"].as_bool()),
        (Some("alice"), Some(true))
    );
    assert_eq!(step["audit"]["approval"]["id"], id.as_str());
    let allowed = recorded
        .iter()
        .find(|r| r["allowed"] == true && r["audit"]["approval"]["state"] == "approved")
        .expect("the call the approval allowed");
    assert_eq!(allowed["audit"]["approval"], json!({"id": id, "state": "approved", "approver": "alice"}));
    assert_eq!(allowed["audit"]["tool"], "delete_repo");
}

#[tokio::test]
async fn an_approval_allows_only_its_exact_call_and_only_until_it_expires() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with_store(Box::new(writ::store::MemoryStore::new()), &time);
    let app = app(&engine);
    let arguments = json!({"repo": "acme/web"});
    let id = obo(&app, &store, BOT, arguments.clone()).await["approval"]["id"].as_str().unwrap().to_string();
    let (status, body) = approve(&app, ADMIN, &store, &id, json!({"ttl": "1m", "uses": 10})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decided_by"], "root", "an admin may approve too");

    let changed = obo(&app, &store, BOT, json!({"repo": "acme/api"})).await;
    assert_eq!(changed["allowed"], false, "a changed argument: {changed}");
    assert_ne!(changed["approval"]["id"], id.as_str());
    let other_agent = obo(&app, &store, &["user:anne", "agent:eve"], arguments.clone()).await;
    assert_eq!(other_agent["allowed"], false, "another agent: {other_agent}");
    let other_user = obo(&app, &store, &["user:bob", "agent:bot"], arguments.clone()).await;
    assert_eq!(other_user["allowed"], false, "another user: {other_user}");
    assert_eq!(obo(&app, &store, BOT, arguments.clone()).await["allowed"], true, "the exact call");

    time.store(T0 + 60_000, Ordering::SeqCst);
    let expired = obo(&app, &store, BOT, arguments).await;
    assert_eq!(expired["allowed"], false, "expired: {expired}");
    let (_, listed) =
        call_as(&app, APPROVER, "GET", &format!("/stores/{store}/writ/approvals?state=expired"), None).await;
    assert_eq!(listed["approvals"][0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed["approvals"][0]["uses_left"], 9);
}

#[tokio::test]
async fn a_denied_approval_allows_nothing_and_the_deny_is_recorded() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with_store(Box::new(writ::store::MemoryStore::new()), &time);
    let app = app(&engine);
    let arguments = json!({"repo": "acme/web"});
    let id = obo(&app, &store, BOT, arguments.clone()).await["approval"]["id"].as_str().unwrap().to_string();
    let deny = format!("/stores/{store}/writ/approvals/{id}/deny");
    let (status, _) = call_as(&app, READER, "POST", &deny, Some(json!({}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, denied) = call_as(&app, APPROVER, "POST", &deny, Some(json!({"reason": "not today"}))).await;
    assert_eq!(status, StatusCode::OK, "{denied}");
    assert_eq!((denied["state"].as_str(), denied["decided_by"].as_str()), (Some("denied"), Some("alice")));
    let (status, body) = approve(&app, APPROVER, &store, &id, json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::CONFLICT, Some("approval_already_decided")));
    let (status, body) = approve(&app, APPROVER, &store, "01NOSUCHAPPROVAL", json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("approval_not_found")));

    assert_eq!(obo(&app, &store, BOT, arguments).await["allowed"], false);
    let recorded = decisions(&app, &store).await;
    let step = recorded.iter().find(|r| r["audit"]["approval"]["step"] == "deny").expect("the deny step");
    assert_eq!(step["allowed"], false);
    assert_eq!(
        step["audit"]["approval"],
        json!({"id": id, "step": "deny", "approver": "alice", "reason": "not today"})
    );
    assert_eq!(step["denied_by"]["kind"], "approval");
}

fn call() -> ApprovalCall {
    ApprovalCall {
        principals: vec!["user:anne".into(), "agent:bot".into()],
        relation: "admin".into(),
        object: "repo:web".into(),
        server: Some("github".into()),
        tool: Some("delete_repo".into()),
        arguments_sha256: "ab".repeat(32),
    }
}

/// Regression for building an obo-check's approval call (a SHA-256 of its audit and context)
/// before the check's answer was known: an allowed check never builds it; a denied one builds it
/// once, to raise its approval.
#[test]
fn an_allowed_obo_check_builds_no_approval_call() {
    struct Unobserved;
    impl LatencyObserver for Unobserved {
        fn observe(&self, _elapsed: std::time::Duration) {}
    }
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with_store(Box::new(MemoryStore::new()), &time);
    let handle = engine.store(&store).unwrap();
    let meta = DecisionMeta {
        request_id: "",
        audit: None,
        started: std::time::Instant::now(),
        model_id: None,
        latency: &Unobserved,
        time_ms: None,
        ids: None,
    };
    let built = AtomicI64::new(0);
    let call_of = |principals: &[&str]| {
        built.fetch_add(1, Ordering::SeqCst);
        ApprovalCall { principals: principals.iter().map(|p| p.to_string()).collect(), ..call() }
    };
    let log = engine.decision_log();
    let anne = OboCheckRequest {
        principals: vec!["user:anne".into()],
        relation: "admin".into(),
        object: "repo:web".into(),
        ..OboCheckRequest::default()
    };
    let allowed = engine.approvals().decide_obo(log, &handle, &anne, || call_of(&["user:anne"]), &meta).unwrap();
    assert_eq!((allowed.answer.value.allowed, allowed.approval.is_none()), (true, true));
    assert_eq!(built.load(Ordering::SeqCst), 0, "an allowed check builds no approval call");
    let bot = OboCheckRequest { principals: vec!["user:anne".into(), "agent:bot".into()], ..anne };
    let denied = engine.approvals().decide_obo(log, &handle, &bot, || call_of(BOT), &meta).unwrap();
    assert!(!denied.answer.value.allowed);
    assert_eq!(
        denied.approval.map(|approval| approval.call.principals),
        Some(vec!["user:anne".into(), "agent:bot".into()])
    );
    assert_eq!(built.load(Ordering::SeqCst), 1, "a denied check builds it once");
}

#[test]
fn approvals_survive_reopening_the_sled_store() {
    let dir = TempDir::new("approvals");
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with_store(Box::new(SledStore::open(dir.path()).unwrap()), &time);
    let approvals = engine.approvals();
    let handle = engine.store(&store).unwrap();
    let raised = approvals.request(&handle, &call()).unwrap();
    let grant = ApprovalGrant { ttl_ms: 60_000, uses: 2 };
    approvals.approve(engine.decision_log(), &handle, &raised.id, grant, "alice").unwrap();
    assert!(approvals.take_use(&handle, &call()).unwrap().is_some());
    drop(handle);
    drop(engine);

    let engine =
        Engine::open_with_clock(Box::new(SledStore::open(dir.path()).unwrap()), EngineConfig::default(), clock(&time))
            .unwrap();
    let approvals = engine.approvals();
    let handle = engine.store(&store).unwrap();
    let kept = approvals.get(&handle, &raised.id).unwrap();
    assert_eq!((approvals.status(&kept), kept.uses_left), (ApprovalStatus::Approved, 1));
    assert_eq!(kept.decided_by.as_deref(), Some("alice"));
    let used = approvals.take_use(&handle, &call()).unwrap().expect("the last use");
    assert_eq!(approvals.status(&used), ApprovalStatus::UsedUp);
    assert!(approvals.take_use(&handle, &call()).unwrap().is_none());
}

#[test]
#[cfg_attr(writ_no_postgres, ignore = "WRIT_TEST_POSTGRES_URL is not set (start a server with .ci/postgres.sh)")]
fn a_second_engine_on_the_same_postgres_sees_and_uses_the_approval() {
    let database = crate::postgres_store::FreshDatabase::new(&postgres_url());
    let time = Arc::new(AtomicI64::new(T0));
    let open =
        |store: PostgresStore| Engine::open_with_clock(Box::new(store), EngineConfig::default(), clock(&time)).unwrap();
    let (first, store) = engine_with_store(Box::new(database.open()), &time);
    let second = open(database.open());
    let second_handle = second.store(&store).unwrap();
    let first_handle = first.store(&store).unwrap();

    let raised = first.approvals().request(&first_handle, &call()).unwrap();
    let seen = second.approvals().list(&second_handle, Some(ApprovalStatus::Pending), None, 10).unwrap();
    assert_eq!(seen.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), vec![raised.id.as_str()]);
    assert_eq!(second.approvals().request(&second_handle, &call()).unwrap().id, raised.id, "one pending per call");

    let grant = ApprovalGrant { ttl_ms: 60_000, uses: 1 };
    second.approvals().approve(second.decision_log(), &second_handle, &raised.id, grant, "alice").unwrap();
    let used = first.approvals().take_use(&first_handle, &call()).unwrap().expect("approved on the other node");
    assert_eq!(used.uses_left, 0);
    assert!(second.approvals().take_use(&second_handle, &call()).unwrap().is_none(), "the one use is gone");
}
