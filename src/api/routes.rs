//! The route table: each area's routes are added through a [`RouteTable`], which builds the axum
//! router and records every path it routes, because axum cannot list a router's routes.
//!
//! Invariant: the API's router is built only from a [`RouteTable`], so [`super::route_paths`]
//! names every path it serves (tests sweep each one with hostile input).
//! Must not import `store`, `index` or `eval`.

use super::AppState;
use axum::routing::MethodRouter;
use axum::Router;

/// An axum router together with the paths routed into it.
pub(super) struct RouteTable {
    router: Router<AppState>,
    paths: Vec<&'static str>,
}

impl RouteTable {
    /// An empty table.
    pub(super) fn new() -> RouteTable {
        RouteTable { router: Router::new(), paths: Vec::new() }
    }

    /// Routes `path` to `methods` (as `Router::route`) and records the path.
    pub(super) fn route(mut self, path: &'static str, methods: MethodRouter<AppState>) -> RouteTable {
        self.router = self.router.route(path, methods);
        self.paths.push(path);
        self
    }

    /// Adds every route of `other` (as `Router::merge`).
    pub(super) fn merge(mut self, other: RouteTable) -> RouteTable {
        self.router = self.router.merge(other.router);
        self.paths.extend(other.paths);
        self
    }

    /// The recorded paths, in the order they were routed.
    pub(super) fn paths(&self) -> &[&'static str] {
        &self.paths
    }

    /// The router, for the layers and fallbacks that apply to every route.
    pub(super) fn into_router(self) -> Router<AppState> {
        self.router
    }
}
