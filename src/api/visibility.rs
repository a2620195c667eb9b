//! Writ's permission-aware retrieval routes under `/stores/{store_id}/writ/` (DESIGN §11):
//! `POST visibility`, `GET acl-tags` (a paged snapshot of every object's tags), `GET
//! acl-tags/changes` (the objects whose tags changed after a revision) and `POST memberships`,
//! thin handlers over the engine.
//!
//! Invariant: every answer carries the `revision` it was computed at; bad input is a `400`
//! `{code, message}` naming the bad field; a broken delegation link is an answer (nothing
//! visible, `denied_by`), not an error. These routes only read: a `reader` key may call them
//! (each route declares reader access).
//! Must not import `store`, `index` or `eval`.

use super::auth::{Access, Scope};
use super::consistency::{deserialize_revision, require_revision};
use super::dto::{decode_token, hex_encode, json_response, ApiJson, ApiQuery, StorePath};
use super::limits::page_size;
use super::openapi::Operation;
use super::routes::{get, post};
use super::{blocking, ApiError, RouteTable};
use crate::engine::{
    AclTagChanges, AclTagsCursor, AclTagsRequest, ChangeCursor, Denial, ObjectTags, Visibility, VisibilityRequest,
};
use crate::tuple::Context;
use axum::response::Response;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub(super) fn routes() -> RouteTable {
    let reader = Access::reader(Scope::PathStore);
    let tags_page = Operation::answers::<AclTagsResponse<'static>>().query::<AclTagsQuery>();
    let tag_changes = Operation::answers::<AclTagChangesResponse<'static>>().query::<AclTagsQuery>();
    RouteTable::new()
        .route(
            "/stores/{store_id}/writ/visibility",
            post(reader, Operation::json::<VisibilityDto, VisibilityResponse<'static>>(), visibility),
        )
        .route("/stores/{store_id}/writ/acl-tags", get(reader, tags_page, acl_tags))
        .route("/stores/{store_id}/writ/acl-tags/changes", get(reader, tag_changes, acl_tag_changes))
        .route(
            "/stores/{store_id}/writ/memberships",
            post(reader, Operation::json::<MembershipsDto, MembershipsResponse<'static>>(), memberships),
        )
}

/// `POST writ/visibility` body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
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
#[derive(Debug, Serialize, JsonSchema)]
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
    StorePath { state, store_id }: StorePath,
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
        let answer = state.engine.store(&store_id)?.visibility(&request)?;
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

/// `GET writ/acl-tags` and `GET writ/acl-tags/changes` query.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
struct AclTagsQuery {
    object_type: Option<String>,
    relation: Option<String>,
    page_size: Option<u32>,
    continuation_token: Option<String>,
    after_revision: Option<u64>,
    authorization_model_id: Option<String>,
}

impl AclTagsQuery {
    /// The engine's request; `object_type` and `relation` are required.
    fn request(&mut self) -> Result<AclTagsRequest, ApiError> {
        let required = |field: &str, value: Option<String>| {
            value.filter(|v| !v.is_empty()).ok_or_else(|| ApiError::validation(format!("`{field}` is required")))
        };
        Ok(AclTagsRequest {
            object_type: required("object_type", self.object_type.take())?,
            relation: required("relation", self.relation.take())?,
            model_id: self.authorization_model_id.take().filter(|id| !id.is_empty()),
        })
    }

    /// The continuation token, when one is given (an empty one is none).
    fn token(&self) -> Option<&str> {
        self.continuation_token.as_deref().filter(|token| !token.is_empty())
    }
}

/// One object's tags on the wire.
#[derive(Debug, Serialize, JsonSchema)]
struct ObjectTagsDto<'a> {
    object: &'a str,
    tags: &'a [String],
}

impl<'a> From<&'a ObjectTags> for ObjectTagsDto<'a> {
    fn from(tags: &'a ObjectTags) -> Self {
        ObjectTagsDto { object: &tags.object, tags: &tags.tags }
    }
}

