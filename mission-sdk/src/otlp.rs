//! [`OtlpSink`]: exports spans, log records and the GenAI client metrics over OTLP (HTTP/protobuf or gRPC) with the OpenTelemetry GenAI
//! semantic conventions, batched on a thread of its own, with bounded memory, retries with
//! backoff while the backend is down, and exact counters.
//!
//! Attribute names follow the GenAI semantic conventions as of semconv 1.37 (kept here as our
//! own constants: the `opentelemetry-semantic-conventions` GenAI constants are experimental).
//! Cost has no standard name yet; we export it as `gen_ai.usage.cost` (US dollars).

use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mission_core::{
    AttrValue, Event, EventBody, Sink, SinkError, SpanKind as Kind, Status as MissionStatus,
};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry::trace::{SpanContext, SpanKind, Status, TraceFlags, TraceState};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_http::HttpClient;
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{
    LogBatch, LogExporter as _, SdkLogRecord, SdkLogger, SdkLoggerProvider,
};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};

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
pub struct OtlpConfig {
    /// The collector's base URL (`http://localhost:4318` for HTTP; `/v1/traces` is appended).
    pub endpoint: String,
    /// The transport.
    pub protocol: OtlpProtocol,
    /// `service.name` of the resource.
    pub service_name: String,
    /// Tenant, exported as the resource attribute `mission.tenant`.
    pub tenant: String,
    /// Longest time one export request may take.
    pub timeout: Duration,
    /// Most spans waiting for export; further spans are dropped and counted.
    pub queue_capacity: usize,
    /// Most spans per export request.
    pub batch_size: usize,
    /// Longest time a span waits for its batch to fill.
    pub batch_delay: Duration,
    /// How long a failing batch is retried (with backoff) before it is dropped and counted.
    pub retry_window: Duration,
    /// Longest time `flush` waits for the queue to empty.
    pub flush_timeout: Duration,
    /// How often the GenAI metrics (`gen_ai.client.token.usage`,
    /// `gen_ai.client.operation.duration`) are exported.
    pub metrics_interval: Duration,
    /// Headers sent with every request (gRPC metadata over gRPC): a hosted backend's API key,
    /// for example. `OTEL_EXPORTER_OTLP_HEADERS` is honoured too.
    pub headers: Vec<(String, String)>,
    /// A PEM file of CA certificates trusted for an `https://` endpoint besides the system's
    /// roots (a collector behind a private CA). See [`crate::tls`].
    pub ca_file: Option<std::path::PathBuf>,
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
            flush_timeout: Duration::from_secs(10),
            metrics_interval: Duration::from_secs(10),
            headers: Vec::new(),
            ca_file: None,
        }
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

    /// This configuration trusting the CA certificates in `path` (PEM) as well.
    pub fn with_ca_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Checks what can be checked before connecting: the URL scheme (and TLS support), the
    /// headers and the CA file.
    fn validate(&self) -> Result<Option<Vec<u8>>, String> {
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

    /// `builder` set up for OTLP/HTTP to `{endpoint}{path}`: headers, and a client trusting the
    /// CA file when there is one.
    fn http_exporter<B: WithExportConfig + WithHttpConfig>(
        &self,
        builder: B,
        path: &str,
        ca: Option<&[u8]>,
        cause: &Cause,
    ) -> Result<B, String> {
        crate::tls::install_default_provider();
        let mut builder = builder
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(format!("{}{path}", self.endpoint))
            .with_timeout(self.timeout);
        if !self.headers.is_empty() {
            builder = builder.with_headers(self.headers.iter().cloned().collect());
        }
        let client = crate::tls::blocking_client(Some(self.timeout), ca)?;
        Ok(builder.with_http_client(CauseKeepingClient { client, cause: cause.clone() }))
    }

    /// `builder` set up for OTLP/gRPC: metadata, and TLS with the system's roots (plus the CA
    /// file) for an `https://` endpoint.
    fn grpc_exporter<B: WithExportConfig + WithTonicConfig>(
        &self,
        builder: B,
        ca: Option<&[u8]>,
    ) -> Result<B, String> {
        crate::tls::install_default_provider();
        let mut builder = builder.with_endpoint(self.endpoint.clone()).with_timeout(self.timeout);
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

/// Why the last OTLP/HTTP request failed, in full: the exporter reports only "network error",
/// which hides an untrusted certificate or a refused connection.
type Cause = Arc<Mutex<Option<String>>>;

/// The blocking `reqwest` client the OTLP/HTTP exporters use, keeping each failure's causes.
#[derive(Debug)]
struct CauseKeepingClient {
    client: reqwest::blocking::Client,
    cause: Cause,
}

#[async_trait::async_trait]
impl HttpClient for CauseKeepingClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let result = self.client.send_bytes(request).await;
        if let Err(e) = &result {
            let text = crate::tls::error_with_causes(e.as_ref());
            *self.cause.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
        }
        result
    }
}

