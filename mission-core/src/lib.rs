//! The core of Mission Control: the event model, the lock-free [`Recorder`], the [`Pipeline`]
//! that drains it into [`Sink`]s, the `tracing` layer ([`MissionLayer`]) and rolling
//! statistics ([`StatsSink`]).
//!
//! Mission Control is observability that lives inside an AI agent's process. This crate is the
//! part every other one builds on, and it is a separate crate because it changes slowly and
//! depends on almost nothing: storage (`mission-store`), models (`mission-ml`) and the agent
//! SDK (`mission-sdk`) all speak its [`Event`] and implement its [`Sink`], and never each
//! other's types.
//!
//! # Quick example
//!
//! ```
//! use mission_core::{LlmUsage, Pipeline, SpanKind, StatsSink, Symbol, ThreadContext};
//!
//! let stats = StatsSink::new();
//! let reader = stats.reader();
//! let pipeline = Pipeline::builder().with_sink(stats).start()?;
//! let recorder = pipeline.recorder();
//!
//! let thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
//! let mut call = recorder.start_span(&thread, SpanKind::LlmCall, Symbol::intern("chat"), None);
//! call.set_llm_usage(LlmUsage {
//!     model: Symbol::intern("gpt-4o-mini"),
//!     input_tokens: 812,
//!     output_tokens: 64,
//!     ..LlmUsage::default()
//! });
//! call.end();
//!
//! let report = pipeline.shutdown();
//! assert_eq!(report.accounting.recorded, 1);
//! assert_eq!(report.accounting.delivered, 1);
//! assert_eq!(reader.snapshot().usage.input_tokens, 812);
//! # Ok::<(), mission_core::StartError>(())
//! ```
//!
//! # The entry types
//!
//! | type | what it is |
//! |---|---|
//! | [`Event`] | anything recorded: span end, log, metric point, permission decision, anomaly |
//! | [`Symbol`], [`LazySymbol`] | interned names and keys (4 bytes, no allocation once seen) |
//! | [`Pipeline`] | owns the drain thread; `flush`, `health`, `shutdown` |
//! | [`Recorder`] | the cheap handle agent threads record through |
//! | [`ActiveSpan`] | a span being timed, recorded on `end` or drop |
//! | [`Sink`] | where drained batches go ([`FnSink`] for closures) |
//! | [`StatsSink`] | rolling latency percentiles, tokens and cost |
//! | [`semconv`] | one table of the GenAI attribute conventions in wide use (OpenTelemetry old and new, OpenLLMetry, OpenInference, Logfire, Langfuse) and the typed fields they map onto |
//! | [`MissionLayer`] | records `tracing` spans and events; told which targets to ignore ([`MissionLayer::ignore_targets`]), it names no crate above it |
//! | [`Health`], [`Accounting`] | what the recorder and sinks are doing, exactly |
//! | [`RecorderConfig`], [`StatsConfig`] | settings: `#[non_exhaustive]`, built from `Default` with `with_*` methods, each numeric one range-checked |
//!
//! # Why it is built this way
//!
//! * **Recording costs nanoseconds.** Each OS thread writes into a bounded ring of its own: no
//!   lock, no compare-and-swap, no cache line shared with other producers. Names are interned
//!   once, timestamps come from the CPU's time-stamp counter anchored to wall time, and an
//!   [`Event`] is moved, not boxed.
//! * **Nothing is lost silently.** Buffers are bounded; when one is full the configured
//!   [`Backpressure`] applies and every dropped event is counted by reason. At any moment
//!   `recorded == delivered + dropped + in_flight` ([`Accounting`]).
//! * **Data flows one way.** Producers → recorder → pipeline thread → sinks. A sink never calls
//!   back into a producer; sinks run off the agent's threads, and a failing or panicking sink
//!   is isolated from the others and shown in [`Health`].
//! * **Bounded everywhere.** Strings, attributes, interned names, per-thread buffers and
//!   statistics all have limits ([`limits`]); past a limit, values are truncated with a marker
//!   or counted, never grown without end.
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `tracing` | yes | [`MissionLayer`], a `tracing_subscriber` layer |
//!
//! # Untrusted input
//!
//! Every string that reaches an event may come from outside (a prompt, a tool argument). All
//! of them are bounded ([`limits`]), invalid UTF-8 cannot be represented (`&str` only), and
//! no recording call panics or returns an error the agent must handle.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88 (edition 2024).
#![doc(test(attr(deny(warnings))))]
#![warn(missing_docs)]

pub mod anomaly;
pub mod artefacts;
mod attr;
mod clock;
mod config;
mod control;
mod event;
mod fanout;
pub mod fingerprint;
mod health;
mod hub;
mod id;
mod intern;
#[cfg(feature = "tracing")]
mod layer;
pub mod limits;
mod pipeline;
mod recorder;
mod ring;
pub mod semconv;
pub mod shard;
mod sink;
mod span;
mod stats;
mod sync;
pub mod testing;
mod text;
pub mod thread;

pub use attr::{AttrValue, Attribute, Attributes};
pub use clock::{Clock, Timestamp};
pub use config::{
    BATCH_SIZE_RANGE, BLOCK_TIMEOUT_RANGE, Backpressure, DRAIN_INTERVAL_RANGE, FLUSH_TIMEOUT_RANGE,
    MAX_PRODUCERS_RANGE, RING_CAPACITY_RANGE, RecorderConfig, SHARED_CAPACITY_RANGE, check_range,
    duration_text,
};
pub use event::{
    AnomalyEvent, Decision, Event, EventBody, EventKind, InvalidScore, Level, LlmUsage, LogRecord,
    MetricKind, MetricPoint, PermissionDecision, Score, ScoreSource, SpanEnd, SpanKind, Status,
    UnknownLevel, score_name,
};
pub use fanout::Fanout;
pub use health::{
    Accounting, BufferHealth, FlushError, Health, ShutdownReport, SinkHealth, SinkState,
};
pub use hub::{EventFilter, HubSink, LiveHub, MAX_LAGGED_TENANTS, Subscription};
pub use id::{ParseIdError, SpanId, ThreadId};
pub use intern::{
    InternerStats, LazySymbol, MAX_SYMBOL_BYTES, MAX_SYMBOLS, Symbol, interner_stats,
};
#[cfg(feature = "tracing")]
pub use layer::{DEFAULT_IGNORED_TARGETS, MissionLayer};
pub use pipeline::{Pipeline, PipelineBuilder, StartError};
pub use recorder::{Recorder, WeakRecorder};
pub use sink::{FnSink, Sink, SinkContext, SinkError, TICK_INTERVAL, Transform};
pub use span::{ActiveSpan, ThreadContext};
pub use stats::{
    LatencySummary, ModelUsage, OperationStats, STATS_BUCKETS_RANGE, STATS_MAX_OPERATIONS_RANGE,
    STATS_SIGNIFICANT_FIGURES_RANGE, STATS_WINDOW_RANGE, StatsConfig, StatsReader, StatsSink,
    StatsSnapshot, UsageTotals,
};
pub use text::Text;
