//! OpenFGA's JSON authorization model (as its API and SDKs send and return it) ↔ [`Model`].
//!
//! What it owns: serde types mirroring OpenFGA's JSON field for field, an insertion-ordered map
//! for `relations`/`conditions`/`parameters`, and the conversions both ways.
//! Invariant: `to_json` emits exactly the shape OpenFGA's transformer emits (no `object: ""`,
//! `metadata: null` for types without relations); JSON map order is kept on input.
//! Must not import `serde_json` (callers deserialize) nor anything outside `model`.

use super::{
    ConditionDef, ConditionParam, Model, ParamType, RelationDef, Rewrite, SchemaError, SchemaErrorKind, Span, TypeDef,
    TypeRestriction,
};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// A JSON object whose key order is kept (OpenFGA relation order matters for printing).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<V>(pub Vec<(String, V)>);

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<V> OrderedMap<V> {
    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value under `key`, if any.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl<V: Serialize> Serialize for OrderedMap<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

struct OrderedMapVisitor<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedMapVisitor<V> {
    type Value = OrderedMap<V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object or null")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = access.next_entry::<String, V>()? {
            entries.push((k, v));
        }
        Ok(OrderedMap(entries))
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(OrderedMap::default())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(OrderedMap::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(OrderedMapVisitor(PhantomData))
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(OrderedMapVisitor(PhantomData))
    }
}

/// OpenFGA's JSON authorization model (`schema_version`, `type_definitions`, `conditions`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonModel {
    /// The model id, when the API returns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `"1.1"`.
    pub schema_version: String,
    /// The types, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub type_definitions: Vec<JsonTypeDefinition>,
    /// Conditions by name.
    #[serde(skip_serializing_if = "OrderedMap::is_empty")]
    pub conditions: OrderedMap<JsonCondition>,
}

/// One entry of `type_definitions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonTypeDefinition {
    /// The type name.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Relation rewrites by name, in order.
    #[serde(default)]
    pub relations: OrderedMap<JsonUserset>,
    /// Direct type restrictions and module information; `null` when the type has no relations.
    #[serde(default)]
    pub metadata: Option<JsonTypeMetadata>,
}

/// `metadata` of a type definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonTypeMetadata {
    /// Per-relation metadata (left out when empty, as for a modular type without relations).
    #[serde(skip_serializing_if = "OrderedMap::is_empty")]
    pub relations: OrderedMap<JsonRelationMetadata>,
    /// The module the type came from (modular models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// The file the type came from (modular models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_info: Option<JsonSourceInfo>,
}

/// `source_info` of modular-model metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonSourceInfo {
    /// The `.fga` file name.
    pub file: String,
}

/// `metadata.relations.<name>` of a JSON type definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonRelationMetadata {
    /// The direct type restrictions.
    pub directly_related_user_types: Vec<JsonRelationReference>,
    /// The module the relation came from (modular models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// The file the relation came from (modular models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_info: Option<JsonSourceInfo>,
}

/// One direct type restriction: `{"type":"group","relation":"member"}`, `{"type":"user","wildcard":{}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonRelationReference {
    /// The subject type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The subject relation (`group#member`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    /// Present for `user:*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard: Option<JsonEmpty>,
    /// The condition name (`user with cond`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Writ's extension for SpiceDB's `with expiration` (written only when true).
    #[serde(default, rename = "writExpiration", skip_serializing_if = "std::ops::Not::not")]
    pub expiration: bool,
}

/// The empty object `{}` (`this`, `wildcard`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonEmpty {}

/// A userset rewrite: exactly one field is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonUserset {
    /// Direct tuples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub this: Option<JsonEmpty>,
    /// Another relation on the same object.
    #[serde(rename = "computedUserset", alias = "computed_userset", skip_serializing_if = "Option::is_none")]
    pub computed_userset: Option<JsonObjectRelation>,
    /// `computed from tupleset`.
    #[serde(rename = "tupleToUserset", alias = "tuple_to_userset", skip_serializing_if = "Option::is_none")]
    pub tuple_to_userset: Option<JsonTupleToUserset>,
    /// Writ's extension for SpiceDB's `tupleset.all(computed)` (every parent must grant).
    #[serde(rename = "writTupleToUsersetAll", skip_serializing_if = "Option::is_none")]
    pub tuple_to_userset_all: Option<JsonTupleToUserset>,
    /// `a or b`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub union: Option<JsonUsersets>,
    /// `a and b`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intersection: Option<JsonUsersets>,
    /// `a but not b`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difference: Option<JsonDifference>,
}

/// `{"object":"","relation":"viewer"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonObjectRelation {
    /// Always empty in models; omitted on output.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub object: String,
    /// The relation name.
    pub relation: String,
}

