//! The route table: each area declares its routes in a [`RouteTable`], one [`Methods`] per path,
//! and every method of a route is declared with the [`Access`] it needs and the [`Operation`] it
//! performs (what it takes and answers, for `/openapi.json`). The table builds the axum router,
//! layering each endpoint with the check of its own access, and records every path and method it
//! routes, because axum cannot list a router's routes.
//!
//! Invariant: the API's router is built only from a [`RouteTable`], and a handler can only enter
//! one through [`get`], [`post`], [`put`] or [`delete`], which take its [`Access`]: no endpoint is
//! served without a declared requirement. [`super::route_paths`] names every path it serves
//! (tests sweep each one with hostile input).
//! Must not import `store`, `index` or `eval`.

use super::auth::{self, Access};
use super::openapi::Operation;
use super::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{self, MethodRouter};
use axum::Router;

/// One method of a route: what it needs and the handler that answers it.
struct Endpoint {
    /// `GET` stands for `HEAD` too.
    method: Method,
    access: Access,
    operation: Operation,
    handler: MethodRouter<AppState>,
}

/// The methods of one route, each with its access and operation; built with [`get`], [`post`],
/// [`put`] and [`delete`] and chained like axum's `get(a).post(b)`.
pub(super) struct Methods {
    endpoints: Vec<Endpoint>,
}

macro_rules! method {
    ($name:ident, $method:ident, $doc:literal) => {
        #[doc = $doc]
        #[allow(dead_code, reason = "not every method starts a route's chain")]
        pub(super) fn $name<H, T>(access: Access, operation: Operation, handler: H) -> Methods
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            Methods { endpoints: Vec::new() }.$name(access, operation, handler)
        }

        impl Methods {
            #[doc = $doc]
            pub(super) fn $name<H, T>(mut self, access: Access, operation: Operation, handler: H) -> Methods
            where
                H: Handler<T, AppState>,
                T: 'static,
            {
                let handler = routing::$name(handler);
                self.endpoints.push(Endpoint { method: Method::$method, access, operation, handler });
                self
            }
        }
    };
}

method!(get, GET, "Serves `GET` (and `HEAD`) with `handler` to callers with `access`; `operation` documents it.");
method!(post, POST, "Serves `POST` with `handler` to callers with `access`; `operation` documents it.");
method!(put, PUT, "Serves `PUT` with `handler` to callers with `access`; `operation` documents it.");
method!(delete, DELETE, "Serves `DELETE` with `handler` to callers with `access`; `operation` documents it.");

/// One routed path and its methods.
struct Route {
    path: &'static str,
    methods: Methods,
}

/// The declared routes, in the order they were routed.
pub(super) struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    /// An empty table.
    pub(super) fn new() -> RouteTable {
        RouteTable { routes: Vec::new() }
    }

    /// Routes `path` to `methods`, each with its declared access.
    pub(super) fn route(mut self, path: &'static str, methods: Methods) -> RouteTable {
        self.routes.push(Route { path, methods });
        self
    }

    /// Adds every route of `other`.
    pub(super) fn merge(mut self, other: RouteTable) -> RouteTable {
        self.routes.extend(other.routes);
        self
    }

    /// The routed paths, in the order they were routed.
    pub(super) fn paths(&self) -> Vec<&'static str> {
        self.routes.iter().map(|route| route.path).collect()
    }

    /// Every (method, path, access) the table declares.
    pub(super) fn endpoints(&self) -> Vec<(Method, &'static str, Access)> {
        self.operations().into_iter().map(|(method, path, access, _)| (method, path, access)).collect()
    }

    /// Every (method, path, access, operation) the table declares, for the API's document.
    pub(super) fn operations(&self) -> Vec<(Method, &'static str, Access, Operation)> {
        let mut operations = Vec::new();
        for route in &self.routes {
            for endpoint in &route.methods.endpoints {
                operations.push((endpoint.method.clone(), route.path, endpoint.access, endpoint.operation));
            }
        }
        operations
    }

    /// The router: every endpoint behind the check of its access (a route layer, so it runs only
    /// for a matched route and method), a 405 behind [`Access::unserved_method`] and a 404
    /// behind [`Access::unknown_route`], so both answers reach only callers the check lets by.
    pub(super) fn into_router(self, state: &AppState) -> Router<AppState> {
        let mut router = Router::new();
        for Route { path, methods } in self.routes {
            let served: Vec<Access> = methods.endpoints.iter().map(|endpoint| endpoint.access).collect();
            let names_store = path.contains("{store_id}");
            let mut method_router = MethodRouter::new();
            for Endpoint { access, handler, .. } in methods.endpoints {
                // With no authenticator the check admits every request untouched: a layer for
                // it would only cost each request a boxed service, a future and two state
                // clones (with the request span's two, a fifth of a `/healthz`'s instructions).
                if state.auth.admits_everyone() {
                    method_router = method_router.merge(handler);
                    continue;
                }
                let check = middleware::from_fn_with_state(
                    state.clone(),
                    move |State(state): State<AppState>, request: Request, next: Next| {
                        auth::enforce(state, access, request, next)
                    },
                );
                method_router = method_router.merge(handler.route_layer(check));
            }
            let method_not_allowed = move |State(state): State<AppState>, request: Request| async move {
                let access = Access::unserved_method(request.method(), &served, names_store);
                refuse(&state, access, request, |request| {
                    ApiError::MethodNotAllowed(format!("{} {}", request.method(), request.uri().path()))
                })
                .await
            };
            router = router.route(path, method_router.fallback(method_not_allowed));
        }
        router.fallback(|State(state): State<AppState>, request: Request| async move {
            let access = Access::unknown_route(request.method());
            refuse(&state, access, request, |request| ApiError::RouteNotFound(request.uri().path().to_string())).await
        })
    }
}

