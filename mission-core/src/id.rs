//! Identifiers that map onto OpenTelemetry and W3C trace context without translation.
//!
//! A [`ThreadId`] is a 128-bit trace id and a [`SpanId`] a 64-bit span id. Both are made from a
//! random per-process prefix and a counter: unique across processes (with the probability of
//! the random prefix colliding), never zero (the W3C "invalid" value), generated without a
//! system call or a shared atomic in the common case (each OS thread reserves a block of ids).
//!
//! The low 64 bits of a thread id are the counter passed through a keyed bijective mixer
//! (a random per-process key, then the SplitMix64 finalizer): still unique within the process
//! (a bijection of a unique counter), yet uniformly spread, as W3C Trace Context Level 2
//! expects of a trace id's rightmost 7 bytes — so a downstream `TraceIdRatioBased` sampler
//! (which compares those bits with a threshold) keeps the fraction it is asked to keep. It
//! costs three multiplications. Span ids keep their counter (sampling never reads them), so
//! neighbouring ones share their high bits and compress well in columnar storage.

use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::num::NonZeroU64;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The id of one thread (one run or conversation of an agent): an OpenTelemetry trace id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ThreadId(pub u128);

/// The id of one span: an OpenTelemetry span id. Zero means "no span" (a root's parent).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SpanId(pub u64);

/// A malformed id in text form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseIdError {
    expected_hex_digits: usize,
    found: String,
}

impl fmt::Display for ParseIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "expected {} lowercase hex digits, not all zero; found {:?}",
            self.expected_hex_digits, self.found
        )
    }
}

impl std::error::Error for ParseIdError {}

const IDS_PER_BLOCK: u64 = 1024;

struct IdSource {
    /// Random high bits for thread ids (64) and span ids (24).
    thread_prefix: u64,
    /// Random key mixed into the low 64 bits of thread ids.
    thread_key: u64,
    span_prefix: u64,
    next_block: AtomicU64,
}

fn id_source() -> &'static IdSource {
    static SOURCE: OnceLock<IdSource> = OnceLock::new();
    SOURCE.get_or_init(|| IdSource {
        thread_prefix: random_u64() | 1,
        thread_key: random_u64(),
        span_prefix: (random_u64() & 0xFF_FFFF) | 1,
        next_block: AtomicU64::new(0),
    })
}

/// 64 random bits from the standard library's per-process hasher keys, the time and the pid.
pub(crate) fn random_u64() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(crate::Timestamp::from_system_time(std::time::SystemTime::now()).0);
    hasher.write_u32(std::process::id());
    hasher.finish()
}

thread_local! {
    /// Next id and end of this OS thread's reserved block.
    static ID_BLOCK: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A process-unique, never-zero counter value (40 bits are plenty: 10^12 ids per process).
#[inline]
fn next_counter() -> u64 {
    let fresh_block = || {
        let start = id_source().next_block.fetch_add(IDS_PER_BLOCK, Ordering::Relaxed) + 1;
        (start, start + IDS_PER_BLOCK)
    };
    ID_BLOCK
        .try_with(|cell| {
            let (mut next, mut end) = cell.get();
            if next == end {
                (next, end) = fresh_block();
            }
            cell.set((next + 1, end));
            next
        })
        .unwrap_or_else(|_| fresh_block().0)
}

/// A bijection of `u64` that spreads consecutive inputs uniformly: `key` added to the input
/// times an odd constant (the SplitMix64 step), then the SplitMix64 finalizer. Every step is
/// invertible, so distinct inputs give distinct outputs.
#[inline]
fn mix(counter: u64, key: u64) -> u64 {
    let mut z = counter.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(key);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl ThreadId {
    /// A new id, unique in this process and very likely across processes, its low 64 bits
    /// uniformly spread (W3C Trace Context Level 2 random trace id). O(1), no allocation.
    #[inline]
    pub fn generate() -> Self {
        let source = id_source();
        let low = mix(next_counter(), source.thread_key);
        ThreadId(((source.thread_prefix as u128) << 64) | low as u128)
    }

    /// Whether this is the all-zero (invalid) id.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The 16 bytes in network order, as OpenTelemetry's `TraceId::from_bytes` takes them.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
}

impl SpanId {
    /// "No span": the parent of a root span.
    pub const NONE: SpanId = SpanId(0);

    /// A new id, unique in this process. O(1), no allocation.
    #[inline]
    pub fn generate() -> Self {
        SpanId((id_source().span_prefix << 40) | (next_counter() & 0xFF_FFFF_FFFF))
    }

    /// Whether this is "no span".
    pub const fn is_none(self) -> bool {
        self.0 == 0
    }

    /// This id as an `Option`, `None` for [`SpanId::NONE`].
    pub fn to_option(self) -> Option<NonZeroU64> {
        NonZeroU64::new(self.0)
    }

    /// The 8 bytes in network order, as OpenTelemetry's `SpanId::from_bytes` takes them.
    pub const fn to_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

impl fmt::Display for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Debug for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ThreadId({self})")
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

fn parse_hex(s: &str, digits: usize) -> Result<u128, ParseIdError> {
    let err = || ParseIdError { expected_hex_digits: digits, found: s.chars().take(64).collect() };
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(err());
    }
    match u128::from_str_radix(s, 16) {
        Ok(0) | Err(_) => Err(err()),
        Ok(v) => Ok(v),
    }
}

impl FromStr for ThreadId {
    type Err = ParseIdError;

    /// Parses the W3C form: 32 lowercase hex digits, not all zero.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex(s, 32).map(ThreadId)
    }
}

impl FromStr for SpanId {
    type Err = ParseIdError;

    /// Parses the W3C form: 16 lowercase hex digits, not all zero.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_hex(s, 16).map(|v| SpanId(v as u64))
    }
}

