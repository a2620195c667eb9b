//! The decision log: what `all`, `deny` and `off` record from check, batch-check and AuthZEN;
//! `GET /stores/{id}/writ/decisions` filters and pages; retention by count and by age (with an
//! injected clock); records survive reopening the sled store.

use crate::support::http::{batch_of, call_with};
use crate::support::TempDir;
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use writ::api::Api;
use writ::engine::{Clock, DecisionFilter, DecisionLogConfig, DecisionLogMode, DecisionRecord, WriteRequest};
use writ::store::{CheckpointStore, DecisionLogStore, MemoryStore, SledStore, StoredTuple, TupleStore, WriteBatch};
use writ::{Engine, EngineConfig, Model, Tuple};

const MODEL: &str = "model
  schema 1.1
type user
  relations
    define delegate: [agent]
type agent
type document
  relations
    define viewer: [user, agent]
";

const T0: i64 = 1_800_000_000_000;

fn fixed_clock(time: &Arc<AtomicI64>) -> Clock {
    let time = time.clone();
    Arc::new(move || time.load(Ordering::SeqCst))
}

fn config(mode: DecisionLogMode) -> EngineConfig {
    EngineConfig { decision_log: DecisionLogConfig { mode, ..DecisionLogConfig::default() }, ..EngineConfig::default() }
}

/// An engine over `backend` with one store: anne and agent:bot view document:1.
fn engine_with_store(
    backend: Box<dyn TupleStore>,
    config: EngineConfig,
    time: &Arc<AtomicI64>,
) -> (Arc<Engine>, String) {
    let engine = Engine::open_with_clock(backend, config, fixed_clock(time)).unwrap();
    let store = engine.create_store("decisions").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let writes = ["document:1#viewer@user:anne", "document:1#viewer@agent:bot"]
        .iter()
        .map(|t| StoredTuple::new(t.parse::<Tuple>().unwrap()))
        .collect();
    engine.store(&store).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
    (Arc::new(engine), store)
}

/// Every request carries the request id `req-1`, which the recorded decisions must name.
async fn call(app: &Api, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    call_with(app, method, uri, &[("x-request-id", "req-1")], body).await
}

