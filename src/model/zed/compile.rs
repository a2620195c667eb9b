//! `.zed` syntax tree → the checked [`Model`] the OpenFGA DSL also produces.
//!
//! Mapping: a `definition` is a type; a `relation` is a direct relation with its type list; a
//! `permission` is a relation whose rewrite is its expression (`+` or, `&` and, `-` but not,
//! `rel->perm` / `rel.any(perm)` = `perm from rel`, `rel.all(perm)` = every-parent arrow); `nil`
//! is folded away algebraically (an all-`nil` permission is a direct relation no subject may be
//! written to); a `caveat` is a condition with the parameter types mapped; `with expiration` is
//! kept on the type restriction. Names are kept verbatim (`org/user` stays `org/user`).
//! Invariant: every name an expression or type list mentions exists; errors name the construct
//! and carry line:column. SpiceDB's rules are checked here, not OpenFGA's (no entry-point rule).
//! Must not import anything outside `model`.

use super::parser::{ArrowKind, CaveatType, Definition, Expr, Member, Schema};
use crate::model::{
    ConditionDef, ConditionParam, Model, ParamType, RelationDef, Rewrite, SchemaError, SchemaErrorKind, Span, TypeDef,
    TypeRestriction,
};
use std::collections::{HashMap, HashSet};

fn semantic(message: String, span: Span, symbol: &str, error_type: &str) -> SchemaError {
    SchemaError {
        kind: SchemaErrorKind::Semantic(error_type.to_string()),
        message,
        span: Some(span),
        symbol: Some(symbol.to_string()),
    }
}

/// SpiceDB's error for a definition or caveat named like an earlier one (the two share one namespace).
fn reused_name(name: &str, span: Span) -> SchemaError {
    let message = format!("found name reused between multiple definitions and/or caveats: `{name}`");
    semantic(message, span, name, "duplicated-error")
}

/// Compiles a parsed schema; every error found is returned.
pub(super) fn compile(schema: &Schema) -> Result<Model, Vec<SchemaError>> {
    let mut errors = Vec::new();
    let mut definitions: HashMap<&str, &Definition> = HashMap::new();
    for definition in &schema.definitions {
        if definitions.insert(definition.name.as_str(), definition).is_some() {
            errors.push(reused_name(&definition.name, definition.span));
        }
    }
    let mut conditions = Vec::new();
    let mut caveat_names = HashSet::new();
    for caveat in &schema.caveats {
        if !caveat_names.insert(caveat.name.as_str()) || definitions.contains_key(caveat.name.as_str()) {
            errors.push(reused_name(&caveat.name, caveat.span));
        }
        let mut parameters = Vec::new();
        for (name, caveat_type, span) in &caveat.parameters {
            match param_type(caveat_type) {
                Ok(type_name) => parameters.push(ConditionParam { name: name.clone(), type_name }),
                Err(message) => errors.push(semantic(
                    format!("caveat `{}` parameter `{name}`: {message}", caveat.name),
                    *span,
                    name,
                    "invalid-caveat-type",
                )),
            }
        }
        conditions.push(ConditionDef {
            name: caveat.name.clone(),
            parameters,
            expression: caveat.expression.clone(),
            span: caveat.span,
        });
    }
    let mut types = Vec::new();
    for definition in &schema.definitions {
        types.push(compile_definition(definition, &definitions, &caveat_names, &mut errors));
    }
    if errors.is_empty() {
        Ok(Model { schema_version: "1.1".to_string(), types, conditions })
    } else {
        Err(errors)
    }
}