/// `tupleToUserset`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonTupleToUserset {
    /// The tupleset relation (`parent`).
    pub tupleset: JsonObjectRelation,
    /// The relation evaluated on the parents.
    #[serde(rename = "computedUserset", alias = "computed_userset")]
    pub computed_userset: JsonObjectRelation,
}

/// `{"child":[...]}` of a union or intersection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonUsersets {
    /// The operands.
    pub child: Vec<JsonUserset>,
}

/// `difference`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JsonDifference {
    /// Who may hold the relation.
    pub base: Box<JsonUserset>,
    /// Who is excluded.
    pub subtract: Box<JsonUserset>,
}

/// A condition definition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonCondition {
    /// The condition name (must equal its key).
    pub name: String,
    /// The CEL expression.
    pub expression: String,
    /// Typed parameters by name.
    pub parameters: OrderedMap<JsonParamType>,
    /// Module information (modular models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<JsonConditionMetadata>,
}

/// `metadata` of a condition.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonConditionMetadata {
    /// The module the condition came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// The file the condition came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_info: Option<JsonSourceInfo>,
}

/// `{"type_name":"TYPE_NAME_LIST","generic_types":[{"type_name":"TYPE_NAME_STRING"}]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JsonParamType {
    /// `TYPE_NAME_INT` etc.
    pub type_name: String,
    /// The element type of lists and maps.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub generic_types: Vec<JsonParamType>,
}

fn json_error(message: String, symbol: &str, error_type: &str) -> SchemaError {
    SchemaError {
        kind: SchemaErrorKind::Semantic(error_type.to_string()),
        message,
        span: None,
        symbol: Some(symbol.to_string()),
    }
}

/// Converts the JSON form; reports JSON-only problems (bad usersets, condition key mismatch).
pub(super) fn from_json(json: &JsonModel) -> Result<Model, Vec<SchemaError>> {
    let mut errors = Vec::new();
    let types = json.type_definitions.iter().map(|t| type_from_json(t, &mut errors)).collect();
    let conditions = json.conditions.0.iter().map(|(k, c)| condition_from_json(k, c, &mut errors)).collect();
    check_modules(json, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Model { schema_version: json.schema_version.clone(), types, conditions })
}

fn type_from_json(t: &JsonTypeDefinition, errors: &mut Vec<SchemaError>) -> TypeDef {
    let metadata = t.metadata.as_ref().map(|m| &m.relations);
    let relations = t
        .relations
        .0
        .iter()
        .map(|(name, userset)| {
            let refs = metadata.and_then(|m| m.get(name)).map(|r| r.directly_related_user_types.as_slice());
            for reference in refs.unwrap_or_default().iter().filter(|r| r.relation.is_some() && r.wildcard.is_some()) {
                let msg = format!(
                    "the type restriction `{}` of the '{name}' relation under the '{}' type sets both `relation` and \
                     `wildcard`; a type restriction is a userset or a wildcard, not both",
                    reference.type_name, t.type_name
                );
                errors.push(json_error(msg, name, ONEOF_ERROR));
            }
            RelationDef {
                name: name.clone(),
                rewrite: rewrite_from_json(userset, &t.type_name, name, errors),
                directly_related: refs.unwrap_or_default().iter().map(restriction_from_json).collect(),
                span: Span::default(),
            }
        })
        .collect();
    TypeDef { name: t.type_name.clone(), relations, span: Span::default() }
}

fn restriction_from_json(r: &JsonRelationReference) -> TypeRestriction {
    TypeRestriction {
        type_name: r.type_name.clone(),
        relation: r.relation.clone().filter(|s| !s.is_empty()),
        wildcard: r.wildcard.is_some(),
        condition: r.condition.clone().filter(|s| !s.is_empty()),
        expiration: r.expiration,
    }
}

/// The `errorType` of a JSON model that sets two members of one protobuf `oneof`, which
/// OpenFGA's protobuf decoding refuses before any validation (a `null` member is not set).
pub const ONEOF_ERROR: &str = "oneof-already-set";

