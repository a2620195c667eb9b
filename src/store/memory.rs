//! [`MemoryStore`]: the in-process backend of [`TupleStore`], for tests and ephemeral servers.
//!
//! Invariant: behaves exactly like [`super::SledStore`] minus durability (same ordering of
//! tuples, stores and changes), so it serves as the reference model in tests. All state sits
//! behind one `RwLock`; mutations take it exclusively, which also serializes writes.
//!
//! The one exception is the index-only form ([`MemoryStore::index_only`]), for an engine
//! embedded in a program: there the engine's index is the only copy of the tuples, so this store
//! keeps none ([`TupleStore::tuples`] answers [`StoreError::NotKept`], and every tuple's write
//! time is unknown), and of the changelog only what [`ChangelogRetention`] says (by default
//! nothing; a changes read it cannot serve whole answers [`StoreError::NotKept`], never a page
//! with a gap). Stores, revisions, models, assertions, decisions and approvals are kept as ever.
//! Must not import anything in the crate but `crate::tuple` and its siblings in `store`.

use std::collections::{BTreeMap, HashMap, VecDeque};

use parking_lot::RwLock;

use super::{
    ApprovalRecord, ApprovalStore, ChangeCursor, ChangeOperation, ChangeQuery, ChangeRecord, DecisionCursor,
    DecisionFilter, DecisionLogStore, DecisionPage, DecisionRecord, StoreError, StoreRecord, StoredTuple, TupleStore,
    WriteBatch,
};
use crate::tuple::Tuple;

/// Identity of a tuple, ordered like the sled keys: object type, object id, relation, user.
type TupleKey = (String, String, String, String);

fn tuple_key(t: &Tuple) -> TupleKey {
    (t.object.object_type.clone(), t.object.id.clone(), t.relation.clone(), t.subject.to_string())
}

/// Everything one store holds.
#[derive(Debug)]
struct StoreData {
    record: StoreRecord,
    revision: u64,
    /// Each current tuple with the timestamp of the write that stored it.
    /// Empty in the index-only form.
    tuples: BTreeMap<TupleKey, (StoredTuple, i64)>,
    /// The changelog entries kept, oldest first: all of them, or the newest few of a ring.
    changes: VecDeque<ChangeRecord>,
    /// How many entries were dropped from the front of `changes` (a ring's oldest): the entry
    /// `changes[i]` is the changelog's entry number `dropped + i`.
    dropped: usize,
    /// The cursor of the newest entry dropped, if any: a read from before it cannot be served.
    last_dropped: Option<ChangeCursor>,
    /// For each object type, the entry numbers (see `dropped`) of its kept entries, ascending: a
    /// change feed filtered by type reads only its page, not the entries of other types it skips.
    changes_by_type: HashMap<String, VecDeque<usize>>,
    models: Vec<(String, String)>,
    assertions: HashMap<String, String>,
    /// The decision log, oldest first (sorted by cursor). Records arrive almost in cursor order,
    /// so an append is a push at the back (a rare late one is inserted near it), and a trim drops
    /// a run from the front at once: a tree kept by cursor moved each record on every split and
    /// walked the records it dropped one at a time.
    decisions: VecDeque<(DecisionCursor, DecisionRecord)>,
    approvals: BTreeMap<String, ApprovalRecord>,
}

/// How much of each store's changelog a [`MemoryStore`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChangelogRetention {
    /// Every entry, for the store's life (what [`MemoryStore::new`] keeps).
    #[default]
    All,
    /// The newest `n` entries, a ring: each entry past `n` drops the oldest. `Last(0)` keeps
    /// none. A changes read that starts before the oldest entry kept answers
    /// [`StoreError::NotKept`].
    Last(usize),
}

/// A [`TupleStore`] held entirely in memory; lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    stores: RwLock<BTreeMap<String, StoreData>>,
    next_decision_seq: std::sync::atomic::AtomicU64,
    /// False in the index-only form: no copy of the tuples is kept here.
    index_only: bool,
    changelog: ChangelogRetention,
}

impl MemoryStore {
    /// An empty store set that keeps every tuple and the whole changelog.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store set for an engine whose index is the only copy of the tuples: it keeps no
    /// tuples and only `changelog`'s share of the changelog (see the module doc for what it then
    /// cannot answer). What [`crate::engine::Engine::in_memory_index_only`] runs on.
    pub fn index_only(changelog: ChangelogRetention) -> Self {
        MemoryStore { index_only: true, changelog, ..Self::default() }
    }

