//! [`PostgresStore`]: the shared backend of [`TupleStore`] on PostgreSQL, for several Writ nodes
//! over one database (CockroachDB speaks the same wire protocol, but is untested).
//!
//! Schema: tables `writ_stores` (with each store's revision counter), `writ_models`, `writ_tuples`
//! (primary key = tuple identity), `writ_changes` (primary key = store, revision, seq),
//! `writ_assertions`, `writ_decisions` and `writ_approvals` (each approval whole, as JSON
//! text, replaced by compare and swap); text columns throughout, conditions as JSON text
//! `{"name", "context"}`. Migrations are numbered in [`MIGRATIONS`] and recorded in
//! `writ_schema_migrations`; [`PostgresStore::open`] applies the missing ones in one transaction
//! under a transaction-scoped advisory lock, so nodes starting at once apply each exactly once.
//!
//! Invariants:
//! - Every mutation is ONE transaction that also calls `pg_notify('writ_changes', store_id)`; a
//!   call returns only after PostgreSQL acknowledged its COMMIT (default `synchronous_commit`), so
//!   an acknowledged change is durable and an unacknowledged one is wholly present or absent.
//! - A tuple write first locks its store's row (`SELECT ... FOR UPDATE`), then writes tuples,
//!   changelog rows and the new revision: writers to one store, in any number of processes, are
//!   serialized, so revisions are never lost, duplicated or reordered.
//! - The trait is synchronous but the driver is async: the store owns a small tokio runtime (its
//!   own threads). Each call sends its work there and blocks on a channel for the answer, so any
//!   thread may call (plain, `spawn_blocking`, even an async worker) without nesting runtimes.
//! - Every call is bounded ([`PostgresStore::CALL_TIMEOUT`]); an unreachable database is an
//!   [`StoreError::Io`] naming host, port and database (never the password), not a hang or panic.
//!
//! Must not import anything in the crate but `crate::tuple` and its siblings in `store`.

use std::collections::HashSet;
use std::fmt::Display;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};
use tokio_postgres::{AsyncMessage, NoTls, Row};

use super::out_of_reach;
use super::{
    ApprovalRecord, ApprovalStore, ChangeCursor, ChangeOperation, ChangeQuery, ChangeRecord, DecisionCursor,
    DecisionFilter, DecisionLogStore, DecisionPage, DecisionRecord, StoreError, StoreRecord, StoredTuple, TupleStore,
    WriteBatch,
};
use crate::tuple::{Context, ObjectRef, Tuple, TupleCondition};

/// The `LISTEN`/`NOTIFY` channel every mutation notifies, with the store id as payload.
pub const CHANGE_CHANNEL: &str = "writ_changes";

/// Advisory lock key held while migrating ("writ_mig" in ASCII).
const MIGRATION_LOCK: i64 = 0x7772_6974_5f6d_6967;

/// The schema, one migration per entry: (version, name, SQL). Append only; never edit a shipped one.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial schema", MIGRATION_1),
    (2, "change feed by object type", MIGRATION_2),
    (3, "approvals", MIGRATION_3),
];

/// Approvals (DESIGN §12): one row per approval, the record as JSON text; a change replaces the
/// text only where it still equals what the changer read, so every node sees one history.
const MIGRATION_3: &str = r#"
CREATE TABLE writ_approvals (
    store_id TEXT COLLATE "C" NOT NULL REFERENCES writ_stores (id) ON DELETE CASCADE,
    id TEXT COLLATE "C" NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (store_id, id)
);
"#;

/// The change feed filtered by object type reads one page from this index, instead of scanning
/// every change of other types it skips.
const MIGRATION_2: &str = r#"
CREATE INDEX writ_changes_by_type ON writ_changes (store_id, object_type, revision, seq);
"#;

const MIGRATION_1: &str = r#"
CREATE TABLE writ_stores (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    revision BIGINT NOT NULL DEFAULT 0 CHECK (revision >= 0)
);
CREATE TABLE writ_models (
    store_id TEXT COLLATE "C" NOT NULL REFERENCES writ_stores (id) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    model_id TEXT NOT NULL,
    model_json TEXT NOT NULL,
    PRIMARY KEY (store_id, seq)
);
CREATE TABLE writ_tuples (
    store_id TEXT COLLATE "C" NOT NULL REFERENCES writ_stores (id) ON DELETE CASCADE,
    object_type TEXT COLLATE "C" NOT NULL,
    object_id TEXT COLLATE "C" NOT NULL,
    relation TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C" NOT NULL,
    condition TEXT,
    expires_at_ms BIGINT,
    written_at_ms BIGINT NOT NULL,
    PRIMARY KEY (store_id, object_type, object_id, relation, subject)
);
CREATE TABLE writ_changes (
    store_id TEXT COLLATE "C" NOT NULL REFERENCES writ_stores (id) ON DELETE CASCADE,
    revision BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    operation TEXT NOT NULL CHECK (operation IN ('write', 'delete')),
    object_type TEXT COLLATE "C" NOT NULL,
    object_id TEXT NOT NULL,
    relation TEXT NOT NULL,
    subject TEXT NOT NULL,
    condition TEXT,
    expires_at_ms BIGINT,
    timestamp_ms BIGINT NOT NULL,
    actor TEXT,
    PRIMARY KEY (store_id, revision, seq)
);
CREATE TABLE writ_assertions (
    store_id TEXT COLLATE "C" NOT NULL REFERENCES writ_stores (id) ON DELETE CASCADE,
    model_id TEXT COLLATE "C" NOT NULL,
    assertions_json TEXT NOT NULL,
    PRIMARY KEY (store_id, model_id)
);
CREATE TABLE writ_decisions (
    store_id TEXT COLLATE "C" NOT NULL REFERENCES writ_stores (id) ON DELETE CASCADE,
    time_ms BIGINT NOT NULL,
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    object TEXT NOT NULL,
    allowed BOOLEAN NOT NULL,
    principals JSONB NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (store_id, time_ms, seq)
);
"#;

