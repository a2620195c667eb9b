//! The write path: how a planned write reaches the backend and the index, chosen once when the
//! engine opens. [`LocalWrites`] serves a backend only this process writes; `follow::Follow`
//! serves a datastore shared with other nodes (PostgreSQL scale-out). Everything that differs
//! between the two (committing a write, adding a model, sweeping expired tuples, finding a store
//! created elsewhere, guarding the store list, checkpointing, catching up) is a method of
//! [`WritePath`], so no caller asks which backend it has.
//!
//! It also owns what both paths share: planning a write against one snapshot
//! ([`Core::plan_write`]) and checking a tuple against the model ([`validate_tuple`]).
//!
//! **Invariant:** a store's index changes only under its `writer` lock, and only after the
//! backend has made the change durable; a write to a store whose handle outlived its deletion
//! answers [`EngineError::StoreNotFound`] and reaches neither.
//! Must not import `api`; it reaches the backend only through the [`TupleStore`] trait.
//!
//! [`TupleStore`]: crate::store::TupleStore

use super::{find_model, Core, EngineError, IndexChange, ModelVersion, StoreState, WriteRequest, EXPIRY_SWEEP_ACTOR};
use crate::eval::CompiledModel;
use crate::index::Index;
use crate::model::Model;
use crate::store::WriteBatch;
use crate::tuple::{StoredTuple, Subject, Tuple};
use std::sync::Arc;

/// What differs between a backend this process owns and one it shares with other nodes.
pub(super) trait WritePath: Send + Sync {
    /// A store the engine's list lacks but the backend has (created on another node a moment
    /// ago), loaded and added to the list; `None` when no other node writes the backend.
    fn find_store(&self, store_id: &str) -> Option<Arc<StoreState>>;

    /// Held while the engine changes its store list (create, delete), so a follower's sync of
    /// the list never races them; `None` when nothing else changes it.
    fn lock_membership(&self) -> Option<parking_lot::MutexGuard<'_, ()>>;

    /// Brings the store's model list in line after `backend.write_model` stored `model` as `id`.
    /// The caller holds the store's writer lock.
    fn add_model(&self, core: &Core, state: &StoreState, id: String, model: Model) -> Result<(), EngineError>;

    /// Plans and commits a write (already checked against the input limits); the new revision.
    fn write(&self, core: &Core, state: &StoreState, request: WriteRequest) -> Result<u64, EngineError>;

    /// Deletes the store's expired tuples; the last revision written, `None` when none was.
    fn sweep_expired(&self, core: &Core, state: &StoreState) -> Result<Option<u64>, EngineError>;

    /// Whether this engine may write checkpoints: only when it is the backend's only writer
    /// (another node's writes would make a checkpoint stale as it is written).
    fn keeps_checkpoints(&self) -> bool;

    /// True once the node has caught up with the revisions the backend had when it started.
    fn caught_up(&self) -> bool;

    /// Catches every store up with the backend now.
    fn catch_up(&self) -> Result<(), EngineError>;
}

/// The write path over a backend only this process writes.
pub(super) struct LocalWrites;

impl WritePath for LocalWrites {
    fn find_store(&self, _store_id: &str) -> Option<Arc<StoreState>> {
        None
    }

    fn lock_membership(&self) -> Option<parking_lot::MutexGuard<'_, ()>> {
        None
    }

    fn add_model(&self, _core: &Core, state: &StoreState, id: String, model: Model) -> Result<(), EngineError> {
        let model = Arc::new(model);
        state.data.write(move |data| {
            let compiled = CompiledModel::compile(&model, &mut data.index);
            data.models.push(ModelVersion { id: id.clone(), model: model.clone(), compiled: Arc::new(compiled) });
        });
        Ok(())
    }

    fn write(&self, core: &Core, state: &StoreState, request: WriteRequest) -> Result<u64, EngineError> {
        let store_id = state.record.id.as_str();
        let actor = request.actor.clone();
        let _writer = state.lock_writer()?;
        let now = (core.clock)();
        let (writes, deletes) = {
            let data = state.data.read();
            let version = find_model(&data, store_id, request.model_id.as_deref())?;
            core.plan_write(&data.index, &version.model, request, now)?
        };
        if writes.is_empty() && deletes.is_empty() {
            return Ok(state.data.read().revision);
        }
        let delete_records: Vec<StoredTuple> = deletes.iter().cloned().map(StoredTuple::new).collect();
        let batch = WriteBatch::new(&delete_records, &writes, (core.clock)()).by(actor.as_deref());
        let revision = core.backend.write(store_id, &batch)?;
        let changes = deletes.into_iter().map(IndexChange::Remove).chain(writes.into_iter().map(IndexChange::Insert));
        state.apply(changes.collect(), revision);
        Ok(revision)
    }

    fn sweep_expired(&self, core: &Core, state: &StoreState) -> Result<Option<u64>, EngineError> {
        let store_id = state.record.id.as_str();
        let _writer = state.lock_writer()?;
        let now = (core.clock)();
        let mut expired = state.data.read().index.expired_tuples(now);
        if expired.is_empty() {
            return Ok(None);
        }
        expired.sort_by_cached_key(|(tuple, _)| tuple.to_string());
        let deletes: Vec<StoredTuple> =
            expired.into_iter().map(|(tuple, at)| StoredTuple { tuple, expires_at_ms: Some(at) }).collect();
        let mut revision = None;
        for chunk in deletes.chunks(core.config.max_tuples_per_write.max(1)) {
            let next = core.backend.write(store_id, &WriteBatch::new(chunk, &[], now).by(Some(EXPIRY_SWEEP_ACTOR)))?;
            state.apply(chunk.iter().map(|stored| IndexChange::Remove(stored.tuple.clone())).collect(), next);
            revision = Some(next);
        }
        Ok(revision)
    }

    fn keeps_checkpoints(&self) -> bool {
        true
    }

    fn caught_up(&self) -> bool {
        true
    }

    fn catch_up(&self) -> Result<(), EngineError> {
        Ok(())
    }
}

