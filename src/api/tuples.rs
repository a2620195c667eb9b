//! Tuple routes: `write`, `read` (paged) and `changes` (the changelog, paged by cursor).
//!
//! Invariant: continuation tokens are opaque (hex). `read`'s holds the engine's [`ReadCursor`]
//! (where the last page ended, so the next one resumes there without a rescan); `changes` hands
//! back the caller's token when there is nothing new, as OpenFGA does, so a watcher can poll
//! with it.
//! Must not import `store`, `index` or `eval`.

use super::auth::{Access, Scope};
use super::consistency::require_revision;
use super::dto::{
    decode_token, hex_encode, parse_pair, ApiJson, ApiQuery, ChangesQuery, ReadRequestDto, StorePath, TupleKeyAnswer,
    TupleKeyDto, WriteRequestDto,
};
use super::openapi::Operation;
use super::routes::{get, post};
use super::time::format_rfc3339;
use super::{blocking, ApiError, Principal, RouteTable};
use crate::engine::{ChangeCursor, ChangeOperation, ReadCursor, ReadFilter, WriteRequest};
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::Serialize;

/// What writing tuples needs: `POST write`, and the console's Add, Delete, Grant and Revoke.
pub(super) const WRITE_ACCESS: Access = Access::writer(Scope::PathStore);

pub(super) fn routes() -> RouteTable {
    let reader = Access::reader(Scope::PathStore);
    let changes_page = Operation::answers::<ChangesResponse>().query::<ChangesQuery>();
    RouteTable::new()
        .route(
            "/stores/{store_id}/write",
            post(WRITE_ACCESS, Operation::json::<WriteRequestDto, WriteResponse>(), write),
        )
        .route("/stores/{store_id}/read", post(reader, Operation::json::<ReadRequestDto, ReadResponse>(), read))
        .route("/stores/{store_id}/changes", get(reader, changes_page, changes))
}

fn ignore_flag(field: &str, value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("") | Some("error") | Some("ON_DUPLICATE_ERROR") | Some("ON_MISSING_ERROR") => Ok(false),
        Some("ignore") | Some("ON_DUPLICATE_IGNORE") | Some("ON_MISSING_IGNORE") => Ok(true),
        Some(other) => Err(ApiError::validation(format!("`{field}` must be `error` or `ignore`, not `{other}`"))),
    }
}

impl TryFrom<WriteRequestDto> for WriteRequest {
    type Error = ApiError;

    fn try_from(dto: WriteRequestDto) -> Result<Self, ApiError> {
        let writes = dto.writes.unwrap_or_default();
        let deletes = dto.deletes.unwrap_or_default();
        Ok(WriteRequest {
            writes: writes.tuple_keys.iter().map(TupleKeyDto::to_stored).collect::<Result<_, _>>()?,
            deletes: deletes.tuple_keys.iter().map(TupleKeyDto::to_tuple).collect::<Result<_, _>>()?,
            model_id: dto.authorization_model_id.filter(|id| !id.is_empty()),
            ignore_duplicates: ignore_flag("writes.on_duplicate", writes.on_duplicate.as_deref())?,
            ignore_missing: ignore_flag("deletes.on_missing", deletes.on_missing.as_deref())?,
            actor: None,
        })
    }
}

async fn write(
    StorePath { state, store_id }: StorePath,
    principal: Option<Extension<Principal>>,
    ApiJson(body): ApiJson<WriteRequestDto>,
) -> Result<Json<WriteResponse>, ApiError> {
    let mut request = WriteRequest::try_from(body)?;
    request.actor = principal.map(|Extension(principal)| principal.actor());
    let revision = blocking(move || Ok(state.engine.store(&store_id)?.write(request)?)).await?;
    Ok(Json(WriteResponse { revision }))
}

/// `POST /stores/{id}/write` answer: the revision the write committed at (Writ's extension;
/// OpenFGA's clients ignore it).
#[derive(Debug, serde::Serialize, JsonSchema)]
struct WriteResponse {
    revision: u64,
}

pub(super) fn read_filter(dto: Option<crate::api::dto::ReadTupleKeyDto>) -> Result<ReadFilter, ApiError> {
    let Some(key) = dto else { return Ok(ReadFilter::default()) };
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    let (object_type, object_id) = match non_empty(key.object) {
        None => (None, None),
        Some(object) => match object.split_once(':') {
            Some((type_name, "")) if !type_name.is_empty() => (Some(type_name.to_string()), None),
            Some((type_name, id)) if !type_name.is_empty() => (Some(type_name.to_string()), Some(id.to_string())),
            _ => {
                return Err(ApiError::validation(format!("object `{object}` is not of the form `type:id` or `type:`")))
            }
        },
    };
    Ok(ReadFilter { object_type, object_id, relation: non_empty(key.relation), user: non_empty(key.user) })
}

