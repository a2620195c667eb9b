//! When the engine checkpoints a store, and how it loads a store at start-up: from its latest
//! checkpoint plus the changelog after it when it has one, else from every tuple row.
//!
//! What it owns: the [`Checkpoints`] service the engine holds ([`Engine::checkpoints`](super::Engine::checkpoints)), and
//! with it the start-up load of a store this process owns, the checkpoint policy
//! ([`Checkpoints::due`]: stores of at least
//! `checkpoint_min_tuples` tuples are checkpointed after a start-up that read every row or
//! replayed a long changelog tail, at the end of `writ import`, and when `writ serve` stops), and
//! the replay of the tail over the checkpoint.
//!
//! **Invariant:** a store loaded from a checkpoint at revision R holds exactly the tuples (with
//! their conditions and expiries) that loading every tuple row gives: the checkpoint's tuples,
//! minus each tuple a changelog entry after R deleted or rewrote, plus the last write of each
//! tuple after R. A checkpoint that cannot be read is ignored with a warning, never trusted.
//! Nodes sharing a datastore write none (their write path keeps no checkpoints).
//! Must not import `api`.

use super::{Core, EngineError, LoadedFrom, StoreData, StoreHandle, StoreRecord, StoreState};
use crate::index::Loader;
use crate::store::{ChangeCursor, ChangeOperation, CheckpointStore, StoreError, StoredTuple, TupleRef};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Changelog entries after a checkpoint beyond which start-up reads every tuple row instead.
const TAIL_LIMIT: usize = 2_000_000;
/// Changelog entries read per page while collecting the tail.
const TAIL_PAGE: usize = 10_000;

/// The net effect of the changelog after a checkpoint, per tuple identity: its last write, or
/// `None` when its last entry deleted it.
#[derive(Default)]
struct Tail {
    latest: FxHashMap<Vec<u8>, Option<StoredTuple>>,
    entries: usize,
}

/// A tuple's identity (everything but condition and expiry) as bytes, into `out`: each part
/// length-prefixed, so no two identities share bytes.
fn identity(out: &mut Vec<u8>, t: TupleRef<'_>) {
    out.clear();
    let subject = [Some(t.subject.subject_type), t.subject.id, t.subject.relation];
    for part in [Some(t.object_type), Some(t.object_id), Some(t.relation)].into_iter().chain(subject) {
        match part {
            Some(part) => {
                out.extend_from_slice(&(part.len() as u64).to_le_bytes());
                out.extend_from_slice(part.as_bytes());
            }
            None => out.extend_from_slice(&u64::MAX.to_le_bytes()),
        }
    }
}

fn insert(loader: &mut Loader<'_>, t: TupleRef<'_>) {
    loader.insert(t.object_type, t.object_id, t.relation, t.subject, t.condition, t.expires_at_ms);
}

/// Checkpointing, a service beside the engine: writes a store's checkpoint, checkpoints the
/// stores that changed, and loads the stores of a backend this process owns at start-up.
pub struct Checkpoints {
    core: Arc<Core>,
}

impl Checkpoints {
    pub(super) fn new(core: Arc<Core>) -> Checkpoints {
        Checkpoints { core }
    }

    /// Loads every store of the backend, checkpointing each that [`Checkpoints::due`] picks
    /// (the next start reads that checkpoint instead of every row; a failure costs only that).
    pub(super) fn load_stores(&self) -> Result<(), EngineError> {
        for record in self.core.backend.list_stores()? {
            let started = std::time::Instant::now();
            let (state, from) = self.load_store(record)?;
            let state = Arc::new(state);
            let (id, due) = (state.record.id.clone(), self.due(&state, from));
            tracing::info!(store = %id, tuples = state.data.read().index.len(), ?from, seconds = started.elapsed().as_secs_f64(), "loaded");
            self.core.stores.insert(id.clone(), state.clone());
            if due {
                let started = std::time::Instant::now();
                let store = StoreHandle { core: &self.core, state, deadline: None };
                match self.checkpoint(&store) {
                    Ok(_) => tracing::info!(store = %id, seconds = started.elapsed().as_secs_f64(), "checkpointed"),
                    Err(error) => tracing::warn!(store = %id, %error, "checkpoint not written"),
                }
            }
        }
        Ok(())
    }

    fn load_store(&self, record: StoreRecord) -> Result<(StoreState, LoadedFrom), EngineError> {
        let (data, from) = self.load_data(&record.id)?;
        Ok((StoreState::new(record, data), from))
    }

