//! The `.zed` parser: tokens → a small syntax tree of definitions, caveats and `use` flags.
//!
//! Grammar (SpiceDB's schema language): `use flag`; `definition name { relation r: T | T#rel |
//! T:* | T with caveat [and expiration] ; permission p [: T | ...] = expr }`; `caveat name(p type,
//! ...) { cel }`. Expression precedence, loosest first: `-`, `&`, `+` (all left-associative), then
//! arrows `rel->perm`, `rel.any(perm)`, `rel.all(perm)`, names, `nil` and parentheses.
//! Invariant: the first syntax error stops the parse and is reported with its line:column.
//! Must not import anything outside `model`.

use super::lexer::{span, Lexer, Pos, Token};
use crate::model::{SchemaError, SchemaErrorKind, Span};

/// A parsed schema.
#[derive(Debug, Default)]
pub(super) struct Schema {
    pub(super) uses: Vec<(String, Span)>,
    pub(super) definitions: Vec<Definition>,
    pub(super) caveats: Vec<Caveat>,
}

#[derive(Debug)]
pub(super) struct Definition {
    pub(super) name: String,
    pub(super) span: Span,
    pub(super) members: Vec<Member>,
}

#[derive(Debug)]
pub(super) enum Member {
    Relation { name: String, span: Span, types: Vec<TypeRef> },
    Permission { name: String, span: Span, expr: Expr },
}

impl Member {
    pub(super) fn name(&self) -> &str {
        match self {
            Member::Relation { name, .. } | Member::Permission { name, .. } => name,
        }
    }

    pub(super) fn span(&self) -> Span {
        match self {
            Member::Relation { span, .. } | Member::Permission { span, .. } => *span,
        }
    }
}

/// One allowed subject type of a relation.
#[derive(Debug)]
pub(super) struct TypeRef {
    pub(super) type_name: String,
    pub(super) span: Span,
    /// `Some` for `group#member`; `group#...` is the same as `group`.
    pub(super) relation: Option<String>,
    pub(super) wildcard: bool,
    pub(super) caveat: Option<String>,
    pub(super) expiration: bool,
}

/// Which parents an arrow ranges over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArrowKind {
    /// `->` and `.any()`: any parent.
    Any,
    /// `.all()`: every parent.
    All,
}

#[derive(Debug)]
pub(super) enum Expr {
    Name(String, Span),
    Nil,
    Arrow { left: Box<Expr>, kind: ArrowKind, computed: String, span: Span },
    Union(Box<Expr>, Box<Expr>),
    Intersection(Box<Expr>, Box<Expr>),
    Exclusion(Box<Expr>, Box<Expr>),
}

#[derive(Debug)]
pub(super) struct Caveat {
    pub(super) name: String,
    pub(super) span: Span,
    pub(super) parameters: Vec<(String, CaveatType, Span)>,
    pub(super) expression: String,
}

/// A caveat parameter type: `int`, `list<string>`, `map<any>`.
#[derive(Debug, Clone)]
pub(super) struct CaveatType {
    pub(super) name: String,
    pub(super) arguments: Vec<CaveatType>,
}

/// The `use` flags SpiceDB knows.
const USE_FLAGS: [&str; 5] = ["expiration", "import", "partial", "self", "typechecking"];

struct Parser<'a> {
    lexer: Lexer<'a>,
    token: Token,
    start: Pos,
    end: Pos,
    /// End of the previous token.
    last_end: Pos,
    expiration_keyword: bool,
    /// Expression levels open around the cursor.
    nesting: usize,
}

type Parsed<T> = Result<T, SchemaError>;

/// Deepest nesting of one permission expression: parentheses, `-` and arrows count a level each
/// (`+` and `&` chains are built as balanced trees, so they add only log2 of their length).
/// Compiling and dropping the tree recurse once per level, so without a bound a hostile schema
/// overflows the stack.
pub(crate) const MAX_NESTING: usize = 64;

/// Parses `.zed` text into its syntax tree, or the first syntax error.
pub(super) fn parse(text: &str) -> Parsed<Schema> {
    let mut lexer = Lexer::new(text);
    let (token, start, end) = lexer.next_token();
    let mut parser =
        Parser { lexer, token, start, end, last_end: Pos::default(), expiration_keyword: false, nesting: 0 };
    let schema = parser.schema()?;
    if let Some(at) = parser.lexer.unterminated_comment {
        return Err(syntax("unterminated `/*` comment", span(at, at)));
    }
    Ok(schema)
}