/// A [`TupleStore`] in a PostgreSQL database shared by any number of Writ processes.
pub struct PostgresStore {
    /// `Some` until drop; taken there to shut the runtime down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
    pool: Pool,
    changes: Arc<ChangeSignal>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Never blocks, so dropping the store inside an async context is fine.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Counts `NOTIFY`s seen by the listener so [`TupleStore::wait_for_change`] can wait on them.
#[derive(Default)]
struct ChangeSignal {
    state: Mutex<SignalState>,
    arrived: Condvar,
}

#[derive(Default)]
struct SignalState {
    /// Notifications received so far.
    notified: u64,
    /// The count the last returning waiter saw; a waiter reports news beyond it.
    seen: u64,
}

impl ChangeSignal {
    fn notify(&self) {
        self.state.lock().notified += 1;
        self.arrived.notify_all();
    }

    /// True when a notification arrived since the last wait returned, or arrives before `timeout`.
    fn wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.state.lock();
        let start = state.seen;
        while state.notified == start {
            if self.arrived.wait_until(&mut state, deadline).timed_out() {
                break;
            }
        }
        state.seen = state.seen.max(state.notified);
        state.notified != start
    }
}

/// A driver or pool error with its whole cause chain (the pool's message alone hides the cause,
/// e.g. "connection refused").
fn io(e: impl std::error::Error) -> StoreError {
    let mut message = format!("postgres: {e}");
    let mut cause = e.source();
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        cause = inner.source();
    }
    StoreError::Io(message)
}

fn corrupt(what: &str, detail: impl Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

/// A stored (non-negative) counter as `u64`.
fn unsigned(what: &str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(what, format!("negative value `{value}`")))
}

/// A `u64` as PostgreSQL's `BIGINT`.
fn signed(what: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| corrupt(what, format!("`{value}` exceeds the BIGINT range")))
}

fn not_found(store_id: &str) -> StoreError {
    StoreError::StoreNotFound(store_id.to_string())
}

/// Where a config points, for messages: `host:port/database`, never user or password.
fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = config.get_ports().get(i).or(config.get_ports().first()).copied().unwrap_or(5432);
            match host {
                tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    format!("{}/{}", hosts.join(","), config.get_dbname().unwrap_or("(default database)"))
}

/// A condition as stored in the `condition` columns.
#[derive(Serialize, Deserialize)]
struct WireCondition {
    name: String,
    #[serde(default)]
    context: Context,
}

fn encode_condition(tuple: &Tuple) -> Result<Option<String>, StoreError> {
    tuple
        .condition
        .as_ref()
        .map(|c| {
            serde_json::to_string(&WireCondition { name: c.name.clone(), context: c.context.clone() })
                .map_err(|e| corrupt("condition", e))
        })
        .transpose()
}

fn decode_condition(text: Option<String>) -> Result<Option<TupleCondition>, StoreError> {
    text.map(|text| {
        let wire: WireCondition = serde_json::from_str(&text).map_err(|e| corrupt("condition", e))?;
        Ok(TupleCondition { name: wire.name, context: wire.context })
    })
    .transpose()
}

/// Columns of a batch of tuples, as arrays for `unnest`.
#[derive(Default)]
struct TupleColumns {
    object_type: Vec<String>,
    object_id: Vec<String>,
    relation: Vec<String>,
    subject: Vec<String>,
    condition: Vec<Option<String>>,
    expires_at_ms: Vec<Option<i64>>,
}

impl TupleColumns {
    /// Only the identity columns (object type and id, relation, subject).
    fn push_key(&mut self, tuple: &Tuple) {
        self.object_type.push(tuple.object.object_type.clone());
        self.object_id.push(tuple.object.id.clone());
        self.relation.push(tuple.relation.clone());
        self.subject.push(tuple.subject.to_string());
    }

    fn push(&mut self, t: &StoredTuple) -> Result<(), StoreError> {
        self.push_key(&t.tuple);
        self.condition.push(encode_condition(&t.tuple)?);
        self.expires_at_ms.push(t.expires_at_ms);
        Ok(())
    }

    fn of<'a>(tuples: impl IntoIterator<Item = &'a StoredTuple>) -> Result<Self, StoreError> {
        let mut columns = TupleColumns::default();
        for t in tuples {
            columns.push(t)?;
        }
        Ok(columns)
    }
}

