//! The Mission Control agent SDK: what an agent developer touches. One dependency, a builder
//! whose defaults need nothing running, and an API in the words of agents — tenant, agent,
//! thread, LLM call, tool call — that records into the lock-free recorder of `mission-core`,
//! stores to Parquet with `mission-store`, keeps rolling statistics, prices every LLM call and
//! streams events to in-process subscribers.
//!
//! It is a separate crate because it is the facade: it depends on the other crates and
//! re-exports what an agent author needs, so they add one dependency; the crates under it stay
//! small and free of SDK policy. What each of them does is its own crate's business:
//!
//! | crate | role | here as |
//! |---|---|---|
//! | `mission-core` | events, recorder, pipeline, sinks, statistics, live hub, `tracing` layer | [`core`], [`EventFilter`], [`Subscription`] |
//! | `mission-store` | the Parquet store: writing, reading, queries | [`store`], [`Store`] |
//! | `mission-govern` | policy, audit, redaction, compliance, erasure, directives | [`policy`], [`audit`], [`redact`], [`compliance`], [`erasure`], [`directives`] |
//! | `mission-export` | OTLP export, webhooks over HTTP, TLS | `otlp`, `webhooks` (features), [`tls`] |
//! | `mission-serve` | the MCP server and the dashboard, on one auth module | `mcp`, `dashboard`, `auth` (features) |
//! | `mission-ml` | the anomaly models | `sinks::anomaly` (feature `models`) |
//!
//! [`MissionControlBuilder::build`] installs one component at a time, in the pipeline's order:
//! statistics, the live hub and the directives first; the store and OTLP export behind
//! sampling; the anomaly models; your own sinks; redaction in front of them all.
//!
//! # Quick example
//!
//! ```
//! use mission_sdk::{EventFilter, MissionControl};
//!
//! let root = std::env::temp_dir().join(format!("mission-sdk-lib-{}", std::process::id()));
//! let control = MissionControl::builder().with_store_root(&root).with_tenant("acme").build()?;
//! let live = control.subscribe(EventFilter::all(), 1024);
//! let agent = control.agent("support-bot");
//!
//! let thread = agent.thread();
//! {
//!     let mut call = thread.llm_call("gpt-4o-mini", "openai");
//!     call.record_usage(812, 64).record_cached_tokens(512);
//! } // recorded here, priced from the built-in table
//! let mut tool = thread.tool_call("lookup_order");
//! let looked_up: Result<u32, String> = Err("order service timed out".into());
//! let _ = tool.check(looked_up); // marks the span failed with the message
//! tool.end();
//! thread.end();
//!
//! control.flush()?;
//! assert_eq!(control.stats().usage.input_tokens, 812);
//! assert!(control.stats().usage.cost_usd > 0.0);
//! assert!(live.try_recv().is_some());
//! let failed = control.store().expect("a store")?.query().status("error").count()?;
//! assert_eq!(failed, 1);
//! # drop(control);
//! # std::fs::remove_dir_all(&root)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The entry types
//!
//! | type | what it is |
//! |---|---|
//! | [`MissionControl`], [`MissionControlBuilder`] | the embedded instance; builder with code > environment > file > defaults |
//! | [`Agent`], [`Thread`], [`Span`] | the recording API: guards that record when they end or drop |
//! | [`PriceTable`] | model prices; cost computed when a call is recorded, cached tokens included once |
//! | [`EventFilter`], [`Subscription`] | the live hub: in-process subscribers with bounded lag |
//! | [`MissionConfig`] | every setting, from TOML/JSON or `MISSION_*` variables (this and the other settings structs — `SamplingConfig`, `ModelConfig`, `OtlpSettings` — are `#[non_exhaustive]`: start from `Default` and set what differs with their `with_*` methods) |
//! | `DashboardConfig`, `DashboardServer` | the live dashboard in a browser, served by the agent (`MissionControl::serve_dashboard`) or over a store (`dashboard::serve_store`); feature `dashboard` |
//! | `McpHttpConfig`, `McpHttpServer` | the MCP server over HTTP, served by the agent (`MissionControl::serve_mcp`); feature `mcp-http` |
//! | `ModelConfig`, `ModelStats` | anomaly detection per stream with its likely cause, memory sampling and leak prediction (`sinks::anomaly`); feature `models` |
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `models` | yes | the anomaly sink (`mission-ml`): detection per stream, root cause, memory and leak prediction |
//! | `otlp` | no | `OtlpSink` and `MissionControlBuilder::with_otlp`: OTLP/HTTP and OTLP/gRPC export (`mission-export`) |
//! | `webhooks` | no | directive webhooks delivered over HTTP (without it every delivery fails, counted) |
//! | `tls` | no | `https://` for OTLP and webhooks (rustls on `ring`); without it an `https://` endpoint is a typed error |
//! | `mcp` | no | `mcp::MissionMcp` and `MissionControl::mcp_server` (`mission-serve`, rmcp) |
//! | `mcp-http` | no | `MissionControl::serve_mcp`: the MCP server over streamable HTTP |
//! | `mcp-client` | no | `mcp_client::call_tool`: an agent's calls to MCP servers (rmcp client) as tool spans carrying `_meta.traceparent` |
//! | `dashboard` | no | `MissionControl::serve_dashboard` and `dashboard::serve_store` (needs no rmcp) |
//! | `otlp-receiver` | no | `MissionControl::serve_otlp`: an OTLP/HTTP receiver (protobuf and JSON, gzip) and, optionally, OTLP/gRPC beside it (tonic), recording what other processes send through this instance's pipeline |
//!
//! The defaults are what the quick start uses; the network surfaces opt in. Each feature
//! builds alone.
//!
//! # Configuration
//!
//! | setting | code | environment | default |
//! |---|---|---|---|
//! | tenant | `with_tenant` | `MISSION_TENANT` | `default` |
//! | service name | `with_service_name` | `MISSION_SERVICE_NAME` | `mission-agent` |
//! | store | `with_store_root`, `without_store` | `MISSION_STORE_ROOT`, `MISSION_STORE=on/off` | `./mission-data` |
//! | buffers | `with_recorder_config` | `MISSION_RING_CAPACITY`, `MISSION_BACKPRESSURE=drop_newest\|block:5ms` | 8192 events per thread, drop newest |
//! | prices | `with_price_table` | `MISSION_PRICES_FILE` | built-in table |
//! | models | `with_models`, `without_models` | `MISSION_MODELS=on/off` | on (`ModelConfig::default`) |
//! | model baseline | `with_model_baseline` | `MISSION_MODEL_BASELINE` | none (streams learn from scratch) |
//! | log level | `with_log_level` | `MISSION_LOG_LEVEL=trace\|debug\|info\|warn\|error` | `trace` (every record); a firing `set_log_level` directive records more |
//!
//! # Untrusted input
//!
//! Names, messages and attribute values may come from prompts and tool output: all are bounded
//! and truncated with a marker by `mission-core`; a malformed `traceparent` or configuration
//! value is a typed error naming the field, never a panic.
#![doc(test(attr(deny(warnings))))]
#![warn(missing_docs)]

