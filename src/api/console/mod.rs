//! The console (DESIGN §10): server-rendered pages under `/console/`, mounted by
//! `writ serve --console`. It lives inside `api` because `api` alone touches HTTP; it reaches the
//! engine only through [`Engine`](crate::engine::Engine) and decides who may do what with the
//! API's own machinery: a session's principal comes from [`session::SessionAuthenticator`] (an
//! [`Authenticator`](super::auth::Authenticator)) and every route is admitted by
//! [`super::auth::admit`] with the same [`Access`] the matching API route declares (reader to see
//! a store, writer to add or delete tuples).
//!
//! Pages: sign-in (`--auth preshared`), the store list, **Decisions**, **Explain** (`explain.rs`),
//! **Tuples** and **Model** (with runs of pasted model-test files, `model_tests.rs`). The Decisions filters are read by the API's own parser
//! ([`decisions::DecisionFilterText`]).
//! Every tuple change is an ordinary engine write with the signed-in key's name as its actor, so
//! it shows in `/changes` like any other; a model is saved as `PUT writ/model` saves one.
//!
//! Invariants: every answer carries `Content-Security-Policy: default-src 'self'` and nothing is
//! loaded from another origin; every POST that changes anything checks the session's CSRF token
//! before anything else (403 without it), and a POST the browser marks as sent from another site
//! is refused even before that; lists are read a page at a time by cursor, never whole;
//! with `--auth none` the console exists only on a loopback listener (`config` refuses the rest)
//! and says on every page that authentication is off.
//! Must not import `store`, `index` or `eval`.

mod agents;
mod approvals;
mod explain;
mod graph;
mod model_tests;
mod session;
#[cfg(test)]
mod tests;
mod view;

use super::auth::{self, Access, Auth, Principal, Scope};
use super::dto::{writ_page, ReadTupleKeyDto};
use super::time::format_rfc3339;
use super::{blocking, decisions, tuples, ApiError, AppState};
use crate::engine::{ChangeOperation, EngineError, WriteRequest};
use crate::model::Model;
use crate::tuple::{StoredTuple, Tuple};
use axum::extract::{Form, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{self, MethodRouter};
use axum::{Extension, Router};
use serde::Deserialize;
use session::{Session, SessionAuthenticator, Sessions};
use std::sync::Arc;

/// Rows on one page of a console list.
const PAGE_SIZE: usize = 50;

/// What the console's handlers share.
#[derive(Clone)]
struct ConsoleState {
    /// The API's state, as its handlers see it.
    app: AppState,
    /// The same state with the console's sessions as its authenticator, for [`auth::admit`].
    gated: AppState,
    sessions: Arc<Sessions>,
}

/// The session a request came with (`None` before sign-in), as the gate found it.
#[derive(Clone)]
struct Visit(Option<Session>);

/// What every store page's handler starts from: the console's state, the store the path names,
/// and the visit the gate admitted (the console's [`super::dto::StorePath`]). It rejects as
/// `Path` and `Extension` would, in that order.
struct StoreVisit {
    console: ConsoleState,
    store_id: String,
    visit: Visit,
}

impl FromRequestParts<ConsoleState> for StoreVisit {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &ConsoleState) -> Result<Self, Self::Rejection> {
        let Path(store_id) =
            Path::<String>::from_request_parts(parts, console).await.map_err(IntoResponse::into_response)?;
        let Extension(visit) =
            Extension::<Visit>::from_request_parts(parts, console).await.map_err(IntoResponse::into_response)?;
        Ok(StoreVisit { console: console.clone(), store_id, visit })
    }
}

/// The console's routes, ready to merge into the API's router.
pub(super) fn router(app: AppState) -> Router {
    router_with_sessions(app, Arc::new(Sessions::default()))
}

