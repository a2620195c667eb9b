//! Sets of object ids and maps keyed by them, sized to what they hold; all take and yield
//! [`ObjectId`]s (the raw `u32` is read only where ids go into arrays and roaring bitmaps).
//!
//! What it owns: [`IdSet`], the set type of the index's forward and reverse maps. Most objects
//! name one or two subjects and most subjects are named by a few dozen objects spread over the
//! whole id range, where a roaring bitmap's per-container allocations cost far more than the ids
//! (about 100 bytes for one id): so one id sits inline, up to [`FEW_MAX`] ids sit in a sorted
//! array, and only larger sets are roaring bitmaps. [`Ids`] borrows a set for reading and
//! [`IdsCow`] is a borrowed set or one computed for a request (as `Cow<RoaringBitmap>` was).
//! [`IdMap`] maps ids to values: a vector indexed by id where keys are dense (ids are interned
//! per type, so they mostly are), a hash map where they are sparse. [`ObjectBitmap`] reads and
//! writes a roaring bitmap of object ids (a lookup's answer) as [`ObjectId`]s.
//!
//! **Invariant:** an `IdSet`'s representation is a function of its contents: `Empty` iff no
//! id, `One` iff one, `Few` (sorted, no duplicates) for 2..=[`FEW_MAX`] ids, `Many` above. An
//! `IdMap` reports no empty value, and its `len` counts the non-empty ones.
//! Must not import anything outside `index`.

use super::ids::{Id, ObjectId};
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::ops::BitOrAssign;

/// The largest set kept as a sorted array; a sorted array costs 4 bytes an id, a roaring bitmap
/// about 2 plus some 50 per 65,536-id block it touches, so arrays win for sparse sets this size.
pub(crate) const FEW_MAX: usize = 1024;

/// A set of ids (see the module doc for its representations).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum IdSet {
    /// No id.
    #[default]
    Empty,
    /// Exactly one id.
    One(ObjectId),
    /// 2..=[`FEW_MAX`] ids, sorted ascending.
    Few(Vec<ObjectId>),
    /// More than [`FEW_MAX`] ids.
    Many(Box<RoaringBitmap>),
}

impl IdSet {
    /// Adds `id`; true if it was not there.
    pub(crate) fn insert(&mut self, id: ObjectId) -> bool {
        match self {
            IdSet::Empty => {
                *self = IdSet::One(id);
                true
            }
            IdSet::One(held) => {
                let held = *held;
                if held == id {
                    return false;
                }
                *self = IdSet::Few(if held < id { vec![held, id] } else { vec![id, held] });
                true
            }
            IdSet::Few(ids) => match ids.binary_search(&id) {
                Ok(_) => false,
                Err(at) if ids.len() < FEW_MAX => {
                    ids.insert(at, id);
                    true
                }
                Err(_) => {
                    let mut bitmap: RoaringBitmap = ids.iter().map(|id| id.raw()).collect();
                    bitmap.insert(id.raw());
                    *self = IdSet::Many(Box::new(bitmap));
                    true
                }
            },
            IdSet::Many(bitmap) => bitmap.insert(id.raw()),
        }
    }

    /// Removes `id`; true if it was there.
    pub(crate) fn remove(&mut self, id: ObjectId) -> bool {
        match self {
            IdSet::Empty => false,
            IdSet::One(held) => {
                if *held != id {
                    return false;
                }
                *self = IdSet::Empty;
                true
            }
            IdSet::Few(ids) => {
                let Ok(at) = ids.binary_search(&id) else { return false };
                ids.remove(at);
                if let [only] = ids.as_slice() {
                    *self = IdSet::One(*only);
                }
                true
            }
            IdSet::Many(bitmap) => {
                if !bitmap.remove(id.raw()) {
                    return false;
                }
                if bitmap.len() <= FEW_MAX as u64 {
                    *self = IdSet::Few(bitmap.iter().map(ObjectId::from_raw).collect());
                }
                true
            }
        }
    }

    /// True if no id is held.
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, IdSet::Empty)
    }

    /// The set, borrowed for reading.
    pub(crate) fn ids(&self) -> Ids<'_> {
        match self {
            IdSet::Empty => Ids::EMPTY,
            IdSet::One(id) => Ids::One(*id),
            IdSet::Few(ids) => Ids::Few(ids),
            IdSet::Many(bitmap) => Ids::Many(bitmap),
        }
    }

    /// Gives back spare array capacity (after a bulk load).
    pub(crate) fn shrink_to_fit(&mut self) {
        if let IdSet::Few(ids) = self {
            ids.shrink_to_fit();
        }
    }
}

