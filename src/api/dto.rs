//! Serde request and response types in OpenFGA's (and AuthZEN's) JSON shapes, the [`ApiJson`],
//! [`ApiQuery`] and [`StorePath`] extractors, and the conversions from wire strings to tuple vocabulary.
//!
//! Invariant: a malformed body or query never reaches a handler; it becomes an [`ApiError`]
//! (`validation_error` naming the bad field, or `body_too_large`).
//! Must not import `store`, `index` or `eval`.

use super::error::ApiError;
use super::time::format_rfc3339;
use crate::engine::QueryOptions;
use crate::tuple::{Context, Subject, Tuple};
pub use crate::wire::{ConditionAnswer, ConditionDto, TupleKeyAnswer, TupleKeyDto};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::Json;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A JSON body extractor whose rejections are [`ApiError`]s (OpenFGA's `validation_error`).
///
/// Unlike `axum::Json` it does not insist on a `content-type`, and an empty body reads as `{}`
/// (as OpenFGA's gateway decodes one); any other body must be one UTF-8 JSON object.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T>
where
    super::ApiOptions: axum::extract::FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let options = <super::ApiOptions as axum::extract::FromRef<S>>::from_ref(state);
        ApiJson::read(request.into_body(), &options).await
    }
}

impl<T: DeserializeOwned> ApiJson<T> {
    /// Reads `body` (within `options.max_body_bytes`) and parses it: what the extractor does, for
    /// the check's dispatch ahead of the router too ([`super::Api`]).
    pub(super) async fn read(body: Body, options: &super::ApiOptions) -> Result<ApiJson<T>, ApiError> {
        let bytes = read_body(body, options.max_body_bytes).await?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        super::limits::check_json_depth(bytes, options)?;
        let text = require_json_object(bytes)?;
        // The plain parse is the fast path; only a body that fails it is parsed again through
        // axum's path-tracking `Json`, whose message names the bad field. It parses the text
        // checked above, so serde does not check the UTF-8 of each string and key again.
        if let Ok(value) = serde_json::from_str::<T>(text) {
            return Ok(ApiJson(value));
        }
        Json::<T>::from_bytes(bytes).map(|Json(value)| ApiJson(value)).map_err(|rejection| {
            ApiError::validation(
                rejection
                    .body_text()
                    .replace("Failed to deserialize the JSON body into the target type: ", "invalid request body: "),
            )
        })
    }
}

/// A request body, read whole, refused with `body_too_large` once it passes `limit` bytes.
///
/// A small body (a check's) arrives in one frame, which is kept as it is: no copy, no list of
/// chunks, no second boxed body around it to count its length.
async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, ApiError> {
    use axum::body::HttpBody as _;
    // A body's announced length (hyper's, from `content-length`), so a body in many frames is
    // joined into one buffer sized once.
    let announced = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX).min(limit);
    let mut length = 0usize;
    let Some(first) = next_data(&mut body, &mut length, limit).await? else { return Ok(Bytes::new()) };
    let Some(second) = next_data(&mut body, &mut length, limit).await? else { return Ok(first) };
    let mut joined = Vec::with_capacity(announced.max(length));
    joined.extend_from_slice(&first);
    joined.extend_from_slice(&second);
    while let Some(data) = next_data(&mut body, &mut length, limit).await? {
        joined.extend_from_slice(&data);
    }
    Ok(Bytes::from(joined))
}

/// The body's next data frame (trailers skipped), adding its size to `length`; `body_too_large`
/// once `length` passes `limit`.
async fn next_data(body: &mut Body, length: &mut usize, limit: usize) -> Result<Option<Bytes>, ApiError> {
    use http_body_util::BodyExt as _;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|error| ApiError::validation(format!("Failed to buffer the request body: {error}")))?;
        if let Ok(data) = frame.into_data() {
            *length += data.len();
            if *length > limit {
                return Err(ApiError::BodyTooLarge);
            }
            return Ok(Some(data));
        }
    }
    Ok(None)
}

