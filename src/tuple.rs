//! Tuple vocabulary: objects (`document:1`), subjects (`user:anne`, `user:*`, `group:eng#member`)
//! and tuples (`document:1#viewer@user:anne`), with `FromStr`/`Display` in that text form, and
//! a tuple as written and stored with its expiry ([`StoredTuple`]).
//!
//! Invariant: `parse(display(x)) == x` for every value this module constructs; a parsed value
//! never holds an empty type, id or relation.
//! Depends on nothing else in the crate.

use std::fmt;
use std::str::FromStr;

/// A JSON object used as condition context (a tuple's stored context or a request's context).
pub type Context = serde_json::Map<String, serde_json::Value>;

/// One value of a [`Context`].
pub use serde_json::Value as ContextValue;

/// Why a tuple-shaped string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TupleError {
    /// An object was not of the form `type:id`.
    #[error("object `{0}` is not of the form `type:id`")]
    Object(String),
    /// A user/subject was not `type:id`, `type:*` or `type:id#relation`.
    #[error("user `{0}` is not of the form `type:id`, `type:*` or `type:id#relation`")]
    Subject(String),
    /// A relation name was empty or malformed.
    #[error("relation `{0}` is not a valid relation name")]
    Relation(String),
    /// A whole tuple was not `object#relation@user`.
    #[error("tuple `{0}` is not of the form `type:id#relation@user`")]
    Tuple(String),
}

/// An object: `type:id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The object's type, e.g. `document`.
    pub object_type: String,
    /// The object's id within its type, e.g. `q3`.
    pub id: String,
}

impl ObjectRef {
    /// Builds an object from its parts.
    pub fn new(object_type: impl Into<String>, id: impl Into<String>) -> Self {
        ObjectRef { object_type: object_type.into(), id: id.into() }
    }
}

fn valid_type(s: &str) -> bool {
    !s.is_empty() && none_of(s, b":#@*", |c| c == ':' || c == '#' || c == '@' || c == '*')
}

/// True when `s` holds none of the ASCII bytes `banned` and no whitespace; `banned_char` says the
/// same of one `char`. Names are almost always ASCII, so their bytes are tested directly (a check
/// validates every id it is given); other text goes char by char, for Unicode whitespace.
fn none_of(s: &str, banned: &[u8], banned_char: impl Fn(char) -> bool) -> bool {
    if s.is_ascii() {
        // `char::is_whitespace` on ASCII: space, and `\t` `\n` `\x0B` `\x0C` `\r`.
        return !s.bytes().any(|b| banned.contains(&b) || b == b' ' || (b'\t'..=b'\r').contains(&b));
    }
    !s.chars().any(|c| banned_char(c) || c.is_whitespace())
}

/// The id rule for tuples and requests, as OpenFGA's server and SpiceDB accept them: non-empty,
/// no `#`, `:` or whitespace, and not starting with `*` (the wildcard is spelled `type:*` only as a
/// subject). SpiceDB ids such as `--=base64...==` pass; [`valid_object_id`] is the stricter rule of
/// OpenFGA's language validators, which model-test files follow.
fn valid_id(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('*') && none_of(s, b"#:", |c| c == '#' || c == ':')
}

/// True when `s` is a valid object id by the rule of OpenFGA's language validators (the `fga` CLI's
/// model-test files), `[^#:\s*][a-zA-Z0-9_|*@.+/-]*`: the first character is anything but `#`, `:`,
/// `*` or whitespace; the rest are ASCII letters, digits or one of `_ | * @ . + / -`.
pub fn valid_object_id(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    if first == '#' || first == ':' || first == '*' || first.is_whitespace() {
        return false;
    }
    chars.all(|c| c.is_ascii_alphanumeric() || "_|*@.+/-".contains(c))
}

/// True when `s` is usable as a relation name: non-empty, no `:`, `#`, `@`, `*` or whitespace.
pub fn valid_relation(s: &str) -> bool {
    let classes = class::of(s.as_bytes());
    if classes & class::NON_ASCII != 0 {
        return !s.chars().any(|c| c == ':' || c == '#' || c == '@' || c == '*' || c.is_whitespace());
    }
    !s.is_empty() && classes & class::NOT_IN_TYPE == 0
}