/// `error`, followed by the transport's cause when one was kept.
fn with_cause(error: impl std::fmt::Display, cause: &Cause) -> String {
    match cause.lock().unwrap_or_else(|p| p.into_inner()).take() {
        Some(why) => format!("{error} ({why})"),
        None => error.to_string(),
    }
}

/// Exact counters of the exporter; `queued + exported + dropped == accepted` once idle.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OtlpStats {
    /// Spans handed to the exporter.
    pub accepted: u64,
    /// Spans the backend acknowledged.
    pub exported: u64,
    /// Spans waiting in the queue or in the batch being sent.
    pub queued: u64,
    /// Spans dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Spans dropped because their batch kept failing for the whole retry window.
    pub dropped_retry_expired: u64,
    /// Export requests that failed (each retry counts).
    pub failed_requests: u64,
    /// The last export error.
    pub last_error: Option<String>,
    /// Whether the last request succeeded.
    pub backend_up: bool,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    exported: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_retry_expired: AtomicU64,
    failed_requests: AtomicU64,
    in_batch: AtomicU64,
    backend_up: AtomicBool,
    last_error: Mutex<Option<String>>,
}

/// One signal's export queue, shared by the sink (producer) and its exporter thread.
struct Shared<T> {
    queue: Mutex<VecDeque<T>>,
    wake: Condvar,
    idle: Condvar,
    closing: AtomicBool,
    flush_requested: AtomicBool,
    counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T> Shared<T> {
    fn new() -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            idle: Condvar::new(),
            closing: AtomicBool::new(false),
            flush_requested: AtomicBool::new(false),
            counters: Counters::default(),
        }
    }

    fn stats(&self) -> OtlpStats {
        let c = &self.counters;
        OtlpStats {
            accepted: c.accepted.load(Ordering::Acquire),
            exported: c.exported.load(Ordering::Acquire),
            queued: lock(&self.queue).len() as u64 + c.in_batch.load(Ordering::Acquire),
            dropped_queue_full: c.dropped_queue_full.load(Ordering::Acquire),
            dropped_retry_expired: c.dropped_retry_expired.load(Ordering::Acquire),
            failed_requests: c.failed_requests.load(Ordering::Acquire),
            last_error: lock(&c.last_error).clone(),
            backend_up: c.backend_up.load(Ordering::Acquire),
        }
    }

    /// Queues `items`, dropping (and counting) what does not fit.
    fn enqueue(&self, items: impl ExactSizeIterator<Item = T>, capacity: usize, batch_size: usize) {
        let c = &self.counters;
        c.accepted.fetch_add(items.len() as u64, Ordering::Relaxed);
        let mut queue = lock(&self.queue);
        for item in items {
            if queue.len() >= capacity {
                c.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
            } else {
                queue.push_back(item);
            }
        }
        if queue.len() >= batch_size {
            self.wake.notify_one();
        }
    }

    /// Waits until the queue is empty and no batch is being sent, or `timeout` passes.
    fn flush(&self, timeout: Duration) -> Result<(), u64> {
        let deadline = Instant::now() + timeout;
        self.flush_requested.store(true, Ordering::Release);
        self.wake.notify_one();
        let mut queue = lock(&self.queue);
        while !queue.is_empty() || self.counters.in_batch.load(Ordering::Acquire) > 0 {
            let now = Instant::now();
            if now >= deadline {
                return Err(queue.len() as u64 + self.counters.in_batch.load(Ordering::Acquire));
            }
            self.wake.notify_one();
            queue = self
                .idle
                .wait_timeout(queue, (deadline - now).min(Duration::from_millis(50)))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        Ok(())
    }

    fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.wake.notify_all();
    }
}

/// A handle to read an [`OtlpSink`]'s counters from any thread.
#[derive(Clone)]
pub struct OtlpStatsReader {
    spans: Arc<Shared<SpanData>>,
    logs: Arc<Shared<SdkLogRecord>>,
}