async fn check(app: &Api, store: &str, user: &str, audit: Value) -> bool {
    let body = json!({"tuple_key": {"user": user, "relation": "viewer", "object": "document:1"}, "audit": audit});
    let (status, answer) = call(app, "POST", &format!("/stores/{store}/check"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["allowed"].as_bool().unwrap()
}

async fn decisions(app: &Api, store: &str, query: &str) -> Value {
    let (status, body) = call(app, "GET", &format!("/stores/{store}/writ/decisions{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn each_mode_records_what_it_names() {
    for (mode, expected) in [(DecisionLogMode::All, 2), (DecisionLogMode::Deny, 1), (DecisionLogMode::Off, 0)] {
        let time = Arc::new(AtomicI64::new(T0));
        let (engine, store) = engine_with_store(Box::new(MemoryStore::new()), config(mode), &time);
        let app = writ::api::router(engine.clone());
        assert!(check(&app, &store, "user:anne", json!({"tool": "search", "task": "t-1"})).await);
        assert!(!check(&app, &store, "user:zed", json!({"tool": "send_email"})).await);
        let body = decisions(&app, &store, "").await;
        let listed = body["decisions"].as_array().unwrap();
        assert_eq!(listed.len(), expected, "{mode:?}: {body}");
        if mode != DecisionLogMode::Off {
            let deny = &listed[0];
            assert_eq!(deny["principals"], json!(["user:zed"]));
            assert_eq!((deny["relation"].as_str(), deny["object"].as_str()), (Some("viewer"), Some("document:1")));
            assert_eq!(deny["allowed"], false);
            assert_eq!(deny["audit"], json!({"tool": "send_email"}));
            assert_eq!(deny["request_id"], "req-1");
            assert_eq!(deny["revision"], 1);
            assert_eq!(deny["time"], "2027-01-15T08:00:00.000Z");
            assert_eq!(deny["authorization_model_id"], engine.store(&store).unwrap().model(None).unwrap().id);
            assert!(deny["latency_us"].is_u64());
        }
        assert_eq!(engine.decision_log().stats().dropped, 0);
    }
}

#[tokio::test]
async fn batch_check_items_and_authzen_evaluations_are_recorded() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with_store(Box::new(MemoryStore::new()), config(DecisionLogMode::All), &time);
    let app = writ::api::router(engine);
    let batch = json!({"audit": {"task": "batch"}, "checks": [
        {"tuple_key": {"user": "user:anne", "relation": "viewer", "object": "document:1"}, "correlation_id": "a"},
        {"tuple_key": {"user": "user:zed", "relation": "viewer", "object": "document:1"}, "correlation_id": "b",
         "audit": {"task": "item"}},
    ]});
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/batch-check"), Some(batch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let evaluation = json!({
        "subject": {"type": "user", "id": "zed"}, "resource": {"type": "document", "id": "1"},
        "action": {"name": "viewer"}, "context": {"agent": {"type": "agent", "id": "bot"}}, "audit": {"tool": "mcp"},
    });
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/access/v1/evaluation"), Some(evaluation)).await;
    assert_eq!((status, &body["decision"]), (StatusCode::OK, &json!(false)));
    let listed = decisions(&app, &store, "").await["decisions"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 3);
    // Same time, so newest first is reverse order of recording.
    assert_eq!(listed[0]["principals"], json!(["user:zed", "agent:bot"]));
    assert_eq!(listed[0]["denied_by"]["subject"], "user:zed");
    assert_eq!(listed[0]["denied_by"]["kind"], "principal");
    assert_eq!(listed[0]["audit"], json!({"tool": "mcp"}));
    assert_eq!(
        (listed[1]["principals"].clone(), listed[1]["audit"].clone()),
        (json!(["user:zed"]), json!({"task": "item"}))
    );
    assert_eq!(
        (listed[2]["principals"].clone(), listed[2]["audit"].clone()),
        (json!(["user:anne"]), json!({"task": "batch"}))
    );
}

#[tokio::test]
async fn a_batch_checks_decisions_keep_its_order_and_name_the_model_it_resolved() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with_store(Box::new(MemoryStore::new()), config(DecisionLogMode::Deny), &time);
    let latest = engine.store(&store).unwrap().model(None).unwrap().id;
    let app = writ::api::router(engine);
    let batch = batch_of(&["user:zed", "user:anne", "user:yan", "user:xia"], "viewer", "document:1");
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/batch-check"), Some(batch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed = decisions(&app, &store, "").await["decisions"].as_array().unwrap().clone();
    let principals: Vec<&str> = listed.iter().map(|d| d["principals"][0].as_str().unwrap()).collect();
    assert_eq!(principals, ["user:xia", "user:yan", "user:zed"], "the denies, newest (last in the batch) first");
    assert!(listed.iter().all(|d| d["authorization_model_id"] == latest.as_str()), "{listed:?}");
}

/// A clock that moves one millisecond on every read.
fn ticking_clock(time: &Arc<AtomicI64>) -> Clock {
    let time = time.clone();
    Arc::new(move || time.fetch_add(1, Ordering::SeqCst))
}

#[tokio::test]
async fn a_batchs_records_carry_the_one_time_its_answers_were_decided() {
    // Each check of a batch used to stamp its record when it was answered; concurrent batches
    // then handed the log records timed before ones it held, merged in at a cost per record.
    let time = Arc::new(AtomicI64::new(T0));
    let backend = Box::new(MemoryStore::new());
    let engine =
        Arc::new(Engine::open_with_clock(backend, config(DecisionLogMode::Deny), ticking_clock(&time)).unwrap());
    let store = engine.create_store("ticking").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let app = writ::api::router(engine);
    let users: Vec<String> = (0..20).map(|i| format!("user:u{i}")).collect();
    let batch = batch_of(&users.iter().map(String::as_str).collect::<Vec<_>>(), "viewer", "document:1");
    let before = time.load(Ordering::SeqCst);
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/batch-check"), Some(batch)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = time.load(Ordering::SeqCst);
    let listed = decisions(&app, &store, "").await["decisions"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 20, "every check was denied and recorded: {listed:?}");
    // A record's `decision_id` is `{time_ms}-{seq}`.
    let time_of = |d: &Value| d["decision_id"].as_str().unwrap().split('-').next().unwrap().parse::<i64>().unwrap();
    let times: std::collections::BTreeSet<i64> = listed.iter().map(time_of).collect();
    assert_eq!(times.len(), 1, "one time for the whole batch: {times:?}");
    let decided = *times.first().unwrap();
    assert!(before < decided && decided < after, "read once the checks were answered: {before} < {decided} < {after}");
    let principals: Vec<&str> = listed.iter().map(|d| d["principals"][0].as_str().unwrap()).collect();
    let newest_first: Vec<String> = (0..20).rev().map(|i| format!("user:u{i}")).collect();
    assert_eq!(principals, newest_first, "the batch's order kept");
}

