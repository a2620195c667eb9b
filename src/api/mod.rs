//! The HTTP API: OpenFGA's v1 paths and JSON bodies, AuthZEN 1.0, Writ's own `/writ/` routes,
//! and health and metrics, as one service: [`Api`], axum's router with the check route
//! dispatched ahead of it.
//!
//! What it owns: routing, (de)serialization and the mapping of engine errors to HTTP answers
//! (only in `error.rs`). Handlers are thin: body → engine request → engine call → response body.
//! Invariant: bad input is answered with a 4xx `{"code","message"}`, never a 5xx or a panic.
//! Must not import `store`, `index` or `eval`: everything goes through `Engine` (and the
//! `StoreHandle` it resolves once per request).

mod agent;
mod alerts;
mod approvals;
pub mod auth;
mod authzen;
pub mod codes;
mod consistency;
mod console;
mod decisions;
pub mod dto;
pub mod error;
mod explain;
mod limits;
pub mod model_test;
mod models;
mod openapi;
mod ops;
mod query;
mod routes;
pub mod serve;
mod service;
mod stores;
pub use crate::wire::time;
mod tuples;
mod visibility;

use crate::engine::Engine;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use std::sync::Arc;
use tracing::Instrument;

pub use alerts::{AlertWebhook, WebhookSettings};
pub use auth::{Access, Auth, Authenticator, KeySet, Principal, Role, Scope};
pub use error::ApiError;
pub use ops::Metrics;
use routes::RouteTable;
pub use service::Api;

/// Limits the HTTP layer enforces (the engine enforces its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiOptions {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Most checks in one batch-check request (and evaluations in one AuthZEN batch).
    pub max_batch_check: usize,
    /// Deepest nesting of JSON arrays and objects in a request body.
    pub max_json_depth: usize,
    /// Largest `page_size` of paged reads (read, changes, stores, models).
    pub max_page_size: usize,
    /// Most assertions stored for one model.
    pub max_assertions: usize,
    /// Deepest bracket nesting in DSL or `.zed` model text (twice as many operators per definition).
    pub max_model_nesting: usize,
    /// Most candidate ids in one `writ/filter` request (and objects in one `writ/audience-check`).
    pub max_filter_ids: usize,
    /// Most principals in one chain (and members in one audience).
    pub max_principals: usize,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            max_body_bytes: 4 * 1024 * 1024,
            max_batch_check: 50,
            max_filter_ids: 10_000,
            max_principals: 100,
            max_json_depth: 64,
            max_page_size: 100,
            max_assertions: 100,
            max_model_nesting: 64,
        }
    }
}

impl axum::extract::FromRef<AppState> for ApiOptions {
    fn from_ref(state: &AppState) -> ApiOptions {
        state.options
    }
}

/// Everything the router is built from besides the engine.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// HTTP limits.
    pub options: ApiOptions,
    /// Longest a read waits for its `at_least_revision`.
    pub revision_wait: std::time::Duration,
    /// The store the root AuthZEN routes (`/access/v1/...`) answer for.
    pub authzen_store: Option<String>,
    /// Who may call what.
    pub auth: Auth,
    /// Whether to serve the console's pages under `/console/` (`writ serve --console`).
    pub console: bool,
    /// The alert webhook, whose counters `/metrics` shows; `None` when there is none.
    pub alert_webhook: Option<Arc<AlertWebhook>>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            options: ApiOptions::default(),
            revision_wait: std::time::Duration::from_millis(1000),
            authzen_store: None,
            auth: Auth::None,
            console: false,
            alert_webhook: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The engine.
    pub engine: Arc<Engine>,
    /// HTTP limits.
    pub options: ApiOptions,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Longest a read waits for its `at_least_revision`.
    pub revision_wait: std::time::Duration,
    /// The store the root AuthZEN routes answer for.
    pub authzen_store: Option<String>,
    /// Who may call what.
    pub auth: Auth,
    /// The alert webhook, for `/metrics`.
    pub alert_webhook: Option<Arc<AlertWebhook>>,
}

/// The API with default limits.
pub fn router(engine: Arc<Engine>) -> Api {
    router_with(engine, ApiOptions::default())
}

