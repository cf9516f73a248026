//! [`OtlpSink`]: exports spans, log records and the GenAI client metrics over OTLP (HTTP/protobuf or gRPC) with the OpenTelemetry GenAI
//! semantic conventions, batched on a thread of its own, with bounded memory, retries with
//! backoff while the backend is down, and exact counters.
//!
//! # Behaving with real backends
//!
//! - **Answers** are read the way the OTLP specification says (see [`delivery`]): a 4xx other
//!   than 408, 413 and 429 rejects that batch for good (counted in [`OtlpStats::rejected`] with
//!   the status, not retried); a 413 splits the batch in halves, down to single items
//!   ([`OtlpStats::split_requests`]); 429 and 503 are retried after their `Retry-After` (seconds
//!   or an HTTP date); 408, other 5xx and network failures are retried with backoff for
//!   [`OtlpConfig::retry_window`]; a `partial_success` counts the items it rejected.
//! - **Limitation: a gRPC `partial_success` is not counted.** `opentelemetry-otlp` 0.33's gRPC
//!   exporter holds a `TraceServiceClient<tonic::transport::Channel>` (a concrete channel, not
//!   a service we could wrap), logs the response's `partial_success` through its internal log
//!   and drops it; an interceptor sees only requests, and a custom connector only the HTTP/2
//!   bytes (encrypted under TLS). Counting it would mean our own gRPC client over
//!   `opentelemetry-proto`'s generated one. Over OTLP/HTTP it is counted.
//! - **Signals can be switched off** one by one: a backend that takes only traces (Arize
//!   Phoenix answers 405 on `/v1/logs` and `/v1/metrics`) is used with logs and metrics off —
//!   [`OtlpConfig::logs`] / [`OtlpConfig::metrics`] in code, `[otlp] logs = false` in a
//!   configuration file, `init(otlp_logs=False)` in Python, or the standard
//!   `OTEL_LOGS_EXPORTER=none` / `OTEL_METRICS_EXPORTER=none` / `OTEL_TRACES_EXPORTER=none`.
//! - **Flush and shutdown are bounded**: `flush` returns as soon as everything queued was
//!   exported or rejected, returns an error at once when an export attempt made during the
//!   flush failed (a failing exporter is not waited on), and never waits longer than
//!   [`OtlpConfig::flush_timeout`]. Shutdown takes at most `flush_timeout` too; what a failing
//!   backend still holds then is counted in [`OtlpStats::dropped_at_shutdown`]. A rejected
//!   signal (that 405) never makes `flush` fail: it is counted, and health shows it.
//! - **Queries never wait on export**: a query of the store flushes the pipeline with
//!   `Recorder::flush_for_reads`, which this sink answers at once; only an explicit `flush`
//!   (or shutdown) waits for the backend.
//! - **Health** ([`OtlpStatsReader::health`]) is degraded from the first failed request of any
//!   signal until a request of that signal succeeds again, and for good once anything was
//!   dropped.
//!
//! # Spill: spans on disk while the backend is down
//!
//! Without a spill, spans the memory queue cannot hold while the backend is down are dropped
//! (counted). With [`OtlpConfig::with_spill_dir`] a span batch the backend fails to take (no
//! answer, 408, 429, 5xx) is written at once to a bounded directory of append-only segment
//! files ([`spill`]: length- and CRC-framed records) instead of being retried in memory, and
//! every newer batch goes behind it while anything waits there; the oldest spilled batch is
//! tried with backoff (or after the backend's `Retry-After`, or at once when a flush begins)
//! and taken off the spill when the backend settles it, so batches arrive **in order**.
//!
//! - **Exactly once within a process life**: a spilled batch is sent until the backend
//!   acknowledges (or rejects) it, then never again. **At least once across restarts**: an
//!   exporter started on the same directory replays what was left (counted in
//!   [`OtlpStats::spill_recovered`]) before anything newer; a batch the backend acknowledged
//!   just before the process was killed may be sent again. At shutdown, what a failing backend
//!   did not take is spilled for the next exporter rather than dropped.
//! - **Bounded**: [`OtlpConfig::spill_max_bytes`] (default 256 MiB); when full, the oldest
//!   spilled batches are dropped ([`OtlpStats::dropped_spill_full`]). Spilled batches do not
//!   expire with the retry window.
//! - **Never silent**: a directory that cannot be created, locked or written is an
//!   [`Error::Config`](crate::Error::Config) naming `spill_dir` when the sink is made; a write
//!   or read failing later is counted in [`OtlpStats::dropped_spill_error`]; a record torn by
//!   a kill during a write is skipped and counted in [`OtlpStats::spill_torn_records`].
//! - Spans only: log records and metrics are not spilled (metrics are cumulative and carried
//!   by the next export anyway).
//!
//! Attribute names follow the GenAI semantic conventions as of semconv 1.37 (kept here as our
//! own constants: the `opentelemetry-semantic-conventions` GenAI constants are experimental).
//! Cost has no standard name yet; we export it as `gen_ai.usage.cost` (US dollars).

use std::borrow::Cow;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mission_core::{
    AttrValue, Event, EventBody, Sink, SinkError, SpanKind as Kind, Status as MissionStatus,
};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::{
    Protocol, RetryPolicy, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{
    LogBatch, LogExporter as _, SdkLogRecord, SdkLogger, SdkLoggerProvider,
};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};

pub mod delivery;
mod metrics;
pub mod spill;

pub use delivery::OtlpStats;

/// The resource attribute naming the tenant of what is exported (and the item attribute of an
/// event of another tenant than the resource's).
pub const TENANT_ATTRIBUTE: &str = "mission.tenant";
use delivery::{
    AnswerSlot, ExportFn, ObservingClient, Shared, Signal, SpillWorker, Timing, classify_grpc,
    classify_http, run_worker,
};
use metrics::{GenAiMetrics, bounded};

