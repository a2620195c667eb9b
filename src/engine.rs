//! The engine: the one facade over stores, models, tuples and evaluation.
//!
//! What it owns: the order of every write (validate against the model → durable in the store →
//! applied to the in-memory index) and one consistent (model, index, revision) snapshot per read.
//! A read takes its snapshot without a lock and never waits for a write: each store's data is kept
//! in two copies, and the writer changes the one readers have left, then swaps it in
//! (`engine/snapshot.rs`).
//! **Invariant:** the in-memory index of a store always equals the tuples its backend holds at
//! the store's current revision; on open, every index is rebuilt from the backend.
//! Must not import `api`; it is the only module that imports `store`.

use crate::eval::{self, CompiledModel, EvalError, Evaluator, Limits, UserFilter, UNKNOWN};
use crate::index::{
    Index, ObjectId, Overlay, RelationId, SubjectKey, SubjectKind, TypeId, View, NO_RELATION, WILDCARD,
};
use crate::model::{JsonModel, Model, SchemaError};
use crate::store::{StoreError, TupleStore, WriteBatch};
use crate::tuple::{split_object, split_subject, Context, ObjectRef, Subject, SubjectText, Tuple};
use parking_lot::{Condvar, Mutex};
use rayon::prelude::*;
use std::sync::Arc;

mod acl_tags;
mod agent;
mod checkpoint;
mod decide;
mod decisions;
mod explain;
mod follow;
mod limits;
mod read;
mod snapshot;
mod visibility;

pub use crate::eval::{ExpandLeaf, ExpandNode, ExplainNode, NodeResult, Permissionship, Reason};
/// The records the facade takes and hands out, re-exported beside the calls that use them.
pub use crate::record::{ChangeCursor, ChangeOperation, ChangeRecord, DecisionCursor, DecisionFilter, DecisionRecord};
/// A store's record, re-exported so layers above (`api`) need not import `store`.
pub use crate::store::StoreRecord;
pub use crate::tuple::StoredTuple;
pub use acl_tags::{AclTagChanges, AclTagsCursor, AclTagsPage, AclTagsRequest, ObjectTags, ACL_TAG_CHANGES_PER_PAGE};
pub use agent::{
    AudienceCheckRequest, AudienceResult, FilterAnswer, FilterRequest, FilterStrategy, OboCheckRequest, OboDecision,
    DEFAULT_DELEGATION_RELATION, FILTER_CHECK_THRESHOLD,
};
pub use decide::{
    decide, decide_into, CheckWithCause, Decision, DecisionMeta, Denial, DenialKind, LatencyObserver, Question,
};
use decisions::DecisionLog;
pub use decisions::{DecisionLogConfig, DecisionLogMode, DecisionLogStats};
pub use explain::{Explanation, PathTuple, MAX_WOULD_ALLOW};
pub use follow::{POLL_INTERVAL as FOLLOW_POLL_INTERVAL, WRITE_ATTEMPTS as SHARED_WRITE_ATTEMPTS};
pub use limits::{joined, InputLimits};
pub use read::{ReadCursor, ReadPage};
use snapshot::{Snapshots, StoreMap};
pub use visibility::{Visibility, VisibilityRequest, VisibilityStrategy};

/// Why an engine call failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No store with this id.
    #[error("store `{0}` not found")]
    StoreNotFound(String),
    /// No model with this id in the store.
    #[error("authorization model `{0}` not found")]
    ModelNotFound(String),
    /// The store has no model yet.
    #[error("no authorization model found for store `{0}`")]
    NoModel(String),
    /// The model text or JSON is invalid.
    #[error("invalid authorization model: {}", limits::joined(.0))]
    Schema(Vec<SchemaError>),
    /// A type named in a request is not in the model.
    #[error("type `{0}` not found")]
    TypeNotFound(String),
    /// A relation named in a request is not on its type.
    #[error("relation `{type_name}#{relation}` not found")]
    RelationNotFound {
        /// The type.
        type_name: String,
        /// The relation.
        relation: String,
    },
    /// A request field is malformed.
    #[error("{0}")]
    Validation(String),
    /// A tuple to write or delete does not fit the model.
    #[error("invalid tuple `{tuple}`: {reason}")]
    InvalidTuple {
        /// The tuple, as text.
        tuple: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A contextual tuple does not fit the model.
    #[error("invalid contextual tuple `{tuple}`: {reason}")]
    InvalidContextualTuple {
        /// The tuple, as text.
        tuple: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A write writes an existing tuple or deletes a missing one.
    #[error("{0}")]
    WriteConflict(String),
    /// A write names the same tuple twice.
    #[error("duplicate tuple in one request: `{0}`")]
    DuplicateInRequest(String),
    /// A request exceeds a configured limit.
    #[error("{message}")]
    LimitExceeded {
        /// Which limit, as a stable code.
        code: &'static str,
        /// The human message.
        message: String,
    },
    /// Evaluation failed.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// A read asked for a revision the store has not reached within the wait.
    #[error("revision `{requested}` is not available yet: store `{store_id}` is at revision `{current}`")]
    RevisionUnavailable {
        /// The store.
        store_id: String,
        /// The revision the caller asked for (`at_least_revision`).
        requested: u64,
        /// The store's revision when the wait ended.
        current: u64,
    },
    /// A continuation token that this engine cannot resume from.
    #[error("{0}")]
    InvalidContinuationToken(String),
    /// The durable store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The actor the changelog names for deletes made by the expiry sweep.
pub const EXPIRY_SWEEP_ACTOR: &str = "writ:expiry-sweep";

/// Engine settings.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Evaluation bounds.
    pub limits: Limits,
    /// Most tuples (writes plus deletes) in one write request.
    pub max_tuples_per_write: usize,
    /// Limits on identifiers, contextual tuples, models and evaluation time.
    pub input: InputLimits,
    /// What the decision log records and keeps.
    pub decision_log: DecisionLogConfig,
    /// Stores with fewer tuples are never checkpointed (they load fast from their rows).
    pub checkpoint_min_tuples: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            limits: Limits::default(),
            max_tuples_per_write: 1000,
            input: InputLimits::default(),
            decision_log: DecisionLogConfig::default(),
            checkpoint_min_tuples: 100_000,
        }
    }
}

