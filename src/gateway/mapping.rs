//! Mapping: which checks a JSON-RPC message to an MCP server needs, from the server's `tools`,
//! `resources` and `prompts` maps of the gateway config (DESIGN §8).
//!
//! An entry is `{relation, object, approval?}`; a name maps to one entry or a list, all required,
//! and `"*"` is the default for names not listed. Objects are templates: `{tool}` (`{prompt}`,
//! `{uri}`) is the name called, `{arguments.PATH}` a call argument (PATH dotted into nested
//! objects; an array gives one check per element). `initialize`, `ping` and notifications pass;
//! `tools/list` (and `resources/list`, `prompts/list`) is filtered with a [`ListPlan`] of the
//! argument-free entries, one batch for the whole list.
//!
//! Invariant: fail closed. An unknown method, a name with no entry and no `"*"`, or an argument
//! that is missing, not a scalar, or not a valid object id never yields an empty list of checks:
//! it is a [`Denial`] or a [`MappingError`]. Every object handed out passes the gateway's id rule.
//! Pure: no I/O; uses only `tuple` and the gateway's id rule.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::id::{id_problem, MAX_ID_BYTES};
use crate::tuple::{valid_relation, ObjectRef};

/// The most checks one call may expand to (array arguments multiply); past it the call is refused.
pub const MAX_CHECKS_PER_CALL: usize = 256;

/// The three kinds of named things an MCP server offers, each with its own map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Primitive {
    /// `tools/list`, `tools/call`; placeholder `{tool}`.
    Tool,
    /// `resources/list`, `resources/read`; placeholder `{uri}`, no arguments.
    Resource,
    /// `prompts/list`, `prompts/get`; placeholder `{prompt}`.
    Prompt,
}

impl Primitive {
    /// The placeholder that stands for the name (or URI) being called.
    fn name_placeholder(self) -> &'static str {
        match self {
            Primitive::Tool => "tool",
            Primitive::Resource => "uri",
            Primitive::Prompt => "prompt",
        }
    }

    /// The config key of this primitive's map.
    pub fn config_key(self) -> &'static str {
        match self {
            Primitive::Tool => "tools",
            Primitive::Resource => "resources",
            Primitive::Prompt => "prompts",
        }
    }
}

/// One piece of an object id template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// `{tool}`, `{uri}` or `{prompt}`: the name being called.
    Name,
    /// `{arguments.a.b}`: the path below `arguments`.
    Argument(Vec<String>),
}

/// An object template such as `repo:{arguments.repo}`: a literal type, then an id built from parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectTemplate {
    object_type: String,
    parts: Vec<Part>,
}

impl ObjectTemplate {
    /// Reads `type:id-template` for a map of `primitive`.
    pub fn parse(text: &str, primitive: Primitive) -> Result<ObjectTemplate, String> {
        let Some((object_type, id)) = text.split_once(':') else {
            return Err(format!("`{text}` is not of the form `type:id`"));
        };
        if object_type.is_empty()
            || object_type.chars().any(|c| "#@*{}:".contains(c) || c.is_whitespace() || c.is_control())
        {
            return Err(format!("`{object_type}` is not a valid type (placeholders go in the id)"));
        }
        let mut parts = Vec::new();
        let mut rest = id;
        while !rest.is_empty() {
            match rest.find(['{', '}']) {
                Some(at) if rest[at..].starts_with('}') => return Err(format!("`{text}` has a `}}` without `{{`")),
                Some(at) => {
                    if at > 0 {
                        parts.push(Part::Literal(literal(&rest[..at], text)?));
                    }
                    let Some(close) = rest[at..].find('}') else {
                        return Err(format!("`{text}` has a `{{` without `}}`"));
                    };
                    parts.push(placeholder(&rest[at + 1..at + close], primitive)?);
                    rest = &rest[at + close + 1..];
                }
                None => {
                    parts.push(Part::Literal(literal(rest, text)?));
                    rest = "";
                }
            }
        }
        if parts.is_empty() {
            return Err(format!("`{text}` has an empty id"));
        }
        if let [Part::Literal(id)] = parts.as_slice() {
            if let Some(problem) = id_problem(id) {
                return Err(format!("id `{id}` {problem}"));
            }
        }
        Ok(ObjectTemplate { object_type: object_type.to_string(), parts })
    }

    /// True when the template reads a call argument, so `*/list` cannot resolve it.
    pub fn uses_arguments(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Argument(_)))
    }
}

fn literal(text: &str, template: &str) -> Result<String, String> {
    if text.chars().any(|c| "#:@".contains(c) || c.is_whitespace() || c.is_control()) {
        return Err(format!("`{template}` has `#`, `:`, `@` or whitespace in its id"));
    }
    Ok(text.to_string())
}

