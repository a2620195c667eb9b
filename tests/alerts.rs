//! Alerts (DESIGN §12): each rule fires exactly when it should, and not below its threshold;
//! `GET writ/alerts` pages and filters them; `/metrics` counts them; the webhook POSTs each one
//! to a local receiver (retrying a failure), a dead receiver never makes a check fail or hang,
//! and decisions that do not fit in the alerts queue are counted, not waited for.

use crate::support::http::{call, error_code};
use crate::support::serve::serve_router;
use axum::http::StatusCode;
use axum::Router;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use writ::api::Api;
use writ::api::{router, AlertWebhook, WebhookSettings};
use writ::engine::{AlertConfig, AlertRule, Clock, DenialsRule, TaskRule, WriteRequest};
use writ::store::{MemoryStore, StoredTuple};
use writ::{Engine, EngineConfig, Model, Tuple};

const MODEL: &str = "model
  schema 1.1
type user
  relations
    define delegate: [agent]
type agent
  relations
    define delegate: [agent]
type task
  relations
    define tool: [tool]
type tool
  relations
    define can_call: [user, agent, agent:*]
";

const T0: i64 = 1_800_000_000_000;

/// Anne (and any agent) may call `tool:send_email` and `tool:send_sms`, and Anne delegates to agent:bot and
/// agent:other; agent:bot delegates to agent:sub. Task t-42 declares `send_email` only.
fn engine_with(config: AlertConfig, time: &Arc<AtomicI64>) -> (Arc<Engine>, String) {
    let time_source = time.clone();
    let clock: Clock = Arc::new(move || time_source.load(Ordering::SeqCst));
    let engine = Engine::open_with_clock(Box::new(MemoryStore::new()), EngineConfig::default(), clock).unwrap();
    let store = engine.create_store("alerts").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let writes = [
        "tool:send_email#can_call@user:anne",
        "tool:send_sms#can_call@user:anne",
        "tool:send_email#can_call@agent:*",
        "tool:send_sms#can_call@agent:*",
        "user:anne#delegate@agent:bot",
        "user:anne#delegate@agent:other",
        "agent:bot#delegate@agent:sub",
        "task:t-42#tool@tool:send_email",
    ]
    .iter()
    .map(|t| StoredTuple::new(t.parse::<Tuple>().unwrap()))
    .collect();
    engine.store(&store).unwrap().write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
    engine.alerts().start(config).unwrap();
    (Arc::new(engine), store)
}

fn rules(edit: impl FnOnce(&mut AlertConfig)) -> AlertConfig {
    let mut config = AlertConfig::default();
    edit(&mut config);
    config
}

