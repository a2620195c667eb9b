//! `at_least_revision`: a read may name the store revision it must reflect (Zanzibar's zookie,
//! SpiceDB's ZedToken), typically the revision its caller's own write returned.
//!
//! Invariant: a read that names revision N is answered from a snapshot at revision N or later,
//! or not at all: after waiting at most the configured `revision_wait` it fails with
//! `revision_unavailable` (HTTP 409) naming the requested and current revisions.
//! Must not import `store`, `index` or `eval`.

use super::{blocking, ApiError, AppState};
use serde::{Deserialize, Deserializer};

/// Waits, bounded, until `store_id` reaches `at_least` (no wait when `None` or already there).
///
/// Every read handler calls this before touching the engine; the snapshot it then takes is at
/// least as new, because revisions only grow.
pub(super) async fn require_revision(state: &AppState, store_id: &str, at_least: Option<u64>) -> Result<(), ApiError> {
    let Some(at_least) = at_least else { return Ok(()) };
    if state.engine.revision(store_id)? >= at_least {
        return Ok(());
    }
    let (engine, store_id, wait) = (state.engine.clone(), store_id.to_string(), state.revision_wait);
    blocking(move || Ok(engine.wait_for_revision(&store_id, at_least, wait)?)).await?;
    Ok(())
}

/// Reads `at_least_revision` given as a JSON number, a decimal string (as 64-bit integers often
/// travel in JSON, and as query strings carry it), or null.
pub(super) fn deserialize_revision<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Revision {
        Number(u64),
        Text(String),
    }
    match Option::<Revision>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Revision::Number(n)) => Ok(Some(n)),
        Some(Revision::Text(text)) if text.is_empty() => Ok(None),
        Some(Revision::Text(text)) => text.parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!("`at_least_revision` value `{text}` is not a non-negative integer"))
        }),
    }
}