/// One stored model version.
#[derive(Debug, Clone)]
struct ModelVersion {
    id: String,
    model: Arc<Model>,
    compiled: Arc<CompiledModel>,
}

#[derive(Debug, Clone)]
struct StoreData {
    index: Index,
    models: Vec<ModelVersion>,
    revision: u64,
    /// Which load of the store this index is (its ids are this load's): read cursors carry it.
    epoch: u64,
}

impl Default for StoreData {
    fn default() -> Self {
        StoreData { index: Index::default(), models: Vec::new(), revision: 0, epoch: read::next_epoch() }
    }
}

struct StoreState {
    record: StoreRecord,
    writer: Mutex<()>,
    /// Read without locks; written only under `writer`.
    data: Snapshots<StoreData>,
    /// Held while announcing a new revision and while a reader decides to wait, so no
    /// announcement falls between a waiter's check and its sleep.
    revision_lock: Mutex<()>,
    /// Notified after every committed write.
    revision_changed: Condvar,
}

/// Where start-up read a store's tuples from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadedFrom {
    /// Every tuple row.
    Rows,
    /// A checkpoint at `revision`, then `tail` changelog entries after it.
    Checkpoint { revision: u64, tail: usize },
}

/// One committed change to a store's index.
#[derive(Debug, Clone)]
enum IndexChange {
    Insert(StoredTuple),
    Remove(Tuple),
}

impl StoreData {
    /// Parses and compiles stored models (id, JSON) onto the end of the model list.
    fn add_stored_models(&mut self, store_id: &str, stored: Vec<(String, String)>) -> Result<(), EngineError> {
        for (id, json) in stored {
            let model = parse_stored_model(store_id, &id, &json)?;
            let compiled = CompiledModel::compile(&model, &mut self.index);
            self.models.push(ModelVersion { id, model: Arc::new(model), compiled: Arc::new(compiled) });
        }
        Ok(())
    }
}

/// A model as the backend stores it. Validated when written, by the rules of its language
/// (OpenFGA's or SpiceDB's): re-checking with OpenFGA's would refuse a stored SpiceDB model.
fn parse_stored_model(store_id: &str, id: &str, json: &str) -> Result<Model, EngineError> {
    let parsed: JsonModel = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("model `{id}` in store `{store_id}`: {e}")))?;
    Model::from_json_unchecked(&parsed).map_err(EngineError::Schema)
}

impl StoreState {
    /// Applies committed changes, in order, and the revision they reach; publishes the result
    /// to readers and wakes those waiting for a newer revision. The caller holds `writer`.
    fn apply(&self, changes: Vec<IndexChange>, revision: u64) {
        self.data.write(move |data| {
            for change in &changes {
                match change {
                    IndexChange::Insert(stored) => {
                        data.index.insert_expiring(&stored.tuple, stored.expires_at_ms);
                    }
                    IndexChange::Remove(tuple) => {
                        data.index.remove(tuple);
                    }
                }
            }
            data.revision = data.revision.max(revision);
        });
        let _announce = self.revision_lock.lock();
        self.revision_changed.notify_all();
    }

    fn new(record: StoreRecord, data: StoreData) -> StoreState {
        StoreState {
            record,
            writer: Mutex::new(()),
            data: Snapshots::new(data),
            revision_lock: Mutex::new(()),
            revision_changed: Condvar::new(),
        }
    }
}

/// The engine's clock: the current time in milliseconds since the Unix epoch. Tuple expiry,
/// store timestamps and the decision log all read it, so tests can set time without sleeping.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    })
}

