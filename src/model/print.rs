//! [`Model`] → OpenFGA DSL text.
use super::Model;

pub(super) fn to_dsl(_model: &Model) -> String {
    String::new()
}