/// [`router`] over a given session table (tests look into it).
fn router_with_sessions(app: AppState, sessions: Arc<Sessions>) -> Router {
    let gated_auth = match &app.auth {
        Auth::None => Auth::None,
        Auth::Preshared(_) | Auth::With(_) => Auth::With(Arc::new(SessionAuthenticator(sessions.clone()))),
    };
    let gated = AppState { auth: gated_auth, ..app.clone() };
    let state = ConsoleState { app, gated, sessions };
    let any_store = Access::reader(Scope::AnyStore);
    let (reader, writer) = (Access::reader(Scope::PathStore), tuples::WRITE_ACCESS);
    let gate = |access: Access, methods: MethodRouter<ConsoleState>| {
        methods.route_layer(middleware::from_fn_with_state(
            state.clone(),
            move |State(state): State<ConsoleState>, request: Request, next: Next| admit(state, access, request, next),
        ))
    };
    Router::new()
        .route("/console", routing::get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", gate(any_store, routing::get(home)))
        .route("/console/console.css", routing::get(stylesheet))
        .route("/console/static/console.js", routing::get(script))
        .route("/console/sign-in", gate(Access::Open, routing::get(sign_in_form).post(sign_in)))
        .route("/console/sign-out", gate(any_store, routing::post(sign_out)))
        .route("/console/stores/{store_id}/tuples", gate(reader, routing::get(tuples_page)))
        .route("/console/stores/{store_id}/tuples/add", gate(writer, routing::post(add_tuple)))
        .route("/console/stores/{store_id}/tuples/delete", gate(writer, routing::post(delete_tuple)))
        .route("/console/stores/{store_id}/decisions", gate(reader, routing::get(decisions_page)))
        .route("/console/stores/{store_id}/explain", gate(reader, routing::get(explain::explain_page)))
        .route("/console/stores/{store_id}/agents", gate(reader, routing::get(agents::agents_page)))
        .route("/console/stores/{store_id}/agents/revoke", gate(writer, routing::get(agents::revoke_preview)))
        .route("/console/stores/{store_id}/approvals", gate(reader, routing::get(approvals::approvals_page)))
        .route(
            "/console/stores/{store_id}/approvals/{approval_id}",
            gate(super::approvals::DECIDE_ACCESS, routing::post(approvals::decide_approval)),
        )
        .route("/console/stores/{store_id}/model", gate(reader, routing::get(model_page)))
        .route("/console/stores/{store_id}/model", gate(super::models::WRITE_ACCESS, routing::post(save_model)))
        .route("/console/stores/{store_id}/model/test", gate(reader, routing::post(model_tests::run_tests)))
        .layer(middleware::map_response(secure_headers))
        .with_state(state)
}

/// Every console answer: same-origin only, never framed, sniffed or cached.
async fn secure_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The gate of every console route: finds the session (with `--auth none`, the visitor's
/// anonymous one, unstored, so forms still carry a CSRF token), then admits the request with the
/// API's own check of `access`. A request without a session is sent to sign in; one the check
/// refuses gets a 403 page.
async fn admit(console: ConsoleState, access: Access, request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::POST && from_another_site(request.headers()) {
        return Refusal::forbidden("the console takes forms only from its own pages").into_response();
    }
    let mut started = None;
    let session = match console.sessions.find(request.headers()) {
        Some(session) => Some(session),
        None if matches!(console.app.auth, Auth::None) => match console.sessions.anonymous(request.headers()) {
            Some((session, fresh)) => {
                started = fresh.then(|| session.clone());
                Some(session)
            }
            None => None,
        },
        None => None,
    };
    let mut request = match auth::admit(&console.gated, access, request).await {
        Ok(request) => request,
        Err(ApiError::Unauthenticated { .. }) => return Redirect::to("/console/sign-in").into_response(),
        Err(refusal) => return Refusal::from(refusal).into_response(),
    };
    request.extensions_mut().insert(Visit(session));
    let mut response = next.run(request).await;
    if let Some(session) = started {
        response.headers_mut().append(header::SET_COOKIE, session.cookie());
    }
    response
}

/// Whether the browser says the request comes from another site's page (`Sec-Fetch-Site`): such a
/// POST is refused before anything else, sign-in included, as a second wall behind the CSRF token
/// and the SameSite cookie. Clients that send no such header (older browsers, tests) rely on those.
fn from_another_site(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|site| site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site"))
}

/// A console request that cannot be answered, shown as a page.
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn forbidden(message: &str) -> Refusal {
        Refusal { status: StatusCode::FORBIDDEN, message: message.to_string() }
    }

    fn bad_request(message: String) -> Refusal {
        Refusal { status: StatusCode::BAD_REQUEST, message }
    }
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Refusal {
        let message = error.to_string();
        // The API's one mapping decides the status (and logs a server failure).
        let status = error.into_response().status();
        let message =
            if status.is_server_error() { "the server failed; its log says why".to_string() } else { message };
        Refusal { status, message }
    }
}

impl From<EngineError> for Refusal {
    fn from(error: EngineError) -> Refusal {
        Refusal::from(ApiError::from(error))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            status if status.is_client_error() => "Cannot do that",
            _ => "Something failed",
        };
        (self.status, view::problem(title, &self.message)).into_response()
    }
}

