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

fn too_long(code: &'static str, what: &str, text: &str, limit: usize) -> EngineError {
    // Quote at most a prefix: the point is the length, and an echo of 1 MiB helps nobody.
    let shown: String = text.chars().take(64).collect();
    let ellipsis = if shown.len() < text.len() { "…" } else { "" };
    EngineError::LimitExceeded {
        code,
        message: format!("{what} `{shown}{ellipsis}` is {} bytes, more than the limit of {limit}", text.len()),
    }
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
        if object.len() > self.max_object_bytes {
            return Err(too_long("object_too_long", "object", object, self.max_object_bytes));
        }
        Ok(())
    }

    /// Checks a user (`type:id`, `type:*`, `type:id#relation`).
    pub(crate) fn user(&self, user: &str) -> Result<(), EngineError> {
        if user.len() > self.max_user_bytes {
            return Err(too_long("user_too_long", "user", user, self.max_user_bytes));
        }
        Ok(())
    }

    /// Checks a relation name.
    pub(crate) fn relation(&self, relation: &str) -> Result<(), EngineError> {
        if relation.len() > self.max_relation_bytes {
            return Err(too_long("relation_too_long", "relation", relation, self.max_relation_bytes));
        }
        Ok(())
    }

    /// Checks a type name.
    pub(crate) fn type_name(&self, type_name: &str) -> Result<(), EngineError> {
        if type_name.len() > self.max_type_bytes {
            return Err(too_long("type_too_long", "type", type_name, self.max_type_bytes));
        }
        Ok(())
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
        if tuples.len() > self.max_contextual_tuples {
            return Err(EngineError::LimitExceeded {
                code: "too_many_contextual_tuples",
                message: format!(
                    "request has {} contextual tuples, more than the limit of {}",
                    tuples.len(),
                    self.max_contextual_tuples
                ),
            });
        }
        tuples.iter().try_for_each(|tuple| self.tuple(tuple))
    }

    /// Checks a model about to be stored, given its stored JSON form.
    pub(crate) fn model(&self, model: &Model, json: &str) -> Result<(), EngineError> {
        if json.len() > self.max_model_bytes {
            return Err(EngineError::LimitExceeded {
                code: "model_too_large",
                message: format!(
                    "authorization model is {} bytes as JSON, more than the limit of {}",
                    json.len(),
                    self.max_model_bytes
                ),
            });
        }
        if model.types.len() > self.max_types_per_model {
            return Err(EngineError::LimitExceeded {
                code: "too_many_types",
                message: format!(
                    "authorization model has {} types, more than the limit of {}",
                    model.types.len(),
                    self.max_types_per_model
                ),
            });
        }
        if model.conditions.len() > self.max_conditions_per_model {
            return Err(EngineError::LimitExceeded {
                code: "too_many_conditions",
                message: format!(
                    "authorization model has {} conditions, more than the limit of {}",
                    model.conditions.len(),
                    self.max_conditions_per_model
                ),
            });
        }
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
