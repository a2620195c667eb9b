//! Model routes: write, list and read authorization models (OpenFGA JSON), Writ's DSL upload
//! (`PUT /stores/{id}/writ/model`) and model assertions.
//!
//! Invariant: a model is validated before it is stored; a DSL error answers with 1-based
//! `diagnostics`, a JSON model error with `invalid_authorization_model`.
//! Must not import `store`, `index` or `eval`.

use super::auth::{Access, Scope};
use super::dto::{
    offset_token, read_text, token_offset, ApiJson, ApiQuery, AssertionsRequestDto, PageQuery, StorePath, TupleKeyDto,
};
use super::openapi::{AuthorizationModel, Operation};
use super::routes::{get, put};
use super::{blocking, ApiError, AppState, RouteTable};
use crate::engine::{EngineError, ModelInfo};
use crate::model::{JsonModel, Model, SchemaErrorKind, SchemaErrors, ONEOF_ERROR};
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

/// What writing a model needs: `POST authorization-models`, `PUT writ/model`, the console's Save.
pub(super) const WRITE_ACCESS: Access = Access::admin(Scope::PathStore);

pub(super) fn routes() -> RouteTable {
    let (reader, admin) = (Access::reader(Scope::PathStore), WRITE_ACCESS);
    let list = Operation::answers::<ListModelsResponse>().query::<PageQuery>();
    let write = Operation::json::<AuthorizationModel, WriteModelResponse>().status(201);
    let write_dsl = Operation::json::<(), WriteModelResponse>().text_request("text/plain").status(201);
    RouteTable::new()
        .route(
            "/stores/{store_id}/authorization-models",
            get(reader, list, list_models).post(admin, write, write_model),
        )
        .route(
            "/stores/{store_id}/authorization-models/{model_id}",
            get(reader, Operation::answers::<GetModelResponse>(), get_model),
        )
        .route("/stores/{store_id}/writ/model", put(admin, write_dsl, write_dsl_model))
        .route(
            "/stores/{store_id}/assertions/{model_id}",
            get(reader, Operation::answers::<AssertionsResponse>(), get_assertions).put(
                admin,
                Operation::no_content::<AssertionsRequestDto>(),
                write_assertions,
            ),
        )
}

/// The answer to a model write: `{"authorization_model_id"}`.
#[derive(Debug, Serialize, JsonSchema)]
struct WriteModelResponse {
    authorization_model_id: String,
}

/// `GET authorization-models` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct ListModelsResponse {
    #[schemars(with = "Vec<AuthorizationModel>")]
    authorization_models: Vec<JsonModel>,
    continuation_token: String,
}

/// `GET authorization-models/{model_id}` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct GetModelResponse {
    #[schemars(with = "AuthorizationModel")]
    authorization_model: JsonModel,
}

/// `GET assertions/{model_id}` answer: the assertions as they were stored.
#[derive(Debug, Serialize, JsonSchema)]
struct AssertionsResponse {
    authorization_model_id: String,
    assertions: Value,
}

fn model_json(info: &ModelInfo) -> JsonModel {
    let mut json = info.model.to_json();
    json.id = Some(info.id.clone());
    json
}

