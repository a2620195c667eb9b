//! The decision log's recorder: check-like answers go into a bounded queue and a background
//! thread writes them to the store in batches, then trims the log by count and age (see
//! `trim_due` for when). The thread starts with the first decision the policy records, so an
//! engine that records none (mode `off`, or an embedder that never calls `record_decisions`)
//! runs no thread of its own.
//!
//! The queue is a vector under a mutex, not a channel: a caller appends and wakes the recorder
//! only when the queue was empty (or passes half its bound), and the recorder, once woken,
//! gathers for [`GATHER`] before it takes everything at once. A channel woke the recorder for
//! every record: under a stream of denied checks on one core that was a thread switch per
//! request, a fifth of the server's time (issue 34).
//!
//! What it owns: the [`DecisionLog`] service the engine holds ([`Engine::decision_log`]): the
//! queue, the recorder thread, the `all | deny | off` policy, and reading a store's records back.
//! **Invariant:** recording never blocks a caller (beyond the queue's short critical section) and
//! never fails one: when the queue is full the record is counted as dropped and discarded.
//! Records reach the store in the order they were queued; [`DecisionLog::flush`] returns once
//! everything queued before it is stored.
//! A record handed to [`DecisionLog::record`] or [`DecisionLog::record_all`] is shown to the
//! alerts service first (`engine/alerts.rs`), whatever the mode, so alerts see allows the `deny`
//! mode does not keep; the decision pipeline (`decide_into`) gives the alerts their events itself
//! and the log only the records its mode keeps.
//! Must not import `api`; the store is reached only through the engine's backend handle.
//!
//! [`Engine::decision_log`]: super::Engine::decision_log

use super::{Alerts, Clock, Core, EngineError, RecordIds, StoreHandle};
use crate::record::{DecisionCursor, DecisionFilter};
use crate::store::{DecisionRecord, TupleStore};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which decisions to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionLogMode {
    /// Every decision.
    All,
    /// Only denies (the default).
    Deny,
    /// None.
    Off,
}

/// Text that names no [`DecisionLogMode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not one of `all`, `deny`, `off`")]
pub struct UnknownDecisionLogMode(pub String);

impl std::str::FromStr for DecisionLogMode {
    type Err = UnknownDecisionLogMode;
    fn from_str(text: &str) -> Result<Self, UnknownDecisionLogMode> {
        match text {
            "all" => Ok(DecisionLogMode::All),
            "deny" => Ok(DecisionLogMode::Deny),
            "off" => Ok(DecisionLogMode::Off),
            other => Err(UnknownDecisionLogMode(other.to_string())),
        }
    }
}

/// Decision log settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionLogConfig {
    /// Which decisions to record.
    pub mode: DecisionLogMode,
    /// Most records kept per store; older ones are trimmed.
    pub max_count: usize,
    /// Oldest record kept, in milliseconds of age; older ones are trimmed.
    pub max_age_ms: i64,
    /// Records the queue holds before new ones are dropped.
    pub queue: usize,
    /// How often the recorder trims the log when idle.
    pub trim_interval: Duration,
}

impl Default for DecisionLogConfig {
    fn default() -> Self {
        DecisionLogConfig {
            mode: DecisionLogMode::Deny,
            max_count: 100_000,
            max_age_ms: 7 * 24 * 3600 * 1000,
            queue: 65_536,
            trim_interval: Duration::from_secs(10),
        }
    }
}

/// What callers hand the recorder, under [`Shared::queue`]'s lock.
#[derive(Default)]
struct Queue {
    /// Hand-offs not yet taken by the recorder, in the order they were queued (kept whole: a
    /// batch-check's records are not moved again until the store takes them).
    handoffs: Vec<Vec<DecisionRecord>>,
    /// How many records `handoffs` holds.
    records: usize,
    /// Flushes waiting for everything queued before them to be stored.
    flushes: Vec<SyncSender<()>>,
    /// Set when the log is dropped: the recorder stores what is left and ends.
    closed: bool,
}

