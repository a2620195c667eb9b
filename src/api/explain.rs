//! `POST /stores/{store_id}/writ/explain` (DESIGN §9): a thin handler over
//! `Engine::{explain, explain_obo}`. The body is a check body (`tuple_key`) or an OBO body
//! (`principals`, `relation`, `object`, `delegation_relation`), with the usual
//! `contextual_tuples`, `context`, `authorization_model_id` and `at_least_revision`.
//!
//! Invariant: `allowed` equals what `check` / `obo-check` answer for the same body; an
//! explanation is computed per request, never cached.
//! Must not import `store`, `index` or `eval`.

use super::consistency::{deserialize_revision, require_revision};
use super::dto::{contextual_tuples, tuple_key_json, ApiJson, ContextualTuplesDto, TupleKeyDto};
use super::{blocking, ApiError, AppState, RouteTable};
use crate::engine::{CheckRequest, ExplainNode, Explanation, OboCheckRequest, Reason};
use crate::tuple::Context;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Map, Value};

pub(super) fn routes() -> RouteTable {
    RouteTable::new().route("/stores/{store_id}/writ/explain", post(explain))
}

/// `POST writ/explain` body: exactly one of `tuple_key` (a check) or `principals` (an OBO chain).
#[derive(Debug, Clone, Default, Deserialize)]
struct ExplainRequestDto {
    #[serde(default)]
    tuple_key: Option<TupleKeyDto>,
    #[serde(default)]
    principals: Option<Vec<String>>,
    #[serde(default)]
    relation: Option<String>,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    delegation_relation: Option<String>,
    #[serde(default)]
    contextual_tuples: Option<ContextualTuplesDto>,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    authorization_model_id: Option<String>,
    #[serde(default, deserialize_with = "deserialize_revision")]
    at_least_revision: Option<u64>,
}

/// The engine request a body asks for.
enum ExplainRequest {
    Check(CheckRequest),
    Obo(OboCheckRequest),
}

impl TryFrom<ExplainRequestDto> for ExplainRequest {
    type Error = ApiError;

    fn try_from(dto: ExplainRequestDto) -> Result<Self, ApiError> {
        let contextual = contextual_tuples(&dto.contextual_tuples)?;
        let context = dto.context.unwrap_or_default();
        let model_id = dto.authorization_model_id.filter(|id| !id.is_empty());
        match (dto.tuple_key, dto.principals) {
            (Some(key), None) => {
                if dto.relation.is_some() || dto.object.is_some() || dto.delegation_relation.is_some() {
                    return Err(ApiError::validation(
                        "a check body (`tuple_key`) takes no `relation`, `object` or `delegation_relation`",
                    ));
                }
                Ok(ExplainRequest::Check(CheckRequest {
                    object: key.object,
                    relation: key.relation,
                    user: key.user,
                    contextual_tuples: contextual,
                    context,
                    model_id,
                }))
            }
            (None, Some(principals)) => {
                let missing = |field: &str| ApiError::validation(format!("an OBO body (`principals`) needs `{field}`"));
                Ok(ExplainRequest::Obo(OboCheckRequest {
                    principals,
                    relation: dto.relation.ok_or_else(|| missing("relation"))?,
                    object: dto.object.ok_or_else(|| missing("object"))?,
                    delegation_relation: dto.delegation_relation,
                    contextual_tuples: contextual,
                    context,
                    model_id,
                    audit: Context::default(),
                }))
            }
            (Some(_), Some(_)) => Err(ApiError::validation("give either `tuple_key` or `principals`, not both")),
            (None, None) => Err(ApiError::validation("give `tuple_key` (a check) or `principals` (an OBO chain)")),
        }
    }
}

async fn explain(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    ApiJson(body): ApiJson<ExplainRequestDto>,
) -> Result<Json<Value>, ApiError> {
    if let Some(principals) = &body.principals {
        if principals.len() > state.options.max_principals {
            return Err(ApiError::BadRequest {
                code: "too_many_principals",
                message: format!(
                    "`principals` has {} entries, more than the limit of {}",
                    principals.len(),
                    state.options.max_principals
                ),
            });
        }
    }
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let request = ExplainRequest::try_from(body)?;
    let engine = state.engine.clone();
    let answer = blocking(move || {
        Ok(match &request {
            ExplainRequest::Check(check) => engine.explain(&store_id, check)?,
            ExplainRequest::Obo(obo) => engine.explain_obo(&store_id, obo)?,
        })
    })
    .await?;
    Ok(Json(explanation_json(&answer.value, answer.revision)))
}

/// The answer of DESIGN §9.
fn explanation_json(explanation: &Explanation, revision: u64) -> Value {
    let path: Vec<Value> = explanation
        .path
        .iter()
        .map(|entry| {
            let mut key = tuple_key_json(&entry.tuple);
            if let Value::Object(map) = &mut key {
                map.insert("contextual".into(), Value::Bool(entry.contextual));
            }
            key
        })
        .collect();
    let mut answer = json!({
        "allowed": explanation.allowed,
        "revision": revision,
        "authorization_model_id": explanation.model_id,
        "tree": node_json(&explanation.tree),
        "path": path,
        "would_allow": explanation.would_allow.iter().map(tuple_key_json).collect::<Vec<_>>(),
        "cut": explanation.cut,
    });
    if let (Some(denial), Value::Object(map)) = (&explanation.denied_by, &mut answer) {
        map.insert("denied_by".into(), json!(denial));
    }
    answer
}

fn node_json(node: &ExplainNode) -> Value {
    let mut map = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            map.insert(key.to_string(), value);
        }
    };
    put("object", node.object.clone().map(Value::String));
    put("relation", node.relation.clone().map(Value::String));
    put("subject", node.subject.clone().map(Value::String));
    put("rewrite", node.rewrite.map(|r| Value::String(r.to_string())));
    put("tupleset", node.tupleset.clone().map(Value::String));
    put("computed", node.computed.clone().map(Value::String));
    put("tuple", node.tuple.as_ref().map(tuple_key_json));
    put("result", Some(Value::String(node.result.as_str().to_string())));
    if let Some(reason) = &node.reason {
        put("reason", Some(Value::String(reason.as_str().to_string())));
        match reason {
            Reason::Excluded { by } => put("excluded_by", Some(json!(by))),
            Reason::ConditionFalse { condition, parameters } => {
                put("condition", Some(json!(condition)));
                put("parameters", Some(json!(parameters)));
            }
            Reason::MissingContext { condition, missing } => {
                put("condition", Some(json!(condition)));
                put("missing", Some(json!(missing)));
            }
            Reason::ConditionError { condition, message } => {
                put("condition", Some(json!(condition)));
                put("message", Some(json!(message)));
            }
            Reason::Expired { at_ms } => put("expired_at", Some(json!(super::time::format_rfc3339(*at_ms)))),
            Reason::NoTuple | Reason::TypeNotAllowed | Reason::DelegationMissing => {}
        }
    }
    if node.cut {
        put("cut", Some(Value::Bool(true)));
    }
    if !node.children.is_empty() {
        put("children", Some(Value::Array(node.children.iter().map(node_json).collect())));
    }
    Value::Object(map)
}