/// A tuple from the columns `object_type, object_id, relation, subject, condition, expires_at_ms`
/// starting at `first`.
fn tuple_from_row(row: &Row, first: usize) -> Result<StoredTuple, StoreError> {
    let get_text = |i: usize| row.try_get::<_, String>(first + i).map_err(|e| corrupt("tuple", e));
    let subject = get_text(3)?.parse().map_err(|e| corrupt("tuple subject", e))?;
    let condition = decode_condition(row.try_get(first + 4).map_err(|e| corrupt("tuple", e))?)?;
    let tuple =
        Tuple { object: ObjectRef::new(get_text(0)?, get_text(1)?), relation: get_text(2)?, subject, condition };
    Ok(StoredTuple { tuple, expires_at_ms: row.try_get(first + 5).map_err(|e| corrupt("tuple", e))? })
}

fn store_from_row(row: &Row) -> Result<StoreRecord, StoreError> {
    let bad = |e| corrupt("store record", e);
    Ok(StoreRecord {
        id: row.try_get(0).map_err(bad)?,
        name: row.try_get(1).map_err(bad)?,
        created_at_ms: row.try_get(2).map_err(bad)?,
        updated_at_ms: row.try_get(3).map_err(bad)?,
    })
}

/// True when the store row exists (for reads whose empty answer may mean "no such store").
/// The rows `sql` answers about store `store_id`; none because the store does not exist is
/// [`StoreError::StoreNotFound`].
async fn store_rows(
    client: &tokio_postgres::Client,
    store_id: &str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Row>, StoreError> {
    let rows = client.query(sql, params).await.map_err(io)?;
    if rows.is_empty() && !store_exists(client, store_id).await? {
        return Err(not_found(store_id));
    }
    Ok(rows)
}

async fn store_exists(client: &tokio_postgres::Client, store_id: &str) -> Result<bool, StoreError> {
    let row = client.query_opt("SELECT 1 FROM writ_stores WHERE id = $1", &[&store_id]).await.map_err(io)?;
    Ok(row.is_some())
}

/// Locks a store's row for the rest of the transaction and returns its revision.
async fn lock_store(tx: &tokio_postgres::Transaction<'_>, store_id: &str) -> Result<u64, StoreError> {
    let row = tx
        .query_opt("SELECT revision FROM writ_stores WHERE id = $1 FOR UPDATE", &[&store_id])
        .await
        .map_err(io)?
        .ok_or_else(|| not_found(store_id))?;
    unsigned("revision", row.try_get(0).map_err(|e| corrupt("revision", e))?)
}

/// Whether a changelog entry after `revision` names one of the tuples in `keys`.
async fn touched_since(
    tx: &tokio_postgres::Transaction<'_>,
    store_id: &str,
    revision: u64,
    keys: &TupleColumns,
) -> Result<bool, StoreError> {
    let row = tx
        .query_one(
            "SELECT EXISTS (
                 SELECT 1 FROM writ_changes c
                 JOIN unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS k(object_type, object_id, relation, subject)
                   ON c.object_type = k.object_type AND c.object_id = k.object_id
                  AND c.relation = k.relation AND c.subject = k.subject
                 WHERE c.store_id = $1 AND c.revision > $2)",
            &[&store_id, &signed("revision", revision)?, &keys.object_type, &keys.object_id, &keys.relation, &keys.subject],
        )
        .await
        .map_err(io)?;
    row.try_get(0).map_err(|e| corrupt("changelog probe", e))
}

async fn notify(tx: &tokio_postgres::Transaction<'_>, store_id: &str) -> Result<(), StoreError> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANGE_CHANNEL, &store_id]).await.map_err(io)?;
    Ok(())
}

/// Applies the migrations the database lacks, under the migration lock.
async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(io)?;
    let tx = client.transaction().await.map_err(io)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(io)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS writ_schema_migrations (
             version INTEGER PRIMARY KEY,
             name TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(io)?;
    let applied: HashSet<i32> = tx
        .query("SELECT version FROM writ_schema_migrations", &[])
        .await
        .map_err(io)?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()
        .map_err(|e| corrupt("writ_schema_migrations", e))?;
    let known = MIGRATIONS.iter().map(|(version, _, _)| *version).max().unwrap_or(0);
    if let Some(newer) = applied.iter().copied().filter(|&v| v > known).max() {
        return Err(StoreError::Io(format!(
            "postgres: the database schema is at version `{newer}`, newer than this build of writ knows (`{known}`); upgrade writ"
        )));
    }
    for (version, name, sql) in MIGRATIONS {
        if !applied.contains(version) {
            tx.batch_execute(sql)
                .await
                .map_err(|e| StoreError::Io(format!("postgres: migration {version} ({name}): {e}")))?;
            tx.execute("INSERT INTO writ_schema_migrations (version, name) VALUES ($1, $2)", &[version, name])
                .await
                .map_err(io)?;
        }
    }
    tx.commit().await.map_err(io)
}