/// SpiceDB's caveat parameter types as OpenFGA condition parameter types.
fn param_type(caveat_type: &CaveatType) -> Result<ParamType, String> {
    let argument = |index: usize| -> Result<ParamType, String> {
        match (caveat_type.arguments.len(), caveat_type.arguments.get(index)) {
            (1, Some(inner)) => param_type(inner),
            _ => Err(format!("type `{}` takes exactly one type argument", caveat_type.name)),
        }
    };
    let scalar = |value: ParamType| -> Result<ParamType, String> {
        if caveat_type.arguments.is_empty() {
            Ok(value)
        } else {
            Err(format!("type `{}` takes no type arguments", caveat_type.name))
        }
    };
    match caveat_type.name.as_str() {
        "bool" => scalar(ParamType::Bool),
        "string" => scalar(ParamType::String),
        "int" => scalar(ParamType::Int),
        "uint" => scalar(ParamType::Uint),
        "double" => scalar(ParamType::Double),
        "duration" => scalar(ParamType::Duration),
        "timestamp" => scalar(ParamType::Timestamp),
        "ipaddress" => scalar(ParamType::IpAddress),
        "any" => scalar(ParamType::Any),
        "list" => Ok(ParamType::List(Box::new(argument(0)?))),
        "map" => Ok(ParamType::Map(Box::new(argument(0)?))),
        "bytes" => Err("type `bytes` has no OpenFGA condition equivalent and is not supported".to_string()),
        other => Err(format!("unknown type `{other}`")),
    }
}

fn compile_definition(
    definition: &Definition,
    definitions: &HashMap<&str, &Definition>,
    caveats: &HashSet<&str>,
    errors: &mut Vec<SchemaError>,
) -> TypeDef {
    let mut seen = HashSet::new();
    let mut relations = Vec::new();
    for member in &definition.members {
        if !seen.insert(member.name()) {
            errors.push(semantic(
                format!(
                    "found duplicate relation/permission name `{}` under definition `{}`",
                    member.name(),
                    definition.name
                ),
                member.span(),
                member.name(),
                "duplicated-error",
            ));
        }
        let relation = match member {
            Member::Relation { name, span, types } => {
                let mut directly_related = Vec::new();
                for reference in types {
                    match definitions.get(reference.type_name.as_str()) {
                        None => errors.push(semantic(
                            format!(
                                "could not lookup definition `{}` for relation `{name}` under definition `{}`",
                                reference.type_name, definition.name
                            ),
                            reference.span,
                            &reference.type_name,
                            "undefined-type",
                        )),
                        Some(target) => {
                            if let Some(relation) = &reference.relation {
                                if !target.members.iter().any(|m| m.name() == relation) {
                                    errors.push(semantic(
                                        format!(
                                            "relation/permission `{relation}` not found under definition `{}`",
                                            target.name
                                        ),
                                        reference.span,
                                        relation,
                                        "undefined-relation",
                                    ));
                                }
                            }
                        }
                    }
                    if let Some(caveat) = &reference.caveat {
                        if !caveats.contains(caveat.as_str()) {
                            errors.push(semantic(
                                format!("caveat `{caveat}` not found for relation `{name}`"),
                                reference.span,
                                caveat,
                                "undefined-caveat",
                            ));
                        }
                    }
                    directly_related.push(TypeRestriction {
                        type_name: reference.type_name.clone(),
                        relation: reference.relation.clone(),
                        wildcard: reference.wildcard,
                        condition: reference.caveat.clone(),
                        expiration: reference.expiration,
                    });
                }
                RelationDef { name: name.clone(), rewrite: Rewrite::This, directly_related, span: *span }
            }
            Member::Permission { name, span, expr } => {
                let rewrite = compile_expr(expr, definition, errors);
                match rewrite {
                    Some(rewrite) => {
                        RelationDef { name: name.clone(), rewrite, directly_related: Vec::new(), span: *span }
                    }
                    // `nil` throughout: nothing can hold it. A direct relation admitting no
                    // subject type is exactly that.
                    None => RelationDef {
                        name: name.clone(),
                        rewrite: Rewrite::This,
                        directly_related: Vec::new(),
                        span: *span,
                    },
                }
            }
        };
        relations.push(relation);
    }
    TypeDef { name: definition.name.clone(), relations, span: definition.span }
}

