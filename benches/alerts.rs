//! What alerts cost on the check path (issue 32): `POST writ/obo-check` of the chain
//! `[user:anne, agent:bot]` through the router, in process, with alerts off and on (every rule,
//! and a webhook to a closed port, so each POST fails and is retried). Two cases, each measured
//! off then on in the same run:
//! - `storm`: each call is allowed and names a new tool in its `audit`, so with alerts on every
//!   call fires `first_tool_call` and hands an alert to the dead webhook: the worst case.
//! - `steady`: what users meet: calls of task `t-1` cycle over its 16 declared tools (every
//!   rule runs on every call, `outside_task` included) and one call in 64 is denied, under the
//!   `denials` threshold; after the first 17 calls (`first_tool_call`) no rule fires.
//!
//! IDs: `alerts/http_obo_check/{storm,steady}/{off,on}`; the ratio of a case's medians is the
//! figure. After them, `alerts/interleaved/{storm,steady}` times rounds of calls turning over
//! off, on without a sink and on with the dead webhook, and prints the medians of the per-round
//! throughput ratios: on a shared machine whose load drifts, the figures to quote.

#![allow(
    missing_docs,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "a bench binary fails loudly on bad setup; criterion macros generate undocumented items"
)]

/// The bench measures the engine as `writ serve` runs it: on mimalloc (see `src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use axum::body::Body;
use axum::http::Request;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::BodyExt;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use writ::api::{AlertWebhook, WebhookSettings};
use writ::engine::{AlertConfig, DenialsRule, TaskRule, WriteRequest};
use writ::store::StoredTuple;
use writ::{Engine, Model, Tuple};

const MODEL: &str = "model
  schema 1.1
type user
  relations
    define delegate: [agent]
type agent
type task
  relations
    define tool: [tool]
type tool
  relations
    define can_call: [user, agent]
";

fn engine() -> (Arc<Engine>, String) {
    let engine = Engine::in_memory();
    let store = engine.create_store("bench").unwrap().id;
    let handle = engine.store(&store).unwrap();
    handle.write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let mut tuples: Vec<String> =
        ["tool:search#can_call@user:anne", "tool:search#can_call@agent:bot", "user:anne#delegate@agent:bot"]
            .map(str::to_string)
            .to_vec();
    // The steady case's task `t-1` declares its tools, which anne and the bot may call, and
    // `blocked`, which they may not.
    tuples.push("task:t-1#tool@tool:blocked".to_string());
    for n in 0..STEADY_TOOLS {
        tuples.push(format!("tool:tool_{n}#can_call@user:anne"));
        tuples.push(format!("tool:tool_{n}#can_call@agent:bot"));
        tuples.push(format!("task:t-1#tool@tool:tool_{n}"));
    }
    let writes = tuples.iter().map(|t| StoredTuple::new(t.parse::<Tuple>().unwrap())).collect();
    handle.write(WriteRequest { writes, ..WriteRequest::default() }).unwrap();
    drop(handle);
    (Arc::new(engine), store)
}

/// The rules every "on" case runs: all four, as a deployment would. The steady case's denials
/// (one call in 64, about a thousand a second at this rate) stay under its threshold.
fn rules(case: &str) -> AlertConfig {
    let denials = if case == "storm" {
        DenialsRule { threshold: 20, window_ms: 60_000 }
    } else {
        DenialsRule { threshold: 10_000, window_ms: 1_000 }
    };
    AlertConfig {
        denials: Some(denials),
        outside_task: Some(TaskRule::default()),
        first_tool_call: true,
        max_chain: Some(3),
        ..AlertConfig::default()
    }
}

/// The tools of the steady case's task, all of which `agent:bot` may call but `blocked`.
const STEADY_TOOLS: usize = 16;