/// Every JSON body of the API is one object, as OpenFGA decodes each into a request message: a
/// body that is not UTF-8, or whose top level is an array, string, number or `null`, is refused
/// here with a message saying so (serde would read an array into a struct's fields in order).
/// Gives the body as text.
fn require_json_object(bytes: &[u8]) -> Result<&str, ApiError> {
    let text = std::str::from_utf8(bytes).map_err(|error| {
        ApiError::validation(format!(
            "request body is not valid UTF-8 (invalid byte at offset {})",
            error.valid_up_to()
        ))
    })?;
    let found = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => return Ok(text),
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b'n') => "`null`",
        Some(b't' | b'f') => "a boolean",
        Some(b'-' | b'0'..=b'9') => "a number",
        _ => "not JSON",
    };
    Err(ApiError::validation(format!("request body must be a JSON object, but it is {found}")))
}

/// A query-string extractor whose rejections are [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection| ApiError::validation(rejection.body_text()))
    }
}

/// The server state and the `{store_id}` path segment of a `/stores/{store_id}/…` route, taken
/// by one extractor so every per-store handler starts from the same two values.
#[derive(Clone)]
pub struct StorePath {
    /// The server state.
    pub state: super::AppState,
    /// The store the path names.
    pub store_id: String,
}

impl FromRequestParts<super::AppState> for StorePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &super::AppState) -> Result<Self, Self::Rejection> {
        let Path(store_id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ApiError::validation(rejection.body_text()))?;
        Ok(StorePath { state: state.clone(), store_id })
    }
}

/// Reads a DSL (text) body within `options.max_body_bytes`, through the reader JSON bodies use
/// (the same `body_too_large` and messages).
pub async fn read_text(body: Body, options: &super::ApiOptions) -> Result<String, ApiError> {
    let bytes = read_body(body, options.max_body_bytes).await?;
    String::from_utf8(bytes.into()).map_err(|_| ApiError::validation("request body is not valid UTF-8"))
}

/// Pagination query: `page_size`, `continuation_token`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct PageQuery {
    /// Most items per page.
    pub page_size: Option<u32>,
    /// The token of the previous page.
    pub continuation_token: Option<String>,
}

/// Encodes a page offset as an opaque continuation token.
pub fn offset_token(offset: usize) -> String {
    hex_encode(&format!("offset:{offset}"))
}

/// Decodes a continuation token from [`offset_token`]; an empty or missing token is offset 0.
pub fn token_offset(token: Option<&str>) -> Result<usize, ApiError> {
    match token {
        None | Some("") => Ok(0),
        Some(token) => decode_token(token, "offset:", |n| n.parse().ok()),
    }
}

/// Decodes a continuation token: hex text that starts with `kind` and whose rest `parse` reads;
/// any other is `invalid_continuation_token`.
pub fn decode_token<T>(token: &str, kind: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<T, ApiError> {
    hex_decode(token).and_then(|text| parse(text.strip_prefix(kind)?)).ok_or_else(|| ApiError::BadRequest {
        code: "invalid_continuation_token",
        message: "invalid continuation token".into(),
    })
}

/// Reads `first:second`, the rest of a token of two numbers.
pub fn parse_pair<A: std::str::FromStr, B: std::str::FromStr>(text: &str) -> Option<(A, B)> {
    let (first, second) = text.split_once(':')?;
    Some((first.parse().ok()?, second.parse().ok()?))
}

/// Hex-encodes text (opaque tokens).
pub fn hex_encode(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The page size of a Writ list (`writ/decisions`, `writ/approvals`, `writ/alerts`): 50 when
/// the caller asks for none (or 0), and never more than 1000.
pub fn writ_page_size(requested: Option<u32>) -> usize {
    match requested {
        None | Some(0) => 50,
        Some(n) => (n as usize).min(1000),
    }
}

/// Reads a keyword parameter with `parse`: `None` when absent or empty, and a `validation_error`
/// listing the `expected` words when `parse` does not know it.
pub fn parse_keyword<T>(
    name: &str,
    value: Option<&str>,
    parse: impl FnOnce(&str) -> Option<T>,
    expected: &str,
) -> Result<Option<T>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some(text) => parse(text)
            .map(Some)
            .ok_or_else(|| ApiError::validation(format!("`{name}` value `{text}` is not one of {expected}"))),
    }
}

