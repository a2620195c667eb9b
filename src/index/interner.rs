//! String ↔ dense `u32` interning for type names, relation names and object ids.
//!
//! What it owns: every interned string once, in one arena (`bytes`, with the end offset of each
//! string in `ends`), and a hash table whose 12-byte buckets hold an id, a hash tag and where its
//! string sits, so a lookup reads one bucket and then the string. A store's millions of object
//! ids so cost their bytes plus about 26, instead of a heap string each and a map holding a second
//! pointer to it.
//!
//! Invariant: ids are dense and stable: the n-th distinct string gets `offset + n` and keeps it
//! for the interner's life (nothing is ever un-interned); the table holds exactly the local ids
//! `0..ends.len()`, each under the hash of its string.
//! Must not import anything outside `index`.

use super::ids::Id;
use rustc_hash::FxBuildHasher;
use std::hash::BuildHasher;

/// Assigns dense ids (of type `I`) to strings.
#[derive(Debug, Clone)]
pub(crate) struct Interner<I> {
    /// Every string, one after the other.
    bytes: String,
    /// Per local id, one past the end of its string in `bytes`.
    ends: Vec<usize>,
    /// Local ids, hashed by their string.
    table: Table,
    offset: u32,
    id: std::marker::PhantomData<I>,
}

impl<I> Default for Interner<I> {
    fn default() -> Self {
        Interner {
            bytes: String::new(),
            ends: Vec::new(),
            table: Table::default(),
            offset: 0,
            id: std::marker::PhantomData,
        }
    }
}

/// Names resolved together by [`Interner::get_many`]: enough lookups in flight to overlap their
/// cache misses, few enough that their state stays in registers and L1.
const LOOKUP_WAVE: usize = 16;

fn hash(name: &str) -> u64 {
    // Fibonacci-mixed so the top bits (the bucket) and the middle bits (the tag) are both spread.
    FxBuildHasher.hash_one(name).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Whether two names are the same bytes. Names are short (type and relation names, most ids),
/// and for those a call to `memcmp` costs more than the comparison: 4 to 16 bytes are compared
/// as two (overlapping) words, fewer byte by byte; longer ones go to the slice comparison.
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

/// [`same_name`] of bytes.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    let word = |bytes: &[u8], at: usize| -> u64 {
        bytes.get(at..at + 8).and_then(|word| <[u8; 8]>::try_from(word).ok()).map_or(0, u64::from_ne_bytes)
    };
    let half = |bytes: &[u8], at: usize| -> u32 {
        bytes.get(at..at + 4).and_then(|half| <[u8; 4]>::try_from(half).ok()).map_or(0, u32::from_ne_bytes)
    };
    match len {
        0..=3 => a.iter().zip(b).all(|(x, y)| x == y),
        4..=7 => half(a, 0) == half(b, 0) && half(a, len - 4) == half(b, len - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, len - 8) == word(b, len - 8),
        _ => a == b,
    }
}

/// The string of local id `local` in an arena.
fn name_in<'s>(bytes: &'s str, ends: &[usize], local: u32) -> Option<&'s str> {
    let local = local as usize;
    let start = match local.checked_sub(1) {
        Some(before) => *ends.get(before)?,
        None => 0,
    };
    bytes.get(start..*ends.get(local)?)
}

/// One slot of a [`Table`]: 12 bytes, so a lookup's first memory read brings the id, the tag and
/// where the string sits, and its second the string itself.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    id: u32,
    /// Where the string starts in the arena; [`Bucket::FAR`] when that does not fit in 32 bits.
    start: u32,
    /// 0 when empty, else `0x8000` and fifteen bits of the hash.
    tag: u16,
    /// The string's length; [`Bucket::LONG`] when that does not fit in 16 bits.
    len: u16,
}

impl Bucket {
    /// `start` of a string past 4 GiB into the arena (then the arena's `ends` say where it is).
    const FAR: u32 = u32::MAX;
    /// `len` of a string of 64 KiB or more.
    const LONG: u16 = u16::MAX;

