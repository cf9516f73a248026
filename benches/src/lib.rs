//! Shared pieces of Mission Control's benchmarks: the OpenTelemetry baseline set up the way
//! its users run it, and a timing helper that measures the recording thread only.
//!
//! ```
//! let provider = mission_benches::otel_provider();
//! drop(provider);
//! ```

use std::time::{Duration, Instant};

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
