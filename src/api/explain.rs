//! `POST /stores/{store_id}/writ/explain` (DESIGN §9): a thin handler over
//! `StoreHandle::{explain, explain_obo, explain_audience}`. The body is a check body (`tuple_key`), an
//! OBO body (`principals`, `relation`, `object`, `delegation_relation`) or an audience body
//! (`audience`, `relation`, `object`), with the usual
//! `contextual_tuples`, `context`, `authorization_model_id` and `at_least_revision`.
//!
//! `GET /stores/{store_id}/writ/decisions/{decision_id}/explain` explains a recorded decision
//! again, at the current revision, from its record: an audience's record explains every member
//! (`denied_by` names those who deny); otherwise one principal is a check, several an OBO chain
//! (with the delegation relation recorded, the default for older records); the recorded model
//! when it has one. The answer adds the record (`decision`) and `revision_differs`, true when the
//! store moved on since.
//!
//! Invariant: `allowed` equals what `check` / `obo-check` answer for the same body; an
//! explanation is computed per request, never cached.
//! Must not import `store`, `index` or `eval`.

use super::auth::{Access, Scope};
use super::consistency::require_revision;
use super::dto::{ApiJson, RequestOptionsDto, StorePath, TupleKeyDto};
use super::openapi::Operation;
use super::routes::{get, post};
use super::{blocking, ApiError, AppState, RouteTable};
use crate::engine::{AudienceCheckRequest, CheckRequest, Denial, ExplainNode, Explanation, OboCheckRequest, Reason};
use crate::tuple::{Context, Tuple};
use crate::wire::TupleKeyAnswer;
use axum::extract::{Path, State};
use axum::Json;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(super) fn routes() -> RouteTable {
    let reader = Access::reader(Scope::PathStore);
    RouteTable::new()
        .route(
            "/stores/{store_id}/writ/explain",
            post(reader, Operation::json::<ExplainRequestDto, ExplanationDto>(), explain),
        )
        .route(
            "/stores/{store_id}/writ/decisions/{decision_id}/explain",
            get(reader, Operation::answers::<DecisionExplanationDto>(), explain_decision),
        )
}

/// `POST writ/explain` body: exactly one of `tuple_key` (a check), `principals` (an OBO chain)
/// or `audience` (an audience, for one object).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
struct ExplainRequestDto {
    #[serde(default)]
    tuple_key: Option<TupleKeyDto>,
    #[serde(default)]
    principals: Option<Vec<String>>,
    #[serde(default)]
    audience: Option<Vec<String>>,
    #[serde(default)]
    relation: Option<String>,
    #[serde(default)]
    object: Option<String>,
    #[serde(default)]
    delegation_relation: Option<String>,
    /// `context`, `contextual_tuples`, `authorization_model_id`, `at_least_revision`.
    #[serde(flatten)]
    options: RequestOptionsDto,
}

/// The engine request a body asks for.
pub(super) enum ExplainRequest {
    /// A check body.
    Check(CheckRequest),
    /// An OBO body.
    Obo(OboCheckRequest),
    /// An audience body (one object).
    Audience(AudienceCheckRequest),
}

impl TryFrom<ExplainRequestDto> for ExplainRequest {
    type Error = ApiError;

    fn try_from(mut dto: ExplainRequestDto) -> Result<Self, ApiError> {
        let options = dto.options.query()?;
        if let Some(audience) = dto.audience {
            if dto.tuple_key.is_some() || dto.principals.is_some() || dto.delegation_relation.is_some() {
                return Err(ApiError::validation(
                    "an audience body (`audience`) takes no `tuple_key`, `principals` or `delegation_relation`",
                ));
            }
            let missing = |field: &str| ApiError::validation(format!("an audience body (`audience`) needs `{field}`"));
            return Ok(ExplainRequest::Audience(
                AudienceCheckRequest {
                    audience,
                    relation: dto.relation.ok_or_else(|| missing("relation"))?,
                    objects: vec![dto.object.ok_or_else(|| missing("object"))?],
                    ..AudienceCheckRequest::default()
                }
                .with_options(options),
            ));
        }
        match (dto.tuple_key, dto.principals) {
            (Some(key), None) => {
                if dto.relation.is_some() || dto.object.is_some() || dto.delegation_relation.is_some() {
                    return Err(ApiError::validation(
                        "a check body (`tuple_key`) takes no `relation`, `object` or `delegation_relation`",
                    ));
                }
                Ok(ExplainRequest::Check(CheckRequest::new(key.object, key.relation, key.user, options)))
            }
            (None, Some(principals)) => {
                let missing = |field: &str| ApiError::validation(format!("an OBO body (`principals`) needs `{field}`"));
                Ok(ExplainRequest::Obo(
                    OboCheckRequest {
                        principals,
                        relation: dto.relation.ok_or_else(|| missing("relation"))?,
                        object: dto.object.ok_or_else(|| missing("object"))?,
                        delegation_relation: dto.delegation_relation,
                        ..OboCheckRequest::default()
                    }
                    .with_options(options),
                ))
            }
            (Some(_), Some(_)) => Err(ApiError::validation("give either `tuple_key` or `principals`, not both")),
            (None, None) => Err(ApiError::validation(
                "give `tuple_key` (a check), `principals` (an OBO chain) or `audience` (an audience)",
            )),
        }
    }
}

