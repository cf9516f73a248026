//! A bounded single-producer / single-consumer ring: the one place in Mission Control that
//! needs `unsafe`.
//!
//! Each agent thread owns the producing end of its own ring, so recording is a few plain
//! stores plus one release store: no compare-and-swap, no shared cache line between
//! producers. The pipeline thread owns every consuming end. Positions are monotonically
//! increasing `u64` counters (they never wrap in practice: 2^64 events at 10^9/s is 584
//! years), which also makes them the exact "accepted" and "taken" counts the accounting needs.
#![allow(unsafe_code)]

use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::sync::{Arc, AtomicBool, AtomicU64, Ordering, UnsafeCell};

/// One slot, aligned to a cache line so an event never straddles more lines than it must.
#[repr(align(64))]
struct Slot<T>(UnsafeCell<MaybeUninit<T>>);

/// The part of a ring both ends (and health snapshots) see.
pub(crate) struct RingShared<T> {
    slots: Box<[Slot<T>]>,
    mask: u64,
    /// Next position the producer writes; written only by the producer.
    tail: CachePadded<AtomicU64>,
    /// Next position the consumer reads; written only by the consumer.
    head: CachePadded<AtomicU64>,
    /// Events the producer could not push (ring full, or timed out); written only by the producer.
    dropped_full: AtomicU64,
    /// Events dropped after waiting the configured time under `Block`.
    dropped_timeout: AtomicU64,
    /// False once the producing end is gone (its thread exited).
    producer_alive: AtomicBool,
}

// SAFETY: the slots are only touched through the SPSC protocol below: a slot is written by the
// producer only while it is outside `[head, tail)` and read by the consumer only while inside,
// and the release/acquire pair on `tail`/`head` orders those accesses. `T: Send` is required
// because values move from the producer's thread to the consumer's.
unsafe impl<T: Send> Send for RingShared<T> {}
// SAFETY: see above; shared access to the atomics is safe, slot access follows the protocol.
unsafe impl<T: Send> Sync for RingShared<T> {}

