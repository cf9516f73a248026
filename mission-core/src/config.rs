//! Recorder configuration: one struct, built in code or deserialised from TOML/JSON.

use std::ops::RangeInclusive;
use std::time::Duration;

/// The accepted range of [`RecorderConfig::ring_capacity`], in events: up to 4,194,304 (about
/// 0.5 GB per recording thread at 128 bytes an event).
pub const RING_CAPACITY_RANGE: RangeInclusive<usize> = 2..=(1 << 22);
/// The accepted range of [`RecorderConfig::max_producers`].
pub const MAX_PRODUCERS_RANGE: RangeInclusive<usize> = 1..=4096;
/// The accepted range of [`RecorderConfig::shared_capacity`], in events.
pub const SHARED_CAPACITY_RANGE: RangeInclusive<usize> = 2..=(1 << 22);
/// The accepted range of [`RecorderConfig::batch_size`], in events.
pub const BATCH_SIZE_RANGE: RangeInclusive<usize> = 1..=(1 << 20);
/// The accepted range of [`RecorderConfig::drain_interval`].
pub const DRAIN_INTERVAL_RANGE: RangeInclusive<Duration> =
    Duration::from_micros(1)..=Duration::from_secs(86_400);
/// The accepted range of [`RecorderConfig::flush_timeout`].
pub const FLUSH_TIMEOUT_RANGE: RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(3600);
/// The accepted range of a [`Backpressure::Block`] timeout.
pub const BLOCK_TIMEOUT_RANGE: RangeInclusive<Duration> = Duration::ZERO..=Duration::from_secs(60);

/// What recording does when a thread's buffer is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
#[derive(Default)]
pub enum Backpressure {
    /// Never block the agent: drop the new event and count it. The default.
    #[default]
    DropNewest,
    /// Wait for room up to `timeout`, then drop the event and count it.
    Block {
        /// Longest time one `record` call may wait.
        #[serde(with = "crate::config::duration_text")]
        timeout: Duration,
    },
}

/// How the recorder buffers and drains events.
///
/// ```
/// use mission_core::{Backpressure, RecorderConfig};
/// let config: RecorderConfig = serde_json::from_str(
///     r#"{ "ring_capacity": 8192, "backpressure": { "policy": "block", "timeout": "5ms" } }"#,
/// )?;
/// assert_eq!(config.ring_capacity, 8192);
/// assert!(matches!(config.backpressure, Backpressure::Block { .. }));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RecorderConfig {
    /// Events each recording OS thread can buffer (rounded up to a power of two). Every thread
    /// that records gets its own buffer of this size, so memory is about
    /// `ring_capacity × size_of::<Event>() × threads`.
    pub ring_capacity: usize,
    /// Most threads with a buffer of their own; further threads share one bounded queue of
    /// `shared_capacity` events (correct, but slower under contention).
    pub max_producers: usize,
    /// Capacity of the shared queue used by threads past `max_producers` and during thread
    /// teardown.
    pub shared_capacity: usize,
    /// What happens when a buffer is full.
    pub backpressure: Backpressure,
    /// Most events handed to sinks in one call.
    pub batch_size: usize,
    /// How long the pipeline sleeps when there is nothing to drain. Bounds the delay from
    /// `record` to the sinks when the load is light.
    #[serde(with = "duration_text")]
    pub drain_interval: Duration,
    /// Longest time `flush()` waits before it reports a timeout.
    #[serde(with = "duration_text")]
    pub flush_timeout: Duration,
}

/// Builder methods: start from [`Default`] (or a constructor) and set what differs.
impl RecorderConfig {
    /// Sets [`ring_capacity`](Self::ring_capacity).
    pub fn with_ring_capacity(mut self, ring_capacity: usize) -> Self {
        self.ring_capacity = ring_capacity;
        self
    }

    /// Sets [`max_producers`](Self::max_producers).
    pub fn with_max_producers(mut self, max_producers: usize) -> Self {
        self.max_producers = max_producers;
        self
    }

    /// Sets [`shared_capacity`](Self::shared_capacity).
    pub fn with_shared_capacity(mut self, shared_capacity: usize) -> Self {
        self.shared_capacity = shared_capacity;
        self
    }

    /// Sets [`backpressure`](Self::backpressure).
    pub fn with_backpressure(mut self, backpressure: Backpressure) -> Self {
        self.backpressure = backpressure;
        self
    }

