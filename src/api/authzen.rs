//! AuthZEN 1.0 routes under `/stores/{id}/access/v1/`: `evaluation`, `evaluations`,
//! `search/{resource,subject,action}`, and the per-store `/.well-known/authzen-configuration`;
//! the same at the root (`/access/v1/...`, `/.well-known/authzen-configuration`) for the store
//! configured with `--authzen-store`, and a 404 `authzen_store_not_configured` without one.
//!
//! Mapping: `subject{type,id}` → user `type:id`, `resource{type,id}` → object `type:id`,
//! `action{name}` → relation. Invariant: a deny is `200 {"decision": false}`; when
//! `context.agent{type,id}` is present (the MCP profile) the decision is the OBO check of the chain
//! `[subject, agent]` (`Engine::obo_check`): the agent must hold `delegate` on the subject, and
//! both must hold the relation.
//! Must not import `store`, `index` or `eval`.

use super::agent::denial_json;
use super::consistency::{deserialize_revision, require_revision};
use super::decisions::{record, Decision, DecisionMeta, RequestId};
use super::dto::{offset_token, token_offset, ApiJson};
use super::query::{timed_check, timed_check_answer};
use super::{blocking, ApiError, AppState, RouteTable};
use crate::engine::{CheckRequest, EngineError, ListObjectsRequest, ListUsersRequest, OboCheckRequest, UserFilterSpec};
use crate::tuple::{Context, Subject};
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