/// GenAI semantic-convention attribute names we export (semconv 1.37, development status).
pub mod semconv {
    #![allow(missing_docs)]
    pub const OPERATION_NAME: &str = "gen_ai.operation.name";
    pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
    pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    pub const USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
    pub const USAGE_REASONING_OUTPUT_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";
    /// Not standard (no convention exists yet): cost of the call in US dollars.
    pub const USAGE_COST: &str = "gen_ai.usage.cost";
    pub const AGENT_NAME: &str = "gen_ai.agent.name";
    pub const CONVERSATION_ID: &str = "gen_ai.conversation.id";
    pub const TOOL_NAME: &str = "gen_ai.tool.name";
    pub const TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
    pub const ERROR_TYPE: &str = "error.type";
    /// The GenAI evaluation event a score is exported as (a log record with this event name).
    pub const EVALUATION_RESULT: &str = "gen_ai.evaluation.result";
    pub const EVALUATION_NAME: &str = "gen_ai.evaluation.name";
    pub const EVALUATION_SCORE_VALUE: &str = "gen_ai.evaluation.score.value";
    pub const EVALUATION_SCORE_LABEL: &str = "gen_ai.evaluation.score.label";
    pub const EVALUATION_EXPLANATION: &str = "gen_ai.evaluation.explanation";
}

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies (port 4318 by convention).
    HttpProtobuf,
    /// OTLP/gRPC (port 4317 by convention).
    Grpc,
}

/// Where and how to export.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// The collector's base URL (`http://localhost:4318` for HTTP; `/v1/traces` is appended).
    pub endpoint: String,
    /// The transport.
    pub protocol: OtlpProtocol,
    /// `service.name` of the resource.
    pub service_name: String,
    /// Tenant, exported as the resource attribute `mission.tenant`; an event of another
    /// tenant carries its own as the span's or log record's attribute `mission.tenant`.
    pub tenant: String,
    /// Longest time one export request may take (default 10 s; 1 ms to 10 min).
    pub timeout: Duration,
    /// Most spans (and, separately, log records) waiting for export; further ones are dropped
    /// and counted (default 65,536; 1 to 10,000,000).
    pub queue_capacity: usize,
    /// Most spans or log records per export request (default 512; 1 to `queue_capacity`).
    pub batch_size: usize,
    /// Longest time a span waits for its batch to fill (default 1 s; at most 1 min).
    pub batch_delay: Duration,
    /// How long a failing batch is retried (with backoff, or after the backend's
    /// `Retry-After`) before it is dropped and counted (default 60 s; at most 24 h).
    pub retry_window: Duration,
    /// Longest time `flush` waits for what is queued to be exported, and longest time
    /// shutdown takes (default 5 s; at most 10 min). A flush returns sooner — with an error —
    /// when an export attempt made during it fails: a failing backend is not waited on.
    pub flush_timeout: Duration,
    /// How often the GenAI metrics (`gen_ai.client.token.usage`,
    /// `gen_ai.client.operation.duration`) are exported (default 10 s; 100 ms to 24 h).
    pub metrics_interval: Duration,
    /// Whether spans are exported to `/v1/traces`. `None` (the default): yes, unless
    /// `OTEL_TRACES_EXPORTER=none`. `Some(_)` decides, whatever the environment says.
    pub traces: Option<bool>,
    /// Whether log records (and anomalies) are exported to `/v1/logs`. `None` (the default):
    /// yes, unless `OTEL_LOGS_EXPORTER=none`.
    pub logs: Option<bool>,
    /// Whether the GenAI metrics are exported to `/v1/metrics`. `None` (the default): yes,
    /// unless `OTEL_METRICS_EXPORTER=none`.
    pub metrics: Option<bool>,
    /// Headers sent with every request (gRPC metadata over gRPC): a hosted backend's API key,
    /// for example. `OTEL_EXPORTER_OTLP_HEADERS` is honoured too.
    pub headers: Vec<(String, String)>,
    /// A PEM file of CA certificates trusted for an `https://` endpoint besides the system's
    /// roots (a collector behind a private CA). See [`crate::tls`].
    pub ca_file: Option<std::path::PathBuf>,
    /// A directory where span batches the backend does not take wait on disk, to be replayed
    /// oldest first when it takes them again; `None` (the default): no spill, a failing batch
    /// is retried in memory for [`retry_window`](Self::retry_window). See
    /// [Spill](self#spill-spans-on-disk-while-the-backend-is-down). Spans only: log records
    /// and metrics are never spilled.
    pub spill_dir: Option<std::path::PathBuf>,
    /// Most bytes the spill's files take; when a new batch would pass it the oldest spilled
    /// batches are dropped and counted in [`OtlpStats::dropped_spill_full`] (default 256 MiB;
    /// 64 KiB to 1 TiB).
    pub spill_max_bytes: u64,
}