    fn new(id: u32, tag: u16, start: usize, len: usize) -> Self {
        match (u32::try_from(start), u16::try_from(len)) {
            (Ok(start), Ok(len)) if start != Self::FAR && len != Self::LONG => Bucket { id, start, tag, len },
            _ => Bucket { id, start: Self::FAR, tag, len: Self::LONG },
        }
    }

    /// Whether the bucket's string is `name`: the lengths are compared first (most buckets
    /// with the same tag hold a name of another length), then the bytes, with no char-boundary
    /// checks (equal bytes are the same string).
    fn holds(&self, bytes: &str, ends: &[usize], name: &str) -> bool {
        if self.start == Self::FAR {
            return name_in(bytes, ends, self.id) == Some(name);
        }
        if usize::from(self.len) != name.len() {
            return false;
        }
        let start = self.start as usize;
        // Not `str::get`: a cut off a char boundary simply differs from `name`, which is whole.
        bytes.as_bytes().get(start..start + name.len()).is_some_and(|held| same_bytes(held, name.as_bytes()))
    }

    /// The bucket's string, read from the arena by the bucket alone when it can be.
    fn name<'s>(&self, bytes: &'s str, ends: &[usize]) -> Option<&'s str> {
        if self.start == Self::FAR {
            return name_in(bytes, ends, self.id);
        }
        let start = self.start as usize;
        bytes.get(start..start + usize::from(self.len))
    }
}

/// Open addressing with linear probing, at most 7/8 full, of [`Bucket`]s. Its layout is known,
/// unlike a general hash map's, so a batch of lookups can take its steps side by side
/// ([`Interner::get_many`]).
#[derive(Debug, Clone, Default)]
struct Table {
    buckets: Vec<Bucket>,
    len: usize,
}

impl Table {
    /// The first bucket and the tag of a hash (the table is not empty).
    fn start(&self, hashed: u64) -> (usize, u16) {
        let bits = self.buckets.len().trailing_zeros();
        let bucket = (hashed >> (64 - bits)) as usize & (self.buckets.len() - 1);
        (bucket, 0x8000 | ((hashed >> 20) as u16 & 0x7fff))
    }

    /// The index of the first bucket from `index` on that holds `tag`, unless an empty one
    /// comes first.
    fn next_match(&self, mut index: usize, tag: u16) -> Option<usize> {
        let mask = self.buckets.len() - 1;
        loop {
            match self.buckets.get(index)?.tag {
                found if found == tag => return Some(index),
                0 => return None,
                _ => index = (index + 1) & mask,
            }
        }
    }

    /// The bucket under `hashed` for which `is` holds.
    fn find(&self, hashed: u64, is: impl Fn(&Bucket) -> bool) -> Option<&Bucket> {
        if self.buckets.is_empty() {
            return None;
        }
        let mask = self.buckets.len() - 1;
        let (mut index, tag) = self.start(hashed);
        loop {
            index = self.next_match(index, tag)?;
            let bucket = self.buckets.get(index)?;
            if is(bucket) {
                return Some(bucket);
            }
            index = (index + 1) & mask;
        }
    }

    /// Adds a bucket for a string known to be absent; `rehash` gives the hash of any bucket's
    /// string.
    fn insert_unique(&mut self, hashed: u64, id: u32, start: usize, len: usize, rehash: impl Fn(&Bucket) -> u64) {
        if (self.len + 1) * 8 > self.buckets.len() * 7 {
            self.resize((self.buckets.len() * 2).max(16), &rehash);
        }
        let (_, tag) = self.start(hashed);
        self.place(hashed, Bucket::new(id, tag, start, len));
        self.len += 1;
    }

