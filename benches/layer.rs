//! Benchmark 2: recording through `tracing` macros with `MissionLayer`, beside the same macros
//! with `tracing-opentelemetry` (the stack users have today) and with a layer that does nothing.
//!
//! Each iteration opens and closes one span carrying a model name and token counts, the way
//! an LLM call is instrumented.
//!
//! Run: `cargo bench -p mission-benches --bench layer`. Results: `benches/RESULTS.md`.

use criterion::{Criterion, criterion_group, criterion_main};
use mission_benches::{otel_provider, time_chunked};
use mission_core::{MissionLayer, Pipeline};
use opentelemetry::trace::TracerProvider as _;
use tracing_subscriber::layer::{Layer, SubscriberExt};

/// A layer that does nothing: the cost of `tracing` and its registry alone.
struct NoopLayer;
impl<S: tracing::Subscriber> Layer<S> for NoopLayer {}

fn llm_span() {
    tracing::info_span!(
        "chat",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.usage.input_tokens = 812u64,
        gen_ai.usage.output_tokens = 64u64
    )
    .in_scope(|| {});
}

fn layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("tracing_layer");

    let noop = tracing::Dispatch::new(tracing_subscriber::registry().with(NoopLayer));
    group.bench_function("registry+noop_layer", |b| {
        tracing::dispatcher::with_default(&noop, || b.iter(llm_span));
    });

    let pipeline = Pipeline::builder()
        .with_ring_capacity(2 * mission_benches::CHUNK as usize)
        .start()
        .expect("start");
    let recorder = pipeline.recorder();
    let mission = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(MissionLayer::new(pipeline.recorder()).with_agent("bench")),
    );
    group.bench_function("registry+mission_layer", |b| {
        tracing::dispatcher::with_default(&mission, || {
            b.iter_custom(|iters| {
                time_chunked(iters, llm_span, || {
                    let _ = recorder.flush();
                })
            });
        });
    });
    let report = pipeline.shutdown();
    assert_eq!(report.accounting.dropped, 0, "{:?}", report.accounting);

    let provider = otel_provider();
    let otel = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"))),
    );
    group.bench_function("registry+tracing_opentelemetry", |b| {
        tracing::dispatcher::with_default(&otel, || {
            b.iter_custom(|iters| {
                time_chunked(iters, llm_span, || {
                    let _ = provider.force_flush();
                })
            });
        });
    });
    group.finish();
    let _ = provider.shutdown();
}

criterion_group!(benches, layers);
criterion_main!(benches);