#[tokio::test]
async fn agent_endpoints_are_recorded() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with_store(Box::new(MemoryStore::new()), config(DecisionLogMode::All), &time);
    let app = writ::api::router(engine);
    // anne and the bot both view document:1, but anne never delegated to the bot.
    let obo = json!({"principals": ["user:anne", "agent:bot"], "relation": "viewer", "object": "document:1",
        "audit": {"tool": "search"}});
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/writ/obo-check"), Some(obo)).await;
    assert_eq!((status, &body["allowed"]), (StatusCode::OK, &json!(false)), "{body}");
    let audience = json!({"audience": ["user:anne", "user:zed"], "relation": "viewer",
        "objects": ["document:1", "document:2"]});
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/writ/audience-check"), Some(audience)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let filter = json!({"principals": ["user:anne"], "relation": "viewer", "object_type": "document",
        "ids": ["1", "2", "3"]});
    let (status, body) = call(&app, "POST", &format!("/stores/{store}/writ/filter"), Some(filter)).await;
    assert_eq!((status, &body["allowed_ids"]), (StatusCode::OK, &json!(["1"])), "{body}");

    let listed = decisions(&app, &store, "").await["decisions"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 4, "one OBO, two audience objects, one filter call: {listed:?}");
    // Newest first: the filter, the audience objects in reverse, the OBO check.
    let filter = &listed[0];
    assert_eq!((filter["object"].as_str(), filter["allowed"].as_bool()), (Some("document:"), Some(false)));
    assert_eq!(
        (filter["denied_by"]["kind"].as_str(), filter["denied_by"]["hidden"].as_u64()),
        (Some("filtered"), Some(2))
    );
    assert_eq!(listed[1]["object"], "document:2");
    assert_eq!(listed[1]["denied_by"]["subjects"], json!(["user:anne", "user:zed"]));
    assert_eq!(listed[2]["object"], "document:1");
    assert_eq!(listed[2]["principals"], json!(["user:anne", "user:zed"]));
    assert_eq!(listed[2]["denied_by"]["subjects"], json!(["user:zed"]));
    let obo = &listed[3];
    assert_eq!(obo["principals"], json!(["user:anne", "agent:bot"]));
    assert_eq!(
        (obo["denied_by"]["kind"].as_str(), obo["denied_by"]["subject"].as_str()),
        (Some("delegation"), Some("agent:bot"))
    );
    assert_eq!(obo["audit"], json!({"tool": "search"}));
    assert_eq!(obo["request_id"], "req-1");
}

/// Records one decision per (principal, object, allowed, time) through the engine.
fn record(engine: &Engine, store: &str, principal: &str, object: &str, allowed: bool, time_ms: i64) {
    engine.decision_log().record(DecisionRecord {
        time_ms,
        store_id: store.into(),
        model_id: "".into(),
        principals: vec![principal.into()],
        delegation_relation: None,
        audience: false,
        relation: "viewer".into(),
        object: object.into(),
        allowed,
        denied_by: None,
        revision: 1,
        latency_us: 3,
        request_id: format!("r{time_ms}").into(),
        audit: None,
    });
}

