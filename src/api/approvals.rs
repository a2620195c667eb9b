//! Approvals over HTTP (DESIGN §12): `GET /stores/{store_id}/writ/approvals`, which lists a
//! store's approvals, `GET .../writ/approvals/{approval_id}`, which shows one, and `POST .../writ/approvals/{approval_id}/approve` (`{"ttl": "15m",
//! "uses": 1}`, both optional: 15 minutes, one use) and `.../deny` (`{"reason"?}`), thin handlers over
//! `engine.approvals()`. Approvals are raised by `writ/obo-check` with `"approval": "request"`
//! (`api::agent`) and by the gateway.
//!
//! Listing: oldest first; `state` = `pending | approved | denied | expired | used_up` (any when
//! absent); `page_size` (default 50, at most 1000) and an opaque `continuation_token` (empty on
//! the last page). Every route needs the `approver` role (or `admin`); approving or denying an
//! approval that is not pending is a `409 approval_already_decided`, an unknown id a `404
//! approval_not_found`. The approver's key name goes into the approval and the decision log.
//! Must not import `store`, `index` or `eval`.

use super::auth::{Access, Principal, Scope};
use super::dto::{
    hex_encode, json_response, parse_keyword, writ_after, writ_page, writ_page_size, ApiJson, ApiQuery, StorePath,
};
use super::openapi::Operation;
use super::routes::{get, post};
use super::time::format_rfc3339;
use super::{blocking, ApiError, AppState, RouteTable};
use crate::engine::{ApprovalGrant, ApprovalRecord, ApprovalStatus, Approvals, DecisionLog, EngineError, StoreHandle};
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::Response;
use axum::Extension;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What seeing and deciding approvals needs, over the API and on the console's Approvals page.
pub(super) const DECIDE_ACCESS: Access = Access::approver(Scope::PathStore);

pub(super) fn routes() -> RouteTable {
    let approver = DECIDE_ACCESS;
    let list_approvals = Operation::answers::<ApprovalsResponse<'static>>().query::<ApprovalsQuery>();
    RouteTable::new()
        .route("/stores/{store_id}/writ/approvals", get(approver, list_approvals, list))
        .route(
            "/stores/{store_id}/writ/approvals/{approval_id}",
            get(approver, Operation::answers::<ApprovalDto<'static>>(), show),
        )
        .route(
            "/stores/{store_id}/writ/approvals/{approval_id}/approve",
            post(approver, Operation::json::<ApproveDto, ApprovalDto<'static>>(), approve),
        )
        .route(
            "/stores/{store_id}/writ/approvals/{approval_id}/deny",
            post(approver, Operation::json::<DenyDto, ApprovalDto<'static>>(), deny),
        )
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
struct ApprovalsQuery {
    state: Option<String>,
    page_size: Option<u32>,
    continuation_token: Option<String>,
}

/// `POST .../approve` body.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ApproveDto {
    /// How long the approval lasts: a number and a unit, `s`, `m`, `h` or `d` (`15m`).
    ttl: Option<String>,
    /// How many calls it allows.
    uses: Option<u32>,
}

/// `POST .../deny` body.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct DenyDto {
    /// Why, for the decision log.
    reason: Option<String>,
}

/// One approval as the API shows it.
#[derive(Debug, Serialize, JsonSchema)]
pub(super) struct ApprovalDto<'a> {
    id: &'a str,
    state: &'static str,
    principals: &'a [String],
    relation: &'a str,
    object: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: Option<&'a str>,
    arguments_sha256: &'a str,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decided_by: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uses_left: Option<u32>,
}

impl<'a> ApprovalDto<'a> {
    pub(super) fn new(approvals: &Approvals, record: &'a ApprovalRecord) -> Self {
        let status = approvals.status(record);
        ApprovalDto {
            id: &record.id,
            state: status.as_str(),
            principals: &record.call.principals,
            relation: &record.call.relation,
            object: &record.call.object,
            server: record.call.server.as_deref(),
            tool: record.call.tool.as_deref(),
            arguments_sha256: &record.call.arguments_sha256,
            created_at: format_rfc3339(record.created_ms),
            decided_at: record.decided_ms.map(format_rfc3339),
            decided_by: record.decided_by.as_deref(),
            expires_at: record.expires_ms.map(format_rfc3339),
            uses_left: record.expires_ms.map(|_| record.uses_left),
        }
    }
}

/// The words `state` takes, for its error message.
const STATES: &str = "`pending`, `approved`, `denied`, `expired`, `used_up`";

/// `GET writ/approvals` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct ApprovalsResponse<'a> {
    approvals: Vec<ApprovalDto<'a>>,
    continuation_token: String,
}

async fn list(
    StorePath { state, store_id }: StorePath,
    ApiQuery(query): ApiQuery<ApprovalsQuery>,
) -> Result<Response, ApiError> {
    let status = parse_keyword("state", query.state.as_deref(), ApprovalStatus::parse, STATES)?;
    let page_size = writ_page_size(query.page_size);
    let after = writ_after(query.continuation_token, "approval:", |id| Some(id.to_string()))?;
    blocking(move || {
        let approvals = state.engine.approvals();
        let store = state.engine.store(&store_id)?;
        // One more than a page tells whether another page follows.
        let found = approvals.list(&store, status, after.as_deref(), page_size + 1)?;
        let (found, continuation_token) =
            writ_page(found, page_size, |last| hex_encode(&format!("approval:{}", last.id)));
        let listed = found.iter().map(|record| ApprovalDto::new(approvals, record)).collect();
        Ok(json_response(&ApprovalsResponse { approvals: listed, continuation_token }, 256))
    })
    .await
}

