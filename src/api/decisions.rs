//! The decision log over HTTP: [`record`], which every check-like handler calls with its
//! answer, and `GET /stores/{store_id}/writ/decisions`, which lists what was recorded.
//!
//! Listing: newest first; filters `principal` (any principal of the record), `object`,
//! `decision=allow|deny`, `since` (inclusive) and `until` (exclusive) as RFC 3339; `limit`
//! (default 50, at most 1000) and an opaque `continuation_token` (empty on the last page).
//! Invariant: recording never fails or blocks a decision (see `engine::decisions`).
//! Must not import `store`, `index` or `eval`.

use super::dto::{hex_decode, hex_encode, ApiQuery};
use super::time::{format_rfc3339, parse_rfc3339};
use super::{blocking, ApiError, AppState, RouteTable};
use crate::engine::{DecisionCursor, DecisionFilter, DecisionRecord};
use crate::tuple::Context;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::routing::get;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::time::Instant;

pub(super) fn routes() -> RouteTable {
    RouteTable::new().route("/stores/{store_id}/writ/decisions", get(list))
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

/// What a handler knows about a decision besides its answer.
#[derive(Debug, Clone)]
pub(crate) struct DecisionMeta<'a> {
    /// The request's id.
    pub(crate) request_id: &'a str,
    /// When the decision started (its latency runs from here).
    pub(crate) started: Instant,
    /// The caller's `audit` object.
    pub(crate) audit: Option<&'a Context>,
}

/// One decision to record.
#[derive(Debug, Clone)]
pub(crate) struct Decision<'a> {
    /// The store asked.
    pub(crate) store_id: &'a str,
    /// The pinned model; `None` is the store's latest.
    pub(crate) model_id: Option<&'a str>,
    /// One subject, or an on-behalf-of chain (human first).
    pub(crate) principals: &'a [&'a str],
    /// The relation.
    pub(crate) relation: &'a str,
    /// The object.
    pub(crate) object: &'a str,
    /// The answer.
    pub(crate) allowed: bool,
    /// For a deny, what denied it.
    pub(crate) denied_by: Option<Value>,
    /// The revision the answer reflects.
    pub(crate) revision: u64,
}

/// Records a decision in the decision log if its mode wants it; builds nothing otherwise.
pub(crate) fn record(state: &AppState, decision: Decision<'_>, meta: &DecisionMeta<'_>) {
    if let Some(record) = decision_record(state, decision, meta) {
        state.engine.record_decision(record);
    }
}

/// The record of a decision the decision log's mode wants (`None`, building nothing, for one it
/// does not), for a caller that hands several to the log at once.
pub(crate) fn decision_record(
    state: &AppState,
    decision: Decision<'_>,
    meta: &DecisionMeta<'_>,
) -> Option<DecisionRecord> {
    let engine = &state.engine;
    if !engine.wants_decision(decision.allowed) {
        return None;
    }
    Some(DecisionRecord {
        time_ms: engine.now_ms(),
        store_id: decision.store_id.to_string(),
        model_id: decision.model_id.unwrap_or_default().to_string(),
        principals: decision.principals.iter().map(|p| p.to_string()).collect(),
        relation: decision.relation.to_string(),
        object: decision.object.to_string(),
        allowed: decision.allowed,
        denied_by: decision.denied_by,
        revision: decision.revision,
        latency_us: u64::try_from(meta.started.elapsed().as_micros()).unwrap_or(u64::MAX),
        request_id: meta.request_id.to_string(),
        audit: meta.audit.cloned(),
    })
}

#[derive(Debug, Clone, Default, Deserialize)]
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

fn cursor_token(cursor: DecisionCursor) -> String {
    hex_encode(&format!("decision:{}:{}", cursor.time_ms, cursor.seq))
}

fn token_cursor(token: &str) -> Result<DecisionCursor, ApiError> {
    hex_decode(token)
        .and_then(|text| {
            let (time_ms, seq) = text.strip_prefix("decision:")?.split_once(':')?;
            Some(DecisionCursor { time_ms: time_ms.parse().ok()?, seq: seq.parse().ok()? })
        })
        .ok_or_else(|| ApiError::BadRequest {
            code: "invalid_continuation_token",
            message: "invalid continuation token".into(),
        })
}

fn record_json(record: &DecisionRecord) -> Value {
    let mut value = json!({
        "time": format_rfc3339(record.time_ms),
        "authorization_model_id": record.model_id,
        "principals": record.principals,
        "relation": record.relation,
        "object": record.object,
        "allowed": record.allowed,
        "revision": record.revision,
        "latency_us": record.latency_us,
        "request_id": record.request_id,
    });
    if let Value::Object(map) = &mut value {
        if let Some(denied_by) = &record.denied_by {
            map.insert("denied_by".into(), denied_by.clone());
        }
        if let Some(audit) = &record.audit {
            map.insert("audit".into(), Value::Object(audit.clone()));
        }
    }
    value
}

async fn list(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    ApiQuery(query): ApiQuery<DecisionsQuery>,
) -> Result<Json<Value>, ApiError> {
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
    let mut found = blocking(move || Ok(state.engine.decisions(&store_id, &filter)?)).await?;
    let more = found.len() > limit;
    found.truncate(limit);
    let token = match (more, found.last()) {
        (true, Some((cursor, _))) => cursor_token(*cursor),
        _ => String::new(),
    };
    let decisions: Vec<Value> = found.iter().map(|(_, record)| record_json(record)).collect();
    Ok(Json(json!({"decisions": decisions, "continuation_token": token})))
}
