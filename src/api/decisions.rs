//! The decision log over HTTP: the request's [`RequestId`] and [`decision_meta`], which every
//! check-like handler hands to `engine::decide` with its question, and
//! `GET /stores/{store_id}/writ/decisions`, which lists what was recorded.
//!
//! Each record is named by its `decision_id` (`{time_ms}-{seq}`, where it sits in the store's log:
//! unique within the store, unlike a `request_id`, which a batch shares and a caller may repeat).
//! Listing: newest first; filters `principal` (any principal of the record), `agent` (a principal
//! after the first of an on-behalf-of chain), `tool` (the record's `audit.tool`), `object`,
//! `decision=allow|deny`, `since` (inclusive) and `until` (exclusive) as RFC 3339; `limit`
//! (default 50, at most 1000) and an opaque `continuation_token` (empty on the last page).
//! Invariant: recording never fails or blocks a decision (see `engine::decisions`).
//! Must not import `store`, `index` or `eval`.

use super::auth::{Access, Scope};
use super::dto::{decode_token, hex_encode, json_response, parse_pair, writ_page, writ_page_size, ApiQuery, StorePath};
use super::openapi::Operation;
use super::routes::get;
use super::time::{format_rfc3339, parse_rfc3339};
use super::{blocking, ApiError, AppState, Metrics, RouteTable};
use crate::engine::{DecisionCursor, DecisionFilter, DecisionMeta, DecisionRecord, LatencyObserver};
use crate::tuple::{Context, ContextValue, ObjectRef};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::Response;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

pub(super) fn routes() -> RouteTable {
    let list_decisions = Operation::answers::<DecisionsResponse<'static>>().query::<DecisionsQuery>();
    RouteTable::new()
        .route("/stores/{store_id}/writ/decisions", get(Access::reader(Scope::PathStore), list_decisions, list))
}

/// The request's id (the caller's `x-request-id`, or one the server made), as the request
/// middleware stores it; empty when the router runs without that middleware. Shared, not
/// copied: taking it is a reference count, not an allocation per request.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub(crate) Arc<str>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(parts.extensions.get::<RequestId>().cloned().unwrap_or_else(|| RequestId(Arc::from(""))))
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
    DecisionMeta {
        request_id,
        audit,
        started,
        model_id: None,
        latency: state.metrics.as_ref(),
        time_ms: None,
        ids: None,
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
struct DecisionsQuery {
    #[serde(flatten)]
    filter: DecisionFilterQuery,
    limit: Option<u32>,
    continuation_token: Option<String>,
}

/// The filters of a decision listing in a query string, as `GET writ/decisions` and the console's
/// Decisions page both take them (each flattens it beside its own paging parameter).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub(super) struct DecisionFilterQuery {
    principal: Option<String>,
    /// Only chains that name this agent (`type:id`) after their first principal.
    agent: Option<String>,
    /// Only decisions whose `audit.tool` is this name.
    tool: Option<String>,
    object: Option<String>,
    decision: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

impl DecisionFilterQuery {
    /// The filters as text, starting after the continuation token `before` when one is given.
    pub(super) fn text<'a>(&'a self, before: Option<&'a str>) -> DecisionFilterText<'a> {
        DecisionFilterText {
            principal: self.principal.as_deref(),
            agent: self.agent.as_deref(),
            tool: self.tool.as_deref(),
            object: self.object.as_deref(),
            decision: self.decision.as_deref(),
            since: self.since.as_deref(),
            until: self.until.as_deref(),
            before,
        }
    }
}

/// The filters of a decision listing as a caller gave them (empty means "not given"): the
/// one parser `GET writ/decisions` and the console's Decisions page share.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct DecisionFilterText<'a> {
    pub(super) principal: Option<&'a str>,
    /// An agent, `type:id`.
    pub(super) agent: Option<&'a str>,
    /// A tool name, as `audit.tool` records it.
    pub(super) tool: Option<&'a str>,
    pub(super) object: Option<&'a str>,
    /// `allow`, `deny`, or empty for both.
    pub(super) decision: Option<&'a str>,
    /// RFC 3339, inclusive.
    pub(super) since: Option<&'a str>,
    /// RFC 3339, exclusive.
    pub(super) until: Option<&'a str>,
    /// A continuation token: only decisions older than the one it names.
    pub(super) before: Option<&'a str>,
}

/// The longest `tool` a filter takes (a tool name, not a document).
const MAX_TOOL_LENGTH: usize = 256;

/// `value` trimmed, when something is left.
pub(super) fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|value| !value.is_empty())
}

impl<'a> DecisionFilterText<'a> {
    /// The filters as the console's form shows them, in its order (principal, agent, tool,
    /// object, decision, since, until): each trimmed, empty when not given.
    pub(super) fn given_filters(&self) -> [&'a str; 7] {
        [self.principal, self.agent, self.tool, self.object, self.decision, self.since, self.until]
            .map(|value| given(value).unwrap_or_default())
    }

    /// The engine's filter for one page of `page_size` (it asks one more, which tells whether
    /// another page follows); a bad value is a `validation_error` naming its parameter.
    pub(super) fn parse(&self, page_size: usize) -> Result<DecisionFilter, ApiError> {
        let allowed = match given(self.decision) {
            None => None,
            Some("allow") => Some(true),
            Some("deny") => Some(false),
            Some(other) => {
                return Err(ApiError::validation(format!("`decision` value `{other}` is not `allow` or `deny`")))
            }
        };
        let time = |name: &str, value: Option<&str>| match given(value) {
            None => Ok(None),
            Some(text) => parse_rfc3339(text)
                .map(Some)
                .ok_or_else(|| ApiError::validation(format!("`{name}` value `{text}` is not an RFC 3339 timestamp"))),
        };
        let agent = given(self.agent)
            .map(|text| match text.parse::<ObjectRef>() {
                Ok(_) => Ok(text.to_string()),
                Err(_) => Err(ApiError::validation(format!("`agent` value `{text}` is not an object `type:id`"))),
            })
            .transpose()?;
        let tool = given(self.tool)
            .map(|text| {
                if text.len() > MAX_TOOL_LENGTH || text.chars().any(char::is_control) {
                    Err(ApiError::validation(format!(
                        "`tool` value is longer than {MAX_TOOL_LENGTH} bytes or holds control characters"
                    )))
                } else {
                    Ok(text.to_string())
                }
            })
            .transpose()?;
        Ok(DecisionFilter {
            principal: given(self.principal).map(str::to_string),
            agent,
            tool,
            object: given(self.object).map(str::to_string),
            allowed,
            since_ms: time("since", self.since)?,
            until_ms: time("until", self.until)?,
            before: given(self.before).map(token_cursor).transpose()?,
            limit: page_size + 1,
        })
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
    let limit = writ_page_size(query.limit);
    let filter = query.filter.text(query.continuation_token.as_deref()).parse(limit)?;
    let found =
        blocking(move || Ok(state.engine.decision_log().list(&state.engine.store(&store_id)?, &filter)?)).await?;
    let (found, token) = writ_page(found, limit, |(cursor, _)| cursor_token(*cursor));
    let decisions = found.iter().map(|(cursor, record)| DecisionDto::new(*cursor, record)).collect();
    Ok(json_response(&DecisionsResponse { decisions, continuation_token: token }, 256))
}