pub(super) fn routes() -> RouteTable {
    RouteTable::new()
        .route("/stores/{store_id}/access/v1/evaluation", post(evaluation))
        .route("/stores/{store_id}/access/v1/evaluations", post(evaluations))
        .route("/stores/{store_id}/access/v1/search/resource", post(search_resource))
        .route("/stores/{store_id}/access/v1/search/subject", post(search_subject))
        .route("/stores/{store_id}/access/v1/search/action", post(search_action))
        .route("/.well-known/authzen-configuration/stores/{store_id}", get(configuration))
        .route("/access/v1/evaluation", post(evaluation))
        .route("/access/v1/evaluations", post(evaluations))
        .route("/access/v1/search/resource", post(search_resource))
        .route("/access/v1/search/subject", post(search_subject))
        .route("/access/v1/search/action", post(search_action))
        .route("/.well-known/authzen-configuration", get(root_configuration))
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
#[derive(Debug, Clone, Default, Deserialize)]
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
#[derive(Debug, Clone, Default, Deserialize)]
struct ActionDto {
    name: String,
}

/// One evaluation; in `evaluations` each field falls back to the request's top-level one.
#[derive(Debug, Clone, Default, Deserialize)]
struct EvaluationDto {
    #[serde(default)]
    subject: Option<EntityDto>,
    #[serde(default)]
    resource: Option<EntityDto>,
    #[serde(default)]
    action: Option<ActionDto>,
    #[serde(default)]
    context: Option<Context>,
    /// Writ's extension: answer from revision N or later.
    #[serde(default, deserialize_with = "deserialize_revision")]
    at_least_revision: Option<u64>,
    /// Writ's extension: the caller's context for the decision log.
    #[serde(default)]
    audit: Option<Context>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct EvaluationsOptionsDto {
    #[serde(default)]
    evaluations_semantic: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct EvaluationsDto {
    #[serde(flatten)]
    defaults: EvaluationDto,
    #[serde(default)]
    evaluations: Vec<EvaluationDto>,
    #[serde(default)]
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
    let context = evaluation.context.clone().unwrap_or_default();
    let (principals, allowed, denied_by, revision) = match context.get("agent") {
        None => {
            let request = CheckRequest {
                object: object.clone(),
                relation: relation.clone(),
                user: subject.clone(),
                context: context.clone(),
                ..Default::default()
            };
            let answer = timed_check_answer(state, store_id, &request)?;
            let denied_by = (!answer.value).then(|| {
                json!({"kind": "principal", "subject": subject,
                    "message": format!("`{subject}` does not hold `{relation}` on `{object}`")})
            });
            (vec![subject], answer.value, denied_by, answer.revision)
        }
        Some(agent) => {
            let agent: EntityDto = serde_json::from_value(agent.clone())
                .map_err(|e| ApiError::validation(format!("`context.agent` must be `{{type, id}}`: {e}")))?;
            let request = OboCheckRequest {
                principals: vec![subject, agent.name("context.agent")?],
                relation: relation.clone(),
                object: object.clone(),
                context: context.clone(),
                audit: evaluation.audit.clone().unwrap_or_default(),
                ..Default::default()
            };
            let answer = state.engine.obo_check(store_id, &request);
            state.metrics.observe_check(started.elapsed());
            let answer = answer?;
            let denied_by = answer.value.denied_by.as_ref().map(denial_json);
            (request.principals, answer.value.allowed, denied_by, answer.revision)
        }
    };
    let principal_names: Vec<&str> = principals.iter().map(String::as_str).collect();
    let meta = DecisionMeta { request_id, started, audit: evaluation.audit.as_ref() };
    let decision = Decision {
        store_id,
        model_id: None,
        principals: &principal_names,
        relation: &relation,
        object: &object,
        allowed,
        denied_by,
        revision,
    };
    record(state, decision, &meta);
    Ok(allowed)
}

async fn evaluation(
    State(state): State<AppState>,
    AuthzenStore(store_id): AuthzenStore,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<EvaluationDto>,
) -> Result<Json<Value>, ApiError> {
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let decision = decide(&state, &store_id, &body, &request_id)?;
    Ok(Json(json!({"decision": decision})))
}

fn merged(defaults: &EvaluationDto, item: EvaluationDto) -> EvaluationDto {
    EvaluationDto {
        subject: item.subject.or_else(|| defaults.subject.clone()),
        resource: item.resource.or_else(|| defaults.resource.clone()),
        action: item.action.or_else(|| defaults.action.clone()),
        context: item.context.or_else(|| defaults.context.clone()),
        at_least_revision: None,
        audit: item.audit.or_else(|| defaults.audit.clone()),
    }
}

async fn evaluations(
    State(state): State<AppState>,
    AuthzenStore(store_id): AuthzenStore,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<EvaluationsDto>,
) -> Result<Json<Value>, ApiError> {
    super::limits::batch_size(body.evaluations.len(), "evaluations", &state.options)?;
    require_revision(&state, &store_id, body.defaults.at_least_revision).await?;
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
        return Ok(Json(json!({"evaluations": [{"decision": decision}]})));
    }
    let results = blocking(move || {
        let mut results = Vec::with_capacity(body.evaluations.len());
        for item in body.evaluations {
            let evaluation = merged(&body.defaults, item);
            let (decision, entry) = match decide(&state, &store_id, &evaluation, &request_id) {
                Ok(decision) => (decision, json!({"decision": decision})),
                Err(ApiError::Engine(EngineError::StoreNotFound(id))) => {
                    return Err(EngineError::StoreNotFound(id).into())
                }
                Err(error) => (
                    false,
                    json!({"decision": false, "context": {"error": {"status": 400, "message": error.to_string()}}}),
                ),
            };
            results.push(entry);
            if stop_on == Some(decision) {
                break;
            }
        }
        Ok(results)
    })
    .await?;
    Ok(Json(json!({"evaluations": results})))
}

#[derive(Debug, Clone, Default, Deserialize)]
struct SearchDto {
    #[serde(default)]
    subject: Option<EntityDto>,
    #[serde(default)]
    resource: Option<EntityDto>,
    #[serde(default)]
    action: Option<ActionDto>,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default, deserialize_with = "deserialize_revision")]
    at_least_revision: Option<u64>,
    #[serde(default)]
    page: Option<PageDto>,
}