/// Keeps a `LISTEN` connection open for as long as the runtime lives, reconnecting after a failure,
/// and turns every notification into a [`ChangeSignal::notify`]. After a reconnect it signals once,
/// since notifications sent while it was away are lost.
async fn listen(config: tokio_postgres::Config, signal: Arc<ChangeSignal>) {
    let mut reconnect = false;
    loop {
        if let Ok((client, mut connection)) = config.connect(NoTls).await {
            let driver_signal = Arc::clone(&signal);
            let driver = tokio::spawn(async move {
                while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    if let AsyncMessage::Notification(_) = message {
                        driver_signal.notify();
                    }
                }
            });
            if client.batch_execute(&format!("LISTEN {CHANGE_CHANNEL}")).await.is_ok() {
                if reconnect {
                    signal.notify();
                }
                let _ = driver.await;
            } else {
                driver.abort();
            }
            drop(client);
        }
        reconnect = true;
        tracing::warn!("postgres change listener disconnected; reconnecting");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl PostgresStore {
    /// Longest one call may take, waiting for a connection included.
    pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
    /// Longest a new connection may take, unless the URL sets `connect_timeout`.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Most connections one store keeps open (plus one for `LISTEN`).
    pub const POOL_SIZE: usize = 8;

    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, or the
    /// `key=value` form; TLS is not supported), applies missing migrations and starts listening
    /// for changes. Errors name the database but never the password.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| StoreError::Io(format!("postgres: the datastore URL is invalid: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Self::CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("writ");
        }
        let target = describe(&config);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("writ-postgres")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io(format!("postgres: cannot start the driver runtime: {e}")))?;
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(Self::POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Self::CALL_TIMEOUT))
            .create_timeout(Some(Self::CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Io(format!("postgres: cannot build the connection pool: {e}")))?;
        let changes = Arc::new(ChangeSignal::default());
        let store = PostgresStore { runtime: Some(runtime), pool, changes };
        store.call(|pool| async move { migrate(&pool).await }).map_err(|e| match e {
            StoreError::Io(message) => StoreError::Io(format!("cannot use PostgreSQL at `{target}`: {message}")),
            other => other,
        })?;
        if let Some(runtime) = &store.runtime {
            runtime.spawn(listen(config, Arc::clone(&store.changes)));
        }
        Ok(store)
    }

    /// Runs `work` on the store's runtime and blocks the calling thread until it answers (or
    /// [`Self::CALL_TIMEOUT`] passes).
    fn call<T, F, Fut>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let runtime = self.runtime.as_ref().ok_or_else(|| StoreError::Io("postgres: the store is closed".into()))?;
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        let future = work(self.pool.clone());
        runtime.spawn(async move {
            let result = match tokio::time::timeout(Self::CALL_TIMEOUT, future).await {
                Ok(result) => result,
                Err(_) => Err(StoreError::Io(format!("postgres: no answer within {:?}", Self::CALL_TIMEOUT))),
            };
            let _ = answer.send(result);
        });
        answered.recv().map_err(|_| StoreError::Io("postgres: the driver stopped before answering".into()))?
    }

    /// The stores, in id order; only `only`, when given.
    fn select_stores(&self, only: Option<String>) -> Result<Vec<StoreRecord>, StoreError> {
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(io)?;
            let rows = client
                .query(
                    "SELECT id, name, created_at_ms, updated_at_ms FROM writ_stores
                     WHERE $1::text IS NULL OR id = $1 ORDER BY id",
                    &[&only],
                )
                .await
                .map_err(io)?;
            rows.iter().map(store_from_row).collect()
        })
    }

    /// One write, optionally conditional on the store's current revision (see [`TupleStore::write`]).
    fn apply_write(&self, store_id: &str, batch: &WriteBatch<'_>) -> Result<u64, StoreError> {
        let WriteBatch { deletes, writes, timestamp_ms, actor, planned } = *batch;
        let store_id = store_id.to_string();
        // The identities of every tuple the plan read, to look for in the changelog after it.
        let guard = planned.map(|planned| {
            let mut keys = TupleColumns::default();
            for tuple in planned.read.iter().chain(deletes.iter().chain(writes).map(|t| &t.tuple)) {
                keys.push_key(tuple);
            }
            (planned.revision, keys)
        });
        let actor = actor.map(str::to_string);
        let deleted = TupleColumns::of(deletes)?;
        // A tuple written twice in one request keeps its last version (as in sled's batch).
        let mut keys = HashSet::new();
        let mut last_versions: Vec<&StoredTuple> = writes.iter().rev().filter(|t| keys.insert(t.tuple.key())).collect();
        last_versions.reverse();
        let written = TupleColumns::of(last_versions)?;
        let entries = deletes
            .iter()
            .map(|t| (ChangeOperation::Delete, t))
            .chain(writes.iter().map(|t| (ChangeOperation::Write, t)));
        let mut changed = TupleColumns::default();
        let mut operations = Vec::with_capacity(deletes.len() + writes.len());
        let mut seqs = Vec::with_capacity(deletes.len() + writes.len());
        for (i, (operation, t)) in entries.enumerate() {
            let seq = u32::try_from(i)
                .map_err(|_| StoreError::Corrupt(format!("write of `{i}`+ tuples exceeds the changelog range")))?;
            seqs.push(i64::from(seq));
            operations.push(match operation {
                ChangeOperation::Write => "write",
                ChangeOperation::Delete => "delete",
            });
            changed.push(t)?;
        }
        self.call(move |pool| async move {
            let mut client = pool.get().await.map_err(io)?;
            let tx = client.transaction().await.map_err(io)?;
            let current = lock_store(&tx, &store_id).await?;
            if let Some((expected, keys)) = guard.filter(|(expected, _)| *expected != current) {
                if out_of_reach(expected, current) || touched_since(&tx, &store_id, expected, &keys).await? {
                    return Err(StoreError::RevisionMoved { store_id, expected, current });
                }
            }
            let revision = current.checked_add(1).ok_or_else(|| StoreError::Corrupt("revision overflow".into()))?;
            let revision_number = signed("revision", revision)?;
            let delete = tx
                .prepare_cached(
                    "DELETE FROM writ_tuples t
                     USING unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS d(object_type, object_id, relation, subject)
                     WHERE t.store_id = $1 AND t.object_type = d.object_type AND t.object_id = d.object_id
                       AND t.relation = d.relation AND t.subject = d.subject",
                )
                .await
                .map_err(io)?;
            let upsert = tx
                .prepare_cached(
                    "INSERT INTO writ_tuples
                         (store_id, object_type, object_id, relation, subject, condition, expires_at_ms, written_at_ms)
                     SELECT $1, u.object_type, u.object_id, u.relation, u.subject, u.condition, u.expires_at_ms, $8
                     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[])
                         AS u(object_type, object_id, relation, subject, condition, expires_at_ms)
                     ON CONFLICT (store_id, object_type, object_id, relation, subject) DO UPDATE
                     SET condition = EXCLUDED.condition, expires_at_ms = EXCLUDED.expires_at_ms,
                         written_at_ms = EXCLUDED.written_at_ms",
                )
                .await
                .map_err(io)?;
            let log = tx
                .prepare_cached(
                    "INSERT INTO writ_changes (store_id, revision, seq, operation, object_type, object_id, relation,
                         subject, condition, expires_at_ms, timestamp_ms, actor)
                     SELECT $1, $2, u.seq, u.operation, u.object_type, u.object_id, u.relation, u.subject,
                         u.condition, u.expires_at_ms, $11, $12
                     FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                                 $9::text[], $10::bigint[])
                         AS u(seq, operation, object_type, object_id, relation, subject, condition, expires_at_ms)",
                )
                .await
                .map_err(io)?;
            let bump = tx
                .prepare_cached(
                    "UPDATE writ_stores SET revision = $2 WHERE id = $1 RETURNING pg_notify('writ_changes', id)",
                )
                .await
                .map_err(io)?;
            // Sent back to back on one connection (pipelined), executed in this order.
            let (d, w, c) = (&deleted, &written, &changed);
            let delete_params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                [&store_id, &d.object_type, &d.object_id, &d.relation, &d.subject];
            let upsert_params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
                &store_id,
                &w.object_type,
                &w.object_id,
                &w.relation,
                &w.subject,
                &w.condition,
                &w.expires_at_ms,
                &timestamp_ms,
            ];
            let log_params: [&(dyn tokio_postgres::types::ToSql + Sync); 12] = [
                &store_id,
                &revision_number,
                &seqs,
                &operations,
                &c.object_type,
                &c.object_id,
                &c.relation,
                &c.subject,
                &c.condition,
                &c.expires_at_ms,
                &timestamp_ms,
                &actor,
            ];
            let bump_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&store_id, &revision_number];
            tokio::try_join!(
                tx.execute(&delete, &delete_params),
                tx.execute(&upsert, &upsert_params),
                tx.execute(&log, &log_params),
                tx.execute(&bump, &bump_params),
            )
            .map_err(io)?;
            tx.commit().await.map_err(io)?;
            Ok(revision)
        })
    }
}

