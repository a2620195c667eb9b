//! Approvals (DESIGN §12): just-in-time elevation with a human in the loop. A call that its
//! checks deny, and whose caller asks for one, raises a pending approval for that exact call;
//! an approver approves it (for a time and a number of uses) or denies it; the same call,
//! retried unchanged while the approval lasts, is allowed, one use at a time.
//!
//! What it owns: the [`Approvals`] service the engine holds ([`Engine::approvals`]): raising,
//! listing, approving and denying approvals, taking one use, and the OBO check that falls back
//! on an approval ([`Approvals::decide_obo`]). Every step goes to the decision log (even in its
//! `deny` mode; not when it is `off`), with the approver's name.
//! **Invariant:** an approval allows only the call it binds ([`ApprovalCall`]: chain, relation,
//! object, server, tool and the SHA-256 of the canonical arguments, all equal); each allowed
//! call takes one use by a compare and swap of the stored record, so no two calls (on any node
//! sharing the datastore) take the same use, and none is allowed at or after `expires_ms`.
//! The canonical arguments are hashed by the caller (the API or the gateway), so this module
//! needs no hash. Must not import `api`; the store is reached only through the engine's backend.
//!
//! [`Engine::approvals`]: super::Engine::approvals

use super::{
    decide_into, AlertEvents, Answer, Core, DecisionLog, DecisionMeta, EngineError, OboCheckRequest, OboDecision,
};
use super::{new_id, StoreHandle};
use crate::record::{ApprovalCall, ApprovalDecision, ApprovalRecord, ApprovalStatus, DecisionRecord};
use crate::store::ApprovalStore;
use serde_json::{json, Value};
use std::sync::Arc;

/// How often a change that lost a race with another change of the same approval is retried
/// before the caller is told "no" (a use not taken, a decision not made).
const RACE_RETRIES: usize = 16;

/// What an approver grants: how long the approval lasts and how many calls it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalGrant {
    /// Milliseconds from the approval until it expires.
    pub ttl_ms: i64,
    /// Calls it allows.
    pub uses: u32,
}

impl Default for ApprovalGrant {
    /// Fifteen minutes, one use (DESIGN §12's example).
    fn default() -> Self {
        ApprovalGrant { ttl_ms: 15 * 60 * 1000, uses: 1 }
    }
}

/// An OBO check's answer when the caller asked for an approval: the approval that allowed the
/// call, or the pending (or otherwise decided) one raised for its deny.
#[derive(Debug, Clone)]
pub struct ApprovedAnswer {
    /// The check's answer, allowed when an approval allowed it.
    pub answer: Answer<OboDecision>,
    /// The approval that allowed it, or the one its deny raised; `None` when the check allowed
    /// on its own.
    pub approval: Option<ApprovalRecord>,
}

/// The approvals service beside the engine.
pub struct Approvals {
    core: Arc<Core>,
}

impl Approvals {
    pub(super) fn new(core: Arc<Core>) -> Approvals {
        Approvals { core }
    }

    fn backend(&self) -> Result<&dyn ApprovalStore, EngineError> {
        self.core.backend.approvals().ok_or_else(|| EngineError::Validation("this datastore keeps no approvals".into()))
    }

    fn now_ms(&self) -> i64 {
        (self.core.clock)()
    }

    /// Where `record` stands now (by the engine's clock).
    pub fn status(&self, record: &ApprovalRecord) -> ApprovalStatus {
        record.status(self.now_ms())
    }

