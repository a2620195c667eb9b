//! Checkpoints: every current tuple of a store at one revision, packed into a few large rows so
//! start-up reads a hundred values instead of ten million keys. The per-tuple rows stay the source
//! of truth; a checkpoint only speeds up loading, and a store without one (or with one that does
//! not decode) loads from its tuple rows as before.
//!
//! What it owns: the byte layout of checkpoint rows (keys under [`super::codec::CHECKPOINT`]) and
//! [`ChunkEncoder`] / [`visit_chunk`], which turn up to [`CHUNK_TUPLES`] tuples into one value and
//! back.
//!
//! Keys: `0x07` store, then `0x00` for the header, or `0x01`, generation u64 BE, chunk u32 BE for
//! a chunk. The header (version 1) holds the generation, the revision the tuples are at, and how
//! many chunks and tuples were written, so a reader notices a missing chunk. A new checkpoint
//! writes its chunks under the next generation, then swaps the header and removes the old
//! generation's chunks in one batch: a crash leaves the old checkpoint whole.
//!
//! A chunk (version 1): a table of the distinct strings of its tuples, then per tuple the table
//! indices of object type, object id, relation, subject type, subject id (0 for a wildcard, else
//! index + 1) and subject relation (0 for none, else index + 1), a flags byte (1 = condition,
//! 2 = expiry), the condition as JSON and the expiry as i64 BE when flagged. Numbers are LEB128.
//!
//! **Invariant:** `visit_chunk(encode(tuples))` visits exactly `tuples`, in order; decoding never
//! panics — bad bytes become [`StoreError::Corrupt`].
//! Must not import anything in the crate but `crate::tuple` and its siblings in `store`.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::codec::{prefix, CHECKPOINT};
use super::{StoreError, TupleRef};
use crate::tuple::{Context, SubjectText, TupleCondition};

/// Most tuples in one chunk (a value of a few megabytes at most for typical ids).
pub(crate) const CHUNK_TUPLES: usize = 65_536;

const V1: u8 = 1;
const HAS_CONDITION: u8 = 1;
const HAS_EXPIRY: u8 = 2;

fn corrupt(detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("checkpoint: {detail}"))
}

/// What a checkpoint's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Its chunks' generation.
    pub(crate) generation: u64,
    /// The store revision its tuples are at.
    pub(crate) revision: u64,
    /// How many chunks it has.
    pub(crate) chunks: u32,
    /// How many tuples they hold.
    pub(crate) tuples: u64,
}

/// Key of a store's checkpoint header.
pub(crate) fn header_key(store_id: &str) -> Vec<u8> {
    let mut k = prefix(CHECKPOINT, store_id);
    k.push(0);
    k
}

/// Prefix of the chunk keys of one generation of a store's checkpoint.
pub(crate) fn generation_prefix(store_id: &str, generation: u64) -> Vec<u8> {
    let mut k = prefix(CHECKPOINT, store_id);
    k.push(1);
    k.extend_from_slice(&generation.to_be_bytes());
    k
}

/// Key of one chunk.
pub(crate) fn chunk_key(store_id: &str, generation: u64, chunk: u32) -> Vec<u8> {
    let mut k = generation_prefix(store_id, generation);
    k.extend_from_slice(&chunk.to_be_bytes());
    k
}

/// Encodes a header.
pub(crate) fn encode_header(h: Header) -> Vec<u8> {
    let mut out = Vec::with_capacity(29);
    out.push(V1);
    out.extend_from_slice(&h.generation.to_be_bytes());
    out.extend_from_slice(&h.revision.to_be_bytes());
    out.extend_from_slice(&h.chunks.to_be_bytes());
    out.extend_from_slice(&h.tuples.to_be_bytes());
    out
}

/// Decodes a header.
pub(crate) fn decode_header(bytes: &[u8]) -> Result<Header, StoreError> {
    let mut r = Reader { rest: bytes };
    if r.byte()? != V1 {
        return Err(corrupt("unknown header version"));
    }
    let header = Header { generation: r.u64_be()?, revision: r.u64_be()?, chunks: r.u32_be()?, tuples: r.u64_be()? };
    if !r.rest.is_empty() {
        return Err(corrupt("trailing header bytes"));
    }
    Ok(header)
}

#[derive(Serialize, Deserialize)]
struct WireCondition {
    name: String,
    #[serde(default)]
    context: Context,
}

/// Builds one chunk value from tuples pushed in order.
#[derive(Default)]
pub(crate) struct ChunkEncoder {
    strings: FxHashMap<Box<str>, u32>,
    table: Vec<u8>,
    rows: Vec<u8>,
    tuples: usize,
}

impl ChunkEncoder {
    /// Tuples pushed since the last [`ChunkEncoder::finish`].
    pub(crate) fn len(&self) -> usize {
        self.tuples
    }