#[tokio::test]
async fn the_listing_filters_and_pages_newest_first() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with_store(Box::new(MemoryStore::new()), config(DecisionLogMode::All), &time);
    for i in 0..7 {
        let principal = if i % 2 == 0 { "user:anne" } else { "user:bob" };
        let object = if i < 4 { "document:1" } else { "document:2" };
        record(&engine, &store, principal, object, i % 3 != 0, T0 + i * 1000);
    }
    let app = writ::api::router(engine);
    let ids = |body: &Value| -> Vec<String> {
        body["decisions"].as_array().unwrap().iter().map(|d| d["request_id"].as_str().unwrap().to_string()).collect()
    };
    let r = |i: i64| format!("r{}", T0 + i * 1000);
    let all = decisions(&app, &store, "").await;
    assert_eq!(ids(&all), (0..7).rev().map(r).collect::<Vec<_>>());
    assert_eq!(all["continuation_token"], "");
    assert_eq!(ids(&decisions(&app, &store, "?principal=user:bob").await), [r(5), r(3), r(1)]);
    assert_eq!(ids(&decisions(&app, &store, "?object=document:2&decision=deny").await), [r(6)]);
    assert_eq!(ids(&decisions(&app, &store, "?decision=allow&object=document:1").await), [r(2), r(1)]);
    let window = "?since=2027-01-15T08:00:02Z&until=2027-01-15T08:00:05Z";
    assert_eq!(ids(&decisions(&app, &store, window).await), [r(4), r(3), r(2)]);
    // Pages of two, following the tokens to the end.
    let mut seen = Vec::new();
    let mut query = "?limit=2".to_string();
    loop {
        let page = decisions(&app, &store, &query).await;
        assert!(ids(&page).len() <= 2);
        seen.extend(ids(&page));
        let token = page["continuation_token"].as_str().unwrap().to_string();
        if token.is_empty() {
            break;
        }
        query = format!("?limit=2&continuation_token={token}");
    }
    assert_eq!(seen, (0..7).rev().map(r).collect::<Vec<_>>());
    // Bad parameters are 400s naming the parameter.
    for (bad, code) in [
        ("?decision=maybe", "validation_error"),
        ("?since=yesterday", "validation_error"),
        ("?continuation_token=zz", "invalid_continuation_token"),
    ] {
        let (status, body) = call(&app, "GET", &format!("/stores/{store}/writ/decisions{bad}"), None).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some(code)), "{bad}: {body}");
    }
    let (status, body) = call(&app, "GET", "/stores/nope/writ/decisions", None).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("store_id_not_found")), "{body}");
}

/// `agent=` matches a principal after the first of a chain (not the human, not an audience
/// member); `tool=` matches `audit.tool`; both combine with the other filters and page by token.
#[tokio::test]
async fn the_listing_filters_by_agent_and_tool() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with_store(Box::new(MemoryStore::new()), config(DecisionLogMode::All), &time);
    let rows: [(&[&str], bool, Option<&str>); 6] = [
        (&["user:anne", "agent:planner"], false, Some("send_email")),
        (&["user:anne", "agent:planner", "agent:mailer"], false, Some("read_inbox")),
        (&["user:bob", "agent:mailer"], false, Some("send_email")),
        (&["user:anne", "agent:mailer"], true, Some("send_email")),
        (&["agent:planner"], false, None),
        (&["user:carol", "agent:planner"], false, None),
    ];
    for (i, (principals, audience, tool)) in rows.iter().enumerate() {
        let audit = tool.map(|tool| serde_json::from_value(json!({"server": "mail", "tool": tool})).unwrap());
        engine.decision_log().record(DecisionRecord {
            time_ms: T0 + i as i64,
            store_id: store.clone().into(),
            model_id: "".into(),
            principals: principals.iter().map(|p| p.to_string()).collect(),
            delegation_relation: None,
            audience: *audience,
            relation: "can_call".into(),
            object: "tool:mail".into(),
            allowed: i % 2 == 0,
            denied_by: None,
            revision: 1,
            latency_us: 3,
            request_id: format!("r{i}").into(),
            audit,
        });
    }
    let app = writ::api::router(engine);
    let ids = |body: &Value| -> Vec<String> {
        body["decisions"].as_array().unwrap().iter().map(|d| d["request_id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ids(&decisions(&app, &store, "?agent=agent:planner").await), ["r5", "r1", "r0"]);
    assert_eq!(ids(&decisions(&app, &store, "?agent=agent:mailer").await), ["r2", "r1"]);
    assert!(ids(&decisions(&app, &store, "?agent=user:anne").await).is_empty());
    assert_eq!(ids(&decisions(&app, &store, "?tool=send_email").await), ["r3", "r2", "r0"]);
    assert_eq!(ids(&decisions(&app, &store, "?tool=send_email&agent=agent:mailer").await), ["r2"]);
    assert_eq!(ids(&decisions(&app, &store, "?tool=send_email&decision=allow").await), ["r2", "r0"]);
    // The continuation token keeps to the filter.
    let first = decisions(&app, &store, "?tool=send_email&limit=2").await;
    assert_eq!(ids(&first), ["r3", "r2"]);
    let token = first["continuation_token"].as_str().unwrap();
    assert_eq!(
        ids(&decisions(&app, &store, &format!("?tool=send_email&limit=2&continuation_token={token}")).await),
        ["r0"]
    );
    // Bad values are 400s naming the parameter.
    let long = "x".repeat(300);
    for bad in ["?agent=planner", "?agent=agent:a%23b", &format!("?tool={long}"), "?tool=a%0Ab"] {
        let (status, body) = call(&app, "GET", &format!("/stores/{store}/writ/decisions{bad}"), None).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("validation_error")),
            "{bad}: {body}"
        );
        let parameter = if bad.starts_with("?agent") { "`agent`" } else { "`tool`" };
        assert!(body["message"].as_str().unwrap().contains(parameter), "{bad}: {body}");
    }
}

