//! Paged reads of a store's tuples (`read`, `writ export`), served from the in-memory index.
//!
//! What it owns: turning a [`ReadFilter`] into one of OpenFGA's filter shapes (or OpenFGA's
//! error for the others), and [`ReadCursor`], the continuation of a paged read: the position of
//! the last tuple handed out, in the index's read order (`index/read.rs`), plus the epoch of the
//! index load it belongs to.
//!
//! **Invariant:** a page costs what it returns, never a walk of the tuples before it; a tuple
//! present from the first page to the last is read exactly once, whatever writes land between
//! pages. A cursor from another load of the store's index (a restart, a follower's reload) is
//! refused, as its positions would mean other tuples there.
//! Must not import `api`.

use super::{Answer, EngineError, ReadFilter, StoreData, StoreHandle, StoredTuple};
use crate::index::{Index, ReadPosition, ReadScope, View};
use crate::tuple::Subject;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Where a paged read resumes: just after the last tuple of the previous page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCursor {
    epoch: u64,
    position: ReadPosition,
}

impl ReadCursor {
    /// The cursor as text, for an opaque continuation token.
    pub fn to_text(&self) -> String {
        let [a, b, c, d, e, f] = self.position.to_array();
        format!("{}.{a}.{b}.{c}.{d}.{e}.{f}", self.epoch)
    }

    /// Reads text written by [`ReadCursor::to_text`]; `None` when it is not such text.
    pub fn parse(text: &str) -> Option<ReadCursor> {
        let mut parts = text.split('.');
        let epoch = parts.next()?.parse().ok()?;
        let mut position = [0u32; 6];
        for slot in &mut position {
            *slot = parts.next()?.parse().ok()?;
        }
        if parts.next().is_some() {
            return None;
        }
        Some(ReadCursor { epoch, position: ReadPosition::from_array(position) })
    }
}

/// One page of a read.
#[derive(Debug, Clone)]
pub struct ReadPage {
    /// The page's tuples, in read order (stable across pages; not sorted by text).
    pub tuples: Vec<StoredTuple>,
    /// Where the next page starts; `None` when this page is the last.
    pub next: Option<ReadCursor>,
    /// The store revision the page reflects.
    pub revision: u64,
}

/// A number no other load of a store's index has had, in this process or (by the start time in
/// its high bits) an earlier one.
pub(super) fn next_epoch() -> u64 {
    static NEXT: OnceLock<AtomicU64> = OnceLock::new();
    let next = NEXT.get_or_init(|| {
        let started_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        AtomicU64::new(started_ms << 16)
    });
    next.fetch_add(1, Ordering::Relaxed)
}

/// OpenFGA's message for a filter shape it does not serve.
const SHAPE_ERROR: &str = "the 'tuple_key' field was provided but the object type field is required and both the object id and user cannot be empty";

/// The scope of `filter` in `index`; `Ok(None)` when it names something no tuple has (so
/// nothing matches).
///
/// OpenFGA's shapes: no filter; an object `type:id` with or without a relation and a user; an
/// object type `type:` with a user, with or without a relation. Writ also serves `type:` with
/// or without a relation and no user (the console's tuple browser pages a type this way).
/// A user or relation without an object type is OpenFGA's validation error.
fn scope(index: &Index, filter: &ReadFilter) -> Result<Option<ReadScope>, EngineError> {
    let Some(type_name) = filter.object_type.as_deref() else {
        if filter.object_id.is_some() || filter.relation.is_some() || filter.user.is_some() {
            return Err(EngineError::Validation(SHAPE_ERROR.into()));
        }
        return Ok(Some(ReadScope::All));
    };
    let subject = match filter.user.as_deref() {
        Some(user) => Some(user.parse::<Subject>().map_err(|_| {
            EngineError::Validation(format!(
                "user `{user}` is not of the form `type:id`, `type:*` or `type:id#relation`"
            ))
        })?),
        None => None,
    };
    let view = View::new(index);
    let Some(object_type) = view.type_id(type_name) else { return Ok(None) };
    let relation = match filter.relation.as_deref() {
        Some(name) => match view.relation_id(name) {
            Some(id) => Some(id),
            None => return Ok(None),
        },
        None => None,
    };
    let subject = match &subject {
        Some(subject) => match index.subject_key(subject) {
            Some(key) => Some(key),
            None => return Ok(None),
        },
        None => None,
    };
    Ok(Some(match (filter.object_id.as_deref(), subject) {
        (Some(id), subject) => match view.object_id(object_type, id) {
            Some(object) => ReadScope::Object { object_type, object, relation, subject },
            None => return Ok(None),
        },
        (None, Some(subject)) => ReadScope::Subject { object_type, relation, subject },
        (None, None) => ReadScope::Type { object_type, relation },
    }))
}