/// The API with the given limits.
pub fn router_with(engine: Arc<Engine>, options: ApiOptions) -> Api {
    router_with_config(engine, RouterConfig { options, ..RouterConfig::default() })
}

/// The API with every setting given.
pub fn router_with_config(engine: Arc<Engine>, config: RouterConfig) -> Api {
    let options = config.options;
    let state = AppState {
        engine,
        options,
        metrics: Arc::new(Metrics::default()),
        revision_wait: config.revision_wait,
        authzen_store: config.authzen_store,
        auth: config.auth,
        alert_webhook: config.alert_webhook,
    };
    let api = routes()
        .into_router(&state)
        .layer(middleware::map_response(error::json_error_body))
        .layer(DefaultBodyLimit::max(options.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.metrics.clone(), request_span))
        .with_state(state.clone());
    let api = if config.console {
        // Merged after the API's layers: the console answers with HTML pages, not JSON errors.
        api.merge(console::router(state.clone()).layer(DefaultBodyLimit::max(options.max_body_bytes)))
    } else {
        api
    };
    Api::new(api, state)
}

/// Every endpoint of the API, as (method, path pattern, what calling it needs); `GET` stands for
/// `HEAD` too. Every path of [`route_paths`] has at least one.
pub fn route_endpoints() -> Vec<(axum::http::Method, &'static str, Access)> {
    routes().endpoints()
}

/// Each area's route table, in the order the router and `/openapi.json` list them: a new area is
/// one more entry here.
const AREAS: [fn() -> RouteTable; 13] = [
    stores::routes,
    models::routes,
    tuples::routes,
    query::routes,
    authzen::routes,
    decisions::routes,
    agent::routes,
    approvals::routes,
    alerts::routes,
    visibility::routes,
    explain::routes,
    ops::routes,
    openapi::routes,
];

/// Every route of the API, from each area's table.
fn routes() -> RouteTable {
    AREAS.iter().fold(RouteTable::new(), |table, area| table.merge(area()))
}

/// The API's OpenAPI 3.1 document, as `GET /openapi.json` serves it: every endpoint with its
/// parameters, request and answer schemas, and what calling it needs (`x-writ-access`).
pub fn openapi() -> serde_json::Value {
    openapi::document(&routes())
}

/// The path pattern of every route the router serves (`/stores/{store_id}/check`, ...), so
/// tests can sweep each route without listing them by hand.
pub fn route_paths() -> Vec<&'static str> {
    routes().paths()
}

/// The middleware of [`spanned`], for the router's routes.
async fn request_span(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    spanned(&metrics, request, |mut request, request_id| {
        request.extensions_mut().insert(decisions::RequestId(request_id));
        next.run(request)
    })
    .await
}

/// Wraps each request in a tracing span with a request id, counts it, and echoes the id: the
/// router's routes through [`request_span`] (which hands the id to handlers in the request's
/// extensions), the check's dispatch ([`Api`]) directly (which takes it as `inner`'s argument).
///
/// It takes only the metrics it counts into (not the whole [`AppState`], which every request
/// would clone twice more here), and the id is made once, shared with the handler as an
/// `Arc<str>` rather than copied for it.
async fn spanned<F, Fut>(metrics: &Metrics, request: Request, inner: F) -> Response
where
    F: FnOnce(Request, Arc<str>) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    // A caller's own `x-request-id` (a proxy's) is kept so logs line up across hops.
    let caller_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok());
    let request_id: Arc<str> = match caller_id.filter(|v| !v.is_empty() && v.len() <= 128) {
        Some(id) => Arc::from(id),
        None => Arc::from(&*ulid::Ulid::new().array_to_str(&mut [0; ulid::ULID_LEN])),
    };
    let method = request.method().clone();
    let span = tracing::info_span!("request", id = %request_id, method = %method, path = %request.uri().path());
    let started = std::time::Instant::now();
    let mut response = inner(request, request_id.clone()).instrument(span.clone()).await;
    let status = response.status();
    span.in_scope(|| {
        tracing::info!(status = status.as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "handled");
    });
    metrics.count_request(method.as_str(), status.as_u16());
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

/// Runs heavy engine work off the async executor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::Internal(format!("blocking task failed: {e}")))?
}