/// `GET writ/acl-tags` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct AclTagsResponse<'a> {
    exact: bool,
    revision: u64,
    objects: Vec<ObjectTagsDto<'a>>,
    continuation_token: String,
}

async fn acl_tags(
    StorePath { state, store_id }: StorePath,
    ApiQuery(mut query): ApiQuery<AclTagsQuery>,
) -> Result<Response, ApiError> {
    let request = query.request()?;
    let page_size = page_size(query.page_size, 100, &state.options)?;
    let after = query.token().map(|token| decode_token(token, "acl-tags:", AclTagsCursor::parse)).transpose()?;
    blocking(move || {
        let page = state.engine.store(&store_id)?.acl_tags(&request, page_size, after)?;
        let response = AclTagsResponse {
            exact: page.exact,
            revision: page.revision,
            objects: page.objects.iter().map(ObjectTagsDto::from).collect(),
            continuation_token: page
                .next
                .map(|next| hex_encode(&format!("acl-tags:{}", next.to_text())))
                .unwrap_or_default(),
        };
        Ok(json_response(&response, 64 + 64 * response.objects.len()))
    })
    .await
}

/// `GET writ/acl-tags/changes` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct AclTagChangesResponse<'a> {
    exact: bool,
    objects: Vec<ObjectTagsDto<'a>>,
    revision: u64,
    continuation_token: String,
}

async fn acl_tag_changes(
    StorePath { state, store_id }: StorePath,
    ApiQuery(mut query): ApiQuery<AclTagsQuery>,
) -> Result<Response, ApiError> {
    let request = query.request()?;
    let after = match (query.token(), query.after_revision) {
        (Some(token), _) => decode_token(token, "acl-tag-changes:", |rest| {
            let (revision, seq) = rest.split_once('.')?;
            Some(ChangeCursor { revision: revision.parse().ok()?, seq: seq.parse().ok()? })
        })?,
        // Strictly after every entry of revision R.
        (None, Some(revision)) => ChangeCursor { revision, seq: u32::MAX },
        (None, None) => {
            return Err(ApiError::validation("`after_revision` (or a `continuation_token`) is required"));
        }
    };
    blocking(move || match state.engine.store(&store_id)?.acl_tag_changes(&request, after)? {
        AclTagChanges::Resnapshot { reason } => Err(ApiError::BadRequest {
            code: "acl_tags_resnapshot_required",
            message: format!("{reason}; take a new snapshot with `GET writ/acl-tags`"),
        }),
        AclTagChanges::Delta { exact, objects, next, revision } => {
            let token = next.map(|cursor| hex_encode(&format!("acl-tag-changes:{}.{}", cursor.revision, cursor.seq)));
            let response = AclTagChangesResponse {
                exact,
                objects: objects.iter().map(ObjectTagsDto::from).collect(),
                revision,
                continuation_token: token.unwrap_or_default(),
            };
            Ok(json_response(&response, 64 + 64 * response.objects.len()))
        }
    })
    .await
}

/// `POST writ/memberships` body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
struct MembershipsDto {
    principal: String,
    #[serde(default)]
    authorization_model_id: Option<String>,
    #[serde(default, deserialize_with = "deserialize_revision")]
    at_least_revision: Option<u64>,
}

/// `POST writ/memberships` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct MembershipsResponse<'a> {
    memberships: &'a [String],
    revision: u64,
}

async fn memberships(
    StorePath { state, store_id }: StorePath,
    ApiJson(body): ApiJson<MembershipsDto>,
) -> Result<Response, ApiError> {
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let model_id = body.authorization_model_id.filter(|id| !id.is_empty());
    blocking(move || {
        let answer = state.engine.store(&store_id)?.memberships(&body.principal, model_id.as_deref())?;
        let response = MembershipsResponse { memberships: &answer.value, revision: answer.revision };
        Ok(json_response(&response, 32 + 32 * answer.value.len()))
    })
    .await
}
