//! An OTLP receiver: any process — an agent in TypeScript, a Python service instrumented with
//! OpenTelemetry, a subprocess — sends traces, logs and metrics over OTLP/HTTP, and they are
//! recorded through the host's pipeline like its own events, so redaction, content omission,
//! sampling, the models, directives, statistics, the live stream, the store and the dashboard
//! all apply.
//!
//! - **Endpoints**: `POST /v1/traces`, `/v1/logs`, `/v1/metrics`, with `Content-Type:
//!   application/x-protobuf` or `application/json` (the OTLP JSON encoding: hex ids, 64-bit
//!   integers as strings or numbers), optionally `Content-Encoding: gzip`. The answer is
//!   encoded like the request (`Export*ServiceResponse`, or a `google.rpc.Status` on error).
//! - **Mapping**: spans through [`mission_core::semconv::span_event`], the one mapping the
//!   Python OpenTelemetry bridge uses (GenAI attributes of every convention onto typed
//!   columns, cost from the host's price table, other attributes kept, parents kept, links as
//!   `mission.links`); `service.name` is the agent unless the span (or its nearest ancestor in
//!   the request) names one; log records keep their trace context; the GenAI event
//!   `gen_ai.evaluation.result` becomes a score; every metric data point a metric event.
//! - **Safe by default**: binds loopback unless told otherwise, and a non-loopback address
//!   needs tokens ([`crate::auth::check_tokens`]). A token maps to a tenant; only a token for
//!   every tenant (or no token, on loopback) lets the resource attribute `mission.tenant`
//!   choose it — a tenant token's data naming another tenant is refused (`partial_success`).
//!   The `Host` header must name the server.
//! - **Bounded**: a request is acknowledged only once every event of it is in the recorder;
//!   at most [`OtlpReceiverConfig::queue_capacity`] events wait for room, and past that the
//!   answer is `429 Too Many Requests` with `Retry-After` and nothing of the request is kept
//!   (the sender retries it whole). Bodies over [`OtlpReceiverConfig::max_body_bytes`]
//!   (compressed or not) get `413`; a body that does not decode gets `400` with the reason; an
//!   unknown content type or encoding `415`. Every outcome is counted ([`OtlpReceiverStats`]).
//!   At most [`OtlpReceiverConfig::max_in_flight`] requests (HTTP and gRPC together) are read
//!   and answered at once; one more is refused before its body is read, as a full queue is
//!   (`429` with `Retry-After`, counted as throttled), so the bodies held at once are at most
//!   `max_in_flight × max_body_bytes` (decompressed, twice that).
//! - **OTLP/gRPC** ([`OtlpReceiverConfig::with_grpc_addr`]; off unless asked for): the three
//!   OTLP services (`Export` of traces, logs and metrics) on a listener of their own, through
//!   the same path after decoding — the same tokens (metadata `authorization: Bearer …`),
//!   tenants, queue and counters. Messages over `max_body_bytes` (compressed or after gzip) and
//!   more events than the queue holds are `RESOURCE_EXHAUSTED` without retry information (not
//!   to be retried); a full queue is `RESOURCE_EXHAUSTED` with a `google.rpc.RetryInfo`; a
//!   message that does not decode `INVALID_ARGUMENT` with the reason; no or a wrong token
//!   `UNAUTHENTICATED`; shutting down `UNAVAILABLE`. Every refusal of ours carries a
//!   `google.rpc.ErrorInfo` (domain `mission-control`) naming the counter it went to. There is
//!   no `Host` check on gRPC: browsers cannot speak it, so it cannot be reached by DNS
//!   rebinding.

mod grpc;
mod json;
mod map;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use mission_core::{Event, Symbol, WeakRecorder};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::sync::{Semaphore, oneshot, watch};

use crate::auth::{Hosts, Token, authorize, check_tokens};
use crate::{Error, Result};

pub use map::{PriceFn, TENANT_ATTRIBUTE, UNKNOWN_SERVICE};

