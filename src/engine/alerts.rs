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
//! **Invariant:** a decision never waits on alerts: [`Alerts::observe`] hands records to a
//! bounded queue without blocking, and counts what does not fit as dropped. Nothing runs (no
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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
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

/// What the rules read of one decision, packed into one string (store id, request id, tool,
/// task, server, then the chain joined by `\n`) so that the check path allocates once per event
/// and the alerts thread frees once: freeing on another thread what the check thread allocated
/// cost that thread more than the rules did. Nothing is formatted until a rule fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AlertEvent {
    time_ms: i64,
    allowed: bool,
    text: String,
    /// Where each of store id, request id, tool, task and server ends in `text`; the chain
    /// follows the last.
    ends: [usize; 5],
    /// Which of tool, task and server the audit named (bits 0, 1 and 2).
    named: u8,
}

impl AlertEvent {
    /// The event of a decision; `None` when a principal holds a `\n` (no valid subject does).
    fn new(
        time_ms: i64,
        allowed: bool,
        store_id: &str,
        request_id: &str,
        principals: &[String],
        audit: Option<&Context>,
    ) -> Option<AlertEvent> {
        if principals.iter().any(|principal| principal.contains('\n')) {
            return None;
        }
        let audit_text = |key: &str| audit.and_then(|audit| audit.get(key)).and_then(serde_json::Value::as_str);
        let fields = [Some(store_id), Some(request_id), audit_text("tool"), audit_text("task"), audit_text("server")];
        let length = fields.iter().flatten().map(|field| field.len()).sum::<usize>()
            + principals.iter().map(|principal| principal.len() + 1).sum::<usize>();
        let mut text = String::with_capacity(length);
        let mut ends = [0; 5];
        let mut named = 0;
        for (index, field) in fields.iter().enumerate() {
            if let Some(field) = field {
                text.push_str(field);
                if index >= 2 {
                    named |= 1 << (index - 2);
                }
            }
            ends[index] = text.len();
        }
        for (index, principal) in principals.iter().enumerate() {
            if index > 0 {
                text.push('\n');
            }
            text.push_str(principal);
        }
        Some(AlertEvent { time_ms, allowed, text, ends, named })
    }

    /// The `index`th field (0 store id … 4 server), from the end of the one before it.
    fn field(&self, index: usize) -> &str {
        let start = index.checked_sub(1).and_then(|before| self.ends.get(before)).copied().unwrap_or(0);
        let end = self.ends.get(index).copied().unwrap_or(start);
        self.text.get(start..end).unwrap_or_default()
    }

    fn store_id(&self) -> &str {
        self.field(0)
    }

    fn request_id(&self) -> &str {
        self.field(1)
    }

    /// `audit.tool` (0), `audit.task` (1) or `audit.server` (2), when the audit named it.
    fn audit_field(&self, index: usize) -> Option<&str> {
        (self.named & (1 << index) != 0).then(|| self.field(index + 2))
    }

    fn tool(&self) -> Option<&str> {
        self.audit_field(0)
    }

    fn task(&self) -> Option<&str> {
        self.audit_field(1)
    }

    fn server(&self) -> Option<&str> {
        self.audit_field(2)
    }

    /// The chain as one string, its principals joined by `\n`.
    fn chain(&self) -> &str {
        self.text.get(self.ends[4]..).unwrap_or_default()
    }

    fn principals(&self) -> impl DoubleEndedIterator<Item = &str> {
        self.chain().split('\n')
    }

    /// The event of `record`.
    fn of(record: &DecisionRecord) -> Option<AlertEvent> {
        AlertEvent::new(
            record.time_ms,
            record.allowed,
            &record.store_id,
            &record.request_id,
            &record.principals,
            record.audit.as_ref(),
        )
    }
}

/// The events of the decisions of one question, built on the check path straight from the
/// decisions (no [`DecisionRecord`]) and handed over at once by [`Alerts::send`].
#[derive(Default)]
pub(crate) struct AlertEvents {
    one: Option<AlertEvent>,
    more: Vec<AlertEvent>,
}

impl AlertEvents {
    fn push_some(&mut self, event: Option<AlertEvent>) {
        let Some(event) = event else { return };
        match self.one.take() {
            None if self.more.is_empty() => self.one = Some(event),
            first => {
                self.more.extend(first);
                self.more.push(event);
            }
        }
    }

    fn into_message(self) -> Option<(Message, usize)> {
        match self.one {
            Some(event) => Some((Message::One(event), 1)),
            None if self.more.is_empty() => None,
            None => {
                let count = self.more.len();
                Some((Message::Many(self.more), count))
            }
        }
    }
}