/// Byte classes for reading names in one pass: each byte of a name is looked up once, and the
/// classes of a part are OR-ed together, so a part's validity is one test of the sum instead of a
/// scan per banned character (a check reads every name it is given; this keeps that cheap).
mod class {
    pub(super) const COLON: u8 = 1;
    pub(super) const HASH: u8 = 2;
    pub(super) const AT: u8 = 4;
    pub(super) const STAR: u8 = 8;
    /// ASCII whitespace as `char::is_whitespace` has it: space and `\t` `\n` `\x0B` `\x0C` `\r`.
    pub(super) const SPACE: u8 = 16;
    /// A byte of a multi-byte character: the part is judged char by char instead.
    pub(super) const NON_ASCII: u8 = 32;
    /// What no type name may hold.
    pub(super) const NOT_IN_TYPE: u8 = COLON | HASH | AT | STAR | SPACE;
    /// What no id may hold.
    pub(super) const NOT_IN_ID: u8 = COLON | HASH | SPACE;

    /// The class of every byte.
    pub(super) static OF: [u8; 256] = {
        let mut table = [0u8; 256];
        let mut byte = 0;
        while byte < 256 {
            table[byte] = match byte as u8 {
                b':' => COLON,
                b'#' => HASH,
                b'@' => AT,
                b'*' => STAR,
                b' ' | b'\t'..=b'\r' => SPACE,
                0x80..=0xff => NON_ASCII,
                _ => 0,
            };
            byte += 1;
        }
        table
    };

    /// The classes of every byte of `part`, OR-ed.
    pub(super) fn of(part: &[u8]) -> u8 {
        part.iter().fold(0, |classes, &byte| classes | OF[usize::from(byte)])
    }
}

/// [`valid_type`] given the part's byte classes, reading the text again only when it is not ASCII.
fn valid_type_of(part: &str, classes: u8) -> bool {
    if classes & class::NON_ASCII != 0 {
        return valid_type(part);
    }
    !part.is_empty() && classes & class::NOT_IN_TYPE == 0
}

/// [`valid_id`] given the part's byte classes, reading the text again only when it is not ASCII.
fn valid_id_of(part: &str, classes: u8) -> bool {
    if classes & class::NON_ASCII != 0 {
        return valid_id(part);
    }
    !part.is_empty() && !part.starts_with('*') && classes & class::NOT_IN_ID == 0
}

/// `s` cut at its first `:` (so the part before holds none); `None` when there is no `:`.
fn split_type(s: &str) -> Option<(&str, &str)> {
    let colon = s.bytes().position(|byte| byte == b':')?;
    // INVARIANT: `:` is ASCII, so both cuts fall on char boundaries.
    Some((s.get(..colon)?, s.get(colon + 1..)?))
}

/// Reads `type:id` without copying: the one parser behind `ObjectRef::from_str`. One pass over
/// the bytes finds the `:` and another classifies them (see [`class`]).
pub fn split_object(s: &str) -> Result<(&str, &str), TupleError> {
    match split_type(s) {
        Some((t, id)) if valid_type_of(t, class::of(t.as_bytes())) && valid_id_of(id, class::of(id.as_bytes())) => {
            Ok((t, id))
        }
        _ => Err(TupleError::Object(s.to_string())),
    }
}

impl FromStr for ObjectRef {
    type Err = TupleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (object_type, id) = split_object(s)?;
        Ok(ObjectRef::new(object_type, id))
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.object_type, self.id)
    }
}

/// The user side of a tuple or a query.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A concrete object, `user:anne`.
    Object(ObjectRef),
    /// Every object of a type, `user:*`.
    Wildcard(String),
    /// Everyone who holds `relation` on `object`, `group:eng#member`.
    Userset {
        /// The object whose relation defines the set.
        object: ObjectRef,
        /// The relation on that object.
        relation: String,
    },
}

impl Subject {
    /// The subject's type (`user` for `user:anne`, `user:*`; `group` for `group:eng#member`).
    pub fn subject_type(&self) -> &str {
        match self {
            Subject::Object(o) => &o.object_type,
            Subject::Wildcard(t) => t,
            Subject::Userset { object, .. } => &object.object_type,
        }
    }

    /// The relation of a userset subject, `None` otherwise.
    pub fn relation(&self) -> Option<&str> {
        match self {
            Subject::Userset { relation, .. } => Some(relation),
            _ => None,
        }
    }

    /// The subject as borrowed text parts, as [`split_subject`] reads them.
    pub fn text(&self) -> SubjectText<'_> {
        match self {
            Subject::Object(o) => SubjectText { subject_type: &o.object_type, id: Some(&o.id), relation: None },
            Subject::Wildcard(subject_type) => SubjectText { subject_type, id: None, relation: None },
            Subject::Userset { object, relation } => {
                SubjectText { subject_type: &object.object_type, id: Some(&object.id), relation: Some(relation) }
            }
        }
    }
}

/// A subject read from text without copying (see [`split_subject`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubjectText<'a> {
    /// The subject's type.
    pub subject_type: &'a str,
    /// The object id; `None` for the wildcard `type:*`.
    pub id: Option<&'a str>,
    /// The userset relation, for `type:id#relation`.
    pub relation: Option<&'a str>,
}

