//! The store layer: the durable source of truth for stores (tenants), model versions, tuples,
//! the changelog and assertions, behind one trait, [`TupleStore`], with two backends:
//! [`MemoryStore`] (tests, ephemeral servers) and `SledStore` (on disk), plus `PostgresStore`
//! (a database shared by several Writ nodes; each mutation is one acknowledged transaction). The
//! last two come with the `sled` and `postgres` features (both part of `server`).
//!
//! Invariants:
//! - A store's revision starts at 0 and every successful [`TupleStore::write`] raises it by exactly
//!   1; writes to one store are serialized, so revisions are never lost or reordered.
//! - Each write appends one changelog entry per tuple (deletes first, then writes) at cursors
//!   `(revision, 0..n)`; the changelog is append-only and ordered by cursor.
//! - A deleted store is gone from every read: its record, tuples, changelog, models and assertions.
//! - Every current tuple remembers the timestamp of the write that stored it (see
//!   [`TupleStore::written_at`]); rewriting a tuple in a later write moves its time forward.
//! - The store never interprets its inputs: model and assertion JSON are opaque text, conditions
//!   and expiry times are stored and returned as given (the engine evaluates them).
//!
//! Durability guarantee of `SledStore::write` (and, in spirit, of every mutating call):
//! 1. The caller's request is turned into ONE sled batch on ONE tree: tuple removals, tuple
//!    inserts, the changelog rows with their rows by object type (which serve a feed filtered by
//!    type), and the new revision counter.
//! 2. The batch is applied atomically under the store's write mutex, so a crash leaves the whole
//!    write present or wholly absent, and no other write to that store interleaves.
//! 3. `Db::flush` (an fsync of sled's log) completes before the call returns.
//! 4. Only then is the new revision returned: an acknowledged write survives `kill -9`; nothing
//!    acknowledged sits in a buffer. If the flush fails the call returns [`StoreError::Io`] and the
//!    write may or may not have survived, but never partially.
//!
//! Checkpoints (sled only; layout in `checkpoint`) pack every tuple of a store at one revision
//! into a few large rows, so start-up reads them and replays the changelog after them instead of
//! reading one row per tuple. They are a cache of the tuple rows, never their replacement: a
//! store without a usable checkpoint loads from its rows, and a write never waits for one.
//!
//! The decision log is kept apart (a separate sled tree; its own map in memory) and is
//! best-effort: appended in batches by the engine's background recorder, flushed per batch,
//! trimmed by count and age. A deleted store's decisions go with it.
//!
//! Approvals ([`ApprovalStore`]) are kept apart too (a sled `approvals` tree, a PostgreSQL
//! table, a map in memory), each written durably when it changes; a change is a compare and
//! swap of the whole record, so two nodes never both take an approval's last use. A deleted
//! store's approvals go with it.
//!
//! Store, model and assertion writes follow steps 2–4 with their own single-key or batched
//! updates. Reads take no write lock; they see every acknowledged write but are not snapshots
//! across a concurrent write (the engine reads tuples only to rebuild its index at start).
//!
//! Must not import `model`, `index`, `eval`, `engine` or `api`; only `crate::tuple` and
//! `crate::record` (the records it keeps, which it re-exports).

#[cfg(feature = "sled")]
mod approval;
#[cfg(feature = "sled")]
mod checkpoint;
#[cfg(feature = "sled")]
mod codec;
#[cfg(feature = "sled")]
mod decision;
mod error;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sled")]
mod sled_store;

pub use crate::record::{
    ApprovalRecord, ChangeCursor, ChangeOperation, ChangeRecord, DecisionCursor, DecisionFilter, DecisionRecord,
};
pub use crate::tuple::StoredTuple;
pub use error::StoreError;
pub use memory::{ChangelogRetention, MemoryStore};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, CHANGE_CHANNEL};
#[cfg(feature = "sled")]
pub use sled_store::SledStore;

use crate::tuple::{SubjectText, Tuple, TupleCondition};