    /// The error for a read of what the index-only form does not keep.
    fn not_kept(&self, what: &str) -> StoreError {
        StoreError::NotKept(format!("{what}: this in-memory store is index-only and keeps {}", self.kept()))
    }

    /// What of the changelog is kept, in words.
    fn kept(&self) -> String {
        match self.changelog {
            ChangelogRetention::All => "no tuples (its changelog is whole)".to_string(),
            ChangelogRetention::Last(0) => "no tuples and no changelog".to_string(),
            ChangelogRetention::Last(n) => format!("no tuples and only the last `{n}` changelog entries"),
        }
    }

    fn read<T>(&self, store_id: &str, f: impl FnOnce(&StoreData) -> T) -> Result<T, StoreError> {
        let stores = self.stores.read();
        stores.get(store_id).map(f).ok_or_else(|| StoreError::StoreNotFound(store_id.to_string()))
    }

    /// One write, optionally conditional on the store's current revision (see [`TupleStore::write`]).
    fn apply_write(&self, store_id: &str, batch: &WriteBatch<'_>) -> Result<u64, StoreError> {
        let WriteBatch { deletes, writes, timestamp_ms, actor, planned } = *batch;
        self.mutate(store_id, |d| {
            if let Some(planned) = planned {
                let moved = StoreError::RevisionMoved {
                    store_id: store_id.to_string(),
                    expected: planned.revision,
                    current: d.revision,
                };
                planned.check(store_id, d.revision, deletes, writes, || {
                    // A ring that dropped an entry after the plan cannot vouch for it.
                    if d.last_dropped.is_some_and(|dropped| dropped.revision > planned.revision) {
                        return Err(moved);
                    }
                    let first = d.changes.partition_point(|c| c.cursor.revision <= planned.revision);
                    Ok(d.changes.range(first..).cloned().collect())
                })?;
            }
            let revision = d.revision.checked_add(1).ok_or_else(|| StoreError::Corrupt("revision overflow".into()))?;
            let entries = deletes
                .iter()
                .map(|t| (ChangeOperation::Delete, t))
                .chain(writes.iter().map(|t| (ChangeOperation::Write, t)));
            // Entries a ring would drop at once are never built (a bulk load into a store that
            // keeps no changelog copies nothing).
            let total = deletes.len() + writes.len();
            let skipped = match self.changelog {
                ChangelogRetention::All => 0,
                ChangelogRetention::Last(keep) => total.saturating_sub(keep),
            };
            let mut changes = Vec::with_capacity(total - skipped);
            for (i, (operation, t)) in entries.enumerate().skip(skipped) {
                let seq = u32::try_from(i)
                    .map_err(|_| StoreError::Corrupt(format!("write of `{i}`+ tuples exceeds the changelog range")))?;
                changes.push(ChangeRecord {
                    cursor: ChangeCursor { revision, seq },
                    operation,
                    tuple: t.clone(),
                    timestamp_ms,
                    actor: actor.map(str::to_string),
                });
            }
            if !self.index_only {
                for t in deletes {
                    d.tuples.remove(&tuple_key(&t.tuple));
                }
                for t in writes {
                    d.tuples.insert(tuple_key(&t.tuple), (t.clone(), timestamp_ms));
                }
            }
            if skipped > 0 {
                let last = u32::try_from(skipped - 1).unwrap_or(u32::MAX);
                d.drop_changes(skipped, ChangeCursor { revision, seq: last });
            }
            d.append_changes(changes, self.changelog);
            d.revision = revision;
            Ok(revision)
        })
    }

    fn mutate<T>(
        &self,
        store_id: &str,
        f: impl FnOnce(&mut StoreData) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut stores = self.stores.write();
        let data = stores.get_mut(store_id).ok_or_else(|| StoreError::StoreNotFound(store_id.to_string()))?;
        f(data)
    }
}

impl StoreData {
    /// Drops every entry kept, then counts `skipped` more (a write's first entries, never
    /// built, the last at `last`) as dropped: they are newer than every entry kept, so a ring
    /// that skips them keeps none of those either.
    fn drop_changes(&mut self, skipped: usize, last: ChangeCursor) {
        self.dropped += self.changes.len() + skipped;
        self.changes.clear();
        self.changes_by_type.clear();
        self.last_dropped = Some(last);
    }

