//! [`SledStore`]: the on-disk backend of [`TupleStore`], one sled tree with prefixed keys (layout in
//! `codec`), plus a `decisions` tree for the decision log (layout in `decision`).
//!
//! Invariant: every mutation is one atomic sled operation (a batch, or a single compare-and-swap)
//! made under the store's write mutex and followed by `Db::flush` before the call returns, so an
//! acknowledged change survives `kill -9` and an unacknowledged one is wholly present or absent.
//! Reads take no mutex.
//! Invariant: every changelog row has its rows of the changelog by type (layout in `codec`),
//! written in the same batch; a data dir of an older layout gets them built at `open`.
//! Must not import anything in the crate but `crate::tuple` and its siblings in `store`.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::approval;
use super::checkpoint;
use super::codec;
use super::decision;
use super::{
    ApprovalRecord, ApprovalStore, ChangeCursor, ChangeOperation, ChangeQuery, ChangeRecord, CheckpointSource,
    CheckpointStore, DecisionCursor, DecisionFilter, DecisionLogStore, DecisionPage, DecisionRecord, StoreError,
    StoreRecord, StoredTuple, TupleRef, TupleStore, WriteBatch,
};
use crate::tuple::{split_subject, SubjectText, Tuple};

/// A [`TupleStore`] persisted in a sled database.
pub struct SledStore {
    db: sled::Db,
    decisions: sled::Tree,
    approvals: sled::Tree,
    /// One write mutex per store id; entries are never removed, so a mutex is never replaced while
    /// someone waits on it.
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Held while a checkpoint is written and while a store is deleted, so a checkpoint never
    /// outlives its store and two never interleave.
    checkpointing: Mutex<()>,
    /// Rows [`TupleStore::changes`] has read (see [`SledStore::change_rows_read`]).
    change_rows_read: AtomicU64,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

impl SledStore {
    /// How long [`SledStore::open`] waits for a database lock still held by a dropped handle.
    pub const LOCK_WAIT: Duration = Duration::from_secs(5);

