//! AuthZEN 1.0 routes under `/stores/{id}/access/v1/`: `evaluation`, `evaluations`,
//! `search/{resource,subject,action}`, and the per-store `/.well-known/authzen-configuration`;
//! the same at the root (`/access/v1/...`, `/.well-known/authzen-configuration`) for the store
//! configured with `--authzen-store`, and a 404 `authzen_store_not_configured` without one.
//!
//! Mapping: `subject{type,id}` → user `type:id`, `resource{type,id}` → object `type:id`,
//! `action{name}` → relation. Invariant: a deny is `200 {"decision": false}`; when
//! `context.agent{type,id}` is present (the MCP profile) the decision is the OBO check of the chain
//! `[subject, agent]` (`StoreHandle::obo_check`): the agent must hold `delegate` on the subject, and
//! both must hold the relation.
//! Must not import `store`, `index` or `eval`.

use super::auth::{Access, Scope};
use super::consistency::require_revision;
use super::decisions::{decision_meta, RequestId};
use super::dto::{json_response, offset_token, token_offset, ApiJson, RequestOptionsDto, StorePath};
use super::openapi::Operation;
use super::query::timed_check;
use super::routes::{get, post};
use super::{blocking, ApiError, AppState, RouteTable};
use crate::engine::{
    self, CheckRequest, CheckWithCause, EngineError, ListObjectsRequest, ListUsersRequest, OboCheckRequest,
    UserFilterSpec,
};
use crate::tuple::Subject;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Json;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub(super) fn routes() -> RouteTable {
    let (reader, root_reader) = (Access::reader(Scope::PathStore), Access::reader(Scope::AuthzenStore));
    let evaluate = Operation::json::<EvaluationDto, EvaluationResultDto>;
    let evaluate_many = Operation::json::<EvaluationsDto, EvaluationsResponse>;
    let entities = Operation::json::<SearchDto, SearchResponse<EntityResultDto<'static>>>;
    let actions = Operation::json::<SearchDto, SearchResponse<ActionResultDto>>;
    // The access API, once under a store's path and once at the root (the configured default store).
    macro_rules! access_api {
        ($table:expr, $prefix:literal, $reader:ident) => {
            $table
                .route(concat!($prefix, "/access/v1/evaluation"), post($reader, evaluate(), evaluation))
                .route(concat!($prefix, "/access/v1/evaluations"), post($reader, evaluate_many(), evaluations))
                .route(concat!($prefix, "/access/v1/search/resource"), post($reader, entities(), search_resource))
                .route(concat!($prefix, "/access/v1/search/subject"), post($reader, entities(), search_subject))
                .route(concat!($prefix, "/access/v1/search/action"), post($reader, actions(), search_action))
        };
    }
    let store_routes = access_api!(RouteTable::new(), "/stores/{store_id}", reader).route(
        "/.well-known/authzen-configuration/stores/{store_id}",
        get(reader, Operation::answers::<ConfigurationDto>(), configuration),
    );
    access_api!(store_routes, "", root_reader).route(
        "/.well-known/authzen-configuration",
        get(Access::Open, Operation::answers::<ConfigurationDto>(), root_configuration),
    )
}

/// The store an AuthZEN request addresses: the `{store_id}` path segment, or at the root the
/// configured default store.
struct AuthzenStore(String);

impl FromRequestParts<AppState> for AuthzenStore {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.uri.path().starts_with("/stores/") {
            let Path(store_id) = Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|rejection| ApiError::validation(rejection.body_text()))?;
            return Ok(AuthzenStore(store_id));
        }
        state.authzen_store.clone().map(AuthzenStore).ok_or(ApiError::AuthzenStoreNotConfigured)
    }
}

/// An AuthZEN entity: `{type, id?, properties?}` (`id` is absent in searches).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
struct EntityDto {
    #[serde(rename = "type")]
    entity_type: String,
    #[serde(default)]
    id: Option<String>,
}

impl EntityDto {
    fn name(&self, field: &str) -> Result<String, ApiError> {
        match &self.id {
            Some(id) if !id.is_empty() && !self.entity_type.is_empty() => Ok(format!("{}:{id}", self.entity_type)),
            _ => Err(ApiError::validation(format!("`{field}` needs a non-empty `type` and `id`"))),
        }
    }
}

/// An AuthZEN action: `{name, properties?}`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
struct ActionDto {
    name: String,
}

