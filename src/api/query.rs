//! Query routes: `check`, `batch-check`, `expand`, `list-objects`, `streamed-list-objects` and
//! `list-users`.
//!
//! Invariant: list answers are complete (never truncated); a batch-check reports per-check input
//! errors in its result map and fails as a whole only for store, model or size errors.
//! Must not import `store`, `index` or `eval`.

use super::auth::{self, Access, Scope};
use super::consistency::require_revision;
use super::decisions::{decision_meta, RequestId};
use super::dto::{
    contextual_tuples, json_response, ApiJson, BatchCheckEntryDto, BatchCheckErrorBody, BatchCheckErrorCode,
    BatchCheckErrorDto, BatchCheckItemDto, BatchCheckRequestDto, BatchCheckResponseDto, CheckRequestDto,
    CheckResponseDto, ExpandRequestDto, ListObjectsRequestDto, ListUsersRequestDto, StorePath, SubjectDto,
};
use super::openapi::Operation;
use super::routes::post;
use super::{blocking, ApiError, AppState, RouteTable};
use crate::engine::{
    decide, decide_into, CheckRequest, DecisionMeta, DecisionRecord, EngineError, ExpandLeaf, ExpandNode,
    LatencyObserver, ListObjectsRequest, ListUsersRequest, QueryOptions, UserFilterSpec,
};
use axum::extract::Request;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rayon::prelude::*;
use rustc_hash::FxHashSet;
use schemars::JsonSchema;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// From this many checks on, a batch-check runs them on rayon's threads.
const PARALLEL_BATCH: usize = 16;

/// What `POST /stores/{store_id}/check` needs, for the route table and for [`dispatched_check`].
const CHECK_ACCESS: Access = Access::reader(Scope::PathStore);