impl Queue {
    fn idle(&self) -> bool {
        self.records == 0 && self.flushes.is_empty() && !self.closed
    }
}

/// The queue and the condition the recorder sleeps on.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

/// How long the recorder, woken by a first record, waits for more before it writes them all.
const GATHER: Duration = Duration::from_millis(10);

/// Counters of the decision log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecisionLogStats {
    /// Records queued for the store.
    pub queued: u64,
    /// Records discarded because the queue was full.
    pub dropped: u64,
}

/// The decision log, a service beside the engine: a bounded queue in front of a background
/// thread that owns the store writes, and the reads of a store's records.
pub struct DecisionLog {
    core: Arc<Core>,
    mode: DecisionLogMode,
    config: DecisionLogConfig,
    backend: Arc<dyn TupleStore>,
    clock: Clock,
    /// Set by the first record the mode wants; `None` inside when the thread failed to start.
    recorder: OnceLock<Option<Recorder>>,
    queued: AtomicU64,
    dropped: AtomicU64,
    /// Most records the queue holds.
    capacity: usize,
    /// Sees every record handed to the log, whatever the mode (it watches allows too).
    alerts: Arc<Alerts>,
    /// The store and model ids of the last records built: the next ones of the same store and
    /// model share them ([`DecisionLog::shared_ids`]) instead of copying them each.
    shared_ids: Mutex<Option<(Arc<str>, Arc<str>)>>,
    /// The request id of the last records built: the next ones of the same request (a
    /// batch-check's thousand) share it ([`DecisionLog::shared_request_id`]).
    shared_request_id: Mutex<Option<Arc<str>>>,
}

/// The running recorder thread and the queue it drains.
struct Recorder {
    shared: Arc<Shared>,
    worker: JoinHandle<()>,
}

impl DecisionLog {
    /// The recorder, idle: its thread starts with the first record the mode wants.
    pub(super) fn start(core: Arc<Core>, alerts: Arc<Alerts>) -> DecisionLog {
        let (config, backend, clock) = (core.config.decision_log, core.backend.clone(), core.clock.clone());
        let mut config = config;
        if backend.decision_log().is_none() && config.mode != DecisionLogMode::Off {
            tracing::warn!("the datastore keeps no decision log; decisions are not recorded");
            config.mode = DecisionLogMode::Off;
        }
        DecisionLog {
            core,
            mode: config.mode,
            config,
            backend,
            clock,
            recorder: OnceLock::new(),
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            capacity: config.queue.max(1),
            alerts,
            shared_ids: Mutex::new(None),
            shared_request_id: Mutex::new(None),
        }
    }

    /// `store_id` and `model_id` for a record: the ones the last records shared when they are
    /// equal (a pointer copy, no allocation), else new ones that the next records share.
    fn shared_ids(&self, store_id: &str, model_id: &str) -> (Arc<str>, Arc<str>) {
        let mut shared = self.shared_ids.lock();
        match &*shared {
            Some((store, model)) if **store == *store_id && **model == *model_id => (store.clone(), model.clone()),
            _ => {
                let ids: (Arc<str>, Arc<str>) = (store_id.into(), model_id.into());
                *shared = Some(ids.clone());
                ids
            }
        }
    }

    /// `request_id` for a record: the one the last records shared when it is equal, else a new
    /// one that the next records share.
    fn shared_request_id(&self, request_id: &str) -> Arc<str> {
        let mut shared = self.shared_request_id.lock();
        match &*shared {
            Some(id) if **id == *request_id => id.clone(),
            _ => shared.insert(Arc::from(request_id)).clone(),
        }
    }

    /// The ids the records of one request share ([`RecordIds`]), through the log's caches: a
    /// request of the same store and model as the last one shares its `Arc`s too.
    pub fn record_ids(&self, store_id: &str, model_id: &str, request_id: &str) -> RecordIds {
        let (store_id, model_id) = self.shared_ids(store_id, model_id);
        RecordIds { store_id, model_id, request_id: self.shared_request_id(request_id) }
    }

