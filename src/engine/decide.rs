//! One decision pipeline: [`decide`] times a check-like question, answers it, reports its
//! latency and hands its decisions to the decision log; [`Denial`] says what denied a deny.
//!
//! What it owns: the order "time → evaluate → observe latency → record" that check,
//! batch-check, AuthZEN, obo-check, audience-check and filter share, and the one shape of
//! `denied_by` (`{"kind", ...}`), which answers and decision records both carry. A question is
//! anything that implements [`Question`]: it says how to evaluate itself and which decisions its
//! answer holds.
//! **Invariant:** a decision the log's mode does not want builds no record (a check answered
//! with the log off or an allow in `deny` mode allocates nothing here); a record's latency is the
//! one the latency observer saw.
//! Must not import `api`: the HTTP layer calls it, and so will the MCP gateway and the CLI,
//! without axum.

use super::agent::DEFAULT_DELEGATION_RELATION;
use super::alerts::AlertEvents;
use super::{Answer, DecisionLog, DecisionRecord, StoreHandle};
use super::{
    AudienceCheckRequest, AudienceResult, CheckRequest, EngineError, FilterAnswer, FilterRequest, OboCheckRequest,
    OboDecision,
};
use crate::tuple::Context;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which kind of cause denied a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenialKind {
    /// A principal does not hold the relation on the object.
    Principal,
    /// A hop does not hold the delegation relation on the hop before it.
    Delegation,
    /// Some audience members do not hold the relation on the object.
    Audience,
    /// Some of a filter's candidate ids are not visible.
    Filtered,
}

impl DenialKind {
    /// The wire name: `principal`, `delegation`, `audience` or `filtered`.
    pub fn as_str(self) -> &'static str {
        match self {
            DenialKind::Principal => "principal",
            DenialKind::Delegation => "delegation",
            DenialKind::Audience => "audience",
            DenialKind::Filtered => "filtered",
        }
    }
}

/// What denied a decision, as answers and the decision log show it:
/// `{"kind": "principal" | "delegation", "subject", "message"}`,
/// `{"kind": "audience", "subjects", "message"}` or `{"kind": "filtered", "hidden", "of", "message"}`.
/// The field order is the wire order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "server", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Denial {
    /// A principal of the chain (or the one subject) does not hold the relation on the object.
    Principal {
        /// The principal.
        subject: String,
        /// A sentence saying what is missing.
        message: String,
    },
    /// A hop of the chain does not hold the delegation relation on the hop before it.
    Delegation {
        /// The hop that lacks the delegation.
        subject: String,
        /// A sentence saying what is missing.
        message: String,
    },
    /// Audience members who do not hold the relation on the object.
    Audience {
        /// Those members, in audience order.
        subjects: Vec<String>,
        /// A sentence saying how many.
        message: String,
    },
    /// A filter hid some of its candidate ids.
    Filtered {
        /// How many ids are not visible.
        hidden: usize,
        /// How many ids were asked.
        of: usize,
        /// A sentence saying how many.
        message: String,
    },
}

impl Denial {
    /// `principal` does not hold `relation` on `object`: the one wording obo-check, explain and
    /// the gateway give.
    pub fn principal(principal: &str, relation: &str, object: &str) -> Denial {
        Denial::Principal {
            subject: principal.to_string(),
            message: format!("`{principal}` does not hold `{relation}` on `{object}`"),
        }
    }

    /// `delegate` does not hold `delegation` on `delegator`, so it may not act for it.
    pub fn delegation(delegate: &str, delegation: &str, delegator: &str) -> Denial {
        Denial::Delegation {
            subject: delegate.to_string(),
            message: format!("`{delegate}` does not hold `{delegation}` on `{delegator}`: it may not act for it"),
        }
    }

    /// `subjects` of an audience do not hold `relation` on `object`.
    pub fn audience(subjects: Vec<String>, relation: &str, object: &str) -> Denial {
        Denial::Audience {
            message: format!("{} of the audience may not `{relation}` `{object}`", subjects.len()),
            subjects,
        }
    }

    /// Its kind.
    pub fn kind(&self) -> DenialKind {
        match self {
            Denial::Principal { .. } => DenialKind::Principal,
            Denial::Delegation { .. } => DenialKind::Delegation,
            Denial::Audience { .. } => DenialKind::Audience,
            Denial::Filtered { .. } => DenialKind::Filtered,
        }
    }

    /// The one subject a principal or delegation denial names (empty for the others, which
    /// name several or none).
    pub fn subject(&self) -> &str {
        match self {
            Denial::Principal { subject, .. } | Denial::Delegation { subject, .. } => subject,
            Denial::Audience { .. } | Denial::Filtered { .. } => "",
        }
    }