/// AuthZEN search paging: `page: {token?, limit?}`; a missing or zero `limit` (a Go client's unset
/// value) means every result.
#[derive(Debug, Clone, Default, Deserialize)]
struct PageDto {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

/// One page of `results` (already in a stable order) with `page.next_token` (empty on the last
/// page), `count` and `total`.
fn search_response(results: Vec<Value>, page: Option<PageDto>) -> Result<Json<Value>, ApiError> {
    let page = page.unwrap_or_default();
    let total = results.len();
    let start = token_offset(page.token.as_deref())?.min(total);
    let end = match page.limit {
        None | Some(0) => total,
        Some(limit) => start.saturating_add(limit).min(total),
    };
    let next_token = if end < total { offset_token(end) } else { String::new() };
    let results: Vec<Value> = results.into_iter().skip(start).take(end - start).collect();
    let count = results.len();
    Ok(Json(json!({"results": results, "page": {"next_token": next_token, "count": count, "total": total}})))
}

/// Orders results by their JSON text so that offsets mean the same thing from page to page.
fn stable_order(mut results: Vec<Value>) -> Vec<Value> {
    results.sort_by_cached_key(Value::to_string);
    results
}

async fn search_resource(
    State(state): State<AppState>,
    AuthzenStore(store_id): AuthzenStore,
    ApiJson(body): ApiJson<SearchDto>,
) -> Result<Json<Value>, ApiError> {
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let user = body.subject.as_ref().ok_or_else(|| ApiError::validation("search needs `subject`"))?.name("subject")?;
    let resource = body.resource.ok_or_else(|| ApiError::validation("search needs `resource.type`"))?;
    let action = body.action.ok_or_else(|| ApiError::validation("search needs `action`"))?;
    let request = ListObjectsRequest {
        object_type: resource.entity_type.clone(),
        relation: action.name,
        user,
        context: body.context.unwrap_or_default(),
        ..Default::default()
    };
    let objects = blocking(move || Ok(state.engine.list_objects(&store_id, &request)?.value)).await?;
    let results = objects
        .iter()
        .filter_map(|object| object.split_once(':'))
        .map(|(object_type, id)| json!({"type": object_type, "id": id}))
        .collect();
    search_response(stable_order(results), body.page)
}

async fn search_subject(
    State(state): State<AppState>,
    AuthzenStore(store_id): AuthzenStore,
    ApiJson(body): ApiJson<SearchDto>,
) -> Result<Json<Value>, ApiError> {
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let object =
        body.resource.as_ref().ok_or_else(|| ApiError::validation("search needs `resource`"))?.name("resource")?;
    let subject = body.subject.ok_or_else(|| ApiError::validation("search needs `subject.type`"))?;
    let action = body.action.ok_or_else(|| ApiError::validation("search needs `action`"))?;
    let request = ListUsersRequest {
        object,
        relation: action.name,
        user_filters: vec![UserFilterSpec { type_name: subject.entity_type, relation: None }],
        context: body.context.unwrap_or_default(),
        ..Default::default()
    };
    let users = blocking(move || Ok(state.engine.list_users(&store_id, &request)?.value)).await?;
    let results = users
        .iter()
        .filter_map(|user| match user {
            Subject::Object(object) => Some(json!({"type": object.object_type, "id": object.id})),
            Subject::Wildcard(type_name) => Some(json!({"type": type_name, "id": "*"})),
            Subject::Userset { .. } => None,
        })
        .collect();
    search_response(stable_order(results), body.page)
}

async fn search_action(
    State(state): State<AppState>,
    AuthzenStore(store_id): AuthzenStore,
    ApiJson(body): ApiJson<SearchDto>,
) -> Result<Json<Value>, ApiError> {
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let user = body.subject.as_ref().ok_or_else(|| ApiError::validation("search needs `subject`"))?.name("subject")?;
    let resource = body.resource.ok_or_else(|| ApiError::validation("search needs `resource`"))?;
    let object = resource.name("resource")?;
    let context = body.context.unwrap_or_default();
    let page = body.page;
    let results = blocking(move || {
        let model = state.engine.model(&store_id, None)?;
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
                results.push(json!({"name": relation.name}));
            }
        }
        Ok(results)
    })
    .await?;
    // Relations come in the model's order, which is stable.
    search_response(results, page)
}

async fn configuration(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    state.engine.get_store(&store_id)?;
    Ok(configuration_json(&headers, &format!("/stores/{store_id}/access/v1")))
}

async fn root_configuration(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let store_id = state.authzen_store.as_deref().ok_or(ApiError::AuthzenStoreNotConfigured)?;
    state.engine.get_store(store_id)?;
    Ok(configuration_json(&headers, "/access/v1"))
}

/// The AuthZEN metadata document for endpoints under `prefix`.
fn configuration_json(headers: &HeaderMap, prefix: &str) -> Json<Value> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let base = format!("http://{host}");
    let endpoint = |path: &str| format!("{base}{prefix}/{path}");
    Json(json!({
        "policy_decision_point": base,
        "access_evaluation_endpoint": endpoint("evaluation"),
        "access_evaluations_endpoint": endpoint("evaluations"),
        "search_subject_endpoint": endpoint("search/subject"),
        "search_resource_endpoint": endpoint("search/resource"),
        "search_action_endpoint": endpoint("search/action"),
    }))
}
