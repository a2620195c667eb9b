//! Bulk loading (issue 34, item 3): many tuples into a store at once, checked against its model
//! as a write is, but indexed the way start-up indexes a store (`index::Loader`) and published as
//! one new copy of the store's data, so the load neither applies tuple by tuple nor keeps the
//! second index copy that concurrent writes need (see `engine/snapshot.rs`).
//!
//! What it owns: [`StoreHandle::load`]. An embedder pairs it with the index-only in-memory engine
//! ([`Engine::in_memory_index_only`](super::Engine::in_memory_index_only)), whose backend keeps no
//! copy of the tuples, so the store costs what its index costs.
//!
//! **Invariant:** a load answers and leaves the store exactly as one write of the same tuples
//! would (same validation and errors, one new revision, the same changelog entries), with no
//! limit on how many tuples it takes; only the index is built differently, and the index
//! invariant (a pure function of the tuple set) makes the two equal.
//! Must not import `api`; it reaches the backend only through the engine's `Core`.

use super::{find_model, EngineError, StoreData, StoreHandle, WriteRequest};
use crate::index::Loader;
use crate::store::WriteBatch;
use crate::tuple::StoredTuple;

impl StoreHandle<'_> {
    /// Adds `tuples` to the store as one write (one new revision, returned), checked against the
    /// store's newest model as [`StoreHandle::write`] checks them: a tuple the model does not
    /// admit, one named twice, one the store already holds or one already expired fails the
    /// whole load with the error that write gives, and nothing is stored. Unlike a write it
    /// takes any number of tuples, indexes them in one pass, and afterwards keeps one copy of
    /// the store's index until the next write (which makes the second, once).
    ///
    /// On a datastore shared with other nodes it is one ordinary write without the size limit.
    pub fn load(&self, tuples: Vec<StoredTuple>) -> Result<u64, EngineError> {
        for stored in &tuples {
            self.core.config.input.tuple(&stored.tuple)?;
        }
        let request = WriteRequest { writes: tuples, ..WriteRequest::default() };
        if self.core.backend.is_shared() {
            return self.core.writes.write(self.core, &self.state, request);
        }
        let _writer = self.state.lock_writer()?;
        let now = (self.core.clock)();
        let (mut data, writes) = {
            let live = self.state.data.read();
            let version = find_model(&live, self.id(), None)?;
            let (writes, _) = self.core.plan_write(&live.index, &version.model, request, now)?;
            if writes.is_empty() {
                return Ok(live.revision);
            }
            (StoreData::clone(&live), writes)
        };
        data.revision = self.core.backend.write(self.id(), &WriteBatch::new(&[], &writes, now))?;
        let mut loader = Loader::new(&mut data.index);
        for stored in writes {
            let tuple = &stored.tuple;
            loader.insert(
                &tuple.object.object_type,
                &tuple.object.id,
                &tuple.relation,
                tuple.subject.text(),
                tuple.condition.as_ref(),
                stored.expires_at_ms,
            );
        }
        loader.finish();
        let revision = data.revision;
        self.state.data.replace(data);
        let _announce = self.state.revision_lock.lock();
        self.state.revision_changed.notify_all();
        Ok(revision)
    }
}
