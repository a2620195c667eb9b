//! Writ's agent routes under `/stores/{store_id}/writ/`: `obo-check`, `audience-check` and
//! `filter` (DESIGN §5b), thin handlers over `StoreHandle::{obo_check, audience_check, filter}`.
//!
//! Invariant: every answer carries the `revision` it was computed at; a deny is a `200` answer
//! with `allowed: false` (and `denied_by`), never an error; bad input is a `400` whose message names
//! the bad field. The caller's `audit` object goes to the decision log with each decision; it never
//! affects one. Recorded: an OBO check as one decision; an audience check as one per object (the
//! audience as principals, `denied_for` in `denied_by`); a filter as one per call, on object
//! `type:` (all candidates), allowed only when every candidate id is visible, with the count of
//! hidden ids (or the failing delegation link) in `denied_by`. A filter answer also counts the
//! ids it `examined` and those `visible`, so a retriever can track its pass rate.
//!
//! Approvals (DESIGN §12): an obo-check with `"approval": "request"` that denies raises a
//! pending approval for its exact call (or answers the one already pending) and says so in
//! `approval: {id, state}`; once an approver approved it, the same call is allowed, one use at
//! a time, with `approval: {id, state: "approved"}`. The call is the chain, `relation`,
//! `object` and the SHA-256 of the canonical JSON `{"audit": …, "context": …}` of the request
//! (both as sent, `{}` when absent): what the caller says identifies the call (the tool's
//! arguments, a task id) goes in `audit` or `context`, and a retry must send them unchanged.
//! Must not import `store`, `index` or `eval`.

use super::auth::{Access, Scope};
use super::consistency::require_revision;
use super::decisions::{decision_meta, RequestId};
use super::dto::{json_response, ApiJson, RequestOptionsDto, StorePath};
use super::openapi::Operation;
use super::routes::post;
use super::{blocking, ApiError, AppState, RouteTable};
use crate::engine::{
    decide, Answer, ApprovalCall, ApprovalStatus, ApprovedAnswer, AudienceCheckRequest, AudienceResult, Denial,
    FilterRequest, FilterStrategy, OboCheckRequest, OboDecision, QueryOptions, Question,
};
use crate::tuple::Context;
use crate::wire::canonical::arguments_sha256;
use axum::response::Response;
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(super) fn routes() -> RouteTable {
    let reader = Access::reader(Scope::PathStore);
    let obo = Operation::json::<OboCheckDto, OboCheckResponse>();
    let audience = Operation::json::<AudienceCheckDto, AudienceCheckResponse<'static>>();
    let filtered = Operation::json::<FilterDto, FilterResponse<'static>>();
    RouteTable::new()
        .route("/stores/{store_id}/writ/obo-check", post(reader, obo, obo_check))
        .route("/stores/{store_id}/writ/audience-check", post(reader, audience, audience_check))
        .route("/stores/{store_id}/writ/filter", post(reader, filtered, filter))
}

/// `POST writ/obo-check` body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
struct OboCheckDto {
    principals: Vec<String>,
    relation: String,
    object: String,
    #[serde(default)]
    delegation_relation: Option<String>,
    /// `request`: on a deny, raise (or answer) the call's approval, and let an approved one allow.
    #[serde(default)]
    approval: Option<ApprovalAsk>,
    #[serde(flatten)]
    options: RequestOptionsDto,
}

/// What an obo-check asks of approvals.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum ApprovalAsk {
    /// Raise an approval on a deny; be allowed by an approved one.
    Request,
}

/// `POST writ/audience-check` body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
struct AudienceCheckDto {
    audience: Vec<String>,
    relation: String,
    objects: Vec<String>,
    #[serde(flatten)]
    options: RequestOptionsDto,
}

/// `POST writ/filter` body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
struct FilterDto {
    principals: Vec<String>,
    relation: String,
    object_type: String,
    ids: Vec<String>,
    #[serde(default)]
    delegation_relation: Option<String>,
    #[serde(flatten)]
    options: RequestOptionsDto,
}

/// Rejects a list longer than its limit with a stable code naming the field.
fn within(field: &str, len: usize, limit: usize, code: &'static str) -> Result<(), ApiError> {
    if len > limit {
        return Err(ApiError::BadRequest {
            code,
            message: format!("`{field}` has {len} entries, more than the limit of {limit}"),
        });
    }
    Ok(())
}

/// The caller's `audit` for the decision log: an empty object is recorded as none.
fn non_empty(audit: &Context) -> Option<&Context> {
    (!audit.is_empty()).then_some(audit)
}

/// Waits for the body's `at_least_revision`, then takes its query options and its `audit`.
async fn agent_options(
    state: &AppState,
    store_id: &str,
    options: &mut RequestOptionsDto,
) -> Result<(QueryOptions, Context), ApiError> {
    require_revision(state, store_id, options.at_least_revision).await?;
    Ok((options.query()?, options.audit.take().map(|audit| *audit).unwrap_or_default()))
}

/// Answers `request` over the store and records its decisions with the request's id and `audit`.
fn decide_recorded<'q, Q: Question>(
    state: &AppState,
    store_id: &str,
    request_id: &str,
    started: std::time::Instant,
    request: &'q Q,
    audit: &Context,
) -> Result<Answer<Q::Output<'q>>, ApiError> {
    let meta = decision_meta(state, request_id, started, non_empty(audit));
    let store = state.engine.store(store_id)?;
    Ok(decide(state.engine.decision_log(), &store, request, &meta)?)
}

/// `POST writ/obo-check` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct OboCheckResponse {
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    denied_by: Option<Denial>,
    revision: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    approval: Option<ApprovalRef>,
}

