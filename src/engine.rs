//! The engine: the one facade over stores, models, tuples and evaluation.
//!
//! What it owns: the order of every write (validate against the model → durable in the store →
//! applied to the in-memory index) and one consistent (model, index, revision) snapshot per read.
//! A read takes its snapshot without a lock and never waits for a write: each store's data is kept
//! in two copies, and the writer changes the one readers have left, then swaps it in
//! (`engine/snapshot.rs`).
//!
//! Its shape: [`Engine`] holds the set of stores (create, get, list, delete), the settings and
//! the clock, and four services beside it, the decision log ([`Engine::decision_log`]),
//! checkpointing ([`Engine::checkpoints`]), approvals ([`Engine::approvals`]) and alerts
//! ([`Engine::alerts`], fed by the decision log). Everything scoped to one store is a method of the
//! [`StoreHandle`] that [`Engine::store`] resolves once (`engine/handle.rs`). Whether the backend
//! is this process's alone or shared with other nodes is decided once, at open, by the write
//! path the engine picks (`engine/write.rs`); no operation asks again.
//! **Invariant:** the in-memory index of a store always equals the tuples its backend holds at
//! the store's current revision; on open, every index is rebuilt from the backend.
//! **Invariant:** a [`StoreHandle`] is only obtained for an existing store; operations on a
//! deleted store's handle answer [`EngineError::StoreNotFound`].
//! Must not import `api`; it is the only module that imports `store`.

use crate::eval::{CompiledModel, EvalError, Evaluator, Limits, User};
use crate::index::{Index, ObjectId, ObjectTypeId, RelationId, SubjectKind};
use crate::model::{JsonModel, Model, SchemaError};
use crate::store::{StoreError, TupleStore};
use crate::tuple::{Context, SubjectText, Tuple};
use parking_lot::{Condvar, Mutex, MutexGuard};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Declares a read-side request type: its own fields, then the three every such request shares
/// ([`QueryOptions`]'s, spelled out so callers name them directly), each documented once here.
macro_rules! read_request {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$field_meta:meta])* pub $field:ident: $type:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $type,)*
            /// Tuples that count for this request only.
            pub contextual_tuples: Vec<Tuple>,
            /// Condition context.
            pub context: Context,
            /// A model version; the latest when `None`.
            pub model_id: Option<String>,
        }

        impl $name {
            /// This request with the options every request shares (contextual tuples, context,
            /// model) taken from `options`: the one place they are moved across.
            pub fn with_options(mut self, options: $crate::engine::QueryOptions) -> Self {
                self.contextual_tuples = options.contextual_tuples;
                self.context = options.context;
                self.model_id = options.model_id;
                self
            }
        }
    };
}

mod acl_tags;
mod agent;
mod alerts;
mod approvals;
mod checkpoint;
mod decide;
mod decisions;
mod explain;
mod follow;
mod handle;
mod limits;
mod load;
mod prepared;
mod read;
mod snapshot;
mod visibility;
mod what_if;
mod write;

