//! Following a shared datastore: the engine's write path when its backend [`is_shared`] (several
//! Writ nodes over one PostgreSQL database), so each node's in-memory indexes track the changes
//! every node makes.
//!
//! What it owns:
//! - **Start.** Each store loads as: revision `R0`, then models and tuples, then revision `R1`.
//!   The index starts labelled `R0`; the changelog after `R0` is then applied on top. Applying
//!   a change is idempotent (a write sets a tuple, a delete removes it), so for every tuple the
//!   last change in `(R0, R1]` wins whatever moment between `R0` and `R1` the tuple read saw:
//!   once the changelog is applied through `R1` the index equals the backend at `R1`.
//!   [`Engine::caught_up`](super::Engine::caught_up) is false until every store has reached the `R1` it saw at start.
//! - **Following.** A thread loops: wait for the backend's change notice (bounded by
//!   [`POLL_INTERVAL`], the polling fallback), then catch up every store: the store list
//!   (stores created or deleted elsewhere), each store's models, and its changelog in revision
//!   order, a revision only whole. It holds only a `Weak` to the engine's shared state and ends
//!   within one poll interval after the engine is dropped.
//! - **Writes.** A write plans against the index at revision `R` and commits with
//!   [`TupleStore::write`] planned at `R` ([`WriteBatch::planned`]): the backend takes it unless
//!   a write after `R` changed one of the tuples the request names (or the store ran far ahead).
//!   Then it catches up and plans again (at most [`WRITE_ATTEMPTS`] times). Writes of other
//!   tuples on other nodes never send it back, so a fast writer elsewhere cannot starve it. A
//!   plan that fails (a conflict, an unknown type) or that writes nothing is trusted only once a
//!   catch-up finds nothing new.
//!
//! **Invariant:** a store's index is changed only under its `writer` lock, and only by whole
//! revisions in increasing order, so `revision` always names a state the backend had (modulo the
//! start-up replay above, which only ever shows newer tuples than its label).
//! Must not import `api`; it reaches the backend only through the [`TupleStore`] trait.
//!
//! [`is_shared`]: TupleStore::is_shared

use super::snapshot::StoreMap;
use super::write::WritePath;
use super::{
    find_model, parse_stored_model, Core, EngineError, IndexChange, ModelVersion, StoreData, StoreState, WriteRequest,
    EXPIRY_SWEEP_ACTOR,
};
use crate::eval::CompiledModel;
use crate::model::Model;
use crate::store::{
    ChangeCursor, ChangeOperation, PlannedAt, StoreError, StoreRecord, StoredTuple, TupleStore, WriteBatch,
};
use crate::tuple::Tuple;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Longest the follower waits for a change notice before it looks anyway.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Most times a write plans again after other nodes moved its store first.
pub const WRITE_ATTEMPTS: usize = 32;

/// Changelog entries read per query while catching up (doubled while one revision is larger).
const CHANGE_BATCH: usize = 1000;

/// The cursor after every entry of `revision`. A write holds far fewer than 2^31 entries, and
/// `i32::MAX` fits every backend's column type.
fn after_revision(revision: u64) -> Option<ChangeCursor> {
    (revision > 0).then_some(ChangeCursor { revision, seq: i32::MAX as u32 })
}

/// The follower's state, owned by the engine (its thread holds only a `Weak`).
pub(super) struct Follow {
    core: Arc<FollowCore>,
}

struct FollowCore {
    backend: Arc<dyn TupleStore>,
    stores: StoreMap,
    /// Serializes changes to the store list (create, delete, and the follower's sync).
    membership: Mutex<()>,
    /// The revision each store had when the node started, until it is reached.
    start_targets: Mutex<FxHashMap<String, u64>>,
    /// Whether the last catch-up pass failed (to log once per outage, not once per poll).
    failing: AtomicBool,
}