/// Refuses a change whose form does not carry the session's CSRF token.
fn check_csrf(visit: &Visit, presented: &str) -> Result<(), Refusal> {
    match &visit.0 {
        Some(session) if session.csrf_matches(presented) => Ok(()),
        _ => Err(Refusal::forbidden("the form's CSRF token is missing or wrong: reload the page and try again")),
    }
}

/// The signed-in principal; `None` when authentication is off.
fn principal(visit: &Visit) -> Option<&Principal> {
    visit.0.as_ref().and_then(|session| session.principal.as_ref())
}

/// The frame of a page: the stores the viewer may open, who is signed in, the CSRF token.
fn chrome(console: &ConsoleState, visit: &Visit, store: Option<&str>) -> view::Chrome {
    let principal = principal(visit);
    let stores = console
        .app
        .engine
        .list_stores()
        .into_iter()
        .filter(|record| principal.is_none_or(|principal| principal.allows_store(&record.id)))
        .map(|record| (record.id, record.name))
        .collect();
    view::Chrome {
        stores,
        store: store.map(str::to_string),
        signed_in_as: principal.map(Principal::actor),
        csrf: visit.0.as_ref().map(|session| session.csrf.clone()).unwrap_or_default(),
    }
}

/// Percent-encodes `text` for a URL's path segment or query value.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A query string of the non-empty `pairs`.
fn query_string(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect();
    parts.join("&")
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|value| !value.is_empty())
}

async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], view::STYLESHEET)
}

async fn script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], view::SCRIPT)
}

#[derive(Deserialize)]
struct HomeQuery {
    store: Option<String>,
}

/// The store list; `?store=` (the **Store** picker) opens that store's Tuples page.
async fn home(
    State(console): State<ConsoleState>,
    Extension(visit): Extension<Visit>,
    Query(query): Query<HomeQuery>,
) -> Response {
    if let Some(store) = non_empty(&query.store) {
        return Redirect::to(&format!("/console/stores/{}/tuples", encode(store))).into_response();
    }
    view::stores(&chrome(&console, &visit, None)).into_response()
}

async fn sign_in_form(State(console): State<ConsoleState>) -> Response {
    match console.app.auth {
        Auth::None => Redirect::to("/console/").into_response(),
        Auth::Preshared(_) | Auth::With(_) => view::sign_in(None).into_response(),
    }
}

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    key: String,
}

