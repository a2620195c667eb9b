//! Writ's permission-aware retrieval routes under `/stores/{store_id}/writ/` (DESIGN §11):
//! `POST visibility`, thin handlers over the engine.
//!
//! Invariant: every answer carries the `revision` it was computed at; bad input is a `400`
//! `{code, message}` naming the bad field; a broken delegation link is an answer (nothing
//! visible, `denied_by`), not an error. These routes only read: a `reader` key may call them
//! (`auth.rs` lists the POSTs).
//! Must not import `store`, `index` or `eval`.

use super::consistency::{deserialize_revision, require_revision};
use super::dto::{json_response, ApiJson};
use super::{blocking, ApiError, AppState, RouteTable};
use crate::engine::{Denial, Visibility, VisibilityRequest};
use crate::tuple::Context;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use serde::{Deserialize, Serialize};

pub(super) fn routes() -> RouteTable {
    RouteTable::new().route("/stores/{store_id}/writ/visibility", post(visibility))
}

/// `POST writ/visibility` body.
#[derive(Debug, Clone, Deserialize)]
struct VisibilityDto {
    principals: Vec<String>,
    relation: String,
    object_type: String,
    #[serde(default)]
    max_ids: Option<usize>,
    #[serde(default)]
    delegation_relation: Option<String>,
    #[serde(default)]
    context: Option<Context>,
    #[serde(default)]
    authorization_model_id: Option<String>,
    #[serde(default, deserialize_with = "deserialize_revision")]
    at_least_revision: Option<u64>,
}

/// `POST writ/visibility` answer.
#[derive(Debug, Serialize)]
struct VisibilityResponse<'a> {
    visible: u64,
    total: u64,
    strategy: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    denied_by: Option<&'a Denial>,
    revision: u64,
}

async fn visibility(
    State(state): State<AppState>,
    Path(store_id): Path<String>,
    ApiJson(body): ApiJson<VisibilityDto>,
) -> Result<Response, ApiError> {
    let limit = state.options.max_filter_ids;
    if body.principals.len() > state.options.max_principals {
        return Err(ApiError::BadRequest {
            code: "too_many_principals",
            message: format!(
                "`principals` has {} entries, more than the limit of {}",
                body.principals.len(),
                state.options.max_principals
            ),
        });
    }
    let max_ids = body.max_ids.unwrap_or(limit);
    if max_ids > limit {
        return Err(ApiError::BadRequest {
            code: "too_many_ids",
            message: format!("`max_ids` is {max_ids}, more than the limit of {limit} ids"),
        });
    }
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let request = VisibilityRequest {
        principals: body.principals,
        relation: body.relation,
        object_type: body.object_type,
        max_ids,
        delegation_relation: body.delegation_relation,
        context: body.context.unwrap_or_default(),
        model_id: body.authorization_model_id.filter(|id| !id.is_empty()),
    };
    blocking(move || {
        let answer = state.engine.visibility(&store_id, &request)?;
        let Visibility { visible, total, strategy, ids, denied_by } = &answer.value;
        let response = VisibilityResponse {
            visible: *visible,
            total: *total,
            strategy: strategy.as_str(),
            ids: ids.as_deref(),
            denied_by: denied_by.as_ref(),
            revision: answer.revision,
        };
        Ok(json_response(&response, 96 + 16 * ids.as_ref().map_or(0, Vec::len)))
    })
    .await
}