impl<T> RingShared<T> {
    /// Capacity of the ring in events.
    pub(crate) fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Events accepted so far (the producer's position).
    pub(crate) fn accepted(&self) -> u64 {
        self.tail.load(Ordering::Acquire)
    }

    /// Events taken by the consumer so far.
    pub(crate) fn taken(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Events dropped because the ring was full (`DropNewest`).
    pub(crate) fn dropped_full(&self) -> u64 {
        self.dropped_full.load(Ordering::Acquire)
    }

    /// Events dropped after waiting for room (`Block`).
    pub(crate) fn dropped_timeout(&self) -> u64 {
        self.dropped_timeout.load(Ordering::Acquire)
    }

    /// Whether the producing end still exists.
    pub(crate) fn producer_alive(&self) -> bool {
        self.producer_alive.load(Ordering::Acquire)
    }
}

impl<T> Drop for RingShared<T> {
    fn drop(&mut self) {
        // Both ends are gone: drop the values still between head and tail.
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        for pos in head..tail {
            let slot = &self.slots[(pos & self.mask) as usize].0;
            // SAFETY: positions in [head, tail) were written by the producer and not yet read.
            slot.with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}

/// Creates a ring with room for `capacity` values (rounded up to a power of two, at least 2).
pub(crate) fn ring<T>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let capacity = capacity.clamp(2, 1 << 30).next_power_of_two();
    let slots = (0..capacity)
        .map(|_| Slot(UnsafeCell::new(MaybeUninit::uninit())))
        .collect::<Vec<_>>()
        .into_boxed_slice();
    let shared = Arc::new(RingShared {
        slots,
        mask: capacity as u64 - 1,
        tail: CachePadded::new(AtomicU64::new(0)),
        head: CachePadded::new(AtomicU64::new(0)),
        dropped_full: AtomicU64::new(0),
        dropped_timeout: AtomicU64::new(0),
        producer_alive: AtomicBool::new(true),
    });
    (Producer { shared: shared.clone(), tail: 0, cached_head: 0 }, Consumer { shared, head: 0 })
}

/// The producing end. Not `Clone`: there is exactly one per ring.
pub(crate) struct Producer<T> {
    shared: Arc<RingShared<T>>,
    /// Local copy of `shared.tail` (only this end writes it).
    tail: u64,
    /// Last `head` seen; refreshed only when the ring looks full, so the common case reads no
    /// cache line the consumer writes.
    cached_head: u64,
}

impl<T> Producer<T> {
    /// Pushes `value`, or hands it back when the ring is full. O(1), no allocation.
    #[inline]
    pub(crate) fn push(&mut self, value: T) -> Result<(), T> {
        let capacity = self.shared.mask + 1;
        if self.tail - self.cached_head >= capacity {
            self.cached_head = self.shared.head.load(Ordering::Acquire);
            if self.tail - self.cached_head >= capacity {
                return Err(value);
            }
        }
        let slot = &self.shared.slots[(self.tail & self.shared.mask) as usize].0;
        // SAFETY: `tail - head < capacity`, so this slot is outside `[head, tail)`: the consumer
        // has finished reading it (its release store of `head` happened before our acquire
        // load) and will not read it until we publish `tail + 1` below.
        slot.with_mut(|p| unsafe {
            (*p).write(value);
        });
        self.tail += 1;
        self.shared.tail.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Events currently in the ring as this end last saw it (an upper bound).
    #[inline]
    pub(crate) fn len_upper_bound(&self) -> u64 {
        self.tail - self.cached_head
    }

    /// Counts one event dropped because the ring was full.
    #[inline]
    pub(crate) fn count_dropped_full(&self) {
        // Single writer: a load and a store, no read-modify-write needed.
        let n = self.shared.dropped_full.load(Ordering::Relaxed);
        self.shared.dropped_full.store(n + 1, Ordering::Release);
    }

    /// Counts one event dropped after waiting for room.
    pub(crate) fn count_dropped_timeout(&self) {
        let n = self.shared.dropped_timeout.load(Ordering::Relaxed);
        self.shared.dropped_timeout.store(n + 1, Ordering::Release);
    }

    /// The state shared with the consumer.
    pub(crate) fn shared(&self) -> &Arc<RingShared<T>> {
        &self.shared
    }
}

impl<T> Drop for Producer<T> {
    fn drop(&mut self) {
        self.shared.producer_alive.store(false, Ordering::Release);
    }
}

/// The consuming end. Not `Clone`: there is exactly one per ring.
pub(crate) struct Consumer<T> {
    shared: Arc<RingShared<T>>,
    /// Local copy of `shared.head` (only this end writes it).
    head: u64,
}

impl<T> Consumer<T> {
    /// Moves up to `max` values into `out`, oldest first, and returns how many it moved.
    pub(crate) fn pop_into(&mut self, out: &mut Vec<T>, max: usize) -> usize {
        let tail = self.shared.tail.load(Ordering::Acquire);
        let n = (tail - self.head).min(max as u64);
        out.reserve(n as usize);
        for pos in self.head..self.head + n {
            let slot = &self.shared.slots[(pos & self.shared.mask) as usize].0;
            // SAFETY: `pos` is in `[head, tail)`: the producer wrote it and published it with
            // the release store of `tail` we acquired above; it will not write it again until
            // we publish a `head` past it.
            out.push(slot.with_mut(|p| unsafe { (*p).assume_init_read() }));
        }
        self.head += n;
        self.shared.head.store(self.head, Ordering::Release);
        n as usize
    }

    /// The producer's position right now.
    pub(crate) fn tail(&self) -> u64 {
        self.shared.tail.load(Ordering::Acquire)
    }

    /// The consumer's position.
    pub(crate) fn head(&self) -> u64 {
        self.head
    }

    /// The state shared with the producer.
    pub(crate) fn shared(&self) -> &Arc<RingShared<T>> {
        &self.shared
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_full() {
        let (mut p, mut c) = ring::<u32>(4);
        for i in 0..4 {
            assert!(p.push(i).is_ok());
        }
        assert_eq!(p.push(99), Err(99));
        let mut out = Vec::new();
        assert_eq!(c.pop_into(&mut out, 3), 3);
        assert_eq!(out, vec![0, 1, 2]);
        assert!(p.push(4).is_ok());
        assert_eq!(c.pop_into(&mut out, 10), 2);
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
        assert_eq!(c.shared().accepted(), 5);
    }

    #[test]
    fn leftovers_are_dropped_once() {
        let value = std::sync::Arc::new(());
        let (mut p, c) = ring(8);
        for _ in 0..5 {
            assert!(p.push(value.clone()).is_ok());
        }
        drop(p);
        assert!(!c.shared().producer_alive());
        drop(c);
        assert_eq!(std::sync::Arc::strong_count(&value), 1);
    }

    #[test]
    fn capacity_is_rounded_up() {
        let (p, _c) = ring::<u8>(5);
        assert_eq!(p.shared().capacity(), 8);
        let (p, _c) = ring::<u8>(0);
        assert_eq!(p.shared().capacity(), 2);
    }
}

/// Model-checked with loom: `RUSTFLAGS="--cfg loom" cargo test -p mission-core --lib loom`.
/// Every interleaving of one producer and one consumer is explored, so the release/acquire
/// pairs on `head` and `tail` are checked, not assumed.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;

    #[test]
    fn loom_no_loss_no_duplicate_in_order() {
        loom::model(|| {
            let (mut producer, mut consumer) = ring::<String>(2);
            let handle = loom::thread::spawn(move || {
                let mut accepted = 0u64;
                for i in 0..3 {
                    match producer.push(i.to_string()) {
                        Ok(()) => accepted += 1,
                        Err(_) => producer.count_dropped_full(),
                    }
                }
                accepted
            });
            let mut out = Vec::new();
            consumer.pop_into(&mut out, 8);
            let accepted = handle.join().expect("producer");
            consumer.pop_into(&mut out, 8);
            let numbers: Vec<u32> = out.iter().map(|s| s.parse().expect("number")).collect();
            assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
            assert_eq!(out.len() as u64, accepted);
            assert_eq!(consumer.shared().accepted(), accepted);
            assert_eq!(accepted + consumer.shared().dropped_full(), 3);
            assert!(!consumer.shared().producer_alive());
        });
    }

    #[test]
    fn loom_slots_are_reused_after_wrap_around() {
        loom::model(|| {
            let (mut producer, mut consumer) = ring::<String>(2);
            let handle = loom::thread::spawn(move || {
                for i in 0..3u32 {
                    let mut value = i.to_string();
                    loop {
                        match producer.push(value) {
                            Ok(()) => break,
                            Err(back) => {
                                value = back;
                                loom::thread::yield_now();
                            }
                        }
                    }
                }
            });
            let mut out = Vec::new();
            while out.len() < 3 {
                if consumer.pop_into(&mut out, 1) == 0 {
                    loom::thread::yield_now();
                }
            }
            handle.join().expect("producer");
            assert_eq!(out, vec!["0", "1", "2"]);
            assert_eq!(consumer.shared().taken(), 3);
        });
    }

    #[test]
    fn loom_leftovers_dropped_exactly_once() {
        loom::model(|| {
            let value = Arc::new(());
            let (mut producer, mut consumer) = ring::<Arc<()>>(2);
            let v = value.clone();
            let handle = loom::thread::spawn(move || {
                let _ = producer.push(v.clone());
                let _ = producer.push(v);
            });
            let mut out = Vec::new();
            consumer.pop_into(&mut out, 1);
            handle.join().expect("producer");
            drop(out);
            drop(consumer);
            assert_eq!(Arc::strong_count(&value), 1);
        });
    }
}