/// The default port of OTLP/HTTP.
pub const DEFAULT_PORT: u16 = 4318;
/// The default port of OTLP/gRPC.
pub const DEFAULT_GRPC_PORT: u16 = 4317;
/// The accepted range of [`OtlpReceiverConfig::max_body_bytes`].
pub const MAX_BODY_BYTES_RANGE: std::ops::RangeInclusive<usize> = 1024..=(256 << 20);
/// The default of [`OtlpReceiverConfig::max_body_bytes`]: 8 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 << 20;
/// The accepted range of [`OtlpReceiverConfig::queue_capacity`].
pub const QUEUE_CAPACITY_RANGE: std::ops::RangeInclusive<usize> = 1..=10_000_000;
/// The default of [`OtlpReceiverConfig::queue_capacity`].
pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;
/// The accepted range of [`OtlpReceiverConfig::max_in_flight`].
pub const MAX_IN_FLIGHT_RANGE: std::ops::RangeInclusive<usize> = 1..=4096;
/// The default of [`OtlpReceiverConfig::max_in_flight`].
pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;
/// The accepted range of [`OtlpReceiverConfig::retry_after`] (whole seconds are sent).
pub const RETRY_AFTER_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);

/// Where and how the receiver serves.
#[derive(Clone, Debug)]
#[must_use]
#[non_exhaustive]
pub struct OtlpReceiverConfig {
    /// The address to bind (port 0 picks a free port); default `127.0.0.1:4318`.
    pub addr: SocketAddr,
    /// The address of the OTLP/gRPC listener (port 0 picks a free port); `None` (the default)
    /// serves no gRPC. Same tokens, limits, queue and counters as HTTP.
    pub grpc_addr: Option<SocketAddr>,
    /// Accepted bearer tokens (their role does not matter here: any may send); empty means
    /// none is asked for (loopback only). A token's tenant is the tenant of what it sends.
    pub tokens: Vec<Token>,
    /// `Host` header values accepted besides the defaults (see [`Hosts`]).
    pub allowed_hosts: Vec<String>,
    /// The largest body accepted, compressed and after decompression, in
    /// [`MAX_BODY_BYTES_RANGE`]; default [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// The most events waiting for room in the recorder, in [`QUEUE_CAPACITY_RANGE`]; default
    /// [`DEFAULT_QUEUE_CAPACITY`]. A request with more events than this is answered `413` (the
    /// sender splits it).
    pub queue_capacity: usize,
    /// The most requests read and answered at once, HTTP and gRPC together, in
    /// [`MAX_IN_FLIGHT_RANGE`]; default [`DEFAULT_MAX_IN_FLIGHT`]. One more is refused at once,
    /// before its body is read, like a full queue (`429` with `Retry-After`; gRPC
    /// `RESOURCE_EXHAUSTED` with `RetryInfo`). The request bodies held at once are thus at most
    /// `max_in_flight × max_body_bytes` (and as much again decompressed).
    pub max_in_flight: usize,
    /// What a `429` asks the sender to wait, in [`RETRY_AFTER_RANGE`]; default 1 s.
    pub retry_after: Duration,
}

impl Default for OtlpReceiverConfig {
    fn default() -> Self {
        Self::loopback(DEFAULT_PORT)
    }
}