#[test]
fn retention_keeps_the_newest_by_count_and_drops_by_age() {
    for backend in [Box::new(MemoryStore::new()) as Box<dyn TupleStore>, Box::new(SledStore::temporary().unwrap())] {
        let time = Arc::new(AtomicI64::new(T0));
        let log =
            DecisionLogConfig { mode: DecisionLogMode::All, max_count: 3, max_age_ms: 10_000, ..Default::default() };
        let config = EngineConfig { decision_log: log, ..EngineConfig::default() };
        let (engine, store) = engine_with_store(backend, config, &time);
        for i in 0..5 {
            record(&engine, &store, "user:anne", "document:1", false, T0 + i);
        }
        engine.decision_log().flush();
        let kept = engine
            .decision_log()
            .list(&engine.store(&store).unwrap(), &DecisionFilter { limit: 100, ..Default::default() })
            .unwrap();
        let times: Vec<i64> = kept.iter().map(|(cursor, _)| cursor.time_ms).collect();
        assert_eq!(times, [T0 + 4, T0 + 3, T0 + 2], "only the newest three are kept");
        // Ten seconds on, T0+2 and T0+3 are too old; T0+4 is just within.
        time.store(T0 + 10_004, Ordering::SeqCst);
        engine.decision_log().flush();
        let kept = engine
            .decision_log()
            .list(&engine.store(&store).unwrap(), &DecisionFilter { limit: 100, ..Default::default() })
            .unwrap();
        let times: Vec<i64> = kept.iter().map(|(cursor, _)| cursor.time_ms).collect();
        assert_eq!(times, [T0 + 4]);
    }
}

#[test]
fn decisions_survive_reopening_the_sled_store() {
    let dir = TempDir::new("decisions");
    let time = Arc::new(AtomicI64::new(T0));
    let store = {
        let backend = Box::new(SledStore::open(dir.path()).unwrap());
        let (engine, store) = engine_with_store(backend, config(DecisionLogMode::Deny), &time);
        record(&engine, &store, "user:anne", "document:1", false, T0);
        record(&engine, &store, "user:anne", "document:1", true, T0);
        store
    };
    let engine = Engine::open_with_clock(
        Box::new(SledStore::open(dir.path()).unwrap()),
        config(DecisionLogMode::Deny),
        fixed_clock(&time),
    )
    .unwrap();
    // Same clock reading after the restart: the new record must not overwrite the old one.
    record(&engine, &store, "user:bob", "document:1", false, T0);
    let kept = engine
        .decision_log()
        .list(&engine.store(&store).unwrap(), &DecisionFilter { limit: 100, ..Default::default() })
        .unwrap();
    let principals: Vec<&str> = kept.iter().map(|(_, record)| record.principals[0].as_str()).collect();
    assert_eq!(principals, ["user:bob", "user:anne"], "the allow was not recorded in `deny` mode");
    assert!(!kept[1].1.model_id.is_empty(), "the latest model id is filled in");
}

/// A memory store whose decision appends wait while the test holds `gate`; `entered` says
/// that an append is waiting. Without `keeps_log` it offers no decision log at all.
struct GatedStore {
    inner: MemoryStore,
    gate: Arc<std::sync::Mutex<()>>,
    entered: Arc<std::sync::atomic::AtomicBool>,
    keeps_log: bool,
}

