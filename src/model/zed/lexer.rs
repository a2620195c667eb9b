//! The `.zed` lexer: SpiceDB schema text → tokens with 0-based line:column positions.
//!
//! Invariant: comments (`//`, `/* */`, doc comments `/** */`) and whitespace never reach the
//! parser; every token knows where it starts and ends. The lexer is pulled by the parser, which
//! may also ask for a caveat body verbatim ([`Lexer::raw_block`]), since CEL is not tokenized here.
//! Must not import anything outside `model`.

use crate::model::lexer::step_past;
use crate::model::Span;

/// One token kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    /// A name or keyword: `definition`, `user`, `nil`.
    Ident(String),
    /// A quoted string (`import "x.zed"`).
    Str(String),
    /// A single punctuation mark or `->` / `...`.
    Punct(&'static str),
    /// A character that belongs to no token.
    Unknown(char),
    /// End of input.
    End,
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Ident(name) => write!(f, "`{name}`"),
            Token::Str(text) => write!(f, "string {text:?}"),
            Token::Punct(p) => write!(f, "`{p}`"),
            Token::Unknown(c) => write!(f, "unexpected character `{c}`"),
            Token::End => f.write_str("end of input"),
        }
    }
}

/// A position in the source: 0-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Pos {
    pub(super) line: u32,
    pub(super) column: u32,
}

/// The region from `start` to `end`.
pub(super) fn span(start: Pos, end: Pos) -> Span {
    Span { line_start: start.line, line_end: end.line, column_start: start.column, column_end: end.column }
}

const PUNCTS: [&str; 20] =
    ["->", "...", "{", "}", "(", ")", "[", "]", "<", ">", ":", ";", ",", "|", "#", "*", "=", "+", "&", "-"];

/// A pull lexer over the source characters.
#[derive(Clone)]
pub(super) struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    pos: Pos,
    /// A `/* */` comment that never ends, reported once.
    pub(super) unterminated_comment: Option<Pos>,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Lexer { chars: text.chars().peekable(), pos: Pos::default(), unterminated_comment: None }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        step_past(c, &mut self.pos.line, &mut self.pos.column);
        Some(c)
    }

    fn peek_second(&self) -> Option<char> {
        let mut ahead = self.chars.clone();
        ahead.next();
        ahead.next()
    }

    fn skip_trivia(&mut self) {
        loop {
            let second = self.peek_second();
            match self.chars.peek().copied() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('/') if second == Some('/') => {
                    while let Some(c) = self.chars.peek() {
                        if *c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                Some('/') if second == Some('*') => {
                    let start = self.pos;
                    self.bump();
                    self.bump();
                    let mut closed = false;
                    while let Some(c) = self.bump() {
                        if c == '*' && self.chars.peek() == Some(&'/') {
                            self.bump();
                            closed = true;
                            break;
                        }
                    }
                    if !closed {
                        self.unterminated_comment.get_or_insert(start);
                    }
                }
                _ => return,
            }
        }
    }

    /// The next token with its start and end positions.
    pub(super) fn next_token(&mut self) -> (Token, Pos, Pos) {
        self.skip_trivia();
        let start = self.pos;
        let Some(&c) = self.chars.peek() else { return (Token::End, start, start) };
        if c.is_alphanumeric() || c == '_' {
            let mut name = String::new();
            while let Some(&c) = self.chars.peek() {
                // `/` joins a prefixed name (`org/user`) when a name character follows it.
                let joins_prefix = c == '/' && self.peek_second().is_some_and(|n| n.is_alphanumeric() || n == '_');
                if c.is_alphanumeric() || c == '_' || joins_prefix {
                    name.push(c);
                    self.bump();
                } else {
                    break;
                }
            }
            return (Token::Ident(name), start, self.pos);
        }
        if c == '"' || c == '\'' {
            self.bump();
            let mut text = String::new();
            loop {
                match self.bump() {
                    Some(q) if q == c => return (Token::Str(text), start, self.pos),
                    Some('\n') | None => return (Token::Unknown(c), start, self.pos),
                    Some(other) => text.push(other),
                }
            }
        }
        if c == '.' {
            let mut ahead = self.chars.clone();
            ahead.next();
            if ahead.next() == Some('.') && ahead.next() == Some('.') {
                for _ in 0..3 {
                    self.bump();
                }
                return (Token::Punct("..."), start, self.pos);
            }
            self.bump();
            return (Token::Punct("."), start, self.pos);
        }
        if c == '-' && self.peek_second() == Some('>') {
            self.bump();
            self.bump();
            return (Token::Punct("->"), start, self.pos);
        }
        self.bump();
        match PUNCTS.iter().find(|p| p.len() == 1 && p.starts_with(c)) {
            Some(p) => (Token::Punct(p), start, self.pos),
            None => (Token::Unknown(c), start, self.pos),
        }
    }

    /// Reads a caveat body verbatim after its opening `{` up to the matching `}` (braces inside
    /// strings and nested map literals are balanced). Returns the text, or `None` when unclosed
    /// or holding a character CEL has no token for.
    pub(super) fn raw_block(&mut self) -> Option<(String, Pos)> {
        let mut depth = 1usize;
        let mut text = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = self.bump() {
            if let Some(q) = quote {
                text.push(c);
                if c == '\\' {
                    if let Some(escaped) = self.bump() {
                        text.push(escaped);
                    }
                } else if c == q {
                    quote = None;
                }
                continue;
            }
            match c {
                '"' | '\'' => quote = Some(c),
                // No CEL token starts with a backtick.
                '`' => return None,
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some((text.trim().to_string(), self.pos));
                    }
                }
                _ => {}
            }
            text.push(c);
        }
        None
    }
}
