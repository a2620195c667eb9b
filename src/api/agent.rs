//! Writ's agent routes under `/stores/{store_id}/writ/`: `obo-check`, `audience-check` and
//! `filter` (DESIGN §5b), thin handlers over `Engine::{obo_check, audience_check, filter}`.
//!
//! Invariant: every answer carries the `revision` it was computed at; a deny is a `200` answer
//! with `allowed: false` (and `denied_by`), never an error; bad input is a `400` whose message names
//! the bad field. The caller's `audit` object goes to the decision log with each decision; it never
//! affects one. Recorded: an OBO check as one decision; an audience check as one per object (the
//! audience as principals, `denied_for` in `denied_by`); a filter as one per call, on object
//! `type:` (all candidates), allowed only when every candidate id is visible, with the count of
//! hidden ids (or the failing delegation link) in `denied_by`.
//! Must not import `store`, `index` or `eval`.

use super::consistency::{deserialize_revision, require_revision};
use super::decisions::{record, Decision, DecisionMeta, RequestId};
use super::dto::{contextual_tuples, ApiJson, ContextualTuplesDto};
use super::{blocking, ApiError, AppState, RouteTable};
use crate::engine::{
    AudienceCheckRequest, AudienceResult, Denial, FilterRequest, FilterStrategy, OboCheckRequest, OboDecision,
};
use crate::tuple::Context;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub(super) fn routes() -> RouteTable {
    RouteTable::new()
        .route("/stores/{store_id}/writ/obo-check", post(obo_check))
        .route("/stores/{store_id}/writ/audience-check", post(audience_check))
        .route("/stores/{store_id}/writ/filter", post(filter))
}

/// `POST writ/obo-check` body.
#[derive(Debug, Clone, Deserialize)]
struct OboCheckDto {
    principals: Vec<String>,
    relation: String,
    object: String,
    #[serde(default)]
    delegation_relation: Option<String>,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    contextual_tuples: Option<ContextualTuplesDto>,
    #[serde(default)]
    authorization_model_id: Option<String>,
    #[serde(default, deserialize_with = "deserialize_revision")]
    at_least_revision: Option<u64>,
    #[serde(default)]
    audit: Option<Context>,
}

/// `POST writ/audience-check` body.
#[derive(Debug, Clone, Deserialize)]
struct AudienceCheckDto {
    audience: Vec<String>,
    relation: String,
    objects: Vec<String>,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    contextual_tuples: Option<ContextualTuplesDto>,
    #[serde(default)]
    authorization_model_id: Option<String>,
    #[serde(default, deserialize_with = "deserialize_revision")]
    at_least_revision: Option<u64>,
    #[serde(default)]
    audit: Option<Context>,
}

/// `POST writ/filter` body.
#[derive(Debug, Clone, Deserialize)]
struct FilterDto {
    principals: Vec<String>,
    relation: String,
    object_type: String,
    ids: Vec<String>,
    #[serde(default)]
    delegation_relation: Option<String>,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    contextual_tuples: Option<ContextualTuplesDto>,
    #[serde(default)]
    authorization_model_id: Option<String>,
    #[serde(default, deserialize_with = "deserialize_revision")]
    at_least_revision: Option<u64>,
    #[serde(default)]
    audit: Option<Context>,
}