async fn explain(
    StorePath { state, store_id }: StorePath,
    ApiJson(body): ApiJson<ExplainRequestDto>,
) -> Result<Json<ExplanationDto>, ApiError> {
    for (field, principals) in [("principals", &body.principals), ("audience", &body.audience)] {
        if let Some(principals) = principals.as_ref().filter(|p| p.len() > state.options.max_principals) {
            return Err(ApiError::BadRequest {
                code: "too_many_principals",
                message: format!(
                    "`{field}` has {} entries, more than the limit of {}",
                    principals.len(),
                    state.options.max_principals
                ),
            });
        }
    }
    require_revision(&state, &store_id, body.options.at_least_revision).await?;
    let request = ExplainRequest::try_from(body)?;
    let engine = state.engine.clone();
    let answer = blocking(move || {
        Ok(match &request {
            ExplainRequest::Check(check) => engine.store(&store_id)?.explain(check)?,
            ExplainRequest::Obo(obo) => engine.store(&store_id)?.explain_obo(obo)?,
            ExplainRequest::Audience(audience) => engine.store(&store_id)?.explain_audience(audience)?,
        })
    })
    .await?;
    Ok(Json(ExplanationDto::new(&answer.value, answer.revision)))
}

/// The record a decision explanation starts from.
#[derive(Debug, Clone, Serialize, JsonSchema)]
struct RecordedDecisionDto {
    decision_id: String,
    time: String,
    principals: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delegation_relation: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    audience: bool,
    relation: String,
    object: String,
    allowed: bool,
    revision: u64,
    authorization_model_id: String,
    request_id: String,
}

/// `GET writ/decisions/{decision_id}/explain` answer: the explanation now, and the record.
#[derive(Debug, Clone, Serialize, JsonSchema)]
struct DecisionExplanationDto {
    #[serde(flatten)]
    explanation: ExplanationDto,
    decision: RecordedDecisionDto,
    /// True when the explanation's revision is not the one the decision was made at.
    revision_differs: bool,
}

async fn explain_decision(
    State(state): State<AppState>,
    Path((store_id, decision_id)): Path<(String, String)>,
) -> Result<Json<DecisionExplanationDto>, ApiError> {
    let cursor = super::decisions::parse_decision_id(&decision_id)?;
    let engine = state.engine.clone();
    let (record, answer) = blocking(move || {
        let record =
            engine.decision_log().get(&engine.store(&store_id)?, cursor)?.ok_or_else(|| ApiError::NotFound {
                code: "decision_not_found",
                message: format!("no decision `{decision_id}` in the decision log (never recorded, or trimmed)"),
            })?;
        if record.object.ends_with(':') {
            return Err(ApiError::validation(format!(
                "decision `{decision_id}` is a filter over a list of `{}` ids; only a decision about one object can be \
                 explained",
                record.object.trim_end_matches(':')
            )));
        }
        let model_id = (!record.model_id.is_empty()).then(|| record.model_id.to_string());
        let answer = match record.principals.as_slice() {
            audience if record.audience => engine.store(&store_id)?.explain_audience(&AudienceCheckRequest {
                audience: audience.to_vec(),
                relation: record.relation.clone(),
                objects: vec![record.object.clone()],
                contextual_tuples: Vec::new(),
                context: Context::default(),
                model_id,
                audit: Context::default(),
            })?,
            [user] => engine.store(&store_id)?.explain(&CheckRequest {
                object: record.object.clone(),
                relation: record.relation.clone(),
                user: user.clone(),
                contextual_tuples: Vec::new(),
                context: Context::default(),
                model_id,
            })?,
            principals => engine.store(&store_id)?.explain_obo(&OboCheckRequest {
                principals: principals.to_vec(),
                relation: record.relation.clone(),
                object: record.object.clone(),
                delegation_relation: record.delegation_relation.clone(),
                contextual_tuples: Vec::new(),
                context: Context::default(),
                model_id,
                audit: Context::default(),
            })?,
        };
        Ok((record, answer))
    })
    .await?;
    let decision = RecordedDecisionDto {
        decision_id: super::decisions::decision_id(cursor),
        time: super::time::format_rfc3339(record.time_ms),
        principals: record.principals,
        delegation_relation: record.delegation_relation,
        audience: record.audience,
        relation: record.relation,
        object: record.object,
        allowed: record.allowed,
        revision: record.revision,
        authorization_model_id: record.model_id.to_string(),
        request_id: record.request_id.to_string(),
    };
    Ok(Json(DecisionExplanationDto {
        explanation: ExplanationDto::new(&answer.value, answer.revision),
        revision_differs: answer.revision != decision.revision,
        decision,
    }))
}

