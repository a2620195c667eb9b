//! The wire schema's shared request options (`context`, `contextual_tuples`,
//! `authorization_model_id`, `at_least_revision`, `audit`), which every query body flattens in:
//! what serde's `flatten` could change (unknown fields, numbers, which field an error names)
//! stays as clients saw it before. And the typed answers of the agent routes keep their bytes:
//! field order included, since clients and logs may compare text.

use crate::support::http::{call, error_code, send};
use axum::http::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use writ::api::router;
use writ::api::Api;
use writ::engine::WriteRequest;
use writ::store::StoredTuple;
use writ::tuple::TupleCondition;
use writ::{Engine, Model, Tuple};

const MODEL: &str = "model
  schema 1.1
type user
  relations
    define delegate: [agent]
type agent
type document
  relations
    define viewer: [user with cheap, user with huge, agent]
    define delegate: [agent]
condition cheap(price: double) {
  price < 2.5
}
condition huge(n: uint) {
  n > 18446744073709551614u
}
";

/// A router over one store with [`MODEL`]: anne may view `document:1` while `price` is cheap,
/// bob may view `document:2` for a huge enough `n`.
fn fixture() -> (Api, String) {
    let engine = Engine::in_memory();
    let store = engine.create_store("wire").unwrap().id;
    engine.store(&store).unwrap().write_model(Model::parse_dsl(MODEL).unwrap()).unwrap();
    let conditioned = |object: &str, user: &str, condition: &str| {
        let mut tuple = Tuple::from_parts(object, "viewer", user).unwrap();
        tuple.condition = Some(TupleCondition { name: condition.into(), context: Default::default() });
        StoredTuple::new(tuple)
    };
    let writes = vec![conditioned("document:1", "user:anne", "cheap"), conditioned("document:2", "user:bob", "huge")];
    engine.store(&store).unwrap().write(WriteRequest { writes, ..Default::default() }).unwrap();
    (router(Arc::new(engine)), store)
}

