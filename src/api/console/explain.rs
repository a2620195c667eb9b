//! The console's **Explain** page (DESIGN §9, §10): a check form (**Subject**, **Relation**,
//! **Object**, optional **Agent chain**) with **Check** and **Explain**. **Check** answers and
//! records the decision as `POST check` (or `writ/obo-check` for a chain) does; **Explain** shows
//! the engine's tree as nested `<details>` nodes with their reasons, a **Revoke** beside each
//! tuple of an allow's path and a **Grant** beside each `would_allow` tuple of a deny, both
//! posting (with the CSRF token) to the Tuples page's own add and delete, behind a confirmation.
//!
//! Invariants: the page calls the engine directly, never the HTTP API; what it shows as allowed
//! is what `check` answers; the change controls appear only for keys that may write tuples, and
//! the server checks that again when a form comes in.
//! Must not import `store`, `index` or `eval`.

use super::view::{self, Chrome};
use super::{blocking, can_write, chrome, encode, query_string, ConsoleState, Refusal, StoreVisit};
use crate::api::decisions::decision_meta;
use crate::api::time::format_rfc3339;
use crate::engine::{decide, CheckRequest, ExplainNode, Explanation, OboCheckRequest, Reason};
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;
use std::time::Instant;

/// The form's fields, as the URL carries them (a Decisions row's **Explain** fills them in).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct ExplainQuery {
    subject: String,
    relation: String,
    object: String,
    /// The agents acting for the subject, in order, separated by commas or spaces.
    chain: String,
    /// The chain's delegation relation, when a recorded decision named one.
    delegation: String,
    /// `check` or `explain`: which button was pressed; nothing runs without it.
    run: String,
}

