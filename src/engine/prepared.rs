//! Prepared checks (issue 34, item 2): a check question resolved once, then asked many times
//! with no string parsing, no interning and no model lookup per call.
//!
//! What it owns: [`PreparedCheck`] (an object type, a relation and a subject type, resolved to
//! the ids of one model version), the id handles it is asked about ([`ObjectHandle`],
//! [`SubjectHandle`], resolved from `type:id` text by [`StoreHandle::object`] and
//! [`StoreHandle::subject`]), [`StoreSnapshot`] (one consistent read of a store, for a run of
//! checks and for borrowing names) and [`ObjectIds`] (a lookup's answer as ids, not strings).
//!
//! **Invariant:** a prepared check answers exactly as [`StoreHandle::check`] does for the same
//! question pinned to the prepared model version (`model_id`), with no contextual tuples and the
//! given (by default empty) condition context. It is bound to its model version: a later model
//! write does not change it (it keeps evaluating the version it was prepared on, as a request
//! pinned by `model_id` does); prepare again to follow the newest model. It always reads the
//! store's current tuples. Ids belong to one load of the store (an epoch): a handle or prepared
//! check used on another load of the store (after a reload) fails with
//! [`EngineError::Validation`] instead of answering from mismatched ids.
//! An object or subject whose id no tuple names resolves to a handle that is not
//! [`known`](ObjectHandle::is_known): it keeps its name, and each check looks it up again (so a
//! tuple written after the handle counts); a subject never named can still be granted through
//! a wildcard `type:*`, so it is not simply denied.
//! Must not import `api`.

use super::{
    as_input_error, as_validation, find_model, resolve_object_relation, resolve_type, Core, EngineError, StoreData,
    StoreHandle,
};
use crate::eval::{self, CompiledModel, Evaluator, User};
use crate::index::{Id, ObjectBitmap, ObjectId, ObjectTypeId, RelationId, SubjectKind, View};
use crate::tuple::{split_object, split_subject, Context};
use roaring::RoaringBitmap;
use std::sync::Arc;

/// A check question (object type, relation, subject type) resolved against one model version.
/// See the module doc for how it behaves across model writes, tuple writes and reloads.
#[derive(Debug, Clone)]
pub struct PreparedCheck {
    epoch: u64,
    model_id: String,
    compiled: Arc<CompiledModel>,
    object_type: ObjectTypeId,
    relation: RelationId,
    subject_kind: SubjectKind,
    empty_context: Context,
}

/// An object (`type:id`) resolved to ids, for [`PreparedCheck`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHandle {
    epoch: u64,
    object_type: ObjectTypeId,
    object: Resolved,
}

/// What resolving a name found: its id, or, when no tuple named it, the name itself (looked up
/// again at each use, since a later write may name it).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resolved {
    Id(ObjectId),
    Unknown(Box<str>),
}

impl Resolved {
    fn resolve(view: View<'_>, object_type: ObjectTypeId, name: &str) -> Self {
        match view.object_id(object_type, name) {
            Some(id) => Resolved::Id(id),
            None => Resolved::Unknown(name.into()),
        }
    }

    /// The id on `view`, `None` while no tuple names it.
    fn id_on(&self, view: View<'_>, object_type: ObjectTypeId) -> Option<ObjectId> {
        match self {
            Resolved::Id(id) => Some(*id),
            Resolved::Unknown(name) => view.object_id(object_type, name),
        }
    }
}

/// A subject (`user:anne`, `user:*` or `group:eng#member`) resolved to ids, for [`PreparedCheck`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectHandle {
    epoch: u64,
    kind: SubjectKind,
    /// The object (its id is [`ObjectId::WILDCARD`] for `type:*`).
    object: Resolved,
}

impl ObjectHandle {
    /// Whether some tuple named this object when it was resolved.
    pub fn is_known(&self) -> bool {
        matches!(self.object, Resolved::Id(_))
    }

