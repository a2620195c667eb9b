//! Semantic validation of a [`Model`] with OpenFGA's rules.
use super::{Model, SchemaError};

pub(super) fn validate(_model: &Model) -> Result<(), Vec<SchemaError>> {
    Ok(())
}
