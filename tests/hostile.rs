//! The hostile battery: hundreds of malformed and hostile requests, generated per endpoint (bad
//! JSON, wrong types, NUL bytes and odd unicode in every string, huge and deeply nested bodies,
//! oversized arrays, path tricks in store ids, bad query strings, continuation tokens and
//! `at_least_revision`, bad methods and bad `Authorization` headers). Every answer must be below
//! 500, every error must carry a `code` and a `message`, nothing may panic, and the data written
//! before the battery must read back unchanged afterwards.

use crate::support::http::{call, error_code, send, tuple};
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use writ::api::Api;
use writ::api::{router_with_config, Auth, KeySet, RouterConfig};
use writ::Engine;

const MODEL: &str = "model
  schema 1.1
type user
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define viewer: [user]
type document
  relations
    define parent: [folder]
    define owner: [user]
    define viewer: [user, user:*, group#member] or owner or viewer from parent
";

/// What the battery must leave as it found: every tuple, and the answers they give.
#[derive(Debug, PartialEq)]
struct Snapshot {
    tuples: Value,
    checks: Vec<Value>,
    objects: Value,
    models: usize,
}

async fn snapshot(app: &Api, store: &str) -> Snapshot {
    let (status, read) = call(app, "POST", &format!("/stores/{store}/read"), Some(json!({"page_size": 100}))).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    // Each tuple with its write time: a tuple deleted and written back would show a new time.
    let tuples = read["tuples"].clone();
    let mut checks = Vec::new();
    for (user, object) in [
        ("user:anne", "document:1"),
        ("user:bob", "document:2"),
        ("user:carol", "document:3"),
        ("user:zed", "document:1"),
        ("user:anyone", "document:public"),
    ] {
        let body = json!({"tuple_key": tuple(user, "viewer", object)});
        let (status, answer) = call(app, "POST", &format!("/stores/{store}/check"), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        checks.push(answer["allowed"].clone());
    }
    let list = json!({"type": "document", "relation": "viewer", "user": "user:bob"});
    let (_, objects) = call(app, "POST", &format!("/stores/{store}/list-objects"), Some(list)).await;
    let (_, models) = call(app, "GET", &format!("/stores/{store}/authorization-models"), None).await;
    Snapshot {
        tuples,
        checks,
        objects: objects["objects"].clone(),
        models: models["authorization_models"].as_array().unwrap().len(),
    }
}

/// One request of the battery.
struct Probe {
    method: &'static str,
    uri: String,
    body: Vec<u8>,
    authorization: Option<Vec<u8>>,
}

impl Probe {
    fn json(method: &'static str, uri: String, body: &Value) -> Probe {
        Probe { method, uri, body: body.to_string().into_bytes(), authorization: None }
    }

    fn raw(method: &'static str, uri: String, body: impl Into<Vec<u8>>) -> Probe {
        Probe { method, uri, body: body.into(), authorization: None }
    }
}

/// Replaces every string in `value` (keys stay) with `replacement`.
fn replace_strings(value: &Value, replacement: &Value) -> Value {
    match value {
        Value::String(_) => replacement.clone(),
        Value::Array(items) => Value::Array(items.iter().map(|v| replace_strings(v, replacement)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), replace_strings(v, replacement))).collect())
        }
        other => other.clone(),
    }
}

