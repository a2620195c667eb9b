//! The MCP gateway (DESIGN §8): the enforcement point in an agent's path. One file per concern, in
//! the order a request meets them:
//!
//! 1. `token` (keys kept fresh by `jwks`): verify the bearer JWT against the issuer's keys and
//!    give the principal chain (human first, current actor last). Pure given the keys and the clock.
//! 2. `mapping` (configured by `config`): which checks a JSON-RPC message needs (tool, resource or
//!    prompt → relation on an object, placeholders resolved from the call's arguments). Pure.
//! 3. `proxy`: streamable HTTP to the upstream server and back, JSON or SSE, through a rewrite.
//! 4. the router, here: `POST`/`GET`/`DELETE /mcp/{server}` and the RFC 9728 metadata at
//!    `/.well-known/oauth-protected-resource/mcp/{server}`; each decision an OBO check by `engine`
//!    (in [`decide`], the one call into it), recorded in the decision log. A `tools/call` whose
//!    only denying entries are `approval: required` (DESIGN §12) is allowed by an approved
//!    approval of the exact call (server, tool, chain, entry, arguments digest), one use each;
//!    otherwise its pending approval is raised and the `-32001` answer carries
//!    `data.approval: {id, url}`, the url being `{public_url}/stores/{store}/writ/approvals/{id}`.
//!
//! Invariant: the gateway never evaluates a permission itself: it only says which checks a
//! message needs (failing closed when it cannot tell), and `engine` decides them. No message
//! reaches an upstream before its token verified and, in `enforce` mode, its checks allowed;
//! the upstream never sees the client's `Authorization`.
//! It uses `engine` (and `tuple`, `record`, `wire`), never `store` or `api`; `token`, `config` and
//! `mapping` do no I/O at all (files and URLs are read here and in `jwks`, the environment is a
//! lookup passed in).

pub mod config;
mod id;
pub mod jwks;
pub mod mapping;
pub mod proxy;
pub mod token;

pub use crate::wire::canonical::arguments_sha256;
pub use config::{ConfigError, GatewayConfig, JwksSource, Mode, ServerConfig};
pub use id::MAX_ID_BYTES;
pub use mapping::{Check, Denial, ListPlan, MappingError, Requirement, ServerMapping};
pub use token::{KeySet, KeySetError, SigningAlgorithm, TokenError, VerifiedToken, Verifier, VerifierSettings};

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::engine::{
    self, AlertEvents, ApprovalCall, ApprovalRecord, ApprovalStatus, Approvals, DecisionMeta, Engine, EngineError,
    LatencyObserver, OboCheckRequest, OboDecision,
};
use crate::record::DecisionRecord;
use crate::tuple::Context;
use jwks::{IssuerKeys, JwksError};
use mapping::Primitive;
use proxy::{error_message, Outgoing, Rewrite, Upstream, UpstreamError, INTERNAL_ERROR};

/// JSON-RPC: the body is not JSON.
const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: not a valid request object (also: a batch, which MCP 2025-06-18 no longer has).
const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: the params cannot be mapped to checks.
const INVALID_PARAMS: i64 = -32602;
/// The gateway's own code for a call the chain may not make (DESIGN §8).
pub const DENIED: i64 = -32001;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The config file cannot be read.
    #[error("cannot read gateway config `{path}`: {message}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// The config file is not a valid gateway config.
    #[error("gateway config `{path}`: {error}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong in it.
        error: ConfigError,
    },
    /// The issuer's keys cannot be loaded.
    #[error("gateway: {0}")]
    Jwks(#[from] JwksError),
    /// A server's upstream settings are unusable.
    #[error("gateway config `servers.{server}`: {message}")]
    Upstream {
        /// The server's name.
        server: String,
        /// What is wrong.
        message: String,
    },
    /// The HTTP client cannot be built (no TLS roots, ...).
    #[error("gateway HTTP client: {0}")]
    Client(String),
}