impl TupleStore for PostgresStore {
    fn create_store(&self, store: &StoreRecord) -> Result<(), StoreError> {
        let store = store.clone();
        self.call(move |pool| async move {
            let mut client = pool.get().await.map_err(io)?;
            let tx = client.transaction().await.map_err(io)?;
            let inserted = tx
                .execute(
                    "INSERT INTO writ_stores (id, name, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO NOTHING",
                    &[&store.id, &store.name, &store.created_at_ms, &store.updated_at_ms],
                )
                .await
                .map_err(io)?;
            if inserted == 0 {
                return Err(StoreError::StoreExists(store.id));
            }
            notify(&tx, &store.id).await?;
            tx.commit().await.map_err(io)
        })
    }

    fn get_store(&self, store_id: &str) -> Result<Option<StoreRecord>, StoreError> {
        Ok(self.select_stores(Some(store_id.to_string()))?.pop())
    }

    fn list_stores(&self) -> Result<Vec<StoreRecord>, StoreError> {
        self.select_stores(None)
    }

    fn delete_store(&self, store_id: &str) -> Result<(), StoreError> {
        let store_id = store_id.to_string();
        self.call(move |pool| async move {
            let mut client = pool.get().await.map_err(io)?;
            let tx = client.transaction().await.map_err(io)?;
            lock_store(&tx, &store_id).await?;
            // Every other table references the store row ON DELETE CASCADE.
            tx.execute("DELETE FROM writ_stores WHERE id = $1", &[&store_id]).await.map_err(io)?;
            notify(&tx, &store_id).await?;
            tx.commit().await.map_err(io)
        })
    }

