//! Benchmark 1: the cost an agent thread pays to record one span (start + end), with 1 and 2
//! recording threads, beside the OpenTelemetry SDK tracer and `tracing` + `tracing-opentelemetry`.
//!
//! Every variant records a span named `chat` with the same work per span. Buffers are drained
//! between timed chunks (see `time_chunked`), so the figure is the recording thread's cost with
//! room in its buffer, for Mission Control and OpenTelemetry alike. Drops are checked: the
//! bench panics if Mission Control dropped anything, so no figure is flattered by the cheaper
//! drop path.
//!
//! Run: `cargo bench -p mission-benches --bench record`. Results: `benches/RESULTS.md`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mission_benches::{otel_provider, time_chunked, time_threads};
use mission_core::{LazySymbol, Pipeline, SpanKind, Symbol, ThreadContext};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use tracing_subscriber::layer::SubscriberExt;

static CHAT: LazySymbol = LazySymbol::new("chat");

fn record_span(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_span");

    group.bench_function("baseline/no_instrumentation", |b| {
        b.iter(|| black_box(CHAT.get()));
    });

    // Mission Control: one pipeline with no sinks (draining is what is being paid for elsewhere).
    let pipeline = Pipeline::builder()
        .with_ring_capacity(2 * mission_benches::CHUNK as usize)
        .start()
        .expect("start");
    let recorder = pipeline.recorder();
    let thread = ThreadContext::new(Symbol::intern("bench"), Symbol::intern("bench-agent"));
    for threads in [1usize, 2] {
        group.bench_function(format!("mission_control/{threads}_thread"), |b| {
            b.iter_custom(|iters| {
                time_threads(
                    threads,
                    iters,
                    || {
                        let recorder = &recorder;
                        let thread = &thread;
                        move || {
                            recorder.start_span(thread, SpanKind::LlmCall, CHAT.get(), None).end()
                        }
                    },
                    || {
                        let _ = recorder.flush();
                    },
                )
            });
        });
    }
    let report = pipeline.shutdown();
    assert_eq!(report.accounting.dropped, 0, "a timed chunk overflowed: {:?}", report.accounting);

    // The OpenTelemetry SDK tracer used directly, with a batch processor and no-op exporter.
    let provider = otel_provider();
    let tracer = provider.tracer("bench");
    for threads in [1usize, 2] {
        group.bench_function(format!("opentelemetry_sdk/{threads}_thread"), |b| {
            b.iter_custom(|iters| {
                time_threads(
                    threads,
                    iters,
                    || {
                        let tracer = &tracer;
                        move || {
                            let mut span = tracer.start("chat");
                            span.end();
                        }
                    },
                    || {
                        let _ = provider.force_flush();
                    },
                )
            });
        });
    }

    // `tracing` + `tracing-opentelemetry` + the same SDK pipeline: the stack most Rust agents use.
    let otel_layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench-tracing"));
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(otel_layer));
    for threads in [1usize, 2] {
        group.bench_function(format!("tracing_opentelemetry/{threads}_thread"), |b| {
            b.iter_custom(|iters| {
                time_threads(
                    threads,
                    iters,
                    || {
                        let guard = tracing::dispatcher::set_default(&dispatch);
                        move || {
                            let _keep = &guard;
                            tracing::info_span!("chat").in_scope(|| {});
                        }
                    },
                    || {
                        let _ = provider.force_flush();
                    },
                )
            });
        });
    }
    group.finish();
    let _ = provider.shutdown();

    // Sanity: the single-thread helper measures the same thing as `time_threads(1, ..)`.
    let pipeline = Pipeline::builder().start().expect("start");
    let recorder = pipeline.recorder();
    let elapsed = time_chunked(
        1000,
        || recorder.start_span(&thread, SpanKind::ToolCall, CHAT.get(), None).end(),
        || {
            let _ = recorder.flush();
        },
    );
    black_box(elapsed);
    assert_eq!(pipeline.shutdown().accounting.delivered, 1000);
}

criterion_group!(benches, record_span);
criterion_main!(benches);