/// Builder methods: start from a constructor or [`Default`] and set what differs.
impl OtlpConfig {
    /// Sets [`endpoint`](Self::endpoint).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = endpoint.into();
        self
    }

    /// Sets [`protocol`](Self::protocol).
    pub fn with_protocol(mut self, protocol: OtlpProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// Sets [`service_name`](Self::service_name).
    pub fn with_service_name(mut self, service_name: impl Into<String>) -> Self {
        self.service_name = service_name.into();
        self
    }

    /// Sets [`tenant`](Self::tenant).
    pub fn with_tenant(mut self, tenant: impl Into<String>) -> Self {
        self.tenant = tenant.into();
        self
    }

    /// Sets [`timeout`](Self::timeout).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`queue_capacity`](Self::queue_capacity).
    pub fn with_queue_capacity(mut self, queue_capacity: usize) -> Self {
        self.queue_capacity = queue_capacity;
        self
    }

    /// Sets [`batch_size`](Self::batch_size).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets [`batch_delay`](Self::batch_delay).
    pub fn with_batch_delay(mut self, batch_delay: Duration) -> Self {
        self.batch_delay = batch_delay;
        self
    }

    /// Sets [`retry_window`](Self::retry_window).
    pub fn with_retry_window(mut self, retry_window: Duration) -> Self {
        self.retry_window = retry_window;
        self
    }

    /// Sets [`flush_timeout`](Self::flush_timeout).
    pub fn with_flush_timeout(mut self, flush_timeout: Duration) -> Self {
        self.flush_timeout = flush_timeout;
        self
    }

    /// Sets [`metrics_interval`](Self::metrics_interval).
    pub fn with_metrics_interval(mut self, metrics_interval: Duration) -> Self {
        self.metrics_interval = metrics_interval;
        self
    }

    /// Sets [`headers`](Self::headers).
    pub fn with_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers = headers;
        self
    }
}

impl OtlpConfig {
    /// HTTP/protobuf to `endpoint` with defaults for everything else.
    pub fn http(endpoint: &str) -> Self {
        Self::new(endpoint, OtlpProtocol::HttpProtobuf)
    }

    /// gRPC to `endpoint` with defaults for everything else.
    pub fn grpc(endpoint: &str) -> Self {
        Self::new(endpoint, OtlpProtocol::Grpc)
    }

    fn new(endpoint: &str, protocol: OtlpProtocol) -> Self {
        Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            protocol,
            service_name: "mission-agent".into(),
            tenant: "default".into(),
            timeout: Duration::from_secs(10),
            queue_capacity: 65_536,
            batch_size: 512,
            batch_delay: Duration::from_secs(1),
            retry_window: Duration::from_secs(60),
            flush_timeout: Duration::from_secs(5),
            metrics_interval: Duration::from_secs(10),
            traces: None,
            logs: None,
            metrics: None,
            headers: Vec::new(),
            ca_file: None,
            spill_dir: None,
            spill_max_bytes: spill::DEFAULT_SPILL_BYTES,
        }
    }

    /// This configuration exporting spans or not (see [`traces`](Self::traces)).
    pub fn with_traces(mut self, on: bool) -> Self {
        self.traces = Some(on);
        self
    }

    /// This configuration exporting log records or not (see [`logs`](Self::logs)).
    pub fn with_logs(mut self, on: bool) -> Self {
        self.logs = Some(on);
        self
    }

    /// This configuration exporting the GenAI metrics or not (see [`metrics`](Self::metrics)).
    pub fn with_metrics(mut self, on: bool) -> Self {
        self.metrics = Some(on);
        self
    }

    /// Whether each signal (traces, logs, metrics) is exported: what this configuration
    /// says, else `false` when the standard `OTEL_{TRACES,LOGS,METRICS}_EXPORTER` variable
    /// (read through `var`) is `none`, else `true`.
    pub fn signals_with(&self, var: impl Fn(&str) -> Option<String>) -> [bool; 3] {
        let decide = |setting: Option<bool>, name: &str| {
            setting.unwrap_or_else(|| {
                var(name).and_then(|v| crate::otel_exporter_switch(&v)) != Some(false)
            })
        };
        [
            decide(self.traces, "OTEL_TRACES_EXPORTER"),
            decide(self.logs, "OTEL_LOGS_EXPORTER"),
            decide(self.metrics, "OTEL_METRICS_EXPORTER"),
        ]
    }

    /// This configuration with `name: value` sent with every request.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The CA file the environment names: `MISSION_OTLP_CA_FILE`, else the standard
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE`.
    pub fn ca_file_from_env() -> Option<std::path::PathBuf> {
        std::env::var_os("MISSION_OTLP_CA_FILE")
            .or_else(|| std::env::var_os("OTEL_EXPORTER_OTLP_CERTIFICATE"))
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    }

    /// This configuration spilling span batches the backend does not take to `dir` (see
    /// [`spill_dir`](Self::spill_dir)).
    pub fn with_spill_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.spill_dir = Some(dir.into());
        self
    }

    /// Sets [`spill_max_bytes`](Self::spill_max_bytes).
    pub fn with_spill_max_bytes(mut self, max_bytes: u64) -> Self {
        self.spill_max_bytes = max_bytes;
        self
    }

    /// This configuration trusting the CA certificates in `path` (PEM) as well.
    pub fn with_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Checks what can be checked before connecting: every number against its range, the URL
    /// scheme (and TLS support), the headers and the CA file.
    fn validate(&self) -> Result<Option<Vec<u8>>, String> {
        let ms = Duration::from_millis;
        for (name, value, min, max) in [
            ("timeout", self.timeout, ms(1), ms(600_000)),
            ("batch_delay", self.batch_delay, Duration::ZERO, ms(60_000)),
            ("retry_window", self.retry_window, Duration::ZERO, ms(86_400_000)),
            ("flush_timeout", self.flush_timeout, Duration::ZERO, ms(600_000)),
            ("metrics_interval", self.metrics_interval, ms(100), ms(86_400_000)),
        ] {
            if value < min || value > max {
                return Err(format!("{name} is {value:?}; it must be from {min:?} to {max:?}"));
            }
        }
        if !(1..=10_000_000).contains(&self.queue_capacity) {
            return Err(format!(
                "queue_capacity is {}; it must be from 1 to 10000000",
                self.queue_capacity
            ));
        }
        if !(spill::MIN_SPILL_BYTES..=spill::MAX_SPILL_BYTES).contains(&self.spill_max_bytes) {
            return Err(format!(
                "spill_max_bytes is {}; it must be from {} (64 KiB) to {} (1 TiB)",
                self.spill_max_bytes,
                spill::MIN_SPILL_BYTES,
                spill::MAX_SPILL_BYTES
            ));
        }
        if self.spill_dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            return Err("spill_dir is empty; name a directory, or leave it unset".into());
        }
        if !(1..=self.queue_capacity).contains(&self.batch_size) {
            return Err(format!(
                "batch_size is {}; it must be from 1 to queue_capacity ({})",
                self.batch_size, self.queue_capacity
            ));
        }
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            return Err(format!(
                "endpoint {:?} must start with http:// or https://",
                self.endpoint
            ));
        }
        crate::tls::check_scheme(&self.endpoint)?;
        self.header_map()?;
        match &self.ca_file {
            Some(_) if self.endpoint.starts_with("http://") => {
                Err(format!("a CA file is for https:// endpoints, not {:?}", self.endpoint))
            }
            Some(path) => crate::tls::read_ca_file(path).map(Some),
            None => Ok(None),
        }
    }

    fn header_map(&self) -> Result<http::HeaderMap, String> {
        let mut map = http::HeaderMap::new();
        for (name, value) in &self.headers {
            let name = http::HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("header name {name:?} is not a valid HTTP header name"))?;
            let value = http::HeaderValue::from_str(value.trim())
                .map_err(|_| format!("the value of header {name} is not valid in HTTP"))?;
            map.append(name, value);
        }
        Ok(map)
    }

    /// `builder` set up for OTLP/HTTP to `{endpoint}{path}`: headers, one attempt per export
    /// (retries are ours), and a client trusting the CA file when there is one and leaving
    /// each answer in `answer`.
    fn http_exporter<B: WithExportConfig + WithHttpConfig>(
        &self,
        builder: B,
        path: &str,
        ca: Option<&[u8]>,
        answer: &AnswerSlot,
    ) -> Result<B, String> {
        crate::tls::install_default_provider();
        let mut builder = builder
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}{path}", self.endpoint))
            .with_timeout(self.timeout)
            .with_retry_policy(RetryPolicy::disabled());
        if !self.headers.is_empty() {
            builder = builder.with_headers(self.headers.iter().cloned().collect());
        }
        let client = crate::tls::blocking_client(Some(self.timeout), ca)?;
        Ok(builder.with_http_client(ObservingClient { client, answer: answer.clone() }))
    }

    /// `builder` set up for OTLP/gRPC: metadata, and TLS with the system's roots (plus the CA
    /// file) for an `https://` endpoint.
    fn grpc_exporter<B: WithExportConfig + WithTonicConfig>(
        &self,
        builder: B,
        ca: Option<&[u8]>,
    ) -> Result<B, String> {
        crate::tls::install_default_provider();
        let mut builder = builder
            .with_endpoint(self.endpoint.clone())
            .with_timeout(self.timeout)
            .with_retry_policy(RetryPolicy::disabled());
        if !self.headers.is_empty() {
            builder = builder.with_metadata(MetadataMap::from_headers(self.header_map()?));
        }
        #[cfg(feature = "tls")]
        if self.endpoint.starts_with("https://") {
            use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};
            let mut tls = ClientTlsConfig::new().with_native_roots();
            if let Some(pem) = ca {
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            builder = builder.with_tls_config(tls);
        }
        #[cfg(not(feature = "tls"))]
        let _ = ca;
        Ok(builder)
    }
}

