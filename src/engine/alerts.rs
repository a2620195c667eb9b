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
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock, Weak};
use std::thread::JoinHandle;

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

enum Message {
    Records(Vec<DecisionRecord>),
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

    /// Hands the records the rules look at to the alerts thread; never blocks. When they do
    /// not all fit in the queue, none is queued and all are counted as dropped.
    pub fn observe(&self, records: &[DecisionRecord]) {
        let Some(running) = self.running.get() else { return };
        let wanted: Vec<DecisionRecord> =
            records.iter().filter(|record| watched(&running.agent_prefix, record)).cloned().collect();
        let count = wanted.len();
        if count == 0 {
            return;
        }
        if self.pending.fetch_add(count, Ordering::AcqRel) + count > running.capacity {
            self.pending.fetch_sub(count, Ordering::AcqRel);
            self.dropped.fetch_add(count as u64, Ordering::Relaxed);
            return;
        }
        match running.sender.try_send(Message::Records(wanted)) {
            Ok(()) => {
                self.queued.fetch_add(count as u64, Ordering::Relaxed);
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
        if running.sender.send(Message::Flush(done)).is_ok() {
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
    let approver_step = || {
        record
            .audit
            .as_ref()
            .and_then(|audit| audit.get("approval"))
            .is_some_and(|approval| approval.get("step").is_some())
    };
    !record.audience && is_agent_call(agent_prefix, &record.principals) && !approver_step()
}

/// Most (store, agent, tool) triples remembered for `first_tool_call`; past it the oldest are
/// forgotten (and alert again when next called).
const MAX_SEEN_TOOLS: usize = 100_000;

/// Most agents whose recent denials are kept; past it, those with none in the window go.
const MAX_DENYING_AGENTS: usize = 10_000;

/// Most tasks whose declared tools are cached.
const MAX_CACHED_TASKS: usize = 1024;

/// The denials of one agent within the window, and when the rule last fired for it.
#[derive(Default)]
struct RecentDenials {
    times: VecDeque<i64>,
    fired_at: Option<i64>,
}

/// One call: records of the same request with the same chain in the same store (a gateway call
/// checks each of its tool's entries, and is one call).
#[derive(PartialEq, Eq)]
struct CallKey {
    store_id: String,
    request_id: String,
    principals: Vec<String>,
}

/// What a record says about the call it belongs to.
struct Call<'r> {
    record: &'r DecisionRecord,
    agent: &'r str,
    tool: Option<&'r str>,
    task: Option<&'r str>,
}

impl Call<'_> {
    fn alert(&self, rule: AlertRule, message: String) -> Alert {
        Alert {
            seq: 0,
            store_id: self.record.store_id.clone(),
            rule,
            time_ms: self.record.time_ms,
            agent: self.agent.to_string(),
            principals: self.record.principals.clone(),
            tool: self.tool.map(str::to_string),
            task: self.task.map(str::to_string),
            allowed: self.record.allowed,
            message,
            request_id: self.record.request_id.clone(),
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
    denials: HashMap<(String, String), RecentDenials>,
    seen_tools: HashSet<(String, String, String)>,
    seen_order: VecDeque<(String, String, String)>,
    /// (store, task object) → (revision, declared tool objects).
    task_tools: HashMap<(String, String), (u64, Vec<String>)>,
    /// The call of the last record, and whether a denial of it was counted.
    last_call: Option<(CallKey, bool)>,
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
            seen_tools: HashSet::new(),
            seen_order: VecDeque::new(),
            task_tools: HashMap::new(),
            last_call: None,
        }
    }

    fn run(&mut self, receiver: &Receiver<Message>, pending: &AtomicUsize) {
        while let Ok(message) = receiver.recv() {
            match message {
                Message::Records(records) => {
                    pending.fetch_sub(records.len(), Ordering::AcqRel);
                    for record in &records {
                        self.evaluate(record);
                    }
                }
                Message::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Runs every rule over one record.
    fn evaluate(&mut self, record: &DecisionRecord) {
        let prefix = self.agent_prefix.as_str();
        let Some(agent) = record.principals.iter().rev().find(|principal| principal.starts_with(prefix)) else {
            return;
        };
        let text = |key: &str| record.audit.as_ref().and_then(|audit| audit.get(key)).and_then(|value| value.as_str());
        let call = Call { record, agent, tool: text("tool"), task: text("task") };
        let key = CallKey {
            store_id: record.store_id.clone(),
            request_id: record.request_id.clone(),
            principals: record.principals.clone(),
        };
        let same_call = !record.request_id.is_empty() && self.last_call.as_ref().is_some_and(|(last, _)| *last == key);
        let denial_counted = same_call && self.last_call.as_ref().is_some_and(|(_, counted)| *counted);
        let mut fired = Vec::new();
        if !record.allowed && !denial_counted {
            fired.extend(self.denials_rule(&call));
        }
        if !same_call {
            fired.extend(self.long_chain_rule(&call));
            fired.extend(self.first_tool_call_rule(&call));
            fired.extend(self.outside_task_rule(&call, text("server")));
        }
        self.last_call = Some((key, denial_counted || !record.allowed));
        for alert in fired {
            self.fire(alert);
        }
    }

    fn denials_rule(&mut self, call: &Call<'_>) -> Option<Alert> {
        let rule = self.config.denials?;
        let now = call.record.time_ms;
        let window_start = now.saturating_sub(rule.window_ms);
        if self.denials.len() >= MAX_DENYING_AGENTS {
            self.denials.retain(|_, recent| recent.times.back().is_some_and(|&last| last > window_start));
        }
        let recent = self.denials.entry((call.record.store_id.clone(), call.agent.to_string())).or_default();
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
        let length = call.record.principals.len();
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
        let tool = call.tool?;
        let seen = (call.record.store_id.clone(), call.agent.to_string(), tool.to_string());
        if self.seen_tools.contains(&seen) {
            return None;
        }
        if self.seen_order.len() >= MAX_SEEN_TOOLS {
            if let Some(oldest) = self.seen_order.pop_front() {
                self.seen_tools.remove(&oldest);
            }
        }
        self.seen_order.push_back(seen.clone());
        self.seen_tools.insert(seen);
        let message = format!("agent `{}` called tool `{tool}` for the first time", call.agent);
        Some(call.alert(AlertRule::FirstToolCall, message))
    }

    /// A call naming a task and a tool, when the task declares tools and this tool is not one
    /// (`tool:{tool}` or, for a gateway call, `tool:{server}.{tool}`; `tool:*` declares all).
    fn outside_task_rule(&mut self, call: &Call<'_>, server: Option<&str>) -> Option<Alert> {
        let rule = self.config.outside_task.clone()?;
        let (tool, task) = (call.tool?, call.task?);
        let task_object = if task.contains(':') { task.to_string() } else { format!("{}:{task}", rule.task_type) };
        let declared = self.declared_tools(&call.record.store_id, &task_object, &rule)?;
        if declared.is_empty() {
            return None;
        }
        let mut candidates = vec![format!("{}:{tool}", rule.tool_type), format!("{}:*", rule.tool_type)];
        if let Some(server) = server {
            candidates.push(format!("{}:{server}.{tool}", rule.tool_type));
        }
        if declared.iter().any(|object| candidates.contains(object)) {
            return None;
        }
        let message =
            format!("agent `{}` called tool `{tool}`, which task `{task_object}` does not declare", call.agent);
        Some(call.alert(AlertRule::OutsideTask, message))
    }

    /// The tool objects a task declares, at the store's latest revision (cached per revision);
    /// `None` when the store is gone or its model has no such task relation.
    fn declared_tools(&mut self, store_id: &str, task_object: &str, rule: &TaskRule) -> Option<Vec<String>> {
        let core = self.core.upgrade()?;
        let store = StoreHandle { core: &core, state: core.find(store_id).ok()? };
        let revision = store.revision().ok()?;
        let key = (store_id.to_string(), task_object.to_string());
        if let Some((cached_at, tools)) = self.task_tools.get(&key) {
            if *cached_at == revision {
                return Some(tools.clone());
            }
        }
        let request = ListUsersRequest {
            object: task_object.to_string(),
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
        if self.task_tools.len() >= MAX_CACHED_TASKS {
            self.task_tools.clear();
        }
        self.task_tools.insert(key, (revision, tools.clone()));
        Some(tools)
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