impl Follow {
    /// Loads every store of a shared backend into `stores` and starts the follower thread.
    pub(super) fn start(backend: &Arc<dyn TupleStore>, stores: &StoreMap) -> Result<Follow, EngineError> {
        let core = Arc::new(FollowCore {
            backend: backend.clone(),
            stores: stores.clone(),
            membership: Mutex::new(()),
            start_targets: Mutex::new(FxHashMap::default()),
            failing: AtomicBool::new(false),
        });
        for record in backend.list_stores()? {
            let id = record.id.clone();
            match load_store(backend.as_ref(), record) {
                Ok((state, target)) => {
                    core.start_targets.lock().insert(id.clone(), target);
                    stores.insert(id, Arc::new(state));
                }
                // Deleted by another node since the listing.
                Err(EngineError::Store(StoreError::StoreNotFound(_))) => {}
                Err(error) => return Err(error),
            }
        }
        let weak = Arc::downgrade(&core);
        let waiter = backend.clone();
        std::thread::Builder::new()
            .name("writ-follow".into())
            .spawn(move || follow_loop(&weak, waiter.as_ref()))
            .map_err(|e| StoreError::Io(format!("cannot start the changelog follower: {e}")))?;
        Ok(Follow { core })
    }

    /// True once every store has reached the revision it had when the node started.
    pub(super) fn caught_up(&self) -> bool {
        let mut targets = self.core.start_targets.lock();
        let stores = &self.core.stores;
        targets.retain(|id, target| stores.get(id).is_some_and(|state| state.data.read().revision < *target));
        targets.is_empty()
    }

    /// Holds the store list still (create and delete take it, so the follower's sync never
    /// races them).
    pub(super) fn lock_membership(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.core.membership.lock()
    }

    /// A store this node does not know yet but the backend has (created on another node a
    /// moment ago): loads it, catches it up, and adds it.
    pub(super) fn find_store(&self, store_id: &str) -> Option<Arc<StoreState>> {
        let core = &self.core;
        let _membership = core.membership.lock();
        if let Some(state) = core.stores.get(store_id) {
            return Some(state.clone());
        }
        let record = core.backend.get_store(store_id).ok()??;
        let (state, _) = load_store(core.backend.as_ref(), record).ok()?;
        let state = Arc::new(state);
        {
            let _writer = state.writer.lock();
            catch_up(core.backend.as_ref(), &state).ok()?;
        }
        core.stores.insert(store_id.to_string(), state.clone());
        Some(state)
    }

    /// Brings a store's models in line with the backend's (caller holds the store's writer lock).
    pub(super) fn sync_models(&self, state: &StoreState) -> Result<bool, EngineError> {
        sync_models(self.core.backend.as_ref(), state)
    }

    /// Catches up every store now (the follower thread's pass, callable directly).
    pub(super) fn catch_up_all(&self) -> Result<(), EngineError> {
        self.core.catch_up_all()
    }
}

fn follow_loop(core: &Weak<FollowCore>, backend: &dyn TupleStore) {
    // The first pass (the catch-up after start) waits for nothing.
    let mut wait = Duration::ZERO;
    loop {
        backend.wait_for_change(wait);
        wait = POLL_INTERVAL;
        let Some(core) = core.upgrade() else { return };
        match core.catch_up_all() {
            Ok(()) => {
                if core.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("changelog follower reaches the datastore again");
                }
            }
            Err(error) => {
                if !core.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "changelog follower cannot catch up; retrying every poll");
                }
            }
        }
    }
}