    /// Sets [`batch_size`](Self::batch_size).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets [`drain_interval`](Self::drain_interval).
    pub fn with_drain_interval(mut self, drain_interval: Duration) -> Self {
        self.drain_interval = drain_interval;
        self
    }

    /// Sets [`flush_timeout`](Self::flush_timeout).
    pub fn with_flush_timeout(mut self, flush_timeout: Duration) -> Self {
        self.flush_timeout = flush_timeout;
        self
    }
}

impl RecorderConfig {
    /// Checks every setting is within its documented range ([`RING_CAPACITY_RANGE`],
    /// [`MAX_PRODUCERS_RANGE`], [`SHARED_CAPACITY_RANGE`], [`BATCH_SIZE_RANGE`],
    /// [`DRAIN_INTERVAL_RANGE`], [`FLUSH_TIMEOUT_RANGE`], [`BLOCK_TIMEOUT_RANGE`]).
    /// [`PipelineBuilder::start`](crate::PipelineBuilder::start) checks it; configuration
    /// loaders check it where they read it, to name the file or variable.
    ///
    /// ```
    /// let config = mission_core::RecorderConfig::default().with_ring_capacity(1 << 40);
    /// let err = config.validate().unwrap_err();
    /// assert!(err.contains("ring_capacity") && err.contains("4194304"), "{err}");
    /// ```
    ///
    /// # Errors
    /// A message naming the first field out of range, its value and the range.
    pub fn validate(&self) -> Result<(), String> {
        let counts = [
            ("ring_capacity", self.ring_capacity, RING_CAPACITY_RANGE),
            ("max_producers", self.max_producers, MAX_PRODUCERS_RANGE),
            ("shared_capacity", self.shared_capacity, SHARED_CAPACITY_RANGE),
            ("batch_size", self.batch_size, BATCH_SIZE_RANGE),
        ];
        for (field, value, range) in counts {
            check_range(field, value, &range, |n| n.to_string())?;
        }
        let text = |d: &Duration| duration_text::format(*d);
        check_range("drain_interval", self.drain_interval, &DRAIN_INTERVAL_RANGE, text)?;
        check_range("flush_timeout", self.flush_timeout, &FLUSH_TIMEOUT_RANGE, text)?;
        if let Backpressure::Block { timeout } = self.backpressure {
            check_range("backpressure.timeout", timeout, &BLOCK_TIMEOUT_RANGE, text)?;
        }
        Ok(())
    }
}

/// `Ok` if `value` is in `range`; else a message naming `field`, the value and the range.
///
/// # Errors
/// The message.
pub fn check_range<T: PartialOrd>(
    field: &str,
    value: T,
    range: &RangeInclusive<T>,
    show: impl Fn(&T) -> String,
) -> Result<(), String> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(format!(
        "field `{field}`: {} is out of range: expected {} to {}",
        show(&value),
        show(range.start()),
        show(range.end())
    ))
}

impl Default for RecorderConfig {
    fn default() -> Self {
        Self {
            ring_capacity: 8192,
            max_producers: 256,
            shared_capacity: 65_536,
            backpressure: Backpressure::DropNewest,
            batch_size: 1024,
            drain_interval: Duration::from_millis(1),
            flush_timeout: Duration::from_secs(30),
        }
    }
}

/// Durations in config files: a number of milliseconds, or text such as `"250ms"`, `"2s"`,
/// `"5m"`, `"1h"`, `"30us"`.
pub mod duration_text {
    use std::time::Duration;

    use serde::de::{self, Visitor};

