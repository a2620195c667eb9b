//! `/openapi.json`: the OpenAPI 3.1 document of the API, generated from the route table (each
//! endpoint's method, path, [`Access`] and [`Operation`]: what it takes and answers) and from the
//! JSON Schemas (draft 2020-12, as OpenAPI 3.1 uses) that `schemars` derives from the very types
//! the handlers read and write. The document, the router and the access checks all come from one
//! declaration per endpoint, so they cannot drift apart.
//!
//! Invariant: every (method, path) the router serves is in the document, with its request and
//! answer schemas; the document is a pure function of the code, and carries no data.
//! Must not import `store`, `index` or `eval`.

use super::auth::{Access, Role, Scope};
use super::routes::{get, RouteTable};
use axum::http::{header, Method};
use axum::response::IntoResponse;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{json_schema, JsonSchema, Schema};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::sync::OnceLock;

/// Builds one schema in a generator (a `$ref` into `components/schemas` for a named type).
pub(super) type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A request or answer body.
#[derive(Clone, Copy)]
enum Body {
    /// None.
    Empty,
    /// JSON of this schema, as this media type.
    Json(&'static str, SchemaFn),
    /// Text of this media type.
    Text(&'static str),
}

/// What an endpoint takes and answers, for the document: declared with the endpoint's method
/// and access in the route table.
#[derive(Clone, Copy)]
pub(super) struct Operation {
    request: Body,
    query: Option<SchemaFn>,
    status: u16,
    response: Body,
}

impl Operation {
    /// Takes a JSON `Req` and answers `200` with a JSON `Resp`.
    pub(super) fn json<Req: JsonSchema, Resp: JsonSchema>() -> Operation {
        Operation {
            request: Body::Json("application/json", schema_of::<Req>),
            query: None,
            status: 200,
            response: Body::Json("application/json", schema_of::<Resp>),
        }
    }

    /// Takes no body and answers `200` with a JSON `Resp`.
    pub(super) fn answers<Resp: JsonSchema>() -> Operation {
        Operation { request: Body::Empty, ..Operation::json::<(), Resp>() }
    }

    /// Takes a JSON `Req` and answers `204` with no body.
    pub(super) fn no_content<Req: JsonSchema>() -> Operation {
        Operation { status: 204, response: Body::Empty, ..Operation::json::<Req, ()>() }
    }

    /// Takes no body and answers `204` with no body.
    pub(super) fn nothing() -> Operation {
        Operation { request: Body::Empty, ..Operation::no_content::<()>() }
    }

    /// Also reads the query parameters of `Query`.
    pub(super) fn query<Query: JsonSchema>(self) -> Operation {
        Operation { query: Some(schema_of::<Query>), ..self }
    }

    /// Answers with `status` instead of `200`.
    pub(super) fn status(self, status: u16) -> Operation {
        Operation { status, ..self }
    }

    /// Takes text of `media_type` instead of JSON.
    pub(super) fn text_request(self, media_type: &'static str) -> Operation {
        Operation { request: Body::Text(media_type), ..self }
    }

    /// Answers text of `media_type` instead of JSON.
    pub(super) fn text_response(self, media_type: &'static str) -> Operation {
        Operation { response: Body::Text(media_type), ..self }
    }

    /// Answers a stream of JSON `Item`s, one per line (`application/x-ndjson`).
    pub(super) fn json_lines<Item: JsonSchema>(self) -> Operation {
        Operation { response: Body::Json("application/x-ndjson", schema_of::<Item>), ..self }
    }
}

/// The error answer of every route: `{"code", "message"}`, and the model's diagnostics when a
/// model does not compile.
#[derive(JsonSchema)]
#[expect(dead_code, reason = "describes the bodies `ApiError` writes; never built")]
struct ErrorBody {
    /// A machine code, OpenFGA's where it has one (`validation_error`, `forbidden`, ...).
    code: String,
    /// What went wrong, for people.
    message: String,
    /// Each problem of a model that does not compile.
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostics: Option<Vec<Diagnostic>>,
}

/// One problem of a model, at a 1-based position when it has one.
#[derive(JsonSchema)]
#[expect(dead_code, reason = "describes the bodies `ApiError` writes; never built")]
struct Diagnostic {
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<u32>,
    message: String,
}

/// OpenFGA's JSON authorization model, described at its top level (the type definitions and
/// conditions are the model's own JSON, which `model` defines and checks).
pub(super) struct AuthorizationModel;

impl JsonSchema for AuthorizationModel {
    fn schema_name() -> Cow<'static, str> {
        "AuthorizationModel".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "schema_version": {"type": "string"},
                "type_definitions": {"type": "array", "items": {"type": "object"}},
                "conditions": {"type": "object"}
            }
        })
    }
}

/// The document's own route.
pub(super) fn routes() -> RouteTable {
    RouteTable::new().route("/openapi.json", get(Access::Open, Operation::answers::<Value>(), serve))
}

async fn serve() -> axum::response::Response {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let text = DOCUMENT.get_or_init(|| super::openapi().to_string());
    ([(header::CONTENT_TYPE, "application/json")], text.as_str()).into_response()
}