/// Object ids kept in a roaring bitmap (untyped storage), written and read as [`ObjectId`]s so
/// no caller converts them by hand.
pub(crate) trait ObjectBitmap {
    /// Adds `id`; true if it was not there.
    fn insert_object(&mut self, id: ObjectId) -> bool;
    /// Removes `id`; true if it was there.
    fn remove_object(&mut self, id: ObjectId) -> bool;
    /// True if `id` is in the set.
    fn contains_object(&self, id: ObjectId) -> bool;
    /// The ids in ascending order.
    fn objects(&self) -> IdsIter<'_>;
    /// A bitmap of `ids`, which must come in ascending order (else an error, as
    /// [`RoaringBitmap::from_sorted_iter`] gives).
    fn from_sorted_objects(ids: impl IntoIterator<Item = ObjectId>) -> Result<Self, roaring::NonSortedIntegers>
    where
        Self: Sized;
}

impl ObjectBitmap for RoaringBitmap {
    #[inline]
    fn insert_object(&mut self, id: ObjectId) -> bool {
        self.insert(id.raw())
    }

    #[inline]
    fn remove_object(&mut self, id: ObjectId) -> bool {
        self.remove(id.raw())
    }

    #[inline]
    fn contains_object(&self, id: ObjectId) -> bool {
        self.contains(id.raw())
    }

    fn objects(&self) -> IdsIter<'_> {
        IdsIter::Many(self.iter())
    }

    fn from_sorted_objects(ids: impl IntoIterator<Item = ObjectId>) -> Result<Self, roaring::NonSortedIntegers> {
        RoaringBitmap::from_sorted_iter(ids.into_iter().map(ObjectId::raw))
    }
}

impl FromIterator<ObjectId> for RoaringBitmap {
    fn from_iter<T: IntoIterator<Item = ObjectId>>(ids: T) -> Self {
        ids.into_iter().map(ObjectId::raw).collect()
    }
}

/// A borrowed [`IdSet`] (or bitmap): cheap to copy, read with `contains`, `iter` and `len`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ids<'a> {
    /// Exactly one id.
    One(ObjectId),
    /// Ids sorted ascending, no duplicates (empty for the empty set).
    Few(&'a [ObjectId]),
    /// A bitmap.
    Many(&'a RoaringBitmap),
}

impl<'a> Ids<'a> {
    /// The empty set.
    pub(crate) const EMPTY: Ids<'static> = Ids::Few(&[]);

    /// The smallest id, if any.
    pub(crate) fn first(self) -> Option<ObjectId> {
        match self {
            Ids::One(id) => Some(id),
            Ids::Few(ids) => ids.first().copied(),
            Ids::Many(bitmap) => bitmap.min().map(ObjectId::from_raw),
        }
    }

    /// True if `id` is in the set.
    pub(crate) fn contains(self, id: ObjectId) -> bool {
        match self {
            Ids::One(held) => held == id,
            Ids::Few(ids) => ids.binary_search(&id).is_ok(),
            Ids::Many(bitmap) => bitmap.contains(id.raw()),
        }
    }

    /// Number of ids.
    pub(crate) fn len(self) -> u64 {
        match self {
            Ids::One(_) => 1,
            Ids::Few(ids) => ids.len() as u64,
            Ids::Many(bitmap) => bitmap.len(),
        }
    }

    /// True if the set holds no id.
    pub(crate) fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The ids in ascending order.
    pub(crate) fn iter(self) -> IdsIter<'a> {
        match self {
            Ids::One(id) => IdsIter::One(Some(id)),
            Ids::Few(ids) => IdsIter::Few(ids.iter()),
            Ids::Many(bitmap) => IdsIter::Many(bitmap.iter()),
        }
    }

    /// The ids at or above `first`, in ascending order, found without walking those below.
    pub(crate) fn iter_from(self, first: ObjectId) -> IdsIter<'a> {
        match self {
            Ids::One(id) => IdsIter::One((id >= first).then_some(id)),
            Ids::Few(ids) => {
                let start = ids.partition_point(|&id| id < first);
                IdsIter::Few(ids.get(start..).unwrap_or_default().iter())
            }
            Ids::Many(bitmap) => {
                let mut ids = bitmap.iter();
                ids.advance_to(first.raw());
                IdsIter::Many(ids)
            }
        }
    }

    /// The ids also in `other`, probing the larger set with the smaller one's ids.
    pub(crate) fn intersect(self, other: &RoaringBitmap) -> RoaringBitmap {
        match self {
            Ids::Many(bitmap) => bitmap & other,
            small if other.len() < small.len() => {
                other.iter().filter(|&id| small.contains(ObjectId::from_raw(id))).collect()
            }
            small => small.iter().map(ObjectId::raw).filter(|&id| other.contains(id)).collect(),
        }
    }

    /// The set as a bitmap (borrowed when it is one).
    pub(crate) fn to_bitmap(self) -> Cow<'a, RoaringBitmap> {
        match self {
            Ids::Many(bitmap) => Cow::Borrowed(bitmap),
            small => Cow::Owned(small.iter().map(ObjectId::raw).collect()),
        }
    }
}

