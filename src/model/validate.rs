//! Semantic validation of a [`Model`] with OpenFGA's rules, messages and error types.
//!
//! What it owns: the phases OpenFGA runs, in its order — names and reserved words, schema
//! version, references (types, relations, conditions, tuplesets), duplicates, entry points and
//! loops, unused conditions — each later phase running only when the earlier ones found nothing.
//! Invariant: every error found in a phase is reported; spans come from the DSL source when
//! there is one (`None` for JSON input).
//! Must not import anything outside `model`.

use super::dsl::SourceMap;
use super::{Model, RelationDef, Rewrite, SchemaError, SchemaErrorKind, Span, TypeDef};
use std::collections::{HashSet, VecDeque};

const TYPE_RULE: &str = r"^[^:#@\*\s]{1,254}$";
const RELATION_RULE: &str = r"^[^:#@\*\s]{1,50}$";

type Visited = HashSet<(String, String)>;

/// Which part of the model an error is about (modular models map it to a file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// The model as a whole (schema version).
    Model,
    /// Type `i`.
    Type(usize),
    /// Relation `j` of type `i`.
    Relation(usize, usize),
    /// Condition `k`.
    Condition(usize),
}

struct Validator<'a> {
    model: &'a Model,
    source: Option<&'a SourceMap>,
    errors: Vec<SchemaError>,
    /// What OpenFGA's language validators flag but its server accepts and answers checks on
    /// (a rewrite naming the same operand twice): reported by `writ validate`, never refused.
    warnings: Vec<SchemaError>,
    at: Origin,
    origins: Vec<Origin>,
}

/// Validates `model`; `source` gives the DSL spans when the model came from text.
pub(super) fn validate(model: &Model, source: Option<&SourceMap>) -> Result<(), Vec<SchemaError>> {
    validate_located(model, source).map_err(|errors| errors.into_iter().map(|(e, _)| e).collect())
}

/// As [`validate`], with the part of the model each error is about.
pub(super) fn validate_located(model: &Model, source: Option<&SourceMap>) -> Result<(), Vec<(SchemaError, Origin)>> {
    validate_with_warnings(model, source).map(|_| ())
}

/// As [`validate_located`], returning the warnings (see [`Validator::warnings`]) of a valid model.
pub(super) fn validate_with_warnings(
    model: &Model,
    source: Option<&SourceMap>,
) -> Result<Vec<SchemaError>, Vec<(SchemaError, Origin)>> {
    let mut v =
        Validator { model, source, errors: Vec::new(), warnings: Vec::new(), at: Origin::Model, origins: Vec::new() };
    v.run();
    if v.errors.is_empty() {
        Ok(v.warnings)
    } else {
        Err(v.errors.into_iter().zip(v.origins).collect())
    }
}

fn valid_name(name: &str, max: usize) -> bool {
    let n = name.chars().count();
    (1..=max).contains(&n) && !name.chars().any(|c| matches!(c, ':' | '#' | '@' | '*') || c.is_whitespace())
}

/// The name a partial definition is known by in duplicate checks (`viewer`, `viewer from parent`).
fn partial_name(rw: &Rewrite) -> Option<(String, Span)> {
    match rw {
        Rewrite::Computed { relation, span } => Some((relation.clone(), *span)),
        Rewrite::TupleToUserset { tupleset, computed, span } => Some((format!("{computed} from {tupleset}"), *span)),
        _ => None,
    }
}

/// The span of the tupleset name at the end of a `computed from tupleset` span.
fn tupleset_span(span: Span, tupleset: &str) -> Span {
    let len = tupleset.chars().count() as u32;
    Span { line_start: span.line_end, column_start: span.column_end.saturating_sub(len), ..span }
}

impl<'a> Validator<'a> {
    fn run(&mut self) {
        self.names();
        if !self.schema_version() || !self.errors.is_empty() {
            return;
        }
        self.references();
        if self.errors.is_empty() {
            self.duplicates();
        }
        if self.errors.is_empty() {
            self.entry_points();
        }
        self.unused_conditions();
    }

    fn push(&mut self, message: String, span: Span, symbol: &str, error_type: &str) {
        self.errors.push(SchemaError {
            kind: SchemaErrorKind::Semantic(error_type.to_string()),
            message,
            span: self.source.map(|_| span),
            symbol: Some(symbol.to_string()),
        });
        self.origins.push(self.at);
    }