    /// The sentence saying what is missing.
    pub fn message(&self) -> &str {
        match self {
            Denial::Principal { message, .. }
            | Denial::Delegation { message, .. }
            | Denial::Audience { message, .. }
            | Denial::Filtered { message, .. } => message,
        }
    }
}

/// One decision an answer holds, as the decision log sees it (borrowed from the question and
/// its answer, so a decision the log does not want costs nothing).
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    /// One subject, an on-behalf-of chain (human first), or an audience.
    pub principals: &'a [String],
    /// For an on-behalf-of chain, its delegation relation.
    pub delegation_relation: Option<&'a str>,
    /// True when `principals` is an audience, each member checked alone.
    pub audience: bool,
    /// The relation.
    pub relation: &'a str,
    /// The object (`type:` for a filter over a whole candidate list).
    pub object: &'a str,
    /// The answer.
    pub allowed: bool,
    /// For a deny, what denied it, when the question names it.
    pub denied_by: Option<&'a Denial>,
}

/// A check-like question that [`decide`] answers and records.
pub trait Question {
    /// The engine's answer.
    type Output<'q>
    where
        Self: 'q;

    /// Whether its latency belongs in the check-latency histogram: true for questions that
    /// decide one thing; an audience or a filter decides many at once and would skew it.
    const OBSERVED: bool;

    /// The model version it pins; the store's latest when `None`.
    fn model_id(&self) -> Option<&str>;

    /// Answers it over one snapshot of `store`.
    fn evaluate<'q>(&'q self, store: &StoreHandle<'_>) -> Result<Answer<Self::Output<'q>>, EngineError>;

    /// Calls `each` with every decision its answer holds, in order.
    fn decisions<'q>(&'q self, output: &Self::Output<'q>, each: &mut dyn FnMut(Decision<'_>));
}

/// Where [`decide`] reports how long each evaluation took (the HTTP layer's `/metrics`).
pub trait LatencyObserver: Sync {
    /// Counts one evaluation that took `elapsed`.
    fn observe(&self, elapsed: Duration);
}

/// What a caller knows about a decision besides its question.
#[derive(Clone, Copy)]
pub struct DecisionMeta<'a> {
    /// The request's id (`x-request-id`; empty when there is none).
    pub request_id: &'a str,
    /// The caller's `audit` object, recorded as given.
    pub audit: Option<&'a Context>,
    /// When the decision started (its latency runs from here).
    pub started: Instant,
    /// The model a record names when the question pins none (a batch resolves the latest once
    /// for all its checks); `None` leaves it to the log, which fills in the store's latest.
    pub model_id: Option<&'a str>,
    /// Where the latency goes.
    pub latency: &'a dyn LatencyObserver,
    /// The time its records (and alerts) carry, when the caller fixes one for many questions (a
    /// batch-check gives its start, and restamps its records when it hands them over); `None`
    /// reads the store's clock at each record.
    pub time_ms: Option<i64>,
    /// The ids its records carry, when the caller made them once for many questions of one
    /// store, model and request (a batch-check's, from [`DecisionLog::record_ids`]); `None`
    /// makes them at the question's first record.
    pub ids: Option<&'a RecordIds>,
}

/// The ids every record of one request repeats: its store's, its model's and its own, each an
/// `Arc` that the records share instead of a copy each.
#[derive(Debug, Clone)]
pub struct RecordIds {
    /// The store's id.
    pub store_id: Arc<str>,
    /// The model's id.
    pub model_id: Arc<str>,
    /// The request's id (`x-request-id`; empty when there is none).
    pub request_id: Arc<str>,
}

impl std::fmt::Debug for DecisionMeta<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionMeta")
            .field("request_id", &self.request_id)
            .field("audit", &self.audit)
            .field("started", &self.started)
            .field("model_id", &self.model_id)
            .field("time_ms", &self.time_ms)
            .field("ids", &self.ids)
            .finish_non_exhaustive()
    }
}

/// Times, answers (over `store`) and records `question`: its decisions go to `log` in one
/// hand-off. The alerts get each agent decision's event straight from the decision, so an
/// allowed call the log does not keep builds no [`DecisionRecord`].
pub fn decide<'q, Q: Question>(
    log: &DecisionLog,
    store: &StoreHandle<'_>,
    question: &'q Q,
    meta: &DecisionMeta<'_>,
) -> Result<Answer<Q::Output<'q>>, EngineError> {
    let mut records = Vec::new();
    let answer = decide_into(log, store, question, meta, None, |record| records.push(record))?;
    if !records.is_empty() {
        log.record_seen(records);
    }
    Ok(answer)
}

