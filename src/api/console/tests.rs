//! Console tests that look inside the console: its session table.

use super::router_with_sessions;
use super::session::Sessions;
use crate::api::{ApiOptions, AppState, Auth, Metrics};
use crate::engine::Engine;
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use std::sync::Arc;
use tower::ServiceExt;

fn app(sessions: Arc<Sessions>) -> (axum::Router, String) {
    let engine = Arc::new(Engine::in_memory());
    let store = engine.create_store("console").map(|store| store.id).unwrap_or_default();
    let state = AppState {
        engine,
        options: ApiOptions::default(),
        metrics: Arc::new(Metrics::default()),
        revision_wait: std::time::Duration::from_millis(100),
        authzen_store: None,
        auth: Auth::None,
        alert_webhook: None,
    };
    (router_with_sessions(state, sessions), store)
}

async fn get(app: &axum::Router, uri: &str, cookie: Option<&str>) -> (StatusCode, Option<String>, String) {
    let mut request = Request::get(uri);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let set_cookie = response.headers().get(header::SET_COOKIE).map(|value| value.to_str().unwrap().to_string());
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, set_cookie, String::from_utf8_lossy(&bytes).into_owned())
}

fn csrf(page: &str) -> &str {
    let (_, rest) = page.split_once(r#"name="csrf" value=""#).unwrap();
    rest.split('"').next().unwrap()
}

/// With `--auth none` every cookie-less GET stored a new session (review of issue 30), so a
/// stream of requests filled the table: now reading leaves the table as it was, while each page
/// still carries a CSRF token that a change with the visitor's cookie is held to.
#[tokio::test]
async fn cookie_less_gets_without_authentication_store_no_session() {
    let sessions = Arc::new(Sessions::default());
    let (app, store) = app(sessions.clone());
    let tuples = format!("/console/stores/{store}/tuples");
    let mut cookies = Vec::new();
    for _ in 0..20 {
        let (status, cookie, page) = get(&app, &tuples, None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        cookies.push((cookie.unwrap(), csrf(&page).to_string()));
    }
    assert_eq!(sessions.len(), 0, "reading pages stores no session");
    // Each visitor has its own cookie and token; the same cookie gets the same token back.
    let (first_cookie, first_token) = &cookies[0];
    assert_ne!(first_cookie, &cookies[1].0);
    assert_ne!(first_token, &cookies[1].1);
    let cookie = first_cookie.split(';').next().unwrap();
    let (status, again, page) = get(&app, &tuples, Some(cookie)).await;
    assert_eq!((status, again), (StatusCode::OK, None), "a known visitor gets no new cookie");
    assert_eq!(csrf(&page), first_token);
    // A change needs the token of the cookie it comes with, not another visitor's.
    let change = |cookie: &str, token: &str| {
        Request::post(format!("{tuples}/add"))
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!("csrf={token}&subject=user%3Aanne&relation=owner&object=document%3A1&back=")))
            .unwrap()
    };
    let forged = app.clone().oneshot(change(cookie, &cookies[1].1)).await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let made_up = app.clone().oneshot(change("writ_console=not-an-id", first_token)).await.unwrap();
    assert_eq!(made_up.status(), StatusCode::FORBIDDEN, "a cookie that is no id gets a fresh token");
    assert_eq!(sessions.len(), 0);
}