    fn names(&mut self) {
        for (i, t) in self.model.types.iter().enumerate() {
            self.at = Origin::Type(i);
            if t.name == "self" || t.name == "this" {
                self.push("a type cannot be named 'self' or 'this'.".into(), t.span, &t.name, "reserved-type-keywords");
            }
            if !valid_name(&t.name, 254) {
                let msg = format!("type '{}' does not match naming rule: '{TYPE_RULE}'.", t.name);
                self.push(msg, t.span, &t.name, "invalid-name");
            }
            self.relation_names(i, t);
        }
    }

    fn relation_names(&mut self, i: usize, t: &TypeDef) {
        let mut seen: HashSet<&str> = HashSet::new();
        for (j, r) in t.relations.iter().enumerate() {
            self.at = Origin::Relation(i, j);
            if r.name == "self" || r.name == "this" {
                let msg = "a relation cannot be named 'self' or 'this'.".to_string();
                self.push(msg, r.span, &r.name, "reserved-relation-keywords");
            } else if !valid_name(&r.name, 50) {
                let msg = format!(
                    "relation '{}' of type '{}' does not match naming rule: '{RELATION_RULE}'.",
                    r.name, t.name
                );
                self.push(msg, r.span, &r.name, "invalid-name");
            } else if !seen.insert(&r.name) {
                let msg = format!("'{}' is already defined in '{}'", r.name, t.name);
                self.push(msg, r.span, &r.name, "duplicated-error");
            }
        }
    }

    /// False when validation cannot go on (no or unsupported schema version).
    fn schema_version(&mut self) -> bool {
        self.at = Origin::Model;
        let version = self.model.schema_version.as_str();
        if version.is_empty() {
            self.push("schema version required".into(), Span::default(), "", "schema-version-required");
            return false;
        }
        if version != "1.1" && version != "1.2" {
            let span = self.source.and_then(|s| s.schema).unwrap_or_default();
            self.push(format!("invalid schema {version}"), span, version, "invalid-schema");
            return false;
        }
        true
    }

    // ---- references -------------------------------------------------------------------------

    fn references(&mut self) {
        for (i, t) in self.model.types.iter().enumerate() {
            for (j, r) in t.relations.iter().enumerate() {
                self.at = Origin::Relation(i, j);
                self.relation_references(i, t, j, r);
            }
        }
    }

    /// Visits the leaves of a rewrite breadth-first, as OpenFGA does.
    fn relation_references(&mut self, i: usize, t: &TypeDef, j: usize, r: &RelationDef) {
        let mut queue: VecDeque<&Rewrite> = VecDeque::from([&r.rewrite]);
        while let Some(rw) = queue.pop_front() {
            match rw {
                Rewrite::Union(c) | Rewrite::Intersection(c) => queue.extend(c.iter()),
                Rewrite::Exclusion { base, subtract } => queue.extend([&**base, &**subtract]),
                Rewrite::This => self.direct_references(i, j, r),
                Rewrite::Computed { relation, span } => self.computed_reference(t, relation, *span),
                Rewrite::TupleToUserset { tupleset, computed, span }
                | Rewrite::TupleToUsersetAll { tupleset, computed, span } => {
                    self.tupleset_reference(t, tupleset, computed, *span);
                }
            }
        }
    }

    fn direct_references(&mut self, i: usize, j: usize, r: &RelationDef) {
        for (k, restr) in r.directly_related.iter().enumerate() {
            let spans = self.source.and_then(|s| s.restriction(i, j, k)).copied().unwrap_or_default();
            let target = self.model.type_def(&restr.type_name);
            if target.is_none() {
                let msg = format!("`{}` is not a valid type.", restr.type_name);
                self.push(msg, spans.type_name, &restr.type_name, "invalid-type");
            }
            if let Some(c) = restr.condition.as_ref().filter(|c| self.model.condition(c).is_none()) {
                let msg = format!("`{c}` is not a defined condition in the model.");
                self.push(msg, spans.condition.unwrap_or_default(), c, "condition-not-defined");
            }
            if let Some(rel) = &restr.relation {
                if target.and_then(|t| t.relation(rel)).is_none() {
                    let msg = format!("`{rel}` is not a valid relation for `{}`.", restr.type_name);
                    self.push(msg, spans.whole, &restr.to_string(), "invalid-relation-type");
                }
            }
        }
    }