/// An obo-check of `chain` calling `tool` (allowed when the tool is one Anne may call), with
/// `task` in the audit when given.
async fn call_tool(app: &Api, store: &str, chain: &[&str], tool: &str, task: Option<&str>) -> bool {
    let mut audit = json!({"tool": tool});
    if let Some(task) = task {
        audit["task"] = json!(task);
    }
    let body = json!({"principals": chain, "relation": "can_call", "object": format!("tool:{tool}"), "audit": audit});
    let (status, answer) = call(app, "POST", &format!("/stores/{store}/writ/obo-check"), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["allowed"].as_bool().unwrap()
}

async fn alerts(app: &Api, store: &str, query: &str) -> Vec<Value> {
    let (status, body) = call(app, "GET", &format!("/stores/{store}/writ/alerts{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["alerts"].as_array().unwrap().clone()
}

fn rules_of(found: &[Value]) -> Vec<&str> {
    found.iter().map(|alert| alert["rule"].as_str().unwrap()).collect()
}

const BOT: &[&str] = &["user:anne", "agent:bot"];
const OTHER: &[&str] = &["user:anne", "agent:other"];

/// The engine with only the `denials` rule (`threshold` within a minute), its clock and router.
fn denials_within_a_minute(threshold: u32) -> (Arc<AtomicI64>, Arc<Engine>, String, Api) {
    let time = Arc::new(AtomicI64::new(T0));
    let config = rules(|c| c.denials = Some(DenialsRule { threshold, window_ms: 60_000 }));
    let (engine, store) = engine_with(config, &time);
    let app = router(engine.clone());
    (time, engine, store, app)
}

#[tokio::test]
async fn denials_alert_once_past_the_threshold_within_the_window() {
    let (time, _engine, store, app) = denials_within_a_minute(3);
    // `tool:delete_repo` is nobody's: every call of it is denied.
    for _ in 0..3 {
        assert!(!call_tool(&app, &store, BOT, "delete_repo", None).await);
        assert!(!call_tool(&app, &store, OTHER, "delete_repo", None).await);
    }
    assert!(call_tool(&app, &store, BOT, "send_email", None).await, "an allow is no denial");
    assert_eq!(alerts(&app, &store, "").await, Vec::<Value>::new(), "three denials each is not above three");

    assert!(!call_tool(&app, &store, BOT, "delete_repo", None).await);
    let found = alerts(&app, &store, "").await;
    assert_eq!(rules_of(&found), ["denials"]);
    assert_eq!((found[0]["agent"].as_str(), found[0]["principals"].clone()), (Some("agent:bot"), json!(BOT)));
    assert!(!call_tool(&app, &store, BOT, "delete_repo", None).await);
    assert_eq!(alerts(&app, &store, "").await.len(), 1, "one alert per window, not one per denial");

    // The window slides: the old denials fall out, and a new burst alerts again.
    time.fetch_add(61_000, Ordering::SeqCst);
    for _ in 0..3 {
        assert!(!call_tool(&app, &store, BOT, "delete_repo", None).await);
    }
    assert_eq!(alerts(&app, &store, "").await.len(), 1, "three in the new window");
    assert!(!call_tool(&app, &store, BOT, "delete_repo", None).await);
    assert_eq!(alerts(&app, &store, "?agent=agent:bot").await.len(), 2);
    assert_eq!(alerts(&app, &store, "?agent=agent:other").await.len(), 0);
}

#[tokio::test]
async fn a_tool_outside_the_calls_declared_task_alerts() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with(rules(|c| c.outside_task = Some(TaskRule::default())), &time);
    let app = router(engine.clone());
    assert!(call_tool(&app, &store, BOT, "send_email", Some("t-42")).await);
    assert!(call_tool(&app, &store, BOT, "send_email", Some("task:t-42")).await);
    assert!(call_tool(&app, &store, BOT, "send_sms", None).await, "no task: nothing to be outside of");
    assert!(call_tool(&app, &store, BOT, "send_sms", Some("t-7")).await, "task t-7 declares no tools");
    assert_eq!(alerts(&app, &store, "").await, Vec::<Value>::new());

    assert!(call_tool(&app, &store, BOT, "send_sms", Some("t-42")).await, "allowed, and still outside its task");
    let found = alerts(&app, &store, "").await;
    assert_eq!(rules_of(&found), ["outside_task"]);
    assert_eq!((found[0]["tool"].as_str(), found[0]["task"].as_str()), (Some("send_sms"), Some("t-42")));

    // The task's tools are read at the latest revision: declaring the tool ends the alerts.
    let declare = StoredTuple::new("task:t-42#tool@tool:send_sms".parse::<Tuple>().unwrap());
    engine.store(&store).unwrap().write(WriteRequest { writes: vec![declare], ..WriteRequest::default() }).unwrap();
    assert!(call_tool(&app, &store, BOT, "send_sms", Some("t-42")).await);
    assert_eq!(alerts(&app, &store, "").await.len(), 1);
}

#[tokio::test]
async fn an_agents_first_call_of_each_tool_alerts_once() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with(rules(|c| c.first_tool_call = true), &time);
    let app = router(engine.clone());
    assert!(call_tool(&app, &store, BOT, "send_email", None).await);
    assert!(call_tool(&app, &store, BOT, "send_email", None).await);
    assert!(!call_tool(&app, &store, BOT, "delete_repo", None).await, "a denied call is a call too");
    assert!(call_tool(&app, &store, OTHER, "send_email", None).await);
    // A plain check by a user is no agent's call.
    let body = json!({"tuple_key": {"user": "user:anne", "relation": "can_call", "object": "tool:send_sms"}});
    let (status, _) = call(&app, "POST", &format!("/stores/{store}/check"), Some(body)).await;
    assert_eq!(status, StatusCode::OK);
    let found = alerts(&app, &store, "").await;
    let seen: Vec<(&str, &str)> =
        found.iter().map(|a| (a["agent"].as_str().unwrap(), a["tool"].as_str().unwrap())).collect();
    assert_eq!(seen, [("agent:other", "send_email"), ("agent:bot", "delete_repo"), ("agent:bot", "send_email")]);
    assert_eq!(rules_of(&found), ["first_tool_call"; 3]);
}

#[tokio::test]
async fn a_chain_longer_than_the_limit_alerts() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with(rules(|c| c.max_chain = Some(2)), &time);
    let app = router(engine.clone());
    assert!(call_tool(&app, &store, BOT, "send_email", None).await);
    assert_eq!(alerts(&app, &store, "").await.len(), 0, "two principals is the limit, not above it");
    let long = ["user:anne", "agent:bot", "agent:sub"];
    assert!(call_tool(&app, &store, &long, "send_email", None).await);
    let found = alerts(&app, &store, "").await;
    assert_eq!(rules_of(&found), ["long_chain"]);
    assert_eq!((found[0]["agent"].as_str(), found[0]["principals"].clone()), (Some("agent:sub"), json!(long)));
}