impl TupleStore for GatedStore {
    fn create_store(&self, store: &writ::store::StoreRecord) -> Result<(), writ::store::StoreError> {
        self.inner.create_store(store)
    }
    fn get_store(&self, id: &str) -> Result<Option<writ::store::StoreRecord>, writ::store::StoreError> {
        self.inner.get_store(id)
    }
    fn list_stores(&self) -> Result<Vec<writ::store::StoreRecord>, writ::store::StoreError> {
        self.inner.list_stores()
    }
    fn delete_store(&self, id: &str) -> Result<(), writ::store::StoreError> {
        self.inner.delete_store(id)
    }
    fn write_model(&self, id: &str, model_id: &str, json: &str) -> Result<(), writ::store::StoreError> {
        self.inner.write_model(id, model_id, json)
    }
    fn models(&self, id: &str) -> Result<Vec<(String, String)>, writ::store::StoreError> {
        self.inner.models(id)
    }
    fn write(&self, id: &str, batch: &WriteBatch<'_>) -> Result<u64, writ::store::StoreError> {
        self.inner.write(id, batch)
    }
    fn tuples(&self, id: &str) -> Result<Vec<StoredTuple>, writ::store::StoreError> {
        self.inner.tuples(id)
    }
    fn written_at(&self, id: &str, tuples: &[writ::Tuple]) -> Result<Vec<Option<i64>>, writ::store::StoreError> {
        self.inner.written_at(id, tuples)
    }
    fn revision(&self, id: &str) -> Result<u64, writ::store::StoreError> {
        self.inner.revision(id)
    }
    fn change_page(
        &self,
        id: &str,
        query: writ::store::ChangeQuery<'_>,
    ) -> Result<Vec<writ::store::ChangeRecord>, writ::store::StoreError> {
        self.inner.change_page(id, query)
    }
    fn write_assertions(&self, id: &str, model_id: &str, json: &str) -> Result<(), writ::store::StoreError> {
        self.inner.write_assertions(id, model_id, json)
    }
    fn assertions(&self, id: &str, model_id: &str) -> Result<Option<String>, writ::store::StoreError> {
        self.inner.assertions(id, model_id)
    }
    fn checkpoints(&self) -> Option<&dyn CheckpointStore> {
        None
    }
    fn decision_log(&self) -> Option<&dyn DecisionLogStore> {
        self.keeps_log.then_some(self as &dyn DecisionLogStore)
    }
}

impl DecisionLogStore for GatedStore {
    fn append_decisions(&self, records: Vec<DecisionRecord>) -> Result<(), writ::store::StoreError> {
        self.entered.store(true, Ordering::SeqCst);
        let _open = self.gate.lock().unwrap();
        self.inner.append_decisions(records)
    }
    fn decisions(
        &self,
        id: &str,
        filter: &DecisionFilter,
    ) -> Result<Vec<(writ::store::DecisionCursor, DecisionRecord)>, writ::store::StoreError> {
        self.inner.decisions(id, filter)
    }
    fn trim_decisions(&self, id: &str, keep: usize, older_than_ms: i64) -> Result<usize, writ::store::StoreError> {
        self.inner.trim_decisions(id, keep, older_than_ms)
    }
}

/// A backend that keeps no decision log says so (`TupleStore::decision_log` is `None`): the
/// engine records nothing, and asking for decisions is a clear error, not a silently empty list.
#[test]
fn a_backend_without_a_decision_log_records_nothing_and_refuses_queries() {
    let entered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gate = Arc::new(std::sync::Mutex::new(()));
    let backend = GatedStore { inner: MemoryStore::new(), gate, entered: entered.clone(), keeps_log: false };
    let time = Arc::new(AtomicI64::new(T0));
    let log = DecisionLogConfig { mode: DecisionLogMode::All, ..DecisionLogConfig::default() };
    let (engine, store) =
        engine_with_store(Box::new(backend), EngineConfig { decision_log: log, ..EngineConfig::default() }, &time);
    assert!(
        !engine.decision_log().wants(true) && !engine.decision_log().wants(false),
        "the log is off without a backend log"
    );
    record(&engine, &store, "user:anne", "document:1", false, T0);
    engine.decision_log().flush();
    assert!(!entered.load(Ordering::SeqCst), "nothing reached for a decision log");
    let error = engine
        .decision_log()
        .list(&engine.store(&store).unwrap(), &DecisionFilter { limit: 10, ..Default::default() })
        .unwrap_err();
    assert_eq!(error.to_string(), "this datastore keeps no decision log");
}