/// The authorization engine over one backend.
pub struct Engine {
    backend: Arc<dyn TupleStore>,
    stores: StoreMap,
    config: EngineConfig,
    clock: Clock,
    decisions: DecisionLog,
    /// Set when the backend is shared with other nodes (see `follow`).
    follow: Option<follow::Follow>,
}

/// What every read-side request may add to its question (check, batch-check, expand, list
/// objects, list users, obo-check, audience-check, filter): tuples that count for it alone,
/// condition context, and a pinned model. `api` reads it once from the options every request body
/// shares, and the request types take its fields.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// Tuples that count for this request only.
    pub contextual_tuples: Vec<Tuple>,
    /// Condition context.
    pub context: Context,
    /// A model version; the latest when `None`.
    pub model_id: Option<String>,
}

/// A check: does `user` hold `relation` on `object`?
#[derive(Debug, Clone, Default)]
pub struct CheckRequest {
    /// The object, `document:1`.
    pub object: String,
    /// The relation.
    pub relation: String,
    /// The user, `user:anne`, `user:*` or `group:eng#member`.
    pub user: String,
    /// Tuples that count for this request only.
    pub contextual_tuples: Vec<Tuple>,
    /// Condition context.
    pub context: Context,
    /// A model version; the latest when `None`.
    pub model_id: Option<String>,
}

/// List objects: which objects of a type does `user` hold `relation` on?
#[derive(Debug, Clone, Default)]
pub struct ListObjectsRequest {
    /// The object type.
    pub object_type: String,
    /// The relation.
    pub relation: String,
    /// The user.
    pub user: String,
    /// Tuples that count for this request only.
    pub contextual_tuples: Vec<Tuple>,
    /// Condition context.
    pub context: Context,
    /// A model version; the latest when `None`.
    pub model_id: Option<String>,
}

/// One user filter of list users: a type, and for usersets a relation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilterSpec {
    /// The subject type.
    pub type_name: String,
    /// The userset relation, if any.
    pub relation: Option<String>,
}

/// List users: which subjects of the filter types hold `relation` on `object`?
#[derive(Debug, Clone, Default)]
pub struct ListUsersRequest {
    /// The object, `document:1`.
    pub object: String,
    /// The relation.
    pub relation: String,
    /// Which subjects to return (OpenFGA takes exactly one).
    pub user_filters: Vec<UserFilterSpec>,
    /// Tuples that count for this request only.
    pub contextual_tuples: Vec<Tuple>,
    /// Condition context.
    pub context: Context,
    /// A model version; the latest when `None`.
    pub model_id: Option<String>,
}

/// A write request: deletes and writes applied atomically.
#[derive(Debug, Clone, Default)]
pub struct WriteRequest {
    /// Tuples to add.
    pub writes: Vec<StoredTuple>,
    /// Tuples to remove.
    pub deletes: Vec<Tuple>,
    /// Validate against this model version; the latest when `None`.
    pub model_id: Option<String>,
    /// Skip writes of tuples that already exist instead of failing.
    pub ignore_duplicates: bool,
    /// Skip deletes of tuples that do not exist instead of failing.
    pub ignore_missing: bool,
    /// Who makes the write (a key's name or id, never a key), recorded on each changelog entry.
    pub actor: Option<String>,
}

/// A filter for reading stored tuples.
#[derive(Debug, Clone, Default)]
pub struct ReadFilter {
    /// Only this object type.
    pub object_type: Option<String>,
    /// Only this object id (requires `object_type`).
    pub object_id: Option<String>,
    /// Only this relation.
    pub relation: Option<String>,
    /// Only this user (`user:anne`, `user:*`, `group:x#member`, or `user:` for a type).
    pub user: Option<String>,
}

/// An answer with the revision it was computed at.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    /// The answer.
    pub value: T,
    /// The store revision it reflects.
    pub revision: u64,
}

/// A model version as listed.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Its id.
    pub id: String,
    /// The model.
    pub model: Arc<Model>,
}

/// A new ULID, strictly increasing within this process so ids sort in creation order.
fn new_id() -> String {
    static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);
    let mut generator = GENERATOR.lock();
    let generator = generator.get_or_insert_with(ulid::Generator::new);
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new()).to_string()
}

impl Engine {
    /// An engine over `backend`, rebuilding every store's index from it.
    pub fn open(backend: Box<dyn TupleStore>, config: EngineConfig) -> Result<Engine, EngineError> {
        Engine::open_with_clock(backend, config, system_clock())
    }