impl ExplainQuery {
    /// The whole chain, the subject first.
    fn principals(&self) -> Vec<String> {
        std::iter::once(self.subject.trim())
            .chain(self.chain.split([',', ' ']).map(str::trim))
            .filter(|principal| !principal.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// The query string that shows this page again with the same question, explained.
    fn explain_again(&self) -> String {
        query_string(&[
            ("subject", self.subject.trim()),
            ("relation", self.relation.trim()),
            ("object", self.object.trim()),
            ("chain", self.chain.trim()),
            ("delegation", self.delegation.trim()),
            ("run", "explain"),
        ])
    }
}

/// One node of the tree, as the page shows it.
pub(super) struct NodeView {
    /// What the node is about: its rewrite, object, relation, subject or tuple.
    head: String,
    /// `allowed`, `denied`, ...
    result: &'static str,
    /// Why a leaf denied, in words after the wire name.
    reason: Option<String>,
    /// True when children were left out for the node bound.
    cut: bool,
    children: Vec<NodeView>,
}

/// One tuple with the text a **Grant** or **Revoke** form sends.
pub(super) struct TupleView {
    object: String,
    relation: String,
    subject: String,
    /// `object#relation@subject`.
    key: String,
    /// Came with the request, so there is nothing stored to revoke.
    contextual: bool,
}

/// What running the form gave.
pub(super) enum Outcome {
    /// Nothing was asked yet.
    Nothing,
    /// **Check**: the answer and the revision it was read at.
    Checked { allowed: bool, revision: u64 },
    /// **Explain**: the tree and its tuples.
    Explained {
        allowed: bool,
        revision: u64,
        tree: NodeView,
        path: Vec<TupleView>,
        would_allow: Vec<TupleView>,
        cut: bool,
        denied_by: Option<String>,
    },
}

fn reason_text(reason: &Reason) -> String {
    let detail = match reason {
        Reason::NoTuple => "no tuple grants it here".to_string(),
        Reason::Excluded { by } => format!("excluded by `{by}`"),
        Reason::ConditionFalse { condition, parameters } => {
            format!("condition `{condition}` is false (it read {})", parameters.join(", "))
        }
        Reason::MissingContext { condition, missing } => {
            format!("condition `{condition}` lacks context: {}", missing.join(", "))
        }
        Reason::ConditionError { condition, message } => format!("condition `{condition}` failed: {message}"),
        Reason::Expired { at_ms } => format!("the tuple expired at {}", format_rfc3339(*at_ms)),
        Reason::TypeNotAllowed => "the model does not admit this subject here".to_string(),
        Reason::DelegationMissing => "the agent may not act for the one before it".to_string(),
    };
    format!("{}: {detail}", reason.as_str())
}

fn node_view(node: &ExplainNode) -> NodeView {
    let mut head = Vec::new();
    head.extend(node.rewrite.map(str::to_string));
    match (&node.object, &node.relation) {
        (Some(object), Some(relation)) => head.push(format!("{object}#{relation}")),
        (Some(object), None) => head.push(object.clone()),
        (None, Some(relation)) => head.push(relation.clone()),
        (None, None) => {}
    }
    if let Some(subject) = &node.subject {
        head.push(format!("for {subject}"));
    }
    match (&node.tupleset, &node.computed) {
        (Some(tupleset), Some(computed)) => head.push(format!("{computed} from {tupleset}")),
        (None, Some(computed)) => head.push(format!("→ {computed}")),
        (Some(tupleset), None) => head.push(format!("from {tupleset}")),
        (None, None) => {}
    }
    if let Some(tuple) = &node.tuple {
        head.push(format!("tuple {tuple}"));
    }
    NodeView {
        head: head.join(" "),
        result: node.result.as_str(),
        reason: node.reason.as_ref().map(reason_text),
        cut: node.cut,
        children: node.children.iter().map(node_view).collect(),
    }
}

fn tuple_view(tuple: &crate::tuple::Tuple, contextual: bool) -> TupleView {
    TupleView {
        object: tuple.object.to_string(),
        relation: tuple.relation.clone(),
        subject: tuple.subject.to_string(),
        key: format!("{}#{}@{}", tuple.object, tuple.relation, tuple.subject),
        contextual,
    }
}

fn explained(explanation: &Explanation, revision: u64) -> Outcome {
    Outcome::Explained {
        allowed: explanation.allowed,
        revision,
        tree: node_view(&explanation.tree),
        path: explanation.path.iter().map(|entry| tuple_view(&entry.tuple, entry.contextual)).collect(),
        would_allow: explanation.would_allow.iter().map(|tuple| tuple_view(tuple, false)).collect(),
        cut: explanation.cut,
        denied_by: explanation.denied_by.as_ref().map(|denial| denial.message().to_string()),
    }
}

/// Runs what the form asks: a recorded check, or an explanation (never recorded, as the API's).
async fn run(console: &ConsoleState, store_id: &str, query: &ExplainQuery) -> Result<Outcome, Refusal> {
    let run = query.run.trim();
    if run.is_empty() {
        return Ok(Outcome::Nothing);
    }
    if !matches!(run, "check" | "explain") {
        return Err(Refusal::bad_request(format!("`run` value `{run}` is not `check` or `explain`")));
    }
    let mut principals = query.principals();
    let (relation, object) = (query.relation.trim().to_string(), query.object.trim().to_string());
    if principals.is_empty() || relation.is_empty() || object.is_empty() {
        return Err(Refusal::bad_request("a check needs a Subject, a Relation and an Object".to_string()));
    }
    let delegation = Some(query.delegation.trim().to_string()).filter(|name| !name.is_empty());
    let (state, id, explain) = (console.app.clone(), store_id.to_string(), run == "explain");
    blocking(move || {
        let engine = &state.engine;
        let store = engine.store(&id)?;
        let started = Instant::now();
        let meta = decision_meta(&state, "", started, None);
        if principals.len() == 1 {
            let request = CheckRequest { user: principals.remove(0), relation, object, ..CheckRequest::default() };
            if explain {
                let answer = store.explain(&request)?;
                return Ok(explained(&answer.value, answer.revision));
            }
            let answer = decide(engine.decision_log(), &store, &request, &meta)?;
            return Ok(Outcome::Checked { allowed: answer.value, revision: answer.revision });
        }
        let request = OboCheckRequest {
            principals,
            relation,
            object,
            delegation_relation: delegation,
            ..OboCheckRequest::default()
        };
        if explain {
            let answer = store.explain_obo(&request)?;
            return Ok(explained(&answer.value, answer.revision));
        }
        let answer = decide(engine.decision_log(), &store, &request, &meta)?;
        Ok(Outcome::Checked { allowed: answer.value.allowed, revision: answer.revision })
    })
    .await
    .map_err(Refusal::from)
}

pub(super) async fn explain_page(
    StoreVisit { console, store_id, visit }: StoreVisit,
    Query(query): Query<ExplainQuery>,
) -> Result<Response, Refusal> {
    let outcome = run(&console, &store_id, &query).await?;
    let page = ExplainPage {
        store: encode(&store_id),
        back: format!("/console/stores/{}/explain?{}", encode(&store_id), query.explain_again()),
        query,
        outcome,
        can_write: can_write(&visit, &store_id),
    };
    Ok(render(&chrome(&console, &visit, Some(&store_id)), &page).into_response())
}

/// Everything the Explain page shows.
pub(super) struct ExplainPage {
    store: String,
    query: ExplainQuery,
    outcome: Outcome,
    /// Where a **Grant** or **Revoke** comes back to: this question, explained again.
    back: String,
    can_write: bool,
}

fn node(node: &NodeView) -> Markup {
    html! {
        details open {
            summary {
                span class=(node.result) { (node.result) } " " (node.head)
                @if let Some(reason) = &node.reason { " — " span.reason { (reason) } }
                @if node.cut { " (cut: more nodes than the explain bound)" }
            }
            @for child in &node.children { (self::node(child)) }
        }
    }
}

/// A **Grant** (`add`) or **Revoke** (`delete`) form for `tuple`, behind a confirmation.
fn tuple_control(chrome: &Chrome, page: &ExplainPage, tuple: &TupleView, grant: bool) -> Markup {
    let base = format!("/console/stores/{}/tuples", page.store);
    let (action, name, question) = if grant {
        (format!("{base}/add"), "Grant", format!("Grant {}? This writes the tuple.", tuple.key))
    } else {
        (format!("{base}/delete"), "Revoke", format!("Revoke {}? This deletes the tuple.", tuple.key))
    };
    html! {
        form.inline method="post" action=(action) data-confirm=(question) {
            input type="hidden" name="csrf" value=(chrome.csrf);
            input type="hidden" name="back" value=(page.back);
            @if grant {
                input type="hidden" name="subject" value=(tuple.subject);
                input type="hidden" name="relation" value=(tuple.relation);
                input type="hidden" name="object" value=(tuple.object);
            } @else {
                input type="hidden" name="tuple" value=(tuple.key);
            }
            button type="submit" aria-label={ (name) " " (tuple.key) } { (name) }
        }
    }
}

fn tuple_table(chrome: &Chrome, page: &ExplainPage, tuples: &[TupleView], grant: bool) -> Markup {
    html! {
        table.ids {
            thead { tr { th { "Object" } th.short { "Relation" } th { "Subject" } @if page.can_write { th.narrow { "Actions" } } } }
            tbody {
                @for tuple in tuples {
                    tr {
                        td.id { (tuple.object) } td { (tuple.relation) } td.id { (tuple.subject) }
                        @if page.can_write {
                            td {
                                @if tuple.contextual { "contextual" } @else { (tuple_control(chrome, page, tuple, grant)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn render(chrome: &Chrome, page: &ExplainPage) -> Markup {
    let query = &page.query;
    view::layout(
        "Explain",
        chrome,
        html! {
            form.fields method="get" action={ "/console/stores/" (page.store) "/explain" } aria-label="Check" {
                label { "Subject" input name="subject" value=(query.subject) required placeholder="user:anne"; }
                label { "Relation" input name="relation" value=(query.relation) required placeholder="viewer"; }
                label { "Object" input name="object" value=(query.object) required placeholder="document:1"; }
                label { "Agent chain" input name="chain" value=(query.chain) placeholder="agent:planner, agent:researcher"; }
                @if !query.delegation.trim().is_empty() {
                    input type="hidden" name="delegation" value=(query.delegation);
                }
                button type="submit" name="run" value="check" { "Check" }
                button type="submit" name="run" value="explain" { "Explain" }
            }
            p { "With an agent chain, the subject is the human and each agent acts for the one before it (an on-behalf-of check)." }
            @match &page.outcome {
                Outcome::Nothing => {}
                Outcome::Checked { allowed, revision } => {
                    p role="status" {
                        @if *allowed { strong.allow { "Allowed" } } @else { strong.deny { "Denied" } }
                        " at revision " (revision) "; the decision is recorded on the Decisions page."
                    }
                }
                Outcome::Explained { allowed, revision, tree, path, would_allow, cut, denied_by } => {
                    p role="status" {
                        @if *allowed { strong.allow { "Allowed" } } @else { strong.deny { "Denied" } }
                        " at revision " (revision) "."
                        @if let Some(denied_by) = denied_by { " " (denied_by) "." }
                        @if *cut { " Some subtrees were cut at the explain bound." }
                    }
                    h2 { "Why" }
                    div.tree { (node(tree)) }
                    @if *allowed {
                        h2 { "Granted by" }
                        @if path.is_empty() { p { "No stored tuple: the grant comes from the model alone." } }
                        @else { (tuple_table(chrome, page, path, false)) }
                    } @else {
                        h2 { "Would allow" }
                        @if would_allow.is_empty() { p { "No single tuple would allow it (an exclusion may block every route)." } }
                        @else {
                            p { "Any one of these tuples, written alone, would make the check allow." }
                            (tuple_table(chrome, page, would_allow, true))
                        }
                    }
                }
            }
        },
    )
}