/// Reads the gateway config file (YAML, or JSON by a `.json` name); `env` answers `${VAR}`.
pub fn read_config(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<GatewayConfig, GatewayError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| GatewayError::Read { path: shown.clone(), message: e.to_string() })?;
    let format = config::Format::from_file_name(&shown);
    GatewayConfig::parse(&text, format, env).map_err(|error| GatewayError::Config { path: shown, error })
}

/// Settings the gateway takes from `writ serve` rather than from its file.
#[derive(Debug, Clone, Copy)]
pub struct GatewayOptions {
    /// Largest accepted JSON-RPC request body; past it the answer is 413.
    pub max_body_bytes: usize,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions { max_body_bytes: 4 * 1024 * 1024 }
    }
}

/// One configured server at run time.
struct Server {
    name: String,
    config: ServerConfig,
    upstream: Upstream,
    /// `{public_url}/mcp/{name}`: what its tokens' `aud` must hold.
    resource: String,
    /// Where its RFC 9728 metadata is served.
    metadata_url: String,
}

/// The running gateway: config, keys, upstreams and the engine that decides.
pub struct Gateway {
    config: GatewayConfig,
    keys: IssuerKeys,
    engine: Arc<Engine>,
    servers: BTreeMap<String, Server>,
    options: GatewayOptions,
}

impl Gateway {
    /// Loads the issuer's keys and prepares each upstream; the store is the config's.
    pub async fn start(
        config: GatewayConfig,
        engine: Arc<Engine>,
        options: GatewayOptions,
    ) -> Result<Arc<Gateway>, GatewayError> {
        // No redirects: a redirected request would carry the upstream's credentials elsewhere.
        let client = reqwest::Client::builder()
            .connect_timeout(config.upstream_connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| GatewayError::Client(e.to_string()))?;
        let keys_client = reqwest::Client::builder()
            .connect_timeout(config.upstream_connect_timeout)
            .timeout(config.upstream_timeout)
            .build()
            .map_err(|e| GatewayError::Client(e.to_string()))?;
        let keys = IssuerKeys::load(config.jwks.clone(), config.verifier_settings(), keys_client).await?;
        let mut servers = BTreeMap::new();
        for (name, server) in &config.servers {
            let upstream =
                Upstream::new(client.clone(), &server.upstream, &server.upstream_headers, config.upstream_timeout)
                    .map_err(|message| GatewayError::Upstream { server: name.clone(), message })?;
            let resource = config.resource_uri(name);
            let metadata_url = format!("{}/.well-known/oauth-protected-resource/mcp/{name}", config.public_url);
            servers.insert(
                name.clone(),
                Server { name: name.clone(), config: server.clone(), upstream, resource, metadata_url },
            );
        }
        if engine.get_store(&config.store).is_err() {
            tracing::warn!(store = %config.store, "gateway: `store` names no existing store; every call will fail");
        }
        Ok(Arc::new(Gateway { config, keys, engine, servers, options }))
    }

