//! Rolling statistics: per-(agent, operation) latency histograms over a sliding window and all
//! time, with token and cost counters, readable at any moment without stopping the pipeline.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use rustc_hash::FxHasher;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::sync::lock;
use crate::{Event, EventBody, EventKind, SpanKind, Symbol, Timestamp};
use crate::{Sink, SinkError};

/// The range of [`StatsConfig::window`]: 1 s to 7 days.
pub const STATS_WINDOW_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(7 * 24 * 3600);
/// The range of [`StatsConfig::buckets`].
pub const STATS_BUCKETS_RANGE: std::ops::RangeInclusive<usize> = 1..=1000;
/// The range of [`StatsConfig::max_operations`].
pub const STATS_MAX_OPERATIONS_RANGE: std::ops::RangeInclusive<usize> = 1..=(1 << 20);
/// The range of [`StatsConfig::significant_figures`].
pub const STATS_SIGNIFICANT_FIGURES_RANGE: std::ops::RangeInclusive<u8> = 1..=5;

/// How the stats sink aggregates.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StatsConfig {
    /// Length of the sliding window ([`STATS_WINDOW_RANGE`]).
    #[serde(with = "crate::config::duration_text")]
    pub window: Duration,
    /// Sub-windows the window is made of; the window slides one sub-window at a time
    /// ([`STATS_BUCKETS_RANGE`]).
    pub buckets: usize,
    /// Most distinct (agent, operation) pairs tracked; further ones are merged under the
    /// operation name `(other)` of their agent — while at most as many such `(other)` entries
    /// exist again — and then under agent and operation `(other)`: so distinct agent names
    /// cannot grow the statistics past `2 × max_operations + 1` entries. Also the most (provider, model) pairs tracked (further
    /// ones: provider and model `(other)`). Merged spans are counted in
    /// [`StatsSnapshot::overflowed`]. Range: [`STATS_MAX_OPERATIONS_RANGE`].
    pub max_operations: usize,
    /// Significant decimal digits the latency histograms keep (1 to 5): 2 means values are
    /// exact to within 1 %.
    pub significant_figures: u8,
}

/// Builder methods: start from [`Default`] (or a constructor) and set what differs.
impl StatsConfig {
    /// Sets [`window`](Self::window).
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Sets [`buckets`](Self::buckets).
    pub fn with_buckets(mut self, buckets: usize) -> Self {
        self.buckets = buckets;
        self
    }

    /// Sets [`max_operations`](Self::max_operations).
    pub fn with_max_operations(mut self, max_operations: usize) -> Self {
        self.max_operations = max_operations;
        self
    }

    /// Sets [`significant_figures`](Self::significant_figures).
    pub fn with_significant_figures(mut self, significant_figures: u8) -> Self {
        self.significant_figures = significant_figures;
        self
    }
}

impl StatsConfig {
    /// Checks every setting is within its documented range ([`STATS_WINDOW_RANGE`],
    /// [`STATS_BUCKETS_RANGE`], [`STATS_MAX_OPERATIONS_RANGE`],
    /// [`STATS_SIGNIFICANT_FIGURES_RANGE`]); [`StatsSink::try_with_config`] checks it.
    ///
    /// # Errors
    /// A message naming the first field out of range, its value and the range.
    pub fn validate(&self) -> Result<(), String> {
        let text = |d: &Duration| crate::duration_text::format(*d);
        crate::check_range("window", self.window, &STATS_WINDOW_RANGE, text)?;
        let count = |n: &usize| n.to_string();
        crate::check_range("buckets", self.buckets, &STATS_BUCKETS_RANGE, count)?;
        let (field, range) = ("max_operations", &STATS_MAX_OPERATIONS_RANGE);
        crate::check_range(field, self.max_operations, range, count)?;
        let (field, range) = ("significant_figures", &STATS_SIGNIFICANT_FIGURES_RANGE);
        crate::check_range(field, self.significant_figures, range, |n| n.to_string())
    }
}

impl Default for StatsConfig {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            buckets: 6,
            max_operations: 1024,
            significant_figures: 2,
        }
    }
}