/// A handle to read an [`OtlpSink`]'s counters from any thread.
#[derive(Clone)]
pub struct OtlpStatsReader {
    spans: Arc<Shared<SpanData>>,
    logs: Arc<Shared<SdkLogRecord>>,
    metrics: Arc<Shared<()>>,
    /// The recorder whose accounting the metric exporter sends (see
    /// [`observe_recorder`](Self::observe_recorder)).
    recorder: Arc<std::sync::OnceLock<mission_core::WeakRecorder>>,
}

impl std::fmt::Debug for OtlpStatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpStatsReader").field("stats", &self.stats()).finish()
    }
}

impl OtlpStatsReader {
    /// Has the metric exporter send `recorder`'s accounting with each export, as the
    /// dashboard's `/metrics` shows it: `mission.events.recorded`, `mission.events.delivered`,
    /// `mission.events.dropped` (by `reason`), `mission.events.in_flight`, and per sink
    /// (`sink`) `mission.sink.events`, `mission.sink.errors` and `mission.sink.healthy`.
    /// The exporter's own counters (`mission.otlp.exported`, `mission.otlp.rejected`,
    /// `mission.otlp.dropped`, by `signal`) are sent whether or not this is called. The first
    /// call counts; `MissionControl` makes it for the exporter it builds.
    pub fn observe_recorder(&self, recorder: mission_core::WeakRecorder) {
        let _ = self.recorder.set(recorder);
    }

    /// The span exporter's counters now.
    pub fn stats(&self) -> OtlpStats {
        self.spans.stats()
    }

    /// The log exporter's counters now.
    pub fn log_stats(&self) -> OtlpStats {
        self.logs.stats()
    }

    /// The metric exporter's counters now (in data points).
    pub fn metric_stats(&self) -> OtlpStats {
        self.metrics.stats()
    }

    /// Every signal's counters, and whether all are healthy.
    pub fn health(&self) -> OtlpHealth {
        let (traces, logs, metrics) = (self.stats(), self.log_stats(), self.metric_stats());
        OtlpHealth {
            healthy: traces.healthy && logs.healthy && metrics.healthy,
            traces,
            logs,
            metrics,
        }
    }
}