    /// The gateway's routes, to be merged beside the API's (`writ serve` does). They are merged
    /// in as their own router, so none of the API's layers (its `--auth preshared` key check in
    /// particular) wraps them: their principal is the bearer JWT, checked here; the API's routes
    /// keep their layers.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/mcp/{server}", post(post_message).get(open_stream).delete(end_session))
            .route("/.well-known/oauth-protected-resource/mcp/{server}", get(metadata))
            .with_state(self.clone())
    }

    fn server(&self, name: &str) -> Result<&Server, Refused> {
        self.servers.get(name).ok_or_else(|| {
            let body = json!({"code": "not_found", "message": "no MCP server is configured under this name"});
            Box::new((StatusCode::NOT_FOUND, Json(body)).into_response())
        })
    }

    /// The request's verified token, or the 401 to answer.
    /// The configured server `name` and the verified token of the request, or the refusal (404 or
    /// 401) to answer with: the first step of every MCP route.
    async fn admit(&self, name: &str, headers: &HeaderMap) -> Result<(&Server, Arc<VerifiedToken>), Refused> {
        let server = self.server(name)?;
        let token = self.authenticate(server, headers).await?;
        Ok((server, token))
    }

    async fn authenticate(&self, server: &Server, headers: &HeaderMap) -> Result<Arc<VerifiedToken>, Refused> {
        let authorization = match headers.get(header::AUTHORIZATION).map(HeaderValue::to_str) {
            None => None,
            Some(Ok(value)) => Some(value),
            Some(Err(_)) => {
                return Err(Box::new(unauthorized(server, &TokenError::Malformed("authorization is not text".into()))))
            }
        };
        let verified = match token::bearer_token(authorization) {
            Ok(token) => self.keys.verify(token, &server.resource).await,
            Err(error) => Err(error),
        };
        verified.map_err(|error| {
            tracing::info!(server = %server.name, %error, "gateway: token refused");
            Box::new(unauthorized(server, &error))
        })
    }
}

/// A request refused before it is decided: the answer to send (boxed: a `Response` is large).
type Refused = Box<Response>;

/// The 401 of RFC 6750 / RFC 9728, pointing at the server's metadata.
fn unauthorized(server: &Server, error: &TokenError) -> Response {
    let mut challenge = format!("Bearer resource_metadata=\"{}\"", server.metadata_url);
    let description: String =
        error.to_string().chars().filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\').collect();
    if let Some(code) = error.bearer_error_code() {
        challenge.push_str(&format!(", error=\"{code}\", error_description=\"{description}\""));
    }
    let body = json!({"error": error.bearer_error_code().unwrap_or("unauthorized"), "error_description": description});
    let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// RFC 9728 protected-resource metadata for one server.
async fn metadata(State(gateway): State<Arc<Gateway>>, UrlPath(name): UrlPath<String>) -> Response {
    match gateway.server(&name) {
        Err(response) => *response,
        Ok(server) => Json(json!({
            "resource": server.resource,
            "authorization_servers": [gateway.config.issuer],
            "bearer_methods_supported": ["header"],
        }))
        .into_response(),
    }
}

/// A JSON-RPC message as an HTTP answer.
fn rpc_answer(status: StatusCode, message: Value) -> Response {
    (status, Json(message)).into_response()
}

/// What the client sent, as far as routing it goes.
enum Incoming<'m> {
    /// A request: it needs an answer.
    Request { id: &'m Value, method: &'m str, params: Option<&'m Value> },
    /// A notification: no answer.
    Notification,
    /// The client's answer to a request of the server's (sampling, elicitation, roots).
    Response,
}

/// Reads one JSON-RPC message, or says why it is not one.
fn classify(message: &Value) -> Result<Incoming<'_>, String> {
    let Value::Object(fields) = message else {
        return Err(match message {
            Value::Array(_) => {
                "JSON-RPC batches are not supported (MCP 2025-06-18 removed them); send one message".into()
            }
            _ => "a JSON-RPC message must be an object".into(),
        });
    };
    if fields.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err("`jsonrpc` must be \"2.0\"".into());
    }
    let id = fields.get("id");
    if let Some(id) = id {
        if !(id.is_string() || id.is_number()) {
            return Err("`id` must be a string or a number".into());
        }
    }
    match (fields.get("method"), id) {
        (Some(Value::String(method)), Some(id)) => Ok(Incoming::Request { id, method, params: fields.get("params") }),
        (Some(Value::String(_)), None) => Ok(Incoming::Notification),
        (Some(_), _) => Err("`method` must be a string".into()),
        (None, Some(_)) if fields.contains_key("result") != fields.contains_key("error") => Ok(Incoming::Response),
        (None, _) => Err("a message needs a `method`, or an `id` with `result` or `error`".into()),
    }
}