/// A generator of 2020-12 schemas that keeps named types in `components/schemas`; requests are
/// described as they are read (a field with a default is optional), answers as they are written
/// (a field that may be skipped is optional).
fn generator(settings: SchemaSettings) -> SchemaGenerator {
    settings.with(|settings| settings.definitions_path = "/components/schemas".into()).into_generator()
}

/// The OpenAPI 3.1 document of every endpoint in `table`.
pub(super) fn document(table: &RouteTable) -> Value {
    let mut requests = generator(SchemaSettings::draft2020_12().for_deserialize());
    let mut answers = generator(SchemaSettings::draft2020_12().for_serialize());
    let error = answers.subschema_for::<ErrorBody>();
    let mut paths = Map::new();
    for (method, path, access, operation) in table.operations() {
        let entry = paths.entry(path).or_insert_with(|| json!({}));
        let name = method.as_str().to_ascii_lowercase();
        entry[name.as_str()] = describe((&mut requests, &mut answers), &method, path, access, operation, &error);
    }
    let mut schemas = answers.take_definitions(true);
    // A type read and written in different shapes keeps its name for the answer; the request's
    // shape is renamed `<name>Input`, and the requests' references follow it.
    let mut request_schemas = requests.take_definitions(true);
    let renamed: Vec<String> = request_schemas
        .iter()
        .filter(|(name, schema)| schemas.get(*name).is_some_and(|answer| answer != *schema))
        .map(|(name, _)| name.clone())
        .collect();
    for name in &renamed {
        if let Some(schema) = request_schemas.remove(name) {
            request_schemas.insert(format!("{name}Input"), schema);
        }
    }
    for schema in request_schemas.values_mut() {
        rename_refs(schema, &renamed);
    }
    for methods in paths.values_mut().filter_map(Value::as_object_mut) {
        for operation in methods.values_mut() {
            if let Some(body) = operation.get_mut("requestBody") {
                rename_refs(body, &renamed);
            }
        }
    }
    for (name, schema) in request_schemas {
        schemas.entry(name).or_insert(schema);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Writ",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Relationship-based authorization: OpenFGA's HTTP API, AuthZEN 1.0 and Writ's own routes."
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    })
}

/// Points every `$ref` to one of `renamed` at its `<name>Input` instead.
fn rename_refs(value: &mut Value, renamed: &[String]) {
    match value {
        Value::Object(map) => {
            for (key, entry) in map.iter_mut() {
                let target = entry.as_str().and_then(|text| text.strip_prefix("#/components/schemas/"));
                match target {
                    Some(name) if key == "$ref" && renamed.iter().any(|r| r == name) => {
                        *entry = json!(format!("#/components/schemas/{name}Input"));
                    }
                    _ => rename_refs(entry, renamed),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rename_refs(item, renamed)),
        _ => {}
    }
}

fn describe(
    (requests, answers): (&mut SchemaGenerator, &mut SchemaGenerator),
    method: &Method,
    path: &str,
    access: Access,
    operation: Operation,
    error: &Schema,
) -> Value {
    let mut parameters: Vec<Value> = path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if let Some(query) = operation.query {
        let settings = SchemaSettings::draft2020_12().for_deserialize();
        let mut inline = settings.with(|settings| settings.inline_subschemas = true).into_generator();
        let schema = query(&mut inline);
        let required = schema.get("required").and_then(Value::as_array).cloned().unwrap_or_default();
        if let Some(Value::Object(properties)) = schema.get("properties") {
            for (name, property) in properties {
                let required = required.iter().any(|r| r == name);
                parameters.push(json!({"name": name, "in": "query", "required": required, "schema": property}));
            }
        }
    }
    let mut description = json!({
        "operationId": format!("{} {path}", method.as_str()),
        "parameters": parameters,
        "responses": {
            "default": {"description": "An error", "content": {"application/json": {"schema": error}}}
        },
        "x-writ-access": access_json(access),
    });
    description["security"] = match access {
        Access::Open => json!([]),
        Access::Role(..) => json!([{"bearer": []}]),
    };
    if let Some(content) = content(requests, operation.request) {
        description["requestBody"] = json!({"required": true, "content": content});
    }
    let mut answer = json!({"description": "Success"});
    if let Some(content) = content(answers, operation.response) {
        answer["content"] = content;
    }
    description["responses"][operation.status.to_string()] = answer;
    description
}

fn content(generator: &mut SchemaGenerator, body: Body) -> Option<Value> {
    match body {
        Body::Empty => None,
        Body::Json(media_type, schema) => Some(json!({media_type: {"schema": schema(generator)}})),
        Body::Text(media_type) => Some(json!({media_type: {"schema": {"type": "string"}}})),
    }
}

/// `x-writ-access`: `{"role", "scope"}`, or `"open"`.
fn access_json(access: Access) -> Value {
    match access {
        Access::Open => json!("open"),
        Access::Role(role, scope) => {
            let role = match role {
                Role::Reader => "reader",
                Role::Writer => "writer",
                Role::Admin => "admin",
                Role::Approver => "approver",
            };
            let scope = match scope {
                Scope::PathStore => "the path's store",
                Scope::AuthzenStore => "the AuthZEN store",
                Scope::AnyStore => "any store",
                Scope::Global => "global",
            };
            json!({"role": role, "scope": scope})
        }
    }
}
