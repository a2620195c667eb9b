//! Byte layout of [`super::SledStore`]: keys and values in its single sled tree.
//!
//! Keys: one prefix byte per keyspace, then the store id, then the keyspace's own components.
//! Strings are escaped (`0x00` → `0x00 0xFF`) and terminated by `0x00 0x00`, so a component is
//! never a prefix of a different component and byte order equals string order; numbers are
//! big-endian, so byte order equals numeric order.
//!
//! | keyspace   | key                                                         | value                 |
//! |------------|-------------------------------------------------------------|-----------------------|
//! | store      | `0x01` store                                                | v1 JSON record        |
//! | revision   | `0x02` store                                                | v1 u64 BE             |
//! | tuple      | `0x03` store, object type, object id, relation, user string | v1 JSON cond, expiry, write time; v2 write time |
//! | changelog  | `0x04` store, revision u64 BE, seq u32 BE                   | v1 JSON entry, or v2 JSON run of entries |
//! | model      | `0x05` store, append index u64 BE                           | v1 JSON id + text     |
//! | assertions | `0x06` store, model id                                      | v1 UTF-8 text         |
//! | checkpoint | `0x07` store, header or generation + chunk (see `checkpoint`) | v1 header or chunk  |
//! | changelog by type | `0x08` store, object type, revision u64 BE, seq u32 BE | v1 empty, or v2 JSON entries with seqs |
//! | layout     | `0x00` `layout`                                             | v1 u32 BE             |
//!
//! The changelog by type repeats the changelog per object type, so a feed filtered by type reads
//! only its own entries: for each changelog row and each object type among its entries, one row
//! keyed by that type and the changelog row's cursor. Version 1 (no body) says that at least half
//! of the entries of the changelog row at the same cursor are of this type, so they are read there
//! (keeping those of this type) and not stored twice: a write of one type, such as a bulk import,
//! stores nothing twice, and of such a row a read decodes at most twice the entries it keeps.
//! Version 2 holds the entries of a type that is a minority of its changelog row, each with its
//! seq. A type's rows never overlap: each holds entries between its key and the next one's. They
//! are written in the same batch as the changelog row.
//! The layout key (outside every store's keyspaces) records which of these layout additions every
//! store has: [`LAYOUT`] 1 means the changelog by type is complete, and a data dir without the
//! key was written before it existed (`SledStore::open` then builds the rows and writes the key).
//!
//! Tuple values gained `written_at_ms` (the write's timestamp) without a version bump: the field is
//! optional, so values written by older builds still decode (with no write time). Changelog values
//! gained `actor` (who wrote the entry) the same way: older entries decode with no actor.
//! A changelog value of version 2 holds a run of consecutive entries of one write (the key's seq is
//! the first one's; the rest follow at seq+1, seq+2, …) sharing the write's timestamp and actor, so a
//! large write stores one row per [`CHANGE_RUN`] entries instead of one per entry; version 1 rows
//! (one entry each) are still written for one-entry runs and read as before.
//! A tuple value of version 2 is the write time alone (i64 BE, 9 bytes with the version): the
//! common tuple, with no condition and no expiry, in a value sled keeps inline instead of 32 bytes
//! of JSON it allocates for; tuples with a condition or expiry keep version 1, and version 1 values
//! of older builds (plain ones too) still decode.
//!
//! Invariant: every value starts with a version byte; `decode_*(encode_*(x)) == x`; decoding
//! never panics — bad bytes become [`StoreError::Corrupt`].
//! Must not import anything in the crate but `crate::tuple` and its siblings in `store`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{ChangeCursor, ChangeOperation, ChangeRecord, StoreError, StoreRecord, StoredTuple};
use crate::tuple::{Context, ObjectRef, Subject, Tuple, TupleCondition};

/// Keyspace of store records.
pub(crate) const STORE: u8 = 0x01;
/// Keyspace of revision counters.
pub(crate) const REVISION: u8 = 0x02;
/// Keyspace of current tuples.
pub(crate) const TUPLE: u8 = 0x03;
/// Keyspace of changelog entries.
pub(crate) const CHANGE: u8 = 0x04;
/// Keyspace of model versions.
pub(crate) const MODEL: u8 = 0x05;
/// Keyspace of assertions.
pub(crate) const ASSERTION: u8 = 0x06;

/// Keyspace of checkpoints (layout in `checkpoint`).
pub(crate) const CHECKPOINT: u8 = 0x07;

/// Keyspace of the changelog by object type.
pub(crate) const CHANGE_BY_TYPE: u8 = 0x08;

/// Every keyspace that holds per-store data (all of them).
pub(crate) const KEYSPACES: [u8; 8] = [STORE, REVISION, TUPLE, CHANGE, MODEL, ASSERTION, CHECKPOINT, CHANGE_BY_TYPE];

/// Key of the data dir's layout version (see the module doc).
pub(crate) const LAYOUT_KEY: &[u8] = b"\x00layout";

/// The layout this build writes: 1 = every store's changelog by type is complete.
pub(crate) const LAYOUT: u32 = 1;

/// The value encoding version of every value but changelog runs.
const V1: u8 = 1;
/// The value encoding version of a changelog run (several entries in one row).
const V2: u8 = 2;

/// Most changelog entries in one row.
pub(crate) const CHANGE_RUN: usize = 256;

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

// ---------------------------------------------------------------- keys