/// The health of OTLP export, per signal (see [`OtlpStats::healthy`]).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OtlpHealth {
    /// Every enabled signal is healthy.
    pub healthy: bool,
    /// Spans.
    pub traces: OtlpStats,
    /// Log records.
    pub logs: OtlpStats,
    /// GenAI metric data points.
    pub metrics: OtlpStats,
}

/// A [`Sink`] exporting span events over OTLP. See the [module docs](self).
pub struct OtlpSink {
    config: OtlpConfig,
    spans: Arc<Shared<SpanData>>,
    logs: Arc<Shared<SdkLogRecord>>,
    workers: Vec<JoinHandle<()>>,
    scope: InstrumentationScope,
    /// Makes log records (no processors: records go to our own export queue).
    logger: SdkLogger,
    _logger_provider: SdkLoggerProvider,
    /// `None` when metrics export is off.
    metrics: Option<GenAiMetrics>,
    metric_counters: Arc<Shared<()>>,
    /// The recorder whose accounting the metric exporter sends, once known.
    recorder: Arc<std::sync::OnceLock<mission_core::WeakRecorder>>,
    /// Drives the gRPC metric exporter's connection (the periodic reader runs on its own thread).
    _metrics_runtime: Option<tokio::runtime::Runtime>,
}

/// The exporter of one signal (`$exporter`: `opentelemetry_otlp::SpanExporter`, `LogExporter`
/// or `MetricExporter`) for `$config`'s protocol: OTLP/HTTP to `{endpoint}$path` leaving each
/// answer in `$answer`, or OTLP/gRPC built while `$enter` (a runtime's enter guard) is held,
/// as the tonic client must be. A macro, not a function: the three builders share no trait for
/// `with_http`, `with_tonic` and `build`. Evaluates to `Result<exporter, String>`.
macro_rules! signal_exporter {
    ($config:expr, $exporter:ty, $path:literal, $ca:expr, $answer:expr, $enter:expr) => {
        match $config.protocol {
            OtlpProtocol::HttpProtobuf => $config
                .http_exporter(<$exporter>::builder().with_http(), $path, $ca, $answer)
                .and_then(|builder| builder.build().map_err(|e| e.to_string())),
            OtlpProtocol::Grpc => {
                let _guard = $enter;
                $config
                    .grpc_exporter(<$exporter>::builder().with_tonic(), $ca)
                    .and_then(|builder| builder.build().map_err(|e| e.to_string()))
            }
        }
    };
}
pub(crate) use signal_exporter;

/// One export attempt of a span or log worker, run the way `protocol` needs (the blocking
/// HTTP client on this thread; gRPC on the worker's runtime), and its answer classified.
fn attempt(
    protocol: OtlpProtocol,
    signal: Signal,
    runtime: &tokio::runtime::Runtime,
    answer: &AnswerSlot,
    export: impl Future<Output = opentelemetry_sdk::error::OTelSdkResult>,
) -> delivery::Outcome {
    match protocol {
        OtlpProtocol::HttpProtobuf => {
            classify_http(signal, block_on(export).map_err(|e| e.to_string()), answer)
        }
        OtlpProtocol::Grpc => classify_grpc(runtime.block_on(export).map_err(|e| e.to_string())),
    }
}

/// Starts an exporter thread for one signal; `build` makes its exporter inside the thread's
/// runtime (the gRPC client must be made inside one) and returns the export function.
fn spawn_worker<T, B>(
    name: &str,
    config: OtlpConfig,
    shared: Arc<Shared<T>>,
    spill: Option<SpillWorker<T>>,
    build: B,
) -> crate::Result<JoinHandle<()>>
where
    T: Clone + Send + 'static,
    B: for<'r> FnOnce(&'r tokio::runtime::Runtime, &OtlpConfig) -> Result<ExportFn<'r, T>, String>
        + Send
        + 'static,
{
    let bad = |message: String| crate::Error::Config { origin: "OTLP exporter".into(), message };
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<crate::Result<()>>(1);
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(source) => {
                    let _ = ready_tx
                        .send(Err(crate::Error::Start { what: "OTLP exporter's runtime", source }));
                    return;
                }
            };
            let export = match build(&runtime, &config) {
                Ok(f) => f,
                Err(e) => {
                    let _ = ready_tx.send(Err(bad(e)));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let timing = Timing {
                batch_size: config.batch_size,
                batch_delay: config.batch_delay,
                retry_window: config.retry_window,
            };
            run_worker(timing, &shared, export, spill);
        })
        .map_err(|source| crate::Error::Start { what: "OTLP exporter", source })?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(bad("the exporter thread stopped while starting".into())),
    }
}

impl std::fmt::Debug for OtlpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpSink").field("config", &self.config).finish_non_exhaustive()
    }
}

/// Runs a future to completion on this thread (the blocking HTTP client needs no runtime).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