    /// The store's approvals whose status is `status` (any when `None`), oldest first, with
    /// ids after `after`, at most `limit`.
    pub fn list(
        &self,
        store: &StoreHandle<'_>,
        status: Option<ApprovalStatus>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ApprovalRecord>, EngineError> {
        store.state.live()?;
        let now = self.now_ms();
        let all = self.backend()?.approvals(store.id())?;
        Ok(all
            .into_iter()
            .filter(|record| after.is_none_or(|after| record.id.as_str() > after))
            .filter(|record| status.is_none_or(|status| record.status(now) == status))
            .take(limit)
            .collect())
    }

    /// One approval of the store, by id.
    pub fn get(&self, store: &StoreHandle<'_>, id: &str) -> Result<ApprovalRecord, EngineError> {
        store.state.live()?;
        self.backend()?
            .approvals(store.id())?
            .into_iter()
            .find(|record| record.id == id)
            .ok_or_else(|| EngineError::ApprovalNotFound(id.to_string()))
    }

    /// The pending approval of `call`: the one already raised, or a new one.
    pub fn request(&self, store: &StoreHandle<'_>, call: &ApprovalCall) -> Result<ApprovalRecord, EngineError> {
        store.state.live()?;
        let backend = self.backend()?;
        let pending = backend
            .approvals(store.id())?
            .into_iter()
            .find(|record| record.decision == ApprovalDecision::Pending && record.call == *call);
        if let Some(pending) = pending {
            return Ok(pending);
        }
        let record = ApprovalRecord {
            id: new_id(),
            store_id: store.id().to_string(),
            call: call.clone(),
            decision: ApprovalDecision::Pending,
            created_ms: self.now_ms(),
            decided_ms: None,
            decided_by: None,
            expires_ms: None,
            uses_left: 0,
        };
        backend.insert_approval(&record)?;
        Ok(record)
    }

    /// Takes one use of an approved, unexpired approval of exactly `call` with uses left, and
    /// answers it as it is after the use; `None` when there is none.
    pub fn take_use(
        &self,
        store: &StoreHandle<'_>,
        call: &ApprovalCall,
    ) -> Result<Option<ApprovalRecord>, EngineError> {
        store.state.live()?;
        let backend = self.backend()?;
        for _ in 0..RACE_RETRIES {
            let now = self.now_ms();
            let usable = backend
                .approvals(store.id())?
                .into_iter()
                .find(|record| record.call == *call && record.status(now) == ApprovalStatus::Approved);
            let Some(current) = usable else { return Ok(None) };
            let next = ApprovalRecord { uses_left: current.uses_left - 1, ..current.clone() };
            if backend.replace_approval(&current, &next)? {
                return Ok(Some(next));
            }
        }
        Ok(None)
    }

    /// Approves a pending approval for `grant`, as `approver`, and records the step.
    pub fn approve(
        &self,
        log: &DecisionLog,
        store: &StoreHandle<'_>,
        id: &str,
        grant: ApprovalGrant,
        approver: &str,
    ) -> Result<ApprovalRecord, EngineError> {
        if grant.uses == 0 || grant.ttl_ms <= 0 {
            return Err(EngineError::Validation("an approval needs a positive `ttl` and at least one use".into()));
        }
        let decided = self.decide(store, id, |current, now| ApprovalRecord {
            decision: ApprovalDecision::Approved,
            decided_ms: Some(now),
            decided_by: Some(approver.to_string()),
            expires_ms: Some(now.saturating_add(grant.ttl_ms)),
            uses_left: grant.uses,
            ..current.clone()
        })?;
        let audit = json!({"approval": {"id": decided.id, "step": "approve", "approver": approver,
            "ttl_ms": grant.ttl_ms, "uses": grant.uses}});
        log.record_oversight(vec![self.step_record(store, &decided, true, None, audit)]);
        Ok(decided)
    }

    /// Denies a pending approval, as `approver`, and records the step (with `reason`).
    pub fn deny(
        &self,
        log: &DecisionLog,
        store: &StoreHandle<'_>,
        id: &str,
        approver: &str,
        reason: Option<&str>,
    ) -> Result<ApprovalRecord, EngineError> {
        let decided = self.decide(store, id, |current, now| ApprovalRecord {
            decision: ApprovalDecision::Denied,
            decided_ms: Some(now),
            decided_by: Some(approver.to_string()),
            ..current.clone()
        })?;
        let mut audit = json!({"approval": {"id": decided.id, "step": "deny", "approver": approver}});
        if let (Some(reason), Some(step)) = (reason, audit["approval"].as_object_mut()) {
            step.insert("reason".into(), Value::String(reason.to_string()));
        }
        let denied_by = json!({"kind": "approval", "subject": approver,
            "message": format!("approval `{}` was denied by `{approver}`", decided.id)});
        log.record_oversight(vec![self.step_record(store, &decided, false, Some(denied_by), audit)]);
        Ok(decided)
    }

    /// Moves a pending approval to what `next` makes of it, retrying a lost race.
    fn decide(
        &self,
        store: &StoreHandle<'_>,
        id: &str,
        next: impl Fn(&ApprovalRecord, i64) -> ApprovalRecord,
    ) -> Result<ApprovalRecord, EngineError> {
        let backend = self.backend()?;
        for _ in 0..RACE_RETRIES {
            let current = self.get(store, id)?;
            let now = self.now_ms();
            if current.decision != ApprovalDecision::Pending {
                return Err(EngineError::ApprovalDecided { id: id.to_string(), status: current.status(now).as_str() });
            }
            let decided = next(&current, now);
            if backend.replace_approval(&current, &decided)? {
                return Ok(decided);
            }
        }
        Err(EngineError::ApprovalDecided { id: id.to_string(), status: "being decided" })
    }

    /// The decision-log record of an approver's step on `record`.
    fn step_record(
        &self,
        store: &StoreHandle<'_>,
        record: &ApprovalRecord,
        allowed: bool,
        denied_by: Option<Value>,
        audit: Value,
    ) -> DecisionRecord {
        DecisionRecord {
            time_ms: self.now_ms(),
            store_id: store.id().into(),
            model_id: "".into(),
            principals: record.call.principals.clone(),
            delegation_relation: None,
            audience: false,
            relation: record.call.relation.clone(),
            object: record.call.object.clone(),
            allowed,
            denied_by,
            revision: store.revision().unwrap_or_default(),
            latency_us: 0,
            request_id: "".into(),
            audit: audit.as_object().cloned(),
        }
    }

    /// An OBO check that falls back on an approval of its exact call, which `call` builds only
    /// once the check denied (it hashes the request's arguments, which an allowed call needs
    /// not): an approved approval of the call with a use left allows it (taking the use), and
    /// otherwise the call's pending approval is raised (or the one already raised answered).
    /// The decision record names the approval in `audit.approval` (`{id, state, approver?}`,
    /// replacing any the caller sent), and the alerts see a call an approval allowed as allowed.
    pub fn decide_obo(
        &self,
        log: &DecisionLog,
        store: &StoreHandle<'_>,
        request: &OboCheckRequest,
        call: impl FnOnce() -> ApprovalCall,
        meta: &DecisionMeta<'_>,
    ) -> Result<ApprovedAnswer, EngineError> {
        let mut records = Vec::new();
        let mut events = AlertEvents::default();
        let mut answer = decide_into(log, store, request, meta, Some(&mut events), |record| records.push(record))?;
        if answer.value.allowed {
            log.alerts().send(events);
            log.record_seen(records);
            return Ok(ApprovedAnswer { answer, approval: None });
        }
        let call = call();
        if let Some(used) = self.take_use(store, &call)? {
            answer.value = OboDecision { allowed: true, denied_by: None };
            events.allow(0..events.len());
            log.alerts().send(events);
            for record in &mut records {
                record.allowed = true;
                record.denied_by = None;
                Approvals::name_approval(record, &used, ApprovalStatus::Approved);
            }
            log.record_oversight(records);
            return Ok(ApprovedAnswer { answer, approval: Some(used) });
        }
        let raised = self.request(store, &call)?;
        log.alerts().send(events);
        for record in &mut records {
            Approvals::name_approval(record, &raised, self.status(&raised));
        }
        log.record_seen(records);
        Ok(ApprovedAnswer { answer, approval: Some(raised) })
    }

    /// Adds `audit.approval: {id, state, approver?}` to a decision record (replacing any the
    /// caller sent): `state` is `approved` on a call an approval allowed (even the one that
    /// took its last use).
    pub fn name_approval(record: &mut DecisionRecord, approval: &ApprovalRecord, state: ApprovalStatus) {
        let mut named = json!({"id": approval.id, "state": state.as_str()});
        if let (Some(approver), Some(fields)) = (&approval.decided_by, named.as_object_mut()) {
            fields.insert("approver".into(), Value::String(approver.clone()));
        }
        record.audit.get_or_insert_with(Default::default).insert("approval".into(), named);
    }
}
