//! Wire formats shared by the HTTP API and the command line: OpenFGA's tuple key
//! (`{user, relation, object, condition?}` plus Writ's `expires_at`), which the API reads and
//! answers and `writ import`/`export` stream as JSON Lines, and RFC 3339 timestamps (`time`).
//!
//! Invariant: what one side writes, the other reads back unchanged:
//! `TupleKeyDto::to_stored` of `stored_tuple_key_json(t)` is `t`.
//! Must not import anything in the crate but `tuple`: `api` and `cli` both build on it.

pub mod time;

use crate::tuple::{Context, StoredTuple, Tuple, TupleCondition, TupleError};
use serde::Deserialize;
use serde_json::{json, Value};
use time::{format_rfc3339, parse_rfc3339};

/// Why a tuple key names no tuple; the API answers it as a validation error.
#[derive(Debug, thiserror::Error)]
pub enum TupleKeyError {
    /// The user, relation or object is malformed.
    #[error("invalid tuple key: {0}")]
    Invalid(TupleError),
    /// A condition with an empty name.
    #[error("tuple condition must have a name")]
    UnnamedCondition,
    /// `expires_at` is not an RFC 3339 timestamp.
    #[error("`expires_at` value `{0}` is not an RFC 3339 timestamp")]
    BadExpiry(String),
}

/// A condition on a tuple key: `{name, context?}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConditionDto {
    /// The condition's name in the model.
    pub name: String,
    /// Bound parameter values.
    #[serde(default)]
    pub context: Option<Context>,
}

/// An OpenFGA tuple key: `{user, relation, object, condition?}` plus Writ's `expires_at`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TupleKeyDto {
    /// `user:anne`, `user:*`, `group:eng#member`.
    pub user: String,
    /// The relation.
    pub relation: String,
    /// `document:1`.
    pub object: String,
    /// Optional condition.
    #[serde(default)]
    pub condition: Option<ConditionDto>,
    /// Writ's extension: when the tuple stops counting (RFC 3339).
    #[serde(default)]
    pub expires_at: Option<String>,
}

impl TupleKeyDto {
    /// The tuple this key names (with its condition).
    pub fn to_tuple(&self) -> Result<Tuple, TupleKeyError> {
        let mut tuple = Tuple::from_parts(&self.object, &self.relation, &self.user).map_err(TupleKeyError::Invalid)?;
        if let Some(condition) = &self.condition {
            if condition.name.is_empty() {
                return Err(TupleKeyError::UnnamedCondition);
            }
            tuple.condition = Some(TupleCondition {
                name: condition.name.clone(),
                context: condition.context.clone().unwrap_or_default(),
            });
        }
        Ok(tuple)
    }

    /// The tuple as it is stored, with its expiry.
    pub fn to_stored(&self) -> Result<StoredTuple, TupleKeyError> {
        let expires_at_ms = match &self.expires_at {
            None => None,
            Some(text) => Some(parse_rfc3339(text).ok_or_else(|| TupleKeyError::BadExpiry(text.clone()))?),
        };
        Ok(StoredTuple { tuple: self.to_tuple()?, expires_at_ms })
    }
}

/// A tuple key in OpenFGA's response shape.
pub fn tuple_key_json(tuple: &Tuple) -> Value {
    let mut key =
        json!({"user": tuple.subject.to_string(), "relation": tuple.relation, "object": tuple.object.to_string()});
    if let (Some(condition), Value::Object(map)) = (&tuple.condition, &mut key) {
        map.insert("condition".into(), json!({"name": condition.name, "context": condition.context}));
    }
    key
}

/// A stored tuple key in OpenFGA's response shape, plus Writ's `expires_at` when it has one.
pub fn stored_tuple_key_json(stored: &StoredTuple) -> Value {
    let mut key = tuple_key_json(&stored.tuple);
    if let (Some(at), Value::Object(map)) = (stored.expires_at_ms, &mut key) {
        map.insert("expires_at".into(), Value::String(format_rfc3339(at)));
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(value: Value) -> TupleKeyDto {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_stored_tuple_key_reads_back_as_the_same_tuple() {
        let written = key(json!({
            "user": "group:eng#member", "relation": "viewer", "object": "document:1",
            "condition": {"name": "in_hours", "context": {"hour": 9}},
            "expires_at": "2030-01-01T00:00:00.000Z",
        }))
        .to_stored()
        .unwrap();
        let read_back = key(stored_tuple_key_json(&written)).to_stored().unwrap();
        assert_eq!(read_back, written);
        assert_eq!(stored_tuple_key_json(&read_back)["expires_at"], "2030-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_bad_key_says_what_is_wrong() {
        let unnamed =
            key(json!({"user": "user:anne", "relation": "viewer", "object": "document:1", "condition": {"name": ""}}));
        assert_eq!(unnamed.to_tuple().unwrap_err().to_string(), "tuple condition must have a name");
        let expiry =
            key(json!({"user": "user:anne", "relation": "viewer", "object": "document:1", "expires_at": "soon"}));
        assert_eq!(
            expiry.to_stored().unwrap_err().to_string(),
            "`expires_at` value `soon` is not an RFC 3339 timestamp"
        );
        let malformed = key(json!({"user": "anne", "relation": "viewer", "object": "document:1"}));
        assert!(malformed.to_tuple().unwrap_err().to_string().starts_with("invalid tuple key: "));
    }
}