/// A record as a value of its own tree (decisions, approvals): version byte [`V1`], then its
/// JSON; `what` names the record in an error.
pub(super) fn encode_json_v1<T: Serialize>(what: &str, record: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![V1];
    serde_json::to_writer(&mut out, record).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))?;
    Ok(out)
}

/// A record from a value [`encode_json_v1`] wrote.
pub(super) fn decode_json_v1<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&V1, body)) => serde_json::from_slice(body).map_err(|e| StoreError::Corrupt(format!("{what}: {e}"))),
        Some((v, _)) => Err(StoreError::Corrupt(format!("{what}: unknown encoding version `{v}`"))),
        None => Err(StoreError::Corrupt(format!("{what}: empty value"))),
    }
}

/// Appends `s` escaped and terminated, so byte order equals string order (see the module doc).
pub(super) fn push_str(buf: &mut Vec<u8>, s: &str) {
    push_parts(buf, &[s]);
}

/// `space` followed by the store id: the prefix of every key of that store in that keyspace.
pub(crate) fn prefix(space: u8, store_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(store_id.len() + 3);
    k.push(space);
    push_str(&mut k, store_id);
    k
}

/// Key of a store's record.
pub(crate) fn store_key(store_id: &str) -> Vec<u8> {
    prefix(STORE, store_id)
}

/// Key of a store's revision counter.
pub(crate) fn revision_key(store_id: &str) -> Vec<u8> {
    prefix(REVISION, store_id)
}

/// Key of a tuple (its identity: everything but condition and expiry).
pub(crate) fn tuple_key(store_id: &str, t: &Tuple) -> Vec<u8> {
    let mut k = prefix(TUPLE, store_id);
    push_str(&mut k, &t.object.object_type);
    push_str(&mut k, &t.object.id);
    push_str(&mut k, &t.relation);
    // The subject as its text (`Subject`'s `Display`), escaped and terminated like `push_str`.
    match &t.subject {
        Subject::Object(o) => push_parts(&mut k, &[&o.object_type, ":", &o.id]),
        Subject::Wildcard(ty) => push_parts(&mut k, &[ty, ":*"]),
        Subject::Userset { object, relation } => {
            push_parts(&mut k, &[&object.object_type, ":", &object.id, "#", relation]);
        }
    }
    k
}

/// [`push_str`] of the concatenation of `parts`, without building it.
fn push_parts(buf: &mut Vec<u8>, parts: &[&str]) {
    for part in parts {
        for &b in part.as_bytes() {
            if b == 0 {
                buf.extend_from_slice(&[0, 0xFF]);
            } else {
                buf.push(b);
            }
        }
    }
    buf.extend_from_slice(&[0, 0]);
}

/// Key of a changelog entry.
pub(crate) fn change_key(store_id: &str, cursor: ChangeCursor) -> Vec<u8> {
    let mut k = prefix(CHANGE, store_id);
    k.extend_from_slice(&cursor.revision.to_be_bytes());
    k.extend_from_slice(&cursor.seq.to_be_bytes());
    k
}

/// Prefix of a store's changelog rows by object type for `object_type`.
pub(crate) fn change_by_type_prefix(store_id: &str, object_type: &str) -> Vec<u8> {
    let mut k = prefix(CHANGE_BY_TYPE, store_id);
    push_str(&mut k, object_type);
    k
}

/// Key of the row of `object_type`'s entries of the changelog row at `cursor`.
pub(crate) fn change_by_type_key(store_id: &str, object_type: &str, cursor: ChangeCursor) -> Vec<u8> {
    let mut k = change_by_type_prefix(store_id, object_type);
    k.extend_from_slice(&cursor.revision.to_be_bytes());
    k.extend_from_slice(&cursor.seq.to_be_bytes());
    k
}

/// Key of the `index`-th model version of a store.
pub(crate) fn model_key(store_id: &str, index: u64) -> Vec<u8> {
    let mut k = prefix(MODEL, store_id);
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Key of a model's assertions.
pub(crate) fn assertion_key(store_id: &str, model_id: &str) -> Vec<u8> {
    let mut k = prefix(ASSERTION, store_id);
    push_str(&mut k, model_id);
    k
}

/// Reads the components of a key after its store prefix.
struct KeyReader<'a> {
    rest: &'a [u8],
}

impl<'a> KeyReader<'a> {
    fn new(rest: &'a [u8]) -> Self {
        KeyReader { rest }
    }

    fn str(&mut self) -> Result<String, StoreError> {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            match (self.rest.get(i), self.rest.get(i + 1)) {
                (Some(0), Some(0)) => break,
                (Some(0), Some(0xFF)) => {
                    out.push(0);
                    i += 2;
                }
                (Some(0), _) | (None, _) => return Err(corrupt("key", "unterminated or badly escaped string")),
                (Some(&b), _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        self.rest = self.rest.get(i + 2..).unwrap_or_default();
        String::from_utf8(out).map_err(|e| corrupt("key", e))
    }

    /// [`KeyReader::str`] borrowing from the key when the component holds no escaped `0x00`.
    fn str_ref(&mut self) -> Result<Cow<'a, str>, StoreError> {
        let rest = self.rest;
        let i = rest.iter().position(|&b| b == 0).ok_or_else(|| corrupt("key", "unterminated string"))?;
        match rest.get(i + 1) {
            Some(0) => {}
            // An escaped 0x00: take the copying path.
            Some(_) => return self.str().map(Cow::Owned),
            None => return Err(corrupt("key", "unterminated string")),
        }
        let text = std::str::from_utf8(rest.get(..i).unwrap_or_default()).map_err(|e| corrupt("key", e))?;
        self.rest = rest.get(i + 2..).unwrap_or_default();
        Ok(Cow::Borrowed(text))
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let (head, tail) = self.rest.split_at_checked(N).ok_or_else(|| corrupt("key", "truncated number"))?;
        self.rest = tail;
        head.try_into().map_err(|_| corrupt("key", "truncated number"))
    }

    fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_be_bytes(self.bytes()?))
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_be_bytes(self.bytes()?))
    }

    fn end(&self) -> Result<(), StoreError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(corrupt("key", "trailing bytes"))
        }
    }
}

