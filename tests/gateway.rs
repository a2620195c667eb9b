//! The MCP gateway over HTTP (DESIGN §8): a real upstream MCP-like server on a loopback port
//! (axum, answering `initialize`, `tools/list` and `tools/call` as JSON or, on a flag, as SSE,
//! and recording what it received), tokens signed here with a P-256 key published in a JWKS
//! file, and the gateway's router (mounted beside the API, as `writ serve --gateway` does)
//! called in-process.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::http::call_as;
use crate::support::serve::serve_router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use base64::Engine as _;
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::KeyPair;
use serde_json::{json, Value};
use tower::ServiceExt;
use writ::api::Api;
use writ::engine::{DecisionFilter, DecisionLogConfig, DecisionLogMode, EngineConfig, OboCheckRequest, WriteRequest};
use writ::gateway::config::Format;
use writ::gateway::{Gateway, GatewayConfig, GatewayOptions};
use writ::store::{MemoryStore, StoredTuple};
use writ::{Engine, Model, Tuple};

const ISSUER: &str = "https://idp.test";
const PUBLIC_URL: &str = "https://mcp.test";
const AUDIENCE: &str = "https://mcp.test/mcp/github";
const METADATA_URL: &str = "https://mcp.test/.well-known/oauth-protected-resource/mcp/github";
const UPSTREAM_SECRET: &str = "upstream-secret-42";

const MODEL: &str = "model
  schema 1.1
type user
  relations
    define delegate: [agent]
type agent
  relations
    define delegate: [agent]
type tool
  relations
    define can_call: [user, agent]
type repo
  relations
    define writer: [user, agent]
";

/// The upstream's tools; `secret` has no tuple, so nobody sees it.
const TOOLS: [&str; 4] = ["search", "create_issue", "delete_repo", "secret"];

/// The test issuer: a signing key in the JWKS file, and one that is not.
struct Issuer {
    signing: EncodingKey,
    stranger: EncodingKey,
    jwks_file: std::path::PathBuf,
}

fn issuer() -> &'static Issuer {
    static ISSUER_KEYS: OnceLock<Issuer> = OnceLock::new();
    ISSUER_KEYS.get_or_init(|| {
        let pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let point = pair.public_key_raw();
        let stranger = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
            "x": BASE64URL.encode(&point[1..33]), "y": BASE64URL.encode(&point[33..65])}]});
        let jwks_file = std::env::temp_dir().join(format!("writ-gateway-jwks-{}.json", std::process::id()));
        std::fs::write(&jwks_file, jwks.to_string()).unwrap();
        Issuer {
            signing: EncodingKey::from_ec_der(&pair.serialize_der()),
            stranger: EncodingKey::from_ec_der(&stranger.serialize_der()),
            jwks_file,
        }
    })
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// Claims for anne through `planner`, with `changes` merged in (`null` removes a claim).
fn claims(changes: Value) -> Value {
    let mut claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "anne", "client_id": "planner", "iat": now(), "exp": now() + 600});
    for (key, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => claims.as_object_mut().unwrap().remove(key),
            value => claims.as_object_mut().unwrap().insert(key.clone(), value.clone()),
        };
    }
    claims
}

fn sign(claims: &Value, key: &EncodingKey) -> String {
    sign_as(claims, key, "k1")
}

fn sign_as(claims: &Value, key: &EncodingKey, kid: &str) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

/// A JWK for a fresh P-256 key pair named `kid`, and its signing half.
fn p256_key(kid: &str) -> (Value, EncodingKey) {
    let pair = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let point = pair.public_key_raw();
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
        "x": BASE64URL.encode(&point[1..33]), "y": BASE64URL.encode(&point[33..65])});
    (jwk, EncodingKey::from_ec_der(&pair.serialize_der()))
}

fn token(changes: Value) -> String {
    sign(&claims(changes), &issuer().signing)
}

/// What the upstream received, and how it answers.
#[derive(Default)]
struct UpstreamState {
    requests: Mutex<Vec<(String, HeaderMap, Value)>>,
    sse: AtomicBool,
    hang: AtomicBool,
    calls: AtomicUsize,
}