/// The server state and the `{store_id}` and `{approval_id}` segments of a route about one
/// approval, taken by one extractor (as [`StorePath`] takes a store's); it rejects as `Path` would.
struct ApprovalPath {
    state: AppState,
    store_id: String,
    approval_id: String,
}

impl FromRequestParts<AppState> for ApprovalPath {
    type Rejection = PathRejection;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PathRejection> {
        let Path((store_id, approval_id)) = Path::from_request_parts(parts, state).await?;
        Ok(ApprovalPath { state: state.clone(), store_id, approval_id })
    }
}

/// `GET writ/approvals/{approval_id}`: one approval (the `url` the gateway's deny names).
async fn show(ApprovalPath { state, store_id, approval_id }: ApprovalPath) -> Result<Response, ApiError> {
    blocking(move || {
        let approvals = state.engine.approvals();
        let found = approvals.get(&state.engine.store(&store_id)?, &approval_id)?;
        Ok(json_response(&ApprovalDto::new(approvals, &found), 256))
    })
    .await
}

/// The name an approval records for its approver: the key's name, or `anonymous` when the
/// server runs without keys.
fn approver_name(principal: Option<Extension<Principal>>) -> String {
    principal.map_or_else(|| "anonymous".to_string(), |Extension(principal)| principal.actor())
}

/// What an approval grants: `ttl` (a duration such as `15m`) and `uses`, each the default
/// (15 minutes, one use) when not given. The one reading of an approver's terms, for
/// `POST .../approve` and the console's **Approve** alike.
pub(super) fn grant(ttl: Option<&str>, uses: Option<u32>) -> Result<ApprovalGrant, ApiError> {
    let defaults = ApprovalGrant::default();
    Ok(ApprovalGrant {
        ttl_ms: ttl.map(parse_ttl).transpose()?.unwrap_or(defaults.ttl_ms),
        uses: uses.unwrap_or(defaults.uses),
    })
}

/// Reads `uses` as a form gives it (text): a whole number, else a `validation_error`.
pub(super) fn parse_uses(text: &str) -> Result<u32, ApiError> {
    text.parse().map_err(|_| ApiError::validation(format!("`uses` value `{text}` is not a whole number")))
}

/// Reads a TTL: a positive whole number and a unit, `s`, `m`, `h` or `d`.
fn parse_ttl(text: &str) -> Result<i64, ApiError> {
    let bad =
        || ApiError::validation(format!("`ttl` value `{text}` is not a duration such as `30s`, `15m`, `2h`, `1d`"));
    let split = text.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = (text.get(..split).ok_or_else(bad)?, text.get(split..).ok_or_else(bad)?);
    let number: i64 = number.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
    let unit_ms = match unit {
        "s" => 1000,
        "m" => 60 * 1000,
        "h" => 3600 * 1000,
        "d" => 24 * 3600 * 1000,
        _ => return Err(bad()),
    };
    number.checked_mul(unit_ms).ok_or_else(bad)
}

async fn approve(
    ApprovalPath { state, store_id, approval_id }: ApprovalPath,
    principal: Option<Extension<Principal>>,
    ApiJson(body): ApiJson<ApproveDto>,
) -> Result<Response, ApiError> {
    let grant = grant(body.ttl.as_deref(), body.uses)?;
    let approver = approver_name(principal);
    decide_step(state, store_id, move |approvals, log, store| {
        approvals.approve(log, store, &approval_id, grant, &approver)
    })
    .await
}

async fn deny(
    ApprovalPath { state, store_id, approval_id }: ApprovalPath,
    principal: Option<Extension<Principal>>,
    ApiJson(body): ApiJson<DenyDto>,
) -> Result<Response, ApiError> {
    let approver = approver_name(principal);
    decide_step(state, store_id, move |approvals, log, store| {
        approvals.deny(log, store, &approval_id, &approver, body.reason.as_deref())
    })
    .await
}

/// Runs an approver's step (approve or deny) on the store's approvals, off the executor, and
/// answers the approval as it now stands.
async fn decide_step(
    state: AppState,
    store_id: String,
    step: impl FnOnce(&Approvals, &DecisionLog, &StoreHandle<'_>) -> Result<ApprovalRecord, EngineError> + Send + 'static,
) -> Result<Response, ApiError> {
    blocking(move || {
        let store = state.engine.store(&store_id)?;
        let approvals = state.engine.approvals();
        let decided = step(approvals, state.engine.decision_log(), &store)?;
        Ok(json_response(&ApprovalDto::new(approvals, &decided), 256))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;

    #[test]
    fn ttl_reads_a_number_and_a_unit() {
        assert_eq!(parse_ttl("30s").unwrap(), 30_000);
        assert_eq!(parse_ttl("15m").unwrap(), 900_000);
        assert_eq!(parse_ttl("2h").unwrap(), 7_200_000);
        assert_eq!(parse_ttl("1d").unwrap(), 86_400_000);
        for bad in ["", "m", "0m", "-1m", "15", "15x", "1.5h", "99999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad}");
        }
    }
}