impl OtlpReceiverConfig {
    /// Serves on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            grpc_addr: None,
            tokens: Vec::new(),
            allowed_hosts: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            retry_after: Duration::from_secs(1),
        }
    }

    /// Serves on `127.0.0.1:port` (0 picks a free port).
    pub fn loopback(port: u16) -> Self {
        Self::new(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Also serves OTLP/gRPC on `addr` (port 0 picks a free port; see
    /// [`OtlpReceiver::grpc_endpoint`]). Off loopback it needs tokens, as HTTP does.
    pub fn with_grpc_addr(mut self, addr: SocketAddr) -> Self {
        self.grpc_addr = Some(addr);
        self
    }

    /// Serves no OTLP/gRPC (the default).
    pub fn without_grpc(mut self) -> Self {
        self.grpc_addr = None;
        self
    }

    /// Accepts `token` for every tenant (a resource's `mission.tenant` chooses; else the
    /// host's tenant).
    pub fn with_token(self, token: &str) -> Self {
        self.with_tenant_token_opt(token, None)
    }

    /// Accepts `token` for `tenant` only: what it sends is `tenant`'s.
    pub fn with_tenant_token(self, token: &str, tenant: &str) -> Self {
        self.with_tenant_token_opt(token, Some(tenant))
    }

    fn with_tenant_token_opt(mut self, token: &str, tenant: Option<&str>) -> Self {
        self.tokens.push(Token::new(token, crate::auth::Role::Viewer, tenant));
        self
    }

    /// Also accepts this `Host` header value.
    pub fn with_allowed_host(mut self, host: &str) -> Self {
        self.allowed_hosts.push(host.to_owned());
        self
    }

    /// The largest body accepted (checked when serving).
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The most events waiting for the recorder (checked when serving).
    pub fn with_queue_capacity(mut self, events: usize) -> Self {
        self.queue_capacity = events;
        self
    }

    /// The most requests read and answered at once (checked when serving).
    pub fn with_max_in_flight(mut self, requests: usize) -> Self {
        self.max_in_flight = requests;
        self
    }

    /// What a `429` asks the sender to wait (checked when serving).
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = wait;
        self
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::Serve`] naming the setting and its range, or the token problem.
    pub fn check(&self) -> Result<()> {
        check_tokens(&self.tokens, self.addr, "OTLP", "OtlpReceiverConfig::with_token")?;
        if let Some(grpc) = self.grpc_addr {
            check_tokens(&self.tokens, grpc, "OTLP/gRPC", "OtlpReceiverConfig::with_token")?;
        }
        let refuse = |message: String| Error::Serve { addr: self.addr.to_string(), message };
        let range = |name: &str, value: String, lo: String, hi: String| {
            refuse(format!("{name} = {value} is outside {lo}..={hi}"))
        };
        let counts = [
            ("max_body_bytes", self.max_body_bytes, &MAX_BODY_BYTES_RANGE),
            ("queue_capacity", self.queue_capacity, &QUEUE_CAPACITY_RANGE),
            ("max_in_flight", self.max_in_flight, &MAX_IN_FLIGHT_RANGE),
        ];
        for (name, value, accepted) in counts {
            if !accepted.contains(&value) {
                return Err(range(
                    name,
                    value.to_string(),
                    accepted.start().to_string(),
                    accepted.end().to_string(),
                ));
            }
        }
        if !RETRY_AFTER_RANGE.contains(&self.retry_after) {
            return Err(range(
                "retry_after",
                format!("{:?}", self.retry_after),
                format!("{:?}", RETRY_AFTER_RANGE.start()),
                format!("{:?}", RETRY_AFTER_RANGE.end()),
            ));
        }
        Ok(())
    }
}

/// Where received events go: the host's recorder, its tenant and its prices.
#[derive(Clone)]
pub struct OtlpTarget {
    /// The recorder events are recorded into (the host's pipeline).
    pub recorder: WeakRecorder,
    /// The tenant of data that names none, when the sender may send for every tenant.
    pub tenant: Symbol,
    /// Prices LLM calls (the host's price table).
    pub price: Arc<PriceFn>,
}

impl std::fmt::Debug for OtlpTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpTarget").field("tenant", &self.tenant.as_str()).finish_non_exhaustive()
    }
}

/// What the receiver did, exactly: items (spans, log records, metric points) and requests by
/// outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct OtlpReceiverStats {
    /// Requests answered, whatever the answer.
    pub requests: u64,
    /// Spans recorded.
    pub spans: u64,
    /// Log records (and scores) recorded.
    pub logs: u64,
    /// Metric data points recorded.
    pub metric_points: u64,
    /// Items refused inside accepted requests (reported in `partial_success`).
    pub rejected_items: u64,
    /// Requests refused with `400`: bodies that do not decode.
    pub malformed: u64,
    /// Requests refused with `413`: bodies too large, or more events than the queue holds.
    pub too_large: u64,
    /// Requests refused with `415`: unknown content type or encoding.
    pub unsupported: u64,
    /// Requests refused with `429`: the queue was full, or `max_in_flight` requests were
    /// being answered (nothing of them kept).
    pub throttled: u64,
    /// Requests refused with `401`: no or a wrong token.
    pub unauthorized: u64,
    /// Requests refused with `503`: the host was shutting down.
    pub unavailable: u64,
    /// Events waiting for room in the recorder now.
    pub queued: u64,
    /// Requests being read or answered now (HTTP and gRPC).
    pub in_flight: u64,
    /// Why the last request was refused (`400`, `413`, `415`), if one was.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    spans: AtomicU64,
    logs: AtomicU64,
    metric_points: AtomicU64,
    rejected_items: AtomicU64,
    malformed: AtomicU64,
    too_large: AtomicU64,
    unsupported: AtomicU64,
    throttled: AtomicU64,
    unauthorized: AtomicU64,
    unavailable: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// Reads a receiver's counters; cheap to clone, outlives the receiver.
#[derive(Clone)]
pub struct OtlpReceiverStatsReader {
    counters: Arc<Counters>,
    permits: Arc<Semaphore>,
    capacity: usize,
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
}

impl std::fmt::Debug for OtlpReceiverStatsReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpReceiverStatsReader").finish_non_exhaustive()
    }
}

impl OtlpReceiverStatsReader {
    /// The counters now.
    pub fn stats(&self) -> OtlpReceiverStats {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        OtlpReceiverStats {
            requests: load(&c.requests),
            spans: load(&c.spans),
            logs: load(&c.logs),
            metric_points: load(&c.metric_points),
            rejected_items: load(&c.rejected_items),
            malformed: load(&c.malformed),
            too_large: load(&c.too_large),
            unsupported: load(&c.unsupported),
            throttled: load(&c.throttled),
            unauthorized: load(&c.unauthorized),
            unavailable: load(&c.unavailable),
            queued: self.capacity.saturating_sub(self.permits.available_permits()) as u64,
            in_flight: self.max_in_flight.saturating_sub(self.in_flight.available_permits()) as u64,
            last_error: c.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

/// How long requests being answered get to finish once a receiver is told to stop; then its
/// connections are closed (an OTLP/gRPC client's idle connection would hold it open forever).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running receiver. Dropping it (or [`shutdown`](Self::shutdown)) stops it; requests
/// being answered get [`SHUTDOWN_GRACE`] to finish.
#[derive(Debug)]
pub struct OtlpReceiver {
    addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    ingest: Option<std::thread::JoinHandle<()>>,
    stats: OtlpReceiverStatsReader,
}

impl OtlpReceiver {
    /// The address it listens on (with the port picked, when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL senders are configured with (`OTEL_EXPORTER_OTLP_ENDPOINT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The address the OTLP/gRPC listener listens on, when one was asked for.
    pub fn grpc_local_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The gRPC endpoint senders are configured with (`OTEL_EXPORTER_OTLP_ENDPOINT` with
    /// `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`), when gRPC is served.
    pub fn grpc_endpoint(&self) -> Option<String> {
        self.grpc_addr.map(|addr| format!("http://{addr}"))
    }

    /// The counters now.
    pub fn stats(&self) -> OtlpReceiverStats {
        self.stats.stats()
    }

    /// A reader of the counters (for a health report).
    pub fn stats_reader(&self) -> OtlpReceiverStatsReader {
        self.stats.clone()
    }

    /// Stops serving and waits for the server's threads.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.stopping.store(true, Ordering::Release);
        if let Some(thread) = self.ingest.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Events of one request, waiting for the ingest thread; `done` answers whether all of them
/// are in the recorder.
struct Batch {
    events: Vec<Event>,
    done: oneshot::Sender<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

struct Shared {
    target: OtlpTarget,
    tokens: Vec<Token>,
    config: OtlpReceiverConfig,
    counters: Arc<Counters>,
    permits: Arc<Semaphore>,
    /// One permit per request being read or answered ([`admit`]).
    in_flight: Arc<Semaphore>,
    batches: Mutex<mpsc::Sender<Batch>>,
}

/// Lets a request in when fewer than `max_in_flight` are being answered: the permit is held
/// until its answer is ready. Else it is counted (as a request) and refused like a full queue.
fn admit(shared: &Shared) -> std::result::Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
    shared.in_flight.clone().try_acquire_owned().map_err(|_| {
        shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "the receiver is answering {} requests already: retry after the time given",
                shared.config.max_in_flight
            ),
        )
    })
}

/// Records batches on one thread of its own (one ring in the recorder), waiting for room when
/// the ring is full rather than dropping: what it was handed was promised to a sender.
fn ingest(recorder: WeakRecorder, batches: mpsc::Receiver<Batch>, stopping: Arc<AtomicBool>) {
    while let Ok(batch) = batches.recv() {
        let Some(recorder) = recorder.upgrade() else {
            let _ = batch.done.send(false);
            continue;
        };
        let mut complete = true;
        'events: for event in batch.events {
            let mut event = event;
            let mut wait = Duration::from_micros(20);
            loop {
                match recorder.try_record(event) {
                    Ok(()) => break,
                    Err(back) => {
                        if recorder.is_closed() || stopping.load(Ordering::Acquire) {
                            complete = false;
                            break 'events;
                        }
                        event = back;
                        std::thread::sleep(wait);
                        wait = (wait * 2).min(Duration::from_millis(2));
                    }
                }
            }
        }
        let _ = batch.done.send(complete);
    }
}

/// Starts the receiver: binds `config.addr` (and `config.grpc_addr`, when set), then serves
/// both on a thread of its own and records on another.
///
/// # Errors
/// [`Error::Serve`] for a setting out of range, a non-loopback address without tokens or a
/// short token; [`Error::Bind`] (with the operating system's error) for an address that cannot
/// be bound, or a thread or runtime the system refuses.
pub fn serve(target: OtlpTarget, config: OtlpReceiverConfig) -> Result<OtlpReceiver> {
    config.check()?;
    let (listener, addr) = crate::listen::listen(config.addr)?;
    let grpc_listener = config.grpc_addr.map(crate::listen::listen).transpose()?;
    let grpc_addr = grpc_listener.as_ref().map(|(_, addr)| *addr);
    let fail = |source: std::io::Error| Error::Bind { addr: addr.to_string(), source };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("mission-otlp")
        .build()
        .map_err(fail)?;
    let counters = Arc::new(Counters::default());
    let permits = Arc::new(Semaphore::new(config.queue_capacity));
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight));
    let (sender, receiver) = mpsc::channel();
    let stopping = Arc::new(AtomicBool::new(false));
    let ingest = {
        let recorder = target.recorder.clone();
        let stopping = stopping.clone();
        std::thread::Builder::new()
            .name("mission-otlp-ingest".into())
            .spawn(move || ingest(recorder, receiver, stopping))
            .map_err(fail)?
    };
    let stats = OtlpReceiverStatsReader {
        counters: counters.clone(),
        permits: permits.clone(),
        capacity: config.queue_capacity,
        in_flight: in_flight.clone(),
        max_in_flight: config.max_in_flight,
    };
    let hosts = Arc::new(Hosts::for_addr(addr, &config.allowed_hosts));
    let body_limit = config.max_body_bytes;
    let shared = Arc::new(Shared {
        target,
        tokens: config.tokens.clone(),
        config,
        counters,
        permits,
        in_flight,
        batches: Mutex::new(sender),
    });
    let grpc_router = grpc_listener.map(|(listener, _)| (listener, grpc::router(&shared)));
    let app = axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .route("/v1/logs", axum::routing::post(logs))
        .route("/v1/metrics", axum::routing::post(metrics))
        .route_layer(axum::middleware::from_fn_with_state(shared.clone(), limit_in_flight))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(shared)
        .layer(axum::middleware::from_fn_with_state(hosts, check_host));
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("mission-otlp".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let until_stopped = |mut stopping: watch::Receiver<bool>| async move {
                    let _ = stopping.wait_for(|s| *s).await;
                };
                let http = axum::serve(listener, app)
                    .with_graceful_shutdown(until_stopped(stopped.clone()));
                let grpc = async {
                    if let Some((listener, router)) = grpc_router {
                        grpc::serve(listener, router, until_stopped(stopped.clone())).await;
                    }
                };
                // Graceful shutdown waits for every connection to close, and an OTLP/gRPC
                // exporter keeps its HTTP/2 connection open for good: after the grace period the
                // servers are dropped (and with the runtime, the connections' tasks).
                let serving = async {
                    let _ = tokio::join!(http, grpc);
                };
                let grace = async {
                    until_stopped(stopped.clone()).await;
                    tokio::time::sleep(SHUTDOWN_GRACE).await;
                };
                tokio::select! {
                    () = serving => {}
                    () = grace => {}
                }
            });
        })
        .map_err(fail)?;
    Ok(OtlpReceiver {
        addr,
        grpc_addr,
        stop,
        stopping,
        thread: Some(thread),
        ingest: Some(ingest),
        stats,
    })
}