pub(super) fn routes() -> RouteTable {
    let reader = Access::reader(Scope::PathStore);
    let list_objects_stream = Operation::json::<ListObjectsRequestDto, ()>().json_lines::<StreamedObject<'static>>();
    RouteTable::new()
        .route(
            "/stores/{store_id}/check",
            post(CHECK_ACCESS, Operation::json::<CheckRequestDto, CheckResponseDto>(), check),
        )
        .route(
            "/stores/{store_id}/batch-check",
            post(reader, Operation::json::<BatchCheckRequestDto, BatchCheckResponseDto>(), batch_check),
        )
        .route(
            "/stores/{store_id}/expand",
            post(reader, Operation::json::<ExpandRequestDto, ExpandResponse<'static>>(), expand),
        )
        .route(
            "/stores/{store_id}/list-objects",
            post(reader, Operation::json::<ListObjectsRequestDto, ListObjectsResponse>(), list_objects),
        )
        .route("/stores/{store_id}/streamed-list-objects", post(reader, list_objects_stream, streamed_list_objects))
        .route(
            "/stores/{store_id}/list-users",
            post(reader, Operation::json::<ListUsersRequestDto, ListUsersResponse<'static>>(), list_users),
        )
}

impl TryFrom<CheckRequestDto> for CheckRequest {
    type Error = ApiError;

    fn try_from(mut dto: CheckRequestDto) -> Result<Self, ApiError> {
        let QueryOptions { contextual_tuples, context, model_id } = dto.options.query()?;
        let key = dto.tuple_key;
        Ok(CheckRequest {
            object: key.object,
            relation: key.relation,
            user: key.user,
            contextual_tuples,
            context,
            model_id,
        })
    }
}

/// Runs a check and records its latency, but no decision (AuthZEN's action search asks every
/// relation of a type: those are not decisions anyone made).
pub(super) fn timed_check(state: &AppState, store_id: &str, request: &CheckRequest) -> Result<bool, EngineError> {
    let started = std::time::Instant::now();
    let answer = state.engine.store(store_id).and_then(|store| store.check(request));
    state.metrics.observe_check(started.elapsed());
    Ok(answer?.value)
}

async fn check(
    StorePath { state, store_id }: StorePath,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<CheckRequestDto>,
) -> Result<Response, ApiError> {
    answer_check(&state, &store_id, &request_id, body).await
}

/// `POST /stores/{store_id}/check` as [`super::Api`] answers it ahead of the router: inside the
/// request span, the steps of the routed [`check`] and its layers, through the same functions
/// (the access check, [`ApiJson::read`], [`answer_check`], the error-body rewrite).
pub(super) async fn dispatched_check(state: Arc<AppState>, store_id: String, request: Request) -> Response {
    // Borrowed for the whole request: no second reference count for the metrics.
    let state = &*state;
    let store_id = store_id.as_str();
    super::spanned(&state.metrics, request, |request, request_id| async move {
        let answer = async {
            let request = if state.auth.admits_everyone() {
                request
            } else {
                match auth::admit_store(state, CHECK_ACCESS, request, store_id).await {
                    Ok(request) => request,
                    Err(refusal) => return auth::closing(refusal.into_response()),
                }
            };
            let ApiJson(body) = match ApiJson::<CheckRequestDto>::read(request.into_body(), &state.options).await {
                Ok(body) => body,
                Err(error) => return error.into_response(),
            };
            answer_check(state, store_id, &request_id, body).await.into_response()
        };
        super::error::json_error_body(answer.await).await
    })
    .await
}

/// The check handler's work once its store, request id and body are read.
async fn answer_check(
    state: &AppState,
    store_id: &str,
    request_id: &str,
    mut body: CheckRequestDto,
) -> Result<Response, ApiError> {
    require_revision(state, store_id, body.options.at_least_revision).await?;
    let started = std::time::Instant::now();
    let audit = body.options.audit.take();
    let request = CheckRequest::try_from(body)?;
    let meta = decision_meta(state, request_id, started, audit.as_deref());
    let store = state.engine.store(store_id)?;
    let allowed = decide(state.engine.decision_log(), &store, &request, &meta)?.value;
    Ok(check_answer(allowed))
}

/// The two bodies a check can answer, as [`CheckResponseDto`] serializes them (a test holds them
/// to it): the check answer is sent from these bytes, with no serializer, buffer or header
/// parse per request.
const CHECK_ALLOWED: &[u8] = br#"{"allowed":true,"resolution":""}"#;
const CHECK_DENIED: &[u8] = br#"{"allowed":false,"resolution":""}"#;

/// A check's `200 application/json` answer from its static body.
fn check_answer(allowed: bool) -> Response {
    let body = if allowed { CHECK_ALLOWED } else { CHECK_DENIED };
    let mut response = Response::new(axum::body::Body::from(axum::body::Bytes::from_static(body)));
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

fn batch_error(error: &ApiError) -> BatchCheckErrorDto {
    let (code, message) = match error {
        ApiError::Engine(EngineError::Store(_)) | ApiError::Internal(_) => {
            (BatchCheckErrorCode::InternalError("internal_error"), "internal server error".to_string())
        }
        ApiError::Engine(engine_error) => {
            (BatchCheckErrorCode::InputError(engine_error.openfga_code().1), engine_error.to_string())
        }
        ApiError::BadRequest { code, message } => (BatchCheckErrorCode::InputError(code), message.clone()),
        other => (BatchCheckErrorCode::InputError("validation_error"), other.to_string()),
    };
    BatchCheckErrorDto { error: BatchCheckErrorBody { code, message } }
}

async fn batch_check(
    StorePath { state, store_id }: StorePath,
    RequestId(request_id): RequestId,
    ApiJson(mut body): ApiJson<BatchCheckRequestDto>,
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
    require_revision(&state, &store_id, body.options.at_least_revision).await?;
    let model = body.options.model_id();
    // Resolved once: the decision log names this model for every check of the batch.
    let model_info = state.engine.store(&store_id)?.model(model.as_deref())?;
    // The whole batch shares one deadline: once it passes, the check running stops and the
    // checks left are reported as `deadline_exceeded`, so a batch takes at most one request
    // timeout, not fifty.
    let deadline = state.engine.config().input.deadline();
    let capacity = body.checks.iter().map(|item| item.correlation_id.len() + 24).sum::<usize>() + 16;
    let result = blocking(move || {
        // Every check is evaluated against that deadline, not a fresh timeout of its own.
        let store = state.engine.store(&store_id)?.until(deadline);
        let log = state.engine.decision_log();
        let metrics: &dyn LatencyObserver = state.metrics.as_ref();
        let batch_audit = body.options.audit;
        let decision_model = Some(model_info.id.as_str());
        // The ids every record of the batch carries, made once, not looked up per record; its
        // records carry the batch's start until they are handed over (below).
        let ids = log.record_ids(&store_id, &model_info.id, &request_id);
        let batch_started_ms = state.engine.now_ms();
        // Each check, started at `started` and timed by `latency`; its record (if the log wants
        // one) goes to `record`.
        let answer = |mut item: BatchCheckItemDto,
                      started: Instant,
                      latency: &dyn LatencyObserver,
                      record: &mut dyn FnMut(DecisionRecord)| {
            if deadline.is_some_and(|deadline| started >= deadline) {
                let expired = ApiError::Engine(EngineError::Eval(crate::EvalError::DeadlineExceeded));
                return (item.correlation_id, BatchCheckEntryDto::Error(batch_error(&expired)));
            }
            let audit = item.options.audit.take().or_else(|| batch_audit.clone());
            let meta = DecisionMeta {
                model_id: decision_model,
                latency,
                time_ms: Some(batch_started_ms),
                ids: Some(&ids),
                ..decision_meta(&state, &request_id, started, audit.as_deref())
            };
            let outcome = contextual_tuples(&item.options.contextual_tuples).and_then(|tuples| {
                // An item's own model id is ignored: the batch pins one for all its checks.
                let request = CheckRequest {
                    object: item.tuple_key.object,
                    relation: item.tuple_key.relation,
                    user: item.tuple_key.user,
                    contextual_tuples: tuples,
                    context: item.options.context.take().map(|context| *context).unwrap_or_default(),
                    model_id: model.clone(),
                };
                // The alerts take each agent check's event straight from the check, on its thread.
                Ok(decide_into(log, &store, &request, &meta, None, &mut *record)?.value)
            });
            match outcome {
                Ok(allowed) => (item.correlation_id, BatchCheckEntryDto::Allowed(allowed)),
                Err(error) => (item.correlation_id, BatchCheckEntryDto::Error(batch_error(&error))),
            }
        };
        // Checks are independent reads of one store: a batch large enough to pay for the
        // hand-off is spread over rayon's threads (when there is more than one: on a single core
        // the hand-off is all cost); answers keep the batch's order either way.
        // The batch's decisions reach the log in one hand-off, in the batch's order.
        let parallel = body.checks.len() >= PARALLEL_BATCH && rayon::current_num_threads() > 1;
        // Sized once for a log that keeps denies (at most one record a check), so the batch's
        // records are not moved through a growing vector; with the log off nothing is reserved.
        let mut decisions = Vec::with_capacity(if log.wants(false) { body.checks.len() } else { 0 });
        let answers = if parallel {
            let answered: Vec<_> = body
                .checks
                .into_par_iter()
                .map(|item| {
                    let mut decision = None;
                    let (correlation_id, entry) =
                        answer(item, Instant::now(), metrics, &mut |record| decision = Some(record));
                    (correlation_id, entry, decision)
                })
                .collect();
            answered
                .into_iter()
                .map(|(correlation_id, entry, decision)| {
                    decisions.extend(decision);
                    (correlation_id, entry)
                })
                .collect()
        } else {
            // In order on this thread, each record goes straight to the hand-off: no per-check
            // slot for a record (some 300 bytes each) to be moved through. Each check starts
            // where the one before it was timed to end: one clock read a check, not two.
            let timed = LastLatency::new(metrics);
            let mut started = Instant::now();
            body.checks
                .into_iter()
                .map(|item| {
                    let answered = answer(item, started, &timed, &mut |record| decisions.push(record));
                    started = timed.take().map_or_else(Instant::now, |elapsed| started + elapsed);
                    answered
                })
                .collect()
        };
        if !decisions.is_empty() {
            // The batch's records carry the time its answers were decided: one batch of a
            // thousand checks takes milliseconds, and concurrent batches would otherwise hand the
            // log records timed before ones it already holds, to be merged in out of order.
            let decided_ms = state.engine.now_ms();
            for record in &mut decisions {
                record.time_ms = decided_ms;
            }
            log.record_seen(decisions);
        }
        Ok(answers)
    })
    .await?;
    Ok(json_response(&BatchCheckResponseDto { result }, capacity))
}

/// A latency observer that passes each latency on and keeps the last one, so that a batch's
/// next check can start at the instant the last one was timed to end.
struct LastLatency<'a> {
    inner: &'a dyn LatencyObserver,
    /// The last latency seen, in nanoseconds; `u64::MAX` when none was seen since the last take.
    nanos: AtomicU64,
}

impl<'a> LastLatency<'a> {
    fn new(inner: &'a dyn LatencyObserver) -> Self {
        LastLatency { inner, nanos: AtomicU64::new(u64::MAX) }
    }

    /// The latency seen since the last call, if any (a check that failed before its evaluation
    /// was not timed).
    fn take(&self) -> Option<Duration> {
        // One thread observes and takes: plain loads and stores, no read-modify-write.
        let nanos = self.nanos.load(Ordering::Relaxed);
        self.nanos.store(u64::MAX, Ordering::Relaxed);
        (nanos != u64::MAX).then(|| Duration::from_nanos(nanos))
    }
}

impl LatencyObserver for LastLatency<'_> {
    fn observe(&self, elapsed: Duration) {
        self.inner.observe(elapsed);
        self.nanos.store(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX - 1), Ordering::Relaxed);
    }
}