fn placeholder(inner: &str, primitive: Primitive) -> Result<Part, String> {
    if inner == primitive.name_placeholder() {
        return Ok(Part::Name);
    }
    if let Some(path) = inner.strip_prefix("arguments.") {
        if primitive == Primitive::Resource {
            return Err(format!("`{{{inner}}}`: resources have no arguments; use `{{uri}}`"));
        }
        let segments: Vec<String> = path.split('.').map(str::to_string).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!("`{{{inner}}}` has an empty path segment"));
        }
        return Ok(Part::Argument(segments));
    }
    let name = primitive.name_placeholder();
    Err(match primitive {
        Primitive::Resource => format!("unknown placeholder `{{{inner}}}`; use `{{{name}}}`"),
        _ => format!("unknown placeholder `{{{inner}}}`; use `{{{name}}}` or `{{arguments.NAME}}`"),
    })
}

/// One mapping entry: the relation the chain must hold on the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The relation checked, e.g. `can_call`.
    pub relation: String,
    /// The object, a template.
    pub object: ObjectTemplate,
    /// `approval: required`: a deny of this entry alone asks a human (DESIGN §12).
    pub approval_required: bool,
}

/// One check a message needs: every principal of the chain must hold `relation` on `object`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Check {
    /// The relation, e.g. `writer`.
    pub relation: String,
    /// The object, e.g. `repo:acme`.
    pub object: ObjectRef,
    /// From an entry marked `approval: required`.
    pub approval_required: bool,
}

/// The entries of one primitive's map: per name, and the `"*"` default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryMap {
    named: BTreeMap<String, Vec<Entry>>,
    default: Option<Vec<Entry>>,
}

impl EntryMap {
    /// Reads a `tools`/`resources`/`prompts` map; errors carry the key path below `path`.
    pub fn from_value(value: &Value, primitive: Primitive, path: &str) -> Result<EntryMap, (String, String)> {
        let Value::Object(map) = value else {
            return Err((path.to_string(), "must be a map of name to entry".into()));
        };
        let mut entries = EntryMap::default();
        for (name, value) in map {
            let key_path = format!("{path}.{name}");
            let list = match value {
                Value::Array(items) if items.is_empty() => {
                    return Err((key_path, "needs at least one entry (an empty list would allow everything)".into()))
                }
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| read_entry(item, primitive, &format!("{key_path}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?,
                single => vec![read_entry(single, primitive, &key_path)?],
            };
            if name == "*" {
                entries.default = Some(list);
            } else {
                entries.named.insert(name.clone(), list);
            }
        }
        Ok(entries)
    }

    /// The entries for `name`: its own, else the default, else none (the name is unmapped).
    pub fn entries_for(&self, name: &str) -> Option<&[Entry]> {
        self.named.get(name).or(self.default.as_ref()).map(Vec::as_slice)
    }
}

fn read_entry(value: &Value, primitive: Primitive, path: &str) -> Result<Entry, (String, String)> {
    let Value::Object(map) = value else {
        return Err((path.to_string(), "must be `{relation, object, approval?}`".into()));
    };
    if let Some(key) = map.keys().find(|k| !["relation", "object", "approval"].contains(&k.as_str())) {
        return Err((format!("{path}.{key}"), "is not a known key (relation, object, approval)".into()));
    }
    let text = |key: &str| match map.get(key) {
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err((format!("{path}.{key}"), "must be a string".to_string())),
        None => Err((format!("{path}.{key}"), "is required".to_string())),
    };
    let relation = text("relation")?;
    if !valid_relation(relation) {
        return Err((format!("{path}.relation"), format!("`{relation}` is not a valid relation name")));
    }
    let object = ObjectTemplate::parse(text("object")?, primitive).map_err(|e| (format!("{path}.object"), e))?;
    let approval_required = match map.get("approval") {
        None => false,
        Some(Value::String(s)) if s == "required" => true,
        Some(_) => return Err((format!("{path}.approval"), "must be `required` when present".into())),
    };
    Ok(Entry { relation: relation.to_string(), object, approval_required })
}

/// Why a message is refused without asking the engine (JSON-RPC `-32001`, denied by the mapping).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// A method the gateway does not know how to authorize.
    #[error("method `{0}` is not allowed through the gateway")]
    UnknownMethod(String),
    /// A tool, resource or prompt with no entry and no `"*"`.
    #[error("{} `{name}` has no mapping", .primitive.config_key().trim_end_matches('s'))]
    Unmapped {
        /// Which map was searched.
        primitive: Primitive,
        /// The name or URI called.
        name: String,
    },
}

/// Why the mapping cannot build a message's checks (JSON-RPC `-32602`): the call is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// `params` lack what the method needs (`name`, `uri`, an `arguments` object).
    #[error("invalid params: {0}")]
    Params(String),
    /// A mapped argument is absent (or `null`).
    #[error("argument `{path}` is missing")]
    MissingArgument {
        /// `arguments.a.b`.
        path: String,
    },
    /// A mapped argument is an object, a nested array, or an empty array.
    #[error("argument `{path}` must be a string, number or boolean, or a non-empty array of them")]
    NotScalar {
        /// `arguments.a.b`.
        path: String,
    },
    /// A mapped argument (or the called name) cannot be part of an object id.
    #[error("`{path}` cannot be part of an object id: it {reason}")]
    InvalidId {
        /// `arguments.a.b`, or `tool`, `uri`, `prompt`.
        path: String,
        /// What is wrong with the value.
        reason: &'static str,
    },
    /// Array arguments multiply past [`MAX_CHECKS_PER_CALL`].
    #[error("the call expands to more than {MAX_CHECKS_PER_CALL} checks")]
    TooManyChecks,
}

