//! How an [`OtlpSink`](super::OtlpSink)'s batches reach the backend: one queue and one thread
//! per signal, what each answer of the backend means (exported, partly rejected, rejected for
//! good, try again later), and the exact counters health reads.
//!
//! What an answer means follows the OTLP specification and what real backends send:
//!
//! | answer | meaning |
//! |---|---|
//! | 2xx | exported; a `partial_success` in the body counts its `rejected_*` items as rejected |
//! | 408, 5xx, no answer (connection refused, timeout, TLS failure) | retried with exponential backoff (100 ms doubling to 5 s) until the retry window ends |
//! | 429, 503 with `Retry-After` (seconds or an HTTP date) | retried after that delay (capped at the retry window) |
//! | 413 Payload Too Large | the batch is split in halves, each sent on its own (recursively, down to one item); a single item answered 413 is rejected for good (a metrics export, which is not queued, is rejected) |
//! | any other 4xx (400, 401, 403, 404, 405...) | rejected for good: the batch is counted as rejected with the status, not retried |
//! | gRPC `InvalidArgument`, `NotFound`, `AlreadyExists`, `PermissionDenied`, `FailedPrecondition`, `Unimplemented`, `Unauthenticated` | rejected for good |
//! | any other gRPC code | retried |

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use opentelemetry_http::HttpClient;

use super::spill::{Head, Spill};

/// First delay before retrying a failed batch; it doubles up to [`MAX_BACKOFF`].
const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// Longest delay between two attempts without a `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Most bytes of an answer's body kept to read a partial success or an error text from.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The three OTLP signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// Spans (`/v1/traces`).
    Traces,
    /// Log records (`/v1/logs`).
    Logs,
    /// Metric data points (`/v1/metrics`).
    Metrics,
}

impl Signal {
    /// What one item of this signal is called.
    pub(crate) fn items(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Logs => "log records",
            Signal::Metrics => "data points",
        }
    }
}