async fn check_host(State(hosts): State<Arc<Hosts>>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    match host {
        Some(h) if !hosts.accepts(h) => {
            (StatusCode::FORBIDDEN, "the Host header does not name this server\n").into_response()
        }
        _ => next.run(request).await,
    }
}

/// Refuses a request at once, before its body is read, when `max_in_flight` are being
/// answered ([`admit`]); else holds its permit until its answer is ready.
async fn limit_in_flight(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    match admit(&shared) {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(refusal) => {
            let encoding = encoding_of(request.headers()).unwrap_or(Encoding::Json);
            refuse(&shared, refusal, encoding)
        }
    }
}

/// The body's encoding, from `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// A refused request: its status and reason.
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

/// A `google.rpc.Status`, the body of an OTLP error answer.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The signal of an endpoint: how its request decodes and maps, and its answer.
trait Signal: Message + Default + Sized + Send + 'static {
    const NAME: &'static str;
    /// The field of `partial_success` counting what was refused, in OTLP/JSON.
    const REJECTED_FIELD: &'static str;
    type Response: Message + Default + Send + 'static;
    fn json(body: &[u8]) -> std::result::Result<Self, String>;
    fn map(&self, mapper: &map::Mapper<'_>) -> map::Mapped;
    fn count(shared: &Shared, n: u64);
    /// The answer: `partial_success` only when something was refused.
    fn response(rejected: i64, message: String) -> Self::Response;
    fn answer(rejected: i64, message: String, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Json => partial_json(Self::REJECTED_FIELD, rejected, &message),
            Encoding::Protobuf => Self::response(rejected, message).encode_to_vec(),
        }
    }
}