/// Reads the continuation token of a Writ list: `None` when the caller gave none (or an empty
/// one), else what [`decode_token`] reads after `kind`.
pub fn writ_after<T>(
    token: Option<String>,
    kind: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, ApiError> {
    token.filter(|token| !token.is_empty()).map(|token| decode_token(&token, kind, parse)).transpose()
}

/// Cuts what a Writ list fetched (one more than a page, which tells whether another page
/// follows) to `page_size`, and gives the next page's token: `token` of the last row kept, or
/// empty on the last page.
pub fn writ_page<T>(mut found: Vec<T>, page_size: usize, token: impl FnOnce(&T) -> String) -> (Vec<T>, String) {
    let more = found.len() > page_size;
    found.truncate(page_size);
    let next = match (more, found.last()) {
        (true, Some(last)) => token(last),
        _ => String::new(),
    };
    (found, next)
}

/// Decodes [`hex_encode`]d text.
pub fn hex_decode(token: &str) -> Option<String> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..token.len()).step_by(2).map(|i| token.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    String::from_utf8(bytes?).ok()
}

/// Clamps a requested page size: default when absent or 0, at most `max`.
pub fn page_size(requested: Option<u32>, default: usize, max: usize) -> usize {
    match requested {
        None | Some(0) => default,
        Some(n) => (n as usize).min(max),
    }
}

/// Contextual tuples: `{tuple_keys:[...]}` (check, list objects, expand) or a bare list (list users).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ContextualTuplesDto {
    /// `{"tuple_keys": [...]}`.
    Wrapped {
        /// The tuple keys; `null` (as OpenFGA's `fga` CLI sends when there are none) is empty.
        #[serde(default, deserialize_with = "null_as_empty")]
        tuple_keys: Vec<TupleKeyDto>,
    },
    /// `[...]`.
    List(Vec<TupleKeyDto>),
}

/// Reads a list that Go clients may send as `null` when it is empty.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// Reads optional contextual tuples.
pub fn contextual_tuples(dto: &Option<ContextualTuplesDto>) -> Result<Vec<Tuple>, ApiError> {
    let keys = match dto {
        None => return Ok(Vec::new()),
        Some(ContextualTuplesDto::Wrapped { tuple_keys }) => tuple_keys,
        Some(ContextualTuplesDto::List(keys)) => keys,
    };
    Ok(keys.iter().map(TupleKeyDto::to_tuple).collect::<Result<_, _>>()?)
}

/// A store in OpenFGA's response shape.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StoreDto {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// RFC 3339 creation time.
    pub created_at: String,
    /// RFC 3339 update time.
    pub updated_at: String,
}

impl From<&crate::engine::StoreRecord> for StoreDto {
    fn from(record: &crate::engine::StoreRecord) -> Self {
        StoreDto {
            id: record.id.clone(),
            name: record.name.clone(),
            created_at: format_rfc3339(record.created_at_ms),
            updated_at: format_rfc3339(record.updated_at_ms),
        }
    }
}

/// `POST /stores` body.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct CreateStoreRequest {
    /// The store's name.
    pub name: String,
}

/// `POST /stores/{id}/write` writes.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct WritesDto {
    /// Tuples to write.
    pub tuple_keys: Vec<TupleKeyDto>,
    /// `error` (default) or `ignore`.
    pub on_duplicate: Option<String>,
}

/// `POST /stores/{id}/write` deletes.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct DeletesDto {
    /// Tuples to delete.
    pub tuple_keys: Vec<TupleKeyDto>,
    /// `error` (default) or `ignore`.
    pub on_missing: Option<String>,
}

