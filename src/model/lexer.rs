//! A character cursor over DSL text: positions, whitespace, words and syntax errors.
//!
//! What it owns: moving through the source while tracking 0-based line/column, and building
//! [`SchemaError`]s of kind `Syntax` at the current position.
//! Invariant: the cursor never moves past the end of the text and never panics on any input.
//! Must not import anything outside `model`.

use super::{SchemaError, SchemaErrorKind, Span};

/// A position in the text: char index plus 0-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Pos {
    pub(super) idx: usize,
    pub(super) line: u32,
    pub(super) col: u32,
}

/// Moves a 0-based `line` and `column` past `c`: a newline starts the next line at column 0.
/// Shared with the `.zed` lexer, so both languages count positions alike.
pub(super) fn step_past(c: char, line: &mut u32, column: &mut u32) {
    if c == '\n' {
        *line += 1;
        *column = 0;
    } else {
        *column += 1;
    }
}

/// The cursor.
pub(super) struct Cursor {
    chars: Vec<char>,
    pub(super) pos: Pos,
}

impl Cursor {
    pub(super) fn new(text: &str) -> Self {
        Cursor { chars: text.chars().collect(), pos: Pos::default() }
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos.idx).copied()
    }

    pub(super) fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos.idx + offset).copied()
    }

    pub(super) fn prev(&self) -> Option<char> {
        self.pos.idx.checked_sub(1).and_then(|i| self.chars.get(i)).copied()
    }

    pub(super) fn at_eof(&self) -> bool {
        self.pos.idx >= self.chars.len()
    }

    pub(super) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos.idx += 1;
        step_past(c, &mut self.pos.line, &mut self.pos.col);
        Some(c)
    }

    /// The text between two char indexes.
    pub(super) fn slice(&self, from: usize, to: usize) -> String {
        self.chars.get(from..to.min(self.chars.len())).map(|s| s.iter().collect()).unwrap_or_default()
    }

    /// Skips spaces and tabs; returns how many were skipped.
    pub(super) fn ws(&mut self) -> usize {
        let mut n = 0;
        while matches!(self.peek(), Some(' ' | '\t' | '\u{c}')) {
            self.bump();
            n += 1;
        }
        n
    }

    /// Skips to the end of the line (not consuming the newline).
    pub(super) fn skip_line(&mut self) {
        while !matches!(self.peek(), None | Some('\n')) {
            self.bump();
        }
    }

    /// Skips whitespace, newlines and `#` comments.
    pub(super) fn trivia(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r' | '\n' | '\u{c}') => {
                    self.bump();
                }
                Some('#') => self.skip_line(),
                _ => return,
            }
        }
    }

    /// Skips whitespace and newlines inside brackets (no comments there).
    pub(super) fn ws_nl(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\r' | '\n' | '\u{c}')) {
            self.bump();
        }
    }

    /// True when the text at the cursor starts with `s`.
    pub(super) fn looking_at(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(i, c)| self.peek_at(i) == Some(c))
    }

    /// True when the text at the cursor is the keyword `kw` followed by a non-word char.
    pub(super) fn at_keyword(&self, kw: &str) -> bool {
        self.looking_at(kw) && !self.peek_at(kw.chars().count()).is_some_and(is_word_char)
    }

    /// Consumes `s` if it is next.
    pub(super) fn eat(&mut self, s: &str) -> bool {
        if !self.looking_at(s) {
            return false;
        }
        for _ in s.chars() {
            self.bump();
        }
        true
    }

    /// Reads an identifier (possibly empty) and its span.
    pub(super) fn ident(&mut self) -> (String, Span) {
        let start = self.pos;
        if self.peek().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') {
            while self.peek().is_some_and(is_word_char) {
                self.bump();
            }
        }
        (self.slice(start.idx, self.pos.idx), self.span_from(start))
    }

    /// The span from `start` to the cursor.
    pub(super) fn span_from(&self, start: Pos) -> Span {
        Span { line_start: start.line, line_end: self.pos.line, column_start: start.col, column_end: self.pos.col }
    }

    /// The next "token" for error messages: a word, a run of whitespace, or one char.
    pub(super) fn token_span(&self) -> (String, Span) {
        let start = self.pos;
        let mut probe = Cursor { chars: self.chars.clone(), pos: start };
        match self.peek() {
            None => {
                let span = Span { column_end: start.col + 5, ..self.span_from(start) };
                return ("<EOF>".to_string(), span);
            }
            Some(_) if self.at_keyword("but not") => {
                probe.eat("but not");
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                probe.ident();
            }
            Some(' ' | '\t') => {
                probe.ws();
            }
            Some(_) => {
                probe.bump();
            }
        }
        let text = probe.slice(start.idx, probe.pos.idx);
        let span = Span {
            line_end: start.line,
            column_end: start.col + text.chars().count() as u32,
            ..probe.span_from(start)
        };
        (text.replace('\n', "\\n"), span)
    }

    /// A syntax error at the next token, "mismatched input 'x' expecting …".
    pub(super) fn expected(&self, what: &str) -> SchemaError {
        let (tok, span) = self.token_span();
        syntax_error(format!("mismatched input '{tok}' expecting {what}"), span, tok)
    }
}

/// True for chars allowed after the first char of an identifier.
pub(super) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.')
}

/// A syntax error with a span and symbol.
pub(super) fn syntax_error(message: String, span: Span, symbol: String) -> SchemaError {
    SchemaError { kind: SchemaErrorKind::Syntax, message, span: Some(span), symbol: Some(symbol) }
}
