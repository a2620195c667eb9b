//! Reads that never wait for writes: a store's data in two copies, one that readers use and a
//! spare that the writer brings up to date and then publishes (a left-right scheme in safe Rust).
//!
//! What it owns: the two copies, the swap between them, and the list of changes the spare has
//! not seen yet. A read is one lock-free `ArcSwap` load; it holds its copy until it drops it,
//! however many writes publish meanwhile. A write applies its change to the spare and swaps it
//! in; then a catch-up thread waits until no reader holds the copy just retired (readers that
//! began before this publish) and applies the same change to it, so the next write finds its
//! spare ready (if that write comes first, it catches up itself). So readers never block; a
//! writer waits only for readers two versions old, and applies its change once in line.
//!
//! **Invariant:** both copies are the same initial value with the same changes applied in the
//! same order, so after a write's replay the spare equals the copy it replaces. Changes are
//! therefore deterministic functions of the copy they are given. A thread must not hold a read
//! of a [`Snapshots`] while it writes to it (the write would wait for that read forever).
//!
//! Nothing needs the spare to be current between writes, so nothing waits for it; an embedder
//! that wants the catch-up done (say, before measuring memory or timing a write burst) calls
//! [`Engine::sync`](super::Engine::sync). A bulk load (`engine/load.rs`) publishes a copy
//! built from scratch and keeps no spare at all until the next write, so a store that is
//! loaded once and then only read costs one copy.
//!
//! The engine's list of stores is read the same way ([`StoreMap`]): a lookup is one lock-free
//! load, and creating or deleting a store publishes a new map.
//! Must not import `api` or `store`.

use super::StoreState;
use arc_swap::{ArcSwap, Guard};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::Duration;

/// The engine's stores by id, shared with the follower thread; read without locks.
#[derive(Clone)]
pub(super) struct StoreMap(Arc<ArcSwap<FxHashMap<String, Arc<StoreState>>>>);

impl Default for StoreMap {
    fn default() -> Self {
        StoreMap(Arc::new(ArcSwap::from_pointee(FxHashMap::default())))
    }
}

impl StoreMap {
    /// The store with this id.
    pub(super) fn get(&self, id: &str) -> Option<Arc<StoreState>> {
        self.0.load().get(id).cloned()
    }

    /// Every store id.
    pub(super) fn ids(&self) -> Vec<String> {
        self.0.load().keys().cloned().collect()
    }

    /// Every store.
    pub(super) fn all(&self) -> Vec<(String, Arc<StoreState>)> {
        self.0.load().iter().map(|(id, state)| (id.clone(), state.clone())).collect()
    }

    /// Adds (or replaces) a store; publishes a new map.
    pub(super) fn insert(&self, id: String, state: Arc<StoreState>) {
        self.0.rcu(|map| {
            let mut map = FxHashMap::clone(map);
            map.insert(id.clone(), state.clone());
            map
        });
    }

    /// Removes a store and marks it deleted (so handles still holding it answer
    /// `StoreNotFound`); publishes a new map.
    pub(super) fn remove(&self, id: &str) {
        let before = self.0.rcu(|map| {
            let mut map = FxHashMap::clone(map);
            map.remove(id);
            map
        });
        if let Some(state) = before.get(id) {
            state.mark_deleted();
        }
    }
}

/// A change applied to each copy in turn.
type Change<T> = Box<dyn Fn(&mut T) + Send + Sync>;

/// One value read without locks and written by one writer at a time.
pub(super) struct Snapshots<T> {
    live: ArcSwap<T>,
    /// Shared with the catch-up thread of the last write.
    spare: Arc<Mutex<Spare<T>>>,
}

/// The copy readers no longer take, and the changes it lacks.
struct Spare<T> {
    /// `None` after a bulk load ([`Snapshots::replace`]), or after a change panicked while the
    /// spare was out; in either case the next write starts the
    /// spare again from a clone of the live copy.
    copy: Option<Arc<T>>,
    behind: Vec<Change<T>>,
}