/// The endpoints that take a body, each with a well-formed body to corrupt.
/// The bodies are well-formed but change nothing: the write rewrites an existing tuple and the
/// delete names a missing one, so both fail.
fn body_endpoints(store: &str, model: &str) -> Vec<(&'static str, String, Value)> {
    let key = tuple("user:anne", "viewer", "document:1");
    let existing = tuple("user:anne", "owner", "document:1");
    let missing = tuple("user:nobody", "viewer", "document:1");
    vec![
        ("POST", "/stores".into(), json!({"name": "hostile"})),
        ("POST", format!("/stores/{store}/write"), json!({"writes": {"tuple_keys": [existing]}})),
        ("POST", format!("/stores/{store}/write"), json!({"deletes": {"tuple_keys": [missing]}})),
        ("POST", format!("/stores/{store}/read"), json!({"tuple_key": {"object": "document:"}, "page_size": 5})),
        ("POST", format!("/stores/{store}/check"), json!({"tuple_key": key, "context": {"a": "b"}})),
        (
            "POST",
            format!("/stores/{store}/batch-check"),
            json!({"checks": [{"tuple_key": key, "correlation_id": "c1"}]}),
        ),
        (
            "POST",
            format!("/stores/{store}/expand"),
            json!({"tuple_key": {"relation": "viewer", "object": "document:1"}}),
        ),
        (
            "POST",
            format!("/stores/{store}/list-objects"),
            json!({"type": "document", "relation": "viewer", "user": "user:anne",
                "contextual_tuples": {"tuple_keys": [tuple("user:anne", "owner", "document:9")]}}),
        ),
        (
            "POST",
            format!("/stores/{store}/streamed-list-objects"),
            json!({"type": "document", "relation": "viewer", "user": "user:anne"}),
        ),
        (
            "POST",
            format!("/stores/{store}/list-users"),
            json!({"object": {"type": "document", "id": "1"}, "relation": "viewer", "user_filters": [{"type": "user"}]}),
        ),
        (
            "POST",
            format!("/stores/{store}/authorization-models"),
            json!({"schema_version": "1.1", "type_definitions": [{"type": "user"}]}),
        ),
        (
            "PUT",
            format!("/stores/{store}/assertions/{model}"),
            json!({"assertions": [{"tuple_key": key, "expectation": true}]}),
        ),
        (
            "POST",
            format!("/stores/{store}/access/v1/evaluation"),
            json!({"subject": {"type": "user", "id": "anne"}, "action": {"name": "viewer"},
                "resource": {"type": "document", "id": "1"}}),
        ),
        (
            "POST",
            format!("/stores/{store}/writ/obo-check"),
            json!({"principals": ["user:anne"], "relation": "viewer", "object": "document:1"}),
        ),
        (
            "POST",
            format!("/stores/{store}/writ/audience-check"),
            json!({"audience": ["user:anne", "user:bob"], "relation": "viewer", "objects": ["document:1"]}),
        ),
        (
            "POST",
            format!("/stores/{store}/writ/filter"),
            json!({"principals": ["user:anne"], "relation": "viewer", "object_type": "document", "ids": ["1", "2"]}),
        ),
        (
            "POST",
            format!("/stores/{store}/access/v1/evaluations"),
            json!({"subject": {"type": "user", "id": "anne"}, "evaluations": [{"action": {"name": "viewer"},
                "resource": {"type": "document", "id": "1"}}]}),
        ),
    ]
}

