//! Store routes: create, list, get and delete stores (OpenFGA `/stores`).
//!
//! Invariant: store times are RFC 3339; listing pages with an opaque offset token and shows a
//! store-limited key only its own stores.
//! Must not import `store`, `index` or `eval`.

use super::auth::{Access, Scope};
use super::dto::{offset_token, token_offset, ApiJson, ApiQuery, CreateStoreRequest, PageQuery, StoreDto, StorePath};
use super::openapi::Operation;
use super::routes::get;
use super::{blocking, ApiError, AppState, Principal, RouteTable};
use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use schemars::JsonSchema;
use serde::Serialize;

pub(super) fn routes() -> RouteTable {
    let list = Operation::answers::<ListStoresResponse>().query::<PageQuery>();
    let create = Operation::json::<CreateStoreRequest, StoreDto>().status(201);
    let (reader, admin) = (Access::reader(Scope::PathStore), Access::admin(Scope::PathStore));
    RouteTable::new()
        .route(
            "/stores",
            get(Access::reader(Scope::AnyStore), list, list_stores).post(
                Access::admin(Scope::Global),
                create,
                create_store,
            ),
        )
        .route(
            "/stores/{store_id}",
            get(reader, Operation::answers::<StoreDto>(), get_store).delete(admin, Operation::nothing(), delete_store),
        )
}

async fn create_store(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateStoreRequest>,
) -> Result<(StatusCode, Json<StoreDto>), ApiError> {
    if body.name.trim().is_empty() {
        return Err(ApiError::validation("store name must not be empty"));
    }
    // OpenFGA allows 3 to 64 characters of a narrow set; Writ allows any printable name that long.
    if body.name.chars().count() > 64 || body.name.chars().any(char::is_control) {
        return Err(ApiError::validation("store name must be at most 64 characters, none of them control characters"));
    }
    let record = blocking(move || Ok(state.engine.create_store(&body.name)?)).await?;
    Ok((StatusCode::CREATED, Json(StoreDto::from(&record))))
}

async fn list_stores(
    State(state): State<AppState>,
    principal: Option<Extension<Principal>>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListStoresResponse>, ApiError> {
    let offset = token_offset(query.continuation_token.as_deref())?;
    let size = super::limits::page_size(query.page_size, 50, &state.options)?;
    let mut records = state.engine.list_stores();
    // A key limited to stores sees only those (as OpenFGA lists only the stores a caller may access).
    if let Some(Extension(principal)) = principal {
        records.retain(|record| principal.allows_store(&record.id));
    }
    let stores: Vec<StoreDto> = records.iter().skip(offset).take(size).map(StoreDto::from).collect();
    let next = offset + stores.len();
    let token = if next < records.len() { offset_token(next) } else { String::new() };
    Ok(Json(ListStoresResponse { stores, continuation_token: token }))
}

/// `GET /stores` answer.
#[derive(Debug, Serialize, JsonSchema)]
struct ListStoresResponse {
    stores: Vec<StoreDto>,
    continuation_token: String,
}

async fn get_store(StorePath { state, store_id }: StorePath) -> Result<Json<StoreDto>, ApiError> {
    Ok(Json(StoreDto::from(&state.engine.get_store(&store_id)?)))
}

async fn delete_store(StorePath { state, store_id }: StorePath) -> Result<StatusCode, ApiError> {
    blocking(move || Ok(state.engine.delete_store(&store_id)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}