/// `POST /stores/{id}/write` body.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct WriteRequestDto {
    /// Tuples to write.
    pub writes: Option<WritesDto>,
    /// Tuples to delete.
    pub deletes: Option<DeletesDto>,
    /// The model to validate against; the latest when absent.
    pub authorization_model_id: Option<String>,
}

/// A partial tuple key for `read`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ReadTupleKeyDto {
    /// The user, or `type:` for every user of a type.
    pub user: Option<String>,
    /// The relation.
    pub relation: Option<String>,
    /// The object, or `type:` for every object of a type.
    pub object: Option<String>,
}

/// `POST /stores/{id}/read` body.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ReadRequestDto {
    /// The filter; every tuple when absent.
    pub tuple_key: Option<ReadTupleKeyDto>,
    /// Most tuples per page.
    pub page_size: Option<u32>,
    /// The previous page's token.
    pub continuation_token: Option<String>,
    /// Answer only from a snapshot at this store revision or later (Writ's extension).
    #[serde(deserialize_with = "super::consistency::deserialize_revision")]
    pub at_least_revision: Option<u64>,
}

/// `GET /stores/{id}/changes` query.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ChangesQuery {
    /// Only changes to objects of this type.
    #[serde(rename = "type")]
    pub object_type: Option<String>,
    /// Most changes per page.
    pub page_size: Option<u32>,
    /// The previous page's token.
    pub continuation_token: Option<String>,
    /// Answer only from a snapshot at this store revision or later (Writ's extension).
    #[serde(deserialize_with = "super::consistency::deserialize_revision")]
    pub at_least_revision: Option<u64>,
}

/// The options every query body shares, flattened into it (`#[serde(flatten)]`): `context`,
/// `contextual_tuples`, `authorization_model_id`, `at_least_revision` and `audit`. A route with no
/// use for one of them (expand has no condition context; a batch's item no model of its own)
/// reads and ignores it, as it ignores any unknown field, but a value of the wrong type is a
/// `validation_error` naming the field.
///
/// Flattening makes serde read the outer body as a map and hand the fields it does not know to
/// this type from a buffer; a body's other fields are read directly, so only these few values
/// are buffered. Numbers survive the buffer (`at_least_revision` as `u64`, context values as
/// given).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RequestOptionsDto {
    /// Condition context.
    // Boxed, as `audit` is: most requests carry neither, and a batch-check parses and moves a
    // thousand of these.
    pub context: Option<Box<Context>>,
    /// Tuples that count for this request only.
    pub contextual_tuples: Option<ContextualTuplesDto>,
    /// The model; the latest when absent or empty.
    pub authorization_model_id: Option<String>,
    /// Answer only from a snapshot at this store revision or later (Writ's extension).
    #[serde(deserialize_with = "super::consistency::deserialize_revision")]
    pub at_least_revision: Option<u64>,
    /// Writ's extension: the caller's context for the decision log (tool name, task id, ...).
    pub audit: Option<Box<Context>>,
}

impl RequestOptionsDto {
    /// The engine's options: contextual tuples parsed, a missing context empty, an empty model
    /// id as none (what OpenFGA's SDKs send when no model is pinned).
    pub fn query(&mut self) -> Result<QueryOptions, ApiError> {
        Ok(QueryOptions {
            contextual_tuples: contextual_tuples(&self.contextual_tuples)?,
            context: self.context.take().map(|context| *context).unwrap_or_default(),
            model_id: self.model_id(),
        })
    }

    /// The pinned model id; `None` when absent or empty.
    pub fn model_id(&mut self) -> Option<String> {
        self.authorization_model_id.take().filter(|id| !id.is_empty())
    }
}

/// A check's tuple key: OpenFGA's `CheckRequestTupleKey`, `{user, relation, object}`.
// A condition or expiry has no meaning in a question: like any unknown field, they are ignored.
// Kept to its three strings: a batch-check parses and moves a thousand of them.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct CheckTupleKeyDto {
    /// `user:anne`, `user:*`, `group:eng#member`.
    pub user: String,
    /// The relation.
    pub relation: String,
    /// `document:1`.
    pub object: String,
}