    fn write_model(&self, store_id: &str, model_id: &str, model_json: &str) -> Result<(), StoreError> {
        let (store_id, model_id, model_json) = (store_id.to_string(), model_id.to_string(), model_json.to_string());
        self.call(move |pool| async move {
            let mut client = pool.get().await.map_err(io)?;
            let tx = client.transaction().await.map_err(io)?;
            lock_store(&tx, &store_id).await?;
            tx.execute(
                "INSERT INTO writ_models (store_id, seq, model_id, model_json)
                 SELECT $1, COALESCE(MAX(seq) + 1, 0), $2, $3 FROM writ_models WHERE store_id = $1",
                &[&store_id, &model_id, &model_json],
            )
            .await
            .map_err(io)?;
            notify(&tx, &store_id).await?;
            tx.commit().await.map_err(io)
        })
    }

    fn models(&self, store_id: &str) -> Result<Vec<(String, String)>, StoreError> {
        let store_id = store_id.to_string();
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(io)?;
            let sql = "SELECT model_id, model_json FROM writ_models WHERE store_id = $1 ORDER BY seq";
            let rows = store_rows(&client, &store_id, sql, &[&store_id]).await?;
            rows.iter()
                .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
                .collect::<Result<_, tokio_postgres::Error>>()
                .map_err(|e| corrupt("model", e))
        })
    }

    fn write(&self, store_id: &str, batch: &WriteBatch<'_>) -> Result<u64, StoreError> {
        self.apply_write(store_id, batch)
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn wait_for_change(&self, timeout: Duration) -> bool {
        self.changes.wait(timeout)
    }

    fn tuples(&self, store_id: &str) -> Result<Vec<StoredTuple>, StoreError> {
        let store_id = store_id.to_string();
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(io)?;
            let sql = "SELECT object_type, object_id, relation, subject, condition, expires_at_ms FROM writ_tuples
                       WHERE store_id = $1 ORDER BY object_type, object_id, relation, subject";
            let rows = store_rows(&client, &store_id, sql, &[&store_id]).await?;
            rows.iter().map(|row| tuple_from_row(row, 0)).collect()
        })
    }

    fn written_at(&self, store_id: &str, tuples: &[Tuple]) -> Result<Vec<Option<i64>>, StoreError> {
        let store_id = store_id.to_string();
        let asked = TupleColumns::of(&tuples.iter().map(|t| StoredTuple::new(t.clone())).collect::<Vec<_>>())?;
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(io)?;
            if !store_exists(&client, &store_id).await? {
                return Err(not_found(&store_id));
            }
            let rows = client
                .query(
                    "SELECT t.written_at_ms FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
                         WITH ORDINALITY AS a(object_type, object_id, relation, subject, n)
                     LEFT JOIN writ_tuples t ON t.store_id = $1 AND t.object_type = a.object_type
                         AND t.object_id = a.object_id AND t.relation = a.relation AND t.subject = a.subject
                     ORDER BY a.n",
                    &[&store_id, &asked.object_type, &asked.object_id, &asked.relation, &asked.subject],
                )
                .await
                .map_err(io)?;
            rows.iter().map(|row| row.try_get(0).map_err(|e| corrupt("tuple", e))).collect()
        })
    }

    fn revision(&self, store_id: &str) -> Result<u64, StoreError> {
        let store_id = store_id.to_string();
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(io)?;
            let row = client
                .query_opt("SELECT revision FROM writ_stores WHERE id = $1", &[&store_id])
                .await
                .map_err(io)?
                .ok_or_else(|| not_found(&store_id))?;
            unsigned("revision", row.try_get(0).map_err(|e| corrupt("revision", e))?)
        })
    }

    fn change_page(&self, store_id: &str, query: ChangeQuery<'_>) -> Result<Vec<ChangeRecord>, StoreError> {
        let ChangeQuery { after, object_type, limit } = query;
        let store_id = store_id.to_string();
        let object_type = object_type.map(str::to_string);
        let (after_revision, after_seq) = match after {
            Some(cursor) => (signed("cursor", cursor.revision)?, i64::from(cursor.seq)),
            None => (-1, -1),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(io)?;
            let rows = if limit == 0 {
                Vec::new()
            } else {
                client
                    .query(
                        "SELECT revision, seq, operation, timestamp_ms, actor,
                                object_type, object_id, relation, subject, condition, expires_at_ms
                         FROM writ_changes
                         WHERE store_id = $1 AND (revision, seq) > ($2, $3)
                           AND ($4::text IS NULL OR object_type = $4)
                         ORDER BY revision, seq LIMIT $5",
                        &[&store_id, &after_revision, &after_seq, &object_type, &limit],
                    )
                    .await
                    .map_err(io)?
            };
            if rows.is_empty() && !store_exists(&client, &store_id).await? {
                return Err(not_found(&store_id));
            }
            rows.iter().map(change_from_row).collect()
        })
    }

    fn write_assertions(&self, store_id: &str, model_id: &str, assertions_json: &str) -> Result<(), StoreError> {
        let (store_id, model_id, assertions_json) =
            (store_id.to_string(), model_id.to_string(), assertions_json.to_string());
        self.call(move |pool| async move {
            let mut client = pool.get().await.map_err(io)?;
            let tx = client.transaction().await.map_err(io)?;
            lock_store(&tx, &store_id).await?;
            tx.execute(
                "INSERT INTO writ_assertions (store_id, model_id, assertions_json) VALUES ($1, $2, $3)
                 ON CONFLICT (store_id, model_id) DO UPDATE SET assertions_json = EXCLUDED.assertions_json",
                &[&store_id, &model_id, &assertions_json],
            )
            .await
            .map_err(io)?;
            notify(&tx, &store_id).await?;
            tx.commit().await.map_err(io)
        })
    }

    fn assertions(&self, store_id: &str, model_id: &str) -> Result<Option<String>, StoreError> {
        let (store_id, model_id) = (store_id.to_string(), model_id.to_string());
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(io)?;
            let row = client
                .query_opt(
                    "SELECT assertions_json FROM writ_assertions WHERE store_id = $1 AND model_id = $2",
                    &[&store_id, &model_id],
                )
                .await
                .map_err(io)?;
            match row {
                Some(row) => Ok(Some(row.try_get(0).map_err(|e| corrupt("assertions", e))?)),
                None if store_exists(&client, &store_id).await? => Ok(None),
                None => Err(not_found(&store_id)),
            }
        })
    }

    fn decision_log(&self) -> Option<&dyn DecisionLogStore> {
        Some(self)
    }

    fn approvals(&self) -> Option<&dyn ApprovalStore> {
        Some(self)
    }
}