/// The rewrite kinds `u` sets; OpenFGA's `Userset` is a `oneof`, so more than one is refused.
fn set_kinds(u: &JsonUserset) -> Vec<&'static str> {
    [
        ("this", u.this.is_some()),
        ("computedUserset", u.computed_userset.is_some()),
        ("tupleToUserset", u.tuple_to_userset.is_some()),
        ("writTupleToUsersetAll", u.tuple_to_userset_all.is_some()),
        ("union", u.union.is_some()),
        ("intersection", u.intersection.is_some()),
        ("difference", u.difference.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

fn rewrite_from_json(u: &JsonUserset, type_name: &str, relation: &str, errors: &mut Vec<SchemaError>) -> Rewrite {
    let kinds = set_kinds(u);
    if kinds.len() > 1 {
        let msg = format!(
            "the '{relation}' relation definition under the '{type_name}' type sets {} at once in one rewrite; \
             a rewrite is exactly one of them",
            kinds.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and ")
        );
        errors.push(json_error(msg, relation, ONEOF_ERROR));
    }
    let mut convert = |c: &JsonUserset| rewrite_from_json(c, type_name, relation, errors);
    if u.this.is_some() {
        Rewrite::This
    } else if let Some(c) = &u.computed_userset {
        Rewrite::Computed { relation: c.relation.clone(), span: Span::default() }
    } else if let Some(t) = &u.tuple_to_userset {
        Rewrite::TupleToUserset {
            tupleset: t.tupleset.relation.clone(),
            computed: t.computed_userset.relation.clone(),
            span: Span::default(),
        }
    } else if let Some(t) = &u.tuple_to_userset_all {
        Rewrite::TupleToUsersetAll {
            tupleset: t.tupleset.relation.clone(),
            computed: t.computed_userset.relation.clone(),
            span: Span::default(),
        }
    } else if let Some(s) = &u.union {
        Rewrite::Union(s.child.iter().map(&mut convert).collect())
    } else if let Some(s) = &u.intersection {
        Rewrite::Intersection(s.child.iter().map(&mut convert).collect())
    } else if let Some(d) = &u.difference {
        Rewrite::Exclusion { base: Box::new(convert(&d.base)), subtract: Box::new(convert(&d.subtract)) }
    } else {
        let msg = format!("the '{relation}' relation definition under the '{type_name}' type has an empty rewrite");
        errors.push(json_error(msg, relation, "invalid-relation-rewrite"));
        Rewrite::This
    }
}

fn condition_from_json(key: &str, c: &JsonCondition, errors: &mut Vec<SchemaError>) -> ConditionDef {
    if c.name != key {
        let msg = format!("condition key is `{key}` but nested name property is {}", c.name);
        errors.push(json_error(msg, &c.name, "different-nested-condition-name"));
    }
    let parameters = c
        .parameters
        .0
        .iter()
        .map(|(name, t)| ConditionParam {
            name: name.clone(),
            type_name: param_from_json(t).unwrap_or_else(|| {
                let msg = format!("unknown parameter type `{}` for parameter `{name}`", t.type_name);
                errors.push(json_error(msg, name, "invalid-condition-parameter"));
                ParamType::Any
            }),
        })
        .collect();
    ConditionDef { name: key.to_string(), parameters, expression: c.expression.clone(), span: Span::default() }
}

fn param_from_json(t: &JsonParamType) -> Option<ParamType> {
    let generic = || t.generic_types.first().and_then(param_from_json).map(Box::new);
    Some(match t.type_name.as_str() {
        "TYPE_NAME_BOOL" => ParamType::Bool,
        "TYPE_NAME_STRING" => ParamType::String,
        "TYPE_NAME_INT" => ParamType::Int,
        "TYPE_NAME_UINT" => ParamType::Uint,
        "TYPE_NAME_DOUBLE" => ParamType::Double,
        "TYPE_NAME_DURATION" => ParamType::Duration,
        "TYPE_NAME_TIMESTAMP" => ParamType::Timestamp,
        "TYPE_NAME_IPADDRESS" => ParamType::IpAddress,
        "TYPE_NAME_ANY" => ParamType::Any,
        "TYPE_NAME_LIST" => ParamType::List(generic()?),
        "TYPE_NAME_MAP" => ParamType::Map(generic()?),
        _ => return None,
    })
}

/// Modular JSON: every file may hold only one module.
fn check_modules(json: &JsonModel, errors: &mut Vec<SchemaError>) {
    let mut files: Vec<(String, Vec<String>)> = Vec::new();
    let mut note = |module: &Option<String>, info: &Option<JsonSourceInfo>| {
        let (Some(m), Some(i)) = (module, info) else {
            return;
        };
        match files.iter_mut().find(|(f, _)| *f == i.file) {
            Some((_, ms)) if !ms.contains(m) => ms.push(m.clone()),
            Some(_) => {}
            None => files.push((i.file.clone(), vec![m.clone()])),
        }
    };
    for t in &json.type_definitions {
        let Some(md) = &t.metadata else { continue };
        note(&md.module, &md.source_info);
        for (_, r) in &md.relations.0 {
            note(&r.module, &r.source_info);
        }
    }
    for (_, c) in &json.conditions.0 {
        if let Some(md) = &c.metadata {
            note(&md.module, &md.source_info);
        }
    }
    for (file, modules) in files.iter().filter(|(_, ms)| ms.len() > 1) {
        let msg = format!(
            "file {file} would contain multiple module definitions ({}) when transforming to DSL. Only one module can be defined per file.",
            modules.join(", ")
        );
        errors.push(json_error(msg, file, "multiple-modules-in-file"));
    }
}

/// The model as OpenFGA's JSON.
pub(super) fn to_json(model: &Model) -> JsonModel {
    JsonModel {
        id: None,
        schema_version: model.schema_version.clone(),
        type_definitions: model.types.iter().map(type_to_json).collect(),
        conditions: OrderedMap(model.conditions.iter().map(|c| (c.name.clone(), condition_to_json(c))).collect()),
    }
}

fn type_to_json(t: &TypeDef) -> JsonTypeDefinition {
    let relations = OrderedMap(t.relations.iter().map(|r| (r.name.clone(), rewrite_to_json(&r.rewrite))).collect());
    let metadata = (!t.relations.is_empty()).then(|| JsonTypeMetadata {
        relations: OrderedMap(t.relations.iter().map(|r| (r.name.clone(), relation_metadata(r))).collect()),
        module: None,
        source_info: None,
    });
    JsonTypeDefinition { type_name: t.name.clone(), relations, metadata }
}

fn relation_metadata(r: &RelationDef) -> JsonRelationMetadata {
    JsonRelationMetadata {
        directly_related_user_types: r.directly_related.iter().map(restriction_to_json).collect(),
        module: None,
        source_info: None,
    }
}

fn restriction_to_json(r: &TypeRestriction) -> JsonRelationReference {
    JsonRelationReference {
        type_name: r.type_name.clone(),
        relation: r.relation.clone(),
        wildcard: r.wildcard.then_some(JsonEmpty {}),
        condition: r.condition.clone(),
        expiration: r.expiration,
    }
}

fn relation_ref(relation: &str) -> JsonObjectRelation {
    JsonObjectRelation { object: String::new(), relation: relation.to_string() }
}

fn rewrite_to_json(rw: &Rewrite) -> JsonUserset {
    let mut u = JsonUserset::default();
    match rw {
        Rewrite::This => u.this = Some(JsonEmpty {}),
        Rewrite::Computed { relation, .. } => u.computed_userset = Some(relation_ref(relation)),
        Rewrite::TupleToUserset { tupleset, computed, .. } => {
            u.tuple_to_userset =
                Some(JsonTupleToUserset { tupleset: relation_ref(tupleset), computed_userset: relation_ref(computed) });
        }
        Rewrite::TupleToUsersetAll { tupleset, computed, .. } => {
            u.tuple_to_userset_all =
                Some(JsonTupleToUserset { tupleset: relation_ref(tupleset), computed_userset: relation_ref(computed) });
        }
        Rewrite::Union(c) => u.union = Some(JsonUsersets { child: c.iter().map(rewrite_to_json).collect() }),
        Rewrite::Intersection(c) => {
            u.intersection = Some(JsonUsersets { child: c.iter().map(rewrite_to_json).collect() });
        }
        Rewrite::Exclusion { base, subtract } => {
            u.difference = Some(JsonDifference {
                base: Box::new(rewrite_to_json(base)),
                subtract: Box::new(rewrite_to_json(subtract)),
            });
        }
    }
    u
}

fn condition_to_json(c: &ConditionDef) -> JsonCondition {
    JsonCondition {
        name: c.name.clone(),
        expression: c.expression.clone(),
        parameters: OrderedMap(c.parameters.iter().map(|p| (p.name.clone(), param_to_json(&p.type_name))).collect()),
        metadata: None,
    }
}

fn param_to_json(t: &ParamType) -> JsonParamType {
    let simple = |name: &str| JsonParamType { type_name: name.to_string(), generic_types: Vec::new() };
    match t {
        ParamType::Bool => simple("TYPE_NAME_BOOL"),
        ParamType::String => simple("TYPE_NAME_STRING"),
        ParamType::Int => simple("TYPE_NAME_INT"),
        ParamType::Uint => simple("TYPE_NAME_UINT"),
        ParamType::Double => simple("TYPE_NAME_DOUBLE"),
        ParamType::Duration => simple("TYPE_NAME_DURATION"),
        ParamType::Timestamp => simple("TYPE_NAME_TIMESTAMP"),
        ParamType::IpAddress => simple("TYPE_NAME_IPADDRESS"),
        ParamType::Any => simple("TYPE_NAME_ANY"),
        ParamType::List(inner) => {
            JsonParamType { type_name: "TYPE_NAME_LIST".to_string(), generic_types: vec![param_to_json(inner)] }
        }
        ParamType::Map(inner) => {
            JsonParamType { type_name: "TYPE_NAME_MAP".to_string(), generic_types: vec![param_to_json(inner)] }
        }
    }
}