    /// The object's id within its type, as [`ObjectIds`] yields them; `None` when no tuple named
    /// it when it was resolved.
    pub fn id(&self) -> Option<u32> {
        match self.object {
            Resolved::Id(id) => Some(id.raw()),
            Resolved::Unknown(_) => None,
        }
    }
}

impl SubjectHandle {
    /// Whether some tuple named this subject when it was resolved (a wildcard always is).
    pub fn is_known(&self) -> bool {
        matches!(self.object, Resolved::Id(_))
    }
}

/// One consistent read of a store: every check and lookup through it sees the same tuples, and
/// the names it lends stay valid while it lives. Hold it for a run of questions, not for long (it
/// keeps that copy of the store's data alive).
pub struct StoreSnapshot<'e> {
    core: &'e Core,
    data: Arc<StoreData>,
}

impl std::fmt::Debug for StoreSnapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSnapshot").field("revision", &self.data.revision).finish_non_exhaustive()
    }
}

/// The objects of one type a lookup found, as ids (a bitmap), not `type:id` strings; names are
/// borrowed from a [`StoreSnapshot`] on demand.
#[derive(Debug, Clone)]
pub struct ObjectIds {
    epoch: u64,
    object_type: ObjectTypeId,
    ids: RoaringBitmap,
}

impl ObjectIds {
    /// How many objects.
    pub fn len(&self) -> u64 {
        self.ids.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether the object is among them.
    pub fn contains(&self, object: &ObjectHandle) -> bool {
        object.epoch == self.epoch
            && object.object_type == self.object_type
            && object.id().is_some_and(|id| self.ids.contains(id))
    }

    /// The ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.ids.iter()
    }

    /// The ids as a bitmap.
    pub fn bitmap(&self) -> &RoaringBitmap {
        &self.ids
    }
}

