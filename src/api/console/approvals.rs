//! The console's **Approvals** page (DESIGN §12, issue 32): the store's pending approvals, each
//! with **Approve** (a TTL and a number of uses) and **Deny** for keys with the approver role (or
//! admin); other keys see the list without controls. Approving and denying go through
//! `engine.approvals()` exactly as `POST writ/approvals/{id}/approve` and `.../deny` do, so each
//! step is in the decision log with the key's name as approver.
//!
//! Below them, **Recent alerts** (issue 32 item 3): the newest [`ALERTS_SHOWN`] alerts of the
//! store from `engine.alerts()`, or, when the server runs no alert rules, how to turn them on.
//!
//! Invariants: the list is one page (oldest first); a change needs the approver access the API
//! routes declare and the session's CSRF token.
//! Must not import `store`, `index` or `eval`.

use super::view::{self, Chrome};
use super::{
    blocking, check_csrf, chrome, encode, may, principal, ConsoleState, Refusal, StoreVisit, Visit, PAGE_SIZE,
};
use crate::api::approvals::{grant, parse_uses};
use crate::api::auth::Principal;
use crate::api::decisions::given;
use crate::api::time::format_rfc3339;
use crate::engine::{AlertFilter, ApprovalStatus, EngineError};
use axum::extract::{Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::{html, Markup};
use serde::Deserialize;

/// One pending approval as the page lists it.
struct ApprovalRow {
    id: String,
    created: String,
    principals: String,
    relation: String,
    object: String,
    /// `server/tool` for a gateway call.
    tool: String,
    arguments_sha256: String,
}

/// Alerts the page lists, newest first.
const ALERTS_SHOWN: usize = 50;

/// One recent alert as the page lists it.
struct AlertRow {
    time: String,
    rule: &'static str,
    agent: String,
    /// The called tool, or empty.
    tool: String,
    message: String,
}

/// Everything the Approvals page shows.
struct ApprovalsPage {
    store: String,
    /// `None` when the datastore keeps no approvals.
    pending: Option<Vec<ApprovalRow>>,
    can_approve: bool,
    /// `None` when the server runs no alert rules.
    alerts: Option<Vec<AlertRow>>,
}

/// Whether the viewer may approve and deny in `store_id`.
fn can_approve(visit: &Visit, store_id: &str) -> bool {
    may(visit, crate::api::approvals::DECIDE_ACCESS, store_id)
}

pub(super) async fn approvals_page(StoreVisit { console, store_id, visit }: StoreVisit) -> Result<Response, Refusal> {
    let (engine, id) = (console.app.engine.clone(), store_id.clone());
    let (listed, alerts) = blocking(move || {
        let store = engine.store(&id)?;
        let alerts = if engine.alerts().is_running() {
            let filter = AlertFilter { limit: ALERTS_SHOWN, ..AlertFilter::default() };
            Some(engine.alerts().list(&store, &filter)?)
        } else {
            None
        };
        match engine.approvals().list(&store, Some(ApprovalStatus::Pending), None, PAGE_SIZE) {
            Ok(records) => Ok((Some(records), alerts)),
            Err(EngineError::Validation(_)) => Ok((None, alerts)),
            Err(error) => Err(error.into()),
        }
    })
    .await?;
    let alerts = alerts.map(|alerts| {
        alerts
            .into_iter()
            .map(|alert| AlertRow {
                time: format_rfc3339(alert.time_ms),
                rule: alert.rule.as_str(),
                agent: alert.agent,
                tool: alert.tool.unwrap_or_default(),
                message: alert.message,
            })
            .collect()
    });
    let pending = listed.map(|records| {
        records
            .into_iter()
            .map(|record| ApprovalRow {
                created: format_rfc3339(record.created_ms),
                principals: record.call.principals.join(" → "),
                tool: match (&record.call.server, &record.call.tool) {
                    (Some(server), Some(tool)) => format!("{server}/{tool}"),
                    (None, Some(tool)) => tool.clone(),
                    _ => String::new(),
                },
                id: record.id,
                relation: record.call.relation,
                object: record.call.object,
                arguments_sha256: record.call.arguments_sha256,
            })
            .collect()
    });
    let page = ApprovalsPage { store: encode(&store_id), pending, can_approve: can_approve(&visit, &store_id), alerts };
    Ok(render(&chrome(&console, &visit, Some(&store_id)), &page).into_response())
}

#[derive(Deserialize)]
pub(super) struct DecideForm {
    #[serde(default)]
    csrf: String,
    /// `approve` or `deny`.
    #[serde(default)]
    decision: String,
    /// How long an approval lasts (`15m`); the API's default when empty.
    #[serde(default)]
    ttl: String,
    /// How many calls it allows; the API's default when empty.
    #[serde(default)]
    uses: String,
}

/// Approves or denies one approval as the signed-in key, then shows the list again.
pub(super) async fn decide_approval(
    State(console): State<ConsoleState>,
    Path((store_id, approval_id)): Path<(String, String)>,
    Extension(visit): Extension<Visit>,
    Form(form): Form<DecideForm>,
) -> Result<Response, Refusal> {
    check_csrf(&visit, &form.csrf)?;
    // An empty field is the API's absent one: the default.
    let uses = given(Some(&form.uses)).map(parse_uses).transpose()?;
    let grant = grant(given(Some(&form.ttl)), uses)?;
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        other => return Err(Refusal::bad_request(format!("`decision` value `{other}` is not `approve` or `deny`"))),
    };
    let approver = principal(&visit).map_or_else(|| "anonymous".to_string(), Principal::actor);
    let (engine, id) = (console.app.engine.clone(), store_id.clone());
    blocking(move || {
        let store = engine.store(&id)?;
        let (approvals, log) = (engine.approvals(), engine.decision_log());
        if approve {
            approvals.approve(log, &store, &approval_id, grant, &approver)?;
        } else {
            approvals.deny(log, &store, &approval_id, &approver, None)?;
        }
        Ok(())
    })
    .await?;
    Ok(Redirect::to(&format!("/console/stores/{}/approvals", encode(&store_id))).into_response())
}