pub(super) fn syntax(message: impl Into<String>, span: Span) -> SchemaError {
    SchemaError { kind: SchemaErrorKind::Syntax, message: message.into(), span: Some(span), symbol: None }
}

impl Parser<'_> {
    fn advance(&mut self) {
        self.last_end = self.end;
        let (token, start, end) = self.lexer.next_token();
        self.token = token;
        self.start = start;
        self.end = end;
    }

    fn here(&self) -> Span {
        span(self.start, self.end)
    }

    fn is(&self, punct: &str) -> bool {
        matches!(&self.token, Token::Punct(p) if *p == punct)
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(&self.token, Token::Ident(w) if w == word)
    }

    fn eat(&mut self, punct: &str) -> bool {
        let found = self.is(punct);
        if found {
            self.advance();
        }
        found
    }

    fn expect(&mut self, punct: &str, what: &str) -> Parsed<()> {
        if self.eat(punct) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn unexpected(&self, what: &str) -> SchemaError {
        syntax(format!("expected {what}, found {}", self.token), self.here())
    }

    fn ident(&mut self, what: &str) -> Parsed<(String, Span)> {
        match &self.token {
            Token::Ident(name) => {
                let result = (name.clone(), self.here());
                self.advance();
                Ok(result)
            }
            _ => Err(self.unexpected(what)),
        }
    }

    fn schema(&mut self) -> Parsed<Schema> {
        let mut schema = Schema::default();
        loop {
            let keyword = match &self.token {
                Token::End => return Ok(schema),
                Token::Ident(word) => word.clone(),
                _ => return Err(self.unexpected("`definition`, `caveat` or `use` at the top level")),
            };
            match keyword.as_str() {
                "use" => {
                    let use_span = self.here();
                    if !schema.definitions.is_empty() || !schema.caveats.is_empty() {
                        return Err(syntax("`use` must come before every definition and caveat", use_span));
                    }
                    self.advance();
                    let (flag, flag_span) = self.ident("a `use` flag")?;
                    if !USE_FLAGS.contains(&flag.as_str()) {
                        return Err(syntax(
                            format!("unknown use flag `{flag}`; options are: {}", USE_FLAGS.join(", ")),
                            flag_span,
                        ));
                    }
                    if flag == "expiration" {
                        self.expiration_keyword = true;
                    }
                    schema.uses.push((flag, flag_span));
                    self.eat(";");
                }
                "definition" => {
                    self.advance();
                    schema.definitions.push(self.definition()?);
                }
                "caveat" => {
                    self.advance();
                    schema.caveats.push(self.caveat()?);
                }
                "import" | "partial" => {
                    return Err(syntax(
                        format!("`{keyword}` (multi-file schemas and partials) is not supported by Writ"),
                        self.here(),
                    ))
                }
                _ => return Err(self.unexpected("`definition`, `caveat` or `use` at the top level")),
            }
        }
    }

    fn definition(&mut self) -> Parsed<Definition> {
        let (name, name_span) = self.ident("a definition name")?;
        self.expect("{", "`{` after the definition name")?;
        let mut members = Vec::new();
        loop {
            if self.eat("}") {
                break;
            }
            if self.is_word("relation") {
                self.advance();
                members.push(self.relation()?);
            } else if self.is_word("permission") {
                self.advance();
                members.push(self.permission()?);
            } else if self.is_word("...") || self.is("...") {
                return Err(syntax("partial references (`...name`) are not supported by Writ", self.here()));
            } else {
                return Err(self.unexpected("`relation`, `permission` or `}`"));
            }
            self.eat(";");
        }
        Ok(Definition { name, span: name_span, members })
    }

    fn relation(&mut self) -> Parsed<Member> {
        let (name, name_span) = self.ident("a relation name")?;
        self.expect(":", "`:` after the relation name")?;
        let mut types = vec![self.type_ref()?];
        while self.eat("|") {
            types.push(self.type_ref()?);
        }
        Ok(Member::Relation { name, span: name_span, types })
    }

    fn type_ref(&mut self) -> Parsed<TypeRef> {
        let (type_name, type_span) = self.ident("a subject type")?;
        let mut reference =
            TypeRef { type_name, span: type_span, relation: None, wildcard: false, caveat: None, expiration: false };
        if self.eat(":") {
            self.expect("*", "`*` after `:` (a wildcard)")?;
            reference.wildcard = true;
        } else if self.eat("#") && !self.eat("...") {
            reference.relation = Some(self.ident("a relation name after `#`")?.0);
        }
        reference.span = span(self.start_of(type_span), self.last_end);
        if self.is_word("with") {
            self.advance();
            let (first, first_span) = self.ident("a caveat name or `expiration` after `with`")?;
            if first == "expiration" && self.expiration_keyword {
                reference.expiration = true;
                if self.is_word("and") {
                    return Err(syntax(
                        "unexpected keyword after expiration: the caveat must come before expiration, e.g. `with <caveat_name> and expiration`",
                        self.here(),
                    ));
                }
            } else {
                reference.caveat = Some(first);
                if self.is_word("and") {
                    self.advance();
                    let (second, second_span) = self.ident("`expiration` after `and`")?;
                    if second != "expiration" || !self.expiration_keyword {
                        return Err(syntax(
                            "expected `expiration` after `and` (with `use expiration` declared)",
                            second_span,
                        ));
                    }
                    reference.expiration = true;
                }
            }
            let _ = first_span;
        }
        Ok(reference)
    }

    fn start_of(&self, span: Span) -> Pos {
        Pos { line: span.line_start, column: span.column_start }
    }

    fn permission(&mut self) -> Parsed<Member> {
        let (name, name_span) = self.ident("a permission name")?;
        // A type annotation (`permission view: user | group = ...`) documents the subject types;
        // evaluation does not need it.
        if self.eat(":") {
            self.ident("a subject type in the permission's type annotation")?;
            while self.eat("|") {
                self.ident("a subject type after `|`")?;
            }
        }
        self.expect("=", "`=` after the permission name")?;
        if matches!(self.token, Token::End) || self.is("}") || self.is_word("relation") || self.is_word("permission") {
            return Err(syntax("expected a compute expression for the permission", self.here()));
        }
        let expr = self.exclusion()?;
        Ok(Member::Permission { name, span: name_span, expr })
    }

    /// Opens one more expression level, or fails past [`MAX_NESTING`].
    fn deeper(&mut self) -> Parsed<()> {
        if self.nesting >= MAX_NESTING {
            return Err(syntax(format!("expression nested deeper than {MAX_NESTING} levels"), self.here()));
        }
        self.nesting += 1;
        Ok(())
    }

    /// Parses a chain of `-` or arrow operators with `chain`, which opens a level per operator
    /// (see [`Parser::deeper`]), and closes those levels once the chain is parsed.
    fn restoring_nesting(&mut self, chain: fn(&mut Self) -> Parsed<Expr>) -> Parsed<Expr> {
        let outer = self.nesting;
        let result = chain(self);
        self.nesting = outer;
        result
    }

    fn exclusion(&mut self) -> Parsed<Expr> {
        self.restoring_nesting(Self::exclusion_chain)
    }

    fn exclusion_chain(&mut self) -> Parsed<Expr> {
        let mut left = self.intersection()?;
        while self.eat("-") {
            self.deeper()?;
            let right = self.intersection()?;
            left = Expr::Exclusion(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn intersection(&mut self) -> Parsed<Expr> {
        let mut parts = vec![self.union()?];
        while self.eat("&") {
            parts.push(self.union()?);
        }
        Ok(balanced(parts, Expr::Intersection))
    }

    fn union(&mut self) -> Parsed<Expr> {
        let mut parts = vec![self.arrow()?];
        while self.eat("+") {
            parts.push(self.arrow()?);
        }
        Ok(balanced(parts, Expr::Union))
    }

    fn arrow(&mut self) -> Parsed<Expr> {
        self.restoring_nesting(Self::arrow_chain)
    }

    fn arrow_chain(&mut self) -> Parsed<Expr> {
        let start = self.start;
        let mut left = self.primary()?;
        loop {
            if self.is("->") || self.is(".") {
                self.deeper()?;
            }
            let kind = if self.eat("->") {
                ArrowKind::Any
            } else if self.eat(".") {
                let (function, function_span) = self.ident("`any` or `all` after `.`")?;
                let kind = match function.as_str() {
                    "any" => ArrowKind::Any,
                    "all" => ArrowKind::All,
                    other => {
                        return Err(syntax(
                            format!("expected `any` or `all` for an arrow function, found `{other}`"),
                            function_span,
                        ))
                    }
                };
                self.expect("(", "`(` after the arrow function")?;
                let (computed, _) = self.ident("a permission name in the arrow function")?;
                self.expect(")", "`)` after the arrow function's argument")?;
                let span = span(start, self.last_end);
                left = Expr::Arrow { left: Box::new(left), kind, computed, span };
                continue;
            } else {
                return Ok(left);
            };
            let (computed, _) = self.ident("a permission name after `->`")?;
            let span = span(start, self.last_end);
            left = Expr::Arrow { left: Box::new(left), kind, computed, span };
        }
    }

    fn primary(&mut self) -> Parsed<Expr> {
        if self.is("(") {
            self.deeper()?;
            self.advance();
            let inner = self.exclusion();
            self.nesting -= 1;
            let inner = inner?;
            self.expect(")", "`)`")?;
            return Ok(inner);
        }
        match &self.token {
            Token::Ident(name) if name == "nil" => {
                self.advance();
                Ok(Expr::Nil)
            }
            Token::Ident(name) if name == "self" => {
                Err(syntax("`self` in permissions is not supported by Writ", self.here()))
            }
            Token::Ident(name) => {
                let result = Expr::Name(name.clone(), self.here());
                self.advance();
                Ok(result)
            }
            _ => Err(self.unexpected("a relation or permission name, `nil` or `(`")),
        }
    }

    fn caveat(&mut self) -> Parsed<Caveat> {
        let (name, name_span) = self.ident("a caveat name")?;
        if name == "expiration" && self.expiration_keyword {
            return Err(syntax("`expiration` is a keyword under `use expiration` and cannot name a caveat", name_span));
        }
        self.expect("(", "`(` after the caveat name")?;
        let mut parameters = Vec::new();
        loop {
            let (param, param_span) = self.ident("a parameter name")?;
            let param_type = self.caveat_type()?;
            parameters.push((param, param_type, param_span));
            if self.eat(")") {
                break;
            }
            self.expect(",", "`,` or `)` in the caveat's parameters")?;
        }
        if !self.is("{") {
            return Err(self.unexpected("`{` to open the caveat expression"));
        }
        let open = self.here();
        // The body is CEL: read it verbatim, then resume tokenizing after the closing brace.
        let Some((expression, _)) = self.lexer.raw_block() else {
            return Err(syntax("invalid caveat expression: expected CEL closed by `}`", open));
        };
        if expression.is_empty() {
            return Err(syntax("a caveat needs an expression", open));
        }
        self.advance();
        Ok(Caveat { name, span: name_span, parameters, expression })
    }

    fn caveat_type(&mut self) -> Parsed<CaveatType> {
        let (name, _) = self.ident("a parameter type")?;
        let mut arguments = Vec::new();
        if self.eat("<") {
            arguments.push(self.caveat_type()?);
            while self.eat(",") {
                arguments.push(self.caveat_type()?);
            }
            self.expect(">", "`>` to close the type arguments")?;
        }
        Ok(CaveatType { name, arguments })
    }
}

/// Joins a left-to-right chain of one associative operator (`+` or `&`) as a balanced tree, so a
/// chain of n operands is log2(n) deep rather than n; compiling flattens it back into one list.
fn balanced(mut parts: Vec<Expr>, join: fn(Box<Expr>, Box<Expr>) -> Expr) -> Expr {
    while parts.len() > 1 {
        let mut joined = Vec::with_capacity(parts.len().div_ceil(2));
        let mut pairs = parts.into_iter();
        while let Some(left) = pairs.next() {
            joined.push(match pairs.next() {
                Some(right) => join(Box::new(left), Box::new(right)),
                None => left,
            });
        }
        parts = joined;
    }
    // INVARIANT: callers pass at least one operand, so one is left; `nil` is never reached.
    parts.pop().unwrap_or(Expr::Nil)
}