/// Answers `error` to a caller the check of `access` admits, and the check's refusal to any other.
async fn refuse(
    state: &AppState,
    access: Access,
    request: Request,
    error: impl FnOnce(&Request) -> ApiError,
) -> Response {
    match auth::admit(state, access, request).await {
        Ok(request) => {
            let answer = error(&request).into_response();
            // Read the body (within the body limit) so the connection can stay open for the
            // caller's next request; one too large to read closes it instead.
            match axum::body::to_bytes(request.into_body(), state.options.max_body_bytes).await {
                Ok(_) => answer,
                Err(_) => auth::closing(answer),
            }
        }
        Err(refusal) => auth::closing(refusal.into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::auth::{Role, Scope};
    use super::*;

    fn access(method: Method, path: &str) -> Option<Access> {
        let endpoints = super::super::routes().endpoints();
        endpoints.into_iter().find(|(m, p, _)| *m == method && *p == path).map(|(_, _, access)| access)
    }

    #[test]
    fn each_route_declares_what_it_needs() {
        let store = |role| Some(Access::Role(role, Scope::PathStore));
        let (reader, writer, admin) = (Role::Reader, Role::Writer, Role::Admin);
        assert_eq!(access(Method::GET, "/healthz"), Some(Access::Open));
        assert_eq!(access(Method::GET, "/.well-known/authzen-configuration"), Some(Access::Open));
        assert_eq!(access(Method::GET, "/metrics"), Some(Access::reader(Scope::Global)));
        assert_eq!(access(Method::GET, "/stores"), Some(Access::reader(Scope::AnyStore)));
        assert_eq!(access(Method::POST, "/stores"), Some(Access::admin(Scope::Global)));
        assert_eq!(access(Method::DELETE, "/stores/{store_id}"), store(admin));
        assert_eq!(access(Method::GET, "/stores/{store_id}"), store(reader));
        assert_eq!(access(Method::POST, "/stores/{store_id}/write"), store(writer));
        assert_eq!(access(Method::POST, "/stores/{store_id}/authorization-models"), store(admin));
        assert_eq!(access(Method::PUT, "/stores/{store_id}/writ/model"), store(admin));
        assert_eq!(access(Method::PUT, "/stores/{store_id}/assertions/{model_id}"), store(admin));
        assert_eq!(access(Method::GET, "/stores/{store_id}/writ/approvals"), store(Role::Approver));
        for step in ["approve", "deny"] {
            let path = format!("/stores/{{store_id}}/writ/approvals/{{approval_id}}/{step}");
            assert_eq!(access(Method::POST, &path), store(Role::Approver), "{step}");
        }
        for read in [
            "check",
            "batch-check",
            "expand",
            "list-objects",
            "streamed-list-objects",
            "list-users",
            "read",
            "writ/obo-check",
            "writ/audience-check",
            "writ/filter",
            "writ/explain",
            "access/v1/evaluation",
        ] {
            assert_eq!(access(Method::POST, &format!("/stores/{{store_id}}/{read}")), store(reader), "{read}");
        }
        assert_eq!(access(Method::GET, "/stores/{store_id}/writ/decisions"), store(reader));
        assert_eq!(access(Method::GET, "/stores/{store_id}/changes"), store(reader));
        assert_eq!(access(Method::POST, "/access/v1/evaluations"), Some(Access::reader(Scope::AuthzenStore)));
        assert_eq!(access(Method::GET, "/.well-known/authzen-configuration/stores/{store_id}"), store(reader));
        let open: Vec<&str> = super::super::routes()
            .endpoints()
            .into_iter()
            .filter(|(_, _, access)| *access == Access::Open)
            .map(|(_, path, _)| path)
            .collect();
        assert_eq!(open, ["/.well-known/authzen-configuration", "/healthz", "/readyz", "/openapi.json"]);
    }

    #[test]
    fn paths_and_methods_no_route_serves_fail_closed() {
        assert_eq!(Access::unknown_route(&Method::GET), Access::reader(Scope::AnyStore));
        assert_eq!(Access::unknown_route(&Method::HEAD), Access::reader(Scope::AnyStore));
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS] {
            assert_eq!(Access::unknown_route(&method), Access::admin(Scope::Global), "{method}");
        }
        let check = [Access::reader(Scope::PathStore)];
        assert_eq!(Access::unserved_method(&Method::PUT, &check, true), Access::admin(Scope::PathStore));
        assert_eq!(Access::unserved_method(&Method::GET, &check, true), Access::reader(Scope::PathStore));
        assert_eq!(
            Access::unserved_method(&Method::PUT, &[Access::reader(Scope::Global)], false),
            Access::admin(Scope::Global)
        );
        assert_eq!(Access::unserved_method(&Method::POST, &[Access::Open], false), Access::Open);
    }
}