/// The events of one hand-off: a single decision's needs no `Vec` of its own.
enum Message {
    One(AlertEvent),
    Many(Vec<AlertEvent>),
    Flush(SyncSender<()>),
}

/// What the service and its thread share.
#[derive(Default)]
struct Shared {
    ring: Mutex<VecDeque<Alert>>,
    fired: [AtomicU64; 4],
    sinks: RwLock<Vec<AlertSink>>,
}

/// The running thread and the sending end of its queue.
struct Running {
    sender: SyncSender<Message>,
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
    queued: AtomicU64,
    dropped: AtomicU64,
    /// Records sent and not yet taken by the thread; at most the queue's capacity.
    pending: Arc<AtomicUsize>,
}

impl Alerts {
    /// The service, idle.
    pub(super) fn new(core: &Arc<Core>) -> Alerts {
        Alerts {
            core: Arc::downgrade(core),
            running: OnceLock::new(),
            shared: Arc::default(),
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            pending: Arc::default(),
        }
    }

    /// Starts evaluating `config`'s rules over every decision from now on. Fails when the
    /// service already runs or its thread cannot start.
    pub fn start(&self, config: AlertConfig) -> Result<(), EngineError> {
        if self.running.get().is_some() {
            return Err(EngineError::Validation("alerts are already running".into()));
        }
        let capacity = config.queue.max(1);
        let agent_prefix = format!("{}:", config.agent_type);
        let (sender, receiver) = mpsc::sync_channel(capacity);
        let mut worker = Worker::new(config, self.core.clone(), self.shared.clone());
        let taken = self.pending.clone();
        let thread = std::thread::Builder::new()
            .name("writ-alerts".into())
            .spawn(move || worker.run(&receiver, &taken))
            .map_err(|error| EngineError::Validation(format!("the alerts thread did not start: {error}")))?;
        self.running
            .set(Running { sender, worker: thread, agent_prefix, capacity })
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
            events.push_some(AlertEvent::of(record));
        }
        records.retain(keep);
        self.send(events);
    }

    /// Adds the event of a decision the rules look at to `events` (see [`Alerts::wants`] for
    /// which principals they look at): straight from the decision, with no record built.
    pub(crate) fn push_decision(
        &self,
        events: &mut AlertEvents,
        time_ms: i64,
        store_id: &str,
        decision: (&[String], bool, bool),
        request_id: &str,
        audit: Option<&Context>,
    ) {
        let (principals, audience, allowed) = decision;
        let Some(running) = self.running.get() else { return };
        if audience || !is_agent_call(&running.agent_prefix, principals) || approver_step(audit) {
            return;
        }
        events.push_some(AlertEvent::new(time_ms, allowed, store_id, request_id, principals, audit));
    }

    /// Hands `events` to the alerts thread in one message; never blocks. When they do not all
    /// fit in the queue, none is queued and all are counted as dropped.
    pub(crate) fn send(&self, events: AlertEvents) {
        let Some(running) = self.running.get() else { return };
        let Some((message, count)) = events.into_message() else { return };
        let before = self.pending.fetch_add(count, Ordering::AcqRel);
        if before + count > running.capacity {
            self.pending.fetch_sub(count, Ordering::AcqRel);
            self.dropped.fetch_add(count as u64, Ordering::Relaxed);
            return;
        }
        match running.sender.try_send(message) {
            Ok(()) => {
                self.queued.fetch_add(count as u64, Ordering::Relaxed);
                // The thread sleeps between polls (waking it on every decision would cost a
                // system call on the check path): only a queue half full calls it early.
                if before < running.capacity / 2 && before + count >= running.capacity / 2 {
                    running.worker.thread().unpark();
                }
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.pending.fetch_sub(count, Ordering::AcqRel);
                self.dropped.fetch_add(count as u64, Ordering::Relaxed);
            }
        }
    }

    /// Adds a sink told of every alert fired from now on.
    pub fn subscribe(&self, sink: AlertSink) {
        self.shared.sinks.write().push(sink);
    }

    /// Waits until every decision queued so far is evaluated.
    pub fn flush(&self) {
        let Some(running) = self.running.get() else { return };
        let (done, wait) = mpsc::sync_channel(1);
        running.worker.thread().unpark();
        if running.sender.send(Message::Flush(done)).is_ok() {
            running.worker.thread().unpark();
            let _ = wait.recv();
        }
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
        AlertStats {
            fired: AlertRule::ALL
                .into_iter()
                .map(|rule| (rule, self.shared.fired[rule.index()].load(Ordering::Relaxed)))
                .collect(),
            queued: self.queued.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Alerts {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has evaluated what is left.
        if let Some(Running { sender, worker, .. }) = self.running.take() {
            drop(sender);
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
    !record.audience && is_agent_call(agent_prefix, &record.principals) && !approver_step(record.audit.as_ref())
}

/// True when `audit` names an approver's step on an approval (`approval.step`).
fn approver_step(audit: Option<&Context>) -> bool {
    audit.and_then(|audit| audit.get("approval")).is_some_and(|approval| approval.get("step").is_some())
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
struct LastCall {
    /// Its last event (kept whole: comparing its fields copies nothing).
    event: AlertEvent,
    /// Whether a denial of the call was counted.
    denial_counted: bool,
}

/// What an event says about the call it belongs to.
struct Call<'e> {
    event: &'e AlertEvent,
    agent: &'e str,
}

impl Call<'_> {
    fn alert(&self, rule: AlertRule, message: String) -> Alert {
        Alert {
            seq: 0,
            store_id: self.event.store_id().to_string(),
            rule,
            time_ms: self.event.time_ms,
            agent: self.agent.to_string(),
            principals: self.event.principals().map(str::to_string).collect(),
            tool: self.event.tool().map(str::to_string),
            task: self.event.task().map(str::to_string),
            allowed: self.event.allowed,
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
    last_call: Option<LastCall>,
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
            last_call: None,
        }
    }

    /// Evaluates events until the queue closes, sleeping while it is empty (see
    /// [`FIRST_IDLE_WAIT`]); a flush or a queue half full wakes it early.
    fn run(&mut self, receiver: &Receiver<Message>, pending: &AtomicUsize) {
        let mut idle_wait = FIRST_IDLE_WAIT;
        loop {
            match receiver.try_recv() {
                Ok(Message::One(event)) => {
                    pending.fetch_sub(1, Ordering::AcqRel);
                    self.evaluate(event);
                }
                Ok(Message::Many(events)) => {
                    pending.fetch_sub(events.len(), Ordering::AcqRel);
                    for event in events {
                        self.evaluate(event);
                    }
                }
                Ok(Message::Flush(done)) => {
                    let _ = done.send(());
                }
                Err(TryRecvError::Empty) => {
                    std::thread::park_timeout(idle_wait);
                    idle_wait = (idle_wait * 2).min(LAST_IDLE_WAIT);
                    continue;
                }
                Err(TryRecvError::Disconnected) => return,
            }
            idle_wait = FIRST_IDLE_WAIT;
        }
    }

    /// Runs every rule over one event.
    fn evaluate(&mut self, event: AlertEvent) {
        let prefix = self.agent_prefix.as_str();
        let Some(agent) = event.principals().rev().find(|principal| principal.starts_with(prefix)) else {
            return;
        };
        let last = self.last_call.as_ref().filter(|last| {
            !event.request_id().is_empty()
                && last.event.request_id() == event.request_id()
                && last.event.store_id() == event.store_id()
                && last.event.chain() == event.chain()
        });
        let same_call = last.is_some();
        let denial_counted = last.is_some_and(|last| last.denial_counted);
        let call = Call { event: &event, agent };
        let mut fired = Vec::new();
        if !event.allowed && !denial_counted {
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
        self.last_call = Some(LastCall { denial_counted: denial_counted || !event.allowed, event });
    }

    fn denials_rule(&mut self, call: &Call<'_>) -> Option<Alert> {
        let rule = self.config.denials?;
        let now = call.event.time_ms;
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
    let store = StoreHandle { core: &core, state: core.find(store_id).ok()? };
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
        for rule in AlertRule::ALL {
            assert_eq!(AlertRule::parse(rule.as_str()), Some(rule));
        }
        assert_eq!(AlertRule::parse("denial"), None);
    }

    #[test]
    fn approver_steps_and_audiences_are_not_watched() {
        let mut record = DecisionRecord {
            time_ms: 0,
            store_id: "s".into(),
            model_id: String::new(),
            principals: vec!["user:anne".into(), "agent:bot".into()],
            delegation_relation: None,
            audience: false,
            relation: "can_call".into(),
            object: "tool:x".into(),
            allowed: false,
            denied_by: None,
            revision: 0,
            latency_us: 0,
            request_id: String::new(),
            audit: None,
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