/// The changelog cursor in a changelog key, given the key without its store prefix.
pub(crate) fn decode_change_key(rest: &[u8]) -> Result<ChangeCursor, StoreError> {
    let mut r = KeyReader::new(rest);
    let cursor = ChangeCursor { revision: r.u64()?, seq: r.u32()? };
    r.end()?;
    Ok(cursor)
}

/// The store id in a store record's key, given the key without its keyspace byte.
pub(crate) fn decode_store_key(rest: &[u8]) -> Result<String, StoreError> {
    let mut r = KeyReader::new(rest);
    let store_id = r.str()?;
    r.end()?;
    Ok(store_id)
}

/// The append index in a model key, given the key without its store prefix.
pub(crate) fn decode_model_key(rest: &[u8]) -> Result<u64, StoreError> {
    let mut r = KeyReader::new(rest);
    let index = r.u64()?;
    r.end()?;
    Ok(index)
}

// ---------------------------------------------------------------- values

fn versioned<T: Serialize>(what: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![V1];
    serde_json::to_writer(&mut out, value).map_err(|e| corrupt(what, e))?;
    Ok(out)
}

fn unversioned<'a>(what: &str, bytes: &'a [u8]) -> Result<&'a [u8], StoreError> {
    match bytes.split_first() {
        Some((&V1, body)) => Ok(body),
        Some((v, _)) => Err(corrupt(what, format!("unknown encoding version `{v}`"))),
        None => Err(corrupt(what, "empty value")),
    }
}

/// `body` behind the version byte, as is (no JSON).
fn versioned_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(V1);
    out.extend_from_slice(body);
    out
}

/// The body of a [`versioned_bytes`] value that must be exactly `N` bytes long.
fn unversioned_array<const N: usize>(what: &str, bytes: &[u8]) -> Result<[u8; N], StoreError> {
    unversioned(what, bytes)?.try_into().map_err(|_| corrupt(what, format!("not {N} bytes")))
}

fn from_json<'a, T: Deserialize<'a>>(what: &str, bytes: &'a [u8]) -> Result<T, StoreError> {
    serde_json::from_slice(unversioned(what, bytes)?).map_err(|e| corrupt(what, e))
}

#[derive(Serialize, Deserialize)]
struct WireStore {
    id: String,
    name: String,
    created_at_ms: i64,
    updated_at_ms: i64,
}

/// Encodes a store record.
pub(crate) fn encode_store(s: &StoreRecord) -> Result<Vec<u8>, StoreError> {
    let w = WireStore {
        id: s.id.clone(),
        name: s.name.clone(),
        created_at_ms: s.created_at_ms,
        updated_at_ms: s.updated_at_ms,
    };
    versioned("store record", &w)
}

/// Decodes a store record.
pub(crate) fn decode_store(bytes: &[u8]) -> Result<StoreRecord, StoreError> {
    let w: WireStore = from_json("store record", bytes)?;
    Ok(StoreRecord { id: w.id, name: w.name, created_at_ms: w.created_at_ms, updated_at_ms: w.updated_at_ms })
}

/// Encodes a revision counter.
pub(crate) fn encode_revision(revision: u64) -> Vec<u8> {
    versioned_bytes(&revision.to_be_bytes())
}

/// Decodes a revision counter.
pub(crate) fn decode_revision(bytes: &[u8]) -> Result<u64, StoreError> {
    Ok(u64::from_be_bytes(unversioned_array("revision", bytes)?))
}

#[derive(Serialize, Deserialize)]
struct WireCondition {
    name: String,
    #[serde(default)]
    context: Context,
}

#[derive(Serialize, Deserialize)]
struct WireTupleValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    condition: Option<WireCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    written_at_ms: Option<i64>,
}

fn wire_condition(t: &Tuple) -> Option<WireCondition> {
    t.condition.as_ref().map(|c| WireCondition { name: c.name.clone(), context: c.context.clone() })
}

fn tuple_condition(c: Option<WireCondition>) -> Option<TupleCondition> {
    c.map(|c| TupleCondition { name: c.name, context: c.context })
}

fn subject(what: &str, s: &str) -> Result<Subject, StoreError> {
    s.parse().map_err(|e| corrupt(what, e))
}

/// Encodes the value of a tuple key: its condition, expiry and the time it was written.
pub(crate) fn encode_tuple_value(t: &StoredTuple, written_at_ms: i64) -> Result<Vec<u8>, StoreError> {
    if t.tuple.condition.is_none() && t.expires_at_ms.is_none() {
        // Version 2: the write time alone (the common case on bulk loads).
        let mut out = Vec::with_capacity(9);
        out.push(V2);
        out.extend_from_slice(&written_at_ms.to_be_bytes());
        return Ok(out);
    }
    let value = WireTupleValue {
        condition: wire_condition(&t.tuple),
        expires_at_ms: t.expires_at_ms,
        written_at_ms: Some(written_at_ms),
    };
    versioned("tuple", &value)
}