/// Which changelog entries [`TupleStore::change_page`] returns.
#[derive(Debug, Clone, Copy)]
pub struct ChangeQuery<'a> {
    /// Only entries with (revision, seq) strictly after this cursor (None = from the start).
    pub after: Option<ChangeCursor>,
    /// Only entries whose object type equals this one, when given.
    pub object_type: Option<&'a str>,
    /// At most this many entries.
    pub limit: usize,
}

/// A page of decision records with their cursors, newest first.
pub type DecisionPage = Vec<(DecisionCursor, DecisionRecord)>;

/// A store (tenant) as OpenFGA describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRecord {
    /// The store's id (a ULID, so ordering by id is creation order).
    pub id: String,
    /// Human name.
    pub name: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: i64,
    /// Last update time, milliseconds since the Unix epoch.
    pub updated_at_ms: i64,
}

/// A current tuple as [`TupleStore::scan_tuples`] reads it, borrowing its names.
#[derive(Debug, Clone, Copy)]
pub struct TupleRef<'a> {
    /// The object's type.
    pub object_type: &'a str,
    /// The object's id.
    pub object_id: &'a str,
    /// The relation.
    pub relation: &'a str,
    /// The subject (`type:id`, `type:*` or `type:id#relation`), split.
    pub subject: SubjectText<'a>,
    /// The tuple's condition, if any.
    pub condition: Option<&'a TupleCondition>,
    /// When the tuple stops counting; `None` = never.
    pub expires_at_ms: Option<i64>,
}

impl<'a> TupleRef<'a> {
    /// The borrowed form of a stored tuple.
    pub fn of(stored: &'a StoredTuple) -> Self {
        let t = &stored.tuple;
        let subject = t.subject.text();
        TupleRef {
            object_type: &t.object.object_type,
            object_id: &t.object.id,
            relation: &t.relation,
            subject,
            condition: t.condition.as_ref(),
            expires_at_ms: stored.expires_at_ms,
        }
    }
}

/// Most revisions a conditional write ([`WriteBatch::planned`]) may trail its store by and still
/// be checked tuple by tuple; further behind, it is refused outright (the writer catches up and
/// plans again), so the check under the store's lock reads a bounded stretch of the changelog.
pub const MAX_PLAN_LAG: u64 = 256;

/// Whether a write planned at `planned` cannot be checked tuple by tuple at `current`: the store
/// is past [`MAX_PLAN_LAG`] revisions ahead, or behind the plan (deleted and created anew).
pub(crate) fn out_of_reach(planned: u64, current: u64) -> bool {
    current < planned || current - planned > MAX_PLAN_LAG
}

/// What a conditional write ([`WriteBatch::planned`]) was planned against: the store at
/// `revision`, reading the state of the tuples it writes and deletes and of those in `read`.
#[derive(Debug, Clone, Copy)]
pub struct PlannedAt<'a> {
    /// The revision of the state the write was planned against.
    pub revision: u64,
    /// Tuples whose state the plan read but which it does not change (a duplicate skipped with
    /// `ignore_duplicates`, a missing delete skipped with `ignore_missing`).
    pub read: &'a [Tuple],
}

impl PlannedAt<'static> {
    /// A plan that read only the tuples it writes and deletes.
    pub fn revision(revision: u64) -> Self {
        Self { revision, read: &[] }
    }
}

