//! The decision log over HTTP: the request's [`RequestId`] and [`decision_meta`], which every
//! check-like handler hands to `engine::decide` with its question, and
//! `GET /stores/{store_id}/writ/decisions`, which lists what was recorded.
//!
//! Each record is named by its `decision_id` (`{time_ms}-{seq}`, where it sits in the store's log:
//! unique within the store, unlike a `request_id`, which a batch shares and a caller may repeat).
//! Listing: newest first; filters `principal` (any principal of the record), `object`,
//! `decision=allow|deny`, `since` (inclusive) and `until` (exclusive) as RFC 3339; `limit`
//! (default 50, at most 1000) and an opaque `continuation_token` (empty on the last page).
//! Invariant: recording never fails or blocks a decision (see `engine::decisions`).
//! Must not import `store`, `index` or `eval`.

use super::auth::{Access, Scope};
use super::dto::{decode_token, hex_encode, json_response, parse_pair, ApiQuery, StorePath};
use super::openapi::Operation;
use super::routes::get;
use super::time::{format_rfc3339, parse_rfc3339};
use super::{blocking, ApiError, AppState, Metrics, RouteTable};
use crate::engine::{DecisionCursor, DecisionFilter, DecisionMeta, DecisionRecord, LatencyObserver};
use crate::tuple::{Context, ContextValue};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::time::Instant;

pub(super) fn routes() -> RouteTable {
    let list_decisions = Operation::answers::<DecisionsResponse<'static>>().query::<DecisionsQuery>();
    RouteTable::new()
        .route("/stores/{store_id}/writ/decisions", get(Access::reader(Scope::PathStore), list_decisions, list))
}

/// The request's id (the caller's `x-request-id`, or one the server made), as the request
/// middleware stores it; empty when the router runs without that middleware.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestId(pub(crate) String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(parts.extensions.get::<RequestId>().cloned().unwrap_or_default())
    }
}

/// The check-latency histogram of `/metrics` is where [`crate::engine::decide`] reports.
impl LatencyObserver for Metrics {
    fn observe(&self, elapsed: std::time::Duration) {
        self.observe_check(elapsed);
    }
}

/// What the decision pipeline needs from a handler besides its question: the request's id,
/// the caller's `audit` object, when the decision started, and the metrics to report to.
pub(crate) fn decision_meta<'a>(
    state: &'a AppState,
    request_id: &'a str,
    started: Instant,
    audit: Option<&'a Context>,
) -> DecisionMeta<'a> {
    DecisionMeta { request_id, audit, started, model_id: None, latency: state.metrics.as_ref() }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
struct DecisionsQuery {
    principal: Option<String>,
    object: Option<String>,
    decision: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<u32>,
    continuation_token: Option<String>,
}

fn time_param(name: &str, value: Option<String>) -> Result<Option<i64>, ApiError> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => parse_rfc3339(&text)
            .map(Some)
            .ok_or_else(|| ApiError::validation(format!("`{name}` value `{text}` is not an RFC 3339 timestamp"))),
    }
}

pub(super) fn cursor_token(cursor: DecisionCursor) -> String {
    hex_encode(&format!("decision:{}:{}", cursor.time_ms, cursor.seq))
}

pub(super) fn token_cursor(token: &str) -> Result<DecisionCursor, ApiError> {
    decode_token(token, "decision:", parse_pair).map(|(time_ms, seq)| DecisionCursor { time_ms, seq })
}

/// The `decision_id` of the record at `cursor`.
pub(super) fn decision_id(cursor: DecisionCursor) -> String {
    format!("{}-{}", cursor.time_ms, cursor.seq)
}

/// Reads a [`decision_id`]; anything else is a `validation_error` naming it.
pub(super) fn parse_decision_id(id: &str) -> Result<DecisionCursor, ApiError> {
    id.split_once('-')
        .and_then(|(time_ms, seq)| Some(DecisionCursor { time_ms: time_ms.parse().ok()?, seq: seq.parse().ok()? }))
        .ok_or_else(|| ApiError::validation(format!("`{id}` is not a decision id (`<time_ms>-<seq>`)")))
}

/// One recorded decision as `GET writ/decisions` lists it.
#[derive(Debug, Serialize, JsonSchema)]
struct DecisionDto<'a> {
    decision_id: String,
    time: String,
    authorization_model_id: &'a str,
    principals: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    delegation_relation: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    audience: bool,
    relation: &'a str,
    object: &'a str,
    allowed: bool,
    revision: u64,
    latency_us: u64,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    denied_by: Option<&'a ContextValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<&'a Context>,
}

impl<'a> DecisionDto<'a> {
    fn new(cursor: DecisionCursor, record: &'a DecisionRecord) -> Self {
        DecisionDto {
            decision_id: decision_id(cursor),
            time: format_rfc3339(record.time_ms),
            authorization_model_id: &record.model_id,
            principals: &record.principals,
            delegation_relation: record.delegation_relation.as_deref(),
            audience: record.audience,
            relation: &record.relation,
            object: &record.object,
            allowed: record.allowed,
            revision: record.revision,
            latency_us: record.latency_us,
            request_id: &record.request_id,
            denied_by: record.denied_by.as_ref(),
            audit: record.audit.as_ref(),
        }
    }
}

/// `GET writ/decisions` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct DecisionsResponse<'a> {
    decisions: Vec<DecisionDto<'a>>,
    continuation_token: String,
}

async fn list(
    StorePath { state, store_id }: StorePath,
    ApiQuery(query): ApiQuery<DecisionsQuery>,
) -> Result<Response, ApiError> {
    let allowed = match query.decision.as_deref() {
        None | Some("") => None,
        Some("allow") => Some(true),
        Some("deny") => Some(false),
        Some(other) => {
            return Err(ApiError::validation(format!("`decision` value `{other}` is not `allow` or `deny`")))
        }
    };
    let limit = match query.limit {
        None | Some(0) => 50,
        Some(n) => (n as usize).min(1000),
    };
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let filter = DecisionFilter {
        principal: non_empty(query.principal),
        object: non_empty(query.object),
        allowed,
        since_ms: time_param("since", query.since)?,
        until_ms: time_param("until", query.until)?,
        before: non_empty(query.continuation_token).as_deref().map(token_cursor).transpose()?,
        // One more than a page tells whether another page follows.
        limit: limit + 1,
    };
    let mut found =
        blocking(move || Ok(state.engine.decision_log().list(&state.engine.store(&store_id)?, &filter)?)).await?;
    let more = found.len() > limit;
    found.truncate(limit);
    let token = match (more, found.last()) {
        (true, Some((cursor, _))) => cursor_token(*cursor),
        _ => String::new(),
    };
    let decisions = found.iter().map(|(cursor, record)| DecisionDto::new(*cursor, record)).collect();
    Ok(json_response(&DecisionsResponse { decisions, continuation_token: token }, 256))
}