impl StoreHandle<'_> {
    /// Resolves a check question once: `prepare("document", "viewer", "user")`, or with a
    /// userset subject type, `prepare("document", "viewer", "group#member")`, against the newest
    /// model. Fails as [`StoreHandle::check`] would on an undefined type or relation.
    pub fn prepare(&self, object_type: &str, relation: &str, subject_type: &str) -> Result<PreparedCheck, EngineError> {
        self.prepare_for_model(None, object_type, relation, subject_type)
    }

    /// [`StoreHandle::prepare`] against a given model version (the newest when `None`).
    pub fn prepare_for_model(
        &self,
        model_id: Option<&str>,
        object_type: &str,
        relation: &str,
        subject_type: &str,
    ) -> Result<PreparedCheck, EngineError> {
        self.core.config.input.type_name(object_type)?;
        self.core.config.input.relation(relation)?;
        let state = self.state.live()?;
        let data = state.data.read();
        let version = find_model(&data, self.id(), model_id)?;
        let context = Context::default();
        let evaluator = Evaluator {
            model: &version.compiled,
            view: View::new(&data.index),
            limits: self.eval_limits(),
            context: &context,
        };
        let (object_type_id, relation_id) =
            resolve_object_relation(&evaluator, object_type, relation).map_err(as_validation)?;
        let subject_kind = match subject_type.split_once('#') {
            Some((subject_type, subject_relation)) => {
                let (subject_type, relation) =
                    resolve_object_relation(&evaluator, subject_type, subject_relation).map_err(as_validation)?;
                SubjectKind { subject_type, relation }
            }
            None => SubjectKind {
                subject_type: resolve_type(&evaluator, subject_type).map_err(as_validation)?,
                relation: RelationId::NONE,
            },
        };
        Ok(PreparedCheck {
            epoch: data.epoch,
            model_id: version.id.clone(),
            compiled: Arc::clone(&version.compiled),
            object_type: object_type_id,
            relation: relation_id,
            subject_kind,
            empty_context: context,
        })
    }

    /// Resolves `type:id` to an [`ObjectHandle`]. A type no model of the store names is
    /// [`EngineError::TypeNotFound`]; an id no tuple names gives a handle that is not known.
    pub fn object(&self, object: &str) -> Result<ObjectHandle, EngineError> {
        self.core.config.input.object(object)?;
        let (type_name, id) = split_object(object).map_err(as_input_error)?;
        let state = self.state.live()?;
        let data = state.data.read();
        let view = View::new(&data.index);
        let object_type = view.type_id(type_name).ok_or_else(|| EngineError::TypeNotFound(type_name.to_string()))?;
        let object = Resolved::resolve(view, object_type, id);
        Ok(ObjectHandle { epoch: data.epoch, object_type, object })
    }

    /// Resolves `user:anne`, `user:*` or `group:eng#member` to a [`SubjectHandle`]. A type or
    /// relation the store's models never named is an error; an id no tuple names gives a handle
    /// that is not known (a wildcard can still grant it).
    pub fn subject(&self, subject: &str) -> Result<SubjectHandle, EngineError> {
        self.core.config.input.user(subject)?;
        let text = split_subject(subject).map_err(as_input_error)?;
        let state = self.state.live()?;
        let data = state.data.read();
        let view = View::new(&data.index);
        let subject_type =
            view.type_id(text.subject_type).ok_or_else(|| EngineError::TypeNotFound(text.subject_type.to_string()))?;
        let relation = match text.relation {
            Some(relation) => view.relation_id(relation).ok_or_else(|| EngineError::RelationNotFound {
                type_name: text.subject_type.to_string(),
                relation: relation.to_string(),
            })?,
            None => RelationId::NONE,
        };
        let object = match text.id {
            None => Resolved::Id(ObjectId::WILDCARD),
            Some(id) => Resolved::resolve(view, subject_type, id),
        };
        Ok(SubjectHandle { epoch: data.epoch, kind: SubjectKind { subject_type, relation }, object })
    }

    /// One consistent read of the store, for a run of checks and lookups and for borrowing names.
    pub fn snapshot(&self) -> Result<StoreSnapshot<'_>, EngineError> {
        let state = self.state.live()?;
        Ok(StoreSnapshot { core: self.core, data: arc_swap::Guard::into_inner(state.data.read()) })
    }
}

impl StoreSnapshot<'_> {
    /// The store's revision this snapshot reads.
    pub fn revision(&self) -> u64 {
        self.data.revision
    }

    /// The name (the id part of `type:id`) of one of the objects, borrowed.
    pub fn object_name(&self, objects: &ObjectIds, id: u32) -> Option<&str> {
        if objects.epoch != self.data.epoch {
            return None;
        }
        View::new(&self.data.index).object_name(objects.object_type, ObjectId::from_raw(id))
    }

    /// The names (the id part of `type:id`) of the objects, borrowed, in id order.
    pub fn object_names<'s>(&'s self, objects: &'s ObjectIds) -> impl Iterator<Item = &'s str> + 's {
        let view = View::new(&self.data.index);
        let same_load = objects.epoch == self.data.epoch;
        objects.ids.objects().filter(move |_| same_load).filter_map(move |id| view.object_name(objects.object_type, id))
    }
}

impl PreparedCheck {
    /// The model version this check evaluates.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Whether the subject holds the relation on the object, on the store's current tuples, with
    /// an empty condition context (a conditional tuple whose condition needs a parameter then
    /// fails as [`StoreHandle::check`] does).
    pub fn check(
        &self,
        store: &StoreHandle<'_>,
        object: &ObjectHandle,
        subject: &SubjectHandle,
    ) -> Result<bool, EngineError> {
        self.check_with_context(store, object, subject, &self.empty_context)
    }

    /// [`PreparedCheck::check`] with a condition context.
    pub fn check_with_context(
        &self,
        store: &StoreHandle<'_>,
        object: &ObjectHandle,
        subject: &SubjectHandle,
        context: &Context,
    ) -> Result<bool, EngineError> {
        let data = store.state.live()?.data.read();
        self.check_in(store.core, &data, object, subject, context)
    }