/// A tuple key in OpenFGA's response shape, with `contextual` on a `path` entry.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(super) struct TupleKeyOut {
    #[serde(flatten)]
    key: TupleKeyAnswer,
    #[serde(skip_serializing_if = "Option::is_none")]
    contextual: Option<bool>,
}

impl From<&Tuple> for TupleKeyOut {
    fn from(tuple: &Tuple) -> Self {
        TupleKeyOut { key: TupleKeyAnswer::from(tuple), contextual: None }
    }
}

/// The answer of DESIGN §9.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(super) struct ExplanationDto {
    allowed: bool,
    revision: u64,
    authorization_model_id: String,
    tree: NodeDto,
    path: Vec<TupleKeyOut>,
    would_allow: Vec<TupleKeyOut>,
    cut: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    denied_by: Option<Denial>,
}

impl ExplanationDto {
    /// The wire answer for an explanation computed at `revision`.
    pub(super) fn new(explanation: &Explanation, revision: u64) -> Self {
        ExplanationDto {
            allowed: explanation.allowed,
            revision,
            authorization_model_id: explanation.model_id.clone(),
            tree: NodeDto::from(&explanation.tree),
            path: explanation
                .path
                .iter()
                .map(|entry| TupleKeyOut { contextual: Some(entry.contextual), ..TupleKeyOut::from(&entry.tuple) })
                .collect(),
            would_allow: explanation.would_allow.iter().map(TupleKeyOut::from).collect(),
            cut: explanation.cut,
            denied_by: explanation.denied_by.clone(),
        }
    }
}

/// One node of the tree; the fields a node does not have are left out.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(super) struct NodeDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    relation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rewrite: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tupleset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    computed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tuple: Option<TupleKeyOut>,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    excluded_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired_at: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    cut: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    children: Vec<NodeDto>,
}

impl From<&ExplainNode> for NodeDto {
    fn from(node: &ExplainNode) -> Self {
        let mut dto = NodeDto {
            object: node.object.clone(),
            relation: node.relation.clone(),
            subject: node.subject.clone(),
            rewrite: node.rewrite,
            tupleset: node.tupleset.clone(),
            computed: node.computed.clone(),
            tuple: node.tuple.as_ref().map(TupleKeyOut::from),
            result: node.result.as_str(),
            reason: node.reason.as_ref().map(Reason::as_str),
            excluded_by: None,
            condition: None,
            parameters: None,
            missing: None,
            message: None,
            expired_at: None,
            cut: node.cut,
            children: node.children.iter().map(NodeDto::from).collect(),
        };
        match &node.reason {
            Some(Reason::Excluded { by }) => dto.excluded_by = Some(by.clone()),
            Some(Reason::ConditionFalse { condition, parameters }) => {
                dto.condition = Some(condition.clone());
                dto.parameters = Some(parameters.clone());
            }
            Some(Reason::MissingContext { condition, missing }) => {
                dto.condition = Some(condition.clone());
                dto.missing = Some(missing.clone());
            }
            Some(Reason::ConditionError { condition, message }) => {
                dto.condition = Some(condition.clone());
                dto.message = Some(message.clone());
            }
            Some(Reason::Expired { at_ms }) => dto.expired_at = Some(super::time::format_rfc3339(*at_ms)),
            Some(Reason::NoTuple | Reason::TypeNotAllowed | Reason::DelegationMissing) | None => {}
        }
        dto
    }
}
