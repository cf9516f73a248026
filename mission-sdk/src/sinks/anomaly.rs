//! The models sink: anomaly detection per stream with its likely cause, and process memory
//! sampling with leak prediction — as events arrive, on a worker thread of its own.
//!
//! A *stream* is one (tenant, agent, span kind, operation) — an operation is the span's name —
//! or one (tenant, agent, metric name) for metric points and scores. Each span stream has a detector per
//! metric:
//!
//! | metric (anomaly event name) | one point per | scored as |
//! |---|---|---|
//! | `latency_ms` | span | `ln(1 + ms)` (latencies are heavy-tailed) |
//! | `tokens` | LLM call with usage | `ln(1 + input + output)` |
//! | `cost_usd` | priced LLM call | `ln(1 + micro-dollars)` |
//! | `error_rate` | [`ModelConfig::error_bucket`] of event time with at least one span | the share that failed, shrunk toward the series' usual share by ten calls' worth (one failure in two calls is not a 50 % error rate; fifty failed calls of fifty are 83 %) |
//! | a metric's own name | metric point | its value |
//! | `score:<name>` (`score:helpfulness`) | score | its value |
//!
//! Span metrics alarm only when they rise (a faster call or a cheaper one is not an incident);
//! metric points and scores alarm both ways.
//!
//! When a detector raises an alarm, the sink ranks what explains it with
//! [`mission_ml::attribution`]: the stream's last [`ModelConfig::history`] spans are split
//! into the anomalous window (the most recent quarter, at most 32 spans, ending with the span
//! that raised it) and the baseline (the rest), over the dimensions `model`, `provider`,
//! `status`, `error` and the spans' attributes. The alarm re-enters the stream as an
//! [`AnomalyEvent`] (stored, exported, streamed like any event) named after the metric, with
//! attributes ([`attr`]) naming the operation, the direction, the top cause and the exemplar
//! span. Anomaly events carry no thread id, so thread sampling never drops them; the exemplar
//! is in [`attr::EXEMPLAR_THREAD_ID`] and [`attr::EXEMPLAR_SPAN_ID`]. The event's span id is
//! fresh: it identifies the anomaly (the MCP `explain_anomaly` tool takes it).
//!
//! Every [`ModelConfig::memory_interval`] (the first one interval after start) the sink samples the process's resident memory,
//! records it as the gauge `process.memory.rss` (bytes; scored like any metric when it comes
//! back) and feeds a [`LeakDetector`] that raises a `process.memory.rss` anomaly of detector
//! `leak` when the trend reaches [`ModelConfig::memory_limit`] within
//! [`ModelConfig::leak_horizon`] — once per episode, not once per sample. Sampling reads
//! `/proc/self/status`, so it is on Linux only.
//!
//! The detectors' learned state survives restarts: it is saved to
//! [`ModelConfig::state_file`] at shutdown and restored at start (with a store, `MissionControl`
//! uses `<store>/models/state.json`), so a restarted agent pages on its streams at once instead
//! of learning them again. It is also saved every [`ModelConfig::save_every`] while the agent
//! runs, so a crash loses at most that much learning.
//!
//! **Warm start from a shared baseline**: [`ModelConfig::baseline`] names a [`ModelBaseline`]
//! (a state file of another agent, or one `mission-ctl pack import` wrote). A stream this
//! agent has no state of its own for starts from the baseline's detectors of the same stream
//! identity (tenant, agent, span kind and operation, or metric name) the first time it is
//! seen; the baseline's other streams are ignored (they never take a stream slot). Counted in
//! [`ModelStats::baseline_streams`].
//!
//! Bounds, all counted in [`ModelStats`]: at most [`ModelConfig::max_streams`] streams (the
//! least recently used are evicted); a queue of [`ModelConfig::queue_batches`] batches to the
//! worker (a full queue drops the batch, never blocks the pipeline); at most
//! [`ModelConfig::max_anomalies_per_minute`] anomaly events.
//!
//! ```
//! use mission_sdk::{MissionControl, ModelConfig};
//! let control = MissionControl::builder().without_store().with_models(ModelConfig::default()).build()?;
//! let agent = control.agent("support-bot");
//! for _ in 0..10 {
//!     agent.thread().tool_call("lookup_order").end();
//! }
//! control.flush()?;
//! let stats = control.model_stats().expect("models are on");
//! assert_eq!(stats.streams, 2); // the tool's and the agent runs' streams
//! assert!(stats.points >= 20);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mission_core::{
    AnomalyEvent, Event, EventBody, MetricKind, MetricPoint, Sink, SinkContext, SinkError, SpanId,
    SpanKind, Status, Symbol, Text, ThreadId, Timestamp, WeakRecorder,
};
use mission_ml::Detector;
use mission_ml::attribution::{Attribution, Observation, attribute};
use mission_ml::leak::{LeakDetector, LeakEstimate};

pub use mission_core::anomaly::{MEMORY_METRIC, attr};

mod ranges;
pub use ranges::{
    ERROR_BUCKET_RANGE, HISTORY_RANGE, LEAK_HORIZON_RANGE, MAX_ANOMALIES_PER_MINUTE_RANGE,
    MAX_STREAMS_RANGE, MEMORY_INTERVAL_RANGE, MEMORY_LIMIT_RANGE, QUEUE_BATCHES_RANGE,
    SAVE_EVERY_RANGE,
};

/// Settings of the models sink.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ModelConfig {
    /// Streams tracked at most; past it the least recently used are evicted (default 1024).
    pub max_streams: usize,
    /// Spans kept per stream for attribution (default 128).
    pub history: usize,
    /// The event-time bucket error rates are computed over (default 60 s).
    pub error_bucket: Duration,
    /// Batches queued to the worker at most (default 1024); a full queue drops, and counts.
    pub queue_batches: usize,
    /// How often process memory is sampled; `None` turns sampling off (default 10 s).
    pub memory_interval: Option<Duration>,
    /// The memory limit leaks are predicted against, in bytes (default: the cgroup's
    /// `memory.max`, else physical memory).
    pub memory_limit: Option<u64>,
    /// Leaks are reported when the limit is reached within this horizon (default 24 h).
    pub leak_horizon: Duration,
    /// Anomaly events per minute at most; more are counted, not recorded (default 120).
    pub max_anomalies_per_minute: u32,
    /// Makes the detector of each new span series (default [`mission_ml::agent_detector`]:
    /// the default ensemble, also paging on a sustained shift of about two deviations).
    pub detector: fn() -> Box<dyn Detector + Send>,
    /// Makes the detector of each new metric series (default
    /// [`mission_ml::default_detector`], which allows for cycles).
    pub metric_detector: fn() -> Box<dyn Detector + Send>,
    /// Where the detectors' learned state is saved at shutdown and restored from at start, so
    /// a restarted agent does not learn its streams again (default: none;
    /// [`MissionControl`](crate::MissionControl) sets `<store>/models/state.json` when it has
    /// a store). A missing or unreadable file starts fresh.
    pub state_file: Option<std::path::PathBuf>,
    /// Turns a saved state back into a detector (default [`mission_ml::restore_detector`]).
    pub restore: fn(serde_json::Value) -> Option<Box<dyn Detector + Send>>,
    /// How often the state is also saved while the agent runs (default 5 minutes; `None`:
    /// at shutdown only). Needs [`state_file`](Self::state_file).
    pub save_every: Option<Duration>,
    /// A learned baseline to warm-start new streams from (a [`ModelBaseline`] file: another
    /// agent's state file, or what `mission-ctl pack import` wrote; default none). Streams the
    /// agent's own [`state_file`](Self::state_file) restores keep their own state. A missing
    /// or unreadable file is a build error of [`MissionControl`](crate::MissionControl) (see
    /// [`ModelBaseline::read`]); inside the sink it starts cold.
    pub baseline: Option<std::path::PathBuf>,
}