/// `POST /stores/{id}/check` body.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct CheckRequestDto {
    /// What to check.
    pub tuple_key: CheckTupleKeyDto,
    /// `context`, `contextual_tuples`, `authorization_model_id`, `at_least_revision`, `audit`.
    #[serde(flatten)]
    pub options: RequestOptionsDto,
}

/// One check of a batch.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct BatchCheckItemDto {
    /// What to check.
    pub tuple_key: CheckTupleKeyDto,
    /// `context`, `contextual_tuples`, `authorization_model_id`, `at_least_revision`, `audit`.
    #[serde(flatten)]
    pub options: RequestOptionsDto,
    /// The caller's id for this check, echoed as the result's key.
    pub correlation_id: String,
}

/// `POST /stores/{id}/batch-check` body.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct BatchCheckRequestDto {
    /// The checks.
    pub checks: Vec<BatchCheckItemDto>,
    /// `context`, `contextual_tuples`, `authorization_model_id`, `at_least_revision`, `audit`.
    #[serde(flatten)]
    pub options: RequestOptionsDto,
}

/// `POST /stores/{id}/check` answer: `{"allowed", "resolution"}`.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
pub struct CheckResponseDto {
    /// The answer.
    pub allowed: bool,
    /// OpenFGA's resolution trace; always empty.
    pub resolution: &'static str,
}

/// One answer of a batch-check: `{"allowed": bool}`, or `{"error": {...}}` for a check that
/// could not be answered.
#[derive(Debug, Clone)]
pub enum BatchCheckEntryDto {
    /// The check's answer.
    Allowed(bool),
    /// The check's error, serialized as the whole `{"error": {...}}` object.
    Error(BatchCheckErrorDto),
}

/// A batch-check entry's error: `{"error": {"input_error": code, "message"}}` for bad input,
/// `{"error": {"internal_error": "internal_error", "message"}}` otherwise.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchCheckErrorDto {
    /// The error.
    pub error: BatchCheckErrorBody,
}

/// The body of a [`BatchCheckErrorDto`].
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BatchCheckErrorBody {
    /// `input_error` or `internal_error`, with its code.
    #[serde(flatten)]
    pub code: BatchCheckErrorCode,
    /// What went wrong.
    pub message: String,
}

/// Which side a batch-check error is on, with its OpenFGA code.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchCheckErrorCode {
    /// The check's input was bad.
    InputError(&'static str),
    /// The server failed.
    InternalError(&'static str),
}

impl Serialize for BatchCheckEntryDto {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        match self {
            BatchCheckEntryDto::Allowed(allowed) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry("allowed", allowed)?;
                map.end()
            }
            BatchCheckEntryDto::Error(error) => error.serialize(serializer),
        }
    }
}

/// `POST /stores/{id}/batch-check` answer: `{"result": {correlation_id: entry, ...}}`, the
/// entries in the batch's order. Correlation ids are unique (the handler refuses duplicates).
#[derive(Debug, Clone, Default)]
pub struct BatchCheckResponseDto {
    /// `(correlation_id, entry)` per check, in the batch's order.
    pub result: Vec<(String, BatchCheckEntryDto)>,
}

impl Serialize for BatchCheckResponseDto {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        struct Entries<'a>(&'a [(String, BatchCheckEntryDto)]);
        impl Serialize for Entries<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_map(self.0.iter().map(|(id, entry)| (id, entry)))
            }
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("result", &Entries(&self.result))?;
        map.end()
    }
}

impl JsonSchema for BatchCheckEntryDto {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BatchCheckEntry".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let error = generator.subschema_for::<BatchCheckErrorDto>();
        schemars::json_schema!({
            "oneOf": [
                {"type": "object", "properties": {"allowed": {"type": "boolean"}}, "required": ["allowed"]},
                error
            ]
        })
    }
}