    /// Appends one write's changelog entries, then drops the oldest past what `retention` keeps.
    fn append_changes(&mut self, changes: Vec<ChangeRecord>, retention: ChangelogRetention) {
        for change in changes {
            let object_type = &change.tuple.tuple.object.object_type;
            let positions = match self.changes_by_type.get_mut(object_type.as_str()) {
                Some(positions) => positions,
                None => self.changes_by_type.entry(object_type.clone()).or_default(),
            };
            positions.push_back(self.dropped + self.changes.len());
            self.changes.push_back(change);
        }
        let ChangelogRetention::Last(keep) = retention else { return };
        while self.changes.len() > keep {
            let Some(oldest) = self.changes.pop_front() else { break };
            // The oldest entry of its type is the oldest entry of all: the front of its queue.
            let object_type = oldest.tuple.tuple.object.object_type.as_str();
            if let Some(positions) = self.changes_by_type.get_mut(object_type) {
                positions.pop_front();
                if positions.is_empty() {
                    self.changes_by_type.remove(object_type);
                }
            }
            self.dropped += 1;
            self.last_dropped = Some(oldest.cursor);
        }
    }
}

impl TupleStore for MemoryStore {
    fn create_store(&self, store: &StoreRecord) -> Result<(), StoreError> {
        let mut stores = self.stores.write();
        if stores.contains_key(&store.id) {
            return Err(StoreError::StoreExists(store.id.clone()));
        }
        let data = StoreData {
            record: store.clone(),
            revision: 0,
            tuples: BTreeMap::new(),
            changes: VecDeque::new(),
            dropped: 0,
            last_dropped: None,
            changes_by_type: HashMap::new(),
            models: Vec::new(),
            assertions: HashMap::new(),
            decisions: VecDeque::new(),
            approvals: BTreeMap::new(),
        };
        stores.insert(store.id.clone(), data);
        Ok(())
    }

    fn get_store(&self, store_id: &str) -> Result<Option<StoreRecord>, StoreError> {
        Ok(self.stores.read().get(store_id).map(|d| d.record.clone()))
    }

    fn list_stores(&self) -> Result<Vec<StoreRecord>, StoreError> {
        Ok(self.stores.read().values().map(|d| d.record.clone()).collect())
    }

    fn delete_store(&self, store_id: &str) -> Result<(), StoreError> {
        match self.stores.write().remove(store_id) {
            Some(_) => Ok(()),
            None => Err(StoreError::StoreNotFound(store_id.to_string())),
        }
    }

    fn write_model(&self, store_id: &str, model_id: &str, model_json: &str) -> Result<(), StoreError> {
        self.mutate(store_id, |d| {
            d.models.push((model_id.to_string(), model_json.to_string()));
            Ok(())
        })
    }

    fn models(&self, store_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        self.read(store_id, |d| d.models.clone())
    }

    fn write(&self, store_id: &str, batch: &WriteBatch<'_>) -> Result<u64, StoreError> {
        self.apply_write(store_id, batch)
    }

    fn tuples(&self, store_id: &str) -> Result<Vec<StoredTuple>, StoreError> {
        if self.index_only {
            self.read(store_id, |_| ())?;
            return Err(self.not_kept(&format!("the tuples of store `{store_id}` cannot be listed")));
        }
        self.read(store_id, |d| d.tuples.values().map(|(t, _)| t.clone()).collect())
    }

    /// In the index-only form every time is unknown (`None`): the engine then answers the
    /// store's creation time, a true lower bound.
    fn written_at(&self, store_id: &str, tuples: &[Tuple]) -> Result<Vec<Option<i64>>, StoreError> {
        self.read(store_id, |d| tuples.iter().map(|t| d.tuples.get(&tuple_key(t)).map(|(_, at)| *at)).collect())
    }

    fn revision(&self, store_id: &str) -> Result<u64, StoreError> {
        self.read(store_id, |d| d.revision)
    }

    fn change_page(&self, store_id: &str, query: ChangeQuery<'_>) -> Result<Vec<ChangeRecord>, StoreError> {
        let ChangeQuery { after, object_type, limit } = query;
        let read = self.read(store_id, |d| {
            // An entry after `after` was dropped: the page would have a gap.
            if d.last_dropped.is_some_and(|dropped| after.is_none_or(|a| a < dropped)) {
                return None;
            }
            let start = after.map_or(0, |a| d.changes.partition_point(|c| c.cursor <= a));
            Some(match object_type {
                None => d.changes.range(start..).take(limit).cloned().collect(),
                Some(ty) => {
                    let Some(positions) = d.changes_by_type.get(ty) else { return Some(Vec::new()) };
                    let first = positions.partition_point(|&p| p < d.dropped + start);
                    positions
                        .range(first..)
                        .take(limit)
                        .filter_map(|&p| d.changes.get(p - d.dropped))
                        .cloned()
                        .collect()
                }
            })
        })?;
        read.ok_or_else(|| {
            let from = after.map_or("the start".to_string(), |a| format!("revision `{}`", a.revision));
            self.not_kept(&format!("the changes of store `{store_id}` after {from} are no longer all kept"))
        })
    }

