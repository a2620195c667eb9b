//! Schema errors: what is wrong with a model, and where.
//!
//! Invariant: messages are lowercase-first OpenFGA-style text; spans are 0-based lines and columns.
//! Must not import any other crate module.

/// A region of model source text: 0-based lines and columns (as OpenFGA's language tests count them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    /// First line (0-based).
    pub line_start: u32,
    /// Last line (0-based).
    pub line_end: u32,
    /// First column (0-based).
    pub column_start: u32,
    /// Column just past the end (0-based).
    pub column_end: u32,
}

/// The class of a schema error (OpenFGA's `errorType` where one exists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaErrorKind {
    /// The text does not follow the grammar.
    Syntax,
    /// A semantic rule is broken; the string is OpenFGA's `errorType`, e.g. `missing-definition`.
    Semantic(String),
}

/// One problem in a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SchemaError {
    /// What kind of problem.
    pub kind: SchemaErrorKind,
    /// The human message.
    pub message: String,
    /// Where, when the model came from text.
    pub span: Option<Span>,
    /// The offending name, when there is one.
    pub symbol: Option<String>,
}