impl<'a> IntoIterator for Ids<'a> {
    type Item = ObjectId;
    type IntoIter = IdsIter<'a>;

    fn into_iter(self) -> IdsIter<'a> {
        self.iter()
    }
}

impl BitOrAssign<Ids<'_>> for RoaringBitmap {
    fn bitor_assign(&mut self, ids: Ids<'_>) {
        match ids {
            Ids::One(id) => {
                self.insert(id.raw());
            }
            Ids::Few(ids) => self.extend(ids.iter().map(|id| id.raw())),
            Ids::Many(bitmap) => *self |= bitmap,
        }
    }
}

/// The ids of an [`Ids`], ascending.
#[derive(Clone)]
pub(crate) enum IdsIter<'a> {
    /// One id, until taken.
    One(Option<ObjectId>),
    /// A sorted array.
    Few(std::slice::Iter<'a, ObjectId>),
    /// A bitmap.
    Many(roaring::bitmap::Iter<'a>),
}

impl std::fmt::Debug for IdsIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdsIter").field("remaining", &self.size_hint().0).finish()
    }
}

impl Iterator for IdsIter<'_> {
    type Item = ObjectId;

    fn next(&mut self) -> Option<ObjectId> {
        match self {
            IdsIter::One(id) => id.take(),
            IdsIter::Few(ids) => ids.next().copied(),
            IdsIter::Many(ids) => ids.next().map(ObjectId::from_raw),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            IdsIter::One(id) => {
                let n = usize::from(id.is_some());
                (n, Some(n))
            }
            IdsIter::Few(ids) => ids.size_hint(),
            IdsIter::Many(ids) => ids.size_hint(),
        }
    }
}

/// A set borrowed from the index, or computed for one request (as `Cow<RoaringBitmap>`).
#[derive(Debug, Clone)]
pub(crate) struct IdsCow<'a> {
    borrowed: Ids<'a>,
    /// The set once it was changed (then `borrowed` is stale).
    owned: Option<RoaringBitmap>,
}

impl<'a> IdsCow<'a> {
    /// A computed set.
    pub(crate) fn owned(bitmap: RoaringBitmap) -> Self {
        IdsCow { borrowed: Ids::EMPTY, owned: Some(bitmap) }
    }

    /// The set, borrowed for reading.
    pub(crate) fn ids(&self) -> Ids<'_> {
        self.owned.as_ref().map_or(self.borrowed, Ids::Many)
    }

    /// True if `id` is in the set.
    pub(crate) fn contains(&self, id: ObjectId) -> bool {
        self.ids().contains(id)
    }

    /// The ids in ascending order.
    pub(crate) fn iter(&self) -> IdsIter<'_> {
        self.ids().iter()
    }

    /// The set as an owned bitmap, to change it.
    pub(crate) fn to_mut(&mut self) -> &mut RoaringBitmap {
        let borrowed = self.borrowed;
        self.owned.get_or_insert_with(|| borrowed.to_bitmap().into_owned())
    }
}

impl<'a> From<Ids<'a>> for IdsCow<'a> {
    fn from(ids: Ids<'a>) -> Self {
        IdsCow { borrowed: ids, owned: None }
    }
}

impl BitOrAssign<&IdsCow<'_>> for RoaringBitmap {
    fn bitor_assign(&mut self, ids: &IdsCow<'_>) {
        *self |= ids.ids();
    }
}

/// A set of ids as one bit per id of its range, for many membership tests of a set that stays put:
/// each test is one read of a word that is likely in cache, where a bitmap's first finds its
/// container.
#[derive(Debug, Clone)]
pub(crate) struct DenseBits {
    first: u32,
    words: Vec<u64>,
}