/// Reads `type:id`, `type:*` or `type:id#relation` without copying: the one parser behind
/// `Subject::from_str`.
pub fn split_subject(s: &str) -> Result<SubjectText<'_>, TupleError> {
    let bad = || TupleError::Subject(s.to_string());
    let (subject_type, rest) = split_type(s).ok_or_else(bad)?;
    if !valid_type_of(subject_type, class::of(subject_type.as_bytes())) {
        return Err(bad());
    }
    if rest == "*" {
        return Ok(SubjectText { subject_type, id: None, relation: None });
    }
    let (id, relation) = match rest.bytes().position(|byte| byte == b'#') {
        // INVARIANT: `#` is ASCII, so both cuts fall on char boundaries.
        Some(hash) => match (rest.get(..hash), rest.get(hash + 1..)) {
            (Some(id), Some(relation)) if valid_relation(relation) => (id, Some(relation)),
            _ => return Err(bad()),
        },
        None => (rest, None),
    };
    if !valid_id_of(id, class::of(id.as_bytes())) {
        return Err(bad());
    }
    Ok(SubjectText { subject_type, id: Some(id), relation })
}

impl FromStr for Subject {
    type Err = TupleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = split_subject(s)?;
        Ok(match (text.id, text.relation) {
            (None, _) => Subject::Wildcard(text.subject_type.to_string()),
            (Some(id), None) => Subject::Object(ObjectRef::new(text.subject_type, id)),
            (Some(id), Some(relation)) => {
                Subject::Userset { object: ObjectRef::new(text.subject_type, id), relation: relation.to_string() }
            }
        })
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Object(o) => write!(f, "{o}"),
            Subject::Wildcard(t) => write!(f, "{t}:*"),
            Subject::Userset { object, relation } => write!(f, "{object}#{relation}"),
        }
    }
}

/// A condition attached to a tuple: the condition's name in the model and its stored context.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TupleCondition {
    /// Name of a `condition` block in the model.
    pub name: String,
    /// Parameter values bound when the tuple was written.
    pub context: Context,
}

/// A relationship tuple: `object#relation@subject`, optionally conditioned.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuple {
    /// The object the relation is on.
    pub object: ObjectRef,
    /// The relation name.
    pub relation: String,
    /// Who holds the relation.
    pub subject: Subject,
    /// Optional condition that must hold for the tuple to count.
    pub condition: Option<TupleCondition>,
}

impl Tuple {
    /// Builds an unconditioned tuple.
    pub fn new(object: ObjectRef, relation: impl Into<String>, subject: Subject) -> Self {
        Tuple { object, relation: relation.into(), subject, condition: None }
    }

    /// Reads the three OpenFGA tuple-key strings (`object`, `relation`, `user`).
    pub fn from_parts(object: &str, relation: &str, user: &str) -> Result<Self, TupleError> {
        if !valid_relation(relation) {
            return Err(TupleError::Relation(relation.to_string()));
        }
        Ok(Tuple::new(object.parse()?, relation, user.parse()?))
    }

    /// The identity of the tuple (everything but its condition).
    pub fn key(&self) -> (ObjectRef, String, Subject) {
        (self.object.clone(), self.relation.clone(), self.subject.clone())
    }

    /// [`Tuple::key`] borrowed, for finding repeats without cloning.
    pub fn identity(&self) -> (&ObjectRef, &str, &Subject) {
        (&self.object, &self.relation, &self.subject)
    }
}

impl FromStr for Tuple {
    type Err = TupleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || TupleError::Tuple(s.to_string());
        let (lhs, user) = s.split_once('@').ok_or_else(bad)?;
        let (object, relation) = lhs.split_once('#').ok_or_else(bad)?;
        Tuple::from_parts(object, relation, user)
    }
}

impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}@{}", self.object, self.relation, self.subject)
    }
}

/// A tuple as stored: the tuple (with its optional condition) and an optional expiry time.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTuple {
    /// The relationship, possibly carrying a condition name and context.
    pub tuple: Tuple,
    /// When the tuple stops counting, milliseconds since the Unix epoch; `None` = never.
    pub expires_at_ms: Option<i64>,
}