/// What a message needs before it may reach the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Nothing: `initialize`, `ping`, notifications.
    Pass,
    /// A `*/list` request: forward it, then filter the answer with [`ServerMapping::plan_list`].
    FilterList(Primitive),
    /// Every check must allow (`tools/call`, `resources/read`, `prompts/get`).
    Checks {
        /// Which map named the call.
        primitive: Primitive,
        /// The tool or prompt name, or the resource URI.
        name: String,
        /// The checks, in entry order (an array argument's elements in array order).
        checks: Vec<Check>,
    },
    /// Refused by the mapping itself.
    Denied(Denial),
}

/// A `*/list` answer's filter: the distinct argument-free checks, to run as one batch, and which of
/// them each listed item needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPlan {
    /// Distinct checks; the batch answers them in this order.
    pub checks: Vec<Check>,
    /// One per listed name, in input order.
    pub items: Vec<ListItem>,
}

/// One listed name and what it needs to stay visible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListItem {
    /// The tool or prompt name, or the resource URI.
    pub name: String,
    /// Hidden outright, or visible when every check at these indices of [`ListPlan::checks`] allows.
    pub visibility: Visibility,
}

/// Whether a listed item can be shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Unmapped, or its name cannot be an object id: never shown.
    Hidden,
    /// Shown when all these checks allow; empty when all its entries wait for call-time arguments.
    Requires(Vec<usize>),
}

impl ListPlan {
    /// The names to show, given the batch's answers (`allowed[i]` answers `checks[i]`). A check
    /// without an answer counts as denied.
    pub fn visible(&self, allowed: &[bool]) -> Vec<&str> {
        let allows = |i: &usize| allowed.get(*i).copied().unwrap_or(false);
        self.items
            .iter()
            .filter(|item| matches!(&item.visibility, Visibility::Requires(needed) if needed.iter().all(allows)))
            .map(|item| item.name.as_str())
            .collect()
    }
}

/// A server's three maps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerMapping {
    /// `tools`.
    pub tools: EntryMap,
    /// `resources`, keyed by URI.
    pub resources: EntryMap,
    /// `prompts`.
    pub prompts: EntryMap,
}

impl ServerMapping {
    fn map(&self, primitive: Primitive) -> &EntryMap {
        match primitive {
            Primitive::Tool => &self.tools,
            Primitive::Resource => &self.resources,
            Primitive::Prompt => &self.prompts,
        }
    }