fn render(chrome: &Chrome, page: &ApprovalsPage) -> Markup {
    let base = format!("/console/stores/{}/approvals", page.store);
    view::layout(
        "Approvals",
        chrome,
        html! {
            h2 { "Pending approvals" }
            @match &page.pending {
                None => p { "This datastore keeps no approvals." },
                Some(rows) if rows.is_empty() => p { "No approvals are waiting." },
                Some(rows) => {
                    @if !page.can_approve { p { "Only keys with the approver role (or admin) may approve or deny." } }
                    table.ids {
                        thead { tr {
                            th.time { "Raised" } th { "Principals" } th.narrow { "Relation" } th { "Object" } th { "Tool" }
                            th.short { "Arguments (SHA-256)" }
                            @if page.can_approve { th.wide { "Decide" } }
                        } }
                        tbody {
                            @for row in rows {
                                tr {
                                    td { (row.created) } td.id { (row.principals) } td { (row.relation) } td.id { (row.object) }
                                    td.id { (row.tool) } td { code { (row.arguments_sha256.get(..12).unwrap_or(&row.arguments_sha256)) } }
                                    @if page.can_approve {
                                        td { div.decide {
                                            form.fields method="post" action={ (base) "/" (row.id) }
                                                data-confirm={ "Approve " (row.principals) " → " (row.object) "?" } {
                                                input type="hidden" name="csrf" value=(chrome.csrf);
                                                input type="hidden" name="decision" value="approve";
                                                label { "TTL" input name="ttl" value="15m" size="5"; }
                                                label { "Uses" input name="uses" value="1" size="3" inputmode="numeric"; }
                                                button type="submit" aria-label={ "Approve " (row.id) } { "Approve" }
                                            }
                                            form.inline method="post" action={ (base) "/" (row.id) }
                                                data-confirm={ "Deny " (row.principals) " → " (row.object) "?" } {
                                                input type="hidden" name="csrf" value=(chrome.csrf);
                                                input type="hidden" name="decision" value="deny";
                                                button type="submit" aria-label={ "Deny " (row.id) } { "Deny" }
                                            }
                                        } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-label="Alerts" {
                h2 { "Recent alerts" }
                @match &page.alerts {
                    None => p {
                        "Alerts are not configured on this server. To turn them on, start it with "
                        code { "writ serve --alerts FILE" } ", where FILE names the rules (for example "
                        code { "first_tool_call: true" } "); the README's alerts section lists them all."
                    },
                    Some(alerts) if alerts.is_empty() => p { "No alerts for this store." },
                    Some(alerts) => {
                        p { "The newest " (ALERTS_SHOWN) " at most, newest first." }
                        table.ids {
                            thead { tr {
                                th.time { "Time" } th.short { "Rule" } th { "Agent" } th { "Tool" } th.wide { "Message" }
                            } }
                            tbody {
                                @for alert in alerts {
                                    tr {
                                        td { (alert.time) } td { (alert.rule) } td.id { (alert.agent) } td.id { (alert.tool) }
                                        td { (alert.message) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}
