//! The one place that knows HTTP status codes: [`ApiError`] and its single `IntoResponse`.
//!
//! Invariant: every error body is `{"code", "message"}` (plus `diagnostics` for DSL models);
//! bad input is always a 4xx, never a 5xx; 5xx details are logged and answered with a generic body,
//! except `deadline_exceeded` (504, as OpenFGA answers), which names the limit that ended the request.
//! Must not import `store`, `index` or `eval`.

use crate::engine::EngineError;
use crate::model::SchemaError;
use crate::wire::TupleKeyError;
use crate::EvalError;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An engine call failed; its OpenFGA code decides the status.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The request is malformed; `code` is a stable machine code (`validation_error`, ...).
    #[error("{message}")]
    BadRequest {
        /// The machine code.
        code: &'static str,
        /// The human message.
        message: String,
    },
    /// A thing the path names does not exist; `code` is a stable machine code.
    #[error("{message}")]
    NotFound {
        /// The machine code.
        code: &'static str,
        /// The human message.
        message: String,
    },
    /// A DSL model did not parse or validate.
    #[error("invalid authorization model")]
    Diagnostics(Vec<SchemaError>),
    /// The request body is larger than the configured limit.
    #[error("request body is larger than the limit")]
    BodyTooLarge,
    /// The route does not exist.
    #[error("no route for `{0}`")]
    RouteNotFound(String),
    /// The route exists but not for this method.
    #[error("method not allowed: `{0}`")]
    MethodNotAllowed(String),
    /// A root AuthZEN route was called but no default store is configured.
    #[error("no default AuthZEN store is configured")]
    AuthzenStoreNotConfigured,
    /// No valid key came with the request; `code` is `bearer_token_missing` or `unauthenticated`.
    #[error("{message}")]
    Unauthenticated {
        /// The machine code.
        code: &'static str,
        /// The human message (never the key).
        message: &'static str,
    },
    /// The key is valid but its role or store list does not allow this request.
    #[error("{0}")]
    Forbidden(String),
    /// Something failed on our side (logged; never shown to the caller).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A `validation_error` with `message`.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::BadRequest { code: "validation_error", message: message.into() }
    }
}

impl From<TupleKeyError> for ApiError {
    fn from(error: TupleKeyError) -> ApiError {
        ApiError::validation(error.to_string())
    }
}

fn engine_status(error: &EngineError) -> StatusCode {
    match error {
        EngineError::StoreNotFound(_) | EngineError::ModelNotFound(_) | EngineError::ApprovalNotFound(_) => {
            StatusCode::NOT_FOUND
        }
        EngineError::ApprovalDecided { .. } => StatusCode::CONFLICT,
        EngineError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // The request is fine but asks for a state this node has not reached; a retry may succeed.
        EngineError::RevisionUnavailable { .. } => StatusCode::CONFLICT,
        // As OpenFGA answers a request that ran out of time: the caller may retry, or ask less.
        EngineError::Eval(EvalError::DeadlineExceeded) => StatusCode::GATEWAY_TIMEOUT,
        EngineError::Eval(EvalError::DepthExceeded { .. })
        | EngineError::Eval(_)
        | EngineError::NoModel(_)
        | EngineError::Schema(_)
        | EngineError::TypeNotFound(_)
        | EngineError::RelationNotFound { .. }
        | EngineError::Validation(_)
        | EngineError::InvalidTuple { .. }
        | EngineError::InvalidContextualTuple { .. }
        | EngineError::WriteConflict(_)
        | EngineError::DuplicateInRequest(_)
        | EngineError::InvalidContinuationToken(_)
        | EngineError::LimitExceeded { .. } => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::Engine(error) => {
                let status = engine_status(error);
                if status.is_server_error() && !matches!(error, EngineError::Eval(EvalError::DeadlineExceeded)) {
                    tracing::error!(error = %error, "engine failure");
                    (status, json!({"code": "internal_error", "message": "internal server error"}))
                } else {
                    (status, json!({"code": error.openfga_code().1, "message": error.to_string()}))
                }
            }
            ApiError::BadRequest { code, message } => {
                (StatusCode::BAD_REQUEST, json!({"code": code, "message": message}))
            }
            ApiError::NotFound { code, message } => (StatusCode::NOT_FOUND, json!({"code": code, "message": message})),
            ApiError::Diagnostics(errors) => {
                let diagnostics: Vec<serde_json::Value> = errors
                    .iter()
                    .take(100)
                    .map(|e| match e.span {
                        Some(span) => {
                            json!({"line": span.line_start + 1, "column": span.column_start + 1, "message": e.message})
                        }
                        None => json!({"message": e.message}),
                    })
                    .collect();
                let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
                let message = crate::engine::joined(&messages);
                (
                    StatusCode::BAD_REQUEST,
                    json!({"code": "validation_error", "message": message, "diagnostics": diagnostics}),
                )
            }
            ApiError::BodyTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"code": "body_too_large", "message": "request body is larger than the configured limit"}),
            ),
            ApiError::RouteNotFound(path) => (
                StatusCode::NOT_FOUND,
                json!({"code": "undefined_endpoint", "message": format!("no route for `{path}`")}),
            ),
            ApiError::MethodNotAllowed(route) => (
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"code": "method_not_allowed", "message": format!("method not allowed: `{route}`")}),
            ),
            ApiError::AuthzenStoreNotConfigured => (
                StatusCode::NOT_FOUND,
                json!({"code": "authzen_store_not_configured", "message": "no default AuthZEN store is configured: \
                    start writ with `--authzen-store STORE_ID`, or call `/stores/{store_id}/access/v1/...`"}),
            ),
            ApiError::Unauthenticated { code, message } => {
                let mut response =
                    (StatusCode::UNAUTHORIZED, Json(json!({"code": code, "message": message}))).into_response();
                response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return response;
            }
            ApiError::Forbidden(message) => (StatusCode::FORBIDDEN, json!({"code": "forbidden", "message": message})),
            ApiError::Internal(detail) => {
                tracing::error!(error = %detail, "internal failure");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"code": "internal_error", "message": "internal server error"}),
                )
            }
        };
        (status, Json(body)).into_response()
    }
}

/// Gives an error answer that the framework wrote itself (a path or query rejection, an
/// unsupported media type, a body over the limit met before a handler ran) the API's
/// `{"code", "message"}` JSON body, keeping its status; every other answer passes unchanged.
pub(super) async fn json_error_body(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    if status.is_server_error() {
        tracing::error!(status = status.as_u16(), "framework failure");
        return (status, Json(json!({"code": "internal_error", "message": "internal server error"}))).into_response();
    }
    // The framework's own texts are one short line ("Invalid URL: Invalid UTF-8 in `store_id`").
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = match text.chars().next() {
        None => status.canonical_reason().unwrap_or("bad request").to_lowercase(),
        Some(first) => first.to_lowercase().chain(text.chars().skip(1)).collect(),
    };
    let code = match status {
        StatusCode::NOT_FOUND => "undefined_endpoint",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::URI_TOO_LONG => "uri_too_long",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "headers_too_large",
        _ => "validation_error",
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let body = json!({"code": code, "message": message}).to_string();
    Response::from_parts(parts, axum::body::Body::from(body))
}
