//! SDK benchmarks (issue 4), side by side in one run:
//!
//! 1. **Record an LLM call through the public API** (guard with usage, priced at record time)
//!    beside `tracing` + `tracing-opentelemetry` and the OpenTelemetry SDK tracer used
//!    directly, both with a batch processor and an OTLP/HTTP exporter configured, recording
//!    the same fields (model, provider, input and output tokens).
//!    Beside it, the same call in a child thread whose parent has a budget (the call charges
//!    both), and a thread started and ended, plain and as a child with a budget (issue 22:
//!    what the thread registry adds).
//! 2. **Record → live subscriber latency**: p50/p99/max from a span's end to its delivery to
//!    an in-process subscriber, at a steady 10,000 events/s.
//!
//! Run: `cargo bench -p mission-benches --bench sdk`. Results: `benches/RESULTS.md`.

use std::time::Duration;

use criterion::{Criterion, criterion_group};
use mission_benches::time_chunked;
use mission_sdk::core::Timestamp;
use mission_sdk::{EventFilter, MissionControl};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;

/// The OpenTelemetry SDK as users run it: batch processor in front of an OTLP/HTTP exporter.
/// The endpoint refuses connections, so exports fail in the background; recording is what is
/// measured.
fn otlp_provider() -> SdkTracerProvider {
    // The workspace builds reqwest on rustls without a default crypto provider (mission-sdk's
    // `tls` feature): one must be installed before any client is built.
    mission_sdk::tls::install_default_provider();
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint("http://127.0.0.1:9/v1/traces")
        .with_timeout(Duration::from_millis(100))
        .build()
        .expect("exporter");
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(4 * mission_benches::CHUNK as usize)
        .build();
    let processor = BatchSpanProcessor::builder(exporter).with_batch_config(config).build();
    SdkTracerProvider::builder().with_span_processor(processor).build()
}

fn llm_call(c: &mut Criterion) {
    let mut group = c.benchmark_group("sdk_llm_call");
    let control = MissionControl::builder()
        .ignore_environment()
        .without_store()
        .with_recorder_config(
            mission_sdk::RecorderConfig::default()
                .with_ring_capacity(2 * mission_benches::CHUNK as usize),
        )
        .build()
        .expect("build");
    let agent = control.agent("bench-agent");
    let thread = agent.thread();
    group.bench_function("mission_sdk", |b| {
        b.iter_custom(|iters| {
            time_chunked(
                iters,
                || {
                    let mut call = thread.llm_call("gpt-4o-mini", "openai");
                    call.record_usage(812, 64);
                },
                || {
                    let _ = control.flush();
                },
            )
        })
    });
    // The same call in a child thread under a budgeted parent: it charges both (the limits
    // are out of reach, so no warning is recorded).
    let budget = mission_sdk::Budget::new().with_tokens(u64::MAX / 2).expect("budget");
    let parent = agent.thread_with_budget(budget);
    let child = parent.child_thread(&agent);
    group.bench_function("mission_sdk_in_budgeted_child", |b| {
        b.iter_custom(|iters| {
            time_chunked(
                iters,
                || {
                    let mut call = child.llm_call("gpt-4o-mini", "openai");
                    call.record_usage(812, 64);
                },
                || {
                    let _ = control.flush();
                },
            )
        })
    });
    // A thread started and ended: registered, deregistered, its root span recorded.
    group.bench_function("thread_start_end", |b| {
        b.iter_custom(|iters| {
            time_chunked(
                iters,
                || agent.thread().end(),
                || {
                    let _ = control.flush();
                },
            )
        })
    });
    group.bench_function("child_thread_with_budget_start_end", |b| {
        b.iter_custom(|iters| {
            time_chunked(
                iters,
                || parent.child_thread_with_budget(&agent, budget).end(),
                || {
                    let _ = control.flush();
                },
            )
        })
    });
    drop(child);
    parent.end();
    thread.end();
    let report = control.shutdown();
    assert_eq!(report.accounting.dropped, 0, "{:?}", report.accounting);

    let provider = otlp_provider();
    let tracer = provider.tracer("bench");
    group.bench_function("opentelemetry_sdk+otlp", |b| {
        b.iter_custom(|iters| {
            time_chunked(
                iters,
                || {
                    let mut span = tracer.start("chat gpt-4o-mini");
                    span.set_attribute(KeyValue::new("gen_ai.request.model", "gpt-4o-mini"));
                    span.set_attribute(KeyValue::new("gen_ai.provider.name", "openai"));
                    span.set_attribute(KeyValue::new("gen_ai.usage.input_tokens", 812i64));
                    span.set_attribute(KeyValue::new("gen_ai.usage.output_tokens", 64i64));
                    span.end();
                },
                || {
                    let _ = provider.force_flush();
                },
            )
        })
    });
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench-tracing"));
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    group.bench_function("tracing+tracing_opentelemetry+otlp", |b| {
        tracing::dispatcher::with_default(&dispatch, || {
            b.iter_custom(|iters| {
                time_chunked(
                    iters,
                    || {
                        tracing::info_span!(
                            "chat gpt-4o-mini",
                            gen_ai.request.model = "gpt-4o-mini",
                            gen_ai.provider.name = "openai",
                            gen_ai.usage.input_tokens = 812i64,
                            gen_ai.usage.output_tokens = 64i64
                        )
                        .in_scope(|| {});
                    },
                    || {
                        let _ = provider.force_flush();
                    },
                )
            })
        });
    });
    group.finish();
    let _ = provider.shutdown();
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Record → subscriber latency at a steady rate, measured in the subscriber's thread.
fn subscriber_latency() {
    let control =
        MissionControl::builder().ignore_environment().without_store().build().expect("build");
    let subscription = control.subscribe(
        EventFilter { kinds: vec!["tool_call".into()], ..EventFilter::default() },
        100_000,
    );
    let n = 20_000usize;
    let latencies = std::thread::scope(|scope| {
        let receiver = scope.spawn(|| {
            let mut out = Vec::with_capacity(n);
            while out.len() < n {
                match subscription.recv_timeout(Duration::from_secs(5)) {
                    Some(event) => {
                        let now = Timestamp::now();
                        out.push(now.0.saturating_sub(event.end_time().0));
                    }
                    None => break,
                }
            }
            out
        });
        let agent = control.agent("latency-agent");
        let thread = agent.thread();
        let period = Duration::from_micros(100);
        let start = std::time::Instant::now();
        for i in 0..n {
            thread.tool_call("probe").end();
            let next = start + period * (i as u32 + 1);
            while std::time::Instant::now() < next {
                std::hint::spin_loop();
            }
        }
        receiver.join().expect("receiver")
    });
    let mut sorted = latencies.clone();
    sorted.sort_unstable();
    assert_eq!(sorted.len(), n, "every event reached the subscriber");
    println!(
        "sdk_latency/record_to_subscriber: {n} events at 10000/s: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        percentile(&sorted, 0.5) as f64 / 1e6,
        percentile(&sorted, 0.99) as f64 / 1e6,
        percentile(&sorted, 1.0) as f64 / 1e6
    );
}

criterion_group!(benches, llm_call);

fn main() {
    benches();
    subscriber_latency();
    Criterion::default().configure_from_args().final_summary();
}