/// The request body, at most `limit` bytes.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, Refused> {
    let too_large = || {
        let message = error_message(None, INVALID_REQUEST, &format!("request body is larger than {limit} bytes"), None);
        Box::new(rpc_answer(StatusCode::PAYLOAD_TOO_LARGE, message))
    };
    let mut chunks = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            let message = error_message(None, INVALID_REQUEST, &format!("cannot read the request body: {e}"), None);
            Box::new(rpc_answer(StatusCode::BAD_REQUEST, message))
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(bytes))
}

/// What a request is about, for the decision log's `audit`.
fn audit(server: &Server, method: &str, session: Option<&str>, call: Option<(Primitive, &str)>) -> Context {
    let mut audit = Context::new();
    audit.insert("server".into(), json!(server.name));
    audit.insert("method".into(), json!(method));
    if let Some((primitive, name)) = call {
        let key = match primitive {
            Primitive::Tool => "tool",
            Primitive::Resource => "uri",
            Primitive::Prompt => "prompt",
        };
        audit.insert(key.into(), json!(name));
        // A place for the digest of the arguments, filled in only in the records the log keeps
        // (see `with_digest`): most calls are not recorded, and hashing is the costly part.
        audit.insert("arguments_sha256".into(), Value::Null);
    }
    audit.insert("session".into(), session.map_or(Value::Null, |s| json!(s)));
    audit
}

/// A call of a tool, resource or prompt: its arguments, hashed only when a record the log keeps
/// or an approval needs their digest; and, for a tool, what an `approval: required` entry binds
/// (DESIGN §12: besides the chain and the entry's relation and object, the server, the tool and
/// the digest of the arguments).
struct Called<'a> {
    arguments: &'a Value,
    /// The server and the tool, for a tool call.
    approvable: Option<(&'a str, &'a str)>,
}

/// Fills `audit.arguments_sha256` of each record with the digest of `call`'s arguments, when
/// there are records, and gives the digest back.
fn with_digest(records: &mut [DecisionRecord], call: Option<&Called<'_>>) -> Option<String> {
    let call = call.filter(|_| !records.is_empty())?;
    let digest = arguments_sha256(call.arguments);
    for record in records.iter_mut() {
        if let Some(slot) = record.audit.as_mut().and_then(|audit| audit.get_mut("arguments_sha256")) {
            *slot = json!(digest);
        }
    }
    Some(digest)
}

/// What [`decide`] found: each check's decision and, when the deny is waiting for an approver,
/// the pending approval it raised.
struct Decided {
    decisions: Vec<OboDecision>,
    pending: Option<ApprovalRecord>,
}