#[tokio::test]
async fn alerts_page_filter_and_count_in_metrics() {
    let time = Arc::new(AtomicI64::new(T0));
    let config = rules(|c| {
        c.first_tool_call = true;
        c.max_chain = Some(2);
    });
    let (engine, store) = engine_with(config, &time);
    let app = router(engine.clone());
    for tool in ["a", "b", "c"] {
        call_tool(&app, &store, BOT, tool, None).await;
        time.fetch_add(1000, Ordering::SeqCst);
    }
    call_tool(&app, &store, &["user:anne", "agent:bot", "agent:sub"], "a", None).await;

    let (status, page) = call(&app, "GET", &format!("/stores/{store}/writ/alerts?page_size=2"), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // The chain's call fired two alerts: `long_chain`, then agent:sub's first call of `a`.
    assert_eq!(rules_of(page["alerts"].as_array().unwrap()), ["first_tool_call", "long_chain"], "newest first");
    let token = page["continuation_token"].as_str().unwrap();
    let rest = alerts(&app, &store, &format!("?page_size=2&continuation_token={token}")).await;
    let tools: Vec<&str> = rest.iter().map(|a| a["tool"].as_str().unwrap()).collect();
    assert_eq!(tools, ["c", "b"], "the second page goes on where the first ended");

    assert_eq!(rules_of(&alerts(&app, &store, "?rule=long_chain").await), ["long_chain"]);
    assert_eq!(alerts(&app, &store, "?agent=agent:sub").await.len(), 2, "agent:sub's first call of `a`, and the chain");
    let since = writ::api::time::format_rfc3339(T0 + 1000);
    assert_eq!(alerts(&app, &store, &format!("?rule=first_tool_call&since={since}")).await.len(), 3);
    let since = writ::api::time::format_rfc3339(T0 + 2000);
    assert_eq!(alerts(&app, &store, &format!("?rule=first_tool_call&since={since}")).await.len(), 2);

    for bad in ["?rule=noise", "?since=yesterday", "?continuation_token=zz"] {
        let (status, body) = call(&app, "GET", &format!("/stores/{store}/writ/alerts{bad}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(["validation_error", "invalid_continuation_token"].contains(&error_code(status, &body).as_str()));
    }
    let (status, _) = call(&app, "GET", "/stores/01NOSUCHSTORE0000000000000/writ/alerts", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, metrics) = writ_metrics(&app).await;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.contains("writ_alerts_total{rule=\"first_tool_call\"} 4"), "{metrics}");
    assert!(metrics.contains("writ_alerts_total{rule=\"long_chain\"} 1"), "{metrics}");
    assert!(metrics.contains("writ_alerts_total{rule=\"denials\"} 0"), "{metrics}");
}

async fn writ_metrics(app: &Api) -> (StatusCode, String) {
    let (status, body) = crate::support::http::send_text(app, "GET", "/metrics", axum::body::Body::empty(), "").await;
    (status, body)
}

/// A webhook receiver on a local port: answers the first `failures` POSTs with 500, then 200,
/// and hands every body it got to the returned channel.
async fn receiver(failures: usize) -> (String, tokio::sync::mpsc::UnboundedReceiver<Value>) {
    let (sender, bodies) = tokio::sync::mpsc::unbounded_channel();
    let seen = Arc::new(AtomicUsize::new(0));
    let hook = axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
        let (sender, seen) = (sender.clone(), seen.clone());
        async move {
            let _ = sender.send(body);
            if seen.fetch_add(1, Ordering::SeqCst) < failures {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            }
        }
    });
    let url = format!("http://{}/hook", serve_router(Router::new().route("/hook", hook)).await);
    (url, bodies)
}

fn quick(url: &str) -> WebhookSettings {
    WebhookSettings {
        first_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        attempts: 3,
        ..WebhookSettings::new(url)
    }
}

async fn next_body(bodies: &mut tokio::sync::mpsc::UnboundedReceiver<Value>) -> Value {
    tokio::time::timeout(Duration::from_secs(20), bodies.recv()).await.expect("the webhook POSTed in time").unwrap()
}

#[tokio::test]
async fn the_webhook_posts_each_alert_and_retries_a_failed_post() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with(rules(|c| c.first_tool_call = true), &time);
    let (url, mut bodies) = receiver(1).await;
    let webhook = AlertWebhook::start(engine.alerts(), quick(&url)).unwrap();
    let app = router(engine.clone());
    assert!(call_tool(&app, &store, BOT, "send_email", None).await);

    let first = next_body(&mut bodies).await;
    let retried = next_body(&mut bodies).await;
    assert_eq!(first, retried, "the failed POST is sent again, unchanged");
    assert_eq!((first["rule"].as_str(), first["agent"].as_str()), (Some("first_tool_call"), Some("agent:bot")));
    assert_eq!((first["tool"].as_str(), first["store_id"].as_str()), (Some("send_email"), Some(store.as_str())));
    for _ in 0..100 {
        if webhook.delivered() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!((webhook.delivered(), webhook.failed(), webhook.dropped()), (1, 0, 0));
}

