//! Evaluation: check, expand, list objects and list users over one consistent (model, index) view.
//!
//! Semantics follow OpenFGA schema 1.1. Each rewrite kind, with a three-line example:
//! - **direct** `define viewer: [user, user:*, group#member]`: `doc:1#viewer@user:anne` grants anne;
//!   `doc:1#viewer@user:*` grants every user; `doc:1#viewer@group:eng#member` grants whoever is
//!   `member` of `group:eng`. Tuples whose subject the relation's type restrictions do not admit are ignored.
//! - **computed** `define viewer: editor`: whoever is `editor` of the object is `viewer` of it.
//! - **tuple to userset** `define viewer: viewer from parent`: with `doc:1#parent@folder:x`,
//!   whoever is `viewer` of `folder:x` is `viewer` of `doc:1`.
//! - **union / intersection / exclusion** `a or b`, `a and b`, `a but not b`: set algebra on the above.
//!
//! A userset as the checked user (`group:eng#member`) holds a relation when a tuple names it, or
//! when it is the very object and relation asked about. A cycle on the current path resolves to
//! not-allowed; more than `max_depth` nested dispatches is `EvalError::DepthExceeded`.
//! Lookups compute whole bitmaps (never a check per object); recursion runs to a fixed point.
//!
//! **Invariant:** for every object `o`, `o ∈ list_objects(t, r, u)` iff `check(o, r, u)`, and
//! `u ∈ list_users(o, r, filter)` iff `check(o, r, u)` (tested against each other).
//! Must not import `engine`, `store`, `api`, nor `sled`, `tokio`, `axum`, `serde_json`.

mod check;
mod compiled;
mod condition;
mod error;
mod expand;
mod lookup;

pub(crate) use compiled::CompiledModel;
pub use error::EvalError;
pub use expand::{ExpandLeaf, ExpandNode};

use crate::index::{ObjectId, RelationId, SubjectKey, TypeId, View, WILDCARD};
use crate::tuple::{Context, TupleCondition};

/// Object id used for names the index has never seen: no tuple mentions it.
pub(crate) const UNKNOWN: ObjectId = u32::MAX - 1;

/// Bounds on one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most nested dispatches (computed, userset, tuple to userset) before `DepthExceeded`.
    pub max_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 25 }
    }
}

/// Everything one evaluation reads, borrowed.
#[derive(Clone, Copy)]
pub(crate) struct Evaluator<'a> {
    /// The compiled model.
    pub(crate) model: &'a CompiledModel,
    /// The tuples (stored, plus the request's contextual tuples).
    pub(crate) view: View<'a>,
    /// Bounds.
    pub(crate) limits: Limits,
    /// The request's condition context.
    pub(crate) context: &'a Context,
}

impl<'a> Evaluator<'a> {
    /// The object id of a name in a type, [`UNKNOWN`] if never seen.
    pub(crate) fn object_id(&self, object_type: TypeId, name: &str) -> ObjectId {
        self.view.object_id(object_type, name).unwrap_or(UNKNOWN)
    }

    /// The parents `computed from tupleset` follows from one object: its tupleset tuples whose
    /// subject kind [`CompiledModel::parent_kinds`] admits (a wildcard is never a parent).
    pub(crate) fn tupleset_parents(
        &self,
        object_type: TypeId,
        object: ObjectId,
        tupleset: RelationId,
        computed: RelationId,
    ) -> impl Iterator<Item = SubjectKey> + 'a {
        let model = self.model;
        self.view
            .forward(object_type, tupleset, object)
            .filter(move |(kind, _)| model.parent_kinds(object_type, tupleset, computed).any(|k| k == *kind))
            .flat_map(|(kind, parents)| {
                parents
                    .iter()
                    .filter(|&parent| parent != WILDCARD)
                    .map(move |parent| SubjectKey { kind, object: parent })
            })
    }

    /// Whether the condition of tuple (object type, relation, object, subject) holds, with the
    /// request's context merged under the tuple's stored one.
    pub(crate) fn condition_holds(
        &self,
        object_type: TypeId,
        relation: u32,
        object: ObjectId,
        subject: SubjectKey,
        condition: &TupleCondition,
    ) -> Result<bool, EvalError> {
        self.model.conditions.evaluate(condition, self.context, || {
            self.view
                .tuple(object_type, object, relation, subject)
                .map_or_else(|| "<unknown tuple>".to_string(), |t| t.to_string())
        })
    }

    /// Whether the tuple (object type, relation, object, subject) counts, given its condition.
    pub(crate) fn tuple_holds(
        &self,
        object_type: TypeId,
        relation: u32,
        object: ObjectId,
        subject: SubjectKey,
    ) -> Result<bool, EvalError> {
        if !self.view.has_conditions(object_type, relation) {
            return Ok(true);
        }
        match self.view.condition(object_type, relation, object, subject) {
            Some(condition) => self.condition_holds(object_type, relation, object, subject, condition),
            None => Ok(true),
        }
    }
}

pub(crate) use check::{check, check_many};
pub(crate) use expand::expand;
pub(crate) use lookup::{list_objects, list_users, UserFilter};