fn battery(store: &str, model: &str) -> Vec<Probe> {
    let mut probes = Vec::new();
    let hostile_strings = [
        json!("\u{0}"),
        json!("user:\u{0}anne"),
        json!("document:1\u{0}#viewer@user:anne"),
        json!("document:../../etc/passwd"),
        json!("𝕦𝕤𝕖𝕣:🙂"),
        json!("user:\u{202e}enna"),
        json!("user:a\u{fffd}\u{feff}"),
        json!(format!("user:{}", "a".repeat(20_000))),
        json!("type:*#*@*"),
        json!(":#@"),
        json!(""),
        json!(" user:anne "),
    ];
    let wrong_types = [json!(5), json!(null), json!([]), json!({}), json!(true), json!(-1.5e308)];
    let raw_bodies: Vec<Vec<u8>> = vec![
        b"{not json".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"a string\"".to_vec(),
        b"123456789012345678901234567890".to_vec(),
        vec![0xff, 0xfe, 0x00, 0x7b],
        b"{\"a\":1,\"a\":2}".to_vec(),
        vec![b'['; 50_000],
        [b"{\"x\":".as_slice(), &vec![b'{'; 10_000]].concat(),
        vec![b'a'; 5 * 1024 * 1024],
        b"\x00\x00\x00\x00".to_vec(),
        "{\"name\": \"\u{0}\"".as_bytes().to_vec(),
    ];
    for (method, uri, good) in body_endpoints(store, model) {
        for body in &raw_bodies {
            probes.push(Probe::raw(method, uri.clone(), body.clone()));
        }
        for replacement in hostile_strings.iter().chain(&wrong_types) {
            probes.push(Probe::json(method, uri.clone(), &replace_strings(&good, replacement)));
        }
        // Unknown fields and an oversized array riding along with a good body (but not on a model
        // write, which would succeed and change the store's answers).
        if !uri.ends_with("authorization-models") {
            let mut extra = good.clone();
            extra["evil"] = json!(vec![json!({"deep": [1, 2, 3]}); 20_000]);
            probes.push(Probe::json(method, uri.clone(), &extra));
        }
    }
    // Oversized arrays where the API takes arrays.
    let many: Vec<Value> = (0..5_000).map(|i| tuple(&format!("user:{i}"), "viewer", "document:1")).collect();
    probes.push(Probe::json("POST", format!("/stores/{store}/write"), &json!({"writes": {"tuple_keys": many}})));
    let contextual =
        json!({"tuple_key": tuple("user:anne", "viewer", "document:1"), "contextual_tuples": {"tuple_keys": many}});
    probes.push(Probe::json("POST", format!("/stores/{store}/check"), &contextual));
    let checks: Vec<Value> = (0..1_000)
        .map(|i| json!({"tuple_key": tuple("user:anne", "viewer", "document:1"), "correlation_id": i.to_string()}))
        .collect();
    probes.push(Probe::json("POST", format!("/stores/{store}/batch-check"), &json!({"checks": checks})));
    // Duplicate correlation ids, duplicate tuples in one write, unknown model ids.
    let duplicate = json!({"checks": [{"tuple_key": tuple("user:a", "viewer", "document:1"), "correlation_id": "x"},
        {"tuple_key": tuple("user:b", "viewer", "document:1"), "correlation_id": "x"}]});
    probes.push(Probe::json("POST", format!("/stores/{store}/batch-check"), &duplicate));
    let twice = tuple("user:new", "viewer", "document:1");
    probes.push(Probe::json(
        "POST",
        format!("/stores/{store}/write"),
        &json!({"writes": {"tuple_keys": [twice, twice]}}),
    ));
    for model_id in ["nope", "01ARZ3NDEKTSV4RRFFQ69G5FAV", "../../x", "\u{0}"] {
        let body = json!({"tuple_key": tuple("user:anne", "viewer", "document:1"), "authorization_model_id": model_id});
        probes.push(Probe::json("POST", format!("/stores/{store}/check"), &body));
    }
    // Hostile `at_least_revision`, in bodies and query strings.
    for revision in [json!(-1), json!("abc"), json!(1e30), json!("18446744073709551616"), json!(u64::MAX), json!([1])] {
        let body = json!({"tuple_key": tuple("user:anne", "viewer", "document:1"), "at_least_revision": revision});
        probes.push(Probe::json("POST", format!("/stores/{store}/check"), &body));
        probes.push(Probe::json("POST", format!("/stores/{store}/read"), &json!({"at_least_revision": revision})));
    }
    for query in [
        "limit=-1",
        "limit=99999999999",
        "since=yesterday",
        "until=%00",
        "decision=maybe",
        "principal=%00",
        "page_size=-1",
        "page_size=abc",
        "page_size=99999999999",
        "page_size=1000",
        "continuation_token=zz",
        "continuation_token=%00",
        "continuation_token=6375727363f",
        "continuation_token=637572736f723a2d313a30",
        "at_least_revision=-5",
        "at_least_revision=abc",
        "at_least_revision=18446744073709551616",
        "type=%00",
        "type=%F0%9F%99%82",
        "page_size=1&page_size=2",
        "%ZZ=1",
    ] {
        probes.push(Probe::raw("GET", format!("/stores/{store}/changes?{query}"), Vec::new()));
        probes.push(Probe::raw("GET", format!("/stores?{query}"), Vec::new()));
        probes.push(Probe::raw("GET", format!("/stores/{store}/authorization-models?{query}"), Vec::new()));
        probes.push(Probe::raw("GET", format!("/stores/{store}/writ/decisions?{query}"), Vec::new()));
    }
    for token in ["zz", "6f66667365743a2d31", "6f66667365743a3939393939393939393939393939393939393939", "%%%", "\u{0}"]
    {
        let body = json!({"continuation_token": token});
        probes.push(Probe::json("POST", format!("/stores/{store}/read"), &body));
    }
    // Store ids that try to escape or hide: traversal, encoded slashes, NUL, odd unicode, huge.
    let long_id = "x".repeat(5_000);
    for id in [
        "..",
        "%2e%2e",
        "..%2F..",
        "a%2Fb",
        "%2F",
        "%00",
        "%F0%9F%99%82",
        "%E2%80%AE",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "%25",
        "%20",
        long_id.as_str(),
        &format!("{store}%00"),
        &format!("{store}%2F..%2F{store}"),
    ] {
        probes.push(Probe::raw("GET", format!("/stores/{id}"), Vec::new()));
        probes.push(Probe::raw("GET", format!("/stores/{id}/changes"), Vec::new()));
        probes.push(Probe::raw("GET", format!("/stores/{id}/authorization-models"), Vec::new()));
        let check = json!({"tuple_key": tuple("user:anne", "viewer", "document:1")});
        probes.push(Probe::json("POST", format!("/stores/{id}/check"), &check));
        probes.push(Probe::raw(
            "PUT",
            format!("/stores/{id}/writ/model"),
            b"model\n  schema 1.1\ntype user\n".to_vec(),
        ));
    }
    probes.push(Probe::raw("GET", format!("/stores/{store}/../../etc/passwd"), Vec::new()));
    probes.push(Probe::raw("GET", format!("/stores/{store}/authorization-models/..%2F..%2Fx"), Vec::new()));
    probes.push(Probe::raw("GET", format!("/stores/{store}/assertions/%00"), Vec::new()));
    // DSL uploads that are not models.
    for text in [
        &b"\xff\xfe"[..],
        b"model\n  schema 9.9\n",
        b"type",
        &[b'('; 100_000],
        b"model\n  schema 1.1\ntype a\n  relations\n    define r: r\n",
    ] {
        probes.push(Probe::raw("PUT", format!("/stores/{store}/writ/model"), text.to_vec()));
    }
    // Wrong methods.
    for (method, uri) in [
        ("DELETE", format!("/stores/{store}/check")),
        ("PATCH", "/stores".to_string()),
        ("GET", format!("/stores/{store}/write")),
        ("PUT", format!("/stores/{store}/changes")),
        ("POST", "/healthz".to_string()),
        ("TRACE", "/stores".to_string()),
    ] {
        probes.push(Probe::raw(method, uri, Vec::new()));
    }
    probes
}