/// Latency summary of one operation over some period. Durations in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    /// Spans ended.
    pub count: u64,
    /// Of those, spans that ended with an error.
    pub errors: u64,
    /// Median.
    pub p50_ns: u64,
    /// 90th percentile.
    pub p90_ns: u64,
    /// 95th percentile.
    pub p95_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Largest.
    pub max_ns: u64,
    /// Mean.
    pub mean_ns: f64,
}

impl LatencySummary {
    fn from_histogram(h: &Histogram<u64>, errors: u64) -> Self {
        if h.is_empty() {
            return Self { errors, ..Self::default() };
        }
        Self {
            count: h.len(),
            errors,
            p50_ns: h.value_at_quantile(0.50),
            p90_ns: h.value_at_quantile(0.90),
            p95_ns: h.value_at_quantile(0.95),
            p99_ns: h.value_at_quantile(0.99),
            max_ns: h.max(),
            mean_ns: h.mean(),
        }
    }

    /// Errors as a fraction of spans (0 when there were none).
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.errors as f64 / self.count as f64 }
    }
}

/// Token and cost totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct UsageTotals {
    /// LLM calls.
    pub llm_calls: u64,
    /// Input tokens (including cached).
    pub input_tokens: u64,
    /// Output tokens (including reasoning).
    pub output_tokens: u64,
    /// Cached input tokens.
    pub cached_input_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Cost in US dollars.
    pub cost_usd: f64,
}

impl UsageTotals {
    fn add(&mut self, event: &Event) {
        if let EventBody::Span(span) = &event.body
            && (span.kind == SpanKind::LlmCall || !span.llm.is_empty())
        {
            let u = &span.llm;
            self.llm_calls += 1;
            self.input_tokens += u64::from(u.input_tokens);
            self.output_tokens += u64::from(u.output_tokens);
            self.cached_input_tokens += u64::from(u.cached_input_tokens);
            self.reasoning_tokens += u64::from(u.reasoning_tokens);
            self.cost_usd += u.cost_usd;
        }
    }
}

/// Statistics of one (agent, operation).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OperationStats {
    /// The agent.
    pub agent: String,
    /// The operation (span name).
    pub operation: String,
    /// The span kind last seen for it.
    pub kind: SpanKind,
    /// Over the sliding window.
    pub window: LatencySummary,
    /// Since the sink started.
    pub all_time: LatencySummary,
    /// Tokens and cost, all time.
    pub usage: UsageTotals,
}

/// Token and cost totals of one model.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ModelUsage {
    /// The provider.
    pub provider: String,
    /// The model.
    pub model: String,
    /// Totals, all time.
    pub usage: UsageTotals,
}

/// Everything the stats sink knows, at one moment.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StatsSnapshot {
    /// The window length.
    pub window: Duration,
    /// One entry per (agent, operation), sorted by agent then operation.
    pub operations: Vec<OperationStats>,
    /// One entry per (provider, model), by cost, highest first.
    pub models: Vec<ModelUsage>,
    /// Totals over every LLM call.
    pub usage: UsageTotals,
    /// Events seen, by kind name (`llm_call`, `log`, …).
    pub events_by_kind: Vec<(String, u64)>,
    /// Spans whose duration was too large to record in a histogram (counted, not in percentiles).
    pub out_of_range: u64,
    /// Spans merged under `(other)` because [`StatsConfig::max_operations`] distinct
    /// (agent, operation) or (provider, model) pairs were tracked already.
    pub overflowed: u64,
}

impl StatsSnapshot {
    /// The entry for `agent` and `operation`, if any.
    pub fn operation(&self, agent: &str, operation: &str) -> Option<&OperationStats> {
        self.operations.iter().find(|o| o.agent == agent && o.operation == operation)
    }
}

struct Bucket {
    epoch: u64,
    histogram: Histogram<u64>,
    errors: u64,
}