/// Exact counters of one signal's exporter. For spans and log records,
/// `queued + exported + rejected + dropped_queue_full + dropped_retry_expired +
/// dropped_at_shutdown == accepted` once idle; with a spill (spans only),
/// `queued + spill_queued_spans + exported + rejected + dropped_queue_full +
/// dropped_retry_expired + dropped_at_shutdown + dropped_spill_full + dropped_spill_error ==
/// accepted + spill_recovered` (a torn record's spans are not known, so not counted). Metric data points are not queued: a failed
/// export is not retried (the next export carries the cumulative totals again), so for metrics
/// `accepted` counts the points of every export attempted.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OtlpStats {
    /// Whether this signal is exported at all (see [`OtlpConfig::traces`](super::OtlpConfig::traces)).
    pub enabled: bool,
    /// Items handed to the exporter.
    pub accepted: u64,
    /// Items the backend acknowledged.
    pub exported: u64,
    /// Items waiting in the queue or in the batch being sent.
    pub queued: u64,
    /// Items the backend refused for good: a whole batch answered with a permanent error (a
    /// 4xx other than 408 and 429, or a permanent gRPC code), or the `rejected_*` count of an
    /// OTLP partial success.
    pub rejected: u64,
    /// Items dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Items dropped because their batch kept failing for the whole retry window.
    pub dropped_retry_expired: u64,
    /// Items dropped at shutdown because the backend was failing (shutdown does not wait for
    /// it; see [`OtlpConfig::flush_timeout`](super::OtlpConfig::flush_timeout)).
    pub dropped_at_shutdown: u64,
    /// Spans written to the disk spill because the backend did not take them (see
    /// [`OtlpConfig::spill_dir`](super::OtlpConfig::spill_dir)); 0 without a spill.
    pub spilled: u64,
    /// Spans read back from the spill and sent again (oldest first).
    pub replayed: u64,
    /// Batches waiting in the spill.
    pub spill_queued: u64,
    /// Spans in the batches waiting in the spill.
    pub spill_queued_spans: u64,
    /// Bytes of the spill's segment files.
    pub spill_bytes: u64,
    /// Spans found in the spill when the exporter started (left by an earlier one, replayed
    /// first).
    pub spill_recovered: u64,
    /// Spans of the oldest spilled batches dropped to make room when the spill was full (and
    /// of a batch larger than the whole spill).
    pub dropped_spill_full: u64,
    /// Spans lost because the spill could not be written or read back (the error is in
    /// `last_error`).
    pub dropped_spill_error: u64,
    /// Records of the spill found torn (cut short when a process was killed while writing)
    /// or corrupt; skipped.
    pub spill_torn_records: u64,
    /// Export requests that failed or were rejected (each retry counts).
    pub failed_requests: u64,
    /// Requests answered 429 or 503 with a `Retry-After` that was honoured.
    pub throttled_requests: u64,
    /// Answers carrying an OTLP partial success (some items rejected, or a warning).
    pub partial_successes: u64,
    /// Requests answered 413 Payload Too Large whose batch was split in halves and sent again
    /// (also counted in `failed_requests`).
    pub split_requests: u64,
    /// The last export error.
    pub last_error: Option<String>,
    /// The last rejection: the status and what the backend said (`HTTP 405 Method Not
    /// Allowed`, `partial success: 2 of 10 spans rejected: ...`).
    pub last_rejection: Option<String>,
    /// Whether the last request succeeded (a partial success counts as success).
    pub backend_up: bool,
    /// `false` while the last request failed, and once anything was dropped (or a torn
    /// spill record found).
    pub healthy: bool,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    exported: AtomicU64,
    rejected: AtomicU64,
    pub(crate) dropped_queue_full: AtomicU64,
    dropped_retry_expired: AtomicU64,
    dropped_at_shutdown: AtomicU64,
    spilled: AtomicU64,
    replayed: AtomicU64,
    spill_queued: AtomicU64,
    spill_queued_spans: AtomicU64,
    spill_bytes: AtomicU64,
    pub(crate) spill_recovered: AtomicU64,
    dropped_spill_full: AtomicU64,
    dropped_spill_error: AtomicU64,
    pub(crate) spill_torn_records: AtomicU64,
    failed_requests: AtomicU64,
    /// Failed requests that will be retried (a flush stops waiting on them).
    retryable_failures: AtomicU64,
    throttled_requests: AtomicU64,
    partial_successes: AtomicU64,
    split_requests: AtomicU64,
    in_batch: AtomicU64,
    backend_up: AtomicBool,
    last_error: Mutex<Option<String>>,
    last_rejection: Mutex<Option<String>>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Counters {
    /// Counts what `outcome` says about a request carrying `n` items; returns when to retry
    /// (`Some(None)`: with backoff, `Some(Some(d))`: after `d`), `None` when done with it.
    fn record(&self, signal: Signal, n: u64, outcome: Outcome) -> Option<Option<Duration>> {
        match outcome {
            Outcome::Exported { rejected, message } => {
                let rejected = rejected.min(n);
                self.exported.fetch_add(n - rejected, Ordering::AcqRel);
                if rejected > 0 || message.is_some() {
                    self.rejected.fetch_add(rejected, Ordering::AcqRel);
                    self.partial_successes.fetch_add(1, Ordering::Relaxed);
                    let mut text =
                        format!("partial success: {rejected} of {n} {} rejected", signal.items());
                    if let Some(m) = message {
                        text.push_str(": ");
                        text.push_str(&m);
                    }
                    *lock(&self.last_rejection) = Some(text);
                }
                self.backend_up.store(true, Ordering::Release);
                None
            }
            Outcome::Rejected { why } | Outcome::TooLarge { why } => {
                self.rejected.fetch_add(n, Ordering::AcqRel);
                self.failed(why.clone());
                *lock(&self.last_rejection) = Some(why);
                None
            }
            Outcome::Retry { after, why } => {
                self.failed(why);
                self.retryable_failures.fetch_add(1, Ordering::AcqRel);
                if after.is_some() {
                    self.throttled_requests.fetch_add(1, Ordering::Relaxed);
                }
                Some(after)
            }
        }
    }

    fn failed(&self, why: String) {
        self.failed_requests.fetch_add(1, Ordering::AcqRel);
        self.backend_up.store(false, Ordering::Release);
        *lock(&self.last_error) = Some(why);
    }

    fn stats(&self, enabled: bool, queued: u64) -> OtlpStats {
        let l = |a: &AtomicU64| a.load(Ordering::Acquire);
        let failed_requests = l(&self.failed_requests);
        let backend_up = self.backend_up.load(Ordering::Acquire);
        let (dropped_queue_full, dropped_retry_expired, dropped_at_shutdown) = (
            l(&self.dropped_queue_full),
            l(&self.dropped_retry_expired),
            l(&self.dropped_at_shutdown),
        );
        let (dropped_spill_full, dropped_spill_error, spill_torn_records) = (
            l(&self.dropped_spill_full),
            l(&self.dropped_spill_error),
            l(&self.spill_torn_records),
        );
        OtlpStats {
            enabled,
            accepted: l(&self.accepted),
            exported: l(&self.exported),
            queued,
            rejected: l(&self.rejected),
            dropped_queue_full,
            dropped_retry_expired,
            dropped_at_shutdown,
            spilled: l(&self.spilled),
            replayed: l(&self.replayed),
            spill_queued: l(&self.spill_queued),
            spill_queued_spans: l(&self.spill_queued_spans),
            spill_bytes: l(&self.spill_bytes),
            spill_recovered: l(&self.spill_recovered),
            dropped_spill_full,
            dropped_spill_error,
            spill_torn_records,
            failed_requests,
            throttled_requests: l(&self.throttled_requests),
            partial_successes: l(&self.partial_successes),
            split_requests: l(&self.split_requests),
            last_error: lock(&self.last_error).clone(),
            last_rejection: lock(&self.last_rejection).clone(),
            backend_up,
            healthy: !enabled
                || ((backend_up || failed_requests == 0)
                    && dropped_queue_full == 0
                    && dropped_retry_expired == 0
                    && dropped_at_shutdown == 0
                    && dropped_spill_full == 0
                    && dropped_spill_error == 0
                    && spill_torn_records == 0),
        }
    }
}