/// The gateway's one call into the engine: every check as an OBO check of `chain` through the
/// engine's decision pipeline, each recorded in the decision log under `decision_id` with `audit`.
/// With a tool `call`, when only `approval: required` entries deny, each is allowed by an approved
/// approval of the exact call (one use taken), and the first without one raises (or answers)
/// its pending approval; the records name the approval in `audit.approval`. The arguments are
/// hashed only for such an approval or a record the log keeps.
fn decide(
    engine: &Engine,
    store_id: &str,
    chain: &[String],
    checks: &[Check],
    audit: &Context,
    decision_id: &str,
    call: Option<&Called<'_>>,
) -> Result<Decided, EngineError> {
    let mut decisions = Vec::with_capacity(checks.len());
    // The records of a list's checks reach the log in one hand-off, as a batch-check's do; the
    // audit goes to the records through `meta`, so the requests need no copy of it.
    let mut records = Vec::new();
    if checks.is_empty() {
        return Ok(Decided { decisions, pending: None });
    }
    let store = engine.store(store_id)?;
    let log = engine.decision_log();
    // The alerts' events of each check (`events_of[i]` for check `i`): an approval that allows
    // a check allows its events too, before they are sent.
    let mut events = AlertEvents::default();
    let mut events_of = Vec::with_capacity(checks.len());
    for check in checks {
        let request = OboCheckRequest {
            principals: chain.to_vec(),
            relation: check.relation.clone(),
            object: check.object.to_string(),
            ..OboCheckRequest::default()
        };
        let meta = DecisionMeta {
            request_id: decision_id,
            audit: Some(audit),
            started: Instant::now(),
            model_id: None,
            latency: &Unobserved,
            time_ms: None,
            ids: None,
        };
        let first = events.len();
        let answer =
            engine::decide_into(log, &store, &request, &meta, Some(&mut events), |record| records.push(record));
        events_of.push(first..events.len());
        match answer {
            Ok(answer) => decisions.push(answer.value),
            Err(error) => {
                with_digest(&mut records, call);
                log.alerts().send(events);
                log.record_seen(records);
                return Err(error);
            }
        }
    }
    let waiting = |decisions: &[OboDecision]| {
        let mut denied = checks.iter().zip(decisions).filter(|(_, decision)| !decision.allowed).peekable();
        denied.peek().is_some() && denied.all(|(check, _)| check.approval_required)
    };
    let approvable = call.and_then(|call| call.approvable.map(|target| (call, target)));
    let Some((call, (server, tool))) = approvable.filter(|_| waiting(&decisions)) else {
        with_digest(&mut records, call);
        log.alerts().send(events);
        log.record_seen(records);
        return Ok(Decided { decisions, pending: None });
    };
    let digest = with_digest(&mut records, Some(call)).unwrap_or_else(|| arguments_sha256(call.arguments));
    let approvals = engine.approvals();
    let mut pending = None;
    let denied = checks.iter().zip(decisions.iter_mut()).zip(events_of).filter(|((_, decision), _)| !decision.allowed);
    for ((check, decision), check_events) in denied {
        let call = ApprovalCall {
            principals: chain.to_vec(),
            relation: check.relation.clone(),
            object: check.object.to_string(),
            server: Some(server.to_string()),
            tool: Some(tool.to_string()),
            arguments_sha256: digest.clone(),
        };
        let object = check.object.to_string();
        let of_check = |record: &&mut DecisionRecord| record.relation == check.relation && record.object == object;
        match approvals.take_use(&store, &call)? {
            Some(used) => {
                *decision = OboDecision { allowed: true, denied_by: None };
                events.allow(check_events);
                for record in records.iter_mut().filter(of_check) {
                    record.allowed = true;
                    record.denied_by = None;
                    Approvals::name_approval(record, &used, ApprovalStatus::Approved);
                }
            }
            None => {
                let raised = approvals.request(&store, &call)?;
                for record in records.iter_mut().filter(of_check) {
                    Approvals::name_approval(record, &raised, approvals.status(&raised));
                }
                pending = Some(raised);
                break;
            }
        }
    }
    log.alerts().send(events);
    log.record_oversight(records);
    Ok(Decided { decisions, pending })
}

/// The gateway keeps no latency histogram of its own: `/metrics` belongs to the API, which the
/// gateway may not import, and the decision log carries each decision's latency.
struct Unobserved;

impl LatencyObserver for Unobserved {
    fn observe(&self, _elapsed: std::time::Duration) {}
}

/// Records a call the mapping refused before any check (unknown method or name, bad arguments).
fn record_refusal(
    gateway: &Gateway,
    chain: &[String],
    method: &str,
    message: &str,
    audit: &Context,
    decision_id: &str,
) {
    let engine = &gateway.engine;
    if !engine.decision_log().wants_decision(false, chain) {
        return;
    }
    engine.decision_log().record(DecisionRecord {
        time_ms: engine.now_ms(),
        store_id: gateway.config.store.as_str().into(),
        model_id: "".into(),
        principals: chain.to_vec(),
        delegation_relation: None,
        audience: false,
        relation: method.to_string(),
        object: String::new(),
        allowed: false,
        denied_by: Some(json!({"kind": "mapping", "message": message})),
        revision: 0,
        latency_us: 0,
        request_id: decision_id.into(),
        audit: Some(audit.clone()),
    });
}

