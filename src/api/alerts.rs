//! Alerts over HTTP (DESIGN §12): `GET /stores/{store_id}/writ/alerts`, which lists a store's
//! alerts, their counters in `/metrics` (`writ_alerts_total{rule}`), and the webhook
//! ([`AlertWebhook`]) that POSTs each alert as JSON to a receiver.
//!
//! Listing: newest first; filters `rule` (`denials | outside_task | first_tool_call |
//! long_chain`), `agent` and `since` (RFC 3339, inclusive); `page_size` (default 50, at most
//! 1000) and an opaque `continuation_token` (empty on the last page). Reader access. Alerts are
//! kept in memory, in a bounded ring (`engine/alerts.rs`).
//! **Invariant:** the webhook never blocks the alerts thread, let alone a check: each alert goes
//! to a bounded queue (full: dropped and counted) that one task delivers, retrying a failed POST
//! with exponential back-off.
//! Must not import `store`, `index` or `eval`.

use super::auth::{Access, Scope};
use super::dto::{hex_encode, json_response, parse_keyword, writ_after, writ_page, writ_page_size, ApiQuery};
use super::openapi::Operation;
use super::routes::get;
use super::time::{format_rfc3339, parse_rfc3339};
use super::{blocking, ApiError, AppState, RouteTable};
use crate::engine::{Alert, AlertFilter, AlertRule, Alerts};
use axum::extract::{Path, State};
use axum::response::Response;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(super) fn routes() -> RouteTable {
    let list_alerts = Operation::answers::<AlertsResponse<'static>>().query::<AlertsQuery>();
    RouteTable::new().route("/stores/{store_id}/writ/alerts", get(Access::reader(Scope::PathStore), list_alerts, list))
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
struct AlertsQuery {
    rule: Option<String>,
    agent: Option<String>,
    since: Option<String>,
    page_size: Option<u32>,
    continuation_token: Option<String>,
}

/// One alert as the API lists it and the webhook posts it.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct AlertDto<'a> {
    /// Its number, increasing in firing order.
    id: String,
    /// `denials`, `outside_task`, `first_tool_call` or `long_chain`.
    rule: &'static str,
    /// When the decision that fired it was made (RFC 3339).
    time: String,
    store_id: &'a str,
    agent: &'a str,
    principals: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    task: Option<&'a str>,
    /// Whether the decision allowed.
    allowed: bool,
    message: &'a str,
    request_id: &'a str,
}

impl<'a> AlertDto<'a> {
    fn new(alert: &'a Alert) -> Self {
        AlertDto {
            id: alert.seq.to_string(),
            rule: alert.rule.as_str(),
            time: format_rfc3339(alert.time_ms),
            store_id: &alert.store_id,
            agent: &alert.agent,
            principals: &alert.principals,
            tool: alert.tool.as_deref(),
            task: alert.task.as_deref(),
            allowed: alert.allowed,
            message: &alert.message,
            request_id: &alert.request_id,
        }
    }
}

/// `GET writ/alerts` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct AlertsResponse<'a> {
    alerts: Vec<AlertDto<'a>>,
    continuation_token: String,
}

/// The words `rule` takes, for its error message.
const RULES: &str = "`denials`, `outside_task`, `first_tool_call`, `long_chain`";

/// The filter a query asks for (without its page bound).
fn alert_filter(query: AlertsQuery) -> Result<AlertFilter, ApiError> {
    let rule = parse_keyword("rule", query.rule.as_deref(), AlertRule::parse, RULES)?;
    let since_ms = match query.since.filter(|since| !since.is_empty()) {
        None => None,
        Some(text) => Some(
            parse_rfc3339(&text)
                .ok_or_else(|| ApiError::validation(format!("`since` value `{text}` is not an RFC 3339 time")))?,
        ),
    };
    let before = writ_after(query.continuation_token, "alert:", |seq| seq.parse::<u64>().ok())?;
    Ok(AlertFilter { rule, agent: query.agent.filter(|agent| !agent.is_empty()), since_ms, before, limit: 0 })
}

async fn list(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    ApiQuery(query): ApiQuery<AlertsQuery>,
) -> Result<Response, ApiError> {
    let page_size = writ_page_size(query.page_size);
    // One more than a page tells whether another page follows.
    let filter = AlertFilter { limit: page_size + 1, ..alert_filter(query)? };
    blocking(move || {
        let found = state.engine.alerts().list(&state.engine.store(&store_id)?, &filter)?;
        let (found, continuation_token) =
            writ_page(found, page_size, |last| hex_encode(&format!("alert:{}", last.seq)));
        let alerts = found.iter().map(AlertDto::new).collect();
        Ok(json_response(&AlertsResponse { alerts, continuation_token }, 512))
    })
    .await
}