/// One evaluation; in `evaluations` each field falls back to the request's top-level one.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
struct EvaluationDto {
    subject: Option<EntityDto>,
    resource: Option<EntityDto>,
    action: Option<ActionDto>,
    /// `context` (AuthZEN's; `context.agent` makes it an OBO check), and Writ's extensions
    /// `at_least_revision` and `audit`; a model id or contextual tuples are ignored.
    #[serde(flatten)]
    options: RequestOptionsDto,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
struct EvaluationsOptionsDto {
    evaluations_semantic: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
struct EvaluationsDto {
    #[serde(flatten)]
    defaults: EvaluationDto,
    evaluations: Vec<EvaluationDto>,
    options: Option<EvaluationsOptionsDto>,
}

/// Decides one evaluation. With `context.agent` (the MCP profile) it is the OBO check
/// `[subject, agent]`: the agent must hold `delegate` on the subject and both must hold the
/// relation. The decision goes to the decision log; a deny names what failed.
fn decide(state: &AppState, store_id: &str, evaluation: &EvaluationDto, request_id: &str) -> Result<bool, ApiError> {
    let started = std::time::Instant::now();
    let missing = |field: &str| ApiError::validation(format!("evaluation needs `{field}`"));
    let subject = evaluation.subject.as_ref().ok_or_else(|| missing("subject"))?.name("subject")?;
    let object = evaluation.resource.as_ref().ok_or_else(|| missing("resource"))?.name("resource")?;
    let relation = evaluation.action.as_ref().ok_or_else(|| missing("action"))?.name.clone();
    let context = evaluation.options.context.as_deref().cloned().unwrap_or_default();
    let meta = decision_meta(state, request_id, started, evaluation.options.audit.as_deref());
    match context.get("agent") {
        None => {
            let request = CheckRequest { object, relation, user: subject, context, ..Default::default() };
            let store = state.engine.store(store_id)?;
            Ok(engine::decide(state.engine.decision_log(), &store, &CheckWithCause(&request), &meta)?.value)
        }
        Some(agent) => {
            let agent: EntityDto = serde_json::from_value(agent.clone())
                .map_err(|e| ApiError::validation(format!("`context.agent` must be `{{type, id}}`: {e}")))?;
            let request = OboCheckRequest {
                principals: vec![subject, agent.name("context.agent")?],
                relation,
                object,
                context,
                audit: evaluation.options.audit.as_deref().cloned().unwrap_or_default(),
                ..Default::default()
            };
            let store = state.engine.store(store_id)?;
            Ok(engine::decide(state.engine.decision_log(), &store, &request, &meta)?.value.allowed)
        }
    }
}

async fn evaluation(
    AuthzenCall { state, store_id, request_id, body }: AuthzenCall<EvaluationDto>,
) -> Result<Json<EvaluationResultDto>, ApiError> {
    require_revision(&state, &store_id, body.options.at_least_revision).await?;
    let decision = decide(&state, &store_id, &body, &request_id)?;
    Ok(Json(EvaluationResultDto { decision, context: None }))
}

/// One evaluation's answer: `{"decision"}`, plus `context.error` for an evaluation of a batch
/// that could not be decided.
#[derive(Debug, Serialize, JsonSchema)]
struct EvaluationResultDto {
    decision: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<EvaluationContextDto>,
}

#[derive(Debug, Serialize, JsonSchema)]
struct EvaluationContextDto {
    error: EvaluationErrorDto,
}

#[derive(Debug, Serialize, JsonSchema)]
struct EvaluationErrorDto {
    status: u16,
    message: String,
}

/// `POST access/v1/evaluations` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct EvaluationsResponse {
    evaluations: Vec<EvaluationResultDto>,
}

fn merged(defaults: &EvaluationDto, item: EvaluationDto) -> EvaluationDto {
    EvaluationDto {
        subject: item.subject.or_else(|| defaults.subject.clone()),
        resource: item.resource.or_else(|| defaults.resource.clone()),
        action: item.action.or_else(|| defaults.action.clone()),
        options: RequestOptionsDto {
            context: item.options.context.or_else(|| defaults.options.context.clone()),
            audit: item.options.audit.or_else(|| defaults.options.audit.clone()),
            ..RequestOptionsDto::default()
        },
    }
}

async fn evaluations(
    AuthzenCall { state, store_id, request_id, body }: AuthzenCall<EvaluationsDto>,
) -> Result<Json<EvaluationsResponse>, ApiError> {
    super::limits::batch_size(body.evaluations.len(), "evaluations", &state.options)?;
    require_revision(&state, &store_id, body.defaults.options.at_least_revision).await?;
    let semantic = body.options.and_then(|o| o.evaluations_semantic).unwrap_or_else(|| "execute_all".into());
    let stop_on: Option<bool> = match semantic.as_str() {
        "execute_all" => None,
        "deny_on_first_deny" => Some(false),
        "permit_on_first_permit" => Some(true),
        other => return Err(ApiError::validation(format!("unknown `evaluations_semantic` `{other}`"))),
    };
    state.engine.get_store(&store_id)?;
    if body.evaluations.is_empty() {
        let decision = decide(&state, &store_id, &body.defaults, &request_id)?;
        return Ok(Json(EvaluationsResponse { evaluations: vec![EvaluationResultDto { decision, context: None }] }));
    }
    let results = blocking(move || {
        let mut results = Vec::with_capacity(body.evaluations.len());
        for item in body.evaluations {
            let evaluation = merged(&body.defaults, item);
            let (decision, entry) = match decide(&state, &store_id, &evaluation, &request_id) {
                Ok(decision) => (decision, EvaluationResultDto { decision, context: None }),
                Err(ApiError::Engine(EngineError::StoreNotFound(id))) => {
                    return Err(EngineError::StoreNotFound(id).into())
                }
                Err(error) => {
                    let error = EvaluationErrorDto { status: 400, message: error.to_string() };
                    (false, EvaluationResultDto { decision: false, context: Some(EvaluationContextDto { error }) })
                }
            };
            results.push(entry);
            if stop_on == Some(decision) {
                break;
            }
        }
        Ok(results)
    })
    .await?;
    Ok(Json(EvaluationsResponse { evaluations: results }))
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
struct SearchDto {
    subject: Option<EntityDto>,
    resource: Option<EntityDto>,
    action: Option<ActionDto>,
    page: Option<PageDto>,
    /// `context`, and Writ's `at_least_revision`; the other shared options are ignored.
    #[serde(flatten)]
    options: RequestOptionsDto,
}

/// AuthZEN search paging: `page: {token?, limit?}`; a missing or zero `limit` (a Go client's unset
/// value) means every result.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
struct PageDto {
    token: Option<String>,
    limit: Option<usize>,
}

/// A search answer: one page of `results` with `page.next_token` (empty on the last page),
/// `count` and `total`.
#[derive(Debug, Serialize, JsonSchema)]
#[schemars(rename = "SearchResponseOf{T}")]
struct SearchResponse<T> {
    results: Vec<T>,
    page: PageInfoDto,
}

#[derive(Debug, Serialize, JsonSchema)]
struct PageInfoDto {
    next_token: String,
    count: usize,
    total: usize,
}

/// A subject or resource found by a search: `{"type", "id"}`.
#[derive(Debug, Serialize, JsonSchema)]
struct EntityResultDto<'a> {
    #[serde(rename = "type")]
    entity_type: &'a str,
    id: &'a str,
}

/// An action found by a search: `{"name"}`.
#[derive(Debug, Serialize, JsonSchema)]
struct ActionResultDto {
    name: String,
}

/// What every AuthZEN handler with a body starts from: the state, the store the request
/// addresses, the request's id and the body, taken in that order (a request is refused for the
/// store before its body is read).
struct AuthzenCall<B> {
    state: AppState,
    store_id: String,
    request_id: Arc<str>,
    body: B,
}

impl<B: DeserializeOwned> FromRequest<AppState> for AuthzenCall<B> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = request.into_parts();
        let AuthzenStore(store_id) = AuthzenStore::from_request_parts(&mut parts, state).await?;
        let Ok(RequestId(request_id)) = RequestId::from_request_parts(&mut parts, state).await;
        let ApiJson(body) = ApiJson::<B>::from_request(Request::from_parts(parts, body), state).await?;
        Ok(AuthzenCall { state: state.clone(), store_id, request_id, body })
    }
}