/// A denial answer: JSON-RPC `-32001` naming what denied and the decision, and the pending
/// approval (`{id, url}`) when the deny waits for an approver.
fn denied(id: &Value, denied_by: Value, decision_id: &str, approval: Option<Value>) -> Response {
    let mut data = json!({"denied_by": denied_by, "decision_id": decision_id});
    if let (Some(approval), Some(fields)) = (approval, data.as_object_mut()) {
        fields.insert("approval".into(), approval);
    }
    rpc_answer(StatusCode::OK, error_message(Some(id), DENIED, "denied by the authorization gateway", Some(data)))
}

/// The answer when the upstream failed: a JSON-RPC error for a request, 502 otherwise.
fn upstream_failure(server: &Server, pending: Option<&Value>, error: &UpstreamError) -> Response {
    tracing::warn!(server = %server.name, %error, "gateway: upstream failed");
    let message = error_message(pending, INTERNAL_ERROR, &error.to_string(), None);
    let status = if pending.is_some() { StatusCode::OK } else { StatusCode::BAD_GATEWAY };
    rpc_answer(status, message)
}

/// A rewrite that filters `*/list` answers down to what `chain` may see, deciding (and
/// recording) in one batch per answer. With `id`, only the answer to that request of
/// `primitive`; without, any answer holding a `tools`, `resources` or `prompts` list (a `GET`
/// stream's replay). In `log_only` mode it decides and records but changes nothing.
fn list_filter(
    gateway: Arc<Gateway>,
    server: String,
    chain: Vec<String>,
    wanted: Option<(Value, Primitive)>,
    audit: Context,
    decision_id: String,
) -> Rewrite {
    Box::new(move |message: &mut Value| {
        let primitive = match &wanted {
            Some((id, primitive)) if message.get("id") == Some(id) => *primitive,
            Some(_) => return false,
            None => match [Primitive::Tool, Primitive::Resource, Primitive::Prompt]
                .into_iter()
                .find(|p| message.get("result").and_then(|r| r.get(p.config_key())).is_some_and(Value::is_array))
            {
                Some(primitive) => primitive,
                None => return false,
            },
        };
        let Some(Value::Array(items)) = message.get_mut("result").and_then(|r| r.get_mut(primitive.config_key()))
        else {
            return false;
        };
        let Some(server) = gateway.servers.get(&server) else {
            return false;
        };
        filter_list(
            &gateway.engine,
            &gateway.config,
            &server.config.mapping,
            primitive,
            items,
            &chain,
            &audit,
            &decision_id,
        )
    })
}

/// Filters one `*/list` answer's `items` (of `primitive`) down to what `chain` may see: plans
/// the argument-free checks with [`ServerMapping::plan_list`], decides (and records) them in one
/// batch through [`decide`] against `config`'s store, and, unless `config` is in `log_only` mode,
/// drops every item not allowed. Returns whether `items` changed. The router's list rewrite is
/// its caller; it is public so a bench times the router's own path.
#[expect(clippy::too_many_arguments, reason = "the engine and config, the answer, and who asks")]
pub fn filter_list(
    engine: &Engine,
    config: &GatewayConfig,
    mapping: &ServerMapping,
    primitive: Primitive,
    items: &mut Vec<Value>,
    chain: &[String],
    audit: &Context,
    decision_id: &str,
) -> bool {
    let name_key = if primitive == Primitive::Resource { "uri" } else { "name" };
    let names: Vec<String> =
        items.iter().map(|item| item.get(name_key).and_then(Value::as_str).unwrap_or("").to_string()).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let plan = mapping.plan_list(primitive, &name_refs);
    let allowed = match decide(engine, &config.store, chain, &plan.checks, audit, decision_id, None) {
        Ok(Decided { decisions, .. }) => decisions.iter().map(|d| d.allowed).collect(),
        Err(error) => {
            tracing::warn!(%error, "gateway: list filter could not decide; hiding every item");
            Vec::new()
        }
    };
    if config.mode == Mode::LogOnly {
        return false;
    }
    let visible: HashSet<&str> = plan.visible(&allowed).into_iter().collect();
    let keep: Vec<bool> = names.iter().map(|name| !name.is_empty() && visible.contains(name.as_str())).collect();
    let mut keep = keep.into_iter();
    items.retain(|_| keep.next().unwrap_or(false));
    true
}