pub use crate::eval::{ExpandLeaf, ExpandNode, ExplainNode, NodeResult, Permissionship, Reason};
/// The records the facade takes and hands out, re-exported beside the calls that use them.
pub use crate::record::{
    ApprovalCall, ApprovalDecision, ApprovalRecord, ApprovalStatus, ChangeCursor, ChangeOperation, ChangeRecord,
    DecisionCursor, DecisionFilter, DecisionRecord,
};
/// A store's record, re-exported so layers above (`api`) need not import `store`.
pub use crate::store::StoreRecord;
pub use crate::tuple::StoredTuple;
pub use acl_tags::{AclTagChanges, AclTagsCursor, AclTagsPage, AclTagsRequest, ObjectTags, ACL_TAG_CHANGES_PER_PAGE};
pub use agent::{
    AudienceCheckRequest, AudienceResult, FilterAnswer, FilterRequest, FilterStrategy, OboCheckRequest, OboDecision,
    DEFAULT_DELEGATION_RELATION, FILTER_CHECK_THRESHOLD,
};
pub use alerts::{
    Alert, AlertConfig, AlertEvents, AlertFilter, AlertRule, AlertSink, AlertStats, Alerts, DenialsRule, TaskRule,
};
pub use approvals::{ApprovalGrant, Approvals, ApprovedAnswer};
pub use checkpoint::Checkpoints;
pub use decide::{
    decide, decide_into, CheckWithCause, Decision, DecisionMeta, Denial, DenialKind, LatencyObserver, Question,
    RecordIds,
};
pub use decisions::{DecisionLog, DecisionLogConfig, DecisionLogMode, DecisionLogStats, UnknownDecisionLogMode};
pub use explain::{Explanation, PathTuple, MAX_WOULD_ALLOW};
pub use follow::{POLL_INTERVAL as FOLLOW_POLL_INTERVAL, WRITE_ATTEMPTS as SHARED_WRITE_ATTEMPTS};
pub use limits::{joined, InputLimits};
pub use prepared::{ObjectHandle, ObjectIds, PreparedCheck, StoreSnapshot, SubjectHandle};
pub use read::{ReadCursor, ReadPage};
use snapshot::{Snapshots, StoreMap};
pub use visibility::{Visibility, VisibilityRequest, VisibilityStrategy};
use write::{LocalWrites, WritePath};

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
    /// No approval with this id in the store.
    #[error("approval `{0}` not found")]
    ApprovalNotFound(String),
    /// An approval that is no longer pending cannot be approved or denied.
    #[error("approval `{id}` is {status}, not pending")]
    ApprovalDecided {
        /// The approval.
        id: String,
        /// Where it stands.
        status: &'static str,
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
    /// Set once the store is deleted (here, or by another node of a shared datastore): every
    /// handle still holding this state then answers `StoreNotFound`.
    deleted: AtomicBool,
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
    Model::from_json_unchecked(&parsed).map_err(|errors| EngineError::Schema(errors.into_vec()))
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
            deleted: AtomicBool::new(false),
        }
    }

    /// This state, unless its store has been deleted.
    fn live(&self) -> Result<&StoreState, EngineError> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(EngineError::StoreNotFound(self.record.id.clone()));
        }
        Ok(self)
    }

    /// The store's writer lock, unless the store has been deleted (checked under the lock, so
    /// no write starts after a delete that held it).
    fn lock_writer(&self) -> Result<MutexGuard<'_, ()>, EngineError> {
        let guard = self.writer.lock();
        self.live()?;
        Ok(guard)
    }

    /// Marks the store deleted: every handle on it answers `StoreNotFound` from now on.
    fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
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

/// What the engine, its services and every [`StoreHandle`] share: the backend, the settings,
/// the clock, the store list and the write path chosen at open.
struct Core {
    backend: Arc<dyn TupleStore>,
    stores: StoreMap,
    config: EngineConfig,
    clock: Clock,
    writes: Box<dyn WritePath>,
}

impl Core {
    /// The bounds of one evaluation starting now: the configured depth and a fresh deadline.
    fn eval_limits(&self) -> Limits {
        Limits { deadline: self.config.input.deadline(), ..self.config.limits }
    }

    /// The store with this id: from the engine's list, else (over a shared datastore) loaded
    /// from the backend if another node created it a moment ago.
    fn find(&self, store_id: &str) -> Result<Arc<StoreState>, EngineError> {
        self.stores
            .get(store_id)
            .or_else(|| self.writes.find_store(store_id))
            .ok_or_else(|| EngineError::StoreNotFound(store_id.to_string()))
    }

    /// The instant expiry is judged at for one request over `index`: the clock's time when the
    /// index holds a tuple that can expire, else `i64::MIN`, so a store without expiring tuples
    /// never reads the clock (nothing in it can have expired).
    fn now_for(&self, index: &Index) -> i64 {
        if index.expiring_len() > 0 {
            (self.clock)()
        } else {
            i64::MIN
        }
    }
}

/// The authorization engine over one backend: the set of stores, the settings and the clock,
/// with the decision log and checkpointing beside it. Per-store operations go through the
/// [`StoreHandle`] that [`Engine::store`] gives.
pub struct Engine {
    core: Arc<Core>,
    decisions: DecisionLog,
    checkpoints: Checkpoints,
    approvals: Approvals,
    alerts: Arc<Alerts>,
}

/// A cheap handle on one store (an `Arc` of its state, and a borrow of what it needs from the
/// engine), carrying every per-store operation: see `engine/handle.rs`. It cannot outlive the
/// engine. Once its store is deleted, every operation answers [`EngineError::StoreNotFound`].
#[derive(Clone)]
pub struct StoreHandle<'e> {
    core: &'e Core,
    state: Arc<StoreState>,
    /// The deadline every evaluation through this handle shares ([`StoreHandle::until`]);
    /// `None` gives each a fresh one.
    deadline: Option<std::time::Instant>,
}

impl std::fmt::Debug for StoreHandle<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreHandle").field("id", &self.state.record.id).finish_non_exhaustive()
    }
}

read_request! {
    /// What every read-side request may add to its question (check, batch-check, expand, list
    /// objects, list users, obo-check, audience-check, filter): tuples that count for it alone,
    /// condition context, and a pinned model. `api` reads it once from the options every request body
    /// shares, and the request types take its fields.
    pub struct QueryOptions {}
}

read_request! {
    /// A check: does `user` hold `relation` on `object`?
    pub struct CheckRequest {
        /// The object, `document:1`.
        pub object: String,
        /// The relation.
        pub relation: String,
        /// The user, `user:anne`, `user:*` or `group:eng#member`.
        pub user: String,
    }
}

