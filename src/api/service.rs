//! The API as one tower service, [`Api`]: axum's router, with `POST /stores/{store_id}/check`
//! answered ahead of it.
//!
//! Why: the check is the call an MCP server makes on every tool invocation, and for it the
//! router's generic work (matching the path, capturing and percent-decoding `{store_id}` into the
//! request's extensions, cloning the boxed route and layer services, three extractors and the
//! handler's boxed future) cost about as many instructions as reading and parsing its body.
//! This dispatch recognises that one route by its path and runs the steps the router would run,
//! through the same functions: the request span ([`super::spanned`]), the route's access check
//! (`query::CHECK_ACCESS`, the one the route table declares), the body within the limit and its parse
//! (`ApiJson::read`), the handler's own body (`query::answer_check`) and
//! the error-body rewrite ([`super::error::json_error_body`]).
//!
//! Invariant: a request this dispatch takes is answered exactly as the router answers it (status,
//! headers but the request id, body); anything else (another method or path, a store id that
//! needs percent-decoding, an empty one) goes to the router. `tests/check_route.rs` sends the same
//! requests through both and compares the answers.
//! Must not import `store`, `index` or `eval`.

use super::AppState;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method};
use axum::response::Response;
use axum::routing::future::RouteFuture;
use axum::Router;
use futures_util::future::{BoxFuture, Either};
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::Service;

/// The API: the router of every route, and the check route's dispatch ahead of it.
///
/// Serve it (`writ::api::serve::serve`), call it as a tower service (`tower::ServiceExt::oneshot`),
/// or put it into an axum app with `Router::new().fallback_service(api)`; [`Api::merge`] adds
/// routes beside the API's (the console's, the MCP gateway's).
#[derive(Clone)]
pub struct Api {
    router: Router,
    /// Shared, so a dispatched check takes a reference count, not a copy of every field.
    state: Arc<AppState>,
}

impl Api {
    /// The API over `router`, whose routes were built from `state`.
    pub(super) fn new(router: Router, state: AppState) -> Api {
        Api { router, state: Arc::new(state) }
    }

    /// The API with `other`'s routes beside its own (none of the API's layers wrap them).
    pub fn merge(self, other: Router) -> Api {
        Api { router: self.router.merge(other), state: self.state }
    }

    /// The router alone, without the check's dispatch ahead of it: it answers every request as
    /// [`Api`] does, the check through axum's routing.
    pub fn into_router(self) -> Router {
        self.router
    }
}

/// The store id of a request the check dispatch takes: `POST /stores/{store_id}/check` whose id
/// is a plain segment (no `%`, so percent-decoding would not change it).
fn check_store(request: &Request) -> Option<String> {
    if request.method() != Method::POST {
        return None;
    }
    let store_id = request.uri().path().strip_prefix("/stores/")?.strip_suffix("/check")?;
    let plain = !store_id.is_empty() && !store_id.contains(['/', '%']);
    plain.then(|| store_id.to_string())
}

/// `response` with the `content-length` its body's exact size gives, as the router's outermost
/// future sets it (hyper would send the same length; the header is set so that the two answers
/// are the same message in process too).
fn with_content_length(mut response: Response) -> Response {
    if !response.headers().contains_key(header::CONTENT_LENGTH) {
        if let Some(size) = response.body().size_hint().exact() {
            response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        }
    }
    response
}

impl<B> Service<Request<B>> for Api
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<RouteFuture<Infallible>, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let request = request.map(Body::new);
        match check_store(&request) {
            Some(store_id) => {
                let state = self.state.clone();
                Either::Right(Box::pin(async move {
                    Ok(with_content_length(super::query::dispatched_check(state, store_id, request).await))
                }))
            }
            None => Either::Left(self.router.call(request)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(method: Method, uri: &str) -> Option<String> {
        let request = Request::builder().method(method).uri(uri).body(Body::empty()).ok()?;
        check_store(&request)
    }

    #[test]
    fn only_a_post_to_a_plain_store_s_check_is_dispatched() {
        assert_eq!(store(Method::POST, "/stores/01ABC/check").as_deref(), Some("01ABC"));
        assert_eq!(store(Method::POST, "/stores/01ABC/check?x=1").as_deref(), Some("01ABC"));
        assert_eq!(store(Method::POST, "http://host/stores/s/check").as_deref(), Some("s"));
        for (method, uri) in [
            (Method::GET, "/stores/01ABC/check"),
            (Method::PUT, "/stores/01ABC/check"),
            (Method::POST, "/stores//check"),
            (Method::POST, "/stores/a%41/check"),
            (Method::POST, "/stores/a/b/check"),
            (Method::POST, "/stores/a/check/"),
            (Method::POST, "/stores/a/batch-check"),
            (Method::POST, "/stores/check"),
            (Method::POST, "/v1/stores/a/check"),
        ] {
            assert_eq!(store(method.clone(), uri), None, "{method} {uri}");
        }
    }
}