/// The body of call `n`: in the storm a new tool each time; steady, one of [`STEADY_TOOLS`]
/// tools of task `t-1`, and every 64th call asks for the task's `tool:blocked`, which is denied.
fn body(case: &str, n: u64) -> String {
    if case == "storm" {
        return format!(
            r#"{{"principals":["user:anne","agent:bot"],"relation":"can_call","object":"tool:search",
            "audit":{{"tool":"search_{n}"}}}}"#
        );
    }
    let (object, tool) = if n % 64 == 63 {
        ("tool:blocked".to_string(), "blocked".to_string())
    } else {
        let tool = format!("tool_{}", n % STEADY_TOOLS as u64);
        (format!("tool:{tool}"), tool)
    };
    format!(
        r#"{{"principals":["user:anne","agent:bot"],"relation":"can_call","object":"{object}",
        "audit":{{"tool":"{tool}","task":"t-1"}}}}"#
    )
}

/// One configuration under test: an engine with alerts off or on (every rule of `case` and the
/// dead webhook), its router and the obo-check path.
struct Setup {
    engine: Arc<Engine>,
    app: writ::api::Api,
    uri: String,
    webhook: Option<Arc<AlertWebhook>>,
}

/// What a [`Setup`] runs of alerts.
#[derive(Clone, Copy, PartialEq)]
enum Alerts {
    Off,
    /// Every rule of the case, no sink.
    Rules,
    /// Every rule of the case and a webhook to a closed port.
    DeadWebhook,
}

fn setup(case: &str, alerts: Alerts, webhook_runtime: &tokio::runtime::Runtime) -> Setup {
    let (engine, store) = engine();
    let mut webhook = None;
    if alerts != Alerts::Off {
        engine.alerts().start(rules(case)).unwrap();
    }
    if alerts == Alerts::DeadWebhook {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", closed.local_addr().unwrap());
        drop(closed);
        let settings = WebhookSettings { first_backoff: Duration::from_millis(10), ..WebhookSettings::new(&url) };
        webhook = Some(webhook_runtime.block_on(async { AlertWebhook::start(engine.alerts(), settings).unwrap() }));
    }
    let app = writ::api::router(engine.clone());
    let uri = format!("/stores/{store}/writ/obo-check");
    Setup { engine, app, uri, webhook }
}

impl Setup {
    /// Sends call `n` of `case` and returns the answer's body.
    fn send(&self, runtime: &tokio::runtime::Runtime, case: &str, n: u64) -> axum::body::Bytes {
        let request = Request::post(&self.uri)
            .header("content-type", "application/json")
            .body(Body::from(body(case, n)))
            .unwrap();
        let app = self.app.clone();
        runtime.block_on(async move {
            let response = app.oneshot(request).await.unwrap();
            response.into_body().collect().await.unwrap().to_bytes()
        })
    }

    fn report(&self, name: &str, calls: u64) {
        self.engine.alerts().flush();
        let stats = self.engine.alerts().stats();
        eprintln!(
            "alerts/{name}: calls {calls} queued {} dropped {} fired {:?}",
            stats.queued, stats.dropped, stats.fired
        );
        if let Some(webhook) = &self.webhook {
            eprintln!(
                "webhook: delivered {} failed {} dropped {}",
                webhook.delivered(),
                webhook.failed(),
                webhook.dropped()
            );
        }
    }
}