impl std::fmt::Debug for OtlpStatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpStatsReader").field("stats", &self.stats()).finish()
    }
}

impl OtlpStatsReader {
    /// The span exporter's counters now.
    pub fn stats(&self) -> OtlpStats {
        self.spans.stats()
    }

    /// The log exporter's counters now.
    pub fn log_stats(&self) -> OtlpStats {
        self.logs.stats()
    }
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
    metrics: GenAiMetrics,
    /// Drives the gRPC metric exporter's connection (the periodic reader runs on its own thread).
    _metrics_runtime: Option<tokio::runtime::Runtime>,
}

/// The GenAI client metrics (semconv 1.37), aggregated by the SDK and exported periodically.
struct GenAiMetrics {
    provider: SdkMeterProvider,
    tokens: Histogram<u64>,
    duration: Histogram<f64>,
}

impl GenAiMetrics {
    fn record(&self, event: &Event) {
        let Some(span) = event.as_span() else { return };
        if span.kind != Kind::LlmCall && span.llm.is_empty() {
            return;
        }
        let u = &span.llm;
        let mut attrs = vec![
            KeyValue::new(semconv::OPERATION_NAME, span.kind.gen_ai_operation().unwrap_or("chat")),
            KeyValue::new(semconv::PROVIDER_NAME, u.provider.as_str()),
            KeyValue::new(semconv::REQUEST_MODEL, u.model.as_str()),
        ];
        if span.status.is_error() {
            attrs.push(KeyValue::new(semconv::ERROR_TYPE, "error"));
        }
        self.duration.record(span.duration_ns as f64 / 1e9, &attrs);
        attrs.push(KeyValue::new("gen_ai.token.type", "input"));
        self.tokens.record(u64::from(u.input_tokens), &attrs);
        if let Some(last) = attrs.last_mut() {
            *last = KeyValue::new("gen_ai.token.type", "output");
        }
        self.tokens.record(u64::from(u.output_tokens), &attrs);
    }
}

/// The export function a worker thread calls for one batch.
type ExportFn<'r, T> = Box<dyn Fn(Vec<T>) -> Result<(), String> + 'r>;

/// Starts an exporter thread for one signal; `build` makes its exporter inside the thread's
/// runtime (the gRPC client must be made inside one) and returns the export function.
fn spawn_worker<T, B>(
    name: &str,
    config: OtlpConfig,
    shared: Arc<Shared<T>>,
    build: B,
) -> crate::Result<JoinHandle<()>>
where
    T: Clone + Send + 'static,
    B: for<'r> FnOnce(&'r tokio::runtime::Runtime, &OtlpConfig) -> Result<ExportFn<'r, T>, String>
        + Send
        + 'static,
{
    let bad = |message: String| crate::Error::Config { origin: "OTLP exporter".into(), message };
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), String>>(1);
    let handle = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            let export = match build(&runtime, &config) {
                Ok(f) => f,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            run_worker(&config, &shared, export);
        })
        .map_err(|e| bad(format!("cannot start the exporter thread: {e}")))?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(e)) => Err(bad(e)),
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

impl GenAiMetrics {
    fn new(
        config: &OtlpConfig,
        resource: Resource,
        ca: Option<&[u8]>,
    ) -> crate::Result<(Self, Option<tokio::runtime::Runtime>)> {
        let bad = |message: String| crate::Error::Config {
            origin: "OTLP metric exporter".into(),
            message,
        };
        let (exporter, runtime) = match config.protocol {
            OtlpProtocol::HttpProtobuf => (
                config
                    .http_exporter(
                        opentelemetry_otlp::MetricExporter::builder().with_http(),
                        "/v1/metrics",
                        ca,
                        &Cause::default(),
                    )
                    .map_err(bad)?
                    .build(),
                None,
            ),
            OtlpProtocol::Grpc => {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("mission-otlp-metrics")
                    .enable_all()
                    .build()
                    .map_err(|e| bad(e.to_string()))?;
                let exporter = {
                    let _guard = runtime.enter();
                    config
                        .grpc_exporter(
                            opentelemetry_otlp::MetricExporter::builder().with_tonic(),
                            ca,
                        )
                        .map_err(bad)?
                        .build()
                };
                (exporter, Some(runtime))
            }
        };
        let exporter = exporter.map_err(|e| bad(e.to_string()))?;
        let reader =
            PeriodicReader::builder(exporter).with_interval(config.metrics_interval).build();
        let provider =
            SdkMeterProvider::builder().with_reader(reader).with_resource(resource).build();
        let meter = provider.meter("mission-control");
        // Bucket boundaries advised by the GenAI semantic conventions.
        let tokens = meter
            .u64_histogram("gen_ai.client.token.usage")
            .with_unit("{token}")
            .with_description("Number of input and output tokens used")
            .with_boundaries(vec![
                1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
                4194304.0, 16777216.0, 67108864.0,
            ])
            .build();
        let duration = meter
            .f64_histogram("gen_ai.client.operation.duration")
            .with_unit("s")
            .with_description("GenAI operation duration")
            .with_boundaries(vec![
                0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96,
                81.92,
            ])
            .build();
        Ok((Self { provider, tokens, duration }, runtime))
    }
}