async fn write_model(
    StorePath { state, store_id }: StorePath,
    ApiJson(body): ApiJson<JsonModel>,
) -> Result<(StatusCode, Json<WriteModelResponse>), ApiError> {
    let id = blocking(move || {
        let model = Model::from_json(&body).map_err(json_model_error)?;
        require_types(&model)?;
        Ok(state.engine.store(&store_id)?.write_model(model)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(WriteModelResponse { authorization_model_id: id })))
}

/// A JSON model that sets two members of one protobuf `oneof` is refused by OpenFGA's decoding,
/// as a `validation_error`; every other problem is an `invalid_authorization_model`.
fn json_model_error(errors: SchemaErrors) -> ApiError {
    let oneof = SchemaErrorKind::Semantic(ONEOF_ERROR.to_string());
    match errors.iter().find(|error| error.kind == oneof) {
        Some(error) => ApiError::validation(error.message.clone()),
        None => EngineError::Schema(errors.into_vec()).into(),
    }
}

/// OpenFGA refuses a model with no type definitions; stored, it would become the latest model.
pub(super) fn require_types(model: &Model) -> Result<(), ApiError> {
    if model.types.is_empty() {
        return Err(ApiError::validation("`type_definitions` must contain at least 1 item"));
    }
    Ok(())
}

async fn write_dsl_model(
    StorePath { state, store_id }: StorePath,
    request: Request,
) -> Result<(StatusCode, Json<WriteModelResponse>), ApiError> {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let is_zed = content_type.starts_with("application/x-spicedb-schema");
    let text = read_text(request.into_body(), &state.options).await?;
    super::limits::check_model_text(&text, &state.options)?;
    state.engine.get_store(&store_id)?;
    let id = blocking(move || {
        let parsed = if is_zed { Model::parse_zed(&text) } else { Model::parse_dsl(&text) };
        let model = parsed.map_err(|errors| ApiError::Diagnostics(errors.into_vec()))?;
        require_types(&model)?;
        Ok(state.engine.store(&store_id)?.write_model(model)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(WriteModelResponse { authorization_model_id: id })))
}

async fn list_models(
    StorePath { state, store_id }: StorePath,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListModelsResponse>, ApiError> {
    let offset = token_offset(query.continuation_token.as_deref())?;
    let size = super::limits::page_size(query.page_size, 50, &state.options)?;
    let models = state.engine.store(&store_id)?.models()?;
    let page: Vec<JsonModel> = models.iter().skip(offset).take(size).map(model_json).collect();
    let next = offset + page.len();
    let token = if next < models.len() { offset_token(next) } else { String::new() };
    Ok(Json(ListModelsResponse { authorization_models: page, continuation_token: token }))
}

async fn get_model(
    State(state): State<AppState>,
    Path((store_id, model_id)): Path<(String, String)>,
) -> Result<Json<GetModelResponse>, ApiError> {
    let info = state.engine.store(&store_id)?.model(Some(&model_id))?;
    Ok(Json(GetModelResponse { authorization_model: model_json(&info) }))
}

async fn write_assertions(
    State(state): State<AppState>,
    Path((store_id, model_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<AssertionsRequestDto>,
) -> Result<StatusCode, ApiError> {
    super::limits::assertions(body.assertions.len(), &state.options)?;
    for (index, assertion) in body.assertions.iter().enumerate() {
        check_assertion(assertion).map_err(|reason| ApiError::validation(format!("assertion {index}: {reason}")))?;
    }
    let text = serde_json::to_string(&body.assertions)
        .map_err(|e| ApiError::Internal(format!("assertions cannot be serialized: {e}")))?;
    blocking(move || Ok(state.engine.store(&store_id)?.write_assertions(&model_id, &text)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An assertion is stored as given, but only in OpenFGA's shape: a `tuple_key` naming a valid
/// tuple, a boolean `expectation`, and optional `contextual_tuples` (a list) and `context` (an object).
fn check_assertion(assertion: &Value) -> Result<(), String> {
    let key: TupleKeyDto = serde_json::from_value(assertion.get("tuple_key").cloned().unwrap_or(Value::Null))
        .map_err(|e| format!("`tuple_key` is not a tuple key: {e}"))?;
    key.to_tuple().map_err(|e| e.to_string())?;
    if !assertion.get("expectation").is_some_and(Value::is_boolean) {
        return Err("`expectation` must be true or false".into());
    }
    if assertion.get("contextual_tuples").is_some_and(|v| !v.is_array() && !v.is_object() && !v.is_null()) {
        return Err("`contextual_tuples` must be a list of tuple keys".into());
    }
    if assertion.get("context").is_some_and(|v| !v.is_object() && !v.is_null()) {
        return Err("`context` must be an object".into());
    }
    Ok(())
}

async fn get_assertions(
    State(state): State<AppState>,
    Path((store_id, model_id)): Path<(String, String)>,
) -> Result<Json<AssertionsResponse>, ApiError> {
    let assertions = match state.engine.store(&store_id)?.assertions(&model_id)? {
        Some(text) => serde_json::from_str::<Value>(&text)
            .map_err(|e| ApiError::Internal(format!("stored assertions are not JSON: {e}")))?,
        None => Value::Array(Vec::new()),
    };
    Ok(Json(AssertionsResponse { authorization_model_id: model_id, assertions }))
}