impl JsonSchema for BatchCheckResponseDto {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "BatchCheckResponse".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let entry = generator.subschema_for::<BatchCheckEntryDto>();
        schemars::json_schema!({
            "type": "object",
            "properties": {"result": {"type": "object", "additionalProperties": entry}},
            "required": ["result"]
        })
    }
}

/// A `200 application/json` response serialized straight from `value` into a buffer of about
/// `capacity` bytes (no intermediate [`Value`], no regrowth for a well-guessed size).
pub fn json_response(value: &impl Serialize, capacity: usize) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let mut buffer = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut buffer, value) {
        Ok(()) => ([(axum::http::header::CONTENT_TYPE, "application/json")], buffer).into_response(),
        Err(error) => ApiError::Internal(format!("response cannot be serialized: {error}")).into_response(),
    }
}

/// Expand's tuple key: `{relation, object}`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct ExpandTupleKeyDto {
    /// The relation.
    pub relation: String,
    /// The object.
    pub object: String,
}

/// `POST /stores/{id}/expand` body.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct ExpandRequestDto {
    /// What to expand.
    pub tuple_key: ExpandTupleKeyDto,
    /// `context`, `contextual_tuples`, `authorization_model_id`, `at_least_revision`, `audit`.
    #[serde(flatten)]
    pub options: RequestOptionsDto,
}

/// `POST /stores/{id}/list-objects` body.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct ListObjectsRequestDto {
    /// The object type.
    #[serde(rename = "type")]
    pub object_type: String,
    /// The relation.
    pub relation: String,
    /// The user.
    pub user: String,
    /// `context`, `contextual_tuples`, `authorization_model_id`, `at_least_revision`, `audit`.
    #[serde(flatten)]
    pub options: RequestOptionsDto,
}

/// An object as `{type, id}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct TypedObjectDto {
    /// The type.
    #[serde(rename = "type")]
    pub object_type: String,
    /// The id.
    pub id: String,
}

/// A list-users filter: `{type, relation?}`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct UserFilterDto {
    /// The subject type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The userset relation.
    #[serde(default)]
    pub relation: Option<String>,
}

/// `POST /stores/{id}/list-users` body.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct ListUsersRequestDto {
    /// The object.
    pub object: TypedObjectDto,
    /// The relation.
    pub relation: String,
    /// Which subjects to return.
    pub user_filters: Vec<UserFilterDto>,
    /// `context`, `contextual_tuples`, `authorization_model_id`, `at_least_revision`, `audit`.
    #[serde(flatten)]
    pub options: RequestOptionsDto,
}

/// A list-users result entry in OpenFGA's shape: `{"object": {"type", "id"}}`,
/// `{"wildcard": {"type"}}` or `{"userset": {"type", "id", "relation"}}`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SubjectDto<'a> {
    /// A plain object.
    Object {
        /// Its type.
        #[serde(rename = "type")]
        object_type: &'a str,
        /// Its id.
        id: &'a str,
    },
    /// Every object of a type.
    Wildcard {
        /// The type.
        #[serde(rename = "type")]
        object_type: &'a str,
    },
    /// The holders of a relation on an object.
    Userset {
        /// The object's type.
        #[serde(rename = "type")]
        object_type: &'a str,
        /// The object's id.
        id: &'a str,
        /// The relation.
        relation: &'a str,
    },
}

impl<'a> From<&'a Subject> for SubjectDto<'a> {
    fn from(subject: &'a Subject) -> Self {
        match subject {
            Subject::Object(object) => SubjectDto::Object { object_type: &object.object_type, id: &object.id },
            Subject::Wildcard(type_name) => SubjectDto::Wildcard { object_type: type_name },
            Subject::Userset { object, relation } => {
                SubjectDto::Userset { object_type: &object.object_type, id: &object.id, relation }
            }
        }
    }
}

/// `PUT /stores/{id}/assertions/{model_id}` body.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct AssertionsRequestDto {
    /// The assertions, kept as given.
    pub assertions: Vec<Value>,
}
