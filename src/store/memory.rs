//! [`MemoryStore`]: the in-process backend of [`TupleStore`], for tests and ephemeral servers.
//!
//! Invariant: behaves exactly like [`super::SledStore`] minus durability (same ordering of
//! tuples, stores and changes), so it serves as the reference model in tests. All state sits
//! behind one `RwLock`; mutations take it exclusively, which also serializes writes.
//! Must not import anything in the crate but `crate::tuple` and its siblings in `store`.

use std::collections::{BTreeMap, HashMap};

use parking_lot::RwLock;

use super::{
    ApprovalRecord, ApprovalStore, ChangeCursor, ChangeOperation, ChangeRecord, DecisionCursor, DecisionFilter,
    DecisionLogStore, DecisionRecord, StoreError, StoreRecord, StoredTuple, TupleStore, WriteBatch,
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
    tuples: BTreeMap<TupleKey, (StoredTuple, i64)>,
    changes: Vec<ChangeRecord>,
    /// For each object type, the positions in `changes` of its entries, ascending: a change
    /// feed filtered by type reads only its page, not the entries of other types it skips.
    changes_by_type: HashMap<String, Vec<usize>>,
    models: Vec<(String, String)>,
    assertions: HashMap<String, String>,
    decisions: BTreeMap<DecisionCursor, DecisionRecord>,
    approvals: BTreeMap<String, ApprovalRecord>,
}

/// A [`TupleStore`] held entirely in memory; lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    stores: RwLock<BTreeMap<String, StoreData>>,
    next_decision_seq: std::sync::atomic::AtomicU64,
}

impl MemoryStore {
    /// An empty store set.
    pub fn new() -> Self {
        Self::default()
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
                planned.check(store_id, d.revision, deletes, writes, || {
                    let first = d.changes.partition_point(|c| c.cursor.revision <= planned.revision);
                    Ok(d.changes[first..].to_vec())
                })?;
            }
            let revision = d.revision.checked_add(1).ok_or_else(|| StoreError::Corrupt("revision overflow".into()))?;
            let entries = deletes
                .iter()
                .map(|t| (ChangeOperation::Delete, t))
                .chain(writes.iter().map(|t| (ChangeOperation::Write, t)));
            let mut changes = Vec::with_capacity(deletes.len() + writes.len());
            for (i, (operation, t)) in entries.enumerate() {
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
            for t in deletes {
                d.tuples.remove(&tuple_key(&t.tuple));
            }
            for t in writes {
                d.tuples.insert(tuple_key(&t.tuple), (t.clone(), timestamp_ms));
            }
            for change in changes {
                let object_type = &change.tuple.tuple.object.object_type;
                let positions = match d.changes_by_type.get_mut(object_type.as_str()) {
                    Some(positions) => positions,
                    None => d.changes_by_type.entry(object_type.clone()).or_default(),
                };
                positions.push(d.changes.len());
                d.changes.push(change);
            }
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
            changes: Vec::new(),
            changes_by_type: HashMap::new(),
            models: Vec::new(),
            assertions: HashMap::new(),
            decisions: BTreeMap::new(),
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
        self.read(store_id, |d| d.tuples.values().map(|(t, _)| t.clone()).collect())
    }

    fn written_at(&self, store_id: &str, tuples: &[Tuple]) -> Result<Vec<Option<i64>>, StoreError> {
        self.read(store_id, |d| tuples.iter().map(|t| d.tuples.get(&tuple_key(t)).map(|(_, at)| *at)).collect())
    }

    fn revision(&self, store_id: &str) -> Result<u64, StoreError> {
        self.read(store_id, |d| d.revision)
    }

    fn changes(
        &self,
        store_id: &str,
        after: Option<ChangeCursor>,
        object_type: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, StoreError> {
        self.read(store_id, |d| {
            let start = after.map_or(0, |a| d.changes.partition_point(|c| c.cursor <= a));
            match object_type {
                None => d.changes.iter().skip(start).take(limit).cloned().collect(),
                Some(ty) => {
                    let positions = d.changes_by_type.get(ty).map(Vec::as_slice).unwrap_or_default();
                    let first = positions.partition_point(|&p| p < start);
                    positions[first..].iter().take(limit).filter_map(|&p| d.changes.get(p)).cloned().collect()
                }
            }
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
        for record in records {
            if let Some(data) = stores.get_mut(&record.store_id) {
                let seq = self.next_decision_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                data.decisions.insert(DecisionCursor { time_ms: record.time_ms, seq }, record);
            }
        }
        Ok(())
    }

    fn decisions(
        &self,
        store_id: &str,
        filter: &DecisionFilter,
    ) -> Result<Vec<(DecisionCursor, DecisionRecord)>, StoreError> {
        self.read(store_id, |d| {
            d.decisions
                .iter()
                .rev()
                .filter(|(cursor, record)| filter.matches(**cursor, record))
                .take(filter.limit)
                .map(|(cursor, record)| (*cursor, record.clone()))
                .collect()
        })
    }

    fn trim_decisions(&self, store_id: &str, keep: usize, older_than_ms: i64) -> Result<usize, StoreError> {
        self.mutate(store_id, |d| {
            let before = d.decisions.len();
            let excess = before.saturating_sub(keep);
            // The oldest record kept: past the `excess` oldest and not older than the age bound.
            // One split drops everything before it (removing records one at a time rebalances
            // the tree, moving whole records, on each removal).
            let first_kept = d
                .decisions
                .keys()
                .enumerate()
                .find(|(i, cursor)| *i >= excess && cursor.time_ms >= older_than_ms)
                .map(|(_, cursor)| *cursor);
            let kept = match first_kept {
                Some(cursor) => d.decisions.split_off(&cursor),
                None => BTreeMap::new(),
            };
            let removed = std::mem::replace(&mut d.decisions, kept);
            Ok(removed.len())
        })
    }
}
