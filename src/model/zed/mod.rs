//! SpiceDB's schema language (`.zed`) as a second front end: lexer, parser and compiler to the
//! same [`Model`] the OpenFGA DSL produces.
//!
//! What it owns: reading `.zed` text; the mapping of each SpiceDB construct to the rewrite IR
//! (see `compile.rs`). Invariant: a model returned here names only types, relations and caveats
//! it defines; what has no faithful mapping is a schema error naming the construct, with
//! line:column. Must not import anything outside `model` (no I/O: `import` is rejected).

mod compile;
mod lexer;
mod parser;
#[cfg(test)]
mod tests;

use super::{Model, SchemaError};

/// Parses and compiles `.zed` text.
pub(super) fn parse(text: &str) -> Result<Model, Vec<SchemaError>> {
    let schema = parser::parse(text).map_err(|error| vec![error])?;
    compile::compile(&schema)
}

/// True when `text` looks like SpiceDB schema rather than OpenFGA DSL: its first word (after
/// comments) is `definition`, `caveat` or `use`.
pub(super) fn looks_like_zed(text: &str) -> bool {
    let mut lexer = lexer::Lexer::new(text);
    matches!(lexer.next_token().0, lexer::Token::Ident(word) if matches!(word.as_str(), "definition" | "caveat" | "use"))
}
