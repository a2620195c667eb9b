//! Query routes: `check`, `batch-check`, `expand`, `list-objects`, `streamed-list-objects` and
//! `list-users`.
//!
//! Invariant: list answers are complete (never truncated); a batch-check reports per-check input
//! errors in its result map and fails as a whole only for store, model or size errors.
//! Must not import `store`, `index` or `eval`.

use super::consistency::require_revision;
use super::decisions::{decision_record, Decision, DecisionMeta, RequestId};
use super::dto::{
    contextual_tuples, json_response, subject_json, ApiJson, BatchCheckEntryDto, BatchCheckItemDto,
    BatchCheckRequestDto, BatchCheckResponseDto, CheckRequestDto, CheckResponseDto, ExpandRequestDto,
    ListObjectsRequestDto, ListUsersRequestDto,
};
use super::{blocking, ApiError, AppState, RouteTable};
use crate::engine::{
    Answer, CheckRequest, DecisionRecord, EngineError, ExpandLeaf, ExpandNode, ListObjectsRequest, ListUsersRequest,
    UserFilterSpec,
};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Json;
use rayon::prelude::*;
use rustc_hash::FxHashSet;
use serde_json::{json, Value};

/// From this many checks on, a batch-check runs them on rayon's threads.
const PARALLEL_BATCH: usize = 16;

pub(super) fn routes() -> RouteTable {
    RouteTable::new()
        .route("/stores/{store_id}/check", post(check))
        .route("/stores/{store_id}/batch-check", post(batch_check))
        .route("/stores/{store_id}/expand", post(expand))
        .route("/stores/{store_id}/list-objects", post(list_objects))
        .route("/stores/{store_id}/streamed-list-objects", post(streamed_list_objects))
        .route("/stores/{store_id}/list-users", post(list_users))
}

fn model_id(id: Option<String>) -> Option<String> {
    id.filter(|id| !id.is_empty())
}

impl TryFrom<CheckRequestDto> for CheckRequest {
    type Error = ApiError;

    fn try_from(dto: CheckRequestDto) -> Result<Self, ApiError> {
        let key = dto.tuple_key;
        Ok(CheckRequest {
            object: key.object,
            relation: key.relation,
            user: key.user,
            contextual_tuples: contextual_tuples(&dto.contextual_tuples)?,
            context: dto.context.unwrap_or_default(),
            model_id: model_id(dto.authorization_model_id),
        })
    }
}

/// Runs a check and records its latency.
pub(super) fn timed_check(state: &AppState, store_id: &str, request: &CheckRequest) -> Result<bool, EngineError> {
    Ok(timed_check_answer(state, store_id, request)?.value)
}

/// Runs a check and records its latency; the answer keeps its revision.
pub(super) fn timed_check_answer(
    state: &AppState,
    store_id: &str,
    request: &CheckRequest,
) -> Result<Answer<bool>, EngineError> {
    timed_check_since(state, store_id, request, std::time::Instant::now())
}

/// [`timed_check_answer`], its latency counted from `started` (a caller that has read the clock
/// already).
fn timed_check_since(
    state: &AppState,
    store_id: &str,
    request: &CheckRequest,
    started: std::time::Instant,
) -> Result<Answer<bool>, EngineError> {
    let answer = state.engine.check(store_id, request);
    state.metrics.observe_check(started.elapsed());
    answer
}

/// Runs a check; returns its answer and, when the decision log wants it, its record.
/// `decision_model` is the model id the record names when the request pins none (a batch
/// resolves the latest once for all its checks); `None` leaves it to the log, which fills in the
/// store's latest.
fn decided_check(
    state: &AppState,
    store_id: &str,
    request: &CheckRequest,
    decision_model: Option<&str>,
    meta: &DecisionMeta<'_>,
) -> Result<(bool, Option<DecisionRecord>), EngineError> {
    // The decision's start is the check's: one clock read serves the metric and the log.
    let answer = timed_check_since(state, store_id, request, meta.started)?;
    let decision = Decision {
        store_id,
        model_id: request.model_id.as_deref().or(decision_model),
        principals: &[request.user.as_str()],
        relation: &request.relation,
        object: &request.object,
        allowed: answer.value,
        denied_by: None,
        revision: answer.revision,
    };
    Ok((answer.value, decision_record(state, decision, meta)))
}