impl OtlpSink {
    /// Builds the exporters of the signals that are on (see [`OtlpConfig::traces`]) and starts
    /// their threads.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) if a setting is out of its range, the endpoint
    /// is invalid or an exporter cannot be built; [`Error::Start`](crate::Error::Start) if
    /// the operating system refuses an exporter its thread or runtime.
    pub fn new(config: OtlpConfig) -> crate::Result<Self> {
        let bad =
            |message: String| crate::Error::Config { origin: "OTLP exporter".into(), message };
        let ca = config.validate().map_err(bad)?;
        let resource = Resource::builder_empty()
            .with_service_name(config.service_name.clone())
            .with_attributes([KeyValue::new(TENANT_ATTRIBUTE, config.tenant.clone())])
            .build();
        let scope = InstrumentationScope::builder("mission-control")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let [traces_on, logs_on, metrics_on] = config.signals_with(|k| std::env::var(k).ok());
        let spans = Arc::new(Shared::new(Signal::Traces, traces_on));
        let logs = Arc::new(Shared::new(Signal::Logs, logs_on));
        let metric_counters = Arc::new(Shared::new(Signal::Metrics, metrics_on));
        let mut workers = Vec::new();

        let span_resource = resource.clone();
        let span_ca = ca.clone();
        if traces_on {
            let spill = match &config.spill_dir {
                Some(dir) => {
                    let (store, recovered) =
                        spill::Spill::open(dir, config.spill_max_bytes).map_err(bad)?;
                    let codec = spill::span_codec(scope.clone());
                    Some(SpillWorker::new(store, recovered, codec, &spans.counters))
                }
                None => None,
            };
            workers.push(spawn_worker(
                "mission-otlp-spans",
                config.clone(),
                spans.clone(),
                spill,
                move |runtime, config| {
                    let answer = AnswerSlot::default();
                    let mut exporter = signal_exporter!(
                        config,
                        opentelemetry_otlp::SpanExporter,
                        "/v1/traces",
                        span_ca.as_deref(),
                        &answer,
                        runtime.enter()
                    )?;
                    exporter.set_resource(&span_resource);
                    let protocol = config.protocol;
                    Ok(Box::new(move |batch: Vec<SpanData>| {
                        attempt(protocol, Signal::Traces, runtime, &answer, exporter.export(batch))
                    }))
                },
            )?);
        }

        let log_resource = resource.clone();
        let metric_resource = resource;
        let log_scope = scope.clone();
        let log_ca = ca.clone();
        if logs_on {
            workers.push(spawn_worker(
                "mission-otlp-logs",
                config.clone(),
                logs.clone(),
                None,
                move |runtime, config| {
                    let answer = AnswerSlot::default();
                    let mut exporter = signal_exporter!(
                        config,
                        opentelemetry_otlp::LogExporter,
                        "/v1/logs",
                        log_ca.as_deref(),
                        &answer,
                        runtime.enter()
                    )?;
                    exporter.set_resource(&log_resource);
                    let protocol = config.protocol;
                    Ok(Box::new(move |records: Vec<SdkLogRecord>| {
                        let pairs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                            records.iter().map(|r| (r, &log_scope)).collect();
                        let batch = LogBatch::new(&pairs);
                        attempt(protocol, Signal::Logs, runtime, &answer, exporter.export(batch))
                    }))
                },
            )?);
        }

        let logger_provider = SdkLoggerProvider::builder().build();
        let logger = logger_provider.logger("mission-control");
        let recorder = Arc::new(std::sync::OnceLock::new());
        let (metrics, metrics_runtime) = if metrics_on {
            let (m, r) = GenAiMetrics::new(
                &config,
                metric_resource,
                ca.as_deref(),
                metric_counters.clone(),
            )?;
            m.observe_health(OtlpStatsReader {
                spans: spans.clone(),
                logs: logs.clone(),
                metrics: metric_counters.clone(),
                recorder: recorder.clone(),
            });
            (Some(m), r)
        } else {
            (None, None)
        };
        Ok(Self {
            config,
            spans,
            logs,
            workers,
            scope,
            logger,
            _logger_provider: logger_provider,
            metrics,
            metric_counters,
            recorder,
            _metrics_runtime: metrics_runtime,
        })
    }

    /// A reader of this sink's counters.
    pub fn stats_reader(&self) -> OtlpStatsReader {
        OtlpStatsReader {
            spans: self.spans.clone(),
            logs: self.logs.clone(),
            metrics: self.metric_counters.clone(),
            recorder: self.recorder.clone(),
        }
    }