fn check_body(user: &str, object: &str, extra: Value) -> Value {
    let mut body = json!({"tuple_key": {"user": user, "relation": "viewer", "object": object}});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

#[tokio::test]
async fn flattened_options_still_ignore_unknown_fields() {
    let (app, store) = fixture();
    let uri = format!("/stores/{store}/check");
    let body = check_body(
        "user:anne",
        "document:1",
        json!({"context": {"price": 1.0}, "consistency": "HIGHER", "x": [1, {"y": null}]}),
    );
    let (status, answer) = call(&app, "POST", &uri, Some(body)).await;
    assert_eq!((status, answer), (StatusCode::OK, json!({"allowed": true, "resolution": ""})));
}

#[tokio::test]
async fn flattened_options_keep_floats_and_full_u64_context_numbers() {
    let (app, store) = fixture();
    let uri = format!("/stores/{store}/check");
    for (price, allowed) in [(1.5, true), (3.5, false)] {
        let body = check_body("user:anne", "document:1", json!({"context": {"price": price}}));
        let (status, answer) = call(&app, "POST", &uri, Some(body)).await;
        assert_eq!((status, answer["allowed"].clone()), (StatusCode::OK, json!(allowed)), "price {price}");
    }
    for (n, allowed) in [(u64::MAX, true), (u64::MAX - 1, false)] {
        let body = check_body("user:bob", "document:2", json!({"context": {"n": n}}));
        let (status, answer) = call(&app, "POST", &uri, Some(body)).await;
        assert_eq!((status, answer["allowed"].clone()), (StatusCode::OK, json!(allowed)), "n {n}");
    }
}

#[tokio::test]
async fn flattened_at_least_revision_reads_numbers_and_strings_and_names_itself_when_bad() {
    let (app, store) = fixture();
    for route in ["check", "list-objects", "writ/obo-check"] {
        let uri = format!("/stores/{store}/{route}");
        let body = |revision: Value| match route {
            "check" => check_body("agent:x", "document:1", json!({"at_least_revision": revision})),
            "list-objects" => {
                json!({"type": "document", "relation": "viewer", "user": "agent:x", "at_least_revision": revision})
            }
            _ => json!({"principals": ["agent:x"], "relation": "viewer", "object": "document:1",
                "at_least_revision": revision}),
        };
        for good in [json!(1), json!("1"), json!(null), json!("")] {
            let (status, answer) = call(&app, "POST", &uri, Some(body(good.clone()))).await;
            assert_eq!(status, StatusCode::OK, "{route} {good}: {answer}");
        }
        for bad in [json!("x"), json!(-1), json!(1.5), json!([1])] {
            let (status, answer) = call(&app, "POST", &uri, Some(body(bad.clone()))).await;
            assert_eq!(error_code(status, &answer), "validation_error", "{route} {bad}: {answer}");
            let message = answer["message"].as_str().unwrap_or_default();
            assert!(message.contains("at_least_revision"), "{route} {bad}: {message}");
        }
    }
}

#[tokio::test]
async fn flattened_options_name_a_badly_typed_field() {
    let (app, store) = fixture();
    let uri = format!("/stores/{store}/check");
    for (field, value) in [
        ("context", json!([1])),
        ("contextual_tuples", json!(7)),
        ("authorization_model_id", json!(5)),
        ("audit", json!("tool")),
    ] {
        let body = check_body("user:anne", "document:1", json!({ field: value }));
        let (status, answer) = call(&app, "POST", &uri, Some(body)).await;
        assert_eq!(error_code(status, &answer), "validation_error", "{field}: {answer}");
    }
}

/// The text of an answer (re-printed from its parse, which keeps field order).
async fn text(app: &Api, method: &str, uri: &str, body: Value) -> String {
    let (status, value) = send(app, None, method, uri, body.to_string().into_bytes()).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {value}");
    value.to_string()
}

#[tokio::test]
async fn agent_answers_and_recorded_denials_keep_their_bytes() {
    let (app, store) = fixture();
    let obo = text(
        &app,
        "POST",
        &format!("/stores/{store}/writ/obo-check"),
        json!({"principals": ["user:anne", "agent:x"], "relation": "viewer", "object": "document:1",
            "context": {"price": 1.0}}),
    )
    .await;
    let revision: Value = serde_json::from_str(&obo).unwrap();
    let revision = revision["revision"].as_u64().unwrap();
    assert_eq!(
        obo,
        format!(
            r#"{{"allowed":false,"denied_by":{{"kind":"delegation","subject":"agent:x","message":"`agent:x` does not hold `delegate` on `user:anne`: it may not act for it"}},"revision":{revision}}}"#
        )
    );
    let audience = text(
        &app,
        "POST",
        &format!("/stores/{store}/writ/audience-check"),
        json!({"audience": ["agent:x"], "relation": "viewer", "objects": ["document:1"]}),
    )
    .await;
    assert_eq!(
        audience,
        format!(
            r#"{{"results":[{{"object":"document:1","allowed":false,"denied_for":["agent:x"]}}],"revision":{revision}}}"#
        )
    );
    let filter = text(
        &app,
        "POST",
        &format!("/stores/{store}/writ/filter"),
        json!({"principals": ["agent:x"], "relation": "viewer", "object_type": "document", "ids": ["1", "2"]}),
    )
    .await;
    assert_eq!(filter, format!(r#"{{"allowed_ids":[],"examined":2,"visible":0,"revision":{revision}}}"#));
    let (status, listed) = send(&app, None, "GET", &format!("/stores/{store}/writ/decisions"), Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.to_string();
    for denial in [
        r#""denied_by":{"kind":"filtered","hidden":2,"of":2,"message":"2 of 2 `document` ids are not visible"}"#,
        r#""denied_by":{"kind":"audience","subjects":["agent:x"],"message":"1 of the audience may not `viewer` `document:1`"}"#,
        r#""denied_by":{"kind":"delegation","subject":"agent:x","message":"#,
    ] {
        assert!(listed.contains(denial), "{denial} not in {listed}");
    }
}
