//! Tail sampling that never loses the interesting threads.
//!
//! [`SamplingSink`] sits in front of the sinks that keep data (the store, OTLP export) and
//! decides per thread, when the thread ends: a thread with an error, a permission denial or a
//! span slower than [`SamplingConfig::slow_span`] is always kept; the others are kept at
//! [`SamplingConfig::rate`] (deterministically, by thread id, so every sink and every process
//! agrees). Scores are never sampled: they pass at once. Statistics and the live stream see
//! everything. What sampling skipped is counted.
//!
//! With [`SamplingSink::with_directives`] (as `MissionControl` builds it), a firing directive
//! with `set_sampling` raises the rate while it fires (typically to 1.0 during an incident);
//! when it resolves, the configured rate applies again. The rate in force is read once per
//! thread decision (one atomic load).
//!
//! Memory is bounded: a thread's events wait at most [`SamplingConfig::max_wait`], and at most
//! [`SamplingConfig::max_buffered_events`] events wait in all; past either bound the thread is
//! decided early (kept when in doubt) and counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mission_core::{
    Decision, Event, EventBody, Sink, SinkContext, SinkError, SpanKind, ThreadId, Timestamp,
};

/// The range of [`SamplingConfig::rate`].
pub const SAMPLING_RATE_RANGE: std::ops::RangeInclusive<f64> = 0.0..=1.0;
/// The range of [`SamplingConfig::slow_span`]: 1 µs to a day.
pub const SAMPLING_SLOW_SPAN_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_micros(1)..=Duration::from_secs(86_400);
/// The range of [`SamplingConfig::max_wait`]: 1 ms to a day.
pub const SAMPLING_MAX_WAIT_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(86_400);
/// The range of [`SamplingConfig::max_buffered_events`].
pub const SAMPLING_MAX_BUFFERED_EVENTS_RANGE: std::ops::RangeInclusive<usize> = 1..=(1 << 24);

/// How threads are sampled.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SamplingConfig {
    /// Fraction of ordinary threads kept, 0 to 1.
    pub rate: f64,
    /// A thread with a span at least this long is always kept.
    #[serde(with = "mission_core::duration_text")]
    pub slow_span: Duration,
    /// Longest time a thread's events wait for the thread to end.
    #[serde(with = "mission_core::duration_text")]
    pub max_wait: Duration,
    /// Most events waiting for a decision, over all threads.
    pub max_buffered_events: usize,
}

/// Builder methods: start from a constructor or [`Default`] and set what differs.
impl SamplingConfig {
    /// Sets [`rate`](Self::rate).
    pub fn with_rate(mut self, rate: f64) -> Self {
        self.rate = rate;
        self
    }

    /// Sets [`slow_span`](Self::slow_span).
    pub fn with_slow_span(mut self, slow_span: Duration) -> Self {
        self.slow_span = slow_span;
        self
    }

    /// Sets [`max_wait`](Self::max_wait).
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Sets [`max_buffered_events`](Self::max_buffered_events).
    pub fn with_max_buffered_events(mut self, max_buffered_events: usize) -> Self {
        self.max_buffered_events = max_buffered_events;
        self
    }
}

impl SamplingConfig {
    /// Checks every setting is within its documented range ([`SAMPLING_RATE_RANGE`],
    /// [`SAMPLING_SLOW_SPAN_RANGE`], [`SAMPLING_MAX_WAIT_RANGE`], [`SAMPLING_MAX_BUFFERED_EVENTS_RANGE`]);
    /// [`MissionControl`](crate::MissionControl)'s `build` checks it.
    ///
    /// # Errors
    /// A message naming the first field out of range, its value and the range.
    pub fn validate(&self) -> Result<(), String> {
        mission_core::check_range("rate", self.rate, &SAMPLING_RATE_RANGE, |r| r.to_string())?;
        let text = |d: &Duration| mission_core::duration_text::format(*d);
        mission_core::check_range("slow_span", self.slow_span, &SAMPLING_SLOW_SPAN_RANGE, text)?;
        mission_core::check_range("max_wait", self.max_wait, &SAMPLING_MAX_WAIT_RANGE, text)?;
        let (field, range) = ("max_buffered_events", &SAMPLING_MAX_BUFFERED_EVENTS_RANGE);
        mission_core::check_range(field, self.max_buffered_events, range, |n| n.to_string())
    }
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            rate: 0.1,
            slow_span: Duration::from_secs(10),
            max_wait: Duration::from_secs(600),
            max_buffered_events: 200_000,
        }
    }
}