    /// The tenant of `event` when it is not the resource's (`mission.tenant` of the
    /// configuration): a host recording for several tenants. Sent as the item's own
    /// `mission.tenant` attribute, which Mission Control's receiver reads.
    fn other_tenant<'e>(&self, event: &'e Event) -> Option<&'e str> {
        let tenant = event.tenant.as_str();
        (!tenant.is_empty() && tenant != self.config.tenant).then_some(tenant)
    }

    /// A log record for a log event, for an anomaly (severity warn, event name
    /// `mission.anomaly`, the detector's numbers as attributes) or for a score (the GenAI
    /// event `gen_ai.evaluation.result`, parented to the span it scores); `None` for other
    /// events.
    fn to_log_record(&self, event: &Event) -> Option<SdkLogRecord> {
        if !matches!(event.body, EventBody::Log(_) | EventBody::Anomaly(_) | EventBody::Score(_)) {
            return None;
        }
        let mut record = self.logger.create_log_record();
        record.set_timestamp(event.time.to_system_time());
        record.set_observed_timestamp(event.time.to_system_time());
        match &event.body {
            EventBody::Log(log) => {
                record.set_severity_number(match log.level {
                    mission_core::Level::Trace => Severity::Trace,
                    mission_core::Level::Debug => Severity::Debug,
                    mission_core::Level::Info => Severity::Info,
                    mission_core::Level::Warn => Severity::Warn,
                    mission_core::Level::Error => Severity::Error,
                });
                record.set_severity_text(log.level.as_str());
                record.set_body(AnyValue::from(log.message.as_str().to_owned()));
                if !log.target.is_empty() {
                    record.set_target(log.target.as_str());
                }
            }
            EventBody::Anomaly(a) => {
                record.set_severity_number(Severity::Warn);
                record.set_severity_text("warn");
                record.set_event_name("mission.anomaly");
                record.set_body(AnyValue::from(format!(
                    "anomaly in {}: {} (expected {}, band {} to {}, score {:.2})",
                    event.name.as_str(),
                    a.value,
                    a.expected,
                    a.lower,
                    a.upper,
                    a.score
                )));
                record.add_attribute("mission.anomaly.metric", event.name.as_str());
                record.add_attribute("mission.anomaly.detector", a.detector.as_str());
                for (key, value) in [
                    ("mission.anomaly.score", a.score),
                    ("mission.anomaly.value", a.value),
                    ("mission.anomaly.expected", a.expected),
                    ("mission.anomaly.lower", a.lower),
                    ("mission.anomaly.upper", a.upper),
                ] {
                    record.add_attribute(key, AnyValue::Double(value));
                }
                record.add_attribute("mission.anomaly.id", event.span_id.to_string());
            }
            EventBody::Score(score) => {
                record.set_severity_number(Severity::Info);
                record.set_severity_text("info");
                record.set_event_name(semconv::EVALUATION_RESULT);
                // Also as the `event.name` attribute, for receivers on an OTLP version older
                // than the log record's `event_name` field (they drop the field).
                record.add_attribute("event.name", semconv::EVALUATION_RESULT);
                record.add_attribute(semconv::EVALUATION_NAME, event.name.as_str());
                record
                    .add_attribute(semconv::EVALUATION_SCORE_VALUE, AnyValue::Double(score.value));
                if !score.label.is_empty() {
                    record.add_attribute(
                        semconv::EVALUATION_SCORE_LABEL,
                        score.label.as_str().to_owned(),
                    );
                }
                if !score.comment.is_empty() {
                    record.add_attribute(
                        semconv::EVALUATION_EXPLANATION,
                        score.comment.as_str().to_owned(),
                    );
                }
                record.add_attribute("mission.score.source", score.source.as_str());
                if !event.thread_id.is_zero() {
                    record.add_attribute(semconv::CONVERSATION_ID, event.thread_id.to_string());
                }
            }
            _ => return None,
        }
        if !event.agent.is_empty() {
            record.add_attribute(semconv::AGENT_NAME, event.agent.as_str());
        }
        if let Some(tenant) = self.other_tenant(event) {
            record.add_attribute(TENANT_ATTRIBUTE, tenant.to_owned());
        }
        for a in event.attributes.iter() {
            let v = match &a.value {
                AttrValue::Str(s) => AnyValue::from(s.as_str().to_owned()),
                AttrValue::Int(i) => AnyValue::Int(*i),
                AttrValue::Float(f) => AnyValue::Double(*f),
                AttrValue::Bool(b) => AnyValue::Boolean(*b),
            };
            record.add_attribute(a.key.as_str(), v);
        }
        if !event.thread_id.is_zero() {
            let trace_id = opentelemetry::trace::TraceId::from_bytes(event.thread_id.to_bytes());
            let span_id = opentelemetry::trace::SpanId::from_bytes(event.span_id.to_bytes());
            record.set_trace_context(trace_id, span_id, Some(TraceFlags::SAMPLED));
        }
        Some(record)
    }
}

fn value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => Value::String(s.as_str().to_owned().into()),
        AttrValue::Int(i) => Value::I64(*i),
        AttrValue::Float(f) => Value::F64(*f),
        AttrValue::Bool(b) => Value::Bool(*b),
    }
}