/// The write time in a version 2 tuple value; `None` for any other value.
fn plain_written_at(value: &[u8]) -> Option<i64> {
    let body: [u8; 8] = value.strip_prefix(&[V2])?.try_into().ok()?;
    Some(i64::from_be_bytes(body))
}

/// Decodes a tuple value of either version (see the module doc).
fn decode_wire_tuple_value(value: &[u8]) -> Result<WireTupleValue, StoreError> {
    if value.first() == Some(&V2) {
        let written_at_ms = plain_written_at(value).ok_or_else(|| corrupt("tuple", "version 2 value not 8 bytes"))?;
        return Ok(WireTupleValue { condition: None, expires_at_ms: None, written_at_ms: Some(written_at_ms) });
    }
    from_json("tuple", value)
}

/// The write time in a tuple value; `None` for values written before times were recorded.
pub(crate) fn decode_tuple_written_at(value: &[u8]) -> Result<Option<i64>, StoreError> {
    Ok(decode_wire_tuple_value(value)?.written_at_ms)
}

/// Decodes a tuple from its key (without the store prefix) and value.
pub(crate) fn decode_tuple(key_rest: &[u8], value: &[u8]) -> Result<StoredTuple, StoreError> {
    let mut r = KeyReader::new(key_rest);
    let object = ObjectRef::new(r.str()?, r.str()?);
    let relation = r.str()?;
    let subject = subject("tuple key", &r.str()?)?;
    r.end()?;
    let v = decode_wire_tuple_value(value)?;
    let tuple = Tuple { object, relation, subject, condition: tuple_condition(v.condition) };
    Ok(StoredTuple { tuple, expires_at_ms: v.expires_at_ms })
}

/// The components of a tuple key (without the store prefix), borrowed where no byte is escaped:
/// object type, object id, relation and user string.
pub(crate) type TupleKeyParts<'a> = (Cow<'a, str>, Cow<'a, str>, Cow<'a, str>, Cow<'a, str>);

/// Splits a tuple key (without its store prefix) into its components without copying them.
pub(crate) fn decode_tuple_key_parts(key_rest: &[u8]) -> Result<TupleKeyParts<'_>, StoreError> {
    let mut r = KeyReader::new(key_rest);
    let parts = (r.str_ref()?, r.str_ref()?, r.str_ref()?, r.str_ref()?);
    r.end()?;
    Ok(parts)
}