impl CheckRequest {
    /// A check of `user` holding `relation` on `object`, with the request's shared options.
    pub fn new(object: String, relation: String, user: String, options: QueryOptions) -> Self {
        CheckRequest { object, relation, user, ..CheckRequest::default() }.with_options(options)
    }
}

read_request! {
    /// List objects: which objects of a type does `user` hold `relation` on?
    pub struct ListObjectsRequest {
        /// The object type.
        pub object_type: String,
        /// The relation.
        pub relation: String,
        /// The user.
        pub user: String,
    }
}

/// One user filter of list users: a type, and for usersets a relation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilterSpec {
    /// The subject type.
    pub type_name: String,
    /// The userset relation, if any.
    pub relation: Option<String>,
}

read_request! {
    /// List users: which subjects of the filter types hold `relation` on `object`?
    pub struct ListUsersRequest {
        /// The object, `document:1`.
        pub object: String,
        /// The relation.
        pub relation: String,
        /// Which subjects to return (OpenFGA takes exactly one).
        pub user_filters: Vec<UserFilterSpec>,
    }
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
    ///
    /// This is where the write path is chosen, once: a shared backend is followed (its stores
    /// load as the follower starts), any other is this process's alone (its stores load from
    /// their checkpoints or rows, and those due are checkpointed).
    pub fn open_with_clock(
        backend: Box<dyn TupleStore>,
        config: EngineConfig,
        clock: Clock,
    ) -> Result<Engine, EngineError> {
        let backend: Arc<dyn TupleStore> = Arc::from(backend);
        let stores = StoreMap::default();
        if backend.is_shared() {
            let follow = follow::Follow::start(&backend, &stores)?;
            return Ok(Engine::assemble(Core { backend, stores, config, clock, writes: Box::new(follow) }));
        }
        let engine = Engine::assemble(Core { backend, stores, config, clock, writes: Box::new(LocalWrites) });
        engine.checkpoints.load_stores()?;
        Ok(engine)
    }

    /// An engine with no disk (tests, demos).
    pub fn in_memory() -> Engine {
        Engine::in_memory_with(EngineConfig::default())
    }

    /// An engine with no disk and the given settings.
    pub fn in_memory_with(config: EngineConfig) -> Engine {
        Engine::over_memory(crate::store::MemoryStore::new(), config)
    }

    /// An engine with no disk whose index is the only copy of the tuples: its backend
    /// ([`MemoryStore::index_only`](crate::store::MemoryStore::index_only)) keeps no tuple strings
    /// and no changelog, so a store costs what its index costs. Fill a store with
    /// [`StoreHandle::load`]; checks, lookups, writes and reads (from the index) work as ever;
    /// [`StoreHandle::changes`] answers [`StoreError::NotKept`] (for a bounded changelog, open
    /// `MemoryStore::index_only(ChangelogRetention::Last(n))` with [`Engine::open`]).
    pub fn in_memory_index_only(config: EngineConfig) -> Engine {
        let backend = crate::store::MemoryStore::index_only(crate::store::ChangelogRetention::Last(0));
        Engine::over_memory(backend, config)
    }

    /// An engine over an in-memory backend (nothing to load: it starts empty).
    fn over_memory(backend: crate::store::MemoryStore, config: EngineConfig) -> Engine {
        let backend: Arc<dyn TupleStore> = Arc::new(backend);
        let core =
            Core { backend, stores: StoreMap::default(), config, clock: system_clock(), writes: Box::new(LocalWrites) };
        Engine::assemble(core)
    }

    /// The engine over `core`, with its services started.
    fn assemble(core: Core) -> Engine {
        let core = Arc::new(core);
        let alerts = Arc::new(Alerts::new(&core));
        Engine {
            decisions: DecisionLog::start(core.clone(), alerts.clone()),
            checkpoints: Checkpoints::new(core.clone()),
            approvals: Approvals::new(core.clone()),
            alerts,
            core,
        }
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.core.config
    }

    /// A handle on the store with this id, for every per-store operation; resolve it once per
    /// request (or longer: it stays valid while the engine lives, answering `StoreNotFound` once
    /// the store is deleted).
    pub fn store(&self, store_id: &str) -> Result<StoreHandle<'_>, EngineError> {
        Ok(StoreHandle { core: &self.core, state: self.core.find(store_id)?, deadline: None })
    }

    /// The decision log: recording decisions, and reading a store's back.
    pub fn decision_log(&self) -> &DecisionLog {
        &self.decisions
    }

    /// Approvals: raising, deciding and using them (DESIGN §12).
    pub fn approvals(&self) -> &Approvals {
        &self.approvals
    }

    /// Alerts on agent behaviour, from the decision stream (DESIGN §12): idle until started.
    pub fn alerts(&self) -> &Alerts {
        &self.alerts
    }

    /// Checkpointing: writing a store's checkpoint, and checkpointing the stores that changed.
    pub fn checkpoints(&self) -> &Checkpoints {
        &self.checkpoints
    }

    /// Creates a store.
    pub fn create_store(&self, name: &str) -> Result<StoreRecord, EngineError> {
        let now = (self.core.clock)();
        let record = StoreRecord { id: new_id(), name: name.to_string(), created_at_ms: now, updated_at_ms: now };
        let _membership = self.core.writes.lock_membership();
        self.core.backend.create_store(&record)?;
        let state = StoreState::new(record.clone(), StoreData::default());
        self.core.stores.insert(record.id.clone(), Arc::new(state));
        Ok(record)
    }

    /// A store's record.
    pub fn get_store(&self, store_id: &str) -> Result<StoreRecord, EngineError> {
        Ok(self.core.find(store_id)?.record.clone())
    }

    /// Every store, oldest first.
    pub fn list_stores(&self) -> Vec<StoreRecord> {
        let mut records: Vec<StoreRecord> = self.core.stores.all().into_iter().map(|(_, s)| s.record.clone()).collect();
        records.sort_by(|a, b| a.id.cmp(&b.id));
        records
    }

    /// Deletes a store and everything in it; handles on it answer `StoreNotFound` from now on.
    pub fn delete_store(&self, store_id: &str) -> Result<(), EngineError> {
        let state = self.core.find(store_id)?;
        let _membership = self.core.writes.lock_membership();
        let _writer = state.lock_writer()?;
        self.core.backend.delete_store(store_id)?;
        self.core.stores.remove(store_id);
        state.mark_deleted();
        Ok(())
    }

    /// The engine clock's current time, milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        (self.core.clock)()
    }

    /// Sweeps every store's expired tuples (see [`StoreHandle::sweep_expired`]); returns how
    /// many stores got a new revision.
    pub fn sweep_all_expired(&self) -> Result<usize, EngineError> {
        let mut swept = 0;
        for (_, state) in self.core.stores.all() {
            let store = StoreHandle { core: &self.core, state, deadline: None };
            match store.sweep_expired() {
                Ok(Some(_)) => swept += 1,
                Ok(None) | Err(EngineError::StoreNotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(swept)
    }

    /// True once this node has caught up with the revisions its datastore had when it started
    /// (always true over a backend that only this process writes).
    pub fn caught_up(&self) -> bool {
        self.core.writes.caught_up()
    }

    /// Catches every store up with a shared datastore now, instead of waiting for the follower
    /// thread; does nothing over a backend only this process writes.
    pub fn catch_up(&self) -> Result<(), EngineError> {
        self.core.writes.catch_up()
    }
}

/// Starts a background thread that sweeps every store's expired tuples every `interval`
/// (see [`StoreHandle::sweep_expired`]); it ends by itself once the engine is dropped.
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

/// The id of a type the request's model defines. The model's own name table answers (its ids
/// are the index's: every name of a model is interned when it is compiled), so no interner is
/// asked on a request's path.
fn resolve_type(evaluator: &Evaluator<'_>, type_name: &str) -> Result<ObjectTypeId, EngineError> {
    evaluator
        .model
        .type_named(type_name)
        .map(|names| names.id())
        .ok_or_else(|| EngineError::TypeNotFound(type_name.to_string()))
}

/// The ids of a relation the request's model defines on a type (see [`resolve_type`]).
fn resolve_object_relation(
    evaluator: &Evaluator<'_>,
    type_name: &str,
    relation: &str,
) -> Result<(ObjectTypeId, RelationId), EngineError> {
    let names =
        evaluator.model.type_named(type_name).ok_or_else(|| EngineError::TypeNotFound(type_name.to_string()))?;
    names.relation(relation).map(|id| (names.id(), id)).ok_or_else(|| EngineError::RelationNotFound {
        type_name: type_name.to_string(),
        relation: relation.to_string(),
    })
}

/// The request's user as the walk asks about it, after checking its type (and relation) against
/// the model; an id no tuple names has no object id (see [`User`]).
fn resolve_subject(evaluator: &Evaluator<'_>, user: SubjectText<'_>) -> Result<User, EngineError> {
    let (subject_type, relation) = match user.relation {
        Some(relation) => resolve_object_relation(evaluator, user.subject_type, relation)?,
        None => (resolve_type(evaluator, user.subject_type)?, RelationId::NONE),
    };
    let object = match user.id {
        Some(id) => evaluator.object_id(subject_type, id),
        None => Some(ObjectId::WILDCARD),
    };
    Ok(User { kind: SubjectKind { subject_type, relation }, object })
}