    fn place(&mut self, hashed: u64, bucket: Bucket) {
        let mask = self.buckets.len() - 1;
        let (mut index, tag) = self.start(hashed);
        while self.buckets[index].tag != 0 {
            index = (index + 1) & mask;
        }
        self.buckets[index] = Bucket { tag, ..bucket };
    }

    fn resize(&mut self, buckets: usize, rehash: impl Fn(&Bucket) -> u64) {
        let old = std::mem::replace(self, Table { buckets: vec![Bucket::default(); buckets], len: self.len });
        for bucket in old.buckets.iter().filter(|b| b.tag != 0) {
            self.place(rehash(bucket), *bucket);
        }
    }

    /// The fewest buckets (a power of two, at least 16) that hold `len` ids at most 7/8 full.
    fn buckets_for(len: usize) -> usize {
        (len * 8).div_ceil(7).next_power_of_two().max(16)
    }
}

impl<I: Id> Interner<I> {
    /// An interner whose first id is `offset` (used by request-local overlays over a base index).
    pub(crate) fn with_offset(offset: u32) -> Self {
        Interner { offset, ..Interner::default() }
    }

    /// The id of `name`, interning it if new.
    pub(crate) fn intern(&mut self, name: &str) -> I {
        let hashed = hash(name);
        let Interner { bytes, ends, table, offset, .. } = self;
        if let Some(bucket) = table.find(hashed, |b| b.holds(bytes, ends, name)) {
            return I::from_raw(*offset + bucket.id);
        }
        let local = ends.len() as u32;
        let start = bytes.len();
        table.insert_unique(hashed, local, start, name.len(), |b| hash(b.name(bytes, ends).unwrap_or_default()));
        bytes.push_str(name);
        ends.push(bytes.len());
        I::from_raw(*offset + local)
    }

    /// The id of `name` if interned.
    pub(crate) fn get(&self, name: &str) -> Option<I> {
        let bucket = self.table.find(hash(name), |b| b.holds(&self.bytes, &self.ends, name))?;
        Some(I::from_raw(self.offset + bucket.id))
    }

    /// [`Interner::get`] of every name, in order. The lookups go in waves, each step taken for
    /// the whole wave before the next, so a wave's memory reads overlap instead of each waiting
    /// for the one before: first each name's first bucket is read (one read, independent of the
    /// others); then, those lines now in cache, each probe run is followed to the bucket with the
    /// name's tag; then a byte of each such bucket's string is read; the comparisons then find
    /// their data in cache.
    pub(crate) fn get_many<S: AsRef<str>>(&self, names: &[S]) -> Vec<Option<I>> {
        let mut found = Vec::with_capacity(names.len());
        if self.table.buckets.is_empty() {
            found.resize(names.len(), None);
            return found;
        }
        let arena = self.bytes.as_bytes();
        let table = &self.table;
        for wave in names.chunks(LOOKUP_WAVE) {
            let mut starts = [(0usize, 0u16); LOOKUP_WAVE];
            for (start, name) in starts.iter_mut().zip(wave) {
                *start = table.start(hash(name.as_ref()));
            }
            let first =
                starts.iter().fold(0u16, |acc, &(index, _)| acc ^ table.buckets.get(index).map_or(0, |b| b.tag));
            std::hint::black_box(first);
            let mut candidates = [None; LOOKUP_WAVE];
            for (candidate, &(index, tag)) in candidates.iter_mut().zip(&starts).take(wave.len()) {
                *candidate = table.next_match(index, tag).and_then(|found| table.buckets.get(found));
            }
            let touched =
                candidates.iter().flatten().fold(0u8, |acc, b| acc ^ arena.get(b.start as usize).copied().unwrap_or(0));
            std::hint::black_box(touched);
            for (name, candidate) in wave.iter().zip(&candidates) {
                let name = name.as_ref();
                let hit = match candidate {
                    // No bucket with the tag in the run: absent.
                    None => None,
                    Some(bucket) if bucket.holds(&self.bytes, &self.ends, name) => {
                        Some(I::from_raw(self.offset + bucket.id))
                    }
                    // Another name with the same tag: probe on.
                    Some(_) => self.get(name),
                };
                found.push(hit);
            }
        }
        found
    }