/// The condition and expiry in a tuple value. Values holding only a write time (the common
/// case: no condition, no expiry; version 2, or version 1 from older builds) are recognised
/// without a JSON parse.
pub(crate) fn decode_tuple_value(value: &[u8]) -> Result<(Option<TupleCondition>, Option<i64>), StoreError> {
    const PLAIN: &[u8] = b"{\"written_at_ms\":";
    if plain_written_at(value).is_some() {
        return Ok((None, None));
    }
    if let Some(body) = value.strip_prefix(&[V1]) {
        let digits = body.strip_prefix(PLAIN).and_then(|rest| rest.strip_suffix(b"}"));
        let digits = digits.map(|d| d.strip_prefix(b"-").unwrap_or(d));
        if body == b"{}" || digits.is_some_and(|d| !d.is_empty() && d.iter().all(u8::is_ascii_digit)) {
            return Ok((None, None));
        }
    }
    let v = decode_wire_tuple_value(value)?;
    Ok((tuple_condition(v.condition), v.expires_at_ms))
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum WireOperation {
    Write,
    Delete,
}

/// A changelog entry on its own (version 1): the fields of a run's entry, then when and by whom.
#[derive(Serialize, Deserialize)]
struct WireChange {
    #[serde(flatten)]
    entry: WireRunEntry,
    timestamp_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
}

/// Encodes a changelog entry's value (its cursor lives in the key).
pub(crate) fn encode_change(
    op: ChangeOperation,
    t: &StoredTuple,
    timestamp_ms: i64,
    actor: Option<&str>,
) -> Result<Vec<u8>, StoreError> {
    let w = WireChange { entry: wire_run_entry(op, t), timestamp_ms, actor: actor.map(str::to_string) };
    versioned("change", &w)
}

#[derive(Serialize, Deserialize)]
struct WireRunEntry {
    operation: WireOperation,
    object_type: String,
    object_id: String,
    relation: String,
    user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    condition: Option<WireCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at_ms: Option<i64>,
}

#[derive(Serialize, Deserialize)]
struct WireRun {
    timestamp_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
    entries: Vec<WireRunEntry>,
}

/// A row of the changelog by type for a changelog row of mixed types: this type's entries of it,
/// each at its seq in `seqs`.
#[derive(Serialize, Deserialize)]
struct WireTypeRun {
    timestamp_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    actor: Option<String>,
    seqs: Vec<u32>,
    entries: Vec<WireRunEntry>,
}

fn wire_operation(op: ChangeOperation) -> WireOperation {
    match op {
        ChangeOperation::Write => WireOperation::Write,
        ChangeOperation::Delete => WireOperation::Delete,
    }
}

fn change_operation(op: WireOperation) -> ChangeOperation {
    match op {
        WireOperation::Write => ChangeOperation::Write,
        WireOperation::Delete => ChangeOperation::Delete,
    }
}

/// Encodes a run of consecutive changelog entries of one write as one value: version 1 (one
/// entry, as [`encode_change`]) when the run has one entry, else version 2.
pub(crate) fn encode_change_run(
    entries: &[(ChangeOperation, &StoredTuple)],
    timestamp_ms: i64,
    actor: Option<&str>,
) -> Result<Vec<u8>, StoreError> {
    if let [(op, t)] = entries {
        return encode_change(*op, t, timestamp_ms, actor);
    }
    let run = WireRun {
        timestamp_ms,
        actor: actor.map(str::to_string),
        entries: entries.iter().map(|&(op, t)| wire_run_entry(op, t)).collect(),
    };
    let mut out = vec![V2];
    serde_json::to_writer(&mut out, &run).map_err(|e| corrupt("change run", e))?;
    Ok(out)
}

/// Decodes the changelog entries of one row (one for version 1, a run for version 2); the first
/// sits at `cursor`, the others at the following seqs.
pub(crate) fn decode_change_row(cursor: ChangeCursor, value: &[u8]) -> Result<Vec<ChangeRecord>, StoreError> {
    let Some(body) = value.strip_prefix(&[V2]) else {
        return Ok(vec![decode_change(cursor, value)?]);
    };
    let run: WireRun = serde_json::from_slice(body).map_err(|e| corrupt("change run", e))?;
    let mut out = Vec::with_capacity(run.entries.len());
    for (i, e) in run.entries.into_iter().enumerate() {
        let seq = u32::try_from(i)
            .ok()
            .and_then(|i| cursor.seq.checked_add(i))
            .ok_or_else(|| corrupt("change run", "seq overflow"))?;
        let at = ChangeCursor { revision: cursor.revision, seq };
        out.push(run_entry_record("change run", at, e, run.timestamp_ms, run.actor.clone())?);
    }
    Ok(out)
}

/// The wire form of one entry of a run.
fn wire_run_entry(op: ChangeOperation, t: &StoredTuple) -> WireRunEntry {
    WireRunEntry {
        operation: wire_operation(op),
        object_type: t.tuple.object.object_type.clone(),
        object_id: t.tuple.object.id.clone(),
        relation: t.tuple.relation.clone(),
        user: t.tuple.subject.to_string(),
        condition: wire_condition(&t.tuple),
        expires_at_ms: t.expires_at_ms,
    }
}

/// The changelog entry of one entry of a run (or of a lone entry) at `cursor`; `what` names the
/// value in errors.
fn run_entry_record(
    what: &str,
    cursor: ChangeCursor,
    e: WireRunEntry,
    timestamp_ms: i64,
    actor: Option<String>,
) -> Result<ChangeRecord, StoreError> {
    let tuple = Tuple {
        object: ObjectRef::new(e.object_type, e.object_id),
        relation: e.relation,
        subject: subject(what, &e.user)?,
        condition: tuple_condition(e.condition),
    };
    Ok(ChangeRecord {
        cursor,
        operation: change_operation(e.operation),
        tuple: StoredTuple { tuple, expires_at_ms: e.expires_at_ms },
        timestamp_ms,
        actor,
    })
}

/// A key and its value.
pub(crate) type KeyValue = (Vec<u8>, Vec<u8>);

/// The rows of the changelog by type for the changelog row at `cursor` holding `entries` (see the
/// module doc): one (key, value) per object type among them, in key order.
pub(crate) fn changes_by_type_rows(
    store_id: &str,
    cursor: ChangeCursor,
    entries: &[(ChangeOperation, &StoredTuple)],
    timestamp_ms: i64,
    actor: Option<&str>,
) -> Result<Vec<KeyValue>, StoreError> {
    type Entry<'e> = (u32, ChangeOperation, &'e StoredTuple);
    let mut by_type: std::collections::BTreeMap<&str, Vec<Entry<'_>>> = std::collections::BTreeMap::new();
    for (i, &(op, t)) in entries.iter().enumerate() {
        let seq = u32::try_from(i)
            .ok()
            .and_then(|i| cursor.seq.checked_add(i))
            .ok_or_else(|| corrupt("change by type", "seq overflow"))?;
        by_type.entry(t.tuple.object.object_type.as_str()).or_default().push((seq, op, t));
    }
    let mut rows = Vec::with_capacity(by_type.len());
    for (object_type, of_type) in by_type {
        let key = change_by_type_key(store_id, object_type, cursor);
        if of_type.len() * 2 >= entries.len() {
            rows.push((key, vec![V1]));
            continue;
        }
        let run = WireTypeRun {
            timestamp_ms,
            actor: actor.map(str::to_string),
            seqs: of_type.iter().map(|&(seq, _, _)| seq).collect(),
            entries: of_type.iter().map(|&(_, op, t)| wire_run_entry(op, t)).collect(),
        };
        let mut value = vec![V2];
        serde_json::to_writer(&mut value, &run).map_err(|e| corrupt("change by type", e))?;
        rows.push((key, value));
    }
    Ok(rows)
}

/// A row of the changelog by type, decoded.
#[derive(Debug, PartialEq)]
pub(crate) enum ChangesByType {
    /// At least half the entries of the changelog row at the same cursor are of this type: read
    /// them there, keeping those of this type.
    InChangelogRow,
    /// This type's entries of a changelog row where it is a minority, in order.
    Entries(Vec<ChangeRecord>),
}