    /// The recorder thread, started on first use; `None` when it could not start.
    fn recorder(&self) -> Option<&Recorder> {
        let start = || {
            let shared = Arc::new(Shared::default());
            let (config, backend, clock, queue) =
                (self.config, self.backend.clone(), self.clock.clone(), shared.clone());
            std::thread::Builder::new()
                .name("writ-decision-log".into())
                .spawn(move || run(&queue, &config, backend.as_ref(), &clock))
                .map_err(|error| tracing::error!(%error, "decision log thread did not start; nothing is recorded"))
                .ok()
                .map(|worker| Recorder { shared, worker })
        };
        self.recorder.get_or_init(start).as_ref()
    }

    /// True when the log would record a decision with this outcome (by its mode): test it
    /// before building a [`DecisionRecord`], so unrecorded decisions cost nothing.
    pub fn wants(&self, allowed: bool) -> bool {
        let running = || !matches!(self.recorder.get(), Some(None));
        match self.mode {
            DecisionLogMode::All => running(),
            DecisionLogMode::Deny => !allowed && running(),
            DecisionLogMode::Off => false,
        }
    }

    /// True when the log (by its mode) or the alerts (a decision of an agent's) would take a
    /// decision with this outcome and these principals: test it before building a
    /// [`DecisionRecord`], so a decision nobody takes costs nothing.
    pub fn wants_decision(&self, allowed: bool, principals: &[String]) -> bool {
        self.wants(allowed) || self.alerts.wants(principals)
    }

    /// Records a check-like decision, if the mode wants it. Never blocks and never fails: the
    /// record is queued for the background writer, or counted as dropped when the queue is
    /// full. An empty `model_id` is filled with the store's latest model.
    pub fn record(&self, record: DecisionRecord) {
        // Neither the log nor the alerts want it: skip the vector and the hand-off.
        if !self.wants_decision(record.allowed, &record.principals) {
            return;
        }
        self.record_all(vec![record]);
    }

    /// Records several decisions, in order, as one hand-off (see [`DecisionLog::record`]): a
    /// batch-check's records cost one queue operation, not one each. When they do not all fit
    /// in the queue, none is queued and all are counted as dropped.
    pub fn record_all(&self, mut records: Vec<DecisionRecord>) {
        self.alerts.observe(&mut records, |record| self.wants(record.allowed));
        self.fill_models(&mut records);
        self.queue(records);
    }

    /// Records decisions whose events the alerts already have (built straight from the
    /// decisions by [`decide_into`](super::decide_into)): as [`DecisionLog::record_all`]
    /// without showing them to the alerts again. Only records the mode wants belong here.
    pub(crate) fn record_seen(&self, mut records: Vec<DecisionRecord>) {
        self.fill_models(&mut records);
        self.queue(records);
    }

    /// The alerts service every record is shown to.
    pub(crate) fn alerts(&self) -> &Alerts {
        &self.alerts
    }

    /// Records the steps of an oversight (an approver's approve or deny, a call an approval
    /// allowed) whatever the mode but `off`: they are the record of a human's decision, which
    /// the `deny` mode must not lose because it allows. They are not shown to the alerts: an
    /// approver's step is a human's decision, not an agent's call, and the calls come from
    /// [`decide_into`](super::decide_into), whose caller sends their events itself.
    pub fn record_oversight(&self, mut records: Vec<DecisionRecord>) {
        if self.mode == DecisionLogMode::Off || matches!(self.recorder.get(), Some(None)) {
            return;
        }
        self.fill_models(&mut records);
        self.queue(records);
    }

    /// Fills each empty `model_id` with its store's latest model.
    fn fill_models(&self, records: &mut [DecisionRecord]) {
        let mut latest: Option<(Arc<str>, Arc<str>)> = None;
        for record in records.iter_mut().filter(|record| record.model_id.is_empty()) {
            if latest.as_ref().is_none_or(|(store_id, _)| *store_id != record.store_id) {
                let model_id = self
                    .core
                    .find(&record.store_id)
                    .ok()
                    .and_then(|state| state.data.read().models.last().map(|latest| latest.id.clone()));
                latest = Some(self.shared_ids(&record.store_id, &model_id.unwrap_or_default()));
            }
            if let Some((_, model_id)) = &latest {
                record.model_id = model_id.clone();
            }
        }
    }