struct OperationState {
    kind: SpanKind,
    all_time: Histogram<u64>,
    all_time_errors: u64,
    buckets: Vec<Bucket>,
    usage: UsageTotals,
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

struct StatsState {
    config: StatsConfig,
    bucket_ns: u64,
    operations: FxMap<(Symbol, Symbol), OperationState>,
    models: FxMap<(Symbol, Symbol), UsageTotals>,
    usage: UsageTotals,
    by_kind: FxMap<EventKind, u64>,
    out_of_range: u64,
    overflowed: u64,
    other: Symbol,
}

fn new_histogram(sigfig: u8) -> Histogram<u64> {
    // Auto-resizing, so memory follows the largest value seen, not a preset range.
    Histogram::new(sigfig.clamp(1, 5)).unwrap_or_else(|_| {
        // `new` only fails for out-of-range significant figures, which clamp rules out.
        Histogram::new_with_bounds(1, 3_600_000_000_000, 2).expect("valid static histogram bounds")
    })
}

impl StatsState {
    fn new(config: StatsConfig) -> Self {
        let buckets = config.buckets.max(1) as u64;
        let bucket_ns = (config.window.as_nanos() as u64 / buckets).max(1);
        Self {
            config,
            bucket_ns,
            operations: FxMap::default(),
            models: FxMap::default(),
            usage: UsageTotals::default(),
            by_kind: FxMap::default(),
            out_of_range: 0,
            overflowed: 0,
            other: Symbol::intern("(other)"),
        }
    }

    fn add(&mut self, event: &Event) {
        *self.by_kind.entry(event.kind()).or_insert(0) += 1;
        let EventBody::Span(span) = &event.body else {
            return;
        };
        let mut key = (event.agent, event.name);
        let mut merged = false;
        if !self.operations.contains_key(&key)
            && self.operations.len() >= self.config.max_operations
        {
            merged = true;
            key.1 = self.other;
            if !self.operations.contains_key(&key)
                && self.operations.len() >= 2 * self.config.max_operations
            {
                key.0 = self.other;
            }
        }
        let sigfig = self.config.significant_figures;
        let n_buckets = self.config.buckets.max(1);
        let op = self.operations.entry(key).or_insert_with(|| OperationState {
            kind: span.kind,
            all_time: new_histogram(sigfig),
            all_time_errors: 0,
            buckets: Vec::with_capacity(n_buckets),
            usage: UsageTotals::default(),
        });
        op.kind = span.kind;
        let value = span.duration_ns.max(1);
        let error = span.status.is_error();
        if op.all_time.record(value).is_err() {
            self.out_of_range += 1;
        }
        op.all_time_errors += u64::from(error);
        let epoch = event.end_time().0 / self.bucket_ns;
        let slot = (epoch % n_buckets as u64) as usize;
        if op.buckets.len() <= slot {
            op.buckets.resize_with(slot + 1, || Bucket {
                epoch: u64::MAX,
                histogram: new_histogram(sigfig),
                errors: 0,
            });
        }
        let bucket = &mut op.buckets[slot];
        if bucket.epoch != epoch && (bucket.epoch == u64::MAX || epoch > bucket.epoch) {
            bucket.epoch = epoch;
            bucket.histogram.reset();
            bucket.errors = 0;
        }
        if bucket.epoch == epoch {
            let _ = bucket.histogram.record(value);
            bucket.errors += u64::from(error);
        }
        op.usage.add(event);
        if span.kind == SpanKind::LlmCall || !span.llm.is_empty() {
            self.usage.add(event);
            let mut model = (span.llm.provider, span.llm.model);
            if !self.models.contains_key(&model) && self.models.len() >= self.config.max_operations
            {
                merged = true;
                model = (self.other, self.other);
            }
            self.models.entry(model).or_default().add(event);
        }
        self.overflowed += u64::from(merged);
    }