impl DenseBits {
    /// `set` as bits, unless it is empty or its range spans more than `max_words` words.
    pub(crate) fn of(set: &RoaringBitmap, max_words: usize) -> Option<Self> {
        Self::spanning(set.min()?, set.max()?, set.iter(), max_words)
    }

    /// `ids` (in any order, repeats allowed) as bits, unless there are none or their range spans
    /// more than `max_words` words.
    pub(crate) fn of_ids(ids: &[ObjectId], max_words: usize) -> Option<Self> {
        Self::spanning(ids.iter().min()?.raw(), ids.iter().max()?.raw(), ids.iter().map(|id| id.raw()), max_words)
    }

    /// `ids`, all within `first..=last`, as bits, unless that range spans more than `max_words`.
    /// The bits start at a multiple of 64, so [`DenseBits::to_bitmap`] copies whole bytes.
    fn spanning(first: u32, last: u32, ids: impl Iterator<Item = u32>, max_words: usize) -> Option<Self> {
        let first = first & !63;
        let span = (last - first) as usize / 64 + 1;
        if span > max_words {
            return None;
        }
        let mut words = vec![0u64; span];
        for id in ids {
            let at = (id - first) as usize;
            if let Some(word) = words.get_mut(at / 64) {
                *word |= 1 << (at % 64);
            }
        }
        Some(DenseBits { first, words })
    }

    /// No ids yet, with room for `0..ids` (none when `ids` is 0): a set to gather into.
    pub(crate) fn zeroed(ids: u32) -> Option<Self> {
        (ids > 0).then(|| DenseBits { first: 0, words: vec![0; (ids as usize - 1) / 64 + 1] })
    }

    /// Adds `id`; false (and nothing added) when it lies outside the set's range.
    #[inline]
    pub(crate) fn insert(&mut self, id: ObjectId) -> bool {
        let Some(at) = id.raw().checked_sub(self.first) else { return false };
        let at = at as usize;
        match self.words.get_mut(at / 64) {
            Some(word) => {
                *word |= 1 << (at % 64);
                true
            }
            None => false,
        }
    }

    /// Adds every id of `other`, which must cover the same range (as two [`DenseBits::zeroed`]
    /// of one size do); false (and nothing added) when it does not.
    pub(crate) fn union_with(&mut self, other: &DenseBits) -> bool {
        if (self.first, self.words.len()) != (other.first, other.words.len()) {
            return false;
        }
        for (word, more) in self.words.iter_mut().zip(&other.words) {
            *word |= more;
        }
        true
    }

    /// The set as a bitmap, built container by container from the words' bytes (a dense
    /// container is a copy of them), not id by id.
    pub(crate) fn to_bitmap(&self) -> RoaringBitmap {
        let end = u64::from(self.first) + 64 * self.words.len() as u64;
        if end <= 1 << 32 {
            let bytes: Vec<u8> = self.words.iter().flat_map(|word| word.to_le_bytes()).collect();
            return RoaringBitmap::from_lsb0_bytes(self.first, &bytes);
        }
        // The bits run past the last id (`from_lsb0_bytes` would refuse): id by id.
        let ids = self.words.iter().enumerate().flat_map(|(at, &word)| {
            let base = self.first + (at as u32) * 64;
            BitsOf(word).map(move |bit| base + bit)
        });
        RoaringBitmap::from_sorted_iter(ids).unwrap_or_default()
    }

    /// True if `id` is in the set.
    #[inline]
    pub(crate) fn contains(&self, id: ObjectId) -> bool {
        let Some(at) = id.raw().checked_sub(self.first) else { return false };
        let at = at as usize;
        self.words.get(at / 64).is_some_and(|word| word & (1 << (at % 64)) != 0)
    }
}

/// The set bits of a word, lowest first.
struct BitsOf(u64);