    /// Hands records the mode wants to the recorder; never waits for it.
    fn queue(&self, records: Vec<DecisionRecord>) {
        let count = records.len();
        if count == 0 {
            return;
        }
        let Some(Recorder { shared, .. }) = self.recorder() else { return };
        let mut queue = shared.queue.lock();
        let before = queue.records;
        if before + count > self.capacity {
            drop(queue);
            self.dropped.fetch_add(count as u64, Ordering::Relaxed);
            return;
        }
        queue.handoffs.push(records);
        queue.records += count;
        drop(queue);
        self.queued.fetch_add(count as u64, Ordering::Relaxed);
        // The recorder sleeps only while the queue is empty, and gathers by itself once woken;
        // past half the bound it is woken again so that a burst is not dropped.
        let half = self.capacity / 2;
        if before == 0 || (before <= half && before + count > half) {
            shared.wake.notify_one();
        }
    }

    /// Waits until every decision recorded so far is stored and the log is trimmed to its
    /// retention bounds. Before the first record (no thread yet) it trims here, so a log kept
    /// from an earlier run still meets its bounds when read.
    pub fn flush(&self) {
        let Some(Some(Recorder { shared, .. })) = self.recorder.get() else {
            if self.mode != DecisionLogMode::Off {
                trim(&self.config, self.backend.as_ref(), &self.clock);
            }
            return;
        };
        let (done, wait) = mpsc::sync_channel(1);
        shared.queue.lock().flushes.push(done);
        shared.wake.notify_one();
        // An error means the recorder is gone (it panicked): nothing more will be stored.
        let _ = wait.recv();
    }

    /// The counters (queued and dropped records).
    pub fn stats(&self) -> DecisionLogStats {
        DecisionLogStats { queued: self.queued.load(Ordering::Relaxed), dropped: self.dropped.load(Ordering::Relaxed) }
    }

    /// The store's recorded decisions passing `filter`, newest first, after storing every
    /// decision recorded so far.
    pub fn list(
        &self,
        store: &StoreHandle<'_>,
        filter: &DecisionFilter,
    ) -> Result<Vec<(DecisionCursor, DecisionRecord)>, EngineError> {
        store.state.live()?;
        let log = self
            .core
            .backend
            .decision_log()
            .ok_or_else(|| EngineError::Validation("this datastore keeps no decision log".into()))?;
        self.flush();
        Ok(log.decisions(store.id(), filter)?)
    }

    /// One recorded decision of the store, by where it sits in the log; `None` when the log
    /// holds no record there (never recorded, or trimmed since).
    pub fn get(&self, store: &StoreHandle<'_>, cursor: DecisionCursor) -> Result<Option<DecisionRecord>, EngineError> {
        // Newest first, strictly before the next sequence number and not before its millisecond:
        // the first record found is the one at `cursor`, if it is still there.
        let filter = DecisionFilter {
            since_ms: Some(cursor.time_ms),
            before: Some(DecisionCursor { time_ms: cursor.time_ms, seq: cursor.seq.saturating_add(1) }),
            limit: 1,
            ..DecisionFilter::default()
        };
        let found = self.list(store, &filter)?;
        Ok(found.into_iter().find(|(at, _)| *at == cursor).map(|(_, record)| record))
    }
}

impl Drop for DecisionLog {
    fn drop(&mut self) {
        // Closing the queue ends the thread after it stores what is left; joining it releases
        // the store handle (sled's file lock) before the engine is gone.
        if let Some(Recorder { shared, worker }) = self.recorder.take().flatten() {
            shared.queue.lock().closed = true;
            shared.wake.notify_one();
            let _ = worker.join();
        }
    }
}

/// Most records written in one store batch.
const BATCH: usize = 1024;

/// With no new records, the log is trimmed (for age) once per this many trim intervals.
const IDLE_TRIM_EVERY: u32 = 30;

