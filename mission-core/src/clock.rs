//! Time: a monotonic clock anchored once to wall time, read in a few nanoseconds.
//!
//! `SystemTime::now()` can jump (NTP, a person changing the clock) and costs a system call on
//! some machines; `Instant` cannot be stored or compared across processes. Mission Control
//! reads the CPU's invariant time-stamp counter through [`quanta`] (falling back to the OS
//! monotonic clock where there is none) and adds it to a wall-clock anchor taken once per
//! process, so every [`Timestamp`] is nanoseconds since the Unix epoch, never goes backwards
//! within a process and costs one counter read.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch (UTC).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The current time from the process clock. O(1), no allocation, no system call where the
    /// CPU has an invariant time-stamp counter.
    #[inline]
    pub fn now() -> Self {
        Clock::global().now()
    }

    /// Nanoseconds since the Unix epoch.
    #[inline]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    #[inline]
    pub const fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// This time as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.0)
    }

    /// A timestamp from a [`SystemTime`]; times before the epoch become the epoch.
    pub fn from_system_time(time: SystemTime) -> Self {
        let nanos = time.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
        Self(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// The process clock: wall time at start-up plus monotonic ticks since.
#[derive(Debug)]
pub struct Clock {
    source: quanta::Clock,
    anchor_raw: u64,
    anchor_wall_ns: u64,
}

impl Clock {
    /// The process-wide clock, created (and calibrated) on first use.
    #[inline]
    pub fn global() -> &'static Clock {
        static CLOCK: OnceLock<Clock> = OnceLock::new();
        CLOCK.get_or_init(Clock::new)
    }

    /// A new clock anchored to the wall time now.
    pub fn new() -> Self {
        let source = quanta::Clock::new();
        let anchor_raw = source.raw();
        let anchor_wall_ns = Timestamp::from_system_time(SystemTime::now()).0;
        Self { source, anchor_raw, anchor_wall_ns }
    }

    /// The current time. O(1), no allocation.
    #[inline]
    pub fn now(&self) -> Timestamp {
        let raw = self.source.raw();
        Timestamp(self.anchor_wall_ns + self.source.delta_as_nanos(self.anchor_raw, raw))
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_close_to_wall_time() {
        let a = Timestamp::now();
        let b = Timestamp::now();
        assert!(b >= a);
        let wall = Timestamp::from_system_time(SystemTime::now());
        let skew = wall.0.abs_diff(b.0);
        assert!(skew < 1_000_000_000, "clock is {skew} ns away from wall time");
    }

    #[test]
    fn system_time_round_trip() {
        let t = Timestamp(1_700_000_000_123_456_789);
        assert_eq!(Timestamp::from_system_time(t.to_system_time()), t);
        assert_eq!(t.saturating_duration_since(Timestamp(t.0 + 5)), Duration::ZERO);
    }
}