    /// Appends a tuple.
    pub(crate) fn push(&mut self, t: TupleRef<'_>) -> Result<(), StoreError> {
        for part in [t.object_type, t.object_id, t.relation, t.subject.subject_type] {
            let index = self.intern(part);
            put_varint(&mut self.rows, index);
        }
        let id = t.subject.id.map_or(0, |id| self.intern(id) + 1);
        put_varint(&mut self.rows, id);
        let relation = t.subject.relation.map_or(0, |r| self.intern(r) + 1);
        put_varint(&mut self.rows, relation);
        let mut flags = 0;
        if t.condition.is_some() {
            flags |= HAS_CONDITION;
        }
        if t.expires_at_ms.is_some() {
            flags |= HAS_EXPIRY;
        }
        self.rows.push(flags);
        if let Some(c) = t.condition {
            let json = serde_json::to_vec(&WireCondition { name: c.name.clone(), context: c.context.clone() })
                .map_err(|e| corrupt(format!("condition cannot be encoded: {e}")))?;
            put_varint(&mut self.rows, json.len() as u64);
            self.rows.extend_from_slice(&json);
        }
        if let Some(at) = t.expires_at_ms {
            self.rows.extend_from_slice(&at.to_be_bytes());
        }
        self.tuples += 1;
        Ok(())
    }

    fn intern(&mut self, s: &str) -> u64 {
        if let Some(&index) = self.strings.get(s) {
            return u64::from(index);
        }
        // A chunk holds at most a few hundred thousand strings, far below u32::MAX.
        let index = u32::try_from(self.strings.len()).unwrap_or(u32::MAX);
        self.strings.insert(s.into(), index);
        put_varint(&mut self.table, s.len() as u64);
        self.table.extend_from_slice(s.as_bytes());
        u64::from(index)
    }

    /// The chunk value of the tuples pushed so far; the encoder starts over empty.
    pub(crate) fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.table.len() + self.rows.len() + 21);
        out.push(V1);
        put_varint(&mut out, self.strings.len() as u64);
        out.extend_from_slice(&self.table);
        put_varint(&mut out, self.tuples as u64);
        out.extend_from_slice(&self.rows);
        self.strings.clear();
        self.table.clear();
        self.rows.clear();
        self.tuples = 0;
        out
    }
}