/// The recorder thread's loop. Kept out of line (it runs once per thread, so this costs
/// nothing) so that a profile names the thread's work: `callgrind --toggle-collect` on it counts
/// the recorder's share of a recorded decision (see benches/README.md).
#[inline(never)]
fn run(shared: &Shared, config: &DecisionLogConfig, backend: &dyn TupleStore, clock: &Clock) {
    let mut last_trim = Instant::now();
    let mut appended = 0usize;
    loop {
        let (handoffs, waiting, flushes, closed) = {
            let mut queue = shared.queue.lock();
            if queue.idle() {
                // Woken by the first record, a flush or the close; else now and then to trim.
                let _ = shared.wake.wait_for(&mut queue, config.trim_interval);
            }
            if queue.records > 0 && queue.flushes.is_empty() && !queue.closed {
                // Let the records of the next moments join these in one store write (a flush,
                // the close or a queue past half its bound ends the wait early).
                let _ = shared.wake.wait_for(&mut queue, GATHER);
            }
            let waiting = std::mem::take(&mut queue.records);
            (std::mem::take(&mut queue.handoffs), waiting, std::mem::take(&mut queue.flushes), queue.closed)
        };
        let store = |records: Vec<DecisionRecord>| {
            let count = records.len();
            if let Some(Err(error)) = backend.decision_log().map(|log| log.append_decisions(records)) {
                tracing::warn!(%error, records = count, "decision log records lost");
            }
            count
        };
        // Small hand-offs (single checks) are joined into writes of up to `BATCH`; a large one
        // (a batch-check's) is written as it came when nothing is waiting before it.
        // A chunk is sized once for the records left (at most a write's worth: it is written on
        // passing `BATCH`, by less than a large hand-off): grown a hand-off at a time, it moved
        // every record again on each doubling.
        let mut left = waiting;
        let mut chunk = Vec::new();
        for handoff in handoffs {
            if chunk.is_empty() && handoff.len() >= BATCH / 4 {
                left = left.saturating_sub(handoff.len());
                appended += store(handoff);
                continue;
            }
            if chunk.capacity() == 0 {
                chunk.reserve_exact(left.min(BATCH + BATCH / 4));
            }
            left = left.saturating_sub(handoff.len());
            chunk.extend(handoff);
            if chunk.len() >= BATCH {
                appended += store(std::mem::take(&mut chunk));
            }
        }
        if !chunk.is_empty() {
            appended += store(chunk);
        }
        if trim_due(config, appended, last_trim.elapsed(), !flushes.is_empty()) {
            trim(config, backend, clock);
            last_trim = Instant::now();
            appended = 0;
        }
        for done in flushes {
            let _ = done.send(());
        }
        if closed && shared.queue.lock().records == 0 {
            return;
        }
    }
}

/// Whether the recorder trims now, `appended` records and `since` after the last trim: always
/// before answering a flush; after new records once per trim interval, or sooner once they
/// pass a quarter of `max_count` (so a busy log never holds much more than its bound: a
/// 10-second interval at 100k records/s would otherwise pile up ten times the bound and churn
/// the allocator); and now and then when idle (age bound). `appended` counts every store's
/// records, so it errs towards trimming early.
fn trim_due(config: &DecisionLogConfig, appended: usize, since: Duration, flushing: bool) -> bool {
    flushing
        || (appended > 0 && since >= config.trim_interval)
        || appended >= (config.max_count / 4).max(BATCH)
        || since >= config.trim_interval * IDLE_TRIM_EVERY
}

