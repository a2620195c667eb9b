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
//! - **every-parent arrow** (SpiceDB's `parent.all(viewer)`): with `doc:1#parent@folder:x` and
//!   `doc:1#parent@folder:y`, whoever is `viewer` of both folders is `viewer` of `doc:1`; with no
//!   parent, no one is. (Arrows follow a userset parent `folder:x#member` by its object, as SpiceDB's do.)
//!
//! A partial check (`check_partial`, SpiceDB's semantics) answers allowed, conditional or denied: a
//! condition missing context makes its tuple conditional, and answers combine three-valued (union:
//! allowed beats conditional beats denied; intersection and arrows: denied beats conditional; a
//! conditional subtrahend makes the result conditional). `check` keeps OpenFGA's error instead.
//!
//! A userset as the checked user (`group:eng#member`) holds a relation when a tuple names it, or
//! when it is the very object and relation asked about. A cycle on the current path resolves to
//! not-allowed; more than `max_depth` nested dispatches is `EvalError::DepthExceeded`, and an
//! evaluation still running at `Limits::deadline` stops with `EvalError::DeadlineExceeded`.
//! A stored tuple with an expiry counts strictly before that instant and not from it on, at the
//! instant the [`View`] was taken (one `now` per request): forward walks ask `tuple_holds`,
//! reverse lookups get bitmaps with the expired objects already subtracted.
//! Lookups compute whole bitmaps (never a check per object); recursion runs to a fixed point.
//!
//! **Invariant:** for every object `o`, `o ∈ list_objects(t, r, u)` iff `check(o, r, u)`, and
//! `u ∈ list_users(o, r, filter)` iff `check(o, r, u)` (tested against each other).
//! Must not import `engine`, `store`, `api`, nor `sled`, `tokio`, `axum`, `serde_json`.

pub(crate) mod acl_tags;
mod check;
mod compiled;
mod condition;
mod error;
mod expand;
mod explain;
mod lookup;

pub(crate) use compiled::CompiledModel;
pub(crate) use condition::condition_errors;
pub use error::EvalError;
pub use expand::{ExpandLeaf, ExpandNode};
pub(crate) use explain::{explain, ExplainInput};
pub use explain::{ExplainNode, NodeResult, Reason};

use crate::index::{
    Closure, ObjectId, ObjectTypeId, RelationId, RelationTuples, SubjectKey, SubjectKind, TupleGuard, View,
};
use crate::tuple::{Context, TupleCondition};

/// The user a walk asks about: its kind and, when the index has interned its name, its object id
/// ([`ObjectId::WILDCARD`] for `type:*`). A name the index never saw has no id (`None`): no tuple names it,
/// so it equals no id (in particular not another never-seen name's), and only its type's
/// wildcard can grant it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct User {
    /// The user's kind.
    pub(crate) kind: SubjectKind,
    /// The user's object id, `None` for a name the index never saw.
    pub(crate) object: Option<ObjectId>,
}

impl User {
    /// The user's index key, `None` for a name the index never saw.
    pub(crate) fn key(self) -> Option<SubjectKey> {
        Some(SubjectKey { kind: self.kind, object: self.object? })
    }

    /// True for `type:*`.
    pub(crate) fn is_wildcard(self) -> bool {
        self.object == Some(ObjectId::WILDCARD)
    }

    /// True when the user is the userset `object_type:object#relation` (never for a name the
    /// index never saw: the engine settles that case by name).
    pub(crate) fn is_userset(self, object_type: ObjectTypeId, object: ObjectId, relation: RelationId) -> bool {
        self.kind.relation != RelationId::NONE
            && (self.kind.subject_type, self.kind.relation) == (object_type, relation)
            && self.object == Some(object)
    }
}

/// Bounds on one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most nested dispatches (computed, userset, tuple to userset) before `DepthExceeded`.
    pub max_depth: u32,
    /// When the evaluation must give up with `DeadlineExceeded`; `None` never.
    pub deadline: Option<std::time::Instant>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_depth: 25, deadline: None }
    }
}