    /// Opens (or creates) the database at `path`.
    ///
    /// sled releases its file lock only after its background work for a dropped handle ends, so
    /// reopening right after a drop in the same process can briefly find the lock held; `open`
    /// retries that case for up to [`Self::LOCK_WAIT`] before giving up with [`StoreError::Io`],
    /// which then says that another process holds `path` (sled's own text is `could not acquire
    /// lock ... WouldBlock`). Every error of `open` names `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let deadline = Instant::now() + Self::LOCK_WAIT;
        loop {
            match sled::Config::new().path(path).open() {
                Ok(db) => return Self::from_db(db),
                Err(sled::Error::Io(e)) if lock_held(&e) => {
                    if Instant::now() >= deadline {
                        return Err(StoreError::Io(format!(
                            "data dir `{}` is held by another process (a running `writ serve` or `writ import`?)",
                            path.display()
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(StoreError::Io(format!("cannot open data dir `{}`: {e}", path.display()))),
            }
        }
    }

    /// A database in a temporary location, removed when dropped (for tests).
    pub fn temporary() -> Result<Self, StoreError> {
        Self::from_db(sled::Config::new().temporary(true).open()?)
    }

    fn from_db(db: sled::Db) -> Result<Self, StoreError> {
        let decisions = db.open_tree("decisions")?;
        let approvals = db.open_tree("approvals")?;
        let store = SledStore {
            db,
            decisions,
            approvals,
            locks: Mutex::new(HashMap::new()),
            checkpointing: Mutex::new(()),
            change_rows_read: AtomicU64::new(0),
        };
        store.upgrade_layout()?;
        Ok(store)
    }

    /// How many rows of the changelog and of the changelog by type [`TupleStore::changes`] has
    /// read since this handle opened: what a page of the feed costs, counted rather than timed
    /// (tests and benches read it).
    pub fn change_rows_read(&self) -> u64 {
        self.change_rows_read.load(Ordering::Relaxed)
    }

    /// Brings a data dir written by an older build up to [`codec::LAYOUT`]: builds the changelog
    /// by type of every store from its changelog, then records the layout. A data dir that is
    /// new or already there is left as it is; one of a newer layout is refused. An interrupted
    /// upgrade leaves the layout unrecorded and is redone whole at the next open (the rows it
    /// writes are a function of the changelog, so writing them twice changes nothing).
    fn upgrade_layout(&self) -> Result<(), StoreError> {
        let layout = match self.db.get(codec::LAYOUT_KEY)? {
            Some(value) => codec::decode_layout(&value)?,
            None => 0,
        };
        if layout > codec::LAYOUT {
            return Err(StoreError::Corrupt(format!(
                "data dir layout `{layout}` is newer than this build's `{}`",
                codec::LAYOUT
            )));
        }
        if layout == codec::LAYOUT {
            return Ok(());
        }
        // Store ids from the record keys, so a record that no longer decodes (an error for its
        // own reads) does not keep the other stores from opening.
        let mut store_ids = Vec::new();
        for kv in self.db.scan_prefix([codec::STORE]) {
            store_ids.push(codec::decode_store_key(kv?.0.get(1..).unwrap_or_default())?);
        }
        for store_id in store_ids {
            self.build_changes_by_type(&store_id)?;
        }
        self.db.insert(codec::LAYOUT_KEY, codec::encode_layout(codec::LAYOUT))?;
        self.flush()
    }

    /// Writes the changelog by type of a store from its changelog, in batches.
    fn build_changes_by_type(&self, store_id: &str) -> Result<(), StoreError> {
        const ROWS_PER_BATCH: usize = 4096;
        let prefix = codec::prefix(codec::CHANGE, store_id);
        let (mut batch, mut rows) = (sled::Batch::default(), 0);
        for kv in self.db.scan_prefix(&prefix) {
            let (k, v) = kv?;
            let cursor = codec::decode_change_key(k.get(prefix.len()..).unwrap_or_default())?;
            let records = codec::decode_change_row(cursor, &v)?;
            let Some(first) = records.first() else { continue };
            let entries: Vec<_> = records.iter().map(|c| (c.operation, &c.tuple)).collect();
            let by_type =
                codec::changes_by_type_rows(store_id, cursor, &entries, first.timestamp_ms, first.actor.as_deref())?;
            for (key, value) in by_type {
                batch.insert(key, value);
                rows += 1;
            }
            if rows >= ROWS_PER_BATCH {
                self.db.apply_batch(std::mem::take(&mut batch))?;
                rows = 0;
            }
        }
        self.db.apply_batch(batch)?;
        Ok(())
    }

    /// The write mutex of a store.
    fn lock_of(&self, store_id: &str) -> Arc<Mutex<()>> {
        Arc::clone(self.locks.lock().entry(store_id.to_string()).or_default())
    }

    fn exists(&self, store_id: &str) -> Result<bool, StoreError> {
        Ok(self.db.contains_key(codec::store_key(store_id))?)
    }

    fn require(&self, store_id: &str) -> Result<(), StoreError> {
        if self.exists(store_id)? {
            Ok(())
        } else {
            Err(StoreError::StoreNotFound(store_id.to_string()))
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn checkpoint_header(&self, store_id: &str) -> Result<Option<checkpoint::Header>, StoreError> {
        self.db.get(checkpoint::header_key(store_id))?.map(|v| checkpoint::decode_header(&v)).transpose()
    }

    /// Adds the removal of every key of `tree` under `prefix` to `batch`.
    fn remove_prefix(tree: &sled::Tree, prefix: &[u8], batch: &mut sled::Batch) -> Result<(), StoreError> {
        for kv in tree.scan_prefix(prefix) {
            batch.remove(kv?.0);
        }
        Ok(())
    }

    fn current_revision(&self, store_id: &str) -> Result<u64, StoreError> {
        match self.db.get(codec::revision_key(store_id))? {
            Some(v) => codec::decode_revision(&v),
            None => Ok(0),
        }
    }
}

/// True when sled failed to open because another handle holds the database's file lock (sled
/// reports it as `ErrorKind::Other` with this text).
fn lock_held(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::WouldBlock || e.to_string().contains("could not acquire lock")
}

impl TupleStore for SledStore {
    fn create_store(&self, store: &StoreRecord) -> Result<(), StoreError> {
        let lock = self.lock_of(&store.id);
        let _guard = lock.lock();
        let value = codec::encode_store(store)?;
        let swapped = self.db.compare_and_swap(codec::store_key(&store.id), None::<&[u8]>, Some(value))?;
        if swapped.is_err() {
            return Err(StoreError::StoreExists(store.id.clone()));
        }
        self.flush()
    }

    fn get_store(&self, store_id: &str) -> Result<Option<StoreRecord>, StoreError> {
        match self.db.get(codec::store_key(store_id))? {
            Some(v) => Ok(Some(codec::decode_store(&v)?)),
            None => Ok(None),
        }
    }

    fn list_stores(&self) -> Result<Vec<StoreRecord>, StoreError> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix([codec::STORE]) {
            let (_, v) = kv?;
            out.push(codec::decode_store(&v)?);
        }
        Ok(out)
    }

    fn delete_store(&self, store_id: &str) -> Result<(), StoreError> {
        let _checkpointing = self.checkpointing.lock();
        let lock = self.lock_of(store_id);
        let _guard = lock.lock();
        self.require(store_id)?;
        let mut batch = sled::Batch::default();
        for space in codec::KEYSPACES {
            Self::remove_prefix(&self.db, &codec::prefix(space, store_id), &mut batch)?;
        }
        self.db.apply_batch(batch)?;
        let mut decisions = sled::Batch::default();
        Self::remove_prefix(&self.decisions, &decision::prefix(store_id), &mut decisions)?;
        self.decisions.apply_batch(decisions)?;
        let mut approvals = sled::Batch::default();
        Self::remove_prefix(&self.approvals, &approval::prefix(store_id), &mut approvals)?;
        self.approvals.apply_batch(approvals)?;
        self.flush()
    }

    fn write_model(&self, store_id: &str, model_id: &str, model_json: &str) -> Result<(), StoreError> {
        let lock = self.lock_of(store_id);
        let _guard = lock.lock();
        self.require(store_id)?;
        let prefix = codec::prefix(codec::MODEL, store_id);
        let next = match self.db.scan_prefix(&prefix).next_back() {
            Some(kv) => {
                let (k, _) = kv?;
                let last = codec::decode_model_key(k.get(prefix.len()..).unwrap_or_default())?;
                last.checked_add(1).ok_or_else(|| StoreError::Corrupt("model index overflow".into()))?
            }
            None => 0,
        };
        self.db.insert(codec::model_key(store_id, next), codec::encode_model(model_id, model_json)?)?;
        self.flush()
    }

    fn models(&self, store_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.require(store_id)?;
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(codec::prefix(codec::MODEL, store_id)) {
            let (_, v) = kv?;
            out.push(codec::decode_model(&v)?);
        }
        Ok(out)
    }

    fn write(&self, store_id: &str, batch: &WriteBatch<'_>) -> Result<u64, StoreError> {
        self.apply_write(store_id, batch)
    }

    fn tuples(&self, store_id: &str) -> Result<Vec<StoredTuple>, StoreError> {
        self.require(store_id)?;
        let prefix = codec::prefix(codec::TUPLE, store_id);
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(&prefix) {
            let (k, v) = kv?;
            out.push(codec::decode_tuple(k.get(prefix.len()..).unwrap_or_default(), &v)?);
        }
        Ok(out)
    }

    fn scan_tuples(
        &self,
        store_id: &str,
        visit: &mut dyn FnMut(TupleRef<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.require(store_id)?;
        let prefix = codec::prefix(codec::TUPLE, store_id);
        let skip = prefix.len();
        let (sender, chunks) = std::sync::mpsc::sync_channel(SCAN_AHEAD);
        let db = &self.db;
        std::thread::scope(|scope| {
            let reader = std::thread::Builder::new()
                .name("writ-scan".into())
                .spawn_scoped(scope, move || read_chunks(db, &prefix, &sender));
            if reader.is_err() {
                // No thread to spare: read and visit on this one.
                let mut chunk = ScanChunk::default();
                for kv in self.db.scan_prefix(codec::prefix(codec::TUPLE, store_id)) {
                    let (k, v) = kv?;
                    chunk.push(k.get(skip..).unwrap_or_default(), &v)?;
                    if chunk.rows.len() == SCAN_CHUNK {
                        chunk.visit(visit)?;
                        chunk.clear();
                    }
                }
                return chunk.visit(visit);
            }
            // Dropping `chunks` on an early return stops the reader at its next chunk.
            for chunk in chunks {
                chunk?.visit(visit)?;
            }
            Ok(())
        })
    }

    fn written_at(&self, store_id: &str, tuples: &[Tuple]) -> Result<Vec<Option<i64>>, StoreError> {
        self.require(store_id)?;
        let mut out = Vec::with_capacity(tuples.len());
        for tuple in tuples {
            out.push(match self.db.get(codec::tuple_key(store_id, tuple))? {
                Some(value) => codec::decode_tuple_written_at(&value)?,
                None => None,
            });
        }
        Ok(out)
    }

    fn revision(&self, store_id: &str) -> Result<u64, StoreError> {
        self.require(store_id)?;
        self.current_revision(store_id)
    }

    fn change_page(&self, store_id: &str, query: ChangeQuery<'_>) -> Result<Vec<ChangeRecord>, StoreError> {
        let ChangeQuery { after, object_type, limit } = query;
        self.require(store_id)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        match object_type {
            Some(object_type) => self.changes_of_type(store_id, after, object_type, limit),
            None => self.all_changes(store_id, after, limit),
        }
    }

    fn write_assertions(&self, store_id: &str, model_id: &str, assertions_json: &str) -> Result<(), StoreError> {
        let lock = self.lock_of(store_id);
        let _guard = lock.lock();
        self.require(store_id)?;
        self.db.insert(codec::assertion_key(store_id, model_id), codec::encode_text(assertions_json))?;
        self.flush()
    }

    fn assertions(&self, store_id: &str, model_id: &str) -> Result<Option<String>, StoreError> {
        self.require(store_id)?;
        match self.db.get(codec::assertion_key(store_id, model_id))? {
            Some(v) => Ok(Some(codec::decode_text(&v)?)),
            None => Ok(None),
        }
    }

    fn checkpoints(&self) -> Option<&dyn CheckpointStore> {
        Some(self)
    }

    fn decision_log(&self) -> Option<&dyn DecisionLogStore> {
        Some(self)
    }

    fn approvals(&self) -> Option<&dyn ApprovalStore> {
        Some(self)
    }
}

impl CheckpointStore for SledStore {
    fn write_checkpoint(
        &self,
        store_id: &str,
        revision: u64,
        produce: &mut CheckpointSource<'_>,
    ) -> Result<(), StoreError> {
        let _checkpointing = self.checkpointing.lock();
        self.require(store_id)?;
        let old = self.checkpoint_header(store_id)?;
        let generation = old.map_or(1, |h| h.generation + 1);
        // Chunks an interrupted checkpoint of this generation left behind.
        let mut strays = sled::Batch::default();
        Self::remove_prefix(&self.db, &checkpoint::generation_prefix(store_id, generation), &mut strays)?;
        self.db.apply_batch(strays)?;
        let mut encoder = checkpoint::ChunkEncoder::default();
        let (mut chunks, mut tuples) = (0u32, 0u64);
        let put = |encoder: &mut checkpoint::ChunkEncoder, chunks: &mut u32| -> Result<(), StoreError> {
            self.db.insert(checkpoint::chunk_key(store_id, generation, *chunks), encoder.finish())?;
            *chunks = chunks.checked_add(1).ok_or_else(|| StoreError::Corrupt("checkpoint: too many chunks".into()))?;
            Ok(())
        };
        produce(&mut |t| {
            encoder.push(t)?;
            tuples += 1;
            if encoder.len() == checkpoint::CHUNK_TUPLES {
                put(&mut encoder, &mut chunks)?;
            }
            Ok(())
        })?;
        if encoder.len() > 0 {
            put(&mut encoder, &mut chunks)?;
        }
        // The chunks are in; swap the header and drop the old generation in one batch.
        let mut batch = sled::Batch::default();
        batch.insert(
            checkpoint::header_key(store_id),
            checkpoint::encode_header(checkpoint::Header { generation, revision, chunks, tuples }),
        );
        if let Some(old) = old {
            Self::remove_prefix(&self.db, &checkpoint::generation_prefix(store_id, old.generation), &mut batch)?;
        }
        self.db.apply_batch(batch)?;
        self.flush()
    }

    fn checkpoint_revision(&self, store_id: &str) -> Result<Option<u64>, StoreError> {
        self.require(store_id)?;
        Ok(self.checkpoint_header(store_id)?.map(|h| h.revision))
    }

    fn scan_checkpoint(
        &self,
        store_id: &str,
        visit: &mut dyn FnMut(TupleRef<'_>) -> Result<(), StoreError>,
    ) -> Result<Option<u64>, StoreError> {
        self.require(store_id)?;
        let Some(header) = self.checkpoint_header(store_id)? else { return Ok(None) };
        let (sender, values) = std::sync::mpsc::sync_channel(SCAN_AHEAD);
        let prefix = checkpoint::generation_prefix(store_id, header.generation);
        let db = &self.db;
        let (chunks, tuples) = std::thread::scope(|scope| -> Result<(u32, u64), StoreError> {
            // Reading the next chunk's value overlaps visiting this one's tuples.
            let reader = std::thread::Builder::new().name("writ-checkpoint".into()).spawn_scoped(scope, move || {
                for kv in db.scan_prefix(prefix) {
                    let failed = kv.is_err();
                    if sender.send(kv.map(|(_, v)| v)).is_err() || failed {
                        return;
                    }
                }
            });
            let mut counts = (0u32, 0u64);
            let mut visit_value = |value: &[u8], counts: &mut (u32, u64)| -> Result<(), StoreError> {
                counts.1 += checkpoint::visit_chunk(value, visit)?;
                counts.0 += 1;
                Ok(())
            };
            if reader.is_err() {
                for kv in self.db.scan_prefix(checkpoint::generation_prefix(store_id, header.generation)) {
                    visit_value(&kv?.1, &mut counts)?;
                }
                return Ok(counts);
            }
            for value in values {
                visit_value(&value?, &mut counts)?;
            }
            Ok(counts)
        })?;
        if chunks != header.chunks || tuples != header.tuples {
            return Err(StoreError::Corrupt(format!(
                "checkpoint: {chunks} chunks of {tuples} tuples found, {} of {} written",
                header.chunks, header.tuples
            )));
        }
        Ok(Some(header.revision))
    }
}

impl ApprovalStore for SledStore {
    fn insert_approval(&self, record: &ApprovalRecord) -> Result<(), StoreError> {
        self.require(&record.store_id)?;
        self.approvals.insert(approval::key(&record.store_id, &record.id), approval::encode(record)?)?;
        self.approvals.flush()?;
        Ok(())
    }

    fn approvals(&self, store_id: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
        self.require(store_id)?;
        let mut out = Vec::new();
        for kv in self.approvals.scan_prefix(approval::prefix(store_id)) {
            let (_, value) = kv?;
            out.push(approval::decode(&value)?);
        }
        Ok(out)
    }

    fn replace_approval(&self, current: &ApprovalRecord, next: &ApprovalRecord) -> Result<bool, StoreError> {
        let key = approval::key(&current.store_id, &current.id);
        let swapped =
            self.approvals.compare_and_swap(key, Some(approval::encode(current)?), Some(approval::encode(next)?))?;
        if swapped.is_err() {
            return Ok(false);
        }
        self.approvals.flush()?;
        Ok(true)
    }
}

impl DecisionLogStore for SledStore {
    fn append_decisions(&self, records: Vec<DecisionRecord>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut live: HashMap<&str, bool> = HashMap::new();
        for record in &records {
            let exists = match live.get(&*record.store_id) {
                Some(&exists) => exists,
                None => {
                    let exists = self.exists(&record.store_id)?;
                    live.insert(&record.store_id, exists);
                    exists
                }
            };
            if exists {
                // sled's generated ids are unique and increasing across restarts.
                let cursor = DecisionCursor { time_ms: record.time_ms, seq: self.db.generate_id()? };
                batch.insert(decision::key(&record.store_id, cursor), decision::encode(record)?);
            }
        }
        self.decisions.apply_batch(batch)?;
        self.decisions.flush()?;
        Ok(())
    }

    fn decisions(&self, store_id: &str, filter: &DecisionFilter) -> Result<DecisionPage, StoreError> {
        self.require(store_id)?;
        let prefix = decision::prefix(store_id);
        let low = decision::time_key(store_id, filter.since_ms.unwrap_or(i64::MIN));
        let mut high = prefix.clone();
        high.extend_from_slice(&[0xFF; 17]);
        if let Some(until) = filter.until_ms {
            high = high.min(decision::time_key(store_id, until));
        }
        if let Some(before) = filter.before {
            high = high.min(decision::key(store_id, before));
        }
        let mut out = Vec::new();
        if filter.limit == 0 || low >= high {
            return Ok(out);
        }
        for kv in self.decisions.range(low..high).rev() {
            let (k, v) = kv?;
            let cursor = decision::decode_key(k.get(prefix.len()..).unwrap_or_default())?;
            let record = decision::decode(&v)?;
            if filter.matches(cursor, &record) {
                out.push((cursor, record));
                if out.len() == filter.limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn trim_decisions(&self, store_id: &str, keep: usize, older_than_ms: i64) -> Result<usize, StoreError> {
        let prefix = decision::prefix(store_id);
        // Everything before the age bound goes, and everything older than the `keep` newest.
        let mut bound = decision::time_key(store_id, older_than_ms);
        if let Some(kv) = self.decisions.scan_prefix(&prefix).rev().nth(keep) {
            let (k, _) = kv?;
            let mut past_oldest_kept = k.to_vec();
            past_oldest_kept.push(0);
            bound = bound.max(past_oldest_kept);
        }
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        for kv in self.decisions.range(prefix..bound) {
            let (k, _) = kv?;
            batch.remove(k);
            removed += 1;
        }
        if removed > 0 {
            self.decisions.apply_batch(batch)?;
            self.decisions.flush()?;
        }
        Ok(removed)
    }
}

/// Tuples in one [`ScanChunk`].
const SCAN_CHUNK: usize = 4096;
/// Chunks the scanning thread may read ahead of the visitor.
const SCAN_AHEAD: usize = 4;

/// Reads a store's tuple keys (those under `prefix`) in key order into chunks and sends them,
/// then the error that stopped it, if any; stops early when the receiver hangs up.
fn read_chunks(db: &sled::Db, prefix: &[u8], sender: &std::sync::mpsc::SyncSender<Result<ScanChunk, StoreError>>) {
    let mut chunk = ScanChunk::default();
    for kv in db.scan_prefix(prefix) {
        let pushed =
            kv.map_err(StoreError::from).and_then(|(k, v)| chunk.push(k.get(prefix.len()..).unwrap_or_default(), &v));
        if let Err(error) = pushed {
            let _ = sender.send(Err(error));
            return;
        }
        if chunk.rows.len() == SCAN_CHUNK && sender.send(Ok(std::mem::take(&mut chunk))).is_err() {
            return;
        }
    }
    if !chunk.rows.is_empty() {
        let _ = sender.send(Ok(chunk));
    }
}

/// Tuples read and decoded from the store, in key order: their names back to back in `text`
/// (object type, object id, relation, subject type, subject id, subject relation, without
/// separators), and per tuple the lengths of those parts. Start-up decodes tuples on a scanning
/// thread into chunks like this and visits them, borrowed, on the loading thread.
#[derive(Default)]
struct ScanChunk {
    text: String,
    rows: Vec<ScanRow>,
}

/// One tuple of a [`ScanChunk`].
struct ScanRow {
    /// Lengths of the object type, object id, relation and subject type.
    lens: [usize; 4],
    /// Length of the subject id; `None` for a wildcard.
    subject_id: Option<usize>,
    /// Length of the subject's userset relation, if any.
    subject_relation: Option<usize>,
    condition: Option<crate::tuple::TupleCondition>,
    expires_at_ms: Option<i64>,
}

impl ScanChunk {
    /// Decodes a tuple key (without its store prefix) and value onto the end of the chunk.
    fn push(&mut self, key_rest: &[u8], value: &[u8]) -> Result<(), StoreError> {
        let (object_type, object_id, relation, user) = codec::decode_tuple_key_parts(key_rest)?;
        let subject = split_subject(&user).map_err(|e| StoreError::Corrupt(format!("tuple key: {e}")))?;
        let (condition, expires_at_ms) = codec::decode_tuple_value(value)?;
        let parts = [&*object_type, &*object_id, &*relation, subject.subject_type];
        for part in parts.iter().chain(subject.id.iter()).chain(subject.relation.iter()) {
            self.text.push_str(part);
        }
        self.rows.push(ScanRow {
            lens: parts.map(str::len),
            subject_id: subject.id.map(str::len),
            subject_relation: subject.relation.map(str::len),
            condition,
            expires_at_ms,
        });
        Ok(())
    }

    /// Calls `visit` with every tuple of the chunk, in order.
    fn visit(&self, visit: &mut dyn FnMut(TupleRef<'_>) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let mut rest = self.text.as_str();
        for row in &self.rows {
            let [object_type, object_id, relation, subject_type] = row.lens;
            let object_type = take(&mut rest, object_type)?;
            let object_id = take(&mut rest, object_id)?;
            let relation = take(&mut rest, relation)?;
            let subject_type = take(&mut rest, subject_type)?;
            let id = row.subject_id.map(|len| take(&mut rest, len)).transpose()?;
            let subject_relation = row.subject_relation.map(|len| take(&mut rest, len)).transpose()?;
            visit(TupleRef {
                object_type,
                object_id,
                relation,
                subject: SubjectText { subject_type, id, relation: subject_relation },
                condition: row.condition.as_ref(),
                expires_at_ms: row.expires_at_ms,
            })?;
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.text.clear();
        self.rows.clear();
    }
}

/// The first `len` bytes of `rest`, which it then drops (`len` is a length [`ScanChunk::push`]
/// recorded, so this fails only if the chunk was built wrong).
fn take<'a>(rest: &mut &'a str, len: usize) -> Result<&'a str, StoreError> {
    let (head, tail) =
        rest.split_at_checked(len).ok_or_else(|| StoreError::Corrupt("scan chunk: bad length".into()))?;
    *rest = tail;
    Ok(head)
}

impl SledStore {
    /// [`TupleStore::changes`] unfiltered: walks the changelog from `after`.
    fn all_changes(
        &self,
        store_id: &str,
        after: Option<ChangeCursor>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let prefix = codec::prefix(codec::CHANGE, store_id);
        // A row holds a run of entries of one write, so the entry after `after` may sit in a row
        // keyed before it: start at the first row of `after`'s revision.
        let start = match after {
            Some(cursor) => codec::change_key(store_id, ChangeCursor { revision: cursor.revision, seq: 0 }),
            None => prefix.clone(),
        };
        self.gather_changes(start, &prefix, after, limit, codec::decode_change_row, |_| true)
    }

    /// [`TupleStore::changes`] of one object type: walks that type's rows of the changelog by
    /// type from `after`, reading a changelog row only where the type is at least half of it, so a
    /// page reads and decodes about as many entries as it returns, however rare the type.
    fn changes_of_type(
        &self,
        store_id: &str,
        after: Option<ChangeCursor>,
        object_type: &str,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let prefix = codec::change_by_type_prefix(store_id, object_type);
        // A type's rows never overlap, so the first entry after `after` is in the last row keyed
        // at or before `after`, or else in a later one.
        let mut start = prefix.clone();
        if let Some(cursor) = after {
            let at = codec::change_by_type_key(store_id, object_type, cursor);
            if let Some(kv) = self.db.range(prefix.as_slice()..=at.as_slice()).next_back() {
                start = kv?.0.to_vec();
            }
        }
        let rows_of_type = |cursor, value: &[u8]| match codec::decode_changes_by_type(cursor, value)? {
            codec::ChangesByType::Entries(records) => Ok(records),
            codec::ChangesByType::InChangelogRow => {
                self.change_rows_read.fetch_add(1, Ordering::Relaxed);
                let row = self.db.get(codec::change_key(store_id, cursor))?.ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "change by type: no changelog row at `{}.{}`",
                        cursor.revision, cursor.seq
                    ))
                })?;
                codec::decode_change_row(cursor, &row)
            }
        };
        let of_type = |change: &ChangeRecord| change.tuple.tuple.object.object_type == object_type;
        self.gather_changes(start, &prefix, after, limit, rows_of_type, of_type)
    }

    /// Walks the rows from `start` whose keys begin with `prefix` and end in a changelog cursor,
    /// reading each row's entries with `entries`; gathers those after `after` that `keep` keeps,
    /// up to `limit`.
    fn gather_changes(
        &self,
        start: Vec<u8>,
        prefix: &[u8],
        after: Option<ChangeCursor>,
        limit: usize,
        mut entries: impl FnMut(ChangeCursor, &[u8]) -> Result<Vec<ChangeRecord>, StoreError>,
        keep: impl Fn(&ChangeRecord) -> bool,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        let mut out = Vec::new();
        for kv in self.db.range(start..) {
            let (k, v) = kv?;
            let Some(rest) = k.strip_prefix(prefix) else { break };
            self.change_rows_read.fetch_add(1, Ordering::Relaxed);
            let cursor = codec::decode_change_key(rest)?;
            for change in entries(cursor, &v)? {
                if after.is_some_and(|a| change.cursor <= a) || !keep(&change) {
                    continue;
                }
                out.push(change);
                if out.len() == limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// One write, optionally conditional on the store's current revision (see [`TupleStore::write`]).
    fn apply_write(&self, store_id: &str, batch: &WriteBatch<'_>) -> Result<u64, StoreError> {
        let WriteBatch { deletes, writes, timestamp_ms, actor, planned } = *batch;
        let lock = self.lock_of(store_id);
        let _guard = lock.lock();
        self.require(store_id)?;
        let current = self.current_revision(store_id)?;
        if let Some(planned) = planned {
            planned.check(store_id, current, deletes, writes, || {
                self.changes(store_id, planned.after(), None, usize::MAX)
            })?;
        }
        let revision = current.checked_add(1).ok_or_else(|| StoreError::Corrupt("revision overflow".into()))?;
        // One batch: removals, inserts, changelog rows (with their rows by type) and the counter. A sled batch keeps the last
        // operation per key, so a tuple both deleted and written ends up written.
        // Changelog entries go in runs of up to `CHANGE_RUN` per row (see `codec`).
        let mut batch = sled::Batch::default();
        let entries: Vec<(ChangeOperation, &StoredTuple)> = deletes
            .iter()
            .map(|t| (ChangeOperation::Delete, t))
            .chain(writes.iter().map(|t| (ChangeOperation::Write, t)))
            .collect();
        if u32::try_from(entries.len()).is_err() {
            return Err(StoreError::Corrupt(format!("write of {} tuples exceeds the changelog range", entries.len())));
        }
        for &(operation, t) in &entries {
            let key = codec::tuple_key(store_id, &t.tuple);
            match operation {
                ChangeOperation::Delete => batch.remove(key),
                ChangeOperation::Write => batch.insert(key, codec::encode_tuple_value(t, timestamp_ms)?),
            }
        }
        for (run, chunk) in entries.chunks(codec::CHANGE_RUN).enumerate() {
            // Fits: the whole write's length fits in u32 (checked above).
            let seq = u32::try_from(run * codec::CHANGE_RUN).unwrap_or(u32::MAX);
            let cursor = ChangeCursor { revision, seq };
            batch.insert(codec::change_key(store_id, cursor), codec::encode_change_run(chunk, timestamp_ms, actor)?);
            for (key, value) in codec::changes_by_type_rows(store_id, cursor, chunk, timestamp_ms, actor)? {
                batch.insert(key, value);
            }
        }
        batch.insert(codec::revision_key(store_id), codec::encode_revision(revision));
        self.db.apply_batch(batch)?;
        self.flush()?;
        Ok(revision)
    }
}