impl FollowCore {
    fn catch_up_all(&self) -> Result<(), EngineError> {
        self.sync_store_list()?;
        let states: Vec<(String, Arc<StoreState>)> = self.stores.all();
        for (id, state) in states {
            let _writer = state.writer.lock();
            let result =
                sync_models(self.backend.as_ref(), &state).and_then(|_| catch_up(self.backend.as_ref(), &state));
            match result {
                Ok(_) => {}
                Err(EngineError::Store(StoreError::StoreNotFound(_))) => self.forget_store(&id),
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// Adds the stores other nodes created and drops the ones they deleted.
    fn sync_store_list(&self) -> Result<(), EngineError> {
        let _membership = self.membership.lock();
        let records = self.backend.list_stores()?;
        let live: std::collections::HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let known: Vec<String> = self.stores.ids();
        for id in known.iter().filter(|id| !live.contains(id.as_str())) {
            // Listed before it was created here? Ask again before dropping it.
            if self.backend.get_store(id)?.is_none() {
                self.stores.remove(id);
            }
        }
        for record in records {
            if self.stores.get(&record.id).is_some() {
                continue;
            }
            let id = record.id.clone();
            match load_store(self.backend.as_ref(), record) {
                Ok((state, _)) => {
                    self.stores.insert(id, Arc::new(state));
                }
                Err(EngineError::Store(StoreError::StoreNotFound(_))) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    fn forget_store(&self, store_id: &str) {
        let _membership = self.membership.lock();
        if matches!(self.backend.get_store(store_id), Ok(None)) {
            self.stores.remove(store_id);
        }
    }
}

/// Loads a store from a shared backend: the state labelled with the revision read before the
/// tuples, and the revision read after them (to reach before the node counts as caught up).
fn load_store(backend: &dyn TupleStore, record: StoreRecord) -> Result<(StoreState, u64), EngineError> {
    let start = backend.revision(&record.id)?;
    let mut data = StoreData::default();
    data.add_stored_models(&record.id, backend.models(&record.id)?)?;
    for stored in backend.tuples(&record.id)? {
        data.index.insert_expiring(&stored.tuple, stored.expires_at_ms);
    }
    data.revision = start;
    let target = backend.revision(&record.id)?;
    Ok((StoreState::new(record, data), target))
}

/// Makes a store's model list equal the backend's (same ids, same order), compiling only the
/// new ones; true when it changed. The caller holds the writer lock.
fn sync_models(backend: &dyn TupleStore, state: &StoreState) -> Result<bool, EngineError> {
    let store_id = &state.record.id;
    let stored = backend.models(store_id)?;
    let mut wanted = Vec::with_capacity(stored.len());
    {
        let data = state.data.read();
        if data.models.len() == stored.len() && data.models.iter().zip(&stored).all(|(m, (id, _))| m.id == *id) {
            return Ok(false);
        }
        for (id, json) in stored {
            let model = match data.models.iter().find(|m| m.id == id) {
                Some(known) => known.model.clone(),
                None => Arc::new(parse_stored_model(store_id, &id, &json)?),
            };
            wanted.push((id, model));
        }
    }
    state.data.write(move |data| {
        let mut models = Vec::with_capacity(wanted.len());
        for (id, model) in &wanted {
            if let Some(known) = data.models.iter().find(|m| m.id == *id) {
                models.push(known.clone());
                continue;
            }
            let compiled = CompiledModel::compile(model, &mut data.index);
            models.push(ModelVersion { id: id.clone(), model: model.clone(), compiled: Arc::new(compiled) });
        }
        data.models = models;
    });
    Ok(true)
}

/// Applies the backend's changelog after the store's revision, whole revisions in order, and
/// wakes revision waiters; true when the revision moved. The caller holds the writer lock.
fn catch_up(backend: &dyn TupleStore, state: &StoreState) -> Result<bool, EngineError> {
    let store_id = &state.record.id;
    let mut limit = CHANGE_BATCH;
    let mut moved = false;
    loop {
        let revision = state.data.read().revision;
        let batch = backend.changes(store_id, after_revision(revision), None, limit)?;
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else { break };
        let (first_revision, last_revision) = (first.cursor.revision, last.cursor.revision);
        let complete = batch.len() < limit;
        // A full batch may end inside a revision: apply only the revisions before its last.
        let through = if complete {
            last_revision
        } else if first_revision == last_revision {
            limit = limit.saturating_mul(2);
            continue;
        } else {
            last_revision - 1
        };
        let changes =
            batch.into_iter().take_while(|r| r.cursor.revision <= through).map(|record| match record.operation {
                ChangeOperation::Write => IndexChange::Insert(record.tuple),
                ChangeOperation::Delete => IndexChange::Remove(record.tuple.tuple),
            });
        state.apply(changes.collect(), through);
        moved = true;
        if complete {
            break;
        }
    }
    Ok(moved)
}

/// Records a committed write of this node: applied directly when it directly follows the
/// index's revision (the conditional write guarantees nothing came between), else through the
/// changelog.
fn apply_own_write(
    backend: &dyn TupleStore,
    state: &StoreState,
    expected: u64,
    revision: u64,
    deletes: &[StoredTuple],
    writes: &[StoredTuple],
) -> Result<(), EngineError> {
    if revision != expected + 1 {
        catch_up(backend, state)?;
        return Ok(());
    }
    let changes = deletes.iter().map(|stored| IndexChange::Remove(stored.tuple.clone()));
    state.apply(changes.chain(writes.iter().cloned().map(IndexChange::Insert)).collect(), revision);
    Ok(())
}

impl WritePath for Follow {
    fn find_store(&self, store_id: &str) -> Option<Arc<StoreState>> {
        Follow::find_store(self, store_id)
    }

    fn lock_membership(&self) -> Option<parking_lot::MutexGuard<'_, ()>> {
        Some(Follow::lock_membership(self))
    }

    /// Other nodes write models too: the store takes the backend's list, in the backend's order.
    fn add_model(&self, _core: &Core, state: &StoreState, _id: String, _model: Model) -> Result<(), EngineError> {
        self.sync_models(state).map(drop)
    }

    fn keeps_checkpoints(&self) -> bool {
        false
    }

    fn caught_up(&self) -> bool {
        Follow::caught_up(self)
    }

    fn catch_up(&self) -> Result<(), EngineError> {
        self.catch_up_all()
    }

    /// A write over a shared backend (see the module docs); the request is checked against the
    /// input limits already.
    fn write(&self, core: &Core, state: &StoreState, request: WriteRequest) -> Result<u64, EngineError> {
        let backend = core.backend.as_ref();
        let store_id = state.record.id.as_str();
        let _writer = state.lock_writer()?;
        // A plan reads the state of every tuple the request names, skipped ones included.
        let read: Vec<Tuple> =
            request.writes.iter().map(|stored| stored.tuple.clone()).chain(request.deletes.iter().cloned()).collect();
        let mut last_moved = None;
        for _ in 0..WRITE_ATTEMPTS {
            let now = (core.clock)();
            let (expected, plan) = {
                let data = state.data.read();
                let plan = find_model(&data, store_id, request.model_id.as_deref())
                    .and_then(|version| core.plan_write(&data.index, &version.model, request.clone(), now));
                (data.revision, plan)
            };
            let (writes, deletes) = match plan {
                Ok((writes, deletes)) if !(writes.is_empty() && deletes.is_empty()) => (writes, deletes),
                outcome => {
                    // A refusal or a no-op stands only if this node was current when it planned.
                    let models_changed = self.sync_models(state)?;
                    if catch_up(backend, state)? || models_changed {
                        continue;
                    }
                    return outcome.map(|_| expected);
                }
            };
            let deletes: Vec<StoredTuple> = deletes.into_iter().map(StoredTuple::new).collect();
            let planned = PlannedAt { revision: expected, read: &read };
            let batch =
                WriteBatch::new(&deletes, &writes, (core.clock)()).by(request.actor.as_deref()).planned_at(planned);
            match backend.write(store_id, &batch) {
                Ok(revision) => {
                    apply_own_write(backend, state, expected, revision, &deletes, &writes)?;
                    return Ok(revision);
                }
                Err(moved @ StoreError::RevisionMoved { .. }) => {
                    last_moved = Some(moved);
                    catch_up(backend, state)?;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(EngineError::Store(
            last_moved
                .unwrap_or_else(|| StoreError::Io(format!("write to store `{store_id}` kept meeting newer revisions"))),
        ))
    }

    /// Catches up, then deletes what has expired with conditional writes; when another node
    /// moved the store first (often its own sweep), it stops and leaves the rest to the next round.
    fn sweep_expired(&self, core: &Core, state: &StoreState) -> Result<Option<u64>, EngineError> {
        let backend = core.backend.as_ref();
        let store_id = state.record.id.as_str();
        let _writer = state.lock_writer()?;
        catch_up(backend, state)?;
        let now = (core.clock)();
        let mut expired = state.data.read().index.expired_tuples(now);
        expired.sort_by_cached_key(|(tuple, _)| tuple.to_string());
        let deletes: Vec<StoredTuple> =
            expired.into_iter().map(|(tuple, at)| StoredTuple { tuple, expires_at_ms: Some(at) }).collect();
        let mut revision = None;
        for chunk in deletes.chunks(core.config.max_tuples_per_write.max(1)) {
            let expected = state.data.read().revision;
            let batch =
                WriteBatch::new(chunk, &[], now).by(Some(EXPIRY_SWEEP_ACTOR)).planned_at(PlannedAt::revision(expected));
            match backend.write(store_id, &batch) {
                Ok(next) => {
                    apply_own_write(backend, state, expected, next, chunk, &[])?;
                    revision = Some(next);
                }
                Err(StoreError::RevisionMoved { .. }) => {
                    catch_up(backend, state)?;
                    break;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Ok(revision)
    }
}
