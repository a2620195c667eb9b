//! Records the store keeps and the engine and API speak: the changelog's [`ChangeRecord`] (at a
//! [`ChangeCursor`], a [`ChangeOperation`] on a [`StoredTuple`]) and the decision log's
//! [`DecisionRecord`] (at a [`DecisionCursor`], queried with a [`DecisionFilter`]), and the
//! [`ApprovalRecord`] of an approval (DESIGN §12).
//!
//! They sit beside `tuple`, below `store` and `engine`, so every layer names them from their
//! home and none needs an exception to the layering rule. Plain data with no behaviour beyond
//! [`DecisionFilter::matches`]; the byte layouts that persist them belong to `store`.
//! Depends on nothing in the crate but `crate::tuple`.

use crate::tuple::{Context, ContextValue, StoredTuple};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a changelog entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeOperation {
    /// The tuple was written.
    Write,
    /// The tuple was deleted.
    Delete,
}

/// Position of a changelog entry: the revision of its write and its index within that write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChangeCursor {
    /// The store revision the write produced.
    pub revision: u64,
    /// The entry's index within the write (deletes first, then writes).
    pub seq: u32,
}

/// One changelog entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRecord {
    /// Where the entry sits in the changelog.
    pub cursor: ChangeCursor,
    /// Write or delete.
    pub operation: ChangeOperation,
    /// The tuple as given in the write request.
    pub tuple: StoredTuple,
    /// The write's timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Who made the write: the key's configured name or a short id derived from it (never the
    /// key); `None` without authentication, and for entries written before Writ recorded it.
    pub actor: Option<String>,
}

/// One recorded check-like decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// When the decision was made, milliseconds since the Unix epoch (the engine's clock).
    pub time_ms: i64,
    /// The store asked (shared by the records of a store, not copied into each).
    pub store_id: Arc<str>,
    /// The model version that answered (shared like `store_id`).
    pub model_id: Arc<str>,
    /// Who asked: one subject, an on-behalf-of chain (human first), or an audience (see
    /// [`DecisionRecord::audience`]).
    pub principals: Vec<String>,
    /// For an on-behalf-of chain, the relation each hop was checked to hold on the hop before it,
    /// so the decision can be explained again as it was made. `None` for a single subject, an
    /// audience, and records written before Writ kept it (read as the default, `delegate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation_relation: Option<String>,
    /// True when the principals are an audience: each was checked alone, and the decision allows
    /// only if every one holds the relation (not a chain).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub audience: bool,
    /// The relation checked.
    pub relation: String,
    /// The object checked, `type:id`.
    pub object: String,
    /// The decision.
    pub allowed: bool,
    /// For a deny, what denied it (the endpoint's own JSON, e.g. `{"kind","subject","message"}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<ContextValue>,
    /// The store revision the answer reflects.
    pub revision: u64,
    /// How long the decision took, in microseconds.
    pub latency_us: u64,
    /// The HTTP request id (`x-request-id`), shared by the records of one request (a batch's).
    pub request_id: Arc<str>,
    /// The caller's own context (tool name, task id, ...), as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<Context>,
}

impl DecisionRecord {
    /// True when `agent` acts in this record's on-behalf-of chain: a principal after the first.
    /// An audience's principals are peers, none acting for another, so it names no agent.
    pub fn acts_as_agent(&self, agent: &str) -> bool {
        !self.audience && self.principals.iter().skip(1).any(|principal| principal == agent)
    }

    /// The called tool the record's `audit` names (`audit.tool`, a string), if any.
    pub fn tool(&self) -> Option<&str> {
        self.audit.as_ref()?.get("tool")?.as_str()
    }
}

#[cfg(test)]
impl DecisionRecord {
    /// The record unit tests start from: a denied check of `user:anne` `viewer` on `object` in
    /// store `s` (model `m`) at `time_ms`, with no request id, audit or cause.
    pub(crate) fn sample(time_ms: i64, object: &str) -> DecisionRecord {
        DecisionRecord {
            time_ms,
            store_id: "s".into(),
            model_id: "m".into(),
            principals: vec!["user:anne".into()],
            delegation_relation: None,
            audience: false,
            relation: "viewer".into(),
            object: object.into(),
            allowed: false,
            denied_by: None,
            revision: 0,
            latency_us: 0,
            request_id: "".into(),
            audit: None,
        }
    }
}

/// Where a record sits in a store's decision log: by time, then by a sequence number the store
/// assigns on append (unique within the store, also across restarts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DecisionCursor {
    /// The record's time, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The store-assigned sequence number.
    pub seq: u64,
}

