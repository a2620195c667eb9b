//! A handle on one store: every operation scoped to a store (writes, models, reads, checks,
//! lookups, expand, the changelog, assertions) as methods of [`StoreHandle`], which
//! [`Engine::store`](super::Engine::store) gives out.
//!
//! What it owns: the per-store half of the facade. A handle is the store's state (an `Arc`)
//! and a borrow of what it needs from the engine (the backend, the settings, the clock and the
//! write path), resolved once: a caller that asks several questions of one store looks its id
//! up once. Borrowing the engine, a handle cannot outlive it (so it never keeps a closed
//! backend's files open).
//!
//! **Invariant:** a handle is only obtained for a store that exists; once the store is deleted
//! (here, or on another node of a shared datastore), every operation on a handle to it answers
//! [`EngineError::StoreNotFound`].
//! Must not import `api`; it reaches the backend only through the engine's [`Core`].

use super::write::validate_tuple;
use super::{
    as_input_error, as_validation, find_model, new_id, resolve_object_relation, resolve_subject, resolve_type, Answer,
    ChangeCursor, ChangeRecord, CheckRequest, EngineError, ExpandNode, ListObjectsRequest, ListUsersRequest, ModelInfo,
    ModelVersion, Permissionship, StoreData, StoreHandle, WriteRequest,
};
use crate::eval::{self, CompiledModel, EvalError, Evaluator, Limits, User, UserFilter};
use crate::index::{ObjectBitmap, ObjectId, ObjectTypeId, Overlay, RelationId, View};
use crate::model::Model;
use crate::tuple::{split_object, split_subject, Context, ObjectRef, Subject, Tuple};
use rayon::prelude::*;