#[tokio::test]
async fn a_dead_webhook_receiver_never_fails_or_holds_up_a_check() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with(rules(|c| c.first_tool_call = true), &time);
    // A port that was just closed: every POST is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);
    let settings = WebhookSettings { queue: 4, ..quick(&url) };
    let webhook = AlertWebhook::start(engine.alerts(), settings).unwrap();
    let app = router(engine.clone());
    let calls = async {
        for n in 0..200 {
            assert!(!call_tool(&app, &store, BOT, &format!("tool_{n}"), None).await);
        }
    };
    tokio::time::timeout(Duration::from_secs(60), calls).await.expect("checks do not wait on the webhook");
    assert_eq!(alerts(&app, &store, "?page_size=1000").await.len(), 200, "every alert is kept all the same");
    for _ in 0..200 {
        if webhook.failed() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(webhook.failed() >= 1, "the refused POSTs are given up on");
    assert!(webhook.dropped() > 0, "a full webhook queue drops");
    assert!(webhook.dropped() + webhook.failed() <= 200);
    assert_eq!(webhook.delivered(), 0);
}

#[tokio::test]
async fn decisions_past_a_full_alerts_queue_are_dropped_and_counted() {
    let time = Arc::new(AtomicI64::new(T0));
    let (engine, store) = engine_with(
        rules(|c| {
            c.first_tool_call = true;
            c.queue = 2;
        }),
        &time,
    );
    // A sink that holds the alerts thread until released, as a slow rule would.
    let (entered, wait_entered) = std::sync::mpsc::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    engine.alerts().subscribe(Box::new(move |_| {
        let _ = entered.send(());
        let _ = released.lock().unwrap().recv();
    }));
    let app = router(engine.clone());
    assert!(call_tool(&app, &store, BOT, "send_email", None).await);
    wait_entered.recv_timeout(Duration::from_secs(20)).unwrap();
    // The thread is held: two decisions fit in the queue, the rest are dropped at once.
    for n in 0..5 {
        assert!(!call_tool(&app, &store, BOT, &format!("tool_{n}"), None).await);
    }
    assert_eq!(engine.alerts().stats().dropped, 3);
    drop(release);
    engine.alerts().flush();
    let stats = engine.alerts().stats();
    assert_eq!(stats.queued, 3, "the first decision and the two that fit");
    assert!(stats.fired.contains(&(AlertRule::FirstToolCall, 3)), "{:?}", stats.fired);
    let (_, metrics) = writ_metrics(&app).await;
    assert!(metrics.contains("writ_alert_decisions_dropped_total 3"), "{metrics}");
}

/// Regression for building alert events straight from `decide_into`: a call an approval allows
/// reaches the alerts as allowed (the event is edited as the record is), so retrying an approved
/// call is no denial; the deny that raised the approval is one.
#[tokio::test]
async fn calls_an_approval_allows_are_no_denials() {
    let (_time, engine, store, app) = denials_within_a_minute(1);
    let body = json!({"principals": BOT, "relation": "can_call", "object": "tool:delete_repo",
        "audit": {"tool": "delete_repo"}, "approval": "request"});
    let uri = format!("/stores/{store}/writ/obo-check");
    let (status, raised) = call(&app, "POST", &uri, Some(body.clone())).await;
    assert_eq!(
        (status, raised["allowed"].as_bool(), raised["approval"]["state"].as_str()),
        (StatusCode::OK, Some(false), Some("pending"))
    );
    let id = raised["approval"]["id"].as_str().unwrap();
    let handle = engine.store(&store).unwrap();
    let grant = writ::engine::ApprovalGrant { ttl_ms: 60_000, uses: 3 };
    engine.approvals().approve(engine.decision_log(), &handle, id, grant, "key:approver").unwrap();
    for _ in 0..3 {
        let (status, answer) = call(&app, "POST", &uri, Some(body.clone())).await;
        assert_eq!((status, answer["allowed"].as_bool()), (StatusCode::OK, Some(true)), "{answer}");
    }
    assert_eq!(alerts(&app, &store, "").await, Vec::<Value>::new(), "one denial is not above one");
    let (_, used_up) = call(&app, "POST", &uri, Some(body)).await;
    assert_eq!(used_up["allowed"].as_bool(), Some(false), "{used_up}");
    assert_eq!(rules_of(&alerts(&app, &store, "").await), ["denials"], "the second denial is above one");
}
