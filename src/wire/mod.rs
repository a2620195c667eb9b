//! Wire formats shared by the HTTP API and the command line: OpenFGA's tuple key
//! (`{user, relation, object, condition?}` plus Writ's `expires_at`), which the API reads and
//! answers and `writ import`/`export` stream as JSON Lines, RFC 3339 timestamps (`time`), and
//! the canonical JSON digest of a call's arguments (`canonical`, with the `server` feature).
//!
//! Invariant: what one side writes, the other reads back unchanged:
//! `TupleKeyDto::to_stored` of `TupleKeyAnswer::from(t)` is `t`.
//! Must not import anything in the crate but `tuple`: `api`, `gateway` and `cli` build on it.

#[cfg(feature = "server")]
pub mod canonical;
pub mod time;

use crate::tuple::{Context, StoredTuple, Tuple, TupleCondition, TupleError};
use serde::{Deserialize, Serialize};
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
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub struct ConditionDto {
    /// The condition's name in the model.
    pub name: String,
    /// Bound parameter values.
    #[serde(default)]
    pub context: Option<Context>,
}

/// An OpenFGA tuple key: `{user, relation, object, condition?}` plus Writ's `expires_at`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
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

/// A tuple key in OpenFGA's response shape, plus Writ's `expires_at` when it has one.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub struct TupleKeyAnswer {
    /// The subject, `type:id`, `type:*` or `type:id#relation`.
    pub user: String,
    /// The relation.
    pub relation: String,
    /// The object, `type:id`.
    pub object: String,
    /// The condition the tuple was written with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<ConditionAnswer>,
    /// RFC 3339 time the tuple expires (Writ's extension).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// A tuple's condition in OpenFGA's response shape.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
pub struct ConditionAnswer {
    /// Name of a `condition` block in the model.
    pub name: String,
    /// Parameter values bound when the tuple was written.
    pub context: Context,
}

impl From<&StoredTuple> for TupleKeyAnswer {
    fn from(stored: &StoredTuple) -> TupleKeyAnswer {
        TupleKeyAnswer { expires_at: stored.expires_at_ms.map(format_rfc3339), ..TupleKeyAnswer::from(&stored.tuple) }
    }
}

/// A tuple that carries no expiry (a contextual tuple, one explain names).
impl From<&Tuple> for TupleKeyAnswer {
    fn from(tuple: &Tuple) -> TupleKeyAnswer {
        TupleKeyAnswer {
            user: tuple.subject.to_string(),
            relation: tuple.relation.clone(),
            object: tuple.object.to_string(),
            condition: tuple
                .condition
                .as_ref()
                .map(|condition| ConditionAnswer { name: condition.name.clone(), context: condition.context.clone() }),
            expires_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn answer(stored: &StoredTuple) -> Value {
        serde_json::to_value(TupleKeyAnswer::from(stored)).unwrap()
    }

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
        let read_back = key(answer(&written)).to_stored().unwrap();
        assert_eq!(read_back, written);
        assert_eq!(answer(&read_back)["expires_at"], "2030-01-01T00:00:00.000Z");
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