mod agent;
mod analyser;
pub use mission_core::anomaly;
pub use mission_govern::{audit, compliance};
mod config;
mod control;
pub use mission_govern::threads::{Budget, ControlError, Stop, ThreadCommand, ThreadState, Usage};
pub use mission_govern::{directives, erasure, threads};
/// Recommendations computed from the store (`mission_serve::advice`): what the dashboard, the
/// MCP tool `recommendations` and `mission-ctl report` show.
#[cfg(any(feature = "dashboard", feature = "mcp"))]
pub use mission_serve::advice;
#[cfg(feature = "dashboard")]
pub use mission_serve::dashboard;
#[cfg(any(feature = "mcp", feature = "dashboard"))]
pub use mission_serve::diff;
/// The report on a period (`mission_serve::report`): volumes, latency, cost, the slowest
/// threads, recommendations and top errors as JSON, Markdown or a print-ready HTML page; what
/// `mission-ctl report` prints and the dashboard serves at `/api/report.html`.
#[cfg(any(feature = "dashboard", feature = "mcp"))]
pub use mission_serve::report;
mod error;
mod inflight;
mod install;
mod panic_hook;
#[cfg(feature = "otlp")]
pub use mission_export::otlp;
pub use mission_govern::policy;
/// The relationship graph's builder (the dashboard's `/api/graph`, the MCP tool
/// `relationship_graph`, `mission-ctl graph`).
#[cfg(any(feature = "mcp", feature = "dashboard", feature = "otlp-receiver"))]
pub use mission_serve::graph;
#[cfg(feature = "mcp")]
pub use mission_serve::mcp;
#[cfg(feature = "mcp-client")]
pub mod mcp_client;
/// The anomaly sink under its earlier name (`models` as in anomaly models, not LLMs): see
/// [`sinks::anomaly`].
#[cfg(feature = "models")]
pub use sinks::anomaly as models;
mod price;
#[cfg(feature = "webhooks")]
pub use mission_export::webhooks;
pub use mission_govern::redact;
pub mod sinks;
pub use mission_export::tls;