impl<T: Clone + Send + Sync + 'static> Snapshots<T> {
    /// Two copies of `value` (the spare is a clone, so memory is twice the value's).
    pub(super) fn new(value: T) -> Snapshots<T> {
        let spare = Some(Arc::new(value.clone()));
        Snapshots {
            live: ArcSwap::from_pointee(value),
            spare: Arc::new(Mutex::new(Spare { copy: spare, behind: Vec::new() })),
        }
    }

    /// The current copy; it stays valid and unchanged while the guard lives. Keep the guard for
    /// the length of one request (each thread has only a few cheap slots for guards).
    pub(super) fn read(&self) -> Guard<Arc<T>> {
        self.live.load()
    }

    /// Applies `change` and publishes the result; returns when every later read sees it.
    ///
    /// `change` runs twice, once on each copy (the second time on the catch-up thread, or at the
    /// next write), so it must depend on nothing but the copy it is given and what it owns.
    pub(super) fn write(&self, change: impl Fn(&mut T) + Send + Sync + 'static) {
        let mut spare = self.spare.lock();
        let mut value = match spare.copy.take() {
            Some(copy) => catch_up(copy, &mut spare.behind),
            None => {
                spare.behind.clear();
                T::clone(&self.live.load())
            }
        };
        change(&mut value);
        spare.copy = Some(self.live.swap(Arc::new(value)));
        spare.behind.push(Box::new(change));
        drop(spare);
        // The retired copy catches up off the writer's path; should no thread start, the next
        // write does it in line.
        let shared = Arc::clone(&self.spare);
        let _ = std::thread::Builder::new().name("writ-catch-up".into()).spawn(move || {
            let mut spare = shared.lock();
            if spare.behind.is_empty() {
                return;
            }
            if let Some(copy) = spare.copy.take() {
                let value = catch_up(copy, &mut spare.behind);
                spare.copy = Some(Arc::new(value));
            }
        });
    }
}

impl<T> Snapshots<T> {
    /// Publishes `value` in place of the current copy and drops the spare: a bulk load's result,
    /// built from scratch rather than changed in place. Until the next write only one copy is
    /// kept (the retired one goes once its last reader drops it); that write starts the spare
    /// again from a clone of the live copy, once.
    pub(super) fn replace(&self, value: T) {
        let mut spare = self.spare.lock();
        spare.copy = None;
        spare.behind.clear();
        self.live.store(Arc::new(value));
    }
}

impl super::Engine {
    /// Returns once every store's spare index copy (see the engine's module doc: each store's
    /// data is kept twice, and a write's change reaches the second copy after the write returns)
    /// has every committed write applied, doing the catch-up on this thread if its catch-up
    /// thread has not yet. After it, no write is pending on any copy, and the next write starts
    /// without catching up first. A write that lands meanwhile leaves the same work behind again.
    pub fn sync(&self) {
        for (_, state) in self.core.stores.all() {
            state.data.sync();
        }
    }
}

impl<T> Snapshots<T> {
    /// Brings the spare up to date with the live copy, here and now unless the catch-up thread
    /// already has; waits meanwhile for readers still holding the spare (as a write does).
    pub(super) fn sync(&self) {
        let mut spare = self.spare.lock();
        if spare.behind.is_empty() {
            return;
        }
        if let Some(copy) = spare.copy.take() {
            let value = catch_up(copy, &mut spare.behind);
            spare.copy = Some(Arc::new(value));
        }
    }
}

/// The spare's value with the changes it lacks applied, in order, once no reader holds it.
/// Should a change panic, the spare stays out (`copy` is `None`) and the next write starts it
/// again from the live copy.
fn catch_up<T>(copy: Arc<T>, behind: &mut Vec<Change<T>>) -> T {
    let mut value = wait_until_unshared(copy);
    for change in behind.drain(..) {
        change(&mut value);
    }
    value
}