impl ApprovalStore for PostgresStore {
    fn insert_approval(&self, record: &ApprovalRecord) -> Result<(), StoreError> {
        let (store_id, id) = (record.store_id.clone(), record.id.clone());
        let body = serde_json::to_string(record).map_err(|e| corrupt("approval", e))?;
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(io)?;
            let inserted = client
                .execute(
                    "INSERT INTO writ_approvals (store_id, id, record)
                     SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM writ_stores s WHERE s.id = $1)",
                    &[&store_id, &id, &body],
                )
                .await
                .map_err(io)?;
            if inserted == 0 {
                return Err(not_found(&store_id));
            }
            Ok(())
        })
    }

    fn approvals(&self, store_id: &str) -> Result<Vec<ApprovalRecord>, StoreError> {
        let store_id = store_id.to_string();
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(io)?;
            if !store_exists(&client, &store_id).await? {
                return Err(not_found(&store_id));
            }
            let rows = client
                .query("SELECT record FROM writ_approvals WHERE store_id = $1 ORDER BY id", &[&store_id])
                .await
                .map_err(io)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let body: String = row.try_get(0).map_err(|e| corrupt("approval", e))?;
                out.push(serde_json::from_str(&body).map_err(|e| corrupt("approval", e))?);
            }
            Ok(out)
        })
    }

    fn replace_approval(&self, current: &ApprovalRecord, next: &ApprovalRecord) -> Result<bool, StoreError> {
        let (store_id, id) = (current.store_id.clone(), current.id.clone());
        let before = serde_json::to_string(current).map_err(|e| corrupt("approval", e))?;
        let after = serde_json::to_string(next).map_err(|e| corrupt("approval", e))?;
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(io)?;
            let replaced = client
                .execute(
                    "UPDATE writ_approvals SET record = $4 WHERE store_id = $1 AND id = $2 AND record = $3",
                    &[&store_id, &id, &before, &after],
                )
                .await
                .map_err(io)?;
            Ok(replaced == 1)
        })
    }
}