/// What sampling did, by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SamplingStats {
    /// Threads kept because they had an error.
    pub kept_error: u64,
    /// Threads kept because of a permission denial.
    pub kept_denial: u64,
    /// Threads kept because of a slow span.
    pub kept_slow: u64,
    /// Ordinary threads kept by the rate.
    pub kept_sampled: u64,
    /// Threads decided early (waited too long, or the buffer was full) and kept.
    pub kept_early: u64,
    /// Threads skipped.
    pub skipped_threads: u64,
    /// Events of skipped threads.
    pub skipped_events: u64,
}

#[derive(Default)]
struct Counters {
    kept_error: AtomicU64,
    kept_denial: AtomicU64,
    kept_slow: AtomicU64,
    kept_sampled: AtomicU64,
    kept_early: AtomicU64,
    skipped_threads: AtomicU64,
    skipped_events: AtomicU64,
}

/// Reads a [`SamplingSink`]'s counters from any thread.
#[derive(Clone, Default)]
pub struct SamplingStatsReader {
    counters: Arc<Counters>,
}

impl std::fmt::Debug for SamplingStatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SamplingStatsReader").field(&self.stats()).finish()
    }
}

impl SamplingStatsReader {
    /// The counters now.
    pub fn stats(&self) -> SamplingStats {
        let c = &self.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SamplingStats {
            kept_error: l(&c.kept_error),
            kept_denial: l(&c.kept_denial),
            kept_slow: l(&c.kept_slow),
            kept_sampled: l(&c.kept_sampled),
            kept_early: l(&c.kept_early),
            skipped_threads: l(&c.skipped_threads),
            skipped_events: l(&c.skipped_events),
        }
    }
}

struct Pending {
    events: Vec<Event>,
    since: Instant,
    interesting: Option<Reason>,
}

#[derive(Clone, Copy)]
enum Reason {
    Error,
    Denial,
    Slow,
}

/// A [`Sink`] that samples whole threads before handing them to the sinks it wraps.
pub struct SamplingSink {
    config: SamplingConfig,
    inner: mission_core::Fanout,
    pending: HashMap<ThreadId, Pending>,
    buffered: usize,
    reader: SamplingStatsReader,
    out: Vec<Event>,
    directives: Option<crate::Directives>,
}

impl SamplingSink {
    /// Samples threads for `inner` sinks.
    pub fn new(config: SamplingConfig, inner: Vec<Box<dyn Sink>>) -> Self {
        Self {
            config,
            inner: mission_core::Fanout::new(inner),
            pending: HashMap::new(),
            buffered: 0,
            reader: SamplingStatsReader::default(),
            out: Vec::new(),
            directives: None,
        }
    }

    /// Keeps ordinary threads at least at the rate a firing `set_sampling` directive of
    /// `directives` asks for, while it fires.
    #[must_use]
    pub fn with_directives(mut self, directives: crate::Directives) -> Self {
        self.directives = Some(directives);
        self
    }

    /// The rate in force now: the configured one, raised by a firing directive.
    pub fn rate(&self) -> f64 {
        let raised = self.directives.as_ref().and_then(crate::Directives::sampling_rate);
        raised.map_or(self.config.rate, |r| r.max(self.config.rate))
    }

    /// A reader of the counters.
    pub fn stats_reader(&self) -> SamplingStatsReader {
        self.reader.clone()
    }

    /// Whether the rate keeps `thread` (the same answer everywhere for the same id).
    pub fn rate_keeps(rate: f64, thread: ThreadId) -> bool {
        // A fixed mix of the id's bits, mapped onto [0, 1).
        let mut x = (thread.0 as u64) ^ ((thread.0 >> 64) as u64);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        ((x >> 11) as f64 / (1u64 << 53) as f64) < rate
    }

