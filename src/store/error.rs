//! Store errors: what went wrong reading or writing durable state.
//!
//! Invariant: messages are lowercase-first with the offending input in backticks; a failure of the
//! storage engine is [`StoreError::Io`], bytes that cannot be decoded are [`StoreError::Corrupt`]
//! (never a panic).
//! Must not import any other crate module.

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// No store (tenant) with this id exists, or it was deleted.
    #[error("store `{0}` not found")]
    StoreNotFound(String),
    /// A store with this id already exists.
    #[error("store `{0}` already exists")]
    StoreExists(String),
    /// A conditional write's plan no longer holds: a later write changed a tuple it read, or the
    /// store is too far past it (see [`crate::store::WriteBatch::planned`]); nothing was written.
    #[error("store `{store_id}` is at revision `{current}`; a write planned at revision `{expected}` no longer holds")]
    RevisionMoved {
        /// The store.
        store_id: String,
        /// The revision the writer planned against.
        expected: u64,
        /// The store's revision now.
        current: u64,
    },
    /// The storage engine failed (disk, lock, flush); the text is the engine's message.
    #[error("storage i/o failed: {0}")]
    Io(String),
    /// The backend keeps no copy of what was asked for (an index-only in-memory store keeps no
    /// tuples and only part of its changelog); the text says what, and what it keeps.
    #[error("{0}")]
    NotKept(String),
    /// Stored bytes could not be decoded (or encoded); the text says which record.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

#[cfg(feature = "sled")]
impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}