impl UpstreamState {
    fn methods(&self) -> Vec<String> {
        self.requests.lock().unwrap().iter().map(|(method, _, _)| method.clone()).collect()
    }
}

async fn upstream_post(State(state): State<Arc<UpstreamState>>, headers: HeaderMap, body: String) -> Response {
    let message: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let method = message["method"].as_str().unwrap_or("(response)").to_string();
    state.requests.lock().unwrap().push((method.clone(), headers, message.clone()));
    if state.hang.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let id = message["id"].clone();
    let result = match method.as_str() {
        "initialize" => json!({"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
            "serverInfo": {"name": "test-upstream", "version": "1"}}),
        "tools/list" => {
            json!({"tools": TOOLS.iter().map(|name| json!({"name": name, "inputSchema": {"type": "object"}})).collect::<Vec<_>>()})
        }
        "tools/call" => {
            state.calls.fetch_add(1, Ordering::SeqCst);
            json!({"content": [{"type": "text", "text": format!("called {}", message["params"]["name"])}]})
        }
        _ if id.is_null() => return StatusCode::ACCEPTED.into_response(),
        _ => json!({}),
    };
    let answer = json!({"jsonrpc": "2.0", "id": id, "result": result});
    let mut response = if state.sse.load(Ordering::SeqCst) {
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "working"}});
        let stream = format!("event: message\ndata: {progress}\n\nid: 2\nevent: message\ndata: {answer}\n\n");
        ([("content-type", "text/event-stream")], stream).into_response()
    } else {
        ([("content-type", "application/json")], answer.to_string()).into_response()
    };
    response.headers_mut().insert("mcp-session-id", "session-1".parse().unwrap());
    response
}

async fn upstream_get(State(state): State<Arc<UpstreamState>>, headers: HeaderMap) -> Response {
    state.requests.lock().unwrap().push(("GET".into(), headers, Value::Null));
    let note = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
    ([("content-type", "text/event-stream")], format!("id: 9\ndata: {note}\n\n")).into_response()
}

async fn upstream_delete(State(state): State<Arc<UpstreamState>>, headers: HeaderMap) -> StatusCode {
    state.requests.lock().unwrap().push(("DELETE".into(), headers, Value::Null));
    StatusCode::OK
}

/// Starts the upstream on a loopback port; its URL and what it sees.
async fn start_upstream() -> (String, Arc<UpstreamState>) {
    let state = Arc::new(UpstreamState::default());
    let app = Router::new()
        .route("/mcp", axum::routing::post(upstream_post).get(upstream_get).delete(upstream_delete))
        .with_state(state.clone());
    let address = serve_router(app).await;
    (format!("http://{address}/mcp"), state)
}

fn stored(object: &str, relation: &str, user: &str) -> StoredTuple {
    StoredTuple::new(Tuple::from_parts(object, relation, user).unwrap())
}

/// anne delegates to planner, planner to researcher; planner (not anne) may delete repos; anne
/// and planner may write `acme`, only anne `other`.
fn tuples() -> Vec<StoredTuple> {
    let mut tuples = vec![
        stored("user:anne", "delegate", "agent:planner"),
        stored("agent:planner", "delegate", "agent:researcher"),
        stored("user:bob", "delegate", "agent:ops"),
        stored("tool:github.delete_repo", "can_call", "agent:planner"),
        stored("repo:acme", "writer", "user:anne"),
        stored("repo:acme", "writer", "agent:planner"),
        stored("repo:other", "writer", "user:anne"),
    ];
    for principal in ["user:anne", "agent:planner", "agent:researcher", "user:bob"] {
        tuples.push(stored("tool:github.search", "can_call", principal));
    }
    for principal in ["user:anne", "agent:planner", "user:bob", "agent:ops"] {
        tuples.push(stored("tool:github.create_issue", "can_call", principal));
    }
    tuples
}

struct Setup {
    app: Api,
    engine: Arc<Engine>,
    store: String,
    upstream: Arc<UpstreamState>,
}

fn config_text(store: &str, upstream: &str, mode: &str) -> String {
    config_text_with(store, upstream, mode, &format!("jwks_file: {}", issuer().jwks_file.display()))
}