/// Calls `visit` with every tuple of a chunk value, in order; returns how many there were.
pub(crate) fn visit_chunk(
    value: &[u8],
    visit: &mut dyn FnMut(TupleRef<'_>) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut r = Reader { rest: value };
    if r.byte()? != V1 {
        return Err(corrupt("unknown chunk version"));
    }
    let count = r.varint()?;
    // Each string takes at least its length byte, which bounds a sane count.
    if count > r.rest.len() as u64 {
        return Err(corrupt("string table longer than the chunk"));
    }
    let mut strings = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = r.len()?;
        let bytes = r.take(len)?;
        strings.push(std::str::from_utf8(bytes).map_err(corrupt)?);
    }
    let string = |index: u64| -> Result<&str, StoreError> {
        usize::try_from(index).ok().and_then(|i| strings.get(i)).copied().ok_or_else(|| corrupt("bad string index"))
    };
    let optional = |index: u64| -> Result<Option<&str>, StoreError> {
        if index == 0 {
            Ok(None)
        } else {
            string(index - 1).map(Some)
        }
    };
    let tuples = r.varint()?;
    for _ in 0..tuples {
        let object_type = string(r.varint()?)?;
        let object_id = string(r.varint()?)?;
        let relation = string(r.varint()?)?;
        let subject_type = string(r.varint()?)?;
        let id = optional(r.varint()?)?;
        let subject_relation = optional(r.varint()?)?;
        let flags = r.byte()?;
        if flags & !(HAS_CONDITION | HAS_EXPIRY) != 0 {
            return Err(corrupt("unknown tuple flags"));
        }
        let condition = if flags & HAS_CONDITION != 0 {
            let len = r.len()?;
            let wire: WireCondition = serde_json::from_slice(r.take(len)?).map_err(corrupt)?;
            Some(TupleCondition { name: wire.name, context: wire.context })
        } else {
            None
        };
        let expires_at_ms = if flags & HAS_EXPIRY != 0 { Some(r.u64_be()? as i64) } else { None };
        visit(TupleRef {
            object_type,
            object_id,
            relation,
            subject: SubjectText { subject_type, id, relation: subject_relation },
            condition: condition.as_ref(),
            expires_at_ms,
        })?;
    }
    if !r.rest.is_empty() {
        return Err(corrupt("trailing chunk bytes"));
    }
    Ok(tuples)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a value front to back.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or_else(|| corrupt("truncated"))?;
        self.rest = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, StoreError> {
        self.take(1)?.first().copied().ok_or_else(|| corrupt("truncated"))
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(corrupt("number too long"))
    }

    fn len(&mut self) -> Result<usize, StoreError> {
        usize::try_from(self.varint()?).map_err(|_| corrupt("length out of range"))
    }

    fn u64_be(&mut self) -> Result<u64, StoreError> {
        let bytes: [u8; 8] = self.take(8)?.try_into().map_err(|_| corrupt("truncated"))?;
        Ok(u64::from_be_bytes(bytes))
    }

    fn u32_be(&mut self) -> Result<u32, StoreError> {
        let bytes: [u8; 4] = self.take(4)?.try_into().map_err(|_| corrupt("truncated"))?;
        Ok(u32::from_be_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(t: TupleRef<'_>) -> String {
        format!(
            "{}:{}#{}@{}:{}{}{} c={:?} e={:?}",
            t.object_type,
            t.object_id,
            t.relation,
            t.subject.subject_type,
            t.subject.id.unwrap_or("*"),
            if t.subject.relation.is_some() { "#" } else { "" },
            t.subject.relation.unwrap_or(""),
            t.condition.map(|c| (&c.name, serde_json::Value::Object(c.context.clone()).to_string())),
            t.expires_at_ms,
        )
    }

    #[test]
    fn a_chunk_round_trips_every_kind_of_tuple_in_order() {
        let mut context = Context::new();
        context.insert("ip".into(), serde_json::json!("10.0.0.1"));
        let condition = TupleCondition { name: "in_net".into(), context };
        let s = |subject_type, id, relation| SubjectText { subject_type, id, relation };
        let tuples = [
            TupleRef {
                object_type: "doc",
                object_id: "a",
                relation: "viewer",
                subject: s("user", Some("ann"), None),
                condition: None,
                expires_at_ms: None,
            },
            TupleRef {
                object_type: "doc",
                object_id: "a",
                relation: "viewer",
                subject: s("user", None, None),
                condition: Some(&condition),
                expires_at_ms: Some(-5),
            },
            TupleRef {
                object_type: "doc",
                object_id: "é\u{0}x",
                relation: "editor",
                subject: s("group", Some("eng"), Some("member")),
                condition: None,
                expires_at_ms: Some(1_700_000_000_000),
            },
        ];
        let mut encoder = ChunkEncoder::default();
        for t in tuples {
            encoder.push(t).unwrap();
        }
        assert_eq!(encoder.len(), 3);
        let value = encoder.finish();
        assert_eq!(encoder.len(), 0);
        let mut seen = Vec::new();
        let count = visit_chunk(&value, &mut |t| {
            seen.push(owned(t));
            Ok(())
        })
        .unwrap();
        assert_eq!(count, 3);
        assert_eq!(seen, tuples.map(owned));
        // The encoder is reusable after finish.
        encoder.push(tuples[0]).unwrap();
        let again = encoder.finish();
        let mut one = Vec::new();
        visit_chunk(&again, &mut |t| {
            one.push(owned(t));
            Ok(())
        })
        .unwrap();
        assert_eq!(one, vec![owned(tuples[0])]);
    }

    #[test]
    fn a_truncated_or_garbled_chunk_is_corrupt_not_a_panic() {
        let mut encoder = ChunkEncoder::default();
        encoder
            .push(TupleRef {
                object_type: "doc",
                object_id: "a",
                relation: "viewer",
                subject: SubjectText { subject_type: "user", id: Some("ann"), relation: None },
                condition: None,
                expires_at_ms: Some(7),
            })
            .unwrap();
        let value = encoder.finish();
        for cut in 0..value.len() {
            let result = visit_chunk(&value[..cut], &mut |_| Ok(()));
            assert!(matches!(result, Err(StoreError::Corrupt(_))), "cut at {cut}: {result:?}");
        }
        for i in 0..value.len() {
            for flip in [0x01u8, 0x80, 0xFF] {
                let mut bad = value.clone();
                bad[i] ^= flip;
                // Any answer but a panic; most flips are caught as corrupt.
                let _ = visit_chunk(&bad, &mut |_| Ok(()));
            }
        }
        let mut longer = value.clone();
        longer.push(0);
        assert!(matches!(visit_chunk(&longer, &mut |_| Ok(())), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn a_header_round_trips_and_rejects_bad_bytes() {
        let h = Header { generation: 3, revision: 99, chunks: 2, tuples: 70_000 };
        assert_eq!(decode_header(&encode_header(h)).unwrap(), h);
        let bytes = encode_header(h);
        assert!(decode_header(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode_header(&[2]).is_err());
        assert!(chunk_key("s", 1, 0) > header_key("s"));
        assert!(chunk_key("s", 1, 1) > chunk_key("s", 1, 0));
        assert!(chunk_key("s", 1, 0).starts_with(&generation_prefix("s", 1)));
    }
}