/// What every search handler starts from: the store, and the body once the store has reached
/// the body's `at_least_revision`.
struct Search {
    state: AppState,
    store_id: String,
    body: SearchDto,
}

impl FromRequest<AppState> for Search {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let AuthzenCall { state, store_id, body, .. } = AuthzenCall::<SearchDto>::from_request(request, state).await?;
        require_revision(&state, &store_id, body.options.at_least_revision).await?;
        Ok(Search { state, store_id, body })
    }
}

/// A part a search cannot go without, or the validation error naming it.
fn needs<T>(part: Option<T>, what: &str) -> Result<T, ApiError> {
    part.ok_or_else(|| ApiError::validation(format!("search needs `{what}`")))
}

/// One page of `results` (already in a stable order).
fn search_response<T: Serialize>(results: Vec<T>, page: Option<PageDto>) -> Result<Response, ApiError> {
    let page = page.unwrap_or_default();
    let total = results.len();
    let start = token_offset(page.token.as_deref())?.min(total);
    let end = match page.limit {
        None | Some(0) => total,
        Some(limit) => start.saturating_add(limit).min(total),
    };
    let next_token = if end < total { offset_token(end) } else { String::new() };
    let results: Vec<T> = results.into_iter().skip(start).take(end - start).collect();
    let count = results.len();
    Ok(json_response(&SearchResponse { results, page: PageInfoDto { next_token, count, total } }, 64))
}