fn config_text_with(store: &str, upstream: &str, mode: &str, jwks: &str) -> String {
    format!(
        r#"
store: {store}
issuer: {ISSUER}
{jwks}
public_url: {PUBLIC_URL}
algorithms: [ES256]
mode: {mode}
upstream_connect_timeout_ms: 500
upstream_timeout_ms: 700
servers:
  github:
    upstream: {upstream}
    upstream_headers: {{ Authorization: "Bearer ${{UPSTREAM_TOKEN}}" }}
    tools:
      "*": {{ relation: can_call, object: "tool:github.{{tool}}" }}
      create_issue:
        - {{ relation: can_call, object: "tool:github.create_issue" }}
        - {{ relation: writer, object: "repo:{{arguments.repo}}" }}
      archive_repo:
        - {{ relation: can_call, object: "tool:github.create_issue" }}
        - {{ relation: writer, object: "repo:{{arguments.repo}}", approval: required }}
"#
    )
}

/// An engine recording every decision, the upstream, and the gateway mounted beside an API
/// guarded by a preshared key.
async fn setup_with(mode: &str, upstream_url: Option<&str>) -> Setup {
    let config = EngineConfig {
        decision_log: DecisionLogConfig { mode: DecisionLogMode::All, ..DecisionLogConfig::default() },
        ..EngineConfig::default()
    };
    let engine = Arc::new(Engine::open(Box::new(MemoryStore::new()), config).unwrap());
    let store = engine.create_store("gateway").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    engine.store(&store).unwrap().write(WriteRequest { writes: tuples(), ..Default::default() }).unwrap();
    let (url, upstream) = start_upstream().await;
    let url = upstream_url.unwrap_or(&url);
    let env = |name: &str| (name == "UPSTREAM_TOKEN").then(|| UPSTREAM_SECRET.to_string());
    let config = GatewayConfig::parse(&config_text(&store, url, mode), Format::Yaml, &env).unwrap();
    let options = GatewayOptions { max_body_bytes: 64 * 1024 };
    let gateway = Gateway::start(config, engine.clone(), options).await.unwrap();
    let keys = writ::api::KeySet::parse_compact("admin:the-admin-key-123").unwrap();
    let router_config =
        writ::api::RouterConfig { auth: writ::api::Auth::Preshared(Arc::new(keys)), ..Default::default() };
    let api = writ::api::router_with_config(engine.clone(), router_config);
    Setup { app: api.merge(gateway.router()), engine, store, upstream }
}

async fn setup() -> Setup {
    setup_with("enforce", None).await
}

/// An HTTP answer: status, headers, body text.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The JSON-RPC messages of an SSE body, in order.
    fn events(&self) -> Vec<Value> {
        self.body
            .split("\n\n")
            .filter_map(|event| {
                let data: Vec<&str> = event.lines().filter_map(|line| line.strip_prefix("data: ")).collect();
                (!data.is_empty()).then(|| serde_json::from_str(&data.join("\n")).unwrap())
            })
            .collect()
    }
}

async fn send<S>(app: &S, request: Request<Body>) -> Answer
where
    S: tower::Service<Request<Body>, Response = axum::response::Response, Error = std::convert::Infallible> + Clone,
{
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
}

fn post(token: Option<&str>, body: impl Into<String>) -> Request<Body> {
    let mut request = Request::post("/mcp/github")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", "session-1")
        .header("mcp-protocol-version", "2025-06-18");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    request.body(Body::from(body.into())).unwrap()
}

async fn rpc(app: &Api, token: &str, method: &str, params: Value) -> Answer {
    let message = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    send(app, post(Some(token), message.to_string())).await
}

