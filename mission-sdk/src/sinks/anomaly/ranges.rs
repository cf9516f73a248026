//! The documented range of every numeric [`ModelConfig`] setting, checked by
//! [`ModelConfig::validate`] (and so by [`MissionControl`](crate::MissionControl)'s `build`).

use std::ops::RangeInclusive;
use std::time::Duration;

use mission_core::{check_range, duration_text};

use super::ModelConfig;

/// The range of [`ModelConfig::max_streams`].
pub const MAX_STREAMS_RANGE: RangeInclusive<usize> = 1..=(1 << 20);
/// The range of [`ModelConfig::history`].
pub const HISTORY_RANGE: RangeInclusive<usize> = 1..=65_536;
/// The range of [`ModelConfig::error_bucket`]: 1 s to a day.
pub const ERROR_BUCKET_RANGE: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(86_400);
/// The range of [`ModelConfig::queue_batches`].
pub const QUEUE_BATCHES_RANGE: RangeInclusive<usize> = 1..=(1 << 20);
/// The range of [`ModelConfig::memory_interval`] when set: 1 ms to a day.
pub const MEMORY_INTERVAL_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(86_400);
/// The range of [`ModelConfig::memory_limit`] when set: 1 MiB to 1 PiB.
pub const MEMORY_LIMIT_RANGE: RangeInclusive<u64> = (1 << 20)..=(1 << 50);
/// The range of [`ModelConfig::leak_horizon`]: a minute to a year.
pub const LEAK_HORIZON_RANGE: RangeInclusive<Duration> =
    Duration::from_secs(60)..=Duration::from_secs(365 * 86_400);
/// The range of [`ModelConfig::save_every`] when set: 1 s to a day.
pub const SAVE_EVERY_RANGE: RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(86_400);
/// The range of [`ModelConfig::max_anomalies_per_minute`] (0 records none, and counts them).
pub const MAX_ANOMALIES_PER_MINUTE_RANGE: RangeInclusive<u32> = 0..=1_000_000;

impl ModelConfig {
    /// Checks every numeric setting is within its documented range ([`MAX_STREAMS_RANGE`],
    /// [`HISTORY_RANGE`], [`ERROR_BUCKET_RANGE`], [`QUEUE_BATCHES_RANGE`],
    /// [`MEMORY_INTERVAL_RANGE`], [`MEMORY_LIMIT_RANGE`], [`LEAK_HORIZON_RANGE`],
    /// [`MAX_ANOMALIES_PER_MINUTE_RANGE`], [`SAVE_EVERY_RANGE`]).
    ///
    /// # Errors
    /// A message naming the first field out of range, its value and the range.
    pub fn validate(&self) -> Result<(), String> {
        let count = |n: &usize| n.to_string();
        check_range("max_streams", self.max_streams, &MAX_STREAMS_RANGE, count)?;
        check_range("history", self.history, &HISTORY_RANGE, count)?;
        check_range("queue_batches", self.queue_batches, &QUEUE_BATCHES_RANGE, count)?;
        let text = |d: &Duration| duration_text::format(*d);
        check_range("error_bucket", self.error_bucket, &ERROR_BUCKET_RANGE, text)?;
        if let Some(every) = self.memory_interval {
            check_range("memory_interval", every, &MEMORY_INTERVAL_RANGE, text)?;
        }
        if let Some(limit) = self.memory_limit {
            check_range("memory_limit", limit, &MEMORY_LIMIT_RANGE, |n| n.to_string())?;
        }
        check_range("leak_horizon", self.leak_horizon, &LEAK_HORIZON_RANGE, text)?;
        if let Some(every) = self.save_every {
            check_range("save_every", every, &SAVE_EVERY_RANGE, text)?;
        }
        let (field, range) = ("max_anomalies_per_minute", &MAX_ANOMALIES_PER_MINUTE_RANGE);
        check_range(field, self.max_anomalies_per_minute, range, |n| n.to_string())
    }
}