impl DecisionLogStore for PostgresStore {
    fn append_decisions(&self, records: Vec<DecisionRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut store_ids = Vec::with_capacity(records.len());
        let mut times = Vec::with_capacity(records.len());
        let mut objects = Vec::with_capacity(records.len());
        let mut alloweds = Vec::with_capacity(records.len());
        let mut principals = Vec::with_capacity(records.len());
        let mut bodies = Vec::with_capacity(records.len());
        for record in &records {
            principals.push(serde_json::to_string(&record.principals).map_err(|e| corrupt("decision", e))?);
            bodies.push(serde_json::to_string(record).map_err(|e| corrupt("decision", e))?);
            store_ids.push(record.store_id.to_string());
            times.push(record.time_ms);
            objects.push(record.object.clone());
            alloweds.push(record.allowed);
        }
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(io)?;
            // Records of a store that does not exist (or no longer) are dropped; the others get
            // increasing sequence numbers in input order.
            client
                .execute(
                    "INSERT INTO writ_decisions (store_id, time_ms, object, allowed, principals, record)
                     SELECT u.store_id, u.time_ms, u.object, u.allowed, u.principals::jsonb, u.record
                     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bool[], $5::text[], $6::text[])
                         WITH ORDINALITY AS u(store_id, time_ms, object, allowed, principals, record, n)
                     WHERE EXISTS (SELECT 1 FROM writ_stores s WHERE s.id = u.store_id)
                     ORDER BY u.n",
                    &[&store_ids, &times, &objects, &alloweds, &principals, &bodies],
                )
                .await
                .map_err(io)?;
            Ok(())
        })
    }

    fn decisions(&self, store_id: &str, filter: &DecisionFilter) -> Result<DecisionPage, StoreError> {
        let store_id = store_id.to_string();
        let filter = filter.clone();
        let (before_time, before_seq) = match filter.before {
            Some(cursor) => (Some(cursor.time_ms), Some(signed("decision cursor", cursor.seq)?)),
            None => (None, None),
        };
        let limit = i64::try_from(filter.limit).unwrap_or(i64::MAX);
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(io)?;
            if !store_exists(&client, &store_id).await? {
                return Err(not_found(&store_id));
            }
            if limit == 0 {
                return Ok(Vec::new());
            }
            // Every filter runs in SQL, so a page holds `limit` matches and its last row is a
            // true cursor. `agent` and `tool` read the stored JSON record (principals after the
            // first, not an audience; `audit.tool` as a string) rather than new columns: rows
            // written before the filters existed answer them with no migration or backfill, and
            // the JSON is parsed only when one of them is set.
            let rows = client
                .query(
                    "SELECT time_ms, seq, record FROM writ_decisions
                     WHERE store_id = $1
                       AND ($2::bigint IS NULL OR time_ms >= $2)
                       AND ($3::bigint IS NULL OR time_ms < $3)
                       AND ($4::bigint IS NULL OR (time_ms, seq) < ($4, $5::bigint))
                       AND ($6::text IS NULL OR object = $6)
                       AND ($7::bool IS NULL OR allowed = $7)
                       AND ($8::text IS NULL OR principals @> jsonb_build_array($8::text))
                       AND ($9::text IS NULL OR (principals @> jsonb_build_array($9::text)
                           AND NOT COALESCE((record::jsonb ->> 'audience')::boolean, false)
                           AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(principals)
                                           WITH ORDINALITY AS chain(principal, position)
                                       WHERE chain.position > 1 AND chain.principal = $9)))
                       AND ($10::text IS NULL OR record::jsonb -> 'audit' -> 'tool' = to_jsonb($10::text))
                     ORDER BY time_ms DESC, seq DESC LIMIT $11",
                    &[
                        &store_id,
                        &filter.since_ms,
                        &filter.until_ms,
                        &before_time,
                        &before_seq,
                        &filter.object,
                        &filter.allowed,
                        &filter.principal,
                        &filter.agent,
                        &filter.tool,
                        &limit,
                    ],
                )
                .await
                .map_err(io)?;
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let bad = |e| corrupt("decision", e);
                let cursor = DecisionCursor {
                    time_ms: row.try_get(0).map_err(bad)?,
                    seq: unsigned("decision seq", row.try_get(1).map_err(bad)?)?,
                };
                let body: String = row.try_get(2).map_err(bad)?;
                let record: DecisionRecord = serde_json::from_str(&body).map_err(|e| corrupt("decision", e))?;
                // The SQL applied the filter already; this keeps the answer exactly sled's.
                if filter.matches(cursor, &record) {
                    out.push((cursor, record));
                }
            }
            Ok(out)
        })
    }

    fn trim_decisions(&self, store_id: &str, keep: usize, older_than_ms: i64) -> Result<usize, StoreError> {
        let store_id = store_id.to_string();
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.call(move |pool| async move {
            let client = pool.get().await.map_err(io)?;
            // Everything before the age bound goes, and everything older than the `keep` newest.
            let removed = client
                .execute(
                    "WITH cutoff AS (
                         SELECT time_ms, seq FROM writ_decisions WHERE store_id = $1
                         ORDER BY time_ms DESC, seq DESC OFFSET $2 LIMIT 1
                     )
                     DELETE FROM writ_decisions d
                     WHERE d.store_id = $1 AND (d.time_ms < $3
                         OR EXISTS (SELECT 1 FROM cutoff c WHERE (d.time_ms, d.seq) <= (c.time_ms, c.seq)))",
                    &[&store_id, &keep, &older_than_ms],
                )
                .await
                .map_err(io)?;
            usize::try_from(removed).map_err(|e| corrupt("trim count", e))
        })
    }
}

fn change_from_row(row: &Row) -> Result<ChangeRecord, StoreError> {
    let bad = |e| corrupt("change", e);
    let operation = match row.try_get::<_, String>(2).map_err(bad)?.as_str() {
        "write" => ChangeOperation::Write,
        "delete" => ChangeOperation::Delete,
        other => return Err(corrupt("change", format!("unknown operation `{other}`"))),
    };
    let seq: i64 = row.try_get(1).map_err(bad)?;
    Ok(ChangeRecord {
        cursor: ChangeCursor {
            revision: unsigned("change revision", row.try_get(0).map_err(bad)?)?,
            seq: u32::try_from(seq).map_err(|e| corrupt("change seq", e))?,
        },
        operation,
        tuple: tuple_from_row(row, 5)?,
        timestamp_ms: row.try_get(3).map_err(bad)?,
        actor: row.try_get(4).map_err(bad)?,
    })
}