async fn call(app: &Api, token: &str, tool: &str, arguments: Value) -> Value {
    let answer = rpc(app, token, "tools/call", json!({"name": tool, "arguments": arguments})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.json()
}

fn listed(message: &Value) -> Vec<String> {
    message["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn metadata_and_401_for_every_bad_token() {
    let s = setup().await;
    let metadata =
        send(&s.app, Request::get("/.well-known/oauth-protected-resource/mcp/github").body(Body::empty()).unwrap())
            .await;
    assert_eq!(metadata.status, StatusCode::OK);
    assert_eq!(
        metadata.json(),
        json!({"resource": AUDIENCE, "authorization_servers": [ISSUER], "bearer_methods_supported": ["header"]})
    );
    let unknown =
        send(&s.app, Request::get("/.well-known/oauth-protected-resource/mcp/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}).to_string();
    let missing = send(&s.app, post(None, initialize.clone())).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.headers["www-authenticate"], format!("Bearer resource_metadata=\"{METADATA_URL}\"").as_str());

    let header = BASE64URL.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{header}.{}.", BASE64URL.encode(claims(json!({})).to_string()));
    let cases = [
        ("bad signature", sign(&claims(json!({})), &issuer().stranger)),
        ("expired", token(json!({"exp": now() - 3600, "iat": now() - 7200}))),
        ("wrong aud", token(json!({"aud": "https://mcp.test/mcp/other"}))),
        ("wrong iss", token(json!({"iss": "https://evil.test"}))),
        ("alg none", alg_none),
        ("not a JWT", "abc.def".to_string()),
    ];
    for (name, bad) in cases {
        let answer = send(&s.app, post(Some(&bad), initialize.clone())).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{name}");
        let challenge = answer.headers["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.starts_with(&format!("Bearer resource_metadata=\"{METADATA_URL}\", error=\"invalid_token\"")),
            "{name}: {challenge}"
        );
    }
    for request in [
        Request::get("/mcp/github").body(Body::empty()).unwrap(),
        Request::delete("/mcp/github").body(Body::empty()).unwrap(),
    ] {
        assert_eq!(send(&s.app, request).await.status, StatusCode::UNAUTHORIZED);
    }
    assert!(s.upstream.methods().is_empty(), "nothing reached the upstream: {:?}", s.upstream.methods());
}

#[tokio::test]
async fn upstream_gets_its_own_headers_never_the_clients_token() {
    let s = setup().await;
    let client_token = token(json!({}));
    let answer = rpc(&s.app, &client_token, "initialize", json!({"protocolVersion": "2025-06-18"})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.json()["result"]["serverInfo"]["name"], "test-upstream");
    assert_eq!(answer.headers["mcp-session-id"], "session-1", "the session id comes back");
    let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    assert_eq!(send(&s.app, post(Some(&client_token), notification)).await.status, StatusCode::ACCEPTED);
    let mut stream = Request::get("/mcp/github")
        .header("authorization", format!("Bearer {client_token}"))
        .header("mcp-session-id", "session-1")
        .header("last-event-id", "4")
        .body(Body::empty())
        .unwrap();
    stream.headers_mut().insert("accept", "text/event-stream".parse().unwrap());
    let events = send(&s.app, stream).await;
    assert_eq!(events.events(), [json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})]);
    let delete = Request::delete("/mcp/github")
        .header("authorization", format!("Bearer {client_token}"))
        .header("mcp-session-id", "session-1")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&s.app, delete).await.status, StatusCode::OK);

    let requests = s.upstream.requests.lock().unwrap();
    let methods: Vec<&str> = requests.iter().map(|(m, _, _)| m.as_str()).collect();
    assert_eq!(methods, ["initialize", "notifications/initialized", "GET", "DELETE"]);
    for (method, headers, _) in requests.iter() {
        let authorization: Vec<_> = headers.get_all("authorization").iter().collect();
        assert_eq!(authorization, [format!("Bearer {UPSTREAM_SECRET}").as_str()], "{method}");
        assert!(!headers.iter().any(|(_, v)| v.as_bytes() == client_token.as_bytes()), "{method}");
        assert_eq!(headers["mcp-session-id"], "session-1", "{method}");
    }
    assert_eq!(requests[0].1["mcp-protocol-version"], "2025-06-18");
    assert_eq!(requests[2].1["last-event-id"], "4");
}

