//! `at_least_revision`: a read may name the store revision it must reflect (Zanzibar's zookie,
//! SpiceDB's ZedToken), typically the revision its caller's own write returned.
//!
//! Invariant: a read that names revision N is answered from a snapshot at revision N or later,
//! or not at all: after waiting at most the configured `revision_wait` it fails with
//! `revision_unavailable` (HTTP 409) naming the requested and current revisions.
//! Must not import `store`, `index` or `eval`.

use super::{blocking, ApiError, AppState};
use serde::de::Visitor;
use serde::Deserializer;

/// Waits, bounded, until `store_id` reaches `at_least` (no wait when `None` or already there).
///
/// Every read handler calls this before touching the engine; the snapshot it then takes is at
/// least as new, because revisions only grow.
pub(super) async fn require_revision(state: &AppState, store_id: &str, at_least: Option<u64>) -> Result<(), ApiError> {
    let Some(at_least) = at_least else { return Ok(()) };
    if state.engine.store(store_id)?.revision()? >= at_least {
        return Ok(());
    }
    let (engine, store_id, wait) = (state.engine.clone(), store_id.to_string(), state.revision_wait);
    blocking(move || Ok(engine.store(&store_id)?.wait_for_revision(at_least, wait)?)).await?;
    Ok(())
}

/// Reads `at_least_revision` given as a JSON number, a decimal string (as 64-bit integers often
/// travel in JSON, and as query strings carry it), or null. Every error names the field itself:
/// inside a flattened options type serde no longer reports the path to it.
pub(super) fn deserialize_revision<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    deserializer.deserialize_any(RevisionVisitor)
}

struct RevisionVisitor;

impl RevisionVisitor {
    fn invalid<E: serde::de::Error>(got: impl std::fmt::Display) -> E {
        E::custom(format!("`at_least_revision` value `{got}` is not a non-negative integer"))
    }
}

impl<'de> Visitor<'de> for RevisionVisitor {
    type Value = Option<u64>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("`at_least_revision` as a non-negative integer, a decimal string or null")
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<Option<u64>, E> {
        Ok(Some(value))
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<Option<u64>, E> {
        u64::try_from(value).map(Some).map_err(|_| Self::invalid(value))
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<Option<u64>, E> {
        Err(Self::invalid(value))
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Option<u64>, E> {
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| Self::invalid(text))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Option<u64>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<u64>, D::Error> {
        deserializer.deserialize_any(self)
    }
}