    /// A store's data at its current revision, its models compiled and its tuples indexed, and
    /// where the tuples were read from.
    fn load_data(&self, store_id: &str) -> Result<(StoreData, LoadedFrom), EngineError> {
        let models = self.core.backend.models(store_id)?;
        let revision = self.core.backend.revision(store_id)?;
        if let Some(checkpoints) = self.core.backend.checkpoints() {
            match self.load_checkpointed(checkpoints, store_id, &models, revision) {
                Ok(Some(loaded)) => return Ok(loaded),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(store = store_id, %error, "checkpoint not used; reading every tuple row");
                }
            }
        }
        let mut data = StoreData::default();
        data.add_stored_models(store_id, models)?;
        // Expired tuples load too (invisible to reads) until the sweep deletes them, so the
        // changelog records their removal like any other write.
        let mut loader = Loader::new(&mut data.index);
        self.core.backend.scan_tuples(store_id, &mut |t| {
            insert(&mut loader, t);
            Ok(())
        })?;
        loader.finish();
        data.revision = revision;
        Ok((data, LoadedFrom::Rows))
    }

    /// The store loaded from its checkpoint and the changelog after it; `None` when it has no
    /// checkpoint or the tail is too long to be worth replaying.
    fn load_checkpointed(
        &self,
        checkpoints: &dyn CheckpointStore,
        store_id: &str,
        models: &[(String, String)],
        revision: u64,
    ) -> Result<Option<(StoreData, LoadedFrom)>, EngineError> {
        let Some(at) = checkpoints.checkpoint_revision(store_id)? else { return Ok(None) };
        if at > revision {
            return Err(StoreError::Corrupt(format!("checkpoint at revision {at}, past the store's {revision}")).into());
        }
        let Some(tail) = self.tail(store_id, at)? else { return Ok(None) };
        let mut data = StoreData::default();
        data.add_stored_models(store_id, models.to_vec())?;
        let mut loader = Loader::new(&mut data.index);
        let mut key = Vec::new();
        let scanned = checkpoints.scan_checkpoint(store_id, &mut |t| {
            if !tail.latest.is_empty() {
                identity(&mut key, t);
                if tail.latest.contains_key(&key) {
                    return Ok(());
                }
            }
            insert(&mut loader, t);
            Ok(())
        })?;
        if scanned != Some(at) {
            return Err(StoreError::Corrupt(format!("checkpoint moved from revision {at} while loading")).into());
        }
        for stored in tail.latest.values().flatten() {
            insert(&mut loader, TupleRef::of(stored));
        }
        loader.finish();
        data.revision = revision;
        Ok(Some((data, LoadedFrom::Checkpoint { revision: at, tail: tail.entries })))
    }

    /// The changelog after revision `after`, folded per tuple; `None` past [`TAIL_LIMIT`] entries.
    fn tail(&self, store_id: &str, after: u64) -> Result<Option<Tail>, EngineError> {
        let mut tail = Tail::default();
        let mut cursor = Some(ChangeCursor { revision: after, seq: u32::MAX });
        let mut key = Vec::new();
        loop {
            let page = self.core.backend.changes(store_id, cursor, None, TAIL_PAGE)?;
            let Some(last) = page.last() else { return Ok(Some(tail)) };
            cursor = Some(last.cursor);
            tail.entries += page.len();
            if tail.entries > TAIL_LIMIT {
                return Ok(None);
            }
            for change in page {
                identity(&mut key, TupleRef::of(&change.tuple));
                let latest = match change.operation {
                    ChangeOperation::Write => Some(change.tuple),
                    ChangeOperation::Delete => None,
                };
                tail.latest.insert(key.clone(), latest);
            }
        }
    }

    /// The backend's checkpoints when this engine is its only writer. Nodes sharing a database
    /// write none: another node's writes would make a checkpoint stale as it is written.
    fn own_checkpoints(&self) -> Option<&dyn CheckpointStore> {
        self.core.backend.checkpoints().filter(|_| self.core.writes.keeps_checkpoints())
    }

    /// True when a store just loaded should be checkpointed before it serves: it is large
    /// enough, and start-up read every tuple row, or replayed a tail of more than an eighth of
    /// its tuples (and at least `checkpoint_min_tuples` entries).
    fn due(&self, state: &StoreState, from: LoadedFrom) -> bool {
        let min = self.core.config.checkpoint_min_tuples;
        let len = state.data.read().index.len();
        if self.own_checkpoints().is_none() || len < min {
            return false;
        }
        match from {
            LoadedFrom::Rows => true,
            LoadedFrom::Checkpoint { tail, .. } => tail >= min.max(len / 8),
        }
    }

    /// Writes a store's checkpoint at its current revision (durable when this returns); false
    /// when the backend keeps none. It reads one snapshot of the store throughout, so a second
    /// write to the store meanwhile waits for it: call it when writes are quiet (start-up, the
    /// end of an import, shutdown).
    pub fn checkpoint(&self, store: &StoreHandle<'_>) -> Result<bool, EngineError> {
        let Some(checkpoints) = self.own_checkpoints() else { return Ok(false) };
        let store_id = store.id();
        let data = store.state.live()?.data.read();
        let revision = data.revision;
        checkpoints.write_checkpoint(store_id, revision, &mut |sink| {
            let visited =
                data.index.visit_tuples(|object_type, object_id, relation, subject, condition, expires| {
                    sink(TupleRef { object_type, object_id, relation, subject, condition, expires_at_ms: expires })
                })?;
            if visited != data.index.len() {
                return Err(StoreError::Corrupt(format!(
                    "index walk found {visited} of {} tuples; checkpoint not written",
                    data.index.len()
                )));
            }
            Ok(())
        })?;
        Ok(true)
    }

    /// Checkpoints every store of at least `checkpoint_min_tuples` tuples that changed since its
    /// last checkpoint (or has none); answers how many it wrote. `writ serve` calls it when it
    /// stops, `writ import` when it ends.
    pub fn checkpoint_changed(&self) -> Result<usize, EngineError> {
        let Some(checkpoints) = self.own_checkpoints() else { return Ok(0) };
        let mut written = 0;
        for (id, state) in self.core.stores.all() {
            let (len, revision) = {
                let data = state.data.read();
                (data.index.len(), data.revision)
            };
            if len >= self.core.config.checkpoint_min_tuples
                && checkpoints.checkpoint_revision(&id)? != Some(revision)
                && self.checkpoint(&StoreHandle { core: &self.core, state, deadline: None })?
            {
                written += 1;
            }
        }
        Ok(written)
    }
}