#[tokio::test]
async fn tools_list_shows_exactly_the_allowed_tools() {
    let s = setup().await;
    let chains: [(Value, &[&str]); 4] = [
        (json!({}), &["user:anne", "agent:planner"]),
        (
            json!({"client_id": "researcher", "act": {"sub": "researcher", "act": {"sub": "planner"}}}),
            &["user:anne", "agent:planner", "agent:researcher"],
        ),
        (json!({"sub": "bob", "client_id": "ops"}), &["user:bob", "agent:ops"]),
        (json!({"sub": "carol", "client_id": "planner"}), &["user:carol", "agent:planner"]),
    ];
    for (changes, chain) in chains {
        let answer = rpc(&s.app, &token(changes), "tools/list", json!({})).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        // The expected list, from one OBO check per tool (create_issue's repo entry waits for the call).
        let expected: Vec<String> = TOOLS
            .iter()
            .filter(|tool| {
                let request = OboCheckRequest {
                    principals: chain.iter().map(|p| p.to_string()).collect(),
                    relation: "can_call".into(),
                    object: format!("tool:github.{tool}"),
                    ..Default::default()
                };
                s.engine.store(&s.store).unwrap().obo_check(&request).unwrap().value.allowed
            })
            .map(|tool| tool.to_string())
            .collect();
        assert_eq!(listed(&answer.json()), expected, "{chain:?}");
    }
    let anne = rpc(&s.app, &token(json!({})), "tools/list", json!({})).await;
    assert_eq!(listed(&anne.json()), ["search", "create_issue"]);
    let bob = rpc(&s.app, &token(json!({"sub": "bob", "client_id": "ops"})), "tools/list", json!({})).await;
    assert_eq!(listed(&bob.json()), ["create_issue"], "ops may not search");
}

fn denied_by(answer: &Value) -> &Value {
    assert_eq!(answer["error"]["code"], -32001, "{answer}");
    assert!(answer["error"]["data"]["decision_id"].as_str().is_some_and(|id| id.len() == 26), "{answer}");
    &answer["error"]["data"]["denied_by"]
}

#[tokio::test]
async fn argument_mapped_calls_are_checked_per_repo_and_element() {
    let s = setup().await;
    let anne = token(json!({}));
    let allowed = call(&s.app, &anne, "create_issue", json!({"repo": "acme", "title": "x"})).await;
    assert_eq!(allowed["result"]["content"][0]["text"], "called \"create_issue\"");
    let other = call(&s.app, &anne, "create_issue", json!({"repo": "other"})).await;
    assert_eq!(denied_by(&other)["subject"], "agent:planner");
    assert_eq!(denied_by(&other)["kind"], "principal");
    let array = call(&s.app, &anne, "create_issue", json!({"repo": ["acme", "other"]})).await;
    assert_eq!(denied_by(&array)["subject"], "agent:planner");
    let both = call(&s.app, &anne, "create_issue", json!({"repo": ["acme", "acme"]})).await;
    assert!(both.get("result").is_some(), "{both}");
    for hostile in [json!("../acme"), json!("a\u{0}b"), json!("x".repeat(10_000)), json!({"nested": 1}), Value::Null] {
        let answer = call(&s.app, &anne, "create_issue", json!({"repo": hostile})).await;
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains("arguments.repo"), "{answer}");
    }
    assert_eq!(s.upstream.calls.load(Ordering::SeqCst), 2, "only the allowed calls reached the upstream");
}