impl PlannedAt<'_> {
    /// Whether the plan still holds at `current`, given the changelog after [`Self::revision`]
    /// (`changes`, every entry through `current`): no entry names a tuple the plan read. The
    /// store is refused as moved when it is more than [`MAX_PLAN_LAG`] revisions ahead.
    pub(crate) fn check(
        &self,
        store_id: &str,
        current: u64,
        deletes: &[StoredTuple],
        writes: &[StoredTuple],
        changes: impl FnOnce() -> Result<Vec<ChangeRecord>, StoreError>,
    ) -> Result<(), StoreError> {
        if current == self.revision {
            return Ok(());
        }
        let moved = || StoreError::RevisionMoved { store_id: store_id.to_string(), expected: self.revision, current };
        if out_of_reach(self.revision, current) {
            return Err(moved());
        }
        let planned: std::collections::HashSet<_> =
            self.read.iter().chain(deletes.iter().chain(writes).map(|t| &t.tuple)).map(Tuple::key).collect();
        if changes()?.iter().any(|change| planned.contains(&change.tuple.tuple.key())) {
            return Err(moved());
        }
        Ok(())
    }

    /// The cursor after every changelog entry the plan saw (a write holds far fewer than 2^31
    /// entries, and `i32::MAX` fits every backend's column type).
    #[cfg(feature = "sled")]
    pub(crate) fn after(&self) -> Option<ChangeCursor> {
        (self.revision > 0).then_some(ChangeCursor { revision: self.revision, seq: i32::MAX as u32 })
    }
}

/// One write request as a store applies it ([`TupleStore::write`]): what it deletes and writes,
/// when, by whom, and (for a conditional write) what it was planned against.
#[derive(Debug, Clone, Copy)]
pub struct WriteBatch<'a> {
    /// Tuples to delete; applied before `writes`, and listed first in the changelog.
    pub deletes: &'a [StoredTuple],
    /// Tuples to write.
    pub writes: &'a [StoredTuple],
    /// The write's time, milliseconds since the Unix epoch: each changelog entry's timestamp and
    /// each written tuple's write time.
    pub timestamp_ms: i64,
    /// Who made the write, recorded on each changelog entry; `None` when unknown.
    pub actor: Option<&'a str>,
    /// For a conditional write, the state it was planned against; `None` writes unconditionally.
    pub planned: Option<PlannedAt<'a>>,
}

impl<'a> WriteBatch<'a> {
    /// An unconditional write with no actor.
    pub fn new(deletes: &'a [StoredTuple], writes: &'a [StoredTuple], timestamp_ms: i64) -> Self {
        WriteBatch { deletes, writes, timestamp_ms, actor: None, planned: None }
    }

    /// The same write, recording `actor` on its changelog entries.
    pub fn by(self, actor: Option<&'a str>) -> Self {
        WriteBatch { actor, ..self }
    }

    /// The same write, made conditional on `planned` (see [`TupleStore::write`]).
    pub fn planned_at(self, planned: PlannedAt<'a>) -> Self {
        WriteBatch { planned: Some(planned), ..self }
    }
}

/// Where [`CheckpointStore::write_checkpoint`] sends each tuple of a checkpoint.
pub type CheckpointSink<'s> = dyn FnMut(TupleRef<'_>) -> Result<(), StoreError> + 's;

/// Hands every tuple of a checkpoint to the sink it is given.
pub type CheckpointSource<'p> = dyn FnMut(&mut CheckpointSink<'_>) -> Result<(), StoreError> + 'p;

/// Durable state of every store. Implementations are shared across threads.
pub trait TupleStore: Send + Sync {
    /// Creates a store (tenant). Error if the id exists.
    fn create_store(&self, store: &StoreRecord) -> Result<(), StoreError>;

    /// The store's record; `None` when it does not exist or was deleted.
    fn get_store(&self, store_id: &str) -> Result<Option<StoreRecord>, StoreError>;

    /// Every live store, ordered by id (ULIDs → creation order).
    fn list_stores(&self) -> Result<Vec<StoreRecord>, StoreError>;

    /// Deletes a store and all its data; afterwards no read sees any of it.
    fn delete_store(&self, store_id: &str) -> Result<(), StoreError>;

    /// Appends an immutable model version (model_json is opaque text to the store).
    fn write_model(&self, store_id: &str, model_id: &str, model_json: &str) -> Result<(), StoreError>;

    /// All model versions of a store, oldest first: (model_id, model_json).
    fn models(&self, store_id: &str) -> Result<Vec<(String, String)>, StoreError>;