async fn check(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    RequestId(request_id): RequestId,
    ApiJson(mut body): ApiJson<CheckRequestDto>,
) -> Result<Response, ApiError> {
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let started = std::time::Instant::now();
    let audit = body.audit.take();
    let request = CheckRequest::try_from(body)?;
    let meta = DecisionMeta { request_id: &request_id, started, audit: audit.as_ref() };
    let (allowed, decision) = decided_check(&state, &store_id, &request, None, &meta)?;
    if let Some(decision) = decision {
        state.engine.record_decision(decision);
    }
    Ok(json_response(&CheckResponseDto { allowed, resolution: "" }, 40))
}

fn batch_error(error: &ApiError) -> Value {
    match error {
        ApiError::Engine(EngineError::Store(_)) | ApiError::Internal(_) => {
            json!({"error": {"internal_error": "internal_error", "message": "internal server error"}})
        }
        ApiError::Engine(engine_error) => {
            json!({"error": {"input_error": engine_error.openfga_code().1, "message": engine_error.to_string()}})
        }
        ApiError::BadRequest { code, message } => json!({"error": {"input_error": code, "message": message}}),
        other => json!({"error": {"input_error": "validation_error", "message": other.to_string()}}),
    }
}

async fn batch_check(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<BatchCheckRequestDto>,
) -> Result<Response, ApiError> {
    super::limits::batch_size(body.checks.len(), "batch-check", &state.options)?;
    if body.checks.is_empty() {
        return Err(ApiError::validation("batch-check needs at least one check"));
    }
    let mut seen = FxHashSet::with_capacity_and_hasher(body.checks.len(), Default::default());
    for item in &body.checks {
        if item.correlation_id.is_empty() {
            return Err(ApiError::validation("every check needs a non-empty `correlation_id`"));
        }
        if !seen.insert(item.correlation_id.as_str()) {
            return Err(ApiError::validation(format!("duplicate `correlation_id` `{}`", item.correlation_id)));
        }
    }
    drop(seen);
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let model = model_id(body.authorization_model_id);
    // Resolved once: the decision log names this model for every check of the batch.
    let model_info = state.engine.model(&store_id, model.as_deref())?;
    // The whole batch shares one deadline: once it passes, the checks left are reported as
    // `deadline_exceeded`, so a batch takes at most about one request timeout, not fifty.
    let deadline = state.engine.config().input.deadline();
    let capacity = body.checks.iter().map(|item| item.correlation_id.len() + 24).sum::<usize>() + 16;
    let result = blocking(move || {
        let batch_audit = body.audit;
        let decision_model = Some(model_info.id.as_str());
        type Answered = (String, BatchCheckEntryDto, Option<DecisionRecord>);
        let answer = |item: BatchCheckItemDto| -> Answered {
            let started = std::time::Instant::now();
            if deadline.is_some_and(|deadline| started >= deadline) {
                let expired = ApiError::Engine(EngineError::Eval(crate::EvalError::DeadlineExceeded));
                return (item.correlation_id, BatchCheckEntryDto::Error(batch_error(&expired)), None);
            }
            let audit = item.audit.or_else(|| batch_audit.clone());
            let meta = DecisionMeta { request_id: &request_id, started, audit: audit.as_ref() };
            let outcome = contextual_tuples(&item.contextual_tuples).and_then(|tuples| {
                let request = CheckRequest {
                    object: item.tuple_key.object,
                    relation: item.tuple_key.relation,
                    user: item.tuple_key.user,
                    contextual_tuples: tuples,
                    context: item.context.unwrap_or_default(),
                    model_id: model.clone(),
                };
                Ok(decided_check(&state, &store_id, &request, decision_model, &meta)?)
            });
            match outcome {
                Ok((allowed, decision)) => (item.correlation_id, BatchCheckEntryDto::Allowed(allowed), decision),
                Err(error) => (item.correlation_id, BatchCheckEntryDto::Error(batch_error(&error)), None),
            }
        };
        // Checks are independent reads of one store: a batch large enough to pay for the
        // hand-off is spread over rayon's threads (when there is more than one: on a single core
        // the hand-off is all cost); answers keep the batch's order either way.
        let parallel = body.checks.len() >= PARALLEL_BATCH && rayon::current_num_threads() > 1;
        let answered: Vec<Answered> = if parallel {
            body.checks.into_par_iter().map(answer).collect()
        } else {
            body.checks.into_iter().map(answer).collect()
        };
        // The batch's decisions reach the log in one hand-off, in the batch's order.
        let mut decisions = Vec::new();
        let answers = answered
            .into_iter()
            .map(|(correlation_id, entry, decision)| {
                decisions.extend(decision);
                (correlation_id, entry)
            })
            .collect();
        if !decisions.is_empty() {
            state.engine.record_decisions(decisions);
        }
        Ok(answers)
    })
    .await?;
    Ok(json_response(&BatchCheckResponseDto { result }, capacity))
}