/// [`decide`], handing each record the log's mode wants to `sink` instead of to the log (a
/// batch collects its checks' records and hands them over at once, in the batch's order; the
/// approval and gateway paths edit records first). Each agent decision's event goes to
/// `events` when given (those paths edit it too, then [`Alerts::send`](super::Alerts::send)
/// it), else straight to the alerts; either way no record is built for the alerts alone. The
/// caller hands the records to the log with `record_seen` or `record_oversight`, which do not
/// show them to the alerts again.
pub fn decide_into<'q, Q: Question>(
    log: &DecisionLog,
    store: &StoreHandle<'_>,
    question: &'q Q,
    meta: &DecisionMeta<'_>,
    mut events: Option<&mut AlertEvents>,
    mut sink: impl FnMut(DecisionRecord),
) -> Result<Answer<Q::Output<'q>>, EngineError> {
    let answer = question.evaluate(store);
    // One clock read serves the metric and the records; a failed evaluation is timed too.
    let elapsed = meta.started.elapsed();
    if Q::OBSERVED {
        meta.latency.observe(elapsed);
    }
    let answer = answer?;
    let pinned_model = question.model_id().or(meta.model_id);
    // The ids every record of this question repeats: the caller's (made once for a batch), else
    // made when the first record needs them; the store and model ids come from the log's cache, so
    // records of the same store and model share them across requests too. The latest model is
    // read from the store this handle already holds: left empty, the log would look the store
    // up again by id to fill it in.
    let mut shared: Option<RecordIds> = None;
    let shared_ids = || match pinned_model {
        Some(model_id) => log.record_ids(store.id(), model_id, meta.request_id),
        None => {
            let data = store.state.data.read();
            log.record_ids(store.id(), data.models.last().map_or("", |latest| latest.id.as_str()), meta.request_id)
        }
    };
    let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    let alerts = log.alerts();
    question.decisions(&answer.value, &mut |decision| {
        let kept = log.wants(decision.allowed);
        // The one scan of the chain for an agent: `push_decision` trusts it.
        let watched = !decision.audience && alerts.wants(decision.principals);
        if !kept && !watched {
            return;
        }
        let time_ms = meta.time_ms.unwrap_or_else(|| (store.core.clock)());
        if watched {
            let ids = [store.id(), meta.request_id];
            let fields = (decision.principals, decision.allowed);
            alerts.push_decision(events.as_deref_mut(), time_ms, ids, fields, meta.audit);
        }
        if !kept {
            return;
        }
        let ids = match meta.ids {
            Some(ids) => ids,
            None => &*shared.get_or_insert_with(shared_ids),
        };
        sink(DecisionRecord {
            time_ms,
            store_id: ids.store_id.clone(),
            model_id: ids.model_id.clone(),
            principals: decision.principals.to_vec(),
            delegation_relation: decision.delegation_relation.map(str::to_string),
            audience: decision.audience,
            relation: decision.relation.to_string(),
            object: decision.object.to_string(),
            allowed: decision.allowed,
            // A denial is strings and numbers: turning it into JSON cannot fail.
            denied_by: decision.denied_by.and_then(|denial| serde_json::to_value(denial).ok()),
            revision: answer.revision,
            latency_us,
            request_id: ids.request_id.clone(),
            audit: meta.audit.cloned(),
        });
    });
    Ok(answer)
}

/// An OpenFGA check: its record carries no `denied_by` (a plain check's deny has one cause, its
/// subject, and naming it would cost a sentence per denied check of a batch).
impl Question for CheckRequest {
    type Output<'q> = bool;
    const OBSERVED: bool = true;

    fn model_id(&self) -> Option<&str> {
        self.model_id.as_deref()
    }

    fn evaluate(&self, store: &StoreHandle<'_>) -> Result<Answer<bool>, EngineError> {
        store.check(self)
    }

    fn decisions<'q>(&'q self, allowed: &bool, each: &mut dyn FnMut(Decision<'_>)) {
        each(check_decision(self, *allowed, None));
    }
}

/// The one decision of a check: its user, relation and object.
fn check_decision<'q>(request: &'q CheckRequest, allowed: bool, denied_by: Option<&'q Denial>) -> Decision<'q> {
    Decision {
        principals: std::slice::from_ref(&request.user),
        delegation_relation: None,
        audience: false,
        relation: &request.relation,
        object: &request.object,
        allowed,
        denied_by,
    }
}

/// A check whose deny is recorded with the subject that lacks the relation (a
/// [`Denial::Principal`]), as AuthZEN's evaluation records it.
#[derive(Debug, Clone, Copy)]
pub struct CheckWithCause<'a>(pub &'a CheckRequest);

impl Question for CheckWithCause<'_> {
    type Output<'q>
        = bool
    where
        Self: 'q;
    const OBSERVED: bool = true;

    fn model_id(&self) -> Option<&str> {
        self.0.model_id()
    }

    fn evaluate(&self, store: &StoreHandle<'_>) -> Result<Answer<bool>, EngineError> {
        self.0.evaluate(store)
    }

    fn decisions<'q>(&'q self, allowed: &bool, each: &mut dyn FnMut(Decision<'_>)) {
        let request = self.0;
        let denial = (!allowed).then(|| Denial::principal(&request.user, &request.relation, &request.object));
        each(check_decision(request, *allowed, denial.as_ref()));
    }
}