    /// [`Interner::name`] of every id, in order, in waves whose reads (each string's end, then
    /// its first byte) are taken for the whole wave first, so they overlap.
    pub(crate) fn names_many(&self, ids: &[I]) -> Vec<Option<&str>> {
        let mut names = Vec::with_capacity(ids.len());
        let arena = self.bytes.as_bytes();
        for wave in ids.chunks(LOOKUP_WAVE) {
            let mut starts = [0usize; LOOKUP_WAVE];
            for (start, &id) in starts.iter_mut().zip(wave) {
                let local = id.raw().wrapping_sub(self.offset) as usize;
                *start = local.checked_sub(1).and_then(|before| self.ends.get(before)).copied().unwrap_or(0);
            }
            let touched = starts.iter().fold(0u8, |acc, &start| acc ^ arena.get(start).copied().unwrap_or(0));
            std::hint::black_box(touched);
            names.extend(wave.iter().map(|&id| self.name(id)));
        }
        names
    }

    /// The string of an id this interner assigned.
    pub(crate) fn name(&self, id: I) -> Option<&str> {
        name_in(&self.bytes, &self.ends, id.raw().checked_sub(self.offset)?)
    }

    /// One past the largest id assigned.
    pub(crate) fn end(&self) -> u32 {
        self.offset + self.ends.len() as u32
    }