impl OtlpSink {
    /// Builds the span and log exporters and starts their threads.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) if the endpoint is invalid or an exporter cannot
    /// be built.
    pub fn new(config: OtlpConfig) -> crate::Result<Self> {
        let bad =
            |message: String| crate::Error::Config { origin: "OTLP exporter".into(), message };
        let ca = config.validate().map_err(bad)?;
        let resource = Resource::builder_empty()
            .with_service_name(config.service_name.clone())
            .with_attributes([KeyValue::new("mission.tenant", config.tenant.clone())])
            .build();
        let scope = InstrumentationScope::builder("mission-control")
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let spans = Arc::new(Shared::new());
        let logs = Arc::new(Shared::new());
        let mut workers = Vec::new();

        let span_resource = resource.clone();
        let span_ca = ca.clone();
        workers.push(spawn_worker(
            "mission-otlp-spans",
            config.clone(),
            spans.clone(),
            move |runtime, config| {
                let cause = Cause::default();
                let built = match config.protocol {
                    OtlpProtocol::HttpProtobuf => config
                        .http_exporter(
                            opentelemetry_otlp::SpanExporter::builder().with_http(),
                            "/v1/traces",
                            span_ca.as_deref(),
                            &cause,
                        )?
                        .build(),
                    OtlpProtocol::Grpc => {
                        let _guard = runtime.enter();
                        config
                            .grpc_exporter(
                                opentelemetry_otlp::SpanExporter::builder().with_tonic(),
                                span_ca.as_deref(),
                            )?
                            .build()
                    }
                };
                let mut exporter = built.map_err(|e| e.to_string())?;
                exporter.set_resource(&span_resource);
                let protocol = config.protocol;
                Ok(Box::new(move |batch: Vec<SpanData>| {
                    let result = match protocol {
                        OtlpProtocol::HttpProtobuf => block_on(exporter.export(batch)),
                        OtlpProtocol::Grpc => runtime.block_on(exporter.export(batch)),
                    };
                    result.map_err(|e| with_cause(e, &cause))
                }))
            },
        )?);

        let log_resource = resource.clone();
        let metric_resource = resource;
        let log_scope = scope.clone();
        let log_ca = ca.clone();
        workers.push(spawn_worker(
            "mission-otlp-logs",
            config.clone(),
            logs.clone(),
            move |runtime, config| {
                let cause = Cause::default();
                let built = match config.protocol {
                    OtlpProtocol::HttpProtobuf => config
                        .http_exporter(
                            opentelemetry_otlp::LogExporter::builder().with_http(),
                            "/v1/logs",
                            log_ca.as_deref(),
                            &cause,
                        )?
                        .build(),
                    OtlpProtocol::Grpc => {
                        let _guard = runtime.enter();
                        config
                            .grpc_exporter(
                                opentelemetry_otlp::LogExporter::builder().with_tonic(),
                                log_ca.as_deref(),
                            )?
                            .build()
                    }
                };
                let mut exporter = built.map_err(|e| e.to_string())?;
                exporter.set_resource(&log_resource);
                let protocol = config.protocol;
                Ok(Box::new(move |records: Vec<SdkLogRecord>| {
                    let pairs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                        records.iter().map(|r| (r, &log_scope)).collect();
                    let batch = LogBatch::new(&pairs);
                    let result = match protocol {
                        OtlpProtocol::HttpProtobuf => block_on(exporter.export(batch)),
                        OtlpProtocol::Grpc => runtime.block_on(exporter.export(batch)),
                    };
                    result.map_err(|e| with_cause(e, &cause))
                }))
            },
        )?);

        let logger_provider = SdkLoggerProvider::builder().build();
        let logger = logger_provider.logger("mission-control");
        let (metrics, metrics_runtime) =
            GenAiMetrics::new(&config, metric_resource, ca.as_deref())?;
        Ok(Self {
            config,
            spans,
            logs,
            workers,
            scope,
            logger,
            _logger_provider: logger_provider,
            metrics,
            _metrics_runtime: metrics_runtime,
        })
    }