/// Appends the alerts' counters to a `/metrics` answer.
pub(super) fn write_metrics(out: &mut String, state: &AppState) {
    let stats = state.engine.alerts().stats();
    let _ = writeln!(out, "# HELP writ_alerts_total Alerts fired, by rule.");
    let _ = writeln!(out, "# TYPE writ_alerts_total counter");
    for (rule, count) in &stats.fired {
        let _ = writeln!(out, "writ_alerts_total{{rule=\"{}\"}} {count}", rule.as_str());
    }
    let _ = writeln!(out, "# HELP writ_alert_decisions_dropped_total Decisions not evaluated for alerts: queue full.");
    let _ = writeln!(out, "# TYPE writ_alert_decisions_dropped_total counter");
    let _ = writeln!(out, "writ_alert_decisions_dropped_total {}", stats.dropped);
    if let Some(webhook) = &state.alert_webhook {
        let counters = [
            ("delivered", "Alerts the webhook receiver accepted.", &webhook.delivered),
            ("failed", "Alerts given up on after every attempt.", &webhook.failed),
            ("dropped", "Alerts not sent: the webhook queue was full.", &webhook.dropped),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(out, "# HELP writ_alert_webhook_{name}_total {help}");
            let _ = writeln!(out, "# TYPE writ_alert_webhook_{name}_total counter");
            let _ = writeln!(out, "writ_alert_webhook_{name}_total {}", counter.load(Ordering::Relaxed));
        }
    }
}

/// How the webhook delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Where each alert is POSTed.
    pub url: String,
    /// Alerts waiting for delivery before new ones are dropped.
    pub queue: usize,
    /// Tries per alert (the first and the retries).
    pub attempts: u32,
    /// The wait before the first retry; each further retry waits twice as long.
    pub first_backoff: Duration,
    /// The longest wait between retries.
    pub max_backoff: Duration,
    /// The longest one POST may take.
    pub timeout: Duration,
}

impl WebhookSettings {
    /// Defaults for `url`: a queue of 1024, 5 attempts, back-off from 500 ms to 30 s, 5 s per POST.
    pub fn new(url: &str) -> WebhookSettings {
        WebhookSettings {
            url: url.to_string(),
            queue: 1024,
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
        }
    }
}

/// The alert webhook: a bounded queue in front of one task that POSTs each alert (JSON, as
/// `writ/alerts` lists it) and retries with exponential back-off. Its counters go to `/metrics`.
#[derive(Debug, Default)]
pub struct AlertWebhook {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl AlertWebhook {
    /// Subscribes a webhook to `alerts` and spawns its delivery task on the current tokio
    /// runtime (call it inside one).
    pub fn start(alerts: &Alerts, settings: WebhookSettings) -> Result<Arc<AlertWebhook>, reqwest::Error> {
        let client = reqwest::Client::builder().timeout(settings.timeout).build()?;
        let webhook = Arc::new(AlertWebhook::default());
        let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(settings.queue.max(1));
        let counters = webhook.clone();
        alerts.subscribe(Box::new(move |alert| {
            // A place in the queue first: an alert that would be dropped is not written out.
            let Ok(place) = sender.try_reserve() else {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            };
            // An alert is strings and numbers: turning it into JSON cannot fail.
            let Ok(body) = serde_json::to_vec(&AlertDto::new(alert)) else { return };
            place.send(body);
        }));
        tokio::spawn(deliver(receiver, client, settings, webhook.clone()));
        Ok(webhook)
    }

    /// Alerts the receiver accepted (a 2xx answer).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Alerts given up on after every attempt.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Alerts dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Delivers queued alerts one at a time until the queue closes.
async fn deliver(
    mut receiver: tokio::sync::mpsc::Receiver<Vec<u8>>,
    client: reqwest::Client,
    settings: WebhookSettings,
    webhook: Arc<AlertWebhook>,
) {
    while let Some(body) = receiver.recv().await {
        let mut backoff = settings.first_backoff;
        for attempt in 1..=settings.attempts.max(1) {
            let sent = client
                .post(&settings.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let error = match sent {
                Ok(answer) if answer.status().is_success() => {
                    webhook.delivered.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Ok(answer) => format!("answered {}", answer.status()),
                Err(error) => error.to_string(),
            };
            if attempt >= settings.attempts {
                webhook.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, attempts = attempt, "alert webhook gave up on an alert");
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(settings.max_backoff);
        }
    }
}