impl Iterator for BitsOf {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

/// A value an [`IdMap`] can hold: it has an empty state (the default) it does not keep.
pub(crate) trait Slot: Default {
    /// True for the empty state.
    fn is_empty_slot(&self) -> bool;
}

impl Slot for IdSet {
    fn is_empty_slot(&self) -> bool {
        self.is_empty()
    }
}

/// Keys at or above this many times the number held make a dense map sparse.
const SPARSE_BELOW: usize = 8;
/// A sparse map turns dense once it holds at least one key in this many of its key range.
const DENSE_FROM: usize = 3;
/// Maps smaller than this stay sparse (a dense map's range would be noise).
const DENSE_MIN: usize = 16;
/// A sparse map keeps its keys in an ordered set (for [`IdMap::iter_from`]) once it holds this
/// many; a smaller one sorts its few keys when asked. Most sparse maps are small (a contextual
/// tuples' overlay builds several per request, holding one key each), and the ordered set would
/// cost each of them allocations on its first insert.
const ORDERED_KEYS_FROM: usize = 64;

/// A map from ids to values, dense or sparse by how many of the id range it holds; either way
/// [`IdMap::iter_from`] walks its keys in ascending order from any key without visiting those
/// before it (paged reads resume there).
#[derive(Debug, Clone)]
pub(crate) struct IdMap<V> {
    repr: Repr<V>,
    len: usize,
}

#[derive(Debug, Clone)]
enum Repr<V> {
    /// Keys are sparse; `end` is one past the largest key ever held. `keys`, once `map` has
    /// held [`ORDERED_KEYS_FROM`] keys, holds exactly the keys of `map`, in order, for
    /// [`IdMap::iter_from`]; before that it is `None`.
    Sparse { map: FxHashMap<u32, V>, keys: Option<RoaringBitmap>, end: usize },
    /// Value of key `k` at `k`; empty slots hold the empty value.
    Dense(Vec<V>),
}

impl<V> Default for IdMap<V> {
    fn default() -> Self {
        IdMap { repr: Repr::Sparse { map: FxHashMap::default(), keys: None, end: 0 }, len: 0 }
    }
}

impl<V: Slot> IdMap<V> {
    /// The value of `key`, `None` when it is empty.
    #[inline]
    pub(crate) fn get(&self, key: ObjectId) -> Option<&V> {
        let key = key.raw();
        let value = match &self.repr {
            Repr::Dense(slots) => slots.get(key as usize)?,
            Repr::Sparse { map, .. } => map.get(&key)?,
        };
        (!value.is_empty_slot()).then_some(value)
    }

    /// Changes the value of `key` (empty if absent) with `change`; an emptied value is dropped.
    pub(crate) fn update<R>(&mut self, key: ObjectId, change: impl FnOnce(&mut V) -> R) -> R {
        let key = key.raw();
        self.make_room(key);
        let (result, was_empty, now_empty) = match &mut self.repr {
            Repr::Dense(slots) => match slots.get_mut(key as usize) {
                Some(slot) => {
                    let was_empty = slot.is_empty_slot();
                    let result = change(slot);
                    (result, was_empty, slot.is_empty_slot())
                }
                None => {
                    // `make_room` made the slot; if not, change a scratch value and keep nothing.
                    let mut scratch = V::default();
                    (change(&mut scratch), true, true)
                }
            },
            Repr::Sparse { map, keys, end } => {
                let slot = map.entry(key).or_default();
                let was_empty = slot.is_empty_slot();
                let result = change(slot);
                let now_empty = slot.is_empty_slot();
                if now_empty {
                    map.remove(&key);
                    if let Some(keys) = keys {
                        keys.remove(key);
                    }
                } else {
                    *end = (*end).max(key as usize + 1);
                    if was_empty {
                        match keys {
                            Some(keys) => {
                                keys.insert(key);
                            }
                            None if map.len() >= ORDERED_KEYS_FROM => *keys = Some(map.keys().copied().collect()),
                            None => {}
                        }
                    }
                }
                (result, was_empty, now_empty)
            }
        };
        match (was_empty, now_empty) {
            (true, false) => self.len += 1,
            (false, true) => {
                self.len -= 1;
                self.maybe_sparse();
            }
            _ => {}
        }
        result
    }

    /// Makes sure a dense map has a slot for `key`, or turns the map dense or sparse to suit.
    fn make_room(&mut self, key: u32) {
        let wanted = key as usize + 1;
        match &mut self.repr {
            Repr::Dense(slots) if wanted <= slots.len() => {}
            Repr::Dense(slots) => {
                if wanted / SPARSE_BELOW > self.len + 1 {
                    self.make_sparse();
                } else {
                    slots.resize_with(wanted, V::default);
                }
            }
            Repr::Sparse { map, end, .. } => {
                let range = (*end).max(wanted);
                let held = self.len + usize::from(!map.contains_key(&key));
                if held >= DENSE_MIN && held.saturating_mul(DENSE_FROM) >= range {
                    let mut slots = Vec::with_capacity(range);
                    slots.resize_with(range, V::default);
                    for (k, v) in map.drain() {
                        if let Some(slot) = slots.get_mut(k as usize) {
                            *slot = v;
                        }
                    }
                    self.repr = Repr::Dense(slots);
                }
            }
        }
    }