    /// An engine over `backend` that reads time from `clock` (tests set time without sleeping).
    pub fn open_with_clock(
        backend: Box<dyn TupleStore>,
        config: EngineConfig,
        clock: Clock,
    ) -> Result<Engine, EngineError> {
        let backend: Arc<dyn TupleStore> = Arc::from(backend);
        let decisions = DecisionLog::start(config.decision_log, backend.clone(), clock.clone());
        let mut engine = Engine { backend, stores: StoreMap::default(), config, clock, decisions, follow: None };
        if engine.backend.is_shared() {
            engine.follow = Some(follow::Follow::start(&engine.backend, &engine.stores)?);
            return Ok(engine);
        }
        for record in engine.backend.list_stores()? {
            let started = std::time::Instant::now();
            let (state, from) = engine.load_store(record)?;
            let (id, due) = (state.record.id.clone(), engine.checkpoint_due(&state, from));
            tracing::info!(store = %id, tuples = state.data.read().index.len(), ?from, seconds = started.elapsed().as_secs_f64(), "loaded");
            engine.stores.insert(id.clone(), Arc::new(state));
            if due {
                // The next start reads this checkpoint instead of every row; a failure costs
                // only that.
                let started = std::time::Instant::now();
                match engine.checkpoint(&id) {
                    Ok(_) => tracing::info!(store = %id, seconds = started.elapsed().as_secs_f64(), "checkpointed"),
                    Err(error) => tracing::warn!(store = %id, %error, "checkpoint not written"),
                }
            }
        }
        Ok(engine)
    }

    /// An engine with no disk (tests, demos).
    pub fn in_memory() -> Engine {
        Engine::in_memory_with(EngineConfig::default())
    }