/// Decodes a row of the changelog by type keyed at `cursor` (of its changelog row).
pub(crate) fn decode_changes_by_type(cursor: ChangeCursor, value: &[u8]) -> Result<ChangesByType, StoreError> {
    match value.split_first() {
        Some((&V1, [])) => Ok(ChangesByType::InChangelogRow),
        Some((&V2, body)) => {
            let run: WireTypeRun = serde_json::from_slice(body).map_err(|e| corrupt("change by type", e))?;
            if run.seqs.len() != run.entries.len() {
                return Err(corrupt("change by type", "seqs and entries differ in number"));
            }
            let mut out = Vec::with_capacity(run.entries.len());
            for (seq, e) in run.seqs.into_iter().zip(run.entries) {
                let at = ChangeCursor { revision: cursor.revision, seq };
                out.push(run_entry_record("change run", at, e, run.timestamp_ms, run.actor.clone())?);
            }
            Ok(ChangesByType::Entries(out))
        }
        Some((v, _)) => Err(corrupt("change by type", format!("unknown encoding version `{v}`"))),
        None => Err(corrupt("change by type", "empty value")),
    }
}

/// Encodes the layout version.
pub(crate) fn encode_layout(layout: u32) -> Vec<u8> {
    versioned_bytes(&layout.to_be_bytes())
}

/// Decodes the layout version.
pub(crate) fn decode_layout(bytes: &[u8]) -> Result<u32, StoreError> {
    Ok(u32::from_be_bytes(unversioned_array("layout", bytes)?))
}

/// Decodes a changelog entry from its cursor and value.
pub(crate) fn decode_change(cursor: ChangeCursor, value: &[u8]) -> Result<ChangeRecord, StoreError> {
    let w: WireChange = from_json("change", value)?;
    run_entry_record("change", cursor, w.entry, w.timestamp_ms, w.actor)
}

#[derive(Serialize, Deserialize)]
struct WireModel {
    id: String,
    json: String,
}

/// Encodes a model version.
pub(crate) fn encode_model(model_id: &str, model_json: &str) -> Result<Vec<u8>, StoreError> {
    versioned("model", &WireModel { id: model_id.to_string(), json: model_json.to_string() })
}

/// Decodes a model version into (model_id, model_json).
pub(crate) fn decode_model(bytes: &[u8]) -> Result<(String, String), StoreError> {
    let w: WireModel = from_json("model", bytes)?;
    Ok((w.id, w.json))
}

/// Encodes opaque text (assertions).
pub(crate) fn encode_text(text: &str) -> Vec<u8> {
    versioned_bytes(text.as_bytes())
}