fn partial_json(field: &str, rejected: i64, message: &str) -> Vec<u8> {
    if rejected == 0 {
        return b"{}".to_vec();
    }
    serde_json::json!({ "partialSuccess": { field: rejected.to_string(), "errorMessage": message } })
        .to_string()
        .into_bytes()
}

impl Signal for ExportTraceServiceRequest {
    const NAME: &'static str = "traces";
    const REJECTED_FIELD: &'static str = "rejectedSpans";
    type Response = ExportTraceServiceResponse;
    fn json(body: &[u8]) -> std::result::Result<Self, String> {
        json::traces(body)
    }
    fn map(&self, mapper: &map::Mapper<'_>) -> map::Mapped {
        map::traces(mapper, self)
    }
    fn count(shared: &Shared, n: u64) {
        shared.counters.spans.fetch_add(n, Ordering::Relaxed);
    }
    fn response(rejected: i64, message: String) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: (rejected > 0).then_some(ExportTracePartialSuccess {
                rejected_spans: rejected,
                error_message: message,
            }),
        }
    }
}

impl Signal for ExportLogsServiceRequest {
    const NAME: &'static str = "logs";
    const REJECTED_FIELD: &'static str = "rejectedLogRecords";
    type Response = ExportLogsServiceResponse;
    fn json(body: &[u8]) -> std::result::Result<Self, String> {
        json::logs(body)
    }
    fn map(&self, mapper: &map::Mapper<'_>) -> map::Mapped {
        map::logs(mapper, self)
    }
    fn count(shared: &Shared, n: u64) {
        shared.counters.logs.fetch_add(n, Ordering::Relaxed);
    }
    fn response(rejected: i64, message: String) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message: message,
            }),
        }
    }
}