pub use agent::{Agent, Span, Thread, parse_traceparent};
pub use analyser::{ANALYSER_QUEUE, AnalyserStats, AnalysisRequest};
pub use audit::{AuditError, AuditLog, AuditReport};
pub use config::{
    BudgetSettings, MIN_RETENTION, MissionConfig, OTLP_SPILL_BYTES_RANGE, OtlpSettings,
    ResolvedConfig,
};
#[cfg(feature = "models")]
pub use control::MODEL_STATE_FILE;
#[cfg(feature = "s3")]
pub use control::UPLOAD_SHUTDOWN_TIMEOUT;
pub use control::{
    HealthReport, MissionControl, MissionControlBuilder, TenantHealth, TenantSinkHealth,
};
#[cfg(feature = "dashboard")]
pub use dashboard::{DashboardConfig, DashboardServer};
pub use directives::{DirectiveSet, DirectiveSink, Directives, Permit};
pub use erasure::ErasureReport;
pub use error::{Error, Result};
pub use inflight::{IN_FLIGHT_FILE, InFlightReport, InFlightSpan, read_in_flight_file};
#[cfg(feature = "mcp-http")]
pub use mcp::http::{McpHttpConfig, McpHttpServer, McpToken};
/// The OTLP receiver (`MissionControl::serve_otlp`): its configuration, handle and counters.
#[cfg(feature = "otlp-receiver")]
pub mod receiver {
    pub use mission_serve::otlp::*;
}
#[cfg(any(feature = "mcp", feature = "dashboard"))]
pub use mission_serve::auth::{Access, Role};
#[cfg(any(feature = "mcp", feature = "dashboard"))]
pub use mission_serve::{Error as ServeError, auth};
#[cfg(feature = "otlp")]
pub use otlp::{OtlpConfig, OtlpHealth, OtlpProtocol, OtlpSink, OtlpStats, OtlpStatsReader};
pub use policy::{PolicyDecision, PolicyEnforcer, PolicySet};
pub use price::{LongContextPrice, MAX_PRICE_PER_MILLION, ModelPrice, PriceTable};
#[cfg(feature = "otlp-receiver")]
pub use receiver::{OtlpReceiver, OtlpReceiverConfig, OtlpReceiverStats};
pub use redact::{RedactingSink, RedactionConfig, Redactor};
#[cfg(feature = "models")]
pub use sinks::anomaly::{
    BaselineError, DetectorQuality, MAX_GRADED_DETECTORS, ModelBaseline, ModelConfig, ModelSink,
    ModelStats, ModelStatsReader,
};
pub use sinks::sampling::{
    SAMPLING_MAX_BUFFERED_EVENTS_RANGE, SAMPLING_MAX_WAIT_RANGE, SAMPLING_RATE_RANGE,
    SAMPLING_SLOW_SPAN_RANGE, SamplingConfig, SamplingSink, SamplingStats, SamplingStatsReader,
};

pub use mission_core::{
    self as core, AttrValue, Backpressure, Decision, Event, EventBody, EventFilter, Fanout, Health,
    HubSink, InvalidScore, Level, LiveHub, MissionLayer, RecorderConfig, Score, ScoreSource,
    ShutdownReport, Sink, SinkError, SpanId, SpanKind, StatsSnapshot, Status, Subscription,
    ThreadId,
};
pub use mission_store::{self as store, Query, Store, StoreConfig};