/// `POST /stores/{id}/expand` answer: `{"tree": {"root": node}}`.
#[derive(Debug, Serialize, JsonSchema)]
struct ExpandResponse<'a> {
    tree: ExpandTreeDto<'a>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct ExpandTreeDto<'a> {
    root: ExpandNodeDto<'a>,
}

/// An expand node in OpenFGA's JSON shape: `{"name", "leaf" | "union" | "intersection" |
/// "difference": ...}`.
#[derive(Debug, Serialize, JsonSchema)]
struct ExpandNodeDto<'a> {
    name: &'a str,
    #[serde(flatten)]
    body: ExpandBodyDto<'a>,
}

#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
enum ExpandBodyDto<'a> {
    Leaf(ExpandLeafDto<'a>),
    Union { nodes: Vec<ExpandNodeDto<'a>> },
    Intersection { nodes: Vec<ExpandNodeDto<'a>> },
    Difference { base: Box<ExpandNodeDto<'a>>, subtract: Box<ExpandNodeDto<'a>> },
}

/// A leaf: `{"users": {"users": [...]}}`, `{"computed": {"userset"}}` or
/// `{"tupleToUserset": {"tupleset", "computed": [{"userset"}, ...]}}`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
enum ExpandLeafDto<'a> {
    Users { users: &'a [String] },
    Computed(UsersetDto<'a>),
    TupleToUserset { tupleset: &'a str, computed: Vec<UsersetDto<'a>> },
}

#[derive(Debug, Serialize, JsonSchema)]
struct UsersetDto<'a> {
    userset: &'a str,
}

impl<'a> From<&'a ExpandNode> for ExpandNodeDto<'a> {
    fn from(node: &'a ExpandNode) -> Self {
        let nodes = |nodes: &'a [ExpandNode]| nodes.iter().map(ExpandNodeDto::from).collect();
        let (name, body) = match node {
            ExpandNode::Leaf { name, leaf } => {
                let leaf = match leaf {
                    ExpandLeaf::Users(users) => ExpandLeafDto::Users { users },
                    ExpandLeaf::Computed(computed) => ExpandLeafDto::Computed(UsersetDto { userset: computed }),
                    ExpandLeaf::TupleToUserset { tupleset, computed } => ExpandLeafDto::TupleToUserset {
                        tupleset,
                        computed: computed.iter().map(|userset| UsersetDto { userset }).collect(),
                    },
                };
                (name, ExpandBodyDto::Leaf(leaf))
            }
            ExpandNode::Union { name, nodes: children } => (name, ExpandBodyDto::Union { nodes: nodes(children) }),
            ExpandNode::Intersection { name, nodes: children } => {
                (name, ExpandBodyDto::Intersection { nodes: nodes(children) })
            }
            ExpandNode::Difference { name, base, subtract } => (
                name,
                ExpandBodyDto::Difference {
                    base: Box::new((&**base).into()),
                    subtract: Box::new((&**subtract).into()),
                },
            ),
        };
        ExpandNodeDto { name, body }
    }
}

async fn expand(
    StorePath { state, store_id }: StorePath,
    ApiJson(mut body): ApiJson<ExpandRequestDto>,
) -> Result<Response, ApiError> {
    require_revision(&state, &store_id, body.options.at_least_revision).await?;
    // Expand has no condition context: a request's `context` is ignored.
    let QueryOptions { contextual_tuples: tuples, model_id: model, .. } = body.options.query()?;
    let key = body.tuple_key;
    let tree = blocking(move || {
        Ok(state.engine.store(&store_id)?.expand(&key.object, &key.relation, model.as_deref(), &tuples)?.value)
    })
    .await?;
    Ok(json_response(&ExpandResponse { tree: ExpandTreeDto { root: (&tree).into() } }, 256))
}

impl TryFrom<ListObjectsRequestDto> for ListObjectsRequest {
    type Error = ApiError;

    fn try_from(mut dto: ListObjectsRequestDto) -> Result<Self, ApiError> {
        let QueryOptions { contextual_tuples, context, model_id } = dto.options.query()?;
        Ok(ListObjectsRequest {
            object_type: dto.object_type,
            relation: dto.relation,
            user: dto.user,
            contextual_tuples,
            context,
            model_id,
        })
    }
}

/// `POST /stores/{id}/list-objects` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct ListObjectsResponse {
    objects: Vec<String>,
}