    /// Parses `"250ms"`, `"2s"`, `"1.5s"`, `"5m"`, `"1h"`, `"30us"`, `"100ns"`, `"3d"`.
    ///
    /// # Errors
    /// A message naming the text and the accepted units.
    pub fn parse(text: &str) -> Result<Duration, String> {
        let t = text.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let value: f64 = number.parse().map_err(|_| {
            format!("invalid duration {text:?}: expected e.g. \"250ms\", \"2s\", \"5m\"")
        })?;
        let scale = match unit.trim() {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" | "" => 1e-3,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            other => {
                return Err(format!(
                    "invalid duration unit {other:?} in {text:?}: use ns, us, ms, s, m, h or d"
                ));
            }
        };
        Duration::try_from_secs_f64(value * scale)
            .map_err(|e| format!("invalid duration {text:?}: {e}"))
    }

    /// Formats a duration as text [`parse`] reads back.
    pub fn format(d: Duration) -> String {
        let ns = d.as_nanos();
        if ns.is_multiple_of(1_000_000_000) {
            format!("{}s", ns / 1_000_000_000)
        } else if ns.is_multiple_of(1_000_000) {
            format!("{}ms", ns / 1_000_000)
        } else if ns.is_multiple_of(1_000) {
            format!("{}us", ns / 1_000)
        } else {
            format!("{ns}ns")
        }
    }

    /// `Option<Duration>` fields: `#[serde(with = "mission_core::duration_text::option")]`.
    pub mod option {
        use std::time::Duration;

        /// Serde `serialize_with`.
        pub fn serialize<S: serde::Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }

        /// Serde `deserialize_with`.
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<Duration>, D::Error> {
            #[derive(serde::Deserialize)]
            struct Wrap(#[serde(with = "super")] Duration);
            Ok(<Option<Wrap> as serde::Deserialize>::deserialize(d)?.map(|w| w.0))
        }
    }

    /// `BTreeMap<String, Duration>` fields (per-tenant settings):
    /// `#[serde(with = "mission_core::duration_text::map")]`.
    pub mod map {
        use std::collections::BTreeMap;
        use std::time::Duration;

        /// Serde `serialize_with`.
        pub fn serialize<S: serde::Serializer>(
            m: &BTreeMap<String, Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            s.collect_map(m.iter().map(|(k, d)| (k, super::format(*d))))
        }

        /// Serde `deserialize_with`.
        pub fn deserialize<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeMap<String, Duration>, D::Error> {
            #[derive(serde::Deserialize)]
            struct Wrap(#[serde(with = "super")] Duration);
            let m = <BTreeMap<String, Wrap> as serde::Deserialize>::deserialize(d)?;
            Ok(m.into_iter().map(|(k, w)| (k, w.0)).collect())
        }
    }

    /// Serde `serialize_with`.
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*d))
    }

    /// Serde `deserialize_with`.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a duration: milliseconds as a number, or text like \"250ms\" or \"2s\"",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(Duration::from_millis(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map(Duration::from_millis)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                Duration::try_from_secs_f64(v / 1000.0).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::duration_text::{format, parse};
    use super::*;

    #[test]
    fn durations_parse_and_round_trip() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("30us"), Ok(Duration::from_micros(30)));
        assert!(parse("fast").is_err());
        assert!(parse("5 parsecs").is_err());
        for d in [Duration::from_secs(2), Duration::from_micros(7), Duration::from_nanos(3)] {
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }

    /// `ring_capacity = 1000000000` aborted the process at the first record (137 GB); now the
    /// pipeline refuses to start, naming the field and its range.
    #[test]
    fn settings_out_of_range_are_refused_naming_field_and_range() {
        let err = crate::Pipeline::builder()
            .with_ring_capacity(1_000_000_000)
            .start()
            .expect_err("refused");
        let message = err.invalid_config().expect("a configuration error").to_owned();
        assert!(message.contains("ring_capacity") && message.contains("4194304"), "{message}");
        assert!(err.to_string().contains("ring_capacity"));
        for (config, field) in [
            (RecorderConfig { ring_capacity: 1, ..Default::default() }, "ring_capacity"),
            (RecorderConfig { max_producers: 0, ..Default::default() }, "max_producers"),
            (RecorderConfig { shared_capacity: 1 << 30, ..Default::default() }, "shared_capacity"),
            (RecorderConfig { batch_size: 0, ..Default::default() }, "batch_size"),
            (
                RecorderConfig { drain_interval: Duration::ZERO, ..Default::default() },
                "drain_interval",
            ),
            (
                RecorderConfig { flush_timeout: Duration::ZERO, ..Default::default() },
                "flush_timeout",
            ),
            (
                RecorderConfig {
                    backpressure: Backpressure::Block { timeout: Duration::from_secs(3600) },
                    ..Default::default()
                },
                "backpressure.timeout",
            ),
        ] {
            let err = config.validate().expect_err(field);
            assert!(err.contains(&format!("`{field}`")) && err.contains(" to "), "{err}");
        }
        assert_eq!(RecorderConfig::default().validate(), Ok(()));
    }

    #[test]
    fn config_rejects_unknown_fields_with_a_clear_message() {
        let err = serde_json::from_str::<RecorderConfig>(r#"{"ring_capacty": 5}"#).unwrap_err();
        assert!(err.to_string().contains("ring_capacty"), "{err}");
        let ok: RecorderConfig = serde_json::from_str(r#"{"drain_interval": 5}"#).expect("config");
        assert_eq!(ok.drain_interval, Duration::from_millis(5));
    }
}