fn userset(name: &str) -> Value {
    json!({"userset": name})
}

/// An expand node in OpenFGA's JSON shape.
fn expand_json(node: &ExpandNode) -> Value {
    match node {
        ExpandNode::Leaf { name, leaf } => {
            let leaf = match leaf {
                ExpandLeaf::Users(users) => json!({"users": {"users": users}}),
                ExpandLeaf::Computed(computed) => json!({"computed": userset(computed)}),
                ExpandLeaf::TupleToUserset { tupleset, computed } => json!({"tupleToUserset": {
                    "tupleset": tupleset,
                    "computed": computed.iter().map(|c| userset(c)).collect::<Vec<_>>(),
                }}),
            };
            json!({"name": name, "leaf": leaf})
        }
        ExpandNode::Union { name, nodes } => {
            json!({"name": name, "union": {"nodes": nodes.iter().map(expand_json).collect::<Vec<_>>()}})
        }
        ExpandNode::Intersection { name, nodes } => {
            json!({"name": name, "intersection": {"nodes": nodes.iter().map(expand_json).collect::<Vec<_>>()}})
        }
        ExpandNode::Difference { name, base, subtract } => {
            json!({"name": name, "difference": {"base": expand_json(base), "subtract": expand_json(subtract)}})
        }
    }
}

async fn expand(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    ApiJson(body): ApiJson<ExpandRequestDto>,
) -> Result<Json<Value>, ApiError> {
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let tuples = contextual_tuples(&body.contextual_tuples)?;
    let model = model_id(body.authorization_model_id);
    let key = body.tuple_key;
    let tree = blocking(move || {
        Ok(state.engine.expand(&store_id, &key.object, &key.relation, model.as_deref(), &tuples)?.value)
    })
    .await?;
    Ok(Json(json!({"tree": {"root": expand_json(&tree)}})))
}

impl TryFrom<ListObjectsRequestDto> for ListObjectsRequest {
    type Error = ApiError;

    fn try_from(dto: ListObjectsRequestDto) -> Result<Self, ApiError> {
        Ok(ListObjectsRequest {
            object_type: dto.object_type,
            relation: dto.relation,
            user: dto.user,
            contextual_tuples: contextual_tuples(&dto.contextual_tuples)?,
            context: dto.context.unwrap_or_default(),
            model_id: model_id(dto.authorization_model_id),
        })
    }
}

async fn run_list_objects(
    state: AppState,
    store_id: String,
    body: ListObjectsRequestDto,
) -> Result<Vec<String>, ApiError> {
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let request = ListObjectsRequest::try_from(body)?;
    blocking(move || Ok(state.engine.list_objects(&store_id, &request)?.value)).await
}

async fn list_objects(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    ApiJson(body): ApiJson<ListObjectsRequestDto>,
) -> Result<Json<Value>, ApiError> {
    let objects = run_list_objects(state, store_id, body).await?;
    Ok(Json(json!({"objects": objects})))
}

async fn streamed_list_objects(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    ApiJson(body): ApiJson<ListObjectsRequestDto>,
) -> Result<impl IntoResponse, ApiError> {
    let objects = run_list_objects(state, store_id, body).await?;
    let mut lines = String::new();
    for object in objects {
        lines.push_str(&json!({"result": {"object": object}}).to_string());
        lines.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], lines))
}

impl TryFrom<ListUsersRequestDto> for ListUsersRequest {
    type Error = ApiError;

    fn try_from(dto: ListUsersRequestDto) -> Result<Self, ApiError> {
        Ok(ListUsersRequest {
            object: format!("{}:{}", dto.object.object_type, dto.object.id),
            relation: dto.relation,
            user_filters: dto
                .user_filters
                .into_iter()
                .map(|f| UserFilterSpec { type_name: f.type_name, relation: f.relation.filter(|r| !r.is_empty()) })
                .collect(),
            contextual_tuples: contextual_tuples(&dto.contextual_tuples)?,
            context: dto.context.unwrap_or_default(),
            model_id: model_id(dto.authorization_model_id),
        })
    }
}

async fn list_users(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    ApiJson(body): ApiJson<ListUsersRequestDto>,
) -> Result<Json<Value>, ApiError> {
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let request = ListUsersRequest::try_from(body)?;
    let users = blocking(move || Ok(state.engine.list_users(&store_id, &request)?.value)).await?;
    Ok(Json(json!({"users": users.iter().map(subject_json).collect::<Vec<_>>()})))
}