/// One line of `streamed-list-objects`: `{"result": {"object"}}`.
#[derive(Debug, Serialize, JsonSchema)]
struct StreamedObject<'a> {
    result: ObjectResult<'a>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct ObjectResult<'a> {
    object: &'a str,
}

async fn run_list_objects(
    state: AppState,
    store_id: String,
    body: ListObjectsRequestDto,
) -> Result<Vec<String>, ApiError> {
    require_revision(&state, &store_id, body.options.at_least_revision).await?;
    let request = ListObjectsRequest::try_from(body)?;
    blocking(move || Ok(state.engine.store(&store_id)?.list_objects(&request)?.value)).await
}

async fn list_objects(
    StorePath { state, store_id }: StorePath,
    ApiJson(body): ApiJson<ListObjectsRequestDto>,
) -> Result<Json<ListObjectsResponse>, ApiError> {
    let objects = run_list_objects(state, store_id, body).await?;
    Ok(Json(ListObjectsResponse { objects }))
}

async fn streamed_list_objects(
    StorePath { state, store_id }: StorePath,
    ApiJson(body): ApiJson<ListObjectsRequestDto>,
) -> Result<impl IntoResponse, ApiError> {
    let objects = run_list_objects(state, store_id, body).await?;
    let mut lines = Vec::new();
    for object in &objects {
        serde_json::to_writer(&mut lines, &StreamedObject { result: ObjectResult { object } })
            .map_err(|e| ApiError::Internal(format!("response cannot be serialized: {e}")))?;
        lines.push(b'\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], lines))
}

impl TryFrom<ListUsersRequestDto> for ListUsersRequest {
    type Error = ApiError;

    fn try_from(mut dto: ListUsersRequestDto) -> Result<Self, ApiError> {
        let QueryOptions { contextual_tuples, context, model_id } = dto.options.query()?;
        Ok(ListUsersRequest {
            object: format!("{}:{}", dto.object.object_type, dto.object.id),
            relation: dto.relation,
            user_filters: dto
                .user_filters
                .into_iter()
                .map(|f| UserFilterSpec { type_name: f.type_name, relation: f.relation.filter(|r| !r.is_empty()) })
                .collect(),
            contextual_tuples,
            context,
            model_id,
        })
    }
}

/// `POST /stores/{id}/list-users` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct ListUsersResponse<'a> {
    users: Vec<SubjectDto<'a>>,
}

async fn list_users(
    StorePath { state, store_id }: StorePath,
    ApiJson(body): ApiJson<ListUsersRequestDto>,
) -> Result<Response, ApiError> {
    require_revision(&state, &store_id, body.options.at_least_revision).await?;
    let request = ListUsersRequest::try_from(body)?;
    let users = blocking(move || Ok(state.engine.store(&store_id)?.list_users(&request)?.value)).await?;
    let users: Vec<SubjectDto<'_>> = users.iter().map(SubjectDto::from).collect();
    Ok(json_response(&ListUsersResponse { users }, 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_answer_bodies_are_what_the_response_type_serializes() {
        for allowed in [true, false] {
            let typed = serde_json::to_vec(&CheckResponseDto { allowed, resolution: "" }).unwrap();
            let sent = if allowed { CHECK_ALLOWED } else { CHECK_DENIED };
            assert_eq!(sent, typed.as_slice(), "allowed = {allowed}");
            let response = check_answer(allowed);
            assert_eq!(response.status(), axum::http::StatusCode::OK);
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        }
    }
}