    fn computed_reference(&mut self, t: &TypeDef, relation: &str, span: Span) {
        if t.relation(relation).is_none() {
            self.push(format!("the relation `{relation}` does not exist."), span, relation, "missing-definition");
        }
    }

    fn tupleset_reference(&mut self, t: &TypeDef, tupleset: &str, computed: &str, span: Span) {
        let symbol = format!("{computed} from {tupleset}");
        let Some(ts) = t.relation(tupleset) else {
            let msg = format!("`{tupleset}` is not a valid relation for `{}`.", t.name);
            self.push(msg, span, &symbol, "invalid-relation-type");
            return;
        };
        let direct_only = matches!(ts.rewrite, Rewrite::This)
            && ts.directly_related.iter().all(|r| r.relation.is_none() && !r.wildcard);
        if !direct_only {
            let msg = format!("`{tupleset}` relation used inside from allows only direct relation.");
            self.push(msg, tupleset_span(span, tupleset), tupleset, "tupleuserset-not-direct");
            return;
        }
        let missing: Vec<&str> = ts
            .directly_related
            .iter()
            .filter(|r| self.model.relation(&r.type_name, computed).is_none())
            .map(|r| r.type_name.as_str())
            .collect();
        if missing.len() == ts.directly_related.len() {
            for type_name in missing {
                let msg = format!(
                    "the `{computed}` relation definition on type `{}` is not valid: `{computed}` does not exist on `{tupleset}`, which is of type `{type_name}`.",
                    t.name
                );
                self.push(msg, span, &symbol, "invalid-relation-on-tupleset");
            }
        }
    }

    // ---- duplicates -------------------------------------------------------------------------

    fn duplicates(&mut self) {
        let mut seen: HashSet<&str> = HashSet::new();
        for (i, t) in self.model.types.iter().enumerate() {
            self.at = Origin::Type(i);
            if !seen.insert(&t.name) {
                let first = self.model.type_def(&t.name).map_or(t.span, |f| f.span);
                self.push(format!("the type `{}` is a duplicate.", t.name), first, &t.name, "duplicated-error");
            }
            for (j, r) in t.relations.iter().enumerate() {
                self.at = Origin::Relation(i, j);
                self.duplicate_restrictions(i, j, r);
                self.duplicate_partials(r);
            }
        }
    }

    fn duplicate_restrictions(&mut self, i: usize, j: usize, r: &RelationDef) {
        let texts: Vec<String> = r.directly_related.iter().map(ToString::to_string).collect();
        for (k, text) in texts.iter().enumerate() {
            let Some(first) = texts.iter().position(|x| x == text).filter(|&f| f < k) else {
                continue;
            };
            let span = self.source.and_then(|s| s.restriction(i, j, first)).map(|s| s.whole).unwrap_or_default();
            let msg = format!("the type restriction `{text}` is a duplicate in the relation `{}`.", r.name);
            self.push(msg, span, text, "duplicated-error");
        }
    }

    fn duplicate_partials(&mut self, r: &RelationDef) {
        let children: Vec<&Rewrite> = match &r.rewrite {
            Rewrite::Union(c) | Rewrite::Intersection(c) => c.iter().collect(),
            Rewrite::Exclusion { base, subtract } => vec![&**base, &**subtract],
            _ => return,
        };
        let names: Vec<Option<(String, Span)>> = children.iter().map(|c| partial_name(c)).collect();
        for (k, entry) in names.iter().enumerate() {
            let Some((name, _)) = entry else { continue };
            let first = names.iter().take(k).flatten().find(|(n, _)| n == name);
            if let Some((_, span)) = first {
                let msg =
                    format!("the partial relation definition `{name}` is a duplicate in the relation `{}`.", r.name);
                self.warnings.push(SchemaError {
                    kind: SchemaErrorKind::Semantic("duplicated-error".to_string()),
                    message: msg,
                    span: self.source.map(|_| *span),
                    symbol: Some(name.clone()),
                });
            }
        }
    }

    // ---- entry points -----------------------------------------------------------------------