    fn snapshot(&self, now: Timestamp) -> StatsSnapshot {
        let n_buckets = self.config.buckets.max(1) as u64;
        let current = now.0 / self.bucket_ns;
        let oldest = current.saturating_sub(n_buckets - 1);
        let mut operations: Vec<OperationStats> = self
            .operations
            .iter()
            .map(|(&(agent, name), op)| {
                let mut window = new_histogram(self.config.significant_figures);
                let mut window_errors = 0;
                for b in &op.buckets {
                    if b.epoch != u64::MAX && b.epoch >= oldest && b.epoch <= current {
                        let _ = window.add(&b.histogram);
                        window_errors += b.errors;
                    }
                }
                OperationStats {
                    agent: agent.as_str().to_owned(),
                    operation: name.as_str().to_owned(),
                    kind: op.kind,
                    window: LatencySummary::from_histogram(&window, window_errors),
                    all_time: LatencySummary::from_histogram(&op.all_time, op.all_time_errors),
                    usage: op.usage,
                }
            })
            .collect();
        operations.sort_by(|a, b| (&a.agent, &a.operation).cmp(&(&b.agent, &b.operation)));
        let mut models: Vec<ModelUsage> = self
            .models
            .iter()
            .map(|(&(provider, model), usage)| ModelUsage {
                provider: provider.as_str().to_owned(),
                model: model.as_str().to_owned(),
                usage: *usage,
            })
            .collect();
        models.sort_by(|a, b| {
            b.usage.cost_usd.total_cmp(&a.usage.cost_usd).then(a.model.cmp(&b.model))
        });
        let mut events_by_kind: Vec<(String, u64)> =
            self.by_kind.iter().map(|(k, n)| (k.as_str().to_owned(), *n)).collect();
        events_by_kind.sort();
        StatsSnapshot {
            window: self.config.window,
            operations,
            models,
            usage: self.usage,
            events_by_kind,
            out_of_range: self.out_of_range,
            overflowed: self.overflowed,
        }
    }
}

/// A [`Sink`] that keeps rolling statistics. Read them through a [`StatsReader`] from any
/// thread at any time.
///
/// ```
/// use mission_core::{StatsConfig, StatsSink};
/// use std::time::Duration;
/// let sink = StatsSink::try_with_config(StatsConfig::default().with_window(Duration::from_secs(300)))?;
/// let reader = sink.reader();
/// assert!(reader.snapshot().operations.is_empty());
/// # Ok::<(), String>(())
/// ```
pub struct StatsSink {
    state: Arc<Mutex<StatsState>>,
}

/// Reads the statistics a [`StatsSink`] keeps. Cloneable, `Send + Sync`.
#[derive(Clone)]
pub struct StatsReader {
    state: Arc<Mutex<StatsState>>,
}

impl StatsSink {
    /// A sink with the default configuration (60 s window in six 10 s steps).
    pub fn new() -> Self {
        Self::unchecked(StatsConfig::default())
    }

    /// A sink with `config`; settings out of range are silently brought into it.
    #[deprecated(
        since = "0.1.0",
        note = "clamps settings out of range silently; use `try_with_config`, which refuses them"
    )]
    pub fn with_config(config: StatsConfig) -> Self {
        Self::unchecked(config)
    }

    fn unchecked(config: StatsConfig) -> Self {
        Self { state: Arc::new(Mutex::new(StatsState::new(config))) }
    }

    /// A sink with `config`, checked first ([`StatsConfig::validate`]).
    ///
    /// # Errors
    /// A message naming the first field out of range, its value and the range.
    pub fn try_with_config(config: StatsConfig) -> Result<Self, String> {
        config.validate()?;
        Ok(Self::unchecked(config))
    }

    /// A reader for this sink's statistics.
    pub fn reader(&self) -> StatsReader {
        StatsReader { state: self.state.clone() }
    }
}

impl Default for StatsSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Sink for StatsSink {
    fn name(&self) -> &str {
        "stats"
    }

    fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        let mut state = lock(&self.state);
        for event in batch {
            state.add(event);
        }
        Ok(())
    }
}

impl StatsReader {
    /// The statistics now. The lock it takes is held by the pipeline for one batch at most.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.snapshot_at(Timestamp::now())
    }

    /// The statistics with the window ending at `now` (for replaying recorded data).
    pub fn snapshot_at(&self, now: Timestamp) -> StatsSnapshot {
        lock(&self.state).snapshot(now)
    }
}