    /// Turns a dense map that has become sparse into a hash map.
    fn maybe_sparse(&mut self) {
        if let Repr::Dense(slots) = &self.repr {
            if slots.len() / SPARSE_BELOW > self.len.max(DENSE_MIN) {
                self.make_sparse();
            }
        }
    }

    fn make_sparse(&mut self) {
        if let Repr::Dense(slots) = &mut self.repr {
            let mut map = FxHashMap::default();
            map.reserve(self.len);
            let mut end = 0;
            for (k, v) in std::mem::take(slots).into_iter().enumerate() {
                if !v.is_empty_slot() {
                    end = k + 1;
                    map.insert(k as u32, v);
                }
            }
            let keys = (map.len() >= ORDERED_KEYS_FROM).then(|| map.keys().copied().collect());
            self.repr = Repr::Sparse { map, keys, end };
        }
    }

    /// Every (key, value) held, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (ObjectId, &V)> + '_ {
        let (dense, sparse) = match &self.repr {
            Repr::Dense(slots) => (Some(slots.iter().enumerate().map(|(k, v)| (k as u32, v))), None),
            Repr::Sparse { map, .. } => (None, Some(map.iter().map(|(k, v)| (*k, v)))),
        };
        dense
            .into_iter()
            .flatten()
            .chain(sparse.into_iter().flatten())
            .filter(|(_, v)| !v.is_empty_slot())
            .map(|(k, v)| (ObjectId::from_raw(k), v))
    }