async fn read(
    StorePath { state, store_id }: StorePath,
    ApiJson(body): ApiJson<ReadRequestDto>,
) -> Result<Json<ReadResponse>, ApiError> {
    require_revision(&state, &store_id, body.at_least_revision).await?;
    let after = body.continuation_token.as_deref().filter(|t| !t.is_empty()).map(token_read_cursor).transpose()?;
    let size = super::limits::page_size(body.page_size, 50, &state.options)?;
    let filter = read_filter(body.tuple_key)?;
    let (page, times) = blocking(move || {
        let page = state.engine.store(&store_id)?.read_page(&filter, after, size)?;
        let tuples: Vec<_> = page.tuples.iter().map(|stored| stored.tuple.clone()).collect();
        let times = state.engine.store(&store_id)?.written_at(&tuples)?;
        Ok((page, times))
    })
    .await?;
    let tuples = page
        .tuples
        .iter()
        .zip(times)
        .map(|(stored, written_at_ms)| ReadTuple { key: stored.into(), timestamp: format_rfc3339(written_at_ms) })
        .collect();
    let token = page.next.map(read_cursor_token).unwrap_or_default();
    Ok(Json(ReadResponse { tuples, continuation_token: token }))
}

/// The continuation token of a read page ending at `cursor`.
pub(super) fn read_cursor_token(cursor: ReadCursor) -> String {
    hex_encode(&format!("read:{}", cursor.to_text()))
}

pub(super) fn token_read_cursor(token: &str) -> Result<ReadCursor, ApiError> {
    decode_token(token, "read:", ReadCursor::parse)
}

pub(super) fn cursor_token(cursor: ChangeCursor) -> String {
    hex_encode(&format!("cursor:{}:{}", cursor.revision, cursor.seq))
}

pub(super) fn token_cursor(token: &str) -> Result<ChangeCursor, ApiError> {
    decode_token(token, "cursor:", parse_pair).map(|(revision, seq)| ChangeCursor { revision, seq })
}

async fn changes(
    StorePath { state, store_id }: StorePath,
    ApiQuery(query): ApiQuery<ChangesQuery>,
) -> Result<Json<ChangesResponse>, ApiError> {
    require_revision(&state, &store_id, query.at_least_revision).await?;
    let given_token = query.continuation_token.filter(|t| !t.is_empty());
    let after = given_token.as_deref().map(token_cursor).transpose()?;
    let size = super::limits::page_size(query.page_size, 50, &state.options)?;
    let object_type = query.object_type.filter(|t| !t.is_empty());
    let records =
        blocking(move || Ok(state.engine.store(&store_id)?.changes(after, object_type.as_deref(), size)?)).await?;
    let token = match records.last() {
        Some(last) => cursor_token(last.cursor),
        None => given_token.unwrap_or_default(),
    };
    let changes = records
        .iter()
        .map(|record| Change {
            tuple_key: (&record.tuple).into(),
            operation: match record.operation {
                ChangeOperation::Write => "TUPLE_OPERATION_WRITE",
                ChangeOperation::Delete => "TUPLE_OPERATION_DELETE",
            },
            timestamp: format_rfc3339(record.timestamp_ms),
            actor: record.actor.clone(),
        })
        .collect();
    Ok(Json(ChangesResponse { changes, continuation_token: token }))
}

/// The answer to `read`: one page of tuples.
#[derive(Debug, Serialize, JsonSchema)]
struct ReadResponse {
    tuples: Vec<ReadTuple>,
    /// Empty on the last page.
    continuation_token: String,
}

/// One tuple of a `read` page, with the time it was written.
#[derive(Debug, Serialize, JsonSchema)]
struct ReadTuple {
    key: TupleKeyAnswer,
    timestamp: String,
}

/// The answer to `changes`: one page of the changelog.
#[derive(Debug, Serialize, JsonSchema)]
struct ChangesResponse {
    changes: Vec<Change>,
    /// Where the next page starts; the given token again when there are no more changes yet.
    continuation_token: String,
}

/// One changelog entry.
#[derive(Debug, Serialize, JsonSchema)]
struct Change {
    tuple_key: TupleKeyAnswer,
    /// `TUPLE_OPERATION_WRITE` or `TUPLE_OPERATION_DELETE`.
    operation: &'static str,
    timestamp: String,
    /// Writ's extension: who wrote it (OpenFGA clients ignore unknown fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
}