impl Signal for ExportMetricsServiceRequest {
    const NAME: &'static str = "metrics";
    const REJECTED_FIELD: &'static str = "rejectedDataPoints";
    type Response = ExportMetricsServiceResponse;
    fn json(body: &[u8]) -> std::result::Result<Self, String> {
        json::metrics(body)
    }
    fn map(&self, mapper: &map::Mapper<'_>) -> map::Mapped {
        map::metrics(mapper, self)
    }
    fn count(shared: &Shared, n: u64) {
        shared.counters.metric_points.fetch_add(n, Ordering::Relaxed);
    }
    fn response(rejected: i64, message: String) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message: message,
            }),
        }
    }
}

async fn traces(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: BodyResult,
) -> Response {
    handle::<ExportTraceServiceRequest>(shared, headers, body).await
}

async fn logs(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: BodyResult) -> Response {
    handle::<ExportLogsServiceRequest>(shared, headers, body).await
}

async fn metrics(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: BodyResult,
) -> Response {
    handle::<ExportMetricsServiceRequest>(shared, headers, body).await
}

type BodyResult = std::result::Result<Bytes, axum::extract::rejection::BytesRejection>;

fn encoding_of(headers: &HeaderMap) -> Option<Encoding> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media = value.split(';').next()?.trim().to_ascii_lowercase();
    match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
        "application/json" => Some(Encoding::Json),
        _ => None,
    }
}