    /// What the JSON-RPC request `method` with `params` needs.
    pub fn requirement(&self, method: &str, params: Option<&Value>) -> Result<Requirement, MappingError> {
        let (primitive, name_key) = match method {
            "initialize" | "ping" => return Ok(Requirement::Pass),
            _ if method.starts_with("notifications/") => return Ok(Requirement::Pass),
            "tools/list" => return Ok(Requirement::FilterList(Primitive::Tool)),
            "resources/list" => return Ok(Requirement::FilterList(Primitive::Resource)),
            "prompts/list" => return Ok(Requirement::FilterList(Primitive::Prompt)),
            "tools/call" => (Primitive::Tool, "name"),
            // Subscribing reveals the resource's updates, so it needs what reading needs.
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => (Primitive::Resource, "uri"),
            "prompts/get" => (Primitive::Prompt, "name"),
            _ => return Ok(Requirement::Denied(Denial::UnknownMethod(method.chars().take(128).collect()))),
        };
        let params = match params {
            Some(Value::Object(params)) => params,
            _ => return Err(MappingError::Params(format!("`{method}` needs a params object"))),
        };
        let Some(Value::String(name)) = params.get(name_key) else {
            return Err(MappingError::Params(format!("`{method}` needs params.{name_key} as a string")));
        };
        let empty = Map::new();
        let arguments = match params.get("arguments") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(arguments)) => arguments,
            Some(_) => return Err(MappingError::Params("params.arguments must be an object".into())),
        };
        let Some(entries) = self.map(primitive).entries_for(name) else {
            let name = name.chars().take(256).collect();
            return Ok(Requirement::Denied(Denial::Unmapped { primitive, name }));
        };
        let mut checks = Vec::new();
        for entry in entries {
            resolve(entry, primitive, name, arguments, &mut checks)?;
        }
        Ok(Requirement::Checks { primitive, name: name.clone(), checks })
    }

    /// The filter for a `*/list` answer holding `names`: each item needs its argument-free entries;
    /// entries that read arguments wait for the call.
    pub fn plan_list(&self, primitive: Primitive, names: &[&str]) -> ListPlan {
        let mut checks: Vec<Check> = Vec::new();
        let mut index_of: HashMap<Check, usize> = HashMap::new();
        let no_arguments = Map::new();
        let items = names
            .iter()
            .map(|&name| {
                let visibility = match self.map(primitive).entries_for(name) {
                    None => Visibility::Hidden,
                    Some(entries) => {
                        let mut item_checks = Vec::new();
                        let resolved = entries
                            .iter()
                            .filter(|entry| !entry.object.uses_arguments())
                            .try_for_each(|entry| resolve(entry, primitive, name, &no_arguments, &mut item_checks));
                        match resolved {
                            Err(_) => Visibility::Hidden,
                            Ok(()) => Visibility::Requires(
                                item_checks
                                    .into_iter()
                                    .map(|check| {
                                        *index_of.entry(check.clone()).or_insert_with(|| {
                                            checks.push(check);
                                            checks.len() - 1
                                        })
                                    })
                                    .collect(),
                            ),
                        }
                    }
                };
                ListItem { name: name.to_string(), visibility }
            })
            .collect();
        ListPlan { checks, items }
    }
}

/// The values one template part takes: several for an array argument.
fn part_values(
    part: &Part,
    primitive: Primitive,
    name: &str,
    arguments: &Map<String, Value>,
) -> Result<Vec<String>, MappingError> {
    let checked = |value: String, path: &str| match id_problem(&value) {
        None => Ok(value),
        Some(reason) => Err(MappingError::InvalidId { path: path.to_string(), reason }),
    };
    match part {
        Part::Literal(text) => Ok(vec![text.clone()]),
        Part::Name => Ok(vec![checked(name.to_string(), primitive.name_placeholder())?]),
        Part::Argument(segments) => {
            let path = format!("arguments.{}", segments.join("."));
            let mut value = None;
            let mut object = Some(arguments);
            for segment in segments {
                value = object.and_then(|o| o.get(segment));
                object = value.and_then(Value::as_object);
            }
            match value {
                None | Some(Value::Null) => Err(MappingError::MissingArgument { path }),
                Some(Value::Array(items)) if items.is_empty() => Err(MappingError::NotScalar { path }),
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let element = format!("{path}[{i}]");
                        let text = scalar(item).ok_or_else(|| MappingError::NotScalar { path: element.clone() })?;
                        checked(text, &element)
                    })
                    .collect(),
                Some(single) => {
                    let text = scalar(single).ok_or_else(|| MappingError::NotScalar { path: path.clone() })?;
                    Ok(vec![checked(text, &path)?])
                }
            }
        }
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Appends the checks of one entry: the product of its parts' values.
fn resolve(
    entry: &Entry,
    primitive: Primitive,
    name: &str,
    arguments: &Map<String, Value>,
    out: &mut Vec<Check>,
) -> Result<(), MappingError> {
    let mut ids = vec![String::new()];
    for part in &entry.object.parts {
        let values = part_values(part, primitive, name, arguments)?;
        if ids.len().saturating_mul(values.len()).saturating_add(out.len()) > MAX_CHECKS_PER_CALL {
            return Err(MappingError::TooManyChecks);
        }
        ids = ids.iter().flat_map(|prefix| values.iter().map(move |value| format!("{prefix}{value}"))).collect();
    }
    for id in ids {
        // Each piece passed the id rule; the joined id may still be too long, or join into `..`.
        if let Some(reason) = id_problem(&id) {
            let path = if id.len() > MAX_ID_BYTES { "object" } else { "object id" };
            return Err(MappingError::InvalidId { path: path.to_string(), reason });
        }
        out.push(Check {
            relation: entry.relation.clone(),
            object: ObjectRef::new(entry.object.object_type.clone(), id),
            approval_required: entry.approval_required,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
