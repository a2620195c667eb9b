//! OpenFGA's JSON model ↔ [`Model`].
use super::{Model, SchemaError};
use serde::{Deserialize, Serialize};

/// OpenFGA's JSON authorization model (`schema_version`, `type_definitions`, `conditions`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JsonModel {}

/// `metadata.relations.<name>` of a JSON type definition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JsonRelationMetadata {}

pub(super) fn from_json(_json: &JsonModel) -> Result<Model, Vec<SchemaError>> {
    Err(Vec::new())
}

pub(super) fn to_json(_model: &Model) -> JsonModel {
    JsonModel {}
}
