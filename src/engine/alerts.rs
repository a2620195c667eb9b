//! Alerts on agent behaviour (DESIGN §12), computed from the decision stream off the check path.
//!
//! What it owns: the [`Alerts`] service the engine holds ([`Engine::alerts`]): the rules
//! ([`AlertConfig`]), a bounded queue of decisions, the background thread that evaluates the
//! rules, the bounded ring of fired alerts ([`Alerts::list`]), the counters ([`Alerts::stats`])
//! and the sinks that hear of each alert as it fires ([`Alerts::subscribe`]; the API's webhook).
//! The rules, each over the decisions of one agent (the last principal of the agent type):
//! `denials` (more denied calls than a threshold within a sliding window), `outside_task` (a call
//! whose `audit.task` declares its tools in the model, `task:t-42#tool@tool:send_email`, for a
//! tool that is not one of them), `first_tool_call` (an agent's first call of a tool) and
//! `long_chain` (a chain longer than a limit).
//! **Invariant:** a decision never waits on alerts: its event is appended to a bounded queue (one
//! [`Batch`] under a mutex, which the alerts thread swaps for an empty one; no wake per event)
//! within a short critical section, and what does not fit is counted as dropped. Nothing runs (no
//! thread, no copy of a record) until [`Alerts::start`] is called. Alerts live in memory only:
//! a restart forgets them, and which tools each agent has called.
//! Must not import `api`; the model is read only through the [`StoreHandle`] of the store.
//!
//! [`Engine::alerts`]: super::Engine::alerts

use super::{Core, EngineError, ListUsersRequest, StoreHandle, UserFilterSpec};
use crate::record::DecisionRecord;
use crate::tuple::Context;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// A rule an alert comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertRule {
    /// More denied calls of one agent within the window than the threshold.
    Denials,
    /// A call for a tool its task does not declare.
    OutsideTask,
    /// An agent's first call of a tool.
    FirstToolCall,
    /// A chain longer than the limit.
    LongChain,
}

impl AlertRule {
    /// Every rule, in the order `/metrics` lists them.
    pub const ALL: [AlertRule; 4] =
        [AlertRule::Denials, AlertRule::OutsideTask, AlertRule::FirstToolCall, AlertRule::LongChain];