impl Core {
    /// The tuples a write adds and removes, checked against `model` and the index at `now_ms`.
    pub(super) fn plan_write(
        &self,
        index: &Index,
        model: &Model,
        request: WriteRequest,
        now_ms: i64,
    ) -> Result<(Vec<StoredTuple>, Vec<Tuple>), EngineError> {
        // A held tuple that has expired is absent to writes as to reads: writing it again
        // replaces it (with its new condition and expiry); deleting it is deleting a missing tuple.
        let live = |tuple: &Tuple| {
            index.contains(tuple) && !index.expiry(tuple).is_some_and(|at| crate::index::expired(at, now_ms))
        };
        // By identity (object, relation, subject), without formatting each tuple.
        let total = request.writes.len() + request.deletes.len();
        let mut seen = rustc_hash::FxHashSet::with_capacity_and_hasher(total, Default::default());
        for tuple in request.writes.iter().map(|w| &w.tuple).chain(&request.deletes) {
            if !seen.insert(tuple.identity()) {
                return Err(EngineError::DuplicateInRequest(tuple.to_string()));
            }
        }
        drop(seen);
        let mut writes = Vec::with_capacity(request.writes.len());
        for stored in request.writes {
            validate_tuple(model, &stored.tuple)
                .map_err(|reason| EngineError::InvalidTuple { tuple: stored.tuple.to_string(), reason })?;
            if let Some(at) = stored.expires_at_ms.filter(|&at| crate::index::expired(at, now_ms)) {
                return Err(EngineError::InvalidTuple {
                    tuple: stored.tuple.to_string(),
                    reason: format!(
                        "`expires_at` ({at} ms since the Unix epoch) is not after the engine's current time ({now_ms} ms)"
                    ),
                });
            }
            if live(&stored.tuple) {
                if request.ignore_duplicates {
                    continue;
                }
                return Err(EngineError::WriteConflict(format!(
                    "cannot write a tuple which already exists: `{}`",
                    stored.tuple
                )));
            }
            writes.push(stored);
        }
        let mut deletes = Vec::with_capacity(request.deletes.len());
        for tuple in request.deletes {
            if !live(&tuple) {
                if request.ignore_missing {
                    continue;
                }
                return Err(EngineError::WriteConflict(format!(
                    "cannot delete a tuple which does not exist: `{tuple}`"
                )));
            }
            deletes.push(tuple);
        }
        Ok((writes, deletes))
    }
}

pub(super) fn validate_tuple(model: &Model, tuple: &Tuple) -> Result<(), String> {
    let object_type = &tuple.object.object_type;
    let type_def = model.type_def(object_type).ok_or_else(|| format!("type `{object_type}` not found"))?;
    let relation = type_def
        .relation(&tuple.relation)
        .ok_or_else(|| format!("relation `{object_type}#{}` not found", tuple.relation))?;
    let subject_type = tuple.subject.subject_type();
    if model.type_def(subject_type).is_none() {
        return Err(format!("type `{subject_type}` not found"));
    }
    if let Subject::Userset { object, relation: user_relation } = &tuple.subject {
        if model.relation(&object.object_type, user_relation).is_none() {
            return Err(format!("relation `{}#{user_relation}` not found", object.object_type));
        }
    }
    if let Some(condition) = &tuple.condition {
        if model.condition(&condition.name).is_none() {
            return Err(format!("condition `{}` is not defined in the model", condition.name));
        }
    }
    let condition_name = tuple.condition.as_ref().map(|c| c.name.as_str());
    let admitted = relation.directly_related.iter().any(|restriction| {
        restriction.type_name == subject_type
            && restriction.relation.as_deref() == tuple.subject.relation()
            && restriction.wildcard == matches!(tuple.subject, Subject::Wildcard(_))
            && restriction.condition.as_deref() == condition_name
    });
    if admitted {
        Ok(())
    } else {
        Err(format!(
            "type `{subject_type}` is not an allowed type restriction for `{object_type}#{}`{}",
            tuple.relation,
            condition_name.map(|c| format!(" with condition `{c}`")).unwrap_or_default()
        ))
    }
}
