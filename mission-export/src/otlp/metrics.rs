//! The GenAI client metrics an [`OtlpSink`](super::OtlpSink) exports
//! (`gen_ai.client.token.usage`, `gen_ai.client.operation.duration`): aggregated by the
//! OpenTelemetry SDK, exported periodically through an exporter that counts what each export
//! came to, and the bounded wait the sink's flush and shutdown use on them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mission_core::{Event, SpanKind as Kind};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, MeterProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};

use super::delivery::{AnswerSlot, Outcome, Shared, Signal, classify_grpc, classify_http, lock};
use super::{OtlpConfig, OtlpProtocol, semconv, signal_exporter};

/// The GenAI client metrics (semconv 1.37), aggregated by the SDK and exported periodically.
pub(super) struct GenAiMetrics {
    pub(super) provider: SdkMeterProvider,
    tokens: Histogram<u64>,
    duration: Histogram<f64>,
}

impl GenAiMetrics {
    pub(super) fn record(&self, event: &Event) {
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

impl GenAiMetrics {
    /// Registers the accounting instruments, observed at each export: the exporter's own
    /// counters from `stats`, the recorder's once `stats` knows it (see
    /// [`OtlpStatsReader::observe_recorder`](super::OtlpStatsReader::observe_recorder)).
    pub(super) fn observe_health(&self, stats: super::OtlpStatsReader) {
        let meter = self.provider.meter("mission-control");
        let health = {
            let stats = stats.clone();
            move || {
                stats
                    .recorder
                    .get()
                    .and_then(mission_core::WeakRecorder::upgrade)
                    .map(|r| r.health())
            }
        };
        type Observe = fn(&mission_core::Health) -> Vec<(u64, Vec<KeyValue>)>;
        // (name, description, a counter (else a gauge), what to observe)
        let recorder: [(&'static str, &'static str, bool, Observe); 7] = [
            ("mission.events.recorded", "Events recorded", true, |h| {
                vec![(h.accounting.recorded, vec![])]
            }),
            ("mission.events.delivered", "Events handed to every sink", true, |h| {
                vec![(h.accounting.delivered, vec![])]
            }),
            ("mission.events.dropped", "Events dropped, by reason", true, |h| {
                let a = &h.accounting;
                [
                    ("buffer_full", a.dropped_buffer_full),
                    ("block_timeout", a.dropped_block_timeout),
                    ("after_shutdown", a.dropped_after_shutdown),
                    ("thread_exit", a.dropped_thread_exit),
                ]
                .into_iter()
                .map(|(reason, n)| (n, vec![KeyValue::new("reason", reason)]))
                .collect()
            }),
            (
                "mission.events.in_flight",
                "Events in a buffer or being handed to sinks",
                false,
                |h| vec![(h.accounting.in_flight, vec![])],
            ),
            ("mission.sink.events", "Events delivered to the sink", true, |h| {
                h.sinks
                    .iter()
                    .map(|s| (s.events, vec![KeyValue::new("sink", s.name.clone())]))
                    .collect()
            }),
            ("mission.sink.errors", "Calls of the sink that returned an error", true, |h| {
                h.sinks
                    .iter()
                    .map(|s| (s.errors, vec![KeyValue::new("sink", s.name.clone())]))
                    .collect()
            }),
            ("mission.sink.healthy", "1 while the sink's last call succeeded", false, |h| {
                h.sinks
                    .iter()
                    .map(|s| {
                        let ok = u64::from(s.state == mission_core::SinkState::Ok);
                        (ok, vec![KeyValue::new("sink", s.name.clone())])
                    })
                    .collect()
            }),
        ];
        for (name, description, counter, pick) in recorder {
            let h = health.clone();
            let observe = move |o: &dyn opentelemetry::metrics::AsyncInstrument<u64>| {
                if let Some(h) = h() {
                    for (value, attributes) in pick(&h) {
                        o.observe(value, &attributes);
                    }
                }
            };
            let unit = if name.starts_with("mission.events.") { "{event}" } else { "" };
            if counter {
                meter
                    .u64_observable_counter(name)
                    .with_unit(unit)
                    .with_description(description)
                    .with_callback(observe)
                    .build();
            } else {
                meter
                    .u64_observable_gauge(name)
                    .with_unit(unit)
                    .with_description(description)
                    .with_callback(observe)
                    .build();
            }
        }
        type Stat = fn(&super::OtlpStats) -> u64;
        let exporter: [(&'static str, &'static str, Stat); 3] = [
            ("mission.otlp.exported", "Items the backend acknowledged", |s| s.exported),
            ("mission.otlp.rejected", "Items the backend refused for good", |s| s.rejected),
            (
                "mission.otlp.dropped",
                "Items the exporter dropped (queue full, retries expired, at shutdown, spill)",
                |s| {
                    s.dropped_queue_full
                        + s.dropped_retry_expired
                        + s.dropped_at_shutdown
                        + s.dropped_spill_full
                        + s.dropped_spill_error
                },
            ),
        ];
        for (name, description, pick) in exporter {
            let stats = stats.clone();
            meter
                .u64_observable_counter(name)
                .with_description(description)
                .with_callback(move |o| {
                    for (signal, s) in [
                        ("traces", stats.stats()),
                        ("logs", stats.log_stats()),
                        ("metrics", stats.metric_stats()),
                    ] {
                        if s.enabled {
                            o.observe(pick(&s), &[KeyValue::new("signal", signal)]);
                        }
                    }
                })
                .build();
        }
    }
}

/// The OTLP metric exporter, counting what each export came to in `counters` (the periodic
/// reader only logs a failure) and skipping exports while the backend's `Retry-After` runs. A
/// failed export is not retried: the next one carries the cumulative totals again.
struct CountedMetricExporter {
    inner: opentelemetry_otlp::MetricExporter,
    /// The HTTP client's answers; `None` over gRPC.
    answer: Option<AnswerSlot>,
    counters: Arc<Shared<()>>,
    throttled_until: std::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for CountedMetricExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountedMetricExporter").finish_non_exhaustive()
    }
}

/// How many data points `metrics` holds.
fn data_points(metrics: &ResourceMetrics) -> u64 {
    fn count<T>(data: &MetricData<T>) -> usize {
        match data {
            MetricData::Gauge(g) => g.data_points().count(),
            MetricData::Sum(s) => s.data_points().count(),
            MetricData::Histogram(h) => h.data_points().count(),
            MetricData::ExponentialHistogram(e) => e.data_points().count(),
        }
    }
    let points: usize = metrics
        .scope_metrics()
        .flat_map(|s| s.metrics())
        .map(|m| match m.data() {
            AggregatedMetrics::F64(d) => count(d),
            AggregatedMetrics::U64(d) => count(d),
            AggregatedMetrics::I64(d) => count(d),
        })
        .sum();
    points as u64
}

impl PushMetricExporter for CountedMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        if let Some(until) = *lock(&self.throttled_until)
            && Instant::now() < until
        {
            return Err(OTelSdkError::InternalFailure(
                "skipped: the backend asked to retry later (Retry-After)".into(),
            ));
        }
        let n = data_points(metrics);
        self.counters.counters.accepted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        let result = self.inner.export(metrics).await.map_err(|e| e.to_string());
        let outcome = match &self.answer {
            Some(answer) => classify_http(Signal::Metrics, result, answer),
            None => classify_grpc(result),
        };
        let failure = match &outcome {
            Outcome::Exported { .. } => None,
            Outcome::Rejected { why } | Outcome::TooLarge { why } | Outcome::Retry { why, .. } => {
                Some(why.clone())
            }
        };
        if let Some(Some(after)) = self.counters.record(n, outcome) {
            *lock(&self.throttled_until) = Some(Instant::now() + after);
        }
        match failure {
            None => Ok(()),
            Some(why) => Err(OTelSdkError::InternalFailure(why)),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// Runs `work` on a thread of its own and waits for it until `deadline`; `None` if it did not
/// finish by then (it goes on, detached). Bounds the metric SDK's flush and shutdown, which
/// wait on the exporter without a limit.
pub(super) fn bounded<R: Send + 'static>(
    deadline: Instant,
    work: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("mission-otlp-bounded".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .ok()?;
    rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok()
}

impl GenAiMetrics {
    pub(super) fn new(
        config: &OtlpConfig,
        resource: Resource,
        ca: Option<&[u8]>,
        counters: Arc<Shared<()>>,
    ) -> crate::Result<(Self, Option<tokio::runtime::Runtime>)> {
        let bad = |message: String| crate::Error::Config {
            origin: "OTLP metric exporter".into(),
            message,
        };
        let answer = AnswerSlot::default();
        // Over gRPC, a runtime of its own drives the exporter's connection (the periodic
        // reader exports from its own thread); the blocking HTTP client needs none.
        let runtime = match config.protocol {
            OtlpProtocol::HttpProtobuf => None,
            OtlpProtocol::Grpc => Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("mission-otlp-metrics")
                    .enable_all()
                    .build()
                    .map_err(|source| crate::Error::Start {
                        what: "OTLP metric exporter's runtime",
                        source,
                    })?,
            ),
        };
        let exporter = signal_exporter!(
            config,
            opentelemetry_otlp::MetricExporter,
            "/v1/metrics",
            ca,
            &answer,
            runtime.as_ref().map(tokio::runtime::Runtime::enter)
        )
        .map_err(bad)?;
        let exporter = CountedMetricExporter {
            inner: exporter,
            answer: (config.protocol == OtlpProtocol::HttpProtobuf).then_some(answer),
            counters,
            throttled_until: std::sync::Mutex::new(None),
        };
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