impl serde::Serialize for ThreadId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ThreadId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for SpanId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SpanId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        if s.is_empty() {
            return Ok(SpanId::NONE);
        }
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_nonzero_and_round_trip() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let t = ThreadId::generate();
            let s = SpanId::generate();
            assert!(!t.is_zero() && !s.is_none());
            assert!(seen.insert(s.0));
            assert_eq!(t.to_string().parse::<ThreadId>(), Ok(t));
            assert_eq!(s.to_string().parse::<SpanId>(), Ok(s));
        }
    }

    #[test]
    fn ids_are_unique_across_threads() {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| (0..5000).map(|_| SpanId::generate().0).collect::<Vec<_>>())
            })
            .collect();
        let mut all = HashSet::new();
        for h in handles {
            for id in h.join().expect("thread") {
                assert!(all.insert(id));
            }
        }
    }

    /// The decision of OpenTelemetry's `TraceIdRatioBased` sampler: the trace id's low 8 bytes
    /// (shifted right by one) below `ratio × 2^63` (opentelemetry-rust; the Level 2 random bits
    /// are the low 56, which this covers).
    fn ratio_based_keeps(id: ThreadId, ratio: f64) -> bool {
        let low = (id.0 as u64) >> 1;
        low < (ratio * (1u64 << 63) as f64) as u64
    }

    #[test]
    fn a_ratio_based_sampler_keeps_about_its_ratio_of_thread_ids() {
        let ids: Vec<ThreadId> = (0..10_000).map(|_| ThreadId::generate()).collect();
        let unique: HashSet<u128> = ids.iter().map(|t| t.0).collect();
        assert_eq!(unique.len(), ids.len(), "thread ids are unique");
        let kept = ids.iter().filter(|t| ratio_based_keeps(**t, 0.01)).count();
        // Binomial(10 000, 0.01): mean 100, standard deviation ~10.
        assert!((50..=200).contains(&kept), "kept {kept} of 10 000 at ratio 0.01");
        // The W3C Level 2 random part (the low 56 bits) alone: same.
        let threshold = (0.01 * (1u64 << 56) as f64) as u64;
        let kept56 = ids.iter().filter(|t| (t.0 as u64) & ((1 << 56) - 1) < threshold).count();
        assert!((50..=200).contains(&kept56), "kept {kept56} of 10 000 by the low 56 bits");
    }

    #[test]
    fn the_mixer_is_a_bijection_on_consecutive_counters() {
        let key = random_u64();
        let outputs: HashSet<u64> = (0..100_000u64).map(|c| mix(c, key)).collect();
        assert_eq!(outputs.len(), 100_000);
    }

    #[test]
    fn bad_text_is_rejected() {
        assert!("".parse::<SpanId>().is_err());
        assert!("0000000000000000".parse::<SpanId>().is_err());
        assert!("00f067aa0ba902b7".parse::<SpanId>().is_ok());
        assert!("00F067AA0BA902B7".parse::<SpanId>().is_err());
        assert!("4bf92f3577b34da6a3ce929d0e0e4736".parse::<ThreadId>().is_ok());
        assert!("4bf92f3577b34da6a3ce929d0e0e473".parse::<ThreadId>().is_err());
        assert!("zz".repeat(16).parse::<ThreadId>().is_err());
    }
}