/// The approval an obo-check answer names: the one that allowed it, or the one its deny raised.
#[derive(Debug, Serialize, JsonSchema)]
struct ApprovalRef {
    id: String,
    /// `approved` when it allowed this call; otherwise where it stands (`pending`, ...).
    state: &'static str,
}

/// The exact call an obo-check asks about, as an approval binds it.
fn approval_call(request: &OboCheckRequest) -> ApprovalCall {
    let identity = serde_json::json!({"audit": request.audit, "context": request.context});
    ApprovalCall {
        principals: request.principals.clone(),
        relation: request.relation.clone(),
        object: request.object.clone(),
        server: None,
        tool: None,
        arguments_sha256: arguments_sha256(&identity),
    }
}

async fn obo_check(
    StorePath { state, store_id }: StorePath,
    RequestId(request_id): RequestId,
    ApiJson(mut body): ApiJson<OboCheckDto>,
) -> Result<Json<OboCheckResponse>, ApiError> {
    within("principals", body.principals.len(), state.options.max_principals, "too_many_principals")?;
    let (options, audit) = agent_options(&state, &store_id, &mut body.options).await?;
    let request = OboCheckRequest {
        principals: body.principals,
        relation: body.relation,
        object: body.object,
        delegation_relation: body.delegation_relation,
        audit,
        ..OboCheckRequest::default()
    }
    .with_options(options);
    let started = std::time::Instant::now();
    let Some(ApprovalAsk::Request) = body.approval else {
        let answer = decide_recorded(&state, &store_id, &request_id, started, &request, &request.audit)?;
        let OboDecision { allowed, denied_by } = answer.value;
        return Ok(Json(OboCheckResponse { allowed, denied_by, revision: answer.revision, approval: None }));
    };
    blocking(move || {
        let meta = decision_meta(&state, &request_id, started, non_empty(&request.audit));
        let store = state.engine.store(&store_id)?;
        let approvals = state.engine.approvals();
        let call = || approval_call(&request);
        let ApprovedAnswer { answer, approval } =
            approvals.decide_obo(state.engine.decision_log(), &store, &request, call, &meta)?;
        let OboDecision { allowed, denied_by } = answer.value;
        let approval = approval.map(|approval| ApprovalRef {
            state: if allowed { ApprovalStatus::Approved.as_str() } else { approvals.status(&approval).as_str() },
            id: approval.id,
        });
        Ok(Json(OboCheckResponse { allowed, denied_by, revision: answer.revision, approval }))
    })
    .await
}

/// `POST writ/audience-check` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct AudienceCheckResponse<'a> {
    results: Vec<AudienceResultDto<'a>>,
    revision: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
struct AudienceResultDto<'a> {
    object: &'a str,
    allowed: bool,
    denied_for: &'a [String],
}

impl<'a> From<&'a AudienceResult> for AudienceResultDto<'a> {
    fn from(result: &'a AudienceResult) -> Self {
        AudienceResultDto { object: &result.object, allowed: result.allowed, denied_for: &result.denied_for }
    }
}

/// `POST writ/filter` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct FilterResponse<'a> {
    allowed_ids: &'a [&'a str],
    /// How many candidate ids the filter examined (every id of the request, repeats included).
    examined: usize,
    /// How many of them are visible: `allowed_ids`'s length.
    visible: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    denied_by: Option<&'a Denial>,
    revision: u64,
}

async fn audience_check(
    StorePath { state, store_id }: StorePath,
    RequestId(request_id): RequestId,
    ApiJson(mut body): ApiJson<AudienceCheckDto>,
) -> Result<Response, ApiError> {
    within("audience", body.audience.len(), state.options.max_principals, "too_many_principals")?;
    within("objects", body.objects.len(), state.options.max_filter_ids, "too_many_ids")?;
    let (options, audit) = agent_options(&state, &store_id, &mut body.options).await?;
    let request = AudienceCheckRequest {
        audience: body.audience,
        relation: body.relation,
        objects: body.objects,
        audit,
        ..AudienceCheckRequest::default()
    }
    .with_options(options);
    let started = std::time::Instant::now();
    let answer =
        blocking(move || decide_recorded(&state, &store_id, &request_id, started, &request, &request.audit)).await?;
    let results = answer.value.iter().map(AudienceResultDto::from).collect();
    Ok(json_response(&AudienceCheckResponse { results, revision: answer.revision }, 64))
}

async fn filter(
    StorePath { state, store_id }: StorePath,
    RequestId(request_id): RequestId,
    ApiJson(mut body): ApiJson<FilterDto>,
) -> Result<Response, ApiError> {
    within("principals", body.principals.len(), state.options.max_principals, "too_many_principals")?;
    within("ids", body.ids.len(), state.options.max_filter_ids, "too_many_ids")?;
    let (options, audit) = agent_options(&state, &store_id, &mut body.options).await?;
    let request = FilterRequest {
        principals: body.principals,
        relation: body.relation,
        object_type: body.object_type,
        ids: body.ids,
        delegation_relation: body.delegation_relation,
        strategy: FilterStrategy::Auto,
        audit,
        ..FilterRequest::default()
    }
    .with_options(options);
    let started = std::time::Instant::now();
    blocking(move || {
        let answer = decide_recorded(&state, &store_id, &request_id, started, &request, &request.audit)?;
        let response = FilterResponse {
            allowed_ids: &answer.value.allowed_ids,
            examined: request.ids.len(),
            visible: answer.value.allowed_ids.len(),
            denied_by: answer.value.denied_by.as_ref(),
            revision: answer.revision,
        };
        Ok(json_response(&response, 32 + 8 * response.allowed_ids.len()))
    })
    .await
}