impl StoredTuple {
    /// A stored tuple that never expires.
    pub fn new(tuple: Tuple) -> Self {
        StoredTuple { tuple, expires_at_ms: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_subject_form() {
        for s in ["document:1#viewer@user:anne", "document:1#viewer@user:*", "document:q3#viewer@group:finance#member"]
        {
            let t: Tuple = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
    }

    #[test]
    fn rejects_malformed_parts() {
        assert!("document#viewer@user:anne".parse::<Tuple>().is_err());
        assert!("document:1#viewer@user".parse::<Tuple>().is_err());
        assert!("document:1#viewer@:anne".parse::<Tuple>().is_err());
        assert!("document:1@user:anne".parse::<Tuple>().is_err());
        assert!("doc:1#viewer@group:x#".parse::<Tuple>().is_err());
        assert!("doc:*".parse::<ObjectRef>().is_err());
    }

    #[test]
    fn the_ascii_fast_path_agrees_with_the_char_rule() {
        let by_chars = |s: &str, banned: &[char]| !s.chars().any(|c| banned.contains(&c) || c.is_whitespace());
        for byte in 0u8..128 {
            let text = format!("a{}b", byte as char);
            assert_eq!(valid_id(&text), by_chars(&text, &['#', ':']), "id with byte {byte}");
            assert_eq!(valid_type(&text), by_chars(&text, &[':', '#', '@', '*']), "type with byte {byte}");
        }
        for text in ["caf\u{e9}", "a\u{a0}b", "a\u{2003}b", "\u{1F600}"] {
            assert_eq!(valid_id(text), by_chars(text, &['#', ':']), "id `{text}`");
        }
        assert!(!valid_id("a\u{a0}b"), "Unicode whitespace is refused");
    }

    /// The one-pass readers accept and refuse exactly what the readers they replaced did: a cut
    /// at the first `:` (and `#`), each part judged by the char rules.
    #[test]
    fn one_pass_splitting_agrees_with_cutting_and_char_rules() {
        fn relation_by_chars(s: &str) -> bool {
            !s.is_empty() && !s.chars().any(|c| ":#@*".contains(c) || c.is_whitespace())
        }
        fn object_by_parts(s: &str) -> Option<(&str, &str)> {
            s.split_once(':').filter(|(t, id)| valid_type(t) && valid_id(id))
        }
        fn subject_by_parts(s: &str) -> Option<SubjectText<'_>> {
            let (t, rest) = s.split_once(':').filter(|(t, _)| valid_type(t))?;
            if rest == "*" {
                return Some(SubjectText { subject_type: t, id: None, relation: None });
            }
            let (id, relation) = match rest.split_once('#') {
                Some((id, relation)) if relation_by_chars(relation) => (id, Some(relation)),
                Some(_) => return None,
                None => (rest, None),
            };
            valid_id(id).then_some(SubjectText { subject_type: t, id: Some(id), relation })
        }
        let mut texts: Vec<String> = Vec::new();
        let pieces = ["", "a", "doc", ":", "#", "@", "*", " ", "\t", "\u{b}", "\u{1c}", "\u{a0}", "é", "x:y", "r#s"];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    texts.push(format!("{a}{b}{c}"));
                    texts.push(format!("{a}:{b}{c}"));
                    texts.push(format!("{a}:{b}#{c}"));
                }
            }
        }
        for byte in 0u8..128 {
            texts.push(format!("t{}:i{}d#r{}", byte as char, byte as char, byte as char));
        }
        for text in &texts {
            assert_eq!(split_object(text).ok(), object_by_parts(text), "object `{text:?}`");
            assert_eq!(split_subject(text).ok(), subject_by_parts(text), "subject `{text:?}`");
            assert_eq!(valid_relation(text), relation_by_chars(text), "relation `{text:?}`");
        }
    }

    #[test]
    fn the_language_id_rule_rejects_commas_and_leading_stars() {
        assert!(!valid_object_id("a,b"));
        assert!(!valid_object_id("*abc"));
        assert!(valid_object_id("a*b|c@d.e+f/g-h"));
        assert!("doc:*abc".parse::<ObjectRef>().is_err(), "tuples never take a leading star either");
    }

    /// The language validators' id rule, once applied to every tuple, refused SpiceDB's ids
    /// (`extendedids.yaml`: base64 with `=`), which SpiceDB and OpenFGA's server both accept.
    #[test]
    fn spicedb_base64_ids_are_accepted_in_tuples() {
        let tuple: Tuple = "document:--=base64YWZz==#view@user:a,b".parse().unwrap();
        assert_eq!(tuple.object.id, "--=base64YWZz==");
        assert!("doc:a b".parse::<ObjectRef>().is_err());
        assert!("doc:a#b".parse::<ObjectRef>().is_err());
    }

    #[test]
    fn ids_may_contain_slashes_and_dots() {
        let o: ObjectRef = "file:/a/b.txt".parse().unwrap();
        assert_eq!(o.id, "/a/b.txt");
    }
}
