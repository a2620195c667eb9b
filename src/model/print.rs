//! [`Model`] → OpenFGA DSL text in OpenFGA's canonical layout.
//!
//! What it owns: the printed form (two-space indents, a blank line between blocks, conditions
//! and their parameters sorted by name, compound operands parenthesized).
//! Invariant: the output parses back (with `dsl`) to the same rewrites, except that a direct
//! assignment is moved first in a union or intersection; a `This` the DSL cannot express is an error.
//! Must not import anything outside `model`.

use super::{ConditionDef, Model, RelationDef, Rewrite, SchemaError, SchemaErrorKind, TypeDef, TypeRestriction};

/// Prints the model, or says which relation the DSL cannot express.
pub(super) fn try_to_dsl(model: &Model) -> Result<String, SchemaError> {
    let mut out = format!("model\n  schema {}\n", model.schema_version);
    for t in &model.types {
        out.push('\n');
        out.push_str(&type_block(t)?);
    }
    let mut conditions: Vec<&ConditionDef> = model.conditions.iter().collect();
    conditions.sort_by(|a, b| a.name.cmp(&b.name));
    for c in conditions {
        out.push('\n');
        out.push_str(&condition_block(c));
    }
    Ok(out)
}

/// Prints the model; a relation the DSL cannot express is printed as best it can be.
pub(super) fn to_dsl(model: &Model) -> String {
    try_to_dsl(model).unwrap_or_else(|e| format!("# {e}\n"))
}

pub(super) fn type_block(t: &TypeDef) -> Result<String, SchemaError> {
    let mut out = format!("type {}\n", t.name);
    if t.relations.is_empty() {
        return Ok(out);
    }
    out.push_str("  relations\n");
    for r in &t.relations {
        let body = expression(&r.rewrite, r, true, true).map_err(|()| unsupported(&t.name, &r.name))?;
        out.push_str(&format!("    define {}: {body}\n", r.name));
    }
    Ok(out)
}

fn unsupported(type_name: &str, relation: &str) -> SchemaError {
    SchemaError {
        kind: SchemaErrorKind::Syntax,
        message: format!(
            "the '{relation}' relation definition under the '{type_name}' type is not supported by the OpenFGA DSL syntax yet"
        ),
        span: None,
        symbol: Some(relation.to_string()),
    }
}

/// One rewrite; `allow_this` says whether `[...]` may appear here, `top` whether parentheses are needed.
fn expression(rw: &Rewrite, rel: &RelationDef, allow_this: bool, top: bool) -> Result<String, ()> {
    let text = match rw {
        Rewrite::This if allow_this => return Ok(direct(&rel.directly_related)),
        Rewrite::This => return Err(()),
        Rewrite::Computed { relation, .. } => return Ok(relation.clone()),
        Rewrite::TupleToUserset { tupleset, computed, .. } => return Ok(format!("{computed} from {tupleset}")),
        Rewrite::TupleToUsersetAll { .. } => return Err(()),
        Rewrite::Union(children) => operands(children, rel, allow_this, " or ")?,
        Rewrite::Intersection(children) => operands(children, rel, allow_this, " and ")?,
        Rewrite::Exclusion { base, subtract } => format!(
            "{} but not {}",
            expression(base, rel, allow_this, false)?,
            expression(subtract, rel, false, false)?
        ),
    };
    Ok(if top { text } else { format!("({text})") })
}

/// Union/intersection operands with a direct assignment moved first.
fn operands(children: &[Rewrite], rel: &RelationDef, allow_this: bool, sep: &str) -> Result<String, ()> {
    let mut ordered: Vec<&Rewrite> = children.iter().filter(|c| matches!(c, Rewrite::This)).collect();
    ordered.extend(children.iter().filter(|c| !matches!(c, Rewrite::This)));
    let parts: Result<Vec<String>, ()> =
        ordered.iter().enumerate().map(|(i, c)| expression(c, rel, allow_this && i == 0, false)).collect();
    Ok(parts?.join(sep))
}

fn direct(restrictions: &[TypeRestriction]) -> String {
    let parts: Vec<String> = restrictions.iter().map(ToString::to_string).collect();
    format!("[{}]", parts.join(", "))
}

pub(super) fn condition_block(c: &ConditionDef) -> String {
    let mut sorted: Vec<_> = c.parameters.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let params: Vec<String> = sorted.iter().map(|p| format!("{}: {}", p.name, p.type_name)).collect();
    format!("condition {}({}) {{\n  {}\n}}\n", c.name, params.join(", "), c.expression)
}
