//! Shared pieces of Mission Control's benchmarks: the OpenTelemetry baseline set up the way
//! its users run it, a timing helper that measures the recording thread only, and the
//! generated query store of the storage and SQL benches ([`generate_store`]).
//!
//! ```
//! let provider = mission_benches::otel_provider();
//! drop(provider);
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use mission_core::{
    Backpressure, EventBody, LlmUsage, Pipeline, SpanEnd, SpanId, SpanKind, Status, Symbol,
    ThreadContext, Timestamp,
};
use mission_store::{ParquetSink, StoreConfig};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter,
};

/// Events recorded between two untimed drains (fits every buffer used in the benches, so
/// neither Mission Control nor OpenTelemetry drops anything while being timed).
pub const CHUNK: u64 = 16 * 1024;

/// An OpenTelemetry exporter that does nothing, so the baseline measures the SDK itself.
#[derive(Debug, Default)]
pub struct NoopExporter;

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        std::hint::black_box(batch);
        Ok(())
    }
}

/// The OpenTelemetry SDK as users configure it: a batch span processor (with a queue large
/// enough that no span is dropped during a timed chunk) in front of an exporter.
pub fn otel_provider() -> SdkTracerProvider {
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(4 * CHUNK as usize)
        .with_max_export_batch_size(512)
        .with_scheduled_delay(Duration::from_millis(5))
        .build();
    let processor = BatchSpanProcessor::builder(NoopExporter).with_batch_config(config).build();
    SdkTracerProvider::builder().with_span_processor(processor).build()
}

/// Runs `record` `iters` times, timing only the calls: after every [`CHUNK`] calls the clock
/// stops while `drain` empties the buffers, so every timed call finds room in its buffer.
pub fn time_chunked(iters: u64, mut record: impl FnMut(), mut drain: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(CHUNK);
        let start = Instant::now();
        for _ in 0..n {
            record();
        }
        total += start.elapsed();
        drain();
        left -= n;
    }
    total
}

/// Runs `make()` on `threads` threads at once, each recording `iters` times in timed chunks,
/// and returns the mean per-thread time (so equal per-thread cost means perfect scaling).
pub fn time_threads<F, R>(threads: usize, iters: u64, make: F, drain: impl Fn() + Sync) -> Duration
where
    F: Fn() -> R + Sync,
    R: FnMut(),
{
    let barrier = std::sync::Barrier::new(threads);
    let totals: Vec<Duration> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let record = make();
                    barrier.wait();
                    // Everyone finishes the chunk, one thread drains, everyone resumes.
                    time_chunked(iters, record, || {
                        if barrier.wait().is_leader() {
                            drain();
                        }
                        barrier.wait();
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    });
    totals.iter().sum::<Duration>() / threads as u32
}

/// Bytes of the Parquet files under `dir`, recursively.
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                total += dir_bytes(&p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                total += e.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

/// Recorder → pipeline → Parquet sink at `dir` under `Block`, as the storage benches write.
///
/// # Panics
/// If the sink cannot be created at `dir` or the pipeline cannot start.
pub fn parquet_pipeline(dir: &Path) -> Pipeline {
    Pipeline::builder()
        .with_ring_capacity(16 * 1024)
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(60) })
        .with_sink(ParquetSink::new(StoreConfig::at(dir)).expect("sink"))
        .start()
        .expect("start")
}

/// Generates a store at `dir` of `n` span events over the 24 hours before now, through the
/// real pipeline: LLM calls (two models, tokens, cost) and `web_search` tool calls
/// alternating, 8 per thread, tenant `acme`, agent `support-bot`, 1 % errors. Returns the time
/// it took and the id of the thread of event `n / 2`.
///
/// # Panics
/// If the store cannot be written or an event is dropped.
pub fn generate_store(dir: &Path, n: u64) -> (Duration, String) {
    let pipeline = parquet_pipeline(dir);
    let recorder = pipeline.recorder();
    let day = 86_400_000_000_000u64;
    let base = Timestamp::now().0 - day;
    let step = day / n;
    let (chat, tool) = (Symbol::intern("chat"), Symbol::intern("web_search"));
    let models = [Symbol::intern("gpt-4o-mini"), Symbol::intern("claude-sonnet-4")];
    let provider = Symbol::intern("openai");
    let mut thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
    let mut probe = String::new();
    let mut x: u64 = 7;
    let started = Instant::now();
    for i in 0..n {
        if i % 8 == 0 {
            thread = ThreadContext::new(Symbol::intern("acme"), Symbol::intern("support-bot"));
        }
        if i == n / 2 {
            probe = thread.thread_id.to_string();
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let llm = i % 2 == 0;
        let mut e = thread.event(
            if llm { chat } else { tool },
            SpanId::generate(),
            EventBody::Span(SpanEnd {
                kind: if llm { SpanKind::LlmCall } else { SpanKind::ToolCall },
                duration_ns: 1_000_000 + x % 3_000_000_000,
                status: if x.is_multiple_of(100) { Status::Error } else { Status::Ok },
                llm: if llm {
                    LlmUsage {
                        model: models[(x % 2) as usize],
                        provider,
                        input_tokens: (x % 4000) as u32,
                        output_tokens: (x % 500) as u32,
                        cost_usd: (x % 1000) as f64 * 1e-6,
                        ..LlmUsage::default()
                    }
                } else {
                    LlmUsage::default()
                },
                ..SpanEnd::default()
            }),
        );
        e.time = Timestamp(base + i * step);
        recorder.record(e);
    }
    let report = pipeline.shutdown();
    assert_eq!(report.accounting.dropped, 0);
    (started.elapsed(), probe)
}
