//! Which shard of a sharded table this OS thread uses: tables that producers on many threads
//! lock (the SDK's in-flight spans, the thread registry) keep one lock per shard, and each OS
//! thread takes the next shard the first time it asks and keeps it, so producers rarely share a
//! lock.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    /// This OS thread's number, handed out in order on first use.
    static NUMBER: Cell<Option<u64>> = const { Cell::new(None) };
}

/// This OS thread's shard among `shards` (at least 1): the same on every call from one OS
/// thread, spread round-robin over threads. O(1), no allocation, no lock.
///
/// ```
/// let a = mission_core::shard::local(16);
/// assert!(a < 16);
/// assert_eq!(mission_core::shard::local(16), a);
/// ```
pub fn local(shards: u8) -> u8 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let number = NUMBER
        .try_with(|n| match n.get() {
            Some(i) => i,
            None => {
                let i = NEXT.fetch_add(1, Ordering::Relaxed);
                n.set(Some(i));
                i
            }
        })
        .unwrap_or(0);
    (number % u64::from(shards.max(1))) as u8
}
