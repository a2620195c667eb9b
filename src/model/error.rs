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

/// Every problem found in a model (never empty when returned as an error): an error itself, whose
/// message lists them all, and a slice of [`SchemaError`]s for callers that report each one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaErrors(Vec<SchemaError>);

impl SchemaErrors {
    /// The problems, in the order they were found.
    pub fn errors(&self) -> &[SchemaError] {
        &self.0
    }

    /// The problems, owned.
    pub fn into_vec(self) -> Vec<SchemaError> {
        self.0
    }
}

impl std::ops::Deref for SchemaErrors {
    type Target = [SchemaError];
    fn deref(&self) -> &[SchemaError] {
        &self.0
    }
}

impl From<Vec<SchemaError>> for SchemaErrors {
    fn from(errors: Vec<SchemaError>) -> Self {
        SchemaErrors(errors)
    }
}

impl From<SchemaErrors> for Vec<SchemaError> {
    fn from(errors: SchemaErrors) -> Self {
        errors.0
    }
}

impl IntoIterator for SchemaErrors {
    type Item = SchemaError;
    type IntoIter = std::vec::IntoIter<SchemaError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a SchemaErrors {
    type Item = &'a SchemaError;
    type IntoIter = std::slice::Iter<'a, SchemaError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl PartialEq<Vec<SchemaError>> for SchemaErrors {
    fn eq(&self, other: &Vec<SchemaError>) -> bool {
        &self.0 == other
    }
}

/// `invalid authorization model: ` then each problem's message, with its line and column when
/// known (1-based, as editors count), separated by `; `.
impl std::fmt::Display for SchemaErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid authorization model")?;
        for (n, error) in self.0.iter().enumerate() {
            f.write_str(if n == 0 { ": " } else { "; " })?;
            if let Some(span) = error.span {
                write!(f, "{}:{}: ", span.line_start + 1, span.column_start + 1)?;
            }
            f.write_str(&error.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for SchemaErrors {}