/// Decodes opaque text (assertions).
pub(crate) fn decode_text(bytes: &[u8]) -> Result<String, StoreError> {
    let body = unversioned("assertions", bytes)?;
    String::from_utf8(body.to_vec()).map_err(|e| corrupt("assertions", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(s: &str) -> StoredTuple {
        StoredTuple::new(s.parse().unwrap())
    }

    #[test]
    fn string_components_keep_order_and_stay_unambiguous() {
        let mut a = Vec::new();
        push_str(&mut a, "a");
        let mut ab = Vec::new();
        push_str(&mut ab, "ab");
        let mut a0 = Vec::new();
        push_str(&mut a0, "a\0");
        assert!(a < a0 && a0 < ab);
        assert!(!ab.starts_with(&a));
        let mut r = KeyReader::new(&a0);
        assert_eq!(r.str().unwrap(), "a\0");
        r.end().unwrap();
    }

    #[test]
    fn store_prefixes_do_not_overlap() {
        let t: Tuple = "doc:1#viewer@user:anne".parse().unwrap();
        assert!(!tuple_key("ab", &t).starts_with(&prefix(TUPLE, "a")));
        assert_eq!(decode_store_key(&store_key("a\0b")[1..]).unwrap(), "a\0b");
        assert!(tuple_key("a", &t).starts_with(&prefix(TUPLE, "a")));
    }

    #[test]
    fn tuples_round_trip_through_key_and_value() {
        let mut t = stored("doc:1#viewer@group:eng#member");
        let mut context = Context::new();
        context.insert("ip".into(), serde_json::json!("10.0.0.1"));
        t.tuple.condition = Some(TupleCondition { name: "in_range".into(), context });
        t.expires_at_ms = Some(42);
        let key = tuple_key("s", &t.tuple);
        let value = encode_tuple_value(&t, 1_700_000_000_000).unwrap();
        assert_eq!(decode_tuple(&key[prefix(TUPLE, "s").len()..], &value).unwrap(), t);
        assert_eq!(decode_tuple_written_at(&value).unwrap(), Some(1_700_000_000_000));
    }

    #[test]
    fn tuple_values_from_before_write_times_still_decode() {
        let old = b"\x01{\"expires_at_ms\":42}";
        let mut r = Vec::new();
        for s in ["doc", "1", "viewer", "user:anne"] {
            push_str(&mut r, s);
        }
        assert_eq!(decode_tuple(&r, old).unwrap().expires_at_ms, Some(42));
        assert_eq!(decode_tuple_written_at(old).unwrap(), None);
    }

    #[test]
    fn borrowed_key_parts_and_plain_values_decode_like_the_full_path() {
        for text in ["doc:1#viewer@group:eng#member", "doc:1#viewer@user:*"] {
            let mut t = stored(text);
            let key = tuple_key("s", &t.tuple);
            let rest = &key[prefix(TUPLE, "s").len()..];
            let (ty, id, rel, user) = decode_tuple_key_parts(rest).unwrap();
            let full = decode_tuple(rest, &encode_tuple_value(&t, 5).unwrap()).unwrap();
            assert_eq!((&*ty, &*id, &*rel, &*user), (&*full.tuple.object.object_type, "1", "viewer", &text[13..]));
            assert_eq!(decode_tuple_value(&encode_tuple_value(&t, -5).unwrap()).unwrap(), (None, None));
            t.expires_at_ms = Some(42);
            t.tuple.condition = Some(TupleCondition { name: "c".into(), context: Context::new() });
            let value = encode_tuple_value(&t, 5).unwrap();
            assert_eq!(decode_tuple_value(&value).unwrap(), (t.tuple.condition.clone(), Some(42)));
        }
        assert_eq!(decode_tuple_value(b"\x01{}").unwrap(), (None, None));
        assert_eq!(decode_tuple_value(b"\x01{\"expires_at_ms\":7}").unwrap(), (None, Some(7)));
        assert!(matches!(decode_tuple_value(b"\x01{\"written_at_ms\":}"), Err(StoreError::Corrupt(_))));
        let mut escaped = Vec::new();
        for s in ["doc", "a\0b", "viewer", "user:anne"] {
            push_str(&mut escaped, s);
        }
        assert_eq!(&*decode_tuple_key_parts(&escaped).unwrap().1, "a\0b");
        assert!(matches!(decode_tuple_key_parts(b"doc\0\0x"), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn changes_round_trip() {
        let t = stored("doc:1#viewer@user:*");
        let cursor = ChangeCursor { revision: 7, seq: 3 };
        let key = change_key("s", cursor);
        let rest = &key[prefix(CHANGE, "s").len()..];
        assert_eq!(decode_change_key(rest).unwrap(), cursor);
        let c = decode_change(cursor, &encode_change(ChangeOperation::Delete, &t, 9, Some("ops")).unwrap()).unwrap();
        let actor = Some("ops".to_string());
        assert_eq!(
            c,
            ChangeRecord { cursor, operation: ChangeOperation::Delete, tuple: t.clone(), timestamp_ms: 9, actor }
        );
        let anonymous = decode_change(cursor, &encode_change(ChangeOperation::Write, &t, 9, None).unwrap()).unwrap();
        assert_eq!(anonymous.actor, None);
    }

    #[test]
    fn plain_tuple_values_and_keys_match_the_serde_and_display_forms() {
        for text in ["doc:1#viewer@user:anne", "doc:1#viewer@user:*", "doc:1#viewer@group:e\0g#member"] {
            let t = StoredTuple::new(Tuple::new(ObjectRef::new("doc", "1"), "viewer", subject_unchecked(&text[13..])));
            let value = WireTupleValue { condition: None, expires_at_ms: None, written_at_ms: Some(-12) };
            let plain = encode_tuple_value(&t, -12).unwrap();
            assert_eq!(plain, [&[V2][..], &(-12_i64).to_be_bytes()].concat());
            // What older builds wrote for the same tuple decodes to the same.
            let old = versioned("tuple", &value).unwrap();
            let rest = &tuple_key("s", &t.tuple)[prefix(TUPLE, "s").len()..];
            assert_eq!(decode_tuple(rest, &plain).ok(), decode_tuple(rest, &old).ok());
            assert_eq!(decode_tuple_written_at(&plain).unwrap(), Some(-12));
            assert_eq!(decode_tuple_written_at(&old).unwrap(), Some(-12));
            assert_eq!(decode_tuple_value(&plain).unwrap(), (None, None));
            assert_eq!(decode_tuple_value(&old).unwrap(), (None, None));
            let mut key = prefix(TUPLE, "s");
            for part in ["doc", "1", "viewer", &t.tuple.subject.to_string()] {
                push_str(&mut key, part);
            }
            assert_eq!(tuple_key("s", &t.tuple), key);
        }
    }

    /// A subject from text, allowing a NUL in the id (which the parser refuses) to test escaping.
    fn subject_unchecked(text: &str) -> Subject {
        let (ty, rest) = text.split_once(':').unwrap();
        match rest.split_once('#') {
            _ if rest == "*" => Subject::Wildcard(ty.into()),
            Some((id, relation)) => Subject::Userset { object: ObjectRef::new(ty, id), relation: relation.into() },
            None => Subject::Object(ObjectRef::new(ty, rest)),
        }
    }

    #[test]
    fn change_runs_round_trip_entry_by_entry() {
        let a = stored("doc:1#viewer@user:*");
        let mut b = stored("doc:2#viewer@group:eng#member");
        b.expires_at_ms = Some(8);
        let entries = [(ChangeOperation::Delete, &a), (ChangeOperation::Write, &b)];
        let cursor = ChangeCursor { revision: 4, seq: 256 };
        let rows = decode_change_row(cursor, &encode_change_run(&entries, 9, Some("ops")).unwrap()).unwrap();
        let expected: Vec<ChangeRecord> = entries
            .iter()
            .enumerate()
            .map(|(i, (op, t))| {
                let c = ChangeCursor { revision: 4, seq: 256 + i as u32 };
                decode_change(c, &encode_change(*op, t, 9, Some("ops")).unwrap()).unwrap()
            })
            .collect();
        assert_eq!(rows, expected);
        let single = encode_change_run(&entries[..1], 9, None).unwrap();
        assert_eq!(single[0], V1);
        assert_eq!(decode_change_row(cursor, &single).unwrap().len(), 1);
        assert!(matches!(decode_change_row(cursor, b"\x02{}"), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn rows_by_type_hold_a_minority_type_or_point_at_the_changelog_row() {
        let (a, b, c) =
            (stored("doc:1#viewer@user:*"), stored("folder:2#viewer@user:ann"), stored("doc:3#owner@user:bo"));
        let cursor = ChangeCursor { revision: 4, seq: 256 };
        let mixed = [(ChangeOperation::Delete, &a), (ChangeOperation::Write, &b), (ChangeOperation::Write, &c)];
        let changelog = decode_change_row(cursor, &encode_change_run(&mixed, 9, Some("ops")).unwrap()).unwrap();
        let rows = changes_by_type_rows("s", cursor, &mixed, 9, Some("ops")).unwrap();
        let keys: Vec<_> = rows.iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(keys, [change_by_type_key("s", "doc", cursor), change_by_type_key("s", "folder", cursor)]);
        let rest = &keys[1][change_by_type_prefix("s", "folder").len()..];
        // A key of the changelog by type ends in its cursor, as a changelog key does.
        assert_eq!(decode_change_key(rest).unwrap(), cursor);
        let decoded: Vec<_> = rows.iter().map(|(_, v)| decode_changes_by_type(cursor, v).unwrap()).collect();
        assert_eq!(decoded, [ChangesByType::InChangelogRow, ChangesByType::Entries(vec![changelog[1].clone()])]);
        let one_type = changes_by_type_rows("s", cursor, &[mixed[0], mixed[2]], 9, None).unwrap();
        assert_eq!(one_type, [(change_by_type_key("s", "doc", cursor), vec![V1])]);
        assert_eq!(decode_changes_by_type(cursor, &one_type[0].1).unwrap(), ChangesByType::InChangelogRow);
        let uneven = [&[V2][..], br#"{"timestamp_ms":1,"seqs":[1],"entries":[]}"#].concat();
        for bad in [&b""[..], b"\x01x", b"\x02{}", b"\x03", uneven.as_slice()] {
            assert!(matches!(decode_changes_by_type(cursor, bad), Err(StoreError::Corrupt(_))), "{bad:?}");
        }
        assert_eq!(decode_layout(&encode_layout(LAYOUT)).unwrap(), LAYOUT);
        assert!(matches!(decode_layout(b"\x01\x00"), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn changes_from_before_actors_still_decode() {
        let old = br#"{"operation":"write","object_type":"doc","object_id":"1","relation":"viewer","user":"user:anne","timestamp_ms":5}"#;
        let value = [&b"\x01"[..], old].concat();
        let change = decode_change(ChangeCursor { revision: 1, seq: 0 }, &value).unwrap();
        assert_eq!((change.actor, change.timestamp_ms), (None, 5));
    }

    #[test]
    fn a_lone_change_keeps_its_bytes() {
        let t = StoredTuple { expires_at_ms: Some(9), ..stored("doc:1#viewer@user:anne") };
        let value = encode_change(ChangeOperation::Delete, &t, 5, Some("ci")).unwrap();
        let expected = br#"{"operation":"delete","object_type":"doc","object_id":"1","relation":"viewer","user":"user:anne","expires_at_ms":9,"timestamp_ms":5,"actor":"ci"}"#;
        assert_eq!(value, [&b"\x01"[..], expected].concat());
    }

    #[test]
    fn bad_bytes_are_corrupt_not_panics() {
        for bad in [&b""[..], b"\x02{}", b"\x01not json!", b"\x01{\"name\":1}", b"\x01\xff"] {
            assert!(matches!(decode_store(bad), Err(StoreError::Corrupt(_))));
            assert!(matches!(decode_model(bad), Err(StoreError::Corrupt(_))));
            assert!(matches!(decode_revision(bad), Err(StoreError::Corrupt(_))));
            assert!(matches!(decode_change(ChangeCursor { revision: 1, seq: 0 }, bad), Err(StoreError::Corrupt(_))));
        }
        assert!(matches!(decode_text(b"\x01\xff"), Err(StoreError::Corrupt(_))));
        for bad_tuple in [&b"\x02"[..], b"\x02\x01", b"\x02{}", b"\x02123456789", b"\x03{}"] {
            assert!(matches!(decode_tuple_value(bad_tuple), Err(StoreError::Corrupt(_))));
            assert!(matches!(decode_tuple_written_at(bad_tuple), Err(StoreError::Corrupt(_))));
        }
        for bad_key in [&b""[..], b"abc", b"a\0", b"a\0\x01", b"a\0\0b\0\0c\0\0d\0\0extra"] {
            assert!(matches!(decode_tuple(bad_key, b"\x01{}"), Err(StoreError::Corrupt(_))));
        }
        let mut bad_subject = Vec::new();
        for s in ["doc", "1", "viewer", "not a subject"] {
            push_str(&mut bad_subject, s);
        }
        assert!(matches!(decode_tuple(&bad_subject, b"\x01{}"), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_change_key(b"\0\0"), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_model_key(&[0; 9]), Err(StoreError::Corrupt(_))));
    }
}