/// An on-behalf-of check: one decision for the whole chain.
impl Question for OboCheckRequest {
    type Output<'q> = OboDecision;
    const OBSERVED: bool = true;

    fn model_id(&self) -> Option<&str> {
        self.model_id.as_deref()
    }

    fn evaluate(&self, store: &StoreHandle<'_>) -> Result<Answer<OboDecision>, EngineError> {
        store.obo_check(self)
    }

    fn decisions<'q>(&'q self, decision: &OboDecision, each: &mut dyn FnMut(Decision<'_>)) {
        each(Decision {
            principals: &self.principals,
            delegation_relation: (self.principals.len() > 1)
                .then(|| self.delegation_relation.as_deref().unwrap_or(DEFAULT_DELEGATION_RELATION)),
            audience: false,
            relation: &self.relation,
            object: &self.object,
            allowed: decision.allowed,
            denied_by: decision.denied_by.as_ref(),
        });
    }
}

/// An audience check: one decision per object, the audience as principals and the members
/// denied as a [`Denial::Audience`].
impl Question for AudienceCheckRequest {
    type Output<'q> = Vec<AudienceResult>;
    const OBSERVED: bool = false;

    fn model_id(&self) -> Option<&str> {
        self.model_id.as_deref()
    }

    fn evaluate(&self, store: &StoreHandle<'_>) -> Result<Answer<Vec<AudienceResult>>, EngineError> {
        store.audience_check(self)
    }

    fn decisions<'q>(&'q self, results: &Vec<AudienceResult>, each: &mut dyn FnMut(Decision<'_>)) {
        for result in results {
            let denial =
                (!result.allowed).then(|| Denial::audience(result.denied_for.clone(), &self.relation, &result.object));
            each(Decision {
                principals: &self.audience,
                delegation_relation: None,
                audience: true,
                relation: &self.relation,
                object: &result.object,
                allowed: result.allowed,
                denied_by: denial.as_ref(),
            });
        }
    }
}

/// A visibility filter: one decision per call, on object `type:` (all candidates), allowed only
/// when every candidate is visible; a deny names the failing delegation link, or else how many
/// ids are hidden ([`Denial::Filtered`]).
impl Question for FilterRequest {
    type Output<'q> = FilterAnswer<'q>;
    const OBSERVED: bool = false;

    fn model_id(&self) -> Option<&str> {
        self.model_id.as_deref()
    }

    fn evaluate<'q>(&'q self, store: &StoreHandle<'_>) -> Result<Answer<FilterAnswer<'q>>, EngineError> {
        store.filter(self)
    }

    fn decisions<'q>(&'q self, answer: &FilterAnswer<'q>, each: &mut dyn FnMut(Decision<'_>)) {
        let hidden = self.ids.len() - answer.allowed_ids.len();
        let filtered = (answer.denied_by.is_none() && hidden > 0).then(|| Denial::Filtered {
            hidden,
            of: self.ids.len(),
            message: format!("{hidden} of {} `{}` ids are not visible", self.ids.len(), self.object_type),
        });
        let denied_by = answer.denied_by.as_ref().or(filtered.as_ref());
        each(Decision {
            principals: &self.principals,
            delegation_relation: (self.principals.len() > 1)
                .then(|| self.delegation_relation.as_deref().unwrap_or(DEFAULT_DELEGATION_RELATION)),
            audience: false,
            relation: &self.relation,
            object: &format!("{}:", self.object_type),
            allowed: denied_by.is_none(),
            denied_by,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_serialize_in_the_wire_shape_kind_first() {
        let cases = [
            (
                Denial::Principal { subject: "user:bob".into(), message: "m".into() },
                r#"{"kind":"principal","subject":"user:bob","message":"m"}"#,
            ),
            (
                Denial::Delegation { subject: "agent:x".into(), message: "m".into() },
                r#"{"kind":"delegation","subject":"agent:x","message":"m"}"#,
            ),
            (
                Denial::Audience { subjects: vec!["user:b".into()], message: "m".into() },
                r#"{"kind":"audience","subjects":["user:b"],"message":"m"}"#,
            ),
            (
                Denial::Filtered { hidden: 2, of: 3, message: "m".into() },
                r#"{"kind":"filtered","hidden":2,"of":3,"message":"m"}"#,
            ),
        ];
        for (denial, wire) in cases {
            assert_eq!(serde_json::to_string(&denial).ok().as_deref(), Some(wire));
            assert!(wire.contains(denial.kind().as_str()), "{wire}");
        }
    }
}