/// What one export attempt came to.
#[derive(Debug, PartialEq)]
pub(crate) enum Outcome {
    /// Accepted; `rejected` of its items were refused by an OTLP partial success (with the
    /// backend's message, if it gave one).
    Exported { rejected: u64, message: Option<String> },
    /// Refused for good: counted as rejected, not retried.
    Rejected { why: String },
    /// 413 Payload Too Large: a batch of several items is split in halves and sent again; a
    /// single item is rejected (counted like [`Rejected`](Outcome::Rejected)).
    TooLarge { why: String },
    /// Failed for now: retried after `after` when the backend said so, else with backoff.
    Retry { after: Option<Duration>, why: String },
}

/// What the backend answered the last OTLP/HTTP request, as the client saw it (the exporter
/// keeps only "HTTP export failed with status code: 405", or "network error").
#[derive(Debug, Default)]
pub(crate) struct Answer {
    status: Option<u16>,
    retry_after: Option<Duration>,
    body: Option<bytes::Bytes>,
    /// Why the request got no answer, with every cause (an untrusted certificate, a refused
    /// connection).
    cause: Option<String>,
}

/// Where an [`ObservingClient`] leaves each answer for its exporter's caller.
pub(crate) type AnswerSlot = Arc<Mutex<Answer>>;

/// The blocking `reqwest` client the OTLP/HTTP exporters use, keeping each answer's status,
/// `Retry-After` and body (or the failure's causes) for [`classify_http`].
#[derive(Debug)]
pub(crate) struct ObservingClient {
    pub(crate) client: reqwest::blocking::Client,
    pub(crate) answer: AnswerSlot,
}

#[async_trait::async_trait]
impl HttpClient for ObservingClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let result = self.client.send_bytes(request).await;
        let answer = match &result {
            Ok(response) => Answer {
                status: Some(response.status().as_u16()),
                retry_after: response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, std::time::SystemTime::now())),
                body: Some(response.body().slice(..response.body().len().min(MAX_ANSWER_BYTES))),
                cause: None,
            },
            Err(e) => Answer {
                cause: Some(crate::tls::error_with_causes(e.as_ref())),
                ..Answer::default()
            },
        };
        *lock(&self.answer) = answer;
        result
    }
}

/// Longest `Retry-After` kept (the longest [`retry_window`](super::OtlpConfig::retry_window));
/// the worker also never waits past the batch's retry window.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// A `Retry-After` (RFC 9110 §10.2.3) as the delay to wait: delay-seconds (`120`) or an
/// HTTP-date (`Wed, 21 Oct 2026 07:28:00 GMT`, also the obsolete RFC 850 and asctime forms),
/// counted from `now`; a date already past is no delay. At most [`MAX_RETRY_AFTER`]; `None`
/// for anything else (the backoff applies).
fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// The outcome of one OTLP/HTTP export: the exporter's `result` and the `answer` the client
/// kept (taken from its slot).
pub(crate) fn classify_http(
    signal: Signal,
    result: Result<(), String>,
    slot: &AnswerSlot,
) -> Outcome {
    let answer = std::mem::take(&mut *lock(slot));
    match (result, answer.status) {
        (Ok(()), _) => {
            let (rejected, message) =
                answer.body.as_deref().map(|b| partial_success(signal, b)).unwrap_or((0, None));
            Outcome::Exported { rejected, message }
        }
        (Err(error), Some(status)) => {
            let reason = http::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            let mut why = format!("HTTP {status} {reason}").trim_end().to_owned();
            if let Some(text) = answer.body.as_deref().and_then(body_text) {
                why.push_str(": ");
                why.push_str(&text);
            }
            match status {
                408 | 429 => Outcome::Retry {
                    after: if status == 429 { answer.retry_after } else { None },
                    why,
                },
                413 => Outcome::TooLarge { why },
                400..=499 => Outcome::Rejected { why },
                503 => Outcome::Retry { after: answer.retry_after, why },
                _ => Outcome::Retry { after: None, why: format!("{why} ({error})") },
            }
        }
        (Err(error), None) => Outcome::Retry {
            after: None,
            why: match answer.cause {
                Some(cause) => format!("{error} ({cause})"),
                None => error,
            },
        },
    }
}