/// A check's evaluation (`eval::check` or `eval::check_partial`) as [`StoreHandle::check_with`]
/// runs it on a resolved request.
type Decide<T> = fn(&Evaluator<'_>, ObjectTypeId, Option<ObjectId>, RelationId, User) -> Result<T, EvalError>;

impl StoreHandle<'_> {
    /// The store's id.
    pub fn id(&self) -> &str {
        &self.state.record.id
    }

    /// The bounds of one evaluation starting now: the configured depth, and the handle's
    /// shared deadline or else a fresh one.
    pub(super) fn eval_limits(&self) -> Limits {
        match self.deadline {
            Some(deadline) => Limits { deadline: Some(deadline), ..self.core.config.limits },
            None => self.core.eval_limits(),
        }
    }

    /// This handle with one deadline for all its evaluations, `deadline` when given (a
    /// batch-check's, so that no check of it runs past the batch's time), instead of a fresh
    /// one each (the configured request timeout from the evaluation's start).
    pub fn until(self, deadline: Option<std::time::Instant>) -> Self {
        StoreHandle { deadline: deadline.or(self.deadline), ..self }
    }

    /// Adds a model version to the store; returns its id.
    pub fn write_model(&self, model: Model) -> Result<String, EngineError> {
        let _writer = self.state.lock_writer()?;
        let id = new_id();
        let json = serde_json::to_string(&model.to_json())
            .map_err(|e| EngineError::Validation(format!("model cannot be serialized: {e}")))?;
        self.core.config.input.model(&model, &json)?;
        let invalid_conditions = crate::eval::condition_errors(&model);
        if !invalid_conditions.is_empty() {
            return Err(EngineError::Schema(invalid_conditions));
        }
        self.core.backend.write_model(self.id(), &id, &json)?;
        self.core.writes.add_model(self.core, &self.state, id.clone(), model)?;
        Ok(id)
    }

    /// A model version (the latest when `model_id` is `None`).
    pub fn model(&self, model_id: Option<&str>) -> Result<ModelInfo, EngineError> {
        let data = self.state.live()?.data.read();
        let version = find_model(&data, self.id(), model_id)?;
        Ok(ModelInfo { id: version.id.clone(), model: version.model.clone() })
    }

    /// Every model version, newest first (as OpenFGA lists them).
    pub fn models(&self) -> Result<Vec<ModelInfo>, EngineError> {
        let data = self.state.live()?.data.read();
        Ok(data.models.iter().rev().map(|v| ModelInfo { id: v.id.clone(), model: v.model.clone() }).collect())
    }

    /// The store's current revision.
    pub fn revision(&self) -> Result<u64, EngineError> {
        Ok(self.state.live()?.data.read().revision)
    }

    /// Number of tuples in the store.
    pub fn tuple_count(&self) -> Result<usize, EngineError> {
        Ok(self.state.live()?.data.read().index.len())
    }

    /// Applies a write atomically and durably; returns the new revision.
    pub fn write(&self, request: WriteRequest) -> Result<u64, EngineError> {
        let config = &self.core.config;
        let total = request.writes.len() + request.deletes.len();
        if total > config.max_tuples_per_write {
            return Err(EngineError::LimitExceeded {
                code: "exceeded_entity_limit",
                message: format!(
                    "write has {total} tuples, more than the limit of {} per request",
                    config.max_tuples_per_write
                ),
            });
        }
        if total == 0 {
            return Err(EngineError::Validation("write must contain at least one tuple to write or delete".into()));
        }
        for tuple in request.writes.iter().map(|stored| &stored.tuple).chain(&request.deletes) {
            config.input.tuple(tuple)?;
        }
        self.core.writes.write(self.core, &self.state, request)
    }

    /// Waits up to `timeout` until the store reaches revision `at_least`; returns the store's
    /// revision then, or [`EngineError::RevisionUnavailable`] naming both revisions.
    ///
    /// This is the single-node form of Zanzibar's zookie: a client that wrote at revision N and
    /// reads with `at_least_revision: N` never sees an older state. Blocks the calling thread.
    pub fn wait_for_revision(&self, at_least: u64, timeout: std::time::Duration) -> Result<u64, EngineError> {
        let state = self.state.live()?;
        let deadline = std::time::Instant::now() + timeout;
        let mut guard = state.revision_lock.lock();
        loop {
            let current = state.data.read().revision;
            if current >= at_least {
                return Ok(current);
            }
            if state.revision_changed.wait_until(&mut guard, deadline).timed_out() {
                let current = state.data.read().revision;
                if current >= at_least {
                    return Ok(current);
                }
                return Err(EngineError::RevisionUnavailable {
                    store_id: self.id().to_string(),
                    requested: at_least,
                    current,
                });
            }
        }
    }

    /// When each tuple was last written (milliseconds since the Unix epoch), in input order.
    ///
    /// A tuple the store no longer holds, or one written by a Writ that kept no write times, gets
    /// the store's creation time: a true lower bound.
    pub fn written_at(&self, tuples: &[Tuple]) -> Result<Vec<i64>, EngineError> {
        let state = self.state.live()?;
        let times = self.core.backend.written_at(self.id(), tuples)?;
        Ok(times.into_iter().map(|time| time.unwrap_or(state.record.created_at_ms)).collect())
    }

    /// Deletes the store's expired tuples as one ordinary write (a new revision whose changelog
    /// lists each as a delete); returns that revision, or `None` when nothing had expired.
    /// It holds the store's writer lock, so it never interleaves with a user's write.
    pub fn sweep_expired(&self) -> Result<Option<u64>, EngineError> {
        self.core.writes.sweep_expired(self.core, &self.state)
    }

    /// Runs `f` over one consistent snapshot of a store with the request's contextual tuples laid over it.
    pub(super) fn with_snapshot<T>(
        &self,
        model_id: Option<&str>,
        contextual_tuples: &[Tuple],
        f: impl FnOnce(&CompiledModel, View<'_>) -> Result<T, EngineError>,
    ) -> Result<Answer<T>, EngineError> {
        self.pinned(model_id, contextual_tuples, |data, version, now| {
            if contextual_tuples.is_empty() {
                f(&version.compiled, View::new(&data.index).at(now))
            } else {
                let overlay = Overlay::new(&data.index, contextual_tuples);
                f(&version.compiled, overlay.view(&data.index).at(now))
            }
        })
    }

    /// Runs `f` over the store's data under one read lock, the model version asked for (the
    /// latest when `None`) and the request's instant, once every contextual tuple fits that
    /// model: what each kind of snapshot (plain, explain's) is built from.
    pub(super) fn pinned<T>(
        &self,
        model_id: Option<&str>,
        contextual_tuples: &[Tuple],
        f: impl FnOnce(&StoreData, &ModelVersion, i64) -> Result<T, EngineError>,
    ) -> Result<Answer<T>, EngineError> {
        self.core.config.input.contextual_tuples(contextual_tuples)?;
        let state = self.state.live()?;
        let data = state.data.read();
        let version = find_model(&data, self.id(), model_id)?;
        for tuple in contextual_tuples {
            validate_tuple(&version.model, tuple)
                .map_err(|reason| EngineError::InvalidContextualTuple { tuple: tuple.to_string(), reason })?;
        }
        // One instant per request; the clock is read only when some tuple can expire.
        let now = self.core.now_for(&data.index);
        let value = f(&data, version, now)?;
        Ok(Answer { value, revision: data.revision })
    }

    /// Answers a check.
    pub fn check(&self, request: &CheckRequest) -> Result<Answer<bool>, EngineError> {
        self.check_with(request, true, eval::check)
    }

    /// Answers a check with SpiceDB's three-valued semantics: a condition whose context
    /// parameters are missing makes the answer [`Permissionship::Conditional`] instead of an
    /// error. [`StoreHandle::check`] keeps OpenFGA's behaviour.
    pub fn check_permissionship(&self, request: &CheckRequest) -> Result<Answer<Permissionship>, EngineError> {
        self.check_with(request, Permissionship::Allowed, eval::check_partial)
    }

    /// A check answered by `decide`, once the request is resolved; `held` is the answer when the
    /// user is a userset that names the very relation and object asked about.
    fn check_with<T>(&self, request: &CheckRequest, held: T, decide: Decide<T>) -> Result<Answer<T>, EngineError> {
        self.core.config.input.request(&request.object, &request.relation, &request.user)?;
        let (object_type, object_id) = split_object(&request.object).map_err(as_input_error)?;
        let user = split_subject(&request.user).map_err(as_input_error)?;
        self.with_snapshot(request.model_id.as_deref(), &request.contextual_tuples, |compiled, view| {
            let evaluator = Evaluator { model: compiled, view, limits: self.eval_limits(), context: &request.context };
            // OpenFGA answers every malformed check with `validation_error`, unlike list calls.
            let (object_type_id, relation) =
                resolve_object_relation(&evaluator, object_type, &request.relation).map_err(as_validation)?;
            let user_key = resolve_subject(&evaluator, user).map_err(as_validation)?;
            // A userset holds its own relation, whether or not any tuple names its object.
            if user.relation == Some(request.relation.as_str())
                && (user.subject_type, user.id) == (object_type, Some(object_id))
            {
                return Ok(held);
            }
            let object = evaluator.object_id(object_type_id, object_id);
            Ok(decide(&evaluator, object_type_id, object, relation, user_key)?)
        })
    }

    /// Lists the objects of a type on which the user holds the relation, sorted.
    pub fn list_objects(&self, request: &ListObjectsRequest) -> Result<Answer<Vec<String>>, EngineError> {
        self.core.config.input.type_name(&request.object_type)?;
        self.core.config.input.relation(&request.relation)?;
        self.core.config.input.user(&request.user)?;
        let user = split_subject(&request.user).map_err(as_input_error)?;
        self.with_snapshot(request.model_id.as_deref(), &request.contextual_tuples, |compiled, view| {
            let evaluator = Evaluator { model: compiled, view, limits: self.eval_limits(), context: &request.context };
            let (object_type, relation) = resolve_object_relation(&evaluator, &request.object_type, &request.relation)?;
            let user_key = resolve_subject(&evaluator, user).map_err(as_validation)?;
            let objects = eval::list_objects(&evaluator, object_type, relation, user_key)?;
            // Sort the bare ids (all share the type prefix, so their order is the order), borrowed
            // from the index and named in id order (which reads the interned names front to back);
            // then build each `type:id` once, in sorted order. The first 8 bytes of each id as a
            // big-endian number order most pairs without reading the strings (zero padding keeps
            // a shorter id first, as `str` order does).
            // A large answer does all three steps on rayon's threads.
            let ids: Vec<ObjectId> = objects.objects().collect();
            let prefix = request.object_type.as_str();
            let named = |part: &[ObjectId]| -> Vec<(u64, &str)> {
                view.object_names(object_type, part).into_iter().flatten().map(|id| (sort_key(id), id)).collect()
            };
            let object = |(_, id): &(u64, &str)| {
                let mut object = String::with_capacity(prefix.len() + 1 + id.len());
                object.push_str(prefix);
                object.push(':');
                object.push_str(id);
                object
            };
            if ids.len() < PARALLEL_LIST || rayon::current_num_threads() < 2 {
                let mut sorted = named(&ids);
                sorted.sort_unstable();
                return Ok(sorted.iter().map(object).collect());
            }
            let chunk = ids.len().div_ceil(rayon::current_num_threads());
            let mut sorted: Vec<(u64, &str)> = ids.par_chunks(chunk).flat_map_iter(named).collect();
            sorted.par_sort_unstable();
            Ok(sorted.par_iter().map(object).collect())
        })
    }

    /// Lists the subjects matching the filter that hold the relation on the object, sorted.
    pub fn list_users(&self, request: &ListUsersRequest) -> Result<Answer<Vec<Subject>>, EngineError> {
        self.core.config.input.object(&request.object)?;
        self.core.config.input.relation(&request.relation)?;
        let object: ObjectRef = request.object.parse().map_err(as_input_error)?;
        let [filter] = request.user_filters.as_slice() else {
            return Err(EngineError::Validation("list users takes exactly one user filter".into()));
        };
        self.with_snapshot(request.model_id.as_deref(), &request.contextual_tuples, |compiled, view| {
            let evaluator = Evaluator { model: compiled, view, limits: self.eval_limits(), context: &request.context };
            let (object_type, relation) = resolve_object_relation(&evaluator, &object.object_type, &request.relation)?;
            let filter_type = resolve_type(&evaluator, &filter.type_name)?;
            let filter_relation = match &filter.relation {
                Some(r) => resolve_object_relation(&evaluator, &filter.type_name, r)?.1,
                None => RelationId::NONE,
            };
            let object_id = evaluator.object_id(object_type, &object.id);
            let users = eval::list_users(
                &evaluator,
                object_type,
                object_id,
                relation,
                UserFilter { subject_type: filter_type, relation: filter_relation },
            )?;
            let mut subjects: Vec<Subject> = Vec::new();
            if object_id.is_none()
                && filter_type == object_type
                && filter.relation.as_deref() == Some(&request.relation)
            {
                subjects.push(Subject::Userset { object: object.clone(), relation: request.relation.clone() });
            }
            if users.wildcard && filter.relation.is_none() {
                subjects.push(Subject::Wildcard(filter.type_name.clone()));
            }
            for id in users.ids.objects() {
                let Some(name) = view.object_name(filter_type, id) else { continue };
                let subject_object = ObjectRef::new(filter.type_name.clone(), name);
                subjects.push(match &filter.relation {
                    Some(relation) => Subject::Userset { object: subject_object, relation: relation.clone() },
                    None => Subject::Object(subject_object),
                });
            }
            subjects.sort();
            subjects.dedup();
            Ok(subjects)
        })
    }

    /// Expands a relation on an object one level.
    pub fn expand(
        &self,
        object: &str,
        relation: &str,
        model_id: Option<&str>,
        contextual_tuples: &[Tuple],
    ) -> Result<Answer<ExpandNode>, EngineError> {
        self.core.config.input.object(object)?;
        self.core.config.input.relation(relation)?;
        let object: ObjectRef = object.parse().map_err(as_input_error)?;
        let context = Context::new();
        self.with_snapshot(model_id, contextual_tuples, |compiled, view| {
            let evaluator = Evaluator { model: compiled, view, limits: self.eval_limits(), context: &context };
            let (object_type, relation_id) = resolve_object_relation(&evaluator, &object.object_type, relation)?;
            let object_id = evaluator.object_id(object_type, &object.id);
            eval::expand(&evaluator, object_type, object_id, &object.to_string(), relation_id)?.ok_or_else(|| {
                EngineError::RelationNotFound { type_name: object.object_type.clone(), relation: relation.to_string() }
            })
        })
    }

    /// Changelog entries after a cursor.
    pub fn changes(
        &self,
        after: Option<ChangeCursor>,
        object_type: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, EngineError> {
        self.state.live()?;
        Ok(self.core.backend.changes(self.id(), after, object_type, limit)?)
    }

    /// Stores a model's assertions (opaque JSON).
    pub fn write_assertions(&self, model_id: &str, assertions_json: &str) -> Result<(), EngineError> {
        self.model(Some(model_id))?;
        Ok(self.core.backend.write_assertions(self.id(), model_id, assertions_json)?)
    }

    /// A model's assertions (opaque JSON), if written.
    pub fn assertions(&self, model_id: &str) -> Result<Option<String>, EngineError> {
        self.model(Some(model_id))?;
        Ok(self.core.backend.assertions(self.id(), model_id)?)
    }
}

/// From this many objects on, list-objects names, sorts and formats them on rayon's threads.
const PARALLEL_LIST: usize = 16_384;

/// The first 8 bytes of `id` as a big-endian number, zero-padded: `sort_key(a) < sort_key(b)`
/// implies `a < b`, and `a < b` implies `sort_key(a) <= sort_key(b)`.
fn sort_key(id: &str) -> u64 {
    let mut prefix = [0u8; 8];
    for (slot, byte) in prefix.iter_mut().zip(id.bytes()) {
        *slot = byte;
    }
    u64::from_be_bytes(prefix)
}

#[cfg(test)]
mod tests {
    use super::sort_key;

    #[test]
    fn sort_keys_agree_with_string_order() {
        let ids = ["", "a", "a\0", "ab", "abcdefgh", "abcdefgh1", "abcdefgh0", "abcdefgi", "b", "d10", "d9", "é"];
        for a in ids {
            for b in ids {
                if sort_key(a) < sort_key(b) {
                    assert!(a < b, "{a:?} {b:?}");
                }
                if a < b {
                    assert!(sort_key(a) <= sort_key(b), "{a:?} {b:?}");
                }
            }
        }
    }
}