/// The rewrite of an expression; `None` is `nil` (the empty set).
fn compile_expr(expr: &Expr, definition: &Definition, errors: &mut Vec<SchemaError>) -> Option<Rewrite> {
    let recurse = |e: &Expr, errors: &mut Vec<SchemaError>| compile_expr(e, definition, errors);
    match expr {
        Expr::Nil => None,
        Expr::Name(name, span) => {
            if !definition.members.iter().any(|m| m.name() == name) {
                errors.push(semantic(
                    format!("relation/permission `{name}` not found under definition `{}`", definition.name),
                    *span,
                    name,
                    "undefined-relation",
                ));
            }
            Some(Rewrite::Computed { relation: name.clone(), span: *span })
        }
        Expr::Arrow { left, kind, computed, span } => {
            let Expr::Name(tupleset, tupleset_span) = left.as_ref() else {
                errors.push(semantic(
                    "nested arrows (an arrow whose left side is not a relation name) are not supported".to_string(),
                    *span,
                    computed,
                    "unsupported",
                ));
                return Some(Rewrite::This);
            };
            match definition.members.iter().find(|m| m.name() == tupleset) {
                None => errors.push(semantic(
                    format!("relation `{tupleset}` not found under definition `{}`", definition.name),
                    *tupleset_span,
                    tupleset,
                    "undefined-relation",
                )),
                Some(Member::Permission { .. }) => errors.push(semantic(
                    format!(
                        "under definition `{}`, the left side of an arrow must be a relation, but `{tupleset}` is a permission",
                        definition.name
                    ),
                    *tupleset_span,
                    tupleset,
                    "invalid-arrow",
                )),
                Some(Member::Relation { types, .. }) => {
                    if let Some(wildcard) = types.iter().find(|t| t.wildcard) {
                        errors.push(semantic(
                            format!(
                                "for arrow under definition `{}`: relation `{tupleset}` includes wildcard type `{}:*`; arrows over wildcards are not allowed",
                                definition.name, wildcard.type_name
                            ),
                            *tupleset_span,
                            tupleset,
                            "invalid-arrow",
                        ));
                    }
                }
            }
            Some(match kind {
                ArrowKind::Any => {
                    Rewrite::TupleToUserset { tupleset: tupleset.clone(), computed: computed.clone(), span: *span }
                }
                ArrowKind::All => {
                    Rewrite::TupleToUsersetAll { tupleset: tupleset.clone(), computed: computed.clone(), span: *span }
                }
            })
        }
        Expr::Union(left, right) => {
            let parts: Vec<Rewrite> =
                [recurse(left, errors), recurse(right, errors)].into_iter().flatten().flat_map(flatten_union).collect();
            match parts.len() {
                0 => None,
                1 => parts.into_iter().next(),
                _ => Some(Rewrite::Union(parts)),
            }
        }
        Expr::Intersection(left, right) => {
            let (left, right) = (recurse(left, errors), recurse(right, errors));
            let (left, right) = (left?, right?);
            let mut parts = flatten_intersection(left);
            parts.extend(flatten_intersection(right));
            Some(Rewrite::Intersection(parts))
        }
        Expr::Exclusion(base, subtract) => {
            let (base, subtract) = (recurse(base, errors), recurse(subtract, errors));
            match subtract {
                None => base,
                Some(subtract) => Some(Rewrite::Exclusion { base: Box::new(base?), subtract: Box::new(subtract) }),
            }
        }
    }
}

fn flatten_union(rewrite: Rewrite) -> Vec<Rewrite> {
    match rewrite {
        Rewrite::Union(children) => children,
        other => vec![other],
    }
}

fn flatten_intersection(rewrite: Rewrite) -> Vec<Rewrite> {
    match rewrite {
        Rewrite::Intersection(children) => children,
        other => vec![other],
    }
}