/// The OTLP span of a span event, named and attributed by the GenAI conventions.
pub fn to_span_data(event: &Event, scope: &InstrumentationScope) -> Option<SpanData> {
    use semconv::*;
    let span = event.as_span()?;
    let trace_id = opentelemetry::trace::TraceId::from_bytes(event.thread_id.to_bytes());
    let span_id = opentelemetry::trace::SpanId::from_bytes(event.span_id.to_bytes());
    let parent = opentelemetry::trace::SpanId::from_bytes(event.parent_span_id.to_bytes());
    let mut attributes = Vec::with_capacity(12 + event.attributes.len());
    let name = event.name.as_str();
    let tool = event
        .attributes
        .get(mission_core::Symbol::intern(TOOL_NAME))
        .map(|v| v.to_string())
        .unwrap_or_else(|| name.strip_prefix("execute_tool ").unwrap_or(name).to_owned());
    let model = span.llm.model.as_str();
    let (span_name, kind): (String, SpanKind) = match span.kind {
        Kind::LlmCall if !model.is_empty() => (format!("chat {model}"), SpanKind::Client),
        Kind::LlmCall => ("chat".into(), SpanKind::Client),
        Kind::ToolCall => (format!("execute_tool {tool}"), SpanKind::Internal),
        Kind::AgentStep if name == "invoke_agent" => {
            (format!("invoke_agent {}", event.agent.as_str()), SpanKind::Internal)
        }
        _ => (name.to_owned(), SpanKind::Internal),
    };
    if let Some(op) = span.kind.gen_ai_operation() {
        attributes.push(KeyValue::new(OPERATION_NAME, op));
    }
    attributes.push(KeyValue::new(AGENT_NAME, event.agent.as_str()));
    attributes.push(KeyValue::new(CONVERSATION_ID, event.thread_id.to_string()));
    if span.kind == Kind::LlmCall || !span.llm.is_empty() {
        let u = &span.llm;
        if !u.provider.is_empty() {
            attributes.push(KeyValue::new(PROVIDER_NAME, u.provider.as_str()));
        }
        if !model.is_empty() {
            attributes.push(KeyValue::new(REQUEST_MODEL, model));
            if event.attributes.get(mission_core::Symbol::intern(RESPONSE_MODEL)).is_none() {
                attributes.push(KeyValue::new(RESPONSE_MODEL, model));
            }
        }
        attributes.push(KeyValue::new(USAGE_INPUT_TOKENS, i64::from(u.input_tokens)));
        attributes.push(KeyValue::new(USAGE_OUTPUT_TOKENS, i64::from(u.output_tokens)));
        attributes
            .push(KeyValue::new(USAGE_CACHE_READ_INPUT_TOKENS, i64::from(u.cached_input_tokens)));
        if u.reasoning_tokens > 0 {
            attributes
                .push(KeyValue::new(USAGE_REASONING_OUTPUT_TOKENS, i64::from(u.reasoning_tokens)));
        }
        attributes.push(KeyValue::new(USAGE_COST, u.cost_usd));
    }
    if span.kind == Kind::ToolCall
        && event.attributes.get(mission_core::Symbol::intern(TOOL_NAME)).is_none()
    {
        attributes.push(KeyValue::new(TOOL_NAME, tool.clone()));
    }
    for a in event.attributes.iter() {
        attributes.push(KeyValue::new(a.key.as_str(), value(&a.value)));
    }
    let status = match span.status {
        MissionStatus::Unset => Status::Unset,
        MissionStatus::Ok => Status::Ok,
        MissionStatus::Error => {
            attributes.push(KeyValue::new(ERROR_TYPE, "error"));
            Status::error(Cow::Owned(span.error_message.as_str().to_owned()))
        }
    };
    Some(SpanData {
        span_context: SpanContext::new(
            trace_id,
            span_id,
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: parent,
        parent_span_is_remote: false,
        span_kind: kind,
        name: Cow::Owned(span_name),
        start_time: event.time.to_system_time(),
        end_time: event.end_time().to_system_time(),
        attributes,
        dropped_attributes_count: event.attributes.dropped(),
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status,
        instrumentation_scope: scope.clone(),
    })
}

impl Sink for OtlpSink {
    fn name(&self) -> &str {
        "otlp"
    }

    fn consume(&mut self, batch: &[Event]) -> Result<(), SinkError> {
        if self.spans.enabled() {
            let spans: Vec<SpanData> = batch
                .iter()
                .filter_map(|e| {
                    let mut span = to_span_data(e, &self.scope)?;
                    if let Some(tenant) = self.other_tenant(e) {
                        span.attributes.push(KeyValue::new(TENANT_ATTRIBUTE, tenant.to_owned()));
                    }
                    Some(span)
                })
                .collect();
            if !spans.is_empty() {
                self.spans.enqueue(
                    spans.into_iter(),
                    self.config.queue_capacity,
                    self.config.batch_size,
                );
            }
        }
        if let Some(metrics) = &self.metrics {
            for event in batch {
                metrics.record(event);
            }
        }
        if self.logs.enabled() {
            let logs: Vec<SdkLogRecord> =
                batch.iter().filter_map(|e| self.to_log_record(e)).collect();
            if !logs.is_empty() {
                self.logs.enqueue(
                    logs.into_iter(),
                    self.config.queue_capacity,
                    self.config.batch_size,
                );
            }
        }
        Ok(())
    }

    /// Waits for what is queued to be exported or rejected, at most
    /// [`OtlpConfig::flush_timeout`]; see the [module docs](self) for when it returns early.
    fn flush(&mut self) -> Result<(), SinkError> {
        self.flush_until(Instant::now() + self.config.flush_timeout)
    }

    /// Returns at once: export is not something a read of the store waits for, so a query
    /// never waits on a slow or failing backend (what is queued is sent on the worker's own
    /// schedule, and [`flush`](Sink::flush) still waits for it).
    fn flush_for_reads(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// Flushes, then stops the exporters; at most [`OtlpConfig::flush_timeout`] in all.
    fn shutdown(&mut self) -> Result<(), SinkError> {
        let deadline = Instant::now() + self.config.flush_timeout;
        let flushed = self.flush_until(deadline);
        if let Some(metrics) = self.metrics.take() {
            let provider = metrics.provider.clone();
            let _ = bounded(deadline, move || provider.shutdown());
        }
        self.stop(deadline);
        flushed
    }
}

impl OtlpSink {
    fn flush_until(&mut self, deadline: Instant) -> Result<(), SinkError> {
        let mut pending = Vec::new();
        for (result, signal) in [
            (self.spans.flush(deadline), self.spans.signal()),
            (self.logs.flush(deadline), self.logs.signal()),
        ] {
            if let Err(p) = result {
                pending.push(format!(
                    "{} {}{}",
                    p.items,
                    signal.items(),
                    p.why.map(|w| format!(" (last error: {w})")).unwrap_or_default()
                ));
            }
        }
        // Metrics are cumulative: a failed export is counted in health and carried by the
        // next one, so it does not fail the flush.
        if let Some(metrics) = &self.metrics {
            let provider = metrics.provider.clone();
            let _ = bounded(deadline, move || provider.force_flush());
        }
        if pending.is_empty() {
            Ok(())
        } else {
            Err(SinkError::new(format!(
                "OTLP export to {} still pending: {}",
                self.config.endpoint,
                pending.join(", ")
            )))
        }
    }

    /// Tells the exporter threads to finish and waits for them until `deadline`; a thread
    /// still sending then is left to finish its request on its own.
    fn stop(&mut self, deadline: Instant) {
        self.spans.close();
        self.logs.close();
        let done = self.spans.wait_exited(deadline) & self.logs.wait_exited(deadline);
        for worker in self.workers.drain(..) {
            if done {
                let _ = worker.join();
            }
        }
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        self.stop(Instant::now() + self.config.flush_timeout);
    }
}