    /// Atomically applies one write request: `batch.deletes` then `batch.writes`, bumps the store
    /// revision by 1, appends one changelog entry per tuple (each naming `batch.actor`), and
    /// returns the new revision only after it is durable. The caller (engine) has already
    /// validated the request (no duplicates, deletes exist).
    ///
    /// With `batch.planned`, the write is conditional: it lands only while the plan still holds
    /// (no write after `planned.revision` changed a tuple the plan read: those it writes or
    /// deletes, and `planned.read`), and the store is at most [`MAX_PLAN_LAG`] revisions past it.
    /// Otherwise nothing is written and the answer is [`StoreError::RevisionMoved`] with the
    /// current revision. A write that holds lands at the current revision + 1, like any write.
    ///
    /// Nodes sharing one database plan each write against their index at `planned.revision`, and
    /// on `RevisionMoved` catch up through the changelog and plan again. Checking the tuples
    /// rather than the bare revision means writers on other nodes that touch other tuples never
    /// send a write back to plan again, so no writer can be starved by a faster one.
    fn write(&self, store_id: &str, batch: &WriteBatch<'_>) -> Result<u64, StoreError>;

    /// True when other processes write to this backend too (a shared database such as
    /// PostgreSQL): the engine then follows the backend's changelog and store list instead of
    /// trusting that it made every change itself. False for sled and memory, which one process owns.
    fn is_shared(&self) -> bool {
        false
    }

    /// Waits up to `timeout` for word that something changed in the backend (a database
    /// notification); true when notified. A backend without notifications waits out the timeout
    /// and answers false, so a follower polls.
    fn wait_for_change(&self, timeout: std::time::Duration) -> bool {
        std::thread::sleep(timeout);
        false
    }

    /// Every current tuple of a store (used to rebuild the in-memory index on start), ordered by
    /// (object type, object id, relation, user string). Expired tuples are included.
    fn tuples(&self, store_id: &str) -> Result<Vec<StoredTuple>, StoreError>;

    /// Calls `visit` with every current tuple of a store, in [`TupleStore::tuples`]' order, borrowed
    /// from the backend's buffers: the start-up path, which never holds all tuples decoded at once.
    /// The default walks [`TupleStore::tuples`]; backends override it to stream.
    fn scan_tuples(
        &self,
        store_id: &str,
        visit: &mut dyn FnMut(TupleRef<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for stored in self.tuples(store_id)? {
            visit(TupleRef::of(&stored))?;
        }
        Ok(())
    }

    /// The backend's checkpoints, or `None` when it keeps none (the engine then always loads a
    /// store from its tuple rows). None unless the backend says otherwise.
    fn checkpoints(&self) -> Option<&dyn CheckpointStore> {
        None
    }

    /// The backend's decision log, or `None` when it keeps none (the engine then records no
    /// decisions and says so when asked for them).
    fn decision_log(&self) -> Option<&dyn DecisionLogStore>;

    /// The backend's approvals, or `None` when it keeps none (the engine then raises none and
    /// says so when asked for them).
    fn approvals(&self) -> Option<&dyn ApprovalStore> {
        None
    }

    /// When each of `tuples` was last written, milliseconds since the Unix epoch, in input order:
    /// `None` for a tuple the store does not hold, or one written before write times were
    /// recorded (data from an older Writ). Only identity counts, not condition or expiry.
    fn written_at(&self, store_id: &str, tuples: &[Tuple]) -> Result<Vec<Option<i64>>, StoreError>;

    /// Current revision of a store (0 before any write).
    fn revision(&self, store_id: &str) -> Result<u64, StoreError>;

    /// Changelog entries with (revision, seq) strictly after `after` (None = from the start),
    /// optionally only those whose object type equals `object_type`, at most `limit`, in order.
    fn changes(
        &self,
        store_id: &str,
        after: Option<ChangeCursor>,
        object_type: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        self.change_page(store_id, ChangeQuery { after, object_type, limit })
    }

    /// The page of changelog entries `query` asks for; what [`TupleStore::changes`] answers.
    fn change_page(&self, store_id: &str, query: ChangeQuery<'_>) -> Result<Vec<ChangeRecord>, StoreError>;

    /// Stores the assertions of a model (OpenFGA `/assertions/{model_id}`), opaque JSON text,
    /// replacing any earlier ones.
    fn write_assertions(&self, store_id: &str, model_id: &str, assertions_json: &str) -> Result<(), StoreError>;

    /// The assertions of a model; `None` when never written.
    fn assertions(&self, store_id: &str, model_id: &str) -> Result<Option<String>, StoreError>;
}

/// Checkpoints: every tuple of a store at one revision, packed so start-up reads a few large rows
/// instead of one row per tuple. A backend that keeps them answers
/// [`TupleStore::checkpoints`] with itself; they are a cache of the tuple rows, never their
/// replacement.
pub trait CheckpointStore: Send + Sync {
    /// Replaces the store's checkpoint: `produce` hands every tuple to the sink it is given, and
    /// the caller vouches that these are exactly the store's current tuples at `revision`. The
    /// new checkpoint is durable when this returns; until then (and after a failure) the old one
    /// stands whole. Tuple rows, the changelog and the revision are untouched.
    fn write_checkpoint(
        &self,
        store_id: &str,
        revision: u64,
        produce: &mut CheckpointSource<'_>,
    ) -> Result<(), StoreError>;

    /// The revision of the store's latest checkpoint; `None` when it has none.
    fn checkpoint_revision(&self, store_id: &str) -> Result<Option<u64>, StoreError>;

    /// Calls `visit` with every tuple of the store's latest checkpoint, then answers the revision
    /// they are at; `None` (without visiting) when the store has no checkpoint. An error after
    /// some visits (a missing or undecodable chunk) means the visits must be thrown away.
    fn scan_checkpoint(
        &self,
        store_id: &str,
        visit: &mut dyn FnMut(TupleRef<'_>) -> Result<(), StoreError>,
    ) -> Result<Option<u64>, StoreError>;
}

/// The decision log: check-like decisions per store, kept apart from the tuples and best-effort
/// (appended in batches, trimmed by count and age). A backend that keeps one answers
/// [`TupleStore::decision_log`] with itself.
pub trait DecisionLogStore: Send + Sync {
    /// Appends decision records, each to the log of its `store_id` (records of a store that does
    /// not exist are dropped), giving each a cursor unique within its store, also across restarts.
    fn append_decisions(&self, records: Vec<DecisionRecord>) -> Result<(), StoreError>;

    /// A store's decision records that pass `filter`, newest first, at most `filter.limit`.
    fn decisions(&self, store_id: &str, filter: &DecisionFilter) -> Result<DecisionPage, StoreError>;

    /// Deletes a store's decision records older than `older_than_ms` and all but the newest
    /// `keep`; returns how many it deleted.
    fn trim_decisions(&self, store_id: &str, keep: usize, older_than_ms: i64) -> Result<usize, StoreError>;
}

/// Approvals (DESIGN §12): per store, each kept whole under its id, written durably before a
/// call returns. A backend that keeps them answers [`TupleStore::approvals`] with itself.
pub trait ApprovalStore: Send + Sync {
    /// Adds a new approval to its store.
    fn insert_approval(&self, record: &ApprovalRecord) -> Result<(), StoreError>;

    /// Every approval of a store, by id (so oldest first).
    fn approvals(&self, store_id: &str) -> Result<Vec<ApprovalRecord>, StoreError>;

    /// Replaces `current` with `next` (same store and id) if the stored approval still equals
    /// `current`, atomically; false (and nothing written) when it changed since it was read or
    /// is gone.
    fn replace_approval(&self, current: &ApprovalRecord, next: &ApprovalRecord) -> Result<bool, StoreError>;
}