    /// Gives back spare capacity (after a bulk load).
    pub(crate) fn shrink_to_fit(&mut self) {
        let Interner { bytes, ends, table, .. } = self;
        bytes.shrink_to_fit();
        ends.shrink_to_fit();
        let buckets = Table::buckets_for(table.len);
        if buckets < table.buckets.len() {
            table.resize(buckets, |b| hash(b.name(bytes, ends).unwrap_or_default()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::ObjectId;

    /// The object id of raw `n` (the interners here hand out object ids).
    fn id(n: u32) -> ObjectId {
        ObjectId::from_raw(n)
    }

    #[test]
    fn same_name_agrees_with_string_equality() {
        let names: Vec<String> = (0..40)
            .flat_map(|len| {
                let base: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
                let mut last = base.clone();
                last.pop();
                last.push('#');
                let mut first = base.clone();
                if !first.is_empty() {
                    first.replace_range(0..1, "#");
                }
                [base, last, first]
            })
            .collect();
        for a in &names {
            for b in &names {
                assert_eq!(same_name(a, b), a == b, "{a:?} {b:?}");
            }
        }
        assert!(same_name("é", "é") && !same_name("é", "e"));
    }

    #[test]
    fn ids_are_dense_and_stable() {
        let mut interner: Interner<ObjectId> = Interner::default();
        assert_eq!(interner.intern("a"), id(0));
        assert_eq!(interner.intern("b"), id(1));
        assert_eq!(interner.intern("a"), id(0));
        assert_eq!(interner.name(id(1)), Some("b"));
        assert_eq!(interner.get("c"), None);
    }

    #[test]
    fn offset_interner_starts_past_the_base() {
        let mut interner: Interner<ObjectId> = Interner::with_offset(10);
        assert_eq!(interner.intern("x"), id(10));
        assert_eq!(interner.name(id(10)), Some("x"));
        assert_eq!(interner.name(id(3)), None);
        assert_eq!(interner.end(), 11);
    }

    #[test]
    fn many_names_survive_table_growth() {
        let mut interner: Interner<ObjectId> = Interner::default();
        for i in 0..10_000u32 {
            assert_eq!(interner.intern(&format!("n{i}")), id(i));
        }
        interner.intern("");
        interner.shrink_to_fit();
        for i in 0..10_000u32 {
            assert_eq!(interner.get(&format!("n{i}")), Some(id(i)));
            assert_eq!(interner.name(id(i)), Some(format!("n{i}").as_str()));
        }
        assert_eq!(interner.get(""), Some(id(10_000)));
        assert_eq!(interner.name(id(10_000)), Some(""));
    }

    #[test]
    fn get_many_answers_as_get_does_for_known_and_unknown_names() {
        let mut interner: Interner<ObjectId> = Interner::with_offset(7);
        assert_eq!(interner.get_many(&["a", "b"]), vec![None, None], "an empty interner knows no name");
        for i in 0..5_000u32 {
            interner.intern(&format!("d{i}"));
        }
        interner.intern("");
        // Known, unknown, repeated and empty names, in more than one wave and a partial last one.
        let names: Vec<String> = (0..1_000u32)
            .map(|i| if i % 3 == 0 { format!("x{i}") } else { format!("d{}", (i * 7919) % 5_000) })
            .chain(["".into(), "d1".into(), "d1".into()])
            .collect();
        let one_by_one: Vec<Option<ObjectId>> = names.iter().map(|n| interner.get(n)).collect();
        assert_eq!(interner.get_many(&names), one_by_one);
        assert!(one_by_one.iter().any(Option::is_none) && one_by_one.iter().any(Option::is_some));
    }

    #[test]
    fn names_many_answers_as_name_does_for_assigned_and_unassigned_ids() {
        let mut interner: Interner<ObjectId> = Interner::with_offset(5);
        for i in 0..100u32 {
            interner.intern(&format!("n{i}"));
        }
        let ids: Vec<ObjectId> = (0..120).rev().chain([5, 5, 104, u32::MAX]).map(id).collect();
        let one_by_one: Vec<Option<&str>> = ids.iter().map(|&id| interner.name(id)).collect();
        assert_eq!(interner.names_many(&ids), one_by_one);
        assert!(one_by_one.iter().any(Option::is_none) && one_by_one.iter().any(Option::is_some));
    }

    #[test]
    fn names_too_long_for_a_bucket_are_found_through_the_arena_ends() {
        let mut interner: Interner<ObjectId> = Interner::default();
        let long = "x".repeat(70_000);
        let short = interner.intern("short");
        let id = interner.intern(&long);
        assert_eq!(interner.intern(&long), id);
        assert_eq!(interner.get(&long), Some(id));
        assert_eq!(interner.get_many(&[long.as_str(), "short", "other"]), vec![Some(id), Some(short), None]);
        assert_eq!(interner.name(id), Some(long.as_str()));
        assert_eq!(interner.get(&"x".repeat(69_999)), None);
    }

    #[test]
    fn a_bucket_past_four_gib_of_arena_reads_its_string_through_the_ends() {
        let far = Bucket::new(1, 0x8001, 5 << 30, 3);
        assert_eq!((far.start, far.len), (Bucket::FAR, Bucket::LONG));
        let (bytes, ends) = ("abcdef", [3, 6]);
        assert_eq!(far.name(bytes, &ends), Some("def"));
        assert_eq!(Bucket::new(1, 0x8001, 3, 3).name(bytes, &ends), Some("def"));
    }

    #[test]
    fn a_table_seven_eighths_full_finds_every_name_and_no_other() {
        // A table of 16 buckets holds at most 14 names, so probe runs are long and wrap around.
        let mut interner: Interner<ObjectId> = Interner::default();
        let names: Vec<String> = (0..14).map(|i| format!("name-{i}")).collect();
        for (i, name) in names.iter().enumerate() {
            assert_eq!(interner.intern(name), id(i as u32));
        }
        assert_eq!(interner.table.buckets.len(), 16);
        let wanted: Vec<Option<ObjectId>> = (0..14).map(|i| Some(id(i))).collect();
        assert_eq!(interner.get_many(&names), wanted);
        assert_eq!(interner.get("name-14"), None);
        assert_eq!(interner.get_many(&["name-14"]), vec![None]);
    }
}
