use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use mission_core::{Backpressure, FnSink, Pipeline};

use crate::numbered;

fn counting_sink(
    counter: Arc<AtomicU64>,
    delay: Duration,
) -> FnSink<impl FnMut(&[mission_core::Event]) -> Result<(), mission_core::SinkError> + Send> {
    FnSink::new("count", move |batch: &[mission_core::Event]| {
        counter.fetch_add(batch.len() as u64, Ordering::Relaxed);
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        Ok(())
    })
}

fn hammer(pipeline: &Pipeline, threads: u32, per_thread: u64) -> u64 {
    let barrier = Arc::new(Barrier::new(threads as usize));
    let accepted = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let recorder = pipeline.recorder();
            let barrier = barrier.clone();
            let accepted = accepted.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let mut ok = 0;
                for n in 0..per_thread {
                    ok += u64::from(recorder.record(numbered(t, n)));
                }
                accepted.fetch_add(ok, Ordering::Relaxed);
            })
        })
        .collect();
    for h in handles {
        h.join().expect("producer thread");
    }
    accepted.load(Ordering::Relaxed)
}

#[test]
fn drop_newest_accounts_for_every_event() {
    let delivered = Arc::new(AtomicU64::new(0));
    // A tiny buffer and a slow sink: most events must be dropped, and every one counted.
    let pipeline = Pipeline::builder()
        .with_ring_capacity(16)
        .with_batch_size(8)
        .with_sink(counting_sink(delivered.clone(), Duration::from_micros(200)))
        .start()
        .expect("start");
    let threads = 8;
    let per_thread = 20_000;
    let accepted = hammer(&pipeline, threads, per_thread);
    let report = pipeline.shutdown();
    let a = report.accounting;
    let total = threads as u64 * per_thread;
    assert_eq!(a.recorded, total);
    assert_eq!(a.delivered + a.dropped + a.in_flight, a.recorded);
    assert_eq!(a.in_flight, 0, "shutdown delivers everything accepted");
    assert_eq!(a.delivered, accepted, "every accepted event reached the sink");
    assert_eq!(delivered.load(Ordering::Relaxed), a.delivered);
    assert_eq!(a.dropped, a.dropped_buffer_full);
    assert!(a.dropped > 0, "the test must actually saturate the buffer: {a:?}");
}

#[test]
fn block_policy_drops_nothing() {
    let delivered = Arc::new(AtomicU64::new(0));
    let pipeline = Pipeline::builder()
        .with_ring_capacity(16)
        .with_batch_size(8)
        .with_backpressure(Backpressure::Block { timeout: Duration::from_secs(60) })
        .with_sink(counting_sink(delivered.clone(), Duration::from_micros(50)))
        .start()
        .expect("start");
    let threads = 6;
    let per_thread = 5_000;
    let accepted = hammer(&pipeline, threads, per_thread);
    let report = pipeline.shutdown();
    let total = threads as u64 * per_thread;
    assert_eq!(accepted, total);
    assert_eq!(report.accounting.recorded, total);
    assert_eq!(report.accounting.dropped, 0);
    assert_eq!(report.accounting.delivered, total);
    assert_eq!(delivered.load(Ordering::Relaxed), total);
}

#[test]
fn block_policy_times_out_and_counts() {
    let pipeline = Pipeline::builder()
        .with_ring_capacity(4)
        .with_backpressure(Backpressure::Block { timeout: Duration::from_millis(2) })
        .with_sink(counting_sink(Arc::new(AtomicU64::new(0)), Duration::from_millis(50)))
        .start()
        .expect("start");
    let accepted = hammer(&pipeline, 2, 200);
    let report = pipeline.shutdown();
    let a = report.accounting;
    assert_eq!(a.recorded, 400);
    assert_eq!(a.delivered, accepted);
    assert!(a.dropped_block_timeout > 0, "{a:?}");
    assert_eq!(a.delivered + a.dropped, 400);
}

#[test]
fn threads_past_the_producer_limit_share_a_queue() {
    let delivered = Arc::new(AtomicU64::new(0));
    let pipeline = Pipeline::builder()
        .with_config(mission_core::RecorderConfig::default().with_max_producers(2))
        .with_sink(counting_sink(delivered.clone(), Duration::ZERO))
        .start()
        .expect("start");
    let accepted = hammer(&pipeline, 6, 1_000);
    let report = pipeline.shutdown();
    assert_eq!(report.accounting.recorded, 6_000);
    assert_eq!(report.accounting.delivered, accepted);
    assert_eq!(report.accounting.delivered + report.accounting.dropped, 6_000);
}

#[test]
fn events_after_shutdown_are_counted() {
    let pipeline = Pipeline::builder().start().expect("start");
    let recorder = pipeline.recorder();
    assert!(recorder.record(numbered(0, 1)));
    let report = pipeline.shutdown();
    assert_eq!(report.accounting.delivered, 1);
    assert!(!recorder.record(numbered(0, 2)));
    let a = recorder.accounting();
    assert_eq!(a.recorded, 2);
    assert_eq!(a.dropped_after_shutdown, 1);
    assert_eq!(a.delivered + a.dropped + a.in_flight, a.recorded);
}

#[test]
fn exited_threads_are_retired_with_their_counts() {
    let pipeline = Pipeline::builder().start().expect("start");
    for round in 0..20 {
        let recorder = pipeline.recorder();
        std::thread::spawn(move || {
            for n in 0..100 {
                recorder.record(numbered(round, n));
            }
        })
        .join()
        .expect("thread");
    }
    pipeline.flush().expect("flush");
    // Wait (generously) for the pipeline to take a pass and notice the exited threads.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut health = pipeline.health();
    while health.buffer.producers >= 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        health = pipeline.health();
    }
    assert!(
        health.buffer.producers < 20,
        "rings of exited threads are retired: {:?}",
        health.buffer
    );
    assert_eq!(health.accounting.recorded, 2_000);
    assert_eq!(health.accounting.delivered, 2_000);
}