    /// A reader of this sink's counters.
    pub fn stats_reader(&self) -> OtlpStatsReader {
        OtlpStatsReader { spans: self.spans.clone(), logs: self.logs.clone() }
    }

    /// The OTLP log record of a log event, with its trace context.
    /// A log record for a log event, or for an anomaly (severity warn, event name
    /// `mission.anomaly`, the detector's numbers as attributes); `None` for other events.
    fn to_log_record(&self, event: &Event) -> Option<SdkLogRecord> {
        if !matches!(event.body, EventBody::Log(_) | EventBody::Anomaly(_)) {
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
                if !event.tenant.is_empty() {
                    record.add_attribute("mission.tenant", event.tenant.as_str());
                }
            }
            _ => return None,
        }
        if !event.agent.is_empty() {
            record.add_attribute(semconv::AGENT_NAME, event.agent.as_str());
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

/// The exporter thread: batches, sends, retries with backoff, counts.
fn run_worker<T: Clone>(config: &OtlpConfig, shared: &Shared<T>, export: ExportFn<'_, T>) {
    let c = &shared.counters;
    loop {
        let batch: Vec<T> = {
            let mut queue = lock(&shared.queue);
            let deadline = Instant::now() + config.batch_delay;
            while queue.len() < config.batch_size
                && !shared.closing.load(Ordering::Acquire)
                && !shared.flush_requested.load(Ordering::Acquire)
            {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                queue = shared
                    .wake
                    .wait_timeout(queue, deadline - now)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            if queue.is_empty() {
                shared.flush_requested.store(false, Ordering::Release);
                shared.idle.notify_all();
                if shared.closing.load(Ordering::Acquire) {
                    return;
                }
                continue;
            }
            let n = queue.len().min(config.batch_size);
            c.in_batch.store(n as u64, Ordering::Release);
            queue.drain(..n).collect()
        };
        let n = batch.len() as u64;
        let first_failure = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            match export(batch.clone()) {
                Ok(()) => {
                    c.exported.fetch_add(n, Ordering::AcqRel);
                    c.backend_up.store(true, Ordering::Release);
                    break;
                }
                Err(e) => {
                    c.failed_requests.fetch_add(1, Ordering::Relaxed);
                    c.backend_up.store(false, Ordering::Release);
                    *lock(&c.last_error) = Some(e);
                    let expired = first_failure.elapsed() >= config.retry_window;
                    if expired
                        || (shared.closing.load(Ordering::Acquire)
                            && first_failure.elapsed() >= config.timeout)
                    {
                        c.dropped_retry_expired.fetch_add(n, Ordering::AcqRel);
                        break;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        c.in_batch.store(0, Ordering::Release);
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
        let spans: Vec<SpanData> =
            batch.iter().filter_map(|e| to_span_data(e, &self.scope)).collect();
        if !spans.is_empty() {
            self.spans.enqueue(
                spans.into_iter(),
                self.config.queue_capacity,
                self.config.batch_size,
            );
        }
        for event in batch {
            self.metrics.record(event);
        }
        let logs: Vec<SdkLogRecord> = batch.iter().filter_map(|e| self.to_log_record(e)).collect();
        if !logs.is_empty() {
            self.logs.enqueue(logs.into_iter(), self.config.queue_capacity, self.config.batch_size);
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let timeout = self.config.flush_timeout;
        let spans = self.spans.flush(timeout);
        let logs = self.logs.flush(timeout);
        let metrics = self.metrics.provider.force_flush();
        match (spans, logs) {
            (Ok(()), Ok(())) => metrics.map_err(|e| SinkError::new(format!("OTLP metrics: {e}"))),
            (s, l) => Err(SinkError::new(format!(
                "OTLP export still pending after {timeout:?}: {} spans, {} log records",
                s.err().unwrap_or(0),
                l.err().unwrap_or(0)
            ))),
        }
    }

    fn shutdown(&mut self) -> Result<(), SinkError> {
        let flushed = self.flush();
        let _ = self.metrics.provider.shutdown();
        self.spans.close();
        self.logs.close();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
        flushed
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        self.spans.close();
        self.logs.close();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}