fn http_obo_check(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // The webhook delivers on a runtime of its own, as it does on `writ serve`'s worker threads.
    let webhook_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut group = c.benchmark_group("alerts/http_obo_check");
    // Each case next to its own "off" run, so the two meet the same machine load.
    for (case, alerts_on) in [("storm", false), ("storm", true), ("steady", false), ("steady", true)] {
        let alerts = if alerts_on { Alerts::DeadWebhook } else { Alerts::Off };
        let under_test = setup(case, alerts, &webhook_runtime);
        let calls = AtomicU64::new(0);
        let send = || under_test.send(&runtime, case, calls.fetch_add(1, Ordering::Relaxed));
        assert!(send().starts_with(br#"{"allowed":true"#));
        let name = format!("{case}/{}", if alerts_on { "on" } else { "off" });
        group.bench_function(&name, |b| b.iter(|| black_box(send())));
        under_test.report(&name, calls.into_inner());
    }
    group.finish();
}

/// Rounds of [`INTERLEAVED_CALLS`] calls on each side in turn (off, rules on, rules on with the
/// dead webhook), [`INTERLEAVED_ROUNDS`] rounds: a load that drifts over the run meets every side
/// alike, which criterion's off-then-on order cannot promise on a shared machine. The alerts queue is drained after each
/// "on" round outside the timing (its thread runs beside the checks, on the other core, as on a
/// server), so no backlog spills into the next "off" round.
const INTERLEAVED_ROUNDS: usize = 40;
const INTERLEAVED_CALLS: u64 = 2_000;

fn interleaved(_: &mut Criterion) {
    // Criterion does not see this measure: honour its filter (as a substring), `--list` and
    // `--test` by hand.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted = |case: &str| {
        let id = format!("alerts/interleaved/{case}");
        filters.is_empty() || filters.iter().any(|f| id.contains(f.as_str()))
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let webhook_runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    for case in ["storm", "steady"].into_iter().filter(|case| wanted(case)) {
        // Off; every rule on with no sink; every rule on with the dead webhook. The second and
        // third apart say what the dead receiver itself costs, the first and third what alerts do.
        let sides = [
            ("off", setup(case, Alerts::Off, &webhook_runtime)),
            ("on, no webhook", setup(case, Alerts::Rules, &webhook_runtime)),
            ("on, dead webhook", setup(case, Alerts::DeadWebhook, &webhook_runtime)),
        ];
        let mut next = [0u64; 3];
        let mut per_call: [Vec<f64>; 3] = Default::default();
        // One untimed round first, to warm every side up.
        for round in 0..=INTERLEAVED_ROUNDS {
            // The sides' order turns every round, so none always follows another.
            for side in (0..3).map(|k| (k + round) % 3) {
                let under_test = &sides[side].1;
                let started = std::time::Instant::now();
                for _ in 0..INTERLEAVED_CALLS {
                    black_box(under_test.send(&runtime, case, next[side]));
                    next[side] += 1;
                }
                let elapsed = started.elapsed().as_secs_f64() * 1e6 / INTERLEAVED_CALLS as f64;
                under_test.engine.alerts().flush();
                if round > 0 {
                    per_call[side].push(elapsed);
                }
            }
        }
        // Throughput of `side` over that of `base`, round by round: the median and the spread.
        let ratio = |side: usize, base: usize| {
            let mut ratios: Vec<f64> = per_call[base].iter().zip(&per_call[side]).map(|(b, s)| b / s).collect();
            let low = ratios.iter().copied().fold(f64::MAX, f64::min);
            let high = ratios.iter().copied().fold(0.0, f64::max);
            format!("{:.1}% (rounds {:.1}% to {:.1}%)", median(&mut ratios) * 100.0, low * 100.0, high * 100.0)
        };
        let medians: Vec<String> = sides
            .iter()
            .zip(&per_call)
            .map(|((name, _), times)| format!("{name} {:.2} µs", median(&mut times.clone())))
            .collect();
        println!(
            "alerts/interleaved/{case}: {} a call (medians of {INTERLEAVED_ROUNDS} rounds of {INTERLEAVED_CALLS}); \
             throughput, median of per-round ratios: on (dead webhook) / off {}; on (no webhook) / off {}; \
             dead webhook / no webhook {}",
            medians.join(", "),
            ratio(2, 0),
            ratio(1, 0),
            ratio(2, 1)
        );
        sides[2].1.report(&format!("interleaved/{case}/on"), next[2]);
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

criterion_group!(benches, http_obo_check, interleaved);
criterion_main!(benches);