/// `POST /mcp/{server}`: one JSON-RPC message, decided, then forwarded.
async fn post_message(
    State(gateway): State<Arc<Gateway>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (server, token) = match gateway.admit(&name, &headers).await {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let bytes = match read_body(body, gateway.options.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(response) => return *response,
    };
    let message: Value = match serde_json::from_slice(&bytes) {
        Ok(message) => message,
        Err(error) => {
            let message = error_message(None, PARSE_ERROR, &format!("parse error: {error}"), None);
            return rpc_answer(StatusCode::BAD_REQUEST, message);
        }
    };
    let incoming = match classify(&message) {
        Ok(incoming) => incoming,
        Err(reason) => {
            let id = message.get("id").filter(|id| id.is_string() || id.is_number());
            return rpc_answer(StatusCode::BAD_REQUEST, error_message(id, INVALID_REQUEST, &reason, None));
        }
    };
    let session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok());
    let chain: Vec<String> = token.chain.iter().map(ToString::to_string).collect();
    let decision_id = ulid::Ulid::new().to_string();
    let enforce = gateway.config.mode == Mode::Enforce;
    let mut rewrite = None;
    let mut pending = None;
    if let Incoming::Request { id, method, params } = incoming {
        pending = Some(id.clone());
        match server.config.mapping.requirement(method, params) {
            Ok(Requirement::Pass) => {}
            Ok(Requirement::FilterList(primitive)) => {
                let audit = audit(server, method, session, None);
                let wanted = Some((id.clone(), primitive));
                rewrite = Some(list_filter(gateway.clone(), name.clone(), chain, wanted, audit, decision_id));
            }
            Ok(Requirement::Checks { primitive, name: called, checks }) => {
                let no_arguments = json!({});
                let arguments = params.and_then(|p| p.get("arguments")).unwrap_or(&no_arguments);
                let audit = audit(server, method, session, Some((primitive, &called)));
                let approvable = (primitive == Primitive::Tool).then_some((server.name.as_str(), called.as_str()));
                let call = Called { arguments, approvable };
                let store = &gateway.config.store;
                match decide(&gateway.engine, store, &chain, &checks, &audit, &decision_id, Some(&call)) {
                    Err(error) if enforce => {
                        tracing::warn!(%error, "gateway: could not decide");
                        let text = format!("the gateway could not decide: {error}");
                        return rpc_answer(StatusCode::OK, error_message(Some(id), INTERNAL_ERROR, &text, None));
                    }
                    Err(error) => tracing::warn!(%error, "gateway (log_only): could not decide; forwarding"),
                    Ok(Decided { decisions, pending: approval }) => {
                        let denial = decisions.iter().find_map(|d| d.denied_by.as_ref());
                        if let (Some(denial), true) = (denial, enforce) {
                            let approval = approval.map(|approval| {
                                let url = format!(
                                    "{}/stores/{store}/writ/approvals/{}",
                                    gateway.config.public_url.trim_end_matches('/'),
                                    approval.id
                                );
                                json!({"id": approval.id, "url": url})
                            });
                            return denied(id, json!(denial), &decision_id, approval);
                        }
                    }
                }
            }
            Ok(Requirement::Denied(denial)) => {
                let text = denial.to_string();
                record_refusal(&gateway, &chain, method, &text, &audit(server, method, session, None), &decision_id);
                if enforce {
                    return denied(id, json!({"kind": "mapping", "message": text}), &decision_id, None);
                }
            }
            Err(error) => {
                let text = error.to_string();
                record_refusal(&gateway, &chain, method, &text, &audit(server, method, session, None), &decision_id);
                if enforce {
                    let data = json!({"decision_id": decision_id});
                    return rpc_answer(StatusCode::OK, error_message(Some(id), INVALID_PARAMS, &text, Some(data)));
                }
            }
        }
    }
    let outgoing = Outgoing { method: Method::POST, client_headers: headers, body: bytes };
    let timeout = server.upstream.timeout();
    let relayed = match server.upstream.send(outgoing).await {
        Ok(response) => proxy::relay(response, rewrite, pending.clone(), Some(timeout)).await,
        Err(error) => Err(error),
    };
    relayed.unwrap_or_else(|error| upstream_failure(server, pending.as_ref(), &error))
}

