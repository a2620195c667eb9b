//! Operations routes: `/healthz`, `/readyz` and Prometheus `/metrics`, and the [`Metrics`]
//! counters behind them.
//!
//! Invariant: metrics are lock-free counters except the per-(method, status) request map, which
//! is touched once per request; per-store gauges are read from the engine at scrape time.
//! Must not import `store`, `index` or `eval`.

use super::auth::{Access, Scope};
use super::openapi::Operation;
use super::routes::get;
use super::{AppState, RouteTable};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use parking_lot::Mutex;
use schemars::JsonSchema;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the check-latency histogram buckets.
const CHECK_BUCKETS: [f64; 12] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0];

/// Request and check-latency counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Answered requests by method, then status.
    requests: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
    check_buckets: [AtomicU64; CHECK_BUCKETS.len()],
    check_count: AtomicU64,
    check_sum_nanos: AtomicU64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn count_request(&self, method: &str, status: u16) {
        let mut requests = self.requests.lock();
        // Look up by `&str` first so the usual case allocates nothing.
        let by_status = match requests.get_mut(method) {
            Some(by_status) => by_status,
            None => requests.entry(method.to_string()).or_default(),
        };
        *by_status.entry(status).or_insert(0) += 1;
    }

    /// Records one check's latency.
    pub fn observe_check(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        // One counter per check, its bucket's own; `/metrics` adds them up into Prometheus's
        // cumulative buckets. Bumping every bucket it fits was twelve atomic adds per fast check,
        // 3% of a batch-check's time (issue 34).
        if let Some(bucket) = CHECK_BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.check_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.check_count.fetch_add(1, Ordering::Relaxed);
        self.check_sum_nanos.fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    /// The check-latency histogram as Prometheus shows it: per bound, the checks that took at
    /// most that long.
    fn cumulative_check_buckets(&self) -> [u64; CHECK_BUCKETS.len()] {
        let mut total = 0;
        self.check_buckets.each_ref().map(|bucket| {
            total += bucket.load(Ordering::Relaxed);
            total
        })
    }
}

pub(super) fn routes() -> RouteTable {
    let status = Operation::answers::<StatusResponse>;
    let prometheus = Operation::answers::<()>().text_response("text/plain; version=0.0.4");
    RouteTable::new()
        .route("/healthz", get(Access::Open, status(), healthz))
        .route("/readyz", get(Access::Open, status(), readyz))
        .route("/metrics", get(Access::reader(Scope::Global), prometheus, metrics))
}

/// `/healthz` and `/readyz` answer: `{"status"}`.
#[derive(Debug, Serialize, JsonSchema)]
struct StatusResponse {
    status: &'static str,
}

async fn healthz() -> Json<StatusResponse> {
    Json(StatusResponse { status: "ok" })
}

async fn readyz(State(state): State<AppState>) -> (axum::http::StatusCode, Json<StatusResponse>) {
    // The engine rebuilds every index before the listener opens; over a shared datastore it
    // then follows the changelog up to the revisions the node saw at start.
    if state.engine.caught_up() {
        (axum::http::StatusCode::OK, Json(StatusResponse { status: "ready" }))
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, Json(StatusResponse { status: "catching_up" }))
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    let metrics = &state.metrics;
    let _ = writeln!(out, "# HELP writ_http_requests_total HTTP requests answered.");
    let _ = writeln!(out, "# TYPE writ_http_requests_total counter");
    for (method, by_status) in metrics.requests.lock().iter() {
        for (status, count) in by_status {
            let _ = writeln!(out, "writ_http_requests_total{{method=\"{method}\",status=\"{status}\"}} {count}");
        }
    }
    let _ = writeln!(out, "# HELP writ_check_duration_seconds Check latency.");
    let _ = writeln!(out, "# TYPE writ_check_duration_seconds histogram");
    for (count, bound) in metrics.cumulative_check_buckets().into_iter().zip(CHECK_BUCKETS) {
        let _ = writeln!(out, "writ_check_duration_seconds_bucket{{le=\"{bound}\"}} {count}");
    }
    let count = metrics.check_count.load(Ordering::Relaxed);
    let _ = writeln!(out, "writ_check_duration_seconds_bucket{{le=\"+Inf\"}} {count}");
    let sum = metrics.check_sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    let _ = writeln!(out, "writ_check_duration_seconds_sum {sum}");
    let _ = writeln!(out, "writ_check_duration_seconds_count {count}");
    let stores = state.engine.list_stores();
    let _ = writeln!(out, "# HELP writ_tuples Tuples per store.");
    let _ = writeln!(out, "# TYPE writ_tuples gauge");
    for store in &stores {
        if let Ok(tuples) = state.engine.store(&store.id).and_then(|handle| handle.tuple_count()) {
            let _ = writeln!(out, "writ_tuples{{store=\"{}\"}} {tuples}", store.id);
        }
    }
    let _ = writeln!(out, "# HELP writ_revision Current revision per store.");
    let _ = writeln!(out, "# TYPE writ_revision gauge");
    for store in &stores {
        if let Ok(revision) = state.engine.store(&store.id).and_then(|handle| handle.revision()) {
            let _ = writeln!(out, "writ_revision{{store=\"{}\"}} {revision}", store.id);
        }
    }
    let decisions = state.engine.decision_log().stats();
    let _ = writeln!(out, "# HELP writ_decisions_queued_total Decisions queued for the decision log.");
    let _ = writeln!(out, "# TYPE writ_decisions_queued_total counter");
    let _ = writeln!(out, "writ_decisions_queued_total {}", decisions.queued);
    let _ = writeln!(out, "# HELP writ_decisions_dropped_total Decisions not logged because the queue was full.");
    let _ = writeln!(out, "# TYPE writ_decisions_dropped_total counter");
    let _ = writeln!(out, "writ_decisions_dropped_total {}", decisions.dropped);
    super::alerts::write_metrics(&mut out, &state);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_latency_buckets_are_cumulative_though_each_check_counts_once() {
        let metrics = Metrics::default();
        for micros in [10, 40, 300, 2_000_000] {
            metrics.observe_check(Duration::from_micros(micros));
        }
        let buckets = metrics.cumulative_check_buckets();
        // 50 us, 100 us, 250 us, 500 us, ... 0.5 s, 1 s: the 2 s check is only in `+Inf`.
        assert_eq!(buckets, [2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3]);
        assert_eq!(metrics.check_count.load(Ordering::Relaxed), 4);
    }
}