impl std::fmt::Debug for StatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsReader").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SpanEnd, Status};

    #[test]
    fn settings_out_of_range_are_refused_naming_field_and_range() {
        assert_eq!(StatsConfig::default().validate(), Ok(()));
        assert!(StatsSink::try_with_config(StatsConfig::default()).is_ok());
        let cases = [
            (
                StatsConfig { window: Duration::from_millis(10), ..Default::default() },
                "window",
                "1s",
            ),
            (StatsConfig { buckets: 0, ..Default::default() }, "buckets", "1 to 1000"),
            (StatsConfig { max_operations: 0, ..Default::default() }, "max_operations", "1048576"),
            (
                StatsConfig { significant_figures: 9, ..Default::default() },
                "significant_figures",
                "1 to 5",
            ),
        ];
        for (config, field, range) in cases {
            let Err(err) = StatsSink::try_with_config(config) else { panic!("{field} refused") };
            assert!(err.contains(&format!("`{field}`")) && err.contains(range), "{err}");
        }
    }

    fn span(agent: &str, name: &str, end_ns: u64, duration_ns: u64, error: bool) -> Event {
        let mut e = Event::new(
            Symbol::intern(name),
            EventBody::Span(SpanEnd {
                kind: SpanKind::ToolCall,
                duration_ns,
                status: if error { Status::Error } else { Status::Ok },
                ..SpanEnd::default()
            }),
        );
        e.agent = Symbol::intern(agent);
        e.time = Timestamp(end_ns - duration_ns);
        e
    }

    #[test]
    fn window_slides_and_all_time_keeps_everything() {
        let mut state = StatsState::new(StatsConfig {
            window: Duration::from_secs(60),
            buckets: 6,
            ..StatsConfig::default()
        });
        let s = 1_000_000_000u64;
        let base = 1_000_000 * s;
        state.add(&span("a", "op", base, 1_000, false));
        state.add(&span("a", "op", base + 30 * s, 2_000, true));
        let snap = state.snapshot(Timestamp(base + 31 * s));
        let op = snap.operation("a", "op").expect("op");
        assert_eq!(op.window.count, 2);
        assert_eq!(op.window.errors, 1);
        let later = state.snapshot(Timestamp(base + 75 * s));
        let op = later.operation("a", "op").expect("op");
        assert_eq!(op.window.count, 1, "the first span left the window");
        assert_eq!(op.all_time.count, 2);
        assert_eq!(op.all_time.errors, 1);
    }

    #[test]
    fn operations_are_bounded() {
        let mut state =
            StatsState::new(StatsConfig { max_operations: 3, ..StatsConfig::default() });
        for i in 0..10 {
            state.add(&span("a", &format!("op{i}"), 10_000_000, 10, false));
        }
        let snap = state.snapshot(Timestamp(10_000_000));
        assert_eq!(snap.operations.len(), 4);
        assert_eq!(snap.operation("a", "(other)").map(|o| o.all_time.count), Some(7));
        assert_eq!(snap.overflowed, 7);
    }

    /// Distinct agent names (600,000 of them took 1.1 GB) do not grow the statistics past the
    /// bound: each new agent went under its own `(other)` entry before.
    #[test]
    fn distinct_agents_and_models_are_bounded_too() {
        let mut state =
            StatsState::new(StatsConfig { max_operations: 8, ..StatsConfig::default() });
        for i in 0..2000 {
            let mut e = span(&format!("agent-{i}"), "chat", 10_000_000, 10, false);
            if let EventBody::Span(s) = &mut e.body {
                s.kind = SpanKind::LlmCall;
                s.llm.model = Symbol::intern(&format!("model-{i}"));
            }
            state.add(&e);
        }
        assert_eq!(state.operations.len(), 17, "8, 8 agents' (other) and one (other)");
        assert_eq!(state.models.len(), 9);
        let snap = state.snapshot(Timestamp(10_000_000));
        assert_eq!(snap.operation("(other)", "(other)").map(|o| o.all_time.count), Some(1984));
        assert_eq!(snap.overflowed, 1992);
    }
}
