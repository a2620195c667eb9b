//! Input limits the engine enforces on every request, whichever door it came through (HTTP,
//! import, test files): identifier lengths (OpenFGA's), contextual tuples per request, model size,
//! types, conditions and condition expression size per model, and the per-request deadline.
//!
//! Invariant: every violation is an [`EngineError::LimitExceeded`] whose `code` names the limit
//! (`object_too_long`, `too_many_types`, ...) and whose message names the bad part and the limit;
//! nothing over a limit reaches the store or the evaluator.
//! Must not import `api` or `store`.

use super::EngineError;
use crate::model::Model;
use crate::tuple::{Subject, Tuple};
use std::time::Duration;

/// Limits on what one request may contain. Defaults follow OpenFGA's where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// Longest object (`type:id`) in a tuple or request, in bytes (OpenFGA: 256).
    pub max_object_bytes: usize,
    /// Longest user (`type:id`, `type:*`, `type:id#relation`), in bytes (OpenFGA: 512).
    pub max_user_bytes: usize,
    /// Longest relation name, in bytes (OpenFGA: 50).
    pub max_relation_bytes: usize,
    /// Longest type name, in bytes (OpenFGA: 254).
    pub max_type_bytes: usize,
    /// Most contextual tuples in one request (OpenFGA: 100).
    pub max_contextual_tuples: usize,
    /// Largest model, as stored JSON, in bytes (OpenFGA: 256 KiB).
    pub max_model_bytes: usize,
    /// Most type definitions in one model (OpenFGA: 100).
    pub max_types_per_model: usize,
    /// Most conditions in one model (OpenFGA: 25).
    pub max_conditions_per_model: usize,
    /// Longest condition (CEL) expression, in bytes.
    pub max_condition_bytes: usize,
    /// Deepest nesting in a condition expression: brackets of any kind, and each `?` of a `?:`
    /// chain. CEL evaluation recurses per level; this keeps it well inside a thread's stack.
    pub max_condition_nesting: usize,
    /// Longest one evaluation may run before it fails with `deadline_exceeded`; `None` = no limit.
    pub request_timeout: Option<Duration>,
    /// Most nodes one explanation keeps per check it explains; a subtree past it is cut (and says so).
    pub max_explain_nodes: usize,
}

impl Default for InputLimits {
    fn default() -> Self {
        InputLimits {
            max_object_bytes: 256,
            max_user_bytes: 512,
            max_relation_bytes: 50,
            max_type_bytes: 254,
            max_contextual_tuples: 100,
            max_model_bytes: 256 * 1024,
            max_types_per_model: 100,
            max_conditions_per_model: 25,
            max_condition_bytes: 4096,
            max_condition_nesting: 8,
            request_timeout: None,
            max_explain_nodes: 10_000,
        }
    }
}

/// The first errors of a list, joined with `; `, and how many more there are: a model with
/// thousands of errors must not answer with a message of hundreds of kilobytes.
pub fn joined<T: std::fmt::Display>(errors: &[T]) -> String {
    const SHOWN: usize = 10;
    let mut text = errors.iter().take(SHOWN).map(ToString::to_string).collect::<Vec<_>>().join("; ");
    if errors.len() > SHOWN {
        text.push_str(&format!("; and {} more", errors.len() - SHOWN));
    }
    text
}

/// `Ok` when `text` is at most `limit` bytes; otherwise the `code` violation naming `what`.
/// Every check pays the test, so it is inlined and the message built out of line.
#[inline]
fn within_bytes(code: &'static str, what: &str, text: &str, limit: usize) -> Result<(), EngineError> {
    if text.len() <= limit {
        return Ok(());
    }
    Err(too_long(code, what, text, limit))
}

/// The violation of [`within_bytes`].
#[cold]
#[inline(never)]
fn too_long(code: &'static str, what: &str, text: &str, limit: usize) -> EngineError {
    // Quote at most a prefix: the point is the length, and an echo of 1 MiB helps nobody.
    let shown: String = text.chars().take(64).collect();
    let ellipsis = if shown.len() < text.len() { "…" } else { "" };
    EngineError::LimitExceeded {
        code,
        message: format!("{what} `{shown}{ellipsis}` is {} bytes, more than the limit of {limit}", text.len()),
    }
}

/// `Ok` when `count` is at most `limit`; otherwise the `code` violation, its message
/// `{described} {count} {unit}, more than the limit of {limit}`.
fn within_count(
    code: &'static str,
    described: &str,
    count: usize,
    unit: &str,
    limit: usize,
) -> Result<(), EngineError> {
    if count <= limit {
        return Ok(());
    }
    Err(EngineError::LimitExceeded {
        code,
        message: format!("{described} {count} {unit}, more than the limit of {limit}"),
    })
}