/// Orders results by their JSON text so that offsets mean the same thing from page to page.
fn stable_order<T: Serialize>(mut results: Vec<T>) -> Vec<T> {
    results.sort_by_cached_key(|result| serde_json::to_string(result).unwrap_or_default());
    results
}

async fn search_resource(Search { state, store_id, body }: Search) -> Result<Response, ApiError> {
    let user = needs(body.subject.as_ref(), "subject")?.name("subject")?;
    let resource = needs(body.resource, "resource.type")?;
    let action = needs(body.action, "action")?;
    let request = ListObjectsRequest {
        object_type: resource.entity_type.clone(),
        relation: action.name,
        user,
        context: body.options.context.map(|context| *context).unwrap_or_default(),
        ..Default::default()
    };
    let objects = blocking(move || Ok(state.engine.store(&store_id)?.list_objects(&request)?.value)).await?;
    let results = objects
        .iter()
        .filter_map(|object| object.split_once(':'))
        .map(|(entity_type, id)| EntityResultDto { entity_type, id })
        .collect();
    search_response(stable_order(results), body.page)
}

async fn search_subject(Search { state, store_id, body }: Search) -> Result<Response, ApiError> {
    let object = needs(body.resource.as_ref(), "resource")?.name("resource")?;
    let subject = needs(body.subject, "subject.type")?;
    let action = needs(body.action, "action")?;
    let request = ListUsersRequest {
        object,
        relation: action.name,
        user_filters: vec![UserFilterSpec { type_name: subject.entity_type, relation: None }],
        context: body.options.context.map(|context| *context).unwrap_or_default(),
        ..Default::default()
    };
    let users = blocking(move || Ok(state.engine.store(&store_id)?.list_users(&request)?.value)).await?;
    let results = users
        .iter()
        .filter_map(|user| match user {
            Subject::Object(object) => Some(EntityResultDto { entity_type: &object.object_type, id: &object.id }),
            Subject::Wildcard(type_name) => Some(EntityResultDto { entity_type: type_name, id: "*" }),
            Subject::Userset { .. } => None,
        })
        .collect();
    search_response(stable_order(results), body.page)
}

async fn search_action(Search { state, store_id, body }: Search) -> Result<Response, ApiError> {
    let user = needs(body.subject.as_ref(), "subject")?.name("subject")?;
    let resource = needs(body.resource, "resource")?;
    let object = resource.name("resource")?;
    let context = body.options.context.map(|context| *context).unwrap_or_default();
    let page = body.page;
    let results = blocking(move || {
        let model = state.engine.store(&store_id)?.model(None)?;
        let type_def = model
            .model
            .type_def(&resource.entity_type)
            .ok_or_else(|| EngineError::TypeNotFound(resource.entity_type.clone()))?;
        let mut results = Vec::new();
        for relation in &type_def.relations {
            let request = CheckRequest {
                object: object.clone(),
                relation: relation.name.clone(),
                user: user.clone(),
                context: context.clone(),
                model_id: Some(model.id.clone()),
                ..Default::default()
            };
            if timed_check(&state, &store_id, &request)? {
                results.push(ActionResultDto { name: relation.name.clone() });
            }
        }
        Ok(results)
    })
    .await?;
    // Relations come in the model's order, which is stable.
    search_response(results, page)
}

async fn configuration(
    StorePath { state, store_id }: StorePath,
    headers: HeaderMap,
) -> Result<Json<ConfigurationDto>, ApiError> {
    state.engine.get_store(&store_id)?;
    Ok(configuration_json(&headers, &format!("/stores/{store_id}/access/v1")))
}

async fn root_configuration(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<ConfigurationDto>, ApiError> {
    let store_id = state.authzen_store.as_deref().ok_or(ApiError::AuthzenStoreNotConfigured)?;
    state.engine.get_store(store_id)?;
    Ok(configuration_json(&headers, "/access/v1"))
}

/// The AuthZEN metadata document (`/.well-known/authzen-configuration`).
#[derive(Debug, Serialize, JsonSchema)]
struct ConfigurationDto {
    policy_decision_point: String,
    access_evaluation_endpoint: String,
    access_evaluations_endpoint: String,
    search_subject_endpoint: String,
    search_resource_endpoint: String,
    search_action_endpoint: String,
}

/// The AuthZEN metadata document for endpoints under `prefix`.
fn configuration_json(headers: &HeaderMap, prefix: &str) -> Json<ConfigurationDto> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let base = format!("http://{host}");
    let endpoint = |path: &str| format!("{base}{prefix}/{path}");
    Json(ConfigurationDto {
        access_evaluation_endpoint: endpoint("evaluation"),
        access_evaluations_endpoint: endpoint("evaluations"),
        search_subject_endpoint: endpoint("search/subject"),
        search_resource_endpoint: endpoint("search/resource"),
        search_action_endpoint: endpoint("search/action"),
        policy_decision_point: base,
    })
}