/// Builder methods: start from a constructor or [`Default`] and set what differs.
impl ModelConfig {
    /// Sets [`max_streams`](Self::max_streams).
    pub fn with_max_streams(mut self, max_streams: usize) -> Self {
        self.max_streams = max_streams;
        self
    }

    /// Sets [`history`](Self::history).
    pub fn with_history(mut self, history: usize) -> Self {
        self.history = history;
        self
    }

    /// Sets [`error_bucket`](Self::error_bucket).
    pub fn with_error_bucket(mut self, error_bucket: Duration) -> Self {
        self.error_bucket = error_bucket;
        self
    }

    /// Sets [`queue_batches`](Self::queue_batches).
    pub fn with_queue_batches(mut self, queue_batches: usize) -> Self {
        self.queue_batches = queue_batches;
        self
    }

    /// Sets [`memory_interval`](Self::memory_interval).
    pub fn with_memory_interval(mut self, memory_interval: Option<Duration>) -> Self {
        self.memory_interval = memory_interval;
        self
    }

    /// Sets [`memory_limit`](Self::memory_limit).
    pub fn with_memory_limit(mut self, memory_limit: Option<u64>) -> Self {
        self.memory_limit = memory_limit;
        self
    }

    /// Sets [`leak_horizon`](Self::leak_horizon).
    pub fn with_leak_horizon(mut self, leak_horizon: Duration) -> Self {
        self.leak_horizon = leak_horizon;
        self
    }

    /// Sets [`max_anomalies_per_minute`](Self::max_anomalies_per_minute).
    pub fn with_max_anomalies_per_minute(mut self, max_anomalies_per_minute: u32) -> Self {
        self.max_anomalies_per_minute = max_anomalies_per_minute;
        self
    }

    /// Sets [`detector`](Self::detector).
    pub fn with_detector(mut self, detector: fn() -> Box<dyn Detector + Send>) -> Self {
        self.detector = detector;
        self
    }

    /// Sets [`metric_detector`](Self::metric_detector).
    pub fn with_metric_detector(
        mut self,
        metric_detector: fn() -> Box<dyn Detector + Send>,
    ) -> Self {
        self.metric_detector = metric_detector;
        self
    }

    /// Sets [`state_file`](Self::state_file).
    pub fn with_state_file(mut self, state_file: Option<std::path::PathBuf>) -> Self {
        self.state_file = state_file;
        self
    }

    /// Sets [`save_every`](Self::save_every).
    pub fn with_save_every(mut self, save_every: Option<Duration>) -> Self {
        self.save_every = save_every;
        self
    }

    /// Sets [`baseline`](Self::baseline).
    pub fn with_baseline(mut self, baseline: Option<std::path::PathBuf>) -> Self {
        self.baseline = baseline;
        self
    }

    /// Sets [`restore`](Self::restore).
    pub fn with_restore(
        mut self,
        restore: fn(serde_json::Value) -> Option<Box<dyn Detector + Send>>,
    ) -> Self {
        self.restore = restore;
        self
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            max_streams: 1024,
            history: 128,
            error_bucket: Duration::from_secs(60),
            queue_batches: 1024,
            memory_interval: Some(Duration::from_secs(10)),
            memory_limit: None,
            leak_horizon: Duration::from_secs(24 * 3600),
            max_anomalies_per_minute: 120,
            detector: mission_ml::agent_detector,
            metric_detector: mission_ml::default_detector,
            state_file: None,
            restore: mission_ml::restore_detector,
            save_every: Some(Duration::from_secs(300)),
            baseline: None,
        }
    }
}

/// What the models sink has done, from [`MissionControl::model_stats`](crate::MissionControl::model_stats).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ModelStats {
    /// Streams tracked now.
    pub streams: u64,
    /// Streams evicted (least recently used) to stay within `max_streams`.
    pub evicted_streams: u64,
    /// Points scored.
    pub points: u64,
    /// Anomaly events recorded.
    pub anomalies: u64,
    /// Every event the models recorded (anomalies and memory samples): what the recorder's
    /// accounting shows beyond what the agent recorded.
    pub derived_events: u64,
    /// Anomalies found past `max_anomalies_per_minute`, counted and not recorded.
    pub anomalies_rate_limited: u64,
    /// Streams restored from the saved state at start.
    pub restored_streams: u64,
    /// Streams whose state was saved at the last save (periodic or at shutdown).
    pub saved_streams: u64,
    /// Streams warm-started from [`ModelConfig::baseline`] when first seen.
    pub baseline_streams: u64,
    /// Events the worker never saw because its queue was full.
    pub dropped_events: u64,
    /// Memory samples taken.
    pub memory_samples: u64,
    /// The last resident memory sample, bytes.
    pub memory_bytes: u64,
    /// The current leak estimate, if memory is rising toward the limit.
    pub leak: Option<LeakEstimate>,
    /// How often each detector was right, from the verdicts people gave when they
    /// acknowledged the alerts its anomalies fired (`acknowledge_alert` with `verdict`), by
    /// detector name (at most [`MAX_GRADED_DETECTORS`]).
    pub detector_quality: Vec<DetectorQuality>,
}

/// Most detectors [`ModelStats::detector_quality`] grades.
pub const MAX_GRADED_DETECTORS: usize = 64;

/// One detector's grades from acknowledgements ([`ModelStats::detector_quality`]).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct DetectorQuality {
    /// The detector.
    pub detector: String,
    /// Acknowledged as real problems.
    pub true_positives: u64,
    /// Acknowledged as false alarms.
    pub false_positives: u64,
    /// `true_positives / (true_positives + false_positives)`.
    pub precision: f64,
}

#[derive(Default)]
struct Counters {
    streams: AtomicU64,
    evicted: AtomicU64,
    points: AtomicU64,
    anomalies: AtomicU64,
    derived: AtomicU64,
    rate_limited: AtomicU64,
    restored: AtomicU64,
    saved: AtomicU64,
    baseline: AtomicU64,
    dropped: AtomicU64,
    memory_samples: AtomicU64,
    memory_bytes: AtomicU64,
    leak: Mutex<Option<LeakEstimate>>,
    /// (true, false) positives per detector.
    graded: Mutex<std::collections::BTreeMap<String, (u64, u64)>>,
}