/// `GET /mcp/{server}`: the server's SSE stream, after the token; list answers replayed on it
/// are filtered as on `POST`.
async fn open_stream(
    State(gateway): State<Arc<Gateway>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let (server, token) = match gateway.admit(&name, &headers).await {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok());
    let audit = audit(server, "GET", session, None);
    let chain = token.chain.iter().map(ToString::to_string).collect();
    let decision_id = ulid::Ulid::new().to_string();
    let rewrite = list_filter(gateway.clone(), name.clone(), chain, None, audit, decision_id);
    let outgoing = Outgoing { method: Method::GET, client_headers: headers, body: Bytes::new() };
    let relayed = match server.upstream.send(outgoing).await {
        Ok(response) => proxy::relay(response, Some(rewrite), None, None).await,
        Err(error) => Err(error),
    };
    relayed.unwrap_or_else(|error| upstream_failure(server, None, &error))
}

/// `DELETE /mcp/{server}`: ends the session upstream, after the token.
async fn end_session(
    State(gateway): State<Arc<Gateway>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let server = match gateway.admit(&name, &headers).await {
        Ok((server, _token)) => server,
        Err(response) => return *response,
    };
    let outgoing = Outgoing { method: Method::DELETE, client_headers: headers, body: Bytes::new() };
    let timeout = server.upstream.timeout();
    let relayed = match server.upstream.send(outgoing).await {
        Ok(response) => proxy::relay(response, None, None, Some(timeout)).await,
        Err(error) => Err(error),
    };
    relayed.unwrap_or_else(|error| upstream_failure(server, None, &error))
}

#[cfg(test)]
mod digest_tests {
    use super::*;

    #[test]
    fn arguments_are_hashed_only_for_records_and_fill_their_placeholder() {
        let arguments = json!({"b": 1, "a": [true]});
        let call = Called { arguments: &arguments, approvable: None };
        assert_eq!(with_digest(&mut [], Some(&call)), None, "no record: no hash");
        let mut audit = Context::new();
        audit.insert("tool".into(), json!("t"));
        audit.insert("arguments_sha256".into(), Value::Null);
        audit.insert("session".into(), Value::Null);
        let mut records = [DecisionRecord {
            time_ms: 0,
            store_id: "s".into(),
            model_id: "".into(),
            principals: vec!["user:anne".into()],
            delegation_relation: None,
            audience: false,
            relation: "can_call".into(),
            object: "tool:t".into(),
            allowed: true,
            denied_by: None,
            revision: 0,
            latency_us: 0,
            request_id: "".into(),
            audit: Some(audit),
        }];
        let digest = with_digest(&mut records, Some(&call));
        assert_eq!(digest.as_deref(), Some(arguments_sha256(&arguments).as_str()));
        let audit = records[0].audit.as_ref().map(|audit| audit.keys().cloned().collect::<Vec<_>>());
        assert_eq!(audit, Some(vec!["tool".to_string(), "arguments_sha256".into(), "session".into()]), "in place");
        assert_eq!(records[0].audit.as_ref().map(|audit| audit["arguments_sha256"].clone()), digest.map(Value::String));
    }
}