/// The body, decompressed when it is gzip, at most `limit` bytes.
fn decompress(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
) -> std::result::Result<Bytes, Refusal> {
    let coding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match coding.as_deref() {
        None | Some("" | "identity") => Ok(body),
        Some("gzip") => {
            use std::io::Read as _;
            let mut out = Vec::new();
            let mut reader = flate2::read::GzDecoder::new(&body[..]).take(limit as u64 + 1);
            reader.read_to_end(&mut out).map_err(|e| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!("the gzip body does not decompress: {e}"),
                )
            })?;
            if out.len() > limit {
                return Err(Refusal::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the body decompresses to more than {limit} bytes"),
                ));
            }
            Ok(Bytes::from(out))
        }
        Some(other) => Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {other:?} is not supported: send gzip or none"),
        )),
    }
}

async fn handle<S: Signal>(shared: Arc<Shared>, headers: HeaderMap, body: BodyResult) -> Response {
    shared.counters.requests.fetch_add(1, Ordering::Relaxed);
    let encoding = encoding_of(&headers);
    match receive::<S>(&shared, &headers, body, encoding).await {
        Ok(answer) => answer,
        Err(refusal) => refuse(&shared, refusal, encoding.unwrap_or(Encoding::Json)),
    }
}

/// Counts a refusal (whatever the transport) and keeps its reason when it is the sender's
/// fault (`400`, `413`, `415` and their gRPC codes).
fn count_refusal(shared: &Shared, refusal: &Refusal) {
    let c = &shared.counters;
    let counter = match refusal.status {
        StatusCode::BAD_REQUEST => Some(&c.malformed),
        StatusCode::PAYLOAD_TOO_LARGE => Some(&c.too_large),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(&c.unsupported),
        StatusCode::TOO_MANY_REQUESTS => Some(&c.throttled),
        StatusCode::UNAUTHORIZED => Some(&c.unauthorized),
        StatusCode::SERVICE_UNAVAILABLE => Some(&c.unavailable),
        _ => None,
    };
    if let Some(counter) = counter {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    if matches!(
        refusal.status,
        StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
    ) {
        *c.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(refusal.message.clone());
    }
}

fn refuse(shared: &Shared, refusal: Refusal, encoding: Encoding) -> Response {
    count_refusal(shared, &refusal);
    // gRPC codes: INVALID_ARGUMENT 3, RESOURCE_EXHAUSTED 8, UNAUTHENTICATED 16, UNAVAILABLE 14.
    let code = match refusal.status {
        StatusCode::TOO_MANY_REQUESTS => 8,
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        _ => 3,
    };
    let status = RpcStatus { code, message: refusal.message };
    let body = match encoding {
        Encoding::Protobuf => status.encode_to_vec(),
        Encoding::Json => serde_json::json!({"code": status.code, "message": status.message})
            .to_string()
            .into_bytes(),
    };
    let mut response = (refusal.status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(encoding.content_type()));
    if matches!(refusal.status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
        let seconds = shared.config.retry_after.as_secs().max(1);
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            headers.insert(header::RETRY_AFTER, value);
        }
    }
    if refusal.status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"mission-control\""),
        );
    }
    response
}