    /// Every (key, value) held with a key at or above `first`, in ascending key order. Costs
    /// what it yields: a dense map skips empty slots (at most a few per key held, as a map with
    /// more turns sparse), a sparse one walks its ordered key set, or sorts its few keys.
    pub(crate) fn iter_from(&self, first: ObjectId) -> impl Iterator<Item = (ObjectId, &V)> + '_ {
        let first = first.raw();
        let (dense, ordered, few) = match &self.repr {
            Repr::Dense(slots) => {
                let rest = slots.get(first as usize..).unwrap_or_default();
                (Some(rest.iter().enumerate().map(move |(k, v)| (first + k as u32, v))), None, None)
            }
            Repr::Sparse { map, keys: Some(keys), .. } => {
                (None, Some(keys.range(first..).filter_map(move |k| map.get(&k).map(|v| (k, v)))), None)
            }
            Repr::Sparse { map, keys: None, .. } => {
                let mut few: Vec<(u32, &V)> = map.iter().filter(|(&k, _)| k >= first).map(|(&k, v)| (k, v)).collect();
                few.sort_unstable_by_key(|&(k, _)| k);
                (None, None, Some(few))
            }
        };
        dense
            .into_iter()
            .flatten()
            .chain(ordered.into_iter().flatten())
            .chain(few.into_iter().flatten())
            .filter(|(_, v)| !v.is_empty_slot())
            .map(|(k, v)| (ObjectId::from_raw(k), v))
    }

    /// Every value held, mutably (empty ones too), to shrink them.
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> + '_ {
        let (dense, sparse) = match &mut self.repr {
            Repr::Dense(slots) => (Some(slots.iter_mut()), None),
            Repr::Sparse { map, .. } => (None, Some(map.values_mut())),
        };
        dense.into_iter().flatten().chain(sparse.into_iter().flatten())
    }

    /// Gives back spare capacity (after a bulk load).
    pub(crate) fn shrink_to_fit(&mut self) {
        match &mut self.repr {
            Repr::Dense(slots) => slots.shrink_to_fit(),
            Repr::Sparse { map, .. } => map.shrink_to_fit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The object id of raw `n`.
    fn id(n: u32) -> ObjectId {
        ObjectId::from_raw(n)
    }

    /// The object ids of raw `ns`, in order.
    fn ids_of(ns: &[u32]) -> Vec<ObjectId> {
        ns.iter().copied().map(id).collect()
    }

    /// The raw ids of `ids`, in order.
    fn raw<'a>(ids: impl IntoIterator<Item = (ObjectId, &'a IdSet)>) -> Vec<u32> {
        ids.into_iter().map(|(k, _)| k.raw()).collect()
    }

    #[test]
    fn sets_change_representation_with_size() {
        let mut set = IdSet::default();
        assert!(set.insert(id(7)));
        assert_eq!(set, IdSet::One(id(7)));
        assert!(set.insert(id(3)));
        assert!(!set.insert(id(3)));
        assert_eq!(set, IdSet::Few(ids_of(&[3, 7])));
        for n in 0..FEW_MAX as u32 + 10 {
            set.insert(id(n * 2));
        }
        assert!(matches!(set, IdSet::Many(_)));
        for n in 0..FEW_MAX as u32 + 10 {
            set.remove(id(n * 2));
        }
        assert_eq!(set, IdSet::Few(ids_of(&[3, 7])));
        assert!(set.remove(id(3)));
        assert_eq!(set, IdSet::One(id(7)));
        assert!(set.remove(id(7)));
        assert!(set.is_empty());
    }

    #[test]
    fn borrowed_sets_read_alike() {
        let few = IdSet::Few(ids_of(&[1, 5, 9]));
        let ids = few.ids();
        assert!(ids.contains(id(5)) && !ids.contains(id(4)));
        assert_eq!(ids.iter().collect::<Vec<_>>(), ids_of(&[1, 5, 9]));
        let other: RoaringBitmap = [5, 9, 11].into_iter().collect();
        assert_eq!(ids.intersect(&other).iter().collect::<Vec<_>>(), vec![5, 9]);
        let one: RoaringBitmap = [9].into_iter().collect();
        assert_eq!(ids.intersect(&one).iter().collect::<Vec<_>>(), vec![9]);
        let mut union = RoaringBitmap::new();
        union |= ids;
        union |= Ids::One(id(2));
        assert_eq!(union.len(), 4);
        let mut cow = IdsCow::from(ids);
        cow.to_mut().insert(0);
        assert_eq!(cow.iter().collect::<Vec<_>>(), ids_of(&[0, 1, 5, 9]));
    }

    /// A roaring bitmap read and written through [`ObjectBitmap`] holds the raw ids of the
    /// object ids put in, and gives them back typed and in order.
    #[test]
    fn object_bitmaps_keep_raw_ids_and_yield_typed_ones() {
        let mut bitmap = RoaringBitmap::new();
        assert!(bitmap.insert_object(id(9)) && bitmap.insert_object(id(2)) && !bitmap.insert_object(id(9)));
        assert!(bitmap.contains(9) && bitmap.contains_object(id(2)) && !bitmap.contains_object(id(3)));
        assert_eq!(bitmap.objects().collect::<Vec<_>>(), ids_of(&[2, 9]));
        assert!(bitmap.remove_object(id(2)) && !bitmap.remove_object(id(2)));
        assert_eq!(RoaringBitmap::from_sorted_objects(ids_of(&[1, 4])).ok(), Some(RoaringBitmap::from_iter([1, 4])));
        assert!(RoaringBitmap::from_sorted_objects(ids_of(&[4, 1])).is_err());
        assert_eq!(ids_of(&[7, 3, 7]).into_iter().collect::<RoaringBitmap>(), RoaringBitmap::from_iter([3, 7]));
    }

    #[test]
    fn maps_turn_dense_and_back() {
        let mut map: IdMap<IdSet> = IdMap::default();
        for key in (0..100).map(id) {
            map.update(key, |set| set.insert(key));
        }
        assert!(matches!(map.repr, Repr::Dense(_)));
        assert_eq!(map.len, 100);
        map.update(id(1_000_000), |set| set.insert(id(1)));
        assert!(matches!(map.repr, Repr::Sparse { .. }));
        for key in (0..100).map(id) {
            assert_eq!(map.get(key), Some(&IdSet::One(key)));
        }
        for key in (0..100).map(id) {
            map.update(key, |set| set.remove(key));
        }
        assert_eq!(map.len, 1);
        assert_eq!(raw(map.iter()), vec![1_000_000]);
        assert!(map.get(id(5)).is_none());
    }

    #[test]
    fn maps_and_sets_walk_in_order_from_any_key() {
        let mut map: IdMap<IdSet> = IdMap::default();
        let keys = [9u32, 3, 700_000, 41, 12];
        for key in keys.map(id) {
            map.update(key, |set| set.insert(key));
        }
        assert!(matches!(map.repr, Repr::Sparse { .. }));
        let from = |map: &IdMap<IdSet>, first| raw(map.iter_from(id(first)));
        assert_eq!(from(&map, 0), vec![3, 9, 12, 41, 700_000]);
        assert_eq!(from(&map, 12), vec![12, 41, 700_000]);
        map.update(id(41), |set| set.remove(id(41)));
        assert_eq!(from(&map, 13), vec![700_000]);
        let mut dense: IdMap<IdSet> = IdMap::default();
        for key in (0..100).filter(|k| k % 3 != 0).map(id) {
            dense.update(key, |set| set.insert(key));
        }
        assert!(matches!(dense.repr, Repr::Dense(_)));
        assert_eq!(from(&dense, 95), vec![95, 97, 98]);
        assert_eq!(from(&dense, 1_000), Vec::<u32>::new());
        let few = IdSet::Few(ids_of(&[2, 4, 8]));
        assert_eq!(few.ids().iter_from(id(3)).collect::<Vec<_>>(), ids_of(&[4, 8]));
        assert_eq!(Ids::One(id(5)).iter_from(id(6)).count(), 0);
        let many: RoaringBitmap = (0..5_000u32).map(|n| n * 2).collect();
        assert_eq!(Ids::Many(&many).iter_from(id(9_995)).collect::<Vec<_>>(), ids_of(&[9_996, 9_998]));
    }

    /// Dense bits give back exactly their ids, wherever the range starts (aligned or not, one
    /// container or many) and up to the last id (where the bytes would run past 2^32).
    #[test]
    fn dense_bits_to_bitmap_keeps_exactly_the_ids() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(31);
        for (low, high, count) in [(0, 100, 50), (3, 200_000, 30_000), (65_530, 65_600, 40), (777, 1 << 20, 5_000)] {
            let ids: Vec<ObjectId> = (0..count).map(|_| id(rng.gen_range(low..high))).collect();
            let expected: RoaringBitmap = ids.iter().copied().collect();
            let bits = DenseBits::of_ids(&ids, usize::MAX).expect("ids within range");
            assert_eq!(bits.to_bitmap(), expected, "ids in {low}..{high}");
            assert!(ids.iter().all(|&id| bits.contains(id)));
        }
        let (mut gathered, mut more) = (DenseBits::zeroed(1_000).unwrap(), DenseBits::zeroed(1_000).unwrap());
        assert!(gathered.insert(id(3)) && gathered.insert(id(999)) && more.insert(id(64)) && !more.insert(id(1_024)));
        assert!(gathered.union_with(&more) && !gathered.union_with(&DenseBits::zeroed(10).unwrap()));
        assert_eq!(gathered.to_bitmap(), RoaringBitmap::from_iter([3, 64, 999]));
        assert!(DenseBits::zeroed(0).is_none());
        let top = [u32::MAX - 70, u32::MAX - 1, u32::MAX];
        let bits = DenseBits::of_ids(&ids_of(&top), 8).expect("three ids");
        assert_eq!(bits.to_bitmap(), top.iter().copied().collect::<RoaringBitmap>());
    }

    /// The walked nested-group check regression: every contextual-tuple overlay built an ordered
    /// key set per map on its first insert. Small sparse maps now keep none and sort on demand;
    /// large ones keep it, and both walk in order from any key.
    #[test]
    fn small_sparse_maps_keep_no_ordered_key_set() {
        let mut small: IdMap<IdSet> = IdMap::default();
        small.update(id(1_000), |set| set.insert(id(1)));
        assert!(matches!(small.repr, Repr::Sparse { keys: None, .. }));
        let mut large: IdMap<IdSet> = IdMap::default();
        let keys: Vec<u32> = (0..ORDERED_KEYS_FROM as u32 + 10).map(|k| k * 1_000 + 7).rev().collect();
        for key in keys.iter().copied().map(id) {
            large.update(key, |set| set.insert(key));
        }
        assert!(matches!(large.repr, Repr::Sparse { keys: Some(_), .. }));
        large.update(id(7_007), |set| set.remove(id(7_007)));
        let from = |map: &IdMap<IdSet>, first| raw(map.iter_from(id(first)));
        let mut expected: Vec<u32> = keys.iter().copied().filter(|&k| k >= 5_000 && k != 7_007).collect();
        expected.sort_unstable();
        assert_eq!(from(&large, 5_000), expected);
        assert_eq!(from(&small, 999), vec![1_000]);
        assert_eq!(from(&small, 1_001), Vec::<u32>::new());
    }
}