    /// [`PreparedCheck::check`] on a snapshot.
    pub fn check_at(
        &self,
        snapshot: &StoreSnapshot<'_>,
        object: &ObjectHandle,
        subject: &SubjectHandle,
    ) -> Result<bool, EngineError> {
        self.check_in(snapshot.core, &snapshot.data, object, subject, &self.empty_context)
    }

    /// The objects of the prepared type on which the subject holds the relation, as ids, with an
    /// empty condition context.
    pub fn list_object_ids(&self, store: &StoreHandle<'_>, subject: &SubjectHandle) -> Result<ObjectIds, EngineError> {
        let data = store.state.live()?.data.read();
        self.list_in(store.core, &data, subject)
    }

    /// [`PreparedCheck::list_object_ids`] on a snapshot (whose names the answer can borrow).
    pub fn list_object_ids_at(
        &self,
        snapshot: &StoreSnapshot<'_>,
        subject: &SubjectHandle,
    ) -> Result<ObjectIds, EngineError> {
        self.list_in(snapshot.core, &snapshot.data, subject)
    }

    fn same_load(&self, data: &StoreData, epochs: [u64; 2]) -> Result<(), EngineError> {
        if self.epoch != data.epoch || epochs.iter().any(|&epoch| epoch != data.epoch) {
            return Err(EngineError::Validation(
                "a prepared check or handle belongs to an earlier load of the store: prepare and resolve it again"
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// The subject's key on this read, after checking its kind is the prepared one.
    fn subject_key(&self, view: View<'_>, subject: &SubjectHandle) -> Result<User, EngineError> {
        if subject.kind != self.subject_kind {
            return Err(EngineError::Validation("the subject is not of the prepared subject type".to_string()));
        }
        Ok(User { kind: subject.kind, object: subject.object.id_on(view, subject.kind.subject_type) })
    }

    fn check_in(
        &self,
        core: &Core,
        data: &StoreData,
        object: &ObjectHandle,
        subject: &SubjectHandle,
        context: &Context,
    ) -> Result<bool, EngineError> {
        self.same_load(data, [object.epoch, subject.epoch])?;
        if object.object_type != self.object_type {
            return Err(EngineError::Validation("the object is not of the prepared object type".to_string()));
        }
        let now = if data.index.expiring_len() > 0 { (core.clock)() } else { i64::MIN };
        let view = View::new(&data.index).at(now);
        let user = self.subject_key(view, subject)?;
        let object_id = object.object.id_on(view, object.object_type);
        // A userset holds its own relation, whether or not any tuple names its object.
        if user.kind == (SubjectKind { subject_type: self.object_type, relation: self.relation }) {
            let same = match (object_id, user.object) {
                (Some(object_id), Some(user_object)) => object_id == user_object,
                // Two names the index never saw: the same name or not.
                (None, None) => object.object == subject.object,
                _ => false,
            };
            if same {
                return Ok(true);
            }
        }
        let evaluator = Evaluator { model: &self.compiled, view, limits: core.eval_limits(), context };
        Ok(eval::check(&evaluator, self.object_type, object_id, self.relation, user)?)
    }

    fn list_in(&self, core: &Core, data: &StoreData, subject: &SubjectHandle) -> Result<ObjectIds, EngineError> {
        self.same_load(data, [subject.epoch, subject.epoch])?;
        let now = if data.index.expiring_len() > 0 { (core.clock)() } else { i64::MIN };
        let view = View::new(&data.index).at(now);
        let user = self.subject_key(view, subject)?;
        let evaluator =
            Evaluator { model: &self.compiled, view, limits: core.eval_limits(), context: &self.empty_context };
        let ids = eval::list_objects(&evaluator, self.object_type, self.relation, user)?;
        Ok(ObjectIds { epoch: data.epoch, object_type: self.object_type, ids })
    }
}