#[test]
fn a_full_queue_drops_and_counts_records_instead_of_blocking() {
    let gate = Arc::new(std::sync::Mutex::new(()));
    let closed = gate.lock().unwrap();
    let entered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let backend =
        GatedStore { inner: MemoryStore::new(), gate: gate.clone(), entered: entered.clone(), keeps_log: true };
    let time = Arc::new(AtomicI64::new(T0));
    let log = DecisionLogConfig { mode: DecisionLogMode::All, queue: 2, ..DecisionLogConfig::default() };
    let (engine, store) =
        engine_with_store(Box::new(backend), EngineConfig { decision_log: log, ..EngineConfig::default() }, &time);
    record(&engine, &store, "user:anne", "document:1", true, T0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !entered.load(Ordering::SeqCst) {
        assert!(std::time::Instant::now() < deadline, "the writer never took the first record");
        std::thread::yield_now();
    }
    // The writer is stuck on the gate with the first record: two more fill the queue and the
    // rest are dropped, without the caller ever waiting.
    for i in 1..50 {
        record(&engine, &store, "user:anne", "document:1", true, T0 + i);
    }
    let stats = engine.decision_log().stats();
    assert_eq!((stats.queued, stats.dropped), (3, 47));
    drop(closed);
    let kept = engine
        .decision_log()
        .list(&engine.store(&store).unwrap(), &DecisionFilter { limit: 100, ..Default::default() })
        .unwrap();
    assert_eq!(kept.len() as u64, stats.queued);
}

#[test]
fn records_handed_over_together_that_do_not_fit_the_queue_are_dropped_together() {
    let gate = Arc::new(std::sync::Mutex::new(()));
    let closed = gate.lock().unwrap();
    let entered = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let backend =
        GatedStore { inner: MemoryStore::new(), gate: gate.clone(), entered: entered.clone(), keeps_log: true };
    let time = Arc::new(AtomicI64::new(T0));
    let log = DecisionLogConfig { mode: DecisionLogMode::Deny, queue: 3, ..DecisionLogConfig::default() };
    let (engine, store) =
        engine_with_store(Box::new(backend), EngineConfig { decision_log: log, ..EngineConfig::default() }, &time);
    let denied = |principal: &str, time_ms: i64| DecisionRecord {
        time_ms,
        store_id: store.clone().into(),
        model_id: "".into(),
        principals: vec![principal.into()],
        delegation_relation: None,
        audience: false,
        relation: "viewer".into(),
        object: "document:1".into(),
        allowed: false,
        denied_by: None,
        revision: 1,
        latency_us: 3,
        request_id: "batch".into(),
        audit: None,
    };
    record(&engine, &store, "user:first", "document:1", false, T0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !entered.load(Ordering::SeqCst) {
        assert!(std::time::Instant::now() < deadline, "the writer never took the first record");
        std::thread::yield_now();
    }
    // The writer is stuck with the first record; the queue holds three more. Four denies do not
    // fit and go together; an allow in deny mode is not a record at all; two denies fit.
    engine.decision_log().record_all((1..5).map(|i| denied(&format!("user:big{i}"), T0 + i)).collect());
    let mut fitting = vec![denied("user:small1", T0 + 5), denied("user:small2", T0 + 6)];
    fitting.insert(1, DecisionRecord { allowed: true, ..denied("user:allowed", T0 + 5) });
    engine.decision_log().record_all(fitting);
    let stats = engine.decision_log().stats();
    assert_eq!((stats.queued, stats.dropped), (3, 4));
    drop(closed);
    let kept = engine
        .decision_log()
        .list(&engine.store(&store).unwrap(), &DecisionFilter { limit: 100, ..Default::default() })
        .unwrap();
    let principals: Vec<&str> = kept.iter().map(|(_, record)| record.principals[0].as_str()).collect();
    assert_eq!(principals, ["user:small2", "user:small1", "user:first"]);
    assert!(kept.iter().all(|(_, record)| !record.model_id.is_empty()), "the latest model id is filled in");
}