    fn write_assertions(&self, store_id: &str, model_id: &str, assertions_json: &str) -> Result<(), StoreError> {
        self.mutate(store_id, |d| {
            d.assertions.insert(model_id.to_string(), assertions_json.to_string());
            Ok(())
        })
    }

    fn assertions(&self, store_id: &str, model_id: &str) -> Result<Option<String>, StoreError> {
        self.read(store_id, |d| d.assertions.get(model_id).cloned())
    }

    fn decision_log(&self) -> Option<&dyn DecisionLogStore> {
        Some(self)
    }

    fn approvals(&self) -> Option<&dyn ApprovalStore> {
        Some(self)
    }
}

impl ApprovalStore for MemoryStore {
    fn insert_approval(&self, record: &ApprovalRecord) -> Result<(), StoreError> {
        self.mutate(&record.store_id, |d| {
            d.approvals.insert(record.id.clone(), record.clone());
            Ok(())
        })
    }

    fn approvals(&self, store_id: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
        self.read(store_id, |d| d.approvals.values().cloned().collect())
    }

    fn replace_approval(&self, current: &ApprovalRecord, next: &ApprovalRecord) -> Result<bool, StoreError> {
        self.mutate(&current.store_id, |d| match d.approvals.get_mut(&current.id) {
            Some(stored) if stored == current => {
                *stored = next.clone();
                Ok(true)
            }
            _ => Ok(false),
        })
    }
}

impl DecisionLogStore for MemoryStore {
    fn append_decisions(&self, records: Vec<DecisionRecord>) -> Result<(), StoreError> {
        let mut stores = self.stores.write();
        // Records timed before one already kept (another thread's, handed over later): set aside
        // and merged in below, one merge per store, never one insertion each (an insertion
        // moves every record after it, and a batch's hand-off may hold hundreds of such).
        let mut late: Vec<(DecisionCursor, DecisionRecord)> = Vec::new();
        for record in records {
            if let Some(data) = stores.get_mut(&*record.store_id) {
                let seq = self.next_decision_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let cursor = DecisionCursor { time_ms: record.time_ms, seq };
                if data.decisions.back().is_none_or(|(last, _)| *last < cursor) {
                    data.decisions.push_back((cursor, record));
                } else {
                    late.push((cursor, record));
                }
            }
        }
        if late.is_empty() {
            return Ok(());
        }
        late.sort_unstable_by(|(a, ra), (b, rb)| ra.store_id.cmp(&rb.store_id).then(a.cmp(b)));
        let mut late = late.into_iter().peekable();
        while let Some(first) = late.next() {
            let Some(data) = stores.get_mut(&*first.1.store_id) else { continue };
            let mut run = vec![first];
            while let Some(next) = late.next_if(|(_, record)| record.store_id == run[0].1.store_id) {
                run.push(next);
            }
            let log = &mut data.decisions;
            let at = log.partition_point(|(kept, _)| *kept < run[0].0);
            log.extend(run);
            // Two sorted runs (the kept tail, the late run): the stable sort finds them and
            // merges them in one pass.
            log.make_contiguous()[at..].sort_by_key(|(cursor, _)| *cursor);
        }
        Ok(())
    }

    fn decisions(&self, store_id: &str, filter: &DecisionFilter) -> Result<DecisionPage, StoreError> {
        self.read(store_id, |d| {
            // Records from `before` on are skipped by position, not tested one by one.
            let end =
                filter.before.map_or(d.decisions.len(), |before| d.decisions.partition_point(|(c, _)| *c < before));
            d.decisions
                .range(..end)
                .rev()
                .filter(|(cursor, record)| filter.matches(*cursor, record))
                .take(filter.limit)
                .map(|(cursor, record)| (*cursor, record.clone()))
                .collect()
        })
    }