/// The spare's value, once no reader holds it. Readers that still hold it began before the
/// previous publish: a check ends in microseconds, a large list in milliseconds. No new reader
/// can take it, as `live` no longer points at it.
fn wait_until_unshared<T>(mut copy: Arc<T>) -> T {
    let (mut spins, mut pause) = (0u32, Duration::from_micros(1));
    loop {
        match Arc::try_unwrap(copy) {
            Ok(value) => return value,
            Err(shared) => copy = shared,
        }
        if spins < 64 {
            std::hint::spin_loop();
        } else if spins < 128 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
        spins = spins.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn a_read_sees_every_write_published_before_it() {
        let values = Snapshots::new(vec![0u32]);
        for n in 1..=5 {
            values.write(move |v: &mut Vec<u32>| v.push(n));
            assert_eq!(**values.read(), (0..=n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_retired_copy_catches_up_without_waiting_for_the_next_write() {
        let values = Snapshots::new(vec![0u32]);
        values.write(|v: &mut Vec<u32>| v.push(1));
        // The catch-up thread applies the change to the copy the write retired, on its own.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            {
                let spare = values.spare.lock();
                if spare.behind.is_empty() {
                    assert_eq!(spare.copy.as_deref(), Some(&vec![0, 1]));
                    break;
                }
            }
            assert!(std::time::Instant::now() < deadline, "the retired copy never caught up");
            std::thread::sleep(Duration::from_millis(1));
        }
        values.write(|v| v.push(2));
        assert_eq!(**values.read(), vec![0, 1, 2]);
    }

    #[test]
    fn sync_leaves_the_spare_equal_to_the_live_copy() {
        let values = Snapshots::new(vec![0u32]);
        for n in 1..=3 {
            values.write(move |v: &mut Vec<u32>| v.push(n));
        }
        values.sync();
        let spare = values.spare.lock();
        assert!(spare.behind.is_empty(), "a change is still pending on the spare");
        assert_eq!(spare.copy.as_deref(), Some(&vec![0, 1, 2, 3]));
        assert_eq!(**values.read(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_held_read_keeps_its_version_while_writes_publish() {
        let values = Snapshots::new(0u64);
        let before = values.read();
        // The write goes to the spare, which `before` does not hold, so it does not wait.
        values.write(|v| *v += 1);
        assert_eq!(**before, 0);
        assert_eq!(**values.read(), 1);
        // The next write needs the copy `before` holds: once it is dropped, the write goes on.
        drop(before);
        values.write(|v| *v += 10);
        assert_eq!(**values.read(), 11);
    }

    #[test]
    fn the_spare_catches_up_with_every_change_in_order() {
        let values = Snapshots::new(String::new());
        for ch in ["a", "b", "c", "d"] {
            values.write(move |s: &mut String| s.push_str(ch));
        }
        // Each write's change reaches the spare after it (on the catch-up thread or at the next
        // write); after four writes both copies have seen a..c and the live one d as well.
        assert_eq!(values.read().as_str(), "abcd");
        values.write(|s| s.push('e'));
        assert_eq!(values.read().as_str(), "abcde");
    }

    #[test]
    fn a_write_waits_for_readers_of_the_spare_but_readers_never_wait() {
        let values = Arc::new(Snapshots::new(0u64));
        let old = values.read(); // holds version 0
        values.write(|v| *v += 1); // publishes 1; version 0's copy is now the spare
        let writer_done = Arc::new(AtomicBool::new(false));
        let writer = {
            let (values, done) = (Arc::clone(&values), Arc::clone(&writer_done));
            std::thread::spawn(move || {
                values.write(|v| *v += 1); // must wait: `old` still holds the spare
                done.store(true, Ordering::SeqCst);
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!writer_done.load(Ordering::SeqCst), "the writer went on while a reader held its copy");
        assert_eq!(**values.read(), 1, "a reader got the published version while the writer waited");
        drop(old);
        writer.join().expect("writer thread");
        assert!(writer_done.load(Ordering::SeqCst));
        assert_eq!(**values.read(), 2);
    }

    #[test]
    fn concurrent_readers_see_only_whole_versions() {
        // Each write keeps the two halves equal; a torn or half-applied copy would break it.
        let values = Arc::new(Snapshots::new((0u64, 0u64)));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (values, stop) = (Arc::clone(&values), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut last = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let v = values.read();
                        assert_eq!(v.0, v.1);
                        assert!(v.0 >= last, "a reader went back in time");
                        last = v.0;
                    }
                })
            })
            .collect();
        for _ in 0..2000 {
            values.write(|v| {
                v.0 += 1;
                v.1 += 1;
            });
        }
        stop.store(true, Ordering::Relaxed);
        for reader in readers {
            reader.join().expect("reader thread");
        }
        assert_eq!(**values.read(), (2000, 2000));
    }
}
