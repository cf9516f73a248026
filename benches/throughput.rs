//! Benchmark 3: sustained throughput of recorder → pipeline → a sink that counts, with 1 and 2
//! producer threads, and what `DropNewest` drops when producers outrun the pipeline.
//!
//! * `sustained/*`: producers record under `Block` (nothing may be dropped); the time is
//!   until the sink has counted every event, so the figure is what the pipeline sustains.
//! * `saturation/*`: producers record as fast as they can under `DropNewest`; the bench
//!   prints how many events were offered, delivered and dropped (exactly accounted).
//!
//! This machine has 2 cores: with 2 producers the pipeline thread shares a core with them.
//!
//! Run: `cargo bench -p mission-benches --bench throughput`. Results: `benches/RESULTS.md`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mission_core::{Backpressure, FnSink, LazySymbol, Pipeline, SpanKind, Symbol, ThreadContext};

static CHAT: LazySymbol = LazySymbol::new("chat");

fn pipeline(policy: Backpressure, counted: Arc<AtomicU64>) -> Pipeline {
    Pipeline::builder()
        .with_backpressure(policy)
        .with_sink(FnSink::new("count", move |batch: &[mission_core::Event]| {
            counted.fetch_add(batch.len() as u64, Ordering::Relaxed);
            Ok(())
        }))
        .start()
        .expect("start")
}

fn produce(pipeline: &Pipeline, producers: usize, per_thread: u64) {
    std::thread::scope(|scope| {
        for _ in 0..producers {
            let recorder = pipeline.recorder();
            scope.spawn(move || {
                let thread =
                    ThreadContext::new(Symbol::intern("bench"), Symbol::intern("bench-agent"));
                for _ in 0..per_thread {
                    recorder.start_span(&thread, SpanKind::LlmCall, CHAT.get(), None).end();
                }
            });
        }
    });
}

fn sustained(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline_throughput");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for producers in [1usize, 2] {
        let per_thread = 1_000_000u64;
        group.throughput(Throughput::Elements(per_thread * producers as u64));
        group.bench_function(format!("sustained_block/{producers}_producers"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let counted = Arc::new(AtomicU64::new(0));
                    let p = pipeline(
                        Backpressure::Block { timeout: Duration::from_secs(60) },
                        counted.clone(),
                    );
                    let start = Instant::now();
                    produce(&p, producers, per_thread);
                    p.flush().expect("flush");
                    total += start.elapsed();
                    let report = p.shutdown();
                    assert_eq!(report.accounting.dropped, 0);
                    assert_eq!(counted.load(Ordering::Relaxed), per_thread * producers as u64);
                }
                total
            });
        });
    }
    group.finish();

    // Saturation under DropNewest: exact accounting of what was kept and what was dropped.
    for producers in [1usize, 2] {
        let per_thread = 5_000_000u64;
        let counted = Arc::new(AtomicU64::new(0));
        let p = pipeline(Backpressure::DropNewest, counted.clone());
        let start = Instant::now();
        produce(&p, producers, per_thread);
        let produce_time = start.elapsed();
        let report = p.shutdown();
        let a = report.accounting;
        assert_eq!(a.recorded, per_thread * producers as u64);
        assert_eq!(a.delivered + a.dropped, a.recorded);
        assert_eq!(counted.load(Ordering::Relaxed), a.delivered);
        println!(
            "pipeline_throughput/saturation_drop_newest/{producers}_producers: offered {:.1} M/s, \
             delivered {} of {} ({:.1} %), dropped {} ({:.1} %), accounted exactly",
            a.recorded as f64 / produce_time.as_secs_f64() / 1e6,
            a.delivered,
            a.recorded,
            100.0 * a.delivered as f64 / a.recorded as f64,
            a.dropped,
            100.0 * a.dropped as f64 / a.recorded as f64,
        );
    }
}

criterion_group!(benches, sustained);
criterion_main!(benches);