impl Counters {
    /// Counts the verdicts of acknowledged anomaly alerts in `batch`.
    fn grade(&self, batch: &[Event]) {
        use mission_govern::directives::{ALERT_EVENT, ATTR_ALERT_DETECTOR, ATTR_ALERT_VERDICT};
        static ALERT: mission_core::LazySymbol = mission_core::LazySymbol::new(ALERT_EVENT);
        for e in batch {
            if !matches!(e.body, EventBody::Log(_)) || e.name != ALERT.get() {
                continue;
            }
            let text = |key: &str| match e.attributes.get(Symbol::intern(key)) {
                Some(mission_core::AttrValue::Str(s)) => Some(s.as_str().to_owned()),
                _ => None,
            };
            let (Some(verdict), Some(detector)) =
                (text(ATTR_ALERT_VERDICT), text(ATTR_ALERT_DETECTOR))
            else {
                continue;
            };
            let mut graded = self.graded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if !graded.contains_key(&detector) && graded.len() >= MAX_GRADED_DETECTORS {
                continue;
            }
            let entry = graded.entry(detector).or_default();
            match verdict.as_str() {
                "true_positive" => entry.0 += 1,
                "false_positive" => entry.1 += 1,
                _ => {}
            }
        }
    }
}

/// Reads the counters of a [`ModelSink`] from any thread.
#[derive(Clone)]
pub struct ModelStatsReader(Arc<Counters>);

impl std::fmt::Debug for ModelStatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ModelStatsReader").field(&self.stats()).finish()
    }
}

impl ModelStatsReader {
    /// The counters now.
    pub fn stats(&self) -> ModelStats {
        let c = &self.0;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ModelStats {
            streams: get(&c.streams),
            evicted_streams: get(&c.evicted),
            points: get(&c.points),
            anomalies: get(&c.anomalies),
            derived_events: get(&c.derived),
            anomalies_rate_limited: get(&c.rate_limited),
            restored_streams: get(&c.restored),
            saved_streams: get(&c.saved),
            baseline_streams: get(&c.baseline),
            dropped_events: get(&c.dropped),
            memory_samples: get(&c.memory_samples),
            memory_bytes: get(&c.memory_bytes),
            leak: *c.leak.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
            detector_quality: c
                .graded
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .iter()
                .map(|(detector, &(tp, fp))| DetectorQuality {
                    detector: detector.clone(),
                    true_positives: tp,
                    false_positives: fp,
                    precision: if tp + fp == 0 { 0.0 } else { tp as f64 / (tp + fp) as f64 },
                })
                .collect(),
        }
    }
}

enum Message {
    Batch(Vec<Event>),
    Flush(SyncSender<()>),
    Stop,
}

/// The sink: hands spans and metric points to the models' worker thread (see the
/// [module docs](self)).
pub struct ModelSink {
    config: ModelConfig,
    tenant: Symbol,
    agent: Symbol,
    counters: Arc<Counters>,
    sender: Option<SyncSender<Message>>,
    worker: Option<std::thread::JoinHandle<()>>,
}

impl ModelSink {
    /// A sink with `config`; process memory samples are recorded as `tenant`'s, agent `agent`.
    pub fn new(config: ModelConfig, tenant: &str, agent: &str) -> Self {
        Self {
            config,
            tenant: Symbol::intern(tenant),
            agent: Symbol::intern(agent),
            counters: Arc::new(Counters::default()),
            sender: None,
            worker: None,
        }
    }

    /// A reader of this sink's counters.
    pub fn stats_reader(&self) -> ModelStatsReader {
        ModelStatsReader(self.counters.clone())
    }