impl StoreData {
    /// One page of `filter`'s tuples after `after`, at `now_ms`.
    fn read_page(
        &self,
        filter: &ReadFilter,
        after: Option<ReadCursor>,
        now_ms: i64,
        limit: usize,
    ) -> Result<ReadPage, EngineError> {
        let after = match after {
            Some(cursor) if cursor.epoch != self.epoch => {
                return Err(EngineError::InvalidContinuationToken(
                    "the continuation token belongs to an earlier load of the store; read again from the start".into(),
                ))
            }
            Some(cursor) => Some(cursor.position),
            None => None,
        };
        let Some(scope) = scope(&self.index, filter)? else {
            return Ok(ReadPage { tuples: Vec::new(), next: None, revision: self.revision });
        };
        // One more than asked says whether another page follows, so the last page says so.
        let mut rows = self.index.read_page(scope, after, now_ms, limit.saturating_add(1));
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = match rows.last() {
            Some(last) if more => Some(ReadCursor { epoch: self.epoch, position: last.position }),
            _ => None,
        };
        let tuples =
            rows.into_iter().map(|row| StoredTuple { tuple: row.tuple, expires_at_ms: row.expires_at_ms }).collect();
        Ok(ReadPage { tuples, next, revision: self.revision })
    }
}

impl StoreHandle<'_> {
    /// One page of at most `limit` stored tuples matching `filter`, after `after` (from the
    /// start when `None`), with their expiry; tuples expired at the engine's clock are left out.
    /// Pages come in the index's read order, which stays fixed while the store is loaded, so a
    /// tuple present throughout a paging is read exactly once.
    pub fn read_page(
        &self,
        filter: &ReadFilter,
        after: Option<ReadCursor>,
        limit: usize,
    ) -> Result<ReadPage, EngineError> {
        let state = self.state.live()?;
        let data = state.data.read();
        let now = self.core.now_for(&data.index);
        data.read_page(filter, after, now, limit)
    }

    /// Every stored tuple matching `filter`, with its expiry, sorted by its text form; tuples
    /// expired at the engine's clock are left out. For whole-store comparisons and tests: it
    /// holds every tuple at once, where HTTP reads and exports page with [`StoreHandle::read_page`].
    pub fn read(&self, filter: &ReadFilter) -> Result<Answer<Vec<StoredTuple>>, EngineError> {
        let state = self.state.live()?;
        // One snapshot throughout, so the answer is the store at one revision.
        let data = state.data.read();
        let now = self.core.now_for(&data.index);
        let mut tuples = Vec::with_capacity(data.index.len());
        let mut after = None;
        loop {
            let page = data.read_page(filter, after, now, READ_ALL_PAGE)?;
            tuples.extend(page.tuples);
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        tuples.sort_by_cached_key(|s: &StoredTuple| s.tuple.to_string());
        Ok(Answer { value: tuples, revision: data.revision })
    }
}

/// The page size [`StoreHandle::read`] walks the store in.
const READ_ALL_PAGE: usize = 10_000;