    /// An engine with no disk and the given settings.
    pub fn in_memory_with(config: EngineConfig) -> Engine {
        let backend: Arc<dyn TupleStore> = Arc::new(crate::store::MemoryStore::new());
        let clock = system_clock();
        let decisions = DecisionLog::start(config.decision_log, backend.clone(), clock.clone());
        Engine { backend, stores: StoreMap::default(), config, clock, decisions, follow: None }
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The bounds of one evaluation starting now: the configured depth and a fresh deadline.
    fn eval_limits(&self) -> Limits {
        Limits { deadline: self.config.input.deadline(), ..self.config.limits }
    }

    fn load_store(&self, record: StoreRecord) -> Result<(StoreState, LoadedFrom), EngineError> {
        let (data, from) = self.load_data(&record.id)?;
        Ok((StoreState::new(record, data), from))
    }

    fn store(&self, store_id: &str) -> Result<Arc<StoreState>, EngineError> {
        let found = self.stores.get(store_id);
        found
            .or_else(|| self.follow.as_ref().and_then(|follow| follow.find_store(store_id)))
            .ok_or_else(|| EngineError::StoreNotFound(store_id.to_string()))
    }

    /// Creates a store.
    pub fn create_store(&self, name: &str) -> Result<StoreRecord, EngineError> {
        let now = (self.clock)();
        let record = StoreRecord { id: new_id(), name: name.to_string(), created_at_ms: now, updated_at_ms: now };
        let _membership = self.follow.as_ref().map(follow::Follow::lock_membership);
        self.backend.create_store(&record)?;
        let state = StoreState::new(record.clone(), StoreData::default());
        self.stores.insert(record.id.clone(), Arc::new(state));
        Ok(record)
    }

    /// A store's record.
    pub fn get_store(&self, store_id: &str) -> Result<StoreRecord, EngineError> {
        Ok(self.store(store_id)?.record.clone())
    }

    /// Every store, oldest first.
    pub fn list_stores(&self) -> Vec<StoreRecord> {
        let mut records: Vec<StoreRecord> = self.stores.all().into_iter().map(|(_, s)| s.record.clone()).collect();
        records.sort_by(|a, b| a.id.cmp(&b.id));
        records
    }

    /// Deletes a store and everything in it.
    pub fn delete_store(&self, store_id: &str) -> Result<(), EngineError> {
        let state = self.store(store_id)?;
        let _membership = self.follow.as_ref().map(follow::Follow::lock_membership);
        let _writer = state.writer.lock();
        self.backend.delete_store(store_id)?;
        self.stores.remove(store_id);
        Ok(())
    }

    /// Adds a model version to a store; returns its id.
    pub fn write_model(&self, store_id: &str, model: Model) -> Result<String, EngineError> {
        let state = self.store(store_id)?;
        let _writer = state.writer.lock();
        let id = new_id();
        let json = serde_json::to_string(&model.to_json())
            .map_err(|e| EngineError::Validation(format!("model cannot be serialized: {e}")))?;
        self.config.input.model(&model, &json)?;
        let invalid_conditions = crate::eval::condition_errors(&model);
        if !invalid_conditions.is_empty() {
            return Err(EngineError::Schema(invalid_conditions));
        }
        self.backend.write_model(store_id, &id, &json)?;
        if let Some(follow) = &self.follow {
            // Other nodes write models too: take the backend's list, in the backend's order.
            follow.sync_models(&state)?;
            return Ok(id);
        }
        let (model, version_id) = (Arc::new(model), id.clone());
        state.data.write(move |data| {
            let compiled = CompiledModel::compile(&model, &mut data.index);
            data.models.push(ModelVersion {
                id: version_id.clone(),
                model: model.clone(),
                compiled: Arc::new(compiled),
            });
        });
        Ok(id)
    }

    /// A model version (the latest when `model_id` is `None`).
    pub fn model(&self, store_id: &str, model_id: Option<&str>) -> Result<ModelInfo, EngineError> {
        let state = self.store(store_id)?;
        let data = state.data.read();
        let version = find_model(&data, store_id, model_id)?;
        Ok(ModelInfo { id: version.id.clone(), model: version.model.clone() })
    }

    /// Every model version, newest first (as OpenFGA lists them).
    pub fn models(&self, store_id: &str) -> Result<Vec<ModelInfo>, EngineError> {
        let state = self.store(store_id)?;
        let data = state.data.read();
        Ok(data.models.iter().rev().map(|v| ModelInfo { id: v.id.clone(), model: v.model.clone() }).collect())
    }

    /// The store's current revision.
    pub fn revision(&self, store_id: &str) -> Result<u64, EngineError> {
        Ok(self.store(store_id)?.data.read().revision)
    }

    /// Number of tuples in a store.
    pub fn tuple_count(&self, store_id: &str) -> Result<usize, EngineError> {
        Ok(self.store(store_id)?.data.read().index.len())
    }

    /// Applies a write atomically and durably; returns the new revision.
    pub fn write(&self, store_id: &str, request: WriteRequest) -> Result<u64, EngineError> {
        let total = request.writes.len() + request.deletes.len();
        if total > self.config.max_tuples_per_write {
            return Err(EngineError::LimitExceeded {
                code: "exceeded_entity_limit",
                message: format!(
                    "write has {total} tuples, more than the limit of {} per request",
                    self.config.max_tuples_per_write
                ),
            });
        }
        if total == 0 {
            return Err(EngineError::Validation("write must contain at least one tuple to write or delete".into()));
        }
        for tuple in request.writes.iter().map(|stored| &stored.tuple).chain(&request.deletes) {
            self.config.input.tuple(tuple)?;
        }
        let actor = request.actor.clone();
        let state = self.store(store_id)?;
        if let Some(follow) = &self.follow {
            return self.write_shared(follow, &state, request);
        }
        let _writer = state.writer.lock();
        let now = (self.clock)();
        let (writes, deletes) = {
            let data = state.data.read();
            let version = find_model(&data, store_id, request.model_id.as_deref())?;
            self.plan_write(&data.index, &version.model, request, now)?
        };
        if writes.is_empty() && deletes.is_empty() {
            return Ok(state.data.read().revision);
        }
        let delete_records: Vec<StoredTuple> = deletes.iter().cloned().map(StoredTuple::new).collect();
        let batch = WriteBatch::new(&delete_records, &writes, (self.clock)()).by(actor.as_deref());
        let revision = self.backend.write(store_id, &batch)?;
        let changes = deletes.into_iter().map(IndexChange::Remove).chain(writes.into_iter().map(IndexChange::Insert));
        state.apply(changes.collect(), revision);
        Ok(revision)
    }

    /// Waits up to `timeout` until the store reaches revision `at_least`; returns the store's
    /// revision then, or [`EngineError::RevisionUnavailable`] naming both revisions.
    ///
    /// This is the single-node form of Zanzibar's zookie: a client that wrote at revision N and
    /// reads with `at_least_revision: N` never sees an older state. Blocks the calling thread.
    pub fn wait_for_revision(
        &self,
        store_id: &str,
        at_least: u64,
        timeout: std::time::Duration,
    ) -> Result<u64, EngineError> {
        let state = self.store(store_id)?;
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
                    store_id: store_id.to_string(),
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
    pub fn written_at(&self, store_id: &str, tuples: &[Tuple]) -> Result<Vec<i64>, EngineError> {
        let state = self.store(store_id)?;
        let times = self.backend.written_at(store_id, tuples)?;
        Ok(times.into_iter().map(|time| time.unwrap_or(state.record.created_at_ms)).collect())
    }

    /// The engine clock's current time, milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    /// Deletes a store's expired tuples as one ordinary write (a new revision whose changelog
    /// lists each as a delete); returns that revision, or `None` when nothing had expired.
    /// It holds the store's writer lock, so it never interleaves with a user's write.
    pub fn sweep_expired(&self, store_id: &str) -> Result<Option<u64>, EngineError> {
        let state = self.store(store_id)?;
        if self.follow.is_some() {
            return self.sweep_expired_shared(&state);
        }
        let _writer = state.writer.lock();
        let now = (self.clock)();
        let mut expired = state.data.read().index.expired_tuples(now);
        if expired.is_empty() {
            return Ok(None);
        }
        expired.sort_by_cached_key(|(tuple, _)| tuple.to_string());
        let deletes: Vec<StoredTuple> =
            expired.into_iter().map(|(tuple, at)| StoredTuple { tuple, expires_at_ms: Some(at) }).collect();
        let mut revision = None;
        for chunk in deletes.chunks(self.config.max_tuples_per_write.max(1)) {
            let next = self.backend.write(store_id, &WriteBatch::new(chunk, &[], now).by(Some(EXPIRY_SWEEP_ACTOR)))?;
            state.apply(chunk.iter().map(|stored| IndexChange::Remove(stored.tuple.clone())).collect(), next);
            revision = Some(next);
        }
        Ok(revision)
    }

    /// True when the decision log would record a decision with this outcome (by its mode):
    /// test it before building a [`DecisionRecord`], so unrecorded decisions cost nothing.
    pub fn wants_decision(&self, allowed: bool) -> bool {
        self.decisions.wants(allowed)
    }

    /// Records a check-like decision in the decision log, if its mode wants it. Never blocks
    /// and never fails: the record is queued for a background writer, or counted as dropped
    /// when the queue is full. An empty `model_id` is filled with the store's latest model.
    pub fn record_decision(&self, record: DecisionRecord) {
        if !self.decisions.wants(record.allowed) {
            return;
        }
        self.record_decisions(vec![record]);
    }

    /// Records several decisions, in order, as one hand-off to the decision log (see
    /// [`Engine::record_decision`]): when they do not all fit in its queue, all are dropped.
    pub fn record_decisions(&self, mut records: Vec<DecisionRecord>) {
        records.retain(|record| self.decisions.wants(record.allowed));
        let mut latest: Option<(String, String)> = None;
        for record in records.iter_mut().filter(|record| record.model_id.is_empty()) {
            if latest.as_ref().is_none_or(|(store_id, _)| *store_id != record.store_id) {
                let model_id = self
                    .store(&record.store_id)
                    .ok()
                    .and_then(|state| state.data.read().models.last().map(|latest| latest.id.clone()));
                latest = Some((record.store_id.clone(), model_id.unwrap_or_default()));
            }
            if let Some((_, model_id)) = &latest {
                record.model_id.clone_from(model_id);
            }
        }
        self.decisions.record_all(records);
    }

    /// A store's recorded decisions passing `filter`, newest first, after storing every
    /// decision recorded so far.
    pub fn decisions(
        &self,
        store_id: &str,
        filter: &DecisionFilter,
    ) -> Result<Vec<(DecisionCursor, DecisionRecord)>, EngineError> {
        self.store(store_id)?;
        let log = self
            .backend
            .decision_log()
            .ok_or_else(|| EngineError::Validation("this datastore keeps no decision log".into()))?;
        self.decisions.flush();
        Ok(log.decisions(store_id, filter)?)
    }

    /// One recorded decision of a store, by where it sits in the log; `None` when the log holds
    /// no record there (never recorded, or trimmed since).
    pub fn decision(&self, store_id: &str, cursor: DecisionCursor) -> Result<Option<DecisionRecord>, EngineError> {
        // Newest first, strictly before the next sequence number and not before its millisecond:
        // the first record found is the one at `cursor`, if it is still there.
        let filter = DecisionFilter {
            since_ms: Some(cursor.time_ms),
            before: Some(DecisionCursor { time_ms: cursor.time_ms, seq: cursor.seq.saturating_add(1) }),
            limit: 1,
            ..DecisionFilter::default()
        };
        let found = self.decisions(store_id, &filter)?;
        Ok(found.into_iter().find(|(at, _)| *at == cursor).map(|(_, record)| record))
    }

    /// Waits until every decision recorded so far is stored and the log is trimmed to its
    /// retention bounds.
    pub fn flush_decisions(&self) {
        self.decisions.flush();
    }

    /// The decision log's counters (queued and dropped records).
    pub fn decision_log_stats(&self) -> DecisionLogStats {
        self.decisions.stats()
    }

    /// Sweeps every store's expired tuples (see [`Engine::sweep_expired`]); returns how many
    /// stores got a new revision.
    pub fn sweep_all_expired(&self) -> Result<usize, EngineError> {
        let ids: Vec<String> = self.stores.ids();
        let mut swept = 0;
        for id in ids {
            match self.sweep_expired(&id) {
                Ok(Some(_)) => swept += 1,
                Ok(None) | Err(EngineError::StoreNotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(swept)
    }

    fn plan_write(
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

    /// Runs `f` over one consistent snapshot of a store with the request's contextual tuples laid over it.
    fn with_snapshot<T>(
        &self,
        store_id: &str,
        model_id: Option<&str>,
        contextual_tuples: &[Tuple],
        f: impl FnOnce(&CompiledModel, View<'_>) -> Result<T, EngineError>,
    ) -> Result<Answer<T>, EngineError> {
        self.config.input.contextual_tuples(contextual_tuples)?;
        let state = self.store(store_id)?;
        let data = state.data.read();
        let version = find_model(&data, store_id, model_id)?;
        for tuple in contextual_tuples {
            validate_tuple(&version.model, tuple)
                .map_err(|reason| EngineError::InvalidContextualTuple { tuple: tuple.to_string(), reason })?;
        }
        // One instant per request; the clock is read only when some tuple can expire.
        let now = if data.index.expiring_len() > 0 { (self.clock)() } else { i64::MIN };
        let value = if contextual_tuples.is_empty() {
            f(&version.compiled, View::new(&data.index).at(now))?
        } else {
            let overlay = Overlay::new(&data.index, contextual_tuples);
            f(&version.compiled, overlay.view(&data.index).at(now))?
        };
        Ok(Answer { value, revision: data.revision })
    }

    /// Answers a check.
    pub fn check(&self, store_id: &str, request: &CheckRequest) -> Result<Answer<bool>, EngineError> {
        self.config.input.request(&request.object, &request.relation, &request.user)?;
        let (object_type, object_id) = split_object(&request.object).map_err(as_input_error)?;
        let user = split_subject(&request.user).map_err(as_input_error)?;
        self.with_snapshot(store_id, request.model_id.as_deref(), &request.contextual_tuples, |compiled, view| {
            let evaluator = Evaluator { model: compiled, view, limits: self.eval_limits(), context: &request.context };
            // OpenFGA answers every malformed check with `validation_error`, unlike list calls.
            let (object_type_id, relation) =
                resolve_object_relation(&evaluator, object_type, &request.relation).map_err(as_validation)?;
            let user_key = resolve_subject(&evaluator, user).map_err(as_validation)?;
            // A userset holds its own relation, whether or not any tuple names its object.
            if user.relation == Some(request.relation.as_str())
                && (user.subject_type, user.id) == (object_type, Some(object_id))
            {
                return Ok(true);
            }
            let object = evaluator.object_id(object_type_id, object_id);
            Ok(eval::check(&evaluator, object_type_id, object, relation, user_key)?)
        })
    }

    /// Answers a check with SpiceDB's three-valued semantics: a condition whose context
    /// parameters are missing makes the answer [`Permissionship::Conditional`] instead of an
    /// error. [`Engine::check`] keeps OpenFGA's behaviour.
    pub fn check_permissionship(
        &self,
        store_id: &str,
        request: &CheckRequest,
    ) -> Result<Answer<Permissionship>, EngineError> {
        self.config.input.request(&request.object, &request.relation, &request.user)?;
        let (object_type, object_id) = split_object(&request.object).map_err(as_input_error)?;
        let user = split_subject(&request.user).map_err(as_input_error)?;
        self.with_snapshot(store_id, request.model_id.as_deref(), &request.contextual_tuples, |compiled, view| {
            let evaluator = Evaluator { model: compiled, view, limits: self.eval_limits(), context: &request.context };
            let (object_type_id, relation) =
                resolve_object_relation(&evaluator, object_type, &request.relation).map_err(as_validation)?;
            let user_key = resolve_subject(&evaluator, user).map_err(as_validation)?;
            if user.relation == Some(request.relation.as_str())
                && (user.subject_type, user.id) == (object_type, Some(object_id))
            {
                return Ok(Permissionship::Allowed);
            }
            let object = evaluator.object_id(object_type_id, object_id);
            Ok(eval::check_partial(&evaluator, object_type_id, object, relation, user_key)?)
        })
    }

    /// Lists the objects of a type on which the user holds the relation, sorted.
    pub fn list_objects(
        &self,
        store_id: &str,
        request: &ListObjectsRequest,
    ) -> Result<Answer<Vec<String>>, EngineError> {
        self.config.input.type_name(&request.object_type)?;
        self.config.input.relation(&request.relation)?;
        self.config.input.user(&request.user)?;
        let user = split_subject(&request.user).map_err(as_input_error)?;
        self.with_snapshot(store_id, request.model_id.as_deref(), &request.contextual_tuples, |compiled, view| {
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
            let ids: Vec<ObjectId> = objects.iter().collect();
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
    pub fn list_users(&self, store_id: &str, request: &ListUsersRequest) -> Result<Answer<Vec<Subject>>, EngineError> {
        self.config.input.object(&request.object)?;
        self.config.input.relation(&request.relation)?;
        let object: ObjectRef = request.object.parse().map_err(as_input_error)?;
        let [filter] = request.user_filters.as_slice() else {
            return Err(EngineError::Validation("list users takes exactly one user filter".into()));
        };
        self.with_snapshot(store_id, request.model_id.as_deref(), &request.contextual_tuples, |compiled, view| {
            let evaluator = Evaluator { model: compiled, view, limits: self.eval_limits(), context: &request.context };
            let (object_type, relation) = resolve_object_relation(&evaluator, &object.object_type, &request.relation)?;
            let filter_type = resolve_type(&evaluator, &filter.type_name)?;
            let filter_relation = match &filter.relation {
                Some(r) => resolve_object_relation(&evaluator, &filter.type_name, r)?.1,
                None => NO_RELATION,
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
            if object_id == UNKNOWN
                && filter_type == object_type
                && filter.relation.as_deref() == Some(&request.relation)
            {
                subjects.push(Subject::Userset { object: object.clone(), relation: request.relation.clone() });
            }
            if users.wildcard && filter.relation.is_none() {
                subjects.push(Subject::Wildcard(filter.type_name.clone()));
            }
            for id in &users.ids {
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
        store_id: &str,
        object: &str,
        relation: &str,
        model_id: Option<&str>,
        contextual_tuples: &[Tuple],
    ) -> Result<Answer<ExpandNode>, EngineError> {
        self.config.input.object(object)?;
        self.config.input.relation(relation)?;
        let object: ObjectRef = object.parse().map_err(as_input_error)?;
        let context = Context::new();
        self.with_snapshot(store_id, model_id, contextual_tuples, |compiled, view| {
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
        store_id: &str,
        after: Option<ChangeCursor>,
        object_type: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ChangeRecord>, EngineError> {
        self.store(store_id)?;
        Ok(self.backend.changes(store_id, after, object_type, limit)?)
    }

    /// Stores a model's assertions (opaque JSON).
    pub fn write_assertions(&self, store_id: &str, model_id: &str, assertions_json: &str) -> Result<(), EngineError> {
        self.model(store_id, Some(model_id))?;
        Ok(self.backend.write_assertions(store_id, model_id, assertions_json)?)
    }

    /// A model's assertions (opaque JSON), if written.
    pub fn assertions(&self, store_id: &str, model_id: &str) -> Result<Option<String>, EngineError> {
        self.model(store_id, Some(model_id))?;
        Ok(self.backend.assertions(store_id, model_id)?)
    }
}

/// Starts a background thread that sweeps every store's expired tuples every `interval`
/// (see [`Engine::sweep_expired`]); it ends by itself once the engine is dropped.
pub fn spawn_expiry_sweeper(engine: &Arc<Engine>, interval: std::time::Duration) -> std::io::Result<()> {
    let engine = Arc::downgrade(engine);
    std::thread::Builder::new().name("writ-expiry-sweep".into()).spawn(move || loop {
        std::thread::sleep(interval);
        let Some(engine) = engine.upgrade() else { return };
        if let Err(error) = engine.sweep_all_expired() {
            tracing::warn!(%error, "expired tuples not swept");
        }
    })?;
    Ok(())
}

fn find_model<'d>(
    data: &'d StoreData,
    store_id: &str,
    model_id: Option<&str>,
) -> Result<&'d ModelVersion, EngineError> {
    match model_id {
        Some(id) => data.models.iter().find(|v| v.id == id).ok_or_else(|| EngineError::ModelNotFound(id.to_string())),
        None => data.models.last().ok_or_else(|| EngineError::NoModel(store_id.to_string())),
    }
}

fn as_validation(error: EngineError) -> EngineError {
    match error {
        EngineError::TypeNotFound(_) | EngineError::RelationNotFound { .. } => {
            EngineError::Validation(format!("invalid request: {error}"))
        }
        other => other,
    }
}

fn as_input_error(error: crate::tuple::TupleError) -> EngineError {
    EngineError::Validation(error.to_string())
}

/// The id of a type the request's model defines.
fn resolve_type(evaluator: &Evaluator<'_>, type_name: &str) -> Result<TypeId, EngineError> {
    evaluator
        .view
        .type_id(type_name)
        .filter(|&id| evaluator.model.has_type(id))
        .ok_or_else(|| EngineError::TypeNotFound(type_name.to_string()))
}

/// The ids of a relation the request's model defines on a type.
fn resolve_object_relation(
    evaluator: &Evaluator<'_>,
    type_name: &str,
    relation: &str,
) -> Result<(TypeId, RelationId), EngineError> {
    let object_type = resolve_type(evaluator, type_name)?;
    evaluator
        .view
        .relation_id(relation)
        .filter(|&id| evaluator.model.relation(object_type, id).is_some())
        .map(|id| (object_type, id))
        .ok_or_else(|| EngineError::RelationNotFound {
            type_name: type_name.to_string(),
            relation: relation.to_string(),
        })
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

/// The index key of a request's user, after checking its type (and relation) against the model;
/// an id no tuple names resolves to [`UNKNOWN`].
fn resolve_subject(evaluator: &Evaluator<'_>, user: SubjectText<'_>) -> Result<SubjectKey, EngineError> {
    let (subject_type, relation) = match user.relation {
        Some(relation) => resolve_object_relation(evaluator, user.subject_type, relation)?,
        None => (resolve_type(evaluator, user.subject_type)?, NO_RELATION),
    };
    let object = match user.id {
        Some(id) => evaluator.object_id(subject_type, id),
        None => WILDCARD,
    };
    Ok(SubjectKey { kind: SubjectKind { subject_type, relation }, object })
}

/// Checks a tuple against the model's types, relations and type restrictions, as OpenFGA does.
fn validate_tuple(model: &Model, tuple: &Tuple) -> Result<(), String> {
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