    fn stop(&mut self) {
        if let Some(sender) = self.sender.take() {
            let _ = sender.send(Message::Stop);
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl Sink for ModelSink {
    fn name(&self) -> &str {
        "models"
    }

    fn start(&mut self, context: &SinkContext) {
        let (sender, receiver) = std::sync::mpsc::sync_channel(self.config.queue_batches.max(1));
        let worker = Worker::new(
            self.config.clone(),
            context.recorder().downgrade(),
            self.counters.clone(),
            (self.tenant, self.agent),
        );
        match std::thread::Builder::new()
            .name("mission-models".into())
            .spawn(move || worker.run(&receiver))
        {
            Ok(handle) => {
                self.sender = Some(sender);
                self.worker = Some(handle);
            }
            // Reported by every `consume` as a failure of this sink.
            Err(_) => self.sender = None,
        }
    }

    fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        let Some(sender) = &self.sender else {
            return Err(SinkError::new("the models' worker thread is not running"));
        };
        self.counters.grade(batch);
        let wanted: Vec<Event> = batch
            .iter()
            .filter(|e| {
                matches!(e.body, EventBody::Span(_) | EventBody::Metric(_) | EventBody::Score(_))
            })
            .cloned()
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let n = wanted.len() as u64;
        match sender.try_send(Message::Batch(wanted)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.counters.dropped.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(n, Ordering::Relaxed);
                Err(SinkError::new("the models' worker thread stopped"))
            }
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let Some(sender) = &self.sender else { return Ok(()) };
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if sender.send(Message::Flush(done)).is_err() {
            return Err(SinkError::new("the models' worker thread stopped"));
        }
        wait.recv_timeout(Duration::from_secs(10))
            .map_err(|_| SinkError::new("the models' worker did not catch up within 10 s"))
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        self.stop();
        Ok(())
    }
}

impl Drop for ModelSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Which metric of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Metric {
    Latency = 0,
    Tokens = 1,
    Cost = 2,
    ErrorRate = 3,
}

impl Metric {
    fn name(self) -> &'static str {
        match self {
            Metric::Latency => "latency_ms",
            Metric::Tokens => "tokens",
            Metric::Cost => "cost_usd",
            Metric::ErrorRate => "error_rate",
        }
    }

    /// The scale detectors see (log for heavy-tailed positive metrics).
    fn forward(self, x: f64) -> f64 {
        match self {
            Metric::Latency | Metric::Tokens => x.max(0.0).ln_1p(),
            Metric::Cost => (x.max(0.0) * 1e6).ln_1p(),
            Metric::ErrorRate => x,
        }
    }

    /// Back from the detectors' scale to the metric's unit.
    fn back(self, y: f64) -> f64 {
        match self {
            Metric::Latency | Metric::Tokens => y.exp_m1().max(0.0),
            Metric::Cost => y.exp_m1().max(0.0) / 1e6,
            Metric::ErrorRate => y,
        }
    }

    /// The metric's value for one span of the history.
    fn of(self, o: &SpanObservation) -> Option<f64> {
        match self {
            Metric::Latency => Some(o.latency_ms),
            Metric::Tokens => (o.tokens > 0).then_some(f64::from(o.tokens)),
            Metric::Cost => (o.cost_usd > 0.0).then_some(o.cost_usd),
            Metric::ErrorRate => Some(if o.error { 1.0 } else { 0.0 }),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum StreamKey {
    Span { tenant: Symbol, agent: Symbol, kind: SpanKind, operation: Symbol },
    Metric { tenant: Symbol, agent: Symbol, name: Symbol },
}

/// One span as attribution needs it.
struct SpanObservation {
    time: u64,
    latency_ms: f64,
    tokens: u32,
    cost_usd: f64,
    error: bool,
    model: Symbol,
    provider: Symbol,
    status: Status,
    error_message: Text,
    attributes: Vec<(Symbol, String)>,
}

impl SpanObservation {
    fn dimensions(&self) -> Vec<(String, String)> {
        let mut d = Vec::with_capacity(4 + self.attributes.len());
        if !self.model.is_empty() {
            d.push(("model".to_owned(), self.model.as_str().to_owned()));
        }
        if !self.provider.is_empty() {
            d.push(("provider".to_owned(), self.provider.as_str().to_owned()));
        }
        d.push(("status".to_owned(), self.status.as_str().to_owned()));
        if self.error && !self.error_message.is_empty() {
            d.push(("error".to_owned(), self.error_message.as_str().to_owned()));
        }
        for (k, v) in &self.attributes {
            d.push((k.as_str().to_owned(), v.clone()));
        }
        d
    }
}

/// Attributes of a span kept for attribution, and the length of each value.
const KEPT_ATTRIBUTES: usize = 4;
const KEPT_VALUE_BYTES: usize = 96;

#[derive(Default)]
struct ErrorBucket {
    start: u64,
    calls: u32,
    errors: u32,
    exemplar: (ThreadId, SpanId),
}

/// One detected series of a stream: the stream's spans of one model (LLM calls), or all of
/// them.
struct Series {
    model: Symbol,
    detectors: [Option<Box<dyn Detector + Send>>; 4],
    bucket: ErrorBucket,
    /// The series' usual failures and calls, decayed per closed bucket (the prior an error
    /// rate is shrunk toward).
    usual: (f64, f64),
}

/// Calls' worth of weight the usual error rate has in a bucket's rate (10): one failure in
/// two calls of a series that fails one call in twenty scores 0.125, not 0.5; a bucket of 50
/// calls that all fail scores 0.83.
const PRIOR_CALLS: f64 = 10.0;
/// Decay of the usual error rate per closed bucket (0.98: about 50 buckets of memory).
const USUAL_DECAY: f64 = 0.98;

/// A bucket's error rate shrunk toward the series' usual rate by [`PRIOR_CALLS`] calls, and
/// the usual rate updated with the bucket.
fn shrunk_error_rate(usual: &mut (f64, f64), errors: u32, calls: u32) -> f64 {
    // Before any bucket: one failure in twenty calls.
    let prior = (usual.0 + 0.05) / (usual.1 + 1.0);
    let rate = (f64::from(errors) + PRIOR_CALLS * prior) / (f64::from(calls) + PRIOR_CALLS);
    *usual = (usual.0 * USUAL_DECAY + f64::from(errors), usual.1 * USUAL_DECAY + f64::from(calls));
    rate
}

/// Models tracked separately per stream; the calls of any further model share the last
/// series (its model is then empty: "other models").
const MAX_SERIES_PER_STREAM: usize = 8;

struct Stream {
    last_used: u64,
    /// The stream's last spans (every model), for attribution.
    history: VecDeque<SpanObservation>,
    series: Vec<Series>,
}

impl Stream {
    fn new() -> Self {
        Self { last_used: 0, history: VecDeque::new(), series: Vec::new() }
    }

    /// The index of `model`'s series, made if new.
    fn series(&mut self, model: Symbol) -> usize {
        if let Some(i) = self.series.iter().position(|s| s.model == model) {
            return i;
        }
        if self.series.len() == MAX_SERIES_PER_STREAM {
            let last = self.series.len() - 1;
            self.series[last].model = Symbol::EMPTY;
            return last;
        }
        self.series.push(Series {
            model,
            detectors: [None, None, None, None],
            bucket: ErrorBucket::default(),
            usual: (0.0, 0.0),
        });
        self.series.len() - 1
    }
}

/// The keys of anomaly attributes, interned once.
struct Keys {
    detector: Symbol,
    leak: Symbol,
    operation: Symbol,
    span_kind: Symbol,
    model: Symbol,
    direction: Symbol,
    cause: Symbol,
    contribution: Symbol,
    causes: Symbol,
    thread: Symbol,
    span: Symbol,
    window_start: Symbol,
    window_count: Symbol,
    baseline_count: Symbol,
    time_to_limit: Symbol,
    limit: Symbol,
    slope: Symbol,
    confidence: Symbol,
    memory: Symbol,
    bytes: Symbol,
    /// The names of the span metrics, by [`Metric`].
    metrics: [Symbol; 4],
}

impl Keys {
    fn new() -> Self {
        Self {
            detector: Symbol::intern("ensemble"),
            leak: Symbol::intern("leak"),
            operation: Symbol::intern(attr::OPERATION),
            span_kind: Symbol::intern(attr::SPAN_KIND),
            model: Symbol::intern(attr::MODEL),
            direction: Symbol::intern(attr::DIRECTION),
            cause: Symbol::intern(attr::CAUSE),
            contribution: Symbol::intern(attr::CAUSE_CONTRIBUTION),
            causes: Symbol::intern(attr::CAUSES),
            thread: Symbol::intern(attr::EXEMPLAR_THREAD_ID),
            span: Symbol::intern(attr::EXEMPLAR_SPAN_ID),
            window_start: Symbol::intern(attr::WINDOW_START),
            window_count: Symbol::intern(attr::WINDOW_COUNT),
            baseline_count: Symbol::intern(attr::BASELINE_COUNT),
            time_to_limit: Symbol::intern(attr::TIME_TO_LIMIT_S),
            limit: Symbol::intern(attr::LIMIT),
            slope: Symbol::intern(attr::SLOPE_PER_S),
            confidence: Symbol::intern(attr::CONFIDENCE),
            memory: Symbol::intern(MEMORY_METRIC),
            bytes: Symbol::intern("By"),
            metrics: [Metric::Latency, Metric::Tokens, Metric::Cost, Metric::ErrorRate]
                .map(|m| Symbol::intern(m.name())),
        }
    }
}

/// What one scored point carries to an anomaly event.
struct Point {
    key: StreamKey,
    /// The series of the stream.
    series: usize,
    metric: Option<Metric>,
    name: Symbol,
    time: u64,
    value: f64,
    exemplar: (ThreadId, SpanId),
}

struct Worker {
    config: ModelConfig,
    recorder: WeakRecorder,
    counters: Arc<Counters>,
    streams: HashMap<StreamKey, Stream>,
    clock: u64,
    keys: Keys,
    /// The latest event time seen, and the wall-clock instant it was seen.
    watermark: Option<(u64, Instant)>,
    /// Anomaly events allowed in the current minute.
    budget: (Instant, u32),
    memory: MemorySampler,
    /// The baseline's streams not seen yet, by identity (at most `max_streams`).
    baseline: HashMap<BaselineKey, SavedStream>,
}

/// A stream's identity in a saved state: tenant, agent, span kind (`None` for a metric
/// stream), operation or metric name.
type BaselineKey = (String, String, Option<SpanKind>, String);

impl Worker {
    fn new(
        config: ModelConfig,
        recorder: WeakRecorder,
        counters: Arc<Counters>,
        owner: (Symbol, Symbol),
    ) -> Self {
        let memory = MemorySampler::new(&config, owner);
        Self {
            config,
            recorder,
            counters,
            streams: HashMap::new(),
            clock: 0,
            keys: Keys::new(),
            watermark: None,
            budget: (Instant::now(), 0),
            memory,
            baseline: HashMap::new(),
        }
    }

    fn run(mut self, receiver: &Receiver<Message>) {
        self.restore();
        self.load_baseline();
        let tick = Duration::from_millis(250);
        let mut last_tick = Instant::now();
        let mut last_save = Instant::now();
        loop {
            match receiver.recv_timeout(tick) {
                Ok(Message::Batch(events)) => {
                    for event in &events {
                        self.take(event);
                    }
                }
                Ok(Message::Flush(done)) => {
                    self.close_buckets(true);
                    let _ = done.send(());
                }
                Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => {
                    self.close_buckets(true);
                    self.save();
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            if last_tick.elapsed() >= tick {
                last_tick = Instant::now();
                self.close_buckets(false);
                self.sample_memory();
                if self.config.save_every.is_some_and(|every| last_save.elapsed() >= every) {
                    last_save = Instant::now();
                    self.save();
                }
            }
        }
    }

    /// Loads the saved detectors, if there is a state file.
    fn restore(&mut self) {
        let Some(path) = &self.config.state_file else { return };
        let Ok(bytes) = std::fs::read(path) else { return };
        let Ok(saved) = serde_json::from_slice::<SavedState>(&bytes) else { return };
        for s in saved.streams.into_iter().take(self.config.max_streams.max(1)) {
            let (tenant, agent) = (Symbol::intern(&s.tenant), Symbol::intern(&s.agent));
            let operation = Symbol::intern(&s.operation);
            let key = match s.kind {
                Some(kind) => StreamKey::Span { tenant, agent, kind, operation },
                None => StreamKey::Metric { tenant, agent, name: operation },
            };
            self.stream(key);
            self.apply(key, s.series);
            self.counters.restored.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Gives the stream `key` (which exists) the saved detectors of its series.
    fn apply(&mut self, key: StreamKey, saved: Vec<SavedSeries>) {
        let restore = self.config.restore;
        let Some(stream) = self.streams.get_mut(&key) else { return };
        for saved in saved.into_iter().take(MAX_SERIES_PER_STREAM) {
            let index = stream.series(Symbol::intern(&saved.model));
            let series = &mut stream.series[index];
            for (slot, state) in series.detectors.iter_mut().zip(saved.detectors) {
                *slot = state.and_then(restore);
            }
            // Counts only: finite and not negative, or a fresh start.
            if let Some((errors, calls)) = saved.usual
                && errors.is_finite()
                && calls.is_finite()
                && (0.0..=calls).contains(&errors)
            {
                series.usual = (errors, calls);
            }
        }
    }

    /// Keeps the baseline's streams this agent did not restore from its own state, to
    /// warm-start them when they are first seen.
    fn load_baseline(&mut self) {
        let Some(path) = &self.config.baseline else { return };
        let Ok(baseline) = ModelBaseline::read(path) else { return };
        let known: std::collections::HashSet<BaselineKey> =
            self.streams.keys().map(|k| identity(*k)).collect();
        for s in baseline.state.streams {
            if self.baseline.len() >= self.config.max_streams.max(1) {
                break;
            }
            let key = (s.tenant.clone(), s.agent.clone(), s.kind, s.operation.clone());
            if !known.contains(&key) {
                self.baseline.insert(key, s);
            }
        }
    }

    /// Saves the detectors' states to the state file (atomically: a temporary file renamed).
    fn save(&self) {
        let Some(path) = &self.config.state_file else { return };
        let streams: Vec<SavedStream> = self
            .streams
            .iter()
            .map(|(key, stream)| {
                let (tenant, agent, kind, operation) = identity(*key);
                SavedStream {
                    tenant,
                    agent,
                    kind,
                    operation,
                    series: stream
                        .series
                        .iter()
                        .map(|s| SavedSeries {
                            model: s.model.as_str().to_owned(),
                            detectors: s
                                .detectors
                                .iter()
                                .map(|d| d.as_ref().and_then(|d| d.state()))
                                .collect(),
                            usual: Some(s.usual),
                        })
                        .collect(),
                }
            })
            .collect();
        let n = streams.len() as u64;
        let write = || -> std::io::Result<()> {
            let state = SavedState { version: 1, streams };
            let json = serde_json::to_vec(&state).map_err(std::io::Error::other)?;
            // Atomic and durable: a crash leaves the previous state or this one.
            mission_store::atomic::replace_file(path, &json)
        };
        if write().is_ok() {
            self.counters.saved.store(n, Ordering::Relaxed);
        }
    }

    fn take(&mut self, event: &Event) {
        let time = event.time.0;
        if self.watermark.is_none_or(|(w, _)| time > w) {
            self.watermark = Some((time, Instant::now()));
        }
        match &event.body {
            EventBody::Span(span) => {
                let key = StreamKey::Span {
                    tenant: event.tenant,
                    agent: event.agent,
                    kind: span.kind,
                    operation: event.name,
                };
                let end = event.end_time().0;
                let exemplar = (event.thread_id, event.span_id);
                let observation = SpanObservation {
                    time: end,
                    latency_ms: span.duration_ns as f64 / 1e6,
                    tokens: span.llm.input_tokens.saturating_add(span.llm.output_tokens),
                    cost_usd: span.llm.cost_usd,
                    error: span.status.is_error(),
                    model: span.llm.model,
                    provider: span.llm.provider,
                    status: span.status,
                    error_message: span.error_message.clone(),
                    attributes: event
                        .attributes
                        .iter()
                        .take(KEPT_ATTRIBUTES)
                        .map(|a| {
                            let mut v = a.value.to_string();
                            truncate(&mut v, KEPT_VALUE_BYTES);
                            (a.key, v)
                        })
                        .collect(),
                };
                let bucket_ns = duration_ns(self.config.error_bucket).max(1);
                let history = self.config.history.max(8);
                let (series, values, closed) = {
                    let stream = self.stream(key);
                    if stream.history.len() >= history {
                        stream.history.pop_front();
                    }
                    let values =
                        [Metric::Latency, Metric::Tokens, Metric::Cost].map(|m| m.of(&observation));
                    stream.history.push_back(observation);
                    let series = stream.series(span.llm.model);
                    // The error bucket: a span of a later bucket closes the current one.
                    let bucket_start = end - end % bucket_ns;
                    let own = &mut stream.series[series];
                    let b = &mut own.bucket;
                    let closed = if b.calls > 0 && bucket_start > b.start {
                        let rate = shrunk_error_rate(&mut own.usual, b.errors, b.calls);
                        let c = (b.start, rate, b.exemplar);
                        *b = ErrorBucket::default();
                        Some(c)
                    } else {
                        None
                    };
                    if b.calls == 0 {
                        b.start = bucket_start;
                    }
                    b.calls += 1;
                    if span.status.is_error() {
                        b.errors += 1;
                        b.exemplar = exemplar;
                    } else if b.exemplar.0.is_zero() {
                        b.exemplar = exemplar;
                    }
                    (series, values, closed)
                };
                for (metric, value) in
                    [Metric::Latency, Metric::Tokens, Metric::Cost].iter().zip(values)
                {
                    if let Some(value) = value {
                        self.score(Point {
                            key,
                            series,
                            metric: Some(*metric),
                            name: self.keys.metrics[*metric as usize],
                            time: end,
                            value,
                            exemplar,
                        });
                    }
                }
                if let Some((start, rate, exemplar)) = closed {
                    self.score(Point {
                        key,
                        series,
                        metric: Some(Metric::ErrorRate),
                        name: self.keys.metrics[Metric::ErrorRate as usize],
                        time: start + bucket_ns,
                        value: rate,
                        exemplar,
                    });
                }
            }
            EventBody::Metric(m) => {
                let key = StreamKey::Metric {
                    tenant: event.tenant,
                    agent: event.agent,
                    name: event.name,
                };
                let series = self.stream(key).series(Symbol::EMPTY);
                self.score(Point {
                    key,
                    series,
                    metric: None,
                    name: event.name,
                    time,
                    value: m.value,
                    exemplar: (event.thread_id, event.span_id),
                });
            }
            // Scores are a series per agent and score name, `score:<name>` (a drop in quality
            // is an anomaly like a rise in latency). Rare enough that naming it here is cheap.
            EventBody::Score(sc) => {
                let name = Symbol::intern(&format!("score:{}", event.name.as_str()));
                let key = StreamKey::Metric { tenant: event.tenant, agent: event.agent, name };
                let series = self.stream(key).series(Symbol::EMPTY);
                self.score(Point {
                    key,
                    series,
                    metric: None,
                    name,
                    time,
                    value: sc.value,
                    exemplar: (event.thread_id, event.span_id),
                });
            }
            _ => {}
        }
    }

    /// The stream for `key`, made if new (evicting the least recently used past the bound).
    fn stream(&mut self, key: StreamKey) -> &mut Stream {
        self.clock += 1;
        let new = !self.streams.contains_key(&key);
        if new {
            if self.streams.len() >= self.config.max_streams.max(1) {
                self.evict();
            }
            self.counters.streams.store(self.streams.len() as u64 + 1, Ordering::Relaxed);
        }
        if new
            && !self.baseline.is_empty()
            && let Some(saved) = self.baseline.remove(&identity(key))
        {
            self.streams.insert(key, Stream::new());
            self.apply(key, saved.series);
            self.counters.baseline.fetch_add(1, Ordering::Relaxed);
        }
        let stream = self.streams.entry(key).or_insert_with(Stream::new);
        stream.last_used = self.clock;
        stream
    }

    /// Evicts the least recently used eighth of the streams (at least one), so the cost of
    /// eviction is O(log n) per new stream over time.
    fn evict(&mut self) {
        let mut ages: Vec<u64> = self.streams.values().map(|s| s.last_used).collect();
        let n = (ages.len() / 8).max(1);
        let (_, cutoff, _) = ages.select_nth_unstable(n - 1);
        let cutoff = *cutoff;
        let before = self.streams.len();
        self.streams.retain(|_, s| s.last_used > cutoff);
        self.counters.evicted.fetch_add((before - self.streams.len()) as u64, Ordering::Relaxed);
    }

    fn score(&mut self, point: Point) {
        let factory =
            if point.metric.is_some() { self.config.detector } else { self.config.metric_detector };
        let Some(stream) = self.streams.get_mut(&point.key) else { return };
        let Some(series) = stream.series.get_mut(point.series) else { return };
        let model = series.model;
        let slot = point.metric.map_or(0, |m| m as usize);
        let detector = series.detectors[slot].get_or_insert_with(factory);
        let scored = match point.metric {
            Some(m) => {
                let mut s = detector.update(point.time, m.forward(point.value));
                s.expected = m.back(s.expected);
                s.lower = m.back(s.lower);
                s.upper = m.back(s.upper);
                s
            }
            None => detector.update(point.time, point.value),
        };
        self.counters.points.fetch_add(1, Ordering::Relaxed);
        if !scored.is_anomaly || !point.value.is_finite() {
            return;
        }
        let up = point.value >= scored.expected;
        // For spans, only a rise is an incident: faster calls, fewer tokens, lower cost and
        // fewer errors are not paged on. Metric points alarm both ways.
        if point.metric.is_some() && !up {
            return;
        }
        let causes = match point.metric {
            Some(m) => explain(&stream.history, m, model),
            None => Explained::default(),
        };
        let mut event = Event::new(
            point.name,
            EventBody::Anomaly(AnomalyEvent {
                detector: self.keys.detector,
                score: scored.score,
                value: point.value,
                expected: scored.expected,
                lower: scored.lower,
                upper: scored.upper,
            }),
        );
        event.time = Timestamp(point.time);
        event.span_id = SpanId::generate();
        let a = &mut event.attributes;
        match point.key {
            StreamKey::Span { tenant, agent, kind, operation } => {
                event.tenant = tenant;
                event.agent = agent;
                a.set(self.keys.operation, operation.as_str());
                a.set(self.keys.span_kind, kind.as_str());
            }
            StreamKey::Metric { tenant, agent, name } => {
                event.tenant = tenant;
                event.agent = agent;
                a.set(self.keys.operation, name.as_str());
            }
        }
        if !model.is_empty() {
            a.set(self.keys.model, model.as_str());
        }
        a.set(self.keys.direction, if up { "up" } else { "down" });
        if !point.exemplar.0.is_zero() {
            a.set(self.keys.thread, point.exemplar.0.to_string());
            a.set(self.keys.span, point.exemplar.1.to_string());
        }
        match causes.causes.first() {
            Some(top) => {
                a.set(self.keys.cause, format!("{}={}", top.dimension, top.value));
                a.set(self.keys.contribution, top.contribution);
                a.set(
                    self.keys.causes,
                    serde_json::to_string(&causes.causes).unwrap_or_else(|_| "[]".into()),
                );
            }
            // Attribution ran and no value explains the change beyond its share of the calls.
            None if causes.window > 0 => {
                a.set(self.keys.cause, attr::NO_SINGLE_CAUSE);
            }
            None => {}
        }
        if causes.window > 0 {
            a.set(self.keys.window_start, i64::try_from(causes.window_start).unwrap_or(i64::MAX));
            a.set(self.keys.window_count, causes.window as i64);
            a.set(self.keys.baseline_count, causes.baseline as i64);
        }
        self.emit(event);
    }

    /// Records `event` unless this minute's budget is spent.
    fn emit(&mut self, event: Event) {
        if self.budget.0.elapsed() >= Duration::from_secs(60) {
            self.budget = (Instant::now(), 0);
        }
        if self.budget.1 >= self.config.max_anomalies_per_minute {
            self.counters.rate_limited.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.budget.1 += 1;
        if let Some(recorder) = self.recorder.upgrade()
            && recorder.record(event)
        {
            self.counters.anomalies.fetch_add(1, Ordering::Relaxed);
            self.counters.derived.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Closes the error buckets that ended a bucket ago by event time (the latest event time
    /// seen, advanced by the wall-clock time since), or all of them on flush.
    fn close_buckets(&mut self, all: bool) {
        let Some((latest, seen)) = self.watermark else { return };
        let bucket_ns = duration_ns(self.config.error_bucket).max(1);
        let now = latest.saturating_add(duration_ns(seen.elapsed()));
        let mut due = Vec::new();
        for (key, stream) in &mut self.streams {
            for (index, series) in stream.series.iter_mut().enumerate() {
                let b = &mut series.bucket;
                let end = b.start.saturating_add(bucket_ns);
                if b.calls > 0 && (all || now >= end.saturating_add(bucket_ns)) {
                    let rate = shrunk_error_rate(&mut series.usual, b.errors, b.calls);
                    due.push((*key, index, end, rate, b.exemplar));
                    *b = ErrorBucket::default();
                }
            }
        }
        let name = self.keys.metrics[Metric::ErrorRate as usize];
        for (key, series, time, value, exemplar) in due {
            let metric = Some(Metric::ErrorRate);
            self.score(Point { key, series, metric, name, time, value, exemplar });
        }
    }

    fn sample_memory(&mut self) {
        let Some(sample) = self.memory.sample() else { return };
        let (tenant, agent) = self.memory.owner;
        self.counters.memory_samples.fetch_add(1, Ordering::Relaxed);
        self.counters.memory_bytes.store(sample.bytes, Ordering::Relaxed);
        *self.counters.leak.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = sample.leak;
        if let Some(recorder) = self.recorder.upgrade() {
            let mut point = Event::new(
                self.keys.memory,
                EventBody::Metric(MetricPoint {
                    kind: MetricKind::Gauge,
                    value: sample.bytes as f64,
                    unit: self.keys.bytes,
                }),
            );
            point.time = Timestamp(sample.time);
            point.tenant = tenant;
            point.agent = agent;
            if recorder.record(point) {
                self.counters.derived.fetch_add(1, Ordering::Relaxed);
            }
        }
        let Some(leak) = sample.leak.filter(|_| sample.new_episode) else { return };
        let mut event = Event::new(
            self.keys.memory,
            EventBody::Anomaly(AnomalyEvent {
                detector: self.keys.leak,
                score: leak.confidence,
                value: sample.bytes as f64,
                expected: leak.projected,
                lower: 0.0,
                upper: self.memory.limit,
            }),
        );
        event.time = Timestamp(sample.time);
        event.tenant = tenant;
        event.agent = agent;
        event.span_id = SpanId::generate();
        let a = &mut event.attributes;
        a.set(self.keys.operation, MEMORY_METRIC);
        a.set(self.keys.direction, "up");
        a.set(self.keys.time_to_limit, leak.time_to_limit.as_secs_f64());
        a.set(self.keys.limit, self.memory.limit);
        a.set(self.keys.slope, leak.slope);
        a.set(self.keys.confidence, leak.confidence);
        self.emit(event);
    }
}

/// A stream's identity as a saved state names it.
fn identity(key: StreamKey) -> BaselineKey {
    let (tenant, agent, kind, operation) = match key {
        StreamKey::Span { tenant, agent, kind, operation } => {
            (tenant, agent, Some(kind), operation)
        }
        StreamKey::Metric { tenant, agent, name } => (tenant, agent, None, name),
    };
    (tenant.as_str().to_owned(), agent.as_str().to_owned(), kind, operation.as_str().to_owned())
}

/// The largest model state or baseline file [`ModelBaseline::from_json`] reads: 256 MiB
/// (1024 streams of 8 series of 4 detectors of about 10 KiB take about 330 MiB at the very
/// most; a real agent's is a few MiB).
pub const MAX_BASELINE_BYTES: usize = 256 << 20;

/// What can go wrong reading a [`ModelBaseline`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BaselineError {
    /// The file could not be read.
    #[error("cannot read the model baseline {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not a model state.
    #[error("not a model baseline: {0}")]
    Invalid(String),
    /// A state of a version this build does not read.
    #[error("model baseline version {found} is not supported (this build reads version 1)")]
    Version {
        /// The version the file says.
        found: u32,
    },
    /// Larger than [`MAX_BASELINE_BYTES`].
    #[error("the model baseline is {bytes} bytes, more than the {MAX_BASELINE_BYTES} allowed")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
}

/// The detectors' learned state per stream, as [`ModelConfig::state_file`] holds it: what
/// `mission-ctl pack` shares and [`ModelConfig::baseline`] warm-starts from. Streams are keyed
/// by identity: tenant, agent, span kind and operation (or metric name).
#[derive(Clone, Debug)]
pub struct ModelBaseline {
    state: SavedState,
}

impl ModelBaseline {
    /// Parses a state file's bytes (JSON, at most [`MAX_BASELINE_BYTES`]).
    ///
    /// # Errors
    /// [`BaselineError::TooLarge`], [`BaselineError::Invalid`] or [`BaselineError::Version`].
    pub fn from_json(bytes: &[u8]) -> Result<Self, BaselineError> {
        if bytes.len() > MAX_BASELINE_BYTES {
            return Err(BaselineError::TooLarge { bytes: bytes.len() });
        }
        let state: SavedState =
            serde_json::from_slice(bytes).map_err(|e| BaselineError::Invalid(e.to_string()))?;
        if state.version != 1 {
            return Err(BaselineError::Version { found: state.version });
        }
        Ok(Self { state })
    }

    /// Reads a state file.
    ///
    /// # Errors
    /// [`BaselineError::Io`], or as [`from_json`](Self::from_json).
    pub fn read(path: &std::path::Path) -> Result<Self, BaselineError> {
        let io = |source| BaselineError::Io { path: path.to_path_buf(), source };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_BASELINE_BYTES as u64 {
            return Err(BaselineError::TooLarge {
                bytes: usize::try_from(len).unwrap_or(usize::MAX),
            });
        }
        Self::from_json(&std::fs::read(path).map_err(io)?)
    }

    /// The state as JSON, as a state file holds it.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).unwrap_or_default()
    }

    /// How many streams it holds.
    pub fn streams(&self) -> usize {
        self.state.streams.len()
    }

    /// The tenants of its streams, sorted.
    pub fn tenants(&self) -> Vec<String> {
        let set: std::collections::BTreeSet<&str> =
            self.state.streams.iter().map(|s| s.tenant.as_str()).collect();
        set.into_iter().map(str::to_owned).collect()
    }

    /// Keeps `tenant`'s streams only; returns how many others were dropped.
    pub fn retain_tenant(&mut self, tenant: &str) -> usize {
        let before = self.state.streams.len();
        self.state.streams.retain(|s| s.tenant == tenant);
        before - self.state.streams.len()
    }
}

/// What [`ModelConfig::state_file`] holds.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SavedState {
    version: u32,
    streams: Vec<SavedStream>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SavedStream {
    tenant: String,
    agent: String,
    /// The span kind, or `None` for a metric stream.
    kind: Option<SpanKind>,
    /// The operation, or the metric's name.
    operation: String,
    series: Vec<SavedSeries>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SavedSeries {
    model: String,
    /// Per metric (latency, tokens, cost, error rate; a metric stream uses the first).
    detectors: Vec<Option<serde_json::Value>>,
    /// The usual failures and calls the error rate is shrunk toward (absent in states saved
    /// before it was kept: it starts fresh).
    #[serde(default)]
    usual: Option<(f64, f64)>,
}

/// The causes of an anomaly and the windows they were computed over.
#[derive(Default)]
struct Explained {
    causes: Vec<Attribution>,
    window_start: u64,
    window: usize,
    baseline: usize,
}

/// `status=unset` or `status=ok`: the absence of a failure, not a property of the calls. The
/// calls without a failure slowing down is everything slowing down; such a value is only a
/// cause when there are more of them (see [`share_grew`]).
fn is_plain_status(c: &Attribution) -> bool {
    c.dimension == "status" && (c.value == "unset" || c.value == "ok")
}

/// Whether `c`'s share of the calls grew from the baseline to the anomalous window (of
/// `anomalous` calls) by more than two binomial standard errors.
fn share_grew(c: &Attribution, anomalous: usize) -> bool {
    let p = c.baseline_support.clamp(0.01, 0.99);
    c.support - c.baseline_support > 2.0 * (p * (1.0 - p) / anomalous.max(1) as f64).sqrt()
}

/// The alarmed series' own last calls the anomalous windows of attribution start at, tried in
/// turn (about the calls a level shift takes to raise its alarm, on clean and noisy series).
const OWN_CALLS: [usize; 3] = [4, 8, 16];

/// Ranks what explains `metric`'s change over a stream's history: the last quarter (at most
/// 32 spans) against the rest. When the alarm is on one model's series (`model` not empty),
/// only values that the series' own spans in the anomalous window have can be its cause: a
/// `gpt-4o-mini` series is not slowed by `model=claude-sonnet-4`, however much that model
/// moved the stream's mean.
fn explain(history: &VecDeque<SpanObservation>, metric: Metric, model: Symbol) -> Explained {
    // On the detectors' scale (the log of latency, tokens and cost): a change is judged as a
    // ratio, so a few very slow calls do not swamp the standard errors.
    let rows: Vec<(&SpanObservation, f64)> = history
        .iter()
        .filter_map(|o| metric.of(o).map(|v| (o, metric.forward(v))))
        .filter(|(_, v)| v.is_finite())
        .collect();
    if rows.len() < 8 {
        return Explained::default();
    }
    // The anomalous window: the stream's last quarter (at most 32 spans); for one model's
    // series, the calls since that series' 4th, 8th or 16th last call, the first of these
    // that names a cause (the baseline keeps at least half the rows). The change began
    // somewhere in the last calls of the series; one model among several has too few calls
    // in the stream's last 32 to tell a change from chance, and too long a window dilutes it.
    let splits: Vec<usize> = if model.is_empty() {
        vec![rows.len() - (rows.len() / 4).clamp(1, 32)]
    } else {
        let own: Vec<usize> = rows
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, (o, _))| o.model == model)
            .map(|(i, _)| i)
            .collect();
        OWN_CALLS
            .iter()
            .filter_map(|&k| own.get(k - 1).copied())
            .map(|i| i.max(rows.len() / 2))
            .collect()
    };
    let Some(&last) = splits.last() else { return Explained::default() };
    let mut explained = Explained::default();
    for split in splits {
        let causes = causes_at(&rows, split, metric, model);
        let found = !causes.is_empty();
        explained = Explained {
            causes,
            window_start: rows[split].0.time,
            window: rows.len() - split,
            baseline: split,
        };
        if found || split == last {
            break;
        }
    }
    explained
}

/// The causes of the change from `rows[..split]` to `rows[split..]` that the alarmed series
/// (`model`, or every span) has itself; means back in the metric's unit.
fn causes_at(
    rows: &[(&SpanObservation, f64)],
    split: usize,
    metric: Metric,
    model: Symbol,
) -> Vec<Attribution> {
    let observe = |rows: &[(&SpanObservation, f64)]| -> Vec<Observation> {
        rows.iter().map(|(o, v)| Observation::new(o.dimensions(), *v)).collect()
    };
    let own: Vec<(String, String)> = rows[split..]
        .iter()
        .filter(|(o, _)| model.is_empty() || o.model == model)
        .flat_map(|(o, _)| o.dimensions())
        .collect();
    attribute(&observe(&rows[..split]), &observe(&rows[split..]), 8)
        .into_iter()
        .filter(|c| c.contribution > 0.0)
        .filter(|c| own.iter().any(|(d, v)| *d == c.dimension && *v == c.value))
        .filter(|c| !is_plain_status(c) || share_grew(c, rows.len() - split))
        .take(3)
        .map(|mut c| {
            // Means back in the metric's unit (geometric means of the calls).
            c.baseline_mean = metric.back(c.baseline_mean);
            c.anomalous_mean = metric.back(c.anomalous_mean);
            c.lift = if c.baseline_mean.abs() > f64::EPSILON {
                c.anomalous_mean / c.baseline_mean
            } else {
                f64::INFINITY
            };
            c
        })
        .collect()
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

/// One memory sample and what the leak detector made of it.
struct MemorySample {
    time: u64,
    bytes: u64,
    leak: Option<LeakEstimate>,
    /// The leak estimate is new (the previous sample had none within the horizon).
    new_episode: bool,
}

struct MemorySampler {
    interval: Option<Duration>,
    last: Option<Instant>,
    owner: (Symbol, Symbol),
    limit: f64,
    horizon: Duration,
    leak: LeakDetector,
    leaking: bool,
}

impl MemorySampler {
    fn new(config: &ModelConfig, owner: (Symbol, Symbol)) -> Self {
        let limit = config.memory_limit.or_else(memory_limit).map_or(f64::INFINITY, |b| b as f64);
        Self {
            interval: config.memory_interval,
            last: None,
            owner,
            limit,
            horizon: config.leak_horizon,
            // Two hours of samples at the default interval.
            leak: LeakDetector::new(limit, 720).with_horizon(config.leak_horizon),
            leaking: false,
        }
    }

    fn sample(&mut self) -> Option<MemorySample> {
        let interval = self.interval?;
        // The first sample is taken one interval after start.
        let last = *self.last.get_or_insert_with(Instant::now);
        if last.elapsed() < interval {
            return None;
        }
        self.last = Some(Instant::now());
        let bytes = resident_bytes()?;
        let time = Timestamp::now().0;
        let leak = self.leak.update(time, bytes as f64).filter(|l| l.time_to_limit <= self.horizon);
        let new_episode = leak.is_some() && !self.leaking;
        self.leaking = leak.is_some();
        Some(MemorySample { time, bytes, leak, new_episode })
    }
}

/// The process's resident memory in bytes (Linux; `None` elsewhere or if unreadable).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The memory this process may use: the cgroup v2 limit, else physical memory (Linux).
fn memory_limit() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    cgroup.or_else(|| {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    })
}