/// Checks the key and starts a session for its principal; the cookie carries only the session id.
async fn sign_in(State(console): State<ConsoleState>, Form(form): Form<SignInForm>) -> Response {
    let principal = match &console.app.auth {
        Auth::None => return Redirect::to("/console/").into_response(),
        Auth::Preshared(keys) => keys.authenticate(form.key.trim()).cloned(),
        Auth::With(_) => None,
    };
    let Some(principal) = principal else {
        tracing::info!("console sign-in refused an unknown key");
        let page = view::sign_in(Some("That API key is not valid."));
        return (StatusCode::UNAUTHORIZED, page).into_response();
    };
    match console.sessions.open(Some(principal)) {
        Some(session) => {
            let mut response = Redirect::to("/console/").into_response();
            response.headers_mut().append(header::SET_COOKIE, session.cookie());
            response
        }
        None => Refusal { status: StatusCode::INTERNAL_SERVER_ERROR, message: "no randomness for a session".into() }
            .into_response(),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn sign_out(
    State(console): State<ConsoleState>,
    Extension(visit): Extension<Visit>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, Refusal> {
    check_csrf(&visit, &form.csrf)?;
    if let Some(session) = &visit.0 {
        console.sessions.close(session);
    }
    let mut response = Redirect::to("/console/sign-in").into_response();
    response.headers_mut().append(header::SET_COOKIE, Session::removal_cookie());
    Ok(response)
}

#[derive(Deserialize)]
struct TuplesQuery {
    object: Option<String>,
    relation: Option<String>,
    subject: Option<String>,
    /// Where the tuple page starts (a `read` continuation token).
    after: Option<String>,
    /// Where the change feed starts (a `changes` continuation token).
    changes_after: Option<String>,
}

/// A stored tuple as the Tuples and Agents pages list it.
fn tuple_row(StoredTuple { tuple, expires_at_ms }: &StoredTuple) -> view::TupleRow {
    view::TupleRow {
        object: tuple.object.to_string(),
        relation: tuple.relation.clone(),
        subject: tuple.subject.to_string(),
        condition: tuple.condition.as_ref().map(|condition| condition.name.clone()),
        expires_at: expires_at_ms.map(format_rfc3339),
        key: format!("{}#{}@{}", tuple.object, tuple.relation, tuple.subject),
    }
}

/// Whether the viewer may do what `access` guards in `store_id`: the rule the route (the API's
/// and the console's own) enforces, asked before a control is shown. Without authentication
/// anyone may.
fn may(visit: &Visit, access: Access, store_id: &str) -> bool {
    principal(visit).is_none_or(|principal| access.admits(principal, Some(store_id)).is_ok())
}

/// Whether the viewer may add and delete tuples in `store_id`.
fn can_write(visit: &Visit, store_id: &str) -> bool {
    may(visit, tuples::WRITE_ACCESS, store_id)
}

async fn tuples_page(
    StoreVisit { console, store_id, visit }: StoreVisit,
    Query(query): Query<TuplesQuery>,
) -> Result<Response, Refusal> {
    let filter = tuples::read_filter(Some(ReadTupleKeyDto {
        user: non_empty(&query.subject).map(str::to_string),
        relation: non_empty(&query.relation).map(str::to_string),
        object: non_empty(&query.object).map(str::to_string),
    }))?;
    let after = non_empty(&query.after).map(tuples::token_read_cursor).transpose()?;
    let changes_after = non_empty(&query.changes_after).map(tuples::token_cursor).transpose()?;
    let engine = console.app.engine.clone();
    let id = store_id.clone();
    let (page, changes) = blocking(move || {
        let store = engine.store(&id)?;
        Ok((store.read_page(&filter, after, PAGE_SIZE)?, store.changes(changes_after, None, PAGE_SIZE)?))
    })
    .await?;
    let rows = page.tuples.iter().map(tuple_row).collect();
    let filter_text = [
        non_empty(&query.object).unwrap_or_default().to_string(),
        non_empty(&query.relation).unwrap_or_default().to_string(),
        non_empty(&query.subject).unwrap_or_default().to_string(),
    ];
    let [object, relation, subject] = &filter_text;
    let changes_now = non_empty(&query.changes_after).unwrap_or_default();
    let next_page = page.next.map(|cursor| {
        let token = tuples::read_cursor_token(cursor);
        query_string(&[
            ("object", object),
            ("relation", relation),
            ("subject", subject),
            ("after", &token),
            ("changes_after", changes_now),
        ])
    });
    let next_changes = match changes.last() {
        Some(last) if changes.len() == PAGE_SIZE => {
            let token = tuples::cursor_token(last.cursor);
            let after_now = non_empty(&query.after).unwrap_or_default();
            Some(query_string(&[
                ("object", object),
                ("relation", relation),
                ("subject", subject),
                ("after", after_now),
                ("changes_after", &token),
            ]))
        }
        _ => None,
    };
    let changes = changes
        .iter()
        .map(|change| view::ChangeRow {
            revision: change.cursor.revision,
            time: format_rfc3339(change.timestamp_ms),
            operation: match change.operation {
                ChangeOperation::Write => "write",
                ChangeOperation::Delete => "delete",
            },
            tuple: change.tuple.tuple.to_string(),
            actor: change.actor.clone().unwrap_or_default(),
        })
        .collect();
    let page = view::TuplesPage {
        can_write: can_write(&visit, &store_id),
        store: encode(&store_id),
        filter: filter_text.clone(),
        rows,
        next_page,
        changes,
        next_changes,
        page_size: PAGE_SIZE,
    };
    Ok(view::tuples(&chrome(&console, &visit, Some(&store_id)), &page).into_response())
}

#[derive(Deserialize)]
struct AddForm {
    #[serde(default)]
    csrf: String,
    /// The console page to show afterwards (the Explain page's **Grant**); the Tuples page if none.
    #[serde(default)]
    back: String,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    relation: String,
    #[serde(default)]
    object: String,
}

#[derive(Deserialize)]
struct DeleteForm {
    #[serde(default)]
    csrf: String,
    /// The console page to show afterwards (the Explain page's **Revoke**); the Tuples page if none.
    #[serde(default)]
    back: String,
    #[serde(default)]
    tuple: String,
}

/// Where a change returns to: `back` when it is a page of the same store's console (never another
/// site, so a form cannot be made into an open redirect), else the store's Tuples page.
fn back_to(store_id: &str, back: &str) -> String {
    let store_pages = format!("/console/stores/{}/", encode(store_id));
    let safe = back.starts_with(&store_pages) && !back.contains("//") && !back.contains('\\');
    if safe {
        back.to_string()
    } else {
        format!("{store_pages}tuples")
    }
}

/// Writes through the engine as the signed-in key, then shows the page `back` names.
async fn write_as(
    console: &ConsoleState,
    visit: &Visit,
    store_id: String,
    mut request: WriteRequest,
    back: &str,
) -> Result<Response, Refusal> {
    request.actor = principal(visit).map(Principal::actor);
    let engine = console.app.engine.clone();
    let back = back_to(&store_id, back);
    blocking(move || Ok(engine.store(&store_id)?.write(request)?)).await?;
    Ok(Redirect::to(&back).into_response())
}

/// A tuple in `object#relation@subject` form, or a 400 page saying what is wrong with it.
fn parse_tuple(text: &str) -> Result<Tuple, Refusal> {
    text.trim().parse().map_err(|error: crate::tuple::TupleError| Refusal::bad_request(error.to_string()))
}

async fn add_tuple(
    StoreVisit { console, store_id, visit }: StoreVisit,
    Form(form): Form<AddForm>,
) -> Result<Response, Refusal> {
    check_csrf(&visit, &form.csrf)?;
    let tuple = Tuple::from_parts(form.object.trim(), form.relation.trim(), form.subject.trim())
        .map_err(|error| Refusal::bad_request(error.to_string()))?;
    let request = WriteRequest { writes: vec![StoredTuple::new(tuple)], ..WriteRequest::default() };
    write_as(&console, &visit, store_id, request, &form.back).await
}

async fn delete_tuple(
    StoreVisit { console, store_id, visit }: StoreVisit,
    Form(form): Form<DeleteForm>,
) -> Result<Response, Refusal> {
    check_csrf(&visit, &form.csrf)?;
    let tuple = parse_tuple(&form.tuple)?;
    let request = WriteRequest { deletes: vec![tuple], ..WriteRequest::default() };
    write_as(&console, &visit, store_id, request, &form.back).await
}

#[derive(Deserialize)]
struct DecisionsQuery {
    #[serde(flatten)]
    filter: decisions::DecisionFilterQuery,
    /// Where the page starts (a decisions continuation token).
    before: Option<String>,
}

async fn decisions_page(
    StoreVisit { console, store_id, visit }: StoreVisit,
    Query(query): Query<DecisionsQuery>,
) -> Result<Response, Refusal> {
    let text = query.filter.text(query.before.as_deref());
    let filter = text.parse(PAGE_SIZE)?;
    let filter_text = text.given_filters().map(str::to_string);
    let engine = console.app.engine.clone();
    let id = store_id.clone();
    let found = blocking(move || Ok(engine.decision_log().list(&engine.store(&id)?, &filter)?)).await?;
    let (found, token) = writ_page(found, PAGE_SIZE, |(cursor, _)| decisions::cursor_token(*cursor));
    let older = (!token.is_empty()).then(|| {
        let [principal, agent, tool, object, decision, since, until] = &filter_text;
        query_string(&[
            ("principal", principal),
            ("agent", agent),
            ("tool", tool),
            ("object", object),
            ("decision", decision),
            ("since", since),
            ("until", until),
            ("before", &token),
        ])
    });
    let rows = found
        .into_iter()
        .map(|(_, record)| view::DecisionRow {
            time: format_rfc3339(record.time_ms),
            // An audience or a filter over a list is not one question the Explain form can ask.
            explain: (!record.audience && !record.object.ends_with(':')).then(|| view::ExplainFields {
                subject: record.principals.first().cloned().unwrap_or_default(),
                chain: record.principals.get(1..).unwrap_or_default().join(", "),
                delegation: record.delegation_relation.clone().unwrap_or_default(),
            }),
            principals: record.principals.join(" → "),
            tool: record.tool().unwrap_or_default().to_string(),
            relation: record.relation,
            object: record.object,
            allowed: record.allowed,
        })
        .collect();
    let page = view::DecisionsPage { store: encode(&store_id), filter: filter_text, rows, older };
    Ok(view::decisions(&chrome(&console, &visit, Some(&store_id)), &page).into_response())
}

/// Whether the viewer may write models in `store_id`.
fn can_save_model(visit: &Visit, store_id: &str) -> bool {
    may(visit, super::models::WRITE_ACCESS, store_id)
}

/// The latest model's id, DSL text and drawing; `None` before the store has one.
async fn current_model(console: &ConsoleState, store_id: &str) -> Result<Option<view::CurrentModel>, Refusal> {
    let engine = console.app.engine.clone();
    let id = store_id.to_string();
    blocking(move || match engine.store(&id)?.model(None) {
        Ok(info) => {
            Ok(Some(view::CurrentModel { text: info.model.to_dsl(), graph: graph::draw(&info.model), id: info.id }))
        }
        Err(EngineError::NoModel(_)) => Ok(None),
        Err(error) => Err(error.into()),
    })
    .await
    .map_err(Refusal::from)
}

async fn model_page(StoreVisit { console, store_id, visit }: StoreVisit) -> Result<Response, Refusal> {
    let page = model_view(&console, &visit, &store_id, String::new(), None).await?;
    Ok(view::model(&chrome(&console, &visit, Some(&store_id)), &page).into_response())
}

/// The Model page with the current model's text in the save form, and `test_file` in the
/// **Test file** form with its run, if it was run.
async fn model_view(
    console: &ConsoleState,
    visit: &Visit,
    store_id: &str,
    test_file: String,
    test_run: Option<view::TestRun>,
) -> Result<view::ModelPage, Refusal> {
    let current = current_model(console, store_id).await?;
    let draft = current.as_ref().map(|current| current.text.clone()).unwrap_or_default();
    Ok(view::ModelPage {
        store: encode(store_id),
        current,
        draft,
        diagnostics: Vec::new(),
        can_save: can_save_model(visit, store_id),
        test_file,
        test_run,
    })
}

#[derive(Deserialize)]
struct ModelForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    text: String,
}

/// Saves the DSL text as the store's new model; a model that does not check comes back in the
/// form with each problem at its `line:column`, and nothing is saved.
async fn save_model(
    StoreVisit { console, store_id, visit }: StoreVisit,
    Form(form): Form<ModelForm>,
) -> Result<Response, Refusal> {
    check_csrf(&visit, &form.csrf)?;
    super::limits::check_model_text(&form.text, &console.app.options)?;
    let engine = console.app.engine.clone();
    let (id, text) = (store_id.clone(), form.text.clone());
    let saved = blocking(move || match Model::parse_dsl(&text) {
        Ok(model) => {
            super::models::require_types(&model)?;
            Ok(Ok(engine.store(&id)?.write_model(model)?))
        }
        Err(errors) => Ok(Err(errors.into_vec())),
    })
    .await?;
    let diagnostics = match saved {
        Ok(_) => return Ok(Redirect::to(&format!("/console/stores/{}/model", encode(&store_id))).into_response()),
        Err(errors) => errors
            .iter()
            .map(|error| match &error.span {
                Some(span) => format!("{}:{}: {}", span.line_start + 1, span.column_start + 1, error.message),
                None => error.message.clone(),
            })
            .collect(),
    };
    let page = view::ModelPage {
        store: encode(&store_id),
        current: current_model(&console, &store_id).await?,
        draft: form.text,
        diagnostics,
        can_save: true,
        test_file: String::new(),
        test_run: None,
    };
    let html = view::model(&chrome(&console, &visit, Some(&store_id)), &page);
    Ok((StatusCode::BAD_REQUEST, html).into_response())
}