/// The outcome of one OTLP/gRPC export, from the exporter's error text ("... export failed
/// with gRPC code: Unimplemented"): the codes the OTLP specification calls permanent are
/// rejections, every other failure is retried. A gRPC partial success is logged by the
/// exporter, not counted (it does not hand the response over; see the [module
/// docs](super#behaving-with-real-backends)).
pub(crate) fn classify_grpc(result: Result<(), String>) -> Outcome {
    const PERMANENT: [&str; 7] = [
        "InvalidArgument",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "FailedPrecondition",
        "Unimplemented",
        "Unauthenticated",
    ];
    match result {
        Ok(()) => Outcome::Exported { rejected: 0, message: None },
        Err(why) => {
            let code = why.split_once("gRPC code: ").map(|(_, rest)| {
                rest.split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("")
            });
            if code.is_some_and(|c| PERMANENT.contains(&c)) {
                Outcome::Rejected { why }
            } else {
                Outcome::Retry { after: None, why }
            }
        }
    }
}

/// A short, printable excerpt of an error answer's body (Phoenix answers 405 with a text).
fn body_text(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.is_empty() || text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return None;
    }
    Some(text.chars().take(200).collect())
}

/// The `partial_success` of an OTLP/HTTP export response: (items rejected, the backend's
/// message). A body that does not decode is no partial success.
fn partial_success(signal: Signal, body: &[u8]) -> (u64, Option<String>) {
    use opentelemetry_proto::tonic::collector::{
        logs::v1::ExportLogsServiceResponse, metrics::v1::ExportMetricsServiceResponse,
        trace::v1::ExportTraceServiceResponse,
    };
    use prost::Message;
    let (rejected, message) = match signal {
        Signal::Traces => ExportTraceServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_spans, p.error_message)),
        Signal::Logs => ExportLogsServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_log_records, p.error_message)),
        Signal::Metrics => ExportMetricsServiceResponse::decode(body)
            .ok()
            .and_then(|r| r.partial_success)
            .map(|p| (p.rejected_data_points, p.error_message)),
    }
    .unwrap_or_default();
    let message = (!message.is_empty()).then(|| message.chars().take(500).collect());
    (u64::try_from(rejected).unwrap_or(0), message)
}

/// The timing settings a worker follows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timing {
    pub(crate) batch_size: usize,
    pub(crate) batch_delay: Duration,
    pub(crate) retry_window: Duration,
}

/// Why a flush returned with items still pending.
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) items: u64,
    pub(crate) why: Option<String>,
}

/// One signal's export queue, shared by the sink (producer), its exporter thread and readers.
pub(crate) struct Shared<T> {
    signal: Signal,
    enabled: bool,
    queue: Mutex<VecDeque<T>>,
    /// The worker waits on it (for items, for the end of a backoff).
    wake: Condvar,
    /// Flushers and shutdown wait on it (for progress).
    idle: Condvar,
    closing: AtomicBool,
    /// Send what is queued without waiting for a full batch.
    flush_requested: AtomicBool,
    /// Bumped by every flush: cuts a backoff short (not a `Retry-After`).
    flush_generation: AtomicU64,
    /// The worker is waiting out a `Retry-After`.
    throttled: AtomicBool,
    /// The worker thread has returned (or never started).
    exited: AtomicBool,
    pub(crate) counters: Counters,
}

impl<T> Shared<T> {
    pub(crate) fn new(signal: Signal, enabled: bool) -> Self {
        Self {
            signal,
            enabled,
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            idle: Condvar::new(),
            closing: AtomicBool::new(false),
            flush_requested: AtomicBool::new(false),
            flush_generation: AtomicU64::new(0),
            throttled: AtomicBool::new(false),
            exited: AtomicBool::new(!enabled),
            counters: Counters::default(),
        }
    }