impl Limits {
    /// `Err(DeadlineExceeded)` once the deadline has passed. Evaluation calls this at every
    /// dispatch and fixed-point round, so an expired request stops with an error instead of
    /// returning a partial answer.
    pub(crate) fn check_deadline(&self) -> Result<(), EvalError> {
        match self.deadline {
            Some(deadline) if std::time::Instant::now() >= deadline => Err(EvalError::DeadlineExceeded),
            _ => Ok(()),
        }
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
    /// The object id of a name in a type, `None` if the index never saw it.
    pub(crate) fn object_id(&self, object_type: ObjectTypeId, name: &str) -> Option<ObjectId> {
        self.view.object_id(object_type, name)
    }

    /// The id a walk gives an object whose name the index never saw (`None`): one past every
    /// interned id of its type, so no tuple names it and it equals no known id; and a user the
    /// index never saw has no id at all, so the two are never taken for the same name.
    pub(crate) fn walk_object(&self, object_type: ObjectTypeId, object: Option<ObjectId>) -> ObjectId {
        object.unwrap_or_else(|| self.view.unseen_object(object_type))
    }

    /// The parents `computed from tupleset` follows from one object: its tupleset tuples whose
    /// subject kind [`CompiledModel::parent_kinds`] admits (a wildcard is never a parent).
    pub(crate) fn tupleset_parents(
        &self,
        object_type: ObjectTypeId,
        object: ObjectId,
        tupleset: RelationId,
        computed: RelationId,
    ) -> impl Iterator<Item = SubjectKey> + 'a {
        let kinds = self.model.parent_kinds(object_type, tupleset, computed);
        self.view
            .forward(object_type, tupleset, object)
            .filter(move |(kind, _)| kinds.clone().any(|k| k == *kind))
            .flat_map(|(kind, parents)| {
                parents
                    .iter()
                    .filter(|&parent| parent != ObjectId::WILDCARD)
                    .map(move |parent| SubjectKey { kind, object: parent })
            })
    }

    /// The group closure of a recursive userset relation, only where answering from it equals
    /// the ordinary walk: the relation is exactly its direct tuples (rewrite `this`, so membership
    /// passes up through `type#relation` edges and nothing else), the model admits those edges
    /// unconditioned, and the view offers a closure (no conditions, no contextual tuples on it).
    pub(crate) fn group_closure(
        &self,
        object_type: ObjectTypeId,
        relation: RelationId,
        definition: &compiled::CompiledRelation,
    ) -> Option<&'a Closure> {
        if !definition.nests {
            return None;
        }
        self.view.closure(object_type, relation)
    }

    /// Whether the condition of tuple (object type, relation, object, subject) holds, with the
    /// request's context merged under the tuple's stored one.
    pub(crate) fn condition_holds(
        &self,
        object_type: ObjectTypeId,
        relation: RelationId,
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

    /// Whether the tuple (object type, relation, object, subject) is live (not expired) and fits the
    /// model's type restrictions with its condition (or lack of one); `Ok(condition)` when it does.
    fn fitting_condition(
        &self,
        object_type: ObjectTypeId,
        relation: RelationId,
        object: ObjectId,
        subject: SubjectKey,
    ) -> Result<Option<&'a TupleCondition>, ()> {
        let condition = match self.view.guard(object_type, relation, object, subject) {
            TupleGuard::Expired => return Err(()),
            TupleGuard::Counts => None,
            TupleGuard::Condition(condition) => Some(condition),
        };
        if condition.is_none() && !self.model.is_strict(object_type, relation) {
            return Ok(None);
        }
        let fits = self.model.relation(object_type, relation).is_some_and(|definition| {
            definition.admits_tuple(
                subject.kind,
                subject.object == ObjectId::WILDCARD,
                condition.map(|c| c.name.as_str()),
            )
        });
        if fits {
            Ok(condition)
        } else {
            Err(())
        }
    }

    /// True when every tuple of (object type, relation), looked up as `tuples`, counts as it is
    /// (no condition, no expiry, nothing the type restrictions turn away), so
    /// [`Evaluator::tuple_holds`] would answer true for each: a walk need not ask per tuple.
    pub(crate) fn all_hold(
        &self,
        tuples: &RelationTuples<'_>,
        object_type: ObjectTypeId,
        relation: RelationId,
    ) -> bool {
        tuples.all_count() && !self.model.is_strict(object_type, relation)
    }

    /// Whether the tuple (object type, relation, object, subject) counts: it has not expired, it fits
    /// the model's type restrictions with its condition (or lack of one), and that condition holds.
    pub(crate) fn tuple_holds(
        &self,
        object_type: ObjectTypeId,
        relation: RelationId,
        object: ObjectId,
        subject: SubjectKey,
    ) -> Result<bool, EvalError> {
        match self.fitting_condition(object_type, relation, object, subject) {
            Err(()) => Ok(false),
            Ok(None) => Ok(true),
            Ok(Some(condition)) => self.condition_holds(object_type, relation, object, subject, condition),
        }
    }

    /// Like [`Evaluator::tuple_holds`], but `None` (conditional) when the condition lacks
    /// context parameters it needs, instead of an error.
    pub(crate) fn tuple_holds_partial(
        &self,
        object_type: ObjectTypeId,
        relation: RelationId,
        object: ObjectId,
        subject: SubjectKey,
    ) -> Result<Option<bool>, EvalError> {
        match self.fitting_condition(object_type, relation, object, subject) {
            Err(()) => Ok(Some(false)),
            Ok(None) => Ok(Some(true)),
            Ok(Some(condition)) => self.model.conditions.evaluate_partial(condition, self.context),
        }
    }
}

pub use check::Permissionship;
pub(crate) use check::{check, check_many, check_partial};
pub(crate) use expand::expand;
pub(crate) use lookup::{list_objects, list_objects_within, list_users, UserFilter};