    fn classify(&self, event: &Event) -> Option<Reason> {
        match &event.body {
            EventBody::Span(s) if s.status.is_error() => Some(Reason::Error),
            EventBody::Span(s) if s.duration_ns >= self.config.slow_span.as_nanos() as u64 => {
                Some(Reason::Slow)
            }
            EventBody::Permission(p) if p.decision == Decision::Deny => Some(Reason::Denial),
            _ => None,
        }
    }

    fn ends_thread(event: &Event) -> bool {
        match &event.body {
            EventBody::Span(s) => {
                event.parent_span_id.is_none()
                    || (s.kind == SpanKind::AgentStep && event.name.as_str() == "invoke_agent")
            }
            _ => false,
        }
    }

    fn decide(&mut self, thread: ThreadId, early: bool) {
        let Some(p) = self.pending.remove(&thread) else { return };
        self.buffered -= p.events.len();
        let rate = self.rate();
        let c = &self.reader.counters;
        let keep = match (p.interesting, early) {
            (Some(Reason::Error), _) => Some(&c.kept_error),
            (Some(Reason::Denial), _) => Some(&c.kept_denial),
            (Some(Reason::Slow), _) => Some(&c.kept_slow),
            (None, true) => Some(&c.kept_early),
            (None, false) if Self::rate_keeps(rate, thread) => Some(&c.kept_sampled),
            (None, false) => None,
        };
        match keep {
            Some(counter) => {
                counter.fetch_add(1, Ordering::Relaxed);
                self.out.extend(p.events);
            }
            None => {
                c.skipped_threads.fetch_add(1, Ordering::Relaxed);
                c.skipped_events.fetch_add(p.events.len() as u64, Ordering::Relaxed);
            }
        }
    }

    fn forward(&mut self) -> Result<(), SinkError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self.inner.consume(&self.out);
        self.out.clear();
        result
    }
}

impl Sink for SamplingSink {
    fn name(&self) -> &str {
        "sampling"
    }

    fn start(&mut self, context: &SinkContext) {
        self.inner.start(context);
    }

    fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        let now = Instant::now();
        for event in batch {
            // Scores are never sampled away: they are few, and an evaluation needs every one
            // (a late one arrives after its thread was decided).
            if event.thread_id.is_zero() || matches!(event.body, EventBody::Score(_)) {
                self.out.push(event.clone());
                continue;
            }
            let reason = self.classify(event);
            let p = self.pending.entry(event.thread_id).or_insert_with(|| Pending {
                events: Vec::new(),
                since: now,
                interesting: None,
            });
            p.events.push(event.clone());
            p.interesting = p.interesting.or(reason);
            self.buffered += 1;
            if Self::ends_thread(event) {
                self.decide(event.thread_id, false);
            }
        }
        // Over the bound: decide the oldest threads early (kept unless known otherwise).
        while self.buffered > self.config.max_buffered_events {
            let Some(oldest) = self.pending.iter().min_by_key(|(_, p)| p.since).map(|(t, _)| *t)
            else {
                break;
            };
            self.decide(oldest, true);
        }
        self.forward()
    }

    fn tick(&mut self, now: Timestamp) -> Result<(), SinkError> {
        let max_wait = self.config.max_wait;
        let overdue: Vec<ThreadId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.since.elapsed() >= max_wait)
            .map(|(t, _)| *t)
            .collect();
        for t in overdue {
            self.decide(t, true);
        }
        let forwarded = self.forward();
        let ticked = self.inner.each(|s| s.tick(now));
        forwarded.and(ticked)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        // Threads still open stay pending: their decision needs their end.
        self.inner.each(|s| s.flush())
    }

    fn flush_for_reads(&mut self) -> Result<(), SinkError> {
        self.inner.each(|s| s.flush_for_reads())
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        let open: Vec<ThreadId> = self.pending.keys().copied().collect();
        for t in open {
            self.decide(t, true);
        }
        let forwarded = self.forward();
        let finished = self.inner.each(|s| s.shutdown());
        forwarded.and(finished)
    }
}