/// Applies the retention bounds to every store's log.
pub(crate) fn trim(config: &DecisionLogConfig, backend: &dyn TupleStore, clock: &Clock) {
    // `DecisionLog::start` runs no recorder (so no trim) for a backend without a log.
    let Some(log) = backend.decision_log() else { return };
    let older_than = clock().saturating_sub(config.max_age_ms);
    let stores = match backend.list_stores() {
        Ok(stores) => stores,
        Err(error) => {
            tracing::warn!(%error, "decision log not trimmed");
            return;
        }
    };
    for store in stores {
        if let Err(error) = log.trim_decisions(&store.id, config.max_count, older_than) {
            tracing::warn!(%error, store = %store.id, "decision log not trimmed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_count: usize) -> DecisionLogConfig {
        DecisionLogConfig { max_count, trim_interval: Duration::from_secs(10), ..DecisionLogConfig::default() }
    }

    #[test]
    fn the_recorder_thread_starts_with_the_first_recorded_decision() {
        let engine = super::super::Engine::in_memory();
        let log = engine.decision_log();
        assert!(log.wants(false) && !log.wants(true), "the default mode records denies");
        log.flush();
        assert!(log.recorder.get().is_none(), "no thread before a decision is recorded");
        log.record_all(vec![record(true)]);
        assert!(log.recorder.get().is_none(), "an allow is not recorded in `deny` mode");
        log.record_all(vec![record(false)]);
        assert!(matches!(log.recorder.get(), Some(Some(_))), "the first deny starts the thread");
        log.flush();
        assert_eq!(log.stats(), DecisionLogStats { queued: 1, dropped: 0 });
    }

    fn record(allowed: bool) -> DecisionRecord {
        DecisionRecord { allowed, ..DecisionRecord::sample(0, "document:1") }
    }

    #[test]
    fn records_queued_one_at_a_time_reach_the_store_in_order_and_none_is_lost() {
        let engine = super::super::Engine::in_memory();
        let store = engine.create_store("s").unwrap();
        let log = engine.decision_log();
        let now = (engine.core.clock)();
        // From two threads at once, then one at a time: each hand-off wakes the recorder at most
        // once, and a flush still finds every record of both.
        std::thread::scope(|scope| {
            for thread in 0..2 {
                let (log, id): (_, Arc<str>) = (log, store.id.as_str().into());
                scope.spawn(move || {
                    for i in 0..200 {
                        let object = format!("document:t{thread}-{i}");
                        log.record_all(vec![DecisionRecord {
                            store_id: id.clone(),
                            time_ms: now,
                            object,
                            ..record(false)
                        }]);
                    }
                });
            }
        });
        let filter = DecisionFilter { limit: 1000, ..DecisionFilter::default() };
        let listed = log.list(&engine.store(&store.id).unwrap(), &filter).unwrap();
        assert_eq!(listed.len(), 400);
        for thread in 0..2 {
            let prefix = format!("document:t{thread}-");
            let order: Vec<usize> = listed
                .iter()
                .rev()
                .filter_map(|(_, record)| record.object.strip_prefix(&prefix)?.parse().ok())
                .collect();
            assert_eq!(order, (0..200).collect::<Vec<_>>(), "one thread's records keep their order");
        }
        assert_eq!(log.stats(), DecisionLogStats { queued: 400, dropped: 0 });
    }

    #[test]
    fn busy_log_is_trimmed_before_the_interval_once_a_quarter_of_its_bound_is_appended() {
        let config = config(100_000);
        let soon = Duration::from_millis(50);
        assert!(!trim_due(&config, 24_999, soon, false));
        assert!(trim_due(&config, 25_000, soon, false));
        assert!(!trim_due(&config, 0, soon, false));
    }

    #[test]
    fn trim_follows_the_interval_and_every_flush() {
        let config = config(100_000);
        assert!(trim_due(&config, 1, Duration::from_secs(10), false));
        assert!(!trim_due(&config, 0, Duration::from_secs(10), false), "idle: only the idle period trims");
        assert!(trim_due(&config, 0, Duration::from_secs(10) * IDLE_TRIM_EVERY, false));
        assert!(trim_due(&config, 0, Duration::ZERO, true));
    }

    #[test]
    fn small_bounds_still_trim_at_most_once_per_store_batch() {
        let config = config(10);
        assert!(!trim_due(&config, BATCH - 1, Duration::ZERO, false));
        assert!(trim_due(&config, BATCH, Duration::ZERO, false));
    }
}