async fn run(app: &Api, probe: Probe) -> (StatusCode, Value) {
    let mut builder =
        Request::builder().method(probe.method).uri(&probe.uri).header("content-type", "application/json");
    if let Some(value) = &probe.authorization {
        builder = builder.header("authorization", axum::http::HeaderValue::from_bytes(value).unwrap());
    }
    let response = app.clone().oneshot(builder.body(axum::body::Body::from(probe.body)).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).to_string();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn assert_well_answered(what: &str, status: StatusCode, body: &Value) {
    assert!(!status.is_server_error(), "{what}: {status} {body}");
    if status.is_client_error() {
        error_code(status, body);
    }
}

/// A store with [`MODEL`] and a few tuples; returns its id and model id.
async fn seed(app: &Api) -> (String, String) {
    let (status, store) = call(app, "POST", "/stores", Some(json!({"name": "victim"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{store}");
    let store = store["id"].as_str().unwrap().to_string();
    let (status, model) =
        send(app, None, "PUT", &format!("/stores/{store}/writ/model"), MODEL.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{model}");
    let model = model["authorization_model_id"].as_str().unwrap().to_string();
    let tuples = json!([
        tuple("user:anne", "owner", "document:1"),
        tuple("group:eng#member", "viewer", "document:2"),
        tuple("user:bob", "member", "group:eng"),
        tuple("folder:f", "parent", "document:3"),
        tuple("user:carol", "viewer", "folder:f"),
        tuple("user:*", "viewer", "document:public"),
    ]);
    let (status, body) =
        call(app, "POST", &format!("/stores/{store}/write"), Some(json!({"writes": {"tuple_keys": tuples}}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (store, model)
}

#[tokio::test]
async fn the_hostile_battery_gets_no_5xx_and_leaves_data_intact() {
    let config = RouterConfig { revision_wait: Duration::from_millis(5), ..RouterConfig::default() };
    let app = router_with_config(Arc::new(Engine::in_memory()), config);
    let (store, model) = seed(&app).await;
    let before = snapshot(&app, &store).await;
    assert_eq!(before.checks, [json!(true), json!(true), json!(true), json!(false), json!(true)]);
    let probes = battery(&store, &model);
    let total = probes.len();
    assert!(total >= 150, "the battery has only {total} requests");
    let mut client_errors = 0;
    for probe in probes {
        let what = format!("{} {}", probe.method, probe.uri.chars().take(120).collect::<String>());
        let (status, body) = run(&app, probe).await;
        assert_well_answered(&what, status, &body);
        client_errors += usize::from(status.is_client_error());
    }
    eprintln!("battery: {total} requests, {client_errors} refused");
    assert!(client_errors * 10 >= total * 8, "only {client_errors} of {total} hostile requests were refused");
    assert_eq!(snapshot(&app, &store).await, before, "data written before the battery changed");
}

#[tokio::test]
async fn hostile_authorization_headers_are_401_with_a_code() {
    let keys = KeySet::parse_compact("admin:admin-key-0123456789").unwrap();
    let config = RouterConfig { auth: Auth::Preshared(Arc::new(keys)), ..RouterConfig::default() };
    let app = router_with_config(Arc::new(Engine::in_memory()), config);
    let headers: Vec<Vec<u8>> = vec![
        b"Bearer".to_vec(),
        b"Bearer ".to_vec(),
        b"Basic YWRtaW46YWRtaW4=".to_vec(),
        b"Bearer admin-key-012345678".to_vec(),
        b"Bearer admin-key-0123456789x".to_vec(),
        b"Bearer  admin-key-0123456789 extra".to_vec(),
        b"Bearer\tadmin-key-0123456789".to_vec(),
        [b"Bearer ".as_slice(), &vec![b'k'; 16_000]].concat(),
        b"Bearer \xff\xfe\xfd".to_vec(),
        b"Token admin-key-0123456789".to_vec(),
        b"admin-key-0123456789".to_vec(),
        b"Bearer %00".to_vec(),
    ];
    let mut refused = 0;
    for header in headers {
        for (method, uri) in [("GET", "/stores"), ("POST", "/stores"), ("GET", "/metrics")] {
            let probe = Probe {
                method,
                uri: uri.to_string(),
                body: b"{\"name\":\"x\"}".to_vec(),
                authorization: Some(header.clone()),
            };
            let (status, body) = run(&app, probe).await;
            assert_well_answered(&format!("{method} {uri} with {:?}", String::from_utf8_lossy(&header)), status, &body);
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
            refused += 1;
        }
    }
    assert_eq!(refused, 36);
    let (status, body) =
        crate::support::http::call_as(&app, Some("admin-key-0123456789"), "GET", "/stores", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["stores"], json!([]), "no hostile request created a store");
}