fn model_id(id: Option<String>) -> Option<String> {
    id.filter(|id| !id.is_empty())
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

pub(super) fn denial_json(denial: &Denial) -> Value {
    json!({"kind": denial.kind.as_str(), "subject": denial.subject, "message": denial.message})
}

/// The decision log's view of a request: an empty `audit` object is recorded as none.
fn decision_meta<'a>(request_id: &'a str, started: std::time::Instant, audit: &'a Context) -> DecisionMeta<'a> {
    DecisionMeta { request_id, started, audit: (!audit.is_empty()).then_some(audit) }
}

fn decision_json(decision: &OboDecision, revision: u64) -> Value {
    let mut body = Map::new();
    body.insert("allowed".into(), json!(decision.allowed));
    if let Some(denial) = &decision.denied_by {
        body.insert("denied_by".into(), denial_json(denial));
    }
    body.insert("revision".into(), json!(revision));
    Value::Object(body)
}

async fn obo_check(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<OboCheckDto>,
) -> Result<Json<Value>, ApiError> {
    within("principals", body.principals.len(), state.options.max_principals, "too_many_principals")?;
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let request = OboCheckRequest {
        principals: body.principals,
        relation: body.relation,
        object: body.object,
        delegation_relation: body.delegation_relation,
        contextual_tuples: contextual_tuples(&body.contextual_tuples)?,
        context: body.context.unwrap_or_default(),
        model_id: model_id(body.authorization_model_id),
        audit: body.audit.unwrap_or_default(),
    };
    let started = std::time::Instant::now();
    let answer = state.engine.obo_check(&store_id, &request);
    state.metrics.observe_check(started.elapsed());
    let answer = answer?;
    let principals: Vec<&str> = request.principals.iter().map(String::as_str).collect();
    let decision = Decision {
        store_id: &store_id,
        model_id: request.model_id.as_deref(),
        principals: &principals,
        relation: &request.relation,
        object: &request.object,
        allowed: answer.value.allowed,
        denied_by: answer.value.denied_by.as_ref().map(denial_json),
        revision: answer.revision,
    };
    record(&state, decision, &decision_meta(&request_id, started, &request.audit));
    Ok(Json(decision_json(&answer.value, answer.revision)))
}

fn audience_json(result: &AudienceResult) -> Value {
    json!({"object": result.object, "allowed": result.allowed, "denied_for": result.denied_for})
}

async fn audience_check(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<AudienceCheckDto>,
) -> Result<Json<Value>, ApiError> {
    within("audience", body.audience.len(), state.options.max_principals, "too_many_principals")?;
    within("objects", body.objects.len(), state.options.max_filter_ids, "too_many_ids")?;
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let request = AudienceCheckRequest {
        audience: body.audience,
        relation: body.relation,
        objects: body.objects,
        contextual_tuples: contextual_tuples(&body.contextual_tuples)?,
        context: body.context.unwrap_or_default(),
        model_id: model_id(body.authorization_model_id),
        audit: body.audit.unwrap_or_default(),
    };
    let started = std::time::Instant::now();
    let answer = blocking(move || {
        let answer = state.engine.audience_check(&store_id, &request)?;
        let audience: Vec<&str> = request.audience.iter().map(String::as_str).collect();
        let meta = decision_meta(&request_id, started, &request.audit);
        for result in &answer.value {
            let decision = Decision {
                store_id: &store_id,
                model_id: request.model_id.as_deref(),
                principals: &audience,
                relation: &request.relation,
                object: &result.object,
                allowed: result.allowed,
                denied_by: (!result.allowed).then(|| {
                    json!({"kind": "audience", "subjects": result.denied_for,
                        "message": format!("{} of the audience may not `{}` `{}`", result.denied_for.len(),
                            request.relation, result.object)})
                }),
                revision: answer.revision,
            };
            record(&state, decision, &meta);
        }
        Ok(answer)
    })
    .await?;
    let results: Vec<Value> = answer.value.iter().map(audience_json).collect();
    Ok(Json(json!({"results": results, "revision": answer.revision})))
}

async fn filter(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<FilterDto>,
) -> Result<Json<Value>, ApiError> {
    within("principals", body.principals.len(), state.options.max_principals, "too_many_principals")?;
    within("ids", body.ids.len(), state.options.max_filter_ids, "too_many_ids")?;
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let request = FilterRequest {
        principals: body.principals,
        relation: body.relation,
        object_type: body.object_type,
        ids: body.ids,
        delegation_relation: body.delegation_relation,
        contextual_tuples: contextual_tuples(&body.contextual_tuples)?,
        context: body.context.unwrap_or_default(),
        model_id: model_id(body.authorization_model_id),
        strategy: FilterStrategy::Auto,
        audit: body.audit.unwrap_or_default(),
    };
    let started = std::time::Instant::now();
    let answer = blocking(move || {
        let answer = state.engine.filter(&store_id, &request)?;
        let principals: Vec<&str> = request.principals.iter().map(String::as_str).collect();
        let hidden = request.ids.len() - answer.value.allowed_ids.len();
        let denied_by = match &answer.value.denied_by {
            Some(denial) => Some(denial_json(denial)),
            None if hidden > 0 => Some(json!({"kind": "filtered", "hidden": hidden, "of": request.ids.len(),
                "message": format!("{hidden} of {} `{}` ids are not visible", request.ids.len(), request.object_type)})),
            None => None,
        };
        let decision = Decision {
            store_id: &store_id,
            model_id: request.model_id.as_deref(),
            principals: &principals,
            relation: &request.relation,
            object: &format!("{}:", request.object_type),
            allowed: denied_by.is_none(),
            denied_by,
            revision: answer.revision,
        };
        record(&state, decision, &decision_meta(&request_id, started, &request.audit));
        let mut response = Map::new();
        response.insert("allowed_ids".into(), json!(answer.value.allowed_ids));
        if let Some(denial) = &answer.value.denied_by {
            response.insert("denied_by".into(), denial_json(denial));
        }
        response.insert("revision".into(), json!(answer.revision));
        Ok(response)
    })
    .await?;
    Ok(Json(Value::Object(answer)))
}