    fn trim_decisions(&self, store_id: &str, keep: usize, older_than_ms: i64) -> Result<usize, StoreError> {
        self.mutate(store_id, |d| {
            // The oldest record kept: past the `excess` oldest and not older than the age bound;
            // everything before it goes in one drain.
            let excess = d.decisions.len().saturating_sub(keep);
            let aged = d.decisions.partition_point(|(cursor, _)| cursor.time_ms < older_than_ms);
            let first_kept = excess.max(aged);
            d.decisions.drain(..first_kept);
            Ok(first_kept)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_appended_after_a_newer_one_is_listed_and_trimmed_in_time_order() {
        let store = MemoryStore::new();
        let record = StoreRecord { id: "s".into(), name: "s".into(), created_at_ms: 0, updated_at_ms: 0 };
        store.create_store(&record).unwrap();
        // Another thread's record, timed earlier, reaches the store after the later ones.
        let appended = [(10, "a"), (30, "c"), (20, "b"), (40, "d"), (5, "z")];
        store.append_decisions(appended.iter().map(|(t, o)| DecisionRecord::sample(*t, o)).collect()).unwrap();
        let all = DecisionFilter { limit: 10, ..DecisionFilter::default() };
        let objects = |store: &MemoryStore, filter: &DecisionFilter| -> Vec<String> {
            store.decisions("s", filter).unwrap().into_iter().map(|(_, r)| r.object).collect()
        };
        assert_eq!(objects(&store, &all), ["d", "c", "b", "a", "z"], "newest first, by time");
        let listed = store.decisions("s", &all).unwrap();
        let before = DecisionFilter { before: Some(listed[1].0), ..all.clone() };
        assert_eq!(objects(&store, &before), ["b", "a", "z"], "strictly before the cursor");
        // The two oldest by time go first, whatever the order they came in; then the age bound.
        assert_eq!(store.trim_decisions("s", 3, 0).unwrap(), 2);
        assert_eq!(objects(&store, &all), ["d", "c", "b"]);
        assert_eq!(store.trim_decisions("s", 3, 30).unwrap(), 1);
        assert_eq!(objects(&store, &all), ["d", "c"]);
    }

    /// Late records used to be inserted one at a time, each insertion moving every record after
    /// it: a hand-off of two overlapping batches moved the later batch's records once per record
    /// of the earlier one (a fifth of a batch-check's CPU went to `memmove`; benches/README.md).
    /// They are merged now, once per store and hand-off; this holds the merge to time order, for
    /// late records of several stores in one hand-off, among records kept before it.
    #[test]
    fn late_decisions_of_overlapping_batches_are_merged_in_time_order() {
        let store = MemoryStore::new();
        for id in ["s", "t"] {
            let record = StoreRecord { id: id.into(), name: id.into(), created_at_ms: 0, updated_at_ms: 0 };
            store.create_store(&record).unwrap();
        }
        let in_store = |store_id: &str, time: i64| {
            let mut record = DecisionRecord::sample(time, &format!("{store_id}{time}"));
            record.store_id = store_id.into();
            record
        };
        // Kept already: s at 100..=104.
        store.append_decisions((100..=104).map(|t| in_store("s", t)).collect()).unwrap();
        // One hand-off: a batch of s at 105..=109, then an overlapping one of s at 98..=106
        // interleaved with t's, and one record of a store that is gone.
        let mut handed: Vec<DecisionRecord> = (105..=109).map(|t| in_store("s", t)).collect();
        for t in 98..=106 {
            handed.push(in_store("s", t));
            handed.push(in_store("t", 200 - t));
        }
        handed.push(in_store("gone", 1));
        store.append_decisions(handed).unwrap();
        let all = DecisionFilter { limit: 100, ..DecisionFilter::default() };
        for id in ["s", "t"] {
            let listed = store.decisions(id, &all).unwrap();
            let cursors: Vec<DecisionCursor> = listed.iter().map(|(cursor, _)| *cursor).collect();
            let mut sorted = cursors.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(cursors, sorted, "store {id}: newest first, by cursor");
            assert!(listed
                .iter()
                .all(|(cursor, record)| cursor.time_ms == record.time_ms && record.store_id.as_ref() == id));
        }
        assert_eq!(store.decisions("s", &all).unwrap().len(), 5 + 5 + 9);
        assert_eq!(store.decisions("t", &all).unwrap().len(), 9);
        let times: Vec<i64> = store.decisions("s", &all).unwrap().iter().map(|(c, _)| c.time_ms).collect();
        assert_eq!(times.first(), Some(&109));
        assert_eq!(times.last(), Some(&98));
    }
}