    /// The wire name: `denials`, `outside_task`, `first_tool_call` or `long_chain`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertRule::Denials => "denials",
            AlertRule::OutsideTask => "outside_task",
            AlertRule::FirstToolCall => "first_tool_call",
            AlertRule::LongChain => "long_chain",
        }
    }

    /// The rule a wire name names.
    pub fn parse(text: &str) -> Option<AlertRule> {
        AlertRule::ALL.into_iter().find(|rule| rule.as_str() == text)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The `denials` rule: more than `threshold` denied calls of one agent within `window_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenialsRule {
    /// Denied calls allowed within the window; one more fires.
    pub threshold: u32,
    /// The sliding window, in milliseconds.
    pub window_ms: i64,
}

/// The `outside_task` rule: where a task's declared tools are in the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRule {
    /// The type of task objects (`task`): `audit.task` `t-42` names `task:t-42`.
    pub task_type: String,
    /// The relation from a task to its tools (`tool`).
    pub relation: String,
    /// The type of tool objects (`tool`): `audit.tool` `send_email` names `tool:send_email`.
    pub tool_type: String,
}

impl Default for TaskRule {
    fn default() -> Self {
        TaskRule { task_type: "task".into(), relation: "tool".into(), tool_type: "tool".into() }
    }
}

/// Which rules run, with their thresholds, and how much is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertConfig {
    /// The subject type of agents (`agent`): a decision's agent is its last principal of it.
    pub agent_type: String,
    /// `denials`, when set.
    pub denials: Option<DenialsRule>,
    /// `outside_task`, when set.
    pub outside_task: Option<TaskRule>,
    /// `first_tool_call`, when true.
    pub first_tool_call: bool,
    /// `long_chain`: most principals a chain may have; `None` runs no such rule.
    pub max_chain: Option<usize>,
    /// Most alerts kept (all stores together); older ones are forgotten.
    pub keep: usize,
    /// Decisions the queue holds before new ones are dropped.
    pub queue: usize,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            agent_type: "agent".into(),
            denials: None,
            outside_task: None,
            first_tool_call: false,
            max_chain: None,
            keep: 10_000,
            queue: 65_536,
        }
    }
}

/// One fired alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Its number, increasing in firing order (across stores): lists page by it.
    pub seq: u64,
    /// The store of the decision.
    pub store_id: String,
    /// The rule that fired.
    pub rule: AlertRule,
    /// When the decision was made, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The agent (`agent:planner`).
    pub agent: String,
    /// The decision's chain, human first.
    pub principals: Vec<String>,
    /// The tool called (`audit.tool`), if the decision named one.
    pub tool: Option<String>,
    /// The task (`audit.task`), if the decision named one.
    pub task: Option<String>,
    /// Whether the decision allowed.
    pub allowed: bool,
    /// What happened, in a sentence.
    pub message: String,
    /// The decision's request id.
    pub request_id: String,
}

/// Which alerts a list wants. Results come newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    /// Only this rule's.
    pub rule: Option<AlertRule>,
    /// Only this agent's.
    pub agent: Option<String>,
    /// Only alerts of decisions at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only alerts strictly older than this `seq` (the previous page's last one).
    pub before: Option<u64>,
    /// At most this many.
    pub limit: usize,
}

/// The counters of the alerts service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertStats {
    /// Alerts fired, per rule, in [`AlertRule::ALL`]'s order.
    pub fired: Vec<(AlertRule, u64)>,
    /// Decisions queued for evaluation.
    pub queued: u64,
    /// Decisions not evaluated because the queue was full.
    pub dropped: u64,
}

/// Something told of each alert as it fires, on the alerts thread: it must not block (the
/// webhook hands the alert to a queue of its own).
pub type AlertSink = Box<dyn Fn(&Alert) + Send + Sync>;

/// What the rules read of one decision's audit, found in one pass over it: `audit.tool`,
/// `audit.task` and `audit.server` when they are strings, and whether it names an approver's
/// step on an approval (`approval.step`: a human's decision, not the agent's call).
#[derive(Debug, Clone, Copy, Default)]
struct AuditFields<'a> {
    /// Tool, task and server, in that order.
    named: [Option<&'a str>; 3],
    approver_step: bool,
}

impl<'a> AuditFields<'a> {
    /// One pass over the (small) audit object: cheaper than a hashed lookup per key.
    fn read(audit: Option<&'a Context>) -> AuditFields<'a> {
        let mut fields = AuditFields::default();
        for (key, value) in audit.into_iter().flatten() {
            let slot = match key.as_str() {
                "tool" => 0,
                "task" => 1,
                "server" => 2,
                "approval" => {
                    fields.approver_step = value.get("step").is_some();
                    continue;
                }
                _ => continue,
            };
            if let Some(named) = fields.named.get_mut(slot) {
                *named = value.as_str();
            }
        }
        fields
    }
}

/// Where one event's fields lie in the text of its [`Batch`], and what it carries besides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EventHead {
    time_ms: i64,
    allowed: bool,
    /// Which of tool, task and server the audit named (bits 0, 1 and 2).
    named: u8,
    /// Where the event's text starts in its batch's text.
    start: usize,
    /// Where each of store id, request id, tool, task, server and the chain (its principals
    /// joined by `\n`) ends, from `start`: the last is the event's length.
    ends: [usize; 6],
}

/// One event as the rules read it: its head and its own text (borrowed from a batch, or from
/// the copy the alerts thread keeps of the last call). Nothing is formatted until a rule fires.
#[derive(Debug, Clone, Copy)]
struct AlertEvent<'t> {
    head: EventHead,
    text: &'t str,
}

impl<'t> AlertEvent<'t> {
    /// The `index`th field (0 store id … 5 chain), from the end of the one before it.
    fn field(&self, index: usize) -> &'t str {
        let ends = &self.head.ends;
        let start = index.checked_sub(1).and_then(|before| ends.get(before)).copied().unwrap_or(0);
        let end = ends.get(index).copied().unwrap_or(start);
        self.text.get(start..end).unwrap_or_default()
    }

    fn store_id(&self) -> &'t str {
        self.field(0)
    }

    fn request_id(&self) -> &'t str {
        self.field(1)
    }

    /// `audit.tool` (0), `audit.task` (1) or `audit.server` (2), when the audit named it.
    fn audit_field(&self, index: usize) -> Option<&'t str> {
        (self.head.named & (1 << index) != 0).then(|| self.field(index + 2))
    }

    fn tool(&self) -> Option<&'t str> {
        self.audit_field(0)
    }

    fn task(&self) -> Option<&'t str> {
        self.audit_field(1)
    }

    fn server(&self) -> Option<&'t str> {
        self.audit_field(2)
    }

    /// The chain as one string, its principals joined by `\n`.
    fn chain(&self) -> &'t str {
        self.field(5)
    }

    fn principals(&self) -> impl DoubleEndedIterator<Item = &'t str> {
        self.chain().split('\n')
    }
}

/// Events back to back: one string holds the text of all (store id, request id, tool, task,
/// server, then the chain joined by `\n`) and a vector their heads. The check path appends to
/// the alerts' queue, which is one of these under a mutex, and the alerts thread swaps it for
/// the one it has just read: once both have grown, handing an event over allocates nothing and
/// frees nothing (an event with strings of its own cost a cross-thread free each, mimalloc's
/// slow path, more than the rules did).
#[derive(Debug, Default)]
struct Batch {
    text: String,
    heads: Vec<EventHead>,
}

impl Batch {
    /// Appends the event of a decision; returns how many it appended: none when a principal
    /// holds a `\n` (no valid subject does) or the audit names an approver's step.
    fn push(
        &mut self,
        time_ms: i64,
        allowed: bool,
        ids: [&str; 2],
        principals: &[String],
        audit: &AuditFields<'_>,
    ) -> usize {
        if audit.approver_step || principals.iter().any(|principal| principal.contains('\n')) {
            return 0;
        }
        let start = self.text.len();
        let [store_id, request_id] = ids;
        let [tool, task, server] = audit.named;
        let mut ends = [0; 6];
        let mut named = 0;
        for (index, field) in [Some(store_id), Some(request_id), tool, task, server].into_iter().enumerate() {
            if let Some(field) = field {
                self.text.push_str(field);
                if index >= 2 {
                    named |= 1 << (index - 2);
                }
            }
            ends[index] = self.text.len() - start;
        }
        for (index, principal) in principals.iter().enumerate() {
            if index > 0 {
                self.text.push('\n');
            }
            self.text.push_str(principal);
        }
        ends[5] = self.text.len() - start;
        self.heads.push(EventHead { time_ms, allowed, named, start, ends });
        1
    }

    /// Appends every event of `other`, in order.
    fn append(&mut self, other: &Batch) {
        let shift = self.text.len();
        self.text.push_str(&other.text);
        self.heads.extend(other.heads.iter().map(|head| EventHead { start: head.start + shift, ..*head }));
    }

    fn len(&self) -> usize {
        self.heads.len()
    }

    /// Forgets every event, keeping the room they took.
    fn clear(&mut self) {
        self.text.clear();
        self.heads.clear();
    }

    fn events(&self) -> impl Iterator<Item = AlertEvent<'_>> {
        self.heads.iter().map(|head| AlertEvent {
            head: *head,
            text: self.text.get(head.start..head.start + head.ends[5]).unwrap_or_default(),
        })
    }
}

/// The alert events of decisions their caller may still change before the rules read them (an
/// approval can allow a denied call): [`decide_into`](super::decide_into) adds them and
/// [`Alerts::send`] hands them over, all at once.
#[derive(Debug, Default)]
pub struct AlertEvents {
    batch: Batch,
}

impl AlertEvents {
    /// How many events it holds (so a caller can tell which ones a decision added).
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.batch.heads.is_empty()
    }

    /// Marks the events in `range` allowed: an approval allowed the calls they are of.
    pub fn allow(&mut self, range: std::ops::Range<usize>) {
        for head in self.batch.heads.get_mut(range).into_iter().flatten() {
            head.allowed = true;
        }
    }
}

/// What the check path hands the alerts thread, under [`Shared::queue`]'s lock.
#[derive(Default)]
struct Queue {
    /// Events not yet taken by the thread, in the order they came.
    batch: Batch,
    /// Flushes waiting for everything queued before them to be evaluated.
    flushes: Vec<SyncSender<()>>,
    /// Set when the service is dropped: the thread evaluates what is left and ends.
    closed: bool,
    /// Events queued for evaluation, ever.
    queued: u64,
    /// Events not queued because the queue was full, ever.
    dropped: u64,
}

/// What the service and its thread share.
#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    ring: Mutex<VecDeque<Alert>>,
    fired: [AtomicU64; 4],
    sinks: RwLock<Vec<AlertSink>>,
}

/// The running thread and what the check path needs to hand it events.
struct Running {
    worker: JoinHandle<()>,
    /// `{agent_type}:`, the prefix of an agent principal.
    agent_prefix: String,
    capacity: usize,
}

/// The alerts service, beside the engine: idle until [`Alerts::start`].
pub struct Alerts {
    core: Weak<Core>,
    running: OnceLock<Running>,
    shared: Arc<Shared>,
}

impl Alerts {
    /// The service, idle.
    pub(super) fn new(core: &Arc<Core>) -> Alerts {
        Alerts { core: Arc::downgrade(core), running: OnceLock::new(), shared: Arc::default() }
    }

    /// Starts evaluating `config`'s rules over every decision from now on. Fails when the
    /// service already runs or its thread cannot start.
    pub fn start(&self, config: AlertConfig) -> Result<(), EngineError> {
        if self.running.get().is_some() {
            return Err(EngineError::Validation("alerts are already running".into()));
        }
        let capacity = config.queue.max(1);
        let agent_prefix = format!("{}:", config.agent_type);
        let mut worker = Worker::new(config, self.core.clone(), self.shared.clone());
        let thread = std::thread::Builder::new()
            .name("writ-alerts".into())
            .spawn(move || worker.run())
            .map_err(|error| EngineError::Validation(format!("the alerts thread did not start: {error}")))?;
        self.running
            .set(Running { worker: thread, agent_prefix, capacity })
            .map_err(|_| EngineError::Validation("alerts are already running".into()))
    }

    /// True once [`Alerts::start`] has run.
    pub fn is_running(&self) -> bool {
        self.running.get().is_some()
    }

    /// True when the rules would look at a decision of these principals (one of them is an
    /// agent): test it before building a record that nothing else wants.
    pub fn wants(&self, principals: &[String]) -> bool {
        self.running.get().is_some_and(|running| is_agent_call(&running.agent_prefix, principals))
    }

    /// Hands what the rules read of the records they look at to the alerts thread; never
    /// blocks. When they do not all fit in the queue, none is queued and all are counted as
    /// dropped. Only the records `keep` says yes to stay in `records`.
    pub fn observe(&self, records: &mut Vec<DecisionRecord>, keep: impl Fn(&DecisionRecord) -> bool) {
        let Some(running) = self.running.get() else {
            records.retain(keep);
            return;
        };
        let mut events = AlertEvents::default();
        for record in records.iter().filter(|record| watched(&running.agent_prefix, record)) {
            let ids = [&*record.store_id, &*record.request_id];
            let audit = AuditFields::read(record.audit.as_ref());
            events.batch.push(record.time_ms, record.allowed, ids, &record.principals, &audit);
        }
        records.retain(keep);
        self.send(events);
    }

    /// Adds the event of a decision to `events`, or hands it straight to the alerts thread
    /// when `events` is `None`. Only for a decision the rules look at, as [`Alerts::wants`]
    /// (tested once by the caller) and not an audience's; an approver's step adds nothing.
    pub(crate) fn push_decision(
        &self,
        events: Option<&mut AlertEvents>,
        time_ms: i64,
        ids: [&str; 2],
        decision: (&[String], bool),
        audit: Option<&Context>,
    ) {
        let (principals, allowed) = decision;
        let audit = AuditFields::read(audit);
        match events {
            Some(events) => {
                events.batch.push(time_ms, allowed, ids, principals, &audit);
            }
            None => self.hand_over(1, |batch| batch.push(time_ms, allowed, ids, principals, &audit)),
        }
    }

    /// Hands `events` to the alerts thread at once; never blocks. When they do not all fit in
    /// the queue, none is queued and all are counted as dropped.
    pub fn send(&self, events: AlertEvents) {
        if !events.is_empty() {
            self.hand_over(events.len(), |batch| {
                batch.append(&events.batch);
                events.len()
            });
        }
    }

    /// Appends (with `add`, which says how many it added) up to `count` events to the queue, or
    /// counts them dropped when they do not fit. The thread is not woken (it polls, see
    /// [`FIRST_IDLE_WAIT`]) unless the queue just passed half its bound.
    fn hand_over(&self, count: usize, add: impl FnOnce(&mut Batch) -> usize) {
        let Some(running) = self.running.get() else { return };
        let mut queue = self.shared.queue.lock();
        let before = queue.batch.len();
        if before + count > running.capacity {
            queue.dropped += count as u64;
            return;
        }
        let added = add(&mut queue.batch);
        queue.queued += added as u64;
        drop(queue);
        let half = running.capacity / 2;
        if before < half && before + added >= half {
            running.worker.thread().unpark();
        }
    }

    /// Adds a sink told of every alert fired from now on.
    pub fn subscribe(&self, sink: AlertSink) {
        self.shared.sinks.write().push(sink);
    }

    /// Waits until every decision queued so far is evaluated.
    pub fn flush(&self) {
        let Some(running) = self.running.get() else { return };
        // The thread ends only when the service is dropped, or if a sink panicked: then no
        // one would answer.
        if running.worker.is_finished() {
            return;
        }
        let (done, wait) = mpsc::sync_channel(1);
        self.shared.queue.lock().flushes.push(done);
        running.worker.thread().unpark();
        let _ = wait.recv();
    }

    /// The store's alerts passing `filter`, newest first, after evaluating every decision
    /// queued so far.
    pub fn list(&self, store: &StoreHandle<'_>, filter: &AlertFilter) -> Result<Vec<Alert>, EngineError> {
        store.state.live()?;
        self.flush();
        let ring = self.shared.ring.lock();
        Ok(ring
            .iter()
            .rev()
            .filter(|alert| {
                alert.store_id == store.id()
                    && filter.rule.is_none_or(|rule| alert.rule == rule)
                    && filter.agent.as_ref().is_none_or(|agent| &alert.agent == agent)
                    && filter.since_ms.is_none_or(|since| alert.time_ms >= since)
                    && filter.before.is_none_or(|before| alert.seq < before)
            })
            .take(filter.limit)
            .cloned()
            .collect())
    }

    /// The counters: alerts fired per rule, decisions queued and dropped.
    pub fn stats(&self) -> AlertStats {
        let (queued, dropped) = {
            let queue = self.shared.queue.lock();
            (queue.queued, queue.dropped)
        };
        AlertStats {
            fired: AlertRule::ALL
                .into_iter()
                .map(|rule| (rule, self.shared.fired[rule.index()].load(Ordering::Relaxed)))
                .collect(),
            queued,
            dropped,
        }
    }
}

impl Drop for Alerts {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has evaluated what is left.
        if let Some(Running { worker, .. }) = self.running.take() {
            self.shared.queue.lock().closed = true;
            worker.thread().unpark();
            let _ = worker.join();
        }
    }
}

/// True when one of `principals` is an agent.
fn is_agent_call(agent_prefix: &str, principals: &[String]) -> bool {
    principals.iter().any(|principal| principal.starts_with(agent_prefix))
}

/// True when the rules look at `record`: a decision about an agent's call, not an audience's,
/// and not an approver's step on an approval (a human's decision, not the agent's call).
fn watched(agent_prefix: &str, record: &DecisionRecord) -> bool {
    !record.audience
        && is_agent_call(agent_prefix, &record.principals)
        && !AuditFields::read(record.audit.as_ref()).approver_step
}

/// Most (store, agent, tool) triples remembered for `first_tool_call`; past it the oldest are
/// forgotten (and alert again when next called).
const MAX_SEEN_TOOLS: usize = 100_000;

/// Most agents whose recent denials are kept; past it, those with none in the window go.
const MAX_DENYING_AGENTS: usize = 10_000;

/// Most tasks whose declared tools are cached.
const MAX_CACHED_TASKS: usize = 1024;

/// How long the alerts thread first sleeps on an empty queue; each further empty poll sleeps
/// twice as long, up to [`LAST_IDLE_WAIT`]. Decisions do not wake it (that would cost the check
/// path a system call each): it drains what piled up when it wakes.
const FIRST_IDLE_WAIT: Duration = Duration::from_millis(1);

/// The longest sleep of the alerts thread between polls of an empty queue.
const LAST_IDLE_WAIT: Duration = Duration::from_millis(50);

/// The denials of one agent within the window, and when the rule last fired for it.
#[derive(Default)]
struct RecentDenials {
    times: VecDeque<i64>,
    fired_at: Option<i64>,
}

/// Values by store, then by a name within the store (agent, task): looked up by `&str`, so a
/// rule that finds what it knows copies no string.
type PerStore<V> = HashMap<String, HashMap<String, V>>;

/// The value under `key`, inserted as the default when missing; always `Some`.
fn slot<'m, V: Default>(map: &'m mut HashMap<String, V>, key: &str) -> Option<&'m mut V> {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key)
}

/// How many names a [`PerStore`] holds, all stores together.
fn count<V>(map: &PerStore<V>) -> usize {
    map.values().map(HashMap::len).sum()
}

/// The call of the last event: events of the same request with the same chain in the same store
/// are one call (a gateway call checks each of its tool's entries, and is one call).
#[derive(Default)]
struct LastCall {
    /// A copy of its last event's text (the batch it came in is reused): the buffer is kept, so
    /// copying the next one allocates nothing once it has grown.
    text: String,
    /// Its last event's head; `None` before the first event.
    head: Option<EventHead>,
    /// Whether a denial of the call was counted.
    denial_counted: bool,
}

impl LastCall {
    fn event(&self) -> Option<AlertEvent<'_>> {
        self.head.map(|head| AlertEvent { head, text: &self.text })
    }

    /// Remembers `event` as the call's last.
    fn remember(&mut self, event: &AlertEvent<'_>, denial_counted: bool) {
        self.text.clear();
        self.text.push_str(event.text);
        self.head = Some(event.head);
        self.denial_counted = denial_counted;
    }
}

/// What an event says about the call it belongs to.
struct Call<'e> {
    event: &'e AlertEvent<'e>,
    agent: &'e str,
}

impl Call<'_> {
    fn alert(&self, rule: AlertRule, message: String) -> Alert {
        Alert {
            seq: 0,
            store_id: self.event.store_id().to_string(),
            rule,
            time_ms: self.event.head.time_ms,
            agent: self.agent.to_string(),
            principals: self.event.principals().map(str::to_string).collect(),
            tool: self.event.tool().map(str::to_string),
            task: self.event.task().map(str::to_string),
            allowed: self.event.head.allowed,
            message,
            request_id: self.event.request_id().to_string(),
        }
    }
}

/// The alerts thread's state: the rules and what they remember.
struct Worker {
    config: AlertConfig,
    agent_prefix: String,
    core: Weak<Core>,
    shared: Arc<Shared>,
    next_seq: u64,
    denials: PerStore<RecentDenials>,
    /// store → agent → the tools it has called.
    seen_tools: PerStore<HashSet<String>>,
    seen_order: VecDeque<(String, String, String)>,
    /// store → `audit.task` as given → (revision, declared tool objects).
    task_tools: PerStore<(u64, Vec<String>)>,
    last_call: LastCall,
}

impl Worker {
    fn new(config: AlertConfig, core: Weak<Core>, shared: Arc<Shared>) -> Worker {
        Worker {
            agent_prefix: format!("{}:", config.agent_type),
            config,
            core,
            shared,
            next_seq: 1,
            denials: HashMap::new(),
            seen_tools: HashMap::new(),
            seen_order: VecDeque::new(),
            task_tools: HashMap::new(),
            last_call: LastCall::default(),
        }
    }

    /// Evaluates events until the service is dropped, sleeping while the queue is empty (see
    /// [`FIRST_IDLE_WAIT`]); a flush or a queue half full wakes it early. Each round swaps the
    /// queue's batch for the one just read (emptied), so neither is allocated again.
    fn run(&mut self) {
        let shared = self.shared.clone();
        let mut taken = Batch::default();
        let mut flushes = Vec::new();
        let mut idle_wait = FIRST_IDLE_WAIT;
        loop {
            let closed = {
                let mut queue = shared.queue.lock();
                std::mem::swap(&mut queue.batch, &mut taken);
                std::mem::swap(&mut queue.flushes, &mut flushes);
                queue.closed
            };
            let idle = taken.heads.is_empty() && flushes.is_empty();
            for event in taken.events() {
                self.evaluate(&event);
            }
            taken.clear();
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
            if closed {
                return;
            }
            if idle {
                std::thread::park_timeout(idle_wait);
                idle_wait = (idle_wait * 2).min(LAST_IDLE_WAIT);
            } else {
                idle_wait = FIRST_IDLE_WAIT;
            }
        }
    }

    /// Runs every rule over one event.
    fn evaluate(&mut self, event: &AlertEvent<'_>) {
        let prefix = self.agent_prefix.as_str();
        let Some(agent) = event.principals().rev().find(|principal| principal.starts_with(prefix)) else {
            return;
        };
        let last = self.last_call.event().filter(|last| {
            !event.request_id().is_empty()
                && last.request_id() == event.request_id()
                && last.store_id() == event.store_id()
                && last.chain() == event.chain()
        });
        let same_call = last.is_some();
        let denial_counted = same_call && self.last_call.denial_counted;
        let call = Call { event, agent };
        let mut fired = Vec::new();
        if !event.head.allowed && !denial_counted {
            fired.extend(self.denials_rule(&call));
        }
        if !same_call {
            fired.extend(self.long_chain_rule(&call));
            fired.extend(self.first_tool_call_rule(&call));
            fired.extend(self.outside_task_rule(&call));
        }
        for alert in fired {
            self.fire(alert);
        }
        self.last_call.remember(event, denial_counted || !event.head.allowed);
    }

    fn denials_rule(&mut self, call: &Call<'_>) -> Option<Alert> {
        let rule = self.config.denials?;
        let now = call.event.head.time_ms;
        let window_start = now.saturating_sub(rule.window_ms);
        if count(&self.denials) >= MAX_DENYING_AGENTS {
            for agents in self.denials.values_mut() {
                agents.retain(|_, recent| recent.times.back().is_some_and(|&last| last > window_start));
            }
            self.denials.retain(|_, agents| !agents.is_empty());
        }
        let recent = slot(slot(&mut self.denials, call.event.store_id())?, call.agent)?;
        recent.times.push_back(now);
        while recent.times.front().is_some_and(|&time| time <= window_start) {
            recent.times.pop_front();
        }
        // Only "more than the threshold" matters, so no more than one past it is kept.
        while recent.times.len() > rule.threshold as usize + 1 {
            recent.times.pop_front();
        }
        let over = recent.times.len() > rule.threshold as usize;
        // Once per window: a burst past the threshold is one alert, not one per denial.
        if !over || recent.fired_at.is_some_and(|fired| fired > window_start) {
            return None;
        }
        recent.fired_at = Some(now);
        let message = format!(
            "agent `{}` was denied more than {} times within {} ms",
            call.agent, rule.threshold, rule.window_ms
        );
        Some(call.alert(AlertRule::Denials, message))
    }

    fn long_chain_rule(&self, call: &Call<'_>) -> Option<Alert> {
        let limit = self.config.max_chain?;
        let length = call.event.principals().count();
        (length > limit).then(|| {
            call.alert(
                AlertRule::LongChain,
                format!("a chain of {length} principals is longer than the limit of {limit}"),
            )
        })
    }

    fn first_tool_call_rule(&mut self, call: &Call<'_>) -> Option<Alert> {
        if !self.config.first_tool_call {
            return None;
        }
        let tool = call.event.tool()?;
        let store_id = call.event.store_id();
        let seen = self.seen_tools.get(store_id).and_then(|agents| agents.get(call.agent));
        if seen.is_some_and(|tools| tools.contains(tool)) {
            return None;
        }
        if self.seen_order.len() >= MAX_SEEN_TOOLS {
            if let Some((oldest_store, oldest_agent, oldest_tool)) = self.seen_order.pop_front() {
                self.forget_tool(&oldest_store, &oldest_agent, &oldest_tool);
            }
        }
        self.seen_order.push_back((store_id.to_string(), call.agent.to_string(), tool.to_string()));
        slot(slot(&mut self.seen_tools, store_id)?, call.agent)?.insert(tool.to_string());
        let message = format!("agent `{}` called tool `{tool}` for the first time", call.agent);
        Some(call.alert(AlertRule::FirstToolCall, message))
    }

    /// Forgets that an agent has called a tool, and the agent and store once they hold none.
    fn forget_tool(&mut self, store_id: &str, agent: &str, tool: &str) {
        let Some(agents) = self.seen_tools.get_mut(store_id) else { return };
        if let Some(tools) = agents.get_mut(agent) {
            tools.remove(tool);
            if tools.is_empty() {
                agents.remove(agent);
            }
        }
        if agents.is_empty() {
            self.seen_tools.remove(store_id);
        }
    }

    /// A call naming a task and a tool, when the task declares tools and this tool is not one
    /// (`tool:{tool}` or, for a gateway call, `tool:{server}.{tool}`; `tool:*` declares all).
    fn outside_task_rule(&mut self, call: &Call<'_>) -> Option<Alert> {
        let Worker { config, core, task_tools, .. } = self;
        let rule = config.outside_task.as_ref()?;
        let (tool, task) = (call.event.tool()?, call.event.task()?);
        let declared = declared_tools(core, task_tools, call.event.store_id(), task, rule)?;
        let server = call.event.server();
        if declared.is_empty() || declared.iter().any(|object| declares(object, &rule.tool_type, tool, server)) {
            return None;
        }
        let message = format!(
            "agent `{}` called tool `{tool}`, which task `{}` does not declare",
            call.agent,
            task_object(task, rule)
        );
        Some(call.alert(AlertRule::OutsideTask, message))
    }

    /// Numbers, counts, keeps and hands on one alert.
    fn fire(&mut self, mut alert: Alert) {
        alert.seq = self.next_seq;
        self.next_seq += 1;
        self.shared.fired[alert.rule.index()].fetch_add(1, Ordering::Relaxed);
        for sink in self.shared.sinks.read().iter() {
            sink(&alert);
        }
        let mut ring = self.shared.ring.lock();
        if ring.len() >= self.config.keep.max(1) {
            ring.pop_front();
        }
        ring.push_back(alert);
    }
}

/// The task object `audit.task` names: `t-42` is `task:t-42`; a name with a type stays as is.
fn task_object(task: &str, rule: &TaskRule) -> String {
    if task.contains(':') {
        task.to_string()
    } else {
        format!("{}:{task}", rule.task_type)
    }
}

/// True when the declared tool `object` covers `tool`: it is `{tool_type}:{tool}`,
/// `{tool_type}:*` or, for a gateway call, `{tool_type}:{server}.{tool}`.
fn declares(object: &str, tool_type: &str, tool: &str, server: Option<&str>) -> bool {
    let Some(name) = object.strip_prefix(tool_type).and_then(|rest| rest.strip_prefix(':')) else {
        return false;
    };
    name == "*"
        || name == tool
        || server.is_some_and(|server| {
            name.strip_prefix(server).and_then(|rest| rest.strip_prefix('.')).is_some_and(|rest| rest == tool)
        })
}

/// The tool objects a task declares, at the store's latest revision (cached per revision);
/// `None` when the store is gone or its model has no such task relation.
fn declared_tools<'c>(
    core: &Weak<Core>,
    cache: &'c mut PerStore<(u64, Vec<String>)>,
    store_id: &str,
    task: &str,
    rule: &TaskRule,
) -> Option<&'c [String]> {
    let core = core.upgrade()?;
    let store = StoreHandle { core: &core, state: core.find(store_id).ok()?, deadline: None };
    let revision = store.revision().ok()?;
    let cached = cache.get(store_id).and_then(|tasks| tasks.get(task));
    if cached.is_none_or(|(cached_at, _)| *cached_at != revision) {
        let task_object = task_object(task, rule);
        let request = ListUsersRequest {
            object: task_object.clone(),
            relation: rule.relation.clone(),
            user_filters: vec![UserFilterSpec { type_name: rule.tool_type.clone(), relation: None }],
            ..ListUsersRequest::default()
        };
        let tools: Vec<String> = match store.list_users(&request) {
            Ok(answer) => answer.value.iter().map(ToString::to_string).collect(),
            Err(error) => {
                tracing::debug!(%error, task = task_object, "task tools not read; outside_task skipped");
                return None;
            }
        };
        if count(cache) >= MAX_CACHED_TASKS {
            cache.clear();
        }
        *slot(slot(cache, store_id)?, task)? = (revision, tools);
    }
    cache.get(store_id)?.get(task).map(|(_, tools)| tools.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_names_round_trip() {
        let names = AlertRule::ALL.map(AlertRule::as_str);
        assert_eq!(names, ["denials", "outside_task", "first_tool_call", "long_chain"]);
        for (rule, name) in AlertRule::ALL.into_iter().zip(names) {
            assert_eq!(AlertRule::parse(name), Some(rule));
        }
        assert_eq!(AlertRule::parse("denial"), None);
    }

    #[test]
    fn approver_steps_and_audiences_are_not_watched() {
        let mut record = DecisionRecord {
            principals: vec!["user:anne".into(), "agent:bot".into()],
            relation: "can_call".into(),
            ..DecisionRecord::sample(0, "tool:x")
        };
        assert!(watched("agent:", &record));
        assert!(!watched("robot:", &record), "no principal of the agent type");
        record.audit = serde_json::json!({"approval": {"id": "a", "step": "deny"}}).as_object().cloned();
        assert!(!watched("agent:", &record), "an approver's step");
        record.audit = None;
        record.audience = true;
        assert!(!watched("agent:", &record), "an audience");
    }
}