#[tokio::test]
async fn chains_are_checked_link_by_link() {
    let s = setup().await;
    // Confused deputy: planner may delete repos, anne may not.
    let deputy = call(&s.app, &token(json!({})), "delete_repo", json!({})).await;
    assert_eq!(denied_by(&deputy)["kind"], "principal");
    assert_eq!(denied_by(&deputy)["subject"], "user:anne");
    // Three hops, each delegated: allowed.
    let three = token(json!({"act": {"sub": "researcher", "act": {"sub": "planner"}}}));
    assert!(call(&s.app, &three, "search", json!({})).await.get("result").is_some());
    // Three hops, planner never delegated to intruder: the link is named.
    let broken = token(json!({"act": {"sub": "intruder", "act": {"sub": "planner"}}}));
    let answer = call(&s.app, &broken, "search", json!({})).await;
    assert_eq!(denied_by(&answer)["kind"], "delegation");
    assert_eq!(denied_by(&answer)["subject"], "agent:intruder");
    // Revoking anne's delegation denies the very next call.
    let anne = token(json!({}));
    assert!(call(&s.app, &anne, "search", json!({})).await.get("result").is_some());
    let revoke = Tuple::from_parts("user:anne", "delegate", "agent:planner").unwrap();
    s.engine.store(&s.store).unwrap().write(WriteRequest { deletes: vec![revoke], ..Default::default() }).unwrap();
    let after = call(&s.app, &anne, "search", json!({})).await;
    assert_eq!(denied_by(&after)["kind"], "delegation");
    assert_eq!(denied_by(&after)["subject"], "agent:planner");
    assert_eq!(s.upstream.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unknown_methods_and_tools_are_denied_and_recorded() {
    let s = setup().await;
    let anne = token(json!({}));
    let unknown = rpc(&s.app, &anne, "sampling/createMessage", json!({})).await.json();
    assert_eq!(denied_by(&unknown)["kind"], "mapping");
    let templates = rpc(&s.app, &anne, "resources/read", json!({"uri": "file:///etc/passwd"})).await.json();
    assert_eq!(denied_by(&templates)["kind"], "mapping", "no resources map: every resource unmapped");
    assert!(s.upstream.methods().is_empty(), "{:?}", s.upstream.methods());
    let decision_id = unknown["error"]["data"]["decision_id"].as_str().unwrap();
    let records = s
        .engine
        .decision_log()
        .list(&s.engine.store(&s.store).unwrap(), &DecisionFilter { limit: 100, ..Default::default() })
        .unwrap();
    assert!(records.iter().any(|(_, r)| *r.request_id == *decision_id && !r.allowed), "the refusal is in the log");
}

#[tokio::test]
async fn log_only_decides_records_and_forwards() {
    let s = setup_with("log_only", None).await;
    let anne = token(json!({}));
    let answer = rpc(&s.app, &anne, "tools/call", json!({"name": "delete_repo", "arguments": {"force": true}})).await;
    assert!(answer.json().get("result").is_some(), "log_only forwards a deny: {}", answer.body);
    let list = rpc(&s.app, &anne, "tools/list", json!({})).await;
    assert_eq!(listed(&list.json()), TOOLS, "log_only hides nothing");
    let filter = DecisionFilter { object: Some("tool:github.delete_repo".into()), limit: 100, ..Default::default() };
    let records = s.engine.decision_log().list(&s.engine.store(&s.store).unwrap(), &filter).unwrap();
    let call = records.iter().map(|(_, r)| r).find(|r| r.audit.as_ref().is_some_and(|a| a["method"] == "tools/call"));
    let call = call.expect("the call's decision is recorded");
    assert!(!call.allowed);
    assert_eq!(call.principals, ["user:anne", "agent:planner"]);
    let audit = Value::Object(call.audit.clone().unwrap());
    assert_eq!(audit["server"], "github");
    assert_eq!(audit["tool"], "delete_repo");
    assert_eq!(audit["session"], "session-1");
    assert_eq!(audit["arguments_sha256"], writ::gateway::arguments_sha256(&json!({"force": true})).as_str());
    assert_eq!(s.upstream.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn sse_answers_are_proxied_and_filtered() {
    let s = setup().await;
    s.upstream.sse.store(true, Ordering::SeqCst);
    let anne = token(json!({}));
    let list = rpc(&s.app, &anne, "tools/list", json!({})).await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.headers["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events = list.events();
    assert_eq!(events.len(), 2, "{}", list.body);
    assert_eq!(events[0]["method"], "notifications/message", "other events pass through");
    assert_eq!(listed(&events[1]), ["search", "create_issue"]);
    assert!(list.body.contains("id: 2\n"), "event ids are kept: {}", list.body);
    let called = rpc(&s.app, &anne, "tools/call", json!({"name": "search", "arguments": {}})).await;
    assert_eq!(called.events()[1]["result"]["content"][0]["text"], "called \"search\"");
}

#[tokio::test]
async fn a_hanging_or_absent_upstream_is_an_error_within_the_timeout() {
    let s = setup().await;
    s.upstream.hang.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let answer = call(&s.app, &token(json!({})), "search", json!({})).await;
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert_eq!(answer["id"], 7);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());

    // A port nobody listens on: bind one, then close it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let s = setup_with("enforce", Some(&format!("http://{closed}/mcp"))).await;
    let started = Instant::now();
    let answer = call(&s.app, &token(json!({})), "search", json!({})).await;
    assert_eq!(answer["error"]["code"], -32603, "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn malformed_messages_batches_and_large_bodies_are_refused() {
    let s = setup().await;
    let anne = token(json!({}));
    let one = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search"}});
    let cases: [(String, StatusCode, i64); 7] = [
        ("{".into(), StatusCode::BAD_REQUEST, -32700),
        ("".into(), StatusCode::BAD_REQUEST, -32700),
        (json!([one, one]).to_string(), StatusCode::BAD_REQUEST, -32600),
        (json!({"id": 1, "method": "tools/call"}).to_string(), StatusCode::BAD_REQUEST, -32600),
        (json!({"jsonrpc": "2.0", "id": {"x": 1}, "method": "ping"}).to_string(), StatusCode::BAD_REQUEST, -32600),
        (json!({"jsonrpc": "2.0", "id": 1, "method": 5}).to_string(), StatusCode::BAD_REQUEST, -32600),
        (
            format!("{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"x\":\"{}\"}}", "y".repeat(70_000)),
            StatusCode::PAYLOAD_TOO_LARGE,
            -32600,
        ),
    ];
    for (body, status, code) in cases {
        let answer = send(&s.app, post(Some(&anne), body.clone())).await;
        assert_eq!(answer.status, status, "{}", &body[..body.len().min(80)]);
        assert_eq!(answer.json()["error"]["code"], code, "{}", answer.body);
    }
    let params = rpc(&s.app, &anne, "tools/call", json!({"arguments": {}})).await.json();
    assert_eq!(params["error"]["code"], -32602, "a call without a name");
    assert!(s.upstream.methods().is_empty(), "{:?}", s.upstream.methods());
}

#[tokio::test]
async fn the_api_key_check_does_not_catch_gateway_routes() {
    let s = setup().await;
    let anne = token(json!({}));
    let answer = rpc(&s.app, &anne, "ping", json!({})).await;
    assert_eq!(answer.status, StatusCode::OK, "the JWT, not a preshared key, admits the gateway: {}", answer.body);
    let stores = send(&s.app, Request::get("/stores").body(Body::empty()).unwrap()).await;
    assert_eq!(stores.status, StatusCode::UNAUTHORIZED, "the API still needs its key");
    let with_jwt = send(
        &s.app,
        Request::get("/stores").header("authorization", format!("Bearer {anne}")).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(with_jwt.status, StatusCode::UNAUTHORIZED, "a gateway token is not an API key");
    let with_key = send(
        &s.app,
        Request::get("/stores").header("authorization", "Bearer the-admin-key-123").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(with_key.status, StatusCode::OK);
}

#[tokio::test]
async fn a_jwks_url_is_refetched_for_an_unknown_kid_at_most_once_per_interval() {
    let (first, first_key) = p256_key("k1");
    let (second, second_key) = p256_key("k2");
    let document = Arc::new(Mutex::new(json!({"keys": [first]})));
    let fetches = Arc::new(AtomicUsize::new(0));
    let jwks_app = Router::new().route(
        "/jwks.json",
        axum::routing::get({
            let (document, fetches) = (document.clone(), fetches.clone());
            move || async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                axum::Json(document.lock().unwrap().clone())
            }
        }),
    );
    let jwks_url = format!("http://{}/jwks.json", serve_router(jwks_app).await);

    let engine = Arc::new(Engine::in_memory());
    let store = engine.create_store("gateway").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    engine.store(&store).unwrap().write(WriteRequest { writes: tuples(), ..Default::default() }).unwrap();
    let (upstream, _state) = start_upstream().await;
    let text = config_text_with(&store, &upstream, "enforce", &format!("jwks_url: {jwks_url}"));
    let env = |_: &str| Some(UPSTREAM_SECRET.to_string());
    let config = GatewayConfig::parse(&text, Format::Yaml, &env).unwrap();
    let gateway = Gateway::start(config, engine, GatewayOptions::default()).await.unwrap();
    let app = gateway.router();
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "fetched at start");

    let ping = |token: String| post(Some(&token), json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}).to_string());
    assert_eq!(send(&app, ping(sign_as(&claims(json!({})), &first_key, "k1"))).await.status, StatusCode::OK);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "a known kid fetches nothing");
    // The issuer rotates in k2: the first token naming it triggers one refetch and passes.
    document.lock().unwrap()["keys"].as_array_mut().unwrap().push(second);
    assert_eq!(send(&app, ping(sign_as(&claims(json!({})), &second_key, "k2"))).await.status, StatusCode::OK);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
    // Made-up kids right after: refused, without another fetch.
    for _ in 0..3 {
        let answer = send(&app, ping(sign_as(&claims(json!({})), &second_key, "k3"))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "refetches are rate-limited");
}

#[tokio::test]
async fn an_approval_required_deny_waits_for_an_approver_and_then_passes_once() {
    let s = setup().await;
    let anne = token(json!({}));
    // planner may not write `other`: the entry marked `approval: required` denies alone.
    let first = call(&s.app, &anne, "archive_repo", json!({"repo": "other"})).await;
    assert_eq!(denied_by(&first)["subject"], "agent:planner");
    let approval = &first["error"]["data"]["approval"];
    let id = approval["id"].as_str().unwrap().to_string();
    let url = format!("{PUBLIC_URL}/stores/{}/writ/approvals/{id}", s.store);
    assert_eq!(approval["url"], url.as_str());
    let again = call(&s.app, &anne, "archive_repo", json!({"repo": "other"})).await;
    assert_eq!(again["error"]["data"]["approval"]["id"], id.as_str(), "one pending approval per call");

    let admin = Some("the-admin-key-123");
    let path = format!("/stores/{}/writ/approvals/{id}", s.store);
    let (status, shown) = call_as(&s.app, admin, "GET", &path, None).await;
    assert_eq!(
        (status, shown["state"].as_str(), shown["tool"].as_str()),
        (StatusCode::OK, Some("pending"), Some("archive_repo"))
    );
    let grant = json!({"ttl": "5m", "uses": 1});
    let (status, approved) = call_as(&s.app, admin, "POST", &format!("{path}/approve"), Some(grant)).await;
    assert_eq!(status, StatusCode::OK, "{approved}");

    let changed = call(&s.app, &anne, "archive_repo", json!({"repo": "other", "force": true})).await;
    assert_ne!(changed["error"]["data"]["approval"]["id"], id.as_str(), "a changed argument is another call");
    let retried = call(&s.app, &anne, "archive_repo", json!({"repo": "other"})).await;
    assert_eq!(retried["result"]["content"][0]["text"], "called \"archive_repo\"", "{retried}");
    let second = call(&s.app, &anne, "archive_repo", json!({"repo": "other"})).await;
    assert_ne!(second["error"]["data"]["approval"]["id"], id.as_str(), "the one use is gone: {second}");
    assert_eq!(s.upstream.calls.load(Ordering::SeqCst), 1, "only the approved call reached the upstream");
}

/// Regression for hashing every call's arguments up front: the digest is now computed only for
/// a record the log keeps (or an approval), and an allowed call the log keeps (this setup
/// records all) still carries it, filled in, not the placeholder.
#[tokio::test]
async fn a_recorded_allowed_call_carries_the_digest_of_its_arguments() {
    let s = setup().await;
    let arguments = json!({"query": "writ", "limit": 3});
    let answer = call(&s.app, &token(json!({})), "search", arguments.clone()).await;
    assert!(answer.get("result").is_some(), "{answer}");
    let filter = DecisionFilter { object: Some("tool:github.search".into()), limit: 100, ..Default::default() };
    let records = s.engine.decision_log().list(&s.engine.store(&s.store).unwrap(), &filter).unwrap();
    let call = records.iter().map(|(_, r)| r).find(|r| r.audit.as_ref().is_some_and(|a| a["method"] == "tools/call"));
    let call = call.expect("the allowed call is recorded");
    assert!(call.allowed);
    let audit = Value::Object(call.audit.clone().unwrap());
    assert_eq!(audit["arguments_sha256"], writ::gateway::arguments_sha256(&arguments).as_str());
}