async fn receive<S: Signal>(
    shared: &Shared,
    headers: &HeaderMap,
    body: BodyResult,
    encoding: Option<Encoding>,
) -> std::result::Result<Response, Refusal> {
    let scope = authenticate(shared, headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()))?;
    let Some(encoding) = encoding else {
        let given =
            headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("none");
        return Err(Refusal::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {given:?} is not supported: send application/x-protobuf or application/json"
            ),
        ));
    };
    let limit = shared.config.max_body_bytes;
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {limit} bytes"),
            )
        } else {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("the body could not be read: {rejection}"),
            )
        }
    })?;
    let body = decompress(headers, body, limit)?;
    let request = match encoding {
        Encoding::Protobuf => S::decode(&body[..]).map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("the {} request is not valid protobuf: {e}", S::NAME),
            )
        })?,
        Encoding::Json => S::json(&body).map_err(|e| {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                format!("the {} request is not valid OTLP/JSON: {e}", S::NAME),
            )
        })?,
    };
    let (rejected, message) = accept(shared, request, scope.as_deref()).await?;
    let body = S::answer(rejected, message, encoding);
    Ok(([(header::CONTENT_TYPE, encoding.content_type())], body).into_response())
}

/// Who sends: the tenant a presented `Authorization` value (`Bearer TOKEN`) may send for
/// (`None`: every tenant). With no tokens configured (loopback only) anyone may, for every
/// tenant.
fn authenticate(
    shared: &Shared,
    authorization: Option<&[u8]>,
) -> std::result::Result<Option<String>, Refusal> {
    if shared.tokens.is_empty() {
        return Ok(None);
    }
    let presented =
        authorization.and_then(|v| v.strip_prefix(b"Bearer ".as_slice())).unwrap_or_default();
    match authorize(&shared.tokens, presented) {
        Some(access) => Ok(access.tenant),
        None => Err(Refusal::new(StatusCode::UNAUTHORIZED, "a valid bearer token is required")),
    }
}

/// The one path of a decoded request, whatever its transport: maps it, waits until every
/// event of it is in the recorder (or refuses it whole), counts it, and returns what its
/// `partial_success` reports (refused items and why).
async fn accept<S: Signal>(
    shared: &Shared,
    request: S,
    scope: Option<&str>,
) -> std::result::Result<(i64, String), Refusal> {
    let mapper =
        map::Mapper { default_tenant: shared.target.tenant, scope, price: &*shared.target.price };
    let mapped = request.map(&mapper);
    drop(request);
    let n = mapped.events.len();
    if n > shared.config.queue_capacity {
        return Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{n} items are more than the receiver's queue holds ({}): send smaller batches",
                shared.config.queue_capacity
            ),
        ));
    }
    if n > 0 {
        let permits = u32::try_from(n).unwrap_or(u32::MAX);
        let Ok(permit) = shared.permits.clone().try_acquire_many_owned(permits) else {
            return Err(Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "the receiver's queue is full: retry after the time given",
            ));
        };
        let (done, recorded) = oneshot::channel();
        let sent = shared
            .batches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Batch { events: mapped.events, done, _permit: permit })
            .is_ok();
        if !sent || recorded.await != Ok(true) {
            return Err(Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the receiver is shutting down",
            ));
        }
        S::count(shared, n as u64);
    }
    if mapped.rejected > 0 {
        shared.counters.rejected_items.fetch_add(mapped.rejected.unsigned_abs(), Ordering::Relaxed);
    }
    Ok((mapped.rejected, mapped.message.unwrap_or_default()))
}