/// Which records a query wants. Results come newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionFilter {
    /// Only records whose principals include this one.
    pub principal: Option<String>,
    /// Only records of an on-behalf-of chain that names this one as an agent: a principal after
    /// the first (the human), in a record that is a chain, not an audience.
    pub agent: Option<String>,
    /// Only records whose `audit.tool` is this string: the key the MCP gateway and the Python
    /// middleware write for a called tool, and that obo-check callers may set.
    pub tool: Option<String>,
    /// Only records about this object.
    pub object: Option<String>,
    /// Only allows (`Some(true)`) or only denies (`Some(false)`).
    pub allowed: Option<bool>,
    /// Only records at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only records strictly before this time (ms).
    pub until_ms: Option<i64>,
    /// Only records strictly older than this cursor (the previous page's last one).
    pub before: Option<DecisionCursor>,
    /// At most this many records.
    pub limit: usize,
}

impl DecisionFilter {
    /// True when `record` at `cursor` passes every condition but the limit.
    pub fn matches(&self, cursor: DecisionCursor, record: &DecisionRecord) -> bool {
        self.principal.as_ref().is_none_or(|p| record.principals.iter().any(|q| q == p))
            && self.agent.as_ref().is_none_or(|a| record.acts_as_agent(a))
            && self.tool.as_ref().is_none_or(|t| record.tool() == Some(t.as_str()))
            && self.object.as_ref().is_none_or(|o| &record.object == o)
            && self.allowed.is_none_or(|a| record.allowed == a)
            && self.since_ms.is_none_or(|t| cursor.time_ms >= t)
            && self.until_ms.is_none_or(|t| cursor.time_ms < t)
            && self.before.is_none_or(|b| cursor < b)
    }
}

/// What an approver decided about an approval, as stored. Whether an approved one still
/// allows (not expired, uses left) depends on the time, so it is read with
/// [`ApprovalRecord::status`], never stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// Waiting for an approver.
    Pending,
    /// Approved, until `expires_ms` and for `uses_left` more calls.
    Approved,
    /// Denied.
    Denied,
}

/// Where an approval stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalStatus {
    /// Waiting for an approver.
    Pending,
    /// Approved, unexpired, with uses left: the call it binds is allowed.
    Approved,
    /// Denied by an approver.
    Denied,
    /// Approved, but its time ran out.
    Expired,
    /// Approved, and every use taken.
    UsedUp,
}

impl ApprovalStatus {
    /// The wire name: `pending`, `approved`, `denied`, `expired` or `used_up`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::UsedUp => "used_up",
        }
    }

    /// The status a wire name names.
    pub fn parse(text: &str) -> Option<ApprovalStatus> {
        [
            ApprovalStatus::Pending,
            ApprovalStatus::Approved,
            ApprovalStatus::Denied,
            ApprovalStatus::Expired,
            ApprovalStatus::UsedUp,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// The exact call an approval binds: the chain (human first), the relation and object checked
/// (for the gateway, the tool entry's), the gateway's server and tool when it came from one, and
/// the SHA-256 (hex) of the call's canonical arguments. Two calls are the same call when every
/// field is equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalCall {
    /// The chain, human first.
    pub principals: Vec<String>,
    /// The relation checked.
    pub relation: String,
    /// The object checked, `type:id`.
    pub object: String,
    /// The gateway server, for a gateway call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The gateway tool, for a gateway call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// SHA-256, lowercase hex, of the call's canonical arguments.
    pub arguments_sha256: String,
}

/// One approval: a call that was denied, and what an approver made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// Its id, a ULID (so ids sort by creation).
    pub id: String,
    /// The store it belongs to.
    pub store_id: String,
    /// The call it binds.
    pub call: ApprovalCall,
    /// Pending, approved or denied.
    pub decision: ApprovalDecision,
    /// When the call was first denied, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// When an approver decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_ms: Option<i64>,
    /// Who decided: the approver key's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// For an approval, when it stops allowing (exclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    /// For an approval, how many more calls it allows.
    #[serde(default)]
    pub uses_left: u32,
}

impl ApprovalRecord {
    /// Where it stands at `now_ms`.
    pub fn status(&self, now_ms: i64) -> ApprovalStatus {
        match self.decision {
            ApprovalDecision::Pending => ApprovalStatus::Pending,
            ApprovalDecision::Denied => ApprovalStatus::Denied,
            ApprovalDecision::Approved if self.uses_left == 0 => ApprovalStatus::UsedUp,
            ApprovalDecision::Approved if self.expires_ms.is_none_or(|expires| now_ms >= expires) => {
                ApprovalStatus::Expired
            }
            ApprovalDecision::Approved => ApprovalStatus::Approved,
        }
    }
}