    pub(crate) fn signal(&self) -> Signal {
        self.signal
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    pub(crate) fn stats(&self) -> OtlpStats {
        let queued =
            lock(&self.queue).len() as u64 + self.counters.in_batch.load(Ordering::Acquire);
        self.counters.stats(self.enabled, queued)
    }

    /// Counts the outcome of one request of `n` items (for exporters without a queue).
    pub(crate) fn record(&self, n: u64, outcome: Outcome) -> Option<Option<Duration>> {
        let retry = self.counters.record(self.signal, n, outcome);
        self.idle.notify_all();
        retry
    }

    /// Queues `items`, dropping (and counting) what does not fit.
    pub(crate) fn enqueue(
        &self,
        items: impl ExactSizeIterator<Item = T>,
        capacity: usize,
        batch_size: usize,
    ) {
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

    /// Waits until every queued item was exported or rejected, and returns `Ok`. Returns
    /// early with what is still pending when an export attempt failed (in a way worth
    /// retrying) after the flush began,
    /// when the worker is waiting out a `Retry-After`, or at `deadline`: a failing exporter is
    /// not waited on.
    pub(crate) fn flush(&self, deadline: Instant) -> Result<(), Pending> {
        let c = &self.counters;
        let failures_before = c.retryable_failures.load(Ordering::Acquire);
        self.flush_requested.store(true, Ordering::Release);
        self.flush_generation.fetch_add(1, Ordering::AcqRel);
        self.wake.notify_all();
        let mut queue = lock(&self.queue);
        loop {
            let pending = queue.len() as u64
                + c.in_batch.load(Ordering::Acquire)
                + c.spill_queued_spans.load(Ordering::Acquire);
            if pending == 0 {
                return Ok(());
            }
            let now = Instant::now();
            if c.retryable_failures.load(Ordering::Acquire) > failures_before
                || self.throttled.load(Ordering::Acquire)
                || self.exited.load(Ordering::Acquire)
                || now >= deadline
            {
                return Err(Pending { items: pending, why: lock(&c.last_error).clone() });
            }
            self.wake.notify_all();
            queue = self
                .idle
                .wait_timeout(queue, (deadline - now).min(Duration::from_millis(50)))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Tells the worker to send what is left and stop; it stops retrying a failing backend.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.wake.notify_all();
    }

    /// Waits until the worker has returned or `deadline` passes; whether it returned.
    pub(crate) fn wait_exited(&self, deadline: Instant) -> bool {
        let mut queue = lock(&self.queue);
        loop {
            if self.exited.load(Ordering::Acquire) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            queue = self
                .idle
                .wait_timeout(queue, (deadline - now).min(Duration::from_millis(50)))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Waits `delay` before a retry: a flush cuts a backoff short (not a `Retry-After`), a
    /// close cuts either.
    fn pause(&self, delay: Duration, throttled: bool) {
        let until = Instant::now() + delay;
        let generation = self.flush_generation.load(Ordering::Acquire);
        self.throttled.store(throttled, Ordering::Release);
        self.idle.notify_all();
        let mut queue = lock(&self.queue);
        while !self.closing.load(Ordering::Acquire)
            && (throttled || self.flush_generation.load(Ordering::Acquire) == generation)
        {
            let now = Instant::now();
            if now >= until {
                break;
            }
            queue = self
                .wake
                .wait_timeout(queue, until - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        self.throttled.store(false, Ordering::Release);
    }

    fn exit(&self) {
        self.exited.store(true, Ordering::Release);
        let _guard = lock(&self.queue);
        self.idle.notify_all();
    }
}

/// The export function a worker thread calls for one batch.
pub(crate) type ExportFn<'r, T> = Box<dyn Fn(Vec<T>) -> Outcome + 'r>;

/// The exporter thread: batches, sends, retries what may succeed later, counts everything.
/// With a `spill`, a batch the backend does not take goes to the spill instead of being
/// retried in memory (see [`run_spilling_worker`]).
pub(crate) fn run_worker<T: Clone>(
    timing: Timing,
    shared: &Shared<T>,
    export: ExportFn<'_, T>,
    spill: Option<SpillWorker<T>>,
) {
    if let Some(spill) = spill {
        return run_spilling_worker(timing, shared, export, spill);
    }
    let c = &shared.counters;
    loop {
        let batch: Vec<T> = {
            let mut queue = lock(&shared.queue);
            let deadline = Instant::now() + timing.batch_delay;
            while queue.len() < timing.batch_size
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
                    drop(queue);
                    shared.exit();
                    return;
                }
                continue;
            }
            let n = queue.len().min(timing.batch_size);
            c.in_batch.store(n as u64, Ordering::Release);
            queue.drain(..n).collect()
        };
        // The batch, or the parts of it still to send after a 413 (the next one last).
        let mut parts = vec![batch];
        let started = Instant::now();
        while let Some(part) = parts.pop() {
            send_part(timing, started, shared, &export, part, &mut parts, None);
        }
        c.in_batch.store(0, Ordering::Release);
        let _guard = lock(&shared.queue);
        shared.idle.notify_all();
    }
}

/// Encodes a batch for the spill.
pub(crate) type EncodeFn<T> = Box<dyn Fn(&[T]) -> Vec<u8> + Send>;
/// Decodes a spilled batch (or says why it cannot).
pub(crate) type DecodeFn<T> = Box<dyn Fn(&[u8]) -> Result<Vec<T>, String> + Send>;

/// Encodes a batch for the spill, and decodes it back.
pub(crate) struct SpillCodec<T> {
    pub(crate) encode: EncodeFn<T>,
    pub(crate) decode: DecodeFn<T>,
}

/// A worker's spill: the directory, how its batches are encoded, and when to try the oldest
/// one again.
pub(crate) struct SpillWorker<T> {
    store: Spill,
    codec: SpillCodec<T>,
    next_replay: Instant,
    backoff: Duration,
    /// `next_replay` is the backend's `Retry-After` (a flush does not cut it short).
    retry_after: bool,
    /// The flush generation of the last replay attempt: a new flush tries again at once.
    seen_flush: u64,
}

impl<T: Clone> SpillWorker<T> {
    /// A worker's spill over `store`, counting what [`Spill::open`] found in `counters`.
    pub(crate) fn new(
        store: Spill,
        recovered: super::spill::Recovered,
        codec: SpillCodec<T>,
        counters: &Counters,
    ) -> Self {
        counters.spill_recovered.fetch_add(recovered.items, Ordering::AcqRel);
        counters.spill_torn_records.fetch_add(recovered.torn_records, Ordering::AcqRel);
        let spill = Self {
            store,
            codec,
            next_replay: Instant::now(),
            backoff: INITIAL_BACKOFF,
            retry_after: false,
            seen_flush: 0,
        };
        spill.gauges(counters);
        spill
    }

    fn gauges(&self, c: &Counters) {
        c.spill_queued.store(self.store.records(), Ordering::Release);
        c.spill_queued_spans.store(self.store.items(), Ordering::Release);
        c.spill_bytes.store(self.store.bytes(), Ordering::Release);
    }

    /// Whether to try the oldest spilled batch now: its time came, or a flush began since the
    /// last try (unless the backend asked for a delay).
    fn due(&self, shared: &Shared<T>, now: Instant) -> bool {
        !self.store.is_empty()
            && (now >= self.next_replay
                || (!self.retry_after
                    && shared.flush_generation.load(Ordering::Acquire) != self.seen_flush))
    }

    /// Writes `parts` (oldest first) to the spill, counting what is spilled, what the bound
    /// drops and what cannot be written.
    fn append(&mut self, shared: &Shared<T>, parts: impl Iterator<Item = Vec<T>>) {
        let c = &shared.counters;
        for part in parts {
            let n = part.len() as u64;
            if n == 0 {
                continue;
            }
            let payload = (self.codec.encode)(&part);
            match self.store.append(n, &payload) {
                Ok(done) => {
                    c.dropped_spill_full.fetch_add(done.dropped_items, Ordering::AcqRel);
                    if done.written {
                        c.spilled.fetch_add(n, Ordering::AcqRel);
                    } else {
                        c.dropped_spill_full.fetch_add(n, Ordering::AcqRel);
                    }
                }
                Err(e) => {
                    c.dropped_spill_error.fetch_add(n, Ordering::AcqRel);
                    *lock(&c.last_error) = Some(format!("cannot write to the spill: {e}"));
                }
            }
        }
        self.gauges(c);
        shared.idle.notify_all();
    }

    /// The backend failed: the next try after `after`, else after the backoff.
    fn schedule(&mut self, shared: &Shared<T>, after: Option<Duration>) {
        let now = Instant::now();
        self.retry_after = after.is_some();
        shared.throttled.store(self.retry_after, Ordering::Release);
        match after {
            Some(delay) => self.next_replay = now + delay,
            None => {
                self.next_replay = now + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// Takes the oldest record off the spill; the spans that were in it (0 for a record
    /// counted corrupt already).
    fn pop(&mut self) -> u64 {
        let before = self.store.items();
        self.store.pop();
        before.saturating_sub(self.store.items())
    }

    /// Sends the oldest spilled batch once: taken off the spill when the backend settled it
    /// (exported or rejected); kept, and tried again later, when it failed.
    fn replay_one(&mut self, timing: Timing, shared: &Shared<T>, export: &ExportFn<'_, T>) {
        let c = &shared.counters;
        self.seen_flush = shared.flush_generation.load(Ordering::Acquire);
        self.retry_after = false;
        shared.throttled.store(false, Ordering::Release);
        let head = match self.store.head() {
            Ok(Some(head)) => head,
            Ok(None) => return,
            Err(e) => {
                let lost = self.pop();
                c.dropped_spill_error.fetch_add(lost, Ordering::AcqRel);
                *lock(&c.last_error) = Some(format!("cannot read the spill: {e}"));
                self.gauges(c);
                return;
            }
        };
        let payload = match head {
            Head::Corrupt { counted, .. } => {
                if !counted {
                    c.spill_torn_records.fetch_add(1, Ordering::AcqRel);
                }
                let lost = self.pop();
                c.dropped_spill_error.fetch_add(lost, Ordering::AcqRel);
                self.gauges(c);
                return;
            }
            Head::Record { items, payload } => (items, payload),
        };
        let mut batch = match (self.codec.decode)(&payload.1) {
            Ok(batch) if batch.len() as u64 == payload.0 => batch,
            Ok(batch) => {
                let lost = self.pop();
                c.dropped_spill_error.fetch_add(lost, Ordering::AcqRel);
                *lock(&c.last_error) = Some(format!(
                    "a spilled batch of {} spans decoded to {}",
                    payload.0,
                    batch.len()
                ));
                self.gauges(c);
                return;
            }
            Err(e) => {
                let lost = self.pop();
                c.dropped_spill_error.fetch_add(lost, Ordering::AcqRel);
                *lock(&c.last_error) = Some(format!("cannot decode a spilled batch: {e}"));
                self.gauges(c);
                return;
            }
        };
        let n = batch.len() as u64;
        let outcome = export(batch.clone());
        if let Outcome::TooLarge { why } = &outcome
            && batch.len() > 1
        {
            // Split in halves sent from memory (with the retry window): spilled again they
            // would go behind newer batches.
            c.split_requests.fetch_add(1, Ordering::Relaxed);
            c.failed(why.clone());
            c.in_batch.fetch_add(n, Ordering::AcqRel);
            self.pop();
            c.replayed.fetch_add(n, Ordering::AcqRel);
            self.gauges(c);
            let second = batch.split_off(batch.len() / 2);
            let mut parts = vec![second, batch];
            let started = Instant::now();
            while let Some(part) = parts.pop() {
                send_part(timing, started, shared, export, part, &mut parts, None);
            }
            return;
        }
        match shared.record(n, outcome) {
            None => {
                self.pop();
                c.replayed.fetch_add(n, Ordering::AcqRel);
                self.backoff = INITIAL_BACKOFF;
                self.next_replay = Instant::now();
                self.gauges(c);
                shared.idle.notify_all();
            }
            Some(after) => self.schedule(shared, after),
        }
    }
}

/// The exporter thread with a spill: while the spill holds anything, new batches are written
/// behind it (so order is kept) and the oldest spilled batch is tried with backoff (or after
/// the backend's `Retry-After`, or at once when a flush begins); while it is empty, batches are
/// sent as without a spill, except that one the backend fails to take is spilled at once
/// instead of retried in memory. At shutdown what is in memory is spilled rather than dropped,
/// for the next exporter on the same directory.
fn run_spilling_worker<T: Clone>(
    timing: Timing,
    shared: &Shared<T>,
    export: ExportFn<'_, T>,
    mut spill: SpillWorker<T>,
) {
    let c = &shared.counters;
    let mut last_take = Instant::now();
    loop {
        let batch: Vec<T> = {
            let mut queue = lock(&shared.queue);
            loop {
                let now = Instant::now();
                let closing = shared.closing.load(Ordering::Acquire);
                let flush = shared.flush_requested.load(Ordering::Acquire);
                if queue.is_empty() {
                    last_take = now;
                    if flush || closing {
                        shared.flush_requested.store(false, Ordering::Release);
                        shared.idle.notify_all();
                        if closing {
                            drop(queue);
                            shared.exit();
                            return;
                        }
                    }
                } else if queue.len() >= timing.batch_size
                    || closing
                    || flush
                    || now >= last_take + timing.batch_delay
                {
                    break;
                }
                if !closing && spill.due(shared, now) {
                    drop(queue);
                    spill.replay_one(timing, shared, &export);
                    queue = lock(&shared.queue);
                    continue;
                }
                let mut until = last_take + timing.batch_delay.max(Duration::from_millis(1));
                if !spill.store.is_empty() && !closing {
                    until = until.min(spill.next_replay);
                }
                queue = shared
                    .wake
                    .wait_timeout(queue, until.saturating_duration_since(now))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            let n = queue.len().min(timing.batch_size);
            c.in_batch.store(n as u64, Ordering::Release);
            queue.drain(..n).collect()
        };
        last_take = Instant::now();
        if spill.store.is_empty() {
            let mut parts = vec![batch];
            let started = Instant::now();
            while let Some(part) = parts.pop() {
                send_part(timing, started, shared, &export, part, &mut parts, Some(&mut spill));
            }
        } else {
            spill.append(shared, std::iter::once(batch));
        }
        c.in_batch.store(0, Ordering::Release);
        let _guard = lock(&shared.queue);
        shared.idle.notify_all();
    }
}

/// Sends one batch (or part of one), retrying it while that may succeed, until the retry
/// window of the batch (which began at `started`) ends; a part answered 413 is split in halves
/// pushed onto `parts` (first half on top). Counts what it settles and takes it off `in_batch`.
/// With a `spill`, a part that fails is spilled at once with every part still to send.
fn send_part<T: Clone>(
    timing: Timing,
    started: Instant,
    shared: &Shared<T>,
    export: &ExportFn<'_, T>,
    mut part: Vec<T>,
    parts: &mut Vec<Vec<T>>,
    mut spill: Option<&mut SpillWorker<T>>,
) {
    let c = &shared.counters;
    let n = part.len() as u64;
    let mut backoff = INITIAL_BACKOFF;
    loop {
        let outcome = export(part.clone());
        if let Outcome::TooLarge { why } = &outcome
            && part.len() > 1
        {
            c.split_requests.fetch_add(1, Ordering::Relaxed);
            c.failed(why.clone());
            shared.idle.notify_all();
            let second = part.split_off(part.len() / 2);
            parts.push(second);
            parts.push(part);
            return;
        }
        let Some(after) = shared.record(n, outcome) else { break };
        if let Some(spill) = spill.as_deref_mut() {
            // The backend is failing: this part, then the others in the order they would
            // have gone, wait in the spill (even at shutdown, for the next exporter).
            let rest: Vec<Vec<T>> = parts.drain(..).rev().collect();
            spill.append(shared, std::iter::once(part).chain(rest));
            spill.schedule(shared, after);
            c.in_batch.store(0, Ordering::Release);
            return;
        }
        if shared.closing.load(Ordering::Acquire) {
            // Shutting down against a failing backend: what is left is dropped, counted.
            let mut queue = lock(&shared.queue);
            let left =
                n + parts.drain(..).map(|p| p.len() as u64).sum::<u64>() + queue.len() as u64;
            queue.clear();
            c.dropped_at_shutdown.fetch_add(left, Ordering::AcqRel);
            break;
        }
        let remaining = timing.retry_window.saturating_sub(started.elapsed());
        if remaining.is_zero() {
            c.dropped_retry_expired.fetch_add(n, Ordering::AcqRel);
            break;
        }
        match after {
            Some(delay) => shared.pause(delay.min(remaining), true),
            None => {
                shared.pause(backoff.min(remaining), false);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    let _ =
        c.in_batch.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.saturating_sub(n)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, retry_after: Option<u64>, body: &[u8]) -> AnswerSlot {
        Arc::new(Mutex::new(Answer {
            status: Some(status),
            retry_after: retry_after.map(Duration::from_secs),
            body: Some(bytes::Bytes::copy_from_slice(body)),
            cause: None,
        }))
    }

    #[test]
    fn a_4xx_other_than_408_and_429_is_permanent() {
        for status in [400, 401, 403, 404, 405, 415] {
            let slot = answered(status, None, b"Method Not Allowed");
            let outcome = classify_http(Signal::Logs, Err("failed".into()), &slot);
            let Outcome::Rejected { why } = outcome else { panic!("{status}: {outcome:?}") };
            assert!(why.starts_with(&format!("HTTP {status}")), "{why}");
        }
        let slot = answered(413, None, b"");
        let outcome = classify_http(Signal::Traces, Err("failed".into()), &slot);
        assert!(matches!(&outcome, Outcome::TooLarge { why } if why.starts_with("HTTP 413")));
        for status in [408, 429, 500, 502, 503, 504] {
            let slot = answered(status, None, b"");
            let outcome = classify_http(Signal::Traces, Err("failed".into()), &slot);
            assert!(matches!(outcome, Outcome::Retry { after: None, .. }), "{status}: {outcome:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_on_429_and_503_only() {
        for (status, expected) in [(429, Some(7)), (503, Some(7)), (502, None), (408, None)] {
            let slot = answered(status, Some(7), b"");
            let outcome = classify_http(Signal::Traces, Err("failed".into()), &slot);
            let Outcome::Retry { after, .. } = outcome else { panic!("{outcome:?}") };
            assert_eq!(after, expected.map(Duration::from_secs), "{status}");
        }
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date_and_capped() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").expect("a date");
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(parse_retry_after(" 12 ", now), secs(12));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:28:30 GMT", now), secs(30));
        // RFC 850 and asctime, which a recipient must read too.
        assert_eq!(parse_retry_after("Wednesday, 21-Oct-26 07:29:00 GMT", now), secs(60));
        assert_eq!(parse_retry_after("Wed Oct 21 07:28:05 2026", now), secs(5));
        // A date in the past is no delay; a far one, or a huge number, is capped.
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), secs(0));
        assert_eq!(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("99999999999", now), Some(MAX_RETRY_AFTER));
        for bad in ["", "soon", "-5", "1.5", "Wed, 32 Oct 2026 07:28:00 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn a_partial_success_is_read_from_the_answer() {
        use opentelemetry_proto::tonic::collector::trace::v1::{
            ExportTracePartialSuccess, ExportTraceServiceResponse,
        };
        use prost::Message;
        let body = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 2,
                error_message: "2 spans had no name".into(),
            }),
        }
        .encode_to_vec();
        let slot = answered(200, None, &body);
        let outcome = classify_http(Signal::Traces, Ok(()), &slot);
        assert_eq!(
            outcome,
            Outcome::Exported { rejected: 2, message: Some("2 spans had no name".into()) }
        );
        let empty = answered(200, None, b"");
        assert_eq!(
            classify_http(Signal::Traces, Ok(()), &empty),
            Outcome::Exported { rejected: 0, message: None }
        );
    }

    #[test]
    fn grpc_codes_the_specification_calls_permanent_are_rejections() {
        let err =
            |code: &str| Err(format!("TonicTracesClient export failed with gRPC code: {code}"));
        assert!(matches!(classify_grpc(err("Unimplemented")), Outcome::Rejected { .. }));
        assert!(matches!(classify_grpc(err("InvalidArgument: bad")), Outcome::Rejected { .. }));
        assert!(matches!(classify_grpc(err("Unavailable")), Outcome::Retry { .. }));
        assert!(matches!(classify_grpc(err("ResourceExhausted")), Outcome::Retry { .. }));
    }
}
