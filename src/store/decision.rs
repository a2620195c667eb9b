//! The byte layout of the sled `decisions` tree, which keeps the decision log's
//! [`DecisionRecord`]s (defined in `crate::record`) at their [`DecisionCursor`] (time, then a
//! store-assigned sequence number).
//!
//! Key: store id (escaped like every codec string), time (i64 with its sign bit flipped, so byte
//! order is time order) and sequence, both big-endian. Value: version byte 1, then JSON.
//! Invariant: `decode(encode(x)) == x`; bad bytes are [`StoreError::Corrupt`], never a panic.
//! Must not import anything in the crate but `crate::tuple`, `crate::record` and its siblings
//! in `store`.

use super::codec::{decode_json_v1, encode_json_v1, push_str};
use super::StoreError;
use crate::record::{DecisionCursor, DecisionRecord};

/// The prefix of every decision key of a store.
pub(crate) fn prefix(store_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(store_id.len() + 18);
    push_str(&mut key, store_id);
    key
}

fn time_bytes(time_ms: i64) -> [u8; 8] {
    ((time_ms as u64) ^ (1 << 63)).to_be_bytes()
}

/// The key of a record.
pub(crate) fn key(store_id: &str, cursor: DecisionCursor) -> Vec<u8> {
    let mut key = prefix(store_id);
    key.extend_from_slice(&time_bytes(cursor.time_ms));
    key.extend_from_slice(&cursor.seq.to_be_bytes());
    key
}

/// The first key of a store at or after `time_ms`.
pub(crate) fn time_key(store_id: &str, time_ms: i64) -> Vec<u8> {
    let mut key = prefix(store_id);
    key.extend_from_slice(&time_bytes(time_ms));
    key
}

/// The cursor in a key, given the key without its store prefix.
pub(crate) fn decode_key(rest: &[u8]) -> Result<DecisionCursor, StoreError> {
    let bad = || StoreError::Corrupt("decision key: wrong length".into());
    let time: [u8; 8] = rest.get(0..8).and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
    let seq: [u8; 8] = rest.get(8..16).and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
    if rest.len() != 16 {
        return Err(bad());
    }
    Ok(DecisionCursor { time_ms: (u64::from_be_bytes(time) ^ (1 << 63)) as i64, seq: u64::from_be_bytes(seq) })
}

/// A record's value bytes.
pub(crate) fn encode(record: &DecisionRecord) -> Result<Vec<u8>, StoreError> {
    encode_json_v1("decision", record)
}

/// A record from its value bytes.
pub(crate) fn decode(bytes: &[u8]) -> Result<DecisionRecord, StoreError> {
    decode_json_v1("decision", bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_time_then_seq_and_round_trip() {
        let cursors = [
            DecisionCursor { time_ms: -5, seq: 9 },
            DecisionCursor { time_ms: 0, seq: 0 },
            DecisionCursor { time_ms: 0, seq: 1 },
            DecisionCursor { time_ms: 1_700_000_000_000, seq: 0 },
        ];
        let keys: Vec<Vec<u8>> = cursors.iter().map(|c| key("s", *c)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        let prefix_len = prefix("s").len();
        for (cursor, key) in cursors.iter().zip(&keys) {
            assert_eq!(decode_key(&key[prefix_len..]).unwrap(), *cursor);
        }
        assert!(decode_key(&[1, 2, 3]).is_err());
        assert!(decode(&[]).is_err());
        assert!(decode(&[7, b'{']).is_err());
    }
}
