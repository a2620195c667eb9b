//! The byte layout of the sled `approvals` tree, which keeps each [`ApprovalRecord`] (defined in
//! `crate::record`) under its store and id.
//!
//! Key: store id (escaped like every codec string), then the approval id's bytes. Value: version
//! byte 1, then JSON (serialized the same way every time, so equal records have equal bytes,
//! which the compare and swap of `SledStore::replace_approval` relies on).
//! Invariant: `decode(encode(x)) == x`; bad bytes are [`StoreError::Corrupt`], never a panic.
//! Must not import anything in the crate but `crate::record` and its siblings in `store`.

use super::codec::{decode_json_v1, encode_json_v1, push_str};
use super::StoreError;
use crate::record::ApprovalRecord;

/// The prefix of every approval key of a store.
pub(crate) fn prefix(store_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(store_id.len() + 28);
    push_str(&mut key, store_id);
    key
}

/// The key of an approval.
pub(crate) fn key(store_id: &str, id: &str) -> Vec<u8> {
    let mut key = prefix(store_id);
    key.extend_from_slice(id.as_bytes());
    key
}

/// An approval's value bytes.
pub(crate) fn encode(record: &ApprovalRecord) -> Result<Vec<u8>, StoreError> {
    encode_json_v1("approval", record)
}

/// An approval from its value bytes.
pub(crate) fn decode(bytes: &[u8]) -> Result<ApprovalRecord, StoreError> {
    decode_json_v1("approval", bytes)
}