/// How deep a CEL expression nests: open brackets of any kind, plus one per `?` (a `?:` chain
/// nests to the right). Brackets inside string literals count too: an overestimate is safe.
fn condition_nesting(expression: &str) -> usize {
    let (mut depth, mut deepest, mut ternaries) = (0usize, 0usize, 0usize);
    for byte in expression.bytes() {
        match byte {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'?' => ternaries += 1,
            _ => {}
        }
        deepest = deepest.max(depth + ternaries);
    }
    deepest
}

impl InputLimits {
    /// Checks an object (`type:id`).
    pub(crate) fn object(&self, object: &str) -> Result<(), EngineError> {
        within_bytes("object_too_long", "object", object, self.max_object_bytes)
    }

    /// Checks a user (`type:id`, `type:*`, `type:id#relation`).
    pub(crate) fn user(&self, user: &str) -> Result<(), EngineError> {
        within_bytes("user_too_long", "user", user, self.max_user_bytes)
    }

    /// Checks a relation name.
    pub(crate) fn relation(&self, relation: &str) -> Result<(), EngineError> {
        within_bytes("relation_too_long", "relation", relation, self.max_relation_bytes)
    }

    /// Checks a type name.
    pub(crate) fn type_name(&self, type_name: &str) -> Result<(), EngineError> {
        within_bytes("type_too_long", "type", type_name, self.max_type_bytes)
    }

    /// Checks each principal (user) of an agent request.
    pub(crate) fn principals(&self, principals: &[String]) -> Result<(), EngineError> {
        principals.iter().try_for_each(|principal| self.user(principal))
    }

    /// Checks the object, relation and user of a request.
    pub(crate) fn request(&self, object: &str, relation: &str, user: &str) -> Result<(), EngineError> {
        self.object(object)?;
        self.relation(relation)?;
        self.user(user)
    }

    /// Checks every part of a tuple.
    pub(crate) fn tuple(&self, tuple: &Tuple) -> Result<(), EngineError> {
        self.object(&tuple.object.to_string())?;
        self.relation(&tuple.relation)?;
        if let Subject::Userset { relation, .. } = &tuple.subject {
            self.relation(relation)?;
        }
        self.user(&tuple.subject.to_string())
    }

    /// Checks a request's contextual tuples: how many, and each one.
    pub(crate) fn contextual_tuples(&self, tuples: &[Tuple]) -> Result<(), EngineError> {
        within_count(
            "too_many_contextual_tuples",
            "request has",
            tuples.len(),
            "contextual tuples",
            self.max_contextual_tuples,
        )?;
        tuples.iter().try_for_each(|tuple| self.tuple(tuple))
    }

    /// Checks a model about to be stored, given its stored JSON form.
    pub(crate) fn model(&self, model: &Model, json: &str) -> Result<(), EngineError> {
        let (is, has) = ("authorization model is", "authorization model has");
        within_count("model_too_large", is, json.len(), "bytes as JSON", self.max_model_bytes)?;
        within_count("too_many_types", has, model.types.len(), "types", self.max_types_per_model)?;
        within_count("too_many_conditions", has, model.conditions.len(), "conditions", self.max_conditions_per_model)?;
        for type_def in &model.types {
            self.type_name(&type_def.name)?;
            for relation in &type_def.relations {
                self.relation(&relation.name)?;
            }
        }
        for condition in &model.conditions {
            if condition.expression.len() > self.max_condition_bytes {
                return Err(EngineError::LimitExceeded {
                    code: "condition_too_large",
                    message: format!(
                        "condition `{}` has a {}-byte expression, more than the limit of {}",
                        condition.name,
                        condition.expression.len(),
                        self.max_condition_bytes
                    ),
                });
            }
            let nesting = condition_nesting(&condition.expression);
            if nesting > self.max_condition_nesting {
                return Err(EngineError::LimitExceeded {
                    code: "condition_too_complex",
                    message: format!(
                        "condition `{}` nests {nesting} levels deep, more than the limit of {}",
                        condition.name, self.max_condition_nesting
                    ),
                });
            }
        }
        Ok(())
    }

    /// The deadline of an evaluation that starts now.
    pub(crate) fn deadline(&self) -> Option<std::time::Instant> {
        self.request_timeout.and_then(|timeout| std::time::Instant::now().checked_add(timeout))
    }
}