    fn entry_points(&mut self) {
        for (i, t) in self.model.types.iter().enumerate() {
            for (j, r) in t.relations.iter().enumerate() {
                self.at = Origin::Relation(i, j);
                let (entry, looped) = self.has_entry(&t.name, &r.name, &r.rewrite, &Visited::new());
                if entry {
                    continue;
                }
                let why = if looped { "potential loop" } else { "no entrypoint" };
                let msg = format!("`{}` is an impossible relation for `{}` ({why}).", r.name, t.name);
                self.push(msg, r.span, &r.name, "relation-no-entry-point");
            }
        }
    }

    /// Whether `rw` (part of `type_name#relation`) can ever be satisfied, and whether a loop was hit.
    fn has_entry(&self, type_name: &str, relation: &str, rw: &Rewrite, outer: &Visited) -> (bool, bool) {
        let Some(rel) = self.model.relation(type_name, relation) else {
            return (false, false);
        };
        let mut visited = outer.clone();
        visited.insert((type_name.to_string(), relation.to_string()));
        match rw {
            Rewrite::This => self.direct_entry(rel, &visited),
            Rewrite::Computed { relation: target, .. } => {
                let Some(t) = self.model.relation(type_name, target) else {
                    return (false, false);
                };
                if visited.contains(&(type_name.to_string(), target.clone())) {
                    return (false, true);
                }
                self.has_entry(type_name, target, &t.rewrite, &visited)
            }
            Rewrite::TupleToUserset { tupleset, computed, .. }
            | Rewrite::TupleToUsersetAll { tupleset, computed, .. } => {
                self.tupleset_entry(type_name, tupleset, computed, &visited)
            }
            Rewrite::Union(children) => {
                let mut looped = false;
                for c in children {
                    let (entry, l) = self.has_entry(type_name, relation, c, &visited);
                    if entry {
                        return (true, false);
                    }
                    looped |= l;
                }
                (false, looped)
            }
            Rewrite::Intersection(children) => {
                for c in children {
                    let (entry, l) = self.has_entry(type_name, relation, c, &visited);
                    if !entry {
                        return (false, l);
                    }
                }
                (true, false)
            }
            Rewrite::Exclusion { base, subtract } => {
                for part in [&**base, &**subtract] {
                    let (entry, l) = self.has_entry(type_name, relation, part, outer);
                    if !entry {
                        return (false, l);
                    }
                }
                (true, false)
            }
        }
    }

    fn direct_entry(&self, rel: &RelationDef, visited: &Visited) -> (bool, bool) {
        for r in &rel.directly_related {
            let Some(sub) = r.relation.as_ref().filter(|_| !r.wildcard) else {
                return (true, false);
            };
            let Some(target) = self.model.relation(&r.type_name, sub) else {
                return (false, false);
            };
            if visited.contains(&(r.type_name.clone(), sub.clone())) {
                continue;
            }
            if self.has_entry(&r.type_name, sub, &target.rewrite, visited).0 {
                return (true, false);
            }
        }
        (false, false)
    }

    fn tupleset_entry(&self, type_name: &str, tupleset: &str, computed: &str, visited: &Visited) -> (bool, bool) {
        let Some(ts) = self.model.relation(type_name, tupleset) else {
            return (false, false);
        };
        for r in ts.directly_related.iter().filter(|r| r.relation.is_none() && !r.wildcard) {
            let Some(target) = self.model.relation(&r.type_name, computed) else {
                continue;
            };
            if visited.contains(&(r.type_name.clone(), computed.to_string())) {
                continue;
            }
            if self.has_entry(&r.type_name, computed, &target.rewrite, visited).0 {
                return (true, false);
            }
        }
        (false, false)
    }

    // ---- conditions -------------------------------------------------------------------------

    fn unused_conditions(&mut self) {
        let used: HashSet<&str> = self
            .model
            .types
            .iter()
            .flat_map(|t| t.relations.iter())
            .flat_map(|r| r.directly_related.iter())
            .filter_map(|r| r.condition.as_deref())
            .collect();
        for (k, c) in self.model.conditions.iter().enumerate() {
            self.at = Origin::Condition(k);
            if !used.contains(c.name.as_str()) {
                let msg = format!("`{}` condition is not used in the model.", c.name);
                self.push(msg, c.span, &c.name, "condition-not-used");
            }
        }
    }
}
